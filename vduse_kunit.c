// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for VDUSE.
 *
 * This file is included at the end of vduse_dev.c when
 * CONFIG_VDPA_USER_KUNIT_TEST is set, so the tests reach the driver's
 * static functions without exporting anything.  The IOVA domain is tested
 * through iova_domain.h only: what a daemon sees of its memory is read
 * through an mmap of the domain file, as the daemon itself reads it.
 *
 * Suites:
 *   vduse_domain   bounce buffers, coherent memory, the IOTLB, user memory
 *   vduse_config   the checks of a creation request, address space
 *                  arguments, the split of the bounce size, config space
 *   vduse_msg      the message channel: requests, replies, timeouts,
 *                  and the vdpa ops that talk to the daemon; the counters
 *                  of vduse/stats
 *   vduse_track    the requests a block device's split ring has in
 *                  flight, and how they fail when the daemon is gone
 *
 * Where cases differ only in their data, one case walks a table of it
 * (KUNIT_CASE_PARAM, or a loop for checks that need no setup of their
 * own).
 *
 * Run them with
 *   tools/testing/kunit/kunit.py run --kunitconfig=drivers/vdpa/vdpa_user
 */

#include <kunit/test.h>
#include <linux/anon_inodes.h>
#include <linux/delay.h>
#include <linux/mman.h>
#include <linux/uaccess.h>

/* ==================================================================== */
/* IOVA domain                                                           */
/* ==================================================================== */

/* A small domain: 16 bounce pages, then 16 pages of coherent space. */
#define KT_BOUNCE_PAGES		16
#define KT_COHERENT_PAGES	16
#define KT_BOUNCE_SIZE		(KT_BOUNCE_PAGES * PAGE_SIZE)
#define KT_IOVA_LIMIT		((KT_BOUNCE_PAGES + KT_COHERENT_PAGES) * PAGE_SIZE - 1)
#define KT_NSLOTS		(KT_BOUNCE_SIZE / VDUSE_BOUNCE_MAP_SIZE)
#define KT_SLOT			VDUSE_BOUNCE_MAP_SIZE

/**
 * struct kt_domain - a domain under test and the daemon's view of it
 * @domain: the domain, destroyed at the end of the test
 * @view: user address of a shared mmap of the domain file covering the
 *	whole IOVA space (file offset == IOVA), or 0 before kt_view()
 * @iova_limit: last IOVA of the domain
 */
struct kt_domain {
	struct vduse_iova_domain *domain;
	unsigned long view;
	u64 iova_limit;
};

static void kt_domain_destroy(void *data)
{
	struct kt_domain *kd = data;

	vduse_domain_destroy(kd->domain);
}

/* A domain of @bounce_size bytes of bounce area and KT_COHERENT_PAGES more. */
static struct kt_domain *kt_domain_new(struct kunit *test, size_t bounce_size,
				       unsigned int iotlb_limit)
{
	struct kt_domain *kd = kunit_kzalloc(test, sizeof(*kd), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, kd);
	kd->iova_limit = bounce_size + KT_COHERENT_PAGES * PAGE_SIZE - 1;
	kd->domain = vduse_domain_create(kd->iova_limit, bounce_size,
					 iotlb_limit);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, kd->domain);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test,
							   kt_domain_destroy,
							   kd));
	return kd;
}

static struct kt_domain *kt_domain_create(struct kunit *test,
					  unsigned int iotlb_limit)
{
	return kt_domain_new(test, KT_BOUNCE_SIZE, iotlb_limit);
}

/*
 * Map the domain file the way a daemon does after VDUSE_IOTLB_GET_FD:
 * the file comes from the IOTLB entry that covers @iova.
 */
static void kt_view(struct kunit *test, struct kt_domain *kd, u64 iova)
{
	struct vduse_domain_region region;
	unsigned long addr;

	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, iova,
							  iova, &region));
	addr = kunit_vm_mmap(test, region.file, 0, kd->iova_limit + 1,
			     PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	fput(region.file);
	KUNIT_ASSERT_FALSE(test, !addr || IS_ERR_VALUE(addr));
	kd->view = addr;
}

/* Copy @len bytes of user memory at @uaddr into @buf. */
static void kt_user_read(struct kunit *test, unsigned long uaddr, void *buf,
			 size_t len)
{
	KUNIT_ASSERT_NE(test, uaddr, 0);
	KUNIT_ASSERT_EQ(test, 0, copy_from_user(buf, (void __user *)uaddr,
						len));
}

/* Are the @len bytes of user memory at @uaddr all @byte? */
static bool kt_user_has(struct kunit *test, unsigned long uaddr, int byte,
			size_t len)
{
	u8 *buf = kunit_kmalloc(test, len, GFP_KERNEL);
	bool same;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	kt_user_read(test, uaddr, buf, len);
	same = !memchr_inv(buf, byte, len);
	kunit_kfree(test, buf);
	return same;
}

/* Write @len bytes of @byte to user memory at @uaddr. */
static void kt_user_fill(struct kunit *test, unsigned long uaddr, int byte,
			 size_t len)
{
	u8 *buf = kunit_kmalloc(test, len, GFP_KERNEL);

	KUNIT_ASSERT_NE(test, uaddr, 0);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	memset(buf, byte, len);
	KUNIT_ASSERT_EQ(test, 0, copy_to_user((void __user *)uaddr, buf, len));
	kunit_kfree(test, buf);
}

/* What the daemon reads at @iova; fails the test if it cannot. */
static void kt_peek(struct kunit *test, struct kt_domain *kd, u64 iova,
		    void *buf, size_t len)
{
	KUNIT_ASSERT_NE(test, kd->view, 0);
	kt_user_read(test, kd->view + iova, buf, len);
}

/* The daemon writes @len bytes of @byte at @iova. */
static void kt_poke(struct kunit *test, struct kt_domain *kd, u64 iova,
		    int byte, size_t len)
{
	KUNIT_ASSERT_NE(test, kd->view, 0);
	kt_user_fill(test, kd->view + iova, byte, len);
}

/* Does the daemon see @len bytes of @byte at @iova? */
static bool kt_sees(struct kunit *test, struct kt_domain *kd, u64 iova,
		    int byte, size_t len)
{
	KUNIT_ASSERT_NE(test, kd->view, 0);
	return kt_user_has(test, kd->view + iova, byte, len);
}

/*
 * A driver buffer: @len bytes of @byte at @offset of physically contiguous
 * pages, whose other bytes are KT_NEIGHBOUR.
 */
#define KT_NEIGHBOUR	0xcd

static u8 *kt_buf(struct kunit *test, size_t offset, size_t len, int byte)
{
	size_t size = PAGE_ALIGN(offset + len) + PAGE_SIZE;
	u8 *mem = kunit_kmalloc(test, size, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, mem);
	memset(mem, KT_NEIGHBOUR, size);
	mem = PTR_ALIGN(mem, PAGE_SIZE) + offset;
	memset(mem, byte, len);
	return mem;
}

static dma_addr_t kt_map(struct kt_domain *kd, void *buf, size_t len,
			 enum dma_data_direction dir, unsigned long attrs)
{
	return vduse_domain_map_page(kd->domain, virt_to_page(buf),
				     offset_in_page(buf), len, dir, attrs);
}

static void kt_unmap(struct kt_domain *kd, dma_addr_t iova, size_t len,
		     enum dma_data_direction dir, unsigned long attrs)
{
	vduse_domain_unmap_page(kd->domain, iova, len, dir, attrs);
}

/* Map @buf (it must succeed) and let the daemon look at the domain. */
static dma_addr_t kt_map_view(struct kunit *test, struct kt_domain *kd,
			      void *buf, size_t len,
			      enum dma_data_direction dir, unsigned long attrs)
{
	dma_addr_t iova = kt_map(kd, buf, len, dir, attrs);

	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	kt_view(test, kd, iova);
	return iova;
}

static bool kt_filled(const void *buf, int byte, size_t len)
{
	return !memchr_inv(buf, byte, len);
}

/**
 * struct kt_region - what the daemon should learn of an IOTLB entry
 * @start: first IOVA of the entry
 * @last: last IOVA of the entry
 * @offset: file offset of @start
 * @perm: VHOST_MAP_* rights
 * @bounce: the entry is the bounce area
 * @file: the backing file, or NULL for the domain's own file (not checked)
 */
struct kt_region {
	u64 start;
	u64 last;
	u64 offset;
	u32 perm;
	bool bounce;
	struct file *file;
};

/* The bounce area of a KT_BOUNCE_SIZE domain, once in use. */
static const struct kt_region kt_bounce_region = {
	.last = KT_BOUNCE_SIZE - 1,
	.perm = VHOST_MAP_RW,
	.bounce = true,
};

/* The first entry overlapping [@start, @last] is @want. */
static void kt_expect_region(struct kunit *test, struct kt_domain *kd,
			     u64 start, u64 last, const struct kt_region *want)
{
	struct vduse_domain_region region;

	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, start,
							  last, &region));
	KUNIT_EXPECT_EQ(test, region.start, want->start);
	KUNIT_EXPECT_EQ(test, region.last, want->last);
	KUNIT_EXPECT_EQ(test, region.offset, want->offset);
	KUNIT_EXPECT_EQ(test, region.perm, want->perm);
	KUNIT_EXPECT_EQ(test, region.bounce, want->bounce);
	if (want->file)
		KUNIT_EXPECT_PTR_EQ(test, region.file, want->file);
	fput(region.file);
}

/* No entry overlaps [@start, @last]. */
static void kt_expect_no_region(struct kunit *test, struct kt_domain *kd,
				u64 start, u64 last)
{
	struct vduse_domain_region region;

	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, start, last,
						       &region), -EINVAL);
}

/* Arguments vduse_domain_create() refuses. */
static const struct {
	const char *desc;
	u64 iova_limit;
	size_t bounce_size;
	unsigned int iotlb_limit;
} kt_bad_domains[] = {
	{ "no bounce area", KT_IOVA_LIMIT, 0, 8 },
	{ "bounce size not page aligned", KT_IOVA_LIMIT, PAGE_SIZE + 1, 8 },
	{ "no IOTLB entries", KT_IOVA_LIMIT, KT_BOUNCE_SIZE, 0 },
	/* The bounce area must leave room below the IOVA limit. */
	{ "no room above the bounce area", KT_BOUNCE_SIZE - 1, KT_BOUNCE_SIZE,
	  8 },
};

static void vduse_domain_test_create_checks(struct kunit *test)
{
	struct vduse_iova_domain *d;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kt_bad_domains); i++)
		KUNIT_EXPECT_EQ_MSG(test,
				    PTR_ERR(vduse_domain_create(kt_bad_domains[i].iova_limit,
								kt_bad_domains[i].bounce_size,
								kt_bad_domains[i].iotlb_limit)),
				    -EINVAL, "%s", kt_bad_domains[i].desc);

	d = vduse_domain_create(KT_BOUNCE_SIZE, KT_BOUNCE_SIZE, 8);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, d);
	KUNIT_EXPECT_EQ(test, vduse_domain_bounce_size(d), KT_BOUNCE_SIZE);
	/* Half the slots, less one for a buffer's offset. */
	KUNIT_EXPECT_EQ(test, vduse_domain_max_map_size(d),
			KT_BOUNCE_SIZE / 2 - KT_SLOT);
	vduse_domain_destroy(d);
}

/* The bounce area has an IOTLB entry once used, and loses it on reset. */
static void vduse_domain_test_bounce_entry(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, 0, 64, 0x11);
	dma_addr_t iova;

	kt_expect_no_region(test, kd, 0, KT_IOVA_LIMIT);

	iova = kt_map(kd, buf, 64, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	kt_expect_region(test, kd, iova, iova, &kt_bounce_region);
	kt_unmap(kd, iova, 64, DMA_TO_DEVICE, 0);

	/* Unmapping keeps the entry; a device reset drops it. */
	kt_expect_region(test, kd, 0, 0, &kt_bounce_region);
	vduse_domain_reset_bounce_map(kd->domain);
	kt_expect_no_region(test, kd, 0, 0);

	/* The next map brings it back. */
	iova = kt_map(kd, buf, 64, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	kt_expect_region(test, kd, 0, 0, &kt_bounce_region);
	kt_unmap(kd, iova, 64, DMA_TO_DEVICE, 0);
}

/**
 * struct kt_dir_case - one streaming mapping through its whole life
 * @desc: name of the case
 * @dir: DMA direction of the mapping
 * @attrs: DMA attributes of map and unmap
 * @off: offset of the buffer in its page
 * @len: length of the buffer
 */
struct kt_dir_case {
	const char *desc;
	enum dma_data_direction dir;
	unsigned long attrs;
	size_t off;
	size_t len;
};

static const struct kt_dir_case kt_dir_cases[] = {
	{ "to device", DMA_TO_DEVICE, 0, 100, 300 },
	{ "from device", DMA_FROM_DEVICE, 0, 0, 512 },
	{ "bidirectional", DMA_BIDIRECTIONAL, 0, 8, 1000 },
	{ "to device, no CPU sync", DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC,
	  2048, 256 },
	{ "from device, no CPU sync, across slots", DMA_FROM_DEVICE,
	  DMA_ATTR_SKIP_CPU_SYNC, KT_SLOT - 100, 200 },
	{ "bidirectional, no CPU sync", DMA_BIDIRECTIONAL,
	  DMA_ATTR_SKIP_CPU_SYNC, 0, 128 },
};

KUNIT_ARRAY_PARAM_DESC(kt_dir, kt_dir_cases, desc);

/*
 * Data moves to the device on map (unless DMA_ATTR_SKIP_CPU_SYNC) and
 * sync_for_device for DMA_TO_DEVICE and DMA_BIDIRECTIONAL, and back on
 * sync_for_cpu and unmap (unless DMA_ATTR_SKIP_CPU_SYNC) for
 * DMA_FROM_DEVICE and DMA_BIDIRECTIONAL; never anything else.
 */
static void vduse_domain_test_directions(struct kunit *test)
{
	const struct kt_dir_case *p = test->param_value;
	bool to_dev = p->dir != DMA_FROM_DEVICE;
	bool to_cpu = p->dir != DMA_TO_DEVICE;
	bool skip = p->attrs & DMA_ATTR_SKIP_CPU_SYNC;
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, p->off, p->len, 0x11);
	size_t head = p->off % KT_SLOT;
	size_t tail = round_up(head + p->len, KT_SLOT) - head - p->len;
	int dev_has = to_dev && !skip ? 0x11 : 0;
	int cpu_has;
	dma_addr_t iova;

	iova = kt_map_view(test, kd, buf, p->len, p->dir, p->attrs);
	/* In the bounce area, past slot 0, at the buffer's offset in a slot. */
	KUNIT_EXPECT_GE(test, iova, KT_SLOT);
	KUNIT_EXPECT_LE(test, iova + p->len, KT_BOUNCE_SIZE);
	KUNIT_EXPECT_EQ(test, iova % KT_SLOT, head);
	KUNIT_EXPECT_TRUE(test, vduse_domain_need_sync(kd->domain, iova));
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, dev_has, p->len));
	/* Only the buffer is copied, not its neighbours in the page. */
	if (head)
		KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova - head, 0, head));
	if (tail)
		KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova + p->len, 0,
						tail));

	/* The CPU writes the buffer and hands it to the device. */
	memset(buf, 0x22, p->len);
	vduse_domain_sync_single_for_device(kd->domain, iova, p->len, p->dir);
	dev_has = to_dev ? 0x22 : dev_has;
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, dev_has, p->len));

	/* The device writes, the CPU takes the buffer back. */
	kt_poke(test, kd, iova, 0x33, p->len);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x22, p->len));
	vduse_domain_sync_single_for_cpu(kd->domain, iova, p->len, p->dir);
	cpu_has = to_cpu ? 0x33 : 0x22;
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, cpu_has, p->len));

	/* The device writes once more, then the mapping ends. */
	kt_poke(test, kd, iova, 0x44, p->len);
	kt_unmap(kd, iova, p->len, p->dir, p->attrs);
	cpu_has = to_cpu && !skip ? 0x44 : cpu_has;
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, cpu_has, p->len));
	/* Nothing around the buffer was written. */
	KUNIT_EXPECT_TRUE(test, kt_filled(buf - p->off, KT_NEIGHBOUR, p->off));
	KUNIT_EXPECT_TRUE(test, kt_filled(buf + p->len, KT_NEIGHBOUR,
					  PAGE_ALIGN(p->off + p->len) -
					  p->off - p->len));
}

/* Syncs copy exactly the range asked for, and only for their direction. */
static void vduse_domain_test_partial_sync(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, 0, 256, 0x10);
	dma_addr_t iova;

	iova = kt_map_view(test, kd, buf, 256, DMA_BIDIRECTIONAL, 0);

	/* Device writes everything, the CPU syncs bytes 10..29 only. */
	kt_poke(test, kd, iova, 0x20, 256);
	vduse_domain_sync_single_for_cpu(kd->domain, iova + 10, 20,
					 DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x10, 10));
	KUNIT_EXPECT_TRUE(test, kt_filled(buf + 10, 0x20, 20));
	KUNIT_EXPECT_TRUE(test, kt_filled(buf + 30, 0x10, 226));

	/* The CPU writes everything, the device gets bytes 100..149. */
	memset(buf, 0x30, 256);
	vduse_domain_sync_single_for_device(kd->domain, iova + 100, 50,
					    DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova + 99, 0x20, 1));
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova + 100, 0x30, 50));
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova + 150, 0x20, 1));

	/* A sync for the other direction copies nothing. */
	memset(buf, 0x40, 256);
	vduse_domain_sync_single_for_device(kd->domain, iova, 256,
					    DMA_FROM_DEVICE);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0x20, 100));
	vduse_domain_sync_single_for_cpu(kd->domain, iova, 256,
					 DMA_TO_DEVICE);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x40, 256));

	kt_unmap(kd, iova, 256, DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x40, 256));
}

/*
 * A buffer that starts near the end of one page and spans two more:
 * contiguous in the bounce area, copied across every page boundary.
 */
static void vduse_domain_test_page_boundaries(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	size_t off = PAGE_SIZE - 96, len = 2 * PAGE_SIZE + 200;
	u8 *buf = kt_buf(test, off, len, 0), *back;
	dma_addr_t iova, other;
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = i * 7 + 3;
	iova = kt_map_view(test, kd, buf, len, DMA_BIDIRECTIONAL, 0);
	KUNIT_EXPECT_EQ(test, iova % KT_SLOT, off % KT_SLOT);

	back = kunit_kmalloc(test, len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, back);
	kt_peek(test, kd, iova, back, len);
	KUNIT_EXPECT_EQ(test, memcmp(back, buf, len), 0);

	/* A second mapping gets slots of its own. */
	other = kt_map(kd, kt_buf(test, 0, 16, 0xff), 16, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, other, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_TRUE(test, other + 16 <= round_down(iova, KT_SLOT) ||
			  other >= round_up(iova + len, KT_SLOT));

	/* The device rewrites the buffer across the boundaries. */
	for (i = 0; i < len; i++)
		back[i] = ~(i * 5);
	KUNIT_ASSERT_EQ(test, 0, copy_to_user((void __user *)(kd->view + iova),
					      back, len));
	kt_unmap(kd, iova, len, DMA_BIDIRECTIONAL, 0);
	KUNIT_EXPECT_EQ(test, memcmp(back, buf, len), 0);
	/* ... and the second mapping was left alone. */
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, other, 0xff, 16));
	kt_unmap(kd, other, 16, DMA_TO_DEVICE, 0);
}

