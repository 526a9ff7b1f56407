# shellcheck shell=sh
# The environment: read and checked here, nowhere else (README.md, "Environment"). Also where
# things live, which follows from POSTFIX_ROOT.
#
# Sets for the other parts: domains (RELAY_DOMAINS, lower case, space-separated), probe_seconds
# (FLUSH_PROBE_INTERVAL in seconds), stuck_seconds (STUCK_QUEUE_AGE in seconds), acme_interval_seconds
# (ACME_RENEW_INTERVAL in seconds); set_paths sets conf, queue, data, tls_dir, acme_dir and status_dir.
# shellcheck disable=SC2034 # probe_seconds, stuck_seconds, acme_*, status_dir: read by the other parts, not here

problems=0
problem() {
    printf 'relay: %s\n' "$*" >&2
    problems=$((problems + 1))
}

DOMAIN_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'
DURATION_RE='^[1-9][0-9]*[smhdw]$'

# read_environment [NEW_RECIPIENTS]: checks the environment; prints one line per problem and exits 2
# on any. With NEW_RECIPIENTS (install-recipients), that file is checked instead of the current
# RELAY_RECIPIENTS it replaces.
read_environment() {
    RELAY_DOMAINS=${RELAY_DOMAINS:-}
    RELAY_HOSTNAME=${RELAY_HOSTNAME:-}
    RELAY_RECIPIENTS=${RELAY_RECIPIENTS:-}
    RELAY_ACCEPT_ANY_RECIPIENT=${RELAY_ACCEPT_ANY_RECIPIENT:-no}
    PRIMARY_MX=${PRIMARY_MX:-}
    QUEUE_LIFETIME=${QUEUE_LIFETIME:-7d}
    LISTEN_ADDRESS=${LISTEN_ADDRESS:-all}
    INET_PROTOCOLS=${INET_PROTOCOLS:-ipv4}
    TLS_CERT_FILE=${TLS_CERT_FILE:-}
    TLS_KEY_FILE=${TLS_KEY_FILE:-}
    FLUSH_PROBE_INTERVAL=${FLUSH_PROBE_INTERVAL:-5s}
    STUCK_QUEUE_AGE=${STUCK_QUEUE_AGE:-30m}
    QUEUE_DISK_ALERT_PERCENT=${QUEUE_DISK_ALERT_PERCENT:-80}
    STATUS_PORT=${STATUS_PORT:-8025}
    POSTFIX_ROOT=${POSTFIX_ROOT:-}
    ACME_DIRECTORY_URL=${ACME_DIRECTORY_URL:-}
    ACME_EMAIL=${ACME_EMAIL:-}
    ACME_DOMAIN=${ACME_DOMAIN:-$RELAY_HOSTNAME}
    ACME_DNS_PROVIDER=${ACME_DNS_PROVIDER:-route53}
    ACME_RENEW_DAYS=${ACME_RENEW_DAYS:-30}
    ACME_RENEW_INTERVAL=${ACME_RENEW_INTERVAL:-12h}
    ACME_RESOLVERS=${ACME_RESOLVERS:-}
    ACME_CA_CERTIFICATES=${ACME_CA_CERTIFICATES:-}
    ACME_CHECK_AUTHORITATIVE=${ACME_CHECK_AUTHORITATIVE:-yes}
    ACME_DIR=${ACME_DIR:-}
    PRIMARY_TLS=${PRIMARY_TLS:-may}
    PRIMARY_TLS_CA_FILE=${PRIMARY_TLS_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}

    new_recipients=${1:-}
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
    if [ -n "$new_recipients" ]; then
        if [ "$RELAY_ACCEPT_ANY_RECIPIENT" = yes ]; then
            problem "RELAY_ACCEPT_ANY_RECIPIENT=yes: this relay accepts every address of its domains; there is no recipient list to install"
        elif [ -z "$RELAY_RECIPIENTS" ]; then
            problem "RELAY_RECIPIENTS is required: the file the new recipients replace"
        fi
        check_recipients_file "$new_recipients" "new recipients (stdin)" "the new recipients (stdin)"
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
    if matches "$STUCK_QUEUE_AGE" "$DURATION_RE"; then
        stuck_seconds=$(duration_seconds "$STUCK_QUEUE_AGE")
    else
        problem "STUCK_QUEUE_AGE: '$STUCK_QUEUE_AGE' must be a duration such as 30m or 2h"
    fi
    matches "$QUEUE_DISK_ALERT_PERCENT" '^(0|[1-9][0-9]?|100)$' ||
        problem "QUEUE_DISK_ALERT_PERCENT: '$QUEUE_DISK_ALERT_PERCENT' must be a whole percentage from 0 to 100"
    if ! matches "$STATUS_PORT" '^[1-9][0-9]{0,4}$' || [ "$STATUS_PORT" -gt 65535 ] || [ "$STATUS_PORT" = 25 ]; then
        problem "STATUS_PORT: '$STATUS_PORT' must be a TCP port from 1 to 65535 other than 25"
    fi
    case $INET_PROTOCOLS in
        ipv4 | all) ;;
        *) problem "INET_PROTOCOLS: '$INET_PROTOCOLS' must be ipv4 or all (IPv4 and IPv6)" ;;
    esac
    if [ "$LISTEN_ADDRESS" = all ] || matches "$LISTEN_ADDRESS" '^([0-9]{1,3}\.){3}[0-9]{1,3}$'; then
        :
    elif matches "$LISTEN_ADDRESS" '^[0-9a-f:.]*:[0-9a-f:.]*$'; then
        [ "$INET_PROTOCOLS" = all ] || problem "LISTEN_ADDRESS: '$LISTEN_ADDRESS' is an IPv6 address; set INET_PROTOCOLS=all to listen on it"
    else
        problem "LISTEN_ADDRESS: '$LISTEN_ADDRESS' must be an IPv4 or IPv6 address, or 'all'"
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
    [ -z "$ACME_DIRECTORY_URL" ] || check_acme
    case $PRIMARY_TLS in
        may | encrypt) ;;
        verify)
            [ -r "$PRIMARY_TLS_CA_FILE" ] || problem "PRIMARY_TLS_CA_FILE: cannot read $PRIMARY_TLS_CA_FILE (the CAs PRIMARY_TLS=verify trusts)"
            # A certificate names a host: an address cannot be verified against it.
            if matches "$PRIMARY_MX" '^\['; then
                problem "PRIMARY_MX: '$PRIMARY_MX' is an address; PRIMARY_TLS=verify checks the primary's certificate against its host name, so give the name"
            fi
            ;;
        *) problem "PRIMARY_TLS: '$PRIMARY_TLS' must be may, encrypt or verify" ;;
    esac
    if [ "$problems" -gt 0 ]; then
        if [ -n "$new_recipients" ]; then
            printf 'relay: %s problem(s) in the environment or the new recipients; recipients not changed\n' "$problems" >&2
        else
            printf 'relay: %s problem(s) in the environment; Postfix not started\n' "$problems" >&2
        fi
        exit 2
    fi
}

