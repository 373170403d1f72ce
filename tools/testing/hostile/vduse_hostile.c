// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_hostile: a virtio-blk daemon that misbehaves on purpose.
 *
 *   vduse_hostile --name NAME --mode MODE [--queues N] [--size MIB]
 *                 [--queue-size N] [--seconds S] [--poison-sector S]
 *
 * It creates the block device NAME (API version 0, split rings, a RAM
 * disk), answers the kernel's control messages itself and serves its
 * virtqueues like a real daemon: the rings and buffers are mapped through
 * VDUSE_IOTLB_GET_FD with libvduse's IOTLB cache and parsed with its ring
 * code.  The test attaches the device with "vdpa dev add" and drives I/O;
 * the daemon runs until SIGTERM, then prints one TAP line per property it
 * checked ("ok - hostile MODE: ..." or "not ok - ..."), destroys the
 * device and exits 1 if any check failed.
 *
 * Modes (one misbehaviour each; everything else is served correctly):
 *   good             nothing hostile: the control run
 *   bad-ids          every reply is preceded by replies carrying wrong
 *                    request ids: each must fail with ENOENT
 *   bad-writes       short (151, 1 byte), unreadable, half-readable and
 *                    reserved-field replies fail with EINVAL and leave the
 *                    request waiting; the real reply then goes as one
 *                    write, a split writev, or an oversized write (4096 or
 *                    153 bytes, of which 152 are consumed)
 *   garbage-results  every reply carries a garbage result code
 *   unsolicited      replies to requests never sent, not read yet, or
 *                    already answered: ENOENT
 *   ring-bad-id      the first request for --poison-sector on a queue is
 *                    completed together with a bogus used entry: an
 *                    out-of-range id on even queues, the id just completed
 *                    again (not a head) on odd ones
 *   ring-bad-len     every used entry reports a length far beyond the
 *                    buffers
 *   ring-desc        before each completion, writes the head descriptor's
 *                    flags back (the same value) into the split ring's
 *                    descriptor table, which a device never writes and
 *                    the driver trusts: the write must get SIGBUS (our
 *                    module maps that table read-only for the daemon)
 *   irq              VDUSE_VQ_INJECT_IRQ on nonexistent queues, on a queue
 *                    the driver never enabled, before DRIVER_OK, while the
 *                    reset waits for us and after it; from DRIVER_OK to
 *                    the reset (or for --seconds) a storm of them on every
 *                    queue
 *   config           from DRIVER_OK to the reset (or for --seconds),
 *                    VDUSE_DEV_SET_CONFIG changes the capacity back and
 *                    forth and VDUSE_DEV_INJECT_CONFIG_IRQ announces it,
 *                    while the driver does I/O; malformed SET_CONFIG
 *                    calls: EINVAL
 *   silent           reads every request and answers none
 *   silent-after-ok  answers until DRIVER_OK, then none (the queues are
 *                    still served)
 *
 * In the silent modes the device must break after msg_timeout: poll
 * reports POLLERR, every device ioctl fails with EPERM, a late reply
 * finds no request (ENOENT) and a non-blocking read has nothing (EAGAIN).
 * In every other mode the device must never break.
 */
#include <linux/vduse.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "iotlb.h"
#include "tap.h"
#include "vring.h"

#define MAX_QUEUES	8
#define MAX_IOV		256
#define SECTOR_SHIFT	9
#define RESP_SIZE	sizeof(struct vduse_dev_response)

enum mode {
	M_GOOD, M_BAD_IDS, M_BAD_WRITES, M_GARBAGE, M_UNSOLICITED,
	M_RING_BAD_ID, M_RING_BAD_LEN, M_IRQ, M_CONFIG, M_SILENT,
	M_SILENT_AFTER_OK, M_RING_DESC, NR_MODES
};

static const char *const mode_names[NR_MODES] = {
	[M_GOOD] = "good",
	[M_BAD_IDS] = "bad-ids",
	[M_BAD_WRITES] = "bad-writes",
	[M_GARBAGE] = "garbage-results",
	[M_UNSOLICITED] = "unsolicited",
	[M_RING_BAD_ID] = "ring-bad-id",
	[M_RING_BAD_LEN] = "ring-bad-len",
	[M_IRQ] = "irq",
	[M_CONFIG] = "config",
	[M_SILENT] = "silent",
	[M_SILENT_AFTER_OK] = "silent-after-ok",
	[M_RING_DESC] = "ring-desc",
};

#define BIT_MODE(m)	(1u << (m))
#define ALL_MODES	(BIT_MODE(NR_MODES) - 1)
#define SILENT_MODES	(BIT_MODE(M_SILENT) | BIT_MODE(M_SILENT_AFTER_OK))
/* Modes whose well-formed replies must all be accepted. */
#define REPLY_MODES	(ALL_MODES & ~BIT_MODE(M_SILENT) & ~BIT_MODE(M_GARBAGE))

/* ------------------------------------------------------------------ */
/* Checks: counted as they happen, reported once at exit               */

/**
 * struct tally - one property, checked every time the mode exercises it
 * @what: the property, as the TAP line states it
 * @modes: modes that must exercise it at least once
 * @n: times checked
 * @bad: times it did not hold
 * @first: what went wrong the first time
 */
struct tally {
	const char *what;
	unsigned int modes;
	unsigned long n;
	unsigned long bad;
	char first[160];
};

enum {
	T_REPLY, T_NOT_BROKEN, T_WRONG_ID, T_SHORT, T_UNREADABLE, T_RESERVED,
	T_STILL_WAITING, T_WRITEV, T_OVERSIZED, T_GARBAGE, T_NEVER_SENT,
	T_UNREAD, T_TWICE, T_POISON, T_BADLEN, T_IRQ_EARLY, T_IRQ_BAD,
	T_IRQ_READY, T_IRQ_UNREADY, T_IRQ_IN_RESET, T_IRQ_AFTER_RESET,
	T_CFG_EARLY, T_CFG_BAD, T_CFG_SET, T_CFG_IRQ, T_HELD, T_BROKEN_POLL,
	T_BROKEN_IOCTL, T_BROKEN_REPLY, T_BROKEN_READ, T_DESC_RO, NR_TALLIES
};

