// The incident runbook of a stack, rendered from its offline plan (pure, byte-stable: no dates). Every
// name in it is the deployed one; what exists only after a deployment (Elastic IPs, the nameserver names
// Cloudflare and Route53 assign) is looked up by the commands, never printed as a fact.
import type { Plan, PlannedRecord } from "../plan/report";
import type { MailHost, Topology } from "../topology/schema";
import { parseTopology } from "../topology/validate";
import { isPartner, mailHosts, partnerRelays, zoneOf, type PartnerRelay } from "../topology/placement";
import { recipientsToTry } from "../check/expectation";
import { ADMIN_USER, ETRN_INTERVAL, MAIL_MOUNT, RELAY_QUEUE_MOUNT } from "../render/cloud-init";
import { ETRN_SCRIPT_PATH } from "../render/primary-apply";
import { SNAPSHOT_TARGET_TAG } from "../render/mail-snapshots";
import { PLAIN, RUNNABLE, fence } from "./blocks";
import { alarms, humanDuration, relayAccess, type AlarmFacts, type RelayAccess } from "./facts";

/** How the runbook finds each provider's nameservers in a domain's NS set (the names are assigned). */
export const PROVIDER_NAMESERVERS: Record<string, { label: string; pattern: string }> = {
    cloudflare: { label: "Cloudflare", pattern: "\\.ns\\.cloudflare\\.com\\.$" },
    route53: { label: "Route53", pattern: "\\.awsdns-[0-9]+\\." },
};

/** The project's npm script that writes this file. */
export const RUNBOOK_COMMAND = "npm run runbook";

interface Context {
    plan: Plan;
    topology: Topology;
    stack: string;
    relays: RelayAccess[];
    alarms: AlarmFacts[];
    hasAws: boolean;
}

/** Text for a Markdown table cell: no HTML, no column breaks. */
function cell(text: string): string {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\|/g, "\\|");
}

function code(text: string): string {
    return `\`${text}\``;
}

function list(items: readonly string[], limit = 12): string {
    const shown = items.slice(0, limit).map(code).join(", ");
    return items.length > limit ? `${shown} and ${items.length - limit} more (see \`Pulumi.<stack>.yaml\`)` : shown;
}

/** A mail host's fixed address, or how to find it once deployed. */
function addressOf(host: MailHost, stack: string): string {
    const p = host.placement;
    if (p.kind === "partner") return p.addresses.length > 0 ? p.addresses.map(code).join(", ") : `its own DNS's (${code(`dig +short A ${host.hostname}`)})`;
    return p.kind === "aws" ? `its Elastic IP (known after deploy: ${code(`pulumi stack output --stack ${stack} hostAddresses`)})` : code(p.address);
}

function runsOn(host: MailHost, relays: RelayAccess[]): string {
    const p = host.placement;
    if (p.kind === "aws") return `EC2 in ${p.region}`;
    if (p.kind === "external") return `your own server (${p.site.provider}, ${p.site.city}; not managed by the stack)`;
    if (p.kind === "partner") return `${p.organisation}'s server (${p.software}; contact ${code(p.contact)}; not managed by the stack)`;
    return relays.find((r) => r.relay.hostname === host.hostname)!.where;
}

/** Every backup MX, ours and partners', by priority: where senders go while the primary is down. */
function backups(c: Context): string[] {
    return mailHosts(c.topology).filter((h) => h !== c.topology.primary).map((h) => h.hostname);
}

/** A postmaster address of a domain: what a probe names as its recipient. */
function postmaster(topology: Topology): string {
    return `postmaster@${topology.domains[0]}`;
}

function header(c: Context): string[] {
    return [
        `# Incident runbook: stack \`${c.stack}\` (${c.topology.domains.join(", ")})`,
        "",
        `Generated from the stack's offline plan by ${code(`${RUNBOOK_COMMAND} -- --stack ${c.stack}`)}: change \`lib/runbook/\` or the`,
        "stack's config and regenerate, never this file (a test fails when it is stale).",
        `Blocks marked ${code(RUNNABLE)} are safe to run as they are (they read, query, or flush a queue), and a`,
        "test runs them against the lab (`test/runbook-lab.test.ts`); plain `sh` blocks change something or need",
        "the cloud (AWS CLI, Pulumi), so read them before running them.",
        "What exists only after a deployment (Elastic IPs, the nameserver names Cloudflare and Route53",
        "assign) is looked up by the commands, never written here. Run commands from a checkout of this",
        "project, with the SSH keys of the hosts in your agent.",
        "",
    ];
}

