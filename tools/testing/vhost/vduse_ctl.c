// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_ctl: small VDUSE control tool for the lifecycle suite.
 *
 *   vduse_ctl create NAME [NVQS]   create a block device (API version 0),
 *                                  set up its NVQS (default 1) virtqueues
 *                                  and close its node again
 *   vduse_ctl destroy NAME         VDUSE_DESTROY_DEV
 *   vduse_ctl hold NAME            open /dev/vduse/NAME, print "held" and
 *                                  keep it open until killed
 *   vduse_ctl probe NAME           open the node and report how it reacts:
 *                                  "open=E", "ioctl=E" (DEV_GET_FEATURES),
 *                                  "vqinfo=E" (VQ_GET_INFO of vq 0) and
 *                                  "poll=FLAGS" (revents of a zero-timeout
 *                                  poll for POLLIN|POLLOUT), one per line
 *   vduse_ctl api                  print what VDUSE_GET_API_VERSION reports
 *                                  on a fresh control file
 *   vduse_ctl cycle NAME N [attach]
 *                                  N times: create NAME, set it up,
 *                                  optionally attach it to the vDPA bus
 *                                  and detach it again, destroy it
 *   vduse_ctl readd NAME N         N times: attach the existing device
 *                                  NAME to the vDPA bus and detach it
 *
 * cycle and readd print "cycles=N failures=F" and exit 1 on any failure.
 * They attach and detach through the vDPA generic netlink family (what
 * "vdpa dev add name NAME mgmtdev vduse" and "vdpa dev del NAME" send),
 * which is much cheaper than running iproute2's vdpa each time under TCG.
 * With attach the caller must have turned vDPA driver autoprobe off, so
 * that no driver binds and no request is sent.
 *
 * create and destroy print the result: "OK" or the errno name (EBUSY,
 * EEXIST, ...), and exit 0 only on success.
 */
#include <linux/vduse.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vdpa_nl.h"
#include "vduse_vqs.h"

#define CTL_PATH	"/dev/vduse/control"

static const char *errname(int e)
{
	const char *n;

	if (!e)
		return "OK";
	n = strerrorname_np(e);
	return n ? n : "E?";
}

/* 0 or errno */
static int ctl_open(int *ctl)
{
	__u64 ver = VDUSE_API_VERSION;

	*ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	if (*ctl < 0)
		return errno;
	if (ioctl(*ctl, VDUSE_SET_API_VERSION, &ver)) {
		int e = errno;

		close(*ctl);
		return e;
	}
	return 0;
}

static int dev_create(int ctl, const char *name, unsigned int nvqs)
{
	struct {
		struct vduse_dev_config hdr;
		struct virtio_blk_config blk;
	} c;

	memset(&c, 0, sizeof(c));
	snprintf(c.hdr.name, sizeof(c.hdr.name), "%s", name);
	c.hdr.vendor_id = 0;
	c.hdr.device_id = VIRTIO_ID_BLOCK;
	c.hdr.features = 1ULL << VIRTIO_F_VERSION_1 |
			 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	c.hdr.vq_num = nvqs;
	c.hdr.vq_align = 4096;
	c.hdr.config_size = sizeof(c.blk);
	c.blk.capacity = 2048;		/* 1 MiB */
	return ioctl(ctl, VDUSE_CREATE_DEV, &c) ? errno : 0;
}

static int dev_destroy(int ctl, const char *name)
{
	char buf[VDUSE_NAME_MAX];

	/* A full 256-byte buffer: the stock module copies that much. */
	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", name);
	return ioctl(ctl, VDUSE_DESTROY_DEV, buf) ? errno : 0;
}

/* vDPA generic netlink (tools/testing/lib/vdpa_nl.h) */
static struct vdpa_nl nl = { .fd = -1 };

static int nl_open(void)
{
	return vdpa_nl_open(&nl);
}

static int vdpa_dev_add(const char *name)
{
	return vdpa_nl_dev_add(&nl, name);
}

static int vdpa_dev_del(const char *name)
{
	return vdpa_nl_dev_del(&nl, name);
}

static int cmd_create(const char *name, unsigned int nvqs)
{
	int ctl, e;

	e = ctl_open(&ctl);
	if (!e) {
		e = dev_create(ctl, name, nvqs);
		close(ctl);
	}
	if (!e)
		e = vduse_setup_vqs(name, nvqs);
	printf("%s\n", errname(e));
	return e ? 1 : 0;
}

