// The stack's topology deployed into network namespaces: the same rendered outputs the cloud target
// uses (record set, primary Postfix config, relay environment), run by the real programs.
import { spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Relay, Topology } from "../lib/topology/schema";
import { mailHosts } from "../lib/topology/placement";
import { buildRecordSet } from "../lib/render/records";
import { MAILBOX_UID } from "../lib/render/primary-postfix";
import { renderPrimaryApply, type PrimaryApplyOptions } from "../lib/render/primary-apply";
import { recipientsFile, relayEnvironment } from "../lib/render/relay-env";
import { INSTALL_RECIPIENTS } from "../lib/render/relay-apply";
import { LabNetwork, run } from "./net";
import { renderZoneFile, type Nameserver } from "./zone";

export const SENDER = { key: "sender", address: "203.0.113.100", hostname: "mta.example.net", domain: "example.net", mailbox: "drill@example.net" };
export const NAMESERVERS = [
    { key: "ns1", address: "192.0.2.53" },
    { key: "ns2", address: "198.51.100.53" },
];
export const ENTRYPOINT = join(__dirname, "..", "relay-image", "entrypoint.sh");

export interface LabOptions {
    dir: string;
    id: string;
    /** Relay flusher probe interval (the relay image's FLUSH_PROBE_INTERVAL). */
    probeInterval?: string;
    log?: (message: string) => void;
}