static struct tally tallies[NR_TALLIES] = {
	[T_REPLY] = { "well-formed replies are accepted (write returns 152)",
		      REPLY_MODES },
	[T_NOT_BROKEN] = { "the device never went broken",
			   ALL_MODES & ~SILENT_MODES },
	[T_WRONG_ID] = { "replies with wrong request ids fail with ENOENT",
			 BIT_MODE(M_BAD_IDS) },
	[T_SHORT] = { "short replies (151 and 1 bytes) fail with EINVAL",
		      BIT_MODE(M_BAD_WRITES) },
	[T_UNREADABLE] = { "replies from unreadable or half-readable buffers fail with EINVAL",
			   BIT_MODE(M_BAD_WRITES) },
	[T_RESERVED] = { "replies with a reserved word set fail with EINVAL",
			 BIT_MODE(M_BAD_WRITES) },
	[T_STILL_WAITING] = { "after the refused writes the request still waits for its reply (POLLOUT)",
			      BIT_MODE(M_BAD_WRITES) },
	[T_WRITEV] = { "a reply split over two iovecs is accepted (152)",
		       BIT_MODE(M_BAD_WRITES) },
	[T_OVERSIZED] = { "oversized writes (153, 4096 bytes) consume one reply (152)",
			  BIT_MODE(M_BAD_WRITES) },
	[T_GARBAGE] = { "replies with garbage result codes are taken as replies (152)",
			BIT_MODE(M_GARBAGE) },
	[T_NEVER_SENT] = { "replies to requests never sent fail with ENOENT",
			   BIT_MODE(M_UNSOLICITED) },
	[T_UNREAD] = { "replies to requests not read yet fail with ENOENT",
		       BIT_MODE(M_UNSOLICITED) },
	[T_TWICE] = { "second replies to answered requests fail with ENOENT",
		      BIT_MODE(M_UNSOLICITED) },
	[T_POISON] = { "bogus used entries published and signalled (VQ_INJECT_IRQ 0)",
		       BIT_MODE(M_RING_BAD_ID) },
	[T_BADLEN] = { "completions with out-of-range lengths published and signalled",
		       BIT_MODE(M_RING_BAD_LEN) },
	[T_IRQ_EARLY] = { "VQ_INJECT_IRQ before DRIVER_OK fails with EINVAL",
			  BIT_MODE(M_IRQ) },
	[T_IRQ_BAD] = { "VQ_INJECT_IRQ on nonexistent queues fails with EINVAL",
			BIT_MODE(M_IRQ) },
	[T_IRQ_READY] = { "VQ_INJECT_IRQ storm on the enabled queues succeeds",
			  BIT_MODE(M_IRQ) },
	[T_IRQ_UNREADY] = { "VQ_INJECT_IRQ on a queue the driver never enabled is accepted and ignored (0)",
			    BIT_MODE(M_IRQ) },
	[T_IRQ_IN_RESET] = { "VQ_INJECT_IRQ while the reset waits for our reply succeeds",
			     BIT_MODE(M_IRQ) },
	[T_IRQ_AFTER_RESET] = { "VQ_INJECT_IRQ after the reset fails with EINVAL",
				BIT_MODE(M_IRQ) },
	[T_CFG_EARLY] = { "DEV_INJECT_CONFIG_IRQ before DRIVER_OK fails with EINVAL",
			  BIT_MODE(M_IRQ) | BIT_MODE(M_CONFIG) },
	[T_CFG_BAD] = { "malformed DEV_SET_CONFIG calls fail with EINVAL",
			BIT_MODE(M_CONFIG) },
	[T_CFG_SET] = { "DEV_SET_CONFIG of the capacity during I/O succeeds",
			BIT_MODE(M_CONFIG) },
	[T_CFG_IRQ] = { "DEV_INJECT_CONFIG_IRQ during I/O succeeds",
			BIT_MODE(M_CONFIG) },
	[T_HELD] = { "requests read and never answered", SILENT_MODES },
	[T_BROKEN_POLL] = { "the device broke: poll reports POLLERR", SILENT_MODES },
	[T_BROKEN_IOCTL] = { "every device ioctl on the broken device fails with EPERM",
			     SILENT_MODES },
	[T_BROKEN_REPLY] = { "a late reply on the broken device fails with ENOENT",
			     SILENT_MODES },
	[T_BROKEN_READ] = { "a non-blocking read on the broken device finds nothing (EAGAIN)",
			    SILENT_MODES },
	[T_DESC_RO] = { "writes to the split ring's descriptor table get SIGBUS",
			BIT_MODE(M_RING_DESC) },
};

static pthread_mutex_t tally_lock = PTHREAD_MUTEX_INITIALIZER;

