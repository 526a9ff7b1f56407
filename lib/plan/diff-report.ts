// What a pull request does to a stack, for reviewers: loud warnings first (what can lose or delay
// mail), then the resources, the DNS records per provider and the MX table before and after. Built from
// two offline plans; Markdown for a PR comment, JSON for machines; byte-stable (no times, sorted).
import { diffPlans, type ResourceChange } from "./diff";
import type { Plan, PlannedRecord } from "./report";
import { durationSeconds } from "../topology/rules";

export interface Warning {
    kind: "holds-mail" | "instance-replaced" | "mx-removed" | "providers-differ" | "recipient-removed" | "queue-lifetime-shortened" | "partner-action";
    message: string;
}

/** A stack output that is added, removed or whose value changes (what `pulumi preview` lists under Outputs). */
export interface OutputChange {
    name: string;
    change: "added" | "removed" | "changed";
}

export interface DnsChange {
    provider: string;
    name: string;
    type: string;
    before: string | null;
    after: string | null;
}

export interface MxRow {
    priority: number;
    host: string;
    /** null: a partner's MX known only to its own DNS. */
    address: string | null;
    role: string;
}

export interface DiffReport {
    stack: string;
    /** The git ref the working tree is compared with. */
    base: string;
    /** The stack did not exist at the base: everything is created. */
    newStack: boolean;
    warnings: Warning[];
    /** Every resource that changes (unchanged ones are only counted). */
    resources: ResourceChange[];
    unchanged: number;
    dns: DnsChange[];
    mx: { before: MxRow[]; after: MxRow[] };
    /** Outputs whose value changes, by name. */
    outputs: OutputChange[];
}

/** What holds mail, or what others point at: never to be replaced or deleted by surprise. */
export const HOLDS_MAIL: Record<string, string> = {
    "aws:ebs/volume:Volume": "data volume (mail or relay queue)",
    "docker:index/volume:Volume": "relay queue volume",
    "aws:ec2/eip:Eip": "Elastic IP (DNS and the other hosts point at it)",
    "aws:route53/zone:Zone": "hosted zone (the registrar points at its nameservers)",
};

/**
 * An EC2 relay's Docker volume only binds its EBS queue disk (which counts itself): it holds no bytes.
 * A hosted zone declared forceDestroy (the ACME challenge zone) holds only passing answers, and only
 * the stack's own delegation points at it: nothing to keep either.
 */
export function holdsBytes(plan: Plan, name: string): boolean {
    const inputs = plan.resources.find((r) => r.name === name)?.inputs;
    if (inputs?.forceDestroy === true && plan.resources.some((r) => r.name === name && r.type === "aws:route53/zone:Zone")) return false;
    return (inputs?.driverOpts as { o?: string } | undefined)?.o !== "bind";
}

function emptyPlan(stack: string): Plan {
    return { stack, resources: [], dns: [], outputs: {} };
}

function recordValue(r: PlannedRecord): string {
    return `${r.priority === null ? "" : `${r.priority} `}${r.content} (ttl ${r.ttl})`;
}

/** Multi-valued records (MX, NS) are matched by the host they name; the rest by name and type. */
function recordKey(r: PlannedRecord, multi: boolean): string {
    return `${r.provider}|${r.name}|${r.type}${multi ? `|${r.content}` : ""}`;
}

function dnsChanges(before: PlannedRecord[], after: PlannedRecord[]): DnsChange[] {
    const count = (rows: PlannedRecord[]) => {
        const n = new Map<string, number>();
        for (const r of rows) n.set(recordKey(r, false), (n.get(recordKey(r, false)) ?? 0) + 1);
        return n;
    };
    const [nb, na] = [count(before), count(after)];
    const keyOf = (r: PlannedRecord) => recordKey(r, r.type === "MX" || r.type === "NS" || (nb.get(recordKey(r, false)) ?? 0) > 1 || (na.get(recordKey(r, false)) ?? 0) > 1);
    const old = new Map(before.map((r) => [keyOf(r), r]));
    const now = new Map(after.map((r) => [keyOf(r), r]));
    const changes: DnsChange[] = [];
    for (const key of new Set([...old.keys(), ...now.keys()])) {
        const [b, a] = [old.get(key), now.get(key)];
        const valueBefore = b === undefined ? null : recordValue(b);
        const valueAfter = a === undefined ? null : recordValue(a);
        if (valueBefore === valueAfter) continue;
        const r = (a ?? b)!;
        changes.push({ provider: r.provider, name: r.name, type: r.type, before: valueBefore, after: valueAfter });
    }
    return changes.sort((x, y) => x.provider.localeCompare(y.provider) || x.name.localeCompare(y.name) || x.type.localeCompare(y.type) || String(x.after ?? x.before).localeCompare(String(y.after ?? y.before)));
}

