#!/usr/bin/env bash
# A system test: boots Debian's kernel under QEMU 7.2 with the goldfish address space
# device attached (scripts/vm/run-vm.sh), runs programs inside the guest, and checks what
# they print on the console.
#
#   run_vm_test.sh probe --device-bin PATH --work-dir DIR --probe PATH
#   run_vm_test.sh node  --device-bin PATH --work-dir DIR --daemon PATH --tool PATH \
#                        --conformance PATH
#
# probe: the static guest_probe drives the registers through sysfs.
# node:  goldfish-asd --pci auto serves the node in the guest; node_conformance and
#        goldfish-as selftest run against it.
# Exit 0 on success, 77 (CTest: skipped) when QEMU, a guest kernel or FUSE cannot be had.
set -euo pipefail

mode="${1:-}"
[ $# -gt 0 ] && shift
device_bin="" work="" probe="" daemon="" tool="" conformance=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device-bin) device_bin="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    --probe) probe="$2"; shift 2 ;;
    --daemon) daemon="$2"; shift 2 ;;
    --tool) tool="$2"; shift 2 ;;
    --conformance) conformance="$2"; shift 2 ;;
    *) echo "run_vm_test: unknown argument $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$kernel" ] || skip "no guest kernel /boot/vmlinuz-* (apt-get install linux-image-amd64)"
[ -r "$kernel" ] || skip "cannot read $kernel (Debian kernels are root-only: run as root)"
release=${kernel#/boot/vmlinuz-}
command -v busybox >/dev/null || skip "busybox not installed (apt-get install busybox-static)"

rm -rf "$work"
mkdir -p "$work"
initrd="$work/initrd.gz"
console="$work/console.log"
make_initramfs=("$repo/scripts/vm/make-initramfs.sh" -o "$initrd")

case "$mode" in
  probe)
    [ -x "$probe" ] || fail "no guest probe at $probe"
    "${make_initramfs[@]}" --init "$here/probe_init.sh" "$probe"
    ;;
  node)
    for p in "$daemon" "$tool" "$conformance"; do [ -x "$p" ] || fail "missing program $p"; done
    # FUSE inside the guest: built in, or the module that matches the kernel.
    modules=()
    config="/boot/config-$release"
    if [ -r "$config" ] && grep -q '^CONFIG_FUSE_FS=y' "$config"; then
      :
    else
      fuse_ko=$(find "/lib/modules/$release" -name 'fuse.ko*' 2>/dev/null | head -n 1)
      [ -n "$fuse_ko" ] || skip "the guest kernel $release has no FUSE (no fuse.ko under /lib/modules/$release)"
      modules=(--module "$fuse_ko")
    fi
    "${make_initramfs[@]}" --init "$here/node_init.sh" "${modules[@]}" "$daemon" "$tool" "$conformance"
    ;;
  *) echo "run_vm_test: mode is probe or node" >&2; exit 2 ;;
esac

# The whole boot, test and power-off; TCG, as on machines without a usable /dev/kvm.
start=$(date +%s%N)
status=0
timeout 150 "$repo/scripts/vm/run-vm.sh" --device-bin "$device_bin" --kernel "$kernel" \
  --initrd "$initrd" --accel tcg --append "quiet" </dev/null >"$console" 2>&1 || status=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
# The device server logs its last line just after QEMU exits.
for _ in $(seq 50); do grep -aq '^goldfish-vmm-device: ' "$console" && break; sleep 0.1; done

echo "---- guest console (filtered) ----"
# Without carriage returns and the firmware's terminal escapes.
sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' -e 's/\r//g' "$console" >"$work/console.txt"
grep -a -E '^(gf-system|probe|conformance|goldfish-|node:|selftest|ok |not ok|FAIL|PASS)|Kernel panic|BUG' "$work/console.txt" || true
echo "----------------------------------"
echo "system test: $mode VM ran ${elapsed_ms} ms (boot, test, power-off); QEMU exit $status"

[ "$status" -eq 0 ] || fail "QEMU exited with $status (124: timed out); console: $console"
has() { grep -aqF -- "$1" "$work/console.txt"; }
has "goldfish-vmm-device: connection closed by QEMU" || fail "the device server did not end cleanly"
# The device's own count proves the guest really drove it through QEMU.
bar_accesses=$(sed -n 's/.*goldfish-vmm-device: connection closed by QEMU ([0-9]* messages, \([0-9]*\) BAR accesses).*/\1/p' "$work/console.txt" | tail -n 1)
[ "${bar_accesses:-0}" -gt 0 ] || fail "the guest made no BAR access to the device"

case "$mode" in
  probe)
    has "probe: identity 607d:f153 revision 1 class 0xff0000" || fail "identity not seen by the guest"
    has "size 0x1000 bar1 " || fail "BAR0 not 4 KiB"
    has "size 0x10000000" || fail "BAR1 not 256 MiB"
    has "probe: create ping type 5 metadata 0" || fail "create ping failed"
    has "probe: PASS" || fail "the probe did not pass"
    has "gf-system: probe exit 0" || fail "the probe exited non-zero"
    ;;
  node)
    has "gf-system: daemon ready" || fail "goldfish-asd --pci auto did not serve the node"
    result=$(grep -a '^conformance: ' "$work/console.txt" | tail -n 1)
    [[ "$result" =~ ^conformance:\ ([0-9]+)\ passed,\ 0\ failed$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] \
      || fail "conformance result: '${result:-none}'"
    has "gf-system: conformance exit 0" || fail "node_conformance exited non-zero"
    has "gf-system: selftest exit 0" || fail "goldfish-as selftest failed"
    # The real PCI function through sysfs, not an emulated device inside the guest.
    has "goldfish-asd: serving /dev/goldfish_address_space on the 0000:" \
      || fail "the daemon did not serve the PCI function"
    has "gf-system: daemon exit 0" || fail "goldfish-asd did not stop cleanly"
    # --pci maps nothing: a real BAR1 cannot be split per open file.
    has "mmap is unavailable: a real PCI function" || fail "--pci did not say why mmap is off"
    # The emulated device on Debian's 6.1 kernel, which has no FUSE passthrough.
    has "goldfish-asd: mmap is unavailable: kernel " || fail "no line saying mmap is unavailable"
    has "has no FUSE passthrough" || fail "the reason is not the kernel's missing passthrough"
    has "SKIP: mmap: this node maps nothing (ENODEV)" || fail "mmap did not give ENODEV"
    has "gf-system: emulated conformance exit 0" || fail "conformance failed without passthrough"
    has "gf-system: emulated daemon exit 0" || fail "the emulated daemon did not stop cleanly"
    ;;
esac
echo "PASS: $mode"
