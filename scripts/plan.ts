// npm run plan -- --stack <name> [--json] [--config <file>] [--strict] [--show-secrets]
// Evaluates index.ts under Pulumi mocks with Pulumi.<name>.yaml: every resource and DNS record the
// stack would declare, with no credentials and no Pulumi CLI. Not a substitute for `pulumi preview`
// (no diff against real state), but the same program and the same config.
import * as pulumi from "@pulumi/pulumi";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { installPlanMocks } from "../lib/plan/mocks";
import { buildPlan, duplicateUrns, formatPlanText } from "../lib/plan/report";
import { listStacks, readStackConfig, stackFile } from "../lib/plan/stack-config";
import { CONFIG_KEY, parseTopology } from "../lib/topology/validate";
import { deploymentProblems, formatDeploymentProblems } from "../lib/topology/deployable";

const PROJECT = "mailcontinuity";
const projectDir = join(__dirname, "..");
const USAGE = "usage: npm run plan -- --stack <name> [--json] [--config <file>] [--strict] [--show-secrets]";

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
    let options: { stack?: string; json?: boolean; help?: boolean; config?: string; strict?: boolean; "show-secrets"?: boolean };
    try {
        options = parseArgs({
            options: {
                stack: { type: "string" },
                json: { type: "boolean" },
                config: { type: "string" },
                strict: { type: "boolean" },
                "show-secrets": { type: "boolean" },
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
            `stacks: ${stacks}`,
        ].join("\n");
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
    if (options.strict && config.config[CONFIG_KEY] !== undefined) {
        let problems: ReturnType<typeof deploymentProblems> = [];
        try {
            problems = deploymentProblems(parseTopology(JSON.parse(config.config[CONFIG_KEY])));
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