function glance(c: Context): string[] {
    const t = c.topology;
    const rows = mailHosts(t).map((h) => {
        const role = h === t.primary ? "primary" : isPartner(h) ? "partner's MX" : "relay";
        return `| ${h.priority} | ${code(h.hostname)} | ${role} | ${runsOn(h, c.relays)} | ${addressOf(h, c.stack)} |`;
    });
    return [
        "## The stack at a glance",
        "",
        "| MX | host | role | runs on | address |",
        "|---|---|---|---|---|",
        ...rows,
        "",
        `- Domains: ${list(t.domains)}.`,
        `- Recipients the relays accept (everything else gets 550): ${list(t.recipients)}.`,
        ...partnerRelays(t).map(
            (p) => `- ${code(p.hostname)} is ${p.placement.organisation}'s: it accepts these recipients from the configuration we hand over (${code(`npm run partner-config -- --stack ${c.stack}`)}), and keeps mail as long as its own queue lifetime says.`,
        ),
        `- Queue lifetime: **${humanDuration(t.queueLifetime)}** (${code(t.queueLifetime)}). While the primary is down, senders deliver to the`,
        `  relays, which keep the mail that long and then bounce it to its sender with a notice.`,
        `- Alarms go by e-mail to ${code(t.alerts.email)} (SNS; the subscription must have been confirmed).`,
        "",
    ];
}

function checkerBlock(c: Context): string[] {
    if (!c.hasAws) {
        return [
            `The live checker compares the world with this plan (DNS at each nameserver, each MX over SMTP, the mail`,
            "policy): exit 0 all good, 1 problems found (each named), 2 it could not run.",
            "",
            fence(RUNNABLE, [`npm run check -- --stack ${c.stack}`]),
        ];
    }
    return [
        `The live checker compares the world with this plan (DNS at each nameserver, each MX over SMTP, the mail`,
        "policy): exit 0 all good, 1 problems found (each named), 2 it could not run. This stack has EC2",
        "hosts, whose addresses come from the deployed stack's outputs:",
        "",
        fence(PLAIN, [`pulumi stack output --stack ${c.stack} --json > outputs-${c.stack}.json`, `npm run check -- --stack ${c.stack} --outputs outputs-${c.stack}.json`]),
    ];
}

function expectedMx(c: Context, provider: string, domain: string): PlannedRecord[] {
    return c.plan.dns.filter((d) => d.provider === provider && d.name === domain && d.type === "MX").sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0));
}

function dnsBlocks(c: Context): string[] {
    const out: string[] = [
        "### DNS at each provider",
        "",
        "Both providers serve the same records and each domain's NS set lists both providers' nameservers, so",
        "one provider failing does not stop mail. For each provider, these ask each of its nameservers",
        "directly (no cache). No output and exit status 1 means the NS set lists none of that provider's",
        `nameservers (the registrar's delegation; ${code(`pulumi stack output --stack ${c.stack} nameservers`)} has the names).`,
        "A nameserver that times out or answers SERVFAIL is that provider's failure.",
        "",
    ];
    for (const domain of c.topology.domains) {
        const hosts = mailHosts(c.topology).filter((h) => zoneOf(h.hostname, c.topology.domains) === domain);
        for (const provider of c.topology.dns.providers) {
            const p = PROVIDER_NAMESERVERS[provider.kind];
            const mx = expectedMx(c, provider.kind, domain);
            out.push(
                `${p.label}, ${code(domain)}: expected MX ${mx.map((r) => code(`${r.priority} ${r.content}.`)).join(", ")}` +
                    (hosts.length > 0 ? `, and the address of ${hosts.map((h) => code(h.hostname)).join(", ")} as in the table above.` : "."),
                "",
                fence(RUNNABLE, [
                    `nameservers=$(dig +short NS ${domain} | grep -E '${p.pattern}') &&`,
                    "for ns in $nameservers; do",
                    '  echo "== $ns"',
                    `  dig @"$ns" +norecurse +short ${domain} MX`,
                    ...hosts.map((h) => `  echo "${h.hostname} A $(dig @"$ns" +norecurse +short ${h.hostname} A)"`),
                    "done",
                ]),
                "",
            );
        }
    }
    return out;
}

