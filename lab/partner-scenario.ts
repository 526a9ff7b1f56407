// Scenario `partner-mx`, in a lab started with the option partner (lab/partner.ts): MX 30 is another
// organisation's server, a stock Debian Postfix configured only by the script the stack hands a partner.
// Straight at it, from the outside: a listed recipient gets 250, an unknown one of our domain 5xx, and
// the relay tricks are refused. With the primary and mx2 down, the sending MTA's mail goes to it and it
// holds the mail; with the primary back, it finds the primary through our MX records and delivers,
// each message once. Postfix retries on its own (its queue_run_delay and backoff, 300 s by default);
// the scenario runs `postqueue -f` there, as the partner's operator (or our ETRN) would, to shorten
// the wait. Last, a recipient change handed over as the partner gets it: the script run again with
// the new list takes effect at once, changes nothing else, and the original list is put back.
import { splitRecipients } from "../lib/topology/schema";
import { runChecker } from "./check-scenarios";
import type { Drill, Row } from "./drill";
import { hostKey } from "./net";
import { SENDER } from "./sender";
import { waitFor } from "./wait";

const BATCH = 20;

/** The code a server answers at RCPT (swaks from the sending side, never DATA); "none" without one. */
function rcptReply(drill: Drill, address: string, to: string): string {
    const r = drill.lab.net.exec(SENDER.key, ["swaks", "--server", address, "--from", SENDER.mailbox, "--to", to, "--quit-after", "RCPT", "--timeout", "10"]);
    return /-> RCPT TO:.*\n(?:<[~*]*\s+)?(<\*\*|<-)\s+(\d{3})/.exec(r.stdout)?.[2] ?? "none";
}

