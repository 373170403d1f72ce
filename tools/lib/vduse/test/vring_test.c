// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests for vring.c: a fake driver in this process lays out
 * split and packed rings in a "guest memory" arena, and the device side
 * reaches them through an xlate callback, at IOVA_BASE + offset (so an
 * IOVA is never a pointer).  The callback can split translations at page
 * boundaries, leave a range unmapped and make a range read-only.
 *
 * Output is TAP: "ok N - ...", "not ok N - ...", then the plan.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "tap.h"
#include "vring.h"

/* ------------------------------------------------------------------ */
/* TAP                                                                  */

static unsigned int ntests, nfailed;

static void __attribute__((format(printf, 3, 4)))
report(bool pass, int line, const char *fmt, ...)
{
	va_list ap;

	ntests++;
	if (!pass)
		nfailed++;
	printf("%sok %u - ", pass ? "" : "not ", ntests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!pass)
		note("failed at line %d", line);
	fflush(stdout);
}

#define CHECK(cond, ...) report(!!(cond), __LINE__, __VA_ARGS__)

/* Integers: print both values on failure. */
#define CHECK_EQ(got, want, ...)					\
	do {								\
		long long g_ = (long long)(got), w_ = (long long)(want);\
		report(g_ == w_, __LINE__, __VA_ARGS__);		\
		if (g_ != w_)						\
			note("got %lld, want %lld", g_, w_);		\
	} while (0)

/* Return codes: 1, 0 or -errno. */
#define CHECK_RET(got, want, ...)					\
	do {								\
		int g_ = (got), w_ = (want);				\
		report(g_ == w_, __LINE__, __VA_ARGS__);		\
		if (g_ != w_)						\
			note("got %d (%s), want %d (%s)", g_,		\
			     errname(g_ < 0 ? -g_ : 0), w_,		\
			     errname(w_ < 0 ? -w_ : 0));		\
	} while (0)

/* ------------------------------------------------------------------ */
/* Guest memory                                                         */

#define IOVA_BASE	0x7f0000000ULL
#define ARENA_SIZE	(1u << 20)
#define PAGE_SZ		4096u

static struct {
	uint8_t *base;
	size_t brk;
	bool split_pages;		/* translate at most to a page end */
	uint64_t hole_start, hole_end;	/* unmapped */
	uint64_t ro_start, ro_end;	/* not writable */
	unsigned int bad_calls;		/* contract violations by vring.c */
} mem;

static void mem_reset(void)
{
	memset(mem.base, 0, ARENA_SIZE);
	mem.brk = 0;
	mem.split_pages = false;
	mem.hole_start = mem.hole_end = 0;
	mem.ro_start = mem.ro_end = 0;
}

/* Allocate guest memory; returns its IOVA. */
static uint64_t galloc(size_t size, size_t align)
{
	size_t off = (mem.brk + align - 1) & ~(align - 1);

	if (off + size > ARENA_SIZE) {
		fprintf(stderr, "arena exhausted\n");
		exit(2);
	}
	mem.brk = off + size;
	return IOVA_BASE + off;
}

static void *gptr(uint64_t iova)
{
	return mem.base + (iova - IOVA_BASE);
}

/* A guest buffer of @len bytes, filled with @fill. */
static uint64_t gbuf(size_t len, uint8_t fill)
{
	uint64_t iova = galloc(len, 8);

	memset(gptr(iova), fill, len);
	return iova;
}

static bool in_range(uint64_t a, uint64_t start, uint64_t end)
{
	return a >= start && a < end;
}

static void *test_xlate(void *opaque, uint64_t iova, uint64_t len,
			bool write, uint64_t *plen)
{
	uint64_t n;

	if (opaque != &mem || !len || !plen) {
		mem.bad_calls++;
		return NULL;
	}
	if (iova < IOVA_BASE || iova - IOVA_BASE >= ARENA_SIZE)
		return NULL;
	if (in_range(iova, mem.hole_start, mem.hole_end))
		return NULL;
	if (write && in_range(iova, mem.ro_start, mem.ro_end))
		return NULL;
	n = IOVA_BASE + ARENA_SIZE - iova;
	if (n > len)
		n = len;
	/* Stop at the start of a hole or a read-only range. */
	if (iova < mem.hole_start && iova + n > mem.hole_start)
		n = mem.hole_start - iova;
	if (write && iova < mem.ro_start && iova + n > mem.ro_start)
		n = mem.ro_start - iova;
	if (mem.split_pages && n > PAGE_SZ - (iova % PAGE_SZ))
		n = PAGE_SZ - (iova % PAGE_SZ);
	*plen = n;
	return gptr(iova);
}

static bool iov_is(const struct iovec *iov, uint64_t iova, size_t len)
{
	return iov->iov_base == gptr(iova) && iov->iov_len == len;
}

#define F_INDIRECT	(1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVENT_IDX	(1ULL << VIRTIO_RING_F_EVENT_IDX)
#define F_VERSION_1	(1ULL << VIRTIO_F_VERSION_1)
#define F_PACKED	(1ULL << VIRTIO_F_RING_PACKED)

#define F_NEXT		VRING_DESC_F_NEXT
#define F_WRITE		VRING_DESC_F_WRITE
#define F_INDIR		VRING_DESC_F_INDIRECT

#define MAX_IOV		16

/* ------------------------------------------------------------------ */
/* Fake split driver                                                    */

struct sdrv {
	unsigned int num;
	uint64_t desc_iova, avail_iova, used_iova;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;
};

static void sdrv_init(struct sdrv *d, unsigned int num, uint16_t start)
{
	d->num = num;
	d->desc_iova = galloc(16 * num, 16);
	d->avail_iova = galloc(6 + 2 * num, 2);
	d->used_iova = galloc(6 + 8 * num, 4);
	d->desc = gptr(d->desc_iova);
	d->avail = gptr(d->avail_iova);
	d->used = gptr(d->used_iova);
	d->avail->idx = htole16(start);
	d->used->idx = htole16(start);
	d->avail_idx = start;
}

static void sdrv_desc(struct sdrv *d, unsigned int i, uint64_t addr,
		      uint32_t len, uint16_t flags, uint16_t next)
{
	d->desc[i].addr = htole64(addr);
	d->desc[i].len = htole32(len);
	d->desc[i].flags = htole16(flags);
	d->desc[i].next = htole16(next);
}

/* An entry of an indirect table (split layout). */
static void ind_desc(uint64_t table, unsigned int i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc *t = gptr(table);

	t[i].addr = htole64(addr);
	t[i].len = htole32(len);
	t[i].flags = htole16(flags);
	t[i].next = htole16(next);
}

/* Put @head in the avail ring and publish it. */
static void sdrv_avail(struct sdrv *d, uint16_t head)
{
	d->avail->ring[d->avail_idx % d->num] = htole16(head);
	d->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	d->avail->idx = htole16(d->avail_idx);
}

static void sdrv_used_event(struct sdrv *d, uint16_t v)
{
	d->avail->ring[d->num] = htole16(v);
}

static uint16_t sdrv_avail_event(struct sdrv *d)
{
	return le16toh(*(uint16_t *)&d->used->ring[d->num]);
}

static uint16_t sdrv_used_idx(struct sdrv *d)
{
	return le16toh(d->used->idx);
}

static uint32_t sdrv_used_id(struct sdrv *d, uint16_t pos)
{
	return le32toh(d->used->ring[pos % d->num].id);
}

static uint32_t sdrv_used_len(struct sdrv *d, uint16_t pos)
{
	return le32toh(d->used->ring[pos % d->num].len);
}

static void dev_init(struct vdring *r)
{
	memset(r, 0, sizeof(*r));
	r->xlate = test_xlate;
	r->xlate_opaque = &mem;
}

static int sdev_setup(struct vdring *r, struct sdrv *d, uint64_t features,
		      uint16_t avail_idx)
{
	dev_init(r);
	vring_set_state(r, avail_idx, false, 0, false);
	return vring_setup(r, d->num, features | F_VERSION_1, d->desc_iova,
			   d->avail_iova, d->used_iova);
}

/* ------------------------------------------------------------------ */
/* Fake packed driver                                                   */

struct pbuf {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;		/* F_WRITE or F_INDIR */
};

struct pdrv {
	unsigned int num;
	uint64_t desc_iova, drv_iova, dev_iova;
	struct vring_packed_desc *desc;
	struct vring_packed_desc_event *drv;	/* written by the driver */
	struct vring_packed_desc_event *dev;	/* written by the device */
	uint16_t avail_idx;
	bool avail_wrap;
	uint16_t used_idx;
	bool used_wrap;
	uint16_t ndesc_of[64];
};

static void pdrv_init(struct pdrv *d, unsigned int num)
{
	memset(d, 0, sizeof(*d));
	d->num = num;
	d->desc_iova = galloc(16 * num, 16);
	d->drv_iova = galloc(4, 4);
	d->dev_iova = galloc(4, 4);
	d->desc = gptr(d->desc_iova);
	d->drv = gptr(d->drv_iova);
	d->dev = gptr(d->dev_iova);
	d->avail_wrap = d->used_wrap = true;
}

