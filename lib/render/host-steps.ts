// The commands the stack's SSH steps run on a host, beside the scripts they are given on stdin.

/** Completes once cloud-init has finished bootstrapping the host; fails with its report if it failed. */
export const WAIT_FOR_CLOUD_INIT = "cloud-init status --wait >/dev/null || { cloud-init status --long; exit 1; }";

/** Replaces the login user's authorized_keys with the keys on stdin, atomically. */
export const INSTALL_ADMIN_KEYS = "umask 077 && mkdir -p ~/.ssh && cat >~/.ssh/authorized_keys.new && mv -f ~/.ssh/authorized_keys.new ~/.ssh/authorized_keys";

/** Runs the apply script on stdin as root (Debian's cloud images give `admin` passwordless sudo). */
export const RUN_STDIN_AS_ROOT = "sudo sh -s";
