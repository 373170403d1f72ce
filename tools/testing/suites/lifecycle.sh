#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours stock
# kernels: all
#
# Device lifecycle (abi-facts.md 2.2, 2.3):
#  - DESTROY_DEV is refused with EBUSY while the device is attached or its
#    node is open, and works once neither holds;
#  - no kernel memory and no module reference is left behind by hundreds
#    of create/attach/detach/destroy cycles, and the module unloads and
#    reloads once every device is gone;
#  - 100 "vdpa dev del/add" cycles of one qemu-storage-daemon export, with
#    I/O every 10th cycle;
#  - an unanswered request breaks the device after msg_timeout, once: later
#    requests fail at once, ioctls give EPERM, poll gives POLLERR, and the
#    broken device can still be destroyed;
#  - re-attaching one device over and over leaks nothing either.
#
# The stock module of 7.x leaks the IOVA domains of a device, and with them
# a module reference, every time the device is attached again (abi-facts.md
# 2.2 item 4, 6 item 14; confirmed on 7.3.4).  Everything that re-attaches
# a device therefore comes after the unload test, and where the stock
# module's leak shows, the stock run checks that the leak is detected
# (which proves the measure) while our module must not leak.
. "$(dirname "$0")/lib.sh"

CTL=$TOOLS/vduse_ctl
BLK=lc-blk			# the export cycled 100 times
CYCLES=100
T=6				# msg_timeout for the break tests, seconds
AUTOPROBE=/sys/bus/vdpa/drivers_autoprobe
SUITE_START=$(date +%s)

ms() { date +%s%3N; }
# The stock module of 7.x leaks on re-attach; 6.12 reused the domains and
# 6.1 made them at creation.
stock_leaks() {
	[ "${VM_MODULE:-ours}" = stock ] || return 1
	case ${VM_SERIES:-7.3} in 7.*) return 0 ;; *) return 1 ;; esac
}
section() { echo "# --- $* (at $(($(date +%s) - SUITE_START)) s)"; }

# expect_out WANT CMD...: CMD prints exactly WANT.
expect_out() {
	local want=$1 out
	shift
	out=$("$@" 2>&1)
	[ "$out" = "$want" ] || { echo "got '$out', want '$want'"; return 1; }
}

# probe_has NAME LINE...: "vduse_ctl probe NAME" prints every LINE.
probe_has() {
	local name=$1 out l rc=0
	shift
	out=$("$CTL" probe "$name" 2>&1)
	for l in "$@"; do
		grep -qx -- "$l" <<<"$out" || rc=1
	done
	[ $rc -eq 0 ] || echo "probe: $(tr '\n' ' ' <<<"$out")"
	return $rc
}

autoprobe_saved=
autoprobe_off() {
	[ -n "$autoprobe_saved" ] || autoprobe_saved=$(cat $AUTOPROBE)
	echo 0 >$AUTOPROBE
}
autoprobe_restore() {
	[ -n "$autoprobe_saved" ] && echo "$autoprobe_saved" >$AUTOPROBE
	autoprobe_saved=
}

# vdpa_add_noprobe NAME: attach NAME to the vDPA bus without binding a
# driver, so that no request is sent.
vdpa_add_noprobe() {
	local rc
	autoprobe_off
	vdpa dev add name "$1" mgmtdev vduse
	rc=$?
	autoprobe_restore
	return $rc
}

# io_check NAME SLOT: write 32 KiB of random data to slot SLOT of the
# export's disk with O_DIRECT, read it back, and find it in the backing
# file /tmp/NAME.img; data of earlier slots must still read back.
io_check() {
	local dev s off
	dev=$(vdpa_blkdev "$1") || { echo "no block device"; return 1; }
	wait_for 10 test -b "$dev" || { echo "no $dev node"; return 1; }
	off=$(($2 * 8))
	dd if=/dev/urandom of="/tmp/lc-pat.$1.$2" bs=4k count=8 status=none
	dd if="/tmp/lc-pat.$1.$2" of="$dev" bs=4k seek=$off count=8 \
		oflag=direct conv=notrunc status=none || { echo "write failed"; return 1; }
	for s in $(seq 0 "$2"); do
		[ -f "/tmp/lc-pat.$1.$s" ] || continue
		dd if="$dev" of=/tmp/lc-back bs=4k skip=$((s * 8)) count=8 \
			iflag=direct status=none || { echo "read failed"; return 1; }
		cmp -s "/tmp/lc-pat.$1.$s" /tmp/lc-back ||
			{ echo "slot $s reads back different data"; return 1; }
	done
	same_bytes "/tmp/lc-pat.$1.$2" 0 "/tmp/$1.img" $((off * 4096)) 32768 ||
		{ echo "the data is not in the backing file"; return 1; }
}

