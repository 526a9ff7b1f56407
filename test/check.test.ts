// The live checker's pure parts: what it expects from the plan, how it compares answers, how it
// reports and what it prints since the last run. The checker against real servers is in the lab
// (scenarios check-healthy, check-ns-servfail, check-ns-down, check-drift in test/lab.test.ts).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as packet from "dns-packet";
import type { Plan } from "../lib/plan/report";
import { buildExpectation, recipientsToTry } from "../lib/check/expectation";
import { decodeAnswer, presentation } from "../lib/check/dns-query";
import { parseNameserverList } from "../lib/check/dns";
import { normaliseSet, sameSet } from "../lib/check/normalise";
import { changesSince, formatChanges, formatReport, summarise, type Finding } from "../lib/check/findings";
import { relayTestDomain, renewalOverdue } from "../lib/check/smtp";
import { parseTopology } from "../lib/topology/validate";
import { ROOT, rawTopology, runPlanAsync, stackNames } from "./helpers";

const plans: Record<string, Plan> = {};
before(async () => {
    for (const stack of ["prod", "lab"]) plans[stack] = (await runPlanAsync(["--stack", stack, "--json"])).plan!;
});

describe("the checker's expectation is the plan", () => {
    it("expects every record set the plan publishes, with the configured values", () => {
        const e = buildExpectation(plans.lab);
        const mx = e.rrsets.find((r) => r.name === "example.com" && r.type === "MX");
        assert.deepEqual(mx?.values, ["10 mail.example.com", "20 mx2.example.com", "30 mx3.example.com"]);
        assert.deepEqual(e.rrsets.find((r) => r.name === "mx3.example.com" && r.type === "A")?.values, ["203.0.113.30"]);
        assert.deepEqual(e.rrsets.find((r) => r.name === "_dmarc.example.com")?.values, ["v=DMARC1; p=none; rua=mailto:ops@example.com"]);
        assert.deepEqual(e.mxHosts.map((h) => [h.hostname, h.priority, h.role, h.address]), [
            ["mail.example.com", 10, "primary", "192.0.2.10"],
            ["mx2.example.com", 20, "relay", "198.51.100.20"],
            ["mx3.example.com", 30, "relay", "203.0.113.30"],
        ]);
        assert.deepEqual(e.siteServers.map((h) => [h.hostname, h.role, h.address]), [
            ["east.example.com", "site", "198.51.100.44"],
            ["west.example.com", "site", "203.0.113.45"],
        ]);
    });

    it("never takes a mock for a fact: Elastic IPs and provider nameservers come from stack outputs or are compared between nameservers", () => {
        const e = buildExpectation(plans.prod);
        const primary = e.mxHosts.find((h) => h.role === "primary")!;
        assert.equal(primary.address, null, "the primary's Elastic IP is not known offline");
        assert.equal(e.rrsets.find((r) => r.name === primary.hostname && r.type === "A")?.values, null);
        assert.equal(e.rrsets.find((r) => r.type === "NS" && r.name === "example.com")?.values, null);
        const docker = e.mxHosts.find((h) => h.hostname === "mx2.example.com")!;
        assert.equal(docker.address, "198.51.100.20", "a Docker relay's address is configured, so it is a fact");

        const deployed = buildExpectation(plans.prod, { hostAddresses: { "mail.example.com": "192.0.2.99" }, nameservers: { "example.com": ["Ada.NS.Cloudflare.com.", "ns-1.awsdns-1.com"] } });
        assert.equal(deployed.mxHosts.find((h) => h.role === "primary")!.address, "192.0.2.99");
        assert.deepEqual(deployed.rrsets.find((r) => r.type === "NS" && r.name === "example.com")?.values, ["ada.ns.cloudflare.com", "ns-1.awsdns-1.com"]);
    });

    it("takes the MTA-STS site's name, its certificate's validation records, DKIM keys and the challenge zone's nameservers from the outputs, never from the mocks", () => {
        const e = buildExpectation(plans.lab);
        const rrset = (name: string, type: string, of = e) => of.rrsets.find((r) => r.name === name && r.type === type);
        // Offline: present, compared between nameservers only.
        assert.equal(rrset("mta-sts.example.com", "CNAME")?.values, null);
        assert.equal(rrset("lab2026._domainkey.example.com", "TXT")?.values, null);
        // ACM chooses the validation record's name too: the mock's name is not asked for at all.
        assert.deepEqual(e.rrsets.filter((r) => r.type === "CNAME" && r.name !== "mta-sts.example.com" && !r.name.startsWith("_acme-challenge.")), []);
        const prod = buildExpectation(plans.prod);
        assert.equal(rrset("acme-challenge.example.com", "NS", prod)?.values, null, "the challenge zone's delegation is not the apex's nameservers");
        assert.deepEqual(rrset("_acme-challenge.mail.example.com", "CNAME", prod)?.values, ["mail-example-com.acme-challenge.example.com"], "a CNAME the config decides is a fact");

        const deployed = buildExpectation(plans.lab, {
            mtaStsHost: "D123.cloudfront.net.",
            mtaStsValidationRecords: [{ name: "_abc.mta-sts.example.com.", value: "_def.xyz.acm-validations.aws." }],
            dkimRecords: { lab2026: "v=DKIM1; k=rsa; p=MIIB" },
        });
        assert.deepEqual(rrset("mta-sts.example.com", "CNAME", deployed)?.values, ["d123.cloudfront.net"]);
        assert.deepEqual(rrset("_abc.mta-sts.example.com", "CNAME", deployed)?.values, ["_def.xyz.acm-validations.aws"]);
        assert.deepEqual(rrset("lab2026._domainkey.example.com", "TXT", deployed)?.values, ["v=DKIM1; k=rsa; p=MIIB"]);
        const delegated = buildExpectation(plans.prod, { acmeChallengeNameservers: ["NS-1.awsdns-01.org.", "ns-2.awsdns-02.net"], nameservers: { "example.com": ["ada.ns.cloudflare.com"] } });
        assert.deepEqual(rrset("acme-challenge.example.com", "NS", delegated)?.values, ["ns-1.awsdns-01.org", "ns-2.awsdns-02.net"]);
        assert.deepEqual(rrset("example.com", "NS", delegated)?.values, ["ada.ns.cloudflare.com"]);
    });

    it("tries a listed recipient and an unknown one, except where a whole domain is accepted", () => {
        const topology = parseTopology(rawTopology("lab"));
        assert.deepEqual(recipientsToTry(topology, "example.com"), { listed: "alice@example.com", refusesUnknown: true });
        const wildcard = parseTopology({ ...rawTopology("lab"), recipients: ["@example.com"] });
        assert.deepEqual(recipientsToTry(wildcard, "example.com"), { listed: "postmaster@example.com", refusesUnknown: false });
        assert.equal(relayTestDomain(["example.com"]), "example.net");
        assert.equal(relayTestDomain(["example.net", "example.com"]), "example.org");
    });
});