/* Make a chain of @n buffers available as buffer @id; head flags last. */
static uint16_t pdrv_add(struct pdrv *d, const struct pbuf *b,
			 unsigned int n, uint16_t id)
{
	uint16_t head = d->avail_idx, head_flags = 0;

	for (unsigned int i = 0; i < n; i++) {
		struct vring_packed_desc *p = &d->desc[d->avail_idx];
		uint16_t f = b[i].flags;

		if (i + 1 < n)
			f |= F_NEXT;
		f |= d->avail_wrap ? 1 << VRING_PACKED_DESC_F_AVAIL :
				     1 << VRING_PACKED_DESC_F_USED;
		p->addr = htole64(b[i].addr);
		p->len = htole32(b[i].len);
		/* Only the last descriptor's id counts: garble the others. */
		p->id = htole16(i + 1 < n ? id ^ 0x5555 : id);
		if (i)
			p->flags = htole16(f);
		else
			head_flags = f;
		if (++d->avail_idx == d->num) {
			d->avail_idx = 0;
			d->avail_wrap = !d->avail_wrap;
		}
	}
	d->ndesc_of[id % 64] = n;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	d->desc[head].flags = htole16(head_flags);
	return head;
}

/* The next used buffer, as the driver sees it; false if none. */
static bool pdrv_get_used(struct pdrv *d, uint16_t *id, uint32_t *len)
{
	uint16_t f = le16toh(d->desc[d->used_idx].flags);
	bool a = f & (1 << VRING_PACKED_DESC_F_AVAIL);
	bool u = f & (1 << VRING_PACKED_DESC_F_USED);

	if (a != u || u != d->used_wrap)
		return false;
	*id = le16toh(d->desc[d->used_idx].id);
	*len = le32toh(d->desc[d->used_idx].len);
	d->used_idx += d->ndesc_of[*id % 64];
	if (d->used_idx >= d->num) {
		d->used_idx -= d->num;
		d->used_wrap = !d->used_wrap;
	}
	return true;
}

static void pdrv_event(struct pdrv *d, uint16_t flags, uint16_t off,
		       bool wrap)
{
	d->drv->flags = htole16(flags);
	d->drv->off_wrap = htole16(off | (wrap ? 1 << 15 : 0));
}

static int pdev_setup(struct vdring *r, struct pdrv *d, uint64_t features)
{
	dev_init(r);
	return vring_setup(r, d->num, features | F_PACKED | F_VERSION_1,
			   d->desc_iova, d->drv_iova, d->dev_iova);
}

/* ------------------------------------------------------------------ */
/* Split ring                                                           */

static void test_split_setup(void)
{
	struct vdring r;
	struct sdrv d;

	mem_reset();
	sdrv_init(&d, 8, 0);
	dev_init(&r);
	CHECK_RET(vring_setup(&r, 6, F_VERSION_1, d.desc_iova, d.avail_iova,
			      d.used_iova), -EINVAL,
		  "split setup: size not a power of two is refused");
	CHECK_RET(vring_setup(&r, 0, F_VERSION_1, d.desc_iova, d.avail_iova,
			      d.used_iova), -EINVAL,
		  "split setup: size 0 is refused");
	CHECK_RET(vring_setup(&r, 8, F_VERSION_1, d.desc_iova, d.avail_iova,
			      IOVA_BASE + ARENA_SIZE), -EFAULT,
		  "split setup: unmapped used ring gives -EFAULT");
	mem.ro_start = d.used_iova;
	mem.ro_end = d.used_iova + 1;
	CHECK_RET(vring_setup(&r, 8, F_VERSION_1, d.desc_iova, d.avail_iova,
			      d.used_iova), -EFAULT,
		  "split setup: read-only used ring gives -EFAULT");
	mem.ro_start = mem.ro_end = 0;
	d.used->idx = htole16(100);
	CHECK_RET(sdev_setup(&r, &d, 0, 100), 0, "split setup succeeds");
	CHECK(r.split.desc == (void *)d.desc && r.split.avail == d.avail &&
	      r.split.used == d.used && !r.packed && !r.event_idx &&
	      !r.indirect, "split setup: areas translated, features parsed");
	CHECK_EQ(r.split.used_idx, 100,
		 "split setup: used index read from used->idx");
}

static void test_split_basic(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	uint64_t b0, b1, b2, b3, b4, t;
	uint16_t ai;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, F_INDIRECT, 0);

	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 0,
		  "split: empty ring pops nothing");
	CHECK(!vring_avail(&r), "split: empty ring has nothing available");

	b0 = gbuf(100, 0x11);
	sdrv_desc(&d, 3, b0, 100, 0, 0);
	sdrv_avail(&d, 3);
	CHECK(vring_avail(&r), "split: a published buffer is available");
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1,
		  "split: single buffer popped");
	CHECK(e.id == 3 && e.out_num == 1 && e.in_num == 0 &&
	      iov_is(&iov[0], b0, 100),
	      "split: single buffer id, counts and iovec");
	CHECK_EQ(r.inflight, 1, "split: one request in flight");
	vring_get_state(&r, &ai, NULL, NULL, NULL);
	CHECK_EQ(ai, 1, "split: last_avail_idx advanced");
	CHECK(!vring_avail(&r), "split: nothing available after the pop");

	vring_push(&r, 3, 1, 42);
	CHECK(sdrv_used_idx(&d) == 1 && sdrv_used_id(&d, 0) == 3 &&
	      sdrv_used_len(&d, 0) == 42,
	      "split: push writes the used element and used->idx");
	CHECK_EQ(r.inflight, 0, "split: nothing in flight after the push");

	/* Chain 5 -> 0 -> 7: two readable, then one writable. */
	b1 = gbuf(16, 0x21);
	b2 = gbuf(512, 0x22);
	b3 = gbuf(1, 0x23);
	sdrv_desc(&d, 5, b1, 16, F_NEXT, 0);
	sdrv_desc(&d, 0, b2, 512, F_NEXT, 7);
	sdrv_desc(&d, 7, b3, 1, F_WRITE, 0);
	sdrv_avail(&d, 5);
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1, "split: chain popped");
	CHECK(e.id == 5 && e.out_num == 2 && e.in_num == 1 &&
	      iov_is(&iov[0], b1, 16) && iov_is(&iov[1], b2, 512) &&
	      iov_is(&iov[2], b3, 1),
	      "split: chain readable first, writable last, in chain order");

	/* Indirect table at an odd (8-byte) alignment, order 0 -> 2 -> 1. */
	t = galloc(3 * 16 + 8, 8) + 8;
	b4 = gbuf(64, 0x24);
	ind_desc(t, 0, b1, 16, F_NEXT, 2);
	ind_desc(t, 2, b2, 512, F_NEXT, 1);
	ind_desc(t, 1, b4, 64, F_WRITE, 0);
	sdrv_desc(&d, 1, t, 3 * 16, F_INDIR, 0);
	sdrv_avail(&d, 1);
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1,
		  "split: indirect chain popped");
	CHECK(e.id == 1 && e.out_num == 2 && e.in_num == 1 &&
	      iov_is(&iov[0], b1, 16) && iov_is(&iov[1], b2, 512) &&
	      iov_is(&iov[2], b4, 64),
	      "split: indirect chain follows the table's next links");
	CHECK_EQ(r.inflight, 2, "split: two requests in flight");

	/* Out-of-order completion. */
	vring_push(&r, 1, 1, 64);
	vring_push(&r, 5, 1, 1);
	CHECK(sdrv_used_idx(&d) == 3 && sdrv_used_id(&d, 1) == 1 &&
	      sdrv_used_id(&d, 2) == 5 && sdrv_used_len(&d, 2) == 1,
	      "split: out-of-order completions in push order");

	/* A direct chain whose last descriptor is an indirect table. */
	sdrv_desc(&d, 2, b1, 16, F_NEXT, 4);
	sdrv_desc(&d, 4, t, 3 * 16, F_INDIR, 0);
	sdrv_avail(&d, 2);
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1,
		  "split: direct descriptor then indirect table popped");
	CHECK(e.id == 2 && e.out_num == 3 && e.in_num == 1 &&
	      iov_is(&iov[0], b1, 16) && iov_is(&iov[3], b4, 64),
	      "split: direct + indirect buffers in order");
	CHECK_EQ(mem.bad_calls, 0, "split: xlate always called with len > 0");
}

