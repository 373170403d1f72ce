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
 *                  and the vdpa ops that talk to the daemon
 *
 * Run them with
 *   tools/testing/kunit/kunit.py run --kunitconfig=drivers/vdpa/vdpa_user
 */

#include <kunit/test.h>
#include <linux/anon_inodes.h>
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
 */
struct kt_domain {
	struct vduse_iova_domain *domain;
	unsigned long view;
};

static void kt_domain_destroy(void *data)
{
	struct kt_domain *kd = data;

	vduse_domain_destroy(kd->domain);
}

static struct kt_domain *kt_domain_create(struct kunit *test,
					  unsigned int iotlb_limit)
{
	struct kt_domain *kd = kunit_kzalloc(test, sizeof(*kd), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, kd);
	kd->domain = vduse_domain_create(KT_IOVA_LIMIT, KT_BOUNCE_SIZE,
					 iotlb_limit);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, kd->domain);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test,
							   kt_domain_destroy,
							   kd));
	return kd;
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
	addr = kunit_vm_mmap(test, region.file, 0, KT_IOVA_LIMIT + 1,
			     PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	fput(region.file);
	KUNIT_ASSERT_FALSE(test, !addr || IS_ERR_VALUE(addr));
	kd->view = addr;
}

/* What the daemon reads at @iova; fails the test if it cannot. */
static void kt_peek(struct kunit *test, struct kt_domain *kd, u64 iova,
		    void *buf, size_t len)
{
	KUNIT_ASSERT_NE(test, kd->view, 0);
	KUNIT_ASSERT_EQ(test, 0, copy_from_user(buf, (void __user *)(kd->view + iova),
						len));
}

/* The daemon writes @len bytes of @byte at @iova. */
static void kt_poke(struct kunit *test, struct kt_domain *kd, u64 iova,
		    int byte, size_t len)
{
	KUNIT_ASSERT_NE(test, kd->view, 0);
	KUNIT_ASSERT_EQ(test, 0, clear_user((void __user *)(kd->view + iova),
					    len));
	if (byte) {
		void *buf = kunit_kmalloc(test, len, GFP_KERNEL);

		KUNIT_ASSERT_NOT_NULL(test, buf);
		memset(buf, byte, len);
		KUNIT_ASSERT_EQ(test, 0, copy_to_user((void __user *)(kd->view + iova),
						      buf, len));
		kunit_kfree(test, buf);
	}
}

/* Does the daemon see @len bytes of @byte at @iova? */
static bool kt_sees(struct kunit *test, struct kt_domain *kd, u64 iova,
		    int byte, size_t len)
{
	u8 *buf = kunit_kmalloc(test, len, GFP_KERNEL);
	bool same;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	kt_peek(test, kd, iova, buf, len);
	same = !memchr_inv(buf, byte, len);
	kunit_kfree(test, buf);
	return same;
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

static bool kt_filled(const void *buf, int byte, size_t len)
{
	return !memchr_inv(buf, byte, len);
}

static void vduse_domain_test_create_checks(struct kunit *test)
{
	struct vduse_iova_domain *d;

	KUNIT_EXPECT_EQ(test, PTR_ERR(vduse_domain_create(KT_IOVA_LIMIT, 0, 8)),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(vduse_domain_create(KT_IOVA_LIMIT,
							  PAGE_SIZE + 1, 8)),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(vduse_domain_create(KT_IOVA_LIMIT,
							  KT_BOUNCE_SIZE, 0)),
			-EINVAL);
	/* The bounce area must leave room below the IOVA limit. */
	KUNIT_EXPECT_EQ(test, PTR_ERR(vduse_domain_create(KT_BOUNCE_SIZE - 1,
							  KT_BOUNCE_SIZE, 8)),
			-EINVAL);

	d = vduse_domain_create(KT_BOUNCE_SIZE, KT_BOUNCE_SIZE, 8);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, d);
	KUNIT_EXPECT_EQ(test, vduse_domain_bounce_size(d), KT_BOUNCE_SIZE);
	vduse_domain_destroy(d);
}

/* The bounce area has an IOTLB entry once used, and loses it on reset. */
static void vduse_domain_test_bounce_entry(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	struct vduse_domain_region region;
	u8 *buf = kt_buf(test, 0, 64, 0x11);
	dma_addr_t iova;

	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, 0,
						       KT_IOVA_LIMIT, &region),
			-EINVAL);

	iova = kt_map(kd, buf, 64, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, iova,
							  iova, &region));
	KUNIT_EXPECT_EQ(test, region.start, 0);
	KUNIT_EXPECT_EQ(test, region.last, KT_BOUNCE_SIZE - 1);
	KUNIT_EXPECT_EQ(test, region.offset, 0);
	KUNIT_EXPECT_EQ(test, region.perm, VHOST_MAP_RW);
	KUNIT_EXPECT_TRUE(test, region.bounce);
	fput(region.file);
	kt_unmap(kd, iova, 64, DMA_TO_DEVICE, 0);

	/* Unmapping keeps the entry; a device reset drops it. */
	KUNIT_EXPECT_EQ(test, 0, vduse_domain_find_region(kd->domain, 0, 0,
							  &region));
	fput(region.file);
	vduse_domain_reset_bounce_map(kd->domain);
	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, 0, 0,
						       &region), -EINVAL);

	/* The next map brings it back. */
	iova = kt_map(kd, buf, 64, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, 0, 0,
							  &region));
	KUNIT_EXPECT_TRUE(test, region.bounce);
	fput(region.file);
	kt_unmap(kd, iova, 64, DMA_TO_DEVICE, 0);
}

