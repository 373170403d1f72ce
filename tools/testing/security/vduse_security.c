// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_security: the helper and the C checks of the security suite
 * (tools/testing/suites/security.sh).  Built natively and as an i386
 * binary; the suite runs both against the same module and compares what
 * each was told.
 *
 * Subcommands:
 *   open PATH              open(2) O_RDWR, print the errno name
 *   sysfs-write PATH VAL   one write(2), print the errno name
 *   create blk|net NAME    CREATE_DEV (API 0), print the errno name
 *   destroy NAME           DESTROY_DEV, print the errno name
 *   run                    nothing uninitialised reaches userspace, the
 *                          umem RLIMIT_MEMLOCK limit (TAP lines), and the
 *                          answers of a core set of ioctls ("= KEY VALUE")
 *   iotlb-limit N          the domain IOTLB holds N entries and no more
 *                          (module loaded with max_iotlb_entries=N)
 *
 * TAP lines are "ok - [64] what" / "not ok - [64] what"; "# ..." is
 * commentary.  Answer lines never carry device names or pointers, so the
 * 32-bit and 64-bit runs must print the same ones.
 */
#include <linux/vduse.h>
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
#include <setjmp.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "vduse_test.h"

#define BOUNCE		1048576ULL
#define STATUS_DRV_OK	0x04

static int tests, failures;
static const char *bits;	/* "64" or "32" */
static long page_size;
static bool ours;
static int kver;		/* major * 100 + minor */
/* abi-facts 1.3: stock before 7.2 has no i386 GET_FD / VQ_GET_INFO */
static bool no_compat;

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static bool __attribute__((format(printf, 3, 4)))
check(bool pass, const char *diag, const char *fmt, ...)
{
	va_list ap;

	tests++;
	if (!pass)
		failures++;
	printf("%sok - [%s] ", pass ? "" : "not ", bits);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!pass && diag)
		printf("#   %s\n", diag);
	fflush(stdout);
	return pass;
}

