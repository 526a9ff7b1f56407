// The failover drill: each scenario breaks something, sends uniquely identified messages through the
// sending MTA, repairs it, and checks that every message a mail host of the domain acknowledged
// reached the primary's mailbox exactly once.
import type { Relay, Topology } from "../lib/topology/schema";
import { mailHosts } from "../lib/topology/placement";
import { acmeScenario } from "./acme-scenario";
import { partnerScenario } from "./partner-scenario";
import { checkDrift, checkHealthy, checkNameserverDown, checkNameserverServfail } from "./check-scenarios";
import { dkimScenario } from "./dkim-scenario";
import type { Lab } from "./lab";
import { probeRow } from "./table";
import { primaryRebuilt } from "./rebuild-scenario";
import { ipv6Broken } from "./ipv6-scenario";
import { sitesScenario } from "./site-scenarios";
import { readMaildirs, type MailMessage } from "./mailbox";
import { NAMESERVERS } from "./nameservers";
import { hostKey } from "./net";
import { LAB_STUCK_QUEUE_AGE_SECONDS, type QueueHealth } from "./relays";
import { SENDER } from "./sender";
import { sleep, waitFor } from "./wait";

export interface Row {
    scenario: string;
    sent: number;
    acknowledged: number;
    delivered: number;
    duplicates: number;
    /** Acknowledged by a mail host of the domain, then neither delivered nor bounced to the sender. */
    lost: number;
    bounced: number;
    /** Whole scenario. */
    seconds: number;
    /** From the repair (primary back) to the last message in the mailbox. */
    recoverySeconds: number | null;
    pass: boolean;
    detail: string;
}

interface Tracked {
    subject: string;
    /** smtp-source writes Message-Id: <pid.seq.session@host>; the pid tells one batch from another. */
    idPrefix: string;
    count: number;
    /** The sending MTA's log position when the batch started (pids, and so prefixes, come round again). */
    since: number;
}

const ACK_TIMEOUT_MS = 90_000;
const DELIVERY_TIMEOUT_MS = 60_000;
/** The drill's largest burst: a larger one (the soak's) may wait for a flusher round (scaledDelivery). */
const DRILL_BURST = 300;
/** The fault scenarios' own burst; larger ones (relay-killed's, the soak's) get PER_MESSAGE_MS more for each message over it. */
const FAULT_BURST = 20;
/**
 * A sender that must wait out two 5 s connect timeouts per new connection (primary dropping: its AAAA,
 * then its A) manages about 2 a second: 500 in 279 s (soak, 2026-11-26; 500 in 138 s with one, IPv4 only).
 */
const PER_MESSAGE_MS = 700;

/**
 * A relay whose flush did not take flushes again with a backoff of up to 5 minutes (relay-image's
 * flusher): a larger burst may wait for one such round before the last message is home.
 */
const FLUSHER_MAX_HOLD_MS = 330_000;

function scaled(baseMs: number, count: number): number {
    return baseMs + Math.max(0, count - FAULT_BURST) * PER_MESSAGE_MS;
}

function scaledDelivery(count: number): number {
    return count > DRILL_BURST ? Math.max(FLUSHER_MAX_HOLD_MS, scaled(DELIVERY_TIMEOUT_MS, count)) : DELIVERY_TIMEOUT_MS;
}

export class Drill {
    private batch = 0;
    private readonly mailboxCache = new Map<string, MailMessage>();

    constructor(
        readonly lab: Lab,
        readonly runId: string,
        private readonly progress: (message: string) => void,
    ) {}

    private get mxHosts(): string[] {
        return mailHosts(this.lab.topology).map((h) => h.hostname);
    }

    private get relays(): Relay[] {
        return this.lab.relays.byPriority;
    }

    private nextSubject(scenario: string): string {
        this.batch += 1;
        return `drill ${this.runId} ${this.batch} ${scenario}`;
    }

