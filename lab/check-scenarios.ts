// The live checker (`npm run check`) run from the sending host against the lab's nameservers and MX
// hosts, the only place it may send traffic: healthy, one nameserver answering SERVFAIL, one dead,
// and one serving a stale zone. Each scenario asserts what the checker names, not only its exit status.
import { join } from "node:path";
import type { CheckReport, Finding } from "../lib/check/findings";
import type { Lab } from "./lab";
import { mailHosts } from "../lib/topology/placement";
import type { Row } from "./drill";
import { probeRow } from "./table";
import { NAMESERVERS } from "./nameservers";
import { SENDER } from "./sender";
import { sleep, waitFor } from "./wait";

const CHECK = join(__dirname, "..", "scripts", "check.ts");

export interface CheckerRun {
    status: number | null;
    report: CheckReport | null;
    stderr: string;
    seconds: number;
}

/** The checker as an operator runs it, from the sending host, pointed at the lab's nameservers (`config`: a lab variant's stack config). */
export function runChecker(lab: Lab, config?: string): CheckerRun {
    const started = Date.now();
    const nameservers = NAMESERVERS.map((n) => n.address).join(",");
    const r = lab.net.exec(SENDER.key, [process.execPath, "--import", "tsx", CHECK, "--stack", "lab", "--nameservers", nameservers, "--json", ...(config !== undefined ? ["--config", config] : [])], { timeoutMs: 60_000 });
    let report: CheckReport | null = null;
    try {
        report = JSON.parse(r.stdout) as CheckReport;
    } catch {
        // reported below through status and stderr
    }
    return { status: r.status, report, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
}

function problems(run: CheckerRun): Finding[] {
    return run.report?.findings.filter((f) => f.severity === "problem") ?? [];
}

function summary(run: CheckerRun): string {
    if (run.report === null) return `exit ${run.status}, no report: ${run.stderr.trim().slice(0, 300)}`;
    const named = problems(run).map((f) => `${f.where || f.subject} ${f.check}: ${f.detail}`);
    return `exit ${run.status}, ${run.report.problems} problem(s), ${run.report.warnings} warning(s) in ${run.seconds.toFixed(1)} s${named.length > 0 ? `: ${named.join(" | ")}` : ""}`;
}

function row(scenario: string, started: number, failures: string[], run: CheckerRun): Row {
    return probeRow(scenario, started, { sent: 0, acknowledged: 0 }, failures.length === 0, failures.length === 0 ? summary(run) : `${failures.join("; ")} (${summary(run)})`);
}

/** Restarts a nameserver with a changed zone (or none: `down`), runs the checker, and restores it. */
async function withNameserver(lab: Lab, key: string, change: { broken?: string[]; without?: string[]; down?: true }, ready: () => boolean): Promise<CheckerRun> {
    lab.dns.stop(key);
    await sleep(500);
    if (change.down !== true) lab.dns.start(key, change.broken ?? [], change.without ?? []);
    try {
        await waitFor(`${key} to serve the changed zone`, ready, 10_000);
        return runChecker(lab);
    } finally {
        lab.dns.stop(key);
        await sleep(500);
        lab.dns.start(key);
        await lab.dns.waitUntilServing();
    }
}

export async function checkHealthy(lab: Lab): Promise<Row> {
    const started = Date.now();
    const run = runChecker(lab);
    const failures: string[] = [];
    if (run.status !== 0) failures.push(`the checker exited ${run.status}, not 0`);
    if (problems(run).length > 0) failures.push("it found problems in a healthy lab");
    // Every MX host and every site's own server was asked, at each of its addresses (IPv4, and IPv6 for
    // a host with an AAAA), and none relays for another domain.
    const ipv6 = mailHosts(lab.topology).filter((h) => lab.address6Of(h.hostname) !== undefined).length;
    const servers = lab.topology.relays.length + 1 + lab.sites.all.length + ipv6;
    const smtpOk = run.report?.findings.filter((f) => f.area === "smtp" && f.check === "relay test" && f.severity === "ok").length ?? 0;
    if (smtpOk !== servers) failures.push(`the relay test passed at ${smtpOk} addresses, not at all ${servers} (MX hosts and site servers, ${ipv6} of them over IPv6 too)`);
    return row("checker: everything healthy", started, failures, run);
}

export async function checkNameserverServfail(lab: Lab): Promise<Row> {
    const started = Date.now();
    const [ns1, ns2] = NAMESERVERS;
    const domain = lab.topology.domains[0];
    const run = await withNameserver(lab, ns1.key, { broken: [domain] }, () => lab.dns.dig(SENDER.key, ns1.address, domain, "MX").status === "SERVFAIL");
    const failures: string[] = [];
    if (run.status !== 1) failures.push(`the checker exited ${run.status}, not 1`);
    const atNs1 = problems(run).find((f) => f.where.includes(ns1.address) && f.check === "answers");
    if (atNs1 === undefined) failures.push(`no finding names ${ns1.key} (${ns1.address}) as failing`);
    else {
        for (const rrset of [`MX ${domain}`, `TXT _dmarc.${domain}`, ...lab.topology.relays.map((r) => `A ${r.hostname}`)]) {
            if (!atNs1.detail.includes("SERVFAIL") || !atNs1.detail.includes(rrset)) failures.push(`the ${ns1.key} finding does not name SERVFAIL for ${rrset}`);
        }
    }
    if (problems(run).some((f) => f.where.includes(ns2.address))) failures.push(`it blames ${ns2.key}, which answered`);
    return row("checker: ns1 answers SERVFAIL", started, failures, run);
}

/** The issue's bound: a dead nameserver costs the checker at most a few seconds, not a minute. */
const DEAD_NAMESERVER_RUN_LIMIT_S = 15;

export async function checkNameserverDown(lab: Lab): Promise<Row> {
    const started = Date.now();
    const [ns1] = NAMESERVERS;
    const domain = lab.topology.domains[0];
    const run = await withNameserver(lab, ns1.key, { down: true }, () => lab.dns.dig(SENDER.key, ns1.address, domain, "MX").status === "TIMEOUT");
    const failures: string[] = [];
    if (run.status !== 1) failures.push(`the checker exited ${run.status}, not 1`);
    const atNs1 = problems(run).find((f) => f.where.includes(ns1.address) && f.check === "answers");
    if (atNs1 === undefined || !atNs1.detail.includes("TIMEOUT")) failures.push(`no finding names ${ns1.key} (${ns1.address}) as not answering`);
    if (run.seconds > DEAD_NAMESERVER_RUN_LIMIT_S) failures.push(`the run took ${run.seconds.toFixed(1)} s with a dead nameserver (limit ${DEAD_NAMESERVER_RUN_LIMIT_S} s)`);
    return row("checker: ns1 down", started, failures, run);
}

export async function checkDrift(lab: Lab): Promise<Row> {
    const started = Date.now();
    const [ns1, ns2] = NAMESERVERS;
    const domain = lab.topology.domains[0];
    const dropped = [...lab.topology.relays].sort((a, b) => b.priority - a.priority)[0].hostname;
    const run = await withNameserver(lab, ns2.key, { without: [dropped] }, () => lab.dns.dig(SENDER.key, ns2.address, dropped, "A").status === "NXDOMAIN");
    const failures: string[] = [];
    if (run.status !== 1) failures.push(`the checker exited ${run.status}, not 1`);
    const atNs2 = problems(run).filter((f) => f.where.includes(ns2.address));
    const mx = atNs2.find((f) => f.check === `MX ${domain}`);
    if (mx === undefined || !mx.detail.includes(dropped)) failures.push(`no finding names ${ns2.key}'s MX set as missing ${dropped}`);
    for (const type of ["A", ...(lab.address6Of(dropped) === undefined ? [] : ["AAAA"]), "TXT"]) {
        if (!atNs2.some((f) => f.check === `${type} ${dropped}`)) failures.push(`no finding names ${ns2.key}'s missing ${type} ${dropped}`);
    }
    if (problems(run).some((f) => f.where.includes(ns1.address))) failures.push(`it blames ${ns1.key}, which serves the plan`);
    return row(`checker: ns2 serves a stale zone without ${dropped}`, started, failures, run);
}
