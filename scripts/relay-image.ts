// npm run relay-image:build [-- --rebuild]   (npm run relay-image:base: the first step only)
// Builds relay-image/ on a machine without a Docker engine or a registry, with Debian's buildah and
// podman (npm run lab:setup installs them). Two steps:
//
//   base   the Dockerfile's FROM image (debian:bookworm-slim) as a LOCAL STAND-IN, not the image
//          Docker Hub serves: `debootstrap --variant=minbase` of the same Debian suite, trimmed like
//          the slim image (no docs, man pages, locales, apt caches) and imported into podman's store
//          under that name, so the FROM resolves locally and nothing is pulled (the build runs with
//          --pull=never). Skipped when the store already holds the name; it says which image it is.
//   build  `buildah bud` of relay-image/, tagged mailcontinuity-relay:<digest> with the digest of
//          lib/relay-image.ts (what the relay component tags on a Docker host), in Docker format so
//          HEALTHCHECK is kept (OCI images have no field for it). Runs `base` first when needed.
//          Skipped when that tag exists and was built from the same files (a label holds the hash of
//          every file under relay-image/, subdirectories too), unless --rebuild.
//
// A failure prints the tail of the step's log and exits 1.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { readRelayImage } from "../lib/relay-image";
import { RELAY_IMAGE_REPOSITORY } from "../lib/render/relay-container";

const ROOT = join(__dirname, "..");
export const RELAY_IMAGE_DIR = join(ROOT, "relay-image");
/** On the stand-in base (and so on every image built from it): where it came from. */
export const STAND_IN_LABEL = "org.mailcontinuity.base-stand-in";
/** On the built image: the hash of every file of the build context, subdirectories included. */
export const CONTEXT_LABEL = "org.mailcontinuity.relay-image.context";
const MIRROR = process.env.DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
const SECURITY_MIRROR = process.env.DEBIAN_SECURITY_MIRROR ?? "http://deb.debian.org/debian-security";
export const BUILD_LOG_DIR = "/var/tmp/mailcontinuity-relay-image";
const TAIL_LINES = 40;
const USAGE = "usage: tsx scripts/relay-image.ts [base|build] [--rebuild]";

export class StepError extends Error {}

/** The tag the relay component gives the image on a Docker host: mailcontinuity-relay:<digest>. */
export function relayImageTag(dir = RELAY_IMAGE_DIR): string {
    return `${RELAY_IMAGE_REPOSITORY}:${readRelayImage(dir).digest}`;
}

/**
 * Every file under relay-image/, subdirectories included: what decides whether a tagged image is
 * current. (readRelayImage's digest, which names the tag, reads only the top-level files.)
 */
export function contextHash(dir = RELAY_IMAGE_DIR): string {
    const hash = createHash("sha256");
    const walk = (d: string): void => {
        for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
            const path = join(d, entry.name);
            if (entry.isDirectory()) walk(path);
            else if (entry.isFile()) hash.update(`${relative(dir, path)}\0`).update(readFileSync(path)).update("\0");
        }
    };
    walk(dir);
    return hash.digest("hex").slice(0, 16);
}

/** The Dockerfile's FROM and the Debian suite debootstrap makes it from (debian:<suite>[-slim]). */
export function baseOf(dir = RELAY_IMAGE_DIR): { image: string; suite: string } {
    const from = /^FROM\s+(\S+)\s*$/m.exec(readFileSync(join(dir, "Dockerfile"), "utf8"))?.[1];
    const suite = from === undefined ? undefined : /^debian:([a-z]+)(-slim)?$/.exec(from)?.[1];
    if (from === undefined || suite === undefined) throw new StepError(`relay-image/Dockerfile: FROM ${from ?? "(none)"} is not debian:<suite>[-slim]; no local stand-in is made for it`);
    return { image: from, suite };
}

function podman(args: string[], input?: string): SpawnSyncReturns<string> {
    return spawnSync("podman", args, { encoding: "utf8", input, maxBuffer: 64 * 1024 * 1024 });
}

export function imageExists(ref: string): boolean {
    return podman(["image", "exists", ref]).status === 0;
}

/** Bytes, as `podman images` counts them (all layers). */
export function imageSize(ref: string): number {
    return Number(podman(["image", "inspect", "--format", "{{.Size}}", ref]).stdout.trim());
}