/* Sizes the domain refuses, a large mapping, calls outside the area. */
static void vduse_domain_test_map_limits(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	size_t half = KT_BOUNCE_SIZE / 2;
	u8 *buf = kt_buf(test, 0, KT_BOUNCE_SIZE, 0x42);
	dma_addr_t iova;

	KUNIT_EXPECT_EQ(test, kt_map(kd, buf, 0, DMA_TO_DEVICE, 0),
			DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, kt_map(kd, buf, KT_BOUNCE_SIZE + 1,
				     DMA_TO_DEVICE, 0),
			DMA_MAPPING_ERROR);
	/* With an offset, the buffer and its head must fit. */
	KUNIT_EXPECT_EQ(test, kt_map(kd, buf + 1, KT_BOUNCE_SIZE,
				     DMA_TO_DEVICE, 0),
			DMA_MAPPING_ERROR);

	/*
	 * IOVA ranges are aligned to their size rounded up to a power of
	 * two and IOVA 0 is never handed out: half the area is the largest
	 * mapping that fits (see vduse_domain_test_max_map for any size).
	 */
	iova = kt_map_view(test, kd, buf, half, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_LE(test, iova + half, KT_BOUNCE_SIZE);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0x42, half));

	/* Ranges that do not lie in the bounce area are ignored. */
	kt_unmap(kd, KT_BOUNCE_SIZE, 16, DMA_FROM_DEVICE, 0);
	kt_unmap(kd, KT_BOUNCE_SIZE - 8, 16, DMA_FROM_DEVICE, 0);
	vduse_domain_sync_single_for_cpu(kd->domain, KT_BOUNCE_SIZE + 4096, 16,
					 DMA_FROM_DEVICE);
	KUNIT_EXPECT_FALSE(test, vduse_domain_need_sync(kd->domain,
							KT_BOUNCE_SIZE));
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x42, KT_BOUNCE_SIZE));

	kt_unmap(kd, iova, half, DMA_TO_DEVICE, 0);
}

/**
 * struct kt_max_map_case - the largest mapping of an empty domain
 * @nslots: size of the bounce area in 4 KiB slots
 * @max: slots of the longest IOVA range the allocator gives it; the
 *	reported maximum is one slot less (for a buffer's offset in its
 *	first slot), or 0
 */
struct kt_max_map_case {
	unsigned long nslots;
	unsigned long max;
};

static const struct kt_max_map_case kt_max_map_cases[] = {
	/* Slot 0 is never used: one slot maps nothing. */
	{ 1, 0 }, { 2, 1 }, { 3, 1 }, { 4, 2 }, { 16, 8 }, { 24, 8 },
	/* 3 and 20 slots would be rounded up to 4 and 32. */
	{ 7, 2 }, { 52, 16 },
	/* 32 at slot 32; 36 and 56 slots at slot 64. */
	{ 96, 32 }, { 100, 36 }, { 120, 56 },
	/* The smallest bounce size. */
	{ 256, 128 },
};

static void kt_max_map_desc(const struct kt_max_map_case *p, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%lu slots, %lu in one range",
		 p->nslots, p->max);
}

KUNIT_ARRAY_PARAM(kt_max_map, kt_max_map_cases, kt_max_map_desc);

/*
 * Does a fresh domain of @nslots slots map @len bytes at offset @head of
 * a slot (of @buf, which is page aligned)?
 */
static bool kt_maps(struct kunit *test, unsigned long nslots, u8 *buf,
		    size_t head, size_t len)
{
	struct kt_domain *kd = kt_domain_new(test, nslots * KT_SLOT, 8);
	dma_addr_t iova;

	iova = kt_map(kd, buf + head, len, DMA_TO_DEVICE, 0);
	if (iova != DMA_MAPPING_ERROR) {
		KUNIT_EXPECT_GE(test, iova, KT_SLOT);
		KUNIT_EXPECT_LE(test, iova + len, nslots * KT_SLOT);
		KUNIT_EXPECT_EQ(test, iova % KT_SLOT, head);
		kt_unmap(kd, iova, len, DMA_TO_DEVICE, 0);
	}
	kunit_release_action(test, kt_domain_destroy, kd);
	return iova != DMA_MAPPING_ERROR;
}

/*
 * The maximum mapping size a domain reports maps in an empty domain at
 * any offset, and is the largest multiple of 4 KiB that does: one slot
 * more maps only at the start of a slot, and nothing longer maps at all.
 */
static void vduse_domain_test_max_map(struct kunit *test)
{
	const struct kt_max_map_case *p = test->param_value;
	size_t max = p->max ? (p->max - 1) * KT_SLOT : 0;
	struct kt_domain *kd;
	u8 *buf;

	if (!PAGE_ALIGNED(p->nslots * KT_SLOT))
		kunit_skip(test, "bounce area not a multiple of PAGE_SIZE");
	kd = kt_domain_new(test, p->nslots * KT_SLOT, 8);
	KUNIT_EXPECT_EQ(test, vduse_domain_max_map_size(kd->domain), max);
	kunit_release_action(test, kt_domain_destroy, kd);

	buf = kt_buf(test, 0, (p->max + 2) * KT_SLOT, 0x5c);
	if (max) {
		KUNIT_EXPECT_TRUE(test, kt_maps(test, p->nslots, buf, 0, max));
		KUNIT_EXPECT_TRUE(test, kt_maps(test, p->nslots, buf,
						KT_SLOT - 1, max));
	}
	if (p->max)
		KUNIT_EXPECT_TRUE(test, kt_maps(test, p->nslots, buf, 0,
						max + KT_SLOT));
	KUNIT_EXPECT_FALSE(test, kt_maps(test, p->nslots, buf, 1,
					 max + KT_SLOT));
	KUNIT_EXPECT_FALSE(test, kt_maps(test, p->nslots, buf, 0,
					 max + KT_SLOT + 1));
}

/* Every slot can be used; then maps fail cleanly until slots are freed. */
static void vduse_domain_test_exhaustion(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	dma_addr_t *iova;
	unsigned int i, n = 0;
	u8 *buf;

	iova = kunit_kcalloc(test, KT_NSLOTS, sizeof(*iova), GFP_KERNEL);
	buf = kt_buf(test, 0, KT_NSLOTS * 8, 0);
	KUNIT_ASSERT_NOT_NULL(test, iova);
	for (i = 0; i < KT_NSLOTS * 8; i++)
		buf[i] = i / 8;

	while (n < KT_NSLOTS) {
		iova[n] = kt_map(kd, buf + n * 8, 8, DMA_TO_DEVICE, 0);
		if (iova[n] == DMA_MAPPING_ERROR)
			break;
		n++;
	}
	KUNIT_EXPECT_EQ(test, n, KT_NSLOTS - 1);
	KUNIT_EXPECT_EQ(test, kt_map(kd, buf, 8, DMA_TO_DEVICE, 0),
			DMA_MAPPING_ERROR);

	/* All slots distinct, each holding its own buffer. */
	kt_view(test, kd, iova[0]);
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova[i], i, 8));

	/* Freeing one slot makes room for exactly one mapping. */
	kt_unmap(kd, iova[3], 8, DMA_TO_DEVICE, 0);
	iova[3] = kt_map(kd, buf + 3 * 8, 8, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_NE(test, iova[3], DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, kt_map(kd, buf, 8, DMA_TO_DEVICE, 0),
			DMA_MAPPING_ERROR);

	for (i = 0; i < n; i++)
		if (iova[i] != DMA_MAPPING_ERROR)
			kt_unmap(kd, iova[i], 8, DMA_TO_DEVICE, 0);
	/* A mapping of two slots fits again. */
	iova[0] = kt_map(kd, buf, 2 * KT_SLOT, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_NE(test, iova[0], DMA_MAPPING_ERROR);
	if (iova[0] != DMA_MAPPING_ERROR)
		kt_unmap(kd, iova[0], 2 * KT_SLOT, DMA_TO_DEVICE, 0);
}

/* Streaming maps run in atomic context (virtio drivers map under locks). */
static DEFINE_SPINLOCK(kt_atomic_lock);

static void vduse_domain_test_atomic_map(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, 0, 3 * KT_SLOT, 0x3c);
	unsigned long flags;
	dma_addr_t iova;

	/* Fresh kernel bounce pages are allocated under the lock. */
	spin_lock_irqsave(&kt_atomic_lock, flags);
	iova = kt_map(kd, buf, 3 * KT_SLOT, DMA_BIDIRECTIONAL, 0);
	if (iova != DMA_MAPPING_ERROR) {
		vduse_domain_sync_single_for_device(kd->domain, iova, KT_SLOT,
						    DMA_BIDIRECTIONAL);
		vduse_domain_sync_single_for_cpu(kd->domain, iova, KT_SLOT,
						 DMA_BIDIRECTIONAL);
		kt_unmap(kd, iova, 3 * KT_SLOT, DMA_BIDIRECTIONAL, 0);
	}
	spin_unlock_irqrestore(&kt_atomic_lock, flags);
	KUNIT_EXPECT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x3c, 3 * KT_SLOT));
}

/* Coherent memory: zeroed, above the bounce area, shared with the daemon. */
static void vduse_domain_test_coherent(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	size_t len = 2 * PAGE_SIZE + 100;
	struct kt_region entry = { .perm = VHOST_MAP_RW };
	dma_addr_t iova, iova2;
	u8 *vaddr, *vaddr2;

	vaddr = vduse_domain_alloc_coherent(kd->domain, len, &iova,
					    GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, vaddr);
	KUNIT_EXPECT_TRUE(test, kt_filled(vaddr, 0, PAGE_ALIGN(len)));
	KUNIT_EXPECT_GE(test, iova, KT_BOUNCE_SIZE);
	KUNIT_EXPECT_LE(test, iova + PAGE_ALIGN(len) - 1, KT_IOVA_LIMIT);
	KUNIT_EXPECT_TRUE(test, PAGE_ALIGNED(iova));
	KUNIT_EXPECT_FALSE(test, vduse_domain_need_sync(kd->domain, iova));

	/* Its IOTLB entry: the domain file, file offset == IOVA. */
	entry.start = iova;
	entry.last = iova + len - 1;
	entry.offset = iova;
	kt_expect_region(test, kd, iova + 5, iova + 5, &entry);

	/* The same pages for the CPU and the daemon, both ways. */
	kt_view(test, kd, iova);
	memset(vaddr, 0x77, len);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0x77, len));
	kt_poke(test, kd, iova + PAGE_SIZE, 0x88, 64);
	KUNIT_EXPECT_TRUE(test, kt_filled(vaddr + PAGE_SIZE, 0x88, 64));

	/* A second allocation does not overlap the first. */
	vaddr2 = vduse_domain_alloc_coherent(kd->domain, 1, &iova2, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, vaddr2);
	KUNIT_EXPECT_TRUE(test, iova2 >= iova + PAGE_ALIGN(len) ||
			  iova2 + PAGE_SIZE <= iova);

	/* A free that does not match what was handed out is ignored. */
	vduse_domain_free_coherent(kd->domain, len, vaddr2, iova);
	kt_expect_region(test, kd, iova, iova, &entry);

	vduse_domain_free_coherent(kd->domain, len, vaddr, iova);
	kt_expect_no_region(test, kd, iova, iova);
	vduse_domain_free_coherent(kd->domain, 1, vaddr2, iova2);
	kt_expect_no_region(test, kd, iova2, iova2);

	KUNIT_EXPECT_NULL(test, vduse_domain_alloc_coherent(kd->domain, 0,
							    &iova, GFP_KERNEL));
}

/* Can the daemon write one byte at @iova through its mapping? */
static bool kt_can_poke(struct kt_domain *kd, u64 iova, u8 byte)
{
	return !copy_to_user((void __user *)(kd->view + iova), &byte, 1);
}

/*
 * Protected pages (a split ring's descriptor table) are read-only for the
 * daemon: reads work, a write fails (SIGBUS for a process), also where
 * the daemon had written before; the page next to them stays writable,
 * and once unprotected, writes go through again.  Bounce pages likewise.
 */
static void vduse_domain_test_protect(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	size_t len = 2 * PAGE_SIZE;
	dma_addr_t iova, bounce;
	u8 *vaddr;

	vaddr = vduse_domain_alloc_coherent(kd->domain, len, &iova,
					    GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, vaddr);
	bounce = kt_map(kd, kt_buf(test, 0, PAGE_SIZE, 0x33), PAGE_SIZE,
			DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, bounce, DMA_MAPPING_ERROR);
	kt_view(test, kd, iova);
	/* Writable mappings made before: protection takes them away. */
	kt_poke(test, kd, iova, 0x11, len);
	KUNIT_EXPECT_TRUE(test, kt_can_poke(kd, bounce, 0x33));

	KUNIT_ASSERT_EQ(test, 0, vduse_domain_protect(kd->domain, iova,
						      PAGE_SIZE));
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_protect(kd->domain, bounce,
						      PAGE_SIZE));
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0x11, len));
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, bounce, 0x33, PAGE_SIZE));
	KUNIT_EXPECT_FALSE(test, kt_can_poke(kd, iova + 9, 0x22));
	KUNIT_EXPECT_FALSE(test, kt_can_poke(kd, bounce, 0x22));
	KUNIT_EXPECT_TRUE(test, kt_can_poke(kd, iova + PAGE_SIZE, 0x22));
	KUNIT_EXPECT_EQ(test, vaddr[9], 0x11);
	KUNIT_EXPECT_EQ(test, vaddr[PAGE_SIZE], 0x22);

	vduse_domain_unprotect(kd->domain, iova, PAGE_SIZE);
	vduse_domain_unprotect(kd->domain, bounce, PAGE_SIZE);
	KUNIT_EXPECT_TRUE(test, kt_can_poke(kd, iova + 9, 0x22));
	KUNIT_EXPECT_TRUE(test, kt_can_poke(kd, bounce, 0x44));
	KUNIT_EXPECT_EQ(test, vaddr[9], 0x22);
	kt_unmap(kd, bounce, PAGE_SIZE, DMA_TO_DEVICE, 0);
	vduse_domain_free_coherent(kd->domain, len, vaddr, iova);
}

/* The coherent space runs out cleanly and is reusable after frees. */
static void vduse_domain_test_coherent_exhaustion(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	void *vaddr[KT_COHERENT_PAGES + 1];
	dma_addr_t iova[KT_COHERENT_PAGES + 1];
	unsigned int i, n = 0;

	while (n <= KT_COHERENT_PAGES) {
		vaddr[n] = vduse_domain_alloc_coherent(kd->domain, PAGE_SIZE,
						       &iova[n], GFP_KERNEL);
		if (!vaddr[n])
			break;
		n++;
	}
	KUNIT_EXPECT_EQ(test, n, KT_COHERENT_PAGES);
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_GE(test, iova[i], KT_BOUNCE_SIZE);
		KUNIT_EXPECT_LE(test, iova[i] + PAGE_SIZE - 1, KT_IOVA_LIMIT);
	}
	for (i = 0; i < n; i++)
		vduse_domain_free_coherent(kd->domain, PAGE_SIZE, vaddr[i],
					   iova[i]);

	vaddr[0] = vduse_domain_alloc_coherent(kd->domain, 4 * PAGE_SIZE,
					       &iova[0], GFP_KERNEL);
	KUNIT_EXPECT_NOT_NULL(test, vaddr[0]);
	if (vaddr[0])
		vduse_domain_free_coherent(kd->domain, 4 * PAGE_SIZE, vaddr[0],
					   iova[0]);
}

static const struct file_operations kt_file_fops = {
	.owner = THIS_MODULE,
};

static void kt_fput(void *file)
{
	fput(file);
}

/* A file that stands for a VMM's guest memory in set_map entries. */
static struct file *kt_file(struct kunit *test)
{
	struct file *file;

	file = anon_inode_getfile("[vduse-kunit]", &kt_file_fops, NULL,
				  O_RDWR);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, file);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, kt_fput,
							   file));
	return file;
}

static void kt_iotlb_free(void *iotlb)
{
	vhost_iotlb_free(iotlb);
}

/**
 * struct kt_entry - an entry of vhost-vdpa's IOTLB
 * @start: first IOVA
 * @last: last IOVA
 * @addr: user address (not used by VDUSE)
 * @perm: VHOST_MAP_* rights
 * @mf: its file and offset
 */
struct kt_entry {
	u64 start;
	u64 last;
	u64 addr;
	u32 perm;
	struct vdpa_map_file *mf;
};

/* vhost-vdpa's IOTLB holding the @n entries of @e. */
static struct vhost_iotlb *kt_iotlb(struct kunit *test,
				    const struct kt_entry *e, unsigned int n)
{
	struct vhost_iotlb *iotlb = vhost_iotlb_alloc(16, 0);

	KUNIT_ASSERT_NOT_NULL(test, iotlb);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, kt_iotlb_free,
							   iotlb));
	for (; n--; e++)
		KUNIT_ASSERT_EQ(test, 0, vhost_iotlb_add_range_ctx(iotlb,
								   e->start,
								   e->last,
								   e->addr,
								   e->perm,
								   e->mf));
	return iotlb;
}

/* set_map installs vhost-vdpa's entries with file references. */
static void vduse_domain_test_set_map(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	struct file *file = kt_file(test);
	struct vdpa_map_file mf[3] = {
		{ .file = file, .offset = 0x10000 },
		{ .file = file, .offset = 0x90000 },
		/* No file: the daemon could not map it, so it is skipped. */
		{ .file = NULL, .offset = 0 },
	};
	const struct kt_entry first[] = {
		{ 0x100000, 0x1fffff, 0xa000, VHOST_MAP_RO, &mf[0] },
		{ 0x300000, 0x300fff, 0xb000, VHOST_MAP_RW, &mf[1] },
		{ 0x400000, 0x400fff, 0xc000, VHOST_MAP_RW, &mf[2] },
	};
	const struct kt_entry second[] = {
		{ 0x500000, 0x500fff, 0, VHOST_MAP_WO, &mf[0] },
	};
	const struct kt_region want[] = {
		{ 0x100000, 0x1fffff, 0x10000, VHOST_MAP_RO, false, file },
		{ 0x300000, 0x300fff, 0x90000, VHOST_MAP_RW, false, file },
		{ 0x500000, 0x500fff, 0x10000, VHOST_MAP_WO, false, file },
	};
	struct vhost_iotlb *iotlb = kt_iotlb(test, first, ARRAY_SIZE(first));
	struct vhost_iotlb *iotlb2 = kt_iotlb(test, second, ARRAY_SIZE(second));
	unsigned long refs = file_count(file);
	dma_addr_t iova;
	u8 *buf = kt_buf(test, 0, 8, 0);

	/* Own entry first: the bounce area. */
	iova = kt_map(kd, buf, 8, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);

	KUNIT_ASSERT_EQ(test, 0, vduse_domain_set_map(kd->domain, iotlb));
	KUNIT_EXPECT_EQ(test, file_count(file), refs + 2);
	kt_expect_region(test, kd, 0x180000, 0x180000, &want[0]);
	/* A range lookup finds the first entry that overlaps it. */
	kt_expect_region(test, kd, 0x200000, 0x3fffff, &want[1]);
	kt_expect_no_region(test, kd, 0x400000, 0x400fff);

	/* A new set_map replaces the old entries, own entries stay. */
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_set_map(kd->domain, iotlb2));
	KUNIT_EXPECT_EQ(test, file_count(file), refs + 1);
	kt_expect_no_region(test, kd, 0x100000, 0x3fffff);
	kt_expect_region(test, kd, 0x500000, 0x500000, &want[2]);
	kt_expect_region(test, kd, 0, 0, &kt_bounce_region);

	/* clear_map drops the references, the bounce entry stays. */
	vduse_domain_clear_map(kd->domain);
	KUNIT_EXPECT_EQ(test, file_count(file), refs);
	kt_expect_no_region(test, kd, 0x500000, 0x500000);
	kt_expect_region(test, kd, 0, 0, &kt_bounce_region);
	kt_unmap(kd, iova, 8, DMA_TO_DEVICE, 0);
}