export async function partnerScenario(drill: Drill): Promise<Row> {
    const scenario = "partner-mx: a partner's stock Postfix at MX 30";
    const lab = drill.lab;
    const partner = lab.partner;
    if (partner === undefined) throw new Error("scenario partner-mx needs a lab started with the option partner (lab/main.ts starts one for it)");
    const started = Date.now();
    const failures: string[] = [];
    const host = partner.host.hostname;
    const key = hostKey(host);
    const domain = lab.topology.domains[0];
    const primary = lab.topology.primary.hostname;
    const [mx2] = lab.relays.byPriority;

    // What the script changed in the stock main.cf: our domain and table added, nothing else.
    const relayDomains = partner.setting("relay_domains");
    const recipientMaps = partner.setting("relay_recipient_maps");
    if (relayDomains !== domain) failures.push(`relay_domains is "${relayDomains}", not ${domain}`);
    if (!/^hash:\S+\/mailcontinuity-example-com-recipients$/.test(recipientMaps)) failures.push(`relay_recipient_maps is "${recipientMaps}"`);
    const now = partner.explicitSettings();
    const addedSettings = now.filter((l) => !partner.stockSettings.includes(l)).map((l) => l.split(" ")[0]).sort();
    const lostSettings = partner.stockSettings.filter((l) => !now.includes(l));
    if (addedSettings.join() !== "relay_domains,relay_recipient_maps" || lostSettings.length > 0) failures.push(`the script changed more than relay_domains and relay_recipient_maps: +${addedSettings.join(", +")} ${lostSettings.map((l) => `-${l}`).join(", ")}`);

    // Straight at the partner, from the outside (as the checker asks every MX): ours 250, unknown 5xx, no relaying.
    const valid = lab.recipient;
    const unknown = `nobody-${drill.runId}@${domain}`;
    const tricks = ["user@other.example", `user%other.example@${domain}`, `other.example!user@${domain}`, `@${domain}:user@other.example`, `"user@other.example"@${domain}`];
    const validReply = rcptReply(drill, partner.address, valid);
    const unknownReply = rcptReply(drill, partner.address, unknown);
    if (validReply !== "250") failures.push(`${key} answered ${validReply} to ${valid}`);
    if (!unknownReply.startsWith("5")) failures.push(`${key} answered ${unknownReply} to the unknown ${unknown}`);
    const trickReplies = tricks.map((to) => ({ to, reply: rcptReply(drill, partner.address, to) }));
    for (const t of trickReplies) if (t.reply.startsWith("2") || t.reply === "none") failures.push(`${key} answered ${t.reply} to the relay attempt ${t.to}`);
    const trickCodes = [...new Set(trickReplies.map((t) => t.reply))].sort().join("/");

    // The live checker, from the sending host, against this lab's plan: the partner's MX checked like ours.
    const check = runChecker(lab, partner.writeStackConfig(lab.path("partner", "Pulumi.lab-partner.json")));
    const smtp = (check.report?.findings ?? []).filter((f) => f.area === "smtp" && f.subject === `${host} (MX ${partner.host.priority}, ${partner.host.placement.organisation}'s)`);
    const said = (name: string) => smtp.find((f) => f.check === name);
    const checked = ["relay test", `unknown recipient @${domain}`, `listed recipient @${domain}`].map((name) => `${name} ${said(name)?.severity ?? "missing"}`);
    const problems = check.report?.findings.filter((f) => f.severity === "problem") ?? [];
    if (check.status !== 0 || problems.length > 0) failures.push(`the checker exited ${check.status}: ${problems.map((f) => `${f.subject} ${f.check}: ${f.detail}`).join(" | ") || check.stderr.slice(-300)}`);
    if (said(`unknown recipient @${domain}`)?.severity !== "ok" || said(`listed recipient @${domain}`)?.severity !== "ok" || said("relay test") === undefined || said("relay test")?.severity === "problem") {
        failures.push(`the checker on ${key}: ${checked.join(", ")}`);
    }
    const relayAdvice = said("relay test")?.severity === "warning" ? ` ("${said("relay test")?.action}")` : "";

    // The primary and mx2 down: the sending MTA's mail goes to MX 30, the partner, which holds it.
    lab.primary.stop();
    await lab.relays.stop(mx2);
    const batch = drill.send(`${scenario} (primary and ${hostKey(mx2.hostname)} down)`, BATCH);
    const acked = await drill.waitAcknowledged(batch);
    const holders = [...new Set(acked.values())].sort();
    if (holders.join() !== host) failures.push(`acknowledged by ${holders.join(", ")}, expected ${host} only`);
    let held = 0;
    await waitFor(`${key} to hold the ${acked.size} messages`, () => (held = partner.queue().length) >= acked.size, 30_000, 500).catch(() => failures.push(`${key} holds ${held} of ${acked.size}`));
    const deliveredEarly = drill.delivered(batch).size;
    if (deliveredEarly > 0) failures.push(`${deliveredEarly} reached the mailbox while the primary was down`);

    // The primary back: the partner delivers to it through MX (itself and worse skipped); postqueue -f as its operator would.
    const logMark = partner.log().length;
    lab.primary.start();
    await waitFor(`${primary} to answer 220`, () => lab.answers220(key, lab.addressOf(primary)), 30_000);
    const repaired = Date.now();
    partner.flush();
    await drill.waitDelivered(batch, acked.size);
    const recovery = (Date.now() - repaired) / 1000;
    await waitFor(`${key}'s queue to drain`, () => partner.queue().length === 0, 60_000, 500).catch(() => failures.push(`${key} still holds ${partner.queue().length}`));
    const handover = partner.log().slice(logMark);
    const sentTo = new Map<string, number>();
    for (const m of handover.matchAll(/ to=<[^>]+>, relay=([^[\s,]+)\[[^\]]*\]:\d+, .*status=sent /g)) sentTo.set(m[1], (sentTo.get(m[1]) ?? 0) + 1);
    const handed = [...sentTo].map(([h, n]) => `${n} to ${h}`).join(", ") || "none";
    if ((sentTo.get(primary) ?? 0) !== acked.size || sentTo.size !== 1) failures.push(`${key}'s log: ${handed} (expected ${acked.size} to ${primary})`);
    lab.relays.start(mx2);
    await lab.relays.waitUntilAnswering(mx2);

    // A recipient change, handed over as the partner gets it: the same script with the new list.
    const added = `carol@${domain}`;
    const removed = lab.topology.recipients.find((r) => r !== valid && !r.startsWith("postmaster@") && !r.startsWith("@") && lab.topology.recipientSites[r] === undefined);
    let change = "";
    if (removed === undefined || lab.topology.recipients.includes(added)) {
        failures.push(`the lab topology must list a second recipient and not ${added}`);
    } else {
        const changed = { ...lab.topology, ...splitRecipients([...lab.topology.recipientEntries.filter((r) => r !== removed), added]) };
        const applied = partner.applyConfig(changed);
        const replies = { added: rcptReply(drill, partner.address, added), removed: rcptReply(drill, partner.address, removed) };
        const settingsAfter = [partner.setting("relay_domains"), partner.setting("relay_recipient_maps")];
        if (applied.status !== 0) failures.push(`the script with the new list failed (${applied.status}): ${applied.output}`);
        if (replies.added !== "250" || !replies.removed.startsWith("5")) failures.push(`after the new list: ${added} ${replies.added}, ${removed} ${replies.removed}`);
        if (settingsAfter[0] !== relayDomains || settingsAfter[1] !== recipientMaps) failures.push(`run again, the script changed relay_domains/relay_recipient_maps to ${settingsAfter.join(" / ")}`);
        if (!/relay_domains has example\.com already/.test(applied.output)) failures.push(`run again, the script did not say it left relay_domains alone: ${applied.output}`);
        const restored = partner.applyConfig();
        if (restored.status !== 0 || rcptReply(drill, partner.address, removed) !== "250") failures.push(`the original list did not come back: ${restored.output}`);
        change = `; the script run again with ${added} added and ${removed} removed: ${added} ${replies.added}, ${removed} ${replies.removed}, its settings unchanged`;
    }

    const delivered = drill.delivered(batch);
    const duplicates = [...delivered.values()].reduce((n, c) => n + c - 1, 0);
    const lost = [...acked.keys()].filter((id) => !delivered.has(id)).length;
    if (acked.size !== BATCH) failures.push(`${acked.size} of ${BATCH} acknowledged`);
    if (lost > 0) failures.push(`${lost} acknowledged messages LOST`);
    if (duplicates > 0) failures.push(`${duplicates} duplicates`);
    const detail =
        `the partner's Postfix: stock Debian (${partner.stockSettings.length} settings) and the script, which added relay_domains = ${relayDomains} and relay_recipient_maps = ${recipientMaps.replace(/^hash:.*\//, "hash:.../")} and changed nothing else; ` +
        `at RCPT: ${valid} ${validReply}, ${unknown} ${unknownReply}, ${tricks.length} relay attempts ${trickCodes}; ` +
        `the checker (exit ${check.status}) on ${key}: ${checked.join(", ")}${relayAdvice}; ` +
        `primary and ${hostKey(mx2.hostname)} down: ${acked.size} acknowledged by ${holders.join(", ")}, ${held} held there; ` +
        `primary back, postqueue -f on ${key}: ${handed} (its log), all in the mailbox in ${recovery.toFixed(1)} s, each once${change}`;
    return {
        scenario,
        sent: BATCH,
        acknowledged: acked.size,
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
