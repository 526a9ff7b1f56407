// Two answers mean the same when they differ only in order, case, a trailing dot or TXT chunking
// (presentation() joins the chunks before this sees them).
import { isIPv6 } from "node:net";
import type { QueryType } from "./dns-query";
import { canonicalIpv6 } from "../topology/ipv6";

/** A DNS name as the plan writes it: lower case, no trailing dot. */
export function bareName(name: string): string {
    return name.toLowerCase().replace(/\.$/, "");
}

export function normaliseValue(type: QueryType, value: string): string {
    if (type === "TXT") return value;
    // 2001:DB8:0::25 and 2001:db8::25 are one address.
    if (type === "AAAA" && isIPv6(value.trim())) return canonicalIpv6(value.trim());
    return value.trim().toLowerCase().replace(/\.$/, "").replace(/\.(\s)/g, "$1");
}

export function normaliseSet(type: QueryType, values: string[]): string[] {
    return [...new Set(values.map((v) => normaliseValue(type, v)))].sort();
}

export function sameSet(a: string[], b: string[]): boolean {
    return a.length === b.length && a.every((v, i) => v === b[i]);
}
