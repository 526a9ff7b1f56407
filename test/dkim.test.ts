// DKIM's pure parts: the published value, OpenDKIM's files, Postfix's milter settings, the key step.
// They run for real (opendkim -n, the apply steps as root) in renderers.test.ts, and end to end in the
// lab's `dkim` scenario.
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { parseTopology } from "../lib/topology/validate";
import { OPENDKIM_MILTER, OPENDKIM_PATHS, OVERSIGNED_HEADERS, SIGNED_HEADERS, dkimKeyPath, dkimRecordValue, renderOpenDkim, renderOpenDkimConf } from "../lib/render/dkim";
import { renderPrimaryPostfix } from "../lib/render/primary-postfix";
import { renderPrimaryCloudInit } from "../lib/render/cloud-init";
import { renderDkimKeyApply } from "../lib/render/primary-apply";
import { buildRecordSet } from "../lib/render/records";
import { renderZoneFile } from "../lab/zone";
import { rawTopology } from "./helpers";

const withDkim = (stack: string, dkim: Record<string, unknown>) => parseTopology({ ...rawTopology(stack), dkim });
/** Prod as it would be without DKIM (Pulumi.prod.yaml signs). */
const prod = parseTopology({ ...rawTopology("prod"), dkim: undefined });
const signing = withDkim("prod", { selector: "mc2026" });
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });

