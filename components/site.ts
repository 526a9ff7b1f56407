// A site's own mail server on EC2 (the "mail switch"): the primary's kind of host (mail volume,
// snapshots, Postfix delivering to Maildirs, Dovecot), configured with the site's routing
// (lib/render/sites.ts) and its users' IMAP logins. The primary forwards the site users' mail here.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsPrimaryPlacement, Topology } from "../lib/topology/schema";
import { renderSiteCloudInit } from "../lib/render/cloud-init";
import { dovecotUsersFile, renderMailboxUsersApply } from "../lib/render/primary-apply";
import { renderSiteApply } from "../lib/render/site-apply";
import { declareReverseDns } from "./ec2-host";
import { declareApplyStep, declareMailServer, type MailServer } from "./mail-server";

export interface SiteMailHostArgs {
    topology: Topology;
    site: string;
    hostname: string;
    placement: AwsPrimaryPlacement;
    /** address -> Dovecot password hash, a secret; the site's users among `mailboxes` log in here. */
    mailboxPasswordHashes: pulumi.Input<Record<string, string>>;
    provider: aws.Provider;
}

export class SiteMailHost extends pulumi.ComponentResource {
    readonly hostname: string;
    readonly publicIp: pulumi.Output<string>;
    /** With `ipv6`: the instance's IPv6 address. */
    readonly publicIpv6?: pulumi.Output<string>;
    private readonly server: MailServer;
    private readonly args: SiteMailHostArgs;
    private readonly resourceName: string;

    constructor(name: string, args: SiteMailHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:site:SiteMailHost", name, {}, opts);
        const { topology, site, hostname, placement, provider } = args;
        this.args = args;
        this.hostname = hostname;
        this.resourceName = name;
        this.server = declareMailServer(this, name, {
            hostname,
            placement,
            description: `site ${site} mail server ${hostname}`,
            userData: (mailVolumeId) => renderSiteCloudInit(topology, { hostname, mailVolumeId }),
            adminKeys: topology.admin.sshKeys,
            provider,
        });
        // The routing the stack hands an external site server as a script, applied here on every change.
        declareApplyStep(this, name, "config", this.server.host, renderSiteApply(topology, site));
        const mine = topology.mailboxes.filter((m) => topology.recipientSites[m] === site);
        const users = pulumi.output(args.mailboxPasswordHashes).apply((hashes) => renderMailboxUsersApply(dovecotUsersFile(hashes, mine)));
        declareApplyStep(this, name, "mailboxes", this.server.host, pulumi.secret(users));
        this.publicIp = this.server.host.publicIp;
        if (this.server.host.ipv6Address !== undefined) this.publicIpv6 = this.server.host.ipv6Address;
        this.registerOutputs({ publicIp: this.publicIp });
    }

    /** PTR for the Elastic IP, when `reverseDns` is on (AWS needs the A record to resolve first). */
    addReverseDns(forwardRecords: pulumi.Resource[]): aws.ec2.EipDomainName | undefined {
        if (!this.args.placement.reverseDns) return undefined;
        return declareReverseDns(this, this.resourceName, this.server.host, this.args.hostname, this.args.provider, forwardRecords);
    }
}