function smtpProbe(c: Context): string[] {
    return [
        "### Each MX host answers SMTP",
        "",
        "Each line connects to one MX host, shows its greeting and EHLO answer, and quits before any mail",
        "(`apt install swaks`). A refused connection or a timeout there is the host to troubleshoot.",
        "",
        fence(
            RUNNABLE,
            mailHosts(c.topology).map((h) => `swaks --server ${h.hostname} --to ${postmaster(c.topology)} --quit-after EHLO`),
        ),
        "",
    ];
}

function alarmStateCommand(c: Context): string[] {
    if (c.alarms.length === 0) return [];
    const byRegion = [...new Set(c.alarms.map((a) => a.region))];
    const groups = [...new Set(c.alarms.map((a) => a.group))];
    const prefix = groups.length === 1 && groups[0] !== null && c.alarms.every((a) => a.name.startsWith(`${groups[0]}-`)) ? `${groups[0]}-` : commonPrefix(c.alarms.map((a) => a.name));
    return [
        "Which alarms are firing now (AWS names each alarm after its resource name below, with a suffix):",
        "",
        fence(
            PLAIN,
            byRegion.map((region) => `aws cloudwatch describe-alarms --region ${region} --alarm-name-prefix ${prefix} --state-value ALARM --query 'MetricAlarms[].[AlarmName,StateReason]' --output text`),
        ),
        "",
    ];
}

function commonPrefix(names: string[]): string {
    let prefix = names[0] ?? "";
    for (const n of names) while (!n.startsWith(prefix)) prefix = prefix.slice(0, -1);
    return prefix;
}

function assess(c: Context): string[] {
    return [
        "## 1. Assess",
        "",
        "Establish what is down before changing anything: mail is probably not being lost (that is what",
        "the relays are for), so the first minutes are for finding out, not for fixing.",
        "",
        "### The checker",
        "",
        ...checkerBlock(c),
        "",
        `\`--only dns,smtp,policy\` narrows it; \`--nameservers <addr>[,<addr>...]\` asks those nameservers instead of`,
        "the ones the system resolver finds.",
        "",
        ...dnsBlocks(c),
        ...smtpProbe(c),
        "### The alarms",
        "",
        "What each alarm means and where it goes: see [Alarms](#alarms) at the end.",
        "",
        ...alarmStateCommand(c),
    ];
}

function notify(c: Context): string[] {
    return [
        "## 2. Notify",
        "",
        `- The alarms already went to ${code(c.topology.alerts.email)}. Tell whoever shares the on-call that you are on it, and`,
        "  start an incident note: the time of the first alarm or report, then every step with its time (the",
        "  review needs them).",
        `- If the primary (${code(c.topology.primary.hostname)}) is down, or will be for more than a few minutes, send`,
        "  users the outage message ([Messages to users](#6-notify-users)): incoming mail is delayed, not lost.",
        "- A relay or one DNS provider down alone does not delay mail: no message to users.",
        "",
    ];
}

