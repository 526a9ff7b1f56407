import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTopology } from "../lib/topology/validate";
import { durationSeconds } from "../lib/topology/rules";
import { acmeChallengeZone, acmeEmail, relayToPrimaryTls } from "../lib/topology/tls";
import { problemsOf, rawTopology, stackNames } from "./helpers";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any


function mutated(change: (t: Raw) => void): Raw {
    const t = rawTopology("prod");
    change(t);
    return t;
}

describe("topology validation", () => {
    for (const stack of stackNames()) {
        it(`accepts the committed Pulumi.${stack}.yaml`, () => {
            assert.deepEqual(problemsOf(rawTopology(stack)), []);
        });
    }

    it("takes an IPv6 address in any spelling and keeps RFC 5952's; the documentation range passes (a real deployment refuses it)", () => {
        const t = parseTopology(mutated((t) => (t.relays[0].placement.address6 = "2001:DB8:0100:0:0::020")));
        assert.equal(t.relays[0].placement.kind === "docker" && t.relays[0].placement.address6, "2001:db8:100::20");
        const noIpv6 = parseTopology(mutated((t) => (delete t.primary.placement.ipv6, delete t.relays[0].placement.address6)));
        assert.equal(noIpv6.primary.placement.kind === "aws" && noIpv6.primary.placement.ipv6, false, "ipv6 is off unless asked for");
        assert.equal(noIpv6.relays[0].placement.kind === "docker" && noIpv6.relays[0].placement.address6, undefined);
    });

    it("fills in the documented defaults", () => {
        // prod sets policy (MTA-STS enforce, with tls.acme): the defaults show without it.
        const t = parseTopology(mutated((t) => (delete t.queueLifetime, delete t.policy)));
        assert.equal(t.queueLifetime, "7d");
        assert.equal(t.policy.mtaSts, "testing");
        assert.equal(t.dns.ttl, 300);
    });

    // [what is wrong, how to break the prod config, the path the message must name, words it must say]
    const badConfigs: [string, (t: Raw) => void, string, RegExp][] = [
        ["duplicate priority", (t) => (t.relays[1].priority = 20), "topology.relays[1].priority", /already used by relays\[0\]/],
        ["relay preferred over the primary", (t) => (t.relays[0].priority = 5), "topology.relays[0].priority", /preferred over the primary/],
        ["relay sharing the primary's priority", (t) => (t.relays[0].priority = 10), "topology.relays[0].priority", /already used by primary/],
        ["relay in the primary's region", (t) => (t.relays[1].placement.region = "eu-central-1"), "topology.relays[1].placement", /same failure domain as the primary/],
        [
            "two relays at one provider site",
            (t) => (t.relays[1] = { hostname: "mx3.example.com", priority: 30, placement: { ...t.relays[0].placement, address: "198.51.100.30" } }),
            "topology.relays[1].placement",
            /same failure domain as relays\[0\]/,
        ],
        [
            "every relay at the primary's provider",
            (t) => (t.relays[0].placement = { kind: "aws", region: "eu-west-1", adminSshCidr: "203.0.113.0/24", ami: "ami-0123456789abcdef0" }),
            "topology.relays",
            /at least one relay at another provider/,
        ],
        ["hostname without a domain", (t) => (t.relays[0].hostname = "mx2"), "topology.relays[0].hostname", /fully qualified/],
        ["hostname with a trailing dot", (t) => (t.primary.hostname = "mail.example.com."), "topology.primary.hostname", /no trailing dot/],
        ["MX host outside the domain", (t) => (t.relays[0].hostname = "mx2.example.net"), "topology.relays[0].hostname", /outside example\.com.*allowMxOutsideDomain/],
        ["queue lifetime under 5 days", (t) => (t.queueLifetime = "3d"), "topology.queueLifetime", /under 5 days.*allowShortQueueLifetime/],
        ["queue lifetime that is not a duration", (t) => (t.queueLifetime = "a week"), "topology.queueLifetime", /expected a duration/],
        ["SSH open to the world", (t) => (t.primary.placement.adminSshCidr = "0.0.0.0/0"), "topology.primary.placement.adminSshCidr", /opens SSH to the world/],
        [
            "relay SSH open to the world",
            (t) => (t.relays[1].placement.adminSshCidr = "0.0.0.0/1"),
            "topology.relays[1].placement.adminSshCidr",
            /opens SSH to the world/,
        ],
        ["one DNS provider", (t) => (t.dns.providers = [t.dns.providers[0]]), "topology.dns.providers", /at least two DNS providers/],
        ["the same DNS provider twice", (t) => (t.dns.providers[1] = t.dns.providers[0]), "topology.dns.providers[1].kind", /listed twice/],
        ["a domain without a Cloudflare zone", (t) => t.domains.push("example.net"), "topology.dns.providers[0].zoneIds", /no Cloudflare zone id for example\.net/],
        ["recipient outside the domains", (t) => t.recipients.push("eve@example.org"), "topology.recipients[4]", /not in example\.com/],
        ["no relays", (t) => (t.relays = []), "topology.relays", /at least one relay/],
        ["unknown placement kind", (t) => (t.relays[0].placement.kind = "gcp"), "topology.relays[0].placement.kind", /Expected 'docker' \| 'aws'/],
        ["docker host that is not ssh://", (t) => (t.relays[0].placement.host = "tcp://relay:2375"), "topology.relays[0].placement.host", /ssh:\/\//],
        ["misspelt key", (t) => (t.primary.placement.instancetype = "t3.small"), "topology.primary.placement", /instancetype/],
        ["bad alert address", (t) => (t.alerts.email = "ops"), "topology.alerts.email", /receives alerts/],
        ["two hosts with one name", (t) => (t.relays[1].hostname = "mx2.example.com"), "topology.relays[1].hostname", /listed twice/],
        ["bad region", (t) => (t.primary.placement.region = "Frankfurt"), "topology.primary.placement.region", /AWS region/],
        // IPv6: only global unicast (2000::/3), each other kind named.
        ["a link-local IPv6 address", (t) => (t.relays[0].placement.address6 = "fe80::1"), "topology.relays[0].placement.address6", /fe80::1 is a link-local address \(fe80::\/10\).*global unicast address \(2000::\/3\)/],
        ["a unique local IPv6 address", (t) => (t.relays[0].placement.address6 = "fd00::1"), "topology.relays[0].placement.address6", /fd00::1 is a unique local address \(fc00::\/7\)/],
        ["the IPv6 loopback", (t) => (t.relays[0].placement.address6 = "::1"), "topology.relays[0].placement.address6", /::1 is the loopback address/],
        ["a multicast IPv6 address", (t) => (t.relays[0].placement.address6 = "ff02::1"), "topology.relays[0].placement.address6", /ff02::1 is a multicast address \(ff00::\/8\)/],
        ["an IPv4-mapped IPv6 address", (t) => (t.relays[0].placement.address6 = "::ffff:198.51.100.20"), "topology.relays[0].placement.address6", /IPv4-mapped/],
        ["an IPv4 address as address6", (t) => (t.relays[0].placement.address6 = "198.51.100.20"), "topology.relays[0].placement.address6", /expected the host's public IPv6 address/],
        [
            "an external primary's link-local IPv6 address",
            (t) => (t.primary.placement = { kind: "external", address: "192.0.2.10", address6: "fe80::10", site: { provider: "own", city: "berlin" } }),
            "topology.primary.placement.address6",
            /link-local/,
        ],
        ["ipv6 that is not a boolean", (t) => (t.relays[1].placement.ipv6 = "yes"), "topology.relays[1].placement.ipv6", /boolean/],
        ["EC2 hosts and no admin key", (t) => (t.admin.sshKeys = []), "topology.admin.sshKeys", /mail\.example\.com, mx3\.example\.com run on EC2.*public key/],
        ["an admin key that is not a public key", (t) => (t.admin.sshKeys = ["-----BEGIN OPENSSH PRIVATE KEY-----"]), "topology.admin.sshKeys[0]", /OpenSSH public key/],
        ["an EC2 relay without an SSH source", (t) => delete t.relays[1].placement.adminSshCidr, "topology.relays[1].placement.adminSshCidr", /IPv4 CIDR/],
        ["a Docker host without its SSH user", (t) => (t.relays[0].placement.host = "ssh://relay-hel1.example.net"), "topology.relays[0].placement.host", /with its user/],
        ["an EC2 host without its AMI", (t) => delete t.primary.placement.ami, "topology.primary.placement.ami", /give the AMI id of Debian 12/],
        ["an AMI that is not an AMI id", (t) => (t.primary.placement.ami = "debian-12"), "topology.primary.placement.ami", /AMI id/],
        ["a subnet that is not a subnet id", (t) => (t.primary.placement.subnetId = "10.0.0.0/24"), "topology.primary.placement.subnetId", /subnet id/],
        ["an instance type that is not one", (t) => (t.primary.placement.instanceType = "small"), "topology.primary.placement.instanceType", /EC2 instance type/],
        ["a mailbox that is not a recipient", (t) => (t.mailboxes = ["carol@example.com"]), "topology.mailboxes[0]", /not in recipients/],
        ["a mailbox listed twice", (t) => (t.mailboxes = ["alice@example.com", "alice@example.com"]), "topology.mailboxes[1]", /listed twice/],
        [
            "DMARC reports to a domain that has not authorised them",
            (t) => (t.alerts.email = "ops@elsewhere.example.org"),
            "topology.alerts.email",
            /elsewhere\.example\.org.*_report\._dmarc.*dmarcReportsAuthorized/,
        ],
        ["a domain listed twice", (t) => t.domains.push("EXAMPLE.com"), "topology.domains[1]", /example\.com is listed twice/],
        ["DMARC reports address that is not one", (t) => (t.policy = { dmarcReports: "reports" }), "topology.policy.dmarcReports", /DMARC reports/],
        ["MTA-STS enforce with self-signed certificates", (t) => ((t.policy = { mtaSts: "enforce" }), delete t.tls), "topology.policy.mtaSts", /self-signed.*tls\.acme/],
        ["verified relay-to-primary TLS without ACME", (t) => (t.tls = { relayToPrimary: "verify" }), "topology.tls.relayToPrimary", /self-signed.*relays would hold every message/],
        ["an ACME CA over plain http", (t) => (t.tls = { acme: { directoryUrl: "http://ca.example.net/directory" } }), "topology.tls.acme.directoryUrl", /https:\/\//],
        ["a challenge zone outside the domains", (t) => (t.tls = { acme: { challengeZone: "acme.example.org" } }), "topology.tls.acme.challengeZone", /subdomain of one of the domains/],
        ["a DKIM selector that is not one DNS label", (t) => (t.dkim = { selector: "mail.2026" }), "topology.dkim.selector", /one DNS label/],
        ["the signing DKIM selector also retired", (t) => (t.dkim = { selector: "mc2", retiredSelectors: ["mc2"] }), "topology.dkim.retiredSelectors[0]", /signing selector/],
    ];

    for (const [what, change, path, words] of badConfigs) {
        it(`refuses ${what}, naming ${path}`, () => {
            const problems = problemsOf(mutated(change));
            const hit = problems.find((p) => p.startsWith(`${path}:`) && words.test(p));
            assert.ok(hit, `no problem at ${path} matching ${words}; got:\n${problems.join("\n")}`);
        });
    }

    it("accepts MTA-STS enforce once every MX gets ACME certificates, and then verifies the primary by default", () => {
        const t = parseTopology(mutated((t) => ((t.policy = { mtaSts: "enforce" }), (t.tls = { acme: {} }))));
        assert.equal(t.policy.mtaSts, "enforce");
        assert.equal(t.tls.acme?.directoryUrl, "https://acme-v02.api.letsencrypt.org/directory");
        assert.equal(t.tls.acme?.renewDaysBefore, 30);
        assert.equal(acmeChallengeZone(t), "acme-challenge.example.com");
        assert.equal(acmeEmail(t), t.alerts.email);
        assert.equal(relayToPrimaryTls(t), "verify");
        assert.equal(relayToPrimaryTls(parseTopology(mutated((t) => (delete t.tls, (t.policy = {}))))), "may");
    });

    it("reports every problem at once, shape and rules together", () => {
        const problems = problemsOf(
            mutated((t) => {
                t.alerts.email = "ops"; // shape
                t.relays[1].priority = 20; // rule
                t.queueLifetime = "1d"; // rule
                t.primary.placement.adminSshCidr = "0.0.0.0/0"; // rule
            }),
        );
        assert.equal(problems.length, 4, problems.join("\n"));
    });

    it("lets the overrides through, and only them", () => {
        assert.deepEqual(
            problemsOf(
                mutated((t) => {
                    t.queueLifetime = "2d";
                    t.relays[0].hostname = "backup-mx.example.net";
                    t.overrides = { allowShortQueueLifetime: true, allowMxOutsideDomain: true };
                }),
            ),
            [],
        );
    });

    it("reads Postfix durations", () => {
        assert.equal(durationSeconds("7d"), 604800);
        assert.equal(durationSeconds("120h"), 432000);
        assert.equal(durationSeconds("2w"), 1209600);
    });
});