# The ACME settings, once ACME_DIRECTORY_URL turns them on (certificate.sh runs lib/acme.sh with them).
check_acme() {
    matches "$ACME_DIRECTORY_URL" '^https://[^/[:space:]]+(/[^[:space:]]*)?$' ||
        problem "ACME_DIRECTORY_URL: '$ACME_DIRECTORY_URL' must be the CA's https:// directory URL"
    matches "$ACME_EMAIL" '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' ||
        problem "ACME_EMAIL: '$ACME_EMAIL' must be the address the CA writes to (required with ACME_DIRECTORY_URL)"
    matches "$ACME_DOMAIN" "$DOMAIN_RE" || problem "ACME_DOMAIN: '$ACME_DOMAIN' is not a fully qualified domain name"
    [ -z "$TLS_CERT_FILE$TLS_KEY_FILE" ] ||
        problem "TLS_CERT_FILE/TLS_KEY_FILE and ACME_DIRECTORY_URL exclude each other: a certificate of yours, or one from the CA"
    matches "$ACME_DNS_PROVIDER" '^[a-z0-9]+$' || problem "ACME_DNS_PROVIDER: '$ACME_DNS_PROVIDER' must be a lego DNS provider name such as route53"
    if ! matches "$ACME_RENEW_DAYS" '^[1-9][0-9]{0,2}$' || [ "$ACME_RENEW_DAYS" -gt 365 ]; then
        problem "ACME_RENEW_DAYS: '$ACME_RENEW_DAYS' must be a whole number of days from 1 to 365"
    fi
    if matches "$ACME_RENEW_INTERVAL" "$DURATION_RE"; then
        acme_interval_seconds=$(duration_seconds "$ACME_RENEW_INTERVAL")
    else
        problem "ACME_RENEW_INTERVAL: '$ACME_RENEW_INTERVAL' must be a duration such as 12h or 30m"
    fi
    for resolver in $(printf '%s' "$ACME_RESOLVERS" | tr ',' ' '); do
        matches "$resolver" '^([a-z0-9.-]+|\[[0-9a-f:]+\])(:[0-9]{1,5})?$' || problem "ACME_RESOLVERS: '$resolver' must be host or host:port"
    done
    old_ifs=$IFS
    IFS=:
    for file in $ACME_CA_CERTIFICATES; do
        [ -r "$file" ] || problem "ACME_CA_CERTIFICATES: cannot read $file"
    done
    IFS=$old_ifs
    case $ACME_CHECK_AUTHORITATIVE in
        yes | no) ;;
        *) problem "ACME_CHECK_AUTHORITATIVE: '$ACME_CHECK_AUTHORITATIVE' must be yes or no" ;;
    esac
    case $ACME_DIR in
        "" | /*) ;;
        *) problem "ACME_DIR: '$ACME_DIR' must be an absolute path" ;;
    esac
}

# Where things live: under POSTFIX_ROOT outside a container, Debian's paths inside one.
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
    # lego's account key and certificates: on the volume too, so a new container renews, not reorders.
    acme_dir=${ACME_DIR:-$queue/relay-acme}
    # The queue's health (queue-health.sh) and the status server's files: not on the volume, so a
    # restarted relay never serves an earlier run's report.
    if [ -n "$POSTFIX_ROOT" ]; then status_dir=$POSTFIX_ROOT/status; else status_dir=/run/mailcontinuity-relay; fi
    mkdir -p "$conf" "$queue" "$data" "$tls_dir"
    chown postfix "$data"
}