function primarySection(c: Context): string[] {
    const t = c.topology;
    const p = t.primary.placement;
    const head = [`### ${t.primary.hostname} (primary, MX ${t.primary.priority})`, ""];
    if (p.kind === "external") {
        return [
            ...head,
            `Your own server at ${code(p.address)} (${p.site.provider}, ${p.site.city}): the stack publishes its records and`,
            "watches port 25, nothing more. Reach it as you usually do, and look at its Postfix there:",
            "",
            fence(PLAIN, ["postqueue -p                  # what it has queued", "postfix status", "journalctl -u 'postfix*' --since -1h   # or its mail log"]),
            "",
        ];
    }
    const login = `ssh ${ADMIN_USER}@${t.primary.hostname}`;
    return [
        ...head,
        `EC2 in ${p.region}. Log in as Debian's ${code(ADMIN_USER)} with a key of \`admin.sshKeys\`, from an address in`,
        `${code(p.adminSshCidr)} (the only source the firewall lets reach port 22). If the name does not resolve, use the`,
        `address from ${code(`pulumi stack output --stack ${c.stack} hostAddresses`)}.`,
        "",
        fence(PLAIN, [
            `${login} sudo systemctl status postfix@- dovecot mailcontinuity-data-volume --no-pager`,
            `${login} sudo postqueue -p`,
            `${login} sudo journalctl -u postfix@- --since -1h --no-pager`,
            `${login} findmnt ${MAIL_MOUNT}            # the mail volume; without it Postfix stays down on purpose`,
        ]),
        "",
        "The instance itself (stopped, failing status checks), with the AWS CLI:",
        "",
        fence(PLAIN, [
            `aws ec2 describe-instances --region ${p.region} --filters Name=tag:Name,Values=${t.primary.hostname} --query 'Reservations[].Instances[].[InstanceId,State.Name]' --output text`,
            `aws ec2 describe-instance-status --region ${p.region} --include-all-instances --instance-ids <id from above>`,
            `aws ec2 get-console-output --region ${p.region} --latest --output text --instance-id <id from above>`,
        ]),
        "",
    ];
}

function relaySection(c: Context, r: RelayAccess): string[] {
    const p = r.relay.placement;
    const out = [
        `### ${r.relay.hostname} (relay, MX ${r.relay.priority})`,
        "",
        `Container ${code(r.container)} on ${r.where}.`,
        p.kind === "docker"
            ? `Docker is reached over SSH as the URL's user (in the host's \`docker\` group); a shell on the host: ${code(r.login)}.`
            : `Log in as ${code(ADMIN_USER)} from ${code(p.adminSshCidr)} with a key of \`admin.sshKeys\` (${code(r.login)}; if the name does not resolve, the address from ${code(`pulumi stack output --stack ${c.stack} hostAddresses`)}); Docker there needs sudo.`,
        "",
        "Its queue: `postqueue -p` lists it, `postqueue -j` prints one JSON object per message (`queue_name`,",
        "`arrival_time`, `recipients[].address`, `recipients[].delay_reason`: why it waits). No output from `-j`",
        "is an empty queue.",
        "",
        fence(RUNNABLE, [`${r.exec} postqueue -p`, `${r.exec} postqueue -j`]),
        "",
        "The container and its log (Postfix logs to stdout):",
        "",
        fence(PLAIN, [`${r.docker} ps --all --filter name=^${r.container}$`, `${r.docker} logs --tail 200 ${r.container}`]),
        "",
    ];
    if (p.kind === "aws") {
        out.push(
            `The instance (the queue is on its own EBS volume, mounted at ${code(RELAY_QUEUE_MOUNT)}):`,
            "",
            fence(PLAIN, [
                `aws ec2 describe-instances --region ${p.region} --filters Name=tag:Name,Values=${r.relay.hostname} --query 'Reservations[].Instances[].[InstanceId,State.Name]' --output text`,
                `${r.login} findmnt ${RELAY_QUEUE_MOUNT}`,
            ]),
            "",
        );
    }
    return out;
}

function troubleshoot(c: Context): string[] {
    return ["## 3. Troubleshoot", "", "Each mail host: how to reach it, and what to look at.", "", ...primarySection(c), ...c.relays.flatMap((r) => relaySection(c, r)), ...partnerRelays(c.topology).flatMap((p) => partnerSection(c, p))];
}

/** Another organisation's MX: nothing to log in to; what a sender sees, and whom to ask for the rest. */
function partnerSection(c: Context, p: PartnerRelay): string[] {
    const t = c.topology;
    const { organisation, contact, software } = p.placement;
    const domain = t.domains[0];
    const { listed } = recipientsToTry(t, domain);
    const queue = software === "postfix" ? "`postqueue -p` (and `postqueue -f` to deliver it now)" : "`mailq` (and `sendmail -q` to deliver it now)";
    return [
        `### ${p.hostname} (${organisation}'s MX, MX ${p.priority})`,
        "",
        `Run by ${organisation}, not by this stack: no container, no login, no queue health check (only its port 25 is`,
        `watched). Ask ${code(contact)}: whether it is up, and what it holds for ${t.domains.map(code).join(", ")}: ${queue}.`,
        "What a sender meets there, from here (a listed recipient must get 250, an unknown one 550; nothing is sent):",
        "",
        fence(PLAIN, [
            ...(listed !== null ? [`swaks --server ${p.hostname} --to ${listed} --quit-after RCPT`] : []),
            `swaks --server ${p.hostname} --to mc-runbook-unknown@${domain} --quit-after RCPT`,
        ]),
        "",
        `An unknown-recipient answer for one of our recipients means ${organisation} has an older recipient table than the stack:`,
        `send them the current one (${code(`npm run partner-config -- --stack ${c.stack}`)} writes it; README "Partner MX").`,
        "",
    ];
}

