// SPDX-License-Identifier: GPL-2.0
/*
 * Virtqueue rings, device side (virtio 1.x): split and packed layouts,
 * event index, indirect descriptors and the inflight log.
 *
 * Everything the driver shares with us is little-endian and may change
 * under our feet: index and flag fields are read and written with single
 * atomic accesses, descriptors are copied once before they are checked.
 *
 * Barriers, device side:
 *  - pop: read avail->idx (split) or the head's flags (packed), then an
 *    acquire fence, then the ring entry and the descriptors;
 *  - push: write the used element, a release fence, then used->idx
 *    (split) or the used descriptor's flags (packed);
 *  - notify decision and re-enabling kicks: a full fence between our
 *    stores and the loads of what the driver wrote (used_event, the
 *    driver's flags, avail->idx).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "vring.h"

#define VRING_MAX_NUM		32768

#define PACKED_F_AVAIL		(1 << VRING_PACKED_DESC_F_AVAIL)
#define PACKED_F_USED		(1 << VRING_PACKED_DESC_F_USED)
#define PACKED_EVENT_WRAP	(1 << VRING_PACKED_EVENT_F_WRAP_CTR)
#define PACKED_EVENT_FLAGS	0x3

/* Shared 16-bit fields: one access, converted from/to little endian. */
static inline uint16_t rd16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static inline void wr16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static inline void wr32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, htole32(v), __ATOMIC_RELAXED);
}

