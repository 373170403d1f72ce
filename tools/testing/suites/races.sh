#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours stock
# kernels: all
# timeout: 900
#
# Races (issue 7): tools/testing/races/vduse_races, one mode per race,
# several threads each, every errno counted and checked:
#  - unload: delete_module("vduse") against create/open/attach/detach/
#    destroy of other devices while one device is held: every try fails
#    with EWOULDBLOCK/EBUSY and the held device keeps working; afterwards
#    rmmod succeeds and the module loads again;
#  - open-destroy: open of /dev/vduse/NAME against DESTROY_DEV of NAME
#    (the upstream module once had a use-after-free there);
#  - create-destroy: CREATE_DEV and DESTROY_DEV of one name from several
#    threads: only EEXIST, EINVAL (no such device) and EBUSY, and no
#    device left;
#  - vdpa: "vdpa dev add/del" (netlink) against O_DIRECT I/O on the disk
#    virtio_blk makes of it and against our vduse-blk being killed and
#    restarted with its reconnect log (it closes and reopens the node);
#  - msg-timeout: the daemon's read()/write() against a 1 s msg_timeout,
#    one reply sent around the timeout while a vhost-vdpa call waits;
#  - sysfs: bounce_size, msg_timeout and vqN/irq_cb_affinity writes
#    against attach/detach (and destroy/recreate).
# After each race: the module's reference count is back, no node but
# /dev/vduse/control, no vDPA device, and the kernel log stays clean (the
# harness fails the run on WARNING/BUG/KFENCE/refcount messages).
#
# The short settings take well under 3 minutes of guest time on 7.3 under
# TCG.  RACES_SECONDS=S runs every race for S seconds instead of a fixed
# count (make soak: SOAK_SUITES=races); RACES_SEED=N repeats a run.
. "$(dirname "$0")/lib.sh"
cd /tmp || exit 1

R=$TOOLS/vduse_races
CTL=$TOOLS/vduse_ctl
BLK=rc-vdpa
IMG=/tmp/rc-blk.img
RLOG=/tmp/vduse-blk-rc-vdpa.rlog
SECS=${RACES_SECONDS:-}
SUITE_START=$(date +%s)
section() { echo "# --- $* (at $(($(date +%s) - SUITE_START)) s)"; }

# The stock module of 7.x leaks a module reference every time a device is
# attached again (lifecycle.sh, abi-facts.md 2.2 item 4); the vdpa and
# sysfs races re-attach one device over and over.
stock_leaks() {
	[ "${VM_MODULE:-ours}" = stock ] || return 1
	case ${VM_SERIES:-7.3} in 7.*) return 0 ;; *) return 1 ;; esac
}

# Remove whatever a failed race left behind, quietly.
teardown() {
	local d n
	pkill -KILL -f "vduse-blk --name $BLK" 2>/dev/null
	for d in /sys/bus/vdpa/devices/*; do
		[ -e "$d" ] && vdpa dev del "${d##*/}" >/dev/null 2>&1
	done
	for d in /dev/vduse/*; do
		n=${d##*/}
		[ "$n" = control ] || [ ! -e "$d" ] || "$CTL" destroy "$n" >/dev/null 2>&1
	done
	echo 1 >/sys/bus/vdpa/drivers_autoprobe
	rm -f "$RLOG"
}
NEED_TEARDOWN=teardown

nothing_left() {
	local left
	left=$(ls /dev/vduse 2>/dev/null | grep -vx control)
	[ -z "$left" ] || { echo "left in /dev/vduse: $left"; return 1; }
	left=$(ls /sys/bus/vdpa/devices 2>/dev/null)
	[ -z "$left" ] || { echo "left on the vDPA bus: $left"; return 1; }
}

refs_are() {	# refs_are N
	local now
	now=$(mod_refcnt vduse)
	[ "$now" = "$1" ] || { echo "vduse has $now users, $1 before"; return 1; }
}

# race MODE COUNT THREADS [ARGS...]: run one race, COUNT iterations (or
# RACES_SECONDS seconds), then check that nothing leaked.
race() {
	local mode=$1 count=$2 threads=$3 refs0 out rc limit
	shift 3
	section "$mode"
	refs0=$(mod_refcnt vduse)
	if [ -n "$SECS" ]; then
		limit=(--seconds "$SECS")
	else
		limit=(--iterations "$count")
	fi
	out=$(timeout $((${SECS:-300} + 300)) "$R" "$mode" --name "rc-$mode" \
		"${limit[@]}" --threads "$threads" ${RACES_SEED:+--seed "$RACES_SEED"} \
		"$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -vE '^(ok|not ok) - '
	if printf '%s\n' "$out" | grep -qE '^(ok|not ok) - '; then
		printf '%s\n' "$out" | grep -E '^(ok|not ok) - ' | {
			# The program's verdict is the check; a crash after it
			# fails too.
			while IFS= read -r line; do
				case $line in
				"ok - "*) [ $rc -eq 0 ] && echo "$line" ||
					echo "not ok - ${line#ok - } (exit status $rc)" ;;
				*) echo "$line" ;;
				esac
			done
		}
		[ $rc -eq 0 ] || _failures=$((_failures + 1))
	else
		fail "$mode: vduse_races exited with status $rc and no verdict"
	fi
	[ $rc -eq 0 ] || teardown
	check "$mode: no device left (/dev/vduse, vDPA bus)" nothing_left
	if [ "$mode" != unload ] && stock_leaks && [ "$(mod_refcnt vduse)" != "$refs0" ]; then
		echo "# skip - $mode: module reference count back to $refs0:" \
			"the stock module of 7.x leaks one per re-attach (now $(mod_refcnt vduse))"
	else
		check "$mode: module reference count back to $refs0" refs_are "$refs0"
	fi
}

need "vduse is loaded" is_loaded vduse
need "vduse_races is built" test -x "$R"
need "vduse-blk is built" test -x "$TOOLS/vduse-blk"
check "nothing exists at the start" nothing_left
echo "# module reference count at start: $(mod_refcnt vduse);" \
	"${SECS:+$SECS s per race}${SECS:-short settings}"

# Module unload first: the stock module's re-attach leak (below) would
# keep it from unloading afterwards.
race unload 600 3
section "unload after cleanup"
need "rmmod vduse succeeds once everything is gone" unload_vduse
need "the module loads again" load_selected
check "/dev/vduse/control is back" test -c /dev/vduse/control

race open-destroy 2000 3
race create-destroy 4000 4

truncate -s 16M "$IMG"
race vdpa 8 4 -- "$TOOLS/vduse-blk" --name rc-vdpa --file "$IMG" \
	--reconnect-log "$RLOG"
check "vdpa: no vduse-blk left running" sh -c '! pgrep -x vduse-blk'
rm -f "$IMG" "$RLOG"

race msg-timeout 5 2 --timeout 1
race sysfs 150 3

section "the module unloads at the end"
if stock_leaks && [ "$(mod_refcnt vduse)" != 0 ]; then
	echo "# skip - rmmod at the end: the stock module of 7.x leaked" \
		"$(mod_refcnt vduse) references on re-attach"
else
	check "rmmod vduse" unload_vduse
	check "the module loads again" load_selected
fi
finish