/* An answer line for the 32/64-bit comparison. */
static void __attribute__((format(printf, 1, 2))) answer(const char *fmt, ...)
{
	va_list ap;

	printf("= ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static const char *ename(long r)
{
	return errname(r < 0 ? (int)-r : 0);
}

/*
 * Every byte of buf[from, to) is zero or the caller's fill byte: nothing
 * the kernel did not mean to write.
 */
static bool only_fill(const void *buf, size_t from, size_t to, __u8 fill,
		      char *diag, size_t dlen)
{
	const __u8 *b = buf;
	size_t i;

	for (i = from; i < to; i++)
		if (b[i] != 0 && b[i] != fill) {
			snprintf(diag, dlen, "byte %zu is 0x%02x (fill 0x%02x)",
				 i, b[i], fill);
			return false;
		}
	return true;
}

/* ------------------------------------------------------------------ */
/* Devices                                                             */
/* ------------------------------------------------------------------ */

/* The MAC of every net device; test_config_tail looks for it. */
static const __u8 net_mac[6] = { 0x02, 0x5e, 0xc0, 0, 0, 1 };

static const char *dname(const char *what)
{
	static char names[4][64];
	static int slot;
	char *n = names[slot++ % 4];

	snprintf(n, 64, "sec%s-%s", bits, what);
	return n;
}

/*
 * The block device of these checks: two queues without MQ (the driver
 * uses one) and seg_max 0x5ec0.
 */
static void sec_cfg_blk(struct create *c, const char *name)
{
	struct virtio_blk_config *blk = (void *)c->hdr.config;

	cfg_blk(c, name, 1);
	c->hdr.vq_num = 2;
	blk->seg_max = 0x5ec0;
}

/* ------------------------------------------------------------------ */
/* A device loop that answers requests and inspects every one of them  */
/* ------------------------------------------------------------------ */

#define VQ_STATE_BASE	0x2340

struct devloop {
	int fd;
	pthread_t thread;
	volatile bool stop;
	bool running;
	pthread_mutex_t lock;
	int count[8];		/* requests seen, by type (0..7) */
	int dirty;		/* requests with non-zero reserved or padding */
	char first_dirty[160];
	int errors;
	volatile __u8 last_status;
	volatile bool driver_ok;
};

static struct devloop dl = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Payload bytes a request of this type carries (after the 24-byte head). */
static size_t payload_size(__u32 type)
{
	switch (type) {
	case VDUSE_GET_VQ_STATE:
		return sizeof(__u32);		/* only the index is asked for */
	case VDUSE_SET_STATUS:
		return sizeof(struct vduse_dev_status);
	case VDUSE_UPDATE_IOTLB:
		return sizeof(struct vduse_iova_range);	/* API 0 */
	case VDUSE_SET_VQ_GROUP_ASID:
		return sizeof(struct vduse_vq_group_asid);
	case VDUSE_SET_VQ_READY:
		return sizeof(struct vduse_vq_ready);
	default:
		return 0;
	}
}

static void devloop_inspect(struct devloop *d, const struct vduse_dev_request *r)
{
	const __u8 *b = (const void *)r;
	size_t from = offsetof(struct vduse_dev_request, vq_state) + payload_size(r->type);
	size_t i, bad = 0;
	bool dirty = false;

	for (i = 0; i < 4; i++)
		dirty |= r->reserved[i] != 0;
	for (i = from; i < sizeof(*r); i++)
		if (b[i]) {
			dirty = true;
			bad = i;
			break;
		}
	pthread_mutex_lock(&d->lock);
	d->count[r->type < 8 ? r->type : 7]++;
	if (dirty && !d->dirty++)
		snprintf(d->first_dirty, sizeof(d->first_dirty),
			 "request type %u id %u: reserved %x %x %x %x, byte %zu = 0x%02x",
			 r->type, r->request_id, r->reserved[0], r->reserved[1],
			 r->reserved[2], r->reserved[3], bad, bad ? b[bad] : 0);
	pthread_mutex_unlock(&d->lock);
}

static void *devloop_main(void *arg)
{
	struct devloop *d = arg;
	struct vduse_dev_request req;
	struct vduse_dev_response resp;
	struct pollfd p;

	while (!d->stop) {
		p.fd = d->fd;
		p.events = POLLIN;
		if (poll(&p, 1, 20) <= 0)
			continue;
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		if (read(d->fd, &req, sizeof(req)) != sizeof(req)) {
			if (errno != EAGAIN)
				d->errors++;
			continue;
		}
		devloop_inspect(d, &req);
		memset(&resp, 0, sizeof(resp));
		resp.request_id = req.request_id;
		resp.result = VDUSE_REQ_RESULT_OK;
		if (req.type == VDUSE_GET_VQ_STATE) {
			resp.vq_state.index = req.vq_state.index;
			resp.vq_state.split.avail_index = VQ_STATE_BASE;
		}
		if (req.type == VDUSE_SET_STATUS) {
			d->last_status = req.s.status;
			if (req.s.status & STATUS_DRV_OK)
				d->driver_ok = true;
		}
		if (write(d->fd, &resp, sizeof(resp)) != sizeof(resp))
			d->errors++;
	}
	return NULL;
}

static void devloop_start(struct devloop *d, int fd)
{
	d->fd = fd;
	d->stop = false;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (pthread_create(&d->thread, NULL, devloop_main, d)) {
		printf("Bail out! pthread_create failed\n");
		exit(1);
	}
	d->running = true;
}

static void devloop_stop(struct devloop *d)
{
	if (!d->running)
		return;
	d->stop = true;
	pthread_join(d->thread, NULL);
	d->running = false;
}

static bool wait_driver_ok(struct devloop *d, int ms)
{
	for (; ms > 0 && !d->driver_ok; ms -= 20)
		msleep(20);
	return d->driver_ok;
}

/* ------------------------------------------------------------------ */
/* Output structs: padding and reserved bytes carry no kernel bytes    */
/* ------------------------------------------------------------------ */

static const __u8 fills[2] = { 0xaa, 0x55 };

/*
 * VQ_GET_INFO with the buffer filled twice with different patterns.  The
 * union tail (split state is 2 of its 8 bytes) and the tail padding after
 * "ready" must hold zeros or the caller's own bytes.
 */
static void vq_info_checked(int fd, __u32 idx, bool split, const char *when)
{
	struct vduse_vq_info vi;
	size_t ready_end = offsetof(struct vduse_vq_info, ready) + 1;
	size_t state = offsetof(struct vduse_vq_info, split);
	char diag[96] = "";
	bool clean = true;
	long r = 0;
	int i;

	if (no_compat) {
		printf("# skip - [32] VQ_GET_INFO vq %u %s: no compat handler in stock\n",
		       idx, when);
		return;
	}
	for (i = 0; i < 2; i++) {
		memset(&vi, fills[i], sizeof(vi));
		vi.index = idx;
		r = sys(ioctl(fd, VDUSE_VQ_GET_INFO, &vi));
		if (r < 0)
			break;
		clean &= only_fill(&vi, ready_end, sizeof(vi), fills[i], diag, sizeof(diag));
		if (split)
			clean &= only_fill(&vi, state + 2, state + 8, fills[i],
					   diag, sizeof(diag));
	}
	answer("vq_get_info %s vq%u: %s num=%u desc=%llx driver=%llx device=%llx avail=%u ready=%u",
	       when, idx, ename(r), r < 0 ? 0 : vi.num,
	       r < 0 ? 0ULL : (unsigned long long)vi.desc_addr,
	       r < 0 ? 0ULL : (unsigned long long)vi.driver_addr,
	       r < 0 ? 0ULL : (unsigned long long)vi.device_addr,
	       r < 0 ? 0 : vi.split.avail_index, r < 0 ? 0 : vi.ready);
	if (!check(r == 0, ename(r), "VQ_GET_INFO vq %u %s", idx, when))
		return;
	check(clean, diag,
	      "VQ_GET_INFO vq %u %s: padding and unused state bytes carry no kernel data",
	      idx, when);
}

/* IOTLB_GET_FD of the region holding iova, checked; the fd or -errno. */
static long get_fd_checked(int fd, __u64 iova, struct vduse_iotlb_entry *out,
			   const char *what)
{
	struct vduse_iotlb_entry e;
	size_t pad = offsetof(struct vduse_iotlb_entry, perm) + 1;
	char diag[96] = "";
	bool clean = true;
	long r = 0;
	int i;

	for (i = 0; i < 2; i++) {
		memset(&e, fills[i], sizeof(e));
		e.start = iova;
		e.last = iova;
		r = sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e));
		if (r < 0)
			break;
		clean &= only_fill(&e, pad, sizeof(e), fills[i], diag, sizeof(diag));
		if (i == 0)
			close((int)r);
	}
	answer("iotlb_get_fd %s: %s start=%llx last=%llx offset=%llx perm=%u", what,
	       ename(r < 0 ? r : 0), r < 0 ? 0ULL : (unsigned long long)e.start,
	       r < 0 ? 0ULL : (unsigned long long)e.last,
	       r < 0 ? 0ULL : (unsigned long long)e.offset, r < 0 ? 0 : e.perm);
	if (!check(r >= 0, ename(r), "IOTLB_GET_FD on the %s", what))
		return r;
	check(clean, diag, "IOTLB_GET_FD on the %s: padding carries no kernel data", what);
	check(e.perm >= VDUSE_ACCESS_RO && e.perm <= VDUSE_ACCESS_RW, NULL,
	      "IOTLB_GET_FD on the %s: perm is a VDUSE_ACCESS_* value", what);
	*out = e;
	return r;
}

