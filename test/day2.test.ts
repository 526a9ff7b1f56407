// Day 2: the second and tenth `pulumi up`. Each realistic config change is evaluated before and after
// under mocks, and the two plans are compared the way the engine would (lib/plan/diff.ts, with the
// providers' replacement rules from lib/plan/replacement.ts).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { diffPlans, type Operation, type ResourceChange } from "../lib/plan/diff";
import { REPLACEMENT_RULES } from "../lib/plan/replacement";
import { HOLDS_MAIL, holdsBytes } from "../lib/plan/diff-report";
import { SNAPSHOT_TARGET_TAG } from "../lib/render/mail-snapshots";
import type { Plan } from "../lib/plan/report";
import { inBatches, rawTopology, runPlanAsync, writeStackFile } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Change {
    title: string;
    change: (t: Raw) => void;
    /** Resource name -> the operation it must get. */
    expect: Record<string, Operation>;
    /** Instances may be replaced only by a change that asks for it. */
    replacesInstance?: boolean;
    /** Resources this change removes along with what it removes (a relay and its records). */
    mayDelete?: RegExp;
    /** Resources (holding no mail) this change may replace besides those it expects. */
    mayReplace?: RegExp;
    /**
     * Elastic IPs this change replaces: a primary moved to another region needs an address there. The
     * old one stays allocated (retainOnDelete) and DNS follows the new one.
     */
    newAddress?: string[];
}

