// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_asid: virtqueue groups and address spaces (VDUSE API version 1)
 * seen from both ends, with vhost-vdpa as the driver.
 *
 * The program creates a VDUSE block device with two virtqueues, serves its
 * request channel in a thread (every request is answered OK and logged),
 * attaches it to the vDPA bus, binds it to vhost_vdpa and drives
 * /dev/vhost-vdpa-N directly: it moves group 1 to address space 1, maps
 * two different memfd regions at the same IOVA in address spaces 0 and 1,
 * and checks that VDUSE_IOTLB_GET_FD2 hands the device the right memory
 * for each address space (abi-facts.md sections 2.3, 2.7, 2.8).
 *
 * Usage: vhost_asid [--v0]
 *   default  API version 1 device, ngroups = 2, nas = 2, vq 1 in group 1
 *   --v0     API version 0 device: one group, one address space
 *
 * Prints one "ok - ..." or "not ok - ..." line per check, "# ..." notes,
 * and exits 1 when a check failed.  Runs as root in the test guest with
 * vduse, vdpa and vhost_vdpa loaded; turns vDPA driver autoprobe off
 * around "vdpa dev add" and restores it.
 */
#include <linux/vduse.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define CTL_PATH	"/dev/vduse/control"
#define AUTOPROBE	"/sys/bus/vdpa/drivers_autoprobe"
#define NVQS		2
#define REGION		8192UL		/* bytes mapped per region */
#define IOVA_SHARED	0x100000ULL	/* mapped in AS 0 and AS 1 */
#define IOVA_AS0_ONLY	0x200000ULL	/* mapped in AS 0 only */
#define PAT_AS0		0xa0
#define PAT_AS1		0xb1
#define PAT_AS0_ONLY	0xc2
#define PAT_DEVICE	0x5d

#define S_ACK		0x01
#define S_DRIVER	0x02
#define S_DRIVER_OK	0x04
#define S_FEATURES_OK	0x08

static bool v1 = true;
static char name[64];
static int failures;

/* ------------------------------------------------------------------ */
/* Reporting                                                            */
/* ------------------------------------------------------------------ */

static void __attribute__((format(printf, 3, 4)))
report(bool pass, const char *diag, const char *fmt, ...)
{
	va_list ap;

	if (!pass)
		failures++;
	printf("%sok - ", pass ? "" : "not ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!pass && diag && *diag)
		printf(" # %s", diag);
	putchar('\n');
	fflush(stdout);
}

/* r: result of a syscall (-1 + errno, or >= 0); want: 0 or an errno */
static bool __attribute__((format(printf, 3, 4)))
expect_errno(long r, int want, const char *fmt, ...)
{
	int got = r < 0 ? errno : 0;
	char diag[96];
	bool pass = got == want;
	va_list ap;

	snprintf(diag, sizeof(diag), "got %s want %s", errname(got),
		 errname(want));
	if (!pass)
		failures++;
	printf("%sok - ", pass ? "" : "not ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!pass)
		printf(" # %s", diag);
	putchar('\n');
	fflush(stdout);
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
	if (!pass)
		failures++;
	printf("%sok - ", pass ? "" : "not ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!pass)
		printf(" # %s", diag);
	putchar('\n');
	fflush(stdout);
	return pass;
}

static void __attribute__((noreturn, format(printf, 1, 2)))
bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (%s)\n", errname(errno));
	exit(1);
}

/* ------------------------------------------------------------------ */
/* sysfs and commands                                                   */
/* ------------------------------------------------------------------ */

static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return errno;
	n = write(fd, val, strlen(val));
	e = n < 0 ? errno : 0;
	close(fd);
	return e;
}

static int sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int __attribute__((format(printf, 1, 2))) run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st;
}