    private tracked(subject: string, pid: number, count: number, since: number): Tracked {
        return { subject, idPrefix: `<${pid.toString(16).padStart(4, "0")}.`, count, since };
    }

    send(scenario: string, count: number, sessions = 5): Tracked {
        const subject = this.nextSubject(scenario);
        const since = this.lab.sender.log.mark();
        return this.tracked(subject, this.lab.sender.send(subject, count, sessions), count, since);
    }

    /** Message-Ids of this batch that a mail host of the domain accepted, and which host. */
    acknowledged(batch: Tracked): Map<string, string> {
        const ackedBy = new Map<string, string>();
        for (const m of this.lab.sender.log.received(batch.idPrefix, batch.since)) {
            if (m.acceptedBy !== undefined && this.mxHosts.includes(m.acceptedBy)) ackedBy.set(m.messageId, m.acceptedBy);
        }
        return ackedBy;
    }

    /** How many times each Message-Id of the batch is in the primary's mailbox. */
    delivered(batch: Tracked): Map<string, number> {
        const counts = new Map<string, number>();
        for (const m of readMaildirs(this.lab.primary.mailboxBase, this.mailboxCache)) {
            if (m.subject === batch.subject) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
        }
        return counts;
    }

    bounced(batch: Tracked): Set<string> {
        const ids = new Set<string>();
        for (const m of readMaildirs(this.lab.sender.mailboxBase, this.mailboxCache)) {
            for (const id of m.body.match(/Message-Id:\s*(<[^>]+>)/gi) ?? []) {
                const value = /<[^>]+>/.exec(id)![0];
                if (value.startsWith(batch.idPrefix)) ids.add(value);
            }
        }
        return ids;
    }

    async waitAcknowledged(batch: Tracked, timeoutMs = scaled(ACK_TIMEOUT_MS, batch.count)): Promise<Map<string, string>> {
        try {
            await waitFor(`${batch.count} messages of "${batch.subject}" to be acknowledged by an MX`, () => this.acknowledged(batch).size >= batch.count, timeoutMs, 500);
        } catch (error) {
            throw new Error(`${(error as Error).message} (${this.acknowledged(batch).size} were)`);
        }
        return this.acknowledged(batch);
    }

    async waitDelivered(batch: Tracked, expected: number, timeoutMs = scaledDelivery(expected)): Promise<number> {
        try {
            return await waitFor(`${expected} messages of "${batch.subject}" in the primary's mailbox`, () => this.delivered(batch).size >= expected, timeoutMs, 200);
        } catch (error) {
            const queued = this.relays.map((r) => `${hostKey(r.hostname)} ${this.lab.relays.queue(r).length}`).join(", ");
            throw new Error(`${(error as Error).message} (${this.delivered(batch).size} were; relay queues: ${queued})`);
        }
    }

    /** Nothing of ours left in any relay's queue: duplicates, if any, have arrived by now. */
    async waitRelaysEmpty(timeoutMs = DELIVERY_TIMEOUT_MS): Promise<void> {
        await waitFor("every relay queue to drain", () => this.relays.every((r) => this.lab.relays.queue(r).length === 0), timeoutMs, 500);
    }

    private row(scenario: string, batch: Tracked, started: number, recoverySeconds: number | null, extra: Partial<Row> = {}): Row {
        const acknowledged = this.acknowledged(batch);
        const delivered = this.delivered(batch);
        const duplicates = [...delivered.values()].reduce((n, c) => n + c - 1, 0);
        const bounced = extra.bounced !== undefined ? this.bounced(batch) : new Set<string>();
        // Acknowledged mail must end up in the mailbox, or (queue lifetime) back at the sender.
        const lost = [...acknowledged.keys()].filter((id) => !delivered.has(id) && !bounced.has(id));
        const hosts = [...new Set(acknowledged.values())].sort().join(", ");
        const base: Row = {
            scenario,
            sent: batch.count,
            acknowledged: acknowledged.size,
            delivered: delivered.size,
            duplicates,
            lost: lost.length,
            bounced: 0,
            seconds: (Date.now() - started) / 1000,
            recoverySeconds,
            pass: lost.length === 0 && acknowledged.size === batch.count && duplicates === 0,
            detail: lost.length > 0 ? `LOST: ${lost.slice(0, 5).join(" ")}` : `acknowledged by ${hosts}`,
        };
        return { ...base, ...extra };
    }