static void test_split_exact_limits(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	uint64_t b;
	int n = 0, ret;

	/* A chain through all 8 descriptors is not a loop. */
	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	b = gbuf(8, 0);
	for (unsigned int i = 0; i < 8; i++)
		sdrv_desc(&d, i, b + i, 1, i < 7 ? F_NEXT : 0, i + 1);
	sdrv_avail(&d, 0);
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1,
		  "split: chain of exactly num descriptors accepted");
	CHECK_EQ(e.out_num, 8, "split: ... with num iovecs");
	CHECK_RET(vring_pop(&r, &e, iov, 8), 0,
		  "split: nothing more after it");

	/* The driver may have all num entries available at once. */
	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	b = gbuf(8, 0);
	for (unsigned int i = 0; i < 8; i++) {
		sdrv_desc(&d, i, b + i, 1, 0, 0);
		sdrv_avail(&d, 7 - i);
	}
	while ((ret = vring_pop(&r, &e, iov, 1)) == 1 && n < 20)
		n++;
	CHECK(n == 8 && ret == 0,
	      "split: num available entries all pop (max_iov exactly 1)");
}

/* Indices past 65535: both rings start at 65533. */
static void test_split_wrap(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	uint64_t b;
	bool good = true;
	uint16_t ai;

	mem_reset();
	sdrv_init(&d, 8, 65533);
	CHECK_RET(sdev_setup(&r, &d, 0, 65533), 0,
		  "split wrap: setup at index 65533");
	b = gbuf(8, 0);
	for (unsigned int i = 0; i < 6; i++) {
		sdrv_desc(&d, i, b + i, 1, F_WRITE, 0);
		sdrv_avail(&d, i);
	}
	for (unsigned int i = 0; i < 6; i++) {
		if (vring_pop(&r, &e, iov, MAX_IOV) != 1 || e.id != i ||
		    !iov_is(&iov[0], b + i, 1))
			good = false;
		vring_push(&r, e.id, 1, i + 1);
	}
	CHECK(good, "split wrap: six buffers popped across 65535 -> 0");
	CHECK_EQ(sdrv_used_idx(&d), 3, "split wrap: used->idx wrapped to 3");
	CHECK(sdrv_used_id(&d, 65533) == 0 && sdrv_used_id(&d, 65535) == 2 &&
	      sdrv_used_id(&d, 0) == 3 && sdrv_used_len(&d, 2) == 6,
	      "split wrap: used elements at ring slots idx %% num");
	vring_get_state(&r, &ai, NULL, NULL, NULL);
	CHECK_EQ(ai, 3, "split wrap: last_avail_idx wrapped to 3");
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 0,
		  "split wrap: ring empty after wrap");
}

/* Push @n buffers (descriptor 0 each time) so used advances by @n. */
static void push_n(struct vdring *r, struct sdrv *d, unsigned int n)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;

	for (unsigned int i = 0; i < n; i++) {
		sdrv_avail(d, 0);
		if (vring_pop(r, &e, iov, MAX_IOV) == 1)
			vring_push(r, e.id, 1, 0);
	}
}

static void test_split_event_idx(void)
{
	struct vdring r;
	struct sdrv d;
	uint16_t u;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, F_EVENT_IDX, 0);
	sdrv_desc(&d, 0, gbuf(4, 0), 4, F_WRITE, 0);

	push_n(&r, &d, 1);
	sdrv_used_event(&d, 500);	/* far away */
	CHECK(vring_need_notify(&r),
	      "event idx: first decision after setup notifies");
	u = r.split.used_idx;
	CHECK(!vring_need_notify(&r),
	      "event idx: nothing pushed since, no notify");

	/* One push: (u, u+1]; used_event = u means "after entry u". */
	sdrv_used_event(&d, u);
	push_n(&r, &d, 1);
	CHECK(vring_need_notify(&r), "event idx: used_event == old notifies");
	sdrv_used_event(&d, u + 2);
	push_n(&r, &d, 1);
	CHECK(!vring_need_notify(&r),
	      "event idx: used_event == new is not crossed yet");
	push_n(&r, &d, 1);
	CHECK(vring_need_notify(&r),
	      "event idx: crossed on the next push (old updated on false)");

	/* Batches of three: signalled u, then u + 3, u + 6, ... */
	u += 3;
	push_n(&r, &d, 3);
	sdrv_used_event(&d, u - 1);
	CHECK(!vring_need_notify(&r),
	      "event idx: used_event just before the batch: no notify");
	push_n(&r, &d, 3);
	sdrv_used_event(&d, u + 3);
	CHECK(vring_need_notify(&r),
	      "event idx: used_event == old (first of batch) notifies");
	push_n(&r, &d, 3);
	sdrv_used_event(&d, u + 7);
	CHECK(vring_need_notify(&r),
	      "event idx: used_event in the middle of the batch notifies");
	push_n(&r, &d, 3);
	sdrv_used_event(&d, u + 11);
	CHECK(vring_need_notify(&r),
	      "event idx: used_event == new - 1 notifies");
	push_n(&r, &d, 3);
	sdrv_used_event(&d, u + 15);
	CHECK(!vring_need_notify(&r),
	      "event idx: used_event == new does not notify");

	/* NO_INTERRUPT is ignored with event index. */
	d.avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	sdrv_used_event(&d, r.split.used_idx);
	push_n(&r, &d, 1);
	CHECK(vring_need_notify(&r),
	      "event idx: NO_INTERRUPT flag ignored when event idx is on");
	d.avail->flags = 0;

	/* Across 65535 -> 0. */
	mem_reset();
	sdrv_init(&d, 8, 65534);
	sdev_setup(&r, &d, F_EVENT_IDX, 65534);
	sdrv_desc(&d, 0, gbuf(4, 0), 4, F_WRITE, 0);
	vring_need_notify(&r);		/* signalled = 65534 */
	sdrv_used_event(&d, 65535);
	push_n(&r, &d, 2);
	CHECK(sdrv_used_idx(&d) == 0 && vring_need_notify(&r),
	      "event idx: used_event 65535 crossed by 65534 -> 0 notifies");
	sdrv_used_event(&d, 0);
	push_n(&r, &d, 1);
	CHECK(vring_need_notify(&r), "event idx: used_event 0 crossed by 0 -> 1");
	sdrv_used_event(&d, 65535);
	push_n(&r, &d, 1);
	CHECK(!vring_need_notify(&r),
	      "event idx: stale used_event 65535 not re-crossed by 1 -> 2");
}

static void test_split_no_interrupt(void)
{
	struct vdring r;
	struct sdrv d;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	sdrv_desc(&d, 0, gbuf(4, 0), 4, F_WRITE, 0);
	push_n(&r, &d, 1);
	d.avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	sdrv_used_event(&d, 0);		/* would say "notify" if read */
	CHECK(!vring_need_notify(&r),
	      "no event idx: NO_INTERRUPT suppresses the notify");
	d.avail->flags = 0;
	push_n(&r, &d, 1);
	CHECK(vring_need_notify(&r), "no event idx: flags 0 notifies");
}

static void test_split_kick(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	sdrv_desc(&d, 0, gbuf(4, 0), 4, 0, 0);
	CHECK(!vring_kick_enable(&r, false) &&
	      (le16toh(d.used->flags) & VRING_USED_F_NO_NOTIFY),
	      "kick: disable sets VRING_USED_F_NO_NOTIFY");
	CHECK(!vring_kick_enable(&r, true) && d.used->flags == 0,
	      "kick: enable clears it, returns false on an empty ring");
	vring_kick_enable(&r, false);
	sdrv_avail(&d, 0);
	CHECK(vring_kick_enable(&r, true),
	      "kick: enable returns true when a buffer arrived meanwhile");
	vring_pop(&r, &e, iov, MAX_IOV);
	CHECK(!vring_kick_enable(&r, true),
	      "kick: and false again once it is popped");

	mem_reset();
	sdrv_init(&d, 8, 700);
	sdev_setup(&r, &d, F_EVENT_IDX, 700);
	sdrv_desc(&d, 0, gbuf(4, 0), 4, 0, 0);
	sdrv_avail(&d, 0);
	sdrv_avail(&d, 0);
	vring_pop(&r, &e, iov, MAX_IOV);
	CHECK(vring_kick_enable(&r, true) && sdrv_avail_event(&d) == 701,
	      "kick event idx: avail_event = last_avail_idx; pending seen");
	vring_pop(&r, &e, iov, MAX_IOV);
	CHECK(!vring_kick_enable(&r, false) && d.used->flags == 0 &&
	      sdrv_avail_event(&d) == 701,
	      "kick event idx: disable leaves flags and avail_event alone");
	CHECK(!vring_kick_enable(&r, true) && sdrv_avail_event(&d) == 702,
	      "kick event idx: enable on an empty ring");
}

/*
 * Build a malformed split ring with @make, pop: expect @err, then -EIO,
 * and the ring marked broken.
 */
static void expect_broken(const char *what, unsigned int max_iov, int err,
			  uint64_t features,
			  void (*make)(struct sdrv *d))
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	int ret, again;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, features, 0);
	make(&d);
	ret = vring_pop(&r, &e, iov, max_iov);
	again = vring_pop(&r, &e, iov, max_iov);
	CHECK(ret == err && again == -EIO && r.broken && !vring_avail(&r) &&
	      r.inflight == 0,
	      "malformed: %s gives %s, then EIO", what, errname(-err));
	if (ret != err || again != -EIO)
		note("got %s then %s", errname(-ret), errname(-again));
}

