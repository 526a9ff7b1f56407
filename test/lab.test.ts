// The lab: its pure parts directly, then the whole failover drill with the real programs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parseTopology } from "../lib/topology/validate";
import { buildRecordSet } from "../lib/render/records";
import { renderZoneFile } from "../lab/zone";
import { withLabAcme } from "../lab/acme-ca";
import { LAB_PARTNER, withLabPartner } from "../lab/partner";
import { ownRelays, partnerRelays } from "../lib/topology/placement";
import { LabNetwork, isDocumentationAddress } from "../lab/net";
import { SCENARIOS, type Row } from "../lab/drill";
import { formatTable } from "../lab/table";
import { missingPrerequisites } from "../lab/prerequisites";
import { replaceSection } from "../lab/benchmarks-doc";
import { labRecipient, maildirOf } from "../lab/mailbox";
import { SenderLog, smtpSource } from "../lab/sender";
import { SOAK_SCENARIOS, formatSoakTable, summarise, type SoakResult } from "../lab/soak";
import { DEFAULT_RELAY_RUNTIME, parseRelayRuntime } from "../lab/relays";
import { ROOT, hasCommand, rawTopology, requirePrerequisite } from "./helpers";

const topology = parseTopology(rawTopology("lab"));

/** The network namespaces processes live in right now: one left behind by the lab shows up here. */
function processNamespaces(): Set<string> {
    const found = new Set<string>();
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
        try {
            found.add(readlinkSync(`/proc/${pid}/ns/net`));
        } catch {
            // exited meanwhile
        }
    }
    return found;
}
const nameservers = [
    { hostname: "ns1.example.com", address: "192.0.2.53" },
    { hostname: "ns2.example.com", address: "198.51.100.53" },
];