    /** Primary down, mail queued at the relays, primary back: how long until the mailbox has it all. */
    private async outage(scenario: string, count: number, breakIt: () => void | Promise<void>, repair: () => void | Promise<void>): Promise<Row> {
        const started = Date.now();
        await breakIt();
        const batch = this.send(scenario, count);
        const acked = await this.waitAcknowledged(batch);
        const primary = this.lab.topology.primary.hostname;
        const viaPrimary = [...acked.values()].filter((h) => h === primary).length;
        await repair();
        const repaired = Date.now();
        await this.waitDelivered(batch, acked.size);
        const recovery = (Date.now() - repaired) / 1000;
        await this.waitRelaysEmpty(scaledDelivery(count));
        const row = this.row(scenario, batch, started, recovery);
        if (viaPrimary > 0) return { ...row, pass: false, detail: `${viaPrimary} went to the primary while it was meant to be down` };
        return row;
    }

    async allUp(): Promise<Row> {
        const started = Date.now();
        const batch = this.send("all hosts up", 20);
        await this.waitAcknowledged(batch);
        await this.waitDelivered(batch, 20);
        return this.row("all hosts up", batch, started, null);
    }

    primaryStopped(count = 40): Promise<Row> {
        return this.outage("primary stopped (connection refused)", count, () => this.lab.primary.stop(), () => this.lab.primary.start());
    }

    primaryDropping(count = 20): Promise<Row> {
        return this.outage(
            "primary drops packets (timeouts)",
            count,
            () => this.lab.primary.drop(true),
            () => this.lab.primary.drop(false),
        );
    }

    async primaryTempfail(count = 20): Promise<Row> {
        let etrn = "";
        const row = await this.outage(
            "primary answers 4xx (421), back with ETRN",
            count,
            () => {
                this.lab.primary.stop();
                this.lab.primary.startTempfail();
            },
            async () => {
                await this.lab.primary.stopTempfail();
                this.lab.primary.start();
                // The primary's boot-time ETRN, as its systemd timer sends it.
                etrn = this.lab.primary.etrn();
            },
        );
        const answered = (etrn.match(/: 25\d /g) ?? []).length;
        if (answered < this.relays.length) return { ...row, pass: false, detail: `ETRN not accepted by every relay: ${etrn.trim()}` };
        return { ...row, detail: `${row.detail}; ETRN accepted by ${answered} relays` };
    }

    async primaryAndSecondaryDown(count = 20): Promise<Row> {
        const mx2 = this.relays[0];
        const last = this.relays[this.relays.length - 1];
        const row = await this.outage(
            `primary and ${hostKey(mx2.hostname)} down (${hostKey(last.hostname)} takes it)`,
            count,
            async () => {
                this.lab.primary.stop();
                await this.lab.relays.stop(mx2);
            },
            () => this.lab.primary.start(),
        );
        this.lab.relays.start(mx2);
        await this.lab.relays.waitUntilAnswering(mx2);
        const onlyLast = row.detail === `acknowledged by ${last.hostname}`;
        return onlyLast || !row.pass ? row : { ...row, pass: false, detail: `expected only ${last.hostname}: ${row.detail}` };
    }

