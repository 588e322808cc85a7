#!/bin/sh
# /init of the node VM: load FUSE, serve /dev/goldfish_address_space with goldfish-asd on
# the real PCI function (--pci auto, the sysfs backend), run the node conformance program
# and `goldfish-as selftest` against it, stop the daemon, power off. Every result is a
# "gf-system: ..." line (or the programs' own output) on the console for the host to check.
mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
echo
echo "gf-system: guest up after $(cut -d' ' -f1 /proc/uptime) s"
for module in /lib/modules/*.ko; do
  [ -e "$module" ] && insmod "$module"
done
node=/dev/goldfish_address_space

/bin/goldfish-asd --pci auto >/tmp/asd.log 2>&1 &
daemon=$!
ready=no
for _ in $(seq 300); do
  if grep -q '^goldfish-asd: serving' /tmp/asd.log 2>/dev/null; then ready=yes; break; fi
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.1
done
cat /tmp/asd.log
if [ "$ready" = yes ]; then
  echo "gf-system: daemon ready at $(cut -d' ' -f1 /proc/uptime) s"
  /bin/node_conformance "$node"
  echo "gf-system: conformance exit $? at $(cut -d' ' -f1 /proc/uptime) s"
  /bin/goldfish-as --node "$node" selftest
  echo "gf-system: selftest exit $? at $(cut -d' ' -f1 /proc/uptime) s"
  /bin/goldfish-as --node "$node" status
  kill -TERM "$daemon"
  wait "$daemon"
  echo "gf-system: daemon exit $?"
else
  echo "gf-system: daemon not ready"
fi

# The emulated device on this kernel, which has no FUSE passthrough: the daemon must say
# why mmap is unavailable and serve everything else.
emulated=/tmp/goldfish_address_space
/bin/goldfish-asd --node "$emulated" --bar1-size 1073741824 >/tmp/asd-emulated.log 2>&1 &
daemon=$!
ready=no
for _ in $(seq 300); do
  if grep -q '^goldfish-asd: serving' /tmp/asd-emulated.log 2>/dev/null; then ready=yes; break; fi
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.1
done
cat /tmp/asd-emulated.log
if [ "$ready" = yes ]; then
  /bin/node_conformance "$emulated"
  echo "gf-system: emulated conformance exit $?"
  kill -TERM "$daemon"
  wait "$daemon"
  echo "gf-system: emulated daemon exit $?"
else
  echo "gf-system: emulated daemon not ready"
fi
poweroff -f