function etrn(c: Context): string[] {
    const t = c.topology;
    if (t.primary.placement.kind === "aws") {
        return [
            `The primary asks each relay to deliver what it holds (ETRN, RFC 1985) at boot and every ${systemdSpan(ETRN_INTERVAL)} (its`,
            `${code("etrn-relays.timer")}); to do it now (each relay and domain should answer \`250\`):`,
            "",
            fence(RUNNABLE, [`ssh ${ADMIN_USER}@${t.primary.hostname} sudo ${ETRN_SCRIPT_PATH}`]),
            "",
        ];
    }
    return [
        "The stack installs no ETRN script on an external primary. The relays accept `ETRN <domain>` (RFC 1985)",
        "from any address (it only starts delivery to the primary), so from the primary or from here (each",
        "should answer `250 Queuing started`):",
        "",
        fence(
            RUNNABLE,
            c.relays.flatMap((r) => t.domains.map((d) => `curl -sS -X 'ETRN ${d}' smtp://${r.relay.hostname}`)),
        ),
        "",
    ];
}

/** A partner's MX delivers on its own retry schedule; ETRN (which a Postfix relaying for us accepts) or its operator shortens it. */
function partnerFlush(c: Context): string[] {
    const partners = partnerRelays(c.topology);
    if (partners.length === 0) return [];
    return [
        `A partner's MX retries on its own schedule (Postfix: minutes, up to its maximal_backoff_time). To have it deliver now, ETRN`,
        "(a Postfix that relays our domains accepts it; each should answer `250`), or ask its operator to flush its queue:",
        "",
        fence(PLAIN, partners.flatMap((p) => c.topology.domains.map((d) => `curl -sS -X 'ETRN ${d}' smtp://${p.hostname}`))),
        "",
    ];
}

/** The primary's EC2 instance resource, as the primary component declares it. */
function primaryInstance(c: Context): string {
    const primary = c.plan.resources.find((r) => r.type === "mailcontinuity:primary:PrimaryMailHost");
    const instance = c.plan.resources.find((r) => r.type === "aws:ec2/instance:Instance" && r.parent === primary?.name);
    if (instance === undefined) throw new Error(`the plan of stack ${c.stack} has no instance for the primary ${c.topology.primary.hostname}`);
    return instance.name;
}

/** The primary's mail volume in the plan: the one its snapshot policy targets (restored ones too). */
function primaryMailVolume(c: Context): string {
    const volume = c.plan.resources.find(
        (r) => r.type === "aws:ebs/volume:Volume" && (r.inputs.tags as Record<string, string> | undefined)?.[SNAPSHOT_TARGET_TAG] === c.topology.primary.hostname,
    );
    if (volume === undefined) throw new Error(`the plan of stack ${c.stack} has no mail volume for the primary ${c.topology.primary.hostname}`);
    return volume.name;
}

/** systemd's "5min" as words. */
function systemdSpan(span: string): string {
    const m = /^(\d+)min$/.exec(span);
    return m === null ? span : `${m[1]} minutes`;
}

