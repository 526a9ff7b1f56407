// One run of the live checker: the plan's expectation against DNS (every nameserver), SMTP (every MX
// host) and policy, the parts side by side so a dead host or nameserver costs its timeout once.
import { promises as systemDns } from "node:dns";
import { setTimeout as delay } from "node:timers/promises";
import type { Plan } from "../plan/report";
import { zoneOf } from "../topology/placement";
import { authoritativeResolver } from "./authoritative-resolver";
import { checkDns, type Nameserver } from "./dns";
import { DEFAULT_QUERY_OPTIONS } from "./dns-query";
import { buildExpectation, type StackOutputs } from "./expectation";
import { summarise, type Area, type CheckReport, type Finding } from "./findings";
import { checkPolicy } from "./policy";
import { checkMxHost, DEFAULT_SMTP_OPTIONS } from "./smtp";

export interface CheckOptions {
    only: Area[];
    nameservers?: Nameserver[];
    outputs?: StackOutputs;
    ca?: string[];
    smtpPort?: number;
}

export interface CheckRun {
    report: CheckReport;
    /** Nothing could be reached at all (no nameserver found, no MX host answered): probably no network. */
    unreachable: boolean;
}

export async function runCheck(plan: Plan, options: CheckOptions): Promise<CheckRun> {
    const started = Date.now();
    const expectation = buildExpectation(plan, options.outputs);
    const findings: Finding[] = [];
    // SMTP starts at once for hosts whose address the plan knows; the others wait for what DNS serves.
    const smtpOptions = { ...DEFAULT_SMTP_OPTIONS, ca: options.ca, port: options.smtpPort };
    const wantSmtp = options.only.includes("smtp");
    const servers = [...expectation.mxHosts, ...expectation.siteServers];
    const early = wantSmtp ? servers.filter((h) => h.address !== null).map((h) => checkMxHost(expectation, h, h.address, smtpOptions)) : [];
    // And at its IPv6 address, for a host with an AAAA: a sender that tries IPv6 first meets that one, and
    // a host that does not answer there costs it a connect timeout for every message.
    const ipv6Of = expectation.addresses6;
    const early6 = wantSmtp ? servers.filter((h) => typeof ipv6Of[h.hostname] === "string").map((h) => checkMxHost(expectation, h, ipv6Of[h.hostname], smtpOptions)) : [];
    // DNS always runs: policy needs its nameservers, and SMTP the addresses it observes.
    const dns = await checkDns(expectation, { nameservers: options.nameservers, query: DEFAULT_QUERY_OPTIONS });
    if (options.only.includes("dns")) findings.push(...dns.findings);
    const addresses: Record<string, string> = {};
    for (const host of servers) {
        const address = host.address ?? dns.observedAddresses[host.hostname];
        if (address !== undefined) addresses[host.hostname] = address;
    }
    // A partner's MX named outside our zones, its address not given: what its own DNS answers, as senders find it.
    const elsewhere = servers.filter((h) => addresses[h.hostname] === undefined && zoneOf(h.hostname, expectation.domains) === undefined);
    await Promise.all(
        elsewhere.map(async (h) => {
            const found = await Promise.race([systemDns.resolve4(h.hostname).then((a) => a[0], () => undefined), delay(5000, undefined, { ref: false })]);
            if (found !== undefined) addresses[h.hostname] = found;
        }),
    );
    const late = wantSmtp ? servers.filter((h) => h.address === null).map((h) => checkMxHost(expectation, h, addresses[h.hostname] ?? null, smtpOptions)) : [];
    const addresses6: Record<string, string> = {};
    for (const host of servers) {
        const address6 = ipv6Of[host.hostname] === null ? dns.observedAddresses6[host.hostname] : (ipv6Of[host.hostname] ?? undefined);
        if (address6 !== undefined) addresses6[host.hostname] = address6;
    }
    const late6 = wantSmtp ? servers.filter((h) => ipv6Of[h.hostname] === null && addresses6[h.hostname] !== undefined).map((h) => checkMxHost(expectation, h, addresses6[h.hostname], smtpOptions)) : [];
    const [smtp, policy] = await Promise.all([
        Promise.all([...early, ...late, ...early6, ...late6]),
        options.only.includes("policy")
            ? checkPolicy(expectation, { resolver: authoritativeResolver(dns.nameservers, DEFAULT_QUERY_OPTIONS, dns.failing), addresses, addresses6, timeoutMs: 5000, ca: options.ca })
            : Promise.resolve([]),
    ]);
    findings.push(...smtp.flat(), ...policy);
    const noNameserver = Object.values(dns.nameservers).every((s) => s.length === 0);
    const smtpFindings = smtp.flat();
    const noHost = smtpFindings.length > 0 && smtpFindings.every((f) => f.check === "connection" || f.check === "address");
    return {
        report: summarise(plan.stack, dns.nameservers, findings, (Date.now() - started) / 1000),
        unreachable: noNameserver && (noHost || !options.only.includes("smtp")),
    };
}
