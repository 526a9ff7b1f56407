// Mailbox users' password hashes come from a secret config key, outside the topology, so they can only
// be checked once Pulumi has decrypted them.

const PASSWORD_HASH_RE = /^\{[A-Z0-9.-]+\}[^\s:]+$/;
// Dovecot schemes that store the password itself.
const PLAINTEXT_SCHEMES = ["PLAIN", "CLEARTEXT", "PLAIN-TRUNC", "PLAIN-MD4", "PLAIN-MD5", "LDAP-MD5"];

export const MAILBOX_HASHES_KEY = "mailboxPasswordHashes";

/** Every mailbox needs a hash, and a hash is never a plaintext password. */
export function checkedHashes(hashes: Readonly<Record<string, string>>, mailboxes: readonly string[]): Record<string, string> {
    const problems: string[] = [];
    for (const mailbox of mailboxes) {
        const hash = hashes[mailbox];
        if (hash === undefined) {
            problems.push(`${mailbox}: no password hash; set one with: pulumi config set --secret --path '${MAILBOX_HASHES_KEY}["${mailbox}"]' "$(doveadm pw -s ARGON2ID)"`);
        } else if (PLAINTEXT_SCHEMES.includes(/^\{([^}]+)\}/.exec(hash)?.[1] ?? "")) {
            problems.push(`${mailbox}: ${/^\{([^}]+)\}/.exec(hash)![1]} keeps the password readable; use a hash scheme such as ARGON2ID or SHA512-CRYPT`);
        } else if (!PASSWORD_HASH_RE.test(hash)) {
            problems.push(`${mailbox}: not a Dovecot password hash ({SCHEME}...); store hashes (doveadm pw), never passwords`);
        }
    }
    for (const address of Object.keys(hashes)) {
        if (!mailboxes.includes(address)) problems.push(`${address}: has a password hash but is not in topology.mailboxes`);
    }
    if (problems.length > 0) throw new Error(`mailcontinuity:${MAILBOX_HASHES_KEY} has ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
    return { ...hashes };
}
