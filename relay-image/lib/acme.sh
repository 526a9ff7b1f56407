#!/bin/sh
# A certificate from an ACME CA for one host name, through Debian's lego and a DNS-01 challenge,
# installed where a mail server reads it. The same file serves every host: the relay image runs it
# from its entrypoint (lib/certificate.sh), the primary from the systemd timer its apply step (lib/render/acme.ts) installs.
#
#   acme.sh [obtain]         when lego holds no certificate of this CA for ACME_DOMAIN and this key:
#                            lego run; otherwise lego renew, which renews only within ACME_RENEW_DAYS
#   acme.sh renew [--force]  lego renew (there must be a certificate); --force renews now
#   acme.sh check-env        checks the environment, runs nothing
# Either installs a new certificate at ACME_CERT_FILE, if set, then runs ACME_RELOAD_COMMAND.
#
# Environment (all checked before lego runs):
#   ACME_DIRECTORY_URL        the CA's directory, https://...
#   ACME_EMAIL                the ACME account's contact (the CA's expiry notices); lego needs one
#   ACME_DOMAIN               the host name to certify
#   ACME_DIR                  lego's --path (account key, certificates): on persistent storage
#   ACME_CERT_FILE            where the certificate (with its chain) is installed; unset: it stays at
#                             lego's $ACME_DIR/certificates/<ACME_DOMAIN>.crt only
#   ACME_KEY_FILE             the private key it certifies, made (RSA 2048) when missing; by default
#                             $ACME_DIR/certificates/<ACME_DOMAIN>.key, beside lego's certificate
#   ACME_DNS_PROVIDER         lego's --dns provider (route53); its own variables (AWS_*, EXEC_PATH)
#                             pass through to it
#   ACME_RENEW_DAYS           renew within this many days of expiry (30)
#   ACME_RESOLVERS            resolvers lego asks, host[:port] comma-separated (resolv.conf's)
#   ACME_CA_CERTIFICATES      PEM file(s), colon-separated, trusted for the CA's HTTPS instead of the
#                             system's (lego's LEGO_CA_CERTIFICATES): a private or test CA
#   ACME_CHECK_AUTHORITATIVE  yes (the default): before the CA is asked to look, every authoritative
#                             server of the challenge zone must serve the TXT (lego asks them for the
#                             zone's SOA first). no: lego's --dns.disable-cp, for a challenge server
#                             that answers no SOA queries (the lab's pebble-challtestsrv)
#   ACME_RELOAD_COMMAND       run with sh -c after a new certificate is installed
#
# The certificate is ordered for the key in ACME_KEY_FILE (a CSR, lego --csr), so the key never
# changes and an installation is one rename of the certificate file: a server never reads a new
# certificate with the old key or the reverse, and a TLSA record of the key stays valid. The account
# is registered accepting the CA's terms (lego --accept-tos): naming the CA in the stack's
# configuration is that acceptance.
#
# Exit status: 0 the CA's certificate is installed (just now, or it was and is not due);
#              1 lego or the CA failed, or lego's certificate does not fit: the installed files are
#                as they were; 2 a bad environment or usage, nothing was tried;
#              3 a new certificate was installed but ACME_RELOAD_COMMAND failed.
set -eu

say() {
    printf 'acme: %s\n' "$*"
}

fail() {
    printf 'acme: %s\n' "$1" >&2
    exit "${2:-1}"
}

matches() {
    printf '%s\n' "$1" | grep -Eiq "$2"
}

problems=0
problem() {
    printf 'acme: %s\n' "$*" >&2
    problems=$((problems + 1))
}

FQDN_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'

