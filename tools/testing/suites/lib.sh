# SPDX-License-Identifier: GPL-2.0
#
# Helpers for suite scripts, sourced inside the guest.  A suite prints one
# "ok - what" or "not ok - what" line per check and exits non-zero when any
# check failed.  VM_MODULE (ours|stock|none) and VM_KVER come from the
# harness.

TOOLS=/vduse/build/tools
OURS_KO=/vduse/build/${VM_KVER:-$(uname -r)}/vduse.ko
_failures=0

ok()   { echo "ok - $*"; }
fail() { echo "not ok - $*"; _failures=$((_failures + 1)); }

# check DESC CMD...: one test that passes when CMD exits 0.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		fail "$desc"
		[ -n "$out" ] && printf '#   %s\n' "$out" | head -n 20
	fi
}

# check_fails DESC CMD...: one test that passes when CMD exits non-zero.
check_fails() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then
		fail "$desc (succeeded)"
	else
		ok "$desc"
	fi
}

# wait_for SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
	local t=$(($1 * 10))
	shift
	while [ $t -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}

is_loaded() { grep -q "^$1 " /proc/modules; }
mod_refcnt() { awk -v m="$1" '$1 == m { print $3 }' /proc/modules; }

# The modules of the VDUSE stack, and their reference counts as one line
# of "name=count" pairs, to compare before and after.
MODS="vduse vdpa vhost_iotlb vhost_vdpa virtio_vdpa"
refcounts() {
	local m
	for m in $MODS; do
		printf '%s=%s ' "$m" "$(mod_refcnt "$m")"
	done
}

# No device node but the control node is left.
no_devices() {
	local left
	left=$(ls /dev/vduse 2>/dev/null | grep -vx control)
	[ -z "$left" ] || { echo "left: $left"; return 1; }
}
load_ours() { insmod "$OURS_KO"; }
load_stock() { modprobe vduse; }
unload_vduse() { rmmod vduse; }

# Load the module the harness asked for (for suites that unload it).
load_selected() {
	case ${VM_MODULE:-ours} in
	ours) load_ours ;;
	stock) load_stock ;;
	esac
}

finish() {
	[ "$_failures" -eq 0 ]
	exit $?
}

# ---------------------------------------------------------------------------
# Block exports through real clients (block.sh, vhost.sh, reconnect.sh):
# qemu-storage-daemon serves a vduse-blk export, iproute2's vdpa attaches it,
# and virtio_blk or vhost_vdpa consume it.  Scratch files live in /tmp.

# check_rc DESC CMD...: check, and return non-zero when it failed.
check_rc() {
	local before=$_failures
	check "$@"
	[ "$_failures" -eq "$before" ]
}

# need DESC CMD...: a check that later steps depend on.  When it fails, run
# the suite's teardown function (named by $NEED_TEARDOWN, if any) and finish.
need() {
	check_rc "$@" && return 0
	echo "# a step the rest depends on failed: stopping here"
	[ -n "${NEED_TEARDOWN:-}" ] && "$NEED_TEARDOWN"
	finish
}

# True when process PID is gone or a zombie.
proc_gone() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ]
}

# qsd_start NAME IMAGE [EXPORT-OPTIONS]: export the raw file IMAGE as the
# vduse-blk device NAME with qemu-storage-daemon, in the background (it must
# not attach the device itself: "vdpa dev add" waits for the daemon).  The
# options are appended to the --export argument (writable=on,num-queues=2).
# The pid goes to /tmp/qsd-NAME.pid, the output to /tmp/qsd-NAME.log.  Run
# it in the suite's own shell, not inside check, so that it stays our child.
qsd_start() {
	local name=$1 img=$2 opts=${3:+,$3}
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=file0,filename=$img" \
		--export "vduse-blk,id=exp0,node-name=file0,name=$name$opts" \
		>>"/tmp/qsd-$name.log" 2>&1 </dev/null &
	echo $! >"/tmp/qsd-$name.pid"
}

