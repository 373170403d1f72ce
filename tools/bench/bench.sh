#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make bench" (tools/bench/run boots the guest with no vduse
# module loaded and runs this).  In one boot it alternates the stock
# vduse.ko (modprobe vduse) and ours (insmod /vduse/build/VER/vduse.ko),
# so that both run on the same machine in the same state.
#
# The work is cut into sections; each round runs every section once with
# each module, the two back to back, in an order that flips from section
# to section and from round to round (A B | B A | A B ... and, the number
# of sections being odd, the next round starts with B), so that slow
# drifts of a shared host fall on both modules alike and the module is
# reloaded only every other section.  A is picked at random (or --first).
# The sections:
#
#   ctl       the control plane: vduse_ctlbench creates, attaches, detaches
#             and destroys N devices
#   1q K      K is qsd (qemu-storage-daemon, null-co block node, 1 GiB) or
#             vblk (our vduse-blk, 128 MiB RAM disk); a one-queue device.
#             Memory: /proc/meminfo before the device exists, then a 1 GiB
#             burst of random reads and writes (128 KiB-1 MiB, QD16), then
#             again once it is idle.  The host path (virtio_vdpa +
#             virtio_blk, /dev/vdX, fio libaio direct, time based): 4 KiB
#             randread QD1, 4 KiB randread QD32, 4 KiB randwrite QD32,
#             128 KiB read QD8, 1 MiB write QD4.  Then the VM path on the
#             same device, moved to vhost_vdpa: qemu-io over libblkio's
#             virtio-blk-vhost-vdpa, 4 KiB reads in batches of 32, 1 MiB
#             writes in batches of 4
#   2q K      4 KiB randread, 2 jobs x QD32 pinned to the two CPUs, on a
#             two-queue device
#
# Raw results go to OUT/r<round>-<module>-<what>.<kind>.json (fio JSON,
# meminfo snapshots, small JSON files); tools/bench/report.py makes the
# tables.  Usage:
#   bench.sh --out DIR [--rounds N] [--runtime S] [--devices N]
#            [--first ours|stock] [--only CASE-GLOB] [--budget SECONDS]
#
# With --budget, a section pair (both modules) is not started when the
# last time the same pair took says it would end past the budget: on a
# host too busy for every round, the run stops early, with whole pairs
# only, and says so in OUT/budget-stop.
. /vduse/tools/testing/suites/lib.sh
cd /tmp || exit 1

OUT=
ROUNDS=3
RUNTIME=5
DEVICES=100
FIRST=
ONLY='*'
BUDGET=0
while [ $# -gt 0 ]; do
	case $1 in
	--out)		OUT=$2; shift 2 ;;
	--rounds)	ROUNDS=$2; shift 2 ;;
	--runtime)	RUNTIME=$2; shift 2 ;;
	--devices)	DEVICES=$2; shift 2 ;;
	--first)	FIRST=$2; shift 2 ;;
	--only)		ONLY=$2; shift 2 ;;
	--budget)	BUDGET=$2; shift 2 ;;
	*)		echo "bench.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ -n "$OUT" ] || { echo "bench.sh: --out DIR is required" >&2; exit 2; }
mkdir -p "$OUT" || exit 1

MiB=$((1024 * 1024))
RAMP=1
QSD_SIZE=$((1024 * MiB))
RAM_SIZE=128M
RAM_BYTES=$((128 * MiB))
VM_REPS=3			# timed qemu-io runs per VM case, module and round

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*"; }

# want CASE...: true when one of the CASEs is selected by --only.
want() {
	local c
	for c in "$@"; do
		# shellcheck disable=SC2053
		[[ $c == $ONLY ]] && return 0
	done
	return 1
}

# ---------------------------------------------------------------------------
# Modules.  LOADED is the one in the kernel now (none, ours or stock).

LOADED=none

