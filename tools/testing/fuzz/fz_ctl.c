// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_fuzz: operations on /dev/vduse/control.
 *
 * Devices are created from configurations that look valid for each type
 * the module accepts (block, net, fs), with API version 0 or 1, virtqueue
 * groups, address spaces, config sizes and queue counts drawn near their
 * limits, and with one field wrong now and then.  A device that was
 * created gets a short msg_timeout (1 to 3 s), so that a request nobody
 * answers breaks it quickly, and often a small bounce area.
 */
#include <linux/vduse.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_fs.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fuzz.h"

#define BIT64(n)	(1ULL << (n))

static int ctl_open_slot(struct fz *f, int slot)
{
	int fd, flags = O_RDWR | O_CLOEXEC;

	if (fz_pct(&f->rng, 10))
		flags = fz_pct(&f->rng, 50) ? O_RDONLY : O_WRONLY;
	fd = fz_call(f, open(VDUSE_CTL_PATH, flags), "open control[%d] flags 0x%x",
		     slot, flags);
	pthread_mutex_lock(&f->lock);
	f->ctl[slot] = fd;
	f->ctl_api[slot] = -1;
	f->ctl_feat[slot] = 0;
	pthread_mutex_unlock(&f->lock);
	return fd;
}

static int ctl_slot(struct fz *f)
{
	int slot = fz_below(&f->rng, FZ_CTL_SLOTS);

	if (f->ctl[slot] < 0)
		ctl_open_slot(f, slot);
	return slot;
}

int fz_ctl_fd(struct fz *f)
{
	return f->ctl[ctl_slot(f)];
}

int fz_destroy_name(int ctl, const char *name)
{
	char buf[VDUSE_NAME_MAX];

	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", name);
	return ioctl(ctl, VDUSE_DESTROY_DEV, buf) ? -errno : 0;
}

static void op_ctl_open(struct fz *f)
{
	int slot = fz_below(&f->rng, FZ_CTL_SLOTS);

	if (f->ctl[slot] >= 0) {
		fz_call(f, close(f->ctl[slot]), "close control[%d]", slot);
		f->ctl[slot] = -1;
	}
	ctl_open_slot(f, slot);
}

static void op_ctl_close(struct fz *f)
{
	int slot = fz_below(&f->rng, FZ_CTL_SLOTS);

	if (f->ctl[slot] < 0)
		return;
	fz_call(f, close(f->ctl[slot]), "close control[%d]", slot);
	pthread_mutex_lock(&f->lock);
	f->ctl[slot] = -1;
	pthread_mutex_unlock(&f->lock);
}

static void op_ctl_api(struct fz *f)
{
	static const uint64_t vals[] = { 0, 1, 1, 0, 2, ~0ULL, 1ULL << 32 };
	int slot = ctl_slot(f);
	uint64_t v;
	long r;

	if (fz_pct(&f->rng, 40)) {
		v = 0;
		r = fz_call(f, ioctl(f->ctl[slot], VDUSE_GET_API_VERSION,
				     fz_argp(f, &v, sizeof(v))),
			    "control[%d] GET_API_VERSION", slot);
		if (!r && f->ctl_api[slot] < 0)
			f->ctl_api[slot] = v;
		return;
	}
	v = fz_pct(&f->rng, 85) ? vals[fz_below(&f->rng, 7)] : fz_u64(&f->rng);
	r = fz_call(f, ioctl(f->ctl[slot], VDUSE_SET_API_VERSION,
			     fz_argp(f, &v, sizeof(v))),
		    "control[%d] SET_API_VERSION %llu", slot,
		    (unsigned long long)v);
	if (!r)
		f->ctl_api[slot] = v;
}

