#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through CTest:
# under ASan + UBSan (clang 14), under TSan, a minute of fuzzing, then the g++
# release build.
# The last line printed is CTest's summary of the release run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# ASan + UBSan under clang 14 (also the clang build with -Wthread-safety): every test.
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan

# TSan: every test but the VM boots (the guest side has nothing to race).
cmake --preset tsan >/dev/null
cmake --build --preset tsan
ctest --preset tsan -LE system

# libFuzzer on the driver and device for a minute; any finding fails the run.
fuzz/run.sh 60

# The release build with g++; its summary closes the run.
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release
