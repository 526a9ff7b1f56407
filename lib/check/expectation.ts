// What the live domain should look like, read from the offline plan (the one expectation every tool
// reads, DESIGN.md): the record sets per zone, the MX hosts with their addresses, the recipients to
// try, the MTA-STS policy. Values a provider assigns at deploy time (nameserver names, Elastic IPs)
// are not in an offline plan: they come from `pulumi stack output --json` when given, and otherwise
// are only compared between the nameservers.
import type { Plan } from "../plan/report";
import { parseTopology } from "../topology/validate";
import type { Topology } from "../topology/schema";
import { domainOfRecipient, mailHosts, zoneOf } from "../topology/placement";
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
        let values: string[] | null = [normaliseValue(type, row.priority === null ? row.content : `${row.priority} ${row.content}`)];
        if (type === "NS") values = outputs.nameservers?.[zone]?.map((n) => normaliseValue("NS", n)) ?? null;
        if (type === "A" && addressKnown.has(row.name)) {
            const address = addressKnown.get(row.name);
            values = address === null || address === undefined ? null : [address];
        }
        const existing = grouped.get(key);
        if (existing === undefined) grouped.set(key, { zone, name: row.name, type, values });
        else if (existing.values !== null && values !== null) existing.values.push(...values);
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
