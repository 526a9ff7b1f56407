// The GitHub Actions workflows (.github/workflows): valid against the workflow schema, safe with pull
// requests from forks, and planning, previewing and deploying exactly the stacks the Pulumi.<stack>.yaml
// files define. Nothing here runs GitHub; the comment script runs against a fake GitHub API.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { validateWorkflow } from "@action-validator/core";
import { load } from "js-yaml";
import { ROOT, stackNames } from "./helpers";

interface Step {
    name?: string;
    id?: string;
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
}
interface Job {
    if?: string;
    needs?: string | string[];
    permissions?: Record<string, string>;
    environment?: string;
    concurrency?: { group: string; "cancel-in-progress": boolean };
    strategy?: { "fail-fast"?: boolean; matrix: Record<string, unknown> };
    steps: Step[];
}
interface Workflow {
    name: string;
    on: string | string[] | Record<string, Record<string, unknown> | null>;
    permissions?: Record<string, string>;
    jobs: Record<string, Job>;
}

const DIR = join(ROOT, ".github/workflows");
const FILES = ["deploy.yml", "pr-comment.yml", "preview.yml", "pull-request.yml"];
const text = (file: string): string => readFileSync(join(DIR, file), "utf8");
const workflow = (file: string): Workflow => load(text(file)) as Workflow;
const steps = (w: Workflow): Step[] => Object.values(w.jobs).flatMap((j) => j.steps);
const triggers = (w: Workflow): string[] => (typeof w.on === "string" ? [w.on] : Array.isArray(w.on) ? w.on : Object.keys(w.on));
const usesOf = (w: Workflow, action: string): Step[] => steps(w).filter((s) => s.uses?.split("@")[0] === action);

/** Third-party actions, pinned by major version tag. */
const PINNED: Record<string, string> = {
    "actions/checkout": "v4",
    "actions/setup-node": "v4",
    "actions/upload-artifact": "v4",
    "actions/download-artifact": "v4",
    "actions/github-script": "v7",
    "pulumi/actions": "v6",
    "aws-actions/configure-aws-credentials": "v4",
};
/** pulumi/actions v6's inputs (its README): a misspelt one would be ignored with only a warning. */
const PULUMI_ACTION_INPUTS = new Set(["command", "stack-name", "work-dir", "cloud-url", "comment-on-pr", "comment-on-summary", "github-token", "refresh", "secrets-provider", "color", "config-map", "diff", "comment-on-pr-number", "edit-pr-comment", "expect-no-changes", "message", "parallel", "policyPacks", "policyPackConfigs", "pulumi-version", "replace", "target", "target-dependents", "upsert", "suppress-outputs", "suppress-progress", "always-include-summary"]);
/** A file of each kind the program reads besides Pulumi.<stack>.yaml: a change to any is a change to every stack. */
const PROGRAM_FILES = ["index.ts", "Pulumi.yaml", "tsconfig.json", "package.json", "package-lock.json", "components/relay.ts", "lib/topology/schema.ts", "relay-image/Dockerfile"];
const deployed = (): string[] => stackNames().filter((s) => s !== "lab");

describe("workflows: schema and pinning", () => {
    it("are exactly these four files", () => {
        assert.deepEqual(readdirSync(DIR).sort(), FILES);
    });

    for (const file of FILES) {
        it(`${file} validates against the GitHub Actions workflow schema`, () => {
            assert.deepEqual(validateWorkflow(text(file)).errors, []);
        });
    }

    it("pin every action to its major version tag, and never trigger on pull_request_target", () => {
        for (const file of FILES) {
            for (const step of steps(workflow(file)).filter((s) => s.uses)) {
                const [action, ref] = step.uses!.split("@");
                assert.equal(ref, PINNED[action], `${file}: ${step.uses}`);
            }
            assert.ok(!triggers(workflow(file)).includes("pull_request_target"), file);
            assert.doesNotMatch(text(file), /pull_request_target/, file);
        }
    });

    it("give pulumi/actions only inputs it has", () => {
        for (const file of ["preview.yml", "deploy.yml"]) {
            const [pulumi] = usesOf(workflow(file), "pulumi/actions");
            for (const input of Object.keys(pulumi.with!)) assert.ok(PULUMI_ACTION_INPUTS.has(input), `${file}: ${input}`);
        }
    });
});

