// The relays (backup MX hosts) and the ways the drill stops, kills, reconfigures and inspects them,
// through one of two runtimes the scenarios never see (--relay-runtime):
//   process    relay-image/entrypoint.sh run in each relay's namespace with exactly the environment the
//              relay component passes, pointed at the lab's files (POSTFIX_ROOT). The default.
//   container  the image built from relay-image/ (scripts/relay-image.ts), run with podman from
//              relayContainerSpec (lab/container-runtime.ts), the one spec the Docker provider gets:
//              its environment, recipients upload and named queue volume, joined to the relay's namespace.
// Either way the lab adds the same on top: a shorter FLUSH_PROBE_INTERVAL and STUCK_QUEUE_AGE, and a
// scenario's overrides (QUEUE_LIFETIME) for the next start.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Relay, Topology } from "../lib/topology/schema";
import { ownRelays } from "../lib/topology/placement";
import { RELAY_STATUS_PATH, RELAY_STATUS_PORT, recipientsFile, relayEnvironment } from "../lib/render/relay-env";
import { INSTALL_RECIPIENTS, RELAY_ENTRYPOINT, RENEW_CERTIFICATE } from "../lib/render/relay-apply";
import { buildImage, BUILD_LOG_DIR, imageExists, relayImageTag } from "../scripts/relay-image";
import { PODMAN_GLOBAL_OPTIONS, RelayContainer, labRelaySpec, podman, removeLabContainers } from "./container-runtime";
import type { Lab } from "./lab";
import { hostKey } from "./net";
import { flushQueue, readQueue, type QueuedMessage } from "./postfix-instance";
import { SENDER } from "./sender";
import { waitFor } from "./wait";

export const ENTRYPOINT = join(__dirname, "..", "relay-image", "entrypoint.sh");

/** The relays' STUCK_QUEUE_AGE in the lab (30m in the image): mail older than this, still refused by an answering primary, is stuck. */
export const LAB_STUCK_QUEUE_AGE_SECONDS = 20;

/** A relay's queue health as an HTTP client sees it: the status code (0: no answer) and the body. */
export interface QueueHealth {
    code: number;
    body: string;
}

export const RELAY_RUNTIMES = ["process", "container"] as const;
export type RelayRuntimeKind = (typeof RELAY_RUNTIMES)[number];
/** See README's lab section: the process runtime is the default because it is faster, not truer. */
export const DEFAULT_RELAY_RUNTIME: RelayRuntimeKind = "process";

/** --relay-runtime's value; an Error naming the choices otherwise. */
export function parseRelayRuntime(value: string | undefined): RelayRuntimeKind {
    if (value === undefined) return DEFAULT_RELAY_RUNTIME;
    const found = RELAY_RUNTIMES.find((r) => r === value);
    if (found === undefined) throw new Error(`--relay-runtime takes ${RELAY_RUNTIMES.join(" or ")}, not ${value}`);
    return found;
}

/** How relays run: everything Relays (and so every scenario) asks of one. */
interface RelayRuntime {
    readonly kind: RelayRuntimeKind;
    /** Before the first start (the container image built when it is missing). */
    prepare(log: (message: string) => void): void;
    /** Starts the relay; `extraEnv` is the lab's environment on top of the relay component's. */
    start(relay: Relay, extraEnv: Record<string, string>): void;
    /** A clean stop (SIGTERM, as `docker stop`); resolves when nothing of it runs. */
    stop(relay: Relay): Promise<void>;
    /** A power cut: every process of the relay SIGKILLed at once. */
    kill(relay: Relay): void;
    installRecipients(relay: Relay, content: string, extraEnv: Record<string, string>): { status: number | null; output: string };
    /** `entrypoint.sh renew-certificate [--force]` in the running relay (ACME). */
    renewCertificate(relay: Relay, force: boolean, extraEnv: Record<string, string>): { status: number | null; output: string };
    queue(relay: Relay): QueuedMessage[];
    flush(relay: Relay): void;
    masterPid(relay: Relay): number | undefined;
    /** Commands for a person to look inside (--keep). */
    lookInside(relay: Relay): string[];
    /** Removes what the runtime made outside the lab's namespaces and temp dir (containers, volumes). */
    remove(): void;
}

/** relay-image/entrypoint.sh outside a container, in the relay's namespace, under POSTFIX_ROOT. */
class ProcessRuntime implements RelayRuntime {
    readonly kind = "process";

    constructor(private readonly lab: Lab) {}

    prepare(): void {}

