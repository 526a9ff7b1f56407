// The generated incident runbook (npm run runbook): the committed files are current, and the render names
// what the plan declares and prints no mock value. Its runnable commands run in the lab: runbook-lab.test.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { loadPlan } from "../lib/plan/load";
import type { Plan } from "../lib/plan/report";
import { ADMIN_USER } from "../lib/render/cloud-init";
import { codeBlocks, runnableBlocks } from "../lib/runbook/blocks";
import { ALARM_TYPE, CONTAINER_TYPE, humanDuration } from "../lib/runbook/facts";
import { PROVIDER_NAMESERVERS, renderRunbook } from "../lib/runbook/render";
import { parseTopology } from "../lib/topology/validate";
import { mailHosts, ownRelays, partnerRelays } from "../lib/topology/placement";
import { ROOT, stackNames } from "./helpers";

const committed = (stack: string) => readFileSync(join(ROOT, "docs", `runbook-${stack}.md`), "utf8");

const plans = new Map<string, Plan>();
before(async () => {
    for (const [stack, plan] of await Promise.all(stackNames().map(async (s) => [s, await loadPlan(s)] as const))) plans.set(stack, plan);
});
const planOf = (stack: string): Plan => plans.get(stack)!;

describe("runbook: the committed files", () => {
    it("are what the renderer makes of each stack's plan now (regenerate: npm run runbook -- --stack <name>)", () => {
        for (const stack of stackNames()) {
            assert.ok(existsSync(join(ROOT, "docs", `runbook-${stack}.md`)), `docs/runbook-${stack}.md is missing: npm run runbook -- --stack ${stack}`);
            assert.equal(committed(stack), renderRunbook(planOf(stack)), `docs/runbook-${stack}.md is stale: npm run runbook -- --stack ${stack}`);
        }
    });

    it("renders byte for byte the same twice", () => {
        for (const stack of stackNames()) assert.equal(renderRunbook(structuredClone(planOf(stack))), renderRunbook(planOf(stack)));
    });

    it("the CLI: --check passes on a current file; usage errors say what to pass", () => {
        const cli = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/runbook.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
        const ok = cli(["--stack", "lab", "--check"]);
        assert.equal(ok.status, 0, ok.stderr);
        assert.match(ok.stderr, /docs\/runbook-lab\.md is current/);
        const none = cli([]);
        assert.equal(none.status, 2);
        assert.ok(none.stderr.includes(`--stack is required (one of: ${stackNames().join(", ")})\nusage: npm run runbook`), none.stderr);
        const unknown = cli(["--stack", "nope"]);
        assert.equal(unknown.status, 2);
        assert.match(unknown.stderr, /no stack nope/);
    });
});