module_unload() {
	if is_loaded vduse; then
		# Once the last device is gone the module may stay busy a moment.
		wait_for 60 rmmod vduse || {
			log "cannot unload vduse: $(grep '^vduse ' /proc/modules)"
			return 1
		}
	fi
	LOADED=none
}

module_use() {
	[ "$LOADED" = "$1" ] && return 0
	module_unload || return 1
	case $1 in
	ours)	insmod "$OURS_KO" ;;
	stock)	modprobe vduse ;;
	esac || { log "cannot load the $1 module"; return 1; }
	LOADED=$1
}

# ---------------------------------------------------------------------------
# Devices.  dev_up KIND NAME QUEUES DRIVER: start the daemon for KIND (qsd
# or vblk) and attach the device to DRIVER (virtio_vdpa or vhost_vdpa).

dev_prog() { case $1 in qsd) echo qsd ;; vblk) echo vduse-blk ;; esac; }
dev_bytes() { case $1 in qsd) echo $QSD_SIZE ;; vblk) echo $RAM_BYTES ;; esac; }

dev_up() {
	local kind=$1 name=$2 nq=$3 drv=$4
	case $kind in
	qsd)
		qemu-storage-daemon \
			--blockdev "null-co,node-name=n0,size=$QSD_SIZE,read-zeroes=off" \
			--export "vduse-blk,id=exp0,node-name=n0,name=$name,writable=on,num-queues=$nq" \
			>>"/tmp/qsd-$name.log" 2>&1 </dev/null &
		echo $! >"/tmp/qsd-$name.pid"
		;;
	vblk)
		daemon_start vduse-blk "$name" --ram $RAM_SIZE --num-queues "$nq"
		;;
	esac
	daemon_ready "$(dev_prog "$kind")" "$name" || return 1
	vdpa_add "$name" "$drv" || return 1
	if [ "$drv" = virtio_vdpa ]; then
		wait_for 30 vdpa_blkdev "$name" || { echo "no disk for $name"; return 1; }
	else
		wait_for 30 vdpa_vhostdev "$name" || { echo "no vhost-vdpa for $name"; return 1; }
	fi
}

dev_down() {
	daemon_teardown "$(dev_prog "$1")" "$2"
	wait_for 30 sh -c "! test -e /dev/vduse/$2"
}

# ---------------------------------------------------------------------------
# Measurements.  TAG is r<round>-<module>; results go to $OUT/TAG-WHAT.*

# fio_run TAG WHAT DEV JOB...: one fio process, time based, JSON report in
# $OUT/TAG-WHAT.fio.json.  Each JOB is a string of fio options starting
# with --name=CASE; jobs run one after the other (stonewall), each in its
# own reporting group, so that fio starts once for several cases.
fio_run() {
	local tag=$1 what=$2 dev=$3 job args=() n=0 rc
	shift 3
	for job in "$@"; do
		# shellcheck disable=SC2206
		local opts=($job)
		want "${opts[0]#--name=}" || continue
		args+=("${opts[@]}")
		[ $n -gt 0 ] && args+=(--stonewall --new_group)
		n=$((n + 1))
	done
	[ $n -gt 0 ] || return 0
	timeout -k 10 $((n * (RUNTIME + RAMP) * 4 + 120)) fio --filename="$dev" \
		--direct=1 --ioengine=libaio --time_based --runtime="$RUNTIME" \
		--ramp_time=$RAMP --norandommap --group_reporting \
		--output-format=json --output=/tmp/fio.json "${args[@]}" \
		>/dev/null 2>/tmp/fio.err
	rc=$?
	if [ $rc -ne 0 ]; then
		log "$tag $what: fio failed ($rc): $(head -c 300 /tmp/fio.err)"
		return 0
	fi
	mv /tmp/fio.json "$OUT/$tag-$what.fio.json"
}

