// NSD zone files from the record set the DNS component publishes: the lab's two nameservers stand in
// for Cloudflare and Route53 and serve the same records.
import { txtChunks, type RecordSpec } from "../lib/render/records";
import { canonicalIpv6 } from "../lib/topology/ipv6";

/** What a zone file needs of a record (not its role, which only names the cloud resource). */
export type ZoneRecord = Pick<RecordSpec, "zone" | "name" | "type" | "ttl" | "content" | "priority">;

export interface Nameserver {
    hostname: string;
    address: string;
}

/** One quoted character-string per 255 bytes (RFC 1035 3.3; a DKIM key is longer): NSD refuses more in one. */
function quoteTxt(text: string): string {
    return txtChunks(text)
        .map((chunk) => `"${chunk.replace(/(["\\])/g, "\\$1")}"`)
        .join(" ");
}

function rdata(record: ZoneRecord): string {
    switch (record.type) {
        case "MX":
            return `${record.priority} ${record.content}.`;
        case "TXT":
            return quoteTxt(record.content);
        // Absolute names: a relative one would be read below the zone's $ORIGIN.
        case "NS":
        case "CNAME":
            return `${record.content}.`;
        // RFC 5952's form, the one answers come back in (the checker compares them as text).
        case "AAAA":
            return canonicalIpv6(record.content);
        default:
            return record.content;
    }
}

/** A complete zone: SOA, the nameservers (with glue when they live inside the zone), the records. */
export function renderZoneFile(zone: string, records: readonly ZoneRecord[], nameservers: readonly Nameserver[], serial = 1): string {
    const lines = [
        `$ORIGIN ${zone}.`,
        `$TTL 300`,
        `@ IN SOA ${nameservers[0].hostname}. hostmaster.${zone}. ${serial} 3600 600 604800 60`,
        ...nameservers.map((ns) => `@ IN NS ${ns.hostname}.`),
        ...nameservers.filter((ns) => ns.hostname.endsWith(`.${zone}`)).map((ns) => `${ns.hostname}. IN A ${ns.address}`),
        ...records.filter((r) => r.zone === zone).map((r) => `${r.name}. ${r.ttl} IN ${r.type} ${rdata(r)}`),
    ];
    return `${lines.join("\n")}\n`;
}
