// SPDX-License-Identifier: GPL-2.0
/*
 * abi_behaviour: what the VDUSE character devices do with valid and
 * invalid input, checked against the ABI fact sheet
 * (shared/docs/abi-facts.md sections 1.1-1.3 and 2.1-2.9).
 *
 * The same binary runs against the stock vduse.ko and ours, natively and
 * as an i386 binary (compat ioctls), as root in the test guest with the
 * vDPA stack loaded.  Every check prints one TAP line.  Device names start
 * with "abit64-" or "abit32-" so the two builds never collide, and every
 * test uses its own name.
 *
 * Usage: abi_behaviour [--module ours|stock]   (default: $VDUSE_MODULE,
 * else guessed from /sys/module/vduse/taint: out-of-tree means ours)
 *
 * Where the stock module wins over the fact sheet, the expectation follows
 * the stock module and says so in a comment ("stock:").  Stock 7.3
 * behaviour that the fact sheet leaves open or states otherwise:
 *  - IOTLB_DEREG_UMEM before any attach: ENOENT (nothing registered).
 *  - write(2) of a reply from an unreadable buffer: EINVAL, not EFAULT.
 *  - IOTLB_GET_INFO with reserved or (v0) asid non-zero: EFAULT (the
 *    fact sheet's "7.2 quirk" is still there in 7.3).
 *  - A request that times out breaks the device, but the driver probe
 *    that sent it still completes and binds.
 *  - A FAILED reply to SET_STATUS(FEATURES_OK): virtio_vdpa still binds;
 *    virtio_blk does not, and writes FAILED on top of status 0x3.
 *  - Closing a vhost-vdpa fd sends no set_map: the VMM's mappings stay in
 *    the domain (see "vhost-maps-after-del" for what happens on detach).
 *
 * The stock module of a kernel older than 7.3 has an older ABI: against
 * it the program skips everything (TAP "1..0 # SKIP").
 */
#include <linux/vduse.h>
#include <linux/capability.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "vduse_test.h"

/*
 * Deliberate differences between our module and the stock one.  A check
 * that depends on one of these looks its expectation up here by id; the
 * table is printed at the start of every run.
 */
struct divergence {
	const char *id;
	int stock;		/* errno expected from the stock module, 0 = success */
	int ours;		/* errno expected from ours */
	const char *why;
};

static const struct divergence divergences[] = {
	{ "destroy-short-name", EFAULT, 0,
	  "DESTROY_DEV takes a NUL-terminated name and reads no further than "
	  "its NUL (at most 256 bytes); stock copies 256 bytes and faults when "
	  "a short name ends just before an unmapped page (QEMU and DPDK pass "
	  "short string pointers)" },
	{ "vhost-maps-after-del", 0, EINVAL,
	  "mappings that vhost-vdpa installed through set_map are dropped when "
	  "the vDPA device is released; stock keeps them (and the VMM's file "
	  "pinned) in the domain until the VDUSE device is destroyed" },
	{ "getinfo-einval", EFAULT, EINVAL,
	  "IOTLB_GET_INFO with non-zero reserved words, or a non-zero asid "
	  "on an API v0 device, is invalid input: EINVAL as in 6.12 and as "
	  "every other ioctl answers it; stock 7.x says EFAULT although "
	  "nothing faulted" },
	{ "name-slash", 0, EINVAL,
	  "a name with '/' cannot name a sysfs device; stock creates it "
	  "(sysfs shows '!' for '/', the node lands in a subdirectory)" },
};

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define BOUNCE_DEFAULT	67108864ULL
#define STATUS_ACK	0x01
#define STATUS_DRIVER	0x02
#define STATUS_DRV_OK	0x04
#define STATUS_FEAT_OK	0x08

static int tests, failures;
/* NULL, hidden from the compiler's non-null checks. */
static void *volatile null_ptr;
static bool ours;
static int kver;		/* major * 100 + minor of the running kernel */
static const char *bits;	/* "64" or "32": part of every device name */
static long page_size;

/* ------------------------------------------------------------------ */
/* TAP                                                                 */
/* ------------------------------------------------------------------ */

static void vreport(bool pass, const char *diag, const char *fmt, va_list ap)
{
	tests++;
	if (!pass)
		failures++;
	printf("%sok %d - ", pass ? "" : "not ", tests);
	vprintf(fmt, ap);
	if (!pass && diag)
		printf(" # %s", diag);
	putchar('\n');
	fflush(stdout);
}

/*
 * The result r of sys() must be success (want == 0: r >= 0) or exactly
 * the error want.
 */
static bool __attribute__((format(printf, 3, 4)))
expect_errno(long r, int want, const char *fmt, ...)
{
	char diag[96];
	bool pass = want ? r == -want : r >= 0;
	va_list ap;

	snprintf(diag, sizeof(diag), "got %s want %s",
		 r < 0 ? errname((int)-r) : "success", errname(want));
	va_start(ap, fmt);
	vreport(pass, diag, fmt, ap);
	va_end(ap);
	return pass;
}

static bool __attribute__((format(printf, 3, 4)))
expect_eq(unsigned long long got, unsigned long long want, const char *fmt, ...)
{
	char diag[96];
	bool pass = got == want;
	va_list ap;

	snprintf(diag, sizeof(diag), "got %llu (0x%llx) want %llu (0x%llx)",
		 got, got, want, want);
	va_start(ap, fmt);
	vreport(pass, diag, fmt, ap);
	va_end(ap);
	return pass;
}

static bool __attribute__((format(printf, 3, 4)))
expect_str(const char *got, const char *want, const char *fmt, ...)
{
	char diag[160];
	bool pass = got && !strcmp(got, want);
	va_list ap;

	snprintf(diag, sizeof(diag), "got '%s' want '%s'", got ? got : "(error)",
		 want);
	va_start(ap, fmt);
	vreport(pass, diag, fmt, ap);
	va_end(ap);
	return pass;
}

static bool __attribute__((format(printf, 3, 4)))
expect_true(bool cond, const char *diag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cond, diag, fmt, ap);
	va_end(ap);
	return cond;
}

/* Expected errno of a check that depends on a deliberate divergence. */
static int diverge(const char *id)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(divergences); i++)
		if (!strcmp(divergences[i].id, id))
			return ours ? divergences[i].ours : divergences[i].stock;
	fprintf(stderr, "abi_behaviour: unknown divergence %s\n", id);
	exit(2);
}

/* ------------------------------------------------------------------ */
/* Small helpers: files, sysfs, commands                               */
/* ------------------------------------------------------------------ */

/* sysfs value of a device attribute, or NULL. */
static const char *attr_get(const char *name, const char *attr)
{
	static char buf[256];

	return sysfs_read(dev_attr(name, attr), buf, sizeof(buf)) ? NULL : buf;
}

static bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static const char *dev_node(const char *name)
{
	static char path[VDUSE_NAME_MAX + 16];

	snprintf(path, sizeof(path), "/dev/vduse/%s", name);
	return path;
}

static const char *vdpa_dev_path(const char *name)
{
	static char path[VDUSE_NAME_MAX + 32];

	snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s", name);
	return path;
}

/* ------------------------------------------------------------------ */
/* Control node and device creation                                    */
/* ------------------------------------------------------------------ */

/* The MAC of every net device. */
static const __u8 net_mac[6] = { 0x02, 0xab, 0x17, 0, 0, 1 };

static const char *dname(const char *what)
{
	static char names[8][VDUSE_NAME_MAX];
	static int slot;
	char *n = names[slot++ % 8];

	snprintf(n, VDUSE_NAME_MAX, "abit%s-%s", bits, what);
	return n;
}

static long create(int ctl, struct create *c)
{
	return sys(ioctl(ctl, VDUSE_CREATE_DEV, c));
}

/* Create a device that a check needs as a fixture; bail out if we can't. */
static void must_create(int ctl, struct create *c)
{
	long r = create(ctl, c);

	if (r < 0) {
		printf("Bail out! cannot create fixture %s: %s\n", c->hdr.name,
		       errname((int)-r));
		exit(1);
	}
}

static long vq_info(int fd, __u32 index, struct vduse_vq_info *vi)
{
	memset(vi, 0, sizeof(*vi));
	vi->index = index;
	return sys(ioctl(fd, VDUSE_VQ_GET_INFO, vi));
}

/* ------------------------------------------------------------------ */
/* 1.1: nodes, sysfs and module                                        */
/* ------------------------------------------------------------------ */

static void test_nodes(void)
{
	char buf[4096], *p;
	unsigned int vmajor = 0;
	struct stat st;
	FILE *f;

	f = fopen("/proc/devices", "r");
	while (f && fgets(buf, sizeof(buf), f)) {
		unsigned int m;
		char name[64];

		if (sscanf(buf, "%u %63s", &m, name) == 2 && !strcmp(name, "vduse"))
			vmajor = m;
	}
	if (f)
		fclose(f);
	expect_true(vmajor != 0, "no vduse line", "/proc/devices lists a char major named vduse");

	expect_true(stat(CTL_PATH, &st) == 0 && S_ISCHR(st.st_mode),
		    "missing or not a char device",
		    "/dev/vduse/control is a character device");
	expect_eq(major(st.st_rdev), vmajor, "/dev/vduse/control has the vduse major");
	expect_eq(minor(st.st_rdev), 0, "/dev/vduse/control is minor 0");
	expect_true(path_exists(SYSFS_VDUSE "/control"), "missing",
		    "/sys/class/vduse/control exists");
	expect_true(path_exists("/sys/devices/vduse"), "missing",
		    "management device /sys/devices/vduse exists");
	expect_str(sysfs_read("/sys/module/vduse/parameters/max_iotlb_entries",
			      buf, sizeof(buf)) ? NULL : buf, "2048",
		   "module parameter max_iotlb_entries defaults to 2048");
	expect_errno(run("vdpa mgmtdev show vduse >/dev/null") ? -EIO : 0, 0,
		     "vdpa mgmtdev show vduse");
	/* 2.6: the id table lists block and net, not fs. */
	if (run("vdpa mgmtdev show vduse > /tmp/abit-mgmt 2>&1") == 0 &&
	    !sysfs_read("/tmp/abit-mgmt", buf, sizeof(buf))) {
		p = strstr(buf, "supported_classes");
		note("mgmtdev: %s", buf);
		expect_true(p && strstr(p, "block") && strstr(p, "net"), buf,
			    "mgmtdev supported classes include block and net");
		expect_true(p && !strstr(p, " fs"), buf,
			    "mgmtdev supported classes do not list fs");
	}
}

/* ------------------------------------------------------------------ */
/* 2.1: API version, 7.3 features, unknown control ioctls              */
/* ------------------------------------------------------------------ */

static void test_api_version(void)
{
	unsigned long long v;
	int a, b;

	a = ctl_open();
	v = 99;
	expect_errno(sys(ioctl(a, VDUSE_GET_API_VERSION, &v)), 0,
		     "GET_API_VERSION on a fresh control fd");
	expect_eq(v, 1, "GET_API_VERSION before SET returns 1");
	v = 99;
	ioctl(a, VDUSE_GET_API_VERSION, &v);
	expect_eq(v, 1, "GET_API_VERSION again still returns 1");

	/* Another control fd keeps its own state. */
	b = ctl_open();
	v = 0;
	expect_errno(sys(ioctl(b, VDUSE_SET_API_VERSION, &v)), 0,
		     "SET_API_VERSION 0");
	v = 99;
	ioctl(b, VDUSE_GET_API_VERSION, &v);
	expect_eq(v, 0, "GET_API_VERSION after SET 0 returns 0");
	v = 99;
	ioctl(a, VDUSE_GET_API_VERSION, &v);
	expect_eq(v, 1, "the first control fd still reports 1 (state is per fd)");

	v = 1;
	expect_errno(sys(ioctl(b, VDUSE_SET_API_VERSION, &v)), 0,
		     "SET_API_VERSION 1");
	v = 99;
	ioctl(b, VDUSE_GET_API_VERSION, &v);
	expect_eq(v, 1, "GET_API_VERSION after SET 1 returns 1");
	v = 0;
	expect_errno(sys(ioctl(b, VDUSE_SET_API_VERSION, &v)), 0,
		     "SET_API_VERSION back to 0");
	v = 2;
	expect_errno(sys(ioctl(b, VDUSE_SET_API_VERSION, &v)), EINVAL,
		     "SET_API_VERSION 2");
	v = ~0ULL;
	expect_errno(sys(ioctl(b, VDUSE_SET_API_VERSION, &v)), EINVAL,
		     "SET_API_VERSION U64_MAX");
	v = 1ULL << 32;
	expect_errno(sys(ioctl(b, VDUSE_SET_API_VERSION, &v)), EINVAL,
		     "SET_API_VERSION 1<<32");
	v = 99;
	ioctl(b, VDUSE_GET_API_VERSION, &v);
	expect_eq(v, 0, "a refused SET leaves the version unchanged");

	expect_errno(sys(ioctl(b, VDUSE_GET_API_VERSION, NULL)), EFAULT,
		     "GET_API_VERSION to a NULL pointer");
	expect_errno(sys(ioctl(b, VDUSE_SET_API_VERSION, NULL)), EFAULT,
		     "SET_API_VERSION from a NULL pointer");
	close(a);
	close(b);
}

