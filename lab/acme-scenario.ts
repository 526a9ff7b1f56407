// Scenario `acme`, in a lab started with the option acme (lab/acme-ca.ts): every MX host holds a
// certificate from the lab's ACME CA (Pebble) obtained by relay-image/lib/acme.sh through DNS-01, the
// sending MTA trusts only Pebble's root and insists on a verified certificate for every MX of the
// domain, and the relays hand mail to the primary only over verified TLS (PRIMARY_TLS=verify). Mail
// then flows through the primary; with the primary stopped it goes to mx2; an impostor at the
// primary's address (self-signed) gets none of it; the primary back with its CA certificate gets it
// all, each hop verified, each message once. Last, a forced renewal on mx2: the certificate it serves
// changes (serial) while its Postfix keeps running (same master pid).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mailHosts } from "../lib/topology/placement";
import type { Drill, Row } from "./drill";
import { hostKey, run } from "./net";
import { SENDER } from "./sender";
import { waitFor } from "./wait";

const BATCH = 10;

/** A log file's text from a byte offset on (what was written since then), and its length now. */
function since(file: string, offset: number): string {
    return existsSync(file) ? readFileSync(file).subarray(offset).toString("utf8") : "";
}

function length(file: string): number {
    return existsSync(file) ? readFileSync(file).length : 0;
}

function verifiedTo(log: string, hostname: string): boolean {
    return new RegExp(`Verified TLS connection (established|reused) to ${hostname.replace(/\./g, "\\.")}\\[`).test(log);
}

