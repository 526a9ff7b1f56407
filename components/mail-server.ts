// What an EC2 mail server is, whether it is the primary or a site's own server (the "mail switch"):
// the EC2 host with its mail volume, scheduled snapshots of that volume, and the apply steps that
// configure it over SSH. Declared under the calling component, with names derived from its name, so
// that the primary's resources keep the names deployed stacks have.
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { AwsPrimaryPlacement } from "../lib/topology/schema";
import { RUN_STDIN_AS_ROOT } from "../lib/render/host-steps";
import { DLM_ASSUME_ROLE_POLICY, dlmServiceRolePolicyArn, snapshotPolicyDescription, snapshotPolicyDetails, snapshotTargetTags } from "../lib/render/mail-snapshots";
import { declareAdminKeys, declareEc2Host, type Ec2Host } from "./ec2-host";

// SMTP and IMAPS: what a mail server runs. Submission (587/465) is not set up, so it stays closed.
export const MAIL_SERVER_PUBLIC_PORTS = [25, 993];

export interface MailServerArgs {
    hostname: string;
    placement: AwsPrimaryPlacement;
    description: string;
    /** Bootstrap only, rendered from the mail volume's id. */
    userData: (mailVolumeId: string) => string;
    adminKeys: readonly string[];
    provider: aws.Provider;
    /** An instance role for software on the host (the ACME client); see Ec2HostArgs. */
    instanceRole?: { containers: boolean };
}

export interface MailServer {
    host: Ec2Host;
    /** The mail volume's scheduled snapshots and their copies in another region. */
    snapshotPolicy: aws.dlm.LifecyclePolicy;
}

export function declareMailServer(owner: pulumi.ComponentResource, name: string, args: MailServerArgs): MailServer {
    const { hostname, placement, provider } = args;
    const host = declareEc2Host(owner, name, {
        hostname,
        placement,
        description: args.description,
        publicTcpPorts: MAIL_SERVER_PUBLIC_PORTS,
        dataVolume: {
            suffix: "mail",
            sizeGiB: placement.volumeSizeGiB,
            what: "mail",
            tags: snapshotTargetTags(hostname),
            ...(placement.restoreFromSnapshot === undefined
                ? {}
                : { restoreFrom: { snapshotId: placement.restoreFromSnapshot, checked: checkedSnapshot(placement, hostname, { parent: owner, provider }) } }),
        },
        userData: args.userData,
        provider,
        ...(args.instanceRole !== undefined ? { instanceRole: args.instanceRole } : {}),
    });
    declareAdminKeys(owner, name, host, args.adminKeys);
    return { host, snapshotPolicy: declareSnapshots(owner, name, hostname, placement, provider) };
}

/** A script run as root over SSH; a new instance (its id in the triggers) gets it again. `after`: steps it needs first. */
export function declareApplyStep(owner: pulumi.ComponentResource, name: string, what: string, host: Ec2Host, script: pulumi.Input<string>, after: pulumi.Resource[] = []): command.remote.Command {
    return new command.remote.Command(
        `${name}-${what}`,
        { connection: host.connection, create: RUN_STDIN_AS_ROOT, update: RUN_STDIN_AS_ROOT, stdin: script, triggers: [host.instance.id] },
        { parent: owner, dependsOn: [host.ready, ...after] },
    );
}

/**
 * Data Lifecycle Manager snapshots the volume that carries the target tag (so a restored volume is
 * snapshotted as well) and copies each snapshot to `copyToRegion`; it acts as a role with AWS's
 * managed DLM policy. None of this holds mail: a change of schedule or retention is an update
 * (dlm/lifecycle_policy.go), the volume's tag an in-place update (ebs_volume.go).
 */
function declareSnapshots(owner: pulumi.ComponentResource, name: string, hostname: string, placement: AwsPrimaryPlacement, provider: aws.Provider): aws.dlm.LifecyclePolicy {
    const child = { parent: owner, provider };
    const role = new aws.iam.Role(
        `${name}-snapshots-role`,
        { description: `Data Lifecycle Manager: snapshots of ${hostname}'s mail volume`, assumeRolePolicy: DLM_ASSUME_ROLE_POLICY },
        child,
    );
    const access = new aws.iam.RolePolicyAttachment(`${name}-snapshots-role-access`, { role: role.id, policyArn: dlmServiceRolePolicyArn(placement.region) }, child);
    return new aws.dlm.LifecyclePolicy(
        `${name}-mail-snapshots`,
        {
            description: snapshotPolicyDescription(hostname),
            executionRoleArn: role.arn,
            state: "ENABLED",
            policyDetails: snapshotPolicyDetails(hostname, placement.snapshots),
        },
        { ...child, dependsOn: [access] },
    );
}

/**
 * The snapshot to restore, looked up in the host's region: an id from another region (or a typo)
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