    /** A burst of `count` (300 in the drill); mx2 is killed once it holds a sixth of it (50). */
    async relayKilled(count = 300): Promise<Row> {
        const scenario = `${hostKey(this.relays[0].hostname)} SIGKILLed mid-burst, restarted`;
        const mx2 = this.relays[0];
        const started = Date.now();
        this.lab.primary.stop();
        const killAt = Math.max(1, Math.round(count / 6));
        const subject = this.nextSubject(scenario);
        const since = this.lab.sender.log.mark();
        const source = this.lab.sender.sendInBackground(subject, count, 5);
        const batch = this.tracked(subject, source.pid!, count, since);
        await waitFor(`${mx2.hostname} to hold ${killAt} messages`, () => this.lab.relays.queue(mx2).length >= killAt, 60_000, 50);
        const ackedBeforeKill = this.acknowledged(batch);
        const heldByMx2 = [...ackedBeforeKill.values()].filter((h) => h === mx2.hostname).length;
        const killed = this.lab.relays.kill(mx2);
        const survivors = this.lab.relays.processes(mx2);
        if (survivors.length > 0) throw new Error(`${survivors.length} processes of ${mx2.hostname} survived SIGKILL`);
        this.progress(`  killed ${killed} processes of ${mx2.hostname} (SIGKILL) with ${ackedBeforeKill.size} of ${count} acknowledged`);
        await sleep(1000);
        this.lab.relays.start(mx2);
        await this.lab.relays.waitUntilAnswering(mx2);
        const heldAfterRestart = this.lab.relays.queue(mx2).length;
        await waitFor("smtp-source to finish", () => source.exitCode !== null, scaled(60_000, count));
        const acked = await this.waitAcknowledged(batch);
        this.lab.primary.start();
        const repaired = Date.now();
        await this.waitDelivered(batch, acked.size);
        const recovery = (Date.now() - repaired) / 1000;
        await this.waitRelaysEmpty(scaledDelivery(count));
        const row = this.row(scenario, batch, started, recovery);
        const resumed = heldAfterRestart >= heldByMx2;
        // SMTP's known window (RFC 1047): killed after the fsync but before its 250 reached the sender,
        // the relay keeps a copy the sender will send again. A duplicate there is not a loss.
        return {
            ...row,
            pass: row.acknowledged === count && row.delivered === row.acknowledged && resumed,
            detail: `${heldByMx2} acknowledged by ${mx2.hostname} before the kill, ${heldAfterRestart} in its queue after restart${resumed ? "" : " (QUEUE LOST)"}; ${row.detail}${row.duplicates > 0 ? " (duplicates from the RFC 1047 window)" : ""}`,
        };
    }

    async nameserverDown(count = 20): Promise<Row> {
        const ns1 = NAMESERVERS[0];
        const row = await this.outage(
            `${ns1.key} down`,
            count,
            async () => {
                this.lab.dns.stop(ns1.key);
                await waitFor(`${ns1.key} to stop answering`, () => this.lab.dns.dig(SENDER.key, ns1.address, this.lab.topology.domains[0], "MX").status === "TIMEOUT", 10_000);
                this.lab.primary.stop();
            },
            () => this.lab.primary.start(),
        );
        this.lab.dns.start(ns1.key);
        await this.lab.dns.waitUntilServing();
        return row;
    }

    async nameserverServfail(count = 20): Promise<Row> {
        const ns1 = NAMESERVERS[0];
        const domain = this.lab.topology.domains[0];
        let status = "";
        const row = await this.outage(
            `${ns1.key} answers SERVFAIL (partial failure)`,
            count,
            async () => {
                this.lab.dns.stop(ns1.key);
                await sleep(500);
                this.lab.dns.start(ns1.key, [domain]);
                await waitFor(`${ns1.key} to answer SERVFAIL`, () => (status = this.lab.dns.dig(SENDER.key, ns1.address, domain, "MX").status) === "SERVFAIL", 10_000);
                this.lab.primary.stop();
            },
            () => this.lab.primary.start(),
        );
        this.lab.dns.stop(ns1.key);
        await sleep(500);
        this.lab.dns.start(ns1.key);
        await this.lab.dns.waitUntilServing();
        return { ...row, detail: `${ns1.key} said ${status} for ${domain} MX; ${row.detail}` };
    }

