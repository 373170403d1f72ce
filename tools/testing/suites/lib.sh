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
