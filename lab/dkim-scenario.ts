// Scenario `dkim`: the primary signs its outgoing mail. A message submitted on the primary (sendmail:
// non_smtpd_milters) and one handed to it over SMTP from the host itself (smtpd_milters) go out through
// its Postfix to the sending side's own domain (MX mta.example.net). At that receiving end mailauth's
// verifier, not OpenDKIM, fetching the key from the lab's nameservers, must say pass for d=<domain>,
// s=<selector>; a copy with its body changed and one with its Subject changed must not; and mail from
// outside with a From: in the domain arrives unsigned (only the host's own mail is signed).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "./lab";
import type { Row } from "./drill";
import type { VerifiedSignature } from "./dkim-verify";
import { readMaildirs, type MailMessage } from "./mailbox";
import { NAMESERVERS } from "./nameservers";
import { SENDER } from "./sender";
import { waitFor } from "./wait";

const VERIFY = join(__dirname, "dkim-verify.ts");
const DELIVERY_TIMEOUT_MS = 60_000;
const BODY = "Signed by the primary on its way out.\nThe verifier hashes this body.\n";

/** The character-strings of one TXT answer as dig prints it ("a" "b"). */
function txtStrings(rdata: string): string[] {
    return [...rdata.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, "$1"));
}

/** The h= tag of a message's first DKIM-Signature: the fields it signs, a name per instance. */
function signedFields(message: string): string[] {
    const head = message.slice(0, message.indexOf("\n\n")).replace(/\r?\n[ \t]+/g, " ");
    const signature = /^DKIM-Signature:(.*)$/im.exec(head)?.[1] ?? "";
    return (/(?:^|;)\s*h=([^;]*)/.exec(signature)?.[1] ?? "").split(":").map((f) => f.trim().toLowerCase()).filter(Boolean);
}

function describe(s: VerifiedSignature | undefined): string {
    return s === undefined ? "no signature" : `${s.result}${s.comment !== undefined ? ` (${s.comment})` : ""}`;
}

