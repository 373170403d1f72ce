// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_ctlbench: time the VDUSE control plane for N devices.
 *
 *   vduse_ctlbench [--devices N] [--queues Q] [--prefix P] [--vdpa-tool]
 *
 * Four phases, each timed as a whole with CLOCK_MONOTONIC:
 *
 *   create   N x (VDUSE_CREATE_DEV of a virtio-blk device on
 *            /dev/vduse/control, open /dev/vduse/NAME, VDUSE_VQ_SETUP of
 *            its Q virtqueues, close): what a daemon does before the
 *            device can be attached
 *   attach   N x "vdpa dev add name NAME mgmtdev vduse"
 *   detach   N x "vdpa dev del NAME"
 *   destroy  N x VDUSE_DESTROY_DEV
 *
 * attach and detach send the vDPA generic netlink messages that iproute2's
 * vdpa tool sends, from this process, so that the time is the kernel's and
 * not that of starting a program N times (which dominates under TCG);
 * --vdpa-tool runs "vdpa dev add/del" instead.  No daemon serves the
 * devices, so vDPA driver autoprobe is turned off while they are attached
 * (no driver binds, no message is sent to userspace) and restored on exit.
 *
 * Output: one JSON object on stdout,
 *   {"devices":N,"queues":Q,"create_ms":..,"attach_ms":..,
 *    "detach_ms":..,"destroy_ms":..}
 * and a readable summary on stderr.  Exit status 0 on success, 1 when a
 * step failed (every device created so far is detached and destroyed
 * first), 2 on bad usage.
 */
#include <linux/vduse.h>
#include <linux/vdpa.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vdpa_nl.h"
#include "vduse_vqs.h"

#define CTL_PATH	"/dev/vduse/control"
#define AUTOPROBE	"/sys/bus/vdpa/drivers_autoprobe"

static int ndev = 100;
static unsigned int nvqs = 1;
static const char *prefix = "bench";
static int use_tool;

static int ctl = -1;
static char **names;
static char *created, *attached;
static char autoprobe_saved = '1';

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------ */
/* /dev/vduse/control                                                   */
/* ------------------------------------------------------------------ */

static int dev_create(const char *name)
{
	struct {
		struct vduse_dev_config hdr;
		struct virtio_blk_config blk;
	} c;

	memset(&c, 0, sizeof(c));
	snprintf(c.hdr.name, sizeof(c.hdr.name), "%s", name);
	c.hdr.device_id = VIRTIO_ID_BLOCK;
	c.hdr.features = 1ULL << VIRTIO_F_VERSION_1 |
			 1ULL << VIRTIO_F_ACCESS_PLATFORM |
			 1ULL << VIRTIO_BLK_F_MQ;
	c.hdr.vq_num = nvqs;
	c.hdr.vq_align = 4096;
	c.hdr.config_size = sizeof(c.blk);
	c.blk.capacity = 2048;		/* 1 MiB */
	c.blk.num_queues = nvqs;
	return ioctl(ctl, VDUSE_CREATE_DEV, &c) ? errno : 0;
}

static int dev_destroy(const char *name)
{
	char buf[VDUSE_NAME_MAX];
	int tries;

	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", name);
	/* The node may still be held for a moment after the close. */
	for (tries = 0; tries < 1000; tries++) {
		if (!ioctl(ctl, VDUSE_DESTROY_DEV, buf))
			return 0;
		if (errno != EBUSY)
			return errno;
		usleep(1000);
	}
	return EBUSY;
}

/* ------------------------------------------------------------------ */
/* vDPA generic netlink (what "vdpa dev add/del" sends)                 */
/* ------------------------------------------------------------------ */

/* One socket: the benchmark runs in one thread. */
static struct vdpa_nl nl = { .fd = -1 };

