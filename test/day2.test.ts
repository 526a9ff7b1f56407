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
/** What snapshots the primary's mail volume (lib/render/mail-snapshots.ts). */
const SNAPSHOT_TYPES = ["aws:dlm/lifecyclePolicy:LifecyclePolicy", "aws:iam/role:Role", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"];

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
        change: (t) => (t.policy = { dmarc: "reject" }),
        expect: { [`${CF}-_dmarc-example-com-txt-dmarc`]: "update", [`${R53}-_dmarc-example-com-txt`]: "update" },
    },
    {
        title: "MTA-STS moves to enforce (a new policy id)",
        change: (t) => (t.policy = { mtaSts: "enforce" }),
        expect: { [`${CF}-_mta-sts-example-com-txt-mta-sts`]: "update", [`${R53}-_mta-sts-example-com-txt`]: "update" },
    },
    {
        title: "the alert address changes",
        change: (t) => (t.alerts.email = "oncall@example.com"),
        expect: {
            // SNS: a new subscription and confirmation mail (endpoint forces a new one); nothing holds mail there.
            "mail-alerts-email": "replace",
            [`${CF}-_dmarc-example-com-txt-dmarc`]: "update",
            [`${R53}-_smtp-_tls-example-com-txt`]: "update",
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
        mayDelete: /^mail-(mx3-example-com($|-)|alerts-mx3-example-com-|dns-example-com-(cf|r53)-mx3-example-com-|aws-us-east-2$)/,
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
        // Everything regional of the primary is made again in its new region (the firewall, DLM's role).
        mayReplace: /^mail-mail-example-com-(fw-|snapshots-role)/,
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
        title: "the last mailbox user is removed (the passwd-file is emptied, not left behind)",
        change: (t) => (t.mailboxes = []),
        expect: { [`${PRIMARY}-mailboxes`]: "same" },
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
    const results = new Map<string, { plan: Plan; diff: ResourceChange[] }>();

    before(async () => {
        const runs = await inBatches([
            () => runPlanAsync(["--stack", "prod", "--json"]),
            ...CHANGES.map((c, i) => () => {
                const t = rawTopology("prod") as Raw;
                c.change(t);
                return runPlanAsync(["--stack", `change${i}`, "--config", writeStackFile(dir, `change${i}`, t), "--json"]);
            }),
        ]);
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
        deployed.resources = deployed.resources.filter((r) => !SNAPSHOT_TYPES.includes(r.type));
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
        const known = new Set(base.resources.filter((r) => DNS_TYPES.includes(r.type)).flatMap((r) => [r.name, ...(r.options.aliases ?? [])].map((n) => `${r.type} ${n}`)));
        assert.ok(legacy.length > 20);
        assert.deepEqual(legacy.filter((l) => !known.has(l)), [], "deployed records that would be deleted and created again");
        // And the diff sees moves, not deletes and creates.
        const old: Plan = structuredClone(base);
        for (const r of old.resources) if (r.options.aliases?.[0] !== undefined) r.name = r.options.aliases[0];
        const moves = diffPlans(old, base).filter((d) => DNS_TYPES.includes(d.type));
        assert.ok(moves.some((d) => d.movedFrom !== undefined));
        assert.deepEqual(moves.filter((d) => d.operation !== "same").map((d) => `${d.operation} ${d.name}`), []);
    });

    it("has a provider source for every resource type the stack declares", () => {
        const custom = new Set(base.resources.map((r) => r.type).filter((t) => !t.startsWith("mailcontinuity:") && !t.startsWith("pulumi:providers:")));
        for (const type of custom) {
            assert.ok(REPLACEMENT_RULES[type], `no replacement rule for ${type}`);
            assert.match(REPLACEMENT_RULES[type].source, /\.go|\.d\.ts/, `${type}: the rule must cite the provider's source`);
        }
    });
});
