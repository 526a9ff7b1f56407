// npm run check -- --stack <name> [--json] [--only dns,smtp,policy] [--nameservers <list>]
//                  [--outputs <file>] [--config <file>] [--ca-file <pem>] [--since-last <file>] [--verbose]
// Checks the live domain against the stack's offline plan: every nameserver of each domain, every
// MX host over SMTP (never sending a message), and the mail policies. Exit 0: no problem found
// (warnings may be listed); 1: a problem found; 2: it could not run.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadPlan } from "../lib/plan/load";
import { listStacks } from "../lib/plan/stack-config";
import { parseNameserverList, type Nameserver } from "../lib/check/dns";
import { AREAS, changesSince, formatChanges, formatReport, type Area, type CheckReport } from "../lib/check/findings";
import { runCheck } from "../lib/check/run";
import type { StackOutputs } from "../lib/check/expectation";
import { join } from "node:path";

const EXIT_PROBLEMS = 1;
const EXIT_CANNOT_RUN = 2;
const USAGE =
    "usage: npm run check -- --stack <name> [--json] [--only dns,smtp,policy] [--nameservers <addr|name=addr>,...] [--outputs <file>] [--config <file>] [--ca-file <pem>] [--smtp-port <port>] [--since-last <file>] [--verbose]";

function cannotRun(message: string): never {
    process.stderr.write(`check: ${message.trimEnd()}\n`);
    process.exit(EXIT_CANNOT_RUN);
}

function readText(file: string, what: string): string {
    try {
        return readFileSync(file, "utf8");
    } catch (error) {
        cannotRun(`${what} ${file}: ${(error as Error).message}`);
    }
}

function readJson<T>(file: string, what: string): T {
    try {
        return JSON.parse(readText(file, what)) as T;
    } catch (error) {
        cannotRun(`${what} ${file}: ${(error as Error).message}`);
    }
}

async function main(): Promise<void> {
    let values: Record<string, string | boolean | undefined>;
    try {
        values = parseArgs({
            options: {
                stack: { type: "string" },
                json: { type: "boolean" },
                only: { type: "string" },
                nameservers: { type: "string" },
                outputs: { type: "string" },
                config: { type: "string" },
                "ca-file": { type: "string" },
                "since-last": { type: "string" },
                "smtp-port": { type: "string" },
                verbose: { type: "boolean" },
                help: { type: "boolean", short: "h" },
            },
        }).values;
    } catch (error) {
        cannotRun(`${(error as Error).message}\n${USAGE}`);
    }
    const stacks = listStacks(join(__dirname, ".."));
    if (values.help) {
        process.stdout.write(
            [
                USAGE,
                "  --only         some of dns, smtp, policy (all by default)",
                "  --nameservers  ask these servers instead of the domain's delegation (addresses, or name=address)",
                "  --outputs      `pulumi stack output --json` of the deployed stack: its addresses and nameservers are then",
                "                 compared too (without it, values assigned at deploy time are compared between nameservers only)",
                "  --config       another config file for the stack (as npm run plan takes it): check against that plan",
                "  --ca-file      extra trust roots (PEM) for the MX hosts' and the MTA-STS host's certificates, beside the public ones",
                "  --smtp-port    the port to probe on each MX host instead of 25 (a test instance; senders always use 25)",
                "  --since-last   keep the result in <file> and print only what changed since the last run",
                "  --verbose      list the checks that passed too",
                "exit: 0 no problem (warnings may be listed), 1 a problem found, 2 could not run",
                `stacks: ${stacks.join(", ")}`,
                "",
            ].join("\n"),
        );
        return;
    }
    const stack = values.stack;
    if (typeof stack !== "string") cannotRun(`--stack is required (${stacks.join(", ")})\n${USAGE}`);
    const only = typeof values.only === "string" ? values.only.split(",").map((s) => s.trim()) : [...AREAS];
    const unknown = only.filter((a) => !AREAS.includes(a as Area));
    if (unknown.length > 0) cannotRun(`--only takes ${AREAS.join(", ")}; not ${unknown.join(", ")}`);
    let nameservers: Nameserver[] | undefined;
    try {
        nameservers = typeof values.nameservers === "string" ? parseNameserverList(values.nameservers) : undefined;
    } catch (error) {
        cannotRun((error as Error).message);
    }
    const outputs = typeof values.outputs === "string" ? readJson<StackOutputs>(values.outputs, "--outputs") : undefined;
    const ca = typeof values["ca-file"] === "string" ? [readText(values["ca-file"], "--ca-file")] : undefined;
    const smtpPort = typeof values["smtp-port"] === "string" ? Number(values["smtp-port"]) : undefined;
    if (smtpPort !== undefined && !(Number.isInteger(smtpPort) && smtpPort > 0 && smtpPort < 65536)) cannotRun(`--smtp-port takes a port number, not ${values["smtp-port"]}`);

    if (!values.json) process.stderr.write(`check: evaluating the plan of stack ${stack}...\n`);
    let plan;
    try {
        plan = await loadPlan(stack, typeof values.config === "string" ? { config: values.config } : {});
    } catch (error) {
        cannotRun((error as Error).message);
    }
    if (!values.json) process.stderr.write(`check: asking the nameservers and MX hosts of ${(plan.topology as { domains?: string[] })?.domains?.join(", ") ?? stack}...\n`);
    const { report, unreachable } = await runCheck(plan, { only: only as Area[], nameservers, outputs, ca, smtpPort });

    const sinceLast = values["since-last"];
    if (typeof sinceLast === "string") {
        const last = existsSync(sinceLast) ? readJson<CheckReport>(sinceLast, "--since-last") : null;
        writeFileSync(sinceLast, `${JSON.stringify(report, null, 2)}\n`);
        const changes = last === null ? null : changesSince(last, report);
        if (values.json) process.stdout.write(`${JSON.stringify({ report, changes }, null, 2)}\n`);
        else process.stdout.write(changes === null ? `first run; kept in ${sinceLast}\n${formatReport(report, { verbose: values.verbose === true })}` : formatChanges(changes, report));
    } else {
        process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, { verbose: values.verbose === true }));
    }
    if (unreachable) cannotRun("no nameserver and no MX host could be reached: is there a network? (the findings above say what failed)");
    process.exitCode = report.problems > 0 ? EXIT_PROBLEMS : 0;
}

main().catch((error: unknown) => cannotRun(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`));