static void __attribute__((format(printf, 3, 4)))
tally(unsigned int t, bool good, const char *fmt, ...)
{
	struct tally *ty = &tallies[t];
	va_list ap;

	pthread_mutex_lock(&tally_lock);
	ty->n++;
	if (!good && !ty->bad++) {
		va_start(ap, fmt);
		vsnprintf(ty->first, sizeof(ty->first), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&tally_lock);
}

/*
 * expect - record a call that returned @ret: with @want 0 it must have
 * returned @okval, otherwise failed with errno @want.
 */
static void expect(unsigned int t, long ret, long okval, int want,
		   const char *what)
{
	int e = ret < 0 ? errno : 0;
	bool good = want ? ret < 0 && e == want : ret == okval;

	if (ret < 0)
		tally(t, good, "%s: %s, want %s", what, errname(e),
		      want ? errname(want) : "success");
	else
		tally(t, good, "%s: returned %ld, want %s", what, ret,
		      want ? errname(want) : "success");
}

/* ------------------------------------------------------------------ */
/* The device                                                          */

struct hq {
	unsigned int index;
	pthread_mutex_t lock;		/* ring */
	struct vdring ring;
	struct iovec iov[MAX_IOV];
	int kickfd;
	int stopfd;
	pthread_t thread;
	bool running;
	bool poisoned;
	bool warned;
	unsigned long completed;
};

static struct {
	const char *name;
	enum mode mode;
	unsigned int nq;	/* queues virtio_blk is told about */
	unsigned int vq_num;	/* queues of the device */
	unsigned int qsize;
	unsigned int seconds;
	uint64_t poison_sector;
	uint64_t size;
	char *disk;
	int fd;
	int stopfd;
	uint64_t features;
	uint8_t status;
	bool ok_answered;	/* DRIVER_OK was answered */
	bool broken;
	struct vduse_as as;
	struct hq q[MAX_QUEUES + 1];
	pthread_t helper;
	bool helper_running;
	volatile bool helper_stop;
	uint32_t held[64];
	unsigned int nheld;
	unsigned long nreq;
} H = { .fd = -1, .stopfd = -1 };

static bool answering_stopped(void)
{
	return H.mode == M_SILENT ||
	       (H.mode == M_SILENT_AFTER_OK && H.ok_answered);
}

static int inject_irq(uint32_t index)
{
	return ioctl(H.fd, VDUSE_VQ_INJECT_IRQ, &index);
}

/* Ask the kernel for the IOTLB entry covering @iova and map it. */
static int as_fault(void *ctx, struct vduse_as *as, uint64_t iova)
{
	struct vduse_iotlb_entry e = { .start = iova, .last = iova };
	struct vduse_map m = { 0 };
	int fd, ret;

	(void)ctx;
	fd = ioctl(H.fd, VDUSE_IOTLB_GET_FD, &e);
	if (fd < 0)
		return -errno;
	m.start = e.start;
	m.last = e.last;
	m.perm = e.perm;
	ret = iotlb_map_fd(as, &m, fd, e.offset);
	close(fd);
	return ret;
}

static void *queue_xlate(void *opaque, uint64_t iova, uint64_t len,
			 bool write, uint64_t *plen)
{
	(void)opaque;
	return iotlb_translate(&H.as, iova, len, write, plen, as_fault, NULL);
}

/* ------------------------------------------------------------------ */
/* virtio-blk requests                                                 */

static size_t iov_copy(const struct iovec *iov, unsigned int cnt,
		       size_t off, char *buf, size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - off;
		if (n > len - done)
			n = len - done;
		if (to_iov)
			memcpy((char *)iov[i].iov_base + off, buf + done, n);
		else
			memcpy(buf + done, (char *)iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

static size_t iov_len(const struct iovec *iov, unsigned int cnt)
{
	size_t n = 0;

	for (unsigned int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/*
 * Serve one request against the RAM disk.  Returns the number of bytes
 * written to the device-writable buffers; *@sector gets the request's
 * first sector.
 */
static uint32_t blk_serve(struct hq *q, const struct vring_elem *e,
			  uint64_t *sector)
{
	const struct iovec *out = q->iov, *in = q->iov + e->out_num;
	struct virtio_blk_outhdr hdr;
	size_t out_len = iov_len(out, e->out_num);
	size_t in_len = iov_len(in, e->in_num), data;
	uint8_t status = VIRTIO_BLK_S_OK;
	uint64_t off;
	uint32_t len = 1;

	*sector = UINT64_MAX;
	if (!in_len || iov_copy(out, e->out_num, 0, (char *)&hdr, sizeof(hdr),
				false) != sizeof(hdr))
		return 0;	/* malformed: nothing to write a status to */
	*sector = le64toh(hdr.sector);
	off = *sector << SECTOR_SHIFT;
	switch (le32toh(hdr.type)) {
	case VIRTIO_BLK_T_IN:
		data = in_len - 1;
		if (*sector > H.size >> SECTOR_SHIFT || data > H.size - off) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		iov_copy(in, e->in_num, 0, H.disk + off, data, true);
		len = in_len;
		break;
	case VIRTIO_BLK_T_OUT:
		data = out_len - sizeof(hdr);
		if (*sector > H.size >> SECTOR_SHIFT || data > H.size - off) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		iov_copy(out, e->out_num, sizeof(hdr), H.disk + off, data,
			 false);
		break;
	case VIRTIO_BLK_T_FLUSH:
		break;
	case VIRTIO_BLK_T_GET_ID: {
		char id[VIRTIO_BLK_ID_BYTES] = "hostile";

		len = iov_copy(in, e->in_num, 0, id,
			       in_len - 1 < sizeof(id) ? in_len - 1 : sizeof(id),
			       true) + 1;
		break;
	}
	default:
		status = VIRTIO_BLK_S_UNSUPP;
	}
	iov_copy(in, e->in_num, in_len - 1, (char *)&status, 1, true);
	return len;
}

/* Volatile: the handler reads it, so its stores must not be elided. */
static __thread sigjmp_buf *volatile desc_env;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	char msg[64];
	int n;

	(void)uc;
	if (!desc_env) {
		n = snprintf(msg, sizeof(msg), "vduse_hostile: signal %d at %p\n",
			     sig, si->si_addr);
		if (write(STDERR_FILENO, msg, n) < 0)
			abort();
		abort();
	}
	siglongjmp(*desc_env, 1);
}

/*
 * Write @flags back with the value it has: harmless where the write goes
 * through (the stock module), and a SIGBUS where the table is read-only.
 */
static bool desc_writable(uint16_t *flags)
{
	volatile uint16_t *p = flags;
	sigjmp_buf env;
	bool wrote = false;

	if (!sigsetjmp(env, 1)) {
		desc_env = &env;
		*p = *p;
		wrote = true;
	}
	desc_env = NULL;
	return wrote;
}

/*
 * Publish the completion of @id and, in the same update of used->idx, a
 * bogus entry: the driver sees both in one interrupt, so no other request
 * of this queue can be in flight when it finds the bogus one.  Split ring,
 * q->lock held.
 */
static void push_with_bogus(struct hq *q, uint16_t id, uint32_t len,
			    uint32_t bogus)
{
	struct vdring *r = &q->ring;
	uint16_t idx = r->split.used_idx;
	struct vring_used_elem *e0, *e1;

	e0 = &r->split.used->ring[idx & (r->num - 1)];
	e1 = &r->split.used->ring[(uint16_t)(idx + 1) & (r->num - 1)];
	__atomic_store_n(&e0->id, htole32(id), __ATOMIC_RELAXED);
	__atomic_store_n(&e0->len, htole32(len), __ATOMIC_RELAXED);
	__atomic_store_n(&e1->id, htole32(bogus), __ATOMIC_RELAXED);
	__atomic_store_n(&e1->len, htole32(0), __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&r->split.used->idx, htole16(idx + 2),
			 __ATOMIC_RELAXED);
	r->split.used_idx = idx + 2;
	if (r->inflight)
		r->inflight--;
}

/* Complete one popped request, hostile where the mode says so.  q->lock held. */
static bool queue_complete(struct hq *q, const struct vring_elem *e)
{
	uint64_t sector;
	uint32_t len = blk_serve(q, e, &sector);

	if (H.mode == M_RING_BAD_ID && !q->poisoned &&
	    sector == H.poison_sector) {
		uint32_t bogus = q->index % 2 ? e->id : q->ring.num + 7;

		q->poisoned = true;
		push_with_bogus(q, e->id, len, bogus);
		note("queue %u: completed id %u with a bogus used entry (id %u, %s)",
		     q->index, e->id, bogus,
		     q->index % 2 ? "not a head" : "out of range");
		expect(T_POISON, inject_irq(q->index), 0, 0, "VQ_INJECT_IRQ");
		return false;	/* signalled already */
	}
	if (H.mode == M_RING_BAD_LEN) {
		len = q->completed++ % 2 ? 0xffffffffu : len + (1u << 20);
		tally(T_BADLEN, true, "-");
	}
	if (H.mode == M_RING_DESC && !q->ring.packed)
		tally(T_DESC_RO, !desc_writable(&q->ring.split.desc[e->id].flags),
		      "queue %u: the write to descriptor %u went through",
		      q->index, e->id);
	vring_push(&q->ring, e->id, e->ndesc, len);
	return true;
}

/* Serve until the ring is empty with kicks enabled. */
static void queue_process(struct hq *q)
{
	struct vring_elem e;
	bool more, notify;
	int ret;

	do {
		notify = false;
		pthread_mutex_lock(&q->lock);
		vring_kick_enable(&q->ring, false);
		while ((ret = vring_pop(&q->ring, &e, q->iov, MAX_IOV)) == 1)
			notify |= queue_complete(q, &e);
		if (ret < 0 && !q->warned) {
			q->warned = true;
			note("queue %u: malformed ring (%s): queue stopped",
			     q->index, strerror(-ret));
		}
		notify = notify && vring_need_notify(&q->ring);
		more = !q->ring.broken && vring_kick_enable(&q->ring, true);
		pthread_mutex_unlock(&q->lock);
		/* EPERM once the device is broken (silent-after-ok). */
		if (notify && inject_irq(q->index) && errno != EPERM)
			note("queue %u: VQ_INJECT_IRQ: %s", q->index,
			     errname(errno));
	} while (more);
}

static void *queue_thread(void *arg)
{
	struct hq *q = arg;
	struct pollfd p[2] = {
		{ .fd = q->kickfd, .events = POLLIN },
		{ .fd = q->stopfd, .events = POLLIN },
	};
	uint64_t v;

	queue_process(q);
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN) {
			if (read(q->kickfd, &v, sizeof(v)) < 0) {
				/* nothing pending */
			}
			queue_process(q);
		}
	}
	return NULL;
}

static int queue_start(struct hq *q)
{
	struct vduse_vq_eventfd kick = { .index = q->index };
	struct vduse_vq_info info = { .index = q->index };
	int ret;

	if (ioctl(H.fd, VDUSE_VQ_GET_INFO, &info))
		return -errno;
	if (!info.ready || !info.num)
		return 0;	/* not enabled by the driver */
	memset(&q->ring, 0, sizeof(q->ring));
	q->ring.xlate = queue_xlate;
	q->ring.xlate_opaque = q;
	vring_set_state(&q->ring, info.split.avail_index, 0, 0, 0);
	ret = vring_setup(&q->ring, info.num, H.features, info.desc_addr,
			  info.driver_addr, info.device_addr);
	if (ret)
		return ret;
	q->poisoned = false;
	q->warned = false;
	q->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->kickfd < 0 || q->stopfd < 0)
		goto err;
	kick.fd = q->kickfd;
	if (ioctl(H.fd, VDUSE_VQ_SETUP_KICKFD, &kick))
		goto err;
	errno = pthread_create(&q->thread, NULL, queue_thread, q);
	if (errno)
		goto err;
	q->running = true;
	return 0;
err:
	ret = -errno;
	if (q->kickfd >= 0)
		close(q->kickfd);
	if (q->stopfd >= 0)
		close(q->stopfd);
	q->kickfd = q->stopfd = -1;
	return ret;
}

static void queue_stop(struct hq *q)
{
	struct vduse_vq_eventfd kick = {
		.index = q->index,
		.fd = VDUSE_EVENTFD_DEASSIGN,
	};
	uint64_t one = 1;

	if (!q->running)
		return;
	if (write(q->stopfd, &one, sizeof(one)) < 0) {
		/* cannot fail on a fresh eventfd */
	}
	pthread_join(q->thread, NULL);
	q->running = false;
	ioctl(H.fd, VDUSE_VQ_SETUP_KICKFD, &kick);	/* EPERM if broken */
	close(q->kickfd);
	close(q->stopfd);
	q->kickfd = q->stopfd = -1;
}

/* ------------------------------------------------------------------ */
/* Helper threads: interrupt storms and config changes after DRIVER_OK  */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void irq_storm(void)
{
	double end = now() + H.seconds;
	unsigned long rounds = 0;

	while (!H.helper_stop && (!H.seconds || now() < end)) {
		for (unsigned int i = 0; i < H.nq; i++)
			if (H.q[i].running)
				expect(T_IRQ_READY, inject_irq(i), 0, 0,
				       "enabled queue");
		if (H.vq_num > H.nq)
			expect(T_IRQ_UNREADY, inject_irq(H.nq), 0, 0,
			       "never enabled queue");
		expect(T_IRQ_BAD, inject_irq(H.vq_num), 0, EINVAL, "index vq_num");
		expect(T_IRQ_BAD, inject_irq(0xffff), 0, EINVAL, "index 0xffff");
		expect(T_IRQ_BAD, inject_irq(UINT32_MAX), 0, EINVAL,
		       "index 0xffffffff");
		if (++rounds % 64 == 0)
			usleep(1000);
	}
	note("irq: %lu rounds of injections", rounds);
}

static int set_config(uint32_t offset, uint32_t length, const void *data)
{
	struct {
		struct vduse_config_data hdr;
		uint8_t buf[sizeof(struct virtio_blk_config)];
	} c;

	memset(&c, 0, sizeof(c));
	c.hdr.offset = offset;
	c.hdr.length = length;
	if (data)
		memcpy(c.buf, data, length <= sizeof(c.buf) ? length : sizeof(c.buf));
	return ioctl(H.fd, VDUSE_DEV_SET_CONFIG, &c);
}

static void set_capacity(uint64_t bytes, const char *what)
{
	uint64_t cap = htole64(bytes >> SECTOR_SHIFT);

	expect(T_CFG_SET, set_config(offsetof(struct virtio_blk_config, capacity),
				     sizeof(cap), &cap), 0, 0, what);
	expect(T_CFG_IRQ, ioctl(H.fd, VDUSE_DEV_INJECT_CONFIG_IRQ), 0, 0, what);
}

static void config_churn(void)
{
	const uint32_t size = sizeof(struct virtio_blk_config);
	double end = now() + H.seconds;
	unsigned long changes = 0;

	expect(T_CFG_BAD, set_config(0, 0, NULL), 0, EINVAL, "length 0");
	expect(T_CFG_BAD, set_config(size + 1, 1, NULL), 0, EINVAL,
	       "offset beyond the config space");
	expect(T_CFG_BAD, set_config(8, size, NULL), 0, EINVAL,
	       "range beyond the config space");
	expect(T_CFG_BAD, set_config(4, UINT32_MAX, NULL), 0, EINVAL,
	       "length 0xffffffff");
	while (!H.helper_stop && (!H.seconds || now() < end)) {
		set_capacity(changes++ % 2 ? H.size : H.size / 2, "capacity");
		usleep(100000);
	}
	/* Not after a reset began: the driver is going away. */
	if (!H.helper_stop)
		set_capacity(H.size, "capacity restored");
	note("config: %lu capacity changes", changes);
}

/*
 * The kernel stores DRIVER_OK once the thread that sent it has seen our
 * reply, which may be a moment after our write returned: wait for it to
 * show (a config interrupt is harmless) before checking what needs it.
 */
static void wait_driver_ok(void)
{
	double end = now() + 10;

	while (!H.helper_stop && now() < end) {
		if (ioctl(H.fd, VDUSE_DEV_INJECT_CONFIG_IRQ) == 0)
			return;
		usleep(1000);
	}
}

static void *helper_thread(void *arg)
{
	(void)arg;
	wait_driver_ok();
	if (H.mode == M_IRQ)
		irq_storm();
	else
		config_churn();
	return NULL;
}

static void helper_start(void)
{
	if (H.mode != M_IRQ && H.mode != M_CONFIG)
		return;
	H.helper_stop = false;
	if (pthread_create(&H.helper, NULL, helper_thread, NULL) == 0)
		H.helper_running = true;
}

static void helper_stop(void)
{
	if (!H.helper_running)
		return;
	H.helper_stop = true;
	pthread_join(H.helper, NULL);
	H.helper_running = false;
}

/* ------------------------------------------------------------------ */
/* Control messages                                                    */

static void stop_all(void)
{
	helper_stop();
	for (unsigned int i = 0; i < H.vq_num; i++)
		queue_stop(&H.q[i]);
	iotlb_invalidate(&H.as, 0, UINT64_MAX);
	iotlb_reap(&H.as);
}

static void start_all(void)
{
	int ret;

	if (ioctl(H.fd, VDUSE_DEV_GET_FEATURES, &H.features))
		note("DEV_GET_FEATURES: %s", errname(errno));
	for (unsigned int i = 0; i < H.vq_num; i++) {
		ret = queue_start(&H.q[i]);
		if (ret)
			note("queue %u did not start: %s", i, errname(-ret));
	}
}

static uint32_t handle_request(const struct vduse_dev_request *req,
			       struct vduse_dev_response *resp)
{
	uint8_t old = H.status, st;
	struct hq *q;
	bool wa, wu;
	uint16_t ai, ui;

	switch (req->type) {
	case VDUSE_SET_STATUS:
		st = req->s.status;
		H.status = st;
		if (!st) {
			if ((old & VIRTIO_CONFIG_S_DRIVER_OK) && H.mode == M_IRQ)
				expect(T_IRQ_IN_RESET, inject_irq(0), 0, 0,
				       "reset pending");
			stop_all();
		} else if ((st & VIRTIO_CONFIG_S_DRIVER_OK) &&
			   !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
			start_all();
		}
		return VDUSE_REQ_RESULT_OK;
	case VDUSE_GET_VQ_STATE:
		if (req->vq_state.index >= H.vq_num)
			return VDUSE_REQ_RESULT_FAILED;
		q = &H.q[req->vq_state.index];
		pthread_mutex_lock(&q->lock);
		vring_get_state(&q->ring, &ai, &wa, &ui, &wu);
		pthread_mutex_unlock(&q->lock);
		resp->vq_state.index = q->index;
		resp->vq_state.split.avail_index = ai;
		return VDUSE_REQ_RESULT_OK;
	case VDUSE_UPDATE_IOTLB:
		iotlb_invalidate(&H.as, req->iova.start, req->iova.last);
		return VDUSE_REQ_RESULT_OK;
	default:
		return VDUSE_REQ_RESULT_FAILED;
	}
}

static long write_reply(const struct vduse_dev_response *resp)
{
	return write(H.fd, resp, RESP_SIZE);
}

static void reply_bad_ids(const struct vduse_dev_response *resp)
{
	static const uint32_t delta[] = { 1, 2, (uint32_t)-1, 0x80000000u };
	struct vduse_dev_response r = *resp;
	char what[64];

	for (unsigned int i = 0; i < sizeof(delta) / sizeof(delta[0]); i++) {
		r.request_id = resp->request_id + delta[i];
		snprintf(what, sizeof(what), "id %u for request %u",
			 r.request_id, resp->request_id);
		expect(T_WRONG_ID, write_reply(&r), 0, ENOENT, what);
	}
}

/* The refused writes of bad-writes, then the real reply in one of 4 ways. */
static void reply_bad_writes(const struct vduse_dev_response *resp)
{
	static unsigned int turn;
	static char *guard;
	long page = sysconf(_SC_PAGESIZE);
	struct vduse_dev_response r = *resp;
	struct pollfd p = { .fd = H.fd, .events = POLLOUT };
	const void *volatile nowhere = NULL;
	char big[4096], *half;
	struct iovec iov[2];

	if (!guard) {
		guard = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (guard == MAP_FAILED || mprotect(guard + page, page, PROT_NONE)) {
			note("cannot make a guard page: %s", strerror(errno));
			exit(1);
		}
	}
	expect(T_SHORT, write(H.fd, resp, RESP_SIZE - 1), 0, EINVAL, "151 bytes");
	expect(T_SHORT, write(H.fd, resp, 1), 0, EINVAL, "1 byte");
	expect(T_UNREADABLE, write(H.fd, nowhere, RESP_SIZE), 0, EINVAL, "NULL");
	half = guard + page - 100;
	memcpy(half, resp, 100);
	expect(T_UNREADABLE, write(H.fd, half, RESP_SIZE), 0, EINVAL,
	       "100 readable bytes");
	r.reserved[2] = 1;
	expect(T_RESERVED, write_reply(&r), 0, EINVAL, "reserved[2] = 1");
	tally(T_STILL_WAITING, poll(&p, 1, 0) == 1 && (p.revents & POLLOUT),
	      "request %u: revents 0x%x", resp->request_id, p.revents);

	switch (turn++ % 4) {
	case 0:
		expect(T_REPLY, write_reply(resp), RESP_SIZE, 0, "reply");
		break;
	case 1:
		iov[0].iov_base = (char *)resp;
		iov[0].iov_len = 100;
		iov[1].iov_base = (char *)resp + 100;
		iov[1].iov_len = RESP_SIZE - 100;
		expect(T_WRITEV, writev(H.fd, iov, 2), RESP_SIZE, 0, "100 + 52");
		tally(T_REPLY, true, "-");
		break;
	default:
		memset(big, 0xa5, sizeof(big));
		memcpy(big, resp, RESP_SIZE);
		expect(T_OVERSIZED, write(H.fd, big, turn % 4 == 3 ? sizeof(big) :
					  RESP_SIZE + 1), RESP_SIZE, 0, "oversized");
		tally(T_REPLY, true, "-");
		break;
	}
}

/* Replies for requests that are queued but not read: must be refused. */
static void unsolicited_before_read(void)
{
	static uint32_t last = UINT32_MAX;
	struct vduse_dev_response r = { 0 };

	r.request_id = last + 1;	/* most likely the one queued */
	expect(T_UNREAD, write_reply(&r), 0, ENOENT, "next id, unread");
	r.request_id = last + 2;
	expect(T_UNREAD, write_reply(&r), 0, ENOENT, "id after next, unread");
	last = r.request_id - 1;
}

static void send_reply(struct vduse_dev_response *resp)
{
	static const uint32_t garbage[] = {
		2, 0xff, 0x80000000u, 0xffffffffu, 0xdeadbeefu,
	};
	static unsigned int g;

	switch (H.mode) {
	case M_BAD_IDS:
		reply_bad_ids(resp);
		break;
	case M_BAD_WRITES:
		reply_bad_writes(resp);
		return;
	case M_GARBAGE:
		resp->result = garbage[g++ % (sizeof(garbage) / sizeof(garbage[0]))];
		expect(T_GARBAGE, write_reply(resp), RESP_SIZE, 0, "garbage");
		return;
	default:
		break;
	}
	expect(T_REPLY, write_reply(resp), RESP_SIZE, 0, "reply");
	if (H.mode == M_UNSOLICITED)
		expect(T_TWICE, write_reply(resp), 0, ENOENT, "second reply");
}

/* After the reply: what needs the kernel to have taken it. */
static void after_reply(const struct vduse_dev_request *req, uint8_t old)
{
	double end;
	int ret = 0;

	if (req->type != VDUSE_SET_STATUS)
		return;
	if ((req->s.status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		H.ok_answered = true;
		helper_start();
		return;
	}
	if (req->s.status || !(old & VIRTIO_CONFIG_S_DRIVER_OK) ||
	    H.mode != M_IRQ)
		return;
	/* The kernel resets the device after our reply: wait for it. */
	for (end = now() + 10; now() < end; usleep(10000)) {
		ret = inject_irq(0);
		if (ret < 0 && errno == EINVAL)
			break;
	}
	expect(T_IRQ_AFTER_RESET, ret, 0, EINVAL, "after the reset");
}

/* The device is broken: check it looks it, once. */
static void check_broken(void)
{
	struct vduse_vq_info info = { .index = 0 };
	struct vduse_vq_eventfd kick = { .index = 0, .fd = VDUSE_EVENTFD_DEASSIGN };
	struct vduse_vq_config vc = { .index = 0, .max_size = H.qsize };
	struct vduse_iotlb_entry e = { .start = 0, .last = 0 };
	struct vduse_dev_response r = { 0 };
	struct vduse_dev_request req;
	uint64_t u64;
	uint32_t cap = 0;

	H.broken = true;
	tally(T_NOT_BROKEN, H.mode == M_SILENT || H.mode == M_SILENT_AFTER_OK,
	      "POLLERR after %lu requests", H.nreq);
	if (!(BIT_MODE(H.mode) & SILENT_MODES))
		return;
	tally(T_BROKEN_POLL, true, "-");
	expect(T_BROKEN_IOCTL, ioctl(H.fd, VDUSE_DEV_GET_FEATURES, &u64), 0,
	       EPERM, "DEV_GET_FEATURES");
	expect(T_BROKEN_IOCTL, ioctl(H.fd, VDUSE_VQ_GET_INFO, &info), 0, EPERM,
	       "VQ_GET_INFO");
	expect(T_BROKEN_IOCTL, ioctl(H.fd, VDUSE_VQ_SETUP, &vc), 0, EPERM,
	       "VQ_SETUP");
	expect(T_BROKEN_IOCTL, ioctl(H.fd, VDUSE_VQ_SETUP_KICKFD, &kick), 0,
	       EPERM, "VQ_SETUP_KICKFD");
	expect(T_BROKEN_IOCTL, inject_irq(0), 0, EPERM, "VQ_INJECT_IRQ");
	expect(T_BROKEN_IOCTL, set_config(0, sizeof(cap), &cap), 0, EPERM,
	       "DEV_SET_CONFIG");
	expect(T_BROKEN_IOCTL, ioctl(H.fd, VDUSE_DEV_INJECT_CONFIG_IRQ), 0,
	       EPERM, "DEV_INJECT_CONFIG_IRQ");
	expect(T_BROKEN_IOCTL, ioctl(H.fd, VDUSE_IOTLB_GET_FD, &e), 0, EPERM,
	       "IOTLB_GET_FD");
	r.request_id = H.nheld ? H.held[0] : 0;
	expect(T_BROKEN_REPLY, write_reply(&r), 0, ENOENT, "late reply");
	fcntl(H.fd, F_SETFL, fcntl(H.fd, F_GETFL) | O_NONBLOCK);
	expect(T_BROKEN_READ, read(H.fd, &req, sizeof(req)), 0, EAGAIN,
	       "read");
}

static void handle_one(void)
{
	struct vduse_dev_request req;
	struct vduse_dev_response resp;
	uint8_t old = H.status;
	ssize_t n;

	if (H.mode == M_UNSOLICITED)
		unsolicited_before_read();
	n = read(H.fd, &req, sizeof(req));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != sizeof(req)) {
		note("read of a request: %s", n < 0 ? errname(errno) : "short");
		return;
	}
	if (answering_stopped()) {
		if (H.nheld < sizeof(H.held) / sizeof(H.held[0]))
			H.held[H.nheld++] = req.request_id;
		tally(T_HELD, true, "-");
		note("request %u (type %u) read, never answered",
		     req.request_id, req.type);
		return;
	}
	memset(&resp, 0, sizeof(resp));
	resp.request_id = req.request_id;
	resp.result = handle_request(&req, &resp);
	send_reply(&resp);
	H.nreq++;
	after_reply(&req, old);
}

static void msg_loop(void)
{
	struct pollfd p[2] = {
		{ .fd = H.fd, .events = POLLIN },
		{ .fd = H.stopfd, .events = POLLIN },
	};

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			note("poll: %s", strerror(errno));
			return;
		}
		if (p[1].revents)
			return;
		if (p[0].revents & POLLERR) {
			check_broken();
			p[0].fd = -1;	/* only the stop signal from now on */
			continue;
		}
		if (p[0].revents & POLLIN)
			handle_one();
	}
}

