// Several sites behind one domain (the "mail switch"): the primary takes every user's mail from the
// Internet (MX, relays) and forwards each site user's mail to that site's server; each site's server
// delivers its own users locally and sends other users' mail straight to their site (or the switch),
// never through the switch and back. One model keeps every site's tables in step.
import type { Topology } from "../topology/schema";
import { MAILBOX_BASE, MAILBOX_UID, MESSAGE_SIZE_LIMIT, virtualMailboxTable } from "./maildirs";

export interface SiteRoute {
    address: string;
    site: string;
    /** The site server's hostname: Postfix's next hop, in brackets (its A record, no MX lookup). */
    server: string;
}

function nexthop(hostname: string): string {
    return `smtp:[${hostname}]:25`;
}

export function siteRoutes(topology: Pick<Topology, "recipientSites" | "sites">): SiteRoute[] {
    return Object.entries(topology.recipientSites)
        .map(([address, site]) => ({ address, site, server: topology.sites[site].server!.hostname }))
        .sort((a, b) => a.address.localeCompare(b.address));
}

/** The switch's transport table: each site user to the site's server. Empty without sites. */
export function switchTransportTable(topology: Pick<Topology, "recipientSites" | "sites">): string {
    const lines = siteRoutes(topology).map((r) => `${r.address}\t${nexthop(r.server)}`);
    return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

export interface SiteConfigOptions {
    configDir?: string;
    mailboxBase?: string;
}

export interface SitePostfixConfig {
    site: string;
    hostname: string;
    /** main.cf parameters to set on the site's server (postconf -e), on top of its own. */
    mainCf: [name: string, value: string][];
    /** Where its Maildirs go (created, owned by MAILBOX_UID, if missing). */
    mailboxBase: string;
    /** Lookup tables by file name in configDir, all hash: (postmap each). */
    tables: Record<string, string>;
}

export const SITE_USERS_TABLE = "mailcontinuity-users";
export const SITE_TRANSPORT_TABLE = "mailcontinuity-transport";

/**
 * One site's server: every recipient of the domains is valid there (so its users may write to anyone),
 * its own users are delivered to Maildirs (`virtual:`), other sites' users go straight to their server,
 * and everyone else (the switch's own users, whole-domain recipients) to the switch.
 */
export function renderSitePostfix(topology: Topology, site: string, options: SiteConfigOptions = {}): SitePostfixConfig {
    const server = topology.sites[site]?.server;
    if (server === undefined) throw new Error(`site ${site} has no server in the topology`);
    const dir = options.configDir ?? "/etc/postfix";
    const routes = siteRoutes(topology);
    const transport = [
        ...routes.map((r) => `${r.address}\t${r.site === site ? "virtual:" : nexthop(r.server)}`),
        // Addresses of the switch's own users, and whatever a whole-domain recipient covers there.
        ...topology.domains.map((d) => `${d}\t${nexthop(topology.primary.hostname)}`),
    ];
    return {
        site,
        hostname: server.hostname,
        mailboxBase: options.mailboxBase ?? MAILBOX_BASE,
        mainCf: [
            ["virtual_mailbox_domains", topology.domains.join(" ")],
            ["virtual_mailbox_maps", `hash:${dir}/${SITE_USERS_TABLE}`],
            ["transport_maps", `hash:${dir}/${SITE_TRANSPORT_TABLE}`],
            // Maildirs as on the primary (virtual(8)); a site delivering through Dovecot's LMTP instead
            // replaces `virtual:` in the transport table with its own transport (README "Sites").
            ["virtual_mailbox_base", options.mailboxBase ?? MAILBOX_BASE],
            ["virtual_uid_maps", `static:${MAILBOX_UID}`],
            ["virtual_gid_maps", `static:${MAILBOX_UID}`],
            // What the relays and the switch accept, the site must take too, or it bounces later.
            ["message_size_limit", String(MESSAGE_SIZE_LIMIT)],
            ["virtual_mailbox_limit", String(MESSAGE_SIZE_LIMIT)],
            // The site's own smtpd restrictions stay as they are: unknown recipients are refused by
            // virtual_mailbox_maps (smtpd_reject_unlisted_recipient), and relaying is the site's policy.
        ],
        tables: {
            [SITE_USERS_TABLE]: virtualMailboxTable(topology.recipients),
            [SITE_TRANSPORT_TABLE]: `${transport.join("\n")}\n`,
        },
    };
}
