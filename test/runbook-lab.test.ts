// The generated incident runbook's runnable commands (fenced `sh runnable`), run against the lab: one
// bring-up with the relays as containers of the relay image. Needs root (namespaces, podman).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { loadPlan } from "../lib/plan/load";
import type { Plan } from "../lib/plan/report";
import { ADMIN_USER } from "../lib/render/cloud-init";
import { ETRN_SCRIPT_PATH } from "../lib/render/primary-apply";
import { runnableBlocks, RUNNABLE, type CodeBlock } from "../lib/runbook/blocks";
import { CONTAINER_TYPE } from "../lib/runbook/facts";
import { PROVIDER_NAMESERVERS, renderRunbook } from "../lib/runbook/render";
import { parseTopology } from "../lib/topology/validate";
import { withLab } from "../lab/bootstrap";
import { PODMAN_GLOBAL_OPTIONS, labRelaySpec } from "../lab/container-runtime";
import type { Lab } from "../lab/lab";
import { NAMESERVERS } from "../lab/nameservers";
import { hostKey } from "../lab/net";
import { missingPrerequisites } from "../lab/prerequisites";
import { SENDER } from "../lab/sender";
import { waitFor } from "../lab/wait";
import { ROOT, requirePrerequisite } from "./helpers";

// prod names the lab's hosts and domain, so its runnable blocks run in the lab too (its checker needs
// the deployed stack's outputs, so it is not one of them). us has the same forms with other names.
const STACKS = ["lab", "prod"];
const committed = (stack: string) => readFileSync(join(ROOT, "docs", `runbook-${stack}.md`), "utf8");
const plans = new Map<string, Plan>();
before(async () => {
    for (const stack of STACKS) plans.set(stack, await loadPlan(stack));
});
const planOf = (stack: string): Plan => plans.get(stack)!;

/**
 * A runnable block as the lab runs it. Only the access to a host changes; the command after it runs
 * verbatim:
 *   docker -H <relay's Docker host> exec <container>      -> podman exec <the lab's container of that relay>
 *   ssh admin@<EC2 relay> sudo docker exec <container>     -> the same
 *   ssh admin@<EC2 primary> sudo /usr/local/sbin/etrn-relays -> ip netns exec <primary's namespace> bash
 *                                                           <where the lab's apply step put that script>
 * and, because the lab's two NSD servers stand in for the providers (ns1 for the first, ns2 for the
 * second; lab/nameservers.ts), each provider's filter of the NS set becomes the name of its stand-in.
 * A block with host access runs on this machine; any other block runs in the sending MTA's namespace,
 * which resolves through the lab's nameservers (/etc/netns/<ns>/resolv.conf), from the project
 * checkout. Each block runs as one bash script with -e and pipefail.
 */
function labCommand(lab: Lab, plan: Plan, block: CodeBlock): { script: string; onHost: boolean } {
    const topology = parseTopology(plan.topology);
    const podman = ["podman", ...PODMAN_GLOBAL_OPTIONS].join(" ");
    let script = block.code;
    let onHost = false;
    const replace = (from: string, to: string) => {
        if (!script.includes(from)) return;
        script = script.split(from).join(to);
        onHost = true;
    };
    for (const relay of topology.relays) {
        const container = plan.resources.find((r) => r.type === CONTAINER_TYPE && r.inputs.hostname === relay.hostname)!.inputs.name as string;
        const labRelay = lab.topology.relays.find((r) => r.hostname === relay.hostname);
        assert.ok(labRelay !== undefined, `${relay.hostname} is not a relay of the lab`);
        const labContainer = labRelaySpec(lab.topology, labRelay, lab.net.id).containerName;
        const access = relay.placement.kind === "docker" ? `docker -H ${relay.placement.host} exec ${container}` : `ssh ${ADMIN_USER}@${relay.hostname} sudo docker exec ${container}`;
        replace(access, `${podman} exec ${labContainer}`);
    }
    const etrnScript = lab.path("primary", "etrn-relays");
    assert.ok(existsSync(etrnScript), `the lab's primary has no ETRN script at ${etrnScript}`);
    replace(`ssh ${ADMIN_USER}@${topology.primary.hostname} sudo ${ETRN_SCRIPT_PATH}`, `ip netns exec ${lab.net.nsName(hostKey(topology.primary.hostname))} bash ${etrnScript}`);
    topology.dns.providers.forEach((provider, i) => {
        const standIn = `^${NAMESERVERS[i].key}\\.${topology.domains[0].replace(/\./g, "\\.")}\\.$`;
        script = script.split(`'${PROVIDER_NAMESERVERS[provider.kind].pattern}'`).join(`'${standIn}'`);
    });
    assert.doesNotMatch(script, /\bssh |docker -H|\bsudo /, `a host access the lab does not map:\n${script}`);
    return { script, onHost };
}

