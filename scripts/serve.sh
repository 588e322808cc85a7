#!/usr/bin/env bash
# Installs what is missing, builds, and serves /dev/goldfish_address_space on the
# emulated device. Arguments are passed to goldfish-asd (see goldfish-asd --help).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release

daemon=build/release/tools/goldfish-asd
if [ ! -x "$daemon" ]; then
  echo "serve: the build succeeded; the daemon (goldfish-asd) is not written yet." >&2
  echo "serve: still missing: the device model, the driver and the FUSE node (issues 3, 4, 5)." >&2
  exit 1
fi
exec "$daemon" "$@"
