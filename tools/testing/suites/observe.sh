#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours
# kernels: all
#
# What an operator sees of a device (issue 7): the counters of the debugfs
# table vduse/stats (a line per device and per queue), and the "vduse"
# trace events (Documentation/userspace-api/vduse.rst, "Observability").
#  - the counters exist, are read-only and start at zero; names are
#    escaped;
#  - vduse-blk serves a two-queue RAM disk; attaching it and I/O move the
#    counters by amounts that fit the traffic: a handful of messages, all
#    answered; kicks and interrupts, no more than the disk's requests;
#    the per-queue counters add up to the device's;
#  - with the daemon pinned to CPU 0, an interrupt affinity of CPU 1 makes
#    every injection deferred and one of CPU 0 every injection inline; with
#    both CPUs and a deep queue, injections run inline only after a kick
#    and the others are deferred to CPU 1, never to the daemon's CPU;
#  - the trace events, on from before the attach, match the counters one
#    for one: sends, reads and replies per message, one event per kick
#    and per interrupt, by path;
#  - a daemon that stops answering (SIGSTOP) while "vdpa dev del" resets
#    the device: after msg_timeout, msgs_timed_out is 1 and the trace has
#    vduse_msg_timeout and vduse_dev_broken.
#
# Ours only: the stock module has no vduse/stats table and no "vduse"
# trace events; both are our additions.
. "$(dirname "$0")/lib.sh"
cd /tmp || exit 1

BLK=vduse-blk
N=ob-blk
T=3				# msg_timeout for the break, seconds
SYS=/sys/class/vduse/$N
STATS="msgs_sent msgs_failed msgs_timed_out kicks irqs_inline irqs_deferred
irqs_irqfd requests_failed config_irqs bounce_pages"
VQ_STATS="kicks irqs_inline irqs_deferred irqs_irqfd requests_failed"
EVENTS="vduse_msg_send vduse_msg_read vduse_msg_reply vduse_msg_timeout
vduse_dev_broken vduse_vq_kick vduse_vq_inject_irq vduse_dev_inject_config_irq"
IO_BS=65536
IO_COUNT=16			# one round: 16 writes and 16 reads of 64 KiB
DEEP_IOS=1024			# round 4: 4 KiB reads at QD32
TR=

ms() { date +%s%3N; }