function runInLab(lab: Lab, plan: Plan, block: CodeBlock): { status: number | null; output: string; script: string } {
    const { script, onHost } = labCommand(lab, plan, block);
    const bash = ["bash", "-e", "-o", "pipefail", "-c", script];
    const command = onHost ? bash : ["ip", "netns", "exec", lab.net.nsName(SENDER.key), ...bash];
    const r = spawnSync(command[0], command.slice(1), { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    return { status: r.status, output: `${r.stdout}${r.stderr}${r.error ? r.error.message : ""}`, script };
}

describe("runbook: every runnable command, against the lab", () => {
    it(`runs each \`${RUNNABLE}\` block of the lab's and prod's runbooks (same hosts as the lab) and each exits 0`, async (t) => {
        const missing = missingPrerequisites("container");
        if (!requirePrerequisite(t, missing.length === 0, `${missing.join("; ")} (the runbook's docker commands run against the relay image under podman)`)) return;
        const stacks = STACKS;
        for (const stack of stacks) assert.equal(committed(stack), renderRunbook(planOf(stack)), `docs/runbook-${stack}.md is stale`);
        const ran: string[] = [];
        await withLab({ command: "runbook-test", idPrefix: "r", relayRuntime: "container", log: (m) => t.diagnostic(m) }, async ({ lab }) => {
            for (const stack of stacks) {
                for (const block of runnableBlocks(committed(stack))) {
                    const r = runInLab(lab, planOf(stack), block);
                    ran.push(`${stack} / ${block.heading}: ${block.code.split("\n")[0]}`);
                    assert.equal(r.status, 0, `docs/runbook-${stack}.md, "${block.heading}":\n${block.code}\nran in the lab as:\n${r.script}\nexit ${r.status}:\n${r.output.slice(-3000)}`);
                    if (block.heading === "DNS at each provider") {
                        for (const mx of ["10 mail.example.com.", "20 mx2.example.com.", "30 mx3.example.com."]) assert.ok(r.output.includes(mx), `${block.code}\n${r.output}`);
                        assert.match(r.output, /mx2\.example\.com A 198\.51\.100\.20/);
                    }
                    if (block.code.includes("ETRN") || block.code.includes("etrn-relays")) assert.match(r.output, /250/, r.output);
                    if (block.code.includes("postqueue -j | wc -l")) assert.equal(r.output.trim(), "0");
                }
            }

            // Then with mail waiting at the relays: the queue commands show it, the flush commands and the
            // relays' own flusher bring it home, and the verify commands see the queues empty.
            const blocks = runnableBlocks(committed("lab"));
            const run = (block: CodeBlock) => {
                const r = runInLab(lab, planOf("lab"), block);
                assert.equal(r.status, 0, `"${block.heading}" with mail queued:\n${r.script}\nexit ${r.status}:\n${r.output.slice(-3000)}`);
                return r.output;
            };
            lab.primary.stop();
            lab.sender.send("runbook", 3, 1);
            await waitFor("mail to wait at the relays", () => lab.relays.byPriority.reduce((n, relay) => n + lab.relays.queue(relay).length, 0) >= 3, 60_000);
            const queued = blocks.filter((b) => b.code.includes("postqueue -j") && !b.code.includes("wc -l")).map(run).join("\n");
            assert.ok(queued.includes(`"address": "${lab.recipient}"`) || queued.includes(`"address":"${lab.recipient}"`), `postqueue -j shows no message for ${lab.recipient}:\n${queued}`);
            lab.primary.start();
            for (const block of blocks.filter((b) => b.heading.startsWith("Bring the queued mail home"))) run(block);
            for (const block of blocks.filter((b) => b.code.includes("postqueue -j | wc -l"))) {
                await waitFor(`${block.code}: 0`, () => run(block).trim() === "0", 60_000);
            }
        });
        t.diagnostic(`ran ${ran.length} blocks: ${ran.join("; ")}`);
        assert.ok(ran.length >= 10, ran.join("\n"));
    });
});
