# shellcheck shell=sh
# The relay's certificate from an ACME CA (README.md, "Certificates"), when ACME_DIRECTORY_URL is set:
# lib/acme.sh (lego, DNS-01) run once before Postfix starts while the relay has only its self-signed
# pair, then by a background loop every ACME_RENEW_INTERVAL, which reloads Postfix when it installs a
# new certificate. Postfix always reads $tls_dir/cert.pem and key.pem; acme.sh replaces cert.pem (one
# rename) and never the key. Each attempt's verdict goes to $status_dir/tls-health, which the queue
# health round reports (queue-health.sh): empty when all is well.
# Uses conf, tls_dir, acme_dir, acme_interval_seconds, status_dir (env.sh), relay_lib (entrypoint.sh)
# and shell_quote (status-server.sh).
# shellcheck disable=SC2154 # conf, tls_dir, acme_dir, acme_interval_seconds, status_dir, relay_lib: set by env.sh and entrypoint.sh

# The first attempt may hold Postfix's start this long: lego's own DNS wait is 60 s (exec) to
# 2 minutes (route53), and mail must not wait on the CA for longer than a restart takes anyway.
ACME_FIRST_ATTEMPT_SECONDS=120

acme_enabled() {
    [ -n "$ACME_DIRECTORY_URL" ]
}

# acme_run [--reload] SUBCOMMAND...: lib/acme.sh with the relay's settings, its output in acme_output.
acme_run() {
    reload=""
    if [ "$1" = --reload ]; then
        reload="postfix -c $(shell_quote "$conf") reload"
        shift
    fi
    set +e
    acme_output=$(env ACME_DIRECTORY_URL="$ACME_DIRECTORY_URL" ACME_EMAIL="$ACME_EMAIL" ACME_DOMAIN="$ACME_DOMAIN" \
        ACME_DIR="$acme_dir" ACME_CERT_FILE="$tls_dir/cert.pem" ACME_KEY_FILE="$tls_dir/key.pem" \
        ACME_DNS_PROVIDER="$ACME_DNS_PROVIDER" ACME_RENEW_DAYS="$ACME_RENEW_DAYS" ACME_RESOLVERS="$ACME_RESOLVERS" \
        ACME_CA_CERTIFICATES="$ACME_CA_CERTIFICATES" ACME_CHECK_AUTHORITATIVE="$ACME_CHECK_AUTHORITATIVE" \
        ACME_RELOAD_COMMAND="$reload" "$@" 2>&1)
    acme_status=$?
    set -e
    printf '%s\n' "$acme_output" | while IFS= read -r line; do [ -z "$line" ] || log "$line"; done
    return "$acme_status"
}

# Self-signed: issued by itself, so not by the CA.
self_signed() {
    [ "$(openssl x509 -in "$1" -noout -issuer 2>/dev/null | sed 's/^issuer=//')" = "$(openssl x509 -in "$1" -noout -subject 2>/dev/null | sed 's/^subject=//')" ]
}

# Whole days until the certificate expires (negative once it has).
days_left() {
    end=$(date -d "$(openssl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//')" +%s)
    echo $(((end - $(date +%s)) / 86400))
}

# acme_report STATUS: what the queue health says after an attempt that ended with STATUS. An alert
# only when it matters to senders: the relay serves its self-signed pair or another CA's certificate, or the CA's certificate
# expires within ACME_RENEW_DAYS and the last attempt to renew it failed; or Postfix did not take a
# new certificate. The reason is lego's last line, or else acme.sh's first.
acme_report() {
    cert=$tls_dir/cert.pem
    reason=$(printf '%s\n' "$acme_output" | grep '^acme: lego: ' | tail -n 1 | sed 's/^acme: lego: //; s/^[0-9/]* [0-9:]* //')
    [ -n "$reason" ] || reason=$(printf '%s\n' "$acme_output" | head -n 1 | sed 's/^acme: //')
    reason=$(printf '%s' "$reason" | cut -c 1-300)
    report=""
    if [ "$1" -eq 3 ]; then
        report="tls: a new certificate is installed but postfix reload failed"
    elif [ "$1" -ne 0 ]; then
        issued_by=$(cat "$acme_dir/certificates/$ACME_DOMAIN.directory" 2>/dev/null || true)
        if self_signed "$cert"; then
            report="tls: serving a self-signed certificate, none from $ACME_DIRECTORY_URL yet: $reason"
        elif [ "$issued_by" != "$ACME_DIRECTORY_URL" ]; then
            # After a change of CA (staging, then production) the old CA's certificate still serves,
            # and senders that verify refuse it whatever its expiry.
            report="tls: serving a certificate from ${issued_by:-another CA}, none from $ACME_DIRECTORY_URL yet: $reason"
        elif [ "$(days_left "$cert")" -le "$ACME_RENEW_DAYS" ]; then
            report="tls: the certificate expires in $(days_left "$cert") days and its renewal failed: $reason"
        fi
    fi
    mkdir -p "$status_dir"
    printf '%s\n' "$report" >"$status_dir/tls-health.new" && mv -f "$status_dir/tls-health.new" "$status_dir/tls-health"
}

