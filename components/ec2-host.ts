// An EC2 mail host: firewall, Elastic IP, the data volume that holds its mail, the instance, and the
// "ready" step the apply steps wait for. Declared under the calling component (not a component of its
// own) so that the resources keep the names and URNs deployed stacks already have. README's "What each
// change does" says what a change of each setting does to these resources.
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { AwsPrimaryPlacement, AwsRelayPlacement } from "../lib/topology/schema";
import { architectureOf, ipv6SubnetProblem } from "../lib/topology/ec2";
import { ADMIN_USER } from "../lib/render/cloud-init";
import { INSTALL_ADMIN_KEYS, WAIT_FOR_CLOUD_INIT } from "../lib/render/host-steps";
import { EC2_ASSUME_ROLE_POLICY } from "../lib/render/acme";
import { Firewall } from "./firewall";
import { sshConnection } from "./ssh";

export interface Ec2HostArgs {
    hostname: string;
    placement: AwsPrimaryPlacement | AwsRelayPlacement;
    description: string;
    publicTcpPorts: number[];
    /** The volume that holds this host's mail: `mail` for the primary, `queue-disk` for a relay. */
    dataVolume: {
        suffix: string;
        sizeGiB: number;
        what: string;
        /** Extra tags (the snapshot policy's target tag). A tag is changed in place, never by replacement. */
        tags?: Record<string, string>;
        /**
         * Create the volume from this snapshot. The volume is then another resource, named after the
         * snapshot (`<name>-<suffix>-from-<snap-id>`): a volume's snapshot id can only be set by creating
         * it (ebs_volume.go: snapshot_id ForceNew), and the volume it replaces is protected.
         */
        restoreFrom?: { snapshotId: string; checked: pulumi.Input<string> };
    };
    /** Bootstrap only, rendered from the data volume's id; nothing in it changes with the config. */
    userData: (volumeId: string) => string;
    provider: aws.Provider;
    /**
     * An instance role (and its instance profile), for software on the host that calls AWS without a
     * stored key: the ACME client (tls.acme). `containers`: software in a container on the host asks too
     * (an EC2 relay's container), which takes one more network hop to the metadata service (IMDSv2's
     * PUT answer must survive Docker's bridge). Both are set on a running instance in place.
     */
    instanceRole?: { containers: boolean };
}

export interface Ec2Host {
    publicIp: pulumi.Output<string>;
    /** With `ipv6`: the instance's IPv6 address (from its subnet; not elastic: a new instance gets another). */
    ipv6Address?: pulumi.Output<string>;
    instance: aws.ec2.Instance;
    connection: command.types.input.remote.ConnectionArgs;
    /** Completes once cloud-init has finished on the current instance. */
    ready: command.remote.Command;
    eip: aws.ec2.Eip;
    /** With `instanceRole`: what the instance acts as. */
    role?: aws.iam.Role;
}

/**
 * The configured AMI, looked up with the instance type's architecture: an x86_64 image given for a
 * Graviton type (or the reverse) fails the preview, before the old instance is deleted.
 */
function checkedAmi(placement: Ec2HostArgs["placement"], opts: pulumi.InvokeOutputOptions): pulumi.Output<string> {
    return aws.ec2
        .getAmiOutput(
            {
                filters: [
                    { name: "image-id", values: [placement.ami] },
                    { name: "architecture", values: [architectureOf(placement.instanceType)] },
                ],
            },
            opts,
        )
        .apply((image) => image.id);
}

/**
 * `ipv6`: one IPv6 address (ipv6AddressCount 1) from the subnet, which must have an IPv6 block. The
 * region's default subnets have none until you add it (README: IPv6), so the subnet is looked up (the
 * zone's default one without subnetId) and one without a block fails the preview, before any change,
 * rather than the instance's creation or update halfway through. On a running instance the count
 * changes in place (AssignIpv6Addresses on its network interface: no stop, no replacement; see
 * lib/plan/replacement.ts).
 */
