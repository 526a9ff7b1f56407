// The records issue 10 adds to the one record set: ACME's CNAMEs into the delegated challenge zone,
// the delegation itself, DKIM keys and the MTA-STS host; and how each provider is handed them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTopology } from "../lib/topology/validate";
import { buildRecordSet, txtChunks } from "../lib/render/records";
import { cloudflareRecordName, route53SetName } from "../lib/render/dns-identity";
import { groupRecordSets, route53Value } from "../lib/render/route53";
import { rawTopology } from "./helpers";

function topologyWith(change: (t: Record<string, any>) => void) { // eslint-disable-line @typescript-eslint/no-explicit-any
    const raw = rawTopology("prod");
    change(raw);
    return parseTopology(raw);
}

const withAcme = topologyWith((t) => {
    t.tls = { acme: { directoryUrl: "https://acme-staging-v02.api.letsencrypt.org/directory" } };
    t.dkim = { selector: "mc2027", retiredSelectors: ["mc2026"] };
});
const challengeNameservers = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.net", "ns-3.awsdns-03.com", "ns-4.awsdns-04.co.uk"];
const records = buildRecordSet(withAcme, () => "192.0.2.1", {
    challengeNameservers,
    dkimRecord: (selector) => `v=DKIM1; k=rsa; p=${selector.toUpperCase()}${"A".repeat(380)}`,
    mtaStsTarget: "d111111abcdef8.cloudfront.net",
});

describe("ACME DNS-01 records", () => {
    it("points _acme-challenge of every MX host at its own name in the challenge zone", () => {
        const cnames = records.filter((r) => r.role === "acme-challenge").map((r) => [r.name, r.content]);
        assert.deepEqual(cnames, [
            ["_acme-challenge.mail.example.com", "mail-example-com.acme-challenge.example.com"],
            ["_acme-challenge.mx2.example.com", "mx2-example-com.acme-challenge.example.com"],
            ["_acme-challenge.mx3.example.com", "mx3-example-com.acme-challenge.example.com"],
        ]);
    });

    it("delegates the challenge zone to its four Route53 nameservers, each a Cloudflare record of its own", () => {
        const delegation = records.filter((r) => r.role === "acme-delegation");
        assert.deepEqual(delegation.map((r) => [r.zone, r.name, r.type, r.content]), challengeNameservers.map((ns) => ["example.com", "acme-challenge.example.com", "NS", ns]));
        const names = delegation.map((r) => cloudflareRecordName("mail-dns-example-com", r));
        assert.equal(new Set(names).size, 4, `Cloudflare resource names must differ: ${names.join(", ")}`);
        const sets = groupRecordSets(delegation);
        assert.equal(sets.length, 1, "Route53 holds them as one set");
        assert.equal(route53SetName("mail-dns-example-com", sets[0]), "mail-dns-example-com-r53-acme-challenge-example-com-ns");
    });

    it("publishes nothing for ACME without tls.acme", () => {
        const plain = buildRecordSet(topologyWith((t) => (delete t.tls, delete t.policy)), () => "192.0.2.1", { challengeNameservers });
        assert.deepEqual(plain.filter((r) => r.role === "acme-challenge" || r.role === "acme-delegation"), []);
    });
});

describe("DKIM and MTA-STS host records", () => {
    it("publishes the signing and the retired selector's keys in every zone", () => {
        const dkim = records.filter((r) => r.role === "dkim").map((r) => r.name);
        assert.deepEqual(dkim, ["mc2027._domainkey.example.com", "mc2026._domainkey.example.com"]);
    });

    it("hands Route53 a long TXT value as 255-byte strings, and keeps short ones as they are", () => {
        const dkim = records.find((r) => r.name === "mc2027._domainkey.example.com")!;
        const value = String(route53Value(dkim));
        assert.deepEqual(value.split('""'), txtChunks(String(dkim.content)));
        assert.ok(value.split('""').every((chunk) => chunk.length <= 255));
        assert.equal(value.split('""').join(""), dkim.content);
        const spf = records.find((r) => r.role === "spf" && r.name === "example.com")!;
        assert.equal(route53Value(spf), "v=spf1 mx ~all");
    });

    it("points mta-sts.<domain> at the site serving the policy, unless MTA-STS is off", () => {
        assert.deepEqual(records.filter((r) => r.role === "mta-sts-host").map((r) => [r.name, r.type, r.content]), [["mta-sts.example.com", "CNAME", "d111111abcdef8.cloudfront.net"]]);
        const off = buildRecordSet(topologyWith((t) => ((t.policy = { mtaSts: "none" }), delete t.tls)), () => "192.0.2.1", { mtaStsTarget: "d111111abcdef8.cloudfront.net" });
        assert.deepEqual(off.filter((r) => r.role === "mta-sts-host"), []);
    });
});
