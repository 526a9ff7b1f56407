// npm run plan -- --stack <name> [--json] [--config <file>]
// Evaluates index.ts under Pulumi mocks with Pulumi.<name>.yaml: every resource and DNS record the
// stack would declare, with no credentials and no Pulumi CLI. Not a substitute for `pulumi preview`
// (no diff against real state), but the same program and the same config.
import * as pulumi from "@pulumi/pulumi";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { installPlanMocks } from "../lib/plan/mocks";
import { buildPlan, duplicateUrns, formatPlanText } from "../lib/plan/report";
import { listStacks, readStackConfig, stackFile } from "../lib/plan/stack-config";

const PROJECT = "mailcontinuity";
const projectDir = join(__dirname, "..");

function fail(message: string): never {
    process.stderr.write(`${message.trimEnd()}\n`);
    process.exit(1);
}

function resolved(value: unknown): Promise<unknown> {
    return pulumi.Output.isInstance(value) ? new Promise((resolve) => value.apply((v) => resolve(v))) : Promise.resolve(value);
}

async function main(): Promise<void> {
    let options: { stack?: string; json?: boolean; help?: boolean; config?: string };
    try {
        options = parseArgs({ options: { stack: { type: "string" }, json: { type: "boolean" }, config: { type: "string" }, help: { type: "boolean", short: "h" } } }).values;
    } catch (error) {
        fail(`${(error as Error).message}\nusage: npm run plan -- --stack <name> [--json] [--config <file>]`);
    }
    if (options.help || options.stack === undefined) {
        const stacks = listStacks(projectDir).join(", ");
        const usage = `usage: npm run plan -- --stack <name> [--json] [--config <file>]\n  --json    stable, sorted JSON for diffing two plans\n  --config  read this file instead of Pulumi.<name>.yaml (e.g. a config proposed in a pull request)\nstacks: ${stacks}`;
        if (options.help) {
            process.stdout.write(`${usage}\n`);
            return;
        }
        fail(`--stack is required\n${usage}`);
    }
    const stack = options.stack;
    let config;
    try {
        config = readStackConfig(options.config ?? stackFile(projectDir, stack), PROJECT);
    } catch (error) {
        fail((error as Error).message);
    }
    if (!options.json) process.stderr.write(`evaluating index.ts for stack ${stack} under mocks...\n`);

    const registrations = await installPlanMocks(PROJECT, stack);
    pulumi.runtime.setAllConfig(config.config, config.secretKeys);
    let program: Record<string, unknown>;
    try {
        program = await import(join(projectDir, "index.ts"));
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
    const plan = buildPlan(stack, registrations, outputs);
    process.stdout.write(options.json ? `${JSON.stringify(plan, null, 2)}\n` : formatPlanText(plan));
}

main().catch((error: unknown) => fail(`plan failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`));
