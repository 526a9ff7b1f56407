// The primary mail host: Postfix configured by the primary's apply script (the one the cloud runs over
// SSH on the EC2 primary), delivering to Maildirs; and the ways the drill breaks it.
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Topology } from "../lib/topology/schema";
import { renderPrimaryApply, type PrimaryApplyOptions } from "../lib/render/primary-apply";
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

    /** Where the Maildirs are (the EC2 host's /var/mail/vhosts). */
    get mailboxBase(): string {
        return this.lab.path("primary", "mail");
    }

    /** Where the lab's primary keeps what the EC2 host keeps under /etc/postfix and /var/mail. */
    private applyOptions(topology: Topology): PrimaryApplyOptions {
        return {
            relayAddresses: topology.relays.map((r) => this.lab.addressOf(r.hostname)),
            configDir: this.conf,
            mailboxBase: this.mailboxBase,
            tlsCertFile: join(this.conf, "cert.pem"),
            tlsKeyFile: join(this.conf, "key.pem"),
            etrnScriptPath: this.lab.path("primary", "etrn-relays"),
        };
    }

    configure(): void {
        const dir = this.lab.path("primary");
        mkdirSync(this.conf, { recursive: true });
        run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", `/CN=${this.hostname}`, "-keyout", join(this.conf, "key.pem"), "-out", join(this.conf, "cert.pem")]);
        // Only where the files live is the lab's; everything else is the apply step the cloud runs.
        writePostfixInstance(this.lab.dir, dir, []);
        this.apply(this.lab.topology);
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

    start(): void {
        this.lab.net.exec(this.key, ["postfix", "-c", this.conf, "start"]);
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

    /** Silently drop SMTP packets to the primary (its own netfilter, inside its namespace). */
    drop(on: boolean): void {
        const rule = ["INPUT", "-p", "tcp", "--dport", "25", "-j", "DROP"];
        const r = this.lab.net.exec(this.key, ["iptables", on ? "-I" : "-D", ...rule]);
        if (r.status !== 0) throw new Error(`iptables in the primary's namespace failed: ${r.stderr.trim()}`);
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
