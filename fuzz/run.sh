#!/usr/bin/env bash
# Usage: fuzz/run.sh SECONDS
# Builds the fuzz preset if needed, then runs driver_fuzzer for SECONDS on a working copy of
# the committed seeds (fuzz/corpus/driver/ is only read; the copy in build/fuzz/corpus-run/
# keeps growing across runs). Exits non-zero on any finding (crash, invariant trap,
# sanitizer report, leak, timeout, out of memory); the reproducer lands in
# build/fuzz/artifacts/. Ends by printing executions and coverage.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: fuzz/run.sh SECONDS}
build=build/fuzz
work=$build/corpus-run/driver
artifacts=$build/artifacts
log=$build/driver_fuzzer.log

# Only the layers the harness needs: the device, the PCI layer and the driver.
cmake --preset fuzz -DGF_LAYERS="base;device;pci;driver" >/dev/null
cmake --build --preset fuzz --target driver_fuzzer

mkdir -p "$work" "$artifacts"
cp -n fuzz/corpus/driver/* "$work"/

status=0
# -max_len keeps inputs to a few dozen operations each: more inputs per second, and every
# input still ends with every file closed and checked.
"$build/fuzz/driver_fuzzer" "$work" \
    -max_total_time="$seconds" -max_len=1024 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?

tail -n 40 "$log" | grep -E '^(==|SUMMARY|invariant|  |stat::)' | grep -v '^==.*INFO' || true
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corpus=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
echo "driver_fuzzer: ${execs:-?} execs (${speed:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus:-?}, exit $status (log: $log)"
if [[ $status -ne 0 ]]; then
    echo "driver_fuzzer: FINDING; reproducer in $artifacts/ (run it: $build/fuzz/driver_fuzzer FILE)" >&2
fi
exit "$status"
