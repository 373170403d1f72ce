#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours stock
# kernels: all
#
# Daemon crash and reconnect, with unmodified clients only.  The vduse-blk
# export of qemu-storage-daemon is attached through virtio_blk; the daemon
# is killed with SIGKILL (idle, several times during an fio write run with
# crc32c verification, and during a verify-only read run) and started again
# with the same export.  libvduse sees CREATE_DEV fail with EEXIST, opens the
# existing /dev/vduse/NAME, and resumes the queues from its reconnect log
# (/tmp/vduse-blk-NAME).  The guest's disk stays, fio finishes, and a
# separate verify-only pass, also over the backing file, finds nothing lost.
. "$(dirname "$0")/lib.sh"
cd /tmp || exit 1

MiB=$((1024 * 1024))
IMG=/tmp/vrecon.img
IMG_SIZE=$((128 * MiB))
NAME=vrecon0
OPTS="writable=on,num-queues=2"
DEV=
FIO_PID=

teardown() {
	# timeout passes SIGTERM on to fio.
	[ -n "$FIO_PID" ] && kill "$FIO_PID" 2>/dev/null
	vduse_blk_teardown "$NAME"
}
NEED_TEARDOWN=teardown
trap teardown EXIT

# The fio workload: 2 jobs, each with its own 32 MiB region after the first
# 16 MiB, random writes of 4 KiB to 256 KiB, 8 in flight per job.
FIO_BYTES=$((64 * MiB))
FIO_JOB=(--name=recon --direct=1 --ioengine=libaio --rw=randwrite
	--bsrange=4k-256k --iodepth=8 --numjobs=2 --size=32M --offset=16M
	--offset_increment=32M --randrepeat=1)

head -c $MiB /dev/urandom >/tmp/pat-a
head -c $MiB /dev/urandom >/tmp/pat-b

write_reads_back() {	# write_reads_back OFFSET FILE
	dev_write "$DEV" "$1" "$2" && dev_has "$DEV" "$1" "$2"
}

# The two 1 MiB written around the idle crash.
early_data_there() {
	dev_has "$DEV" 0 /tmp/pat-a && dev_has "$DEV" $MiB /tmp/pat-b
}
early_data_in_file() {
	same_bytes /tmp/pat-a 0 "$IMG" 0 $MiB &&
		same_bytes /tmp/pat-b 0 "$IMG" $MiB $MiB
}

no_io_errors() { ! dmesg | grep -i 'I/O error'; }

fio_running() { [ -n "$FIO_PID" ] && ! proc_gone "$FIO_PID"; }

# fio_bg_result RC: judge the background fio run that exited with RC.
fio_bg_result() {
	cat /tmp/fio-recon.err
	fio_result /tmp/fio-recon.json $FIO_BYTES "$1"
}

# The VDUSE device and the guest's view of it outlive the daemon.
device_survives() {
	test -c "/dev/vduse/$NAME" || { echo "/dev/vduse/$NAME is gone"; return 1; }
	vdpa_bound "$NAME" virtio_vdpa || return 1
	[ "$(vdpa_blkdev "$NAME")" = "$DEV" ] || { echo "$DEV is gone"; return 1; }
	test -s "/tmp/vduse-blk-$NAME" || { echo "no reconnect log"; return 1; }
}

# Progress of the disk, from /sys/block/vdX/stat: sectors read or written.
disk_sectors() {	# disk_sectors read|write
	local f
	read -r -a f <"/sys/block/${DEV#/dev/}/stat"
	if [ "$1" = read ]; then echo "${f[2]}"; else echo "${f[6]}"; fi
}
progress_past() {	# progress_past read|write SECTOR-COUNT
	[ "$(disk_sectors "$1")" -ge "$2" ]
}
requests_in_flight() {
	local f
	read -r -a f <"/sys/block/${DEV#/dev/}/inflight"
	[ $((f[0] + f[1])) -gt 0 ]
}

# diag WHAT: a comment line on the state of the disk, for the log.
diag() {
	local inf
	inf=$(cat "/sys/block/${DEV#/dev/}/inflight")
	echo "# ${SECONDS}s $1: $(($(disk_sectors write) / 2048)) MiB written," \
		"$(($(disk_sectors read) / 2048)) MiB read, in flight: $inf," \
		"fio $(fio_running && echo running || echo stopped)"
}

# wait_written MIB: wait until the disk has written MIB MiB more than it
# had when the daemon last came back (BASE_SECTORS).
wait_written() {
	wait_for 120 progress_past write $((BASE_SECTORS + $1 * 2048))
}

# freeze_daemon: stop the daemon (SIGSTOP), so that requests pile up.
freeze_daemon() { kill -STOP "$(qsd_pid "$NAME")"; }