/* A set_map that does not fit leaves no entry of its own behind. */
static void vduse_domain_test_set_map_limit(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 2);
	struct file *file = kt_file(test);
	struct vdpa_map_file mf = { .file = file };
	const struct kt_entry entries[] = {
		{ 0x100000, 0x100fff, 0, VHOST_MAP_RW, &mf },
		{ 0x200000, 0x200fff, 0, VHOST_MAP_RW, &mf },
	};
	struct vhost_iotlb *iotlb = kt_iotlb(test, entries,
					     ARRAY_SIZE(entries));
	unsigned long refs = file_count(file);
	dma_addr_t iova;
	u8 *buf = kt_buf(test, 0, 8, 0);

	iova = kt_map(kd, buf, 8, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);

	/* The bounce entry plus two would exceed the limit of two. */
	KUNIT_EXPECT_EQ(test, vduse_domain_set_map(kd->domain, iotlb),
			-ENOSPC);
	KUNIT_EXPECT_EQ(test, file_count(file), refs);
	kt_expect_no_region(test, kd, 0x100000, 0x200fff);
	kt_expect_region(test, kd, 0, 0, &kt_bounce_region);
	kt_unmap(kd, iova, 8, DMA_TO_DEVICE, 0);
}

/* Anonymous user memory of the test's own mm, as a daemon would register. */
static unsigned long kt_user_mem(struct kunit *test, size_t len)
{
	unsigned long addr;

	addr = kunit_vm_mmap(test, NULL, 0, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, 0);
	KUNIT_ASSERT_FALSE(test, !addr || IS_ERR_VALUE(addr));
	return addr;
}

/* Registrations vduse_domain_reg_umem() refuses once the area is in use. */
static const struct {
	const char *desc;
	unsigned long uoff;
	u64 iova;
	u64 size;
} kt_bad_umems[] = {
	{ "IOVA other than 0", 0, PAGE_SIZE, KT_BOUNCE_SIZE },
	{ "size other than the bounce size", 0, 0,
	  KT_BOUNCE_SIZE - PAGE_SIZE },
	{ "user address not page aligned", 1, 0, KT_BOUNCE_SIZE },
};

/*
 * User memory replaces the bounce pages with mappings in flight: their
 * data moves into it, later maps use it, and deregistration moves the
 * data of mappings still in flight back to kernel pages.
 */
static void vduse_domain_test_umem(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *to = kt_buf(test, 0, 200, 0x1a);
	u8 *from = kt_buf(test, 0, 300, 0x2b);
	u8 *late = kt_buf(test, 0, 100, 0x3c);
	dma_addr_t to_iova, from_iova, late_iova;
	unsigned long umem;
	unsigned int i;
	s64 pinned;

	umem = kt_user_mem(test, KT_BOUNCE_SIZE);
	kt_user_fill(test, umem, 0xee, KT_BOUNCE_SIZE);

	/* Nothing to replace before the bounce area is in use. */
	KUNIT_EXPECT_EQ(test, vduse_domain_reg_umem(kd->domain, umem, 0,
						    KT_BOUNCE_SIZE),
			-EINVAL);

	to_iova = kt_map(kd, to, 200, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, to_iova, DMA_MAPPING_ERROR);
	from_iova = kt_map_view(test, kd, from, 300, DMA_FROM_DEVICE, 0);
	kt_poke(test, kd, from_iova, 0x4d, 300);

	for (i = 0; i < ARRAY_SIZE(kt_bad_umems); i++)
		KUNIT_EXPECT_EQ_MSG(test,
				    vduse_domain_reg_umem(kd->domain,
							  umem + kt_bad_umems[i].uoff,
							  kt_bad_umems[i].iova,
							  kt_bad_umems[i].size),
				    -EINVAL, "%s", kt_bad_umems[i].desc);
	KUNIT_EXPECT_EQ(test, vduse_domain_dereg_umem(kd->domain, 0,
						      KT_BOUNCE_SIZE),
			-ENOENT);

	pinned = atomic64_read(&current->mm->pinned_vm);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_reg_umem(kd->domain, umem, 0,
						       KT_BOUNCE_SIZE));
	KUNIT_EXPECT_EQ(test, atomic64_read(&current->mm->pinned_vm),
			pinned + KT_BOUNCE_PAGES);
	KUNIT_EXPECT_EQ(test, vduse_domain_reg_umem(kd->domain, umem, 0,
						    KT_BOUNCE_SIZE),
			-EEXIST);

	/* In-flight data moved into the user pages. */
	KUNIT_EXPECT_TRUE(test, kt_user_has(test, umem + to_iova, 0x1a, 200));
	KUNIT_EXPECT_TRUE(test, kt_user_has(test, umem + from_iova, 0x4d, 300));

	/* New maps copy into the user pages ... */
	late_iova = kt_map(kd, late, 100, DMA_BIDIRECTIONAL, 0);
	KUNIT_ASSERT_NE(test, late_iova, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_TRUE(test, kt_user_has(test, umem + late_iova, 0x3c, 100));
	/* ... and unmaps copy out of them. */
	kt_user_fill(test, umem + late_iova, 0x5e, 100);
	kt_unmap(kd, late_iova, 100, DMA_BIDIRECTIONAL, 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(late, 0x5e, 100));

	/* The device answers into user memory, then the daemon lets go. */
	kt_user_fill(test, umem + from_iova, 0x6f, 300);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_dereg_umem(kd->domain, 0,
							 KT_BOUNCE_SIZE));
	KUNIT_EXPECT_EQ(test, atomic64_read(&current->mm->pinned_vm), pinned);
	KUNIT_EXPECT_EQ(test, vduse_domain_dereg_umem(kd->domain, 0,
						      KT_BOUNCE_SIZE),
			-ENOENT);

	/* User memory is no longer written ... */
	kt_user_fill(test, umem + from_iova, 0x00, 300);
	/* ... and the answer reaches the driver from the kernel pages. */
	kt_unmap(kd, from_iova, 300, DMA_FROM_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(from, 0x6f, 300));
	kt_unmap(kd, to_iova, 200, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(to, 0x1a, 200));
}

/* drop_umem (the daemon went away) keeps in-flight data too. */
static void vduse_domain_test_umem_drop(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *from = kt_buf(test, 0, 64, 0x11);
	dma_addr_t iova;
	unsigned long umem;
	s64 pinned;

	umem = kt_user_mem(test, KT_BOUNCE_SIZE);
	iova = kt_map(kd, from, 64, DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	pinned = atomic64_read(&current->mm->pinned_vm);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_reg_umem(kd->domain, umem, 0,
						       KT_BOUNCE_SIZE));
	kt_user_fill(test, umem + iova, 0x22, 64);

	vduse_domain_drop_umem(kd->domain);
	KUNIT_EXPECT_EQ(test, atomic64_read(&current->mm->pinned_vm), pinned);
	vduse_domain_drop_umem(kd->domain);	/* nothing left: no-op */

	kt_unmap(kd, iova, 64, DMA_FROM_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(from, 0x22, 64));
}

/* The daemon's mapping keeps the memory alive after the device let go. */
static void vduse_domain_test_outlives_destroy(struct kunit *test)
{
	struct kt_domain kd = { .iova_limit = KT_IOVA_LIMIT };
	u8 *buf = kt_buf(test, 0, 32, 0x61);
	dma_addr_t iova, c_iova;
	void *vaddr;

	kd.domain = vduse_domain_create(KT_IOVA_LIMIT, KT_BOUNCE_SIZE, 8);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, kd.domain);
	iova = kt_map(&kd, buf, 32, DMA_TO_DEVICE, 0);
	vaddr = vduse_domain_alloc_coherent(kd.domain, 64, &c_iova, GFP_KERNEL);
	if (iova == DMA_MAPPING_ERROR || !vaddr) {
		vduse_domain_destroy(kd.domain);
		KUNIT_FAIL(test, "map or coherent allocation failed");
		return;
	}
	memset(vaddr, 0x62, 64);
	kt_view(test, &kd, iova);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, &kd, c_iova, 0x62, 64));

	/* The device goes away: the daemon still reads what it had. */
	vduse_domain_destroy(kd.domain);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, &kd, iova, 0x61, 32));
}

/*
 * Bounce pages whose slots are all free go back to the system, even while
 * the daemon maps them; its next access to a reused IOVA sees the new
 * page, never the freed one, and a live mapping keeps its page and data.
 */
static void vduse_domain_test_reclaim(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 8);
	u8 *a = kt_buf(test, 0, KT_SLOT, 0x31);
	u8 *b = kt_buf(test, 0, KT_SLOT, 0x32);
	u8 *c = kt_buf(test, 0, KT_SLOT, 0x33);
	dma_addr_t ia, ib, ic;
	unsigned long waited;

	ia = kt_map_view(test, kd, a, KT_SLOT, DMA_TO_DEVICE, 0);
	ib = kt_map(kd, b, KT_SLOT, DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_NE(test, ib, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, ia, 0x31, KT_SLOT));
	kt_poke(test, kd, ib, 0x42, KT_SLOT);
	KUNIT_EXPECT_EQ(test, vduse_domain_bounce_pages(kd->domain),
			(unsigned long)DIV_ROUND_UP(2 * KT_SLOT, PAGE_SIZE));

	/* a's mapping ends: its page goes; b's stays, with the daemon's data. */
	kt_unmap(kd, ia, KT_SLOT, DMA_TO_DEVICE, 0);
	if (PAGE_SIZE == KT_SLOT) {
		KUNIT_EXPECT_EQ(test, vduse_domain_reclaim(kd->domain), 1UL);
		KUNIT_EXPECT_EQ(test, vduse_domain_bounce_pages(kd->domain), 1UL);
	}
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, ib, 0x42, KT_SLOT));

	/* A new mapping, probably at a's IOVA: the daemon sees its bytes. */
	ic = kt_map(kd, c, KT_SLOT, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, ic, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, ic, 0x33, KT_SLOT));
	kt_unmap(kd, ic, KT_SLOT, DMA_TO_DEVICE, 0);

	/* The daemon's writes to b reach the driver after all that. */
	kt_unmap(kd, ib, KT_SLOT, DMA_FROM_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(b, 0x42, KT_SLOT));

	/* Idle for a second: the domain frees the rest by itself. */
	for (waited = 0; waited < 5000 &&
	     vduse_domain_bounce_pages(kd->domain); waited += 50)
		msleep(50);
	KUNIT_EXPECT_EQ(test, vduse_domain_bounce_pages(kd->domain), 0UL);
	KUNIT_EXPECT_GE(test, waited, 500UL);
	KUNIT_EXPECT_EQ(test, vduse_domain_reclaim(kd->domain), 0UL);

	/* And the area works again: a fresh page, bounced as before. */
	ia = kt_map(kd, a, KT_SLOT, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, ia, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, ia, 0x31, KT_SLOT));
	kt_unmap(kd, ia, KT_SLOT, DMA_TO_DEVICE, 0);
}

/* Where a coherent_va case's IOVA lies. */
enum kt_va_base {
	KT_VA_A,	/* the two-page allocation */
	KT_VA_B,	/* the one-page allocation */
	KT_VA_BOUNCE,	/* a streaming mapping in the bounce area */
	KT_VA_USER,	/* an entry installed by set_map */
	KT_VA_FREE,	/* a coherent page nobody allocated */
	KT_VA_ZERO,	/* IOVA 0 plus the offset */
};

static const struct {
	const char *desc;
	enum kt_va_base base;
	u64 offset;
	size_t size;
	bool found;
} kt_va_cases[] = {
	{ "first byte", KT_VA_A, 0, 1, true },
	{ "whole allocation", KT_VA_A, 0, 2 * PAGE_SIZE, true },
	{ "across its inner page boundary", KT_VA_A, PAGE_SIZE - 8, 16, true },
	{ "last byte", KT_VA_A, 2 * PAGE_SIZE - 1, 1, true },
	{ "one byte more than the allocation", KT_VA_A, 0, 2 * PAGE_SIZE + 1,
	  false },
	{ "crossing its end", KT_VA_A, 2 * PAGE_SIZE - 8, 16, false },
	{ "the other allocation", KT_VA_B, 8, 8, true },
	{ "the other allocation, one byte too long", KT_VA_B, 8, PAGE_SIZE - 7,
	  false },
	{ "bounce IOVA of a streaming mapping", KT_VA_BOUNCE, 0, 8, false },
	{ "bounce IOVA, one byte", KT_VA_BOUNCE, 1, 1, false },
	{ "IOVA of a set_map entry", KT_VA_USER, 0, 8, false },
	{ "coherent IOVA not allocated", KT_VA_FREE, 0, 8, false },
	{ "size 0", KT_VA_A, 0, 0, false },
	{ "range wrapping around", KT_VA_A, 8, SIZE_MAX, false },
	{ "range wrapping at the top", KT_VA_ZERO, U64_MAX, 2, false },
};

/*
 * The kernel's own look at coherent memory: only ranges inside one
 * coherent allocation have a kernel address.
 */
static void vduse_domain_test_coherent_va(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	struct file *file = kt_file(test);
	struct vdpa_map_file mf = { .file = file };
	const struct kt_entry user = { 0x100000, 0x100fff, 0, VHOST_MAP_RW,
				       &mf };
	u8 *buf = kt_buf(test, 0, 64, 0x42);
	dma_addr_t iova[KT_VA_ZERO + 1] = {};
	u8 *va[KT_VA_ZERO + 1] = {};
	unsigned int i;
	u64 free_iova;

	va[KT_VA_A] = vduse_domain_alloc_coherent(kd->domain, 2 * PAGE_SIZE,
						  &iova[KT_VA_A], GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, va[KT_VA_A]);
	va[KT_VA_B] = vduse_domain_alloc_coherent(kd->domain, PAGE_SIZE,
						  &iova[KT_VA_B], GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, va[KT_VA_B]);
	/* The bounce area gets its own IOTLB entry with the first mapping. */
	iova[KT_VA_BOUNCE] = kt_map(kd, buf, 64, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova[KT_VA_BOUNCE], DMA_MAPPING_ERROR);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_set_map(kd->domain,
						      kt_iotlb(test, &user, 1)));
	iova[KT_VA_USER] = user.start;
	for (free_iova = KT_BOUNCE_SIZE; free_iova < KT_IOVA_LIMIT;
	     free_iova += PAGE_SIZE)
		if (free_iova - iova[KT_VA_A] >= 2 * PAGE_SIZE &&
		    free_iova != iova[KT_VA_B])
			break;
	KUNIT_ASSERT_LT(test, free_iova, KT_IOVA_LIMIT);
	iova[KT_VA_FREE] = free_iova;

	for (i = 0; i < ARRAY_SIZE(kt_va_cases); i++) {
		enum kt_va_base base = kt_va_cases[i].base;
		void *want = NULL;

		if (kt_va_cases[i].found)
			want = va[base] + kt_va_cases[i].offset;
		KUNIT_EXPECT_PTR_EQ_MSG(test,
					vduse_domain_coherent_va(kd->domain,
								 iova[base] + kt_va_cases[i].offset,
								 kt_va_cases[i].size),
					want, "%s", kt_va_cases[i].desc);
	}

	/* Freed memory has no kernel address any more. */
	vduse_domain_free_coherent(kd->domain, PAGE_SIZE, va[KT_VA_B],
				   iova[KT_VA_B]);
	KUNIT_EXPECT_NULL(test, vduse_domain_coherent_va(kd->domain,
							 iova[KT_VA_B], 1));
	vduse_domain_free_coherent(kd->domain, 2 * PAGE_SIZE, va[KT_VA_A],
				   iova[KT_VA_A]);
	kt_unmap(kd, iova[KT_VA_BOUNCE], 64, DMA_TO_DEVICE, 0);
	vduse_domain_clear_map(kd->domain);
}

/* @len bytes counting up from @first. */
static void kt_pattern(u8 *buf, u8 first, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = first + i;
}

/*
 * The kernel acting as the device: through the bounce pages of streaming
 * mappings, which the driver's unmap copies back, and directly in
 * coherent memory.
 */
static void vduse_domain_test_rw(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	struct file *file = kt_file(test);
	struct vdpa_map_file mf = { .file = file };
	const struct kt_entry user = { 0x100000, 0x100fff, 0, VHOST_MAP_RW,
				       &mf };
	u8 *in = kunit_kmalloc(test, 2 * PAGE_SIZE, GFP_KERNEL);
	u8 *out = kunit_kmalloc(test, 2 * PAGE_SIZE, GFP_KERNEL);
	u8 *buf, *cva;
	dma_addr_t iova, ciova;

	KUNIT_ASSERT_NOT_NULL(test, in);
	KUNIT_ASSERT_NOT_NULL(test, out);
	kt_pattern(in, 0x10, 2 * PAGE_SIZE);

	/* A fresh domain: no bounce page exists yet, nothing is allocated. */
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, PAGE_SIZE, out, 8,
					      false), -EFAULT);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, KT_BOUNCE_SIZE, in,
					      8, true), -EFAULT);

	/* Written through a DMA_FROM_DEVICE mapping: the unmap delivers. */
	buf = kt_buf(test, 100, 300, 0x11);
	iova = kt_map(kd, buf, 300, DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, iova, in, 300, true),
			0);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, iova + 10, out, 50,
					      false), 0);
	KUNIT_EXPECT_EQ(test, memcmp(out, in + 10, 50), 0);
	kt_unmap(kd, iova, 300, DMA_FROM_DEVICE, 0);
	KUNIT_EXPECT_EQ(test, memcmp(buf, in, 300), 0);
	KUNIT_EXPECT_EQ(test, buf[-1], KT_NEIGHBOUR);
	KUNIT_EXPECT_EQ(test, buf[300], KT_NEIGHBOUR);

	/* Read of a DMA_TO_DEVICE mapping: the driver's bytes. */
	buf = kt_buf(test, 8, 64, 0);
	kt_pattern(buf, 0x80, 64);
	iova = kt_map(kd, buf, 64, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	memset(out, 0, 64);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, iova, out, 64,
					      false), 0);
	KUNIT_EXPECT_EQ(test, memcmp(out, buf, 64), 0);
	kt_unmap(kd, iova, 64, DMA_TO_DEVICE, 0);

	/* Both ways across a page boundary of a bidirectional mapping. */
	buf = kt_buf(test, PAGE_SIZE - 20, 40, 0);
	kt_pattern(buf, 0x40, 40);
	iova = kt_map(kd, buf, 40, DMA_BIDIRECTIONAL, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_ASSERT_GT(test, offset_in_page(iova) + 40, PAGE_SIZE);
	memset(out, 0, 40);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, iova, out, 40,
					      false), 0);
	KUNIT_EXPECT_EQ(test, memcmp(out, buf, 40), 0);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, iova + 4, in, 32,
					      true), 0);
	kt_unmap(kd, iova, 40, DMA_BIDIRECTIONAL, 0);
	KUNIT_EXPECT_EQ(test, memcmp(buf + 4, in, 32), 0);
	KUNIT_EXPECT_EQ(test, buf[0], 0x40);
	KUNIT_EXPECT_EQ(test, buf[39], 0x40 + 39);

	/* Coherent memory, both ways, across its page boundary. */
	cva = vduse_domain_alloc_coherent(kd->domain, 2 * PAGE_SIZE, &ciova,
					  GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, cva);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, ciova + PAGE_SIZE - 7,
					      in, 100, true), 0);
	KUNIT_EXPECT_EQ(test, memcmp(cva + PAGE_SIZE - 7, in, 100), 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(cva, 0, PAGE_SIZE - 7));
	kt_pattern(cva, 0x33, 2 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, ciova, out,
					      2 * PAGE_SIZE, false), 0);
	KUNIT_EXPECT_EQ(test, memcmp(out, cva, 2 * PAGE_SIZE), 0);

	/* Ranges with a part that has no kernel backing. */
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, ciova + PAGE_SIZE,
					      out, 2 * PAGE_SIZE, false),
			-EFAULT);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, KT_IOVA_LIMIT + 1,
					      out, 1, false), -EFAULT);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, U64_MAX - 3, out,
					      8, false), -EFAULT);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_set_map(kd->domain,
						      kt_iotlb(test, &user, 1)));
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, user.start, out, 8,
					      false), -EFAULT);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, user.start, in, 8,
					      true), -EFAULT);
	vduse_domain_clear_map(kd->domain);
	vduse_domain_free_coherent(kd->domain, 2 * PAGE_SIZE, cva, ciova);
	KUNIT_EXPECT_EQ(test, vduse_domain_rw(kd->domain, ciova, out, 8,
					      false), -EFAULT);
}

