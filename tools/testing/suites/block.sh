#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours stock
# kernels: all
#
# Block I/O on the host path, with unmodified clients only:
# qemu-storage-daemon serves a raw file in /tmp as a vduse-blk export,
# "vdpa dev add" attaches it, virtio_vdpa + virtio_blk make /dev/vdX of it.
# On that disk: ext4 (write, fsck, remount, checksums), fio with crc32c
# verification (random and sequential, 4 KiB to 1 MiB, several jobs, deep
# queues), O_DIRECT patterns and write-zeroes; the data survives detaching
# and re-attaching, and lands in the backing file.  Runs with one and with
# four queues, then once read-only with 4 KiB logical blocks.
. "$(dirname "$0")/lib.sh"
cd /tmp || exit 1

MiB=$((1024 * 1024))
IMG_SIZE=$((256 * MiB))
P4M=$((200 * MiB))			# 4 MiB of random data
P4K=$((224 * MiB + 7 * 4096))		# 4 KiB, not MiB-aligned
P512=$((240 * MiB + 3 * 512))		# one 512-byte sector
PZERO=$((232 * MiB))			# 1 MiB filled, then zeroed
NAME=

teardown() {
	[ -n "$NAME" ] && vduse_blk_teardown "$NAME"
	NAME=
}
NEED_TEARDOWN=teardown
trap teardown EXIT

head -c $((4 * MiB)) /dev/urandom >/tmp/pat4m
head -c 4096 /dev/urandom >/tmp/pat4k
head -c 512 /dev/urandom >/tmp/pat512
head -c $MiB /dev/urandom >/tmp/patfill
head -c $MiB /dev/zero >/tmp/zero1m

write_patterns() {
	dev_write "$1" $P4M /tmp/pat4m && dev_write "$1" $P4K /tmp/pat4k &&
		dev_write "$1" $P512 /tmp/pat512
}

write_then_zero() {
	dev_write "$1" $PZERO /tmp/patfill &&
		dev_has "$1" $PZERO /tmp/patfill &&
		blkdiscard -z -o $PZERO -l $MiB "$1"
}

disk_equals_file() {	# disk_equals_file DEV FILE MIB
	dd if="$1" bs=1M count="$3" iflag=direct status=none |
		cmp -n $(($3 * MiB)) - "$2"
}

# The patterns readable with 4 KiB logical blocks.
big_patterns_there() {
	dev_has "$1" $P4M /tmp/pat4m && dev_has "$1" $P4K /tmp/pat4k
}

# All the O_DIRECT patterns of one pass are where they were written.
patterns_there() {
	local dev=$1
	dev_has "$dev" $P4M /tmp/pat4m && dev_has "$dev" $P4K /tmp/pat4k &&
		dev_has "$dev" $P512 /tmp/pat512
}

# The same, in the backing file.
file_has_patterns() {
	local img=$1
	same_bytes /tmp/pat4m 0 "$img" $P4M $((4 * MiB)) &&
		same_bytes /tmp/pat4k 0 "$img" $P4K 4096 &&
		same_bytes /tmp/pat512 0 "$img" $P512 512
}

vdpa_shows() {	# vdpa_shows NAME NQ
	vdpa dev show "$1" | tee /dev/stderr |
		grep -q "^$1: type block mgmtdev vduse .*max_vqs $2 "
}