/* IOTLB_GET_INFO of the region holding iova, checked. */
static void get_info_checked(int fd, __u64 iova, const char *what)
{
	struct vduse_iova_info ii;
	char diag[96] = "";
	long r = 0;
	int i;
	bool clean = true;

	for (i = 0; i < 2; i++) {
		/* reserved and asid are input and must be zero */
		memset(&ii, 0, sizeof(ii));
		memset(&ii.capability, fills[i], sizeof(ii.capability));
		ii.start = ii.last = iova;
		r = sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii));
		if (r < 0)
			break;
		clean &= only_fill(&ii, offsetof(struct vduse_iova_info, asid),
				   sizeof(ii), 0, diag, sizeof(diag));
		if (ii.capability & ~(__u64)VDUSE_IOVA_CAP_UMEM) {
			clean = false;
			snprintf(diag, sizeof(diag), "capability 0x%llx",
				 (unsigned long long)ii.capability);
		}
	}
	answer("iotlb_get_info %s: %s start=%llx last=%llx cap=%llx", what, ename(r),
	       r < 0 ? 0ULL : (unsigned long long)ii.start,
	       r < 0 ? 0ULL : (unsigned long long)ii.last,
	       r < 0 ? 0ULL : (unsigned long long)ii.capability);
	if (!check(r == 0, ename(r), "IOTLB_GET_INFO on the %s", what))
		return;
	check(clean, diag,
	      "IOTLB_GET_INFO on the %s: capability has only defined bits, asid and reserved stay zero",
	      what);
}

/* ------------------------------------------------------------------ */
/* Reading mapped memory without dying of SIGBUS                       */
/* ------------------------------------------------------------------ */

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

/*
 * Copy len bytes at file offset off of mfd into out; false when the
 * mapping fails or faults.
 */
static bool read_mapped(int mfd, __u64 off, size_t len, void *out)
{
	__u64 poff = off & ~((__u64)page_size - 1);
	size_t mlen = (size_t)(off - poff) + len;
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	volatile bool ok = false;
	void *p;

	p = mmap(NULL, mlen, PROT_READ, MAP_SHARED, mfd, (off_t)poff);
	if (p == MAP_FAILED)
		return false;
	sigaction(SIGBUS, &sa, &old);
	if (!sigsetjmp(bus_jmp, 1)) {
		memcpy(out, (char *)p + (off - poff), len);
		ok = true;
	}
	sigaction(SIGBUS, &old, NULL);
	munmap(p, mlen);
	return ok;
}

/* Index of the first non-zero byte, or -1. */
static long first_nonzero(const void *buf, size_t len)
{
	const __u8 *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return (long)i;
	return -1;
}

/* ------------------------------------------------------------------ */
/* 3a, 4: a detached device                                            */
/* ------------------------------------------------------------------ */

static void test_detached(void)
{
	static struct create c;
	const char *n = dname("det");
	struct vduse_iotlb_entry e;
	struct vduse_iova_info ii;
	struct vduse_dev_response resp;
	unsigned long long v;
	char buf[256];
	int ctl, fd;
	long r;

	ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	memset(&v, 0xaa, sizeof(v));
	r = sys(ioctl(ctl, VDUSE_GET_API_VERSION, &v));
	answer("get_api_version (fresh fd): %s %llu", ename(r), r < 0 ? 0 : v);
	v = 0;
	answer("set_api_version 0: %s", ename(sys(ioctl(ctl, VDUSE_SET_API_VERSION, &v))));
	v = 2;
	answer("set_api_version 2: %s", ename(sys(ioctl(ctl, VDUSE_SET_API_VERSION, &v))));

	sec_cfg_blk(&c, n);
	r = sys(ioctl(ctl, VDUSE_CREATE_DEV, &c));
	answer("create_dev blk: %s", ename(r));
	if (!check(r == 0, ename(r), "CREATE_DEV of a block device")) {
		close(ctl);
		return;
	}
	answer("create_dev again: %s", ename(sys(ioctl(ctl, VDUSE_CREATE_DEV, &c))));
	c.hdr.config_size = page_size + 1;
	strcpy(c.hdr.name, dname("big"));
	answer("create_dev config_size page+1: %s", ename(sys(ioctl(ctl, VDUSE_CREATE_DEV, &c))));
	fd = dev_open(n);
	answer("vq_setup 0: %s", ename(vq_setup(fd, 0, 256)));
	answer("vq_setup 1: %s", ename(vq_setup(fd, 1, 128)));
	answer("vq_setup 2: %s", ename(vq_setup(fd, 2, 128)));
	vq_info_checked(fd, 0, true, "before attach");
	vq_info_checked(fd, 1, true, "before attach");
	{
		struct vduse_vq_info vi = { .index = 2 };

		answer("vq_get_info 2: %s", ename(sys(ioctl(fd, VDUSE_VQ_GET_INFO, &vi))));
	}
	memset(&v, 0xaa, sizeof(v));
	r = sys(ioctl(fd, VDUSE_DEV_GET_FEATURES, &v));
	answer("dev_get_features before attach: %s %llx", ename(r), r < 0 ? 0 : v);
	{
		struct { struct vduse_config_data h; __u8 b[8]; } sc = {
			{ .offset = 4, .length = 4 }, { 1, 2, 3, 4 } };

		answer("dev_set_config 4+4: %s",
		       ename(sys(ioctl(fd, VDUSE_DEV_SET_CONFIG, &sc))));
		sc.h.offset = c.hdr.config_size;
		answer("dev_set_config at config_size: %s",
		       ename(sys(ioctl(fd, VDUSE_DEV_SET_CONFIG, &sc))));
	}
	answer("inject_config_irq before attach: %s",
	       ename(sys(ioctl(fd, VDUSE_DEV_INJECT_CONFIG_IRQ))));
	memset(&e, 0, sizeof(e));
	e.last = 0xffff;
	answer("iotlb_get_fd before attach: %s", ename(sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e))));
	memset(&ii, 0, sizeof(ii));
	ii.last = 0xffff;
	answer("iotlb_get_info before attach: %s",
	       ename(sys(ioctl(fd, VDUSE_IOTLB_GET_INFO, &ii))));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	answer("read nothing pending: %s", ename(sys(read(fd, buf, sizeof(buf)))));
	answer("read 151 bytes: %s", ename(sys(read(fd, buf, 151))));
	memset(&resp, 0, sizeof(resp));
	resp.request_id = 77;
	answer("write unknown id: %s", ename(sys(write(fd, &resp, sizeof(resp)))));
	close(fd);
	r = destroy(ctl, n);
	answer("destroy_dev: %s", ename(r));
	check(r == 0, ename(r), "DESTROY_DEV of the block device");
	answer("destroy_dev again: %s", ename(destroy(ctl, n)));

	/* Name limits: 255 bytes and a NUL; 256 bytes without one are cut. */
	sec_cfg_blk(&c, "");
	memset(c.hdr.name, 'n', VDUSE_NAME_MAX);
	memcpy(c.hdr.name, dname("long"), 9);
	r = sys(ioctl(ctl, VDUSE_CREATE_DEV, &c));
	answer("create_dev 256-byte name without NUL: %s", ename(r));
	c.hdr.name[VDUSE_NAME_MAX - 1] = 0;
	r = destroy(ctl, c.hdr.name);
	answer("destroy_dev its first 255 bytes: %s", ename(r));
	sec_cfg_blk(&c, "");
	answer("create_dev empty name: %s", ename(sys(ioctl(ctl, VDUSE_CREATE_DEV, &c))));
	close(ctl);
}

