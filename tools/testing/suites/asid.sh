#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours stock
# kernels: all
#
# Virtqueue groups and address spaces (abi-facts.md 2.7, 2.8) driven from
# vhost-vdpa: tools/testing/vhost/vhost_asid creates a VDUSE device, binds
# it to vhost_vdpa and checks both ends.  The API version 0 run (one group,
# one address space) applies everywhere; the API version 1 run (two groups,
# two address spaces) applies to 7.x kernels, and elsewhere only when the
# module reports API version 1 (the stock module before 7.0 has none).
. "$(dirname "$0")/lib.sh"

CTL=$TOOLS/vduse_ctl

teardown() {
	local n
	for n in asid-v0 asid-v1; do
		[ -e "/sys/bus/vdpa/devices/$n" ] && vdpa dev del "$n" 2>/dev/null
		[ -e "/dev/vduse/$n" ] && "$CTL" destroy "$n" >/dev/null 2>&1
	done
	echo 1 >/sys/bus/vdpa/drivers_autoprobe
}
trap teardown EXIT

# run_prog CMD...: pass the program's TAP through and count its failures.
run_prog() {
	local out rc bad
	out=$(mktemp /tmp/asid-XXXXXX)
	"$@" >"$out" 2>&1
	rc=$?
	cat "$out"
	bad=$(grep -cE '^(not ok|Bail out!)' "$out")
	_failures=$((_failures + bad))
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		fail "$* exited with status $rc without a failing check"
	fi
	if ! grep -q '^ok ' "$out"; then
		fail "$* reported no check"
	fi
	rm -f "$out"
}

need "vduse is loaded" is_loaded vduse
check "vhost_vdpa is loaded" is_loaded vhost_vdpa

run_prog "$TOOLS/vhost_asid" --v0
check "asid-v0 is gone" test ! -e /dev/vduse/asid-v0

api=$("$CTL" api)
echo "# GET_API_VERSION on a fresh control file: $api"
case ${VM_SERIES:-7.3} in
7.*)	v1=1 ;;
*)	[ "$api" = 1 ] && v1=1 || v1=0 ;;
esac
if [ $v1 -eq 1 ]; then
	check "GET_API_VERSION reports 1" test "$api" = 1
	run_prog "$TOOLS/vhost_asid"
	check "asid-v1 is gone" test ! -e /dev/vduse/asid-v1
else
	echo "# API version 1 is not offered on ${VM_SERIES}: no v1 run"
fi
check "vDPA driver autoprobe is back on" \
	test "$(cat /sys/bus/vdpa/drivers_autoprobe)" = 1
finish