/* DMA_TO_DEVICE: copied in at map time, never copied back. */
static void vduse_domain_test_map_to_device(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, 100, 300, 0xa1);
	dma_addr_t iova;

	iova = kt_map(kd, buf, 300, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_LT(test, iova + 300, KT_BOUNCE_SIZE);
	/* The buffer keeps its offset inside its 4 KiB slot. */
	KUNIT_EXPECT_EQ(test, iova % KT_SLOT, 100);
	KUNIT_EXPECT_TRUE(test, vduse_domain_need_sync(kd->domain, iova));

	kt_view(test, kd, iova);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0xa1, 300));
	/* Only the buffer is copied, not its neighbours in the page. */
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova - 100, 0, 100));
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova + 300, 0,
					KT_SLOT - 400));

	/* Whatever the device does, the buffer stays as it was. */
	kt_poke(test, kd, iova, 0xee, 300);
	vduse_domain_sync_single_for_cpu(kd->domain, iova, 300, DMA_TO_DEVICE);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0xa1, 300));
	kt_unmap(kd, iova, 300, DMA_TO_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0xa1, 300));
}

/* DMA_FROM_DEVICE: nothing copied in; copied back on sync and unmap. */
static void vduse_domain_test_map_from_device(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, 0, 512, 0xb2);
	dma_addr_t iova;

	iova = kt_map(kd, buf, 512, DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	kt_view(test, kd, iova);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0, 512));

	kt_poke(test, kd, iova, 0xc3, 512);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0xb2, 512));
	vduse_domain_sync_single_for_cpu(kd->domain, iova, 512,
					 DMA_FROM_DEVICE);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0xc3, 512));

	/* sync_for_device does not copy for this direction. */
	memset(buf, 0x01, 512);
	vduse_domain_sync_single_for_device(kd->domain, iova, 512,
					    DMA_FROM_DEVICE);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0xc3, 512));

	kt_poke(test, kd, iova, 0xd4, 512);
	kt_unmap(kd, iova, 512, DMA_FROM_DEVICE, 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0xd4, 512));
}

/* DMA_BIDIRECTIONAL: both ways. */
static void vduse_domain_test_map_bidirectional(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, 8, 1000, 0x5a);
	dma_addr_t iova;

	iova = kt_map(kd, buf, 1000, DMA_BIDIRECTIONAL, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	kt_view(test, kd, iova);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0x5a, 1000));

	memset(buf, 0x6b, 1000);
	vduse_domain_sync_single_for_device(kd->domain, iova, 1000,
					    DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_TRUE(test, kt_sees(test, kd, iova, 0x6b, 1000));

	kt_poke(test, kd, iova, 0x7c, 1000);
	vduse_domain_sync_single_for_cpu(kd->domain, iova, 1000,
					 DMA_BIDIRECTIONAL);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x7c, 1000));

	kt_poke(test, kd, iova, 0x8d, 1000);
	kt_unmap(kd, iova, 1000, DMA_BIDIRECTIONAL, 0);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x8d, 1000));
}

