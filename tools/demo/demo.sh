#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: what VDUSE does, step by step, inside the test guest with our
# module loaded.  Run by tools/testing/vm/run; every step says in plain
# words what it does and how to do the same on a real machine.
. /vduse/tools/testing/suites/lib.sh

say()  { printf '\n== %s\n' "$*"; }
tell() { printf '   %s\n' "$*"; }
die()  { printf '\nDEMO FAILED: %s\n' "$*"; cleanup; exit 1; }

cleanup() {
	ip netns del demo-a 2>/dev/null
	ip netns del demo-b 2>/dev/null
	umount /tmp/demo-mnt 2>/dev/null
	for d in demo-blk demo-net0 demo-net1; do
		vdpa_exists "$d" && vdpa dev del "$d" 2>/dev/null
	done
	qsd_stop demo-blk 2>/dev/null
	if [ -n "${tpmd:-}" ]; then
		kill "$tpmd" 2>/dev/null
		wait "$tpmd" 2>/dev/null
		exec 7>&-
		tpmd=
	fi
}

say "1. The module"
tell "We are in a throw-away VM running Debian's $(uname -r) kernel."
tell "Our vduse.ko is loaded (on a real machine: make && sudo insmod vduse.ko,"
tell "after 'sudo modprobe -a vdpa vhost_iotlb virtio_vdpa vhost_vdpa')."
grep '^vduse ' /proc/modules | sed 's/^/   lsmod: /'
tell "It created the control node and registered the 'vduse' management device:"
ls -l /dev/vduse/control | sed 's/^/   /'
vdpa mgmtdev show | sed 's/^/   /'

say "2. A disk served from a file by a userspace program"
truncate -s 256M /tmp/demo-disk.img
tell "Backing file: /tmp/demo-disk.img (256 MiB)."
tell "qemu-storage-daemon creates a VDUSE virtio-blk device named demo-blk:"
tell "  qemu-storage-daemon --blockdev driver=file,node-name=file0,filename=/tmp/demo-disk.img \\"
tell "    --export vduse-blk,id=exp0,node-name=file0,name=demo-blk,writable=on,num-queues=2"
qsd_start demo-blk /tmp/demo-disk.img writable=on,num-queues=2
wait_for 30 test -e /dev/vduse/demo-blk || die "the daemon did not create /dev/vduse/demo-blk"
tell "Now /dev/vduse/demo-blk exists: the daemon's end of the device."

say "3. Attach it to the host kernel"
tell "  vdpa dev add name demo-blk mgmtdev vduse"
tell "(virtio_vdpa binds it, so the kernel's virtio_blk driver sees a disk.)"
vdpa_add demo-blk virtio_vdpa || die "vdpa dev add failed"
wait_for 20 vdpa_blkdev demo-blk || die "no block device appeared"
disk=$(vdpa_blkdev demo-blk)
tell "The kernel now has $disk, served by the daemon through our module:"
lsblk "$disk" | sed 's/^/   /'

say "4. A file system on it"
mkfs.ext4 -q -F "$disk" || die "mkfs.ext4 failed"
mkdir -p /tmp/demo-mnt
mount "$disk" /tmp/demo-mnt || die "mount failed"
tell "mkfs.ext4 $disk; mount $disk /tmp/demo-mnt"
for i in 1 2 3 4 5; do
	head -c 4M /dev/urandom >"/tmp/demo-mnt/file$i"
done
(cd /tmp/demo-mnt && sha256sum file* >/tmp/demo-sums)
umount /tmp/demo-mnt
echo 3 >/proc/sys/vm/drop_caches
mount "$disk" /tmp/demo-mnt || die "remount failed"
if (cd /tmp/demo-mnt && sha256sum -c --quiet /tmp/demo-sums); then
	tell "Wrote 5 files of 4 MiB, unmounted, remounted: all checksums match."
else
	die "the files read back differ"
