// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of libvduse's address-space cache (iotlb.c): lookups
 * within and across entries, permissions, faults on a miss, invalidation
 * that keeps old addresses valid until the graveyard is reaped, and
 * translation racing invalidation from another thread.
 *
 * The "kernel" is a fault callback that hands out entries of a memfd, the
 * way VDUSE_IOTLB_GET_FD does, and counts its calls.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <linux/vduse.h>

#include "tap.h"
#include "iotlb.h"

static int n_test, n_fail;

static void ok(int cond, const char *fmt, ...)
{
	va_list ap;

	n_test++;
	if (!cond)
		n_fail++;
	printf("%sok %d - ", cond ? "" : "not ", n_test);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

#define PAGE 4096
#define MEM_SIZE (64 * PAGE)

/* The fake kernel's IOTLB: three entries over one memfd. */
struct entry {
	uint64_t start, last, offset;
	uint8_t perm;
};

static const struct entry table[] = {
	{ 0x10000, 0x13fff, 0 * PAGE, VDUSE_ACCESS_RW },	/* 4 pages */
	{ 0x14000, 0x17fff, 8 * PAGE, VDUSE_ACCESS_RW },	/* adjacent, elsewhere */
	{ 0x20000, 0x20fff, 16 * PAGE, VDUSE_ACCESS_RO },	/* read-only */
	{ 0x30000, 0x30fff, 20 * PAGE, VDUSE_ACCESS_WO },	/* write-only */
};

static int memfd;
static char *mem;		/* the whole memfd, for checking */
static int faults;
static int refuse;		/* the fake kernel fails with this errno */

static int fake_fault(void *ctx, struct vduse_as *as, uint64_t iova)
{
	(void)ctx;
	__atomic_add_fetch(&faults, 1, __ATOMIC_RELAXED);
	if (refuse)
		return -refuse;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct entry *e = &table[i];
		struct vduse_map m = { 0 };
		int ret;

		if (iova < e->start || iova > e->last)
			continue;
		m.start = e->start;
		m.last = e->last;
		m.perm = e->perm;
		m.len = e->last - e->start + 1;
		m.base = mmap(NULL, m.len, PROT_READ | PROT_WRITE, MAP_SHARED,
			      memfd, e->offset);
		if (m.base == MAP_FAILED)
			return -errno;
		m.addr = m.base;
		ret = iotlb_insert(as, &m);
		if (ret)
			munmap(m.base, m.len);
		return ret;
	}
	return -EINVAL;
}

static void *xl(struct vduse_as *as, uint64_t iova, uint64_t len, bool write,
		uint64_t *plen)
{
	*plen = 0;
	return iotlb_translate(as, iova, len, write, plen, fake_fault, NULL);
}

/* True when @p is no longer mapped in this process. */
static bool unmapped(void *p)
{
	unsigned char v;

	return mincore((void *)((uintptr_t)p & ~(uintptr_t)(PAGE - 1)), PAGE,
		       &v) == -1 && errno == ENOMEM;
}

static struct vduse_as race_as;
static volatile int race_stop;
static int race_bad;

static void *race_translator(void *arg)
{
	(void)arg;
	while (!race_stop) {
		uint64_t plen;
		char *p = xl(&race_as, 0x10000 + (rand() % 0x8000), 16, false,
			     &plen);

		/* A hit must point into the memfd data we expect. */
		if (!p || plen == 0 || plen > 16)
			__atomic_add_fetch(&race_bad, 1, __ATOMIC_RELAXED);
		else
			(void)*(volatile char *)p;
	}
	return NULL;
}

