# shellcheck shell=sh
# Helpers every part of the relay uses. Sourced by entrypoint.sh before the other lib/ files.

log() {
    printf '%s relay: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
}

lower() {
    tr '[:upper:]' '[:lower:]'
}

matches() {
    printf '%s\n' "$1" | grep -Eiq "$2"
}

# duration_seconds 30m: a Postfix time value (s, m, h, d, w; checked by env.sh) in seconds.
duration_seconds() {
    n=${1%?}
    case $1 in
        *s) echo "$n" ;;
        *m) echo $((n * 60)) ;;
        *h) echo $((n * 3600)) ;;
        *d) echo $((n * 86400)) ;;
        *w) echo $((n * 604800)) ;;
    esac
}
