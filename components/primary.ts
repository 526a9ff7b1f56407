import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsPrimaryPlacement, Topology } from "../lib/topology/schema";
import { renderPrimaryCloudInit } from "../lib/render/cloud-init";
import { Firewall, debianAmi } from "./firewall";

export interface PrimaryMailHostArgs {
    topology: Topology;
    placement: AwsPrimaryPlacement;
    relayAddresses: pulumi.Input<string>[];
    provider: aws.Provider;
}

// SMTP, SMTPS (submission over TLS), submission, IMAPS.
export const PRIMARY_PUBLIC_PORTS = [25, 465, 587, 993];

export class PrimaryMailHost extends pulumi.ComponentResource {
    readonly publicIp: pulumi.Output<string>;
    readonly instanceId: pulumi.Output<string>;
    private readonly eip: aws.ec2.Eip;
    private readonly hostname: string;
    private readonly resourceName: string;
    private readonly provider: aws.Provider;

    constructor(name: string, args: PrimaryMailHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:primary:PrimaryMailHost", name, {}, opts);
        const { topology, placement, provider } = args;
        const child = { parent: this, provider };
        this.resourceName = name;
        this.provider = provider;
        this.hostname = topology.primary.hostname;
        // Volume and instance must share an AZ; pin it rather than let EC2 pick.
        const availabilityZone = `${placement.region}a`;

        const firewall = new Firewall(
            `${name}-fw`,
            { description: `mail host ${this.hostname}`, publicTcpPorts: PRIMARY_PUBLIC_PORTS, adminSshCidr: placement.adminSshCidr },
            child,
        );
        const mailVolume = new aws.ebs.Volume(
            `${name}-mail`,
            { availabilityZone, size: placement.volumeSizeGiB, type: "gp3", encrypted: true, tags: { Name: `${this.hostname} mail` } },
            // The mailboxes live here: `pulumi destroy` must not take them along by accident.
            { ...child, protect: true },
        );
        this.eip = new aws.ec2.Eip(`${name}-eip`, { domain: "vpc", tags: { Name: this.hostname } }, child);
        const userData = pulumi
            .all([pulumi.all(args.relayAddresses), mailVolume.id])
            .apply(([relayAddresses, mailVolumeId]) => renderPrimaryCloudInit(topology, { relayAddresses, mailVolumeId }));
        const instance = new aws.ec2.Instance(
            `${name}-vm`,
            {
                ami: debianAmi(provider, this),
                instanceType: placement.instanceType,
                availabilityZone,
                vpcSecurityGroupIds: [firewall.securityGroupId],
                userData,
                rootBlockDevice: { encrypted: true, volumeSize: 16, volumeType: "gp3" },
                metadataOptions: { httpTokens: "required" },
                tags: { Name: this.hostname },
            },
            child,
        );
        new aws.ec2.VolumeAttachment(`${name}-mail-attach`, { deviceName: "/dev/sdf", volumeId: mailVolume.id, instanceId: instance.id }, child);
        new aws.ec2.EipAssociation(`${name}-eip-assoc`, { allocationId: this.eip.allocationId, instanceId: instance.id }, child);

        this.publicIp = this.eip.publicIp;
        this.instanceId = instance.id;
        this.registerOutputs({ publicIp: this.publicIp, instanceId: this.instanceId });
    }

    /** PTR record for the Elastic IP; AWS refuses it until the forward A record resolves. */
    addReverseDns(forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName {
        return new aws.ec2.EipDomainName(
            `${this.resourceName}-ptr`,
            { allocationId: this.eip.allocationId, domainName: this.hostname },
            { parent: this, dependsOn: forwardRecords, provider: this.provider },
        );
    }
}
