import { spawnSync } from "node:child_process";

/** Programs the lab runs, with the Debian package that provides each (`npm run lab:setup`). */
export const LAB_PROGRAMS: [command: string, debianPackage: string][] = [
    ["ip", "iproute2"],
    ["iptables", "iptables"],
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
    ["bash", "bash"],
];

/** What stops the lab from running here, one line each; empty when it can run. */
export function missingPrerequisites(): string[] {
    const missing: string[] = [];
    if (process.getuid?.() !== 0) missing.push("root: the lab creates network namespaces (run it as root)");
    for (const [command, pkg] of LAB_PROGRAMS) {
        if (spawnSync("sh", ["-c", `command -v ${command}`]).status !== 0) missing.push(`${command} (Debian package ${pkg}; npm run lab:setup installs it)`);
    }
    return missing;
}
