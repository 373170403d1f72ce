// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_fuzz: operations on /dev/vduse/NAME: opens, closes and dups, the
 * message channel read and written by hand (short, oversized, garbage and
 * real replies), the device ioctls with structured arguments, ioctl
 * numbers near them with junk, and the device's sysfs attributes.
 */
#include <linux/vduse.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz.h"

static const struct fz_devinfo unknown_dev = {
	.vq_num = 2, .ngroups = 1, .nas = 1, .config_size = 64,
};

const struct fz_devinfo *fz_info(struct fz *f, int slot)
{
	const struct fz_devinfo *d = &fz_sh->dev[f->dev[slot].name];

	return d->exists ? d : &unknown_dev;
}

int fz_dev_open(struct fz *f, int slot, int name)
{
	char path[VDUSE_NAME_MAX + 16];
	int flags = O_RDWR | O_NONBLOCK | O_CLOEXEC, fd;

	if (fz_pct(&f->rng, 4))
		flags = O_RDONLY | O_NONBLOCK;
	snprintf(path, sizeof(path), "/dev/vduse/%s", fz_names[name]);
	fd = fz_call(f, open(path, flags), "open dev[%d] %.40s flags 0x%x",
		     slot, fz_names[name], flags);
	if (fd < 0)
		return fd;
	fz_count(C_OPENED);
	pthread_mutex_lock(&f->lock);
	if (f->dev[slot].fd >= 0)
		fz_dev_close(f, slot);
	f->dev[slot].fd = fd;
	f->dev[slot].name = name;
	f->dev[slot].npending = 0;
	pthread_mutex_unlock(&f->lock);
	return fd;
}

int fz_dev_ensure(struct fz *f, int name)
{
	int i, slot = -1;

	for (i = 0; i < FZ_DEV_SLOTS; i++) {
		if (f->dev[i].fd >= 0 && f->dev[i].name == name)
			return i;
		if (f->dev[i].fd < 0 && slot < 0)
			slot = i;
	}
	if (slot < 0)
		slot = fz_pick_dev(f, false);
	return fz_dev_open(f, slot, name) < 0 ? -1 : slot;
}

/* An open device slot, opening one if none is. */
int fz_dev_slot(struct fz *f)
{
	int slot = fz_pick_dev(f, true);

	if (slot >= 0 && fz_pct(&f->rng, 90))
		return slot;
	slot = fz_pick_dev(f, false);
	if (f->dev[slot].fd >= 0)
		return slot;
	if (fz_dev_open(f, slot, fz_name(f)) < 0)
		return -1;
	return slot;
}

int fz_dev_slot_driven(struct fz *f)
{
	int i, k = fz_below(&f->rng, FZ_DEV_SLOTS), slot;
	char drv[64];

	if (fz_pct(&f->rng, 70)) {
		for (i = 0; i < FZ_DEV_SLOTS; i++) {
			slot = (k + i) % FZ_DEV_SLOTS;
			if (f->dev[slot].fd >= 0 &&
			    fz_bound_to(fz_names[f->dev[slot].name], drv,
					sizeof(drv)) &&
			    !strcmp(drv, "virtio_vdpa"))
				return slot;
		}
	}
	return fz_dev_slot(f);
}

static void op_dev_open(struct fz *f)
{
	int slot = fz_pick_dev(f, false);

	if (f->dev[slot].fd >= 0 && fz_pct(&f->rng, 50)) {
		fz_log(f, "close dev[%d]", slot);
		pthread_mutex_lock(&f->lock);
		fz_dev_close(f, slot);
		pthread_mutex_unlock(&f->lock);
	}
	fz_dev_open(f, slot, fz_name(f));
}

static void op_dev_close(struct fz *f)
{
	int slot = fz_pick_dev(f, true);

	if (slot < 0)
		return;
	fz_log(f, "close dev[%d] (%.40s)", slot, fz_names[f->dev[slot].name]);
	pthread_mutex_lock(&f->lock);
	fz_dev_close(f, slot);
	pthread_mutex_unlock(&f->lock);
}

