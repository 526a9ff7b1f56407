#!/bin/sh
# npm run lab:setup — installs, from Debian, the real programs the tests and the lab run.
set -eu
if [ "$(id -u)" != 0 ]; then
    echo "lab:setup installs Debian packages with apt-get: run it as root" >&2
    exit 1
fi
# cloud-init: only its `cloud-init schema` check of the rendered user data (nothing runs at boot here).
set -- postfix nsd swaks dnsutils shellcheck iproute2 iptables procps openssl ca-certificates bash cloud-init
export DEBIAN_FRONTEND=noninteractive
# The lab and the tests write their own configs; Debian's defaults only need to not get in the way.
echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
echo "installing: $*"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
echo "installed: $(dpkg-query -W -f='${Package} ${Version}, ' "$@" | sed 's/, $//')"