describe("pull-request.yml: untrusted code, read-only", () => {
    const w = workflow("pull-request.yml");

    it("runs on every pull request with a read-only token and no secrets", () => {
        assert.deepEqual(triggers(w), ["pull_request"]);
        assert.equal(w.on && (w.on as Record<string, unknown>).pull_request, null, "no branch filter");
        assert.deepEqual(w.permissions, { contents: "read" });
        for (const [name, job] of Object.entries(w.jobs)) assert.equal(job.permissions, undefined, `job ${name} widens the permissions`);
        assert.doesNotMatch(text("pull-request.yml"), /\bsecrets\s*[.[:]/);
    });

    it("type-checks, lints and runs the tests that need no root, after npm ci", () => {
        const runs = steps(w).map((s) => s.run ?? "");
        for (const command of ["npm ci", "npm run typecheck", "npm run lint", "npm run test:unprivileged"]) assert.ok(runs.some((r) => r.startsWith(command)), command);
        assert.ok(!runs.some((r) => /\bsudo\b/.test(r)), "nothing runs as root");
        for (const s of usesOf(w, "actions/checkout")) assert.equal(s.with?.["fetch-depth"], 0);
        for (const s of usesOf(w, "actions/setup-node")) assert.deepEqual([s.with?.["node-version"], s.with?.cache], [20, "npm"]);
    });

    it("plans the stacks scripts/stacks.sh finds changed against the base, into the artifact pr-comment.yml reads", () => {
        const plan = steps(w).find((s) => s.run?.includes("--changed-since"))!;
        assert.equal(plan.env?.BASE_REF, "${{ github.base_ref }}");
        assert.match(plan.run!, /sh scripts\/stacks\.sh --changed-since "origin\/\$BASE_REF"/);
        assert.match(plan.run!, /npm run --silent plan -- --stack "\$stack" --diff "origin\/\$BASE_REF" > "plan-diff\/diff-\$stack\.md"/);
        assert.match(plan.run!, /--argjson pr "\$PR_NUMBER"/);
        const [upload] = usesOf(w, "actions/upload-artifact");
        const [download] = usesOf(workflow("pr-comment.yml"), "actions/download-artifact");
        assert.equal(upload.with?.name, download.with?.name);
    });
});

describe("test:unprivileged", () => {
    const script = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts["test:unprivileged"];
    const prefix = "node --import tsx --test --test-reporter=spec ";
    assert.ok(script.startsWith(prefix), script);
    const listed = spawnSync("sh", ["-c", `printf '%s\\n' ${script.slice(prefix.length)}`], { cwd: ROOT, encoding: "utf8" }).stdout.trim().split("\n");
    const all = readdirSync(join(ROOT, "test")).filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);
    // Under CI (GitHub sets CI=true) a test whose prerequisite is missing fails: these cannot pass
    // as the runner's user, so the pull-request workflow leaves them to .ci/run, which runs as root.
    const NEED_ROOT: Record<string, string> = {
        "test/lab.test.ts": "the failover drill creates network namespaces",
        "test/relay-image.test.ts": "the entrypoint's render and install steps set Postfix's ownership; port 25",
        "test/relay-image-container.test.ts": "podman's store and network namespaces",
        "test/renderers.test.ts": "the primary's apply step runs `postfix check`, which only root may run",
        "test/runbook-lab.test.ts": "the runbook's commands run against the lab (namespaces, podman)",
    };
    const usesRoot = (file: string) => /process\.getuid|missingPrerequisites\(|\bpodman\(|renderPrimaryApply\(/.test(readFileSync(join(ROOT, file), "utf8"));

    it("runs every test file except those that need root", () => {
        assert.ok(listed.includes("test/workflows.test.ts"), listed.join(" "));
        assert.deepEqual(all.filter((f) => !listed.includes(f)), Object.keys(NEED_ROOT).sort());
        assert.deepEqual(listed.filter(usesRoot), [], "a listed file runs something that needs root");
    });
});

// The comment script, run as actions/github-script runs it: the body of an async function of
// (github, context, core, require), here against a fake GitHub API.
interface Comment {
    id: number;
    user: { login: string };
    body: string;
}
interface Write {
    op: "create" | "update";
    target: number;
    body: string;
}
const BOT = "github-actions[bot]";
const HEAD = "0123456789abcdef0123456789abcdef01234567";
const marker = (stack: string, project = "mailcontinuity") => `<!-- mailcontinuity-plan-diff project=${project} stack=${stack} -->`;

describe("pr-comment.yml: trusted, one comment per stack", () => {
    const w = workflow("pr-comment.yml");
    const [scriptStep] = usesOf(w, "actions/github-script");
    const script = String(scriptStep.with?.script);
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    async function runScript(manifest: unknown, diffs: Record<string, string>, comments: Comment[], heads: Record<number, string> = { 7: HEAD }): Promise<Write[]> {
        const dir = mkdtempSync(join(tmpdir(), "plan-diff-"));
        dirs.push(dir);
        writeFileSync(join(dir, "pull-request.json"), JSON.stringify(manifest));
        for (const [stack, diff] of Object.entries(diffs)) writeFileSync(join(dir, `diff-${stack}.md`), diff);
        const writes: Write[] = [];
        let nextId = 1000;
        type Params = Record<string, unknown>;
        const github = {
            paginate: async (list: (p: Params) => Promise<{ data: Comment[] }>, params: Params) => (await list(params)).data,
            rest: {
                pulls: {
                    get: async (p: Params) => {
                        const sha = heads[p.pull_number as number];
                        if (!sha) throw new Error(`fake GitHub: no pull request ${String(p.pull_number)}`);
                        return { data: { number: p.pull_number, head: { sha } } };
                    },
                },
                issues: {
                    listComments: async (p: Params) => {
                        assert.equal(p.issue_number, 7);
                        return { data: structuredClone(comments) };
                    },
                    createComment: async (p: Params) => {
                        writes.push({ op: "create", target: p.issue_number as number, body: p.body as string });
                        return { data: { id: nextId++ } };
                    },
                    updateComment: async (p: Params) => {
                        writes.push({ op: "update", target: p.comment_id as number, body: p.body as string });
                        return { data: {} };
                    },
                },
            },
        };
        const context = { repo: { owner: "owner", repo: "mailcontinuity" }, payload: { workflow_run: { head_sha: HEAD } } };
        const core = { info: () => {}, notice: () => {}, warning: () => {}, setFailed: () => {} };
        const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<unknown>;
        const previous = process.env.PLAN_DIFF_DIR;
        process.env.PLAN_DIFF_DIR = dir;
        try {
            await new AsyncFunction("github", "context", "core", "require", script)(github, context, core, createRequire(__filename));
        } finally {
            process.env.PLAN_DIFF_DIR = previous;
        }
        return writes;
    }

    it("runs after a successful pull-request run, with no checkout and nothing run from the artifact", () => {
        const on = w.on as Record<string, { workflows: string[]; types: string[] }>;
        assert.deepEqual(Object.keys(on), ["workflow_run"]);
        assert.deepEqual(on.workflow_run, { workflows: [workflow("pull-request.yml").name], types: ["completed"] });
        assert.deepEqual(w.permissions, { actions: "read", "pull-requests": "write" });
        const [job] = Object.values(w.jobs);
        assert.match(job.if!, /github\.event\.workflow_run\.conclusion == 'success'/);
        assert.match(job.if!, /github\.event\.workflow_run\.event == 'pull_request'/);
        assert.deepEqual(usesOf(w, "actions/checkout"), []);
        assert.deepEqual(steps(w).filter((s) => s.run), []);
        const [download] = usesOf(w, "actions/download-artifact");
        assert.equal(download.with?.["run-id"], "${{ github.event.workflow_run.id }}");
        assert.equal(download.with?.["github-token"], "${{ github.token }}");
    });

    it("marks each comment with project and stack, and compares the whole first line", () => {
        assert.ok(script.includes("const PROJECT = 'mailcontinuity';"));
        assert.ok(script.includes("`<!-- mailcontinuity-plan-diff project=${PROJECT} stack=${stack} -->`"));
        assert.ok(script.includes("firstLine === marker(stack)"));
        assert.doesNotMatch(script, /startsWith|\.includes\(marker|indexOf\(marker/);
    });

    it("gives dev and dev-tokyo a comment each: no prefix, no marker in the text, no other project or author counts", async () => {
        const comments: Comment[] = [
            { id: 1, user: { login: BOT }, body: `${marker("dev-tokyo")}\nold tokyo diff` },
            { id: 2, user: { login: BOT }, body: `${marker("dev")} (edited)\nfirst line is not the marker alone` },
            { id: 3, user: { login: "mallory" }, body: `${marker("dev")}\nsomeone else's comment` },
            { id: 4, user: { login: BOT }, body: `quoting another comment:\n${marker("dev")}` },
            { id: 5, user: { login: BOT }, body: `${marker("dev", "other")}\nanother project` },
            { id: 6, user: { login: BOT }, body: `${marker("dev")}\r\nwritten with CRLF` },
        ];
        const manifest = { pr: 7, head_sha: HEAD, stacks: ["dev", "dev-tokyo"], all: ["dev", "dev-tokyo"] };
        const writes = await runScript(manifest, { dev: "dev diff", "dev-tokyo": `tokyo diff\n${marker("dev")}` }, comments);
        assert.deepEqual(writes.map((x) => [x.op, x.target, x.body.split("\n")[0]]), [
            ["update", 6, marker("dev")],
            ["update", 1, marker("dev-tokyo")],
        ]);
        assert.match(writes[0].body, /dev diff/);
        assert.match(writes[1].body, /tokyo diff/);
        // Without the CRLF one, dev has no comment of its own yet: a new one, not any of the others.
        const fresh = await runScript(manifest, { dev: "dev diff", "dev-tokyo": "tokyo diff" }, comments.slice(0, 5));
        assert.deepEqual(fresh.map((x) => [x.op, x.target]), [["create", 7], ["update", 1]]);
    });

    it("edits its own comments on the next run, and says so when a stack is no longer changed", async () => {
        const comments: Comment[] = [
            { id: 11, user: { login: BOT }, body: `${marker("prod")}\nold` },
            { id: 12, user: { login: BOT }, body: `${marker("us")}\nold` },
        ];
        const writes = await runScript({ pr: 7, head_sha: HEAD, stacks: ["prod"], all: ["eu", "prod", "us"] }, { prod: "x".repeat(100_000) }, comments);
        assert.deepEqual(writes.map((x) => [x.op, x.target]), [["update", 11], ["update", 12]]);
        assert.ok(writes[0].body.length < 65_536, "over GitHub's limit");
        assert.match(writes[1].body, /no longer changes stack `us`/);
    });

    it("treats the artifact as untrusted: a pull request number, stack names, the run's own head commit", async () => {
        const good = { pr: 7, head_sha: HEAD, stacks: ["prod"], all: ["prod"] };
        for (const bad of [{ pr: "7" }, { pr: 7.5 }, { pr: -7 }, { pr: "7; echo" }, { pr: null }, { stacks: ["../../etc/passwd"], all: ["../../etc/passwd"] }, { stacks: ["Prod"], all: ["Prod"] }, { stacks: ["dev tokyo"], all: ["dev tokyo"] }, { stacks: "prod" }, { stacks: ["eu"] }]) {
            await assert.rejects(runScript({ ...good, ...bad }, { prod: "diff", Prod: "diff" }, []), /^Error: pull-request\.json: /, JSON.stringify(bad));
        }
        // Another pull request's number, or one pushed to since: nothing posted.
        assert.deepEqual(await runScript(good, { prod: "diff" }, [], { 7: "f".repeat(40) }), []);
        assert.deepEqual(await runScript(good, { prod: "diff" }, []).then((x) => x.map((y) => y.op)), ["create"]);
    });
});

describe("preview.yml: this repository's branches only", () => {
    const w = workflow("preview.yml");
    const SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository";

    it("runs only for pull requests from this repository, with OIDC and PR-comment permissions", () => {
        assert.deepEqual(triggers(w), ["pull_request"]);
        assert.deepEqual(w.permissions, { contents: "read" });
        for (const job of Object.values(w.jobs)) assert.ok(job.if?.startsWith(SAME_REPO), job.if);
        assert.deepEqual(w.jobs.preview.permissions, { contents: "read", "id-token": "write", "pull-requests": "write" });
    });

    it("previews each stack with the policy pack and comments, credentials from secrets and OIDC", () => {
        const [pulumi] = usesOf(w, "pulumi/actions");
        assert.equal(pulumi.with?.command, "preview");
        assert.equal(pulumi.with?.["comment-on-pr"], true);
        assert.equal(pulumi.with?.policyPacks, "policy/");
        assert.match(String(pulumi.with?.["stack-name"]), /matrix\.stack/);
        assert.equal(pulumi.env?.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_ACCESS_TOKEN }}");
        assert.equal(pulumi.env?.CLOUDFLARE_API_TOKEN, "${{ secrets.CLOUDFLARE_API_TOKEN }}");
        const [aws] = usesOf(w, "aws-actions/configure-aws-credentials");
        assert.match(String(aws.with?.["role-to-assume"]), /^\$\{\{ vars\.[A-Z_]+ \}\}$/);
        // pulumi/actions edits its comments by prefix (#1165): not when one stack's name starts another's.
        assert.equal(pulumi.with?.["edit-pr-comment"], "${{ needs.stacks.outputs.prefix-clash != 'true' }}");
    });
});

describe("deploy.yml: pulumi up per stack", () => {
    const w = workflow("deploy.yml");

    it("runs on pushes to main, one `up` per stack at a time, never cancelled, each behind its environment", () => {
        const push = (w.on as Record<string, { branches: string[] }>).push;
        assert.deepEqual(push.branches, ["main"]);
        const up = w.jobs.up;
        assert.deepEqual(up.concurrency, { group: "pulumi-up-${{ matrix.stack }}", "cancel-in-progress": false });
        assert.match(up.environment!, /\$\{\{ matrix\.stack \}\}/);
        assert.equal(up.strategy?.["fail-fast"], false);
        assert.deepEqual(up.permissions, { contents: "read", "id-token": "write" });
        const [pulumi] = usesOf(w, "pulumi/actions");
        assert.equal(pulumi.with?.command, "up");
        assert.equal(pulumi.with?.policyPacks, "policy/");
    });

    it("is triggered by every file the program reads, a stack's config and the policy pack, not by the lab's", () => {
        const patterns = (w.on as Record<string, { paths: string[] }>).push.paths;
        const regexp = (glob: string) => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*\*|\*/g, (m) => (m === "**" ? ".*" : "[^/]*"))}$`);
        const triggered = (file: string) => patterns.reduce((hit, p) => (p.startsWith("!") ? hit && !regexp(p.slice(1)).test(file) : hit || regexp(p).test(file)), false);
        for (const file of [...PROGRAM_FILES, ...deployed().map((s) => `Pulumi.${s}.yaml`), "Pulumi.eu.yaml", "policy/index.ts", "scripts/stacks.sh"]) assert.ok(triggered(file), file);
        for (const file of ["Pulumi.lab.yaml", "README.md", "lab/main.ts", "test/stacks.test.ts"]) assert.ok(!triggered(file), file);
    });
});

describe("the stack matrix: scripts/stacks.sh", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    const stacksSh = (cwd: string, ...args: string[]) => spawnSync("sh", [join(cwd, "scripts/stacks.sh"), ...args], { cwd, encoding: "utf8" });

    /** A scratch project: scripts/stacks.sh and these files, committed on a base branch when asked. */
    function project(files: string[]): string {
        const dir = mkdtempSync(join(tmpdir(), "stacks-"));
        dirs.push(dir);
        mkdirSync(join(dir, "scripts"));
        copyFileSync(join(ROOT, "scripts/stacks.sh"), join(dir, "scripts/stacks.sh"));
        for (const file of files) write(dir, file, "# base\n");
        return dir;
    }
    function write(dir: string, file: string, content: string): void {
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        writeFileSync(join(dir, file), content);
    }
    function git(dir: string, ...args: string[]): void {
        const r = spawnSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main", ...args], { cwd: dir, encoding: "utf8" });
        assert.equal(r.status, 0, `git ${args.join(" ")}: ${r.stderr}`);
    }

    it("lists this repository's Pulumi.*.yaml stacks minus lab, as the workflows' matrix", () => {
        const r = stacksSh(ROOT);
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), deployed());
        assert.ok(deployed().length > 0);
        assert.equal(stacksSh(ROOT, "--prefix-clash").stdout, deployed().some((a) => deployed().some((b) => a !== b && b.startsWith(a))) ? "true\n" : "false\n");
        for (const file of ["preview.yml", "deploy.yml"]) {
            const w = workflow(file);
            assert.match(w.jobs.stacks.steps.map((s) => s.run ?? "").join("\n"), /echo "stacks=\$\(sh scripts\/stacks\.sh\)" >> "\$GITHUB_OUTPUT"/, file);
            const matrixJob = Object.values(w.jobs).find((j) => j.strategy)!;
            assert.deepEqual(matrixJob.strategy?.matrix, { stack: "${{ fromJSON(needs.stacks.outputs.stacks) }}" }, file);
        }
    });

    it("follows the files: adding a region is adding a file; a name it cannot pass on is refused", () => {
        const dir = project(["Pulumi.yaml", "Pulumi.lab.yaml", "Pulumi.prod.yaml", "Pulumi.dev.yaml", "Pulumi.dev-tokyo.yaml"]);
        assert.equal(stacksSh(dir).stdout, '["dev","dev-tokyo","prod"]\n');
        assert.equal(stacksSh(dir, "--prefix-clash").stdout, "true\n");
        write(dir, "Pulumi.eu-west.yaml", "");
        assert.equal(stacksSh(dir).stdout, '["dev","dev-tokyo","eu-west","prod"]\n');
        write(dir, "Pulumi.Bad_Name.yaml", "");
        const refused = stacksSh(dir);
        assert.notEqual(refused.status, 0);
        assert.match(refused.stderr, /Pulumi\.Bad_Name\.yaml/);
        assert.equal(stacksSh(project(["Pulumi.lab.yaml"])).stdout, "[]\n");
    });

    it("--changed-since: a stack's own config, or the program for all; nothing for the lab's or the docs", () => {
        const dir = project(["Pulumi.lab.yaml", "Pulumi.prod.yaml", "Pulumi.dev.yaml", "Pulumi.dev-tokyo.yaml", "README.md", "lab/main.ts", "scripts/plan.ts", ...PROGRAM_FILES]);
        git(dir, "init", "-q");
        git(dir, "add", "-A");
        git(dir, "commit", "-q", "-m", "base");
        const changedBy = (change: () => void): unknown => {
            git(dir, "checkout", "-q", "-B", "pr", "main");
            change();
            git(dir, "add", "-A");
            git(dir, "commit", "-q", "--allow-empty", "-m", "change");
            const r = stacksSh(dir, "--changed-since", "main");
            assert.equal(r.status, 0, r.stderr);
            return JSON.parse(r.stdout);
        };
        const all = ["dev", "dev-tokyo", "prod"];
        assert.deepEqual(changedBy(() => {}), []);
        assert.deepEqual(changedBy(() => write(dir, "README.md", "docs\n")), []);
        assert.deepEqual(changedBy(() => write(dir, "Pulumi.lab.yaml", "lab\n")), []);
        assert.deepEqual(changedBy(() => write(dir, "lab/main.ts", "lab\n")), []);
        assert.deepEqual(changedBy(() => write(dir, "docs/lib/notes.md", "docs\n")), []);
        assert.deepEqual(changedBy(() => write(dir, "Pulumi.dev.yaml", "changed\n")), ["dev"]);
        assert.deepEqual(changedBy(() => write(dir, "Pulumi.dev-tokyo.yaml", "changed\n")), ["dev-tokyo"]);
        assert.deepEqual(changedBy(() => write(dir, "Pulumi.eu.yaml", "new\n")), ["eu"]);
        for (const file of PROGRAM_FILES) assert.deepEqual(changedBy(() => write(dir, file, "changed\n")), all, file);
        assert.deepEqual(changedBy(() => write(dir, "lib/new-module.ts", "new\n")), all);
        // Moved out of the program: a change to it, though only the new path is outside.
        assert.deepEqual(changedBy(() => renameSync(join(dir, "components/relay.ts"), join(dir, "scripts/relay.ts"))), all);
        assert.notEqual(stacksSh(dir, "--changed-since", "no-such-ref").status, 0);
    });
});