static void mk_loop(struct sdrv *d)
{
	sdrv_desc(d, 0, gbuf(4, 0), 4, F_NEXT, 1);
	sdrv_desc(d, 1, gbuf(4, 0), 4, F_NEXT, 0);
	sdrv_avail(d, 0);
}

static void mk_self_loop(struct sdrv *d)
{
	sdrv_desc(d, 3, gbuf(4, 0), 4, F_NEXT | F_WRITE, 3);
	sdrv_avail(d, 3);
}

static void mk_head_range(struct sdrv *d)
{
	sdrv_avail(d, 8);
}

static void mk_next_range(struct sdrv *d)
{
	sdrv_desc(d, 0, gbuf(4, 0), 4, F_NEXT, 8);
	sdrv_avail(d, 0);
}

static void mk_write_then_read(struct sdrv *d)
{
	sdrv_desc(d, 0, gbuf(4, 0), 4, F_NEXT | F_WRITE, 1);
	sdrv_desc(d, 1, gbuf(4, 0), 4, 0, 0);
	sdrv_avail(d, 0);
}

static void mk_write_empty_then_read(struct sdrv *d)
{
	sdrv_desc(d, 0, gbuf(4, 0), 0, F_NEXT | F_WRITE, 1);
	sdrv_desc(d, 1, gbuf(4, 0), 4, 0, 0);
	sdrv_avail(d, 0);
}

static void mk_indirect_plain(struct sdrv *d)
{
	uint64_t t = galloc(16, 16);

	ind_desc(t, 0, gbuf(4, 0), 4, 0, 0);
	sdrv_desc(d, 0, t, 16, F_INDIR, 0);
	sdrv_avail(d, 0);
}

static void mk_nested_indirect(struct sdrv *d)
{
	uint64_t t1 = galloc(32, 16), t2 = galloc(16, 16);

	ind_desc(t2, 0, gbuf(4, 0), 4, 0, 0);
	ind_desc(t1, 0, gbuf(4, 0), 4, F_NEXT, 1);
	ind_desc(t1, 1, t2, 16, F_INDIR, 0);
	sdrv_desc(d, 0, t1, 32, F_INDIR, 0);
	sdrv_avail(d, 0);
}

static void mk_indirect_next(struct sdrv *d)
{
	uint64_t t = galloc(16, 16);

	ind_desc(t, 0, gbuf(4, 0), 4, 0, 0);
	sdrv_desc(d, 0, t, 16, F_INDIR | F_NEXT, 1);
	sdrv_desc(d, 1, gbuf(4, 0), 4, 0, 0);
	sdrv_avail(d, 0);
}

static void mk_indirect_len(struct sdrv *d)
{
	uint64_t t = galloc(32, 16);

	ind_desc(t, 0, gbuf(4, 0), 4, 0, 0);
	sdrv_desc(d, 0, t, 24, F_INDIR, 0);
	sdrv_avail(d, 0);
}

static void mk_indirect_empty(struct sdrv *d)
{
	sdrv_desc(d, 0, galloc(16, 16), 0, F_INDIR, 0);
	sdrv_avail(d, 0);
}

static void mk_indirect_loop(struct sdrv *d)
{
	uint64_t t = galloc(32, 16);

	ind_desc(t, 0, gbuf(4, 0), 4, F_NEXT, 1);
	ind_desc(t, 1, gbuf(4, 0), 4, F_NEXT, 0);
	sdrv_desc(d, 0, t, 32, F_INDIR, 0);
	sdrv_avail(d, 0);
}

static void mk_indirect_next_range(struct sdrv *d)
{
	uint64_t t = galloc(32, 16);

	/* 5 is a valid ring index but not inside a 2-entry table. */
	ind_desc(t, 0, gbuf(4, 0), 4, F_NEXT, 5);
	ind_desc(t, 1, gbuf(4, 0), 4, 0, 0);
	sdrv_desc(d, 0, t, 32, F_INDIR, 0);
	sdrv_avail(d, 0);
}

static void mk_three_bufs(struct sdrv *d)
{
	sdrv_desc(d, 0, gbuf(4, 0), 4, F_NEXT, 1);
	sdrv_desc(d, 1, gbuf(4, 0), 4, F_NEXT | F_WRITE, 2);
	sdrv_desc(d, 2, gbuf(4, 0), 4, F_WRITE, 0);
	sdrv_avail(d, 0);
}

static void mk_unmapped(struct sdrv *d)
{
	sdrv_desc(d, 0, gbuf(4, 0), 4, F_NEXT, 1);
	sdrv_desc(d, 1, IOVA_BASE + ARENA_SIZE + 4096, 4, F_WRITE, 0);
	sdrv_avail(d, 0);
}

static void mk_hole(struct sdrv *d)
{
	uint64_t b = galloc(3 * PAGE_SZ, PAGE_SZ);

	/* The second page of the buffer is unmapped. */
	mem.hole_start = b + PAGE_SZ;
	mem.hole_end = b + 2 * PAGE_SZ;
	sdrv_desc(d, 0, b, 3 * PAGE_SZ, 0, 0);
	sdrv_avail(d, 0);
}

static void mk_readonly_write(struct sdrv *d)
{
	uint64_t b = gbuf(64, 0);

	mem.ro_start = b;
	mem.ro_end = b + 64;
	sdrv_desc(d, 0, b, 64, F_WRITE, 0);
	sdrv_avail(d, 0);
}

static void mk_addr_overflow(struct sdrv *d)
{
	sdrv_desc(d, 0, UINT64_MAX - 2, 16, 0, 0);
	sdrv_avail(d, 0);
}

static void mk_indirect_unmapped(struct sdrv *d)
{
	sdrv_desc(d, 0, IOVA_BASE + ARENA_SIZE, 32, F_INDIR, 0);
	sdrv_avail(d, 0);
}

static void mk_indirect_split(struct sdrv *d)
{
	/* A table across a page boundary, with translations split there. */
	uint64_t t = galloc(2 * PAGE_SZ, PAGE_SZ) + PAGE_SZ - 16;

	ind_desc(t, 0, gbuf(4, 0), 4, F_NEXT, 1);
	ind_desc(t, 1, gbuf(4, 0), 4, 0, 0);
	sdrv_desc(d, 0, t, 32, F_INDIR, 0);
	sdrv_avail(d, 0);
	mem.split_pages = true;
}

static void mk_avail_jump(struct sdrv *d)
{
	sdrv_desc(d, 0, gbuf(4, 0), 4, 0, 0);
	sdrv_avail(d, 0);
	d->avail->idx = htole16(9);	/* num + 1 ahead */
}

static void mk_avail_back(struct sdrv *d)
{
	d->avail->idx = htole16(0xffff);	/* went backwards */
}

static void test_split_malformed(void)
{
	expect_broken("descriptor loop", MAX_IOV, -EINVAL, 0, mk_loop);
	expect_broken("self loop", MAX_IOV, -EINVAL, 0, mk_self_loop);
	expect_broken("head index >= num", MAX_IOV, -EINVAL, 0,
		      mk_head_range);
	expect_broken("next index >= num", MAX_IOV, -EINVAL, 0,
		      mk_next_range);
	expect_broken("readable after writable", MAX_IOV, -EINVAL, 0,
		      mk_write_then_read);
	expect_broken("readable after empty writable", MAX_IOV, -EINVAL, 0,
		      mk_write_empty_then_read);
	expect_broken("indirect without the feature", MAX_IOV, -EINVAL, 0,
		      mk_indirect_plain);
	expect_broken("nested indirect", MAX_IOV, -EINVAL, F_INDIRECT,
		      mk_nested_indirect);
	expect_broken("indirect with NEXT", MAX_IOV, -EINVAL, F_INDIRECT,
		      mk_indirect_next);
	expect_broken("indirect len not a multiple of 16", MAX_IOV, -EINVAL,
		      F_INDIRECT, mk_indirect_len);
	expect_broken("indirect len 0", MAX_IOV, -EINVAL, F_INDIRECT,
		      mk_indirect_empty);
	expect_broken("loop inside an indirect table", MAX_IOV, -EINVAL,
		      F_INDIRECT, mk_indirect_loop);
	expect_broken("next beyond the indirect table", MAX_IOV, -EINVAL,
		      F_INDIRECT, mk_indirect_next_range);
	expect_broken("more buffers than max_iov", 2, -EINVAL, 0,
		      mk_three_bufs);
	expect_broken("unmapped buffer", MAX_IOV, -EFAULT, 0, mk_unmapped);
	expect_broken("buffer running into a hole", MAX_IOV, -EFAULT, 0,
		      mk_hole);
	expect_broken("writable buffer in read-only memory", MAX_IOV,
		      -EFAULT, 0, mk_readonly_write);
	expect_broken("address + len overflows", MAX_IOV, -EFAULT, 0,
		      mk_addr_overflow);
	expect_broken("unmapped indirect table", MAX_IOV, -EFAULT,
		      F_INDIRECT, mk_indirect_unmapped);
	expect_broken("indirect table not mapped in one piece", MAX_IOV,
		      -EFAULT, F_INDIRECT, mk_indirect_split);
	expect_broken("avail idx num + 1 ahead", MAX_IOV, -EINVAL, 0,
		      mk_avail_jump);
	expect_broken("avail idx moving backwards", MAX_IOV, -EINVAL, 0,
		      mk_avail_back);
}

