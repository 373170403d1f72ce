/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the C checks that take VDUSE devices from the control
 * node to a bound vDPA driver (abi_behaviour, vduse_security): sysfs and
 * shell commands, building, creating and destroying devices, their nodes,
 * attaching them to the vDPA bus and opening their vhost-vdpa node.  Each
 * program keeps its own reporting; a fixture that cannot be set up ends
 * the program with a TAP "Bail out!" line.
 */
#ifndef _VDUSE_TEST_VDUSE_TEST_H
#define _VDUSE_TEST_VDUSE_TEST_H

#include <linux/vduse.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define CTL_PATH	"/dev/vduse/control"
#define SYSFS_VDUSE	"/sys/class/vduse"

/* ------------------------------------------------------------------ */
/* Syscalls, files, sysfs, commands                                    */
/* ------------------------------------------------------------------ */

/* A syscall's result as a value >= 0 or -errno. */
static inline long sys(long ret)
{
	return ret < 0 ? -errno : ret;
}

static inline void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Run a shell command; its stdout goes to our stderr so that TAP output
 * stays clean.  Returns the exit status, or -1.
 */
static inline int __attribute__((format(printf, 1, 2)))
run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 1>&2", sizeof(cmd) - strlen(cmd) - 1);
	fflush(stdout);
	st = system(cmd);
	if (st < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Read a sysfs file into buf without the trailing newline; -errno. */
static inline int sysfs_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return 0;
}

/* Write a string to a sysfs file in one write(2); 0 or -errno. */
static inline int sysfs_write(const char *path, const char *val)
{
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* /sys/class/vduse/NAME/ATTR, in a static buffer. */
static inline const char *dev_attr(const char *name, const char *attr)
{
	static char path[512];

	snprintf(path, sizeof(path), SYSFS_VDUSE "/%s/%s", name, attr);
	return path;
}

/* ------------------------------------------------------------------ */
/* Control node and device creation                                    */
/* ------------------------------------------------------------------ */

static inline int ctl_open(void)
{
	int fd = open(CTL_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("Bail out! cannot open %s: %s\n", CTL_PATH, strerror(errno));
		exit(1);
	}
	return fd;
}

/* A control fd set to an API version (0 or 1). */
static inline int ctl_open_v(unsigned long long v)
{
	int fd = ctl_open();

	if (ioctl(fd, VDUSE_SET_API_VERSION, &v)) {
		printf("Bail out! SET_API_VERSION %llu: %s\n", v, strerror(errno));
		exit(1);
	}
	return fd;
}

/* The creation argument: fixed header plus room for a config space. */
struct create {
	struct vduse_dev_config hdr;
	__u8 space[65536];
};

/*
 * Zero *c and fill in the header of a device with VERSION_1 and
 * ACCESS_PLATFORM besides features, and page-aligned rings.
 */
static inline void cfg_init(struct create *c, const char *name, __u32 device_id,
			    __u64 features, __u32 vq_num, __u32 config_size)
{
	memset(c, 0, sizeof(*c));
	strncpy(c->hdr.name, name, VDUSE_NAME_MAX - 1);
	c->hdr.device_id = device_id;
	c->hdr.vendor_id = 0x1af4;
	c->hdr.features = 1ULL << VIRTIO_F_VERSION_1 |
			  1ULL << VIRTIO_F_ACCESS_PLATFORM | features;
	c->hdr.vq_num = vq_num;
	c->hdr.vq_align = sysconf(_SC_PAGESIZE);
	c->hdr.config_size = config_size;
}

/* A block device with FLUSH and nvqs queues (MQ when more than one). */
static inline void cfg_blk(struct create *c, const char *name, unsigned int nvqs)
{
	struct virtio_blk_config *blk = (void *)c->hdr.config;

	cfg_init(c, name, VIRTIO_ID_BLOCK, 1ULL << VIRTIO_BLK_F_FLUSH |
		 (nvqs > 1 ? 1ULL << VIRTIO_BLK_F_MQ : 0), nvqs, sizeof(*blk));
	/* Capacity 0: the block layer never issues I/O to this disk. */
	blk->capacity = 0;
	blk->num_queues = nvqs;
}

/* A net device with a MAC and its two data queues. */
static inline void cfg_net(struct create *c, const char *name, const __u8 mac[6])
{
	struct virtio_net_config *net = (void *)c->hdr.config;

	cfg_init(c, name, VIRTIO_ID_NET, 1ULL << VIRTIO_NET_F_MAC, 2, sizeof(*net));
	memcpy(net->mac, mac, sizeof(net->mac));
}

/* DESTROY_DEV; the name goes NUL-padded to 256 bytes (stock copies all 256). */
static inline long destroy(int ctl, const char *name)
{
	char buf[VDUSE_NAME_MAX] = { 0 };

	snprintf(buf, sizeof(buf), "%s", name);
	return sys(ioctl(ctl, VDUSE_DESTROY_DEV, buf));
}

/* Destroy the devices whose names start with prefix: an earlier run's. */
static inline void cleanup_leftovers(const char *prefix)
{
	struct dirent *de;
	DIR *d;
	int ctl;

	d = opendir(SYSFS_VDUSE);
	if (!d)
		return;
	ctl = ctl_open();
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		note("removing leftover device %s", de->d_name);
		run("vdpa dev del %s 2>/dev/null", de->d_name);
		destroy(ctl, de->d_name);
	}
	close(ctl);
	closedir(d);
}