static int kernel_major(void)
{
	struct utsname u;

	if (uname(&u))
		return 0;
	return atoi(u.release);
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* The device side: request loop                                        */
/* ------------------------------------------------------------------ */

#define LOG_MAX 256

struct iotlb_msg {
	__u64 start, last;
	__u32 asid;
};

static struct {
	pthread_mutex_t lock;
	int n_status;
	__u8 status[LOG_MAX];
	int n_iotlb;
	struct iotlb_msg iotlb[LOG_MAX];
	int n_gasid;
	struct vduse_vq_group_asid gasid[LOG_MAX];
	int n_vqstate;
	int n_other;
	int errors;
	bool broken;
} dlog = { .lock = PTHREAD_MUTEX_INITIALIZER };

static volatile bool loop_stop;
static pthread_t loop_thread;
static int dev_fd = -1;

static void log_clear(void)
{
	pthread_mutex_lock(&dlog.lock);
	dlog.n_status = dlog.n_iotlb = dlog.n_gasid = 0;
	dlog.n_vqstate = dlog.n_other = 0;
	pthread_mutex_unlock(&dlog.lock);
}

static void *loop_fn(void *arg)
{
	struct vduse_dev_request req;
	struct vduse_dev_response resp;
	struct pollfd p;
	ssize_t n;

	(void)arg;
	while (!loop_stop) {
		p.fd = dev_fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, 50) <= 0)
			continue;
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			pthread_mutex_lock(&dlog.lock);
			dlog.broken = true;
			pthread_mutex_unlock(&dlog.lock);
			break;
		}
		n = read(dev_fd, &req, sizeof(req));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n != sizeof(req)) {
			pthread_mutex_lock(&dlog.lock);
			dlog.errors++;
			pthread_mutex_unlock(&dlog.lock);
			msleep(10);
			continue;
		}
		memset(&resp, 0, sizeof(resp));
		resp.request_id = req.request_id;
		resp.result = VDUSE_REQ_RESULT_OK;
		/* Log before answering: the kernel caller returns after it. */
		pthread_mutex_lock(&dlog.lock);
		switch (req.type) {
		case VDUSE_SET_STATUS:
			if (dlog.n_status < LOG_MAX)
				dlog.status[dlog.n_status++] = req.s.status;
			break;
		case VDUSE_UPDATE_IOTLB:
			if (dlog.n_iotlb < LOG_MAX) {
				struct iotlb_msg *m = &dlog.iotlb[dlog.n_iotlb++];

				m->start = req.iova_v2.start;
				m->last = req.iova_v2.last;
				m->asid = v1 ? req.iova_v2.asid : 0;
			}
			break;
		case VDUSE_SET_VQ_GROUP_ASID:
			if (dlog.n_gasid < LOG_MAX)
				dlog.gasid[dlog.n_gasid++] = req.vq_group_asid;
			break;
		case VDUSE_GET_VQ_STATE:
			dlog.n_vqstate++;
			resp.vq_state.index = req.vq_state.index;
			resp.vq_state.split.avail_index = 0;
			break;
		default:
			dlog.n_other++;
			break;
		}
		pthread_mutex_unlock(&dlog.lock);
		if (write(dev_fd, &resp, sizeof(resp)) != sizeof(resp)) {
			pthread_mutex_lock(&dlog.lock);
			dlog.errors++;
			pthread_mutex_unlock(&dlog.lock);
		}
	}
	return NULL;
}

/* Number of logged UPDATE_IOTLB messages of asid that cover [a, b]. */
static int iotlb_seen(__u32 asid, __u64 a, __u64 b, int *other_asid)
{
	int i, n = 0, other = 0;

	pthread_mutex_lock(&dlog.lock);
	for (i = 0; i < dlog.n_iotlb; i++) {
		struct iotlb_msg *m = &dlog.iotlb[i];

		note("UPDATE_IOTLB asid %u [0x%llx, 0x%llx]", m->asid,
		     (unsigned long long)m->start, (unsigned long long)m->last);
		if (m->asid != asid)
			other++;
		else if (m->start <= a && m->last >= b)
			n++;
	}
	pthread_mutex_unlock(&dlog.lock);
	if (other_asid)
		*other_asid = other;
	return n;
}

