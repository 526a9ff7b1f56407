// The record set each DNS provider will serve, read from the stack's resources and normalised so the
// two providers compare row by row (as lib/plan/report.ts's dnsRows does for the offline plan).
import { UnknownValueError, type PolicyResource } from "@pulumi/policy";
import type { PlannedRecord } from "../lib/plan/report";

export const CLOUDFLARE_RECORD = "cloudflare:index/dnsRecord:DnsRecord";
export const ROUTE53_RECORD = "aws:route53/record:Record";
export const ROUTE53_ZONE = "aws:route53/zone:Zone";

/** Stands for a value a preview cannot know yet (an Elastic IP): equal to itself at both providers. */
export const UNKNOWN = "<unknown until applied>";

/** A record as the offline plan lists it (name fully qualified, lower case, no trailing dot), and where it comes from. */
export interface DnsRow extends PlannedRecord {
    urn: string;
}

/** The value `read` returns, or UNKNOWN when a preview does not know it yet. */
export function known<T>(read: () => T): T | typeof UNKNOWN {
    try {
        return read();
    } catch (error) {
        if (error instanceof UnknownValueError) return UNKNOWN;
        throw error;
    }
}

export function hostName(name: string): string {
    return name.trim().toLowerCase().replace(/\.$/, "");
}

const QUOTED_TXT = /^"(?:[^"\\]|\\.)*"(?:\s+"(?:[^"\\]|\\.)*")*$/;

/** `"v=spf1 mx" " ~all"` (either provider may return TXT values quoted, long ones in chunks) -> `v=spf1 mx ~all`. */
function unquoteTxt(value: string): string {
    const v = value.trim();
    if (!QUOTED_TXT.test(v)) return v;
    return [...v.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, "$1")).join("");
}

/** Route53 takes a long TXT value as its 255-byte strings joined by `""` (the AWS provider's syntax). */
function route53Txt(value: string): string {
    return value === UNKNOWN ? value : value.split('""').join("");
}

function normalisedContent(type: string, value: string): string {
    if (value === UNKNOWN) return value;
    if (type === "TXT") return unquoteTxt(value);
    if (["MX", "NS", "CNAME"].includes(type)) return hostName(value);
    return value.trim().toLowerCase();
}

export function dnsRows(resources: readonly PolicyResource[]): DnsRow[] {
    const rows: DnsRow[] = [];
    for (const r of resources) {
        const p = r.props;
        if (r.type === CLOUDFLARE_RECORD) {
            const type = String(p.type).toUpperCase();
            const priority = known(() => p.priority);
            rows.push({
                provider: "cloudflare",
                // A name only a deployment knows (ACM's validation CNAMEs) is unknown during a first preview.
                name: hostName(String(known(() => p.name))),
                type,
                ttl: Number(p.ttl),
                content: normalisedContent(type, String(known(() => p.content))),
                // Cloudflare keeps a priority only on MX (and SRV/URI) records.
                priority: type === "MX" && typeof priority === "number" ? priority : null,
                urn: r.urn,
            });
        } else if (r.type === ROUTE53_RECORD) {
            const type = String(p.type).toUpperCase();
            const values = known(() => p.records as string[] | undefined);
            // An alias record has no values; the program declares none.
            const count = values === UNKNOWN ? 1 : (values?.length ?? 0);
            for (let i = 0; i < count; i++) {
                // By index: an element a preview does not know throws when read.
                const raw = values === UNKNOWN ? UNKNOWN : String(known(() => values?.[i]));
                const mx = type === "MX" ? /^(\d+)\s+(.+)$/.exec(raw.trim()) : null;
                rows.push({
                    provider: "route53",
                    name: hostName(String(known(() => p.name))),
                    type,
                    ttl: Number(p.ttl),
                    content: normalisedContent(type, mx ? mx[2] : type === "TXT" ? route53Txt(raw) : raw),
                    priority: mx ? Number(mx[1]) : null,
                    urn: r.urn,
                });
            }
        }
    }
    return rows;
}

/** `name` is `zone` or below it. */
export function inZone(name: string, zone: string): boolean {
    return name === zone || name.endsWith(`.${zone}`);
}

function commonSuffix(names: readonly string[]): string {
    const labels = names.map((n) => n.split(".").reverse());
    const shared: string[] = [];
    for (let i = 0; labels.every((l) => i < l.length && l[i] === labels[0][i]); i++) shared.push(labels[0][i]);
    return shared.reverse().join(".");
}

/**
 * The zones the stack manages: each Route53 hosted zone, and for Cloudflare (whose zones exist outside
 * the stack and are known only by id) each zone id's records that fall in no Route53 zone, named by
 * their common suffix. Record names are fully qualified, as the program writes them.
 */
export function managedZones(resources: readonly PolicyResource[]): string[] {
    const zones = new Set(resources.filter((r) => r.type === ROUTE53_ZONE).map((r) => hostName(String(r.props.name))));
    const orphans = new Map<string, string[]>();
    for (const r of resources) {
        if (r.type !== CLOUDFLARE_RECORD) continue;
        const name = hostName(String(known(() => r.props.name)));
        if (name === hostName(UNKNOWN)) continue;
        if ([...zones].some((z) => inZone(name, z))) continue;
        const zoneId = String(known(() => r.props.zoneId));
        orphans.set(zoneId, [...(orphans.get(zoneId) ?? []), name]);
    }
    for (const names of orphans.values()) {
        const suffix = commonSuffix(names);
        if (suffix !== "") zones.add(suffix);
    }
    return [...zones].sort();
}

/** The most specific managed zone holding `name`, if any. */
export function zoneOf(name: string, zones: readonly string[]): string | undefined {
    return zones.filter((z) => inZone(name, z)).sort((a, b) => b.length - a.length)[0];
}

export function rowKey(row: DnsRow): string {
    return `${row.name} ${row.type} ttl=${row.ttl}${row.priority === null ? "" : ` prio=${row.priority}`} ${row.content}`;
}
