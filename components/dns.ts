import * as aws from "@pulumi/aws";
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import type { RecordRole, RecordSpec } from "../lib/render/records";
import { slug } from "../lib/topology/placement";
import { groupRecordSets, route53TxtValue, route53Value } from "../lib/render/route53";
import { cloudflareContent, cloudflareTxtContent } from "../lib/render/cloudflare";
import { certificateValidationRecordName, cloudflareRecordName, legacyCloudflareRecordName, legacyRoute53SetName, route53SetName } from "../lib/render/dns-identity";

/**
 * A DNS-validation record a certificate asks for (ACM: one CNAME per name it covers). Its name and
 * value exist only once the certificate does, so it cannot be part of the record set built up front.
 */
export interface CertificateValidationRecord {
    /** The zone that holds it (one of the topology's domains). */
    zone: string;
    /** The certificate name it proves (mta-sts.<domain>): what its resources are named by. */
    validates: string;
    name: pulumi.Input<string>;
    value: pulumi.Input<string>;
}

export interface MailDnsArgs {
    topology: Topology;
    records: RecordSpec<pulumi.Input<string>>[];
    /** Route53 is global; any region's provider will do. */
    awsProvider: aws.Provider;
    /** Published at both providers like every other record, so either can prove the name to the CA. */
    certificateValidationRecords?: CertificateValidationRecord[];
    /** Records of a role are written only once these resources are (the `_mta-sts` id after the policy it names). */
    waitFor?: Partial<Record<RecordRole, pulumi.Resource[]>>;
}

// Route53 always delegates a hosted zone to four nameservers.
const ROUTE53_NAMESERVER_COUNT = 4;
const NS_TTL = 86400;

function aliasesFor(legacyName: string | undefined): pulumi.Alias[] {
    return legacyName === undefined ? [] : [{ name: legacyName }];
}

/** Names before 2026-11 carried MX and TXT content; a record whose content is a deployment's value (a DKIM key) is newer than that. */
function hasLegacyName(record: RecordSpec<unknown>): boolean {
    return typeof record.content === "string" || (record.type !== "MX" && record.type !== "TXT");
}

/**
 * A record's value in a provider's syntax. The pure renderers take plain strings; a value only the
 * deployment knows (a DKIM key) goes through the same renderer once it is known. Short TXT values and
 * all other types come out as they went in.
 */
function inSyntax(record: RecordSpec<pulumi.Input<string>>, plain: (r: RecordSpec<pulumi.Input<string>>) => pulumi.Input<string>, txt: (text: string) => string): pulumi.Input<string> {
    if (record.type !== "TXT" || typeof record.content === "string") return plain(record);
    return pulumi.output(record.content).apply(txt);
}

/** ACM writes names and values fully qualified with a trailing dot; records here are named without. */
function bare(name: pulumi.Input<string>): pulumi.Output<string> {
    return pulumi.output(name).apply((n) => n.replace(/\.$/, ""));
}

/** The same record set at Cloudflare and Route53, each zone's apex NS listing both providers. */
export class MailDns extends pulumi.ComponentResource {
    /** Every nameserver of every domain, for the registrar. */
    readonly nameservers: pulumi.Output<Record<string, string[]>>;
    /** A records of the mail hosts (reverse DNS waits for these). */
    readonly addressRecords: pulumi.Resource[] = [];
    /** The certificate validation records at both providers (the certificate's validation waits for these). */
    readonly certificateValidationRecords: pulumi.Resource[] = [];