static int gasid_count(void)
{
	int n;

	pthread_mutex_lock(&dlog.lock);
	n = dlog.n_gasid;
	pthread_mutex_unlock(&dlog.lock);
	return n;
}

/* ------------------------------------------------------------------ */
/* Setup                                                                */
/* ------------------------------------------------------------------ */

static int ctl_fd = -1;

static int create_device(void)
{
	struct {
		struct vduse_dev_config hdr;
		struct virtio_blk_config blk;
	} c;
	__u64 ver = v1 ? VDUSE_API_VERSION_1 : VDUSE_API_VERSION;

	ctl_fd = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	if (ctl_fd < 0)
		bail("open %s", CTL_PATH);
	if (!expect_errno(ioctl(ctl_fd, VDUSE_SET_API_VERSION, &ver), 0,
			  "SET_API_VERSION %llu", (unsigned long long)ver))
		return -1;

	memset(&c, 0, sizeof(c));
	snprintf(c.hdr.name, sizeof(c.hdr.name), "%s", name);
	c.hdr.device_id = VIRTIO_ID_BLOCK;
	c.hdr.features = 1ULL << VIRTIO_F_VERSION_1 |
			 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	c.hdr.vq_num = NVQS;
	c.hdr.vq_align = 4096;
	c.hdr.ngroups = v1 ? 2 : 0;
	c.hdr.nas = v1 ? 2 : 0;
	c.hdr.config_size = sizeof(c.blk);
	c.blk.capacity = 2048;
	if (!expect_errno(ioctl(ctl_fd, VDUSE_CREATE_DEV, &c), 0,
			  "CREATE_DEV %s (ngroups %u, nas %u)", name,
			  c.hdr.ngroups, c.hdr.nas))
		return -1;
	return 0;
}

static int vq_setup(int fd, __u32 idx, __u32 group)
{
	struct vduse_vq_config vq;

	memset(&vq, 0, sizeof(vq));
	vq.index = idx;
	vq.max_size = 256;
	vq.group = group;
	return ioctl(fd, VDUSE_VQ_SETUP, &vq);
}

static char autoprobe_saved[16];

/* vdpa dev add without probing, then bind vhost_vdpa explicitly. */
static int attach_vhost(void)
{
	char path[256];
	int r, e;

	if (sysfs_read(AUTOPROBE, autoprobe_saved, sizeof(autoprobe_saved)))
		strcpy(autoprobe_saved, "1");
	sysfs_write(AUTOPROBE, "0");
	r = run("vdpa dev add name %s mgmtdev vduse", name);
	sysfs_write(AUTOPROBE, autoprobe_saved);
	if (!expect_errno(r ? (errno = EIO, -1) : 0, 0, "vdpa dev add %s", name))
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/vdpa/drivers/vhost_vdpa/bind");
	e = sysfs_write(path, name);
	if (!expect_errno(e ? (errno = e, -1) : 0, 0, "bind %s to vhost_vdpa", name))
		return -1;
	return 0;
}

/* Open /dev/vhost-vdpa-N of our vDPA device. */
static int open_vhost(void)
{
	char dir[256], dev[300] = "";
	struct dirent *de;
	DIR *d;
	int i, fd;

	snprintf(dir, sizeof(dir), "/sys/bus/vdpa/devices/%s", name);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "vhost-vdpa-", 11))
			snprintf(dev, sizeof(dev), "/dev/%s", de->d_name);
	closedir(d);
	if (!dev[0]) {
		errno = ENOENT;
		return -1;
	}
	note("vhost device: %s", dev);
	for (i = 0; i < 50; i++) {
		fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			return fd;
		msleep(100);
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Memory regions                                                       */
/* ------------------------------------------------------------------ */

struct region {
	int fd;
	unsigned char *p;
	struct stat st;
};

static void region_make(struct region *r, const char *tag, int pat)
{
	r->fd = memfd_create(tag, MFD_CLOEXEC);
	if (r->fd < 0 || ftruncate(r->fd, REGION))
		bail("memfd_create %s", tag);
	r->p = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->p == MAP_FAILED)
		bail("mmap memfd %s", tag);
	memset(r->p, pat, REGION);
	snprintf((char *)r->p, 64, "vhost_asid region %s", tag);
	if (fstat(r->fd, &r->st))
		bail("fstat memfd");
}