# mem_snap FILE: after dropping caches, save "cache active_objs objsize"
# for every slab cache, then "@vmalloc BYTES 1" and "@percpu BYTES 1".
# The test kernel boots with slub_debug, so caches are not merged and each
# cache's count is its own.
mem_snap() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 1
	{
		awk 'NR > 2 { print $1, $2, $4 }' /proc/slabinfo
		awk '/^VmallocUsed:/ { print "@vmalloc", $2 * 1024, 1 }
		     /^Percpu:/ { print "@percpu", $2 * 1024, 1 }' /proc/meminfo
	} >"$1"
}

# mem_growth BEFORE AFTER: "name delta delta_bytes" per cache that grew,
# largest growth in objects first.
mem_growth() {
	awk 'NR == FNR { a[$1] = $2; next }
	     { d = $2 - a[$1]; if (d > 0) print $1, d, d * $3 }' "$1" "$2" |
		sort -k2,2nr
}

# leak_found BEFORE AFTER CYCLES: succeeds when the growth between the two
# snapshots shows a per-cycle leak: a slab cache that gained at least
# 3/4 object per cycle, vmalloc grown by 2 KiB per cycle (a leaked
# allocation costs at least a page), or percpu memory grown by more than
# 64 KiB.  Prints what it found and the top growers.
leak_found() {
	local before=$1 after=$2 cyc=$3 g found=1
	g=$(mem_growth "$before" "$after")
	echo "# growth over $cyc cycles (name objects bytes):" \
		"$(grep -v '^@' <<<"$g" | head -n 5 | tr '\n' ';')" \
		"$(grep '^@' <<<"$g" | tr '\n' ';')"
	awk -v c="$cyc" '$1 !~ /^@/ && $2 >= c * 3 / 4 { exit 1 }' <<<"$g" || {
		echo "# a slab cache grew by >= 3/4 object per cycle"
		found=0
	}
	awk -v c="$cyc" '$1 == "@vmalloc" && $2 >= c * 2048 { exit 1 }' <<<"$g" || {
		echo "# vmalloc grew by >= 2 KiB per cycle"
		found=0
	}
	awk '$1 == "@percpu" && $2 > 65536 { exit 1 }' <<<"$g" || {
		echo "# percpu memory grew by > 64 KiB"
		found=0
	}
	return $found
}

hold_pid=
teardown() {
	local n p
	[ -n "$hold_pid" ] && kill "$hold_pid" 2>/dev/null && wait "$hold_pid" 2>/dev/null
	hold_pid=
	for n in $BLK lc-to-add lc-to-del; do
		p=$(qsd_pid "$n") && kill -CONT "$p" 2>/dev/null
		vduse_blk_teardown "$n"
	done
	for n in lc-busy lc-cyc lc-readd lc-after $BLK lc-to-add lc-to-del; do
		vdpa_exists "$n" && vdpa dev del "$n" 2>/dev/null
		[ -e "/dev/vduse/$n" ] && "$CTL" destroy "$n" >/dev/null 2>&1
	done
	autoprobe_restore
	echo 1 >$AUTOPROBE
	is_loaded vduse || load_selected
	rm -f /tmp/lc-* /tmp/lc-*.img
}
NEED_TEARDOWN=teardown
trap teardown EXIT

# ---------------------------------------------------------------------------
section "where we start"

need "vduse is loaded" is_loaded vduse
need "no VDUSE device exists at start" no_devices
refs0=$(refcounts)
echo "# module reference counts at start: $refs0"
check "vduse has no users at start" test "$(mod_refcnt vduse)" = 0

# ---------------------------------------------------------------------------
section "DESTROY_DEV is refused while the device is attached or open"

need "create lc-busy (block, 1 vq) and set up its vq" expect_out OK "$CTL" create lc-busy
check "the module has a user while a device exists" \
	test "$(mod_refcnt vduse)" -gt 0
if rmmod vduse 2>/dev/null; then
	fail "rmmod vduse is refused while a device exists (it unloaded)"
	load_selected
	finish
fi
ok "rmmod vduse is refused while a device exists"
check "a healthy device: node opens, ioctls work, poll reports nothing" \
	probe_has lc-busy open=OK ioctl=OK vqinfo=OK poll=none

