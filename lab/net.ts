// Hosts as network namespaces on one bridge. Everything is created inside namespaces the lab owns:
// the root namespace's interfaces and routes are never touched.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The only addresses the lab uses (RFC 5737). */
export const DOCUMENTATION_RANGES = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"];

export function isDocumentationAddress(address: string): boolean {
    return /^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}$/.test(address);
}

/**
 * The lab's IPv6 addresses come from 2001:db8::/32 (RFC 3849), one /64 beside each IPv4 range, so an
 * address reads as its IPv4 twin: 192.0.2.10 is 2001:db8:192:2::10 (the digits as written, not hex).
 */
export const DOCUMENTATION_RANGES_6 = ["2001:db8:192:2::/64", "2001:db8:198:100::/64", "2001:db8:203:113::/64"];

/** A host's IPv6 address in the lab, from its IPv4 one: 192.0.2.10 -> 2001:db8:192:2::10. */
export function labIpv6Of(address: string): string {
    if (!isDocumentationAddress(address)) throw new Error(`${address} is outside the documentation ranges the lab may use`);
    const [a, , c, d] = address.split(".");
    return `2001:db8:${a}:${c}::${d}`;
}

export function isDocumentationIpv6(address: string): boolean {
    return /^2001:db8:(192:2|198:100|203:113)::[0-9a-f]{1,4}$/.test(address);
}

/** A mail host's key in the lab (its namespace is mcl-<id>-<key>): the first label of its name. */
export function hostKey(hostname: string): string {
    return hostname.split(".")[0];
}

export interface LabHost {
    /** Short key: primary, mx2, ns1, sender... */
    key: string;
    address: string;
    /** Its IPv6 address on the same link (labIpv6Of its IPv4 one unless given). */
    address6: string;
    ns: string;
}

