#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through CTest:
# under ASan + UBSan (clang 14), under TSan, a minute of fuzzing, then the g++
# release build. The clang presets (asan, tsan, fuzz) build with Ninja, release with
# Makefiles: both generators stay working.
# The last line printed is CTest's summary of the release run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# ASan + UBSan under clang 14 (also the clang build with -Wthread-safety): every test.
scripts/configure-preset.sh asan
cmake --build --preset asan
ctest --preset asan

# TSan: every test but the VM boots (the guest side has nothing to race).
scripts/configure-preset.sh tsan
cmake --build --preset tsan
ctest --preset tsan -LE system

# libFuzzer on the driver and device for a minute; any finding fails the run.
fuzz/run.sh 60

# The release build with g++; its summary closes the run.
scripts/configure-preset.sh release
cmake --build --preset release
ctest --preset release
