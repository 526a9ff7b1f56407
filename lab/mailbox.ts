// Mailboxes: which address the lab sends its test messages to (from the topology's recipients), where
// the primary files it (the Maildir layout of its virtual mailbox table), and reading Maildirs back.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Topology } from "../lib/topology/schema";
import { virtualMailboxTable } from "../lib/render/maildirs";

/**
 * The lab's test recipient: the topology's first recipient that is one mailbox (not a whole domain)
 * and not postmaster (alice@example.com for Pulumi.lab.yaml).
 */
export function labRecipient(topology: Pick<Topology, "recipients">): string {
    const found = topology.recipients.find((r) => !r.startsWith("@") && !r.toLowerCase().startsWith("postmaster@"));
    if (found === undefined) throw new Error("the lab topology's recipients must list one mailbox besides postmaster@ to send test messages to");
    return found;
}

/** The Maildir the primary delivers `address` to, under its mailbox base (as its vmailbox table says). */
export function maildirOf(mailboxBase: string, address: string): string {
    const [, relative] = virtualMailboxTable([address]).trim().split("\t");
    return join(mailboxBase, relative);
}

/** Messages in a Maildir's new/ (delivered, not yet seen by a reader). */
export function countNew(maildir: string): number {
    const dir = join(maildir, "new");
    return existsSync(dir) ? readdirSync(dir).length : 0;
}

export interface MailMessage {
    messageId: string;
    subject: string;
    body: string;
}

function parse(text: string): MailMessage {
    const head = text.slice(0, text.indexOf("\n\n") + 1);
    return {
        messageId: /^Message-Id:\s*(<[^>]+>)/im.exec(head)?.[1] ?? "",
        subject: /^Subject:\s*(.*)$/im.exec(head)?.[1] ?? "",
        body: text,
    };
}

/**
 * Message-Id and Subject of every message in the Maildirs under a directory. A delivered Maildir file
 * never changes, so `cache` (path to message) spares reading it again on the next call.
 */
export function readMaildirs(root: string, cache?: Map<string, MailMessage>): MailMessage[] {
    const out: MailMessage[] = [];
    const walk = (dir: string) => {
        if (!existsSync(dir)) return;
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
            const path = join(dir, entry.name);
            if (entry.isDirectory()) walk(path);
            else if (/\/(new|cur)$/.test(dir)) {
                let message = cache?.get(path);
                if (message === undefined) {
                    message = parse(readFileSync(path, "utf8"));
                    cache?.set(path, message);
                }
                out.push(message);
            }
        }
    };
    walk(root);
    return out;
}
