// The primary's mail volume snapshots: what AWS Data Lifecycle Manager (DLM) is told, as plain data so
// that it is tested without mocks. The component (components/primary.ts) only declares the policy, the
// role DLM acts as, and the tag on the volume that the policy targets. docs/rebuild-primary.md says how
// a restore uses the snapshots.
import type { AwsPrimaryPlacement } from "../topology/schema";
import { slug } from "../topology/placement";

/** The tag the policy targets on the mail volume; its value is the primary's hostname. */
export const SNAPSHOT_TARGET_TAG = "mailcontinuity-snapshots";

/** When each day's schedule starts (UTC); DLM starts a snapshot within the hour after it. */
export const SNAPSHOT_START_UTC = "00:00";

type Snapshots = AwsPrimaryPlacement["snapshots"];

/**
 * The volume tag the policy targets. One policy per tag: DLM refuses a second policy with the same
 * target tags in an account and region (aws dlm/lifecyclePolicy.d.ts, policyDetails.targetTags).
 */
export function snapshotTargetTags(hostname: string): Record<string, string> {
    return { [SNAPSHOT_TARGET_TAG]: hostname };
}

/** DLM descriptions and schedule names allow only letters, digits, spaces, _ and - (DLM API). */
export function snapshotPolicyDescription(hostname: string): string {
    return `mail volume of ${slug(hostname)}`;
}

export function snapshotScheduleName(s: Snapshots): string {
    return `every ${s.everyHours} h keep ${s.keep} copy to ${s.copyToRegion} for ${s.copyKeepDays} days`;
}

/**
 * policyDetails of the aws.dlm.LifecyclePolicy. Copies are encrypted (an encrypted volume's snapshots
 * always are) with the target region's default EBS key: no cmkArn, so no KMS key to keep in that region
 * (DLM API CrossRegionCopyRule: "If this parameter is not specified, the default KMS key for the
 * account is used"). Tags are copied so that both the snapshots and their copies can be found by
 * SNAPSHOT_TARGET_TAG. copyTags of a schedule replaces the policy when changed (ForceNew): fixed here.
 */
export function snapshotPolicyDetails(hostname: string, s: Snapshots) {
    return {
        policyType: "EBS_SNAPSHOT_MANAGEMENT",
        resourceTypes: ["VOLUME"],
        targetTags: snapshotTargetTags(hostname),
        schedules: [
            {
                name: snapshotScheduleName(s),
                createRule: { interval: s.everyHours, intervalUnit: "HOURS", times: SNAPSHOT_START_UTC },
                retainRule: { count: s.keep },
                copyTags: true,
                crossRegionCopyRules: [
                    {
                        target: s.copyToRegion,
                        encrypted: true,
                        copyTags: true,
                        retainRule: { interval: s.copyKeepDays, intervalUnit: "DAYS" },
                    },
                ],
            },
        ],
    };
}

/** DLM assumes this role to snapshot, copy and delete (aws dlm/lifecyclePolicy.d.ts examples). */
export const DLM_ASSUME_ROLE_POLICY = JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "dlm.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

/** The AWS partition of a region: the managed policy's ARN names it. */
export function awsPartitionOf(region: string): string {
    if (region.startsWith("cn-")) return "aws-cn";
    if (region.includes("-gov-")) return "aws-us-gov";
    return "aws";
}

/**
 * AWS's managed policy for DLM's role: CreateSnapshot(s), CopySnapshot, DeleteSnapshot, Describe*,
 * CreateTags on snapshots (AWS managed policy reference, AWSDataLifecycleManagerServiceRole).
 */
export function dlmServiceRolePolicyArn(region: string): string {
    return `arn:${awsPartitionOf(region)}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole`;
}
