// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_netguard: a virtio-net device whose daemon feeds virtio_net two
 * inputs that used to take the guest down.
 *
 *   vduse_netguard --name NAME [--ring N] [--indirect] [--announce]
 *                  [--shrink N]
 *
 * It creates the net device NAME (API version 0, two queues of N entries,
 * default 256, VIRTIO_RING_F_INDIRECT_DESC only with --indirect), answers
 * every control message with success and leaves the queues alone: the test
 * attaches it with "vdpa dev add" and brings the interface up.
 *
 * --announce sets VIRTIO_NET_S_ANNOUNCE in the status field and, once the
 * driver is running, announces configuration changes every 100 ms.  The
 * bit asks the driver to acknowledge on a control queue that a VDUSE
 * device never has, and virtio_net would hit a BUG_ON.  A ring shorter
 * than MAX_SKB_FRAGS + 2 without indirect descriptors cannot hold a
 * big-packets receive buffer and makes the virtio core warn.
 *
 * --shrink N: on SIGUSR1 the daemon sets both queues' max size to N with
 * VDUSE_VQ_SETUP, which API version 0 allows at any time: after "vdpa
 * dev add" accepted the rings, before the driver binds.
 *
 * On SIGTERM or SIGINT it closes the device and destroys it (retrying
 * while the vDPA device still exists) and exits 0; 1 on any setup error.
 */
#include <linux/vduse.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int dev_fd = -1;
static volatile int driver_ok;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* VDUSE_VQ_SETUP both queues with @max entries; -1 and errno on error. */
static int setup_vqs(int max)
{
	struct vduse_vq_config vq;
	int i;

	for (i = 0; i < 2; i++) {
		memset(&vq, 0, sizeof(vq));
		vq.index = i;
		vq.max_size = max;
		if (ioctl(dev_fd, VDUSE_VQ_SETUP, &vq))
			return -1;
	}
	return 0;
}

/* Answer every control message with success; remember DRIVER_OK. */
static void *serve(void *arg)
{
	struct pollfd p = { .fd = dev_fd, .events = POLLIN };
	struct vduse_dev_response resp;
	struct vduse_dev_request req;

	(void)arg;
	for (;;) {
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (p.revents & POLLERR)
			return NULL;
		if (read(dev_fd, &req, sizeof(req)) != sizeof(req))
			continue;
		memset(&resp, 0, sizeof(resp));
		resp.request_id = req.request_id;
		resp.result = VDUSE_REQ_RESULT_OK;
		if (req.type == VDUSE_SET_STATUS)
			driver_ok = !!(req.s.status & VIRTIO_CONFIG_S_DRIVER_OK);
		if (write(dev_fd, &resp, sizeof(resp)) != sizeof(resp))
			perror("write reply");
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "ring", required_argument, NULL, 'r' },
		{ "indirect", no_argument, NULL, 'i' },
		{ "announce", no_argument, NULL, 'a' },
		{ "shrink", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};
	struct {
		struct vduse_dev_config c;
		struct virtio_net_config n;
	} cfg;
	unsigned long long api = 0;
	const char *name = NULL;
	int ring = 256, indirect = 0, announce = 0, shrink = 0;
	char path[64];
	sigset_t sigs;
	pthread_t t;
	int ctl, opt, sig, i;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': name = optarg; break;
		case 'r': ring = atoi(optarg); break;
		case 'i': indirect = 1; break;
		case 'a': announce = 1; break;
		case 's': shrink = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!name || strlen(name) >= VDUSE_NAME_MAX || ring < 1 ||
	    ring > 32768 || shrink < 0 || shrink > 32768)
		goto usage;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	ctl = open("/dev/vduse/control", O_RDWR);
	if (ctl < 0)
		die("/dev/vduse/control");
	if (ioctl(ctl, VDUSE_SET_API_VERSION, &api))
		die("VDUSE_SET_API_VERSION");
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.c.name, sizeof(cfg.c.name), "%s", name);
	cfg.c.device_id = VIRTIO_ID_NET;
	cfg.c.features = 1ULL << VIRTIO_F_VERSION_1 |
			 1ULL << VIRTIO_F_ACCESS_PLATFORM |
			 1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_MAC;
	if (indirect)
		cfg.c.features |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	cfg.c.vq_num = 2;
	cfg.c.vq_align = 4096;
	cfg.c.config_size = sizeof(cfg.n);
	cfg.n.mac[0] = 0x02;
	cfg.n.mac[5] = 0x5a;
	cfg.n.status = VIRTIO_NET_S_LINK_UP;
	if (announce)
		cfg.n.status |= VIRTIO_NET_S_ANNOUNCE;
	cfg.n.max_virtqueue_pairs = 1;
	cfg.n.mtu = 1500;
	if (ioctl(ctl, VDUSE_CREATE_DEV, &cfg))
		die("VDUSE_CREATE_DEV");
	snprintf(path, sizeof(path), "/dev/vduse/%s", name);
	dev_fd = open(path, O_RDWR);
	if (dev_fd < 0)
		die(path);
	if (setup_vqs(ring))
		die("VDUSE_VQ_SETUP");
	if (pthread_create(&t, NULL, serve, NULL))
		die("pthread_create");
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		struct timespec tick = { 0, 100 * 1000 * 1000 };

		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGUSR1 && shrink) {
			if (setup_vqs(shrink))
				perror("VDUSE_VQ_SETUP (shrink)");
			printf("shrunk to %d\n", shrink);
			fflush(stdout);
			continue;
		}
		if (sig > 0)
			break;
		/* Errors are expected before DRIVER_OK and after a reset. */
		if (announce && driver_ok)
			ioctl(dev_fd, VDUSE_DEV_INJECT_CONFIG_IRQ);
	}

	pthread_cancel(t);
	pthread_join(t, NULL);
	close(dev_fd);
	for (i = 0; i < 100; i++) {
		if (!ioctl(ctl, VDUSE_DESTROY_DEV, cfg.c.name))
			return 0;
		if (errno != EBUSY)
			break;
		usleep(100 * 1000);
	}
	die("VDUSE_DESTROY_DEV");
usage:
	fprintf(stderr,
		"usage: vduse_netguard --name NAME [--ring N] [--indirect] [--announce]\n"
		"                      [--shrink N]\n");
	return 2;
}
