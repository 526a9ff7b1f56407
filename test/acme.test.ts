// ACME certificates on every MX (tls.acme), the cloud target: the challenge zone and its delegation at
// both providers, the hosts' rights to write there (and nowhere else), the relays' environment and
// credential (a secret), and the primary's renewal step. Pure renderers directly; the components
// through the offline plan (the real program under Pulumi's mocks).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Plan, PlannedResource } from "../lib/plan/report";
import {
    ACME_UNIT,
    ACME_WRAPPER_PATH,
    PRIMARY_ACME_ENV_PATH,
    PRIMARY_TLS_CERT_FILE,
    PRIMARY_TLS_KEY_FILE,
    ROUTE53_API_REGION,
    acmeChallengePolicy,
    acmeRecordNames,
    primaryAcmeEnvironment,
    renderPrimaryAcmeApply,
} from "../lib/render/acme";
import { renderPrimaryCloudInit, renderRelayCloudInit } from "../lib/render/cloud-init";
import { relayEnvironment } from "../lib/render/relay-env";
import { LETS_ENCRYPT_DIRECTORY } from "../lib/topology/schema";
import { parseTopology } from "../lib/topology/validate";
import { ROOT, inBatches, problemsOf, rawTopology, runPlanAsync, writeStackFile } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PROD = parseTopology(rawTopology("prod"));
const withoutAcme = (t: Raw): Raw => {
    delete t.tls;
    delete t.policy;
    return t;
};
const PROD_WITHOUT_ACME = parseTopology(withoutAcme(rawTopology("prod") as Raw));
const WRAPPER = readFileSync(join(ROOT, "relay-image", "lib", "acme.sh"), "utf8");
const ACME = "mail-acme-challenge";
const HOSTS = ["mail.example.com", "mx2.example.com", "mx3.example.com"];
const slug = (h: string) => h.replace(/\./g, "-");

