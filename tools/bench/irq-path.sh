#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inline against deferred virtqueue callbacks, our module only, in one
# guest boot:
#
#   tools/testing/vm/run --kernel 7.3 --module ours -- \
#           bash /vduse/tools/bench/irq-path.sh [ROUNDS]
#
# A one-queue qemu-storage-daemon null-co device (the daemon pinned to CPU
# 1, fio to CPU 0).  Each round runs fio 4 KiB randread and randwrite at
# QD32 and randread at QD1 twice: with vq0/irq_cb_affinity set to every CPU, so that
# VDUSE_VQ_INJECT_IRQ runs the callback inline on the daemon's CPU, and
# with it set to CPU 0 only, so that the callback goes through the
# workqueue (as the stock module always does).  Prints one line per run,
# "irq-path ROUND MODE RW QD IOPS INJECTIONS", INJECTIONS being the
# VDUSE_VQ_INJECT_IRQ calls of the daemon (vq0 in debugfs vduse/stats): a callback run
# inline re-arms the driver's interrupt at once, so a daemon honouring
# the used event index injects once per request; from the workqueue it
# stays suppressed a while and most injections are skipped.
. /vduse/tools/testing/suites/lib.sh
cd /tmp || exit 1

ROUNDS=${1:-5}
NAME=irqpath

qsd_up() {
	taskset -c 1 qemu-storage-daemon \
		--blockdev "null-co,node-name=n0,size=1073741824,read-zeroes=off" \
		--export "vduse-blk,id=exp0,node-name=n0,name=$NAME,writable=on,num-queues=1" \
		>>"/tmp/qsd-$NAME.log" 2>&1 </dev/null &
	echo $! >"/tmp/qsd-$NAME.pid"
	qsd_ready "$NAME" && vdpa_add "$NAME" virtio_vdpa &&
		wait_for 30 vdpa_blkdev "$NAME"
}

injections() {
	echo $(($(vduse_stat $NAME/vq0 irqs_inline) + $(vduse_stat $NAME/vq0 irqs_deferred)))
}

run() {	# run ROUND MODE RW QD
	local before iops
	before=$(injections)
	taskset -c 0 fio --filename="$(vdpa_blkdev "$NAME")" --direct=1 \
		--ioengine=libaio --time_based --runtime=4 --ramp_time=1 \
		--norandommap --name=x --rw="$3" --bs=4k --iodepth="$4" \
		--output-format=json --output=/tmp/irqpath.json >/dev/null 2>&1 ||
		{ echo "irq-path $1 $2 $3 $4 fio-failed"; return; }
	iops=$(python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
print(round(j["read"]["iops"] + j["write"]["iops"]))' /tmp/irqpath.json)
	echo "irq-path $1 $2 $3 $4 $iops $(($(injections) - before))"
}

is_loaded vduse || insmod "$OURS_KO" || exit 1
qsd_up || { echo "the device did not come up"; exit 1; }
for r in $(seq 1 "$ROUNDS"); do
	for mode in inline deferred; do
		if [ $mode = inline ]; then
			mask=$(printf '%x' $(((1 << $(nproc)) - 1)))
		else
			mask=1
		fi
		echo "$mask" >"/sys/class/vduse/$NAME/vq0/irq_cb_affinity" || exit 1
		run "$r" $mode randread 32
		run "$r" $mode randwrite 32
		run "$r" $mode randread 1
	done
done
daemon_teardown qsd "$NAME"
