// SPDX-License-Identifier: GPL-2.0-only
/*
 * VDUSE IOVA domain: bounce buffers, coherent memory and the IOTLB of one
 * address space.
 *
 * Layout of the IOVA space of a domain:
 *
 *   [0, bounce_size)             the bounce area.  Streaming DMA mappings
 *                                get IOVAs here, in 4 KiB slots, and their
 *                                data is copied to and from bounce pages
 *                                that the daemon can mmap.
 *   [bounce_size, iova_limit]    coherent allocations (vrings), PAGE_SIZE
 *                                granule, backed directly by kernel pages.
 *
 * The IOTLB (a vhost_iotlb) tells the daemon which file backs which IOVA
 * range.  Each entry carries a struct vduse_domain_map_file as its opaque
 * pointer: either the domain's own anonymous file (bounce area, coherent
 * memory; the file offset equals the IOVA) or, for mappings installed by
 * vhost-vdpa through set_map, a referenced file of the VMM.
 *
 * Lifetime: the domain is owned by its "[vduse-domain]" file.  The device
 * drops its reference with vduse_domain_destroy(); the memory stays until
 * the daemon has closed every fd and unmapped every mapping of that file.
 *
 * Locking (outermost first):
 *  - umem_mutex serialises registration and removal of user bounce pages
 *    (both sleep to pin or unpin).
 *  - bounce_lock (rwlock) protects which pages back the bounce area: the
 *    umem pointer and the copy of in-flight data between kernel and user
 *    pages.  Streaming map/unmap/sync and the fault path take it for
 *    reading, from any context; umem switches take it for writing with
 *    interrupts disabled.  Under the read lock a missing kernel bounce
 *    page is installed with cmpxchg(), and each slot_orig entry is only
 *    written by the owner of the IOVA range it belongs to.
 *  - iotlb_lock (spinlock, irqsave) protects the IOTLB and bounce_mapped.
 *    It is never held together with bounce_lock.
 *
 * Idle bounce memory goes back to the system: a kernel bounce page whose
 * slots have all been free for VDUSE_BOUNCE_IDLE since the last streaming
 * map is freed (vduse_domain_reclaim()), and allocated again on next use.
 * The daemon may have it mapped, so the reclaim first sets "reclaiming"
 * under bounce_lock (the fault path then waits instead of mapping bounce
 * pages), waits for faults already past that check (they hold the page
 * lock until their PTE is in), zaps the daemon's PTEs, and only then
 * detaches the pages that are still unused.  This needs a domain file
 * with an inode of its own (anon_inode_create_getfile()): zapping the
 * shared anonymous inode would hit every other user of it.
 */

#include <linux/anon_inodes.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/iova.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vdpa.h>
#include <linux/vhost_iotlb.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "iova_domain.h"

#define VDUSE_BOUNCE_MAP_MASK	(VDUSE_BOUNCE_MAP_SIZE - 1)

/* How long the bounce area must go unused before its free pages go. */
#define VDUSE_BOUNCE_IDLE	msecs_to_jiffies(1000)

/**
 * struct vduse_domain_map_file - backing of one IOTLB entry
 * @file: referenced file of a set_map entry, or NULL for memory owned by
 *	the domain itself (bounce area, coherent allocations)
 * @offset: offset in the backing file of the entry's first byte
 */
struct vduse_domain_map_file {
	struct file *file;
	u64 offset;
};

/**
 * struct vduse_umem - user pages registered as the bounce area
 * @pages: pinned pages, one per PAGE_SIZE of the bounce area
 * @npages: number of entries in @pages
 * @mm: address space charged for the pinned pages (grabbed)
 */
struct vduse_umem {
	struct page **pages;
	unsigned long npages;
	struct mm_struct *mm;
};

/**
 * struct vduse_iova_domain - the memory of one address space
 * @file: the "[vduse-domain]" anonymous file that owns the domain
 * @iova_limit: last usable IOVA
 * @bounce_size: size of the bounce area, a multiple of PAGE_SIZE
 * @max_map_size: largest streaming map an empty domain always grants,
 *	see vduse_domain_max_map_size()
 * @stream_iovad: allocator for streaming maps, 4 KiB granule, IOVA 0 unused
 * @stream_limit_pfn: last 4 KiB frame of the bounce area
 * @coherent_iovad: allocator for coherent memory, PAGE_SIZE granule
 * @coherent_limit_pfn: last PAGE_SIZE frame below @iova_limit
 * @iotlb_lock: protects @iotlb, @bounce_mapped and @readonly
 * @iotlb: IOVA to (file, offset) translations shown to the daemon
 * @bounce_mapped: the bounce area has an IOTLB entry
 * @bounce_lock: see the locking rules at the top of this file
 * @slot_orig: per 4 KiB slot: physical address of the driver buffer that
 *	the slot shadows (4 KiB aligned), or INVALID_PHYS_ADDR when free
 * @kpages: per PAGE_SIZE of the bounce area: kernel page, allocated (and
 *	zeroed) on first use, freed with the domain
 * @umem: registered user pages replacing @kpages, or NULL
 * @umem_mutex: serialises changes of @umem
 * @nr_kpages: number of kernel bounce pages allocated
 * @can_reclaim: the domain file has an inode of its own, so the daemon's
 *	mappings of bounce pages can be zapped and the pages freed
 * @reclaiming: a reclaim is zapping mappings; faults of the bounce area
 *	wait on @reclaim_wq.  Written under bounce_lock for writing.
 * @reclaim_wq: faults waiting for the end of a reclaim
 * @reclaim_work: frees idle bounce pages, armed by streaming maps
 * @reclaim_armed: bit 0 set while @reclaim_work is queued or running
 * @last_use: jiffies of the last streaming map
 * @reclaim_map: scratch bitmap of the pages a reclaim works on (@umem_mutex)
 * @readonly: IOVA ranges the daemon may read but not write through its
 *	mappings of the domain file (vduse_domain_protect()), under iotlb_lock
 */
struct vduse_iova_domain {
	struct file *file;
	u64 iova_limit;
	size_t bounce_size;
	size_t max_map_size;

	struct iova_domain stream_iovad;
	unsigned long stream_limit_pfn;
	struct iova_domain coherent_iovad;
	unsigned long coherent_limit_pfn;

	spinlock_t iotlb_lock;		/* iotlb, bounce_mapped, readonly */
	struct vhost_iotlb *iotlb;
	bool bounce_mapped;

	rwlock_t bounce_lock;
	phys_addr_t *slot_orig;
	struct page **kpages;
	struct vduse_umem *umem;
	struct mutex umem_mutex;	/* umem changes, reclaim_map */

	atomic_long_t nr_kpages;
	bool can_reclaim;
	bool reclaiming;		/* bounce_lock */
	wait_queue_head_t reclaim_wq;
	struct delayed_work reclaim_work;
	unsigned long reclaim_armed;
	unsigned long last_use;
	unsigned long *reclaim_map;
	struct vhost_iotlb *readonly;	/* iotlb_lock */
};

/* ------------------------------------------------------------------ */
/* IOTLB                                                               */
/* ------------------------------------------------------------------ */

/* Remove one entry and drop what it references.  iotlb_lock held. */
static void vduse_domain_del_entry(struct vduse_iova_domain *domain,
				   struct vhost_iotlb_map *map)
{
	struct vduse_domain_map_file *mf = map->opaque;

