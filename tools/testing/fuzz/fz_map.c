// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_fuzz: IOTLB file descriptors and what a daemon does with them.
 *
 * VDUSE_IOTLB_GET_FD and GET_FD2 on IOVAs worth trying (0, the bounce
 * area, the rings VQ_GET_INFO reported, the regions vhost-vdpa mapped,
 * random ones), then mmap of the returned file with the right and wrong
 * offsets, lengths and protections, reads and writes of the mapping
 * (a SIGBUS there is expected: the bounce page may not exist), partial
 * munmap, mremap, madvise; umem registration; and system calls whose
 * argument buffer lies in such a mapping, so that the kernel faults on
 * its own domain file while it serves the call.
 */
#include <linux/vduse.h>
#include <linux/virtio_ids.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#define PAGE		4096UL
#define MAP_CAP		(16UL << 20)

static int map_slot(struct fz *f)
{
	int i = fz_below(&f->rng, FZ_MAP_SLOTS), k;

	for (k = 0; k < FZ_MAP_SLOTS; k++)
		if (!f->map[(i + k) % FZ_MAP_SLOTS].addr)
			return (i + k) % FZ_MAP_SLOTS;
	fz_map_drop(f, i);
	return i;
}

static int pick_map(struct fz *f)
{
	int i = fz_below(&f->rng, FZ_MAP_SLOTS), k;

	for (k = 0; k < FZ_MAP_SLOTS; k++)
		if (f->map[(i + k) % FZ_MAP_SLOTS].addr)
			return (i + k) % FZ_MAP_SLOTS;
	return -1;
}

/*
 * An IOVA worth looking up: one seen in use (a ring, a vhost mapping),
 * the first region the kernel reports from 0 or from such an IOVA, the
 * bounce area, or anything.
 */
static uint64_t pick_iova(struct fz *f, int slot, const struct fz_devinfo *d,
			  uint32_t asid)
{
	uint32_t k = fz_below(&f->rng, FZ_HINTS), i;
	struct vduse_iova_info info;
	uint64_t h = 0;

	for (i = 0; i < FZ_HINTS && !h; i++)
		h = d->hints[(k + i) % FZ_HINTS];
	if (fz_pct(&f->rng, 40)) {
		memset(&info, 0, sizeof(info));
		info.start = fz_pct(&f->rng, 50) ? 0 : h;
		info.last = ~0ULL;
		info.asid = asid;
		if (!fz_call(f, ioctl(f->dev[slot].fd, VDUSE_IOTLB_GET_INFO,
				      &info),
			     "dev[%d] IOTLB_GET_INFO asid %u [0x%llx, ~0]",
			     slot, asid, (unsigned long long)info.start)) {
			fz_log(f, "  region [0x%llx, 0x%llx] cap 0x%llx",
			       (unsigned long long)info.start,
			       (unsigned long long)info.last,
			       (unsigned long long)info.capability);
			return info.start;
		}
	}
	switch (fz_below(&f->rng, 10)) {
	case 0 ... 3:
		if (h)
			return h + (fz_pct(&f->rng, 70) ? 0 :
				    fz_below(&f->rng, 16) * PAGE);
		return 0;
	case 4 ... 6:
		return fz_pct(&f->rng, 50) ? 0 :
		       fz_below(&f->rng, 16384) * PAGE;
	default:
		return fz_u64(&f->rng);
	}
}

/* mmap the region an IOTLB fd describes, now and then wrongly. */
static void map_region(struct fz *f, int fd, int name, uint64_t offset,
		       uint64_t start, uint64_t last, uint8_t perm)
{
	uint64_t len = last - start + 1, off = offset & ~(PAGE - 1);
	int prot = 0, flags = MAP_SHARED, slot;
	void *p;

	if (!len || len > MAP_CAP)
		len = MAP_CAP;
	len += offset - off;
	len = (len + PAGE - 1) & ~(PAGE - 1);
	if (perm & VDUSE_ACCESS_RO)
		prot |= PROT_READ;
	if (perm & VDUSE_ACCESS_WO)
		prot |= PROT_WRITE;
	switch (fz_below(&f->rng, 20)) {
	case 0:
		off += fz_below(&f->rng, 64) * PAGE;
		break;
	case 1:
		off += 1 + fz_below(&f->rng, PAGE - 1);	/* EINVAL */
		break;
	case 2:
		len = 1UL << 30;
		break;
	case 3:
		prot = PROT_READ | PROT_WRITE;
		break;
	case 4:
		prot = PROT_READ | PROT_EXEC;
		break;
	case 5:
		flags = MAP_PRIVATE;
		break;
	}
	p = mmap(NULL, len, prot, flags, fd, off);
	if (fz_call(f, p == MAP_FAILED ? -1 : 0,
		    "mmap fd %d len 0x%llx prot %d flags %d offset 0x%llx -> %p",
		    fd, (unsigned long long)len, prot, flags,
		    (unsigned long long)off, p) < 0)
		return;
	fz_count(C_MAPS);
	pthread_mutex_lock(&f->lock);
	slot = map_slot(f);
	f->map[slot].addr = p;
	f->map[slot].len = len;
	f->map[slot].name = name;
	f->map[slot].writable = prot & PROT_WRITE;
	pthread_mutex_unlock(&f->lock);
}

