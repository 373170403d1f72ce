#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: none
# kernels: 7.3 6.1
# timeout: 1800
#
# Installing with DKMS (dkms.conf), as README.md tells a user to: the
# module sources go to /usr/src/vduse-VERSION, "dkms add", "dkms build" and
# "dkms install" for the running kernel, then modinfo and modprobe find
# the DKMS module rather than Debian's, it creates /dev/vduse/control and
# serves a vduse-blk disk; "dkms remove" gives the stock module back.
#
# make check runs it on the newest and the oldest kernel (6.12 builds
# the same way as 7.3, and a DKMS build in the guest takes minutes).
#
# On a kernel whose vDPA bus is out of tree (Debian's 6.1), the guest has
# loaded the harness's vdpa.ko, virtio_vdpa.ko and vhost_vdpa.ko, and the
# build gets their Module.symvers through KBUILD_EXTRA_SYMBOLS, which
# dkms.conf passes on to kbuild: what README.md tells a user of such a
# kernel to do.
#
# The guest's root is the host's build root, shared with other guests
# that may run at the same time: everything DKMS writes (the module tree,
# /var/lib/dkms, /usr/src) goes to tmpfs that vanishes with this guest.
# The suite still removes what it installed, as a user would.
. "$(dirname "$0")/lib.sh"

KVER=$(uname -r)
VERSION=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' /vduse/dkms.conf)
SRC=/usr/src/vduse-$VERSION
MODDIR=/usr/lib/modules/$KVER
NAME=dkms0
# Where the harness puts the vDPA stack it built for a kernel without one.
VDPA_OWN=/vduse/build/$KVER/vdpa
MOUNTS=()
PRIV=/run/dkms-priv	# /run is the guest's own tmpfs

# A private overlay over a directory DKMS writes to.
overlay() {
	local dir=$1 tag
	tag=$(echo "$dir" | tr / _)
	mkdir -p "$PRIV/$tag/upper" "$PRIV/$tag/work" || return 1
	mount -t overlay overlay -o "lowerdir=$dir,upperdir=$PRIV/$tag/upper,workdir=$PRIV/$tag/work" "$dir" ||
		return 1
	MOUNTS+=("$dir")
}

# DKMS runs depmod over the whole module tree on install and on remove:
# thousands of compressed modules read over 9p under TCG, minutes each.
# The module tree is replaced, in this guest only, by the part the suite
# needs: Debian's vduse.ko and the modules it depends on, the lists of
# built-in modules, and the build and source links to the headers that
# the kernel's headers package put there (the harness installs them).
private_modules() {
	local t=$PRIV/modules line f
	line=$(grep -E '(^|/)vduse\.ko(\.[a-z]+)?:' "$MODDIR/modules.dep")
	mkdir -p "$t" &&
		cp "$MODDIR"/modules.builtin* "$MODDIR"/modules.order "$t/" || return 1
	for f in ${line%%:*} ${line#*:}; do
		mkdir -p "$t/${f%/*}" && cp "$MODDIR/$f" "$t/$f" || return 1
	done
	cp -P "$MODDIR/build" "$MODDIR/source" "$t/" &&
		mount --bind "$t" "$MODDIR" || return 1
	MOUNTS+=("$MODDIR")
	depmod "$KVER"
}

isolate() {
	modprobe overlay && overlay /var/lib/dkms && overlay /usr/src &&
		private_modules
}

cleanup() {
	local i
	daemon_teardown vduse-blk "$NAME"
	is_loaded vduse && rmmod vduse
	# Not isolated: nothing was installed, and nothing may be written.
	[ ${#MOUNTS[@]} -eq 3 ] || return 0
	if dkms status -m vduse 2>/dev/null | grep -q .; then
		dkms remove -m vduse -v "$VERSION" --all >/dev/null 2>&1
		depmod "$KVER"
	fi
	rm -rf /usr/src/vduse-*
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[i]}"
	done
	MOUNTS=()
	rm -rf "$PRIV"
}
NEED_TEARDOWN=cleanup
trap cleanup EXIT

stock_path() { modinfo -n vduse 2>/dev/null; }

check_fails "no vduse module is loaded at start" is_loaded vduse
need "$MODDIR/build leads to the headers of $KVER" test -f "$MODDIR/build/Makefile"
need "dkms.conf names a package version" test -n "$VERSION"
# Asked before the module tree is made private: it keeps no vdpa.ko.
EXTRA=
if ! modinfo -n vdpa >/dev/null 2>&1; then
	EXTRA=$VDPA_OWN/Module.symvers
	need "$KVER has no vDPA bus: the harness's own is loaded" is_loaded vdpa
	need "its Module.symvers is at $EXTRA" test -s "$EXTRA"
fi
need "the module tree, /var/lib/dkms and /usr/src are private to this guest" isolate
# Debian's 6.1 kernels have no vduse.ko of their own.
STOCK=$(stock_path)
if [ -n "$STOCK" ]; then
	check "before DKMS, modinfo vduse is Debian's module ($STOCK)" \
		sh -c "case '$STOCK' in */kernel/drivers/vdpa/vdpa_user/vduse.ko*) ;; *) exit 1 ;; esac"
else
	ok "before DKMS, $KVER has no vduse module of its own"
fi

need "copy the module sources to $SRC" sh -c "mkdir -p '$SRC' &&
	cd /vduse && cp -r Makefile Kconfig dkms.conf *.c *.h include '$SRC/'"
need "dkms add -m vduse -v $VERSION" dkms add -m vduse -v "$VERSION"
t=$SECONDS
# As a user would: "sudo KBUILD_EXTRA_SYMBOLS=... dkms install" (README.md).
need "dkms build for $KVER${EXTRA:+, KBUILD_EXTRA_SYMBOLS=$EXTRA}" \
	env ${EXTRA:+KBUILD_EXTRA_SYMBOLS="$EXTRA"} \
	timeout 900 dkms build -m vduse -v "$VERSION" -k "$KVER"
echo "# dkms build: $((SECONDS - t)) s"
if [ -n "$EXTRA" ]; then
	# kbuild reads the variable from the environment too: the log shows
	# that dkms.conf put it on make's command line, as it says it does.
	check "dkms.conf passed KBUILD_EXTRA_SYMBOLS to make (make.log)" \
		grep -q "^# command: make .* KBUILD_EXTRA_SYMBOLS='$EXTRA' " \
		/var/lib/dkms/vduse/"$VERSION"/"$KVER"/*/log/make.log
fi
t=$SECONDS
need "dkms install for $KVER" dkms install -m vduse -v "$VERSION" -k "$KVER"
echo "# dkms install: $((SECONDS - t)) s"
check "dkms status says installed" \
	sh -c "dkms status -m vduse -v '$VERSION' -k '$KVER' | grep -q ': installed'"

DKMS_KO=$(stock_path)
check "modinfo vduse is now the DKMS module ($DKMS_KO)" \
	sh -c "case '$DKMS_KO' in */updates/dkms/vduse.ko*) ;; *) exit 1 ;; esac"
