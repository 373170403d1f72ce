/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VDUSE IOVA domain: the memory behind one device address space.
 *
 * A domain owns everything a VDUSE daemon may map: the bounce area used
 * for streaming DMA, coherent allocations, the IOTLB that describes which
 * file backs which IOVA range, and the anonymous "[vduse-domain]" file
 * through which the daemon mmaps kernel-owned memory.  It knows nothing
 * about virtqueues or messages.
 */
#ifndef _VDUSE_IOVA_DOMAIN_H
#define _VDUSE_IOVA_DOMAIN_H

#include <linux/bits.h>
#include <linux/dma-direction.h>
#include <linux/types.h>

struct file;
struct page;
struct vhost_iotlb;
struct vduse_iova_domain;

/* Streaming maps are bounced in 4 KiB units whatever PAGE_SIZE is. */
#define VDUSE_BOUNCE_MAP_SHIFT	12
#define VDUSE_BOUNCE_MAP_SIZE	BIT(VDUSE_BOUNCE_MAP_SHIFT)

/**
 * struct vduse_domain_region - one IOTLB entry as seen by the daemon
 * @start: first IOVA of the entry
 * @last: last IOVA of the entry (inclusive)
 * @offset: offset of @start inside @file
 * @perm: VHOST_MAP_* access rights
 * @file: referenced backing file; the caller must fput() it
 * @bounce: the entry is the domain's whole (initialised) bounce area
 */
struct vduse_domain_region {
	u64 start;
	u64 last;
	u64 offset;
	u32 perm;
	struct file *file;
	bool bounce;
};

int vduse_domain_init(void);
void vduse_domain_exit(void);

struct vduse_iova_domain *vduse_domain_create(u64 iova_limit,
					      size_t bounce_size,
					      unsigned int iotlb_limit);
void vduse_domain_destroy(struct vduse_iova_domain *domain);

size_t vduse_domain_bounce_size(struct vduse_iova_domain *domain);
unsigned long vduse_domain_bounce_pages(struct vduse_iova_domain *domain);
unsigned long vduse_domain_reclaim(struct vduse_iova_domain *domain);
size_t vduse_domain_max_map_size(struct vduse_iova_domain *domain);
void vduse_domain_reset_bounce_map(struct vduse_iova_domain *domain);

dma_addr_t vduse_domain_map_page(struct vduse_iova_domain *domain,
				 struct page *page, unsigned long offset,
				 size_t size, enum dma_data_direction dir,
				 unsigned long attrs);
void vduse_domain_unmap_page(struct vduse_iova_domain *domain,
			     dma_addr_t dma_addr, size_t size,
			     enum dma_data_direction dir, unsigned long attrs);
void vduse_domain_sync_single_for_cpu(struct vduse_iova_domain *domain,
				      dma_addr_t dma_addr, size_t size,
				      enum dma_data_direction dir);
void vduse_domain_sync_single_for_device(struct vduse_iova_domain *domain,
					 dma_addr_t dma_addr, size_t size,
					 enum dma_data_direction dir);
bool vduse_domain_need_sync(struct vduse_iova_domain *domain,
			    dma_addr_t dma_addr);

void *vduse_domain_alloc_coherent(struct vduse_iova_domain *domain,
				  size_t size, dma_addr_t *dma_addr,
				  gfp_t gfp);
void vduse_domain_free_coherent(struct vduse_iova_domain *domain,
				size_t size, void *vaddr, dma_addr_t dma_addr);

void *vduse_domain_coherent_va(struct vduse_iova_domain *domain, u64 iova,
			       size_t size);
int vduse_domain_rw(struct vduse_iova_domain *domain, u64 iova, void *buf,
		    size_t len, bool write);

int vduse_domain_set_map(struct vduse_iova_domain *domain,
			 struct vhost_iotlb *iotlb);
void vduse_domain_clear_map(struct vduse_iova_domain *domain);

int vduse_domain_find_region(struct vduse_iova_domain *domain,
			     u64 start, u64 last,
			     struct vduse_domain_region *region);

int vduse_domain_reg_umem(struct vduse_iova_domain *domain,
			  u64 uaddr, u64 iova, u64 size);
int vduse_domain_dereg_umem(struct vduse_iova_domain *domain,
			    u64 iova, u64 size);
void vduse_domain_drop_umem(struct vduse_iova_domain *domain);

int vduse_domain_protect(struct vduse_iova_domain *domain, u64 iova,
			 u64 size);
void vduse_domain_unprotect(struct vduse_iova_domain *domain, u64 iova,
			    u64 size);

#endif /* _VDUSE_IOVA_DOMAIN_H */
