// The CrossGuard pack (policy/): each rule with hand-built arguments, the committed stacks' plans,
// and the pack itself served as `pulumi preview --policy-pack policy/` serves it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { PolicyResource, PolicyResourceOptions, ResourceValidation, ResourceValidationArgs, StackValidation } from "@pulumi/policy";
import { unknownCheckingProxy } from "@pulumi/policy";
import * as policyProxy from "@pulumi/policy/proxy";
import * as analyzerRpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzer from "@pulumi/pulumi/proto/analyzer_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import {
    DOCKER_VOLUME,
    EBS_VOLUME,
    EC2_INSTANCE,
    INGRESS_RULE,
    PRIMARY_COMPONENT,
    RELAY_COMPONENT,
    SECURITY_GROUP,
    isStackPolicy,
    policies,
    validateDisksEncrypted,
    validateDnsCredentialsScoped,
    validateDnsIdentical,
    validateMailRecordsNotProxied,
    validateMxHostsAddressed,
    validateRelaysOutsidePrimaryRegion,
    validateSshIngress,
    validateVolumesProtected,
} from "../policy/rules";
import { CLOUDFLARE_RECORD, ROUTE53_RECORD, ROUTE53_ZONE } from "../policy/dns";
import { parseTopology } from "../lib/topology/validate";
import { acmeChallengePolicy } from "../lib/render/acme";
import { ROOT, rawTopology, runPlan, stackNames } from "./helpers";

type Props = Record<string, unknown>;

// What @pulumi/policy puts where a preview does not know a string yet (exported, but not in its typings).
const unknownStringValue = (policyProxy as unknown as { unknownStringValue: unknown }).unknownStringValue;

const STACK_URN = "urn:pulumi:prod::mailcontinuity::";
const urnOf = (types: string[], name: string) => `${STACK_URN}${types.join("$")}::${name}`;

function options(set: Partial<PolicyResourceOptions> = {}): PolicyResourceOptions {
    return { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [], ...set };
}

/** Shaped like what @pulumi/policy passes a resource validation. */
function resourceArgs(type: string, props: Props, extra: { name?: string; opts?: Partial<PolicyResourceOptions>; config?: object } = {}): ResourceValidationArgs {
    const name = extra.name ?? "r";
    return {
        type,
        props,
        urn: urnOf([type], name),
        name,
        opts: options(extra.opts),
        stackTags: new Map(),
        isType: () => false,
        asType: () => undefined,
        getConfig: <T extends object>() => (extra.config ?? {}) as T,
        notApplicable: (reason?: string) => {
            throw new Error(`not applicable: ${reason}`);
        },
    };
}

function violations(validate: ResourceValidation, args: ResourceValidationArgs): string[] {
    const found: string[] = [];
    void validate(args, (message) => found.push(message));
    return found;
}

interface StackResourceSpec {
    type: string;
    name: string;
    props: Props;
    /** Component types it is nested in, outermost first. */
    ancestors?: string[];
    opts?: Partial<PolicyResourceOptions>;
    provider?: { type: string; name: string; props: Props };
}

function stackResource(spec: StackResourceSpec): PolicyResource {
    const urn = urnOf([...(spec.ancestors ?? []), spec.type], spec.name);
    return {
        type: spec.type,
        name: spec.name,
        props: spec.props,
        urn,
        opts: options(spec.opts),
        ...(spec.provider ? { provider: { ...spec.provider, urn: urnOf([spec.provider.type], spec.provider.name) } } : {}),
        dependencies: [],
        propertyDependencies: {},
        isType: () => false,
        asType: () => undefined,
    };
}

function stackViolations(validate: StackValidation, resources: PolicyResource[]): { message: string; urn?: string }[] {
    const found: { message: string; urn?: string }[] = [];
    void validate(
        {
            resources,
            stackTags: new Map(),
            getConfig: <T extends object>() => ({}) as T,
            notApplicable: (reason?: string) => {
                throw new Error(`not applicable: ${reason}`);
            },
        },
        (message, urn) => found.push({ message, ...(urn !== undefined ? { urn } : {}) }),
    );
    return found;
}