static inline void fence_acquire(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

static inline void fence_release(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void fence_full(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------------ */
/* Setup and state                                                      */

/*
 * Translate one ring area: it must be mapped in one piece, with the
 * alignment the spec asks for (which also keeps our accesses aligned).
 */
static int map_area(struct vdring *r, uint64_t iova, size_t size,
		    size_t align, bool write, void **out)
{
	uint64_t plen = 0;
	void *p;

	if (iova & (align - 1))
		return -EINVAL;
	p = r->xlate(r->xlate_opaque, iova, size, write, &plen);
	if (!p || plen < size || ((uintptr_t)p & (align - 1)))
		return -EFAULT;
	*out = p;
	return 0;
}

int vring_setup(struct vdring *r, unsigned int num, uint64_t features,
		uint64_t desc_iova, uint64_t driver_iova, uint64_t device_iova)
{
	bool packed = features & (1ULL << VIRTIO_F_RING_PACKED);
	void *desc, *drv, *dev;
	int ret;

	if (!r->xlate || !num || num > VRING_MAX_NUM)
		return -EINVAL;
	if (!packed && (num & (num - 1)))
		return -EINVAL;

	if (packed) {
		ret = map_area(r, desc_iova,
			       num * sizeof(struct vring_packed_desc), 16,
			       true, &desc);
		if (!ret)
			ret = map_area(r, driver_iova,
				       sizeof(struct vring_packed_desc_event),
				       4, false, &drv);
		if (!ret)
			ret = map_area(r, device_iova,
				       sizeof(struct vring_packed_desc_event),
				       4, true, &dev);
	} else {
		/* Both rings carry the event index field after the ring. */
		ret = map_area(r, desc_iova, num * sizeof(struct vring_desc),
			       16, false, &desc);
		if (!ret)
			ret = map_area(r, driver_iova,
				       sizeof(struct vring_avail) +
				       (num + 1) * sizeof(uint16_t),
				       2, false, &drv);
		if (!ret)
			ret = map_area(r, device_iova,
				       sizeof(struct vring_used) +
				       num * sizeof(struct vring_used_elem) +
				       sizeof(uint16_t), 4, true, &dev);
	}
	if (ret)
		return ret;
	if (packed && r->state_set &&
	    (r->packed_ring.last_avail_idx >= num ||
	     r->packed_ring.used_idx >= num))
		return -EINVAL;

	r->num = num;
	r->packed = packed;
	r->event_idx = features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	r->indirect = features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	r->broken = false;
	r->inflight = 0;
	r->signalled_valid = false;
	if (packed) {
		r->packed_ring.desc = desc;
		r->packed_ring.driver = drv;
		r->packed_ring.device = dev;
		if (!r->state_set) {
			/* A new packed ring starts with both counters at 1. */
			r->packed_ring.last_avail_idx = 0;
			r->packed_ring.avail_wrap = true;
			r->packed_ring.used_idx = 0;
			r->packed_ring.used_wrap = true;
		}
	} else {
		r->split.desc = desc;
		r->split.avail = drv;
		r->split.used = dev;
		r->split.used_idx = rd16(&r->split.used->idx);
	}
	return 0;
}

void vring_set_state(struct vdring *r, uint16_t avail_idx, bool avail_wrap,
		     uint16_t used_idx, bool used_wrap)
{
	/* The ring type may not be known yet: fill in both views. */
	r->split.last_avail_idx = avail_idx;
	r->packed_ring.last_avail_idx = avail_idx;
	r->packed_ring.avail_wrap = avail_wrap;
	r->packed_ring.used_idx = used_idx;
	r->packed_ring.used_wrap = used_wrap;
	r->state_set = true;
}

void vring_get_state(const struct vdring *r, uint16_t *avail_idx,
		     bool *avail_wrap, uint16_t *used_idx, bool *used_wrap)
{
	uint16_t ai, ui;
	bool aw, uw;

	if (r->packed) {
		ai = r->packed_ring.last_avail_idx;
		aw = r->packed_ring.avail_wrap;
		ui = r->packed_ring.used_idx;
		uw = r->packed_ring.used_wrap;
	} else {
		ai = r->split.last_avail_idx;
		ui = r->split.used_idx;
		aw = uw = false;
	}
	if (avail_idx)
		*avail_idx = ai;
	if (avail_wrap)
		*avail_wrap = aw;
	if (used_idx)
		*used_idx = ui;
	if (used_wrap)
		*used_wrap = uw;
}

/* ------------------------------------------------------------------ */
/* Descriptor chains                                                    */

/* Chain walk state shared by the split and packed parsers. */
struct chain {
	struct iovec *iov;
	unsigned int max_iov;
	unsigned int niov;
	unsigned int out_num;
	unsigned int in_num;
	bool seen_write;
};

/*
 * Add one buffer to the chain.  The translation may hand the buffer back
 * in pieces; each piece is an iovec and counts against max_iov.
 * Zero-length buffers add nothing but still obey the ordering rule.
 */
static int chain_add(struct vdring *r, struct chain *c, uint64_t addr,
		     uint32_t len, bool write)
{
	if (write) {
		c->seen_write = true;
	} else if (c->seen_write) {
		return -EINVAL;		/* readable after writable */
	}
	if (addr + len < addr)
		return -EFAULT;
	while (len) {
		uint64_t plen = 0;
		void *p;

		if (c->niov >= c->max_iov)
			return -EINVAL;
		p = r->xlate(r->xlate_opaque, addr, len, write, &plen);
		if (!p || !plen || plen > len)
			return -EFAULT;
		c->iov[c->niov].iov_base = p;
		c->iov[c->niov].iov_len = plen;
		c->niov++;
		if (write)
			c->in_num++;
		else
			c->out_num++;
		addr += plen;
		len -= (uint32_t)plen;
	}
	return 0;
}

/*
 * Translate an indirect table.  It is read in place, so it must be
 * mapped in one piece; it is copied entry by entry (memcpy), so it needs
 * no particular alignment.
 */
static int map_indirect(struct vdring *r, uint64_t addr, uint32_t len,
			const uint8_t **table, unsigned int *n)
{
	uint64_t plen = 0;
	void *p;

	if (!len || len % 16)
		return -EINVAL;
	if (addr + len < addr)
		return -EFAULT;
	p = r->xlate(r->xlate_opaque, addr, len, false, &plen);
	if (!p || plen < len)
		return -EFAULT;
	*table = p;
	*n = len / 16;
	return 0;
}

/*
 * Walk the split chain starting at @head (already checked < num): the
 * descriptor table, or an indirect table reached from it.  A chain has
 * at most as many descriptors as its table; one more means a loop.
 */
static int split_read_chain(struct vdring *r, uint16_t head,
			    struct vring_elem *elem, struct iovec *iov,
			    unsigned int max_iov)
{
	const uint8_t *table = (const uint8_t *)r->split.desc;
	unsigned int table_num = r->num, i = head, seen = 0;
	struct chain c = { .iov = iov, .max_iov = max_iov };
	bool in_indirect = false;
	int ret;

	for (;;) {
		struct vring_desc d;
		uint16_t flags;
		uint32_t len;
		uint64_t addr;

		if (++seen > table_num)
			return -EINVAL;
		memcpy(&d, table + (size_t)i * sizeof(d), sizeof(d));
		addr = le64toh(d.addr);
		len = le32toh(d.len);
		flags = le16toh(d.flags);

		if (flags & VRING_DESC_F_INDIRECT) {
			if (!r->indirect || in_indirect ||
			    (flags & VRING_DESC_F_NEXT))
				return -EINVAL;
			ret = map_indirect(r, addr, len, &table, &table_num);
			if (ret)
				return ret;
			in_indirect = true;
			i = 0;
			seen = 0;
			continue;
		}
		ret = chain_add(r, &c, addr, len, flags & VRING_DESC_F_WRITE);
		if (ret)
			return ret;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		i = le16toh(d.next);
		if (i >= table_num)
			return -EINVAL;
	}
	elem->id = head;
	elem->ndesc = 1;
	elem->out_num = c.out_num;
	elem->in_num = c.in_num;
	return 0;
}

static int vring_fail(struct vdring *r, int err)
{
	r->broken = true;
	return err;
}

static int split_pop(struct vdring *r, struct vring_elem *elem,
		     struct iovec *iov, unsigned int max_iov)
{
	uint16_t last = r->split.last_avail_idx;
	uint16_t avail_idx, head;
	int ret;

	avail_idx = rd16(&r->split.avail->idx);
	if (avail_idx == last)
		return 0;
	if ((uint16_t)(avail_idx - last) > r->num)
		return vring_fail(r, -EINVAL);
	/* The entries and descriptors were written before avail->idx. */
	fence_acquire();

	head = rd16(&r->split.avail->ring[last & (r->num - 1)]);
	if (head >= r->num)
		return vring_fail(r, -EINVAL);
	ret = split_read_chain(r, head, elem, iov, max_iov);
	if (ret)
		return vring_fail(r, ret);

	/* In flight from now on: a crash past this point resubmits it. */
	if (r->log)
		__atomic_store_n(&r->log->inflight[head], 1, __ATOMIC_RELEASE);
	r->split.last_avail_idx = last + 1;
	r->inflight++;
	return 1;
}

static bool packed_is_avail(uint16_t flags, bool wrap)
{
	return !!(flags & PACKED_F_AVAIL) == wrap &&
	       !!(flags & PACKED_F_USED) != wrap;
}

/* Every entry of a packed indirect table is used, in order. */
static int packed_read_indirect(struct vdring *r, struct chain *c,
				uint64_t addr, uint32_t len)
{
	const uint8_t *table;
	unsigned int n, i;
	int ret;

	ret = map_indirect(r, addr, len, &table, &n);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		struct vring_packed_desc d;

		memcpy(&d, table + (size_t)i * sizeof(d), sizeof(d));
		/* Only WRITE is valid here; other flags are ignored. */
		ret = chain_add(r, c, le64toh(d.addr), le32toh(d.len),
				le16toh(d.flags) & VRING_DESC_F_WRITE);
		if (ret)
			return ret;
	}
	return 0;
}

static int packed_pop(struct vdring *r, struct vring_elem *elem,
		      struct iovec *iov, unsigned int max_iov)
{
	struct chain c = { .iov = iov, .max_iov = max_iov };
	uint16_t idx = r->packed_ring.last_avail_idx;
	bool wrap = r->packed_ring.avail_wrap;
	unsigned int ndesc = 0;
	uint16_t id = 0;
	int ret;

	if (!packed_is_avail(rd16(&r->packed_ring.desc[idx].flags), wrap))
		return 0;
	/* The chain was written before the head's flags. */
	fence_acquire();

	for (;;) {
		struct vring_packed_desc d;
		uint16_t flags;

		if (++ndesc > r->num)
			return vring_fail(r, -EINVAL);
		memcpy(&d, &r->packed_ring.desc[idx], sizeof(d));
		flags = le16toh(d.flags);
		id = le16toh(d.id);
		if (++idx == r->num) {
			idx = 0;
			wrap = !wrap;
		}
		if (flags & VRING_DESC_F_INDIRECT) {
			if (!r->indirect || (flags & VRING_DESC_F_NEXT))
				return vring_fail(r, -EINVAL);
			ret = packed_read_indirect(r, &c, le64toh(d.addr),
						   le32toh(d.len));
			if (ret)
				return vring_fail(r, ret);
			break;
		}
		ret = chain_add(r, &c, le64toh(d.addr), le32toh(d.len),
				flags & VRING_DESC_F_WRITE);
		if (ret)
			return vring_fail(r, ret);
		if (!(flags & VRING_DESC_F_NEXT))
			break;
	}
	/* The buffer id is the one of the chain's last descriptor. */
	elem->id = id;
	elem->ndesc = ndesc;
	elem->out_num = c.out_num;
	elem->in_num = c.in_num;
	r->packed_ring.last_avail_idx = idx;
	r->packed_ring.avail_wrap = wrap;
	r->inflight++;
	return 1;
}

int vring_pop(struct vdring *r, struct vring_elem *elem, struct iovec *iov,
	      unsigned int max_iov)
{
	if (r->broken)
		return -EIO;
	if (r->packed)
		return packed_pop(r, elem, iov, max_iov);
	return split_pop(r, elem, iov, max_iov);
}

bool vring_avail(struct vdring *r)
{
	if (r->broken)
		return false;
	if (r->packed)
		return packed_is_avail(rd16(&r->packed_ring.desc[
					r->packed_ring.last_avail_idx].flags),
				       r->packed_ring.avail_wrap);
	return rd16(&r->split.avail->idx) != r->split.last_avail_idx;
}

/* ------------------------------------------------------------------ */
/* Completions and notifications                                        */

/*
 * Split completion.  With a log the steps are, in this order:
 *  1. write the used element at used_idx;
 *  2. log->used_idx = used_idx + 1: "the element at used_idx is complete
 *     and being published";
 *  3. clear log->inflight[id];
 *  4. publish used->idx = used_idx + 1.
 * Recovery finishes steps 3 and 4 whenever it finds step 2 done and 4 not
 * (log->used_idx == used->idx + 1); otherwise every flag is exact.  The
 * flag is cleared before used->idx is published on purpose: once the
 * driver sees the completion it may reuse the head at once, we may pop it
 * again and set its flag, and a flag still set for the last published
 * element could then mean either case.
 */
static void split_push(struct vdring *r, uint16_t id, uint32_t len)
{
	uint16_t idx = r->split.used_idx;
	struct vring_used_elem *e = &r->split.used->ring[idx & (r->num - 1)];
	struct vring_log_vq *log = r->log;

	wr32(&e->id, id);
	wr32(&e->len, len);
	if (log) {
		__atomic_store_n(&log->used_idx, (uint16_t)(idx + 1),
				 __ATOMIC_RELEASE);
		if (id < log->num)
			__atomic_store_n(&log->inflight[id], 0,
					 __ATOMIC_RELEASE);
	}
	/* The element before the index that publishes it. */
	fence_release();
	wr16(&r->split.used->idx, idx + 1);
	r->split.used_idx = idx + 1;
}

static void packed_push(struct vdring *r, uint16_t id, uint16_t ndesc,
			uint32_t len)
{
	struct vring_packed_desc *d =
		&r->packed_ring.desc[r->packed_ring.used_idx];
	unsigned int next;
	uint16_t flags = 0;

	if (r->packed_ring.used_wrap)
		flags |= PACKED_F_AVAIL | PACKED_F_USED;
	if (len)
		flags |= VRING_DESC_F_WRITE;
	wr16(&d->id, id);
	wr32(&d->len, len);
	/* id and len before the flags that hand the slot back. */
	fence_release();
	wr16(&d->flags, flags);

	next = r->packed_ring.used_idx + (ndesc ? ndesc : 1);
	while (next >= r->num) {
		next -= r->num;
		r->packed_ring.used_wrap = !r->packed_ring.used_wrap;
	}
	r->packed_ring.used_idx = next;
}

void vring_push(struct vdring *r, uint16_t id, uint16_t ndesc, uint32_t len)
{
	if (r->packed)
		packed_push(r, id, ndesc, len);
	else
		split_push(r, id, len);
	if (r->inflight)
		r->inflight--;
}

/*
 * Split: without event index, the driver's NO_INTERRUPT flag decides;
 * with it, whether used_event lies in the range of used entries written
 * since the previous decision (old, new].
 */
static bool split_need_notify(struct vdring *r)
{
	uint16_t old = r->signalled_used, new = r->split.used_idx;
	bool valid = r->signalled_valid;

	r->signalled_used = new;
	r->signalled_valid = true;
	if (!r->event_idx)
		return !(rd16(&r->split.avail->flags) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return vring_need_event(rd16(&r->split.avail->ring[r->num]), new, old);
}

/*
 * Packed, VRING_PACKED_EVENT_FLAG_DESC: the driver wants an interrupt
 * when the device writes the used descriptor at (off, wrap).  Positions
 * are expressed relative to the start of the current lap of the used
 * index: those of the previous lap (other wrap counter) become negative,
 * so vring_need_event() sees the slots written since the last decision,
 * [old, new), even across the end of the ring.
 */
static bool packed_need_notify(struct vdring *r)
{
	const struct vring_packed_desc_event *e = r->packed_ring.driver;
	uint16_t flags = rd16(&e->flags) & PACKED_EVENT_FLAGS;
	uint16_t off_wrap = rd16(&e->off_wrap);
	uint16_t new = r->packed_ring.used_idx, old = r->signalled_used;
	bool wrap = r->packed_ring.used_wrap;
	bool valid = r->signalled_valid;
	uint16_t event;

	if (r->signalled_wrap != wrap)
		old -= r->num;
	r->signalled_used = new;
	r->signalled_wrap = wrap;
	r->signalled_valid = true;

	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	/* ENABLE, the reserved value, and DESC without event index. */
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !r->event_idx || !valid)
		return true;
	event = off_wrap & ~PACKED_EVENT_WRAP;
	if (!!(off_wrap & PACKED_EVENT_WRAP) != wrap)
		event -= r->num;
	return vring_need_event(event, new, old);
}

bool vring_need_notify(struct vdring *r)
{
	/* Our used entries before the driver's suppression fields. */
	fence_full();
	if (r->packed)
		return packed_need_notify(r);
	return split_need_notify(r);
}

bool vring_kick_enable(struct vdring *r, bool enable)
{
	if (r->packed) {
		wr16(&r->packed_ring.device->flags,
		     enable ? VRING_PACKED_EVENT_FLAG_ENABLE :
			      VRING_PACKED_EVENT_FLAG_DISABLE);
	} else if (r->event_idx) {
		/*
		 * Ask for a kick when the driver makes the next entry
		 * available.  Disabling needs no write: avail_event stays
		 * behind, so the driver does not kick again.
		 */
		if (enable)
			wr16((uint16_t *)&r->split.used->ring[r->num],
			     r->split.last_avail_idx);
	} else {
		uint16_t flags = rd16(&r->split.used->flags);

		if (enable)
			flags &= ~VRING_USED_F_NO_NOTIFY;
		else
			flags |= VRING_USED_F_NO_NOTIFY;
		wr16(&r->split.used->flags, flags);
	}
	if (!enable)
		return false;
	/* Our enable before the driver's index: one of us sees the other. */
	fence_full();
	return vring_avail(r);
}

/* ------------------------------------------------------------------ */
/* Inflight log                                                         */

int vring_log_init(struct vdring *r, struct vring_log_vq *log, bool fresh)
{
	uint16_t ring_used, log_used;
	unsigned int i, count = 0;

	if (r->packed || !r->split.used)
		return -EINVAL;
	ring_used = rd16(&r->split.used->idx);

	if (fresh) {
		/* The magic goes last: a log cut short is not valid. */
		__atomic_store_n(&log->magic, 0, __ATOMIC_RELEASE);
		memset(log->inflight, 0, r->num);
		log->num = r->num;
		log->used_idx = ring_used;
		__atomic_store_n(&log->magic, VRING_LOG_MAGIC,
				 __ATOMIC_RELEASE);
		r->split.used_idx = ring_used;
		r->log = log;
		return 0;
	}

	if (log->magic != VRING_LOG_MAGIC || log->num != r->num)
		return -EINVAL;
	log_used = __atomic_load_n(&log->used_idx, __ATOMIC_ACQUIRE);
	if (log_used == (uint16_t)(ring_used + 1)) {
		/*
		 * Died between steps 2 and 4 of split_push(): the element
		 * at ring_used is complete; clear its flag and publish it.
		 */
		struct vring_used_elem *e =
			&r->split.used->ring[ring_used & (r->num - 1)];
		uint32_t id = le32toh(__atomic_load_n(&e->id,
						      __ATOMIC_RELAXED));

		if (id >= r->num)
			return -EINVAL;
		__atomic_store_n(&log->inflight[id], 0, __ATOMIC_RELEASE);
		fence_release();
		wr16(&r->split.used->idx, log_used);
		ring_used = log_used;
	} else if (log_used != ring_used) {
		return -EINVAL;		/* not this ring's log */
	}

	for (i = 0; i < r->num; i++)
		if (log->inflight[i])
			count++;
	r->split.used_idx = ring_used;
	r->split.last_avail_idx = ring_used + count;
	r->inflight = count;
	r->log = log;
	return 0;
}

int vring_log_resubmit(struct vdring *r, unsigned int *cursor,
		       struct vring_elem *elem, struct iovec *iov,
		       unsigned int max_iov)
{
	unsigned int i;
	int ret;

	if (r->broken)
		return -EIO;
	if (!r->log || r->packed)
		return 0;
	for (i = *cursor; i < r->num; i++) {
		if (!r->log->inflight[i])
			continue;
		*cursor = i + 1;
		ret = split_read_chain(r, i, elem, iov, max_iov);
		if (ret)
			return vring_fail(r, ret);
		return 1;
	}
	*cursor = r->num;
	return 0;
}
