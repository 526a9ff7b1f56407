// The MTA-STS site and the DKIM keys as components under Pulumi's mocks (lib/plan/mocks.ts), with the
// DNS component that publishes their records: what each resource is given, at both providers.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { MOCK_RSA_PUBLIC_KEY_PEM, installPlanMocks, type Registration } from "../lib/plan/mocks";
import { parseTopology } from "../lib/topology/validate";
import type { Topology } from "../lib/topology/schema";
import { buildRecordSet, mtaStsPolicy, txtChunks } from "../lib/render/records";
import { dkimRecordValue } from "../lib/render/dkim";
import { cloudflareTxtContent, cloudflareTxtText } from "../lib/render/cloudflare";
import { route53TxtText } from "../lib/render/route53";
import { MTA_STS_CONTENT_TYPE, MTA_STS_POLICY_PATH, mtaStsBucketPolicy } from "../lib/render/mta-sts-site";
import { policyHostAddress } from "../lib/check/policy";
import type { Resolver } from "../lib/check/authoritative-resolver";
import { rawTopology } from "./helpers";

const CLOUDFLARE_RECORD = "cloudflare:index/dnsRecord:DnsRecord";
const ROUTE53_RECORD = "aws:route53/record:Record";

function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply((v) => resolve(v)));
}

function topologyWith(change: (t: Record<string, any>) => void): Topology { // eslint-disable-line @typescript-eslint/no-explicit-any
    const raw = rawTopology("prod");
    change(raw);
    return parseTopology(raw);
}

// One selector, then a rotation: the successor signs, the old one is still published.
const first = topologyWith((t) => ((t.dkim = { selector: "mc2026" }), (t.policy = { mtaSts: "testing" }), delete t.tls));
const rotated = topologyWith((t) => ((t.dkim = { selector: "mc2027", retiredSelectors: ["mc2026"] }), (t.policy = { mtaSts: "testing" }), delete t.tls));

let registrations: Registration[] = [];
let host = "";
let signingKeySecret = false;
let signingKeyPem = "";
let records: Record<string, string> = {};

before(async () => {
    registrations = await installPlanMocks("mailcontinuity", "components");
    // Imported once the mocks are in place, as the program is (scripts/plan.ts).
    const { MtaStsSite } = await import("../components/mta-sts-site");
    const { MailDns } = await import("../components/dns");
    const { DkimKeys } = await import("../components/dkim-keys");
    const provider = new aws.Provider("aws-us-east-1", { region: "us-east-1" });

    const keys = new DkimKeys("rotated-dkim", { topology: rotated });
    new DkimKeys("first-dkim", { topology: first });
    const site = new MtaStsSite("mta-sts", { topology: rotated, provider });
    const dns = new MailDns(
        "dns",
        {
            topology: rotated,
            records: buildRecordSet<pulumi.Input<string>>(rotated, () => "192.0.2.1", { dkimRecord: (s) => keys.record(s), mtaStsTarget: site.host }),
            awsProvider: provider,
            certificateValidationRecords: site.certificateValidationRecords,
            waitFor: { "mta-sts": [site.policyFile] },
        },
    );
    site.serve(dns.certificateValidationRecords);

    host = await valueOf(site.host);
    signingKeySecret = await pulumi.isSecret(keys.signingKeyPem);
    signingKeyPem = await valueOf(keys.signingKeyPem);
    records = await valueOf(keys.records);
    await pulumi.runtime.disconnect();
});

const named = (name: string) => registrations.find((r) => r.name === name);
const dnsAt = (type: string, recordName: string) => registrations.filter((r) => r.type === type && r.inputs.name === recordName);