# crash_and_restart WHAT: SIGKILL the daemon, check what must survive, start
# it again with the same export and check that it took the device back.
# With fio running in the background (FIO_PID), the daemon has been frozen
# first: requests must be in flight when it dies.
crash_and_restart() {
	local what=$1 rc
	diag "$what: daemon frozen"
	if [ -n "$FIO_PID" ]; then
		check "$what: requests pile up while the daemon is stopped" \
			wait_for 30 requests_in_flight
		check "$what: fio is still running when the daemon is killed" \
			fio_running
	fi
	qsd_stop "$NAME" KILL
	rc=$?
	check "$what: qemu-storage-daemon died of SIGKILL" test $rc -eq 137
	check "$what: /dev/vduse/$NAME, the vDPA device and $DEV remain" \
		device_survives
	sleep 1
	qsd_start "$NAME" "$IMG" "$OPTS"
	need "$what: a new qemu-storage-daemon takes /dev/vduse/$NAME back" \
		qsd_ready "$NAME"
	BASE_SECTORS=$(disk_sectors write)
	diag "$what: daemon back"
}

rm -f "$IMG" /tmp/vduse-blk-$NAME
truncate -s $IMG_SIZE "$IMG"
qsd_start "$NAME" "$IMG" "$OPTS"
need "qemu-storage-daemon serves /dev/vduse/$NAME" qsd_ready "$NAME"
need "vdpa dev add $NAME, bound to virtio_vdpa" vdpa_add "$NAME" virtio_vdpa
need "virtio_blk made a disk of it" wait_for 30 vdpa_blkdev "$NAME"
DEV=$(vdpa_blkdev "$NAME")
check "$DEV is a block device" test -b "$DEV"
check "the daemon keeps a reconnect log in /tmp/vduse-blk-$NAME" \
	test -s "/tmp/vduse-blk-$NAME"

# An idle crash.
check "1 MiB written with O_DIRECT before the crash" dev_write "$DEV" 0 /tmp/pat-a
crash_and_restart "idle crash"
check "idle crash: the 1 MiB written before it reads back" dev_has "$DEV" 0 /tmp/pat-a
check "idle crash: a new 1 MiB write reads back" write_reads_back $MiB /tmp/pat-b

# Three crashes while fio writes, each once it has written 4 MiB more since
# the daemon came back (so I/O resumed after every reconnect), then its
# verify pass reads everything back.  fio pauses 500 ms after every 8
# blocks (about 4 MiB/s in all), so that there is time to watch; unlike
# --rate, thinktime does not catch up after a stall.
BASE_SECTORS=$(disk_sectors write)
timeout 240 fio --output-format=json --output=/tmp/fio-recon.json --eta=never \
	--filename="$DEV" "${FIO_JOB[@]}" --verify=crc32c --verify_fatal=1 \
	--verify_state_save=0 --thinktime=500ms --thinktime_blocks=8 \
	>/dev/null 2>/tmp/fio-recon.err &
FIO_PID=$!
for k in 1 2 3; do
	check "crash $k: fio writes 4 MiB (more) first" wait_written 4
	freeze_daemon
	crash_and_restart "crash $k during fio writes"
done
wait_for 300 proc_gone "$FIO_PID"
wait "$FIO_PID"
rc=$?
FIO_PID=
check "fio survived three daemon crashes and verified all it wrote" \
	fio_bg_result $rc
check "a separate fio verify-only pass finds every block intact" \
	fio_verify $FIO_BYTES --filename="$DEV" "${FIO_JOB[@]}" --verify_only

# One crash while fio only reads and verifies: its first reads wait for a
# frozen daemon, which is then killed.
freeze_daemon
timeout 240 fio --output-format=json --output=/tmp/fio-recon.json --eta=never \
	--filename="$DEV" "${FIO_JOB[@]}" --verify=crc32c --verify_fatal=1 \
	--verify_state_save=0 --verify_only >/dev/null 2>/tmp/fio-recon.err &
FIO_PID=$!
crash_and_restart "crash under fio verify-only reads"
wait_for 300 proc_gone "$FIO_PID"
wait "$FIO_PID"
rc=$?
FIO_PID=
check "the verify-only run survived the crash and verified everything" \
	fio_bg_result $rc
check "the data written before the crashes is still there" \
	early_data_there

check "no I/O errors in the kernel log" no_io_errors

check "vdpa dev del" vdpa_del "$NAME"
check_fails "$DEV is gone" test -b "$DEV"
qsd_stop "$NAME"
rc=$?
check "qemu-storage-daemon exits with status 0 on SIGTERM" test $rc -eq 0
check_fails "/dev/vduse/$NAME is gone with the daemon" test -e "/dev/vduse/$NAME"
check_fails "the daemon removed its reconnect log" test -e "/tmp/vduse-blk-$NAME"
# Buffered: the guest's /tmp is a tmpfs, which has O_DIRECT only since 6.6.
check "backing file: fio verify-only finds every block intact" \
	fio_verify $FIO_BYTES --filename="$IMG" "${FIO_JOB[@]}" --verify_only \
	--direct=0
check "backing file: the data written before the crashes is there" \
	early_data_in_file
rm -f "$IMG"
finish