fi
df -h /tmp/demo-mnt | sed 's/^/   /'
umount /tmp/demo-mnt

say "5. How fast (fio, 4 KiB random reads, queue depth 16, 10 seconds)"
tell "Under software emulation (TCG) every layer is slow; with KVM it is much faster."
fio --name=demo --filename="$disk" --direct=1 --ioengine=libaio --rw=randread \
	--bs=4k --iodepth=16 --runtime=10 --time_based --size=128M \
	--output-format=terse --terse-version=3 >/tmp/demo-fio 2>&1 ||
	die "fio failed"
awk -F';' '{ printf "   %d IOPS, %.1f MiB/s\n", $8, $7 / 1024 }' /tmp/demo-fio

say "6. Detach and stop"
vdpa dev del demo-blk
qsd_stop demo-blk
tell "vdpa dev del demo-blk; the daemon exits on SIGTERM and destroys the device."
wait_for 10 sh -c '! test -e /dev/vduse/demo-blk' || die "the device is still there"
tell "/dev/vduse/demo-blk is gone; the data stays in /tmp/demo-disk.img."

say "7. A network: two virtio-net devices served by DPDK"
tell "DPDK's testpmd is the device side of two VDUSE net devices and forwards"
tell "packets between them:"
tell "  dpdk-testpmd --no-huge -m 1024 --no-pci \\"
tell "    --vdev net_vhost0,iface=/dev/vduse/demo-net0 --vdev net_vhost1,iface=/dev/vduse/demo-net1 \\"
tell "    -- --forward-mode=io --auto-start"
# testpmd quits when its standard input ends: give it a FIFO we keep open.
rm -f /tmp/demo-testpmd.in
mkfifo /tmp/demo-testpmd.in
dpdk-testpmd --no-huge -m 1024 --no-pci \
	--vdev 'net_vhost0,iface=/dev/vduse/demo-net0,queues=1' \
	--vdev 'net_vhost1,iface=/dev/vduse/demo-net1,queues=1' -- \
	--forward-mode=io --auto-start --nb-cores=1 --total-num-mbufs=16384 \
	</tmp/demo-testpmd.in >/tmp/demo-testpmd.log 2>&1 &
tpmd=$!
exec 7>/tmp/demo-testpmd.in
wait_for 60 test -e /dev/vduse/demo-net1 || die "testpmd did not create its devices"
for d in demo-net0 demo-net1; do
	vdpa_add "$d" virtio_vdpa || die "vdpa dev add $d failed"
done
if0=$(ls /sys/bus/vdpa/devices/demo-net0/virtio*/net)
if1=$(ls /sys/bus/vdpa/devices/demo-net1/virtio*/net)
tell "The kernel got two network interfaces, $if0 and $if1; each goes into its own"
tell "network namespace so the only path between them is through DPDK."
ip netns add demo-a
ip netns add demo-b
ip link set "$if0" netns demo-a
ip link set "$if1" netns demo-b
ip -n demo-a link set "$if0" up
ip -n demo-b link set "$if1" up
wait_for 20 sh -c "ip -n demo-b -6 addr show dev $if1 | grep -q 'fe80.*scope link *$'" ||
	wait_for 10 sh -c "ip -n demo-b -6 addr show dev $if1 | grep -q fe80"
ll=$(ip -n demo-b -6 addr show dev "$if1" | awk '/fe80/ { print $2 }' | cut -d/ -f1)
sleep 2
tell "ping -6 $ll%$if0 (from namespace demo-a):"
ip netns exec demo-a ping -6 -c 5 -W 2 -I "$if0" "$ll%$if0" 2>&1 | tail -n 2 | sed 's/^/   /'
[ "${PIPESTATUS[0]}" -eq 0 ] || die "ping failed"

say "8. Clean up"
cleanup
tell "Everything is detached and destroyed; 'rmmod vduse' would now succeed."
echo
echo "Demo finished. Next: 'make check' runs every test suite; README.md has more."
