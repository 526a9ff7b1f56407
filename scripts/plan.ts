// npm run plan -- --stack <name> [--json] [--config <file>] [--strict] [--show-secrets]
// npm run plan -- --stack <name> --diff <git-ref> [--json] [--fail-on warning]
// Evaluates index.ts under Pulumi mocks with Pulumi.<name>.yaml: every resource and DNS record the
// stack would declare, with no credentials and no Pulumi CLI. Not a substitute for `pulumi preview`
// (no diff against real state), but the same program and the same config.
import * as pulumi from "@pulumi/pulumi";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { installPlanMocks } from "../lib/plan/mocks";
import { buildPlan, duplicateUrns, formatPlanText, type Plan } from "../lib/plan/report";
import { buildDiffReport, formatDiffMarkdown } from "../lib/plan/diff-report";
import { listStacks, readStackConfig, stackFile } from "../lib/plan/stack-config";
import { CONFIG_KEY, parseTopology } from "../lib/topology/validate";
import { deploymentProblems, formatDeploymentProblems } from "../lib/topology/deployable";

const PROJECT = "mailcontinuity";
const projectDir = join(__dirname, "..");
const USAGE = "usage: npm run plan -- --stack <name> [--json] [--config <file>] [--strict] [--show-secrets] [--diff <git-ref> [--fail-on warning]]";
/** Exit status of --diff --fail-on warning when it ran and found warnings (1 means it could not run). */
const EXIT_WARNINGS = 3;

function fail(message: string): never {
    process.stderr.write(`${message.trimEnd()}\n`);
    process.exit(1);
}

function resolved(value: unknown): Promise<unknown> {
    return pulumi.Output.isInstance(value) ? new Promise((resolve) => value.apply((v) => resolve(v))) : Promise.resolve(value);
}

/**
 * The SDK records where each resource was declared by formatting a full, source-mapped stack trace per
 * registration (Resource.callsites in @pulumi/pulumi's resource.js). The offline plan shows no source
 * positions, and with a few hundred resources those traces cost seconds, so it skips them.
 */
function skipSourcePositions(): void {
    process.setSourceMapsEnabled(false);
    const resource = pulumi.Resource as unknown as { callsites?: () => unknown[] };
    if (typeof resource.callsites === "function") resource.callsites = () => [];
}

async function main(): Promise<void> {
    let options: {
        stack?: string;
        json?: boolean;
        help?: boolean;
        config?: string;
        strict?: boolean;
        "show-secrets"?: boolean;
        diff?: string;
        "fail-on"?: string;
        "project-dir"?: string;
    };
    try {
        options = parseArgs({
            options: {
                stack: { type: "string" },
                json: { type: "boolean" },
                config: { type: "string" },
                strict: { type: "boolean" },
                "show-secrets": { type: "boolean" },
                diff: { type: "string" },
                "fail-on": { type: "string" },
                "project-dir": { type: "string" },
                help: { type: "boolean", short: "h" },
            },
        }).values;
    } catch (error) {
        fail(`${(error as Error).message}\n${USAGE}`);
    }
    if (options.help || options.stack === undefined) {
        const stacks = listStacks(projectDir).join(", ");
        const usage = [
            USAGE,
            "  --json          stable, sorted JSON for diffing two plans",
            "  --config        read this file instead of Pulumi.<name>.yaml (e.g. a config proposed in a pull request)",
            "  --strict        also refuse what a real deployment refuses (reserved domains, documentation addresses, sample ids)",
            "  --show-secrets  show secret inputs (plaintext config values only; encrypted ones cannot be read offline)",
            "  --diff <ref>    what this change does compared with <ref> (code and config): warnings first, then",
            "                  resources, DNS per provider and the MX table; Markdown, or JSON with --json",
            `  --fail-on warning  with --diff: exit ${EXIT_WARNINGS} when there are warnings (exit 0 otherwise, 1 when it cannot run)`,
            `stacks: ${stacks}`,
        ].join("\n");
        if (options.help) {
            process.stdout.write(`${usage}\n`);
            return;
        }
        fail(`--stack is required\n${usage}`);
    }
    const stack = options.stack;
    if (options["fail-on"] !== undefined && options["fail-on"] !== "warning") fail(`--fail-on takes "warning"\n${USAGE}`);
    if (options.diff !== undefined) return runDiff(stack, options.diff, { json: options.json === true, failOnWarning: options["fail-on"] === "warning", config: options.config });
    const dir = options["project-dir"] ?? projectDir;
    let config;
    try {
        config = readStackConfig(options.config ?? stackFile(dir, stack), PROJECT);
    } catch (error) {
        fail((error as Error).message);
    }
    const rawTopology = config.config[CONFIG_KEY] === undefined ? undefined : (JSON.parse(config.config[CONFIG_KEY]) as unknown);
    if (options.strict && rawTopology !== undefined) {
        let problems: ReturnType<typeof deploymentProblems> = [];
        try {
            problems = deploymentProblems(parseTopology(rawTopology));
        } catch {
            // An invalid topology is reported, with every path, by the program itself below.
        }
        if (problems.length > 0) fail(formatDeploymentProblems(problems));
    }
    if (!options.json) process.stderr.write(`evaluating index.ts for stack ${stack} under mocks...\n`);

    skipSourcePositions();
    const registrations = await installPlanMocks(PROJECT, stack, { showSecrets: options["show-secrets"] === true });
    pulumi.runtime.setAllConfig(config.config, config.secretKeys);
    let program: Record<string, unknown>;
    try {
        program = await import(join(dir, "index.ts"));
    } catch (error) {
        if (pulumi.RunError.isInstance(error as Error)) fail((error as Error).message);
        throw error;
    }
    const outputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(program)) {
        if (name !== "default" && name !== "__esModule") outputs[name] = await resolved(value);
    }
    await pulumi.runtime.disconnect();

    const duplicates = duplicateUrns(registrations);
    if (duplicates.length > 0) fail(`resource names are not unique; Pulumi would refuse:\n  ${duplicates.join("\n  ")}`);
    const plan = buildPlan(stack, registrations, outputs, rawTopology);
    process.stdout.write(options.json ? `${JSON.stringify(plan, null, 2)}\n` : formatPlanText(plan));
}