interface RawTopology {
    recipients?: string[];
    queueLifetime?: string;
    relays?: { hostname?: string; placement?: { kind?: string; organisation?: string; contact?: string } }[];
}

/** The partnerConfig output: per partner's MX, what it installs (lib/render/partner.ts). */
type PartnerConfigOutput = Record<string, { recipients?: string }>;

/** The addresses a recipient table lists (`alice@example.com OK`; comments skipped). */
function tableAddresses(table: string | undefined): Set<string> {
    return new Set(
        (table ?? "")
            .split("\n")
            .filter((l) => l.trim() !== "" && !l.startsWith("#"))
            .map((l) => l.split(/\s+/)[0]),
    );
}

function outputChanges(before: Plan, after: Plan): OutputChange[] {
    const names = [...new Set([...Object.keys(before.outputs), ...Object.keys(after.outputs)])].sort();
    return names.flatMap((name): OutputChange[] => {
        const [b, a] = [before.outputs[name], after.outputs[name]];
        if (b === undefined && a === undefined) return [];
        if (b === undefined) return [{ name, change: "added" }];
        if (a === undefined) return [{ name, change: "removed" }];
        return JSON.stringify(b) === JSON.stringify(a) ? [] : [{ name, change: "changed" }];
    });
}

/**
 * A partner's MX takes our recipients from a table its operator installs (README "Partner MX"): a new
 * or changed table is a step outside `pulumi up`, and until it is taken, new recipients get 550 there.
 */
function partnerWarnings(stack: string, before: Plan, after: Plan): Warning[] {
    const [b, a] = [(before.outputs.partnerConfig ?? {}) as PartnerConfigOutput, (after.outputs.partnerConfig ?? {}) as PartnerConfigOutput];
    const relays = topologyOf(after).relays ?? [];
    const warnings: Warning[] = [];
    for (const host of Object.keys(a).sort()) {
        const [old, now] = [b[host]?.recipients, a[host].recipients];
        if (old === now) continue;
        const placement = relays.find((r) => r.hostname?.toLowerCase() === host)?.placement;
        const who = placement?.contact !== undefined ? `${placement.contact} (${placement.organisation ?? "the partner"})` : "the partner";
        const handOver = `\`npm run partner-config -- --stack ${stack}\` writes it; send it to ${who}`;
        if (old === undefined) {
            warnings.push({ kind: "partner-action", message: `partner's MX ${host} is new: it relays for us only once its operator installs our configuration (${handOver}); until then it refuses our mail` });
            continue;
        }
        const [was, is] = [tableAddresses(old), tableAddresses(now)];
        const added = [...is].filter((r) => !was.has(r)).sort();
        const removed = [...was].filter((r) => !is.has(r)).sort();
        const change = [...added.map((r) => `+${r}`), ...removed.map((r) => `-${r}`)].join(", ");
        warnings.push({
            kind: "partner-action",
            message: `partner's MX ${host} needs the new recipient table (${change || "its text changed"}); ${handOver}. Until it is installed there${added.length > 0 ? `, ${added.join(", ")} get 550` : ""}${added.length > 0 && removed.length > 0 ? " and" : ""}${removed.length > 0 ? `, ${removed.join(", ")} still accepted` : ""}`,
        });
    }
    return warnings;
}

function topologyOf(plan: Plan): RawTopology {
    return (plan.topology as RawTopology | undefined) ?? {};
}

