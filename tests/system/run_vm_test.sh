#!/usr/bin/env bash
# A system test: boots Debian's kernel under QEMU 7.2 with the goldfish address space
# device attached (scripts/vm/run-vm.sh), runs programs inside the guest, and checks what
# they print on the console.
#
#   run_vm_test.sh probe --device-bin PATH --work-dir DIR --probe PATH --bar1 PATH
#   run_vm_test.sh node  --device-bin PATH --work-dir DIR --daemon PATH --tool PATH \
#                        --conformance PATH
#
# probe: the static guest_probe drives the registers through sysfs; then guest_bar1 maps
#        BAR1 blocks and a type-6 slot and checks its stores, and this script, through the
#        device's control socket, reads the guest's tag and stores a value the guest waits
#        for (the host store).
# node:  goldfish-asd --pci auto serves the node in the guest; node_conformance and
#        goldfish-as selftest run against it.
# Either way, when run-vm.sh returns nothing of the VM may be left: the device server's
# last line is on the console and no process of this VM remains, not even a zombie.
# Exit 0 on success, 77 (CTest: skipped) when QEMU, a guest kernel or FUSE cannot be had.
set -euo pipefail

mode="${1:-}"
[ $# -gt 0 ] && shift
device_bin="" work="" probe="" bar1="" daemon="" tool="" conformance=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device-bin) device_bin="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    --probe) probe="$2"; shift 2 ;;
    --bar1) bar1="$2"; shift 2 ;;
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
    [ -x "$bar1" ] || fail "no guest BAR1 program at $bar1"
    "${make_initramfs[@]}" --init "$here/probe_init.sh" "$probe" "$bar1"
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