static void op_iotlb_get_fd(struct fz *f)
{
	int slot = fz_dev_slot_driven(f), name;
	const struct fz_devinfo *d;
	uint64_t iova, last, offset;
	uint32_t asid;
	uint8_t perm;
	bool v2;
	long fd;

	if (slot < 0)
		return;
	d = fz_info(f, slot);
	name = f->dev[slot].name;
	v2 = fz_pct(&f->rng, d->api >= 1 ? 60 : 10);
	asid = v2 && fz_pct(&f->rng, 85) ? fz_below(&f->rng, d->nas) :
	       v2 ? fz_u32(&f->rng) : 0;
	iova = pick_iova(f, slot, d, asid);
	switch (fz_below(&f->rng, 10)) {
	case 0 ... 5:
		last = iova;
		break;
	case 6 ... 7:
		last = iova + 1;
		break;
	case 8:
		last = ~0ULL;
		break;
	default:
		last = fz_u64(&f->rng);
		break;
	}

	if (v2) {
		struct vduse_iotlb_entry_v2 e;
		void *p;

		memset(&e, 0, sizeof(e));
		e.start = iova;
		e.last = last;
		e.asid = asid;
		if (fz_pct(&f->rng, 3))
			e.reserved[fz_below(&f->rng, 11)] = 1;
		p = fz_argp(f, &e, sizeof(e));
		fd = fz_call(f, ioctl(f->dev[slot].fd, VDUSE_IOTLB_GET_FD2, p),
			     "dev[%d] IOTLB_GET_FD2 asid %u [0x%llx, 0x%llx]",
			     slot, e.asid, (unsigned long long)iova,
			     (unsigned long long)last);
		if (fd < 0 || p != &e) {
			if (fd >= 0)
				close(fd);
			return;
		}
		offset = e.offset;
		iova = e.start;
		last = e.last;
		perm = e.perm;
	} else {
		struct vduse_iotlb_entry e;
		void *p;

		memset(&e, 0, sizeof(e));
		e.start = iova;
		e.last = last;
		p = fz_argp(f, &e, sizeof(e));
		fd = fz_call(f, ioctl(f->dev[slot].fd, VDUSE_IOTLB_GET_FD, p),
			     "dev[%d] IOTLB_GET_FD [0x%llx, 0x%llx]", slot,
			     (unsigned long long)iova,
			     (unsigned long long)last);
		if (fd < 0 || p != &e) {
			if (fd >= 0)
				close(fd);
			return;
		}
		offset = e.offset;
		iova = e.start;
		last = e.last;
		perm = e.perm;
	}
	fz_count(C_FDS);
	fz_log(f, "  fd %ld: [0x%llx, 0x%llx] offset 0x%llx perm %u", fd,
	       (unsigned long long)iova, (unsigned long long)last,
	       (unsigned long long)offset, perm);
	fz_hint_add(name, iova);
	if (fz_pct(&f->rng, 80))
		map_region(f, fd, name, offset, iova, last, perm);
	if (fz_pct(&f->rng, 60))
		fz_file_put(f, fd);
	else
		close(fd);
}

static void op_munmap(struct fz *f)
{
	int slot = pick_map(f);
	struct fz_map *m;
	size_t page;

	if (slot < 0)
		return;
	m = &f->map[slot];
	switch (fz_below(&f->rng, 5)) {
	case 0:
		fz_call(f, munmap(m->addr, PAGE), "munmap map[%d] first page",
			slot);
		break;
	case 1:
		page = fz_below(&f->rng, m->len / PAGE);
		fz_call(f, munmap((char *)m->addr + page * PAGE, PAGE),
			"munmap map[%d] page %zu", slot, page);
		break;
	default:
		fz_log(f, "munmap map[%d] %p len 0x%zx", slot, m->addr, m->len);
		pthread_mutex_lock(&f->lock);
		fz_map_drop(f, slot);
		pthread_mutex_unlock(&f->lock);
		break;
	}
}

