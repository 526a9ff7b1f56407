// An EC2 mail host: firewall, Elastic IP, the data volume that holds its mail, the instance, and the
// "ready" step the apply steps wait for. Declared under the calling component (not a component of its
// own) so that the resources keep the names and URNs deployed stacks already have.
//
// What each change does (provider sources in lib/plan/replacement.ts):
// - instance type: update in place, the instance is stopped and started;
// - AMI (explicit `ami`), subnet: the instance is replaced, delete-before-replace: the volume is
//   detached first (the instance stopped before detaching, so the file system is closed cleanly), the
//   new instance boots, the volume is attached, and only then does Postfix start;
// - user data: ignored (it only bootstraps; config arrives through the apply steps);
// - the data volume and the Elastic IP are never replaced or deleted by a config change.
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { AwsPrimaryPlacement, AwsRelayPlacement } from "../lib/topology/schema";
import { architectureOf } from "../lib/topology/ec2";
import { ADMIN_USER } from "../lib/render/cloud-init";
import { Firewall, debianAmi } from "./firewall";

export interface Ec2HostArgs {
    hostname: string;
    placement: AwsPrimaryPlacement | AwsRelayPlacement;
    description: string;
    publicTcpPorts: number[];
    /** The volume that holds this host's mail: `mail` for the primary, `queue-disk` for a relay. */
    dataVolume: { suffix: string; sizeGiB: number; what: string };
    /** Bootstrap only; rendered once from the data volume's id. */
    userData: (volumeId: string) => string;
    provider: aws.Provider;
}

export interface Ec2Host {
    publicIp: pulumi.Output<string>;
    instance: aws.ec2.Instance;
    /** SSH as Debian's admin user through the Elastic IP; keys come from the SSH agent (README). */
    connection: command.types.input.remote.ConnectionArgs;
    /** Completes once cloud-init has finished on the current instance. */
    ready: command.remote.Command;
    eip: aws.ec2.Eip;
}

// A new instance answers SSH after a minute or two; 40 tries of 15 s cover a slow boot.
const SSH_DIAL_ATTEMPTS = 40;

export function sshConnection(host: pulumi.Input<string>, user: string, port = 22): command.types.input.remote.ConnectionArgs {
    return { host, user, port, dialErrorLimit: SSH_DIAL_ATTEMPTS, perDialTimeout: 15 };
}

export function declareEc2Host(owner: pulumi.ComponentResource, name: string, args: Ec2HostArgs): Ec2Host {
    const { placement, provider } = args;
    const child = { parent: owner, provider };
    const subnet = placement.subnetId === undefined ? undefined : aws.ec2.getSubnetOutput({ id: placement.subnetId }, child);
    // Volume and instance must share an availability zone; pin it rather than let EC2 pick.
    const availabilityZone = subnet?.availabilityZone ?? pulumi.output(`${placement.region}a`);

    const firewall = new Firewall(
        `${name}-fw`,
        {
            description: args.description,
            publicTcpPorts: args.publicTcpPorts,
            adminSshCidr: placement.adminSshCidr,
            ...(subnet !== undefined ? { vpcId: subnet.vpcId } : {}),
        },
        child,
    );
    const volume = new aws.ebs.Volume(
        `${name}-${args.dataVolume.suffix}`,
        { availabilityZone, size: args.dataVolume.sizeGiB, type: "gp3", encrypted: true, tags: { Name: `${args.hostname} ${args.dataVolume.what}` } },
        // It holds mail: neither `pulumi destroy` nor a replacement may take it along.
        { ...child, protect: true, retainOnDelete: true },
    );
    // DNS and the other hosts point at this address; removing the host leaves it allocated (README).
    const eip = new aws.ec2.Eip(`${name}-eip`, { domain: "vpc", tags: { Name: args.hostname } }, { ...child, retainOnDelete: true });
    const instance = new aws.ec2.Instance(
        `${name}-vm`,
        {
            ami: placement.ami ?? debianAmi(architectureOf(placement.instanceType), provider, owner),
            instanceType: placement.instanceType,
            availabilityZone,
            ...(placement.subnetId !== undefined ? { subnetId: placement.subnetId } : {}),
            vpcSecurityGroupIds: [firewall.securityGroupId],
            userData: volume.id.apply(args.userData),
            rootBlockDevice: { encrypted: true, volumeSize: 16, volumeType: "gp3" },
            metadataOptions: { httpTokens: "required" },
            tags: { Name: args.hostname },
        },
        {
            ...child,
            // The data volume can be attached to one instance at a time: the old one must let go first.
            deleteBeforeReplace: true,
            // User data only bootstraps; a looked-up AMI is kept until `ami` is set (README).
            ignoreChanges: placement.ami === undefined ? ["userData", "ami"] : ["userData"],
        },
    );
    new aws.ec2.VolumeAttachment(
        `${name}-${args.dataVolume.suffix}-attach`,
        { deviceName: "/dev/sdf", volumeId: volume.id, instanceId: instance.id, stopInstanceBeforeDetaching: true },
        { ...child, deleteBeforeReplace: true },
    );
    const association = new aws.ec2.EipAssociation(`${name}-eip-assoc`, { allocationId: eip.allocationId, instanceId: instance.id }, child);

    const connection = sshConnection(eip.publicIp, ADMIN_USER);
    const waitForCloudInit = "cloud-init status --wait >/dev/null || { cloud-init status --long; exit 1; }";
    const ready = new command.remote.Command(
        `${name}-ready`,
        // A new instance (its id in the triggers) is waited for again.
        { connection, create: waitForCloudInit, update: waitForCloudInit, triggers: [instance.id] },
        { parent: owner, dependsOn: [association] },
    );
    return { publicIp: eip.publicIp, instance, connection, ready, eip };
}

/** PTR for the Elastic IP; AWS refuses it until the forward A record resolves publicly (README). */
export function declareReverseDns(owner: pulumi.ComponentResource, name: string, host: Ec2Host, hostname: string, provider: aws.Provider, forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName {
    return new aws.ec2.EipDomainName(`${name}-ptr`, { allocationId: host.eip.allocationId, domainName: hostname }, { parent: owner, dependsOn: forwardRecords, provider });
}

/** The admin keys, kept current on a running host (cloud-init installs them only at first boot). */
export function declareAdminKeys(owner: pulumi.ComponentResource, name: string, host: Ec2Host, keys: readonly string[]): command.remote.Command {
    const install = 'umask 077 && mkdir -p ~/.ssh && cat >~/.ssh/authorized_keys.new && mv -f ~/.ssh/authorized_keys.new ~/.ssh/authorized_keys';
    return new command.remote.Command(
        `${name}-admin-keys`,
        { connection: host.connection, create: install, update: install, stdin: `${keys.join("\n")}\n`, triggers: [host.instance.id] },
        { parent: owner, dependsOn: [host.ready] },
    );
}
