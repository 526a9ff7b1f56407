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
        } else {
            config[key] = typeof value === "string" ? value : JSON.stringify(value);
        }
    }
    return { config, secretKeys };
}