struct touch {
	unsigned char *p;
	size_t len;
	bool write;
	unsigned char data[64];
	unsigned int sum;
};

static void do_touch(void *arg)
{
	struct touch *t = arg;
	size_t i;

	if (t->write) {
		memcpy(t->p, t->data, t->len);
		return;
	}
	for (i = 0; i < t->len; i++)
		t->sum += ((volatile unsigned char *)t->p)[i];
}

static void op_touch(struct fz *f)
{
	int slot = pick_map(f), sig;
	struct fz_map *m;
	struct touch t;
	size_t off;

	if (slot < 0)
		return;
	m = &f->map[slot];
	off = (fz_pct(&f->rng, 50) ? 0 : fz_below(&f->rng, m->len / PAGE) * PAGE) +
	      fz_below(&f->rng, PAGE - 64);
	memset(&t, 0, sizeof(t));
	t.p = (unsigned char *)m->addr + off;
	t.len = 1 + fz_below(&f->rng, 64);
	t.write = m->writable && fz_pct(&f->rng, 30);
	fz_fill(&f->rng, t.data, sizeof(t.data));
	fz_count(C_TOUCHES);
	sig = fz_guarded(do_touch, &t);
	fz_log(f, "%s map[%d] +0x%zx len %zu = %s", t.write ? "write" : "read",
	       slot, off, t.len, sig ? strsignal(sig) : "ok");
}

static void op_map_misc(struct fz *f)
{
	int slot = pick_map(f);
	struct fz_map *m;
	void *p;

	if (slot < 0)
		return;
	m = &f->map[slot];
	switch (fz_below(&f->rng, 4)) {
	case 0:
		p = mremap(m->addr, m->len, m->len * 2, MREMAP_MAYMOVE);
		if (fz_call(f, p == MAP_FAILED ? -1 : 0,
			    "mremap map[%d] to 0x%zx", slot, m->len * 2) == 0) {
			m->addr = p;
			m->len *= 2;
		}
		break;
	case 1:
		fz_call(f, madvise(m->addr, m->len, MADV_DONTNEED),
			"madvise map[%d] DONTNEED", slot);
		break;
	case 2:
		fz_call(f, mprotect(m->addr, PAGE, PROT_READ | PROT_WRITE),
			"mprotect map[%d] rw", slot);
		break;
	default:
		fz_call(f, msync(m->addr, m->len, MS_SYNC | MS_INVALIDATE),
			"msync map[%d]", slot);
		break;
	}
}

static void op_file_close(struct fz *f)
{
	int i = fz_below(&f->rng, FZ_FILE_SLOTS);

	if (f->file[i] < 0)
		return;
	fz_call(f, close(f->file[i]), "close file[%d] fd %d", i, f->file[i]);
	pthread_mutex_lock(&f->lock);
	f->file[i] = -1;
	pthread_mutex_unlock(&f->lock);
}

