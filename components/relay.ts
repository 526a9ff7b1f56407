import * as aws from "@pulumi/aws";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { gzipSync } from "node:zlib";
import type { AwsRelayPlacement, DockerRelayPlacement, Relay, Topology } from "../lib/topology/schema";
import { RELAY_IMAGE_TAG, renderRelayCloudInit } from "../lib/render/cloud-init";
import { RECIPIENTS_PATH, RELAY_HEALTHCHECK, RELAY_QUEUE_PATH, recipientsFile, relayEnvironment } from "../lib/render/relay-env";
import type { RelayImage } from "../lib/relay-image";
import { Firewall, debianAmi } from "./firewall";

export interface RelayNodeArgs {
    topology: Topology;
    relay: Relay;
    image: RelayImage;
    /** Required for an `aws` placement: the provider for its region. */
    awsProvider?: aws.Provider;
}

/** A backup MX: the relay image on a remote Docker host, or on its own EC2 instance. */
export class RelayNode extends pulumi.ComponentResource {
    readonly publicIp: pulumi.Output<string>;
    readonly hostname: string;
    private readonly eip?: aws.ec2.Eip;
    private readonly awsProvider?: aws.Provider;
    private readonly resourceName: string;

    constructor(name: string, args: RelayNodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:relay:RelayNode", name, {}, opts);
        this.hostname = args.relay.hostname;
        this.resourceName = name;
        const placement = args.relay.placement;
        if (placement.kind === "docker") {
            this.publicIp = pulumi.output(placement.address);
            this.onDockerHost(name, args, placement);
        } else {
            if (args.awsProvider === undefined) throw new Error(`${name}: an aws relay needs the provider for ${placement.region}`);
            this.awsProvider = args.awsProvider;
            this.eip = this.onEc2(name, args, placement, args.awsProvider);
            this.publicIp = this.eip.publicIp;
        }
        this.registerOutputs({ publicIp: this.publicIp });
    }

    private onDockerHost(name: string, args: RelayNodeArgs, placement: DockerRelayPlacement): void {
        const provider = new docker.Provider(`${name}-docker`, { host: placement.host, sshOpts: ["-o", "BatchMode=yes"] }, { parent: this });
        const child = { parent: this, provider };
        // Built on the relay's own Docker host for its platform: no registry to run or trust.
        const image = new docker.Image(
            `${name}-image`,
            {
                imageName: `${RELAY_IMAGE_TAG.split(":")[0]}:${args.image.digest}`,
                build: { context: args.image.dir, platform: placement.platform },
                skipPush: true,
            },
            child,
        );
        const queue = new docker.Volume(`${name}-queue`, { name: `${name}-queue` }, { ...child, retainOnDelete: true });
        const env = relayEnvironment(args.topology, args.relay);
        new docker.Container(
            `${name}-relay`,
            {
                name: `${name}-relay`,
                image: image.imageName,
                hostname: args.relay.hostname,
                restart: "unless-stopped",
                ports: [{ internal: 25, external: 25 }],
                volumes: [{ volumeName: queue.name, containerPath: RELAY_QUEUE_PATH }],
                envs: Object.entries(env).map(([k, v]) => `${k}=${v}`),
                uploads: [{ file: RECIPIENTS_PATH, content: recipientsFile(args.topology) }],
                healthcheck: { tests: ["CMD", RELAY_HEALTHCHECK], interval: "30s", timeout: "10s", retries: 3, startPeriod: "30s" },
                // Postfix needs time to close its queue files cleanly on SIGTERM.
                stopTimeout: 30,
            },
            child,
        );
    }

    private onEc2(name: string, args: RelayNodeArgs, placement: AwsRelayPlacement, provider: aws.Provider): aws.ec2.Eip {
        const child = { parent: this, provider };
        const firewall = new Firewall(
            `${name}-fw`,
            { description: `backup MX ${args.relay.hostname}`, publicTcpPorts: [25], adminSshCidr: placement.adminSshCidr },
            child,
        );
        const eip = new aws.ec2.Eip(`${name}-eip`, { domain: "vpc", tags: { Name: args.relay.hostname } }, child);
        const instance = new aws.ec2.Instance(
            `${name}-vm`,
            {
                ami: debianAmi(provider, this),
                instanceType: placement.instanceType,
                vpcSecurityGroupIds: [firewall.securityGroupId],
                // Gzipped: the image's files would push plain user data past EC2's 16 KB limit.
                userDataBase64: gzipSync(renderRelayCloudInit(args.topology, args.relay, args.image.files)).toString("base64"),
                // The queue lives on the root disk: keep it if the instance is replaced by hand.
                rootBlockDevice: { encrypted: true, volumeSize: 16, volumeType: "gp3", deleteOnTermination: false },
                metadataOptions: { httpTokens: "required" },
                tags: { Name: args.relay.hostname },
            },
            child,
        );
        new aws.ec2.EipAssociation(`${name}-eip-assoc`, { allocationId: eip.allocationId, instanceId: instance.id }, child);
        return eip;
    }

    /** PTR record for an EC2 relay; a Docker host's PTR is set at its provider by hand. */
    addReverseDns(forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName | undefined {
        if (this.eip === undefined) return undefined;
        return new aws.ec2.EipDomainName(
            `${this.resourceName}-ptr`,
            { allocationId: this.eip.allocationId, domainName: this.hostname },
            { parent: this, dependsOn: forwardRecords, provider: this.awsProvider },
        );
    }
}
