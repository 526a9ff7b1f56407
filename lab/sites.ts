// The sites' own mail servers (the "mail switch" topology): a stock Postfix per site, configured by
// the apply script the stack gives an operator for that server (renderSiteApply), delivering its
// users to Maildirs. The switch is the lab's primary.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderSiteApply } from "../lib/render/site-apply";
import type { Lab } from "./lab";
import { hostKey } from "./net";
import { writePostfixInstance } from "./postfix-instance";

export interface SiteServer {
    site: string;
    hostname: string;
    address: string;
    /** Its namespace. */
    key: string;
}

export class SiteServers {
    constructor(private readonly lab: Lab) {}

    get all(): SiteServer[] {
        return Object.entries(this.lab.topology.sites).map(([site, spec]) => {
            const placement = spec.server!.placement;
            if (placement.kind !== "external") throw new Error(`site ${site}: the lab needs fixed addresses (kind: external)`);
            return { site, hostname: spec.server!.hostname, address: placement.address, key: hostKey(spec.server!.hostname) };
        });
    }

    of(site: string): SiteServer {
        const found = this.all.find((s) => s.site === site);
        if (found === undefined) throw new Error(`site ${site} is not in the lab topology`);
        return found;
    }

    private dir(site: string): string {
        return this.lab.path(`site-${site}`);
    }

    conf(site: string): string {
        return join(this.dir(site), "etc");
    }

    mailboxBase(site: string): string {
        return join(this.dir(site), "mail");
    }

    maillog(site: string): string {
        return join(this.dir(site), "maillog");
    }

    /** A plain Postfix for the site (its own name, nothing of ours), then the stack's site script. */
    configure(server: SiteServer): void {
        mkdirSync(this.dir(server.site), { recursive: true });
        writePostfixInstance(this.lab.dir, this.dir(server.site), [
            ["myhostname", server.hostname],
            ["mydestination", "localhost"],
            ["mynetworks", "127.0.0.0/8"],
            ["inet_interfaces", "all"],
            ["inet_protocols", "ipv4"],
            ["smtpd_banner", "$myhostname ESMTP"],
            // As a careful site admin has it: relaying refused outright (Postfix's default defers, 4xx).
            ["smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination"],
        ]);
        const script = join(this.dir(server.site), "site-apply.sh");
        writeFileSync(script, renderSiteApply(this.lab.topology, server.site, { configDir: this.conf(server.site), mailboxBase: this.mailboxBase(server.site) }));
        const r = this.lab.net.exec(server.key, ["sh", script]);
        if (r.status !== 0) throw new Error(`site ${server.site}'s apply script failed (${r.status}): ${(r.stderr + r.stdout).trim()}`);
    }

    start(site: string): void {
        this.lab.net.exec(this.of(site).key, ["postfix", "-c", this.conf(site), "start"]);
    }

    stop(site: string): void {
        this.lab.net.exec(this.of(site).key, ["postfix", "-c", this.conf(site), "stop"]);
    }
}
