// SPDX-License-Identifier: GPL-2.0
/*
 * vduse-blk: a virtio-blk device served from userspace through VDUSE.
 *
 * The project's reference block daemon, built on libvduse.  The disk is a
 * file or block device (io_uring, or preadv/pwritev with --no-uring), a RAM
 * buffer, or a null disk that completes every request without touching
 * data.  Each virtqueue is served on its own library thread; its state
 * (io_uring, counters) is a struct blk_queue.
 *
 *	vduse-blk --name vblk0 --file disk.img &
 *	vdpa dev add name vblk0 mgmtdev vduse
 *
 * Request format (virtio spec, "Block Device"): a 16-byte struct
 * virtio_blk_outhdr at the start of the device-readable buffers, the data
 * (readable for writes, writable for reads), and one status byte, the last
 * byte of the device-writable buffers.  Every buffer boundary is allowed
 * anywhere.
 */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

/* -DVDUSE_BLK_NO_URING builds without liburing (host syntax checks). */
#ifndef VDUSE_BLK_NO_URING
#define HAVE_URING 1
#include <liburing.h>
#include <sys/eventfd.h>
#endif

#include <linux/vduse.h>

#include "libvduse.h"

#define PROG			"vduse-blk"
#define VERSION			"1.0"

#define SECTOR_SHIFT		9
#define SECTOR_SIZE		(1u << SECTOR_SHIFT)
#define HDR_SIZE		sizeof(struct virtio_blk_outhdr)
#define MAX_QUEUES		256
#define MAX_QUEUE_SIZE		1024
#define MAX_DISCARD_SECTORS	(1u << 21)	/* 1 GiB per discard/zeroes */
#define DIO_ALIGN		512	/* O_DIRECT buffer alignment we ensure */
#define BOUNCE_ALIGN		4096
#define INLINE_IOV		16
#define MAX_LOGGED_ERRORS	10

enum blk_backend { BACKEND_NONE, BACKEND_FILE, BACKEND_RAM, BACKEND_NULL };

static const char *const backend_name[] = {
	[BACKEND_NONE] = "none",
	[BACKEND_FILE] = "file",
	[BACKEND_RAM] = "ram",
	[BACKEND_NULL] = "null",
};

/* Request counters, one set per queue, written by that queue's thread. */
enum { ST_READ, ST_WRITE, ST_FLUSH, ST_GET_ID, ST_DISCARD, ST_WRITE_ZEROES,
       ST_UNSUPP, ST_NR };

struct blk_stats {
	uint64_t reqs[ST_NR];
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t errors;
};

struct blk_dev;

struct blk_queue {
	struct blk_dev *b;
	struct vduse_vq *vq;
	unsigned int index;
	struct blk_stats stats;
#ifdef HAVE_URING
	bool uring;			/* ring set up for this run */
	struct io_uring ring;
	int efd;			/* completion eventfd, kept across runs */
	unsigned int inflight;		/* SQEs not completed yet */
#endif
};

struct blk_dev {
	const char *name;
	enum blk_backend backend;
	const char *path;		/* --file */
	bool direct;
	bool uring;
	bool readonly;
	uint64_t size;			/* bytes, a multiple of blk_size */
	unsigned int blk_size;
	unsigned int num_queues;
	unsigned int queue_size;
	char serial[VIRTIO_BLK_ID_BYTES];

	int fd;				/* file backend */
	uint8_t *ram;			/* RAM backend */
	bool no_punch;			/* fallocate modes the file lacks */
	bool no_zero_range;

	struct vduse_dev *vdev;
	struct blk_queue *queues;
};

/* The driver's request, in the priv area libvduse allocates with it. */
struct blk_req {
	struct blk_queue *q;
	struct vduse_req *req;
	uint8_t *status;
	uint32_t type;
	uint64_t off;			/* byte offset on the disk */
	size_t len;			/* data bytes */
	struct iovec *iov;		/* the data buffers */
	unsigned int niov;
	void *bounce;			/* aligned copy of the data (O_DIRECT) */
	struct iovec bounce_iov;
	struct iovec inline_iov[INLINE_IOV];
};

static unsigned int logged_errors;

static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Buffers                                                            */

/* Point @dst at bytes [@skip, @skip + @len) of @src; returns the count. */
static unsigned int iov_slice(const struct iovec *src, unsigned int cnt,
			      size_t skip, size_t len, struct iovec *dst)
{
	unsigned int i, n = 0;

	for (i = 0; i < cnt && len; i++) {
		size_t l = src[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		dst[n].iov_base = (char *)src[i].iov_base + skip;
		dst[n++].iov_len = l;
		len -= l;
		skip = 0;
	}
	return n;
}

/* Drop the first @bytes of an iovec array (modifying it). */
static void iov_advance(struct iovec **iov, unsigned int *n, size_t bytes)
{
	while (*n && bytes >= (*iov)->iov_len) {
		bytes -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n && bytes) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + bytes;
		(*iov)->iov_len -= bytes;
	}
}

static bool iov_aligned(const struct iovec *iov, unsigned int n, size_t align)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1))
			return false;
	return true;
}