/* Syncs copy exactly the range asked for, and only for their direction. */
static void vduse_domain_test_partial_sync(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, 0, 256, 0x10);
	dma_addr_t iova;

	iova = kt_map(kd, buf, 256, DMA_BIDIRECTIONAL, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	kt_view(test, kd, iova);

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

/* DMA_ATTR_SKIP_CPU_SYNC skips the copies of map and unmap. */
static void vduse_domain_test_skip_cpu_sync(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	u8 *buf = kt_buf(test, 0, 128, 0x99);
	dma_addr_t iova;

	iova = kt_map(kd, buf, 128, DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	kt_view(test, kd, iova);
	KUNIT_EXPECT_FALSE(test, kt_sees(test, kd, iova, 0x99, 128));

	kt_poke(test, kd, iova, 0x55, 128);
	kt_unmap(kd, iova, 128, DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC);
	KUNIT_EXPECT_TRUE(test, kt_filled(buf, 0x99, 128));
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
	iova = kt_map(kd, buf, len, DMA_BIDIRECTIONAL, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, iova % KT_SLOT, off % KT_SLOT);

	kt_view(test, kd, iova);
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
	 * mapping that always fits.
	 */
	iova = kt_map(kd, buf, half, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_EXPECT_LE(test, iova + half, KT_BOUNCE_SIZE);
	kt_view(test, kd, iova);
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
	struct vduse_domain_region region;
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
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, iova + 5,
							  iova + 5, &region));
	KUNIT_EXPECT_EQ(test, region.start, iova);
	KUNIT_EXPECT_EQ(test, region.last, iova + PAGE_ALIGN(len) - 1);
	KUNIT_EXPECT_EQ(test, region.offset, iova);
	KUNIT_EXPECT_EQ(test, region.perm, VHOST_MAP_RW);
	KUNIT_EXPECT_FALSE(test, region.bounce);
	fput(region.file);

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
	KUNIT_EXPECT_EQ(test, 0, vduse_domain_find_region(kd->domain, iova,
							  iova, &region));
	fput(region.file);

	vduse_domain_free_coherent(kd->domain, len, vaddr, iova);
	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, iova, iova,
						       &region), -EINVAL);
	vduse_domain_free_coherent(kd->domain, 1, vaddr2, iova2);
	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, iova2,
						       iova2, &region), -EINVAL);

	KUNIT_EXPECT_NULL(test, vduse_domain_alloc_coherent(kd->domain, 0,
							    &iova, GFP_KERNEL));
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

static struct vhost_iotlb *kt_iotlb(struct kunit *test)
{
	struct vhost_iotlb *iotlb = vhost_iotlb_alloc(16, 0);

	KUNIT_ASSERT_NOT_NULL(test, iotlb);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, kt_iotlb_free,
							   iotlb));
	return iotlb;
}

/* set_map installs vhost-vdpa's entries with file references. */
static void vduse_domain_test_set_map(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 64);
	struct vhost_iotlb *iotlb = kt_iotlb(test), *iotlb2 = kt_iotlb(test);
	struct vdpa_map_file mf[3];
	struct file *file = kt_file(test);
	struct vduse_domain_region region;
	unsigned long refs = file_count(file);
	dma_addr_t iova;
	u8 *buf = kt_buf(test, 0, 8, 0);

	/* Own entry first: the bounce area. */
	iova = kt_map(kd, buf, 8, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);

	mf[0] = (struct vdpa_map_file){ .file = file, .offset = 0x10000 };
	mf[1] = (struct vdpa_map_file){ .file = file, .offset = 0x90000 };
	mf[2] = (struct vdpa_map_file){ .file = NULL, .offset = 0 };
	KUNIT_ASSERT_EQ(test, 0, vhost_iotlb_add_range_ctx(iotlb, 0x100000,
							   0x1fffff, 0xa000,
							   VHOST_MAP_RO, &mf[0]));
	KUNIT_ASSERT_EQ(test, 0, vhost_iotlb_add_range_ctx(iotlb, 0x300000,
							   0x300fff, 0xb000,
							   VHOST_MAP_RW, &mf[1]));
	/* No file behind it: the daemon could not map it, so it is skipped. */
	KUNIT_ASSERT_EQ(test, 0, vhost_iotlb_add_range_ctx(iotlb, 0x400000,
							   0x400fff, 0xc000,
							   VHOST_MAP_RW, &mf[2]));

	KUNIT_ASSERT_EQ(test, 0, vduse_domain_set_map(kd->domain, iotlb));
	KUNIT_EXPECT_EQ(test, file_count(file), refs + 2);

	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, 0x180000,
							  0x180000, &region));
	KUNIT_EXPECT_PTR_EQ(test, region.file, file);
	KUNIT_EXPECT_EQ(test, region.start, 0x100000);
	KUNIT_EXPECT_EQ(test, region.last, 0x1fffff);
	KUNIT_EXPECT_EQ(test, region.offset, 0x10000);
	KUNIT_EXPECT_EQ(test, region.perm, VHOST_MAP_RO);
	KUNIT_EXPECT_FALSE(test, region.bounce);
	fput(region.file);

	/* A range lookup finds the first entry that overlaps it. */
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, 0x200000,
							  0x3fffff, &region));
	KUNIT_EXPECT_EQ(test, region.start, 0x300000);
	KUNIT_EXPECT_EQ(test, region.offset, 0x90000);
	KUNIT_EXPECT_EQ(test, region.perm, VHOST_MAP_RW);
	fput(region.file);
	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, 0x400000,
						       0x400fff, &region),
			-EINVAL);

	/* A new set_map replaces the old entries, own entries stay. */
	KUNIT_ASSERT_EQ(test, 0, vhost_iotlb_add_range_ctx(iotlb2, 0x500000,
							   0x500fff, 0, VHOST_MAP_WO,
							   &mf[0]));
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_set_map(kd->domain, iotlb2));
	KUNIT_EXPECT_EQ(test, file_count(file), refs + 1);
	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, 0x100000,
						       0x3fffff, &region),
			-EINVAL);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, 0x500000,
							  0x500000, &region));
	KUNIT_EXPECT_EQ(test, region.perm, VHOST_MAP_WO);
	fput(region.file);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, 0, 0,
							  &region));
	KUNIT_EXPECT_TRUE(test, region.bounce);
	fput(region.file);

	/* clear_map drops the references, the bounce entry stays. */
	vduse_domain_clear_map(kd->domain);
	KUNIT_EXPECT_EQ(test, file_count(file), refs);
	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, 0x500000,
						       0x500000, &region),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, 0, vduse_domain_find_region(kd->domain, 0, 0,
							  &region));
	fput(region.file);
	kt_unmap(kd, iova, 8, DMA_TO_DEVICE, 0);
}

