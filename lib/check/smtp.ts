// SMTP, per MX host: what a sender meets on port 25. Greeting, EHLO, STARTTLS and the certificate,
// then, in one transaction that never reaches DATA: a recipient outside the stack's domains (must be
// refused: no open relay), an unknown recipient of each domain (must be refused, or the host accepts
// mail it will bounce later: backscatter) and a listed one (must be accepted).
import { randomBytes } from "node:crypto";
import { hostname as machineName } from "node:os";
import type { Expectation, ExpectedMxHost } from "./expectation";
import { recipientsToTry } from "./expectation";
import type { Finding } from "./findings";
import { SmtpSession, type Reply } from "./smtp-session";

export interface SmtpOptions {
    timeoutMs: number;
    /** Extra trust roots (PEM), e.g. a private CA's. */
    ca?: string[];
    /** The name this checker gives in EHLO. */
    helo?: string;
    port?: number;
}

export const DEFAULT_SMTP_OPTIONS: SmtpOptions = { timeoutMs: 8000 };

/** A domain outside the stack for the relay test (RFC 2606 reserves these for such uses). */
export function relayTestDomain(domains: string[]): string {
    return ["example.net", "example.org", "example.edu"].find((d) => !domains.includes(d))!;
}

function said(reply: Reply): string {
    return `${reply.code} ${reply.text.split("\n")[0]}`.slice(0, 120);
}

/** What a server that takes no mail means, by its part in the stack, and where to look. */
const WHEN_DOWN: Record<ExpectedMxHost["role"], { meaning: string; action: string }> = {
    primary: { meaning: "the primary does not take mail: the relays queue it (nothing is lost) until it is back", action: "the runbook's troubleshooting step; the relays' queues show what waits" },
    relay: { meaning: "this backup MX cannot take mail for the domain when it is needed", action: "check the relay's host and container (docker ps, docker logs)" },
    partner: { meaning: "this backup MX (a partner's) cannot take mail for the domain when it is needed", action: "tell the partner (its contact, below); the stack cannot reach its host" },
    site: { meaning: "the switch (the primary) holds this site's users' mail until the server is back", action: "the site's server; when it answers again, postqueue -f on the switch delivers at once" },
};

