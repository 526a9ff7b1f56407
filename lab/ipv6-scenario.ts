// Scenario `ipv6-broken`: the primary's IPv6 path drops every packet (ip6tables DROP on port 25 in its
// namespace, the IPv6 half of primary-drops) while IPv4 works. A sender that tries IPv6 first (the lab's
// sending MTA does: smtp_address_preference = ipv6) must still deliver within its normal retry: Postfix's
// SMTP client waits out smtp_connect_timeout (5 s in the lab) on the AAAA, then tries the next address of
// the same MX, its A, in the same delivery attempt. A sender with IPv6 only hands the mail to mx2 at its
// AAAA instead, and mx2 takes it to the primary over the family that answers. Nothing lost, each message
// once; the sending MTA's log must show the IPv6 timeout and the IPv4 delivery, the primary's the relay's
// hand-over over IPv4.
import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { isIPv6 } from "node:net";
import type { Drill, Row } from "./drill";
import type { Lab } from "./lab";
import { hostKey } from "./net";
import { SENDER } from "./sender";
import { waitFor } from "./wait";

const BATCH = 10;

/** The file's size now: a mark to read what is written after it. */
function length(file: string): number {
    if (!existsSync(file)) return 0;
    const fd = openSync(file, "r");
    try {
        return fstatSync(fd).size;
    } finally {
        closeSync(fd);
    }
}

/** What was written to the file since the mark. */
function since(file: string, mark: number): string {
    if (!existsSync(file)) return "";
    const fd = openSync(file, "r");
    try {
        const size = fstatSync(fd).size;
        const buffer = Buffer.alloc(Math.max(0, size - mark));
        readSync(fd, buffer, 0, buffer.length, mark);
        return buffer.toString("utf8");
    } finally {
        closeSync(fd);
    }
}

function escaped(text: string): string {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The sending MTA's deliveries in a piece of its log: host, address and the connection setup time (delays=a/b/c/d's c). */
function deliveries(log: string): { host: string; address: string; connectSeconds: number }[] {
    return [...log.matchAll(/ to=<[^>]+>, relay=([^[\s,]+)\[([^\]]+)\]:\d+, .*?delays=[\d.]+\/[\d.]+\/([\d.]+)\/[\d.]+, .*status=sent /g)].map((m) => ({ host: m[1], address: m[2], connectSeconds: Number(m[3]) }));
}