	if (mf) {
		if (mf->file)
			fput(mf->file);
		kfree(mf);
	}
	vhost_iotlb_map_free(domain->iotlb, map);
}

/* Insert an entry backed by the domain file.  iotlb_lock held. */
static int vduse_domain_add_own_entry(struct vduse_iova_domain *domain,
				      u64 start, u64 last, u64 addr)
{
	struct vduse_domain_map_file *mf;
	int ret;

	mf = kzalloc_obj(*mf, GFP_ATOMIC);
	if (!mf)
		return -ENOMEM;
	mf->offset = start;
	ret = vhost_iotlb_add_range_ctx(domain->iotlb, start, last, addr,
					VHOST_MAP_RW, mf);
	if (ret)
		kfree(mf);
	return ret;
}

/* Drop every entry installed by set_map.  iotlb_lock held. */
static void vduse_domain_clear_map_locked(struct vduse_iova_domain *domain)
{
	struct vhost_iotlb_map *map, *tmp;

	list_for_each_entry_safe(map, tmp, &domain->iotlb->list, link) {
		struct vduse_domain_map_file *mf = map->opaque;

		if (mf && mf->file)
			vduse_domain_del_entry(domain, map);
	}
}

/**
 * vduse_domain_set_map() - replace the set_map entries of a domain
 * @domain: the domain
 * @iotlb: vhost-vdpa's IOTLB; every entry's opaque is a vdpa_map_file
 *
 * Entries owned by the domain itself are kept.  Entries without a
 * backing file are skipped: the daemon could not map them anyway.
 *
 * Return: 0; -ENOSPC when the entries do not fit in the IOTLB (the
 * iotlb_limit of vduse_domain_create(), counting the domain's own
 * entries); -ENOMEM when memory for an entry cannot be allocated.  After
 * an error the domain has no set_map entries at all.
 */
int vduse_domain_set_map(struct vduse_iova_domain *domain,
			 struct vhost_iotlb *iotlb)
{
	struct vhost_iotlb_map *map;
	unsigned long flags;
	int ret = 0;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	vduse_domain_clear_map_locked(domain);
	for (map = vhost_iotlb_itree_first(iotlb, 0, ULLONG_MAX); map;
	     map = vhost_iotlb_itree_next(map, 0, ULLONG_MAX)) {
		struct vdpa_map_file *src = map->opaque;
		struct vduse_domain_map_file *mf;

		if (!src || !src->file)
			continue;
		mf = kzalloc_obj(*mf, GFP_ATOMIC);
		if (!mf) {
			ret = -ENOMEM;
			break;
		}
		mf->file = get_file(src->file);
		mf->offset = src->offset;
		ret = vhost_iotlb_add_range_ctx(domain->iotlb, map->start,
						map->last, map->addr,
						map->perm, mf);
		if (ret) {
			fput(mf->file);
			kfree(mf);
			break;
		}
	}
	if (ret)
		vduse_domain_clear_map_locked(domain);
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);

	return ret;
}

/**
 * vduse_domain_clear_map() - drop every entry installed by set_map
 * @domain: the domain
 */
void vduse_domain_clear_map(struct vduse_iova_domain *domain)
{
	unsigned long flags;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	vduse_domain_clear_map_locked(domain);
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);
}

/**
 * vduse_domain_find_region() - look up the first entry overlapping a range
 * @domain: the domain
 * @start: first IOVA of the range
 * @last: last IOVA of the range (inclusive)
 * @region: filled in on success; @region->file holds a reference
 *
 * Return: 0, or -EINVAL if no entry overlaps [@start, @last].
 */
int vduse_domain_find_region(struct vduse_iova_domain *domain,
			     u64 start, u64 last,
			     struct vduse_domain_region *region)
{
	struct vduse_domain_map_file *mf;
	struct vhost_iotlb_map *map;
	unsigned long flags;
	int ret = -EINVAL;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	map = vhost_iotlb_itree_first(domain->iotlb, start, last);
	if (map && map->opaque) {
		mf = map->opaque;
		region->start = map->start;
		region->last = map->last;
		region->offset = mf->offset;
		region->perm = map->perm;
		region->file = get_file(mf->file ? mf->file : domain->file);
		region->bounce = !mf->file && domain->bounce_mapped &&
				 map->start == 0 &&
				 map->last == domain->bounce_size - 1;
		ret = 0;
	}
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);

	return ret;
}

/* Make the bounce area visible to the daemon on first use. */
static int vduse_domain_map_bounce(struct vduse_iova_domain *domain)
{
	unsigned long flags;
	int ret = 0;

	/* Pairs with the release below: the entry exists once seen set. */
	if (smp_load_acquire(&domain->bounce_mapped))
		return 0;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	if (!domain->bounce_mapped) {
		ret = vduse_domain_add_own_entry(domain, 0,
						 domain->bounce_size - 1, 0);
		/* Publish only after the entry is in the IOTLB. */
		if (!ret)
			smp_store_release(&domain->bounce_mapped, true); /* see above */
	}
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);

	return ret;
}

/**
 * vduse_domain_reset_bounce_map() - hide the bounce area again
 * @domain: the domain
 *
 * Called on device reset: the IOTLB entry of the bounce area goes away
 * (and comes back with the next streaming map), the pages stay.
 */
void vduse_domain_reset_bounce_map(struct vduse_iova_domain *domain)
{
	struct vhost_iotlb_map *map;
	unsigned long flags;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	if (domain->bounce_mapped) {
		for (map = vhost_iotlb_itree_first(domain->iotlb, 0, 0); map;
		     map = vhost_iotlb_itree_next(map, 0, 0)) {
			struct vduse_domain_map_file *mf = map->opaque;

			if (mf && !mf->file && map->start == 0 &&
			    map->last == domain->bounce_size - 1) {
				vduse_domain_del_entry(domain, map);
				break;
			}
		}
		/* Lockless readers re-add the entry on their next map. */
		smp_store_release(&domain->bounce_mapped, false);
	}
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);
}

/* ------------------------------------------------------------------ */
/* Bounce area                                                         */
/* ------------------------------------------------------------------ */

/* The page currently backing @iova of the bounce area.  bounce_lock held. */
static struct page *vduse_domain_bounce_page(struct vduse_iova_domain *domain,
					     u64 iova)
{
	unsigned long idx = iova >> PAGE_SHIFT;

	if (domain->umem)
		return domain->umem->pages[idx];
	return READ_ONCE(domain->kpages[idx]);
}

/* Copy @len bytes between a bounce page and a physical address. */
static void vduse_domain_copy(struct page *bounce, unsigned int bounce_off,
			      phys_addr_t phys, size_t len, bool to_bounce)
{
	void *buf = kmap_local_page(pfn_to_page(PHYS_PFN(phys)));
	void *bb = kmap_local_page(bounce);

	if (to_bounce)
		memcpy(bb + bounce_off, buf + offset_in_page(phys), len);
	else
		memcpy(buf + offset_in_page(phys), bb + bounce_off, len);

	kunmap_local(bb);
	kunmap_local(buf);
}

/*
 * Copy the bytes [iova, iova + size) of streaming mappings between the
 * driver buffers and the bounce area.  bounce_lock held (either way).
 */
