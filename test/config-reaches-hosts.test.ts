// The values a user sets arrive where the hosts read them: the relay containers' environment, the
// recipients the relays are given and kept current with, the primary's tables and its mailbox users.
// The expected values are written out here, not rebuilt with the renderers under test.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Plan, PlannedResource } from "../lib/plan/report";
import { runPlanAsync, writeStackFile, type PlanRun } from "./helpers";

const ALICE_HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE";
const BOB_HASH = "{SHA512-CRYPT}$6$saltsalt$Bm8Xvq5dWXlqO0M1o2Fb1lSm7iYtHk8u2bB9oWvC3Qh0lmcRrUU1y8lPT9Yw1LqM2sPNVTP6jCwF0QnR8Jb1c.";

const FIXTURE = {
    domains: ["example.org", "example.net"],
    primary: {
        hostname: "mail.example.org",
        placement: { kind: "aws", region: "us-west-2", adminSshCidr: "198.51.100.0/26", ami: "ami-0123456789abcdef0", snapshots: { copyToRegion: "us-east-2" } },
    },
    relays: [
        {
            hostname: "mx2.example.org",
            priority: 20,
            placement: { kind: "docker", host: "ssh://deploy@relay-bhs.example.net:2222", address: "198.51.100.40", site: { provider: "ovh", city: "beauharnois" } },
        },
        { hostname: "mx3.example.org", priority: 30, placement: { kind: "aws", region: "us-east-1", adminSshCidr: "198.51.100.0/26", ami: "ami-0fedcba9876543210" } },
    ],
    dns: { providers: [{ kind: "cloudflare", zoneIds: { "example.org": "9a7806061c88ada191ed06f989cc3dac", "example.net": "372e67954025e0ba6aaa6d586b9e0b59" } }, { kind: "route53" }] },
    recipients: ["alice@example.org", "bob@example.org", "@example.net"],
    mailboxes: ["alice@example.org", "bob@example.org"],
    admin: { sshKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyFixtureKeyFixtureKeyFixtureKey00 fixture@example.org"] },
    alerts: { email: "oncall@example.org" },
    queueLifetime: "9d",
};

const RECIPIENTS_FILE = "alice@example.org\nbob@example.org\n@example.net\n";

describe("configured values arrive on the hosts (fixture: queueLifetime 9d, @domain recipients, two mailbox users)", () => {
    const dir = mkdtempSync(join(tmpdir(), "arrive-"));
    let shown: Plan;
    let hidden: PlanRun;
    const byName = (name: string): PlannedResource => {
        const r = shown.resources.find((x) => x.name === name);
        assert.ok(r, `${name} is not in the plan`);
        return r;
    };

    before(async () => {
        const file = writeStackFile(dir, "fixture", FIXTURE, { "mailcontinuity:mailboxPasswordHashes": { "alice@example.org": ALICE_HASH, "bob@example.org": BOB_HASH } });
        const [withSecrets, without] = await Promise.all([
            runPlanAsync(["--stack", "fixture", "--config", file, "--json", "--show-secrets"]),
            runPlanAsync(["--stack", "fixture", "--config", file, "--json"]),
        ]);
        assert.equal(withSecrets.status, 0, withSecrets.stderr);
        shown = withSecrets.plan!;
        hidden = without;
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("gives both relay containers the queue lifetime, domains, hostname and status port in their environment", () => {
        for (const [relay, hostname] of [["mail-mx2-example-org-relay", "mx2.example.org"], ["mail-mx3-example-org-relay", "mx3.example.org"]]) {
            assert.deepEqual([...(byName(relay).inputs.envs as string[])].sort(), [
                "QUEUE_LIFETIME=9d",
                `RELAY_DOMAINS=example.org,example.net`,
                `RELAY_HOSTNAME=${hostname}`,
                "RELAY_RECIPIENTS=/etc/relay/recipients",
                "STATUS_PORT=8025",
            ]);
        }
    });

    it("seeds each container with the recipients and keeps the running relay current through the same list", () => {
        for (const key of ["mx2", "mx3"]) {
            const uploads = byName(`mail-${key}-example-org-relay`).inputs.uploads as { file: string; content: string }[];
            assert.deepEqual(uploads, [{ file: "/etc/relay/recipients", content: RECIPIENTS_FILE }]);
            const apply = byName(`mail-${key}-example-org-recipients`).inputs;
            assert.equal(apply.stdin, RECIPIENTS_FILE);
            assert.equal(apply.update, `docker exec -i 'mail-${key}-example-org-relay' /usr/local/sbin/relay-entrypoint install-recipients`);
        }
    });

    it("builds an EC2 relay's image for its architecture and binds its queue to the retained EBS volume", () => {
        const image = byName("mail-mx3-example-org-image").inputs.build as { platform: string };
        assert.equal(image.platform, "linux/amd64");
        const queue = byName("mail-mx3-example-org-queue").inputs;
        assert.deepEqual(queue.driverOpts, { type: "none", o: "bind", device: "/srv/relay-queue" });
        assert.deepEqual(byName("mail-mx3-example-org-queue-disk").options, { protect: true, retainOnDelete: true });
    });

    it("pushes the primary's tables: each mailbox and the catch-all, the relays' addresses, both domains", () => {
        const script = String(byName("mail-mail-example-org-config").inputs.stdin);
        assert.ok(script.includes("install_file '/etc/postfix/vmailbox' 0644 <<'MAILCONTINUITY_EOF'\nalice@example.org\texample.org/alice/\nbob@example.org\texample.org/bob/\n@example.net\texample.net/catchall/\nMAILCONTINUITY_EOF\n"), script.slice(0, 600));
        assert.ok(script.includes(`postconf -c "$staged" -e 'virtual_mailbox_domains=example.org example.net'`));
        assert.ok(script.includes(`postmap -c "$conf" "hash:$conf/vmailbox"`));
        const addresses = shown.outputs.hostAddresses as Record<string, string>;
        assert.ok(script.includes(`install_file '/etc/postfix/relay_clients.cidr' 0644 <<'MAILCONTINUITY_EOF'\n${addresses["mx2.example.org"]}/32\tOK\n${addresses["mx3.example.org"]}/32\tOK\nMAILCONTINUITY_EOF`));
        assert.equal(addresses["mx2.example.org"], "198.51.100.40");
        assert.ok(script.includes("relays=(mx2.example.org mx3.example.org)"), "the ETRN script names both relays");
    });

    it("pushes the mailbox users with their hashes, as a secret the plan does not show", () => {
        const users = String(byName("mail-mail-example-org-mailboxes").inputs.stdin);
        assert.ok(users.includes(`install_file '/etc/dovecot/users' 0640 'dovecot' <<'MAILCONTINUITY_EOF'\nalice@example.org:${ALICE_HASH}\nbob@example.org:${BOB_HASH}\nMAILCONTINUITY_EOF`), users);
        assert.equal(hidden.status, 0, hidden.stderr);
        assert.ok(!hidden.stdout.includes("$argon2id$"), "a password hash leaked into the plan");
        const masked = hidden.plan!.resources.find((r) => r.name === "mail-mail-example-org-mailboxes")!.inputs.stdin;
        assert.match(String(masked), /^\[secret [0-9a-f]{12}\]$/);
    });

    it("uses the AMI the config pins, and ignores only user data", () => {
        const vm = byName("mail-mail-example-org-vm");
        assert.equal(vm.inputs.ami, "ami-0123456789abcdef0");
        assert.equal(vm.options.ignoreChanges, undefined, "nothing ignored: a replacement boots with today's bootstrap");
    });
});

describe("mailbox password hashes", () => {
    const dir = mkdtempSync(join(tmpdir(), "hashes-"));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("refuses a mailbox without a hash, and a plaintext password, naming each mailbox", async () => {
        const file = writeStackFile(dir, "nohash", FIXTURE, { "mailcontinuity:mailboxPasswordHashes": { "bob@example.org": "hunter2" } });
        const run = await runPlanAsync(["--stack", "nohash", "--config", file]);
        assert.notEqual(run.status, 0);
        assert.match(run.stderr, /alice@example\.org: no password hash; set one with: pulumi config set --secret --path/);
        assert.match(run.stderr, /bob@example\.org: not a Dovecot password hash/);
        assert.ok(!run.stderr.includes("hunter2"), "the refused password was echoed");
    });

    it("refuses Dovecot's plaintext schemes and a colon, which would break the passwd-file", async () => {
        const file = writeStackFile(dir, "plain", FIXTURE, { "mailcontinuity:mailboxPasswordHashes": { "alice@example.org": "{PLAIN}hunter2", "bob@example.org": "{SHA512-CRYPT}$6$a:b" } });
        const run = await runPlanAsync(["--stack", "plain", "--config", file]);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /alice@example\.org: PLAIN keeps the password readable/);
        assert.match(run.stderr, /bob@example\.org: not a Dovecot password hash/);
    });

    it("empties the passwd-file when the last mailbox goes, instead of leaving the old users able to log in", async () => {
        const file = writeStackFile(dir, "nomailboxes", { ...FIXTURE, mailboxes: [] });
        const run = await runPlanAsync(["--stack", "nomailboxes", "--config", file, "--json", "--show-secrets"]);
        assert.equal(run.status, 0, run.stderr);
        const users = String(run.plan!.resources.find((r) => r.name === "mail-mail-example-org-mailboxes")!.inputs.stdin);
        assert.ok(users.includes("install_file '/etc/dovecot/users' 0640 'dovecot' <<'MAILCONTINUITY_EOF'\nMAILCONTINUITY_EOF"), users);
    });
});
