#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours stock
# kernels: all
# timeout: 1800
#
# Our block daemon, tools/vduse-blk (built on tools/lib/vduse), on the
# module under test.  Every backend (file, file with O_DIRECT, RAM, null)
# with one and two queues, split and packed rings, serves a disk that
# virtio_blk uses and fio verifies with crc32c; a file system on it
# survives a remount and fsck; discard, write-zeroes, flush and read-only
# mode do what virtio-blk says; the VM path (vhost_vdpa + qemu-io) reads
# back what it wrote; kill -9 in the middle of fio and a restart with the
# same reconnect log lose nothing; SIGTERM destroys the device.
. "$(dirname "$0")/lib.sh"
cd /tmp || exit 1

MiB=$((1024 * 1024))
BLK=vduse-blk
NAME=

teardown() {
	# A daemon that died with requests in flight must come back to finish
	# them, or removing the disk waits for them forever.
	if [ "$NAME" = vb-recon ] && proc_gone "$(daemon_pid $BLK vb-recon)"; then
		daemon_start $BLK vb-recon "${RECON_ARGS[@]}"
		daemon_ready $BLK vb-recon >/dev/null
	fi
	[ -n "$FIO_PID" ] && wait_for 120 proc_gone "$FIO_PID"
	[ -n "$NAME" ] && daemon_teardown $BLK "$NAME"
	NAME=
}
FIO_PID=
RECON_ARGS=()
NEED_TEARDOWN=teardown
trap teardown EXIT

# ---------------------------------------------------------------------------
# Arguments

check "vduse-blk --help explains the options" \
	sh -c "$TOOLS/$BLK --help | grep -q -- '--reconnect-log'"
for bad in "--name x" "--name x --file /nonexistent/img" \
	"--name x --ram 16M --file /tmp/x" "--name x --ram 12Q" \
	"--name x --ram 16M --queue-size 100" "--name x --ram 16M --bogus" \
	"--name x --ram 16M --logical-block-size 1000" \
	"--name x --ram 16M --num-queues 0"; do
	# shellcheck disable=SC2086
	check "vduse-blk $bad: refused with exit status 2 and a message" \
		sh -c "$TOOLS/$BLK $bad 2>/tmp/err; rc=\$?; cat /tmp/err;
			test \$rc -eq 2 && test -s /tmp/err"
done
check_fails "no /dev/vduse/x was left behind" test -e /dev/vduse/x

# ---------------------------------------------------------------------------
# blk_up NAME ARGS...: start the daemon, attach the device to virtio_vdpa and
# set DEV to its disk.
blk_up() {
	NAME=$1
	shift
	daemon_start $BLK "$NAME" "$@"
	need "$NAME ($*): vduse-blk serves /dev/vduse/$NAME" daemon_ready $BLK "$NAME"
	need "$NAME: vdpa dev add, bound to virtio_vdpa" vdpa_add "$NAME" virtio_vdpa
	need "$NAME: virtio_blk made a disk of it" wait_for 30 vdpa_blkdev "$NAME"
	DEV=$(vdpa_blkdev "$NAME")
}

# blk_down: detach, stop with SIGTERM, check the device is gone.
blk_down() {
	local rc
	check "$NAME: vdpa dev del" vdpa_del "$NAME"
	daemon_stop $BLK "$NAME"
	rc=$?
	check "$NAME: vduse-blk exits with status 0 on SIGTERM" test $rc -eq 0
	check "$NAME: SIGTERM destroyed /dev/vduse/$NAME" \
		wait_for 10 sh -c "! test -e /dev/vduse/$NAME"
	NAME=
}

# feature_bit BIT: 1 when the virtio driver negotiated feature BIT.
feature_bit() {
	local f
	f=$(cat /sys/bus/vdpa/devices/"$NAME"/virtio*/features)
	echo "${f:$1:1}"
}

nr_queues() { ls "/sys/block/${DEV#/dev/}/mq" | wc -l; }

# fio_mix BYTES: random writes of 4 KiB to 1 MiB from two jobs, each on its
# own region, verified with crc32c.
fio_mix() {
	local per=$(($1 / 2))
	fio_verify "$1" --name=mix --filename="$DEV" --direct=1 \
		--ioengine=libaio --rw=randwrite --bsrange=4k-1m --iodepth=8 \
		--numjobs=2 --size=$per --offset_increment=$per --randrepeat=1
}
fio_seq() {
	fio_verify "$1" --name=seq --filename="$DEV" --direct=1 \
		--ioengine=libaio --rw=write --bs=128k --iodepth=4 --size="$1"
}

