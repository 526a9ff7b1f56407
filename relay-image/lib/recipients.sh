# shellcheck shell=sh
# The recipients: checking a list, its indexed table, and install-recipients (a new list for the
# running relay). Uses domains, conf and queue (env.sh).
# shellcheck disable=SC2154 # domains, conf, queue: set by env.sh, sourced before this file

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
    read_environment "$incoming"
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