static struct kunit_case vduse_domain_cases[] = {
	KUNIT_CASE(vduse_domain_test_create_checks),
	KUNIT_CASE(vduse_domain_test_bounce_entry),
	KUNIT_CASE_PARAM(vduse_domain_test_directions, kt_dir_gen_params),
	KUNIT_CASE(vduse_domain_test_partial_sync),
	KUNIT_CASE(vduse_domain_test_page_boundaries),
	KUNIT_CASE(vduse_domain_test_map_limits),
	KUNIT_CASE_PARAM(vduse_domain_test_max_map, kt_max_map_gen_params),
	KUNIT_CASE(vduse_domain_test_exhaustion),
	KUNIT_CASE(vduse_domain_test_atomic_map),
	KUNIT_CASE(vduse_domain_test_coherent),
	KUNIT_CASE(vduse_domain_test_coherent_exhaustion),
	KUNIT_CASE(vduse_domain_test_protect),
	KUNIT_CASE(vduse_domain_test_coherent_va),
	KUNIT_CASE(vduse_domain_test_rw),
	KUNIT_CASE(vduse_domain_test_set_map),
	KUNIT_CASE(vduse_domain_test_set_map_limit),
	KUNIT_CASE(vduse_domain_test_reclaim),
	KUNIT_CASE(vduse_domain_test_umem),
	KUNIT_CASE(vduse_domain_test_umem_drop),
	KUNIT_CASE(vduse_domain_test_outlives_destroy),
	{}
};

static struct kunit_suite vduse_domain_suite = {
	.name = "vduse_domain",
	.test_cases = vduse_domain_cases,
};

/* ==================================================================== */
/* Device configuration                                                  */
/* ==================================================================== */

#define KT_FEATURES	(BIT_ULL(VIRTIO_F_ACCESS_PLATFORM) | \
			 BIT_ULL(VIRTIO_F_VERSION_1))

/*
 * A creation request the driver accepts for API version @api: a block
 * device with two virtqueues, one group in one address space for
 * version 1.  Each case changes one thing in it.
 */
static void kt_config_init(struct vduse_dev_config *c, u64 api)
{
	memset(c, 0, sizeof(*c));
	strscpy(c->name, "kunit0", sizeof(c->name));
	c->device_id = VIRTIO_ID_BLOCK;
	c->features = KT_FEATURES;
	c->vq_num = 2;
	c->vq_align = PAGE_SIZE;
	c->config_size = 8;
	if (api >= VDUSE_API_VERSION_1) {
		c->ngroups = 1;
		c->nas = 1;
	}
}

enum kt_change {
	KT_KEEP,
	KT_DEVICE,		/* device_id = value */
	KT_NET_FEATURE_ON,	/* network device, feature bit value set */
	KT_NET_FEATURE_OFF,	/* network device, feature bit value clear */
	KT_FEATURE_ON,
	KT_FEATURE_OFF,
	KT_RESERVED,		/* reserved[value] = 1 */
	KT_NAME,		/* name = the case's name */
	KT_NAME_UNTERMINATED,	/* every byte of name is 'n' */
	KT_NGROUPS,
	KT_NAS,
	KT_VQ_NUM,
	KT_VQ_ALIGN,
	KT_CONFIG_SIZE,
};

struct kt_config_case {
	const char *desc;
	u64 api;
	enum kt_change change;
	u64 value;
	const char *name;
	int want;
};

static void kt_config_change(struct vduse_dev_config *c,
			     const struct kt_config_case *p)
{
	switch (p->change) {
	case KT_KEEP:
		break;
	case KT_DEVICE:
		c->device_id = p->value;
		break;
	case KT_NET_FEATURE_ON:
		c->device_id = VIRTIO_ID_NET;
		fallthrough;
	case KT_FEATURE_ON:
		c->features |= BIT_ULL(p->value);
		break;
	case KT_NET_FEATURE_OFF:
		c->device_id = VIRTIO_ID_NET;
		fallthrough;
	case KT_FEATURE_OFF:
		c->features &= ~BIT_ULL(p->value);
		break;
	case KT_RESERVED:
		c->reserved[p->value] = 1;
		break;
	case KT_NAME:
		strscpy(c->name, p->name, sizeof(c->name));
		break;
	case KT_NAME_UNTERMINATED:
		memset(c->name, 'n', sizeof(c->name));
		break;
	case KT_NGROUPS:
		c->ngroups = p->value;
		break;
	case KT_NAS:
		c->nas = p->value;
		break;
	case KT_VQ_NUM:
		c->vq_num = p->value;
		break;
	case KT_VQ_ALIGN:
		c->vq_align = p->value;
		break;
	case KT_CONFIG_SIZE:
		c->config_size = p->value;
		break;
	}
}

static const struct kt_config_case kt_config_cases[] = {
	{ "block device", 0, KT_KEEP },
	{ "network device", 0, KT_DEVICE, VIRTIO_ID_NET },
	{ "file system device", 0, KT_DEVICE, VIRTIO_ID_FS },
	{ "console device", 0, KT_DEVICE, VIRTIO_ID_CONSOLE, .want = -EINVAL },
	{ "no ACCESS_PLATFORM", 0, KT_FEATURE_OFF, VIRTIO_F_ACCESS_PLATFORM,
	  .want = -EINVAL },
	{ "block with CONFIG_WCE", 0, KT_FEATURE_ON, VIRTIO_BLK_F_CONFIG_WCE,
	  .want = -EINVAL },
	{ "block without VERSION_1", 0, KT_FEATURE_OFF, VIRTIO_F_VERSION_1 },
	{ "network with CTRL_VQ", 0, KT_NET_FEATURE_ON, VIRTIO_NET_F_CTRL_VQ,
	  .want = -EINVAL },
	{ "network without VERSION_1", 0, KT_NET_FEATURE_OFF,
	  VIRTIO_F_VERSION_1, .want = -EINVAL },
	{ "reserved bytes set", 0, KT_RESERVED, 10, .want = -EINVAL },
	{ "empty name", 0, KT_NAME, .name = "", .want = -EINVAL },
	{ "name with a slash", 0, KT_NAME, .name = "a/b", .want = -EINVAL },
	{ "name \".\"", 0, KT_NAME, .name = ".", .want = -EINVAL },
	{ "name \"..\"", 0, KT_NAME, .name = "..", .want = -EINVAL },
	{ "name \"...\"", 0, KT_NAME, .name = "..." },
	{ "unterminated name, cut at 255 bytes", 0, KT_NAME_UNTERMINATED },
	{ "version 0 with ngroups", 0, KT_NGROUPS, 1, .want = -EINVAL },
	{ "version 0 with nas", 0, KT_NAS, 1, .want = -EINVAL },
	{ "version 1, one group in one space", 1, KT_KEEP },
	{ "version 1, most groups", 1, KT_NGROUPS, VDUSE_MAX_GROUPS },
	{ "version 1, most spaces", 1, KT_NAS, VDUSE_MAX_AS },
	{ "version 1 without groups", 1, KT_NGROUPS, 0, .want = -EINVAL },
	{ "version 1 without spaces", 1, KT_NAS, 0, .want = -EINVAL },
	{ "version 1, too many groups", 1, KT_NGROUPS, VDUSE_MAX_GROUPS + 1,
	  .want = -EINVAL },
	{ "version 1, too many spaces", 1, KT_NAS, VDUSE_MAX_AS + 1,
	  .want = -EINVAL },
	{ "most virtqueues", 0, KT_VQ_NUM, VDUSE_MAX_VQ_NUM },
	{ "too many virtqueues", 0, KT_VQ_NUM, VDUSE_MAX_VQ_NUM + 1,
	  .want = -EINVAL },
	{ "smallest vq_align", 0, KT_VQ_ALIGN, VRING_USED_ALIGN_SIZE },
	{ "vq_align too small", 0, KT_VQ_ALIGN, 2, .want = -EINVAL },
	{ "vq_align not a power of two", 0, KT_VQ_ALIGN, 192, .want = -EINVAL },
	{ "vq_align above PAGE_SIZE", 0, KT_VQ_ALIGN, 2 * PAGE_SIZE,
	  .want = -EINVAL },
	{ "vq_align zero", 0, KT_VQ_ALIGN, 0, .want = -EINVAL },
	{ "config space of PAGE_SIZE", 0, KT_CONFIG_SIZE, PAGE_SIZE },
	{ "config space above PAGE_SIZE", 0, KT_CONFIG_SIZE, PAGE_SIZE + 1,
	  .want = -EINVAL },
};

KUNIT_ARRAY_PARAM_DESC(kt_config, kt_config_cases, desc);

static void vduse_config_test_check(struct kunit *test)
{
	const struct kt_config_case *p = test->param_value;
	struct vduse_dev_config *c = kunit_kmalloc(test, sizeof(*c),
						   GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, c);
	kt_config_init(c, p->api);
	kt_config_change(c, p);
	KUNIT_EXPECT_EQ(test, vduse_dev_check_config(c, p->api), p->want);
	if (!p->want) {
		KUNIT_EXPECT_EQ(test, c->name[VDUSE_NAME_MAX - 1], '\0');
		KUNIT_EXPECT_TRUE(test, vduse_dev_name_valid(c->name));
	}
}

static void vduse_config_test_msg_timeout(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, vduse_msg_timeout_jiffies(1), (long)HZ);
	KUNIT_EXPECT_EQ(test, vduse_msg_timeout_jiffies(30), 30L * HZ);
	/* Large values stay below "forever" and never wrap. */
	KUNIT_EXPECT_GT(test, vduse_msg_timeout_jiffies(UINT_MAX), 0L);
	KUNIT_EXPECT_LT(test, vduse_msg_timeout_jiffies(UINT_MAX),
			(long)MAX_SCHEDULE_TIMEOUT);
	KUNIT_EXPECT_GE(test, vduse_msg_timeout_jiffies(UINT_MAX),
			vduse_msg_timeout_jiffies(UINT_MAX - 1));
}

KUNIT_DEFINE_ACTION_WRAPPER(kt_dev_free, vduse_dev_free, struct vduse_dev *);

/* A device as VDUSE_CREATE_DEV makes it, without char device or sysfs. */
static struct vduse_dev *kt_dev(struct kunit *test, u64 api_version,
				u32 ngroups, u32 nas)
{
	struct vduse_dev_config c;
	struct vduse_dev *dev;
	u8 config[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	kt_config_init(&c, api_version);
	if (api_version >= VDUSE_API_VERSION_1) {
		c.ngroups = ngroups;
		c.nas = nas;
	}
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_check_config(&c, api_version));
	dev = vduse_dev_alloc(&c, api_version);
	KUNIT_ASSERT_NOT_NULL(test, dev);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, kt_dev_free,
							   dev));
	dev->config = kmemdup(config, sizeof(config), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, dev->config);
	/*
	 * A test that goes wrong must not wait forever; one that goes right
	 * never waits for this long, even on a loaded machine.
	 */
	dev->msg_timeout = 30;
	return dev;
}

/* Address space arguments of the ioctls, for version 0 and 1 devices. */
static const struct {
	const char *desc;
	bool v1;
	u32 asid;
	bool reserved;
	int want;
} kt_asid_cases[] = {
	{ "version 0, space 0", false, 0, false, 0 },
	{ "version 0, space 1", false, 1, false, -EINVAL },
	{ "version 1, last space", true, 2, false, 0 },
	{ "version 1, one space too far", true, 3, false, -EINVAL },
	{ "version 1, U32_MAX", true, U32_MAX, false, -EINVAL },
	{ "version 1, reserved bytes set", true, 0, true, -EINVAL },
};

static void vduse_config_test_check_asid(struct kunit *test)
{
	struct vduse_dev *v0 = kt_dev(test, 0, 0, 0);
	struct vduse_dev *v1 = kt_dev(test, 1, 2, 3);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kt_asid_cases); i++) {
		u32 reserved[5] = {};

		reserved[4] = kt_asid_cases[i].reserved;
		KUNIT_EXPECT_EQ_MSG(test,
				    vduse_dev_check_asid(kt_asid_cases[i].v1 ? v1 : v0,
							 kt_asid_cases[i].asid,
							 reserved,
							 sizeof(reserved)),
				    kt_asid_cases[i].want, "%s",
				    kt_asid_cases[i].desc);
	}
}

/*
 * The address spaces share the bounce size; later attaches reuse them.
 * The map ops report the largest mapping of the group's space.
 */
static void vduse_config_test_init_domains(struct kunit *test)
{
	struct vduse_dev *one = kt_dev(test, 0, 0, 0);
	struct vduse_dev *three = kt_dev(test, 1, 1, 3);
	union virtio_map map = { .group = &one->groups[0] };
	struct vduse_iova_domain *first;
	u32 i;

	KUNIT_EXPECT_EQ(test, vduse_map_max_mapping_size(map), 0);
	one->bounce_size = VDUSE_MIN_BOUNCE_SIZE;
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(one));
	KUNIT_ASSERT_NOT_NULL(test, one->domains[0]);
	KUNIT_EXPECT_EQ(test, vduse_domain_bounce_size(one->domains[0]),
			VDUSE_MIN_BOUNCE_SIZE);
	/* 1 MiB: 256 slots, 128 in one range, one less for an offset. */
	KUNIT_EXPECT_EQ(test, vduse_map_max_mapping_size(map),
			127 * VDUSE_BOUNCE_MAP_SIZE);
	first = one->domains[0];
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(one));
	KUNIT_EXPECT_PTR_EQ(test, one->domains[0], first);

	three->bounce_size = VDUSE_MIN_BOUNCE_SIZE;
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(three));
	for (i = 0; i < 3; i++) {
		KUNIT_ASSERT_NOT_NULL(test, three->domains[i]);
		KUNIT_EXPECT_EQ(test,
				vduse_domain_bounce_size(three->domains[i]),
				round_down(VDUSE_MIN_BOUNCE_SIZE / 3, PAGE_SIZE));
	}
	KUNIT_EXPECT_PTR_NE(test, three->domains[0], three->domains[1]);
}

/* The vDPA device "vdpa dev add" would make, for calling the vdpa ops. */
static struct vdpa_device *kt_vdpa(struct kunit *test, struct vduse_dev *dev)
{
	struct vduse_vdpa *vv = kunit_kzalloc(test, sizeof(*vv), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, vv);
	vv->dev = dev;
	return &vv->vdpa;
}

/* The driver reads the config space; bytes past its end read as zero. */
static void vduse_config_test_config_space(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	u8 buf[16];
	const u8 want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	KUNIT_EXPECT_EQ(test, vduse_vdpa_get_config_size(vdpa), 8);
	memset(buf, 0xff, sizeof(buf));
	vduse_vdpa_get_config(vdpa, 0, buf, 8);
	KUNIT_EXPECT_EQ(test, memcmp(buf, want, 8), 0);

	memset(buf, 0xff, sizeof(buf));
	vduse_vdpa_get_config(vdpa, 6, buf, 4);
	KUNIT_EXPECT_EQ(test, buf[0], 7);
	KUNIT_EXPECT_EQ(test, buf[1], 8);
	KUNIT_EXPECT_EQ(test, buf[2], 0);
	KUNIT_EXPECT_EQ(test, buf[3], 0);
	KUNIT_EXPECT_EQ(test, buf[4], 0xff);

	memset(buf, 0xff, sizeof(buf));
	vduse_vdpa_get_config(vdpa, 100, buf, 16);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0, 16));

	/* Read-only for the driver. */
	vduse_vdpa_set_config(vdpa, 0, buf, 8);
	vduse_vdpa_get_config(vdpa, 0, buf, 8);
	KUNIT_EXPECT_EQ(test, memcmp(buf, want, 8), 0);
}

/* Reads of the config space, by offset and length. */
static const struct {
	unsigned int offset;
	unsigned int len;
} kt_status_reads[] = {
	{ 0, 8 }, { 6, 1 }, { 6, 2 }, { 5, 2 }, { 4, 4 }, { 0, 7 }, { 6, 10 },
	{ 2, 14 }, { 0, 6 }, { 7, 1 }, { 7, 9 }, { 8, 4 },
};

/*
 * A network device's status field reaches the driver without
 * VIRTIO_NET_S_ANNOUNCE, whatever part of the config space is read; no
 * other bit or byte changes, and a block device's byte 6 stays as it is.
 */
static void vduse_config_test_net_status(struct kunit *test)
{
	struct vduse_dev *net = kt_dev(test, 0, 0, 0);
	struct vduse_dev *blk = kt_dev(test, 0, 0, 0);
	const u8 config[8] = { 1, 2, 3, 4, 5, 6, 0xff, 0xff };
	struct vduse_dev *devs[] = { net, blk };
	unsigned int i, j, k;
	u8 buf[16], want[16];

	KUNIT_ASSERT_EQ(test, offsetof(struct virtio_net_config, status), 6);
	/* kt_dev() makes a block device; only the device id matters here. */
	net->device_id = VIRTIO_ID_NET;
	for (k = 0; k < ARRAY_SIZE(devs); k++)
		memcpy(devs[k]->config, config, sizeof(config));

	for (k = 0; k < ARRAY_SIZE(devs); k++) {
		struct vdpa_device *vdpa = kt_vdpa(test, devs[k]);

		for (i = 0; i < ARRAY_SIZE(kt_status_reads); i++) {
			unsigned int offset = kt_status_reads[i].offset;
			unsigned int len = kt_status_reads[i].len;

			for (j = 0; j < len; j++) {
				unsigned int pos = offset + j;

				want[j] = pos < sizeof(config) ? config[pos] : 0;
				if (devs[k] == net && pos == 6)
					want[j] &= ~VIRTIO_NET_S_ANNOUNCE;
			}
			memset(buf, 0xa5, sizeof(buf));
			vduse_vdpa_get_config(vdpa, offset, buf, len);
			KUNIT_EXPECT_EQ_MSG(test, memcmp(buf, want, len), 0,
					    "%s device, offset %u, length %u",
					    devs[k] == net ? "network" : "block",
					    offset, len);
			KUNIT_EXPECT_TRUE_MSG(test,
					      kt_filled(buf + len, 0xa5,
							sizeof(buf) - len),
					      "offset %u, length %u", offset,
					      len);
		}
		/* The daemon's config space itself is left alone. */
		KUNIT_EXPECT_EQ(test, memcmp(devs[k]->config, config,
					     sizeof(config)), 0);
	}
}

