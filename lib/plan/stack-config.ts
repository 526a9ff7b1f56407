// Reads Pulumi.<stack>.yaml the way the Pulumi CLI hands config to a program: "ns:key" -> string,
// structured values as JSON. Encrypted values cannot be read offline and stay secrets.
import { load } from "js-yaml";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { SECRET } from "./mocks";

export interface StackConfig {
    config: Record<string, string>;
    secretKeys: string[];
}

export function stackFile(projectDir: string, stack: string): string {
    return join(projectDir, `Pulumi.${stack}.yaml`);
}

export function listStacks(projectDir: string): string[] {
    return readdirSync(projectDir)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

/**
 * What an encrypted leaf of a structured secret reads as offline. It has the form of a Dovecot password
 * hash ({SCHEME}...) so that the program's checks of the shape still run; the plan never shows it.
 */
export const ENCRYPTED_LEAF = "{ENCRYPTED}not-readable-offline";

function isSecure(value: unknown): boolean {
    return value !== null && typeof value === "object" && "secure" in value;
}

function hasSecureLeaf(value: unknown): boolean {
    if (isSecure(value)) return true;
    if (value !== null && typeof value === "object") return Object.values(value).some(hasSecureLeaf);
    return false;
}

function maskSecureLeaves(value: unknown): unknown {
    if (isSecure(value)) return ENCRYPTED_LEAF;
    if (Array.isArray(value)) return value.map(maskSecureLeaves);
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecureLeaves(v)]));
    return value;
}

export function readStackConfig(file: string, project: string): StackConfig {
    if (!existsSync(file)) {
        const dir = dirname(file);
        throw new Error(`no ${file}; stack configs in ${dir}: ${listStacks(dir).join(", ") || "none"}`);
    }
    const doc = load(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [rawKey, value] of Object.entries(doc?.config ?? {})) {
        const key = rawKey.includes(":") ? rawKey : `${project}:${rawKey}`;
        if (value !== null && typeof value === "object" && "secure" in value) {
            config[key] = SECRET;
            secretKeys.push(key);
        } else if (hasSecureLeaf(value)) {
            // Structured secrets (`pulumi config set --secret --path`): the shape stays readable, the leaves do not.
            config[key] = JSON.stringify(maskSecureLeaves(value));
            secretKeys.push(key);
        } else {
            config[key] = typeof value === "string" ? value : JSON.stringify(value);
        }
    }
    return { config, secretKeys };
}

/** The topology exactly as a stack file writes it (before validation), a fresh copy each call. */
export function readRawTopology(projectDir: string, stack: string, project = "mailcontinuity"): Record<string, unknown> {
    const raw = readStackConfig(stackFile(projectDir, stack), project).config[`${project}:topology`];
    if (raw === undefined) throw new Error(`${stackFile(projectDir, stack)} has no ${project}:topology`);
    return JSON.parse(raw) as Record<string, unknown>;
}