static void test_features(void)
{
	unsigned long long v;
	int fd = ctl_open();

	v = 0;
	expect_errno(sys(ioctl(fd, VDUSE_GET_FEATURES, &v)), 0, "GET_FEATURES");
	expect_eq(v, 1ULL << VDUSE_F_QUEUE_READY | 1ULL << VDUSE_F_SUSPEND,
		  "GET_FEATURES reports QUEUE_READY and SUSPEND");
	v = 1ULL << 2;
	expect_errno(sys(ioctl(fd, VDUSE_SET_FEATURES, &v)), EINVAL,
		     "SET_FEATURES with unknown bit 2");
	v = 1ULL << 63;
	expect_errno(sys(ioctl(fd, VDUSE_SET_FEATURES, &v)), EINVAL,
		     "SET_FEATURES with unknown bit 63");
	v = 1ULL << VDUSE_F_QUEUE_READY | 1ULL << VDUSE_F_SUSPEND;
	expect_errno(sys(ioctl(fd, VDUSE_SET_FEATURES, &v)), 0,
		     "SET_FEATURES QUEUE_READY|SUSPEND");
	v = 0;
	expect_errno(sys(ioctl(fd, VDUSE_SET_FEATURES, &v)), 0,
		     "SET_FEATURES 0");
	expect_errno(sys(ioctl(fd, VDUSE_GET_FEATURES, NULL)), EFAULT,
		     "GET_FEATURES to a NULL pointer");
	expect_errno(sys(ioctl(fd, VDUSE_SET_FEATURES, NULL)), EFAULT,
		     "SET_FEATURES from a NULL pointer");
	close(fd);
}

static void test_control_misc(void)
{
	int fd = ctl_open();
	char buf[256];
	void *p;

	expect_errno(sys(ioctl(fd, _IO(VDUSE_BASE, 0x06))), EINVAL,
		     "unknown control ioctl nr 0x06");
	expect_errno(sys(ioctl(fd, _IOR(VDUSE_BASE, 0x7f, __u64), buf)), EINVAL,
		     "unknown control ioctl nr 0x7f");
	expect_errno(sys(ioctl(fd, _IO('X', 1))), EINVAL,
		     "control ioctl of a foreign type");
	expect_errno(sys(ioctl(fd, _IOW(VDUSE_BASE, 0x02, char[100]), buf)),
		     EINVAL, "CREATE_DEV encoded with a wrong size");
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP, buf)), EINVAL,
		     "a device ioctl (VQ_SETUP) on the control fd");
	p = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 0);
	expect_errno(p == MAP_FAILED ? -errno : 0, ENODEV, "mmap of the control fd");
	if (p != MAP_FAILED)
		munmap(p, page_size);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* 2.2/2.6: CREATE_DEV and DESTROY_DEV                                  */
/* ------------------------------------------------------------------ */

/* Create expecting want; if it unexpectedly succeeded, clean it up. */
static void create_expect(int ctl, struct create *c, int want, const char *what)
{
	char name[VDUSE_NAME_MAX];
	long r = create(ctl, c);

	strcpy(name, c->hdr.name);
	expect_errno(r, want, "CREATE_DEV %s", what);
	if (r >= 0)
		destroy(ctl, name);
}

static void test_create(void)
{
	static struct create c;
	int v0 = ctl_open_v(0), v0b = ctl_open_v(0), v1 = ctl_open_v(1);
	int fresh, asked;
	const char *n = dname("create");
	unsigned long long v;
	long r;

	cfg_blk(&c, n, 1);
	expect_errno(create(v0, &c), 0, "CREATE_DEV block device (v0)");
	expect_true(path_exists(dev_node(n)), "missing",
		    "the device node /dev/vduse/NAME appears");
	expect_true(path_exists(dev_attr(n, "msg_timeout")), "missing",
		    "the sysfs device /sys/class/vduse/NAME appears");
	cfg_blk(&c, n, 1);
	expect_errno(create(v0, &c), EEXIST, "CREATE_DEV with an existing name");
	cfg_blk(&c, n, 1);
	expect_errno(create(v0b, &c), EEXIST,
		     "CREATE_DEV with an existing name from another fd");
	expect_errno(destroy(v0b, n), 0, "DESTROY_DEV from another control fd");

	cfg_blk(&c, "", 1);
	create_expect(v0, &c, EINVAL, "with an empty name");

	cfg_blk(&c, dname("resv0"), 1);
	c.hdr.reserved[0] = 1;
	create_expect(v0, &c, EINVAL, "with reserved[0] non-zero");
	cfg_blk(&c, dname("resv10"), 1);
	c.hdr.reserved[10] = 0x80000000;
	create_expect(v0, &c, EINVAL, "with reserved[10] non-zero");

	cfg_blk(&c, dname("v0ngroups"), 1);
	c.hdr.ngroups = 1;
	create_expect(v0, &c, EINVAL, "v0 with ngroups 1");
	cfg_blk(&c, dname("v0nas"), 1);
	c.hdr.nas = 1;
	create_expect(v0, &c, EINVAL, "v0 with nas 1");

	cfg_blk(&c, dname("v1zero"), 1);
	create_expect(v1, &c, EINVAL, "v1 with ngroups 0 and nas 0");
	cfg_blk(&c, dname("v1ng0"), 1);
	c.hdr.nas = 1;
	create_expect(v1, &c, EINVAL, "v1 with ngroups 0");
	cfg_blk(&c, dname("v1nas0"), 1);
	c.hdr.ngroups = 1;
	create_expect(v1, &c, EINVAL, "v1 with nas 0");
	cfg_blk(&c, dname("v1ngbig"), 1);
	c.hdr.ngroups = 0x10000;
	c.hdr.nas = 1;
	create_expect(v1, &c, EINVAL, "v1 with ngroups 0x10000");
	cfg_blk(&c, dname("v1nasbig"), 1);
	c.hdr.ngroups = 1;
	c.hdr.nas = 0x10000;
	create_expect(v1, &c, EINVAL, "v1 with nas 0x10000");
	cfg_blk(&c, dname("v1ok"), 2);
	c.hdr.ngroups = 2;
	c.hdr.nas = 2;
	create_expect(v1, &c, 0, "v1 with ngroups 2 and nas 2");
	cfg_blk(&c, dname("v1max"), 1);
	c.hdr.ngroups = 0xffff;
	c.hdr.nas = 1;
	create_expect(v1, &c, 0, "v1 with ngroups 0xffff");

	/* A fd that never chose a version creates v0 devices ... */
	fresh = ctl_open();
	cfg_blk(&c, dname("freshng"), 1);
	c.hdr.ngroups = 1;
	c.hdr.nas = 1;
	create_expect(fresh, &c, EINVAL, "on a fresh fd with ngroups 1 (v0 rules)");
	cfg_blk(&c, dname("fresh"), 1);
	create_expect(fresh, &c, 0, "on a fresh fd with ngroups 0 (v0 rules)");
	close(fresh);
	/* ... but one that asked with GET_API_VERSION is at version 1. */
	asked = ctl_open();
	ioctl(asked, VDUSE_GET_API_VERSION, &v);
	cfg_blk(&c, dname("asked"), 1);
	create_expect(asked, &c, EINVAL, "after GET_API_VERSION with ngroups 0 (v1 rules)");
	close(asked);

	cfg_blk(&c, dname("vqbig"), 1);
	c.hdr.vq_num = 0x10000;
	create_expect(v0, &c, EINVAL, "with vq_num 0x10000");

	cfg_blk(&c, dname("align0"), 1);
	c.hdr.vq_align = 0;
	create_expect(v0, &c, EINVAL, "with vq_align 0");
	cfg_blk(&c, dname("align2"), 1);
	c.hdr.vq_align = 2;
	create_expect(v0, &c, EINVAL, "with vq_align 2 (< 4)");
	cfg_blk(&c, dname("align12"), 1);
	c.hdr.vq_align = 12;
	create_expect(v0, &c, EINVAL, "with vq_align 12 (not a power of two)");
	cfg_blk(&c, dname("alignbig"), 1);
	c.hdr.vq_align = page_size * 2;
	create_expect(v0, &c, EINVAL, "with vq_align twice the page size");
	cfg_blk(&c, dname("align4"), 1);
	c.hdr.vq_align = 4;
	create_expect(v0, &c, 0, "with vq_align 4");

	cfg_blk(&c, dname("cfgbig"), 1);
	c.hdr.config_size = page_size + 1;
	create_expect(v0, &c, EINVAL, "with config_size page size + 1");
	cfg_blk(&c, dname("cfgpage"), 1);
	c.hdr.config_size = page_size;
	create_expect(v0, &c, 0, "with config_size page size");
	cfg_blk(&c, dname("cfg0"), 1);
	c.hdr.config_size = 0;
	create_expect(v0, &c, 0, "with config_size 0");

	cfg_blk(&c, dname("type0"), 1);
	c.hdr.device_id = 0;
	create_expect(v0, &c, EINVAL, "with device id 0");
	cfg_blk(&c, dname("console"), 1);
	c.hdr.device_id = VIRTIO_ID_CONSOLE;
	create_expect(v0, &c, EINVAL, "with device id console");
	cfg_blk(&c, dname("fs"), 2);
	c.hdr.features &= ~(1ULL << VIRTIO_BLK_F_MQ | 1ULL << VIRTIO_BLK_F_FLUSH);
	c.hdr.device_id = VIRTIO_ID_FS;
	create_expect(v0, &c, 0, "with device id fs");

	cfg_blk(&c, dname("noplat"), 1);
	c.hdr.features &= ~(1ULL << VIRTIO_F_ACCESS_PLATFORM);
	create_expect(v0, &c, EINVAL, "block without ACCESS_PLATFORM");
	cfg_blk(&c, dname("wce"), 1);
	c.hdr.features |= 1ULL << VIRTIO_BLK_F_CONFIG_WCE;
	create_expect(v0, &c, EINVAL, "block with CONFIG_WCE");

	cfg_net(&c, dname("net"), net_mac);
	create_expect(v0, &c, 0, "net device as root");
	cfg_net(&c, dname("netnov1"), net_mac);
	c.hdr.features &= ~(1ULL << VIRTIO_F_VERSION_1);
	create_expect(v0, &c, EINVAL, "net without VERSION_1");
	cfg_net(&c, dname("netnoplat"), net_mac);
	c.hdr.features &= ~(1ULL << VIRTIO_F_ACCESS_PLATFORM);
	create_expect(v0, &c, EINVAL, "net without ACCESS_PLATFORM");
	cfg_net(&c, dname("netcvq"), net_mac);
	c.hdr.features |= 1ULL << VIRTIO_NET_F_CTRL_VQ;
	c.hdr.vq_num = 3;
	create_expect(v0, &c, EINVAL, "net with CTRL_VQ");
	/* Bit 11 is CONFIG_WCE only for block (HOST_TSO4 for net). */
	cfg_net(&c, dname("netbit11"), net_mac);
	c.hdr.features |= 1ULL << 11;
	create_expect(v0, &c, 0, "net with feature bit 11 (block-only rule)");

	r = sys(ioctl(v0, VDUSE_CREATE_DEV, NULL));
	expect_errno(r, EFAULT, "CREATE_DEV from a NULL pointer");

	close(v0);
	close(v0b);
	close(v1);
}

/* The 255-byte name: byte 255 of the buffer is forced to NUL. */
static void test_create_long_name(void)
{
	static struct create c;
	char longname[VDUSE_NAME_MAX];
	int ctl = ctl_open_v(0);

	cfg_blk(&c, "", 1);
	memset(c.hdr.name, 'n', VDUSE_NAME_MAX);	/* no NUL at all */
	memcpy(c.hdr.name, dname("long"), 8);
	memcpy(longname, c.hdr.name, VDUSE_NAME_MAX - 1);
	longname[VDUSE_NAME_MAX - 1] = 0;
	expect_errno(create(ctl, &c), 0,
		     "CREATE_DEV with 256 non-NUL name bytes (truncated to 255)");
	expect_true(path_exists(dev_attr(longname, "msg_timeout")), "missing",
		    "the device is named by the first 255 bytes");
	expect_errno(destroy(ctl, longname), 0, "DESTROY_DEV of the 255-byte name");
	close(ctl);
}