function imageLabel(ref: string, label: string): string {
    const out = podman(["image", "inspect", "--format", `{{index .Labels "${label}"}}`, ref]).stdout.trim();
    return out === "<no value>" ? "" : out;
}

function tail(file: string, extra = ""): string {
    const text = (existsSync(file) ? readFileSync(file, "utf8") : "") + extra;
    const lines = text.trimEnd().split("\n");
    return lines.slice(-TAIL_LINES).join("\n");
}

/** Runs a command with stdout and stderr appended to a log file; true when it exits 0. */
function logged(log: string, command: string, args: string[], cwd?: string): boolean {
    writeFileSync(log, `$ ${command} ${args.join(" ")}\n`, { flag: "a" });
    const r = spawnSync("sh", ["-c", 'exec "$@" >>"$LOG" 2>&1', "sh", command, ...args], { cwd, env: { ...process.env, LOG: log }, encoding: "utf8" });
    if (r.error !== undefined) writeFileSync(log, `${command}: ${r.error.message}\n`, { flag: "a" });
    else if (r.status !== 0) writeFileSync(log, `${command} exited ${r.status ?? r.signal}\n`, { flag: "a" });
    return r.status === 0;
}

function missingCommands(commands: string[]): string[] {
    return commands.filter((c) => spawnSync("sh", ["-c", `command -v ${c}`]).status !== 0);
}

function requireTools(commands: string[]): void {
    if (process.getuid?.() !== 0) throw new StepError("run as root: podman and buildah use root's image store (/var/lib/containers)");
    const missing = missingCommands(commands);
    if (missing.length > 0) throw new StepError(`missing ${missing.join(", ")} (npm run lab:setup installs buildah, podman, runc and debootstrap)`);
}

// The slim image's trimming (debuerreotype's --slimify and its apt settings), so the stand-in and
// the layers built on it are about the size they would be on the real base.
const SLIM_DPKG_EXCLUDES = [
    "path-exclude /usr/share/doc/*",
    "path-include /usr/share/doc/*/copyright",
    "path-exclude /usr/share/groff/*",
    "path-exclude /usr/share/info/*",
    "path-exclude /usr/share/lintian/*",
    "path-exclude /usr/share/linda/*",
    "path-exclude /usr/share/locale/*",
    "path-include /usr/share/locale/locale.alias",
    "path-exclude /usr/share/man/*",
    "",
].join("\n");
const APT_SETTINGS: Record<string, string> = {
    "docker-clean": [
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
        'Dir::Cache::pkgcache "";',
        'Dir::Cache::srcpkgcache "";',
        "",
    ].join("\n"),
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
};

function debianSources(suite: string): string {
    return [
        "Types: deb",
        `URIs: ${MIRROR}`,
        `Suites: ${suite} ${suite}-updates`,
        "Components: main",
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
        "",
        "Types: deb",
        `URIs: ${SECURITY_MIRROR}`,
        `Suites: ${suite}-security`,
        "Components: main",
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
        "",
    ].join("\n");
}

/** Trims a fresh debootstrap tree the way the slim image is trimmed, and makes it a container's root. */
function slimify(tree: string, suite: string): void {
    const write = (path: string, text: string) => {
        mkdirSync(dirname(join(tree, path)), { recursive: true });
        writeFileSync(join(tree, path), text);
    };
    write("etc/dpkg/dpkg.cfg.d/docker", SLIM_DPKG_EXCLUDES);
    write("etc/dpkg/dpkg.cfg.d/docker-apt-speedup", "force-unsafe-io\n");
    for (const [name, text] of Object.entries(APT_SETTINGS)) write(`etc/apt/apt.conf.d/${name}`, text);
    rmSync(join(tree, "etc/apt/sources.list"), { force: true });
    write("etc/apt/sources.list.d/debian.sources", debianSources(suite));
    // What debootstrap copied from this machine, and what a container runtime provides itself.
    for (const path of ["etc/hostname", "etc/resolv.conf", "etc/hosts"]) rmSync(join(tree, path), { force: true });
    write("etc/hostname", "localhost\n");
    // debootstrap unmounts what it mounted inside the tree; never empty a directory that is still a mount.
    const mounted = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1]).filter((m) => m !== undefined && m.startsWith(`${tree}/`));
    if (mounted.length > 0) throw new StepError(`still mounted inside the bootstrapped tree: ${mounted.join(", ")}`);
    const r = spawnSync(
        "sh",
        [
            "-c",
            [
                'cd "$1"',
                "find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete",
                "find usr/share/doc -mindepth 1 -type d -empty -delete",
                "rm -rf usr/share/groff/* usr/share/info/* usr/share/lintian/* usr/share/linda/* usr/share/man/*",
                "find usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +",
                "rm -rf var/cache/apt/*.bin var/cache/apt/archives/*.deb var/lib/apt/lists/* var/log/*.log var/log/apt/* debootstrap",
                "rm -rf dev/* proc/* sys/* run/* tmp/*",
            ].join(" && "),
            "sh",
            tree,
        ],
        { encoding: "utf8" },
    );
    if (r.status !== 0) throw new StepError(`trimming the bootstrapped tree failed: ${r.stderr.trim()}`);
}

