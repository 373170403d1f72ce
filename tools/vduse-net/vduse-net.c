// SPDX-License-Identifier: GPL-2.0
/*
 * vduse-net: a virtio-net device in userspace, backed by a TAP interface.
 *
 * One queue pair and no control queue: queue 0 receives (TAP -> driver),
 * queue 1 transmits (driver -> TAP).  No offloads are offered, so every
 * buffer starts with a plain 12-byte struct virtio_net_hdr_v1 and carries
 * exactly one Ethernet frame.
 *
 * Threads (libvduse runs one per queue):
 * - the rx queue thread owns struct net_rxq: it pops every receive buffer
 *   the driver posts, holds them in a FIFO and fills them from the TAP fd,
 *   which it watches only while it holds at least one buffer;
 * - the tx queue thread pops transmit requests and writes them to the TAP
 *   fd, which is shared with the rx thread (one reads, the other writes);
 * - the signal thread waits for SIGTERM/SIGINT (stop the device) and
 *   SIGUSR1 (print the counters); every other thread blocks these signals.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <endian.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <linux/vduse.h>

#include "libvduse.h"

#define VERSION		"0.1"
#define RXQ		0			/* queue 1 transmits */
#define BATCH		64			/* packets per notify */
#define FRAME_MAX	65550			/* largest frame TAP hands us */
#define HDR_LEN		sizeof(struct virtio_net_hdr_v1)

_Static_assert(sizeof(struct virtio_net_hdr_v1) == 12, "virtio-net header");

/* Counters: each written by one queue thread, read by the signal thread. */
struct net_stats {
	uint64_t rx_packets, rx_bytes, rx_dropped;
	uint64_t tx_packets, tx_bytes, tx_dropped;
};

#define STAT_ADD(field, n)	__atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)
#define STAT_GET(field)		__atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Receive side, owned by the rx queue thread. */
struct net_rxq {
	struct vduse_req **held;	/* popped buffers, oldest first */
	unsigned int cap, head, count;
	bool watching;			/* EPOLLIN on the TAP fd is enabled */
	uint8_t frame[FRAME_MAX];
};

/* Transmit side, owned by the tx queue thread. */
struct net_txq {
	struct iovec iov[IOV_MAX];	/* the frame without its header */
};

struct net {
	const char *name;
	char tap[IFNAMSIZ];
	int tapfd;
	uint8_t mac[6];
	unsigned int mtu;
	bool reconnect;

	/* Guards @dev against the signal thread while it is destroyed. */
	pthread_mutex_t lock;
	struct vduse_dev *dev;

	struct net_rxq rxq;
	struct net_txq txq;
	struct net_stats stats;
};

/* ---- receive: TAP -> queue 0 ---- */

static void rxq_watch(struct vduse_vq *vq, struct net *ns, bool on)
{
	struct net_rxq *rxq = &ns->rxq;
	int ret;

	if (rxq->watching == on)
		return;
	ret = vduse_vq_watch_events(vq, ns->tapfd, on ? EPOLLIN : 0);
	if (ret < 0) {
		fprintf(stderr, "vduse-net: watch %s: %s\n", ns->tap,
			strerror(-ret));
		return;
	}
	rxq->watching = on;
}

/* Take every buffer the driver has posted; the FIFO can hold them all. */
static void rxq_refill(struct vduse_vq *vq, struct net_rxq *rxq)
{
	struct vduse_req *req;

	while (rxq->count < rxq->cap) {
		req = vduse_vq_pop(vq, 0);
		if (!req)
			break;
		rxq->held[(rxq->head + rxq->count) % rxq->cap] = req;
		rxq->count++;
	}
}

/* Put one frame into the oldest held buffer; false if it was dropped. */
static bool rxq_deliver(struct net *ns, size_t len)
{
	struct net_rxq *rxq = &ns->rxq;
	struct vduse_req *req = rxq->held[rxq->head];
	const struct iovec *in = req->iov + req->out_num;
	struct virtio_net_hdr_v1 hdr = {
		.num_buffers = htole16(1),	/* no VIRTIO_NET_F_MRG_RXBUF */
	};

	/* Too big for the driver's buffer: drop the frame, keep the buffer. */
	if (req->in_len < HDR_LEN + len) {
		STAT_ADD(ns->stats.rx_dropped, 1);
		return false;
	}
	vduse_iov_from_buf(in, req->in_num, 0, &hdr, HDR_LEN);
	vduse_iov_from_buf(in, req->in_num, HDR_LEN, rxq->frame, len);
	rxq->head = (rxq->head + 1) % rxq->cap;
	rxq->count--;
	vduse_vq_push(req, HDR_LEN + len);
	STAT_ADD(ns->stats.rx_packets, 1);
	STAT_ADD(ns->stats.rx_bytes, len);
	return true;
}

