// The lab's ACME CA (the lab option `acme`, scenario `acme`): certificates through DNS-01 as on the
// Internet, from local programs only.
//   acme-ca   192.0.2.80     Pebble (Let's Encrypt's test CA; its HTTPS pair made here with openssl),
//                           and unbound, the CA side's recursive resolver: stub zones for the lab's
//                           zones at ns1/ns2, so the CA follows the CNAME at _acme-challenge.<host> and
//                           the delegation of the challenge zone exactly as a CA on the Internet does
//   acme-dns  198.51.100.80  pebble-challtestsrv: the challenge zone's nameserver, Route53's stand-in;
//                           lego's `exec` provider (acme-dns-hook.sh) writes the TXT through its HTTP
//                           API, the lab's only stand-in for the Route53 API
// Every MX host runs relay-image/lib/acme.sh with the environment the stack gives it, plus the lab's
// provider (exec), Pebble's HTTPS CA and unbound as lego's resolver. Pebble makes a new root at each
// start: fetched from its management API, it is all the sending MTA and the relays trust. Keys,
// certificates and state live in the lab's directory; the processes are the lab's, in its namespaces.
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Topology } from "../lib/topology/schema";
import { mailHosts } from "../lib/topology/placement";
import { acmeChallengeZone } from "../lib/topology/tls";
import { acmeEnvironment } from "../lib/render/acme";
import { shellQuote } from "../lib/render/apply-script";
import type { Lab } from "./lab";
import { hostKey, run } from "./net";
import { SENDER } from "./sender";
import { waitFor } from "./wait";
import type { ZoneRecord } from "./zone";

export const ACME_CA = { key: "acme-ca", address: "192.0.2.80", hostname: "acme-ca.example.net" };
export const ACME_DNS = { key: "acme-dns", address: "198.51.100.80", hostname: "acme-dns.example.net" };
const PEBBLE_PORT = 14000;
const PEBBLE_MANAGEMENT_PORT = 15000;
const CHALLTESTSRV_MANAGEMENT_PORT = 8055;
export const PEBBLE_DIRECTORY = `https://${ACME_CA.hostname}:${PEBBLE_PORT}/dir`;
/** Let's Encrypt's lifetime, so that ACME_RENEW_DAYS (30) leaves a certificate alone until it is due. */
const CERTIFICATE_SECONDS = 90 * 86400;
/** The relays' ACME_RENEW_INTERVAL in the lab (12h in the image): a failed first try comes round quickly. */
export const LAB_ACME_RENEW_INTERVAL = "30s";

const ACME_WRAPPER = join(__dirname, "..", "relay-image", "lib", "acme.sh");
const DNS_HOOK = join(__dirname, "acme-dns-hook.sh");

/** Pulumi.lab.yaml with tls.acme at Pebble: the records, the relays' environment and the primary's as the stack makes them. */
export function withLabAcme(topology: Topology): Topology {
    return { ...topology, tls: { ...topology.tls, acme: { directoryUrl: PEBBLE_DIRECTORY, renewDaysBefore: 30 }, relayToPrimary: "verify" } };
}

/** A served certificate as a verifying client sees it. */
export interface ServedCertificate {
    /** Verified against Pebble's root only, for the host name connected to. */
    verified: boolean;
    serial: string;
    issuer: string;
    output: string;
}

export class AcmeCa {
    private readonly processes: ChildProcess[] = [];
    /** Seconds each host's first certificate took (the primary by the lab's clock, the relays by their log's). */
    readonly issuance = new Map<string, number>();

    constructor(private readonly lab: Lab) {}

    private get dir(): string {
        return this.lab.path("acme-ca");
    }

    /** Pebble's root of this run: what the sending MTA and the relays trust, nothing else. */
    get rootFile(): string {
        return join(this.dir, "pebble-root.pem");
    }

    /** The CA of Pebble's own HTTPS pair: lego trusts it (ACME_CA_CERTIFICATES), as it trusts Let's Encrypt's web PKI. */
    private get httpsCaFile(): string {
        return join(this.dir, "https-ca.pem");
    }