export async function dkimScenario(lab: Lab, runId: string): Promise<Row> {
    const scenario = "dkim: the primary signs outgoing mail";
    const started = Date.now();
    const dkim = lab.topology.dkim;
    if (dkim === undefined) throw new Error("scenario dkim needs a dkim section (a selector) in Pulumi.lab.yaml");
    const domain = lab.topology.domains[0];
    const selector = dkim.selector;
    const from = lab.recipient;
    const failures: string[] = [];
    const dir = lab.path("dkim-check");
    mkdirSync(dir, { recursive: true });

    // Published at both nameservers, in several strings: one holds 255 bytes, the key is longer.
    const name = `${selector}._domainkey.${domain}`;
    const published: string[] = [];
    for (const ns of NAMESERVERS) {
        const answer = lab.dns.dig(SENDER.key, ns.address, name, "TXT");
        const strings = answer.answers.length === 1 ? txtStrings(answer.answers[0]) : [];
        if (strings.join("") !== lab.dkim.record(selector)) failures.push(`${ns.key} answered ${answer.status} ${JSON.stringify(answer.answers)} for ${name} TXT, not the lab's key`);
        else published.push(`${ns.key} in ${strings.length} strings`);
    }

    await waitFor("opendkim to run in the primary's namespace", () => lab.primary.openDkimRunning(), 10_000);
    const message = (subject: string, id: string, to: string) =>
        [`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, `Date: ${new Date().toUTCString()}`, `Message-ID: <${id}@${domain}>`, "MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii", "", BODY].join("\n");
    const subjects = { sendmail: `dkim ${runId} submitted with sendmail`, smtp: `dkim ${runId} submitted over SMTP`, outside: `dkim ${runId} from outside` };
    let accepted = 0;

    const bySendmail = lab.primary.sendmail(from, SENDER.mailbox, message(subjects.sendmail, `dkim-sendmail-${runId}-${started}`, SENDER.mailbox));
    if (bySendmail.status === 0) accepted += 1;
    else failures.push(`sendmail on the primary failed (${bySendmail.status}): ${bySendmail.output}`);
    const smtpFile = join(dir, "smtp.txt");
    writeFileSync(smtpFile, message(subjects.smtp, `dkim-smtp-${runId}-${started}`, SENDER.mailbox));
    const bySmtp = lab.net.exec(lab.primary.key, ["swaks", "--server", "127.0.0.1", "--from", from, "--to", SENDER.mailbox, "--data", smtpFile, "--timeout", "20"]);
    if (bySmtp.status === 0) accepted += 1;
    else failures.push(`SMTP to the primary from the host itself failed (${bySmtp.status}): ${(bySmtp.stdout + bySmtp.stderr).trim().split("\n").slice(-3).join(" | ")}`);
    // From outside, claiming the domain: only the host's own mail may carry its signature.
    const outsideFile = join(dir, "outside.txt");
    writeFileSync(outsideFile, message(subjects.outside, `dkim-outside-${runId}-${started}`, from));
    const outside = lab.net.exec(SENDER.key, ["swaks", "--server", lab.primary.address, "--from", from, "--to", from, "--data", outsideFile, "--timeout", "20"]);
    if (outside.status !== 0) failures.push(`the primary refused mail from outside (${outside.status})`);

    const arrived = (root: string, subject: string): MailMessage[] => readMaildirs(root).filter((m) => m.subject === subject);
    const outgoing = [subjects.sendmail, subjects.smtp];
    try {
        await waitFor(
            `the signed messages at ${SENDER.hostname}`,
            () => outgoing.every((s) => arrived(lab.sender.mailboxBase, s).length > 0) && (outside.status !== 0 || arrived(lab.primary.mailboxBase, subjects.outside).length > 0),
            DELIVERY_TIMEOUT_MS,
            250,
        );
    } catch (error) {
        const log = lab.path("primary", "maillog");
        const tail = existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((l) => l.includes(SENDER.mailbox) || l.includes("milter")).slice(-3).join(" | ") : "";
        throw new Error(`${(error as Error).message}${tail === "" ? "" : `; the primary's log: ${tail}`}`);
    }

    // Each message as it arrived, and two copies changed on the way: the body, then a signed header.
    const files: Record<string, string> = {};
    const write = (key: string, text: string) => {
        files[key] = join(dir, `${key}.eml`);
        writeFileSync(files[key], text);
    };
    const sendmailCopy = arrived(lab.sender.mailboxBase, subjects.sendmail)[0].body;
    write("sendmail", sendmailCopy);
    write("smtp", arrived(lab.sender.mailboxBase, subjects.smtp)[0].body);
    write("body-changed", sendmailCopy.replace("The verifier hashes this body.", "The verifier hashes this body, changed on the way."));
    write("subject-changed", sendmailCopy.replace(`Subject: ${subjects.sendmail}`, `Subject: ${subjects.sendmail} (changed)`));
    const fromOutside = arrived(lab.primary.mailboxBase, subjects.outside)[0]?.body ?? "";

    const request = { zones: lab.topology.domains, nameservers: NAMESERVERS.map((n) => n.address), files: Object.values(files) };
    const r = lab.net.exec(SENDER.key, [process.execPath, "--import", "tsx", VERIFY, JSON.stringify(request)], { timeoutMs: 60_000 });
    let verified: Record<string, VerifiedSignature[]>;
    try {
        verified = JSON.parse(r.stdout) as Record<string, VerifiedSignature[]>;
    } catch {
        throw new Error(`the verifier failed (${r.status}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
    }
    const ours = (key: string) => verified[files[key]]?.find((s) => s.domain === domain && s.selector === selector);

    let passed = 0;
    for (const key of ["sendmail", "smtp"]) {
        const signature = ours(key);
        const all = verified[files[key]] ?? [];
        if (signature?.result === "pass" && all.length === 1) passed += 1;
        else failures.push(`${key}: ${describe(signature)} for d=${domain} s=${selector} (${all.length} signatures)`);
        // One From: in the message, two in h=: a From: added on the way breaks the signature.
        const fromSigned = signedFields(readFileSync(files[key], "utf8")).filter((f) => f === "from").length;
        if (signature !== undefined && fromSigned < 2) failures.push(`${key}: h= names From ${fromSigned} times, not oversigned`);
        if (signature !== undefined && signature.canonicalization !== "relaxed/simple") failures.push(`${key}: c=${signature.canonicalization}, not relaxed/simple`);
    }
    const bodyChanged = ours("body-changed");
    const subjectChanged = ours("subject-changed");
    if (bodyChanged === undefined || bodyChanged.result === "pass") failures.push(`the copy with its body changed: ${describe(bodyChanged)}`);
    if (subjectChanged?.result !== "fail") failures.push(`the copy with its Subject changed: ${describe(subjectChanged)}, not fail`);
    if (/^DKIM-Signature:/im.test(fromOutside.slice(0, fromOutside.indexOf("\n\n")))) failures.push("mail from outside with a From: in the domain was signed");

    const duplicates = outgoing.reduce((n, s) => n + arrived(lab.sender.mailboxBase, s).length - 1, 0);
    if (duplicates > 0) failures.push(`${duplicates} duplicates at ${SENDER.hostname}`);
    const detail =
        `d=${domain} s=${selector}: pass for mail submitted with sendmail and over SMTP (c=relaxed/simple, From oversigned), ` +
        `verified by mailauth at ${SENDER.hostname} with the key ${published.join(" and ")}; ` +
        `body changed: ${describe(bodyChanged)}; Subject changed: ${describe(subjectChanged)}; mail from outside claiming ${domain}: unsigned`;
    return {
        scenario,
        sent: outgoing.length,
        acknowledged: accepted,
        delivered: passed,
        duplicates,
        lost: accepted - outgoing.filter((s) => arrived(lab.sender.mailboxBase, s).length > 0).length,
        bounced: 0,
        seconds: (Date.now() - started) / 1000,
        recoverySeconds: null,
        pass: failures.length === 0,
        detail: failures.length === 0 ? detail : `${failures.join("; ")}`,
    };
}
