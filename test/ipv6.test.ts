// IPv6 on every MX host: AAAA records at both providers, port 25 open on IPv6, Postfix on both families
// (relay and primary), SPF covering IPv6 senders, the checker's expectation, the lab's addresses. What
// needs root is in test/renderers.test.ts (the relay for real, without IPv6 too); the drill's
// `ipv6-broken` scenario (test/lab.test.ts) shows it all with the real programs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { spf } from "mailauth/lib/spf";
import { parseTopology } from "../lib/topology/validate";
import { canonicalIpv6, isPublicIpv6, notGlobalUnicast } from "../lib/topology/ipv6";
import { ipv6SubnetProblem } from "../lib/topology/ec2";
import { hasIpv6 } from "../lib/topology/placement";
import { buildRecordSet } from "../lib/render/records";
import { groupRecordSets } from "../lib/render/route53";
import { cloudflareRecordName, route53SetName } from "../lib/render/dns-identity";
import { renderPrimaryPostfix } from "../lib/render/primary-postfix";
import { relayEnvironment } from "../lib/render/relay-env";
import { buildExpectation } from "../lib/check/expectation";
import { normaliseValue } from "../lib/check/normalise";
import { isDocumentationIpv6, labIpv6Of } from "../lab/net";
import { renderZoneFile } from "../lab/zone";
import type { Plan, PlannedResource } from "../lib/plan/report";
import { ROOT, rawTopology, runPlanAsync } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const prod = parseTopology(rawTopology("prod"));
const lab = parseTopology(rawTopology("lab"));
const us = parseTopology(rawTopology("us"));
const v4 = (h: string) => ({ "mail.example.com": "192.0.2.10", "mx2.example.com": "198.51.100.20", "mx3.example.com": "203.0.113.30" })[h] ?? "192.0.2.99";
/** What a deployment knows of its EC2 hosts' IPv6 addresses. */
const deployed6: Record<string, string> = { "mail.example.com": "2001:db8:ec2::10", "mx3.example.com": "2001:db8:ec2::30" };