static const struct {
	const char *desc;
	u32 device_id;
	bool indirect;
	u16 num_max[2];
	bool want;
	u16 offered[2];
} kt_vqs_cases[] = {
	{ "network, rings of the minimum", VIRTIO_ID_NET, false,
	  { VDUSE_NET_MIN_RING, 1024 }, true, { VDUSE_NET_MIN_RING, 1024 } },
	{ "network, one ring one entry short", VIRTIO_ID_NET, false,
	  { 1024, VDUSE_NET_MIN_RING - 1 }, false, { 1024, 0 } },
	{ "network, small rings", VIRTIO_ID_NET, false, { 4, 4 }, false,
	  { 0, 0 } },
	{ "network with INDIRECT_DESC, small rings", VIRTIO_ID_NET, true,
	  { 4, 1 }, true, { 4, 1 } },
	{ "network with INDIRECT_DESC, a ring not set up", VIRTIO_ID_NET, true,
	  { 256, 0 }, false, { 256, 0 } },
	{ "network, a ring not set up", VIRTIO_ID_NET, false, { 0, 256 },
	  false, { 0, 256 } },
	{ "block, small rings", VIRTIO_ID_BLOCK, false, { 1, 2 }, true,
	  { 1, 2 } },
	{ "block, large rings", VIRTIO_ID_BLOCK, false, { 1024, 256 }, true,
	  { 1024, 256 } },
	{ "block, a ring not set up", VIRTIO_ID_BLOCK, false, { 256, 0 },
	  false, { 256, 0 } },
};

/*
 * Rings a network driver without indirect descriptors cannot fill: "vdpa
 * dev add" refuses them, and since VQ_SETUP may shrink a ring after that,
 * the driver is offered no size for such a ring (it fails to probe).
 */
static void vduse_config_test_vqs_set_up(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	unsigned int i, q;

	KUNIT_ASSERT_EQ(test, dev->vq_num, 2);
	for (i = 0; i < ARRAY_SIZE(kt_vqs_cases); i++) {
		dev->device_id = kt_vqs_cases[i].device_id;
		dev->device_features = KT_FEATURES;
		if (kt_vqs_cases[i].indirect)
			dev->device_features |=
				BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC);
		dev->vqs[0]->num_max = kt_vqs_cases[i].num_max[0];
		dev->vqs[1]->num_max = kt_vqs_cases[i].num_max[1];
		KUNIT_EXPECT_EQ_MSG(test, vduse_dev_vqs_set_up(dev),
				    kt_vqs_cases[i].want, "%s",
				    kt_vqs_cases[i].desc);
		for (q = 0; q < 2; q++)
			KUNIT_EXPECT_EQ_MSG(test, vduse_vdpa_get_vq_size(vdpa, q),
					    kt_vqs_cases[i].offered[q],
					    "%s, queue %u", kt_vqs_cases[i].desc,
					    q);
		KUNIT_EXPECT_EQ_MSG(test, vduse_vdpa_get_vq_num_max(vdpa),
				    max(kt_vqs_cases[i].offered[0],
					kt_vqs_cases[i].offered[1]),
				    "%s", kt_vqs_cases[i].desc);
	}
}

static struct kunit_case vduse_config_cases[] = {
	KUNIT_CASE_PARAM(vduse_config_test_check, kt_config_gen_params),
	KUNIT_CASE(vduse_config_test_msg_timeout),
	KUNIT_CASE(vduse_config_test_check_asid),
	KUNIT_CASE(vduse_config_test_init_domains),
	KUNIT_CASE(vduse_config_test_config_space),
	KUNIT_CASE(vduse_config_test_net_status),
	KUNIT_CASE(vduse_config_test_vqs_set_up),
	{}
};

static struct kunit_suite vduse_config_suite = {
	.name = "vduse_config",
	.test_cases = vduse_config_cases,
};

/* ==================================================================== */
/* Message channel                                                       */
/* ==================================================================== */

/*
 * The test plays the daemon through the device node's read_iter,
 * write_iter and poll; the kernel side runs in a work item, since every
 * request blocks its sender until the reply.
 */

/**
 * struct kt_daemon - a device, its vDPA device and the daemon's end of it
 * @dev: the device
 * @vdpa: its vDPA device, for calling the vdpa ops
 * @file: stands for the open device node; only private_data and
 *	f_flags are used by the code under test
 */
struct kt_daemon {
	struct vduse_dev *dev;
	struct vdpa_device *vdpa;
	struct file file;
};

/* How long a test waits for something that should happen at once. */
#define KT_WAIT		(20 * HZ)

/* A device as kt_dev() makes it, with its vDPA device and daemon. */
static struct kt_daemon *kt_daemon(struct kunit *test, u64 api_version,
				   u32 ngroups, u32 nas)
{
	struct kt_daemon *d = kunit_kzalloc(test, sizeof(*d), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, d);
	d->dev = kt_dev(test, api_version, ngroups, nas);
	d->vdpa = kt_vdpa(test, d->dev);
	d->file.private_data = d->dev;
	return d;
}

static ssize_t kt_read(struct kt_daemon *d, void *buf, size_t len)
{
	struct kvec kv = { .iov_base = buf, .iov_len = len };
	struct kiocb iocb = { .ki_filp = &d->file };
	struct iov_iter iter;

	d->file.f_flags = O_NONBLOCK;
	iov_iter_kvec(&iter, ITER_DEST, &kv, 1, len);
	return vduse_dev_read_iter(&iocb, &iter);
}

static ssize_t kt_write(struct kt_daemon *d, const void *buf, size_t len)
{
	struct kvec kv = { .iov_base = (void *)buf, .iov_len = len };
	struct kiocb iocb = { .ki_filp = &d->file };
	struct iov_iter iter;

	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, len);
	return vduse_dev_write_iter(&iocb, &iter);
}

/* poll() of the device node, as plain bits for the assertions. */
#define KT_POLL(mask)	((__force unsigned int)(mask))

static unsigned int kt_poll(struct kt_daemon *d)
{
	return KT_POLL(vduse_dev_poll(&d->file, NULL));
}

/* Wait (bounded) until a request is there to be read. */
static void kt_wait_pending(struct kunit *test, struct kt_daemon *d)
{
	KUNIT_ASSERT_GT(test, wait_event_timeout(d->dev->waitq,
						 vduse_msg_pending(d->dev),
						 KT_WAIT), 0);
}

/* Wait (bounded) for a request and read it. */
static void kt_next(struct kunit *test, struct kt_daemon *d,
		    struct vduse_dev_request *req)
{
	kt_wait_pending(test, d);
	KUNIT_ASSERT_EQ(test, kt_read(d, req, sizeof(*req)),
			(ssize_t)sizeof(*req));
	KUNIT_EXPECT_TRUE(test, kt_filled(req->reserved, 0,
					  sizeof(req->reserved)));
}

static ssize_t kt_answer(struct kt_daemon *d, u32 id, u32 result,
			 const struct vduse_vq_state *state)
{
	struct vduse_dev_response resp = {
		.request_id = id,
		.result = result,
	};

	if (state)
		resp.vq_state = *state;
	return kt_write(d, &resp, sizeof(resp));
}

/**
 * struct kt_call - a kernel-side call that talks to the daemon
 * @work: runs @fn
 * @fn: the call
 * @vdpa: its vDPA device
 * @dev: its VDUSE device
 * @arg: argument of @fn
 * @state: where GET_VQ_STATE results go
 * @ret: return value of @fn
 * @done: @fn returned
 */
struct kt_call {
	struct work_struct work;
	int (*fn)(struct kt_call *call);
	struct vdpa_device *vdpa;
	struct vduse_dev *dev;
	u32 arg;
	struct vdpa_vq_state state;
	int ret;
	struct completion done;
};

static void kt_call_work(struct work_struct *work)
{
	struct kt_call *call = container_of(work, struct kt_call, work);

	call->ret = call->fn(call);
	complete(&call->done);
}

/* Make sure no call outlives its test, whatever happened. */
static void kt_call_flush(void *data)
{
	struct kt_call *call = data;

	if (!completion_done(&call->done))
		vduse_dev_mark_broken(call->dev);
	flush_work(&call->work);
}

static struct kt_call *kt_start(struct kunit *test, struct vdpa_device *vdpa,
				int (*fn)(struct kt_call *call), u32 arg)
{
	struct kt_call *call = kunit_kzalloc(test, sizeof(*call), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, call);
	call->fn = fn;
	call->vdpa = vdpa;
	call->dev = vdpa_to_vduse(vdpa);
	call->arg = arg;
	init_completion(&call->done);
	INIT_WORK(&call->work, kt_call_work);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, kt_call_flush,
							   call));
	queue_work(system_dfl_wq, &call->work);
	return call;
}

static int kt_finish(struct kunit *test, struct kt_call *call)
{
	KUNIT_ASSERT_GT(test, wait_for_completion_timeout(&call->done,
							  2 * KT_WAIT), 0);
	return call->ret;
}

static int kt_set_status(struct kt_call *call)
{
	vduse_vdpa_set_status(call->vdpa, call->arg);
	return vduse_vdpa_get_status(call->vdpa);
}

static int kt_reset(struct kt_call *call)
{
	return vduse_vdpa_reset(call->vdpa);
}

static int kt_send_status(struct kt_call *call)
{
	return vduse_msg_set_status(call->dev, call->arg);
}

static int kt_get_vq_state(struct kt_call *call)
{
	return vduse_vdpa_get_vq_state(call->vdpa, call->arg, &call->state);
}

static int kt_suspend(struct kt_call *call)
{
	return vduse_vdpa_suspend(call->vdpa);
}

static int kt_set_vq_ready(struct kt_call *call)
{
	vduse_vdpa_set_vq_ready(call->vdpa, call->arg, true);
	return 0;
}

static int kt_set_group_asid(struct kt_call *call)
{
	return vduse_vdpa_set_group_asid(call->vdpa, 1, call->arg);
}

static int kt_set_map(struct kt_call *call)
{
	struct vhost_iotlb *iotlb = vhost_iotlb_alloc(16, 0);
	int ret;

	if (!iotlb)
		return -ENOMEM;
	ret = vduse_vdpa_set_map(call->vdpa, call->arg, iotlb);
	vhost_iotlb_free(iotlb);
	return ret;
}

/* Start @fn and read the request it sends, which must be of @type. */
static struct kt_call *kt_ask(struct kunit *test, struct kt_daemon *d,
			      int (*fn)(struct kt_call *call), u32 arg,
			      u32 type, struct vduse_dev_request *req)
{
	struct kt_call *call = kt_start(test, d->vdpa, fn, arg);

	kt_next(test, d, req);
	KUNIT_EXPECT_EQ(test, req->type, type);
	return call;
}

/* Answer @req with @result (and @state): what did its call return? */
static int kt_reply(struct kunit *test, struct kt_daemon *d,
		    struct kt_call *call, const struct vduse_dev_request *req,
		    u32 result, const struct vduse_vq_state *state)
{
	KUNIT_EXPECT_EQ(test, kt_answer(d, req->request_id, result, state),
			(ssize_t)sizeof(struct vduse_dev_response));
	return kt_finish(test, call);
}

/*
 * Two status requests in flight: the daemon read the first into @req,
 * the second waits to be read.
 */
static void kt_two_requests(struct kunit *test, struct kt_daemon *d,
			    struct kt_call **c1, struct kt_call **c2,
			    struct vduse_dev_request *req)
{
	*c1 = kt_ask(test, d, kt_send_status, 1, VDUSE_SET_STATUS, req);
	*c2 = kt_start(test, d->vdpa, kt_send_status, 2);
	kt_wait_pending(test, d);
}

/* A status write travels to the daemon and sticks once answered. */
static void vduse_msg_test_status(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	u8 acked = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	u8 driver = acked | VIRTIO_CONFIG_S_DRIVER;
	struct vduse_dev_request req;
	struct kt_call *call;

	KUNIT_EXPECT_EQ(test, kt_poll(d), 0U);
	call = kt_ask(test, d, kt_set_status, acked, VDUSE_SET_STATUS, &req);
	KUNIT_EXPECT_EQ(test, req.s.status, acked);
	/* Read, not answered: writable, nothing more to read. */
	KUNIT_EXPECT_EQ(test, kt_poll(d), KT_POLL(EPOLLOUT | EPOLLWRNORM));
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req,
				       VDUSE_REQ_RESULT_OK, NULL), acked);
	KUNIT_EXPECT_EQ(test, kt_poll(d), 0U);

	/* A refused status does not stick. */
	call = kt_ask(test, d, kt_set_status, driver, VDUSE_SET_STATUS, &req);
	KUNIT_EXPECT_EQ(test, req.s.status, driver);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req,
				       VDUSE_REQ_RESULT_FAILED, NULL), acked);
	KUNIT_EXPECT_FALSE(test, d->dev->broken);
}

/* Request ids are unique and replies are matched by id, in any order. */
static void vduse_msg_test_ids(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev_request r1, r2;
	struct kt_call *c1, *c2;

	c1 = kt_ask(test, d, kt_send_status, 1, VDUSE_SET_STATUS, &r1);
	c2 = kt_ask(test, d, kt_send_status, 2, VDUSE_SET_STATUS, &r2);
	KUNIT_EXPECT_NE(test, r1.request_id, r2.request_id);
	KUNIT_EXPECT_EQ(test, r1.s.status, 1);
	KUNIT_EXPECT_EQ(test, r2.s.status, 2);

	/* The second is answered first, with a failure. */
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, c2, &r2,
				       VDUSE_REQ_RESULT_FAILED, NULL), -EIO);
	KUNIT_EXPECT_FALSE(test, completion_done(&c1->done));
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, c1, &r1, VDUSE_REQ_RESULT_OK,
				       NULL), 0);

	/* An answered id is gone. */
	KUNIT_EXPECT_EQ(test, kt_answer(d, r1.request_id, VDUSE_REQ_RESULT_OK,
					NULL), -ENOENT);
}

/* What read() refuses, and a request that could not be copied out. */
static void vduse_msg_test_read(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev_request req, again;
	struct kiocb iocb = { .ki_filp = &d->file };
	struct iov_iter iter;
	struct kt_call *call;

	KUNIT_EXPECT_EQ(test, kt_read(d, &req, sizeof(req)), -EAGAIN);

	call = kt_start(test, d->vdpa, kt_send_status, 7);
	kt_wait_pending(test, d);
	KUNIT_EXPECT_EQ(test, kt_poll(d), KT_POLL(EPOLLIN | EPOLLRDNORM));
	KUNIT_EXPECT_EQ(test, kt_read(d, &req, sizeof(req) - 1), -EINVAL);

	/* A fault while copying puts the request back for the next read. */
	KUNIT_ASSERT_EQ(test, 0, kunit_attach_mm());
	d->file.f_flags = O_NONBLOCK;
	iov_iter_ubuf(&iter, ITER_DEST, (void __user *)PAGE_SIZE, sizeof(req));
	KUNIT_EXPECT_EQ(test, vduse_dev_read_iter(&iocb, &iter), -EFAULT);
	KUNIT_EXPECT_EQ(test, kt_poll(d), KT_POLL(EPOLLIN | EPOLLRDNORM));

	kt_next(test, d, &req);
	KUNIT_EXPECT_EQ(test, req.s.status, 7);
	KUNIT_EXPECT_EQ(test, kt_read(d, &again, sizeof(again)), -EAGAIN);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req, VDUSE_REQ_RESULT_OK,
				       NULL), 0);
}

/* What write() refuses. */
static void vduse_msg_test_write(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev_response resp = {};
	struct vduse_dev_request req;
	struct kt_call *c1, *c2;

	kt_two_requests(test, d, &c1, &c2, &req);
	resp.request_id = req.request_id;
	KUNIT_EXPECT_EQ(test, kt_write(d, &resp, sizeof(resp) - 1), -EINVAL);
	resp.reserved[3] = 1;
	KUNIT_EXPECT_EQ(test, kt_write(d, &resp, sizeof(resp)), -EINVAL);
	/* Not read yet: cannot be answered. */
	KUNIT_EXPECT_EQ(test, kt_answer(d, req.request_id + 1,
					VDUSE_REQ_RESULT_OK, NULL), -ENOENT);
	KUNIT_EXPECT_FALSE(test, completion_done(&c1->done));

	KUNIT_EXPECT_EQ(test, kt_reply(test, d, c1, &req, VDUSE_REQ_RESULT_OK,
				       NULL), 0);
	kt_next(test, d, &req);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, c2, &req, VDUSE_REQ_RESULT_OK,
				       NULL), 0);
}

/* No reply within msg_timeout: the device breaks for good. */
static void vduse_msg_test_timeout(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev_request req;
	struct kt_call *call;

	/*
	 * Whether the daemon read the request before it timed out or not
	 * (on a busy machine it may not have): nobody answers it.
	 */
	d->dev->msg_timeout = 1;
	call = kt_start(test, d->vdpa, kt_send_status, 1);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);
	KUNIT_EXPECT_TRUE(test, d->dev->broken);
	KUNIT_EXPECT_EQ(test, kt_poll(d), KT_POLL(EPOLLERR));
	KUNIT_EXPECT_TRUE(test, list_empty(&d->dev->send_list));
	KUNIT_EXPECT_TRUE(test, list_empty(&d->dev->recv_list));

	/* A late answer finds nothing; later requests fail at once. */
	KUNIT_EXPECT_EQ(test, kt_answer(d, 0, VDUSE_REQ_RESULT_OK, NULL),
			-ENOENT);
	call = kt_start(test, d->vdpa, kt_send_status, 2);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);
	KUNIT_EXPECT_EQ(test, kt_read(d, &req, sizeof(req)), -EAGAIN);
}

/* Breaking a device fails every request, read or not. */
static void vduse_msg_test_broken(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev_request req;
	struct kt_call *c1, *c2;

	kt_two_requests(test, d, &c1, &c2, &req);
	vduse_dev_mark_broken(d->dev);
	KUNIT_EXPECT_EQ(test, kt_finish(test, c1), -EIO);
	KUNIT_EXPECT_EQ(test, kt_finish(test, c2), -EIO);
	KUNIT_EXPECT_EQ(test, kt_poll(d), KT_POLL(EPOLLERR));
	KUNIT_EXPECT_TRUE(test, list_empty(&d->dev->send_list));
	KUNIT_EXPECT_TRUE(test, list_empty(&d->dev->recv_list));
}

