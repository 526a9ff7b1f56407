import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import type { OwnRelay } from "../lib/topology/placement";
import { ADMIN_USER, RELAY_QUEUE_MOUNT, renderRelayCloudInit } from "../lib/render/cloud-init";
import { relayContainerSpec, type RelayContainerSpec } from "../lib/render/relay-container";
import { RELAY_STATUS_PORT } from "../lib/render/relay-env";
import { parseSshUrl } from "../lib/topology/ssh-url";
import { dockerRelayApplyCommand } from "../lib/render/relay-apply";
import { dockerPlatformOf } from "../lib/topology/ec2";
import type { RelayImage } from "../lib/relay-image";
import { declareAdminKeys, declareEc2Host, declareReverseDns, type Ec2Host } from "./ec2-host";
import { sshConnection } from "./ssh";
import type { AcmeChallenge } from "./acme-challenge";

const HOST_INSTANCE_LABEL = "mailcontinuity.instance";

export interface RelayNodeArgs {
    topology: Topology;
    /** One the stack runs: a partner's MX (kind: partner) gets no RelayNode. */
    relay: OwnRelay;
    image: RelayImage;
    /** Required for an `aws` placement: the provider for its region. */
    awsProvider?: aws.Provider;
    /** With tls.acme: where the relay answers its DNS-01 challenge, and the right to. */
    acme?: AcmeChallenge;
}

// The Docker CLI reaches the host with the local ssh client; a new host's key is accepted on first
// contact (an EC2 relay is reached at its own Elastic IP, from the admin network only).
const SSH_OPTS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"];

/** Where the container runs: the host's Docker, and on EC2 the instance it must follow. */
interface DockerTarget {
    provider: docker.Provider;
    platform: string;
    /** EC2 only: a replaced instance has an empty Docker, so everything on it is made again. */
    instanceId?: pulumi.Output<string>;
    queueHostPath?: string;
    hostReady: pulumi.Resource[];
    /** Deploy-time variables on top of the spec's (the ACME client's AWS_*); a secret stays one. */
    env: pulumi.Input<string>[];
}

/**
 * A backup MX: the relay container on a Docker host. The host is yours (`docker`) or an EC2 instance
 * the stack creates (`aws`); either way the same container spec runs on it, managed over ssh://.
 */
export class RelayNode extends pulumi.ComponentResource {
    readonly publicIp: pulumi.Output<string>;
    /** Its IPv6 address, when it has one (a Docker host's address6, an EC2 relay's with ipv6). */
    readonly publicIpv6?: pulumi.Output<string>;
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

        let target: DockerTarget;
        let connection: command.types.input.remote.ConnectionArgs;
        const acme = args.acme;
        if (placement.kind === "docker") {
            const ssh = parseSshUrl(placement.host);
            connection = sshConnection(ssh.host, ssh.user, ssh.port);
            // Not on AWS: its own IAM user's key, in the container's environment as a secret.
            const credential = acme?.accessKeyFor(this.hostname);
            target = {
                provider: new docker.Provider(`${name}-docker`, { host: placement.host, sshOpts: SSH_OPTS }, { parent: this }),
                platform: placement.platform,
                hostReady: credential === undefined ? [] : [credential.grant],
                env:
                    acme === undefined || credential === undefined
                        ? []
                        : [
                              ...acmeZoneEnv(acme),
                              pulumi.interpolate`AWS_ACCESS_KEY_ID=${credential.key.accessKeyId}`,
                              pulumi.secret(pulumi.interpolate`AWS_SECRET_ACCESS_KEY=${credential.key.secretAccessKey}`),
                          ],
            };
            this.publicIp = pulumi.output(placement.address);
            if (placement.address6 !== undefined) this.publicIpv6 = pulumi.output(placement.address6);
        } else {
            if (args.awsProvider === undefined) throw new Error(`${name}: an aws relay needs the provider for ${placement.region}`);
            const host = declareEc2Host(this, name, {
                hostname: this.hostname,
                placement,
                description: `backup MX ${this.hostname}`,
                // 25 for mail; the queue health for the alerts' Route53 checkers, whose addresses (AWS's
                // published ranges) this program cannot fetch: it answers only "ok" or the reason.
                publicTcpPorts: [25, RELAY_STATUS_PORT],
                dataVolume: { suffix: "queue-disk", sizeGiB: placement.queueVolumeSizeGiB, what: "relay queue" },
                userData: (queueVolumeId) => renderRelayCloudInit(args.topology, args.relay, { queueVolumeId }),
                provider: args.awsProvider,
                // The ACME client in the container uses the instance's role: no key is stored anywhere.
                ...(acme !== undefined ? { instanceRole: { containers: true } } : {}),
            });
            declareAdminKeys(this, name, host, args.topology.admin.sshKeys);
            this.ec2 = { host, provider: args.awsProvider, reverseDns: placement.reverseDns };
            connection = host.connection;
            // Each instance has its own host key at the same address: known per instance, not per address.
            const sshOpts = [...SSH_OPTS, "-o", pulumi.interpolate`HostKeyAlias=${this.hostname}-${host.instance.id}`];
            target = {
                provider: new docker.Provider(`${name}-docker`, { host: pulumi.interpolate`ssh://${ADMIN_USER}@${host.publicIp}`, sshOpts }, { parent: this }),
                platform: dockerPlatformOf(placement.instanceType),
                instanceId: host.instance.id,
                queueHostPath: RELAY_QUEUE_MOUNT,
                hostReady: [host.ready, ...(acme !== undefined && host.role !== undefined ? [acme.grantToRole(this.hostname, host.role)] : [])],
                env: acme === undefined ? [] : acmeZoneEnv(acme),
            };
            this.publicIp = host.publicIp;
            if (host.ipv6Address !== undefined) this.publicIpv6 = host.ipv6Address;
        }