/* ------------------------------------------------------------------ */
/* 3a: config bytes past config_size, as the vDPA core reads them      */
/* ------------------------------------------------------------------ */

/*
 * A net device offering VIRTIO_NET_F_MTU whose config space stops after
 * the MAC: "vdpa dev config show" reads a whole virtio_net_config into a
 * kernel stack buffer through get_config and prints the mtu field.  It
 * must read as zero, not as whatever was on the stack.
 */
static void test_config_tail(void)
{
	static struct create c;
	const char *n = dname("cfg");
	char cmd[256], out[4096];
	size_t len = 0;
	int ctl = ctl_open_v(0), fd;
	const char *p;
	FILE *f;
	long r;

	cfg_net(&c, n, net_mac);
	c.hdr.features |= 1ULL << VIRTIO_NET_F_MTU;
	c.hdr.config_size = 6;		/* the MAC only */
	r = sys(ioctl(ctl, VDUSE_CREATE_DEV, &c));
	if (!check(r == 0, ename(r), "CREATE_DEV of a net device with a 6-byte config space")) {
		close(ctl);
		return;
	}
	fd = dev_open(n);
	vq_setup(fd, 0, 64);
	vq_setup(fd, 1, 64);
	if (!check(vdpa_add_unbound(n) == 0, NULL, "vdpa dev add of the short-config device"))
		goto out;
	snprintf(cmd, sizeof(cmd), "vdpa -j dev config show %s 2>&1", n);
	f = popen(cmd, "r");
	if (f) {
		len = fread(out, 1, sizeof(out) - 1, f);
		pclose(f);
	}
	out[len] = 0;
	note("vdpa dev config show: %s", out);
	check(strstr(out, "\"mac\":\"02:5e:c0:00:00:01\"") != NULL, out,
	      "the driver side sees the daemon's MAC");
	p = strstr(out, "\"mtu\":");
	check(p && atoi(p + 6) == 0, out,
	      "config bytes past config_size (mtu) read as zero on the driver side");
	run("vdpa dev del %s", n);
out:
	close(fd);
	check(destroy(ctl, n) == 0, NULL, "DESTROY_DEV of the short-config device");
	close(ctl);
}

/* ------------------------------------------------------------------ */
/* 3b, 3c, 5: an attached net device with rx buffers posted            */
/* ------------------------------------------------------------------ */

struct desc {
	__u64 addr;
	__u32 len;
	__u16 flags;
	__u16 next;
};

#define VRING_DESC_F_NEXT	1

/* Read len bytes at an IOVA through IOTLB_GET_FD + mmap. */
static bool read_iova(int fd, __u64 iova, size_t len, void *out)
{
	struct vduse_iotlb_entry e;
	long mfd;
	bool ok;

	memset(&e, 0, sizeof(e));
	e.start = iova;
	e.last = iova + len - 1;
	mfd = sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e));
	if (mfd < 0)
		return false;
	ok = iova >= e.start && iova + len - 1 <= e.last &&
	     read_mapped((int)mfd, e.offset + (iova - e.start), len, out);
	close((int)mfd);
	return ok;
}

/*
 * The driver's side of a ring: descriptors no posted buffer uses, avail
 * entries past avail->idx, used_event (no EVENT_IDX) and the alignment gap
 * before the used ring were never written, so they read zero.  The
 * descriptors are read before avail->idx: a buffer posted in between is
 * then one whose descriptor we need not judge.
 */
static void check_driver_area(int fd, __u32 idx)
{
	struct vduse_vq_info vi = { .index = idx };
	size_t avail_len, gap_len, i;
	struct desc *desc;
	__u16 *avail, head, posted;
	bool *used;
	int unused_dirty = 0, steps;
	long nz = -1;

	if (ioctl(fd, VDUSE_VQ_GET_INFO, &vi) || !vi.num)
		return;
	avail_len = 4 + 2 * (size_t)vi.num + 2;
	desc = calloc(vi.num, sizeof(*desc));
	avail = calloc(1, avail_len);
	used = calloc(vi.num, sizeof(*used));
	if (!check(read_iova(fd, vi.desc_addr, vi.num * sizeof(*desc), desc) &&
		   read_iova(fd, vi.driver_addr, avail_len, avail), NULL,
		   "vq %u descriptor table and avail ring read through IOTLB_GET_FD", idx))
		goto out;
	posted = avail[1];
	for (i = 0; i < posted && i < vi.num; i++) {
		head = avail[2 + i];
		for (steps = 0; head < vi.num && steps < (int)vi.num; steps++) {
			used[head] = true;
			if (!(desc[head].flags & VRING_DESC_F_NEXT))
				break;
			head = desc[head].next;
		}
	}
	for (i = 0; i < vi.num; i++)
		if (!used[i] && first_nonzero(&desc[i], sizeof(desc[i])) >= 0)
			unused_dirty++;
	note("vq %u: %u buffers posted", idx, posted);
	check(unused_dirty == 0, "non-zero descriptors",
	      "vq %u: descriptors no posted buffer uses are zero (%d not)", idx, unused_dirty);
	if (posted < vi.num) {
		nz = first_nonzero(&avail[2 + posted], 2 * (vi.num - posted) + 2);
		check(nz < 0, "non-zero byte",
		      "vq %u: avail entries past avail->idx and used_event are zero (byte %ld)",
		      idx, nz);
	} else {
		check(avail[2 + vi.num] == 0, "non-zero", "vq %u: used_event is zero", idx);
	}
	if (vi.device_addr > vi.driver_addr + avail_len &&
	    vi.device_addr - (vi.driver_addr + avail_len) < 65536) {
		gap_len = vi.device_addr - (vi.driver_addr + avail_len);
		free(avail);
		avail = calloc(1, gap_len);
		if (check(read_iova(fd, vi.driver_addr + avail_len, gap_len, avail), NULL,
			  "vq %u: the gap between avail and used ring reads", idx)) {
			nz = first_nonzero(avail, gap_len);
			check(nz < 0, "non-zero byte",
			      "vq %u: the %zu-byte gap between avail and used ring is zero (byte %ld)",
			      idx, gap_len, nz);
		}
	}
out:
	free(desc);
	free(avail);
	free(used);
}