export interface StepResult {
    image: string;
    /** Already in podman's store: nothing was done. */
    cached: boolean;
    seconds: number;
    sizeBytes: number;
    /** The base is this script's debootstrap stand-in (its label says so). */
    standIn?: boolean;
}

/** Step 1: the stand-in for the Dockerfile's FROM in podman's store, made once. */
export function ensureBase(log: (m: string) => void = () => {}, dir = RELAY_IMAGE_DIR): StepResult {
    requireTools(["podman", "debootstrap", "tar"]);
    const { image, suite } = baseOf(dir);
    if (imageExists(image)) {
        const origin = imageLabel(image, STAND_IN_LABEL);
        log(`base: ${image} is in podman's store: ${origin !== "" ? `the local stand-in (${origin})` : "NOT this script's stand-in (no " + STAND_IN_LABEL + " label); used as it is"}`);
        return { image, cached: true, seconds: 0, sizeBytes: imageSize(image), standIn: origin !== "" };
    }
    const started = Date.now();
    mkdirSync(BUILD_LOG_DIR, { recursive: true });
    const logFile = join(BUILD_LOG_DIR, `base-${suite}.log`);
    writeFileSync(logFile, "");
    const work = mkdtempSync("/var/tmp/mailcontinuity-base-");
    const tree = join(work, "rootfs");
    try {
        log(`base: ${image} is not in podman's store; making a local stand-in: debootstrap --variant=minbase ${suite} from ${MIRROR} (about a minute)`);
        if (!logged(logFile, "debootstrap", ["--variant=minbase", suite, tree, MIRROR])) {
            // debootstrap's own log has the reason (a package that failed to unpack, a mirror error).
            const own = join(tree, "debootstrap", "debootstrap.log");
            throw new StepError(`debootstrap failed; the tail of its output (${logFile}):\n${tail(logFile)}${existsSync(own) ? `\n--- the tail of debootstrap's own log:\n${tail(own)}` : ""}`);
        }
        slimify(tree, suite);
        const tarball = join(work, "rootfs.tar");
        if (!logged(logFile, "tar", ["--numeric-owner", "-C", tree, "-cf", tarball, "."])) throw new StepError(`tar of the tree failed:\n${tail(logFile)}`);
        const origin = `debootstrap --variant=minbase ${suite} ${MIRROR}, made ${new Date().toISOString()}; not pulled`;
        const changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["bash"]',
            `LABEL ${STAND_IN_LABEL}="${origin}"`,
        ].flatMap((c) => ["--change", c]);
        if (!logged(logFile, "podman", ["import", "--quiet", ...changes, "--message", `local stand-in for ${image}: ${origin}`, tarball, image])) {
            throw new StepError(`podman import failed:\n${tail(logFile)}`);
        }
        const seconds = (Date.now() - started) / 1000;
        const sizeBytes = imageSize(image);
        log(`base: ${image} imported in ${seconds.toFixed(0)} s (${(sizeBytes / 1e6).toFixed(0)} MB): the LOCAL debootstrap stand-in, not the image a registry serves`);
        return { image, cached: false, seconds, sizeBytes, standIn: true };
    } finally {
        rmSync(work, { recursive: true, force: true });
    }
}

