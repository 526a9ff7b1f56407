// A partner's MX (relays[].placement kind: partner): the topology's rules, what the partner installs
// (lib/render/partner.ts; its Postfix script run for real, as root, is in renderers.test.ts), the program under mocks (nothing
// deployed there, its records, its health check, the partnerConfig output), and a recipient change
// showing in the offline diff. The stock Postfix configured by the script at MX 30 is the lab's
// scenario partner-mx (test/lab.test.ts).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseTopology, formatPath } from "../lib/topology/validate";
import { deploymentProblems } from "../lib/topology/deployable";
import { failureDomainOf, ownRelays, partnerRelays, providerOf } from "../lib/topology/placement";
import { buildRecordSet, mtaStsPolicy } from "../lib/render/records";
import { partnerConfigsOf, partnerRecipientsTable, partnerTableName, renderPartnerPostfix, renderPartnerSendmail } from "../lib/render/partner";
import { buildDiffReport, formatDiffMarkdown } from "../lib/plan/diff-report";
import type { Plan, PlannedResource } from "../lib/plan/report";
import { buildExpectation } from "../lib/check/expectation";
import { ROOT, inBatches, problemsOf, rawTopology, runPlanAsync, writeStackFile } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PARTNER = "mx.email-friend-store.example.net";

/** Pulumi.partner.yaml, changed. */
function partnerStack(change: (t: Raw) => void = () => {}): Raw {
    const t = rawTopology("partner") as Raw;
    change(t);
    return t;
}

/** prod with its third MX a partner's, named in our own zone. */
function prodWithPartner(change: (t: Raw) => void = () => {}): Raw {
    const t = rawTopology("prod") as Raw;
    t.relays[1] = { hostname: "mx3.example.com", priority: 30, placement: { kind: "partner", organisation: "Email Friend Store", contact: "postmaster@email-friend-store.example.net", addresses: ["203.0.113.77"] } };
    change(t);
    return t;
}

function problemAt(problems: string[], path: string, words: RegExp): string | undefined {
    return problems.find((p) => p.startsWith(`${path}:`) && words.test(p));
}