/* A set_map that does not fit leaves no entry of its own behind. */
static void vduse_domain_test_set_map_limit(struct kunit *test)
{
	struct kt_domain *kd = kt_domain_create(test, 2);
	struct vhost_iotlb *iotlb = kt_iotlb(test);
	struct file *file = kt_file(test);
	struct vdpa_map_file mf = { .file = file };
	struct vduse_domain_region region;
	unsigned long refs = file_count(file);
	dma_addr_t iova;
	u8 *buf = kt_buf(test, 0, 8, 0);

	iova = kt_map(kd, buf, 8, DMA_TO_DEVICE, 0);
	KUNIT_ASSERT_NE(test, iova, DMA_MAPPING_ERROR);
	KUNIT_ASSERT_EQ(test, 0, vhost_iotlb_add_range_ctx(iotlb, 0x100000,
							   0x100fff, 0,
							   VHOST_MAP_RW, &mf));
	KUNIT_ASSERT_EQ(test, 0, vhost_iotlb_add_range_ctx(iotlb, 0x200000,
							   0x200fff, 0,
							   VHOST_MAP_RW, &mf));

	/* The bounce entry plus two would exceed the limit of two. */
	KUNIT_EXPECT_LT(test, vduse_domain_set_map(kd->domain, iotlb), 0);
	KUNIT_EXPECT_EQ(test, file_count(file), refs);
	KUNIT_EXPECT_EQ(test, vduse_domain_find_region(kd->domain, 0x100000,
						       0x200fff, &region),
			-EINVAL);
	KUNIT_ASSERT_EQ(test, 0, vduse_domain_find_region(kd->domain, 0, 0,
							  &region));
	KUNIT_EXPECT_TRUE(test, region.bounce);
	fput(region.file);
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

static bool kt_user_has(struct kunit *test, unsigned long uaddr, int byte,
			size_t len)
{
	u8 *buf = kunit_kmalloc(test, len, GFP_KERNEL);
	bool same;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	KUNIT_ASSERT_EQ(test, 0, copy_from_user(buf, (void __user *)uaddr, len));
	same = !memchr_inv(buf, byte, len);
	kunit_kfree(test, buf);
	return same;
}

static void kt_user_fill(struct kunit *test, unsigned long uaddr, int byte,
			 size_t len)
{
	u8 *buf = kunit_kmalloc(test, len, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, buf);
	memset(buf, byte, len);
	KUNIT_ASSERT_EQ(test, 0, copy_to_user((void __user *)uaddr, buf, len));
	kunit_kfree(test, buf);
}

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
	s64 pinned;

	umem = kt_user_mem(test, KT_BOUNCE_SIZE);
	kt_user_fill(test, umem, 0xee, KT_BOUNCE_SIZE);

	/* Nothing to replace before the bounce area is in use. */
	KUNIT_EXPECT_EQ(test, vduse_domain_reg_umem(kd->domain, umem, 0,
						    KT_BOUNCE_SIZE),
			-EINVAL);

	to_iova = kt_map(kd, to, 200, DMA_TO_DEVICE, 0);
	from_iova = kt_map(kd, from, 300, DMA_FROM_DEVICE, 0);
	KUNIT_ASSERT_NE(test, to_iova, DMA_MAPPING_ERROR);
	KUNIT_ASSERT_NE(test, from_iova, DMA_MAPPING_ERROR);
	kt_view(test, kd, from_iova);
	kt_poke(test, kd, from_iova, 0x4d, 300);

	/* Bad arguments. */
	KUNIT_EXPECT_EQ(test, vduse_domain_reg_umem(kd->domain, umem, PAGE_SIZE,
						    KT_BOUNCE_SIZE),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, vduse_domain_reg_umem(kd->domain, umem, 0,
						    KT_BOUNCE_SIZE - PAGE_SIZE),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, vduse_domain_reg_umem(kd->domain, umem + 1, 0,
						    KT_BOUNCE_SIZE),
			-EINVAL);
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
	struct kt_domain kd = {};
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

static struct kunit_case vduse_domain_cases[] = {
	KUNIT_CASE(vduse_domain_test_create_checks),
	KUNIT_CASE(vduse_domain_test_bounce_entry),
	KUNIT_CASE(vduse_domain_test_map_to_device),
	KUNIT_CASE(vduse_domain_test_map_from_device),
	KUNIT_CASE(vduse_domain_test_map_bidirectional),
	KUNIT_CASE(vduse_domain_test_partial_sync),
	KUNIT_CASE(vduse_domain_test_skip_cpu_sync),
	KUNIT_CASE(vduse_domain_test_page_boundaries),
	KUNIT_CASE(vduse_domain_test_map_limits),
	KUNIT_CASE(vduse_domain_test_exhaustion),
	KUNIT_CASE(vduse_domain_test_atomic_map),
	KUNIT_CASE(vduse_domain_test_coherent),
	KUNIT_CASE(vduse_domain_test_coherent_exhaustion),
	KUNIT_CASE(vduse_domain_test_set_map),
	KUNIT_CASE(vduse_domain_test_set_map_limit),
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

static void vduse_config_test_check_asid(struct kunit *test)
{
	struct vduse_dev *v0 = kt_dev(test, 0, 0, 0);
	struct vduse_dev *v1 = kt_dev(test, 1, 2, 3);
	u32 reserved[5] = {};

	KUNIT_EXPECT_EQ(test, vduse_dev_check_asid(v0, 0, reserved,
						   sizeof(reserved)), 0);
	KUNIT_EXPECT_EQ(test, vduse_dev_check_asid(v0, 1, reserved,
						   sizeof(reserved)), -EINVAL);
	KUNIT_EXPECT_EQ(test, vduse_dev_check_asid(v1, 2, reserved,
						   sizeof(reserved)), 0);
	KUNIT_EXPECT_EQ(test, vduse_dev_check_asid(v1, 3, reserved,
						   sizeof(reserved)), -EINVAL);
	KUNIT_EXPECT_EQ(test, vduse_dev_check_asid(v1, U32_MAX, reserved,
						   sizeof(reserved)), -EINVAL);
	reserved[4] = 1;
	KUNIT_EXPECT_EQ(test, vduse_dev_check_asid(v1, 0, reserved,
						   sizeof(reserved)), -EINVAL);
}

/* The address spaces share the bounce size; later attaches reuse them. */
static void vduse_config_test_init_domains(struct kunit *test)
{
	struct vduse_dev *one = kt_dev(test, 0, 0, 0);
	struct vduse_dev *three = kt_dev(test, 1, 1, 3);
	struct vduse_iova_domain *first;
	u32 i;

	one->bounce_size = VDUSE_MIN_BOUNCE_SIZE;
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(one));
	KUNIT_ASSERT_NOT_NULL(test, one->domains[0]);
	KUNIT_EXPECT_EQ(test, vduse_domain_bounce_size(one->domains[0]),
			VDUSE_MIN_BOUNCE_SIZE);
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

static struct kunit_case vduse_config_cases[] = {
	KUNIT_CASE_PARAM(vduse_config_test_check, kt_config_gen_params),
	KUNIT_CASE(vduse_config_test_msg_timeout),
	KUNIT_CASE(vduse_config_test_check_asid),
	KUNIT_CASE(vduse_config_test_init_domains),
	KUNIT_CASE(vduse_config_test_config_space),
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
 * struct kt_daemon - the daemon's end of a device
 * @dev: the device
 * @file: stands for the open device node; only private_data and
 *	f_flags are used by the code under test
 */
struct kt_daemon {
	struct vduse_dev *dev;
	struct file file;
};

/* How long a test waits for something that should happen at once. */
#define KT_WAIT		(20 * HZ)

static struct kt_daemon *kt_daemon(struct kunit *test, struct vduse_dev *dev)
{
	struct kt_daemon *d = kunit_kzalloc(test, sizeof(*d), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, d);
	d->dev = dev;
	d->file.private_data = dev;
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

/* Wait (bounded) for a request and read it. */
static void kt_next(struct kunit *test, struct kt_daemon *d,
		    struct vduse_dev_request *req)
{
	KUNIT_ASSERT_GT(test, wait_event_timeout(d->dev->waitq,
						 vduse_msg_pending(d->dev),
						 KT_WAIT), 0);
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
	queue_work(system_unbound_wq, &call->work);
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

/* A status write travels to the daemon and sticks once answered. */
static void vduse_msg_test_status(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
	struct vduse_dev_request req;
	struct kt_call *call;

	KUNIT_EXPECT_EQ(test, kt_poll(d), 0U);
	call = kt_start(test, vdpa, kt_set_status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	kt_next(test, d, &req);
	KUNIT_EXPECT_EQ(test, req.type, VDUSE_SET_STATUS);
	KUNIT_EXPECT_EQ(test, req.s.status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	/* Read, not answered: writable, nothing more to read. */
	KUNIT_EXPECT_EQ(test, kt_poll(d), KT_POLL(EPOLLOUT | EPOLLWRNORM));
	KUNIT_EXPECT_EQ(test, kt_answer(d, req.request_id, VDUSE_REQ_RESULT_OK,
					NULL),
			(ssize_t)sizeof(struct vduse_dev_response));
	KUNIT_EXPECT_EQ(test, kt_finish(test, call),
			VIRTIO_CONFIG_S_ACKNOWLEDGE);
	KUNIT_EXPECT_EQ(test, kt_poll(d), 0U);

	/* A refused status does not stick. */
	call = kt_start(test, vdpa, kt_set_status,
			VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	kt_next(test, d, &req);
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_FAILED, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call),
			VIRTIO_CONFIG_S_ACKNOWLEDGE);
	KUNIT_EXPECT_FALSE(test, dev->broken);
}

/* Request ids are unique and replies are matched by id, in any order. */
static void vduse_msg_test_ids(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
	struct vduse_dev_request r1, r2;
	struct kt_call *c1, *c2;

	c1 = kt_start(test, vdpa, kt_send_status, 1);
	kt_next(test, d, &r1);
	c2 = kt_start(test, vdpa, kt_send_status, 2);
	kt_next(test, d, &r2);
	KUNIT_EXPECT_NE(test, r1.request_id, r2.request_id);
	KUNIT_EXPECT_EQ(test, r1.s.status, 1);
	KUNIT_EXPECT_EQ(test, r2.s.status, 2);

	/* The second is answered first, with a failure. */
	kt_answer(d, r2.request_id, VDUSE_REQ_RESULT_FAILED, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, c2), -EIO);
	KUNIT_EXPECT_FALSE(test, completion_done(&c1->done));
	kt_answer(d, r1.request_id, VDUSE_REQ_RESULT_OK, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, c1), 0);

	/* An answered id is gone. */
	KUNIT_EXPECT_EQ(test, kt_answer(d, r1.request_id, VDUSE_REQ_RESULT_OK,
					NULL), -ENOENT);
}

/* What read() refuses, and a request that could not be copied out. */
static void vduse_msg_test_read(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
	struct vduse_dev_request req, again;
	struct kiocb iocb = { .ki_filp = &d->file };
	struct iov_iter iter;
	struct kt_call *call;

	KUNIT_EXPECT_EQ(test, kt_read(d, &req, sizeof(req)), -EAGAIN);

	call = kt_start(test, vdpa, kt_send_status, 7);
	KUNIT_ASSERT_GT(test, wait_event_timeout(dev->waitq,
						 vduse_msg_pending(dev),
						 KT_WAIT), 0);
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
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_OK, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), 0);
}

/* What write() refuses. */
static void vduse_msg_test_write(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
	struct vduse_dev_response resp = {};
	struct vduse_dev_request req;
	struct kt_call *c1, *c2;

	c1 = kt_start(test, vdpa, kt_send_status, 1);
	kt_next(test, d, &req);
	c2 = kt_start(test, vdpa, kt_send_status, 2);
	KUNIT_ASSERT_GT(test, wait_event_timeout(dev->waitq,
						 vduse_msg_pending(dev),
						 KT_WAIT), 0);

	resp.request_id = req.request_id;
	KUNIT_EXPECT_EQ(test, kt_write(d, &resp, sizeof(resp) - 1), -EINVAL);
	resp.reserved[3] = 1;
	KUNIT_EXPECT_EQ(test, kt_write(d, &resp, sizeof(resp)), -EINVAL);
	/* Not read yet: cannot be answered. */
	KUNIT_EXPECT_EQ(test, kt_answer(d, req.request_id + 1,
					VDUSE_REQ_RESULT_OK, NULL), -ENOENT);
	KUNIT_EXPECT_FALSE(test, completion_done(&c1->done));

	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_OK, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, c1), 0);
	kt_next(test, d, &req);
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_OK, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, c2), 0);
}

