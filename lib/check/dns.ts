// DNS, per nameserver: every authoritative nameserver of each domain (both providers) is asked
// directly, without recursion, for every record set the plan publishes in that zone. A partial
// failure (one provider answering SERVFAIL, or serving a stale zone) shows here by name, where a
// recursive resolver would hide it by asking the other provider.
import { promises as systemDns } from "node:dns";
import type { Expectation, ExpectedRRset } from "./expectation";
import { DEFAULT_QUERY_OPTIONS, queryAuthoritative, type DnsAnswer, type QueryOptions, type QueryType } from "./dns-query";
import type { Finding } from "./findings";
import { bareName, normaliseSet, sameSet } from "./normalise";

export interface Nameserver {
    /** The NS name, or the address when given as an address and the zone names no server there. */
    name: string;
    address: string;
}

export interface DnsResult {
    nameservers: Record<string, Nameserver[]>;
    findings: Finding[];
    /** What the authoritative servers agree an MX host's address is (for hosts whose address only the deployment knows). */
    observedAddresses: Record<string, string>;
    /** The same for IPv6 (AAAA), for the hosts that have one. */
    observedAddresses6: Record<string, string>;
    /** Addresses of nameservers that failed a question (SERVFAIL, REFUSED, no answer). */
    failing: Set<string>;
}

const FAILED = new Set(["SERVFAIL", "REFUSED", "TIMEOUT", "NETWORK", "NOTIMP", "FORMERR"]);

/** `--nameservers 192.0.2.53,ns2=198.51.100.53`: addresses, optionally named. */
export function parseNameserverList(value: string): Nameserver[] {
    return value
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "")
        .map((s) => {
            const [name, address] = s.includes("=") ? s.split("=", 2) : [s, s];
            if (!/^[0-9.]+$|^[0-9a-f:]+$/i.test(address)) throw new Error(`--nameservers: ${address} is not an IP address (give address or name=address)`);
            return { name, address };
        });
}

async function addressesOf(name: string): Promise<string[]> {
    try {
        return await systemDns.resolve4(name);
    } catch {
        return [];
    }
}

/** Names a given address after the NS record that points at it, when its zone has one (in place). */
async function nameGivenServers(domain: string, servers: Nameserver[], options: QueryOptions): Promise<void> {
    await Promise.all(
        servers
            .filter((s) => s.name === s.address)
            .map(async (server) => {
                const ns = await queryAuthoritative(server.address, domain, "NS", options);
                for (const name of ns.values) {
                    const a = await queryAuthoritative(server.address, name, "A", options);
                    if (a.values.includes(server.address)) server.name = bareName(name);
                }
            }),
    );
}

/**
 * The domain's nameservers: the delegation as the system resolver sees it, plus any server the
 * authoritative servers list at the apex (a provider missing from the registrar's list still gets
 * asked). With `given`, exactly those (named by nameGivenServers, beside the checks).
 */
