// The DKIM keys the primary signs with: one RSA key per published selector (lib/topology/tls.ts), named
// by its selector, so a rotation (a new selector, the old one retired) adds a key and replaces none.
// A key lives only in the stack's state (a secret there); its public half is published at every DNS
// provider as `<selector>._domainkey.<domain>`.
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { Topology } from "../lib/topology/schema";
import { publishedDkimSelectors } from "../lib/topology/tls";
import { dkimRecordValue } from "../lib/render/dkim";

/** RFC 8301: at least 1024 bits, 2048 recommended; 2048 still fits two DNS strings (about 410 bytes). */
const DKIM_RSA_BITS = 2048;

export class DkimKeys extends pulumi.ComponentResource {
    /** The selector the primary signs with. */
    readonly signingSelector: string;
    /** Its private key (PEM, secret), for the primary's apply step. */
    readonly signingKeyPem: pulumi.Output<string>;
    /** selector -> the TXT value that publishes its public key. */
    readonly records: pulumi.Output<Record<string, string>>;
    private readonly keys = new Map<string, tls.PrivateKey>();

    constructor(name: string, args: { topology: Topology }, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:dkim:DkimKeys", name, {}, opts);
        const selectors = publishedDkimSelectors(args.topology);
        if (selectors.length === 0) throw new Error("DkimKeys needs a topology with a dkim section");
        for (const selector of selectors) {
            // Algorithm and size never change, so the provider never replaces a key (both force a new one).
            this.keys.set(selector, new tls.PrivateKey(`${name}-${selector}`, { algorithm: "RSA", rsaBits: DKIM_RSA_BITS }, { parent: this }));
        }
        this.signingSelector = selectors[0];
        this.signingKeyPem = pulumi.secret(this.keys.get(this.signingSelector)!.privateKeyPem);
        this.records = pulumi.all(selectors.map((s) => this.record(s).apply((value): [string, string] => [s, value]))).apply((entries) => Object.fromEntries(entries));
        this.registerOutputs({ signingSelector: this.signingSelector, records: this.records });
    }

    /** `v=DKIM1; k=rsa; p=...` for a published selector. */
    record(selector: string): pulumi.Output<string> {
        const key = this.keys.get(selector);
        if (key === undefined) throw new Error(`no DKIM key for selector ${selector}`);
        return key.publicKeyPem.apply(dkimRecordValue);
    }
}