static void op_ctl_features(struct fz *f)
{
	int slot = ctl_slot(f);
	uint64_t v = 0;
	long r;

	if (fz_pct(&f->rng, 30)) {
		fz_call(f, ioctl(f->ctl[slot], VDUSE_GET_FEATURES,
				 fz_argp(f, &v, sizeof(v))),
			"control[%d] GET_FEATURES -> 0x%llx", slot,
			(unsigned long long)v);
		return;
	}
	v = fz_below(&f->rng, 4);
	if (fz_pct(&f->rng, 10))
		v = fz_u64(&f->rng);
	r = fz_call(f, ioctl(f->ctl[slot], VDUSE_SET_FEATURES,
			     fz_argp(f, &v, sizeof(v))),
		    "control[%d] SET_FEATURES 0x%llx", slot,
		    (unsigned long long)v);
	if (!r)
		f->ctl_feat[slot] = v;
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */

static uint64_t blk_features(struct fz_rng *r, bool valid)
{
	static const int opt[] = {
		VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_SEG_MAX,
		VIRTIO_BLK_F_GEOMETRY, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE,
		VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_MQ,
		VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES,
		VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX,
		VIRTIO_F_RING_PACKED,
	};
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
		if (fz_pct(r, 40))
			v |= BIT64(opt[i]);
	if (!valid && fz_pct(r, 4))
		v |= BIT64(VIRTIO_BLK_F_CONFIG_WCE);	/* refused */
	return v;
}

static uint64_t net_features(struct fz_rng *r, bool valid)
{
	static const int opt[] = {
		VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_MTU,
		VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_STATUS,
		VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_HOST_TSO4,
		VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX,
		VIRTIO_F_RING_PACKED,
	};
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
		if (fz_pct(r, 40))
			v |= BIT64(opt[i]);
	if (!valid && fz_pct(r, 4))
		v |= BIT64(VIRTIO_NET_F_CTRL_VQ);	/* refused */
	return v;
}

static uint32_t gen_vq_num(struct fz_rng *r, uint32_t id, bool valid)
{
	switch (valid ? 4 : fz_below(r, 40)) {
	case 0:
		return 0;
	case 1:
		return 0x10000 + fz_below(r, 4);	/* too many */
	case 2:
		return fz_below(r, 257);
	case 3:
		return 0xffffffff;
	}
	switch (id) {
	case VIRTIO_ID_NET:
		return fz_pct(r, 85) ? 2 : 1 + fz_below(r, 4);
	case VIRTIO_ID_FS:
		return 2 + fz_below(r, 2);
	default:
		return 1 + fz_below(r, 4);
	}
}

static uint32_t gen_count(struct fz_rng *r, uint32_t usual, bool valid)
{
	switch (valid ? 4 : fz_below(r, 30)) {
	case 0:
		return 0;
	case 1:
		return 0x10000;
	case 2:
		return 1 + fz_below(r, 64);
	case 3:
		return 0xffffffff;
	default:
		return 1 + fz_below(r, usual);
	}
}

/* The configuration space of a device of type ID; returns its size. */
static uint32_t gen_space(struct fz_rng *r, uint32_t id, uint32_t vq_num,
			  unsigned char *buf, int name)
{
	memset(buf, 0, 4096);
	switch (id) {
	case VIRTIO_ID_BLOCK: {
		struct virtio_blk_config *c = (void *)buf;

		c->capacity = 2048 + fz_below(r, 1 << 20);
		c->size_max = 65536;
		c->seg_max = fz_pct(r, 90) ? 126 : fz_u32(r);
		c->blk_size = fz_pct(r, 50) ? 512 : 4096;
		c->num_queues = fz_pct(r, 90) ? vq_num : fz_u32(r);
		c->max_discard_sectors = fz_u32(r);
		c->max_discard_seg = 1;
		c->discard_sector_alignment = 8;
		c->max_write_zeroes_sectors = fz_u32(r);
		c->max_write_zeroes_seg = 1;
		return sizeof(*c);
	}
	case VIRTIO_ID_NET: {
		struct virtio_net_config *c = (void *)buf;

		fz_fill(r, c->mac, sizeof(c->mac));
		c->mac[0] = (c->mac[0] & 0xfe) | 0x02;
		c->status = VIRTIO_NET_S_LINK_UP;
		if (fz_known_crashes && fz_pct(r, 20))
			c->status |= VIRTIO_NET_S_ANNOUNCE;	/* fz_dev.c */
		c->max_virtqueue_pairs = 1;
		c->mtu = fz_pct(r, 80) ? 1500 : fz_u32(r);
		return sizeof(*c);
	}
	case VIRTIO_ID_FS: {
		struct virtio_fs_config *c = (void *)buf;

		if (fz_pct(r, 95))
			snprintf((char *)c->tag, sizeof(c->tag), "fztag%d",
				 name);
		c->num_request_queues = fz_pct(r, 90) && vq_num > 1 ?
					vq_num - 1 : fz_u32(r);
		return sizeof(*c);
	}
	default:
		fz_fill(r, buf, 256);
		return fz_below(r, 257);
	}
}

/*
 * A creation request for pool name NAME; returns the bytes to pass.
 * Unless VALID, now and then a field is wrong.
 */
static size_t gen_config(struct fz *f, struct vduse_dev_config *c, int name,
			 int api, bool valid)
{
	static const char *const bad_names[] = {
		"", "/", "fz/x", ".", "..", "control",
	};
	struct fz_rng *r = &f->rng;
	uint32_t id, size;

	memset(c, 0, sizeof(*c));
#define BAD(pct)	(!valid && fz_pct(r, pct))
	switch (fz_below(r, valid ? 95 : 100)) {
	case 0 ... 39:
		id = VIRTIO_ID_BLOCK;
		break;
	case 40 ... 74:
		id = VIRTIO_ID_NET;
		break;
	case 75 ... 94:
		id = VIRTIO_ID_FS;
		break;
	default:
		id = fz_u32(r);
		break;
	}
	c->device_id = id;
	c->vendor_id = fz_pct(r, 80) ? 0 : fz_u32(r);
	c->features = BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_ACCESS_PLATFORM);
	if (id == VIRTIO_ID_BLOCK)
		c->features |= blk_features(r, valid);
	else if (id == VIRTIO_ID_NET)
		c->features |= net_features(r, valid);
	if (BAD(4))
		c->features &= ~BIT64(VIRTIO_F_ACCESS_PLATFORM);
	if (BAD(4))
		c->features &= ~BIT64(VIRTIO_F_VERSION_1);
	if (BAD(3))
		c->features = fz_u64(r);
	c->vq_num = gen_vq_num(r, id, valid);
	c->vq_align = 4096;
	if (fz_pct(r, 15))
		c->vq_align = 1U << (valid ? 2 + fz_below(r, 11) : fz_below(r, 14));
	if (BAD(2))
		c->vq_align = fz_u32(r);
	if (api >= 1) {
		c->ngroups = gen_count(r, c->vq_num < 4 ? c->vq_num + 1 : 4,
				       valid);
		c->nas = gen_count(r, 4, valid);
	} else if (BAD(4)) {
		c->ngroups = fz_u32(r);
		c->nas = fz_u32(r);
	}
	if (BAD(3))
		c->reserved[fz_below(r, 11)] = fz_u32(r) | 1;

	size = gen_space(r, id, c->vq_num, c->config, name);
	switch (valid ? 3 : fz_below(r, 20)) {
	case 0:
		size = 0;
		break;
	case 1:
		size = fz_below(r, 4097);
		break;
	case 2:
		size = fz_pct(r, 50) ? 4097 : fz_u32(r);	/* too big */
		break;
	}
	c->config_size = size;

	if (BAD(4)) {
		snprintf(c->name, sizeof(c->name), "%s",
			 bad_names[fz_below(r, 6)]);
	} else if (name == FZ_NAME_LONG && fz_pct(r, 50)) {
		/* Unterminated: the kernel keeps the first 255 bytes. */
		memcpy(c->name, fz_names[name], VDUSE_NAME_MAX - 1);
		c->name[VDUSE_NAME_MAX - 1] = 'X';
	} else {
		snprintf(c->name, sizeof(c->name), "%s", fz_names[name]);
	}
	return sizeof(*c) + (size <= 4096 ? size : 4096);
#undef BAD
}

