// The shell building blocks of every apply step: files installed atomically from quoted here-documents,
// so what a preview shows is byte for byte what lands on the host.

/** Quotes a string for a POSIX shell command line. */
export function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

const DELIMITER = "MAILCONTINUITY_EOF";

/**
 * Writes `content` to `path` through a temporary file and a rename: a reader sees the old file or the
 * new one, never half of it. The quoted delimiter keeps the shell from expanding anything inside.
 */
export function installFile(path: string, mode: string, content: string, group?: string): string[] {
    if (content.split("\n").includes(DELIMITER)) throw new Error(`${path}: content contains the here-document delimiter`);
    const body = content.endsWith("\n") || content === "" ? content : `${content}\n`;
    const args = [shellQuote(path), mode, ...(group !== undefined ? [shellQuote(group)] : [])].join(" ");
    return [`install_file ${args} <<'${DELIMITER}'`, ...body.split("\n").slice(0, -1), DELIMITER];
}

/**
 * The shell function installFile's lines call (path, mode, optional group; content on stdin); goes once
 * at the top of a script. The new file is private until its mode and group are set, then renamed.
 */
export const INSTALL_FILE_FUNCTION = [
    "install_file() {",
    '    tmp="$1.mailcontinuity-new.$$"',
    '    (umask 077 && cat >"$tmp")',
    '    if [ -n "${3:-}" ]; then chgrp "$3" "$tmp"; fi',
    '    chmod "$2" "$tmp"',
    '    mv -f "$tmp" "$1"',
    "}",
];
