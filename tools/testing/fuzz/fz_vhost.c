// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_fuzz: a VMM that drives /dev/vhost-vdpa-N of a device bound to
 * vhost_vdpa, so that the vDPA ops of our module run against the
 * fuzzer's bad daemon: status changes (SET_STATUS requests), ring state
 * queries (GET_VQ_STATE), IOTLB updates of a shared memfd in every
 * address space (UPDATE_IOTLB), group to address space moves
 * (SET_VQ_GROUP_ASID), queue enables, suspend, kick and call eventfds
 * (the irqfd path of VQ_INJECT_IRQ), and config reads and writes.
 */
#include <linux/vduse.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fuzz.h"

#define RING_IOVA	0x10000000ULL

/* The /dev/vhost-vdpa-N node of vDPA device NAME, in BUF. */
static int vhost_node(const char *name, char *buf, size_t len)
{
	char path[VDUSE_NAME_MAX + 64];
	struct dirent *de;
	DIR *d;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), VDPA_SYSFS "/devices/%s", name);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "vhost-vdpa-", 11))
			continue;
		snprintf(buf, len, "/dev/%.50s", de->d_name);
		ret = 0;
		break;
	}
	closedir(d);
	return ret;
}

void fz_vhost_close(struct fz *f, int slot)
{
	fz_call(f, close(f->vhost[slot].fd), "close vhost[%d] (%.40s)", slot,
		fz_names[f->vhost[slot].name]);
	pthread_mutex_lock(&f->lock);
	f->vhost[slot].fd = -1;
	pthread_mutex_unlock(&f->lock);
}

/*
 * vhost_vdpa's remove waits until every opener closed the node, in an
 * uninterruptible sleep: unbinding or deleting a device this process
 * still has open would hang it for good.  Close those first.
 */
void fz_vhost_close_name(struct fz *f, int name)
{
	int i;

	for (i = 0; i < FZ_VHOST_SLOTS; i++)
		if (f->vhost[i].fd >= 0 && f->vhost[i].name == name)
			fz_vhost_close(f, i);
}

static int vhost_slot(struct fz *f)
{
	int i = fz_below(&f->rng, FZ_VHOST_SLOTS), k;

	for (k = 0; k < FZ_VHOST_SLOTS; k++)
		if (f->vhost[(i + k) % FZ_VHOST_SLOTS].fd >= 0)
			return (i + k) % FZ_VHOST_SLOTS;
	return -1;
}

static void vhost_setup(struct fz *f, int slot)
{
	struct fz_vhost *v = &f->vhost[slot];
	uint64_t bf = 0;
	uint32_t n = 0;

	fz_count(C_VHOST_CALLS);
	fz_call(f, ioctl(v->fd, VHOST_SET_OWNER, NULL), "vhost[%d] SET_OWNER",
		slot);
	fz_call(f, ioctl(v->fd, VHOST_GET_FEATURES, &v->features),
		"vhost[%d] GET_FEATURES -> 0x%llx", slot,
		(unsigned long long)v->features);
	if (!fz_call(f, ioctl(v->fd, VHOST_VDPA_GET_VQS_COUNT, &n),
		     "vhost[%d] GET_VQS_COUNT -> %u", slot, n))
		v->nvqs = n;
	if (fz_call(f, ioctl(v->fd, VHOST_GET_BACKEND_FEATURES, &bf),
		    "vhost[%d] GET_BACKEND_FEATURES -> 0x%llx", slot,
		    (unsigned long long)bf))
		return;
	if (fz_pct(&f->rng, 80))
		bf &= fz_next(&f->rng) | 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2;
	fz_call(f, ioctl(v->fd, VHOST_SET_BACKEND_FEATURES, &bf),
		"vhost[%d] SET_BACKEND_FEATURES 0x%llx", slot,
		(unsigned long long)bf);
}