/* ------------------------------------------------------------------ */
/* Creation, the checks before attach, teardown                        */

static int destroy_dev(int ctl)
{
	char name[VDUSE_NAME_MAX] = { 0 };

	strncpy(name, H.name, sizeof(name) - 1);
	return ioctl(ctl, VDUSE_DESTROY_DEV, name) ? -errno : 0;
}

static int create_dev(int ctl)
{
	struct {
		struct vduse_dev_config hdr;
		struct virtio_blk_config blk;
	} c;
	uint64_t f;

	f = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_ACCESS_PLATFORM |
	    1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
	    1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
	    1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (H.vq_num > 1)
		f |= 1ULL << VIRTIO_BLK_F_MQ;
	memset(&c, 0, sizeof(c));
	strncpy(c.hdr.name, H.name, sizeof(c.hdr.name) - 1);
	c.hdr.device_id = VIRTIO_ID_BLOCK;
	c.hdr.features = f;
	c.hdr.vq_num = H.vq_num;
	c.hdr.vq_align = sysconf(_SC_PAGESIZE);
	c.hdr.config_size = sizeof(c.blk);
	c.blk.capacity = htole64(H.size >> SECTOR_SHIFT);
	c.blk.seg_max = htole32(H.qsize - 2);
	c.blk.blk_size = htole32(512);
	c.blk.num_queues = htole16(H.nq);
	if (ioctl(ctl, VDUSE_CREATE_DEV, &c) == 0)
		return 0;
	if (errno != EEXIST || destroy_dev(ctl))
		return -errno;
	return ioctl(ctl, VDUSE_CREATE_DEV, &c) ? -errno : 0;
}

