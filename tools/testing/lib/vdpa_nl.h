/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal client of the vDPA generic netlink family: the two messages
 * iproute2's "vdpa dev add name NAME mgmtdev vduse" and "vdpa dev del NAME"
 * send, which is much cheaper than running the vdpa tool under TCG.  One
 * struct vdpa_nl is one socket; threads that talk at the same time each
 * open their own.  Every call returns 0 or a positive errno.
 */
#ifndef _VDUSE_TEST_VDPA_NL_H
#define _VDUSE_TEST_VDPA_NL_H

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vdpa.h>

struct vdpa_nl {
	int fd;
	__u16 family;
	__u32 seq;
};

struct vdpa_nl_msg {
	struct nlmsghdr n;
	struct genlmsghdr g;
	char attrs[1024];
};

static inline void vdpa_nl_put_str(struct nlmsghdr *n, int type,
				   const char *str)
{
	struct nlattr *a = (struct nlattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
	size_t len = strlen(str) + 1;

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, str, len);
	n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static inline void vdpa_nl_init(struct vdpa_nl *nl, struct vdpa_nl_msg *m,
				__u16 type, __u8 cmd, __u8 version,
				__u16 flags)
{
	memset(m, 0, sizeof(*m));
	m->n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m->n.nlmsg_type = type;
	m->n.nlmsg_flags = NLM_F_REQUEST | flags;
	m->n.nlmsg_seq = ++nl->seq;
	m->g.cmd = cmd;
	m->g.version = version;
}

/*
 * Send m and read the answer into resp: 0 when the kernel answered with
 * a message or an ACK, else the errno.
 */
static inline int vdpa_nl_talk(struct vdpa_nl *nl, struct vdpa_nl_msg *m,
			       char *resp, size_t rlen)
{
	struct nlmsghdr *h;
	ssize_t n;

	if (send(nl->fd, m, m->n.nlmsg_len, 0) < 0)
		return errno;
	for (;;) {
		n = recv(nl->fd, resp, rlen, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		for (h = (struct nlmsghdr *)resp; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != m->n.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? -e->error : 0;
			}
			return 0;
		}
	}
}

/* Open the socket and look the "vdpa" family up. */
static inline int vdpa_nl_open(struct vdpa_nl *nl)
{
	char resp[4096];
	struct vdpa_nl_msg m;
	struct nlmsghdr *h = (struct nlmsghdr *)resp;
	struct nlattr *a;
	int len, e;

	nl->seq = 0;
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return errno;
	vdpa_nl_init(nl, &m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, 0);
	vdpa_nl_put_str(&m.n, CTRL_ATTR_FAMILY_NAME, VDPA_GENL_NAME);
	e = vdpa_nl_talk(nl, &m, resp, sizeof(resp));
	if (!e && h->nlmsg_type == NLMSG_ERROR)
		e = EPROTO;
	if (e)
		goto err;
	len = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	a = (struct nlattr *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);
	while (len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len) {
		if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID) {
			memcpy(&nl->family, (char *)a + NLA_HDRLEN, 2);
			return 0;
		}
		len -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
	e = ENOENT;
err:
	close(nl->fd);
	nl->fd = -1;
	return e;
}

static inline void vdpa_nl_close(struct vdpa_nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

/* vdpa dev add name NAME mgmtdev vduse */
static inline int vdpa_nl_dev_add(struct vdpa_nl *nl, const char *name)
{
	char resp[4096];
	struct vdpa_nl_msg m;

	vdpa_nl_init(nl, &m, nl->family, VDPA_CMD_DEV_NEW, VDPA_GENL_VERSION,
		     NLM_F_ACK);
	vdpa_nl_put_str(&m.n, VDPA_ATTR_MGMTDEV_DEV_NAME, "vduse");
	vdpa_nl_put_str(&m.n, VDPA_ATTR_DEV_NAME, name);
	return vdpa_nl_talk(nl, &m, resp, sizeof(resp));
}

/* vdpa dev del NAME */
static inline int vdpa_nl_dev_del(struct vdpa_nl *nl, const char *name)
{
	char resp[4096];
	struct vdpa_nl_msg m;

	vdpa_nl_init(nl, &m, nl->family, VDPA_CMD_DEV_DEL, VDPA_GENL_VERSION,
		     NLM_F_ACK);
	vdpa_nl_put_str(&m.n, VDPA_ATTR_DEV_NAME, name);
	return vdpa_nl_talk(nl, &m, resp, sizeof(resp));
}

#endif /* _VDUSE_TEST_VDPA_NL_H */
