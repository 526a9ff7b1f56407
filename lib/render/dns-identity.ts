// Resource names for DNS records, by what a record is (zone, name, type, role), never by its content,
// priority or position: a new DMARC policy or MX priority is then an update in place. Route53 holds one
// record *set* per name and type, so its resources are named by name and type alone.
import { createHash } from "node:crypto";
import type { RecordSpec } from "./records";
import type { RecordSet } from "./route53";
import { slug } from "../topology/placement";

/** One Cloudflare record. Only MX and TXT can repeat at a name with a role each, so only they carry it; a delegation's NS records carry their member number. */
export function cloudflareRecordName(prefix: string, record: RecordSpec<unknown>): string {
    const base = `${prefix}-cf-${slug(record.name)}-${record.type.toLowerCase()}`;
    if (record.type === "MX" || record.type === "TXT") return `${base}-${record.role}`;
    return record.member !== undefined ? `${base}-${record.member}` : base;
}

/**
 * A DNS-validation record a certificate asks for (ACM's CNAME for one of its names), at one provider.
 * Its own name and value exist only once the certificate does, so it is named by the name it proves.
 */
export function certificateValidationRecordName(prefix: string, provider: "cf" | "r53", validates: string): string {
    return `${prefix}-${provider}-${slug(validates)}-acm-validation`;
}

/** One Route53 record set. */
export function route53SetName(prefix: string, set: Pick<RecordSet<unknown>, "name" | "type">): string {
    return `${prefix}-r53-${slug(set.name)}-${set.type.toLowerCase()}`;
}

// Until 2026-11 records were named after their first value: MX by priority, TXT by a hash of the
// text. Stacks deployed then carry those names in their state; aliases let them move to the new names
// without a delete and a create (which Route53 refuses while the old set still exists).
function contentHash(text: string): string {
    return createHash("sha256").update(text).digest("hex").slice(0, 8);
}

function legacySuffix(record: RecordSpec<unknown>): string {
    if (record.type === "MX") return `-${record.priority}`;
    if (record.type === "TXT") return `-${contentHash(String(record.content))}`;
    return "";
}

/** The name this Cloudflare record had before, if it differs (for `aliases`). */
export function legacyCloudflareRecordName(prefix: string, record: RecordSpec<unknown>): string | undefined {
    // A delegation's NS records (the ACME challenge zone's) came after the renaming: no other name, and
    // the four must not all claim the one name they would have had.
    if (record.member !== undefined) return undefined;
    const legacy = `${prefix}-cf-${slug(record.name)}-${record.type.toLowerCase()}${legacySuffix(record)}`;
    return legacy === cloudflareRecordName(prefix, record) ? undefined : legacy;
}

/** The name this Route53 set had before, if it differs: it was named after its first record. */
export function legacyRoute53SetName(prefix: string, set: RecordSet<unknown>): string | undefined {
    const legacy = `${prefix}-r53-${slug(set.name)}-${set.type.toLowerCase()}${legacySuffix(set.records[0])}`;
    return legacy === route53SetName(prefix, set) ? undefined : legacy;
}
