// The lab's DKIM keys, one per selector the topology publishes, made with openssl in the lab's directory
// in the forms @pulumi/tls gives the stack (PKCS#1 private key, SPKI public key). The nameservers publish
// them through buildRecordSet's dkimRecord, the primary signs with the signing selector's.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dkimKeyPath, dkimRecordValue } from "../lib/render/dkim";
import { run } from "./net";

export class LabDkimKeys {
    private readonly records = new Map<string, string>();

    constructor(private readonly dir: string) {}

    /** Made on first use: the nameservers start before the primary. */
    private keyFile(selector: string): string {
        const file = dkimKeyPath(selector, this.dir);
        if (!existsSync(file)) {
            mkdirSync(this.dir, { recursive: true });
            run("openssl", ["genrsa", "-traditional", "-out", file, "2048"]);
        }
        return file;
    }

    privateKeyPem(selector: string): string {
        return readFileSync(this.keyFile(selector), "utf8");
    }

    publicKeyPem(selector: string): string {
        return run("openssl", ["rsa", "-in", this.keyFile(selector), "-pubout"]);
    }

    /** The TXT value at <selector>._domainkey.<domain>. */
    record(selector: string): string {
        let value = this.records.get(selector);
        if (value === undefined) {
            value = dkimRecordValue(this.publicKeyPem(selector));
            this.records.set(selector, value);
        }
        return value;
    }
}