/* The TAP fd is readable: move up to BATCH frames, then notify once. */
static void rx_cb(struct vduse_vq *vq, int fd, uint32_t events, void *arg)
{
	struct net *ns = arg;
	struct net_rxq *rxq = &ns->rxq;
	unsigned int n, pushed = 0;
	ssize_t len;

	(void)events;
	for (n = 0; n < BATCH; n++) {
		if (!rxq->count)
			rxq_refill(vq, rxq);
		if (!rxq->count) {
			/* No buffer: wait for the driver's next kick. */
			rxq_watch(vq, ns, false);
			break;
		}
		len = read(fd, rxq->frame, sizeof(rxq->frame));
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && errno == EAGAIN)
			break;
		if (len <= 0) {
			fprintf(stderr, "vduse-net: read %s: %s\n", ns->tap,
				len ? strerror(errno) : "end of file");
			rxq_watch(vq, ns, false);
			break;
		}
		pushed += rxq_deliver(ns, len);
	}
	if (pushed)
		vduse_vq_notify(vq);
}

static void rx_kick(struct vduse_vq *vq, struct net *ns)
{
	rxq_refill(vq, &ns->rxq);
	if (ns->rxq.count)
		rxq_watch(vq, ns, true);
}

static void rx_start(struct vduse_vq *vq, struct net *ns)
{
	struct net_rxq *rxq = &ns->rxq;
	int ret;

	rxq->head = 0;
	rxq->count = 0;
	rxq->watching = false;
	ret = vduse_vq_watch_fd(vq, ns->tapfd, EPOLLIN, rx_cb, ns);
	if (ret < 0) {
		fprintf(stderr, "vduse-net: watch %s: %s\n", ns->tap,
			strerror(-ret));
		return;
	}
	rxq->watching = true;
}

/*
 * Finish the buffers we hold.  With a reconnect log they stay in flight in
 * the log, so a restarted daemon gets them back; otherwise they go back to
 * the driver empty (it counts a short packet and reposts them).
 */
static void rx_stop(struct vduse_vq *vq, struct net *ns)
{
	struct net_rxq *rxq = &ns->rxq;
	bool pushed = false;

	for (; rxq->count; rxq->count--) {
		struct vduse_req *req = rxq->held[rxq->head];

		rxq->head = (rxq->head + 1) % rxq->cap;
		if (ns->reconnect) {
			vduse_req_free(req);
		} else {
			vduse_vq_push(req, 0);
			pushed = true;
		}
	}
	if (pushed)
		vduse_vq_notify(vq);
	rxq->watching = false;
}

/* ---- transmit: queue 1 -> TAP ---- */

/* Write one request's frame, the readable buffers after the header. */
static bool tx_one(struct net *ns, struct vduse_req *req)
{
	struct net_txq *txq = &ns->txq;
	size_t skip = HDR_LEN, len;
	unsigned int i, cnt = 0;
	ssize_t ret;

	if (req->out_len <= HDR_LEN || req->out_num > IOV_MAX)
		return false;
	for (i = 0; i < req->out_num; i++) {
		len = req->iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		txq->iov[cnt].iov_base = (char *)req->iov[i].iov_base + skip;
		txq->iov[cnt].iov_len = len - skip;
		skip = 0;
		cnt++;
	}
	do
		ret = writev(ns->tapfd, txq->iov, cnt);
	while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return false;
	STAT_ADD(ns->stats.tx_packets, 1);
	STAT_ADD(ns->stats.tx_bytes, req->out_len - HDR_LEN);
	return true;
}

static void tx_kick(struct vduse_vq *vq, struct net *ns)
{
	struct vduse_req *req;
	unsigned int n = 0;

	while ((req = vduse_vq_pop(vq, 0))) {
		if (!tx_one(ns, req))
			STAT_ADD(ns->stats.tx_dropped, 1);
		vduse_vq_push(req, 0);
		if (++n % BATCH == 0)
			vduse_vq_notify(vq);
	}
	if (n % BATCH)
		vduse_vq_notify(vq);
}

