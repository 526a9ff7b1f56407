// The offline plan of a stack, for the tools that read it (the live checker, the runbook): one
// `scripts/plan.ts --json` in its own process, because the Pulumi runtime holds one program per process.
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { Plan } from "./report";

const PROJECT_DIR = join(__dirname, "..", "..");

export class PlanError extends Error {}

/** Evaluates the stack's index.ts under mocks; rejects with the plan's own message when it cannot. */
export function loadPlan(stack: string, options: { config?: string } = {}): Promise<Plan> {
    const args = ["--import", "tsx", join(PROJECT_DIR, "scripts/plan.ts"), "--stack", stack, "--json", ...(options.config !== undefined ? ["--config", options.config] : [])];
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, args, { cwd: PROJECT_DIR });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", reject);
        child.on("close", (status) => {
            if (status !== 0) reject(new PlanError(`the offline plan of stack ${stack} failed:\n${stderr.trim()}`));
            else resolve(JSON.parse(stdout) as Plan);
        });
    });
}