static int cmd_destroy(const char *name)
{
	int ctl, e;

	e = ctl_open(&ctl);
	if (!e) {
		e = dev_destroy(ctl, name);
		close(ctl);
	}
	printf("%s\n", errname(e));
	return e ? 1 : 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmd_hold(const char *name)
{
	char path[64 + VDUSE_NAME_MAX];
	struct sigaction sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	snprintf(path, sizeof(path), "/dev/vduse/%s", name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("%s\n", errname(errno));
		return 1;
	}
	printf("held\n");
	fflush(stdout);
	while (!stop)
		pause();
	close(fd);
	return 0;
}

static int cmd_probe(const char *name)
{
	char path[64 + VDUSE_NAME_MAX];
	struct vduse_vq_info vi;
	struct pollfd p;
	__u64 feat;
	int fd, r;

	snprintf(path, sizeof(path), "/dev/vduse/%s", name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	printf("open=%s\n", errname(fd < 0 ? errno : 0));
	if (fd < 0)
		return 1;
	printf("ioctl=%s\n",
	       errname(ioctl(fd, VDUSE_DEV_GET_FEATURES, &feat) ? errno : 0));
	memset(&vi, 0, sizeof(vi));
	printf("vqinfo=%s\n",
	       errname(ioctl(fd, VDUSE_VQ_GET_INFO, &vi) ? errno : 0));
	p.fd = fd;
	p.events = POLLIN | POLLOUT;
	p.revents = 0;
	r = poll(&p, 1, 0);
	if (r < 0) {
		printf("poll=%s\n", errname(errno));
	} else {
		printf("poll=%s%s%s%s%s\n",
		       r == 0 ? "none" : "",
		       p.revents & POLLERR ? "POLLERR," : "",
		       p.revents & POLLHUP ? "POLLHUP," : "",
		       p.revents & POLLIN ? "POLLIN," : "",
		       p.revents & POLLOUT ? "POLLOUT," : "");
	}
	close(fd);
	return 0;
}

static int cmd_api(void)
{
	__u64 ver = 0;
	int ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);

	if (ctl < 0 || ioctl(ctl, VDUSE_GET_API_VERSION, &ver)) {
		printf("%s\n", errname(errno));
		return 1;
	}
	close(ctl);
	printf("%llu\n", (unsigned long long)ver);
	return 0;
}

/* attach + detach through netlink; 0 or 1 after printing what failed */
static int attach_detach(const char *name, long i)
{
	int e = vdpa_dev_add(name);

	if (e) {
		printf("# cycle %ld: vdpa dev add: %s\n", i, errname(e));
		return 1;
	}
	e = vdpa_dev_del(name);
	if (e) {
		printf("# cycle %ld: vdpa dev del: %s\n", i, errname(e));
		return 1;
	}
	return 0;
}

static int cmd_cycle(const char *name, long n, int attach)
{
	long i, failures = 0;
	int ctl, e;

	e = ctl_open(&ctl);
	if (!e && attach)
		e = nl_open();
	if (e) {
		printf("setup: %s\n", errname(e));
		return 1;
	}
	for (i = 0; i < n; i++) {
		int bad = 0;

		e = dev_create(ctl, name, 1);
		if (e) {
			printf("# cycle %ld: create: %s\n", i, errname(e));
			failures++;
			continue;
		}
		e = vduse_setup_vqs(name, 1);
		if (e) {
			printf("# cycle %ld: setup: %s\n", i, errname(e));
			bad = 1;
		}
		if (attach && !bad)
			bad = attach_detach(name, i);
		e = dev_destroy(ctl, name);
		if (e) {
			printf("# cycle %ld: destroy: %s\n", i, errname(e));
			bad = 1;
		}
		failures += bad;
		if (e)
			break;	/* the name stays taken: stop */
	}
	close(ctl);
	printf("cycles=%ld failures=%ld\n", i, failures);
	return failures || i != n ? 1 : 0;
}

static int cmd_readd(const char *name, long n)
{
	long i, failures = 0;
	int e = nl_open();

	if (e) {
		printf("setup: %s\n", errname(e));
		return 1;
	}
	for (i = 0; i < n; i++)
		failures += attach_detach(name, i);
	printf("cycles=%ld failures=%ld\n", i, failures);
	return failures ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vduse_ctl create NAME [NVQS] | destroy NAME | hold NAME |\n"
		"       probe NAME | api | cycle NAME N [attach] | readd NAME N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "api"))
		return cmd_api();
	if (argc < 3)
		usage();
	if (!strcmp(argv[1], "create"))
		return cmd_create(argv[2], argc > 3 ? strtoul(argv[3], NULL, 0) : 1);
	if (!strcmp(argv[1], "destroy"))
		return cmd_destroy(argv[2]);
	if (!strcmp(argv[1], "hold"))
		return cmd_hold(argv[2]);
	if (!strcmp(argv[1], "probe"))
		return cmd_probe(argv[2]);
	if (!strcmp(argv[1], "cycle") && argc > 3)
		return cmd_cycle(argv[2], strtol(argv[3], NULL, 0),
				 argc > 4 && !strcmp(argv[4], "attach"));
	if (!strcmp(argv[1], "readd") && argc > 3)
		return cmd_readd(argv[2], strtol(argv[3], NULL, 0));
	usage();
	return 2;
}
