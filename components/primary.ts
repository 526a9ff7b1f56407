import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { AwsPrimaryPlacement, Topology } from "../lib/topology/schema";
import { renderPrimaryCloudInit } from "../lib/render/cloud-init";
import { dovecotUsersFile, renderDkimKeyApply, renderMailboxUsersApply, renderPrimaryApply } from "../lib/render/primary-apply";
import { declareReverseDns, type Ec2Host } from "./ec2-host";
import { declareApplyStep, declareMailServer } from "./mail-server";
import type { AcmeChallenge } from "./acme-challenge";
import { PRIMARY_TLS_CERT_FILE, PRIMARY_TLS_KEY_FILE, renderPrimaryAcmeApply } from "../lib/render/acme";

export interface PrimaryMailHostArgs {
    topology: Topology;
    placement: AwsPrimaryPlacement;
    /** The relays' addresses, IPv6 ones included: the primary trusts them to hand over queued mail. */
    relayAddresses: pulumi.Input<string>[];
    /** address -> Dovecot password hash ({SCHEME}...), a secret, checked by loadMailboxPasswordHashes. */
    mailboxPasswordHashes: pulumi.Input<Record<string, string>>;
    provider: aws.Provider;
    /** With tls.acme: the challenge zone, and the ACME wrapper (relay-image/lib/acme.sh) to install. */
    acme?: { challenge: AcmeChallenge; wrapper: string };
    /** With dkim: the signing selector's private key (PEM, a secret) for OpenDKIM. */
    dkimPrivateKeyPem?: pulumi.Output<string>;
}

export class PrimaryMailHost extends pulumi.ComponentResource {
    readonly publicIp: pulumi.Output<string>;
    /** With `ipv6`: the instance's IPv6 address (AAAA at both providers). */
    readonly publicIpv6?: pulumi.Output<string>;
    readonly instanceId: pulumi.Output<string>;
    /** The mail configuration's apply step: recipients, relay addresses, main.cf, the ETRN script. */
    readonly configuration: command.remote.Command;
    /** The mail volume's scheduled snapshots and their copies in another region. */
    readonly snapshotPolicy: aws.dlm.LifecyclePolicy;
    private readonly host: Ec2Host;
    private readonly hostname: string;
    private readonly resourceName: string;
    private readonly provider: aws.Provider;
    private readonly reverseDns: boolean;

    constructor(name: string, args: PrimaryMailHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:primary:PrimaryMailHost", name, {}, opts);
        const { topology, placement, provider } = args;
        this.resourceName = name;
        this.provider = provider;
        this.hostname = topology.primary.hostname;
        this.reverseDns = placement.reverseDns;

        const server = declareMailServer(this, name, {
            hostname: this.hostname,
            placement,
            description: `mail host ${this.hostname}`,
            userData: (mailVolumeId) => renderPrimaryCloudInit(topology, { mailVolumeId }),
            adminKeys: topology.admin.sshKeys,
            provider,
            // The ACME client calls Route53 as the instance (no stored key).
            ...(args.acme !== undefined ? { instanceRole: { containers: false } } : {}),
        });
        this.host = server.host;
        this.snapshotPolicy = server.snapshotPolicy;

        // ACME: the certificate's own step (lego, the wrapper, its settings, a timer); Postfix serves its
        // pair, self-signed until the first issuance. Not secret: the role holds the right, not a key.
        const acme = args.acme;
        const acmeStep =
            acme === undefined
                ? undefined
                : declareApplyStep(
                      this,
                      name,
                      "acme",
                      this.host,
                      acme.challenge.zoneId.apply((hostedZoneId) => renderPrimaryAcmeApply(topology, { hostedZoneId, wrapper: acme.wrapper })),
                      this.host.role === undefined ? [] : [acme.challenge.grantToRole(this.hostname, this.host.role)],
                  );
        const tlsFiles = acme === undefined ? {} : { tlsCertFile: PRIMARY_TLS_CERT_FILE, tlsKeyFile: PRIMARY_TLS_KEY_FILE };

        // Not secret, so that a preview shows exactly which recipients and relay addresses change.
        const mailConfig = pulumi.all(args.relayAddresses).apply((relayAddresses) => renderPrimaryApply(topology, { relayAddresses, ...tlsFiles }));
        this.configuration = declareApplyStep(this, name, "config", this.host, mailConfig, acmeStep === undefined ? [] : [acmeStep]);
        // Always declared: an empty list must empty the passwd-file, not leave the last users in it.
        // Site users log in at their site's server.
        const mine = topology.mailboxes.filter((m) => topology.recipientSites[m] === undefined);
        const users = pulumi.output(args.mailboxPasswordHashes).apply((hashes) => renderMailboxUsersApply(dovecotUsersFile(hashes, mine)));
        declareApplyStep(this, name, "mailboxes", this.host, pulumi.secret(users));
        // The key alone is secret, in a step of its own, so the config step's preview stays readable.
        // After the config step: both may install OpenDKIM, and two apt-gets at once fight for its lock.
        const dkimKey = args.dkimPrivateKeyPem;
        if (dkimKey !== undefined) {
            declareApplyStep(this, name, "dkim-key", this.host, pulumi.secret(dkimKey.apply((pem) => renderDkimKeyApply(topology, pem))), [this.configuration]);
        }

        this.publicIp = this.host.publicIp;
        if (this.host.ipv6Address !== undefined) this.publicIpv6 = this.host.ipv6Address;
        this.instanceId = this.host.instance.id;
        this.registerOutputs({ publicIp: this.publicIp, instanceId: this.instanceId });
    }

    /** PTR for the Elastic IP, when `reverseDns` is on (AWS needs the A record to resolve first). */
    addReverseDns(forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName | undefined {
        if (!this.reverseDns) return undefined;
        return declareReverseDns(this, this.resourceName, this.host, this.hostname, this.provider, forwardRecords);
    }
}