function warningsFor(before: Plan, after: Plan, resources: ResourceChange[], newStack: boolean): Warning[] {
    const warnings: Warning[] = [];
    for (const c of resources) {
        const what = HOLDS_MAIL[c.type];
        if (what !== undefined && (c.operation === "replace" || c.operation === "delete") && holdsBytes(before, c.name)) {
            // retainOnDelete also keeps the old one of a replacement (an Elastic IP moved to another region).
            const retained = c.retainOnDelete === true || (c.operation === "replace" && before.resources.find((r) => r.name === c.name && r.type === c.type)?.options?.retainOnDelete === true);
            const outcome =
                c.protect === true
                    ? "it is protected, so `pulumi up` stops here until it is unprotected by hand"
                    : c.operation === "delete" && retained
                      ? "it is retained: it leaves the stack but stays in the cloud"
                      : retained
                        ? `the old one is retained (it stays in the cloud, out of the stack) and ${c.type === "aws:ec2/eip:Eip" ? "a new address is allocated: DNS follows it" : "a new, empty one is made"}`
                        : "ITS CONTENT IS LOST";
            warnings.push({ kind: "holds-mail", message: `${c.operation} of ${what} \`${c.name}\`${c.because.length > 0 ? ` (${c.because.join(", ")})` : ""}: ${outcome}` });
        }
        if (c.type === "aws:ec2/instance:Instance" && c.operation === "replace") {
            warnings.push({
                kind: "instance-replaced",
                message: `replace of instance \`${c.name}\` (${c.because.join(", ")}): that MX is down until the new instance has booted and been configured${c.deleteBeforeReplace ? " (old one first; its data volume moves over)" : ""}`,
            });
        }
    }
    const mxBefore = new Set((before.outputs.mxTable as MxRow[] | undefined)?.map((m) => m.host) ?? []);
    const mxAfter = new Set((after.outputs.mxTable as MxRow[] | undefined)?.map((m) => m.host) ?? []);
    for (const host of [...mxBefore].filter((h) => !mxAfter.has(h)).sort()) {
        warnings.push({ kind: "mx-removed", message: `MX host ${host} is removed: mail it still holds must be drained first (README: removing a relay)` });
    }
    const byProvider = (provider: string) =>
        new Set(after.dns.filter((d) => d.provider === provider && d.type !== "NS").map((d) => `${d.name} ${d.type} ${d.ttl} ${d.priority ?? ""} ${d.content}`));
    const [cf, r53] = [byProvider("cloudflare"), byProvider("route53")];
    const differ = [...[...cf].filter((x) => !r53.has(x)).map((x) => `only at cloudflare: ${x}`), ...[...r53].filter((x) => !cf.has(x)).map((x) => `only at route53: ${x}`)].sort();
    for (const d of differ) warnings.push({ kind: "providers-differ", message: `the two DNS providers would differ: ${d.replace(/\s+/g, " ").trim()}` });
    if (!newStack) {
        const [tb, ta] = [topologyOf(before), topologyOf(after)];
        const lower = (xs: string[] | undefined) => new Set((xs ?? []).map((x) => x.toLowerCase()));
        const [rb, ra] = [lower(tb.recipients), lower(ta.recipients)];
        for (const r of [...rb].filter((x) => !ra.has(x)).sort()) {
            warnings.push({ kind: "recipient-removed", message: `recipient ${r} is removed: the relays will answer 550 for it, and the primary will refuse it` });
        }
        const [qb, qa] = [tb.queueLifetime ?? "7d", ta.queueLifetime ?? "7d"];
        if (durationSeconds(qa) < durationSeconds(qb)) {
            warnings.push({ kind: "queue-lifetime-shortened", message: `queue lifetime shortened from ${qb} to ${qa}: mail held at the relays bounces sooner` });
        }
    }
    warnings.push(...partnerWarnings(after.stack, before, after));
    return warnings;
}

