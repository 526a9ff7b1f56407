// npm run bench:plan: wall time of `npm run plan -- --stack <s> --json` for each stack, median of N runs.
// Also times bare `node -e "require('@pulumi/pulumi')"`, the floor any Pulumi program pays to start.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const ROOT = join(__dirname, "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function time(args: string[]): number {
    const start = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${args.join(" ")} failed:\n${r.stderr}`);
    return (performance.now() - start) / 1000;
}

const cases: [string, string[]][] = [
    ["require('@pulumi/pulumi') alone", ["-e", "require('@pulumi/pulumi')"]],
    ...["prod", "us"].map((s): [string, string[]] => [`plan --stack ${s} --json`, ["--import", "tsx", "scripts/plan.ts", "--stack", s, "--json"]]),
];
console.log(`| what | median of ${RUNS} (s) | min (s) | max (s) |\n|---|---|---|---|`);
for (const [label, args] of cases) {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
        times.push(time(args));
        process.stderr.write(`  ${label}: run ${i + 1}/${RUNS} ${times[i].toFixed(2)} s\n`);
    }
    console.log(`| ${label} | ${median(times).toFixed(2)} | ${Math.min(...times).toFixed(2)} | ${Math.max(...times).toFixed(2)} |`);
}
