// Several sites behind one domain (the "mail switch"): what the topology refuses, with its path, and
// the routing the switch and each site's server get. The routing with real Postfix is lab scenario
// `sites` (test/lab.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTopology } from "../lib/topology/validate";
import { renderPrimaryPostfix } from "../lib/render/primary-postfix";
import { renderSitePostfix, siteRoutes, switchTransportTable } from "../lib/render/sites";
import { renderSiteApply, siteApplyScriptsOf } from "../lib/render/site-apply";
import { buildRecordSet } from "../lib/render/records";
import { problemsOf, rawTopology, runPlan } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function multisite(change: (t: Raw) => void = () => {}): Raw {
    const t = rawTopology("multisite");
    change(t);
    return t;
}


describe("sites in the topology", () => {
    it("reads every recipient as an address, and the site of each site user", () => {
        const t = parseTopology(multisite());
        assert.ok(t.recipients.includes("anna@example.org") && t.recipients.includes("ceo@example.org"));
        assert.equal(t.recipientSites["anna@example.org"], "berlin");
        assert.equal(t.recipientSites["ines@example.org"], "porto");
        assert.equal(t.recipientSites["ceo@example.org"], undefined, "a user of the switch has no site");
        assert.deepEqual(Object.keys(t.sites), ["berlin", "lyon", "porto"]);
    });

    const refused: [string, (t: Raw) => void, RegExp][] = [
        ["a user in two sites", (t) => t.recipients.push({ address: "anna@example.org", site: "lyon" }), /^topology\.recipients\[\d+\]: anna@example\.org is already a user of site berlin \(recipients\[3\]\)/],
        ["a site user also listed without its site", (t) => t.recipients.push("anna@example.org"), /^topology\.recipients\[\d+\]: anna@example\.org is also a user of site berlin/],
        ["a site with no server", (t) => (t.sites.lyon = {}), /^topology\.sites\.lyon: site lyon has no server/],
        ["a recipient routed to an unknown site", (t) => t.recipients.push({ address: "zoe@example.org", site: "madrid" }), /^topology\.recipients\[\d+\]\.site: site madrid is not in sites \(berlin, lyon, porto\)/],
        [
            "a site server in the switch's failure domain with one relay",
            (t) => {
                t.relays = t.relays.slice(0, 1);
                t.primary = { ...t.primary, placement: { kind: "external", address: "192.0.2.10", site: { provider: "office-berlin", city: "berlin" } } };
            },
            /^topology\.sites\.berlin\.server\.placement\.site: site berlin's server is in office-berlin in berlin, like the switch .* only one relay/,
        ],
        ["a site server that is an MX host", (t) => (t.sites.berlin.server.hostname = "mx2.example.org"), /^topology\.sites\.berlin\.server\.hostname: mx2\.example\.org is an MX host/],
        ["two sites with one address", (t) => (t.sites.lyon.server.placement.address = "198.51.100.41"), /^topology\.sites\.lyon\.server\.placement\.address: 198\.51\.100\.41 is already the server of site berlin/],
        ["a whole domain at a site", (t) => t.recipients.push({ address: "@example.org", site: "lyon" }), /^topology\.recipients\[8\]\.address: expected a mailbox address such as alice@example\.com$/],
        ["an IMAP mailbox for a user of a site server the stack does not run", (t) => (t.mailboxes = ["anna@example.org"]), /^topology\.mailboxes\[0\]: anna@example\.org is a user of site berlin, whose own server \(kind: external\) keeps its users/],
        [
            "an EC2 site server without an admin key",
            (t) => {
                t.admin.sshKeys = [];
                t.primary.placement = { kind: "external", address: "192.0.2.10", site: { provider: "own", city: "frankfurt" } };
                t.relays = t.relays.filter((r: Raw) => r.placement.kind !== "aws");
                t.relays.push({ hostname: "mx3.example.org", priority: 30, placement: { kind: "docker", host: "ssh://deploy@relay-ovh.example.net", address: "198.51.100.30", site: { provider: "ovh", city: "gravelines" } } });
            },
            /^topology\.admin\.sshKeys: porto\.mail\.example\.org run on EC2/,
        ],
    ];
    for (const [what, change, message] of refused) {
        it(`refuses ${what}, naming its path`, () => {
            const problems = problemsOf(multisite(change));
            assert.ok(problems.some((p) => message.test(p)), problems.join("\n"));
        });
    }

    it("accepts IMAP mailboxes for the users of a site whose server runs on EC2", () => {
        assert.deepEqual(problemsOf(multisite((t) => (t.mailboxes = ["ines@example.org"]))), []);
    });

    it("accepts a site in the switch's failure domain when another relay remains", () => {
        const problems = problemsOf(
            multisite((t) => (t.primary = { ...t.primary, placement: { kind: "external", address: "192.0.2.10", site: { provider: "office-berlin", city: "berlin" } } })),
        );
        assert.deepEqual(problems, []);
    });
});

