// The Lab orchestrator: the stack's topology deployed into network namespaces, from the same rendered
// outputs the cloud target uses (record set, primary Postfix config, relay environment), run by the
// real programs. Each kind of host is its own file: nameservers.ts, primary.ts, relays.ts, sender.ts.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Topology } from "../lib/topology/schema";
import { configuredIpv6, mailHosts } from "../lib/topology/placement";
import { AcmeCa, withLabAcme } from "./acme-ca";
import { LabDkimKeys } from "./dkim";
import { labRecipient } from "./mailbox";
import { NAMESERVERS, Nameservers } from "./nameservers";
import { PartnerMx, withLabPartner } from "./partner";
import { LabNetwork, hostKey, labIpv6Of } from "./net";
import { Primary } from "./primary";
import { DEFAULT_RELAY_RUNTIME, Relays, type RelayRuntimeKind } from "./relays";
import { SENDER, Sender } from "./sender";
import { SiteServers } from "./sites";
import { waitFor } from "./wait";

export interface LabOptions {
    dir: string;
    id: string;
    /** Relay flusher probe interval (the relay image's FLUSH_PROBE_INTERVAL). */
    probeInterval?: string;
    /** How the relays run: entrypoint.sh as a process (the default) or the built image as containers. */
    relayRuntime?: RelayRuntimeKind;
    /** Certificates from the lab's ACME CA (Pebble) for every MX from the start, verified by the sender and the relays (scenario acme). */
    acme?: boolean;
    /** The last MX (mx3) a partner's: a stock Postfix configured by the partner's script (lab/partner.ts; scenario partner-mx). */
    partner?: boolean;
    log?: (message: string) => void;
}

export class Lab {
    readonly net: LabNetwork;
    readonly topology: Topology;
    readonly dir: string;
    /** Where every test message goes: one of the topology's recipients (labRecipient). */
    readonly recipient: string;
    readonly dns: Nameservers;
    readonly primary: Primary;
    readonly relays: Relays;
    readonly sender: Sender;
    readonly sites: SiteServers;
    /** The lab's ACME CA, with the option acme. */
    readonly acme?: AcmeCa;
    /** The partner's MX, with the option partner. */
    readonly partner?: PartnerMx;
    /** The keys the nameservers publish and the primary signs with (topology.dkim's selectors). */
    readonly dkim: LabDkimKeys;
    private readonly log: (message: string) => void;

    constructor(topology: Topology, options: LabOptions) {
        if (options.acme === true && options.relayRuntime === "container") {
            throw new Error("the ACME lab runs the relays as processes: its DNS hook and Pebble's roots are files of the lab the containers do not see");
        }
        const withAcme = options.acme === true ? withLabAcme(topology) : topology;
        this.topology = options.partner === true ? withLabPartner(withAcme) : withAcme;
        this.dir = options.dir;
        this.recipient = labRecipient(topology);
        this.net = new LabNetwork(options.id);
        this.log = options.log ?? (() => {});
        this.dns = new Nameservers(this);
        this.primary = new Primary(this);
        this.relays = new Relays(this, options.probeInterval ?? "5s", options.relayRuntime ?? DEFAULT_RELAY_RUNTIME);
        this.sender = new Sender(this);
        this.sites = new SiteServers(this);
        if (options.acme === true) this.acme = new AcmeCa(this);
        if (options.partner === true) this.partner = new PartnerMx(this);
        this.dkim = new LabDkimKeys(this.path("dkim-keys"));
    }

    /** Hosts rebuilt at another address than the topology's (scenario primary-rebuilt). */
    private readonly moved = new Map<string, string>();

    addressOf(hostname: string): string {
        const moved = this.moved.get(hostname);
        if (moved !== undefined) return moved;
        const host = mailHosts(this.topology).find((h) => h.hostname === hostname);
        if (host === undefined) throw new Error(`${hostname} is not a mail host of the lab topology`);
        const placement = host.placement;
        if (placement.kind === "aws") throw new Error(`${hostname}: the lab needs fixed addresses (external primary, docker relays)`);
        if (placement.kind === "partner") {
            if (placement.addresses.length === 0) throw new Error(`${hostname}: the lab needs the partner MX's address (addresses)`);
            return placement.addresses[0];
        }
        return placement.address;
    }

    /**
     * A mail host's IPv6 address, when it has one: the topology's address6 (published as its AAAA), or,
     * rebuilt elsewhere, its new IPv4 address's twin (labIpv6Of).
     */
    address6Of(hostname: string): string | undefined {
        const moved = this.moved.get(hostname);
        if (moved !== undefined) return labIpv6Of(moved);
        const placement = mailHosts(this.topology).find((h) => h.hostname === hostname)?.placement;
        return placement === undefined ? undefined : configuredIpv6(placement);
    }

    /** Its addresses: IPv4, and IPv6 when it has one. */
    addressesOf(hostname: string): string[] {
        const address6 = this.address6Of(hostname);
        return [this.addressOf(hostname), ...(address6 === undefined ? [] : [address6])];
    }

