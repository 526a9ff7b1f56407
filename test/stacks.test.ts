// Every committed stack config, evaluated through `npm run plan` (the real program under mocks).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { dump } from "js-yaml";
import { parseTopology } from "../lib/topology/validate";
import { failureDomainOf, mailHosts, ownRelays, zoneOf } from "../lib/topology/placement";
import { duplicateUrns, type Plan, type PlannedResource } from "../lib/plan/report";
import { SECRET, revealSecrets, type Registration } from "../lib/plan/mocks";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { QUEUE_HEALTHY_TEXT, RELAY_STATUS_PATH, RELAY_STATUS_PORT, relayEnvironment } from "../lib/render/relay-env";
import { rawTopology, runPlan, stackNames } from "./helpers";

const byType = (plan: Plan, type: string): PlannedResource[] => plan.resources.filter((r) => r.type === type);

for (const stack of stackNames()) {
    describe(`stack ${stack}`, () => {
        const run = runPlan(["--stack", stack, "--json"]);
        const topology = parseTopology(rawTopology(stack));

        it("evaluates under mocks", () => {
            assert.equal(run.status, 0, run.stderr);
            assert.ok(run.plan!.resources.length > 20);
        });
        // Every test below registers even when evaluation fails, and then fails with the reason.
        const evaluated = (): Plan => {
            assert.ok(run.plan, `stack ${stack} did not evaluate:\n${run.stderr}`);
            return run.plan;
        };

        it("publishes MX records with the configured priorities and hosts, identical at both providers", () => {
            const expected = mailHosts(topology).map((h) => `${h.priority} ${h.hostname}`);
            for (const domain of topology.domains) {
                for (const provider of ["cloudflare", "route53"]) {
                    const mx = evaluated().dns.filter((d) => d.provider === provider && d.type === "MX" && d.name === domain).map((d) => `${d.priority} ${d.content}`);
                    assert.deepEqual(mx, expected, `${provider} ${domain}`);
                }
            }
            const strip = (p: string) =>
                evaluated().dns
                    .filter((d) => d.provider === p && d.type !== "NS")
                    .map(({ name, type, ttl, content, priority }) => JSON.stringify({ name, type, ttl, content, priority }));
            assert.deepEqual(strip("cloudflare"), strip("route53"));
        });

        it("points each MX host's A record at that host's address", () => {
            const mxTable = evaluated().outputs.mxTable as { host: string; address: string | null; role: string }[];
            for (const { host, address, role } of mxTable) {
                for (const provider of ["cloudflare", "route53"]) {
                    const a = evaluated().dns.filter((d) => d.provider === provider && d.type === "A" && d.name === host).map((d) => d.content);
                    // A partner's MX named outside our zones has its A records in its own DNS, not here.
                    if (role === "partner" && zoneOf(host, topology.domains) === undefined) assert.deepEqual(a, [], `${provider} A ${host}`);
                    else assert.deepEqual(a, [address], `${provider} A ${host}`);
                }
            }
        });

        it("lists both providers' nameservers at both apexes, and outputs them for the registrar", () => {
            const nameservers = evaluated().outputs.nameservers as Record<string, string[]>;
            for (const domain of topology.domains) {
                const all = nameservers[domain];
                assert.ok(all.some((n) => n.endsWith(".ns.cloudflare.com")) && all.some((n) => n.includes(".awsdns-")), all.join(" "));
                const r53 = evaluated().dns.filter((d) => d.provider === "route53" && d.type === "NS" && d.name === domain).map((d) => d.content);
                assert.deepEqual(r53.sort(), [...all].sort());
                // Cloudflare answers with its own NS itself; it must carry Route53's.
                const cf = evaluated().dns.filter((d) => d.provider === "cloudflare" && d.type === "NS" && d.name === domain).map((d) => d.content);
                assert.deepEqual(cf.sort(), all.filter((n) => n.includes(".awsdns-")).sort());
            }
            for (const settings of byType(evaluated(), "cloudflare:index/zoneDnsSettings:ZoneDnsSettings")) assert.equal(settings.inputs.multiProvider, true);
        });

        it("never proxies a mail record through Cloudflare, and names records without a trailing dot", () => {
            const records = byType(evaluated(), "cloudflare:index/dnsRecord:DnsRecord");
            assert.ok(records.length > 0);
            for (const r of records) {
                assert.equal(r.inputs.proxied, false, r.name);
                assert.doesNotMatch(String(r.inputs.name), /\.$/, r.name);
            }
        });

        /** The sites' own servers (the "mail switch"); those on EC2 are hosts of the stack like the MX hosts. */
        const siteServers = () => Object.values(topology.sites).map((site) => site.server!);
        const ec2Hosts = () => [...mailHosts(topology), ...siteServers()].filter((h) => h.placement.kind === "aws");

        it("never opens SSH to the world", () => {
            const rules = byType(evaluated(), "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule");
            const onAws = ec2Hosts().length;
            assert.equal(rules.length > 0, onAws > 0, "every AWS host needs its firewall rules");
            for (const rule of rules.filter((r) => Number(r.inputs.fromPort) <= 22 && Number(r.inputs.toPort) >= 22)) {
                assert.ok(rule.inputs.cidrIpv4 !== "0.0.0.0/0" && rule.inputs.cidrIpv6 === undefined, `${rule.name}: ${JSON.stringify(rule.inputs)}`);
            }
            const smtp = rules.filter((r) => r.inputs.fromPort === 25 && r.inputs.cidrIpv4 === "0.0.0.0/0");
            assert.equal(smtp.length, onAws);
        });

        it("runs each host in its own region or at its own provider site", () => {
            const sites = mailHosts(topology).map((h) => failureDomainOf(h.placement));
            assert.equal(new Set(sites).size, sites.length, sites.join(", "));
            const regionOf = new Map(byType(evaluated(), "pulumi:providers:aws").map((p) => [p.name, String(p.inputs.region)]));
            const instanceRegions = byType(evaluated(), "aws:ec2/instance:Instance").map((i) => regionOf.get(i.provider ?? "")).sort();
            const configured = ec2Hosts().flatMap((h) => (h.placement.kind === "aws" ? [h.placement.region] : [])).sort();
            assert.deepEqual(instanceRegions, configured);
            // A Docker relay is managed on its host; an EC2 relay on its own instance, as Debian's admin user.
            const dockerHosts = byType(evaluated(), "pulumi:providers:docker").map((p) => String(p.inputs.host));
            assert.deepEqual(
                dockerHosts.filter((h) => !h.startsWith("ssh://admin@")).sort(),
                ownRelays(topology).flatMap((r) => (r.placement.kind === "docker" ? [r.placement.host] : [])).sort(),
            );
            assert.equal(dockerHosts.filter((h) => h.startsWith("ssh://admin@")).length, topology.relays.filter((r) => r.placement.kind === "aws").length);
            const containerHosts = byType(evaluated(), "docker:index/container:Container").map((c) => c.provider);
            assert.ok(containerHosts.every((p) => p !== null && byType(evaluated(), "pulumi:providers:docker").some((d) => d.name === p)));
        });

        it("encrypts every disk that holds mail", () => {
            for (const v of byType(evaluated(), "aws:ebs/volume:Volume")) assert.equal(v.inputs.encrypted, true, v.name);
            for (const i of byType(evaluated(), "aws:ec2/instance:Instance")) assert.equal((i.inputs.rootBlockDevice as { encrypted: boolean }).encrypted, true, i.name);
        });

        it("gives every relay container the relay image's environment, a queue volume and a restart policy", () => {
            const containers = byType(evaluated(), "docker:index/container:Container");
            // One container spec for every relay the stack runs, whatever its host; none for a partner's MX.
            assert.equal(containers.length, ownRelays(topology).length);
            for (const c of containers) {
                const relay = topology.relays.find((r) => r.hostname === c.inputs.hostname)!;
                const env = (c.inputs.envs as string[]).map((e) => (e.startsWith("[secret ") ? "[secret]" : e.split("=")[0])).sort();
                // The rendered environment, and with tls.acme what only the deployment knows: the challenge
                // zone, and on a Docker host (not on AWS) its access key, the secret hidden by itself.
                const deployTime = topology.tls.acme === undefined ? [] : ["AWS_HOSTED_ZONE_ID", "AWS_REGION", ...(relay.placement.kind === "docker" ? ["AWS_ACCESS_KEY_ID", "[secret]"] : [])];
                assert.deepEqual(env, [...Object.keys(relayEnvironment(topology, relay)), ...deployTime].sort());
                assert.equal(c.inputs.restart, "unless-stopped");
                assert.deepEqual(c.inputs.ports, [
                    { internal: 25, external: 25 },
                    { internal: RELAY_STATUS_PORT, external: RELAY_STATUS_PORT },
                ]);
                assert.ok((c.inputs.envs as string[]).includes(`STATUS_PORT=${RELAY_STATUS_PORT}`), "the image must listen where the container publishes");
                assert.equal((c.inputs.volumes as { containerPath: string }[])[0].containerPath, "/var/spool/postfix");
            }
        });

        it("watches every MX host and site server on TCP 25 with an alarm in us-east-1 mailed to the alert address", () => {
            const checks = byType(evaluated(), "aws:route53/healthCheck:HealthCheck").filter((c) => c.inputs.type === "TCP");
            const siteAddresses = siteServers().map((server) => evaluated().dns.find((r) => r.name === server.hostname && r.type === "A")!.content);
            // Each MX host at its address; a partner's MX whose addresses the config does not give, at its name.
            const targets = [...(evaluated().outputs.mxTable as { host: string; address: string | null }[]).map((m) => m.address ?? m.host), ...siteAddresses].sort();
            assert.deepEqual(checks.map((c) => c.inputs.ipAddress ?? c.inputs.fqdn).sort(), targets);
            assert.ok(checks.every((c) => c.inputs.port === 25));
            const alarms = byType(evaluated(), "aws:cloudwatch/metricAlarm:MetricAlarm");
            assert.equal(alarms.filter((a) => /does not accept TCP connections on port 25/.test(String(a.inputs.alarmDescription))).length, checks.length);
            const subscription = byType(evaluated(), "aws:sns/topicSubscription:TopicSubscription")[0];
            assert.equal(subscription.inputs.endpoint, topology.alerts.email);
            const alertProvider = byType(evaluated(), "pulumi:providers:aws").find((p) => p.inputs.region === "us-east-1");
            assert.ok(alertProvider, "no us-east-1 provider for the alarms");
        });

        it("watches every relay's queue health over HTTP, alarmed through the same topic, its port open on EC2", () => {
            const checks = byType(evaluated(), "aws:route53/healthCheck:HealthCheck").filter((c) => c.inputs.type !== "TCP");
            const mxTable = evaluated().outputs.mxTable as { host: string; address: string; role: string }[];
            const relays = mxTable.filter((m) => m.role === "relay");
            assert.equal(checks.length, relays.length);
            const topic = byType(evaluated(), "aws:sns/topic:Topic")[0];
            const alarms = byType(evaluated(), "aws:cloudwatch/metricAlarm:MetricAlarm");
            for (const relay of relays) {
                // Named by what it is, the relay's queue check, never by its content.
                const check = checks.find((c) => c.name === `mail-alerts-${relay.host.replace(/\./g, "-")}-queue`);
                assert.ok(check, `no queue check for ${relay.host}: ${checks.map((c) => c.name).join(", ")}`);
                assert.deepEqual(
                    { type: check.inputs.type, ipAddress: check.inputs.ipAddress, port: check.inputs.port, resourcePath: check.inputs.resourcePath, searchString: check.inputs.searchString },
                    { type: "HTTP_STR_MATCH", ipAddress: relay.address, port: RELAY_STATUS_PORT, resourcePath: RELAY_STATUS_PATH, searchString: QUEUE_HEALTHY_TEXT },
                );
                assert.equal(check.provider, byType(evaluated(), "pulumi:providers:aws").find((p) => p.inputs.region === "us-east-1")?.name);
                const alarm = alarms.find((a) => (a.inputs.dimensions as { HealthCheckId?: string }).HealthCheckId === check.id);
                assert.ok(alarm, `no alarm on ${check.name}`);
                assert.equal(alarm.name, `${check.name}-stuck`);
                assert.match(String(alarm.inputs.alarmDescription), new RegExp(`^${relay.host.replace(/\./g, "\\.")} holds mail it cannot deliver, or its queue disk is full`));
                assert.deepEqual(alarm.inputs.alarmActions, [topic.id]);
                assert.deepEqual(alarm.inputs.okActions, [topic.id]);
                assert.equal(alarm.inputs.treatMissingData, "breaching", "a relay whose status no checker reaches is not fine");
            }
            // EC2 relays open the status port (Docker hosts: README's manual steps); the primary does not.
            const rules = byType(evaluated(), "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").filter((r) => r.inputs.fromPort === RELAY_STATUS_PORT);
            const ec2Relays = topology.relays.filter((r) => r.placement.kind === "aws").map((r) => r.hostname.replace(/\./g, "-"));
            assert.deepEqual([...new Set(rules.map((r) => r.name.replace(/-fw-in-\d+-ipv[46]$/, "")))].sort(), ec2Relays.map((h) => `mail-${h}`).sort());
        });

        it("follows the component conventions: type tokens, and every resource under the top component", () => {
            for (const r of evaluated().resources.filter((r) => r.type.startsWith("mailcontinuity:"))) {
                assert.match(r.type, /^mailcontinuity:[a-z]+:[A-Z][A-Za-z]+$/);
            }
            const orphans = evaluated().resources.filter((r) => r.parent === null).map((r) => `${r.type} ${r.name}`);
            assert.deepEqual(orphans, ["mailcontinuity:index:MailContinuity mail"]);
        });

        it("prints a stable plan: two runs are byte-identical", () => {
            const again = runPlan(["--stack", stack, "--json"]);
            assert.equal(again.stdout, run.stdout);
        });
    });
}