static void vduse_domain_bounce(struct vduse_iova_domain *domain,
				u64 iova, size_t size, bool to_bounce)
{
	while (size) {
		unsigned long slot = iova >> VDUSE_BOUNCE_MAP_SHIFT;
		unsigned int off = iova & VDUSE_BOUNCE_MAP_MASK;
		size_t len = min_t(size_t, size, VDUSE_BOUNCE_MAP_SIZE - off);
		phys_addr_t orig = READ_ONCE(domain->slot_orig[slot]);
		struct page *page = vduse_domain_bounce_page(domain, iova);

		if (orig != INVALID_PHYS_ADDR && page)
			vduse_domain_copy(page, offset_in_page(iova),
					  orig + off, len, to_bounce);
		iova += len;
		size -= len;
	}
}

/* Release the slots of [iova, iova + nslots * 4 KiB).  bounce_lock held. */
static void vduse_domain_put_slots(struct vduse_iova_domain *domain,
				   u64 iova, unsigned long nslots)
{
	unsigned long slot = iova >> VDUSE_BOUNCE_MAP_SHIFT;

	while (nslots--)
		WRITE_ONCE(domain->slot_orig[slot++], INVALID_PHYS_ADDR);
}

/*
 * Bind the slots of a new mapping to the driver buffer starting at the
 * 4 KiB aligned physical address @phys, allocating kernel bounce pages on
 * first use.  bounce_lock held for reading; may run in atomic context.
 */
static int vduse_domain_get_slots(struct vduse_iova_domain *domain,
				  u64 iova, unsigned long nslots,
				  phys_addr_t phys)
{
	unsigned long slot = iova >> VDUSE_BOUNCE_MAP_SHIFT;
	unsigned long i;

	for (i = 0; i < nslots; i++) {
		u64 addr = iova + (i << VDUSE_BOUNCE_MAP_SHIFT);
		unsigned long idx = addr >> PAGE_SHIFT;

		if (!domain->umem && !READ_ONCE(domain->kpages[idx])) {
			struct page *page;

			page = alloc_page(GFP_ATOMIC | __GFP_ZERO |
					  __GFP_NOWARN);
			if (!page) {
				vduse_domain_put_slots(domain, iova, i);
				return -ENOMEM;
			}
			if (cmpxchg(&domain->kpages[idx], NULL, page))
				__free_page(page);
			else
				atomic_long_inc(&domain->nr_kpages);
		}
		WRITE_ONCE(domain->slot_orig[slot + i],
			   phys + (i << VDUSE_BOUNCE_MAP_SHIFT));
	}
	return 0;
}

/*
 * Note a use of the bounce area and make sure a reclaim is pending.  Any
 * context; cheap when called often (one store per jiffy at most).
 */
static void vduse_domain_touch(struct vduse_iova_domain *domain)
{
	unsigned long now = jiffies;

	if (!domain->can_reclaim)
		return;
	if (READ_ONCE(domain->last_use) != now)
		WRITE_ONCE(domain->last_use, now);
	if (!test_bit(0, &domain->reclaim_armed) &&
	    !test_and_set_bit(0, &domain->reclaim_armed))
		queue_delayed_work(system_dfl_wq, &domain->reclaim_work,
				   VDUSE_BOUNCE_IDLE);
}

/* Are all slots of bounce page @idx free?  bounce_lock held. */
static bool vduse_domain_page_idle(struct vduse_iova_domain *domain,
				   unsigned long idx)
{
	unsigned long per_page = PAGE_SIZE >> VDUSE_BOUNCE_MAP_SHIFT;
	unsigned long slot = idx * per_page, i;

	for (i = 0; i < per_page; i++)
		if (READ_ONCE(domain->slot_orig[slot + i]) != INVALID_PHYS_ADDR)
			return false;
	return true;
}

/**
 * vduse_domain_reclaim() - free the kernel bounce pages nobody uses
 * @domain: the domain
 *
 * Frees every kernel bounce page none of whose slots is mapped, after
 * removing it from the daemon's mappings (see the top of this file).
 * Does nothing while user memory backs the bounce area, or when the
 * domain file shares the anonymous inode.  Sleeps.
 *
 * Return: the number of pages freed.
 */
unsigned long vduse_domain_reclaim(struct vduse_iova_domain *domain)
{
	unsigned long npages = domain->bounce_size >> PAGE_SHIFT;
	unsigned long idx, end, freed = 0;
	struct page *batch[32];
	unsigned int n, i;

	if (!domain->can_reclaim)
		return 0;
	mutex_lock(&domain->umem_mutex);

	/* Pick the candidates and make the fault path wait. */
	write_lock_irq(&domain->bounce_lock);
	if (domain->umem) {
		write_unlock_irq(&domain->bounce_lock);
		goto out;
	}
	bitmap_zero(domain->reclaim_map, npages);
	for (idx = 0; idx < npages; idx++)
		if (domain->kpages[idx] && vduse_domain_page_idle(domain, idx))
			__set_bit(idx, domain->reclaim_map);
	if (bitmap_empty(domain->reclaim_map, npages)) {
		write_unlock_irq(&domain->bounce_lock);
		goto out;
	}
	WRITE_ONCE(domain->reclaiming, true);
	write_unlock_irq(&domain->bounce_lock);

	/*
	 * A fault that saw the page before "reclaiming" holds the page lock
	 * until its PTE is in: wait for it, then zap.  Only the reclaim
	 * removes kernel bounce pages, so the pointers stay valid.
	 */
	for_each_set_bit(idx, domain->reclaim_map, npages) {
		lock_page(domain->kpages[idx]);
		unlock_page(domain->kpages[idx]);
	}
	for_each_set_bit(idx, domain->reclaim_map, npages) {
		end = find_next_zero_bit(domain->reclaim_map, npages, idx);
		unmap_mapping_range(domain->file->f_mapping,
				    (loff_t)idx << PAGE_SHIFT,
				    (loff_t)(end - idx) << PAGE_SHIFT, 1);
		idx = end;
	}

	/*
	 * Detach the pages still unused, a batch at a time so that streaming
	 * maps (in atomic context) wait little; pages mapped meanwhile stay.
	 */
	idx = 0;
	do {
		n = 0;
		write_lock_irq(&domain->bounce_lock);
		for (; idx < npages && n < ARRAY_SIZE(batch); idx++) {
			if (!test_bit(idx, domain->reclaim_map) ||
			    !vduse_domain_page_idle(domain, idx))
				continue;
			batch[n++] = domain->kpages[idx];
			WRITE_ONCE(domain->kpages[idx], NULL);
		}
		if (idx >= npages)
			WRITE_ONCE(domain->reclaiming, false);
		write_unlock_irq(&domain->bounce_lock);
		for (i = 0; i < n; i++)
			put_page(batch[i]);
		atomic_long_sub(n, &domain->nr_kpages);
		freed += n;
		cond_resched();
	} while (idx < npages);
	wake_up_all(&domain->reclaim_wq);
out:
	mutex_unlock(&domain->umem_mutex);
	return freed;
}

/* Free idle bounce pages once the area has been unused long enough. */
static void vduse_domain_reclaim_work(struct work_struct *work)
{
	struct vduse_iova_domain *domain =
		container_of(to_delayed_work(work), struct vduse_iova_domain,
			     reclaim_work);
	unsigned long idle_at = READ_ONCE(domain->last_use) + VDUSE_BOUNCE_IDLE;

	if (time_before(jiffies, idle_at)) {
		queue_delayed_work(system_dfl_wq, &domain->reclaim_work,
				   idle_at - jiffies);
		return;
	}
	clear_bit(0, &domain->reclaim_armed);
	/* A map between the check and the clear saw the bit set: look again. */
	smp_mb__after_atomic();
	idle_at = READ_ONCE(domain->last_use) + VDUSE_BOUNCE_IDLE;
	if (time_before(jiffies, idle_at)) {
		vduse_domain_touch(domain);
		return;
	}
	vduse_domain_reclaim(domain);
}

