import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import { mailHosts, slug } from "../lib/topology/placement";
import { buildRecordSet, mtaStsPolicy } from "../lib/render/records";
import type { RelayImage } from "../lib/relay-image";
import { MailAlerts } from "./alerts";
import { MailDns } from "./dns";
import { DkimKeys } from "./dkim-keys";
import { MtaStsSite } from "./mta-sts-site";
import { PrimaryMailHost } from "./primary";
import { SiteMailHost } from "./site";
import { RelayNode } from "./relay";
import { AcmeChallenge } from "./acme-challenge";
import { ACME_WRAPPER_SOURCE } from "../lib/render/acme";
import { relayResourceBase } from "../lib/render/relay-container";
import { QUEUE_HEALTHY_TEXT, RELAY_STATUS_PATH, RELAY_STATUS_PORT } from "../lib/render/relay-env";

export interface MailContinuityArgs {
    topology: Topology;
    relayImage: RelayImage;
    /** Secret: mailbox address -> Dovecot password hash, for an AWS primary's mailboxes. */
    mailboxPasswordHashes: pulumi.Input<Record<string, string>>;
}

export interface MxEntry {
    priority: number;
    host: string;
    address: string;
    role: "primary" | "relay";
}

// Route53 health-check metrics exist only here.
const ALERTS_REGION = "us-east-1";

/** Everything one domain (or set of domains) needs to keep receiving mail through an outage. */
export class MailContinuity extends pulumi.ComponentResource {
    readonly mxTable: pulumi.Output<MxEntry[]>;
    /** hostname -> public IPv4 address, for every mail host. */
    readonly hostAddresses: pulumi.Output<Record<string, string>>;
    readonly nameservers: pulumi.Output<Record<string, string[]>>;
    readonly mtaStsPolicy: string;
    /** The CloudFront name serving https://mta-sts.<domain>/ (mtaSts not none), which mta-sts.<domain> CNAMEs name. */
    readonly mtaStsHost?: pulumi.Output<string>;
    /** ACM's validation CNAMEs of the MTA-STS certificate, as published at both providers. */
    readonly mtaStsValidationRecords?: pulumi.Output<{ name: string; value: string }[]>;
    /** selector -> the published DKIM TXT value (dkim set). */
    readonly dkimRecords?: pulumi.Output<Record<string, string>>;
    /** The ACME challenge zone's nameservers (tls.acme), which its delegation at both providers lists. */
    readonly acmeChallengeNameservers?: pulumi.Output<string[]>;
    /** The signing selector and its private key (PEM, secret), for the primary's OpenDKIM (dkim set). */
    readonly dkimSigning?: { selector: string; privateKeyPem: pulumi.Output<string> };

