#!/bin/bash
# modules: ours stock
# kernels: all
# timeout: 600
# cmdline: init_on_alloc=0 init_on_free=0
# SPDX-License-Identifier: GPL-2.0
#
# Security properties, each a check that can fail:
#  1. the nodes and writable sysfs attributes are root's alone;
#  2. net devices need CAP_NET_ADMIN, block devices do not (with every
#     capability gone, not only CAP_NET_ADMIN as abi_behaviour drops);
#  3. nothing uninitialised reaches the daemon or the driver: config bytes
#     past config_size, request padding, fresh bounce pages, ring pages,
#     padding of ioctl output (vduse_security run);
#  4. a 32-bit daemon gets the same answers as a 64-bit one;
#  5. limits: bounce_size range, max_iotlb_entries, RLIMIT_MEMLOCK on
#     REG_UMEM (in vduse_security run).
# Runs as root in the test guest with the module VM_MODULE loaded.
. "$(dirname "$0")/lib.sh"

SEC=$TOOLS/vduse_security
SEC32=$TOOLS/vduse_security32
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
NOCAPS=(setpriv --inh-caps=-all --bounding-set=-all)
ANS=/tmp/security-answers
NAME=secsh-node

# same DESC WANT CMD...: CMD prints WANT (an errno name).
same() {
	local desc=$1 want=$2 got
	shift 2
	got=$("$@" 2>&1)
	if [ "$got" = "$want" ]; then
		ok "$desc"
	else
		fail "$desc"
		echo "#   expected $want, got: $got"
	fi
}

# says WANT CMD...: CMD prints WANT (for need and check).
says() {
	local want=$1 got
	shift
	got=$("$@" 2>&1)
	[ "$got" = "$want" ] || { echo "expected $want, got: $got"; return 1; }
}

# run_sec TAG CMD...: pass a vduse_security run's TAP lines through and
# keep its answer lines in $ANS.TAG.
run_sec() {
	local tag=$1 out line rc before=$_failures
	shift
	out=$(mktemp)
	"$@" >"$out" 2>&1
	rc=$?
	: >"$ANS.$tag"
	while IFS= read -r line; do
		case $line in
		"ok - "*) echo "$line" ;;
		"not ok - "*) echo "$line"; _failures=$((_failures + 1)) ;;
		"= "*) echo "${line#= }" >>"$ANS.$tag" ;;
		"#"*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done <"$out"
	rm -f "$out"
	if [ $rc -ne 0 ] && [ $_failures -eq "$before" ]; then
		fail "vduse_security $tag exited with status $rc"
	fi
}

cleanup() {
	"$SEC" destroy "$NAME" >/dev/null 2>&1
	"$SEC" destroy secsh-capblk >/dev/null 2>&1
	"$SEC" destroy secsh-capnet >/dev/null 2>&1
	return 0
}
NEED_TEARDOWN=cleanup

need "the security test programs are built" test -x "$SEC" -a -x "$SEC32"
need "vduse is loaded" test -c /dev/vduse/control
modprobe -a virtio_vdpa vhost_vdpa virtio_net 2>/dev/null
cleanup
echo "# modules loaded at $SECONDS s"
# Debian turns init_on_alloc on and the harness init_on_free: either one
# zeroes every page whatever the module does, and the checks of fresh
# bounce and ring pages below could not fail.  The header turns both off.
autoinit=$(dmesg | grep -o 'mem auto-init:.*' | tail -n 1)
echo "# ${autoinit:-no mem auto-init line in the kernel log}"
check "pages are not zeroed by the kernel on allocation or free (fresh-memory checks can fail)" \
	grep -q 'heap alloc:off, heap free:off' <<<"$autoinit"

# --- 1. root only ----------------------------------------------------------
check "/dev/vduse/control is mode 0600 root:root" \
	test "$(stat -c '%a %U:%G' /dev/vduse/control)" = "600 root:root"
need "create the block device $NAME for the node checks" says success "$SEC" create blk "$NAME"
wait_for 5 test -c "/dev/vduse/$NAME"
check "/dev/vduse/$NAME is mode 0600 root:root" \
	test "$(stat -c '%a %U:%G' "/dev/vduse/$NAME")" = "600 root:root"
same "uid 65534 cannot open /dev/vduse/control (EACCES)" EACCES \
	"${NOBODY[@]}" "$SEC" open /dev/vduse/control
same "uid 65534 cannot open /dev/vduse/$NAME (EACCES)" EACCES \
	"${NOBODY[@]}" "$SEC" open "/dev/vduse/$NAME"
same "uid 65534 cannot create a device through the control node" EACCES \
	"${NOBODY[@]}" "$SEC" create blk secsh-nobody

# Every writable attribute of the control and the device's class
# directories (vqN/ included) is root's and writable by root alone.
sysfs_writable() {
	local d f bad=0 n=0 mode
	for d in "$@"; do
		# one stat for all: every exec costs under TCG
		while read -r mode f; do
			n=$((n + 1))
			case $mode in
			[0-7][0145][0145]:root:root) ;;
			*) echo "$f: $mode"; bad=1 ;;
			esac
		done < <(find "$d"/ -type f -perm /222 -exec stat -c '%a:%U:%G %n' {} +)
	done
	echo "$n writable attributes"
	[ $n -gt 0 ] && [ $bad -eq 0 ]
}
check "writable sysfs attributes of vduse devices are root-only writable" \
	sysfs_writable /sys/class/vduse/control "/sys/class/vduse/$NAME"
