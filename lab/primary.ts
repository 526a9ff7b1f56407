// The primary mail host: Postfix configured by the primary's apply script (the one the cloud runs over
// SSH on the EC2 primary), delivering to Maildirs; and the ways the drill breaks it.
import { spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Topology } from "../lib/topology/schema";
import { shellQuote } from "../lib/render/apply-script";
import { renderDkimKeyApply, renderPrimaryApply, type OpenDkimHost, type PrimaryApplyOptions } from "../lib/render/primary-apply";
import type { Lab } from "./lab";
import { hostKey, run } from "./net";
import { writePostfixInstance } from "./postfix-instance";
import { waitFor } from "./wait";

export class Primary {
    private tempfail?: ChildProcess;

    constructor(private readonly lab: Lab) {}

    get hostname(): string {
        return this.lab.topology.primary.hostname;
    }

    /** Its namespace key (mail for mail.example.com). */
    get key(): string {
        return hostKey(this.hostname);
    }

    get address(): string {
        return this.lab.addressOf(this.hostname);
    }

    private get conf(): string {
        return this.lab.path("primary", "etc");
    }

    /** Its STARTTLS pair (the apply step's tlsCertFile and tlsKeyFile), which the ACME lab replaces, and its Postfix's config. */
    get tls(): { certFile: string; keyFile: string; configDir: string } {
        return { certFile: join(this.conf, "cert.pem"), keyFile: join(this.conf, "key.pem"), configDir: this.conf };
    }

    /** Where the Maildirs are (the EC2 host's /var/mail/vhosts). */
    get mailboxBase(): string {
        return this.lab.path("primary", "mail");
    }

    /** Where the lab's primary keeps what the EC2 host keeps under /etc/postfix and /var/mail. */
    private applyOptions(topology: Topology): PrimaryApplyOptions {
        return {
            // IPv4 and, where a relay has one, IPv6: it may hand its mail over through either.
            relayAddresses: topology.relays.flatMap((r) => this.lab.addressesOf(r.hostname)),
            configDir: this.conf,
            mailboxBase: this.mailboxBase,
            tlsCertFile: join(this.conf, "cert.pem"),
            tlsKeyFile: join(this.conf, "key.pem"),
            etrnScriptPath: this.lab.path("primary", "etrn-relays"),
            openDkim: this.openDkim,
            // The lab's `systemctl restart postfix`, for a change of what it listens on.
            postfixRestart: `postfix -c ${shellQuote(this.conf)} stop && postfix -c ${shellQuote(this.conf)} start`,
        };
    }

    /**
     * OpenDKIM's files where the EC2 host has them under /etc and /run; a script in place of systemd. The
     * key not in the lab's directory: OpenDKIM refuses a key below one others may write (/tmp). Beside
     * the namespace's resolv.conf instead, which goes with the namespace; `ip netns exec` binds it over
     * /etc/dkimkeys there, as it binds every entry.
     */
    private get openDkim(): OpenDkimHost {
        const dir = this.lab.path("primary", "opendkim");
        const keyDir = join("/etc/netns", this.lab.net.nsName(this.key), "dkimkeys");
        const paths = { conf: join(dir, "opendkim.conf"), tableDir: dir, keyDir, pidFile: this.lab.path("primary", "opendkim-run", "opendkim.pid") };
        return { paths, restart: `sh ${shellQuote(this.lab.path("primary", "opendkim-restart"))}` };
    }

    /**
     * The lab's `systemctl restart opendkim`: stops the OpenDKIM its pid file names, only if that pid is
     * an opendkim in this namespace (after a host was removed, the number may be anyone's), and starts it.
     */
    private writeOpenDkimRestart(): void {
        const { paths } = this.openDkim;
        const run = this.lab.path("primary", "opendkim-run");
        mkdirSync(run, { recursive: true });
        // Debian's /run/opendkim belongs to opendkim as well.
        const uid = Number(spawnSync("id", ["-u", "opendkim"], { encoding: "utf8" }).stdout.trim());
        chownSync(run, uid, 0);
        const pidFile = shellQuote(paths.pidFile);
        writeFileSync(
            this.lab.path("primary", "opendkim-restart"),
            [
                "#!/bin/sh",
                "set -u",
                `if pid=$(cat ${pidFile} 2>/dev/null) && [ "$(readlink /proc/$pid/ns/net 2>/dev/null)" = "$(readlink /proc/self/ns/net)" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = opendkim ]; then`,
                '    kill "$pid"',
                '    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done',
                "fi",
                `rm -f ${pidFile}`,
                `opendkim -x ${shellQuote(paths.conf)} </dev/null >>${shellQuote(this.lab.path("primary", "opendkim.log"))} 2>&1`,
                "",
            ].join("\n"),
        );
    }

    /** Whether the OpenDKIM its pid file names runs in the primary's namespace. */
    openDkimRunning(): boolean {
        const pidFile = this.openDkim.paths.pidFile;
        if (!existsSync(pidFile)) return false;
        return this.lab.net.pids(this.key).includes(Number(readFileSync(pidFile, "utf8").trim()));
    }

    configure(): void {
        const dir = this.lab.path("primary");
        mkdirSync(this.conf, { recursive: true });
        run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", `/CN=${this.hostname}`, "-keyout", join(this.conf, "key.pem"), "-out", join(this.conf, "cert.pem")]);
        // Only where the files live is the lab's; everything else is the apply step the cloud runs.
        writePostfixInstance(this.lab.dir, dir, []);
        if (this.lab.topology.dkim !== undefined) this.writeOpenDkimRestart();
        this.apply(this.lab.topology);
        this.applyDkimKey(this.lab.topology);
    }

