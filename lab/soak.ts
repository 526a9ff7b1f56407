// npm run lab -- --soak <messages>: the drill's fault scenarios again and again with larger bursts,
// until at least that many messages were acknowledged; then, per scenario and in total, what was
// acknowledged, delivered, lost (must be 0) and duplicated (at most 0.1%, and only where a relay was
// SIGKILLed: the RFC 1047 window).
import { measured } from "./benchmarks-doc";
import { Drill, SCENARIOS, type Row, type Scenario } from "./drill";
import type { RelayRuntimeKind } from "./relays";
import { formatColumns } from "./table";

/** Its section of docs/BENCHMARKS.md. */
export const SOAK_HEADING = "Soak: the fault scenarios, repeated (`npm run lab -- --soak`)";

/** Duplicates allowed, as a share of the acknowledged messages. */
export const MAX_DUPLICATE_RATIO = 0.001;
/** The only scenario whose duplicates are expected: a relay killed between its fsync and its 250. */
export const DUPLICATES_EXPECTED_IN = "relay-killed";

export const SOAK_SCENARIOS: Scenario[] = SCENARIOS.filter((s) => s.soak);

/** Messages per scenario: the target spread over one round, at least 20 (the drill's) and at most 500. */
export function defaultBurst(target: number): number {
    return Math.min(500, Math.max(20, Math.ceil(target / SOAK_SCENARIOS.length)));
}

export interface SoakTotals {
    scenario: string;
    bursts: number;
    acknowledged: number;
    delivered: number;
    lost: number;
    duplicates: number;
    seconds: number;
    failed: number;
}

export interface SoakResult {
    target: number;
    burst: number;
    rounds: number;
    rows: (Row & { id: string; round: number })[];
    perScenario: SoakTotals[];
    total: SoakTotals;
    passed: boolean;
    /** Why it did not pass, one line each. */
    problems: string[];
}

function sum(scenario: string, rows: readonly Row[]): SoakTotals {
    const add = (f: (r: Row) => number) => rows.reduce((n, r) => n + f(r), 0);
    return {
        scenario,
        bursts: rows.length,
        acknowledged: add((r) => r.acknowledged),
        delivered: add((r) => r.delivered),
        lost: add((r) => r.lost),
        duplicates: add((r) => r.duplicates),
        seconds: add((r) => r.seconds),
        failed: rows.filter((r) => !r.pass).length,
    };
}

/** The verdict over the rows: every burst passed, nothing lost, duplicates only where expected and few. */
export function summarise(target: number, burst: number, rows: SoakResult["rows"], scenarios: readonly Scenario[] = SOAK_SCENARIOS): SoakResult {
    const perScenario = scenarios.map((s) => sum(s.id, rows.filter((r) => r.id === s.id)));
    const total = sum("total", rows);
    const problems: string[] = [];
    if (total.lost > 0) problems.push(`${total.lost} acknowledged messages lost`);
    const ratio = total.acknowledged === 0 ? 0 : total.duplicates / total.acknowledged;
    if (ratio > MAX_DUPLICATE_RATIO) problems.push(`${total.duplicates} duplicates: ${(ratio * 100).toFixed(3)}% of the acknowledged, over ${MAX_DUPLICATE_RATIO * 100}%`);
    for (const t of perScenario) {
        if (t.scenario !== DUPLICATES_EXPECTED_IN && t.duplicates > 0) problems.push(`${t.duplicates} duplicates in ${t.scenario}, where none may happen`);
    }
    for (const r of rows.filter((x) => !x.pass)) problems.push(`round ${r.round} ${r.id}: ${r.detail}`);
    if (total.acknowledged < target) problems.push(`only ${total.acknowledged} of ${target} messages acknowledged`);
    return { target, burst, rounds: Math.max(0, ...rows.map((r) => r.round)), rows, perScenario, total, passed: problems.length === 0, problems };
}

