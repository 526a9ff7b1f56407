import type * as command from "@pulumi/command";
import type * as pulumi from "@pulumi/pulumi";

// A new instance answers SSH after a minute or two; 40 tries of 15 s cover a slow boot. Keys come from
// the SSH agent of whoever runs `pulumi up` (SSH_AUTH_SOCK), as for the Docker provider's ssh://.
const SSH_DIAL_ATTEMPTS = 40;

export function sshConnection(host: pulumi.Input<string>, user: string, port = 22): command.types.input.remote.ConnectionArgs {
    return { host, user, port, dialErrorLimit: SSH_DIAL_ATTEMPTS, perDialTimeout: 15 };
}
