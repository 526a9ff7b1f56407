// The one record set every DNS provider publishes. Generic over the address type so the cloud target
// can pass Pulumi outputs (Elastic IPs) and the lab and tests plain strings.
import { createHash } from "node:crypto";
import type { Topology } from "../topology/schema";
import { configuredIpv6, domainOfRecipient, hasIpv6, mailHosts, slug, zoneOf } from "../topology/placement";
import { acmeChallengeTarget, acmeChallengeZone, publishedDkimSelectors } from "../topology/tls";

export type RecordType = "A" | "AAAA" | "MX" | "TXT" | "NS" | "CNAME";

/**
 * What a record is for, so that its resource is named by what it is: a change of content or priority is
 * then an update in place, never a delete and a create. For MX records the role names the mail host it points to (`to-mx2-example-com`).
 */
export type RecordRole = "spf" | "dmarc" | "dmarc-report-auth" | "mta-sts" | "mta-sts-host" | "tls-rpt" | "address" | "acme-challenge" | "acme-delegation" | "dkim" | `to-${string}`;

export interface RecordSpec<Address = string> {
    /** The zone (one of the topology's domains) that holds the record. */
    zone: string;
    role: RecordRole;
    /** Fully qualified, no trailing dot. */
    name: string;
    type: RecordType;
    ttl: number;
    content: string | Address;
    priority?: number;
    /**
     * Which of a delegation's nameservers this is: the only records that repeat at one name and type
     * with nothing else to tell them apart (Route53 hands out four, in no meaningful order).
     */
    member?: number;
}

/** One DNS character-string holds 255 bytes (RFC 1035 3.3): longer TXT values go as several. */
export const TXT_STRING_LIMIT = 255;

/** A TXT value as the character-strings a zone carries (ASCII: DKIM keys, policies). */
export function txtChunks(text: string): string[] {
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += TXT_STRING_LIMIT) chunks.push(text.slice(i, i + TXT_STRING_LIMIT));
    return chunks.length > 0 ? chunks : [""];
}

/**
 * The longest TTL of the primary's address record. Its hostname (mail.<domain>) is also the name users'
 * mail programs use for IMAP, and the relays find the primary through it (MX, then A): when the primary
 * is rebuilt elsewhere (docs/rebuild-primary.md) and gets a new address, resolvers keep handing out the
 * old one for up to this long. Five minutes is short next to the rebuild itself (a volume from a
 * snapshot and an instance's first boot take longer), so a shorter TTL would only add queries.
 */
export const CLIENT_ACCESS_TTL_SECONDS = 300;

export function mtaStsPolicy(topology: Topology): string {
    const mx = mailHosts(topology).map((h) => `mx: ${h.hostname}`);
    // RFC 8461 3.2: CRLF line endings; max_age a week, in seconds.
    return ["version: STSv1", `mode: ${topology.policy.mtaSts}`, ...mx, "max_age: 604800", ""].join("\r\n");
}

/** Changes whenever the policy text does, as RFC 8461 3.1 requires of the id. */
export function mtaStsPolicyId(topology: Topology): string {
    return createHash("sha256").update(mtaStsPolicy(topology)).digest("hex").slice(0, 20);
}

/** Where DMARC aggregate reports go. */
export function dmarcReportAddress(topology: Topology): string {
    return topology.policy.dmarcReports ?? topology.alerts.email;
}

/** Values only a deployment knows, or the lab makes up: each adds its records when given. */
export interface RecordSetExtras<Address> {
    /** The ACME challenge zone's nameservers (Route53 assigns them), delegated from its parent. */
    challengeNameservers?: readonly Address[];
    /** The TXT value (`v=DKIM1; k=rsa; p=...`) published for a DKIM selector. */
    dkimRecord?: (selector: string) => Address;
    /** The host name serving https://mta-sts.<domain>/ (the stack's MTA-STS site). */
    mtaStsTarget?: Address;
    /**
     * The IPv6 address of a host that has one (placement.ts hasIpv6): an EC2 host's is assigned at deploy
     * time, so only this knows it; an external or Docker host's is its `address6`, used when this is not
     * given or has none for it.
     */
    ipv6AddressOf?: (hostname: string) => Address | undefined;
}

