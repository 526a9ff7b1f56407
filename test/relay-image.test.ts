// The relay image as far as a machine without a Docker engine can check it: the Dockerfile's inputs,
// the entrypoint's shell (entrypoint.sh and the lib/ files it sources), and the environment contract
// between README, entrypoint and the stack.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readRelayImage } from "../lib/relay-image";
import { parseTopology } from "../lib/topology/validate";
import { MESSAGE_SIZE_LIMIT } from "../lib/render/maildirs";
import { QUEUE_HEALTHY_TEXT, RELAY_HEALTHCHECK, RELAY_QUEUE_PATH, relayEnvironment } from "../lib/render/relay-env";
import { INSTALL_RECIPIENTS, RELAY_ENTRYPOINT, RENEW_CERTIFICATE } from "../lib/render/relay-apply";
import { ROOT, hasCommand, rawTopology, requirePrerequisite } from "./helpers";

const IMAGE = join(ROOT, "relay-image");
const dockerfile = readFileSync(join(IMAGE, "Dockerfile"), "utf8");
const entrypoint = readFileSync(join(IMAGE, "entrypoint.sh"), "utf8");
const healthcheck = readFileSync(join(IMAGE, "healthcheck.sh"), "utf8");
const envScript = readFileSync(join(IMAGE, "lib", "env.sh"), "utf8");
const readme = readFileSync(join(IMAGE, "README.md"), "utf8");
/** Every shell file of the image, by path relative to relay-image/ ("entrypoint.sh", "lib/env.sh", ...). */
const shellFiles = Object.keys(readRelayImage(IMAGE).files).filter((f) => f.endsWith(".sh"));
/** Where the Dockerfile installs lib/, and where the entrypoint and health check look when there is no lib/ beside them. */
const INSTALLED_LIB = "/usr/local/lib/mailcontinuity-relay";
/** The ACME wrapper: a program, run by the entrypoint and by the primary's timer. */
const ACME_SCRIPT = "lib/acme.sh";