static void op_dev_dup(struct fz *f)
{
	int from = fz_pick_dev(f, true), to = fz_pick_dev(f, false), fd;

	if (from < 0 || from == to)
		return;
	fd = fz_call(f, dup(f->dev[from].fd), "dup dev[%d] to dev[%d]", from,
		     to);
	if (fd < 0)
		return;
	pthread_mutex_lock(&f->lock);
	if (f->dev[to].fd >= 0)
		fz_dev_close(f, to);
	f->dev[to].fd = fd;
	f->dev[to].name = f->dev[from].name;
	pthread_mutex_unlock(&f->lock);
}

/* ------------------------------------------------------------------ */
/* The message channel by hand                                         */

static void pending_add(struct fz_devslot *s, const struct vduse_dev_request *req)
{
	if (s->npending == FZ_PENDING) {
		memmove(s->pending, s->pending + 1,
			sizeof(s->pending[0]) * (FZ_PENDING - 1));
		memmove(s->pending_type, s->pending_type + 1,
			sizeof(s->pending_type[0]) * (FZ_PENDING - 1));
		s->npending--;
	}
	s->pending[s->npending] = req->request_id;
	s->pending_type[s->npending++] = req->type;
}

static void op_dev_read(struct fz *f)
{
	static const size_t sizes[] = { 152, 152, 152, 151, 1, 0, 153, 4096 };
	struct vduse_dev_request *req = (void *)f->scratch;
	int slot = fz_dev_slot(f);
	size_t len = sizes[fz_below(&f->rng, 8)];
	struct iovec iov[2];
	ssize_t n;

	if (slot < 0)
		return;
	memset(req, 0, sizeof(*req));
	if (fz_pct(&f->rng, 15) && len >= 100) {
		iov[0].iov_base = f->scratch;
		iov[0].iov_len = 100;
		iov[1].iov_base = fz_argp(f, f->scratch + 100, len - 100);
		iov[1].iov_len = len - 100;
		n = fz_call(f, readv(f->dev[slot].fd, iov, 2),
			    "readv dev[%d] 100+%zu", slot, len - 100);
		if (iov[1].iov_base != f->scratch + 100)
			return;
	} else {
		void *p = fz_argp(f, req, len);

		n = fz_call(f, read(f->dev[slot].fd, p, len),
			    "read dev[%d] %zu", slot, len);
		if (p != req)
			return;
	}
	if (n != sizeof(*req))
		return;
	fz_count(C_REQS);
	fz_log(f, "  got %s id %u", fz_req_name(req->type), req->request_id);
	pending_add(&f->dev[slot], req);
}

static void op_dev_write(struct fz *f)
{
	static const size_t sizes[] = { 152, 152, 152, 151, 1, 0, 153, 4096 };
	struct vduse_dev_response *resp = (void *)f->scratch;
	int slot = fz_dev_slot(f);
	size_t len = sizes[fz_below(&f->rng, 8)];
	struct fz_devslot *s;
	struct iovec iov[3];
	long r;
	int i;

	if (slot < 0)
		return;
	s = &f->dev[slot];
	fz_fill(&f->rng, resp, 4096);
	memset(resp->reserved, 0, sizeof(resp->reserved));
	if (fz_pct(&f->rng, 5))
		resp->reserved[fz_below(&f->rng, 4)] = fz_u32(&f->rng) | 1;
	resp->result = fz_pct(&f->rng, 70) ? VDUSE_REQ_RESULT_OK :
		       fz_pct(&f->rng, 50) ? VDUSE_REQ_RESULT_FAILED :
		       fz_u32(&f->rng);
	if (s->npending && fz_pct(&f->rng, 70)) {
		i = fz_below(&f->rng, s->npending);
		resp->request_id = s->pending[i];
		if (s->pending_type[i] == VDUSE_GET_VQ_STATE)
			resp->vq_state.index = 0;
		s->pending[i] = s->pending[--s->npending];
		s->pending_type[i] = s->pending_type[s->npending];
	} else {
		resp->request_id = fz_pct(&f->rng, 50) ? fz_below(&f->rng, 64) :
				   fz_u32(&f->rng);
	}
	if (fz_pct(&f->rng, 15) && len == 152) {
		iov[0].iov_base = resp;
		iov[0].iov_len = 7;
		iov[1].iov_base = (char *)resp + 7;
		iov[1].iov_len = 0;
		iov[2].iov_base = fz_argp(f, (char *)resp + 7, 145);
		iov[2].iov_len = 145;
		r = writev(s->fd, iov, 3);
	} else {
		r = write(s->fd, fz_argp(f, resp, len), len);
	}
	if (fz_call(f, r, "write dev[%d] %zu id %u result %u", slot, len,
		    resp->request_id, resp->result) == sizeof(*resp))
		fz_count(C_REPLIES);
}