describe("a partner's MX in the topology", () => {
    it("parses with its defaults: postfix, no CA-signed certificate stated, no addresses", () => {
        const t = parseTopology(prodWithPartner((t) => (delete t.relays[1].placement.addresses, (t.relays[1].hostname = PARTNER), (t.overrides = { allowMxOutsideDomain: true }), (t.policy = { mtaSts: "testing" }))));
        const [partner] = partnerRelays(t);
        assert.deepEqual(partner.placement, { kind: "partner", organisation: "Email Friend Store", contact: "postmaster@email-friend-store.example.net", addresses: [], addresses6: [], software: "postfix", caSignedCertificate: false });
        assert.deepEqual(ownRelays(t).map((r) => r.hostname), ["mx2.example.com"]);
    });

    it("is its own failure domain and provider: the partner organisation", () => {
        const [partner] = partnerRelays(parseTopology(rawTopology("partner")));
        assert.equal(failureDomainOf(partner.placement), "partner email friend store");
        assert.equal(providerOf(partner.placement), "partner email friend store");
    });

    it("refuses MTA-STS enforce, naming the partner's path, unless the partner states a CA-signed certificate", () => {
        // prod enforces MTA-STS with tls.acme: ACME reaches every host the stack runs, never the partner's.
        const refused = problemsOf(prodWithPartner());
        const hit = problemAt(refused, "topology.relays[1].placement.caSignedCertificate", /enforce.*mx3\.example\.com.*Email Friend Store.*CA-signed/);
        assert.ok(hit, refused.join("\n"));
        assert.equal(refused.length, 1, refused.join("\n"));
        assert.deepEqual(problemsOf(prodWithPartner((t) => (t.relays[1].placement.caSignedCertificate = true))), []);
        assert.deepEqual(problemsOf(prodWithPartner((t) => (t.policy = { mtaSts: "testing" }))), [], "testing does not need it");
        assert.deepEqual(problemsOf(rawTopology("partner")), [], "Pulumi.partner.yaml states it");
    });

    it("takes a hostname outside our domains only with overrides.allowMxOutsideDomain, like any MX", () => {
        const outside = (t: Raw) => ((t.relays[1].hostname = PARTNER), (t.relays[1].placement.caSignedCertificate = true));
        const refused = problemsOf(prodWithPartner(outside));
        assert.ok(problemAt(refused, "topology.relays[1].hostname", /mx\.email-friend-store\.example\.net is outside example\.com.*allowMxOutsideDomain/), refused.join("\n"));
        assert.deepEqual(problemsOf(prodWithPartner((t) => (outside(t), (t.overrides = { allowMxOutsideDomain: true })))), []);
        // Outside our zones its addresses may be unknown: its own DNS has them.
        assert.deepEqual(problemsOf(partnerStack((t) => delete t.relays[1].placement.addresses)), []);
    });

    it("needs the addresses of a partner's MX named in our zone (its A record is ours to publish), each used once", () => {
        const problems = problemsOf(prodWithPartner((t) => ((t.relays[1].placement.addresses = []), (t.relays[1].placement.caSignedCertificate = true))));
        assert.ok(problemAt(problems, "topology.relays[1].placement.addresses", /mx3\.example\.com is in example\.com.*give the partner MX's addresses/), problems.join("\n"));
        const twice = problemsOf(prodWithPartner((t) => ((t.relays[1].placement.addresses = ["198.51.100.20"]), (t.relays[1].placement.caSignedCertificate = true))));
        assert.ok(problemAt(twice, "topology.relays[1].placement.addresses[0]", /198\.51\.100\.20 is already used by relays\[0\]/), twice.join("\n"));
    });

    it("refuses a contact that is not an address, and no organisation", () => {
        const problems = problemsOf(partnerStack((t) => ((t.relays[1].placement.contact = "call Bob"), (t.relays[1].placement.organisation = " "))));
        assert.ok(problemAt(problems, "topology.relays[1].placement.contact", /contact address/), problems.join("\n"));
        assert.ok(problemAt(problems, "topology.relays[1].placement.organisation", /organisation/), problems.join("\n"));
    });

    it("is refused for a real deployment with documentation addresses, a reserved name or an unreachable contact", () => {
        const found = deploymentProblems(parseTopology(rawTopology("partner"))).map((p) => `${formatPath(p.path)}: ${p.message}`);
        for (const [path, words] of [
            ["topology.relays[1].placement.addresses[0]", /203\.0\.113\.77 is a documentation/],
            ["topology.relays[1].placement.addresses6[0]", /2001:db8:77::25 is a documentation/],
            ["topology.relays[1].hostname", /reserved name; give the partner MX's real hostname/],
            ["topology.relays[1].placement.contact", /can never be reached/],
        ] as const) {
            assert.ok(problemAt(found, path, words), `${path}: ${found.join("\n")}`);
        }
    });
});

describe("the records of a partner's MX", () => {
    it("MX at its priority and in the MTA-STS policy; A, AAAA and HELO SPF only when named in our zone; never an ACME CNAME", () => {
        const outside = parseTopology(rawTopology("partner"));
        const records = buildRecordSet(outside, () => "192.0.2.1");
        assert.ok(records.some((r) => r.type === "MX" && r.content === PARTNER && r.priority === 30));
        assert.deepEqual(records.filter((r) => r.name === PARTNER || r.name.endsWith(`.${PARTNER}`)), [], "its own DNS has its records");
        assert.match(mtaStsPolicy(outside), /mx: mx\.email-friend-store\.example\.net\r\n/);
        // The apex SPF needs nothing for it: `mx` covers every MX host's addresses (through its A records).
        assert.ok(records.some((r) => r.name === "example.com" && r.type === "TXT" && r.content === "v=spf1 mx ~all"));

        const inside = parseTopology(prodWithPartner((t) => ((t.relays[1].placement.addresses = ["203.0.113.77", "203.0.113.78"]), (t.relays[1].placement.addresses6 = ["2001:db8:77::25"]), (t.relays[1].placement.caSignedCertificate = true))));
        const own = buildRecordSet(inside, () => "192.0.2.1").filter((r) => r.name.includes("mx3.example.com"));
        assert.deepEqual(
            own.map((r) => `${r.name} ${r.type} ${String(r.content)} ${r.member ?? ""}`.trim()),
            ["mx3.example.com A 203.0.113.77 0", "mx3.example.com A 203.0.113.78 1", "mx3.example.com AAAA 2001:db8:77::25 0", "mx3.example.com TXT v=spf1 a -all"],
        );
    });
});

describe("what the partner installs", () => {
    const topology = parseTopology(rawTopology("partner"));
    const [partner] = partnerRelays(topology);

    it("a recipient table of our recipients only, in Postfix's syntax", () => {
        const table = partnerRecipientsTable(topology);
        const entries = table.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
        assert.deepEqual(entries, ["postmaster@example.com\tOK", "abuse@example.com\tOK", "alice@example.com\tOK", "bob@example.com\tOK"]);
        const whole = parseTopology(partnerStack((t) => (t.recipients = ["@example.com"])));
        assert.deepEqual(partnerRecipientsTable(whole).split("\n").filter((l) => l !== "" && !l.startsWith("#")), ["@example.com\tOK"]);
    });

    it("a Postfix script that adds our domain and table and touches no other setting", () => {
        const script = renderPartnerPostfix(topology, partner);
        const commands = script.split("\n").filter((l) => !/^\s*#/.test(l));
        // postconf -e only through add(), for the two parameters; no other main.cf change, no master.cf.
        assert.deepEqual(commands.filter((l) => /postconf .*-e/.test(l)).map((l) => l.trim()), ['postconf -c "$conf" -e "$1 = ${current:+$current, }$2"']);
        assert.deepEqual(commands.filter((l) => /^\s*(for domain in|add) /.test(l)).map((l) => l.trim()), ["for domain in $ours; do add relay_domains \"$domain\"; done", 'add relay_recipient_maps "hash:$table"']);
        assert.ok(commands.includes('ours="example.com"'));
        assert.ok(commands.includes(`table=$conf/${partnerTableName(topology)}`));
        assert.doesNotMatch(commands.join("\n"), /master\.cf|smtpd_relay_restrictions|mynetworks|transport_maps/);
        assert.match(script, /Merging by hand instead/);
        assert.match(script, /relay_recipient_maps is empty/);
        const sh = spawnSync("sh", ["-n"], { input: script, encoding: "utf8" });
        assert.equal(sh.status, 0, sh.stderr);
    });

    it("a sendmail access block: RELAY per recipient, the rest of the domain 550 User unknown, nothing else", () => {
        const text = renderPartnerSendmail(topology, partner);
        const block = text.slice(text.indexOf("# BEGIN mailcontinuity example.com"), text.indexOf("# END mailcontinuity example.com"));
        assert.deepEqual(block.split("\n").slice(1).filter(Boolean), [
            "To:postmaster@example.com\tRELAY",
            "To:abuse@example.com\tRELAY",
            "To:alice@example.com\tRELAY",
            "To:bob@example.com\tRELAY",
            "To:example.com\tERROR:5.1.1:550 User unknown",
        ]);
        assert.match(text, /FEATURE\(`access_db'\)dnl/);
        assert.match(text, /FEATURE\(`blocklist_recipients'\)dnl/);
        assert.match(text, /Do NOT add example\.com to relay-domains/);
        assert.match(text, /mailertable: nothing to add/);
        const whole = parseTopology(partnerStack((t) => (t.recipients = ["@example.com"])));
        const entries = renderPartnerSendmail(whole, partnerRelays(whole)[0]).split("\n").filter((l) => l.startsWith("To:"));
        assert.deepEqual(entries, ["To:example.com\tRELAY"], "a whole domain: relayed, no refusal");
    });

    it("one configuration per partner's MX, by hostname; none without a partner", () => {
        assert.deepEqual(Object.keys(partnerConfigsOf(topology)!), [PARTNER]);
        assert.equal(partnerConfigsOf(parseTopology(rawTopology("prod"))), undefined);
    });

    it("as files: npm run partner-config writes them per partner host, and says where they go", () => {
        const out = mkdtempSync(join(tmpdir(), "partner-config-"));
        try {
            const cli = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "partner-config.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
            const r = cli(["--stack", "partner", "--out", out]);
            assert.equal(r.status, 0, r.stderr);
            const config = partnerConfigsOf(topology)![PARTNER];
            assert.equal(readFileSync(join(out, PARTNER, "postfix.sh"), "utf8"), config.postfix);
            assert.equal(statSync(join(out, PARTNER, "postfix.sh")).mode & 0o777, 0o755);
            assert.equal(readFileSync(join(out, PARTNER, "sendmail-access.txt"), "utf8"), config.sendmail);
            assert.equal(readFileSync(join(out, PARTNER, "recipients"), "utf8"), config.recipients);
            assert.match(r.stdout, /send postfix\.sh .* to postmaster@email-friend-store\.example\.net \(Email Friend Store, MX 30 mx\.email-friend-store\.example\.net\)/);
            const none = cli(["--stack", "prod", "--out", out]);
            assert.equal(none.status, 1);
            assert.match(none.stderr, /stack prod has no partner's MX/);
        } finally {
            rmSync(out, { recursive: true, force: true });
        }
    });
});

describe("a partner's MX under mocks (npm run plan)", () => {
    const dir = mkdtempSync(join(tmpdir(), "partner-plan-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const plans: Record<string, Plan> = {};
    before(async () => {
        const variants: Record<string, Raw> = {
            partner: rawTopology("partner"),
            carol: partnerStack((t) => t.recipients.push("carol@example.com")),
            unknown: partnerStack((t) => delete t.relays[1].placement.addresses),
            inside: prodWithPartner((t) => (t.relays[1].placement.caSignedCertificate = true)),
        };
        const runs = await inBatches(Object.entries(variants).map(([name, t]) => () => runPlanAsync(["--stack", "partner", "--config", writeStackFile(dir, name, t), "--json"])));
        Object.keys(variants).forEach((name, i) => {
            assert.equal(runs[i].status, 0, `${name}: ${runs[i].stderr}`);
            plans[name] = runs[i].plan!;
        });
    });
    const byType = (plan: Plan, type: string): PlannedResource[] => plan.resources.filter((r) => r.type === type);

    it("deploys nothing for it: no container, Docker host, instance, volume, ACME right or firewall", () => {
        const plan = plans.partner;
        assert.deepEqual(byType(plan, "docker:index/container:Container").map((c) => c.inputs.hostname), ["mx2.example.com"]);
        assert.deepEqual(byType(plan, "pulumi:providers:docker").map((p) => p.inputs.host), ["ssh://deploy@relay-hel1.example.net"]);
        assert.deepEqual(byType(plan, "mailcontinuity:relay:RelayNode").map((r) => r.name), ["mail-mx2-example-com"]);
        assert.deepEqual(plan.resources.filter((r) => r.name.includes("email-friend-store") && !r.type.startsWith("aws:route53/healthCheck") && !r.type.startsWith("aws:cloudwatch/metricAlarm") && !r.type.startsWith("cloudflare:") && !r.type.startsWith("aws:route53/record")).map((r) => `${r.type} ${r.name}`), []);
        assert.equal(byType(plan, "aws:ec2/instance:Instance").length, 1, "the primary's only");
        assert.deepEqual(plan.dns.filter((d) => d.name.includes(`_acme-challenge.${PARTNER}`)), []);
    });

    it("publishes its MX at both providers, and trusts its addresses at the primary", () => {
        for (const provider of ["cloudflare", "route53"]) {
            assert.deepEqual(plans.partner.dns.filter((d) => d.provider === provider && d.type === "MX").map((d) => `${d.priority} ${d.content}`), ["10 mail.example.com", "20 mx2.example.com", `30 ${PARTNER}`]);
            assert.deepEqual(plans.inside.dns.filter((d) => d.provider === provider && d.name === "mx3.example.com").map((d) => `${d.type} ${d.content}`).sort(), ["A 203.0.113.77", "TXT v=spf1 a -all"]);
        }
        const config = byType(plans.partner, "command:remote:Command").find((c) => c.name.endsWith("-config"))!;
        assert.match(String(config.inputs.stdin), /203\.0\.113\.77\/32\tOK/);
        assert.match(String(config.inputs.stdin), /2001:db8:77::25\/128\tOK/);
    });

    it("watches its port 25 (at its address, else at its name), no queue health, the alarm naming whom to call", () => {
        const checks = byType(plans.partner, "aws:route53/healthCheck:HealthCheck").filter((c) => c.name.includes("email-friend-store"));
        assert.deepEqual(checks.map((c) => [c.name, c.inputs.type, c.inputs.ipAddress, c.inputs.port]), [["mail-alerts-mx-email-friend-store-example-net-smtp", "TCP", "203.0.113.77", 25]]);
        const alarm = byType(plans.partner, "aws:cloudwatch/metricAlarm:MetricAlarm").find((a) => a.name === "mail-alerts-mx-email-friend-store-example-net-down")!;
        assert.match(String(alarm.inputs.alarmDescription), /port 25 \(a partner's MX, run by Email Friend Store: contact postmaster@email-friend-store\.example\.net\)$/);
        const byName = byType(plans.unknown, "aws:route53/healthCheck:HealthCheck").filter((c) => c.name.includes("email-friend-store"));
        assert.deepEqual(byName.map((c) => [c.inputs.type, c.inputs.fqdn, c.inputs.ipAddress, c.inputs.port]), [["TCP", PARTNER, undefined, 25]]);
    });

    it("says its role in mxTable and outputs what it installs (partnerConfig)", () => {
        assert.deepEqual((plans.partner.outputs.mxTable as { host: string; role: string; address: string | null }[]).map((m) => [m.host, m.role, m.address]), [
            ["mail.example.com", "primary", (plans.partner.outputs.hostAddresses as Record<string, string>)["mail.example.com"]],
            ["mx2.example.com", "relay", "198.51.100.20"],
            [PARTNER, "partner", "203.0.113.77"],
        ]);
        assert.equal((plans.unknown.outputs.mxTable as { host: string; address: string | null }[]).find((m) => m.host === PARTNER)!.address, null);
        assert.equal((plans.unknown.outputs.hostAddresses as Record<string, string>)[PARTNER], undefined);
        const config = plans.partner.outputs.partnerConfig as Record<string, { postfix: string; sendmail: string; recipients: string }>;
        assert.deepEqual(Object.keys(config), [PARTNER]);
        assert.deepEqual(Object.keys(config[PARTNER]).sort(), ["postfix", "recipients", "sendmail"]);
        assert.equal(config[PARTNER].recipients, partnerRecipientsTable(parseTopology(rawTopology("partner"))));
    });

    it("a changed recipient list changes partnerConfig, and the diff says what the partner must install", () => {
        const report = buildDiffReport("partner", "HEAD", plans.partner, plans.carol);
        assert.ok(report.outputs.some((o) => o.name === "partnerConfig" && o.change === "changed"), JSON.stringify(report.outputs));
        const warning = report.warnings.find((w) => w.kind === "partner-action");
        assert.ok(warning, JSON.stringify(report.warnings));
        assert.match(warning.message, /partner's MX mx\.email-friend-store\.example\.net needs the new recipient table \(\+carol@example\.com\); `npm run partner-config -- --stack partner` writes it; send it to postmaster@email-friend-store\.example\.net \(Email Friend Store\)\. Until it is installed there, carol@example\.com get 550/);
        const markdown = formatDiffMarkdown(report);
        assert.match(markdown, /\*\*Outputs\*\*: .*`partnerConfig` changed/);
        assert.match(markdown, /30 mx\.email-friend-store\.example\.net \(203\.0\.113\.77, partner\)/);
        // The same plan twice: no output changes, no partner warning.
        const same = buildDiffReport("partner", "HEAD", plans.partner, plans.partner);
        assert.deepEqual([same.outputs, same.warnings], [[], []]);
        assert.match(formatDiffMarkdown(same), /\*\*Outputs\*\*: none change\./);
    });

    it("is checked like our MX hosts, with its contact for what to do", () => {
        const e = buildExpectation(plans.partner);
        const host = e.mxHosts.find((h) => h.hostname === PARTNER)!;
        assert.deepEqual(host, { hostname: PARTNER, priority: 30, role: "partner", address: "203.0.113.77", partner: { organisation: "Email Friend Store", contact: "postmaster@email-friend-store.example.net" } });
        // Outside our zones and without addresses: no address offline; the checker asks the partner's own DNS.
        assert.equal(buildExpectation(plans.unknown).mxHosts.find((h) => h.hostname === PARTNER)!.address, null);
        assert.equal(e.rrsets.some((r) => r.name === PARTNER), false);
    });
});
