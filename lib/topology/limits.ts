// Limits of the providers that the program can know before it asks them: a config that would cross one
// is refused with the limit and its cause named, instead of failing halfway through a `pulumi up`.
import type { Problem } from "./rules";
import type { Topology } from "./schema";
import { LONGEST_VOLUME_ID, USER_DATA_LIMIT_BYTES, renderPrimaryCloudInit, renderRelayCloudInit } from "../render/cloud-init";
import { TXT_STRING_LIMIT, buildRecordSet, dmarcReportAddress } from "../render/records";

function userDataProblems(topology: Topology): Problem[] {
    const problems: Problem[] = [];
    const check = (what: string, userData: string) => {
        const bytes = Buffer.byteLength(userData);
        if (bytes > USER_DATA_LIMIT_BYTES) {
            problems.push({
                path: ["admin", "sshKeys"],
                message: `${what}'s user data would be ${bytes} bytes; EC2 accepts ${USER_DATA_LIMIT_BYTES}. It grows with the ${topology.admin.sshKeys.length} admin keys: list fewer`,
            });
        }
    };
    if (topology.primary.placement.kind === "aws") check(topology.primary.hostname, renderPrimaryCloudInit(topology, { mailVolumeId: LONGEST_VOLUME_ID }));
    for (const relay of topology.relays) {
        if (relay.placement.kind === "aws") check(relay.hostname, renderRelayCloudInit(topology, relay, { queueVolumeId: LONGEST_VOLUME_ID }));
    }
    return problems;
}

/**
 * A policy record (DMARC, TLS-RPT, SPF) is one character-string by convention, and a receiver may read
 * only the first: one that outgrows it is a config mistake. DKIM keys are split on purpose (extras
 * not given here, so they are not checked).
 */
function txtProblems(topology: Topology): Problem[] {
    const causes: Record<string, (string | number)[]> = {
        dmarc: topology.policy.dmarcReports !== undefined ? ["policy", "dmarcReports"] : ["alerts", "email"],
        "tls-rpt": ["alerts", "email"],
    };
    return buildRecordSet(topology, () => "192.0.2.1")
        .filter((r) => r.type === "TXT" && Buffer.byteLength(String(r.content)) > TXT_STRING_LIMIT)
        .map((r) => ({
            path: causes[r.role] ?? ["domains"],
            message: `the TXT record at ${r.name} would be ${Buffer.byteLength(String(r.content))} bytes; one TXT string holds ${TXT_STRING_LIMIT} (RFC 1035)${r.role === "dmarc" ? `: ${dmarcReportAddress(topology)} is too long` : ""}`,
        }));
}

export function limitProblems(topology: Topology): Problem[] {
    return [...userDataProblems(topology), ...txtProblems(topology)];
}