    async queueLifetimeExceeded(): Promise<Row> {
        const scenario = "queue lifetime exceeded: bounce to sender";
        const mx2 = this.relays[0];
        const lifetime = 15;
        const started = Date.now();
        this.lab.relays.override(mx2, { QUEUE_LIFETIME: `${lifetime}s` });
        await this.lab.relays.stop(mx2);
        this.lab.relays.start(mx2);
        await this.lab.relays.waitUntilAnswering(mx2);
        this.lab.primary.stop();
        const batch = this.send(scenario, 3, 1);
        await this.waitAcknowledged(batch);
        await sleep((lifetime + 2) * 1000);
        // The next delivery attempt finds the message expired; force it rather than wait for the backoff.
        this.lab.relays.flush(mx2);
        await waitFor("bounce notices at the sender", () => this.bounced(batch).size >= batch.count, 60_000, 500);
        this.lab.relays.override(mx2, undefined);
        await this.lab.relays.stop(mx2);
        this.lab.relays.start(mx2);
        await this.lab.relays.waitUntilAnswering(mx2);
        this.lab.primary.start();
        await sleep(2000);
        const bounced = this.bounced(batch).size;
        const row = this.row(scenario, batch, started, null, { bounced });
        return {
            ...row,
            pass: row.acknowledged === batch.count && bounced === batch.count && row.delivered === 0,
            detail: `QUEUE_LIFETIME=${lifetime}s on ${mx2.hostname}; ${bounced} bounce notices reached ${SENDER.mailbox}; ${row.detail}`,
        };
    }

