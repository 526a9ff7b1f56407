import type { Row } from "./drill";

/** Columns padded to their widest cell: the first left-aligned, the others right-aligned. */
export function formatColumns(header: readonly string[], body: readonly (readonly string[])[]): string {
    const all = [header, ...body];
    const widths = header.map((_, c) => Math.max(...all.map((row) => row[c].length)));
    const line = (row: readonly string[]) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ");
    return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

export function formatTable(rows: readonly Row[]): string {
    const header = ["scenario", "sent", "acked", "delivered", "dups", "bounced", "seconds", "recovery s", "result"];
    const body = rows.map((r) => [
        r.scenario,
        String(r.sent),
        String(r.acknowledged),
        String(r.delivered),
        String(r.duplicates),
        String(r.bounced),
        r.seconds.toFixed(1),
        r.recoverySeconds === null ? "-" : r.recoverySeconds.toFixed(1),
        r.pass ? "pass" : "FAIL",
    ]);
    return formatColumns(header, body);
}

/** The row of a scenario that delivers no mail (it probes): only attempts and acceptances count. */
export function probeRow(scenario: string, started: number, counts: { sent: number; acknowledged: number }, pass: boolean, detail: string): Row {
    return { scenario, ...counts, delivered: 0, duplicates: 0, lost: 0, bounced: 0, seconds: (Date.now() - started) / 1000, recoverySeconds: null, pass, detail };
}
