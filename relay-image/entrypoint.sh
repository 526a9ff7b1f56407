#!/bin/sh
# mailcontinuity relay: a backup MX (store-and-forward Postfix) configured from the environment.
# Renders main.cf/master.cf, checks them, runs Postfix in the foreground beside the recovery flusher.
# `install-recipients` takes a new recipients file on stdin and applies it to the running relay;
# `renew-certificate [--force]` renews its certificate from the ACME CA now (ACME_DIRECTORY_URL).
# The environment is documented in README.md beside this file. Outside a container, set POSTFIX_ROOT
# and config, queue and data live under it; a restart with the same POSTFIX_ROOT resumes the queue.
#
# This file keeps the subcommands and the run loop; the rest is in lib/, one file per concern:
# env.sh (the environment), render.sh (Postfix's configuration), recipients.sh (the recipient table,
# install-recipients), flusher.sh (the recovery flusher), probe.sh (the 220 probe), queue-health.sh
# (stuck mail, a full queue disk), status-server.sh (that health over HTTP), certificate.sh (the
# certificate from the ACME CA, through acme.sh, a program of its own), util.sh.
# shellcheck source-path=SCRIPTDIR
set -eu

# lib/ beside this script (the repository: `sh relay-image/entrypoint.sh`), else where the image
# installs it (Dockerfile: this script is /usr/local/sbin/relay-entrypoint).
relay_lib=$(dirname -- "$0")/lib
[ -f "$relay_lib/env.sh" ] || relay_lib=/usr/local/lib/mailcontinuity-relay
if [ ! -f "$relay_lib/env.sh" ]; then
    echo "relay: cannot find lib/env.sh beside $0 or in /usr/local/lib/mailcontinuity-relay" >&2
    exit 1
fi
# shellcheck source=lib/util.sh
. "$relay_lib/util.sh"
# shellcheck source=lib/env.sh
. "$relay_lib/env.sh"
# shellcheck source=lib/recipients.sh
. "$relay_lib/recipients.sh"
# shellcheck source=lib/render.sh
. "$relay_lib/render.sh"
# shellcheck source=lib/probe.sh
. "$relay_lib/probe.sh"
# shellcheck source=lib/flusher.sh
. "$relay_lib/flusher.sh"
# shellcheck source=lib/queue-health.sh
. "$relay_lib/queue-health.sh"
# shellcheck source=lib/status-server.sh
. "$relay_lib/status-server.sh"
# shellcheck source=lib/certificate.sh
. "$relay_lib/certificate.sh"

run() {
    render
    log "backup MX $RELAY_HOSTNAME for $domains; queue $queue; lifetime $QUEUE_LIFETIME; probing every ${probe_seconds}s"
    log "queue health on port $STATUS_PORT: stuck after $STUCK_QUEUE_AGE, disk alert over $QUEUE_DISK_ALERT_PERCENT%"
    certificate_before_start

    postfix -c "$conf" start-fg &
    master=$!
    start_status_server
    flusher &
    flusher_pid=$!
    acme_pid=""
    if acme_enabled; then
        acme_loop &
        acme_pid=$!
    fi
    stopping=no
    trap 'stopping=yes; log "stopping"; postfix -c "$conf" stop >/dev/null 2>&1 || true; kill "$flusher_pid" "$status_server_pid" ${acme_pid:+"$acme_pid"} 2>/dev/null || true' TERM INT
    # A trapped signal interrupts wait: keep waiting until the master has finished its clean stop.
    while :; do
        if wait "$master"; then status=0; else status=$?; fi
        kill -0 "$master" 2>/dev/null || break
    done
    kill "$flusher_pid" "$status_server_pid" ${acme_pid:+"$acme_pid"} 2>/dev/null || true
    [ "$stopping" = no ] || status=0
    log "postfix exited ($status)"
    exit "$status"
}

case ${1:-run} in
    run) run ;;
    check-env) read_environment && echo "relay: environment ok" ;;
    render) render && echo "relay: configuration written to $conf" ;;
    install-recipients) install_recipients ;;
    renew-certificate) renew_certificate "${2:-}" ;;
    *)
        echo "usage: entrypoint.sh [run|check-env|render|install-recipients <new-recipients|renew-certificate [--force]]" >&2
        exit 2
        ;;
esac