/* ---- libvduse callbacks ---- */

static struct net *vq_net(struct vduse_vq *vq)
{
	return vduse_dev_priv(vduse_vq_dev(vq));
}

static void net_queue_start(struct vduse_vq *vq)
{
	if (vduse_vq_index(vq) == RXQ)
		rx_start(vq, vq_net(vq));
}

static void net_queue_kick(struct vduse_vq *vq)
{
	if (vduse_vq_index(vq) == RXQ)
		rx_kick(vq, vq_net(vq));
	else
		tx_kick(vq, vq_net(vq));
}

static void net_queue_stop(struct vduse_vq *vq)
{
	if (vduse_vq_index(vq) == RXQ)
		rx_stop(vq, vq_net(vq));
}

static const struct vduse_ops net_ops = {
	.queue_start	= net_queue_start,
	.queue_kick	= net_queue_kick,
	.queue_stop	= net_queue_stop,
};

/* ---- signals ---- */

static sigset_t net_signals;

static void print_stats(struct net *ns)
{
	struct net_stats *s = &ns->stats;

	fprintf(stderr,
		"vduse-net: %s: rx %llu packets %llu bytes %llu dropped, tx %llu packets %llu bytes %llu dropped\n",
		ns->name,
		(unsigned long long)STAT_GET(s->rx_packets),
		(unsigned long long)STAT_GET(s->rx_bytes),
		(unsigned long long)STAT_GET(s->rx_dropped),
		(unsigned long long)STAT_GET(s->tx_packets),
		(unsigned long long)STAT_GET(s->tx_bytes),
		(unsigned long long)STAT_GET(s->tx_dropped));
}

static void *signal_thread(void *arg)
{
	struct net *ns = arg;
	int sig;

	for (;;) {
		if (sigwait(&net_signals, &sig))
			continue;
		if (sig == SIGUSR1) {
			print_stats(ns);
			continue;
		}
		pthread_mutex_lock(&ns->lock);
		if (ns->dev)
			vduse_dev_stop(ns->dev);
		pthread_mutex_unlock(&ns->lock);
	}
	return NULL;
}

/* ---- setup and teardown ---- */

static int tap_open(struct net *ns, bool up)
{
	struct ifreq ifr = { 0 };
	int fd, sock = -1;
	bool ok;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "vduse-net: /dev/net/tun: %s%s\n", strerror(errno),
			errno == ENOENT ? " (is the tun module loaded?)" : "");
		return -1;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, ns->tap, IFNAMSIZ);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "vduse-net: TUNSETIFF %s: %s\n", ns->tap,
			strerror(errno));
		goto err;
	}
	memcpy(ns->tap, ifr.ifr_name, IFNAMSIZ);
	ns->tap[IFNAMSIZ - 1] = '\0';

	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		fprintf(stderr, "vduse-net: socket: %s\n", strerror(errno));
		goto err;
	}
	ifr.ifr_mtu = ns->mtu;
	if (ioctl(sock, SIOCSIFMTU, &ifr) < 0) {
		fprintf(stderr, "vduse-net: set mtu %u on %s: %s\n", ns->mtu,
			ns->tap, strerror(errno));
		goto err;
	}
	if (up) {
		ok = ioctl(sock, SIOCGIFFLAGS, &ifr) == 0;
		ifr.ifr_flags |= IFF_UP;
		if (!ok || ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) {
			fprintf(stderr, "vduse-net: bring %s up: %s\n",
				ns->tap, strerror(errno));
			goto err;
		}
	}
	close(sock);
	ns->tapfd = fd;
	return 0;
err:
	if (sock >= 0)
		close(sock);
	close(fd);
	return -1;
}

