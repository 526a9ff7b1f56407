// Scenario `primary-rebuilt`: the primary is lost for good (its host and its disk) while the relays
// hold mail for it. A new primary comes up at another address from a copy of the old mail directory
// (standing in for the mail volume's snapshot), configured by the same apply step; both nameservers
// publish the new address, and the relays, which look up MX as usual, deliver what they held. The
// old mailbox content and every queued message must be there, each once.
import { rmSync } from "node:fs";
import type { Lab } from "./lab";
import type { Drill, Row } from "./drill";
import { run } from "./net";
import { waitFor } from "./wait";

/** Where the rebuilt primary comes up: the documentation range of the old one, another address. */
export function rebuiltAddress(old: string): string {
    const parts = old.split(".");
    parts[3] = String(((Number(parts[3]) + 1) % 250) + 2);
    return parts.join(".");
}

const BATCH = 20;

export async function primaryRebuilt(drill: Drill): Promise<Row> {
    const lab: Lab = drill.lab;
    const started = Date.now();
    const hostname = lab.topology.primary.hostname;
    const oldAddress = lab.addressOf(hostname);
    const newAddress = rebuiltAddress(oldAddress);
    const failures: string[] = [];

    // Mail already in the mailbox before the loss: what the snapshot must bring back.
    const before = drill.send("before the loss", BATCH);
    await waitFor("the first batch in the primary's mailbox", () => drill.delivered(before).size >= BATCH, 60_000);
    const snapshot = lab.path("mail-snapshot");
    run("cp", ["-a", lab.primary.mailboxBase, snapshot]);

    // The primary goes down; mail queues at the relays.
    lab.primary.stop();
    const held = drill.send("while the primary is lost", BATCH);
    await waitFor("the relays to acknowledge the mail", () => drill.acknowledged(held).size >= BATCH, 90_000);

    // Lost for good: its processes, its network and its disk.
    rmSync(lab.path("primary"), { recursive: true, force: true });
    const rebuildStarted = Date.now();
    await lab.moveHost(hostname, newAddress);
    lab.primary.configure();
    run("cp", ["-a", `${snapshot}/.`, lab.primary.mailboxBase]);
    lab.primary.start();
    await waitFor(`${hostname} to answer 220 at ${newAddress}`, () => lab.answers220(lab.primary.key, newAddress), 30_000);
    for (const nameserver of lab.dns.addresses) {
        // dig's lines of type A include the additional section (the nameservers' own addresses).
        const served = lab.dns.dig(lab.primary.key, nameserver, hostname, "A").answers;
        if (!served.includes(newAddress) || served.includes(oldAddress)) failures.push(`${nameserver} serves ${hostname} A ${served.join(", ")}, not ${newAddress}`);
        // Its AAAA follows too: a sender trying IPv6 first must not meet the lost host's address.
        const newAddress6 = lab.address6Of(hostname);
        if (newAddress6 === undefined) continue;
        const served6 = lab.dns.dig(lab.primary.key, nameserver, hostname, "AAAA").answers;
        if (served6.join() !== newAddress6) failures.push(`${nameserver} serves ${hostname} AAAA ${served6.join(", ") || "nothing"}, not ${newAddress6}`);
    }

    await waitFor("the relays to deliver what they held to the rebuilt primary", () => drill.delivered(held).size >= BATCH, 120_000).catch(() => undefined);
    const recovery = (Date.now() - rebuildStarted) / 1000;

    const kept = drill.delivered(before);
    const arrived = drill.delivered(held);
    if (kept.size !== BATCH) failures.push(`${kept.size} of ${BATCH} messages from before the loss are in the restored mailbox`);
    if (arrived.size !== BATCH) failures.push(`${arrived.size} of ${BATCH} held messages arrived at the rebuilt primary`);
    const duplicates = [...kept.values(), ...arrived.values()].reduce((sum, c) => sum + c - 1, 0);
    if (duplicates > 0) failures.push(`${duplicates} duplicates`);

    // Back to the topology's address for the scenarios that follow (nothing is lost by a move).
    lab.primary.stop();
    await lab.moveHost(hostname, undefined);
    lab.primary.start();
    await waitFor(`${hostname} back at ${oldAddress}`, () => lab.answers220(lab.primary.key, oldAddress), 30_000);

    const acknowledged = drill.acknowledged(before).size + drill.acknowledged(held).size;
    return {
        scenario: "primary rebuilt elsewhere from a snapshot",
        sent: 2 * BATCH,
        acknowledged,
        delivered: kept.size + arrived.size,
        duplicates,
        lost: acknowledged - kept.size - arrived.size,
        bounced: 0,
        seconds: (Date.now() - started) / 1000,
        recoverySeconds: recovery,
        pass: failures.length === 0,
        detail: failures.length === 0 ? `rebuilt at ${newAddress}: ${BATCH} old messages restored, ${BATCH} held by the relays delivered in ${recovery.toFixed(1)} s` : failures.join("; "),
    };
}