/** The primary lost for good: the restore from the mail volume's snapshots (docs/rebuild-primary.md). */
function rebuild(c: Context): string[] {
    const t = c.topology;
    const p = t.primary.placement;
    if (p.kind !== "aws") return [];
    const copies = p.snapshots.copyToRegion;
    return [
        "### The primary is lost for good (its region, its disk)",
        "",
        `The relays keep the mail meanwhile (${humanDuration(t.queueLifetime)}). The mailboxes come back from the newest snapshot of the`,
        `mail volume: in ${code(p.region)} if the region is fine, else its copy in ${code(copies)}. Mail delivered to the primary`,
        `after that snapshot is lost (up to ${p.snapshots.everyHours} h); what the relays hold is not. The whole procedure, with what the`,
        "preview must show: `docs/rebuild-primary.md`.",
        "",
        fence(PLAIN, [
            `aws ec2 describe-snapshots --region ${copies} --owner-ids self \\`,
            `  --filters Name=tag:${SNAPSHOT_TARGET_TAG},Values=${t.primary.hostname} Name=status,Values=completed \\`,
            "  --query 'sort_by(Snapshots,&StartTime)[-1].[SnapshotId,StartTime,VolumeSize]' --output text",
        ]),
        "",
        `Then in \`Pulumi.${c.stack}.yaml\`, under \`primary.placement\`: \`restoreFromSnapshot: <that id>\`; for another region also`,
        `\`region: ${copies}\`, an \`ami\` of that region, and \`snapshots.copyToRegion\` another region. Review, let the old volume go,`,
        "and update:",
        "",
        fence(PLAIN, [
            `npm run plan -- --stack ${c.stack} --diff <the commit you deployed>`,
            `pulumi stack --stack ${c.stack} --show-urns | grep -- '::${primaryMailVolume(c)}$'`,
            "pulumi state unprotect <that urn>",
            `pulumi up --stack ${c.stack}`,
        ]),
        "",
        "In the same region, replace the instance in that update too (`pulumi up --replace <the urn of",
        `\`${primaryInstance(c)}\`>): a running instance mounts its volume only at first boot.`,
        "",
    ];
}

/** The offices' own servers: while one is down the switch (the primary) holds its users' mail. */
function sitesFix(c: Context): string[] {
    const t = c.topology;
    const sites = Object.entries(t.sites);
    if (sites.length === 0) return [];
    const onPrimary = t.primary.placement.kind === "aws" ? `ssh ${ADMIN_USER}@${t.primary.hostname} sudo ` : "";
    return [
        "### A site's own server is down",
        "",
        `The primary is the switch: it keeps mail for the users of ${sites.map(([name, s]) => `${code(name)} (${code(s.server!.hostname)})`).join(", ")} while their server is`,
        "down and retries within Postfix's backoff (minutes). When the site's server answers again, deliver at once:",
        "",
        fence(PLAIN, [`${onPrimary}postqueue -f`]),
        "",
        "After a change of `recipients` or `sites`, run each site's new script on its server (`npm run site-config",
        `-- --stack ${c.stack}\` writes them; README "Sites").`,
        "",
    ];
}

