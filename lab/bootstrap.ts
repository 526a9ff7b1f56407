// The one way every lab command starts and ends (npm run lab, its --soak, npm run bench): check the
// machine (installing missing Debian packages as root), read and validate Pulumi.lab.yaml, make the
// temp dir and the lab id, bring the lab up (relays as processes or, --relay-runtime container, as
// containers of the relay image), run the command, and tear everything down, the relay containers and
// their volumes too, on success, failure, SIGINT and SIGTERM (unless --keep).
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { readStackConfig, stackFile } from "../lib/plan/stack-config";
import type { Topology } from "../lib/topology/schema";
import { CONFIG_KEY, TopologyError, parseTopology } from "../lib/topology/validate";
import { Lab } from "./lab";
import { LabUnavailable, ensurePrerequisites } from "./prerequisites";
import { DEFAULT_RELAY_RUNTIME, type RelayRuntimeKind } from "./relays";
import { SENDER } from "./sender";

const ROOT = join(__dirname, "..");

export interface LabRunOptions {
    /** The npm script (lab, bench): in messages, the temp dir's name and what to run as root. */
    command: string;
    /** Starts the lab id, so its namespaces (mcl-<id>-*) tell whose they are: b for bench, s for the soak. */
    idPrefix?: string;
    /** Leave the lab running at the end (not on SIGINT/SIGTERM either) and say how to look inside. */
    keep?: boolean;
    /** How the relays run (--relay-runtime): process (the default) or container. */
    relayRuntime?: RelayRuntimeKind;
    /** Certificates from the lab's ACME CA from the start (the lab option acme; scenario acme). */
    acme?: boolean;
    /** The last MX a partner's stock Postfix (the lab option partner; scenario partner-mx). */
    partner?: boolean;
    log: (message: string) => void;
}

export interface LabRun {
    lab: Lab;
    topology: Topology;
    id: string;
    dir: string;
}

/** Pulumi.lab.yaml's topology, validated as for any stack; LabUnavailable with the paths when it is not valid. */
export function readLabTopology(): Topology {
    try {
        const raw = readStackConfig(stackFile(ROOT, "lab"), "mailcontinuity").config[CONFIG_KEY];
        return parseTopology(JSON.parse(raw));
    } catch (error) {
        if (error instanceof TopologyError) throw new LabUnavailable(`Pulumi.lab.yaml: ${error.message}`);
        throw error;
    }
}

function lookInside(run: LabRun): string {
    const relay = run.lab.relays.byPriority[0];
    return [
        `  ip netns list | grep ${run.lab.net.prefix}`,
        `  ip netns exec ${run.lab.net.prefix}-${SENDER.key} swaks --server ${relay.hostname} --to ${run.lab.recipient}`,
        ...run.lab.relays.lookInside(relay).map((l) => `  ${l}`),
        `  less ${run.dir}/*/maillog`,
        `  remove it: npm run lab:clean`,
        "",
    ].join("\n");
}

/**
 * Runs `body` against a lab that is up, and tears the lab down afterwards whatever happens. Throws
 * LabUnavailable (before anything is made) when the machine or Pulumi.lab.yaml cannot run it.
 */
export async function withLab<T>(options: LabRunOptions, body: (run: LabRun) => Promise<T>): Promise<T> {
    const relayRuntime = options.relayRuntime ?? DEFAULT_RELAY_RUNTIME;
    ensurePrerequisites(options.command, relayRuntime);
    const topology = readLabTopology();
    const id = `${options.idPrefix ?? ""}${randomBytes(2).toString("hex")}`;
    const dir = mkdtempSync(join(tmpdir(), `mailcontinuity-${options.command}-${id}-`));
    // mkdtemp makes it 0700; Postfix's own user must reach its data and queue directories inside.
    chmodSync(dir, 0o755);
    const lab = new Lab(topology, { dir, id, relayRuntime, acme: options.acme, partner: options.partner, log: options.log });
    const run: LabRun = { lab, topology, id, dir };

    let tornDown = false;
    const teardown = () => {
        if (tornDown || options.keep) return;
        tornDown = true;
        options.log(`tearing down: ${relayRuntime === "container" ? "containers, their volumes, " : ""}processes, namespaces, files`);
        lab.down();
        rmSync(dir, { recursive: true, force: true });
    };
    const onSignal = (signal: NodeJS.Signals) => {
        process.stderr.write(`\n${options.command}: ${signal}\n`);
        teardown();
        process.exit(128 + constants.signals[signal]);
    };
    const signals = ["SIGINT", "SIGTERM"] as const;
    for (const signal of signals) process.on(signal, onSignal);
    try {
        options.log(`deploying Pulumi.lab.yaml (${topology.domains.join(", ")}) into namespaces ${lab.net.prefix}-*; relays as ${relayRuntime === "container" ? "containers of the relay image" : "processes (entrypoint.sh)"}`);
        await lab.up();
        return await body(run);
    } finally {
        if (options.keep) {
            options.log("left running (--keep). Look inside:");
            process.stderr.write(lookInside(run));
        }
        teardown();
        for (const signal of signals) process.off(signal, onSignal);
    }
}
