// docs/BENCHMARKS.md is shared: each command that measures something (npm run bench, the soak) owns
// its own `## ` sections and replaces only those, so no command erases another's numbers.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { run } from "./net";

export const BENCHMARKS_FILE = join(__dirname, "..", "docs", "BENCHMARKS.md");

const PREAMBLE = `# Benchmarks

Every number here is written by the command its section names (as root); rerun it to check. Each
section says when and on which machine it was measured.
`;

/**
 * `doc` with the section under `## heading` (up to the next `## ` line outside a code block) replaced
 * by `body`, or appended when there is none. Everything else is kept byte for byte.
 */
export function replaceSection(doc: string, heading: string, body: string): string {
    const lines = doc.split("\n");
    const title = `## ${heading}`;
    let fenced = false;
    const headings: number[] = [];
    lines.forEach((line, i) => {
        if (/^(```|~~~)/.test(line)) fenced = !fenced;
        else if (!fenced && /^## /.test(line)) headings.push(i);
    });
    const section = [title, "", ...body.trim().split("\n"), ""];
    const start = headings.find((i) => lines[i].trimEnd() === title);
    if (start === undefined) {
        const kept = doc.replace(/\n*$/, "");
        return `${kept}\n\n${section.join("\n")}`;
    }
    const end = headings.find((i) => i > start) ?? lines.length;
    const after = lines.slice(end);
    return [...lines.slice(0, start), ...section, ...after].join("\n").replace(/\n*$/, "\n");
}

/** Replaces (or adds) one section of docs/BENCHMARKS.md. */
export function writeBenchmarkSection(heading: string, body: string, file = BENCHMARKS_FILE): void {
    const doc = existsSync(file) ? readFileSync(file, "utf8") : PREAMBLE;
    writeFileSync(file, replaceSection(doc, heading, body));
}

/** The machine, as the sections state it. */
export function machine(): string {
    const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
    return `${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, Linux, Node ${process.version}, Postfix ${run("postconf", ["-h", "mail_version"]).trim()}`;
}

/** The first line of a section: when, on what, by which command. */
export function measured(command: string): string {
    return `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, by \`${command}\`.`;
}
