#!/usr/bin/env bash
# Usage: fuzz/run.sh SECONDS
# Builds the fuzz preset if needed, then shares SECONDS between the harnesses: driver_fuzzer
# gets SECONDS - 30, then fuse_shim_fuzzer and asg_consumer_fuzzer a fixed 15 each (below 45
# seconds the three split them evenly). Each fuzzes a working copy of its committed seeds
# (fuzz/corpus/NAME/ is only read; the copy in build/fuzz/corpus-run/NAME/ keeps growing
# across runs). Exits non-zero on any finding of any of them (crash, invariant trap, sanitizer
# report, leak, timeout, out of memory); the reproducer lands in build/fuzz/artifacts/.
# Prints executions and coverage for each.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: fuzz/run.sh SECONDS}
fixed_seconds=15  # each of fuse_shim_fuzzer and asg_consumer_fuzzer
if ((seconds < 3 * fixed_seconds)); then
    fixed_seconds=$((seconds / 3 > 0 ? seconds / 3 : 1))
fi
driver_seconds=$((seconds - 2 * fixed_seconds > 0 ? seconds - 2 * fixed_seconds : 1))
build=build/fuzz
artifacts=$build/artifacts

# Only what the harnesses need: building the three targets builds just the libraries they
# link (the driver, the PCI layer, the emulated machine and the device for driver_fuzzer;
# base/ for fuse_shim_fuzzer, which compiles the shim's one source itself; the device for
# asg_consumer_fuzzer).
scripts/configure-preset.sh fuzz
cmake --build --preset fuzz --target driver_fuzzer fuse_shim_fuzzer asg_consumer_fuzzer

mkdir -p "$artifacts"

# run_fuzzer NAME SECONDS MAX_LEN: fuzzes NAME's working corpus; returns its exit status.
run_fuzzer() {
    local name=$1 secs=$2 max_len=$3
    local work=$build/corpus-run/${name%_fuzzer} log=$build/$name.log status=0
    mkdir -p "$work"
    cp -n fuzz/corpus/"${name%_fuzzer}"/* "$work"/
    "$build/fuzz/$name" "$work" \
        -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?

    tail -n 40 "$log" | grep -E '^(==|SUMMARY|invariant|  |stat::)' | grep -v '^==.*INFO' || true
    local execs speed last cov ft corpus
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corpus=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
    echo "$name: ${execs:-?} execs (${speed:-?}/s) in ${secs}s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus:-?}, exit $status (log: $log)"
    if [[ $status -ne 0 ]]; then
        echo "$name: FINDING; reproducer in $artifacts/ (run it: $build/fuzz/$name FILE)" >&2
    fi
    return "$status"
}

status=0
# -max_len keeps the driver's inputs to a few dozen operations each: more inputs per second,
# and every input still ends with every file closed and checked.
run_fuzzer driver_fuzzer "$driver_seconds" 1024 || status=$?
# A request and a reply (an INIT request and reply are 104 + 80 bytes) fit easily.
run_fuzzer fuse_shim_fuzzer "$fixed_seconds" 512 || { s=$?; ((status != 0)) || status=$s; }
# A few hundred operations on the ASG context's shared memory (kMaxOps in the harness is 256).
run_fuzzer asg_consumer_fuzzer "$fixed_seconds" 512 || { s=$?; ((status != 0)) || status=$s; }
exit "$status"