/* Names that cannot be sysfs names (see the divergence table). */
static void test_create_names(void)
{
	static struct create c;
	char name[64];
	int ctl = ctl_open_v(0);
	long r;

	snprintf(name, sizeof(name), "abit%s-a/b", bits);
	cfg_blk(&c, name, 1);
	r = create(ctl, &c);
	expect_errno(r, diverge("name-slash"), "CREATE_DEV with a '/' in the name");
	if (r >= 0)
		expect_errno(destroy(ctl, name), 0, "DESTROY_DEV of the name with '/'");
	/*
	 * "control" collides with the control node's sysfs entry.  Stock
	 * fails in device_create() (and dumps a sysfs duplicate-name stack);
	 * ours refuses it up front.  Both answer EEXIST.
	 */
	cfg_blk(&c, "control", 1);
	expect_errno(create(ctl, &c), EEXIST, "CREATE_DEV named \"control\"");
	if (ours) {
		/* Not tried on stock: a sysfs directory "." is not safe to make. */
		cfg_blk(&c, ".", 1);
		expect_errno(create(ctl, &c), EINVAL, "CREATE_DEV named \".\" (ours)");
		cfg_blk(&c, "..", 1);
		expect_errno(create(ctl, &c), EINVAL, "CREATE_DEV named \"..\" (ours)");
	} else {
		note("not tried on stock: CREATE_DEV named \".\" and \"..\"");
	}
	close(ctl);
}

/* Header mapped, config bytes behind it not: the copy must fault. */
static void test_create_fault(void)
{
	struct vduse_dev_config *hdr;
	int ctl = ctl_open_v(0);
	char *area;
	long r;

	area = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(area + page_size, page_size);
	hdr = (void *)(area + page_size - sizeof(*hdr));
	memset(hdr, 0, sizeof(*hdr));
	snprintf(hdr->name, VDUSE_NAME_MAX, "%s", dname("cfgfault"));
	hdr->device_id = VIRTIO_ID_BLOCK;
	hdr->features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	hdr->vq_num = 1;
	hdr->vq_align = page_size;
	hdr->config_size = 16;
	r = create(ctl, (struct create *)(void *)hdr);
	expect_errno(r, EFAULT, "CREATE_DEV whose config bytes are unmapped");
	if (r >= 0)
		destroy(ctl, dname("cfgfault"));
	munmap(area, page_size);
	close(ctl);
}

static void test_destroy(void)
{
	static struct create c;
	int ctl = ctl_open_v(0), fd;
	const char *n = dname("destroy");
	char *area, *name;
	size_t len;
	long r;

	expect_errno(destroy(ctl, dname("nosuchdevice")), EINVAL,
		     "DESTROY_DEV of an unknown name");
	expect_errno(destroy(ctl, ""), EINVAL, "DESTROY_DEV of the empty name");
	expect_errno(sys(ioctl(ctl, VDUSE_DESTROY_DEV, NULL)), EFAULT,
		     "DESTROY_DEV from a NULL pointer");

	cfg_blk(&c, n, 1);
	must_create(ctl, &c);
	fd = dev_open(n);
	expect_errno(destroy(ctl, n), EBUSY, "DESTROY_DEV while the device node is open");
	close(fd);

	/* A short name that ends right before an unmapped page. */
	area = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(area + page_size, page_size);
	len = strlen(n) + 1;
	name = area + page_size - len;
	memcpy(name, n, len);
	r = sys(ioctl(ctl, VDUSE_DESTROY_DEV, name));
	expect_errno(r, diverge("destroy-short-name"),
		     "DESTROY_DEV of a short name at the end of a mapping");
	munmap(area, page_size);
	if (r < 0)
		expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of an idle device");
	expect_true(!path_exists(dev_attr(n, "msg_timeout")), "still there",
		    "the sysfs device is gone after destroy");
	expect_errno(dev_open_flags(n, 0) < 0 ? -errno : 0, ENOENT,
		     "the device node is gone after destroy");
	expect_errno(destroy(ctl, n), EINVAL, "DESTROY_DEV of the same name again");
	close(ctl);
}

/* 2.6: net devices need CAP_NET_ADMIN; block devices do not. */
static int create_without_net_admin(struct create *c)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	int ctl, st;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		ctl = ctl_open_v(0);
		if (syscall(SYS_capget, &h, d))
			_exit(200);
		d[CAP_NET_ADMIN / 32].effective &= ~(1U << (CAP_NET_ADMIN % 32));
		d[CAP_NET_ADMIN / 32].permitted &= ~(1U << (CAP_NET_ADMIN % 32));
		if (syscall(SYS_capset, &h, d))
			_exit(201);
		_exit(ioctl(ctl, VDUSE_CREATE_DEV, c) ? errno : 0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void test_net_admin(void)
{
	static struct create c;
	int ctl = ctl_open_v(0), e;

	cfg_net(&c, dname("netnocap"), net_mac);
	e = create_without_net_admin(&c);
	expect_errno(e > 0 ? -e : e, EPERM, "CREATE_DEV net without CAP_NET_ADMIN");
	if (e == 0)
		destroy(ctl, dname("netnocap"));
	cfg_blk(&c, dname("blknocap"), 1);
	e = create_without_net_admin(&c);
	expect_errno(e > 0 ? -e : e, 0, "CREATE_DEV block without CAP_NET_ADMIN");
	if (e == 0)
		destroy(ctl, dname("blknocap"));
	close(ctl);
}

/* ------------------------------------------------------------------ */
/* 2.2-2.7: the device node before attach                              */
/* ------------------------------------------------------------------ */

static void test_device_open(const char *n)
{
	int fd, fd2;
	void *p;
	char buf[64];

	fd = dev_open_flags(n, 0);
	expect_errno(fd < 0 ? -errno : 0, 0, "open the device node");
	fd2 = dev_open_flags(n, 0);
	expect_errno(fd2 < 0 ? -errno : 0, EBUSY, "open the device node a second time");
	if (fd2 >= 0)
		close(fd2);
	expect_errno(sys(ioctl(fd, _IO(VDUSE_BASE, 0x1c))), ENOTTY,
		     "unknown device ioctl nr 0x1c");
	expect_errno(sys(ioctl(fd, _IO(VDUSE_BASE, 0x7f))), ENOTTY,
		     "unknown device ioctl nr 0x7f");
	expect_errno(sys(ioctl(fd, _IO('X', 1))), ENOTTY,
		     "device ioctl of a foreign type");
	expect_errno(sys(ioctl(fd, _IOWR(VDUSE_BASE, 0x10, char[24]), buf)), ENOTTY,
		     "IOTLB_GET_FD encoded with a wrong size");
	expect_errno(sys(ioctl(fd, VDUSE_GET_API_VERSION, buf)), ENOTTY,
		     "a control ioctl (GET_API_VERSION) on the device fd");
	p = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 0);
	expect_errno(p == MAP_FAILED ? -errno : 0, ENODEV, "mmap of the device fd");
	if (p != MAP_FAILED)
		munmap(p, page_size);
	close(fd);
	fd = dev_open_flags(n, 0);
	expect_errno(fd < 0 ? -errno : 0, 0, "reopen the device node after close");
	if (fd >= 0)
		close(fd);
}

static void test_vq_ioctls(int fd, unsigned int nvqs)
{
	struct vduse_vq_config vc;
	struct vduse_vq_info vi;
	struct vduse_vq_eventfd ef;
	int efd = eventfd(0, EFD_CLOEXEC), nul = open("/dev/null", O_RDONLY);
	__u32 idx;

	expect_errno(vq_setup(fd, 0, 256), 0, "VQ_SETUP vq 0");
	expect_errno(vq_setup(fd, nvqs, 256), EINVAL, "VQ_SETUP index == vq_num");
	expect_errno(vq_setup(fd, ~0U, 256), EINVAL, "VQ_SETUP index 0xffffffff");
	memset(&vc, 0, sizeof(vc));
	vc.max_size = 256;
	vc.reserved1 = 1;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP, &vc)), EINVAL,
		     "VQ_SETUP with reserved1 non-zero");
	memset(&vc, 0, sizeof(vc));
	vc.max_size = 256;
	vc.reserved2[9] = 1;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP, &vc)), EINVAL,
		     "VQ_SETUP with reserved2[9] non-zero");
	memset(&vc, 0, sizeof(vc));
	vc.max_size = 256;
	vc.group = 1;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP, &vc)), EINVAL,
		     "VQ_SETUP with group 1 on a v0 device");
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP, NULL)), EFAULT,
		     "VQ_SETUP from a NULL pointer");

	expect_errno(vq_info(fd, 0, &vi), 0, "VQ_GET_INFO vq 0");
	expect_eq(vi.num, 0, "VQ_GET_INFO before attach: num 0");
	expect_eq(vi.desc_addr | vi.driver_addr | vi.device_addr, 0,
		  "VQ_GET_INFO before attach: addresses 0");
	expect_eq(vi.ready, 0, "VQ_GET_INFO before attach: not ready");
	expect_errno(vq_info(fd, nvqs, &vi), EINVAL, "VQ_GET_INFO index == vq_num");
	expect_errno(sys(ioctl(fd, VDUSE_VQ_GET_INFO, NULL)), EFAULT,
		     "VQ_GET_INFO with a NULL pointer");

	ef.index = 0;
	ef.fd = efd;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), 0,
		     "VQ_SETUP_KICKFD with an eventfd");
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), 0,
		     "VQ_SETUP_KICKFD replacing the eventfd");
	ef.fd = VDUSE_EVENTFD_DEASSIGN;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), 0,
		     "VQ_SETUP_KICKFD -1 (deassign)");
	ef.fd = -2;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), 0,
		     "VQ_SETUP_KICKFD -2 is accepted as a no-op");
	ef.fd = -1000;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), 0,
		     "VQ_SETUP_KICKFD -1000 is accepted as a no-op");
	ef.index = nvqs;
	ef.fd = efd;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), EINVAL,
		     "VQ_SETUP_KICKFD index == vq_num");
	ef.index = nvqs;
	ef.fd = -1;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), EINVAL,
		     "VQ_SETUP_KICKFD index == vq_num with fd -1");
	ef.index = 0;
	ef.fd = nul;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), EINVAL,
		     "VQ_SETUP_KICKFD with a file that is not an eventfd");
	ef.fd = 1000000;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), EBADF,
		     "VQ_SETUP_KICKFD with a closed fd number");
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, NULL)), EFAULT,
		     "VQ_SETUP_KICKFD from a NULL pointer");

	idx = 0;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_INJECT_IRQ, &idx)), EINVAL,
		     "VQ_INJECT_IRQ before DRIVER_OK");
	idx = nvqs;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_INJECT_IRQ, &idx)), EINVAL,
		     "VQ_INJECT_IRQ index == vq_num");
	expect_errno(sys(ioctl(fd, VDUSE_DEV_INJECT_CONFIG_IRQ)), EINVAL,
		     "DEV_INJECT_CONFIG_IRQ before DRIVER_OK");
	close(efd);
	close(nul);
}

static long set_config(int fd, __u32 off, __u32 len)
{
	static union {
		struct vduse_config_data d;
		__u8 raw[8 + 8192];
	} u;

	u.d.offset = off;
	u.d.length = len;
	memset(u.d.buffer, 0x5a, 64);
	return sys(ioctl(fd, VDUSE_DEV_SET_CONFIG, &u));
}

static void test_config_ioctls(int fd, __u32 cfgsize)
{
	struct vduse_config_data *d;
	unsigned long long feat = 99;
	char *area;

	expect_errno(sys(ioctl(fd, VDUSE_DEV_GET_FEATURES, &feat)), 0,
		     "DEV_GET_FEATURES before attach");
	expect_eq(feat, 0, "DEV_GET_FEATURES before attach reads 0");
	expect_errno(sys(ioctl(fd, VDUSE_DEV_GET_FEATURES, NULL)), EFAULT,
		     "DEV_GET_FEATURES to a NULL pointer");

	expect_errno(set_config(fd, 0, 8), 0, "SET_CONFIG offset 0 length 8");
	expect_errno(set_config(fd, 0, cfgsize), 0, "SET_CONFIG the whole space");
	expect_errno(set_config(fd, cfgsize - 1, 1), 0, "SET_CONFIG the last byte");
	expect_errno(set_config(fd, 0, 0), EINVAL, "SET_CONFIG length 0");
	expect_errno(set_config(fd, cfgsize, 1), EINVAL,
		     "SET_CONFIG offset == config_size");
	expect_errno(set_config(fd, cfgsize + 1, 0), EINVAL,
		     "SET_CONFIG offset > config_size");
	expect_errno(set_config(fd, 1, cfgsize), EINVAL,
		     "SET_CONFIG offset + length > config_size");
	expect_errno(set_config(fd, 0, cfgsize + 1), EINVAL,
		     "SET_CONFIG length > config_size");
	expect_errno(set_config(fd, 8, 0xfffffff8U), EINVAL,
		     "SET_CONFIG offset + length wrapping around 2^32");
	expect_errno(sys(ioctl(fd, VDUSE_DEV_SET_CONFIG, NULL)), EFAULT,
		     "SET_CONFIG from a NULL pointer");
	/* Header mapped, data bytes unmapped. */
	area = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(area + page_size, page_size);
	d = (void *)(area + page_size - sizeof(*d));
	d->offset = 0;
	d->length = 4;
	expect_errno(sys(ioctl(fd, VDUSE_DEV_SET_CONFIG, d)), EFAULT,
		     "SET_CONFIG whose data bytes are unmapped");
	munmap(area, page_size);
}