static bool pattern_is(const unsigned char *p, const char *tag, int pat)
{
	char head[64];
	size_t i, hl;

	snprintf(head, sizeof(head), "vhost_asid region %s", tag);
	hl = strlen(head) + 1;
	if (memcmp(p, head, hl))
		return false;
	for (i = 64; i < REGION; i++)
		if (p[i] != pat)
			return false;
	return true;
}

static int iotlb_msg(int vfd, __u32 type, __u32 asid, __u64 iova, __u64 size,
		     void *uaddr)
{
	struct vhost_msg_v2 m;

	memset(&m, 0, sizeof(m));
	m.type = VHOST_IOTLB_MSG_V2;
	m.asid = asid;
	m.iotlb.type = type;
	m.iotlb.iova = iova;
	m.iotlb.size = size;
	m.iotlb.uaddr = (__u64)(uintptr_t)uaddr;
	m.iotlb.perm = VHOST_ACCESS_RW;
	if (write(vfd, &m, sizeof(m)) != sizeof(m))
		return -1;
	return 0;
}

/*
 * VDUSE_IOTLB_GET_FD2 (or GET_FD with use_v0) for one IOVA; on success
 * maps the region and returns the pointer to its first byte, else NULL
 * with errno set.  *len gets the region's length, *st the file's stat.
 */
static unsigned char *get_region(__u32 asid, __u64 iova, bool use_v0,
				 struct vduse_iotlb_entry_v2 *out,
				 struct stat *st, void **map, size_t *maplen)
{
	struct vduse_iotlb_entry_v2 e;
	unsigned char *p;
	int fd, saved;

	memset(&e, 0, sizeof(e));
	e.start = iova;
	e.last = iova;
	e.asid = asid;
	if (use_v0) {
		struct vduse_iotlb_entry e0;

		memset(&e0, 0, sizeof(e0));
		e0.start = iova;
		e0.last = iova;
		fd = ioctl(dev_fd, VDUSE_IOTLB_GET_FD, &e0);
		e.offset = e0.offset;
		e.start = e0.start;
		e.last = e0.last;
		e.perm = e0.perm;
	} else {
		fd = ioctl(dev_fd, VDUSE_IOTLB_GET_FD2, &e);
	}
	if (fd < 0)
		return NULL;
	*out = e;
	if (fstat(fd, st)) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	*maplen = e.offset + (e.last - e.start + 1);
	p = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	saved = errno;
	close(fd);
	if (p == MAP_FAILED) {
		errno = saved;
		return NULL;
	}
	*map = p;
	return p + e.offset;
}

/*
 * The device looks up iova in asid and must find region r (tag, pat),
 * mapped at [iova, iova + REGION - 1] read-write.
 */
static void check_lookup(const char *what, __u32 asid, __u64 iova,
			 bool use_v0, struct region *r, const char *tag, int pat)
{
	struct vduse_iotlb_entry_v2 e;
	struct stat st;
	void *map = NULL;
	size_t maplen = 0;
	unsigned char *p;

	p = get_region(asid, iova, use_v0, &e, &st, &map, &maplen);
	if (!expect_errno(p ? 0 : -1, 0, "%s finds a region", what))
		return;
	expect_eq(e.start, iova, "%s: region start", what);
	expect_eq(e.last, iova + REGION - 1, "%s: region last", what);
	expect_eq(e.perm, VDUSE_ACCESS_RW, "%s: region is read-write", what);
	report(st.st_dev == r->st.st_dev && st.st_ino == r->st.st_ino,
	       "another file", "%s: the fd is the driver's memfd %s", what, tag);
	report(pattern_is(p, tag, pat), "wrong bytes",
	       "%s: the device reads the bytes the driver wrote into %s",
	       what, tag);
	munmap(map, maplen);
}