function fix(c: Context): string[] {
    const t = c.topology;
    const p = t.primary.placement;
    const lifetime = humanDuration(t.queueLifetime);
    const primaryFix =
        p.kind === "aws"
            ? [
                  fence(PLAIN, [
                      "# a stuck service",
                      `ssh ${ADMIN_USER}@${t.primary.hostname} sudo systemctl restart postfix@- dovecot`,
                      "# a stopped instance (its id: step 3)",
                      `aws ec2 start-instances --region ${p.region} --instance-ids <id>`,
                      "# a broken instance: replace it (find its URN, then replace it)",
                      `pulumi stack --stack ${c.stack} --show-urns | grep -- '::${primaryInstance(c)}$'`,
                      `pulumi up --stack ${c.stack} --replace <urn>`,
                  ]),
                  "",
                  "A replacement keeps the Elastic IP and the mail volume (detached first, attached to the new",
                  "instance before Postfix starts); review `pulumi preview --diff` before `pulumi up`.",
              ]
            : ["Your own server: your own procedures. The stack changes nothing on it."];
    return [
        "## 4. Fix",
        "",
        `### The primary is down`,
        "",
        `Mail is safe meanwhile: senders deliver to ${backups(c).map(code).join(" and ")}, which keep it for ${lifetime}${partnerRelays(t).length > 0 ? " (a partner's MX as long as its own queue lifetime)" : ""}.`,
        "Fix the cause without haste, but well within that time.",
        "",
        ...primaryFix,
        "",
        "### Bring the queued mail home (the primary answers again)",
        "",
        "Each relay probes the primary every few seconds while it holds mail and flushes its queue within",
        "seconds of the primary's return; nothing needs doing. If a relay still holds mail a few minutes later:",
        "",
        ...etrn(c),
        "Or flush a relay's queue directly: one domain (`postqueue -s`), or everything (`postqueue -f`):",
        "",
        ...c.relays.flatMap((r) => [fence(RUNNABLE, [...t.domains.map((d) => `${r.exec} postqueue -s ${d}`), `${r.exec} postqueue -f`]), ""]),
        ...partnerFlush(c),
        "Mail that still waits shows why in `recipients[].delay_reason` of `postqueue -j` (step 3).",
        "",
        "### A relay is down",
        "",
        `Mail still reaches the primary (MX ${t.primary.priority}) directly and the other relay${c.relays.length > 2 ? "s" : ""} back${c.relays.length > 2 ? "" : "s"} it up; no user`,
        "notice. Start the container again, or let the stack put back what it declares (the queue volume",
        "is kept either way):",
        "",
        ...c.relays.flatMap((r) => [fence(PLAIN, [`${r.docker} start ${r.container}`]), ""]),
        fence(PLAIN, [`pulumi preview --stack ${c.stack} --diff`, `pulumi up --stack ${c.stack}`]),
        "",
        ...partnerRelays(t).flatMap((p) => [`${code(p.hostname)} is ${p.placement.organisation}'s: the stack cannot start it. Tell ${code(p.placement.contact)}.`, ""]),
        ...rebuild(c),
        ...sitesFix(c),
        "### One DNS provider fails",
        "",
        "Senders' resolvers move on to the other provider's nameservers, which serve the same records: mail",
        "keeps flowing. Confirm the other provider answers (step 1). If a provider lost or changed records, the",
        "stack puts them back (`pulumi up`, as above). Do not change the registrar's delegation in a hurry: the",
        "parent zone's NS records are cached for up to two days.",
        "",
    ];
}

function verify(c: Context): string[] {
    return [
        "## 5. Verify",
        "",
        "- The checker passes (exit 0), as in step 1.",
        "- The relays' queues are empty (each prints `0`):",
        "",
        ...c.relays.flatMap((r) => [fence(RUNNABLE, [`${r.exec} postqueue -j | wc -l`]), ""]),
        ...partnerRelays(c.topology).flatMap((p) => [`- ${p.placement.organisation} confirms that ${code(p.hostname)} holds nothing more for us (ask ${code(p.placement.contact)}).`, ""]),
        "- The alarms are back to OK (an OK mail arrives for each), and a test message from outside reaches a",
        "  mailbox on the primary:",
        "",
        fence(PLAIN, [`swaks --to ${postmaster(c.topology)} --header 'Subject: mail test after the incident'`]),
        "",
    ];
}

function userMessages(c: Context): string[] {
    const t = c.topology;
    const domains = t.domains.join(", ");
    const lifetime = humanDuration(t.queueLifetime);
    return [
        "## 6. Notify users",
        "",
        "Send the outage message when the primary is down for more than a few minutes, and the resolution",
        "message once step 5 passes. Fill in the times.",
        "",
        "Outage:",
        "",
        "```text",
        `Subject: Incoming mail for ${domains} is delayed`,
        "",
        `Since <time>, our mail server (${t.primary.hostname}) cannot receive mail. Mail sent to you is`,
        "not lost: our backup mail servers accept it and hold it for up to " + lifetime + ", and deliver it",
        "within seconds of the server's return. Senders do not need to send anything again, and they get",
        "no error.",
        "",
        `Until then, new mail does not appear in your mailbox${t.primary.placement.kind === "aws" ? ", and reading mail (IMAP) may not work" : ""}. We`,
        "expect the server back by <time>, and will tell you when mail is flowing again.",
        "```",
        "",
        "Resolution:",
        "",
        "```text",
        `Subject: Incoming mail for ${domains} is flowing again`,
        "",
        `Our mail server has been receiving mail again since <time>. The mail held by our backup servers`,
        `during the outage (<time> to <time>) has been delivered to your mailbox; it keeps the time it was`,
        "sent, so look further back in your inbox than usual. Nothing was lost. If you expected a message",
        "that has not arrived, tell us its sender and approximate time.",
        "```",
        "",
    ];
}

