// What the lab needs of the machine: root (it creates network namespaces) and the real programs it
// runs, each from a Debian package that lab/setup.sh installs; with --relay-runtime container, also
// what builds and runs the relay image.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import type { RelayRuntimeKind } from "./relays";

/** Programs the lab runs, with the Debian package that provides each (`npm run lab:setup`). */
export const LAB_PROGRAMS: [command: string, debianPackage: string][] = [
    ["ip", "iproute2"],
    ["iptables", "iptables"],
    // The primary's IPv6 path dropped (scenario ipv6-broken), and both families in primary-drops.
    ["ip6tables", "iptables"],
    ["sysctl", "procps"],
    ["postfix", "postfix"],
    ["postconf", "postfix"],
    ["posttls-finger", "postfix"],
    ["smtp-source", "postfix"],
    ["smtp-sink", "postfix"],
    ["nsd", "nsd"],
    ["nsd-checkconf", "nsd"],
    ["dig", "dnsutils"],
    ["swaks", "swaks"],
    ["openssl", "openssl"],
    // The primary's DKIM signer (scenario dkim).
    ["opendkim", "opendkim"],
    ["bash", "bash"],
    // The relays' queue health, asked over HTTP as the alerts' health check asks it.
    ["curl", "curl"],
    // Scenario acme: the MX hosts' ACME client, the lab's CA, its challenge zone's server and resolver.
    ["lego", "lego"],
    ["pebble", "pebble"],
    ["pebble-challtestsrv", "pebble"],
    ["unbound", "unbound"],
    ["unbound-checkconf", "unbound"],
];

/** What each relay runtime needs besides LAB_PROGRAMS (scripts/relay-image.ts builds with the container's). */
export const RUNTIME_PROGRAMS: Record<RelayRuntimeKind, [command: string, debianPackage: string][]> = {
    // The relay's status server (the image installs it; the entrypoint as a process needs it here).
    process: [["busybox", "busybox"]],
    container: [
        ["podman", "podman"],
        ["buildah", "buildah"],
        ["runc", "runc"],
        ["debootstrap", "debootstrap"],
    ],
};

export const SETUP_SCRIPT = join(__dirname, "setup.sh");

/** The lab cannot run on this machine as it is; the message says what to do. */
export class LabUnavailable extends Error {}

function isRoot(): boolean {
    return process.getuid?.() === 0;
}

function missingPrograms(runtime: RelayRuntimeKind): [command: string, debianPackage: string][] {
    return [...LAB_PROGRAMS, ...RUNTIME_PROGRAMS[runtime]].filter(([command]) => spawnSync("sh", ["-c", `command -v ${command}`]).status !== 0);
}

/** What stops the lab (with the relays in `runtime`) from running here, one line each; empty when it can run. */
export function missingPrerequisites(runtime: RelayRuntimeKind = "process"): string[] {
    const missing: string[] = [];
    if (!isRoot()) missing.push("root: the lab creates network namespaces (run it as root)");
    for (const [command, pkg] of missingPrograms(runtime)) missing.push(`${command} (Debian package ${pkg}; npm run lab:setup installs it)`);
    return missing;
}

/**
 * Makes sure the lab can run, for `command` (lab, bench): as root, installs the missing Debian packages
 * with lab/setup.sh (which names them; its output goes to stderr, stdout stays the command's); not as
 * root, throws LabUnavailable saying how to run it.
 */
export function ensurePrerequisites(command: string, runtime: RelayRuntimeKind = "process"): void {
    const packages = () => [...new Set(missingPrograms(runtime).map(([, pkg]) => pkg))];
    if (!isRoot()) {
        const missing = packages();
        throw new LabUnavailable(
            [
                `npm run ${command} must run as root: it creates network namespaces and runs Postfix and NSD in them.`,
                `  Run it as root, for example: sudo npm run ${command}`,
                missing.length > 0
                    ? `  As root it first installs the Debian packages it needs that are missing here: ${missing.join(", ")} (lab/setup.sh).`
                    : "  The Debian packages it needs are installed.",
            ].join("\n"),
        );
    }
    if (packages().length === 0) return;
    process.stderr.write(`${command}: missing Debian packages: ${packages().join(", ")}; installing them with lab/setup.sh\n`);
    const r = spawnSync("sh", [SETUP_SCRIPT], { stdio: ["ignore", process.stderr, process.stderr] });
    const still = missingPrograms(runtime);
    if (still.length > 0) {
        throw new LabUnavailable(`lab/setup.sh (exit ${r.status}) could not install what the lab needs; still missing: ${still.map(([c, p]) => `${c} (${p})`).join(", ")}`);
    }
}