static void test_iotlb_detached(int fd)
{
	struct vduse_iotlb_entry e = { .start = 0, .last = 0xffff };
	struct vduse_iotlb_entry_v2 e2 = { .start = 0, .last = 0xffff };
	struct vduse_iova_info ii = { .start = 0, .last = 0xffff };
	struct vduse_iova_umem um = { 0 };
	void *buf;

	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e)), EINVAL,
		     "IOTLB_GET_FD before attach");
	e.start = 2;
	e.last = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e)), EINVAL,
		     "IOTLB_GET_FD with start > last");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD, NULL)), EFAULT,
		     "IOTLB_GET_FD with a NULL pointer");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii)), EINVAL,
		     "IOTLB_GET_INFO before attach");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, NULL)), EFAULT,
		     "IOTLB_GET_INFO with a NULL pointer");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2)), ENOTTY,
		     "IOTLB_GET_FD2 on a v0 device");

	buf = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	um.uaddr = (uintptr_t)buf;
	um.size = BOUNCE_DEFAULT;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), EINVAL,
		     "IOTLB_REG_UMEM before attach");
	/* stock: ENOENT (nothing registered), not EINVAL. */
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_DEREG_UMEM, &um)), ENOENT,
		     "IOTLB_DEREG_UMEM before attach");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, NULL)), EFAULT,
		     "IOTLB_REG_UMEM from a NULL pointer");
	munmap(buf, 1 << 20);
}

/* 2.3 without any request pending. */
static void test_channel_idle(int fd, const char *n)
{
	struct vduse_dev_response resp;
	char big[512];
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	int nb;

	expect_errno(sys(read(fd, big, sizeof(struct vduse_dev_request) - 1)),
		     EINVAL, "read with a buffer of 151 bytes");
	expect_errno(sys(read(fd, big, 0)), EINVAL, "read of 0 bytes");
	nb = dev_open_flags(n, O_NONBLOCK);
	expect_errno(nb < 0 ? -errno : 0, EBUSY,
		     "O_NONBLOCK open while another opener holds the node");
	if (nb >= 0)
		close(nb);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	expect_errno(sys(read(fd, big, sizeof(big))), EAGAIN,
		     "O_NONBLOCK read with nothing pending");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);

	memset(&resp, 0, sizeof(resp));
	resp.request_id = 12345;
	expect_errno(sys(write(fd, &resp, sizeof(resp) - 1)), EINVAL,
		     "write of 151 bytes");
	expect_errno(sys(write(fd, &resp, sizeof(resp))), ENOENT,
		     "write answering an unknown request id");
	resp.reserved[3] = 1;
	expect_errno(sys(write(fd, &resp, sizeof(resp))), EINVAL,
		     "write with reserved[3] non-zero");
	/* stock: a reply that cannot be copied in is EINVAL, not EFAULT. */
	expect_errno(sys(write(fd, null_ptr, sizeof(resp))), EINVAL,
		     "write from a NULL pointer");
	expect_eq(poll(&p, 1, 0), 0, "poll with nothing pending reports nothing");
	expect_eq(p.revents, 0, "poll revents with nothing pending");
}

/* sysfs attributes of a detached device (1.1). */
static void test_sysfs(const char *n, unsigned int nvqs)
{
	char path[512], buf[64];
	const char *v;

	expect_str(attr_get(n, "msg_timeout"), "30", "msg_timeout defaults to 30");
	expect_errno(sysfs_write(dev_attr(n, "msg_timeout"), "5"), 0,
		     "msg_timeout accepts 5");
	expect_str(attr_get(n, "msg_timeout"), "5", "msg_timeout reads back 5");
	expect_errno(sysfs_write(dev_attr(n, "msg_timeout"), "0"), 0,
		     "msg_timeout accepts 0 (wait forever)");
	expect_errno(sysfs_write(dev_attr(n, "msg_timeout"), "abc"), EINVAL,
		     "msg_timeout refuses 'abc'");
	expect_errno(sysfs_write(dev_attr(n, "msg_timeout"), "-1"), EINVAL,
		     "msg_timeout refuses -1");
	sysfs_write(dev_attr(n, "msg_timeout"), "30");

	expect_str(attr_get(n, "bounce_size"), "67108864",
		   "bounce_size defaults to 67108864");
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "1048575"), EINVAL,
		     "bounce_size refuses 1 MiB - 1");
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "1073741825"), EINVAL,
		     "bounce_size refuses 1 GiB + 1");
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "abc"), EINVAL,
		     "bounce_size refuses 'abc'");
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "1048576"), 0,
		     "bounce_size accepts 1 MiB");
	expect_str(attr_get(n, "bounce_size"), "1048576", "bounce_size reads back 1 MiB");
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "1073741824"), 0,
		     "bounce_size accepts 1 GiB");
	snprintf(buf, sizeof(buf), "%llu", 1048576ULL + page_size + 1);
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), buf), 0,
		     "bounce_size accepts 1 MiB + page + 1");
	snprintf(buf, sizeof(buf), "%llu", 1048576ULL + page_size);
	expect_str(attr_get(n, "bounce_size"), buf,
		   "bounce_size is rounded down to a page multiple");
	sysfs_write(dev_attr(n, "bounce_size"), "67108864");

	snprintf(path, sizeof(path), "vq%u/irq_cb_affinity", nvqs - 1);
	v = attr_get(n, path);
	expect_true(v != NULL, "missing", "vq%u/irq_cb_affinity exists", nvqs - 1);
	if (v)
		note("vq%u/irq_cb_affinity default: %s", nvqs - 1, v);
	snprintf(path, sizeof(path), "%s/%s/vq%u", SYSFS_VDUSE, n, nvqs);
	expect_true(!path_exists(path), "exists", "no vq%u directory", nvqs);
	expect_errno(sysfs_write(dev_attr(n, "vq0/irq_cb_affinity"), "1"), 0,
		     "irq_cb_affinity accepts CPU 0");
	v = attr_get(n, "vq0/irq_cb_affinity");
	expect_eq(v ? strtoull(v, NULL, 16) : ~0ULL, 1, "irq_cb_affinity reads back 1");
	expect_errno(sysfs_write(dev_attr(n, "vq0/irq_cb_affinity"), "0"), EINVAL,
		     "irq_cb_affinity refuses an empty mask");
}

static void test_detached(void)
{
	static struct create c;
	const char *n = dname("detached");
	int ctl = ctl_open_v(0), fd;

	cfg_blk(&c, n, 2);
	must_create(ctl, &c);
	test_device_open(n);
	fd = dev_open(n);
	test_vq_ioctls(fd, 2);
	test_config_ioctls(fd, c.hdr.config_size);
	test_iotlb_detached(fd);
	test_channel_idle(fd, n);
	test_sysfs(n, 2);
	close(fd);
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of the detached device");
	close(ctl);
}

/* 2.8 before attach: a v1 device with two groups and address spaces. */
static void test_v1_detached(void)
{
	static struct create c;
	const char *n = dname("v1dev");
	struct vduse_vq_config vc;
	struct vduse_iotlb_entry_v2 e2;
	struct vduse_iotlb_entry e = { .last = 0xffff };
	struct vduse_iova_info ii;
	int ctl = ctl_open_v(1), fd;

	cfg_blk(&c, n, 2);
	c.hdr.ngroups = 2;
	c.hdr.nas = 2;
	must_create(ctl, &c);
	fd = dev_open(n);
	memset(&vc, 0, sizeof(vc));
	vc.index = 1;
	vc.max_size = 128;
	vc.group = 1;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP, &vc)), 0,
		     "v1 VQ_SETUP with group 1 of 2");
	vc.group = 2;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP, &vc)), EINVAL,
		     "v1 VQ_SETUP with group == ngroups");
	memset(&e2, 0, sizeof(e2));
	e2.last = 0xffff;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2)), EINVAL,
		     "v1 IOTLB_GET_FD2 before attach");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e)), EINVAL,
		     "v1 IOTLB_GET_FD before attach");
	memset(&ii, 0, sizeof(ii));
	ii.last = 0xffff;
	ii.asid = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii)), EINVAL,
		     "v1 IOTLB_GET_INFO asid 1 before attach");
	close(fd);
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of the v1 device");
	close(ctl);
}

/* ------------------------------------------------------------------ */
/* A tiny device: answers every request on a thread and logs them      */
/* ------------------------------------------------------------------ */

#define LOG_MAX	512
/* The loop answers GET_VQ_STATE with avail_index VQ_STATE_BASE + index. */
#define VQ_STATE_BASE	0x1230

struct devloop {
	int fd;
	int fail_status;	/* answer SET_STATUS with this value FAILED, or -1 */
	pthread_t thread;
	volatile bool stop;
	volatile bool running;
	volatile bool broken;
	pthread_mutex_t lock;
	struct vduse_dev_request log[LOG_MAX];
	int nlog;
	int errors;		/* failed reads or writes */
};

static void devloop_record(struct devloop *dl, const struct vduse_dev_request *r)
{
	pthread_mutex_lock(&dl->lock);
	if (dl->nlog < LOG_MAX)
		dl->log[dl->nlog++] = *r;
	pthread_mutex_unlock(&dl->lock);
}

static int devloop_answer(struct devloop *dl, const struct vduse_dev_request *r)
{
	struct vduse_dev_response resp;

	memset(&resp, 0, sizeof(resp));
	resp.request_id = r->request_id;
	resp.result = VDUSE_REQ_RESULT_OK;
	if (r->type == VDUSE_SET_STATUS && r->s.status == dl->fail_status)
		resp.result = VDUSE_REQ_RESULT_FAILED;
	if (r->type == VDUSE_GET_VQ_STATE) {
		resp.vq_state.index = r->vq_state.index;
		resp.vq_state.split.avail_index = VQ_STATE_BASE + r->vq_state.index;
	}
	return write(dl->fd, &resp, sizeof(resp)) == sizeof(resp) ? 0 : -errno;
}

static void *devloop_main(void *arg)
{
	struct devloop *dl = arg;
	struct vduse_dev_request req;
	struct pollfd p;
	ssize_t n;

	while (!dl->stop) {
		p.fd = dl->fd;
		p.events = POLLIN;
		if (poll(&p, 1, 20) <= 0)
			continue;
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			dl->broken = true;
			break;
		}
		n = read(dl->fd, &req, sizeof(req));
		if (n != sizeof(req)) {
			if (n < 0 && errno == EAGAIN)
				continue;
			dl->errors++;
			continue;
		}
		devloop_record(dl, &req);
		if (devloop_answer(dl, &req))
			dl->errors++;
	}
	return NULL;
}

static void devloop_start(struct devloop *dl, int fd)
{
	dl->fd = fd;
	dl->stop = false;
	dl->broken = false;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (pthread_create(&dl->thread, NULL, devloop_main, dl)) {
		printf("Bail out! pthread_create failed\n");
		exit(1);
	}
	dl->running = true;
}

static void devloop_stop(struct devloop *dl)
{
	if (!dl->running)
		return;
	dl->stop = true;
	pthread_join(dl->thread, NULL);
	dl->running = false;
	fcntl(dl->fd, F_SETFL, fcntl(dl->fd, F_GETFL) & ~O_NONBLOCK);
}

static void devloop_clear(struct devloop *dl)
{
	pthread_mutex_lock(&dl->lock);
	dl->nlog = 0;
	dl->errors = 0;
	pthread_mutex_unlock(&dl->lock);
}

/* SET_STATUS values logged so far, as a string, and whether s is among them. */
static void devloop_statuses(struct devloop *dl, char *buf, size_t len,
			     __u8 *st, int *nst)
{
	int i, k = 0;
	size_t o = 0;

	buf[0] = 0;
	pthread_mutex_lock(&dl->lock);
	for (i = 0; i < dl->nlog; i++) {
		if (dl->log[i].type != VDUSE_SET_STATUS)
			continue;
		if (st && k < 64)
			st[k] = dl->log[i].s.status;
		k++;
		o += snprintf(buf + o, o < len ? len - o : 0, "%s0x%x",
			      o ? " " : "", dl->log[i].s.status);
	}
	pthread_mutex_unlock(&dl->lock);
	if (nst)
		*nst = k < 64 ? k : 64;
}

/* Wait until a SET_STATUS with this value was answered; true if seen. */
static bool devloop_wait_status(struct devloop *dl, __u8 status, int ms)
{
	int i, waited;

	for (waited = 0; waited <= ms; waited += 20) {
		pthread_mutex_lock(&dl->lock);
		for (i = 0; i < dl->nlog; i++)
			if (dl->log[i].type == VDUSE_SET_STATUS &&
			    dl->log[i].s.status == status)
				break;
		pthread_mutex_unlock(&dl->lock);
		if (i < dl->nlog)
			return true;
		msleep(20);
	}
	return false;
}