/* No reply within msg_timeout: the device breaks for good. */
static void vduse_msg_test_timeout(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
	struct vduse_dev_request req;
	struct kt_call *call;

	/*
	 * Whether the daemon read the request before it timed out or not
	 * (on a busy machine it may not have): nobody answers it.
	 */
	dev->msg_timeout = 1;
	call = kt_start(test, vdpa, kt_send_status, 1);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);
	KUNIT_EXPECT_TRUE(test, dev->broken);
	KUNIT_EXPECT_EQ(test, kt_poll(d), KT_POLL(EPOLLERR));
	KUNIT_EXPECT_TRUE(test, list_empty(&dev->send_list));
	KUNIT_EXPECT_TRUE(test, list_empty(&dev->recv_list));

	/* A late answer finds nothing; later requests fail at once. */
	KUNIT_EXPECT_EQ(test, kt_answer(d, 0, VDUSE_REQ_RESULT_OK, NULL),
			-ENOENT);
	call = kt_start(test, vdpa, kt_send_status, 2);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);
	KUNIT_EXPECT_EQ(test, kt_read(d, &req, sizeof(req)), -EAGAIN);
}

/* Breaking a device fails every request, read or not. */
static void vduse_msg_test_broken(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
	struct vduse_dev_request req;
	struct kt_call *c1, *c2;

	c1 = kt_start(test, vdpa, kt_send_status, 1);
	kt_next(test, d, &req);
	c2 = kt_start(test, vdpa, kt_send_status, 2);
	KUNIT_ASSERT_GT(test, wait_event_timeout(dev->waitq,
						 vduse_msg_pending(dev),
						 KT_WAIT), 0);

	vduse_dev_mark_broken(dev);
	KUNIT_EXPECT_EQ(test, kt_finish(test, c1), -EIO);
	KUNIT_EXPECT_EQ(test, kt_finish(test, c2), -EIO);
	KUNIT_EXPECT_EQ(test, kt_poll(d), KT_POLL(EPOLLERR));
	KUNIT_EXPECT_TRUE(test, list_empty(&dev->send_list));
	KUNIT_EXPECT_TRUE(test, list_empty(&dev->recv_list));
}

