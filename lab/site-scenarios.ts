// Scenario `sites`: the primary as the switch of two offices with their own mail servers. Mail from
// outside reaches each site user's Maildir at that site; with the switch down the relays hold it and
// it arrives through the switch later; with a site down the switch holds it until the site returns;
// mail within a site, and from one site to another, never passes the switch (its log shows it).
import { readFileSync } from "node:fs";
import type { Lab } from "./lab";
import type { Row } from "./drill";
import { readMaildirs } from "./mailbox";
import { flushQueue, readQueue } from "./postfix-instance";
import { smtpSource } from "./sender";
import { waitFor } from "./wait";

const BATCH = 5;
const DELIVERY_TIMEOUT_MS = 60_000;

interface Batch {
    label: string;
    to: string;
    site: string;
    subject: string;
    /** smtp-source's Message-Id prefix (<pid in hex.). */
    prefix: string;
    count: number;
    /** Submitted through the sending MTA (acknowledgements in its log), or straight to a site server. */
    viaSender: boolean;
}

function prefixOf(pid: number): string {
    return `<${pid.toString(16).padStart(4, "0")}.`;
}

export async function sitesScenario(lab: Lab, runId: string): Promise<Row> {
    const started = Date.now();
    const sites = lab.sites.all;
    if (sites.length < 2) throw new Error("scenario sites needs two sites in Pulumi.lab.yaml");
    const [east, west] = sites;
    const userOf = (site: string) => Object.entries(lab.topology.recipientSites).find(([, s]) => s === site)![0];
    const secondUserOf = (site: string) => Object.entries(lab.topology.recipientSites).filter(([, s]) => s === site).map(([a]) => a).pop()!;
    const batches: Batch[] = [];
    const failures: string[] = [];
    const notes: string[] = [];
    let n = 0;

    const fromOutside = (label: string, site: string, to: string): Batch => {
        n += 1;
        const subject = `sites ${runId} ${n} ${label}`;
        const pid = lab.sender.send(subject, BATCH, 2, { to });
        const batch = { label, to, site, subject, prefix: prefixOf(pid), count: BATCH, viaSender: true };
        batches.push(batch);
        return batch;
    };
    const fromSite = (label: string, fromSiteKey: string, server: string, site: string, to: string): Batch => {
        n += 1;
        const subject = `sites ${runId} ${n} ${label}`;
        const r = lab.net.exec(fromSiteKey, smtpSource({ server: `${server}:25`, to, subject, count: BATCH, sessions: 1 }));
        // smtp-source stops with an error at the first refusal, so a clean exit is every message accepted.
        if (r.status !== 0 || r.stderr.trim() !== "") throw new Error(`smtp-source at ${fromSiteKey} failed: ${(r.stderr || r.stdout).trim()}`);
        const batch = { label, to, site, subject, prefix: prefixOf(r.pid), count: BATCH, viaSender: false };
        batches.push(batch);
        return batch;
    };
    const deliveredAt = (batch: Batch): Map<string, number> => {
        const counts = new Map<string, number>();
        for (const m of readMaildirs(lab.sites.mailboxBase(batch.site))) if (m.subject === batch.subject) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
        return counts;
    };
    const arrives = (batch: Batch) => waitFor(`${batch.label}: ${batch.count} messages in ${batch.to}'s Maildir at site ${batch.site}`, () => deliveredAt(batch).size >= batch.count, DELIVERY_TIMEOUT_MS);
    const primaryConf = lab.path("primary", "etc");

    // 1. Everyone up: the switch forwards each site user's mail to that site.
    await arrives(fromOutside(`to ${east.site}`, east.site, userOf(east.site)));
    await arrives(fromOutside(`to ${west.site}`, west.site, userOf(west.site)));

    // 2. The switch down: the relays hold the mail, then deliver through the switch.
    lab.primary.stop();
    const held = fromOutside("switch down", east.site, userOf(east.site));
    await waitFor("the relays to accept the mail while the switch is down", () => lab.sender.log.received(held.prefix).filter((m) => m.acceptedBy !== undefined && m.acceptedBy !== lab.topology.primary.hostname).length >= BATCH, 90_000);
    const repaired = Date.now();
    lab.primary.start();
    await arrives(held);
    notes.push(`switch back: at ${east.site} ${((Date.now() - repaired) / 1000).toFixed(1)} s later`);

    // 3. A site down: the switch keeps its mail (deferred) until the site is back.
    lab.sites.stop(west.site);
    const waiting = fromOutside(`${west.site} down`, west.site, userOf(west.site));
    await waitFor(`the switch to hold mail for ${west.site} (deferred)`, () => readQueue(lab.net, lab.primary.key, primaryConf).filter((m) => m.queue === "deferred" && m.recipients.includes(waiting.to)).length >= BATCH, DELIVERY_TIMEOUT_MS);
    if (deliveredAt(waiting).size > 0) failures.push(`mail for ${west.site} arrived while it was down`);
    lab.sites.start(west.site);
    await waitFor(`${west.site} to answer 220`, () => lab.answers220(lab.primary.key, west.address), 30_000);
    // What the runbook says when a site returns; otherwise Postfix retries within its backoff (minutes).
    flushQueue(lab.net, lab.primary.key, primaryConf);
    await arrives(waiting);

    // 4. Within a site, and from one site to another: straight there, never through the switch.
    const local = fromSite(`within ${east.site}`, east.key, east.address, east.site, secondUserOf(east.site));
    const across = fromSite(`${east.site} to ${west.site}`, east.key, east.address, west.site, userOf(west.site));
    await arrives(local);
    await arrives(across);
    const switchLog = readFileSync(lab.path("primary", "maillog"), "utf8");
    // The log does show what passes the switch: mail from outside.
    if (!switchLog.includes(`message-id=${batches[0].prefix}`)) failures.push("the switch's log does not show even mail from outside: the log check proves nothing");
    for (const batch of [local, across]) {
        if (switchLog.includes(`message-id=${batch.prefix}`)) failures.push(`${batch.label}: the switch's log shows it passed the switch`);
    }
    notes.push(`within ${east.site} and ${east.site} to ${west.site}: not in the switch's log`);

    let delivered = 0;
    let duplicates = 0;
    for (const batch of batches) {
        const counts = deliveredAt(batch);
        delivered += counts.size;
        duplicates += [...counts.values()].reduce((sum, c) => sum + c - 1, 0);
        if (counts.size !== batch.count) failures.push(`${batch.label}: ${counts.size} of ${batch.count} arrived`);
    }
    if (duplicates > 0) failures.push(`${duplicates} duplicates`);
    const sent = batches.reduce((sum, b) => sum + b.count, 0);
    const mxHosts = [lab.topology.primary.hostname, ...lab.topology.relays.map((r) => r.hostname)];
    const acknowledged = batches.reduce((sum, b) => sum + (b.viaSender ? lab.sender.log.received(b.prefix).filter((m) => m.acceptedBy !== undefined && mxHosts.includes(m.acceptedBy)).length : b.count), 0);
    return {
        scenario: "sites: the switch and two offices",
        sent,
        acknowledged,
        delivered,
        duplicates,
        lost: sent - delivered,
        bounced: 0,
        seconds: (Date.now() - started) / 1000,
        recoverySeconds: null,
        pass: failures.length === 0,
        detail: failures.length === 0 ? notes.join("; ") : failures.join("; "),
    };
}
