// Route53 holds one record *set* per name and type, with the values as strings in its own syntax.
import type { RecordSpec } from "./records";

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

/** MX values carry their preference in front; the provider adds the quotes TXT values need. */
export function route53Value<Address>(record: RecordSpec<Address>): string | Address {
    return record.type === "MX" ? `${record.priority} ${String(record.content)}` : record.content;
}