static void op_vhost_open(struct fz *f)
{
	int name = fz_name(f), slot, fd;
	char node[64];

	if (vhost_node(fz_names[name], node, sizeof(node)))
		return;
	/* Opening resets the device: someone should answer. */
	if (fz_pct(&f->rng, 90))
		fz_dev_ensure(f, name);
	for (slot = 0; slot < FZ_VHOST_SLOTS; slot++)
		if (f->vhost[slot].fd < 0)
			break;
	if (slot == FZ_VHOST_SLOTS) {
		slot = fz_below(&f->rng, FZ_VHOST_SLOTS);
		fz_vhost_close(f, slot);
	}
	fd = fz_call(f, open(node, O_RDWR | O_CLOEXEC), "open %s (%.40s)",
		     node, fz_names[name]);
	if (fd < 0)
		return;
	fz_count(C_VHOST);
	pthread_mutex_lock(&f->lock);
	f->vhost[slot].fd = fd;
	f->vhost[slot].name = name;
	f->vhost[slot].features = 0;
	f->vhost[slot].nvqs = fz_sh->dev[name].vq_num;
	pthread_mutex_unlock(&f->lock);
	if (fz_pct(&f->rng, 80))
		vhost_setup(f, slot);
}

static void op_vhost_close(struct fz *f)
{
	int slot = vhost_slot(f);

	if (slot < 0)
		return;
	if (fz_pct(&f->rng, 90))
		fz_dev_ensure(f, f->vhost[slot].name);
	fz_vhost_close(f, slot);
}

static uint32_t vhost_vq(struct fz *f, struct fz_vhost *v)
{
	if (v->nvqs && fz_pct(&f->rng, 90))
		return fz_below(&f->rng, v->nvqs < 64 ? v->nvqs : 64);
	return fz_u32(&f->rng);
}

static int new_eventfd(struct fz *f)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (efd >= 0 && fz_pct(&f->rng, 70))
		fz_file_put(f, efd);	/* else closed after the call */
	else if (efd >= 0)
		efd = -efd - 2;		/* close after use, see below */
	return efd;
}

static void efd_done(int efd)
{
	if (efd < -1)
		close(-efd - 2);
}

static int efd_value(int efd)
{
	return efd < -1 ? -efd - 2 : efd;
}

