import type { z } from "zod";
import { sections, splitRecipients, topologySchema, type RecipientEntry, type Topology } from "./schema";
import { checkRules, type Problem } from "./rules";
import { limitProblems } from "./limits";

export const CONFIG_KEY = "mailcontinuity:topology";

export class TopologyError extends Error {
    constructor(readonly problems: Problem[]) {
        super(formatProblems(problems));
        this.name = "TopologyError";
    }
}

export function formatPath(path: readonly PropertyKey[]): string {
    return path.reduce<string>((out, key) => (typeof key === "number" ? `${out}[${key}]` : `${out}.${String(key)}`), "topology");
}

export function formatProblems(problems: readonly Problem[]): string {
    const lines = problems.map((p) => `  ${formatPath(p.path)}: ${p.message}`);
    return `${CONFIG_KEY} has ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n${lines.join("\n")}`;
}

function zodProblems(error: z.ZodError): Problem[] {
    return error.issues.map((issue) => ({ path: issue.path.map((k) => (typeof k === "symbol" ? String(k) : k)), message: issue.message }));
}

/** Parses the raw stack config into the model, or throws a TopologyError naming every problem. */
export function parseTopology(raw: unknown): Topology {
    const whole = topologySchema.safeParse(raw);
    if (whole.success) {
        const problems = checkRules(whole.data);
        if (problems.length > 0) throw new TopologyError(problems);
        const overLimits = limitProblems(whole.data);
        if (overLimits.length > 0) throw new TopologyError(overLimits);
        return whole.data;
    }
    // Parse section by section so the cross-field rules still run on the parts that are valid.
    const parsed: Record<string, unknown> = {};
    const record = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
    for (const [name, schema] of Object.entries(sections)) {
        const result = schema.safeParse(record[name]);
        if (result.success) parsed[name] = result.data;
    }
    if (Array.isArray(parsed.recipients)) Object.assign(parsed, splitRecipients(parsed.recipients as RecipientEntry[]));
    throw new TopologyError([...zodProblems(whole.error), ...checkRules(parsed as Partial<Topology>)]);
}