# The device's control socket (a UNIX socket path has at most 107 bytes).
sock="$work/control.sock"
[ ${#sock} -lt 100 ] || sock=$(mktemp -u /tmp/gf-vm-XXXXXXXX.sock)
host_store="$work/host-store.txt"
vm_pids="$work/vm-pids.txt"
stop_flag="$work/helpers.stop"  # the background helpers below end when it appears

# Every process whose command line names this VM's initramfs (timeout, the device server,
# QEMU), as "pid starttime comm": after the VM, none of them may exist, zombie or not.
record_vm_pids() {
  set +e
  local until=$((SECONDS + 170)) pid stat
  while [ $SECONDS -lt $until ] && [ ! -e "$stop_flag" ]; do
    for pid in $(pgrep -f -- "$initrd"); do
      stat=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
      echo "$pid $(echo "$stat" | cut -d' ' -f20) $(cat "/proc/$pid/comm" 2>/dev/null)" >>"$vm_pids"
    done
    sleep 0.5
  done
}

# The host store: when the guest asks for it, read its tag at that BAR1 offset through the
# control socket (the host's view), then write the tag's complement, which the guest waits
# for. Bounded; the results go to $host_store for the checks below.
little_endian() { local hex=$1 out="" i; for ((i = ${#hex} - 2; i >= 0; i -= 2)); do out+=${hex:i:2}; done; echo "$out"; }
watch_host_store() {
  set +e
  local until=$((SECONDS + 170)) line="" offset tag want got complement out
  while [ $SECONDS -lt $until ] && [ ! -e "$stop_flag" ]; do
    line=$(tr -d '\r' <"$console" | grep -a -o -m 1 'bar1: host store wanted at offset 0x[0-9a-f]* after guest tag 0x[0-9a-f]\{16\}')
    [ -n "$line" ] && break
    grep -aq 'gf-system: bar1 exit' "$console" && break
    sleep 0.1
  done
  if [ -z "$line" ]; then
    echo "host store: the guest never asked for it"
    return
  fi
  offset=${line#*at offset } offset=${offset%% *} tag=${line##*guest tag 0x}
  want=$(little_endian "$tag")
  if got=$("$device_bin" --control "$sock" --send "read-bar1 $offset 8" 2>&1) && [ "$got" = "$want" ]; then
    echo "host saw guest tag: yes (read-bar1 $offset 8 = $got)"
  else
    echo "host saw guest tag: NO (read-bar1 $offset 8 = '$got', want $want)"
  fi
  complement=$(echo "$tag" | tr '0123456789abcdef' 'fedcba9876543210')
  if out=$("$device_bin" --control "$sock" --send "write-bar1 $offset $(little_endian "$complement")" 2>&1); then
    echo "host write: ok (write-bar1 $offset of 0x$complement)"
  else
    echo "host write: FAILED ($out)"
  fi
  out=$("$device_bin" --control "$sock" --send stats 2>&1)
  echo "host stats: $out"
}

helpers=()
# Asks the helpers to end, gives them 2 s, then kills what is left; reaps them all.
stop_helpers() {
  local pid _
  touch "$stop_flag"
  for _ in $(seq 20); do
    pid=""
    for pid in "${helpers[@]}"; do kill -0 "$pid" 2>/dev/null && break; pid=""; done
    [ -z "$pid" ] && break
    sleep 0.1
  done
  for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${helpers[@]}"; do wait "$pid" 2>/dev/null || true; done
  helpers=()
}
trap stop_helpers EXIT
rm -f "$stop_flag"
: >"$vm_pids"
: >"$console"
record_vm_pids &
helpers+=($!)
if [ "$mode" = probe ]; then
  watch_host_store >"$host_store" 2>&1 &
  helpers+=($!)
fi

# The whole boot, test and power-off; TCG, as on machines without a usable /dev/kvm.
start=$(date +%s%N)
status=0
timeout 150 "$repo/scripts/vm/run-vm.sh" --device-bin "$device_bin" --kernel "$kernel" \
  --initrd "$initrd" --accel tcg --append "quiet" --control "$sock" \
  </dev/null >"$console" 2>&1 || status=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
# The moment run-vm.sh returns, everything of the VM has ended: the device server has
# logged its last line, and no process of this VM is left (running or a zombie).
server_done=no
grep -aq '^goldfish-vmm-device: \(connection closed by QEMU\|ending connection\)' "$console" && server_done=yes
stop_helpers  # the recorder's own pgrep names the initramfs too
left_running=$(pgrep -a -f -- "$initrd" || true)
left_over=""
while read -r pid starttime comm; do
  [ -n "$pid" ] || continue
  stat=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
  if [ "$(echo "$stat" | cut -d' ' -f20)" = "$starttime" ]; then
    left_over+="$pid ($comm, state $(echo "$stat" | cut -d' ' -f1)) "
  fi
done < <(sort -u "$vm_pids")

echo "---- guest console (filtered) ----"
# Without carriage returns and the firmware's terminal escapes.
sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' -e 's/\r//g' "$console" >"$work/console.txt"
# The per-store lines of guest_bar1 only when one failed: its summaries say the rest.
grep -a -E '^(gf-system|probe|bar1|conformance|goldfish-|node:|selftest|ok |not ok|FAIL|PASS)|Kernel panic|BUG' "$work/console.txt" \
  | grep -a -v -E '^bar1: .* store [1248] at .* ok$' || true
echo "----------------------------------"
echo "system test: $mode VM ran ${elapsed_ms} ms (boot, test, power-off); QEMU exit $status"
if [ "$mode" = probe ]; then
  echo "---- host store (control socket) ----"
  cat "$host_store"
  echo "---- guest timings (TCG) ----"
  grep -a '^bar1: time ' "$work/console.txt" || true
  echo "-----------------------------"
fi

[ "$status" -eq 0 ] || fail "QEMU exited with $status (124: timed out); console: $console"
has() { grep -aqF -- "$1" "$work/console.txt"; }
[ "$server_done" = yes ] || fail "the device server's last line was not on the console when run-vm.sh returned"
[ -z "$left_running" ] || fail "left running after run-vm.sh returned: $left_running"
[ -z "$left_over" ] || fail "left after run-vm.sh returned: $left_over"
[ -s "$vm_pids" ] || fail "no process of the VM was ever seen (pgrep -f $initrd)"
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
    # guest_bar1: its own stores read back in each kind of range, the host's store seen by
    # the guest, the guest's tag seen by the host.
    for range in plain type-5 type-6; do
      has "bar1: $range 16 of 16 stores read back" || fail "BAR1 stores in the $range range did not all read back"
    done
    ! grep -aq '^bar1: .* FAILED$' "$work/console.txt" || fail "a BAR1 check failed: $(grep -a -m 1 '^bar1: .* FAILED$' "$work/console.txt")"
    has "bar1: host store seen" || fail "the guest did not see the host's store"
    grep -aq '^host saw guest tag: yes' "$host_store" || fail "the host did not see the guest's tag: $(head -n 1 "$host_store")"
    grep -aq '^host write: ok' "$host_store" || fail "the host's write failed: $(sed -n 2p "$host_store")"
    [ "$(grep -ac '^bar1: time .* median ' "$work/console.txt")" -ge 4 ] || fail "guest_bar1 printed no timings"
    has "bar1: PASS" || fail "guest_bar1 did not pass"
    has "gf-system: bar1 exit 0" || fail "guest_bar1 exited non-zero"
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
