// Facts about EC2 that the model needs before any API is asked.

export type Architecture = "x86_64" | "arm64";

// Graviton families carry a "g" right after the generation number (t4g, m7g, c7gn, r8gd, x2gd, im4gn,
// is4gen); a1 was the first.
const GRAVITON_FAMILY_RE = /^(a1|[a-z]+\d+g[a-z]*)$/;

export function architectureOf(instanceType: string): Architecture {
    return GRAVITON_FAMILY_RE.test(instanceType.split(".")[0]) ? "arm64" : "x86_64";
}

/** The Docker platform an EC2 relay builds its image for. */
export function dockerPlatformOf(instanceType: string): "linux/amd64" | "linux/arm64" {
    return architectureOf(instanceType) === "arm64" ? "linux/arm64" : "linux/amd64";
}

/**
 * Why a host with `ipv6` cannot get an address from this subnet (it has no IPv6 block), or undefined.
 * The region's default subnets have none until one is added by hand (README: IPv6).
 */
export function ipv6SubnetProblem(hostname: string, subnet: { id: string; ipv6CidrBlock?: string }, placement: { region: string; subnetId?: string }): string | undefined {
    if (subnet.ipv6CidrBlock) return undefined;
    const which = placement.subnetId === undefined ? `${placement.region}a's default subnet` : "subnet";
    return `${hostname}: ipv6 needs a subnet with an IPv6 block, and ${which} ${subnet.id} has none: associate one with its VPC and the subnet and route ::/0 to the internet gateway (README: IPv6), or give a subnetId that has one`;
}