    /**
     * Puts a mail host's namespace at another address (the old one is gone with its processes) and
     * restarts both nameservers so that they publish it; `undefined` moves it back to the topology's.
     */
    async moveHost(hostname: string, address: string | undefined): Promise<void> {
        const key = hostKey(hostname);
        this.net.removeHost(key);
        if (address === undefined) this.moved.delete(hostname);
        else this.moved.set(hostname, address);
        this.net.addHost(key, this.addressOf(hostname), this.address6Of(hostname));
        this.net.setResolvers(key, this.dns.addresses);
        for (const ns of NAMESERVERS) {
            this.dns.stop(ns.key);
            await waitFor(`${ns.key} to stop`, () => this.net.pids(ns.key).length === 0, 10_000);
            this.dns.start(ns.key);
        }
        await this.dns.waitUntilServing();
    }

    path(...parts: string[]): string {
        return join(this.dir, ...parts);
    }

    /** Builds the network and starts every host; resolves when all answer. */
    async up(): Promise<void> {
        mkdirSync(this.dir, { recursive: true });
        this.relays.prepare(this.log);
        this.net.create();
        for (const ns of NAMESERVERS) this.net.addHost(ns.key, ns.address);
        for (const host of mailHosts(this.topology)) {
            this.net.addHost(hostKey(host.hostname), this.addressOf(host.hostname), this.address6Of(host.hostname));
            this.net.setResolvers(hostKey(host.hostname), this.dns.addresses);
        }
        for (const site of this.sites.all) {
            this.net.addHost(site.key, site.address);
            this.net.setResolvers(site.key, this.dns.addresses);
        }
        this.net.addHost(SENDER.key, SENDER.address);
        this.net.setResolvers(SENDER.key, this.dns.addresses);
        this.acme?.addHosts();
        this.log(`network: ${this.net.hosts.size} namespaces (${this.net.prefix}-*) on one bridge`);

        for (const ns of NAMESERVERS) this.dns.start(ns.key);
        await this.dns.waitUntilServing();
        this.log("dns: ns1 and ns2 (NSD) serve the record set the DNS component publishes");

        if (this.acme !== undefined) {
            await this.acme.start();
            this.log(`acme: Pebble, unbound and pebble-challtestsrv answer; the challenge zone ${this.acme.challengeZone} is delegated to ${this.acme.challengeNameservers.join(", ")}`);
        }
        this.primary.configure();
        this.acme?.obtainForPrimary();
        this.primary.start();
        // Our relays; a partner's MX is no relay of ours: its own Postfix, configured by the script it is given.
        for (const relay of this.relays.byPriority) this.relays.start(relay);
        if (this.partner !== undefined) {
            const applied = this.partner.configure();
            if (applied.status !== 0) throw new Error(`the partner's script failed (${applied.status}): ${applied.output}`);
            this.partner.start();
        }
        for (const site of this.sites.all) {
            this.sites.configure(site);
            this.sites.start(site.site);
        }
        this.sender.configure();
        this.acme?.configureSender();
        this.sender.start();
        const hosts = [
            ...mailHosts(this.topology).map((h) => ({ name: h.hostname, key: hostKey(h.hostname), address: this.addressOf(h.hostname) })),
            // A host with an AAAA record answers there too: Postfix listens on both families.
            ...mailHosts(this.topology).flatMap((h) => {
                const address6 = this.address6Of(h.hostname);
                return address6 === undefined ? [] : [{ name: `${h.hostname} (IPv6)`, key: hostKey(h.hostname), address: address6 }];
            }),
            ...this.sites.all.map((s) => ({ name: s.hostname, key: s.key, address: s.address })),
            { name: SENDER.hostname, key: SENDER.key, address: SENDER.address },
        ];
        for (const host of hosts) {
            await waitFor(`${host.name} to answer 220`, () => this.answers220(host.key, host.address), 30_000);
        }
        const sites = this.sites.all.length > 0 ? `, ${this.sites.all.length} site servers` : "";
        const partner = this.partner !== undefined ? `, ${hostKey(this.partner.host.hostname)} (a partner's stock Postfix)` : "";
        this.log(`mail: primary, ${this.relays.byPriority.length} relays (${this.relays.runtimeKind === "container" ? "containers" : "processes"})${partner}${sites} and the sending MTA answer 220`);
        if (this.acme !== undefined) this.log(`acme: first certificates from Pebble (DNS-01): ${this.acme.issuanceSummary()}`);
    }

    /** Removes the relays' containers and volumes (container runtime), then every namespace and process. */
    down(): void {
        try {
            this.acme?.stop();
            this.relays.remove();
        } finally {
            this.net.destroy();
        }
    }

    answers220(fromKey: string, address: string, port = 25): boolean {
        const r = this.net.exec(fromKey, ["posttls-finger", "-l", "none", "-t", "2", "-T", "2", `[${address}]:${port}`], { timeoutMs: 10_000 });
        return /^posttls-finger: < 220[ -]/m.test(r.stdout + r.stderr);
    }
}
