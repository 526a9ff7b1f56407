import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import { isPartner, mailHosts, ownRelays, partnerRelays, slug } from "../lib/topology/placement";
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
    /** null for a partner's MX whose addresses the config does not give (its own DNS has them). */
    address: string | null;
    /** relay: one the stack runs; partner: another organisation's MX (kind: partner). */
    role: "primary" | "relay" | "partner";
}

// Route53 health-check metrics exist only here.
const ALERTS_REGION = "us-east-1";

/** Everything one domain (or set of domains) needs to keep receiving mail through an outage. */
export class MailContinuity extends pulumi.ComponentResource {
    readonly mxTable: pulumi.Output<MxEntry[]>;
    /** hostname -> public IPv4 address, for every mail host whose address is known (a partner's only when given). */
    readonly hostAddresses: pulumi.Output<Record<string, string>>;
    /** hostname -> public IPv6 address, for every host that has one; absent when none has. */
    readonly hostAddresses6?: pulumi.Output<Record<string, string>>;
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

        // A partner's MX (kind: partner) is another organisation's: nothing is deployed there.
        const relays = ownRelays(topology).map(
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
        const partners = partnerRelays(topology);
        // The primary trusts the hosts that hand over queued mail: ours, and a partner's known addresses.
        const relayAddresses = [...relays.map((r) => r.publicIp), ...partners.flatMap((p) => [...p.placement.addresses, ...p.placement.addresses6].map((a) => pulumi.output(a)))];

        // A relay with an IPv6 address may hand its mail over through it: the primary trusts that one too.
        relayAddresses.push(...relays.flatMap((r) => (r.publicIpv6 === undefined ? [] : [r.publicIpv6])));

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
            ...partners.flatMap((p): [string, pulumi.Output<string>][] => (p.placement.addresses.length > 0 ? [[p.hostname, pulumi.output(p.placement.addresses[0])]] : [])),
            ...siteAddresses,
        ]);
        /** Every host's address but that of a partner's MX known only to its own DNS. */
        const addressOf = (hostname: string): pulumi.Output<string> => {
            const address = addresses.get(hostname);
            if (address === undefined) throw new Error(`${hostname}: no address known`);
            return address;
        };

        // IPv6 addresses (placement.ts hasIpv6): an EC2 host's is its instance's, the others' are configured.
        const addresses6 = new Map<string, pulumi.Output<string>>();
        const primaryIpv6 = placement.kind === "aws" ? primary?.publicIpv6 : placement.address6 === undefined ? undefined : pulumi.output(placement.address6);
        if (primaryIpv6 !== undefined) addresses6.set(topology.primary.hostname, primaryIpv6);
        for (const r of relays) if (r.publicIpv6 !== undefined) addresses6.set(r.hostname, r.publicIpv6);
        for (const s of siteHosts) if (s.publicIpv6 !== undefined) addresses6.set(s.hostname, s.publicIpv6);
        for (const spec of Object.values(topology.sites)) {
            const server = spec.server!;
            if (server.placement.kind === "external" && server.placement.address6 !== undefined) addresses6.set(server.hostname, pulumi.output(server.placement.address6));
        }

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
                    ipv6AddressOf: (hostname: string) => addresses6.get(hostname),
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
                    ...mailHosts(topology).map((h) => {
                        // A partner's MX has no queue health to ask (no status port): only its port 25, at the
                        // address it gave, else at its name as its own DNS answers. Its alarm says whom to call.
                        if (isPartner(h)) {
                            const p = h.placement;
                            const target = p.addresses.length > 0 ? { address: p.addresses[0] } : { fqdn: h.hostname };
                            return { hostname: h.hostname, ...target, note: `a partner's MX, run by ${p.organisation}: contact ${p.contact}` };
                        }
                        return {
                            hostname: h.hostname,
                            address: addressOf(h.hostname),
                            ...(h === topology.primary ? {} : { queueStatus: { port: RELAY_STATUS_PORT, path: RELAY_STATUS_PATH, healthyText: QUEUE_HEALTHY_TEXT } }),
                        };
                    }),
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
                pulumi.output(addresses.get(h.hostname) ?? null).apply(
                    (address): MxEntry => ({ priority: h.priority, host: h.hostname, address, role: h === topology.primary ? "primary" : isPartner(h) ? "partner" : "relay" }),
                ),
            ),
        );
        this.hostAddresses = this.mxTable.apply((rows) => Object.fromEntries(rows.flatMap((r) => (r.address === null ? [] : [[r.host, r.address]]))));
        if (addresses6.size > 0) this.hostAddresses6 = pulumi.all(Object.fromEntries(addresses6));
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
            hostAddresses6: this.hostAddresses6,
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