/* Translations split at 4 KiB boundaries: one descriptor, many iovecs. */
static void test_split_xlate_pages(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	uint64_t b, w;
	int ret;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	mem.split_pages = true;
	b = galloc(4 * PAGE_SZ, PAGE_SZ) + 0x800;
	w = galloc(2 * PAGE_SZ, PAGE_SZ) + PAGE_SZ - 4;
	sdrv_desc(&d, 0, b, 3 * PAGE_SZ, F_NEXT, 1);
	sdrv_desc(&d, 1, w, 8, F_WRITE, 0);
	sdrv_avail(&d, 0);
	CHECK_RET(vring_pop(&r, &e, iov, 6), 1,
		  "xlate split: chain popped with max_iov exactly 6");
	CHECK(e.out_num == 4 && e.in_num == 2,
	      "xlate split: 3 pages at offset 0x800 -> 4 iovecs, 8 bytes "
	      "across a page -> 2");
	CHECK(iov_is(&iov[0], b, 0x800) &&
	      iov_is(&iov[1], b + 0x800, PAGE_SZ) &&
	      iov_is(&iov[2], b + 0x800 + PAGE_SZ, PAGE_SZ) &&
	      iov_is(&iov[3], b + 0x800 + 2 * PAGE_SZ, 0x800) &&
	      iov_is(&iov[4], w, 4) && iov_is(&iov[5], w + 4, 4),
	      "xlate split: pieces cover the buffers exactly");

	sdrv_avail(&d, 0);
	ret = vring_pop(&r, &e, iov, 5);
	CHECK_RET(ret, -EINVAL,
		  "xlate split: pieces count against max_iov (5 < 6)");
}

/* ------------------------------------------------------------------ */
/* Packed ring                                                          */

static void test_packed_setup(void)
{
	struct vdring r;
	struct pdrv d;
	uint16_t ai, ui;
	bool aw, uw;

	mem_reset();
	pdrv_init(&d, 5);
	CHECK_RET(pdev_setup(&r, &d, 0), 0,
		  "packed setup: size 5 (not a power of two) is fine");
	vring_get_state(&r, &ai, &aw, &ui, &uw);
	CHECK(r.packed && ai == 0 && aw && ui == 0 && uw,
	      "packed setup: default state is 0/1, 0/1");

	dev_init(&r);
	vring_set_state(&r, 3, false, 4, true);
	vring_setup(&r, 5, F_PACKED, d.desc_iova, d.drv_iova, d.dev_iova);
	vring_get_state(&r, &ai, &aw, &ui, &uw);
	CHECK(ai == 3 && !aw && ui == 4 && uw,
	      "packed setup: state from vring_set_state kept");

	dev_init(&r);
	vring_set_state(&r, 5, true, 0, true);
	CHECK_RET(vring_setup(&r, 5, F_PACKED, d.desc_iova, d.drv_iova,
			      d.dev_iova), -EINVAL,
		  "packed setup: avail index >= num refused");
	dev_init(&r);
	CHECK_RET(vring_setup(&r, 5, F_PACKED, d.desc_iova, d.drv_iova,
			      IOVA_BASE + ARENA_SIZE), -EFAULT,
		  "packed setup: unmapped device area gives -EFAULT");
}

static void test_packed_basic(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct pdrv d;
	uint64_t b[4];
	uint16_t id, ai, ui, f;
	uint32_t len;
	bool aw, uw, good = true;

	mem_reset();
	pdrv_init(&d, 8);
	pdev_setup(&r, &d, 0);
	for (int i = 0; i < 4; i++)
		b[i] = gbuf(32 * (i + 1), i);

	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 0,
		  "packed: empty (zeroed) ring pops nothing");
	pdrv_add(&d, (struct pbuf[]){ { b[0], 32, 0 } }, 1, 17);
	CHECK(vring_avail(&r), "packed: a made-available buffer is seen");
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1,
		  "packed: single buffer popped");
	CHECK(e.id == 17 && e.ndesc == 1 && e.out_num == 1 &&
	      e.in_num == 0 && iov_is(&iov[0], b[0], 32),
	      "packed: single buffer id, ndesc, iovec");
	vring_push(&r, e.id, e.ndesc, 0);
	f = le16toh(d.desc[0].flags);
	CHECK((f & (1 << VRING_PACKED_DESC_F_AVAIL)) &&
	      (f & (1 << VRING_PACKED_DESC_F_USED)) && !(f & F_WRITE),
	      "packed: used flags AVAIL = USED = wrap (1), no WRITE for len 0");
	CHECK(pdrv_get_used(&d, &id, &len) && id == 17 && len == 0,
	      "packed: the driver sees the used buffer");

	/* Five singles to reach slot 6. */
	for (int i = 0; i < 5; i++) {
		pdrv_add(&d, (struct pbuf[]){ { b[1], 64, F_WRITE } }, 1, i);
		if (vring_pop(&r, &e, iov, MAX_IOV) != 1 || e.id != i ||
		    e.in_num != 1)
			good = false;
		vring_push(&r, e.id, e.ndesc, 64);
		if (!pdrv_get_used(&d, &id, &len) || id != i || len != 64)
			good = false;
	}
	CHECK(good, "packed: five singles round trip");

	/* A chain of three in slots 6, 7, 0: the driver's wrap flips. */
	pdrv_add(&d, (struct pbuf[]){ { b[0], 32, 0 }, { b[1], 64, 0 },
				      { b[2], 96, F_WRITE } }, 3, 33);
	CHECK(!d.avail_wrap && d.avail_idx == 1,
	      "packed: (driver wrapped while adding the chain)");
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1,
		  "packed: chain across the ring end popped");
	CHECK(e.id == 33 && e.ndesc == 3 && e.out_num == 2 && e.in_num == 1 &&
	      iov_is(&iov[0], b[0], 32) && iov_is(&iov[1], b[1], 64) &&
	      iov_is(&iov[2], b[2], 96),
	      "packed: chain across the end has id, ndesc 3, iovecs");
	vring_get_state(&r, &ai, &aw, &ui, &uw);
	CHECK(ai == 1 && !aw, "packed: avail index 1, avail wrap flipped to 0");
	vring_push(&r, e.id, e.ndesc, 96);
	vring_get_state(&r, &ai, &aw, &ui, &uw);
	CHECK(ui == 1 && !uw, "packed: used index 1, used wrap flipped to 0");
	f = le16toh(d.desc[6].flags);
	CHECK(le16toh(d.desc[6].id) == 33 && le32toh(d.desc[6].len) == 96 &&
	      (f & (1 << VRING_PACKED_DESC_F_AVAIL)) &&
	      (f & (1 << VRING_PACKED_DESC_F_USED)) && (f & F_WRITE),
	      "packed: chain's used descriptor at slot 6 with wrap 1 flags");
	CHECK(pdrv_get_used(&d, &id, &len) && id == 33 && len == 96 &&
	      d.used_idx == 1 && !d.used_wrap,
	      "packed: driver skips the chain's 3 slots");

	/* With wrap counters 0: avail is AVAIL=0, USED=1; used is 0, 0. */
	pdrv_add(&d, (struct pbuf[]){ { b[3], 128, F_WRITE } }, 1, 40);
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1,
		  "packed: buffer with avail wrap 0 popped");
	vring_push(&r, e.id, e.ndesc, 5);
	f = le16toh(d.desc[1].flags);
	CHECK(e.id == 40 &&
	      !(f & ((1 << VRING_PACKED_DESC_F_AVAIL) |
		     (1 << VRING_PACKED_DESC_F_USED))),
	      "packed: used flags AVAIL = USED = 0 in the second lap");
	CHECK(pdrv_get_used(&d, &id, &len) && id == 40 && len == 5,
	      "packed: driver sees it with used wrap 0");
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 0,
		  "packed: old-lap descriptors are not taken as available");
}

