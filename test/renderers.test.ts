import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { after, describe, it } from "node:test";
import { load } from "js-yaml";
import { parseTopology } from "../lib/topology/validate";
import { buildRecordSet, mtaStsPolicy, mtaStsPolicyId } from "../lib/render/records";
import { groupRecordSets, route53Value } from "../lib/render/route53";
import { renderEtrnScript, renderPrimaryPostfix, virtualMailboxTable } from "../lib/render/primary-postfix";
import { renderPrimaryCloudInit, renderRelayCloudInit } from "../lib/render/cloud-init";
import { relayEnvironment } from "../lib/render/relay-env";
import { readRelayImage } from "../lib/relay-image";
import { ROOT, hasCommand, rawTopology, requirePrerequisite } from "./helpers";

const prod = parseTopology(rawTopology("prod"));
const us = parseTopology(rawTopology("us"));
const addressOf = (h: string) => ({ "mail.example.com": "192.0.2.10", "mx2.example.com": "198.51.100.20", "mx3.example.com": "203.0.113.30" })[h] ?? "192.0.2.99";

describe("record set", () => {
    const records = buildRecordSet(prod, addressOf);

    it("publishes MX 10/20/30 at the apex, pointing at primary, backup and third MX", () => {
        const mx = records.filter((r) => r.type === "MX").map((r) => [r.name, r.priority, r.content]);
        assert.deepEqual(mx, [
            ["example.com", 10, "mail.example.com"],
            ["example.com", 20, "mx2.example.com"],
            ["example.com", 30, "mx3.example.com"],
        ]);
    });

    it("gives every mail host an A record with its address", () => {
        const a = Object.fromEntries(records.filter((r) => r.type === "A").map((r) => [r.name, r.content]));
        assert.deepEqual(a, { "mail.example.com": "192.0.2.10", "mx2.example.com": "198.51.100.20", "mx3.example.com": "203.0.113.30" });
    });

    it("authorises every MX in SPF and sets DMARC, MTA-STS and TLS-RPT", () => {
        const txt = (name: string) => records.filter((r) => r.type === "TXT" && r.name === name).map((r) => r.content);
        assert.deepEqual(txt("example.com"), ["v=spf1 mx ~all"]);
        assert.match(String(txt("_dmarc.example.com")[0]), /^v=DMARC1; p=none; rua=mailto:ops@example\.com$/);
        assert.deepEqual(txt("_mta-sts.example.com"), [`v=STSv1; id=${mtaStsPolicyId(prod)}`]);
        assert.deepEqual(txt("_smtp._tls.example.com"), ["v=TLSRPTv1; rua=mailto:ops@example.com"]);
    });

    it("lists the backups in the MTA-STS policy, and changes the id when the MX list changes", () => {
        assert.match(mtaStsPolicy(prod), /mx: mail\.example\.com\r\nmx: mx2\.example\.com\r\nmx: mx3\.example\.com\r\n/);
        const withoutMx3 = parseTopology({ ...rawTopology("prod"), relays: (rawTopology("prod").relays as object[]).slice(0, 1) });
        assert.doesNotMatch(mtaStsPolicy(withoutMx3), /mx3/);
        assert.notEqual(mtaStsPolicyId(withoutMx3), mtaStsPolicyId(prod));
        const changed = parseTopology({ ...rawTopology("prod"), policy: { mtaSts: "enforce" } });
        assert.notEqual(mtaStsPolicyId(changed), mtaStsPolicyId(prod));
    });

    it("publishes MX and policy records for each domain of a multi-domain stack", () => {
        const usRecords = buildRecordSet(us, () => "192.0.2.1");
        for (const domain of ["example.org", "example.net"]) {
            assert.equal(usRecords.filter((r) => r.type === "MX" && r.name === domain).length, 3, domain);
        }
        // The hosts live under example.org only; example.net carries no A records of its own.
        assert.deepEqual(usRecords.filter((r) => r.type === "A").map((r) => r.zone), ["example.org", "example.org", "example.org"]);
    });

    it("groups values into Route53 record sets in Route53's syntax", () => {
        const mxSet = groupRecordSets(records).find((s) => s.type === "MX")!;
        assert.deepEqual(mxSet.records.map(route53Value), ["10 mail.example.com", "20 mx2.example.com", "30 mx3.example.com"]);
    });
});

