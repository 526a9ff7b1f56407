// The mail-safety rules, apart from the pack's entry (index.ts) so that tests call them directly.
// Resources are matched by type token rather than by SDK class, so the pack needs no provider SDK.
import type {
    EnforcementLevel,
    PolicyResource,
    ResourceValidation,
    ResourceValidationPolicy,
    StackValidation,
    StackValidationPolicy,
} from "@pulumi/policy";
import { CLOUDFLARE_RECORD, ROUTE53_RECORD, UNKNOWN, dnsRows, known, managedZones, rowKey, zoneOf, type DnsRow } from "./dns";

export const EBS_VOLUME = "aws:ebs/volume:Volume";
export const EC2_INSTANCE = "aws:ec2/instance:Instance";
export const SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup";
export const SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule";
export const INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
export const DOCKER_VOLUME = "docker:index/volume:Volume";
export const PRIMARY_COMPONENT = "mailcontinuity:primary:PrimaryMailHost";
export const RELAY_COMPONENT = "mailcontinuity:relay:RelayNode";

/** Every rule blocks by default; the pack's config can lower any of them (README: Policy pack). */
const DEFAULT_LEVEL: EnforcementLevel = "mandatory";

// --- 1. mail records never proxied -------------------------------------------------------------

const MAIL_RECORD_TYPES = ["MX", "A", "AAAA", "TXT"];

/** Cloudflare's proxy answers with its own addresses and does not carry SMTP. */
export const validateMailRecordsNotProxied: ResourceValidation = (args, reportViolation) => {
    if (args.type !== CLOUDFLARE_RECORD) return;
    const type = String(args.props.type).toUpperCase();
    if (MAIL_RECORD_TYPES.includes(type) && args.props.proxied !== false) {
        reportViolation(`${type} record ${args.props.name} must set proxied: false (found ${String(args.props.proxied)}): a proxied record answers with Cloudflare's addresses, which do not accept mail`);
    }
};

// --- 2. every MX host has the same A record at both providers ------------------------------------

function addressesOf(rows: readonly DnsRow[], provider: DnsRow["provider"], host: string): string[] {
    return [...new Set(rows.filter((r) => r.provider === provider && r.type === "A" && r.name === host).map((r) => r.content))].sort();
}

export const validateMxHostsAddressed: StackValidation = (args, reportViolation) => {
    const zones = managedZones(args.resources);
    const rows = dnsRows(args.resources);
    const mxTargets = new Map<string, string>();
    for (const row of rows) {
        if (row.type === "MX" && row.content !== UNKNOWN && zoneOf(row.content, zones) !== undefined && !mxTargets.has(row.content)) mxTargets.set(row.content, row.urn);
    }
    for (const [host, urn] of mxTargets) {
        const cloudflare = addressesOf(rows, "cloudflare", host);
        const route53 = addressesOf(rows, "route53", host);
        if (cloudflare.length === 0 || route53.length === 0) {
            const missing = [cloudflare.length === 0 ? "Cloudflare" : "", route53.length === 0 ? "Route53" : ""].filter((s) => s !== "").join(" and ");
            reportViolation(`MX host ${host} has no A record at ${missing}: senders resolving through that provider cannot reach it`, urn);
        } else if (!cloudflare.includes(UNKNOWN) && !route53.includes(UNKNOWN) && cloudflare.join() !== route53.join()) {
            reportViolation(`MX host ${host} has A ${cloudflare.join(", ")} at Cloudflare but ${route53.join(", ")} at Route53: senders would reach a different host depending on which provider answers`, urn);
        }
    }
};

// --- 3. SSH only from the admin network ----------------------------------------------------------

export interface SshConfig {
    /** The widest IPv4 prefix SSH may be open to (lib/topology/rules.ts refuses wider than a /8). */
    maxAdminPrefix?: number;
    /** The same for IPv6 (a /32 is a whole ISP's allocation). */
    maxAdminPrefixIpv6?: number;
}
export const DEFAULT_MAX_ADMIN_PREFIX = 8;
export const DEFAULT_MAX_ADMIN_PREFIX_IPV6 = 32;
const SSH_PORT = 22;

