// Pulumi mocks that stand in for the cloud APIs when the program is evaluated offline: deterministic
// ids, documentation-range addresses, and a record of every registration (the mock monitor keeps no
// parent and does not object to duplicate names, so we keep both ourselves).
import * as pulumi from "@pulumi/pulumi";
import { isRpcSecret } from "@pulumi/pulumi/runtime/rpc";
import { createHash } from "node:crypto";

export interface Registration {
    type: string;
    name: string;
    urn: string;
    parentUrn: string;
    /** Provider reference (urn::id) for custom resources with an explicit provider. */
    providerRef: string;
    custom: boolean;
    /** Inputs as registered; secret values are replaced by SECRET unless secrets are shown. */
    inputs: Record<string, unknown>;
    /**
     * The inputs as the program sent them, before the SDK's mock deserialisation: a secret element of a
     * list is still only that element (the SDK would hoist it and hide the whole list), as in the engine.
     */
    sent?: Record<string, unknown>;
    /** The id the mock gave it: another resource's inputs name it where they depend on it. */
    id: string;
    /** Resource options that decide what a change does (see lib/plan/diff.ts). */
    options: ResourceOptionsSeen;
}

export interface ResourceOptionsSeen {
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    ignoreChanges: string[];
    replaceOnChanges: string[];
    /** Earlier names of this resource (same parent), so a rename is recognised as a move. */
    aliases: string[];
}

export const SECRET = "[secret]";

function hash(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}

/** 203.0.113.0/24 (TEST-NET-3): an address that can never be mistaken for a real one. */
function documentationAddress(name: string): string {
    return `203.0.113.${(parseInt(hash(name).slice(0, 4), 16) % 250) + 2}`;
}

/** 2001:db8::/32 (RFC 3849): an IPv6 address that can never be mistaken for a real one either. */
function documentationIpv6(name: string): string {
    return `2001:db8:${hash(name).slice(0, 4).replace(/^0+(?=.)/, "")}::25`;
}

/**
 * A secret input as the plan shows it: hidden, with a short digest of its value so that a diff of two
 * plans still sees that it changed (as `pulumi preview` does), without showing what it is.
 */
export function maskedSecret(value: unknown): string {
    return `${SECRET.slice(0, -1)} ${hash(JSON.stringify(unwrapSecrets(value))).slice(0, 12)}]`;
}

export function revealSecrets(value: unknown): unknown {
    if (isRpcSecret(value)) return maskedSecret((value as { value: unknown }).value);
    if (Array.isArray(value)) return value.map(revealSecrets);
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revealSecrets(v)]));
    }
    return value;
}

