// Policy: what receivers of the domain's mail, and senders to it, evaluate. SPF for every MX address
// (mailauth's evaluator), DMARC present, and the MTA-STS policy, fetched over HTTPS when the mode is
// not none, parsed by mailauth and checked to list every MX host.
import { request } from "node:https";
import { spf } from "mailauth/lib/spf";
import { parsePolicy, validateMx } from "mailauth/lib/mta-sts";
import type { Expectation } from "./expectation";
import type { Finding } from "./findings";
import type { Resolver } from "./authoritative-resolver";
import { trustedRoots } from "./trust";
import { bareName } from "./normalise";

export interface PolicyOptions {
    resolver: Resolver;
    /** MX host addresses to evaluate SPF for (the plan's, else what DNS serves). */
    addresses: Record<string, string>;
    /** Their IPv6 addresses, for the hosts that have one. */
    addresses6?: Record<string, string>;
    timeoutMs: number;
    ca?: string[];
}

function fetchPolicyText(domain: string, address: string, options: PolicyOptions): Promise<string> {
    const servername = `mta-sts.${domain}`;
    return new Promise((resolve, reject) => {
        const req = request(
            {
                host: address,
                servername,
                headers: { host: servername },
                path: "/.well-known/mta-sts.txt",
                timeout: options.timeoutMs,
                // RFC 8461 3.3: the policy host's certificate must be valid for its name.
                ca: trustedRoots(options.ca),
            },
            (res) => {
                let body = "";
                res.setEncoding("utf8");
                res.on("data", (c: string) => (body += c));
                res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
            },
        );
        req.on("timeout", () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
        req.on("error", reject);
        req.end();
    });
}

/**
 * The policy host's address. mta-sts.<domain> is a CNAME to the stack's CloudFront site, and an
 * authoritative server answers an A question there with the CNAME alone: follow it (a few hops at most).
 */
export async function policyHostAddress(domain: string, resolver: Resolver): Promise<string | undefined> {
    let name = `mta-sts.${domain}`;
    for (let hop = 0; hop < 8; hop++) {
        const target = await resolver(name, "CNAME").then(
            (answer) => (answer as string[])[0],
            () => undefined,
        );
        if (target === undefined) break;
        name = bareName(target);
    }
    return ((await resolver(name, "A")) as string[])[0];
}

export async function checkPolicy(expectation: Expectation, options: PolicyOptions): Promise<Finding[]> {
    const findings: Finding[] = [];
    await Promise.all(
        expectation.domains.map(async (domain) => {
            const add = (check: string, severity: Finding["severity"], detail: string, meaning?: string, action?: string) =>
                findings.push({ area: "policy", subject: domain, where: "", check, severity, detail, ...(meaning ? { meaning } : {}), ...(action ? { action } : {}) });

            // Its IPv6 address too (an AAAA): `mx` matches it through the MX hosts' AAAA records (RFC 7208 5.4).
            const sources = expectation.mxHosts.flatMap((host) => [
                { host, ip: options.addresses[host.hostname], check: `SPF ${host.hostname}` },
                { host, ip: options.addresses6?.[host.hostname], check: `SPF ${host.hostname} (IPv6)` },
            ]);
            for (const { host, ip, check } of sources) {
                if (ip === undefined) continue;
                const result = await spf({ ip, sender: `postmaster@${domain}`, helo: host.hostname, mta: "mailcontinuity-check", resolver: options.resolver as never });
                const status = result.status.result;
                if (status === "pass") add(check, "ok", `${ip} passes for ${domain}`);
                else
                    add(
                        check,
                        "problem",
                        `${ip} gets ${status} for ${domain}${result.info ? ` (${result.info})` : ""}`,
                        "mail this host sends for the domain (bounces, forwarded mail) fails SPF and, with DMARC, may be refused",
                        "the SPF record must cover every MX address (the stack publishes v=spf1 mx); check the MX and A records above",
                    );
            }

            try {
                const dmarc = ((await options.resolver(`_dmarc.${domain}`, "TXT")) as string[][]).map((r) => r.join("")).filter((r) => /^v=DMARC1\b/i.test(r));
                if (dmarc.length === 1) add("DMARC", "ok", dmarc[0]);
                else add("DMARC", "problem", dmarc.length === 0 ? "no v=DMARC1 record" : `${dmarc.length} v=DMARC1 records (receivers ignore them all)`, "receivers apply no DMARC policy and send no reports", "pulumi up publishes the stack's one record");
            } catch (error) {
                add("DMARC", "problem", `_dmarc.${domain}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, "receivers apply no DMARC policy and send no reports", "pulumi up publishes it");
            }

            if (expectation.mtaStsMode === "none") return;
            const enforce = expectation.mtaStsMode === "enforce";
            const unserved = (detail: string) =>
                add(
                    "MTA-STS policy",
                    enforce ? "problem" : "warning",
                    detail,
                    enforce ? "senders with a cached policy keep enforcing it; new ones get none" : "senders ignore the _mta-sts record: no TLS reports, no protection",
                    `pulumi up serves it at https://mta-sts.${domain}/.well-known/mta-sts.txt (its MTA-STS site, and mta-sts.${domain} at both providers); a new site's certificate and CloudFront take minutes`,
                );
            let address: string | undefined;
            try {
                address = await policyHostAddress(domain, options.resolver);
                if (address === undefined) throw Object.assign(new Error("no address"), { code: "ENODATA" });
            } catch (error) {
                unserved(`mta-sts.${domain} has no address (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
                return;
            }
            let text: string;
            try {
                text = await fetchPolicyText(domain, address, options);
            } catch (error) {
                unserved(`https://mta-sts.${domain}/.well-known/mta-sts.txt: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
                return;
            }
            const served = parsePolicy(text);
            const missing = expectation.mxHosts.filter((h) => !validateMx(h.hostname, served).valid).map((h) => h.hostname);
            if (served.mode !== expectation.mtaStsMode) add("MTA-STS policy", "problem", `served with mode ${served.mode}; the stack says ${expectation.mtaStsMode}`, "senders apply a policy other than the one the stack declares", "pulumi up writes the stack's policy (the mtaStsPolicy output) to its MTA-STS site");
            else if (missing.length > 0) add("MTA-STS policy", "problem", `does not list ${missing.join(", ")}`, enforce ? "senders enforcing the policy refuse to deliver to these MX hosts" : "TLS reports will flag these MX hosts", "pulumi up writes the stack's policy, which lists every MX, to its MTA-STS site");
            else add("MTA-STS policy", "ok", `mode ${served.mode}, lists every MX host`);
        }),
    );
    return findings;
}
