#!/bin/sh
# kumo-audit in any CI: audit the branch against its target, keep a JSON report, fail on errors.
#   KUMO_AUDIT_BASE   target branch (default origin/main)
#   KUMO_AUDIT_RECORD set to 1 to write a runbook entry (branch kumo-runbook) for the decision
set -eu
base="${KUMO_AUDIT_BASE:-origin/main}"
record=""
if [ "${KUMO_AUDIT_RECORD:-0}" = "1" ]; then record="--record"; fi
status=0
kumo-audit ci --base "$base" --format text --format json --output kumo-audit.json $record || status=$?
case "$status" in
    0) echo "kumo-audit: change accepted" ;;
    1) echo "kumo-audit: change blocked (see above and kumo-audit.json)" ;;
    *) echo "kumo-audit: could not audit the change (exit $status)" ;;
esac
exit "$status"
