// Rules that span several fields. Each runs only on the sections it needs that parsed, so a file
// with a bad `dns` section still hears about duplicate MX priorities in the same run.
import { DURATION_RE, type Topology } from "./schema";
import { domainOfRecipient, failureDomainOf, isWithinDomain, providerOf, zoneOf } from "./placement";

export interface Problem {
    path: (string | number)[];
    message: string;
}

type Sections = Partial<Topology>;

const SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export function durationSeconds(duration: string): number {
    const match = DURATION_RE.exec(duration);
    if (!match) throw new Error(`not a duration: ${duration}`);
    return Number(match[1]) * SECONDS[match[2]];
}

// RFC 5321 4.5.4.1: give up after at least 4-5 days. Shorter bounces mail during a long weekend outage.
const MIN_QUEUE_LIFETIME_SECONDS = 5 * 86400;

// Anything wider than a /8 is someone's whole ISP or the Internet.
const NARROWEST_ADMIN_PREFIX = 8;

function priorities(s: Sections): Problem[] {
    if (!s.primary || !s.relays) return [];
    const problems: Problem[] = [];
    const seen = new Map<number, string>([[s.primary.priority, "primary"]]);
    s.relays.forEach((relay, i) => {
        const holder = seen.get(relay.priority);
        if (holder !== undefined) {
            problems.push({
                path: ["relays", i, "priority"],
                message: `priority ${relay.priority} is already used by ${holder}; every MX needs its own priority`,
            });
        } else {
            seen.set(relay.priority, `relays[${i}]`);
        }
        if (relay.priority < s.primary!.priority) {
            problems.push({
                path: ["relays", i, "priority"],
                message: `priority ${relay.priority} would make this relay preferred over the primary (${s.primary!.priority}); relays need a higher number`,
            });
        }
    });
    return problems;
}

function failureDomains(s: Sections): Problem[] {
    if (!s.primary || !s.relays) return [];
    const problems: Problem[] = [];
    const taken = new Map<string, string>([[failureDomainOf(s.primary.placement), "the primary"]]);
    s.relays.forEach((relay, i) => {
        const domain = failureDomainOf(relay.placement);
        const holder = taken.get(domain);
        if (holder !== undefined) {
            problems.push({
                path: ["relays", i, "placement"],
                message: `placed in ${domain}, the same failure domain as ${holder}; a backup must be in another region or provider site`,
            });
        } else {
            taken.set(domain, `relays[${i}]`);
        }
    });
    // The copies are where a lost primary is rebuilt, and a relay may not share the primary's region.
    const primaryPlacement = s.primary.placement;
    if (primaryPlacement.kind === "aws") {
        const copies = primaryPlacement.snapshots.copyToRegion;
        const relayThere = s.relays.findIndex((r) => r.placement.kind === "aws" && r.placement.region === copies);
        if (relayThere >= 0) {
            problems.push({
                path: ["primary", "placement", "snapshots", "copyToRegion"],
                message: `${copies} is where relays[${relayThere}] runs; a primary rebuilt from these copies could not run there (a relay must be in another region than the primary): choose a region without an EC2 relay`,
            });
        }
    }
    const primaryProvider = providerOf(s.primary.placement);
    if (s.relays.length > 0 && s.relays.every((r) => providerOf(r.placement) === primaryProvider)) {
        problems.push({
            path: ["relays"],
            message: `every relay runs at ${primaryProvider}, like the primary; put at least one relay at another provider`,
        });
    }
    return problems;
}

function domains(s: Sections): Problem[] {
    if (!s.domains) return [];
    return s.domains.flatMap((domain, i) => (s.domains!.indexOf(domain) < i ? [{ path: ["domains", i], message: `${domain} is listed twice` }] : []));
}

