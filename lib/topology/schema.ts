// The shape of `mailcontinuity:topology`. Cross-field rules (priorities, failure domains, …) live in
// rules.ts so that each can name the exact path it objects to.
import { z } from "zod";
import { SSH_URL_RE } from "./ssh-url";
import { canonicalIpv6, notGlobalUnicast } from "./ipv6";

const FQDN_RE = /^(?=.{4,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.[a-z]{2,63}$/;

export const fqdn = z
    .string()
    .transform((s) => s.toLowerCase())
    .pipe(
        z.string().regex(FQDN_RE, {
            message: "expected a fully qualified domain name such as mx2.example.com (no trailing dot)",
        }),
    );

const site = z.strictObject({
    provider: z.string().min(1).transform((s) => s.toLowerCase()),
    city: z.string().min(1).transform((s) => s.toLowerCase()),
});

const AWS_REGION_RE = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;
const awsRegion = z.string().regex(AWS_REGION_RE, { message: "expected an AWS region such as eu-central-1" });

const adminCidr = z.cidrv4({ message: "expected an IPv4 CIDR such as 203.0.113.0/24" });

/**
 * A host's public IPv6 address: global unicast (2000::/3) only, so a link-local, unique local, loopback
 * or multicast address is refused with what it is. Kept in RFC 5952's form (ipv6.ts), the one every
 * record, zone file and answer is compared in. The documentation range 2001:db8::/32 passes here (the
 * example stacks and the lab use it) and is refused for a real deployment (deployable.ts), as
 * 192.0.2.0/24 is.
 */
const ipv6Address = z
    .ipv6({ message: "expected the host's public IPv6 address, such as 2001:db8::25" })
    .superRefine((address, ctx) => {
        const why = notGlobalUnicast(address);
        if (why !== undefined) ctx.addIssue({ code: "custom", message: why });
    })
    .transform(canonicalIpv6);

// Postfix's own time units, so the value can be handed to the relay unchanged.
export const DURATION_RE = /^([1-9]\d*)([smhdw])$/;
const duration = z.string().regex(DURATION_RE, {
    message: "expected a duration such as 7d, 120h or 5d (units s, m, h, d, w)",
});

const instanceType = (fallback: string) =>
    z
        .string()
        .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, { message: "expected an EC2 instance type such as t3.small or t4g.small" })
        .default(fallback);

// Chosen in the config, never looked up: a newer image published upstream then never replaces a host
// by surprise, and moving to one is a reviewed change of this value (README: "Moving to a newer AMI").
const ami = z.string({ error: "give the AMI id of Debian 12 for this region and architecture (README: choosing the AMI)" }).regex(/^ami-[0-9a-f]{8,17}$/, {
    message: "expected an AMI id such as ami-0123456789abcdef0",
});
const subnetId = z.string().regex(/^subnet-[0-9a-f]{8,17}$/, { message: "expected a subnet id such as subnet-0123456789abcdef0" });

const awsHostFields = {
    kind: z.literal("aws"),
    region: awsRegion,
    ami,
    /** When absent, the region's default VPC and the region's "a" zone. */
    subnetId: subnetId.optional(),
    adminSshCidr: adminCidr,
    /** PTR for the Elastic IP; AWS sets it only once the A record resolves publicly (README). */
    reverseDns: z.boolean().default(false),
    /**
     * An IPv6 address for the instance (ipv6AddressCount 1, from its subnet's IPv6 block), published as
     * AAAA at both providers. The subnet (the region's default one without subnetId) must have an IPv6
     * block and a ::/0 route to its internet gateway (README: IPv6). AWS gives it no reverse DNS.
     */
    ipv6: z.boolean().default(false),
};

/** The intervals AWS Data Lifecycle Manager takes (CreateRule.Interval, HOURS). */
export const SNAPSHOT_INTERVAL_HOURS = [1, 2, 3, 4, 6, 8, 12, 24] as const;

// The mail volume's scheduled snapshots (AWS Data Lifecycle Manager), copied to a second region: the
// mailboxes exist only on that volume, so a primary without them loses every mailbox with its region.
const mailSnapshots = z.strictObject(
    {
        everyHours: z
            .int()
            .refine((n) => (SNAPSHOT_INTERVAL_HOURS as readonly number[]).includes(n), {
                message: `Data Lifecycle Manager takes a snapshot every ${SNAPSHOT_INTERVAL_HOURS.join(", ")} hours; pick one of those`,
            })
            .default(24),
        /** Snapshots kept in the primary's region (DLM RetainRule.Count, 1-1000). */
        keep: z.int().min(1).max(1000).default(7),
        /** Where each snapshot is copied, so that it outlives the primary's region. */
        copyToRegion: awsRegion,
        /** How long a copy is kept there (DLM CrossRegionCopyRetainRule, DAYS). */
        copyKeepDays: z.int().min(1).max(3650).default(7),
    },
    // Only a missing block gets this sentence; an unknown key keeps zod's own message, which names it.
    { error: (issue) => (issue.input === undefined ? "give snapshots: {copyToRegion: <another region>} (README: snapshots and rebuilding the primary)" : undefined) },
);

const awsPrimaryPlacement = z
    .strictObject({
        ...awsHostFields,
        instanceType: instanceType("t3.small"),
        volumeSizeGiB: z.int().min(8).max(16384).default(50),
        snapshots: mailSnapshots,
        /**
         * Create the mail volume from this snapshot (in `region`): the rebuild of a lost primary. It names
         * a new volume resource, so keep it for as long as that volume lives (docs/rebuild-primary.md).
         */
        restoreFromSnapshot: z.string().regex(/^snap-[0-9a-f]{8,17}$/, { message: "expected an EBS snapshot id such as snap-0123456789abcdef0" }).optional(),
    })
    .superRefine((p, ctx) => {
        if (p.snapshots.copyToRegion === p.region) {
            ctx.addIssue({
                code: "custom",
                path: ["snapshots", "copyToRegion"],
                message: `copies in ${p.region}, the primary's own region, die with it; name another region`,
            });
        }
    });

const externalPrimaryPlacement = z.strictObject({
    kind: z.literal("external"),
    address: z.ipv4({ message: "expected the primary's public IPv4 address" }),
    /** Its public IPv6 address, when it has one: published as AAAA at both providers. */
    address6: ipv6Address.optional(),
    site,
});

const priority = z.int().min(0).max(65535);

const primary = z.strictObject({
    hostname: fqdn,
    priority: priority.default(10),
    placement: z.discriminatedUnion("kind", [awsPrimaryPlacement, externalPrimaryPlacement]),
});

const dockerRelayPlacement = z.strictObject({
    kind: z.literal("docker"),
    // The user is needed: the apply step logs in as that user too (and runs `docker exec`).
    host: z.string().regex(SSH_URL_RE, {
        message: "expected an ssh:// Docker host with its user, such as ssh://deploy@relay1.example.net or ssh://deploy@relay1.example.net:2222",
    }),
    address: z.ipv4({ message: "expected the Docker host's public IPv4 address" }),
    /** The Docker host's public IPv6 address, when it has one: published as AAAA at both providers. */
    address6: ipv6Address.optional(),
    site,
    platform: z.enum(["linux/amd64", "linux/arm64"]).default("linux/amd64"),
});

const awsRelayPlacement = z.strictObject({
    ...awsHostFields,
    instanceType: instanceType("t3.micro"),
    /** The queue's own EBS volume, kept when the instance is replaced. */
    queueVolumeSizeGiB: z.int().min(8).max(16384).default(20),
});

/**
 * An MX host another organisation runs (a partner that agreed to relay for our domains): the stack
 * publishes its MX record (and its A record when its name is in one of our zones), watches its port 25
 * and hands over what it must install (lib/render/partner.ts); it deploys nothing there.
 */
const partnerRelayPlacement = z.strictObject({
    kind: z.literal("partner"),
    /** Who runs it: its own failure domain, named in alarms and the runbook. */
    organisation: z.string().trim().min(1, { message: "name the organisation that runs this MX" }),
    /** Whom to call when it is down, and where its configuration goes on every recipient change. */
    contact: z.email({ message: "expected the partner's contact address (its postmaster or operations desk)" }),
    /** Its public IPv4 addresses, when known: required when its hostname is in one of our zones (we publish its A record). */
    addresses: z.array(z.ipv4({ message: "expected the partner MX's public IPv4 address" })).default([]),
    /** Its public IPv6 addresses, when known: AAAA records beside the A records when its hostname is in one of our zones. */
    addresses6: z.array(ipv6Address).default([]),
    /** What it runs: which configuration it is given (both are rendered; this says which one it uses). */
    software: z.enum(["postfix", "sendmail"]).default("postfix"),
    /**
     * The partner states that its MX presents a certificate from a public CA for its hostname. The stack
     * cannot give it one (no ACME here), and policy.mtaSts: enforce needs it.
     */
    caSignedCertificate: z.boolean().default(false),
});

const relay = z.strictObject({
    hostname: fqdn,
    priority,
    placement: z.discriminatedUnion("kind", [dockerRelayPlacement, awsRelayPlacement, partnerRelayPlacement]),
});

const cloudflareProvider = z.strictObject({
    kind: z.literal("cloudflare"),
    zoneIds: z.record(
        fqdn,
        z
            .string({ error: "expected a 32-hex-digit Cloudflare zone id, in quotes (YAML reads an all-digit id as a number)" })
            .regex(/^[0-9a-f]{32}$/, { message: "expected a 32-hex-digit Cloudflare zone id" }),
    ),
});

const route53Provider = z.strictObject({
    kind: z.literal("route53"),
});

const dnsProvider = z.discriminatedUnion("kind", [cloudflareProvider, route53Provider]);

const recipient = z
    .string()
    .transform((s) => s.toLowerCase())
    .pipe(
        z.string().regex(/^([a-z0-9!#$%&'*+/=?^_`{|}~.-]+)?@[a-z0-9.-]+$/, {
            message: "expected an address such as alice@example.com, or @example.com for a whole domain",
        }),
    );

const recipientAddress = z
    .string()
    .transform((s) => s.toLowerCase())
    .pipe(z.string().regex(/^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9.-]+$/, { message: "expected a mailbox address such as alice@example.com" }));

const siteName = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, { message: "expected a site name such as berlin (lower-case letters, digits and -)" });

