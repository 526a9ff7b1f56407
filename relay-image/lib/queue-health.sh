# shellcheck shell=sh
# The queue's health, for the operators' alert (README.md, "Queue health"). The flusher (flusher.sh)
# reports each round into a status file; the status server (status-server.sh) answers with it.
#   ok                                   nothing wrong
#   stuck: <n> messages for <domain> ... mail older than STUCK_QUEUE_AGE still deferred after a flush,
#                                        while the domain's primary answers 220 (TLS mismatch, recipient
#                                        map drift, a full disk there: the flusher cannot fix it)
#   disk: queue file system <p>% full    over QUEUE_DISK_ALERT_PERCENT
#   tls: ...                             ACME is on and the relay serves its self-signed certificate,
#                                        or the CA's expires within ACME_RENEW_DAYS and the last
#                                        renewal failed (certificate.sh writes it after each attempt)
# Several problems are joined with "; ". A primary that does not answer is an outage, not stuck mail:
# its own health check reports it. Uses queue, stuck_seconds, status_dir (env.sh) and queue_listing
# (the flusher's `postqueue -j` of this round).
# shellcheck disable=SC2154 # queue, stuck_seconds, status_dir, queue_listing: set by env.sh and flusher.sh

# older_deferred DOMAIN CUTOFF: "<count> <oldest arrival>" (epoch seconds) of the deferred messages in
# queue_listing with a recipient in DOMAIN that arrived before CUTOFF; nothing when there are none.
older_deferred() {
    printf '%s\n' "$queue_listing" | grep '"queue_name": "deferred"' | awk -v domain="$1" -v cutoff="$2" '
        match($0, /"arrival_time": [0-9]+/) {
            arrived = substr($0, RSTART + 16, RLENGTH - 16) + 0
            if (arrived >= cutoff) next
            rest = tolower($0)
            ours = 0
            while (match(rest, /"address": "[^"]*"/)) {
                address = substr(rest, RSTART + 12, RLENGTH - 13)
                rest = substr(rest, RSTART + RLENGTH)
                sub(/.*@/, "", address)
                if (address == domain) ours = 1
            }
            if (ours) { count++; if (oldest == "" || arrived < oldest) oldest = arrived }
        }
        END { if (count) print count, oldest }'
}

# A number of seconds the way a person reads it: 45s, 31m, 5h, 3d.
human_seconds() {
    if [ "$1" -lt 120 ]; then
        echo "${1}s"
    elif [ "$1" -lt 7200 ]; then
        echo "$(($1 / 60))m"
    elif [ "$1" -lt 172800 ]; then
        echo "$(($1 / 3600))h"
    else
        echo "$(($1 / 86400))d"
    fi
}

health_round_begin() {
    health_problems=""
}

health_problem() {
    health_problems="${health_problems:+$health_problems; }$*"
}

# health_check_stuck DOMAIN TARGET: the flusher flushed DOMAIN in an earlier round and TARGET, its
# primary, still answers 220; mail older than STUCK_QUEUE_AGE still deferred is stuck.
health_check_stuck() {
    now=$(date +%s)
    found=$(older_deferred "$1" $((now - stuck_seconds)))
    [ -n "$found" ] || return 0
    set -- "$1" "$2" "${found% *}" "${found#* }"
    health_problem "stuck: $3 messages for $1 older than $(human_seconds "$stuck_seconds") (oldest $(human_seconds $((now - $4)))), primary $2 answers 220"
}

# Use of the file system holding the queue, in percent (df's Use%, as an operator reads it).
queue_disk_percent() {
    df -P "$queue" 2>/dev/null | awk 'NR == 2 { sub(/%/, "", $5); print $5 }'
}

health_check_disk() {
    used=$(queue_disk_percent)
    if [ -z "$used" ]; then
        health_problem "disk: cannot read the use of the queue file system ($queue)"
    elif [ "$used" -gt "$QUEUE_DISK_ALERT_PERCENT" ]; then
        health_problem "disk: queue file system ${used}% full (alert over ${QUEUE_DISK_ALERT_PERCENT}%)"
    fi
}

health_check_tls() {
    tls=$(cat "$status_dir/tls-health" 2>/dev/null || true)
    [ -z "$tls" ] || health_problem "$tls"
}

# Writes the round's result (readable by the status server's unprivileged user), and logs a change.
health_round_end() {
    health_check_tls
    health_check_disk
    status=${health_problems:-ok}
    file=$status_dir/queue-health
    previous=$(cat "$file" 2>/dev/null || true)
    # A failed write must not stop the flusher: the report then goes stale, and the check fails.
    if ! { printf '%s\n' "$status" >"$file.new" && chmod 644 "$file.new" && mv -f "$file.new" "$file"; }; then
        log "queue health: cannot write $file"
    fi
    [ "$status" = "$previous" ] || log "queue health: $status"
}

# The status server's answer (an HTTP CGI response), from the status file at $1, which must have
# been written within $2 seconds: a flusher that stopped reporting must not look healthy.
queue_health_response() {
    now=$(date +%s)
    if [ ! -f "$1" ]; then
        body="starting: no report from the flusher yet"
    else
        written=$(stat -c %Y "$1")
        body=$(cat "$1")
        if [ $((now - written)) -gt "$2" ]; then
            body="stale: the flusher last reported $(human_seconds $((now - written))) ago (said: $body)"
        fi
    fi
    if [ "$body" = ok ]; then code="200 OK"; else code="503 Service Unavailable"; fi
    printf 'Status: %s\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n\r\nmailcontinuity-queue: %s\n' "$code" "$body"
}
