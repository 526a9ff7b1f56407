// npm run lab [-- --keep] [--json] [--only a,b] [--list]
// Deploys Pulumi.lab.yaml's topology into network namespaces, runs the failover drill, prints the
// table, and removes everything it made (also on failure or Ctrl-C) unless --keep.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readStackConfig, stackFile } from "../lib/plan/stack-config";
import { CONFIG_KEY, TopologyError, parseTopology } from "../lib/topology/validate";
import { Drill, SCENARIOS, type Row } from "./drill";
import { Lab } from "./lab";
import { missingPrerequisites } from "./prerequisites";
import { formatTable } from "./table";

const ROOT = join(__dirname, "..");

function fail(message: string, code = 1): never {
    process.stderr.write(`lab: ${message.trimEnd()}\n`);
    process.exit(code);
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            keep: { type: "boolean" },
            json: { type: "boolean" },
            only: { type: "string" },
            list: { type: "boolean" },
            help: { type: "boolean", short: "h" },
        },
    });
    if (values.help) {
        process.stdout.write("usage: npm run lab [-- --keep] [--json] [--only id,id] [--list]\n");
        return;
    }
    if (values.list) {
        process.stdout.write(`${SCENARIOS.map((s) => s.id).join("\n")}\n`);
        return;
    }
    const only = values.only?.split(",").map((s) => s.trim());
    const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
    if (unknown.length > 0) fail(`unknown scenario ${unknown.join(", ")}; --list shows them`);
    const missing = missingPrerequisites();
    if (missing.length > 0) fail(`cannot run here:\n  ${missing.join("\n  ")}`);

    const raw = readStackConfig(stackFile(ROOT, "lab"), "mailcontinuity").config[CONFIG_KEY];
    let topology;
    try {
        topology = parseTopology(JSON.parse(raw));
    } catch (error) {
        fail(error instanceof TopologyError ? error.message : String(error));
    }

    const started = Date.now();
    const progress = (message: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
    const id = randomBytes(2).toString("hex");
    const dir = mkdtempSync(join(tmpdir(), `mailcontinuity-lab-${id}-`));
    // mkdtemp makes it 0700; Postfix's own user must reach its data and queue directories inside.
    chmodSync(dir, 0o755);
    const lab = new Lab(topology, { dir, id, log: progress });
    let tornDown = false;
    const teardown = () => {
        if (tornDown || values.keep) return;
        tornDown = true;
        progress("tearing down: processes, namespaces, files");
        lab.down();
        rmSync(dir, { recursive: true, force: true });
    };
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
        process.on(signal, () => {
            process.stderr.write(`\nlab: ${signal}\n`);
            teardown();
            process.exit(130);
        });
    }

    const rows: Row[] = [];
    try {
        progress(`deploying Pulumi.lab.yaml (${topology.domains.join(", ")}) into namespaces ${lab.net.prefix}-*`);
        await lab.up();
        const drill = new Drill(lab, id, progress);
        for (const scenario of SCENARIOS.filter((s) => only === undefined || only.includes(s.id))) {
            progress(`scenario ${scenario.id} ...`);
            try {
                const row = await scenario.run(drill);
                rows.push(row);
                progress(`  ${row.pass ? "pass" : "FAIL"}: ${row.detail}`);
            } catch (error) {
                rows.push({ scenario: scenario.id, sent: 0, acknowledged: 0, delivered: 0, duplicates: 0, bounced: 0, seconds: 0, recoverySeconds: null, pass: false, detail: `error: ${(error as Error).message}` });
                progress(`  FAIL: ${(error as Error).message}`);
                break; // the lab's state is unknown after an error: later scenarios would mislead
            }
        }
    } finally {
        if (values.keep) {
            progress(`left running (--keep). Look inside:`);
            process.stderr.write(
                [
                    `  ip netns list | grep ${lab.net.prefix}`,
                    `  ip netns exec ${lab.net.prefix}-sender swaks --server mx2.example.com --to alice@example.com`,
                    `  postqueue -c ${dir}/mx2/root/etc -p        # a relay's queue`,
                    `  less ${dir}/*/maillog ${dir}/*/relay.log`,
                    `  remove it: npm run lab:clean`,
                    "",
                ].join("\n"),
            );
        }
        teardown();
    }
    const passed = rows.length > 0 && rows.every((r) => r.pass) && (only ?? SCENARIOS.map((s) => s.id)).length === rows.length;
    if (values.json) process.stdout.write(`${JSON.stringify({ passed, seconds: (Date.now() - started) / 1000, rows }, null, 2)}\n`);
    else process.stdout.write(`\n${formatTable(rows)}\n${passed ? "every scenario passed: nothing acknowledged was lost" : "SOME SCENARIOS FAILED"}\n`);
    process.exit(passed ? 0 : 1);
}

main().catch((error: unknown) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));