/**
 * vduse_domain_bounce_pages() - kernel bounce pages currently allocated
 * @domain: the domain
 *
 * Return: the number of PAGE_SIZE pages.
 */
unsigned long vduse_domain_bounce_pages(struct vduse_iova_domain *domain)
{
	return atomic_long_read(&domain->nr_kpages);
}

/* Is [dma_addr, dma_addr + size) a non-empty range of the bounce area? */
static bool vduse_domain_in_bounce(struct vduse_iova_domain *domain,
				   dma_addr_t dma_addr, size_t size)
{
	return size && dma_addr < domain->bounce_size &&
	       size <= domain->bounce_size - dma_addr;
}

/**
 * vduse_domain_map_page() - map a driver buffer for streaming DMA
 * @domain: the domain
 * @page: first page of the buffer
 * @offset: offset of the buffer in @page
 * @size: length of the buffer
 * @dir: DMA direction
 * @attrs: DMA attributes; DMA_ATTR_SKIP_CPU_SYNC skips the initial copy
 *
 * Allocates IOVA in the bounce area so that the buffer keeps its offset
 * inside a 4 KiB slot, and copies the buffer into the bounce area for
 * DMA_TO_DEVICE and DMA_BIDIRECTIONAL.  Safe in atomic context.
 *
 * Return: the IOVA of the buffer, or DMA_MAPPING_ERROR.
 */
dma_addr_t vduse_domain_map_page(struct vduse_iova_domain *domain,
				 struct page *page, unsigned long offset,
				 size_t size, enum dma_data_direction dir,
				 unsigned long attrs)
{
	phys_addr_t phys = page_to_phys(page) + offset;
	unsigned long head = phys & VDUSE_BOUNCE_MAP_MASK;
	unsigned long nslots, pfn;
	u64 iova;

	if (!size || size > domain->bounce_size - head)
		return DMA_MAPPING_ERROR;
	if (vduse_domain_map_bounce(domain))
		return DMA_MAPPING_ERROR;

	nslots = DIV_ROUND_UP(head + size, VDUSE_BOUNCE_MAP_SIZE);
	pfn = alloc_iova_fast(&domain->stream_iovad, nslots,
			      domain->stream_limit_pfn, true);
	if (!pfn)
		return DMA_MAPPING_ERROR;
	iova = (u64)pfn << VDUSE_BOUNCE_MAP_SHIFT;

	read_lock(&domain->bounce_lock);
	if (vduse_domain_get_slots(domain, iova, nslots, phys - head)) {
		read_unlock(&domain->bounce_lock);
		free_iova_fast(&domain->stream_iovad, pfn, nslots);
		return DMA_MAPPING_ERROR;
	}
	if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) &&
	    (dir == DMA_TO_DEVICE || dir == DMA_BIDIRECTIONAL))
		vduse_domain_bounce(domain, iova + head, size, true);
	read_unlock(&domain->bounce_lock);
	vduse_domain_touch(domain);

	return iova + head;
}

/**
 * vduse_domain_unmap_page() - end a streaming mapping
 * @domain: the domain
 * @dma_addr: IOVA returned by vduse_domain_map_page()
 * @size: length given to vduse_domain_map_page()
 * @dir: DMA direction
 * @attrs: DMA attributes; DMA_ATTR_SKIP_CPU_SYNC skips the final copy
 *
 * Copies the bounce area back into the buffer for DMA_FROM_DEVICE and
 * DMA_BIDIRECTIONAL, then frees the IOVA.  Ranges outside the bounce
 * area are ignored.
 */
void vduse_domain_unmap_page(struct vduse_iova_domain *domain,
			     dma_addr_t dma_addr, size_t size,
			     enum dma_data_direction dir, unsigned long attrs)
{
	unsigned long head = dma_addr & VDUSE_BOUNCE_MAP_MASK;
	u64 iova = dma_addr - head;
	unsigned long nslots;

	if (!vduse_domain_in_bounce(domain, dma_addr, size))
		return;
	nslots = DIV_ROUND_UP(head + size, VDUSE_BOUNCE_MAP_SIZE);

	read_lock(&domain->bounce_lock);
	if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) &&
	    (dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL))
		vduse_domain_bounce(domain, dma_addr, size, false);
	vduse_domain_put_slots(domain, iova, nslots);
	read_unlock(&domain->bounce_lock);

	free_iova_fast(&domain->stream_iovad,
		       iova >> VDUSE_BOUNCE_MAP_SHIFT, nslots);
}

/**
 * vduse_domain_sync_single_for_cpu() - make device writes visible
 * @domain: the domain
 * @dma_addr: first IOVA to synchronise
 * @size: number of bytes
 * @dir: DMA direction of the mapping
 *
 * Copies bounce data into the buffer for DMA_FROM_DEVICE and
 * DMA_BIDIRECTIONAL mappings.
 */
void vduse_domain_sync_single_for_cpu(struct vduse_iova_domain *domain,
				      dma_addr_t dma_addr, size_t size,
				      enum dma_data_direction dir)
{
	if (dir != DMA_FROM_DEVICE && dir != DMA_BIDIRECTIONAL)
		return;
	if (!vduse_domain_in_bounce(domain, dma_addr, size))
		return;

	read_lock(&domain->bounce_lock);
	vduse_domain_bounce(domain, dma_addr, size, false);
	read_unlock(&domain->bounce_lock);
}

/**
 * vduse_domain_sync_single_for_device() - make CPU writes visible
 * @domain: the domain
 * @dma_addr: first IOVA to synchronise
 * @size: number of bytes
 * @dir: DMA direction of the mapping
 *
 * Copies the buffer into the bounce area for DMA_TO_DEVICE and
 * DMA_BIDIRECTIONAL mappings.
 */
void vduse_domain_sync_single_for_device(struct vduse_iova_domain *domain,
					 dma_addr_t dma_addr, size_t size,
					 enum dma_data_direction dir)
{
	if (dir != DMA_TO_DEVICE && dir != DMA_BIDIRECTIONAL)
		return;
	if (!vduse_domain_in_bounce(domain, dma_addr, size))
		return;

	read_lock(&domain->bounce_lock);
	vduse_domain_bounce(domain, dma_addr, size, true);
	read_unlock(&domain->bounce_lock);
}

/**
 * vduse_domain_need_sync() - does an IOVA belong to a bounced mapping?
 * @domain: the domain
 * @dma_addr: the IOVA
 *
 * Return: true for IOVAs of the bounce area.
 */
bool vduse_domain_need_sync(struct vduse_iova_domain *domain,
			    dma_addr_t dma_addr)
{
	return dma_addr < domain->bounce_size;
}

/**
 * vduse_domain_bounce_size() - size of the bounce area
 * @domain: the domain
 *
 * Return: the size in bytes.  Streaming maps that large do not fit: see
 * vduse_domain_max_map_size().
 */
size_t vduse_domain_bounce_size(struct vduse_iova_domain *domain)
{
	return domain->bounce_size;
}

/*
 * alloc_iova_fast() rounds ranges shorter than this many granules up to a
 * power of two, so that they can go through its per-CPU caches.
 */
#define VDUSE_IOVA_ROUNDED_SLOTS	32