        const spec = relayContainerSpec(args.topology, args.relay, name, args.image.digest, target.queueHostPath);
        const container = this.declareContainer(name, spec, args.image.context, target);
        const apply = dockerRelayApplyCommand(spec.containerName);
        this.recipients = new command.remote.Command(
            `${name}-recipients`,
            // The container is seeded with the list at create; this keeps the running one current.
            { connection, create: apply, update: apply, stdin: spec.recipients.content, triggers: [container.id] },
            { parent: this, dependsOn: [container] },
        );
        this.registerOutputs({ publicIp: this.publicIp });
    }

    private declareContainer(name: string, spec: RelayContainerSpec, buildContext: string, target: DockerTarget): docker.Container {
        const child = { parent: this, provider: target.provider, dependsOn: target.hostReady };
        // Which instance these live on: a replaced EC2 instance has none of them, so they are made anew.
        const onInstance: Record<string, pulumi.Input<string>> = target.instanceId === undefined ? {} : { [HOST_INSTANCE_LABEL]: target.instanceId };
        const labels = Object.entries(onInstance).map(([label, value]) => ({ label, value }));
        // Built on the relay's own Docker host for its platform: no registry to run or trust.
        const image = new docker.Image(
            `${name}-image`,
            { imageName: spec.imageName, build: { context: buildContext, platform: target.platform, ...(labels.length > 0 ? { args: onInstance } : {}) }, skipPush: true },
            child,
        );
        const queue = new docker.Volume(
            `${name}-queue`,
            spec.queueHostPath === undefined
                ? { name: spec.volumeName }
                : // On EC2 the queue's bytes live on their own EBS volume (protected, kept); this only binds it.
                  { name: spec.volumeName, driver: "local", driverOpts: { type: "none", o: "bind", device: spec.queueHostPath }, labels },
            // On a Docker host this volume holds the queue: a replacement would delete it first, so it is
            // protected (README: removing a relay). On EC2 the EBS volume is protected instead.
            spec.queueHostPath === undefined ? { ...child, protect: true, retainOnDelete: true } : { ...child, retainOnDelete: true },
        );
        return new docker.Container(
            `${name}-relay`,
            {
                name: spec.containerName,
                // repoDigest changes with every rebuild (the image's files), so a new image rolls the container.
                image: image.repoDigest,
                hostname: spec.hostname,
                restart: "unless-stopped",
                ports: spec.ports,
                volumes: [{ volumeName: queue.name, containerPath: spec.queuePath }],
                // One input per variable, so that a secret one is hidden alone and the others show as they change.
                envs: [...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`), ...target.env],
                uploads: [{ file: spec.recipients.path, content: spec.recipients.content }],
                healthcheck: spec.healthcheck,
                stopTimeout: spec.stopTimeoutSeconds,
                ...(labels.length > 0 ? { labels } : {}),
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

/** lego's route53 provider: the challenge zone by id (so it needs no right to list zones), and a region. */
function acmeZoneEnv(acme: AcmeChallenge): pulumi.Input<string>[] {
    return [pulumi.interpolate`AWS_HOSTED_ZONE_ID=${acme.zoneId}`, `AWS_REGION=${acme.region}`];
}
