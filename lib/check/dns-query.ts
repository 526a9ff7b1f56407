// One DNS question asked straight to one nameserver, without recursion, keeping what Node's resolver
// hides: the response code and the AA bit (an answer without it is lame: the server is not
// authoritative for the zone). UDP first, TCP when the answer is truncated.
import { createSocket } from "node:dgram";
import { Socket } from "node:net";
import { randomInt } from "node:crypto";
import * as packet from "dns-packet";

export type QueryType = "A" | "AAAA" | "MX" | "NS" | "TXT" | "SOA" | "CNAME";

export interface DnsAnswer {
    /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ..., or TIMEOUT / NETWORK when nothing usable came back. */
    rcode: string;
    authoritative: boolean;
    /** The answer section's records of the type asked, in presentation form (see presentation()). */
    values: string[];
    /** Why, for TIMEOUT and NETWORK. */
    error?: string;
}

export interface QueryOptions {
    /** Per attempt. */
    timeoutMs: number;
    attempts: number;
    port?: number;
}

export const DEFAULT_QUERY_OPTIONS: QueryOptions = { timeoutMs: 1500, attempts: 2 };

/** A record as a string to compare: MX "10 host", TXT its strings joined (chunking is not meaning). */
export function presentation(answer: packet.Answer): string {
    const data = (answer as { data: unknown }).data;
    switch (answer.type) {
        case "MX": {
            const mx = data as { preference: number; exchange: string };
            return `${mx.preference} ${mx.exchange}`;
        }
        case "TXT": {
            const chunks = (Array.isArray(data) ? data : [data]) as (Buffer | string)[];
            return chunks.map((c) => c.toString()).join("");
        }
        case "SOA": {
            const soa = data as { mname: string; rname: string; serial: number };
            return `${soa.mname} ${soa.rname} ${soa.serial}`;
        }
        default:
            return String(data);
    }
}

export function decodeAnswer(buffer: Buffer, name: string, type: QueryType): DnsAnswer {
    const response = packet.decode(buffer);
    const rcode = (response as unknown as { rcode?: string }).rcode ?? "NOERROR";
    const answers = (response.answers ?? []).filter((a) => a.type === type);
    // NS of a zone cut below the server's zone (the ACME challenge zone): the parent answers with a
    // referral, its delegation in the authority section and no AA bit. That delegation is the parent's
    // own data, so it counts as the parent's authoritative answer.
    const delegation = type === "NS" && answers.length === 0 && rcode === "NOERROR"
        ? (response.authorities ?? []).filter((a) => a.type === "NS" && a.name.toLowerCase() === name.toLowerCase().replace(/\.$/, ""))
        : [];
    if (delegation.length > 0) return { rcode, authoritative: true, values: delegation.map(presentation) };
    return { rcode, authoritative: response.flag_aa, values: answers.map(presentation) };
}

function question(name: string, type: QueryType): packet.Packet {
    // No RECURSION_DESIRED: an authoritative server answers from its zone or not at all.
    return { type: "query", id: randomInt(1, 65535), flags: 0, questions: [{ type, name, class: "IN" }] };
}

function overUdp(server: string, name: string, type: QueryType, timeoutMs: number, port: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const socket = createSocket(server.includes(":") ? "udp6" : "udp4");
        const query = question(name, type);
        const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        function finish(error: Error | null, message?: Buffer): void {
            clearTimeout(timer);
            socket.close();
            if (error) reject(error);
            else resolve(message!);
        }
        socket.on("error", (error) => finish(error));
        socket.on("message", (message) => {
            // Only the answer to this question (same id); anything else is ignored.
            if (message.length >= 2 && message.readUInt16BE(0) === query.id) finish(null, message);
        });
        socket.send(packet.encode(query), port, server);
    });
}

function overTcp(server: string, name: string, type: QueryType, timeoutMs: number, port: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const socket = new Socket();
        let received = Buffer.alloc(0);
        socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer over TCP within ${timeoutMs} ms`)));
        socket.on("error", reject);
        socket.on("data", (chunk: Buffer) => {
            received = Buffer.concat([received, chunk]);
            if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
                socket.end();
                resolve(received.subarray(2, 2 + received.readUInt16BE(0)));
            }
        });
        socket.connect(port, server, () => socket.write(packet.streamEncode(question(name, type))));
    });
}

/** Asks `server` (an address) for name/type; never throws: failures come back as rcode TIMEOUT or NETWORK. */
export async function queryAuthoritative(server: string, name: string, type: QueryType, options: QueryOptions = DEFAULT_QUERY_OPTIONS): Promise<DnsAnswer> {
    const port = options.port ?? 53;
    let lastError = "";
    for (let attempt = 0; attempt < options.attempts; attempt++) {
        try {
            const buffer = await overUdp(server, name, type, options.timeoutMs, port);
            if (packet.decode(buffer).flag_tc) return decodeAnswer(await overTcp(server, name, type, options.timeoutMs * 2, port), name, type);
            return decodeAnswer(buffer, name, type);
        } catch (error) {
            lastError = (error as Error).message;
            const code = (error as NodeJS.ErrnoException).code;
            // Refused or unreachable is an answer of sorts: asking again will not change it.
            if (code !== undefined) return { rcode: "NETWORK", authoritative: false, values: [], error: `${code}: ${lastError}` };
        }
    }
    return { rcode: "TIMEOUT", authoritative: false, values: [], error: lastError };
}