function checkedIpv6AddressCount(
    placement: Ec2HostArgs["placement"],
    hostname: string,
    subnet: pulumi.Output<aws.ec2.GetSubnetResult> | undefined,
    opts: pulumi.InvokeOutputOptions,
): pulumi.Output<number> {
    const found =
        subnet ??
        aws.ec2.getSubnetOutput(
            {
                filters: [
                    { name: "default-for-az", values: ["true"] },
                    { name: "availability-zone", values: [`${placement.region}a`] },
                ],
            },
            opts,
        );
    return found.apply((s) => {
        const problem = ipv6SubnetProblem(hostname, s, placement);
        if (problem !== undefined) throw new Error(problem);
        return 1;
    });
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
            ipv6: placement.ipv6,
            ...(subnet !== undefined ? { vpcId: subnet.vpcId } : {}),
        },
        child,
    );
    const data = args.dataVolume;
    const restore = data.restoreFrom;
    const volume = new aws.ebs.Volume(
        restore === undefined ? `${name}-${data.suffix}` : `${name}-${data.suffix}-from-${restore.snapshotId}`,
        {
            availabilityZone,
            size: data.sizeGiB,
            type: "gp3",
            encrypted: true,
            ...(restore === undefined ? {} : { snapshotId: restore.checked }),
            tags: { Name: `${args.hostname} ${data.what}${restore === undefined ? "" : ` (restored from ${restore.snapshotId})`}`, ...data.tags },
        },
        // It holds mail: neither `pulumi destroy` nor a replacement may take it along.
        { ...child, protect: true, retainOnDelete: true },
    );
    // DNS and the other hosts point at this address; removing the host leaves it allocated (README).
    const eip = new aws.ec2.Eip(`${name}-eip`, { domain: "vpc", tags: { Name: args.hostname } }, { ...child, retainOnDelete: true });
    const identity = args.instanceRole === undefined ? undefined : declareInstanceRole(name, args.hostname, child);
    const instance = new aws.ec2.Instance(
        `${name}-vm`,
        {
            ami: checkedAmi(placement, child),
            instanceType: placement.instanceType,
            availabilityZone,
            ...(placement.subnetId !== undefined ? { subnetId: placement.subnetId } : {}),
            vpcSecurityGroupIds: [firewall.securityGroupId],
            ...(placement.ipv6 ? { ipv6AddressCount: checkedIpv6AddressCount(placement, args.hostname, subnet, child) } : {}),
            // Not ignored: a replacement must boot with today's bootstrap and keys, not the first deploy's.
            userData: volume.id.apply(args.userData),
            rootBlockDevice: { encrypted: true, volumeSize: 16, volumeType: "gp3" },
            // IAM instance profile association and metadata options change in place (ec2_instance.go:
            // AssociateIamInstanceProfile, ModifyInstanceMetadataOptions), without a stop.
            ...(identity !== undefined ? { iamInstanceProfile: identity.profile.name } : {}),
            metadataOptions: { httpTokens: "required", ...(args.instanceRole?.containers ? { httpPutResponseHopLimit: 2 } : {}) },
            tags: { Name: args.hostname },
        },
        // The data volume can be attached to one instance at a time: the old one must let go first.
        { ...child, deleteBeforeReplace: true },
    );
    new aws.ec2.VolumeAttachment(
        // One attachment whichever volume it is: a restored volume replaces it, old one detached first.
        `${name}-${data.suffix}-attach`,
        // Stopped before detaching, so that the file system holding the mail is closed cleanly.
        { deviceName: "/dev/sdf", volumeId: volume.id, instanceId: instance.id, stopInstanceBeforeDetaching: true },
        { ...child, deleteBeforeReplace: true },
    );
    const association = new aws.ec2.EipAssociation(`${name}-eip-assoc`, { allocationId: eip.allocationId, instanceId: instance.id }, child);

    const connection = sshConnection(eip.publicIp, ADMIN_USER);
    const ready = new command.remote.Command(
        `${name}-ready`,
        // A new instance (its id in the triggers) is waited for again.
        { connection, create: WAIT_FOR_CLOUD_INIT, update: WAIT_FOR_CLOUD_INIT, triggers: [instance.id] },
        { parent: owner, dependsOn: [association, instance] },
    );
    return {
        publicIp: eip.publicIp,
        ...(placement.ipv6 ? { ipv6Address: instance.ipv6Addresses.apply((addresses) => addresses[0]) } : {}),
        instance,
        connection,
        ready,
        eip,
        ...(identity !== undefined ? { role: identity.role } : {}),
    };
}

/** The host's instance role, which others grant rights to (the ACME challenge zone), and its profile. */
function declareInstanceRole(name: string, hostname: string, child: { parent: pulumi.Resource; provider: aws.Provider }): { role: aws.iam.Role; profile: aws.iam.InstanceProfile } {
    const role = new aws.iam.Role(`${name}-role`, { description: `${hostname}: what software on the host may do in AWS`, assumeRolePolicy: EC2_ASSUME_ROLE_POLICY }, child);
    const profile = new aws.iam.InstanceProfile(`${name}-profile`, { role: role.name }, child);
    return { role, profile };
}

/**
 * PTR for the Elastic IP; AWS refuses it until the forward A record resolves publicly (README). IPv4
 * only: an Elastic IP is an IPv4 address, and AWS sets no PTR for an instance's IPv6 address at all, so
 * the hosts send over IPv4 first (smtp_address_preference; README: IPv6).
 */
export function declareReverseDns(owner: pulumi.ComponentResource, name: string, host: Ec2Host, hostname: string, provider: aws.Provider, forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName {
    return new aws.ec2.EipDomainName(`${name}-ptr`, { allocationId: host.eip.allocationId, domainName: hostname }, { parent: owner, dependsOn: forwardRecords, provider });
}

/**
 * The admin keys on the running host. cloud-init installs them only at an instance's first boot, so a
 * changed list arrives here; it is in the user data too, for a replacement.
 */
export function declareAdminKeys(owner: pulumi.ComponentResource, name: string, host: Ec2Host, keys: readonly string[]): command.remote.Command {
    return new command.remote.Command(
        `${name}-admin-keys`,
        { connection: host.connection, create: INSTALL_ADMIN_KEYS, update: INSTALL_ADMIN_KEYS, stdin: `${keys.join("\n")}\n`, triggers: [host.instance.id] },
        // After the instance's own update (a changed user data stops and starts it).
        { parent: owner, dependsOn: [host.ready, host.instance] },
    );
}
