// What the runbook reads from the plan besides the topology: each relay's container (as the Docker
// component names it), and the alarms with where they go. Only what the topology fixes is a fact here;
// addresses and ids that exist only after a deployment (Elastic IPs, ARNs, instance ids) are never read.
import type { Plan, PlannedResource } from "../plan/report";
import type { Topology } from "../topology/schema";
import { ownRelays, type OwnRelay } from "../topology/placement";
import { ADMIN_USER } from "../render/cloud-init";
import { parseSshUrl } from "../topology/ssh-url";

export const CONTAINER_TYPE = "docker:index/container:Container";
export const ALARM_TYPE = "aws:cloudwatch/metricAlarm:MetricAlarm";
const SUBSCRIPTION_TYPE = "aws:sns/topicSubscription:TopicSubscription";
const AWS_PROVIDER_TYPE = "pulumi:providers:aws";

export interface RelayAccess {
    relay: OwnRelay;
    /** The container's name, as the relay's docker.Container resource declares it. */
    container: string;
    /** Runs one command in the relay's container: `docker -H <host> exec <container>` or its EC2 form. */
    exec: string;
    /** A shell on the machine that runs the container. */
    login: string;
    /** Docker on that machine, for what is not `exec` (logs, start). */
    docker: string;
    where: string;
}

export function sshLogin(url: string): string {
    const target = parseSshUrl(url);
    return `ssh ${target.port === 22 ? "" : `-p ${target.port} `}${target.user}@${target.host}`;
}

/** How to reach each relay's container, from the plan's container resources (a partner's MX has none). */
export function relayAccess(plan: Plan, topology: Topology): RelayAccess[] {
    return [...ownRelays(topology)]
        .sort((a, b) => a.priority - b.priority)
        .map((relay) => {
            const found = plan.resources.filter((r) => r.type === CONTAINER_TYPE && r.inputs.hostname === relay.hostname);
            if (found.length !== 1 || typeof found[0].inputs.name !== "string") {
                throw new Error(`the plan of stack ${plan.stack} has ${found.length} containers for relay ${relay.hostname}; expected one with a name`);
            }
            const container = found[0].inputs.name;
            const p = relay.placement;
            if (p.kind === "docker") {
                const docker = `docker -H ${p.host}`;
                return { relay, container, exec: `${docker} exec ${container}`, login: sshLogin(p.host), docker, where: `Docker host \`${p.host}\` (${p.site.provider}, ${p.site.city})` };
            }
            const login = `ssh ${ADMIN_USER}@${relay.hostname}`;
            const docker = `${login} sudo docker`;
            return { relay, container, exec: `${docker} exec ${container}`, login, docker, where: `EC2 instance in ${p.region}, running Docker` };
        });
}

export interface AlarmFacts {
    /** The Pulumi resource name; AWS names the alarm with a random suffix after it. */
    name: string;
    /** The component that declares it (its name starts every alarm name of that component). */
    group: string | null;
    description: string;
    region: string;
    trigger: string;
    /** SNS subscriptions the alarm notifies: "email ops@example.com". */
    notifies: string[];
    notifiesOnRecovery: boolean;
}

function str(value: unknown, fallback = "?"): string {
    return typeof value === "string" || typeof value === "number" ? String(value) : fallback;
}

const COMPARISONS: Record<string, string> = {
    LessThanThreshold: "<",
    LessThanOrEqualToThreshold: "<=",
    GreaterThanThreshold: ">",
    GreaterThanOrEqualToThreshold: ">=",
};

function regionOf(plan: Plan, resource: PlannedResource): string {
    const provider = plan.resources.find((r) => r.type === AWS_PROVIDER_TYPE && r.name === resource.provider);
    return str(provider?.inputs.region, "the provider's default region");
}

/** Every CloudWatch alarm of the plan (new ones appear on regeneration), with where it goes. */
export function alarms(plan: Plan): AlarmFacts[] {
    const subscriptions = plan.resources.filter((r) => r.type === SUBSCRIPTION_TYPE);
    const notified = (actions: unknown): string[] =>
        (Array.isArray(actions) ? actions : []).flatMap((action) =>
            subscriptions.filter((s) => s.inputs.topic === action).map((s) => `${str(s.inputs.protocol)} ${str(s.inputs.endpoint)}`),
        );
    return plan.resources
        .filter((r) => r.type === ALARM_TYPE)
        .map((r) => {
            const i = r.inputs;
            const metric = i.metricName !== undefined ? `${str(i.namespace)} ${str(i.metricName)}` : "its metric query";
            const trigger =
                `${str(i.statistic, "value")} of ${metric} ${COMPARISONS[str(i.comparisonOperator)] ?? str(i.comparisonOperator)} ${str(i.threshold)}` +
                ` for ${str(i.evaluationPeriods)} period(s) of ${str(i.period)} s` +
                (i.treatMissingData !== undefined ? `; missing data: ${str(i.treatMissingData)}` : "");
            return {
                name: r.name,
                group: r.parent,
                description: str(i.alarmDescription, "(no description)"),
                region: regionOf(plan, r),
                trigger,
                notifies: [...new Set(notified(i.alarmActions))].sort(),
                notifiesOnRecovery: notified(i.okActions).length > 0,
            };
        });
}

/** "7d" -> "7 days" (Postfix's units, as the topology writes them). */
export function humanDuration(duration: string): string {
    const m = /^(\d+)([smhdw])$/.exec(duration);
    if (m === null) return duration;
    const unit = { s: "second", m: "minute", h: "hour", d: "day", w: "week" }[m[2]]!;
    return `${m[1]} ${unit}${m[1] === "1" ? "" : "s"}`;
}
