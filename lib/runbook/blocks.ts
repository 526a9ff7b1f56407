// How a runbook marks its commands, and how a test finds them again: fenced blocks whose info string is
// `sh runnable` are safe to run as they are (they read, query or flush; run in the lab by
// test/runbook-lab.test.ts), plain `sh` blocks need judgement (they restart, replace or change something).

export const RUNNABLE = "sh runnable";
export const PLAIN = "sh";

export interface CodeBlock {
    info: string;
    code: string;
    /** The Markdown heading the block sits under (the nearest one above it). */
    heading: string;
}

export function fence(info: typeof RUNNABLE | typeof PLAIN, lines: readonly string[]): string {
    return ["```" + info, ...lines, "```"].join("\n");
}

/** Every fenced block of a Markdown text, in order. */
export function codeBlocks(markdown: string): CodeBlock[] {
    const blocks: CodeBlock[] = [];
    let heading = "";
    let open: { info: string; lines: string[] } | undefined;
    for (const line of markdown.split("\n")) {
        if (open !== undefined) {
            if (line === "```") {
                blocks.push({ info: open.info, code: open.lines.join("\n"), heading });
                open = undefined;
            } else open.lines.push(line);
        } else if (line.startsWith("```")) open = { info: line.slice(3).trim(), lines: [] };
        else if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, "");
    }
    if (open !== undefined) throw new Error(`an unclosed code block under "${heading}"`);
    return blocks;
}

export function runnableBlocks(markdown: string): CodeBlock[] {
    return codeBlocks(markdown).filter((b) => b.info === RUNNABLE);
}
