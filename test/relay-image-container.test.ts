// The relay image built (scripts/relay-image.ts: buildah, FROM the local debootstrap stand-in for
// debian:bookworm-slim) and run with podman from relayContainerSpec (lab/container-runtime.ts) in
// network namespaces of its own: what only a built image can show. test/relay-image.test.ts checks
// the entrypoint outside a container.
import assert from "node:assert/strict";
import { spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Relay } from "../lib/topology/schema";
import { parseTopology } from "../lib/topology/validate";
import { RELAY_ENTRYPOINT } from "../lib/render/relay-apply";
import { QUEUE_HEALTHY_TEXT, recipientsFile } from "../lib/render/relay-env";
import { LabNetwork } from "../lab/net";
import { CONTAINER_ULIMITS, RelayContainer, labPrefix, labRelaySpec, podman, removeLabContainers } from "../lab/container-runtime";
import { BUILD_LOG_DIR, StepError, buildImage } from "../scripts/relay-image";
import { readRelayImage } from "../lib/relay-image";
import { ROOT, hasCommand, rawTopology, requirePrerequisite } from "./helpers";

const topology = parseTopology(rawTopology("lab"));
const [mx2, mx3] = topology.relays;
const PRIMARY = { key: "mail", address: "192.0.2.10" };
const CLIENT = { key: "client", address: "203.0.113.100", helo: "client.example.net", from: "sender@example.net" };

function addressOf(relay: Relay): string {
    if (relay.placement.kind !== "docker") throw new Error(`${relay.hostname}: the lab topology's relays have fixed addresses`);
    return relay.placement.address;
}

function missing(): string[] {
    const out: string[] = [];
    if (process.getuid?.() !== 0) out.push("root (podman's store, network namespaces)");
    for (const [command, pkg] of [
        ["podman", "podman"],
        ["buildah", "buildah"],
        ["runc", "runc"],
        ["debootstrap", "debootstrap"],
        ["ip", "iproute2"],
        ["swaks", "swaks"],
        ["postconf", "postfix"],
        ["smtp-sink", "postfix"],
    ]) {
        if (!hasCommand(command)) out.push(`${command} (Debian package ${pkg}; npm run lab:setup)`);
    }
    return out;
}

const labId = `ct${randomBytes(2).toString("hex")}`;
const prerequisites = missing();
const ready = prerequisites.length === 0;
const why = `${prerequisites.join(", ")} for the relay image tests`;

/** The lab's extra environment, on top of the spec's: the primary at a fixed address, a fast flusher. */
const EXTRA_ENV = { PRIMARY_MX: `[${PRIMARY.address}]:25`, FLUSH_PROBE_INTERVAL: "1s" };

function relayContainer(relay: Relay, options: { dns?: string[] } = {}): RelayContainer {
    return new RelayContainer(labRelaySpec(topology, relay, labId), { labId, netns: `${labPrefix(labId)}-${relay.hostname.split(".")[0]}`, extraEnv: EXTRA_ENV, ...options });
}

interface SmtpResult {
    status: number | null;
    transcript: string;
    /** The reply code to RCPT TO (the last one). */
    rcpt?: number;
    queuedAs?: string;
}

/** An SMTP session with swaks from the client's namespace; `subject` sends a message, else QUIT after RCPT. */
function smtp(net: LabNetwork, server: string, to: string, subject?: string): SmtpResult {
    const args = ["swaks", "--server", server, "--port", "25", "--helo", CLIENT.helo, "--from", CLIENT.from, "--to", to, "--timeout", "15"];
    const r = net.exec(CLIENT.key, subject === undefined ? [...args, "--quit-after", "RCPT"] : [...args, "--header", `Subject: ${subject}`], { timeoutMs: 60_000 });
    const lines = r.stdout.split("\n");
    let rcptAt = -1;
    lines.forEach((l, i) => {
        if (/^ -> RCPT TO:/.test(l)) rcptAt = i;
    });
    const reply = rcptAt < 0 ? undefined : lines.slice(rcptAt + 1).find((l) => /^<(-|\*\*) +\d{3}/.test(l));
    return {
        status: r.status,
        transcript: r.stdout + r.stderr,
        rcpt: reply === undefined ? undefined : Number(/\d{3}/.exec(reply)![0]),
        queuedAs: /queued as ([0-9A-F]+)/.exec(r.stdout)?.[1],
    };
}

