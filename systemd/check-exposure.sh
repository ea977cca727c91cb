#!/bin/sh
# Fail when `systemd-analyze security --offline=true` rates a unit's overall exposure
# above a limit; skip (exit 0, one line) where systemd-analyze is missing or has no
# --offline (systemd older than 250). Used by `make unit-check`.
#
#   sh systemd/check-exposure.sh [UNIT_FILE] [LIMIT]     defaults: systemd/syncd.service 2.0
set -u

unit=${1:-systemd/syncd.service}
limit=${2:-2.0}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "unit-check: skipped, systemd-analyze is not installed"
    exit 0
fi
if ! systemd-analyze --help 2>/dev/null | grep -q -e '--offline'; then
    echo "unit-check: skipped, this systemd-analyze has no --offline (systemd 250 or later needed)"
    exit 0
fi

# The exit status is not the verdict (it only reflects --threshold); the report line is:
#   → Overall exposure level for syncd.service: 1.1 OK 🙂
report=$(SYSTEMD_COLORS=0 systemd-analyze --no-pager security --offline=true "$unit" 2>&1)
level=$(printf '%s\n' "$report" | awk '
    /Overall exposure level/ {
        n = split($0, part, ":")
        if (match(part[n], /[0-9]+(\.[0-9]+)?/)) { print substr(part[n], RSTART, RLENGTH); exit }
    }')

if [ -z "$level" ]; then
    printf '%s\n' "$report" >&2
    echo "unit-check: no \"Overall exposure level\" line in the report above for $unit" >&2
    exit 1
fi
if awk -v level="$level" -v limit="$limit" 'BEGIN { exit !(level + 0 <= limit + 0) }'; then
    echo "unit-check: $unit overall exposure $level (limit $limit)"
else
    printf '%s\n' "$report" | grep -e '✗' -e 'Overall' >&2
    echo "unit-check: $unit overall exposure $level is above $limit" >&2
    exit 1
fi