    constructor(name: string, args: MailDnsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:dns:MailDns", name, {}, opts);
        const { topology, records } = args;
        const waitsFor = (rs: readonly RecordSpec<unknown>[]): pulumi.Resource[] => [...new Set(rs.flatMap((r) => args.waitFor?.[r.role] ?? []))];
        const cloudflareConfig = topology.dns.providers.find((p) => p.kind === "cloudflare");
        if (cloudflareConfig === undefined) throw new Error("validated topology without a cloudflare provider");
        const perDomain: pulumi.Output<[string, string[]]>[] = [];

        for (const domain of topology.domains) {
            const zoneId = cloudflareConfig.zoneIds[domain];
            const prefix = `${name}-${slug(domain)}`;
            // Lets Cloudflare answer with Route53's NS records at the apex and stay active beside them.
            new cloudflare.ZoneDnsSettings(`${prefix}-cf-settings`, { zoneId, multiProvider: true }, { parent: this });
            const cloudflareNameservers = cloudflare.getZoneOutput({ zoneId }, { parent: this }).apply((z) => [...z.nameServers].sort());
            const zone = new aws.route53.Zone(
                `${prefix}-r53`,
                { name: domain, comment: `mailcontinuity: second provider for ${domain}`, forceDestroy: false },
                // The registrar points at this zone's nameservers: a new zone would get other ones.
                { parent: this, provider: args.awsProvider, protect: true },
            );
            const route53Nameservers = zone.nameServers.apply((ns) => [...ns].sort());

            const domainRecords = records.filter((r) => r.zone === domain);
            for (const record of domainRecords) {
                const created = new cloudflare.DnsRecord(
                    cloudflareRecordName(prefix, record),
                    {
                        zoneId,
                        name: record.name,
                        type: record.type,
                        ttl: record.ttl,
                        content: inSyntax(record, cloudflareContent, cloudflareTxtContent),
                        ...(record.priority !== undefined ? { priority: record.priority } : {}),
                        proxied: false,
                    },
                    { parent: this, aliases: hasLegacyName(record) ? aliasesFor(legacyCloudflareRecordName(prefix, record)) : [], dependsOn: waitsFor([record]) },
                );
                if (record.type === "A") this.addressRecords.push(created);
            }
            for (const set of groupRecordSets(domainRecords)) {
                const created = new aws.route53.Record(
                    route53SetName(prefix, set),
                    { zoneId: zone.zoneId, name: set.name, type: set.type, ttl: set.ttl, records: set.records.map((r) => inSyntax(r, route53Value, route53TxtValue)) },
                    { parent: this, provider: args.awsProvider, aliases: set.records.every(hasLegacyName) ? aliasesFor(legacyRoute53SetName(prefix, set)) : [], dependsOn: waitsFor(set.records) },
                );
                if (set.type === "A") this.addressRecords.push(created);
            }
            for (const validation of (args.certificateValidationRecords ?? []).filter((v) => v.zone === domain)) {
                const name = bare(validation.name);
                const value = bare(validation.value);
                this.certificateValidationRecords.push(
                    new cloudflare.DnsRecord(
                        certificateValidationRecordName(prefix, "cf", validation.validates),
                        { zoneId, name, type: "CNAME", ttl: topology.dns.ttl, content: value, proxied: false },
                        { parent: this },
                    ),
                    new aws.route53.Record(
                        certificateValidationRecordName(prefix, "r53", validation.validates),
                        { zoneId: zone.zoneId, name, type: "CNAME", ttl: topology.dns.ttl, records: [value] },
                        { parent: this, provider: args.awsProvider },
                    ),
                );
            }

            for (let i = 0; i < ROUTE53_NAMESERVER_COUNT; i++) {
                new cloudflare.DnsRecord(
                    `${prefix}-cf-apex-ns-${i}`,
                    { zoneId, name: domain, type: "NS", ttl: NS_TTL, content: route53Nameservers.apply((ns) => ns[i]), proxied: false },
                    { parent: this },
                );
            }
            const allNameservers = pulumi.all([cloudflareNameservers, route53Nameservers]).apply(([cf, r53]) => [...cf, ...r53]);
            // Route53 creates the apex NS set with the zone; take it over so it lists Cloudflare's too.
            new aws.route53.Record(
                `${prefix}-r53-apex-ns`,
                { zoneId: zone.zoneId, name: domain, type: "NS", ttl: NS_TTL, records: allNameservers, allowOverwrite: true },
                { parent: this, provider: args.awsProvider },
            );
            perDomain.push(allNameservers.apply((ns): [string, string[]] => [domain, ns]));
        }

        this.nameservers = pulumi.all(perDomain).apply((entries) => Object.fromEntries(entries));
        this.registerOutputs({ nameservers: this.nameservers });
    }
}