    get challengeZone(): string {
        const zone = acmeChallengeZone(this.lab.topology);
        if (zone === undefined) throw new Error("the ACME lab's topology has no tls.acme");
        return zone;
    }

    /** The challenge zone's nameserver, where the stack would name Route53's delegation set. */
    get challengeNameservers(): string[] {
        return [ACME_DNS.hostname];
    }

    /** What the rest of the Internet (example.net) publishes for them: the CA's name and the challenge zone's nameserver. */
    records(): ZoneRecord[] {
        return [ACME_CA, ACME_DNS].map((h) => ({ zone: SENDER.domain, name: h.hostname, type: "A" as const, ttl: 300, content: h.address }));
    }

    addHosts(): void {
        for (const host of [ACME_CA, ACME_DNS]) {
            this.lab.net.addHost(host.key, host.address);
            this.lab.net.setResolvers(host.key, this.lab.dns.addresses);
        }
    }

    /** lego's provider, trust and resolver in the lab, on top of the ACME variables the stack passes. */
    private labEnv(): Record<string, string> {
        return {
            ACME_DNS_PROVIDER: "exec",
            EXEC_PATH: DNS_HOOK,
            // lego waits this long before its first look at the TXT (2 s by default).
            EXEC_POLLING_INTERVAL: "1",
            LAB_ACME_CHALLTESTSRV: `http://${ACME_DNS.address}:${CHALLTESTSRV_MANAGEMENT_PORT}`,
            LAB_ACME_CHALLENGE_ZONE: this.challengeZone,
            ACME_CA_CERTIFICATES: this.httpsCaFile,
            ACME_RESOLVERS: `${ACME_CA.address}:53`,
            // pebble-challtestsrv answers no SOA queries, which lego's wait for every authoritative server needs.
            ACME_CHECK_AUTHORITATIVE: "no",
        };
    }

    /** What a relay gets on top of relayEnvironment (which already carries ACME_* and PRIMARY_TLS=verify). */
    relayEnv(): Record<string, string> {
        return { ...this.labEnv(), ACME_RENEW_INTERVAL: LAB_ACME_RENEW_INTERVAL, PRIMARY_TLS_CA_FILE: this.rootFile };
    }

    async start(): Promise<void> {
        mkdirSync(this.dir, { recursive: true });
        this.writeHttpsPair();
        this.startChallengeServer();
        this.startResolver();
        this.startPebble();
        const dig = (name: string, type: string) => this.lab.net.exec(SENDER.key, ["dig", `@${ACME_CA.address}`, name, type, "+short", "+time=1", "+tries=1"], { timeoutMs: 10_000 }).stdout.trim();
        await waitFor("unbound to resolve the lab's zones", () => dig(this.lab.topology.primary.hostname, "A") === this.lab.addressOf(this.lab.topology.primary.hostname), 15_000, 200);
        const root = () => this.lab.net.exec(ACME_CA.key, ["curl", "--silent", "--fail", "--max-time", "5", "--cacert", this.httpsCaFile, `https://${ACME_CA.hostname}:${PEBBLE_MANAGEMENT_PORT}/roots/0`], { timeoutMs: 10_000 });
        await waitFor("Pebble to answer on its management port", () => root().status === 0, 15_000, 200);
        const pem = root().stdout;
        if (!pem.includes("BEGIN CERTIFICATE")) throw new Error(`Pebble's /roots/0 answered no certificate: ${pem.slice(0, 200)}`);
        writeFileSync(this.rootFile, pem);
    }