/* Read a request and answer it, mostly well. */
static void op_dev_read_reply(struct fz *f)
{
	struct vduse_dev_request req;
	int slot = fz_dev_slot(f);
	ssize_t n;

	if (slot < 0)
		return;
	n = fz_call(f, read(f->dev[slot].fd, &req, sizeof(req)),
		    "read dev[%d]", slot);
	if (n != sizeof(req))
		return;
	fz_count(C_REQS);
	fz_resp_answer(f, &f->rng, f->dev[slot].fd, &req,
		       fz_pct(&f->rng, 60));
}

static void op_dev_poll(struct fz *f)
{
	struct pollfd p[FZ_DEV_SLOTS];
	int n = 0, i;

	for (i = 0; i < FZ_DEV_SLOTS; i++) {
		if (f->dev[i].fd < 0)
			continue;
		p[n].fd = f->dev[i].fd;
		p[n++].events = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
	}
	fz_call(f, poll(p, n, fz_below(&f->rng, 10)), "poll %d device fds", n);
}

/* ------------------------------------------------------------------ */
/* Device ioctls with structured arguments                             */

static uint32_t vq_index(struct fz *f, const struct fz_devinfo *d)
{
	if (fz_pct(&f->rng, 90) && d->vq_num)
		return fz_below(&f->rng, d->vq_num < 64 ? d->vq_num : 64);
	return fz_pct(&f->rng, 50) ? d->vq_num : fz_u32(&f->rng);
}

static uint16_t vq_max(struct fz_rng *r)
{
	static const uint16_t sizes[] = {
		256, 256, 128, 1024, 64, 2, 1, 0, 0x8000, 0xffff, 3, 257,
	};

	return sizes[fz_below(r, 12)];
}

/*
 * A net device's status with VIRTIO_NET_S_ANNOUNCE set makes virtio_net
 * acknowledge the announcement on its control queue, once the interface
 * is up and a config change is seen; VDUSE refuses VIRTIO_NET_F_CTRL_VQ,
 * so virtnet_send_command_reply() hits BUG_ON(!CTRL_VQ) and the guest
 * dies (drivers/net/virtio_net.c, virtnet_config_changed_work; the stock
 * module the same).  Unless --known-crashes, the fuzzer never writes it.
 */
void fz_net_config_sanitize(const struct fz_devinfo *d, uint32_t offset,
			    uint8_t *buf, uint32_t len)
{
	uint32_t at = offsetof(struct virtio_net_config, status);

	if (fz_known_crashes || (d->exists && d->device_id != VIRTIO_ID_NET))
		return;
	if (offset <= at && at - offset < len)
		buf[at - offset] &= ~VIRTIO_NET_S_ANNOUNCE;
}

