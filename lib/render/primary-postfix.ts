// The primary's Postfix configuration as data: main.cf parameters (applied with `postconf -e`) and the
// lookup tables they name. The EC2 cloud-init and the lab apply exactly this.
import type { Topology } from "../topology/schema";
import { OPENDKIM_MILTER } from "./dkim";
import { MAILBOX_BASE, MAILBOX_UID, MESSAGE_SIZE_LIMIT, virtualMailboxTable } from "./maildirs";
import { switchTransportTable } from "./sites";
import { hasIpv6 } from "../topology/placement";

export interface PrimaryPostfixOptions {
    /** Public addresses of the relays, trusted to hand over queued mail (IPv4, and IPv6 where they have one). */
    relayAddresses: readonly string[];
    configDir?: string;
    mailboxBase?: string;
    tlsCertFile?: string;
    tlsKeyFile?: string;
}

export interface PrimaryPostfixConfig {
    /** main.cf parameters in the order they are applied. */
    mainCf: [name: string, value: string][];
    /** Lookup tables, keyed by path relative to the config directory. */
    tables: Record<string, string>;
    /** The tables main.cf reads as hash: (indexed with postmap after each install). */
    hashTables: string[];
    /** main.cf parameters an earlier config set and this one must remove (postconf -X). */
    removed: string[];
}


export function renderPrimaryPostfix(topology: Topology, options: PrimaryPostfixOptions): PrimaryPostfixConfig {
    const dir = options.configDir ?? "/etc/postfix";
    // One host each: /32 for IPv4, /128 for IPv6 (Postfix's cidr table takes IPv6 networks unbracketed).
    const relayClients = options.relayAddresses.map((a) => `${a}/${a.includes(":") ? 128 : 32}\tOK`).join("\n");
    // Postfix on both families when the primary has an IPv6 address (its AAAA is published).
    const ipv6 = hasIpv6(topology.primary.placement);
    const trustRelays = `check_client_access cidr:${dir}/relay_clients.cidr`;
    // The mail switch: site users' mail goes on to their site's server (lib/render/sites.ts).
    const transport = switchTransportTable(topology);
    const siteRouting: [string, string][] = transport === "" ? [] : [["transport_maps", `hash:${dir}/transport`]];
    const milters: [string, string][] = [
        ["smtpd_milters", OPENDKIM_MILTER],
        // Mail submitted on the host (sendmail, pickup) is signed as well.
        ["non_smtpd_milters", "$smtpd_milters"],
        // A signer that is down or broken must not stop mail. Postfix's default (tempfail) would refuse
        // every message meanwhile, the Internet's and the relays' hand-overs too; unsigned mail still
        // passes SPF.
        ["milter_default_action", "accept"],
    ];
    const signing = topology.dkim !== undefined;
    return {
        mainCf: [
            ["myhostname", topology.primary.hostname],
            ["myorigin", "$myhostname"],
            ["mydestination", "localhost"],
            ["mynetworks", "127.0.0.0/8"],
            ["inet_interfaces", "all"],
            ["inet_protocols", ipv6 ? "all" : "ipv4"],
            // Its outgoing mail (users' mail, bounces) goes over IPv4 first where a destination has both:
            // the address with reverse DNS (an Elastic IP's PTR; AWS sets none for an instance's IPv6
            // address), which receivers such as Gmail require of IPv6 senders. IPv6 when IPv4 fails.
            ...(ipv6 ? ([["smtp_address_preference", "ipv4"]] as [string, string][]) : []),
            ["smtpd_banner", "$myhostname ESMTP"],
            ["biff", "no"],
            ["message_size_limit", String(MESSAGE_SIZE_LIMIT)],
            // virtual(8) refuses to start when this is below message_size_limit; for a Maildir it caps one message.
            ["virtual_mailbox_limit", String(MESSAGE_SIZE_LIMIT)],
            ["virtual_mailbox_domains", topology.domains.join(" ")],
            ["virtual_mailbox_base", options.mailboxBase ?? MAILBOX_BASE],
            // hash: (postmap'd by the apply step) so a lookup costs the same with 10 or 10,000 recipients.
            ["virtual_mailbox_maps", `hash:${dir}/vmailbox`],
            ["virtual_uid_maps", `static:${MAILBOX_UID}`],
            ["virtual_gid_maps", `static:${MAILBOX_UID}`],
            ["smtpd_tls_cert_file", options.tlsCertFile ?? "/etc/ssl/certs/ssl-cert-snakeoil.pem"],
            ["smtpd_tls_key_file", options.tlsKeyFile ?? "/etc/ssl/private/ssl-cert-snakeoil.key"],
            ["smtpd_tls_security_level", "may"],
            ["smtp_tls_security_level", "may"],
            ["smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination"],
            // The relays already accepted this mail; refusing it here only turns it into a bounce.
            ["smtpd_helo_required", "yes"],
            ["smtpd_helo_restrictions", `${trustRelays}, reject_invalid_helo_hostname`],
            ["smtpd_sender_restrictions", `${trustRelays}, reject_non_fqdn_sender, reject_unknown_sender_domain`],
            ["smtpd_recipient_restrictions", "reject_non_fqdn_recipient, reject_unlisted_recipient"],
            ["smtpd_client_event_limit_exceptions", `$mynetworks, cidr:${dir}/relay_clients.cidr`],
            // Queued mail arriving in a burst from a relay should not wait behind per-client limits.
            ["smtpd_client_connection_count_limit", "100"],
            ...siteRouting,
            ...(signing ? milters : []),
        ],
        tables: {
            vmailbox: virtualMailboxTable(topology.recipients),
            "relay_clients.cidr": relayClients === "" ? "" : `${relayClients}\n`,
            ...(transport === "" ? {} : { transport }),
        },
        hashTables: ["vmailbox", ...(transport === "" ? [] : ["transport"])],
        // The last site gone: the switch must stop routing by the old table, which stays on disk. DKIM
        // turned off: Postfix must stop handing mail to a signer that may still run.
        removed: [...(transport === "" ? ["transport_maps"] : []), ...(signing ? [] : milters.map(([name]) => name))],
    };
}