static void op_vhost_ioctl(struct fz *f)
{
	static const uint8_t statuses[] = {
		0, VIRTIO_CONFIG_S_ACKNOWLEDGE,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			VIRTIO_CONFIG_S_FEATURES_OK,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
		VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_NEEDS_RESET, 0xff,
	};
	int slot = vhost_slot(f), efd;
	struct vhost_vring_state st;
	struct vhost_vring_addr addr;
	struct vhost_vring_file file;
	struct vhost_vdpa_config *cfg = (void *)f->scratch;
	struct fz_vhost *v;
	uint64_t u64 = 0;
	uint32_t u32 = 0;
	uint16_t u16 = 0;
	uint8_t u8 = 0;

	if (slot < 0)
		return;
	v = &f->vhost[slot];
	fz_count(C_VHOST_CALLS);
	memset(&st, 0, sizeof(st));
	st.index = vhost_vq(f, v);
	switch (fz_below(&f->rng, 24)) {
	case 0:
		fz_call(f, ioctl(v->fd, VHOST_SET_OWNER, NULL),
			"vhost[%d] SET_OWNER", slot);
		break;
	case 1:
		u64 = v->features & (fz_pct(&f->rng, 80) ? fz_next(&f->rng) |
				     1ULL << VIRTIO_F_ACCESS_PLATFORM |
				     1ULL << VIRTIO_F_VERSION_1 :
				     fz_next(&f->rng));
		fz_call(f, ioctl(v->fd, VHOST_SET_FEATURES, &u64),
			"vhost[%d] SET_FEATURES 0x%llx", slot,
			(unsigned long long)u64);
		break;
	case 2:
	case 3:
		u8 = statuses[fz_below(&f->rng, 8)];
		fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_STATUS, &u8),
			"vhost[%d] SET_STATUS 0x%x", slot, u8);
		break;
	case 4:
		fz_call(f, ioctl(v->fd, VHOST_VDPA_GET_STATUS, &u8),
			"vhost[%d] GET_STATUS -> 0x%x", slot, u8);
		break;
	case 5:
	case 6:
		cfg->off = fz_pct(&f->rng, 80) ? fz_below(&f->rng, 64) :
			   fz_u32(&f->rng);
		cfg->len = fz_pct(&f->rng, 80) ? fz_below(&f->rng, 64) :
			   fz_u32(&f->rng) & 0xffff;
		fz_call(f, ioctl(v->fd, fz_pct(&f->rng, 70) ?
				 VHOST_VDPA_GET_CONFIG : VHOST_VDPA_SET_CONFIG,
				 cfg),
			"vhost[%d] GET/SET_CONFIG off %u len %u", slot,
			cfg->off, cfg->len);
		break;
	case 7:
		st.num = fz_pct(&f->rng, 80) ? 256 : fz_u32(&f->rng);
		fz_call(f, ioctl(v->fd, VHOST_SET_VRING_NUM, &st),
			"vhost[%d] SET_VRING_NUM %u %u", slot, st.index, st.num);
		break;
	case 8:
		memset(&addr, 0, sizeof(addr));
		addr.index = st.index;
		addr.desc_user_addr = RING_IOVA + st.index * 0x4000;
		addr.avail_user_addr = addr.desc_user_addr + 0x1000;
		addr.used_user_addr = addr.desc_user_addr + 0x2000;
		if (fz_pct(&f->rng, 20))
			addr.used_user_addr = fz_u64(&f->rng);
		fz_call(f, ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr),
			"vhost[%d] SET_VRING_ADDR %u", slot, addr.index);
		break;
	case 9:
		st.num = fz_pct(&f->rng, 50) ? 0 : fz_u32(&f->rng);
		fz_call(f, ioctl(v->fd, VHOST_SET_VRING_BASE, &st),
			"vhost[%d] SET_VRING_BASE %u %u", slot, st.index, st.num);
		break;
	case 10:
	case 11:
		fz_call(f, ioctl(v->fd, VHOST_GET_VRING_BASE, &st),
			"vhost[%d] GET_VRING_BASE %u -> %u", slot, st.index,
			st.num);
		break;
	case 12:
		st.num = fz_pct(&f->rng, 70) ? 1 : 0;
		fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_VRING_ENABLE, &st),
			"vhost[%d] SET_VRING_ENABLE %u %u", slot, st.index,
			st.num);
		break;
	case 13:
	case 14:
		file.index = st.index;
		efd = fz_pct(&f->rng, 85) ? new_eventfd(f) : -1;
		file.fd = efd_value(efd);
		fz_call(f, ioctl(v->fd, fz_pct(&f->rng, 50) ?
				 VHOST_SET_VRING_KICK : VHOST_SET_VRING_CALL,
				 &file),
			"vhost[%d] SET_VRING_KICK/CALL %u fd %d", slot,
			file.index, file.fd);
		efd_done(efd);
		break;
	case 15:
		efd = fz_pct(&f->rng, 85) ? new_eventfd(f) : -1;
		u32 = efd_value(efd);
		fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_CONFIG_CALL, &u32),
			"vhost[%d] SET_CONFIG_CALL fd %d", slot, (int)u32);
		efd_done(efd);
		break;
	case 16:
		fz_call(f, ioctl(v->fd, VHOST_VDPA_GET_VRING_NUM, &u16),
			"vhost[%d] GET_VRING_NUM -> %u", slot, u16);
		fz_call(f, ioctl(v->fd, VHOST_VDPA_GET_CONFIG_SIZE, &u32),
			"vhost[%d] GET_CONFIG_SIZE -> %u", slot, u32);
		fz_call(f, ioctl(v->fd, VHOST_VDPA_GET_DEVICE_ID, &u32),
			"vhost[%d] GET_DEVICE_ID -> %u", slot, u32);
		break;
	case 17:
		fz_call(f, ioctl(v->fd, VHOST_VDPA_GET_GROUP_NUM, &u32),
			"vhost[%d] GET_GROUP_NUM -> %u", slot, u32);
		fz_call(f, ioctl(v->fd, VHOST_VDPA_GET_AS_NUM, &u32),
			"vhost[%d] GET_AS_NUM -> %u", slot, u32);
		fz_call(f, ioctl(v->fd, VHOST_VDPA_GET_VRING_GROUP, &st),
			"vhost[%d] GET_VRING_GROUP %u -> %u", slot, st.index,
			st.num);
		break;
	case 18:
	case 19:
		/* index is the group, num the address space */
		st.index = fz_below(&f->rng, 4);
		st.num = fz_pct(&f->rng, 90) ? fz_below(&f->rng, 4) :
			 fz_u32(&f->rng);
		fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_GROUP_ASID, &st),
			"vhost[%d] SET_GROUP_ASID group %u asid %u", slot,
			st.index, st.num);
		break;
	case 20:
		fz_call(f, ioctl(v->fd, VHOST_VDPA_SUSPEND),
			"vhost[%d] SUSPEND", slot);
		break;
	case 21:
		fz_call(f, ioctl(v->fd, VHOST_VDPA_RESUME),
			"vhost[%d] RESUME", slot);
		break;
	case 22:
		fz_call(f, ioctl(v->fd, VHOST_GET_FEATURES, &u64),
			"vhost[%d] GET_FEATURES -> 0x%llx", slot,
			(unsigned long long)u64);
		break;
	default:
		vhost_setup(f, slot);
		break;
	}
}

