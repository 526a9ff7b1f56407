// The MTA-STS policy site: https://mta-sts.<domain>/.well-known/mta-sts.txt for every domain, the
// bytes of mtaStsPolicy(topology), from a private S3 bucket behind CloudFront with an ACM certificate.
//
// Why not a Cloudflare Worker on a custom domain: its hostname would exist only at Cloudflare, and
// Route53 could not serve the same answer for mta-sts.<domain>. Every record here is identical at both
// providers (DESIGN.md), so one failing changes no answer: mta-sts.<domain> is a CNAME to CloudFront
// at both, and the certificate is validated through CNAMEs published at both.
//
// What a change does (providers' rules in lib/plan/replacement.ts):
// - a policy change (mode, MX hosts) rewrites the object in place (same bucket and key); CloudFront
//   does not cache it, so the next fetch gets it, and the `_mta-sts` records change only after it;
// - a domain added or removed replaces the certificate (its names cannot change), new before old,
//   and updates the distribution's aliases and certificate in place: the distribution, and so the
//   CNAME every domain points at, stays.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import { mtaStsPolicy } from "../lib/render/records";
import {
    CLOUDFRONT_CACHING_DISABLED,
    MTA_STS_CACHE_CONTROL,
    MTA_STS_CONTENT_TYPE,
    MTA_STS_POLICY_KEY,
    mtaStsBucketPolicy,
    mtaStsHostnames,
} from "../lib/render/mta-sts-site";
import type { CertificateValidationRecord } from "./dns";

export interface MtaStsSiteArgs {
    topology: Topology;
    /** us-east-1: CloudFront takes certificates only from there. The bucket is there too. */
    provider: aws.Provider;
}

const ORIGIN_ID = "mta-sts-policy";

export class MtaStsSite extends pulumi.ComponentResource {
    /** The object senders fetch (its content is mtaStsPolicy(topology)): `_mta-sts` records change after it. */
    readonly policyFile: aws.s3.BucketObjectv2;
    /** ACM's DNS-validation CNAMEs, one per mta-sts.<domain>: publish them at every DNS provider. */
    readonly certificateValidationRecords: CertificateValidationRecord[];
    /** CloudFront's name for the site: mta-sts.<domain> is a CNAME to it (known once serve() has run). */
    readonly host: pulumi.Output<string>;
    private readonly resolveHost: (host: pulumi.Output<string>) => void;
    private readonly siteName: string;
    private readonly args: MtaStsSiteArgs;
    private readonly privateBucket: aws.s3.BucketPublicAccessBlock;
    private readonly bucket: aws.s3.Bucket;
    private readonly certificate: aws.acm.Certificate;
    private readonly originAccess: aws.cloudfront.OriginAccessControl;

    constructor(name: string, args: MtaStsSiteArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:mtasts:MtaStsSite", name, {}, opts);
        this.siteName = name;
        this.args = args;
        const { topology, provider } = args;
        const hostnames = mtaStsHostnames(topology);
        const inRegion = { parent: this, provider };

        this.bucket = new aws.s3.Bucket(`${name}-bucket`, { tags: { purpose: "mailcontinuity MTA-STS policy" } }, inRegion);
        // New buckets are private by default; said here so that an account default cannot open it.
        const privateBucket = (this.privateBucket = new aws.s3.BucketPublicAccessBlock(
            `${name}-bucket-private`,
            { bucket: this.bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
            inRegion,
        ));
        // One object for every domain: the policy lists the topology's MX hosts, the same for each.
        this.policyFile = new aws.s3.BucketObjectv2(
            `${name}-policy-file`,
            { bucket: this.bucket.id, key: MTA_STS_POLICY_KEY, content: mtaStsPolicy(topology), contentType: MTA_STS_CONTENT_TYPE, cacheControl: MTA_STS_CACHE_CONTROL },
            { ...inRegion, dependsOn: [privateBucket] },
        );
        this.originAccess = new aws.cloudfront.OriginAccessControl(
            `${name}-origin-access`,
            { description: "mailcontinuity: CloudFront reads the MTA-STS policy", originAccessControlOriginType: "s3", signingBehavior: "always", signingProtocol: "sigv4" },
            inRegion,
        );
        this.certificate = new aws.acm.Certificate(`${name}-cert`, { domainName: hostnames[0], subjectAlternativeNames: hostnames, validationMethod: "DNS" }, inRegion);
        this.certificateValidationRecords = hostnames.map((hostname, i) => {
            const option = this.certificate.domainValidationOptions.apply((options) => {
                const found = options.find((o) => o.domainName === hostname);
                if (found === undefined) throw new Error(`ACM gave no validation record for ${hostname}`);
                return found;
            });
            return { zone: topology.domains[i], validates: hostname, name: option.resourceRecordName, value: option.resourceRecordValue };
        });
        const [host, resolveHost] = pulumi.deferredOutput<string>();
        this.host = host;
        this.resolveHost = resolveHost;
    }

    /**
     * The certificate's validation waits for its records at the DNS providers, then the distribution
     * serves the policy with it. Call once, with the records MailDns published.
     */
    serve(validationRecords: pulumi.Resource[]): void {
        const name = this.siteName;
        const inRegion = { parent: this, provider: this.args.provider };
        const hostnames = mtaStsHostnames(this.args.topology);
        const validation = new aws.acm.CertificateValidation(
            `${name}-cert-validation`,
            {
                certificateArn: this.certificate.arn,
                validationRecordFqdns: this.certificateValidationRecords.map((r) => pulumi.output(r.name).apply((n) => n.replace(/\.$/, ""))),
            },
            { ...inRegion, dependsOn: validationRecords },
        );
        const distribution = new aws.cloudfront.Distribution(
            `${name}-cdn`,
            {
                enabled: true,
                comment: "mailcontinuity: the MTA-STS policy",
                aliases: hostnames,
                origins: [{ originId: ORIGIN_ID, domainName: this.bucket.bucketRegionalDomainName, originAccessControlId: this.originAccess.id }],
                defaultCacheBehavior: {
                    targetOriginId: ORIGIN_ID,
                    // RFC 8461 3.3: HTTPS only, and senders do not follow redirects.
                    viewerProtocolPolicy: "https-only",
                    allowedMethods: ["GET", "HEAD"],
                    cachedMethods: ["GET", "HEAD"],
                    cachePolicyId: CLOUDFRONT_CACHING_DISABLED,
                    compress: false,
                },
                restrictions: { geoRestriction: { restrictionType: "none" } },
                viewerCertificate: { acmCertificateArn: validation.certificateArn, sslSupportMethod: "sni-only", minimumProtocolVersion: "TLSv1.2_2021" },
                isIpv6Enabled: true,
                priceClass: "PriceClass_100",
            },
            inRegion,
        );
        const readable = new aws.s3.BucketPolicy(
            `${name}-bucket-policy`,
            { bucket: this.bucket.id, policy: pulumi.all([this.bucket.arn, distribution.arn]).apply(([bucket, cdn]) => mtaStsBucketPolicy(bucket, cdn)) },
            // Written after the public access block, so the two never race at S3.
            { ...inRegion, dependsOn: [this.privateBucket] },
        );
        // mta-sts.<domain> points here only once the distribution may read the policy.
        this.resolveHost(pulumi.all([distribution.domainName, readable.id]).apply(([host]) => host));
        this.registerOutputs({ host: this.host, policyFile: this.policyFile.id });
    }
}