static int open_dev(void)
{
	char path[sizeof("/dev/vduse/") + VDUSE_NAME_MAX];

	snprintf(path, sizeof(path), "/dev/vduse/%s", H.name);
	H.fd = open(path, O_RDWR | O_CLOEXEC);
	if (H.fd < 0)
		return -errno;
	for (unsigned int i = 0; i < H.vq_num; i++) {
		struct vduse_vq_config vc = { .index = i, .max_size = H.qsize };

		if (ioctl(H.fd, VDUSE_VQ_SETUP, &vc))
			return -errno;
	}
	return 0;
}

/* Before anybody attached the device: nothing to interrupt, no request. */
static void checks_before_attach(void)
{
	struct vduse_dev_response r = { 0 };
	static const uint32_t ids[] = { 0, 1, 7, UINT32_MAX };

	if (H.mode == M_IRQ) {
		expect(T_IRQ_EARLY, inject_irq(0), 0, EINVAL, "queue 0");
		expect(T_IRQ_BAD, inject_irq(H.vq_num), 0, EINVAL, "index vq_num");
		expect(T_IRQ_BAD, inject_irq(UINT32_MAX), 0, EINVAL,
		       "index 0xffffffff");
	}
	if (H.mode == M_IRQ || H.mode == M_CONFIG)
		expect(T_CFG_EARLY, ioctl(H.fd, VDUSE_DEV_INJECT_CONFIG_IRQ), 0,
		       EINVAL, "before attach");
	if (H.mode != M_UNSOLICITED)
		return;
	for (unsigned int i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		r.request_id = ids[i];
		expect(T_NEVER_SENT, write_reply(&r), 0, ENOENT, "before attach");
	}
}

