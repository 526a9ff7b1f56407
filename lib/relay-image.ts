// The files of relay-image/, for building on a remote Docker host or shipping in EC2 user data.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export interface RelayImage {
    dir: string;
    /**
     * The build context as the Docker provider is given it: relative to the project, because a path
     * of one checkout would differ on the next machine and change the image's inputs on every run.
     */
    context: string;
    /**
     * Build inputs by path relative to `dir`, "/"-separated and including subdirectories ("lib/env.sh");
     * documentation and dotfiles excluded: they do not change the image.
     */
    files: Record<string, string>;
    /** Changes whenever a build input does, so a new image rolls the containers. */
    digest: string;
}

/** Build inputs under `dir`, as sorted paths relative to `root`. */
function buildInputs(root: string, dir = ""): string[] {
    const names: string[] = [];
    for (const n of readdirSync(join(root, dir)).sort()) {
        if (n.startsWith(".")) continue;
        const path = dir === "" ? n : `${dir}/${n}`;
        const stat = statSync(join(root, path));
        if (stat.isDirectory()) names.push(...buildInputs(root, path));
        else if (stat.isFile() && !n.endsWith(".md")) names.push(path);
    }
    return names;
}

export function readRelayImage(dir: string, context: string = dir): RelayImage {
    const names = buildInputs(dir).sort();
    const files = Object.fromEntries(names.map((n) => [n, readFileSync(join(dir, n), "utf8")]));
    const hash = createHash("sha256");
    for (const n of names) hash.update(`${n}\0${files[n]}\0`);
    return { dir, context, files, digest: hash.digest("hex").slice(0, 12) };
}