static long iotlb_write(struct fz *f, int slot, uint32_t asid, uint8_t type,
			uint64_t iova, uint64_t size, uint64_t uaddr,
			uint8_t perm)
{
	struct vhost_msg_v2 m;

	memset(&m, 0, sizeof(m));
	m.type = VHOST_IOTLB_MSG_V2;
	m.asid = asid;
	m.iotlb.type = type;
	m.iotlb.iova = iova;
	m.iotlb.size = size;
	m.iotlb.uaddr = uaddr;
	m.iotlb.perm = perm;
	return fz_call(f, write(f->vhost[slot].fd, &m, sizeof(m)),
		       "vhost[%d] iotlb type %u asid %u iova 0x%llx size 0x%llx perm %u",
		       slot, type, asid, (unsigned long long)iova,
		       (unsigned long long)size, perm);
}

static void op_vhost_iotlb(struct fz *f)
{
	int slot = vhost_slot(f);
	uint64_t off, size, iova, uaddr;
	uint32_t asid, nas;
	uint8_t type, perm;

	if (slot < 0)
		return;
	fz_count(C_VHOST_CALLS);
	nas = fz_sh->dev[f->vhost[slot].name].nas;
	asid = nas && fz_pct(&f->rng, 90) ? fz_below(&f->rng, nas) :
	       fz_u32(&f->rng);
	off = fz_below(&f->rng, f->memfd_len / 4096) * 4096;
	size = (1 + fz_below(&f->rng, (f->memfd_len - off) / 4096)) * 4096;
	iova = fz_pct(&f->rng, 70) ? RING_IOVA + off : fz_u64(&f->rng) & ~0xfffULL;
	uaddr = (uintptr_t)f->memfd_map + off;
	if (fz_pct(&f->rng, 5))
		uaddr = (uintptr_t)f->scratch;	/* anonymous: not mappable */
	perm = fz_pct(&f->rng, 80) ? VHOST_ACCESS_RW : fz_below(&f->rng, 5);
	switch (fz_below(&f->rng, 20)) {
	case 0 ... 11:
		type = VHOST_IOTLB_UPDATE;
		break;
	case 12 ... 14:
		type = VHOST_IOTLB_INVALIDATE;
		break;
	case 15 ... 16:
		type = VHOST_IOTLB_BATCH_BEGIN;
		break;
	case 17 ... 18:
		type = VHOST_IOTLB_BATCH_END;
		break;
	default:
		type = fz_below(&f->rng, 256);
		break;
	}
	if (iotlb_write(f, slot, asid, type, iova, size, uaddr, perm) > 0 &&
	    type == VHOST_IOTLB_UPDATE)
		fz_hint_add(f->vhost[slot].name, iova);
	if (fz_pct(&f->rng, 5))
		fz_call(f, write(f->vhost[slot].fd, f->scratch,
				 fz_below(&f->rng, 128)),
			"vhost[%d] write junk", slot);
}