    /** A CA of the lab's and Pebble's HTTPS certificate from it (Pebble's name and address). */
    private writeHttpsPair(): void {
        const ca = join(this.dir, "https-ca");
        run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mailcontinuity lab web CA", "-keyout", `${ca}.key`, "-out", this.httpsCaFile]);
        run("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${ACME_CA.hostname}`, "-keyout", join(this.dir, "pebble-key.pem"), "-out", join(this.dir, "pebble.csr")]);
        writeFileSync(join(this.dir, "pebble.ext"), `subjectAltName=DNS:${ACME_CA.hostname},IP:${ACME_CA.address}\nextendedKeyUsage=serverAuth\n`);
        run("openssl", ["x509", "-req", "-in", join(this.dir, "pebble.csr"), "-CA", this.httpsCaFile, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "2", "-extfile", join(this.dir, "pebble.ext"), "-out", join(this.dir, "pebble-cert.pem")]);
    }

    private spawn(key: string, command: string[], log: string, env: Record<string, string> = {}): void {
        this.processes.push(this.lab.net.spawn(key, command, join(this.dir, log), env));
    }

    private startChallengeServer(): void {
        this.spawn(
            ACME_DNS.key,
            ["pebble-challtestsrv", "-dns01", `${ACME_DNS.address}:53`, "-management", `${ACME_DNS.address}:${CHALLTESTSRV_MANAGEMENT_PORT}`, "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "", "-defaultIPv6", ""],
            "challtestsrv.log",
        );
    }

    private startResolver(): void {
        const conf = join(this.dir, "unbound.conf");
        const stubs = [...this.lab.topology.domains, SENDER.domain].flatMap((zone) => ["stub-zone:", `  name: "${zone}"`, ...this.lab.dns.addresses.map((a) => `  stub-addr: ${a}`)]);
        writeFileSync(
            conf,
            [
                "server:",
                `  interface: ${ACME_CA.address}`,
                "  do-ip6: no",
                ...["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"].map((r) => `  access-control: ${r} allow`),
                '  username: ""',
                '  chroot: ""',
                `  directory: "${this.dir}"`,
                `  pidfile: "${join(this.dir, "unbound.pid")}"`,
                "  use-syslog: no",
                '  logfile: ""',
                "  verbosity: 1",
                // The lab's zones are unsigned and have no root above them: resolve, do not validate.
                '  module-config: "iterator"',
                // Each question as asked: pebble-challtestsrv knows no zone cuts (it answers no SOA or NS).
                "  qname-minimisation: no",
                // A renewal's new TXT must not meet the old one in a cache.
                "  cache-max-ttl: 0",
                "  cache-max-negative-ttl: 0",
                "remote-control:",
                "  control-enable: no",
                ...stubs,
                "",
            ].join("\n"),
        );
        run("unbound-checkconf", [conf]);
        this.spawn(ACME_CA.key, ["unbound", "-d", "-c", conf], "unbound.log");
    }

    private startPebble(): void {
        const conf = join(this.dir, "pebble.json");
        writeFileSync(
            conf,
            JSON.stringify({
                pebble: {
                    listenAddress: `${ACME_CA.address}:${PEBBLE_PORT}`,
                    managementListenAddress: `${ACME_CA.address}:${PEBBLE_MANAGEMENT_PORT}`,
                    certificate: join(this.dir, "pebble-cert.pem"),
                    privateKey: join(this.dir, "pebble-key.pem"),
                    httpPort: 5002,
                    tlsPort: 5001,
                    ocspResponderURL: "",
                    externalAccountBindingRequired: false,
                    certificateValidityPeriod: CERTIFICATE_SECONDS,
                },
            }),
        );
        // No random sleeps or nonce rejections (they test clients' patience), and every order proves DNS-01 afresh.
        this.spawn(ACME_CA.key, ["pebble", "-config", conf, "-dnsserver", `${ACME_CA.address}:53`], "pebble.log", { PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" });
    }

    /**
     * relay-image/lib/acme.sh in a host's namespace, as the primary's timer runs it: the stack's ACME
     * environment for that host, the lab's provider, and where its pair lives.
     */
    obtain(key: string, hostname: string, files: { certFile: string; keyFile: string; reload: string }, subcommand: string[] = ["obtain"]): { status: number | null; output: string; seconds: number } {
        const started = Date.now();
        const env = {
            ...acmeEnvironment(this.lab.topology, hostname),
            ...this.labEnv(),
            ACME_DIR: join(this.lab.path(key), "acme"),
            ACME_CERT_FILE: files.certFile,
            ACME_KEY_FILE: files.keyFile,
            ACME_RELOAD_COMMAND: files.reload,
        };
        const r = this.lab.net.exec(key, ["sh", ACME_WRAPPER, ...subcommand], { env, timeoutMs: 180_000 });
        return { status: r.status, output: (r.stdout + r.stderr).trim(), seconds: (Date.now() - started) / 1000 };
    }

    /** The primary's certificate, before it starts (the cloud's timer runs at boot); its reload for later runs. */
    obtainForPrimary(): void {
        const primary = this.lab.primary;
        const conf = primary.tls.configDir;
        const reload = `if postfix -c ${shellQuote(conf)} status 2>/dev/null; then postfix -c ${shellQuote(conf)} reload; fi`;
        const r = this.obtain(primary.key, primary.hostname, { certFile: primary.tls.certFile, keyFile: primary.tls.keyFile, reload });
        if (r.status !== 0) throw new Error(`acme.sh on the primary failed (${r.status}): ${r.output}`);
        this.issuance.set(primary.hostname, r.seconds);
    }

    /** The sending MTA verifies every MX of the lab's domains against Pebble's root only, and logs each session. */
    configureSender(): void {
        const conf = this.lab.path("sender", "etc");
        const policy = join(conf, "tls_policy");
        writeFileSync(policy, this.lab.topology.domains.map((d) => `${d} secure match=hostname\n`).join(""));
        run("postconf", ["-c", conf, "-e", `smtp_tls_policy_maps = texthash:${policy}`, `smtp_tls_CAfile = ${this.rootFile}`, "smtp_tls_loglevel = 1"]);
        run("postfix", ["-c", conf, "check"]);
    }

    /** The certificate a mail host serves on port 25, as a client that trusts only Pebble's root sees it. */
    served(fromKey: string, hostname: string): ServedCertificate {
        const address = this.lab.addressOf(hostname);
        const script =
            'openssl s_client -connect "$1" -starttls smtp -name mta.example.net -servername "$2" -verify_hostname "$2" -CAfile "$3" -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer';
        const r = this.lab.net.exec(fromKey, ["sh", "-c", script, "served", `${address}:25`, hostname, this.rootFile], { timeoutMs: 20_000 });
        const field = (name: string) => new RegExp(`^${name}=\\s*(.*)$`, "m").exec(r.stdout)?.[1]?.trim() ?? "";
        return { verified: r.status === 0 && field("serial") !== "", serial: field("serial"), issuer: field("issuer"), output: (r.stdout + r.stderr).trim() };
    }

    /** From a relay's log: seconds from its request to its first certificate (the log's second resolution). */
    private relayIssuanceSeconds(logFile: string, hostname: string): number | undefined {
        if (!existsSync(logFile)) return undefined;
        const text = readFileSync(logFile, "utf8");
        const at = (pattern: RegExp) => {
            const m = pattern.exec(text);
            return m === null ? undefined : Date.parse(m[1]);
        };
        const asked = at(/^(\S+) relay: certificate: asking /m);
        const got = at(new RegExp(`^(\\S+) relay: acme: ${hostname.replace(/\./g, "\\.")}: new certificate`, "m"));
        return asked === undefined || got === undefined ? undefined : (got - asked) / 1000;
    }

    /** Each MX host's first certificate and how long it took, for the lab's log. */
    issuanceSummary(): string {
        for (const relay of this.lab.topology.relays) {
            const seconds = this.relayIssuanceSeconds(this.lab.path(hostKey(relay.hostname), "relay.log"), relay.hostname);
            if (seconds !== undefined) this.issuance.set(relay.hostname, seconds);
        }
        return mailHosts(this.lab.topology)
            .map((h) => `${hostKey(h.hostname)} ${this.issuance.has(h.hostname) ? `${this.issuance.get(h.hostname)!.toFixed(1)} s` : "none yet"}`)
            .join(", ");
    }

    /** Stops what it started, by pid (the lab's teardown would take them with the namespaces anyway). */
    stop(): void {
        for (const child of this.processes) {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        }
        this.processes.length = 0;
    }
}
