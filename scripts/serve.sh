#!/usr/bin/env bash
# Installs what is missing, builds, and serves /dev/goldfish_address_space on the
# emulated device. Arguments are passed to goldfish-asd (see goldfish-asd --help).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target goldfish-asd goldfish-as

daemon=build/release/tools/goldfish-asd
if [ ! -x "$daemon" ]; then
  echo "serve: the build did not produce $daemon" >&2
  exit 1
fi
exec "$daemon" "$@"
