#!/usr/bin/env bash
# A system test of docs/vm.md, "Test your own driver": builds the example kernel module
# (scripts/vm/example-module) against the guest kernel's headers, boots it under QEMU with
# goldfish-vmm-device's faults armed, and checks that the trace and the module's log show
# each error path as the document says.
#
#   run_module_test.sh --device-bin PATH --work-dir DIR
#
# Exit 0 on success, 77 (CTest: skipped) without QEMU, a guest kernel, busybox or the
# guest kernel's headers (Debian: linux-headers-amd64, in scripts/install-deps.sh).
set -euo pipefail

device_bin="" work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device-bin) device_bin="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    *) echo "run_module_test: unknown argument $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
command -v busybox >/dev/null || skip "busybox not installed"
command -v make >/dev/null || skip "make not installed"
kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$kernel" ] && [ -r "$kernel" ] || skip "no readable guest kernel /boot/vmlinuz-*"
release=${kernel#/boot/vmlinuz-}
kdir=/usr/src/linux-headers-$release
[ -d "$kdir" ] || skip "no headers for $release at $kdir (apt-get install linux-headers-$release)"

rm -rf "$work"
mkdir -p "$work"
cp -r "$repo/scripts/vm/example-module" "$work/hello"
make -s -C "$work/hello" KDIR="$kdir" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "the module did not build"; }
"$repo/scripts/vm/make-initramfs.sh" -o "$work/initrd.gz" \
  --init "$repo/scripts/vm/example-module/hello-init.sh" --module "$work/hello/goldfish_as_hello.ko" >/dev/null

status=0
timeout 150 "$repo/scripts/vm/run-vm.sh" --device-bin "$device_bin" --kernel "$kernel" \
  --initrd "$work/initrd.gz" --accel tcg --append "quiet hello=handles=3" --trace \
  --fault ping-info-readback,times=1 --fault allocate-status=ENOMEM,after=1,times=1 \
  </dev/null >"$work/console.log" 2>&1 || status=$?
sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' -e 's/\r//g' "$work/console.log" >"$work/console.txt"
echo "---- module log and device commands ----"
grep -a -E 'goldfish_as_hello|hello-init|COMMAND = |fault armed|connection' "$work/console.txt" | grep -v 'config write' || true
echo "----------------------------------------"
[ "$status" -eq 0 ] || fail "QEMU exited with $status (124: timed out); console: $work/console.log"
has() { grep -aqE -- "$1" "$work/console.txt" || fail "not on the console: $1"; }
has 'goldfish-vmm-device: fault armed: ping-info-readback,times=1'
has 'TELL_PING_INFO_ADDR handle 1 page 0x[0-9a-f]+ -> reads back 0x[0-9a-f]+ \(NOT the address written\)'
has 'goldfish_as_hello 0000:00:0[0-9a-f].0: handle 1: ping page 0x[0-9a-f]+ read back as 0x[0-9a-f]+: refused'
has 'DESTROY_HANDLE handle 1, STATUS 0'
has 'handle 2: ping page 0x[0-9a-f]+, block 0x[0-9a-f]+: ok'
has 'ALLOCATE_BLOCK size 0x1000 -> offset 0xffffffffffffffff size 0x1000, STATUS ENOMEM'
has 'handle 3: ALLOCATE_BLOCK status 12'
has 'DESTROY_HANDLE handle 3, STATUS 0'
has '1 of 3 handles ok'
has 'goldfish-vmm-device: connection closed by QEMU'
echo "PASS: module"