/* What a VMM does to start the device, with a bad step now and then. */
static void op_vhost_start(struct fz *f)
{
	int slot = vhost_slot(f), efd;
	struct vhost_vring_state st;
	struct vhost_vring_addr addr;
	struct vhost_vring_file file;
	struct fz_vhost *v;
	uint64_t feat;
	uint32_t i;
	uint8_t s;

	if (slot < 0)
		return;
	v = &f->vhost[slot];
	fz_count(C_VHOST_CALLS);
	s = 0;
	fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_STATUS, &s),
		"vhost[%d] SET_STATUS 0", slot);
	iotlb_write(f, slot, 0, VHOST_IOTLB_UPDATE, RING_IOVA, f->memfd_len,
		    (uintptr_t)f->memfd_map, VHOST_ACCESS_RW);
	fz_hint_add(v->name, RING_IOVA);
	s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_STATUS, &s),
		"vhost[%d] SET_STATUS 0x%x", slot, s);
	feat = v->features;
	if (fz_pct(&f->rng, 20))
		feat &= fz_next(&f->rng) | 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	fz_call(f, ioctl(v->fd, VHOST_SET_FEATURES, &feat),
		"vhost[%d] SET_FEATURES 0x%llx", slot, (unsigned long long)feat);
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_STATUS, &s),
		"vhost[%d] SET_STATUS 0x%x", slot, s);
	for (i = 0; i < v->nvqs && i < 8; i++) {
		st.index = i;
		st.num = 256;
		fz_call(f, ioctl(v->fd, VHOST_SET_VRING_NUM, &st),
			"vhost[%d] SET_VRING_NUM %u", slot, i);
		memset(&addr, 0, sizeof(addr));
		addr.index = i;
		addr.desc_user_addr = RING_IOVA + i * 0x4000;
		addr.avail_user_addr = addr.desc_user_addr + 0x1000;
		addr.used_user_addr = addr.desc_user_addr + 0x2000;
		fz_call(f, ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr),
			"vhost[%d] SET_VRING_ADDR %u", slot, i);
		file.index = i;
		efd = new_eventfd(f);
		file.fd = efd_value(efd);
		fz_call(f, ioctl(v->fd, VHOST_SET_VRING_KICK, &file),
			"vhost[%d] SET_VRING_KICK %u", slot, i);
		efd_done(efd);
		efd = new_eventfd(f);
		file.fd = efd_value(efd);
		fz_call(f, ioctl(v->fd, VHOST_SET_VRING_CALL, &file),
			"vhost[%d] SET_VRING_CALL %u", slot, i);
		efd_done(efd);
		st.num = fz_pct(&f->rng, 90);
		fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_VRING_ENABLE, &st),
			"vhost[%d] SET_VRING_ENABLE %u %u", slot, i, st.num);
	}
	s |= VIRTIO_CONFIG_S_DRIVER_OK;
	fz_call(f, ioctl(v->fd, VHOST_VDPA_SET_STATUS, &s),
		"vhost[%d] SET_STATUS 0x%x", slot, s);
}

const struct fz_op fz_vhost_ops[] = {
	{ "vhost_open", 5, op_vhost_open },
	{ "vhost_close", 2, op_vhost_close },
	{ "vhost_ioctl", 12, op_vhost_ioctl },
	{ "vhost_iotlb", 5, op_vhost_iotlb },
	{ "vhost_start", 3, op_vhost_start },
	{ NULL, 0, NULL },
};