static void ioctl_set_config(struct fz *f, int slot, const struct fz_devinfo *d)
{
	struct vduse_config_data *c = (void *)f->scratch;
	uint32_t size = d->config_size;

	fz_fill(&f->rng, f->scratch, 8192);
	if (fz_pct(&f->rng, 70) && size) {
		c->offset = fz_below(&f->rng, size);
		c->length = 1 + fz_below(&f->rng, size - c->offset);
	} else {
		c->offset = fz_pct(&f->rng, 50) ? fz_below(&f->rng, size + 2) :
			    fz_u32(&f->rng);
		c->length = fz_pct(&f->rng, 50) ? fz_below(&f->rng, 4098) :
			    fz_u32(&f->rng);
	}
	fz_net_config_sanitize(d, c->offset, c->buffer,
			       c->length < 4096 ? c->length : 4096);
	fz_call(f, ioctl(f->dev[slot].fd, VDUSE_DEV_SET_CONFIG,
			 fz_argp(f, c, sizeof(*c) +
				 (c->length < 4096 ? c->length : 4096))),
		"dev[%d] SET_CONFIG offset %u length %u", slot, c->offset,
		c->length);
}

static void ioctl_vq_setup(struct fz *f, int slot, const struct fz_devinfo *d)
{
	struct vduse_vq_config c;

	memset(&c, 0, sizeof(c));
	c.index = vq_index(f, d);
	c.max_size = vq_max(&f->rng);
	c.group = d->api >= 1 && d->ngroups ? fz_below(&f->rng, d->ngroups) : 0;
	if (fz_pct(&f->rng, 5))
		c.group = fz_u32(&f->rng);
	if (fz_pct(&f->rng, 3))
		c.reserved1 = 1;
	if (fz_pct(&f->rng, 3))
		c.reserved2[fz_below(&f->rng, 10)] = 1;
	fz_call(f, ioctl(f->dev[slot].fd, VDUSE_VQ_SETUP,
			 fz_argp(f, &c, sizeof(c))),
		"dev[%d] VQ_SETUP index %u max %u group %u", slot, c.index,
		c.max_size, c.group);
}

static void ioctl_vq_get_info(struct fz *f, int slot, const struct fz_devinfo *d)
{
	struct vduse_vq_info info;
	void *p;

	memset(&info, 0, sizeof(info));
	info.index = vq_index(f, d);
	p = fz_argp(f, &info, sizeof(info));
	if (fz_call(f, ioctl(f->dev[slot].fd, VDUSE_VQ_GET_INFO, p),
		    "dev[%d] VQ_GET_INFO index %u", slot, info.index) ||
	    p != &info)
		return;
	fz_log(f, "  num %u desc 0x%llx driver 0x%llx device 0x%llx ready %u",
	       info.num, (unsigned long long)info.desc_addr,
	       (unsigned long long)info.driver_addr,
	       (unsigned long long)info.device_addr, info.ready);
	if (info.desc_addr)
		fz_hint_add(f->dev[slot].name, info.desc_addr);
	if (info.device_addr)
		fz_hint_add(f->dev[slot].name, info.device_addr);
}

static void ioctl_kickfd(struct fz *f, int slot, const struct fz_devinfo *d)
{
	struct vduse_vq_eventfd e;
	int efd = -1;

	e.index = vq_index(f, d);
	switch (fz_below(&f->rng, 8)) {
	case 0:
		e.fd = VDUSE_EVENTFD_DEASSIGN;
		break;
	case 1:
		e.fd = -2 - (int)fz_below(&f->rng, 100);
		break;
	case 2:
		e.fd = f->dev[slot].fd;		/* not an eventfd */
		break;
	case 3:
		e.fd = 1000 + fz_below(&f->rng, 100);	/* not open */
		break;
	default:
		efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		e.fd = efd;
		break;
	}
	fz_call(f, ioctl(f->dev[slot].fd, VDUSE_VQ_SETUP_KICKFD,
			 fz_argp(f, &e, sizeof(e))),
		"dev[%d] VQ_SETUP_KICKFD index %u fd %d", slot, e.index, e.fd);
	/* Keep it open half the time: the kernel holds its own reference. */
	if (efd >= 0 && fz_pct(&f->rng, 50))
		fz_file_put(f, efd);
	else if (efd >= 0)
		close(efd);
}