int main(void)
{
	struct vduse_as as;
	uint64_t plen;
	char *p, *q;
	int f;

	memfd = memfd_create("iotlb-test", 0);
	if (memfd < 0 || ftruncate(memfd, MEM_SIZE)) {
		perror("memfd");
		return 1;
	}
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (int i = 0; i < MEM_SIZE; i++)
		mem[i] = (char)(i / PAGE);

	iotlb_init(&as);

	/* Lookups and faults. */
	p = xl(&as, 0x10010, 100, false, &plen);
	ok(p && *p == 0 && plen == 100, "a miss faults the entry in and translates");
	ok(faults == 1, "one fault for it (%d)", faults);
	q = xl(&as, 0x12000, 8, true, &plen);
	ok(q == p - 0x10 + 0x2000 && *q == 2, "a second address in the entry: no fault, right page");
	ok(faults == 1, "still one fault (%d)", faults);
	p = xl(&as, 0x13ff0, 0x100, false, &plen);
	ok(p && plen == 0x10, "a range crossing the entry's end is cut there (plen %#llx)",
	   (unsigned long long)plen);
	p = xl(&as, 0x14000, 0x100, false, &plen);
	ok(p && *p == 8 && plen == 0x100, "the adjacent entry maps other memory (page 8)");
	ok(faults == 2, "two faults in all (%d)", faults);

	/* Permissions. */
	ok(xl(&as, 0x20000, 4, false, &plen) != NULL, "read-only entry: reads allowed");
	ok(xl(&as, 0x20000, 4, true, &plen) == NULL, "read-only entry: writes refused");
	ok(xl(&as, 0x30000, 4, true, &plen) != NULL, "write-only entry: writes allowed");
	ok(xl(&as, 0x30000, 4, false, &plen) == NULL, "write-only entry: reads refused");

	/* Misses the kernel cannot satisfy. */
	f = faults;
	ok(xl(&as, 0x50000, 4, false, &plen) == NULL && plen == 0,
	   "an unmapped IOVA translates to nothing");
	ok(faults == f + 1, "after asking the kernel once");
	refuse = ENOMEM;
	ok(iotlb_translate(&as, 0x50000, 4, false, &plen, NULL, NULL) == NULL,
	   "no fault callback: a miss is a miss");
	refuse = 0;

	/* Invalidation keeps old addresses valid until the reap. */
	p = xl(&as, 0x10000, 4, true, &plen);
	ok(p != NULL, "entry 0 mapped");
	iotlb_invalidate(&as, 0x10100, 0x10100);
	ok(as.nmaps == 4 - 1 && as.ndead == 1,
	   "invalidating one IOVA drops its entry only (%u left, %u dead)",
	   as.nmaps, as.ndead);
	p[0] = 'x';
	ok(mem[0] == 'x', "the dropped entry's old address still reaches the memory");
	f = faults;
	q = xl(&as, 0x10000, 4, true, &plen);
	ok(q && q != p && faults == f + 1, "the next lookup faults it in afresh");
	ok(*q == 'x', "and sees the same memory");
	iotlb_reap(&as);
	ok(as.ndead == 0 && unmapped(p), "reaping unmaps the dropped entry");
	ok(!unmapped(q), "but not the live one");

	iotlb_invalidate(&as, 0, UINT64_MAX);
	ok(as.nmaps == 0 && as.ndead == 4, "invalidating everything drops every entry");
	iotlb_invalidate(&as, 0, UINT64_MAX);
	ok(as.ndead == 4, "invalidating an empty cache changes nothing");
	iotlb_reap(&as);
	ok(unmapped(q), "and the reap unmaps them all");

	/* An entry covering the whole 64-bit space (last - start + 1 == 0). */
	{
		struct vduse_map all = {
			.start = 0, .last = UINT64_MAX, .addr = mem,
			.perm = VDUSE_ACCESS_RW,
		};

		ok(iotlb_insert(&as, &all) == 0, "an entry of the whole IOVA space");
		p = iotlb_translate(&as, 5, 7, false, &plen, NULL, NULL);
		ok(p == mem + 5 && plen == 7, "translates without overflow");
		all.start = 10;
		all.last = 9;
		ok(iotlb_insert(&as, &all) == -EINVAL, "an entry ending before it starts is refused");
		iotlb_invalidate(&as, 0, UINT64_MAX);
		iotlb_reap(&as);	/* base is NULL: nothing to unmap */
	}

	/* Translation racing invalidation and reaping (the reap only while
	 * no translator holds a pointer, as libvduse does between queue
	 * runs: here the translators only touch memory of live entries). */
	iotlb_init(&race_as);
	faults = 0;
	{
		pthread_t t[3];
		int rounds = 0;

		for (int i = 0; i < 3; i++)
			pthread_create(&t[i], NULL, race_translator, NULL);
		/* Until the translators have faulted 500 times. */
		for (rounds = 0; rounds < 1000000 &&
		     __atomic_load_n(&faults, __ATOMIC_RELAXED) < 500; rounds++) {
			iotlb_invalidate(&race_as, 0x10000 + (rounds % 2) * 0x4000,
					 0x13fff + (rounds % 2) * 0x4000);
			sched_yield();
		}
		race_stop = 1;
		for (int i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
		ok(faults >= 500, "3 threads translating through %d invalidations refaulted %d times",
		   rounds, faults);
		ok(race_bad == 0, "every lookup hit (%d misses)", race_bad);
		ok(race_as.ndead > 0 && (unsigned int)faults == race_as.nmaps + race_as.ndead,
		   "every entry faulted in (%d) is live (%u) or in the graveyard (%u)",
		   faults, race_as.nmaps, race_as.ndead);
		iotlb_fini(&race_as);
		ok(race_as.ndead == 0 && race_as.nmaps == 0, "fini releases everything");
	}

	iotlb_fini(&as);
	printf("1..%d\n", n_test);
	if (n_fail)
		note("%d of %d failed", n_fail, n_test);
	return n_fail ? 1 : 0;
}