function review(c: Context): string[] {
    const lifetime = humanDuration(c.topology.queueLifetime);
    return [
        "## 7. Post-incident review",
        "",
        "Within a week, blameless, with everyone involved. Copy this into the incident note and answer each",
        "question with facts (times, counts, log lines):",
        "",
        "```markdown",
        `# Incident review: mail for ${c.topology.domains.join(", ")}, <date>`,
        "",
        "## Timeline (UTC)",
        "- First failure (from logs, not from the alarm):",
        "- First alarm, and to whom it went; first user report:",
        "- Outage notice sent to users:",
        "- Fixed; queues empty; resolution notice sent:",
        "",
        "## Impact",
        "- Which hosts or providers failed, and for how long?",
        "- How many messages waited at each relay, and for how long at most?",
        "- Was any message bounced or lost? (relay logs: `status=bounced`; senders' reports)",
        `- How close did the outage come to the queue lifetime (${lifetime})?`,
        "",
        "## Detection and response",
        "- Did an alarm fire, how long after the failure, and did it reach someone?",
        "- Did the checker show the problem? Did it miss anything?",
        "- Which runbook steps helped, which were wrong or missing? (fix `lib/runbook/`, regenerate)",
        "",
        "## Cause",
        "- What failed, and why? What made it possible?",
        "",
        "## Actions",
        "| action | owner | due |",
        "|---|---|---|",
        "```",
        "",
    ];
}

function alarmTable(c: Context): string[] {
    if (c.alarms.length === 0) return ["## Alarms", "", "This stack declares no alarms.", ""];
    const hostOf = (a: AlarmFacts) => mailHosts(c.topology).find((h) => a.description.includes(h.hostname))?.hostname;
    return [
        "## Alarms",
        "",
        `CloudWatch alarms (AWS names each after its resource name with a suffix). Each notifies the SNS`,
        "subscriptions below when it fires, and again when it is back to OK where marked.",
        "",
        "| alarm | what it means | fires when | goes to | look at |",
        "|---|---|---|---|---|",
        ...c.alarms.map((a) => {
            const host = hostOf(a);
            const goes = a.notifies.length > 0 ? a.notifies.map(code).join(", ") + (a.notifiesOnRecovery ? " (also on OK)" : "") : "nobody (no subscription)";
            return `| ${code(a.name)} (${a.region}) | ${cell(a.description)} | ${cell(a.trigger)} | ${goes} | ${host !== undefined ? `step 3, ${code(host)}` : "step 1"} |`;
        }),
        "",
    ];
}

/**
 * Text from the plan's inputs with each EC2 host's address (a mock value offline, an Elastic IP once
 * deployed) replaced by what it stands for.
 */
function withoutDeployTimeAddresses(plan: Plan, topology: Topology, text: string): string {
    const addresses = (plan.outputs.hostAddresses ?? {}) as Record<string, unknown>;
    let out = text;
    for (const host of mailHosts(topology).filter((h) => h.placement.kind === "aws")) {
        const mock = addresses[host.hostname];
        if (typeof mock === "string" && mock !== "") out = out.split(mock).join(`<${host.hostname}'s Elastic IP>`);
    }
    return out;
}

export function renderRunbook(plan: Plan): string {
    if (plan.topology === undefined) throw new Error(`the plan of stack ${plan.stack} has no topology`);
    const topology = parseTopology(plan.topology);
    const c: Context = {
        plan,
        topology,
        stack: plan.stack,
        relays: relayAccess(plan, topology),
        alarms: alarms(plan).map((a) => ({ ...a, description: withoutDeployTimeAddresses(plan, topology, a.description), trigger: withoutDeployTimeAddresses(plan, topology, a.trigger) })),
        hasAws: mailHosts(topology).some((h) => h.placement.kind === "aws"),
    };
    const lines = [...header(c), ...glance(c), ...assess(c), ...notify(c), ...troubleshoot(c), ...fix(c), ...verify(c), ...userMessages(c), ...review(c), ...alarmTable(c)];
    while (lines.at(-1) === "") lines.pop();
    return `${lines.join("\n")}\n`;
}
