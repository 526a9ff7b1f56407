// Where a host runs, reduced to what matters for failure independence.
import type { MailHost, Topology } from "./schema";

type Placement = MailHost["placement"];

export function providerOf(placement: Placement): string {
    return placement.kind === "aws" ? "aws" : placement.site.provider;
}

/** Two hosts with the same failure domain go down together (one region, or one provider's site). */
export function failureDomainOf(placement: Placement): string {
    return placement.kind === "aws" ? `aws region ${placement.region}` : `${placement.site.provider} in ${placement.site.city}`;
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