describe("the MTA-STS site", () => {
    it("serves exactly mtaStsPolicy, as text/plain, at /.well-known/mta-sts.txt", () => {
        const file = named("mta-sts-policy-file")!;
        assert.equal(file.type, "aws:s3/bucketObjectv2:BucketObjectv2");
        assert.equal(file.inputs.content, mtaStsPolicy(rotated));
        assert.equal(Buffer.compare(Buffer.from(String(file.inputs.content)), Buffer.from(mtaStsPolicy(rotated))), 0, "byte for byte");
        assert.equal(file.inputs.contentType, MTA_STS_CONTENT_TYPE);
        assert.equal(`/${String(file.inputs.key)}`, MTA_STS_POLICY_PATH);
        // CloudFront never holds an old policy: the next fetch after a new id gets the new text.
        const cdn = named("mta-sts-cdn")!;
        assert.equal((cdn.inputs.defaultCacheBehavior as { cachePolicyId: string }).cachePolicyId, "4135ea2d-6df8-44a3-9df3-4b5a84be39ad");
        assert.equal((cdn.inputs.defaultCacheBehavior as { viewerProtocolPolicy: string }).viewerProtocolPolicy, "https-only");
        assert.deepEqual(cdn.inputs.aliases, ["mta-sts.example.com"]);
    });

    it("keeps the bucket private: only its own distribution may read, through origin access control", () => {
        const bucket = named("mta-sts-bucket")!;
        const block = named("mta-sts-bucket-private")!;
        assert.deepEqual([block.inputs.blockPublicAcls, block.inputs.blockPublicPolicy, block.inputs.ignorePublicAcls, block.inputs.restrictPublicBuckets], [true, true, true, true]);
        const policy = JSON.parse(String(named("mta-sts-bucket-policy")!.inputs.policy));
        const cdn = named("mta-sts-cdn")!;
        assert.deepEqual(policy, JSON.parse(mtaStsBucketPolicy(`arn:aws:s3:::${bucket.id}`, `arn:aws:cloudfront::123456789012:distribution/${cdn.id}`)));
        assert.equal((cdn.inputs.origins as { originAccessControlId: string }[])[0].originAccessControlId, named("mta-sts-origin-access")!.id);
        assert.equal(named("mta-sts-origin-access")!.inputs.signingBehavior, "always");
    });

    it("points mta-sts.<domain> at the distribution with the same CNAME at both providers", () => {
        assert.match(host, /^d[0-9a-f]+\.cloudfront\.net$/);
        for (const type of [CLOUDFLARE_RECORD, ROUTE53_RECORD]) {
            const cname = dnsAt(type, "mta-sts.example.com");
            assert.equal(cname.length, 1, type);
            assert.equal(cname[0].inputs.type, "CNAME");
            assert.deepEqual(type === CLOUDFLARE_RECORD ? [cname[0].inputs.content] : cname[0].inputs.records, [host]);
        }
        assert.equal(dnsAt(CLOUDFLARE_RECORD, "mta-sts.example.com")[0].inputs.proxied, false, "a proxied CNAME would answer with Cloudflare's own certificate");
    });

    it("publishes the certificate's validation CNAME at both providers, the one its validation names", () => {
        const cert = named("mta-sts-cert")!;
        assert.equal(cert.providerRef.includes("aws-us-east-1"), true, "CloudFront takes certificates only from us-east-1");
        const cf = named("dns-example-com-cf-mta-sts-example-com-acm-validation")!;
        const r53 = named("dns-example-com-r53-mta-sts-example-com-acm-validation")!;
        assert.match(String(cf.inputs.name), /^_[0-9a-f]{32}\.mta-sts\.example\.com$/, "without ACM's trailing dot");
        assert.equal(r53.inputs.name, cf.inputs.name);
        assert.match(String(cf.inputs.content), /\.acm-validations\.aws$/);
        assert.deepEqual(r53.inputs.records, [cf.inputs.content]);
        assert.deepEqual(named("mta-sts-cert-validation")!.inputs.validationRecordFqdns, [cf.inputs.name]);
        const cdn = named("mta-sts-cdn")!;
        assert.equal((cdn.inputs.viewerCertificate as { acmCertificateArn: string }).acmCertificateArn, cert.id);
    });
});

