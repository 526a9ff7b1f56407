// Where mail is delivered, shared by every Postfix that delivers to Maildirs: the primary, and each
// site's own server (lib/render/sites.ts).
import { domainOfRecipient } from "../topology/placement";

export const MAILBOX_UID = 5000;

/** One line per mailbox; a whole-domain recipient (@domain) gets a catch-all mailbox. */
export function virtualMailboxTable(recipients: readonly string[]): string {
    const lines = recipients.map((r) =>
        r.startsWith("@") ? `${r}\t${domainOfRecipient(r)}/catchall/` : `${r}\t${domainOfRecipient(r)}/${r.slice(0, r.lastIndexOf("@"))}/`,
    );
    return `${lines.join("\n")}\n`;
}