/* Run "vdpa dev ARGS...": 0 or EIO. */
static int run_vdpa(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return errno;
	if (pid == 0) {
		execvp("vdpa", argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : EIO;
}

static int vdpa_dev_add(const char *name)
{
	if (use_tool) {
		char *argv[] = { "vdpa", "dev", "add", "name", (char *)name,
				 "mgmtdev", "vduse", NULL };
		return run_vdpa(argv);
	}
	return vdpa_nl_dev_add(&nl, name);
}

static int vdpa_dev_del(const char *name)
{
	if (use_tool) {
		char *argv[] = { "vdpa", "dev", "del", (char *)name, NULL };
		return run_vdpa(argv);
	}
	return vdpa_nl_dev_del(&nl, name);
}

/* ------------------------------------------------------------------ */

static int autoprobe(char v, char *old)
{
	int fd = open(AUTOPROBE, O_RDWR | O_CLOEXEC);
	char c;

	if (fd < 0)
		return errno;
	if (old && read(fd, &c, 1) == 1)
		*old = c;
	if (pwrite(fd, &v, 1, 0) != 1) {
		int e = errno;

		close(fd);
		return e;
	}
	close(fd);
	return 0;
}

/* Undo whatever is left, quietly. */
static void cleanup(void)
{
	int i;

	for (i = 0; i < ndev; i++)
		if (attached[i] && !vdpa_dev_del(names[i]))
			attached[i] = 0;
	for (i = 0; i < ndev; i++)
		if (created[i] && !dev_destroy(names[i]))
			created[i] = 0;
	autoprobe(autoprobe_saved, NULL);
}

static int fail(const char *what, const char *name, int e)
{
	fprintf(stderr, "vduse_ctlbench: %s %s: %s\n", what, name, strerror(e));
	cleanup();
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: vduse_ctlbench [--devices N] [--queues Q] [--prefix P] [--vdpa-tool]\n"
"Create N VDUSE block devices (default 100) with Q virtqueues (default 1),\n"
"attach them to the vDPA bus, detach and destroy them; print the time of\n"
"each phase as JSON.  Devices are named P0..P(N-1) (default prefix bench).\n"
"--vdpa-tool runs iproute2's vdpa for attach/detach instead of sending\n"
"its netlink messages directly.  Needs root and a loaded vduse module.\n");
}

int main(int argc, char **argv)
{
	double t0, t[4];
	__u64 ver = VDUSE_API_VERSION;
	int i, e;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--devices") && i + 1 < argc) {
			ndev = atoi(argv[++i]);
		} else if (!strcmp(a, "--queues") && i + 1 < argc) {
			nvqs = atoi(argv[++i]);
		} else if (!strcmp(a, "--prefix") && i + 1 < argc) {
			prefix = argv[++i];
		} else if (!strcmp(a, "--vdpa-tool")) {
			use_tool = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (ndev < 1 || ndev > 100000 || nvqs < 1 || nvqs > 64 ||
	    strlen(prefix) > 200) {
		usage(stderr);
		return 2;
	}

	names = calloc(ndev, sizeof(*names));
	created = calloc(ndev, 1);
	attached = calloc(ndev, 1);
	if (!names || !created || !attached)
		return 1;
	for (i = 0; i < ndev; i++)
		if (asprintf(&names[i], "%s%d", prefix, i) < 0)
			return 1;

	ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		fprintf(stderr, "vduse_ctlbench: %s: %s\n", CTL_PATH, strerror(errno));
		return 1;
	}
	if (ioctl(ctl, VDUSE_SET_API_VERSION, &ver)) {
		fprintf(stderr, "vduse_ctlbench: VDUSE_SET_API_VERSION: %s\n",
			strerror(errno));
		return 1;
	}
	if (!use_tool && (e = vdpa_nl_open(&nl))) {
		fprintf(stderr, "vduse_ctlbench: vdpa netlink family: %s\n",
			strerror(e));
		return 1;
	}
	e = autoprobe('0', &autoprobe_saved);
	if (e) {
		fprintf(stderr, "vduse_ctlbench: %s: %s\n", AUTOPROBE, strerror(e));
		return 1;
	}

	t0 = now_ms();
	for (i = 0; i < ndev; i++) {
		e = dev_create(names[i]);
		if (e)
			return fail("VDUSE_CREATE_DEV", names[i], e);
		created[i] = 1;
		e = vduse_setup_vqs(names[i], nvqs);
		if (e)
			return fail("VDUSE_VQ_SETUP", names[i], e);
	}
	t[0] = now_ms() - t0;

	t0 = now_ms();
	for (i = 0; i < ndev; i++) {
		e = vdpa_dev_add(names[i]);
		if (e)
			return fail("vdpa dev add", names[i], e);
		attached[i] = 1;
	}
	t[1] = now_ms() - t0;

	t0 = now_ms();
	for (i = 0; i < ndev; i++) {
		e = vdpa_dev_del(names[i]);
		if (e)
			return fail("vdpa dev del", names[i], e);
		attached[i] = 0;
	}
	t[2] = now_ms() - t0;

	t0 = now_ms();
	for (i = 0; i < ndev; i++) {
		e = dev_destroy(names[i]);
		if (e)
			return fail("VDUSE_DESTROY_DEV", names[i], e);
		created[i] = 0;
	}
	t[3] = now_ms() - t0;

	autoprobe(autoprobe_saved, NULL);
	fprintf(stderr, "vduse_ctlbench: %d devices, %u queue%s: create %.1f ms, "
		"attach %.1f ms, detach %.1f ms, destroy %.1f ms%s\n",
		ndev, nvqs, nvqs == 1 ? "" : "s", t[0], t[1], t[2], t[3],
		use_tool ? " (vdpa tool)" : "");
	printf("{\"devices\":%d,\"queues\":%u,\"vdpa_tool\":%s,"
	       "\"create_ms\":%.3f,\"attach_ms\":%.3f,\"detach_ms\":%.3f,"
	       "\"destroy_ms\":%.3f}\n", ndev, nvqs, use_tool ? "true" : "false",
	       t[0], t[1], t[2], t[3]);
	return 0;
}
