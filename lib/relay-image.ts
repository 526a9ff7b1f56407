// The files of relay-image/, for building on a remote Docker host or shipping in EC2 user data.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export interface RelayImage {
    dir: string;
    /** Build inputs by file name (documentation excluded: it does not change the image). */
    files: Record<string, string>;
    /** Changes whenever a build input does, so a new image rolls the containers. */
    digest: string;
}

export function readRelayImage(dir: string): RelayImage {
    const names = readdirSync(dir)
        .filter((n) => !n.endsWith(".md") && !n.startsWith(".") && statSync(join(dir, n)).isFile())
        .sort();
    const files = Object.fromEntries(names.map((n) => [n, readFileSync(join(dir, n), "utf8")]));
    const hash = createHash("sha256");
    for (const n of names) hash.update(`${n}\0${files[n]}\0`);
    return { dir, files, digest: hash.digest("hex").slice(0, 12) };
}
