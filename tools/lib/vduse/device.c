// SPDX-License-Identifier: GPL-2.0
/*
 * libvduse: device lifetime, the control-message loop, IOVA translation and
 * the per-queue threads.  The ring logic itself lives in vring.c.
 *
 * Locking:
 *  - vduse_as.lock (rwlock) protects an address space's mapping table;
 *    translation takes it for reading, misses and invalidations for
 *    writing.  Mappings dropped by UPDATE_IOTLB go to a graveyard and are
 *    unmapped only once no queue runs, so an address handed out in a
 *    request stays valid until the request is pushed.
 *  - vduse_vq.lock protects the ring and the queue's request bookkeeping;
 *    pop, push and notify take it.
 *  - Everything else in struct vduse_dev and the running state of the
 *    queues belong to the control thread (vduse_dev_run()).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <linux/vduse.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "libvduse.h"
#include "iotlb.h"
#include "vring.h"

#ifndef VIRTIO_F_RING_PACKED
#define VIRTIO_F_RING_PACKED 34
#endif

#define VDUSE_CONTROL		"/dev/vduse/control"
#define VDUSE_MAX_IOV		1024
#define VDUSE_MAX_WATCH		4
#define VDUSE_LOG_MAGIC		0x7664756c	/* "vdul" */

int vduse_debug;

static void default_log(int level, const char *msg)
{
	if (level <= 1 || vduse_debug)
		fprintf(stderr, "libvduse: %s\n", msg);
}

static void (*log_fn)(int level, const char *msg) = default_log;

void vduse_set_log(void (*fn)(int level, const char *msg))
{
	log_fn = fn ? fn : default_log;
}

/* level 0: error, 1: warning, 2: debug */
static void __attribute__((format(printf, 2, 3)))
vlog(int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_fn(level, buf);
}

struct vduse_watch {
	int fd;
	uint32_t events;
	vduse_fd_cb cb;
	void *arg;
};

/**
 * struct vduse_vq - a virtqueue and its thread
 * @dev: owning device
 * @index: queue index
 * @group: virtqueue group (VQ_SETUP)
 * @lock: protects @ring, @iov, @resubmit*
 * @ring: ring state
 * @iov: scratch iovecs for vring_pop(), under @lock
 * @resubmit: requests from the inflight log are still to be handed out
 * @resubmit_cursor: position in the log
 * @kickfd: eventfd the kernel signals on a kick
 * @stopfd: eventfd that stops the thread
 * @epfd: the thread's epoll set
 * @thread: the queue thread
 * @running: the thread exists (control thread only)
 * @ready: the driver enabled the queue (SET_VQ_READY or VQ_GET_INFO)
 * @watch: daemon fds the thread watches (queue thread only)
 * @priv: the daemon's pointer
 * @log: this queue's inflight log, or NULL
 */
struct vduse_vq {
	struct vduse_dev *dev;
	unsigned int index;
	unsigned int group;
	pthread_mutex_t lock;
	struct vdring ring;
	struct iovec *iov;
	bool resubmit;
	unsigned int resubmit_cursor;
	int kickfd;
	int stopfd;
	int epfd;
	pthread_t thread;
	bool running;
	bool ready;
	struct vduse_watch watch[VDUSE_MAX_WATCH];
	void *priv;
	struct vring_log_vq *log;
};

/* Header of the reconnect log file, followed by one vring_log_vq per queue. */
struct vduse_log_hdr {
	uint32_t magic;
	uint32_t num_queues;
	uint32_t queue_size;
	uint32_t pad;
	char name[256];
};

struct vduse_dev {
	char *name;
	struct vduse_dev_params params;
	struct vduse_ops ops;
	void *priv;
	int fd;
	int stopfd;
	unsigned int api;
	uint64_t vduse_features;
	uint64_t offered;
	uint64_t features;
	uint8_t status;
	bool suspended;
	bool reconnected;
	unsigned int nas;
	unsigned int ngroups;
	unsigned int *group_asid;
	struct vduse_as *as;
	struct vduse_vq *vqs;
	void *log;
	size_t log_len;
	uint64_t bounce_start[2];
};

/* ------------------------------------------------------------------ */
/* Address translation                                                 */

static bool any_queue_running(struct vduse_dev *dev)
{
	for (unsigned int i = 0; i < dev->params.num_queues; i++)
		if (dev->vqs[i].running)
			return true;
	return false;
}

/* Unmap the graveyards; no queue may be running. */
static void as_reap(struct vduse_dev *dev)
{
	for (unsigned int a = 0; a < dev->nas; a++)
		iotlb_reap(&dev->as[a]);
}

/*
 * The kernel pins umem against RLIMIT_MEMLOCK, whose default (8 MiB) is far
 * below a bounce area: raise the limit when we may.
 */
static void umem_rlimit(uint64_t size)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return;
	if (rl.rlim_cur >= RLIM_INFINITY - size) {
		rl.rlim_cur = RLIM_INFINITY;
	} else {
		rl.rlim_cur += size;
	}
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur)
		rl.rlim_max = rl.rlim_cur;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		vlog(1, "%s: cannot raise RLIMIT_MEMLOCK for umem: %s",
		     "libvduse", strerror(errno));
}