/** One plan, in its own process (the Pulumi runtime holds one program per process). */
function planInChild(stack: string, dir: string, config: string | undefined): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const args = ["--import", "tsx", join(__dirname, "plan.ts"), "--stack", stack, "--json", "--project-dir", dir, ...(config !== undefined ? ["--config", config] : [])];
    return new Promise((resolve) => {
        const child = spawn(process.execPath, args, { cwd: dir });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
}

function git(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync("git", args, { cwd: projectDir, encoding: "utf8" });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

async function runDiff(stack: string, ref: string, options: { json: boolean; failOnWarning: boolean; config?: string }): Promise<void> {
    if (git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]).status !== 0) fail(`--diff: ${ref} is not a git ref or commit here (try main, origin/main, HEAD~1)`);
    const worktree = mkdtempSync(join(tmpdir(), "mailcontinuity-diff-"));
    // fail() exits at once, past any finally: the worktree is removed first, then the problem reported.
    let problem: string | undefined;
    try {
        problem = await diffIn(worktree, stack, ref, options);
    } finally {
        git(["worktree", "remove", "--force", worktree]);
        rmSync(worktree, { recursive: true, force: true });
        git(["worktree", "prune"]);
    }
    if (problem !== undefined) fail(problem);
}

/** Writes the report and returns nothing, or returns why it could not. */
async function diffIn(worktree: string, stack: string, ref: string, options: { json: boolean; failOnWarning: boolean; config?: string }): Promise<string | undefined> {
    const added = git(["worktree", "add", "--detach", "--quiet", worktree, ref]);
    if (added.status !== 0) return `--diff: cannot check out ${ref}: ${added.stderr.trim()}`;
    // The ref's code runs with this checkout's packages (its node_modules is not in git).
    symlinkSync(join(projectDir, "node_modules"), join(worktree, "node_modules"), "dir");
    const atRef = existsSync(stackFile(worktree, stack));
    if (!options.json) process.stderr.write(`evaluating stack ${stack} at ${ref} and in the working tree, under mocks...\n`);
    const [now, then] = await Promise.all([planInChild(stack, projectDir, options.config), atRef ? planInChild(stack, worktree, undefined) : Promise.resolve(null)]);
    if (now.status !== 0) return `in the working tree:\n${now.stderr.trim()}`;
    if (then !== null && then.status !== 0) return `at ${ref}:\n${then.stderr.replaceAll(worktree, `<${ref}>`).trim()}`;
    const report = buildDiffReport(stack, ref, then === null ? null : (JSON.parse(then.stdout) as Plan), JSON.parse(now.stdout) as Plan);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatDiffMarkdown(report));
    if (options.failOnWarning && report.warnings.length > 0) {
        process.stderr.write(`${report.warnings.length} warning(s) (--fail-on warning)\n`);
        process.exitCode = EXIT_WARNINGS;
    }
    return undefined;
}

main().catch((error: unknown) => fail(`plan failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`));
