// ssh://user@host[:port]: how a Docker relay host is named in the config, read by the Docker provider
// and by the apply steps' own SSH connections. The user is required: the apply step logs in as it.

export const SSH_URL_RE = /^ssh:\/\/([^@\s/:]+)@([a-z0-9.-]+)(?::(\d{1,5}))?$/i;

export interface SshTarget {
    user: string;
    host: string;
    port: number;
}

export function parseSshUrl(url: string): SshTarget {
    const match = SSH_URL_RE.exec(url);
    if (match === null) throw new Error(`not an ssh:// URL with a user: ${url}`);
    return { user: match[1], host: match[2].toLowerCase(), port: match[3] === undefined ? 22 : Number(match[3]) };
}
