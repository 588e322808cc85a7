#!/usr/bin/env bash
# Boots a VM in Debian 12's QEMU (7.2) with the goldfish address space device attached
# through QEMU's multi-process protocol (x-pci-proxy-dev, docs/vm.md#proxy-protocol): console on
# stdio, -nographic, guest RAM in a shared memfd so the device can read ping pages.
#
#   run-vm.sh --initrd INITRAMFS [--kernel VMLINUZ] [--append "KERNEL ARGS"]
#             [--memory 512M] [--bar1-size 256M] [--cpus 1] [--accel tcg|kvm|auto]
#             [--device-bin PATH] [--trace] [--trace-json FILE] [--fault SPEC]...
#             [--control PATH] [-- EXTRA QEMU ARGS...]
#
# --trace, --trace-json FILE, --fault SPEC (repeatable) and --control PATH go to
# goldfish-vmm-device as they are (docs/vm.md): the decoded register trace on the console
# or as JSON lines in FILE, injected device faults, and a control socket at PATH through
# which the host reads and writes BAR1 while the VM runs
# (goldfish-vmm-device --control PATH --send 'read-bar1 OFFSET LENGTH').
#
# Defaults: the newest /boot/vmlinuz-*, "console=ttyS0 panic=-1", no network, no reboot
# (the VM ends when the guest powers off or its init exits), TCG. --accel kvm is faster
# where KVM really runs guests; auto tries KVM and falls back to TCG if KVM cannot start
# (a nested /dev/kvm that opens but then hangs the guest is not detected: hence TCG).
# Quit an interactive VM with Ctrl-A X. The exit status is QEMU's.
set -euo pipefail

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
die() { echo "run-vm: $*" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
kernel="" initrd="" append="" memory=512M bar1=256M cpus=1 accel=tcg device_bin="" device_opts=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel="$2"; shift 2 ;;
    --initrd) initrd="$2"; shift 2 ;;
    --append) append="$2"; shift 2 ;;
    --memory) memory="$2"; shift 2 ;;
    --bar1-size) bar1="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --accel) accel="$2"; shift 2 ;;
    --device-bin) device_bin="$2"; shift 2 ;;
    --trace) device_opts+=(--trace); shift ;;
    --trace-json|--fault|--control)
      [ $# -ge 2 ] || die "$1 needs a value"
      device_opts+=("$1" "$2"); shift 2 ;;
    -h|--help) usage ;;
    --) shift; extra=("$@"); break ;;
    *) echo "run-vm: unknown argument $1" >&2; usage ;;
  esac
done

[ -n "$initrd" ] || die "--initrd is required (scripts/vm/make-initramfs.sh builds one)"
[ -r "$initrd" ] || die "cannot read the initramfs $initrd"
if [ -z "$kernel" ]; then
  kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$kernel" ] || die "no /boot/vmlinuz-*: install linux-image-amd64 or pass --kernel"
fi
# Debian installs kernels readable by root only.
[ -r "$kernel" ] || die "cannot read the kernel $kernel (Debian's are mode 0600: copy it, or run as root)"

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || die "qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)"

if [ -z "$device_bin" ]; then
  for candidate in "${GF_VMM_DEVICE:-}" "$repo/build/release/src/vmm/goldfish-vmm-device" \
                   "$(command -v goldfish-vmm-device || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then device_bin="$candidate"; break; fi
  done
  [ -n "$device_bin" ] || die "goldfish-vmm-device not found: build it (cmake --preset release && cmake --build --preset release) or pass --device-bin"
fi

# QEMU 7.2's proxy computes a BAR's size in a signed int, so a 2 GiB BAR1 aborts QEMU
# (pci_register_bar: is_power_of_2); 1 GiB is the largest that works.
bar1_bytes=$(numfmt --from=iec "${bar1^^}" 2>/dev/null || true)
[ -n "$bar1_bytes" ] || die "--bar1-size $bar1: not a size"
[ "$bar1_bytes" -le $((1 << 30)) ] || die "--bar1-size $bar1: QEMU 7.2's x-pci-proxy-dev cannot register a BAR above 1G"

case "$accel" in
  auto)
    # QEMU tries the accelerators in order, so a /dev/kvm that cannot run guests falls back.
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel_args=(-accel kvm -accel tcg); else accel_args=(-accel tcg); fi ;;
  kvm|tcg) accel_args=(-accel "$accel") ;;
  *) die "--accel is auto, kvm or tcg" ;;
esac

# The proxy device is appended by goldfish-vmm-device, which serves the device in this
# process and runs QEMU as its child, then exits with QEMU's status: when this script
# returns, the device server and QEMU have both ended. (--bar1-size comes last so that
# binaries from before goldfish-vmm-device split QEMU's command off itself still work: CLI11
# took a "--" right after --fault's value as the end of --fault's values.)
exec "$device_bin" "${device_opts[@]}" --bar1-size "$bar1" -- \
  "$qemu" \
  -machine pc,memory-backend=mem \
  -object "memory-backend-memfd,id=mem,size=$memory,share=on" \
  -m "$memory" \
  "${accel_args[@]}" \
  -smp "$cpus" \
  -nographic -no-reboot -nic none \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1${append:+ $append}" \
  "${extra[@]}"
