import * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../lib/topology/schema";
import { TopologyError, parseTopology } from "../lib/topology/validate";

/**
 * Reads and validates `mailcontinuity:topology` before any resource is declared. A RunError makes
 * Pulumi print the problems without a stack trace and exit non-zero.
 */
export function loadTopology(config: pulumi.Config = new pulumi.Config("mailcontinuity")): Topology {
    try {
        return parseTopology(config.requireObject<unknown>("topology"));
    } catch (error) {
        if (error instanceof TopologyError) throw new pulumi.RunError(error.message);
        throw error;
    }
}
