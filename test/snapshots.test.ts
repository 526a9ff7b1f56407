// Snapshots of the primary's mail volume and the rebuild of a lost primary (docs/rebuild-primary.md):
// the config (refusals with their path, defaults), the DLM policy the plan declares from it, the restored
// volume, and the TTL of the name users' mail programs use.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Plan, PlannedResource } from "../lib/plan/report";
import { CLIENT_ACCESS_TTL_SECONDS } from "../lib/render/records";
import { SNAPSHOT_TARGET_TAG, awsPartitionOf, dlmServiceRolePolicyArn, snapshotPolicyDetails } from "../lib/render/mail-snapshots";
import type { AwsPrimaryPlacement } from "../lib/topology/schema";
import { parseTopology } from "../lib/topology/validate";
import { inBatches, problemsOf, rawTopology, runPlanAsync, writeStackFile } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SNAPSHOT = "snap-0123456789abcdef0";


function mutated(change: (t: Raw) => void): Raw {
    const t = rawTopology("prod") as Raw;
    change(t);
    return t;
}

describe("snapshots and restore in the config", () => {
    it("fills in the documented defaults and needs only the copy region", () => {
        const t = parseTopology(mutated((t) => (t.primary.placement.snapshots = { copyToRegion: "eu-west-3" })));
        const placement = t.primary.placement as AwsPrimaryPlacement;
        assert.deepEqual(placement.snapshots, { everyHours: 24, keep: 7, copyToRegion: "eu-west-3", copyKeepDays: 7 });
        assert.equal(placement.restoreFromSnapshot, undefined);
    });

    // [what is wrong, how to break the prod config, the path the message must name, words it must say]
    const badConfigs: [string, (t: Raw) => void, string, RegExp][] = [
        ["no snapshots on an AWS primary", (t) => delete t.primary.placement.snapshots, "topology.primary.placement.snapshots", /give snapshots: \{copyToRegion/],
        ["copies in the primary's own region", (t) => (t.primary.placement.snapshots.copyToRegion = "eu-central-1"), "topology.primary.placement.snapshots.copyToRegion", /die with it; name another region/],
        ["copies where an EC2 relay runs", (t) => (t.primary.placement.snapshots.copyToRegion = "us-east-2"), "topology.primary.placement.snapshots.copyToRegion", /us-east-2 is where relays\[1\] runs; a primary rebuilt from these copies could not run there/],
        ["an interval DLM does not take", (t) => (t.primary.placement.snapshots.everyHours = 5), "topology.primary.placement.snapshots.everyHours", /1, 2, 3, 4, 6, 8, 12, 24 hours/],
        ["no snapshot kept", (t) => (t.primary.placement.snapshots.keep = 0), "topology.primary.placement.snapshots.keep", /expected number to be >=1/i],
        ["more than DLM keeps", (t) => (t.primary.placement.snapshots.keep = 1001), "topology.primary.placement.snapshots.keep", /<=1000/],
        ["copies kept no day", (t) => (t.primary.placement.snapshots.copyKeepDays = 0), "topology.primary.placement.snapshots.copyKeepDays", />=1/],
        ["a copy region that is not one", (t) => (t.primary.placement.snapshots.copyToRegion = "Frankfurt"), "topology.primary.placement.snapshots.copyToRegion", /AWS region/],
        ["an unknown key", (t) => (t.primary.placement.snapshots.hourly = true), "topology.primary.placement.snapshots", /Unrecognized key: "hourly"/],
        ["a restore from something that is not a snapshot id", (t) => (t.primary.placement.restoreFromSnapshot = "vol-0123456789abcdef0"), "topology.primary.placement.restoreFromSnapshot", /snapshot id such as snap-/],
    ];
    for (const [what, change, path, words] of badConfigs) {
        it(`refuses ${what}, naming ${path}`, () => {
            const problems = problemsOf(mutated(change));
            const line = problems.find((p) => p.startsWith(`${path}: `));
            assert.ok(line, `no problem at ${path}; got ${JSON.stringify(problems)}`);
            assert.match(line, words);
        });
    }

    it("accepts a restore from a snapshot id, and an external primary without snapshots", () => {
        assert.deepEqual(problemsOf(mutated((t) => (t.primary.placement.restoreFromSnapshot = SNAPSHOT))), []);
        assert.deepEqual(problemsOf(rawTopology("lab")), []);
    });
});

describe("the snapshot policy, as DLM is told it", () => {
    const snapshots = { everyHours: 6, keep: 28, copyToRegion: "eu-west-3", copyKeepDays: 30 };

    it("schedules, keeps and copies (encrypted, default key) what the config says, for the tagged volume", () => {
        const d = snapshotPolicyDetails("mail.example.com", snapshots);
        assert.deepEqual(d.targetTags, { [SNAPSHOT_TARGET_TAG]: "mail.example.com" });
        assert.deepEqual(d.resourceTypes, ["VOLUME"]);
        const [schedule] = d.schedules;
        assert.equal(d.schedules.length, 1);
        assert.deepEqual(schedule.createRule, { interval: 6, intervalUnit: "HOURS", times: "00:00" });
        assert.deepEqual(schedule.retainRule, { count: 28 });
        assert.deepEqual(schedule.crossRegionCopyRules, [{ target: "eu-west-3", encrypted: true, copyTags: true, retainRule: { interval: 30, intervalUnit: "DAYS" } }]);
        // DLM allows only letters, digits, spaces, _ and - in names.
        assert.match(schedule.name, /^[0-9A-Za-z _-]{1,120}$/);
    });

    it("names AWS's managed DLM policy in the region's partition", () => {
        assert.equal(dlmServiceRolePolicyArn("eu-central-1"), "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole");
        assert.equal(awsPartitionOf("us-gov-west-1"), "aws-us-gov");
        assert.equal(awsPartitionOf("cn-north-1"), "aws-cn");
    });
});

describe("the plan (mocks): snapshots of the mail volume, a restore, the client-access TTL", () => {
    const dir = mkdtempSync(join(tmpdir(), "snapshots-"));
    const plans: Record<string, Plan> = {};
    const byName = (plan: Plan, name: string): PlannedResource => {
        const r = plan.resources.find((x) => x.name === name);
        assert.ok(r, `${name} is not in the plan`);
        return r;
    };

    before(async () => {
        const restored = mutated((t) => (t.primary.placement.restoreFromSnapshot = SNAPSHOT));
        const longTtl = mutated((t) => (t.dns.ttl = 3600));
        const runs = await inBatches([
            () => runPlanAsync(["--stack", "prod", "--json"]),
            () => runPlanAsync(["--stack", "us", "--json"]),
            () => runPlanAsync(["--stack", "restored", "--config", writeStackFile(dir, "restored", restored), "--json"]),
            () => runPlanAsync(["--stack", "longttl", "--config", writeStackFile(dir, "longttl", longTtl), "--json"]),
        ]);
        ["prod", "us", "restored", "longttl"].forEach((name, i) => {
            assert.equal(runs[i].status, 0, `${name}: ${runs[i].stderr}`);
            plans[name] = runs[i].plan!;
        });
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    for (const [stack, primary, region] of [
        ["prod", "mail-mail-example-com", "eu-central-1"],
        ["us", "mail-mail-example-org", "us-west-2"],
    ] as const) {
        it(`${stack}: a DLM policy in the primary's region with the configured schedule, retention and copy region, targeting the volume's tag`, () => {
            const configured = (rawTopology(stack) as Raw).primary.placement.snapshots;
            const plan = plans[stack];
            const policy = byName(plan, `${primary}-mail-snapshots`);
            assert.equal(policy.type, "aws:dlm/lifecyclePolicy:LifecyclePolicy");
            assert.equal(policy.provider, `mail-aws-${region}`);
            const details = policy.inputs.policyDetails as ReturnType<typeof snapshotPolicyDetails>;
            const [schedule] = details.schedules;
            assert.equal(schedule.createRule.interval, configured.everyHours);
            assert.equal(schedule.retainRule.count, configured.keep);
            assert.deepEqual(
                schedule.crossRegionCopyRules.map((c) => [c.target, c.encrypted, c.retainRule.interval, c.retainRule.intervalUnit]),
                [[configured.copyToRegion, true, configured.copyKeepDays, "DAYS"]],
            );
            const volume = byName(plan, `${primary}-mail`);
            for (const [key, value] of Object.entries(details.targetTags)) assert.equal((volume.inputs.tags as Record<string, string>)[key], value);
            assert.deepEqual(volume.options, { protect: true, retainOnDelete: true });
            // DLM acts as a role with AWS's managed policy, the one the policy names.
            const role = byName(plan, `${primary}-snapshots-role`);
            assert.match(String(role.inputs.assumeRolePolicy), /"Service":"dlm\.amazonaws\.com"/);
            assert.equal(policy.inputs.executionRoleArn, `arn:aws:iam::123456789012:role/${role.id}`);
            const access = byName(plan, `${primary}-snapshots-role-access`);
            assert.deepEqual(access.inputs, { role: role.id, policyArn: "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole" });
            // The relays' queue volumes are not in it: they hold mail only while the primary is away.
            assert.equal((byName(plan, "mail-mx3-example-" + (stack === "prod" ? "com" : "org") + "-queue-disk").inputs.tags as Record<string, string>)[SNAPSHOT_TARGET_TAG], undefined);
        });
    }

    it("with restoreFromSnapshot: a new volume made from that snapshot, attached in place of the old one, snapshotted like it", () => {
        const plan = plans.restored;
        const restored = byName(plan, `mail-mail-example-com-mail-from-${SNAPSHOT}`);
        assert.equal(restored.inputs.snapshotId, SNAPSHOT);
        assert.equal(restored.inputs.size, 50);
        assert.equal(restored.inputs.encrypted, true);
        assert.equal((restored.inputs.tags as Record<string, string>)[SNAPSHOT_TARGET_TAG], "mail.example.com");
        assert.deepEqual(restored.options, { protect: true, retainOnDelete: true });
        assert.equal(plan.resources.find((r) => r.name === "mail-mail-example-com-mail"), undefined);
        assert.equal(byName(plan, "mail-mail-example-com-mail-attach").inputs.volumeId, restored.id);
        // The bootstrap waits for the restored volume (its id, as the NVMe serial shows it), and formats
        // only a disk where blkid finds no file system at all (exit 2): a restored one never.
        const userData = String(byName(plan, "mail-mail-example-com-vm").inputs.userData);
        assert.match(userData, new RegExp(restored.id.replace("-", "")));
        assert.match(userData, /blkid -p "\$dev" >\/dev\/null 2>&1 \|\| found=\$\?/);
        assert.match(userData, /if \[ "\$found" -eq 2 \]; then mkfs\.ext4/);
    });

    it(`publishes the primary's name (the client-access name) with a TTL of at most ${CLIENT_ACCESS_TTL_SECONDS} s at both providers, whatever dns.ttl says`, () => {
        const ttlOf = (plan: Plan, name: string) => plan.dns.filter((d) => d.name === name && d.type === "A").map((d) => `${d.provider} ${d.ttl}`).sort();
        assert.deepEqual(ttlOf(plans.longttl, "mail.example.com"), ["cloudflare 300", "route53 300"]);
        assert.deepEqual(ttlOf(plans.longttl, "mx3.example.com"), ["cloudflare 3600", "route53 3600"]);
        assert.deepEqual(ttlOf(plans.prod, "mail.example.com"), ["cloudflare 300", "route53 300"]);
    });
});