    /**
     * Stuck mail: the primary is up and takes everyone's mail but the relays' (450 at RCPT), so what they
     * hold cannot go home. mx2's queue health (the URL the alerts' Route53 check asks) must turn 503
     * "stuck" once its oldest message is past STUCK_QUEUE_AGE, and not before; mx3, holding nothing,
     * stays 200. Then the refusal is lifted: the mail arrives exactly once and the health is 200 again.
     */
    async stuckQueue(count = 5): Promise<Row> {
        const scenario = "stuck queue: primary refuses the relays (450), alert";
        const [mx2, ...others] = this.relays;
        const primary = this.lab.addressOf(this.lab.topology.primary.hostname);
        const age = LAB_STUCK_QUEUE_AGE_SECONDS;
        const started = Date.now();
        const failures: string[] = [];
        const samples: { at: number; health: QueueHealth }[] = [];
        const health = (): QueueHealth => {
            const h = this.lab.relays.queueHealth(mx2);
            samples.push({ at: Date.now(), health: h });
            return h;
        };
        const before = health();
        if (before.code !== 200) failures.push(`${hostKey(mx2.hostname)} said ${before.code} "${before.body}" before anything broke`);

        // The mail lands at the relays while the primary is down, as in an outage.
        this.lab.primary.stop();
        const batch = this.send(scenario, count, 1);
        const acked = await this.waitAcknowledged(batch);
        const arrivals = this.lab.relays.queue(mx2).flatMap((m) => (m.arrival !== undefined ? [m.arrival * 1000] : []));
        if (arrivals.length === 0) throw new Error(`${mx2.hostname} holds none of the ${acked.size} acknowledged messages`);
        let flippedAfter = 0;
        let stuckSays = "";
        try {
            // Back up, for everyone but the relays.
            this.lab.primary.refuseClients(this.relays.flatMap((r) => this.lab.addressesOf(r.hostname)));
            this.lab.primary.start();
            const refusing = Date.now();
            await waitFor(`${this.lab.topology.primary.hostname} to answer 220`, () => this.lab.answers220(SENDER.key, primary), 30_000);
            const fromSender = this.rcptReply(primary, this.lab.recipient);
            if (fromSender !== "250") failures.push(`the refusing primary answered ${fromSender}, not 250, to the sending MTA`);
            // The alert's threshold: the oldest message is past STUCK_QUEUE_AGE while the primary answers.
            const threshold = Math.max(Math.min(...arrivals) + age * 1000, refusing);
            await waitFor(`${mx2.hostname}'s queue health to say stuck`, () => {
                const h = health();
                return h.code === 503 && h.body.includes("stuck:");
            }, 120_000, 1000).catch((error: Error) => {
                // What it said instead, and what it holds: the difference between a flusher that never
                // flushed, a status server that is gone, and mail that left.
                const said = [...new Set(samples.slice(-30).map((s) => `${s.health.code} "${s.health.body}"`))].join(" | ");
                const holds = this.lab.relays.queue(mx2).map((m) => m.queue).join(", ") || "nothing";
                throw new Error(`${error.message}; it said ${said}; it holds ${holds}`);
            });
            const flipped = samples[samples.length - 1];
            flippedAfter = (flipped.at - threshold) / 1000;
            stuckSays = flipped.health.body;
            const early = samples.find((s) => s.at < threshold - 1000 && s.health.code !== 200);
            if (early !== undefined) failures.push(`${hostKey(mx2.hostname)} said ${early.health.code} "${early.health.body}" ${((threshold - early.at) / 1000).toFixed(1)} s before the threshold`);
            if (!flipped.health.body.includes(`primary [${primary}]:25 answers 220`) && !flipped.health.body.includes(this.lab.topology.primary.hostname)) {
                failures.push(`the stuck report names no primary: ${flipped.health.body}`);
            }
            for (const other of others) {
                const h = this.lab.relays.queueHealth(other);
                if (h.code !== 200) failures.push(`${hostKey(other.hostname)}, holding nothing, said ${h.code} "${h.body}"`);
            }
        } finally {
            this.lab.primary.refuseClients(undefined);
        }
        const repaired = Date.now();
        // The flusher's backoff (5 s, 10 s, 20 s, ...) decides when it tries again.
        await this.waitDelivered(batch, acked.size, 150_000);
        const recovery = (Date.now() - repaired) / 1000;
        await this.waitRelaysEmpty();
        let after: QueueHealth = { code: 0, body: "" };
        try {
            await waitFor(`${mx2.hostname}'s queue health to say ok again`, () => (after = health()).code === 200, 30_000, 500);
        } catch {
            failures.push(`${hostKey(mx2.hostname)} still says ${after.code} "${after.body}" with its queue empty`);
        }
        const row = this.row(scenario, batch, started, recovery);
        const detail = `${hostKey(mx2.hostname)} answered 503 ${flippedAfter.toFixed(1)} s after its oldest message passed STUCK_QUEUE_AGE=${age}s with the primary refusing ("${stuckSays}"), 200 again once delivered; ${row.detail}`;
        return failures.length === 0 ? { ...row, detail } : { ...row, pass: false, detail: `${failures.join("; ")}; ${detail}` };
    }

    /** The reply code to RCPT TO, asked straight at a mail host from the sending side with swaks. */
    private rcptReply(address: string, to: string): string {
        const r = this.lab.net.exec(SENDER.key, ["swaks", "--server", address, "--from", SENDER.mailbox, "--to", to, "--quit-after", "RCPT", "--timeout", "10"]);
        return /-> RCPT TO:.*\n(?:<[~*]*\s+)?(<\*\*|<-)\s+(\d{3})/.exec(r.stdout)?.[2] ?? "none";
    }

