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