    /** The relay's POSTFIX_ROOT: its configuration (etc) and queue (spool) live under it. */
    private root(relay: Relay): string {
        return this.lab.path(hostKey(relay.hostname), "root");
    }

    private conf(relay: Relay): string {
        return join(this.root(relay), "etc");
    }

    private env(relay: Relay, extraEnv: Record<string, string>): Record<string, string> {
        const recipients = this.lab.path(hostKey(relay.hostname), "recipients");
        if (!existsSync(recipients)) writeFileSync(recipients, recipientsFile(this.lab.topology));
        // Exactly what the relay component passes, pointed at the lab's files.
        return { ...relayEnvironment(this.lab.topology, relay, recipients), POSTFIX_ROOT: this.root(relay), ...extraEnv };
    }

    start(relay: Relay, extraEnv: Record<string, string>): void {
        const key = hostKey(relay.hostname);
        mkdirSync(this.lab.path(key), { recursive: true });
        this.lab.net.spawn(key, ["sh", ENTRYPOINT], this.lab.path(key, "relay.log"), this.env(relay, extraEnv));
    }

    async stop(relay: Relay): Promise<void> {
        const key = hostKey(relay.hostname);
        this.lab.net.killAll(key, "SIGTERM");
        await waitFor(`${relay.hostname} to stop`, () => this.lab.net.pids(key).length === 0, 30_000);
    }

    kill(relay: Relay): void {
        this.lab.net.killAll(hostKey(relay.hostname), "SIGKILL");
    }

    /** The cloud pipes the file through `docker exec -i`; here the same subcommand runs in the namespace. */
    installRecipients(relay: Relay, content: string, extraEnv: Record<string, string>): { status: number | null; output: string } {
        const r = this.lab.net.exec(hostKey(relay.hostname), ["sh", ENTRYPOINT, INSTALL_RECIPIENTS], { input: content, env: this.env(relay, extraEnv) });
        return { status: r.status, output: (r.stdout + r.stderr).trim() };
    }

    renewCertificate(relay: Relay, force: boolean, extraEnv: Record<string, string>): { status: number | null; output: string } {
        const r = this.lab.net.exec(hostKey(relay.hostname), ["sh", ENTRYPOINT, RENEW_CERTIFICATE, ...(force ? ["--force"] : [])], { env: this.env(relay, extraEnv), timeoutMs: 180_000 });
        return { status: r.status, output: (r.stdout + r.stderr).trim() };
    }

    queue(relay: Relay): QueuedMessage[] {
        return readQueue(this.lab.net, hostKey(relay.hostname), this.conf(relay));
    }

    flush(relay: Relay): void {
        flushQueue(this.lab.net, hostKey(relay.hostname), this.conf(relay));
    }

    masterPid(relay: Relay): number | undefined {
        const file = join(this.root(relay), "spool", "pid", "master.pid");
        return pidOf(existsSync(file) ? readFileSync(file, "utf8") : "");
    }

    lookInside(relay: Relay): string[] {
        return [`postqueue -c ${this.conf(relay)} -p        # a relay's queue`, `less ${this.lab.dir}/*/relay.log`];
    }

    remove(): void {
        // Its processes live in the lab's namespaces and its files in the lab's dir: both go with the lab.
    }
}

function pidOf(text: string): number | undefined {
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

const QUEUES = ["maildrop", "incoming", "active", "deferred", "hold"];

function sameEnv(a: Record<string, string>, b: Record<string, string>): boolean {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => a[k] === b[k]);
}

/** The relay image run with podman in the relay's namespace, from relayContainerSpec. */
class ContainerRuntime implements RelayRuntime {
    readonly kind = "container";
    private readonly containers = new Map<string, { container: RelayContainer; extraEnv: Record<string, string> }>();

    constructor(private readonly lab: Lab) {}

    /** The image of relay-image/'s current digest, built (base cached) when podman's store lacks it. */
    prepare(log: (message: string) => void): void {
        const tag = relayImageTag();
        if (!imageExists(tag)) log(`relays: ${tag} is not in podman's store; building it (scripts/relay-image.ts; follow it: tail -f ${BUILD_LOG_DIR}/build-${tag.split(":")[1]}.log)`);
        const built = buildImage({ log: (m) => log(`relays: ${m}`) });
        log(`relays: containers of ${built.image} (${(built.sizeBytes / 1e6).toFixed(0)} MB${built.cached ? "" : `, built in ${built.seconds.toFixed(0)} s`}), podman, in the relays' namespaces`);
    }

    private key(relay: Relay): string {
        return hostKey(relay.hostname);
    }