# daemon_serving PID NAME: process PID is alive and has /dev/vduse/NAME open.
daemon_serving() {
	local fd
	proc_gone "$1" && return 1
	for fd in /proc/"$1"/fd/*; do
		# (-ef is a builtin test: no process per fd)
		[ "$fd" -ef "/dev/vduse/$2" ] && return 0
	done
	return 1
}

# The pid file is /tmp/qsd-NAME.pid: the daemon_* helpers below apply.
qsd_pid() { daemon_pid qsd "$1"; }
qsd_ready() { daemon_ready qsd "$1"; }
qsd_stop() { daemon_stop qsd "$@"; }

# vdpa_add NAME DRIVER: create the vDPA device NAME on the vduse management
# device and bind it to DRIVER (virtio_vdpa or vhost_vdpa).  Both drivers are
# loaded, so automatic probing is held off while the device is created and
# the device is then probed with driver_override set.
vdpa_add() {
	local name=$1 drv=$2 auto rc
	auto=$(cat /sys/bus/vdpa/drivers_autoprobe)
	echo 0 >/sys/bus/vdpa/drivers_autoprobe
	timeout 90 vdpa dev add name "$name" mgmtdev vduse
	rc=$?
	echo "$auto" >/sys/bus/vdpa/drivers_autoprobe
	[ $rc -eq 0 ] || return $rc
	echo "$drv" >"/sys/bus/vdpa/devices/$name/driver_override" &&
		echo "$name" >/sys/bus/vdpa/drivers_probe &&
		vdpa_bound "$name" "$drv"
}

# vdpa_bound NAME DRIVER: the vDPA device NAME is bound to DRIVER.
vdpa_bound() {
	local link
	link=$(readlink "/sys/bus/vdpa/devices/$1/driver") || {
		echo "$1 is bound to no driver"
		return 1
	}
	[ "${link##*/}" = "$2" ] || { echo "$1 is bound to ${link##*/}"; return 1; }
}

# vdpa_rebind NAME DRIVER: move the vDPA device NAME to another driver.
vdpa_rebind() {
	local name=$1 drv=$2 link
	if link=$(readlink "/sys/bus/vdpa/devices/$name/driver"); then
		echo "$name" >"/sys/bus/vdpa/drivers/${link##*/}/unbind" || return 1
	fi
	echo "$drv" >"/sys/bus/vdpa/devices/$name/driver_override" &&
		echo "$name" >"/sys/bus/vdpa/drivers/$drv/bind" &&
		vdpa_bound "$name" "$drv"
}

# vdpa_del NAME: delete the vDPA device and make sure it is gone.
vdpa_del() {
	timeout 90 vdpa dev del "$1" || return 1
	wait_for 10 sh -c "! test -e /sys/bus/vdpa/devices/$1"
}

vdpa_exists() { test -e "/sys/bus/vdpa/devices/$1"; }

# vduse_stat NAME KEY: the counter KEY of device NAME (NAME/vqN: of its
# queue N) in our module's debugfs table vduse/stats; debugfs is mounted
# if need be.  Fails when the module has no such line or counter.
vduse_stat() {
	local f=/sys/kernel/debug/vduse/stats
	[ -e "$f" ] || mountpoint -q /sys/kernel/debug ||
		mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
	[ -r "$f" ] || return 1
	awk -v d="$1" -v k="$2" '$1 == d {
		for (i = 2; i <= NF; i++)
			if (substr($i, 1, length(k) + 1) == k "=") {
				print substr($i, length(k) + 2); n++
			}
	} END { exit n != 1 }' "$f"
}

# vdpa_blkdev NAME: the /dev/vdX that virtio_blk made of the vDPA device.
vdpa_blkdev() {
	local d
	for d in /sys/bus/vdpa/devices/"$1"/virtio*/block/*; do
		[ -e "$d" ] && { echo "/dev/${d##*/}"; return 0; }
	done
	return 1
}

# vdpa_vhostdev NAME: the /dev/vhost-vdpa-N that vhost_vdpa made of it.
vdpa_vhostdev() {
	local d
	for d in /sys/bus/vdpa/devices/"$1"/vhost-vdpa-*; do
		[ -e "$d" ] && { echo "/dev/${d##*/}"; return 0; }
	done
	return 1
}

# vduse_blk_teardown NAME: remove whatever is left of an export, quietly:
# unmount the disk, delete the vDPA device, stop the daemon.
vduse_blk_teardown() {
	local dev
	if dev=$(vdpa_blkdev "$1"); then
		grep "^$dev " /proc/mounts | awk '{ print $2 }' |
			while read -r m; do umount -l "$m"; done
	fi
	vdpa_exists "$1" && vdpa_del "$1" >/dev/null 2>&1
	[ -n "$(qsd_pid "$1")" ] && qsd_stop "$1" >/dev/null 2>&1
	return 0
}