describe("runbook: what it says", () => {
    it("names every MX host, and each relay's container and the access to it as the plan declares them", () => {
        for (const stack of stackNames()) {
            const plan = planOf(stack);
            const text = renderRunbook(plan);
            const topology = parseTopology(plan.topology);
            for (const host of mailHosts(topology)) assert.match(text, new RegExp(`^### ${host.hostname.replace(/\./g, "\\.")} \\((primary|relay|.+'s MX), MX ${host.priority}\\)$`, "m"), `${stack}: ${host.hostname}`);
            for (const relay of ownRelays(topology)) {
                const container = plan.resources.find((r) => r.type === CONTAINER_TYPE && r.inputs.hostname === relay.hostname)!.inputs.name as string;
                const access = relay.placement.kind === "docker" ? `docker -H ${relay.placement.host} exec ${container}` : `ssh ${ADMIN_USER}@${relay.hostname} sudo docker exec ${container}`;
                const runnable = runnableBlocks(text).map((b) => b.code).join("\n");
                for (const command of ["postqueue -p", "postqueue -j", "postqueue -f", ...topology.domains.map((d) => `postqueue -s ${d}`)]) {
                    assert.ok(runnable.includes(`${access} ${command}`), `${stack}: ${access} ${command}`);
                }
            }
        }
    });

    it("gives a partner's MX no container and no docker command: its contact, what a sender meets there, ETRN", () => {
        const withPartner = stackNames().filter((s) => partnerRelays(parseTopology(planOf(s).topology)).length > 0);
        assert.ok(withPartner.length > 0, "no example stack has a partner's MX");
        for (const stack of withPartner) {
            const text = renderRunbook(planOf(stack));
            const topology = parseTopology(planOf(stack).topology);
            for (const p of partnerRelays(topology)) {
                const start = text.indexOf(`### ${p.hostname} (${p.placement.organisation}'s MX, MX ${p.priority})`);
                assert.ok(start > 0, `${stack}: no section for ${p.hostname}`);
                const section = text.slice(start, text.indexOf("\n#", start + 4));
                assert.ok(section.includes(p.placement.contact), section);
                assert.match(section, new RegExp(`swaks --server ${p.hostname.replace(/\./g, "\\.")} --to \\S+ --quit-after RCPT`));
                assert.deepEqual(text.split("\n").filter((l) => l.includes(p.hostname) && /docker|postqueue/.test(l)), [], `${stack}: a container command for ${p.hostname}`);
                for (const domain of topology.domains) assert.ok(text.includes(`curl -sS -X 'ETRN ${domain}' smtp://${p.hostname}`), `${stack}: ETRN ${domain} at ${p.hostname}`);
                assert.match(text, new RegExp(`\\| ${p.priority} \\| \`${p.hostname.replace(/\./g, "\\.")}\` \\| partner's MX \\| ${p.placement.organisation}'s server`));
                assert.ok(text.includes(`npm run partner-config -- --stack ${stack}`));
            }
        }
    });

    it("lists each alarm of the plan with its meaning and where it goes, new ones included", () => {
        for (const stack of stackNames()) {
            const plan = planOf(stack);
            const alarms = plan.resources.filter((r) => r.type === ALARM_TYPE);
            assert.ok(alarms.length >= mailHosts(parseTopology(plan.topology)).length, `${stack}: an alarm per MX host at least`);
            const text = renderRunbook(plan);
            const table = text.slice(text.indexOf("\n## Alarms\n"));
            for (const alarm of alarms) {
                const row = table.split("\n").find((l) => l.startsWith(`| \`${alarm.name}\` `));
                assert.ok(row !== undefined, `${stack}: no row for ${alarm.name}`);
                const addresses = plan.outputs.hostAddresses as Record<string, string>;
                let description = String(alarm.inputs.alarmDescription);
                for (const host of mailHosts(parseTopology(plan.topology)).filter((h) => h.placement.kind === "aws")) description = description.split(addresses[host.hostname]).join(`<${host.hostname}'s Elastic IP>`);
                assert.ok(row.includes(description.replace(/</g, "&lt;").replace(/>/g, "&gt;")), row);
                assert.ok(row.includes(`email ${parseTopology(plan.topology).alerts.email}`), row);
            }
        }
        const plan = structuredClone(planOf("lab"));
        const model = plan.resources.find((r) => r.type === ALARM_TYPE)!;
        plan.resources.push({ ...model, name: "mail-alerts-something-new", inputs: { ...model.inputs, alarmDescription: "a new alarm | with <markup>" } });
        assert.match(renderRunbook(plan), /^\| `mail-alerts-something-new` \(us-east-1\) \| a new alarm \\\| with &lt;markup&gt; \|/m);
    });

    it("tells users the domain, that nothing is lost and how long the relays hold mail", () => {
        for (const stack of stackNames()) {
            const plan = planOf(stack);
            const topology = parseTopology(plan.topology);
            const [outage, resolution] = codeBlocks(renderRunbook(plan)).filter((b) => b.info === "text");
            for (const message of [outage, resolution]) for (const domain of topology.domains) assert.ok(message.code.includes(domain), `${stack}: ${domain}`);
            assert.match(outage.code, /not\s+lost/);
            assert.ok(outage.code.includes(`for up to ${humanDuration(topology.queueLifetime)}`), outage.code);
            assert.match(resolution.code, /Nothing was lost/);
        }
        const plan = structuredClone(planOf("lab"));
        (plan.topology as { queueLifetime: string }).queueLifetime = "10d";
        assert.match(renderRunbook(plan), /hold it for up to 10 days/);
        assert.match(renderRunbook(plan), /How close did the outage come to the queue lifetime \(10 days\)\?/);
    });

    it("prints no value that exists only after a deployment (mock nameservers, Elastic IPs, ids)", () => {
        for (const stack of stackNames()) {
            const plan = planOf(stack);
            const text = renderRunbook(plan);
            const topology = parseTopology(plan.topology);
            const mocks = [
                ...Object.values(plan.outputs.nameservers as Record<string, string[]>).flat(),
                ...mailHosts(topology)
                    .filter((h) => h.placement.kind === "aws")
                    .map((h) => (plan.outputs.hostAddresses as Record<string, string>)[h.hostname]),
            ];
            assert.ok(stack === "lab" || mocks.some((m) => /^\d+\.\d+\.\d+\.\d+$/.test(m)), `${stack}: the test must see the mocked addresses`);
            for (const mock of mocks) assert.ok(!text.includes(mock), `${stack}: prints the mock value ${mock}`);
            for (const id of plan.resources.map((r) => r.id).filter((id) => id.length > 0)) assert.ok(!text.includes(id), `${stack}: prints the mock id ${id}`);
            assert.doesNotMatch(text, /arn:aws|123456789012|\bi-[0-9a-f]{8,}\b|sha256:/, `${stack}: prints a mocked ARN, account, instance id or image`);
        }
        assert.ok(renderRunbook(planOf("prod")).includes("ada.ns.cloudflare.com") === false);
    });

    it("finds each provider's nameservers by the names the providers assign", () => {
        const ns = (pattern: string, name: string) => new RegExp(pattern).test(name);
        assert.ok(ns(PROVIDER_NAMESERVERS.cloudflare.pattern, "ada.ns.cloudflare.com."));
        assert.ok(!ns(PROVIDER_NAMESERVERS.cloudflare.pattern, "ns-1936.awsdns-16.com."));
        for (const name of ["ns-1936.awsdns-16.com.", "ns-1939.awsdns-16.co.uk."]) assert.ok(ns(PROVIDER_NAMESERVERS.route53.pattern, name), name);
        assert.ok(!ns(PROVIDER_NAMESERVERS.route53.pattern, "bob.ns.cloudflare.com."));
    });
});