check "vdpa dev add lc-busy (no driver bound)" vdpa_add_noprobe lc-busy
check "DESTROY_DEV while attached (node closed) fails with EBUSY" \
	expect_out EBUSY "$CTL" destroy lc-busy
check "the device survives the refused destroy" test -c /dev/vduse/lc-busy
check "vdpa dev del lc-busy" vdpa_del lc-busy

"$CTL" hold lc-busy >/tmp/lc-hold.out 2>&1 &
hold_pid=$!
check "a process holds /dev/vduse/lc-busy open" wait_for 10 grep -qx held /tmp/lc-hold.out
check "a second open fails with EBUSY" probe_has lc-busy open=EBUSY
check "DESTROY_DEV while the node is open (detached) fails with EBUSY" \
	expect_out EBUSY "$CTL" destroy lc-busy
kill "$hold_pid"
wait "$hold_pid"
hold_pid=
check "DESTROY_DEV once detached and closed" expect_out OK "$CTL" destroy lc-busy
check "the node is gone" test ! -e /dev/vduse/lc-busy
check "the class device is gone" test ! -e /sys/class/vduse/lc-busy
check "DESTROY_DEV of a destroyed device fails with EINVAL" \
	expect_out EINVAL "$CTL" destroy lc-busy
check "the module has no user once the device is gone" \
	test "$(mod_refcnt vduse)" = 0

# ---------------------------------------------------------------------------
section "no leak over create/attach/detach/destroy cycles"

# Each cycle creates lc-cyc, sets up its vq, attaches it with no driver
# bound (so the IOVA domain is made), detaches and destroys it.
autoprobe_off
out=$("$CTL" cycle lc-cyc 20 attach 2>&1)
rc=$?
check "20 warm-up create/attach/detach/destroy cycles" test $rc -eq 0
[ $rc -eq 0 ] || echo "$out" | tail -n 5 | sed 's/^/#   /'
mem_snap /tmp/lc-mem1
out=$("$CTL" cycle lc-cyc 200 attach 2>&1)
rc=$?
mem_snap /tmp/lc-mem2
autoprobe_restore
check "200 more create/attach/detach/destroy cycles" test $rc -eq 0
[ $rc -eq 0 ] || echo "$out" | tail -n 5 | sed 's/^/#   /'
if [ $rc -eq 0 ]; then
	check_fails "no per-cycle growth of slab, vmalloc or percpu memory over 200 cycles" \
		leak_found /tmp/lc-mem1 /tmp/lc-mem2 200
else
	fail "no per-cycle growth over 200 cycles (not measured: the cycles failed)"
fi
leak_found /tmp/lc-mem1 /tmp/lc-mem2 200 | grep '^#'

# ---------------------------------------------------------------------------
section "the module unloads once every device is gone"

check "no VDUSE device is left" no_devices
refs1=$(refcounts)
check "module reference counts are back where they started" test "$refs1" = "$refs0"
[ "$refs1" = "$refs0" ] || echo "#   start: $refs0 now: $refs1"
need "rmmod vduse" unload_vduse
check_fails "vduse is gone" is_loaded vduse
check_fails "/dev/vduse/control is gone" test -e /dev/vduse/control
need "reload vduse (${VM_MODULE:-ours})" load_selected
check "/dev/vduse/control is back" wait_for 5 test -c /dev/vduse/control
check "the reloaded module creates a device" expect_out OK "$CTL" create lc-after
check "and destroys it" expect_out OK "$CTL" destroy lc-after
check "module reference counts after the reload match the start" \
	test "$(refcounts)" = "$refs0"

# ---------------------------------------------------------------------------
section "$CYCLES detach/attach cycles of a qemu-storage-daemon export"

truncate -s 16M /tmp/$BLK.img
qsd_start $BLK /tmp/$BLK.img writable=on
need "qemu-storage-daemon exports $BLK" qsd_ready $BLK

# One cycle runs iproute2's vdpa twice and little else: under TCG every
# process costs, and the loop is the bulk of the suite's time.
# attach_blk: vdpa dev add with probing held off, then bind virtio_vdpa.
attach_blk() {
	echo 0 >$AUTOPROBE
	if ! vdpa dev add name $BLK mgmtdev vduse 2>/tmp/lc-err; then
		echo 1 >$AUTOPROBE
		err="vdpa dev add: $(cat /tmp/lc-err)"
		return 1
	fi
	echo 1 >$AUTOPROBE
	echo virtio_vdpa >/sys/bus/vdpa/devices/$BLK/driver_override &&
		echo $BLK >/sys/bus/vdpa/drivers_probe &&
		[ -e /sys/bus/vdpa/drivers/virtio_vdpa/$BLK ] ||
		{ err="binding virtio_vdpa failed"; return 1; }
}

