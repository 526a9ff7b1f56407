import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { TopologyError, parseTopology } from "../lib/topology/validate";
import { deploymentProblems, formatDeploymentProblems } from "../lib/topology/deployable";
import { MAILBOX_HASHES_KEY, checkedHashes } from "../lib/topology/mailboxes";

/**
 * Reads and validates `mailcontinuity:topology` before any resource is declared. A RunError makes
 * Pulumi print the problems without a stack trace and exit non-zero.
 */
export function loadTopology(config: pulumi.Config = new pulumi.Config("mailcontinuity")): Topology {
    try {
        return parseTopology(config.requireObject<unknown>("topology"));
    } catch (error) {
        if (error instanceof TopologyError) throw new pulumi.RunError(error.message);
        throw error;
    }
}

/**
 * Secret config: mailbox address -> Dovecot password hash ({ARGON2ID}..., from `doveadm pw`), checked
 * against the topology's mailboxes before any resource is declared.
 */
export function loadMailboxPasswordHashes(topology: Topology, project = "mailcontinuity"): pulumi.Output<Record<string, string>> {
    // Read as the SDK's own getSecretObject does, synchronously, so that a problem stops the program
    // with a message instead of failing inside an apply.
    const raw = pulumi.runtime.getConfig(`${project}:${MAILBOX_HASHES_KEY}`);
    let hashes: Record<string, string> = {};
    try {
        if (raw !== undefined) hashes = JSON.parse(raw) as Record<string, string>;
    } catch {
        throw new pulumi.RunError(`${project}:${MAILBOX_HASHES_KEY} must be an object of address: hash (set it with --path, see README)`);
    }
    try {
        return pulumi.secret(checkedHashes(hashes, topology.mailboxes));
    } catch (error) {
        throw new pulumi.RunError((error as Error).message);
    }
}

/** True under `pulumi.runtime.setMocks` (the offline plan, the tests); never in a real preview or up. */
export function isMocked(): boolean {
    return pulumi.runtime.getMonitor() instanceof MockMonitor;
}

/**
 * Refuses reserved domains, documentation addresses and sample ids when the program runs for real.
 * The offline plan evaluates the committed example stacks, which use them on purpose; its --strict
 * flag applies the same check.
 */
export function assertDeployable(topology: Topology): void {
    if (isMocked()) return;
    const problems = deploymentProblems(topology);
    if (problems.length > 0) {
        throw new pulumi.RunError(formatDeploymentProblems(problems));
    }
}