function coversSsh(protocol: unknown, fromPort: unknown, toPort: unknown): boolean {
    const p = String(protocol ?? "").toLowerCase();
    if (p === "-1" || p === "all") return true;
    if (p !== "tcp" && p !== "6") return false;
    return Number(fromPort) <= SSH_PORT && SSH_PORT <= Number(toPort);
}

/** Why `cidr` is too wide a source for SSH, or undefined when it is narrow enough. */
export function sshSourceProblem(cidr: string, family: "ipv4" | "ipv6", config: SshConfig): string | undefined {
    const [address, prefixText] = cidr.trim().split("/");
    const prefix = Number(prefixText);
    const bits = family === "ipv4" ? 32 : 128;
    if (address === "" || prefixText === undefined || !/^\d+$/.test(prefixText) || prefix > bits) return `${cidr} is not an ${family === "ipv4" ? "IPv4" : "IPv6"} CIDR`;
    if (prefix === 0) return `${cidr} opens SSH to the whole Internet`;
    const widest = family === "ipv4" ? (config.maxAdminPrefix ?? DEFAULT_MAX_ADMIN_PREFIX) : (config.maxAdminPrefixIpv6 ?? DEFAULT_MAX_ADMIN_PREFIX_IPV6);
    if (prefix < widest) return `${cidr} is wider than the admin range allows (at most a /${widest}; usually the admin network's /32 or /24)`;
    return undefined;
}

export const validateSshIngress: ResourceValidation = (args, reportViolation) => {
    const config = args.getConfig<SshConfig>();
    const check = (where: string, cidrs: unknown, family: "ipv4" | "ipv6") => {
        const list: unknown[] = Array.isArray(cidrs) ? cidrs : cidrs === undefined || cidrs === null ? [] : [cidrs];
        for (const cidr of list) {
            const problem = sshSourceProblem(String(cidr), family, config);
            if (problem !== undefined) reportViolation(`SSH ingress (${where}): ${problem}`);
        }
    };
    const p = args.props;
    if (args.type === INGRESS_RULE) {
        if (!coversSsh(p.ipProtocol, p.fromPort, p.toPort)) return;
        check(`${p.ipProtocol} ${p.fromPort ?? "*"}-${p.toPort ?? "*"}`, p.cidrIpv4, "ipv4");
        check(`${p.ipProtocol} ${p.fromPort ?? "*"}-${p.toPort ?? "*"}`, p.cidrIpv6, "ipv6");
    } else if (args.type === SECURITY_GROUP) {
        const ingress: Record<string, unknown>[] = Array.isArray(p.ingress) ? p.ingress : [];
        ingress.forEach((rule, i) => {
            if (!coversSsh(rule.protocol, rule.fromPort, rule.toPort)) return;
            check(`inline ingress[${i}]`, rule.cidrBlocks, "ipv4");
            check(`inline ingress[${i}]`, rule.ipv6CidrBlocks, "ipv6");
        });
    } else if (args.type === SECURITY_GROUP_RULE && p.type === "ingress") {
        if (!coversSsh(p.protocol, p.fromPort, p.toPort)) return;
        check("security group rule", p.cidrBlocks, "ipv4");
        check("security group rule", p.ipv6CidrBlocks, "ipv6");
    }
};

// --- 4. disks encrypted --------------------------------------------------------------------------

