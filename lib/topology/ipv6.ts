// IPv6 addresses in the topology: their one written form, and which of them a sender on the Internet
// can reach at all. Pure; the schema, the deployment guards, the records and the checker use these.
import { BlockList, isIPv6 } from "node:net";

/**
 * RFC 5952's form (lower case, no leading zeros, the first longest run of two or more zero groups as
 * `::`), so that a record, a zone file and an answer from a nameserver compare as text. The WHATWG URL
 * serializer writes exactly that.
 */
export function canonicalIpv6(address: string): string {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

function blocks(prefixes: readonly (readonly [string, number])[]): BlockList {
    const list = new BlockList();
    for (const [network, prefix] of prefixes) list.addSubnet(network, prefix, "ipv6");
    return list;
}

/** RFC 4291 2.4: global unicast is 2000::/3; everything else is scoped, special or not unicast. */
const GLOBAL_UNICAST = blocks([["2000::", 3]]);

// What an address outside global unicast is, for the message that refuses it (RFC 4291, RFC 4193).
const NOT_GLOBAL: [string, BlockList][] = [
    ["the unspecified address (::)", blocks([["::", 128]])],
    ["the loopback address (::1)", blocks([["::1", 128]])],
    ["an IPv4-mapped address (::ffff:0:0/96)", blocks([["::ffff:0:0", 96]])],
    ["a link-local address (fe80::/10), which no sender beyond its own link can reach", blocks([["fe80::", 10]])],
    ["a unique local address (fc00::/7), private to a site like 10.0.0.0/8", blocks([["fc00::", 7]])],
    ["a multicast address (ff00::/8)", blocks([["ff00::", 8]])],
];

/** Why this is no global unicast address, or undefined when it is one (2000::/3). */
export function notGlobalUnicast(address: string): string | undefined {
    if (!isIPv6(address)) return `${address} is not an IPv6 address`;
    if (GLOBAL_UNICAST.check(address, "ipv6")) return undefined;
    const kind = NOT_GLOBAL.find(([, list]) => list.check(address, "ipv6"))?.[0] ?? "outside global unicast";
    return `${address} is ${kind}; give the host's global unicast address (2000::/3)`;
}

/**
 * Global unicast, but nothing a sender can reach: RFC 3849 and RFC 9637 documentation (the example
 * stacks and the lab use 2001:db8::/32), RFC 5180 benchmarking, RFC 4380 Teredo and the rest of the
 * IETF protocol assignments (2001::/23), RFC 3056 6to4. The IPv6 side of the guards on 192.0.2.0/24.
 */
const UNREACHABLE = blocks([
    ["2001:db8::", 32],
    ["3fff::", 20],
    ["2001::", 23],
    ["2002::", 16],
]);

/** A documentation or special-purpose address within 2000::/3: no real host's AAAA points there. */
export function isReservedIpv6(address: string): boolean {
    return UNREACHABLE.check(address, "ipv6");
}

/** Whether an IPv6 address is one a sender on the Internet can reach (global unicast, not reserved). */
export function isPublicIpv6(address: string): boolean {
    return isIPv6(address) && notGlobalUnicast(address) === undefined && !isReservedIpv6(address);
}
