import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { slug } from "../lib/topology/placement";

export interface MonitoredHost {
    hostname: string;
    /** Where the check connects; without it, `fqdn` (a partner's MX known only to its own DNS). */
    address?: pulumi.Input<string>;
    /** Route53 resolves this name for each check: what senders reach. */
    fqdn?: string;
    /** Said in the alarm's description after what failed (a partner's MX: whom to call). */
    note?: string;
    /**
     * A relay's queue health over HTTP (relay-image/README.md, "Queue health"): answers `healthyText`
     * with 200, or 503 with the reason, when it holds mail its primary will not take or its queue disk
     * is nearly full.
     */
    queueStatus?: { port: number; path: string; healthyText: string };
}

export interface MailAlertsArgs {
    hosts: MonitoredHost[];
    email: string;
    /** us-east-1: Route53 publishes health-check metrics only there, and alarms must live beside them. */
    provider: aws.Provider;
}

// Route53 checkers are spread over regions; three failed 30 s probes rules out one checker's blip.
const FAILURE_THRESHOLD = 3;
const REQUEST_INTERVAL_SECONDS = 30;

/**
 * A TCP 25 health check and an alarm per MX host, and per relay a check and an alarm of its queue's
 * health; alarms mailed through one SNS topic.
 */
export class MailAlerts extends pulumi.ComponentResource {
    readonly topicArn: pulumi.Output<string>;

    constructor(name: string, args: MailAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:alerts:MailAlerts", name, {}, opts);
        const child = { parent: this, provider: args.provider };
        const topic = new aws.sns.Topic(`${name}-topic`, { displayName: "mailcontinuity alerts" }, child);
        // The recipient must click the confirmation link AWS mails before alerts arrive.
        new aws.sns.TopicSubscription(`${name}-email`, { topic: topic.arn, protocol: "email", endpoint: args.email }, child);

        const alarmOn = (alarmName: string, check: aws.route53.HealthCheck, description: pulumi.Input<string>) =>
            new aws.cloudwatch.MetricAlarm(
                alarmName,
                {
                    alarmDescription: description,
                    namespace: "AWS/Route53",
                    metricName: "HealthCheckStatus",
                    dimensions: { HealthCheckId: check.id },
                    statistic: "Minimum",
                    period: 60,
                    evaluationPeriods: 2,
                    threshold: 1,
                    comparisonOperator: "LessThanThreshold",
                    // No data means the checker itself is gone: treat as down, not as fine.
                    treatMissingData: "breaching",
                    alarmActions: [topic.arn],
                    okActions: [topic.arn],
                },
                child,
            );

        for (const host of args.hosts) {
            const id = `${name}-${slug(host.hostname)}`;
            if (host.address === undefined && host.fqdn === undefined) throw new Error(`${host.hostname}: a health check needs an address or a name`);
            const check = new aws.route53.HealthCheck(
                `${id}-smtp`,
                {
                    type: "TCP",
                    ...(host.address !== undefined ? { ipAddress: host.address } : { fqdn: host.fqdn }),
                    port: 25,
                    failureThreshold: FAILURE_THRESHOLD,
                    requestInterval: REQUEST_INTERVAL_SECONDS,
                    tags: { Name: `${host.hostname} SMTP` },
                },
                child,
            );
            alarmOn(`${id}-down`, check, `${host.hostname} does not accept TCP connections on port 25${host.note !== undefined ? ` (${host.note})` : ""}`);
            if (host.queueStatus === undefined || host.address === undefined) continue;
            // Matches only a 2xx/3xx answer whose body holds the text: a 503, a stale report or no answer fails.
            const queueCheck = new aws.route53.HealthCheck(
                `${id}-queue`,
                {
                    type: "HTTP_STR_MATCH",
                    ipAddress: host.address,
                    port: host.queueStatus.port,
                    resourcePath: host.queueStatus.path,
                    searchString: host.queueStatus.healthyText,
                    failureThreshold: FAILURE_THRESHOLD,
                    requestInterval: REQUEST_INTERVAL_SECONDS,
                    tags: { Name: `${host.hostname} queue` },
                },
                child,
            );
            const url = pulumi.interpolate`http://${host.address}:${host.queueStatus.port}${host.queueStatus.path}`;
            alarmOn(`${id}-queue-stuck`, queueCheck, pulumi.interpolate`${host.hostname} holds mail it cannot deliver, or its queue disk is full (${url} says which)`);
        }
        this.topicArn = topic.arn;
        this.registerOutputs({ topicArn: this.topicArn });
    }
}