export function run(command: string, args: string[], input?: string): string {
    try {
        return execFileSync(command, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
    } catch (error) {
        const e = error as { stderr?: string; message: string };
        throw new Error(`${command} ${args.join(" ")} failed: ${(e.stderr ?? e.message).trim()}`);
    }
}

function namespacePids(ns: string): number[] {
    const result = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" });
    return (result.stdout ?? "").split(/\s+/).filter(Boolean).map(Number);
}

function killNamespace(ns: string, signal: NodeJS.Signals): number {
    const signalled = new Set<number>();
    for (let round = 0; round < 100; round++) {
        const pids = namespacePids(ns).filter((pid) => signal === "SIGKILL" || !signalled.has(pid));
        if (pids.length === 0) break;
        for (const pid of pids) {
            try {
                process.kill(pid, signal);
                signalled.add(pid);
            } catch {
                // already gone
            }
        }
        if (signal !== "SIGKILL") break;
    }
    return signalled.size;
}

export class LabNetwork {
    /** The lab's id: its namespaces, containers and volumes are named mcl-<id>-*. */
    readonly id: string;
    readonly prefix: string;
    readonly hosts = new Map<string, LabHost>();
    private readonly switchNs: string;
    private created = false;

    /** `existing`: a lab left behind (--keep or a killed run), to be destroyed. */
    constructor(id: string, options: { existing?: boolean } = {}) {
        this.id = id;
        this.prefix = `mcl-${id}`;
        this.switchNs = `${this.prefix}-sw`;
        this.created = options.existing ?? false;
    }

    nsName(key: string): string {
        return `${this.prefix}-${key}`;
    }

    create(): void {
        this.created = true;
        run("ip", ["netns", "add", this.switchNs]);
        // No multicast snooping: IPv6 neighbour discovery (multicast) reaches every port, as ARP does.
        run("ip", ["-n", this.switchNs, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]);
        run("ip", ["-n", this.switchNs, "link", "set", "br0", "up"]);
    }

    /** A host on the bridge with `address` and an IPv6 address (`address6`, else labIpv6Of(address)). */
    addHost(key: string, address: string, address6 = isDocumentationAddress(address) ? labIpv6Of(address) : ""): LabHost {
        if (!isDocumentationAddress(address)) throw new Error(`${key}: ${address} is outside the documentation ranges the lab may use`);
        if (!isDocumentationIpv6(address6)) throw new Error(`${key}: ${address6} is outside the documentation prefixes the lab may use (${DOCUMENTATION_RANGES_6.join(", ")})`);
        const ns = this.nsName(key);
        const port = `v-${key}`.slice(0, 15);
        run("ip", ["netns", "add", ns]);
        // Addresses usable at once: no duplicate address detection (a second or more of "tentative", during
        // which nothing binds to or sends from them) on the namespace's links, created from these defaults.
        run("ip", ["netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.default.disable_ipv6=0"]);
        // Created inside the switch namespace with its peer placed straight into the host's.
        run("ip", ["-n", this.switchNs, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns]);
        run("ip", ["-n", this.switchNs, "link", "set", port, "master", "br0", "up"]);
        run("ip", ["-n", ns, "link", "set", "lo", "up"]);
        run("ip", ["-n", ns, "addr", "add", `${address}/24`, "dev", "eth0"]);
        run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
        // One link for all three ranges: the other two are on-link too, so ARP finds every host.
        for (const range of DOCUMENTATION_RANGES) {
            if (!range.startsWith(address.split(".").slice(0, 3).join("."))) run("ip", ["-n", ns, "route", "add", range, "dev", "eth0"]);
        }
        // IPv6 the same way: its own /64 and the other two on-link (neighbour discovery finds every host).
        // Nothing else: no default route, so IPv6 reaches nothing outside the lab's namespaces.
        run("ip", ["-n", ns, "-6", "addr", "add", `${address6}/64`, "dev", "eth0", "nodad"]);
        const own6 = DOCUMENTATION_RANGES_6.find((r) => address6.startsWith(r.split("::")[0] + "::"));
        for (const range of DOCUMENTATION_RANGES_6) if (range !== own6) run("ip", ["-n", ns, "-6", "route", "add", range, "dev", "eth0"]);
        const host = { key, address, address6, ns };
        this.hosts.set(key, host);
        return host;
    }

    /** `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc: this host resolves through the lab. */
    setResolvers(key: string, nameservers: string[]): void {
        const dir = join("/etc/netns", this.nsName(key));
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, "resolv.conf"), `${nameservers.map((n) => `nameserver ${n}`).join("\n")}\noptions timeout:1 attempts:1\n`);
        writeFileSync(join(dir, "hosts"), "127.0.0.1 localhost\n");
    }

    /** Runs a command in a host and waits; `env` replaces the environment (PATH kept), like spawn's. */
    exec(
        key: string,
        command: string[],
        options: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
    ): { status: number | null; stdout: string; stderr: string; pid: number } {
        const result = spawnSync("ip", ["netns", "exec", this.nsName(key), ...command], {
            encoding: "utf8",
            input: options.input,
            timeout: options.timeoutMs ?? 120_000,
            env: options.env === undefined ? undefined : { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...options.env },
        });
        return { status: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "", pid: result.pid ?? 0 };
    }

    /** Starts a long-running process in a host, output appended to logFile. */
    spawn(key: string, command: string[], logFile: string, env: Record<string, string> = {}): ChildProcess {
        const fd = openSync(logFile, "a");
        const child = spawn("ip", ["netns", "exec", this.nsName(key), ...command], {
            stdio: ["ignore", fd, fd],
            env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
        });
        child.unref();
        return child;
    }

    pids(key: string): number[] {
        return namespacePids(this.nsName(key));
    }

    /**
     * Signals every process in the host. For SIGKILL, repeats until none is left: a process forked
     * between listing and killing (an smtpd the master just started) would otherwise survive as an
     * orphan, which no power cut or `docker kill` leaves behind.
     */
    killAll(key: string, signal: NodeJS.Signals = "SIGKILL"): number {
        return killNamespace(this.nsName(key), signal);
    }

    /**
     * Takes one host off the network for good: its processes killed, its namespace (and link) deleted,
     * and its addresses dropped from the others' neighbour caches. A host put back at the same address
     * (moveHost) has a new link: an entry still marked reachable would send its packets to the old one
     * until it expires (seen with IPv6: half a minute of timeouts).
     */
    removeHost(key: string): void {
        const ns = this.nsName(key);
        const removed = this.hosts.get(key);
        killNamespace(ns, "SIGKILL");
        run("ip", ["netns", "del", ns]);
        rmSync(join("/etc/netns", ns), { recursive: true, force: true });
        this.hosts.delete(key);
        for (const other of this.hosts.values()) {
            for (const address of removed === undefined ? [] : [removed.address, removed.address6]) spawnSync("ip", ["-n", other.ns, "neigh", "flush", "to", address]);
        }
    }

    /** Removes every process, namespace and resolver file this lab made. Safe to call twice. */
    destroy(): void {
        if (!this.created) return;
        const owned = spawnSync("ip", ["netns", "list"], { encoding: "utf8" })
            .stdout.split("\n")
            .map((l) => l.split(" ")[0])
            .filter((n) => n.startsWith(`${this.prefix}-`));
        for (const ns of owned) killNamespace(ns, "SIGKILL");
        for (const ns of owned) {
            spawnSync("ip", ["netns", "del", ns]);
            rmSync(join("/etc/netns", ns), { recursive: true, force: true });
        }
        this.created = false;
    }
}