/* GET_VQ_STATE: split passes through, packed is masked to 15 bits + 1. */
static void vduse_msg_test_vq_state(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
	struct vduse_vq_state state = {};
	struct vduse_dev_request req;
	struct kt_call *call;
	u16 val;

	call = kt_start(test, vdpa, kt_get_vq_state, 1);
	kt_next(test, d, &req);
	KUNIT_EXPECT_EQ(test, req.type, VDUSE_GET_VQ_STATE);
	KUNIT_EXPECT_EQ(test, req.vq_state.index, 1);
	state.index = 1;
	state.split.avail_index = 0xfffe;
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_OK, &state);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), 0);
	KUNIT_EXPECT_EQ(test, call->state.split.avail_index, 0xfffe);

	dev->driver_features = BIT_ULL(VIRTIO_F_RING_PACKED);
	call = kt_start(test, vdpa, kt_get_vq_state, 0);
	kt_next(test, d, &req);
	state.packed.last_avail_counter = 3;
	state.packed.last_avail_idx = 0xffff;
	state.packed.last_used_counter = 2;
	state.packed.last_used_idx = 0x8001;
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_OK, &state);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), 0);
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
	call = kt_start(test, vdpa, kt_get_vq_state, 0);
	kt_next(test, d, &req);
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_FAILED, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);
	call = kt_start(test, vdpa, kt_get_vq_state, 2);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EINVAL);
	KUNIT_EXPECT_FALSE(test, vduse_msg_pending(dev));
}