/* GET_VQ_STATE: split passes through, packed is masked to 15 bits + 1. */
static void vduse_msg_test_vq_state(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_vq_state state = {};
	struct vduse_dev_request req;
	struct kt_call *call;
	u16 val;

	call = kt_ask(test, d, kt_get_vq_state, 1, VDUSE_GET_VQ_STATE, &req);
	KUNIT_EXPECT_EQ(test, req.vq_state.index, 1);
	state.index = 1;
	state.split.avail_index = 0xfffe;
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req, VDUSE_REQ_RESULT_OK,
				       &state), 0);
	KUNIT_EXPECT_EQ(test, call->state.split.avail_index, 0xfffe);

	d->dev->driver_features = BIT_ULL(VIRTIO_F_RING_PACKED);
	call = kt_ask(test, d, kt_get_vq_state, 0, VDUSE_GET_VQ_STATE, &req);
	KUNIT_EXPECT_EQ(test, req.vq_state.index, 0);
	state.packed.last_avail_counter = 3;
	state.packed.last_avail_idx = 0xffff;
	state.packed.last_used_counter = 2;
	state.packed.last_used_idx = 0x8001;
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req, VDUSE_REQ_RESULT_OK,
				       &state), 0);
	/* (bit-fields: copied out for the assertions) */
	val = call->state.packed.last_avail_counter;
	KUNIT_EXPECT_EQ(test, val, 1);
	val = call->state.packed.last_avail_idx;
	KUNIT_EXPECT_EQ(test, val, 0x7fff);
	val = call->state.packed.last_used_counter;
	KUNIT_EXPECT_EQ(test, val, 0);
	val = call->state.packed.last_used_idx;
	KUNIT_EXPECT_EQ(test, val, 1);

	/* A refused query is an error; an unknown queue never asks. */
	call = kt_ask(test, d, kt_get_vq_state, 0, VDUSE_GET_VQ_STATE, &req);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req,
				       VDUSE_REQ_RESULT_FAILED, NULL), -EIO);
	call = kt_start(test, d->vdpa, kt_get_vq_state, 2);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EINVAL);
	KUNIT_EXPECT_FALSE(test, vduse_msg_pending(d->dev));
}

/* UPDATE_IOTLB after set_map: range format by API version, asid in v1. */
static void vduse_msg_test_update_iotlb(struct kunit *test)
{
	struct kt_daemon *d0 = kt_daemon(test, 0, 0, 0);
	struct kt_daemon *d1 = kt_daemon(test, 1, 2, 2);
	struct vduse_dev_request req;
	struct kt_call *call;

	d0->dev->bounce_size = VDUSE_MIN_BOUNCE_SIZE;
	d1->dev->bounce_size = VDUSE_MIN_BOUNCE_SIZE;
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(d0->dev));
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(d1->dev));

	call = kt_ask(test, d0, kt_set_map, 0, VDUSE_UPDATE_IOTLB, &req);
	KUNIT_EXPECT_EQ(test, req.iova.start, 0);
	KUNIT_EXPECT_EQ(test, req.iova.last, ULLONG_MAX);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d0, call, &req,
				       VDUSE_REQ_RESULT_OK, NULL), 0);

	call = kt_ask(test, d1, kt_set_map, 1, VDUSE_UPDATE_IOTLB, &req);
	KUNIT_EXPECT_EQ(test, req.iova_v2.start, 0);
	KUNIT_EXPECT_EQ(test, req.iova_v2.last, ULLONG_MAX);
	KUNIT_EXPECT_EQ(test, req.iova_v2.asid, 1);
	KUNIT_EXPECT_EQ(test, req.iova_v2.padding, 0);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d1, call, &req,
				       VDUSE_REQ_RESULT_FAILED, NULL), -EIO);

	call = kt_start(test, d1->vdpa, kt_set_map, 2);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EINVAL);
}

/* SET_VQ_GROUP_ASID: only in v1; the group moves once the daemon agrees. */
static void vduse_msg_test_group_asid(struct kunit *test)
{
	struct kt_daemon *d0 = kt_daemon(test, 0, 0, 0);
	struct kt_daemon *d1 = kt_daemon(test, 1, 2, 2);
	struct vduse_dev_request req;
	struct kt_call *call;

	/* Version 0 has one group and one space: nothing to ask. */
	KUNIT_EXPECT_EQ(test, vduse_vdpa_set_group_asid(d0->vdpa, 0, 0), 0);
	KUNIT_EXPECT_EQ(test, vduse_vdpa_set_group_asid(d0->vdpa, 1, 0),
			-EINVAL);
	KUNIT_EXPECT_FALSE(test, vduse_msg_pending(d0->dev));
	KUNIT_EXPECT_EQ(test, vduse_vdpa_set_group_asid(d1->vdpa, 2, 0),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, vduse_vdpa_set_group_asid(d1->vdpa, 0, 2),
			-EINVAL);

	call = kt_ask(test, d1, kt_set_group_asid, 1, VDUSE_SET_VQ_GROUP_ASID,
		      &req);
	KUNIT_EXPECT_EQ(test, req.vq_group_asid.group, 1);
	KUNIT_EXPECT_EQ(test, req.vq_group_asid.asid, 1);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d1, call, &req,
				       VDUSE_REQ_RESULT_FAILED, NULL), -EIO);
	KUNIT_EXPECT_EQ(test, d1->dev->groups[1].asid, 0);

	call = kt_ask(test, d1, kt_set_group_asid, 1, VDUSE_SET_VQ_GROUP_ASID,
		      &req);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d1, call, &req,
				       VDUSE_REQ_RESULT_OK, NULL), 0);
	KUNIT_EXPECT_EQ(test, d1->dev->groups[1].asid, 1);
	KUNIT_EXPECT_EQ(test, d1->dev->groups[0].asid, 0);
}

/* SET_VQ_READY and SUSPEND are sent only with their VDUSE features. */
static void vduse_msg_test_features(struct kunit *test)
{
	struct kt_daemon *plain = kt_daemon(test, 0, 0, 0);
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev_request req;
	struct kt_call *call;

	vduse_vdpa_set_vq_ready(plain->vdpa, 1, true);
	KUNIT_EXPECT_TRUE(test, vduse_vdpa_get_vq_ready(plain->vdpa, 1));
	KUNIT_EXPECT_FALSE(test, vduse_msg_pending(plain->dev));

	d->dev->vduse_features = VDUSE_SUPPORTED_FEATURES;
	call = kt_ask(test, d, kt_set_vq_ready, 1, VDUSE_SET_VQ_READY, &req);
	KUNIT_EXPECT_EQ(test, req.vq_ready.num, 1);
	KUNIT_EXPECT_EQ(test, req.vq_ready.ready, 1);
	/* The state changed before the daemon was asked. */
	KUNIT_EXPECT_TRUE(test, vduse_vdpa_get_vq_ready(d->vdpa, 1));
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req, VDUSE_REQ_RESULT_OK,
				       NULL), 0);

	call = kt_ask(test, d, kt_suspend, 0, VDUSE_SUSPEND, &req);
	KUNIT_EXPECT_FALSE(test, d->dev->suspended);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req, VDUSE_REQ_RESULT_OK,
				       NULL), 0);
	KUNIT_EXPECT_TRUE(test, d->dev->suspended);
}

/* Reset forgets the driver's setup, whatever the daemon answers. */
static void vduse_msg_test_reset(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev *dev = d->dev;
	struct vdpa_device *vdpa = d->vdpa;
	struct vdpa_vq_state st = { .split.avail_index = 9 };
	struct vduse_dev_request req;
	struct kt_call *call;
	u32 gen = vduse_vdpa_get_generation(vdpa);

	dev->status = VIRTIO_CONFIG_S_DRIVER_OK;
	dev->driver_features = KT_FEATURES;
	dev->suspended = true;
	vduse_vdpa_set_vq_num(vdpa, 0, 256);
	vduse_vdpa_set_vq_address(vdpa, 0, 0x1000, 0x2000, 0x3000);
	vduse_vdpa_set_vq_state(vdpa, 0, &st);
	vduse_vdpa_set_vq_ready(vdpa, 0, true);
	KUNIT_EXPECT_EQ(test, vduse_vdpa_get_vq_size(vdpa, 0), 256);

	call = kt_ask(test, d, kt_reset, 0, VDUSE_SET_STATUS, &req);
	KUNIT_EXPECT_EQ(test, req.s.status, 0);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req,
				       VDUSE_REQ_RESULT_FAILED, NULL), -EIO);

	KUNIT_EXPECT_EQ(test, vduse_vdpa_get_status(vdpa), 0);
	KUNIT_EXPECT_EQ(test, vduse_vdpa_get_driver_features(vdpa), 0);
	KUNIT_EXPECT_FALSE(test, dev->suspended);
	KUNIT_EXPECT_EQ(test, vduse_vdpa_get_generation(vdpa), gen + 1);
	KUNIT_EXPECT_FALSE(test, vduse_vdpa_get_vq_ready(vdpa, 0));
	KUNIT_EXPECT_EQ(test, dev->vqs[0]->num, 0);
	KUNIT_EXPECT_EQ(test, dev->vqs[0]->desc_addr, 0);
	KUNIT_EXPECT_EQ(test, dev->vqs[0]->state.split.avail_index, 0);
	KUNIT_EXPECT_FALSE(test, dev->broken);
}

/* vduse/stats: requests sent, failed replies, timeouts. */
static void vduse_msg_test_counters(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev_request req;
	struct vduse_msg_stats st;
	struct kt_call *call;

	vduse_dev_msg_stats(d->dev, &st);
	KUNIT_EXPECT_EQ(test, st.sent, 0);
	KUNIT_EXPECT_EQ(test, st.failed, 0);
	KUNIT_EXPECT_EQ(test, st.timeouts, 0);

	call = kt_ask(test, d, kt_send_status, 1, VDUSE_SET_STATUS, &req);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req,
				       VDUSE_REQ_RESULT_OK, NULL), 0);
	call = kt_ask(test, d, kt_send_status, 2, VDUSE_SET_STATUS, &req);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req,
				       VDUSE_REQ_RESULT_FAILED, NULL), -EIO);
	/* Any result other than OK is a failure. */
	call = kt_ask(test, d, kt_send_status, 3, VDUSE_SET_STATUS, &req);
	KUNIT_EXPECT_EQ(test, kt_reply(test, d, call, &req, 7, NULL), -EIO);
	/* A reply to no request counts nothing. */
	KUNIT_EXPECT_EQ(test, kt_answer(d, req.request_id,
					VDUSE_REQ_RESULT_FAILED, NULL),
			-ENOENT);
	vduse_dev_msg_stats(d->dev, &st);
	KUNIT_EXPECT_EQ(test, st.sent, 3);
	KUNIT_EXPECT_EQ(test, st.failed, 2);
	KUNIT_EXPECT_EQ(test, st.timeouts, 0);

	/* A timeout breaks the device: later requests are never sent. */
	d->dev->msg_timeout = 1;
	call = kt_start(test, d->vdpa, kt_send_status, 4);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);
	call = kt_start(test, d->vdpa, kt_send_status, 5);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);
	vduse_dev_msg_stats(d->dev, &st);
	KUNIT_EXPECT_EQ(test, st.sent, 4);
	KUNIT_EXPECT_EQ(test, st.failed, 2);
	KUNIT_EXPECT_EQ(test, st.timeouts, 1);
}

static irqreturn_t kt_irq_cb(void *data)
{
	atomic_inc(data);
	return IRQ_HANDLED;
}

/*
 * Kicks and interrupts are counted per queue, interrupts by the path
 * they took, and only when they go on to the daemon or the driver.
 */
static void vduse_msg_test_vq_counters(struct kunit *test)
{
	struct kt_daemon *d = kt_daemon(test, 0, 0, 0);
	struct vduse_dev *dev = d->dev;
	struct vduse_virtqueue *vq0 = dev->vqs[0];
	struct vdpa_callback cb = { .callback = kt_irq_cb };
	struct vduse_vq_stats st0 = {}, st1 = {}, sum;
	u32 __user *index;
	atomic_t *calls;

	calls = kunit_kzalloc(test, sizeof(*calls), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, calls);
	cb.private = calls;
	KUNIT_ASSERT_NOT_NULL(test, vduse_irq_wq);
	KUNIT_ASSERT_EQ(test, 0, kunit_attach_mm());
	index = (u32 __user *)kt_user_mem(test, PAGE_SIZE);
	KUNIT_ASSERT_EQ(test, put_user(0, index), 0);

	/* A queue that is not ready, or suspended, passes no kick on. */
	vduse_vdpa_kick_vq(d->vdpa, 0);
	vduse_vdpa_set_vq_ready(d->vdpa, 0, true);
	vduse_vdpa_set_vq_ready(d->vdpa, 1, true);
	vduse_vdpa_kick_vq(d->vdpa, 0);
	vduse_vdpa_kick_vq(d->vdpa, 1);
	vduse_vdpa_kick_vq(d->vdpa, 1);
	dev->suspended = true;
	vduse_vdpa_kick_vq(d->vdpa, 1);
	dev->suspended = false;
	/* No eventfd: kept for later, and counted. */
	KUNIT_EXPECT_TRUE(test, vq0->kicked);

	/* Before DRIVER_OK, and with no callback, nothing is injected. */
	KUNIT_EXPECT_EQ(test, vduse_vq_inject_irq(dev, index), -EINVAL);
	KUNIT_EXPECT_EQ(test, vduse_dev_ioctl_inject_config_irq(dev), -EINVAL);
	dev->status = VIRTIO_CONFIG_S_DRIVER_OK;
	KUNIT_EXPECT_EQ(test, vduse_vq_inject_irq(dev, index), 0);
	vduse_vdpa_set_vq_cb(d->vdpa, 0, &cb);
	/*
	 * Every CPU may take it and the driver kicked since the last
	 * injection: the callback runs in the ioctl.
	 */
	vduse_vdpa_kick_vq(d->vdpa, 0);
	KUNIT_EXPECT_EQ(test, vduse_vq_inject_irq(dev, index), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(calls), 1);
	/*
	 * No kick since (a deep queue's completion), which goes to a worker
	 * on another CPU; but only this CPU may take it, and a worker here
	 * would only add a context switch: the callback runs in the ioctl.
	 */
	migrate_disable();
	cpumask_copy(vq0->irq_affinity, cpumask_of(smp_processor_id()));
	KUNIT_EXPECT_EQ(test, vduse_vq_inject_irq(dev, index), 0);
	migrate_enable();
	KUNIT_EXPECT_EQ(test, atomic_read(calls), 2);
	/* No CPU may: the unbound workqueue runs it. */
	cpumask_clear(vq0->irq_affinity);
	vduse_vdpa_kick_vq(d->vdpa, 0);
	KUNIT_EXPECT_EQ(test, vduse_vq_inject_irq(dev, index), 0);
	flush_work(&vq0->inject_work);
	KUNIT_EXPECT_EQ(test, atomic_read(calls), 3);
	dev->suspended = true;
	KUNIT_EXPECT_EQ(test, vduse_vq_inject_irq(dev, index), 0);
	dev->suspended = false;
	KUNIT_EXPECT_EQ(test, atomic_read(calls), 3);
	KUNIT_EXPECT_EQ(test, vduse_dev_ioctl_inject_config_irq(dev), 0);
	flush_work(&dev->inject_work);

	vduse_vq_add_stats(vq0, &st0);
	vduse_vq_add_stats(dev->vqs[1], &st1);
	vduse_dev_vq_stats(dev, &sum);
	KUNIT_EXPECT_EQ(test, st0.kicks, 3);
	KUNIT_EXPECT_EQ(test, st1.kicks, 2);
	KUNIT_EXPECT_EQ(test, sum.kicks, 5);
	KUNIT_EXPECT_EQ(test, st0.irqs[VDUSE_IRQ_INLINE], 2);
	KUNIT_EXPECT_EQ(test, st0.irqs[VDUSE_IRQ_DEFERRED], 1);
	KUNIT_EXPECT_EQ(test, st0.irqs[VDUSE_IRQ_IRQFD], 0);
	KUNIT_EXPECT_EQ(test, st1.irqs[VDUSE_IRQ_INLINE], 0);
	KUNIT_EXPECT_EQ(test, sum.irqs[VDUSE_IRQ_INLINE], 2);
	KUNIT_EXPECT_EQ(test, sum.irqs[VDUSE_IRQ_DEFERRED], 1);
	KUNIT_EXPECT_EQ(test, atomic64_read(&dev->config_irqs), 1);
}

static struct kunit_case vduse_msg_cases[] = {
	KUNIT_CASE(vduse_msg_test_status),
	KUNIT_CASE(vduse_msg_test_ids),
	KUNIT_CASE(vduse_msg_test_read),
	KUNIT_CASE(vduse_msg_test_write),
	KUNIT_CASE(vduse_msg_test_timeout),
	KUNIT_CASE(vduse_msg_test_broken),
	KUNIT_CASE(vduse_msg_test_vq_state),
	KUNIT_CASE(vduse_msg_test_update_iotlb),
	KUNIT_CASE(vduse_msg_test_group_asid),
	KUNIT_CASE(vduse_msg_test_features),
	KUNIT_CASE(vduse_msg_test_reset),
	KUNIT_CASE(vduse_msg_test_counters),
	KUNIT_CASE(vduse_msg_test_vq_counters),
	{}
};

static struct kunit_suite vduse_msg_suite = {
	.name = "vduse_msg",
	.test_cases = vduse_msg_cases,
};

/* ==================================================================== */
/* Requests in flight                                                    */
/* ==================================================================== */

/*
 * The test plays both ends of a block device's split ring in coherent
 * memory: the driver (descriptor chains, the avail ring) and the daemon
 * (the used ring).  The module looks at the rings as it does around each
 * virtqueue callback and, once the daemon is gone, completes what is
 * left in flight.
 */

#define KT_RING_NUM	8
#define KT_RING_ALIGN	4096
#define KT_HDR_LEN	16
#define KT_DATA_LEN	512
/* What the device side of a status byte holds before anyone writes it. */
#define KT_STATUS_UNSET	0xee

/**
 * struct kt_ring - a block device and the split ring of its first queue
 * @dev: the device, with its domains
 * @vq: virtqueue 0, whose rings these are
 * @domain: address space 0
 * @vr: the rings, laid out as vring_init() does in one allocation
 * @mem: kernel address of that allocation
 * @iova: its IOVA
 * @size: its size
 * @avail_idx: the driver's next avail index
 */
struct kt_ring {
	struct vduse_dev *dev;
	struct vduse_virtqueue *vq;
	struct vduse_iova_domain *domain;
	struct vring vr;
	void *mem;
	dma_addr_t iova;
	size_t size;
	u16 avail_idx;
};

static void kt_ring_free(void *data)
{
	struct kt_ring *r = data;

	spin_lock_irq(&r->vq->irq_lock);
	vduse_vq_track_stop(r->vq);
	spin_unlock_irq(&r->vq->irq_lock);
	vduse_domain_free_coherent(r->domain, r->size, r->mem, r->iova);
}

/*
 * A block device whose queue 0 has a split ring of KT_RING_NUM entries in
 * coherent memory, negotiated without RING_PACKED; not followed yet.
 */