export function buildDiffReport(stack: string, base: string, before: Plan | null, after: Plan): DiffReport {
    const old = before ?? emptyPlan(stack);
    const all = diffPlans(old, after);
    const resources = all.filter((c) => c.operation !== "same");
    return {
        stack,
        base,
        newStack: before === null,
        warnings: warningsFor(old, after, resources, before === null),
        resources,
        unchanged: all.length - resources.length,
        dns: dnsChanges(old.dns, after.dns),
        mx: { before: (old.outputs.mxTable as MxRow[] | undefined) ?? [], after: (after.outputs.mxTable as MxRow[] | undefined) ?? [] },
        outputs: outputChanges(old, after),
    };
}

function cell(text: string): string {
    return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function details(summary: string, lines: string[], openBelow = 12): string[] {
    if (lines.length <= openBelow) return lines;
    return [`<details><summary>${summary}</summary>`, "", ...lines, "", "</details>"];
}

/** The PR comment. The first line is left to the caller (it carries the comment's marker). */
export function formatDiffMarkdown(report: DiffReport): string {
    const out: string[] = [`### mailcontinuity \`${report.stack}\`: \`${report.base}\` → this change`, ""];
    if (report.newStack) out.push(`_The stack has no config at \`${report.base}\`: everything is created._`, "");
    if (report.warnings.length > 0) {
        out.push(`**⚠ ${report.warnings.length} warning${report.warnings.length === 1 ? "" : "s"}: what can lose or delay mail**`, "");
        out.push(...report.warnings.map((w) => `- ${w.message}`), "");
    } else {
        out.push("No warnings: nothing that holds mail or that others point at is replaced or deleted, no MX host or recipient is removed, both DNS providers agree.", "");
    }
    const counts = ["create", "update", "stop-start", "replace", "delete"].map((op) => [op, report.resources.filter((r) => r.operation === op).length] as const);
    out.push(`**Resources**: ${counts.map(([op, n]) => `${n} to ${op}`).join(", ")}, ${report.unchanged} unchanged.`, "");
    if (report.resources.length > 0) {
        const rows = report.resources.map((r) => {
            const why = r.operation === "replace" ? r.because.join(", ") : r.movedFrom !== undefined ? `renamed from ${r.movedFrom}` : r.changed.join(", ");
            const flags = [r.deleteBeforeReplace ? "delete before replace" : "", r.protect ? "protected" : "", r.retainOnDelete ? "retained" : ""].filter((f) => f !== "").join(", ");
            return `| ${r.operation} | \`${r.type}\` | \`${r.name}\` | ${cell(why)}${flags === "" ? "" : ` (${flags})`} |`;
        });
        out.push(...details(`${rows.length} resources change`, ["| operation | type | name | what / why |", "|---|---|---|---|", ...rows]), "");
    }
    const dnsCount = (provider: string) => {
        const rows = report.dns.filter((d) => d.provider === provider);
        return `${provider}: ${rows.filter((d) => d.before === null).length} added, ${rows.filter((d) => d.after === null).length} removed, ${rows.filter((d) => d.before !== null && d.after !== null).length} changed`;
    };
    out.push(`**DNS records**: ${dnsCount("cloudflare")}; ${dnsCount("route53")}.`, "");
    if (report.dns.length > 0) {
        const rows = report.dns.map((d) => `| ${d.provider} | ${d.name} | ${d.type} | ${cell(d.before ?? "–")} | ${cell(d.after ?? "–")} |`);
        out.push(...details(`${rows.length} DNS records change`, ["| provider | name | type | before | after |", "|---|---|---|---|---|", ...rows]), "");
    }
    const mx = (rows: MxRow[]) => rows.map((m) => `${m.priority} ${m.host} (${m.address ?? "its own DNS"}${m.role === "partner" ? ", partner" : ""})`).join(", ") || "–";
    out.push("**MX**", "", "| | hosts |", "|---|---|", `| before | ${mx(report.mx.before)} |`, `| after | ${mx(report.mx.after)} |`, "");
    // Old reports (and plans) have no outputs: read as none.
    const outputs = report.outputs ?? [];
    out.push(`**Outputs**: ${outputs.length === 0 ? "none change." : outputs.map((o) => `\`${o.name}\` ${o.change}`).join(", ") + "."}`, "");
    return out.join("\n");
}