static int destroy_by_name(const char *name)
{
	char buf[VDUSE_NAME_MAX] = { 0 };
	int fd, ret = 0;

	fd = open("/dev/vduse/control", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	strncpy(buf, name, sizeof(buf) - 1);
	if (ioctl(fd, VDUSE_DESTROY_DEV, buf))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Remove the device after vduse_dev_run() returned.  vduse_dev_destroy()
 * frees @dev whatever happens, so retries go by name: just after "vdpa dev
 * del" the device can stay busy for a moment.  With a reconnect log, a
 * device still attached is left for the next daemon, log and all.
 */
static int net_shutdown(struct net *ns, struct vduse_dev *dev)
{
	char path[64 + VDUSE_NAME_MAX];
	int ret, tries;

	snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s", ns->name);
	if (ns->reconnect && !access(path, F_OK)) {
		vduse_dev_close(dev);
		fprintf(stderr,
			"vduse-net: %s is attached: left in place for a restart (remove it with: vdpa dev del %s)\n",
			ns->name, ns->name);
		return 0;
	}
	ret = vduse_dev_destroy(dev);
	for (tries = 0; ret == -EBUSY && tries < 10; tries++) {
		usleep(100 * 1000);
		ret = destroy_by_name(ns->name);
	}
	if (!ret)
		return 0;
	if (ret == -EBUSY)
		fprintf(stderr,
			"vduse-net: cannot destroy %s: it is still attached; run 'vdpa dev del %s' first\n",
			ns->name, ns->name);
	else
		fprintf(stderr, "vduse-net: destroy %s: %s\n", ns->name,
			strerror(-ret));
	return -1;
}

/* A locally administered unicast address from a hash of the name. */
static void default_mac(const char *name, uint8_t *mac)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	int i;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 0x100000001b3ULL;
	h ^= h >> 33;				/* spread a last-letter change */
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	mac[0] = 0x02;
	for (i = 1; i < 6; i++, h >>= 8)
		mac[i] = h;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vduse-net --name NAME [options]\n"
		"  --name NAME           device name (/dev/vduse/NAME)\n"
		"  --tap IFNAME          TAP interface (default: vdt-NAME, truncated)\n"
		"  --tap-up              bring the TAP interface up\n"
		"  --mac XX:XX:XX:XX:XX:XX  device MAC (default: derived from NAME)\n"
		"  --mtu N               MTU, 68..65535 (default 1500)\n"
		"  --queue-size N        virtqueue size, power of two (default 256)\n"
		"  --no-packed           do not offer VIRTIO_F_RING_PACKED\n"
		"  --reconnect-log PATH  inflight log, to survive a daemon restart\n"
		"  --api 0|1             highest VDUSE API version to use\n"
		"  --help, --version\n");
}

static void __attribute__((noreturn, format(printf, 1, 2)))
bad_arg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vduse-net: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vduse-net --help'.\n");
	exit(2);
}

static unsigned long parse_num(const char *opt, const char *s,
			       unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		bad_arg("%s: '%s' is not a number in %lu..%lu", opt, s, min, max);
	return v;
}

static void parse_mac(const char *s, uint8_t *mac)
{
	const char *p = s;
	int i;

	for (i = 0; i < 6; i++, p += 3) {
		if (!isxdigit((unsigned char)p[0]) ||
		    !isxdigit((unsigned char)p[1]) ||
		    p[2] != (i < 5 ? ':' : '\0'))
			bad_arg("--mac: '%s' is not XX:XX:XX:XX:XX:XX", s);
		mac[i] = strtoul((char[]){ p[0], p[1], '\0' }, NULL, 16);
	}
	if (mac[0] & 1)
		bad_arg("--mac: %s is a multicast address", s);
	if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		bad_arg("--mac: the zero address is not allowed");
}

static bool valid_ifname(const char *s)
{
	if (!*s || strlen(s) >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ')
			return false;
	return true;
}

enum { OPT_TAP_UP = 256, OPT_NO_PACKED, OPT_RECONNECT, OPT_API, OPT_QSIZE };

static const struct option long_opts[] = {
	{ "name",		required_argument, NULL, 'n' },
	{ "tap",		required_argument, NULL, 't' },
	{ "tap-up",		no_argument,	   NULL, OPT_TAP_UP },
	{ "mac",		required_argument, NULL, 'm' },
	{ "mtu",		required_argument, NULL, 'u' },
	{ "queue-size",		required_argument, NULL, OPT_QSIZE },
	{ "no-packed",		no_argument,	   NULL, OPT_NO_PACKED },
	{ "reconnect-log",	required_argument, NULL, OPT_RECONNECT },
	{ "api",		required_argument, NULL, OPT_API },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ }
};