/** A recipient whose mailbox is on a site's own server; the primary (the switch) forwards its mail there. */
const siteRecipient = z.strictObject({ address: recipientAddress, site: siteName });

/**
 * One office of a multi-site organisation, with its own mail server: one you keep (`external`, its
 * address), or an EC2 host the stack runs like the primary (`aws`: mail volume, snapshots, Dovecot).
 */
const siteSpec = z.strictObject({
    // Optional here so that a site without one is refused with its path and a sentence (rules.ts).
    server: z
        .strictObject({
            hostname: fqdn,
            placement: z.discriminatedUnion("kind", [externalPrimaryPlacement, awsPrimaryPlacement]),
        })
        .optional(),
});

/** Let's Encrypt's production directory: the default CA. Its staging directory suits a first deployment. */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";
export const LETS_ENCRYPT_STAGING_DIRECTORY = "https://acme-staging-v02.api.letsencrypt.org/directory";

/** A DKIM selector is one DNS label: <selector>._domainkey.<domain>. */
export const DKIM_SELECTOR_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const dkimSelector = z.string().regex(DKIM_SELECTOR_RE, { message: "expected a selector such as mc2026 (one DNS label: lower-case letters, digits and -)" });

/**
 * Certificates from an ACME CA for every MX host the stack deploys, validated through DNS-01:
 * `_acme-challenge.<host>` is a CNAME (at every DNS provider) into challengeZone, a small Route53 zone
 * the stack delegates, so the CA finds the same TXT whichever provider it asks and the hosts'
 * credential can write nowhere else.
 */
