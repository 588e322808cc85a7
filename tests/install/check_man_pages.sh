#!/usr/bin/env bash
# Usage: check_man_pages.sh PAGE...
# Each man page renders with groff's every warning on (-ww) and says nothing.
set -euo pipefail
status=0
for page in "$@"; do
    out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1) || status=1
    if [ -n "$out" ]; then
        echo "$page: $out"
        status=1
    fi
done
exit $status