good=0
io_good=0
first_err=
start=$(ms)
for i in $(seq 1 $CYCLES); do
	err=
	if ! attach_blk; then
		:
	elif ! wait_for 20 vdpa_blkdev $BLK; then
		err="virtio_blk made no disk"
	elif [ $((i % 10)) -eq 0 ]; then
		if out=$(io_check $BLK $((i / 10)) 2>&1); then
			io_good=$((io_good + 1))
		else
			err="I/O check: $out"
		fi
	fi
	if ! vdpa dev del $BLK 2>/tmp/lc-err; then
		err="${err:+$err; }vdpa dev del: $(cat /tmp/lc-err)"
	elif [ -e /sys/bus/vdpa/devices/$BLK ]; then
		err="${err:+$err; }the vDPA device is still there after vdpa dev del"
	fi
	if [ -z "$err" ]; then
		good=$((good + 1))
	else
		[ -n "$first_err" ] || first_err="cycle $i: $err"
		vdpa_exists $BLK && break
	fi
done
echo "# $i cycles took $(( ($(ms) - start) / 1000 )) s"
if [ $good -eq $CYCLES ]; then
	ok "$CYCLES vdpa dev del/add cycles of a qemu-storage-daemon export"
else
	fail "$CYCLES vdpa dev del/add cycles of a qemu-storage-daemon export ($good good)"
	echo "#   $first_err"
fi
check "I/O through the disk every 10th cycle ($io_good of $((CYCLES / 10)))" \
	test $io_good -eq $((CYCLES / 10))
check "qemu-storage-daemon is still serving" qsd_ready $BLK

need "attach $BLK once more" vdpa_add $BLK virtio_vdpa
check "DESTROY_DEV of the attached, open export fails with EBUSY" \
	expect_out EBUSY "$CTL" destroy $BLK
check "the export still does I/O after the refused destroy" io_check $BLK 11
check "vdpa dev del $BLK" vdpa_del $BLK
check "DESTROY_DEV while qemu-storage-daemon holds the node fails with EBUSY" \
	expect_out EBUSY "$CTL" destroy $BLK
qsd_stop $BLK
rc=$?
check "qemu-storage-daemon exits with status 0 on SIGTERM" test $rc -eq 0
check "qemu-storage-daemon destroyed its device on exit" \
	wait_for 5 test ! -e /dev/vduse/$BLK

# ---------------------------------------------------------------------------
section "msg_timeout: an unanswered request breaks the device"

# broken_checks NAME: the device's node reports a broken device, and the
# broken device can be destroyed.
broken_checks() {
	check "$1: the node still opens" probe_has "$1" open=OK
	check "$1: ioctls on the broken device fail with EPERM" \
		probe_has "$1" ioctl=EPERM vqinfo=EPERM
	check "$1: poll reports POLLERR" sh -c \
		"'$CTL' probe '$1' | grep -q '^poll=.*POLLERR'"
	check "$1: DESTROY_DEV of the broken device" expect_out OK "$CTL" destroy "$1"
	check "$1: the node is gone" test ! -e "/dev/vduse/$1"
}

# kill_daemon NAME: SIGKILL the stopped daemon and reap it, so that its
# file references are gone.
kill_daemon() {
	local pid
	pid=$(qsd_pid "$1")
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	rm -f "/tmp/qsd-$1.pid"
}

# Variant 1: the daemon stops before the device is attached; binding
# virtio_vdpa sends the first request (a reset), which nobody answers.
# Binding then sends several more (status writes of virtio and
# virtio_blk's probe): they must fail at once, so the whole bind takes
# one timeout, not several.
n=lc-to-add
truncate -s 16M /tmp/$n.img
qsd_start $n /tmp/$n.img writable=on
need "qemu-storage-daemon exports $n" qsd_ready $n
check "$n: msg_timeout defaults to 30" \
	test "$(cat /sys/class/vduse/$n/msg_timeout)" = 30
check "$n: msg_timeout can be set to $T" \
	sh -c "echo $T >/sys/class/vduse/$n/msg_timeout &&
	       test \"\$(cat /sys/class/vduse/$n/msg_timeout)\" = $T"