function unwrapSecrets(value: unknown): unknown {
    if (isRpcSecret(value)) return unwrapSecrets((value as { value: unknown }).value);
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

/**
 * What the mocked tls provider hands out for every key: a real RSA-2048 public key, made once and kept
 * here (its private half was thrown away), so DKIM records render and verify offline and the plan stays
 * byte-stable; the private key is a stand-in that only looks like a PEM.
 */
export const MOCK_RSA_PUBLIC_KEY_PEM = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyMBz3nVa/B1wgIyeHg1v
YuwYaujYaC046XcqwG4VAsRbBFARqxgrSfWeQFpW1B0nh4ELVdHHdN0Q245+M8VI
dNKap4PwYbjK+EorrMQlmVCucJVHh4DNQMwAZFGovp2Y1qMpWOXo/bWWs4cQhkPf
Jw2VlFufdBb2ainx1CByLMOPqsqzqTIUYL0O8Nq2t7TOouR9LKH6d/KnKzIlzQgj
ih06vlFZQoDY33mlrr9i5/iKQu/wf0EW9AlQDB5KR4eb9Q/1/294cFCN8aHgj+6s
R1yfCtOcf8DSoatb6dpJY/eKmZf4PTBaGudhYH4LaENGoWs6jSIg8Jkup8/JDAR8
RwIDAQAB
-----END PUBLIC KEY-----
`;
export const MOCK_RSA_PRIVATE_KEY_PEM = `-----BEGIN RSA PRIVATE KEY-----\n${Buffer.from("mailcontinuity offline plan: a stand-in, not a key").toString("base64")}\n-----END RSA PRIVATE KEY-----\n`;

/** The region of an explicit AWS provider named `<...>-aws-<region>` (components/mail-continuity.ts), else us-east-1. */
function regionOf(provider: string): string {
    return /-aws-([a-z]{2}(?:-[a-z]+)+-\d)$/.exec(provider)?.[1] ?? "us-east-1";
}

/** The name of the explicit provider a resource names (`urn…::<name>::<id>`), or "" for the default one. */
function providerName(providerRef: string | undefined): string {
    return providerRef?.split("::").slice(-2, -1)[0] ?? "";
}

function fakeState(type: string, name: string, inputs: Record<string, unknown>, provider: string): { id: string; state: Record<string, unknown> } {
    const h = hash(`${type}/${name}`);
    switch (type) {
        case "aws:ec2/eip:Eip": {
            // An Elastic IP belongs to its region (its provider's): the same host moved to another region
            // gets another address, as in AWS.
            const address = documentationAddress(provider === "" ? name : `${name} ${provider}`);
            return { id: `eipalloc-${h.slice(0, 17)}`, state: { ...inputs, publicIp: address, allocationId: `eipalloc-${h.slice(0, 17)}` } };
        }
        case "aws:ebs/volume:Volume":
            return { id: `vol-${h.slice(0, 17)}`, state: inputs };
        case "aws:ec2/instance:Instance": {
            // ipv6AddressCount addresses from the subnet's block: known only once the instance exists.
            const count = Number(inputs.ipv6AddressCount ?? 0);
            const ipv6Addresses = Array.from({ length: count }, (_, i) => documentationIpv6(`${name} ${provider} ${i}`));
            return { id: `i-${h.slice(0, 17)}`, state: count > 0 ? { ...inputs, ipv6Addresses } : inputs };
        }
        case "aws:route53/zone:Zone": {
            const n = parseInt(h.slice(0, 3), 16);
            const nameServers = [`ns-${n}.awsdns-${n % 64}.com`, `ns-${n + 1}.awsdns-${n % 64}.net`, `ns-${n + 2}.awsdns-${n % 64}.org`, `ns-${n + 3}.awsdns-${n % 64}.co.uk`];
            return { id: `Z${h.slice(0, 20).toUpperCase()}`, state: { ...inputs, zoneId: `Z${h.slice(0, 20).toUpperCase()}`, nameServers } };
        }
        case "docker:index/image:Image":
            // With skipPush the provider reports the local image id as repoDigest; it changes with every build.
            return { id: `${name}-id`, state: { ...inputs, repoDigest: `sha256:${hash(JSON.stringify(inputs))}` } };
        case "aws:iam/role:Role":
            // AWS names an IAM role by its name: the id is the name, the ARN ends with it.
            return { id: `${name}-id`, state: { ...inputs, name: `${name}-id`, arn: `arn:aws:iam::123456789012:role/${name}-id` } };
        case "aws:iam/instanceProfile:InstanceProfile":
            // Named like a role: the instance names its profile by name.
            return { id: `${name}-id`, state: { ...inputs, name: `${name}-id`, arn: `arn:aws:iam::123456789012:instance-profile/${name}-id` } };
        case "aws:iam/user:User":
            return { id: `${name}-id`, state: { ...inputs, name: `${name}-id`, arn: `arn:aws:iam::123456789012:user${String(inputs.path ?? "/")}${name}-id` } };
        case "aws:iam/accessKey:AccessKey":
            // The id is the access key id; the secret a made-up value the plan must only ever show masked.
            return { id: `AKIA${h.slice(0, 16).toUpperCase()}`, state: { ...inputs, secret: `mock-secret-${h.slice(16, 56)}`, status: "Active" } };
        case "tls:index/privateKey:PrivateKey":
            return { id: `${name}-id`, state: { ...inputs, privateKeyPem: MOCK_RSA_PRIVATE_KEY_PEM, publicKeyPem: MOCK_RSA_PUBLIC_KEY_PEM } };
        case "aws:s3/bucket:Bucket": {
            // Auto-named by the provider: the resource name and a random suffix.
            const bucket = `${name}-${h.slice(0, 7)}`;
            return { id: bucket, state: { ...inputs, bucket, arn: `arn:aws:s3:::${bucket}`, bucketRegionalDomainName: `${bucket}.s3.${regionOf(provider)}.amazonaws.com` } };
        }
        case "aws:cloudfront/originAccessControl:OriginAccessControl":
            return { id: `E${h.slice(0, 13).toUpperCase()}`, state: inputs };
        case "aws:cloudfront/distribution:Distribution": {
            const id = `E${h.slice(0, 13).toUpperCase()}`;
            return { id, state: { ...inputs, arn: `arn:aws:cloudfront::123456789012:distribution/${id}`, domainName: `d${h.slice(0, 13)}.cloudfront.net`, hostedZoneId: "Z2FDTNDATAQYW2" } };
        }
        case "aws:acm/certificate:Certificate": {
            // One CNAME per name, as ACM gives it: fixed per account and name, so the same for a new certificate.
            const names = [...new Set([String(inputs.domainName), ...((inputs.subjectAlternativeNames as string[] | undefined) ?? [])])];
            const domainValidationOptions = names.map((n) => ({
                domainName: n,
                resourceRecordName: `_${hash(`name ${n}`).slice(0, 32)}.${n}.`,
                resourceRecordType: "CNAME",
                resourceRecordValue: `_${hash(`value ${n}`).slice(0, 32)}.${hash(`zone ${n}`).slice(0, 10)}.acm-validations.aws.`,
            }));
            const arn = `arn:aws:acm:${regionOf(provider)}:123456789012:certificate/${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
            return { id: arn, state: { ...inputs, arn, domainValidationOptions } };
        }
        case "aws:sns/topic:Topic":
            return { id: `arn:aws:sns:us-east-1:123456789012:${name}`, state: { ...inputs, arn: `arn:aws:sns:us-east-1:123456789012:${name}` } };
        default:
            return { id: `${name}-id`, state: inputs };
    }
}

