// What a relay container is given: the environment documented in relay-image/README.md, plus the
// recipients file that RELAY_RECIPIENTS names. Both targets (Docker/EC2 and the lab) use this.
import type { Relay, Topology } from "../topology/schema";
import { relayToPrimaryTls } from "../topology/tls";
import { hasIpv6 } from "../topology/placement";
import { acmeEnvironment } from "./acme";

export const RECIPIENTS_PATH = "/etc/relay/recipients";

/**
 * The relay's queue health over HTTP (relay-image/lib/status-server.sh): GET / on this port answers 200
 * with QUEUE_HEALTHY_TEXT, or 503 with the reason (stuck mail, a full queue disk, a silent flusher).
 * The alerts component's health check asks it; the container publishes it and the firewall opens it.
 */
export const RELAY_STATUS_PORT = 8025;
export const RELAY_STATUS_PATH = "/";
export const QUEUE_HEALTHY_TEXT = "mailcontinuity-queue: ok";

export function recipientsFile(topology: Topology): string {
    return `${topology.recipients.join("\n")}\n`;
}

export function relayEnvironment(topology: Topology, relay: Relay, recipientsPath: string = RECIPIENTS_PATH): Record<string, string> {
    return {
        RELAY_DOMAINS: topology.domains.join(","),
        RELAY_HOSTNAME: relay.hostname,
        RELAY_RECIPIENTS: recipientsPath,
        QUEUE_LIFETIME: topology.queueLifetime,
        STATUS_PORT: String(RELAY_STATUS_PORT),
        // Postfix on both families when the relay's host has an IPv6 address (its AAAA is published); only
        // then, so a relay without one keeps its environment (and its container) as it was.
        ...(hasIpv6(relay.placement) ? { INET_PROTOCOLS: "all" } : {}),
        // The relay's own certificate (tls.acme); the cloud adds the challenge zone and its credential.
        ...acmeEnvironment(topology, relay.hostname),
        // Only when the topology says something about TLS: a stack without a tls section keeps the image's
        // default (may) and its containers as they are.
        ...(topology.tls.acme !== undefined || topology.tls.relayToPrimary !== undefined ? { PRIMARY_TLS: relayToPrimaryTls(topology) } : {}),
    };
}

/** KEY=value lines, as `docker run --env-file` reads them. */
export function envFile(env: Record<string, string>): string {
    return Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n")
        .concat("\n");
}

/** Where the queue (and the generated TLS pair) lives inside the container: the volume's mount point. */
export const RELAY_QUEUE_PATH = "/var/spool/postfix";

/** Installed by relay-image/Dockerfile; exits 0 when Postfix answers 220 on port 25. */
export const RELAY_HEALTHCHECK = "/usr/local/sbin/relay-healthcheck";