# write_files DIR: a tree of files of assorted sizes with known content;
# their sha256 sums go to DIR.sums (outside DIR).
write_files() {
	local dir=$1 i
	mountpoint -q "$dir" || { echo "$dir is not mounted"; return 1; }
	mkdir -p "$dir/a/b/c" || return 1
	for i in $(seq 1 24); do
		head -c $(((i * i * 37 % 512 + 1) * 4096 + i * 13)) /dev/urandom \
			>"$dir/a/f$i" || return 1
	done
	for i in $(seq 1 200); do
		echo "small file $i" >"$dir/a/b/c/s$i" || return 1
	done
	dd if=/dev/urandom of="$dir/big" bs=1M count=24 status=none || return 1
	(cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
		>"$dir.sums" || return 1
	sync
}

files_intact() {
	local dir=$1
	mountpoint -q "$dir" || { echo "$dir is not mounted"; return 1; }
	[ "$(wc -l <"$dir.sums")" -eq 225 ] || { echo "sums file incomplete"; return 1; }
	[ "$(find "$dir" -type f | wc -l)" -eq 225 ] || { echo "files missing"; return 1; }
	(cd "$dir" && sha256sum -c --quiet "$dir.sums")
}

# ext4 on DEV: make, fill, unmount, fsck, remount, compare.
fs_tests() {
	local t=$1 dev=$2 mnt=/tmp/mnt-$NAME
	mkdir -p "$mnt"
	check "$t mkfs.ext4 on $dev" timeout 300 mkfs.ext4 -q -F "$dev"
	check_rc "$t mount the ext4 filesystem" mount "$dev" "$mnt" || return
	check "$t write 225 files (about 50 MiB) on ext4" write_files "$mnt"
	check "$t umount" umount "$mnt"
	check "$t fsck.ext4 -fn finds the filesystem clean" \
		timeout 300 fsck.ext4 -fn "$dev"
	check_rc "$t mount it again" mount "$dev" "$mnt" || return
	check "$t every file reads back with its sha256 sum" files_intact "$mnt"
	check "$t fstrim (discard) on the mounted filesystem" fstrim "$mnt"
	check "$t final umount" umount "$mnt"
}

# The fio jobs of a pass.  Each job gets its own region (offset_increment),
# so every block has one writer and verify checks all of them.
FIO_COMMON=(--direct=1 --ioengine=libaio --randrepeat=1)
fio_rand4k() {	# fio_rand4k FILE JOBS [EXTRA...]: 16 MiB in all
	local f=$1 nj=$2 per=$((16 / $2))
	shift 2
	fio_verify $((nj * per * MiB)) --name=rand4k --filename="$f" \
		"${FIO_COMMON[@]}" --rw=randwrite --bs=4k --iodepth=32 \
		--numjobs="$nj" --size="${per}M" --offset_increment="${per}M" "$@"
}
fio_randmix() {	# fio_randmix FILE JOBS [EXTRA...]: 64 MiB in all
	local f=$1 nj=$2 per=$((64 / $2))
	shift 2
	fio_verify $((nj * per * MiB)) --name=randmix --filename="$f" \
		"${FIO_COMMON[@]}" --rw=randwrite --bsrange=4k-1m --iodepth=16 \
		--numjobs="$nj" --size="${per}M" --offset_increment="${per}M" "$@"
}
fio_seqmix() {	# fio_seqmix FILE [EXTRA...]: 64 MiB from 128 MiB on
	local f=$1
	shift
	fio_verify $((64 * MiB)) --name=seqmix --filename="$f" \
		"${FIO_COMMON[@]}" --rw=write --bsrange=4k-1m --iodepth=8 \
		--numjobs=2 --size=32M --offset=128M --offset_increment=32M "$@"
}

# rw_pass NQ JOBS: the writable export with NQ queues, fio with JOBS jobs.
rw_pass() {
	local nq=$1 nj=$2 t="[$1 queue(s)]" img=/tmp/vblk$1.img dev rc hwq
	NAME=vblk$nq
	rm -f "$img" "/tmp/qsd-$NAME.log"
	truncate -s $IMG_SIZE "$img"
	qsd_start "$NAME" "$img" "writable=on,num-queues=$nq,serial=vduse-serial-$nq"
	need "$t qemu-storage-daemon serves /dev/vduse/$NAME" qsd_ready "$NAME"
	need "$t vdpa dev add $NAME, bound to virtio_vdpa" vdpa_add "$NAME" virtio_vdpa
	need "$t virtio_blk made a disk of it" wait_for 30 vdpa_blkdev "$NAME"
	dev=$(vdpa_blkdev "$NAME")
	check "$t $dev is a block device" test -b "$dev"
	check "$t $dev has the size of the backing file" \
		test "$(blockdev --getsize64 "$dev")" = $IMG_SIZE
	# virtio_blk uses no more queues than there are CPUs.
	hwq=$((nq < $(nproc) ? nq : $(nproc)))
	check "$t $dev has $hwq hardware queue(s) ($(nproc) CPUs)" \
		test "$(ls "/sys/block/${dev#/dev/}/mq" | wc -l)" = "$hwq"
	check "$t $dev reports the export's serial number" \
		test "$(cat "/sys/block/${dev#/dev/}/serial")" = "vduse-serial-$nq"
	check "$t vdpa dev show: block device on vduse with $nq virtqueue(s)" \
		vdpa_shows "$NAME" "$nq"

	fs_tests "$t" "$dev"

	check "$t fio randwrite 4k, $nj jobs, iodepth 32, crc32c verify" \
		fio_rand4k "$dev" "$nj"
	check "$t fio randwrite 4k-1M, $nj jobs, iodepth 16, crc32c verify" \
		fio_randmix "$dev" "$nj"
	check "$t fio sequential write 4k-1M, 2 jobs, iodepth 8, crc32c verify" \
		fio_seqmix "$dev"

	check "$t dd O_DIRECT: 4 MiB, 4 KiB and 512 B patterns written" \
		write_patterns "$dev"
	check "$t dd O_DIRECT: the patterns read back" patterns_there "$dev"
	check "$t 1 MiB written, then zeroed (BLKZEROOUT)" write_then_zero "$dev"
	check "$t the zeroed range reads back as zeroes" dev_has "$dev" $PZERO /tmp/zero1m

	# Detach and attach again: the data is still there.
	check "$t vdpa dev del while idle" vdpa_del "$NAME"
	check_fails "$t $dev is gone with the vDPA device" test -b "$dev"
	need "$t vdpa dev add $NAME again" vdpa_add "$NAME" virtio_vdpa
	need "$t virtio_blk made a disk of it again" wait_for 30 vdpa_blkdev "$NAME"
	dev=$(vdpa_blkdev "$NAME")
	check "$t after re-attach: fio verify-only of the random writes" \
		fio_randmix "$dev" "$nj" --verify_only
	check "$t after re-attach: fio verify-only of the sequential writes" \
		fio_seqmix "$dev" --verify_only
	check "$t after re-attach: the dd patterns read back" patterns_there "$dev"
	check "$t after re-attach: the zeroed range reads as zeroes" \
		dev_has "$dev" $PZERO /tmp/zero1m

	check "$t vdpa dev del" vdpa_del "$NAME"
	check_fails "$t $dev is gone" test -b "$dev"
	qsd_stop "$NAME"
	rc=$?
	check "$t qemu-storage-daemon exits with status 0 on SIGTERM" test $rc -eq 0
	check_fails "$t /dev/vduse/$NAME is gone with the daemon" \
		test -e /dev/vduse/$NAME
	check_fails "$t the daemon could destroy the device (reconnect log removed)" \
		test -e /tmp/vduse-blk-$NAME
	NAME=

	# What the guest wrote is in the backing file.
	check "$t backing file: the dd patterns are there" file_has_patterns "$img"
	check "$t backing file: the zeroed range holds zeroes" \
		same_bytes /tmp/zero1m 0 "$img" $PZERO $MiB
	# Buffered: the guest's /tmp is a tmpfs, which has O_DIRECT only
	# since 6.6.
	check "$t backing file: fio verify-only of the random writes" \
		fio_randmix "$img" "$nj" --verify_only --direct=0
	check "$t backing file: fio verify-only of the sequential writes" \
		fio_seqmix "$img" --verify_only --direct=0
}

# ro_pass IMAGE: export IMAGE (written by a previous pass) read-only with
# 4 KiB logical blocks.
ro_pass() {
	local img=$1 t="[read-only, 4k blocks]" dev rc
	NAME=vblkro
	qsd_start "$NAME" "$img" "writable=off,num-queues=2,logical-block-size=4096"
	need "$t qemu-storage-daemon serves /dev/vduse/$NAME" qsd_ready "$NAME"
	need "$t vdpa dev add $NAME, bound to virtio_vdpa" vdpa_add "$NAME" virtio_vdpa
	need "$t virtio_blk made a disk of it" wait_for 30 vdpa_blkdev "$NAME"
	dev=$(vdpa_blkdev "$NAME")
	check "$t $dev is read-only" test "$(cat "/sys/block/${dev#/dev/}/ro")" = 1
	check "$t $dev has 4096-byte logical blocks" \
		test "$(cat "/sys/block/${dev#/dev/}/queue/logical_block_size")" = 4096
	check "$t the 4 MiB and 4 KiB patterns written earlier read back" \
		big_patterns_there "$dev"
	check "$t its first 64 MiB read the same as the backing file" \
		disk_equals_file "$dev" "$img" 64
	check_fails "$t writing to the read-only disk fails" \
		dev_write "$dev" $P4K /tmp/pat4k
	check "$t vdpa dev del" vdpa_del "$NAME"
	qsd_stop "$NAME"
	rc=$?
	check "$t qemu-storage-daemon exits with status 0 on SIGTERM" test $rc -eq 0
	check_fails "$t /dev/vduse/$NAME is gone with the daemon" \
		test -e /dev/vduse/$NAME
	NAME=
	check "$t the backing file is unchanged: patterns still there" \
		file_has_patterns "$img"
}

rw_pass 1 2
ro_pass /tmp/vblk1.img
rm -f /tmp/vblk1.img
rw_pass 4 4
rm -f /tmp/vblk4.img
check_fails "no vDPA device is left" sh -c 'ls /sys/bus/vdpa/devices/* >/dev/null 2>&1'
finish