export const validateDisksEncrypted: ResourceValidation = (args, reportViolation) => {
    const p = args.props;
    if (args.type === EBS_VOLUME) {
        if (p.encrypted !== true) reportViolation(`EBS volume ${args.name} must set encrypted: true: it holds mail`);
    } else if (args.type === EC2_INSTANCE) {
        if (p.rootBlockDevice?.encrypted !== true) reportViolation(`instance ${args.name} must set rootBlockDevice.encrypted: true: its root disk holds logs and keys`);
        const extra: Record<string, unknown>[] = Array.isArray(p.ebsBlockDevices) ? p.ebsBlockDevices : [];
        for (const device of extra) {
            if (device.encrypted !== true) reportViolation(`instance ${args.name}: ebsBlockDevices ${String(device.deviceName)} must set encrypted: true`);
        }
    }
};

// --- 5. mail and queue volumes protected ---------------------------------------------------------

function isBindMount(props: Record<string, unknown>): boolean {
    const driverOpts = props.driverOpts as Record<string, unknown> | undefined;
    return String(driverOpts?.o ?? "")
        .split(",")
        .map((o) => o.trim())
        .includes("bind");
}

/**
 * `protect` is what @pulumi/policy 1.21.0 passes (PolicyResourceOptions has no retainOnDelete, nor has
 * the engine's analyzer protocol), so it is what this rule requires; a retainOnDelete, should a later
 * version pass one, counts too.
 */
export const validateVolumesProtected: ResourceValidation = (args, reportViolation) => {
    if (args.type !== EBS_VOLUME && args.type !== DOCKER_VOLUME) return;
    // A bind of a host directory holds nothing itself: on EC2 the EBS volume under it is the one protected.
    if (args.type === DOCKER_VOLUME && isBindMount(args.props)) return;
    const opts = args.opts as typeof args.opts & { retainOnDelete?: boolean };
    if (opts.protect !== true && opts.retainOnDelete !== true) {
        reportViolation(`volume ${args.name} holds mail or a relay's queue: declare it with protect: true (and retainOnDelete: true), so that no destroy or replacement takes the mail with it`);
    }
};

// --- 6. relays outside the primary's region ------------------------------------------------------

/** The component types a URN's resource is nested in, outermost first. */
export function ancestorTypes(urn: string): string[] {
    const qualifiedType = urn.split("::")[2] ?? "";
    return qualifiedType.split("$").slice(0, -1);
}

const REGION_OF_ZONE = /^([a-z]{2}(?:-[a-z]+)+-\d+)/;

/** The instance's region: its own (AWS provider 7), its provider's, or its availability zone's. */
export function regionOf(r: PolicyResource): string | undefined {
    const candidates = [
        known(() => r.props.region),
        known(() => r.provider?.props.region),
        REGION_OF_ZONE.exec(String(known(() => r.props.availabilityZone) ?? ""))?.[1],
    ];
    return candidates.find((c): c is string => typeof c === "string" && c !== "" && c !== UNKNOWN);
}

export const validateRelaysOutsidePrimaryRegion: StackValidation = (args, reportViolation) => {
    const instances = args.resources.filter((r) => r.type === EC2_INSTANCE);
    const primaries = instances.filter((r) => ancestorTypes(r.urn).includes(PRIMARY_COMPONENT));
    const relays = instances.filter((r) => ancestorTypes(r.urn).includes(RELAY_COMPONENT));
    for (const primary of primaries) {
        const primaryRegion = regionOf(primary);
        if (primaryRegion === undefined) continue;
        for (const relay of relays) {
            if (regionOf(relay) === primaryRegion) {
                reportViolation(`relay instance ${relay.name} is in ${primaryRegion}, the primary's region: one regional outage would take both; put the relay in another region`, relay.urn);
            }
        }
    }
};

// --- 7. the same records at both providers -------------------------------------------------------