describe("lab parts", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    it("renders the DNS component's record set as a zone NSD accepts", (t) => {
        const addresses: Record<string, string> = { "mail.example.com": "192.0.2.10", "mx2.example.com": "198.51.100.20", "mx3.example.com": "203.0.113.30" };
        const zone = renderZoneFile("example.com", buildRecordSet(topology, (h) => addresses[h]), nameservers);
        assert.match(zone, /^example\.com\. 300 IN MX 10 mail\.example\.com\.$/m);
        assert.match(zone, /^example\.com\. 300 IN MX 30 mx3\.example\.com\.$/m);
        assert.match(zone, /^_dmarc\.example\.com\. 300 IN TXT "v=DMARC1; p=none; rua=mailto:ops@example\.com"$/m);
        assert.match(zone, /^ns2\.example\.com\. IN A 198\.51\.100\.53$/m);
        if (!requirePrerequisite(t, hasCommand("nsd-checkzone"), "nsd-checkzone (Debian package nsd)")) return;
        const dir = mkdtempSync(join(tmpdir(), "zone-"));
        dirs.push(dir);
        writeFileSync(join(dir, "example.com.zone"), zone);
        const r = spawnSync("nsd-checkzone", ["example.com", join(dir, "example.com.zone")], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stdout + r.stderr);
    });

    it("publishes each MX's _acme-challenge CNAME and the challenge zone's delegation in the ACME lab's zone, and its DNS hook writes there only", (t) => {
        const addresses: Record<string, string> = { "mail.example.com": "192.0.2.10", "mx2.example.com": "198.51.100.20", "mx3.example.com": "203.0.113.30" };
        const records = buildRecordSet(withLabAcme(topology), (h) => addresses[h], { challengeNameservers: ["acme-dns.example.net"] });
        const zone = renderZoneFile("example.com", records, nameservers);
        assert.match(zone, /^_acme-challenge\.mx2\.example\.com\. 300 IN CNAME mx2-example-com\.acme-challenge\.example\.com\.$/m);
        assert.match(zone, /^_acme-challenge\.mail\.example\.com\. 300 IN CNAME mail-example-com\.acme-challenge\.example\.com\.$/m);
        assert.match(zone, /^acme-challenge\.example\.com\. 300 IN NS acme-dns\.example\.net\.$/m);
        assert.doesNotMatch(renderZoneFile("example.com", buildRecordSet(topology, (h) => addresses[h]), nameservers), /acme/, "only the ACME lab publishes them");
        const hook = (fqdn: string) => spawnSync("sh", [join(ROOT, "lab", "acme-dns-hook.sh"), "present", fqdn, "token"], { env: { PATH: process.env.PATH, LAB_ACME_CHALLTESTSRV: "http://192.0.2.1:1", LAB_ACME_CHALLENGE_ZONE: "acme-challenge.example.com" }, encoding: "utf8" });
        const outside = hook("_acme-challenge.mx2.example.com.");
        assert.equal(outside.status, 1);
        assert.match(outside.stderr, /refused: _acme-challenge\.mx2\.example\.com\. is outside the challenge zone acme-challenge\.example\.com/);
        if (!requirePrerequisite(t, hasCommand("nsd-checkzone"), "nsd-checkzone (Debian package nsd)")) return;
        const dir = mkdtempSync(join(tmpdir(), "zone-"));
        dirs.push(dir);
        writeFileSync(join(dir, "example.com.zone"), zone);
        const r = spawnSync("nsd-checkzone", ["example.com", join(dir, "example.com.zone")], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stdout + r.stderr);
    });

    it("makes mx3 a partner's MX in the partner lab, at its address, publishing its A record and no ACME name for it", () => {
        const partnerLab = withLabPartner(topology);
        assert.deepEqual(ownRelays(partnerLab).map((r) => r.hostname), ["mx2.example.com"]);
        assert.deepEqual(partnerRelays(partnerLab).map((r) => [r.hostname, r.priority, r.placement.organisation, r.placement.addresses]), [["mx3.example.com", 30, LAB_PARTNER.organisation, ["203.0.113.30"]]]);
        const zone = renderZoneFile("example.com", buildRecordSet(withLabPartner(withLabAcme(topology)), (h) => ({ "mail.example.com": "192.0.2.10", "mx2.example.com": "198.51.100.20" })[h]!), nameservers);
        assert.match(zone, /^example\.com\. 300 IN MX 30 mx3\.example\.com\.$/m);
        assert.match(zone, /^mx3\.example\.com\. 300 IN A 203\.0\.113\.30$/m);
        assert.doesNotMatch(zone, /_acme-challenge\.mx3/);
        assert.match(zone, /_acme-challenge\.mx2/);
    });

    it("refuses any address outside the documentation ranges", () => {
        assert.ok(isDocumentationAddress("192.0.2.10") && isDocumentationAddress("198.51.100.20") && isDocumentationAddress("203.0.113.30"));
        for (const address of ["10.0.0.1", "192.168.1.1", "8.8.8.8", "192.0.3.1", "203.0.114.1"]) assert.ok(!isDocumentationAddress(address), address);
        assert.throws(() => new LabNetwork("test").addHost("rogue", "10.0.0.1"), /outside the documentation ranges/);
    });

    it("keeps the scenario ids other tools name (--only), config-change before security", () => {
        const ids = SCENARIOS.map((s) => s.id);
        assert.equal(new Set(ids).size, ids.length);
        for (const id of ["all-up", "primary-stopped", "primary-4xx", "stuck-queue", "config-change", "security", "dkim", "acme", "partner-mx"]) assert.ok(ids.includes(id), id);
        assert.equal(SCENARIOS.find((s) => s.id === "partner-mx")?.lab, "partner", "partner-mx runs in a lab of its own");
        assert.ok(ids.indexOf("config-change") < ids.indexOf("security"), "security must probe the restored recipient list");
    });

    it("runs the relays as processes unless --relay-runtime container is given, and refuses any other runtime", () => {
        assert.equal(DEFAULT_RELAY_RUNTIME, "process");
        assert.equal(parseRelayRuntime(undefined), "process");
        assert.equal(parseRelayRuntime("container"), "container");
        assert.throws(() => parseRelayRuntime("docker"), /--relay-runtime takes process or container, not docker/);
    });

    it("prints one table row per scenario with the counts", () => {
        const row: Row = { scenario: "primary stopped", sent: 40, acknowledged: 40, delivered: 40, duplicates: 0, lost: 0, bounced: 0, seconds: 8.9, recoverySeconds: 5.9, pass: true, detail: "" };
        const lines = formatTable([row, { ...row, scenario: "x", pass: false, recoverySeconds: null }]).split("\n");
        assert.match(lines[0], /^scenario\s+sent\s+acked\s+delivered\s+dups\s+bounced\s+seconds\s+recovery s\s+result$/);
        assert.match(lines[2], /^primary stopped\s+40\s+40\s+40\s+0\s+0\s+8\.9\s+5\.9\s+pass$/);
        assert.match(lines[3], /\s-\s+FAIL$/);
    });

    it("sends its test messages to one of the topology's recipients, filed where the primary's table says", () => {
        assert.equal(labRecipient(topology), "alice@example.com");
        assert.equal(labRecipient({ recipients: ["@example.org", "postmaster@example.org", "zoe@example.org"] }), "zoe@example.org");
        assert.throws(() => labRecipient({ recipients: ["postmaster@example.org", "@example.org"] }), /besides postmaster/);
        assert.equal(maildirOf("/m", "alice@example.com"), "/m/example.com/alice/");
        const args = smtpSource({ server: "203.0.113.100:25", to: "alice@example.com", subject: "s", count: 3, sessions: 2 });
        assert.deepEqual(args.slice(0, 7), ["smtp-source", "-m", "3", "-s", "2", "-f", "drill@example.net"]);
        assert.equal(args[args.indexOf("-t") + 1], "alice@example.com");
        assert.equal(args.at(-1), "203.0.113.100:25");
    });

    it("reads the sending MTA's log as it grows, crediting a reused queue id to its newest message", () => {
        const dir = mkdtempSync(join(tmpdir(), "senderlog-"));
        dirs.push(dir);
        const file = join(dir, "maillog");
        const log = new SenderLog(file);
        assert.deepEqual(log.received("<"), []);
        const line = (text: string) => `2026-01-01T00:00:00 mta postfix/x[1]: ${text}\n`;
        writeFileSync(file, line("ABC1: message-id=<0a0b.1@mta>") + line("ABC1: to=<alice@example.com>, relay=mx2.example.com[198.51.100.20]:25, delay=1, status=sent (250 ok)") + "2026-01-01 partial");
        assert.deepEqual(log.received("<0a0b."), [{ messageId: "<0a0b.1@mta>", acceptedBy: "mx2.example.com" }]);
        const mark = log.mark();
        writeFileSync(file, line("ABC1: message-id=<0a0b.2@mta>") + line("ABC1: to=<alice@example.com>, relay=mail.example.com[192.0.2.10]:25, delay=1, status=sent (250 ok)"), { flag: "a" });
        assert.deepEqual(log.received("<0a0b.", mark), [{ messageId: "<0a0b.2@mta>", acceptedBy: "mail.example.com" }]);
        assert.equal(log.received("<0a0b.")[0].acceptedBy, "mx2.example.com", "the older message keeps its own host");
    });

    it("replaces only its own section of docs/BENCHMARKS.md", () => {
        const doc = "# Benchmarks\n\nintro\n\n## Relay\n\nold relay\n\n## Soak\n\nold soak\n```\n## not a heading\n```\n";
        const soak = replaceSection(doc, "Soak", "new soak");
        assert.equal(soak, "# Benchmarks\n\nintro\n\n## Relay\n\nold relay\n\n## Soak\n\nnew soak\n");
        assert.equal(replaceSection(soak, "Relay", "new relay"), "# Benchmarks\n\nintro\n\n## Relay\n\nnew relay\n\n## Soak\n\nnew soak\n");
        assert.equal(replaceSection("# B\n", "New", "x"), "# B\n\n## New\n\nx\n");
    });

    it("soak: repeats the fault scenarios, fails on a loss or on duplicates outside the SIGKILL window", () => {
        assert.deepEqual(
            SOAK_SCENARIOS.map((s) => s.id),
            ["primary-stopped", "primary-drops", "primary-4xx", "primary-and-mx2-down", "relay-killed", "ns1-down", "ns1-servfail"],
        );
        const row = (id: string, extra: Partial<Row> = {}): SoakResult["rows"][number] => ({ id, round: 1, scenario: id, sent: 500, acknowledged: 500, delivered: 500, duplicates: 0, lost: 0, bounced: 0, seconds: 10, recoverySeconds: 5, pass: true, detail: "", ...extra });
        const ok = summarise(1000, 500, [row("primary-stopped"), row("relay-killed", { duplicates: 1 })]);
        assert.equal(ok.passed, true, ok.problems.join("; "));
        assert.equal(ok.total.acknowledged, 1000);
        assert.match(formatSoakTable(ok), /^total\s+2\s+1000\s+1000\s+0\s+1\s+0\.100%\s+20$/m);
        assert.match(summarise(1000, 500, [row("primary-stopped", { lost: 1, delivered: 499 }), row("ns1-down")]).problems.join(), /1 acknowledged messages lost/);
        assert.match(summarise(1000, 500, [row("primary-stopped"), row("relay-killed", { duplicates: 2 })]).problems.join(), /over 0\.1%/);
        assert.match(summarise(1000, 500, [row("primary-stopped", { duplicates: 1 }), row("ns1-down")]).problems.join(), /in primary-stopped, where none may happen/);
        assert.match(summarise(2000, 500, [row("primary-stopped")]).problems.join(), /only 500 of 2000/);
    });
});