/**
 * vduse_domain_max_map() - largest streaming map of an empty bounce area
 * @nslots: size of the bounce area in 4 KiB slots
 *
 * alloc_iova_fast() aligns a range of n slots on roundup_pow_of_two(n)
 * (and makes it that long when n < VDUSE_IOVA_ROUNDED_SLOTS), below the
 * end of the area, and slot 0 is never handed out.  With pow the largest
 * power of two not above @nslots, the longest range is therefore the tail
 * [pow, @nslots) when it is longer than pow / 2 and not rounded up, else
 * [pow / 2, pow): a range one slot longer could only start at slot 0.  A
 * buffer that does not start on a slot boundary takes one slot more than
 * its length.
 *
 * Return: the largest multiple of 4 KiB that always maps, in bytes.
 */
static size_t vduse_domain_max_map(unsigned long nslots)
{
	unsigned long pow, tail, n;

	if (!nslots)
		return 0;
	pow = rounddown_pow_of_two(nslots);
	tail = nslots - pow;
	if (tail > pow / 2 && tail >= VDUSE_IOVA_ROUNDED_SLOTS)
		n = tail;
	else
		n = pow / 2;
	return n ? (size_t)(n - 1) << VDUSE_BOUNCE_MAP_SHIFT : 0;
}

/**
 * vduse_domain_max_map_size() - largest streaming mapping that always fits
 * @domain: the domain
 *
 * The largest multiple of 4 KiB that vduse_domain_map_page() maps in an
 * otherwise empty domain whatever the offset of the buffer: IOVA ranges
 * are aligned on a power of two and slot 0 is never used, so about half
 * the bounce area, less the slot that a buffer which does not start on a
 * slot boundary spills into.  0 when the bounce area has fewer than four
 * slots.  This is the maximum mapping size the map ops report.
 *
 * Return: the size in bytes.
 */
size_t vduse_domain_max_map_size(struct vduse_iova_domain *domain)
{
	return domain->max_map_size;
}

/* ------------------------------------------------------------------ */
/* Coherent memory                                                     */
/* ------------------------------------------------------------------ */

/**
 * vduse_domain_alloc_coherent() - allocate memory shared with the device
 * @domain: the domain
 * @size: size in bytes
 * @dma_addr: returns the IOVA
 * @gfp: allocation flags
 *
 * The zeroed pages get an IOVA above the bounce area and an IOTLB entry
 * backed by the domain file at file offset == IOVA, so the daemon reaches
 * them through the domain mmap.
 *
 * Return: the kernel address, or NULL.
 */
void *vduse_domain_alloc_coherent(struct vduse_iova_domain *domain,
				  size_t size, dma_addr_t *dma_addr,
				  gfp_t gfp)
{
	unsigned long npages = PAGE_ALIGN(size) >> PAGE_SHIFT;
	unsigned long flags, pfn;
	void *vaddr;
	u64 iova;
	int ret;

	if (!size)
		return NULL;
	pfn = alloc_iova_fast(&domain->coherent_iovad, npages,
			      domain->coherent_limit_pfn, true);
	if (!pfn)
		return NULL;
	iova = (u64)pfn << PAGE_SHIFT;

	vaddr = alloc_pages_exact(npages << PAGE_SHIFT, gfp | __GFP_ZERO);
	if (!vaddr)
		goto err_iova;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	/*
	 * The entry ends where the allocation does, not at its page end:
	 * IOTLB_GET_FD reports the region the driver asked for.
	 */
	ret = vduse_domain_add_own_entry(domain, iova, iova + size - 1,
					 virt_to_phys(vaddr));
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);
	if (ret)
		goto err_pages;

	*dma_addr = iova;
	return vaddr;

err_pages:
	free_pages_exact(vaddr, npages << PAGE_SHIFT);
err_iova:
	free_iova_fast(&domain->coherent_iovad, pfn, npages);
	return NULL;
}

/**
 * vduse_domain_free_coherent() - free memory from alloc_coherent
 * @domain: the domain
 * @size: size given at allocation
 * @vaddr: kernel address returned at allocation
 * @dma_addr: IOVA returned at allocation
 *
 * Pages still mapped by the daemon stay alive until it unmaps them.
 */
void vduse_domain_free_coherent(struct vduse_iova_domain *domain,
				size_t size, void *vaddr, dma_addr_t dma_addr)
{
	unsigned long npages = PAGE_ALIGN(size) >> PAGE_SHIFT;
	struct vhost_iotlb_map *map;
	unsigned long flags;
	bool found = false;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	for (map = vhost_iotlb_itree_first(domain->iotlb, dma_addr, dma_addr);
	     map; map = vhost_iotlb_itree_next(map, dma_addr, dma_addr)) {
		struct vduse_domain_map_file *mf = map->opaque;

		if (mf && !mf->file && map->start == dma_addr &&
		    map->addr == virt_to_phys(vaddr)) {
			vduse_domain_del_entry(domain, map);
			found = true;
			break;
		}
	}
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);

	/* Never free what this domain did not hand out. */
	if (!found)
		return;
	free_pages_exact(vaddr, npages << PAGE_SHIFT);
	free_iova_fast(&domain->coherent_iovad, dma_addr >> PAGE_SHIFT, npages);
}

/**
 * vduse_domain_coherent_va() - kernel address of coherent memory
 * @domain: the domain
 * @iova: first IOVA
 * @size: length in bytes
 *
 * For the kernel's own look at a ring it allocated through
 * vduse_domain_alloc_coherent(): the range must lie inside one allocation.
 * The address stays valid until the driver frees that allocation.
 *
 * Return: the kernel address of @iova, or NULL.
 */
void *vduse_domain_coherent_va(struct vduse_iova_domain *domain, u64 iova,
			       size_t size)
{
	struct vhost_iotlb_map *map;
	unsigned long flags;
	void *va = NULL;

	if (!size || iova + size - 1 < iova)
		return NULL;
	spin_lock_irqsave(&domain->iotlb_lock, flags);
	map = vhost_iotlb_itree_first(domain->iotlb, iova, iova);
	for (; map; map = vhost_iotlb_itree_next(map, iova, iova)) {
		struct vduse_domain_map_file *mf = map->opaque;

		/* Not the bounce area's entry: its pages are not at addr. */
		if (mf && !mf->file && map->start >= domain->bounce_size &&
		    iova + size - 1 <= map->last) {
			va = phys_to_virt(map->addr + (iova - map->start));
			break;
		}
	}
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);
	return va;
}

/**
 * vduse_domain_rw() - read or write what the device sees at an IOVA
 * @domain: the domain
 * @iova: first IOVA
 * @buf: kernel buffer
 * @len: length in bytes
 * @write: copy @buf to the device's view instead of from it
 *
 * The kernel acting as the device (failing the requests of a daemon that
 * is gone): streaming mappings are reached through their bounce pages,
 * which the driver's unmap copies back, coherent memory directly.  Safe
 * in atomic context.
 *
 * Return: 0, or -EFAULT if part of the range has no kernel backing.
 */