export const validateDnsIdentical: StackValidation = (args, reportViolation) => {
    const zones = managedZones(args.resources);
    const rows = dnsRows(args.resources).filter((r) => !(r.type === "NS" && zones.includes(r.name)));
    for (const zone of zones) {
        const inThisZone = rows.filter((r) => zoneOf(r.name, zones) === zone);
        const count = (provider: DnsRow["provider"]) => {
            const counts = new Map<string, { n: number; urn: string }>();
            for (const r of inThisZone.filter((r) => r.provider === provider)) {
                const key = rowKey(r);
                counts.set(key, { n: (counts.get(key)?.n ?? 0) + 1, urn: r.urn });
            }
            return counts;
        };
        const cloudflare = count("cloudflare");
        const route53 = count("route53");
        for (const [here, there, name, otherName] of [
            [cloudflare, route53, "Cloudflare", "Route53"],
            [route53, cloudflare, "Route53", "Cloudflare"],
        ] as const) {
            for (const [key, { n, urn }] of here) {
                if ((there.get(key)?.n ?? 0) < n) reportViolation(`zone ${zone}: ${key} is at ${name} but not at ${otherName}; both providers must serve the same records`, urn);
            }
        }
    }
};

// --- 8. DNS credentials write ACME answers only, never in a mail zone ---------------------------------

/** IAM policy documents attached to a role, user or group, or managed. */
export const IAM_POLICY_TYPES = ["aws:iam/rolePolicy:RolePolicy", "aws:iam/userPolicy:UserPolicy", "aws:iam/groupPolicy:GroupPolicy", "aws:iam/policy:Policy"];
const RECORD_NAMES_CONDITION = "route53:changeresourcerecordsetsnormalizedrecordnames";
const HOSTED_ZONE_ARN = /^arn:aws[a-z-]*:route53:::hostedzone\/(.+)$/;

interface Statement {
    Effect?: string;
    Action?: string | string[];
    NotAction?: string | string[];
    Resource?: string | string[];
    Condition?: Record<string, Record<string, unknown>>;
}

const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Whether an IAM action pattern (wildcards included) covers route53:ChangeResourceRecordSets. */
function coversRecordChanges(pattern: string): boolean {
    const re = new RegExp(`^${pattern.toLowerCase().replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    return re.test("route53:changeresourcerecordsets");
}

function statementsOf(document: unknown): Statement[] {
    const parsed = typeof document === "string" ? (JSON.parse(document) as { Statement?: Statement | Statement[] }) : (document as { Statement?: Statement | Statement[] });
    const statements = parsed?.Statement;
    return statements === undefined ? [] : Array.isArray(statements) ? statements : [statements];
}

/**
 * The hosts' ACME credential (components/acme-challenge.ts) may change records in the challenge zone
 * only, and there only its own TXT name: a credential that could write in a zone holding the mail
 * records (MX, the hosts' A records) would let a compromised relay redirect the domain's mail.
 */
export const validateDnsCredentialsScoped: StackValidation = (args, reportViolation) => {
    // The hosted zones that hold mail records: where the stack's Route53 MX records live.
    const mailZoneIds = new Set(
        args.resources
            .filter((r) => r.type === ROUTE53_RECORD && String(known(() => r.props.type)).toUpperCase() === "MX")
            .map((r) => String(known(() => r.props.zoneId)))
            .filter((id) => id !== UNKNOWN),
    );
    for (const r of args.resources.filter((x) => IAM_POLICY_TYPES.includes(x.type))) {
        const document = known(() => r.props.policy);
        // Not known before the challenge zone exists (its id is in the document): judged after the up.
        if (document === UNKNOWN || document === undefined) continue;
        let statements: Statement[];
        try {
            statements = statementsOf(document);
        } catch {
            reportViolation(`IAM policy ${r.name} is not a JSON policy document`, r.urn);
            continue;
        }
        for (const st of statements) {
            if (st.Effect !== "Allow") continue;
            const grants = asList(st.Action).some(coversRecordChanges) || (st.NotAction !== undefined && !asList(st.NotAction).some(coversRecordChanges));
            if (!grants) continue;
            for (const resource of asList(st.Resource)) {
                const zone = HOSTED_ZONE_ARN.exec(resource)?.[1];
                if (resource === "*" || zone === undefined || zone.includes("*")) {
                    reportViolation(`IAM policy ${r.name} lets its holder change records in every hosted zone (${resource}), the mail zones included: name the ACME challenge zone alone`, r.urn);
                } else if (mailZoneIds.has(zone.replace(/^\/?hostedzone\//, ""))) {
                    reportViolation(`IAM policy ${r.name} lets its holder change records in hosted zone ${zone}, which holds the domain's MX records: a host's credential may write in the ACME challenge zone only`, r.urn);
                }
            }
            const names = Object.entries(st.Condition ?? {}).some(([operator, keys]) => /^forallvalues:stringequals$/i.test(operator) && Object.keys(keys).some((k) => k.toLowerCase() === RECORD_NAMES_CONDITION));
            if (!names) {
                reportViolation(`IAM policy ${r.name} lets its holder change any record of its zone: restrict it to the host's own challenge name (ForAllValues:StringEquals on route53:ChangeResourceRecordSetsNormalizedRecordNames)`, r.urn);
            }
        }
    }
};

