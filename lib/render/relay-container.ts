// The one definition of a relay container: image, environment, published ports, recipients file, queue
// volume, stop timeout and health check. A Docker relay host and an EC2 relay (a Docker host the stack
// creates) both get exactly this; only where the queue volume's bytes live differs.
import type { Relay, Topology } from "../topology/schema";
import { slug } from "../topology/placement";
import { RECIPIENTS_PATH, RELAY_HEALTHCHECK, RELAY_QUEUE_PATH, RELAY_STATUS_PORT, recipientsFile, relayEnvironment } from "./relay-env";

export const RELAY_IMAGE_REPOSITORY = "mailcontinuity-relay";

// Postfix needs time to close its queue files cleanly on SIGTERM before Docker sends SIGKILL.
export const RELAY_STOP_TIMEOUT_SECONDS = 30;

export interface RelayContainerSpec {
    containerName: string;
    volumeName: string;
    imageName: string;
    hostname: string;
    env: Record<string, string>;
    /** Published on the host: SMTP, and the queue health the alerts' health check asks. */
    ports: { internal: number; external: number }[];
    /** Written into the container at create; later changes arrive through the apply step. */
    recipients: { path: string; content: string };
    queuePath: string;
    /** Where the queue volume's data lives on the host, when not in Docker's own storage. */
    queueHostPath?: string;
    stopTimeoutSeconds: number;
    healthcheck: { tests: string[]; interval: string; timeout: string; retries: number; startPeriod: string };
}

/** The relay component's name: the stack's prefix and the relay's hostname, what it is. */
export function relayResourceBase(stackPrefix: string, relay: Pick<Relay, "hostname">): string {
    return `${stackPrefix}-${slug(relay.hostname)}`;
}

/**
 * `base` is the relay component's name (the stack's prefix and the relay's hostname): the container and
 * its queue are named by what they are, never by their content.
 */
export function relayContainerSpec(topology: Topology, relay: Relay, base: string, imageDigest: string, queueHostPath?: string): RelayContainerSpec {
    return {
        containerName: `${base}-relay`,
        volumeName: `${base}-queue`,
        imageName: `${RELAY_IMAGE_REPOSITORY}:${imageDigest}`,
        hostname: relay.hostname,
        env: relayEnvironment(topology, relay),
        ports: [25, RELAY_STATUS_PORT].map((port) => ({ internal: port, external: port })),
        recipients: { path: RECIPIENTS_PATH, content: recipientsFile(topology) },
        queuePath: RELAY_QUEUE_PATH,
        ...(queueHostPath !== undefined ? { queueHostPath } : {}),
        stopTimeoutSeconds: RELAY_STOP_TIMEOUT_SECONDS,
        healthcheck: { tests: ["CMD", RELAY_HEALTHCHECK], interval: "30s", timeout: "10s", retries: 3, startPeriod: "30s" },
    };
}