    /** The relay's container (made by start); the spec's name under the lab's prefix. */
    private container(relay: Relay): RelayContainer {
        const entry = this.containers.get(this.key(relay));
        if (entry === undefined) throw new Error(`${relay.hostname}: no container yet (start it first)`);
        return entry.container;
    }

    /**
     * The same container started again when the lab's environment is unchanged (after a stop or a
     * kill: the cloud's restart policy); otherwise recreated with the new environment on top of the
     * spec, on the same queue volume, as a changed container is replaced on a Docker host.
     */
    start(relay: Relay, extraEnv: Record<string, string>): void {
        const key = this.key(relay);
        const entry = this.containers.get(key);
        if (entry !== undefined && sameEnv(entry.extraEnv, extraEnv) && entry.container.exists()) {
            if (!entry.container.state().running) entry.container.start();
            return;
        }
        entry?.container.remove(); // the named queue volume stays
        const container = new RelayContainer(labRelaySpec(this.lab.topology, relay, this.lab.net.id), {
            labId: this.lab.net.id,
            netns: this.lab.net.nsName(key),
            extraEnv,
            dns: this.lab.dns.addresses,
        });
        container.up();
        this.containers.set(key, { container, extraEnv });
    }

    async stop(relay: Relay): Promise<void> {
        this.container(relay).stop();
        await waitFor(`${relay.hostname} to stop`, () => this.lab.net.pids(this.key(relay)).length === 0, 30_000);
    }

    /** `podman kill -s KILL`: PID 1 first, the kernel takes the rest of the container's processes. */
    kill(relay: Relay): void {
        this.container(relay).kill();
    }

    /** `podman exec -i <container> relay-entrypoint install-recipients`: the cloud's `docker exec -i`. */
    installRecipients(relay: Relay, content: string): { status: number | null; output: string } {
        const r = this.container(relay).installRecipients(content);
        return { status: r.status, output: (r.stdout + r.stderr).trim() };
    }

    renewCertificate(relay: Relay, force: boolean): { status: number | null; output: string } {
        const r = this.container(relay).exec([RELAY_ENTRYPOINT, RENEW_CERTIFICATE, ...(force ? ["--force"] : [])], undefined, 180_000);
        return { status: r.status, output: (r.stdout + r.stderr).trim() };
    }

    /** `postqueue -j` in the running container; a stopped one's queue files, read on its volume. */
    queue(relay: Relay): QueuedMessage[] {
        const container = this.container(relay);
        const r = container.exec(["postqueue", "-j"]);
        if (r.status === 0) {
            return r.stdout
                .split("\n")
                .filter(Boolean)
                .map((l) => JSON.parse(l) as { queue_name: string; arrival_time: number; recipients: { address: string }[] })
                .map((m) => ({ queue: m.queue_name, recipients: m.recipients.map((x) => x.address), arrival: m.arrival_time }));
        }
        if (container.state().running) throw new Error(`postqueue -j in ${container.name} failed (${r.status}): ${r.stderr.trim()}`);
        return this.queueOnVolume(container);
    }

    /** One entry per queue file on the volume (recipients unknown without Postfix): for a stopped relay. */
    private queueOnVolume(container: RelayContainer): QueuedMessage[] {
        const mountpoint = podman(["volume", "inspect", "--format", "{{.Mountpoint}}", container.volume]).stdout.trim();
        const files = (dir: string): string[] =>
            !existsSync(dir) ? [] : readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
        return QUEUES.flatMap((queue) => files(join(mountpoint, queue)).map(() => ({ queue, recipients: [] })));
    }

    flush(relay: Relay): void {
        this.container(relay).exec(["postqueue", "-f"]);
    }

    masterPid(relay: Relay): number | undefined {
        const container = this.container(relay);
        return pidOf(container.exec(["cat", `${container.spec.queuePath}/pid/master.pid`]).stdout);
    }

    lookInside(relay: Relay): string[] {
        const name = this.container(relay).name;
        const podmanCommand = ["podman", ...PODMAN_GLOBAL_OPTIONS].join(" ");
        return [`${podmanCommand} exec ${name} postqueue -p        # a relay's queue`, `${podmanCommand} logs ${name}        # its entrypoint and Postfix log`];
    }

    /** Every container and queue volume under the lab's prefix (mcl-<id>-), nothing else in podman's store. */
    remove(): void {
        removeLabContainers(this.lab.net.id, { volumes: true });
        this.containers.clear();
    }
}

export class Relays {
    private readonly overrides = new Map<string, Record<string, string>>();
    private readonly runtime: RelayRuntime;