// A small zone as the DNS component declares it: MX 10/20, both hosts' A records, SPF, apex NS.
const cf = (name: string, type: string, content: string, extra: Props = {}): StackResourceSpec => ({
    type: CLOUDFLARE_RECORD,
    name: `cf-${name}-${type}-${content}`,
    props: { zoneId: "023e105f4ecef8ad9ca31a8372d0c353", name, type, ttl: 300, content, proxied: false, ...extra },
});
const r53 = (name: string, type: string, records: string[], extra: Props = {}): StackResourceSpec => ({
    type: ROUTE53_RECORD,
    name: `r53-${name}-${type}`,
    props: { zoneId: "Z790D42237A76913B5119", name, type, ttl: 300, records, ...extra },
});

function zoneSpecs(): StackResourceSpec[] {
    return [
        { type: ROUTE53_ZONE, name: "r53-zone", props: { name: "example.com", zoneId: "Z790D42237A76913B5119" } },
        cf("example.com", "MX", "mail.example.com", { priority: 10 }),
        cf("example.com", "MX", "mx2.example.com", { priority: 20 }),
        cf("mail.example.com", "A", "203.0.113.10"),
        cf("mx2.example.com", "A", "198.51.100.20"),
        cf("example.com", "TXT", "v=spf1 mx ~all"),
        cf("example.com", "NS", "ns-1.awsdns-01.org", { ttl: 86400 }),
        r53("example.com", "MX", ["10 mail.example.com", "20 mx2.example.com."]),
        r53("mail.example.com", "A", ["203.0.113.10"]),
        r53("mx2.example.com", "A", ["198.51.100.20"]),
        r53("example.com", "TXT", ['"v=spf1 mx ~all"']),
        r53("example.com", "NS", ["ada.ns.cloudflare.com", "ns-1.awsdns-01.org"], { ttl: 86400 }),
    ];
}
const zone = (change: (specs: StackResourceSpec[]) => void = () => {}): PolicyResource[] => {
    const specs = zoneSpecs();
    change(specs);
    return specs.map(stackResource);
};
const withName = (specs: StackResourceSpec[], name: string) => {
    const spec = specs.find((s) => s.name === name);
    assert.ok(spec, `no ${name} in the fixture`);
    return spec;
};