function hostnames(s: Sections): Problem[] {
    if (!s.primary || !s.relays) return [];
    const problems: Problem[] = [];
    const hosts: [(string | number)[], string][] = [
        [["primary", "hostname"], s.primary.hostname],
        ...s.relays.map((r, i): [(string | number)[], string] => [["relays", i, "hostname"], r.hostname]),
    ];
    const seen = new Set<string>();
    for (const [path, hostname] of hosts) {
        if (seen.has(hostname)) problems.push({ path, message: `${hostname} is listed twice; every MX needs its own host` });
        seen.add(hostname);
        const allowOutside = s.overrides?.allowMxOutsideDomain ?? false;
        if (s.domains && !allowOutside && !s.domains.some((d) => isWithinDomain(hostname, d))) {
            problems.push({
                path,
                message: `${hostname} is outside ${s.domains.join(", ")}; its A record would not be managed here (set overrides.allowMxOutsideDomain: true if that is intended)`,
            });
        }
    }
    const addresses = new Map<string, string>();
    if (s.primary.placement.kind === "external") addresses.set(s.primary.placement.address, "the primary");
    s.relays.forEach((relay, i) => {
        const placement = relay.placement;
        if (placement.kind === "partner") {
            placement.addresses.forEach((address, j) => {
                const holder = addresses.get(address);
                if (holder !== undefined) problems.push({ path: ["relays", i, "placement", "addresses", j], message: `${address} is already used by ${holder}` });
                addresses.set(address, `relays[${i}] (${placement.organisation})`);
            });
            // In one of our zones its A record is ours to publish, and nobody else can: without addresses it would not resolve.
            const zone = s.domains === undefined ? undefined : zoneOf(relay.hostname, s.domains);
            if (zone !== undefined && placement.addresses.length === 0) {
                problems.push({
                    path: ["relays", i, "placement", "addresses"],
                    message: `${relay.hostname} is in ${zone}, whose records this stack publishes: give the partner MX's addresses for its A record (or use a hostname in the partner's own domain, with overrides.allowMxOutsideDomain: true)`,
                });
            }
            return;
        }
        if (placement.kind !== "docker") return;
        const holder = addresses.get(placement.address);
        if (holder !== undefined) {
            problems.push({ path: ["relays", i, "placement", "address"], message: `${placement.address} is already used by ${holder}` });
        }
        addresses.set(placement.address, `relays[${i}]`);
    });
    return problems;
}

function adminAccess(s: Sections): Problem[] {
    const problems: Problem[] = [];
    const check = (path: (string | number)[], cidr: string | undefined) => {
        if (cidr === undefined) return;
        const prefix = Number(cidr.split("/")[1]);
        if (prefix < NARROWEST_ADMIN_PREFIX) {
            problems.push({
                path,
                message: `${cidr} opens SSH to the world; give the admin network (at most a /${NARROWEST_ADMIN_PREFIX}, usually a /32 or /24)`,
            });
        }
    };
    if (s.primary?.placement.kind === "aws") check(["primary", "placement", "adminSshCidr"], s.primary.placement.adminSshCidr);
    // An EC2 relay's container is managed over SSH too, so its adminSshCidr is required by the schema.
    s.relays?.forEach((relay, i) => {
        if (relay.placement.kind === "aws") check(["relays", i, "placement", "adminSshCidr"], relay.placement.adminSshCidr);
    });
    for (const [name, site] of Object.entries(s.sites ?? {})) {
        if (site.server?.placement.kind === "aws") check(["sites", name, "server", "placement", "adminSshCidr"], site.server.placement.adminSshCidr);
    }
    return problems;
}

function dnsProviders(s: Sections): Problem[] {
    if (!s.dns) return [];
    const problems: Problem[] = [];
    const kinds = new Set<string>();
    s.dns.providers.forEach((provider, i) => {
        if (kinds.has(provider.kind)) {
            problems.push({ path: ["dns", "providers", i, "kind"], message: `${provider.kind} is listed twice; the second provider must be independent of the first` });
        }
        kinds.add(provider.kind);
        if (provider.kind === "cloudflare" && s.domains) {
            for (const domain of s.domains) {
                if (!(domain in provider.zoneIds)) {
                    problems.push({ path: ["dns", "providers", i, "zoneIds"], message: `no Cloudflare zone id for ${domain}` });
                }
            }
            for (const zone of Object.keys(provider.zoneIds)) {
                if (!s.domains.includes(zone)) {
                    problems.push({ path: ["dns", "providers", i, "zoneIds", zone], message: `${zone} is not one of the domains` });
                }
            }
        }
    });
    return problems;
}

function recipients(s: Sections): Problem[] {
    if (!s.recipients || !s.domains) return [];
    return s.recipients.flatMap((recipient, i) =>
        s.domains!.includes(domainOfRecipient(recipient))
            ? []
            : [{ path: ["recipients", i], message: `${recipient} is not in ${s.domains!.join(", ")}; the relays only accept mail for those domains` }],
    );
}