static void check_no_lookup(const char *what, __u32 asid, __u64 iova, int want)
{
	struct vduse_iotlb_entry_v2 e;
	struct stat st;
	void *map = NULL;
	size_t maplen = 0;
	unsigned char *p;

	p = get_region(asid, iova, false, &e, &st, &map, &maplen);
	expect_errno(p ? 0 : -1, want, "%s", what);
	if (p)
		munmap(map, maplen);
}

/* ------------------------------------------------------------------ */
/* The tests                                                            */
/* ------------------------------------------------------------------ */

static void vhost_ioctl_u64(int vfd, unsigned long cmd, __u64 *v, const char *what)
{
	expect_errno(ioctl(vfd, cmd, v), 0, "%s", what);
}

static int set_group_asid(int vfd, __u32 group, __u32 asid)
{
	struct vhost_vring_state s = { .index = group, .num = asid };

	return ioctl(vfd, VHOST_VDPA_SET_GROUP_ASID, &s);
}

static void test_groups(int vfd)
{
	struct vhost_vring_state s;
	unsigned int as_num = 0;
	__u32 group_num = 0;
	int n;

	expect_errno(ioctl(vfd, VHOST_VDPA_GET_GROUP_NUM, &group_num), 0,
		     "VHOST_VDPA_GET_GROUP_NUM");
	expect_eq(group_num, v1 ? 2 : 1, "the device has %d vq groups", v1 ? 2 : 1);
	expect_errno(ioctl(vfd, VHOST_VDPA_GET_AS_NUM, &as_num), 0,
		     "VHOST_VDPA_GET_AS_NUM");
	expect_eq(as_num, v1 ? 2 : 1, "the device has %d address spaces", v1 ? 2 : 1);

	for (n = 0; n < NVQS; n++) {
		int r;

		memset(&s, 0, sizeof(s));
		s.index = n;
		s.num = 0xdead;
		r = ioctl(vfd, VHOST_VDPA_GET_VRING_GROUP, &s);
		if (r < 0 && errno == EOPNOTSUPP && !v1 && kernel_major() < 7) {
			/* get_vq_group came with API version 1 (7.0). */
			report(true, "", "VHOST_VDPA_GET_VRING_GROUP vq %d: not "
			       "supported before 7.0 (EOPNOTSUPP)", n);
			continue;
		}
		if (expect_errno(r, 0, "VHOST_VDPA_GET_VRING_GROUP vq %d", n))
			expect_eq(s.num, v1 ? n : 0, "vq %d is in group %d", n,
				  v1 ? n : 0);
	}

	/* Invalid moves never reach the device. */
	log_clear();
	expect_errno(set_group_asid(vfd, v1 ? 1 : 0, v1 ? 2 : 1), EINVAL,
		     "SET_GROUP_ASID with asid >= nas fails with EINVAL");
	report(set_group_asid(vfd, v1 ? 2 : 1, 0) < 0, "",
	       "SET_GROUP_ASID with group >= ngroups fails");
	expect_eq(gasid_count(), 0,
		  "no SET_VQ_GROUP_ASID request for refused moves");

	if (!v1)
		return;
	log_clear();
	expect_errno(set_group_asid(vfd, 1, 1), 0, "SET_GROUP_ASID group 1 -> asid 1");
	pthread_mutex_lock(&dlog.lock);
	n = dlog.n_gasid;
	report(n == 1 && dlog.gasid[0].group == 1 && dlog.gasid[0].asid == 1,
	       "", "the device got SET_VQ_GROUP_ASID group 1 asid 1 (%d requests%s)",
	       n, n ? "" : ", none");
	for (int i = 0; i < n; i++)
		note("SET_VQ_GROUP_ASID group %u asid %u", dlog.gasid[i].group,
		     dlog.gasid[i].asid);
	pthread_mutex_unlock(&dlog.lock);
}