describe("failover drill (npm run lab)", () => {
    it("loses nothing acknowledged in any scenario, and leaves nothing behind", (t) => {
        const missing = missingPrerequisites();
        if (!requirePrerequisite(t, missing.length === 0, missing.join("; "))) return;
        const before = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
        const namespacesBefore = processNamespaces();
        const started = Date.now();
        // The scenarios of the ordinary lab; those that need one started otherwise have their own test.
        const ordinary = SCENARIOS.filter((s) => s.lab === undefined);
        const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "lab", "main.ts"), "--json", "--only", ordinary.map((s) => s.id).join(",")], { encoding: "utf8", timeout: 600_000 });
        const seconds = (Date.now() - started) / 1000;
        const result = JSON.parse(r.stdout || "{}") as { passed?: boolean; rows?: Row[] };
        const rows = result.rows ?? [];
        const table = rows.length > 0 ? formatTable(rows) : r.stderr.slice(-3000);
        t.diagnostic(`\n${table}\n(${seconds.toFixed(0)} s)`);
        assert.equal(r.status, 0, `the drill failed:\n${table}\n${rows.filter((x) => !x.pass).map((x) => `${x.scenario}: ${x.detail}`).join("\n")}`);
        assert.equal(result.passed, true);
        assert.deepEqual(rows.map((x) => x.pass), ordinary.map(() => true));
        for (const row of rows.filter((x) => x.scenario !== "security: relay tricks and unknown recipient")) {
            assert.equal(row.acknowledged, row.sent, `${row.scenario}: not everything was acknowledged`);
            assert.equal(row.delivered + row.bounced, row.acknowledged, `${row.scenario}: acknowledged mail vanished`);
        }
        const outage = rows.find((x) => x.scenario.startsWith("primary stopped"))!;
        assert.ok(outage.recoverySeconds !== null && outage.recoverySeconds < 30, `recovery took ${outage.recoverySeconds} s`);
        // The queue alert fired (its URL answered 503 "stuck") once the mail was past STUCK_QUEUE_AGE.
        assert.match(rows.find((x) => x.scenario.startsWith("stuck queue"))!.detail, /answered 503 \d+\.\d s after its oldest message passed STUCK_QUEUE_AGE=\d+s .*"mailcontinuity-queue: stuck: /);
        // The primary's own mail leaves signed: mailauth at the receiving end says pass with the key both
        // nameservers publish, and fail for a copy changed on the way.
        const dkim = rows.find((x) => x.scenario.startsWith("dkim"))!;
        assert.equal(dkim.delivered, 2, dkim.detail);
        assert.match(dkim.detail, /^d=example\.com s=lab2026: pass for mail submitted with sendmail and over SMTP .*ns1 in \d strings and ns2 in \d strings; body changed: neutral \(body hash did not verify\); Subject changed: fail/);
        // The primary's IPv6 path dropped, its IPv4 working: the sending MTA, IPv6 first, waits out its
        // connect timeout (5 s) on the AAAA and delivers to the A in the same attempt (its own log); a
        // sender with IPv6 only reaches the primary through mx2, which hands over over IPv4 (the primary's log).
        const ipv6 = rows.find((x) => x.scenario.startsWith("primary's IPv6 path"))!;
        assert.match(ipv6.detail, /^primary up: the sending MTA timed out \d+x at 2001:db8:192:2::10, then delivered all 10 over IPv4 \(192\.0\.2\.10; connection setup up to [5-9]\.\d s\); an IPv6-only sender: mx2 accepted 10 at 2001:db8:198:100::20 and handed 10 to the primary over IPv4 in [\d.]+ s$/);
        assert.equal(ipv6.lost, 0);
        // Up from 300 s with IPv6 (252 s -> 301 s on the machine of 2026-11-26): ipv6-broken adds 13 s, a
        // sender now meets two timeouts where the primary drops packets (primary-drops: 17 s -> 40 s), and
        // waits for the dead first nameserver on AAAA lookups too (ns1-down: 29 s -> 40 s).
        assert.ok(seconds < 360, `the drill took ${seconds.toFixed(0)} s; it must stay under 6 minutes`);
        assert.equal(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout, before, "the lab left namespaces behind");
        const leftover = [...processNamespaces()].filter((ns) => !namespacesBefore.has(ns));
        assert.deepEqual(leftover, [], "processes of the lab are still running in its (deleted) namespaces");
    });
});