teardown() {
	local pid
	if [ -n "$TR" ]; then
		echo 0 >"$TR/events/vduse/enable" 2>/dev/null
		echo 0 >"$TR/events/vduse/vduse_vq_kick/filter" 2>/dev/null
	fi
	pid=$(daemon_pid $BLK $N)
	[ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null
	daemon_teardown $BLK $N
	[ -e /dev/vduse/$N ] && "$TOOLS/vduse_ctl" destroy $N >/dev/null 2>&1
	return 0
}
NEED_TEARDOWN=teardown
trap teardown EXIT

# tracefs: /sys/kernel/tracing, mounted here if need be, or debugfs's.
tracefs() {
	local d
	[ -d /sys/kernel/tracing/events ] ||
		mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
	for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
		[ -d "$d/events" ] && { echo "$d"; return 0; }
	done
	return 1
}

st() { vduse_stat $N "$1"; }

# vq_sum NAME: the per-queue counter NAME summed over the two queues.
vq_sum() {
	echo $(($(vduse_stat $N/vq0 "$1") + $(vduse_stat $N/vq1 "$1")))
}

# in_range VALUE MIN MAX (with a message when it is not)
in_range() {
	[ "$1" -ge "$2" ] && [ "$1" -le "$3" ] && return 0
	echo "$1 is not in [$2, $3]"
	return 1
}

# Requests the disk completed, from /sys/block/vdX/stat: reads, writes,
# discards and flushes.
disk_ios() {
	awk '{ print $1 + $5 + ($12 == "" ? 0 : $12) + ($16 == "" ? 0 : $16) }' \
		"/sys/block/${DEV#/dev/}/stat"
}

# io_round N: write IO_COUNT blocks of random data at block N*IO_COUNT
# with O_DIRECT, one request each, and read them back the same way.
io_round() {
	local seek=$(($1 * IO_COUNT))
	dd if=/tmp/ob.data of="$DEV" bs=$IO_BS count=$IO_COUNT seek=$seek \
		oflag=direct conv=notrunc status=none &&
	dd if="$DEV" bs=$IO_BS count=$IO_COUNT skip=$seek iflag=direct \
		status=none | cmp - /tmp/ob.data
}

# set_affinity MASK: every queue's interrupt callback on the CPUs of MASK.
set_affinity() {
	local f
	for f in "$SYS"/vq*/irq_cb_affinity; do
		echo "$1" >"$f" || return 1
	done
}

# events NAME [PATTERN]: trace lines of event NAME for our device.
events() {
	grep -c -- " $1: $N ${2:-}" "$TR/trace"
}

# same WHAT A B: A equals B.
same() {
	[ "$2" = "$3" ] && return 0
	echo "$1: $2 != $3"
	return 1
}

# ---------------------------------------------------------------------------
# The counters and events exist

daemon_start $BLK $N --ram 64M --num-queues 2
need "vduse-blk serves /dev/vduse/$N (2 queues)" daemon_ready $BLK $N
PID=$(daemon_pid $BLK $N)

for s in $STATS; do
	check "vduse/stats: $s exists and reads 0" test "$(st $s)" = 0
done
check "vduse/stats is read-only" \
	sh -c "! echo 1 2>/dev/null >/sys/kernel/debug/vduse/stats"
check "vduse/stats: a name with white space and '=' is escaped" \
	sh -c "'$TOOLS/vduse_ctl' create 'ob x=1' >/dev/null &&
	       grep -q '^ob\\\\040x\\\\0751 msgs_sent=0 ' /sys/kernel/debug/vduse/stats &&
	       grep -q '^ob\\\\040x\\\\0751/vq0 kicks=0 ' /sys/kernel/debug/vduse/stats &&
	       '$TOOLS/vduse_ctl' destroy 'ob x=1' >/dev/null &&
	       ! grep -q '^ob.*0751' /sys/kernel/debug/vduse/stats"
for s in $VQ_STATS; do
	check "vduse/stats: $s of vq0 and vq1 read 0" \
		test "$(vduse_stat $N/vq0 $s)$(vduse_stat $N/vq1 $s)" = 00
done

need "tracefs is mounted" tracefs
TR=$(tracefs)
for e in $EVENTS; do
	check "trace event vduse:$e exists" test -d "$TR/events/vduse/$e"
done
check "vduse_msg_reply has a string field 'name' and 'latency_ns'" \
	sh -c "grep -q '__data_loc char\[\] name;' $TR/events/vduse/vduse_msg_reply/format &&
	       grep -q 'latency_ns;' $TR/events/vduse/vduse_msg_reply/format"
check "the device name can filter events" \
	sh -c "echo 'name == \"$N\"' >$TR/events/vduse/vduse_vq_kick/filter"
# Enabling a first event also hooks sched_switch and sched_wakeup to
# record task names (options/record-cmd), which live-patches the
# scheduler's hottest code; under TCG that patching once oopsed the guest
# (int3 in ttwu_do_activate, both CPUs, not in this module).  The events
# carry the device name, so the names are not needed: only the vduse
# tracepoints' own call sites get patched.
need "vduse trace events on, into an empty 2 MiB per-CPU buffer" \
	sh -c "echo 0 >$TR/tracing_on && echo 2048 >$TR/buffer_size_kb &&
	       echo 0 >$TR/options/record-cmd &&
	       echo >$TR/trace && echo 1 >$TR/events/vduse/enable &&
	       echo 1 >$TR/tracing_on"

# ---------------------------------------------------------------------------
# Attach and I/O: counters move by plausible amounts

need "vdpa dev add, bound to virtio_vdpa" vdpa_add $N virtio_vdpa
need "virtio_blk made a disk of it" wait_for 30 vdpa_blkdev $N
DEV=$(vdpa_blkdev $N)
need "random test data" dd if=/dev/urandom of=/tmp/ob.data bs=$IO_BS \
	count=$IO_COUNT status=none
check "I/O round 1 reads back what it wrote" io_round 0

ios=$(disk_ios)
check "msgs_sent: the attach's requests (4 to 64)" in_range "$(st msgs_sent)" 4 64
check "msgs_failed and msgs_timed_out stay 0" \
	test "$(st msgs_failed)$(st msgs_timed_out)" = 00
check "kicks: at least one per 4 requests of the round, at most one per disk request ($ios) + 16" \
	in_range "$(st kicks)" $((2 * IO_COUNT / 4)) $((ios + 16))
irqs=$(($(st irqs_inline) + $(st irqs_deferred)))
check "interrupts: at least one per 4 requests of the round, at most one per disk request + 16" \
	in_range $irqs $((2 * IO_COUNT / 4)) $((ios + 16))
check "irqs_irqfd and config_irqs stay 0 (no vhost-vdpa, no config change)" \
	test "$(st irqs_irqfd)$(st config_irqs)" = 00
for s in $VQ_STATS; do
	check "vduse/stats: $s of vq0 + vq1 add up to the device's" \
		same "$s" "$(vq_sum $s)" "$(st $s)"
done

# ---------------------------------------------------------------------------
# Inline and deferred injection, by interrupt affinity

if [ "$(nproc)" -lt 2 ]; then
	echo "# skip - inline and deferred injection: needs two CPUs"
else
	check "the daemon's threads pinned to CPU 0" taskset -a -p 1 "$PID"
	check "interrupt affinity: CPU 1" set_affinity 2
	inl=$(st irqs_inline) def=$(st irqs_deferred)
	check "I/O round 2 reads back what it wrote" io_round 1
	check "CPU 1 only: no interrupt inline" same irqs_inline "$(st irqs_inline)" "$inl"
	check "CPU 1 only: interrupts deferred (at least one per 4 requests)" \
		in_range $(($(st irqs_deferred) - def)) $((2 * IO_COUNT / 4)) $((4 * IO_COUNT))
	check "interrupt affinity: CPU 0" set_affinity 1
	inl=$(st irqs_inline) def=$(st irqs_deferred)
	check "I/O round 3 reads back what it wrote" io_round 2
	# The daemon's CPU is the only one allowed: a worker there would only
	# add a context switch, so every injection runs inline.
	dinl=$(($(st irqs_inline) - inl)) ddef=$(($(st irqs_deferred) - def))
	check "CPU 0 only, the daemon's: interrupts inline (at least one per 4 requests)" \
		in_range $dinl $((2 * IO_COUNT / 4)) $((4 * IO_COUNT))
	check "CPU 0 only, the daemon's: none deferred" same deferred $ddef 0
	# Both CPUs, a deep queue (fio, QD32 on CPU 1): inline only when the
	# driver kicked since the previous injection (a waiting driver);
	# completions back to back with no kick between them go to a worker,
	# on CPU 1: never on the daemon's CPU while another one is allowed.
	check "interrupt affinity: CPU 0 and 1" set_affinity 3
	inl=$(st irqs_inline) def=$(st irqs_deferred) kck=$(st kicks)
	dcpu0=$(events vduse_vq_inject_irq 'vq=[01] path=deferred cpu=0')
	check "I/O round 4: fio, 4 KiB random reads at QD32 from CPU 1" \
		timeout 120 fio --name=deep --filename="$DEV" --direct=1 \
		--ioengine=libaio --rw=randread --bs=4k --iodepth=32 \
		--number_ios=$DEEP_IOS --size=16m --cpus_allowed=1 \
		--output=/dev/null
	dinl=$(($(st irqs_inline) - inl)) ddef=$(($(st irqs_deferred) - def))
	dkck=$(($(st kicks) - kck))
	echo "# round 4: $dinl inline, $ddef deferred, $dkck kicks"
	# (+2: a kick just before the round on each queue counts for it)
	check "both CPUs: each inline interrupt follows a kick ($dinl inline, $dkck kicks)" \
		in_range $dinl 0 $((dkck + 2))
	check "both CPUs: the deep queue's interrupts add up (at least one per 32 requests)" \
		in_range $((dinl + ddef)) $((DEEP_IOS / 32)) $((DEEP_IOS + 16))
	check "both CPUs: no deferred interrupt on the daemon's CPU 0" \
		same "deferred on CPU 0" \
		"$(events vduse_vq_inject_irq 'vq=[01] path=deferred cpu=0')" "$dcpu0"
	check "interrupt affinity: every CPU again" set_affinity "$(printf %x $(((1 << $(nproc)) - 1)))"
fi

# ---------------------------------------------------------------------------
# The trace events match the counters

echo 0 >"$TR/tracing_on"
lost=$(cat "$TR"/per_cpu/cpu*/stats 2>/dev/null |
	awk '/^(overrun|dropped events):/ { n += $NF } END { print n + 0 }')
check "the trace buffer lost no event" test "$lost" = 0
sent=$(st msgs_sent)
check "one vduse_msg_send per message sent" same sends "$(events vduse_msg_send)" "$sent"
check "one vduse_msg_read per message" same reads "$(events vduse_msg_read)" "$sent"
check "one vduse_msg_reply per message, all OK" \
	same replies "$(events vduse_msg_reply 'id=[0-9]* type=[A-Z_]* result=OK latency_ns=[0-9]')" "$sent"
check "the probe's SET_STATUS requests are traced" \
	test "$(events vduse_msg_send 'id=[0-9]* type=SET_STATUS')" -ge 4
check "one vduse_vq_kick per kick" same kicks "$(events vduse_vq_kick)" "$(st kicks)"
check "kicks signal the daemon's eventfd" \
	test "$(events vduse_vq_kick 'vq=[01] path=eventfd')" -gt 0
check "one vduse_vq_inject_irq path=inline per inline interrupt" \
	same inline "$(events vduse_vq_inject_irq 'vq=[01] path=inline')" "$(st irqs_inline)"
check "one vduse_vq_inject_irq path=deferred per deferred interrupt" \
	same deferred "$(events vduse_vq_inject_irq 'vq=[01] path=deferred')" "$(st irqs_deferred)"
check "no timeout and no broken device traced yet" \
	test "$(events vduse_msg_timeout)$(events vduse_dev_broken)" = 00
echo 1 >"$TR/tracing_on"

# ---------------------------------------------------------------------------
# A daemon that stops answering

check "msg_timeout set to $T" sh -c "echo $T >$SYS/msg_timeout"
sent=$(st msgs_sent)
kill -STOP "$PID"
echo "observe: vdpa dev del starts" >"$TR/trace_marker"
t0=$(ms)
timeout 60 vdpa dev del $N
rc=$?
el=$(($(ms) - t0))
echo "observe: vdpa dev del returned" >"$TR/trace_marker"
check "vdpa dev del with the daemon stopped returns" test $rc -eq 0
check "it waited msg_timeout for the reset ($el ms)" \
	in_range $el $((T * 1000 - 100)) 30000
check "msgs_timed_out is 1: later requests failed at once" \
	test "$(st msgs_timed_out)" = 1
check "msgs_sent counts the unanswered reset" test "$(st msgs_sent)" -gt "$sent"
echo 0 >"$TR/tracing_on"
check "vduse_msg_timeout traced: the reset, timeout=${T}s" \
	test "$(events vduse_msg_timeout "id=[0-9]* type=SET_STATUS timeout=${T}s")" = 1
check "vduse_dev_broken traced once" test "$(events vduse_dev_broken 'failed=')" = 1
# The timeline, for the log.
sed -n '/observe: vdpa dev del starts/,$p' "$TR/trace" |
	grep -E 'observe: | vduse_(msg_[a-z]*|dev_broken): ' | sed 's/^ */#   /'
echo 0 >"$TR/events/vduse/enable"

kill -CONT "$PID"
check "the daemon exits on the broken device" wait_for 30 proc_gone "$PID"
{ wait "$PID"; } 2>/dev/null
rm -f /tmp/$BLK-$N.pid
[ -e /dev/vduse/$N ] && "$TOOLS/vduse_ctl" destroy $N >/dev/null 2>&1
check "the device and its vduse/stats lines are gone" \
	sh -c "test ! -e $SYS && ! grep -q '^$N[ /]' /sys/kernel/debug/vduse/stats"
finish