static void after_create(struct fz *f, const struct vduse_dev_config *c,
			 int name, int api)
{
	struct fz_devinfo *d = &fz_sh->dev[name];
	char path[VDUSE_NAME_MAX + 64], val[32];

	memset(d, 0, sizeof(*d));
	d->exists = true;
	d->device_id = c->device_id;
	d->vq_num = c->vq_num;
	d->ngroups = api >= 1 ? c->ngroups : 1;
	d->nas = api >= 1 ? c->nas : 1;
	d->config_size = c->config_size;
	d->api = api;
	d->features = c->features;
	fz_count(C_CREATED);

	snprintf(path, sizeof(path), "/sys/class/vduse/%s/msg_timeout",
		 fz_names[name]);
	snprintf(val, sizeof(val), "%u", 1 + fz_below(&f->rng, 3));
	fz_callr(f, fz_sysfs_write(path, val), "%.40s/msg_timeout = %s",
		fz_names[name], val);
	if (fz_pct(&f->rng, 60)) {
		snprintf(path, sizeof(path), "/sys/class/vduse/%s/bounce_size",
			 fz_names[name]);
		snprintf(val, sizeof(val), "%u",
			 (1 + fz_below(&f->rng, 8)) << 20);
		fz_callr(f, fz_sysfs_write(path, val), "%.40s/bounce_size = %s",
			fz_names[name], val);
	}
}

