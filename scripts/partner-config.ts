// npm run partner-config -- --stack <name> [--out <dir>]
// Writes what each partner's MX (kind: partner) installs to relay for the stack's domains, one directory
// per partner host: postfix.sh (run as root on a Postfix MX; safe to run again), sendmail-access.txt
// (the access db block, with what sendmail.mc needs) and recipients (our recipient table alone). The
// same text is the stack output partnerConfig; a changed recipient list changes both (README "Partner MX").
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { listStacks, readRawTopology } from "../lib/plan/stack-config";
import { parseTopology } from "../lib/topology/validate";
import { partnerRelays } from "../lib/topology/placement";
import { partnerConfigsOf } from "../lib/render/partner";

const projectDir = join(__dirname, "..");
const USAGE = "usage: npm run partner-config -- --stack <name> [--out <dir>]   (default dir: partner-config/<name>)";

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
let topology: ReturnType<typeof parseTopology>;
try {
    topology = parseTopology(readRawTopology(projectDir, values.stack));
} catch (error) {
    fail((error as Error).message);
}
const configs = partnerConfigsOf(topology);
if (configs === undefined) fail(`stack ${values.stack} has no partner's MX (a relay with placement kind: partner)`);
const out = values.out ?? join("partner-config", values.stack);
for (const partner of partnerRelays(topology)) {
    const config = configs[partner.hostname];
    const dir = join(out, partner.hostname);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "postfix.sh"), config.postfix, { mode: 0o755 });
    writeFileSync(join(dir, "sendmail-access.txt"), config.sendmail);
    writeFileSync(join(dir, "recipients"), config.recipients);
    const { organisation, contact, software } = partner.placement;
    const main = software === "postfix" ? "postfix.sh (they run it as root: sh postfix.sh)" : "sendmail-access.txt (its comments say where it goes)";
    process.stdout.write(`${dir}/: send ${main} to ${contact} (${organisation}, MX ${partner.priority} ${partner.hostname}); recipients is the table alone\n`);
}