const CALLS: Record<string, (inputs: Record<string, unknown>) => Record<string, unknown>> = {
    // The configured AMI, found when the architecture filter matches how the id was written for it:
    // the offline plan cannot ask AWS, so it believes the config.
    "aws:ec2/getAmi:getAmi": (inputs) => {
        const filters = (inputs.filters as { name: string; values: string[] }[] | undefined) ?? [];
        const id = filters.find((f) => f.name === "image-id")?.values[0] ?? "ami-0mock";
        const architecture = filters.find((f) => f.name === "architecture")?.values[0] ?? "x86_64";
        return { id, imageId: id, architecture };
    },
    // The snapshot a restore names, found as configured; 8 GiB (the smallest volumeSizeGiB), so that the
    // size check passes offline: only AWS knows the real size.
    "aws:ebs/getSnapshot:getSnapshot": (inputs) => {
        const id = (inputs.snapshotIds as string[] | undefined)?.[0] ?? "snap-0mock";
        return { id, snapshotId: id, encrypted: true, volumeSize: 8, state: "completed" };
    },
    // A configured subnet, or the zone's default one (a filter on default-for-az): found, with an IPv6
    // block, because the offline plan cannot ask AWS whether it has one (the preview does).
    "aws:ec2/getSubnet:getSubnet": (inputs) => {
        const id = inputs.id ?? `subnet-${hash(JSON.stringify(inputs.filters ?? [])).slice(0, 17)}`;
        const zone = ((inputs.filters as { name: string; values: string[] }[] | undefined) ?? []).find((f) => f.name === "availability-zone")?.values[0];
        return {
            id,
            availabilityZone: zone ?? "mock-zone-b",
            vpcId: `vpc-${hash(String(inputs.id)).slice(0, 17)}`,
            ipv6CidrBlock: `2001:db8:${hash(String(id)).slice(0, 4).replace(/^0+(?=.)/, "")}::/64`,
        };
    },
    "cloudflare:index/getZone:getZone": (inputs) => ({
        zoneId: inputs.zoneId,
        id: inputs.zoneId,
        nameServers: ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
    }),
};

interface MonitorRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getProvider(): string;
    getCustom(): boolean;
    getProtect(): boolean | undefined;
    getRetainondelete(): boolean | undefined;
    getDeletebeforereplace(): boolean;
    getIgnorechangesList(): string[];
    getReplaceonchangesList(): string[];
    getAliasesList(): { getSpec(): { getName(): string } | undefined }[];
    getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
}

/**
 * Installs the mocks and returns the list that fills up as the program registers resources.
 * Call before the program is loaded.
 */
export async function installPlanMocks(project: string, stack: string, options: { showSecrets?: boolean } = {}): Promise<Registration[]> {
    const registrations: Registration[] = [];
    const pending = new Map<string, Registration>();
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                const key = `${args.type}::${args.name}`;
                const registration = pending.get(key);
                const inputs = registration?.sent ?? args.inputs;
                if (registration) registration.inputs = (options.showSecrets ? unwrapSecrets(inputs) : revealSecrets(inputs)) as Record<string, unknown>;
                const fake = fakeState(args.type, args.name, unwrapSecrets(args.inputs) as Record<string, unknown>, providerName(args.provider));
                if (registration) registration.id = fake.id;
                return fake;
            },
            call(args) {
                const fake = CALLS[args.token];
                if (fake === undefined) throw new Error(`the offline plan has no mock for ${args.token}; add one to lib/plan/mocks.ts`);
                return fake(args.inputs as Record<string, unknown>);
            },
        },
        project,
        stack,
        false,
    );
    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: MonitorRequest, cb: (err: unknown, res: unknown) => void): Promise<void> };
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, callback) => {
        const registration: Registration = {
            type: req.getType(),
            name: req.getName(),
            urn: "",
            parentUrn: req.getParent(),
            providerRef: req.getProvider(),
            custom: req.getCustom(),
            inputs: {},
            id: "",
            options: {
                protect: req.getProtect() ?? false,
                retainOnDelete: req.getRetainondelete() ?? false,
                deleteBeforeReplace: req.getDeletebeforereplace(),
                ignoreChanges: req.getIgnorechangesList(),
                replaceOnChanges: req.getReplaceonchangesList(),
                aliases: req
                    .getAliasesList()
                    .map((a) => a.getSpec()?.getName() ?? "")
                    .filter((n) => n !== ""),
            },
        };
        const sent = req.getObject()?.toJavaScript();
        if (sent !== undefined) registration.sent = sent;
        registrations.push(registration);
        pending.set(`${registration.type}::${registration.name}`, registration);
        return original(req, (err, res) => {
            const urn = (res as { getUrn?: () => string } | undefined)?.getUrn?.();
            if (urn !== undefined) registration.urn = urn;
            callback(err, res);
        });
    };
    return registrations;
}