/* The status byte: the last byte of the device-writable buffers. */
static uint8_t *status_byte(const struct vduse_req *req)
{
	unsigned int i = req->out_num + req->in_num;

	while (i-- > req->out_num)
		if (req->iov[i].iov_len)
			return (uint8_t *)req->iov[i].iov_base +
			       req->iov[i].iov_len - 1;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* File backend                                                       */

/* preadv/pwritev all of @len bytes at @off; 0 or -errno. */
static int file_rw(int fd, struct iovec *iov, unsigned int n, uint64_t off,
		   size_t len, bool write)
{
	while (len) {
		int cnt = n < IOV_MAX ? (int)n : IOV_MAX;
		ssize_t ret;

		ret = write ? pwritev(fd, iov, cnt, off) : preadv(fd, iov, cnt, off);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (ret == 0)
			return -EIO;	/* end of file: it shrank under us */
		iov_advance(&iov, &n, ret);
		off += ret;
		len -= ret;
	}
	return 0;
}

/* fallocate(), remembering in @unsupported a mode the file lacks. */
static int file_fallocate(struct blk_dev *b, bool *unsupported, int mode,
			  uint64_t off, uint64_t len)
{
	if (__atomic_load_n(unsupported, __ATOMIC_RELAXED))
		return -EOPNOTSUPP;
	if (!fallocate(b->fd, mode, off, len))
		return 0;
	if (errno == EOPNOTSUPP || errno == ENOSYS) {
		__atomic_store_n(unsupported, true, __ATOMIC_RELAXED);
		return -EOPNOTSUPP;
	}
	return -errno;
}

/* Discard is a hint: a file that cannot punch holes just keeps its data. */
static int file_discard(struct blk_dev *b, uint64_t off, uint64_t len)
{
	int ret = file_fallocate(b, &b->no_punch,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 off, len);

	return ret == -EOPNOTSUPP ? 0 : ret;
}

static int file_write_zeroes(struct blk_dev *b, uint64_t off, uint64_t len,
			     bool unmap)
{
	static const uint8_t zeroes[65536] __attribute__((aligned(BOUNCE_ALIGN)));
	int ret;

	/* A punched hole reads back as zeroes. */
	if (unmap && !file_fallocate(b, &b->no_punch, FALLOC_FL_PUNCH_HOLE |
				     FALLOC_FL_KEEP_SIZE, off, len))
		return 0;
	ret = file_fallocate(b, &b->no_zero_range,
			     FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
	if (ret != -EOPNOTSUPP)
		return ret;

	while (len) {
		size_t n = len < sizeof(zeroes) ? len : sizeof(zeroes);
		ssize_t w = pwrite(b->fd, zeroes, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += w;
		len -= w;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Completion                                                         */

static void blk_log_error(struct blk_req *r, const char *what, int err)
{
	unsigned int n = __atomic_fetch_add(&logged_errors, 1, __ATOMIC_RELAXED);

	if (n < MAX_LOGGED_ERRORS)
		fprintf(stderr, PROG ": %s: queue %u: %s at byte %" PRIu64
			", %zu bytes: %s\n", r->q->b->name, r->q->index, what,
			r->off, r->len, strerror(-err));
	if (n + 1 == MAX_LOGGED_ERRORS)
		fprintf(stderr, PROG ": %s: further I/O errors not logged\n",
			r->q->b->name);
}

/*
 * Answer the driver: status byte, then the used element with the bytes
 * written into its buffers (@written data bytes + the status byte).
 * The request and @r are gone afterwards.
 */
static void blk_complete(struct blk_req *r, uint8_t status, size_t written)
{
	if (status == VIRTIO_BLK_S_IOERR)
		stat_add(&r->q->stats.errors, 1);
	else if (status == VIRTIO_BLK_S_UNSUPP)
		stat_add(&r->q->stats.reqs[ST_UNSUPP], 1);
	if (r->iov != r->inline_iov)
		free(r->iov);
	free(r->bounce);
	*r->status = status;
	vduse_vq_push(r->req, written + 1);
}

/* A read or write ended with @err (0 or -errno). */
static void blk_rw_done(struct blk_req *r, int err)
{
	bool write = r->type == VIRTIO_BLK_T_OUT;

	if (err) {
		blk_log_error(r, write ? "write" : "read", err);
		blk_complete(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (write) {
		stat_add(&r->q->stats.bytes_written, r->len);
		blk_complete(r, VIRTIO_BLK_S_OK, 0);
	} else {
		if (r->bounce)
			vduse_iov_from_buf(r->iov, r->niov, 0, r->bounce, r->len);
		stat_add(&r->q->stats.bytes_read, r->len);
		blk_complete(r, VIRTIO_BLK_S_OK, r->len);
	}
}

/* The buffers the file I/O goes to: the request's, or the bounce buffer. */
static struct iovec *blk_io_iov(struct blk_req *r, unsigned int *n)
{
	*n = r->bounce ? 1 : r->niov;
	return r->bounce ? &r->bounce_iov : r->iov;
}

/* Finish a transfer synchronously after @done bytes; 0 or -errno. */
static int blk_rw_rest(struct blk_req *r, size_t done)
{
	unsigned int n;
	struct iovec *iov = blk_io_iov(r, &n);

	iov_advance(&iov, &n, done);
	return file_rw(r->q->b->fd, iov, n, r->off + done, r->len - done,
		       r->type == VIRTIO_BLK_T_OUT);
}

/* ------------------------------------------------------------------ */
/* io_uring (file backend)                                            */

#ifdef HAVE_URING
static void uring_complete(struct blk_queue *q, struct io_uring_cqe *cqe)
{
	struct blk_req *r = io_uring_cqe_get_data(cqe);
	int res = cqe->res;

	q->inflight--;
	if (r->type == VIRTIO_BLK_T_FLUSH) {
		if (res < 0)
			blk_log_error(r, "flush", res);
		blk_complete(r, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 0);
		return;
	}
	if (res >= 0)	/* a short transfer is finished the slow way */
		res = (size_t)res < r->len ? blk_rw_rest(r, res) : 0;
	blk_rw_done(r, res);
}

static unsigned int uring_reap(struct blk_queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&q->ring, head, cqe) {
		uring_complete(q, cqe);
		n++;
	}
	io_uring_cq_advance(&q->ring, n);
	return n;
}

/* The completion eventfd fired (queue thread). */
static void uring_event(struct vduse_vq *vq, int fd, uint32_t events,
			void *arg)
{
	struct blk_queue *q = arg;
	eventfd_t v;

	(void)events;
	eventfd_read(fd, &v);	/* clear it first: no completion is missed */
	if (uring_reap(q))
		vduse_vq_notify(vq);
}

static void uring_submit(struct blk_queue *q)
{
	int ret;

	if (!io_uring_sq_ready(&q->ring))
		return;
	ret = io_uring_submit(&q->ring);
	if (ret < 0)	/* the SQEs stay queued for the next try */
		fprintf(stderr, PROG ": %s: queue %u: io_uring_submit: %s\n",
			q->b->name, q->index, strerror(-ret));
}

static struct io_uring_sqe *uring_get_sqe(struct blk_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		uring_submit(q);
		sqe = io_uring_get_sqe(&q->ring);
	}
	return sqe;
}

/* Queue a read, write or flush; false: do it synchronously instead. */
static bool uring_queue(struct blk_req *r)
{
	struct blk_queue *q = r->q;
	struct io_uring_sqe *sqe;
	struct iovec *iov;
	unsigned int n;

	iov = blk_io_iov(r, &n);
	if (!q->uring || n > IOV_MAX)
		return false;
	sqe = uring_get_sqe(q);
	if (!sqe)
		return false;
	if (r->type == VIRTIO_BLK_T_FLUSH)
		io_uring_prep_fsync(sqe, q->b->fd, IORING_FSYNC_DATASYNC);
	else if (r->type == VIRTIO_BLK_T_OUT)
		io_uring_prep_writev(sqe, q->b->fd, iov, n, r->off);
	else
		io_uring_prep_readv(sqe, q->b->fd, iov, n, r->off);
	io_uring_sqe_set_data(sqe, r);
	q->inflight++;
	return true;
}

static void uring_start(struct blk_queue *q)
{
	const char *what;
	int ret;

	if (q->efd < 0) {
		q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->efd < 0) {
			ret = -errno;
			what = "eventfd";
			goto fail;
		}
	}
	ret = io_uring_queue_init(q->b->queue_size, &q->ring, 0);
	if (ret < 0) {
		what = "io_uring_queue_init";
		goto fail;
	}
	what = "io_uring_register_eventfd";
	ret = io_uring_register_eventfd(&q->ring, q->efd);
	if (!ret) {
		what = "vduse_vq_watch_fd";
		ret = vduse_vq_watch_fd(q->vq, q->efd, EPOLLIN, uring_event, q);
	}
	if (ret < 0) {
		io_uring_queue_exit(&q->ring);
		goto fail;
	}
	q->uring = true;
	q->inflight = 0;
	return;
fail:
	fprintf(stderr, PROG ": %s: queue %u: %s: %s; using preadv/pwritev\n",
		q->b->name, q->index, what, strerror(-ret));
}

/* Wait for every request in flight and answer it (queue thread). */
static void uring_stop(struct blk_queue *q)
{
	struct io_uring_cqe *cqe;
	int ret;

	if (!q->uring)
		return;
	while (q->inflight) {
		uring_submit(q);
		ret = io_uring_wait_cqe(&q->ring, &cqe);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN) {
			fprintf(stderr, PROG ": %s: queue %u: io_uring_wait_cqe: %s; %u requests lost\n",
				q->b->name, q->index, strerror(-ret),
				q->inflight);
			break;
		}
		uring_reap(q);
	}
	vduse_vq_notify(q->vq);
	io_uring_queue_exit(&q->ring);
	q->uring = false;
}
#else
static bool uring_queue(struct blk_req *r)
{
	(void)r;
	return false;
}
#endif

/* ------------------------------------------------------------------ */
/* Requests                                                           */

static bool range_ok(const struct blk_dev *b, uint64_t sector, uint64_t len)
{
	uint64_t capacity = b->size >> SECTOR_SHIFT;

	return sector <= capacity && len >> SECTOR_SHIFT <= capacity - sector;
}

/* Set up r->iov (and a bounce buffer for O_DIRECT); 0 or -ENOMEM. */
static int blk_map_data(struct blk_req *r, bool write)
{
	struct vduse_req *req = r->req;
	const struct iovec *src = write ? req->iov : req->iov + req->out_num;
	unsigned int cnt = write ? req->out_num : req->in_num;

	r->iov = cnt <= INLINE_IOV ? r->inline_iov : malloc(cnt * sizeof(*r->iov));
	if (!r->iov) {
		r->iov = r->inline_iov;
		return -ENOMEM;
	}
	r->niov = iov_slice(src, cnt, write ? HDR_SIZE : 0, r->len, r->iov);
	if (!r->q->b->direct || iov_aligned(r->iov, r->niov, DIO_ALIGN))
		return 0;

	if (posix_memalign(&r->bounce, BOUNCE_ALIGN, r->len)) {
		r->bounce = NULL;
		return -ENOMEM;
	}
	if (write)
		vduse_iov_to_buf(r->iov, r->niov, 0, r->bounce, r->len);
	r->bounce_iov.iov_base = r->bounce;
	r->bounce_iov.iov_len = r->len;
	return 0;
}

/* Each handler returns true when it answered the request already. */
static bool blk_rw(struct blk_req *r, uint64_t sector)
{
	struct blk_dev *b = r->q->b;
	struct vduse_req *req = r->req;
	bool write = r->type == VIRTIO_BLK_T_OUT;
	int err;

	stat_add(&r->q->stats.reqs[write ? ST_WRITE : ST_READ], 1);
	r->len = write ? req->out_len - HDR_SIZE : req->in_len - 1;
	r->off = sector << SECTOR_SHIFT;
	if ((write && b->readonly) || r->len % SECTOR_SIZE ||
	    !range_ok(b, sector, r->len)) {
		blk_complete(r, VIRTIO_BLK_S_IOERR, 0);
		return true;
	}

	switch (b->backend) {
	case BACKEND_FILE:
		break;
	case BACKEND_RAM:
		if (write)
			vduse_iov_to_buf(req->iov, req->out_num, HDR_SIZE,
					 b->ram + r->off, r->len);
		else
			vduse_iov_from_buf(req->iov + req->out_num, req->in_num,
					   0, b->ram + r->off, r->len);
		/* fall through */
	default:
		blk_rw_done(r, 0);
		return true;
	}

	if (!r->len) {
		blk_rw_done(r, 0);
		return true;
	}
	err = blk_map_data(r, write);
	if (!err && uring_queue(r))
		return false;
	if (!err)
		err = blk_rw_rest(r, 0);
	blk_rw_done(r, err);
	return true;
}

static bool blk_flush(struct blk_req *r)
{
	struct blk_dev *b = r->q->b;
	int err = 0;

	stat_add(&r->q->stats.reqs[ST_FLUSH], 1);
	if (b->backend == BACKEND_FILE) {
		if (uring_queue(r))
			return false;
		if (fdatasync(b->fd)) {
			err = -errno;
			blk_log_error(r, "flush", err);
		}
	}
	blk_complete(r, err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 0);
	return true;
}

static bool blk_get_id(struct blk_req *r)
{
	struct vduse_req *req = r->req;
	size_t n = req->in_len - 1;

	stat_add(&r->q->stats.reqs[ST_GET_ID], 1);
	if (n > VIRTIO_BLK_ID_BYTES)
		n = VIRTIO_BLK_ID_BYTES;
	n = vduse_iov_from_buf(req->iov + req->out_num, req->in_num, 0,
			       r->q->b->serial, n);
	blk_complete(r, VIRTIO_BLK_S_OK, n);
	return true;
}

/* Discard and write zeroes: one segment (max_*_seg = 1). */
static bool blk_discard_zeroes(struct blk_req *r)
{
	struct virtio_blk_discard_write_zeroes seg;
	struct blk_dev *b = r->q->b;
	struct vduse_req *req = r->req;
	bool zeroes = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint32_t num, flags;
	uint64_t sector;
	int err = 0;

	stat_add(&r->q->stats.reqs[zeroes ? ST_WRITE_ZEROES : ST_DISCARD], 1);
	if (b->readonly || req->out_len - HDR_SIZE != sizeof(seg)) {
		blk_complete(r, VIRTIO_BLK_S_IOERR, 0);
		return true;
	}
	vduse_iov_to_buf(req->iov, req->out_num, HDR_SIZE, &seg, sizeof(seg));
	sector = le64toh(seg.sector);
	num = le32toh(seg.num_sectors);
	flags = le32toh(seg.flags);
	/* Unknown flags, or unmap on a discard: the spec says UNSUPP. */
	if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP ||
	    (!zeroes && flags)) {
		blk_complete(r, VIRTIO_BLK_S_UNSUPP, 0);
		return true;
	}
	r->off = sector << SECTOR_SHIFT;
	r->len = (size_t)num << SECTOR_SHIFT;
	if (num > MAX_DISCARD_SECTORS || !range_ok(b, sector, r->len)) {
		blk_complete(r, VIRTIO_BLK_S_IOERR, 0);
		return true;
	}

	if (b->backend == BACKEND_RAM && zeroes)
		memset(b->ram + r->off, 0, r->len);
	else if (b->backend == BACKEND_FILE && zeroes)
		err = file_write_zeroes(b, r->off, r->len,
					flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	else if (b->backend == BACKEND_FILE)
		err = file_discard(b, r->off, r->len);
	if (err)
		blk_log_error(r, zeroes ? "write zeroes" : "discard", err);
	blk_complete(r, err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 0);
	return true;
}

static bool blk_handle(struct blk_queue *q, struct vduse_req *req)
{
	struct blk_req *r = req->priv;
	struct virtio_blk_outhdr hdr;

	memset(r, 0, offsetof(struct blk_req, inline_iov));
	r->q = q;
	r->req = req;
	r->iov = r->inline_iov;
	r->status = status_byte(req);
	if (!r->status) {
		/* Nowhere to answer; hand the buffers back. */
		if (!__atomic_fetch_add(&logged_errors, 1, __ATOMIC_RELAXED))
			fprintf(stderr, PROG ": %s: queue %u: request without a status byte\n",
				q->b->name, q->index);
		vduse_vq_push(req, 0);
		return true;
	}
	if (vduse_iov_to_buf(req->iov, req->out_num, 0, &hdr, sizeof(hdr)) !=
	    sizeof(hdr)) {
		blk_complete(r, VIRTIO_BLK_S_IOERR, 0);
		return true;
	}
	r->type = le32toh(hdr.type);

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return blk_rw(r, le64toh(hdr.sector));
	case VIRTIO_BLK_T_FLUSH:
		return blk_flush(r);
	case VIRTIO_BLK_T_GET_ID:
		return blk_get_id(r);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_discard_zeroes(r);
	default:
		blk_complete(r, VIRTIO_BLK_S_UNSUPP, 0);
		return true;
	}
}

/* ------------------------------------------------------------------ */
/* libvduse callbacks                                                 */

static void blk_queue_start(struct vduse_vq *vq)
{
	struct blk_dev *b = vduse_dev_priv(vduse_vq_dev(vq));
	struct blk_queue *q = &b->queues[vduse_vq_index(vq)];

	q->vq = vq;
	vduse_vq_set_priv(vq, q);
#ifdef HAVE_URING
	if (b->backend == BACKEND_FILE && b->uring)
		uring_start(q);
#endif
}

/* --crash-after N: die of SIGKILL holding the N-th request (for tests). */
static unsigned long crash_after;
static unsigned long nr_popped;

static void maybe_crash(void)
{
	static const char msg[] = PROG ": --crash-after reached: SIGKILL\n";

	if (!crash_after ||
	    __atomic_add_fetch(&nr_popped, 1, __ATOMIC_RELAXED) != crash_after)
		return;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* dying anyway */
	}
	raise(SIGKILL);
}

static void blk_queue_kick(struct vduse_vq *vq)
{
	struct blk_queue *q = vduse_vq_priv(vq);
	struct vduse_req *req;
	bool answered = false;

	while ((req = vduse_vq_pop(vq, sizeof(struct blk_req)))) {
		maybe_crash();
		answered |= blk_handle(q, req);
	}
#ifdef HAVE_URING
	if (q->uring)
		uring_submit(q);
#endif
	if (answered)
		vduse_vq_notify(vq);
}

static void blk_queue_stop(struct vduse_vq *vq)
{
#ifdef HAVE_URING
	uring_stop(vduse_vq_priv(vq));
#else
	(void)vq;	/* everything was answered synchronously */
#endif
}

static const struct vduse_ops blk_ops = {
	.queue_start = blk_queue_start,
	.queue_kick = blk_queue_kick,
	.queue_stop = blk_queue_stop,
};

/* ------------------------------------------------------------------ */
/* Statistics and signals                                             */

static void blk_print_stats(struct blk_dev *b)
{
	struct blk_stats t = { 0 };
	unsigned int i, j;

	for (i = 0; i < b->num_queues; i++) {
		struct blk_stats *s = &b->queues[i].stats;

		for (j = 0; j < ST_NR; j++)
			t.reqs[j] += __atomic_load_n(&s->reqs[j], __ATOMIC_RELAXED);
		t.bytes_read += __atomic_load_n(&s->bytes_read, __ATOMIC_RELAXED);
		t.bytes_written += __atomic_load_n(&s->bytes_written,
						   __ATOMIC_RELAXED);
		t.errors += __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
	}
	fprintf(stderr, PROG ": %s: %" PRIu64 " reads (%" PRIu64 " bytes), %"
		PRIu64 " writes (%" PRIu64 " bytes), %" PRIu64 " flushes, %"
		PRIu64 " discards, %" PRIu64 " write-zeroes, %" PRIu64
		" get-id, %" PRIu64 " unsupported, %" PRIu64 " I/O errors\n",
		b->name, t.reqs[ST_READ], t.bytes_read, t.reqs[ST_WRITE],
		t.bytes_written, t.reqs[ST_FLUSH], t.reqs[ST_DISCARD],
		t.reqs[ST_WRITE_ZEROES], t.reqs[ST_GET_ID], t.reqs[ST_UNSUPP],
		t.errors);
}

static void blk_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGUSR1);
}

