#!/bin/sh
# /init of the probe VM: mount the basics, run the static probe against the device, then
# the BAR1 program (guest_bar1: guest mappings of BAR1, a host store seen by the guest),
# print markers the host looks for, power off.
mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
echo
echo "gf-system: guest up after $(cut -d' ' -f1 /proc/uptime) s"
/bin/guest_probe
echo "gf-system: probe exit $? at $(cut -d' ' -f1 /proc/uptime) s"
if [ -x /bin/guest_bar1 ]; then
  /bin/guest_bar1
  echo "gf-system: bar1 exit $? at $(cut -d' ' -f1 /proc/uptime) s"
fi
poweroff -f
