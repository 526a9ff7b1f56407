import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { AwsPrimaryPlacement, Topology } from "../lib/topology/schema";
import { renderPrimaryCloudInit } from "../lib/render/cloud-init";
import { dovecotUsersFile, renderMailboxUsersApply, renderPrimaryApply } from "../lib/render/primary-apply";
import { declareReverseDns, type Ec2Host } from "./ec2-host";
import { declareApplyStep, declareMailServer } from "./mail-server";

export interface PrimaryMailHostArgs {
    topology: Topology;
    placement: AwsPrimaryPlacement;
    relayAddresses: pulumi.Input<string>[];
    /** address -> Dovecot password hash ({SCHEME}...), a secret, checked by loadMailboxPasswordHashes. */
    mailboxPasswordHashes: pulumi.Input<Record<string, string>>;
    provider: aws.Provider;
}

export class PrimaryMailHost extends pulumi.ComponentResource {
    readonly publicIp: pulumi.Output<string>;
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
        });
        this.host = server.host;
        this.snapshotPolicy = server.snapshotPolicy;

        // Not secret, so that a preview shows exactly which recipients and relay addresses change.
        const mailConfig = pulumi.all(args.relayAddresses).apply((relayAddresses) => renderPrimaryApply(topology, { relayAddresses }));
        this.configuration = declareApplyStep(this, name, "config", this.host, mailConfig);
        // Always declared: an empty list must empty the passwd-file, not leave the last users in it.
        // Site users log in at their site's server.
        const mine = topology.mailboxes.filter((m) => topology.recipientSites[m] === undefined);
        const users = pulumi.output(args.mailboxPasswordHashes).apply((hashes) => renderMailboxUsersApply(dovecotUsersFile(hashes, mine)));
        declareApplyStep(this, name, "mailboxes", this.host, pulumi.secret(users));

        this.publicIp = this.host.publicIp;
        this.instanceId = this.host.instance.id;
        this.registerOutputs({ publicIp: this.publicIp, instanceId: this.instanceId });
    }

    /** PTR for the Elastic IP, when `reverseDns` is on (AWS needs the A record to resolve first). */
    addReverseDns(forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName | undefined {
        if (!this.reverseDns) return undefined;
        return declareReverseDns(this, this.resourceName, this.host, this.hostname, this.provider, forwardRecords);
    }
}