check "the DKMS module is out of tree, not Debian's" \
	test -z "$(modinfo -F intree vduse 2>/dev/null)"

# An out-of-tree module taints the kernel with O; Debian's does not.
loaded_out_of_tree() { grep -q O /sys/module/vduse/taint; }

need "modprobe vduse" modprobe vduse
check "the loaded vduse is the DKMS module (out of tree)" loaded_out_of_tree
need "/dev/vduse/control appears" wait_for 10 test -c /dev/vduse/control

daemon_start vduse-blk "$NAME" --ram 16M
need "vduse-blk serves $NAME" daemon_ready vduse-blk "$NAME"
need "vdpa dev add $NAME" vdpa_add "$NAME" virtio_vdpa
need "virtio_blk made a disk of it" wait_for 30 vdpa_blkdev "$NAME"
DEV=$(vdpa_blkdev "$NAME")
head -c 1048576 /dev/urandom >/tmp/dkms-data
check "1 MiB written to $DEV reads back the same" \
	sh -c "dd if=/tmp/dkms-data of='$DEV' bs=1M count=1 oflag=direct status=none &&
	dd if='$DEV' bs=1M count=1 iflag=direct status=none | cmp - /tmp/dkms-data"
rm -f /tmp/dkms-data
check "vdpa dev del $NAME" vdpa_del "$NAME"
# In this shell, not inside check: only the parent can wait for it.
daemon_stop vduse-blk "$NAME"
check "vduse-blk exits with status 0 on SIGTERM" test $? -eq 0
check "rmmod vduse" rmmod vduse

t=$SECONDS
check "dkms remove --all" dkms remove -m vduse -v "$VERSION" --all
echo "# dkms remove: $((SECONDS - t)) s"
check "after dkms remove, modinfo vduse is what it was before" \
	test "$(stock_path)" = "$STOCK"
check "dkms status lists no vduse" test -z "$(dkms status -m vduse 2>/dev/null)"
rm -rf /usr/src/vduse-*
if [ -n "$STOCK" ]; then
	check "modprobe vduse loads Debian's module again" modprobe vduse
	check_fails "the loaded vduse is in tree" loaded_out_of_tree
	check "rmmod vduse" rmmod vduse
fi
finish
