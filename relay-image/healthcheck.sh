#!/bin/sh
# Healthy when this relay's Postfix answers 220 on port 25 (the same probe the flusher uses).
set -eu
address=${LISTEN_ADDRESS:-all}
[ "$address" = all ] && address=127.0.0.1
posttls-finger -l none -t 5 -T 5 "[$address]:25" 2>&1 | grep -q '^posttls-finger: < 220[ -]'