describe("the DKIM keys", () => {
    it("makes one RSA-2048 key per published selector, named by its selector, so a rotation only adds one", () => {
        const keys = registrations.filter((r) => r.type === "tls:index/privateKey:PrivateKey").map((r) => r.name).sort();
        assert.deepEqual(keys, ["first-dkim-mc2026", "rotated-dkim-mc2026", "rotated-dkim-mc2027"]);
        // The retired key is the same resource with the same inputs as before the rotation: no replacement.
        assert.deepEqual(named("rotated-dkim-mc2026")!.inputs, named("first-dkim-mc2026")!.inputs);
        assert.deepEqual(named("rotated-dkim-mc2027")!.inputs, { algorithm: "RSA", rsaBits: 2048 });
    });

    it("keeps the signing key secret", () => {
        assert.equal(signingKeySecret, true);
        assert.match(signingKeyPem, /-----BEGIN RSA PRIVATE KEY-----/);
    });

    it("publishes each selector's TXT at both providers: 255-byte strings for Route53, quoted strings for Cloudflare", () => {
        for (const selector of ["mc2027", "mc2026"]) {
            const name = `${selector}._domainkey.example.com`;
            const expected = records[selector];
            assert.match(expected, /^v=DKIM1; k=rsa; p=MIIB/);
            assert.ok(expected.length > 255, "a 2048-bit key does not fit one DNS string");
            const [cf] = dnsAt(CLOUDFLARE_RECORD, name);
            const [r53] = dnsAt(ROUTE53_RECORD, name);
            assert.equal(cf.inputs.content, cloudflareTxtContent(expected));
            assert.match(String(cf.inputs.content), /^"[^"]{255}" "[^"]+"$/);
            assert.equal(cloudflareTxtText(String(cf.inputs.content)), expected);
            const route53 = (r53.inputs.records as string[])[0];
            assert.deepEqual(route53.split('""'), txtChunks(expected));
            assert.equal(route53TxtText(route53), expected);
        }
        // The key's public half, as the DKIM renderer publishes it.
        assert.equal(records.mc2026, dkimRecordValue(MOCK_RSA_PUBLIC_KEY_PEM));
    });

    it("sends short TXT values exactly as before at both providers", () => {
        const [cf] = dnsAt(CLOUDFLARE_RECORD, "_dmarc.example.com");
        const [r53] = dnsAt(ROUTE53_RECORD, "_dmarc.example.com");
        assert.equal(cf.inputs.content, "v=DMARC1; p=none; rua=mailto:ops@example.com");
        assert.deepEqual(r53.inputs.records, ["v=DMARC1; p=none; rua=mailto:ops@example.com"]);
    });
});

describe("the checker finds the policy host through its CNAME", () => {
    it("follows mta-sts.<domain> to CloudFront's name before asking for an address", async () => {
        const asked: string[] = [];
        const resolver: Resolver = async (name, type) => {
            asked.push(`${type} ${name}`);
            if (type === "CNAME" && name === "mta-sts.example.com") return ["d123.cloudfront.net."];
            if (type === "A" && name === "d123.cloudfront.net") return ["192.0.2.80"];
            throw Object.assign(new Error("ENODATA"), { code: "ENODATA" });
        };
        assert.equal(await policyHostAddress("example.com", resolver), "192.0.2.80");
        assert.deepEqual(asked, ["CNAME mta-sts.example.com", "CNAME d123.cloudfront.net", "A d123.cloudfront.net"]);
    });

    it("asks for the address directly where there is no CNAME (a policy host of one's own)", async () => {
        const resolver: Resolver = async (name, type) => {
            if (type === "A" && name === "mta-sts.example.com") return ["192.0.2.81"];
            throw Object.assign(new Error("ENODATA"), { code: "ENODATA" });
        };
        assert.equal(await policyHostAddress("example.com", resolver), "192.0.2.81");
    });
});
