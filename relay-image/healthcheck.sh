#!/bin/sh
# Healthy when this relay's Postfix answers 220 on port 25: the flusher's probe (lib/probe.sh).
# shellcheck source-path=SCRIPTDIR
set -eu
# lib/ beside this script (the repository), else where the image installs it (Dockerfile).
relay_lib=$(dirname -- "$0")/lib
[ -f "$relay_lib/probe.sh" ] || relay_lib=/usr/local/lib/mailcontinuity-relay
# shellcheck source=lib/probe.sh
. "$relay_lib/probe.sh"
address=${LISTEN_ADDRESS:-all}
[ "$address" = all ] && address=127.0.0.1
answers_220 "[$address]:25" 5
