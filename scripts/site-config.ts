// npm run site-config -- --stack <name> [--out <dir>]
// Writes each site server's apply script (site-<name>.sh) for the sites of a stack: the Postfix routing
// an existing site server needs, to be run there as root (README "Sites"). The same scripts are the
// stack output siteApplyScripts.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { listStacks, readRawTopology } from "../lib/plan/stack-config";
import { parseTopology } from "../lib/topology/validate";
import { siteApplyScriptsOf } from "../lib/render/site-apply";

const projectDir = join(__dirname, "..");
const USAGE = "usage: npm run site-config -- --stack <name> [--out <dir>]   (default dir: site-config/<name>)";

function fail(message: string): never {
    process.stderr.write(`${message.trimEnd()}\n`);
    process.exit(1);
}

let values: { stack?: string; out?: string };
try {
    values = parseArgs({ options: { stack: { type: "string" }, out: { type: "string" } } }).values;
} catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
}
if (values.stack === undefined) fail(`--stack is required (${listStacks(projectDir).join(", ")})\n${USAGE}`);
let scripts: Record<string, string>;
try {
    scripts = siteApplyScriptsOf(parseTopology(readRawTopology(projectDir, values.stack)));
} catch (error) {
    fail((error as Error).message);
}
if (Object.keys(scripts).length === 0) fail(`stack ${values.stack} declares no sites`);
const out = values.out ?? join("site-config", values.stack);
mkdirSync(out, { recursive: true });
for (const [site, script] of Object.entries(scripts)) {
    const file = join(out, `site-${site}.sh`);
    writeFileSync(file, script, { mode: 0o755 });
    process.stdout.write(`${file}: copy it to site ${site}'s server and run it there as root (sh ${`site-${site}.sh`})\n`);
}
