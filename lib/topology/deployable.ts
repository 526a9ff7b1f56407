// What a topology must not contain when it is deployed for real. The committed example stacks use
// reserved names and documentation addresses on purpose (they plan offline and run in the lab); a
// real `pulumi up` with them would create hosted zones nobody can delegate and health checks that can
// never pass, so the program refuses them and says what to change.
import { BlockList, isIPv4 } from "node:net";
import type { Problem } from "./rules";
import { formatProblems } from "./validate";
import type { Topology } from "./schema";
import { domainOfRecipient, isWithinDomain } from "./placement";
import { parseSshUrl } from "./ssh-url";
import { isPublicIpv6 } from "./ipv6";

// RFC 2606 and RFC 6761: names that can never be delegated to anyone.
const RESERVED_DOMAINS = ["example.com", "example.net", "example.org"];
const RESERVED_TLDS = ["test", "example", "invalid", "localhost"];

/** The sample zone id in Cloudflare's API documentation. */
export const CLOUDFLARE_SAMPLE_ZONE_ID = "023e105f4ecef8ad9ca31a8372d0c353";

// Addresses no sender on the Internet can reach: RFC 5737 documentation, RFC 1918 private, RFC 6598
// shared, loopback, link-local, "this network", benchmarking (RFC 2544), multicast and reserved.
const unreachable = new BlockList();
for (const [network, prefix] of [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10],
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.0.0.0", 24],
    ["192.0.2.0", 24],
    ["192.168.0.0", 16],
    ["198.18.0.0", 15],
    ["198.51.100.0", 24],
    ["203.0.113.0", 24],
    ["224.0.0.0", 3],
] as const) {
    unreachable.addSubnet(network, prefix, "ipv4");
}

export function isReservedDomain(name: string): boolean {
    const tld = name.slice(name.lastIndexOf(".") + 1);
    return RESERVED_TLDS.includes(tld) || RESERVED_DOMAINS.some((d) => isWithinDomain(name, d));
}

/** An IPv4 address outside the ranges above, or an IPv6 one outside documentation and special use (ipv6.ts). */
export function isPublicAddress(address: string): boolean {
    return (isIPv4(address) && !unreachable.check(address, "ipv4")) || isPublicIpv6(address);
}

function publicAddress(path: (string | number)[], address: string, what: string): Problem[] {
    return isPublicAddress(address)
        ? []
        : [{ path, message: `${address} is a documentation, private or reserved address; ${what} needs its public address` }];
}

/** Everything that would make a real deployment fail or point at nothing; empty when it can go ahead. */
export function deploymentProblems(topology: Topology): Problem[] {
    const problems: Problem[] = [];
    topology.domains.forEach((domain, i) => {
        if (isReservedDomain(domain)) {
            problems.push({ path: ["domains", i], message: `${domain} is reserved (RFC 2606) and can never be delegated; put your own domain here` });
        }
    });
    if (topology.primary.placement.kind === "external") {
        problems.push(...publicAddress(["primary", "placement", "address"], topology.primary.placement.address, "the health check and the A record"));
        const address6 = topology.primary.placement.address6;
        if (address6 !== undefined) problems.push(...publicAddress(["primary", "placement", "address6"], address6, "the AAAA record"));
    }
    topology.relays.forEach((relay, i) => {
        const placement = relay.placement;
        if (placement.kind === "partner") {
            placement.addresses.forEach((address, j) => problems.push(...publicAddress(["relays", i, "placement", "addresses", j], address, "the partner MX's health check and records")));
            placement.addresses6.forEach((address, j) => problems.push(...publicAddress(["relays", i, "placement", "addresses6", j], address, "the partner MX's AAAA record")));
            if (isReservedDomain(relay.hostname)) problems.push({ path: ["relays", i, "hostname"], message: `${relay.hostname} is a reserved name; give the partner MX's real hostname` });
            const contactDomain = domainOfRecipient(placement.contact.toLowerCase());
            if (isReservedDomain(contactDomain)) problems.push({ path: ["relays", i, "placement", "contact"], message: `${placement.contact} can never be reached (reserved domain); give the partner's real contact` });
            return;
        }
        if (relay.placement.kind !== "docker") return;
        problems.push(...publicAddress(["relays", i, "placement", "address"], relay.placement.address, "the health check and the A record"));
        if (relay.placement.address6 !== undefined) problems.push(...publicAddress(["relays", i, "placement", "address6"], relay.placement.address6, "the AAAA record"));
        const { host } = parseSshUrl(relay.placement.host);
        if (isReservedDomain(host)) {
            problems.push({ path: ["relays", i, "placement", "host"], message: `${host} is a reserved name; give the Docker host's real SSH address` });
        }
    });
    topology.dns.providers.forEach((provider, i) => {
        if (provider.kind !== "cloudflare") return;
        for (const [domain, zoneId] of Object.entries(provider.zoneIds)) {
            if (zoneId === CLOUDFLARE_SAMPLE_ZONE_ID) {
                problems.push({
                    path: ["dns", "providers", i, "zoneIds", domain],
                    message: "this is the sample id from Cloudflare's API documentation; copy your zone's id from its Overview page",
                });
            }
        }
    });
    const alertDomain = domainOfRecipient(topology.alerts.email.toLowerCase());
    if (isReservedDomain(alertDomain)) {
        problems.push({ path: ["alerts", "email"], message: `${topology.alerts.email} can never receive the alarms (reserved domain); give a mailbox someone reads` });
    }
    return problems;
}

export function formatDeploymentProblems(problems: readonly Problem[]): string {
    return `${formatProblems(problems).replace(" has ", " cannot be deployed as it is; it has ")}\n(the example stacks use reserved names on purpose: copy one, then put your own domain, addresses and ids in)`;
}
