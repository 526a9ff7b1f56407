// What the live domain should look like, read from the offline plan (the one expectation every tool
// reads, DESIGN.md): the record sets per zone, the MX hosts with their addresses, the recipients to
// try, the MTA-STS policy. Values assigned at deploy time (nameserver names, Elastic IPs, the
// MTA-STS site's CloudFront name, DKIM keys, the ACME challenge zone's nameservers) are not in an
// offline plan: they come from `pulumi stack output --json` when given, and otherwise are only
// compared between the nameservers.
import type { Plan } from "../plan/report";
import { parseTopology } from "../topology/validate";
import type { Topology } from "../topology/schema";
import { configuredIpv6, domainOfRecipient, hasIpv6, isPartner, mailHosts, zoneOf } from "../topology/placement";
import { acmeChallengeZone, publishedDkimSelectors } from "../topology/tls";
import { normaliseValue } from "./normalise";
import type { QueryType } from "./dns-query";

export interface ExpectedRRset {
    zone: string;
    name: string;
    type: QueryType;
    /** Normalised, sorted; null when only the deployed stack knows (then: the same at every nameserver). */
    values: string[] | null;
}

export interface ExpectedMxHost {
    hostname: string;
    /** Its MX priority; null for a site's own server, which is no MX (the switch forwards to it). */
    priority: number | null;
    /** partner: another organisation's MX (kind: partner), checked like ours; what to do goes to its contact. */
    role: "primary" | "relay" | "partner" | "site";
    /** A partner's MX: who runs it and whom to tell. */
    partner?: { organisation: string; contact: string };
    /** null when the address is assigned at deploy time and no stack outputs were given. */
    address: string | null;
}

export interface Expectation {
    stack: string;
    topology: Topology;
    domains: string[];
    rrsets: ExpectedRRset[];
    mxHosts: ExpectedMxHost[];
    /** The sites' own servers ("mail switch"): checked over SMTP like the MX hosts. */
    siteServers: ExpectedMxHost[];
    mtaStsMode: "none" | "testing" | "enforce";
    mtaStsPolicy: string | null;
    /**
     * The IPv6 address of each MX host and site server that has one (an AAAA record): configured, or an
     * EC2 host's from the stack outputs (null without them). Hosts without IPv6 are not listed.
     */
    addresses6: Record<string, string | null>;
}

/** The parts of `pulumi stack output --json` the checker uses. */
export interface StackOutputs {
    hostAddresses?: Record<string, string>;
    /** The IPv6 addresses (an EC2 host's is its instance's). */
    hostAddresses6?: Record<string, string>;
    nameservers?: Record<string, string[]>;
    /** CloudFront's name for the MTA-STS site (mta-sts.<domain> CNAMEs). */
    mtaStsHost?: string;
    /** The MTA-STS certificate's DNS-validation CNAMEs: names and values ACM chose. */
    mtaStsValidationRecords?: { name: string; value: string }[];
    /** DKIM selector -> its TXT value (the stack made the key). */
    dkimRecords?: Record<string, string>;
    /** The ACME challenge zone's nameservers (Route53 assigned them), delegated from its parent. */
    acmeChallengeNameservers?: string[];
}

/** ACM's validation CNAMEs point into acm-validations.aws; their names, too, exist only once deployed. */
const ACM_VALIDATION_TARGET = /\.acm-validations\.aws\.?$/i;

/**
 * What a record set holds when a deployment assigns it: the outputs' value, or null (known only to the
 * deployment: the same at every nameserver); undefined when the plan's own value holds. "skip" for a
 * record whose name itself is the deployment's (ACM's validation CNAMEs; added from the outputs).
 */
function deployedValues(topology: Topology, outputs: StackOutputs, zone: string, row: { name: string; type: string; content: string }): string[] | null | "skip" | undefined {
    const known = (values: string[] | undefined, type: QueryType): string[] | null => values?.map((v) => normaliseValue(type, v)) ?? null;
    if (row.type === "NS" && row.name === zone) return known(outputs.nameservers?.[zone], "NS");
    if (row.type === "NS" && row.name === acmeChallengeZone(topology)) return known(outputs.acmeChallengeNameservers, "NS");
    if (row.type === "CNAME" && row.name === `mta-sts.${zone}`) return known(outputs.mtaStsHost === undefined ? undefined : [outputs.mtaStsHost], "CNAME");
    if (row.type === "CNAME" && ACM_VALIDATION_TARGET.test(row.content)) return "skip";
    const selector = row.type === "TXT" ? /^([^.]+)\._domainkey\./.exec(row.name)?.[1] : undefined;
    if (selector !== undefined && publishedDkimSelectors(topology).includes(selector)) {
        const value = outputs.dkimRecords?.[selector];
        return known(value === undefined ? undefined : [value], "TXT");
    }
    return undefined;
}

