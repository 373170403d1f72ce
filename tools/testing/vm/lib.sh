# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers of the VM test harness: host packages, the Debian guest
# root (which is also the build root), test kernels, module and tool builds.
# Sourced by tools/testing/vm/run, tools/testing/check and friends.
#
# Everything downloaded or generated lives under $VDUSE_CACHE (default
# /var/cache/vduse-test), outside the repository, and is reused by later
# runs.  Build products of the repository go to $REPO/build.

PATH=$PATH:/usr/sbin:/sbin
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
VDUSE_CACHE=${VDUSE_CACHE:-/var/cache/vduse-test}
ROOT=$VDUSE_CACHE/root
# Debian's 6.1 kernels are bookworm's: a second, smaller root holds their
# headers, kbuild and gcc-12, and their source for the vDPA stack.
OLDROOT=$VDUSE_CACHE/root-bookworm
MIRROR=${VDUSE_MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${VDUSE_SECMIRROR:-http://deb.debian.org/debian-security}
BUILD=$REPO/build

# Bump when the package list changes: the root is then upgraded in place.
ROOT_PACKAGES="qemu-utils qemu-block-extra libblkio1 fio iproute2 dpdk dpdk-dev
kmod e2fsprogs util-linux procps gcc make binutils libc6-dev gcc-multilib
sparse iperf3 iputils-ping liburing-dev libblkio-dev busybox strace python3
dkms xz-utils zstd"

log() { printf '[vm] %s\n' "$*" >&2; }
die() { printf '[vm] error: %s\n' "$*" >&2; exit 1; }

# Serialise set-up work between concurrent harness runs.
with_lock() {
	mkdir -p "$VDUSE_CACHE"
	(
		flock 9
		"$@"
	) 9>"$VDUSE_CACHE/.lock"
}

host_setup() {
	local need=() p
	for p in qemu-system-x86:qemu-system-x86_64 debootstrap:debootstrap \
		 busybox-static:busybox cpio:cpio xz-utils:xz zstd:zstd \
		 util-linux:unshare; do
		command -v "${p#*:}" >/dev/null 2>&1 || need+=("${p%%:*}")
	done
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] ||
		need+=(debian-archive-keyring)
	[ ${#need[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing host packages (${need[*]}); run as root"
	log "installing host packages: ${need[*]}"
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null ||
		die "apt-get install ${need[*]} failed"
}

# in_chroot DIR CMD...: run a command inside a Debian tree, with /proc
# mounted in a private mount namespace so nothing is left mounted when it
# ends.
in_chroot() {
	local dir=$1
	shift
	unshare -m -- sh -c 'mount -t proc proc "$0/proc" && mount -t tmpfs tmp "$0/dev/shm" 2>/dev/null; exec chroot "$0" "$@"' "$dir" \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# Run a command inside the guest root.
in_root() { in_chroot "$ROOT" "$@"; }

root_apt_install() {
	in_root apt-get install -y -q --no-install-recommends "$@" \
		>>"$VDUSE_CACHE/apt.log" 2>&1 ||
		die "apt-get install $* in the guest root failed (see $VDUSE_CACHE/apt.log)"
}

_root_setup() {
	local stamp=$ROOT/.vduse-root pkgs
	pkgs=$(echo $ROOT_PACKAGES)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkgs" ]; then
		return 0
	fi
	if [ ! -f "$ROOT/.debootstrap-done" ]; then
		log "building the Debian trixie guest root in $ROOT (about 2 minutes)"
		rm -rf "$ROOT.tmp"
		debootstrap --variant=minbase \
			--include=ca-certificates,kmod,iproute2,procps,util-linux \
			trixie "$ROOT.tmp" "$MIRROR" >"$VDUSE_CACHE/debootstrap.log" 2>&1 ||
			die "debootstrap failed (see $VDUSE_CACHE/debootstrap.log)"
		cat >"$ROOT.tmp/etc/apt/sources.list" <<-EOF
		deb $MIRROR trixie main
		deb $MIRROR trixie-updates main
		deb $SECMIRROR trixie-security main
		deb $MIRROR trixie-backports main
		EOF
		mkdir -p "$ROOT.tmp/vduse"
		echo vduse-guest >"$ROOT.tmp/etc/hostname"
		touch "$ROOT.tmp/.debootstrap-done"
		mv "$ROOT.tmp" "$ROOT"
	fi
	log "installing the test clients into the guest root"
	in_root apt-get update -q >>"$VDUSE_CACHE/apt.log" 2>&1 ||
		die "apt-get update in the guest root failed"
	# shellcheck disable=SC2086
	root_apt_install $pkgs
	echo "$pkgs" >"$stamp"
}
root_setup() { with_lock _root_setup; }

# The bookworm build root, for Debian's 6.1 kernels only.  Minimal: a
# compiler and make; the kernel headers come with kernel_fetch.
OLDROOT_PACKAGES="gcc make binutils libc6-dev xz-utils kmod sparse"

_oldroot_setup() {
	local stamp=$OLDROOT/.vduse-root pkgs
	pkgs=$(echo $OLDROOT_PACKAGES)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkgs" ]; then
		return 0
	fi
	if [ ! -f "$OLDROOT/.debootstrap-done" ]; then
		log "building the Debian bookworm build root in $OLDROOT (about 2 minutes)"
		rm -rf "$OLDROOT.tmp"
		debootstrap --variant=minbase --include=ca-certificates \
			bookworm "$OLDROOT.tmp" "$MIRROR" >"$VDUSE_CACHE/debootstrap-bookworm.log" 2>&1 ||
			die "debootstrap bookworm failed (see $VDUSE_CACHE/debootstrap-bookworm.log)"
		cat >"$OLDROOT.tmp/etc/apt/sources.list" <<-EOF
		deb $MIRROR bookworm main
		deb $MIRROR bookworm-updates main
		deb $SECMIRROR bookworm-security main
		EOF
		touch "$OLDROOT.tmp/.debootstrap-done"
		mv "$OLDROOT.tmp" "$OLDROOT"
	fi
	log "installing the compiler into the bookworm build root"
	in_chroot "$OLDROOT" apt-get update -q >>"$VDUSE_CACHE/apt.log" 2>&1 ||
		die "apt-get update in the bookworm root failed"
	oldroot_apt_install $pkgs
	echo "$pkgs" >"$stamp"
}
oldroot_setup() { with_lock _oldroot_setup; }

oldroot_apt_install() {
	in_chroot "$OLDROOT" apt-get install -y -q --no-install-recommends "$@" \
		>>"$VDUSE_CACHE/apt.log" 2>&1 ||
		die "apt-get install $* in the bookworm root failed (see $VDUSE_CACHE/apt.log)"
}

# Newest Debian kernel of a series, as its package version string
# (7.3.4+deb13-amd64).  7.3 comes from trixie-backports, 6.12 from trixie,
# 6.1 from bookworm (looked up in the bookworm build root).
kernel_resolve() {
	local series=$1 cache ver
	cache=$VDUSE_CACHE/kernels/resolved-$series
	# Resolve once per day; offline runs reuse the last answer.
	if [ -f "$cache" ] && [ -z "$(find "$cache" -mmin +1440)" ]; then
		cat "$cache"
		return 0
	fi
	case $series in
	7.3|6.12)
		ver=$(in_root apt-cache search --names-only \
			"^linux-headers-${series//./\\.}\\.[0-9]+\\+deb[0-9.]+-amd64\$" 2>/dev/null |
			awk '{print $1}' | sed 's/^linux-headers-//' | sort -V | tail -n 1)
		;;
	6.1)
		oldroot_setup
		ver=$(in_chroot "$OLDROOT" apt-cache search --names-only \
			'^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
			awk '{print $1}' | sed 's/^linux-image-//' | sort -V | tail -n 1)
		;;
	*)	die "unknown kernel series '$series' (7.3, 6.12 or 6.1)" ;;
	esac
	if [ -z "$ver" ]; then
		[ -f "$cache" ] && { cat "$cache"; return 0; }
		die "no Debian kernel package found for $series"
	fi
	mkdir -p "$VDUSE_CACHE/kernels"
	echo "$ver" >"$cache"
	echo "$ver"
}

# Download, unpack and install a test kernel: vmlinuz and modules under
# $VDUSE_CACHE/kernels/VER, the module tree and headers in the root (for
# 6.1: also headers in the bookworm root, and the vDPA stack it lacks).
_kernel_fetch() {
	local series=$1 ver=$2 kdir=$VDUSE_CACHE/kernels/$2
	[ -f "$kdir/.done" ] || _kernel_image "$series" "$ver"
	# Checked on every fetch, not only when the image is new: a root made
	# before the headers were installed this way gets them now.
	_kernel_headers "$series" "$ver"
	[ "$series" != 6.1 ] || _vdpa_stack_build "$ver"
}

_kernel_image() {
	local series=$1 ver=$2 kdir=$VDUSE_CACHE/kernels/$2 debs d
	log "fetching Debian kernel $ver"
	debs=$VDUSE_CACHE/debs
	mkdir -p "$debs" "$ROOT/var/tmp/debs"
	rm -rf "$kdir"
	mkdir -p "$kdir"
	case $series in
	6.1)
		_oldroot_setup
		_oldroot_download "linux-image-$ver"
		dpkg -x "$debs"/linux-image-"${ver}"_*.deb "$kdir"
		;;
	*)
		rm -f "$ROOT"/var/tmp/debs/*.deb
		if in_root apt-cache show "linux-binary-$ver" >/dev/null 2>&1; then
			in_root sh -c "cd /var/tmp/debs && apt-get download -q linux-binary-$ver linux-modules-$ver" >/dev/null ||
				die "cannot download kernel $ver"
		else
			in_root sh -c "cd /var/tmp/debs && apt-get download -q linux-image-$ver" >/dev/null ||
				die "cannot download kernel $ver"
		fi
		for d in "$ROOT"/var/tmp/debs/*.deb; do
			dpkg -x "$d" "$kdir"
			mv "$d" "$debs/"
		done
		;;
	esac
	local mods=$kdir/lib/modules/$ver
	[ -d "$mods" ] || mods=$kdir/usr/lib/modules/$ver
	[ -d "$mods" ] || die "no modules in the packages of $ver"
	for d in "$kdir/boot/vmlinuz-$ver" "$mods/vmlinuz"; do
		[ -f "$d" ] && cp "$d" "$kdir/vmlinuz"
	done
	[ -f "$kdir/vmlinuz" ] || die "no vmlinuz in the packages of $ver"
	mkdir -p "$ROOT/usr/lib/modules/$ver"
	cp -a "$mods/." "$ROOT/usr/lib/modules/$ver/"
	in_root depmod "$ver" || die "depmod $ver in the root failed"
	_initramfs "$ver" "$ROOT/usr/lib/modules/$ver"
	touch "$kdir/.done"
}
kernel_fetch() {
	with_lock _kernel_fetch "$@" || return 1
	_vdpa_stack_install "$2"
}

# True when the root's /usr/lib/modules/VER has the build and source links
# a Debian kernel's headers package makes, and they lead to the headers.
# Tested inside the root: bookworm's links are absolute.
_root_has_headers() {
	in_root sh -c 'test -f "$0/build/Makefile" && test -d "$0/source"' \
		"/usr/lib/modules/$1"
}

# The headers of kernel VER in the guest root, installed with apt as on a
# Debian machine, so that DKMS and "make" in the guest find them through
# /usr/lib/modules/VER/build.  Trixie's archive has them for 7.3 and 6.12.
# Debian's 6.1 headers are bookworm packages: the same .debs the bookworm
# root builds with (linux-headers-VER, its -common part, linux-kbuild-6.1,
# linux-compiler-gcc-12-x86), installed into trixie.  That works: trixie's
# libssl3t64 and libelf1t64 provide the libssl3 and libelf1 their kbuild
# tools link against, and its gcc-12 is the compiler the 6.1 headers name
# (.kernelvariables sets CC=gcc-12; linux-compiler-gcc-12-x86 pulls it in).
_kernel_headers() {
	local series=$1 ver=$2 debs=$VDUSE_CACHE/debs pkgver p tmp pkgs=()
	_root_has_headers "$ver" && return 0
	log "installing the headers of $ver into the guest root"
	case $series in
	6.1)
		_oldroot_setup
		pkgver=$(_oldroot_pkgver "$ver") || exit 1
		tmp=/var/tmp/headers-debs
		rm -rf "$ROOT$tmp"
		mkdir -p "$ROOT$tmp"
		for p in "linux-headers-$ver" "linux-headers-${ver%-amd64}-common" \
			 linux-kbuild-6.1 linux-compiler-gcc-12-x86; do
			_oldroot_download "$p=$pkgver"
			cp "$debs/${p}_${pkgver}_"*.deb "$ROOT$tmp/"
		done
		pkgs=("$ROOT$tmp"/*.deb)
		# --reinstall: the packages may be there with their links lost.
		root_apt_install --reinstall "${pkgs[@]#"$ROOT"}"
		rm -rf "$ROOT$tmp"
		;;
	*)
		root_apt_install --reinstall "linux-headers-$ver"
		;;
	esac
	_root_has_headers "$ver" ||
		die "/usr/lib/modules/$ver/build in the guest root does not lead to the headers of $ver"
}

# _oldroot_pkgver VER: the Debian version of the 6.1 kernel package VER
# (6.1.0-56-amd64 -> 6.1.192-2), from its image in the deb cache: its
# headers, kbuild and source must be exactly that version.
_oldroot_pkgver() {
	local debs=$VDUSE_CACHE/debs
	_oldroot_download "linux-image-$1"
	dpkg-deb -f "$(ls "$debs"/linux-image-"$1"_*.deb | head -n 1)" Version ||
		die "no linux-image-$1 package in $debs"
}

# _oldroot_download PKG[=VERSION]: fetch a bookworm package into the deb
# cache, unless it is there already.
_oldroot_download() {
	local pkg=${1%%=*} debs=$VDUSE_CACHE/debs
	case $1 in
	*=*)	ls "$debs/${pkg}_${1#*=}_"*.deb >/dev/null 2>&1 && return 0 ;;
	*)	ls "$debs/${pkg}_"*.deb >/dev/null 2>&1 && return 0 ;;
	esac
	mkdir -p "$debs" "$OLDROOT/var/tmp/debs"
	rm -f "$OLDROOT"/var/tmp/debs/*.deb
	in_chroot "$OLDROOT" sh -c "cd /var/tmp/debs && apt-get download -q '$1'" \
		>>"$VDUSE_CACHE/apt.log" 2>&1 ||
		die "cannot download $1 (see $VDUSE_CACHE/apt.log)"
	mv "$OLDROOT"/var/tmp/debs/*.deb "$debs/"
}

# The vDPA stack of a 6.1 kernel.  Debian enabled the vDPA bus in 6.6, so
# its 6.1 kernels have no vdpa.ko, virtio_vdpa.ko or vhost_vdpa.ko (vhost,
# vhost_iotlb and irqbypass are there).  Build the three from Debian's
# own source of that kernel, out of tree against its headers, in the
# bookworm root.  Kept in $VDUSE_CACHE/kernels/VER/vdpa/ with their
# Module.symvers, which the vduse.ko build for that kernel links against.
VDPA_STACK_FILES="drivers/vdpa/vdpa.c drivers/virtio/virtio_vdpa.c
drivers/vhost/vdpa.c drivers/vhost/vhost.h"

_vdpa_stack_build() {
	local ver=$1 out=$VDUSE_CACHE/kernels/$1/vdpa src=/var/tmp/vdpa-stack/$1
	local debs=$VDUSE_CACHE/debs pkgver tarball f
	[ -f "$out/.done" ] && return 0
	log "building the vDPA stack Debian's $ver lacks"
	_oldroot_setup
	# The source of exactly the kernel that boots: the image's version.
	pkgver=$(_oldroot_pkgver "$ver") || exit 1
	oldroot_apt_install "linux-headers-$ver=$pkgver"
	_oldroot_download "linux-source-6.1=$pkgver"
	rm -rf "$OLDROOT$src" "$out"
	mkdir -p "$OLDROOT$src/tree" "$out"
	tarball=./usr/src/linux-source-6.1.tar.xz
	# shellcheck disable=SC2086
	dpkg-deb --fsys-tarfile "$debs/linux-source-6.1_${pkgver}_all.deb" |
		tar -xO "$tarball" |
		tar -xJ -C "$OLDROOT$src/tree" --strip-components=1 \
			$(for f in $VDPA_STACK_FILES; do echo "linux-source-6.1/$f"; done) ||
		die "cannot unpack the vDPA sources from linux-source-6.1 $pkgver"
	cp "$OLDROOT$src/tree/drivers/vdpa/vdpa.c" "$OLDROOT$src/vdpa.c"
	cp "$OLDROOT$src/tree/drivers/virtio/virtio_vdpa.c" "$OLDROOT$src/virtio_vdpa.c"
	cp "$OLDROOT$src/tree/drivers/vhost/vdpa.c" "$OLDROOT$src/vhost-vdpa.c"
	cp "$OLDROOT$src/tree/drivers/vhost/vhost.h" "$OLDROOT$src/vhost.h"
	cat >"$OLDROOT$src/Kbuild" <<-EOF
	# The vDPA bus (CONFIG_VDPA), its virtio driver (CONFIG_VIRTIO_VDPA)
	# and its vhost driver (CONFIG_VHOST_VDPA), as in drivers/*/Makefile.
	obj-m := vdpa.o virtio_vdpa.o vhost_vdpa.o
	vhost_vdpa-y := vhost-vdpa.o
	EOF
	in_chroot "$OLDROOT" make -C "/usr/src/linux-headers-$ver" M="$src" \
		modules >"$out/build.log" 2>&1 ||
		{ cat "$out/build.log" >&2; die "building the vDPA stack for $ver failed"; }
	cp "$OLDROOT$src"/*.ko "$OLDROOT$src/Module.symvers" "$out/"
	echo "$pkgver" >"$out/.done"
}

# Put a kernel's own vDPA stack, if it needed one, where the guest loads it,
# with its Module.symvers: a module built in the guest (the DKMS suite)
# links against it, as one built on the host does.
_vdpa_stack_install() {
	local ver=$1 from=$VDUSE_CACHE/kernels/$1/vdpa f
	[ -f "$from/.done" ] || return 0
	mkdir -p "$BUILD/$ver/vdpa"
	for f in vdpa.ko virtio_vdpa.ko vhost_vdpa.ko Module.symvers; do
		cmp -s "$from/$f" "$BUILD/$ver/vdpa/$f" && continue
		# A guest may be loading the old file: replace, never rewrite.
		cp "$from/$f" "$BUILD/$ver/vdpa/$f.tmp" &&
			mv "$BUILD/$ver/vdpa/$f.tmp" "$BUILD/$ver/vdpa/$f"
	done
}

# Paths of a module and everything it depends on, dependencies first.
_mod_closure() {
	local mods=$1 name=$2 line path deps d
	line=$(grep -E "(^|/)${name}\\.ko(\\.[a-z]+)?:" "$mods/modules.dep") || return 0
	path=${line%%:*}
	deps=${line#*:}
	for d in $deps; do
		_mod_closure "$mods" "$(basename "${d%%.ko*}")"
	done
	echo "$path"
}

# A tiny busybox initramfs that mounts the root over 9p and switches to it.
_initramfs() {
	local ver=$1 mods=$2 ir f out i=0
	ir=$(mktemp -d)
	mkdir -p "$ir"/{bin,dev,proc,sys,newroot,lib}
	cp "$(command -v busybox)" "$ir/bin/busybox"
	for f in $(for m in virtio_pci netfs 9pnet 9pnet_virtio 9p; do _mod_closure "$mods" "$m"; done | awk '!seen[$0]++'); do
		i=$((i + 1))
		out=$ir/lib/$(printf '%02d' $i)-$(basename "${f%%.ko*}").ko
		case $f in
		*.xz)	xz -dc "$mods/$f" >"$out" ;;
		*.zst)	zstd -qdc "$mods/$f" >"$out" ;;
		*.gz)	gzip -dc "$mods/$f" >"$out" ;;
		*)	cp "$mods/$f" "$out" ;;
		esac
	done
	cp "$REPO/tools/testing/vm/initramfs-init" "$ir/init"
	chmod +x "$ir/init"
	(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) \
		>"$VDUSE_CACHE/kernels/$ver/initramfs.gz"
	rm -rf "$ir"
}

# The root that builds modules for kernel VER: the bookworm one for
# Debian's 6.1 kernels (gcc-12, their kbuild), the guest root otherwise.
build_root() {
	case $1 in
	6.1.*)	echo "$OLDROOT" ;;
	*)	echo "$ROOT" ;;
	esac
}

# Build vduse.ko for kernel VER inside its build root; result in build/VER/.
# module_sync FROM TO: make the module's sources (top-level Makefile,
# Kconfig, *.c, *.h and include/) exist with the same content under TO,
# touching only those that differ.
module_sync() {
	local from=$1 to=$2 f
	(cd "$from" && find Makefile Kconfig ./*.c ./*.h include -type f) |
		while IFS= read -r f; do
			cmp -s "$from/$f" "$to/$f" && continue
			mkdir -p "$(dirname "$to/$f")" && cp "$from/$f" "$to/$f"
		done
}

module_build() {
	local ver=$1 src out=$BUILD/$1 broot extra=
	# One build directory per checkout: two checkouts building at the
	# same time must not mix their sources.
	src=/var/tmp/vduse-build/$(printf %s "$REPO" | md5sum | cut -c1-8)/$1
	broot=$(build_root "$ver")
	mkdir -p "$broot$src" "$out"
	# Copy what differs, with a new mtime, so that kbuild rebuilds it
	# and only it; by content, since a checkout's files can carry any
	# timestamps (a fresh clone's are all new).
	module_sync "$REPO" "$broot$src"
	# A kernel without a vDPA stack: link against the one built for it.
	if [ -f "$VDUSE_CACHE/kernels/$ver/vdpa/.done" ]; then
		cp "$VDUSE_CACHE/kernels/$ver/vdpa/Module.symvers" "$broot$src/vdpa.symvers"
		extra=KBUILD_EXTRA_SYMBOLS=$src/vdpa.symvers
	fi
	in_chroot "$broot" make -s -C "/usr/src/linux-headers-$ver" M="$src" \
		CONFIG_VDPA_USER=m $extra ${VDUSE_KBUILD_FLAGS:-} modules >"$out/build.log" 2>&1
	local rc=$?
	cat "$out/build.log" >&2
	[ $rc -eq 0 ] || { log "module build for $ver failed"; return 1; }
	cp "$broot$src/vduse.ko" "$out/vduse.ko"
}

# Build the userspace tools and test programs (tools/Makefile) in the root,
# so they link against the guest's libraries.
tools_build() {
	[ -f "$REPO/tools/Makefile" ] || return 0
	mkdir -p "$ROOT/vduse"
	unshare -m -- sh -c 'mount --bind "$0" "$1/vduse" && mount -t proc proc "$1/proc" && exec chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root make -s -C /vduse/tools O=/vduse/build/tools' "$REPO" "$ROOT" >&2 ||
		{ log "tools build failed"; return 1; }
}

# KVM when it works, TCG otherwise.  /dev/kvm can exist and still be
# unusable (a PVM-style hypervisor runs firmware but fails Linux), so boot
# the test kernel itself without a root: a working KVM reaches the "no root"
# panic in a few seconds.  The answer is kept for the host's boot.
accel_probe() {
	local vmlinuz=$1 stamp boot
	if [ -n "${VDUSE_ACCEL:-}" ]; then
		echo "$VDUSE_ACCEL"
		return
	fi
	boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
	stamp=$VDUSE_CACHE/accel
	if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$boot" ]; then
		tail -n 1 "$stamp"
		return
	fi
	local acc=tcg
	if [ -w /dev/kvm ] && timeout 30 qemu-system-x86_64 -accel kvm -cpu host \
		-M q35 -m 256 -nodefaults -no-user-config -display none -nic none \
		-no-reboot -serial stdio -kernel "$vmlinuz" \
		-append "console=ttyS0 panic=-1" </dev/null 2>/dev/null |
		grep -q 'Kernel panic'; then
		acc=kvm
	fi
	printf '%s\n%s\n' "$boot" "$acc" >"$stamp"
	log "accelerator: $acc"
	echo "$acc"
}

# tcg_patch_race LOG: true when a run under TCG died of a stale breakpoint
# and of nothing else: its first bad kernel-log line is "Oops: int3" and
# the report up to the panic names no symbol of ours.  The kernel patches
# live code (jump labels, static calls: the first TCP connect, enabling a
# tracepoint) by writing int3 and waiting for every CPU to see it go;
# under multi-threaded TCG another vCPU now and then still executes the
# stale int3 once the patch is done.  That is QEMU's, not the module's:
# tools/testing/check runs such a suite again, once, and says so.  KVM
# does not do this, so a run under KVM never counts.
tcg_patch_race() {
	local log=$1
	tr -d '\r' <"$log" | awk -v bad="$KLOG_BAD" '
		NR == 1 { tcg = /^\[vm\] booting .*\(tcg,/ }
		!seen && $0 ~ bad { seen = 1; int3 = /Oops: int3/; next }
		seen && /Kernel panic/ { exit }
		seen && /\[vduse\]|vduse_[a-z_]*\+0x/ { ours = 1 }
		END { exit !(tcg && int3 && !ours) }'
}

# Lines of a kernel log that fail a run.
KLOG_BAD='WARNING:|BUG:|BUG kmalloc|kernel BUG|Oops|KFENCE:|list_add corruption|list_del corruption|refcount_t:|general protection fault|UBSAN:|INFO: task .* blocked|Kernel panic|unreferenced object|stack-protector|slab .* corrupted|Poison overwritten|Redzone'
