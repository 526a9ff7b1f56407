import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { dump } from "js-yaml";
import assert from "node:assert/strict";
import type { Plan } from "../lib/plan/report";
import { TopologyError, parseTopology } from "../lib/topology/validate";
import { listStacks, readRawTopology } from "../lib/plan/stack-config";

export const ROOT = join(__dirname, "..");

export function stackNames(): string[] {
    return listStacks(ROOT);
}

export function rawTopology(stack: string): Record<string, unknown> {
    return readRawTopology(ROOT, stack);
}

export interface PlanRun {
    status: number | null;
    stdout: string;
    stderr: string;
    plan?: Plan;
}

export function runPlan(args: string[]): PlanRun {
    const result = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/plan.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    const run: PlanRun = { status: result.status, stdout: result.stdout, stderr: result.stderr };
    if (result.status === 0 && args.includes("--json")) run.plan = JSON.parse(result.stdout) as Plan;
    return run;
}

export function hasCommand(command: string): boolean {
    return spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" }).status === 0;
}

/**
 * Skips a test whose prerequisite is missing on a developer's machine, but fails it under CI, where
 * .ci/run installs everything: a silent skip there would hide a broken install step.
 */
export function requirePrerequisite(t: TestContext, ok: boolean, what: string): boolean {
    if (ok) return true;
    if (process.env.CI) throw new Error(`prerequisite missing under CI: ${what} (.ci/run should have installed it)`);
    t.skip(`prerequisite missing: ${what}`);
    return false;
}

/** runPlan without blocking the event loop, so several plans evaluate side by side. */
export function runPlanAsync(args: string[]): Promise<PlanRun> {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts/plan.ts"), ...args], { cwd: ROOT });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
        child.on("close", (status) => {
            clearTimeout(timer);
            const run: PlanRun = { status, stdout, stderr };
            if (status === 0 && args.includes("--json")) run.plan = JSON.parse(stdout) as Plan;
            resolve(run);
        });
    });
}

/** Runs tasks with at most `limit` at a time (the machine has two cores). */
export async function inBatches<T>(tasks: (() => Promise<T>)[], limit = 2): Promise<T[]> {
    const results: T[] = new Array(tasks.length);
    let next = 0;
    await Promise.all(
        Array.from({ length: Math.min(limit, tasks.length) }, async () => {
            while (next < tasks.length) {
                const i = next++;
                results[i] = await tasks[i]();
            }
        }),
    );
    return results;
}

/** Writes a stack config holding this topology (and any other keys) to a temporary file. */
export function writeStackFile(dir: string, stack: string, topology: unknown, extra: Record<string, unknown> = {}): string {
    const file = join(dir, `Pulumi.${stack}.yaml`);
    writeFileSync(file, dump({ config: { "mailcontinuity:topology": topology, ...extra } }));
    return file;
}

/** Every problem a raw topology has, one line each ("topology.<path>: <message>"); none when it parses. */
export function problemsOf(raw: unknown): string[] {
    try {
        parseTopology(raw);
    } catch (error) {
        assert.ok(error instanceof TopologyError, `expected a TopologyError, got ${String(error)}`);
        return error.message.split("\n").slice(1).map((l) => l.trim());
    }
    return [];
}
