// The stack: read and validate the topology, then declare everything from it.
import * as path from "node:path";
import { assertDeployable, loadMailboxPasswordHashes, loadTopology } from "./components/config";
import { MailContinuity } from "./components/mail-continuity";
import { readRelayImage } from "./lib/relay-image";
import { siteApplyScriptsOf } from "./lib/render/site-apply";
import { partnerConfigsOf } from "./lib/render/partner";

const topology = loadTopology();
assertDeployable(topology);
const mail = new MailContinuity("mail", {
    topology,
    // Pulumi runs the program in the project directory, where the relative build context resolves.
    relayImage: readRelayImage(path.join(__dirname, "relay-image"), "relay-image"),
    mailboxPasswordHashes: loadMailboxPasswordHashes(topology),
});

/** MX priority, host, address and role, most preferred first. */
export const mxTable = mail.mxTable;
/** Each mail host's public address (Elastic IPs, Docker hosts, an external primary). */
export const hostAddresses = mail.hostAddresses;
/** Each IPv6 address of a host that has one (an EC2 host's is its instance's: a replacement gets another). */
export const hostAddresses6 = mail.hostAddresses6;
/** Set these at the registrar, for each domain: both providers' nameservers. */
export const nameservers = mail.nameservers;
/** The MTA-STS policy, which the stack serves at https://mta-sts.<domain>/.well-known/mta-sts.txt (README). */
export const mtaStsPolicy = mail.mtaStsPolicy;
/** CloudFront's name for that site: mta-sts.<domain> is a CNAME to it at both providers (npm run check --outputs). */
export const mtaStsHost = mail.mtaStsHost;
/** The site certificate's DNS-validation CNAMEs (name, value), published at both providers. */
export const mtaStsValidationRecords = mail.mtaStsValidationRecords;
/** DKIM selector -> the TXT value published at <selector>._domainkey.<domain> (the key is made by the stack). */
export const dkimRecords = mail.dkimRecords;
/**
 * An external primary signs with this key (secret; `pulumi stack output --show-secrets dkimSigningKey`):
 * the stack cannot install it on a server it does not run. Absent for a primary on EC2, which gets it itself.
 */
export const dkimSigningKey = topology.primary.placement.kind === "external" ? mail.dkimSigning?.privateKeyPem : undefined;
/** The ACME challenge zone's nameservers (tls.acme): its delegation at both providers. */
export const acmeChallengeNameservers = mail.acmeChallengeNameservers;
/** For each site's own server: the script that applies its Postfix routing (README "Sites"; npm run site-config writes them). */
export const siteApplyScripts = siteApplyScriptsOf(topology);
/**
 * For each partner's MX (kind: partner): what its operator installs to relay for us (README "Partner MX";
 * npm run partner-config writes it as files). A changed recipient list changes this output.
 */
export const partnerConfig = partnerConfigsOf(topology);