describe("ACME drill (npm run lab -- --only acme)", () => {
    it("gets every MX a certificate from the lab's CA by DNS-01, verifies TLS at every hop, refuses an impostor primary, renews without a restart, and leaves nothing behind", (t) => {
        const missing = missingPrerequisites();
        if (!requirePrerequisite(t, missing.length === 0, missing.join("; "))) return;
        const before = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
        const namespacesBefore = processNamespaces();
        const started = Date.now();
        const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "lab", "main.ts"), "--json", "--only", "acme"], { encoding: "utf8", timeout: 300_000 });
        const seconds = (Date.now() - started) / 1000;
        const result = JSON.parse(r.stdout || "{}") as { passed?: boolean; rows?: Row[] };
        const rows = result.rows ?? [];
        const table = rows.length > 0 ? formatTable(rows) : r.stderr.slice(-3000);
        t.diagnostic(`\n${table}\n${rows.map((x) => x.detail).join("\n")}\n(${seconds.toFixed(0)} s)`);
        assert.equal(r.status, 0, `the ACME drill failed:\n${table}\n${rows.map((x) => `${x.scenario}: ${x.detail}`).join("\n")}`);
        assert.equal(rows.length, 1);
        const [row] = rows;
        assert.equal(row.pass, true, row.detail);
        assert.equal(row.acknowledged, row.sent);
        assert.equal(row.delivered, row.acknowledged, "acknowledged mail vanished");
        assert.equal(row.duplicates, 0);
        // Each MX host's first certificate came from Pebble through the CNAME into the challenge zone, in
        // seconds; every hop was verified; the impostor got nothing; the renewal changed the served serial.
        assert.match(row.detail, /^certificates from Pebble by DNS-01 \(CNAME into acme-challenge\.example\.com\): mail \d+\.\d s, mx2 \d+\.\d s, mx3 \d+\.\d s;/);
        assert.match(row.detail, /sender -> mail\.example\.com verified; primary stopped: sender -> mx2\.example\.com verified;/);
        assert.match(row.detail, /a self-signed primary got nothing \(mx2 held \d+: "Server certificate not verified"\); with its CA certificate back, handed to mail\.example\.com verified/);
        const renewal = /mx2 renewed in [\d.]+ s: serial ([0-9A-F]+) -> ([0-9A-F]+), master \d+ kept$/.exec(row.detail);
        assert.ok(renewal !== null && renewal[1] !== renewal[2], row.detail);
        assert.match(r.stderr, /acme: first certificates from Pebble \(DNS-01\): mail \d+\.\d s, mx2 \d+\.\d s, mx3 \d+\.\d s/);
        assert.ok(seconds < 150, `the ACME drill took ${seconds.toFixed(0)} s`);
        assert.equal(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout, before, "the lab left namespaces behind");
        const leftover = [...processNamespaces()].filter((ns) => !namespacesBefore.has(ns));
        assert.deepEqual(leftover, [], "processes of the lab (Pebble, unbound, pebble-challtestsrv, ...) are still running in its (deleted) namespaces");
    });
});