static void test_iotlb(int vfd)
{
	struct region a, b, c;
	int n, other;

	region_make(&a, "as0", PAT_AS0);
	region_make(&b, "as1", PAT_AS1);
	region_make(&c, "as0-only", PAT_AS0_ONLY);

	/* AS 0: one update per message. */
	log_clear();
	expect_errno(iotlb_msg(vfd, VHOST_IOTLB_UPDATE, 0, IOVA_SHARED, REGION, a.p),
		     0, "IOTLB update asid 0 iova 0x%llx", IOVA_SHARED);
	n = iotlb_seen(0, IOVA_SHARED, IOVA_SHARED + REGION - 1, &other);
	report(n >= 1, "none", "the device got UPDATE_IOTLB for asid 0 covering the range");
	expect_eq(other, 0, "no UPDATE_IOTLB for another asid");
	log_clear();
	expect_errno(iotlb_msg(vfd, VHOST_IOTLB_UPDATE, 0, IOVA_AS0_ONLY, REGION, c.p),
		     0, "IOTLB update asid 0 iova 0x%llx", IOVA_AS0_ONLY);

	if (v1) {
		/* AS 1: the same IOVA, other memory, inside a batch. */
		log_clear();
		expect_errno(iotlb_msg(vfd, VHOST_IOTLB_BATCH_BEGIN, 1, 0, 0, NULL),
			     0, "IOTLB batch begin asid 1");
		expect_errno(iotlb_msg(vfd, VHOST_IOTLB_UPDATE, 1, IOVA_SHARED,
				       REGION, b.p),
			     0, "IOTLB update asid 1 iova 0x%llx (batched)", IOVA_SHARED);
		expect_errno(iotlb_msg(vfd, VHOST_IOTLB_BATCH_END, 1, 0, 0, NULL),
			     0, "IOTLB batch end asid 1");
		n = iotlb_seen(1, IOVA_SHARED, IOVA_SHARED + REGION - 1, &other);
		report(n >= 1, "none",
		       "the device got UPDATE_IOTLB for asid 1 covering the range");
		expect_eq(other, 0, "no UPDATE_IOTLB for another asid");
	} else {
		log_clear();
		/* vhost reports every failed IOTLB message as EFAULT. */
		n = iotlb_msg(vfd, VHOST_IOTLB_UPDATE, 1, IOVA_SHARED, REGION, b.p);
		note("IOTLB update asid 1 on a one-AS device: %s",
		     n ? errname(errno) : "success");
		report(n < 0, "succeeded", "IOTLB update asid 1 on a one-AS device fails");
		pthread_mutex_lock(&dlog.lock);
		n = dlog.n_iotlb;
		pthread_mutex_unlock(&dlog.lock);
		expect_eq(n, 0, "no UPDATE_IOTLB for the refused update");
	}

	/* The device's view. */
	if (v1) {
		check_lookup("GET_FD2 asid 0 iova 0x100000", 0, IOVA_SHARED,
			     false, &a, "as0", PAT_AS0);
		check_lookup("GET_FD2 asid 1 iova 0x100000", 1, IOVA_SHARED,
			     false, &b, "as1", PAT_AS1);
		check_lookup("GET_FD2 asid 0 iova 0x200000", 0, IOVA_AS0_ONLY,
			     false, &c, "as0-only", PAT_AS0_ONLY);
		check_no_lookup("GET_FD2 asid 1 of an IOVA mapped only in asid 0 fails with EINVAL",
				1, IOVA_AS0_ONLY, EINVAL);
		check_no_lookup("GET_FD2 with asid == nas fails with EINVAL",
				2, IOVA_SHARED, EINVAL);
		check_no_lookup("GET_FD2 with asid 0xffffffff fails with EINVAL",
				0xffffffffu, IOVA_SHARED, EINVAL);
	}
	check_lookup("GET_FD (address space 0) iova 0x100000", 0, IOVA_SHARED,
		     true, &a, "as0", PAT_AS0);

	if (v1) {
		/* Device writes land in the driver's memory of that AS. */
		struct vduse_iotlb_entry_v2 e;
		struct stat st;
		void *map = NULL;
		size_t maplen = 0;
		unsigned char *p = get_region(1, IOVA_SHARED, false, &e, &st,
					      &map, &maplen);

		if (p) {
			memset(p + 4096, PAT_DEVICE, 16);
			munmap(map, maplen);
		}
		report(p && b.p[4096] == PAT_DEVICE && b.p[4111] == PAT_DEVICE &&
		       a.p[4096] == PAT_AS0, "",
		       "a device write through asid 1 lands in the asid 1 memfd only");

		/* Unmapping in AS 1 leaves AS 0 alone. */
		log_clear();
		expect_errno(iotlb_msg(vfd, VHOST_IOTLB_INVALIDATE, 1, IOVA_SHARED,
				       REGION, NULL),
			     0, "IOTLB invalidate asid 1 iova 0x%llx", IOVA_SHARED);
		n = iotlb_seen(1, IOVA_SHARED, IOVA_SHARED + REGION - 1, &other);
		report(n >= 1, "none",
		       "the device got UPDATE_IOTLB for asid 1 after the invalidate");
		expect_eq(other, 0, "no UPDATE_IOTLB for another asid");
		check_no_lookup("GET_FD2 asid 1 after the invalidate fails with EINVAL",
				1, IOVA_SHARED, EINVAL);
		check_lookup("GET_FD2 asid 0 after invalidating asid 1", 0,
			     IOVA_SHARED, false, &a, "as0", PAT_AS0);
	}

	munmap(a.p, REGION);
	munmap(b.p, REGION);
	munmap(c.p, REGION);
	close(a.fd);
	close(b.fd);
	close(c.fd);
}

