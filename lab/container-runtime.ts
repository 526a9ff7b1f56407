// Relay containers for the lab: the real image (built by scripts/relay-image.ts) run with podman from
// relayContainerSpec, the one definition the Docker provider also gets (components/relay.ts): the same
// image tag, environment, recipients upload, named queue volume at the spec's path, stop timeout and
// health check. What the lab adds sits on top, never in a second spec: extra environment (a shorter
// FLUSH_PROBE_INTERVAL, PRIMARY_MX...), the network namespace the container joins instead of a port
// mapping, and nameservers. No restart policy: the lab stops, kills and restarts relays itself.
//
// Every container and volume name starts with the lab's prefix (mcl-<id>-), so nothing else in
// podman's store is touched. podman runs with runc and cgroupfs (crun fails on this kernel's cgroup
// mode) and with explicit ulimits (podman's defaults exceed the hard limits here).
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Relay, Topology } from "../lib/topology/schema";
import { readRelayImage } from "../lib/relay-image";
import { slug } from "../lib/topology/placement";
import { relayContainerSpec, type RelayContainerSpec } from "../lib/render/relay-container";
import { INSTALL_RECIPIENTS, RELAY_ENTRYPOINT } from "../lib/render/relay-apply";

export const RELAY_IMAGE_DIR = join(__dirname, "..", "relay-image");
/** Global podman options for every call: runtime and cgroup manager of this machine. */
export const PODMAN_GLOBAL_OPTIONS = ["--runtime", "runc", "--cgroup-manager=cgroupfs"];
export const CONTAINER_ULIMITS = ["nofile=20000:20000", "nproc=4096:4096"];

// Without systemd, podman cannot schedule the periodic health check (a transient timer) and says so on
// every start and removal; the check itself runs on demand (`podman healthcheck run`, health()).
const SYSTEMD_TIMER_NOISE = /^.*unable to get systemd connection to (add|start|remove) healthchecks.*\n?/gm;

export interface PodmanResult {
    status: number | null;
    stdout: string;
    stderr: string;
}

