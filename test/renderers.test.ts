import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { load } from "js-yaml";
import { parseTopology } from "../lib/topology/validate";
import { buildRecordSet, mtaStsPolicy, mtaStsPolicyId } from "../lib/render/records";
import { groupRecordSets, route53Value } from "../lib/render/route53";
import { renderEtrnScript, renderPrimaryPostfix } from "../lib/render/primary-postfix";
import { virtualMailboxTable } from "../lib/render/maildirs";
import { renderPrimaryCloudInit, renderRelayCloudInit } from "../lib/render/cloud-init";
import { renderDkimKeyApply, renderPrimaryApply, type OpenDkimHost } from "../lib/render/primary-apply";
import { generateKeyPairSync } from "node:crypto";
import { relayEnvironment } from "../lib/render/relay-env";
import { ROOT, hasCommand, rawTopology, requirePrerequisite } from "./helpers";
import { partnerRelays } from "../lib/topology/placement";
import { partnerTableName, renderPartnerPostfix } from "../lib/render/partner";

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
        // prod enforces (tls.acme): testing is the other mode.
        const changed = parseTopology({ ...rawTopology("prod"), policy: { mtaSts: "testing" } });
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

describe("cloud-init (bootstrap only)", () => {
    const primary = load(renderPrimaryCloudInit(prod, { mailVolumeId: "vol-0abc123" })) as CloudConfig;
    const relay = load(renderRelayCloudInit(prod, prod.relays[1], { queueVolumeId: "vol-0def456" })) as CloudConfig;
    const file = (doc: CloudConfig, p: string) => doc.write_files.find((f) => f.path === p)?.content;

    it("carries no config that changes: recipients and Postfix settings arrive through the apply step", () => {
        const text = JSON.stringify(primary);
        for (const recipient of prod.recipients) assert.ok(!text.includes(recipient), `${recipient} is in the user data`);
        assert.equal(file(primary, "/etc/postfix/vmailbox"), undefined);
        assert.ok(!JSON.stringify(relay).includes("alice@example.com"));
    });

    it("mounts the mail volume by its serial, and holds Postfix and Dovecot until it is mounted (fail closed)", () => {
        assert.match(file(primary, "/usr/local/sbin/mailcontinuity-data-volume")!, /nvme-Amazon_Elastic_Block_Store_vol0abc123/);
        assert.match(file(primary, "/usr/local/sbin/mailcontinuity-data-volume")!, /until \[ -e "\$nitro" \] \|\| \[ -e \/dev\/xvdf \]; do/, "it must wait for the attachment, not give up");
        for (const unit of ["postfix@.service", "dovecot.service"]) {
            assert.match(file(primary, `/etc/systemd/system/${unit}.d/mailcontinuity-data-volume.conf`)!, /^Requires=mailcontinuity-data-volume\.service$/m, unit);
        }
        assert.match(file(relay, "/etc/systemd/system/docker.service.d/mailcontinuity-data-volume.conf")!, /^Requires=mailcontinuity-data-volume\.service$/m);
        assert.match(file(relay, "/usr/local/sbin/mailcontinuity-data-volume")!, /mount -o noatime "\$dev" \/srv\/relay-queue/);
        // Only a disk with no file system at all is formatted (blkid -p exits 2); any other failure stops.
        assert.match(file(primary, "/usr/local/sbin/mailcontinuity-data-volume")!, /if \[ "\$found" -eq 2 \]; then mkfs\.ext4/);
        // The primary's queue lives on the volume as well, bound at Postfix's usual path.
        assert.match(file(primary, "/usr/local/sbin/mailcontinuity-data-volume")!, /mount --bind \/var\/mail\/postfix-spool \/var\/spool\/postfix/);
    });

    it("installs the admin keys and lets the admin run the relay's Docker", () => {
        assert.deepEqual(primary.ssh_authorized_keys, prod.admin.sshKeys);
        assert.deepEqual(relay.ssh_authorized_keys, prod.admin.sshKeys);
        assert.ok(relay.runcmd.includes("usermod -aG docker admin"));
        assert.ok(relay.packages.includes("docker.io") && primary.packages.includes("dovecot-imapd"));
    });

    it("passes cloud-init's own schema check", (t) => {
        if (!requirePrerequisite(t, hasCommand("cloud-init"), "cloud-init (Debian package cloud-init)")) return;
        const dir = mkdtempSync(join(tmpdir(), "cloud-init-"));
        dirs.push(dir);
        for (const [name, text] of [["primary", renderPrimaryCloudInit(prod, { mailVolumeId: "vol-0abc123" })], ["relay", renderRelayCloudInit(prod, prod.relays[1], { queueVolumeId: "vol-0def456" })]]) {
            writeFileSync(join(dir, name), text);
            const r = spawnSync("cloud-init", ["schema", "--config-file", join(dir, name)], { encoding: "utf8" });
            assert.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
        }
    });
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
});

