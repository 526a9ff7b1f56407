import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface FirewallArgs {
    description: string;
    /** Ports open to the whole Internet (mail must reach us from anywhere). */
    publicTcpPorts: number[];
    /** SSH source; no SSH rule at all when absent. */
    adminSshCidr?: string;
    /** The host has an IPv6 address: it also sends over IPv6 (outbound ::/0). */
    ipv6?: boolean;
    /** The placement's subnet's VPC; the region's default VPC when absent. */
    vpcId?: pulumi.Input<string>;
}

/**
 * A security group whose rules are separate resources, so adding a port shows as one added rule in a
 * preview instead of a replaced group.
 */
export class Firewall extends pulumi.ComponentResource {
    readonly securityGroupId: pulumi.Output<string>;

    constructor(name: string, args: FirewallArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mailcontinuity:network:Firewall", name, {}, opts);
        const group = new aws.ec2.SecurityGroup(
            `${name}-sg`,
            { description: args.description, tags: { Name: name }, ...(args.vpcId !== undefined ? { vpcId: args.vpcId } : {}) },
            { parent: this },
        );
        // Open on IPv6 as on IPv4 (::/0 beside 0.0.0.0/0), whether the host has an IPv6 address yet or
        // not: a rule for a family the instance lacks is inert, and these rules predate IPv6 addresses.
        for (const port of args.publicTcpPorts) {
            for (const [family, cidr] of [["ipv4", "0.0.0.0/0"], ["ipv6", "::/0"]] as const) {
                new aws.vpc.SecurityGroupIngressRule(
                    `${name}-in-${port}-${family}`,
                    {
                        securityGroupId: group.id,
                        ipProtocol: "tcp",
                        fromPort: port,
                        toPort: port,
                        ...(family === "ipv4" ? { cidrIpv4: cidr } : { cidrIpv6: cidr }),
                        description: `tcp/${port} from anywhere`,
                    },
                    { parent: this },
                );
            }
        }
        if (args.adminSshCidr !== undefined) {
            new aws.vpc.SecurityGroupIngressRule(
                `${name}-in-22-admin`,
                { securityGroupId: group.id, ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: args.adminSshCidr, description: "SSH from the admin network" },
                { parent: this },
            );
        }
        new aws.vpc.SecurityGroupEgressRule(
            `${name}-out-all`,
            { securityGroupId: group.id, ipProtocol: "-1", cidrIpv4: "0.0.0.0/0", description: "outbound mail, packages, DNS" },
            { parent: this },
        );
        if (args.ipv6 === true) {
            // Without it, a connection to an IPv6 address (a relay handing mail to the primary's AAAA, a
            // bounce to a receiver with one) hangs until its timeout instead of going out.
            new aws.vpc.SecurityGroupEgressRule(
                `${name}-out-all-ipv6`,
                { securityGroupId: group.id, ipProtocol: "-1", cidrIpv6: "::/0", description: "outbound mail over IPv6" },
                { parent: this },
            );
        }
        this.securityGroupId = group.id;
        this.registerOutputs({ securityGroupId: this.securityGroupId });
    }
}