/* Log every request as commentary (for the record of a run). */
static void devloop_dump(struct devloop *dl, const char *when)
{
	char line[1024];
	size_t o = 0;
	int i;

	pthread_mutex_lock(&dl->lock);
	for (i = 0; i < dl->nlog && o < sizeof(line) - 32; i++) {
		const struct vduse_dev_request *r = &dl->log[i];

		o += snprintf(line + o, sizeof(line) - o, " #%u:", r->request_id);
		switch (r->type) {
		case VDUSE_SET_STATUS:
			o += snprintf(line + o, sizeof(line) - o, "status=0x%x",
				      r->s.status);
			break;
		case VDUSE_GET_VQ_STATE:
			o += snprintf(line + o, sizeof(line) - o, "vq_state(%u)",
				      r->vq_state.index);
			break;
		case VDUSE_SET_VQ_READY:
			o += snprintf(line + o, sizeof(line) - o, "vq_ready(%u,%u)",
				      r->vq_ready.num, r->vq_ready.ready);
			break;
		default:
			o += snprintf(line + o, sizeof(line) - o, "type%u", r->type);
		}
	}
	pthread_mutex_unlock(&dl->lock);
	note("requests %s:%s", when, line);
}

/* ------------------------------------------------------------------ */
/* Attach helpers: the bound driver, binding from a child process     */
/* ------------------------------------------------------------------ */

/* Name of the vdpa driver bound to the device, or "" */
static const char *vdpa_driver(const char *n)
{
	static char buf[256];
	char path[512];
	ssize_t len;

	snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s/driver", n);
	len = readlink(path, buf, sizeof(buf) - 1);
	if (len < 0)
		return "";
	buf[len] = 0;
	return strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
}

/*
 * Bind in a child process (the probe sends requests synchronously).  The
 * child must not keep the device fd: any reference keeps the node busy.
 */
static pid_t vdpa_bind_async(const char *n, const char *drv, int devfd)
{
	pid_t pid = fork();

	if (pid == 0) {
		close(devfd);
		_exit(vdpa_bind(n, drv) ? 1 : 0);
	}
	return pid;
}

static int wait_child(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* ------------------------------------------------------------------ */
/* 2.2-2.5: an attached block device                                    */
/* ------------------------------------------------------------------ */

static struct devloop dl = { .lock = PTHREAD_MUTEX_INITIALIZER, .fail_status = -1 };

/*
 * Bind virtio_vdpa while we serve the first request by hand: read it,
 * check poll and the write rules with a request outstanding, close the
 * fd without answering, reopen, and read the same request again (2.2.8).
 * Returns the new fd; the device loop runs on it.
 */
static int bind_with_handshake(const char *n, int fd, pid_t *child)
{
	struct vduse_dev_request req, again;
	struct vduse_dev_response resp;
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	char big[256];
	long r;

	*child = vdpa_bind_async(n, "virtio_vdpa", fd);
	expect_true(poll(&p, 1, 10000) == 1 && (p.revents & POLLIN),
		    "no POLLIN", "poll reports POLLIN once a request is pending");
	r = sys(read(fd, big, sizeof(big)));
	expect_eq(r, sizeof(req), "read with a 256-byte buffer returns 152 bytes");
	memcpy(&req, big, sizeof(req));
	note("first request: type %u id %u", req.type, req.request_id);
	expect_eq(req.reserved[0] | req.reserved[1] | req.reserved[2] | req.reserved[3],
		  0, "request reserved words are zero");
	p.revents = 0;
	poll(&p, 1, 0);
	expect_true((p.revents & POLLOUT) && !(p.revents & POLLIN), "unexpected revents",
		    "poll reports POLLOUT (and not POLLIN) with a request awaiting its reply");
	memset(&resp, 0, sizeof(resp));
	resp.request_id = req.request_id;
	resp.reserved[0] = 1;
	expect_errno(sys(write(fd, &resp, sizeof(resp))), EINVAL,
		     "write answering a real request with reserved non-zero");
	resp.reserved[0] = 0;
	resp.request_id = req.request_id + 1000;
	expect_errno(sys(write(fd, &resp, sizeof(resp))), ENOENT,
		     "write answering a request id that was not read");

	close(fd);
	fd = dev_open_flags(n, 0);
	expect_errno(fd < 0 ? -errno : 0, 0, "reopen the device with a request unanswered");
	if (fd < 0) {
		printf("Bail out! lost the device node\n");
		exit(1);
	}
	p.fd = fd;
	p.revents = 0;
	expect_true(poll(&p, 1, 5000) == 1 && (p.revents & POLLIN), "no POLLIN",
		    "the unanswered request is pending again after reopen");
	r = sys(read(fd, &again, sizeof(again)));
	expect_true(r == sizeof(again) && again.request_id == req.request_id &&
		    again.type == req.type, "different request",
		    "the re-read request has the same id and type");
	memset(big, 0, sizeof(big));
	memcpy(big, &resp, sizeof(resp));
	((struct vduse_dev_response *)(void *)big)->request_id = again.request_id;
	expect_eq(sys(write(fd, big, sizeof(resp) + 8)), sizeof(resp),
		  "write of 160 bytes consumes 152");
	devloop_record(&dl, &again);
	devloop_start(&dl, fd);
	return fd;
}

static void check_status_sequence(struct devloop *d, const char *what)
{
	static const __u8 want[] = {
		STATUS_ACK, STATUS_ACK | STATUS_DRIVER,
		STATUS_ACK | STATUS_DRIVER | STATUS_FEAT_OK,
		STATUS_ACK | STATUS_DRIVER | STATUS_FEAT_OK | STATUS_DRV_OK,
	};
	char seq[512];
	__u8 st[64];
	int nst, i, k = 0;

	devloop_statuses(d, seq, sizeof(seq), st, &nst);
	note("%s SET_STATUS sequence: %s", what, seq);
	for (i = 0; i < nst && k < (int)sizeof(want); i++)
		if (st[i] == want[k])
			k++;
	expect_true(k == sizeof(want), seq,
		    "%s: SET_STATUS 0x1, 0x3, 0xb, 0xf arrive in that order", what);
	expect_true(nst > 0 && st[nst - 1] == 0xf, seq,
		    "%s: the last SET_STATUS is 0xf (DRIVER_OK)", what);
}

/* IOTLB_GET_FD on an IOVA, checking the entry; returns the fd or -1. */
static int get_fd_at(int fd, __u64 iova, struct vduse_iotlb_entry *e,
		     const char *what)
{
	long r;

	memset(e, 0, sizeof(*e));
	e->start = iova;
	e->last = iova;
	r = sys(ioctl(fd, VDUSE_IOTLB_GET_FD, e));
	expect_errno(r, 0, "IOTLB_GET_FD on the %s", what);
	if (r < 0)
		return -1;
	expect_true(e->start <= iova && iova <= e->last, "range misses the IOVA",
		    "IOTLB_GET_FD region of the %s contains the IOVA", what);
	expect_eq(e->perm, VDUSE_ACCESS_RW, "IOTLB_GET_FD perm of the %s is RW", what);
	return (int)r;
}

/* mmap the page of a region that holds iova, and read a word of it. */
static bool map_and_read(int mfd, const struct vduse_iotlb_entry *e, __u64 iova,
			 __u64 *word, const char *what)
{
	__u64 off = e->offset + (iova - e->start);
	__u64 poff = off & ~((__u64)page_size - 1);
	void *p;

	p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, poff);
	if (!expect_errno(p == MAP_FAILED ? -errno : 0, 0, "mmap of the %s fd", what))
		return false;
	memcpy(word, (char *)p + (off - poff), sizeof(*word));
	munmap(p, page_size);
	return true;
}

static void test_attached_vqs(int fd, unsigned int nvqs, __u16 max_size)
{
	struct vduse_iotlb_entry e;
	struct vduse_iova_info ii;
	struct vduse_vq_info vi;
	struct stat st;
	unsigned int i;
	__u64 word;
	int mfd;

	for (i = 0; i < nvqs; i++) {
		expect_errno(vq_info(fd, i, &vi), 0, "VQ_GET_INFO vq %u after DRIVER_OK", i);
		expect_eq(vi.ready, 1, "vq %u is ready", i);
		expect_true(vi.num > 0 && vi.num <= max_size, "bad num",
			    "vq %u num %u is in 1..max_size", i, vi.num);
		expect_true(vi.desc_addr >= BOUNCE_DEFAULT && vi.driver_addr > vi.desc_addr &&
			    vi.device_addr > vi.driver_addr, "bad addresses",
			    "vq %u ring IOVAs are ordered and above the bounce area", i);
		expect_eq(vi.split.avail_index, 0, "vq %u split avail_index is 0", i);
	}
	vq_info(fd, 0, &vi);
	mfd = get_fd_at(fd, vi.desc_addr, &e, "vq 0 descriptor ring");
	if (mfd >= 0) {
		expect_eq(e.offset, e.start,
			  "the mmap offset of a coherent region equals its IOVA");
		expect_errno(sys(fstat(mfd, &st)), 0, "fstat of the IOTLB fd");
		expect_true(fcntl(mfd, F_GETFD) == 0, "FD_CLOEXEC set",
			    "the IOTLB fd is installed without FD_CLOEXEC");
		if (map_and_read(mfd, &e, vi.desc_addr, &word, "vq 0 ring"))
			expect_true(true, NULL, "the vq 0 ring reads through the mapping");
		close(mfd);
	}
	memset(&ii, 0, sizeof(ii));
	ii.start = ii.last = vi.desc_addr;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii)), 0,
		     "IOTLB_GET_INFO on the vq 0 descriptor ring");
	expect_eq(ii.capability & VDUSE_IOVA_CAP_UMEM, 0,
		  "a ring region has no CAP_UMEM");
	memset(&ii, 0, sizeof(ii));
	ii.start = ii.last = vi.desc_addr;
	ii.reserved[0] = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii)),
		     diverge("getinfo-einval"),
		     "IOTLB_GET_INFO with reserved non-zero");
	memset(&ii, 0, sizeof(ii));
	ii.start = ii.last = vi.desc_addr;
	ii.asid = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii)),
		     diverge("getinfo-einval"),
		     "IOTLB_GET_INFO with asid 1 on a v0 device");

	/* No I/O was issued: no streaming map, no bounce region yet. */
	memset(&e, 0, sizeof(e));
	e.start = 0;
	e.last = page_size - 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e)), EINVAL,
		     "IOTLB_GET_FD in the bounce area before any streaming map");
	memset(&e, 0, sizeof(e));
	e.start = vi.desc_addr + 1;
	e.last = vi.desc_addr;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e)), EINVAL,
		     "IOTLB_GET_FD with start > last after attach");
}

static void test_attached_block(void)
{
	static struct create c;
	const char *n = dname("blk");
	const unsigned int nvqs = 2;
	unsigned long long feat = 0, offered;
	char seq[512];
	int ctl = ctl_open_v(0), fd;
	__u32 idx;
	pid_t child;

	cfg_blk(&c, n, nvqs);
	offered = c.hdr.features;
	must_create(ctl, &c);
	fd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	vq_setup(fd, 0, 256);
	/* 2.2.3: attach refused while a vq has no max_size. */
	expect_true(run("vdpa dev add name %s mgmtdev vduse 2>/dev/null", n) != 0,
		    "attached", "vdpa dev add refused while vq 1 is not set up");
	vq_setup(fd, 1, 256);
	expect_true(run("vdpa dev add name %s mgmtdev vduse 2>/dev/null",
			dname("nosuchdev")) != 0, "attached",
		    "vdpa dev add of an unknown name fails");

	if (!expect_eq(vdpa_add_unbound(n), 0, "vdpa dev add (no driver bound yet)")) {
		close(fd);
		destroy(ctl, n);
		close(ctl);
		return;
	}
	expect_true(path_exists(vdpa_dev_path(n)), "missing", "the vDPA device appears on the vdpa bus");
	expect_true(run("vdpa dev add name %s mgmtdev vduse 2>/dev/null", n) != 0,
		    "attached twice", "a second vdpa dev add of the same device fails");
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "1048576"), EPERM,
		     "bounce_size refuses changes once attached");
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "1073741825"), EPERM,
		     "bounce_size once attached: EPERM before the range check");

	devloop_clear(&dl);
	fd = bind_with_handshake(n, fd, &child);
	expect_eq(wait_child(child), 0, "bind to virtio_vdpa completes");
	expect_str(vdpa_driver(n), "virtio_vdpa", "virtio_vdpa is bound");
	expect_true(devloop_wait_status(&dl, 0xf, 5000), "no DRIVER_OK",
		    "the driver reached DRIVER_OK");
	devloop_dump(&dl, "during probe");
	check_status_sequence(&dl, "virtio_blk probe");
	expect_eq(dl.errors, 0, "the device loop read and answered every request");

	expect_errno(sys(ioctl(fd, VDUSE_DEV_GET_FEATURES, &feat)), 0,
		     "DEV_GET_FEATURES after DRIVER_OK");
	expect_true(feat & 1ULL << VIRTIO_F_ACCESS_PLATFORM && feat & 1ULL << VIRTIO_F_VERSION_1,
		    "missing bits", "driver features include VERSION_1 and ACCESS_PLATFORM");
	expect_eq(feat & ~offered, 0, "driver features are a subset of the offered ones");

	test_attached_vqs(fd, nvqs, 256);

	idx = 0;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_INJECT_IRQ, &idx)), 0,
		     "VQ_INJECT_IRQ after DRIVER_OK");
	idx = nvqs;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_INJECT_IRQ, &idx)), EINVAL,
		     "VQ_INJECT_IRQ index == vq_num after DRIVER_OK");
	expect_errno(set_config(fd, 0, 8), 0, "SET_CONFIG while attached");
	expect_errno(sys(ioctl(fd, VDUSE_DEV_INJECT_CONFIG_IRQ)), 0,
		     "DEV_INJECT_CONFIG_IRQ after DRIVER_OK");

	expect_errno(destroy(ctl, n), EBUSY, "DESTROY_DEV while attached and open");
	devloop_stop(&dl);
	close(fd);
	expect_errno(destroy(ctl, n), EBUSY, "DESTROY_DEV while attached, node closed");
	fd = dev_open(n);
	devloop_start(&dl, fd);

	devloop_clear(&dl);
	expect_eq(run("vdpa dev del %s", n), 0, "vdpa dev del");
	devloop_statuses(&dl, seq, sizeof(seq), NULL, NULL);
	note("vdpa dev del SET_STATUS sequence: %s", seq);
	expect_true(devloop_wait_status(&dl, 0, 1000), seq,
		    "detaching resets the device (SET_STATUS 0)");
	expect_true(!path_exists(vdpa_dev_path(n)), "still there", "the vDPA device is gone after vdpa dev del");
	{
		struct vduse_vq_info vi;

		vq_info(fd, 0, &vi);
		expect_eq(vi.ready, 0, "vq 0 is not ready after the reset");
	}
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "1048576"), EPERM,
		     "bounce_size still refuses changes after vdpa dev del");
	expect_errno(destroy(ctl, n), EBUSY, "DESTROY_DEV after detach while open");
	devloop_stop(&dl);
	close(fd);
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV after detach and close");
	close(ctl);
}