interface CloudConfig {
    write_files: { path: string; content: string }[];
    runcmd: string[];
    packages: string[];
    ssh_authorized_keys: string[];
}

describe("the primary's apply step, run for real against a Postfix config directory", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    function applyTo(topology: typeof prod, relayAddresses: string[]): { dir: string; run: ReturnType<typeof spawnSync> } {
        const dir = mkdtempSync(join(tmpdir(), "primary-apply-"));
        dirs.push(dir);
        copyFileSync("/usr/share/postfix/master.cf.dist", join(dir, "master.cf"));
        writeFileSync(join(dir, "main.cf"), "compatibility_level = 3.6\n");
        const script = renderPrimaryApply(topology, { relayAddresses, configDir: dir, etrnScriptPath: join(dir, "etrn-relays") });
        return { dir, run: spawnSync("sh", ["-s"], { input: script, encoding: "utf8" }) };
    }

    it("installs indexed recipients, the relays' addresses and main.cf, and waits for a stopped Postfix", (t) => {
        // The apply step runs `postfix check`, which only root may run (as on the host, through sudo).
        if (!requirePrerequisite(t, hasCommand("postmap") && process.getuid?.() === 0, "root and postmap (Debian package postfix)")) return;
        const { dir, run } = applyTo(prod, ["198.51.100.20", "203.0.113.30"]);
        assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
        assert.match(String(run.stdout), /postfix is not running; the configuration waits for its start/);
        assert.match(String(run.stdout), /applied: 4 recipients, 2 relays/);
        const lookup = (address: string) => spawnSync("postmap", ["-c", dir, "-q", address, `hash:${join(dir, "vmailbox")}`], { encoding: "utf8" });
        assert.equal(lookup("alice@example.com").stdout.trim(), "example.com/alice/");
        assert.equal(lookup("nobody@example.com").status, 1, "an unknown address must not be found");
        const cf = spawnSync("postconf", ["-c", dir, "-h", "virtual_mailbox_maps", "virtual_mailbox_domains"], { encoding: "utf8" });
        assert.equal(cf.stdout, `hash:${dir}/vmailbox\nexample.com\n`);
        assert.equal(readFileSync(join(dir, "relay_clients.cidr"), "utf8"), "198.51.100.20/32\tOK\n203.0.113.30/32\tOK\n");
        assert.equal(statSync(join(dir, "etrn-relays")).mode & 0o777, 0o755);
    });

    it("leaves the live main.cf alone when the edited copy fails postfix check", (t) => {
        // The apply step runs `postfix check`, which only root may run (as on the host, through sudo).
        if (!requirePrerequisite(t, hasCommand("postfix") && process.getuid?.() === 0, "root and postfix (Debian package postfix)")) return;
        const dir = mkdtempSync(join(tmpdir(), "primary-apply-"));
        dirs.push(dir);
        copyFileSync("/usr/share/postfix/master.cf.dist", join(dir, "master.cf"));
        // Something the rendered settings do not touch, and that postfix check refuses.
        const broken = "compatibility_level = 3.6\nqueue_directory = /nonexistent/mailcontinuity-queue\n";
        writeFileSync(join(dir, "main.cf"), broken);
        const script = renderPrimaryApply(prod, { relayAddresses: [], configDir: dir, etrnScriptPath: join(dir, "etrn-relays") });
        const run = spawnSync("sh", ["-s"], { input: script, encoding: "utf8" });
        assert.notEqual(run.status, 0, "a failing check must fail the apply step");
        assert.equal(readFileSync(join(dir, "main.cf"), "utf8"), broken, "the live main.cf was edited although the check failed");
    });

    it("applied again with a changed list, replaces it: the new address is found, the removed one is not", (t) => {
        // The apply step runs `postfix check`, which only root may run (as on the host, through sudo).
        if (!requirePrerequisite(t, hasCommand("postmap") && process.getuid?.() === 0, "root and postmap (Debian package postfix)")) return;
        const changed = parseTopology({ ...rawTopology("prod"), recipients: ["postmaster@example.com", "carol@example.com"] });
        const { dir, run } = applyTo(changed, []);
        assert.equal(run.status, 0, String(run.stderr));
        const found = (a: string) => spawnSync("postmap", ["-c", dir, "-q", a, `hash:${join(dir, "vmailbox")}`]).status === 0;
        assert.deepEqual([found("carol@example.com"), found("alice@example.com")], [true, false]);
        assert.equal(readFileSync(join(dir, "relay_clients.cidr"), "utf8"), "");
    });
});

