// Where the MX hosts answer their ACME DNS-01 challenges (tls.acme): a small Route53 hosted zone of its
// own, delegated from its parent at every DNS provider (the records come from buildRecordSet with this
// zone's nameservers), and for each host a credential that may write only its own TXT record there.
// An EC2 host's instance role gets that right; a Docker relay, which is not on AWS, an IAM user and an
// access key, handed to its container only as a secret. Nothing here holds mail: a change is an
// update in place (a policy document, an access key's status) or a new key; a new challengeZone (or a
// new first domain, its default) makes a new zone (README, "What each change does").
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import { acmeChallengeZone } from "../lib/topology/tls";
import { slug } from "../lib/topology/placement";
import { ROUTE53_API_REGION, acmeChallengePolicy, acmeRecordNames } from "../lib/render/acme";

export interface AcmeChallengeArgs {
    topology: Topology;
    /** Route53 and IAM are global; any region's provider will do. */
    provider: aws.Provider;
}

/** Route53 always delegates a hosted zone to four nameservers. */
const ROUTE53_NAMESERVER_COUNT = 4;

/** An access key for a host outside AWS. */
export interface AcmeAccessKey {
    accessKeyId: pulumi.Output<string>;
    /** Secret: only ever handed on as one. */
    secretAccessKey: pulumi.Output<string>;
}

/** The challenge zone, and a way for each host to answer its own challenge there. */
export class AcmeChallenge extends pulumi.ComponentResource {
    readonly zoneName: string;
    readonly zoneId: pulumi.Output<string>;
    /** The zone's four nameservers, sorted: the delegation records at every provider. */
    readonly nameservers: pulumi.Output<string>[];
    /** For lego's route53 provider beside AWS_HOSTED_ZONE_ID. */
    readonly region = ROUTE53_API_REGION;
    private readonly topology: Topology;
    private readonly resourceName: string;
    private readonly provider: aws.Provider;

    constructor(name: string, args: AcmeChallengeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:acme:AcmeChallenge", name, {}, opts);
        const zoneName = acmeChallengeZone(args.topology);
        if (zoneName === undefined) throw new Error(`${name}: the topology has no tls.acme`);
        this.zoneName = zoneName;
        this.topology = args.topology;
        this.resourceName = name;
        this.provider = args.provider;
        const zone = new aws.route53.Zone(
            `${name}-zone`,
            // Its records are lego's passing TXT answers: removing ACME may take them along. Not protected:
            // only the stack's own delegation points at it, and it follows a new zone's nameservers.
            { name: zoneName, comment: `mailcontinuity: ACME DNS-01 answers of the MX hosts (${zoneName})`, forceDestroy: true },
            { parent: this, provider: args.provider },
        );
        this.zoneId = zone.zoneId;
        const sorted = zone.nameServers.apply((ns) => [...ns].sort());
        this.nameservers = Array.from({ length: ROUTE53_NAMESERVER_COUNT }, (_, i) => sorted.apply((ns) => ns[i]));
        this.registerOutputs({ zoneId: this.zoneId });
    }

    /** This host's right to write its own challenge answer, and nothing else, in the challenge zone. */
    policyFor(hostname: string): pulumi.Output<string> {
        const names = acmeRecordNames(this.topology, [hostname]);
        return this.zoneId.apply((id) => acmeChallengePolicy(id, names));
    }

    /** An EC2 host: its instance role may answer its challenge (inline policy, updated in place). */
    grantToRole(hostname: string, role: aws.iam.Role): aws.iam.RolePolicy {
        return new aws.iam.RolePolicy(
            `${this.resourceName}-${slug(hostname)}`,
            { role: role.name, policy: this.policyFor(hostname) },
            { parent: this, provider: this.provider },
        );
    }

    /**
     * A host outside AWS (a Docker relay): an IAM user that may only answer its challenge, and its access
     * key. The key's secret is a Pulumi secret (state and preview); a new key (`pulumi up --replace` of
     * `-key`) reaches the container by recreating it.
     */
    accessKeyFor(hostname: string): { key: AcmeAccessKey; grant: aws.iam.UserPolicy } {
        const base = `${this.resourceName}-${slug(hostname)}`;
        const child = { parent: this, provider: this.provider };
        const user = new aws.iam.User(`${base}-user`, { path: "/mailcontinuity/", tags: { Name: `${hostname} ACME DNS-01` } }, child);
        const grant = new aws.iam.UserPolicy(`${base}-access`, { user: user.name, policy: this.policyFor(hostname) }, child);
        const key = new aws.iam.AccessKey(`${base}-key`, { user: user.name }, child);
        return { key: { accessKeyId: key.id, secretAccessKey: pulumi.secret(key.secret) }, grant };
    }
}