/* 2.9: VDUSE_F_QUEUE_READY turns vq enable/disable into requests. */
static void test_queue_ready(void)
{
	static struct create c;
	const char *n = dname("qready");
	unsigned long long f = 1ULL << VDUSE_F_QUEUE_READY;
	int ctl = ctl_open_v(0), fd, i, on[2] = { 0, 0 }, off[2] = { 0, 0 };
	int other = 0;

	if (!expect_errno(sys(ioctl(ctl, VDUSE_SET_FEATURES, &f)), 0,
			  "SET_FEATURES QUEUE_READY before create")) {
		close(ctl);
		return;
	}
	cfg_blk(&c, n, 2);
	must_create(ctl, &c);
	fd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	vq_setup(fd, 0, 128);
	vq_setup(fd, 1, 128);
	devloop_clear(&dl);
	devloop_start(&dl, fd);
	expect_eq(vdpa_add_unbound(n), 0, "vdpa dev add of the QUEUE_READY device");
	expect_errno(vdpa_bind(n, "virtio_vdpa"), 0, "bind it to virtio_vdpa");
	expect_true(devloop_wait_status(&dl, 0xf, 5000), "no DRIVER_OK",
		    "QUEUE_READY device reached DRIVER_OK");
	expect_eq(run("vdpa dev del %s", n), 0, "vdpa dev del of the QUEUE_READY device");
	devloop_dump(&dl, "QUEUE_READY device");
	pthread_mutex_lock(&dl.lock);
	for (i = 0; i < dl.nlog; i++) {
		const struct vduse_dev_request *r = &dl.log[i];

		if (r->type != VDUSE_SET_VQ_READY)
			continue;
		if (r->vq_ready.num < 2 && r->vq_ready.ready == 1)
			on[r->vq_ready.num]++;
		else if (r->vq_ready.num < 2 && r->vq_ready.ready == 0)
			off[r->vq_ready.num]++;
		else
			other++;
	}
	pthread_mutex_unlock(&dl.lock);
	expect_true(on[0] && on[1], "missing", "SET_VQ_READY ready=1 arrives for vq 0 and vq 1");
	expect_true(off[0] && off[1], "missing",
		    "SET_VQ_READY ready=0 arrives for vq 0 and vq 1 on teardown");
	expect_eq(other, 0, "no SET_VQ_READY with a bad index or ready value");
	devloop_stop(&dl);
	close(fd);
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of the QUEUE_READY device");
	close(ctl);
}

/* ------------------------------------------------------------------ */
/* 2.7: bounce area and umem, through an attached virtio-net device     */
/* ------------------------------------------------------------------ */

struct vring_desc_le {
	__u64 addr;
	__u32 len;
	__u16 flags;
	__u16 next;
};

/* Find a bounce IOVA the driver handed to the device on the rx ring. */
static bool rx_buffer_iova(int fd, __u64 *iova)
{
	struct vduse_iotlb_entry e;
	struct vduse_vq_info vi;
	struct vring_desc_le d;
	__u64 word;
	__u16 avail_idx, head;
	int mfd, tries;
	bool ok = false;

	vq_info(fd, 0, &vi);
	for (tries = 0; tries < 50; tries++) {
		mfd = get_fd_at(fd, vi.driver_addr, &e, "rx avail ring");
		if (mfd < 0)
			return false;
		ok = map_and_read(mfd, &e, vi.driver_addr, &word, "rx avail ring");
		close(mfd);
		if (!ok)
			return false;
		avail_idx = (__u16)(word >> 16);	/* flags, idx, ring[0] */
		head = (__u16)(word >> 32);
		if (avail_idx)
			break;
		msleep(100);
	}
	if (!expect_true(avail_idx > 0, "avail idx 0", "the driver posted rx buffers"))
		return false;
	mfd = get_fd_at(fd, vi.desc_addr + head * sizeof(d), &e, "rx descriptor");
	if (mfd < 0)
		return false;
	ok = map_and_read(mfd, &e, vi.desc_addr + head * sizeof(d), &word,
			  "rx descriptor");
	close(mfd);
	*iova = word;
	return ok;
}

static void test_umem(int fd, __u64 bounce)
{
	struct vduse_iova_umem um;
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	void *buf;

	setrlimit(RLIMIT_MEMLOCK, &rl);
	buf = mmap(NULL, bounce + page_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(&um, 0, sizeof(um));
	um.uaddr = (uintptr_t)buf;
	um.size = bounce;
	um.iova = page_size;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), EINVAL,
		     "REG_UMEM with iova != 0");
	um.iova = 0;
	um.size = bounce / 2;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), EINVAL,
		     "REG_UMEM with a size other than the bounce size");
	um.size = bounce;
	um.uaddr = (uintptr_t)buf + 8;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), EINVAL,
		     "REG_UMEM with an unaligned address");
	um.uaddr = (uintptr_t)buf;
	um.reserved[4] = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), EINVAL,
		     "REG_UMEM with reserved non-zero");
	um.reserved[4] = 0;
	um.asid = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), EINVAL,
		     "REG_UMEM with asid 1 on a v0 device");
	um.asid = 0;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_DEREG_UMEM, &um)), ENOENT,
		     "DEREG_UMEM with nothing registered");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), 0, "REG_UMEM");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), EEXIST,
		     "REG_UMEM a second time");
	um.size = bounce / 2;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_DEREG_UMEM, &um)), EINVAL,
		     "DEREG_UMEM with a wrong size");
	um.size = bounce;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_DEREG_UMEM, &um)), 0, "DEREG_UMEM");
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_DEREG_UMEM, &um)), ENOENT,
		     "DEREG_UMEM a second time");
	/* Left registered on purpose: closing the fd must drop it. */
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um)), 0,
		     "REG_UMEM again (released by close)");
	munmap(buf, bounce + page_size);
}

static void test_attached_net(void)
{
	static struct create c;
	const char *n = dname("net"), *ifname;
	const __u64 bounce = 1048576;
	struct vduse_iotlb_entry e;
	struct vduse_iova_info ii;
	char path[512];
	int ctl = ctl_open_v(0), fd, mfd;
	__u64 iova = 0, word;

	cfg_net(&c, n, net_mac);
	must_create(ctl, &c);
	fd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	expect_errno(sysfs_write(dev_attr(n, "bounce_size"), "1048576"), 0,
		     "net: bounce_size set to 1 MiB before attach");
	vq_setup(fd, 0, 64);
	vq_setup(fd, 1, 64);
	devloop_clear(&dl);
	devloop_start(&dl, fd);
	if (!expect_eq(vdpa_add_unbound(n), 0, "vdpa dev add of a net device"))
		goto out;
	expect_errno(vdpa_bind(n, "virtio_vdpa"), 0, "bind the net device to virtio_vdpa");
	expect_true(devloop_wait_status(&dl, 0xf, 5000), "no DRIVER_OK",
		    "net device reached DRIVER_OK");
	check_status_sequence(&dl, "virtio_net probe");
	ifname = net_ifname(n);
	if (!expect_true(ifname != NULL, "none", "virtio_net created an interface"))
		goto detach;
	/* No IPv6 and no address: nothing is ever transmitted. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	sysfs_write(path, "1");
	expect_eq(run("ip link set dev %s up", ifname), 0, "bring the interface up");

	if (rx_buffer_iova(fd, &iova)) {
		expect_true(iova > 0 && iova < bounce, "outside",
			    "the rx buffer IOVA lies in the bounce area");
		mfd = get_fd_at(fd, iova, &e, "bounce area");
		if (mfd >= 0) {
			expect_eq(e.start, 0, "the bounce region starts at IOVA 0");
			expect_eq(e.last, bounce - 1, "the bounce region ends at bounce_size - 1");
			expect_eq(e.offset, 0, "the bounce region is at offset 0 of its file");
			if (map_and_read(mfd, &e, iova, &word, "bounce area"))
				expect_true(true, NULL, "an rx bounce page reads through the mapping");
			close(mfd);
		}
		memset(&ii, 0, sizeof(ii));
		ii.start = ii.last = iova;
		expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii)), 0,
			     "IOTLB_GET_INFO in the bounce area");
		expect_eq(ii.capability, VDUSE_IOVA_CAP_UMEM,
			  "the bounce region has CAP_UMEM");
		expect_true(ii.start == 0 && ii.last == bounce - 1, "range",
			    "IOTLB_GET_INFO reports the whole bounce region");
		test_umem(fd, bounce);
	}
	run("ip link set dev %s down", ifname);
	/* Drop the umem registration by closing; the device stays attached. */
	devloop_stop(&dl);
	close(fd);
	fd = dev_open(n);
	devloop_start(&dl, fd);
detach:
	expect_eq(run("vdpa dev del %s", n), 0, "vdpa dev del of the net device");
	expect_eq(dl.errors, 0, "the net device loop answered every request");
out:
	devloop_stop(&dl);
	close(fd);
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of the net device");
	close(ctl);
}

/* ------------------------------------------------------------------ */
/* 2.9: VDUSE_F_SUSPEND through vhost-vdpa                              */
/* ------------------------------------------------------------------ */

/* Number of logged requests of a type. */
static int devloop_count(struct devloop *d, __u32 type)
{
	int i, k = 0;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->nlog; i++)
		k += d->log[i].type == type;
	pthread_mutex_unlock(&d->lock);
	return k;
}

/* The last logged request of a type, or false. */
static bool devloop_last(struct devloop *d, __u32 type, struct vduse_dev_request *out)
{
	bool found = false;
	int i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->nlog; i++)
		if (d->log[i].type == type) {
			*out = d->log[i];
			found = true;
		}
	pthread_mutex_unlock(&d->lock);
	return found;
}

/* A shared memfd mapping of len bytes filled with a pattern; fd in *mfd. */
static void *pattern_memfd(size_t len, __u8 pattern, int *mfd)
{
	void *p;

	*mfd = memfd_create("abit-guest-ram", MFD_CLOEXEC);
	if (*mfd < 0 || ftruncate(*mfd, len))
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *mfd, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, pattern, len);
	return p;
}

#define RING_DESC	0x10000ULL
#define RING_AVAIL	0x11000ULL
#define RING_USED	0x12000ULL
#define RING_NUM	64
#define RING_BASE	5
#define VHOST_IOVA	0x200000ULL
#define VHOST_LEN	0x10000ULL

/* Wait up to ms for an eventfd to count; returns the count read, or 0. */
static __u64 eventfd_wait(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	__u64 v = 0;

	if (poll(&p, 1, ms) == 1 && read(efd, &v, sizeof(v)) == sizeof(v))
		return v;
	return 0;
}

/*
 * 2.4 on the vhost-vdpa path: the vq parameters a VMM sets reach
 * VQ_GET_INFO; a kick without a kickfd is remembered and delivered when
 * one is installed; VQ_INJECT_IRQ signals the VMM's call eventfd.
 */
