#!/usr/bin/env bash
# The layering check on a fixture tree (tests/layering/bad/) whose every file breaks the rule
# in one way or keeps it in another: the check must fail and report exactly
# tests/layering/bad.expected (every broken include, and none that keeps the rule).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check=$here/../../scripts/check-layering.sh

status=0
output=$("$check" "$here/bad") || status=$?
if ((status != 1)); then
    echo "FAIL: the check exited $status on the bad tree, not 1"
    echo "$output"
    exit 1
fi
if ! diff -u "$here/bad.expected" <(echo "$output"); then
    echo "FAIL: the check's report differs from bad.expected (above)"
    exit 1
fi
echo "PASS: the check rejects the bad tree with the expected report"