describe("ACME: the pure parts", () => {
    it("lets a host's credential write only TXT records at its own challenge name, in the one zone", () => {
        const [names] = [acmeRecordNames(PROD, ["mx2.example.com"])];
        assert.deepEqual(names, ["mx2-example-com.acme-challenge.example.com"]);
        const doc = JSON.parse(acmeChallengePolicy("ZCHALLENGE", names)) as { Statement: { Action: string; Resource: string; Condition?: Record<string, Record<string, string[]>> }[] };
        const byAction = new Map(doc.Statement.map((s) => [s.Action, s]));
        assert.deepEqual([...byAction.keys()].sort(), ["route53:ChangeResourceRecordSets", "route53:GetChange", "route53:ListResourceRecordSets"]);
        const change = byAction.get("route53:ChangeResourceRecordSets")!;
        assert.equal(change.Resource, "arn:aws:route53:::hostedzone/ZCHALLENGE");
        assert.deepEqual(change.Condition, {
            "ForAllValues:StringEquals": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
                "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"],
            },
        });
        assert.equal(byAction.get("route53:ListResourceRecordSets")!.Resource, "arn:aws:route53:::hostedzone/ZCHALLENGE");
        // AWS_HOSTED_ZONE_ID names the zone: no right to list (or find) other zones.
        assert.ok(!JSON.stringify(doc).includes("ListHostedZones"));
        assert.deepEqual(acmeRecordNames(PROD_WITHOUT_ACME, HOSTS), []);
    });

    it("gives the relays the ACME variables and PRIMARY_TLS=verify with tls.acme, and nothing new without a tls section", () => {
        const env = relayEnvironment(PROD, PROD.relays[0]);
        assert.deepEqual(
            Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("ACME_") || k === "PRIMARY_TLS")),
            {
                ACME_DIRECTORY_URL: LETS_ENCRYPT_DIRECTORY,
                ACME_EMAIL: "ops@example.com",
                ACME_DOMAIN: "mx2.example.com",
                ACME_DNS_PROVIDER: "route53",
                ACME_RENEW_DAYS: "30",
                PRIMARY_TLS: "verify",
            },
        );
        // A stack without a tls section keeps its containers as they are (prod's mx2 has IPv6: INET_PROTOCOLS, test/ipv6.test.ts).
        assert.deepEqual(Object.keys(relayEnvironment(PROD_WITHOUT_ACME, PROD_WITHOUT_ACME.relays[0])), ["RELAY_DOMAINS", "RELAY_HOSTNAME", "RELAY_RECIPIENTS", "QUEUE_LIFETIME", "STATUS_PORT", "INET_PROTOCOLS"]);
        const encrypt = parseTopology({ ...withoutAcme(rawTopology("prod") as Raw), tls: { relayToPrimary: "encrypt" } });
        assert.equal(relayEnvironment(encrypt, encrypt.relays[0]).PRIMARY_TLS, "encrypt");
        const contact = parseTopology({ ...(rawTopology("prod") as Raw), tls: { acme: { email: "pki@example.com", renewDaysBefore: 21 } } });
        assert.equal(relayEnvironment(contact, contact.relays[1]).ACME_EMAIL, "pki@example.com");
        assert.equal(relayEnvironment(contact, contact.relays[1]).ACME_RENEW_DAYS, "21");
    });

    it("keeps every host's user data byte for byte as it was: ACME reaches the primary through its apply step", () => {
        assert.equal(renderPrimaryCloudInit(PROD, { mailVolumeId: "vol-0123" }), renderPrimaryCloudInit(PROD_WITHOUT_ACME, { mailVolumeId: "vol-0123" }));
        assert.equal(renderRelayCloudInit(PROD, PROD.relays[1], { queueVolumeId: "vol-0456" }), renderRelayCloudInit(PROD_WITHOUT_ACME, PROD_WITHOUT_ACME.relays[1], { queueVolumeId: "vol-0456" }));
    });

    it("renders the primary's ACME step: lego, the relay image's wrapper, its settings, a twice-daily timer, a self-signed pair first", () => {
        const script = renderPrimaryAcmeApply(PROD, { hostedZoneId: "ZCHALLENGE", wrapper: WRAPPER });
        assert.ok(script.includes(WRAPPER), "the wrapper is the relay image's lib/acme.sh, byte for byte");
        assert.match(script, new RegExp(`^install_file '${ACME_WRAPPER_PATH}' 0755 <<'MAILCONTINUITY_EOF'$`, "m"));
        assert.match(script, /apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 lego openssl/);
        const env = primaryAcmeEnvironment(PROD, "ZCHALLENGE");
        assert.ok(script.includes(env));
        for (const line of [
            `ACME_DIRECTORY_URL=${LETS_ENCRYPT_DIRECTORY}`,
            "ACME_DOMAIN=mail.example.com",
            "ACME_EMAIL=ops@example.com",
            `ACME_CERT_FILE=${PRIMARY_TLS_CERT_FILE}`,
            `ACME_KEY_FILE=${PRIMARY_TLS_KEY_FILE}`,
            "AWS_HOSTED_ZONE_ID=ZCHALLENGE",
            `AWS_REGION=${ROUTE53_API_REGION}`,
        ]) {
            assert.ok(env.split("\n").includes(line), `${line} missing from ${PRIMARY_ACME_ENV_PATH}`);
        }
        // systemd reads a value with spaces only quoted.
        assert.match(env, /^ACME_RELOAD_COMMAND="if postfix status >\/dev\/null 2>&1; then postfix reload; fi"$/m);
        assert.match(script, /OnCalendar=\*-\*-\* 00,12:00:00\nRandomizedDelaySec=1h\nPersistent=true/);
        assert.match(script, new RegExp(`systemctl enable --now ${ACME_UNIT}\\.timer\\nsystemctl start --no-block ${ACME_UNIT}\\.service`));
        assert.match(script, /openssl req -new -x509 .*-key \/etc\/mailcontinuity\/tls\/key\.pem .*-out \/etc\/mailcontinuity\/tls\/cert\.pem\.new/);
        assert.equal(spawnSync("sh", ["-n"], { input: script }).status, 0, "the step is valid sh");
        assert.throws(() => renderPrimaryAcmeApply(PROD_WITHOUT_ACME, { hostedZoneId: "Z", wrapper: WRAPPER }), /no tls\.acme/);
    });

    it("refuses MTA-STS enforce without tls.acme, naming policy.mtaSts", () => {
        const t = withoutAcme(rawTopology("prod") as Raw);
        t.policy = { mtaSts: "enforce" };
        assert.ok(problemsOf(t).some((p) => p.startsWith("topology.policy.mtaSts: ") && /tls\.acme/.test(p)), problemsOf(t).join("\n"));
        assert.deepEqual(problemsOf(rawTopology("prod")), [], "prod enforces with tls.acme");
    });
});