/* ------------------------------------------------------------------ */
/* The device node                                                     */
/* ------------------------------------------------------------------ */

static inline int dev_open_flags(const char *name, int flags)
{
	char path[VDUSE_NAME_MAX + 16];

	snprintf(path, sizeof(path), "/dev/vduse/%s", name);
	return open(path, O_RDWR | O_CLOEXEC | flags);
}

/* The node of a device just created, or bail out. */
static inline int dev_open(const char *name)
{
	int fd, i;

	/* devtmpfs creates the node asynchronously to the ioctl. */
	for (i = 0; i < 100; i++) {
		fd = dev_open_flags(name, 0);
		if (fd >= 0 || errno != ENOENT)
			break;
		msleep(10);
	}
	if (fd < 0) {
		printf("Bail out! cannot open /dev/vduse/%s: %s\n", name,
		       strerror(errno));
		exit(1);
	}
	return fd;
}

static inline long vq_setup(int fd, __u32 index, __u16 max_size)
{
	struct vduse_vq_config vc = { .index = index, .max_size = max_size };

	return sys(ioctl(fd, VDUSE_VQ_SETUP, &vc));
}

/* ------------------------------------------------------------------ */
/* The vDPA side                                                       */
/* ------------------------------------------------------------------ */

/*
 * "vdpa dev add" with vDPA driver autoprobe off, so that no driver binds
 * before the caller binds one (vdpa_bind); autoprobe is then set back to
 * what it was before the first call.  Returns the vdpa tool's status.
 */
static inline int vdpa_add_unbound(const char *name)
{
	static const char autoprobe[] = "/sys/bus/vdpa/drivers_autoprobe";
	static char saved[8];
	int r;

	if (!saved[0] && sysfs_read(autoprobe, saved, sizeof(saved)))
		strcpy(saved, "1");
	sysfs_write(autoprobe, "0");
	r = run("vdpa dev add name %s mgmtdev vduse", name);
	sysfs_write(autoprobe, saved);
	return r;
}

static inline int vdpa_bind(const char *name, const char *drv)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/vdpa/drivers/%s/bind", drv);
	return sysfs_write(path, name);
}

/* Name of the net interface of an attached vDPA device, or NULL. */
static inline const char *net_ifname(const char *name)
{
	static char ifname[256];
	char path[512];
	struct dirent *de, *de2;
	DIR *d, *d2;

	snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s", name);
	d = opendir(path);
	if (!d)
		return NULL;
	ifname[0] = 0;
	while ((de = readdir(d)) && !ifname[0]) {
		if (strncmp(de->d_name, "virtio", 6))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s/%s/net",
			 name, de->d_name);
		d2 = opendir(path);
		while (d2 && (de2 = readdir(d2)))
			if (de2->d_name[0] != '.')
				snprintf(ifname, sizeof(ifname), "%s", de2->d_name);
		if (d2)
			closedir(d2);
	}
	closedir(d);
	return ifname[0] ? ifname : NULL;
}

/* /dev/vhost-vdpa-N of a device bound to vhost_vdpa, opened, or -1. */
static inline int vhost_open(const char *name)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int fd = -1;

	snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s", name);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "vhost-vdpa-", 11)) {
			snprintf(path, sizeof(path), "/dev/%s", de->d_name);
			fd = open(path, O_RDWR | O_CLOEXEC);
			break;
		}
	closedir(d);
	return fd;
}

/* One VHOST_IOTLB_UPDATE through the vhost-vdpa fd; 0 or -errno. */
static inline long vhost_iotlb_update(int vfd, __u32 asid, __u64 iova,
				      __u64 size, void *uaddr)
{
	struct vhost_msg_v2 m;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	m.type = VHOST_IOTLB_MSG_V2;
	m.asid = asid;
	m.iotlb.iova = iova;
	m.iotlb.size = size;
	m.iotlb.uaddr = (uintptr_t)uaddr;
	m.iotlb.perm = VHOST_ACCESS_RW;
	m.iotlb.type = VHOST_IOTLB_UPDATE;
	n = write(vfd, &m, sizeof(m));
	if (n < 0)
		return -errno;
	return n == sizeof(m) ? 0 : -EIO;
}

#endif /* _VDUSE_TEST_VDUSE_TEST_H */