static void ioctl_iova_info(struct fz *f, int slot, const struct fz_devinfo *d)
{
	struct vduse_iova_info info;
	void *p;

	memset(&info, 0, sizeof(info));
	info.start = fz_pct(&f->rng, 50) ? d->hints[fz_below(&f->rng, FZ_HINTS)] :
		     fz_pct(&f->rng, 50) ? 0 : fz_u64(&f->rng);
	info.last = fz_pct(&f->rng, 70) ? info.start : fz_u64(&f->rng);
	info.asid = fz_pct(&f->rng, 90) ? fz_below(&f->rng, d->nas) :
		    fz_u32(&f->rng);
	if (fz_pct(&f->rng, 3))
		info.reserved[fz_below(&f->rng, 5)] = 1;
	p = fz_argp(f, &info, sizeof(info));
	if (!fz_call(f, ioctl(f->dev[slot].fd, VDUSE_IOTLB_GET_INFO, p),
		     "dev[%d] IOTLB_GET_INFO asid %u [0x%llx, 0x%llx]", slot,
		     info.asid, (unsigned long long)info.start,
		     (unsigned long long)info.last) && p == &info)
		fz_log(f, "  region [0x%llx, 0x%llx] cap 0x%llx",
		       (unsigned long long)info.start,
		       (unsigned long long)info.last,
		       (unsigned long long)info.capability);
}

static void op_dev_ioctl(struct fz *f)
{
	int slot = fz_dev_slot(f);
	const struct fz_devinfo *d;
	uint64_t v = 0;
	uint32_t idx;

	if (slot < 0)
		return;
	d = fz_info(f, slot);
	switch (fz_below(&f->rng, 12)) {
	case 0:
		fz_call(f, ioctl(f->dev[slot].fd, VDUSE_DEV_GET_FEATURES,
				 fz_argp(f, &v, sizeof(v))),
			"dev[%d] DEV_GET_FEATURES -> 0x%llx", slot,
			(unsigned long long)v);
		break;
	case 1:
		ioctl_set_config(f, slot, d);
		break;
	case 2:
		fz_call(f, ioctl(f->dev[slot].fd, VDUSE_DEV_INJECT_CONFIG_IRQ),
			"dev[%d] INJECT_CONFIG_IRQ", slot);
		break;
	case 3:
	case 4:
		ioctl_vq_setup(f, slot, d);
		break;
	case 5:
	case 6:
		ioctl_vq_get_info(f, slot, d);
		break;
	case 7:
		ioctl_kickfd(f, slot, d);
		break;
	case 8:
	case 9:
	case 10:
		idx = vq_index(f, d);
		fz_call(f, ioctl(f->dev[slot].fd, VDUSE_VQ_INJECT_IRQ,
				 fz_argp(f, &idx, sizeof(idx))),
			"dev[%d] VQ_INJECT_IRQ %u", slot, idx);
		break;
	default:
		ioctl_iova_info(f, slot, d);
		break;
	}
}

/* Set every queue up, so that the device can be attached. */
void fz_dev_setup_vqs(struct fz *f, int slot)
{
	const struct fz_devinfo *d = fz_info(f, slot);
	struct vduse_vq_config c;
	uint16_t max = fz_pct(&f->rng, 80) ? 256 : vq_max(&f->rng);
	uint32_t i;

	for (i = 0; i < d->vq_num && i < 64; i++) {
		memset(&c, 0, sizeof(c));
		c.index = i;
		c.max_size = max;
		if (d->api >= 1 && d->ngroups)
			c.group = fz_below(&f->rng, d->ngroups);
		fz_call(f, ioctl(f->dev[slot].fd, VDUSE_VQ_SETUP, &c),
			"dev[%d] VQ_SETUP index %u max %u group %u", slot, i,
			max, c.group);
	}
}

static void op_dev_setup_vqs(struct fz *f)
{
	int slot = fz_dev_slot(f);

	if (slot >= 0)
		fz_dev_setup_vqs(f, slot);
}