read_environment() {
    ACME_DIRECTORY_URL=${ACME_DIRECTORY_URL:-}
    ACME_EMAIL=${ACME_EMAIL:-}
    ACME_DOMAIN=$(printf '%s' "${ACME_DOMAIN:-}" | tr '[:upper:]' '[:lower:]')
    ACME_DIR=${ACME_DIR:-}
    ACME_CERT_FILE=${ACME_CERT_FILE:-}
    ACME_KEY_FILE=${ACME_KEY_FILE:-}
    ACME_DNS_PROVIDER=${ACME_DNS_PROVIDER:-route53}
    ACME_RENEW_DAYS=${ACME_RENEW_DAYS:-30}
    ACME_RESOLVERS=${ACME_RESOLVERS:-}
    ACME_CA_CERTIFICATES=${ACME_CA_CERTIFICATES:-}
    ACME_CHECK_AUTHORITATIVE=${ACME_CHECK_AUTHORITATIVE:-yes}
    ACME_RELOAD_COMMAND=${ACME_RELOAD_COMMAND:-}

    matches "$ACME_DIRECTORY_URL" '^https://[^/[:space:]]+(/[^[:space:]]*)?$' ||
        problem "ACME_DIRECTORY_URL: '$ACME_DIRECTORY_URL' must be the CA's https:// directory URL"
    matches "$ACME_EMAIL" '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' ||
        problem "ACME_EMAIL: '$ACME_EMAIL' must be the address the CA writes to (lego registers an account with it)"
    matches "$ACME_DOMAIN" "$FQDN_RE" || problem "ACME_DOMAIN: '$ACME_DOMAIN' must be the fully qualified host name to certify"
    case $ACME_DIR in
        /*) ;;
        *) problem "ACME_DIR: '$ACME_DIR' must be an absolute path" ;;
    esac
    ACME_KEY_FILE=${ACME_KEY_FILE:-$ACME_DIR/certificates/$ACME_DOMAIN.key}
    for path in "ACME_CERT_FILE=$ACME_CERT_FILE" "ACME_KEY_FILE=$ACME_KEY_FILE"; do
        case ${path#*=} in
            "" | /*) ;;
            *) problem "${path%%=*}: '${path#*=}' must be an absolute path" ;;
        esac
    done
    matches "$ACME_DNS_PROVIDER" '^[a-z0-9]+$' || problem "ACME_DNS_PROVIDER: '$ACME_DNS_PROVIDER' must be a lego DNS provider name such as route53"
    if ! matches "$ACME_RENEW_DAYS" '^[1-9][0-9]{0,2}$' || [ "$ACME_RENEW_DAYS" -gt 365 ]; then
        problem "ACME_RENEW_DAYS: '$ACME_RENEW_DAYS' must be a whole number of days from 1 to 365"
    fi
    for resolver in $(printf '%s' "$ACME_RESOLVERS" | tr ',' ' '); do
        matches "$resolver" '^([a-z0-9.-]+|\[[0-9a-f:]+\])(:[0-9]{1,5})?$' || problem "ACME_RESOLVERS: '$resolver' must be host or host:port"
    done
    if [ -n "$ACME_CA_CERTIFICATES" ]; then
        old_ifs=$IFS
        IFS=:
        for file in $ACME_CA_CERTIFICATES; do
            [ -r "$file" ] || problem "ACME_CA_CERTIFICATES: cannot read $file"
        done
        IFS=$old_ifs
    fi
    case $ACME_CHECK_AUTHORITATIVE in
        yes | no) ;;
        *) problem "ACME_CHECK_AUTHORITATIVE: '$ACME_CHECK_AUTHORITATIVE' must be yes or no" ;;
    esac
    command -v lego >/dev/null 2>&1 || problem "lego is not installed (Debian package lego)"
    command -v openssl >/dev/null 2>&1 || problem "openssl is not installed (Debian package openssl)"
    if [ "$problems" -gt 0 ]; then
        printf 'acme: %s problem(s) in the environment; nothing tried\n' "$problems" >&2
        exit 2
    fi
    # 4.9 and later follow the CNAME at _acme-challenge.<host> unless told not to; older ones only
    # when told to. Either way the TXT must go where the CNAME points: the delegated challenge zone,
    # the only place the DNS credential may write.
    export LEGO_EXPERIMENTAL_CNAME_SUPPORT=true
    unset LEGO_DISABLE_CNAME_SUPPORT
    if [ -n "$ACME_CA_CERTIFICATES" ]; then export LEGO_CA_CERTIFICATES="$ACME_CA_CERTIFICATES"; fi
    stored=$ACME_DIR/certificates/$ACME_DOMAIN.crt
    # Which directory issued lego's certificate: after a change of CA (staging, then production) the
    # old one must not merely be renewed when due.
    issued_by=$ACME_DIR/certificates/$ACME_DOMAIN.directory
}

public_key_of_cert() {
    openssl x509 -in "$1" -noout -pubkey 2>/dev/null
}

public_key_of_key() {
    openssl pkey -in "$1" -pubout 2>/dev/null
}

# Its serial and expiry as one line for the log.
describe_cert() {
    printf 'serial %s, valid until %s' \
        "$(openssl x509 -in "$1" -noout -serial 2>/dev/null | sed 's/^serial=//')" \
        "$(openssl x509 -in "$1" -noout -enddate 2>/dev/null | sed 's/^notAfter=//')"
}

ensure_key() {
    [ -s "$ACME_KEY_FILE" ] && return
    say "no key at $ACME_KEY_FILE; making one (RSA 2048)"
    (
        umask 077
        mkdir -p "$(dirname -- "$ACME_KEY_FILE")"
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$ACME_KEY_FILE.new.$$" 2>/dev/null
        mv -f "$ACME_KEY_FILE.new.$$" "$ACME_KEY_FILE"
    ) || fail "cannot write a key at $ACME_KEY_FILE"
}

# lego's certificate fits when it is for this name and this key, and this CA issued it.
stored_fits() {
    [ -s "$stored" ] &&
        [ "$(cat "$issued_by" 2>/dev/null || true)" = "$ACME_DIRECTORY_URL" ] &&
        openssl x509 -in "$stored" -noout -checkhost "$ACME_DOMAIN" 2>/dev/null | grep -q 'does match' &&
        [ "$(public_key_of_cert "$stored")" = "$(public_key_of_key "$ACME_KEY_FILE")" ]
}

# lego's account for this CA: lego renew refuses to run without one.
has_account() {
    host=$(printf '%s' "$ACME_DIRECTORY_URL" | sed -E 's#^https://([^/]+).*#\1#; s/:/_/g')
    [ -f "$ACME_DIR/accounts/$host/$ACME_EMAIL/account.json" ]
}

# lego SUBCOMMAND [ARGS]: its output kept; on failure, the end of it and exit 1.
run_lego() {
    set -- --path "$ACME_DIR" --server "$ACME_DIRECTORY_URL" --email "$ACME_EMAIL" --accept-tos \
        --csr "$csr" --dns "$ACME_DNS_PROVIDER" "$@"
    for resolver in $(printf '%s' "$ACME_RESOLVERS" | tr ',' ' '); do set -- --dns.resolvers "$resolver" "$@"; done
    [ "$ACME_CHECK_AUTHORITATIVE" = yes ] || set -- --dns.disable-cp "$@"
    if ! lego "$@" >"$lego_log" 2>&1; then
        sed 's/^/acme: lego: /' "$lego_log" | tail -n 15 >&2
        fail "$ACME_DOMAIN: lego $subcommand failed (the lines above are lego's); the installed certificate is unchanged"
    fi
}

# Writes lego's certificate to ACME_CERT_FILE (a file beside it renamed over it), then reloads.
install_stored() {
    if [ -z "$ACME_CERT_FILE" ]; then
        say "$ACME_DOMAIN: $1 $(describe_cert "$stored"), in $stored"
    else
        tmp=$ACME_CERT_FILE.new.$$
        if ! { cp "$stored" "$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$ACME_CERT_FILE"; }; then
            rm -f "$tmp"
            fail "cannot write $ACME_CERT_FILE; the installed certificate is unchanged"
        fi
        say "$ACME_DOMAIN: $1 $(describe_cert "$ACME_CERT_FILE"), installed in $ACME_CERT_FILE"
    fi
    [ -n "$ACME_RELOAD_COMMAND" ] || return 0
    if ! out=$(sh -c "$ACME_RELOAD_COMMAND" 2>&1); then
        [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/acme: reload: /' >&2
        fail "$ACME_DOMAIN: the new certificate is installed, but '$ACME_RELOAD_COMMAND' failed" 3
    fi
}

main() {
    subcommand=${1:-obtain}
    force=no
    case $subcommand in
        obtain) [ $# -le 1 ] || usage ;;
        renew)
            case $# in
                1) ;;
                2) if [ "$2" = --force ]; then force=yes; else usage; fi ;;
                *) usage ;;
            esac
            ;;
        check-env)
            read_environment
            say "environment ok"
            return
            ;;
        *) usage ;;
    esac
    read_environment
    (umask 077 && mkdir -p "$ACME_DIR") || fail "cannot make $ACME_DIR"
    # One run at a time per ACME_DIR: the renewal loop and an operator's renew --force share lego's files.
    exec 9>"$ACME_DIR/.lock"
    flock -w 600 9 || fail "another acme.sh run has held $ACME_DIR/.lock for 10 minutes; nothing tried"
    ensure_key
    csr=$ACME_DIR/$ACME_DOMAIN.csr
    lego_log=$ACME_DIR/lego.log
    openssl req -new -key "$ACME_KEY_FILE" -subj "/CN=$ACME_DOMAIN" -addext "subjectAltName=DNS:$ACME_DOMAIN" -out "$csr" 2>/dev/null ||
        fail "cannot make a certificate request from $ACME_KEY_FILE"
    before=$(cat "$stored" 2>/dev/null || true)
    if stored_fits && has_account; then
        days=$ACME_RENEW_DAYS
        # lego renews when fewer than --days remain: more than any certificate has forces it.
        [ "$force" = no ] || days=100000
        subcommand=renew
        run_lego renew --days "$days" --no-random-sleep
        # --no-random-sleep: lego's jitter (up to 8 minutes) is for cron jobs firing on the hour; the
        # relay's loop and the primary's timer (RandomizedDelaySec) spread their own runs.
    elif [ "$subcommand" = renew ]; then
        fail "$ACME_DOMAIN: lego holds no certificate of $ACME_DIRECTORY_URL for this key in $ACME_DIR; run obtain first"
    else
        subcommand=run
        run_lego run
        printf '%s\n' "$ACME_DIRECTORY_URL" >"$issued_by"
    fi
    stored_fits || fail "$ACME_DOMAIN: lego's certificate ($stored) is not for this name and key; the installed certificate is unchanged"
    openssl x509 -in "$stored" -noout -checkend 0 >/dev/null 2>&1 || fail "$ACME_DOMAIN: lego's certificate has expired ($(describe_cert "$stored"))"
    if [ "$(cat "$stored")" != "$before" ]; then
        install_stored "new certificate"
    elif [ -n "$ACME_CERT_FILE" ] && ! cmp -s "$stored" "$ACME_CERT_FILE"; then
        install_stored "certificate"
    else
        say "$ACME_DOMAIN: certificate in place, not due ($(describe_cert "$stored"); renewal within $ACME_RENEW_DAYS days of expiry)"
    fi
}

usage() {
    echo "usage: acme.sh [obtain] | renew [--force] | check-env   (environment: see the head of this file)" >&2
    exit 2
}

main "$@"