static void test_vhost_vq(int fd, int kick, int call)
{
	struct vduse_vq_eventfd ef = { .index = 0 };
	struct vduse_vq_info vi;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	__u64 one = 1;
	__u32 idx = 0;

	expect_errno(vq_info(fd, 0, &vi), 0, "VQ_GET_INFO of a vq set up through vhost-vdpa");
	expect_eq(vi.num, RING_NUM, "VQ_GET_INFO num is the VMM's ring size");
	expect_true(vi.desc_addr == RING_DESC && vi.driver_addr == RING_AVAIL &&
		    vi.device_addr == RING_USED, "wrong addresses",
		    "VQ_GET_INFO reports the VMM's ring addresses");
	expect_eq(vi.split.avail_index, RING_BASE,
		  "VQ_GET_INFO split.avail_index is the VMM's VHOST_SET_VRING_BASE");
	expect_eq(vi.ready, 1, "VQ_GET_INFO ready after VHOST_VDPA_SET_VRING_ENABLE");

	/* Kick with no kickfd installed: remembered... */
	if (write(kick, &one, sizeof(one)) != sizeof(one))
		note("write to the vhost kick eventfd failed: %s", strerror(errno));
	msleep(300);
	ef.fd = efd;
	expect_errno(sys(ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef)), 0,
		     "VQ_SETUP_KICKFD after a kick arrived");
	/* ... and delivered when the kickfd is installed. */
	expect_true(eventfd_wait(efd, 2000) > 0, "no kick",
		    "a kick that arrived without a kickfd is signalled on install");
	if (write(kick, &one, sizeof(one)) != sizeof(one))
		note("write to the vhost kick eventfd failed: %s", strerror(errno));
	expect_true(eventfd_wait(efd, 2000) > 0, "no kick", "a VMM kick reaches the kickfd");

	expect_errno(sys(ioctl(fd, VDUSE_VQ_INJECT_IRQ, &idx)), 0,
		     "VQ_INJECT_IRQ on a vq with a vhost-vdpa call eventfd");
	expect_true(eventfd_wait(call, 2000) > 0, "no interrupt",
		    "VQ_INJECT_IRQ signals the VMM's call eventfd");
	ef.fd = VDUSE_EVENTFD_DEASSIGN;
	ioctl(fd, VDUSE_VQ_SETUP_KICKFD, &ef);
	close(efd);
}

/*
 * 2.3/2.7 on the vhost-vdpa path of a v0 device: GET_VQ_STATE answers
 * reach VHOST_GET_VRING_BASE; an IOTLB update sends UPDATE_IOTLB over the
 * whole range, and IOTLB_GET_FD then hands out the VMM's memory file.
 */
static void test_vhost_v0_messages(int fd, int vfd)
{
	struct vhost_vring_state vs = { .index = 0 };
	struct vduse_dev_request req;
	struct vduse_iotlb_entry e;
	__u64 word = 0;
	void *ram;
	int memfd = -1, mfd;

	expect_errno(sys(ioctl(vfd, VHOST_GET_VRING_BASE, &vs)), 0,
		     "VHOST_GET_VRING_BASE (a GET_VQ_STATE request)");
	expect_eq(vs.num, VQ_STATE_BASE, "the avail index of the reply reaches vhost-vdpa");
	expect_true(devloop_last(&dl, VDUSE_GET_VQ_STATE, &req) && req.vq_state.index == 0,
		    "missing", "GET_VQ_STATE asked for vq 0");

	ram = pattern_memfd(VHOST_LEN, 0xa5, &memfd);
	if (!expect_true(ram != NULL, strerror(errno), "a shared memfd as guest memory"))
		return;
	expect_errno(vhost_iotlb_update(vfd, 0, VHOST_IOVA, VHOST_LEN, ram), 0,
		     "VHOST_IOTLB_UPDATE of guest memory (asid 0)");
	expect_true(devloop_last(&dl, VDUSE_UPDATE_IOTLB, &req), "missing",
		    "an UPDATE_IOTLB request arrived");
	expect_true(req.iova.start == 0 && req.iova.last == ~0ULL, "partial range",
		    "UPDATE_IOTLB (v0) covers [0, U64_MAX]");
	mfd = get_fd_at(fd, VHOST_IOVA + 0x10, &e, "vhost-vdpa guest memory");
	if (mfd >= 0) {
		expect_true(e.start == VHOST_IOVA && e.last == VHOST_IOVA + VHOST_LEN - 1,
			    "wrong range", "the region is the mapped guest memory range");
		expect_eq(e.offset, 0, "the region's offset is its offset in the memfd");
		if (map_and_read(mfd, &e, VHOST_IOVA + 0x10, &word, "guest memory"))
			expect_eq(word, 0xa5a5a5a5a5a5a5a5ULL,
				  "guest memory reads back through the returned fd");
		close(mfd);
	}
	munmap(ram, VHOST_LEN);
	close(memfd);
}

/* vq 0 set up as a VMM would, with a kick and a call eventfd. */
static long vhost_setup_vq0(int vfd, int kick, int call)
{
	struct vhost_vring_state vs = { .index = 0, .num = RING_NUM };
	struct vhost_vring_addr va = {
		.index = 0,
		.desc_user_addr = RING_DESC,
		.avail_user_addr = RING_AVAIL,
		.used_user_addr = RING_USED,
	};
	struct vhost_vring_file vf = { .index = 0, .fd = kick };

	if (ioctl(vfd, VHOST_SET_VRING_NUM, &vs))
		return -errno;
	if (ioctl(vfd, VHOST_SET_VRING_ADDR, &va))
		return -errno;
	vs.num = RING_BASE;
	if (ioctl(vfd, VHOST_SET_VRING_BASE, &vs))
		return -errno;
	if (ioctl(vfd, VHOST_SET_VRING_KICK, &vf))
		return -errno;
	vf.fd = call;
	if (ioctl(vfd, VHOST_SET_VRING_CALL, &vf))
		return -errno;
	vs.num = 1;
	if (ioctl(vfd, VHOST_VDPA_SET_VRING_ENABLE, &vs))
		return -errno;
	return 0;
}

/*
 * Feature negotiation through vhost-vdpa, up to DRIVER_OK, setting vq 0 up
 * on the way when kick >= 0; 0 or -errno.
 */
static long vhost_driver_ok(int vfd, unsigned long long features, int kick, int call)
{
	long r;
	__u8 st;

	if (ioctl(vfd, VHOST_SET_OWNER))
		return -errno;
	st = STATUS_ACK | STATUS_DRIVER;
	if (ioctl(vfd, VHOST_VDPA_SET_STATUS, &st))
		return -errno;
	if (ioctl(vfd, VHOST_SET_FEATURES, &features))
		return -errno;
	st |= STATUS_FEAT_OK;
	if (ioctl(vfd, VHOST_VDPA_SET_STATUS, &st))
		return -errno;
	if (kick >= 0) {
		r = vhost_setup_vq0(vfd, kick, call);
		if (r)
			return r;
	}
	st |= STATUS_DRV_OK;
	if (ioctl(vfd, VHOST_VDPA_SET_STATUS, &st))
		return -errno;
	return 0;
}

static void suspend_case(bool with_suspend)
{
	static struct create c;
	const char *n = dname(with_suspend ? "susp" : "nosusp");
	const char *what = with_suspend ? "SUSPEND device" : "device without SUSPEND";
	unsigned long long f = with_suspend ? 1ULL << VDUSE_F_SUSPEND : 0, bf = 0;
	int ctl = ctl_open_v(0), fd, vfd, suspends;
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);

	ioctl(ctl, VDUSE_SET_FEATURES, &f);
	cfg_blk(&c, n, 1);
	must_create(ctl, &c);
	fd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	vq_setup(fd, 0, 128);
	devloop_clear(&dl);
	devloop_start(&dl, fd);
	expect_eq(vdpa_add_unbound(n), 0, "vdpa dev add of the %s", what);
	expect_errno(vdpa_bind(n, "vhost_vdpa"), 0, "bind the %s to vhost_vdpa", what);
	vfd = vhost_open(n);
	if (expect_errno(vfd < 0 ? -errno : 0, 0, "open the vhost-vdpa node of the %s", what)) {
		expect_errno(sys(ioctl(vfd, VHOST_GET_BACKEND_FEATURES, &bf)), 0,
			     "VHOST_GET_BACKEND_FEATURES of the %s", what);
		expect_eq(!!(bf & 1ULL << VHOST_BACKEND_F_SUSPEND), with_suspend,
			  "VHOST_BACKEND_F_SUSPEND offered iff VDUSE_F_SUSPEND (%s)", what);
		bf &= 1ULL << VHOST_BACKEND_F_SUSPEND | 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2;
		ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &bf);
		expect_errno(vhost_driver_ok(vfd, c.hdr.features,
					     with_suspend ? -1 : kick, call), 0,
			     "vhost-vdpa drives the %s to DRIVER_OK", what);
		if (!with_suspend)
			test_vhost_vq(fd, kick, call);
		expect_errno(sys(ioctl(vfd, VHOST_VDPA_SUSPEND)),
			     with_suspend ? 0 : EOPNOTSUPP,
			     "VHOST_VDPA_SUSPEND of the %s", what);
		suspends = devloop_count(&dl, VDUSE_SUSPEND);
		expect_eq(suspends, with_suspend, "%s SUSPEND request reached the %s",
			  with_suspend ? "one" : "no", what);
		if (!with_suspend)
			test_vhost_v0_messages(fd, vfd);
		close(vfd);
	}
	devloop_dump(&dl, what);
	expect_eq(run("vdpa dev del %s", n), 0, "vdpa dev del of the %s", what);
	devloop_stop(&dl);
	close(fd);
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of the %s", what);
	close(ctl);
	close(kick);
	close(call);
}

static void test_suspend(void)
{
	suspend_case(false);
	suspend_case(true);
}

/*
 * 2.8 on the vhost-vdpa path: a v1 device with two groups and two address
 * spaces.  vhost-vdpa moves group 1 to address space 1 (SET_VQ_GROUP_ASID)
 * and maps guest memory there (UPDATE_IOTLB with iova_v2); IOTLB_GET_FD2
 * finds it in address space 1 only.
 */
