#!/bin/sh
# npm run lab:setup — installs, from Debian, the real programs the tests and the lab run: only the
# packages that are missing, named before they are installed. `npm run lab`, `npm run bench` and
# `npm test` run it themselves when they run as root and something is missing.
#   --missing   print the missing packages (space-separated; nothing when none) and install nothing
set -eu
mode=${1:-install}
# cloud-init: only its `cloud-init schema` check of the rendered user data (nothing runs at boot here).
set -- postfix nsd swaks dnsutils shellcheck iproute2 iptables procps openssl ca-certificates bash curl busybox cloud-init buildah podman runc debootstrap opendkim opendkim-tools lego pebble unbound
missing=""
for package in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [ "$status" = installed ] || missing="$missing $package"
done
missing=${missing# }
if [ "$mode" = --missing ]; then
    [ -z "$missing" ] || echo "$missing"
    exit 0
fi
if [ -z "$missing" ]; then
    echo "Debian packages: all present ($*)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: $missing" >&2
    echo "installing them takes apt-get as root: sudo npm run lab:setup" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The lab and the tests write their own configs; Debian's defaults only need to not get in the way.
echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
echo "installing Debian packages: $missing"
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# shellcheck disable=SC2086
echo "installed: $(dpkg-query -W -f='${Package} ${Version}, ' $missing | sed 's/, $//')"
