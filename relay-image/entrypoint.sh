#!/bin/sh
# mailcontinuity relay: a backup MX (store-and-forward Postfix) configured from the environment.
# Renders main.cf/master.cf, checks them, runs Postfix in the foreground beside the recovery flusher.
# `install-recipients` takes a new recipients file on stdin and applies it to the running relay.
# The environment is documented in README.md beside this file. Outside a container, set POSTFIX_ROOT
# and config, queue and data live under it; a restart with the same POSTFIX_ROOT resumes the queue.
set -eu

log() {
    printf '%s relay: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
}

problems=0
problem() {
    printf 'relay: %s\n' "$*" >&2
    problems=$((problems + 1))
}

DOMAIN_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'
DURATION_RE='^[1-9][0-9]*[smhdw]$'

lower() {
    tr '[:upper:]' '[:lower:]'
}

matches() {
    printf '%s\n' "$1" | grep -Eiq "$2"
}

# --- environment: read and checked here, nowhere else -----------------------------------------

read_environment() {
    RELAY_DOMAINS=${RELAY_DOMAINS:-}
    RELAY_HOSTNAME=${RELAY_HOSTNAME:-}
    RELAY_RECIPIENTS=${RELAY_RECIPIENTS:-}
    RELAY_ACCEPT_ANY_RECIPIENT=${RELAY_ACCEPT_ANY_RECIPIENT:-no}
    PRIMARY_MX=${PRIMARY_MX:-}
    QUEUE_LIFETIME=${QUEUE_LIFETIME:-7d}
    LISTEN_ADDRESS=${LISTEN_ADDRESS:-all}
    TLS_CERT_FILE=${TLS_CERT_FILE:-}
    TLS_KEY_FILE=${TLS_KEY_FILE:-}
    FLUSH_PROBE_INTERVAL=${FLUSH_PROBE_INTERVAL:-5s}
    POSTFIX_ROOT=${POSTFIX_ROOT:-}

    domains=$(printf '%s' "$RELAY_DOMAINS" | tr ',' ' ' | lower)
    if [ -z "$domains" ]; then
        problem "RELAY_DOMAINS is required: comma-separated domains to back up, e.g. example.com,example.org"
    fi
    for d in $domains; do
        matches "$d" "$DOMAIN_RE" || problem "RELAY_DOMAINS: '$d' is not a domain name"
    done
    if [ -z "$RELAY_HOSTNAME" ]; then
        problem "RELAY_HOSTNAME is required: the FQDN this relay answers as (its MX name)"
    elif ! matches "$RELAY_HOSTNAME" "$DOMAIN_RE"; then
        problem "RELAY_HOSTNAME: '$RELAY_HOSTNAME' is not a fully qualified domain name"
    fi
    case $RELAY_ACCEPT_ANY_RECIPIENT in
        yes | no) ;;
        *) problem "RELAY_ACCEPT_ANY_RECIPIENT: '$RELAY_ACCEPT_ANY_RECIPIENT' must be yes or no" ;;
    esac
    if [ -n "$incoming" ]; then
        # install-recipients: the new list is checked instead of the current one it replaces.
        if [ "$RELAY_ACCEPT_ANY_RECIPIENT" = yes ]; then
            problem "RELAY_ACCEPT_ANY_RECIPIENT=yes: this relay accepts every address of its domains; there is no recipient list to install"
        elif [ -z "$RELAY_RECIPIENTS" ]; then
            problem "RELAY_RECIPIENTS is required: the file the new recipients replace"
        fi
        check_recipients_file "$incoming" "new recipients (stdin)" "the new recipients (stdin)"
    elif [ -z "$RELAY_RECIPIENTS" ]; then
        [ "$RELAY_ACCEPT_ANY_RECIPIENT" = yes ] ||
            problem "RELAY_RECIPIENTS is required (a file of valid addresses), unless RELAY_ACCEPT_ANY_RECIPIENT=yes"
    elif [ ! -r "$RELAY_RECIPIENTS" ]; then
        problem "RELAY_RECIPIENTS: cannot read $RELAY_RECIPIENTS"
    else
        check_recipients_file "$RELAY_RECIPIENTS" RELAY_RECIPIENTS "RELAY_RECIPIENTS: $RELAY_RECIPIENTS"
    fi
    if [ -n "$PRIMARY_MX" ] && ! matches "$PRIMARY_MX" '^(\[[0-9a-f.:]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?$'; then
        problem "PRIMARY_MX: '$PRIMARY_MX' must be host, host:port or [address]:port"
    fi
    matches "$QUEUE_LIFETIME" "$DURATION_RE" || problem "QUEUE_LIFETIME: '$QUEUE_LIFETIME' must be a duration such as 7d or 120h"
    if matches "$FLUSH_PROBE_INTERVAL" '^[1-9][0-9]*s?$'; then
        probe_seconds=${FLUSH_PROBE_INTERVAL%s}
    elif matches "$FLUSH_PROBE_INTERVAL" '^[1-9][0-9]*m$'; then
        probe_seconds=$((${FLUSH_PROBE_INTERVAL%m} * 60))
    else
        problem "FLUSH_PROBE_INTERVAL: '$FLUSH_PROBE_INTERVAL' must be seconds or minutes, such as 5s or 1m"
    fi
    if [ "$LISTEN_ADDRESS" != all ] && ! matches "$LISTEN_ADDRESS" '^([0-9]{1,3}\.){3}[0-9]{1,3}$'; then
        problem "LISTEN_ADDRESS: '$LISTEN_ADDRESS' must be an IPv4 address or 'all'"
    fi
    if [ -n "$TLS_CERT_FILE$TLS_KEY_FILE" ]; then
        if [ -z "$TLS_CERT_FILE" ] || [ -z "$TLS_KEY_FILE" ]; then
            problem "TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither"
        fi
        [ -z "$TLS_CERT_FILE" ] || [ -r "$TLS_CERT_FILE" ] || problem "TLS_CERT_FILE: cannot read $TLS_CERT_FILE"
        [ -z "$TLS_KEY_FILE" ] || [ -r "$TLS_KEY_FILE" ] || problem "TLS_KEY_FILE: cannot read $TLS_KEY_FILE"
    fi
    case $POSTFIX_ROOT in
        "" | /*) ;;
        *) problem "POSTFIX_ROOT: '$POSTFIX_ROOT' must be an absolute path" ;;
    esac
    if [ "$problems" -gt 0 ]; then
        printf 'relay: %s problem(s) in the %s\n' "$problems" "$refused" >&2
        exit 2
    fi
}

# check_recipients_file FILE LABEL NAME: one problem per bad line ("LABEL line N: ..."), one if none is valid.
check_recipients_file() {
    valid=0
    line_no=0
    while IFS= read -r line || [ -n "$line" ]; do
        line_no=$((line_no + 1))
        line=$(printf '%s' "$line" | tr -d '\r' | lower)
        case $line in "" | "#"*) continue ;; esac
        domain=${line##*@}
        if ! matches "$line" '^[^@[:space:]]*@[a-z0-9.-]+$'; then
            problem "$2 line $line_no: '$line' is not an address or @domain"
        elif ! printf ' %s ' "$domains" | grep -q " $domain "; then
            problem "$2 line $line_no: $line is not in RELAY_DOMAINS"
        else
            valid=$((valid + 1))
        fi
    done <"$1"
    [ "$valid" -gt 0 ] || problem "$3 lists no valid recipient"
}

# --- where things live ------------------------------------------------------------------------

set_paths() {
    if [ -n "$POSTFIX_ROOT" ]; then
        conf=$POSTFIX_ROOT/etc
        queue=$POSTFIX_ROOT/spool
        data=$POSTFIX_ROOT/data
    else
        conf=/etc/postfix
        queue=/var/spool/postfix
        data=/var/lib/postfix
    fi
    # On the queue volume, so a recreated container keeps its identity.
    tls_dir=$queue/relay-tls
    mkdir -p "$conf" "$queue" "$data" "$tls_dir"
    chown postfix "$data"
}

ensure_tls() {
    if [ -n "$TLS_CERT_FILE" ]; then
        cert=$TLS_CERT_FILE
        key=$TLS_KEY_FILE
        return
    fi
    cert=$tls_dir/cert.pem
    key=$tls_dir/key.pem
    if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
        log "generating a self-signed TLS pair for $RELAY_HOSTNAME in $tls_dir"
        (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$RELAY_HOSTNAME" \
            -addext "subjectAltName=DNS:$RELAY_HOSTNAME" -keyout "$key" -out "$cert" 2>/dev/null)
    fi
}

# --- Postfix configuration --------------------------------------------------------------------

# The relay's own public addresses, so Postfix recognises itself in the MX list and never hands
# mail to an equal or less preferred MX (RFC 5321 5.1), also behind Docker's port mapping.
own_addresses() {
    getent ahostsv4 "$RELAY_HOSTNAME" 2>/dev/null | awk '{print $1}' | sort -u | tr '\n' ' '
}

normalise_nexthop() {
    case $1 in
        \[*\]:*) printf '%s' "$1" ;;
        \[*\]) printf '%s:25' "$1" ;;
        *:*) printf '[%s]:%s' "${1%:*}" "${1##*:}" ;;
        *) printf '[%s]:25' "$1" ;;
    esac
}

# The recipients as an indexed table (hash:), built under a temporary name and renamed into place:
# a running smtpd sees the old table or the new one, never half of it. Needs main.cf (postmap -c).
build_recipient_table() {
    staged=$conf/relay_recipients.new.$$
    tr -d '\r' <"$RELAY_RECIPIENTS" | lower | grep -Ev '^[[:space:]]*(#|$)' | sed 's/$/ OK/' >"$staged"
    postmap -c "$conf" "hash:$staged"
    mv -f "$staged.db" "$conf/relay_recipients.db"
    # The source after its index, so the index is never older than the source (postfix check warns).
    mv -f "$staged" "$conf/relay_recipients"
}

render_tables() {
    if [ "$RELAY_ACCEPT_ANY_RECIPIENT" = no ]; then build_recipient_table; fi
    : >"$conf/transport"
    if [ -n "$PRIMARY_MX" ]; then
        nexthop=$(normalise_nexthop "$PRIMARY_MX")
        for d in $domains; do printf '%s smtp:%s\n' "$d" "$nexthop" >>"$conf/transport"; done
    fi
}

render_main_cf() {
    recipient_maps=""
    [ "$RELAY_ACCEPT_ANY_RECIPIENT" = yes ] || recipient_maps="hash:$conf/relay_recipients"
    proxy=$(own_addresses)
    [ -n "$proxy" ] || log "warning: $RELAY_HOSTNAME does not resolve yet; MX self-detection relies on local interfaces"
    cat >"$conf/main.cf" <<EOF
# Generated by the relay entrypoint from its environment at $(date -u +%Y-%m-%dT%H:%M:%SZ). Edits are lost.
compatibility_level = 3.6
queue_directory = $queue
data_directory = $data
myhostname = $RELAY_HOSTNAME
myorigin = \$myhostname
mydestination =
local_transport = error:5.1.1 this relay delivers no mail locally
alias_maps =
alias_database =
inet_interfaces = $LISTEN_ADDRESS
inet_protocols = ipv4
proxy_interfaces = $proxy
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP
maillog_file = /dev/stdout
biff = no
notify_classes =

# Backup MX for these domains only (STANDARD_CONFIGURATION_README, "primary or backup MX").
relay_domains = $domains
parent_domain_matches_subdomains = debug_peer_list smtpd_access_maps
relay_recipient_maps = $recipient_maps
transport_maps = texthash:$conf/transport
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_non_fqdn_recipient, reject_unlisted_recipient
unknown_relay_recipient_reject_code = 550
relay_domains_reject_code = 554
allow_untrusted_routing = no
allow_percent_hack = no
swap_bangpath = no
smtpd_helo_required = yes
disable_vrfy_command = yes
message_size_limit = 52428800

# Keep mail as long as senders would, warn after 4 h, then bounce with a notice.
maximal_queue_lifetime = $QUEUE_LIFETIME
bounce_queue_lifetime = $QUEUE_LIFETIME
delay_warning_time = 4h

# ETRN from the primary flushes a domain at once.
fast_flush_domains = \$relay_domains
smtpd_etrn_restrictions = permit

smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_tls_security_level = may
smtp_tls_security_level = may
# Reuse TLS sessions to the primary (through tlsproxy): a recovery burst then costs a handful of
# handshakes instead of one per message.
smtp_tls_connection_reuse = yes
EOF
}

render_master_cf() {
    # No chroot: the container already isolates, and outside one a chroot would need copies of
    # resolv.conf and friends under every POSTFIX_ROOT.
    cat >"$conf/master.cf" <<'EOF'
smtp       inet  n  -  n  -    -  smtpd
pickup     unix  n  -  n  60   1  pickup
cleanup    unix  n  -  n  -    0  cleanup
qmgr       unix  n  -  n  300  1  qmgr
tlsmgr     unix  -  -  n  1000? 1 tlsmgr
tlsproxy   unix  -  -  n  -    0  tlsproxy
rewrite    unix  -  -  n  -    -  trivial-rewrite
bounce     unix  -  -  n  -    0  bounce
defer      unix  -  -  n  -    0  bounce
trace      unix  -  -  n  -    0  bounce
verify     unix  -  -  n  -    1  verify
flush      unix  n  -  n  1000? 0 flush
proxymap   unix  -  -  n  -    -  proxymap
proxywrite unix  -  -  n  -    1  proxymap
smtp       unix  -  -  n  -    -  smtp
relay      unix  -  -  n  -    -  smtp
showq      unix  n  -  n  -    -  showq
error      unix  -  -  n  -    -  error
retry      unix  -  -  n  -    -  error
discard    unix  -  -  n  -    -  discard
anvil      unix  -  -  n  -    1  anvil
scache     unix  -  -  n  -    1  scache
postlog    unix-dgram n - n -  1  postlogd
EOF
}

# --- recovery flusher -------------------------------------------------------------------------

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

answers_220() {
    posttls-finger -l none -t 3 -T 3 "$1" 2>&1 | grep -q '^posttls-finger: < 220[ -]'
}

# While mail waits for a domain, probe its primary; the moment it answers 220, flush that domain.
# Stock Postfix would wait for the message's backoff (up to 4000 s) or the next queue scan.
# If mail stays deferred although the primary answers (4xx after the greeting), flush again after
# 5 s, 10 s, 20 s ... up to 5 minutes, so a struggling primary is not hammered; a failed probe or an
# empty queue starts over.
flusher() {
    state=$(mktemp -d "${TMPDIR:-/tmp}/relay-flusher.XXXXXX")
    trap 'rm -rf "$state"; exit 0' TERM INT
    while sleep "$probe_seconds"; do
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
    done
}

# --- run --------------------------------------------------------------------------------------

run() {
    render
    log "backup MX $RELAY_HOSTNAME for $domains; queue $queue; lifetime $QUEUE_LIFETIME; probing every ${probe_seconds}s"

    postfix -c "$conf" start-fg &
    master=$!
    flusher &
    flusher_pid=$!
    stopping=no
    trap 'stopping=yes; log "stopping"; postfix -c "$conf" stop >/dev/null 2>&1 || true; kill "$flusher_pid" 2>/dev/null || true' TERM INT
    # A trapped signal interrupts wait: keep waiting until the master has finished its clean stop.
    while :; do
        if wait "$master"; then status=0; else status=$?; fi
        kill -0 "$master" 2>/dev/null || break
    done
    kill "$flusher_pid" 2>/dev/null || true
    [ "$stopping" = no ] || status=0
    log "postfix exited ($status)"
    exit "$status"
}

render() {
    read_environment
    set_paths
    ensure_tls
    render_main_cf
    render_master_cf
    render_tables
    postfix -c "$conf" check
}

# --- install-recipients: a new recipient list for the running relay ---------------------------

# Reads the new file on stdin and checks it (with the environment) like a start would; on any problem
# exits 2 and changes nothing. Otherwise installs it at RELAY_RECIPIENTS (temporary file and rename),
# rebuilds the table and reloads Postfix if it runs: no restart, the queue is not touched.
install_recipients() {
    incoming=$(mktemp "${TMPDIR:-/tmp}/relay-recipients.XXXXXX")
    pending=""
    staged=""
    trap 'rm -f "$incoming" ${pending:+"$pending"} ${staged:+"$staged" "$staged.db"}' EXIT
    trap 'exit 1' HUP INT TERM
    cat >"$incoming"
    refused="environment or the new recipients; recipients not changed"
    read_environment
    set_paths
    count=$(tr -d '\r' <"$incoming" | grep -Evc '^[[:space:]]*(#|$)' || true)
    pending=$RELAY_RECIPIENTS.new.$$
    if ! cp "$incoming" "$pending" 2>/dev/null; then
        printf 'relay: cannot write beside %s; recipients not changed\n' "$RELAY_RECIPIENTS" >&2
        exit 1
    fi
    chmod 0644 "$pending"
    mv -f "$pending" "$RELAY_RECIPIENTS"
    if [ ! -f "$conf/main.cf" ]; then
        echo "relay: $count recipients installed in $RELAY_RECIPIENTS; Postfix not configured here yet, the table is built at start"
        return
    fi
    build_recipient_table
    if postfix -c "$conf" status >/dev/null 2>&1; then
        if ! out=$(postfix -c "$conf" reload 2>&1); then
            printf '%s\n' "$out" >&2
            printf 'relay: %s recipients installed, but postfix reload failed\n' "$count" >&2
            exit 1
        fi
        master=$(tr -d ' ' <"$queue/pid/master.pid" 2>/dev/null || echo "?")
        echo "relay: $count recipients now; table rebuilt, Postfix reloaded (master pid $master kept, queue untouched)"
    else
        echo "relay: $count recipients now; table rebuilt; Postfix not running, it starts with them"
    fi
}

incoming=""
refused="environment; Postfix not started"
case ${1:-run} in
    run) run ;;
    check-env) read_environment && echo "relay: environment ok" ;;
    render) render && echo "relay: configuration written to $conf" ;;
    install-recipients) install_recipients ;;
    *)
        echo "usage: entrypoint.sh [run|check-env|render|install-recipients <new-recipients]" >&2
        exit 2
        ;;
esac
