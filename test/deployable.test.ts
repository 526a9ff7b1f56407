// A real `pulumi up` refuses what can never work: reserved domains, documentation and private
// addresses, Cloudflare's sample zone id. The example stacks contain them on purpose and still plan.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CLOUDFLARE_SAMPLE_ZONE_ID, deploymentProblems, isPublicAddress, isReservedDomain } from "../lib/topology/deployable";
import { formatPath, parseTopology } from "../lib/topology/validate";
import { rawTopology, runPlan } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The prod example with a real-looking domain, addresses and zone id in place of the reserved ones. */
function ownDeployment(): Raw {
    const t = rawTopology("prod") as Raw;
    const json = JSON.stringify(t).replaceAll("example.com", "mailcontinuity.eu").replaceAll("relay-hel1.example.net", "relay-hel1.hosting.fi");
    const own = JSON.parse(json) as Raw;
    own.relays[0].placement.address = "95.216.10.20";
    own.relays[0].placement.address6 = "2a01:4f9:c010:1234::20";
    own.dns.providers[0].zoneIds = { "mailcontinuity.eu": "5b3c6e1f0a9d48e7b2c4f6a8d0e2b4c6" };
    return own;
}

describe("deployment guards", () => {
    it("lets a config with its own domain, public addresses and zone id through", () => {
        assert.deepEqual(deploymentProblems(parseTopology(ownDeployment())), []);
    });

    it("names every reserved or documentation value in the prod example, each with its path", () => {
        const found = deploymentProblems(parseTopology(rawTopology("prod"))).map((p) => `${formatPath(p.path)}: ${p.message}`);
        const expected: [string, RegExp][] = [
            ["topology.domains[0]", /example\.com is reserved \(RFC 2606\)/],
            ["topology.relays[0].placement.address", /198\.51\.100\.20 is a documentation, private or reserved address/],
            // IPv6's documentation range is refused the same way (the schema lets it through: it plans).
            ["topology.relays[0].placement.address6", /2001:db8:100::20 is a documentation, private or reserved address; the AAAA record needs its public address/],
            ["topology.relays[0].placement.host", /relay-hel1\.example\.net is a reserved name/],
            [`topology.dns.providers[0].zoneIds.example.com`, /sample id from Cloudflare's API documentation/],
            ["topology.alerts.email", /can never receive the alarms/],
        ];
        for (const [path, words] of expected) assert.ok(found.some((f) => f.startsWith(`${path}:`) && words.test(f)), `${path} ${words}\n${found.join("\n")}`);
        assert.equal(found.length, expected.length, found.join("\n"));
    });

    it("knows the reserved names and the unreachable address ranges", () => {
        for (const name of ["example.com", "mx.example.org", "corp.test", "a.example", "x.invalid", "localhost"]) assert.ok(isReservedDomain(name), name);
        for (const name of ["mailcontinuity.eu", "example-corp.com", "notexample.com"]) assert.ok(!isReservedDomain(name), name);
        for (const a of ["10.1.2.3", "172.20.0.1", "192.168.1.1", "100.64.0.1", "127.0.0.1", "169.254.1.1", "192.0.2.10", "198.51.100.20", "203.0.113.5", "198.18.0.1", "224.0.0.1"]) {
            assert.ok(!isPublicAddress(a), a);
        }
        for (const a of ["95.216.10.20", "8.8.8.8", "172.32.0.1", "100.128.0.1"]) assert.ok(isPublicAddress(a), a);
        // IPv6: documentation (2001:db8::/32, 3fff::/20), IETF protocol assignments (Teredo, benchmarking), 6to4,
        // and anything outside global unicast.
        for (const a of ["2001:db8::", "2001:db8:100::20", "3fff::1", "2001::1", "2001:2::1", "2002:c000:204::1", "fe80::1", "fd00::1", "::1", "ff02::1", "::ffff:8.8.8.8"]) {
            assert.ok(!isPublicAddress(a), a);
        }
        for (const a of ["2a01:4f9:c010:1234::20", "2600:1f18::25", "2001:4860:4860::8888"]) assert.ok(isPublicAddress(a), a);
        assert.equal(CLOUDFLARE_SAMPLE_ZONE_ID, rawTopology("prod").dns && (rawTopology("prod") as Raw).dns.providers[0].zoneIds["example.com"]);
    });

    it("refuses the documentation IPv6 range of an external primary as well", () => {
        const t = ownDeployment();
        t.primary.placement = { kind: "external", address: "95.216.10.10", address6: "2001:db8::10", site: { provider: "own", city: "berlin" } };
        delete t.primary.placement.snapshots;
        const found = deploymentProblems(parseTopology(t)).map((p) => `${formatPath(p.path)}: ${p.message}`);
        assert.deepEqual(found, ["topology.primary.placement.address6: 2001:db8::10 is a documentation, private or reserved address; the AAAA record needs its public address"]);
    });

    it("plan --strict refuses the prod example as a real deployment would, and the plain plan still works", () => {
        const strict = runPlan(["--stack", "prod", "--strict"]);
        assert.equal(strict.status, 1);
        assert.match(strict.stderr, /cannot be deployed as it is; it has 6 problems/);
        assert.match(strict.stderr, /topology\.relays\[0\]\.placement\.address6: 2001:db8:100::20 is a documentation/);
        assert.match(strict.stderr, /topology\.domains\[0\]: example\.com is reserved/);
        assert.equal(runPlan(["--stack", "prod", "--json"]).status, 0);
    });
});
