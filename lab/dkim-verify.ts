// DKIM verification as a receiver on the Internet does it: mailauth's verifier, not OpenDKIM, on each
// message file, fetching keys from the lab's nameservers through the checker's authoritative resolver.
// Run in the sending host's namespace (the only place the lab's nameservers answer):
//   dkim-verify.ts '{"zones":["example.com"],"nameservers":["192.0.2.53"],"files":["/path/msg.eml"]}'
// Prints one JSON line: per file, each signature's d=, s=, result and comment.
import { readFileSync } from "node:fs";
import { dkimVerify } from "mailauth/lib/dkim/verify";
import { authoritativeResolver } from "../lib/check/authoritative-resolver";
import { DEFAULT_QUERY_OPTIONS } from "../lib/check/dns-query";

export interface VerifiedSignature {
    domain: string;
    selector: string;
    result: string;
    comment?: string;
    /** c=: header/body canonicalization. */
    canonicalization: string;
}

export interface VerifyRequest {
    zones: string[];
    nameservers: string[];
    files: string[];
}

async function main(): Promise<void> {
    const request = JSON.parse(process.argv[2] ?? "{}") as VerifyRequest;
    const servers = request.nameservers.map((address) => ({ name: address, address }));
    const resolver = authoritativeResolver(Object.fromEntries(request.zones.map((z) => [z, servers])), DEFAULT_QUERY_OPTIONS);
    const out: Record<string, VerifiedSignature[]> = {};
    for (const file of request.files) {
        const verified = await dkimVerify(readFileSync(file), { resolver: resolver as never });
        // An unsigned message gets one result without a domain ("none"): no signature to list.
        out[file] = verified.results
            .filter((r) => r.signingDomain !== undefined)
            .map((r) => ({
                domain: r.signingDomain,
                selector: r.selector ?? "",
                result: r.status.result,
                ...(r.status.comment ? { comment: String(r.status.comment) } : {}),
                // Not in mailauth's typings, but in every result it returns.
                canonicalization: (r as { format?: string }).format ?? "",
            }));
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((error: unknown) => {
    process.stderr.write(`dkim-verify: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(2);
});