/*
 * The signals are blocked in every thread and taken here with sigwait(),
 * so the stats can be printed with stdio.
 */
static void *blk_signal_thread(void *arg)
{
	struct blk_dev *b = arg;
	sigset_t set;
	int sig;

	blk_sigset(&set);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (sig == SIGUSR1)
			blk_print_stats(b);
		else
			vduse_dev_stop(b->vdev);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	}
	return NULL;
}

/* VDUSE_DESTROY_DEV by name, through the control node; 0 or -errno. */
static int destroy_by_name(const char *name)
{
	char buf[VDUSE_NAME_MAX] = { 0 };
	int ctrl, ret = 0;

	ctrl = open("/dev/vduse/control", O_RDWR | O_CLOEXEC);
	if (ctrl < 0)
		return -errno;
	strncpy(buf, name, sizeof(buf) - 1);
	if (ioctl(ctrl, VDUSE_DESTROY_DEV, buf))
		ret = -errno;
	close(ctrl);
	return ret;
}

/*
 * Destroy the device.  vduse_dev_destroy() releases our handle whatever
 * happens; while the device is still attached (EBUSY, e.g. a "vdpa dev
 * del" in progress) retry by name for a second.
 */
static int blk_destroy(struct blk_dev *b)
{
	const struct timespec delay = { .tv_nsec = 100 * 1000 * 1000 };
	int ret, i;

	ret = vduse_dev_destroy(b->vdev);
	b->vdev = NULL;
	for (i = 0; ret == -EBUSY && i < 10; i++) {
		nanosleep(&delay, NULL);
		ret = destroy_by_name(b->name);
		if (ret == -EINVAL)	/* no such device: gone meanwhile */
			ret = 0;
	}
	if (ret == -EBUSY)
		fprintf(stderr, PROG ": cannot destroy %s: still attached; run 'vdpa dev del %s' first\n"
			PROG ": %s is left behind; the next " PROG " --name %s replaces it\n",
			b->name, b->name, b->name, b->name);
	else if (ret)
		fprintf(stderr, PROG ": cannot destroy %s: %s\n", b->name,
			strerror(-ret));
	return ret;
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

struct blk_opts {
	const char *reconnect_log;
	bool no_packed;
	bool umem;
	int api_version;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: " PROG " --name NAME (--file PATH | --ram SIZE | --null SIZE) [OPTION]...\n"
"Serve a virtio-blk disk through VDUSE as /dev/vduse/NAME.  Attach it with\n"
"'vdpa dev add name NAME mgmtdev vduse'.  Runs in the foreground until\n"
"SIGTERM or SIGINT, then destroys the device.\n"
"\n"
"Backend (exactly one):\n"
"  --file PATH              a regular file or a block device\n"
"  --ram SIZE               a zero-filled disk in memory\n"
"  --null SIZE              a disk that drops writes and leaves read buffers\n"
"                           untouched, to measure the transport alone\n"
"  SIZE is in bytes, with an optional K, M, G or T suffix (powers of 1024).\n"
"\n"
"Options:\n"
"  --name NAME              device name (required)\n"
"  --direct                 open the file with O_DIRECT, bypassing the page cache\n"
"  --no-uring               file I/O with preadv/pwritev instead of io_uring\n"
"  --readonly               a read-only disk (VIRTIO_BLK_F_RO)\n"
"  --num-queues N           virtqueues, each served by its own thread (1-%u;\n"
"                           default 1)\n"
"  --queue-size N           virtqueue size, a power of two from 4 to %u\n"
"                           (default 256)\n"
"  --logical-block-size N   512, 1024, 2048 or 4096 (default 512)\n"
"  --serial STR             serial number for VIRTIO_BLK_T_GET_ID, up to 20\n"
"                           bytes (default: empty)\n"
"  --no-packed              do not offer the packed virtqueue layout\n"
"  --reconnect-log PATH     in-flight log: after a crash, restarting with the\n"
"                           same NAME and PATH re-attaches to the device and\n"
"                           redoes the requests that were in flight\n"
"  --umem                   register our memory as the bounce buffer area\n"
"                           when the kernel offers it\n"
"  --api 0|1                highest VDUSE API version to use (default: best)\n"
"  --foreground             accepted for compatibility; always the case\n"
"  --debug                  print libvduse debug messages\n"
"  --crash-after N          testing aid: die of SIGKILL right after taking\n"
"                           the N-th request off a queue\n"
"  -h, --help               print this help and exit\n"
"  -V, --version            print the version and exit\n"
"\n"
"SIGUSR1 prints request counters to stderr.\n"
"Exit status: 0 after SIGTERM/SIGINT and a clean destroy, 1 on a runtime\n"
"failure, 2 on bad usage.\n", MAX_QUEUES, MAX_QUEUE_SIZE);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	exit(2);
}

