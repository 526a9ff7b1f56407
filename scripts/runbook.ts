// npm run runbook -- --stack <name> [--stdout] [--check]
// Renders the stack's incident runbook from its offline plan into docs/runbook-<name>.md (lib/runbook/).
// --stdout prints it instead; --check writes nothing and exits 1 when the committed file differs (CI).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { loadPlan } from "../lib/plan/load";
import { listStacks } from "../lib/plan/stack-config";
import { renderRunbook } from "../lib/runbook/render";

const projectDir = join(__dirname, "..");
const USAGE = "usage: npm run runbook -- --stack <name> [--stdout] [--check]";

/** Where a stack's runbook is committed. */
export function runbookPath(stack: string): string {
    return join(projectDir, "docs", `runbook-${stack}.md`);
}

function fail(message: string, status = 2): never {
    process.stderr.write(`${message.trimEnd()}\n`);
    process.exit(status);
}

async function main(): Promise<void> {
    let options: { stack?: string; stdout?: boolean; check?: boolean; help?: boolean };
    try {
        options = parseArgs({ options: { stack: { type: "string" }, stdout: { type: "boolean" }, check: { type: "boolean" }, help: { type: "boolean", short: "h" } } }).values;
    } catch (error) {
        fail(`${(error as Error).message}\n${USAGE}`);
    }
    const stacks = listStacks(projectDir);
    if (options.help) {
        process.stdout.write(`${USAGE}\n  --stdout  print the runbook instead of writing it\n  --check   write nothing; exit 1 when docs/runbook-<name>.md is not what this renders\nstacks: ${stacks.join(", ")}\n`);
        return;
    }
    if (options.stack === undefined) fail(`--stack is required (one of: ${stacks.join(", ")})\n${USAGE}`);
    if (!stacks.includes(options.stack)) fail(`no stack ${options.stack}: no Pulumi.${options.stack}.yaml (stacks: ${stacks.join(", ")})`);
    if (options.stdout && options.check) fail(`--stdout and --check exclude each other\n${USAGE}`);

    const stack = options.stack;
    process.stderr.write(`runbook: planning stack ${stack} offline\n`);
    let text: string;
    try {
        text = renderRunbook(await loadPlan(stack));
    } catch (error) {
        fail(`runbook: ${(error as Error).message}`);
    }
    const file = runbookPath(stack);
    const shown = relative(projectDir, file);
    if (options.stdout) {
        process.stdout.write(text);
    } else if (options.check) {
        const committed = existsSync(file) ? readFileSync(file, "utf8") : undefined;
        if (committed !== text) fail(`runbook: ${shown} is ${committed === undefined ? "missing" : "stale"}; regenerate it with npm run runbook -- --stack ${stack}`, 1);
        process.stderr.write(`runbook: ${shown} is current\n`);
    } else {
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, text);
        process.stderr.write(`runbook: wrote ${shown}\n`);
    }
}

if (require.main === module) {
    main().catch((error: unknown) => fail(`runbook: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`));
}
