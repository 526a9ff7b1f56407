// A resolver in the shape of dns.promises.resolve (what mailauth's SPF evaluator takes) that asks the
// stack's own authoritative nameservers for names in its domains, so policy checks see what the
// providers publish, not a recursive resolver's cache; other names (an SPF include) go the usual way.
import { promises as systemDns } from "node:dns";
import { zoneOf } from "../topology/placement";
import { queryAuthoritative, type QueryOptions, type QueryType } from "./dns-query";
import type { Nameserver } from "./dns";
import { bareName } from "./normalise";

function notFound(name: string, code: "ENOTFOUND" | "ENODATA"): Error {
    return Object.assign(new Error(`${code} ${name}`), { code });
}

export type Resolver = (name: string, type: string) => Promise<string[][] | string[] | { exchange: string; priority: number }[]>;

/**
 * `failing`: servers the DNS check saw fail. They are asked last, and a server that times out here
 * is not asked again: an SPF evaluation makes a dozen lookups, and each would otherwise wait out the
 * dead server's timeout first.
 */
export function authoritativeResolver(nameservers: Record<string, Nameserver[]>, query: QueryOptions, failing: ReadonlySet<string> = new Set()): Resolver {
    const domains = Object.keys(nameservers);
    const dead = new Set(failing);
    return async (name, type) => {
        const zone = zoneOf(bareName(name), domains);
        if (zone === undefined || !["A", "AAAA", "MX", "TXT", "CNAME"].includes(type)) return systemDns.resolve(name, type as "A") as Promise<string[]>;
        const servers = [...nameservers[zone]].sort((a, b) => Number(dead.has(a.address)) - Number(dead.has(b.address)));
        for (const server of servers) {
            const answer = await queryAuthoritative(server.address, name, type as QueryType, query);
            if (answer.rcode === "TIMEOUT" || answer.rcode === "NETWORK") dead.add(server.address);
            if (!answer.authoritative) continue;
            if (answer.rcode === "NXDOMAIN") throw notFound(name, "ENOTFOUND");
            if (answer.rcode !== "NOERROR") continue;
            if (answer.values.length === 0) throw notFound(name, "ENODATA");
            if (type === "TXT") return answer.values.map((v) => [v]);
            if (type === "MX") return answer.values.map((v) => ({ priority: Number(v.split(" ")[0]), exchange: bareName(v.split(" ")[1]) }));
            return answer.values;
        }
        throw Object.assign(new Error(`no nameserver of ${zone} answered for ${name} ${type}`), { code: "ESERVFAIL" });
    };
}
