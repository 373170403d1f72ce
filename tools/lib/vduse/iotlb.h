/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's cache of one address space: IOTLB entries the kernel handed
 * out (VDUSE_IOTLB_GET_FD(2)) and this process mapped.  How an entry is
 * obtained is the caller's business (a fault callback), so the unit tests
 * drive the cache with plain memory; iotlb_map_fd() maps and inserts what
 * the kernel returned.
 *
 * Locking: @lock in struct vduse_as.  iotlb_translate() takes it for
 * reading and, on a miss, for writing around the fault callback;
 * iotlb_invalidate() and iotlb_reap() take it for writing; iotlb_insert(),
 * iotlb_map_fd() and iotlb_find() expect the caller to hold it.
 */
#ifndef LIBVDUSE_IOTLB_H
#define LIBVDUSE_IOTLB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * struct vduse_map - one IOTLB entry mapped into this process
 * @start: first IOVA
 * @last: last IOVA (inclusive)
 * @addr: address of @start in this process
 * @base: what mmap() returned (NULL: nothing to unmap)
 * @len: the mapping's length
 * @perm: VDUSE_ACCESS_* of the entry
 */
struct vduse_map {
	uint64_t start;
	uint64_t last;
	char *addr;
	void *base;
	size_t len;
	uint8_t perm;
};

/**
 * struct vduse_as - an address space as the daemon sees it
 * @lock: protects everything below
 * @maps: mapped entries, unordered
 * @nmaps: entries in @maps
 * @dead: entries dropped by iotlb_invalidate(), unmapped by iotlb_reap()
 *	once no request can still point into them
 * @ndead: entries in @dead
 * @umem: registered bounce memory, or NULL
 * @umem_size: its size
 * @umem_tried: a registration was attempted since the last reset
 */
struct vduse_as {
	pthread_rwlock_t lock;
	struct vduse_map *maps;
	unsigned int nmaps;
	struct vduse_map *dead;
	unsigned int ndead;
	void *umem;
	uint64_t umem_size;
	bool umem_tried;
};

/*
 * iotlb_fault_fn - find the entry covering @iova and iotlb_insert() it.
 * Called with the lock held for writing.  Returns 0 or -errno.
 */
typedef int (*iotlb_fault_fn)(void *ctx, struct vduse_as *as, uint64_t iova);

void iotlb_init(struct vduse_as *as);
void iotlb_fini(struct vduse_as *as);
int iotlb_insert(struct vduse_as *as, const struct vduse_map *m);
int iotlb_map_fd(struct vduse_as *as, struct vduse_map *m, int fd,
		 uint64_t offset);
struct vduse_map *iotlb_find(struct vduse_as *as, uint64_t iova);
void *iotlb_translate(struct vduse_as *as, uint64_t iova, uint64_t len,
		      bool write, uint64_t *plen, iotlb_fault_fn fault,
		      void *ctx);
void iotlb_invalidate(struct vduse_as *as, uint64_t start, uint64_t last);
void iotlb_reap(struct vduse_as *as);

#endif /* LIBVDUSE_IOTLB_H */
