// The certificates the checker trusts: Node's bundled roots (Mozilla's), plus a private CA's when
// --ca-file names one. Given alone, Node's `ca` option would replace the public roots, and every
// CA-signed MX certificate would then look invalid.
import { rootCertificates } from "node:tls";

export function trustedRoots(extra: readonly string[] | undefined): string[] | undefined {
    return extra === undefined ? undefined : [...rootCertificates, ...extra];
}
