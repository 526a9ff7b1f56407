// A partner's MX in the lab (the lab option partner; scenario partner-mx): the topology's last MX (mx3)
// becomes another organisation's server (kind: partner), and in its namespace runs a stock Debian
// Postfix, as `apt install postfix` ("Internet Site") leaves it, configured only by the script the
// stack hands a partner (lib/render/partner.ts). None of the relay image runs there.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Topology } from "../lib/topology/schema";
import { checkRules } from "../lib/topology/rules";
import { formatProblems } from "../lib/topology/validate";
import { partnerRelays, type PartnerRelay } from "../lib/topology/placement";
import { renderPartnerPostfix } from "../lib/render/partner";
import type { Lab } from "./lab";
import { hostKey } from "./net";
import { flushQueue, readQueue, writePostfixInstance, type QueuedMessage } from "./postfix-instance";

export const LAB_PARTNER = { organisation: "Email Friend Store", contact: "postmaster@email-friend-store.example.net" };

/**
 * Pulumi.lab.yaml with its last MX (mx3) as a partner's: same name and address, now `kind: partner`
 * (IPv4 only: its AAAA would be the partner's to publish). Checked by the topology's own rules.
 */
export function withLabPartner(topology: Topology): Topology {
    const last = [...topology.relays].sort((a, b) => b.priority - a.priority)[0];
    if (last.placement.kind !== "docker") throw new Error(`${last.hostname}: the lab's partner MX takes the place of a docker relay with a fixed address`);
    const partner: PartnerRelay = {
        hostname: last.hostname,
        priority: last.priority,
        placement: { kind: "partner", ...LAB_PARTNER, addresses: [last.placement.address], addresses6: [], software: "postfix", caSignedCertificate: false },
    };
    const changed = { ...topology, relays: topology.relays.map((r) => (r === last ? partner : r)) };
    const problems = checkRules(changed);
    if (problems.length > 0) throw new Error(`the lab's partner topology: ${formatProblems(problems)}`);
    return changed;
}

/** Debian's main.cf for a new install: main.cf.debian, its TLS part when the snakeoil pair exists, and what postinst sets. */
function debianStockMainCf(hostname: string): [string, string][] {
    const file = "/usr/share/postfix/main.cf.debian";
    const read = (path: string): [string, string][] =>
        readFileSync(path, "utf8")
            .split("\n")
            .filter((l) => /^[a-z_]+\s*=/.test(l))
            .map((l) => {
                const at = l.indexOf("=");
                return [l.slice(0, at).trim(), l.slice(at + 1).trim()];
            });
    const tls = existsSync("/etc/ssl/private/ssl-cert-snakeoil.key") ? read("/usr/share/postfix/main.cf.tls") : [];
    return [
        // The lab's instance sets compatibility_level (3.6, as Debian's file does) with its file locations.
        ...read(file).filter(([k]) => k !== "compatibility_level"),
        ...tls,
        // What postinst writes for "Internet Site" (postfix.postinst): relaying refused but to mynetworks.
        ["smtpd_relay_restrictions", "permit_mynetworks permit_sasl_authenticated defer_unauth_destination"],
        ["myhostname", hostname],
        ["mydestination", "$myhostname, localhost"],
        ["relayhost", ""],
        ["mynetworks", "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128"],
        ["mailbox_size_limit", "0"],
        ["recipient_delimiter", "+"],
        ["inet_interfaces", "all"],
        ["inet_protocols", "all"],
    ];
}

export class PartnerMx {
    /** `postconf -n` of the stock Postfix, before the partner's script ran. */
    stockSettings: string[] = [];

    constructor(private readonly lab: Lab) {}

    get host(): PartnerRelay {
        const [partner] = partnerRelays(this.lab.topology);
        if (partner === undefined) throw new Error("the lab topology has no partner's MX (the lab option partner)");
        return partner;
    }

    /** Its namespace. */
    get key(): string {
        return hostKey(this.host.hostname);
    }

    get address(): string {
        return this.lab.addressOf(this.host.hostname);
    }

    private get dir(): string {
        return this.lab.path("partner");
    }

    get conf(): string {
        return join(this.dir, "etc");
    }

    get maillog(): string {
        return join(this.dir, "maillog");
    }

    /** The stock Postfix, then the partner's script for `topology` (the lab's own unless given). */
    configure(): { status: number | null; output: string } {
        mkdirSync(this.dir, { recursive: true });
        writePostfixInstance(this.lab.dir, this.dir, debianStockMainCf(this.host.hostname));
        this.stockSettings = this.explicitSettings();
        return this.applyConfig();
    }

    /**
     * The partner's operator running the script we sent (`sh postfix.sh <config dir>`): first at setup,
     * again on every recipient change. Its output says what it changed.
     */
    applyConfig(topology: Topology = this.lab.topology): { status: number | null; output: string } {
        const script = join(this.dir, "postfix.sh");
        writeFileSync(script, renderPartnerPostfix(topology, this.host), { mode: 0o755 });
        const r = this.lab.net.exec(this.key, ["sh", script, this.conf]);
        return { status: r.status, output: (r.stdout + r.stderr).trim() };
    }

    /** The partner lab's topology as a stack config file (what `npm run check -- --config` reads), at `file`. */
    writeStackConfig(file: string): string {
        const { recipientSites, recipientEntries, ...sections } = this.lab.topology;
        void recipientSites;
        writeFileSync(file, `${JSON.stringify({ config: { "mailcontinuity:topology": { ...sections, recipients: recipientEntries } } }, null, 2)}\n`);
        return file;
    }

    /** `postconf -h` of a parameter, as the partner's operator would look. */
    setting(name: string): string {
        return this.lab.net.exec(this.key, ["postconf", "-c", this.conf, "-h", name]).stdout.trim();
    }

    /** `postconf -n`: every setting its main.cf holds. */
    explicitSettings(): string[] {
        return this.lab.net.exec(this.key, ["postconf", "-c", this.conf, "-n"]).stdout.split("\n").filter(Boolean);
    }

    start(): void {
        const r = this.lab.net.exec(this.key, ["postfix", "-c", this.conf, "start"]);
        if (r.status !== 0) throw new Error(`the partner's Postfix did not start (${r.status}): ${(r.stderr + r.stdout).trim()}`);
    }

    stop(): void {
        this.lab.net.exec(this.key, ["postfix", "-c", this.conf, "stop"]);
    }

    queue(): QueuedMessage[] {
        return readQueue(this.lab.net, this.key, this.conf);
    }

    /** What a partner's operator does to deliver now instead of at its next retry: `postqueue -f`. */
    flush(): void {
        flushQueue(this.lab.net, this.key, this.conf);
    }

    /** Its log's text (Postfix's maillog_file in the lab). */
    log(): string {
        return existsSync(this.maillog) ? readFileSync(this.maillog, "utf8") : "";
    }
}
