// Where a host runs, reduced to what matters for failure independence.
import type { MailHost, PartnerRelayPlacement, Relay, Topology } from "./schema";

type Placement = MailHost["placement"];

/** A relay another organisation runs (kind: partner): the stack deploys nothing there. */
export type PartnerRelay = Relay & { placement: PartnerRelayPlacement };
/** A relay the stack runs: its container on a Docker host or an EC2 instance. */
export type OwnRelay = Relay & { placement: Exclude<Relay["placement"], PartnerRelayPlacement> };

export function providerOf(placement: Placement): string {
    if (placement.kind === "aws") return "aws";
    // A partner is its own provider: whatever it runs on, it fails with its organisation.
    if (placement.kind === "partner") return `partner ${placement.organisation.toLowerCase()}`;
    return placement.site.provider;
}

/** Two hosts with the same failure domain go down together (one region, one provider's site, one partner organisation). */
export function failureDomainOf(placement: Placement): string {
    if (placement.kind === "aws") return `aws region ${placement.region}`;
    if (placement.kind === "partner") return `partner ${placement.organisation.toLowerCase()}`;
    return `${placement.site.provider} in ${placement.site.city}`;
}

export function isPartner(host: MailHost): host is PartnerRelay {
    return host.placement.kind === "partner";
}

/** The relays the stack deploys and runs (containers), in the config's order. */
export function ownRelays(topology: Pick<Topology, "relays">): OwnRelay[] {
    return topology.relays.filter((r): r is OwnRelay => r.placement.kind !== "partner");
}

/** The partners' MX hosts, in the config's order. */
export function partnerRelays(topology: Pick<Topology, "relays">): PartnerRelay[] {
    return topology.relays.filter(isPartner);
}

/** Primary first, then relays by priority: the order senders try them in. */
export function mailHosts(topology: Pick<Topology, "primary" | "relays">): MailHost[] {
    return [topology.primary, ...[...topology.relays].sort((a, b) => a.priority - b.priority)];
}

export function isWithinDomain(hostname: string, domain: string): boolean {
    return hostname === domain || hostname.endsWith(`.${domain}`);
}

/** The configured domain whose zone holds this host's A record, if any (the longest match wins). */
export function zoneOf(hostname: string, domains: readonly string[]): string | undefined {
    return [...domains].sort((a, b) => b.length - a.length).find((d) => isWithinDomain(hostname, d));
}

export function domainOfRecipient(recipient: string): string {
    return recipient.slice(recipient.lastIndexOf("@") + 1);
}

/** Pulumi names and Postfix-friendly labels: mx2.example.com -> mx2-example-com. */
export function slug(hostname: string): string {
    return hostname.replace(/\./g, "-");
}

/** A placement as far as its IPv6 goes: an EC2 host's `ipv6`, a configured `address6` (external, Docker). */
type Ipv6Placement = { kind: string; ipv6?: boolean; address6?: string };

/** Whether the host has an IPv6 address (and so an AAAA record, port 25 on IPv6, Postfix on both families). */
export function hasIpv6(placement: Ipv6Placement): boolean {
    return placement.kind === "aws" ? placement.ipv6 === true : placement.address6 !== undefined;
}

/** The IPv6 address the config gives (external, Docker); an EC2 host's is assigned at deploy time. */
export function configuredIpv6(placement: Ipv6Placement): string | undefined {
    return placement.kind === "aws" ? undefined : placement.address6;
}
