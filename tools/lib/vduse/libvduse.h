/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libvduse: the userspace half of a VDUSE device.
 *
 * A daemon describes its device (struct vduse_dev_params), hands the library
 * a few callbacks (struct vduse_ops) and calls vduse_dev_run().  The library
 * creates the device (or re-attaches to it after a restart), answers the
 * kernel's control messages, maps the IOVA space the driver uses, and runs
 * one thread per virtqueue.  On each queue's thread it calls the daemon's
 * queue_kick(), where the daemon pops requests with vduse_vq_pop() and
 * completes them with vduse_vq_push() (from any thread) and
 * vduse_vq_notify().
 *
 * Threads: vduse_dev_run() runs on the caller's thread (the "control
 * thread").  Callbacks named queue_* run on that queue's thread; status()
 * runs on the control thread.  vduse_vq_push() and vduse_vq_notify() may be
 * called from any thread; vduse_vq_pop() only from the queue's thread.
 */
#ifndef LIBVDUSE_H
#define LIBVDUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct vduse_dev;
struct vduse_vq;

/**
 * struct vduse_req - a request popped from a virtqueue
 * @vq: the queue it came from
 * @id: descriptor head (split ring) or buffer id (packed ring)
 * @ndesc: descriptors the chain occupied in the ring (packed ring)
 * @out_num: number of device-readable buffers, iov[0 .. out_num)
 * @in_num: number of device-writable buffers, iov[out_num .. out_num + in_num)
 * @out_len: total bytes of the readable buffers
 * @in_len: total bytes of the writable buffers
 * @iov: the buffers, translated to addresses in this process
 * @priv: @priv_size bytes for the daemon, as asked for in vduse_vq_pop()
 *
 * Every address in @iov stays valid until the request is pushed, even if
 * the kernel invalidates the mapping in between.
 */
struct vduse_req {
	struct vduse_vq *vq;
	uint16_t id;
	uint16_t ndesc;
	unsigned int out_num;
	unsigned int in_num;
	size_t out_len;
	size_t in_len;
	struct iovec *iov;
	void *priv;
};

/**
 * struct vduse_dev_params - what the daemon's device looks like
 * @name: device name (/dev/vduse/@name, "vdpa dev add name @name")
 * @device_id: virtio device id (VIRTIO_ID_BLOCK, VIRTIO_ID_NET, ...)
 * @vendor_id: virtio vendor id
 * @features: virtio features the device offers; the library adds
 *	VIRTIO_F_VERSION_1 and VIRTIO_F_ACCESS_PLATFORM, and may clear ring
 *	features it cannot support in the chosen mode
 * @num_queues: number of virtqueues
 * @queue_size: maximum size of each virtqueue (power of two, <= 32768)
 * @config: the device's config space
 * @config_size: its size
 * @ngroups: virtqueue groups (API v1; 0 means 1)
 * @nas: address spaces (API v1; 0 means 1)
 * @queue_group: group of each queue (NULL: all in group 0)
 * @reconnect_log: path of the inflight log file, or NULL for none.  With a
 *	log, a restarted daemon re-attaches to the existing device and
 *	resubmits the requests that were in flight when it died.  The log
 *	works for split rings; with a log the library does not offer
 *	VIRTIO_F_RING_PACKED.
 * @umem: register the daemon's own memory as the bounce area (REG_UMEM)
 *	when the kernel offers it
 * @api_version: highest VDUSE API version to ask for (0 or 1; -1 = best)
 * @no_vduse_features: do not negotiate VDUSE features (QUEUE_READY,
 *	SUSPEND) even when the kernel offers them
 */
struct vduse_dev_params {
	const char *name;
	uint32_t device_id;
	uint32_t vendor_id;
	uint64_t features;
	unsigned int num_queues;
	unsigned int queue_size;
	const void *config;
	size_t config_size;
	unsigned int ngroups;
	unsigned int nas;
	const unsigned int *queue_group;
	const char *reconnect_log;
	bool umem;
	int api_version;
	bool no_vduse_features;
};

