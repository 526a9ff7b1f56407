// npm run lab [-- --keep] [--json] [--only a,b] [--list] [--soak <messages> [--burst <n>]] [--relay-runtime process|container]
// Deploys Pulumi.lab.yaml's topology into network namespaces, runs the failover drill (or, with
// --soak, its fault scenarios with larger bursts until that many messages were acknowledged), prints
// the table, and removes everything it made (also on failure, Ctrl-C or SIGTERM) unless --keep.
// --relay-runtime container runs the relays as containers of the relay image (lab/relays.ts).
// Scenarios that need a lab started otherwise (Scenario.lab: acme, partner) run after the others, each
// kind in a lab of its own.
import { parseArgs } from "node:util";
import { writeBenchmarkSection } from "./benchmarks-doc";
import { withLab } from "./bootstrap";
import { Drill, SCENARIOS, type LabKind, type Row, type Scenario } from "./drill";
import { LabUnavailable } from "./prerequisites";
import { RELAY_RUNTIMES, parseRelayRuntime, type RelayRuntimeKind } from "./relays";
import { SOAK_HEADING, SOAK_SCENARIOS, defaultBurst, formatSoakTable, soak, soakSection } from "./soak";
import { formatTable } from "./table";

const USAGE = `usage: npm run lab [-- --keep] [--json] [--only id,id] [--list] [--soak <messages> [--burst <messages per scenario>]] [--relay-runtime ${RELAY_RUNTIMES.join("|")}]\n`;

function fail(message: string, code = 1): never {
    process.stderr.write(`lab: ${message.trimEnd()}\n`);
    process.exit(code);
}

function positiveInteger(option: string, value: string | undefined): number | undefined {
    if (value === undefined) return undefined;
    const n = Number(value.replace(/[_,]/g, ""));
    if (!Number.isInteger(n) || n < 1) fail(`--${option} takes a positive whole number of messages, not ${value}`);
    return n;
}

async function drill(drillRun: Drill, scenarios: readonly Scenario[], progress: (m: string) => void): Promise<Row[]> {
    const rows: Row[] = [];
    for (const scenario of scenarios) {
        progress(`scenario ${scenario.id} ...`);
        try {
            const row = await scenario.run(drillRun);
            rows.push(row);
            progress(`  ${row.pass ? "pass" : "FAIL"}: ${row.detail}`);
        } catch (error) {
            rows.push({ scenario: scenario.id, sent: 0, acknowledged: 0, delivered: 0, duplicates: 0, lost: 0, bounced: 0, seconds: 0, recoverySeconds: null, pass: false, detail: `error: ${(error as Error).message}` });
            progress(`  FAIL: ${(error as Error).message}`);
            break; // the lab's state is unknown after an error: later scenarios would mislead
        }
    }
    return rows;
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            keep: { type: "boolean" },
            json: { type: "boolean" },
            only: { type: "string" },
            list: { type: "boolean" },
            soak: { type: "string" },
            burst: { type: "string" },
            "relay-runtime": { type: "string" },
            help: { type: "boolean", short: "h" },
        },
    });
    if (values.help) {
        process.stdout.write(USAGE);
        return;
    }
    if (values.list) {
        process.stdout.write(`${SCENARIOS.map((s) => s.id).join("\n")}\n`);
        return;
    }
    let relayRuntime: RelayRuntimeKind;
    try {
        relayRuntime = parseRelayRuntime(values["relay-runtime"]);
    } catch (error) {
        fail((error as Error).message);
    }
    const only = values.only?.split(",").map((s) => s.trim());
    const target = positiveInteger("soak", values.soak);
    const burstOption = positiveInteger("burst", values.burst);
    if (burstOption !== undefined && target === undefined) fail("--burst goes with --soak");
    const pool = target === undefined ? SCENARIOS : SOAK_SCENARIOS;
    const unknown = only?.filter((id) => !pool.some((s) => s.id === id)) ?? [];
    if (unknown.length > 0) fail(`unknown ${target === undefined ? "" : "soak "}scenario ${unknown.join(", ")}; ${target === undefined ? "--list shows them" : `the soak runs ${SOAK_SCENARIOS.map((s) => s.id).join(", ")}`}`);
    const chosen = pool.filter((s) => only === undefined || only.includes(s.id));
    // The ACME lab's DNS hook and Pebble's roots are files of the lab, which relay containers do not see.
    const processesOnly = relayRuntime === "container" ? chosen.filter((s) => s.lab === "acme") : [];
    if (processesOnly.length > 0 && only !== undefined) fail(`${processesOnly.map((s) => s.id).join(", ")} runs the relays as processes only (leave out --relay-runtime container)`);
    const scenarios = chosen.filter((s) => !processesOnly.includes(s));

    const started = Date.now();
    const progress = (message: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
    const options = { command: "lab", keep: values.keep, relayRuntime, log: progress };

    if (target !== undefined) {
        const burst = burstOption ?? defaultBurst(target);
        progress(`soak: ${scenarios.map((s) => s.id).join(", ")} in bursts of ${burst} until ${target.toLocaleString("en")} messages are acknowledged`);
        const result = await withLab({ ...options, idPrefix: "s" }, ({ lab, id }) => soak(new Drill(lab, id, progress), target, burst, progress, scenarios));
        const seconds = (Date.now() - started) / 1000;
        writeBenchmarkSection(SOAK_HEADING, soakSection(result, seconds, relayRuntime));
        progress("wrote its section of docs/BENCHMARKS.md");
        if (values.json) process.stdout.write(`${JSON.stringify({ ...result, relayRuntime, seconds }, null, 2)}\n`);
        else {
            const verdict = result.passed ? "nothing acknowledged was lost; duplicates within bounds" : `SOAK FAILED:\n  ${result.problems.join("\n  ")}`;
            process.stdout.write(`\n${formatSoakTable(result)}\n${verdict}\n(${(seconds / 60).toFixed(1)} minutes)\n`);
        }
        process.exit(result.passed ? 0 : 1);
    }

    if (processesOnly.length > 0) progress(`leaving out ${processesOnly.map((s) => s.id).join(", ")}: it runs the relays as processes only`);
    const rows: Row[] = [];
    const labs: { kind: LabKind | undefined; says?: string }[] = [{ kind: undefined }, { kind: "acme", says: "with certificates from its ACME CA" }, { kind: "partner", says: "whose third MX is a partner's stock Postfix" }];
    for (const { kind, says } of labs) {
        const group = scenarios.filter((s) => s.lab === kind);
        if (group.length === 0) continue;
        if (kind !== undefined) progress(`a lab ${says} for ${group.map((s) => s.id).join(", ")}`);
        rows.push(...(await withLab({ ...options, acme: kind === "acme", partner: kind === "partner" }, ({ lab, id }) => drill(new Drill(lab, id, progress), group, progress))));
    }
    const passed = rows.length > 0 && rows.every((r) => r.pass) && scenarios.length === rows.length;
    if (values.json) process.stdout.write(`${JSON.stringify({ passed, relayRuntime, seconds: (Date.now() - started) / 1000, rows }, null, 2)}\n`);
    else process.stdout.write(`\n${formatTable(rows)}\n${passed ? "every scenario passed: nothing acknowledged was lost" : "SOME SCENARIOS FAILED"}\n`);
    process.exit(passed ? 0 : 1);
}

main().catch((error: unknown) => {
    if (error instanceof LabUnavailable) fail(error.message);
    fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
});
