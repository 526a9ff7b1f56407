// The relays (backup MX hosts): relay-image/entrypoint.sh run in each relay's namespace with exactly
// the environment the relay component passes, pointed at the lab's files; and the ways the drill
// stops, kills, reconfigures and inspects them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Relay, Topology } from "../lib/topology/schema";
import { recipientsFile, relayEnvironment } from "../lib/render/relay-env";
import { INSTALL_RECIPIENTS } from "../lib/render/relay-apply";
import type { Lab } from "./lab";
import { hostKey } from "./net";
import { flushQueue, readQueue, type QueuedMessage } from "./postfix-instance";
import { SENDER } from "./sender";
import { waitFor } from "./wait";

export const ENTRYPOINT = join(__dirname, "..", "relay-image", "entrypoint.sh");

export class Relays {
    private readonly overrides = new Map<string, Record<string, string>>();

    constructor(
        private readonly lab: Lab,
        /** Relay flusher probe interval (the relay image's FLUSH_PROBE_INTERVAL). */
        private readonly probeInterval: string,
    ) {}

    /** The topology's relays, lowest MX priority first (mx2 before mx3). */
    get byPriority(): Relay[] {
        return [...this.lab.topology.relays].sort((a, b) => a.priority - b.priority);
    }

    /** The relay's POSTFIX_ROOT: its configuration (etc) and queue (spool) live under it. */
    root(relay: Relay): string {
        return this.lab.path(hostKey(relay.hostname), "root");
    }

    conf(relay: Relay): string {
        return join(this.root(relay), "etc");
    }

    /** The Postfix master's pid from the relay's pid file (the same while it is only reloaded). */
    masterPid(relay: Relay): number | undefined {
        const file = join(this.root(relay), "spool", "pid", "master.pid");
        const pid = existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : NaN;
        return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    }

    env(relay: Relay): Record<string, string> {
        const key = hostKey(relay.hostname);
        const recipients = this.lab.path(key, "recipients");
        if (!existsSync(recipients)) writeFileSync(recipients, recipientsFile(this.lab.topology));
        return {
            // Exactly what the relay component passes, pointed at the lab's files.
            ...relayEnvironment(this.lab.topology, relay, recipients),
            POSTFIX_ROOT: this.root(relay),
            FLUSH_PROBE_INTERVAL: this.probeInterval,
            ...(this.overrides.get(key) ?? {}),
        };
    }

    /** Extra environment for a relay's next start (e.g. a short QUEUE_LIFETIME); undefined clears it. */
    override(relay: Relay, env: Record<string, string> | undefined): void {
        if (env === undefined) this.overrides.delete(hostKey(relay.hostname));
        else this.overrides.set(hostKey(relay.hostname), env);
    }

    /**
     * The relays' apply step: the topology's recipients file on stdin to the entrypoint's
     * install-recipients, with the relay's own environment (the cloud pipes it through `docker exec`).
     */
    installRecipients(relay: Relay, topology: Topology): { status: number | null; output: string } {
        const r = this.lab.net.exec(hostKey(relay.hostname), ["sh", ENTRYPOINT, INSTALL_RECIPIENTS], { input: recipientsFile(topology), env: this.env(relay) });
        return { status: r.status, output: (r.stdout + r.stderr).trim() };
    }

    start(relay: Relay): void {
        const key = hostKey(relay.hostname);
        mkdirSync(this.lab.path(key), { recursive: true });
        this.lab.net.spawn(key, ["sh", ENTRYPOINT], this.lab.path(key, "relay.log"), this.env(relay));
    }

    /** Until it answers 220 to the sending side. */
    async waitUntilAnswering(relay: Relay): Promise<void> {
        await waitFor(`${relay.hostname} to answer 220`, () => this.lab.answers220(SENDER.key, this.lab.addressOf(relay.hostname)), 30_000);
    }

    async stop(relay: Relay): Promise<void> {
        const key = hostKey(relay.hostname);
        this.lab.net.killAll(key, "SIGTERM");
        await waitFor(`${relay.hostname} to stop`, () => this.lab.net.pids(key).length === 0, 30_000);
    }

    /** Every process of the relay, SIGKILLed at once: a power cut, not a shutdown. */
    kill(relay: Relay): number {
        return this.lab.net.killAll(hostKey(relay.hostname), "SIGKILL");
    }

    queue(relay: Relay): QueuedMessage[] {
        return readQueue(this.lab.net, hostKey(relay.hostname), this.conf(relay));
    }

    flush(relay: Relay): void {
        flushQueue(this.lab.net, hostKey(relay.hostname), this.conf(relay));
    }
}
