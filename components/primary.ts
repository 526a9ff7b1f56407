import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { AwsPrimaryPlacement, Topology } from "../lib/topology/schema";
import { renderPrimaryCloudInit } from "../lib/render/cloud-init";
import { dovecotUsersFile, renderMailboxUsersApply, renderPrimaryApply } from "../lib/render/primary-apply";
import { RUN_STDIN_AS_ROOT } from "../lib/render/host-steps";
import { DLM_ASSUME_ROLE_POLICY, dlmServiceRolePolicyArn, snapshotPolicyDescription, snapshotPolicyDetails, snapshotTargetTags } from "../lib/render/mail-snapshots";
import { declareAdminKeys, declareEc2Host, declareReverseDns, type Ec2Host } from "./ec2-host";

export interface PrimaryMailHostArgs {
    topology: Topology;
    placement: AwsPrimaryPlacement;
    relayAddresses: pulumi.Input<string>[];
    /** address -> Dovecot password hash ({SCHEME}...), a secret, checked by loadMailboxPasswordHashes. */
    mailboxPasswordHashes: pulumi.Input<Record<string, string>>;
    provider: aws.Provider;
}

// SMTP and IMAPS: what the host runs. Submission (587/465) is not set up, so it stays closed.
export const PRIMARY_PUBLIC_PORTS = [25, 993];

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

        this.host = declareEc2Host(this, name, {
            hostname: this.hostname,
            placement,
            description: `mail host ${this.hostname}`,
            publicTcpPorts: PRIMARY_PUBLIC_PORTS,
            dataVolume: {
                suffix: "mail",
                sizeGiB: placement.volumeSizeGiB,
                what: "mail",
                tags: snapshotTargetTags(this.hostname),
                ...(placement.restoreFromSnapshot === undefined
                    ? {}
                    : { restoreFrom: { snapshotId: placement.restoreFromSnapshot, checked: checkedSnapshot(placement, this.hostname, { parent: this, provider }) } }),
            },
            userData: (mailVolumeId) => renderPrimaryCloudInit(topology, { mailVolumeId }),
            provider,
        });
        declareAdminKeys(this, name, this.host, topology.admin.sshKeys);
        this.snapshotPolicy = this.declareSnapshots(name, placement);

        // Not secret, so that a preview shows exactly which recipients and relay addresses change.
        const mailConfig = pulumi.all(args.relayAddresses).apply((relayAddresses) => renderPrimaryApply(topology, { relayAddresses }));
        this.configuration = this.applyStep(name, "config", mailConfig);
        // Always declared: an empty list must empty the passwd-file, not leave the last users in it.
        const users = pulumi.output(args.mailboxPasswordHashes).apply((hashes) => renderMailboxUsersApply(dovecotUsersFile(hashes, topology.mailboxes)));
        this.applyStep(name, "mailboxes", pulumi.secret(users));

        this.publicIp = this.host.publicIp;
        this.instanceId = this.host.instance.id;
        this.registerOutputs({ publicIp: this.publicIp, instanceId: this.instanceId });
    }

    /**
     * Data Lifecycle Manager snapshots the volume that carries the target tag (so a restored volume is
     * snapshotted as well) and copies each snapshot to `copyToRegion`; it acts as a role with AWS's
     * managed DLM policy. None of this holds mail: a change of schedule or retention is an update
     * (dlm/lifecycle_policy.go), the volume's tag an in-place update (ebs_volume.go).
     */
    private declareSnapshots(name: string, placement: AwsPrimaryPlacement): aws.dlm.LifecyclePolicy {
        const child = { parent: this, provider: this.provider };
        const role = new aws.iam.Role(
            `${name}-snapshots-role`,
            { description: `Data Lifecycle Manager: snapshots of ${this.hostname}'s mail volume`, assumeRolePolicy: DLM_ASSUME_ROLE_POLICY },
            child,
        );
        const access = new aws.iam.RolePolicyAttachment(`${name}-snapshots-role-access`, { role: role.id, policyArn: dlmServiceRolePolicyArn(placement.region) }, child);
        return new aws.dlm.LifecyclePolicy(
            `${name}-mail-snapshots`,
            {
                description: snapshotPolicyDescription(this.hostname),
                executionRoleArn: role.arn,
                state: "ENABLED",
                policyDetails: snapshotPolicyDetails(this.hostname, placement.snapshots),
            },
            { ...child, dependsOn: [access] },
        );
    }

    /** A script run as root over SSH; a new instance (its id in the triggers) gets it again. */
    private applyStep(name: string, what: string, script: pulumi.Input<string>): command.remote.Command {
        return new command.remote.Command(
            `${name}-${what}`,
            { connection: this.host.connection, create: RUN_STDIN_AS_ROOT, update: RUN_STDIN_AS_ROOT, stdin: script, triggers: [this.host.instance.id] },
            { parent: this, dependsOn: [this.host.ready] },
        );
    }

    /** PTR for the Elastic IP, when `reverseDns` is on (AWS needs the A record to resolve first). */
    addReverseDns(forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName | undefined {
        if (!this.reverseDns) return undefined;
        return declareReverseDns(this, this.resourceName, this.host, this.hostname, this.provider, forwardRecords);
    }
}

/**
 * The snapshot to restore, looked up in the primary's region: an id from another region (or a typo)
 * fails the preview, before anything is replaced, as does a snapshot larger than `volumeSizeGiB`.
 */
function checkedSnapshot(placement: AwsPrimaryPlacement, hostname: string, opts: pulumi.InvokeOutputOptions): pulumi.Output<string> {
    const id = placement.restoreFromSnapshot!;
    return aws.ebs.getSnapshotOutput({ snapshotIds: [id] }, opts).apply((snapshot) => {
        if (snapshot.volumeSize > placement.volumeSizeGiB) {
            throw new Error(`${hostname}: snapshot ${id} holds a ${snapshot.volumeSize} GiB volume; set volumeSizeGiB to at least that`);
        }
        return snapshot.id;
    });
}
