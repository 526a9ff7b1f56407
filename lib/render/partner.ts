// What a partner installs on its own MX (kind: partner) to relay for our domains: for Postfix, a script
// that writes our recipient table and ADDS our domains and that table to its relay_domains and
// relay_recipient_maps, keeping whatever it has there; for sendmail, access db entries per recipient.
// Nothing else is relayed. Pure: the stack output partnerConfig, `npm run partner-config` and the lab's
// scenario partner-mx (a stock Debian Postfix configured only by this script) all use these.
import type { Topology } from "../topology/schema";
import { domainOfRecipient, partnerRelays, slug, type PartnerRelay } from "../topology/placement";

/** What one partner is given: its Postfix script, the sendmail equivalent, and our recipient table alone. */
export interface PartnerConfig {
    /** A POSIX sh script, run as root on a Postfix MX: `sh postfix.sh [config dir]`; safe to run again. */
    postfix: string;
    /** The access db block (between BEGIN and END lines) and what sendmail.mc needs, as comments. */
    sendmail: string;
    /** The recipient table (Postfix relay_recipient_maps syntax): what changes on every recipient change. */
    recipients: string;
}

type Sections = Pick<Topology, "domains" | "recipients" | "relays" | "primary" | "alerts">;

/** The table's file name in the partner's Postfix directory: one per stack (its first domain), beside any other stack's. */
export function partnerTableName(topology: Pick<Topology, "domains">): string {
    return `mailcontinuity-${slug(topology.domains[0])}-recipients`;
}

/** Marks the sendmail block, so that a new version replaces the old one in /etc/mail/access. */
function blockMarker(topology: Pick<Topology, "domains">): string {
    return `mailcontinuity ${topology.domains[0]}`;
}

function whom(topology: Sections, partner: PartnerRelay): string {
    return `${partner.placement.organisation}'s MX ${partner.hostname}, backup MX (priority ${partner.priority}) of ${topology.domains.join(", ")}`;
}

/** Our recipients as a Postfix lookup table: `alice@example.com OK`, `@example.com OK` for a whole domain. */
export function partnerRecipientsTable(topology: Pick<Topology, "domains" | "recipients">): string {
    const lines = [
        `# The addresses of ${topology.domains.join(", ")} to relay (mailcontinuity); every other address there is refused.`,
        "# Replace the whole file with a new version, then postmap it.",
        ...[...new Set(topology.recipients)].map((r) => `${r}\tOK`),
    ];
    return `${lines.join("\n")}\n`;
}

export function renderPartnerPostfix(topology: Sections, partner: PartnerRelay): string {
    const table = partnerTableName(topology);
    const domains = topology.domains;
    const ours = domains.join(" ");
    return `#!/bin/sh
# mailcontinuity: ${whom(topology, partner)} (Postfix).
# Written for ${partner.placement.organisation} by the operators of ${domains.join(", ")}; questions to ${topology.alerts.email}.
#
# What it does, and nothing else:
#   1. writes the table of our recipients, <config dir>/${table}, and postmaps it;
#   2. ADDS ${domains.join(", ")} to relay_domains and hash:<config dir>/${table} to
#      relay_recipient_maps, keeping every value you have there (see them before and after with
#      \`postconf relay_domains relay_recipient_maps\`);
#   3. checks the configuration (postfix check) and reloads Postfix if it runs.
# Mail for our recipients is accepted and queued; any other address of ${domains.join(", ")} is refused at
# RCPT (550 5.1.1 User unknown in relay recipient table). Nothing else is relayed: your own
# smtpd_relay_restrictions still refuse every other destination. Your Postfix delivers to our primary
# (${topology.primary.hostname}) through our MX records, skipping itself and the MX hosts it is no better
# than, and keeps the mail queued while none of them answers (your maximal_queue_lifetime).
#
# Run it as root: sh postfix.sh [config directory, default /etc/postfix]. Run it again for every new
# version we send you (our recipients change): it replaces the table and changes nothing else twice.
#
# Merging by hand instead (a main.cf kept in configuration management):
#   relay_domains = <your domains, if any>, ${domains.join(", ")}
#   relay_recipient_maps = <your tables, if any>, hash:/etc/postfix/${table}
#   and install the table (the recipients file we send) with: postmap /etc/postfix/${table}
# If you relay for domains of your own with relay_recipient_maps empty, Postfix accepts any recipient
# there today; once relay_recipient_maps lists a table, it refuses every relay recipient no table
# lists, yours too. This script stops in that case: first give your own domains a table of yours
# (\`@your.domain OK\` lines keep accepting all their recipients), then run it again.
# If your Postfix sends through a relayhost, mail for us would go there: add
#   ${domains.map((d) => `${d} relay:${d}`).join("\n#   ")}
# to your transport_maps (MX lookup of our domains) and postmap it.
set -eu
set -f
conf=\${1:-/etc/postfix}
table=$conf/${table}
ours="${ours}"
say() { echo "mailcontinuity: $*"; }
# value <parameter>: as your main.cf writes it; left at its default, what the default amounts to (for
# relay_domains empty, or $mydestination below compatibility_level 2, as Postfix's own default says).
value() {
    if [ -n "$(postconf -c "$conf" -n "$1")" ]; then
        postconf -c "$conf" -h "$1"
    elif [ "$1" = relay_domains ]; then
        if [ -n "$(postconf -c "$conf" -hx relay_domains)" ]; then echo '$mydestination'; fi
    else
        postconf -c "$conf" -hx "$1"
    fi
}

# 2a. Before touching anything: would our table change how your own relay domains are handled?
maps=$(value relay_recipient_maps)
if [ -z "$maps" ]; then
    for item in $(value relay_domains | tr ',' ' '); do
        case " $ours " in *" $item "*) continue ;; esac
        [ "$item" = '$mydestination' ] && continue
        echo "mailcontinuity: you relay for $item and relay_recipient_maps is empty, so Postfix accepts any recipient there;" >&2
        echo "mailcontinuity: adding our table would make it refuse them. Give $item a recipient table of yours in relay_recipient_maps first (see the comments at the top), then run this again. Nothing was changed." >&2
        exit 1
    done
fi

# 1. Our recipients.
umask 022
cat > "$table.new" <<'MAILCONTINUITY_RECIPIENTS'
${partnerRecipientsTable(topology).trimEnd()}
MAILCONTINUITY_RECIPIENTS
postmap -c "$conf" "hash:$table.new"
mv "$table.new.db" "$table.db"
mv "$table.new" "$table"
say "$table: $(grep -cv '^#' "$table") addresses"

# 2b. Add ours to your lists.
add() {
    current=$(value "$1")
    for item in $(printf '%s\\n' "$current" | tr ',' ' '); do
        if [ "$item" = "$2" ]; then
            say "$1 has $2 already"
            return 0
        fi
    done
    postconf -c "$conf" -e "$1 = \${current:+$current, }$2"
    say "$1 = $(postconf -c "$conf" -h "$1")"
}
for domain in $ours; do add relay_domains "$domain"; done
add relay_recipient_maps "hash:$table"

# 3. Check and reload.
postfix -c "$conf" check
if postfix -c "$conf" status >/dev/null 2>&1; then
    postfix -c "$conf" reload
    say "Postfix reloaded"
else
    say "Postfix is not running; the configuration waits for its start"
fi
`;
}

