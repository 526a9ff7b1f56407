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
import { LabNetwork, isDocumentationAddress } from "../lab/net";
import { SCENARIOS, type Row } from "../lab/drill";
import { formatTable } from "../lab/table";
import { missingPrerequisites } from "../lab/prerequisites";
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

    it("refuses any address outside the documentation ranges", () => {
        assert.ok(isDocumentationAddress("192.0.2.10") && isDocumentationAddress("198.51.100.20") && isDocumentationAddress("203.0.113.30"));
        for (const address of ["10.0.0.1", "192.168.1.1", "8.8.8.8", "192.0.3.1", "203.0.114.1"]) assert.ok(!isDocumentationAddress(address), address);
        assert.throws(() => new LabNetwork("test").addHost("rogue", "10.0.0.1"), /outside the documentation ranges/);
    });

    it("keeps the scenario ids other tools name (--only), config-change before security", () => {
        const ids = SCENARIOS.map((s) => s.id);
        assert.equal(new Set(ids).size, ids.length);
        for (const id of ["all-up", "primary-stopped", "primary-4xx", "config-change", "security"]) assert.ok(ids.includes(id), id);
        assert.ok(ids.indexOf("config-change") < ids.indexOf("security"), "security must probe the restored recipient list");
    });

    it("prints one table row per scenario with the counts", () => {
        const row: Row = { scenario: "primary stopped", sent: 40, acknowledged: 40, delivered: 40, duplicates: 0, bounced: 0, seconds: 8.9, recoverySeconds: 5.9, pass: true, detail: "" };
        const lines = formatTable([row, { ...row, scenario: "x", pass: false, recoverySeconds: null }]).split("\n");
        assert.match(lines[0], /^scenario\s+sent\s+acked\s+delivered\s+dups\s+bounced\s+seconds\s+recovery s\s+result$/);
        assert.match(lines[2], /^primary stopped\s+40\s+40\s+40\s+0\s+0\s+8\.9\s+5\.9\s+pass$/);
        assert.match(lines[3], /\s-\s+FAIL$/);
    });
});

describe("failover drill (npm run lab)", () => {
    it("loses nothing acknowledged in any scenario, and leaves nothing behind", (t) => {
        const missing = missingPrerequisites();
        if (!requirePrerequisite(t, missing.length === 0, missing.join("; "))) return;
        const before = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
        const namespacesBefore = processNamespaces();
        const started = Date.now();
        const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "lab", "main.ts"), "--json"], { encoding: "utf8", timeout: 600_000 });
        const seconds = (Date.now() - started) / 1000;
        const result = JSON.parse(r.stdout || "{}") as { passed?: boolean; rows?: Row[] };
        const rows = result.rows ?? [];
        const table = rows.length > 0 ? formatTable(rows) : r.stderr.slice(-3000);
        t.diagnostic(`\n${table}\n(${seconds.toFixed(0)} s)`);
        assert.equal(r.status, 0, `the drill failed:\n${table}\n${rows.filter((x) => !x.pass).map((x) => `${x.scenario}: ${x.detail}`).join("\n")}`);
        assert.equal(result.passed, true);
        assert.deepEqual(rows.map((x) => x.pass), SCENARIOS.map(() => true));
        for (const row of rows.filter((x) => x.scenario !== "security: relay tricks and unknown recipient")) {
            assert.equal(row.acknowledged, row.sent, `${row.scenario}: not everything was acknowledged`);
            assert.equal(row.delivered + row.bounced, row.acknowledged, `${row.scenario}: acknowledged mail vanished`);
        }
        const outage = rows.find((x) => x.scenario.startsWith("primary stopped"))!;
        assert.ok(outage.recoverySeconds !== null && outage.recoverySeconds < 30, `recovery took ${outage.recoverySeconds} s`);
        assert.ok(seconds < 300, `the drill took ${seconds.toFixed(0)} s; it must stay under 5 minutes`);
        assert.equal(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout, before, "the lab left namespaces behind");
        const leftover = [...processNamespaces()].filter((ns) => !namespacesBefore.has(ns));
        assert.deepEqual(leftover, [], "processes of the lab are still running in its (deleted) namespaces");
    });
});