describe("partner drill (npm run lab -- --only partner-mx)", () => {
    it("a stock Postfix configured only by the partner's script takes MX 30: ours 250, unknown 5xx, no relaying; it holds the mail and hands it to the returning primary, each message once; a new list takes at once", (t) => {
        const missing = missingPrerequisites();
        if (!requirePrerequisite(t, missing.length === 0, missing.join("; "))) return;
        const before = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
        const namespacesBefore = processNamespaces();
        const started = Date.now();
        const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "lab", "main.ts"), "--json", "--only", "partner-mx"], { encoding: "utf8", timeout: 300_000 });
        const seconds = (Date.now() - started) / 1000;
        const result = JSON.parse(r.stdout || "{}") as { passed?: boolean; rows?: Row[] };
        const rows = result.rows ?? [];
        const table = rows.length > 0 ? formatTable(rows) : r.stderr.slice(-3000);
        t.diagnostic(`\n${table}\n${rows.map((x) => x.detail).join("\n")}\n(${seconds.toFixed(0)} s)`);
        assert.equal(r.status, 0, `the partner drill failed:\n${table}\n${rows.map((x) => `${x.scenario}: ${x.detail}`).join("\n")}`);
        assert.equal(rows.length, 1);
        const [row] = rows;
        assert.equal(row.pass, true, row.detail);
        assert.equal(row.acknowledged, row.sent);
        assert.equal(row.delivered, row.acknowledged, "acknowledged mail vanished");
        assert.equal(row.duplicates, 0);
        assert.match(r.stderr, /mail: primary, 1 relays \(processes\), mx3 \(a partner's stock Postfix\)/, "mx3 must not run as one of our relays");
        // Its main.cf: Debian's stock one, plus exactly the two settings the script adds.
        assert.match(row.detail, /^the partner's Postfix: stock Debian \(\d+ settings\) and the script, which added relay_domains = example\.com and relay_recipient_maps = hash:\.\.\.\/mailcontinuity-example-com-recipients and changed nothing else;/);
        // At RCPT, from outside: ours accepted, an unknown address of ours 5xx, every relay attempt refused.
        assert.match(row.detail, /at RCPT: alice@example\.com 250, nobody-\S+@example\.com 5\d\d, 5 relay attempts [45]\d\d(\/[45]\d\d)*;/);
        // The live checker, against this lab's plan (npm run check -- --config): the partner's MX checked like ours, no problem found.
        assert.match(row.detail, /the checker \(exit 0\) on mx3: relay test (ok|warning), unknown recipient @example\.com ok, listed recipient @example\.com ok/);
        // The primary and mx2 down: all of it at the partner; the primary back: all of it handed over, from the partner's own log.
        assert.match(row.detail, /primary and mx2 down: (\d+) acknowledged by mx3\.example\.com, \1 held there; primary back, postqueue -f on mx3: \1 to mail\.example\.com \(its log\), all in the mailbox in [\d.]+ s, each once;/);
        // The handover of a new list: the same script, run again.
        assert.match(row.detail, /carol@example\.com 250, bob@example\.com 5\d\d, its settings unchanged$/);
        assert.ok(seconds < 150, `the partner drill took ${seconds.toFixed(0)} s`);
        assert.equal(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout, before, "the lab left namespaces behind");
        const leftover = [...processNamespaces()].filter((ns) => !namespacesBefore.has(ns));
        assert.deepEqual(leftover, [], "processes of the lab (the partner's Postfix too) are still running in its (deleted) namespaces");
    });
});