describe("policy pack rules", () => {
    describe("mail-records-not-proxied", () => {
        it("passes DNS-only mail records (and leaves other types alone)", () => {
            for (const type of ["MX", "A", "AAAA", "TXT"]) assert.deepEqual(violations(validateMailRecordsNotProxied, resourceArgs(CLOUDFLARE_RECORD, { name: "example.com", type, proxied: false })), []);
            assert.deepEqual(violations(validateMailRecordsNotProxied, resourceArgs(CLOUDFLARE_RECORD, { name: "www.example.com", type: "CNAME", proxied: true })), []);
        });
        it("fails a proxied A record and one that leaves proxied unset", () => {
            assert.match(violations(validateMailRecordsNotProxied, resourceArgs(CLOUDFLARE_RECORD, { name: "mail.example.com", type: "A", proxied: true }))[0], /A record mail\.example\.com must set proxied: false/);
            assert.equal(violations(validateMailRecordsNotProxied, resourceArgs(CLOUDFLARE_RECORD, { name: "example.com", type: "TXT" })).length, 1);
        });
    });

    describe("mx-hosts-addressed-at-both-providers", () => {
        it("passes when each MX host has the same A record at both providers", () => {
            assert.deepEqual(stackViolations(validateMxHostsAddressed, zone()), []);
        });
        it("fails an MX host missing at Route53, and one whose addresses differ", () => {
            const found = stackViolations(
                validateMxHostsAddressed,
                zone((specs) => {
                    specs.splice(specs.indexOf(withName(specs, "r53-mx2.example.com-A")), 1);
                    withName(specs, "cf-mail.example.com-A-203.0.113.10").props.content = "203.0.113.11";
                }),
            );
            assert.equal(found.length, 2, JSON.stringify(found));
            assert.match(found.find((v) => v.message.includes("mx2"))!.message, /mx2\.example\.com has no A record at Route53/);
            assert.match(found.find((v) => v.message.includes("mail.example.com"))!.message, /203\.0\.113\.11 at Cloudflare but 203\.0\.113\.10 at Route53/);
            assert.ok(found.every((v) => v.urn?.includes(CLOUDFLARE_RECORD)), "names the MX record");
        });
        it("ignores MX hosts outside the managed zones", () => {
            const resources = zone((specs) => specs.push(cf("example.com", "MX", "mx.example.net", { priority: 40 })));
            assert.deepEqual(stackViolations(validateMxHostsAddressed, resources), []);
        });
    });

    describe("ssh-from-admin-range-only", () => {
        const ssh = (props: Props, config: object = {}) =>
            violations(validateSshIngress, resourceArgs(INGRESS_RULE, { ipProtocol: "tcp", fromPort: 22, toPort: 22, ...props }, { config }));
        it("passes the admin network and leaves port 25 from anywhere alone", () => {
            assert.deepEqual(ssh({ cidrIpv4: "203.0.113.0/24" }), []);
            assert.deepEqual(ssh({ cidrIpv4: "10.0.0.0/8" }), []);
            assert.deepEqual(ssh({ fromPort: 25, toPort: 25, cidrIpv4: "0.0.0.0/0" }), []);
            assert.deepEqual(ssh({ fromPort: 25, toPort: 25, cidrIpv6: "::/0" }), []);
        });
        it("fails the whole Internet, a range wider than maxAdminPrefix, and all-protocol rules", () => {
            assert.match(ssh({ cidrIpv4: "0.0.0.0/0" })[0], /0\.0\.0\.0\/0 opens SSH to the whole Internet/);
            assert.match(ssh({ cidrIpv6: "::/0" })[0], /::\/0 opens SSH to the whole Internet/);
            assert.match(ssh({ cidrIpv4: "10.0.0.0/7" })[0], /wider than the admin range allows \(at most a \/8/);
            assert.match(ssh({ cidrIpv4: "10.0.0.0/12" }, { maxAdminPrefix: 16 })[0], /at most a \/16/);
            assert.equal(ssh({ ipProtocol: "-1", fromPort: undefined, toPort: undefined, cidrIpv4: "0.0.0.0/0" }).length, 1);
            assert.equal(ssh({ fromPort: 0, toPort: 1024, cidrIpv4: "0.0.0.0/0" }).length, 1);
        });
        it("checks a security group's inline ingress", () => {
            const group = (cidrBlocks: string[]) => violations(validateSshIngress, resourceArgs(SECURITY_GROUP, { ingress: [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks }] }));
            assert.deepEqual(group(["203.0.113.4/32"]), []);
            assert.match(group(["203.0.113.4/32", "0.0.0.0/0"])[0], /inline ingress\[0\].*whole Internet/);
        });
        it("defaults to the topology's limit: a /8 passes and a /7 fails both", () => {
            const withCidr = (cidr: string) => {
                const raw = rawTopology("prod") as { primary: { placement: { adminSshCidr: string } } };
                raw.primary.placement.adminSshCidr = cidr;
                return raw;
            };
            assert.doesNotThrow(() => parseTopology(withCidr("10.0.0.0/8")));
            assert.deepEqual(ssh({ cidrIpv4: "10.0.0.0/8" }), []);
            assert.throws(() => parseTopology(withCidr("10.0.0.0/7")), /adminSshCidr/);
            assert.equal(ssh({ cidrIpv4: "10.0.0.0/7" }).length, 1);
        });
    });

    describe("disks-encrypted", () => {
        it("passes encrypted volumes and root disks", () => {
            assert.deepEqual(violations(validateDisksEncrypted, resourceArgs(EBS_VOLUME, { size: 50, encrypted: true })), []);
            assert.deepEqual(violations(validateDisksEncrypted, resourceArgs(EC2_INSTANCE, { rootBlockDevice: { encrypted: true } })), []);
        });
        it("fails an unencrypted volume, and an instance without an encrypted root disk", () => {
            assert.match(violations(validateDisksEncrypted, resourceArgs(EBS_VOLUME, { size: 50 }, { name: "mail-vol" }))[0], /EBS volume mail-vol must set encrypted: true/);
            assert.match(violations(validateDisksEncrypted, resourceArgs(EC2_INSTANCE, { rootBlockDevice: { volumeSize: 16 } }, { name: "vm" }))[0], /vm must set rootBlockDevice\.encrypted/);
            assert.equal(violations(validateDisksEncrypted, resourceArgs(EC2_INSTANCE, {})).length, 1);
        });
    });

    describe("mail-volumes-protected", () => {
        it("passes protected volumes, and a Docker bind of a host directory unprotected", () => {
            assert.deepEqual(violations(validateVolumesProtected, resourceArgs(EBS_VOLUME, { encrypted: true }, { opts: { protect: true } })), []);
            assert.deepEqual(violations(validateVolumesProtected, resourceArgs(DOCKER_VOLUME, { name: "q" }, { opts: { protect: true } })), []);
            assert.deepEqual(violations(validateVolumesProtected, resourceArgs(DOCKER_VOLUME, { name: "q", driverOpts: { type: "none", o: "bind", device: "/srv/relay-queue" } })), []);
        });
        it("fails an unprotected EBS volume and an unprotected Docker volume", () => {
            assert.match(violations(validateVolumesProtected, resourceArgs(EBS_VOLUME, { encrypted: true }, { name: "mail-vol" }))[0], /mail-vol holds mail.*protect: true/);
            assert.equal(violations(validateVolumesProtected, resourceArgs(DOCKER_VOLUME, { name: "q" })).length, 1);
        });
    });

    describe("relays-outside-primary-region", () => {
        const instance = (name: string, component: string, region: string, how: "provider" | "zone"): PolicyResource =>
            stackResource({
                type: EC2_INSTANCE,
                name,
                ancestors: ["mailcontinuity:index:MailContinuity", component],
                props: how === "zone" ? { availabilityZone: `${region}a` } : {},
                ...(how === "provider" ? { provider: { type: "pulumi:providers:aws", name: `aws-${region}`, props: { region } } } : {}),
            });
        it("passes a relay in another region", () => {
            const resources = [instance("mail-vm", PRIMARY_COMPONENT, "eu-central-1", "provider"), instance("mx3-vm", RELAY_COMPONENT, "us-east-2", "provider")];
            assert.deepEqual(stackViolations(validateRelaysOutsidePrimaryRegion, resources), []);
        });
        it("fails a relay in the primary's region, by provider or by availability zone", () => {
            const resources = [instance("mail-vm", PRIMARY_COMPONENT, "eu-central-1", "provider"), instance("mx3-vm", RELAY_COMPONENT, "eu-central-1", "zone")];
            const found = stackViolations(validateRelaysOutsidePrimaryRegion, resources);
            assert.equal(found.length, 1);
            assert.match(found[0].message, /relay instance mx3-vm is in eu-central-1, the primary's region/);
            assert.equal(found[0].urn, resources[1].urn);
        });
    });

    describe("dns-identical-at-both-providers", () => {
        it("passes the same records (Route53's MX syntax, quoted TXT, apex NS aside)", () => {
            assert.deepEqual(stackViolations(validateDnsIdentical, zone()), []);
        });
        it("fails a record at one provider only, a TTL that differs and an MX priority that differs", () => {
            const found = stackViolations(
                validateDnsIdentical,
                zone((specs) => {
                    specs.push(cf("_dmarc.example.com", "TXT", "v=DMARC1; p=none"));
                    withName(specs, "r53-mail.example.com-A").props.ttl = 60;
                    withName(specs, "r53-example.com-MX").props.records = ["10 mail.example.com", "30 mx2.example.com"];
                }),
            ).map((v) => v.message);
            assert.ok(found.some((m) => /_dmarc\.example\.com TXT ttl=300 v=DMARC1; p=none is at Cloudflare but not at Route53/.test(m)), found.join("\n"));
            assert.ok(found.some((m) => /mail\.example\.com A ttl=60 203\.0\.113\.10 is at Route53 but not at Cloudflare/.test(m)), found.join("\n"));
            assert.ok(found.some((m) => /example\.com MX ttl=300 prio=30 mx2\.example\.com is at Route53/.test(m)), found.join("\n"));
            assert.equal(found.length, 5, found.join("\n"));
        });
        it("reads a long TXT value (a DKIM key) in each provider's syntax as the same text", () => {
            const key = `v=DKIM1; k=rsa; p=${"A".repeat(400)}`;
            const chunks = [key.slice(0, 255), key.slice(255)];
            const withKey = (cloudflare: string) =>
                zone((specs) => specs.push(cf("mc2026._domainkey.example.com", "TXT", cloudflare), r53("mc2026._domainkey.example.com", "TXT", [chunks.join('""')])));
            assert.deepEqual(stackViolations(validateDnsIdentical, withKey(chunks.map((c) => `"${c}"`).join(" "))), []);
            assert.equal(stackViolations(validateDnsIdentical, withKey(`"${chunks[0]}"`)).length, 2, "a key cut short at one provider differs");
        });
        it("compares records whose names only the deployment knows (ACM's validation CNAMEs) as equal during a first preview", () => {
            const resources = zone((specs) =>
                specs.push(
                    cf("_x.mta-sts.example.com", "CNAME", "_y.acm-validations.aws", { name: unknownStringValue, content: unknownStringValue }),
                    r53("_x.mta-sts.example.com", "CNAME", ["_y.acm-validations.aws"], { name: unknownStringValue, records: [unknownStringValue] }),
                ),
            ).map((r) => (String(r.name).includes("acm-validations") || String(r.name).startsWith("r53-_x") ? { ...r, props: unknownCheckingProxy(r.props) } : r));
            assert.deepEqual(stackViolations(validateDnsIdentical, resources), []);
        });
        it("compares what a preview cannot know yet as equal at both providers", () => {
            const resources = zone().map((r) => (r.name.includes("mx2.example.com-A") ? { ...r, props: unknownCheckingProxy({ ...r.props, content: unknownStringValue, records: [unknownStringValue] }) } : r));
            assert.deepEqual(stackViolations(validateDnsIdentical, resources), []);
            assert.deepEqual(stackViolations(validateMxHostsAddressed, resources), []);
        });
    });

    describe("dns-credentials-challenge-zone-only", () => {
        const MAIL_ZONE = "Z790D42237A76913B5119";
        const CHALLENGE_ZONE = "Z837561B987D16FCC5E09";
        const names = ["mx2-example-com.acme-challenge.example.com"];
        const withPolicy = (policy: unknown, type = "aws:iam/userPolicy:UserPolicy") =>
            zone((specs) => specs.push({ type, name: "acme-access", props: { user: "mx2-acme", policy } }));
        const found = (policy: unknown, type?: string) => stackViolations(validateDnsCredentialsScoped, withPolicy(policy, type)).map((v) => v.message);

        it("passes the hosts' ACME policy: the challenge zone, its own name, TXT only", () => {
            assert.deepEqual(found(acmeChallengePolicy(CHALLENGE_ZONE, names)), []);
            assert.deepEqual(found(acmeChallengePolicy(CHALLENGE_ZONE, names), "aws:iam/rolePolicy:RolePolicy"), []);
        });
        it("fails the same rights in the zone that holds the MX records", () => {
            const [message, ...rest] = found(acmeChallengePolicy(MAIL_ZONE, names));
            assert.match(message, /hosted zone Z790D42237A76913B5119, which holds the domain's MX records/);
            assert.deepEqual(rest, []);
        });
        it("fails record changes in every zone, and changes of any name", () => {
            const everywhere = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "route53:*", Resource: "*" }] };
            assert.deepEqual(
                found(everywhere).map((m) => m.replace(/[:(].*$/s, "").trim()),
                ["IAM policy acme-access lets its holder change records in every hosted zone", "IAM policy acme-access lets its holder change any record of its zone"],
            );
            const anyName = { Statement: { Effect: "Allow", Action: ["route53:ChangeResourceRecordSets"], Resource: `arn:aws:route53:::hostedzone/${CHALLENGE_ZONE}` } };
            assert.match(found(anyName)[0], /change any record of its zone/);
            assert.match(found({ Statement: [{ Effect: "Allow", Action: "route53:Change*", Resource: "arn:aws:route53:::hostedzone/*" }] })[0], /every hosted zone/);
        });
        it("leaves read-only rights alone, and waits for a document a preview does not know yet", () => {
            assert.deepEqual(found({ Statement: [{ Effect: "Allow", Action: ["route53:ListResourceRecordSets", "route53:GetChange"], Resource: "*" }] }), []);
            assert.deepEqual(
                stackViolations(validateDnsCredentialsScoped, [...zone(), stackResource({ type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: unknownCheckingProxy({ role: "r", policy: unknownStringValue }) as Props })]),
                [],
            );
        });
    });
});