    /**
     * A day-2 change of the recipient list while the relays hold mail: applied to the running relays and
     * the primary through the same apply steps the cloud runs, without restarting anything.
     */
    async configChange(): Promise<Row> {
        const scenario = "config change: recipients, relays holding mail";
        const domain = this.lab.topology.domains[0];
        const original = this.lab.topology;
        const added = `carol@${domain}`;
        const removed = `bob@${domain}`;
        if (original.recipients.includes(added) || !original.recipients.includes(removed) || removed === this.lab.recipient) {
            throw new Error(`the lab topology must list ${removed} and not ${added}, and send its test messages to another recipient`);
        }
        const changed: Topology = { ...original, recipients: [...original.recipients.filter((r) => r !== removed), added] };
        const started = Date.now();
        const failures: string[] = [];
        const checked: string[] = [];
        const applyEverywhere = (topology: Topology) => {
            for (const relay of this.relays) {
                const r = this.lab.relays.installRecipients(relay, topology);
                // A running relay must be reloaded, not merely find the new table at its next start.
                if (r.status !== 0 || !/Postfix reloaded/.test(r.output)) failures.push(`install-recipients on ${hostKey(relay.hostname)} (exit ${r.status}): ${r.output}`);
            }
            this.lab.primary.apply(topology);
        };
        let row: Row;
        try {
            row = await this.outage(
                scenario,
                20,
                () => this.lab.primary.stop(),
                () => {
                    const before = this.relays.map((r) => ({ relay: r, pid: this.lab.relays.masterPid(r), queued: this.lab.relays.queue(r).length }));
                    applyEverywhere(changed);
                    for (const { relay, pid, queued } of before) {
                        const address = this.lab.addressOf(relay.hostname);
                        const key = hostKey(relay.hostname);
                        const toAdded = this.rcptReply(address, added);
                        const toRemoved = this.rcptReply(address, removed);
                        if (toAdded !== "250") failures.push(`${key} answered ${toAdded} to the added ${added}`);
                        if (toRemoved !== "550") failures.push(`${key} answered ${toRemoved} to the removed ${removed}`);
                        const pidAfter = this.lab.relays.masterPid(relay);
                        if (pid === undefined || pidAfter !== pid) failures.push(`${key}'s Postfix master was ${pid}, is ${pidAfter}: restarted`);
                        const queuedAfter = this.lab.relays.queue(relay).length;
                        if (queuedAfter !== queued) failures.push(`${key} held ${queued} messages before the change, ${queuedAfter} after`);
                        checked.push(`${key} ${toAdded}/${toRemoved}, reloaded, master ${pidAfter} kept, ${queuedAfter} queued kept`);
                    }
                    this.lab.primary.start();
                },
            );
            // The primary took the change at its start: it accepts the new recipient and refuses the old.
            const primary = this.lab.addressOf(original.primary.hostname);
            await waitFor(`${original.primary.hostname} to answer 220`, () => this.lab.answers220(SENDER.key, primary), 30_000);
            const primaryAdded = this.rcptReply(primary, added);
            const primaryRemoved = this.rcptReply(primary, removed);
            if (primaryAdded !== "250" || primaryRemoved !== "550") failures.push(`primary answered ${primaryAdded} to ${added}, ${primaryRemoved} to ${removed}`);
            checked.push(`primary ${primaryAdded}/${primaryRemoved}`);
        } finally {
            // Later scenarios see the committed topology again (the primary is up now: a reload).
            applyEverywhere(original);
        }
        for (const host of this.mxHosts) {
            const address = this.lab.addressOf(host);
            const replies = `${this.rcptReply(address, removed)}/${this.rcptReply(address, added)}`;
            if (replies !== "250/550") failures.push(`after restoring, ${hostKey(host)} answered ${replies} to ${removed}/${added}`);
        }
        const detail = `RCPT +${added}/-${removed} after the apply steps: ${checked.join("; ")}; restored; ${row.detail}`;
        // The whole scenario, with the checks and the restore after the delivery.
        const seconds = (Date.now() - started) / 1000;
        return failures.length === 0 ? { ...row, seconds, detail } : { ...row, seconds, pass: false, detail: `${failures.join("; ")}; ${row.detail}` };
    }