describe("the primary's DKIM steps, run for real: configuration and key in either order, then a rotation", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    const dkim = (selector: string, retiredSelectors: string[] = []) => parseTopology({ ...rawTopology("prod"), dkim: { selector, retiredSelectors } });
    const pem = () => generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();

    /** A Postfix config directory and OpenDKIM's files in a temp dir; "restarting" notes it and names a live pid. */
    function host(): { dir: string; openDkim: OpenDkimHost; restarts: () => number; run: (script: string) => string } {
        const dir = mkdtempSync(join(tmpdir(), "primary-dkim-"));
        dirs.push(dir);
        copyFileSync("/usr/share/postfix/master.cf.dist", join(dir, "master.cf"));
        writeFileSync(join(dir, "main.cf"), "compatibility_level = 3.6\n");
        const paths = { conf: join(dir, "opendkim.conf"), tableDir: join(dir, "opendkim"), keyDir: join(dir, "keys"), pidFile: join(dir, "opendkim.pid") };
        const openDkim = { paths, restart: `echo restarted >>'${dir}/restarts'; echo ${process.pid} >'${paths.pidFile}'` };
        const restarts = () => {
            try {
                return readFileSync(join(dir, "restarts"), "utf8").split("\n").filter(Boolean).length;
            } catch {
                return 0;
            }
        };
        const run = (script: string) => {
            const r = spawnSync("sh", ["-s"], { input: script, encoding: "utf8" });
            assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
            return r.stdout;
        };
        return { dir, openDkim, restarts, run };
    }
    const config = (h: ReturnType<typeof host>, topology: ReturnType<typeof dkim>) => renderPrimaryApply(topology, { relayAddresses: [], configDir: h.dir, etrnScriptPath: join(h.dir, "etrn-relays"), openDkim: h.openDkim });
    const ready = (t: Parameters<typeof requirePrerequisite>[0]) =>
        requirePrerequisite(t, hasCommand("postfix") && hasCommand("opendkim") && process.getuid?.() === 0, "root, postfix and opendkim (Debian packages postfix, opendkim)");

    it("configuration first: OpenDKIM waits for the key, starts with it, is left alone when nothing changed; a rotation", (t) => {
        if (!ready(t)) return;
        const h = host();
        const topology = dkim("mc2026");
        assert.match(h.run(config(h, topology)), /opendkim waits for the key of selector mc2026/);
        assert.equal(h.restarts(), 0);
        const cf = spawnSync("postconf", ["-c", h.dir, "-h", "smtpd_milters", "milter_default_action"], { encoding: "utf8" });
        assert.equal(cf.stdout, "inet:127.0.0.1:8891\naccept\n");
        const key = pem();
        assert.match(h.run(renderDkimKeyApply(topology, key, h.openDkim)), /opendkim restarted, signing with selector mc2026/);
        assert.equal(h.restarts(), 1);
        const file = join(h.openDkim.paths.keyDir, "mc2026.private");
        const opendkim = Number(spawnSync("id", ["-u", "opendkim"], { encoding: "utf8" }).stdout.trim());
        assert.deepEqual([statSync(file).mode & 0o777, statSync(file).uid], [0o600, opendkim]);
        assert.equal(readFileSync(file, "utf8"), key);
        h.run(renderDkimKeyApply(topology, key, h.openDkim));
        assert.equal(h.restarts(), 1, "the same key again: OpenDKIM must not restart");

        // The rotation: the old key signs until the new one is there, then goes.
        const rotated = dkim("mc2027", ["mc2026"]);
        assert.match(h.run(config(h, rotated)), /opendkim waits for the key of selector mc2027/);
        assert.equal(h.restarts(), 1, "restarted with a key table whose key is not there yet");
        const keys = () => spawnSync("ls", [h.openDkim.paths.keyDir], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
        assert.deepEqual(keys(), ["mc2026.private"], "the running OpenDKIM still reads the old key");
        const out = h.run(renderDkimKeyApply(rotated, pem(), h.openDkim));
        assert.match(out, /opendkim restarted, signing with selector mc2027/);
        assert.match(out, /removed the retired key .*mc2026\.private/);
        assert.deepEqual(keys(), ["mc2027.private"]);
        h.run(config(h, rotated));
        assert.equal(h.restarts(), 2, "the configuration again unchanged: OpenDKIM must not restart");
    });

    it("key first: the key waits for the configuration, which starts OpenDKIM", (t) => {
        if (!ready(t)) return;
        const h = host();
        const topology = dkim("mc2026");
        assert.match(h.run(renderDkimKeyApply(topology, pem(), h.openDkim)), /in place; opendkim takes it once the configuration step names it/);
        assert.equal(h.restarts(), 0);
        assert.match(h.run(config(h, topology)), /opendkim restarted, signing with selector mc2026/);
        assert.equal(h.restarts(), 1);
    });

    it("leaves the live OpenDKIM configuration alone when opendkim -n refuses the new one", (t) => {
        if (!ready(t)) return;
        const h = host();
        writeFileSync(h.openDkim.paths.conf, "# the live one\n");
        // An opendkim that refuses every configuration, first on the PATH.
        mkdirSync(join(h.dir, "bin"));
        writeFileSync(join(h.dir, "bin", "opendkim"), "#!/bin/sh\necho 'opendkim: configuration error' >&2\nexit 78\n", { mode: 0o755 });
        const r = spawnSync("sh", ["-s"], { input: config(h, dkim("mc2026")), encoding: "utf8", env: { ...process.env, PATH: `${join(h.dir, "bin")}:${process.env.PATH ?? ""}` } });
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /configuration error/);
        assert.equal(readFileSync(h.openDkim.paths.conf, "utf8"), "# the live one\n");
        assert.equal(h.restarts(), 0);
    });
});