/* UPDATE_IOTLB after set_map: range format by API version, asid in v1. */
static void vduse_msg_test_update_iotlb(struct kunit *test)
{
	struct vduse_dev *v0 = kt_dev(test, 0, 0, 0);
	struct vduse_dev *v1 = kt_dev(test, 1, 2, 2);
	struct vdpa_device *vdpa0 = kt_vdpa(test, v0);
	struct vdpa_device *vdpa1 = kt_vdpa(test, v1);
	struct kt_daemon *d0 = kt_daemon(test, v0);
	struct kt_daemon *d1 = kt_daemon(test, v1);
	struct vduse_dev_request req;
	struct kt_call *call;

	v0->bounce_size = VDUSE_MIN_BOUNCE_SIZE;
	v1->bounce_size = VDUSE_MIN_BOUNCE_SIZE;
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(v0));
	KUNIT_ASSERT_EQ(test, 0, vduse_dev_init_domains(v1));

	call = kt_start(test, vdpa0, kt_set_map, 0);
	kt_next(test, d0, &req);
	KUNIT_EXPECT_EQ(test, req.type, VDUSE_UPDATE_IOTLB);
	KUNIT_EXPECT_EQ(test, req.iova.start, 0);
	KUNIT_EXPECT_EQ(test, req.iova.last, ULLONG_MAX);
	kt_answer(d0, req.request_id, VDUSE_REQ_RESULT_OK, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), 0);

	call = kt_start(test, vdpa1, kt_set_map, 1);
	kt_next(test, d1, &req);
	KUNIT_EXPECT_EQ(test, req.type, VDUSE_UPDATE_IOTLB);
	KUNIT_EXPECT_EQ(test, req.iova_v2.start, 0);
	KUNIT_EXPECT_EQ(test, req.iova_v2.last, ULLONG_MAX);
	KUNIT_EXPECT_EQ(test, req.iova_v2.asid, 1);
	KUNIT_EXPECT_EQ(test, req.iova_v2.padding, 0);
	kt_answer(d1, req.request_id, VDUSE_REQ_RESULT_FAILED, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);

	call = kt_start(test, vdpa1, kt_set_map, 2);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EINVAL);
}