const PRIMARY = "mail-mail-example-com";
const MX2 = "mail-mx2-example-com"; // Docker host
const MX3 = "mail-mx3-example-com"; // EC2
const CF = "mail-dns-example-com-cf";
const R53 = "mail-dns-example-com-r53";
const SNAPSHOT = "snap-0123456789abcdef0";
/** The ACME challenge zone and the hosts' rights to write there (components/acme-challenge.ts). */
const ACME = "mail-acme-challenge";
/** What every ACME setting reaches: the primary's ACME step and the relays' environment, nothing that holds mail. */
const ACME_SETTING_REACHES: Record<string, Operation> = {
    [`${PRIMARY}-acme`]: "update",
    [`${MX2}-relay`]: "replace",
    [`${MX3}-relay`]: "replace",
    [`${MX2}-recipients`]: "replace",
    [`${MX3}-recipients`]: "replace",
    [`${MX2}-queue`]: "same",
    [`${MX3}-queue-disk`]: "same",
    [`${PRIMARY}-vm`]: "same",
    [`${MX3}-vm`]: "same",
    [`${PRIMARY}-config`]: "same",
    [`${ACME}-zone`]: "same",
    [`${ACME}-mail-example-com`]: "same",
    [`${ACME}-mx2-example-com-key`]: "same",
};
/** prod as deployed before issue 10: no tls section, MTA-STS testing (the b888360 config). */
function beforeAcme(t: Raw): Raw {
    delete t.tls;
    delete t.policy;
    return t;
}
/** The MTA-STS site (components/mta-sts-site.ts) and the DKIM keys (components/dkim-keys.ts). */
const MTA_STS = "mail-mta-sts";
const DKIM = "mail-dkim";
/** What snapshots the primary's mail volume (lib/render/mail-snapshots.ts). */
const SNAPSHOT_TYPES = ["aws:dlm/lifecyclePolicy:LifecyclePolicy", "aws:iam/role:Role", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"];

/** prod's IPv6 turned off (prod has it on every host): the before of "IPv6 is turned on" too. */
const IPV6_OFF = "IPv6 is turned off: the AAAA records go, each instance gives up its address in place, the relay containers are recreated";

const CHANGES: Change[] = [
    {
        title: "a recipient joins",
        change: (t) => t.recipients.push("carol@example.com"),
        expect: { [`${PRIMARY}-config`]: "update", [`${MX2}-recipients`]: "update", [`${MX3}-recipients`]: "update", [`${MX2}-relay`]: "same", [`${MX3}-relay`]: "same" },
    },
    {
        title: "a recipient leaves",
        change: (t) => (t.recipients = t.recipients.filter((r: string) => r !== "bob@example.com")),
        expect: { [`${PRIMARY}-config`]: "update", [`${MX2}-recipients`]: "update", [`${MX3}-recipients`]: "update", [`${MX2}-relay`]: "same" },
    },
    {
        title: "DMARC moves to reject",
        change: (t) => (t.policy = { ...t.policy, dmarc: "reject" }),
        expect: { [`${CF}-_dmarc-example-com-txt-dmarc`]: "update", [`${R53}-_dmarc-example-com-txt`]: "update" },
    },
    {
        // prod enforces (tls.acme): back to testing, the way out when a certificate cannot be renewed.
        title: "MTA-STS moves back to testing (a new policy id)",
        change: (t) => (t.policy = { ...t.policy, mtaSts: "testing" }),
        expect: { [`${CF}-_mta-sts-example-com-txt-mta-sts`]: "update", [`${R53}-_mta-sts-example-com-txt`]: "update" },
    },
    {
        title: "the MTA-STS mode changes: the served policy is rewritten in place, the site and its certificate stay",
        change: (t) => (t.policy = { ...(t.policy ?? {}), mtaSts: t.policy?.mtaSts === "testing" ? "enforce" : "testing" }),
        expect: {
            [`${MTA_STS}-policy-file`]: "update",
            [`${MTA_STS}-cdn`]: "same",
            [`${MTA_STS}-cert`]: "same",
            [`${MTA_STS}-bucket`]: "same",
            [`${CF}-_mta-sts-example-com-txt-mta-sts`]: "update",
            [`${R53}-_mta-sts-example-com-txt`]: "update",
            [`${CF}-mta-sts-example-com-cname`]: "same",
            [`${R53}-mta-sts-example-com-cname`]: "same",
        },
    },
    {
        title: "a domain is added: a new MTA-STS certificate (new before old), the same distribution with one more name",
        change: (t) => {
            t.domains.push("example.net");
            t.dns.providers.find((p: Raw) => p.kind === "cloudflare").zoneIds["example.net"] = "0123456789abcdef0123456789abcdef";
            t.recipients.push("@example.net");
        },
        expect: {
            // A certificate's names cannot change; CloudFront takes the new one in place.
            [`${MTA_STS}-cert`]: "replace",
            [`${MTA_STS}-cert-validation`]: "replace",
            [`${MTA_STS}-cdn`]: "update",
            [`${MTA_STS}-policy-file`]: "same",
            [`${CF}-mta-sts-example-com-cname`]: "same",
            [`${CF}-mta-sts-example-com-acm-validation`]: "same",
            [`${R53}-mta-sts-example-com-acm-validation`]: "same",
            "mail-dns-example-net-cf-mta-sts-example-net-cname": "create",
            "mail-dns-example-net-r53-mta-sts-example-net-cname": "create",
            "mail-dns-example-net-cf-mta-sts-example-net-acm-validation": "create",
            "mail-dns-example-net-r53-mta-sts-example-net-acm-validation": "create",
        },
        // The relays accept the new domain: their containers are recreated (as for a queue lifetime change).
        mayReplace: /^mail-mx[23]-example-com-(relay|recipients)$/,
    },
    {
        title: "DKIM is turned off: its key, records and key step go; the primary stops handing mail to the signer",
        change: (t) => delete t.dkim,
        expect: {
            [`${DKIM}-mc2026`]: "delete",
            [`${CF}-mc2026-_domainkey-example-com-txt-dkim`]: "delete",
            [`${R53}-mc2026-_domainkey-example-com-txt`]: "delete",
            [`${PRIMARY}-dkim-key`]: "delete",
            [`${PRIMARY}-config`]: "update",
        },
        mayDelete: /^mail-dkim$/,
    },
    {
        title: "the alert address changes",
        change: (t) => (t.alerts.email = "oncall@example.com"),
        expect: {
            // SNS: a new subscription and confirmation mail (endpoint forces a new one); nothing holds mail there.
            "mail-alerts-email": "replace",
            [`${CF}-_dmarc-example-com-txt-dmarc`]: "update",
            [`${R53}-_smtp-_tls-example-com-txt`]: "update",
            // It is also the CA's contact (tls.acme.email unset): the primary's ACME step is updated and
            // the relay containers are recreated with the new ACME_EMAIL (a new ACME account, then a new
            // certificate); their queues stay.
            [`${PRIMARY}-acme`]: "update",
            [`${MX2}-relay`]: "replace",
            [`${MX3}-relay`]: "replace",
            [`${MX2}-recipients`]: "replace",
            [`${MX3}-recipients`]: "replace",
            [`${MX2}-queue`]: "same",
            [`${MX3}-queue-disk`]: "same",
        },
    },
    {
        title: "a relay is added",
        change: (t) =>
            t.relays.push({
                hostname: "mx4.example.com",
                priority: 40,
                placement: { kind: "docker", host: "ssh://deploy@relay-waw.example.net", address: "198.51.100.44", site: { provider: "ovh", city: "warsaw" } },
            }),
        expect: {
            "mail-mx4-example-com-relay": "create",
            "mail-mx4-example-com-queue": "create",
            [`${CF}-example-com-mx-to-mx4-example-com`]: "create",
            [`${R53}-example-com-mx`]: "update",
            [`${PRIMARY}-config`]: "update",
            [`${MX2}-relay`]: "same",
        },
    },
    {
        title: "a relay is removed (its queue volume is protected: the up stops until it is drained)",
        change: (t) => t.relays.pop(),
        expect: { [`${CF}-example-com-mx-to-mx3-example-com`]: "delete", [`${R53}-example-com-mx`]: "update", [`${PRIMARY}-config`]: "update", [`${MX3}-queue-disk`]: "delete" },
        // Its ACME right and _acme-challenge records go with it.
        mayDelete: /^mail-(mx3-example-com($|-)|alerts-mx3-example-com-|dns-example-com-(cf|r53)-(_acme-challenge-)?mx3-example-com-|acme-challenge-mx3-example-com$|aws-us-east-2$)/,
    },
    {
        title: "an MX priority changes",
        change: (t) => (t.relays[1].priority = 40),
        expect: { [`${CF}-example-com-mx-to-mx3-example-com`]: "update", [`${R53}-example-com-mx`]: "update" },
    },
    {
        title: "the queue lifetime changes",
        change: (t) => (t.queueLifetime = "10d"),
        // The container is recreated (envs force it), old one first; the queue stays on its volume.
        expect: {
            [`${MX2}-relay`]: "replace",
            [`${MX3}-relay`]: "replace",
            // Run again on the new container, so that it gets today's recipients, not its create-time copy.
            [`${MX2}-recipients`]: "replace",
            [`${MX3}-recipients`]: "replace",
            [`${MX2}-queue`]: "same",
            [`${MX3}-queue`]: "same",
            [`${MX3}-queue-disk`]: "same",
        },
    },
    {
        title: "the primary moves to a newer AMI (set explicitly)",
        change: (t) => (t.primary.placement.ami = "ami-0fedcba9876543210"),
        expect: {
            [`${PRIMARY}-vm`]: "replace",
            [`${PRIMARY}-mail-attach`]: "replace",
            [`${PRIMARY}-mail`]: "same",
            [`${PRIMARY}-eip`]: "same",
            [`${PRIMARY}-eip-assoc`]: "replace",
            // Every step runs again on the new instance.
            [`${PRIMARY}-ready`]: "replace",
            [`${PRIMARY}-config`]: "replace",
            [`${PRIMARY}-mailboxes`]: "replace",
            [`${PRIMARY}-admin-keys`]: "replace",
            [`${PRIMARY}-acme`]: "replace",
            [`${PRIMARY}-dkim-key`]: "replace",
            // The instance role stays: the new instance is associated with the same profile.
            [`${PRIMARY}-role`]: "same",
            [`${PRIMARY}-profile`]: "same",
        },
        replacesInstance: true,
    },
    {
        title: "the primary's instance type changes",
        change: (t) => (t.primary.placement.instanceType = "t3.medium"),
        expect: { [`${PRIMARY}-vm`]: "stop-start", [`${PRIMARY}-mail`]: "same", [`${PRIMARY}-config`]: "same" },
    },
    {
        title: "an admin key is added",
        change: (t) => t.admin.sshKeys.push("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecondExampleKeyReplaceWithYourOwn000000000 second@example.com"),
        // Pushed at once; also in the user data (for a replacement), which AWS applies by a stop and start.
        expect: { [`${PRIMARY}-admin-keys`]: "update", [`${MX3}-admin-keys`]: "update", [`${PRIMARY}-vm`]: "stop-start", [`${MX3}-vm`]: "stop-start", [`${PRIMARY}-mail`]: "same" },
    },
    {
        title: "the EC2 relay moves to a newer AMI (everything on its Docker is made again; the queue disk stays)",
        change: (t) => (t.relays[1].placement.ami = "ami-0fedcba9876543211"),
        expect: {
            [`${MX3}-vm`]: "replace",
            [`${MX3}-queue-disk-attach`]: "replace",
            [`${MX3}-queue-disk`]: "same",
            [`${MX3}-eip`]: "same",
            [`${MX3}-eip-assoc`]: "replace",
            [`${MX3}-ready`]: "replace",
            [`${MX3}-admin-keys`]: "replace",
            [`${MX3}-queue`]: "replace",
            [`${MX3}-relay`]: "replace",
            [`${MX3}-recipients`]: "replace",
            [`${MX3}-image`]: "update",
            [`${MX2}-relay`]: "same",
        },
        replacesInstance: true,
    },
    {
        title: "the snapshot schedule, retention and copy region change (the policy is updated in place)",
        change: (t) => (t.primary.placement.snapshots = { everyHours: 6, keep: 28, copyToRegion: "eu-west-3", copyKeepDays: 30 }),
        expect: { [`${PRIMARY}-mail-snapshots`]: "update", [`${PRIMARY}-mail`]: "same", [`${PRIMARY}-vm`]: "same", [`${PRIMARY}-snapshots-role`]: "same" },
    },
    {
        title: "the primary is rebuilt in another region from a copied snapshot (its region is lost)",
        change: (t) => {
            const p = t.primary.placement;
            Object.assign(p, { region: "eu-north-1", ami: "ami-0123456789abcdef1", restoreFromSnapshot: SNAPSHOT });
            p.snapshots.copyToRegion = "eu-west-3";
        },
        expect: {
            // A new volume from the snapshot; the old one is protected: the up stops at its delete until
            // it is unprotected (then it leaves the stack and stays in the cloud: retainOnDelete).
            [`${PRIMARY}-mail-from-${SNAPSHOT}`]: "create",
            [`${PRIMARY}-mail`]: "delete",
            [`${PRIMARY}-vm`]: "replace",
            [`${PRIMARY}-mail-attach`]: "replace",
            [`${PRIMARY}-eip`]: "replace",
            [`${PRIMARY}-eip-assoc`]: "replace",
            [`${PRIMARY}-ready`]: "replace",
            [`${PRIMARY}-config`]: "replace",
            [`${PRIMARY}-mailboxes`]: "replace",
            [`${PRIMARY}-admin-keys`]: "replace",
            [`${PRIMARY}-acme`]: "replace",
            [`${PRIMARY}-dkim-key`]: "replace",
            [`${PRIMARY}-mail-snapshots`]: "replace",
            // The client-access name follows the new address at both providers, in place.
            [`${CF}-mail-example-com-a`]: "update",
            [`${R53}-mail-example-com-a`]: "update",
            // The relays find the primary through MX and A as usual: nothing of theirs changes.
            [`${MX2}-relay`]: "same",
            [`${MX3}-relay`]: "same",
            [`${MX2}-queue`]: "same",
            [`${MX3}-queue-disk`]: "same",
        },
        replacesInstance: true,
        newAddress: [`${PRIMARY}-eip`],
        // Everything regional of the primary is made again in its new region (the firewall, DLM's role;
        // its instance role and profile, declared with its region's provider, and the ACME right on it).
        mayReplace: /^mail-(mail-example-com-(fw-|snapshots-role|role$|profile$)|acme-challenge-mail-example-com$)/,
        mayDelete: /^mail-aws-eu-central-1$/,
    },
    {
        title: "the primary's mail volume is restored from a snapshot in its own zone (its disk is lost)",
        change: (t) => (t.primary.placement.restoreFromSnapshot = SNAPSHOT),
        expect: {
            [`${PRIMARY}-mail-from-${SNAPSHOT}`]: "create",
            [`${PRIMARY}-mail`]: "delete",
            [`${PRIMARY}-mail-attach`]: "replace",
            // Same zone: the instance stays (its user data names the new volume). The runbook replaces it
            // in the same up (`pulumi up --replace`), so that it boots with that bootstrap.
            [`${PRIMARY}-vm`]: "stop-start",
            [`${PRIMARY}-eip`]: "same",
            [`${PRIMARY}-mail-snapshots`]: "same",
            [`${CF}-mail-example-com-a`]: "same",
        },
    },
    {
        title: "the ACME CA changes (here to Let's Encrypt's staging directory): each host orders anew, only the relay containers are made again",
        change: (t) => (t.tls.acme.directoryUrl = "https://acme-staging-v02.api.letsencrypt.org/directory"),
        expect: ACME_SETTING_REACHES,
    },
    {
        title: "the CA's contact and the renewal window change",
        change: (t) => Object.assign(t.tls.acme, { email: "pki@example.com", renewDaysBefore: 45 }),
        expect: ACME_SETTING_REACHES,
    },
    {
        title: "tls.acme is removed (MTA-STS back to testing): the zone, the rights and the records go; instances keep running",
        change: (t) => {
            delete t.tls;
            t.policy.mtaSts = "testing";
        },
        expect: {
            [`${ACME}-zone`]: "delete",
            [`${ACME}-mx2-example-com-key`]: "delete",
            [`${PRIMARY}-acme`]: "delete",
            [`${PRIMARY}-vm`]: "update",
            [`${MX3}-vm`]: "update",
            [`${PRIMARY}-config`]: "update",
            [`${MX2}-relay`]: "replace",
            [`${MX3}-relay`]: "replace",
            [`${MX2}-recipients`]: "replace",
            [`${MX3}-recipients`]: "replace",
            [`${MX2}-queue`]: "same",
            [`${MX3}-queue-disk`]: "same",
        },
        mayDelete: /^mail-(acme-challenge($|-)|mail-example-com-(role|profile)$|mx3-example-com-(role|profile)$|dns-example-com-(cf|r53)-(_acme-challenge-|acme-challenge-example-com-ns))/,
    },
    {
        title: "the last mailbox user is removed (the passwd-file is emptied, not left behind)",
        change: (t) => (t.mailboxes = []),
        expect: { [`${PRIMARY}-mailboxes`]: "same" },
    },
    {
        title: IPV6_OFF,
        change: (t) => {
            t.primary.placement.ipv6 = false;
            t.relays[1].placement.ipv6 = false;
            delete t.relays[0].placement.address6;
        },
        expect: {
            // ipv6AddressCount changes in place (UnassignIpv6Addresses): no stop, no replacement.
            [`${PRIMARY}-vm`]: "update",
            [`${MX3}-vm`]: "update",
            ...Object.fromEntries(["mail", "mx2", "mx3"].flatMap((h) => [[`${CF}-${h}-example-com-aaaa`, "delete"], [`${R53}-${h}-example-com-aaaa`, "delete"]])),
            [`${PRIMARY}-fw-out-all-ipv6`]: "delete",
            [`${MX3}-fw-out-all-ipv6`]: "delete",
            // inet_protocols back to ipv4 (a restart of Postfix), the relays' IPv6 addresses out of its table.
            [`${PRIMARY}-config`]: "update",
            // INET_PROTOCOLS leaves their environment: recreated, old one first; the queues stay.
            [`${MX2}-relay`]: "replace",
            [`${MX3}-relay`]: "replace",
            [`${MX2}-recipients`]: "replace",
            [`${MX3}-recipients`]: "replace",
            [`${MX2}-queue`]: "same",
            [`${MX3}-queue-disk`]: "same",
            [`${PRIMARY}-mail`]: "same",
            [`${PRIMARY}-eip`]: "same",
            [`${CF}-mail-example-com-a`]: "same",
            // The rules for port 25 on ::/0 stay: they predate IPv6 addresses and are inert without one.
            [`${PRIMARY}-fw-in-25-ipv6`]: "same",
        },
    },
];

const DNS_TYPES = ["cloudflare:index/dnsRecord:DnsRecord", "aws:route53/record:Record"];
const HOLDS_MAIL_OR_IS_POINTED_AT = Object.keys(HOLDS_MAIL);

/** What a DNS resource is: its zone, name and type (and, for MX, the host it names). */
function dnsIdentity(plan: Plan, name: string): string {
    const r = plan.resources.find((x) => x.name === name)!;
    const i = r.inputs;
    return `${r.type} ${String(i.zoneId)} ${String(i.name)} ${String(i.type)}${i.type === "MX" && r.type.startsWith("cloudflare") ? ` ${String(i.content)}` : ""}`;
}

describe("day 2: each config change, before and after, as the engine would apply it", () => {
    const dir = mkdtempSync(join(tmpdir(), "day2-"));
    let base: Plan;
    /** prod before tls.acme: a stack deployed by the previous version. */
    let preAcme: Plan;
    const results = new Map<string, { plan: Plan; diff: ResourceChange[] }>();

    before(async () => {
        const runs = await inBatches([
            () => runPlanAsync(["--stack", "prod", "--json"]),
            ...CHANGES.map((c, i) => () => {
                const t = rawTopology("prod") as Raw;
                c.change(t);
                return runPlanAsync(["--stack", `change${i}`, "--config", writeStackFile(dir, `change${i}`, t), "--json"]);
            }),
            () => runPlanAsync(["--stack", "pre-acme", "--config", writeStackFile(dir, "pre-acme", beforeAcme(rawTopology("prod") as Raw)), "--json"]),
        ]);
        const pre = runs.pop()!;
        assert.equal(pre.status, 0, `prod before tls.acme: ${pre.stderr}`);
        preAcme = pre.plan!;
        runs.forEach((run, i) => assert.equal(run.status, 0, `${i === 0 ? "prod" : CHANGES[i - 1].title}: ${run.stderr}`));
        base = runs[0].plan!;
        CHANGES.forEach((c, i) => results.set(c.title, { plan: runs[i + 1].plan!, diff: diffPlans(base, runs[i + 1].plan!) }));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    for (const change of CHANGES) {
        it(change.title, () => {
            const { plan, diff } = results.get(change.title)!;
            const by = new Map(diff.map((d) => [d.name, d]));
            for (const [name, operation] of Object.entries(change.expect)) {
                assert.ok(by.has(name), `${name} is not in either plan`);
                assert.equal(by.get(name)!.operation, operation, `${name}: ${JSON.stringify(by.get(name))}`);
            }
            // No DNS record disappears and comes back under a new name: that is a delete and a create
            // of the same record, which Route53 refuses and which leaves a gap at Cloudflare.
            const deleted = diff.filter((d) => d.operation === "delete" && DNS_TYPES.includes(d.type)).map((d) => dnsIdentity(base, d.name));
            const created = diff.filter((d) => d.operation === "create" && DNS_TYPES.includes(d.type)).map((d) => dnsIdentity(plan, d.name));
            assert.deepEqual(deleted.filter((id) => created.includes(id)), [], "a DNS record is deleted and created again");
            // Nothing that holds mail, and nothing others point at, is replaced; a delete is refused
            // (protect) or leaves it in place (retainOnDelete).
            for (const d of diff.filter((x) => HOLDS_MAIL_OR_IS_POINTED_AT.includes(x.type) && holdsBytes(base, x.name))) {
                if (d.operation === "replace" && change.newAddress?.includes(d.name)) {
                    assert.equal(d.type, "aws:ec2/eip:Eip", `${d.name}: only an address may be new`);
                    assert.equal(base.resources.find((r) => r.name === d.name)!.options.retainOnDelete, true, `${d.name}: the old address must stay allocated`);
                    continue;
                }
                assert.notEqual(d.operation, "replace", `${d.name} would be replaced: ${d.because.join(", ")}`);
                if (d.operation === "delete") assert.ok(d.protect || d.retainOnDelete, `${d.name} would be deleted`);
            }
            for (const d of diff.filter((x) => x.type === "aws:ec2/instance:Instance")) {
                if (d.operation === "replace") {
                    assert.ok(change.replacesInstance, `${d.name} replaced by a config-only change: ${d.because.join(", ")}`);
                    // The mail volume can be attached to one instance at a time.
                    assert.equal(d.deleteBeforeReplace, true, `${d.name} must be deleted before its replacement`);
                }
            }
            // Nothing is replaced or deleted that the change's expectations do not name.
            const unexpected = diff.filter(
                (d) =>
                    (d.operation === "replace" || d.operation === "delete") &&
                    change.expect[d.name] !== d.operation &&
                    !(d.operation === "delete" && change.mayDelete?.test(d.name)) &&
                    !(d.operation === "replace" && change.mayReplace?.test(d.name) && !HOLDS_MAIL_OR_IS_POINTED_AT.includes(d.type)),
            );
            assert.deepEqual(unexpected.map((d) => `${d.operation} ${d.name} (${d.because.join(", ")})`), []);
        });
    }

    it("turns snapshots on for a stack deployed before them: the volume gets its tag in place, nothing else changes", () => {
        // The stack as deployed by the code before snapshots: the same plan without the policy, its role,
        // and the volume's target tag (a config then had no snapshots block; now it must have one).
        const deployed: Plan = structuredClone(base);
        // (By name too: the hosts' instance roles are IAM roles as well.)
        deployed.resources = deployed.resources.filter((r) => !(SNAPSHOT_TYPES.includes(r.type) && r.name.includes("-snapshots")));
        const volume = deployed.resources.find((r) => r.name === `${PRIMARY}-mail`)!;
        delete (volume.inputs.tags as Record<string, string>)[SNAPSHOT_TARGET_TAG];
        const changes = diffPlans(deployed, base).filter((d) => d.operation !== "same");
        assert.deepEqual(changes.map((d) => `${d.operation} ${d.name}${d.changed.length > 0 ? ` (${d.changed.join(", ")})` : ""}`).sort(), [
            `create ${PRIMARY}-mail-snapshots`,
            `create ${PRIMARY}-snapshots-role`,
            `create ${PRIMARY}-snapshots-role-access`,
            `update ${PRIMARY}-mail (tags)`,
        ]);
    });

    it("snapshots the mail volume by its tag, restored volume included, and creates a restored one from the configured snapshot", () => {
        const policy = base.resources.find((r) => r.name === `${PRIMARY}-mail-snapshots`)!;
        const targetTags = (policy.inputs.policyDetails as { targetTags: Record<string, string> }).targetTags;
        const volume = base.resources.find((r) => r.name === `${PRIMARY}-mail`)!;
        assert.deepEqual(targetTags, { [SNAPSHOT_TARGET_TAG]: "mail.example.com" });
        assert.equal((volume.inputs.tags as Record<string, string>)[SNAPSHOT_TARGET_TAG], "mail.example.com");
        assert.equal(volume.inputs.snapshotId, undefined);
        for (const title of CHANGES.filter((c) => c.title.includes("rebuilt") || c.title.includes("restored")).map((c) => c.title)) {
            const { plan } = results.get(title)!;
            const restored = plan.resources.find((r) => r.name === `${PRIMARY}-mail-from-${SNAPSHOT}`)!;
            assert.equal(restored.inputs.snapshotId, SNAPSHOT, title);
            assert.equal((restored.inputs.tags as Record<string, string>)[SNAPSHOT_TARGET_TAG], "mail.example.com", title);
            assert.deepEqual(restored.options, { protect: true, retainOnDelete: true }, title);
            // The one attachment now holds the restored volume.
            const attach = plan.resources.find((r) => r.name === `${PRIMARY}-mail-attach`)!;
            assert.equal(attach.inputs.volumeId, restored.id, title);
        }
    });

    it("takes the AMI from the config, checked against the instance type's architecture, and keeps user data live", () => {
        const instances = base.resources.filter((r) => r.type === "aws:ec2/instance:Instance");
        assert.equal(instances.length, 2);
        const configured = rawTopology("prod") as Raw;
        assert.deepEqual(instances.map((i) => i.inputs.ami).sort(), [configured.primary.placement.ami, configured.relays[1].placement.ami].sort());
        // A replacement must boot with today's bootstrap and keys, so nothing is ignored.
        for (const i of instances) assert.equal(i.options.ignoreChanges, undefined, i.name);
    });

    it("replaces an instance whose type changes architecture, and says why", () => {
        const t = structuredClone(base);
        const vm = t.resources.find((r) => r.name === `${PRIMARY}-vm`)!;
        vm.inputs.instanceType = "t4g.small";
        const change = diffPlans(base, t).find((d) => d.name === vm.name)!;
        assert.equal(change.operation, "replace");
        assert.match(change.because.join(" "), /architecture/);
    });

    it("carries every DNS record a deployed stack holds (names from the b888360 plan) to its new name by an alias", () => {
        const legacy = (JSON.parse(readFileSync(join(__dirname, "fixtures", "legacy-dns-names.json"), "utf8")) as Record<string, string[]>).prod;
        // The legacy names carried TXT content: they are matched with prod's config of then (MTA-STS testing).
        const known = new Set(preAcme.resources.filter((r) => DNS_TYPES.includes(r.type)).flatMap((r) => [r.name, ...(r.options.aliases ?? [])].map((n) => `${r.type} ${n}`)));
        assert.ok(legacy.length > 20);
        assert.deepEqual(legacy.filter((l) => !known.has(l)), [], "deployed records that would be deleted and created again");
        // And the diff sees moves, not deletes and creates.
        const old: Plan = structuredClone(base);
        for (const r of old.resources) if (r.options.aliases?.[0] !== undefined) r.name = r.options.aliases[0];
        const moves = diffPlans(old, base).filter((d) => DNS_TYPES.includes(d.type));
        assert.ok(moves.some((d) => d.movedFrom !== undefined));
        assert.deepEqual(moves.filter((d) => d.operation !== "same").map((d) => `${d.operation} ${d.name}`), []);
    });

    it("rotates DKIM by adding a key: the signing key's successor is created, the retired one kept, none replaced", async () => {
        const withDkim = (dkim: Raw) => {
            const t = rawTopology("prod") as Raw;
            t.dkim = dkim;
            return t;
        };
        const [before, rotated, dropped] = await inBatches([
            () => runPlanAsync(["--stack", "dkim-before", "--config", writeStackFile(dir, "dkim-before", withDkim({ selector: "mc2026" })), "--json"]),
            () => runPlanAsync(["--stack", "dkim-rotated", "--config", writeStackFile(dir, "dkim-rotated", withDkim({ selector: "mc2027", retiredSelectors: ["mc2026"] })), "--json"]),
            () => runPlanAsync(["--stack", "dkim-dropped", "--config", writeStackFile(dir, "dkim-dropped", withDkim({ selector: "mc2027" })), "--json"]),
        ]);
        for (const run of [before, rotated, dropped]) assert.equal(run.status, 0, run.stderr);
        const changes = (from: Plan, to: Plan) =>
            diffPlans(from, to)
                .filter((d) => d.operation !== "same" && (d.type === "tls:index/privateKey:PrivateKey" || /_domainkey/.test(d.name)))
                .map((d) => `${d.operation} ${d.name}`)
                .sort();
        assert.deepEqual(changes(before.plan!, rotated.plan!), [
            `create ${DKIM}-mc2027`,
            `create ${CF}-mc2027-_domainkey-example-com-txt-dkim`,
            `create ${R53}-mc2027-_domainkey-example-com-txt`,
        ]);
        assert.deepEqual(
            diffPlans(before.plan!, rotated.plan!).filter((d) => d.operation === "replace" || d.operation === "delete"),
            [],
            "a rotation replaces or deletes nothing",
        );
        // Once no mail signed with it can be in flight, the retired selector goes: its key and records only.
        assert.deepEqual(changes(rotated.plan!, dropped.plan!), [
            `delete ${DKIM}-mc2026`,
            `delete ${CF}-mc2026-_domainkey-example-com-txt-dkim`,
            `delete ${R53}-mc2026-_domainkey-example-com-txt`,
        ]);
        const key = rotated.plan!.resources.find((r) => r.name === `${DKIM}-mc2027`)!;
        assert.deepEqual(key.inputs, { algorithm: "RSA", rsaBits: 2048 });
        assert.ok(REPLACEMENT_RULES[key.type], "no replacement rule for the DKIM key");
    });

    it("turns ACME on for a stack deployed before it: rights and records are created, instances updated in place, relay containers recreated", () => {
        const diff = diffPlans(preAcme, base);
        const by = new Map(diff.map((d) => [d.name, d]));
        const op = (name: string) => `${by.get(name)?.operation} ${name}${by.get(name)?.changed.length ? ` (${by.get(name)!.changed.join(", ")})` : ""}`;
        // The role and its profile are associated with the running instances; the relay's container asks
        // the metadata service through Docker's bridge (one more hop). No stop, no replacement.
        assert.equal(op(`${PRIMARY}-vm`), `update ${PRIMARY}-vm (iamInstanceProfile)`);
        assert.equal(op(`${MX3}-vm`), `update ${MX3}-vm (iamInstanceProfile, metadataOptions)`);
        const created = diff.filter((d) => d.operation === "create").map((d) => d.name);
        for (const name of [
            `${ACME}-zone`,
            `${ACME}-mail-example-com`,
            `${ACME}-mx3-example-com`,
            `${ACME}-mx2-example-com-user`,
            `${ACME}-mx2-example-com-access`,
            `${ACME}-mx2-example-com-key`,
            `${PRIMARY}-role`,
            `${PRIMARY}-profile`,
            `${MX3}-role`,
            `${MX3}-profile`,
            `${PRIMARY}-acme`,
            `${CF}-_acme-challenge-mx2-example-com-cname`,
            `${R53}-_acme-challenge-mx2-example-com-cname`,
            `${CF}-acme-challenge-example-com-ns-0`,
            `${CF}-acme-challenge-example-com-ns-3`,
            `${R53}-acme-challenge-example-com-ns`,
        ]) {
            assert.ok(created.includes(name), `${name} is not created: ${created.join(", ")}`);
        }
        // The mail configuration points Postfix at the ACME pair; the relays get the ACME variables and
        // PRIMARY_TLS=verify (their queues stay); MTA-STS says enforce.
        assert.equal(by.get(`${PRIMARY}-config`)?.operation, "update");
        assert.equal(by.get(`${CF}-_mta-sts-example-com-txt-mta-sts`)?.operation, "update");
        const replaced = diff.filter((d) => d.operation === "replace").map((d) => `${d.name} (${d.because.join(", ")})`).sort();
        assert.deepEqual(replaced, [
            `${MX2}-recipients (triggers (names ${MX2}-relay, replaced))`,
            `${MX2}-relay (envs)`,
            `${MX3}-recipients (triggers (names ${MX3}-relay, replaced))`,
            `${MX3}-relay (envs)`,
        ]);
        assert.deepEqual(diff.filter((d) => d.operation === "delete").map((d) => d.name), []);
        for (const volume of [`${PRIMARY}-mail`, `${MX2}-queue`, `${MX3}-queue-disk`]) assert.equal(by.get(volume)?.operation, "same", volume);
    });

    it("turns IPv6 on for a stack deployed without it: AAAA records created, the instances get an address in place, the relays recreated", () => {
        const diff = diffPlans(results.get(IPV6_OFF)!.plan, base);
        const op = (name: string) => {
            const d = diff.find((x) => x.name === name);
            return `${d?.operation} ${name}${d?.changed.length ? ` (${d.changed.join(", ")})` : ""}`;
        };
        // AssignIpv6Addresses on the running instance: neither stopped nor replaced (lib/plan/replacement.ts).
        assert.equal(op(`${PRIMARY}-vm`), `update ${PRIMARY}-vm (ipv6AddressCount)`);
        assert.equal(op(`${MX3}-vm`), `update ${MX3}-vm (ipv6AddressCount)`);
        const created = diff.filter((d) => d.operation === "create").map((d) => d.name).sort();
        assert.deepEqual(created, [
            ...["mail", "mx2", "mx3"].flatMap((h) => [`${CF}-${h}-example-com-aaaa`, `${R53}-${h}-example-com-aaaa`]),
            `${PRIMARY}-fw-out-all-ipv6`,
            `${MX3}-fw-out-all-ipv6`,
        ].sort());
        assert.deepEqual(
            diff.filter((d) => d.operation === "replace").map((d) => d.name).sort(),
            [`${MX2}-recipients`, `${MX2}-relay`, `${MX3}-recipients`, `${MX3}-relay`],
            "only the relay containers (INET_PROTOCOLS=all), old one first, queues kept",
        );
        assert.deepEqual(diff.filter((d) => d.operation === "delete").map((d) => d.name), []);
        assert.equal(op(`${PRIMARY}-config`), `update ${PRIMARY}-config (stdin)`);
    });

    it("rotates a Docker relay's ACME key (pulumi up --replace of its -key): the container is recreated with it, its queue stays", () => {
        const rotated: Plan = structuredClone(base);
        const key = rotated.resources.find((r) => r.name === `${ACME}-mx2-example-com-key`)!;
        // Any input that forces a new key stands for --replace here.
        key.inputs.pgpKey = "keybase:rotation";
        const changes = diffPlans(base, rotated)
            .filter((d) => d.operation !== "same")
            .map((d) => `${d.operation} ${d.name}`)
            .sort();
        assert.deepEqual(changes, [`replace ${ACME}-mx2-example-com-key`, `replace ${MX2}-recipients`, `replace ${MX2}-relay`]);
    });

    it("has a provider source for every resource type the stack declares", () => {
        const custom = new Set(base.resources.map((r) => r.type).filter((t) => !t.startsWith("mailcontinuity:") && !t.startsWith("pulumi:providers:")));
        for (const type of custom) {
            assert.ok(REPLACEMENT_RULES[type], `no replacement rule for ${type}`);
            assert.match(REPLACEMENT_RULES[type].source, /\.go|\.d\.ts/, `${type}: the rule must cite the provider's source`);
        }
    });
});