describe("the partner's Postfix script, run for real against a Postfix config directory", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    const topology = parseTopology(rawTopology("partner"));
    const [partner] = partnerRelays(topology);

    function partnerDir(mainCf: string): string {
        const dir = mkdtempSync(join(tmpdir(), "partner-postfix-"));
        dirs.push(dir);
        copyFileSync("/usr/share/postfix/master.cf.dist", join(dir, "master.cf"));
        writeFileSync(join(dir, "main.cf"), mainCf.replaceAll("@DIR@", dir));
        return dir;
    }
    const run = (dir: string, t = topology) => spawnSync("sh", ["-s", dir], { input: renderPartnerPostfix(t, partner), encoding: "utf8" });
    const setting = (dir: string, name: string) => spawnSync("postconf", ["-c", dir, "-h", name], { encoding: "utf8" }).stdout.trim();
    const found = (dir: string, address: string) => spawnSync("postmap", ["-c", dir, "-q", address, `hash:${join(dir, partnerTableName(topology))}`]).status === 0;
    const ready = (t: Parameters<typeof requirePrerequisite>[0]) => requirePrerequisite(t, hasCommand("postmap") && process.getuid?.() === 0, "root and postmap (Debian package postfix)");

    it("on a fresh Postfix: our domain and table, and our recipients only", (t) => {
        if (!ready(t)) return;
        const dir = partnerDir("compatibility_level = 3.6\n");
        const r = run(dir);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.equal(setting(dir, "relay_domains"), "example.com");
        assert.equal(setting(dir, "relay_recipient_maps"), `hash:${dir}/${partnerTableName(topology)}`);
        assert.deepEqual([found(dir, "alice@example.com"), found(dir, "nobody@example.com"), found(dir, "alice@example.net")], [true, false, false]);
        assert.match(r.stdout, /Postfix is not running; the configuration waits for its start/);
        assert.equal(statSync(join(dir, `${partnerTableName(topology)}.db`)).isFile(), true);
    });

    it("beside the partner's own relay domains and tables, keeping them, and twice the same as once", (t) => {
        if (!ready(t)) return;
        const dir = partnerDir("compatibility_level = 3.6\nrelay_domains = partner.example\nrelay_recipient_maps = hash:@DIR@/own\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n");
        writeFileSync(join(dir, "own"), "@partner.example OK\n");
        spawnSync("postmap", ["-c", dir, join(dir, "own")]);
        for (let i = 0; i < 2; i++) assert.equal(run(dir).status, 0);
        assert.equal(setting(dir, "relay_domains"), "partner.example, example.com");
        assert.equal(setting(dir, "relay_recipient_maps"), `hash:${dir}/own, hash:${dir}/${partnerTableName(topology)}`);
        assert.equal(setting(dir, "smtpd_relay_restrictions"), "permit_mynetworks, reject_unauth_destination");
        assert.match(readFileSync(join(dir, "main.cf"), "utf8"), /^relay_domains = partner\.example, example\.com$/m);
        // A changed list replaces the table, and nothing else.
        const changed = parseTopology({ ...rawTopology("partner"), recipients: ["postmaster@example.com", "carol@example.com"] });
        assert.equal(run(dir, changed).status, 0);
        assert.deepEqual([found(dir, "carol@example.com"), found(dir, "alice@example.com")], [true, false]);
        assert.equal(setting(dir, "relay_domains"), "partner.example, example.com");
    });

    it("below compatibility level 2 keeps relay_domains' old default ($mydestination)", (t) => {
        if (!ready(t)) return;
        const dir = partnerDir("compatibility_level = 0\n");
        assert.equal(run(dir).status, 0);
        assert.equal(setting(dir, "relay_domains"), "$mydestination, example.com");
    });

    it("stops, changing nothing, where our table would make Postfix refuse the partner's own relay recipients", (t) => {
        if (!ready(t)) return;
        const mainCf = "compatibility_level = 3.6\nrelay_domains = partner.example\n";
        const dir = partnerDir(mainCf);
        const r = run(dir);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /you relay for partner\.example and relay_recipient_maps is empty.*Nothing was changed/s);
        assert.equal(readFileSync(join(dir, "main.cf"), "utf8"), mainCf);
    });
});