    /**
     * The primary's apply step (renderPrimaryApply), run in its namespace exactly as the cloud runs it
     * over SSH: tables, main.cf, the ETRN script, `postfix check`, and a reload if Postfix runs.
     */
    apply(topology: Topology): string {
        const script = this.lab.path("primary", "apply.sh");
        writeFileSync(script, renderPrimaryApply(topology, this.applyOptions(topology)));
        const r = this.lab.net.exec(this.key, ["sh", script]);
        if (r.status !== 0) throw new Error(`the primary's apply step failed (${r.status}): ${(r.stderr + r.stdout).trim()}`);
        return r.stdout.trim();
    }

    /** The DKIM key step (renderDkimKeyApply, secret in the cloud), with a key the lab made. */
    applyDkimKey(topology: Topology): string {
        if (topology.dkim === undefined) return "";
        const script = this.lab.path("primary", "dkim-key.sh");
        writeFileSync(script, renderDkimKeyApply(topology, this.lab.dkim.privateKeyPem(topology.dkim.selector), this.openDkim), { mode: 0o600 });
        const r = this.lab.net.exec(this.key, ["sh", script]);
        if (r.status !== 0) throw new Error(`the primary's DKIM key step failed (${r.status}): ${(r.stderr + r.stdout).trim()}`);
        return r.stdout.trim();
    }

    /**
     * Postfix, and OpenDKIM when it does not run: a host brought back starts both, as systemd would. Its
     * key went with a namespace that was removed (primary-rebuilt): the key step puts it back and starts it.
     */
    start(): void {
        this.lab.net.exec(this.key, ["postfix", "-c", this.conf, "start"]);
        if (this.lab.topology.dkim !== undefined && !this.openDkimRunning()) this.applyDkimKey(this.lab.topology);
    }

    /** Mail submitted on the host, as a program there does: sendmail, pickup and cleanup (non_smtpd_milters). */
    sendmail(from: string, to: string, message: string): { status: number | null; output: string } {
        const r = this.lab.net.exec(this.key, ["sendmail", "-C", this.conf, "-f", from, "--", to], { input: message, timeoutMs: 30_000 });
        return { status: r.status, output: (r.stdout + r.stderr).trim() };
    }

    stop(): void {
        this.lab.net.exec(this.key, ["postfix", "-c", this.conf, "stop"]);
        // postfix stop returns before every child has gone; port 25 must refuse before we go on.
        spawnSync("sleep", ["0.5"]);
    }

    /** The primary's boot-time ETRN to every relay (the EC2 host runs it from a systemd timer). */
    etrn(): string {
        const r = this.lab.net.exec(this.key, ["bash", this.lab.path("primary", "etrn-relays")]);
        return r.stdout + r.stderr;
    }

    /**
     * The primary greets these clients with 220 but refuses their mail with 450 at RCPT, and still takes
     * everyone else's: a relay's flush fails while the primary answers (a stand-in for a TLS mismatch or
     * recipient map drift). A lab-only line in its main.cf, taken at the next start or by a reload if it
     * runs; `undefined` removes it (the apply script's main.cf sets no client restrictions).
     */
    refuseClients(addresses: string[] | undefined): void {
        const table = this.lab.path("primary", "refused_clients.cidr");
        writeFileSync(table, (addresses ?? []).map((a) => `${a} 450 4.7.1 lab: mail from this relay is refused for now\n`).join(""));
        const setting = addresses === undefined ? ["-X", "smtpd_client_restrictions"] : ["-e", `smtpd_client_restrictions = check_client_access cidr:${table}`];
        const r = this.lab.net.exec(this.key, ["postconf", "-c", this.conf, ...setting]);
        if (r.status !== 0) throw new Error(`postconf in the primary failed: ${r.stderr.trim()}`);
        if (this.lab.net.exec(this.key, ["postfix", "-c", this.conf, "status"]).status === 0) {
            const reload = this.lab.net.exec(this.key, ["postfix", "-c", this.conf, "reload"]);
            if (reload.status !== 0) throw new Error(`postfix reload in the primary failed: ${reload.stderr.trim()}`);
        }
    }

    /**
     * Silently drop SMTP packets to the primary (its own netfilter, inside its namespace): over both
     * families, or only one (`ipv6`: its IPv6 path is broken while IPv4 works).
     */
    drop(on: boolean, families: ("ipv4" | "ipv6")[] = ["ipv4", "ipv6"]): void {
        const rule = ["INPUT", "-p", "tcp", "--dport", "25", "-j", "DROP"];
        for (const family of families) {
            const tool = family === "ipv4" ? "iptables" : "ip6tables";
            const r = this.lab.net.exec(this.key, [tool, on ? "-I" : "-D", ...rule]);
            if (r.status !== 0) throw new Error(`${tool} in the primary's namespace failed: ${r.stderr.trim()}`);
        }
    }

    /** In place of the primary: Postfix's smtp-sink answering 421 (a 4xx) to every EHLO/HELO. */
    startTempfail(): void {
        this.tempfail = this.lab.net.spawn(this.key, ["smtp-sink", "-u", "postfix", "-Q", "ehlo,helo", `${this.address}:25`, "64"], this.lab.path("primary", "smtp-sink.log"));
    }

    /** Stops only the smtp-sink this lab started (`ip netns exec` execs it: the child's pid is its pid). */
    async stopTempfail(): Promise<void> {
        const sink = this.tempfail;
        if (sink === undefined) return;
        this.tempfail = undefined;
        const exited = () => sink.exitCode !== null || sink.signalCode !== null;
        if (!exited()) sink.kill("SIGTERM");
        await waitFor("smtp-sink to exit", exited, 10_000, 50);
    }
}
