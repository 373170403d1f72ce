#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: none
# kernels: all
#
# The module itself: it loads, creates /dev/vduse/control and the "vduse"
# vDPA management device, unloads cleanly, refuses to load twice or beside
# the stock module, and survives repeated load/unload.
. "$(dirname "$0")/lib.sh"

check "our vduse.ko is built for $(uname -r)" test -f "$OURS_KO"
check "our module is out of tree (not the stock file)" \
	test -z "$(modinfo -F intree "$OURS_KO" 2>/dev/null)"
check_fails "no vduse module is loaded at start" is_loaded vduse

check "insmod vduse.ko" load_ours
check "/dev/vduse/control is a character device" test -c /dev/vduse/control
check "/dev/vduse/control is root-only (0600)" \
	sh -c '[ "$(stat -c %a /dev/vduse/control)" = 600 ]'
check "/sys/class/vduse/control exists" test -d /sys/class/vduse/control
check "'vduse' is in /proc/devices" grep -qw vduse /proc/devices
check "vdpa mgmtdev show lists vduse" sh -c 'vdpa mgmtdev show | grep -q "^vduse:"'
ours_show=$(vdpa -j mgmtdev show 2>&1)
check "module parameter max_iotlb_entries is 2048" \
	sh -c '[ "$(cat /sys/module/vduse/parameters/max_iotlb_entries)" = 2048 ]'
check "module has no users when idle" test "$(mod_refcnt vduse)" = 0
check_fails "loading our module a second time fails" load_ours
check "the first instance is still loaded after that" is_loaded vduse
check "rmmod vduse" unload_vduse
check_fails "the module is gone after rmmod" is_loaded vduse
check_fails "/dev/vduse/control is gone after rmmod" test -e /dev/vduse/control
check_fails "/sys/class/vduse is gone after rmmod" test -e /sys/class/vduse
check_fails "mgmtdev vduse is gone after rmmod" sh -c 'vdpa mgmtdev show | grep -q "^vduse:"'

# The stock module is the oracle for what the management device reports.
if modinfo vduse >/dev/null 2>&1; then
	check "stock vduse.ko loads" load_stock
	stock_show=$(vdpa -j mgmtdev show 2>&1)
	check_fails "our module refuses to load beside the stock one" load_ours
	check "the stock module still works after that" test -c /dev/vduse/control
	check "rmmod the stock module" unload_vduse
	check "vdpa mgmtdev show: ours reports what the stock module reports" \
		test "$ours_show" = "$stock_show"
	if [ "$ours_show" != "$stock_show" ]; then
		echo "#   ours:  $ours_show"
		echo "#   stock: $stock_show"
	fi
else
	# Debian's 6.1 kernels have no vDPA stack, hence no stock module.
	echo "# skip - comparison with the stock module: kernel $(uname -r) ships no vduse.ko"
fi

n=0
for i in $(seq 20); do
	load_ours && test -c /dev/vduse/control && unload_vduse && n=$((n + 1))
done
check "20 load/unload cycles" test $n -eq 20
check_fails "nothing is left loaded" is_loaded vduse
finish
