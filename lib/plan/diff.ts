// What `pulumi up` would do to go from one offline plan to another, decided the way the engine decides:
// resources matched by type and name (or an alias), inputs compared minus ignoreChanges, the provider's
// replacement table, resource options, and replacements that cascade to dependents.
import { isDeepStrictEqual } from "node:util";
import type { Plan, PlannedResource } from "./report";
import { replacementRuleFor } from "./replacement";
import { architectureOf } from "../topology/ec2";

export type Operation = "create" | "update" | "stop-start" | "replace" | "delete" | "same";

export interface ResourceChange {
    type: string;
    name: string;
    operation: Operation;
    /** Inputs that differ (after ignoreChanges). */
    changed: string[];
    /** The inputs, or the replaced resource, that force a replacement. */
    because: string[];
    /** For replace: the old one goes first. For delete: the engine refuses (protect) or leaves it (retainOnDelete). */
    deleteBeforeReplace?: boolean;
    protect?: boolean;
    retainOnDelete?: boolean;
    /** Renamed through an alias: the name it had before. */
    movedFrom?: string;
}

function key(r: Pick<PlannedResource, "type" | "name">): string {
    return `${r.type}::${r.name}`;
}

function topLevel(path: string): string {
    return path.split(/[.[]/)[0];
}

function valueAt(inputs: Record<string, unknown>, path: string): unknown {
    return path.split(".").reduce<unknown>((v, k) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined), inputs);
}

/** Inputs that differ, by top-level name; ignoreChanges entries hide theirs, as the engine does. */
function changedInputs(before: PlannedResource, after: PlannedResource): string[] {
    const ignored = new Set((after.options.ignoreChanges ?? []).map(topLevel));
    const names = new Set([...Object.keys(before.inputs), ...Object.keys(after.inputs)]);
    return [...names].filter((n) => !ignored.has(n) && !isDeepStrictEqual(before.inputs[n], after.inputs[n])).sort();
}

function replacingInputs(before: PlannedResource, after: PlannedResource, changed: string[]): string[] {
    const rule = replacementRuleFor(after.type);
    const paths = [...(rule?.replaceOn ?? []), ...(after.options.replaceOnChanges ?? []).map((p) => p.replace(/\[\*\]$/, ""))];
    const forcing = paths.filter((p) => changed.includes(topLevel(p)) && !isDeepStrictEqual(valueAt(before.inputs, p), valueAt(after.inputs, p)));
    if (after.type === "aws:ec2/instance:Instance" && changed.includes("instanceType")) {
        const [from, to] = [String(before.inputs.instanceType), String(after.inputs.instanceType)];
        if (architectureOf(from) !== architectureOf(to)) forcing.push(`instanceType (${from} -> ${to} changes the architecture)`);
    }
    return [...new Set(forcing)];
}

function mentions(value: unknown, id: string): boolean {
    if (typeof value === "string") return value === id || value.includes(id);
    if (Array.isArray(value)) return value.some((v) => mentions(v, id));
    if (value !== null && typeof value === "object") return Object.values(value).some((v) => mentions(v, id));
    return false;
}

/** Plans written before resource options and ids were recorded read as having none. */
function normalised(plan: Plan): Plan {
    return { ...plan, resources: plan.resources.map((r) => ({ ...r, id: r.id ?? "", options: r.options ?? {} })) };
}

export function diffPlans(beforePlan: Plan, afterPlan: Plan): ResourceChange[] {
    const [before, after] = [normalised(beforePlan), normalised(afterPlan)];
    const old = new Map(before.resources.map((r) => [key(r), r]));
    const matched = new Set<string>();
    const changes = new Map<string, ResourceChange>();
    const pairs: [PlannedResource, PlannedResource][] = [];

    for (const r of after.resources) {
        let previous = old.get(key(r));
        let movedFrom: string | undefined;
        if (previous === undefined) {
            for (const alias of r.options.aliases ?? []) {
                previous = old.get(key({ type: r.type, name: alias }));
                if (previous !== undefined) {
                    movedFrom = alias;
                    break;
                }
            }
        }
        if (previous === undefined) {
            changes.set(key(r), { type: r.type, name: r.name, operation: "create", changed: [], because: [] });
            continue;
        }
        matched.add(key(previous));
        pairs.push([previous, r]);
        const changed = changedInputs(previous, r);
        const because = replacingInputs(previous, r, changed);
        // The explicit AWS provider is named by its region: another region means new resources there
        // (aws 7.x replaces every regional resource whose region changes). Route53 is global.
        if (previous.provider !== r.provider && r.provider !== null && !r.type.startsWith("aws:route53/")) {
            because.push(`provider ${previous.provider ?? "default"} -> ${r.provider}`);
        }
        const rule = replacementRuleFor(r.type);
        const stopStart = changed.some((c) => rule?.stopStartOn?.includes(c));
        const operation: Operation = because.length > 0 ? "replace" : changed.length === 0 ? "same" : stopStart ? "stop-start" : "update";
        changes.set(key(r), {
            type: r.type,
            name: r.name,
            operation,
            changed,
            because,
            ...(operation === "replace" ? { deleteBeforeReplace: r.options.deleteBeforeReplace ?? false, protect: r.options.protect ?? false } : {}),
            ...(movedFrom !== undefined ? { movedFrom } : {}),
        });
    }

    // A replaced resource gets a new id: every input that names the old one changes, and where such an
    // input forces a replacement, the dependent is replaced too (the engine's dependent replacements).
    let grew = true;
    while (grew) {
        grew = false;
        for (const [previous, r] of pairs) {
            const change = changes.get(key(r))!;
            if (change.operation === "replace") continue;
            for (const other of pairs) {
                const otherChange = changes.get(key(other[1]))!;
                if (otherChange.operation !== "replace" || other[0].id === "") continue;
                const naming = Object.keys(r.inputs).filter((k) => mentions(previous.inputs[k], other[0].id));
                if (naming.length === 0) continue;
                const rule = replacementRuleFor(r.type);
                const forcing = naming.filter((k) => rule?.replaceOn.some((p) => topLevel(p) === k) || (r.options.replaceOnChanges ?? []).some((p) => topLevel(p) === k));
                change.changed = [...new Set([...change.changed, ...naming])].sort();
                if (forcing.length > 0) {
                    change.operation = "replace";
                    change.because = [...change.because, ...forcing.map((k) => `${k} (names ${other[1].name}, replaced)`)];
                    change.deleteBeforeReplace = r.options.deleteBeforeReplace ?? false;
                    change.protect = r.options.protect ?? false;
                    grew = true;
                } else if (change.operation === "same") {
                    change.operation = "update";
                }
            }
        }
    }

    for (const r of before.resources) {
        if (matched.has(key(r))) continue;
        changes.set(key(r), {
            type: r.type,
            name: r.name,
            operation: "delete",
            changed: [],
            because: [],
            protect: r.options.protect ?? false,
            retainOnDelete: r.options.retainOnDelete ?? false,
        });
    }
    return [...changes.values()].sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
}