kill -STOP "$(qsd_pid $n)"
check "$n: vdpa dev add (no driver bound, so no request yet)" vdpa_add_noprobe $n
# Only the probe is timed: a shell builtin's write, no process start.
echo virtio_vdpa >/sys/bus/vdpa/devices/$n/driver_override
t0=$(ms)
echo $n >/sys/bus/vdpa/drivers_probe
el=$(($(ms) - t0))
check "$n: binding virtio_vdpa with the daemon stopped waits msg_timeout, once ($el ms)" \
	test $el -ge $((T * 1000 - 100)) -a $el -lt $((2 * T * 1000 - 500))
check "$n: virtio_vdpa is bound nevertheless" vdpa_bound $n virtio_vdpa
check_fails "$n: virtio_blk made no disk of the unanswered device" vdpa_blkdev $n
t0=$(ms)
check "$n: vdpa dev del of the broken device" vdpa_del $n
el=$(($(ms) - t0))
check "$n: detaching the broken device does not wait ($el ms)" \
	test $el -lt $((T * 1000))
kill_daemon $n
broken_checks $n

# Variant 2: the daemon stops while its disk is in use; "vdpa dev del"
# removes virtio_blk, whose reset nobody answers.
n=lc-to-del
truncate -s 16M /tmp/$n.img
qsd_start $n /tmp/$n.img writable=on
need "qemu-storage-daemon exports $n" qsd_ready $n
need "$n: attach to virtio_vdpa" vdpa_add $n virtio_vdpa
check "$n: the disk works" io_check $n 0
check "$n: msg_timeout can be set to $T while attached" \
	sh -c "echo $T >/sys/class/vduse/$n/msg_timeout"
kill -STOP "$(qsd_pid $n)"
t0=$(ms)
vdpa dev del $n
rc=$?
el=$(($(ms) - t0))
check "$n: vdpa dev del with the daemon stopped" test $rc -eq 0
check "$n: the vDPA device is gone" test ! -e /sys/bus/vdpa/devices/$n
check "$n: detaching with the daemon stopped waits msg_timeout, once ($el ms)" \
	test $el -ge $((T * 1000 - 100)) -a $el -lt $((2 * T * 1000 - 500))
kill_daemon $n
broken_checks $n

# ---------------------------------------------------------------------------
section "no leak over re-attach cycles of one device"

need "create lc-readd" expect_out OK "$CTL" create lc-readd
autoprobe_off
out=$("$CTL" readd lc-readd 1 2>&1)
mem_snap /tmp/lc-mem3
out=$("$CTL" readd lc-readd 100 2>&1)
rc=$?
mem_snap /tmp/lc-mem4
autoprobe_restore
check "100 attach/detach cycles of one device" test $rc -eq 0
[ $rc -eq 0 ] || echo "$out" | tail -n 5 | sed 's/^/#   /'
check "destroy lc-readd" expect_out OK "$CTL" destroy lc-readd
if [ $rc -ne 0 ]; then
	fail "no per-cycle growth over 100 re-attaches (not measured: the cycles failed)"
elif stock_leaks; then
	# Known stock bug (see the top): the measure must see it.
	check "stock: the known re-attach leak is detected (proves the measure)" \
		leak_found /tmp/lc-mem3 /tmp/lc-mem4 100
else
	check_fails "no per-cycle growth of slab, vmalloc or percpu memory over 100 re-attaches" \
		leak_found /tmp/lc-mem3 /tmp/lc-mem4 100
fi
leak_found /tmp/lc-mem3 /tmp/lc-mem4 100 | grep '^#'

# ---------------------------------------------------------------------------
section "and once more: every device gone, the module unloads"

check "no VDUSE device is left" no_devices
refs2=$(refcounts)
echo "# module reference counts now: $refs2"
if stock_leaks; then
	# Every re-attach above (101 of the export, 100 of lc-readd) leaked
	# a module reference.
	check "stock: the known re-attach leak holds module references" \
		test "$(mod_refcnt vduse)" -gt 0
else
	check "module reference counts are back where they started" \
		test "$refs2" = "$refs0"
	need "rmmod vduse" unload_vduse
	need "reload vduse" load_selected
	check "/dev/vduse/control is back" wait_for 5 test -c /dev/vduse/control
fi
echo "# suite took $(($(date +%s) - SUITE_START)) s"
finish