# fio_result JSON BYTES RC: judge a fio run that wrote its JSON report to
# JSON and exited with RC.  It passes when fio succeeded, no job reports an
# error, and the jobs read back (verified) exactly BYTES; a run that also
# wrote must have written the same amount, so every byte written was checked.
fio_result() {
	python3 - "$@" <<'PYEOF'
import json, sys
path, want, rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    text = open(path).read()
    rep = json.loads(text[text.index('{'):])
except Exception as e:
    print(f"no fio report ({e}); fio exited {rc}")
    sys.exit(1)
jobs = rep.get("jobs", [])
rd = sum(j["read"]["io_bytes"] for j in jobs)
wr = sum(j["write"]["io_bytes"] for j in jobs)
err = [j["error"] for j in jobs if j.get("error")]
print(f"fio exit {rc}; {len(jobs)} jobs wrote {wr} and verified {rd} bytes "
      f"(expected {want}); errors {err}")
ok = rc == 0 and not err and rd == want and wr in (0, want) and want > 0
sys.exit(0 if ok else 1)
PYEOF
}

# fio_verify BYTES FIO-ARGS...: run fio with crc32c verification (fatal on
# the first mismatch, no state files) and judge it with fio_result.
fio_verify() {
	local bytes=$1 json rc
	shift
	json=$(mktemp /tmp/fio-XXXXXX.json)
	(cd /tmp && timeout 600 fio --output-format=json --output="$json" \
		--verify=crc32c --verify_fatal=1 --verify_state_save=0 "$@")
	rc=$?
	fio_result "$json" "$bytes" "$rc"
	rc=$?
	rm -f "$json"
	return $rc
}

# dev_write DEV OFFSET FILE / dev_has DEV OFFSET FILE: write FILE at byte
# OFFSET of the block device DEV with O_DIRECT, in one request, or read it
# back the same way and compare.
dev_write() {
	dd if="$3" of="$1" bs="$(stat -c %s "$3")" count=1 seek="$2" \
		oflag=direct,seek_bytes conv=notrunc status=none
}
dev_has() {
	dd if="$1" bs="$(stat -c %s "$3")" count=1 skip="$2" \
		iflag=direct,skip_bytes status=none | cmp - "$3"
}

# same_bytes FILE1 OFF1 FILE2 OFF2 LEN: LEN bytes at the two offsets match.
same_bytes() {
	cmp -n "$5" "$1" "$3" "$2" "$4"
}

# ---------------------------------------------------------------------------
# Our own daemons (tools/vduse-blk, tools/vduse-net), started like the
# qemu-storage-daemon above: in the background of the suite's own shell,
# pid in /tmp/PROG-NAME.pid, output in /tmp/PROG-NAME.log.

# daemon_start PROG NAME [ARGS...]
daemon_start() {
	local prog=$1 name=$2
	shift 2
	"$TOOLS/$prog" --name "$name" "$@" >>"/tmp/$prog-$name.log" 2>&1 </dev/null &
	echo $! >"/tmp/$prog-$name.pid"
}

daemon_pid() { cat "/tmp/$1-$2.pid" 2>/dev/null; }

# daemon_ready PROG NAME: the daemon runs and holds /dev/vduse/NAME open
# (PROG "qsd" is the qemu-storage-daemon started by qsd_start).
daemon_ready() {
	local pid
	pid=$(daemon_pid "$1" "$2") || return 1
	wait_for 30 daemon_serving "$pid" "$2" || {
		echo "$1 for $2 is not serving it; its log:"
		tail -n 5 "/tmp/$1-$2.log"
		return 1
	}
}

# daemon_stop PROG NAME [SIGNAL]: stop it (SIGTERM by default) and return
# its exit status; SIGKILL after 30 s.
daemon_stop() {
	local pid sig=${3:-TERM} rc
	pid=$(daemon_pid "$1" "$2") || return 0
	kill -"$sig" "$pid" 2>/dev/null
	if ! wait_for 30 proc_gone "$pid"; then
		echo "$1 for $2 ignored SIG$sig; killing it"
		kill -KILL "$pid" 2>/dev/null
		wait_for 10 proc_gone "$pid"
	fi
	{ wait "$pid"; } 2>/dev/null
	rc=$?
	rm -f "/tmp/$1-$2.pid"
	return $rc
}

# daemon_teardown PROG NAME: unmount, vdpa dev del, stop; quietly.
daemon_teardown() {
	local dev
	if dev=$(vdpa_blkdev "$2"); then
		grep "^$dev " /proc/mounts | awk '{ print $2 }' |
			while read -r m; do umount -l "$m"; done
	fi
	vdpa_exists "$2" && vdpa_del "$2" >/dev/null 2>&1
	[ -n "$(daemon_pid "$1" "$2")" ] && daemon_stop "$1" "$2" >/dev/null 2>&1
	return 0
}

# vdpa_netdev NAME: the network interface virtio_net made of the device.
vdpa_netdev() {
	local d
	for d in /sys/bus/vdpa/devices/"$1"/virtio*/net/*; do
		[ -e "$d" ] && { echo "${d##*/}"; return 0; }
	done
	return 1
}