/*
 * Register our own memory as the bounce area of @asid.  The kernel accepts
 * it only once the bounce area is in use, so this is tried on the first
 * miss inside the bounce range.  Called with as->lock held for writing.
 */
static void as_try_umem(struct vduse_dev *dev, unsigned int asid,
			struct vduse_as *as, uint64_t iova)
{
	struct vduse_iova_info info = { .asid = asid, .start = iova, .last = iova };
	struct vduse_iova_umem umem = { .asid = asid };
	struct vduse_map m = { 0 };
	void *p;

	if (ioctl(dev->fd, VDUSE_IOTLB_GET_INFO, &info) ||
	    !(info.capability & VDUSE_IOVA_CAP_UMEM))
		return;		/* not the bounce area */
	as->umem_tried = true;
	p = mmap(NULL, info.last - info.start + 1, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return;
	umem_rlimit(info.last - info.start + 1);
	umem.uaddr = (uintptr_t)p;
	umem.iova = info.start;
	umem.size = info.last - info.start + 1;
	if (ioctl(dev->fd, VDUSE_IOTLB_REG_UMEM, &umem)) {
		vlog(1, "%s: umem registration refused: %s", dev->name,
		     strerror(errno));
		munmap(p, umem.size);
		return;
	}
	m.start = info.start;
	m.last = info.last;
	m.addr = p;
	m.perm = VDUSE_ACCESS_RW;
	if (iotlb_insert(as, &m)) {
		ioctl(dev->fd, VDUSE_IOTLB_DEREG_UMEM, &umem);
		munmap(p, umem.size);
		return;
	}
	as->umem = p;
	as->umem_size = umem.size;
	vlog(2, "%s: %llu bytes of umem registered for address space %u",
	     dev->name, (unsigned long long)umem.size, asid);
}

/* Ask the kernel for the entry covering @iova and map it. */
static int as_fault(void *ctx, struct vduse_as *as, uint64_t iova)
{
	struct vduse_vq *vq = ctx;
	struct vduse_dev *dev = vq->dev;
	unsigned int asid = as - dev->as;
	struct vduse_iotlb_entry_v2 e = { .asid = asid };
	struct vduse_map m = { 0 };
	int fd, ret;

	if (dev->params.umem && !as->umem_tried) {
		as_try_umem(dev, asid, as, iova);
		if (iotlb_find(as, iova))
			return 0;
	}
	e.start = iova;
	e.last = iova;
	if (dev->api >= VDUSE_API_VERSION_1) {
		fd = ioctl(dev->fd, VDUSE_IOTLB_GET_FD2, &e);
	} else {
		struct vduse_iotlb_entry e0 = { .start = iova, .last = iova };

		fd = ioctl(dev->fd, VDUSE_IOTLB_GET_FD, &e0);
		e.offset = e0.offset;
		e.start = e0.start;
		e.last = e0.last;
		e.perm = e0.perm;
	}
	if (fd < 0)
		return -errno;
	m.start = e.start;
	m.last = e.last;
	m.perm = e.perm;
	ret = iotlb_map_fd(as, &m, fd, e.offset);
	close(fd);
	if (ret)
		return ret;
	vlog(2, "%s: as %u: mapped [0x%llx, 0x%llx] perm %u", dev->name, asid,
	     (unsigned long long)m.start, (unsigned long long)m.last, m.perm);
	return 0;
}

/* The vring translation callback; @opaque is the queue. */
static void *vq_xlate(void *opaque, uint64_t iova, uint64_t len, bool write,
		      uint64_t *plen)
{
	struct vduse_vq *vq = opaque;
	struct vduse_dev *dev = vq->dev;

	return iotlb_translate(&dev->as[dev->group_asid[vq->group]], iova, len,
			       write, plen, as_fault, vq);
}

/* ------------------------------------------------------------------ */
/* Queue threads                                                       */

static void vq_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* An eventfd write fails only on overflow: already signalled. */
	}
}

static void vq_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* Nothing pending (EAGAIN). */
	}
}

/* Process requests until the ring is empty with kicks enabled. */
static void vq_process(struct vduse_vq *vq)
{
	bool more;

	do {
		pthread_mutex_lock(&vq->lock);
		vring_kick_enable(&vq->ring, false);
		pthread_mutex_unlock(&vq->lock);
		vq->dev->ops.queue_kick(vq);
		pthread_mutex_lock(&vq->lock);
		more = !vq->ring.broken && vring_kick_enable(&vq->ring, true);
		pthread_mutex_unlock(&vq->lock);
	} while (more);
}