export async function acmeScenario(drill: Drill): Promise<Row> {
    const scenario = "acme: certificates from the CA, verified TLS at every hop, renewal";
    const lab = drill.lab;
    const acme = lab.acme;
    if (acme === undefined) throw new Error("scenario acme needs a lab started with ACME (the lab option acme; lab/main.ts starts one for it)");
    const started = Date.now();
    const failures: string[] = [];
    const primary = lab.topology.primary.hostname;
    const [mx2] = lab.relays.byPriority;
    const senderLog = lab.path("sender", "maillog");
    const relayLog = (hostname: string) => lab.path(hostKey(hostname), "relay.log");

    // Each MX serves a certificate for its own name that chains to Pebble's root, and nothing else is trusted.
    const serials: string[] = [];
    for (const host of mailHosts(lab.topology)) {
        const served = acme.served(SENDER.key, host.hostname);
        if (served.verified) serials.push(`${hostKey(host.hostname)} ${served.serial}`);
        else failures.push(`${host.hostname} serves no certificate that verifies for its name against Pebble's root: ${served.output.slice(-300)}`);
    }

    // All up: straight to the primary, its certificate verified by the sending MTA.
    let mark = length(senderLog);
    const direct = drill.send(`${scenario} (all up)`, BATCH);
    const ackedDirect = await drill.waitAcknowledged(direct);
    await drill.waitDelivered(direct, ackedDirect.size);
    const notPrimary = [...ackedDirect.values()].filter((h) => h !== primary).length;
    if (notPrimary > 0) failures.push(`${notPrimary} of the first batch went elsewhere than ${primary}`);
    if (!verifiedTo(since(senderLog, mark), primary)) failures.push(`the sending MTA logged no verified TLS connection to ${primary}`);

    // The primary stopped: the sending MTA falls back to mx2, verified too.
    lab.primary.stop();
    mark = length(senderLog);
    const relayMarks = new Map(lab.relays.byPriority.map((r) => [r.hostname, length(relayLog(r.hostname))]));
    const held = drill.send(`${scenario} (primary stopped)`, BATCH);
    const ackedHeld = await drill.waitAcknowledged(held);
    const holders = [...new Set(ackedHeld.values())];
    if (holders.includes(primary)) failures.push(`mail reached ${primary} while it was stopped`);
    for (const holder of holders) {
        if (!verifiedTo(since(senderLog, mark), holder)) failures.push(`the sending MTA logged no verified TLS connection to ${holder}`);
    }

    // An impostor first: the primary's name and key, but a self-signed certificate. The relays must
    // keep the mail (PRIMARY_TLS=verify) though it answers 220 and would take it.
    const { certFile, keyFile } = lab.primary.tls;
    const genuine = readFileSync(certFile);
    run("openssl", ["req", "-x509", "-key", keyFile, "-days", "1", "-subj", `/CN=${primary}`, "-addext", `subjectAltName=DNS:${primary}`, "-out", certFile]);
    lab.primary.start();
    const refusedBy = lab.relays.byPriority.find((r) => holders.includes(r.hostname)) ?? mx2;
    let impostor = "";
    await waitFor(`${hostKey(refusedBy.hostname)} to refuse the impostor's certificate`, () => /status=deferred \(Server certificate not verified\)/.test((impostor = since(relayLog(refusedBy.hostname), relayMarks.get(refusedBy.hostname) ?? 0))), 60_000, 500).catch(() => {
        failures.push(`${hostKey(refusedBy.hostname)} logged no refusal of the self-signed primary`);
    });
    const leaked = drill.delivered(held).size;
    if (leaked > 0) failures.push(`${leaked} messages reached the primary with a self-signed certificate`);
    const heldBack = lab.relays.queue(refusedBy).length;
    if (/status=sent/.test(impostor)) failures.push(`${hostKey(refusedBy.hostname)} delivered to the impostor`);

    // The primary back with its CA certificate (as its timer would put back): the relays hand their mail over, verifying it.
    writeFileSync(certFile, genuine);
    const handoverMarks = new Map(lab.relays.byPriority.map((r) => [r.hostname, length(relayLog(r.hostname))]));
    const reload = lab.net.exec(lab.primary.key, ["postfix", "-c", lab.primary.tls.configDir, "reload"]);
    if (reload.status !== 0) failures.push(`postfix reload on the primary: ${reload.stderr.trim()}`);
    const repaired = Date.now();
    await drill.waitDelivered(held, ackedHeld.size);
    const recovery = (Date.now() - repaired) / 1000;
    await drill.waitRelaysEmpty();
    for (const holder of holders) {
        const log = since(relayLog(holder), handoverMarks.get(holder) ?? 0);
        if (!verifiedTo(log, primary)) failures.push(`${hostKey(holder)} logged no verified TLS connection to ${primary}`);
        const unverified = /(Untrusted|Anonymous|Trusted) TLS connection (established|reused) to \S+/.exec(log);
        if (unverified !== null) failures.push(`${hostKey(holder)} logged "${unverified[0]}"`);
    }

    // Renewal on mx2, forced: a new serial served, the same Postfix master.
    const pidBefore = lab.relays.masterPid(mx2);
    const before = acme.served(SENDER.key, mx2.hostname);
    const renewStarted = Date.now();
    const renewal = lab.relays.renewCertificate(mx2, true);
    const renewSeconds = (Date.now() - renewStarted) / 1000;
    if (renewal.status !== 0 || !/new certificate/.test(renewal.output)) failures.push(`renew-certificate --force on ${hostKey(mx2.hostname)} (exit ${renewal.status}): ${renewal.output.slice(-400)}`);
    let after = before;
    await waitFor(`${mx2.hostname} to serve its renewed certificate`, () => (after = acme.served(SENDER.key, mx2.hostname)).verified && after.serial !== before.serial, 15_000, 500).catch(() => {
        failures.push(`${mx2.hostname} still serves serial ${after.serial} (verified: ${after.verified}) after the renewal`);
    });
    const pidAfter = lab.relays.masterPid(mx2);
    if (pidBefore === undefined || pidAfter !== pidBefore) failures.push(`${hostKey(mx2.hostname)}'s Postfix master was ${pidBefore}, is ${pidAfter}: restarted, not reloaded`);
    const health = lab.relays.queueHealth(mx2);
    if (health.code !== 200) failures.push(`${hostKey(mx2.hostname)}'s queue health says ${health.code} "${health.body}" with a fresh certificate`);

    const acknowledged = new Map([...ackedDirect, ...ackedHeld]);
    const delivered = new Map([...drill.delivered(direct), ...drill.delivered(held)]);
    const duplicates = [...delivered.values()].reduce((n, c) => n + c - 1, 0);
    const lost = [...acknowledged.keys()].filter((id) => !delivered.has(id)).length;
    if (acknowledged.size !== 2 * BATCH) failures.push(`${acknowledged.size} of ${2 * BATCH} acknowledged`);
    if (lost > 0) failures.push(`${lost} acknowledged messages LOST`);
    if (duplicates > 0) failures.push(`${duplicates} duplicates`);
    const detail =
        `certificates from Pebble by DNS-01 (CNAME into ${acme.challengeZone}): ${acme.issuanceSummary()}; served serials ${serials.join(", ")}; ` +
        `sender -> ${primary} verified; primary stopped: sender -> ${holders.join(", ")} verified; a self-signed primary got nothing (${hostKey(refusedBy.hostname)} held ${heldBack}: "Server certificate not verified"); ` +
        `with its CA certificate back, handed to ${primary} verified in ${recovery.toFixed(1)} s; ` +
        `${hostKey(mx2.hostname)} renewed in ${renewSeconds.toFixed(1)} s: serial ${before.serial} -> ${after.serial}, master ${pidAfter} kept`;
    return {
        scenario,
        sent: 2 * BATCH,
        acknowledged: acknowledged.size,
        delivered: delivered.size,
        duplicates,
        lost,
        bounced: 0,
        seconds: (Date.now() - started) / 1000,
        recoverySeconds: recovery,
        pass: failures.length === 0,
        detail: failures.length === 0 ? detail : `${failures.join("; ")}; ${detail}`,
    };
}