static void test_packed_indirect(void)
{
	struct vring_packed_desc *t;
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct pdrv d;
	uint64_t ti, b0, b1, b2;
	uint16_t id;
	uint32_t len;

	mem_reset();
	pdrv_init(&d, 4);
	pdev_setup(&r, &d, F_INDIRECT);
	b0 = gbuf(10, 1);
	b1 = gbuf(20, 2);
	b2 = gbuf(30, 3);
	ti = galloc(48, 16);
	t = gptr(ti);
	t[0] = (struct vring_packed_desc){ htole64(b0), htole32(10), 0, 0 };
	/* NEXT and id are reserved in the table and must be ignored. */
	t[1] = (struct vring_packed_desc){ htole64(b1), htole32(20),
					   htole16(99), htole16(F_NEXT) };
	t[2] = (struct vring_packed_desc){ htole64(b2), htole32(30), 0,
					   htole16(F_WRITE) };
	pdrv_add(&d, (struct pbuf[]){ { ti, 48, F_INDIR } }, 1, 7);
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 1,
		  "packed indirect: popped");
	CHECK(e.id == 7 && e.ndesc == 1 && e.out_num == 2 && e.in_num == 1 &&
	      iov_is(&iov[0], b0, 10) && iov_is(&iov[1], b1, 20) &&
	      iov_is(&iov[2], b2, 30),
	      "packed indirect: one slot, whole table in order");
	vring_push(&r, e.id, e.ndesc, 30);
	CHECK(pdrv_get_used(&d, &id, &len) && id == 7 && len == 30 &&
	      d.used_idx == 1 && r.packed_ring.used_idx == 1,
	      "packed indirect: used index advances by one slot");
}

static void test_packed_out_of_order(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e[3];
	struct vdring r;
	struct pdrv d;
	uint64_t b;
	uint16_t id[3];
	uint32_t len[3];
	bool got;

	mem_reset();
	pdrv_init(&d, 8);
	pdev_setup(&r, &d, 0);
	b = gbuf(64, 0);
	pdrv_add(&d, (struct pbuf[]){ { b, 8, 0 }, { b + 8, 8, F_WRITE } },
		 2, 1);
	pdrv_add(&d, (struct pbuf[]){ { b + 16, 8, F_WRITE } }, 1, 2);
	pdrv_add(&d, (struct pbuf[]){ { b + 24, 8, 0 }, { b + 32, 8, 0 },
				      { b + 40, 8, F_WRITE } }, 3, 3);
	for (int i = 0; i < 3; i++)
		vring_pop(&r, &e[i], iov, MAX_IOV);
	CHECK(e[0].id == 1 && e[0].ndesc == 2 && e[1].id == 2 &&
	      e[1].ndesc == 1 && e[2].id == 3 && e[2].ndesc == 3,
	      "packed ooo: three chains popped with ids and ndesc");
	vring_push(&r, 2, 1, 8);
	vring_push(&r, 3, 3, 24);
	vring_push(&r, 1, 2, 16);
	CHECK(le16toh(d.desc[0].id) == 2 && le16toh(d.desc[1].id) == 3 &&
	      le16toh(d.desc[4].id) == 1 && le32toh(d.desc[4].len) == 16,
	      "packed ooo: used descriptors at 0, 1 (+1), 4 (+3)");
	CHECK(r.packed_ring.used_idx == 6 && r.packed_ring.used_wrap &&
	      r.inflight == 0,
	      "packed ooo: used index 6 after 1 + 3 + 2 slots");
	got = pdrv_get_used(&d, &id[0], &len[0]) &&
	      pdrv_get_used(&d, &id[1], &len[1]) &&
	      pdrv_get_used(&d, &id[2], &len[2]);
	CHECK(got && id[0] == 2 && id[1] == 3 && id[2] == 1 &&
	      len[0] == 8 && len[1] == 24 && len[2] == 16 &&
	      !pdrv_get_used(&d, &id[0], &len[0]),
	      "packed ooo: driver reads 2, 3, 1 and nothing more");
}

static void test_packed_events(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct pdrv d;
	uint64_t b;

	mem_reset();
	pdrv_init(&d, 8);
	pdev_setup(&r, &d, F_EVENT_IDX);
	b = gbuf(8, 0);

#define PUSH_ONE() do {							\
		pdrv_add(&d, (struct pbuf[]){ { b, 8, F_WRITE } }, 1, 0);\
		vring_pop(&r, &e, iov, MAX_IOV);			\
		vring_push(&r, e.id, e.ndesc, 8);			\
	} while (0)

	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DISABLE, 0, true);
	PUSH_ONE();
	CHECK(!vring_need_notify(&r), "packed events: DISABLE: no notify");
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_ENABLE, 0, true);
	PUSH_ONE();
	CHECK(vring_need_notify(&r), "packed events: ENABLE: notify");

	/* Signalled at 2 (wrap 1). */
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 2, true);
	PUSH_ONE();
	CHECK(vring_need_notify(&r),
	      "packed events: DESC at the slot just used notifies");
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 4, true);
	PUSH_ONE();
	CHECK(!vring_need_notify(&r),
	      "packed events: DESC at a later slot does not");
	PUSH_ONE();
	CHECK(vring_need_notify(&r),
	      "packed events: ... until that slot is used");
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 4, true);
	PUSH_ONE();
	CHECK(!vring_need_notify(&r),
	      "packed events: DESC at an already used slot does not");

	/* Signalled at 6 (wrap 1); two pushes use slots 6 and 7. */
	PUSH_ONE();
	PUSH_ONE();
	CHECK(r.packed_ring.used_idx == 0 && !r.packed_ring.used_wrap,
	      "packed events: (used index wrapped to 0/0)");
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 7, true);
	CHECK(vring_need_notify(&r),
	      "packed events: DESC 7/1 used just before the wrap notifies");

	/* Signalled at 0 (wrap 0); a chain of 3 at 0 + one at 3. */
	pdrv_add(&d, (struct pbuf[]){ { b, 1, 0 }, { b, 1, 0 },
				      { b, 1, F_WRITE } }, 3, 5);
	vring_pop(&r, &e, iov, MAX_IOV);
	vring_push(&r, e.id, e.ndesc, 1);
	PUSH_ONE();
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 2, false);
	CHECK(vring_need_notify(&r),
	      "packed events: DESC inside a chain's skipped slots notifies");

	/* Signalled at 4/0; push 5 to go 4,5,6,7 / 0/1. */
	for (int i = 0; i < 5; i++)
		PUSH_ONE();
	CHECK(r.packed_ring.used_idx == 1 && r.packed_ring.used_wrap,
	      "packed events: (used index wrapped to 1/1)");
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 0, true);
	CHECK(vring_need_notify(&r),
	      "packed events: DESC 0/1 after wrapping from 4/0 notifies");
	for (int i = 0; i < 5; i++)
		PUSH_ONE();
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 6, true);
	CHECK(r.packed_ring.used_idx == 6 && !vring_need_notify(&r),
	      "packed events: DESC 6/1 == new position does not notify");
	for (int i = 0; i < 3; i++)
		PUSH_ONE();
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 5, true);
	CHECK(!vring_need_notify(&r),
	      "packed events: DESC 5/1 from before the old position: no");
	pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, 1, false);
	for (int i = 0; i < 2; i++)
		PUSH_ONE();
	CHECK(r.packed_ring.used_idx == 3 && !r.packed_ring.used_wrap &&
	      vring_need_notify(&r),
	      "packed events: DESC 1/0 used between 1/0 and 3/0 notifies");
#undef PUSH_ONE
}

/*
 * DESC boundaries with explicit positions, from a ring resumed at 1/0:
 * signalled at 1/0, two pushes to 3/0, so slots 1 and 2 of the wrap-0
 * lap were used.
 */
static void test_packed_events_exact(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct pdrv d;
	uint64_t b;
	static const struct {
		uint16_t off;
		bool wrap;
		bool want;
	} cases[] = {
		{ 0, false, false },	/* before old */
		{ 1, false, true },	/* == old */
		{ 2, false, true },	/* == new - 1 */
		{ 3, false, false },	/* == new */
		{ 1, true, false },	/* same slot, previous lap */
		{ 7, true, false },	/* previous lap */
	};

	for (unsigned int c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		mem_reset();
		pdrv_init(&d, 8);
		dev_init(&r);
		/* Start at 1/0: slots 0..7 of lap 0 were used before. */
		vring_set_state(&r, 1, false, 1, false);
		d.avail_idx = d.used_idx = 1;
		d.avail_wrap = d.used_wrap = false;
		for (int i = 0; i < 8; i++)
			d.desc[i].flags = htole16(
				(1 << VRING_PACKED_DESC_F_AVAIL) |
				(1 << VRING_PACKED_DESC_F_USED));
		vring_setup(&r, 8, F_PACKED | F_EVENT_IDX, d.desc_iova,
			    d.drv_iova, d.dev_iova);
		b = gbuf(8, 0);
		pdrv_event(&d, VRING_PACKED_EVENT_FLAG_ENABLE, 0, false);
		vring_need_notify(&r);	/* signalled 1/0 */
		for (int i = 0; i < 2; i++) {
			pdrv_add(&d, (struct pbuf[]){ { b, 8, F_WRITE } }, 1,
				 0);
			vring_pop(&r, &e, iov, MAX_IOV);
			vring_push(&r, e.id, e.ndesc, 8);
		}
		pdrv_event(&d, VRING_PACKED_EVENT_FLAG_DESC, cases[c].off,
			   cases[c].wrap);
		CHECK(vring_need_notify(&r) == cases[c].want,
		      "packed events: used 1/0 -> 3/0, DESC %u/%d: %s",
		      cases[c].off, cases[c].wrap,
		      cases[c].want ? "notify" : "no notify");
	}
}