# acme_attempt [--reload]: obtain or renew, then report. Sets acme_status.
acme_attempt() {
    if acme_run "$@" sh "$relay_lib/acme.sh" obtain; then :; fi
    acme_report "$acme_status"
}

# Before Postfix starts: a certificate from the CA when the relay has none yet (bounded); sets
# acme_next_wait, the loop's first pause.
certificate_before_start() {
    rm -f "$status_dir/tls-health"
    acme_enabled || return 0
    acme_next_wait=0
    if ! self_signed "$tls_dir/cert.pem"; then
        log "certificate: from the CA already, checked for renewal every $ACME_RENEW_INTERVAL"
        return 0
    fi
    log "certificate: asking $ACME_DIRECTORY_URL for one for $ACME_DOMAIN before Postfix starts (at most ${ACME_FIRST_ATTEMPT_SECONDS}s)"
    acme_run timeout "$ACME_FIRST_ATTEMPT_SECONDS" sh "$relay_lib/acme.sh" obtain || true
    [ "$acme_status" -ne 124 ] || acme_output="acme: no answer within ${ACME_FIRST_ATTEMPT_SECONDS}s"
    acme_report "$acme_status"
    if [ "$acme_status" -eq 0 ]; then
        acme_next_wait=$acme_interval_seconds
    else
        acme_next_wait=$(acme_retry_seconds)
        log "certificate: none from the CA yet; Postfix starts with the self-signed pair, next try in ${acme_next_wait}s"
    fi
}

# After a failure: again within the hour (the CA allows 5 failed validations per host and hour).
acme_retry_seconds() {
    if [ "$acme_interval_seconds" -lt 3600 ]; then echo "$acme_interval_seconds"; else echo 3600; fi
}

# The renewal loop, in the background beside Postfix.
acme_loop() {
    sleep_pid=""
    trap '[ -z "$sleep_pid" ] || kill "$sleep_pid" 2>/dev/null; exit 0' TERM INT
    wait_seconds=${acme_next_wait:-0}
    while :; do
        if [ "$wait_seconds" -gt 0 ]; then
            # In the background, so a stop does not wait for the sleep to end.
            sleep "$wait_seconds" &
            sleep_pid=$!
            wait "$sleep_pid" || true
            sleep_pid=""
        fi
        acme_attempt --reload
        if [ "$acme_status" -eq 0 ]; then wait_seconds=$acme_interval_seconds; else wait_seconds=$(acme_retry_seconds); fi
    done
}

# The renew-certificate subcommand: an operator's renewal now (--force: whatever the expiry), in the
# running relay; Postfix, if it runs, reloads and keeps its master and queue.
renew_certificate() {
    read_environment
    set_paths
    if ! acme_enabled; then
        echo "relay: ACME_DIRECTORY_URL is not set: this relay has no certificate from a CA to renew" >&2
        exit 2
    fi
    case ${1:-} in
        "") set -- obtain ;;
        --force) set -- renew --force ;;
        *)
            echo "usage: entrypoint.sh renew-certificate [--force]" >&2
            exit 2
            ;;
    esac
    if postfix -c "$conf" status >/dev/null 2>&1; then
        acme_run --reload sh "$relay_lib/acme.sh" "$@" || true
    else
        acme_run sh "$relay_lib/acme.sh" "$@" || true
    fi
    acme_report "$acme_status"
    exit "$acme_status"
}
