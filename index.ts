// The stack: read and validate the topology, then declare everything from it.
import * as path from "node:path";
import { assertDeployable, loadMailboxPasswordHashes, loadTopology } from "./components/config";
import { MailContinuity } from "./components/mail-continuity";
import { readRelayImage } from "./lib/relay-image";
import { siteApplyScriptsOf } from "./lib/render/site-apply";

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
/** Set these at the registrar, for each domain: both providers' nameservers. */
export const nameservers = mail.nameservers;
/** Serve this at https://mta-sts.<domain>/.well-known/mta-sts.txt (see README). */
export const mtaStsPolicy = mail.mtaStsPolicy;
/** For each site's own server: the script that applies its Postfix routing (README "Sites"; npm run site-config writes them). */
export const siteApplyScripts = siteApplyScriptsOf(topology);