export function hostKey(hostname: string): string {
    return hostname.split(".")[0];
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(what: string, condition: () => boolean, timeoutMs: number, intervalMs = 250): Promise<number> {
    const start = Date.now();
    while (!condition()) {
        if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
        await sleep(intervalMs);
    }
    return (Date.now() - start) / 1000;
}

/** Postfix's data_directory must belong to mail_owner (the master's lock file lives there). */
function makePostfixDirs(dir: string): void {
    for (const d of ["etc", "spool", "data", "mail"]) mkdirSync(join(dir, d), { recursive: true });
    const owner = Number(run("id", ["-u", "postfix"]).trim());
    chownSync(join(dir, "data"), owner, 0);
    chownSync(join(dir, "mail"), MAILBOX_UID, MAILBOX_UID);
}

/**
 * Writes a Postfix instance that lives under `dir` (etc, spool, data, maillog): the lab's file
 * locations first, then the given parameters, and Debian's master.cf without chroot.
 */
export function writePostfixInstance(labDir: string, dir: string, params: [string, string][]): string {
    makePostfixDirs(dir);
    const conf = join(dir, "etc");
    const location: [string, string][] = [
        ["compatibility_level", "3.6"],
        ["queue_directory", join(dir, "spool")],
        ["data_directory", join(dir, "data")],
        ["maillog_file_prefixes", labDir],
        ["maillog_file", join(dir, "maillog")],
        ["alias_maps", ""],
        ["alias_database", ""],
    ];
    writeFileSync(join(conf, "main.cf"), [...location, ...params].map(([k, v]) => `${k} = ${v}`).join("\n") + "\n");
    writeFileSync(join(conf, "master.cf"), masterCfWithoutChroot());
    return conf;
}

/** Debian's master.cf with chroot off: a chroot would hide the namespace's resolv.conf. */
function masterCfWithoutChroot(): string {
    return readFileSync("/usr/share/postfix/master.cf.dist", "utf8")
        .split("\n")
        .map((line) => {
            if (/^\s|^#|^$/.test(line)) return line;
            const fields = line.split(/\s+/);
            if (fields.length >= 8 && fields[4] === "y") fields[4] = "n";
            return fields.join("  ");
        })
        .join("\n");
}

export class Lab {
    readonly net: LabNetwork;
    readonly topology: Topology;
    readonly dir: string;
    private readonly log: (message: string) => void;
    private readonly probeInterval: string;
    private readonly relayOverrides = new Map<string, Record<string, string>>();
    private tempfailPrimary?: ChildProcess;

    constructor(topology: Topology, options: LabOptions) {
        this.topology = topology;
        this.dir = options.dir;
        this.net = new LabNetwork(options.id);
        this.log = options.log ?? (() => {});
        this.probeInterval = options.probeInterval ?? "5s";
    }

    addressOf(hostname: string): string {
        const host = mailHosts(this.topology).find((h) => h.hostname === hostname);
        if (host === undefined) throw new Error(`${hostname} is not a mail host of the lab topology`);
        const placement = host.placement;
        if (placement.kind === "aws") throw new Error(`${hostname}: the lab needs fixed addresses (external primary, docker relays)`);
        return placement.address;
    }

    path(...parts: string[]): string {
        return join(this.dir, ...parts);
    }

    get primaryKey(): string {
        return hostKey(this.topology.primary.hostname);
    }

    /** Builds the network and starts every host; resolves when all answer. */
    async up(): Promise<void> {
        mkdirSync(this.dir, { recursive: true });
        this.net.create();
        const resolvers = NAMESERVERS.map((n) => n.address);
        for (const ns of NAMESERVERS) this.net.addHost(ns.key, ns.address);
        for (const host of mailHosts(this.topology)) {
            this.net.addHost(hostKey(host.hostname), this.addressOf(host.hostname));
            this.net.setResolvers(hostKey(host.hostname), resolvers);
        }
        this.net.addHost(SENDER.key, SENDER.address);
        this.net.setResolvers(SENDER.key, resolvers);
        this.log(`network: ${this.net.hosts.size} namespaces (${this.net.prefix}-*) on one bridge`);

        for (const ns of NAMESERVERS) this.startNameserver(ns.key);
        await this.waitForNameservers();
        this.log("dns: ns1 and ns2 (NSD) serve the record set the DNS component publishes");

        this.configurePrimary();
        this.startPrimary();
        for (const relay of this.topology.relays) this.startRelay(relay);
        this.configureSender();
        this.net.exec(SENDER.key, ["postfix", "-c", this.path("sender", "etc"), "start"]);
        for (const host of [...mailHosts(this.topology).map((h) => h.hostname), SENDER.hostname]) {
            const address = host === SENDER.hostname ? SENDER.address : this.addressOf(host);
            await waitFor(`${host} to answer 220`, () => this.answers220(host === SENDER.hostname ? SENDER.key : hostKey(host), address), 30_000);
        }
        this.log(`mail: primary, ${this.topology.relays.length} relays and the sending MTA answer 220`);
    }

    down(): void {
        this.net.destroy();
    }

    answers220(fromKey: string, address: string, port = 25): boolean {
        const r = this.net.exec(fromKey, ["posttls-finger", "-l", "none", "-t", "2", "-T", "2", `[${address}]:${port}`], { timeoutMs: 10_000 });
        return /^posttls-finger: < 220[ -]/m.test(r.stdout + r.stderr);
    }

    // --- DNS ----------------------------------------------------------------------------------

    zoneFiles(): Record<string, string> {
        const records = buildRecordSet(this.topology, (h) => this.addressOf(h));
        const nameserversIn = (zone: string): Nameserver[] => NAMESERVERS.map((n) => ({ hostname: `${n.key}.${zone}`, address: n.address }));
        const files: Record<string, string> = {};
        for (const zone of this.topology.domains) files[zone] = renderZoneFile(zone, records, nameserversIn(zone));
        // The sending side's own domain, so its MX and the bounce notices resolve like on the Internet.
        const senderRecords = [
            { zone: SENDER.domain, name: SENDER.domain, type: "MX" as const, ttl: 300, content: SENDER.hostname, priority: 10 },
            { zone: SENDER.domain, name: SENDER.hostname, type: "A" as const, ttl: 300, content: SENDER.address },
        ];
        files[SENDER.domain] = renderZoneFile(SENDER.domain, senderRecords, nameserversIn(SENDER.domain));
        return files;
    }

    /** Writes the NSD config; `broken` zones get a file NSD cannot load, so it answers SERVFAIL. */
    startNameserver(key: string, broken: string[] = []): void {
        const dir = this.path(key);
        mkdirSync(dir, { recursive: true });
        const address = NAMESERVERS.find((n) => n.key === key)!.address;
        const zones = this.zoneFiles();
        for (const [zone, text] of Object.entries(zones)) {
            writeFileSync(join(dir, `${zone}.zone`), broken.includes(zone) ? "this is not a zone file\n" : text);
        }
        writeFileSync(
            join(dir, "nsd.conf"),
            [
                "server:",
                `  ip-address: ${address}`,
                "  do-ip6: no",
                `  zonesdir: "${dir}"`,
                '  username: ""',
                '  chroot: ""',
                `  pidfile: "${dir}/nsd.pid"`,
                `  xfrdfile: "${dir}/xfrd.state"`,
                `  zonelistfile: "${dir}/zone.list"`,
                '  database: ""',
                "  server-count: 1",
                "  hide-version: yes",
                "  verbosity: 1",
                "remote-control:",
                "  control-enable: no",
                ...Object.keys(zones).flatMap((zone) => ["zone:", `  name: ${zone}`, `  zonefile: "${zone}.zone"`]),
                "",
            ].join("\n"),
        );
        run("nsd-checkconf", [join(dir, "nsd.conf")]);
        this.net.spawn(key, ["nsd", "-d", "-c", join(dir, "nsd.conf")], join(dir, "nsd.log"));
    }

    stopNameserver(key: string): void {
        this.net.killAll(key, "SIGTERM");
    }

    dig(fromKey: string, server: string, name: string, type: string): { status: string; answers: string[] } {
        const r = this.net.exec(fromKey, ["dig", `@${server}`, name, type, "+time=1", "+tries=1", "+norecurse"], { timeoutMs: 10_000 });
        const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? "TIMEOUT";
        const answers = r.stdout
            .split("\n")
            .filter((l) => l && !l.startsWith(";") && l.includes(`\t${type}\t`))
            .map((l) => l.split("\t").pop()!.trim());
        return { status, answers };
    }

    async waitForNameservers(): Promise<void> {
        for (const ns of NAMESERVERS) {
            await waitFor(`${ns.key} to serve ${this.topology.domains[0]}`, () => this.dig(SENDER.key, ns.address, this.topology.domains[0], "MX").status === "NOERROR", 15_000);
        }
    }

    // --- primary ------------------------------------------------------------------------------

    primaryMailbox(): string {
        return this.path("primary", "mail");
    }

    /** Where the lab's primary keeps what the EC2 host keeps under /etc/postfix and /var/mail. */
    private primaryApplyOptions(topology: Topology): PrimaryApplyOptions {
        const conf = this.path("primary", "etc");
        return {
            relayAddresses: topology.relays.map((r) => this.addressOf(r.hostname)),
            configDir: conf,
            mailboxBase: this.primaryMailbox(),
            tlsCertFile: join(conf, "cert.pem"),
            tlsKeyFile: join(conf, "key.pem"),
            etrnScriptPath: this.path("primary", "etrn-relays"),
        };
    }

    private configurePrimary(): void {
        const dir = this.path("primary");
        const conf = join(dir, "etc");
        mkdirSync(conf, { recursive: true });
        run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", `/CN=${this.topology.primary.hostname}`, "-keyout", join(conf, "key.pem"), "-out", join(conf, "cert.pem")]);
        // Only where the files live is the lab's; everything else is the apply step the cloud runs.
        writePostfixInstance(this.dir, dir, []);
        this.applyPrimary(this.topology);
    }

    /**
     * The primary's apply step (renderPrimaryApply), run in its namespace exactly as the cloud runs it
     * over SSH: tables, main.cf, the ETRN script, `postfix check`, and a reload if Postfix runs.
     */
    applyPrimary(topology: Topology): string {
        const script = this.path("primary", "apply.sh");
        writeFileSync(script, renderPrimaryApply(topology, this.primaryApplyOptions(topology)));
        const r = this.net.exec(this.primaryKey, ["sh", script]);
        if (r.status !== 0) throw new Error(`the primary's apply step failed (${r.status}): ${(r.stderr + r.stdout).trim()}`);
        return r.stdout.trim();
    }

    startPrimary(): void {
        this.net.exec(this.primaryKey, ["postfix", "-c", this.path("primary", "etc"), "start"]);
    }

    stopPrimary(): void {
        this.net.exec(this.primaryKey, ["postfix", "-c", this.path("primary", "etc"), "stop"]);
        // postfix stop returns before every child has gone; port 25 must refuse before we go on.
        spawnSync("sleep", ["0.5"]);
    }

    /** The primary's boot-time ETRN to every relay (the EC2 host runs it from a systemd timer). */
    etrn(): string {
        const r = this.net.exec(this.primaryKey, ["bash", this.path("primary", "etrn-relays")]);
        return r.stdout + r.stderr;
    }

    /** Silently drop SMTP packets to the primary (its own netfilter, inside its namespace). */
    dropPrimary(on: boolean): void {
        const rule = ["INPUT", "-p", "tcp", "--dport", "25", "-j", "DROP"];
        const r = this.net.exec(this.primaryKey, ["iptables", on ? "-I" : "-D", ...rule]);
        if (r.status !== 0) throw new Error(`iptables in the primary's namespace failed: ${r.stderr.trim()}`);
    }

    /** In place of the primary: Postfix's smtp-sink answering 421 (a 4xx) to every EHLO/HELO. */
    startTempfailPrimary(): void {
        const address = `${this.addressOf(this.topology.primary.hostname)}:25`;
        this.tempfailPrimary = this.net.spawn(this.primaryKey, ["smtp-sink", "-u", "postfix", "-Q", "ehlo,helo", address, "64"], this.path("primary", "smtp-sink.log"));
    }

    /** Stops only the smtp-sink this lab started (`ip netns exec` execs it: the child's pid is its pid). */
    async stopTempfailPrimary(): Promise<void> {
        const sink = this.tempfailPrimary;
        if (sink === undefined) return;
        this.tempfailPrimary = undefined;
        const exited = () => sink.exitCode !== null || sink.signalCode !== null;
        if (!exited()) sink.kill("SIGTERM");
        await waitFor("smtp-sink to exit", exited, 10_000, 50);
    }

    // --- relays -------------------------------------------------------------------------------

    relayRoot(relay: Relay): string {
        return this.path(hostKey(relay.hostname), "root");
    }

    relayConf(relay: Relay): string {
        return join(this.relayRoot(relay), "etc");
    }

    /** The Postfix master's pid from the relay's pid file (the same while it is only reloaded). */
    relayMasterPid(relay: Relay): number | undefined {
        const file = join(this.relayRoot(relay), "spool", "pid", "master.pid");
        const pid = existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : NaN;
        return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    }

    /**
     * The relays' apply step: the topology's recipients file on stdin to the entrypoint's
     * install-recipients, with the relay's own environment (the cloud pipes it through `docker exec`).
     */
    installRelayRecipients(relay: Relay, topology: Topology): { status: number | null; output: string } {
        const r = this.net.exec(hostKey(relay.hostname), ["sh", ENTRYPOINT, INSTALL_RECIPIENTS], { input: recipientsFile(topology), env: this.relayEnv(relay) });
        return { status: r.status, output: (r.stdout + r.stderr).trim() };
    }

    relayEnv(relay: Relay): Record<string, string> {
        const key = hostKey(relay.hostname);
        const recipients = this.path(key, "recipients");
        if (!existsSync(recipients)) writeFileSync(recipients, recipientsFile(this.topology));
        return {
            // Exactly what the relay component passes, pointed at the lab's files.
            ...relayEnvironment(this.topology, relay, recipients),
            POSTFIX_ROOT: this.relayRoot(relay),
            FLUSH_PROBE_INTERVAL: this.probeInterval,
            ...(this.relayOverrides.get(key) ?? {}),
        };
    }

    /** Extra environment for a relay's next start (e.g. a short QUEUE_LIFETIME); undefined clears it. */
    overrideRelay(relay: Relay, env: Record<string, string> | undefined): void {
        if (env === undefined) this.relayOverrides.delete(hostKey(relay.hostname));
        else this.relayOverrides.set(hostKey(relay.hostname), env);
    }

    startRelay(relay: Relay): void {
        const key = hostKey(relay.hostname);
        mkdirSync(this.path(key), { recursive: true });
        this.net.spawn(key, ["sh", ENTRYPOINT], this.path(key, "relay.log"), this.relayEnv(relay));
    }

    async waitForRelay(relay: Relay): Promise<void> {
        await waitFor(`${relay.hostname} to answer 220`, () => this.answers220(SENDER.key, this.addressOf(relay.hostname)), 30_000);
    }

    async stopRelay(relay: Relay): Promise<void> {
        const key = hostKey(relay.hostname);
        this.net.killAll(key, "SIGTERM");
        await waitFor(`${relay.hostname} to stop`, () => this.net.pids(key).length === 0, 30_000);
    }

    /** Every process of the relay, SIGKILLed at once: a power cut, not a shutdown. */
    killRelay(relay: Relay): number {
        return this.net.killAll(hostKey(relay.hostname), "SIGKILL");
    }

    relayQueue(relay: Relay): { queue: string; recipients: string[] }[] {
        const r = this.net.exec(hostKey(relay.hostname), ["postqueue", "-c", this.relayConf(relay), "-j"]);
        return r.stdout
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { queue_name: string; recipients: { address: string }[] })
            .map((m) => ({ queue: m.queue_name, recipients: m.recipients.map((x) => x.address) }));
    }

    flushRelayQueue(relay: Relay): void {
        this.net.exec(hostKey(relay.hostname), ["postqueue", "-c", this.relayConf(relay), "-f"]);
    }

    // --- the rest of the Internet -------------------------------------------------------------

    private configureSender(): void {
        const dir = this.path("sender");
        const conf = writePostfixInstance(this.dir, dir, [
            ["myhostname", SENDER.hostname],
            ["mydomain", SENDER.domain],
            ["myorigin", "$mydomain"],
            ["mydestination", "localhost"],
            ["inet_interfaces", "all"],
            ["inet_protocols", "ipv4"],
            ["mynetworks", `127.0.0.0/8 ${SENDER.address}/32`],
            ["virtual_mailbox_domains", SENDER.domain],
            ["virtual_mailbox_base", join(dir, "mail")],
            ["virtual_mailbox_maps", `texthash:${join(dir, "etc")}/vmailbox`],
            ["virtual_uid_maps", `static:${MAILBOX_UID}`],
            ["virtual_gid_maps", `static:${MAILBOX_UID}`],
            ["smtp_tls_security_level", "may"],
            // A real sender retries after minutes; this one after seconds, so the drill ends quickly.
            ["smtp_connect_timeout", "5s"],
            ["minimal_backoff_time", "5s"],
            ["maximal_backoff_time", "10s"],
            ["queue_run_delay", "5s"],
        ]);
        writeFileSync(join(conf, "vmailbox"), `${SENDER.mailbox}\t${SENDER.domain}/drill/\n`);
        run("postfix", ["-c", conf, "check"]);
    }

    senderLog(): string {
        return existsSync(this.path("sender", "maillog")) ? readFileSync(this.path("sender", "maillog"), "utf8") : "";
    }

    /** Postfix's smtp-source submitting n messages to the sending MTA over `sessions` connections. */
    private smtpSource(subject: string, n: number, sessions: number): string[] {
        return ["smtp-source", "-m", String(n), "-s", String(sessions), "-f", SENDER.mailbox, "-t", "alice@example.com", "-S", subject, "-M", SENDER.hostname, `${SENDER.address}:25`];
    }

    /** Submits n messages and waits; returns smtp-source's pid (in every Message-Id it writes). */
    send(subject: string, n: number, sessions = 5): number {
        const r = this.net.exec(SENDER.key, this.smtpSource(subject, n, sessions));
        if (r.status !== 0) throw new Error(`smtp-source failed: ${r.stderr.trim()}`);
        return r.pid;
    }

    /** Starts the submission in the background (for a burst that something interrupts). */
    sendInBackground(subject: string, n: number, sessions: number): ReturnType<LabNetwork["spawn"]> {
        return this.net.spawn(SENDER.key, this.smtpSource(subject, n, sessions), this.path("sender", "smtp-source.log"));
    }
}

/** Message-Id and Subject of every message in the Maildirs under a directory. */
export function readMaildirs(root: string): { messageId: string; subject: string; body: string }[] {
    const out: { messageId: string; subject: string; body: string }[] = [];
    const walk = (dir: string) => {
        if (!existsSync(dir)) return;
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
            const path = join(dir, entry.name);
            if (entry.isDirectory()) walk(path);
            else if (/\/(new|cur)$/.test(dir)) {
                const text = readFileSync(path, "utf8");
                const head = text.slice(0, text.indexOf("\n\n") + 1);
                out.push({
                    messageId: /^Message-Id:\s*(<[^>]+>)/im.exec(head)?.[1] ?? "",
                    subject: /^Subject:\s*(.*)$/im.exec(head)?.[1] ?? "",
                    body: text,
                });
            }
        }
    };
    walk(root);
    return out;
}