export function podman(args: string[], options: { input?: string | Buffer; timeoutMs?: number } = {}): PodmanResult {
    const r = spawnSync("podman", [...PODMAN_GLOBAL_OPTIONS, ...args], { input: options.input, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
    const text = (b: Buffer | null | undefined) => (b === null || b === undefined ? "" : b.toString("utf8"));
    return { status: r.status, stdout: text(r.stdout), stderr: text(r.stderr).replace(SYSTEMD_TIMER_NOISE, "") + (r.error !== undefined ? `${r.error.message}\n` : "") };
}

function must(what: string, r: PodmanResult): string {
    if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
}

/** The prefix of everything a lab makes (its namespaces too: lab/net.ts). */
export function labPrefix(labId: string): string {
    return `mcl-${labId}`;
}

/**
 * The relay's spec as the stack computes it (components/mail-continuity.ts names a relay
 * <stack>-<slug>), under the lab's prefix instead of the stack's, its image from relay-image/.
 */
export function labRelaySpec(topology: Topology, relay: Relay, labId: string, imageDir = RELAY_IMAGE_DIR): RelayContainerSpec {
    return relayContainerSpec(topology, relay, `${labPrefix(labId)}-${slug(relay.hostname)}`, readRelayImage(imageDir).digest);
}

/**
 * podman's --health-cmd for Docker's test list. podman 4.3 keeps a JSON array as one literal command,
 * but splits "CMD a b" into ["CMD", "a", "b"]: Docker's list, as long as no element holds a space.
 */
export function podmanHealthCommand(tests: string[]): string {
    const [kind, ...rest] = tests;
    if (kind === "NONE") return "none";
    if (kind === "CMD-SHELL" && rest.length === 1) return rest[0];
    if (kind === "CMD" && rest.length > 0 && rest.every((a) => a !== "" && !/\s/.test(a))) return tests.join(" ");
    throw new Error(`health check ${JSON.stringify(tests)}: podman cannot take it as it is`);
}

export interface RelayContainerOptions {
    labId: string;
    /** The network namespace (a name under /var/run/netns) the container joins: its only network. */
    netns: string;
    /** Lab-only environment on top of the spec's (FLUSH_PROBE_INTERVAL, PRIMARY_MX, QUEUE_LIFETIME...). */
    extraEnv?: Record<string, string>;
    /** Nameservers for the container's resolv.conf (the lab's, with its 1 s timeout); podman's default otherwise. */
    dns?: string[];
}

export interface QueuedMessage {
    id: string;
    queue: string;
    recipients: string[];
}

export interface ContainerState {
    status: string;
    running: boolean;
    exitCode: number;
}

export class RelayContainer {
    readonly spec: RelayContainerSpec;
    readonly name: string;
    readonly volume: string;
    private readonly options: RelayContainerOptions;

    constructor(spec: RelayContainerSpec, options: RelayContainerOptions) {
        const prefix = `${labPrefix(options.labId)}-`;
        for (const name of [spec.containerName, spec.volumeName]) {
            if (!name.startsWith(prefix)) throw new Error(`${name}: not under the lab's prefix ${prefix} (labRelaySpec names it)`);
        }
        if (spec.queueHostPath !== undefined) throw new Error(`${spec.containerName}: the lab keeps the queue in a podman volume, not at ${spec.queueHostPath}`);
        this.spec = spec;
        this.name = spec.containerName;
        this.volume = spec.volumeName;
        this.options = options;
    }

    /** The spec's environment with the lab's additions on top. */
    env(): Record<string, string> {
        return { ...this.spec.env, ...(this.options.extraEnv ?? {}) };
    }

    /** `podman create` arguments: the spec, as components/relay.ts hands it to the Docker provider. */
    createArgs(): string[] {
        const hc = this.spec.healthcheck;
        return [
            "create",
            "--name",
            this.name,
            "--hostname",
            this.spec.hostname,
            "--network",
            `ns:/var/run/netns/${this.options.netns}`,
            ...(this.options.dns ?? []).flatMap((d) => ["--dns", d]),
            // As every lab host resolves (lab/net.ts setResolvers): a dead nameserver costs 1 s, not 5.
            ...(this.options.dns !== undefined ? ["--dns-option", "timeout:1", "--dns-option", "attempts:1"] : []),
            ...CONTAINER_ULIMITS.flatMap((u) => ["--ulimit", u]),
            ...Object.entries(this.env()).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
            "--volume",
            `${this.volume}:${this.spec.queuePath}`,
            "--stop-timeout",
            String(this.spec.stopTimeoutSeconds),
            "--health-cmd",
            podmanHealthCommand(hc.tests),
            "--health-interval",
            hc.interval,
            "--health-timeout",
            hc.timeout,
            "--health-retries",
            String(hc.retries),
            "--health-start-period",
            hc.startPeriod,
            "--label",
            `org.mailcontinuity.lab=${this.options.labId}`,
            this.spec.imageName,
        ];
    }

    /** The queue volume (kept when it exists), the container, and the recipients file uploaded into it. */
    create(): void {
        if (podman(["volume", "exists", this.volume]).status !== 0) must(`podman volume create ${this.volume}`, podman(["volume", "create", "--label", `org.mailcontinuity.lab=${this.options.labId}`, this.volume]));
        must(`podman create ${this.name}`, podman(this.createArgs()));
        this.upload(this.spec.recipients.path, this.spec.recipients.content);
    }

    /**
     * A file into the container before it starts, as the Docker provider's `uploads` do: a tar of the
     * file alone (no directory entries, so existing directories keep their modes), extracted at /.
     */
    private upload(path: string, content: string): void {
        const staging = mkdtempSync(join(tmpdir(), "mcl-upload-"));
        try {
            const relative = path.replace(/^\/+/, "");
            mkdirSync(dirname(join(staging, relative)), { recursive: true });
            writeFileSync(join(staging, relative), content);
            chmodSync(join(staging, relative), 0o644);
            const tar = spawnSync("tar", ["-C", staging, "--numeric-owner", "--owner=0", "--group=0", "-cf", "-", relative]);
            if (tar.status !== 0) throw new Error(`tar of ${path} failed: ${tar.stderr.toString().trim()}`);
            must(`podman cp ${path} into ${this.name}`, podman(["cp", "-", `${this.name}:/`], { input: tar.stdout }));
        } finally {
            rmSync(staging, { recursive: true, force: true });
        }
    }

    start(): void {
        must(`podman start ${this.name}`, podman(["start", this.name]));
    }

    /** create() and start(): a new container on the (possibly existing) queue volume. */
    up(): void {
        this.create();
        this.start();
    }

    /** SIGTERM (the image's STOPSIGNAL), SIGKILL after the timeout; how long it took and how it exited. */
    stop(timeoutSeconds = this.spec.stopTimeoutSeconds): { seconds: number; exitCode: number } {
        const started = Date.now();
        must(`podman stop ${this.name}`, podman(["stop", "-t", String(timeoutSeconds), this.name], { timeoutMs: (timeoutSeconds + 60) * 1000 }));
        return { seconds: (Date.now() - started) / 1000, exitCode: this.state().exitCode };
    }

    /** Every process of the container SIGKILLed at once (PID 1 first, the kernel takes the rest): a power cut. */
    kill(): void {
        must(`podman kill ${this.name}`, podman(["kill", "--signal", "KILL", this.name]));
        // podman kill returns once the signal is sent; wait until the container has exited.
        must(`podman wait ${this.name}`, podman(["wait", this.name]));
    }

    /** Removes the container (stopping it first if it runs); the named queue volume stays. */
    remove(): void {
        const r = podman(["rm", "--force", "--volumes", "--time", String(this.spec.stopTimeoutSeconds), this.name]);
        if (r.status !== 0 && !/no such container/i.test(r.stderr)) must(`podman rm ${this.name}`, r);
    }

    removeVolume(): void {
        const r = podman(["volume", "rm", this.volume]);
        if (r.status !== 0 && !/no such volume/i.test(r.stderr)) must(`podman volume rm ${this.volume}`, r);
    }

    exists(): boolean {
        return podman(["container", "exists", this.name]).status === 0;
    }

    state(): ContainerState {
        const out = must(`podman inspect ${this.name}`, podman(["inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}", this.name])).trim();
        const [status, running, exitCode] = out.split(" ");
        return { status, running: running === "true", exitCode: Number(exitCode) };
    }

    /** A command inside the running container, stdin from `input` (`podman exec -i`). */
    exec(command: string[], input?: string, timeoutMs?: number): PodmanResult {
        return podman(["exec", "-i", this.name, ...command], { input: input ?? "", timeoutMs });
    }

    /** The relays' apply step: the recipients file on stdin to the image's install-recipients. */
    installRecipients(content: string): PodmanResult {
        return this.exec([RELAY_ENTRYPOINT, INSTALL_RECIPIENTS], content);
    }

    /** The relay's queue, from `postqueue -j` inside the container. */
    queue(): QueuedMessage[] {
        return must(`postqueue -j in ${this.name}`, this.exec(["postqueue", "-j"]))
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { queue_id: string; queue_name: string; recipients: { address: string }[] })
            .map((m) => ({ id: m.queue_id, queue: m.queue_name, recipients: m.recipients.map((x) => x.address) }));
    }

    /** The spec's health check, run now (podman cannot schedule it without systemd). */
    healthy(): boolean {
        return podman(["healthcheck", "run", this.name], { timeoutMs: 30_000 }).status === 0;
    }

    async waitHealthy(timeoutMs = 30_000): Promise<number> {
        const started = Date.now();
        while (!this.healthy()) {
            if (!this.state().running) throw new Error(`${this.name} exited (${this.state().exitCode}) before it was healthy:\n${this.logs().slice(-2000)}`);
            if (Date.now() - started > timeoutMs) throw new Error(`${this.name} not healthy after ${timeoutMs / 1000} s:\n${this.logs().slice(-2000)}`);
            await new Promise((resolve) => setTimeout(resolve, 250));
        }
        return (Date.now() - started) / 1000;
    }

    /** What the container wrote to stdout and stderr (the entrypoint's lines and Postfix's log). */
    logs(): string {
        const r = podman(["logs", this.name]);
        return r.stdout + r.stderr;
    }
}

/** Removes every container of a lab (and, with volumes, its queue volumes): names under mcl-<id>- only. */
export function removeLabContainers(labId: string, options: { volumes?: boolean } = {}): string[] {
    const prefix = `${labPrefix(labId)}-`;
    const names = (kind: "ps" | "volume") =>
        podman(kind === "ps" ? ["ps", "--all", "--format", "{{.Names}}"] : ["volume", "ls", "--format", "{{.Name}}"])
            .stdout.split("\n")
            .filter((n) => n.startsWith(prefix));
    const removed: string[] = [];
    for (const name of names("ps")) {
        if (podman(["rm", "--force", "--volumes", "--time", "10", name]).status === 0) removed.push(name);
    }
    if (options.volumes) {
        for (const name of names("volume")) {
            if (podman(["volume", "rm", name]).status === 0) removed.push(name);
        }
    }
    return removed;
}
