// SPDX-License-Identifier: GPL-2.0
/*
 * libvduse: the per-address-space mapping cache (see iotlb.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <linux/vduse.h>

#include "iotlb.h"

static void map_release(struct vduse_map *m)
{
	if (m->base)
		munmap(m->base, m->len);
}

void iotlb_init(struct vduse_as *as)
{
	memset(as, 0, sizeof(*as));
	pthread_rwlock_init(&as->lock, NULL);
}

/* Unmap everything; nobody may use @as any more. */
void iotlb_fini(struct vduse_as *as)
{
	for (unsigned int i = 0; i < as->nmaps; i++)
		map_release(&as->maps[i]);
	free(as->maps);
	as->maps = NULL;
	as->nmaps = 0;
	iotlb_reap(as);
	if (as->umem)
		munmap(as->umem, as->umem_size);
	as->umem = NULL;
	pthread_rwlock_destroy(&as->lock);
}

int iotlb_insert(struct vduse_as *as, const struct vduse_map *m)
{
	struct vduse_map *maps;

	if (m->last < m->start)
		return -EINVAL;
	maps = realloc(as->maps, (as->nmaps + 1) * sizeof(*maps));
	if (!maps)
		return -ENOMEM;
	as->maps = maps;
	as->maps[as->nmaps++] = *m;
	return 0;
}

/**
 * iotlb_map_fd - map an entry the kernel handed out and insert it
 * @as: the address space, locked for writing (a fault callback's)
 * @m: in: @start, @last and @perm of the entry; out: the whole mapping
 * @fd: the file VDUSE_IOTLB_GET_FD(2) returned; the caller closes it
 * @offset: where @start lies in @fd
 *
 * The mapping starts at the page holding @offset and carries the entry's
 * permissions.
 *
 * Return: 0 or -errno.
 */
int iotlb_map_fd(struct vduse_as *as, struct vduse_map *m, int fd,
		 uint64_t offset)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t aligned = offset & ~(uint64_t)(page - 1);
	int ret, prot = 0;

	if (m->perm & VDUSE_ACCESS_RO)
		prot |= PROT_READ;
	if (m->perm & VDUSE_ACCESS_WO)
		prot |= PROT_WRITE;
	m->len = m->last - m->start + 1 + (offset - aligned);
	m->base = mmap(NULL, m->len, prot, MAP_SHARED, fd, aligned);
	if (m->base == MAP_FAILED)
		return -errno;
	m->addr = (char *)m->base + (offset - aligned);
	ret = iotlb_insert(as, m);
	if (ret)
		munmap(m->base, m->len);
	return ret;
}

struct vduse_map *iotlb_find(struct vduse_as *as, uint64_t iova)
{
	for (unsigned int i = 0; i < as->nmaps; i++)
		if (iova >= as->maps[i].start && iova <= as->maps[i].last)
			return &as->maps[i];
	return NULL;
}

/**
 * iotlb_translate - address of @iova in this process
 * @as: the address space
 * @iova: the IOVA
 * @len: bytes wanted from @iova on (> 0)
 * @write: the device will write there
 * @plen: out: bytes usable from the returned address (<= @len; fewer when
 *	the entry ends earlier)
 * @fault: called on a miss to bring the entry in
 * @ctx: its argument
 *
 * Return: the address, or NULL when the IOVA is not mapped or not with
 * the permission needed.
 */
void *iotlb_translate(struct vduse_as *as, uint64_t iova, uint64_t len,
		      bool write, uint64_t *plen, iotlb_fault_fn fault,
		      void *ctx)
{
	uint8_t need = write ? VDUSE_ACCESS_WO : VDUSE_ACCESS_RO;
	struct vduse_map *m;
	void *addr = NULL;

	pthread_rwlock_rdlock(&as->lock);
	m = iotlb_find(as, iova);
	if (!m) {
		pthread_rwlock_unlock(&as->lock);
		pthread_rwlock_wrlock(&as->lock);
		m = iotlb_find(as, iova);
		if (!m && fault && fault(ctx, as, iova) == 0)
			m = iotlb_find(as, iova);
	}
	if (m && (m->perm & need)) {
		/* 0 when the entry spans the whole 64-bit space */
		uint64_t avail = m->last - iova + 1;

		addr = m->addr + (iova - m->start);
		*plen = (avail == 0 || avail > len) ? len : avail;
	}
	pthread_rwlock_unlock(&as->lock);
	return addr;
}

/*
 * Drop the entries overlapping [start, last].  Their memory stays mapped in
 * the graveyard: a request in flight may still point into it.
 */
void iotlb_invalidate(struct vduse_as *as, uint64_t start, uint64_t last)
{
	unsigned int i = 0;

	pthread_rwlock_wrlock(&as->lock);
	while (i < as->nmaps) {
		struct vduse_map *m = &as->maps[i];
		struct vduse_map *dead;

		if (m->last < start || m->start > last) {
			i++;
			continue;
		}
		dead = realloc(as->dead, (as->ndead + 1) * sizeof(*dead));
		if (dead) {
			as->dead = dead;
			as->dead[as->ndead++] = *m;
		}
		/* Without memory for the graveyard the mapping leaks. */
		as->maps[i] = as->maps[--as->nmaps];
	}
	pthread_rwlock_unlock(&as->lock);
}

/* Unmap the graveyard; no request may point into it any more. */
void iotlb_reap(struct vduse_as *as)
{
	pthread_rwlock_wrlock(&as->lock);
	for (unsigned int i = 0; i < as->ndead; i++)
		map_release(&as->dead[i]);
	free(as->dead);
	as->dead = NULL;
	as->ndead = 0;
	pthread_rwlock_unlock(&as->lock);
}