describe("IPv6 addresses in the topology", () => {
    it("knows global unicast from everything else, and the documentation range from the Internet's", () => {
        assert.equal(notGlobalUnicast("2a01:4f9:c010::20"), undefined);
        assert.equal(notGlobalUnicast("2001:db8::20"), undefined, "documentation: global unicast in form (the schema lets it through)");
        assert.match(notGlobalUnicast("fe80::1")!, /link-local/);
        assert.match(notGlobalUnicast("fd00::1")!, /unique local/);
        assert.match(notGlobalUnicast("::1")!, /loopback/);
        assert.match(notGlobalUnicast("ff02::1")!, /multicast/);
        assert.match(notGlobalUnicast("::")!, /unspecified/);
        assert.match(notGlobalUnicast("100::1")!, /outside global unicast/);
        assert.ok(!isPublicIpv6("2001:db8::20") && !isPublicIpv6("3fff::1") && isPublicIpv6("2a01:4f9:c010::20"));
        assert.equal(canonicalIpv6("2001:DB8:0000:0:0::0020"), "2001:db8::20");
        assert.equal(canonicalIpv6("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1", "the longest run of zeros is the one compressed");
    });

    it("gives a host IPv6 with `ipv6: true` on EC2 and with `address6` elsewhere", () => {
        assert.deepEqual(
            [prod.primary, ...prod.relays].map((h) => [h.hostname, hasIpv6(h.placement)]),
            [
                ["mail.example.com", true],
                ["mx2.example.com", true],
                ["mx3.example.com", true],
            ],
        );
        assert.ok([us.primary, ...us.relays].every((h) => !hasIpv6(h.placement)), "us has none: nothing of this reaches it");
    });

    it("refuses an EC2 host's subnet without an IPv6 block, naming the default subnet and the fix", () => {
        assert.equal(ipv6SubnetProblem("mx3.example.com", { id: "subnet-1", ipv6CidrBlock: "2600:1f16:1::/64" }, { region: "us-east-2" }), undefined);
        assert.match(ipv6SubnetProblem("mx3.example.com", { id: "subnet-1", ipv6CidrBlock: "" }, { region: "us-east-2" })!, /^mx3\.example\.com: ipv6 needs a subnet with an IPv6 block, and us-east-2a's default subnet subnet-1 has none: .*route ::\/0 to the internet gateway \(README: IPv6\)/);
        assert.match(ipv6SubnetProblem("mx3.example.com", { id: "subnet-2" }, { region: "us-east-2", subnetId: "subnet-2" })!, /and subnet subnet-2 has none/);
    });
});

describe("AAAA records", () => {
    const records = buildRecordSet(prod, v4, { ipv6AddressOf: (h) => deployed6[h] });

    it("give every MX host with IPv6 an AAAA beside its A: a Docker host's address6, an EC2 host's deployed address", () => {
        const aaaa = Object.fromEntries(records.filter((r) => r.type === "AAAA").map((r) => [r.name, r.content]));
        assert.deepEqual(aaaa, { "mail.example.com": "2001:db8:ec2::10", "mx2.example.com": "2001:db8:100::20", "mx3.example.com": "2001:db8:ec2::30" });
        // The primary's name is the one users' mail programs use: the same short TTL as its A record.
        const ttl = (type: string) => records.find((r) => r.name === "mail.example.com" && r.type === type)!.ttl;
        assert.equal(ttl("AAAA"), ttl("A"));
        assert.ok(records.filter((r) => r.type === "AAAA").every((r) => r.role === "address" && r.zone === "example.com"));
    });

    it("leave out what only a deployment knows when it is not given, and a host without IPv6", () => {
        const offline = buildRecordSet(prod, v4).filter((r) => r.type === "AAAA");
        assert.deepEqual(offline.map((r) => [r.name, r.content]), [["mx2.example.com", "2001:db8:100::20"]]);
        assert.equal(buildRecordSet(us, () => "192.0.2.1").filter((r) => r.type === "AAAA").length, 0);
    });

    it("have resource names of their own at both providers, beside the A records' (named by type)", () => {
        const cf = records.map((r) => cloudflareRecordName("mail-dns-example-com", r));
        assert.equal(new Set(cf).size, cf.length, "two Cloudflare records share a name");
        assert.ok(cf.includes("mail-dns-example-com-cf-mx2-example-com-aaaa") && cf.includes("mail-dns-example-com-cf-mx2-example-com-a"));
        const sets = groupRecordSets(records);
        const r53 = sets.map((s) => route53SetName("mail-dns-example-com", s));
        assert.equal(new Set(r53).size, r53.length, "two Route53 sets share a name");
        assert.deepEqual(sets.find((s) => s.name === "mx3.example.com" && s.type === "AAAA")!.records.map((r) => r.content), ["2001:db8:ec2::30"]);
    });

    it("reach the lab's zone files in the form answers come back in", () => {
        const zone = renderZoneFile("example.com", buildRecordSet(lab, v4), [{ hostname: "ns1.example.com", address: "192.0.2.53" }]);
        assert.match(zone, /^mail\.example\.com\. 300 IN AAAA 2001:db8:192:2::10$/m);
        assert.match(zone, /^mx3\.example\.com\. 300 IN AAAA 2001:db8:203:113::30$/m);
        assert.doesNotMatch(zone, /^east\.example\.com\. \d+ IN AAAA/m, "a site server without address6 gets none");
    });
});

describe("SPF covers IPv6 senders without a new record (RFC 7208 5.3, 5.4)", () => {
    // What the nameservers answer for the prod record set, deployed.
    const answers: Record<string, Record<string, unknown>> = {
        "example.com": { TXT: [["v=spf1 mx ~all"]], MX: [10, 20, 30].map((priority, i) => ({ priority, exchange: ["mail.example.com", "mx2.example.com", "mx3.example.com"][i] })) },
        "mx2.example.com": { A: ["198.51.100.20"], AAAA: ["2001:db8:100::20"], TXT: [["v=spf1 a -all"]] },
        "mail.example.com": { A: ["192.0.2.10"], AAAA: ["2001:db8:ec2::10"], TXT: [["v=spf1 a -all"]] },
        "mx3.example.com": { A: ["203.0.113.30"], AAAA: ["2001:db8:ec2::30"], TXT: [["v=spf1 a -all"]] },
    };
    const resolver = async (name: string, type: string) => {
        const found = answers[name.toLowerCase().replace(/\.$/, "")]?.[type];
        if (found === undefined) throw Object.assign(new Error(`ENODATA ${name}`), { code: "ENODATA" });
        return found;
    };
    const check = async (ip: string, sender: string, helo: string) => (await spf({ ip, sender, helo, mta: "test", resolver: resolver as never })).status.result;

    it("`v=spf1 mx ~all` passes each MX host's IPv6 address (the mx mechanism asks AAAA for an IPv6 sender)", async () => {
        for (const ip of ["2001:db8:100::20", "2001:db8:ec2::10", "2001:db8:ec2::30", "198.51.100.20"]) assert.equal(await check(ip, "postmaster@example.com", "mx2.example.com"), "pass", ip);
        assert.equal(await check("2001:db8:bad::1", "postmaster@example.com", "mx2.example.com"), "softfail");
    });

    it("a relay's bounce (empty sender: its HELO name's `v=spf1 a -all`) passes from its IPv6 address, and only from it", async () => {
        assert.equal(await check("2001:db8:100::20", "", "mx2.example.com"), "pass");
        assert.equal(await check("2001:db8:ec2::30", "", "mx2.example.com"), "fail");
    });
});

describe("Postfix on both families", () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    it("the primary listens on both, sends over IPv4 first, and trusts a relay's IPv6 address as its IPv4 one", () => {
        const cf = new Map(renderPrimaryPostfix(prod, { relayAddresses: ["198.51.100.20", "2001:db8:100::20"] }).mainCf);
        assert.equal(cf.get("inet_protocols"), "all");
        assert.equal(cf.get("smtp_address_preference"), "ipv4", "its IPv6 address has no PTR on EC2");
        const config = renderPrimaryPostfix(prod, { relayAddresses: ["198.51.100.20", "2001:db8:100::20"] });
        assert.equal(config.tables["relay_clients.cidr"], "198.51.100.20/32\tOK\n2001:db8:100::20/128\tOK\n");
        const ipv4Only = new Map(renderPrimaryPostfix(us, { relayAddresses: [] }).mainCf);
        assert.equal(ipv4Only.get("inet_protocols"), "ipv4");
        assert.equal(ipv4Only.has("smtp_address_preference"), false);
    });

    it("a relay whose host has IPv6 runs Postfix on both families; one without keeps its environment", () => {
        assert.equal(relayEnvironment(prod, prod.relays[0]).INET_PROTOCOLS, "all");
        assert.equal(relayEnvironment(us, us.relays[0]).INET_PROTOCOLS, undefined);
    });

    it("the relay checks INET_PROTOCOLS and an IPv6 LISTEN_ADDRESS", () => {
        const dir = mkdtempSync(join(tmpdir(), "relay-ipv6-env-"));
        dirs.push(dir);
        writeFileSync(join(dir, "recipients"), "alice@example.com\n");
        const base = { PATH: process.env.PATH ?? "", RELAY_DOMAINS: "example.com", RELAY_HOSTNAME: "mx2.example.com", RELAY_RECIPIENTS: join(dir, "recipients") };
        const checkEnv = (env: Record<string, string>) => spawnSync("sh", [join(ROOT, "relay-image", "entrypoint.sh"), "check-env"], { env: { ...base, ...env }, encoding: "utf8" });
        assert.match(checkEnv({ INET_PROTOCOLS: "ipv6" }).stderr, /INET_PROTOCOLS: 'ipv6' must be ipv4 or all/);
        assert.match(checkEnv({ LISTEN_ADDRESS: "2001:db8:198:100::20" }).stderr, /is an IPv6 address; set INET_PROTOCOLS=all to listen on it/);
        assert.equal(checkEnv({ LISTEN_ADDRESS: "2001:db8:198:100::20", INET_PROTOCOLS: "all" }).status, 0);
        assert.match(checkEnv({ LISTEN_ADDRESS: "mx2" }).stderr, /must be an IPv4 or IPv6 address, or 'all'/);
    });

});

describe("the offline plan with IPv6 (prod) and without (us)", () => {
    let plan: Plan;
    let usPlan: Plan;
    before(async () => {
        const [a, b] = await Promise.all([runPlanAsync(["--stack", "prod", "--json"]), runPlanAsync(["--stack", "us", "--json"])]);
        assert.equal(a.status, 0, a.stderr);
        assert.equal(b.status, 0, b.stderr);
        plan = JSON.parse(a.stdout) as Plan;
        usPlan = JSON.parse(b.stdout) as Plan;
    });
    const named = (p: Plan, name: string): PlannedResource => {
        const found = p.resources.find((r) => r.name === name);
        assert.ok(found, `${name} is not in the plan`);
        return found;
    };

    it("publishes the same AAAA records at Cloudflare and Route53", () => {
        const rows = (provider: string) => plan.dns.filter((d) => d.provider === provider && d.type === "AAAA").map((d) => `${d.name} ${d.ttl} ${d.content}`);
        assert.equal(rows("cloudflare").length, 3);
        assert.deepEqual(rows("cloudflare"), rows("route53"));
        const outputs = plan.outputs.hostAddresses6 as Record<string, string>;
        assert.deepEqual(Object.keys(outputs).sort(), ["mail.example.com", "mx2.example.com", "mx3.example.com"]);
        assert.ok(rows("route53").includes(`mail.example.com 300 ${outputs["mail.example.com"]}`));
        assert.equal(usPlan.dns.filter((d) => d.type === "AAAA").length, 0);
        assert.equal(usPlan.outputs.hostAddresses6, undefined);
    });

    it("opens port 25 to ::/0 where it opens it to 0.0.0.0/0, and lets the hosts send over IPv6", () => {
        for (const host of ["mail-mail-example-com", "mail-mx3-example-com"]) {
            const in4 = named(plan, `${host}-fw-in-25-ipv4`).inputs;
            const in6 = named(plan, `${host}-fw-in-25-ipv6`).inputs;
            assert.equal(in4.cidrIpv4, "0.0.0.0/0");
            assert.equal(in6.cidrIpv6, "::/0");
            assert.deepEqual([in6.fromPort, in6.toPort, in6.ipProtocol], [25, 25, "tcp"]);
            assert.equal(named(plan, `${host}-fw-out-all-ipv6`).inputs.cidrIpv6, "::/0");
            assert.equal(named(plan, `${host}-vm`).inputs.ipv6AddressCount, 1);
            assert.equal(named(usPlan, `${host.replace("example-com", "example-org")}-vm`).inputs.ipv6AddressCount, undefined);
        }
        assert.equal(usPlan.resources.some((r) => r.name.endsWith("-fw-out-all-ipv6")), false);
    });

    it("gives the relays INET_PROTOCOLS=all and the primary its relays' IPv6 addresses", () => {
        for (const relay of ["mail-mx2-example-com-relay", "mail-mx3-example-com-relay"]) assert.ok((named(plan, relay).inputs.envs as string[]).includes("INET_PROTOCOLS=all"), relay);
        const config = String(named(plan, "mail-mail-example-com-config").inputs.stdin);
        assert.match(config, /^2001:db8:100::20\/128\tOK$/m);
        assert.match(config, new RegExp(`^${(plan.outputs.hostAddresses6 as Record<string, string>)["mx3.example.com"]}/128\tOK$`, "m"));
        assert.match(config, /inet_protocols=all/);
    });

    it("makes the checker expect each AAAA: a configured one as it is, an EC2 host's from the stack outputs", () => {
        const offline = buildExpectation(plan);
        const aaaa = (e: ReturnType<typeof buildExpectation>, name: string) => e.rrsets.find((r) => r.type === "AAAA" && r.name === name)?.values;
        assert.deepEqual(aaaa(offline, "mx2.example.com"), ["2001:db8:100::20"]);
        assert.equal(aaaa(offline, "mail.example.com"), null, "only the deployment knows it: compared between the nameservers");
        assert.deepEqual(offline.addresses6, { "mail.example.com": null, "mx2.example.com": "2001:db8:100::20", "mx3.example.com": null });
        const deployed = buildExpectation(plan, { hostAddresses6: { "mail.example.com": "2001:DB8:EC2:0::10" } });
        assert.deepEqual(aaaa(deployed, "mail.example.com"), ["2001:db8:ec2::10"]);
        assert.equal(deployed.addresses6["mail.example.com"], "2001:db8:ec2::10");
        assert.equal(normaliseValue("AAAA", "2001:0DB8::0:20"), "2001:db8::20");
        assert.deepEqual(buildExpectation(usPlan).addresses6, {});
    });
});

describe("the lab's IPv6 addresses", () => {
    it("are the IPv4 addresses' twins in 2001:db8::/32, and nothing else", () => {
        assert.equal(labIpv6Of("192.0.2.10"), "2001:db8:192:2::10");
        assert.equal(labIpv6Of("203.0.113.100"), "2001:db8:203:113::100");
        assert.throws(() => labIpv6Of("10.0.0.1"), /outside the documentation ranges/);
        assert.ok(isDocumentationIpv6("2001:db8:198:100::20") && !isDocumentationIpv6("2001:db8::20") && !isDocumentationIpv6("fd00::1"));
        // Pulumi.lab.yaml's address6 are the same twins, so the namespaces get what the zones publish.
        for (const host of [lab.primary, ...lab.relays]) {
            const p = host.placement as Raw;
            assert.equal(p.address6, labIpv6Of(p.address), host.hostname);
        }
    });
});