/* A decimal number, with a K/M/G/T suffix when @suffix. */
static uint64_t parse_num(const char *opt, const char *arg, bool suffix,
			  uint64_t min, uint64_t max)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (!isdigit((unsigned char)arg[0]) || errno)
		usage_error("--%s: '%s' is not a number", opt, arg);
	if (suffix && *end) {
		const char *units = "KMGT", *u = strchr(units, toupper(*end));

		if (u)
			shift = 10 * (u - units + 1);
		end += !!u;
	}
	if (*end)
		usage_error("--%s: '%s' is not a number%s", opt, arg,
			    suffix ? " (suffixes: K, M, G, T)" : "");
	if (shift && v > ULLONG_MAX >> shift)
		usage_error("--%s: '%s' is too large", opt, arg);
	v <<= shift;
	if (v < min || v > max)
		usage_error("--%s: %s is out of range (%" PRIu64 "-%" PRIu64 ")",
			    opt, arg, min, max);
	return v;
}

enum {
	OPT_NAME = 256, OPT_FILE, OPT_RAM, OPT_NULL, OPT_DIRECT, OPT_NO_URING,
	OPT_READONLY, OPT_NUM_QUEUES, OPT_QUEUE_SIZE, OPT_BLOCK_SIZE,
	OPT_SERIAL, OPT_NO_PACKED, OPT_RECONNECT_LOG, OPT_UMEM, OPT_API,
	OPT_FOREGROUND, OPT_DEBUG, OPT_CRASH_AFTER,
};