describe("primary Postfix config", () => {
    const config = renderPrimaryPostfix(prod, { relayAddresses: ["198.51.100.20", "203.0.113.30"] });
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    it("is read back by postconf exactly as rendered, without warnings", (t) => {
        if (!requirePrerequisite(t, hasCommand("postconf"), "postconf (Debian package postfix)")) return;
        const dir = mkdtempSync(join(tmpdir(), "primary-cf-"));
        dirs.push(dir);
        copyFileSync("/usr/share/postfix/master.cf.dist", join(dir, "master.cf"));
        writeFileSync(join(dir, "main.cf"), config.mainCf.map(([k, v]) => `${k} = ${v}`).join("\n") + "\ncompatibility_level = 3.6\n");
        const result = spawnSync("postconf", ["-c", dir, "-n"], { encoding: "utf8" });
        assert.equal(result.status, 0, result.stderr);
        assert.equal(result.stderr, "", "postconf warned about the rendered config");
        const parsed = new Map(result.stdout.trim().split("\n").map((l) => l.split(" = ", 2) as [string, string]));
        for (const [k, v] of config.mainCf) assert.equal(parsed.get(k), v, k);
    });

    it("accepts the domains as virtual mailbox domains, never as relay or local destinations", () => {
        const cf = new Map(config.mainCf);
        assert.equal(cf.get("virtual_mailbox_domains"), "example.com");
        assert.equal(cf.get("mydestination"), "localhost");
        assert.equal(cf.get("mynetworks"), "127.0.0.0/8");
        assert.match(cf.get("smtpd_relay_restrictions")!, /reject_unauth_destination$/);
        assert.match(cf.get("smtpd_recipient_restrictions")!, /reject_unlisted_recipient/);
    });

    it("lets virtual(8) deliver the largest message it accepts", () => {
        const cf = new Map(config.mainCf);
        // virtual(8) exits with a fatal error when its limit is below message_size_limit.
        assert.ok(Number(cf.get("virtual_mailbox_limit")) >= Number(cf.get("message_size_limit")));
    });

    it("trusts the relays' addresses only for the checks that would bounce relayed mail", () => {
        assert.equal(config.tables["relay_clients.cidr"], "198.51.100.20/32\tOK\n203.0.113.30/32\tOK\n");
        const cf = new Map(config.mainCf);
        assert.match(cf.get("smtpd_sender_restrictions")!, /^check_client_access cidr:\/etc\/postfix\/relay_clients\.cidr/);
        assert.doesNotMatch(cf.get("smtpd_relay_restrictions")!, /relay_clients/, "relays must not be able to relay through the primary");
    });

    it("maps each recipient and whole-domain entry to a Maildir", () => {
        assert.equal(virtualMailboxTable(["alice@example.com", "@example.org"]), "alice@example.com\texample.com/alice/\n@example.org\texample.org/catchall/\n");
    });

    it("renders an ETRN script that bash accepts and that names every relay and domain", (t) => {
        const script = renderEtrnScript(us);
        assert.match(script, /relays=\(mx2\.example\.org mx3\.example\.org\)/);
        assert.match(script, /domains="example\.org example\.net"/);
        if (!requirePrerequisite(t, hasCommand("bash"), "bash")) return;
        const syntax = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
        assert.equal(syntax.status, 0, syntax.stderr);
    });
});

describe("cloud-init", () => {
    it("writes the rendered Postfix config and mounts the encrypted mail volume by its serial", () => {
        const text = renderPrimaryCloudInit(prod, { relayAddresses: ["198.51.100.20"], mailVolumeId: "vol-0abc123" });
        assert.ok(text.startsWith("#cloud-config\n"));
        const doc = load(text) as { write_files: { path: string; content: string }[]; runcmd: string[]; packages: string[] };
        const file = (p: string) => doc.write_files.find((f) => f.path === p)?.content ?? "";
        assert.match(file("/etc/postfix/vmailbox"), /^alice@example\.com\texample\.com\/alice\/$/m);
        assert.match(file("/etc/postfix/relay_clients.cidr"), /^198\.51\.100\.20\/32\tOK$/m);
        assert.match(file("/usr/local/sbin/mailcontinuity-postconf"), /postconf -e 'virtual_mailbox_domains=example\.com'/);
        assert.match(file("/usr/local/sbin/mailcontinuity-mount-mail"), /nvme-Amazon_Elastic_Block_Store_vol0abc123/);
        assert.match(file("/etc/systemd/system/etrn-relays.timer"), /OnBootSec=/);
        assert.ok(doc.packages.includes("postfix") && doc.packages.includes("dovecot-imapd"));
        assert.ok(doc.runcmd.indexOf("/usr/local/sbin/mailcontinuity-postconf") < doc.runcmd.indexOf("postfix check"));
    });

    it("gives an EC2 relay exactly the relay environment, and fits EC2's 16 KB user-data limit", () => {
        const image = readRelayImage(join(ROOT, "relay-image"));
        const relay = prod.relays[1];
        const text = renderRelayCloudInit(prod, relay, image.files);
        const doc = load(text) as { write_files: { path: string; content: string }[] };
        const env = doc.write_files.find((f) => f.path === "/etc/relay/relay.env")!.content;
        const expected = Object.entries(relayEnvironment(prod, relay)).map(([k, v]) => `${k}=${v}`);
        assert.deepEqual(env.trim().split("\n"), expected);
        for (const name of Object.keys(image.files)) assert.ok(doc.write_files.some((f) => f.path === `/opt/relay-image/${name}`), name);
        const packed = gzipSync(text);
        assert.ok(packed.length < 16384, `gzipped user data is ${packed.length} bytes`);
        assert.equal(gunzipSync(packed).toString(), text);
    });
});