/** Names under the lab's prefix (mcl-<id>-*) in podman's store: containers, then volumes. */
function labContainersAndVolumes(): string[] {
    const list = (args: string[]) =>
        spawnSync("podman", ["--runtime", "runc", "--cgroup-manager=cgroupfs", ...args], { encoding: "utf8" })
            .stdout.split("\n")
            .filter((n) => n.startsWith("mcl-"));
    return [...list(["ps", "--all", "--format", "{{.Names}}"]), ...list(["volume", "ls", "--format", "{{.Name}}"])];
}

describe("failover drill with the relays as containers (npm run lab -- --relay-runtime container)", () => {
    it("the relay image survives a SIGKILL, takes a recipient change through podman exec, reports stuck mail, and nothing is left behind", (t) => {
        const missing = missingPrerequisites("container");
        if (!requirePrerequisite(t, missing.length === 0, `${missing.join("; ")} (the relay image is built with buildah and run with podman)`)) return;
        const only = ["all-up", "relay-killed", "stuck-queue", "config-change", "security"];
        const processesBefore = processNamespaces();
        const started = Date.now();
        // The image is built first when podman's store lacks the current digest's (a few minutes at most).
        const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "lab", "main.ts"), "--json", "--relay-runtime", "container", "--only", only.join(",")], { encoding: "utf8", timeout: 900_000 });
        const seconds = (Date.now() - started) / 1000;
        const result = JSON.parse(r.stdout || "{}") as { passed?: boolean; relayRuntime?: string; rows?: Row[] };
        const rows = result.rows ?? [];
        const table = rows.length > 0 ? formatTable(rows) : r.stderr.slice(-3000);
        t.diagnostic(`\n${table}\n(${seconds.toFixed(0)} s, relays as containers)`);
        assert.equal(r.status, 0, `the drill failed:\n${table}\n${rows.filter((x) => !x.pass).map((x) => `${x.scenario}: ${x.detail}`).join("\n")}`);
        assert.equal(result.relayRuntime, "container");
        assert.match(r.stderr, /relays \(containers\)(, \d+ site servers)? and the sending MTA answer 220/);
        assert.deepEqual(rows.map((x) => x.pass), only.map(() => true));
        const killed = rows.find((x) => x.scenario.includes("SIGKILLed"))!;
        assert.equal(killed.delivered, killed.acknowledged, killed.detail);
        assert.doesNotMatch(killed.detail, /QUEUE LOST/);
        assert.match(rows.find((x) => x.scenario.startsWith("config change"))!.detail, /reloaded, master \d+ kept/);
        // Its own names only (mcl-<id>-*): another test's lab may be running beside it.
        const prefix = /namespaces (mcl-[a-z0-9]+)-\*/.exec(r.stderr)?.[1];
        assert.ok(prefix !== undefined, "the drill did not say its lab's prefix");
        assert.deepEqual(labContainersAndVolumes().filter((n) => n.startsWith(`${prefix}-`)), [], "the lab left containers or volumes behind");
        const namespaces = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.split("\n").filter((n) => n.startsWith(`${prefix}-`));
        assert.deepEqual(namespaces, [], "the lab left namespaces behind");
        const leftover = [...processNamespaces()].filter((ns) => !processesBefore.has(ns));
        assert.deepEqual(leftover, [], "processes of the lab are still running in its (deleted) namespaces");
    });
});