static int set_status(int vfd, __u8 st)
{
	return ioctl(vfd, VHOST_VDPA_SET_STATUS, &st);
}

/* Group moves are refused once the driver is running. */
static void test_driver_ok(int vfd)
{
	__u64 feat = 0;
	__u8 st = 0;
	int r, e, n;

	if (!expect_errno(ioctl(vfd, VHOST_GET_FEATURES, &feat), 0,
			  "VHOST_GET_FEATURES"))
		return;
	feat &= 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	expect_errno(ioctl(vfd, VHOST_SET_FEATURES, &feat), 0, "VHOST_SET_FEATURES");
	log_clear();
	expect_errno(set_status(vfd, S_ACK), 0, "status ACKNOWLEDGE");
	expect_errno(set_status(vfd, S_ACK | S_DRIVER), 0, "status DRIVER");
	expect_errno(set_status(vfd, S_ACK | S_DRIVER | S_FEATURES_OK), 0,
		     "status FEATURES_OK");
	expect_errno(set_status(vfd, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK),
		     0, "status DRIVER_OK");
	expect_errno(ioctl(vfd, VHOST_VDPA_GET_STATUS, &st), 0, "VHOST_VDPA_GET_STATUS");
	expect_eq(st, 0xf, "the status stuck at DRIVER_OK");
	pthread_mutex_lock(&dlog.lock);
	n = dlog.n_status;
	report(n == 4 && dlog.status[n - 1] == 0xf, "",
	       "the device got the four SET_STATUS requests (%d)", n);
	pthread_mutex_unlock(&dlog.lock);

	if (v1) {
		/* Errnos as the stock 7.3 module and vhost_vdpa give them. */
		log_clear();
		r = set_group_asid(vfd, 1, 0);
		e = errno;
		note("SET_GROUP_ASID after DRIVER_OK: %s", r ? errname(e) : "success");
		errno = e;
		expect_errno(r, EBUSY, "SET_GROUP_ASID after DRIVER_OK fails with EBUSY");
		expect_eq(gasid_count(), 0,
			  "no SET_VQ_GROUP_ASID request after DRIVER_OK");
		expect_errno(vq_setup(dev_fd, 1, 0), EINVAL,
			     "VQ_SETUP changing a vq's group after DRIVER_OK fails with EINVAL");
	} else {
		/* Version 0 has no groups to protect: VQ_SETUP always works. */
		expect_errno(vq_setup(dev_fd, 1, 0), 0,
			     "VQ_SETUP after DRIVER_OK works on a v0 device");
	}

	log_clear();
	expect_errno(set_status(vfd, 0), 0, "status 0 (reset)");
	pthread_mutex_lock(&dlog.lock);
	n = dlog.n_status;
	report(n >= 1 && dlog.status[n - 1] == 0, "",
	       "the device got SET_STATUS 0");
	pthread_mutex_unlock(&dlog.lock);
}

