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
	for d in demo-blk demo-net; do
		vdpa_exists "$d" && vdpa dev del "$d" 2>/dev/null
	done
	daemon_stop vduse-blk demo-blk 2>/dev/null
	daemon_stop vduse-net demo-net 2>/dev/null
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
tell "Our daemon vduse-blk (tools/vduse-blk, built on our libvduse) creates a"
tell "VDUSE virtio-blk device named demo-blk with two queues:"
tell "  vduse-blk --name demo-blk --file /tmp/demo-disk.img --num-queues 2"
tell "(qemu-storage-daemon --export vduse-blk,... works the same way.)"
daemon_start vduse-blk demo-blk --file /tmp/demo-disk.img --num-queues 2
daemon_ready vduse-blk demo-blk >/dev/null || die "vduse-blk did not create /dev/vduse/demo-blk"
sed 's/^/   daemon: /' /tmp/vduse-blk-demo-blk.log
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
daemon_stop vduse-blk demo-blk
tell "vdpa dev del demo-blk; vduse-blk exits on SIGTERM and destroys the device."
wait_for 10 sh -c '! test -e /dev/vduse/demo-blk' || die "the device is still there"
tell "/dev/vduse/demo-blk is gone; the data stays in /tmp/demo-disk.img."

say "7. A network interface served by a userspace program"
tell "Our daemon vduse-net creates a VDUSE virtio-net device whose other end is"
tell "a TAP interface; every frame the kernel sends on one comes out of the other:"
tell "  vduse-net --name demo-net --tap demo-tap --mtu 1500"
daemon_start vduse-net demo-net --tap demo-tap --mtu 1500
daemon_ready vduse-net demo-net >/dev/null || die "vduse-net did not create /dev/vduse/demo-net"
sed 's/^/   daemon: /' /tmp/vduse-net-demo-net.log
tell "  vdpa dev add name demo-net mgmtdev vduse"
vdpa_add demo-net virtio_vdpa || die "vdpa dev add demo-net failed"
wait_for 20 vdpa_netdev demo-net || die "no network interface appeared"
if0=$(vdpa_netdev demo-net)
tell "The kernel's virtio_net made the interface $if0 (MAC $(cat /sys/class/net/$if0/address))."
tell "It goes into network namespace demo-a and the TAP into demo-b, so the only"
tell "path between them is through the daemon and our module:"
ip netns add demo-a
ip netns add demo-b
ip link set "$if0" netns demo-a
ip link set demo-tap netns demo-b
ip -n demo-a addr add fe80::a/64 dev "$if0" nodad
ip -n demo-b addr add fe80::b/64 dev demo-tap nodad
ip -n demo-a link set "$if0" up
ip -n demo-b link set demo-tap up
tell "ip netns exec demo-a ping -6 fe80::b%$if0:"
ip netns exec demo-a ping -6 -c 5 -i 0.3 -W 2 "fe80::b%$if0" 2>&1 | tail -n 2 | sed 's/^/   /'
[ "${PIPESTATUS[0]}" -eq 0 ] || die "ping failed"
tell "(DPDK's testpmd can be the device too: --vdev net_vhost0,iface=/dev/vduse/NAME;"
tell " make check runs that in tools/testing/suites/net.sh.)"

say "8. Clean up"
cleanup
tell "Everything is detached and destroyed; 'rmmod vduse' would now succeed."
echo
echo "Demo finished. Next: 'make check' runs every test suite; README.md has more."