static const struct option long_options[] = {
	{ "name",		required_argument,	NULL, OPT_NAME },
	{ "file",		required_argument,	NULL, OPT_FILE },
	{ "ram",		required_argument,	NULL, OPT_RAM },
	{ "null",		required_argument,	NULL, OPT_NULL },
	{ "direct",		no_argument,		NULL, OPT_DIRECT },
	{ "no-uring",		no_argument,		NULL, OPT_NO_URING },
	{ "readonly",		no_argument,		NULL, OPT_READONLY },
	{ "num-queues",		required_argument,	NULL, OPT_NUM_QUEUES },
	{ "queue-size",		required_argument,	NULL, OPT_QUEUE_SIZE },
	{ "logical-block-size",	required_argument,	NULL, OPT_BLOCK_SIZE },
	{ "serial",		required_argument,	NULL, OPT_SERIAL },
	{ "no-packed",		no_argument,		NULL, OPT_NO_PACKED },
	{ "reconnect-log",	required_argument,	NULL, OPT_RECONNECT_LOG },
	{ "umem",		no_argument,		NULL, OPT_UMEM },
	{ "api",		required_argument,	NULL, OPT_API },
	{ "foreground",		no_argument,		NULL, OPT_FOREGROUND },
	{ "debug",		no_argument,		NULL, OPT_DEBUG },
	{ "crash-after",	required_argument,	NULL, OPT_CRASH_AFTER },
	{ "help",		no_argument,		NULL, 'h' },
	{ "version",		no_argument,		NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static void set_backend(struct blk_dev *b, enum blk_backend kind)
{
	if (b->backend != BACKEND_NONE)
		usage_error("only one backend: --file, --ram or --null");
	b->backend = kind;
}

static void parse_args(int argc, char **argv, struct blk_dev *b,
		       struct blk_opts *o)
{
	const char *serial = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
		const char *opt = c >= OPT_NAME ? long_options[c - OPT_NAME].name : "";

		switch (c) {
		case OPT_NAME:
			b->name = optarg;
			break;
		case OPT_FILE:
			set_backend(b, BACKEND_FILE);
			b->path = optarg;
			break;
		case OPT_RAM:
		case OPT_NULL:
			set_backend(b, c == OPT_RAM ? BACKEND_RAM : BACKEND_NULL);
			b->size = parse_num(opt, optarg, true, 1, UINT64_MAX);
			break;
		case OPT_DIRECT:
			b->direct = true;
			break;
		case OPT_NO_URING:
			b->uring = false;
			break;
		case OPT_READONLY:
			b->readonly = true;
			break;
		case OPT_NUM_QUEUES:
			b->num_queues = parse_num(opt, optarg, false, 1, MAX_QUEUES);
			break;
		case OPT_QUEUE_SIZE:
			b->queue_size = parse_num(opt, optarg, false, 4,
						  MAX_QUEUE_SIZE);
			if (b->queue_size & (b->queue_size - 1))
				usage_error("--queue-size: %u is not a power of two",
					    b->queue_size);
			break;
		case OPT_BLOCK_SIZE:
			b->blk_size = parse_num(opt, optarg, false, 512, 4096);
			if (b->blk_size & (b->blk_size - 1))
				usage_error("--logical-block-size: %u is not 512, 1024, 2048 or 4096",
					    b->blk_size);
			break;
		case OPT_SERIAL:
			serial = optarg;
			break;
		case OPT_NO_PACKED:
			o->no_packed = true;
			break;
		case OPT_RECONNECT_LOG:
			o->reconnect_log = optarg;
			break;
		case OPT_UMEM:
			o->umem = true;
			break;
		case OPT_API:
			o->api_version = parse_num(opt, optarg, false, 0, 1);
			break;
		case OPT_FOREGROUND:
			break;
		case OPT_DEBUG:
			vduse_debug = 1;
			break;
		case OPT_CRASH_AFTER:
			crash_after = parse_num(opt, optarg, false, 1, ULONG_MAX);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(PROG " " VERSION "\n");
			exit(0);
		default:	/* getopt_long() said what was wrong */
			fputs("Try '" PROG " --help' for more information.\n",
			      stderr);
			exit(2);
		}
	}

	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!b->name || !*b->name)
		usage_error("--name NAME is required");
	if (b->backend == BACKEND_NONE)
		usage_error("a backend is required: --file PATH, --ram SIZE or --null SIZE");
	if (b->direct && b->backend != BACKEND_FILE)
		usage_error("--direct needs --file");
	if (b->backend != BACKEND_FILE && b->size % b->blk_size)
		usage_error("--%s: the size must be a multiple of the block size (%u)",
			    backend_name[b->backend], b->blk_size);
	if (serial && strlen(serial) > VIRTIO_BLK_ID_BYTES)
		usage_error("--serial: '%s' is longer than %d bytes", serial,
			    VIRTIO_BLK_ID_BYTES);
	if (serial)
		memcpy(b->serial, serial, strlen(serial));
}

