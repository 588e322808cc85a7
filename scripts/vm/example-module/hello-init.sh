#!/bin/sh
# /init for trying goldfish_as_hello in a VM (docs/vm.md, "Test your own driver"): load the
# module, show what it logged, power off. Pass module options on the kernel command line
# with run-vm.sh --append "hello=handles=3" (read from /proc/cmdline here).
mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
args=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^hello=//p' | tr ',' ' ')
echo "hello-init: insmod goldfish_as_hello.ko $args"
insmod /lib/modules/goldfish_as_hello.ko $args
echo "hello-init: insmod exit $?"
dmesg | grep goldfish_as_hello
poweroff -f