export function buildExpectation(plan: Plan, outputs: StackOutputs = {}): Expectation {
    if (plan.topology === undefined) throw new Error(`the plan of stack ${plan.stack} has no topology`);
    const topology = parseTopology(plan.topology);
    const deployedAddress = (host: { hostname: string; placement: { kind: string } }): string | null =>
        outputs.hostAddresses?.[host.hostname] ?? (host.placement.kind === "aws" ? null : (plan.outputs.hostAddresses as Record<string, string>)[host.hostname]);
    const hosts = mailHosts(topology);
    const addressKnown = new Map(hosts.map((h) => [h.hostname, deployedAddress(h)]));
    // Sites' own servers: a configured address is a fact, an EC2 one's comes with the stack outputs.
    for (const site of Object.values(topology.sites)) {
        const server = site.server!;
        addressKnown.set(server.hostname, server.placement.kind === "aws" ? (outputs.hostAddresses?.[server.hostname] ?? null) : server.placement.address);
    }
    // IPv6: a configured address6 is a fact, an EC2 host's (ipv6) comes with the stack outputs.
    const address6Known = new Map<string, string | null>();
    const servers = [...hosts, ...Object.values(topology.sites).map((site) => site.server!)];
    for (const server of servers) {
        if (!hasIpv6(server.placement)) continue;
        const deployed6 = outputs.hostAddresses6?.[server.hostname];
        address6Known.set(server.hostname, deployed6 !== undefined ? normaliseValue("AAAA", deployed6) : (configuredIpv6(server.placement) ?? null));
    }

    // Both providers publish the same records (the policy pack enforces it); the first one's are read.
    const provider = plan.dns[0]?.provider;
    const grouped = new Map<string, ExpectedRRset>();
    for (const row of plan.dns.filter((r) => r.provider === provider)) {
        const zone = zoneOf(row.name, topology.domains);
        if (zone === undefined) continue;
        const type = row.type as QueryType;
        const key = `${row.name} ${type}`;
        const deployed = deployedValues(topology, outputs, zone, row);
        if (deployed === "skip") continue;
        let values: string[] | null = deployed !== undefined ? deployed : [normaliseValue(type, row.priority === null ? row.content : `${row.priority} ${row.content}`)];
        if (type === "A" && addressKnown.has(row.name)) {
            const address = addressKnown.get(row.name);
            values = address === null || address === undefined ? null : [address];
        }
        if (type === "AAAA" && address6Known.has(row.name)) {
            const address6 = address6Known.get(row.name);
            values = address6 === null || address6 === undefined ? null : [address6];
        }
        const existing = grouped.get(key);
        if (existing === undefined) grouped.set(key, { zone, name: row.name, type, values });
        else if (existing.values !== null && values !== null) existing.values.push(...values);
    }
    for (const record of outputs.mtaStsValidationRecords ?? []) {
        const name = record.name.toLowerCase().replace(/\.$/, "");
        const zone = zoneOf(name, topology.domains);
        if (zone !== undefined) grouped.set(`${name} CNAME`, { zone, name, type: "CNAME", values: [normaliseValue("CNAME", record.value)] });
    }
    const rrsets = [...grouped.values()].map((r) => ({ ...r, values: r.values === null ? null : [...new Set(r.values)].sort() }));

    return {
        stack: plan.stack,
        topology,
        domains: topology.domains,
        rrsets,
        mxHosts: hosts.map((h): ExpectedMxHost => ({
            hostname: h.hostname,
            priority: h.priority,
            role: h === topology.primary ? "primary" : isPartner(h) ? "partner" : "relay",
            address: addressKnown.get(h.hostname) ?? null,
            ...(isPartner(h) ? { partner: { organisation: h.placement.organisation, contact: h.placement.contact } } : {}),
        })),
        siteServers: Object.values(topology.sites).map((site) => ({ hostname: site.server!.hostname, priority: null, role: "site", address: addressKnown.get(site.server!.hostname) ?? null })),
        mtaStsMode: topology.policy.mtaSts,
        mtaStsPolicy: typeof plan.outputs.mtaStsPolicy === "string" ? plan.outputs.mtaStsPolicy : null,
        addresses6: Object.fromEntries(address6Known),
    };
}

/** Addresses to try at RCPT for one domain: one the stack lists, and whether unknown ones must be refused. */
export function recipientsToTry(topology: Topology, domain: string): { listed: string | null; refusesUnknown: boolean } {
    const ofDomain = topology.recipients.filter((r) => domainOfRecipient(r.toLowerCase()) === domain);
    const wholeDomain = ofDomain.some((r) => r.startsWith("@"));
    const listed = ofDomain.find((r) => !r.startsWith("@") && !r.toLowerCase().startsWith("postmaster@")) ?? ofDomain.find((r) => !r.startsWith("@")) ?? (wholeDomain ? `postmaster@${domain}` : null);
    return { listed, refusesUnknown: !wholeDomain };
}
