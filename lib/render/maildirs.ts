// Where mail is delivered, shared by every Postfix that delivers to Maildirs: the primary, and each
// site's own server (lib/render/sites.ts).
import { domainOfRecipient } from "../topology/placement";

/** The owner (uid and gid) of every Maildir, as virtual(8) delivers and Dovecot reads them. */
export const MAILBOX_UID = 5000;

/** Where the Maildirs are on a mail server the stack configures (on the mail volume). */
export const MAILBOX_BASE = "/var/mail/vhosts";

// Relays, the primary and every site server must agree, or one accepts mail another later refuses and a bounce follows.
export const MESSAGE_SIZE_LIMIT = 52428800;

/** One line per mailbox; a whole-domain recipient (@domain) gets a catch-all mailbox. */
export function virtualMailboxTable(recipients: readonly string[]): string {
    const lines = recipients.map((r) =>
        r.startsWith("@") ? `${r}\t${domainOfRecipient(r)}/catchall/` : `${r}\t${domainOfRecipient(r)}/${r.slice(0, r.lastIndexOf("@"))}/`,
    );
    return `${lines.join("\n")}\n`;
}
