#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours stock
# kernels: all
#
# Block I/O on the VM path, with unmodified clients only: qemu-storage-daemon
# serves a vduse-blk export, the vDPA device is bound to vhost_vdpa, and
# qemu-io drives /dev/vhost-vdpa-N through libblkio's virtio-blk-vhost-vdpa
# driver (the same userspace virtio driver a VM's vhost-vdpa backend uses).
# Patterns of many sizes and offsets, vectored and concurrent writes, write
# zeroes, repeated open/close, moving the device between vhost_vdpa and
# virtio_vdpa, and finally the backing file holds every pattern.
. "$(dirname "$0")/lib.sh"
cd /tmp || exit 1

MiB=$((1024 * 1024))
IMG=/tmp/vvdpa.img
IMG_SIZE=$((128 * MiB))
NAME=vvdpa0
VH=

teardown() { vduse_blk_teardown "$NAME"; }
NEED_TEARDOWN=teardown
trap teardown EXIT

# qio [-f FILE] CMD...: run qemu-io commands in one process, on the
# vhost-vdpa device (or read-only on the raw FILE).  Fails when qemu-io
# does, or when any pattern check or request failed.
qio() {
	local img=(--image-opts "driver=virtio-blk-vhost-vdpa,path=$VH,cache.direct=on")
	local args=() c out rc
	if [ "$1" = -f ]; then
		img=(-f raw -r "$2")
		shift 2
	fi
	for c; do args+=(-c "$c"); done
	out=$(timeout 120 qemu-io "${img[@]}" "${args[@]}" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	[ $rc -eq 0 ] && ! grep -qiE 'fail|error' <<<"$out"
}

# The writes of this suite: pattern, offset, length.
WRITES=(
	"0x11 $((4 * MiB + 512)) 512"
	"0x12 $((5 * MiB + 4096)) 4k"
	"0x13 $((6 * MiB)) 64k"
	"0x14 $((7 * MiB + 4096)) 1M"
	"0x15 $((16 * MiB)) 16M"
)
AIO=(
	"0x31 $((48 * MiB)) 1M"
	"0x32 $((49 * MiB)) 1M"
	"0x33 $((50 * MiB)) 1M"
	"0x34 $((51 * MiB)) 1M"
)
# 64 scattered 4 KiB writes in flight at once
SCATTER=()
for i in $(seq 0 63); do
	SCATTER+=("$(printf '0x%x %d 4k' $((0x80 + i)) $((80 * MiB + i * 69632)))")
done
VEC="0x22 $((40 * MiB)) 4k 8k 64k"
ZERO="$((56 * MiB)) 1M"
SLOT0=$((64 * MiB))	# 64 KiB slots of the open/close cycles
CYCLES=8

# The qemu-io commands that read back everything written so far.
read_cmds() {
	local w
	echo "read -P 0xab 0 4M"
	for w in "${WRITES[@]}" "${AIO[@]}" "${SCATTER[@]}"; do
		echo "read -P $w"
	done
	echo "readv -P $VEC"
	echo "read -P 0 $ZERO"
	for i in $(seq 0 $CYCLES); do
		printf 'read -P 0x%x %d 64k\n' $((0x60 + i)) $((SLOT0 + i * 65536))
	done
}

read_all() {	# read_all [-f FILE]
	local cmds
	mapfile -t cmds < <(read_cmds)
	qio "$@" "${cmds[@]}"
}

# A wrong expectation must be reported: the checks can fail.
mismatch_noticed() {
	local out
	out=$(qio "read -P 0xcd 0 4M")
	! [ $? -eq 0 ] && grep -q 'Pattern verification failed' <<<"$out" &&
		grep -q 'read 4194304/4194304 bytes' <<<"$out"
}

assorted_writes() {
	local cmds=() w
	for w in "${WRITES[@]}"; do cmds+=("write -P $w"); done
	for w in "${WRITES[@]}"; do cmds+=("read -P $w"); done
	qio "${cmds[@]}"
}

aio_writes() {
	local cmds=() w
	for w in "${AIO[@]}"; do cmds+=("aio_write -P $w"); done
	cmds+=(aio_flush flush)
	for w in "${AIO[@]}"; do cmds+=("read -P $w"); done
	qio "${cmds[@]}"
}

scattered_aio_writes() {
	local cmds=() w
	for w in "${SCATTER[@]}"; do cmds+=("aio_write -P $w"); done
	cmds+=(aio_flush)
	for w in "${SCATTER[@]}"; do cmds+=("read -P $w"); done
	qio "${cmds[@]}"
}

# Each cycle opens the device, checks what the previous cycle wrote, writes
# its own slot and closes: the device is reset and set up every time.
open_close_cycles() {
	local i
	qio "write -P 0x60 $SLOT0 64k" || return 1
	for i in $(seq 1 $CYCLES); do
		qio "$(printf 'read -P 0x%x %d 64k' $((0x60 + i - 1)) $((SLOT0 + (i - 1) * 65536)))" \
			"$(printf 'write -P 0x%x %d 64k' $((0x60 + i)) $((SLOT0 + i * 65536)))" ||
			{ echo "cycle $i failed"; return 1; }
	done
}

# A byte pattern file: patfile BYTE SIZE FILE.
patfile() {
	head -c "$2" /dev/zero | tr '\0' "\\$(printf '%03o' "$1")" >"$3"
}
patfile 0xab $((4 * MiB)) /tmp/pat-ab
patfile 0x5a $MiB /tmp/pat-5a

rm -f "$IMG"
truncate -s $IMG_SIZE "$IMG"
qsd_start "$NAME" "$IMG" "writable=on,num-queues=2"
need "qemu-storage-daemon serves /dev/vduse/$NAME" qsd_ready "$NAME"
need "vdpa dev add $NAME, bound to vhost_vdpa" vdpa_add "$NAME" vhost_vdpa
need "vhost_vdpa made a /dev/vhost-vdpa-N of it" wait_for 30 vdpa_vhostdev "$NAME"
VH=$(vdpa_vhostdev "$NAME")
check "$VH is a character device" test -c "$VH"

check "qemu-io: write 4 MiB of 0xab at 0 and read them back" \
	qio "write -P 0xab 0 4M" "read -P 0xab 0 4M"
check "qemu-io, reopened: the 4 MiB of 0xab are still there" \
	qio "read -P 0xab 0 4M"
check "qemu-io reports a wrong pattern (0xcd where 0xab is)" mismatch_noticed
check "qemu-io: 512 B, 4 KiB, 64 KiB, 1 MiB, 16 MiB at assorted offsets" \
	assorted_writes
check "qemu-io: vectored write (4k+8k+64k) reads back" \
	qio "writev -P $VEC" "readv -P $VEC"
check "qemu-io: 4 concurrent 1 MiB aio writes, flush, read back" aio_writes
check "qemu-io: 64 concurrent scattered 4 KiB aio writes read back" \
	scattered_aio_writes
check "qemu-io: write zeroes over 1 MiB of data reads back zeroes" \
	qio "write -P 0x5f $ZERO" "read -P 0x5f $ZERO" "write -z $ZERO" "read -P 0 $ZERO"
check "$CYCLES open/check/write/close cycles keep every write" open_close_cycles
check "qemu-io, reopened: everything written so far reads back" read_all

# The same device through virtio_blk, and back.
if check_rc "rebind $NAME from vhost_vdpa to virtio_vdpa" \
	vdpa_rebind "$NAME" virtio_vdpa &&
	check_rc "virtio_blk made a disk of it" wait_for 30 vdpa_blkdev "$NAME"; then
	dev=$(vdpa_blkdev "$NAME")
	check "through $dev: the 0xab written through vhost-vdpa reads back" \
		dev_has "$dev" 0 /tmp/pat-ab
	check "through $dev: O_DIRECT write of 1 MiB of 0x5a" \
		dd if=/tmp/pat-5a of="$dev" bs=1M seek=100 oflag=direct status=none
fi
need "rebind $NAME back to vhost_vdpa" vdpa_rebind "$NAME" vhost_vdpa
need "vhost_vdpa made a /dev/vhost-vdpa-N of it again" wait_for 30 vdpa_vhostdev "$NAME"
VH=$(vdpa_vhostdev "$NAME")
check "qemu-io after the round trip: the 0x5a from virtio_blk and all else" \
	read_all "read -P 0x5a 100M 1M"

check "vdpa dev del" vdpa_del "$NAME"
check_fails "$VH is gone" test -e "$VH"
qsd_stop "$NAME"
rc=$?
check "qemu-storage-daemon exits with status 0 on SIGTERM" test $rc -eq 0
check_fails "/dev/vduse/$NAME is gone with the daemon" test -e "/dev/vduse/$NAME"
check "backing file (qemu-io on the raw file): every pattern is there" \
	read_all -f "$IMG" "read -P 0x5a 100M 1M"
check "backing file (cmp): the first 4 MiB are 0xab" same_bytes /tmp/pat-ab 0 "$IMG" 0 $((4 * MiB))
check "backing file (cmp): 1 MiB of 0x5a at 100 MiB" same_bytes /tmp/pat-5a 0 "$IMG" $((100 * MiB)) $MiB
rm -f "$IMG"
finish