int fz_create(struct fz *f, int name, bool valid)
{
	struct vduse_dev_config *c = (void *)f->scratch;
	int slot = ctl_slot(f), api;
	size_t len;
	long r;

	if (valid && f->ctl[slot] >= 0 && f->ctl_api[slot] < 0) {
		uint64_t v = fz_below(&f->rng, 2);

		if (!fz_call(f, ioctl(f->ctl[slot], VDUSE_SET_API_VERSION, &v),
			     "control[%d] SET_API_VERSION %llu", slot,
			     (unsigned long long)v))
			f->ctl_api[slot] = v;
		/* QUEUE_READY and SUSPEND: more kinds of requests. */
		v = fz_below(&f->rng, 4);
		if (!fz_call(f, ioctl(f->ctl[slot], VDUSE_SET_FEATURES, &v),
			     "control[%d] SET_FEATURES 0x%llx", slot,
			     (unsigned long long)v))
			f->ctl_feat[slot] = v;
	}
	api = f->ctl_api[slot] < 0 ? 0 : f->ctl_api[slot];
	len = gen_config(f, c, name, api, valid);
	r = fz_call(f, ioctl(f->ctl[slot], VDUSE_CREATE_DEV,
			     valid ? (void *)c : fz_argp(f, c, len)),
		    "control[%d] CREATE_DEV %.40s api %d id %u features 0x%llx vqs %u align %u groups %u as %u config %u",
		    slot, c->name, api, c->device_id,
		    (unsigned long long)c->features, c->vq_num, c->vq_align,
		    c->ngroups, c->nas, c->config_size);
	if (!r)
		after_create(f, c, name, api);
	return r;
}

static void op_ctl_create(struct fz *f)
{
	fz_create(f, fz_name(f), false);
}

/* A header of random bytes under a pool name. */
static void op_ctl_create_junk(struct fz *f)
{
	struct vduse_dev_config *c = (void *)f->scratch;
	int slot = ctl_slot(f), name = fz_name(f), api;
	long r;

	api = f->ctl_api[slot] < 0 ? 0 : f->ctl_api[slot];
	fz_fill(&f->rng, c, sizeof(*c) + 4096);
	snprintf(c->name, sizeof(c->name), "%s", fz_names[name]);
	c->config_size = fz_below(&f->rng, 4) ? fz_below(&f->rng, 4097) :
			 fz_u32(&f->rng);
	r = fz_call(f, ioctl(f->ctl[slot], VDUSE_CREATE_DEV,
			     fz_argp(f, c, sizeof(*c) + 64)),
		    "control[%d] CREATE_DEV junk %.40s id %u vqs %u config %u",
		    slot, c->name, c->device_id, c->vq_num, c->config_size);
	if (!r)
		after_create(f, c, name, api);
}

