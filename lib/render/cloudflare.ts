// Cloudflare's record content, in the syntax its API takes.
import { TXT_STRING_LIMIT, txtChunks, type RecordSpec } from "./records";

/**
 * A TXT value as Cloudflare's content. Up to 255 bytes it is sent as it always was (unquoted), so no
 * deployed record changes. A longer one (a DKIM key) goes as quoted character-strings of 255 bytes,
 * `"a" "b"`: the form Cloudflare's API documents for TXT content ("quoted character strings (RFC 1035),
 * each up to 255 bytes"), and the form it stores and returns for a long value. Sent as one string,
 * Cloudflare splits it itself and then returns the split form, which the provider reads as drift on
 * every run (cloudflare/terraform-provider-cloudflare#6238).
 */
export function cloudflareTxtContent(text: string): string {
    if (Buffer.byteLength(text) <= TXT_STRING_LIMIT) return text;
    return txtChunks(text)
        .map((chunk) => `"${chunk.replace(/(["\\])/g, "\\$1")}"`)
        .join(" ");
}

const QUOTED_STRINGS = /^"(?:[^"\\]|\\.)*"(?:\s+"(?:[^"\\]|\\.)*")*$/;

/** The text a Cloudflare TXT content stands for: quoted strings joined, anything else as it is. */
export function cloudflareTxtText(content: string): string {
    if (!QUOTED_STRINGS.test(content)) return content;
    return [...content.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, "$1")).join("");
}

/** A record's content for Cloudflare, when it is a plain string. */
export function cloudflareContent<Address>(record: RecordSpec<Address>): string | Address {
    return record.type === "TXT" && typeof record.content === "string" ? cloudflareTxtContent(record.content) : record.content;
}