# meminfo_snap FILE: /proc/meminfo once the caches are dropped.
# The free pages on the per-CPU lists are not in MemFree: a burst of
# frees can park tens of MiB there (7.x tunes the lists' size up as pages
# are freed), which would pass for memory the module holds.  PcpFree adds
# them up from /proc/zoneinfo.
meminfo_snap() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 1
	{
		cat /proc/meminfo
		awk -v kb=$(($(getconf PAGESIZE) / 1024)) \
			'$1 == "count:" { n += $2 } END { print "PcpFree: " n * kb " kB" }' \
			/proc/zoneinfo
	} >"$1"
}

# mem_burst TAG KIND DEV: the 1 GiB burst on the device that came up after
# /tmp/mem-before, then the idle snapshot.
mem_burst() {
	local tag=$1 k=$2 dev=$3 rc
	timeout -k 10 300 fio --name=burst --filename="$dev" --direct=1 \
		--ioengine=libaio --rw=randrw --bsrange=128k-1m --iodepth=16 \
		--size="$(dev_bytes "$k")" --io_size=1g --norandommap \
		--output-format=json --output=/tmp/burst.json >/dev/null 2>&1
	rc=$?
	sleep 2
	meminfo_snap /tmp/mem-after
	{
		printf '{"fio_rc": %d, "before": "' $rc
		tr '\n' ';' </tmp/mem-before
		printf '", "after": "'
		tr '\n' ';' </tmp/mem-after
		printf '"}\n'
	} >"$OUT/$tag-$k-mem-idle.mem.json"
	mv /tmp/burst.json "$OUT/$tag-$k-mem-idle.burst.json" 2>/dev/null
}

# VM path: qemu-io over virtio-blk-vhost-vdpa.  (qemu-img bench cannot be
# used: QEMU 10.0's blkio driver refuses the buffer it registers, "unaligned
# buf".)  qemu-io has no loop: a command file holds COUNT requests in
# batches of QD ("aio_* -q" x QD, then aio_flush), between two synchronous
# 512-byte reads whose output lines are timestamped as they come (stdbuf
# makes qemu-io's stdout line buffered), so the time excludes qemu-io's
# start-up, the vhost-vdpa set-up and the teardown.  COUNT is calibrated
# once, the first time, to last about RUNTIME seconds, then kept for every
# round and both modules.
declare -A VM_COUNT

qio_cmds() {	# qio_cmds FILE OP BS QD COUNT SPAN
	awk -v op="$2" -v bs="$3" -v qd="$4" -v n="$5" -v span="$6" 'BEGIN {
		for (i = 0; i < n; i++) {
			printf "aio_%s -q %d %d\n", op, (i * bs) % span, bs
			if (i % qd == qd - 1) print "aio_flush"
		}
		print "aio_flush"
	}' >"$1"
}

qio_time() {	# qio_time VHOST CMDFILE: prints the seconds the I/O took
	{ echo "read 0 512"; cat "$2"; echo "read 0 512"; } |
		timeout -k 5 $((RUNTIME * 10 + 60)) stdbuf -oL qemu-io --image-opts \
		"driver=virtio-blk-vhost-vdpa,path=$1,cache.direct=on" 2>&1 |
		tee /tmp/qio.out | {
		t0='' t1=''
		while IFS= read -r line; do
			case $line in
			*"read 512/512 bytes at offset 0"*)
				if [ -z "$t0" ]; then t0=$EPOCHREALTIME; else t1=$EPOCHREALTIME; fi ;;
			esac
		done
		[ -n "$t1" ] || exit 1
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
	} || { log "qemu-io failed: $(tail -n 3 /tmp/qio.out)"; return 1; }
}