int vduse_domain_rw(struct vduse_iova_domain *domain, u64 iova, void *buf,
		    size_t len, bool write)
{
	while (len) {
		size_t n = min_t(size_t, len, PAGE_SIZE - offset_in_page(iova));
		struct page *page = NULL;
		void *va;

		if (vduse_domain_in_bounce(domain, iova, n)) {
			read_lock(&domain->bounce_lock);
			page = vduse_domain_bounce_page(domain, iova);
			if (page) {
				va = kmap_local_page(page);
				if (write)
					memcpy(va + offset_in_page(iova), buf, n);
				else
					memcpy(buf, va + offset_in_page(iova), n);
				kunmap_local(va);
			}
			read_unlock(&domain->bounce_lock);
			if (!page)
				return -EFAULT;
		} else {
			va = vduse_domain_coherent_va(domain, iova, n);
			if (!va)
				return -EFAULT;
			if (write)
				memcpy(va, buf, n);
			else
				memcpy(buf, va, n);
		}
		iova += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* User memory as bounce area (umem)                                  */
/* ------------------------------------------------------------------ */

/*
 * Copy the in-flight slots between kernel and user bounce pages.
 * bounce_lock held for writing.
 */
static void vduse_domain_move_inflight(struct vduse_iova_domain *domain,
				       struct page **upages, bool to_user)
{
	unsigned long nslots = domain->bounce_size >> VDUSE_BOUNCE_MAP_SHIFT;
	unsigned long slot;

	for (slot = 0; slot < nslots; slot++) {
		u64 iova = (u64)slot << VDUSE_BOUNCE_MAP_SHIFT;
		unsigned long idx = iova >> PAGE_SHIFT;
		unsigned int off = offset_in_page(iova);
		struct page *kpage = domain->kpages[idx];
		void *src, *dst;

		if (domain->slot_orig[slot] == INVALID_PHYS_ADDR || !kpage)
			continue;
		src = kmap_local_page(to_user ? kpage : upages[idx]);
		dst = kmap_local_page(to_user ? upages[idx] : kpage);
		memcpy(dst + off, src + off, VDUSE_BOUNCE_MAP_SIZE);
		kunmap_local(dst);
		kunmap_local(src);
	}
}

/*
 * Before handing bounce data back to kernel pages, make sure every
 * in-flight slot has one.  bounce_lock held for writing.
 */
static int vduse_domain_fill_kpages(struct vduse_iova_domain *domain)
{
	unsigned long nslots = domain->bounce_size >> VDUSE_BOUNCE_MAP_SHIFT;
	unsigned long slot;
	int ret = 0;

	for (slot = 0; slot < nslots; slot++) {
		unsigned long idx = slot >> (PAGE_SHIFT - VDUSE_BOUNCE_MAP_SHIFT);

		if (domain->slot_orig[slot] == INVALID_PHYS_ADDR ||
		    domain->kpages[idx])
			continue;
		domain->kpages[idx] = alloc_page(GFP_ATOMIC | __GFP_ZERO |
						 __GFP_NOWARN);
		if (domain->kpages[idx])
			atomic_long_inc(&domain->nr_kpages);
		else
			ret = -ENOMEM;
	}
	return ret;
}

/* Give the bounce area back to kernel pages.  umem_mutex held. */
static int vduse_domain_umem_release(struct vduse_iova_domain *domain,
				     bool force)
{
	struct vduse_umem *umem = domain->umem;
	unsigned long flags;

	write_lock_irqsave(&domain->bounce_lock, flags);
	if (vduse_domain_fill_kpages(domain) && !force) {
		write_unlock_irqrestore(&domain->bounce_lock, flags);
		return -ENOMEM;
	}
	vduse_domain_move_inflight(domain, umem->pages, false);
	domain->umem = NULL;
	write_unlock_irqrestore(&domain->bounce_lock, flags);

	unpin_user_pages_dirty_lock(umem->pages, umem->npages, true);
	atomic64_sub(umem->npages, &umem->mm->pinned_vm);
	mmdrop(umem->mm);
	kvfree(umem->pages);
	kfree(umem);
	return 0;
}

/* Pin @npages user pages at @uaddr, charged to RLIMIT_MEMLOCK. */
static int vduse_domain_pin_umem(struct vduse_umem *umem, u64 uaddr)
{
	struct mm_struct *mm = current->mm;
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	long pinned;
	int ret = 0;

	mmap_read_lock(mm);
	if (umem->npages + atomic64_read(&mm->pinned_vm) > limit) {
		ret = -ENOMEM;
		goto out;
	}
	pinned = pin_user_pages(uaddr, umem->npages,
				FOLL_LONGTERM | FOLL_WRITE, umem->pages);
	if (pinned != umem->npages) {
		if (pinned > 0)
			unpin_user_pages(umem->pages, pinned);
		ret = -ENOMEM;
		goto out;
	}
	atomic64_add(umem->npages, &mm->pinned_vm);
	mmgrab(mm);
	umem->mm = mm;
out:
	mmap_read_unlock(mm);
	return ret;
}

/**
 * vduse_domain_reg_umem() - back the bounce area with user memory
 * @domain: the domain
 * @uaddr: page-aligned user address
 * @iova: must be 0
 * @size: must equal the bounce size
 *
 * The bounce area must already be in use (mapped into the IOTLB).  The
 * pages are pinned long-term and charged to RLIMIT_MEMLOCK through
 * mm->pinned_vm; in-flight bounce data moves into them.
 *
 * Return: 0, -EINVAL for bad arguments or an unused bounce area, -EEXIST
 * if user memory is already registered, -ENOMEM if the pages cannot be
 * pinned or the memlock limit would be exceeded.
 */
int vduse_domain_reg_umem(struct vduse_iova_domain *domain,
			  u64 uaddr, u64 iova, u64 size)
{
	struct vduse_umem *umem;
	unsigned long flags;
	int ret;

	if (iova || size != domain->bounce_size || !PAGE_ALIGNED(uaddr) ||
	    uaddr + size < uaddr)
		return -EINVAL;

	mutex_lock(&domain->umem_mutex);
	ret = -EEXIST;
	if (domain->umem)
		goto unlock;
	ret = -EINVAL;
	/* Pairs with vduse_domain_map_bounce(). */
	if (!smp_load_acquire(&domain->bounce_mapped))
		goto unlock;

	ret = -ENOMEM;
	umem = kzalloc_obj(*umem, GFP_KERNEL);
	if (!umem)
		goto unlock;
	umem->npages = size >> PAGE_SHIFT;
	umem->pages = kvcalloc(umem->npages, sizeof(*umem->pages),
			       GFP_KERNEL);
	if (!umem->pages)
		goto free_umem;

	ret = vduse_domain_pin_umem(umem, uaddr);
	if (ret)
		goto free_pages;

	write_lock_irqsave(&domain->bounce_lock, flags);
	vduse_domain_move_inflight(domain, umem->pages, true);
	domain->umem = umem;
	write_unlock_irqrestore(&domain->bounce_lock, flags);
	mutex_unlock(&domain->umem_mutex);
	return 0;

free_pages:
	kvfree(umem->pages);
free_umem:
	kfree(umem);
unlock:
	mutex_unlock(&domain->umem_mutex);
	return ret;
}

/**
 * vduse_domain_dereg_umem() - return the bounce area to kernel pages
 * @domain: the domain
 * @iova: must be 0
 * @size: must equal the bounce size
 *
 * Return: 0, -EINVAL for bad arguments, -ENOENT if nothing is registered,
 * -ENOMEM if kernel pages for in-flight data cannot be allocated.
 */
int vduse_domain_dereg_umem(struct vduse_iova_domain *domain,
			    u64 iova, u64 size)
{
	int ret = -ENOENT;

	if (iova || size != domain->bounce_size)
		return -EINVAL;

	mutex_lock(&domain->umem_mutex);
	if (domain->umem)
		ret = vduse_domain_umem_release(domain, false);
	mutex_unlock(&domain->umem_mutex);

	return ret;
}

/**
 * vduse_domain_drop_umem() - unconditionally drop registered user memory
 * @domain: the domain
 *
 * Used when the daemon goes away.  In-flight data that cannot be moved
 * back to kernel pages (no memory) is lost, never read from freed pages.
 */
void vduse_domain_drop_umem(struct vduse_iova_domain *domain)
{
	mutex_lock(&domain->umem_mutex);
	if (domain->umem)
		vduse_domain_umem_release(domain, true);
	mutex_unlock(&domain->umem_mutex);
}

/* ------------------------------------------------------------------ */
/* The domain file                                                     */
/* ------------------------------------------------------------------ */

/*
 * Is @page, locked by the caller, still the kernel bounce page at index
 * @idx, with no reclaim running and no umem in its place?  A reclaim
 * cannot start on it while it is locked: then it may be mapped.
 */
static bool vduse_domain_kpage_current(struct vduse_iova_domain *domain,
				       unsigned long idx, struct page *page)
{
	bool ok;

	read_lock(&domain->bounce_lock);
	ok = !domain->reclaiming && !domain->umem &&
	     domain->kpages[idx] == page;
	read_unlock(&domain->bounce_lock);
	return ok;
}

/*
 * Give the daemon's mmap the kernel bounce page at @iova, referenced and
 * locked: the lock, held until the PTE is in, is what a reclaim waits on
 * (see the top of this file).  User memory, once registered, is reached
 * through umem, not here.
 */
static vm_fault_t vduse_domain_fault_bounce(struct vduse_iova_domain *domain,
					    u64 iova, struct vm_fault *vmf)
{
	unsigned long idx = iova >> PAGE_SHIFT;
	struct page *page;
	bool busy;

	for (;;) {
		if (wait_event_killable(domain->reclaim_wq,
					!READ_ONCE(domain->reclaiming)))
			return VM_FAULT_NOPAGE;	/* dying: do not map */
		page = NULL;
		read_lock(&domain->bounce_lock);
		busy = domain->reclaiming;
		if (!busy && !domain->umem) {
			page = READ_ONCE(domain->kpages[idx]);
			if (page)
				get_page(page);
		}
		read_unlock(&domain->bounce_lock);
		if (busy)
			continue;
		if (!page)
			return VM_FAULT_SIGBUS;

		lock_page(page);
		if (vduse_domain_kpage_current(domain, idx, page)) {
			vmf->page = page;
			return VM_FAULT_LOCKED;
		}
		unlock_page(page);
		put_page(page);
	}
}

/* Find the coherent page at @iova for the daemon's mmap, referenced. */
static struct page *vduse_domain_fault_page(struct vduse_iova_domain *domain,
					    u64 iova)
{
	struct vhost_iotlb_map *map;
	struct page *page = NULL;
	unsigned long flags;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	map = vhost_iotlb_itree_first(domain->iotlb, iova, iova);
	for (; map; map = vhost_iotlb_itree_next(map, iova, iova)) {
		struct vduse_domain_map_file *mf = map->opaque;

		if (mf && !mf->file) {
			page = pfn_to_page(PHYS_PFN(map->addr +
						    (iova - map->start)));
			get_page(page);
			break;
		}
	}
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);
	return page;
}

static vm_fault_t vduse_domain_mmap_fault(struct vm_fault *vmf)
{
	struct vduse_iova_domain *domain = vmf->vma->vm_private_data;
	u64 iova = (u64)vmf->pgoff << PAGE_SHIFT;
	struct page *page;

	if (!domain || iova > domain->iova_limit)
		return VM_FAULT_SIGBUS;
	if (iova < domain->bounce_size)
		return vduse_domain_fault_bounce(domain, iova, vmf);
	page = vduse_domain_fault_page(domain, iova);
	if (!page)
		return VM_FAULT_SIGBUS;
	vmf->page = page;
	return 0;
}

/* Is the page at @iova one the daemon may only read? */
static bool vduse_domain_readonly(struct vduse_iova_domain *domain, u64 iova)
{
	unsigned long flags;
	bool ret;

	spin_lock_irqsave(&domain->iotlb_lock, flags);
	ret = vhost_iotlb_itree_first(domain->readonly, iova,
				      iova + PAGE_SIZE - 1);
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);
	return ret;
}