/*
 * The rings are coherent allocations: zeroed pages in which only the
 * driver wrote.  Nothing has been used, so the used ring is all zero, and
 * so is the rest of the region behind it.
 */
static void check_ring(int fd, __u32 idx)
{
	struct vduse_vq_info vi = { .index = idx };
	struct vduse_iotlb_entry e;
	size_t used_len, tail_len;
	__u8 *buf;
	long mfd, nz;

	if (ioctl(fd, VDUSE_VQ_GET_INFO, &vi) || !vi.num) {
		check(false, strerror(errno), "vq %u ring: VQ_GET_INFO", idx);
		return;
	}
	used_len = 4 + 8 * (size_t)vi.num + 2;
	buf = calloc(1, used_len);
	check(read_iova(fd, vi.device_addr, used_len, buf), NULL,
	      "vq %u used ring reads through IOTLB_GET_FD", idx);
	nz = first_nonzero(buf, used_len);
	check(nz < 0, "non-zero byte", "vq %u used ring is all zero before any I/O (byte %ld)",
	      idx, nz);
	free(buf);

	/*
	 * The rest of the page the used ring ends in: the daemon maps whole
	 * pages, whatever the region's last byte says.
	 */
	memset(&e, 0, sizeof(e));
	e.start = e.last = vi.device_addr;
	mfd = sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e));
	if (mfd < 0)
		return;
	tail_len = page_size - (size_t)((e.offset + (vi.device_addr - e.start) + used_len) %
					page_size);
	if (tail_len == (size_t)page_size) {
		note("vq %u: the used ring ends on a page boundary", idx);
		close((int)mfd);
		return;
	}
	buf = calloc(1, tail_len);
	if (check(read_mapped((int)mfd, e.offset + (vi.device_addr - e.start) + used_len,
			      tail_len, buf), NULL,
		  "vq %u: the rest of the used ring's page maps (region ends at +%llu)", idx,
		  (unsigned long long)(e.last - vi.device_addr))) {
		nz = first_nonzero(buf, tail_len);
		check(nz < 0, "non-zero byte",
		      "vq %u: the %zu bytes of the page behind the used ring are zero (byte %ld)",
		      idx, tail_len, nz);
	}
	close((int)mfd);
	free(buf);
}

/*
 * The whole bounce area, page by page: a page that maps (one the kernel
 * has allocated) reads all zeros before any I/O; one that does not
 * (SIGBUS) gives nothing away.
 */
static void check_bounce_area(int fd, __u64 bounce)
{
	struct vduse_iotlb_entry e;
	__u8 *page = malloc(page_size);
	char diag[128] = "";
	int mapped = 0, dirty = 0;
	__u64 off;
	long mfd, nz;

	memset(&e, 0, sizeof(e));
	e.last = bounce - 1;
	mfd = sys(ioctl(fd, VDUSE_IOTLB_GET_FD, &e));
	if (!check(mfd >= 0, ename(mfd), "IOTLB_GET_FD of the whole bounce area")) {
		free(page);
		return;
	}
	for (off = 0; off < bounce; off += page_size) {
		if (!read_mapped((int)mfd, e.offset + off, page_size, page))
			continue;
		mapped++;
		nz = first_nonzero(page, page_size);
		if (nz >= 0 && !dirty++)
			snprintf(diag, sizeof(diag), "page at IOVA 0x%llx byte %ld = 0x%02x",
				 (unsigned long long)off, nz, page[nz]);
	}
	close((int)mfd);
	note("bounce area: %d of %llu pages map", mapped,
	     (unsigned long long)(bounce / page_size));
	check(mapped > 0 && dirty == 0, diag,
	      "every bounce page a daemon can map before any I/O reads all zeros (%d of %d dirty)",
	      dirty, mapped);
	free(page);
}

/*
 * Receive buffers are mapped DMA_FROM_DEVICE: nothing is copied into the
 * bounce pages, so what the daemon sees there is what the pages held when
 * they were allocated.  Before any packet it must be zeros: the whole
 * 4 KiB bounce page around every posted buffer.
 */