describe("ACME: what the prod stack declares", () => {
    const dir = mkdtempSync(join(tmpdir(), "acme-"));
    let plan: Plan;
    let plainJson: string;
    let shown: Plan;
    let noAcme: Plan;
    before(async () => {
        const [prod, revealed, without] = await inBatches([
            () => runPlanAsync(["--stack", "prod", "--json"]),
            () => runPlanAsync(["--stack", "prod", "--json", "--show-secrets"]),
            () => runPlanAsync(["--stack", "prod-without-acme", "--config", writeStackFile(dir, "prod-without-acme", withoutAcme(rawTopology("prod") as Raw)), "--json"]),
        ]);
        for (const run of [prod, revealed, without]) assert.equal(run.status, 0, run.stderr);
        plan = prod.plan!;
        plainJson = prod.stdout;
        shown = revealed.plan!;
        noAcme = without.plan!;
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const named = (p: Plan, name: string): PlannedResource => {
        const r = p.resources.find((x) => x.name === name);
        assert.ok(r, `${name} is not declared`);
        return r;
    };
    const byType = (p: Plan, type: string) => p.resources.filter((r) => r.type === type);

    it("creates the challenge zone in Route53, under the component, and delegates it at both providers", () => {
        const zone = named(plan, `${ACME}-zone`);
        assert.equal(zone.type, "aws:route53/zone:Zone");
        assert.equal(zone.inputs.name, "acme-challenge.example.com");
        assert.equal(zone.parent, ACME);
        assert.equal(named(plan, ACME).type, "mailcontinuity:acme:AcmeChallenge");
        const delegation = (provider: string) =>
            plan.dns
                .filter((d) => d.provider === provider && d.type === "NS" && d.name === "acme-challenge.example.com")
                .map((d) => d.content)
                .sort();
        assert.equal(delegation("cloudflare").length, 4);
        assert.deepEqual(delegation("route53"), delegation("cloudflare"));
        assert.ok(delegation("route53").every((ns) => ns.includes(".awsdns-")));
        // Its own nameservers, not the mail zone's.
        const apex = plan.dns.filter((d) => d.provider === "route53" && d.type === "NS" && d.name === "example.com").map((d) => d.content);
        assert.deepEqual(delegation("route53").filter((ns) => apex.includes(ns)), []);
        // The Route53 delegation is in the mail zone, next to the CNAMEs.
        const r53 = named(plan, "mail-dns-example-com-r53-acme-challenge-example-com-ns");
        assert.equal(r53.inputs.zoneId, named(plan, "mail-dns-example-com-r53").id);
    });

    it("points _acme-challenge of every MX host into the zone, the same at both providers", () => {
        for (const host of HOSTS) {
            for (const provider of ["cloudflare", "route53"]) {
                const cname = plan.dns.filter((d) => d.provider === provider && d.name === `_acme-challenge.${host}`);
                assert.deepEqual(
                    cname.map((d) => [d.type, d.content]),
                    [["CNAME", `${slug(host)}.acme-challenge.example.com`]],
                    `${provider} ${host}`,
                );
            }
        }
    });

    it("grants each host its own challenge name in the challenge zone only: instance roles on EC2, an IAM user for the Docker relay", () => {
        const zoneId = named(plan, `${ACME}-zone`).id;
        const mailZoneId = named(plan, "mail-dns-example-com-r53").id;
        const grants: [string, PlannedResource][] = [
            ["mail.example.com", named(plan, `${ACME}-mail-example-com`)],
            ["mx3.example.com", named(plan, `${ACME}-mx3-example-com`)],
            ["mx2.example.com", named(plan, `${ACME}-mx2-example-com-access`)],
        ];
        for (const [host, grant] of grants) {
            const policy = String(grant.inputs.policy);
            assert.equal(policy, acmeChallengePolicy(zoneId, [`${slug(host)}.acme-challenge.example.com`]), host);
            assert.ok(!policy.includes(mailZoneId), `${host}: names the mail zone`);
            for (const other of HOSTS.filter((h) => h !== host)) assert.ok(!policy.includes(slug(other)), `${host} may write ${other}'s name`);
        }
        assert.equal(byType(plan, "aws:iam/rolePolicy:RolePolicy").length + byType(plan, "aws:iam/userPolicy:UserPolicy").length, 3);
        // The EC2 hosts act as their roles; the relay's container reaches the metadata service through Docker's bridge.
        for (const host of ["mail-mail-example-com", "mail-mx3-example-com"]) {
            const role = named(plan, `${host}-role`);
            const profile = named(plan, `${host}-profile`);
            assert.equal(profile.inputs.role, role.id);
            assert.equal(named(plan, `${host}-vm`).inputs.iamInstanceProfile, profile.id);
            assert.ok(byType(plan, "aws:iam/rolePolicy:RolePolicy").some((p) => p.inputs.role === role.id), `${host}: no ACME right on its role`);
            assert.match(String(role.inputs.assumeRolePolicy), /"Service":"ec2\.amazonaws\.com"/);
        }
        assert.deepEqual(named(plan, "mail-mx3-example-com-vm").inputs.metadataOptions, { httpPutResponseHopLimit: 2, httpTokens: "required" });
        assert.deepEqual(named(plan, "mail-mail-example-com-vm").inputs.metadataOptions, { httpTokens: "required" });
        const user = named(plan, `${ACME}-mx2-example-com-user`);
        assert.equal(named(plan, `${ACME}-mx2-example-com-access`).inputs.user, user.id);
        assert.equal(named(plan, `${ACME}-mx2-example-com-key`).inputs.user, user.id);
    });

    it("hands the relays the ACME variables, the zone, and (Docker host) the key, whose secret stays a secret", () => {
        const zoneId = named(plan, `${ACME}-zone`).id;
        const key = named(plan, `${ACME}-mx2-example-com-key`);
        const envs = (p: Plan, host: string) => named(p, `mail-${slug(host)}-relay`).inputs.envs as string[];
        for (const host of ["mx2.example.com", "mx3.example.com"]) {
            const env = envs(plan, host);
            for (const line of [`ACME_DIRECTORY_URL=${LETS_ENCRYPT_DIRECTORY}`, `ACME_DOMAIN=${host}`, "ACME_EMAIL=ops@example.com", "PRIMARY_TLS=verify", `AWS_HOSTED_ZONE_ID=${zoneId}`, `AWS_REGION=${ROUTE53_API_REGION}`]) {
                assert.ok(env.includes(line), `${host}: ${line} missing from ${JSON.stringify(env)}`);
            }
        }
        // The Docker relay: the key id in the clear (a rotation shows), the secret hidden by itself.
        const mx2 = envs(plan, "mx2.example.com");
        assert.ok(mx2.includes(`AWS_ACCESS_KEY_ID=${key.id}`));
        assert.deepEqual(mx2.filter((e) => !e.includes("=")).map((e) => e.replace(/[0-9a-f]{12}/, "<digest>")), ["[secret <digest>]"]);
        assert.ok(!plainJson.includes("mock-secret-"), "the key's secret is in the plan in plaintext");
        // It is there, and only shown when asked.
        assert.ok(envs(shown, "mx2.example.com").some((e) => /^AWS_SECRET_ACCESS_KEY=mock-secret-[0-9a-f]+$/.test(e)));
        // The EC2 relay uses its instance's role: no key anywhere.
        assert.ok(!envs(plan, "mx3.example.com").some((e) => e.startsWith("AWS_ACCESS_KEY_ID=") || e.startsWith("[secret")));
    });

    it("installs the primary's ACME step before its mail configuration, which serves the ACME pair", () => {
        const zoneId = named(plan, `${ACME}-zone`).id;
        const step = named(plan, "mail-mail-example-com-acme");
        assert.equal(step.type, "command:remote:Command");
        assert.equal(step.inputs.stdin, renderPrimaryAcmeApply(PROD, { hostedZoneId: zoneId, wrapper: WRAPPER }));
        const config = String(named(plan, "mail-mail-example-com-config").inputs.stdin);
        assert.ok(config.includes(`'smtpd_tls_cert_file=${PRIMARY_TLS_CERT_FILE}'`) && config.includes(`'smtpd_tls_key_file=${PRIMARY_TLS_KEY_FILE}'`));
        const unchanged = String(named(noAcme, "mail-mail-example-com-config").inputs.stdin);
        assert.ok(unchanged.includes("'smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem'"));
    });

    it("declares none of it without tls.acme", () => {
        const acmeTypes = ["aws:iam/rolePolicy:RolePolicy", "aws:iam/userPolicy:UserPolicy", "aws:iam/user:User", "aws:iam/accessKey:AccessKey", "aws:iam/instanceProfile:InstanceProfile"];
        assert.deepEqual(noAcme.resources.filter((r) => acmeTypes.includes(r.type) || r.name.startsWith(ACME) || r.name.endsWith("-acme")).map((r) => r.name), []);
        assert.deepEqual(noAcme.dns.filter((d) => d.name.includes("acme-challenge")), []);
        for (const c of byType(noAcme, "docker:index/container:Container")) assert.ok(!(c.inputs.envs as string[]).some((e) => /^(ACME_|AWS_|PRIMARY_TLS)/.test(e)), c.name);
        for (const i of byType(noAcme, "aws:ec2/instance:Instance")) assert.equal(i.inputs.iamInstanceProfile, undefined, i.name);
    });
});