static struct kt_ring *kt_ring(struct kunit *test)
{
	struct kt_ring *r = kunit_kzalloc(test, sizeof(*r), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, r);
	r->dev = kt_dev(test, 0, 0, 0);
	r->vq = r->dev->vqs[0];
	r->dev->bounce_size = VDUSE_MIN_BOUNCE_SIZE;
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(r->dev));
	r->domain = r->dev->domains[0];
	r->size = vring_size(KT_RING_NUM, KT_RING_ALIGN);
	r->mem = vduse_domain_alloc_coherent(r->domain, r->size, &r->iova,
					     GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r->mem);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, kt_ring_free,
							   r));
	vring_init(&r->vr, KT_RING_NUM, r->mem, KT_RING_ALIGN);
	r->vq->num = KT_RING_NUM;
	r->vq->desc_addr = r->iova;
	r->vq->driver_addr = r->iova + ((void *)r->vr.avail - r->mem);
	r->vq->device_addr = r->iova + ((void *)r->vr.used - r->mem);
	r->dev->driver_features = KT_FEATURES;
	return r;
}

/* Start following the queue, as set_vq_ready does; is it followed? */
static bool kt_track_start(struct kt_ring *r)
{
	mutex_lock(&r->dev->lock);
	vduse_vq_track_start(r->vq);
	mutex_unlock(&r->dev->lock);
	return r->vq->track.inflight;
}

/* vduse_vq_protect() as set_vq_ready does: the range it protected. */
static u64 kt_protect(struct kt_ring *r)
{
	mutex_lock(&r->dev->lock);
	vduse_vq_protect(r->vq);
	mutex_unlock(&r->dev->lock);
	return r->vq->ro_size;
}

static void kt_unprotect(struct kt_ring *r)
{
	mutex_lock(&r->dev->lock);
	vduse_vq_unprotect(r->vq);
	mutex_unlock(&r->dev->lock);
}

/*
 * An enabled split ring's descriptor table is made read-only for the
 * daemon: the pages of the table, not one the used ring shares; none for
 * a packed ring; and disabling the queue gives them back.
 */
static void vduse_track_test_protect(struct kunit *test)
{
	struct kt_ring *r = kt_ring(test);
	u64 used = r->vq->device_addr;

	/* KT_RING_ALIGN puts the used ring on the next page. */
	KUNIT_EXPECT_EQ(test, kt_protect(r), PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, r->vq->ro_iova, r->iova);
	KUNIT_EXPECT_EQ(test, kt_protect(r), PAGE_SIZE);	/* once */
	kt_unprotect(r);
	KUNIT_EXPECT_EQ(test, r->vq->ro_size, 0);

	/* A used ring in the table's page: that page stays writable. */
	r->vq->device_addr = r->iova + 2048;
	KUNIT_EXPECT_EQ(test, kt_protect(r), 0);
	r->vq->device_addr = used;

	/* Descriptors over two pages, the used ring in the second. */
	r->vq->num = PAGE_SIZE / 16 * 2;
	r->vq->device_addr = r->iova + PAGE_SIZE + 512;
	KUNIT_EXPECT_EQ(test, kt_protect(r), PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, r->vq->ro_iova, r->iova);
	kt_unprotect(r);
	r->vq->num = KT_RING_NUM;
	r->vq->device_addr = used;

	/* A table that wraps around the IOVA space is left alone. */
	r->vq->desc_addr = U64_MAX - 64;
	KUNIT_EXPECT_EQ(test, kt_protect(r), 0);
	r->vq->desc_addr = r->iova;

	r->dev->driver_features |= BIT_ULL(VIRTIO_F_RING_PACKED);
	KUNIT_EXPECT_EQ(test, kt_protect(r), 0);
}

/* The module's look at the rings, as around a callback. */
static void kt_track_update(struct kt_ring *r)
{
	spin_lock_irq(&r->vq->irq_lock);
	vduse_vq_track_update(r->vq);
	spin_unlock_irq(&r->vq->irq_lock);
}

static unsigned int kt_fail_inflight(struct kt_ring *r)
{
	unsigned int failed;

	spin_lock_irq(&r->vq->irq_lock);
	failed = vduse_vq_fail_inflight(r->vq);
	spin_unlock_irq(&r->vq->irq_lock);
	return failed;
}

static bool kt_tracked(struct kt_ring *r)
{
	return r->vq->track.inflight;
}

static int kt_inflight(struct kt_ring *r, u16 head)
{
	return r->vq->track.inflight[head];
}

/* The driver makes @head available. */
static void kt_avail(struct kt_ring *r, u16 head)
{
	r->vr.avail->ring[r->avail_idx % KT_RING_NUM] =
		__cpu_to_virtio16(true, head);
	smp_wmb();	/* the entry before the index */
	r->vr.avail->idx = __cpu_to_virtio16(true, ++r->avail_idx);
}

static u16 kt_used_idx(struct kt_ring *r)
{
	return __virtio16_to_cpu(true, READ_ONCE(r->vr.used->idx));
}

static u32 kt_used_id(struct kt_ring *r, u16 idx)
{
	return __virtio32_to_cpu(true, r->vr.used->ring[idx % KT_RING_NUM].id);
}

static u32 kt_used_len(struct kt_ring *r, u16 idx)
{
	return __virtio32_to_cpu(true, r->vr.used->ring[idx % KT_RING_NUM].len);
}

/* The daemon completes @id. */
static void kt_use(struct kt_ring *r, u32 id)
{
	u16 idx = kt_used_idx(r);

	r->vr.used->ring[idx % KT_RING_NUM].id = __cpu_to_virtio32(true, id);
	r->vr.used->ring[idx % KT_RING_NUM].len = __cpu_to_virtio32(true, 1);
	smp_wmb();	/* the entry before the index */
	r->vr.used->idx = __cpu_to_virtio16(true, idx + 1);
}

/* Both indices at @idx, as a ring that has been in use a while. */
static void kt_ring_at(struct kt_ring *r, u16 idx)
{
	r->avail_idx = idx;
	r->vr.avail->idx = __cpu_to_virtio16(true, idx);
	r->vr.used->idx = __cpu_to_virtio16(true, idx);
}

static void kt_desc(struct vring_desc *d, u64 addr, u32 len, u16 flags,
		    u16 next)
{
	d->addr = __cpu_to_virtio64(true, addr);
	d->len = __cpu_to_virtio32(true, len);
	d->flags = __cpu_to_virtio16(true, flags);
	d->next = __cpu_to_virtio16(true, next);
}

/**
 * struct kt_req - the buffers of one virtio-blk request
 * @hdr: out header, mapped DMA_TO_DEVICE
 * @data: data of a write, mapped DMA_TO_DEVICE
 * @status: status byte, mapped DMA_FROM_DEVICE; the device side holds
 *	KT_STATUS_UNSET until written
 * @table: indirect descriptor table, mapped DMA_TO_DEVICE, or NULL
 * @table_len: its size
 * @hdr_iova: IOVA of @hdr
 * @data_iova: IOVA of @data
 * @status_iova: IOVA of @status
 * @table_iova: IOVA of @table
 */
struct kt_req {
	u8 *hdr;
	u8 *data;
	u8 *status;
	struct vring_desc *table;
	size_t table_len;
	dma_addr_t hdr_iova;
	dma_addr_t data_iova;
	dma_addr_t status_iova;
	dma_addr_t table_iova;
};

static dma_addr_t kt_ring_map(struct kunit *test, struct kt_ring *r,
			      void *buf, size_t len,
			      enum dma_data_direction dir)
{
	dma_addr_t iova = vduse_domain_map_page(r->domain, virt_to_page(buf),
						offset_in_page(buf), len, dir,
						0);

	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	return iova;
}

/* Map the buffers of a request as virtio_blk's DMA does. */
static void kt_req_map(struct kunit *test, struct kt_ring *r,
		       struct kt_req *q)
{
	u8 unset = KT_STATUS_UNSET;

	q->hdr = kt_buf(test, 0, KT_HDR_LEN, 0x11);
	q->data = kt_buf(test, 64, KT_DATA_LEN, 0x22);
	q->status = kt_buf(test, 100, 1, 0x33);
	q->hdr_iova = kt_ring_map(test, r, q->hdr, KT_HDR_LEN, DMA_TO_DEVICE);
	q->data_iova = kt_ring_map(test, r, q->data, KT_DATA_LEN,
				   DMA_TO_DEVICE);
	q->status_iova = kt_ring_map(test, r, q->status, 1, DMA_FROM_DEVICE);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_rw(r->domain, q->status_iova,
						 &unset, 1, true));
}

/* An indirect table of @n descriptors, filled in by the caller. */
static struct vring_desc *kt_req_table(struct kunit *test, struct kt_req *q,
				       unsigned int n)
{
	q->table_len = n * sizeof(*q->table);
	q->table = (struct vring_desc *)kt_buf(test, 0, q->table_len, 0);
	return q->table;
}

/* Hand the filled-in indirect table to the device. */
static void kt_req_map_table(struct kunit *test, struct kt_ring *r,
			     struct kt_req *q)
{
	q->table_iova = kt_ring_map(test, r, q->table, q->table_len,
				    DMA_TO_DEVICE);
}

/* The driver's unmap; returns the status byte the driver then sees. */
static u8 kt_req_unmap(struct kt_ring *r, struct kt_req *q)
{
	vduse_domain_unmap_page(r->domain, q->hdr_iova, KT_HDR_LEN,
				DMA_TO_DEVICE, 0);
	vduse_domain_unmap_page(r->domain, q->data_iova, KT_DATA_LEN,
				DMA_TO_DEVICE, 0);
	vduse_domain_unmap_page(r->domain, q->status_iova, 1,
				DMA_FROM_DEVICE, 0);
	if (q->table)
		vduse_domain_unmap_page(r->domain, q->table_iova, q->table_len,
					DMA_TO_DEVICE, 0);
	return *q->status;
}

/* Header, data and status at descriptors @i, @i + 1 and @i + 2. */
static void kt_chain3(struct vring_desc *d, unsigned int i, struct kt_req *q)
{
	kt_desc(&d[i], q->hdr_iova, KT_HDR_LEN, VRING_DESC_F_NEXT, i + 1);
	kt_desc(&d[i + 1], q->data_iova, KT_DATA_LEN, VRING_DESC_F_NEXT, i + 2);
	kt_desc(&d[i + 2], q->status_iova, 1, VRING_DESC_F_WRITE, 0);
}

/*
 * Heads go in flight when made available and leave it when used,
 * counted over both indices wrapping around, in any order.
 */
static void vduse_track_test_count(struct kunit *test)
{
	struct kt_ring *r = kt_ring(test);
	static const int after_avail[KT_RING_NUM] = { 1, 0, 0, 1, 0, 1, 1, 0 };
	u16 i;

	kt_ring_at(r, 0xfffd);
	KUNIT_ASSERT_TRUE(test, kt_track_start(r));
	KUNIT_EXPECT_EQ(test, r->vq->track.avail_idx, 0xfffd);
	KUNIT_EXPECT_EQ(test, r->vq->track.used_idx, 0xfffd);

	/* Chains do not matter for counting, only heads. */
	kt_avail(r, 0);
	kt_avail(r, 3);
	kt_avail(r, 5);
	kt_avail(r, 6);
	/* Nothing counted until the module looks. */
	for (i = 0; i < KT_RING_NUM; i++)
		KUNIT_EXPECT_EQ(test, kt_inflight(r, i), 0);
	kt_track_update(r);
	for (i = 0; i < KT_RING_NUM; i++)
		KUNIT_EXPECT_EQ_MSG(test, kt_inflight(r, i), after_avail[i],
				    "head %u", i);

	/* Out of order. */
	kt_use(r, 5);
	kt_use(r, 0);
	kt_track_update(r);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 5), 0);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 0), 0);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 3), 1);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 6), 1);

	/*
	 * Between two looks head 3 is used, reaped by the callback and made
	 * available again: still in flight.
	 */
	kt_use(r, 3);
	kt_avail(r, 3);
	kt_track_update(r);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 3), 1);
	/* And the other way round: made available and used in between. */
	kt_avail(r, 1);
	kt_use(r, 1);
	kt_track_update(r);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 1), 0);

	/* A used id out of range is ignored. */
	kt_use(r, KT_RING_NUM);
	kt_use(r, U32_MAX);
	kt_track_update(r);
	KUNIT_EXPECT_TRUE(test, kt_tracked(r));
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 3), 1);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 6), 1);

	kt_use(r, 3);
	kt_use(r, 6);
	kt_track_update(r);
	for (i = 0; i < KT_RING_NUM; i++)
		KUNIT_EXPECT_EQ_MSG(test, kt_inflight(r, i), 0, "head %u", i);
	KUNIT_EXPECT_EQ(test, r->vq->track.avail_idx, r->avail_idx);
	KUNIT_EXPECT_EQ(test, r->vq->track.used_idx, kt_used_idx(r));
	KUNIT_EXPECT_LT(test, r->avail_idx, 0xfffd);
}

/* New entries since the last look; more than the ring holds stops it. */
static const struct {
	const char *desc;
	unsigned int avail;
	unsigned int used;
	bool tracked;
} kt_overrun_cases[] = {
	{ "a ring's worth made available", KT_RING_NUM, 0, true },
	{ "one more made available", KT_RING_NUM + 1, 0, false },
	{ "a ring's worth used", KT_RING_NUM, KT_RING_NUM, true },
	{ "one more used", KT_RING_NUM, KT_RING_NUM + 1, false },
};

KUNIT_ARRAY_PARAM_DESC(kt_overrun, kt_overrun_cases, desc);

static void vduse_track_test_overrun(struct kunit *test)
{
	typeof(kt_overrun_cases[0]) *p = test->param_value;
	struct kt_ring *r = kt_ring(test);
	unsigned int i;

	KUNIT_ASSERT_TRUE(test, kt_track_start(r));
	for (i = 0; i < p->avail; i++)
		kt_avail(r, i % KT_RING_NUM);
	kt_track_update(r);
	for (i = 0; i < p->used; i++)
		kt_use(r, i % KT_RING_NUM);
	kt_track_update(r);
	KUNIT_EXPECT_EQ(test, kt_tracked(r), p->tracked);
	if (p->tracked)
		return;
	/* Stopped for good: nothing to fail, and more looks are harmless. */
	WRITE_ONCE(r->dev->dead, true);
	KUNIT_EXPECT_EQ(test, kt_fail_inflight(r), 0);
	kt_avail(r, 0);
	kt_track_update(r);
	KUNIT_EXPECT_FALSE(test, kt_tracked(r));
}

enum kt_start_change {
	KT_START_KEEP,
	KT_START_NET,		/* a network device */
	KT_START_PACKED,	/* RING_PACKED negotiated */
	KT_START_NUM,		/* vq->num = value */
	KT_START_DESC_BOUNCE,	/* descriptor table in the bounce area */
	KT_START_USED_END,	/* used ring past the allocation's end */
	KT_START_AVAIL_OUT,	/* driver area outside any allocation */
};

static const struct {
	const char *desc;
	enum kt_start_change change;
	u32 value;
	bool tracked;
} kt_start_cases[] = {
	{ "block device, split ring in coherent memory", KT_START_KEEP, 0,
	  true },
	{ "network device", KT_START_NET, 0, false },
	{ "packed ring", KT_START_PACKED, 0, false },
	{ "ring size not a power of two", KT_START_NUM, 6, false },
	{ "ring size 0", KT_START_NUM, 0, false },
	{ "smaller ring", KT_START_NUM, 4, true },
	{ "descriptor table in the bounce area", KT_START_DESC_BOUNCE, 0,
	  false },
	{ "used ring past the end of its allocation", KT_START_USED_END, 0,
	  false },
	{ "driver area not allocated", KT_START_AVAIL_OUT, 0, false },
};

KUNIT_ARRAY_PARAM_DESC(kt_start, kt_start_cases, desc);

/* Only a block device's split ring in coherent memory is followed. */
static void vduse_track_test_start(struct kunit *test)
{
	typeof(kt_start_cases[0]) *p = test->param_value;
	struct kt_ring *r = kt_ring(test);
	u8 *buf = kt_buf(test, 0, PAGE_SIZE, 0);
	dma_addr_t iova = DMA_MAPPING_ERROR;

	switch (p->change) {
	case KT_START_KEEP:
		break;
	case KT_START_NET:
		r->dev->device_id = VIRTIO_ID_NET;
		break;
	case KT_START_PACKED:
		r->dev->driver_features |= BIT_ULL(VIRTIO_F_RING_PACKED);
		break;
	case KT_START_NUM:
		r->vq->num = p->value;
		break;
	case KT_START_DESC_BOUNCE:
		iova = kt_ring_map(test, r, buf, PAGE_SIZE, DMA_TO_DEVICE);
		r->vq->desc_addr = iova;
		break;
	case KT_START_USED_END:
		r->vq->device_addr = r->iova + PAGE_ALIGN(r->size) -
				     sizeof(struct vring_used_elem);
		break;
	case KT_START_AVAIL_OUT:
		r->vq->driver_addr = r->iova + PAGE_ALIGN(r->size);
		break;
	}
	KUNIT_EXPECT_EQ(test, kt_track_start(r), p->tracked);
	if (p->tracked)
		KUNIT_EXPECT_EQ(test, r->vq->track.num, r->vq->num);
	if (iova != DMA_MAPPING_ERROR)
		vduse_domain_unmap_page(r->domain, iova, PAGE_SIZE,
					DMA_TO_DEVICE, 0);
}

/*
 * set_vq_ready follows the queue; stopping forgets everything, and
 * starting again begins at the indices as they are.
 */
static void vduse_track_test_restart(struct kunit *test)
{
	struct kt_ring *r = kt_ring(test);
	struct vdpa_device *vdpa = kt_vdpa(test, r->dev);

	vduse_vdpa_set_vq_ready(vdpa, 0, true);
	KUNIT_ASSERT_TRUE(test, kt_tracked(r));
	kt_avail(r, 2);
	kt_track_update(r);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 2), 1);
	vduse_vdpa_set_vq_ready(vdpa, 0, false);
	KUNIT_EXPECT_FALSE(test, kt_tracked(r));
	kt_avail(r, 4);
	vduse_vdpa_set_vq_ready(vdpa, 0, true);
	KUNIT_ASSERT_TRUE(test, kt_tracked(r));
	KUNIT_EXPECT_EQ(test, r->vq->track.avail_idx, 2);
	kt_track_update(r);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 2), 0);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 4), 0);
}

/*
 * The daemon is gone: exactly the heads in flight are completed, each
 * with VIRTIO_BLK_S_IOERR in its status byte and a used entry of length
 * 1; direct and indirect chains alike.
 */