describe("comparing answers", () => {
    it("treats order, case, a trailing dot and TXT chunking as the same answer", () => {
        assert.ok(sameSet(normaliseSet("MX", ["20 MX2.Example.com.", "10 mail.example.com"]), ["10 mail.example.com", "20 mx2.example.com"]));
        assert.ok(!sameSet(normaliseSet("MX", ["10 mail.example.com"]), ["10 mail.example.com", "20 mx2.example.com"]));
        const txt = packet.decode(
            packet.encode({ type: "response", id: 1, flags: packet.AUTHORITATIVE_ANSWER, questions: [{ type: "TXT", name: "example.com" }], answers: [{ type: "TXT", name: "example.com", data: ["v=spf1 ", "mx ~all"] }] }),
        );
        assert.equal(presentation(txt.answers![0]), "v=spf1 mx ~all");
        assert.ok(txt.flag_aa);
    });

    it("takes the parent's referral as its answer for a delegated zone's NS (the ACME challenge zone), and nothing else's", () => {
        const referral = (owner: string) =>
            packet.encode({
                type: "response",
                id: 1,
                flags: 0,
                questions: [{ type: "NS", name: "acme-challenge.example.com" }],
                authorities: [{ type: "NS", name: owner, data: "ns-1.awsdns-01.org" }, { type: "NS", name: owner, data: "ns-2.awsdns-02.net" }],
            });
        assert.deepEqual(decodeAnswer(referral("acme-challenge.example.com"), "acme-challenge.example.com.", "NS"), { rcode: "NOERROR", authoritative: true, values: ["ns-1.awsdns-01.org", "ns-2.awsdns-02.net"] });
        // A referral to some other zone (a server that is not the parent's) stays a lame, empty answer.
        assert.deepEqual(decodeAnswer(referral("com"), "acme-challenge.example.com", "NS"), { rcode: "NOERROR", authoritative: false, values: [] });
    });

    it("reads --nameservers as addresses or name=address, and refuses names without an address", () => {
        assert.deepEqual(parseNameserverList("192.0.2.53, ns2=198.51.100.53"), [
            { name: "192.0.2.53", address: "192.0.2.53" },
            { name: "ns2", address: "198.51.100.53" },
        ]);
        assert.throws(() => parseNameserverList("ns1.example.com"), /not an IP address/);
    });
});

