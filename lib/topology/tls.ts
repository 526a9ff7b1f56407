// What the tls and dkim sections mean once their defaults are applied: one place for each answer.
import type { Topology } from "./schema";
import { slug } from "./placement";

type TlsSections = Pick<Topology, "tls" | "domains">;

/** The Route53 zone the ACME DNS-01 answers are written to, delegated from the first domain. */
export function acmeChallengeZone(topology: TlsSections): string | undefined {
    const acme = topology.tls.acme;
    if (acme === undefined) return undefined;
    return acme.challengeZone ?? `acme-challenge.${topology.domains[0]}`;
}

/** Where `_acme-challenge.<hostname>` points: one name per host, so hosts never race for one TXT set. */
export function acmeChallengeTarget(hostname: string, challengeZone: string): string {
    return `${slug(hostname)}.${challengeZone}`;
}

export function acmeEmail(topology: Pick<Topology, "tls" | "alerts">): string | undefined {
    const acme = topology.tls.acme;
    return acme === undefined ? undefined : (acme.email ?? topology.alerts.email);
}

export type RelayToPrimaryTls = "verify" | "encrypt" | "may";

/** verify once every MX presents a CA-signed certificate, else what TLS the self-signed primary allows. */
export function relayToPrimaryTls(topology: Pick<Topology, "tls">): RelayToPrimaryTls {
    return topology.tls.relayToPrimary ?? (topology.tls.acme !== undefined ? "verify" : "may");
}

/** Every selector whose public key is published: the signing one first. */
export function publishedDkimSelectors(topology: Pick<Topology, "dkim">): string[] {
    const dkim = topology.dkim;
    return dkim === undefined ? [] : [dkim.selector, ...dkim.retiredSelectors.filter((s) => s !== dkim.selector)];
}
