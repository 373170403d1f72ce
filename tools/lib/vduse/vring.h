/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Virtqueue rings as a device sees them: split and packed layouts, event
 * index, indirect descriptors, and the inflight log that lets a restarted
 * daemon resume.  Pure memory logic: addresses are translated through a
 * callback, so the unit tests drive it from a fake driver in one process.
 *
 * Locking: none inside.  The caller serialises every call on one ring
 * (libvduse holds the queue's lock).
 */
#ifndef LIBVDUSE_VRING_H
#define LIBVDUSE_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/**
 * typedef vring_xlate_fn - translate an IOVA range to a process address
 * @opaque: vring->xlate_opaque
 * @iova: start of the range
 * @len: its length in bytes (> 0)
 * @write: the device will write to the range
 * @plen: out: bytes available contiguously from the returned address
 *	(1 .. @len; may be less when the range crosses mappings)
 *
 * Return: the address, or NULL if @iova is not mapped with the needed
 * permission.
 */
typedef void *(*vring_xlate_fn)(void *opaque, uint64_t iova, uint64_t len,
				bool write, uint64_t *plen);

/**
 * struct vring_log_vq - per-queue inflight log, shared with a file
 * @magic: VRING_LOG_MAGIC once initialised
 * @num: ring size the log was laid out for
 * @used_idx: used index the device has published, or is publishing
 * @inflight: one byte per descriptor head: 1 while the request is in flight
 *
 * Split rings only.  Protocol: a request is in flight from the moment
 * vring_pop() sets inflight[head] (after reading the head from the avail
 * ring) until vring_push() clears it, which it does after writing the used
 * element and setting @used_idx, and before publishing used->idx (once
 * published, the driver may reuse the head at once).  A daemon that dies
 * between setting @used_idx and publishing finds @used_idx one ahead of
 * used->idx on restart: the element is complete, so recovery clears its
 * flag and publishes it.  Otherwise every flag is exact.
 */
struct vring_log_vq {
	uint32_t magic;
	uint16_t num;
	uint16_t used_idx;
	uint8_t inflight[];
};

#define VRING_LOG_MAGIC 0x76647131	/* "vdq1" */

static inline size_t vring_log_vq_size(unsigned int num)
{
	return (sizeof(struct vring_log_vq) + num + 63) & ~(size_t)63;
}

/**
 * struct vdring - one virtqueue ring, device side (named so as not to clash
 * with the legacy struct vring of <linux/virtio_ring.h>)
 * @num: ring size (power of two for split rings)
 * @packed: VIRTIO_F_RING_PACKED negotiated
 * @event_idx: VIRTIO_F_RING_EVENT_IDX negotiated
 * @indirect: VIRTIO_F_INDIRECT_DESC negotiated
 * @xlate: address translation
 * @xlate_opaque: its argument
 * @log: inflight log of this queue, or NULL
 * @broken: set when the driver handed us a malformed ring; no further
 *	requests are popped
 * @split: split ring state
 * @packed_ring: packed ring state
 * @signalled_used: used index at the last notify decision
 * @signalled_wrap: used wrap counter with it (packed)
 * @signalled_valid: @signalled_used is meaningful
 * @state_set: vring_set_state() was called (else a packed ring starts at
 *	index 0 with both wrap counters 1)
 * @inflight: requests popped and not pushed yet
 */
struct vdring {
	unsigned int num;
	bool packed;
	bool event_idx;
	bool indirect;
	vring_xlate_fn xlate;
	void *xlate_opaque;
	struct vring_log_vq *log;
	bool broken;
	struct {
		struct vring_desc *desc;
		struct vring_avail *avail;
		struct vring_used *used;
		uint16_t last_avail_idx;
		uint16_t used_idx;
	} split;
	struct {
		struct vring_packed_desc *desc;
		struct vring_packed_desc_event *driver;
		struct vring_packed_desc_event *device;
		uint16_t last_avail_idx;
		bool avail_wrap;
		uint16_t used_idx;
		bool used_wrap;
	} packed_ring;
	uint16_t signalled_used;
	bool signalled_wrap;
	bool signalled_valid;
	bool state_set;
	unsigned int inflight;
};

/**
 * struct vring_elem - a descriptor chain popped from the ring
 * @id: head index (split) or buffer id (packed)
 * @ndesc: ring slots the chain used (packed; 1 for an indirect chain)
 * @out_num: device-readable iovecs, first in the array
 * @in_num: device-writable iovecs, after them
 */
struct vring_elem {
	uint16_t id;
	uint16_t ndesc;
	unsigned int out_num;
	unsigned int in_num;
};

/*
 * vring_setup - translate the ring areas and reset the ring state.
 * @features: negotiated virtio features (selects packed, event idx,
 * indirect).  Returns 0, or -EFAULT when an area is not mapped, -EINVAL
 * for a bad size.  Keeps the avail position vring_set_state() stored
 * (0 by default); a split ring's used index is read from used->idx, as
 * vhost does, so a ring that was running resumes where it stood.
 */
int vring_setup(struct vdring *r, unsigned int num, uint64_t features,
		uint64_t desc_iova, uint64_t driver_iova, uint64_t device_iova);

/*
 * vring_set_state / vring_get_state - ring progress as VDUSE's
 * GET_VQ_STATE and VQ_GET_INFO carry it.  Split: @avail_idx only.
 * Packed: the four fields of struct vduse_vq_state_packed, wrap counters
 * as 0/1.
 */
void vring_set_state(struct vdring *r, uint16_t avail_idx, bool avail_wrap,
		     uint16_t used_idx, bool used_wrap);
void vring_get_state(const struct vdring *r, uint16_t *avail_idx,
		     bool *avail_wrap, uint16_t *used_idx, bool *used_wrap);

/*
 * vring_pop - take the next available chain.
 * Fills @elem and up to @max_iov iovecs (readable first, then writable).
 * Returns 1 when a chain was taken, 0 when the ring is empty, -EINVAL
 * when the chain is malformed (loops, out-of-range index, readable after
 * writable, nested indirect, too many buffers, unmapped address: -EFAULT);
 * a malformed ring is marked broken and every later call returns -EIO.
 */
int vring_pop(struct vdring *r, struct vring_elem *elem, struct iovec *iov,
	      unsigned int max_iov);

/*
 * vring_push - return a chain to the driver with @len bytes written.
 * Makes the used entry visible to the driver (with the needed barriers).
 */
void vring_push(struct vdring *r, uint16_t id, uint16_t ndesc, uint32_t len);

/*
 * vring_need_notify - after pushes: must the driver be interrupted?
 * Honours VRING_AVAIL_F_NO_INTERRUPT / the driver event suppression
 * structure and, with event_idx, the used_event index.  Records the
 * current used position at every decision, as vhost does.
 */
bool vring_need_notify(struct vdring *r);

/*
 * vring_kick_enable - tell the driver whether we want kicks.
 * With @enable, also returns true when chains became available meanwhile
 * (the caller must pop again instead of sleeping).
 */
bool vring_kick_enable(struct vdring *r, bool enable);

/* vring_avail - true when vring_pop() would return a chain. */
bool vring_avail(struct vdring *r);

/*
 * vring_log_init - attach @log (size vring_log_vq_size(num)) to a set-up
 * split ring.  With @fresh, the log is cleared for this ring.  Otherwise
 * the log is recovered: a half-published completion is finished, flags of
 * published completions are cleared, and the ring's last_avail_idx becomes
 * used_idx + the number of requests still in flight.  Returns 0 or
 * -EINVAL when the log does not belong to a ring of this size.
 */
int vring_log_init(struct vdring *r, struct vring_log_vq *log, bool fresh);

/*
 * vring_log_resubmit - the requests the log says were in flight, as
 * chains to process again.  Call after vring_log_init(fresh = false);
 * returns them one by one (1), then 0.  @cursor starts at 0.
 */
int vring_log_resubmit(struct vdring *r, unsigned int *cursor,
		       struct vring_elem *elem, struct iovec *iov,
		       unsigned int max_iov);

#endif /* LIBVDUSE_VRING_H */