const acme = z.strictObject({
    directoryUrl: z.url({ protocol: /^https$/, message: "expected the CA's https:// directory URL" }).default(LETS_ENCRYPT_DIRECTORY),
    /** The CA's expiry notices; alerts.email when absent. */
    email: z.email({ message: "expected the address the CA writes to" }).optional(),
    renewDaysBefore: z.int().min(1).max(60).default(30),
    /** acme-challenge.<first domain> when absent. */
    challengeZone: fqdn.optional(),
});

export const sections = {
    domains: z.array(fqdn).min(1, { message: "list at least one domain" }),
    primary,
    relays: z.array(relay).min(1, { message: "list at least one relay; a backup MX is the point" }),
    dns: z.strictObject({
        ttl: z.int().min(60).max(86400).default(300),
        providers: z.array(dnsProvider).min(2, {
            message: "list at least two DNS providers (cloudflare and route53) so that one failing does not stop mail",
        }),
    }),
    recipients: z.array(z.union([recipient, siteRecipient], { error: "expected an address (alice@example.com, @example.com) or {address, site}" })).min(1, {
        message: "list the valid recipients the relays accept",
    }),
    /** Sites with their own mail servers, by name; recipients name theirs. */
    sites: z.record(siteName, siteSpec).default({}),
    alerts: z.strictObject({ email: z.email({ message: "expected the address that receives alerts" }) }),
    queueLifetime: duration.default("7d"),
    policy: z
        .strictObject({
            // testing by default: enforce needs CA-signed certificates on every MX (tls.acme; rules.ts).
            mtaSts: z.enum(["none", "testing", "enforce"]).default("testing"),
            dmarc: z.enum(["none", "quarantine", "reject"]).default("none"),
            /** DMARC aggregate reports (rua); alerts.email when absent. */
            dmarcReports: z.email({ message: "expected the address that receives DMARC reports" }).optional(),
        })
        .default({ mtaSts: "testing", dmarc: "none" }),
    tls: z
        .strictObject({
            acme: acme.optional(),
            /**
             * How the relays deliver to the primary: verify (a CA-signed certificate for its hostname,
             * else the mail stays queued), encrypt (TLS, any certificate) or may (TLS when offered).
             * verify when acme is set, may otherwise.
             */
            relayToPrimary: z.enum(["verify", "encrypt", "may"]).optional(),
        })
        .default({}),
    /** The primary signs outgoing mail; the key is the stack's (a secret), published at every provider. */
    dkim: z
        .strictObject({
            selector: dkimSelector,
            /** Still published, no longer used to sign: for mail in flight during a rotation. */
            retiredSelectors: z.array(dkimSelector).default([]),
        })
        .optional(),
    /** Who may log in to EC2 hosts (as Debian's `admin` user, from adminSshCidr only). */
    admin: z
        .strictObject({
            sshKeys: z.array(
                z.string().regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/, {
                    message: "expected an OpenSSH public key line such as 'ssh-ed25519 AAAA... you@laptop'",
                }),
            ),
        })
        .default({ sshKeys: [] }),
    /** Addresses that log in to the primary's IMAP; password hashes are the secret mailcontinuity:mailboxPasswordHashes. */
    mailboxes: z.array(recipientAddress).default([]),
    overrides: z
        .strictObject({
            allowShortQueueLifetime: z.boolean().default(false),
            allowMxOutsideDomain: z.boolean().default(false),
            /** The report domain publishes <our domain>._report._dmarc.<its domain> itself (RFC 7489 7.1). */
            dmarcReportsAuthorized: z.boolean().default(false),
        })
        .default({ allowShortQueueLifetime: false, allowMxOutsideDomain: false, dmarcReportsAuthorized: false }),
};

