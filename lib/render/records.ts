// The one record set every DNS provider publishes. Generic over the address type so the cloud target
// can pass Pulumi outputs (Elastic IPs) and the lab and tests plain strings.
import { createHash } from "node:crypto";
import type { Topology } from "../topology/schema";
import { mailHosts, zoneOf } from "../topology/placement";

export type RecordType = "A" | "MX" | "TXT" | "NS";

export interface RecordSpec<Address = string> {
    /** The zone (one of the topology's domains) that holds the record. */
    zone: string;
    /** Fully qualified, no trailing dot. */
    name: string;
    type: RecordType;
    ttl: number;
    content: string | Address;
    priority?: number;
}

export function mtaStsPolicy(topology: Topology): string {
    const mx = mailHosts(topology).map((h) => `mx: ${h.hostname}`);
    // RFC 8461 3.2: CRLF line endings; max_age a week, in seconds.
    return ["version: STSv1", `mode: ${topology.policy.mtaSts}`, ...mx, "max_age: 604800", ""].join("\r\n");
}

/** Changes whenever the policy text does, as RFC 8461 3.1 requires of the id. */
export function mtaStsPolicyId(topology: Topology): string {
    return createHash("sha256").update(mtaStsPolicy(topology)).digest("hex").slice(0, 20);
}

export function buildRecordSet<Address = string>(
    topology: Topology,
    addressOf: (hostname: string) => Address,
): RecordSpec<Address>[] {
    const ttl = topology.dns.ttl;
    const records: RecordSpec<Address>[] = [];
    for (const zone of topology.domains) {
        for (const host of mailHosts(topology)) {
            records.push({ zone, name: zone, type: "MX", ttl, content: host.hostname, priority: host.priority });
        }
        records.push({ zone, name: zone, type: "TXT", ttl, content: "v=spf1 mx ~all" });
        records.push({
            zone,
            name: `_dmarc.${zone}`,
            type: "TXT",
            ttl,
            content: `v=DMARC1; p=${topology.policy.dmarc}; rua=mailto:${topology.alerts.email}`,
        });
        if (topology.policy.mtaSts !== "none") {
            records.push({ zone, name: `_mta-sts.${zone}`, type: "TXT", ttl, content: `v=STSv1; id=${mtaStsPolicyId(topology)}` });
        }
        records.push({ zone, name: `_smtp._tls.${zone}`, type: "TXT", ttl, content: `v=TLSRPTv1; rua=mailto:${topology.alerts.email}` });
    }
    for (const host of mailHosts(topology)) {
        const zone = zoneOf(host.hostname, topology.domains);
        if (zone === undefined) continue; // outside every managed zone: allowed only by override
        records.push({ zone, name: host.hostname, type: "A", ttl, content: addressOf(host.hostname) });
        // Bounces from a relay carry an empty sender, so receivers check SPF against its HELO name.
        records.push({ zone, name: host.hostname, type: "TXT", ttl, content: "v=spf1 a -all" });
    }
    return records;
}

/** A stable order for display and diffing. */
export function compareRecords(a: RecordSpec<unknown>, b: RecordSpec<unknown>): number {
    return (
        a.name.localeCompare(b.name) ||
        a.type.localeCompare(b.type) ||
        (a.priority ?? 0) - (b.priority ?? 0) ||
        String(a.content).localeCompare(String(b.content))
    );
}