export function renderPartnerSendmail(topology: Sections, partner: PartnerRelay): string {
    const marker = blockMarker(topology);
    const recipients = [...new Set(topology.recipients)];
    const wholeDomains = new Set(recipients.filter((r) => r.startsWith("@")).map(domainOfRecipient));
    const entries = [
        ...recipients.filter((r) => !r.startsWith("@") && !wholeDomains.has(domainOfRecipient(r))).map((r) => `To:${r}\tRELAY`),
        // The more specific To:<address> is looked up first; what is left of the domain is refused.
        ...topology.domains.map((d) => (wholeDomains.has(d) ? `To:${d}\tRELAY` : `To:${d}\tERROR:5.1.1:550 User unknown`)),
    ];
    return [
        `# mailcontinuity: ${whom(topology, partner)} (sendmail).`,
        "#",
        "# 1. sendmail.mc needs these two features (then rebuild sendmail.cf and restart sendmail):",
        "#      FEATURE(`access_db')dnl",
        "#      FEATURE(`blocklist_recipients')dnl     (older sendmail releases know it as blacklist_recipients)",
        "# 2. Put the block below into /etc/mail/access, replacing the older copy of it (from its BEGIN line to",
        "#    its END line) when we send a new version (our recipients changed), then:",
        "#      makemap hash /etc/mail/access < /etc/mail/access",
        `#    Each of our recipients is relayed (To:<address> RELAY); every other address of ${topology.domains.join(", ")} is`,
        "#    refused at RCPT with 550 5.1.1 User unknown (To:<domain> ERROR; the more specific entry wins).",
        "#    Nothing else is relayed.",
        `# 3. Do NOT add ${topology.domains.join(", ")} to relay-domains (/etc/mail/relay-domains, class R): sendmail would`,
        "#    then relay for any address there.",
        `# 4. mailertable: nothing to add. sendmail delivers to our primary (${topology.primary.hostname}) through our MX`,
        "#    records, skipping itself (its name is in class w) and the MX hosts it is no better than, and keeps",
        "#    the mail queued while none answers. If it sends through a SMART_HOST, add to /etc/mail/mailertable",
        `#    (an MX lookup of our domain) and makemap it: ${topology.domains.map((d) => `${d} esmtp:${d}`).join("; ")}`,
        `# BEGIN ${marker}`,
        ...entries,
        `# END ${marker}`,
        "",
    ].join("\n");
}

export function renderPartnerConfig(topology: Sections, partner: PartnerRelay): PartnerConfig {
    return { postfix: renderPartnerPostfix(topology, partner), sendmail: renderPartnerSendmail(topology, partner), recipients: partnerRecipientsTable(topology) };
}

/** Every partner MX's configuration, by hostname (the stack output partnerConfig); undefined when there is none. */
export function partnerConfigsOf(topology: Sections): Record<string, PartnerConfig> | undefined {
    const partners = partnerRelays(topology);
    if (partners.length === 0) return undefined;
    return Object.fromEntries(partners.map((p) => [p.hostname, renderPartnerConfig(topology, p)]));
}