export type RecipientEntry = z.output<typeof sections.recipients>[number];

/**
 * Every recipient as an address (what the relays and the primary accept), and the site of those
 * that have one: the model's readers never see the two spellings of the config.
 */
export function splitRecipients(entries: readonly RecipientEntry[]): { recipients: string[]; recipientSites: Record<string, string>; recipientEntries: readonly RecipientEntry[] } {
    const recipientSites: Record<string, string> = {};
    const recipients = entries.map((entry) => {
        if (typeof entry === "string") return entry;
        // The first site named wins here; rules.ts refuses an address named twice.
        recipientSites[entry.address] ??= entry.site;
        return entry.address;
    });
    // The entries as written stay for the rules, which name each one's path.
    return { recipients, recipientSites, recipientEntries: entries };
}

export const topologySchema = z.strictObject(sections).transform((t) => ({ ...t, ...splitRecipients(t.recipients) }));

export type Topology = z.output<typeof topologySchema>;
export type SiteSpec = z.output<typeof siteSpec>;
export type Primary = Topology["primary"];
export type Relay = Topology["relays"][number];
export type MailHost = Primary | Relay;
export type AwsPrimaryPlacement = z.output<typeof awsPrimaryPlacement>;
export type DockerRelayPlacement = z.output<typeof dockerRelayPlacement>;
export type AwsRelayPlacement = z.output<typeof awsRelayPlacement>;
export type PartnerRelayPlacement = z.output<typeof partnerRelayPlacement>;