/* ------------------------------------------------------------------ */
/* Setup                                                              */

static void blk_open_file(struct blk_dev *b)
{
	int flags = (b->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	uint64_t rest;
	struct stat st;

	if (b->direct)
		flags |= O_DIRECT;
	b->fd = open(b->path, flags);
	if (b->fd < 0 && errno == EINVAL && b->direct)
		usage_error("%s: the file system does not support O_DIRECT",
			    b->path);
	if (b->fd < 0 || fstat(b->fd, &st))
		usage_error("%s: %s", b->path, strerror(errno));

	if (S_ISBLK(st.st_mode)) {
		int lbs;

		if (ioctl(b->fd, BLKGETSIZE64, &b->size))
			usage_error("%s: BLKGETSIZE64: %s", b->path,
				    strerror(errno));
		if (b->direct && !ioctl(b->fd, BLKSSZGET, &lbs) &&
		    (unsigned int)lbs > b->blk_size)
			usage_error("%s has %d-byte sectors; use --logical-block-size %d",
				    b->path, lbs, lbs);
	} else if (S_ISREG(st.st_mode)) {
		b->size = st.st_size;
	} else {
		usage_error("%s: not a regular file or a block device", b->path);
	}

	rest = b->size % b->blk_size;
	b->size -= rest;
	if (!b->size)
		usage_error("%s: smaller than one %u-byte block", b->path,
			    b->blk_size);
	if (rest)
		fprintf(stderr, PROG ": %s: ignoring the last %" PRIu64 " bytes (not a whole block)\n",
			b->path, rest);
}

static void blk_open_backend(struct blk_dev *b)
{
	if (b->backend == BACKEND_FILE) {
		blk_open_file(b);
	} else if (b->backend == BACKEND_RAM) {
		if (b->size > SIZE_MAX)
			usage_error("--ram: too large for this machine");
		b->ram = mmap(NULL, b->size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (b->ram == MAP_FAILED) {
			fprintf(stderr, PROG ": cannot allocate %" PRIu64 " bytes: %s\n",
				b->size, strerror(errno));
			exit(1);
		}
	}
}

static uint64_t blk_features(const struct blk_dev *b, const struct blk_opts *o)
{
	uint64_t f = 1ULL << VIRTIO_BLK_F_SEG_MAX |
		     1ULL << VIRTIO_BLK_F_BLK_SIZE |
		     1ULL << VIRTIO_BLK_F_FLUSH |
		     1ULL << VIRTIO_RING_F_INDIRECT_DESC |
		     1ULL << VIRTIO_RING_F_EVENT_IDX;

	if (b->readonly)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= 1ULL << VIRTIO_BLK_F_DISCARD |
		     1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	if (b->num_queues > 1)
		f |= 1ULL << VIRTIO_BLK_F_MQ;
	if (!o->no_packed)
		f |= 1ULL << VIRTIO_F_RING_PACKED;
	return f;
}

static void blk_config(const struct blk_dev *b, struct virtio_blk_config *c)
{
	memset(c, 0, sizeof(*c));
	c->capacity = htole64(b->size >> SECTOR_SHIFT);
	c->seg_max = htole32(b->queue_size - 2);
	c->blk_size = htole32(b->blk_size);
	c->num_queues = htole16(b->num_queues);
	c->max_discard_sectors = htole32(MAX_DISCARD_SECTORS);
	c->max_discard_seg = htole32(1);
	c->discard_sector_alignment = htole32(b->blk_size >> SECTOR_SHIFT);
	c->max_write_zeroes_sectors = htole32(MAX_DISCARD_SECTORS);
	c->max_write_zeroes_seg = htole32(1);
	c->write_zeroes_may_unmap = b->backend == BACKEND_FILE;
}

int main(int argc, char **argv)
{
	struct blk_dev b = {
		.uring = true,
		.blk_size = 512,
		.num_queues = 1,
		.queue_size = 256,
		.fd = -1,
	};
	struct blk_opts o = { .api_version = -1 };
	struct vduse_dev_params params;
	struct virtio_blk_config config;
	pthread_t sig_thread;
	sigset_t sigs;
	unsigned int i;
	int ret;

	parse_args(argc, argv, &b, &o);
	blk_open_backend(&b);

	b.queues = calloc(b.num_queues, sizeof(*b.queues));
	if (!b.queues) {
		fprintf(stderr, PROG ": %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < b.num_queues; i++) {
		b.queues[i].b = &b;
		b.queues[i].index = i;
#ifdef HAVE_URING
		b.queues[i].efd = -1;
#endif
	}

	blk_config(&b, &config);
	params = (struct vduse_dev_params) {
		.name = b.name,
		.device_id = VIRTIO_ID_BLOCK,
		.features = blk_features(&b, &o),
		.num_queues = b.num_queues,
		.queue_size = b.queue_size,
		.config = &config,
		.config_size = sizeof(config),
		.reconnect_log = o.reconnect_log,
		.umem = o.umem,
		.api_version = o.api_version,
	};

	/* Library threads inherit the mask: only the signal thread takes them. */
	blk_sigset(&sigs);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	b.vdev = vduse_dev_create(&params, &blk_ops, &b);
	if (!b.vdev) {
		ret = errno;
		fprintf(stderr, PROG ": cannot create device %s: %s\n", b.name,
			strerror(ret));
		return 1;
	}
	ret = pthread_create(&sig_thread, NULL, blk_signal_thread, &b);
	if (ret) {
		fprintf(stderr, PROG ": pthread_create: %s\n", strerror(ret));
		blk_destroy(&b);
		return 1;
	}

	fprintf(stderr, PROG ": /dev/vduse/%s ready (%s%s%s, %u queue%s x %u, %u B blocks, %" PRIu64 " sectors%s%s%s)\n",
		b.name, backend_name[b.backend], b.path ? " " : "",
		b.path ? b.path : "", b.num_queues, b.num_queues > 1 ? "s" : "",
		b.queue_size, b.blk_size, b.size >> SECTOR_SHIFT,
		b.direct ? ", O_DIRECT" : "", b.readonly ? ", read-only" : "",
		vduse_dev_reconnected(b.vdev) ? ", reconnected" : "");

	ret = vduse_dev_run(b.vdev);
	if (ret < 0)
		fprintf(stderr, PROG ": %s: %s\n", b.name, strerror(-ret));

	pthread_cancel(sig_thread);
	pthread_join(sig_thread, NULL);
	if (blk_destroy(&b))
		ret = -1;
	free(b.queues);
	return ret < 0 ? 1 : 0;
}