# The image lives where O_DIRECT works (vb-file2).  The guest's /tmp is a
# tmpfs, which has O_DIRECT only since 6.6: on older kernels an ext4 in a
# loop device under /tmp holds the image.
IMG=/tmp/vblk.img
if ! dd if=/dev/zero of=/tmp/odirect-probe bs=4k count=1 oflag=direct \
	status=none 2>/dev/null; then
	echo "# /tmp has no O_DIRECT on $(uname -r): the image goes on an ext4 in a loop device"
	modprobe loop
	truncate -s $((192 * MiB)) /tmp/odirect.ext4
	mkdir -p /tmp/odirect
	need "an ext4 with O_DIRECT for the image" \
		sh -c "mkfs.ext4 -q -F /tmp/odirect.ext4 && mount -o loop /tmp/odirect.ext4 /tmp/odirect"
	IMG=/tmp/odirect/vblk.img
fi
rm -f /tmp/odirect-probe
truncate -s 0 $IMG
truncate -s $((128 * MiB)) $IMG

# File backend, one queue, split ring: a file system and fio.
blk_up vb-file1 --file $IMG --num-queues 1 --no-packed
check "vb-file1: the disk has 1 queue" test "$(nr_queues)" -eq 1
check "vb-file1: its size is that of the file" \
	test "$(blockdev --getsize64 "$DEV")" -eq $((128 * MiB))
check "vb-file1: split ring negotiated" test "$(feature_bit 34)" = 0
check "vb-file1: mkfs.ext4" mkfs.ext4 -q -F "$DEV"
mkdir -p /tmp/vbmnt
fs_roundtrip() {
	mount "$DEV" /tmp/vbmnt || return 1
	for i in 1 2 3; do head -c 3M /dev/urandom >/tmp/vbmnt/f$i; done
	(cd /tmp/vbmnt && sha256sum f* >/tmp/vb.sums)
	umount /tmp/vbmnt && echo 3 >/proc/sys/vm/drop_caches &&
		mount "$DEV" /tmp/vbmnt &&
		(cd /tmp/vbmnt && sha256sum -c --quiet /tmp/vb.sums)
	local rc=$?
	umount /tmp/vbmnt
	return $rc
}
check "vb-file1: files written on ext4 read back after a remount" fs_roundtrip
check "vb-file1: fsck.ext4 finds the file system clean" fsck.ext4 -fn "$DEV"
check "vb-file1: fio crc32c verify, random 4 KiB-1 MiB, 2 jobs" fio_mix $((16 * MiB))
blk_down

# File backend with O_DIRECT, two queues, packed ring.
blk_up vb-file2 --file $IMG --direct --num-queues 2
check "vb-file2: the disk has 2 queues" test "$(nr_queues)" -eq 2
check "vb-file2: packed ring negotiated" test "$(feature_bit 34)" = 1
check "vb-file2: fio crc32c verify, random 4 KiB-1 MiB, 2 jobs" fio_mix $((16 * MiB))
check "vb-file2: fio crc32c verify, sequential 128 KiB" fio_seq $((8 * MiB))

