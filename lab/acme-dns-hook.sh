#!/bin/sh
# lego's `exec` DNS provider in the lab: the lab's only stand-in for the Route53 API. lego runs it as
#   acme-dns-hook.sh present|cleanup <fqdn> <value>
# with the name the CNAME at _acme-challenge.<host> points to, and this sets or clears that TXT at
# pebble-challtestsrv (its /set-txt and /clear-txt), the lab's challenge zone nameserver. Like the
# stack's Route53 credential it writes in the challenge zone only (LAB_ACME_CHALLENGE_ZONE): a name
# outside it, lego not having followed the CNAME, is refused.
#   LAB_ACME_CHALLTESTSRV    the management URL, http://<address>:8055
#   LAB_ACME_CHALLENGE_ZONE  the delegated challenge zone, acme-challenge.example.com
set -eu
: "${LAB_ACME_CHALLTESTSRV:?the management URL of pebble-challtestsrv}"
: "${LAB_ACME_CHALLENGE_ZONE:?the challenge zone}"
[ $# -eq 3 ] || { echo "usage: $0 present|cleanup <fqdn> <value>" >&2; exit 2; }
fqdn=$2
case ${fqdn%.}. in
    *."$LAB_ACME_CHALLENGE_ZONE".) ;;
    *)
        echo "acme-dns-hook: refused: $fqdn is outside the challenge zone $LAB_ACME_CHALLENGE_ZONE (the credential writes there only)" >&2
        exit 1
        ;;
esac
case $1 in
    present) body="{\"host\":\"$fqdn\",\"value\":\"$3\"}" path=set-txt ;;
    cleanup) body="{\"host\":\"$fqdn\"}" path=clear-txt ;;
    *) echo "acme-dns-hook: unknown step $1" >&2; exit 2 ;;
esac
curl --silent --show-error --fail --max-time 10 --data "$body" "$LAB_ACME_CHALLTESTSRV/$path"
echo "acme-dns-hook: $1 TXT $fqdn"
