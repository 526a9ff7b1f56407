// What the live domain should look like, read from the offline plan (the one expectation every tool
// reads, DESIGN.md): the record sets per zone, the MX hosts with their addresses, the recipients to
// try, the MTA-STS policy. Values assigned at deploy time (nameserver names, Elastic IPs, the
// MTA-STS site's CloudFront name, DKIM keys, the ACME challenge zone's nameservers) are not in an
// offline plan: they come from `pulumi stack output --json` when given, and otherwise are only
// compared between the nameservers.
import type { Plan } from "../plan/report";
import { parseTopology } from "../topology/validate";
import type { Topology } from "../topology/schema";
import { domainOfRecipient, mailHosts, zoneOf } from "../topology/placement";
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
    role: "primary" | "relay" | "site";
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
}

/** The parts of `pulumi stack output --json` the checker uses. */
export interface StackOutputs {
    hostAddresses?: Record<string, string>;
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
        mxHosts: hosts.map((h) => ({ hostname: h.hostname, priority: h.priority, role: h === topology.primary ? "primary" : "relay", address: addressKnown.get(h.hostname) ?? null })),
        siteServers: Object.values(topology.sites).map((site) => ({ hostname: site.server!.hostname, priority: null, role: "site", address: addressKnown.get(site.server!.hostname) ?? null })),
        mtaStsMode: topology.policy.mtaSts,
        mtaStsPolicy: typeof plan.outputs.mtaStsPolicy === "string" ? plan.outputs.mtaStsPolicy : null,
    };
}

/** Addresses to try at RCPT for one domain: one the stack lists, and whether unknown ones must be refused. */
export function recipientsToTry(topology: Topology, domain: string): { listed: string | null; refusesUnknown: boolean } {
    const ofDomain = topology.recipients.filter((r) => domainOfRecipient(r.toLowerCase()) === domain);
    const wholeDomain = ofDomain.some((r) => r.startsWith("@"));
    const listed = ofDomain.find((r) => !r.startsWith("@") && !r.toLowerCase().startsWith("postmaster@")) ?? ofDomain.find((r) => !r.startsWith("@")) ?? (wholeDomain ? `postmaster@${domain}` : null);
    return { listed, refusesUnknown: !wholeDomain };
}