/* SET_VQ_GROUP_ASID: only in v1; the group moves once the daemon agrees. */
static void vduse_msg_test_group_asid(struct kunit *test)
{
	struct vduse_dev *v0 = kt_dev(test, 0, 0, 0);
	struct vduse_dev *v1 = kt_dev(test, 1, 2, 2);
	struct vdpa_device *vdpa0 = kt_vdpa(test, v0);
	struct vdpa_device *vdpa1 = kt_vdpa(test, v1);
	struct kt_daemon *d1 = kt_daemon(test, v1);
	struct vduse_dev_request req;
	struct kt_call *call;

	/* Version 0 has one group and one space: nothing to ask. */
	KUNIT_EXPECT_EQ(test, vduse_vdpa_set_group_asid(vdpa0, 0, 0), 0);
	KUNIT_EXPECT_EQ(test, vduse_vdpa_set_group_asid(vdpa0, 1, 0), -EINVAL);
	KUNIT_EXPECT_FALSE(test, vduse_msg_pending(v0));
	KUNIT_EXPECT_EQ(test, vduse_vdpa_set_group_asid(vdpa1, 2, 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, vduse_vdpa_set_group_asid(vdpa1, 0, 2), -EINVAL);

	call = kt_start(test, vdpa1, kt_set_group_asid, 1);
	kt_next(test, d1, &req);
	KUNIT_EXPECT_EQ(test, req.type, VDUSE_SET_VQ_GROUP_ASID);
	KUNIT_EXPECT_EQ(test, req.vq_group_asid.group, 1);
	KUNIT_EXPECT_EQ(test, req.vq_group_asid.asid, 1);
	kt_answer(d1, req.request_id, VDUSE_REQ_RESULT_FAILED, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);
	KUNIT_EXPECT_EQ(test, v1->groups[1].asid, 0);

	call = kt_start(test, vdpa1, kt_set_group_asid, 1);
	kt_next(test, d1, &req);
	kt_answer(d1, req.request_id, VDUSE_REQ_RESULT_OK, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), 0);
	KUNIT_EXPECT_EQ(test, v1->groups[1].asid, 1);
	KUNIT_EXPECT_EQ(test, v1->groups[0].asid, 0);
}

/* SET_VQ_READY and SUSPEND are sent only with their VDUSE features. */
static void vduse_msg_test_features(struct kunit *test)
{
	struct vduse_dev *plain = kt_dev(test, 0, 0, 0);
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vplain = kt_vdpa(test, plain);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
	struct vduse_dev_request req;
	struct kt_call *call;

	vduse_vdpa_set_vq_ready(vplain, 1, true);
	KUNIT_EXPECT_TRUE(test, vduse_vdpa_get_vq_ready(vplain, 1));
	KUNIT_EXPECT_FALSE(test, vduse_msg_pending(plain));

	dev->vduse_features = VDUSE_SUPPORTED_FEATURES;
	call = kt_start(test, vdpa, kt_set_vq_ready, 1);
	kt_next(test, d, &req);
	KUNIT_EXPECT_EQ(test, req.type, VDUSE_SET_VQ_READY);
	KUNIT_EXPECT_EQ(test, req.vq_ready.num, 1);
	KUNIT_EXPECT_EQ(test, req.vq_ready.ready, 1);
	/* The state changed before the daemon was asked. */
	KUNIT_EXPECT_TRUE(test, vduse_vdpa_get_vq_ready(vdpa, 1));
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_OK, NULL);
	kt_finish(test, call);

	call = kt_start(test, vdpa, kt_suspend, 0);
	kt_next(test, d, &req);
	KUNIT_EXPECT_EQ(test, req.type, VDUSE_SUSPEND);
	KUNIT_EXPECT_FALSE(test, dev->suspended);
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_OK, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), 0);
	KUNIT_EXPECT_TRUE(test, dev->suspended);
}

/* Reset forgets the driver's setup, whatever the daemon answers. */
static void vduse_msg_test_reset(struct kunit *test)
{
	struct vduse_dev *dev = kt_dev(test, 0, 0, 0);
	struct vdpa_device *vdpa = kt_vdpa(test, dev);
	struct kt_daemon *d = kt_daemon(test, dev);
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

	call = kt_start(test, vdpa, kt_reset, 0);
	kt_next(test, d, &req);
	KUNIT_EXPECT_EQ(test, req.type, VDUSE_SET_STATUS);
	KUNIT_EXPECT_EQ(test, req.s.status, 0);
	kt_answer(d, req.request_id, VDUSE_REQ_RESULT_FAILED, NULL);
	KUNIT_EXPECT_EQ(test, kt_finish(test, call), -EIO);

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
	{}
};

static struct kunit_suite vduse_msg_suite = {
	.name = "vduse_msg",
	.test_cases = vduse_msg_cases,
};

kunit_test_suites(&vduse_domain_suite, &vduse_config_suite, &vduse_msg_suite);