# vm_case TAG CASE VHOST OP BS QD SPAN
vm_case() {
	local tag=$1 case=$2 vh=$3 op=$4 bs=$5 qd=$6 span=$7 n t i ts
	want "$case" || return 0
	n=${VM_COUNT[$case]:-}
	if [ -z "$n" ]; then
		# Calibrate with a run of about a second at usual TCG speeds
		# (2048 x 4 KiB, 64 x 1 MiB), scaled to RUNTIME seconds, within
		# 1 to 32 times the calibration run.
		n=$((qd * (bs >= MiB ? 16 : 64)))
		qio_cmds /tmp/qio-cal "$op" "$bs" "$qd" "$n" "$span"
		t=$(qio_time "$vh" /tmp/qio-cal) || return 0
		n=$(awk -v n="$n" -v t="$t" -v r="$RUNTIME" -v qd="$qd" 'BEGIN {
			if (t < 0.01) t = 0.01
			c = int(n * r / t / qd + 0.5) * qd
			if (c < n) c = n
			if (c > 32 * n) c = 32 * n
			print c }')
		VM_COUNT[$case]=$n
		log "$case: $n requests per run"
		qio_cmds "/tmp/qio-$case" "$op" "$bs" "$qd" "$n" "$span"
	fi
	# VM_REPS timed runs back to back; the round's value is their median
	# (a run is a few seconds, and one of them alone is noisy).
	ts=()
	for ((i = 0; i < VM_REPS; i++)); do
		t=$(qio_time "$vh" "/tmp/qio-$case") || return 0
		ts+=("$t")
	done
	t=$(printf '%s\n' "${ts[@]}" | sort -g | awk '{ v[NR] = $1 }
		END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	printf '{"requests": %d, "bs": %d, "qd": %d, "seconds": %s, "runs": [%s]}\n' \
		"$n" "$bs" "$qd" "$t" "$(IFS=,; echo "${ts[*]}")" >"$OUT/$tag-$case.vm.json"
}

# ---------------------------------------------------------------------------
# Sections: section_NAME TAG.  Each brings its devices up and down.

section_ctl() {
	want ctl || return 0
	if ! timeout -k 10 900 "$TOOLS/vduse_ctlbench" --devices "$DEVICES" \
		>/tmp/ctl.json 2>/tmp/ctl.err; then
		log "$1: vduse_ctlbench failed: $(cat /tmp/ctl.err)"
		return 0
	fi
	mv /tmp/ctl.json "$OUT/$1-ctl.ctl.json"
}

section_1q() {	# section_1q TAG KIND
	local tag=$1 k=$2 name=b$2 dev vh
	want "$k-mem-idle" "$k-randread-4k-qd1" "$k-randread-4k-qd32" \
		"$k-randwrite-4k-qd32" "$k-read-128k-qd8" "$k-write-1m-qd4" \
		"$k-vm-read-4k-qd32" "$k-vm-write-1m-qd4" || return 0
	# Let what the previous section freed settle first.
	sleep 3
	meminfo_snap /tmp/mem-before
	if ! dev_up "$k" "$name" 1 virtio_vdpa; then
		log "$tag: the one-queue $k device did not come up"
		dev_down "$k" "$name"
		return 0
	fi
	dev=$(vdpa_blkdev "$name")
	want "$k-mem-idle" && mem_burst "$tag" "$k" "$dev"
	fio_run "$tag" "$k-host" "$dev" \
		"--name=$k-randread-4k-qd1 --rw=randread --bs=4k --iodepth=1 --lat_percentiles=1" \
		"--name=$k-randread-4k-qd32 --rw=randread --bs=4k --iodepth=32" \
		"--name=$k-randwrite-4k-qd32 --rw=randwrite --bs=4k --iodepth=32" \
		"--name=$k-read-128k-qd8 --rw=read --bs=128k --iodepth=8" \
		"--name=$k-write-1m-qd4 --rw=write --bs=1m --iodepth=4"
	# The VM path on the same device, moved to vhost_vdpa.
	if want "$k-vm-read-4k-qd32" "$k-vm-write-1m-qd4"; then
		if vdpa_rebind "$name" vhost_vdpa >/dev/null &&
			wait_for 30 vdpa_vhostdev "$name"; then
			vh=$(vdpa_vhostdev "$name")
			vm_case "$tag" "$k-vm-read-4k-qd32" "$vh" \
				read 4096 32 "$(dev_bytes "$k")"
			vm_case "$tag" "$k-vm-write-1m-qd4" "$vh" \
				write $MiB 4 "$(dev_bytes "$k")"
		else
			log "$tag: cannot move $name to vhost_vdpa"
		fi
	fi
	dev_down "$k" "$name"
}

section_2q() {	# section_2q TAG KIND
	local tag=$1 k=$2 name=b$2 dev
	want "$k-randread-4k-2j-qd32-2q" || return 0
	if dev_up "$k" "$name" 2 virtio_vdpa; then
		dev=$(vdpa_blkdev "$name")
		fio_run "$tag" "$k-randread-4k-2j-qd32-2q" "$dev" \
			"--name=$k-randread-4k-2j-qd32-2q --rw=randread --bs=4k --iodepth=32 --numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split"
	else
		log "$tag: the two-queue $k device did not come up"
	fi
	dev_down "$k" "$name"
}

SECTIONS=("ctl" "1q qsd" "2q qsd" "1q vblk" "2q vblk")

# ---------------------------------------------------------------------------

module_unload || exit 1
[ -f "$OURS_KO" ] || { echo "no $OURS_KO"; exit 1; }
case $FIRST in
ours|stock) ;;
*) if [ $((RANDOM % 2)) -eq 0 ]; then FIRST=ours; else FIRST=stock; fi ;;
esac
other() { [ "$1" = ours ] && echo stock || echo ours; }
cat >"$OUT/meta.json" <<EOF
{"kernel": "$(uname -r)", "series": "${VM_SERIES:-}", "vcpus": $(nproc),
 "mem_kb": $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo),
 "rounds": $ROUNDS, "runtime": $RUNTIME, "ramp": $RAMP, "devices": $DEVICES,
 "first": "$FIRST", "cmdline": "$(cat /proc/cmdline)",
 "stock_ko": "$(modinfo -n vduse 2>/dev/null)", "fio": "$(fio --version)",
 "qemu": "$(qemu-io --version | head -n 1)"}