/**
 * struct vduse_ops - what the library calls back
 * @queue_start: a queue is about to process requests (queue thread)
 * @queue_kick: the driver made requests available (queue thread); pop
 *	them with vduse_vq_pop() until it returns NULL
 * @queue_stop: the queue stops: on reset, SET_VQ_READY(0), suspend or
 *	shutdown (queue thread).  Requests still in flight must be finished
 *	(pushed) before it returns, or they are resubmitted after a restart
 *	when a reconnect log is in use.
 * @status: the driver wrote the status byte (control thread)
 */
struct vduse_ops {
	void (*queue_start)(struct vduse_vq *vq);
	void (*queue_kick)(struct vduse_vq *vq);
	void (*queue_stop)(struct vduse_vq *vq);
	void (*status)(struct vduse_dev *dev, uint8_t status);
};

/*
 * Device lifetime (control thread).
 *
 * vduse_dev_create() creates the device, or re-attaches to an existing one
 * of that name when @params->reconnect_log is set (a leftover nobody holds
 * is replaced otherwise); NULL with errno on failure.  vduse_dev_run()
 * serves control messages until vduse_dev_stop() or until the kernel marks
 * the device broken (-EIO).  vduse_dev_destroy() stops the queues, closes
 * the device, removes the reconnect log and destroys the device; the
 * handle is freed whatever it returns (-EBUSY: still attached with vdpa,
 * destroy it later by name).  vduse_dev_close() frees the handle and
 * leaves the device for the next daemon.
 */
struct vduse_dev *vduse_dev_create(const struct vduse_dev_params *params,
				   const struct vduse_ops *ops, void *priv);
int vduse_dev_run(struct vduse_dev *dev);
void vduse_dev_stop(struct vduse_dev *dev);	/* async-signal-safe */
int vduse_dev_destroy(struct vduse_dev *dev);
void vduse_dev_close(struct vduse_dev *dev);

/* Device queries and config space. */
void *vduse_dev_priv(struct vduse_dev *dev);
const char *vduse_dev_name(struct vduse_dev *dev);
uint64_t vduse_dev_features(struct vduse_dev *dev);
bool vduse_dev_has_feature(struct vduse_dev *dev, unsigned int bit);
unsigned int vduse_dev_api_version(struct vduse_dev *dev);
uint64_t vduse_dev_vduse_features(struct vduse_dev *dev);
bool vduse_dev_reconnected(struct vduse_dev *dev);
int vduse_dev_update_config(struct vduse_dev *dev, uint32_t offset,
			    uint32_t len, const void *data);

/* Queues. */
struct vduse_vq *vduse_dev_vq(struct vduse_dev *dev, unsigned int index);
struct vduse_dev *vduse_vq_dev(struct vduse_vq *vq);
unsigned int vduse_vq_index(struct vduse_vq *vq);
unsigned int vduse_vq_size(struct vduse_vq *vq);
void *vduse_vq_priv(struct vduse_vq *vq);
void vduse_vq_set_priv(struct vduse_vq *vq, void *priv);

struct vduse_req *vduse_vq_pop(struct vduse_vq *vq, size_t priv_size);
int vduse_vq_push(struct vduse_req *req, uint32_t len);
int vduse_vq_notify(struct vduse_vq *vq);
void vduse_req_free(struct vduse_req *req);

/*
 * Extra file descriptors watched by a queue's thread (an io_uring eventfd,
 * a TAP fd).  Call from the queue thread (queue_start); @events are epoll
 * events, 0 to pause watching.  The fd is forgotten when the queue stops.
 */
typedef void (*vduse_fd_cb)(struct vduse_vq *vq, int fd, uint32_t events,
			    void *arg);
int vduse_vq_watch_fd(struct vduse_vq *vq, int fd, uint32_t events,
		      vduse_fd_cb cb, void *arg);
int vduse_vq_watch_events(struct vduse_vq *vq, int fd, uint32_t events);

/* Copy helpers over a request's buffers. */
size_t vduse_iov_to_buf(const struct iovec *iov, unsigned int cnt,
			size_t offset, void *buf, size_t len);
size_t vduse_iov_from_buf(const struct iovec *iov, unsigned int cnt,
			  size_t offset, const void *buf, size_t len);

/* Logging: the library reports errors with this (default: stderr). */
void vduse_set_log(void (*fn)(int level, const char *msg));
extern int vduse_debug;

#endif /* LIBVDUSE_H */