describe("the switch's and the sites' routing", () => {
    const topology = parseTopology(multisite());

    it("routes each site user from the switch to that site's server, and nobody else", () => {
        assert.equal(
            switchTransportTable(topology),
            [
                "anna@example.org\tsmtp:[berlin.mail.example.org]:25",
                "camille@example.org\tsmtp:[lyon.mail.example.org]:25",
                "hugo@example.org\tsmtp:[lyon.mail.example.org]:25",
                "ines@example.org\tsmtp:[porto.mail.example.org]:25",
                "jonas@example.org\tsmtp:[berlin.mail.example.org]:25",
                "",
            ].join("\n"),
        );
        const primary = renderPrimaryPostfix(topology, { relayAddresses: [] });
        assert.ok(primary.mainCf.some(([k, v]) => k === "transport_maps" && v === "hash:/etc/postfix/transport"));
        assert.deepEqual(primary.hashTables, ["vmailbox", "transport"]);
        assert.match(primary.tables.vmailbox, /^anna@example\.org\t/m, "the switch accepts site users' mail");
    });

    it("removes the switch's routing when the last site goes, instead of leaving the old table in force", () => {
        const single = parseTopology(rawTopology("prod"));
        const primary = renderPrimaryPostfix(single, { relayAddresses: [] });
        assert.ok(!primary.mainCf.some(([k]) => k === "transport_maps"));
        assert.ok(primary.removed.includes("transport_maps"), `removed: ${primary.removed.join(", ")}`);
        assert.equal(siteRoutes(single).length, 0);
    });

    it("delivers a site's users there, sends other sites' users straight to their site, and the rest to the switch", () => {
        const berlin = renderSitePostfix(topology, "berlin");
        const transport = berlin.tables["mailcontinuity-transport"];
        assert.match(transport, /^anna@example\.org\tvirtual:$/m);
        assert.match(transport, /^jonas@example\.org\tvirtual:$/m);
        assert.match(transport, /^camille@example\.org\tsmtp:\[lyon\.mail\.example\.org\]:25$/m);
        assert.match(transport, /^ines@example\.org\tsmtp:\[porto\.mail\.example\.org\]:25$/m);
        assert.match(transport, /^example\.org\tsmtp:\[mail\.example\.org\]:25$/m, "the switch's own users, through the switch");
        assert.match(berlin.tables["mailcontinuity-users"], /^ceo@example\.org\t/m, "every user is a valid recipient at every site");
        const script = renderSiteApply(topology, "berlin");
        assert.match(script, /postfix -c "\$staged" check/);
        assert.deepEqual(Object.keys(siteApplyScriptsOf(topology)), ["berlin", "lyon", "porto"]);
    });

    it("publishes each site server's address at both providers", () => {
        const records = buildRecordSet(topology, () => "192.0.2.1");
        const lyon = records.filter((r) => r.name === "lyon.mail.example.org");
        assert.deepEqual(lyon.map((r) => [r.type, r.content]), [["A", "198.51.100.42"]]);
    });
});

describe("a site server on EC2 (Pulumi.multisite.yaml's porto), under mocks", () => {
    const run = runPlan(["--stack", "multisite", "--json"]);
    const plan = run.plan!;
    const named = (name: string) => plan.resources.find((r) => r.name === name);
    const topology = parseTopology(multisite());

    it("is a mail server like the primary: its own protected mail volume, snapshots, instance in its region", () => {
        assert.equal(run.status, 0, run.stderr);
        const volume = named("mail-porto-mail-example-org-mail");
        assert.ok(volume, plan.resources.map((r) => r.name).join(", "));
        assert.deepEqual([volume.options.protect, volume.options.retainOnDelete], [true, true]);
        assert.equal(volume.inputs.availabilityZone, "eu-south-2a");
        const policy = named("mail-porto-mail-example-org-mail-snapshots");
        assert.ok(policy, "no snapshot policy for the site's mail volume");
        assert.match(JSON.stringify(policy.inputs.policyDetails), /porto\.mail\.example\.org/);
        const instance = named("mail-porto-mail-example-org-vm")!;
        assert.equal(instance.inputs.ami, "ami-0d2f4e6a8b1c3e5f7");
        assert.doesNotMatch(String(instance.inputs.userData), /etrn-relays/, "a site server does not ETRN the relays");
    });

    it("applies the site's routing over SSH, the same script an external site server runs", () => {
        const config = named("mail-porto-mail-example-org-config");
        assert.ok(config);
        assert.equal(config.inputs.stdin, renderSiteApply(topology, "porto"));
    });

    it("publishes its Elastic IP as its A record at both providers", () => {
        const records = plan.dns.filter((r) => r.name === "porto.mail.example.org" && r.type === "A");
        assert.deepEqual(records.map((r) => r.provider).sort(), ["cloudflare", "route53"]);
        assert.equal(new Set(records.map((r) => r.content)).size, 1);
    });
});