export async function discoverNameservers(domain: string, given: Nameserver[] | undefined, options: QueryOptions): Promise<{ servers: Nameserver[]; error?: string }> {
    if (given !== undefined) return { servers: given.map((s) => ({ ...s })) };
    let names: string[];
    try {
        names = await systemDns.resolveNs(domain);
    } catch (error) {
        return { servers: [], error: `the system resolver finds no NS for ${domain}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
    }
    const servers: Nameserver[] = [];
    const seen = new Set<string>();
    const add = async (name: string) => {
        const key = bareName(name);
        if (seen.has(key)) return;
        seen.add(key);
        for (const address of await addressesOf(key)) servers.push({ name: key, address });
    };
    await Promise.all(names.map(add));
    const apexLists = await Promise.all(servers.map((s) => queryAuthoritative(s.address, domain, "NS", options)));
    await Promise.all(apexLists.flatMap((a) => a.values).map(add));
    return { servers: servers.sort((a, b) => a.name.localeCompare(b.name) || a.address.localeCompare(b.address)) };
}

function label(server: Nameserver): string {
    return server.name === server.address ? server.address : `${server.name} ${server.address}`;
}

function rrsetName(r: Pick<ExpectedRRset, "name" | "type">): string {
    return `${r.type} ${r.name}`;
}

function listed(values: string[]): string {
    return values.length === 0 ? "nothing" : values.map((v) => (v.includes(" ") && !/^\d+ /.test(v) ? `"${v}"` : v)).join(", ");
}

interface Observation {
    server: Nameserver;
    answer: DnsAnswer;
}

function compareWithPlan(domain: string, rrset: ExpectedRRset, seen: Observation[], findings: Finding[]): void {
    const answering = seen.filter((o) => !FAILED.has(o.answer.rcode) && o.answer.authoritative);
    const normalised = answering.map((o) => ({ server: o.server, rcode: o.answer.rcode, values: normaliseSet(rrset.type, o.answer.values) }));
    const check = rrsetName(rrset);
    if (rrset.values !== null) {
        const expected = rrset.values;
        const wrong = normalised.filter((o) => !sameSet(o.values, expected));
        for (const o of wrong) {
            const missing = expected.filter((v) => !o.values.includes(v));
            const extra = o.values.filter((v) => !expected.includes(v));
            const parts = [o.rcode === "NXDOMAIN" ? "the name does not exist there (NXDOMAIN)" : "", missing.length > 0 && o.rcode !== "NXDOMAIN" ? `missing ${listed(missing)}` : "", extra.length > 0 ? `not in the plan: ${listed(extra)}` : ""].filter((p) => p !== "");
            findings.push({
                area: "dns",
                subject: domain,
                where: label(o.server),
                check,
                severity: "problem",
                detail: `${parts.join("; ")} (the plan: ${listed(expected)})`,
                meaning: `senders and resolvers that ask ${o.server.name} see a different mail setup than the stack declares${rrset.type === "MX" || rrset.type === "A" ? ": mail may go to a host that is gone, or skip one that should take it" : ""}`,
                action: `pulumi up puts the plan's records back at that provider; if someone edited the zone there by hand, find out why first (pulumi refresh shows the edit)`,
            });
        }
        if (wrong.length === 0 && normalised.length > 0) {
            findings.push({ area: "dns", subject: domain, where: "", check, severity: "ok", detail: `${listed(expected)}: as planned at ${normalised.length} nameserver(s)` });
        }
        return;
    }
    // Known only to the deployment: every nameserver must say the same.
    const distinct = [...new Set(normalised.map((o) => o.values.join(", ")))];
    if (distinct.length > 1) {
        findings.push({
            area: "dns",
            subject: domain,
            where: "",
            check,
            severity: "problem",
            detail: `the nameservers disagree: ${normalised.map((o) => `${o.server.name}: ${listed(o.values)}`).join("; ")}`,
            meaning: "which answer a sender gets depends on which provider its resolver asks",
            action: "pulumi up publishes the same records at both providers; give --outputs (pulumi stack output --json) to see which answer the stack expects",
        });
    } else if (normalised.length > 0) {
        const empty = normalised[0].values.length === 0;
        findings.push({
            area: "dns",
            subject: domain,
            where: "",
            check,
            severity: empty ? "problem" : "ok",
            detail: empty ? "no nameserver serves it" : `${listed(normalised[0].values)}: the same at ${normalised.length} nameserver(s) (the value is known after deploy; --outputs compares it with the stack's)`,
            ...(empty ? { meaning: "the record the stack publishes is missing everywhere", action: "pulumi up" } : {}),
        });
    }
}

