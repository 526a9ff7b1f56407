// The rest of the Internet: a stock Postfix that resolves MX through the lab's nameservers (the only
// lab-only part; it retries every few seconds instead of minutes), the one smtp-source command line
// that submits test messages, and the sending MTA's log, read as it grows.
import { closeSync, existsSync, fstatSync, openSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAILBOX_UID } from "../lib/render/maildirs";
import type { Lab } from "./lab";
import { run, type LabNetwork } from "./net";
import { writePostfixInstance } from "./postfix-instance";

export const SENDER = { key: "sender", address: "203.0.113.100", hostname: "mta.example.net", domain: "example.net", mailbox: "drill@example.net" };

export interface Submission {
    /** host:port smtp-source connects to. */
    server: string;
    to: string;
    subject: string;
    count: number;
    /** Parallel SMTP sessions. */
    sessions: number;
}

/**
 * Postfix's smtp-source: `count` messages from the drill's mailbox to `to`, each with its own
 * Message-Id (<pid.seq.session@host>, the pid in hex), the subject given.
 */
export function smtpSource(s: Submission): string[] {
    return ["smtp-source", "-m", String(s.count), "-s", String(s.sessions), "-f", SENDER.mailbox, "-t", s.to, "-S", s.subject, "-M", SENDER.hostname, s.server];
}

export class Sender {
    readonly log: SenderLog;

    constructor(private readonly lab: Lab) {
        this.log = new SenderLog(lab.path("sender", "maillog"));
    }

    /** Where bounce notices to SENDER.mailbox arrive. */
    get mailboxBase(): string {
        return this.lab.path("sender", "mail");
    }

    configure(): void {
        const dir = this.lab.path("sender");
        const conf = writePostfixInstance(this.lab.dir, dir, [
            ["myhostname", SENDER.hostname],
            ["mydomain", SENDER.domain],
            ["myorigin", "$mydomain"],
            ["mydestination", "localhost"],
            ["inet_interfaces", "all"],
            // Both families, IPv6 first where an MX has both: the Internet's worst case when an MX's IPv6
            // path is broken (scenario ipv6-broken), and what many senders do (RFC 6724's preference).
            ["inet_protocols", "all"],
            ["smtp_address_preference", "ipv6"],
            ["mynetworks", `127.0.0.0/8 ${SENDER.address}/32`],
            ["virtual_mailbox_domains", SENDER.domain],
            ["virtual_mailbox_base", join(dir, "mail")],
            ["virtual_mailbox_maps", `texthash:${join(dir, "etc")}/vmailbox`],
            ["virtual_uid_maps", `static:${MAILBOX_UID}`],
            ["virtual_gid_maps", `static:${MAILBOX_UID}`],
            ["smtp_tls_security_level", "may"],
            // A real sender retries after minutes; this one after seconds, so the drill ends quickly.
            ["smtp_connect_timeout", "5s"],
            ["minimal_backoff_time", "5s"],
            ["maximal_backoff_time", "10s"],
            ["queue_run_delay", "5s"],
        ]);
        writeFileSync(join(conf, "vmailbox"), `${SENDER.mailbox}\t${SENDER.domain}/drill/\n`);
        run("postfix", ["-c", conf, "check"]);
    }

    start(): void {
        this.lab.net.exec(SENDER.key, ["postfix", "-c", this.lab.path("sender", "etc"), "start"]);
    }

    private submission(subject: string, count: number, sessions: number, server = `${SENDER.address}:25`, to = this.lab.recipient): Submission {
        return { server, to, subject, count, sessions };
    }

    /**
     * Submits `count` messages to the lab's recipient (or `to`) and waits; returns smtp-source's pid (in every
     * Message-Id it writes). By default through the sending MTA; `server` submits straight to a host.
     */
    send(subject: string, count: number, sessions = 5, options: { server?: string; timeoutMs?: number; to?: string } = {}): number {
        const timeoutMs = options.timeoutMs ?? Math.max(120_000, count * 100);
        const r = this.lab.net.exec(SENDER.key, smtpSource(this.submission(subject, count, sessions, options.server, options.to)), { timeoutMs });
        if (r.status !== 0) throw new Error(`smtp-source to ${options.server ?? "the sending MTA"} failed (${r.status}): ${r.stderr.trim()}`);
        return r.pid;
    }

    /** Starts the submission in the background (for a burst that something interrupts). */
    sendInBackground(subject: string, count: number, sessions: number): ReturnType<LabNetwork["spawn"]> {
        return this.lab.net.spawn(SENDER.key, smtpSource(this.submission(subject, count, sessions)), this.lab.path("sender", "smtp-source.log"));
    }
}

/** One message the sending MTA received, and the host that last accepted it from it (250), if any. */
export interface SentMessage {
    messageId: string;
    acceptedBy?: string;
}

/**
 * The sending MTA's log, read incrementally: each message it received (its Message-Id, in order) and
 * the host that acknowledged it. Queue ids are reused over time; a message is tied to the queue id's
 * latest Message-Id, so a reused id never credits an older message.
 */
export class SenderLog {
    private offset = 0;
    private partial = "";
    private readonly messages: SentMessage[] = [];
    private readonly byQueueId = new Map<string, SentMessage>();

    constructor(private readonly file: string) {}

    private refresh(): void {
        if (!existsSync(this.file)) return;
        const fd = openSync(this.file, "r");
        try {
            const size = fstatSync(fd).size;
            if (size <= this.offset) return;
            const buffer = Buffer.alloc(size - this.offset);
            const read = readSync(fd, buffer, 0, buffer.length, this.offset);
            this.offset += read;
            const text = this.partial + buffer.subarray(0, read).toString("utf8");
            const lines = text.split("\n");
            this.partial = lines.pop() ?? "";
            for (const line of lines) this.parse(line);
        } finally {
            closeSync(fd);
        }
    }

    private parse(line: string): void {
        const id = / ([0-9A-F]+): message-id=(<[^>]+>)/.exec(line);
        if (id) {
            const message: SentMessage = { messageId: id[2] };
            this.messages.push(message);
            this.byQueueId.set(id[1], message);
            return;
        }
        const sent = / ([0-9A-F]+): to=<[^>]+>, relay=([^[\s,]+)\[[^\]]*\]:\d+, .*status=sent /.exec(line);
        const message = sent ? this.byQueueId.get(sent[1]) : undefined;
        if (sent && message) message.acceptedBy = sent[2];
    }

    /** A position in the log: messages received from now on have this index or higher. */
    mark(): number {
        this.refresh();
        return this.messages.length;
    }

    /** Messages received since `from` (a mark) whose Message-Id starts with `prefix`. */
    received(prefix: string, from = 0): SentMessage[] {
        this.refresh();
        return this.messages.slice(from).filter((m) => m.messageId.startsWith(prefix));
    }
}