static void test_packed_kick(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct pdrv d;

	mem_reset();
	pdrv_init(&d, 4);
	pdev_setup(&r, &d, F_EVENT_IDX);
	CHECK(!vring_kick_enable(&r, false) &&
	      le16toh(d.dev->flags) == VRING_PACKED_EVENT_FLAG_DISABLE,
	      "packed kick: disable writes DISABLE");
	CHECK(!vring_kick_enable(&r, true) &&
	      le16toh(d.dev->flags) == VRING_PACKED_EVENT_FLAG_ENABLE,
	      "packed kick: enable writes ENABLE, nothing pending");
	vring_kick_enable(&r, false);
	pdrv_add(&d, (struct pbuf[]){ { gbuf(4, 0), 4, 0 } }, 1, 0);
	CHECK(vring_kick_enable(&r, true),
	      "packed kick: enable reports a buffer that arrived meanwhile");
	vring_pop(&r, &e, iov, MAX_IOV);
	CHECK(!vring_kick_enable(&r, true),
	      "packed kick: none after popping it");
}

static void test_packed_malformed(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	struct vdring r;
	struct pdrv d;
	uint64_t b, t;
	int ret;

	/* Every descriptor says NEXT: the chain never ends. */
	mem_reset();
	pdrv_init(&d, 4);
	pdev_setup(&r, &d, 0);
	b = gbuf(4, 0);
	for (int i = 0; i < 4; i++) {
		d.desc[i].addr = htole64(b);
		d.desc[i].len = htole32(4);
		d.desc[i].flags = htole16(F_NEXT |
					  (1 << VRING_PACKED_DESC_F_AVAIL));
	}
	ret = vring_pop(&r, &e, iov, MAX_IOV);
	CHECK(ret == -EINVAL && vring_pop(&r, &e, iov, MAX_IOV) == -EIO &&
	      r.broken,
	      "packed malformed: chain longer than the ring: EINVAL, EIO");

	mem_reset();
	pdrv_init(&d, 4);
	pdev_setup(&r, &d, F_INDIRECT);
	t = galloc(16, 16);
	pdrv_add(&d, (struct pbuf[]){ { t, 16, F_INDIR },
				      { gbuf(4, 0), 4, 0 } }, 2, 0);
	ret = vring_pop(&r, &e, iov, MAX_IOV);
	CHECK(ret == -EINVAL && vring_pop(&r, &e, iov, MAX_IOV) == -EIO,
	      "packed malformed: indirect with NEXT: EINVAL, EIO");

	mem_reset();
	pdrv_init(&d, 4);
	pdev_setup(&r, &d, 0);
	pdrv_add(&d, (struct pbuf[]){ { gbuf(16, 0), 16, F_INDIR } }, 1, 0);
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), -EINVAL,
		  "packed malformed: indirect without the feature");

	mem_reset();
	pdrv_init(&d, 4);
	pdev_setup(&r, &d, 0);
	pdrv_add(&d, (struct pbuf[]){ { gbuf(4, 0), 4, F_WRITE },
				      { gbuf(4, 0), 4, 0 } }, 2, 0);
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), -EINVAL,
		  "packed malformed: readable after writable");

	mem_reset();
	pdrv_init(&d, 4);
	pdev_setup(&r, &d, 0);
	pdrv_add(&d, (struct pbuf[]){ { IOVA_BASE - 4096, 4, 0 } }, 1, 0);
	ret = vring_pop(&r, &e, iov, MAX_IOV);
	CHECK(ret == -EFAULT && vring_pop(&r, &e, iov, MAX_IOV) == -EIO,
	      "packed malformed: unmapped buffer: EFAULT, EIO");

	mem_reset();
	pdrv_init(&d, 4);
	pdev_setup(&r, &d, F_INDIRECT);
	t = galloc(64, 16);
	for (int i = 0; i < 4; i++)
		((struct vring_packed_desc *)gptr(t))[i] =
			(struct vring_packed_desc){ htole64(b), htole32(4),
						    0, 0 };
	pdrv_add(&d, (struct pbuf[]){ { t, 64, F_INDIR } }, 1, 0);
	CHECK_RET(vring_pop(&r, &e, iov, 3), -EINVAL,
		  "packed malformed: indirect table with more than max_iov");
}

/* ------------------------------------------------------------------ */
/* Inflight log                                                         */

static struct vring_log_vq *log_alloc(unsigned int num)
{
	size_t sz = vring_log_vq_size(num);
	struct vring_log_vq *log = aligned_alloc(64, sz);

	if (!log)
		exit(2);
	memset(log, 0xee, sz);		/* garbage before the first init */
	return log;
}

/* A restarted daemon: a new struct vdring over the same memory. */
static int recover(struct vdring *r, struct sdrv *d,
		   struct vring_log_vq *log)
{
	int ret = sdev_setup(r, d, 0, 0);	/* kernel says 0: stale */

	return ret ? ret : vring_log_init(r, log, false);
}

/* Collect the resubmitted heads, as a bit mask; -1 on an error. */
static long resubmit_all(struct vdring *r, struct iovec *iov_of_head3)
{
	struct iovec iov[MAX_IOV];
	struct vring_elem e;
	unsigned int cursor = 0;
	long mask = 0;
	int ret, n = 0;

	while ((ret = vring_log_resubmit(r, &cursor, &e, iov, MAX_IOV)) == 1) {
		if (mask & (1L << e.id) || ++n > 64)
			return -1;	/* duplicate */
		mask |= 1L << e.id;
		if (e.id == 3 && iov_of_head3)
			*iov_of_head3 = iov[0];
	}
	return ret ? -1 : mask;
}

static void test_log_basic(void)
{
	struct iovec iov[MAX_IOV], iov3;
	struct vring_log_vq *log;
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	uint64_t b[8];
	uint16_t ai;
	int good = 1;

	mem_reset();
	sdrv_init(&d, 8, 0);
	log = log_alloc(8);
	sdev_setup(&r, &d, 0, 0);
	CHECK_RET(vring_log_init(&r, log, false), -EINVAL,
		  "log: an uninitialised log is not recovered");
	CHECK_RET(vring_log_init(&r, log, true), 0, "log: fresh init");
	CHECK(log->magic == VRING_LOG_MAGIC && log->num == 8 &&
	      log->used_idx == 0 && !memchr(log->inflight, 1, 8) &&
	      !memchr(log->inflight, 0xee, 8),
	      "log: fresh log has magic, num, used_idx, clear flags");

	for (int i = 0; i < 8; i++) {
		b[i] = gbuf(16, i);
		sdrv_desc(&d, i, b[i], 16, F_WRITE, 0);
	}
	sdrv_avail(&d, 2);
	sdrv_avail(&d, 5);
	sdrv_avail(&d, 3);
	for (int i = 0; i < 3; i++)
		if (vring_pop(&r, &e, iov, MAX_IOV) != 1)
			good = 0;
	CHECK(good && log->inflight[2] && log->inflight[5] &&
	      log->inflight[3] && !log->inflight[0],
	      "log: pop sets the flags of heads 2, 5, 3");
	vring_push(&r, 5, 1, 16);
	CHECK(!log->inflight[5] && log->inflight[2] && log->inflight[3] &&
	      log->used_idx == 1 && sdrv_used_idx(&d) == 1,
	      "log: push clears head 5, log used_idx follows");

	/* Crash: forget r.  The new daemon is told avail index 0. */
	CHECK_RET(recover(&r, &d, log), 0, "log: recovery init");
	vring_get_state(&r, &ai, NULL, NULL, NULL);
	CHECK_EQ(ai, 3, "log: last_avail_idx = used 1 + 2 in flight");
	CHECK(r.inflight == 2 && r.split.used_idx == 1,
	      "log: inflight 2, used index 1");
	CHECK_EQ(resubmit_all(&r, &iov3), (1 << 2) | (1 << 3),
		 "log: resubmit returns exactly heads 2 and 3");
	CHECK(iov_is(&iov3, b[3], 16), "log: resubmitted chain's buffer");
	CHECK_RET(vring_pop(&r, &e, iov, MAX_IOV), 0,
		  "log: nothing popped twice from the avail ring");
	vring_push(&r, 3, 1, 1);
	vring_push(&r, 2, 1, 1);
	CHECK(r.inflight == 0 && !memchr(log->inflight, 1, 8) &&
	      sdrv_used_idx(&d) == 3,
	      "log: completing them empties the log");
	sdrv_avail(&d, 6);
	CHECK(vring_pop(&r, &e, iov, MAX_IOV) == 1 && e.id == 6,
	      "log: new requests pop after recovery");

	/* A second restart: used 3, head 6 in flight. */
	CHECK_RET(recover(&r, &d, log), 0, "log: second recovery init");
	vring_get_state(&r, &ai, NULL, NULL, NULL);
	CHECK(ai == 4 && resubmit_all(&r, NULL) == 1 << 6,
	      "log: second recovery: last_avail 4, head 6 resubmitted");

	/* Wrong size or wrong ring. */
	log->num = 16;
	CHECK_RET(recover(&r, &d, log), -EINVAL,
		  "log: log of another ring size refused");
	log->num = 8;
	log->used_idx = 7;
	CHECK_RET(recover(&r, &d, log), -EINVAL,
		  "log: used_idx not matching the ring refused");
	free(log);
}

