// A large organisation for the scale test and the benchmark: the prod stack's hosts serving many
// domains and recipients.
import { createHash } from "node:crypto";

export function scaleTopology(prod: Record<string, unknown>, domainCount: number, recipientCount: number): Record<string, unknown> {
    const domains = Array.from({ length: domainCount }, (_, i) => (i === 0 ? "example.com" : `example${i}.com`));
    const zoneIds = Object.fromEntries(domains.map((d) => [d, createHash("md5").update(d).digest("hex")]));
    const recipients = Array.from({ length: recipientCount }, (_, i) => `user${i}@${domains[i % domainCount]}`);
    return {
        ...prod,
        domains,
        dns: { providers: [{ kind: "cloudflare", zoneIds }, { kind: "route53" }] },
        recipients,
        mailboxes: [],
    };
}
