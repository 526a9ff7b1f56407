// Route53 holds one record *set* per name and type, with the values as strings in its own syntax.
import { txtChunks, type RecordSpec } from "./records";

export interface RecordSet<Address> {
    name: string;
    type: RecordSpec["type"];
    ttl: number;
    records: RecordSpec<Address>[];
}

export function groupRecordSets<Address>(records: readonly RecordSpec<Address>[]): RecordSet<Address>[] {
    const sets = new Map<string, RecordSet<Address>>();
    for (const record of records) {
        const key = `${record.name} ${record.type}`;
        const set = sets.get(key) ?? { name: record.name, type: record.type, ttl: record.ttl, records: [] };
        set.records.push(record);
        sets.set(key, set);
    }
    return [...sets.values()];
}

/**
 * MX values carry their preference in front. The provider adds the quotes around a TXT value; a value
 * over 255 bytes (a DKIM key) must be split into strings, which the AWS provider takes as `a""b`.
 */
export function route53Value<Address>(record: RecordSpec<Address>): string | Address {
    if (record.type === "MX") return `${record.priority} ${String(record.content)}`;
    if (record.type === "TXT" && typeof record.content === "string") return route53TxtValue(record.content);
    return record.content;
}

/** A TXT value in the AWS provider's syntax: 255-byte strings joined by `""` (one string up to 255 bytes, as ever). */
export function route53TxtValue(text: string): string {
    return txtChunks(text).join('""');
}

/** The text a Route53 TXT value stands for (route53TxtValue undone). */
export function route53TxtText(value: string): string {
    return value.split('""').join("");
}
