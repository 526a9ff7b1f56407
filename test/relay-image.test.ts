// The relay image as far as a machine without a Docker engine can check it: the Dockerfile's inputs,
// the entrypoint's shell, and the environment contract between README, entrypoint and the stack.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parseTopology } from "../lib/topology/validate";
import { MESSAGE_SIZE_LIMIT } from "../lib/render/primary-postfix";
import { RELAY_HEALTHCHECK, RELAY_QUEUE_PATH, relayEnvironment } from "../lib/render/relay-env";
import { ROOT, hasCommand, rawTopology, requirePrerequisite } from "./helpers";

const IMAGE = join(ROOT, "relay-image");
const dockerfile = readFileSync(join(IMAGE, "Dockerfile"), "utf8");
const entrypoint = readFileSync(join(IMAGE, "entrypoint.sh"), "utf8");
const readme = readFileSync(join(IMAGE, "README.md"), "utf8");

function documentedVariables(): string[] {
    const table = readme.slice(readme.indexOf("## Environment"));
    return [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
}

function variablesTheEntrypointReads(): string[] {
    const body = entrypoint.slice(entrypoint.indexOf("read_environment() {"), entrypoint.indexOf("\n}\n", entrypoint.indexOf("read_environment() {")));
    return [...body.matchAll(/^\s+([A-Z_]+)=\$\{\1:-/gm)].map((m) => m[1]).sort();
}

function checkEnv(env: Record<string, string>): { status: number | null; stderr: string; stdout: string } {
    const r = spawnSync("sh", [join(IMAGE, "entrypoint.sh"), "check-env"], { env: { PATH: process.env.PATH, ...env }, encoding: "utf8" });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe("relay image", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    it("builds from Debian bookworm-slim with Debian packages only", () => {
        assert.match(dockerfile, /^FROM debian:bookworm-slim$/m);
        assert.match(dockerfile, /apt-get install -y --no-install-recommends/);
        assert.doesNotMatch(dockerfile, /\b(curl|wget|ADD\s+https?:)/, "the image must download nothing but Debian packages");
    });

    it("copies only files that exist, and installs the health check the stack's container names", () => {
        const copies = [...dockerfile.matchAll(/^COPY\s+(\S+)\s+(\S+)$/gm)];
        assert.ok(copies.length >= 2);
        for (const [, source] of copies) assert.ok(existsSync(join(IMAGE, source)), `COPY ${source}: no such file in relay-image/`);
        assert.ok(copies.some(([, , target]) => target === RELAY_HEALTHCHECK), `nothing is installed at ${RELAY_HEALTHCHECK}`);
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

    it("passes shellcheck as POSIX sh", (t) => {
        if (!requirePrerequisite(t, hasCommand("shellcheck"), "shellcheck (Debian package shellcheck)")) return;
        const r = spawnSync("shellcheck", ["--shell=sh", join(IMAGE, "entrypoint.sh"), join(IMAGE, "healthcheck.sh"), join(ROOT, "lab", "setup.sh")], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stdout);
        assert.match(entrypoint, /^#!\/bin\/sh\n/);
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
        const r = spawnSync("sh", [join(IMAGE, "entrypoint.sh"), "render"], { env: { PATH: process.env.PATH, ...env }, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        const shown = spawnSync("postconf", ["-c", join(dir, "root", "etc"), "-n"], { encoding: "utf8" });
        assert.equal(shown.stderr, "");
        const cf = new Map(shown.stdout.trim().split("\n").map((l) => l.split(" = ", 2) as [string, string]));
        assert.equal(cf.get("relay_domains"), "example.com");
        assert.equal(cf.get("mydestination"), undefined, "a backup MX delivers nothing locally");
        assert.equal(cf.get("smtpd_relay_restrictions"), "reject_unauth_destination", "not even mynetworks may relay");
        assert.match(cf.get("relay_recipient_maps")!, /^texthash:/);
        assert.equal(cf.get("maximal_queue_lifetime"), "6d");
        assert.equal(cf.get("bounce_queue_lifetime"), "6d");
        assert.equal(cf.get("delay_warning_time"), "4h");
        assert.equal(cf.get("allow_untrusted_routing"), "no");
        assert.equal(cf.get("smtpd_tls_security_level"), "may");
        assert.ok(existsSync(cf.get("smtpd_tls_cert_file")!), "the self-signed certificate was not generated");
        assert.equal(cf.get("message_size_limit"), String(MESSAGE_SIZE_LIMIT), "must match the primary's limit, or relayed mail bounces");
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
});