    constructor(
        private readonly lab: Lab,
        /** Relay flusher probe interval (the relay image's FLUSH_PROBE_INTERVAL). */
        private readonly probeInterval: string,
        runtime: RelayRuntimeKind = DEFAULT_RELAY_RUNTIME,
    ) {
        this.runtime = runtime === "container" ? new ContainerRuntime(lab) : new ProcessRuntime(lab);
    }

    get runtimeKind(): RelayRuntimeKind {
        return this.runtime.kind;
    }

    /** The topology's relays the stack runs, lowest MX priority first (mx2 before mx3); never a partner's MX. */
    get byPriority(): Relay[] {
        return ownRelays(this.lab.topology).sort((a, b) => a.priority - b.priority);
    }

    /** What the lab adds to the relay component's environment, for the relay's next start. */
    private extraEnv(relay: Relay): Record<string, string> {
        return {
            FLUSH_PROBE_INTERVAL: this.probeInterval,
            STUCK_QUEUE_AGE: `${LAB_STUCK_QUEUE_AGE_SECONDS}s`,
            ...(this.lab.acme?.relayEnv() ?? {}),
            ...(this.overrides.get(hostKey(relay.hostname)) ?? {}),
        };
    }

    /** Extra environment for a relay's next start (e.g. a short QUEUE_LIFETIME); undefined clears it. */
    override(relay: Relay, env: Record<string, string> | undefined): void {
        if (env === undefined) this.overrides.delete(hostKey(relay.hostname));
        else this.overrides.set(hostKey(relay.hostname), env);
    }

    prepare(log: (message: string) => void): void {
        this.runtime.prepare(log);
    }

    start(relay: Relay): void {
        if (relay.placement.kind === "partner") throw new Error(`${relay.hostname} is a partner's MX, not a relay the stack runs (lab/partner.ts runs it)`);
        this.runtime.start(relay, this.extraEnv(relay));
    }

    /** Until it answers 220 to the sending side. */
    async waitUntilAnswering(relay: Relay): Promise<void> {
        await waitFor(`${relay.hostname} to answer 220`, () => this.lab.answers220(SENDER.key, this.lab.addressOf(relay.hostname)), 30_000);
    }

    async stop(relay: Relay): Promise<void> {
        await this.runtime.stop(relay);
    }

    /** GET of the relay's queue health URL from the sending side, as the alerts' Route53 checker asks it. */
    queueHealth(relay: Relay): QueueHealth {
        const url = `http://${this.lab.addressOf(relay.hostname)}:${RELAY_STATUS_PORT}${RELAY_STATUS_PATH}`;
        const r = this.lab.net.exec(SENDER.key, ["curl", "--silent", "--max-time", "5", "--write-out", "\n%{http_code}", url], { timeoutMs: 15_000 });
        const at = r.stdout.lastIndexOf("\n");
        return { code: Number(r.stdout.slice(at + 1)) || 0, body: r.stdout.slice(0, Math.max(at, 0)).trim() };
    }

    /** Every process of the relay, SIGKILLed at once: a power cut, not a shutdown. How many there were. */
    kill(relay: Relay): number {
        const processes = this.processes(relay).length;
        this.runtime.kill(relay);
        return processes;
    }

    /** The relay's processes: those in its namespace (a container's too). */
    processes(relay: Relay): number[] {
        return this.lab.net.pids(hostKey(relay.hostname));
    }

    /**
     * The relays' apply step: the topology's recipients file on stdin to the entrypoint's
     * install-recipients, in the running relay (the cloud pipes it through `docker exec -i`).
     */
    installRecipients(relay: Relay, topology: Topology): { status: number | null; output: string } {
        return this.runtime.installRecipients(relay, recipientsFile(topology), this.extraEnv(relay));
    }

    /** The relay's certificate renewed now by its own entrypoint (--force: whatever its expiry), Postfix reloaded. */
    renewCertificate(relay: Relay, force = true): { status: number | null; output: string } {
        return this.runtime.renewCertificate(relay, force, this.extraEnv(relay));
    }

    queue(relay: Relay): QueuedMessage[] {
        return this.runtime.queue(relay);
    }

    flush(relay: Relay): void {
        this.runtime.flush(relay);
    }

    /** The Postfix master's pid from the relay's pid file (the same while it is only reloaded). */
    masterPid(relay: Relay): number | undefined {
        return this.runtime.masterPid(relay);
    }

    lookInside(relay: Relay): string[] {
        return this.runtime.lookInside(relay);
    }

    /** What the runtime made outside the lab's namespaces (containers and their volumes). */
    remove(): void {
        this.runtime.remove();
    }
}