/*
 * The daemon's shared writable mappings are write-notified: a page enters
 * them read-only, and the first write to it comes here.  Writes to a page
 * vduse_domain_protect() covers are refused with SIGBUS; others make the
 * page writable.  Return with the page locked until its PTE is writable:
 * for a bounce page that is what a reclaim waits on, as in the fault path.
 */
static vm_fault_t vduse_domain_mmap_mkwrite(struct vm_fault *vmf)
{
	struct vduse_iova_domain *domain = vmf->vma->vm_private_data;
	u64 iova = (u64)vmf->pgoff << PAGE_SHIFT;
	struct page *page = vmf->page;

	if (!domain || vduse_domain_readonly(domain, iova))
		return VM_FAULT_SIGBUS;
	if (iova >= domain->bounce_size) {
		lock_page(page);
		return VM_FAULT_LOCKED;
	}
	if (wait_event_killable(domain->reclaim_wq,
				!READ_ONCE(domain->reclaiming)))
		return VM_FAULT_NOPAGE;
	lock_page(page);
	if (vduse_domain_kpage_current(domain, iova >> PAGE_SHIFT, page))
		return VM_FAULT_LOCKED;
	unlock_page(page);
	/*
	 * With umem in place, a mapping of the kernel page left from before
	 * may not write.  A reclaimed page's PTE is zapped: the retry faults
	 * it anew.
	 */
	return READ_ONCE(domain->umem) ? VM_FAULT_SIGBUS : VM_FAULT_NOPAGE;
}

static const struct vm_operations_struct vduse_domain_vm_ops = {
	.fault = vduse_domain_mmap_fault,
	.page_mkwrite = vduse_domain_mmap_mkwrite,
};

/**
 * vduse_domain_protect() - let the daemon read but not write a range
 * @domain: the domain
 * @iova: first IOVA, page aligned
 * @size: bytes, a multiple of PAGE_SIZE
 *
 * Writes through the daemon's mappings of the domain file to the pages of
 * [@iova, @iova + @size) get SIGBUS from now on (a daemon has no business
 * writing what the driver reads back and trusts, such as a split ring's
 * descriptor table).  Mappings the daemon already has are zapped so that
 * they fault again, where the domain file has an inode of its own (see
 * @can_reclaim); before Linux 6.7 a writable mapping made earlier stays.
 * Sleeps.
 *
 * Return: 0, -ENOMEM, or -ENOSPC past 65536 ranges.
 */
int vduse_domain_protect(struct vduse_iova_domain *domain, u64 iova,
			 u64 size)
{
	unsigned long flags;
	int ret;

	if (!size)
		return 0;
	spin_lock_irqsave(&domain->iotlb_lock, flags);
	ret = vhost_iotlb_add_range(domain->readonly, iova, iova + size - 1,
				    0, VHOST_MAP_RO);
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);
	if (!ret && domain->can_reclaim)
		unmap_mapping_range(domain->file->f_mapping, iova, size, 0);
	return ret;
}