describe("DKIM record value", () => {
    it("publishes the SubjectPublicKeyInfo in base64 after v=DKIM1; k=rsa", () => {
        const value = dkimRecordValue(rsa.publicKey.export({ type: "spki", format: "pem" }).toString());
        const p = /^v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)$/.exec(value)?.[1];
        assert.ok(p !== undefined, value);
        assert.deepEqual(Buffer.from(p, "base64"), rsa.publicKey.export({ type: "spki", format: "der" }));
        // Longer than one DNS string: the providers and the lab's zone split it.
        assert.ok(value.length > 255 && value.length < 512, String(value.length));
    });

    it("gives the same value for a PKCS#1 public key", () => {
        const spki = dkimRecordValue(rsa.publicKey.export({ type: "spki", format: "pem" }).toString());
        assert.equal(dkimRecordValue(rsa.publicKey.export({ type: "pkcs1", format: "pem" }).toString()), spki);
    });

    it("refuses a private key, which must never reach a DNS record, and says which half to pass", () => {
        for (const type of ["pkcs1", "pkcs8"] as const) {
            assert.throws(() => dkimRecordValue(rsa.privateKey.export({ type, format: "pem" }).toString()), /expected the public key, got a (RSA )?PRIVATE KEY; publish the key's public half/);
        }
    });

    it("refuses what verifiers would not take: no PEM, a certificate, a non-RSA key, a short key", () => {
        assert.throws(() => dkimRecordValue("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"), /got no PEM block/);
        assert.throws(() => dkimRecordValue("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), /expected a PEM public key, got a CERTIFICATE/);
        const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ type: "spki", format: "pem" }).toString();
        assert.throws(() => dkimRecordValue(ec), /expected an RSA key \(k=rsa.*got ec/);
        const short = generateKeyPairSync("rsa", { modulusLength: 768 }).publicKey.export({ type: "spki", format: "pem" }).toString();
        assert.throws(() => dkimRecordValue(short), /768 bits; verifiers refuse fewer than 1024 \(RFC 8301\)/);
        assert.equal(createPublicKey(short).asymmetricKeyDetails?.modulusLength, 768);
    });

    it("is what the record set publishes per zone and selector, the retired ones too", () => {
        const us = withDkim("us", { selector: "mc2027", retiredSelectors: ["mc2026"] });
        const records = buildRecordSet(us, () => "192.0.2.1", { dkimRecord: (s) => `value-of-${s}` }).filter((r) => r.role === "dkim");
        assert.deepEqual(
            records.map((r) => [r.name, r.content]),
            [
                ["mc2027._domainkey.example.org", "value-of-mc2027"],
                ["mc2026._domainkey.example.org", "value-of-mc2026"],
                ["mc2027._domainkey.example.net", "value-of-mc2027"],
                ["mc2026._domainkey.example.net", "value-of-mc2026"],
            ],
        );
    });
});

describe("OpenDKIM configuration", () => {
    const files = renderOpenDkim(signing, { internalHosts: ["127.0.0.0/8"] })!;

    it("is absent without a dkim section", () => {
        assert.equal(renderOpenDkim(prod, { internalHosts: ["127.0.0.0/8"] }), undefined);
    });

    it("signs only, on the loopback port Postfix talks to, relaxed headers and simple body", () => {
        const setting = (name: string) => new RegExp(`^${name}\\s+(.*)$`, "m").exec(files.conf)?.[1];
        assert.equal(setting("Mode"), "s");
        assert.equal(setting("Socket"), "inet:8891@127.0.0.1");
        assert.equal(OPENDKIM_MILTER, "inet:127.0.0.1:8891");
        assert.equal(setting("Canonicalization"), "relaxed/simple");
        assert.equal(setting("UserID"), "opendkim");
        assert.equal(setting("KeyTable"), "file:/etc/opendkim/key.table");
        assert.equal(setting("SigningTable"), "refile:/etc/opendkim/signing.table");
        assert.equal(setting("InternalHosts"), "file:/etc/opendkim/internal-hosts");
        assert.equal(setting("PidFile"), OPENDKIM_PATHS.pidFile);
        assert.equal(setting("OversignHeaders"), OVERSIGNED_HEADERS.join(","));
    });

    it("oversigns From, and only fields it signs (OpenDKIM's oversigned-but-unsigned field fails every verifier)", () => {
        assert.ok(OVERSIGNED_HEADERS.includes("From"));
        const signed = new Set(SIGNED_HEADERS.map((h) => h.toLowerCase()));
        assert.deepEqual(OVERSIGNED_HEADERS.filter((h) => !signed.has(h.toLowerCase())), []);
    });

    it("signs every domain with the signing selector's key, one file per selector", () => {
        const us = withDkim("us", { selector: "mc2027", retiredSelectors: ["mc2026"] });
        const both = renderOpenDkim(us, { internalHosts: ["127.0.0.0/8"] })!;
        assert.equal(both.keyFile, "/etc/dkimkeys/mc2027.private");
        assert.equal(
            both.tables["/etc/opendkim/key.table"],
            "mc2027._domainkey.example.org example.org:mc2027:/etc/dkimkeys/mc2027.private\nmc2027._domainkey.example.net example.net:mc2027:/etc/dkimkeys/mc2027.private\n",
        );
        assert.equal(both.tables["/etc/opendkim/signing.table"], "*@example.org mc2027._domainkey.example.org\n*@example.net mc2027._domainkey.example.net\n");
        assert.doesNotMatch(Object.values(both.tables).join(""), /mc2026/, "a retired selector is published, never used to sign");
    });

    it("signs the mail of the host's own networks only: the relays' hand-overs are not internal", () => {
        assert.equal(files.tables["/etc/opendkim/internal-hosts"], "127.0.0.0/8\n");
    });

    it("changes nothing but the tables when the selector changes (a rotation)", () => {
        const rotated = renderOpenDkim(withDkim("prod", { selector: "mc2027", retiredSelectors: ["mc2026"] }), { internalHosts: ["127.0.0.0/8"] })!;
        assert.equal(rotated.conf, files.conf);
        assert.equal(renderOpenDkimConf(), files.conf);
        assert.notEqual(rotated.tables["/etc/opendkim/key.table"], files.tables["/etc/opendkim/key.table"]);
    });

    it("names a selector's key by the selector, and refuses one that is not a DNS label", () => {
        assert.equal(dkimKeyPath("mc2026"), "/etc/dkimkeys/mc2026.private");
        assert.equal(dkimKeyPath("mc2026", "/x"), "/x/mc2026.private");
        for (const bad of ["../etc", "MC", "a b", "-a", ""]) assert.throws(() => dkimKeyPath(bad), /not one DNS label/, bad);
    });
});

describe("the primary's milter settings", () => {
    const milterNames = ["smtpd_milters", "non_smtpd_milters", "milter_default_action"];

    it("hand mail submitted over SMTP and on the host to OpenDKIM, and accept it when the signer fails", () => {
        const config = renderPrimaryPostfix(signing, { relayAddresses: [] });
        const cf = new Map(config.mainCf);
        assert.equal(cf.get("smtpd_milters"), "inet:127.0.0.1:8891");
        assert.equal(cf.get("non_smtpd_milters"), "$smtpd_milters");
        assert.equal(cf.get("milter_default_action"), "accept");
        assert.deepEqual(config.removed.filter((k) => milterNames.includes(k)), []);
    });

    it("are removed when DKIM is turned off, so Postfix stops handing mail to a signer that may still run", () => {
        const config = renderPrimaryPostfix(prod, { relayAddresses: [] });
        assert.deepEqual(config.mainCf.filter(([k]) => milterNames.includes(k)), []);
        assert.deepEqual(config.removed.filter((k) => milterNames.includes(k)), milterNames);
    });
});

describe("DKIM and the primary's user data", () => {
    it("leaves the user data as it is: OpenDKIM arrives through the apply steps, an instance is never stopped for it", () => {
        assert.equal(renderPrimaryCloudInit(signing, { mailVolumeId: "vol-0abc123" }), renderPrimaryCloudInit(prod, { mailVolumeId: "vol-0abc123" }));
    });
});

describe("the DKIM key step", () => {
    const pem = rsa.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    const script = renderDkimKeyApply(signing, pem);

    it("writes the signing selector's key for opendkim only (0600), then renames it into place", () => {
        assert.ok(script.includes(pem.trim()), "the key is in the (secret) script");
        assert.match(script, /install_file '\/etc\/dkimkeys\/mc2026\.private\.mailcontinuity-staged' 0600 <</);
        assert.match(script, /^chown opendkim:opendkim '\/etc\/dkimkeys\/mc2026\.private\.mailcontinuity-staged'$/m);
        assert.match(script, /^mv -f '\/etc\/dkimkeys\/mc2026\.private\.mailcontinuity-staged' '\/etc\/dkimkeys\/mc2026\.private'$/m);
        assert.match(script, /systemctl restart opendkim/);
    });

    it("refuses what is not a private key, and a topology that does not sign", () => {
        assert.throws(() => renderDkimKeyApply(signing, rsa.publicKey.export({ type: "spki", format: "pem" }).toString()), /expected an unencrypted PEM private key/);
        assert.throws(() => renderDkimKeyApply(prod, pem), /the topology has no dkim section/);
    });
});

describe("the lab's zone file (NSD, standing in for both providers)", () => {
    const zone = (content: string) =>
        renderZoneFile("example.com", [{ zone: "example.com", name: "mc2026._domainkey.example.com", type: "TXT", ttl: 300, content }], [{ hostname: "ns1.example.com", address: "192.0.2.53" }])
            .split("\n")
            .find((l) => l.startsWith("mc2026._domainkey."))!;

    it("splits a DKIM key into character-strings of at most 255 bytes, which join to the value", () => {
        const value = dkimRecordValue(rsa.publicKey.export({ type: "spki", format: "pem" }).toString());
        const strings = [...zone(value).matchAll(/"([^"]*)"/g)].map((m) => m[1]);
        assert.deepEqual(strings.map((x) => x.length), [255, value.length - 255]);
        assert.equal(strings.join(""), value);
    });

    it("keeps a short value one string, escaping quotes and backslashes", () => {
        assert.match(zone('v=spf1 "a" \\ mx'), / IN TXT "v=spf1 \\"a\\" \\\\ mx"$/);
    });
});