/** Step 2: relay-image/ built with buildah as mailcontinuity-relay:<digest>. */
export function buildImage(options: { rebuild?: boolean; log?: (m: string) => void; dir?: string } = {}): StepResult {
    const log = options.log ?? (() => {});
    const dir = options.dir ?? RELAY_IMAGE_DIR;
    requireTools(["buildah", "podman"]);
    const image = relayImageTag(dir);
    const context = contextHash(dir);
    if (!options.rebuild && imageExists(image) && imageLabel(image, CONTEXT_LABEL) === context) {
        log(`build: ${image} is in podman's store, built from these relay-image/ files; --rebuild builds it again`);
        return { image, cached: true, seconds: 0, sizeBytes: imageSize(image) };
    }
    const base = ensureBase(log, dir);
    const previous = imageExists(image) ? podman(["image", "inspect", "--format", "{{.Id}}", image]).stdout.trim() : "";
    mkdirSync(BUILD_LOG_DIR, { recursive: true });
    const logFile = join(BUILD_LOG_DIR, `build-${readRelayImage(dir).digest}.log`);
    writeFileSync(logFile, "");
    const started = Date.now();
    log(`build: buildah bud ${relative(ROOT, dir)}/ -> ${image} (FROM ${base.image}: ${base.standIn ? "the local debootstrap stand-in" : "as found in podman's store"}, nothing pulled)`);
    const ok = logged(logFile, "buildah", [
        "bud",
        "--network",
        "host",
        "--isolation",
        "chroot",
        "--pull=never",
        "--format",
        "docker",
        "--layers=false",
        // A failed build leaves no working container behind.
        "--force-rm",
        "--label",
        `org.mailcontinuity.relay-image.digest=${readRelayImage(dir).digest}`,
        "--label",
        `${CONTEXT_LABEL}=${context}`,
        "-t",
        image,
        dir,
    ]);
    if (!ok) throw new StepError(`buildah bud failed; the last ${TAIL_LINES} lines of ${logFile}:\n${tail(logFile)}`);
    const seconds = (Date.now() - started) / 1000;
    if (previous !== "") {
        // The image the tag named before (a --rebuild): removed unless a container still uses it.
        const now = podman(["image", "inspect", "--format", "{{.Id}}", image]).stdout.trim();
        if (now !== previous) podman(["rmi", previous]);
    }
    if (dir === RELAY_IMAGE_DIR) pruneOtherBuilds(image, log);
    const sizeBytes = imageSize(image);
    log(`build: ${image} built in ${seconds.toFixed(1)} s, ${(sizeBytes / 1e6).toFixed(0)} MB (log: ${logFile})`);
    return { image, cached: false, seconds, sizeBytes };
}

/** Earlier builds of the relay image (other digests) that no container uses, and their logs: removed. */
function pruneOtherBuilds(current: string, log: (m: string) => void): void {
    for (const name of readdirSync(BUILD_LOG_DIR)) {
        if (/^build-[0-9a-f]+\.log$/.test(name) && name !== `build-${current.split(":")[1]}.log`) rmSync(join(BUILD_LOG_DIR, name), { force: true });
    }
    const tags = podman(["images", "--format", "{{.Repository}}:{{.Tag}}", `${RELAY_IMAGE_REPOSITORY}`]).stdout.split("\n").filter(Boolean);
    for (const tag of tags) {
        if (tag.endsWith(`/${current}`) || tag === current) continue;
        // Without --force, podman refuses an image a container (of a lab still running) uses.
        if (podman(["rmi", tag]).status === 0) log(`build: removed the earlier build ${tag}`);
    }
}

function main(): void {
    let values: { rebuild?: boolean; help?: boolean };
    let positionals: string[];
    try {
        ({ values, positionals } = parseArgs({ options: { rebuild: { type: "boolean" }, help: { type: "boolean", short: "h" } }, allowPositionals: true }));
    } catch (error) {
        process.stderr.write(`relay-image: ${(error as Error).message}\n${USAGE}\n`);
        process.exit(2);
    }
    if (values.help) {
        process.stdout.write(`${USAGE}\n`);
        return;
    }
    const step = positionals[0] ?? "build";
    if (positionals.length > 1 || !["base", "build"].includes(step)) {
        process.stderr.write(`${USAGE}\n`);
        process.exit(2);
    }
    const log = (m: string) => process.stderr.write(`relay-image: ${m}\n`);
    try {
        if (step === "base") ensureBase(log);
        else buildImage({ rebuild: values.rebuild, log });
    } catch (error) {
        if (!(error instanceof StepError)) throw error;
        process.stderr.write(`relay-image: ${error.message}\n`);
        process.exit(1);
    }
}

if (require.main === module) main();
