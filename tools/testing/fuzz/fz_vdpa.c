// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_fuzz: the vDPA side.  Devices are attached and detached with
 * VDPA_CMD_DEV_NEW and VDPA_CMD_DEV_DEL on a raw generic netlink socket
 * (family "vdpa", management device "vduse"), queried with the GET
 * commands, bound to virtio_vdpa or vhost_vdpa through sysfs (block
 * devices to vhost_vdpa only: nobody serves their queues, and
 * virtio_blk's partition scan would wait for ever), unbound, and torn
 * down whole.  The interface virtio_net makes of a net device is brought
 * up (so that it posts receive buffers through the bounce area) with ARP
 * and IPv6 off, so that it never transmits: nobody serves its queues.
 * Before a device is unbound or deleted, the batch closes its own
 * /dev/vhost-vdpa-N of it: vhost_vdpa's remove waits, uninterruptibly,
 * for every opener to go.
 */
#include <linux/genetlink.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/vdpa.h>
#include <linux/vduse.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fuzz.h"

struct nl_msg {
	struct nlmsghdr n;
	struct genlmsghdr g;
	char attrs[1024];
};

static void nl_init(struct nl_msg *m, int type, int cmd, int flags)
{
	memset(m, 0, sizeof(*m));
	m->n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m->n.nlmsg_type = type;
	m->n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	m->g.cmd = cmd;
	m->g.version = type == GENL_ID_CTRL ? 1 : VDPA_GENL_VERSION;
}

static void nl_put(struct nl_msg *m, int type, const void *data, int len)
{
	struct nlattr *a = (void *)((char *)m + NLMSG_ALIGN(m->n.nlmsg_len));

	if (NLMSG_ALIGN(m->n.nlmsg_len) + NLA_HDRLEN + NLA_ALIGN(len) > sizeof(*m))
		return;
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	m->n.nlmsg_len = NLMSG_ALIGN(m->n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void nl_put_str(struct nl_msg *m, int type, const char *s)
{
	nl_put(m, type, s, strlen(s) + 1);
}

/*
 * Send M and read until its ack: 0 or -errno.  The first reply message
 * of M's sequence goes to REPLY (REPLY_LEN bytes at most), if given.
 */
static int nl_talk(int fd, struct nl_msg *m, void *reply, size_t reply_len)
{
	static uint32_t seq;
	char buf[8192];
	struct nlmsghdr *h;
	bool copied = false;
	ssize_t len;
	int l;

	m->n.nlmsg_seq = ++seq;
	if (send(fd, m, m->n.nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0)
			return -errno;
		l = len;
		for (h = (void *)buf; NLMSG_OK(h, l); h = NLMSG_NEXT(h, l)) {
			if (h->nlmsg_seq != m->n.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (reply && !copied) {
				memcpy(reply, h, h->nlmsg_len < reply_len ?
				       h->nlmsg_len : reply_len);
				copied = true;
			}
		}
	}
}

/* The attribute TYPE of a generic netlink reply, or NULL. */
static struct nlattr *nl_attr(void *reply, int type)
{
	struct nlmsghdr *h = reply;
	struct nlattr *a = (void *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);
	int left = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);

	while (left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
	       a->nla_len <= left) {
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		left -= NLA_ALIGN(a->nla_len);
		a = (void *)((char *)a + NLA_ALIGN(a->nla_len));
	}
	return NULL;
}

int fz_nl_open(struct fz *f)
{
	struct timeval tv = { .tv_sec = 30 };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char reply[4096];
	struct nl_msg m;
	struct nlattr *a;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	nl_init(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	nl_put_str(&m, CTRL_ATTR_FAMILY_NAME, VDPA_GENL_NAME);
	memset(reply, 0, sizeof(reply));
	if (nl_talk(fd, &m, reply, sizeof(reply)))
		goto fail;
	a = nl_attr(reply, CTRL_ATTR_FAMILY_ID);
	if (!a)
		goto fail;
	f->vdpa_family = *(uint16_t *)((char *)a + NLA_HDRLEN);
	f->nl = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

static int vdpa_cmd(struct fz *f, struct nl_msg *m, void *reply, size_t len)
{
	fz_count(C_NL);
	return f->nl < 0 ? -ENOTCONN : nl_talk(f->nl, m, reply, len);
}

static int vdpa_dev_new(struct fz *f, const char *name, bool log, bool junk)
{
	static const char mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	uint16_t v16 = 1500;
	uint64_t v64 = 1ULL << 32;
	struct nl_msg m;
	int ret;

	nl_init(&m, f->vdpa_family, VDPA_CMD_DEV_NEW, 0);
	nl_put_str(&m, VDPA_ATTR_MGMTDEV_DEV_NAME,
		   junk && fz_pct(&f->rng, 3) ? "vdpasim_net" : "vduse");
	nl_put_str(&m, VDPA_ATTR_DEV_NAME, name);
	if (junk) {
		switch (fz_below(&f->rng, 30)) {
		case 0:	/* the management device accepts no attributes */
			nl_put(&m, VDPA_ATTR_DEV_NET_CFG_MACADDR, mac, 6);
			break;
		case 1:
			nl_put(&m, VDPA_ATTR_DEV_NET_CFG_MTU, &v16, 2);
			break;
		case 2:
			nl_put(&m, VDPA_ATTR_DEV_FEATURES, &v64, 8);
			break;
		case 3:
			nl_put(&m, VDPA_ATTR_DEV_NET_CFG_MAX_VQP, &v16, 2);
			break;
		}
	}
	ret = vdpa_cmd(f, &m, NULL, 0);
	if (log)
		fz_callr(f, ret, "vdpa dev add %.40s", name);
	if (!ret)
		fz_count(C_ATTACHED);
	return ret;
}

int fz_vdpa_dev_new(struct fz *f, const char *name, bool log)
{
	return vdpa_dev_new(f, name, log, false);
}

int fz_vdpa_dev_del(struct fz *f, const char *name, bool log)
{
	struct nl_msg m;
	int ret;

	nl_init(&m, f->vdpa_family, VDPA_CMD_DEV_DEL, 0);
	nl_put_str(&m, VDPA_ATTR_DEV_NAME, name);
	ret = vdpa_cmd(f, &m, NULL, 0);
	if (log)
		fz_callr(f, ret, "vdpa dev del %.40s", name);
	if (!ret)
		fz_count(C_DETACHED);
	return ret;
}

/* The virtio device id of vDPA device NAME, or -errno. */
static int vdpa_dev_id(struct fz *f, const char *name)
{
	char reply[4096];
	struct nl_msg m;
	struct nlattr *a;
	int ret;

	nl_init(&m, f->vdpa_family, VDPA_CMD_DEV_GET, 0);
	nl_put_str(&m, VDPA_ATTR_DEV_NAME, name);
	memset(reply, 0, sizeof(reply));
	ret = vdpa_cmd(f, &m, reply, sizeof(reply));
	if (ret)
		return ret;
	a = nl_attr(reply, VDPA_ATTR_DEV_ID);
	return a ? (int)*(uint32_t *)((char *)a + NLA_HDRLEN) : -ENOENT;
}

static void op_vdpa_query(struct fz *f)
{
	int name = fz_name(f), ret, cmd, flags = 0;
	char reply[4096];
	uint32_t qidx = fz_below(&f->rng, 4);
	struct nl_msg m;

	switch (fz_below(&f->rng, 5)) {
	case 0:
		cmd = VDPA_CMD_DEV_GET;
		break;
	case 1:
		cmd = VDPA_CMD_DEV_CONFIG_GET;
		break;
	case 2:
		cmd = VDPA_CMD_DEV_VSTATS_GET;
		break;
	case 3:
		cmd = VDPA_CMD_MGMTDEV_GET;
		break;
	default:
		cmd = fz_pct(&f->rng, 50) ? VDPA_CMD_DEV_GET : VDPA_CMD_DEV_CONFIG_GET;
		flags = NLM_F_DUMP;
		break;
	}
	nl_init(&m, f->vdpa_family, cmd, flags);
	if (cmd == VDPA_CMD_MGMTDEV_GET)
		nl_put_str(&m, VDPA_ATTR_MGMTDEV_DEV_NAME, "vduse");
	else if (!flags)
		nl_put_str(&m, VDPA_ATTR_DEV_NAME, fz_names[name]);
	if (cmd == VDPA_CMD_DEV_VSTATS_GET)
		nl_put(&m, VDPA_ATTR_DEV_QUEUE_INDEX, &qidx, 4);
	ret = vdpa_cmd(f, &m, reply, sizeof(reply));
	fz_callr(f, ret, "vdpa cmd %d flags 0x%x %.40s", cmd, flags,
		 flags ? "(dump)" : fz_names[name]);
}

/* ------------------------------------------------------------------ */
/* Drivers                                                             */

/* The driver NAME is bound to, in BUF; NULL when none. */
const char *fz_bound_to(const char *name, char *buf, size_t len)
{
	char path[VDUSE_NAME_MAX + 64], link[PATH_MAX];
	ssize_t n;
	char *s;

	snprintf(path, sizeof(path), VDPA_SYSFS "/devices/%s/driver", name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return NULL;
	link[n] = '\0';
	s = strrchr(link, '/');
	snprintf(buf, len, "%.63s", s ? s + 1 : link);
	return buf;
}

static void vdpa_bind(struct fz *f, int name)
{
	char path[VDUSE_NAME_MAX + 64], cur[64];
	const char *drv = "vhost_vdpa", *n = fz_names[name];
	int id;

	if (fz_bound_to(n, cur, sizeof(cur)))
		return;
	/* virtio_vdpa only for types whose driver needs no I/O to probe. */
	id = vdpa_dev_id(f, n);
	if ((id == VIRTIO_ID_NET || id == VIRTIO_ID_FS) && fz_pct(&f->rng, 60))
		drv = "virtio_vdpa";
	snprintf(path, sizeof(path), VDPA_SYSFS "/devices/%s/driver_override", n);
	if (fz_callr(f, fz_sysfs_write(path, drv), "%.40s driver_override = %s",
		    n, drv))
		return;
	if (fz_pct(&f->rng, 50)) {
		snprintf(path, sizeof(path), VDPA_SYSFS "/drivers/%s/bind", drv);
		if (!fz_callr(f, fz_sysfs_write(path, n), "bind %.40s to %s", n,
			     drv))
			fz_count(C_BOUND);
	} else {
		if (!fz_callr(f, fz_sysfs_write(VDPA_SYSFS "/drivers_probe", n),
			     "drivers_probe %.40s (%s)", n, drv) &&
		    fz_bound_to(n, cur, sizeof(cur)))
			fz_count(C_BOUND);
	}
}

/* Everything that keeps a device alive, then destroy it. */
static void teardown(struct fz *f, int name)
{
	int i, ctl;
	long r;

	fz_vhost_close_name(f, name);
	fz_vdpa_dev_del(f, fz_names[name], true);
	pthread_mutex_lock(&f->lock);
	for (i = 0; i < FZ_DEV_SLOTS; i++)
		if (f->dev[i].fd >= 0 && f->dev[i].name == name)
			fz_dev_close(f, i);
	pthread_mutex_unlock(&f->lock);
	ctl = fz_ctl_fd(f);
	r = fz_destroy_name(ctl, fz_names[name]);
	fz_callr(f, r, "control DESTROY_DEV %.40s", fz_names[name]);
	if (!r) {
		fz_sh->dev[name].exists = false;
		fz_count(C_DESTROYED);
	}
}

/* The network interface virtio_net made of device NAME, in BUF. */
static int netdev_of(const char *name, char *buf, size_t len)
{
	char path[VDUSE_NAME_MAX + 64];
	struct dirent *de, *ne;
	DIR *d, *n;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), VDPA_SYSFS "/devices/%s", name);
	d = opendir(path);
	if (!d)
		return -errno;
	while (ret && (de = readdir(d))) {
		if (strncmp(de->d_name, "virtio", 6))
			continue;
		snprintf(path, sizeof(path), VDPA_SYSFS "/devices/%s/%.40s/net",
			 name, de->d_name);
		n = opendir(path);
		while (n && (ne = readdir(n))) {
			if (ne->d_name[0] == '.')
				continue;
			snprintf(buf, len, "%.15s", ne->d_name);
			ret = 0;
			break;
		}
		if (n)
			closedir(n);
	}
	closedir(d);
	return ret;
}

/*
 * Whether virtio_net can fill the receive rings of device NAME (open in
 * SLOT).  In big-packets mode (guest GSO, or an MTU above 1500) it puts
 * MAX_SKB_FRAGS + 2 descriptors in every receive buffer, and without
 * indirect descriptors a smaller ring makes virtio_ring warn
 * (virtqueue_add_split: "total_sg > vring.num").  A daemon chooses the
 * ring size, so it can make the guest's driver warn, with the stock
 * module as with ours: a virtio_net weakness the fuzzer steps around
 * unless --known-crashes.
 */
static bool netdev_rings_ok(struct fz *f, int slot)
{
	struct vduse_vq_info info;
	uint64_t feat;
	uint32_t i;

	if (fz_known_crashes)
		return true;
	if (ioctl(f->dev[slot].fd, VDUSE_DEV_GET_FEATURES, &feat))
		return false;
	if (feat & 1ULL << VIRTIO_RING_F_INDIRECT_DESC)
		return true;
	for (i = 0; i < 64; i++) {
		memset(&info, 0, sizeof(info));
		info.index = i;
		if (ioctl(f->dev[slot].fd, VDUSE_VQ_GET_INFO, &info))
			break;
		if (info.num && info.num < 64)
			return false;
	}
	return i > 0;
}

/*
 * Bring the interface of a virtio_vdpa net device up (so that virtio_net
 * posts receive buffers through the bounce area) or down.  It sends
 * nothing on its own: no ARP, no IPv6, no address.
 */
static void netdev_updown(struct fz *f, int name, bool up)
{
	char ifname[16], path[96];
	struct ifreq ifr;
	int sock, slot;

	if (netdev_of(fz_names[name], ifname, sizeof(ifname)))
		return;
	slot = fz_dev_ensure(f, name);
	if (up && (slot < 0 || !netdev_rings_ok(f, slot))) {
		fz_log(f, "%s (%.40s) stays down: rings too small", ifname,
		       fz_names[name]);
		return;
	}
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
		 ifname);
	fz_sysfs_write(path, "1");
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (!ioctl(sock, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_NOARP;
		if (up)
			ifr.ifr_flags |= IFF_UP;
		else
			ifr.ifr_flags &= ~IFF_UP;
		fz_call(f, ioctl(sock, SIOCSIFFLAGS, &ifr), "%s (%.40s) %s",
			ifname, fz_names[name], up ? "up" : "down");
	}
	close(sock);
}

static void op_netdev(struct fz *f)
{
	netdev_updown(f, fz_name(f), fz_pct(&f->rng, 75));
}

static bool node_exists(const char *dir, int name)
{
	char path[VDUSE_NAME_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, fz_names[name]);
	return !access(path, F_OK);
}

static void op_vdpa_new(struct fz *f)
{
	int name = fz_name(f);

	/* Mostly with someone at the other end of the device. */
	if (fz_pct(&f->rng, 80))
		fz_dev_ensure(f, name);
	if (!vdpa_dev_new(f, fz_names[name], true, true) && fz_pct(&f->rng, 70))
		vdpa_bind(f, name);
}

/*
 * What a daemon and its admin do to bring a device up; a device that
 * broke (every ioctl EPERM) is torn down and made again first.
 */
static void op_lifecycle(struct fz *f)
{
	int name = fz_name(f), slot;
	uint64_t v;

	if (node_exists("/dev/vduse", name)) {
		slot = fz_dev_ensure(f, name);
		if (slot >= 0 &&
		    fz_call(f, ioctl(f->dev[slot].fd, VDUSE_DEV_GET_FEATURES, &v),
			    "dev[%d] DEV_GET_FEATURES", slot) < 0 &&
		    errno == EPERM)
			teardown(f, name);
	}
	if (!node_exists("/dev/vduse", name) && fz_create(f, name, true))
		return;
	slot = fz_dev_ensure(f, name);
	if (slot < 0)
		return;
	fz_dev_setup_vqs(f, slot);
	if (!node_exists(VDPA_SYSFS "/devices", name) &&
	    fz_vdpa_dev_new(f, fz_names[name], true))
		return;
	vdpa_bind(f, name);
	if (fz_pct(&f->rng, 60))
		netdev_updown(f, name, true);
}

static void op_vdpa_del(struct fz *f)
{
	int name = fz_name(f);

	fz_vhost_close_name(f, name);
	if (fz_pct(&f->rng, 90))
		fz_dev_ensure(f, name);
	fz_vdpa_dev_del(f, fz_names[name], true);
}

static void op_vdpa_bind(struct fz *f)
{
	int name = fz_name(f);

	if (fz_pct(&f->rng, 80))
		fz_dev_ensure(f, name);
	vdpa_bind(f, name);
}

static void op_vdpa_unbind(struct fz *f)
{
	int name = fz_name(f);
	const char *n = fz_names[name];
	char path[VDUSE_NAME_MAX + 64], cur[64];

	if (!fz_bound_to(n, cur, sizeof(cur)))
		return;
	fz_vhost_close_name(f, name);
	if (fz_pct(&f->rng, 90))
		fz_dev_ensure(f, name);
	snprintf(path, sizeof(path), VDPA_SYSFS "/drivers/%s/unbind", cur);
	fz_callr(f, fz_sysfs_write(path, n), "unbind %.40s from %s", n, cur);
}

static void op_teardown(struct fz *f)
{
	teardown(f, fz_name(f));
}

const struct fz_op fz_vdpa_ops[] = {
	{ "vdpa_new", 9, op_vdpa_new },
	{ "vdpa_del", 4, op_vdpa_del },
	{ "vdpa_query", 3, op_vdpa_query },
	{ "vdpa_bind", 4, op_vdpa_bind },
	{ "vdpa_unbind", 2, op_vdpa_unbind },
	{ "teardown", 3, op_teardown },
	{ "lifecycle", 6, op_lifecycle },
	{ "netdev", 2, op_netdev },
	{ NULL, 0, NULL },
};