export function buildRecordSet<Address = string>(
    topology: Topology,
    addressOf: (hostname: string) => Address,
    extras: RecordSetExtras<Address> = {},
): RecordSpec<Address>[] {
    const ttl = topology.dns.ttl;
    const records: RecordSpec<Address>[] = [];
    const reports = dmarcReportAddress(topology);
    const reportDomain = domainOfRecipient(reports.toLowerCase());
    const challengeZone = acmeChallengeZone(topology);
    // An AAAA record beside the A record of every host with an IPv6 address. The SPF records need nothing
    // more: `mx` and `a` match an IPv6 sender against the AAAA records of the same names (RFC 7208 5.3,
    // 5.4: "AAAA lookups" for an IPv6 <ip>), so `v=spf1 mx ~all` and a host's `v=spf1 a -all` cover both.
    const ipv6Of = (hostname: string, placement: Parameters<typeof hasIpv6>[0]): string | Address | undefined =>
        hasIpv6(placement) ? (extras.ipv6AddressOf?.(hostname) ?? configuredIpv6(placement)) : undefined;
    for (const zone of topology.domains) {
        for (const host of mailHosts(topology)) {
            records.push({ zone, role: `to-${slug(host.hostname)}`, name: zone, type: "MX", ttl, content: host.hostname, priority: host.priority });
        }
        records.push({ zone, role: "spf", name: zone, type: "TXT", ttl, content: "v=spf1 mx ~all" });
        records.push({ zone, role: "dmarc", name: `_dmarc.${zone}`, type: "TXT", ttl, content: `v=DMARC1; p=${topology.policy.dmarc}; rua=mailto:${reports}` });
        if (topology.policy.mtaSts !== "none") {
            records.push({ zone, role: "mta-sts", name: `_mta-sts.${zone}`, type: "TXT", ttl, content: `v=STSv1; id=${mtaStsPolicyId(topology)}` });
        }
        if (topology.policy.mtaSts !== "none" && extras.mtaStsTarget !== undefined) {
            records.push({ zone, role: "mta-sts-host", name: `mta-sts.${zone}`, type: "CNAME", ttl, content: extras.mtaStsTarget });
        }
        if (extras.dkimRecord !== undefined) {
            for (const selector of publishedDkimSelectors(topology)) {
                records.push({ zone, role: "dkim", name: `${selector}._domainkey.${zone}`, type: "TXT", ttl, content: extras.dkimRecord(selector) });
            }
        }
        records.push({ zone, role: "tls-rpt", name: `_smtp._tls.${zone}`, type: "TXT", ttl, content: `v=TLSRPTv1; rua=mailto:${topology.alerts.email}` });
        // RFC 7489 7.1: the report domain consents to receiving this domain's reports.
        if (zone !== reportDomain && topology.domains.includes(reportDomain)) {
            records.push({ zone: reportDomain, role: "dmarc-report-auth", name: `${zone}._report._dmarc.${reportDomain}`, type: "TXT", ttl, content: "v=DMARC1" });
        }
    }
    for (const host of mailHosts(topology)) {
        const zone = zoneOf(host.hostname, topology.domains);
        if (zone === undefined) continue; // outside every managed zone: allowed only by override
        const addressTtl = host === topology.primary ? Math.min(ttl, CLIENT_ACCESS_TTL_SECONDS) : ttl;
        const placement = host.placement;
        if (placement.kind === "partner") {
            // A partner's MX named in our zone: its A records are the addresses it gave (one or more, so each
            // is a member of the set), its HELO name's SPF covers them, and it gets no ACME CNAME: its
            // certificate is its own business.
            placement.addresses.forEach((address, member) => records.push({ zone, role: "address", name: host.hostname, type: "A", ttl, content: address, member }));
            placement.addresses6.forEach((address, member) => records.push({ zone, role: "address", name: host.hostname, type: "AAAA", ttl, content: address, member }));
            records.push({ zone, role: "spf", name: host.hostname, type: "TXT", ttl, content: "v=spf1 a -all" });
            continue;
        }
        records.push({ zone, role: "address", name: host.hostname, type: "A", ttl: addressTtl, content: addressOf(host.hostname) });
        const address6 = ipv6Of(host.hostname, placement);
        if (address6 !== undefined) records.push({ zone, role: "address", name: host.hostname, type: "AAAA", ttl: addressTtl, content: address6 });
        // Bounces from a relay carry an empty sender, so receivers check SPF against its HELO name.
        records.push({ zone, role: "spf", name: host.hostname, type: "TXT", ttl, content: "v=spf1 a -all" });
        if (challengeZone !== undefined) {
            records.push({ zone, role: "acme-challenge", name: `_acme-challenge.${host.hostname}`, type: "CNAME", ttl, content: acmeChallengeTarget(host.hostname, challengeZone) });
        }
    }
    if (challengeZone !== undefined && extras.challengeNameservers !== undefined) {
        const parent = zoneOf(challengeZone, topology.domains);
        extras.challengeNameservers.forEach((nameserver, member) => {
            if (parent !== undefined) records.push({ zone: parent, role: "acme-delegation", name: challengeZone, type: "NS", ttl, content: nameserver, member });
        });
    }
    // The switch and the other sites reach a site's server by name (lib/render/sites.ts).
    for (const site of Object.values(topology.sites)) {
        const zone = site.server === undefined ? undefined : zoneOf(site.server.hostname, topology.domains);
        if (site.server === undefined || zone === undefined) continue;
        const placement = site.server.placement;
        records.push({ zone, role: "address", name: site.server.hostname, type: "A", ttl, content: placement.kind === "aws" ? addressOf(site.server.hostname) : placement.address });
        const address6 = ipv6Of(site.server.hostname, placement);
        if (address6 !== undefined) records.push({ zone, role: "address", name: site.server.hostname, type: "AAAA", ttl, content: address6 });
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