// --- the pack's list -----------------------------------------------------------------------------

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
    {
        name: "mail-records-not-proxied",
        description: "Cloudflare MX, A, AAAA and TXT records are DNS only (proxied: false).",
        enforcementLevel: DEFAULT_LEVEL,
        validateResource: validateMailRecordsNotProxied,
    },
    {
        name: "mx-hosts-addressed-at-both-providers",
        description: "Every MX host inside a managed zone has the same A record at Cloudflare and at Route53.",
        enforcementLevel: DEFAULT_LEVEL,
        validateStack: validateMxHostsAddressed,
    },
    {
        name: "ssh-from-admin-range-only",
        description: "No security group opens port 22 to 0.0.0.0/0, ::/0 or anything wider than the admin range (maxAdminPrefix).",
        enforcementLevel: DEFAULT_LEVEL,
        configSchema: {
            properties: {
                maxAdminPrefix: { type: "integer", minimum: 1, maximum: 32, default: DEFAULT_MAX_ADMIN_PREFIX, description: "widest IPv4 prefix SSH may be open to" },
                maxAdminPrefixIpv6: { type: "integer", minimum: 1, maximum: 128, default: DEFAULT_MAX_ADMIN_PREFIX_IPV6, description: "widest IPv6 prefix SSH may be open to" },
            },
        },
        validateResource: validateSshIngress,
    },
    {
        name: "disks-encrypted",
        description: "EBS volumes and instances' root (and extra EBS) disks are encrypted.",
        enforcementLevel: DEFAULT_LEVEL,
        validateResource: validateDisksEncrypted,
    },
    {
        name: "mail-volumes-protected",
        description: "EBS volumes and Docker volumes (other than binds of a host directory) that hold mail or a queue are protected.",
        enforcementLevel: DEFAULT_LEVEL,
        validateResource: validateVolumesProtected,
    },
    {
        name: "relays-outside-primary-region",
        description: "No EC2 relay runs in the AWS region of the EC2 primary.",
        enforcementLevel: DEFAULT_LEVEL,
        validateStack: validateRelaysOutsidePrimaryRegion,
    },
    {
        name: "dns-identical-at-both-providers",
        description: "Each managed zone has the same records (name, type, TTL, priority, content) at Cloudflare and Route53, apex NS aside.",
        enforcementLevel: DEFAULT_LEVEL,
        validateStack: validateDnsIdentical,
    },
    {
        name: "dns-credentials-challenge-zone-only",
        description: "An IAM policy that may change Route53 records names a hosted zone other than the mail zones, and only the record names of its ACME challenge.",
        enforcementLevel: DEFAULT_LEVEL,
        validateStack: validateDnsCredentialsScoped,
    },
];

/** Narrows a policy of the list for tests and tools. */
export function isStackPolicy(policy: ResourceValidationPolicy | StackValidationPolicy): policy is StackValidationPolicy {
    return "validateStack" in policy;
}
