// ACME certificates for the MX hosts the stack deploys (tls.acme): the environment of the ACME wrapper
// (relay-image/lib/acme.sh, one definition for the relays and the primary), what the hosts' credential
// may do in the challenge zone, and the primary's renewal, installed by an apply step over SSH. Pure:
// the wrapper's text and the zone's id come in as arguments.
import type { Topology } from "../topology/schema";
import { acmeChallengeTarget, acmeChallengeZone, acmeEmail } from "../topology/tls";
import { INSTALL_FILE_FUNCTION, installFile, shellQuote } from "./apply-script";

/** lego's DNS provider for the challenge zone, which is a Route53 hosted zone. */
export const ACME_DNS_PROVIDER = "route53";
/** Route53 is global; the AWS SDK inside lego still wants a region to sign its requests for. */
export const ROUTE53_API_REGION = "us-east-1";
/** Where the wrapper lives in the relay image; the primary gets the same file. */
export const ACME_WRAPPER_SOURCE = "lib/acme.sh";

/** The ACME wrapper's variables for one host (relay-image/README.md), without the deploy-time AWS_* ones. */
export function acmeEnvironment(topology: Pick<Topology, "tls" | "alerts">, hostname: string): Record<string, string> {
    const acme = topology.tls.acme;
    if (acme === undefined) return {};
    return {
        ACME_DIRECTORY_URL: acme.directoryUrl,
        ACME_EMAIL: acmeEmail(topology)!,
        ACME_DOMAIN: hostname,
        ACME_DNS_PROVIDER,
        ACME_RENEW_DAYS: String(acme.renewDaysBefore),
    };
}

/**
 * The names a host's credential may write: its own `<slug>.<challenge zone>`, the target of its
 * `_acme-challenge` CNAME, as Route53 normalises them for the condition key (lower case, no dot).
 */
export function acmeRecordNames(topology: Pick<Topology, "tls" | "domains">, hostnames: readonly string[]): string[] {
    const zone = acmeChallengeZone(topology);
    if (zone === undefined) return [];
    return hostnames.map((h) => acmeChallengeTarget(h, zone).toLowerCase().replace(/\.$/, ""));
}

/**
 * What lego's route53 provider needs (providers/dns/route53: UPSERT then DELETE of one TXT set, the set
 * listed first, the change waited for) and nothing else: TXT records at the given names in the given
 * zone only. AWS_HOSTED_ZONE_ID names the zone, so no route53:ListHostedZonesByName. The condition keys
 * are Route53's (Developer Guide, "Using IAM policy conditions for fine-grained access control").
 */
export function acmeChallengePolicy(zoneId: string, recordNames: readonly string[]): string {
    const zone = `arn:aws:route53:::hostedzone/${zoneId}`;
    return JSON.stringify(
        {
            Version: "2012-10-17",
            Statement: [
                {
                    Sid: "AnswerOwnChallengeOnly",
                    Effect: "Allow",
                    Action: "route53:ChangeResourceRecordSets",
                    Resource: zone,
                    Condition: {
                        "ForAllValues:StringEquals": {
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [...recordNames],
                            "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                            "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"],
                        },
                    },
                },
                { Sid: "ReadChallengeZone", Effect: "Allow", Action: "route53:ListResourceRecordSets", Resource: zone },
                { Sid: "WaitForChange", Effect: "Allow", Action: "route53:GetChange", Resource: "arn:aws:route53:::change/*" },
            ],
        },
        null,
        2,
    );
}

/** EC2 may hand the instance's role to software on it (the hosts' instance roles). */
export const EC2_ASSUME_ROLE_POLICY = JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

// --- the primary ---------------------------------------------------------------------------------

export const ACME_WRAPPER_PATH = "/usr/local/sbin/mailcontinuity-acme";
export const PRIMARY_ACME_ENV_PATH = "/etc/mailcontinuity/acme.env";
/** lego's account and certificates (root disk: a replaced instance asks the CA again, well within its limits). */
export const PRIMARY_ACME_DIR = "/var/lib/mailcontinuity/acme";
/**
 * What Postfix serves. The wrapper orders certificates for this key (it never changes) and renames each
 * new certificate over this file; until the first one, the ACME step puts a self-signed certificate of
 * the same key there, so Postfix offers TLS from the start and mail never waits for the CA.
 */
export const PRIMARY_TLS_CERT_FILE = "/etc/mailcontinuity/tls/cert.pem";
export const PRIMARY_TLS_KEY_FILE = "/etc/mailcontinuity/tls/key.pem";
export const ACME_UNIT = "mailcontinuity-acme";
/** Run by the wrapper after it installed a new certificate. Postfix not running: its volume is not mounted; it reads the file when it starts. */
export const PRIMARY_ACME_RELOAD = "if postfix status >/dev/null 2>&1; then postfix reload; fi";

/** One KEY=value line as systemd's EnvironmentFile= reads it (quoted when it holds more than plain characters). */
function environmentLine(key: string, value: string): string {
    return /^[A-Za-z0-9@%+=:,./_-]*$/.test(value) ? `${key}=${value}` : `${key}="${value.replace(/[\\"]/g, "\\$&")}"`;
}

