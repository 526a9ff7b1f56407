// npm run plan -- --stack <s> --diff <ref>: what a pull request does, read by reviewers. The base is
// HEAD (code and config); the change is a config file given with --config, as a PR would propose it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { DiffReport } from "../lib/plan/diff-report";
import { ROOT, inBatches, rawTopology, runPlanAsync, writeStackFile } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("plan --diff", () => {
    const dir = mkdtempSync(join(tmpdir(), "plan-diff-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const proposed = (name: string, change: (t: Raw) => void): string => {
        const t = rawTopology("prod") as Raw;
        change(t);
        return writeStackFile(dir, name, t);
    };
    const diff = (file: string, ...extra: string[]) => runPlanAsync(["--stack", "prod", "--diff", "HEAD", "--config", file, ...extra]);

    it("shows a DMARC change as one TXT update per provider and nothing else, without warnings", async () => {
        const file = proposed("dmarc", (t) => (t.policy = { ...t.policy, dmarc: "reject" }));
        const [json, markdown, again] = await inBatches([() => diff(file, "--json"), () => diff(file), () => diff(file, "--json")]);
        assert.equal(json.status, 0, json.stderr);
        const report = JSON.parse(json.stdout) as DiffReport;
        assert.deepEqual(report.resources.map((r) => `${r.operation} ${r.name}`).sort(), [
            "update mail-dns-example-com-cf-_dmarc-example-com-txt-dmarc",
            "update mail-dns-example-com-r53-_dmarc-example-com-txt",
        ]);
        assert.deepEqual(
            report.dns.map((d) => `${d.provider} ${d.name} ${d.type}: ${d.before} -> ${d.after}`),
            ["cloudflare", "route53"].map((p) => `${p} _dmarc.example.com TXT: v=DMARC1; p=none; rua=mailto:ops@example.com (ttl 300) -> v=DMARC1; p=reject; rua=mailto:ops@example.com (ttl 300)`),
        );
        assert.deepEqual(report.warnings, []);
        assert.equal(again.stdout, json.stdout, "the JSON must be byte-stable");
        assert.equal(markdown.status, 0);
        assert.match(markdown.stdout, /^### mailcontinuity `prod`: `HEAD` → this change$/m);
        assert.match(markdown.stdout, /\*\*Resources\*\*: 0 to create, 2 to update, 0 to stop-start, 0 to replace, 0 to delete, \d+ unchanged\./);
        assert.match(markdown.stdout, /cloudflare: 0 added, 0 removed, 1 changed; route53: 0 added, 0 removed, 1 changed/);
    });

    it("warns first, loudly, when the primary moves region: its host and its mail volume are replaced", async () => {
        const file = proposed("region", (t) => (t.primary.placement.region = "eu-west-1"));
        const [run, failing] = await inBatches([() => diff(file, "--json"), () => diff(file, "--fail-on", "warning")]);
        assert.equal(run.status, 0, run.stderr);
        const report = JSON.parse(run.stdout) as DiffReport;
        const warnings = report.warnings.map((w) => w.message).join("\n");
        assert.match(warnings, /replace of instance `mail-mail-example-com-vm`/);
        assert.match(warnings, /replace of data volume \(mail or relay queue\) `mail-mail-example-com-mail`.*protected, so `pulumi up` stops here/);
        assert.match(warnings, /replace of Elastic IP .*`mail-mail-example-com-eip`/);
        assert.equal(failing.status, 3, "--fail-on warning exits 3 when there are warnings");
        assert.ok(failing.stdout.indexOf("warning") < failing.stdout.indexOf("**Resources**"), "warnings come first");
    });

    it("warns about a removed recipient, a removed MX host and a shorter queue lifetime", async () => {
        const file = proposed("shrink", (t) => {
            t.recipients = t.recipients.filter((r: string) => r !== "bob@example.com");
            t.relays.pop();
            t.queueLifetime = "5d";
        });
        const run = await diff(file, "--json");
        assert.equal(run.status, 0, run.stderr);
        const kinds = (JSON.parse(run.stdout) as DiffReport).warnings.map((w) => `${w.kind}: ${w.message}`).join("\n");
        assert.match(kinds, /recipient-removed: recipient bob@example\.com is removed: the relays will answer 550/);
        assert.match(kinds, /mx-removed: MX host mx3\.example\.com is removed/);
        assert.match(kinds, /queue-lifetime-shortened: queue lifetime shortened from 7d to 5d/);
        assert.match(kinds, /delete of data volume \(mail or relay queue\) `mail-mx3-example-com-queue-disk`.*protected/);
    });

    it("treats a stack the ref does not have as all new, and names the side and the path of a bad config", async () => {
        const fresh = writeStackFile(dir, "Pulumi.fresh", rawTopology("prod"));
        const bad = proposed("bad", (t) => (t.relays[0].priority = 5));
        const [created, invalid, unknown] = await inBatches([
            () => runPlanAsync(["--stack", "brand-new-stack", "--diff", "HEAD", "--config", fresh, "--json"]),
            () => diff(bad),
            () => runPlanAsync(["--stack", "prod", "--diff", "no-such-ref-anywhere"]),
        ]);
        assert.equal(created.status, 0, created.stderr);
        const report = JSON.parse(created.stdout) as DiffReport;
        assert.equal(report.newStack, true);
        assert.ok(report.resources.length > 50 && report.resources.every((r) => r.operation === "create"));
        assert.equal(invalid.status, 1);
        assert.match(invalid.stderr, /^in the working tree:\n[\s\S]*topology\.relays\[0\]\.priority: priority 5 would make this relay preferred over the primary/m);
        assert.doesNotMatch(invalid.stderr, /at .*\.ts:\d+/, "a stack trace leaked");
        assert.equal(unknown.status, 1);
        assert.match(unknown.stderr, /no-such-ref-anywhere is not a git ref or commit here/);
        // A refused side still removes its temporary worktree (no other test here is running a diff now).
        const worktrees = spawnSync("git", ["worktree", "list", "--porcelain"], { cwd: ROOT, encoding: "utf8" }).stdout;
        assert.deepEqual(worktrees.split("\n").filter((l) => l.includes("mailcontinuity-diff-")), []);
    });
});
