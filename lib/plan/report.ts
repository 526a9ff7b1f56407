// Turns what the program registered into the plan users read (text) or diff (JSON).
import type { Registration, ResourceOptionsSeen } from "./mocks";
import { cloudflareTxtText } from "../render/cloudflare";
import { route53TxtText } from "../render/route53";

export interface PlannedResource {
    type: string;
    name: string;
    parent: string | null;
    /** Name of the explicit provider resource (its region or Docker host is in its inputs). */
    provider: string | null;
    /** The mock's id: where another resource's inputs contain it, that resource depends on this one. */
    id: string;
    /** Only the options that are set: protect, retainOnDelete, deleteBeforeReplace, ignoreChanges, ... */
    options: Partial<ResourceOptionsSeen>;
    inputs: Record<string, unknown>;
}

export interface PlannedRecord {
    provider: "cloudflare" | "route53";
    name: string;
    type: string;
    ttl: number;
    content: string;
    priority: number | null;
}

export interface Plan {
    stack: string;
    resources: PlannedResource[];
    dns: PlannedRecord[];
    outputs: Record<string, unknown>;
    /** The topology as configured (before validation fills in defaults), for readers of the plan. */
    topology?: unknown;
}

function sortKeys(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(
            Object.keys(value)
                .sort()
                .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
        );
    }
    return value;
}

function nameFromUrn(urn: string): string | null {
    return urn === "" ? null : urn.slice(urn.lastIndexOf("::") + 2);
}

function dnsRows(resources: PlannedResource[]): PlannedRecord[] {
    const rows: PlannedRecord[] = [];
    for (const r of resources) {
        const i = r.inputs;
        if (r.type === "cloudflare:index/dnsRecord:DnsRecord") {
            rows.push({
                provider: "cloudflare",
                name: String(i.name),
                type: String(i.type),
                ttl: Number(i.ttl),
                // A long TXT value goes in each provider's own syntax: the row is the text it serves.
                content: i.type === "TXT" ? cloudflareTxtText(String(i.content)) : String(i.content),
                priority: typeof i.priority === "number" ? i.priority : null,
            });
        } else if (r.type === "aws:route53/record:Record") {
            for (const value of (i.records as string[] | undefined) ?? []) {
                const mx = i.type === "MX" ? /^(\d+)\s+(.+)$/.exec(value) : null;
                rows.push({
                    provider: "route53",
                    name: String(i.name),
                    type: String(i.type),
                    ttl: Number(i.ttl),
                    content: mx ? mx[2] : i.type === "TXT" ? route53TxtText(value) : value,
                    priority: mx ? Number(mx[1]) : null,
                });
            }
        }
    }
    return rows.sort(
        (a, b) =>
            a.provider.localeCompare(b.provider) ||
            a.name.localeCompare(b.name) ||
            a.type.localeCompare(b.type) ||
            (a.priority ?? 0) - (b.priority ?? 0) ||
            a.content.localeCompare(b.content),
    );
}

function optionsThatAreSet(options: ResourceOptionsSeen): Partial<ResourceOptionsSeen> {
    return Object.fromEntries(Object.entries(options).filter(([, v]) => (Array.isArray(v) ? v.length > 0 : v === true))) as Partial<ResourceOptionsSeen>;
}

export function buildPlan(stack: string, registrations: Registration[], outputs: Record<string, unknown>, topology?: unknown): Plan {
    const resources = registrations
        .filter((r) => r.type !== "pulumi:pulumi:Stack")
        .map((r) => ({
            type: r.type,
            name: r.name,
            parent: nameFromUrn(r.parentUrn),
            provider: nameFromUrn(r.providerRef.split("::").slice(0, -1).join("::")),
            id: r.id,
            options: optionsThatAreSet(r.options),
            inputs: sortKeys(r.inputs) as Record<string, unknown>,
        }))
        .sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
    return {
        stack,
        resources,
        dns: dnsRows(resources),
        outputs: sortKeys(outputs) as Record<string, unknown>,
        ...(topology !== undefined ? { topology: sortKeys(topology) } : {}),
    };
}

/** URNs that more than one registration claimed: the real engine would refuse the program. */
export function duplicateUrns(registrations: Registration[]): string[] {
    const seen = new Map<string, number>();
    for (const r of registrations) seen.set(r.urn, (seen.get(r.urn) ?? 0) + 1);
    return [...seen.entries()].filter(([, n]) => n > 1).map(([urn]) => urn);
}

function brief(value: unknown): string {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    const oneLine = text.includes("\n") ? `<${text.split("\n").length} lines>` : text;
    return oneLine.length > 60 ? `${oneLine.slice(0, 57)}...` : oneLine;
}

function table(rows: string[][]): string[] {
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd());
}

export function formatPlanText(plan: Plan): string {
    const lines: string[] = [`Offline plan for stack "${plan.stack}" (Pulumi mocks: no credentials used, nothing created)`, ""];
    const children = new Map<string | null, PlannedResource[]>();
    for (const r of plan.resources) children.set(r.parent, [...(children.get(r.parent) ?? []), r]);
    const walk = (parent: string | null, depth: number) => {
        for (const r of children.get(parent) ?? []) {
            const inputs = Object.entries(r.inputs)
                .filter(([, v]) => v !== undefined && v !== null && v !== "")
                .map(([k, v]) => `${k}=${brief(v)}`);
            const flags = Object.entries(r.options).map(([k, v]) => (v === true ? k : `${k}=${(v as string[]).join(",")}`));
            lines.push(`${"  ".repeat(depth)}+ ${r.type}  ${r.name}${flags.length > 0 ? `  [${flags.join(" ")}]` : ""}`);
            if (inputs.length > 0) lines.push(`${"  ".repeat(depth + 2)}${inputs.join("  ")}`);
            walk(r.name, depth + 1);
        }
    };
    lines.push(`Resources: ${plan.resources.length} to create`);
    walk(null, 1);
    for (const provider of ["cloudflare", "route53"] as const) {
        const rows = plan.dns.filter((d) => d.provider === provider);
        lines.push("", `DNS at ${provider} (${rows.length} records${provider === "cloudflare" ? "; Cloudflare also answers with its own NS at each apex" : ""}):`);
        const body = rows.map((d) => [d.name, d.type, String(d.ttl), d.priority === null ? "" : String(d.priority), d.content]);
        lines.push(...table([["NAME", "TYPE", "TTL", "PRIO", "CONTENT"], ...body]).map((l) => `  ${l}`));
    }
    lines.push("", "Outputs:");
    // An output the stack does not have (no dkim section) is undefined, as Pulumi leaves it out.
    for (const [k, v] of Object.entries(plan.outputs)) if (v !== undefined) lines.push(`  ${k}: ${JSON.stringify(v)}`);
    return `${lines.join("\n")}\n`;
}