/**
 * Asks every relay to flush the queue it holds for our domains (RFC 1985 ETRN). Run at boot and on a
 * timer so that mail queued during an outage comes home without waiting for the relays' backoff.
 * Plain bash: Postfix has no ETRN client, and /dev/tcp needs nothing installed.
 */
export function renderEtrnScript(topology: Topology, relays: readonly string[] = topology.relays.map((r) => r.hostname)): string {
    return `#!/bin/bash
# Generated by mailcontinuity: asks each relay to deliver what it queued for us (ETRN).
# Usage: etrn-relays [relay[:port] ...]   (default: every relay of the topology)
set -u
domains="${topology.domains.join(" ")}"
if [ $# -gt 0 ]; then relays=("$@"); else relays=(${relays.join(" ")}); fi
status=0
for target in "\${relays[@]}"; do
  host=\${target%:*}; port=25
  [ "$host" != "$target" ] && port=\${target##*:}
  if ! exec 3<>"/dev/tcp/$host/$port" 2>/dev/null; then
    echo "etrn-relays: $host:$port unreachable" >&2; status=1; continue
  fi
  read -r -t 10 line <&3
  printf 'EHLO %s\\r\\n' "${topology.primary.hostname}" >&3
  while read -r -t 10 line <&3 && [ "\${line:3:1}" = "-" ]; do :; done
  for domain in $domains; do
    printf 'ETRN %s\\r\\n' "$domain" >&3
    read -r -t 10 line <&3
    echo "etrn-relays: $host $domain: \${line%$'\\r'}"
  done
  printf 'QUIT\\r\\n' >&3
  exec 3>&-
done
exit $status
`;
}
