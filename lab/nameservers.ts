// The lab's two nameservers (NSD), standing in for Cloudflare and Route53: both serve the record set
// the DNS component publishes, plus the sending side's own domain.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildRecordSet } from "../lib/render/records";
import type { Lab } from "./lab";
import { run } from "./net";
import { SENDER } from "./sender";
import { waitFor } from "./wait";
import { renderZoneFile, type Nameserver } from "./zone";

export const NAMESERVERS = [
    { key: "ns1", address: "192.0.2.53" },
    { key: "ns2", address: "198.51.100.53" },
];

export class Nameservers {
    constructor(private readonly lab: Lab) {}

    get addresses(): string[] {
        return NAMESERVERS.map((n) => n.address);
    }

    /** `without`: hostnames left out of the zone (their MX, A and SPF records), as a stale copy would. */
    zoneFiles(without: string[] = []): Record<string, string> {
        // mta-sts.<domain> is a CNAME as it is to CloudFront in the cloud (the checker compares it between
        // the nameservers only); nothing answers at the target: the lab serves no policy (a warning under testing).
        const records = buildRecordSet(this.lab.topology, (h) => this.lab.addressOf(h), { ipv6AddressOf: (h) => this.lab.address6Of(h), dkimRecord: (selector) => this.lab.dkim.record(selector), challengeNameservers: this.lab.acme?.challengeNameservers, mtaStsTarget: `mta-sts-site.${this.lab.topology.domains[0]}` }).filter((r) => !without.includes(r.name) && !(r.type === "MX" && without.includes(String(r.content))));
        const nameserversIn = (zone: string): Nameserver[] => NAMESERVERS.map((n) => ({ hostname: `${n.key}.${zone}`, address: n.address }));
        const files: Record<string, string> = {};
        for (const zone of this.lab.topology.domains) files[zone] = renderZoneFile(zone, records, nameserversIn(zone));
        // The sending side's own domain, so its MX and the bounce notices resolve like on the Internet.
        const senderRecords = [
            { zone: SENDER.domain, name: SENDER.domain, type: "MX" as const, ttl: 300, content: SENDER.hostname, priority: 10 },
            { zone: SENDER.domain, name: SENDER.hostname, type: "A" as const, ttl: 300, content: SENDER.address },
            // The ACME lab's CA and its challenge zone's nameserver, outside the domain like Let's Encrypt and Route53.
            ...(this.lab.acme?.records() ?? []),
        ];
        files[SENDER.domain] = renderZoneFile(SENDER.domain, senderRecords, nameserversIn(SENDER.domain));
        return files;
    }

    /**
     * Writes the NSD config and starts it; `broken` zones get a file NSD cannot load, so it answers
     * SERVFAIL; hosts `without` are left out, as in a stale zone.
     */
    start(key: string, broken: string[] = [], without: string[] = []): void {
        const dir = this.lab.path(key);
        mkdirSync(dir, { recursive: true });
        const address = NAMESERVERS.find((n) => n.key === key)!.address;
        const zones = this.zoneFiles(without);
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
        this.lab.net.spawn(key, ["nsd", "-d", "-c", join(dir, "nsd.conf")], join(dir, "nsd.log"));
    }

    stop(key: string): void {
        this.lab.net.killAll(key, "SIGTERM");
    }

    /** One query, no retries (1 s); status TIMEOUT when nothing answered. */
    dig(fromKey: string, server: string, name: string, type: string): { status: string; answers: string[] } {
        const r = this.lab.net.exec(fromKey, ["dig", `@${server}`, name, type, "+time=1", "+tries=1", "+norecurse"], { timeoutMs: 10_000 });
        const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? "TIMEOUT";
        const answers = r.stdout
            .split("\n")
            .filter((l) => l && !l.startsWith(";") && l.includes(`\t${type}\t`))
            .map((l) => l.split("\t").pop()!.trim());
        return { status, answers };
    }

    /** Until both answer NOERROR for the first domain's MX, asked from the sending side. */
    async waitUntilServing(): Promise<void> {
        const domain = this.lab.topology.domains[0];
        for (const ns of NAMESERVERS) {
            await waitFor(`${ns.key} to serve ${domain}`, () => this.dig(SENDER.key, ns.address, domain, "MX").status === "NOERROR", 15_000);
        }
    }
}