static void check_rx_bounce(int fd, __u64 bounce)
{
	struct vduse_vq_info vi = { .index = 0 };
	__u16 avail[2], head, n;
	__u64 pages[64];
	int npages = 0, i, tries, bad = 0, unread = 0;
	struct desc d;
	__u8 *page = malloc(4096);
	char diag[128] = "";

	ioctl(fd, VDUSE_VQ_GET_INFO, &vi);
	for (tries = 0; tries < 50; tries++) {
		if (!read_iova(fd, vi.driver_addr, sizeof(avail), avail))
			break;
		if (avail[1])
			break;
		msleep(100);
	}
	if (!check(avail[1] > 0, NULL, "the driver posted rx buffers")) {
		free(page);
		return;
	}
	for (n = 0; n < avail[1] && n < vi.num && npages < 64; n++) {
		if (!read_iova(fd, vi.driver_addr + 4 + 2 * n, 2, &head))
			break;
		for (i = 0; i < 8 && npages < 64; i++) {
			if (!read_iova(fd, vi.desc_addr + 16ULL * head, sizeof(d), &d))
				break;
			if (d.addr < bounce) {
				__u64 pg = d.addr & ~4095ULL;
				__u64 last = (d.addr + d.len - 1) & ~4095ULL;

				for (; pg <= last && pg < bounce && npages < 64; pg += 4096)
					pages[npages++] = pg;
			}
			if (!(d.flags & VRING_DESC_F_NEXT))
				break;
			head = d.next;
		}
	}
	note("%d rx bounce pages to inspect", npages);
	for (i = 0; i < npages; i++) {
		long nz;

		if (!read_iova(fd, pages[i], 4096, page)) {
			unread++;
			continue;
		}
		nz = first_nonzero(page, 4096);
		if (nz >= 0 && !bad++)
			snprintf(diag, sizeof(diag), "bounce page at IOVA 0x%llx byte %ld = 0x%02x",
				 (unsigned long long)pages[i], nz, page[nz]);
	}
	check(npages > 0 && unread == 0, NULL,
	      "every bounce page under a posted rx buffer maps (%d pages, %d not)",
	      npages, unread);
	check(npages > 0 && bad == 0, diag,
	      "fresh bounce pages under posted rx buffers read all zeros (%d of %d dirty)",
	      bad, npages);
	free(page);
}

/* RLIMIT_MEMLOCK caps what REG_UMEM pins. */
static void test_umem_memlock(int fd, __u64 bounce)
{
	struct vduse_iova_umem um;
	struct rlimit old, small = { bounce / 2, bounce / 2 };
	struct rlimit big = { RLIM_INFINITY, RLIM_INFINITY };
	void *buf;
	long r;

	getrlimit(RLIMIT_MEMLOCK, &old);
	buf = mmap(NULL, bounce, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!check(buf != MAP_FAILED, strerror(errno), "a buffer for REG_UMEM"))
		return;
	memset(&um, 0, sizeof(um));
	um.uaddr = (uintptr_t)buf;
	um.size = bounce;
	setrlimit(RLIMIT_MEMLOCK, &small);
	r = sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um));
	answer("reg_umem over RLIMIT_MEMLOCK: %s", ename(r));
	check(r == -ENOMEM, ename(r),
	      "REG_UMEM of %llu bytes with RLIMIT_MEMLOCK %llu: ENOMEM",
	      (unsigned long long)bounce, (unsigned long long)bounce / 2);
	if (r == 0)
		ioctl(fd, VDUSE_IOTLB_DEREG_UMEM, &um);
	setrlimit(RLIMIT_MEMLOCK, &big);
	r = sys(ioctl(fd, VDUSE_IOTLB_REG_UMEM, &um));
	answer("reg_umem within RLIMIT_MEMLOCK: %s", ename(r));
	check(r == 0, ename(r), "REG_UMEM with RLIMIT_MEMLOCK unlimited");
	r = sys(ioctl(fd, VDUSE_IOTLB_DEREG_UMEM, &um));
	answer("dereg_umem: %s", ename(r));
	check(r == 0, ename(r), "DEREG_UMEM");
	setrlimit(RLIMIT_MEMLOCK, &old);
	munmap(buf, bounce);
}

static void check_requests(const char *what)
{
	pthread_mutex_lock(&dl.lock);
	note("%s: %d GET_VQ_STATE, %d SET_STATUS, %d UPDATE_IOTLB, %d SET_VQ_READY, %d other",
	     what, dl.count[0], dl.count[1], dl.count[2], dl.count[4],
	     dl.count[3] + dl.count[5] + dl.count[6] + dl.count[7]);
	check(dl.dirty == 0, dl.first_dirty,
	      "%s: every request read has zero reserved words and nothing past its payload",
	      what);
	pthread_mutex_unlock(&dl.lock);
}