static void op_ctl_destroy(struct fz *f)
{
	int slot = ctl_slot(f), name = fz_name(f);
	char *buf = (char *)f->scratch;
	size_t len = strlen(fz_names[name]);
	void *arg = buf;
	long r;

	memset(buf, 0, VDUSE_NAME_MAX);
	memcpy(buf, fz_names[name], len);
	switch (fz_below(&f->rng, 12)) {
	case 0:
		/* The name ends the readable memory, with its NUL. */
		arg = f->edge - len - 1;
		memcpy(arg, fz_names[name], len + 1);
		break;
	case 1:
		/* No NUL before the end of the readable memory. */
		arg = f->edge - len;
		memcpy(arg, fz_names[name], len);
		break;
	case 2:
		arg = fz_argp(f, buf, VDUSE_NAME_MAX);
		break;
	}
	r = fz_call(f, ioctl(f->ctl[slot], VDUSE_DESTROY_DEV, arg),
		    "control[%d] DESTROY_DEV %.40s", slot, fz_names[name]);
	if (!r) {
		fz_sh->dev[name].exists = false;
		fz_count(C_DESTROYED);
	}
}

/* An ioctl number near the VDUSE ones, or one of them with junk. */
unsigned long fz_near_cmd(struct fz_rng *r, bool dev)
{
	static const unsigned int sizes[] = {
		0, 1, 4, 8, 28, 32, 44, 48, 80, 152, 256, 336,
	};
	unsigned int dir = fz_below(r, 4), type = VDUSE_BASE, nr, size;

	if (fz_pct(r, 10))
		type = fz_pct(r, 50) ? VDUSE_BASE + 1 - 2 * fz_below(r, 2) :
		       fz_below(r, 256);
	nr = dev ? 0x10 + fz_below(r, 16) : fz_below(r, 8);
	if (fz_pct(r, 30))
		nr = fz_below(r, 0x40);
	size = fz_pct(r, 70) ? sizes[fz_below(r, 12)] : fz_below(r, 0x4000);
	return _IOC(dir, type, nr, size);
}

static void op_ctl_ioctl_random(struct fz *f)
{
	int slot = ctl_slot(f);
	unsigned long cmd = fz_near_cmd(&f->rng, false);
	struct vduse_dev_config *c = (void *)f->scratch;

	fz_fill(&f->rng, f->scratch, 0x4000);
	if (cmd == VDUSE_CREATE_DEV) {
		/* Whatever it makes must be ours to clean up. */
		memset(c->name, 0, sizeof(c->name));
		strcpy(c->name, fz_names[fz_below(&f->rng, FZ_NAMES - 1)]);
	}
	fz_call(f, ioctl(f->ctl[slot], cmd,
			 fz_argp(f, f->scratch, _IOC_SIZE(cmd))),
		"control[%d] ioctl 0x%lx", slot, cmd);
}

const struct fz_op fz_ctl_ops[] = {
	{ "ctl_open", 3, op_ctl_open },
	{ "ctl_close", 2, op_ctl_close },
	{ "ctl_api", 4, op_ctl_api },
	{ "ctl_features", 3, op_ctl_features },
	{ "ctl_create", 18, op_ctl_create },
	{ "ctl_create_junk", 2, op_ctl_create_junk },
	{ "ctl_destroy", 7, op_ctl_destroy },
	{ "ctl_ioctl_random", 4, op_ctl_ioctl_random },
	{ NULL, 0, NULL },
};