    constructor(name: string, args: MailContinuityArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:index:MailContinuity", name, {}, opts);
        const { topology } = args;
        const providers = new Map<string, aws.Provider>();
        const awsIn = (region: string): aws.Provider => {
            let provider = providers.get(region);
            if (provider === undefined) {
                provider = new aws.Provider(`${name}-aws-${region}`, { region: region as aws.Region }, { parent: this });
                providers.set(region, provider);
            }
            return provider;
        };

        // ACME (tls.acme): the zone where every MX host answers its DNS-01 challenge, before the hosts
        // that get a right to write there.
        const acme = topology.tls.acme === undefined ? undefined : new AcmeChallenge(`${name}-acme-challenge`, { topology, provider: awsIn(ALERTS_REGION) }, { parent: this });

        // DKIM (dkim): a key per published selector, before the primary that signs with one of them.
        const dkim = topology.dkim === undefined ? undefined : new DkimKeys(`${name}-dkim`, { topology }, { parent: this });

        const relays = topology.relays.map(
            (relay) =>
                new RelayNode(
                    relayResourceBase(name, relay),
                    {
                        topology,
                        relay,
                        image: args.relayImage,
                        ...(relay.placement.kind === "aws" ? { awsProvider: awsIn(relay.placement.region) } : {}),
                        ...(acme !== undefined ? { acme } : {}),
                    },
                    { parent: this },
                ),
        );
        const relayAddresses = relays.map((r) => r.publicIp);

        // An external primary is the user's own server: it only gets its records and a health check.
        const placement = topology.primary.placement;
        let primary: PrimaryMailHost | undefined;
        let primaryAddress: pulumi.Output<string>;
        if (placement.kind === "aws") {
            primary = new PrimaryMailHost(
                `${name}-${slug(topology.primary.hostname)}`,
                {
                    topology,
                    placement,
                    relayAddresses,
                    mailboxPasswordHashes: args.mailboxPasswordHashes,
                    provider: awsIn(placement.region),
                    // One definition of the ACME wrapper: the relay image's, as this checkout has it.
                    ...(acme !== undefined ? { acme: { challenge: acme, wrapper: acmeWrapper(args.relayImage) } } : {}),
                    ...(dkim !== undefined ? { dkimPrivateKeyPem: dkim.signingKeyPem } : {}),
                },
                { parent: this },
            );
            primaryAddress = primary.publicIp;
        } else {
            primaryAddress = pulumi.output(placement.address);
        }
        // Sites' own servers: one on EC2 is declared here; an external one only gets its A record and a health check.
        const siteHosts: SiteMailHost[] = [];
        const siteAddresses = Object.entries(topology.sites).map(([site, spec]): [string, pulumi.Output<string>] => {
            const server = spec.server!;
            if (server.placement.kind !== "aws") return [server.hostname, pulumi.output(server.placement.address)];
            const host = new SiteMailHost(
                `${name}-${slug(server.hostname)}`,
                { topology, site, hostname: server.hostname, placement: server.placement, mailboxPasswordHashes: args.mailboxPasswordHashes, provider: awsIn(server.placement.region) },
                { parent: this },
            );
            siteHosts.push(host);
            return [server.hostname, host.publicIp];
        });
        const addresses = new Map<string, pulumi.Output<string>>([
            [topology.primary.hostname, primaryAddress],
            ...relays.map((r): [string, pulumi.Output<string>] => [r.hostname, r.publicIp]),
            ...siteAddresses,
        ]);
        const addressOf = (hostname: string): pulumi.Output<string> => addresses.get(hostname)!;

        // MTA-STS (not none): the policy site, whose certificate's validation records and host name
        // MailDns publishes like every other record.
        const mtaSts = topology.policy.mtaSts === "none" ? undefined : new MtaStsSite(`${name}-mta-sts`, { topology, provider: awsIn(ALERTS_REGION) }, { parent: this });
        const dns = new MailDns(
            `${name}-dns`,
            {
                topology,
                // The challenge zone's delegation, the DKIM keys and the MTA-STS host are published at
                // both providers like every other record.
                records: buildRecordSet(topology, addressOf, {
                    ...(acme !== undefined ? { challengeNameservers: acme.nameservers } : {}),
                    ...(dkim !== undefined ? { dkimRecord: (selector: string) => dkim.record(selector) } : {}),
                    ...(mtaSts !== undefined ? { mtaStsTarget: mtaSts.host } : {}),
                }),
                awsProvider: awsIn(ALERTS_REGION),
                // A new `_mta-sts` id only once the policy it names is served.
                ...(mtaSts !== undefined ? { certificateValidationRecords: mtaSts.certificateValidationRecords, waitFor: { "mta-sts": [mtaSts.policyFile] } } : {}),
            },
            { parent: this },
        );
        mtaSts?.serve(dns.certificateValidationRecords);
        primary?.addReverseDns(dns.addressRecords);
        relays.forEach((r) => r.addReverseDns(dns.addressRecords));
        siteHosts.forEach((s) => s.addReverseDns(dns.addressRecords));

        new MailAlerts(
            `${name}-alerts`,
            {
                hosts: [
                    ...mailHosts(topology).map((h) => ({
                        hostname: h.hostname,
                        address: addressOf(h.hostname),
                        ...(h === topology.primary ? {} : { queueStatus: { port: RELAY_STATUS_PORT, path: RELAY_STATUS_PATH, healthyText: QUEUE_HEALTHY_TEXT } }),
                    })),
                    // The switch forwards site users' mail there: a site server down holds their mail.
                    ...siteAddresses.map(([hostname, address]) => ({ hostname, address })),
                ],
                email: topology.alerts.email,
                provider: awsIn(ALERTS_REGION),
            },
            { parent: this },
        );

        this.mxTable = pulumi.all(
            mailHosts(topology).map((h) =>
                addressOf(h.hostname).apply(
                    (address): MxEntry => ({ priority: h.priority, host: h.hostname, address, role: h === topology.primary ? "primary" : "relay" }),
                ),
            ),
        );
        this.hostAddresses = this.mxTable.apply((rows) => Object.fromEntries(rows.map((r) => [r.host, r.address])));
        this.nameservers = dns.nameservers;
        this.mtaStsPolicy = mtaStsPolicy(topology);
        if (mtaSts !== undefined) {
            this.mtaStsHost = mtaSts.host;
            this.mtaStsValidationRecords = pulumi.all(
                mtaSts.certificateValidationRecords.map((r) => pulumi.all([r.name, r.value]).apply(([n, v]) => ({ name: n.replace(/\.$/, ""), value: v.replace(/\.$/, "") }))),
            );
        }
        if (acme !== undefined) this.acmeChallengeNameservers = pulumi.all(acme.nameservers);
        if (dkim !== undefined) {
            this.dkimRecords = dkim.records;
            this.dkimSigning = { selector: dkim.signingSelector, privateKeyPem: dkim.signingKeyPem };
        }
        this.registerOutputs({
            mxTable: this.mxTable,
            hostAddresses: this.hostAddresses,
            nameservers: this.nameservers,
            mtaStsPolicy: this.mtaStsPolicy,
            mtaStsHost: this.mtaStsHost,
            dkimRecords: this.dkimRecords,
            acmeChallengeNameservers: this.acmeChallengeNameservers,
        });
    }
}

function acmeWrapper(image: RelayImage): string {
    const wrapper = image.files[ACME_WRAPPER_SOURCE];
    if (wrapper === undefined) throw new Error(`tls.acme: ${image.dir}/${ACME_WRAPPER_SOURCE} (the ACME wrapper the primary installs) is missing`);
    return wrapper;
}