function queueLifetime(s: Sections): Problem[] {
    if (s.queueLifetime === undefined) return [];
    const allowShort = s.overrides?.allowShortQueueLifetime ?? false;
    if (allowShort || durationSeconds(s.queueLifetime) >= MIN_QUEUE_LIFETIME_SECONDS) return [];
    return [
        {
            path: ["queueLifetime"],
            message: `${s.queueLifetime} is under 5 days; RFC 5321 asks senders to keep trying 4-5 days (set overrides.allowShortQueueLifetime: true to insist)`,
        },
    ];
}

function adminKeys(s: Sections): Problem[] {
    if (!s.primary || !s.relays || !s.admin) return [];
    const sites = Object.values(s.sites ?? {}).flatMap((site) => (site.server === undefined ? [] : [site.server]));
    const onAws = [s.primary, ...s.relays, ...sites].filter((h) => h.placement.kind === "aws").map((h) => h.hostname);
    if (onAws.length === 0 || s.admin.sshKeys.length > 0) return [];
    return [
        {
            path: ["admin", "sshKeys"],
            message: `${onAws.join(", ")} run on EC2 and are configured over SSH on every update; list at least one OpenSSH public key`,
        },
    ];
}

/** A mailbox must be a recipient, or the relays would refuse its mail with 550. */
function mailboxes(s: Sections): Problem[] {
    if (!s.mailboxes || !s.recipients) return [];
    const problems: Problem[] = [];
    const seen = new Set<string>();
    s.mailboxes.forEach((mailbox, i) => {
        if (seen.has(mailbox)) problems.push({ path: ["mailboxes", i], message: `${mailbox} is listed twice` });
        seen.add(mailbox);
        const covered = s.recipients!.includes(mailbox) || s.recipients!.includes(`@${domainOfRecipient(mailbox)}`);
        if (!covered) problems.push({ path: ["mailboxes", i], message: `${mailbox} is not in recipients; the relays would refuse its mail (add it there)` });
    });
    // Site users' mailboxes are on their site's server (the sites rule); the rest are the primary's.
    const primaryMailboxes = s.mailboxes.filter((m) => s.recipientSites?.[m] === undefined);
    if (s.primary && s.primary.placement.kind !== "aws" && primaryMailboxes.length > 0) {
        problems.push({ path: ["mailboxes"], message: "mailbox users are set up on an AWS primary only; an external primary keeps its own users" });
    }
    return problems;
}

/** RFC 7489 7.1: reports to another domain need that domain's consent, published in its own zone. */
function dmarcReports(s: Sections): Problem[] {
    if (!s.domains || !s.alerts || !s.policy) return [];
    const address = s.policy.dmarcReports ?? s.alerts.email;
    const domain = domainOfRecipient(address.toLowerCase());
    if (s.domains.includes(domain) || s.overrides?.dmarcReportsAuthorized) return [];
    return [
        {
            path: s.policy.dmarcReports !== undefined ? ["policy", "dmarcReports"] : ["alerts", "email"],
            message: `DMARC reports would go to ${domain}, which is not one of the domains, so its authorization record (${s.domains[0]}._report._dmarc.${domain}) cannot be published here; set policy.dmarcReports to an address in ${s.domains.join(", ")}, or have ${domain} publish it and set overrides.dmarcReportsAuthorized: true`,
        },
    ];
}

/**
 * Sites (the "mail switch"): every site has a server, every site recipient names a known site and
 * one site only, a site's server is no MX host, and a site is not one outage away from the switch.
 */
