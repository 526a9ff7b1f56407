import * as aws from "@pulumi/aws";
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import type { RecordSpec } from "../lib/render/records";
import { slug } from "../lib/topology/placement";
import { groupRecordSets, route53Value } from "../lib/render/route53";
import { cloudflareRecordName, legacyCloudflareRecordName, legacyRoute53SetName, route53SetName } from "../lib/render/dns-identity";

export interface MailDnsArgs {
    topology: Topology;
    records: RecordSpec<pulumi.Input<string>>[];
    /** Route53 is global; any region's provider will do. */
    awsProvider: aws.Provider;
}

// Route53 always delegates a hosted zone to four nameservers.
const ROUTE53_NAMESERVER_COUNT = 4;
const NS_TTL = 86400;

function aliasesFor(legacyName: string | undefined): pulumi.Alias[] {
    return legacyName === undefined ? [] : [{ name: legacyName }];
}

/** The same record set at Cloudflare and Route53, each zone's apex NS listing both providers. */
export class MailDns extends pulumi.ComponentResource {
    /** Every nameserver of every domain, for the registrar. */
    readonly nameservers: pulumi.Output<Record<string, string[]>>;
    /** A records of the mail hosts (reverse DNS waits for these). */
    readonly addressRecords: pulumi.Resource[] = [];

    constructor(name: string, args: MailDnsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:dns:MailDns", name, {}, opts);
        const { topology, records } = args;
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
                        content: record.content,
                        ...(record.priority !== undefined ? { priority: record.priority } : {}),
                        proxied: false,
                    },
                    { parent: this, aliases: aliasesFor(legacyCloudflareRecordName(prefix, record)) },
                );
                if (record.type === "A") this.addressRecords.push(created);
            }
            for (const set of groupRecordSets(domainRecords)) {
                const created = new aws.route53.Record(
                    route53SetName(prefix, set),
                    { zoneId: zone.zoneId, name: set.name, type: set.type, ttl: set.ttl, records: set.records.map(route53Value) },
                    { parent: this, provider: args.awsProvider, aliases: aliasesFor(legacyRoute53SetName(prefix, set)) },
                );
                if (set.type === "A") this.addressRecords.push(created);
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