describe("IPv6: the primary's apply step", () => {
    it("the primary's apply step restarts Postfix (a reload does not take it) only when what it listens on changes", () => {
        const script = renderPrimaryApply(prod, { relayAddresses: [], postfixRestart: "restart-it" });
        assert.match(script, /listening_before=\$\(postconf -c "\$conf" -h inet_protocols inet_interfaces/);
        assert.match(script, /elif \[ "\$listening_before" != "\$listening_after" \]; then .*; restart-it\nelse postfix -c "\$conf" reload; fi/);
        assert.match(renderPrimaryApply(prod, { relayAddresses: [] }), /; systemctl restart postfix\n/);
    });

});

describe("IPv6: the relay for real, in a network namespace of its own (test/ipv6.test.ts has the rest)", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    const ns = `mct-ipv6-${process.pid}`;
    let made = false;
    const inNs = (command: string[], env: Record<string, string> = {}, timeout = 60_000) =>
        spawnSync("ip", ["netns", "exec", ns, ...command], { env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8", timeout });
    before(() => {
        if (process.getuid?.() !== 0 || !hasCommand("ip") || !hasCommand("postconf")) return;
        if (spawnSync("ip", ["netns", "add", ns]).status !== 0) return;
        made = true;
        // `ip netns exec` binds /etc/netns/<ns>/hosts over /etc/hosts: the relay's name resolves there.
        mkdirSync(join("/etc/netns", ns), { recursive: true });
        writeFileSync(join("/etc/netns", ns, "hosts"), "127.0.0.1 localhost\n198.51.100.20 mx2.example.com\n2001:db8:198:100::20 mx2.example.com\n");
        spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    });
    after(() => {
        if (!made) return;
        for (const pid of spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean)) {
            try {
                process.kill(Number(pid), "SIGKILL");
            } catch {
                // gone
            }
        }
        spawnSync("ip", ["netns", "del", ns]);
        rmSync(join("/etc/netns", ns), { recursive: true, force: true });
    });

    /** What the stack passes a relay with IPv6 (not prod's ACME: nothing here may reach a CA). */
    function relayEnv(dir: string): Record<string, string> {
        chmodSync(dir, 0o755);
        writeFileSync(join(dir, "recipients"), "alice@example.com\n");
        const stack = relayEnvironment(prod, prod.relays[0], join(dir, "recipients"));
        const env = Object.fromEntries(Object.entries(stack).filter(([k]) => !k.startsWith("ACME_") && k !== "PRIMARY_TLS"));
        assert.equal(env.INET_PROTOCOLS, "all");
        return { ...env, POSTFIX_ROOT: join(dir, "root"), FLUSH_PROBE_INTERVAL: "1s" };
    }

    it("renders Postfix on both families, its own IPv6 address among its own, IPv4 first for its deliveries", (t) => {
        if (!requirePrerequisite(t, made, "root, iproute2 and postfix (a network namespace of the test's own)")) return;
        const dir = mkdtempSync(join(tmpdir(), "relay-ipv6-"));
        dirs.push(dir);
        const r = inNs(["sh", join(ROOT, "relay-image", "entrypoint.sh"), "render"], relayEnv(dir));
        assert.equal(r.status, 0, r.stderr);
        const shown = spawnSync("postconf", ["-c", join(dir, "root", "etc"), "-h", "inet_protocols", "inet_interfaces", "proxy_interfaces", "smtp_address_preference"], { encoding: "utf8" });
        assert.equal(shown.stderr, "");
        const [protocols, interfaces, proxy, preference] = shown.stdout.split("\n");
        assert.equal(protocols, "all");
        assert.equal(interfaces, "all");
        assert.deepEqual(proxy.trim().split(/\s+/).sort(), ["198.51.100.20", "[2001:db8:198:100::20]"]);
        assert.equal(preference, "ipv4");
    });

    it("starts and answers where the container has no IPv6 at all (Docker's default bridge)", async (t) => {
        if (!requirePrerequisite(t, made && hasCommand("busybox") && hasCommand("posttls-finger"), "root, iproute2, postfix and busybox")) return;
        const off = inNs(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.lo.disable_ipv6=1"]);
        assert.equal(off.status, 0, off.stderr);
        const dir = mkdtempSync(join(tmpdir(), "relay-noipv6-"));
        dirs.push(dir);
        const env = relayEnv(dir);
        const child = spawnSync("sh", ["-c", `ip netns exec ${ns} sh ${join(ROOT, "relay-image", "entrypoint.sh")} >${join(dir, "relay.log")} 2>&1 &`], { env: { PATH: process.env.PATH ?? "", ...env } });
        assert.equal(child.status, 0);
        let answered = false;
        for (let i = 0; i < 60 && !answered; i++) {
            answered = inNs(["posttls-finger", "-l", "none", "-t", "2", "-T", "2", "[127.0.0.1]:25"]).stdout.includes("< 220");
            if (!answered) await new Promise((resolve) => setTimeout(resolve, 500));
        }
        const log = readFileSync(join(dir, "relay.log"), "utf8");
        assert.ok(answered, `no 220 on 127.0.0.1:25 with IPv6 disabled:\n${log}`);
        assert.doesNotMatch(log, /fatal|panic/i, log);
    });
});
