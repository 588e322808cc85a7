#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through CTest.
# The last line printed is CTest's summary of the release (g++) run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# ASan + UBSan under clang 14 (also the clang build with -Wthread-safety).
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan

# The release build with g++; its summary closes the run.
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release