int main(int argc, char **argv)
{
	static struct net ns = { .tapfd = -1, .mtu = 1500,
				 .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vduse_dev_params params = { .device_id = VIRTIO_ID_NET,
					   .num_queues = 2, .queue_size = 256,
					   .api_version = -1 };
	struct virtio_net_config config = { 0 };
	const char *tap = NULL;
	bool tap_up = false, packed = true, have_mac = false;
	struct vduse_dev *dev;
	pthread_t sigthread;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			ns.name = optarg;
			break;
		case 't':
			tap = optarg;
			break;
		case OPT_TAP_UP:
			tap_up = true;
			break;
		case 'm':
			parse_mac(optarg, ns.mac);
			have_mac = true;
			break;
		case 'u':
			ns.mtu = parse_num("--mtu", optarg, 68, 65535);
			break;
		case OPT_QSIZE:
			params.queue_size = parse_num("--queue-size", optarg,
						      2, 32768);
			if (params.queue_size & (params.queue_size - 1))
				bad_arg("--queue-size: %u is not a power of two",
					params.queue_size);
			break;
		case OPT_NO_PACKED:
			packed = false;
			break;
		case OPT_RECONNECT:
			params.reconnect_log = optarg;
			break;
		case OPT_API:
			params.api_version = parse_num("--api", optarg, 0, 1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vduse-net " VERSION "\n");
			return 0;
		default:
			fprintf(stderr, "Try 'vduse-net --help'.\n");
			return 2;
		}
	}
	if (optind < argc)
		bad_arg("unexpected argument '%s'", argv[optind]);
	if (!ns.name)
		bad_arg("--name is required");
	if (!*ns.name || strlen(ns.name) >= VDUSE_NAME_MAX ||
	    strchr(ns.name, '/'))
		bad_arg("--name: '%s' is not a valid device name", ns.name);
	if (tap && !valid_ifname(tap))
		bad_arg("--tap: '%s' is not a valid interface name (at most %d characters)",
			tap, IFNAMSIZ - 1);
	if (tap)
		snprintf(ns.tap, sizeof(ns.tap), "%s", tap);
	else
		snprintf(ns.tap, sizeof(ns.tap), "vdt-%.11s", ns.name);
	if (!have_mac)
		default_mac(ns.name, ns.mac);
	ns.reconnect = params.reconnect_log;

	if (tap_open(&ns, tap_up))
		return 1;
	ns.rxq.cap = params.queue_size;
	ns.rxq.held = calloc(ns.rxq.cap, sizeof(*ns.rxq.held));
	if (!ns.rxq.held) {
		fprintf(stderr, "vduse-net: %s\n", strerror(ENOMEM));
		return 1;
	}

	memcpy(config.mac, ns.mac, sizeof(config.mac));
	config.status = htole16(VIRTIO_NET_S_LINK_UP);
	config.max_virtqueue_pairs = htole16(1);
	config.mtu = htole16(ns.mtu);
	params.name = ns.name;
	params.config = &config;
	params.config_size = sizeof(config);
	params.features = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_MTU |
			  1ULL << VIRTIO_NET_F_STATUS |
			  1ULL << VIRTIO_F_VERSION_1 |
			  1ULL << VIRTIO_RING_F_EVENT_IDX |
			  1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	if (packed)
		params.features |= 1ULL << VIRTIO_F_RING_PACKED;

	/* Blocked before any library thread exists, so all inherit it. */
	sigemptyset(&net_signals);
	sigaddset(&net_signals, SIGTERM);
	sigaddset(&net_signals, SIGINT);
	sigaddset(&net_signals, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &net_signals, NULL);

	dev = vduse_dev_create(&params, &net_ops, &ns);
	if (!dev) {
		fprintf(stderr, "vduse-net: create %s: %s\n", ns.name,
			strerror(errno));
		return 1;
	}
	ns.dev = dev;
	ret = pthread_create(&sigthread, NULL, signal_thread, &ns);
	if (ret) {
		fprintf(stderr, "vduse-net: signal thread: %s\n", strerror(ret));
		vduse_dev_destroy(dev);
		return 1;
	}

	printf("vduse-net: /dev/vduse/%s ready, tap %s, mac %02x:%02x:%02x:%02x:%02x:%02x, mtu %u\n",
	       ns.name, ns.tap,
	       ns.mac[0], ns.mac[1], ns.mac[2], ns.mac[3], ns.mac[4], ns.mac[5],
	       ns.mtu);
	fflush(stdout);

	ret = vduse_dev_run(dev);
	pthread_mutex_lock(&ns.lock);
	ns.dev = NULL;
	pthread_mutex_unlock(&ns.lock);
	if (ret < 0)
		fprintf(stderr, "vduse-net: %s: %s\n", ns.name, strerror(-ret));
	if (net_shutdown(&ns, dev) || ret < 0)
		return 1;
	return 0;
}