static void vduse_track_test_fail(struct kunit *test)
{
	struct kt_ring *r = kt_ring(test);
	struct vring_desc *d = r->vr.desc, *table;
	struct kt_req q[KT_RING_NUM] = {};
	static const u16 heads[] = { 0, 3, 5, 6, 7 };
	static const bool failed[KT_RING_NUM] = { [0] = true, [3] = true,
						  [5] = true };
	unsigned int i, seen = 0;
	u16 used_idx;

	for (i = 0; i < ARRAY_SIZE(heads); i++)
		kt_req_map(test, r, &q[heads[i]]);
	/* 0: header, data, status. */
	kt_chain3(d, 0, &q[0]);
	/* 3: header and status. */
	kt_desc(&d[3], q[3].hdr_iova, KT_HDR_LEN, VRING_DESC_F_NEXT, 4);
	kt_desc(&d[4], q[3].status_iova, 1, VRING_DESC_F_WRITE, 0);
	/* 5: an indirect table of three. */
	table = kt_req_table(test, &q[5], 3);
	kt_chain3(table, 0, &q[5]);
	kt_req_map_table(test, r, &q[5]);
	kt_desc(&d[5], q[5].table_iova, q[5].table_len, VRING_DESC_F_INDIRECT,
		0);
	/* 6 and 7: the status byte alone. */
	kt_desc(&d[6], q[6].status_iova, 1, VRING_DESC_F_WRITE, 0);
	kt_desc(&d[7], q[7].status_iova, 1, VRING_DESC_F_WRITE, 0);

	KUNIT_ASSERT_TRUE(test, kt_track_start(r));
	kt_avail(r, 0);
	kt_avail(r, 3);
	kt_avail(r, 5);
	kt_avail(r, 6);
	kt_track_update(r);
	/* The daemon completes 6 (its status byte untouched); 7 never went. */
	kt_use(r, 6);
	kt_track_update(r);
	used_idx = kt_used_idx(r);
	KUNIT_ASSERT_EQ(test, used_idx, 1);

	WRITE_ONCE(r->dev->dead, true);
	KUNIT_EXPECT_EQ(test, kt_fail_inflight(r), 3);
	KUNIT_EXPECT_EQ(test, kt_used_idx(r), used_idx + 3);
	for (i = used_idx; i != kt_used_idx(r); i++) {
		u32 id = kt_used_id(r, i);

		KUNIT_EXPECT_LT(test, id, KT_RING_NUM);
		if (id >= KT_RING_NUM)
			continue;
		KUNIT_EXPECT_TRUE_MSG(test, failed[id], "head %u", id);
		KUNIT_EXPECT_FALSE_MSG(test, seen & BIT(id), "head %u twice",
				       id);
		KUNIT_EXPECT_EQ(test, kt_used_len(r, i), 1);
		seen |= BIT(id);
	}
	KUNIT_EXPECT_EQ(test, seen, BIT(0) | BIT(3) | BIT(5));
	/* The daemon's own entry stays. */
	KUNIT_EXPECT_EQ(test, kt_used_id(r, 0), 6);
	for (i = 0; i < KT_RING_NUM; i++)
		KUNIT_EXPECT_EQ_MSG(test, kt_inflight(r, i), 0, "head %u", i);

	/* Nothing is left to fail. */
	KUNIT_EXPECT_EQ(test, kt_fail_inflight(r), 0);
	KUNIT_EXPECT_EQ(test, kt_used_idx(r), used_idx + 3);
	/* The module's next look does not count its own entries again. */
	kt_track_update(r);
	KUNIT_EXPECT_TRUE(test, kt_tracked(r));
	for (i = 0; i < KT_RING_NUM; i++)
		KUNIT_EXPECT_EQ_MSG(test, kt_inflight(r, i), 0, "head %u", i);

	/* What the driver sees after its unmap. */
	for (i = 0; i < ARRAY_SIZE(heads); i++) {
		u16 h = heads[i];

		KUNIT_EXPECT_EQ_MSG(test, kt_req_unmap(r, &q[h]),
				    failed[h] ? VIRTIO_BLK_S_IOERR :
				    KT_STATUS_UNSET, "head %u", h);
		KUNIT_EXPECT_EQ(test, q[h].status[-1], KT_NEIGHBOUR);
		KUNIT_EXPECT_EQ(test, q[h].status[1], KT_NEIGHBOUR);
		KUNIT_EXPECT_TRUE(test, kt_filled(q[h].hdr, 0x11, KT_HDR_LEN));
		KUNIT_EXPECT_TRUE(test, kt_filled(q[h].data, 0x22,
						  KT_DATA_LEN));
	}
}

/* Chains put at head 1 for the kernel to fail. */
enum kt_chain {
	KT_CHAIN_DIRECT,	/* header, data, status */
	KT_CHAIN_INDIRECT,	/* the same in an indirect table */
	KT_CHAIN_STATUS_LONG,	/* data and status in one writable buffer */
	KT_CHAIN_NEXT_RANGE,	/* next beyond the ring */
	KT_CHAIN_LOOP,		/* next leads back */
	KT_CHAIN_SELF,		/* next is the descriptor itself */
	KT_CHAIN_READ_ONLY,	/* last descriptor not device-writable */
	KT_CHAIN_ZERO_LEN,	/* last descriptor of length 0 */
	KT_CHAIN_UNBACKED,	/* status IOVA with no kernel backing */
	KT_CHAIN_IND_ODD_LEN,	/* table length not a multiple of 16 */
	KT_CHAIN_IND_ZERO_LEN,	/* empty table */
	KT_CHAIN_IND_NESTED,	/* indirect in an indirect table */
	KT_CHAIN_IND_NEXT_RANGE, /* next beyond the table */
	KT_CHAIN_IND_LOOP,	/* a loop inside the table */
	KT_CHAIN_IND_READ_ONLY,	/* the table's last not device-writable */
	KT_CHAIN_IND_UNBACKED,	/* table IOVA with no kernel backing */
	KT_CHAIN_IND_AT_ZERO,	/* table at IOVA 0, never mapped */
};

static const struct {
	const char *desc;
	enum kt_chain chain;
	bool fails;
} kt_chain_cases[] = {
	{ "header, data and status", KT_CHAIN_DIRECT, true },
	{ "indirect table", KT_CHAIN_INDIRECT, true },
	{ "status at the end of a longer buffer", KT_CHAIN_STATUS_LONG, true },
	{ "next out of range", KT_CHAIN_NEXT_RANGE, false },
	{ "loop", KT_CHAIN_LOOP, false },
	{ "descriptor chained to itself", KT_CHAIN_SELF, false },
	{ "last descriptor read-only", KT_CHAIN_READ_ONLY, false },
	{ "last descriptor empty", KT_CHAIN_ZERO_LEN, false },
	{ "status IOVA not backed", KT_CHAIN_UNBACKED, false },
	{ "indirect table of 24 bytes", KT_CHAIN_IND_ODD_LEN, false },
	{ "indirect table of 0 bytes", KT_CHAIN_IND_ZERO_LEN, false },
	{ "nested indirect table", KT_CHAIN_IND_NESTED, false },
	{ "next out of the indirect table", KT_CHAIN_IND_NEXT_RANGE, false },
	{ "loop in the indirect table", KT_CHAIN_IND_LOOP, false },
	{ "indirect table ending read-only", KT_CHAIN_IND_READ_ONLY, false },
	{ "indirect table not backed", KT_CHAIN_IND_UNBACKED, false },
	{ "indirect table at IOVA 0", KT_CHAIN_IND_AT_ZERO, false },
};

KUNIT_ARRAY_PARAM_DESC(kt_chain, kt_chain_cases, desc);

/* Build @chain at descriptor 1 with the buffers of @q. */
static void kt_chain_build(struct kunit *test, struct kt_ring *r,
			   enum kt_chain chain, struct kt_req *q)
{
	struct vring_desc *d = r->vr.desc, *t;
	u64 unbacked = r->iova + PAGE_ALIGN(r->size);
	u32 ind_len = 3 * sizeof(*t);

	switch (chain) {
	case KT_CHAIN_DIRECT:
		kt_chain3(d, 1, q);
		return;
	case KT_CHAIN_STATUS_LONG:
		kt_desc(&d[1], q->hdr_iova, KT_HDR_LEN, VRING_DESC_F_NEXT, 2);
		/* The status byte is the buffer's last: 'data' + status. */
		kt_desc(&d[2], q->status_iova - KT_DATA_LEN, KT_DATA_LEN + 1,
			VRING_DESC_F_WRITE, 0);
		return;
	case KT_CHAIN_NEXT_RANGE:
		kt_desc(&d[1], q->hdr_iova, KT_HDR_LEN, VRING_DESC_F_NEXT,
			KT_RING_NUM);
		return;
	case KT_CHAIN_LOOP:
		kt_desc(&d[1], q->hdr_iova, KT_HDR_LEN, VRING_DESC_F_NEXT, 2);
		kt_desc(&d[2], q->data_iova, KT_DATA_LEN, VRING_DESC_F_NEXT, 3);
		kt_desc(&d[3], q->status_iova, 1,
			VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
		return;
	case KT_CHAIN_SELF:
		kt_desc(&d[1], q->status_iova, 1,
			VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
		return;
	case KT_CHAIN_READ_ONLY:
		kt_desc(&d[1], q->hdr_iova, KT_HDR_LEN, VRING_DESC_F_NEXT, 2);
		kt_desc(&d[2], q->status_iova, 1, 0, 0);
		return;
	case KT_CHAIN_ZERO_LEN:
		kt_desc(&d[1], q->hdr_iova, KT_HDR_LEN, VRING_DESC_F_NEXT, 2);
		kt_desc(&d[2], q->status_iova + 1, 0, VRING_DESC_F_WRITE, 0);
		return;
	case KT_CHAIN_UNBACKED:
		kt_desc(&d[1], q->hdr_iova, KT_HDR_LEN, VRING_DESC_F_NEXT, 2);
		kt_desc(&d[2], unbacked, 1, VRING_DESC_F_WRITE, 0);
		return;
	case KT_CHAIN_IND_UNBACKED:
		kt_desc(&d[1], unbacked, ind_len, VRING_DESC_F_INDIRECT, 0);
		return;
	case KT_CHAIN_IND_AT_ZERO:
		/*
		 * Nothing is ever mapped at IOVA 0; if the walk took the
		 * table for the ring's, it would find head 0's valid chain.
		 */
		kt_desc(&d[1], 0, 64 * sizeof(*t), VRING_DESC_F_INDIRECT, 0);
		return;
	default:
		break;
	}

	/* The rest have an indirect table of three. */
	t = kt_req_table(test, q, 3);
	kt_chain3(t, 0, q);
	switch (chain) {
	case KT_CHAIN_IND_ODD_LEN:
		ind_len = 24;
		break;
	case KT_CHAIN_IND_ZERO_LEN:
		ind_len = 0;
		break;
	case KT_CHAIN_IND_NESTED:
		kt_desc(&t[0], q->hdr_iova, sizeof(*t), VRING_DESC_F_INDIRECT,
			0);
		break;
	case KT_CHAIN_IND_NEXT_RANGE:
		t[1].next = __cpu_to_virtio16(true, 3);
		break;
	case KT_CHAIN_IND_LOOP:
		t[2].flags |= __cpu_to_virtio16(true, VRING_DESC_F_NEXT);
		t[2].next = __cpu_to_virtio16(true, 0);
		break;
	case KT_CHAIN_IND_READ_ONLY:
		t[2].flags = 0;
		break;
	default:
		break;
	}
	kt_req_map_table(test, r, q);
	kt_desc(&d[1], q->table_iova, ind_len, VRING_DESC_F_INDIRECT, 0);
}

/*
 * Head 0 (the status byte alone) and head 1 (the case's chain) are in
 * flight: a chain the driver could not have built is left alone, and
 * stays in flight.
 */
static void vduse_track_test_chain(struct kunit *test)
{
	typeof(kt_chain_cases[0]) *p = test->param_value;
	struct kt_ring *r = kt_ring(test);
	struct kt_req q[2] = {};
	unsigned int failed = 1 + p->fails;

	kt_req_map(test, r, &q[0]);
	kt_req_map(test, r, &q[1]);
	kt_desc(&r->vr.desc[0], q[0].status_iova, 1, VRING_DESC_F_WRITE, 0);
	kt_chain_build(test, r, p->chain, &q[1]);
	KUNIT_ASSERT_TRUE(test, kt_track_start(r));
	kt_avail(r, 0);
	kt_avail(r, 1);
	kt_track_update(r);

	WRITE_ONCE(r->dev->dead, true);
	KUNIT_EXPECT_EQ(test, kt_fail_inflight(r), failed);
	KUNIT_EXPECT_EQ(test, kt_used_idx(r), failed);
	KUNIT_EXPECT_EQ(test, kt_used_id(r, 0), 0);
	KUNIT_EXPECT_EQ(test, kt_used_len(r, 0), 1);
	if (p->fails) {
		KUNIT_EXPECT_EQ(test, kt_used_id(r, 1), 1);
		KUNIT_EXPECT_EQ(test, kt_used_len(r, 1), 1);
	}
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 0), 0);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 1), !p->fails);
	/* A second try changes nothing. */
	KUNIT_EXPECT_EQ(test, kt_fail_inflight(r), 0);
	KUNIT_EXPECT_EQ(test, kt_used_idx(r), failed);

	KUNIT_EXPECT_EQ(test, kt_req_unmap(r, &q[0]), VIRTIO_BLK_S_IOERR);
	KUNIT_EXPECT_EQ(test, kt_req_unmap(r, &q[1]),
			p->fails ? VIRTIO_BLK_S_IOERR : KT_STATUS_UNSET);
	KUNIT_EXPECT_TRUE(test, kt_filled(q[1].hdr, 0x11, KT_HDR_LEN));
	KUNIT_EXPECT_TRUE(test, kt_filled(q[1].data, 0x22, KT_DATA_LEN));
}

/**
 * struct kt_cb - a virtqueue callback that counts and looks
 * @r: the ring
 * @calls: times called
 * @used_idx: used->idx at the last call
 * @resubmit: head that the call makes available again, or -1
 */
struct kt_cb {
	struct kt_ring *r;
	unsigned int calls;
	u16 used_idx;
	int resubmit;
};

static irqreturn_t kt_ring_cb(void *data)
{
	struct kt_cb *cb = data;

	cb->calls++;
	cb->used_idx = kt_used_idx(cb->r);
	if (cb->resubmit >= 0)
		kt_avail(cb->r, cb->resubmit);
	return IRQ_HANDLED;
}

/* An in-flight head 0 and a callback for the queue. */
static struct kt_cb *kt_ring_cb_setup(struct kunit *test, struct kt_ring *r,
				      struct kt_req *q)
{
	struct kt_cb *cb = kunit_kzalloc(test, sizeof(*cb), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, cb);
	cb->r = r;
	cb->resubmit = -1;
	kt_req_map(test, r, q);
	kt_desc(&r->vr.desc[0], q->status_iova, 1, VRING_DESC_F_WRITE, 0);
	KUNIT_ASSERT_TRUE(test, kt_track_start(r));
	spin_lock_irq(&r->vq->irq_lock);
	r->vq->cb.callback = kt_ring_cb;
	r->vq->cb.private = cb;
	spin_unlock_irq(&r->vq->irq_lock);
	kt_avail(r, 0);
	return cb;
}

static void kt_run_cb(struct kt_ring *r)
{
	spin_lock_irq(&r->vq->irq_lock);
	vduse_vq_run_cb(r->vq);
	spin_unlock_irq(&r->vq->irq_lock);
}

/*
 * The callback runs between two looks at the rings; on a dead device
 * the requests in flight are failed before it runs, so it reaps them.
 */
static void vduse_track_test_run_cb(struct kunit *test)
{
	struct kt_ring *r = kt_ring(test);
	struct kt_req q = {};
	struct kt_cb *cb = kt_ring_cb_setup(test, r, &q);

	kt_run_cb(r);
	KUNIT_EXPECT_EQ(test, cb->calls, 1);
	KUNIT_EXPECT_EQ(test, cb->used_idx, 0);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 0), 1);

	/* Completed, reaped and made available again by the callback. */
	kt_use(r, 0);
	cb->resubmit = 0;
	kt_run_cb(r);
	KUNIT_EXPECT_EQ(test, cb->calls, 2);
	KUNIT_EXPECT_EQ(test, cb->used_idx, 1);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 0), 1);
	KUNIT_EXPECT_EQ(test, r->vq->track.avail_idx, 2);
	cb->resubmit = -1;

	/* Alive: nothing is failed, however long it waits. */
	kt_run_cb(r);
	KUNIT_EXPECT_EQ(test, cb->calls, 3);
	KUNIT_EXPECT_EQ(test, kt_used_idx(r), 1);

	WRITE_ONCE(r->dev->dead, true);
	kt_run_cb(r);
	KUNIT_EXPECT_EQ(test, cb->calls, 4);
	KUNIT_EXPECT_EQ(test, cb->used_idx, 2);
	KUNIT_EXPECT_EQ(test, kt_used_id(r, 1), 0);
	KUNIT_EXPECT_EQ(test, kt_used_len(r, 1), 1);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 0), 0);

	/* Once only. */
	kt_run_cb(r);
	KUNIT_EXPECT_EQ(test, cb->calls, 5);
	KUNIT_EXPECT_EQ(test, kt_used_idx(r), 2);
	KUNIT_EXPECT_EQ(test, kt_req_unmap(r, &q), VIRTIO_BLK_S_IOERR);
}

/*
 * msg_timeout after the daemon closed the device node: dead, broken,
 * and the requests in flight failed through the virtqueue callback; not
 * if the daemon came back.
 */
static void vduse_track_test_dead_work(struct kunit *test)
{
	struct kt_ring *r = kt_ring(test);
	struct vduse_dev *dev = r->dev;
	struct kt_req q = {};
	struct kt_cb *cb = kt_ring_cb_setup(test, r, &q);
	u32 i;

	KUNIT_ASSERT_NOT_NULL(test, vduse_irq_wq);
	kt_track_update(r);
	WRITE_ONCE(r->vq->ready, true);

	/* Back in time. */
	WRITE_ONCE(dev->connected, true);
	vduse_dev_dead_work(&dev->dead_work.work);
	for (i = 0; i < dev->vq_num; i++)
		flush_work(&dev->vqs[i]->inject_work);
	KUNIT_EXPECT_FALSE(test, READ_ONCE(dev->dead));
	KUNIT_EXPECT_FALSE(test, dev->broken);
	KUNIT_EXPECT_EQ(test, cb->calls, 0);
	KUNIT_EXPECT_EQ(test, kt_used_idx(r), 0);

	WRITE_ONCE(dev->connected, false);
	vduse_dev_dead_work(&dev->dead_work.work);
	for (i = 0; i < dev->vq_num; i++)
		flush_work(&dev->vqs[i]->inject_work);
	KUNIT_EXPECT_TRUE(test, READ_ONCE(dev->dead));
	KUNIT_EXPECT_TRUE(test, dev->broken);
	KUNIT_EXPECT_EQ(test, cb->calls, 1);
	KUNIT_EXPECT_EQ(test, cb->used_idx, 1);
	KUNIT_EXPECT_EQ(test, kt_used_id(r, 0), 0);
	KUNIT_EXPECT_EQ(test, kt_inflight(r, 0), 0);
	KUNIT_EXPECT_EQ(test, kt_req_unmap(r, &q), VIRTIO_BLK_S_IOERR);
}

static struct kunit_case vduse_track_cases[] = {
	KUNIT_CASE(vduse_track_test_count),
	KUNIT_CASE_PARAM(vduse_track_test_overrun, kt_overrun_gen_params),
	KUNIT_CASE_PARAM(vduse_track_test_start, kt_start_gen_params),
	KUNIT_CASE(vduse_track_test_restart),
	KUNIT_CASE(vduse_track_test_protect),
	KUNIT_CASE(vduse_track_test_fail),
	KUNIT_CASE_PARAM(vduse_track_test_chain, kt_chain_gen_params),
	KUNIT_CASE(vduse_track_test_run_cb),
	KUNIT_CASE(vduse_track_test_dead_work),
	{}
};

static struct kunit_suite vduse_track_suite = {
	.name = "vduse_track",
	.test_cases = vduse_track_cases,
};

kunit_test_suites(&vduse_domain_suite, &vduse_config_suite, &vduse_msg_suite,
		  &vduse_track_suite);
