// A Postfix instance that lives in a directory of the lab (etc, spool, data, mail, maillog) instead of
// /etc/postfix and /var/spool/postfix, and the two questions the lab asks any instance's queue.
import { chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAILBOX_UID } from "../lib/render/maildirs";
import { run, type LabNetwork } from "./net";

/** Postfix's data_directory must belong to mail_owner (the master's lock file lives there). */
function makePostfixDirs(dir: string): void {
    for (const d of ["etc", "spool", "data", "mail"]) mkdirSync(join(dir, d), { recursive: true });
    const owner = Number(run("id", ["-u", "postfix"]).trim());
    chownSync(join(dir, "data"), owner, 0);
    chownSync(join(dir, "mail"), MAILBOX_UID, MAILBOX_UID);
}

/**
 * Writes a Postfix instance that lives under `dir` (etc, spool, data, maillog): the lab's file
 * locations first, then the given parameters, and Debian's master.cf without chroot.
 */
export function writePostfixInstance(labDir: string, dir: string, params: [string, string][]): string {
    makePostfixDirs(dir);
    const conf = join(dir, "etc");
    const location: [string, string][] = [
        ["compatibility_level", "3.6"],
        ["queue_directory", join(dir, "spool")],
        ["data_directory", join(dir, "data")],
        ["maillog_file_prefixes", labDir],
        ["maillog_file", join(dir, "maillog")],
        ["alias_maps", ""],
        ["alias_database", ""],
    ];
    writeFileSync(join(conf, "main.cf"), [...location, ...params].map(([k, v]) => `${k} = ${v}`).join("\n") + "\n");
    writeFileSync(join(conf, "master.cf"), masterCfWithoutChroot());
    return conf;
}

/** Debian's master.cf with chroot off: a chroot would hide the namespace's resolv.conf. */
function masterCfWithoutChroot(): string {
    return readFileSync("/usr/share/postfix/master.cf.dist", "utf8")
        .split("\n")
        .map((line) => {
            if (/^\s|^#|^$/.test(line)) return line;
            const fields = line.split(/\s+/);
            if (fields.length >= 8 && fields[4] === "y") fields[4] = "n";
            return fields.join("  ");
        })
        .join("\n");
}

export interface QueuedMessage {
    /** incoming, active, deferred, hold or maildrop */
    queue: string;
    recipients: string[];
    /** When it arrived (epoch seconds, postqueue's arrival_time); unknown for queue files read off a volume. */
    arrival?: number;
}

/** The instance's queue (`postqueue -j`, one JSON object per message), run in the host's namespace. */
export function readQueue(net: LabNetwork, key: string, conf: string): QueuedMessage[] {
    const r = net.exec(key, ["postqueue", "-c", conf, "-j"]);
    return r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { queue_name: string; arrival_time: number; recipients: { address: string }[] })
        .map((m) => ({ queue: m.queue_name, recipients: m.recipients.map((x) => x.address), arrival: m.arrival_time }));
}

/** Asks the instance to attempt delivery of everything it holds now (`postqueue -f`). */
export function flushQueue(net: LabNetwork, key: string, conf: string): void {
    net.exec(key, ["postqueue", "-c", conf, "-f"]);
}
