#!/usr/bin/env bash
# Usage: scripts/configure-preset.sh PRESET
# cmake --preset PRESET, quietly; a build directory that another generator made (the clang
# presets moved from Makefiles to Ninja) is configured afresh instead of refused.
set -euo pipefail
cd "$(dirname "$0")/.."

preset=${1:?usage: configure-preset.sh PRESET}
if ! out=$(cmake --preset "$preset" 2>&1); then
  if grep -q 'Does not match the generator used previously' <<<"$out"; then
    echo "configure-preset: $preset: the generator changed; configuring build/$preset afresh" >&2
    cmake --preset "$preset" --fresh >/dev/null
  else
    printf '%s\n' "$out" >&2
    exit 1
  fi
fi