static void test_vhost_v1(void)
{
	static struct create c;
	const char *n = dname("v1vhost");
	struct vhost_vring_state vs;
	struct vduse_vq_config vc;
	struct vduse_dev_request req;
	struct vduse_iotlb_entry_v2 e2;
	struct vduse_iotlb_entry e;
	struct vduse_iova_info ii;
	unsigned long long bf = 0;
	__u32 num = 0;
	__u64 word = 0;
	int ctl = ctl_open_v(1), fd, vfd, memfd = -1, i;
	long r;
	void *ram;

	cfg_blk(&c, n, 2);
	c.hdr.ngroups = 2;
	c.hdr.nas = 2;
	must_create(ctl, &c);
	fd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	for (i = 0; i < 2; i++) {
		memset(&vc, 0, sizeof(vc));
		vc.index = i;
		vc.max_size = 128;
		vc.group = i;
		ioctl(fd, VDUSE_VQ_SETUP, &vc);
	}
	devloop_clear(&dl);
	devloop_start(&dl, fd);
	expect_eq(vdpa_add_unbound(n), 0, "vdpa dev add of the v1 device");
	expect_errno(vdpa_bind(n, "vhost_vdpa"), 0, "bind the v1 device to vhost_vdpa");
	vfd = vhost_open(n);
	if (!expect_errno(vfd < 0 ? -errno : 0, 0, "open the vhost-vdpa node of the v1 device"))
		goto detach;
	ioctl(vfd, VHOST_GET_BACKEND_FEATURES, &bf);
	bf &= 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2 | 1ULL << VHOST_BACKEND_F_IOTLB_ASID;
	ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &bf);
	expect_errno(sys(ioctl(vfd, VHOST_SET_OWNER)), 0, "VHOST_SET_OWNER");
	expect_errno(sys(ioctl(vfd, VHOST_VDPA_GET_GROUP_NUM, &num)), 0,
		     "VHOST_VDPA_GET_GROUP_NUM");
	expect_eq(num, 2, "vhost-vdpa sees ngroups 2");
	num = 0;
	expect_errno(sys(ioctl(vfd, VHOST_VDPA_GET_AS_NUM, &num)), 0,
		     "VHOST_VDPA_GET_AS_NUM");
	expect_eq(num, 2, "vhost-vdpa sees nas 2");
	for (i = 0; i < 2; i++) {
		vs.index = i;
		vs.num = 99;
		expect_errno(sys(ioctl(vfd, VHOST_VDPA_GET_VRING_GROUP, &vs)), 0,
			     "VHOST_VDPA_GET_VRING_GROUP vq %d", i);
		expect_eq(vs.num, i, "vq %d is in group %d", i, i);
	}
	vs.index = 1;
	vs.num = 1;
	expect_errno(sys(ioctl(vfd, VHOST_VDPA_SET_GROUP_ASID, &vs)), 0,
		     "VHOST_VDPA_SET_GROUP_ASID group 1 -> address space 1");
	expect_true(devloop_last(&dl, VDUSE_SET_VQ_GROUP_ASID, &req) &&
		    req.vq_group_asid.group == 1 && req.vq_group_asid.asid == 1,
		    "missing", "a SET_VQ_GROUP_ASID request (group 1, asid 1) arrived");

	ram = pattern_memfd(VHOST_LEN, 0x3c, &memfd);
	if (!expect_true(ram != NULL, strerror(errno), "a shared memfd as guest memory (v1)"))
		goto close_vhost;
	expect_errno(vhost_iotlb_update(vfd, 1, VHOST_IOVA, VHOST_LEN, ram), 0,
		     "VHOST_IOTLB_UPDATE of guest memory in address space 1");
	expect_true(devloop_last(&dl, VDUSE_UPDATE_IOTLB, &req) &&
		    req.iova_v2.start == 0 && req.iova_v2.last == ~0ULL &&
		    req.iova_v2.asid == 1, "missing or wrong",
		    "UPDATE_IOTLB (v1) covers [0, U64_MAX] of asid 1");

	memset(&e2, 0, sizeof(e2));
	e2.start = e2.last = VHOST_IOVA + 0x20;
	e2.asid = 1;
	r = sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2));
	expect_errno(r, 0, "IOTLB_GET_FD2 on guest memory in asid 1");
	if (r >= 0) {
		expect_true(e2.start == VHOST_IOVA && e2.last == VHOST_IOVA + VHOST_LEN - 1 &&
			    e2.perm == VDUSE_ACCESS_RW && e2.offset == 0, "wrong entry",
			    "IOTLB_GET_FD2 reports the mapped range, RW, offset 0");
		memset(&e, 0, sizeof(e));
		e.offset = e2.offset;
		e.start = e2.start;
		e.last = e2.last;
		if (map_and_read((int)r, &e, VHOST_IOVA + 0x20, &word, "asid 1 memory"))
			expect_eq(word, 0x3c3c3c3c3c3c3c3cULL,
				  "asid 1 guest memory reads back through the returned fd");
		close((int)r);
	}
	memset(&e2, 0, sizeof(e2));
	e2.start = e2.last = VHOST_IOVA;
	e2.asid = 0;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2)), EINVAL,
		     "IOTLB_GET_FD2 finds nothing at that IOVA in asid 0");
	memset(&e, 0, sizeof(e));
	e.start = e.last = VHOST_IOVA;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e)), EINVAL,
		     "IOTLB_GET_FD (asid 0) finds nothing there either");
	memset(&e2, 0, sizeof(e2));
	e2.start = e2.last = VHOST_IOVA;
	e2.asid = 2;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2)), EINVAL,
		     "IOTLB_GET_FD2 with asid == nas");
	memset(&e2, 0, sizeof(e2));
	e2.start = e2.last = VHOST_IOVA;
	e2.asid = 1;
	e2.reserved[10] = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2)), EINVAL,
		     "IOTLB_GET_FD2 with reserved non-zero");
	memset(&e2, 0, sizeof(e2));
	e2.start = VHOST_IOVA + 1;
	e2.last = VHOST_IOVA;
	e2.asid = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2)), EINVAL,
		     "IOTLB_GET_FD2 with start > last");
	memset(&ii, 0, sizeof(ii));
	ii.start = ii.last = VHOST_IOVA;
	ii.asid = 1;
	expect_errno(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii)), 0,
		     "IOTLB_GET_INFO in asid 1");
	expect_true(ii.start == VHOST_IOVA && ii.last == VHOST_IOVA + VHOST_LEN - 1 &&
		    ii.capability == 0, "wrong info",
		    "IOTLB_GET_INFO reports the range without CAP_UMEM");
	munmap(ram, VHOST_LEN);
	close(memfd);
close_vhost:
	close(vfd);
	/* stock: releasing the vhost-vdpa fd sends no set_map. */
	memset(&e2, 0, sizeof(e2));
	e2.start = e2.last = VHOST_IOVA;
	e2.asid = 1;
	r = sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2));
	expect_errno(r, 0, "guest memory stays mapped after the vhost-vdpa fd is closed");
	if (r >= 0)
		close((int)r);
detach:
	devloop_dump(&dl, "v1 device on vhost-vdpa");
	expect_eq(run("vdpa dev del %s", n), 0, "vdpa dev del of the v1 device");
	memset(&e2, 0, sizeof(e2));
	e2.start = e2.last = VHOST_IOVA;
	e2.asid = 1;
	r = sys(ioctl(fd, VDUSE_IOTLB_GET_FD2, &e2));
	expect_errno(r, diverge("vhost-maps-after-del"),
		     "IOTLB_GET_FD2 on vhost-vdpa guest memory after vdpa dev del");
	if (r >= 0)
		close((int)r);
	expect_eq(dl.errors, 0, "the v1 device loop answered every request");
	devloop_stop(&dl);
	close(fd);
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of the v1 device");
	close(ctl);
}

/*
 * 2.3: a FAILED reply to SET_STATUS(FEATURES_OK) keeps the status from
 * sticking, so virtio_blk gives up (the virtio core then writes FAILED on
 * top of the status that did stick, 0x3); the device is not broken.
 */
static void test_failed_reply(void)
{
	static struct create c;
	const char *n = dname("failreply");
	struct vduse_vq_info vi;
	char seq[512], path[512];
	__u8 st[64];
	int ctl = ctl_open_v(0), fd, nst;

	cfg_blk(&c, n, 1);
	must_create(ctl, &c);
	fd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	vq_setup(fd, 0, 128);
	devloop_clear(&dl);
	dl.fail_status = STATUS_ACK | STATUS_DRIVER | STATUS_FEAT_OK;
	devloop_start(&dl, fd);
	expect_eq(vdpa_add_unbound(n), 0,
		  "vdpa dev add of the device that refuses FEATURES_OK");
	/* virtio_vdpa binds; it is virtio_blk that gives up. */
	expect_errno(vdpa_bind(n, "virtio_vdpa"), 0, "bind the refusing device to virtio_vdpa");
	snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s/virtio*/driver", n);
	expect_true(run("test ! -e %s", path) == 0, "virtio_blk bound",
		    "virtio_blk does not bind when FEATURES_OK is refused");
	devloop_statuses(&dl, seq, sizeof(seq), st, &nst);
	note("SET_STATUS sequence with FEATURES_OK refused: %s", seq);
	expect_true(nst > 0 && st[nst - 1] == (0x80 | STATUS_ACK | STATUS_DRIVER), seq,
		    "the refused FEATURES_OK did not stick: the driver sets FAILED on 0x3");
	expect_true(!devloop_wait_status(&dl, 0xf, 0), seq, "DRIVER_OK was never sent");
	expect_errno(vq_info(fd, 0, &vi), 0, "a FAILED reply does not break the device");
	expect_eq(run("vdpa dev del %s", n), 0, "vdpa dev del of the refusing device");
	devloop_stop(&dl);
	dl.fail_status = -1;
	close(fd);
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of the refusing device");
	close(ctl);
}

/*
 * 2.3: a request left unanswered past msg_timeout breaks the device for
 * good: ioctls fail with EPERM and poll reports POLLERR.
 */
static void test_broken(void)
{
	static struct create c;
	const char *n = dname("broken");
	struct vduse_dev_request req;
	struct vduse_vq_info vi;
	struct pollfd p;
	unsigned long long feat;
	int ctl = ctl_open_v(0), fd;
	pid_t child;

	cfg_blk(&c, n, 1);
	must_create(ctl, &c);
	fd = dev_open(n);
	expect_errno(sysfs_write(dev_attr(n, "msg_timeout"), "1"), 0,
		     "msg_timeout set to 1 s");
	vq_setup(fd, 0, 128);
	expect_eq(vdpa_add_unbound(n), 0, "vdpa dev add of the device left unanswered");
	child = vdpa_bind_async(n, "virtio_vdpa", fd);
	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	poll(&p, 1, 5000);
	expect_eq(sys(read(fd, &req, sizeof(req))), sizeof(req),
		  "read the first request and leave it unanswered");
	/* stock: the probe goes on (later requests fail at once) and binds. */
	expect_true(wait_child(child) >= 0, "hung",
		    "the bind returns once the request has timed out");
	memset(&p, 0, sizeof(p));
	p.fd = fd;
	p.events = POLLIN | POLLOUT;
	poll(&p, 1, 1000);
	expect_true(p.revents & POLLERR, "no POLLERR", "poll reports POLLERR on a broken device");
	expect_errno(vq_info(fd, 0, &vi), EPERM, "VQ_GET_INFO on a broken device");
	expect_errno(sys(ioctl(fd, VDUSE_DEV_GET_FEATURES, &feat)), EPERM,
		     "DEV_GET_FEATURES on a broken device");
	expect_errno(vq_setup(fd, 0, 128), EPERM, "VQ_SETUP on a broken device");
	expect_errno(sys(ioctl(fd, _IO(VDUSE_BASE, 0x7f))), EPERM,
		     "an unknown ioctl on a broken device");
	expect_eq(run("vdpa dev del %s", n), 0, "vdpa dev del of the broken device");
	expect_errno(destroy(ctl, n), EBUSY, "DESTROY_DEV of the broken device while open");
	close(fd);
	fd = dev_open_flags(n, 0);
	expect_errno(fd < 0 ? -errno : 0, 0, "reopen the broken device");
	if (fd >= 0) {
		expect_errno(vq_info(fd, 0, &vi), EPERM,
			     "the device stays broken across close and reopen");
		close(fd);
	}
	expect_errno(destroy(ctl, n), 0, "DESTROY_DEV of the broken device");
	close(ctl);
}

/* ------------------------------------------------------------------ */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run a group of checks and note how long it took. */
#define TIMED(fn) do { \
	double __t = now(); \
	fn(); \
	note(#fn ": %.1f s", now() - __t); \
} while (0)

static void pick_module(int argc, char **argv)
{
	const char *m = getenv("VDUSE_MODULE");
	char taint[32];
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--module") && i + 1 < argc)
			m = argv[++i];
		else if (!strncmp(argv[i], "--module=", 9))
			m = argv[i] + 9;
		else {
			fprintf(stderr, "usage: %s [--module ours|stock]\n", argv[0]);
			exit(2);
		}
	}
	if (!m || !*m) {
		/* An out-of-tree module carries the 'O' taint flag. */
		m = !sysfs_read("/sys/module/vduse/taint", taint, sizeof(taint)) &&
		    strchr(taint, 'O') ? "ours" : "stock";
		note("module not given, guessed from /sys/module/vduse/taint: %s", m);
	}
	if (strcmp(m, "ours") && strcmp(m, "stock")) {
		fprintf(stderr, "abi_behaviour: --module takes ours or stock\n");
		exit(2);
	}
	ours = !strcmp(m, "ours");
}

int main(int argc, char **argv)
{
	struct utsname u;
	int maj = 0, min = 0;
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pick_module(argc, argv);
	bits = sizeof(long) == 8 ? "64" : "32";
	page_size = sysconf(_SC_PAGESIZE);
	uname(&u);
	sscanf(u.release, "%d.%d", &maj, &min);
	kver = maj * 100 + min;
	note("abi_behaviour (%s-bit) against the %s module on %s", bits,
	     ours ? "our" : "stock", u.release);
	note("deliberate differences (check id: stock / ours: reason):");
	for (i = 0; i < ARRAY_SIZE(divergences); i++)
		note("  %s: %s / %s: %s", divergences[i].id,
		     errname(divergences[i].stock), errname(divergences[i].ours),
		     divergences[i].why);
	if (geteuid() != 0) {
		printf("Bail out! must run as root\n");
		return 1;
	}
	if (kver < 703 && !ours) {
		/* The stock module of an older kernel has an older ABI. */
		printf("1..0 # SKIP expectations are those of the 7.3 ABI; stock on %s\n",
		       u.release);
		return 0;
	}
	if (!path_exists(CTL_PATH)) {
		printf("Bail out! %s missing: is vduse loaded?\n", CTL_PATH);
		return 1;
	}
	cleanup_leftovers(dname(""));

	TIMED(test_nodes);
	TIMED(test_api_version);
	TIMED(test_features);
	TIMED(test_control_misc);
	TIMED(test_create);
	TIMED(test_create_long_name);
	TIMED(test_create_names);
	TIMED(test_create_fault);
	TIMED(test_destroy);
	TIMED(test_net_admin);
	TIMED(test_detached);
	TIMED(test_v1_detached);
	TIMED(test_attached_block);
	TIMED(test_queue_ready);
	TIMED(test_attached_net);
	TIMED(test_suspend);
	TIMED(test_vhost_v1);
	TIMED(test_failed_reply);
	TIMED(test_broken);

	printf("1..%d\n", tests);
	note("%d passed, %d failed", tests - failures, failures);
	return failures ? 1 : 0;
}