function postconfMap(text: string): Map<string, string> {
    // "name = value", and "name =" for an empty value.
    return new Map(
        text
            .trim()
            .split("\n")
            .map((l) => /^(\S+) =\s?(.*)$/.exec(l))
            .filter((m) => m !== null)
            .map((m) => [m[1], m[2]]),
    );
}

/** Files under a queue directory inside the container (corrupt/, incoming/, ...). */
function queueFiles(relay: RelayContainer, dir: string): string[] {
    const r = relay.exec(["find", `${relay.spec.queuePath}/${dir}`, "-type", "f"]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean);
}

async function waitUntil(what: string, condition: () => boolean, timeoutMs: number): Promise<number> {
    const started = Date.now();
    while (!condition()) {
        if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return (Date.now() - started) / 1000;
}

describe("relay image, built and run (podman)", () => {
    const net = new LabNetwork(labId);
    const dirs: string[] = [];
    let sink: ChildProcess | undefined;
    let shared: RelayContainer;
    let image = "";

    before(async () => {
        if (!ready) return;
        // Through the build script, as CI does; with the image already built (same digest) it only checks.
        const build = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "relay-image.ts"), "build"], { cwd: ROOT, encoding: "utf8", timeout: 600_000 });
        if (build.status !== 0) throw new Error(`scripts/relay-image.ts build failed (${build.status}):\n${build.stderr}${build.stdout}`);
        image = labRelaySpec(topology, mx2, labId).imageName;

        net.create();
        for (const relay of [mx2, mx3]) net.addHost(relay.hostname.split(".")[0], addressOf(relay));
        net.addHost(PRIMARY.key, PRIMARY.address);
        net.addHost(CLIENT.key, CLIENT.address);

        // mx2 answers the read-only checks; mx3 holds mail through stops, kills and replacements.
        // Nameserver: the primary's address, where nothing answers, so lookups fail at once.
        shared = relayContainer(mx2, { dns: [PRIMARY.address] });
        shared.up();
        await shared.waitHealthy();
    });

    after(() => {
        if (sink !== undefined && sink.exitCode === null && sink.signalCode === null) sink.kill("SIGTERM");
        if (ready) removeLabContainers(labId, { volumes: true });
        net.destroy();
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it("says why a build step failed: the tail of buildah's or debootstrap's log", (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const dir = mkdtempSync(join(tmpdir(), "relay-bad-image-"));
        dirs.push(dir);
        writeFileSync(join(dir, "Dockerfile"), "FROM debian:bookworm-slim\nRUN echo relay-build-marker && exit 3\n");
        const workingContainers = () => new Set(spawnSync("buildah", ["containers", "--quiet"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean));
        const before = workingContainers();
        assert.throws(() => buildImage({ dir }), (e: Error) => e instanceof StepError && /^buildah bud failed; the last \d+ lines of .*:\n[\s\S]*relay-build-marker[\s\S]*exit status 3/.test(e.message));
        assert.deepEqual([...workingContainers()].filter((c) => !before.has(c)), [], "a failed build left a working container");
        const buildLog = join(BUILD_LOG_DIR, `build-${readRelayImage(dir).digest}.log`);
        // A suite debootstrap does not know: the base step fails before fetching anything.
        writeFileSync(join(dir, "Dockerfile"), "FROM debian:nosuchsuite-slim\n");
        assert.throws(() => buildImage({ dir }), (e: Error) => e instanceof StepError && /^debootstrap failed;[\s\S]*No such script/.test(e.message));
        for (const log of [buildLog, join(BUILD_LOG_DIR, "base-nosuchsuite.log")]) rmSync(log, { force: true });
    });

    it("is built as the relay component tags it, with the Dockerfile's entrypoint, health check, volume and stop signal", (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const spec = labRelaySpec(topology, mx2, labId);
        const [inspected] = JSON.parse(podman(["image", "inspect", image]).stdout) as {
            RepoTags: string[];
            Config: { Entrypoint: string[]; Cmd: string[]; Volumes: Record<string, object>; StopSignal: string; Labels: Record<string, string> };
            Healthcheck?: { Test: string[] };
        }[];
        assert.ok(inspected.RepoTags.includes(`localhost/${spec.imageName}`), `${spec.imageName} not among ${inspected.RepoTags.join(", ")}`);
        assert.deepEqual(inspected.Config.Entrypoint, [RELAY_ENTRYPOINT]);
        assert.deepEqual(inspected.Config.Cmd, ["run"]);
        assert.deepEqual(Object.keys(inspected.Config.Volumes), [spec.queuePath]);
        assert.equal(inspected.Config.StopSignal, "SIGTERM");
        // Docker format: an OCI image would have dropped HEALTHCHECK.
        assert.deepEqual(inspected.Healthcheck?.Test, spec.healthcheck.tests);
        // The container was given the spec's health check and stop timeout, not only the image's.
        const config = JSON.parse(podman(["inspect", "--format", "{{json .Config}}", shared.name]).stdout) as { Healthcheck: { Test: string[] }; StopTimeout: number };
        assert.deepEqual(config.Healthcheck.Test, spec.healthcheck.tests);
        assert.equal(config.StopTimeout, spec.stopTimeoutSeconds);
    });

    it("runs its entrypoint and health check inside the image; the health check fails without Postfix and passes once it is up", (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const spec = labRelaySpec(topology, mx2, labId);
        const once = (args: string[]) => podman(["run", "--rm", "--name", `${labPrefix(labId)}-once`, "--network", "none", ...CONTAINER_ULIMITS.flatMap((u) => ["--ulimit", u]), ...args]);
        const executable = once(["--entrypoint", "/bin/sh", image, "-c", `test -x ${RELAY_ENTRYPOINT} && test -x ${spec.healthcheck.tests[1]}`]);
        assert.equal(executable.status, 0, `not executable in the image: ${executable.stderr}`);
        // The image's own ENTRYPOINT (no override), given a subcommand.
        const env = ["--env", `RELAY_DOMAINS=${spec.env.RELAY_DOMAINS}`, "--env", `RELAY_HOSTNAME=${spec.env.RELAY_HOSTNAME}`, "--env", "RELAY_ACCEPT_ANY_RECIPIENT=yes"];
        const checked = once([...env, image, "check-env"]);
        assert.equal(checked.status, 0, checked.stderr);
        assert.equal(checked.stdout.trim(), "relay: environment ok");
        const noPostfix = once(["--entrypoint", spec.healthcheck.tests[1], image]);
        assert.notEqual(noPostfix.status, 0, "the health check passed with no Postfix running");
        assert.ok(shared.healthy(), `podman healthcheck run ${shared.name} failed once Postfix was up`);
        assert.equal(shared.state().status, "running");
    });

    it("runs Postfix with the configuration entrypoint.sh render writes for the same environment", (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const inContainer = shared.exec(["postconf", "-n"]);
        assert.equal(inContainer.status, 0, inContainer.stderr);
        const dir = mkdtempSync(join(tmpdir(), "relay-render-"));
        dirs.push(dir);
        const recipients = join(dir, "recipients");
        writeFileSync(recipients, shared.spec.recipients.content);
        const root = join(dir, "root");
        const rendered = spawnSync("sh", [join(ROOT, "relay-image", "entrypoint.sh"), "render"], {
            env: { PATH: process.env.PATH, ...shared.env(), RELAY_RECIPIENTS: recipients, POSTFIX_ROOT: root },
            encoding: "utf8",
        });
        assert.equal(rendered.status, 0, rendered.stderr);
        const outside = spawnSync("postconf", ["-c", join(root, "etc"), "-n"], { encoding: "utf8" });
        assert.equal(outside.status, 0, outside.stderr);
        // Outside a container everything lives under POSTFIX_ROOT: map it onto the image's paths.
        const normalised = outside.stdout
            .replaceAll(`${root}/etc`, "/etc/postfix")
            .replaceAll(`${root}/spool`, "/var/spool/postfix")
            .replaceAll(`${root}/data`, "/var/lib/postfix");
        const want = postconfMap(normalised);
        const got = postconfMap(inContainer.stdout);
        for (const key of ["relay_domains", "relay_recipient_maps", "maximal_queue_lifetime", "bounce_queue_lifetime", "smtpd_relay_restrictions", "smtpd_recipient_restrictions", "transport_maps", "queue_directory", "myhostname", "mydestination", "message_size_limit"]) {
            assert.ok(got.has(key), `${key} missing from postconf -n in the container`);
        }
        assert.equal(got.get("relay_recipient_maps"), "hash:/etc/postfix/relay_recipients");
        assert.equal(got.get("maximal_queue_lifetime"), topology.queueLifetime);
        assert.equal(got.get("mydestination"), "", "a backup MX delivers nothing locally");
        // proxy_interfaces is RELAY_HOSTNAME's address where it runs (DNS differs in and out of the lab).
        for (const map of [want, got]) map.delete("proxy_interfaces");
        // `postconf -c <dir>` reports the directory it was given.
        assert.equal(want.get("config_directory"), "/etc/postfix");
        want.delete("config_directory");
        assert.deepEqual(Object.fromEntries(got), Object.fromEntries(want));
        const transport = shared.exec(["cat", "/etc/postfix/transport"]);
        assert.equal(transport.stdout, `example.com smtp:[${PRIMARY.address}]:25\n`);
    });

    it("answers SMTP in its namespace: 250 for a listed recipient, 550 for an unknown one, 554 for another domain", (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const server = addressOf(mx2);
        const valid = smtp(net, server, "alice@example.com");
        assert.equal(valid.rcpt, 250, valid.transcript);
        const unknown = smtp(net, server, "nobody@example.com");
        assert.equal(unknown.rcpt, 550, unknown.transcript);
        const relaying = smtp(net, server, "victim@example.org");
        assert.equal(relaying.rcpt, 554, relaying.transcript);
        // The namespace's nameserver and the spec's hostname, not the host's.
        const resolv = shared.exec(["cat", "/etc/resolv.conf"]).stdout;
        assert.deepEqual(resolv.match(/^nameserver .*$/gm), [`nameserver ${PRIMARY.address}`], resolv);
        assert.match(resolv, /^options .*timeout:1/m);
        assert.equal(shared.exec(["hostname"]).stdout.trim(), mx2.hostname);
    });

    it("serves its queue health on the spec's published status port: 200 ok at /, nothing else", (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const spec = labRelaySpec(topology, mx2, labId);
        const status = spec.ports.find((p) => p.internal !== 25)!;
        assert.equal(spec.env.STATUS_PORT, String(status.internal), "the image must listen where the container publishes");
        const get = (path: string) => {
            const r = net.exec(CLIENT.key, ["curl", "--silent", "--max-time", "5", "--write-out", "\n%{http_code}", `http://${addressOf(mx2)}:${status.internal}${path}`]);
            return r.stdout;
        };
        assert.equal(get("/"), `${QUEUE_HEALTHY_TEXT}\n\n200`, "the body is one line");
        assert.match(get("/cgi-bin/index.cgi/../../etc/passwd"), /\n(400|403|404)$/);
        assert.match(get("/queue-health"), /\n404$/, "only / answers; the status file itself is not served");
    });

    it("takes a new recipient list through podman exec -i install-recipients, without a restart", (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const masterPid = () => shared.exec(["cat", `${shared.spec.queuePath}/pid/master.pid`]).stdout.trim();
        const before = masterPid();
        const server = addressOf(mx2);
        assert.equal(smtp(net, server, "carol@example.com").rcpt, 550);
        const installed = shared.installRecipients(`${shared.spec.recipients.content}carol@example.com\n`);
        assert.equal(installed.status, 0, installed.stderr);
        const count = topology.recipients.length + 1;
        assert.match(installed.stdout, new RegExp(`^relay: ${count} recipients now; table rebuilt, Postfix reloaded \\(master pid \\d+ kept, queue untouched\\)$`, "m"));
        assert.equal(smtp(net, server, "carol@example.com").rcpt, 250);
        assert.equal(masterPid(), before);
        const refused = shared.installRecipients("carol@example.org\n");
        assert.equal(refused.status, 2, "a list outside RELAY_DOMAINS must be refused");
        assert.equal(shared.installRecipients(recipientsFile(topology)).status, 0);
        assert.equal(smtp(net, server, "carol@example.com").rcpt, 550);
    });

    it("keeps queued mail on its volume: a clean stop (SIGTERM) exits 0 at once, the replacement container has the message intact", async (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const relay = relayContainer(mx3);
        relay.up();
        await relay.waitHealthy();
        const subject = `kept across replacement ${randomBytes(4).toString("hex")}`;
        const sent = smtp(net, addressOf(mx3), "alice@example.com", subject);
        assert.equal(sent.status, 0, sent.transcript);
        const id = sent.queuedAs!;
        assert.ok(id, sent.transcript);
        // The primary refuses connections: the message waits in the deferred queue.
        await waitUntil(`${id} deferred`, () => relay.queue().some((m) => m.id === id && m.queue === "deferred"), 30_000);

        const stopped = relay.stop();
        assert.equal(stopped.exitCode, 0, `exit ${stopped.exitCode}: 137 would mean the stop timeout ran out and SIGKILL came\n${relay.logs().slice(-1500)}`);
        assert.ok(stopped.seconds < 10, `podman stop took ${stopped.seconds} s (timeout ${relay.spec.stopTimeoutSeconds} s)`);
        assert.match(relay.logs(), /relay: stopping[\s\S]*relay: postfix exited \(0\)/);
        t.diagnostic(`podman stop: exit ${stopped.exitCode} after ${stopped.seconds.toFixed(2)} s (timeout ${relay.spec.stopTimeoutSeconds} s)`);

        relay.remove();
        assert.ok(!relay.exists());
        assert.equal(podman(["volume", "exists", relay.volume]).status, 0, "the queue volume went with the container");
        relay.up();
        t.diagnostic(`replacement healthy after ${(await relay.waitHealthy()).toFixed(1)} s`);
        const queued = relay.queue().find((m) => m.id === id);
        assert.deepEqual(queued?.recipients, ["alice@example.com"], `${id} is not in the new container's queue`);
        const content = relay.exec(["postcat", "-q", id]);
        assert.equal(content.status, 0, content.stderr);
        assert.match(content.stdout, new RegExp(`^Subject: ${subject}$`, "m"));
        const check = relay.exec(["postsuper", "-s"]);
        assert.equal(check.status, 0, check.stderr);
        assert.doesNotMatch(check.stdout + check.stderr, /corrupt|warning|fatal/i);
        assert.deepEqual(queueFiles(relay, "corrupt"), []);
        assert.deepEqual(queueFiles(relay, "incoming"), [], "a clean stop leaves no half-received message");
    });

    it("resumes its queue after every process is SIGKILLed, and delivers it once the primary answers", async (t) => {
        if (!requirePrerequisite(t, ready, why)) return;
        const relay = relayContainer(mx3);
        if (!relay.exists() || !relay.state().running) {
            relay.remove();
            relay.up();
        }
        await relay.waitHealthy();
        const sent = smtp(net, addressOf(mx3), "bob@example.com", `kept across SIGKILL ${randomBytes(4).toString("hex")}`);
        assert.equal(sent.status, 0, sent.transcript);
        const id = sent.queuedAs!;
        await waitUntil(`${id} deferred`, () => relay.queue().some((m) => m.id === id && m.queue === "deferred"), 30_000);

        relay.kill();
        assert.equal(relay.state().exitCode, 137, "SIGKILL: exit 128 + 9");
        relay.remove();
        relay.up();
        await relay.waitHealthy();
        assert.ok(relay.queue().some((m) => m.id === id), `${id} lost after SIGKILL`);
        assert.deepEqual(queueFiles(relay, "corrupt"), []);

        // The primary returns (smtp-sink accepting everything): the flusher sends the queue at once.
        const sinkDir = mkdtempSync(join(tmpdir(), "relay-sink-"));
        dirs.push(sinkDir);
        sink = net.spawn(PRIMARY.key, ["smtp-sink", "-u", "postfix", `${PRIMARY.address}:25`, "64"], join(sinkDir, "smtp-sink.log"));
        const seconds = await waitUntil("the queue to drain to the primary", () => relay.queue().length === 0, 30_000);
        assert.match(relay.logs(), new RegExp(`${id}: to=<bob@example.com>, relay=${PRIMARY.address.replaceAll(".", "\\.")}\\[${PRIMARY.address.replaceAll(".", "\\.")}\\]:25.*status=sent`));
        t.diagnostic(`queue delivered ${seconds.toFixed(1)} s after the primary returned`);
    });
});