static void *vq_thread(void *arg)
{
	struct vduse_vq *vq = arg;
	struct vduse_dev *dev = vq->dev;
	struct epoll_event ev[8];

	if (dev->ops.queue_start)
		dev->ops.queue_start(vq);
	vq_process(vq);
	for (;;) {
		int n = epoll_wait(vq->epfd, ev, 8, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vlog(0, "%s: queue %u: epoll_wait: %s", dev->name,
			     vq->index, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;

			if (fd == vq->stopfd)
				goto out;
			if (fd == vq->kickfd) {
				vq_drain(fd);
				vq_process(vq);
				continue;
			}
			for (int w = 0; w < VDUSE_MAX_WATCH; w++)
				if (vq->watch[w].cb && vq->watch[w].fd == fd)
					vq->watch[w].cb(vq, fd, ev[i].events,
							vq->watch[w].arg);
		}
	}
out:
	if (dev->ops.queue_stop)
		dev->ops.queue_stop(vq);
	for (int w = 0; w < VDUSE_MAX_WATCH; w++)
		vq->watch[w].cb = NULL;
	return NULL;
}

static int epoll_add(int epfd, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int vduse_vq_watch_fd(struct vduse_vq *vq, int fd, uint32_t events,
		      vduse_fd_cb cb, void *arg)
{
	for (int w = 0; w < VDUSE_MAX_WATCH; w++) {
		if (vq->watch[w].cb)
			continue;
		if (epoll_add(vq->epfd, fd, events))
			return -errno;
		vq->watch[w] = (struct vduse_watch){ fd, events, cb, arg };
		return 0;
	}
	return -ENOSPC;
}

int vduse_vq_watch_events(struct vduse_vq *vq, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	for (int w = 0; w < VDUSE_MAX_WATCH; w++) {
		if (!vq->watch[w].cb || vq->watch[w].fd != fd)
			continue;
		if (vq->watch[w].events == events)
			return 0;
		if (epoll_ctl(vq->epfd, EPOLL_CTL_MOD, fd, &ev))
			return -errno;
		vq->watch[w].events = events;
		return 0;
	}
	return -ENOENT;
}

/* Forget the daemon's fds; closing the epoll set removes them. */
static void vq_unwatch_all(struct vduse_vq *vq)
{
	for (int w = 0; w < VDUSE_MAX_WATCH; w++)
		vq->watch[w] = (struct vduse_watch){ .fd = -1 };
}

static int vq_get_info(struct vduse_dev *dev, unsigned int index,
		       struct vduse_vq_info *info)
{
	memset(info, 0, sizeof(*info));
	info->index = index;
	if (ioctl(dev->fd, VDUSE_VQ_GET_INFO, info))
		return -errno;
	return 0;
}

/*
 * Start queue @vq: read its addresses from the kernel, set up the ring
 * (recovering it from the log with @recover), install a kick eventfd and
 * start the thread.
 */
static int vq_start(struct vduse_vq *vq, bool recover)
{
	struct vduse_dev *dev = vq->dev;
	struct vduse_vq_eventfd kick = { .index = vq->index };
	struct vduse_vq_info info;
	bool packed = dev->features & (1ULL << VIRTIO_F_RING_PACKED);
	int ret;

	if (vq->running)
		return 0;
	ret = vq_get_info(dev, vq->index, &info);
	if (ret)
		return ret;
	if (!info.num)
		return 0;	/* never set up by the driver */

	memset(&vq->ring, 0, sizeof(vq->ring));
	vq->ring.xlate = vq_xlate;
	vq->ring.xlate_opaque = vq;
	if (packed)
		vring_set_state(&vq->ring, info.packed.last_avail_idx,
				info.packed.last_avail_counter,
				info.packed.last_used_idx,
				info.packed.last_used_counter);
	else
		vring_set_state(&vq->ring, info.split.avail_index, 0, 0, 0);
	ret = vring_setup(&vq->ring, info.num, dev->features, info.desc_addr,
			  info.driver_addr, info.device_addr);
	if (ret) {
		vlog(0, "%s: queue %u: ring not mapped: %s", dev->name,
		     vq->index, strerror(-ret));
		return ret;
	}
	vq->resubmit = false;
	vq->resubmit_cursor = 0;
	if (vq->log && !packed) {
		if (info.num > dev->params.queue_size) {
			vlog(0, "%s: queue %u: size %u beyond the log's",
			     dev->name, vq->index, info.num);
			return -EINVAL;
		}
		ret = vring_log_init(&vq->ring, vq->log, !recover);
		if (ret && recover) {
			vlog(1, "%s: queue %u: log unusable, starting afresh",
			     dev->name, vq->index);
			ret = vring_log_init(&vq->ring, vq->log, true);
		}
		if (ret)
			return ret;
		vq->resubmit = recover && vq->ring.inflight > 0;
		if (vq->resubmit)
			vlog(1, "%s: queue %u: resubmitting %u requests",
			     dev->name, vq->index, vq->ring.inflight);
	}

	vq->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vq->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vq->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (vq->kickfd < 0 || vq->stopfd < 0 || vq->epfd < 0 ||
	    epoll_add(vq->epfd, vq->kickfd, EPOLLIN) ||
	    epoll_add(vq->epfd, vq->stopfd, EPOLLIN)) {
		ret = -errno;
		goto err;
	}
	for (int w = 0; w < VDUSE_MAX_WATCH; w++)
		vq->watch[w] = (struct vduse_watch){ .fd = -1 };
	kick.fd = vq->kickfd;
	if (ioctl(dev->fd, VDUSE_VQ_SETUP_KICKFD, &kick)) {
		ret = -errno;
		goto err;
	}
	ret = -pthread_create(&vq->thread, NULL, vq_thread, vq);
	if (ret)
		goto err_kick;
	vq->running = true;
	vlog(2, "%s: queue %u started (%u entries, %s)", dev->name, vq->index,
	     info.num, packed ? "packed" : "split");
	return 0;

err_kick:
	kick.fd = VDUSE_EVENTFD_DEASSIGN;
	ioctl(dev->fd, VDUSE_VQ_SETUP_KICKFD, &kick);
err:
	if (vq->kickfd >= 0)
		close(vq->kickfd);
	if (vq->stopfd >= 0)
		close(vq->stopfd);
	if (vq->epfd >= 0)
		close(vq->epfd);
	vq->kickfd = vq->stopfd = vq->epfd = -1;
	return ret;
}

static void vq_stop(struct vduse_vq *vq)
{
	struct vduse_vq_eventfd kick = {
		.index = vq->index,
		.fd = VDUSE_EVENTFD_DEASSIGN,
	};

	if (!vq->running)
		return;
	vq_signal(vq->stopfd);
	pthread_join(vq->thread, NULL);
	vq->running = false;
	ioctl(vq->dev->fd, VDUSE_VQ_SETUP_KICKFD, &kick);
	vq_unwatch_all(vq);
	close(vq->kickfd);
	close(vq->stopfd);
	close(vq->epfd);
	vq->kickfd = vq->stopfd = vq->epfd = -1;
	vlog(2, "%s: queue %u stopped", vq->dev->name, vq->index);
}

static void stop_all_queues(struct vduse_dev *dev)
{
	for (unsigned int i = 0; i < dev->params.num_queues; i++)
		vq_stop(&dev->vqs[i]);
}

/* DRIVER_OK: learn the negotiated features and start the ready queues. */
static void start_queues(struct vduse_dev *dev, bool recover)
{
	if (ioctl(dev->fd, VDUSE_DEV_GET_FEATURES, &dev->features))
		vlog(0, "%s: DEV_GET_FEATURES: %s", dev->name, strerror(errno));
	for (unsigned int i = 0; i < dev->params.num_queues; i++) {
		struct vduse_vq *vq = &dev->vqs[i];
		struct vduse_vq_info info;

		if (vq_get_info(dev, i, &info) == 0)
			vq->ready = info.ready;
		if (vq->ready && vq_start(vq, recover))
			vlog(0, "%s: queue %u did not start", dev->name, i);
	}
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

struct vduse_req *vduse_vq_pop(struct vduse_vq *vq, size_t priv_size)
{
	struct vring_elem elem;
	struct vduse_req *req;
	unsigned int n;
	size_t sz;
	int ret = 0;

	pthread_mutex_lock(&vq->lock);
	if (vq->resubmit) {
		ret = vring_log_resubmit(&vq->ring, &vq->resubmit_cursor,
					 &elem, vq->iov, VDUSE_MAX_IOV);
		if (ret <= 0)
			vq->resubmit = false;
	}
	if (ret <= 0)
		ret = vring_pop(&vq->ring, &elem, vq->iov, VDUSE_MAX_IOV);
	if (ret <= 0) {
		pthread_mutex_unlock(&vq->lock);
		if (ret < 0 && ret != -EIO)
			vlog(0, "%s: queue %u: the driver's ring is malformed (%s); queue stopped",
			     vq->dev->name, vq->index, strerror(-ret));
		errno = ret ? -ret : EAGAIN;
		return NULL;
	}
	n = elem.out_num + elem.in_num;
	sz = sizeof(*req) + n * sizeof(struct iovec);
	sz = (sz + 15) & ~(size_t)15;
	req = calloc(1, sz + priv_size);
	if (!req) {
		/* Give the chain back as done-with-nothing: never lose it. */
		vring_push(&vq->ring, elem.id, elem.ndesc, 0);
		pthread_mutex_unlock(&vq->lock);
		errno = ENOMEM;
		return NULL;
	}
	req->iov = (struct iovec *)(req + 1);
	memcpy(req->iov, vq->iov, n * sizeof(struct iovec));
	pthread_mutex_unlock(&vq->lock);

	req->vq = vq;
	req->id = elem.id;
	req->ndesc = elem.ndesc;
	req->out_num = elem.out_num;
	req->in_num = elem.in_num;
	for (unsigned int i = 0; i < n; i++) {
		if (i < elem.out_num)
			req->out_len += req->iov[i].iov_len;
		else
			req->in_len += req->iov[i].iov_len;
	}
	req->priv = priv_size ? (char *)req + sz : NULL;
	return req;
}

int vduse_vq_push(struct vduse_req *req, uint32_t len)
{
	struct vduse_vq *vq = req->vq;

	if (len > req->in_len)
		len = req->in_len;
	pthread_mutex_lock(&vq->lock);
	vring_push(&vq->ring, req->id, req->ndesc, len);
	pthread_mutex_unlock(&vq->lock);
	free(req);
	return 0;
}

void vduse_req_free(struct vduse_req *req)
{
	free(req);
}

int vduse_vq_notify(struct vduse_vq *vq)
{
	uint32_t index = vq->index;
	bool need;

	pthread_mutex_lock(&vq->lock);
	need = vring_need_notify(&vq->ring);
	pthread_mutex_unlock(&vq->lock);
	if (need && ioctl(vq->dev->fd, VDUSE_VQ_INJECT_IRQ, &index))
		return -errno;
	return 0;
}

/* Copy between @buf and the iovecs from byte @offset on; @to_iov: direction. */
static size_t iov_copy(const struct iovec *iov, unsigned int cnt, size_t offset,
		       char *buf, size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		char *p = iov[i].iov_base;
		size_t n;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - offset;
		if (n > len - done)
			n = len - done;
		if (to_iov)
			memcpy(p + offset, buf + done, n);
		else
			memcpy(buf + done, p + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t vduse_iov_to_buf(const struct iovec *iov, unsigned int cnt,
			size_t offset, void *buf, size_t len)
{
	return iov_copy(iov, cnt, offset, buf, len, false);
}

size_t vduse_iov_from_buf(const struct iovec *iov, unsigned int cnt,
			  size_t offset, const void *buf, size_t len)
{
	return iov_copy(iov, cnt, offset, (char *)buf, len, true);
}

/* ------------------------------------------------------------------ */
/* Control messages                                                    */

static void dev_reset(struct vduse_dev *dev)
{
	stop_all_queues(dev);
	dev->suspended = false;
	dev->features = 0;
	for (unsigned int g = 0; g < dev->ngroups; g++)
		dev->group_asid[g] = 0;
	for (unsigned int a = 0; a < dev->nas; a++) {
		struct vduse_as *as = &dev->as[a];

		iotlb_invalidate(as, 0, UINT64_MAX);
		if (as->umem) {
			struct vduse_iova_umem umem = {
				.asid = a,
				.uaddr = (uintptr_t)as->umem,
				.size = as->umem_size,
			};

			/* Give the kernel its own bounce pages back. */
			if (ioctl(dev->fd, VDUSE_IOTLB_DEREG_UMEM, &umem))
				vlog(1, "%s: DEREG_UMEM: %s", dev->name,
				     strerror(errno));
			munmap(as->umem, as->umem_size);
			as->umem = NULL;
		}
		as->umem_tried = false;
	}
	as_reap(dev);
	for (unsigned int i = 0; i < dev->params.num_queues; i++)
		dev->vqs[i].ready = false;
}

static void handle_set_status(struct vduse_dev *dev, uint8_t status)
{
	uint8_t old = dev->status;

	vlog(2, "%s: status 0x%x -> 0x%x", dev->name, old, status);
	dev->status = status;
	if (status == 0) {
		dev_reset(dev);
	} else if ((status & VIRTIO_CONFIG_S_DRIVER_OK) &&
		   !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		start_queues(dev, false);
	}
	if (dev->ops.status)
		dev->ops.status(dev, status);
}

static int handle_request(struct vduse_dev *dev, struct vduse_dev_request *req,
			  struct vduse_dev_response *resp)
{
	struct vduse_vq *vq;
	uint64_t start, last;
	unsigned int asid = 0;
	bool wrap_a, wrap_u;
	uint16_t ai, ui;

	switch (req->type) {
	case VDUSE_GET_VQ_STATE:
		if (req->vq_state.index >= dev->params.num_queues)
			return VDUSE_REQ_RESULT_FAILED;
		vq = &dev->vqs[req->vq_state.index];
		resp->vq_state.index = vq->index;
		pthread_mutex_lock(&vq->lock);
		vring_get_state(&vq->ring, &ai, &wrap_a, &ui, &wrap_u);
		pthread_mutex_unlock(&vq->lock);
		if (dev->features & (1ULL << VIRTIO_F_RING_PACKED)) {
			resp->vq_state.packed.last_avail_idx = ai;
			resp->vq_state.packed.last_avail_counter = wrap_a;
			resp->vq_state.packed.last_used_idx = ui;
			resp->vq_state.packed.last_used_counter = wrap_u;
		} else {
			resp->vq_state.split.avail_index = ai;
		}
		return VDUSE_REQ_RESULT_OK;
	case VDUSE_SET_STATUS:
		handle_set_status(dev, req->s.status);
		return VDUSE_REQ_RESULT_OK;
	case VDUSE_UPDATE_IOTLB:
		if (dev->api >= VDUSE_API_VERSION_1) {
			start = req->iova_v2.start;
			last = req->iova_v2.last;
			asid = req->iova_v2.asid;
		} else {
			start = req->iova.start;
			last = req->iova.last;
		}
		if (asid >= dev->nas)
			return VDUSE_REQ_RESULT_FAILED;
		iotlb_invalidate(&dev->as[asid], start, last);
		if (!any_queue_running(dev))
			as_reap(dev);
		return VDUSE_REQ_RESULT_OK;
	case VDUSE_SET_VQ_GROUP_ASID:
		if (req->vq_group_asid.group >= dev->ngroups ||
		    req->vq_group_asid.asid >= dev->nas)
			return VDUSE_REQ_RESULT_FAILED;
		dev->group_asid[req->vq_group_asid.group] =
			req->vq_group_asid.asid;
		return VDUSE_REQ_RESULT_OK;
	case VDUSE_SET_VQ_READY:
		if (req->vq_ready.num >= dev->params.num_queues)
			return VDUSE_REQ_RESULT_FAILED;
		vq = &dev->vqs[req->vq_ready.num];
		vq->ready = req->vq_ready.ready;
		if (!vq->ready)
			vq_stop(vq);
		else if ((dev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
			 !dev->suspended && vq_start(vq, false))
			return VDUSE_REQ_RESULT_FAILED;
		return VDUSE_REQ_RESULT_OK;
	case VDUSE_SUSPEND:
		stop_all_queues(dev);
		dev->suspended = true;
		return VDUSE_REQ_RESULT_OK;
	default:
		vlog(1, "%s: unknown request type %u", dev->name, req->type);
		return VDUSE_REQ_RESULT_FAILED;
	}
}

int vduse_dev_run(struct vduse_dev *dev)
{
	struct pollfd pfd[2] = {
		{ .fd = dev->fd, .events = POLLIN },
		{ .fd = dev->stopfd, .events = POLLIN },
	};
	int ret = 0;

	if (dev->reconnected && !any_queue_running(dev)) {
		/*
		 * The driver may have been running when the last daemon died:
		 * resume the queues it had enabled, and interrupt it once per
		 * queue for completions the dead daemon never signalled.
		 */
		start_queues(dev, true);
		if (any_queue_running(dev))
			dev->status = VIRTIO_CONFIG_S_ACKNOWLEDGE |
				      VIRTIO_CONFIG_S_DRIVER |
				      VIRTIO_CONFIG_S_FEATURES_OK |
				      VIRTIO_CONFIG_S_DRIVER_OK;
		for (unsigned int i = 0; i < dev->params.num_queues; i++) {
			uint32_t index = i;

			if (dev->vqs[i].running)
				ioctl(dev->fd, VDUSE_VQ_INJECT_IRQ, &index);
		}
	}
	for (;;) {
		struct vduse_dev_request req;
		struct vduse_dev_response resp;
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			vlog(0, "%s: the kernel marked the device broken",
			     dev->name);
			ret = -EIO;
			break;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		n = read(dev->fd, &req, sizeof(req));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n != sizeof(req)) {
			ret = n < 0 ? -errno : -EIO;
			vlog(0, "%s: reading a request: %s", dev->name,
			     strerror(-ret));
			break;
		}
		memset(&resp, 0, sizeof(resp));
		resp.request_id = req.request_id;
		resp.result = handle_request(dev, &req, &resp);
		if (write(dev->fd, &resp, sizeof(resp)) != sizeof(resp)) {
			/* The request timed out meanwhile: nothing to do. */
			vlog(1, "%s: reply to request %u refused: %s",
			     dev->name, req.request_id, strerror(errno));
		}
	}
	stop_all_queues(dev);
	return ret;
}

void vduse_dev_stop(struct vduse_dev *dev)
{
	vq_signal(dev->stopfd);
}

/* ------------------------------------------------------------------ */
/* Creation and teardown                                               */

/* Map (and with @fresh initialise) the reconnect log; 1 if it is valid. */
static int log_open(struct vduse_dev *dev, bool want_old)
{
	const struct vduse_dev_params *p = &dev->params;
	size_t per = vring_log_vq_size(p->queue_size);
	struct vduse_log_hdr *hdr;
	struct stat st;
	bool valid = false;
	size_t off;
	int fd;

	dev->log_len = sizeof(*hdr) + per * p->num_queues;
	fd = open(p->reconnect_log, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size == dev->log_len)
		valid = want_old;
	if (!valid && ftruncate(fd, 0) == 0 && ftruncate(fd, dev->log_len)) {
		close(fd);
		return -errno;
	}
	dev->log = mmap(NULL, dev->log_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			fd, 0);
	close(fd);
	if (dev->log == MAP_FAILED) {
		dev->log = NULL;
		return -errno;
	}
	hdr = dev->log;
	if (valid && (hdr->magic != VDUSE_LOG_MAGIC ||
		      hdr->num_queues != p->num_queues ||
		      hdr->queue_size != p->queue_size ||
		      strncmp(hdr->name, dev->name, sizeof(hdr->name))))
		valid = false;
	if (!valid) {
		memset(dev->log, 0, dev->log_len);
		hdr->num_queues = p->num_queues;
		hdr->queue_size = p->queue_size;
		strncpy(hdr->name, dev->name, sizeof(hdr->name) - 1);
		__atomic_store_n(&hdr->magic, VDUSE_LOG_MAGIC, __ATOMIC_RELEASE);
	}
	off = sizeof(*hdr);
	for (unsigned int i = 0; i < p->num_queues; i++, off += per)
		dev->vqs[i].log = (struct vring_log_vq *)((char *)dev->log + off);
	return valid;
}

static int open_dev_node(struct vduse_dev *dev)
{
	char path[sizeof("/dev/vduse/") + VDUSE_NAME_MAX];

	snprintf(path, sizeof(path), "/dev/vduse/%s", dev->name);
	/* A daemon that just died may still hold the node for a moment. */
	for (int tries = 0; tries < 50; tries++) {
		dev->fd = open(path, O_RDWR | O_CLOEXEC);
		if (dev->fd >= 0 || (errno != EBUSY && errno != ENOENT))
			break;
		usleep(20000);
	}
	return dev->fd < 0 ? -errno : 0;
}

static int destroy_by_name(int ctrl, const char *name)
{
	char buf[VDUSE_NAME_MAX] = { 0 };

	strncpy(buf, name, sizeof(buf) - 1);
	return ioctl(ctrl, VDUSE_DESTROY_DEV, buf) ? -errno : 0;
}

static int dev_alloc(struct vduse_dev *dev)
{
	const struct vduse_dev_params *p = &dev->params;

	dev->vqs = calloc(p->num_queues, sizeof(*dev->vqs));
	dev->as = calloc(dev->nas, sizeof(*dev->as));
	dev->group_asid = calloc(dev->ngroups, sizeof(*dev->group_asid));
	if (!dev->vqs || !dev->as || !dev->group_asid)
		return -ENOMEM;
	for (unsigned int a = 0; a < dev->nas; a++)
		iotlb_init(&dev->as[a]);
	for (unsigned int i = 0; i < p->num_queues; i++) {
		struct vduse_vq *vq = &dev->vqs[i];

		vq->dev = dev;
		vq->index = i;
		vq->group = p->queue_group ? p->queue_group[i] : 0;
		if (vq->group >= dev->ngroups)
			return -EINVAL;
		vq->kickfd = vq->stopfd = vq->epfd = -1;
		pthread_mutex_init(&vq->lock, NULL);
		vq->iov = calloc(VDUSE_MAX_IOV, sizeof(*vq->iov));
		if (!vq->iov)
			return -ENOMEM;
	}
	return 0;
}

static void dev_free(struct vduse_dev *dev)
{
	if (dev->vqs)
		for (unsigned int i = 0; i < dev->params.num_queues; i++)
			free(dev->vqs[i].iov);
	if (dev->as)
		for (unsigned int a = 0; a < dev->nas; a++)
			iotlb_fini(&dev->as[a]);
	if (dev->log)
		munmap(dev->log, dev->log_len);
	if (dev->stopfd >= 0)
		close(dev->stopfd);
	free(dev->vqs);
	free(dev->as);
	free(dev->group_asid);
	free(dev->name);
	free(dev);
}

/* Negotiate the API version and VDUSE features on the control node. */
static void ctrl_negotiate(struct vduse_dev *dev, int ctrl)
{
	const struct vduse_dev_params *p = &dev->params;
	uint64_t v = VDUSE_API_VERSION_1, f;

	dev->api = 0;
	if (p->api_version != 0 && ioctl(ctrl, VDUSE_SET_API_VERSION, &v) == 0)
		dev->api = 1;
	if (!dev->api) {
		v = 0;
		ioctl(ctrl, VDUSE_SET_API_VERSION, &v);
	}
	dev->vduse_features = 0;
	if (!p->no_vduse_features && ioctl(ctrl, VDUSE_GET_FEATURES, &f) == 0) {
		f &= (1ULL << VDUSE_F_QUEUE_READY) | (1ULL << VDUSE_F_SUSPEND);
		if (f && ioctl(ctrl, VDUSE_SET_FEATURES, &f) == 0)
			dev->vduse_features = f;
	}
}

static int ctrl_create(struct vduse_dev *dev, int ctrl)
{
	const struct vduse_dev_params *p = &dev->params;
	struct vduse_dev_config *cfg;
	int ret = 0;

	cfg = calloc(1, sizeof(*cfg) + p->config_size);
	if (!cfg)
		return -ENOMEM;
	strncpy(cfg->name, dev->name, VDUSE_NAME_MAX - 1);
	cfg->vendor_id = p->vendor_id;
	cfg->device_id = p->device_id;
	cfg->features = dev->offered;
	cfg->vq_num = p->num_queues;
	cfg->vq_align = sysconf(_SC_PAGESIZE);
	if (dev->api >= VDUSE_API_VERSION_1) {
		cfg->ngroups = dev->ngroups;
		cfg->nas = dev->nas;
	}
	cfg->config_size = p->config_size;
	if (p->config_size)
		memcpy(cfg->config, p->config, p->config_size);
	if (ioctl(ctrl, VDUSE_CREATE_DEV, cfg))
		ret = -errno;
	free(cfg);
	return ret;
}

struct vduse_dev *vduse_dev_create(const struct vduse_dev_params *params,
				   const struct vduse_ops *ops, void *priv)
{
	struct vduse_dev *dev;
	bool reattach = false;
	int ctrl, ret, logok = 0;

	if (!params->name || !*params->name || !params->num_queues ||
	    !params->queue_size || (params->queue_size & (params->queue_size - 1)) ||
	    !ops || !ops->queue_kick) {
		errno = EINVAL;
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	dev->fd = -1;
	dev->params = *params;
	dev->ops = *ops;
	dev->priv = priv;
	dev->name = strdup(params->name);
	dev->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	dev->params.name = dev->name;
	if (!dev->name || dev->stopfd < 0) {
		ret = -errno;
		goto err_free;
	}

	ctrl = open(VDUSE_CONTROL, O_RDWR | O_CLOEXEC);
	if (ctrl < 0) {
		ret = -errno;
		vlog(0, "cannot open %s: %s (is the vduse module loaded?)",
		     VDUSE_CONTROL, strerror(-ret));
		goto err_free;
	}
	ctrl_negotiate(dev, ctrl);
	dev->ngroups = dev->api ? (params->ngroups ? params->ngroups : 1) : 1;
	dev->nas = dev->api ? (params->nas ? params->nas : 1) : 1;
	ret = dev_alloc(dev);
	if (ret)
		goto err_ctrl;

	dev->offered = params->features | (1ULL << VIRTIO_F_VERSION_1) |
		       (1ULL << VIRTIO_F_ACCESS_PLATFORM);
	if (params->reconnect_log)
		dev->offered &= ~(1ULL << VIRTIO_F_RING_PACKED);

	ret = ctrl_create(dev, ctrl);
	if (ret == -EEXIST && params->reconnect_log) {
		reattach = true;
		ret = 0;
	} else if (ret == -EEXIST) {
		/* A leftover nobody can resume: replace it if it is free. */
		ret = destroy_by_name(ctrl, dev->name);
		if (ret == -EBUSY) {
			vlog(0, "device %s exists and is in use (attached with vdpa?); "
			     "a daemon can take it over only with a reconnect log",
			     dev->name);
			ret = -EEXIST;
		} else if (!ret) {
			ret = ctrl_create(dev, ctrl);
		}
	}
	if (ret) {
		vlog(0, "cannot create device %s: %s", dev->name, strerror(-ret));
		goto err_ctrl;
	}
	ret = open_dev_node(dev);
	if (ret) {
		vlog(0, "cannot open /dev/vduse/%s: %s", dev->name,
		     strerror(-ret));
		goto err_destroy;
	}
	for (unsigned int i = 0; i < params->num_queues; i++) {
		struct vduse_vq_config vc = {
			.index = i,
			.max_size = params->queue_size,
			.group = dev->api ? dev->vqs[i].group : 0,
		};

		/* Groups are fixed once the driver runs: fine on re-attach. */
		if (ioctl(dev->fd, VDUSE_VQ_SETUP, &vc) && !reattach) {
			ret = -errno;
			vlog(0, "%s: VQ_SETUP %u: %s", dev->name, i,
			     strerror(-ret));
			goto err_destroy;
		}
	}
	if (params->reconnect_log) {
		logok = log_open(dev, reattach);
		if (logok < 0) {
			ret = logok;
			vlog(0, "%s: reconnect log %s: %s", dev->name,
			     params->reconnect_log, strerror(-ret));
			goto err_destroy;
		}
		if (reattach && !logok)
			vlog(1, "%s: the reconnect log does not match this device; in-flight requests cannot be resubmitted",
			     dev->name);
	}
	dev->reconnected = reattach;
	close(ctrl);
	if (reattach)
		vlog(1, "%s: re-attached to the existing device", dev->name);
	return dev;

err_destroy:
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
	if (!reattach)
		destroy_by_name(ctrl, dev->name);
err_ctrl:
	close(ctrl);
err_free:
	dev_free(dev);
	errno = -ret;
	return NULL;
}

void vduse_dev_close(struct vduse_dev *dev)
{
	stop_all_queues(dev);
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
	dev_free(dev);
}

int vduse_dev_destroy(struct vduse_dev *dev)
{
	int ctrl, ret;
	char *name = strdup(dev->name);

	stop_all_queues(dev);
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
	if (dev->params.reconnect_log)
		unlink(dev->params.reconnect_log);
	dev_free(dev);
	if (!name)
		return -ENOMEM;
	ctrl = open(VDUSE_CONTROL, O_RDWR | O_CLOEXEC);
	if (ctrl < 0) {
		ret = -errno;
	} else {
		ret = destroy_by_name(ctrl, name);
		close(ctrl);
	}
	free(name);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */

void *vduse_dev_priv(struct vduse_dev *dev)
{
	return dev->priv;
}

const char *vduse_dev_name(struct vduse_dev *dev)
{
	return dev->name;
}

uint64_t vduse_dev_features(struct vduse_dev *dev)
{
	return dev->features;
}

bool vduse_dev_has_feature(struct vduse_dev *dev, unsigned int bit)
{
	return bit < 64 && (dev->features & (1ULL << bit));
}

unsigned int vduse_dev_api_version(struct vduse_dev *dev)
{
	return dev->api;
}

uint64_t vduse_dev_vduse_features(struct vduse_dev *dev)
{
	return dev->vduse_features;
}

bool vduse_dev_reconnected(struct vduse_dev *dev)
{
	return dev->reconnected;
}

int vduse_dev_update_config(struct vduse_dev *dev, uint32_t offset,
			    uint32_t len, const void *data)
{
	struct vduse_config_data *cd;
	int ret = 0;

	cd = calloc(1, sizeof(*cd) + len);
	if (!cd)
		return -ENOMEM;
	cd->offset = offset;
	cd->length = len;
	memcpy(cd->buffer, data, len);
	if (ioctl(dev->fd, VDUSE_DEV_SET_CONFIG, cd))
		ret = -errno;
	free(cd);
	if (!ret && (dev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    ioctl(dev->fd, VDUSE_DEV_INJECT_CONFIG_IRQ))
		ret = -errno;
	return ret;
}

struct vduse_vq *vduse_dev_vq(struct vduse_dev *dev, unsigned int index)
{
	return index < dev->params.num_queues ? &dev->vqs[index] : NULL;
}

struct vduse_dev *vduse_vq_dev(struct vduse_vq *vq)
{
	return vq->dev;
}

unsigned int vduse_vq_index(struct vduse_vq *vq)
{
	return vq->index;
}

unsigned int vduse_vq_size(struct vduse_vq *vq)
{
	return vq->ring.num;
}

void *vduse_vq_priv(struct vduse_vq *vq)
{
	return vq->priv;
}

void vduse_vq_set_priv(struct vduse_vq *vq, void *priv)
{
	vq->priv = priv;
}
