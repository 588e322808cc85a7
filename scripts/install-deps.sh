#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent, non-interactive; run as root.
set -euo pipefail

packages=(
  # toolchains and build
  g++ cmake make ninja-build pkg-config clang-14 libclang-rt-14-dev clang-format
  # test and benchmark frameworks
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  # libraries
  libexpected-dev libcli11-dev nlohmann-json3-dev
  # the device node
  libfuse3-dev fuse3
  # installing: cpack -G DEB (dpkg-shlibdeps, file) and the man pages' check (groff)
  dpkg-dev file groff-base
  # the device in a real virtual machine: QEMU 7.2, a guest kernel, busybox for its initramfs
  qemu-system-x86 linux-image-amd64 busybox-static
  # building a guest kernel module against that kernel (docs/vm.md, "Test your own driver")
  linux-headers-amd64
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get needs it)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps: ${#packages[@]} packages present"