describe("certificate expiry", () => {
    const now = new Date("2026-11-26T00:00:00Z");
    it("says nothing while a certificate is fresh, warns once ACME's renewal is three days overdue, and is a problem in the last week", () => {
        assert.equal(renewalOverdue("Feb 20 00:00:00 2027 GMT", 30, now), undefined);
        assert.equal(renewalOverdue("Dec 24 00:00:00 2026 GMT", 30, now), undefined, "28 days left: renewal due, not yet overdue");
        assert.equal(renewalOverdue("Dec 20 00:00:00 2026 GMT", 30, now)?.severity, "warning");
        assert.equal(renewalOverdue("Dec 20 00:00:00 2026 GMT", undefined, now), undefined, "not ACME: someone else renews it, on their own schedule");
        assert.deepEqual(renewalOverdue("Dec  1 00:00:00 2026 GMT", undefined, now)?.severity, "problem");
        assert.equal(renewalOverdue("Dec  1 00:00:00 2026 GMT", 30, now)?.daysLeft, 5);
    });
});

describe("the report", () => {
    const problem: Finding = { area: "dns", subject: "example.com", where: "ns1.example.com 192.0.2.53", check: "answers", severity: "problem", detail: "SERVFAIL for MX example.com", meaning: "m", action: "a" };
    const ok: Finding = { area: "smtp", subject: "mx2.example.com (MX 20, relay)", where: "198.51.100.20", check: "relay test", severity: "ok", detail: "refused" };

    it("counts problems and warnings and prints failures with what they mean and what to do", () => {
        const report = summarise("lab", { "example.com": [{ name: "ns1.example.com", address: "192.0.2.53" }] }, [ok, problem], 1.234);
        assert.equal(report.problems, 1);
        assert.equal(report.seconds, 1.23);
        const text = formatReport(report);
        assert.match(text, /nameservers of example\.com: ns1\.example\.com \(192\.0\.2\.53\)/);
        assert.match(text, /PROBLEM +dns +answers +ns1\.example\.com 192\.0\.2\.53: SERVFAIL for MX example\.com\n +means: m\n +do: +a/);
        assert.match(text, /mx2\.example\.com \(MX 20, relay\)\n +ok +1 check passed/);
    });

    it("prints only what changed since the last run", () => {
        const last = summarise("lab", {}, [problem, ok], 1);
        const now = summarise("lab", {}, [{ ...problem, severity: "ok", detail: "answers" }, ok], 1);
        const changes = changesSince(last, now);
        assert.equal(changes.length, 1);
        assert.match(formatChanges(changes, now), /^changed +PROBLEM -> ok dns \| example\.com \| ns1\.example\.com 192\.0\.2\.53 \| answers: answers$/m);
        assert.match(formatChanges(changesSince(now, now), now), /^no change since the last run/);
    });
});

describe("npm run check", () => {
    it("exits 2 with the reason when it cannot run, and names the stacks", () => {
        const run = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/check.ts"), ...args], { encoding: "utf8", timeout: 60_000 });
        const noStack = run([]);
        assert.equal(noStack.status, 2);
        assert.ok(noStack.stderr.includes(`--stack is required (${stackNames().join(", ")})`), noStack.stderr);
        const unknownStack = run(["--stack", "nowhere"]);
        assert.equal(unknownStack.status, 2);
        assert.match(unknownStack.stderr, /the offline plan of stack nowhere failed/);
        assert.equal(run(["--stack", "lab", "--only", "dns,mail"]).status, 2);
    });
});
