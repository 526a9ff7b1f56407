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