export async function checkMxHost(expectation: Expectation, host: ExpectedMxHost, address: string | null, options: SmtpOptions = DEFAULT_SMTP_OPTIONS): Promise<Finding[]> {
    const subject =
        host.priority === null ? `${host.hostname} (${host.role} server)` : host.partner !== undefined ? `${host.hostname} (MX ${host.priority}, ${host.partner.organisation}'s)` : `${host.hostname} (MX ${host.priority}, ${host.role})`;
    // A partner's MX is checked like ours; what to do about it goes through its contact, never `pulumi up`.
    const tell = (what: string) => (host.partner === undefined ? what : `tell ${host.partner.contact} (${host.partner.organisation}): ${what}`);
    const down = host.partner === undefined ? WHEN_DOWN[host.role] : { ...WHEN_DOWN[host.role], action: tell("its MX does not take mail") };
    const findings: Finding[] = [];
    const add = (check: string, severity: Finding["severity"], detail: string, meaning?: string, action?: string) =>
        findings.push({ area: "smtp", subject, where: address ?? "", check, severity, detail, ...(meaning ? { meaning } : {}), ...(action ? { action } : {}) });
    if (address === null) {
        add("address", "problem", "no address: not in the plan and no nameserver serves its A record", "senders cannot reach this MX host", "see the DNS findings; give --outputs (pulumi stack output --json)");
        return findings;
    }
    const enforce = expectation.mtaStsMode === "enforce";
    let session: SmtpSession | undefined;
    try {
        session = await SmtpSession.open(address, options.port ?? 25, options.timeoutMs);
        const greeting = await session.reply();
        if (greeting.code !== 220) {
            add("greeting", "problem", `greets with ${said(greeting)}`, down.meaning, down.action);
            return findings;
        }
        add("greeting", "ok", said(greeting));
        const helo = options.helo ?? machineName();
        const ehlo = await session.command(`EHLO ${helo}`);
        if (ehlo.code !== 250) {
            add("EHLO", "problem", `answers ${said(ehlo)}`, "modern senders cannot talk to this host", "look at the host's Postfix log");
            return findings;
        }
        add("EHLO", "ok", "250");
        const extensions = ehlo.text.split("\n").map((l) => l.trim().toUpperCase());
        if (!extensions.includes("STARTTLS")) {
            add("STARTTLS", enforce ? "problem" : "warning", "not offered", enforce ? "senders that follow the MTA-STS policy (enforce) will not deliver here" : "mail to this host travels unencrypted", "configure a certificate (relay: TLS_CERT_FILE/TLS_KEY_FILE)");
        } else {
            const start = await session.command("STARTTLS");
            if (start.code !== 220) {
                add("STARTTLS", "problem", `offered, but answers ${said(start)}`, "senders that try TLS fail here", "look at the host's Postfix log for its TLS setup");
                return findings;
            }
            const tls = await session.upgrade(host.hostname, options.ca);
            add("STARTTLS", "ok", `${tls.protocol ?? "TLS"}`);
            if (tls.authorized) {
                const overdue = renewalOverdue(tls.validTo, host.partner === undefined ? expectation.topology.tls.acme?.renewDaysBefore : undefined);
                if (overdue === undefined) add("certificate", "ok", `CN ${tls.subject}, issued by ${tls.issuer}, valid until ${tls.validTo}`);
                else add("certificate", overdue.severity, `CN ${tls.subject}, issued by ${tls.issuer}, expires in ${overdue.daysLeft} days (${tls.validTo})`, overdue.meaning, "look at the host's renewal: a relay's status port (tls: ...) and log, the primary's `journalctl -u mailcontinuity-acme`");
            } else if (tls.selfSigned) {
                add(
                    "certificate",
                    enforce ? "problem" : "warning",
                    `self-signed (CN ${tls.subject || "none"}): TLS works, but no one can verify it is ${host.hostname}`,
                    enforce ? "senders enforcing MTA-STS will not deliver to this host" : "encrypted, but not authenticated; the MTA-STS policy must stay at testing",
                    tell("give the host a CA-signed certificate for its name"),
                );
            } else {
                add("certificate", enforce ? "problem" : "warning", `not valid for ${host.hostname}: ${tls.error} (CN ${tls.subject}, issuer ${tls.issuer}, until ${tls.validTo})`, "senders that verify certificates will not deliver here", tell("renew the certificate, or issue one with this host's name"));
            }
            const again = await session.command(`EHLO ${helo}`);
            if (again.code !== 250) {
                add("EHLO after TLS", "problem", `answers ${said(again)}`, "senders that use TLS cannot go on after the handshake", "look at the host's Postfix log for its TLS setup");
                return findings;
            }
        }
        const mail = await session.command("MAIL FROM:<>");
        if (mail.code !== 250) {
            add("MAIL FROM:<>", "problem", `answers ${said(mail)}`, "bounce notices (null sender, RFC 5321 4.5.5) cannot reach this domain", "allow the null sender in the host's smtpd restrictions");
            return findings;
        }
        const outside = `postmaster@${relayTestDomain(expectation.domains)}`;
        const relay = await session.command(`RCPT TO:<${outside}>`);
        if (relay.code >= 500) add("relay test", "ok", `RCPT TO:<${outside}> refused: ${said(relay)}`);
        else if (relay.code >= 400) add("relay test", "warning", `RCPT TO:<${outside}> answered ${said(relay)} (a temporary refusal)`, "it does not relay now, but a 4xx invites the sender to try again", tell("relay restrictions should refuse with 5xx (reject_unauth_destination)"));
        else add("relay test", "problem", `RCPT TO:<${outside}> ACCEPTED: ${said(relay)}`, "an open relay: spammers will use it and the host will be blocklisted", tell("stop it now: reject_unauth_destination, relay_domains only the stack's domains"));
        for (const domain of expectation.domains) {
            const { listed, refusesUnknown } = recipientsToTry(expectation.topology, domain);
            if (refusesUnknown) {
                const unknown = `mc-check-${randomBytes(5).toString("hex")}@${domain}`;
                const r = await session.command(`RCPT TO:<${unknown}>`);
                if (r.code >= 500) add(`unknown recipient @${domain}`, "ok", `refused: ${said(r)}`);
                else
                    add(
                        `unknown recipient @${domain}`,
                        r.code >= 400 ? "warning" : "problem",
                        `RCPT TO:<${unknown}> answered ${said(r)}`,
                        r.code >= 400 ? "senders of misaddressed mail retry instead of getting a bounce at once" : "it accepts mail for anyone and must bounce it later (backscatter to forged senders)",
                        host.partner === undefined ? "the relay's recipient list or the primary's tables do not match the stack: pulumi up applies them" : tell("install our current recipient table (npm run partner-config writes it)"),
                    );
            }
            if (listed !== null) {
                const r = await session.command(`RCPT TO:<${listed}>`);
                if (r.code === 250 || r.code === 251) add(`listed recipient @${domain}`, "ok", `RCPT TO:<${listed}> accepted`);
                else
                    add(
                        `listed recipient @${domain}`,
                        r.code >= 500 ? "problem" : "warning",
                        `RCPT TO:<${listed}> answered ${said(r)}`,
                        r.code >= 500 ? "mail for a valid recipient is refused at this host: senders get a bounce" : "mail for a valid recipient waits at the sender",
                        host.partner === undefined ? "the host's recipient table lacks the address: pulumi up applies the stack's recipients" : tell("install our current recipient table (npm run partner-config writes it)"),
                    );
            }
        }
        await session.command("RSET");
    } catch (error) {
        const message = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        add(
            "connection",
            "problem",
            `${address}:${options.port ?? 25}: ${message}`,
            down.meaning,
            down.action,
        );
    } finally {
        session?.close();
    }
    return findings;
}

/**
 * Whether a verified certificate should have been renewed by now. ACME renews renewDaysBefore days
 * ahead, twice a day: three days past that, the renewal is failing, and the primary has no queue
 * status to say so (a relay's does), so this finding is how a checker run on a timer raises it.
 */
export function renewalOverdue(validTo: string, renewDaysBefore: number | undefined, now: Date = new Date()): { severity: Finding["severity"]; daysLeft: number; meaning: string } | undefined {
    const end = Date.parse(validTo);
    if (Number.isNaN(end)) return undefined;
    const daysLeft = Math.floor((end - now.getTime()) / 86_400_000);
    if (daysLeft <= 7) return { severity: "problem", daysLeft, meaning: "when it expires, senders that verify (MTA-STS enforce, the relays) stop delivering here" };
    if (renewDaysBefore !== undefined && daysLeft < renewDaysBefore - 3) return { severity: "warning", daysLeft, meaning: `ACME renews ${renewDaysBefore} days ahead: the renewal is failing` };
    return undefined;
}