describe("policy pack", () => {
    it("lists every rule with a name, a description, mandatory by default and a configurable level", () => {
        assert.equal(policies.length, 8);
        const names = policies.map((p) => p.name);
        assert.equal(new Set(names).size, names.length, "names are unique");
        for (const policy of policies) {
            assert.match(policy.name, /^[a-z0-9-]+$/);
            assert.notEqual(policy.name, "all", "reserved for the whole pack's config");
            assert.ok(policy.description.length > 20, `${policy.name} has a description`);
            assert.equal(policy.enforcementLevel, "mandatory", `${policy.name} is mandatory by default`);
            // @pulumi/policy refuses to serve a pack whose config schema claims enforcementLevel: it is
            // the key every policy's config may set.
            assert.equal(policy.configSchema?.properties.enforcementLevel, undefined);
            assert.ok(!policy.configSchema?.required?.includes("enforcementLevel"));
            assert.ok(isStackPolicy(policy) ? typeof policy.validateStack === "function" : typeof policy.validateResource === "function");
        }
    });

    for (const stack of stackNames()) {
        it(`accepts what Pulumi.${stack}.yaml's program declares (offline plan)`, () => {
            const run = runPlan(["--stack", stack, "--json"]);
            assert.equal(run.status, 0, run.stderr);
            const planned = run.plan!.resources;
            const byName = new Map(planned.map((r) => [r.name, r]));
            const ancestors = (parent: string | null): string[] => {
                const p = parent === null ? undefined : byName.get(parent);
                return p === undefined ? [] : [...ancestors(p.parent), p.type];
            };
            const resources = planned.map((r) => {
                const provider = r.provider === null ? undefined : byName.get(r.provider);
                return stackResource({
                    type: r.type,
                    name: r.name,
                    props: r.inputs,
                    ancestors: ancestors(r.parent),
                    opts: { protect: r.options.protect === true },
                    ...(provider ? { provider: { type: provider.type, name: provider.name, props: provider.inputs } } : {}),
                });
            });
            const found: string[] = [];
            for (const policy of policies) {
                if (isStackPolicy(policy)) {
                    found.push(...stackViolations(policy.validateStack, resources).map((v) => `${policy.name}: ${v.message}`));
                } else {
                    for (const r of resources) found.push(...violations(policy.validateResource as ResourceValidation, resourceArgs(r.type, r.props, { name: r.name, opts: r.opts })).map((m) => `${policy.name}: ${m}`));
                }
            }
            assert.deepEqual(found, []);
            assert.ok(resources.some((r) => r.type === CLOUDFLARE_RECORD), "the plan has records to check");
        });
    }

    describe("served as the Pulumi CLI runs it", () => {
        let child: ReturnType<typeof spawn>;
        let client: analyzerRpc.AnalyzerClient;

        before(async () => {
            // What the CLI's language host runs in the pack's directory; it type-checks the pack as it loads.
            child = spawn(process.execPath, [require.resolve("@pulumi/pulumi/cmd/run-policy-pack"), "127.0.0.1:0", "."], { cwd: join(ROOT, "policy"), stdio: ["ignore", "pipe", "pipe"] });
            let stderr = "";
            child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
            const port = await new Promise<string>((resolve, reject) => {
                child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()));
                child.once("exit", (code) => reject(new Error(`policy pack exited (${code}): ${stderr}`)));
            });
            client = new analyzerRpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
        });
        after(() => {
            client?.close();
            child?.kill();
        });

        const call = <Req, Res>(method: (req: Req, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown, request: Req) =>
            new Promise<Res>((resolve, reject) => method.call(client, request, (e, r) => (e ? reject(e) : resolve(r))));

        const analyze = (type: string, props: Props) => {
            const request = new analyzer.AnalyzeRequest();
            request.setType(type);
            request.setName("r");
            request.setUrn(urnOf([type], "r"));
            request.setProperties(Struct.fromJavaScript(props as Record<string, never>));
            request.setOptions(new analyzer.AnalyzerResourceOptions());
            return call<analyzer.AnalyzeRequest, analyzer.AnalyzeResponse>(client.analyze, request);
        };

        it("announces the eight rules, each mandatory", async () => {
            const info = await call<Empty, analyzer.AnalyzerInfo>(client.getAnalyzerInfo, new Empty());
            assert.equal(info.getName(), "mailcontinuity-mail-safety");
            assert.deepEqual(
                info.getPoliciesList().map((p) => [p.getName(), p.getEnforcementlevel()]),
                policies.map((p) => [p.name, analyzer.EnforcementLevel.MANDATORY]),
            );
        });

        it("blocks by default, and takes a rule's level and settings from the pack's config", async () => {
            const open = { ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: "10.0.0.0/12" };
            assert.deepEqual((await analyze(INGRESS_RULE, open)).getDiagnosticsList().map((d) => d.getEnforcementlevel()), []);
            assert.deepEqual(
                (await analyze(EBS_VOLUME, { size: 50 })).getDiagnosticsList().map((d) => [d.getPolicyname(), d.getEnforcementlevel()]),
                [
                    ["disks-encrypted", analyzer.EnforcementLevel.MANDATORY],
                    ["mail-volumes-protected", analyzer.EnforcementLevel.MANDATORY],
                ],
            );

            const configure = new analyzer.ConfigureAnalyzerRequest();
            const ssh = new analyzer.PolicyConfig();
            ssh.setEnforcementlevel(analyzer.EnforcementLevel.ADVISORY);
            ssh.setProperties(Struct.fromJavaScript({ maxAdminPrefix: 16 }));
            configure.getPolicyconfigMap().set("ssh-from-admin-range-only", ssh);
            const disks = new analyzer.PolicyConfig();
            disks.setEnforcementlevel(analyzer.EnforcementLevel.DISABLED);
            // The engine always sends the properties, empty when the config names only a level.
            disks.setProperties(Struct.fromJavaScript({}));
            configure.getPolicyconfigMap().set("disks-encrypted", disks);
            await call<analyzer.ConfigureAnalyzerRequest, Empty>(client.configure, configure);

            const diagnostics = (await analyze(INGRESS_RULE, open)).getDiagnosticsList();
            assert.deepEqual(
                diagnostics.map((d) => [d.getPolicyname(), d.getEnforcementlevel()]),
                [["ssh-from-admin-range-only", analyzer.EnforcementLevel.ADVISORY]],
            );
            assert.match(diagnostics[0].getMessage(), /at most a \/16/);
            assert.deepEqual(
                (await analyze(EBS_VOLUME, { size: 50 })).getDiagnosticsList().map((d) => d.getPolicyname()),
                ["mail-volumes-protected"],
            );
        });
    });
});