static void test_attached_net(void)
{
	static struct create c;
	const char *n = dname("net"), *ifname;
	struct vduse_iotlb_entry e;
	struct vduse_vq_info vi = { .index = 0 };
	char path[512], v[32];
	int ctl = ctl_open_v(0), fd;
	long mfd;

	cfg_net(&c, n, net_mac);
	if (!check(ioctl(ctl, VDUSE_CREATE_DEV, &c) == 0, strerror(errno),
		   "CREATE_DEV of a net device")) {
		close(ctl);
		return;
	}
	fd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	snprintf(v, sizeof(v), "%llu", BOUNCE);
	sysfs_write(dev_attr(n, "bounce_size"), v);
	vq_setup(fd, 0, 64);
	vq_setup(fd, 1, 64);
	memset(dl.count, 0, sizeof(dl.count));
	dl.dirty = 0;
	dl.driver_ok = false;
	devloop_start(&dl, fd);
	if (!check(vdpa_add_unbound(n) == 0, NULL, "vdpa dev add of the net device"))
		goto out;
	check(vdpa_bind(n, "virtio_vdpa") == 0, NULL, "bind the net device to virtio_vdpa");
	if (!check(wait_driver_ok(&dl, 10000), NULL, "the net device reached DRIVER_OK"))
		goto detach;
	ifname = net_ifname(n);
	if (!check(ifname != NULL, NULL, "virtio_net made an interface"))
		goto detach;
	/* No IPv6, no address: nothing is ever transmitted. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	sysfs_write(path, "1");
	check(run("ip link set dev %s up", ifname) == 0, NULL, "bring the interface up");

	vq_info_checked(fd, 0, true, "after DRIVER_OK");
	vq_info_checked(fd, 1, true, "after DRIVER_OK");
	ioctl(fd, VDUSE_VQ_GET_INFO, &vi);
	mfd = get_fd_checked(fd, vi.desc_addr, &e, "rx ring");
	if (mfd >= 0)
		close((int)mfd);
	get_info_checked(fd, vi.desc_addr, "rx ring");
	check_ring(fd, 0);
	check_ring(fd, 1);
	check_driver_area(fd, 0);
	check_driver_area(fd, 1);
	check_rx_bounce(fd, BOUNCE);
	check_bounce_area(fd, BOUNCE);
	mfd = get_fd_checked(fd, 0, &e, "bounce area");
	if (mfd >= 0)
		close((int)mfd);
	get_info_checked(fd, 0, "bounce area");
	test_umem_memlock(fd, BOUNCE);
	run("ip link set dev %s down", ifname);
detach:
	check(run("vdpa dev del %s", n) == 0, NULL, "vdpa dev del of the net device");
	check_requests("net device");
out:
	devloop_stop(&dl);
	close(fd);
	check(destroy(ctl, n) == 0, NULL, "DESTROY_DEV of the net device");
	close(ctl);
}

/* ------------------------------------------------------------------ */
/* 3a, 3b, 5: the vhost-vdpa side                                      */
/* ------------------------------------------------------------------ */

/*
 * A block device bound to vhost_vdpa and opened as a VMM would; returns
 * the vhost fd, the device fd in *devfd (served by the device loop).
 */
static int vhost_setup(int ctl, struct create *c, const char *n, int *devfd)
{
	__u64 bf = 0;
	int vfd;

	sec_cfg_blk(c, n);
	if (!check(ioctl(ctl, VDUSE_CREATE_DEV, c) == 0, strerror(errno),
		   "CREATE_DEV of a block device for vhost-vdpa"))
		return -1;
	*devfd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	vq_setup(*devfd, 0, 64);
	vq_setup(*devfd, 1, 64);
	memset(dl.count, 0, sizeof(dl.count));
	dl.dirty = 0;
	devloop_start(&dl, *devfd);
	if (!check(vdpa_add_unbound(n) == 0, NULL, "vdpa dev add for vhost-vdpa") ||
	    !check(vdpa_bind(n, "vhost_vdpa") == 0, NULL, "bind to vhost_vdpa"))
		return -1;
	vfd = vhost_open(n);
	if (!check(vfd >= 0, strerror(errno), "open the vhost-vdpa node"))
		return -1;
	ioctl(vfd, VHOST_SET_OWNER);
	ioctl(vfd, VHOST_GET_BACKEND_FEATURES, &bf);
	bf &= 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2;
	ioctl(vfd, VHOST_SET_BACKEND_FEATURES, &bf);
	return vfd;
}

static void vhost_teardown(int ctl, const char *n, int vfd, int fd)
{
	if (vfd >= 0)
		close(vfd);
	run("vdpa dev del %s 2>/dev/null", n);
	devloop_stop(&dl);
	if (fd >= 0)
		close(fd);
	check(destroy(ctl, n) == 0, NULL, "DESTROY_DEV of the vhost-vdpa device");
}

static void test_vhost(void)
{
	static struct create c;
	const char *n = dname("vh");
	struct {
		struct vhost_vdpa_config h;
		__u8 buf[4096];
	} vc;
	struct vhost_vring_state vs = { .index = 0 };
	__u32 size = 0;
	int ctl = ctl_open_v(0), fd = -1, vfd, mfd;
	void *ram;
	long r;

	vfd = vhost_setup(ctl, &c, n, &fd);
	if (vfd < 0)
		goto out;
	r = sys(ioctl(vfd, VHOST_VDPA_GET_CONFIG_SIZE, &size));
	answer("vhost get_config_size: %s %u", ename(r), size);
	check(r == 0 && size == c.hdr.config_size, ename(r),
	      "VHOST_VDPA_GET_CONFIG_SIZE is the daemon's config_size");
	memset(&vc, 0xaa, sizeof(vc));
	vc.h.off = 0;
	vc.h.len = c.hdr.config_size;
	r = sys(ioctl(vfd, VHOST_VDPA_GET_CONFIG, &vc));
	check(r == 0 && !memcmp(vc.h.buf, c.hdr.config, c.hdr.config_size), ename(r),
	      "VHOST_VDPA_GET_CONFIG returns exactly the daemon's config bytes");
	vc.h.off = c.hdr.config_size - 4;
	vc.h.len = 8;
	answer("vhost get_config past the end: %s",
	       ename(sys(ioctl(vfd, VHOST_VDPA_GET_CONFIG, &vc))));

	r = sys(ioctl(vfd, VHOST_GET_VRING_BASE, &vs));
	answer("vhost get_vring_base: %s %u", ename(r), vs.num);
	check(r == 0 && vs.num == VQ_STATE_BASE, ename(r),
	      "VHOST_GET_VRING_BASE answered by a GET_VQ_STATE request");
	mfd = memfd_create("sec-guest-ram", MFD_CLOEXEC);
	ram = MAP_FAILED;
	if (ftruncate(mfd, 0x10000) == 0)
		ram = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (ram != MAP_FAILED) {
		r = vhost_iotlb_update(vfd, 0, 0x100000, 0x10000, ram);
		answer("vhost iotlb update: %s", ename(r));
		check(r == 0, ename(r), "VHOST_IOTLB_UPDATE (an UPDATE_IOTLB request)");
		munmap(ram, 0x10000);
	}
	close(mfd);
	check(dl.count[VDUSE_GET_VQ_STATE] > 0 && dl.count[VDUSE_UPDATE_IOTLB] > 0, NULL,
	      "the device saw GET_VQ_STATE and UPDATE_IOTLB requests");
	check_requests("vhost-vdpa device");
out:
	vhost_teardown(ctl, n, vfd, fd);
	close(ctl);
}

/* 7.3 VDUSE_F_QUEUE_READY: SET_VQ_READY requests are clean too. */
static void test_queue_ready(void)
{
	static struct create c;
	const char *n = dname("qr");
	unsigned long long f = 1ULL << VDUSE_F_QUEUE_READY;
	int ctl = ctl_open_v(0), fd;
	long r;

	r = sys(ioctl(ctl, VDUSE_SET_FEATURES, &f));
	answer("set_features QUEUE_READY: %s", ename(r));
	if (r < 0 && !ours && kver < 703) {
		printf("# skip - [%s] SET_VQ_READY requests: stock before 7.3 has no QUEUE_READY\n",
		       bits);
		close(ctl);
		return;
	}
	if (!check(r == 0, ename(r), "SET_FEATURES QUEUE_READY")) {
		close(ctl);
		return;
	}
	sec_cfg_blk(&c, n);
	if (!check(ioctl(ctl, VDUSE_CREATE_DEV, &c) == 0, strerror(errno),
		   "CREATE_DEV of a QUEUE_READY block device")) {
		close(ctl);
		return;
	}
	fd = dev_open(n);
	sysfs_write(dev_attr(n, "msg_timeout"), "10");
	vq_setup(fd, 0, 64);
	vq_setup(fd, 1, 64);
	memset(dl.count, 0, sizeof(dl.count));
	dl.dirty = 0;
	dl.driver_ok = false;
	devloop_start(&dl, fd);
	if (check(vdpa_add_unbound(n) == 0, NULL, "vdpa dev add of the QUEUE_READY device")) {
		check(vdpa_bind(n, "virtio_vdpa") == 0, NULL, "bind it to virtio_vdpa");
		check(wait_driver_ok(&dl, 10000), NULL, "the QUEUE_READY device reached DRIVER_OK");
		check(run("vdpa dev del %s", n) == 0, NULL,
		      "vdpa dev del of the QUEUE_READY device");
	}
	check(dl.count[VDUSE_SET_VQ_READY] > 0, NULL, "the device saw SET_VQ_READY requests");
	check_requests("QUEUE_READY device");
	devloop_stop(&dl);
	close(fd);
	check(destroy(ctl, n) == 0, NULL, "DESTROY_DEV of the QUEUE_READY device");
	close(ctl);
}

/* With max_iotlb_entries=N: N VMM mappings fit, the next one is refused. */
static int iotlb_limit(int limit)
{
	static struct create c;
	const char *n = dname("lim");
	int ctl = ctl_open_v(0), fd = -1, vfd, mfd, i, fit = 0;
	size_t len = (size_t)(limit + 2) * 0x2000;
	long r = 0;
	void *ram;

	vfd = vhost_setup(ctl, &c, n, &fd);
	if (vfd < 0)
		goto out;
	mfd = memfd_create("sec-guest-ram", MFD_CLOEXEC);
	ram = MAP_FAILED;
	if (ftruncate(mfd, len) == 0)
		ram = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (!check(ram != MAP_FAILED, strerror(errno), "guest memory for %d mappings", limit + 1))
		goto out;
	/* Separate pages with gaps: one IOTLB entry each. */
	for (i = 0; i <= limit; i++) {
		r = vhost_iotlb_update(vfd, 0, 0x100000 + 0x2000ULL * i,
				       0x1000, (char *)ram + 0x2000 * i);
		if (r)
			break;
		fit++;
	}
	note("%d mappings accepted; mapping %d: %s", fit, fit + 1, ename(r));
	answer("iotlb mapping %d: %s", limit + 1, ename(r));
	check(fit == limit, NULL, "max_iotlb_entries=%d: the first %d VMM mappings are accepted",
	      limit, limit);
	check(fit == limit && r < 0, ename(r),
	      "max_iotlb_entries=%d: mapping number %d is refused", limit, limit + 1);
	munmap(ram, len);
	close(mfd);
out:
	vhost_teardown(ctl, n, vfd, fd);
	close(ctl);
	printf("# %d checks, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ */

static int cmd_create(const char *type, const char *name)
{
	static struct create c;
	int ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	unsigned long long v = 0;

	if (ctl < 0 || ioctl(ctl, VDUSE_SET_API_VERSION, &v)) {
		printf("%s\n", errname(errno));
		return 0;
	}
	if (!strcmp(type, "net"))
		cfg_net(&c, name, net_mac);
	else
		sec_cfg_blk(&c, name);
	printf("%s\n", ename(sys(ioctl(ctl, VDUSE_CREATE_DEV, &c))));
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: vduse_security open PATH | sysfs-write PATH VALUE |\n"
		"       create blk|net NAME | destroy NAME | run | iotlb-limit N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct utsname u;
	int maj = 0, min = 0, fd;
	const char *m = getenv("VM_MODULE");

	setvbuf(stdout, NULL, _IOLBF, 0);
	bits = sizeof(long) == 8 ? "64" : "32";
	page_size = sysconf(_SC_PAGESIZE);
	uname(&u);
	sscanf(u.release, "%d.%d", &maj, &min);
	kver = maj * 100 + min;
	ours = !m || strcmp(m, "stock");
	no_compat = bits[0] == '3' && !ours && kver < 702;
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "open") && argc == 3) {
		fd = open(argv[2], O_RDWR);
		printf("%s\n", errname(fd < 0 ? errno : 0));
		return 0;
	}
	if (!strcmp(argv[1], "sysfs-write") && argc == 4) {
		printf("%s\n", ename(sysfs_write(argv[2], argv[3])));
		return 0;
	}
	if (!strcmp(argv[1], "create") && argc == 4)
		return cmd_create(argv[2], argv[3]);
	if (!strcmp(argv[1], "destroy") && argc == 3) {
		fd = open(CTL_PATH, O_RDWR | O_CLOEXEC);
		printf("%s\n", fd < 0 ? errname(errno) : ename(destroy(fd, argv[2])));
		return 0;
	}
	if (geteuid() != 0) {
		printf("Bail out! must run as root\n");
		return 1;
	}
	if (!strcmp(argv[1], "iotlb-limit") && argc == 3) {
		cleanup_leftovers(dname(""));
		return iotlb_limit(atoi(argv[2]));
	}
	if (strcmp(argv[1], "run") || argc != 2)
		usage();
	note("vduse_security (%s-bit) against the %s module on %s", bits,
	     ours ? "our" : "stock", u.release);
	cleanup_leftovers(dname(""));
	test_detached();
	test_config_tail();
	if (no_compat) {
		/* abi-facts 1.3: no i386 encoding of GET_FD / VQ_GET_INFO */
		printf("# skip - [32] attached net device: stock %s has %s\n", u.release,
		       "no compat IOTLB_GET_FD/VQ_GET_INFO");
	} else {
		test_attached_net();
	}
	test_vhost();
	test_queue_ready();
	printf("# %d checks, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}