static void op_dev_ioctl_random(struct fz *f)
{
	int slot = fz_dev_slot(f);
	unsigned long cmd = fz_near_cmd(&f->rng, true);
	long r;

	if (slot < 0)
		return;
	fz_fill(&f->rng, f->scratch, 0x4000);
	if (cmd == VDUSE_DEV_SET_CONFIG) {
		struct vduse_config_data *c = (void *)f->scratch;

		fz_net_config_sanitize(fz_info(f, slot), c->offset, c->buffer,
				       0x4000 - sizeof(*c));
	}
	r = fz_call(f, ioctl(f->dev[slot].fd, cmd,
			     fz_argp(f, f->scratch, _IOC_SIZE(cmd))),
		    "dev[%d] ioctl 0x%lx", slot, cmd);
	/* IOTLB_GET_FD(2) with junk that happened to match a region. */
	if (r > 0)
		fz_file_put(f, r);
}

/* ------------------------------------------------------------------ */
/* sysfs                                                               */

#define FZ_STATS "/sys/kernel/debug/vduse/stats"

static void op_dev_sysfs(struct fz *f)
{
	static const char *const timeouts[] = {
		"1", "2", "3", "1\n", "x", "-1", "99999999999", "",
	};
	static const char *const masks[] = {
		"1", "2", "3", "0", "ff", "zz", "1,0", "80000000",
	};
	static const char *const stats[] = {
		"msgs_sent", "msgs_failed", "msgs_timed_out", "kicks",
		"irqs_inline", "irqs_deferred", "irqs_irqfd", "config_irqs",
		"bounce_pages", "msg_timeout", "bounce_size", "dev",
	};
	int name = fz_name(f);
	char path[VDUSE_NAME_MAX + 96], val[64], buf[256];
	unsigned int stat;
	const char *n = fz_names[name];

	switch (fz_below(&f->rng, 5)) {
	case 0:
		snprintf(path, sizeof(path), "/sys/class/vduse/%s/msg_timeout", n);
		snprintf(val, sizeof(val), "%s", timeouts[fz_below(&f->rng, 8)]);
		break;
	case 1:
		snprintf(path, sizeof(path), "/sys/class/vduse/%s/bounce_size", n);
		snprintf(val, sizeof(val), "%u", fz_pct(&f->rng, 70) ?
			 (1 + fz_below(&f->rng, 16)) << 20 : fz_u32(&f->rng));
		break;
	case 2:
		snprintf(path, sizeof(path),
			 "/sys/class/vduse/%s/vq%u/irq_cb_affinity", n,
			 fz_below(&f->rng, 4));
		snprintf(val, sizeof(val), "%s", masks[fz_below(&f->rng, 8)]);
		break;
	default:
		/* The counters are one debugfs table (mounted by fuzz.sh). */
		stat = fz_below(&f->rng, 12);
		if (stat < 9)
			snprintf(path, sizeof(path), "%s", FZ_STATS);
		else
			snprintf(path, sizeof(path), "/sys/class/vduse/%s/%s",
				 n, stats[stat]);
		if (fz_pct(&f->rng, 30))
			snprintf(path, sizeof(path),
				 "/sys/class/vduse/%s/vq%u/irq_cb_affinity", n,
				 fz_below(&f->rng, 4));
		fz_callr(f, fz_sysfs_read(path, buf, sizeof(buf)), "read %.80s",
			path);
		return;
	}
	fz_callr(f, fz_sysfs_write(path, val), "write %.80s = %s", path, val);
}

const struct fz_op fz_dev_ops[] = {
	{ "dev_open", 10, op_dev_open },
	{ "dev_close", 4, op_dev_close },
	{ "dev_dup", 1, op_dev_dup },
	{ "dev_read", 3, op_dev_read },
	{ "dev_write", 5, op_dev_write },
	{ "dev_read_reply", 6, op_dev_read_reply },
	{ "dev_poll", 2, op_dev_poll },
	{ "dev_ioctl", 30, op_dev_ioctl },
	{ "dev_setup_vqs", 8, op_dev_setup_vqs },
	{ "dev_ioctl_random", 4, op_dev_ioctl_random },
	{ "dev_sysfs", 4, op_dev_sysfs },
	{ NULL, 0, NULL },
};