export async function ipv6Broken(drill: Drill): Promise<Row> {
    const lab: Lab = drill.lab;
    const started = Date.now();
    const scenario = "primary's IPv6 path drops packets (IPv4 works)";
    const primary = lab.topology.primary.hostname;
    const address4 = lab.addressOf(primary);
    const address6 = lab.address6Of(primary);
    if (address6 === undefined) throw new Error(`${primary} has no address6 in Pulumi.lab.yaml: there is no IPv6 path to break`);
    const relayAddresses = new Set(lab.relays.byPriority.flatMap((r) => lab.addressesOf(r.hostname)));
    const senderLog = lab.path("sender", "maillog");
    const primaryLog = lab.path("primary", "maillog");
    const failures: string[] = [];
    const notes: string[] = [];
    const timedOut = new RegExp(`connect to ${escaped(primary)}\\[${escaped(address6)}\\]:25: Connection timed out`);

    lab.primary.drop(true, ["ipv6"]);
    // Both assigned before anything after the try runs (an exception leaves through it).
    let direct!: ReturnType<Drill["send"]>;
    let viaRelay!: ReturnType<Drill["send"]>;
    let relaySeconds = 0;
    try {
        // The IPv6 path is dead, IPv4 answers: every message reaches the primary itself, over IPv4.
        if (lab.answers220(SENDER.key, address6)) failures.push(`${primary} still answers at ${address6} with its IPv6 path dropped`);
        const mark = length(senderLog);
        direct = drill.send(`${scenario} (primary up)`, BATCH);
        const ackedDirect = await drill.waitAcknowledged(direct);
        await drill.waitDelivered(direct, ackedDirect.size);
        const elsewhere = [...ackedDirect.values()].filter((h) => h !== primary).length;
        if (elsewhere > 0) failures.push(`${elsewhere} of ${BATCH} went elsewhere than ${primary}, whose IPv4 works`);
        const log = since(senderLog, mark);
        const timeouts = log.split("\n").filter((l) => timedOut.test(l)).length;
        if (timeouts === 0) failures.push(`the sending MTA logged no timed-out connection to ${primary}[${address6}]`);
        const toPrimary = deliveries(log).filter((d) => d.host === primary);
        const overIpv4 = toPrimary.filter((d) => d.address === address4);
        if (overIpv4.length !== ackedDirect.size) failures.push(`${overIpv4.length} of ${ackedDirect.size} deliveries to ${primary} went over IPv4 (${address4}); the log has ${toPrimary.map((d) => d.address).join(", ") || "none"}`);
        const slowest = Math.max(0, ...overIpv4.map((d) => d.connectSeconds));
        notes.push(`primary up: the sending MTA timed out ${timeouts}x at ${address6}, then delivered all ${overIpv4.length} over IPv4 (${address4}; connection setup up to ${slowest.toFixed(1)} s)`);

        // A sender that has only IPv6 (the primary's AAAA times out for it, and it has no IPv4 to try) hands
        // the mail to mx2 at its AAAA; mx2 takes it to the primary at once, over the family that answers.
        const [mx2] = lab.relays.byPriority;
        const mx2Address6 = lab.address6Of(mx2.hostname);
        if (mx2Address6 === undefined) throw new Error(`${mx2.hostname} has no address6 in Pulumi.lab.yaml`);
        const primaryMark = length(primaryLog);
        const subject = `drill ${drill.runId} ipv6 ${scenario} (an IPv6-only sender, to ${hostKey(mx2.hostname)})`;
        // smtp-source exits non-zero unless every message got its 250.
        const pid = lab.sender.send(subject, BATCH, 2, { server: `[${mx2Address6}]:25` });
        viaRelay = { subject, idPrefix: `<${pid.toString(16).padStart(4, "0")}.`, count: BATCH, since: 0 };
        const started6 = Date.now();
        await drill.waitDelivered(viaRelay, BATCH);
        relaySeconds = (Date.now() - started6) / 1000;
        await drill.waitRelaysEmpty();
        // Which relay handed over what, and over which of its addresses (the lab has no PTR: unknown[address]).
        const handovers = [...since(primaryLog, primaryMark).matchAll(/ client=[^[\s]+\[([^\]]+)\]/g)].map((m) => m[1]).filter((a) => relayAddresses.has(a));
        const over4 = handovers.filter((a) => a === lab.addressOf(mx2.hostname));
        if (over4.length < BATCH) failures.push(`the primary logged ${over4.length} hand-overs from ${hostKey(mx2.hostname)} over IPv4 for ${BATCH} messages (${handovers.join(", ") || "none"})`);
        if (handovers.some((a) => isIPv6(a))) failures.push(`hand-overs came over IPv6 (${handovers.filter((a) => isIPv6(a)).join(", ")}), whose path to the primary is dropped`);
        notes.push(`an IPv6-only sender: ${hostKey(mx2.hostname)} accepted ${BATCH} at ${mx2Address6} and handed ${over4.length} to the primary over IPv4 in ${relaySeconds.toFixed(1)} s`);
    } finally {
        lab.primary.drop(false, ["ipv6"]);
    }
    await waitFor(`${primary} to answer 220 at ${address6} again`, () => lab.answers220(SENDER.key, address6), 30_000).catch(() => failures.push(`${primary} does not answer at ${address6} once its IPv6 path is back`));

    // The sending MTA's log says which messages were acknowledged; smtp-source, straight to mx2, succeeded
    // only once mx2 had acknowledged all of its messages.
    const ackedDirect = [...drill.acknowledged(direct).keys()];
    const deliveredCounts = new Map([...drill.delivered(direct), ...drill.delivered(viaRelay)]);
    const lostDirect = ackedDirect.filter((id) => !deliveredCounts.has(id));
    const lost = lostDirect.length + Math.max(0, BATCH - drill.delivered(viaRelay).size);
    const duplicates = [...deliveredCounts.values()].reduce((n, c) => n + c - 1, 0);
    if (lost > 0) failures.push(`LOST: ${lost} (${lostDirect.slice(0, 5).join(" ")})`);
    if (duplicates > 0) failures.push(`${duplicates} duplicates`);
    if (ackedDirect.length !== BATCH) failures.push(`${ackedDirect.length} of ${BATCH} acknowledged through the sending MTA`);
    return {
        scenario,
        sent: 2 * BATCH,
        acknowledged: ackedDirect.length + BATCH,
        delivered: deliveredCounts.size,
        duplicates,
        lost,
        bounced: 0,
        seconds: (Date.now() - started) / 1000,
        recoverySeconds: null,
        pass: failures.length === 0,
        detail: `${failures.length > 0 ? `${failures.join("; ")}; ` : ""}${notes.join("; ")}`,
    };
}