static void op_umem(struct fz *f)
{
	int slot = fz_dev_slot_driven(f), mslot;
	const struct fz_devinfo *d;
	struct vduse_iova_umem u;
	struct vduse_iova_info info;
	uint64_t size = (1 + fz_below(&f->rng, 8)) << 20;
	void *buf;
	long r;

	if (slot < 0)
		return;
	d = fz_info(f, slot);
	memset(&u, 0, sizeof(u));
	u.asid = fz_pct(&f->rng, 90) ? fz_below(&f->rng, d->nas) : fz_u32(&f->rng);

	memset(&info, 0, sizeof(info));
	info.asid = u.asid;
	if (!fz_call(f, ioctl(f->dev[slot].fd, VDUSE_IOTLB_GET_INFO, &info),
		     "dev[%d] IOTLB_GET_INFO asid %u [0, 0]", slot, u.asid) &&
	    (info.capability & VDUSE_IOVA_CAP_UMEM))
		size = info.last + 1;
	if (size > (64UL << 20))
		size = 64UL << 20;
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return;
	u.uaddr = (uintptr_t)buf;
	u.size = size;
	switch (fz_below(&f->rng, 16)) {
	case 0:
		u.size += PAGE;
		break;
	case 1:
		u.uaddr += 1 + fz_below(&f->rng, PAGE - 1);
		break;
	case 2:
		u.iova = PAGE;
		break;
	case 3:
		u.reserved[fz_below(&f->rng, 5)] = 1;
		break;
	case 4:
		u.uaddr = fz_u64(&f->rng);
		break;
	}
	if (fz_pct(&f->rng, 15)) {
		fz_call(f, ioctl(f->dev[slot].fd, VDUSE_IOTLB_DEREG_UMEM, &u),
			"dev[%d] IOTLB_DEREG_UMEM asid %u size 0x%llx", slot,
			u.asid, (unsigned long long)u.size);
		munmap(buf, size);
		return;
	}
	r = fz_call(f, ioctl(f->dev[slot].fd, VDUSE_IOTLB_REG_UMEM,
			     fz_argp(f, &u, sizeof(u))),
		    "dev[%d] IOTLB_REG_UMEM asid %u uaddr 0x%llx size 0x%llx iova 0x%llx",
		    slot, u.asid, (unsigned long long)u.uaddr,
		    (unsigned long long)u.size, (unsigned long long)u.iova);
	if (r) {
		munmap(buf, size);
		return;
	}
	fz_count(C_UMEM);
	switch (fz_below(&f->rng, 5)) {
	case 0:
	case 1:
		fz_call(f, ioctl(f->dev[slot].fd, VDUSE_IOTLB_DEREG_UMEM, &u),
			"dev[%d] IOTLB_DEREG_UMEM asid %u", slot, u.asid);
		munmap(buf, size);
		break;
	case 2:
		/* Unmapped while registered: the pins keep the pages. */
		fz_log(f, "munmap the registered umem");
		munmap(buf, size);
		break;
	default:
		pthread_mutex_lock(&f->lock);
		mslot = map_slot(f);
		f->map[mslot].addr = buf;
		f->map[mslot].len = size;
		f->map[mslot].name = f->dev[slot].name;
		f->map[mslot].writable = true;
		pthread_mutex_unlock(&f->lock);
		break;
	}
}

struct put_arg {
	void *dst;
	const void *src;
	size_t len;
};

static void do_put(void *arg)
{
	struct put_arg *a = arg;

	memcpy(a->dst, a->src, a->len);
}

/* A system call whose buffer is in a mapping of an IOTLB file. */
static void op_arg_in_map(struct fz *f)
{
	int mslot = pick_map(f), slot = fz_dev_slot(f), sig;
	struct vduse_vq_info info;
	struct put_arg a;
	struct fz_map *m;
	unsigned char *p;
	long r;

	if (mslot < 0 || slot < 0)
		return;
	m = &f->map[mslot];
	p = (unsigned char *)m->addr +
	    fz_below(&f->rng, m->len / PAGE) * PAGE + fz_below(&f->rng, 64) * 8;
	memset(&info, 0, sizeof(info));
	info.index = fz_below(&f->rng, 4);
	switch (fz_below(&f->rng, 4)) {
	case 0:
		a.dst = p;
		a.src = &info;
		a.len = sizeof(info);
		sig = m->writable ? fz_guarded(do_put, &a) : 0;
		r = ioctl(f->dev[slot].fd, VDUSE_VQ_GET_INFO, p);
		fz_call(f, r, "dev[%d] VQ_GET_INFO into map[%d]%s", slot,
			mslot, sig ? " (store faulted)" : "");
		break;
	case 1:
		fz_call(f, read(f->dev[slot].fd, p, 152),
			"read dev[%d] into map[%d]", slot, mslot);
		break;
	case 2:
		fz_call(f, write(f->dev[slot].fd, p, 152),
			"write dev[%d] from map[%d]", slot, mslot);
		break;
	default:
		/* Whatever the mapping holds is written: not to a net device. */
		if (!fz_known_crashes && (!fz_info(f, slot)->exists ||
		    fz_info(f, slot)->device_id == VIRTIO_ID_NET))
			break;
		fz_call(f, ioctl(f->dev[slot].fd, VDUSE_DEV_SET_CONFIG, p),
			"dev[%d] SET_CONFIG from map[%d]", slot, mslot);
		break;
	}
}

const struct fz_op fz_map_ops[] = {
	{ "iotlb_get_fd", 12, op_iotlb_get_fd },
	{ "munmap", 4, op_munmap },
	{ "touch", 10, op_touch },
	{ "map_misc", 2, op_map_misc },
	{ "file_close", 3, op_file_close },
	{ "umem", 3, op_umem },
	{ "arg_in_map", 3, op_arg_in_map },
	{ NULL, 0, NULL },
};