export interface PrimaryAcmeOptions {
    /** The challenge zone's Route53 id (deploy time). */
    hostedZoneId: string;
    /** relay-image/lib/acme.sh, as the repository has it. */
    wrapper: string;
}

/** Twice a day at a random minute of the hour after, and at boot for a run the host slept through. */
function timerUnit(): string {
    return "[Unit]\nDescription=Renew this host's ACME certificate twice a day\n\n[Timer]\nOnCalendar=*-*-* 00,12:00:00\nRandomizedDelaySec=1h\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n";
}

function serviceUnit(): string {
    return [
        "[Unit]",
        "Description=Obtain or renew this host's ACME certificate (DNS-01 in the stack's challenge zone)",
        "Wants=network-online.target",
        "After=network-online.target",
        // Retried until it succeeds (a credential not yet propagated, the CA away), but within the CA's
        // limit of 5 failed validations per host and hour: the relays verify this certificate.
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=oneshot",
        `EnvironmentFile=${PRIMARY_ACME_ENV_PATH}`,
        `ExecStart=${ACME_WRAPPER_PATH}`,
        "Restart=on-failure",
        "RestartSec=15min",
        "",
    ].join("\n");
}

/** The primary's ACME wrapper's environment file: the topology's ACME settings and the zone to write in. */
export function primaryAcmeEnvironment(topology: Topology, hostedZoneId: string): string {
    const env: Record<string, string> = {
        ...acmeEnvironment(topology, topology.primary.hostname),
        ACME_DIR: PRIMARY_ACME_DIR,
        ACME_CERT_FILE: PRIMARY_TLS_CERT_FILE,
        ACME_KEY_FILE: PRIMARY_TLS_KEY_FILE,
        ACME_RELOAD_COMMAND: PRIMARY_ACME_RELOAD,
        // lego's route53 provider: the zone by id, credentials from the instance's role (IMDSv2).
        AWS_HOSTED_ZONE_ID: hostedZoneId,
        AWS_REGION: ROUTE53_API_REGION,
    };
    return `${Object.entries(env)
        .map(([k, v]) => environmentLine(k, v))
        .join("\n")}\n`;
}

/**
 * The primary's ACME step, run as root over SSH on every change of its rendering (and on a new
 * instance): lego from Debian, the wrapper, its environment and a systemd timer; a self-signed
 * certificate of the served key until the CA's arrives; then a run at once, so a first certificate (or
 * one from a new CA) does not wait for the timer. The mail configuration step points Postfix at
 * PRIMARY_TLS_*. Nothing here is in the user data: an instance never reruns cloud-init, and a changed
 * user data stops and starts it.
 */
export function renderPrimaryAcmeApply(topology: Topology, options: PrimaryAcmeOptions): string {
    if (topology.tls.acme === undefined) throw new Error("renderPrimaryAcmeApply: the topology has no tls.acme");
    const hostname = topology.primary.hostname;
    const [cert, key] = [PRIMARY_TLS_CERT_FILE, PRIMARY_TLS_KEY_FILE];
    return [
        "#!/bin/sh",
        "# Generated by mailcontinuity: the primary's ACME certificate (lego, DNS-01 through the stack's challenge zone).",
        "set -eu",
        ...INSTALL_FILE_FUNCTION,
        "if ! command -v lego >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then",
        "    DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600",
        "    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 lego openssl",
        "fi",
        "install -d -m 0755 /etc/mailcontinuity /etc/mailcontinuity/tls",
        `install -d -m 0700 ${PRIMARY_ACME_DIR}`,
        ...installFile(ACME_WRAPPER_PATH, "0755", options.wrapper),
        ...installFile(PRIMARY_ACME_ENV_PATH, "0644", primaryAcmeEnvironment(topology, options.hostedZoneId)),
        ...installFile(`/etc/systemd/system/${ACME_UNIT}.service`, "0644", serviceUnit()),
        ...installFile(`/etc/systemd/system/${ACME_UNIT}.timer`, "0644", timerUnit()),
        // Until the CA's certificate: a self-signed one of the same key (the wrapper keeps the key).
        `if [ ! -s ${key} ]; then (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ${key}.new && mv -f ${key}.new ${key}); fi`,
        `if [ ! -s ${cert} ]; then openssl req -new -x509 -days 3650 -key ${key} -subj ${shellQuote(`/CN=${hostname}`)} -addext ${shellQuote(`subjectAltName=DNS:${hostname}`)} -out ${cert}.new && chmod 0644 ${cert}.new && mv -f ${cert}.new ${cert}; fi`,
        "systemctl daemon-reload",
        `systemctl enable --now ${ACME_UNIT}.timer`,
        // Now, not at the timer's next turn. --no-block: the up does not wait for the CA.
        `systemctl start --no-block ${ACME_UNIT}.service`,
        `echo ${shellQuote(`mailcontinuity: ACME for ${hostname} applied (${topology.tls.acme.directoryUrl}); served once issued, self-signed until then`)}`,
        "",
    ].join("\n");
}
