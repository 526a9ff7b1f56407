// What the checker reports: one finding per thing checked, each with what it means and what to do,
// grouped for people by domain and host, and stable for machines (--json) and for --since-last.
export type Area = "dns" | "smtp" | "policy";
export const AREAS: readonly Area[] = ["dns", "smtp", "policy"];

/**
 * problem: mail is at risk now (exit 1). warning: it works, but weaker than it should (a self-signed
 * certificate, an MTA-STS policy not served while in testing mode). note: worth knowing, never
 * wrong (SOA serials that differ between providers).
 */
export type Severity = "ok" | "note" | "warning" | "problem";

export interface Finding {
    area: Area;
    /** The domain or MX host the finding is about: the table's groups. */
    subject: string;
    /** Where it was seen: a nameserver, an MX host's address; "" when it is about the subject as a whole. */
    where: string;
    /** What was checked, e.g. "MX example.com", "STARTTLS", "relay test". */
    check: string;
    severity: Severity;
    detail: string;
    /** For anything but ok: what it means for mail. */
    meaning?: string;
    /** For anything but ok: what to do. */
    action?: string;
}

export interface CheckReport {
    stack: string;
    /** The nameservers asked, per domain: name (or address) and address. */
    nameservers: Record<string, { name: string; address: string }[]>;
    findings: Finding[];
    problems: number;
    warnings: number;
    seconds: number;
}

export function findingKey(f: Pick<Finding, "area" | "subject" | "where" | "check">): string {
    return [f.area, f.subject, f.where, f.check].join(" | ");
}

const ORDER: Record<Severity, number> = { problem: 0, warning: 1, note: 2, ok: 3 };

export function sortFindings(findings: Finding[]): Finding[] {
    return [...findings].sort((a, b) => a.subject.localeCompare(b.subject) || a.area.localeCompare(b.area) || ORDER[a.severity] - ORDER[b.severity] || a.where.localeCompare(b.where) || a.check.localeCompare(b.check));
}

export function summarise(stack: string, nameservers: CheckReport["nameservers"], findings: Finding[], seconds: number): CheckReport {
    const sorted = sortFindings(findings);
    return {
        stack,
        nameservers,
        findings: sorted,
        problems: sorted.filter((f) => f.severity === "problem").length,
        warnings: sorted.filter((f) => f.severity === "warning").length,
        seconds: Math.round(seconds * 100) / 100,
    };
}

function label(severity: Severity): string {
    return severity === "ok" ? "ok" : severity.toUpperCase();
}

function findingLines(f: Finding): string[] {
    const where = f.where === "" ? "" : `${f.where}: `;
    const lines = [`  ${label(f.severity).padEnd(8)} ${f.area.padEnd(6)} ${f.check.padEnd(34)} ${where}${f.detail}`];
    if (f.meaning) lines.push(`  ${"".padEnd(16)}means: ${f.meaning}`);
    if (f.action) lines.push(`  ${"".padEnd(16)}do:    ${f.action}`);
    return lines;
}

/** The human table: per domain and host, the failures first with their meaning and remedy. */
export function formatReport(report: CheckReport, options: { verbose?: boolean } = {}): string {
    const lines: string[] = [];
    for (const [domain, servers] of Object.entries(report.nameservers)) {
        lines.push(`nameservers of ${domain}: ${servers.length === 0 ? "none found" : servers.map((s) => (s.name === s.address ? s.address : `${s.name} (${s.address})`)).join(", ")}`);
    }
    const subjects = [...new Set(report.findings.map((f) => f.subject))];
    for (const subject of subjects) {
        const mine = report.findings.filter((f) => f.subject === subject);
        const ok = mine.filter((f) => f.severity === "ok");
        lines.push("", `${subject}`);
        for (const f of mine.filter((f) => f.severity !== "ok")) lines.push(...findingLines(f));
        if (options.verbose) for (const f of ok) lines.push(...findingLines(f));
        else if (ok.length > 0) lines.push(`  ok       ${ok.length} check${ok.length === 1 ? "" : "s"} passed (${[...new Set(ok.map((f) => f.area))].join(", ")}; --verbose lists them)`);
    }
    lines.push("", `${report.problems} problem(s), ${report.warnings} warning(s), ${report.findings.length} checks, ${report.seconds} s`);
    return `${lines.join("\n")}\n`;
}

export interface Change {
    key: string;
    before: Pick<Finding, "severity" | "detail"> | null;
    after: Pick<Finding, "severity" | "detail"> | null;
}

/** What differs from the last run's report: new findings, findings gone, severity or detail changed. */
export function changesSince(last: CheckReport, now: CheckReport): Change[] {
    const index = (r: CheckReport) => new Map(r.findings.map((f) => [findingKey(f), { severity: f.severity, detail: f.detail }]));
    const before = index(last);
    const after = index(now);
    const changes: Change[] = [];
    for (const key of [...new Set([...before.keys(), ...after.keys()])].sort()) {
        const b = before.get(key) ?? null;
        const a = after.get(key) ?? null;
        if (b === null || a === null || b.severity !== a.severity || b.detail !== a.detail) changes.push({ key, before: b, after: a });
    }
    return changes;
}

export function formatChanges(changes: Change[], now: CheckReport): string {
    if (changes.length === 0) return `no change since the last run (${now.problems} problem(s), ${now.warnings} warning(s))\n`;
    const lines = changes.map((c) => {
        if (c.before === null) return `new      ${label(c.after!.severity).padEnd(8)} ${c.key}: ${c.after!.detail}`;
        if (c.after === null) return `gone     ${label(c.before.severity).padEnd(8)} ${c.key}`;
        return `changed  ${label(c.before.severity)} -> ${label(c.after.severity)} ${c.key}: ${c.after.detail}`;
    });
    lines.push(`${now.problems} problem(s), ${now.warnings} warning(s) now`);
    return `${lines.join("\n")}\n`;
}