EOF
log "kernel $(uname -r), $(nproc) vCPUs; $ROUNDS rounds, ${RUNTIME}s per case, $DEVICES devices; $FIRST first"

# Time budget: the seconds a pair of each section took last time, and a
# first guess for TCG.
declare -A PAIR_SECS=([ctl]=60 ["1q qsd"]=240 ["2q qsd"]=90 ["1q vblk"]=300 ["2q vblk"]=90)
DEADLINE=$((EPOCHSECONDS + BUDGET))
rm -f "$OUT/budget-stop"

rc=0
i=0
for r in $(seq 1 "$ROUNDS"); do
	log "round $r of $ROUNDS"
	for s in "${SECTIONS[@]}"; do
		# shellcheck disable=SC2086
		set -- $s
		if [ "$BUDGET" -gt 0 ] &&
			[ $((EPOCHSECONDS + ${PAIR_SECS[$s]:-60} * 5 / 4)) -gt $DEADLINE ]; then
			log "time budget reached: stopping before round $r, section '$s'"
			echo "round $r, section $s: the time budget (${BUDGET}s) would be exceeded" \
				>"$OUT/budget-stop"
			break 2
		fi
		t0=$EPOCHSECONDS
		if [ $((i % 2)) -eq 0 ]; then a=$FIRST; else a=$(other "$FIRST"); fi
		i=$((i + 1))
		for m in "$a" "$(other "$a")"; do
			module_use "$m" || { rc=1; break 3; }
			"section_$1" "r$r-$m" ${2:-}
		done
		PAIR_SECS[$s]=$((EPOCHSECONDS - t0))
	done
	# An odd number of sections: the next round starts with the other
	# module without help; with an even one, skip a beat.
	[ $((${#SECTIONS[@]} % 2)) -eq 1 ] || i=$((i + 1))
	echo "$r" >"$OUT/rounds-done"
	log "round $r done"
done
module_unload || rc=1
log "done"
exit $rc