/** Checks every domain's record sets at every one of its nameservers. */
export async function checkDns(expectation: Expectation, options: { nameservers?: Nameserver[]; query?: QueryOptions } = {}): Promise<DnsResult> {
    const query = options.query ?? DEFAULT_QUERY_OPTIONS;
    const findings: Finding[] = [];
    const nameservers: Record<string, Nameserver[]> = {};
    const observedAddresses: Record<string, string> = {};
    const observedAddresses6: Record<string, string> = {};
    const failing = new Set<string>();
    await Promise.all(
        expectation.domains.map(async (domain) => {
            const found = await discoverNameservers(domain, options.nameservers, query);
            nameservers[domain] = found.servers;
            if (found.servers.length === 0) {
                findings.push({
                    area: "dns",
                    subject: domain,
                    where: "",
                    check: "nameservers",
                    severity: "problem",
                    detail: found.error ?? "no nameserver address found",
                    meaning: "no one can find the domain's mail hosts: senders queue and retry, then bounce",
                    action: "check the delegation at the registrar (the stack's `nameservers` output) and that the zones exist at both providers",
                });
                return;
            }
            const rrsets: { name: string; type: QueryType; expected: ExpectedRRset | null }[] = [
                ...expectation.rrsets.filter((r) => r.zone === domain).map((r) => ({ name: r.name, type: r.type, expected: r })),
                { name: domain, type: "SOA", expected: null },
            ];
            const [results] = await Promise.all([
                Promise.all(found.servers.flatMap((server) => rrsets.map(async (r) => ({ server, rrset: r, answer: await queryAuthoritative(server.address, r.name, r.type, query) })))),
                options.nameservers === undefined ? Promise.resolve() : nameGivenServers(domain, found.servers, query),
            ]);
            for (const server of found.servers) {
                const mine = results.filter((r) => r.server === server);
                const failed = mine.filter((r) => FAILED.has(r.answer.rcode));
                if (failed.length > 0) {
                    failing.add(server.address);
                    const byCode = new Map<string, string[]>();
                    for (const f of failed) byCode.set(f.answer.rcode, [...(byCode.get(f.answer.rcode) ?? []), rrsetName(f.rrset)]);
                    const every = failed.length === mine.length;
                    findings.push({
                        area: "dns",
                        subject: domain,
                        where: label(server),
                        check: "answers",
                        severity: "problem",
                        detail: [...byCode].map(([code, sets]) => `${code} for ${every && sets.length === mine.length ? `every record set asked (${sets.join(", ")})` : sets.join(", ")}`).join("; "),
                        meaning: `resolvers that ask ${server.name} get no answer${every ? " for this domain at all" : " for these"} and must try another nameserver: mail is slower, and if the other provider fails too, it stops`,
                        action: `look at the zone at ${server.name}'s provider (loaded, active, not suspended); see it yourself with dig @${server.address} +norecurse ${domain} MX`,
                    });
                }
                const lame = mine.filter((r) => !FAILED.has(r.answer.rcode) && !r.answer.authoritative);
                if (lame.length > 0) {
                    findings.push({
                        area: "dns",
                        subject: domain,
                        where: label(server),
                        check: "authority",
                        severity: "problem",
                        detail: `answers without the AA bit (lame) for ${lame.map((r) => rrsetName(r.rrset)).join(", ")}`,
                        meaning: `${server.name} is listed for ${domain} but does not host its zone: resolvers discard its answers`,
                        action: `create or reactivate the zone at that provider, or remove ${server.name} from the registrar's nameserver list`,
                    });
                }
            }
            for (const r of rrsets) {
                const seen = results.filter((x) => x.rrset === r).map((x) => ({ server: x.server, answer: x.answer }));
                if (r.type === "SOA") {
                    const serials = [...new Set(seen.filter((o) => o.answer.authoritative && o.answer.values.length > 0).map((o) => `${o.server.name}: ${o.answer.values[0].split(" ").pop()}`))];
                    if (serials.length > 0) findings.push({ area: "dns", subject: domain, where: "", check: `SOA ${domain}`, severity: "note", detail: `serials ${serials.join("; ")} (each provider numbers its own; not compared)` });
                    continue;
                }
                compareWithPlan(domain, r.expected!, seen, findings);
                if (r.type === "A" || r.type === "AAAA") {
                    const agreed = seen.filter((o) => o.answer.authoritative && o.answer.values.length > 0).map((o) => o.answer.values[0]);
                    const observed = r.type === "A" ? observedAddresses : observedAddresses6;
                    if (agreed.length > 0) observed[r.name] = agreed.sort((a, b) => agreed.filter((x) => x === b).length - agreed.filter((x) => x === a).length)[0];
                }
            }
        }),
    );
    return { nameservers, findings, observedAddresses, observedAddresses6, failing };
}