# Discard and write-zeroes reach the file.
pattern_at() {	# pattern_at MiB-OFFSET: 1 MiB of 0x5a at that offset of the disk
	head -c $MiB /dev/zero | tr '\0' 'Z' >/tmp/vb.pat
	dev_write "$DEV" $(($1 * MiB)) /tmp/vb.pat
}
zeroes_at() {	# zeroes_at FILE MiB-OFFSET
	cmp -n $MiB -i $(($2 * MiB)):0 "$1" /dev/zero
}
check "vb-file2: discard support is advertised" \
	test "$(cat "/sys/block/${DEV#/dev/}/queue/discard_max_bytes")" -gt 0
check "vb-file2: 1 MiB of data at 40 MiB" pattern_at 40
check "vb-file2: blkdiscard of it" blkdiscard -o $((40 * MiB)) -l $MiB "$DEV"
check "vb-file2: the discarded range reads back as zeroes from the file" \
	zeroes_at $IMG 40
check "vb-file2: 1 MiB of data at 48 MiB" pattern_at 48
check "vb-file2: blkdiscard --zeroout (write-zeroes) of it" \
	blkdiscard -z -o $((48 * MiB)) -l $MiB "$DEV"
check "vb-file2: the zeroed range reads back as zeroes, on the disk and in the file" \
	sh -c "dd if=$DEV bs=1M count=1 skip=48 iflag=direct status=none | cmp -n $MiB - /dev/zero &&
		cmp -n $MiB -i $((48 * MiB)):0 $IMG /dev/zero"
check "vb-file2: a flush (fio with fsync after every write) succeeds" \
	fio --name=fl --filename="$DEV" --direct=1 --rw=write --bs=4k \
	--size=1M --offset=60M --fsync=1 --output=/dev/null
check "vb-file2: the volatile write cache is advertised (flush offered)" \
	grep -q "write back" "/sys/block/${DEV#/dev/}/queue/write_cache"
blk_down

# RAM backend, two queues, split; then one queue, packed, with umem.
blk_up vb-ram2 --ram 64M --num-queues 2 --no-packed
check "vb-ram2: the disk is 64 MiB" test "$(blockdev --getsize64 "$DEV")" -eq $((64 * MiB))
check "vb-ram2: fio crc32c verify, random 4 KiB-1 MiB, 2 jobs" fio_mix $((16 * MiB))
# Ours gives idle bounce pages back (and counts them in debugfs
# vduse/stats); the stock module keeps them for the life of the device and
# counts nothing.
bounce_pages() { vduse_stat "$NAME" bounce_pages; }
# The most bounce pages seen while fio reads for 3 s.
bounce_pages_busy() {
	local pid max=0 n
	fio --name=bp --filename="$DEV" --direct=1 --ioengine=libaio \
		--rw=randread --bs=64k --iodepth=8 --time_based --runtime=3 \
		--output=/dev/null &
	pid=$!
	while kill -0 $pid 2>/dev/null; do
		n=$(bounce_pages)
		[ "$n" -gt $max ] && max=$n
		sleep 0.2
	done
	wait $pid && echo $max
}
bounce_pages_none() { test "$(bounce_pages)" = 0; }
if [ "${VM_MODULE:-ours}" = ours ] && [[ $(uname -r) == 6.1.* ]]; then
	echo "# skip - vb-ram2: idle bounce pages are freed: needs anonymous files with an inode of their own (Linux 6.7), 6.1 keeps the pages"
elif [ "${VM_MODULE:-ours}" = ours ]; then
	busy=$(bounce_pages_busy)
	check "vb-ram2: bounce pages are in use during I/O (${busy:-?} seen)" \
		test "${busy:-0}" -gt 0
	check "vb-ram2: idle for a second, every bounce page is freed" \
		wait_for 15 bounce_pages_none
	check "vb-ram2: fio crc32c verify after the pages were freed" fio_mix $((8 * MiB))
	check "vb-ram2: and freed again when idle" wait_for 15 bounce_pages_none
else
	echo "# skip - vb-ram2: idle bounce pages are freed: the stock module keeps them (no vduse/stats)"
fi
blk_down

blk_up vb-ram1 --ram 32M --num-queues 1 --umem --logical-block-size 4096
check "vb-ram1: 4 KiB logical blocks" \
	test "$(blockdev --getss "$DEV")" -eq 4096
check "vb-ram1: fio crc32c verify, random 4 KiB-1 MiB, 2 jobs (umem)" fio_mix $((16 * MiB))
check "vb-ram1: fio crc32c verify, sequential 128 KiB" fio_seq $((8 * MiB))
# REG_UMEM pins the daemon's pages: they show up as its VmPin.
vmpin_kb() { awk '/^VmPin:/ { print $2 }' "/proc/$(daemon_pid $BLK vb-ram1)/status"; }
check "vb-ram1: the bounce area is the daemon's own memory (VmPin $(vmpin_kb) kB)" \
	test "$(vmpin_kb)" -gt 0
blk_down

# Null backend: reads and writes complete, nothing is stored.
blk_up vb-null --null 1G --num-queues 2
check "vb-null: a 1 GiB disk" test "$(blockdev --getsize64 "$DEV")" -eq $((1024 * MiB))
check "vb-null: fio random reads and writes complete without errors" \
	fio --name=null --filename="$DEV" --direct=1 --ioengine=libaio \
	--rw=randrw --bs=4k --iodepth=16 --numjobs=2 --size=16M \
	--output=/dev/null
check "vb-null: an I/O beyond the end fails" \
	sh -c "! dd if=/dev/zero of=$DEV bs=4k count=1 seek=$((256 * 1024)) oflag=direct status=none"
blk_down

# Read-only.
blk_up vb-ro --file $IMG --readonly
check "vb-ro: the kernel sees a read-only disk" test "$(blockdev --getro "$DEV")" -eq 1
check "vb-ro: reads return the file's data" \
	sh -c "dd if=$DEV bs=1M count=1 skip=40 iflag=direct status=none | cmp -n $MiB - /dev/zero"
check_fails "vb-ro: a write is refused" \
	dd if=/dev/zero of="$DEV" bs=4k count=1 oflag=direct status=none
blk_down

# ---------------------------------------------------------------------------
# The VM path: vhost_vdpa and QEMU's virtio-blk-vhost-vdpa driver (libblkio).
NAME=vb-vhost
daemon_start $BLK $NAME --ram 32M --num-queues 1
need "vb-vhost: vduse-blk serves /dev/vduse/$NAME" daemon_ready $BLK $NAME
need "vb-vhost: vdpa dev add, bound to vhost_vdpa" vdpa_add $NAME vhost_vdpa
VHOST=$(vdpa_vhostdev $NAME)
qio() {
	qemu-io --image-opts \
		"driver=virtio-blk-vhost-vdpa,path=$VHOST,cache.direct=on" "$@"
}
check "vb-vhost: qemu-io writes 0xab and 0xcd at several sizes" \
	qio -c "write -P 0xab 0 4M" -c "write -P 0xcd 8M 64k" -c "aio_write -P 0x11 16M 1M" -c aio_flush
check "vb-vhost: qemu-io, reopened, reads them back" \
	qio -c "read -P 0xab 0 4M" -c "read -P 0xcd 8M 64k" -c "read -P 0x11 16M 1M"
check_fails "vb-vhost: qemu-io reports a wrong pattern" qio -c "read -P 0xcd 0 4k"
blk_down

# ---------------------------------------------------------------------------
# kill -9 in the middle of fio, restart with the same reconnect log.
LOG=/tmp/vb-recon.log
rm -f $LOG
blk_up vb-recon --file $IMG --num-queues 2 --reconnect-log $LOG
check "vb-recon: the reconnect log exists" test -s $LOG
FIO_JOB=(--name=recon --filename="$DEV" --direct=1 --ioengine=libaio
	--rw=randwrite --bsrange=4k-256k --iodepth=8 --numjobs=2 --size=16M
	--offset=64M --offset_increment=16M --randrepeat=1)
timeout 300 fio --output-format=json --output=/tmp/fio-vb.json --eta=never \
	"${FIO_JOB[@]}" --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
	--thinktime=300ms --thinktime_blocks=8 >/dev/null 2>/tmp/fio-vb.err &
FIO_PID=$!
inflight() {
	local f
	read -r -a f <"/sys/block/${DEV#/dev/}/inflight"
	[ $((f[0] + f[1])) -gt 0 ]
}
RECON_ARGS=(--file $IMG --num-queues 2 --reconnect-log $LOG)
# Crash 1: the daemon is frozen, requests pile up in the rings, SIGKILL.
sleep 3
kill -STOP "$(daemon_pid $BLK vb-recon)"
check "crash 1: requests pile up while the daemon is stopped" wait_for 20 inflight
daemon_stop $BLK vb-recon KILL
rc=$?
check "crash 1: vduse-blk died of SIGKILL" test $rc -eq 137
check "crash 1: /dev/vduse/vb-recon and $DEV remain" \
	sh -c "test -c /dev/vduse/vb-recon && test -b $DEV"
# Crash 2: the next daemon kills itself holding the 40th request it took,
# so at least one request is in flight in the log.
# (It may be gone before anyone sees it serve: requests piled up meanwhile.)
daemon_start $BLK vb-recon "${RECON_ARGS[@]}" --crash-after 40
check "crash 2: the next vduse-blk dies of SIGKILL holding its 40th request" \
	wait_for 120 proc_gone "$(daemon_pid $BLK vb-recon)"
daemon_stop $BLK vb-recon
rc=$?
check "crash 2: exit status 137" test $rc -eq 137
check "crash 2: it had re-attached to the device first (crash 1 survived)" \
	test "$(grep -c 'ready.*reconnected' /tmp/vduse-blk-vb-recon.log)" -eq 1
daemon_start $BLK vb-recon "${RECON_ARGS[@]}"
need "crash 2: a new vduse-blk takes /dev/vduse/vb-recon back" \
	daemon_ready $BLK vb-recon
check "crash 2: it resubmitted the requests in flight from the log" \
	wait_for 10 grep -q 'resubmitting [1-9]' /tmp/vduse-blk-vb-recon.log
wait_for 300 proc_gone $FIO_PID
wait $FIO_PID
rc=$?
FIO_PID=
check "vb-recon: fio survived two SIGKILLs and verified everything it wrote" \
	fio_result /tmp/fio-vb.json $((32 * MiB)) $rc
echo "# reconnects: $(grep -c 're-attached' /tmp/vduse-blk-vb-recon.log)," \
	"requests resubmitted: $(grep -o 'resubmitting [0-9]*' /tmp/vduse-blk-vb-recon.log | awk '{ n += $2 } END { print n + 0 }')"
check "vb-recon: both restarted daemons re-attached to the device" \
	test "$(grep -c 're-attached to the existing device' /tmp/vduse-blk-vb-recon.log)" -eq 2
check "vb-recon: no I/O errors in the kernel log" sh -c "! dmesg | grep -i 'I/O error'"
blk_down
check_fails "vb-recon: the log is removed on a clean shutdown" test -e $LOG

finish
