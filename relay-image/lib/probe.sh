# shellcheck shell=sh
# The relay's one SMTP probe, shared by the recovery flusher (is the primary back?) and
# healthcheck.sh (is this relay's own Postfix up?). Needs posttls-finger (Debian's postfix).

# answers_220 TARGET [SECONDS]: TARGET ([address]:port or host:port) greets with 220 within SECONDS
# (default 3) to connect and as many to greet.
answers_220() {
    posttls-finger -l none -t "${2:-3}" -T "${2:-3}" "$1" 2>&1 | grep -q '^posttls-finger: < 220[ -]'
}