    /** Asked straight at each relay, from the outside: every trick gets 5xx, a valid recipient 250. */
    async openRelayProbes(): Promise<Row> {
        const started = Date.now();
        const domain = this.lab.topology.domains[0];
        const valid = this.lab.recipient;
        const tricks = [
            "user@other.example",
            `user%other.example@${domain}`,
            `other.example!user@${domain}`,
            `@${domain}:user@other.example`,
            `"user@other.example"@${domain}`,
            `nobody-here@${domain}`,
        ];
        const failures: string[] = [];
        let attempts = 0;
        let accepted = 0;
        for (const relay of this.relays) {
            const address = this.lab.addressOf(relay.hostname);
            for (const to of [...tricks, valid]) {
                const reply = this.rcptReply(address, to);
                const control = to === valid;
                if (!control) {
                    attempts += 1;
                    if (!reply.startsWith("5")) {
                        accepted += 1;
                        failures.push(`${relay.hostname} answered ${reply} to ${to}`);
                    }
                } else if (reply !== "250") failures.push(`${relay.hostname} refused the valid ${to} (${reply})`);
            }
        }
        return probeRow("security: relay tricks and unknown recipient", started, { sent: attempts, acknowledged: accepted }, failures.length === 0, failures.length === 0 ? `all ${attempts} refused with 5xx at RCPT; ${valid} accepted` : failures.join("; "));
    }
}

/** A lab started otherwise than Pulumi.lab.yaml says (a LabOptions flag): acme, or mx3 a partner's MX. */
export type LabKind = "acme" | "partner";

export interface Scenario {
    /** A contract: --only and other tools name scenarios by it. */
    id: string;
    /** `burst`: messages to send instead of the drill's own number (only for the fault scenarios). */
    run: (d: Drill, burst?: number) => Promise<Row>;
    /** A fault scenario the soak repeats with larger bursts. */
    soak?: true;
    /** Needs a lab started with this option (lab/lab.ts LabOptions); lab/main.ts runs it in a lab of its own. */
    lab?: LabKind;
}

export const SCENARIOS: Scenario[] = [
    { id: "all-up", run: (d) => d.allUp() },
    { id: "primary-stopped", run: (d, burst) => d.primaryStopped(burst), soak: true },
    { id: "primary-drops", run: (d, burst) => d.primaryDropping(burst), soak: true },
    { id: "ipv6-broken", run: (d) => ipv6Broken(d) },
    { id: "primary-4xx", run: (d, burst) => d.primaryTempfail(burst), soak: true },
    { id: "primary-and-mx2-down", run: (d, burst) => d.primaryAndSecondaryDown(burst), soak: true },
    { id: "relay-killed", run: (d, burst) => d.relayKilled(burst), soak: true },
    { id: "ns1-down", run: (d, burst) => d.nameserverDown(burst), soak: true },
    { id: "ns1-servfail", run: (d, burst) => d.nameserverServfail(burst), soak: true },
    { id: "queue-lifetime", run: (d) => d.queueLifetimeExceeded() },
    { id: "stuck-queue", run: (d) => d.stuckQueue() },
    { id: "config-change", run: (d) => d.configChange() },
    { id: "security", run: (d) => d.openRelayProbes() },
    { id: "sites", run: (d) => sitesScenario(d.lab, d.runId) },
    { id: "primary-rebuilt", run: (d) => primaryRebuilt(d) },
    { id: "check-healthy", run: (d) => checkHealthy(d.lab) },
    { id: "check-ns-servfail", run: (d) => checkNameserverServfail(d.lab) },
    { id: "check-ns-down", run: (d) => checkNameserverDown(d.lab) },
    { id: "check-drift", run: (d) => checkDrift(d.lab) },
    { id: "dkim", run: (d) => dkimScenario(d.lab, d.runId) },
    { id: "acme", lab: "acme", run: (d) => acmeScenario(d) },
    { id: "partner-mx", lab: "partner", run: (d) => partnerScenario(d) },
];