function documentedVariables(): string[] {
    const table = readme.slice(readme.indexOf("## Environment"));
    return [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
}

function variablesTheEntrypointReads(): string[] {
    const start = envScript.indexOf("read_environment() {");
    assert.ok(start >= 0, "no read_environment in relay-image/lib/env.sh");
    const body = envScript.slice(start, envScript.indexOf("\n}\n", start));
    return [...body.matchAll(/^\s+([A-Z_]+)=\$\{\1:-/gm)].map((m) => m[1]).sort();
}

function entrypointRun(subcommand: string, env: Record<string, string>, input?: string, script = join(IMAGE, "entrypoint.sh"), cwd?: string): { status: number | null; stderr: string; stdout: string } {
    const r = spawnSync("sh", [script, subcommand], { env: { PATH: process.env.PATH, ...env }, encoding: "utf8", input, cwd });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

/** relay-image/healthcheck.sh run outside a container, without blocking the event loop (a test server may answer it). */
function healthcheckRun(env: Record<string, string>): Promise<{ status: number | null; output: string }> {
    return new Promise((resolve) => {
        const child = spawn("sh", [join(IMAGE, "healthcheck.sh")], { env: { PATH: process.env.PATH, ...env } });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("close", (status) => resolve({ status, output }));
    });
}

function checkEnv(env: Record<string, string>): { status: number | null; stderr: string; stdout: string } {
    return entrypointRun("check-env", env);
}

/** What `postmap -q` finds for an address in an indexed table: its value, or undefined (exit 1). */
function lookup(table: string, address: string): string | undefined {
    const r = spawnSync("postmap", ["-q", address, table], { encoding: "utf8" });
    if (r.status === 1) return undefined;
    assert.equal(r.status, 0, `postmap -q ${address} ${table}: ${r.stderr}`);
    return r.stdout.trim();
}

describe("relay image", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    it("builds from Debian bookworm-slim with Debian packages only", () => {
        assert.match(dockerfile, /^FROM debian:bookworm-slim$/m);
        assert.match(dockerfile, /apt-get install -y --no-install-recommends/);
        assert.doesNotMatch(dockerfile, /\b(curl|wget|ADD\s+https?:)/, "the image must download nothing but Debian packages");
    });

    it("copies only files that exist, every build input, and installs the entrypoint and health check the stack names", () => {
        const copies = [...dockerfile.matchAll(/^COPY\s+(\S+)\s+(\S+)$/gm)];
        assert.equal(copies.length, [...dockerfile.matchAll(/^COPY\b/gm)].length, "one source and one target per COPY");
        assert.ok(copies.length >= 3);
        for (const [, source] of copies) assert.ok(existsSync(join(IMAGE, source)), `COPY ${source}: no such file in relay-image/`);
        const copied = (file: string) => copies.some(([, source]) => source === file || (source.endsWith("/") && file.startsWith(source)));
        for (const file of Object.keys(readRelayImage(IMAGE).files).filter((f) => f !== "Dockerfile")) {
            assert.ok(copied(file), `relay-image/${file} is a build input but no COPY installs it`);
        }
        for (const file of ["lib/env.sh", "lib/render.sh", "lib/flusher.sh", "lib/probe.sh", "lib/recipients.sh", "lib/queue-health.sh", "lib/status-server.sh"]) assert.ok(copied(file), `${file} is not copied`);
        assert.ok(copies.some(([, source, target]) => source === "entrypoint.sh" && target === RELAY_ENTRYPOINT), `entrypoint.sh is not installed at ${RELAY_ENTRYPOINT}`);
        assert.ok(copies.some(([, source, target]) => source === "healthcheck.sh" && target === RELAY_HEALTHCHECK), `healthcheck.sh is not installed at ${RELAY_HEALTHCHECK}`);
        assert.ok(copies.some(([, source, target]) => source === "lib/" && target === `${INSTALLED_LIB}/`), `lib/ is not installed at ${INSTALLED_LIB}/`);
        for (const [name, text] of [["entrypoint.sh", entrypoint], ["healthcheck.sh", healthcheck]]) {
            assert.match(text, new RegExp(`^\\[ -f "\\$relay_lib/[a-z]+\\.sh" \\] \\|\\| relay_lib=${INSTALLED_LIB}$`, "m"), `${name} does not fall back to ${INSTALLED_LIB}`);
        }
        assert.match(dockerfile, new RegExp(`^ENTRYPOINT \\["${RELAY_ENTRYPOINT}"\\]$`, "m"));
        assert.match(dockerfile, new RegExp(`^HEALTHCHECK .*"${RELAY_HEALTHCHECK}"`, "m"));
        assert.match(dockerfile, new RegExp(`^VOLUME \\["${RELAY_QUEUE_PATH}"\\]$`, "m"));
    });

    it("documents exactly the variables the entrypoint reads", () => {
        assert.deepEqual(documentedVariables(), variablesTheEntrypointReads());
    });

    it("is given by the stack only variables the image documents", () => {
        const topology = parseTopology(rawTopology("prod"));
        for (const name of Object.keys(relayEnvironment(topology, topology.relays[0]))) {
            assert.ok(documentedVariables().includes(name), `${name} is passed by the relay component but not documented`);
        }
    });

    it("reads every file under relay-image/, subdirectories included, into its build inputs and digest", () => {
        const image = readRelayImage(IMAGE);
        for (const file of ["entrypoint.sh", "healthcheck.sh", "lib/env.sh", "lib/render.sh", "lib/flusher.sh", "lib/probe.sh", "lib/recipients.sh"]) {
            assert.equal(image.files[file], readFileSync(join(IMAGE, file), "utf8"), `${file} is not a build input`);
        }
        assert.ok(!Object.keys(image.files).some((f) => f.endsWith(".md")), "documentation does not change the image");
        const dir = mkdtempSync(join(tmpdir(), "relay-image-"));
        dirs.push(dir);
        cpSync(IMAGE, dir, { recursive: true });
        assert.equal(readRelayImage(dir).digest, image.digest, "the digest depends on the files only, not on where they are");
        writeFileSync(join(dir, "README.md"), "changed\n");
        assert.equal(readRelayImage(dir).digest, image.digest, "a documentation change must not roll the relays");
        writeFileSync(join(dir, "lib", "probe.sh"), `${image.files["lib/probe.sh"]}# changed\n`);
        assert.notEqual(readRelayImage(dir).digest, image.digest, "a change in lib/ must rebuild the image");
    });

    it("has executable scripts with a /bin/sh shebang, and sourced parts in lib/ without one", () => {
        // lib/acme.sh is a program of its own (the primary runs the same file from a timer), not sourced.
        for (const file of ["entrypoint.sh", "healthcheck.sh", ACME_SCRIPT]) {
            assert.match(readFileSync(join(IMAGE, file), "utf8"), /^#!\/bin\/sh\n/, `${file}: no #!/bin/sh`);
            assert.ok(statSync(join(IMAGE, file)).mode & 0o111, `${file} is not executable (COPY keeps the mode)`);
        }
        const parts = shellFiles.filter((f) => f.startsWith("lib/") && f !== ACME_SCRIPT);
        assert.ok(parts.length >= 5, `lib/ holds ${parts.join(", ")}`);
        for (const file of parts) assert.match(readFileSync(join(IMAGE, file), "utf8"), /^# shellcheck shell=sh\n/, `${file}: sourced, so no shebang but a shell directive`);
    });

    it("probes for 220 in one place only, lib/probe.sh, which the flusher and the health check share", () => {
        const probing = shellFiles.filter((f) => readFileSync(join(IMAGE, f), "utf8").split("\n").some((l) => !/^\s*#/.test(l) && l.includes("posttls-finger")));
        assert.deepEqual(probing, ["lib/probe.sh"]);
        assert.match(readFileSync(join(IMAGE, "lib", "flusher.sh"), "utf8"), /\banswers_220 "\$target"/);
        assert.match(healthcheck, /^answers_220 /m);
    });

    it("passes shellcheck as POSIX sh, every shell file", (t) => {
        if (!requirePrerequisite(t, hasCommand("shellcheck"), "shellcheck (Debian package shellcheck)")) return;
        assert.ok(shellFiles.length >= 7, `shell files: ${shellFiles.join(", ")}`);
        // -x: the entrypoint and the health check are checked with the lib/ files they source.
        const r = spawnSync("shellcheck", ["--shell=sh", "-x", ...shellFiles.map((f) => join(IMAGE, f)), join(ROOT, "lab", "setup.sh"), join(ROOT, "lab", "acme-dns-hook.sh")], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stdout + r.stderr);
    });

    it("finds its lib/ beside itself from any working directory, and says so when there is none", () => {
        const dir = mkdtempSync(join(tmpdir(), "relay-alone-"));
        dirs.push(dir);
        const env = { RELAY_DOMAINS: "example.com", RELAY_HOSTNAME: "mx2.example.com", RELAY_ACCEPT_ANY_RECIPIENT: "yes" };
        for (const [script, cwd] of [["relay-image/entrypoint.sh", ROOT], ["entrypoint.sh", IMAGE], [join(IMAGE, "entrypoint.sh"), dir]]) {
            const r = entrypointRun("check-env", env, undefined, script, cwd);
            assert.equal(r.status, 0, `sh ${script} in ${cwd}: ${r.stderr}`);
            assert.equal(r.stdout, "relay: environment ok\n");
        }
        if (existsSync(INSTALLED_LIB)) return; // installed on this machine: the fallback would find it
        cpSync(join(IMAGE, "entrypoint.sh"), join(dir, "relay-entrypoint"));
        const alone = entrypointRun("check-env", env, undefined, join(dir, "relay-entrypoint"));
        assert.equal(alone.status, 1);
        assert.equal(alone.stderr, `relay: cannot find lib/env.sh beside ${join(dir, "relay-entrypoint")} or in ${INSTALLED_LIB}\n`);
    });

    it("health check outside a container: passes when port 25 answers 220, fails when nothing answers", async (t) => {
        const ok = process.getuid?.() === 0 && hasCommand("posttls-finger");
        if (!requirePrerequisite(t, ok, "root (port 25) and posttls-finger (Debian package postfix)")) return;
        const address = "127.0.0.25";
        const server = createServer((socket) => {
            socket.on("error", () => undefined);
            socket.write("220 mx2.example.com ESMTP\r\n");
            socket.on("data", (d: Buffer) => {
                if (/^QUIT/im.test(d.toString())) socket.end("221 2.0.0 Bye\r\n");
                else socket.write("250 mx2.example.com\r\n");
            });
        });
        await new Promise<void>((resolve, reject) => server.once("error", reject).listen(25, address, resolve));
        try {
            const up = await healthcheckRun({ LISTEN_ADDRESS: address });
            assert.equal(up.status, 0, up.output);
        } finally {
            await new Promise<void>((resolve) => server.close(() => resolve()));
        }
        const down = await healthcheckRun({ LISTEN_ADDRESS: address });
        assert.equal(down.status, 1, down.output);
        assert.equal(down.output, "", "the probe is quiet: its exit status is the answer");
    });

    it("refuses a bad environment with one line per problem and exit 2, before Postfix starts", () => {
        const r = checkEnv({ RELAY_DOMAINS: "example.com,not_a_domain", RELAY_HOSTNAME: "mx2", QUEUE_LIFETIME: "a week", PRIMARY_MX: "mail example com", TLS_CERT_FILE: "/nonexistent" });
        assert.equal(r.status, 2);
        const lines = r.stderr.trim().split("\n");
        for (const expected of [
            /^relay: RELAY_DOMAINS: 'not_a_domain' is not a domain name$/,
            /^relay: RELAY_HOSTNAME: 'mx2' is not a fully qualified domain name$/,
            /^relay: RELAY_RECIPIENTS is required/,
            /^relay: QUEUE_LIFETIME: 'a week' must be a duration/,
            /^relay: PRIMARY_MX: 'mail example com' must be/,
            /^relay: TLS_CERT_FILE and TLS_KEY_FILE go together/,
            /^relay: 7 problem\(s\) in the environment; Postfix not started$/,
        ]) {
            assert.ok(lines.some((l) => expected.test(l)), `no line matching ${expected} in:\n${r.stderr}`);
        }
        assert.equal(r.stdout, "");
    });

    it("checks the recipients file line by line", () => {
        const dir = mkdtempSync(join(tmpdir(), "relay-env-"));
        dirs.push(dir);
        const file = join(dir, "recipients");
        writeFileSync(file, "# valid ones\nalice@example.com\n@example.org\n\nbob@elsewhere.example\nnot an address\n");
        const r = checkEnv({ RELAY_DOMAINS: "example.com,example.org", RELAY_HOSTNAME: "mx2.example.com", RELAY_RECIPIENTS: file });
        assert.equal(r.status, 2);
        assert.match(r.stderr, /line 5: bob@elsewhere\.example is not in RELAY_DOMAINS/);
        assert.match(r.stderr, /line 6: 'not an address' is not an address or @domain/);

        writeFileSync(file, "alice@example.com\n@example.org\n");
        const ok = checkEnv({ RELAY_DOMAINS: "example.com,example.org", RELAY_HOSTNAME: "mx2.example.com", RELAY_RECIPIENTS: file, PRIMARY_MX: "[192.0.2.10]:2525" });
        assert.equal(ok.status, 0, ok.stderr);
        assert.equal(ok.stdout.trim(), "relay: environment ok");
    });

    it("renders a backup-MX Postfix config: relay for its domains only, 4 h warning, bounce at the lifetime", (t) => {
        const ok = process.getuid?.() === 0 && hasCommand("postconf");
        if (!requirePrerequisite(t, ok, "root and postconf (the render step sets Postfix's ownership)")) return;
        const dir = mkdtempSync(join(tmpdir(), "relay-render-"));
        dirs.push(dir);
        const file = join(dir, "recipients");
        writeFileSync(file, "alice@example.com\n");
        const env = { RELAY_DOMAINS: "example.com", RELAY_HOSTNAME: "mx2.example.com", RELAY_RECIPIENTS: file, POSTFIX_ROOT: join(dir, "root"), QUEUE_LIFETIME: "6d" };
        const r = entrypointRun("render", env);
        assert.equal(r.status, 0, r.stderr);
        const shown = spawnSync("postconf", ["-c", join(dir, "root", "etc"), "-n"], { encoding: "utf8" });
        assert.equal(shown.stderr, "");
        const cf = new Map(shown.stdout.trim().split("\n").map((l) => l.split(" = ", 2) as [string, string]));
        assert.equal(cf.get("relay_domains"), "example.com");
        assert.equal(cf.get("mydestination"), undefined, "a backup MX delivers nothing locally");
        assert.equal(cf.get("smtpd_relay_restrictions"), "reject_unauth_destination", "not even mynetworks may relay");
        assert.equal(cf.get("relay_recipient_maps"), `hash:${join(dir, "root", "etc")}/relay_recipients`, "indexed: a lookup must not grow with the list");
        assert.equal(lookup(cf.get("relay_recipient_maps")!, "alice@example.com"), "OK");
        assert.equal(cf.get("maximal_queue_lifetime"), "6d");
        assert.equal(cf.get("bounce_queue_lifetime"), "6d");
        assert.equal(cf.get("delay_warning_time"), "4h");
        assert.equal(cf.get("allow_untrusted_routing"), "no");
        assert.equal(cf.get("smtpd_tls_security_level"), "may");
        assert.ok(existsSync(cf.get("smtpd_tls_cert_file")!), "the self-signed certificate was not generated");
        assert.equal(cf.get("message_size_limit"), String(MESSAGE_SIZE_LIMIT), "must match the primary's limit, or relayed mail bounces");
    });

    it("goes back to a self-signed pair when ACME is turned off, instead of serving the CA's last certificate until it expires", (t) => {
        const ok = process.getuid?.() === 0 && hasCommand("postconf") && hasCommand("openssl");
        if (!requirePrerequisite(t, ok, "root, postconf and openssl")) return;
        const dir = mkdtempSync(join(tmpdir(), "relay-acme-off-"));
        dirs.push(dir);
        const tlsDir = join(dir, "root", "spool", "relay-tls");
        mkdirSync(tlsDir, { recursive: true });
        const openssl = (args: string[]) => assert.equal(spawnSync("openssl", args, { encoding: "utf8" }).status, 0, `openssl ${args.join(" ")}`);
        openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=test CA", "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.pem")]);
        openssl(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mx2.example.com", "-keyout", join(tlsDir, "key.pem"), "-out", join(dir, "req.csr")]);
        openssl(["x509", "-req", "-in", join(dir, "req.csr"), "-CA", join(dir, "ca.pem"), "-CAkey", join(dir, "ca.key"), "-CAcreateserial", "-days", "30", "-out", join(tlsDir, "cert.pem")]);
        const file = join(dir, "recipients");
        writeFileSync(file, "alice@example.com\n");
        const r = entrypointRun("render", { RELAY_DOMAINS: "example.com", RELAY_HOSTNAME: "mx2.example.com", RELAY_RECIPIENTS: file, POSTFIX_ROOT: join(dir, "root") });
        assert.equal(r.status, 0, r.stderr);
        const field = (what: string) => spawnSync("openssl", ["x509", "-in", join(tlsDir, "cert.pem"), "-noout", what], { encoding: "utf8" }).stdout.replace(/^\w+=\s*/, "").trim();
        assert.equal(field("-issuer"), field("-subject"), "the served certificate is self-signed again");
        assert.match(r.stderr + r.stdout, /replacing the CA's certificate with a self-signed pair/);
    });

    it("installs a new recipient list on stdin: the indexed table answers for the new list only", (t) => {
        const ok = process.getuid?.() === 0 && hasCommand("postmap");
        if (!requirePrerequisite(t, ok, "root and postmap (the render step sets Postfix's ownership)")) return;
        const dir = mkdtempSync(join(tmpdir(), "relay-install-"));
        dirs.push(dir);
        const file = join(dir, "recipients");
        writeFileSync(file, "alice@example.com\nbob@example.com\n");
        const env = { RELAY_DOMAINS: "example.com,example.org", RELAY_HOSTNAME: "mx2.example.com", RELAY_RECIPIENTS: file, POSTFIX_ROOT: join(dir, "root") };
        const table = `hash:${join(dir, "root", "etc")}/relay_recipients`;
        assert.equal(entrypointRun("render", env).status, 0);
        assert.equal(lookup(table, "bob@example.com"), "OK");

        const next = "# day 2\nalice@example.com\r\nCarol@Example.com\n@example.org\n";
        const r = entrypointRun(INSTALL_RECIPIENTS, env, next);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /^relay: 3 recipients now; table rebuilt; Postfix not running, it starts with them\n$/);
        assert.equal(readFileSync(file, "utf8"), next, "RELAY_RECIPIENTS holds the new file as given");
        assert.equal(lookup(table, "carol@example.com"), "OK", "the added recipient");
        assert.equal(lookup(table, "bob@example.com"), undefined, "the removed recipient");
        assert.equal(lookup(table, "alice@example.com"), "OK");
        assert.equal(lookup(table, "@example.org"), "OK");
        const leftovers = [...readdirSync(dir), ...readdirSync(join(dir, "root", "etc"))].filter((n) => n.includes(".new."));
        assert.deepEqual(leftovers, [], "temporary files left behind");

        // A bad list changes nothing: the old file and table keep answering.
        const bad = entrypointRun(INSTALL_RECIPIENTS, env, "alice@example.com\ndave@example.com\neve@elsewhere.example\nnot an address\n");
        assert.equal(bad.status, 2);
        assert.equal(bad.stdout, "");
        const lines = bad.stderr.trim().split("\n");
        assert.deepEqual(lines, [
            "relay: new recipients (stdin) line 3: eve@elsewhere.example is not in RELAY_DOMAINS",
            "relay: new recipients (stdin) line 4: 'not an address' is not an address or @domain",
            "relay: 2 problem(s) in the environment or the new recipients; recipients not changed",
        ]);
        assert.equal(readFileSync(file, "utf8"), next);
        assert.equal(lookup(table, "carol@example.com"), "OK");
        assert.equal(lookup(table, "dave@example.com"), undefined);

        const empty = entrypointRun(INSTALL_RECIPIENTS, env, "# nobody\n");
        assert.equal(empty.status, 2);
        assert.match(empty.stderr, /the new recipients \(stdin\) lists no valid recipient/);
        const anyRecipient = entrypointRun(INSTALL_RECIPIENTS, { ...env, RELAY_ACCEPT_ANY_RECIPIENT: "yes" }, "alice@example.com\n");
        assert.equal(anyRecipient.status, 2);
        assert.match(anyRecipient.stderr, /RELAY_ACCEPT_ANY_RECIPIENT=yes: .*no recipient list to install/);
        assert.equal(lookup(table, "carol@example.com"), "OK");
    });

    it("names every subcommand in its usage line", () => {
        const r = entrypointRun("no-such-subcommand", {});
        assert.equal(r.status, 2);
        const named = /^usage: entrypoint\.sh \[(.*)\]$/m.exec(r.stderr)?.[1].split("|").map((s) => s.split(" ")[0]);
        assert.deepEqual(named, ["run", "check-env", "render", INSTALL_RECIPIENTS, RENEW_CERTIFICATE]);
    });

    it("checks the queue health settings: a duration, a percentage, a port other than 25", () => {
        const base = { RELAY_DOMAINS: "example.com", RELAY_HOSTNAME: "mx2.example.com", RELAY_ACCEPT_ANY_RECIPIENT: "yes" };
        const bad = checkEnv({ ...base, STUCK_QUEUE_AGE: "half an hour", QUEUE_DISK_ALERT_PERCENT: "101", STATUS_PORT: "25" });
        assert.equal(bad.status, 2);
        assert.deepEqual(bad.stderr.trim().split("\n"), [
            "relay: STUCK_QUEUE_AGE: 'half an hour' must be a duration such as 30m or 2h",
            "relay: QUEUE_DISK_ALERT_PERCENT: '101' must be a whole percentage from 0 to 100",
            "relay: STATUS_PORT: '25' must be a TCP port from 1 to 65535 other than 25",
            "relay: 3 problem(s) in the environment; Postfix not started",
        ]);
        assert.match(checkEnv({ ...base, STATUS_PORT: "70000" }).stderr, /STATUS_PORT: '70000'/);
        assert.equal(checkEnv({ ...base, STUCK_QUEUE_AGE: "2h", QUEUE_DISK_ALERT_PERCENT: "0", STATUS_PORT: "8025" }).status, 0);
    });

    it("reports stuck mail and a full queue disk, and answers stale when the flusher stops reporting (lib/queue-health.sh)", () => {
        const dir = mkdtempSync(join(tmpdir(), "relay-health-"));
        dirs.push(dir);
        const now = Math.floor(Date.now() / 1000);
        // As `postqueue -j` writes them (Postfix's showq: a space after each colon and comma).
        const message = (queue: string, ageSeconds: number, ...to: string[]) =>
            `{"queue_name": "${queue}", "queue_id": "4Xy", "arrival_time": ${now - ageSeconds}, "message_size": 300, "forced_expire": false, "sender": "s@example.net", "recipients": [${to
                .map((address) => `{"address": "${address}", "delay_reason": "host mail.example.com said: 450 4.7.1 refused"}`)
                .join(", ")}]}`;
        const listing = [
            message("deferred", 3000, "alice@example.com"),
            message("deferred", 2000, "bob@Example.COM", "carol@example.org"),
            message("deferred", 60, "alice@example.com"),
            message("active", 9000, "alice@example.com"),
            message("deferred", 4000, "dave@example.net"),
        ].join("\n");
        /** lib/util.sh and lib/queue-health.sh sourced into sh, with the flusher's variables; the script's output. */
        const health = (script: string, env: Record<string, string> = {}) => {
            const r = spawnSync("sh", ["-c", `set -eu; . "$lib/util.sh"; . "$lib/queue-health.sh"; ${script}`], {
                env: { PATH: process.env.PATH, lib: join(IMAGE, "lib"), queue_listing: listing, stuck_seconds: "1800", queue: dir, status_dir: dir, QUEUE_DISK_ALERT_PERCENT: "80", ...env },
                encoding: "utf8",
            });
            assert.equal(r.status, 0, r.stderr);
            return r.stdout;
        };
        // Deferred mail of the domain older than the cutoff: the active message is being delivered.
        assert.equal(health(`older_deferred example.com ${now - 1800}`), `2 ${now - 3000}\n`);
        assert.equal(health(`older_deferred example.org ${now - 1800}`), `1 ${now - 2000}\n`);
        assert.equal(health(`older_deferred example.com ${now - 5000}`), "");
        const round = (body: string, env: Record<string, string> = {}) => health(`health_round_begin; ${body}; health_round_end; cat "$status_dir/queue-health"`, env);
        const stuck = round("health_check_stuck example.com '[mail.example.com]:25'");
        assert.match(stuck, /relay: queue health: stuck: 2 messages for example\.com older than 30m \(oldest 50m\), primary \[mail\.example\.com\]:25 answers 220\n/);
        assert.match(stuck, /^stuck: 2 messages for example\.com .* answers 220$/m);
        assert.equal(round("health_check_stuck example.com '[mail.example.com]:25'", { stuck_seconds: "7200" }).split("\n").at(-2), "ok", "nothing that old");
        // The disk: any file system is fuller than 0%, none fuller than 100%.
        const full = round(":", { QUEUE_DISK_ALERT_PERCENT: "0" });
        assert.match(full, /^disk: queue file system [1-9]\d*% full \(alert over 0%\)$/m);
        assert.equal(round(":", { QUEUE_DISK_ALERT_PERCENT: "100" }).split("\n").at(-2), "ok");
        const both = round("health_check_stuck example.org '[mail.example.org]:25'", { QUEUE_DISK_ALERT_PERCENT: "0" });
        assert.match(both, /^stuck: 1 messages for example\.org .*; disk: queue file system \d+% full/m);

        // The HTTP answer, as the status server's CGI makes it from the status file.
        const file = join(dir, "queue-health");
        const answer = () => health(`queue_health_response "$status_dir/queue-health" 45`);
        writeFileSync(file, "ok\n");
        assert.equal(answer(), `Status: 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n\r\n${QUEUE_HEALTHY_TEXT}\n`);
        writeFileSync(file, "disk: queue file system 91% full (alert over 80%)\n");
        assert.match(answer(), /^Status: 503 Service Unavailable\r\n[\s\S]*\r\n\r\nmailcontinuity-queue: disk: queue file system 91% full/);
        writeFileSync(file, "ok\n");
        const old = new Date(Date.now() - 100_000);
        utimesSync(file, old, old);
        assert.match(answer(), /^Status: 503 [\s\S]*mailcontinuity-queue: stale: the flusher last reported 1\d\ds ago \(said: ok\)\n$/);
        assert.doesNotMatch(answer(), new RegExp(QUEUE_HEALTHY_TEXT), "Route53's string match must not find ok in a stale answer");
        rmSync(file);
        assert.match(answer(), /^Status: 503 [\s\S]*mailcontinuity-queue: starting: no report from the flusher yet\n$/);
    });

    it("accepts the environment the stack's relay component passes", () => {
        const dir = mkdtempSync(join(tmpdir(), "relay-env-"));
        dirs.push(dir);
        const topology = parseTopology(rawTopology("us"));
        const file = join(dir, "recipients");
        writeFileSync(file, `${topology.recipients.join("\n")}\n`);
        const r = checkEnv(relayEnvironment(topology, topology.relays[0], file));
        assert.equal(r.status, 0, r.stderr);
    });

    it("checks the ACME and PRIMARY_TLS settings: one line per problem, exit 2", () => {
        const base = { RELAY_DOMAINS: "example.com", RELAY_HOSTNAME: "mx2.example.com", RELAY_ACCEPT_ANY_RECIPIENT: "yes" };
        const bad = checkEnv({
            ...base,
            ACME_DIRECTORY_URL: "http://ca.example/dir",
            ACME_DNS_PROVIDER: "route 53",
            ACME_RENEW_DAYS: "0",
            ACME_RENEW_INTERVAL: "daily",
            ACME_RESOLVERS: "192.0.2.80:53,bad_resolver:x",
            ACME_CA_CERTIFICATES: "/nonexistent/ca.pem",
            ACME_CHECK_AUTHORITATIVE: "maybe",
            ACME_DIR: "relative/dir",
            PRIMARY_TLS: "strict",
        });
        assert.equal(bad.status, 2);
        assert.deepEqual(bad.stderr.trim().split("\n"), [
            "relay: ACME_DIRECTORY_URL: 'http://ca.example/dir' must be the CA's https:// directory URL",
            "relay: ACME_EMAIL: '' must be the address the CA writes to (required with ACME_DIRECTORY_URL)",
            "relay: ACME_DNS_PROVIDER: 'route 53' must be a lego DNS provider name such as route53",
            "relay: ACME_RENEW_DAYS: '0' must be a whole number of days from 1 to 365",
            "relay: ACME_RENEW_INTERVAL: 'daily' must be a duration such as 12h or 30m",
            "relay: ACME_RESOLVERS: 'bad_resolver:x' must be host or host:port",
            "relay: ACME_CA_CERTIFICATES: cannot read /nonexistent/ca.pem",
            "relay: ACME_CHECK_AUTHORITATIVE: 'maybe' must be yes or no",
            "relay: ACME_DIR: 'relative/dir' must be an absolute path",
            "relay: PRIMARY_TLS: 'strict' must be may, encrypt or verify",
            "relay: 10 problem(s) in the environment; Postfix not started",
        ]);
        const acme = { ACME_DIRECTORY_URL: "https://acme-staging-v02.api.letsencrypt.org/directory", ACME_EMAIL: "ops@example.com" };
        // A certificate of one's own, or the CA's: not both.
        const both = checkEnv({ ...base, ...acme, TLS_CERT_FILE: "/etc/hostname", TLS_KEY_FILE: "/etc/hostname" });
        assert.match(both.stderr, /^relay: TLS_CERT_FILE\/TLS_KEY_FILE and ACME_DIRECTORY_URL exclude each other/m);
        // verify checks a host name: an address cannot be verified, and the CA file must be there.
        const address = checkEnv({ ...base, PRIMARY_TLS: "verify", PRIMARY_MX: "[192.0.2.10]:25", PRIMARY_TLS_CA_FILE: "/nonexistent/roots.pem" });
        assert.deepEqual(address.stderr.trim().split("\n"), [
            "relay: PRIMARY_TLS_CA_FILE: cannot read /nonexistent/roots.pem (the CAs PRIMARY_TLS=verify trusts)",
            "relay: PRIMARY_MX: '[192.0.2.10]:25' is an address; PRIMARY_TLS=verify checks the primary's certificate against its host name, so give the name",
            "relay: 2 problem(s) in the environment; Postfix not started",
        ]);
        // Unset, ACME is off: its other variables are not checked.
        assert.equal(checkEnv({ ...base, ACME_RENEW_DAYS: "0" }).status, 0);
        const ok = checkEnv({ ...base, ...acme, ACME_RENEW_INTERVAL: "30m", ACME_RESOLVERS: "192.0.2.80:53,[2001:db8::53]:53", ACME_CA_CERTIFICATES: "/etc/hostname", PRIMARY_TLS: "verify", PRIMARY_MX: "mail.example.com:25", PRIMARY_TLS_CA_FILE: "/etc/hostname" });
        assert.equal(ok.status, 0, ok.stderr);
    });

    it("renders PRIMARY_TLS: verify as `secure match=hostname` for each domain and PRIMARY_MX, trusting PRIMARY_TLS_CA_FILE; may as before", (t) => {
        const ok = process.getuid?.() === 0 && hasCommand("postconf");
        if (!requirePrerequisite(t, ok, "root and postconf (the render step sets Postfix's ownership)")) return;
        const dir = mkdtempSync(join(tmpdir(), "relay-tls-"));
        dirs.push(dir);
        const roots = join(dir, "roots.pem");
        writeFileSync(roots, "");
        const render = (env: Record<string, string>) => {
            const root = join(dir, Object.values(env).join("-").replace(/[^a-z]/g, ""));
            const r = entrypointRun("render", { RELAY_DOMAINS: "example.com,example.org", RELAY_HOSTNAME: "mx2.example.com", RELAY_ACCEPT_ANY_RECIPIENT: "yes", POSTFIX_ROOT: root, ...env });
            assert.equal(r.status, 0, r.stderr);
            const shown = spawnSync("postconf", ["-c", join(root, "etc"), "-n"], { encoding: "utf8" });
            assert.equal(shown.stderr, "");
            return { etc: join(root, "etc"), cf: new Map(shown.stdout.trim().split("\n").map((l) => l.split(" = ", 2) as [string, string])) };
        };
        const verify = render({ PRIMARY_TLS: "verify", PRIMARY_TLS_CA_FILE: roots, PRIMARY_MX: "mail.example.com" });
        assert.equal(verify.cf.get("smtp_tls_policy_maps"), `texthash:${verify.etc}/tls_policy`);
        assert.equal(verify.cf.get("smtp_tls_CAfile"), roots);
        assert.equal(verify.cf.get("smtp_tls_security_level"), "may", "bounces to senders elsewhere keep opportunistic TLS");
        assert.equal(verify.cf.get("smtp_tls_connection_reuse"), "yes");
        assert.equal(verify.cf.get("smtp_tls_loglevel"), "1", "each session to the primary says whether it was verified");
        assert.equal(readFileSync(join(verify.etc, "tls_policy"), "utf8"), "example.com secure match=hostname\nexample.org secure match=hostname\n[mail.example.com]:25 secure match=hostname\n");
        // Postfix's own lookup, by the next hop it delivers to: a domain (MX), or the transport's [host]:port.
        for (const nexthop of ["example.org", "[mail.example.com]:25"]) {
            assert.equal(spawnSync("postmap", ["-q", nexthop, `texthash:${verify.etc}/tls_policy`], { encoding: "utf8" }).stdout.trim(), "secure match=hostname");
        }
        const encrypt = render({ PRIMARY_TLS: "encrypt" });
        assert.equal(readFileSync(join(encrypt.etc, "tls_policy"), "utf8"), "example.com encrypt\nexample.org encrypt\n");
        assert.equal(encrypt.cf.get("smtp_tls_CAfile"), undefined);
        const may = render({});
        assert.equal(may.cf.get("smtp_tls_policy_maps"), undefined, "the default changes nothing");
        assert.equal(may.cf.get("smtp_tls_CAfile"), undefined);
    });

    it("lib/acme.sh: refuses a bad environment before lego runs (exit 2), and renew without a certificate (exit 1)", (t) => {
        const acme = (args: string[], env: Record<string, string>) => spawnSync(join(IMAGE, ACME_SCRIPT), args, { env: { PATH: process.env.PATH, ...env }, encoding: "utf8" });
        const bad = acme(["obtain"], { ACME_DIRECTORY_URL: "ftp://ca", ACME_EMAIL: "nobody", ACME_DOMAIN: "mx2", ACME_DIR: "acme", ACME_CERT_FILE: "cert.pem", ACME_RENEW_DAYS: "400", ACME_CHECK_AUTHORITATIVE: "sometimes" });
        assert.equal(bad.status, 2);
        const lines = bad.stderr.trim().split("\n");
        for (const expected of [
            "acme: ACME_DIRECTORY_URL: 'ftp://ca' must be the CA's https:// directory URL",
            "acme: ACME_EMAIL: 'nobody' must be the address the CA writes to (lego registers an account with it)",
            "acme: ACME_DOMAIN: 'mx2' must be the fully qualified host name to certify",
            "acme: ACME_DIR: 'acme' must be an absolute path",
            "acme: ACME_CERT_FILE: 'cert.pem' must be an absolute path",
            "acme: ACME_KEY_FILE: 'acme/certificates/mx2.key' must be an absolute path",
            "acme: ACME_RENEW_DAYS: '400' must be a whole number of days from 1 to 365",
            "acme: ACME_CHECK_AUTHORITATIVE: 'sometimes' must be yes or no",
        ]) {
            assert.ok(lines.includes(expected), `no line "${expected}" in:\n${bad.stderr}`);
        }
        assert.match(lines.at(-1)!, /^acme: \d+ problem\(s\) in the environment; nothing tried$/);
        const usage = acme(["renew", "--now"], {});
        assert.equal(usage.status, 2);
        assert.match(usage.stderr, /^usage: acme\.sh \[obtain\] \| renew \[--force\] \| check-env/);

        if (!requirePrerequisite(t, hasCommand("lego") && hasCommand("openssl"), "lego and openssl (Debian packages lego, openssl)")) return;
        const dir = mkdtempSync(join(tmpdir(), "acme-"));
        dirs.push(dir);
        const env = { ACME_DIRECTORY_URL: "https://ca.example/dir", ACME_EMAIL: "ops@example.com", ACME_DOMAIN: "MX2.example.com", ACME_DIR: join(dir, "lego"), ACME_CERT_FILE: join(dir, "cert.pem") };
        const checked = acme(["check-env"], env);
        assert.equal(checked.status, 0, checked.stderr);
        assert.equal(checked.stdout, "acme: environment ok\n");
        // No certificate of this CA for this key: renew asks for obtain, and lego is never asked.
        const renew = acme(["renew"], env);
        assert.equal(renew.status, 1, renew.stderr);
        assert.match(renew.stderr, /^acme: mx2\.example\.com: lego holds no certificate of https:\/\/ca\.example\/dir for this key in .*; run obtain first$/m);
        assert.ok(existsSync(join(dir, "lego", "certificates", "mx2.example.com.key")), "the key is made beside lego's certificate when ACME_KEY_FILE is not set");
        assert.ok(!existsSync(join(dir, "cert.pem")), "nothing is installed");
    });

    it("reports the certificate in the queue health: 503 tls while self-signed or from another CA, or due with its renewal failed (lib/certificate.sh)", (t) => {
        if (!requirePrerequisite(t, hasCommand("openssl"), "openssl (Debian package openssl)")) return;
        const dir = mkdtempSync(join(tmpdir(), "relay-cert-"));
        dirs.push(dir);
        const openssl = (args: string[]) => assert.equal(spawnSync("openssl", args, { encoding: "utf8" }).status, 0, `openssl ${args.join(" ")}`);
        const self = join(dir, "self");
        const ca = join(dir, "ca");
        mkdirSync(self);
        mkdirSync(ca);
        openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=mx2.example.com", "-keyout", join(self, "key.pem"), "-out", join(self, "cert.pem")]);
        openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=test CA", "-keyout", join(ca, "ca.key"), "-out", join(ca, "ca.pem")]);
        openssl(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mx2.example.com", "-keyout", join(ca, "key.pem"), "-out", join(ca, "req.csr")]);
        const issued = (days: number) => {
            openssl(["x509", "-req", "-in", join(ca, "req.csr"), "-CA", join(ca, "ca.pem"), "-CAkey", join(ca, "ca.key"), "-CAcreateserial", "-days", String(days), "-out", join(ca, "cert.pem")]);
            return ca;
        };
        const lego = "acme: lego: 2026/11/26 03:28:29 [mx2.example.com] acme: error: 403 :: urn:ietf:params:acme:error:unauthorized\nacme: mx2.example.com: lego renew failed";
        /** acme_report after an attempt that ended with `status`, with the relay's certificate in tlsDir; then a health round. */
        const acmeDir = join(dir, "acme");
        mkdirSync(join(acmeDir, "certificates"), { recursive: true });
        /** acme.sh records which directory issued lego's certificate. */
        const issuedBy = (directory: string) => writeFileSync(join(acmeDir, "certificates", "mx2.example.com.directory"), `${directory}\n`);
        issuedBy("https://ca.example/dir");
        const report = (tlsDir: string, status: number, output = lego) => {
            const r = spawnSync("sh", ["-c", `set -eu; . "$lib/util.sh"; . "$lib/certificate.sh"; . "$lib/queue-health.sh"; acme_report ${status}; cat "$status_dir/tls-health"; health_round_begin; health_round_end >/dev/null; cat "$status_dir/queue-health"`], {
                env: { PATH: process.env.PATH, lib: join(IMAGE, "lib"), tls_dir: tlsDir, acme_dir: acmeDir, ACME_DOMAIN: "mx2.example.com", status_dir: join(dir, "status"), queue: dir, acme_output: output, ACME_DIRECTORY_URL: "https://ca.example/dir", ACME_RENEW_DAYS: "30", QUEUE_DISK_ALERT_PERCENT: "100" },
                encoding: "utf8",
            });
            assert.equal(r.status, 0, r.stderr);
            const [tls, health] = r.stdout.split("\n");
            return { tls, health };
        };
        const selfSigned = report(self, 1);
        assert.equal(selfSigned.tls, "tls: serving a self-signed certificate, none from https://ca.example/dir yet: [mx2.example.com] acme: error: 403 :: urn:ietf:params:acme:error:unauthorized");
        assert.equal(selfSigned.health, selfSigned.tls, "the queue health round reports it (a 503)");
        assert.match(report(issued(10), 1).tls, /^tls: the certificate expires in (9|10) days and its renewal failed: \[mx2\.example\.com\] acme: error: 403/);
        assert.deepEqual(report(issued(10), 0), { tls: "", health: "ok" }, "renewed (or not due): nothing to say");
        assert.deepEqual(report(issued(60), 1), { tls: "", health: "ok" }, "a failure while the certificate is not due is only logged");
        assert.equal(report(issued(60), 3).tls, "tls: a new certificate is installed but postfix reload failed");
        issuedBy("https://staging.ca.example/dir");
        assert.match(report(issued(60), 1).tls, /^tls: serving a certificate from https:\/\/staging\.ca\.example\/dir, none from https:\/\/ca\.example\/dir yet: /, "after a change of CA, the old CA's certificate is an alert whatever its expiry");
        issuedBy("https://ca.example/dir");
        assert.match(report(self, 124, "acme: no answer within 120s").tls, /^tls: serving a self-signed certificate, none from https:\/\/ca\.example\/dir yet: no answer within 120s$/);
    });
});