/** Runs the fault scenarios round after round until `target` messages were acknowledged, or one fails. */
export async function soak(drill: Drill, target: number, burst: number, progress: (message: string) => void, scenarios: readonly Scenario[] = SOAK_SCENARIOS): Promise<SoakResult> {
    const rows: SoakResult["rows"] = [];
    let acknowledged = 0;
    for (let round = 1; acknowledged < target; round++) {
        for (const scenario of scenarios) {
            let row: Row;
            try {
                row = await scenario.run(drill, burst);
            } catch (error) {
                // The lab's state is unknown after an error: stop, as the drill does.
                const detail = `error: ${(error as Error).message}`;
                rows.push({ id: scenario.id, round, scenario: scenario.id, sent: burst, acknowledged: 0, delivered: 0, duplicates: 0, lost: 0, bounced: 0, seconds: 0, recoverySeconds: null, pass: false, detail });
                progress(`soak: round ${round} ${scenario.id}: FAIL: ${detail}`);
                return summarise(target, burst, rows, scenarios);
            }
            rows.push({ ...row, id: scenario.id, round });
            acknowledged += row.acknowledged;
            progress(
                `soak: round ${round} ${scenario.id}: ${row.acknowledged}/${row.sent} acked, ${row.delivered} delivered, ${row.lost} lost, ${row.duplicates} dups, ` +
                    `${row.seconds.toFixed(1)} s${row.pass ? "" : ` FAIL: ${row.detail}`}; ${acknowledged.toLocaleString("en")} of ${target.toLocaleString("en")} acknowledged`,
            );
            if (!row.pass) return summarise(target, burst, rows, scenarios);
            if (acknowledged >= target) break;
        }
    }
    return summarise(target, burst, rows, scenarios);
}

function percent(part: number, whole: number): string {
    return whole === 0 ? "0%" : `${((part / whole) * 100).toFixed(3)}%`;
}

const HEADER = ["scenario", "bursts", "acked", "delivered", "lost", "dups", "dups %", "seconds"];

function cells(t: SoakTotals): string[] {
    return [t.scenario, String(t.bursts), String(t.acknowledged), String(t.delivered), String(t.lost), String(t.duplicates), percent(t.duplicates, t.acknowledged), t.seconds.toFixed(0)];
}

export function formatSoakTable(result: SoakResult): string {
    return formatColumns(HEADER, [...result.perScenario.map(cells), cells(result.total)]);
}

/** The same table in Markdown, for docs/BENCHMARKS.md. */
export function markdownSoakTable(result: SoakResult): string {
    const row = (c: string[]) => `| ${c.join(" | ")} |`;
    return [row(HEADER), row(HEADER.map((_, i) => (i === 0 ? "---" : "---:"))), ...result.perScenario.map((t) => row(cells(t))), row(cells(result.total).map((c) => `**${c}**`))].join("\n");
}

/** The section for docs/BENCHMARKS.md; `seconds`: the whole command's wall time. */
export function soakSection(result: SoakResult, seconds: number, relayRuntime: RelayRuntimeKind = "process"): string {
    const runtime = relayRuntime === "process" ? "" : ` --relay-runtime ${relayRuntime}`;
    return `${measured(`npm run lab -- --soak ${result.target}${runtime}`)}

The fault scenarios of the drill (${SOAK_SCENARIOS.map((s) => `\`${s.id}\``).join(", ")}), each with
bursts of ${result.burst} messages instead of the drill's 20-300, round after round until at least
${result.target.toLocaleString("en")} messages were acknowledged by an MX host of the domain: ${result.rounds} rounds. **lost**:
acknowledged, then neither in the primary's Maildir nor bounced to the sender (must be 0);
**dups**: extra copies (at most ${MAX_DUPLICATE_RATIO * 100}%, and only in \`${DUPLICATES_EXPECTED_IN}\`, from the RFC 1047
window); **seconds**: the scenarios' own time.

${markdownSoakTable(result)}

Result: ${result.passed ? "passed" : `FAILED: ${result.problems.join("; ")}`}. Wall time of the whole command (lab up, soak, teardown): ${(seconds / 60).toFixed(1)} minutes.
`;
}
