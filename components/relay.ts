import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { Relay, Topology } from "../lib/topology/schema";
import { ADMIN_USER, RELAY_QUEUE_MOUNT, renderRelayCloudInit } from "../lib/render/cloud-init";
import { parseSshUrl, relayContainerSpec, type RelayContainerSpec } from "../lib/render/relay-container";
import { dockerRelayApplyCommand } from "../lib/render/relay-apply";
import { dockerPlatformOf } from "../lib/topology/ec2";
import type { RelayImage } from "../lib/relay-image";
import { declareAdminKeys, declareEc2Host, declareReverseDns, sshConnection, type Ec2Host } from "./ec2-host";

export interface RelayNodeArgs {
    topology: Topology;
    relay: Relay;
    image: RelayImage;
    /** Required for an `aws` placement: the provider for its region. */
    awsProvider?: aws.Provider;
}

// The Docker CLI reaches the host with the local ssh client; a new EC2 host's key is accepted on first
// contact (it is reached at its own Elastic IP, from the admin network only).
const SSH_OPTS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"];

/**
 * A backup MX: the relay container on a Docker host. The host is yours (`docker`) or an EC2 instance
 * the stack creates (`aws`); either way the same container spec runs on it, managed over ssh://.
 */
export class RelayNode extends pulumi.ComponentResource {
    readonly publicIp: pulumi.Output<string>;
    readonly hostname: string;
    /** The apply step for recipients: a changed list shows up here in a preview. */
    readonly recipients: command.remote.Command;
    private readonly ec2?: { host: Ec2Host; provider: aws.Provider; reverseDns: boolean };
    private readonly resourceName: string;

    constructor(name: string, args: RelayNodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:relay:RelayNode", name, {}, opts);
        this.hostname = args.relay.hostname;
        this.resourceName = name;
        const placement = args.relay.placement;

        let dockerHost: pulumi.Input<string>;
        let connection: command.types.input.remote.ConnectionArgs;
        let platform: string;
        let queueHostPath: string | undefined;
        let hostReady: pulumi.Resource[] = [];
        if (placement.kind === "docker") {
            const target = parseSshUrl(placement.host);
            dockerHost = placement.host;
            connection = sshConnection(target.host, target.user, target.port);
            platform = placement.platform;
            this.publicIp = pulumi.output(placement.address);
        } else {
            if (args.awsProvider === undefined) throw new Error(`${name}: an aws relay needs the provider for ${placement.region}`);
            const host = declareEc2Host(this, name, {
                hostname: this.hostname,
                placement,
                description: `backup MX ${this.hostname}`,
                publicTcpPorts: [25],
                dataVolume: { suffix: "queue-disk", sizeGiB: placement.queueVolumeSizeGiB, what: "relay queue" },
                userData: (queueVolumeId) => renderRelayCloudInit(args.topology, args.relay, { queueVolumeId }),
                provider: args.awsProvider,
            });
            declareAdminKeys(this, name, host, args.topology.admin.sshKeys);
            this.ec2 = { host, provider: args.awsProvider, reverseDns: placement.reverseDns };
            dockerHost = pulumi.interpolate`ssh://${ADMIN_USER}@${host.publicIp}`;
            connection = host.connection;
            platform = dockerPlatformOf(placement.instanceType);
            queueHostPath = RELAY_QUEUE_MOUNT;
            hostReady = [host.ready];
            this.publicIp = host.publicIp;
        }

        const spec = relayContainerSpec(args.topology, args.relay, name, args.image.digest, queueHostPath);
        const provider = new docker.Provider(`${name}-docker`, { host: dockerHost, sshOpts: SSH_OPTS }, { parent: this });
        const container = this.declareContainer(name, spec, args.image.dir, platform, provider, hostReady);
        const apply = dockerRelayApplyCommand(spec.containerName);
        this.recipients = new command.remote.Command(
            `${name}-recipients`,
            // The container is seeded with the list at create; this keeps the running one current.
            { connection, create: apply, update: apply, stdin: spec.recipients.content, triggers: [container.id] },
            { parent: this, dependsOn: [container] },
        );
        this.registerOutputs({ publicIp: this.publicIp });
    }

    private declareContainer(name: string, spec: RelayContainerSpec, imageDir: string, platform: string, provider: docker.Provider, hostReady: pulumi.Resource[]): docker.Container {
        const child = { parent: this, provider, dependsOn: hostReady };
        // Built on the relay's own Docker host for its platform: no registry to run or trust.
        const image = new docker.Image(`${name}-image`, { imageName: spec.imageName, build: { context: imageDir, platform }, skipPush: true }, child);
        const queue = new docker.Volume(
            `${name}-queue`,
            {
                name: spec.volumeName,
                // On EC2 the queue's bytes live on their own EBS volume, which outlives the instance.
                ...(spec.queueHostPath !== undefined ? { driver: "local", driverOpts: { type: "none", o: "bind", device: spec.queueHostPath } } : {}),
            },
            // It holds the queue: a replacement would delete it first, so it is protected (README: removing a relay).
            { ...child, protect: true, retainOnDelete: true },
        );
        return new docker.Container(
            `${name}-relay`,
            {
                name: spec.containerName,
                // repoDigest changes with every rebuild (the image's files), so a new image rolls the container.
                image: image.repoDigest,
                hostname: spec.hostname,
                restart: "unless-stopped",
                ports: [{ internal: 25, external: 25 }],
                volumes: [{ volumeName: queue.name, containerPath: spec.queuePath }],
                envs: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
                uploads: [{ file: spec.recipients.path, content: spec.recipients.content }],
                healthcheck: spec.healthcheck,
                stopTimeout: spec.stopTimeoutSeconds,
            },
            {
                ...child,
                // Fixed name and port 25: the old container must go before the new one starts (the provider
                // does this too). The queue stays on its volume.
                deleteBeforeReplace: true,
                // The recipients apply step keeps the file current; a new list must not replace the container.
                ignoreChanges: ["uploads"],
            },
        );
    }

    /** PTR for an EC2 relay with `reverseDns`; a Docker host's PTR is set at its provider by hand. */
    addReverseDns(forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName | undefined {
        if (this.ec2 === undefined || !this.ec2.reverseDns) return undefined;
        return declareReverseDns(this, this.resourceName, this.ec2.host, this.hostname, this.ec2.provider, forwardRecords);
    }
}
