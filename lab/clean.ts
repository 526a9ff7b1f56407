// npm run lab:clean — removes what a lab left with --keep (or a killed run): its namespaces, their
// processes and resolver files. Only names the lab makes (mcl-<id>-*) are touched.
import { spawnSync } from "node:child_process";
import { LabNetwork } from "./net";

const ids = new Set(
    spawnSync("ip", ["netns", "list"], { encoding: "utf8" })
        .stdout.split("\n")
        .map((l) => /^mcl-([a-z0-9]+)-/.exec(l)?.[1])
        .filter((id): id is string => id !== undefined),
);
for (const id of ids) {
    new LabNetwork(id, { existing: true }).destroy();
    console.log(`removed lab ${id}`);
}
if (ids.size === 0) console.log("no lab namespaces found");
