// The relays' apply step: the recipients file goes to the running relay on stdin, and the relay's own
// entrypoint checks it, installs it, rebuilds its indexed table and reloads Postfix, without a
// restart and without touching the queue. The cloud pipes it through `docker exec`; the lab runs the
// same entrypoint subcommand in the relay's namespace.
import { shellQuote } from "./apply-script";

/** The entrypoint subcommand that takes a new recipients file on stdin. */
export const INSTALL_RECIPIENTS = "install-recipients";

/** The entrypoint subcommand that renews the relay's ACME certificate now (`--force`: whatever its expiry). */
export const RENEW_CERTIFICATE = "renew-certificate";

/** Where the image installs its entrypoint (relay-image/Dockerfile). */
export const RELAY_ENTRYPOINT = "/usr/local/sbin/relay-entrypoint";

/** The command a Docker host runs, with the recipients file on stdin. */
export function dockerRelayApplyCommand(containerName: string): string {
    return `docker exec -i ${shellQuote(containerName)} ${RELAY_ENTRYPOINT} ${INSTALL_RECIPIENTS}`;
}
