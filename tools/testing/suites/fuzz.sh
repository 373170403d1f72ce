#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours
# kernels: 7.3
# timeout: 1200
#
# make check runs it on the reference kernel only, for its time budget;
# it passes on 6.12 and 6.1 as well: make soak SOAK_KERNEL=6.12 (or 6.1)
# runs it there, with the long settings.
#
# The syscall fuzzer (issue 7): tools/testing/fuzz/vduse_fuzz drives the
# control node, the device nodes it creates, their IOTLB files and vDPA
# netlink for FUZZ_SECONDS (default 300 on 7.3, 60 on 6.12 and 6.1, to
# keep "make check" within its budget; SOAK=1 makes it SOAK_SECONDS,
# default 3600), attaching its devices to virtio_vdpa and vhost_vdpa
# while it plays their daemon badly.  Then:
#  - the fuzzer exited normally: no operation hung, no batch stuck, no
#    kernel warning seen (it reads the kernel log after every operation
#    and prints the lines and the calls before them);
#  - it removed every device it made: no /dev/vduse node but the control
#    node, no vDPA device, no module reference left;
#  - unreclaimable slab (SUnreclaim) did not grow by more than
#    FUZZ_SLAB_TOLERANCE_KB (default 8192) plus 5 % over a 10-second
#    warm-up run, caches dropped before each reading;
#  - "rmmod vduse" works (the module is loaded again afterwards).
# The seed and the operation counts go to a "# " line.  FUZZ_SEED=N
# repeats a run; the fuzzer's call trace is in FUZZ_TRACE (default
# /tmp/fuzz-trace.log, whose last lines are printed when a check fails;
# point it at /vduse/build/... to keep it across a guest crash).
#
# Our module only: the stock module is the ABI oracle of the other suites,
# not a fuzzing target, and it has known crashes (a use-after-free between
# open and destroy, a NULL dereference; issue 7) that would end the run
# without telling us anything about ours.
. "$(dirname "$0")/lib.sh"
cd /tmp || exit 1

FUZZ=$TOOLS/vduse_fuzz
# The fuzzer also reads our counters, debugfs vduse/stats.
mountpoint -q /sys/kernel/debug || mount -t debugfs nodev /sys/kernel/debug
if [ "${SOAK:-0}" != 0 ]; then
	secs=${FUZZ_SECONDS:-${SOAK_SECONDS:-3600}}
else
	case ${VM_SERIES:-7.3} in
	7.*)	secs=${FUZZ_SECONDS:-300} ;;
	*)	secs=${FUZZ_SECONDS:-60} ;;
	esac
fi
# Our module keeps a hostile net device from crashing virtio_net (it
# clears VIRTIO_NET_S_ANNOUNCE and refuses rings too short for a
# big-packets buffer at "vdpa dev add"), so the fuzzer may try both.
known=
[ "${VM_MODULE:-ours}" = ours ] && known=--known-crashes
# make check replays a seed that passed, so that its verdict is about the
# change under test; make soak (SOAK=1) draws a new one every run.
if [ "${SOAK:-0}" != 0 ]; then
	seed=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
else
	seed=${FUZZ_SEED:-3024056612}
fi
trace=${FUZZ_TRACE:-/tmp/fuzz-trace.log}
tolerance_kb=${FUZZ_SLAB_TOLERANCE_KB:-8192}
mkdir -p "$(dirname "$trace")"
KLOG_BAD='WARNING:|BUG:|BUG kmalloc|kernel BUG|Oops|KFENCE:|list_add corruption|list_del corruption|refcount_t:|general protection fault|UBSAN:|INFO: task .* blocked|Kernel panic|unreferenced object|stack-protector|slab .* corrupted|Poison overwritten|Redzone'

echo "# fuzz: seed $seed, $secs s on $(uname -r) (FUZZ_SEED=$seed repeats it)"

# Unreclaimable slab in KiB, after the caches were dropped.
sunreclaim() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 2
	awk '/^SUnreclaim:/ { print $2 }' /proc/meminfo
}

trace_tail() {
	[ -s "$trace" ] || return 0
	echo "#   last calls ($trace):"
	tail -n 40 "$trace" | sed 's/^/#     /'
}

# A short run first: what the first devices, netdevs and vhost nodes
# allocate once is not a leak.
if ! out=$(timeout 600 "$FUZZ" $known --seed $((seed + 1)) --seconds 10 \
		--trace "$trace" 2>&1); then
	fail "warm-up run of the fuzzer (seed $((seed + 1)))"
	printf '%s\n' "$out" | grep -v '^# fuzz-summary' | head -n 150
	trace_tail
	finish
fi
ok "warm-up run of the fuzzer (seed $((seed + 1)), 10 s)"
dmesg_lines=$(dmesg | wc -l)
slab0=$(sunreclaim)

t0=$(date +%s)
timeout $((secs + 900)) "$FUZZ" $known --seed "$seed" --seconds "$secs" \
	--trace "$trace" 2>&1 | tee /tmp/fuzz.out | grep --line-buffered -v '^# fuzz-summary'
rc=${PIPESTATUS[0]}
t1=$(date +%s)
summary=$(grep '^# fuzz-summary' /tmp/fuzz.out | tail -n 1)
if [ $rc -eq 0 ] && [ -n "$summary" ]; then
	ok "the fuzzer ran $((t1 - t0)) s and exited normally (seed $seed)"
else
	case $rc in
	1) why="the kernel log reported a problem" ;;
	3) why="an operation hung" ;;
	4) why="devices were left behind" ;;
	124) why="it did not finish in time" ;;
	*) why="exit status $rc" ;;
	esac
	fail "the fuzzer ran $((t1 - t0)) s and exited normally (seed $seed): $why"
	trace_tail
fi

left=$(ls /dev/vduse 2>/dev/null | grep -vx control | tr '\n' ' ')
check "no VDUSE device left${left:+ (left: $left)}" test -z "$left"
left=$(ls /sys/bus/vdpa/devices 2>/dev/null | tr '\n' ' ')
check "no vDPA device left${left:+ (left: $left)}" test -z "$left"
check "no module reference left (refcnt $(mod_refcnt vduse))" \
	test "$(mod_refcnt vduse)" = 0

bad=$(dmesg | tail -n +"$((dmesg_lines + 1))" | grep -E -- "$KLOG_BAD")
if [ -z "$bad" ]; then
	ok "kernel log clean while fuzzing"
else
	fail "kernel log clean while fuzzing"
	printf '%s\n' "$bad" | head -n 20 | sed 's/^/#   /'
fi

slab1=$(sunreclaim)
allowed=$((tolerance_kb + slab0 / 20))
grow=$((slab1 - slab0))
if [ "$grow" -le "$allowed" ]; then
	ok "unreclaimable slab within tolerance: $slab0 -> $slab1 KiB (+$grow, $allowed allowed)"
else
	fail "unreclaimable slab within tolerance: $slab0 -> $slab1 KiB (+$grow, $allowed allowed)"
	sort -k3 -n -r /proc/slabinfo 2>/dev/null | head -n 12 | sed 's/^/#   /'
fi

check "rmmod vduse" unload_vduse
load_selected

# One line with the seed and the counts, for the run's record.
if [ -n "$summary" ]; then
	echo "# fuzz: ${summary#"# fuzz-summary "} slab_kb=$slab0/$slab1"
fi
[ "$_failures" -eq 0 ] && [ -z "${FUZZ_TRACE:-}" ] && rm -f "$trace"
finish