describe("plan command", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    it("refuses a bad config with every problem and exit status 1, declaring nothing", () => {
        const dir = mkdtempSync(join(tmpdir(), "plan-"));
        dirs.push(dir);
        const bad = rawTopology("prod") as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
        bad.relays[1].priority = 20;
        bad.primary.placement.adminSshCidr = "0.0.0.0/0";
        const file = join(dir, "Pulumi.bad.yaml");
        writeFileSync(file, dump({ config: { "mailcontinuity:topology": bad } }));
        const run = runPlan(["--stack", "bad", "--config", file, "--json"]);
        assert.equal(run.status, 1);
        assert.equal(run.stdout, "");
        assert.match(run.stderr, /topology\.relays\[1\]\.priority: priority 20 is already used/);
        assert.match(run.stderr, /topology\.primary\.placement\.adminSshCidr: 0\.0\.0\.0\/0 opens SSH/);
        assert.doesNotMatch(run.stderr, /at .*\.ts:\d+/, "a stack trace leaked into the error");
    });

    it("plans a stack whose config holds encrypted secrets, without printing them", () => {
        const dir = mkdtempSync(join(tmpdir(), "plan-"));
        dirs.push(dir);
        const file = join(dir, "Pulumi.withsecret.yaml");
        const secure = "v1:c2VjcmV0LXRva2VuLXRoYXQtbXVzdC1ub3QtbGVhaw==";
        writeFileSync(file, dump({ config: { "cloudflare:apiToken": { secure }, "mailcontinuity:topology": rawTopology("prod") } }));
        const run = runPlan(["--stack", "withsecret", "--config", file, "--json"]);
        assert.equal(run.status, 0, run.stderr);
        assert.ok(!run.stdout.includes(secure) && !run.stderr.includes(secure), "the encrypted value leaked into the plan");
        assert.ok(run.plan!.outputs.hostAddresses, "hostAddresses output missing");
    });

    it("names the stacks it knows when asked for one that does not exist", () => {
        const run = runPlan(["--stack", "nope"]);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /stack configs in .*: .*prod/);
    });

    it("shows the resource tree and a DNS table per provider in text mode", () => {
        const run = runPlan(["--stack", "prod"]);
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /^ {2}\+ mailcontinuity:index:MailContinuity {2}mail$/m);
        assert.match(run.stdout, /^DNS at cloudflare/m);
        assert.match(run.stdout, /^DNS at route53/m);
        assert.match(run.stdout, /^ {2}example\.com +MX +300 +20 +mx2\.example\.com$/m);
    });

    it("refuses a program that would declare one resource name twice", () => {
        const dir = mkdtempSync(join(tmpdir(), "plan-"));
        dirs.push(dir);
        const twin = rawTopology("prod") as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
        // mx2.example.com and mx2-example.com both become the resource name mail-mx2-example-com.
        twin.relays[1] = { ...twin.relays[1], hostname: "mx2-example.com" };
        twin.overrides = { allowMxOutsideDomain: true };
        const file = join(dir, "Pulumi.twin.yaml");
        writeFileSync(file, dump({ config: { "mailcontinuity:topology": twin } }));
        const run = runPlan(["--stack", "twin", "--config", file]);
        assert.equal(run.status, 1, run.stdout.slice(0, 500));
        assert.match(run.stderr, /resource names are not unique/);
    });

    it("shows secret inputs as [secret], wherever they sit", () => {
        const secret = { [specialSigKey]: specialSecretSig, value: "hunter2" };
        const shown = revealSecrets({ token: secret, nested: [{ key: secret }, "plain"] }) as { token: string; nested: [{ key: string }, string] };
        assert.ok(!JSON.stringify(shown).includes("hunter2"));
        assert.match(shown.token, /^\[secret [0-9a-f]{12}\]$/);
        assert.equal(shown.nested[0].key, shown.token, "the same secret shows the same digest");
        assert.equal(shown.nested[1], "plain");
        const other = revealSecrets({ [specialSigKey]: specialSecretSig, value: "hunter3" });
        assert.notEqual(other, shown.token, "a changed secret must show as changed");
        assert.ok(String(other).startsWith(SECRET.slice(0, -1)));
    });

    it("detects resource names used twice, which the mock monitor lets through", () => {
        const reg = (name: string): Registration => ({ type: "t", name, urn: `urn:pulumi:s::p::t::${name}`, parentUrn: "", providerRef: "", custom: true, inputs: {}, id: "", options: { protect: false, retainOnDelete: false, deleteBeforeReplace: false, ignoreChanges: [], replaceOnChanges: [], aliases: [] } });
        assert.deepEqual(duplicateUrns([reg("a"), reg("b"), reg("a")]), ["urn:pulumi:s::p::t::a"]);
        assert.deepEqual(duplicateUrns([reg("a"), reg("b")]), []);
    });
});