/**
 * vduse_domain_unprotect() - undo vduse_domain_protect()
 * @domain: the domain
 * @iova: first IOVA given to vduse_domain_protect()
 * @size: size given to vduse_domain_protect()
 *
 * Drops every protected range that intersects the given one.
 */
void vduse_domain_unprotect(struct vduse_iova_domain *domain, u64 iova,
			    u64 size)
{
	unsigned long flags;

	if (!size)
		return;
	spin_lock_irqsave(&domain->iotlb_lock, flags);
	vhost_iotlb_del_range(domain->readonly, iova, iova + size - 1);
	spin_unlock_irqrestore(&domain->iotlb_lock, flags);
}

/* Kernel-version dependent part of the mmap setup. */
static void vduse_domain_vma_init(struct vm_area_struct *vma)
{
	vm_flags_set(vma, VM_DONTDUMP | VM_DONTEXPAND);
}

static int vduse_domain_mmap(struct file *file, struct vm_area_struct *vma)
{
	vduse_domain_vma_init(vma);
	vma->vm_private_data = file->private_data;
	vma->vm_ops = &vduse_domain_vm_ops;
	return 0;
}

/* Free a domain and everything it owns. */
static void vduse_domain_free(struct vduse_iova_domain *domain)
{
	struct vhost_iotlb_map *map, *tmp;
	unsigned long i;

	cancel_delayed_work_sync(&domain->reclaim_work);
	if (domain->iotlb) {
		list_for_each_entry_safe(map, tmp, &domain->iotlb->list, link)
			vduse_domain_del_entry(domain, map);
		vhost_iotlb_free(domain->iotlb);
	}
	put_iova_domain(&domain->coherent_iovad);
	put_iova_domain(&domain->stream_iovad);
	if (domain->kpages) {
		for (i = 0; i < domain->bounce_size >> PAGE_SHIFT; i++)
			if (domain->kpages[i])
				put_page(domain->kpages[i]);
	}
	if (domain->readonly)
		vhost_iotlb_free(domain->readonly);
	kvfree(domain->kpages);
	kvfree(domain->slot_orig);
	bitmap_free(domain->reclaim_map);
	mutex_destroy(&domain->umem_mutex);
	kfree(domain);
}

static int vduse_domain_release(struct inode *inode, struct file *file)
{
	struct vduse_iova_domain *domain = file->private_data;

	/* The device dropped umem before its last reference went away. */
	vduse_domain_drop_umem(domain);
	vduse_domain_free(domain);
	return 0;
}

static const struct file_operations vduse_domain_fops = {
	.owner = THIS_MODULE,
	.mmap = vduse_domain_mmap,
	.release = vduse_domain_release,
};

/**
 * vduse_domain_create() - create the memory of one address space
 * @iova_limit: last usable IOVA; must lie above the bounce area
 * @bounce_size: size of the bounce area, a non-zero multiple of PAGE_SIZE
 * @iotlb_limit: maximum number of IOTLB entries
 *
 * Return: the domain, or an ERR_PTR().
 */
struct vduse_iova_domain *vduse_domain_create(u64 iova_limit,
					      size_t bounce_size,
					      unsigned int iotlb_limit)
{
	struct vduse_iova_domain *domain;
	unsigned long nslots, i;
	struct file *file;
	int ret = -ENOMEM;

	if (!bounce_size || !PAGE_ALIGNED(bounce_size) || !iotlb_limit ||
	    bounce_size - 1 >= iova_limit)
		return ERR_PTR(-EINVAL);

	domain = kzalloc_obj(*domain, GFP_KERNEL);
	if (!domain)
		return ERR_PTR(-ENOMEM);
	domain->iova_limit = iova_limit;
	domain->bounce_size = bounce_size;
	domain->max_map_size = vduse_domain_max_map(bounce_size >>
						    VDUSE_BOUNCE_MAP_SHIFT);
	spin_lock_init(&domain->iotlb_lock);
	rwlock_init(&domain->bounce_lock);
	mutex_init(&domain->umem_mutex);
	init_waitqueue_head(&domain->reclaim_wq);
	INIT_DELAYED_WORK(&domain->reclaim_work, vduse_domain_reclaim_work);

	/* Both allocators must be initialised before any error path. */
	init_iova_domain(&domain->stream_iovad, VDUSE_BOUNCE_MAP_SIZE, 1);
	domain->stream_limit_pfn = (bounce_size - 1) >> VDUSE_BOUNCE_MAP_SHIFT;
	/*
	 * The coherent allocator counts in PAGE_SIZE frames, so its first
	 * frame is expressed in PAGE_SIZE units too: coherent IOVAs then
	 * start right after the bounce area and stay below iova_limit on
	 * every page size.
	 */
	init_iova_domain(&domain->coherent_iovad, PAGE_SIZE,
			 bounce_size >> PAGE_SHIFT);
	domain->coherent_limit_pfn = iova_limit >> PAGE_SHIFT;

	if (iova_domain_init_rcaches(&domain->stream_iovad) ||
	    iova_domain_init_rcaches(&domain->coherent_iovad))
		goto err;

	nslots = bounce_size >> VDUSE_BOUNCE_MAP_SHIFT;
	domain->slot_orig = kvmalloc_array(nslots, sizeof(*domain->slot_orig),
					   GFP_KERNEL);
	domain->kpages = kvcalloc(bounce_size >> PAGE_SHIFT,
				  sizeof(*domain->kpages), GFP_KERNEL);
	domain->iotlb = vhost_iotlb_alloc(iotlb_limit, 0);
	/* One range per virtqueue at most. */
	domain->readonly = vhost_iotlb_alloc(U16_MAX + 1, 0);
	domain->reclaim_map = bitmap_zalloc(bounce_size >> PAGE_SHIFT,
					    GFP_KERNEL);
	if (!domain->slot_orig || !domain->kpages || !domain->iotlb ||
	    !domain->readonly || !domain->reclaim_map)
		goto err;
	for (i = 0; i < nslots; i++)
		domain->slot_orig[i] = INVALID_PHYS_ADDR;

	/*
	 * An inode of its own lets a reclaim zap the daemon's mappings of
	 * idle bounce pages; without one (old kernels) the pages stay.
	 */
	file = anon_inode_create_getfile("[vduse-domain]", &vduse_domain_fops,
					 domain, O_RDWR, NULL);
	if (PTR_ERR_OR_ZERO(file) == -EOPNOTSUPP)
		file = anon_inode_getfile("[vduse-domain]", &vduse_domain_fops,
					  domain, O_RDWR);
	else if (!IS_ERR(file))
		domain->can_reclaim = true;
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err;
	}
	domain->file = file;
	return domain;

err:
	vduse_domain_free(domain);
	return ERR_PTR(ret);
}

/**
 * vduse_domain_destroy() - drop the device's reference to a domain
 * @domain: the domain
 *
 * Mappings installed by set_map are released at once; kernel memory stays
 * until the daemon closes its last fd or mapping of the domain file.
 */
void vduse_domain_destroy(struct vduse_iova_domain *domain)
{
	vduse_domain_clear_map(domain);
	vduse_domain_drop_umem(domain);
	fput(domain->file);
}

/**
 * vduse_domain_init() - module-wide setup of the IOVA allocator caches
 *
 * Return: 0 or a negative errno.
 */
int vduse_domain_init(void)
{
	return iova_cache_get();
}

/**
 * vduse_domain_exit() - undo vduse_domain_init()
 */
void vduse_domain_exit(void)
{
	iova_cache_put();
}