static void report(void)
{
	unsigned int failed = 0;

	tally(T_NOT_BROKEN, !H.broken || (BIT_MODE(H.mode) & SILENT_MODES),
	      "broken");
	for (unsigned int t = 0; t < NR_TALLIES; t++) {
		struct tally *ty = &tallies[t];
		bool required = ty->modes & BIT_MODE(H.mode);

		if (!ty->n && !required)
			continue;
		if (t == T_NOT_BROKEN && (BIT_MODE(H.mode) & SILENT_MODES))
			continue;
		if (!ty->n) {
			printf("not ok - hostile %s: %s (never exercised)\n",
			       mode_names[H.mode], ty->what);
			failed++;
		} else if (ty->bad) {
			printf("not ok - hostile %s: %s (%lu of %lu wrong; first: %s)\n",
			       mode_names[H.mode], ty->what, ty->bad, ty->n,
			       ty->first);
			failed++;
		} else {
			printf("ok - hostile %s: %s (%lu)\n", mode_names[H.mode],
			       ty->what, ty->n);
		}
	}
	fflush(stdout);
	if (failed)
		exit(1);
}

static void on_signal(int sig)
{
	uint64_t one = 1;

	(void)sig;
	if (write(H.stopfd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
}

static void __attribute__((noreturn)) usage(int status)
{
	fprintf(status ? stderr : stdout,
"Usage: vduse_hostile --name NAME --mode MODE [--queues N] [--size MIB]\n"
"                     [--queue-size N] [--seconds S] [--poison-sector S]\n"
"Serves a RAM virtio-blk device through VDUSE and misbehaves as MODE says,\n"
"until SIGTERM; then prints TAP lines and destroys the device.\n"
"Modes: good bad-ids bad-writes garbage-results unsolicited ring-bad-id\n"
"       ring-bad-len irq config silent silent-after-ok ring-desc\n");
	exit(status);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },
		{ "queues", required_argument, NULL, 'q' },
		{ "size", required_argument, NULL, 's' },
		{ "queue-size", required_argument, NULL, 'Q' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "poison-sector", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode = NULL;
	int c;

	H.nq = 1;
	H.qsize = 128;
	H.seconds = 0;	/* until the reset */
	H.size = 64ULL << 20;
	H.poison_sector = 16384;	/* 8 MiB */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': H.name = optarg; break;
		case 'm': mode = optarg; break;
		case 'q': H.nq = strtoul(optarg, NULL, 0); break;
		case 's': H.size = strtoull(optarg, NULL, 0) << 20; break;
		case 'Q': H.qsize = strtoul(optarg, NULL, 0); break;
		case 'S': H.seconds = strtoul(optarg, NULL, 0); break;
		case 'p': H.poison_sector = strtoull(optarg, NULL, 0); break;
		case 'h': usage(0);
		default: usage(2);
		}
	}
	if (!H.name || !*H.name || !mode || optind != argc)
		usage(2);
	for (H.mode = 0; H.mode < NR_MODES; H.mode++)
		if (!strcmp(mode, mode_names[H.mode]))
			break;
	if (H.mode == NR_MODES || !H.nq || H.nq > MAX_QUEUES ||
	    H.qsize < 4 || H.qsize > 1024 || (H.qsize & (H.qsize - 1)) ||
	    H.size < (1 << 20)) {
		fprintf(stderr, "vduse_hostile: bad argument\n");
		usage(2);
	}
	/* irq mode: one more queue, which virtio_blk never enables. */
	H.vq_num = H.nq + (H.mode == M_IRQ);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t v = 0;
	int ctl, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	H.stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	H.disk = mmap(NULL, H.size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (H.stopfd < 0 || H.disk == MAP_FAILED) {
		perror("vduse_hostile");
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_NODEFER | SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	iotlb_init(&H.as);
	for (unsigned int i = 0; i < H.vq_num; i++) {
		H.q[i].index = i;
		H.q[i].kickfd = H.q[i].stopfd = -1;
		pthread_mutex_init(&H.q[i].lock, NULL);
	}

	ctl = open("/dev/vduse/control", O_RDWR | O_CLOEXEC);
	if (ctl < 0 || ioctl(ctl, VDUSE_SET_API_VERSION, &v)) {
		perror("vduse_hostile: /dev/vduse/control");
		return 1;
	}
	ret = create_dev(ctl);
	if (!ret)
		ret = open_dev();
	if (ret) {
		fprintf(stderr, "vduse_hostile: creating %s: %s\n", H.name,
			strerror(-ret));
		return 1;
	}
	note("hostile %s: /dev/vduse/%s ready (%u queue%s, %u entries)",
	     mode_names[H.mode], H.name, H.vq_num, H.vq_num > 1 ? "s" : "",
	     H.qsize);
	checks_before_attach();
	msg_loop();

	stop_all();
	close(H.fd);
	ret = destroy_dev(ctl);
	note("DESTROY_DEV %s: %s", H.name, errname(-ret));
	close(ctl);
	report();
	return 0;
}