static void test_log_packed(void)
{
	struct vring_log_vq *log = log_alloc(8);
	struct vdring r;
	struct pdrv d;

	mem_reset();
	pdrv_init(&d, 8);
	pdev_setup(&r, &d, 0);
	CHECK_RET(vring_log_init(&r, log, true), -EINVAL,
		  "log: refused on a packed ring");
	free(log);
}

/*
 * Crash in the middle of a completion.  Requests A (head 1) and B
 * (head 4) are in flight; B's completion stops after @steps of the four
 * steps of vring_push() (element, log used_idx, flag, used->idx).
 * After recovery and completion of whatever was resubmitted, the driver
 * must have seen A and B exactly once each.
 */
static void test_log_crash_step(int steps)
{
	struct iovec iov[MAX_IOV];
	struct vring_log_vq *log = log_alloc(8);
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	long mask, want;
	uint16_t u, ai;
	int seen[8] = { 0 }, good = 1;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	vring_log_init(&r, log, true);
	sdrv_desc(&d, 1, gbuf(4, 0), 4, F_WRITE, 0);
	sdrv_desc(&d, 4, gbuf(4, 0), 4, F_WRITE, 0);
	sdrv_avail(&d, 1);
	sdrv_avail(&d, 4);
	vring_pop(&r, &e, iov, MAX_IOV);
	vring_pop(&r, &e, iov, MAX_IOV);

	u = sdrv_used_idx(&d);
	if (steps >= 1) {
		d.used->ring[u % 8].id = htole32(4);
		d.used->ring[u % 8].len = htole32(4);
	}
	if (steps >= 2)
		log->used_idx = u + 1;
	if (steps >= 3)
		log->inflight[4] = 0;
	if (steps >= 4)
		d.used->idx = htole16(u + 1);

	CHECK_RET(recover(&r, &d, log), 0,
		  "crash after %d push steps: recovery init", steps);
	want = steps >= 2 ? 1 << 1 : (1 << 1) | (1 << 4);
	mask = resubmit_all(&r, NULL);
	CHECK_EQ(mask, want, "crash after %d push steps: resubmits %s",
		 steps, steps >= 2 ? "A only" : "A and B");
	vring_get_state(&r, &ai, NULL, NULL, NULL);
	CHECK(ai == 2 && sdrv_used_idx(&d) == (steps >= 2 ? 1 : 0) &&
	      r.inflight == (steps >= 2 ? 1u : 2u),
	      "crash after %d push steps: used->idx %d, last_avail 2",
	      steps, steps >= 2 ? 1 : 0);
	for (int h = 0; h < 8; h++)
		if (mask > 0 && (mask & (1L << h)))
			vring_push(&r, h, 1, 4);
	for (uint16_t i = 0; i != sdrv_used_idx(&d); i++) {
		uint32_t id = sdrv_used_id(&d, i);

		if (id >= 8)
			good = 0;
		else
			seen[id]++;
	}
	CHECK(good && seen[1] == 1 && seen[4] == 1 && sdrv_used_idx(&d) == 2 &&
	      vring_pop(&r, &e, iov, MAX_IOV) == 0,
	      "crash after %d push steps: A and B completed exactly once",
	      steps);
	free(log);
}

/*
 * Queue depth 1: the driver reuses head 0 for every request.  The
 * daemon completes one, the driver resubmits head 0 at once, the daemon
 * pops it and dies: the new request must be resubmitted, not taken for
 * the completion that was already published.
 */
static void test_log_reused_head(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_log_vq *log = log_alloc(8);
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	uint16_t ai;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	vring_log_init(&r, log, true);
	sdrv_desc(&d, 0, gbuf(4, 0), 4, F_WRITE, 0);
	sdrv_avail(&d, 0);
	vring_pop(&r, &e, iov, MAX_IOV);
	vring_push(&r, 0, 1, 4);
	sdrv_avail(&d, 0);
	vring_pop(&r, &e, iov, MAX_IOV);

	CHECK_RET(recover(&r, &d, log), 0, "reused head: recovery init");
	vring_get_state(&r, &ai, NULL, NULL, NULL);
	CHECK(ai == 2 && sdrv_used_idx(&d) == 1,
	      "reused head: last_avail 2, used 1");
	CHECK_EQ(resubmit_all(&r, NULL), 1 << 0,
		 "reused head: the second request on head 0 is resubmitted");
	free(log);
}

/* Crash during a pop, right after the flag was set. */
static void test_log_crash_in_pop(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_log_vq *log = log_alloc(8);
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	uint16_t ai;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	vring_log_init(&r, log, true);
	sdrv_desc(&d, 6, gbuf(4, 0), 4, 0, 0);
	sdrv_desc(&d, 7, gbuf(4, 0), 4, 0, 0);
	sdrv_avail(&d, 6);
	sdrv_avail(&d, 7);
	vring_pop(&r, &e, iov, MAX_IOV);
	log->inflight[7] = 1;	/* the pop of head 7 got this far */

	CHECK_RET(recover(&r, &d, log), 0, "crash in pop: recovery init");
	vring_get_state(&r, &ai, NULL, NULL, NULL);
	CHECK(ai == 2 && resubmit_all(&r, NULL) == ((1 << 6) | (1 << 7)) &&
	      vring_pop(&r, &e, iov, MAX_IOV) == 0,
	      "crash in pop: both resubmitted, none popped again");
	free(log);
}

/* Half-published completion with the used index at 65535 -> 0. */
static void test_log_half_published_wrap(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_log_vq *log = log_alloc(8);
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	uint16_t ai;

	mem_reset();
	sdrv_init(&d, 8, 65535);
	sdev_setup(&r, &d, 0, 65535);
	vring_log_init(&r, log, true);
	sdrv_desc(&d, 2, gbuf(4, 0), 4, F_WRITE, 0);
	sdrv_avail(&d, 2);
	vring_pop(&r, &e, iov, MAX_IOV);
	d.used->ring[65535 % 8].id = htole32(2);
	d.used->ring[65535 % 8].len = htole32(3);
	log->used_idx = 0;		/* step 2 done */

	CHECK_RET(recover(&r, &d, log), 0, "half-published at 65535: init");
	vring_get_state(&r, &ai, NULL, NULL, NULL);
	CHECK(sdrv_used_idx(&d) == 0 && !log->inflight[2] && ai == 0 &&
	      r.inflight == 0 && resubmit_all(&r, NULL) == 0,
	      "half-published at 65535: published as used->idx 0, flag "
	      "cleared, nothing resubmitted");
	free(log);
}

/* A resubmitted chain that is malformed breaks the ring. */
static void test_log_resubmit_malformed(void)
{
	struct iovec iov[MAX_IOV];
	struct vring_log_vq *log = log_alloc(8);
	struct vring_elem e;
	struct vdring r;
	struct sdrv d;
	unsigned int cursor = 0;

	mem_reset();
	sdrv_init(&d, 8, 0);
	sdev_setup(&r, &d, 0, 0);
	vring_log_init(&r, log, true);
	sdrv_desc(&d, 1, gbuf(4, 0), 4, 0, 0);
	sdrv_avail(&d, 1);
	vring_pop(&r, &e, iov, MAX_IOV);
	sdrv_desc(&d, 1, gbuf(4, 0), 4, F_NEXT, 1);	/* now a loop */
	recover(&r, &d, log);
	CHECK(vring_log_resubmit(&r, &cursor, &e, iov, MAX_IOV) == -EINVAL &&
	      vring_pop(&r, &e, iov, MAX_IOV) == -EIO,
	      "resubmit: malformed chain gives EINVAL, ring broken");
	free(log);
}

int main(void)
{
	mem.base = aligned_alloc(PAGE_SZ, ARENA_SIZE);
	if (!mem.base)
		return 2;

	test_split_setup();
	test_split_basic();
	test_split_exact_limits();
	test_split_wrap();
	test_split_event_idx();
	test_split_no_interrupt();
	test_split_kick();
	test_split_malformed();
	test_split_xlate_pages();

	test_packed_setup();
	test_packed_basic();
	test_packed_indirect();
	test_packed_out_of_order();
	test_packed_events();
	test_packed_events_exact();
	test_packed_kick();
	test_packed_malformed();

	test_log_basic();
	test_log_packed();
	for (int s = 0; s <= 4; s++)
		test_log_crash_step(s);
	test_log_reused_head();
	test_log_crash_in_pop();
	test_log_half_published_wrap();
	test_log_resubmit_malformed();

	free(mem.base);
	printf("1..%u\n", ntests);
	if (nfailed)
		note("%u of %u failed", nfailed, ntests);
	return nfailed ? 1 : 0;
}
