// The MTA-STS policy site (RFC 8461 3.3): what components/mta-sts-site.ts serves at
// https://mta-sts.<domain>/.well-known/mta-sts.txt, and how. Pure.
import type { Topology } from "../topology/schema";

/** Where senders fetch the policy (RFC 8461 3.3); the object's key in the bucket. */
export const MTA_STS_POLICY_PATH = "/.well-known/mta-sts.txt";
export const MTA_STS_POLICY_KEY = MTA_STS_POLICY_PATH.slice(1);

/** RFC 8461 3.2: the policy is served as text/plain. */
export const MTA_STS_CONTENT_TYPE = "text/plain";

/**
 * Senders refetch the policy when the `_mta-sts` id changes, and keep what they get for max_age (a
 * week). So whatever they fetch right after the id changes must already be the new text: CloudFront
 * does not cache it (below) and every other cache is told to ask again. Senders fetch it once per id
 * or week, so serving every fetch from S3 costs nothing worth saving.
 */
export const MTA_STS_CACHE_CONTROL = "no-cache";

/** CloudFront's managed cache policy "CachingDisabled" (a fixed, documented id in every account). */
export const CLOUDFRONT_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/** The policy host of every domain: the certificate's names and the distribution's aliases, in order. */
export function mtaStsHostnames(topology: Pick<Topology, "domains">): string[] {
    return topology.domains.map((domain) => `mta-sts.${domain}`);
}

/** Only the stack's own distribution reads the bucket (origin access control signs its requests). */
export function mtaStsBucketPolicy(bucketArn: string, distributionArn: string): string {
    return JSON.stringify({
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "MtaStsDistributionReadsThePolicy",
                Effect: "Allow",
                Principal: { Service: "cloudfront.amazonaws.com" },
                Action: "s3:GetObject",
                Resource: `${bucketArn}/*`,
                Condition: { StringEquals: { "AWS:SourceArn": distributionArn } },
            },
        ],
    });
}
