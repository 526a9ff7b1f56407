// npm run lab:clean — removes what a lab left with --keep (or a killed run): its namespaces, their
// processes and resolver files, and (--relay-runtime container) its relay containers and their queue
// volumes. Only names the lab makes (mcl-<id>-*) are touched, in podman's store too.
import { spawnSync } from "node:child_process";
import { podman, removeLabContainers } from "./container-runtime";
import { LabNetwork } from "./net";

const LAB_NAME = /^mcl-([a-z0-9]+)-/;

function labIds(names: string[]): Set<string> {
    return new Set(names.map((n) => LAB_NAME.exec(n)?.[1]).filter((id): id is string => id !== undefined));
}

// Containers first, so they stop cleanly before their namespaces (and anything left in them) go.
if (spawnSync("sh", ["-c", "command -v podman"]).status === 0) {
    const lines = (args: string[]) => podman(args).stdout.split("\n").filter(Boolean);
    const containers = labIds([...lines(["ps", "--all", "--format", "{{.Names}}"]), ...lines(["volume", "ls", "--format", "{{.Name}}"])]);
    for (const id of containers) {
        const removed = removeLabContainers(id, { volumes: true });
        console.log(`removed lab ${id}: ${removed.length > 0 ? removed.join(", ") : "nothing (podman refused; see podman ps -a)"}`);
    }
    if (containers.size === 0) console.log("no lab containers or volumes found");
}

const namespaces = labIds(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.split("\n"));
for (const id of namespaces) {
    new LabNetwork(id, { existing: true }).destroy();
    console.log(`removed lab ${id}: namespaces mcl-${id}-*`);
}
if (namespaces.size === 0) console.log("no lab namespaces found");
