# shellcheck shell=sh
# The recovery flusher: while mail is deferred for a domain, probe its primary (probe.sh) and flush
# the domain as soon as it answers 220. Uses domains, conf and probe_seconds (env.sh) and
# normalise_nexthop (render.sh). Each round it also reports the queue's health (queue-health.sh).
# shellcheck disable=SC2154 # domains, conf, probe_seconds: set by env.sh, sourced before this file

# Domains of ours with mail in the given queue (deferred, active, ...; "any" for all queues).
domains_in_queue() {
    printf '%s\n' "$queue_listing" |
        if [ "$1" = any ]; then cat; else grep "\"queue_name\": \"$1\""; fi |
        grep -o '"address": "[^"]*"' |
        sed 's/.*@//; s/"$//' | lower | sort -u |
        while read -r d; do
            case " $domains " in *" $d "*) printf '%s\n' "$d" ;; esac
        done
}

# Where mail for a domain goes next: PRIMARY_MX, else the MX hosts more preferred than this relay.
primary_targets() {
    if [ -n "$PRIMARY_MX" ]; then
        normalise_nexthop "$PRIMARY_MX"
        echo
        return
    fi
    # +nofail: on SERVFAIL ask the next nameserver, as the stub resolver does (dig defaults to giving up).
    mx=$(dig +short +nofail +time=2 +tries=1 MX "$1" 2>/dev/null) || return 0
    own=$(printf '%s\n' "$mx" | awk -v me="$RELAY_HOSTNAME." 'tolower($2) == tolower(me) {print $1}' | sort -n | head -n 1)
    printf '%s\n' "$mx" | awk -v own="${own:-65536}" 'NF == 2 && $1 < own {sub(/\.$/, "", $2); print "[" $2 "]:25"}'
}

# While mail waits for a domain, probe its primary; the moment it answers 220, flush that domain.
# Stock Postfix would wait for the message's backoff (up to 4000 s) or the next queue scan.
# If mail stays deferred although the primary answers (4xx after the greeting), flush again after
# 5 s, 10 s, 20 s ... up to 5 minutes, so a struggling primary is not hammered; a failed probe or an
# empty queue starts over. Mail still deferred after such a flush, older than STUCK_QUEUE_AGE while
# the primary answers, is stuck (queue-health.sh).
flusher() {
    state=$(mktemp -d "${TMPDIR:-/tmp}/relay-flusher.XXXXXX")
    trap 'rm -rf "$state"; exit 0' TERM INT
    # A first report at once: nothing is stuck before a flush, so it speaks for the disk only.
    health_round_begin
    health_round_end
    while sleep "$probe_seconds"; do
        health_round_begin
        queue_listing=$(postqueue -c "$conf" -j 2>/dev/null || true)
        waiting=$(domains_in_queue deferred | tr '\n' ' ')
        queued=$(domains_in_queue any | tr '\n' ' ')
        for f in "$state"/*.hold; do
            [ -e "$f" ] || continue
            d=$(basename "$f" .hold)
            case " $queued " in *" $d "*) ;; *) rm -f "$state/$d".* ;; esac
        done
        for d in $waiting; do
            up=""
            for target in $(primary_targets "$d"); do
                if answers_220 "$target"; then up=$target; break; fi
            done
            if [ -z "$up" ]; then
                rm -f "$state/$d".*
                continue
            fi
            # Flushed in an earlier round, the primary still up, and the mail still deferred.
            [ ! -e "$state/$d.flushed" ] || health_check_stuck "$d" "$up"
            now=$(date +%s)
            last=$(cat "$state/$d.flushed" 2>/dev/null || echo 0)
            hold=$(cat "$state/$d.hold" 2>/dev/null || echo 0)
            [ $((now - last)) -ge "$hold" ] || continue
            log "flusher: $up answers 220; flushing mail queued for $d"
            postqueue -c "$conf" -s "$d" || log "flusher: postqueue -s $d failed"
            echo "$now" >"$state/$d.flushed"
            hold=$((hold * 2))
            [ "$hold" -ge "$probe_seconds" ] || hold=$probe_seconds
            [ "$hold" -le 300 ] || hold=300
            echo "$hold" >"$state/$d.hold"
        done
        health_round_end
    done
}