check "the module parameter max_iotlb_entries is read-only (0444)" \
	test "$(stat -c %a /sys/module/vduse/parameters/max_iotlb_entries)" = 444
same "uid 65534 cannot write msg_timeout (EACCES)" EACCES \
	"${NOBODY[@]}" "$SEC" sysfs-write "/sys/class/vduse/$NAME/msg_timeout" 1
same "uid 65534 cannot write bounce_size (EACCES)" EACCES \
	"${NOBODY[@]}" "$SEC" sysfs-write "/sys/class/vduse/$NAME/bounce_size" 1048576
same "uid 65534 cannot write vq0/irq_cb_affinity (EACCES)" EACCES \
	"${NOBODY[@]}" "$SEC" sysfs-write "/sys/class/vduse/$NAME/vq0/irq_cb_affinity" 1

echo "# root-only checks done at $SECONDS s"

# --- 5. bounce_size range --------------------------------------------------
BS=/sys/class/vduse/$NAME/bounce_size
same "bounce_size refuses 1 MiB - 1 (EINVAL)" EINVAL "$SEC" sysfs-write "$BS" 1048575
same "bounce_size refuses 1 GiB + 1 (EINVAL)" EINVAL "$SEC" sysfs-write "$BS" 1073741825
# 2^32 + 1 MiB would be 1 MiB if truncated to 32 bits.
check "bounce_size refuses 2^32 + 1 MiB (EINVAL or ERANGE, not truncated)" \
	sh -c "\"$SEC\" sysfs-write $BS 4296015872 | grep -Ex 'EINVAL|ERANGE' &&
		test \"\$(cat $BS)\" = 67108864"
same "bounce_size accepts 1 MiB" success "$SEC" sysfs-write "$BS" 1048576
same "bounce_size accepts 1 GiB" success "$SEC" sysfs-write "$BS" 1073741824
check "bounce_size reads back 1 GiB" test "$(cat "$BS")" = 1073741824
same "destroy $NAME" success "$SEC" destroy "$NAME"

# --- 2. capabilities -------------------------------------------------------
check "setpriv gives a root process with no capabilities" \
	sh -c "${NOCAPS[*]} grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status"
same "root without capabilities cannot create a net device (EPERM)" EPERM \
	"${NOCAPS[@]}" "$SEC" create net secsh-capnet
same "root without capabilities can create a block device" success \
	"${NOCAPS[@]}" "$SEC" create blk secsh-capblk
same "destroy the block device made without capabilities" success \
	"$SEC" destroy secsh-capblk
cleanup

echo "# time so far: $SECONDS s"

# --- 3, 5. C checks, 4. the same answers for 32-bit ------------------------
run_sec 64 "$SEC" run
run_sec 32 "$SEC32" run
kv=$(uname -r | awk -F. '{ print $1 * 100 + $2 }')
no_compat=0
[ "${VM_MODULE:-ours}" = stock ] && [ "$kv" -lt 702 ] && no_compat=1
cp "$ANS.64" "$ANS.64.all"
if [ $no_compat -eq 1 ]; then
	# abi-facts 1.3: before 7.2 stock has no i386 encoding of these two.
	echo "# skip - 32-bit answers for IOTLB_GET_FD/VQ_GET_INFO and the attached device: stock $(uname -r) has no compat handler"
	sed -i '/^vq_get_info\|^iotlb_get_fd\|^iotlb_get_info\|^reg_umem\|^dereg_umem/d' "$ANS.64" "$ANS.32"
fi
echo "# $(wc -l <"$ANS.64") answers from the 64-bit run, $(wc -l <"$ANS.32") from the 32-bit run"
check "a 32-bit daemon gets the same answers as a 64-bit one" \
	diff -u "$ANS.64" "$ANS.32"
if [ $no_compat -eq 0 ]; then
	check "the 32-bit comparison covered the attached device" \
		grep -q 'after DRIVER_OK' "$ANS.32"
fi
# For comparing modules across runs.
sed 's/^/# answer: /' "$ANS.64.all"
echo "# time so far: $SECONDS s"

# --- 5. max_iotlb_entries ----------------------------------------------------
reload() {
	unload_vduse || return 1
	case ${VM_MODULE:-ours} in
	ours) insmod "$OURS_KO" "$@" ;;
	stock) modprobe vduse "$@" ;;
	esac
}
if need "reload vduse with max_iotlb_entries=8" reload max_iotlb_entries=8; then
	check "max_iotlb_entries reads 8" \
		test "$(cat /sys/module/vduse/parameters/max_iotlb_entries)" = 8
	run_sec limit "$SEC" iotlb-limit 8
fi
need "reload vduse with default parameters" reload
check "max_iotlb_entries is back to 2048" \
	test "$(cat /sys/module/vduse/parameters/max_iotlb_entries)" = 2048
rm -f "$ANS".*
echo "# suite time: $SECONDS s"
finish