function sites(s: Sections): Problem[] {
    if (!s.sites || !s.recipientEntries) return [];
    const problems: Problem[] = [];
    const names = Object.keys(s.sites);
    for (const [name, site] of Object.entries(s.sites)) {
        if (site.server === undefined) {
            problems.push({ path: ["sites", name], message: `site ${name} has no server; give server.hostname and server.placement (kind: external, address, site)` });
            continue;
        }
        const server = site.server;
        const mxHosts = [s.primary?.hostname, ...(s.relays ?? []).map((r) => r.hostname)];
        if (mxHosts.includes(server.hostname)) problems.push({ path: ["sites", name, "server", "hostname"], message: `${server.hostname} is an MX host; a site needs its own server` });
        for (const [other, otherSite] of Object.entries(s.sites)) {
            const mine = server.placement;
            const theirs = otherSite.server?.placement;
            if (other < name && mine.kind === "external" && theirs?.kind === "external" && theirs.address === mine.address) {
                problems.push({ path: ["sites", name, "server", "placement", "address"], message: `${mine.address} is already the server of site ${other}` });
            }
        }
        if (s.primary && s.relays && s.relays.length === 1 && failureDomainOf(server.placement) === failureDomainOf(s.primary.placement)) {
            problems.push({
                path: ["sites", name, "server", "placement", "site"],
                message: `site ${name}'s server is in ${failureDomainOf(server.placement)}, like the switch (the primary), and there is only one relay: one outage takes the switch and the site, and a single relay must hold everything; move the site's server or add a relay`,
            });
        }
    }
    const siteOf = new Map<string, { site: string; index: number }>();
    s.recipientEntries.forEach((entry, i) => {
        if (typeof entry === "string") return;
        if (!names.includes(entry.site)) {
            problems.push({ path: ["recipients", i, "site"], message: `site ${entry.site} is not in sites (${names.length > 0 ? names.join(", ") : "none declared"})` });
        }
        const earlier = siteOf.get(entry.address);
        if (earlier !== undefined && earlier.site !== entry.site) {
            problems.push({ path: ["recipients", i], message: `${entry.address} is already a user of site ${earlier.site} (recipients[${earlier.index}]); a user belongs to one site` });
        }
        siteOf.set(entry.address, { site: entry.site, index: i });
    });
    s.recipientEntries.forEach((entry, i) => {
        if (typeof entry === "string" && siteOf.has(entry)) {
            problems.push({ path: ["recipients", i], message: `${entry} is also a user of site ${siteOf.get(entry)!.site}; list it once, with its site` });
        }
    });
    s.mailboxes?.forEach((mailbox, i) => {
        const site = siteOf.get(mailbox);
        if (site !== undefined && s.sites?.[site.site]?.server?.placement.kind !== "aws") {
            problems.push({ path: ["mailboxes", i], message: `${mailbox} is a user of site ${site.site}, whose own server (kind: external) keeps its users; the stack sets up IMAP users only on EC2 hosts` });
        }
    });
    return problems;
}

/**
 * MTA-STS enforce and verified relay-to-primary delivery both refuse a self-signed certificate: they
 * need every MX on ACME certificates, else mail to the backup MX stops exactly when it is needed.
 */
function certificates(s: Sections): Problem[] {
    const problems: Problem[] = [];
    const acme = s.tls?.acme;
    if (acme === undefined && s.policy?.mtaSts === "enforce") {
        problems.push({ path: ["policy", "mtaSts"], message: "enforce makes senders refuse an MX whose certificate they cannot verify, and without tls.acme every MX presents a self-signed one; set tls.acme or keep testing" });
    }
    // tls.acme reaches only the hosts the stack runs: a partner's certificate is the partner's to get.
    if (s.policy?.mtaSts === "enforce") {
        s.relays?.forEach((relay, i) => {
            if (relay.placement.kind !== "partner" || relay.placement.caSignedCertificate) return;
            problems.push({
                path: ["relays", i, "placement", "caSignedCertificate"],
                message: `policy.mtaSts: enforce makes senders refuse ${relay.hostname} unless its certificate verifies, and the stack gives a partner's MX none; set caSignedCertificate: true once ${relay.placement.organisation} confirms a CA-signed certificate for ${relay.hostname}, or keep mtaSts at testing`,
            });
        });
    }
    if (acme === undefined && s.tls?.relayToPrimary === "verify") {
        problems.push({ path: ["tls", "relayToPrimary"], message: "verify needs a CA-signed certificate on the primary, and without tls.acme it has a self-signed one: the relays would hold every message; set tls.acme or use encrypt" });
    }
    if (acme?.challengeZone !== undefined && s.domains && !s.domains.some((d) => isWithinDomain(acme.challengeZone!, d) && acme.challengeZone !== d)) {
        problems.push({ path: ["tls", "acme", "challengeZone"], message: `${acme.challengeZone} must be a subdomain of one of the domains (${s.domains.join(", ")}), so the stack can delegate it at every DNS provider` });
    }
    const dkim = s.dkim;
    if (dkim !== undefined) {
        dkim.retiredSelectors.forEach((selector, i) => {
            if (selector === dkim.selector) problems.push({ path: ["dkim", "retiredSelectors", i], message: `${selector} is the signing selector; a retired selector is one no longer used to sign` });
            else if (dkim.retiredSelectors.indexOf(selector) !== i) problems.push({ path: ["dkim", "retiredSelectors", i], message: `${selector} is listed twice` });
        });
    }
    return problems;
}

export function checkRules(sections: Sections): Problem[] {
    return [domains, priorities, failureDomains, hostnames, adminAccess, adminKeys, dnsProviders, recipients, mailboxes, dmarcReports, queueLifetime, sites, certificates].flatMap((rule) => rule(sections));
}