static void teardown_device(bool attached)
{
	char buf[VDUSE_NAME_MAX];

	if (attached)
		expect_errno(run("vdpa dev del %s", name) ? (errno = EIO, -1) : 0,
			     0, "vdpa dev del %s", name);
	loop_stop = true;
	pthread_join(loop_thread, NULL);
	pthread_mutex_lock(&dlog.lock);
	expect_eq(dlog.errors, 0, "the request loop read and answered every request");
	expect_eq(dlog.n_other, 0, "no request of an unexpected type");
	report(!dlog.broken, "", "the device never reported POLLERR");
	pthread_mutex_unlock(&dlog.lock);
	close(dev_fd);
	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", name);
	expect_errno(ioctl(ctl_fd, VDUSE_DESTROY_DEV, buf), 0, "DESTROY_DEV %s", name);
	close(ctl_fd);
}

int main(int argc, char **argv)
{
	__u64 bf = 0, want;
	char path[300];
	int vfd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "--v0"))
		v1 = false;
	else if (argc > 1)
		bail("usage: vhost_asid [--v0]");
	snprintf(name, sizeof(name), "asid-%s", v1 ? "v1" : "v0");
	note("vhost_asid: API version %d device %s", v1 ? 1 : 0, name);

	if (create_device())
		return 1;
	snprintf(path, sizeof(path), "/dev/vduse/%s", name);
	dev_fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev_fd < 0)
		bail("open %s", path);
	expect_errno(vq_setup(dev_fd, 0, 0), 0, "VQ_SETUP vq 0 group 0");
	if (v1) {
		expect_errno(vq_setup(dev_fd, 1, 2), EINVAL,
			     "VQ_SETUP with group == ngroups fails with EINVAL");
		expect_errno(vq_setup(dev_fd, 1, 1), 0, "VQ_SETUP vq 1 group 1");
	} else {
		expect_errno(vq_setup(dev_fd, 1, 1), EINVAL,
			     "VQ_SETUP with group 1 on a v0 device fails with EINVAL");
		expect_errno(vq_setup(dev_fd, 1, 0), 0, "VQ_SETUP vq 1 group 0");
	}
	if (pthread_create(&loop_thread, NULL, loop_fn, NULL))
		bail("pthread_create");

	if (attach_vhost()) {
		teardown_device(false);
		return 1;
	}
	vfd = open_vhost();
	if (!expect_errno(vfd, 0, "open the vhost-vdpa node")) {
		teardown_device(true);
		return 1;
	}

	expect_errno(ioctl(vfd, VHOST_SET_OWNER, NULL), 0, "VHOST_SET_OWNER");
	vhost_ioctl_u64(vfd, VHOST_GET_BACKEND_FEATURES, &bf,
			"VHOST_GET_BACKEND_FEATURES");
	want = 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2 |
	       1ULL << VHOST_BACKEND_F_IOTLB_BATCH |
	       1ULL << VHOST_BACKEND_F_IOTLB_ASID;
	note("backend features 0x%llx", (unsigned long long)bf);
	expect_eq(bf & want, want, "backend features offer IOTLB_MSG_V2, IOTLB_BATCH, IOTLB_ASID");
	vhost_ioctl_u64(vfd, VHOST_SET_BACKEND_FEATURES, &want,
			"VHOST_SET_BACKEND_FEATURES");

	test_groups(vfd);
	test_iotlb(vfd);
	test_driver_ok(vfd);

	close(vfd);
	teardown_device(true);
	printf("# %d failed\n", failures);
	return failures ? 1 : 0;
}
