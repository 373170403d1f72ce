// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_races: races against the VDUSE module, one mode per race, from
 * several threads for many iterations (issue 7).
 *
 *   vduse_races MODE --name NAME [--iterations N] [--seconds S]
 *               [--threads T] [--seed S] [--hang S] [--timeout S]
 *               [-- DAEMON-ARGV...]
 *
 * A run ends after N iterations (what one iteration is depends on the
 * mode) or after S seconds, whichever comes first; without either, the
 * mode's default count.  Every system call the threads make is counted
 * by operation and errno; an errno outside the operation's allowed set
 * fails the run.  The run also fails when nothing made progress for
 * --hang seconds (default 120: the program then prints what it has and
 * exits without waiting for the stuck threads), when the process has more
 * file descriptors at the end than at the start, or when anything of the
 * device is left (/dev/vduse/NAME, /sys/class/vduse/NAME,
 * /sys/bus/vdpa/devices/NAME).  Last line:
 *   ok - MODE: N iterations, op{errno=count ...} ...
 * or "not ok - MODE: ..." and exit status 1.
 *
 * Modes:
 *   open-destroy    one thread creates NAME and destroys it again (EBUSY
 *                   while the node is open: retried) while T-1 threads
 *                   open /dev/vduse/NAME, make an ioctl and close it; one
 *                   iteration is one create/destroy cycle
 *   create-destroy  T threads create and destroy NAME at random, and now
 *                   and then hold its node open; one iteration is one
 *                   call; at the end no device is left
 *   vdpa            the block daemon DAEMON-ARGV (tools/vduse-blk with a
 *                   reconnect log) serves NAME; one thread attaches it
 *                   to virtio_vdpa through netlink and detaches it again
 *                   (an iteration), T-2 threads do O_DIRECT I/O on its
 *                   disk whenever there is one, and one thread kills the
 *                   daemon with SIGKILL and starts it again (it reopens
 *                   /dev/vduse/NAME and takes the device back).  I/O
 *                   may fail only while "vdpa dev add" or "del" runs
 *                   (the disk comes or goes), never because of a
 *                   restart.  At the
 *                   end the device must attach, carry a write and read
 *                   it back, and go away with the daemon's SIGTERM
 *   msg-timeout     an iteration: NAME is created with msg_timeout set to
 *                   --timeout (default 1) seconds, attached to vhost_vdpa;
 *                   one thread opens its vhost-vdpa node and makes the
 *                   calls that wait for the daemon (open, status changes,
 *                   close) while the daemon thread answers one of
 *                   those messages late, the others at once: every other
 *                   iteration within 150 ms of the timeout (either side),
 *                   else 300 to 600 ms after it.  A late reply must find
 *                   no request (ENOENT); a device that timed out must
 *                   report EPERM and still detach and go away; a run of
 *                   two or more iterations where no device timed out
 *                   fails (the timeout path was never taken)
 *   sysfs           one thread attaches and detaches NAME (no driver
 *                   bound; every 8th cycle it destroys and recreates the
 *                   device) while T-1 threads write bounce_size,
 *                   msg_timeout and vqN/irq_cb_affinity and read them
 *                   back; one iteration is one attach/detach cycle
 *   unload          a device NAME-hold exists throughout, T-1 threads
 *                   create, open, attach, detach and destroy devices
 *                   NAME-<thread>, and one thread tries to unload the
 *                   module: every try must fail with EWOULDBLOCK or
 *                   EBUSY and the held device must keep working; one
 *                   iteration is one unload try
 *
 * msg-timeout and sysfs turn vDPA driver autoprobe off while they run
 * (and restore it); vdpa binds with driver_override the same way.
 */
#include <linux/vduse.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "vdpa_nl.h"

#define CTL_PATH	"/dev/vduse/control"
#define AUTOPROBE	"/sys/bus/vdpa/drivers_autoprobe"
#define MAX_THREADS	64
#define MAXE		200		/* errno slots; the last one is "short" */
#define E_SHORT		(MAXE - 1)	/* a read or write moved fewer bytes */
#define MAX_OPS		16
#define MAX_ALLOWED	8
#define IO_SIZE		4096
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define IO_SPAN		(1024 * 1024)	/* the I/O stays in the first MiB */

/* ------------------------------------------------------------------ */
/* Options, stop condition, progress                                  */

static const char *mode;
static const char *name;
static long opt_iters;
static double opt_secs;
static int opt_threads = 4;
static unsigned int opt_seed;
static int opt_hang = 120;
static int opt_timeout = 1;
static char **daemon_argv;

static long iters;			/* iterations done (atomic) */
static long progress;			/* calls made (atomic) */
static int stop;			/* (atomic) */
static double t_start;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool stopping(void)
{
	return __atomic_load_n(&stop, __ATOMIC_RELAXED);
}

static void set_stop(void)
{
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

/* Count one iteration; true when the run is over. */
static bool iter_done(void)
{
	long n = __atomic_add_fetch(&iters, 1, __ATOMIC_RELAXED);

	if ((opt_iters && n >= opt_iters) ||
	    (opt_secs && now() - t_start >= opt_secs))
		set_stop();
	return stopping();
}

/* For loops that count no iteration of their own. */
static bool time_up(void)
{
	if (opt_secs && now() - t_start >= opt_secs)
		set_stop();
	return stopping();
}

static unsigned int rnd(unsigned int *seed, unsigned int n)
{
	return n ? rand_r(seed) % n : 0;
}

static void sleep_us(unsigned int us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void sleep_ms(unsigned int ms)
{
	sleep_us(ms * 1000);
}

/* ------------------------------------------------------------------ */
/* Errno histograms                                                   */

struct op {
	const char *name;
	int allowed[MAX_ALLOWED];	/* ends at the first -1; 0 is success */
	unsigned long cnt[MAXE];
	unsigned char told[MAXE];
	long slowest_ms;		/* of the calls timed with rec_t() */
};

static struct op ops[MAX_OPS];
static int nops;
static long unexpected;			/* (atomic) */
static long problems;			/* other failures (atomic) */

/* Declare an operation: its name and the errnos it may end with. */
static struct op *op_new(const char *n, ...)
{
	struct op *o = &ops[nops++];
	va_list ap;
	int i = 0, e;

	o->name = n;
	va_start(ap, n);
	while ((e = va_arg(ap, int)) >= 0 && i < MAX_ALLOWED - 1)
		o->allowed[i++] = e;
	va_end(ap);
	o->allowed[i] = -1;
	return o;
}

static const char *slot_name(int i)
{
	return i == E_SHORT ? "short" : errname(i);
}

/* Record that o ended with errno e (0: success); false if unexpected. */
static bool rec(struct op *o, int e)
{
	int i, slot = e;

	if (e < 0 || e > E_SHORT)
		slot = E_SHORT - 1;	/* out of range: counted as "E?" */

	__atomic_add_fetch(&o->cnt[slot], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&progress, 1, __ATOMIC_RELAXED);
	for (i = 0; o->allowed[i] >= 0; i++)
		if (o->allowed[i] == e)
			return true;
	__atomic_add_fetch(&unexpected, 1, __ATOMIC_RELAXED);
	if (!__atomic_exchange_n(&o->told[slot], 1, __ATOMIC_RELAXED))
		note("unexpected: %s ended with %s (errno %d)", o->name,
		     slot_name(slot), e);
	return false;
}

/* rec() for a call that started at t0: also keeps the slowest time. */
static bool rec_t(struct op *o, int e, double t0)
{
	long ms = (now() - t0) * 1000, old;

	old = __atomic_load_n(&o->slowest_ms, __ATOMIC_RELAXED);
	while (ms > old &&
	       !__atomic_compare_exchange_n(&o->slowest_ms, &old, ms, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return rec(o, e);
}

/* Something that is not an errno went wrong. */
static void __attribute__((format(printf, 1, 2)))
oops(const char *fmt, ...)
{
	va_list ap;

	__atomic_add_fetch(&problems, 1, __ATOMIC_RELAXED);
	printf("# problem: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void print_hist(FILE *f)
{
	int i, j;

	for (i = 0; i < nops; i++) {
		bool first = true;

		fprintf(f, " %s{", ops[i].name);
		for (j = 0; j < MAXE; j++) {
			unsigned long c = __atomic_load_n(&ops[i].cnt[j],
							  __ATOMIC_RELAXED);
			if (!c)
				continue;
			fprintf(f, "%s%s=%lu", first ? "" : " ", slot_name(j), c);
			first = false;
		}
		if (ops[i].slowest_ms)
			fprintf(f, " slowest=%ldms", ops[i].slowest_ms);
		fprintf(f, "}");
	}
}

/* Print the result line; the exit status. */
static int report(const char *extra)
{
	bool bad = unexpected || problems;

	printf("%s - %s: %ld iterations,", bad ? "not ok" : "ok", mode, iters);
	print_hist(stdout);
	if (bad)
		printf(" (%ld unexpected errnos, %ld other problems)",
		       unexpected, problems);
	if (extra)
		printf(" %s", extra);
	printf("\n");
	fflush(stdout);
	return bad ? 1 : 0;
}

/* The watchdog: no call made for opt_hang seconds is a hang. */
static void *watchdog(void *arg)
{
	long last = -1;
	double since = now();

	(void)arg;
	for (;;) {
		long p = __atomic_load_n(&progress, __ATOMIC_RELAXED);

		sleep(1);
		if (p != last) {
			last = p;
			since = now();
		} else if (now() - since >= opt_hang) {
			printf("not ok - %s: hung: no call returned for %d s after %ld iterations;",
			       mode, opt_hang, iters);
			print_hist(stdout);
			printf("\n");
			fflush(stdout);
			_exit(124);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* VDUSE and sysfs helpers                                            */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own */
}

static int ctl_open(void)
{
	__u64 ver = VDUSE_API_VERSION;
	int fd = open(CTL_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, VDUSE_SET_API_VERSION, &ver)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* A block device with nvqs queues and capacity sectors: 0 or errno. */
static int dev_create(int ctl, const char *n, unsigned int nvqs,
		      __u64 capacity)
{
	struct {
		struct vduse_dev_config hdr;
		struct virtio_blk_config blk;
	} c;

	memset(&c, 0, sizeof(c));
	snprintf(c.hdr.name, sizeof(c.hdr.name), "%s", n);
	c.hdr.device_id = VIRTIO_ID_BLOCK;
	c.hdr.features = 1ULL << VIRTIO_F_VERSION_1 |
			 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	c.hdr.vq_num = nvqs;
	c.hdr.vq_align = 4096;
	c.hdr.config_size = sizeof(c.blk);
	c.blk.capacity = capacity;
	return ioctl(ctl, VDUSE_CREATE_DEV, &c) ? errno : 0;
}

/* VDUSE_VQ_SETUP of every queue through fd: 0 or errno. */
static int vqs_setup(int fd, unsigned int nvqs)
{
	struct vduse_vq_config vq;
	unsigned int i;

	for (i = 0; i < nvqs; i++) {
		memset(&vq, 0, sizeof(vq));
		vq.index = i;
		vq.max_size = 256;
		if (ioctl(fd, VDUSE_VQ_SETUP, &vq))
			return errno;
	}
	return 0;
}

static int node_open(const char *n, int flags)
{
	char path[64 + VDUSE_NAME_MAX];

	snprintf(path, sizeof(path), "/dev/vduse/%s", n);
	return open(path, flags | O_CLOEXEC);
}

static int dev_destroy(int ctl, const char *n)
{
	char buf[VDUSE_NAME_MAX];

	/* A full 256-byte buffer: the stock module copies that much. */
	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", n);
	return ioctl(ctl, VDUSE_DESTROY_DEV, buf) ? errno : 0;
}

/* Write str to path: 0 or errno. */
static int sysfs_write(const char *path, const char *str)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e = 0;
	ssize_t n;

	if (fd < 0)
		return errno;
	n = write(fd, str, strlen(str));
	if (n < 0)
		e = errno;
	else if ((size_t)n != strlen(str))
		e = E_SHORT;
	close(fd);
	return e;
}

/* Read path into buf (NUL-terminated): 0 or errno. */
static int sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;
	ssize_t n;

	if (fd < 0)
		return errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		e = errno;
	else
		buf[n] = 0;
	close(fd);
	return e;
}

static bool exists(const char *fmt, const char *n)
{
	char path[512];

	snprintf(path, sizeof(path), fmt, n);
	return !access(path, F_OK);
}

/* Nothing of device n is left; reports what is. */
static bool dev_gone(const char *n)
{
	static const char *const where[] = {
		"/dev/vduse/%s", "/sys/class/vduse/%s",
		"/sys/bus/vdpa/devices/%s",
	};
	bool gone = true;
	unsigned int i;
	char path[512];

	for (i = 0; i < ARRAY_SIZE(where); i++) {
		if (exists(where[i], n)) {
			snprintf(path, sizeof(path), where[i], n);
			oops("%s is left", path);
			gone = false;
		}
	}
	return gone;
}

static char autoprobe_saved[8];

static void autoprobe_off(void)
{
	if (sysfs_read(AUTOPROBE, autoprobe_saved, sizeof(autoprobe_saved)) ||
	    sysfs_write(AUTOPROBE, "0"))
		oops("cannot turn vDPA driver autoprobe off");
}

static void autoprobe_restore(void)
{
	if (autoprobe_saved[0] && sysfs_write(AUTOPROBE, autoprobe_saved))
		oops("cannot restore vDPA driver autoprobe");
}

/* Bind the attached vDPA device n to drv: 0 or errno. */
static int vdpa_bind(const char *n, const char *drv)
{
	char path[512];
	int e;

	snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s/driver_override", n);
	e = sysfs_write(path, drv);
	if (!e)
		e = sysfs_write("/sys/bus/vdpa/drivers_probe", n);
	return e;
}

/* The first match of the glob pattern pat (with %s = n) in out. */
static bool find_path(const char *pat, const char *n, char *out, size_t len)
{
	char p[512];
	glob_t g;
	bool found = false;

	snprintf(p, sizeof(p), pat, n);
	if (!glob(p, 0, NULL, &g) && g.gl_pathc) {
		const char *base = strrchr(g.gl_pathv[0], '/');

		snprintf(out, len, "/dev/%s", base ? base + 1 : g.gl_pathv[0]);
		found = true;
	}
	globfree(&g);
	return found;
}

static int nl_open_checked(struct vdpa_nl *nl)
{
	int e = vdpa_nl_open(nl);

	if (e)
		oops("vDPA netlink: %s", errname(e));
	return e;
}

/* ------------------------------------------------------------------ */
/* open-destroy                                                       */

static struct op *o_create, *o_destroy, *o_open, *o_ioctl, *o_close;

static void *od_opener(void *arg)
{
	unsigned int seed = opt_seed + (unsigned long)arg;

	while (!stopping()) {
		__u64 f;
		int fd = node_open(name, O_RDWR);

		if (!rec(o_open, fd < 0 ? errno : 0) || fd < 0) {
			sleep_us(rnd(&seed, 50));
			continue;
		}
		rec(o_ioctl, ioctl(fd, VDUSE_DEV_GET_FEATURES, &f) ? errno : 0);
		rec(o_close, close(fd) ? errno : 0);
		/* Short pauses, not sched_yield(): leave the destroyer a gap. */
		sleep_us(rnd(&seed, 200));
	}
	return NULL;
}

static void run_open_destroy(int ctl)
{
	pthread_t t[MAX_THREADS];
	long i;
	int e;

	o_create = op_new("create", 0, -1);
	o_destroy = op_new("destroy", 0, EBUSY, -1);
	o_open = op_new("open", 0, ENOENT, ENODEV, ENXIO, EBUSY, -1);
	o_ioctl = op_new("ioctl", 0, -1);
	o_close = op_new("close", 0, -1);

	for (i = 0; i < opt_threads - 1; i++)
		pthread_create(&t[i], NULL, od_opener, (void *)i);
	unsigned int seed = opt_seed;

	do {
		if (!rec(o_create, dev_create(ctl, name, 1, 2048)))
			break;
		while ((e = dev_destroy(ctl, name)) == EBUSY) {
			rec(o_destroy, e);
			sleep_us(rnd(&seed, 100));
		}
		if (!rec(o_destroy, e))
			break;
	} while (!iter_done());
	set_stop();
	for (i = 0; i < opt_threads - 1; i++)
		pthread_join(t[i], NULL);
}

/* ------------------------------------------------------------------ */
/* create-destroy                                                     */

static void *cd_thread(void *arg)
{
	unsigned int seed = opt_seed + (unsigned long)arg;
	int ctl = ctl_open();

	if (ctl < 0) {
		oops("open %s: %s", CTL_PATH, errname(-ctl));
		set_stop();
		return NULL;
	}
	do {
		unsigned int r = rnd(&seed, 16);

		if (r < 7) {
			rec(o_create, dev_create(ctl, name, 1, 2048));
		} else if (r < 15) {
			rec(o_destroy, dev_destroy(ctl, name));
		} else {
			int fd = node_open(name, O_RDWR);

			if (rec(o_open, fd < 0 ? errno : 0) && fd >= 0) {
				sleep_us(rnd(&seed, 100));
				rec(o_close, close(fd) ? errno : 0);
			}
		}
	} while (!iter_done());
	close(ctl);
	return NULL;
}

static void run_create_destroy(int ctl)
{
	pthread_t t[MAX_THREADS];
	long i;

	o_create = op_new("create", 0, EEXIST, -1);
	o_destroy = op_new("destroy", 0, EINVAL, ENOENT, EBUSY, -1);
	o_open = op_new("open", 0, ENOENT, ENODEV, ENXIO, EBUSY, -1);
	o_close = op_new("close", 0, -1);
	for (i = 0; i < opt_threads; i++)
		pthread_create(&t[i], NULL, cd_thread, (void *)i);
	for (i = 0; i < opt_threads; i++)
		pthread_join(t[i], NULL);
	/* Whoever was last, the device may exist: remove it. */
	rec(op_new("final destroy", 0, EINVAL, -1), dev_destroy(ctl, name));
}

/* ------------------------------------------------------------------ */
/* vdpa: attach/detach against I/O and daemon restarts                */

static struct op *o_add, *o_bind, *o_del, *o_io, *o_restart;
static struct op *o_open_del, *o_io_del;
static pid_t daemon_pid;
/*
 * Odd while "vdpa dev add" and the probe or "vdpa dev del" run (the disk
 * and its node come and go), bumped before and after each.  An I/O that
 * saw one even value from before its open to after its completion ran on
 * a disk that stayed: it must succeed, daemon restarts or not.
 */
static unsigned long del_gen;
static pthread_mutex_t daemon_lock = PTHREAD_MUTEX_INITIALIZER;

/* The daemon pid has /dev/vduse/NAME open. */
static bool daemon_serving(pid_t pid)
{
	char dir[64], link[PATH_MAX], want[64 + VDUSE_NAME_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	snprintf(want, sizeof(want), "/dev/vduse/%s", name);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char p[PATH_MAX];
		ssize_t n;

		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		n = readlink(p, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			found = !strcmp(link, want);
		}
	}
	closedir(d);
	return found;
}

/* Start the daemon and wait until it serves the device: 0 or errno. */
static int daemon_start(void)
{
	double t0 = now();
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return errno;
	if (!pid) {
		int fd = open("/tmp/vduse_races-daemon.log",
			      O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(daemon_argv[0], daemon_argv);
		_exit(127);
	}
	daemon_pid = pid;
	while (now() - t0 < 60) {
		if (daemon_serving(pid))
			return 0;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			daemon_pid = 0;
			oops("the daemon exited with status %#x before serving", st);
			return ECHILD;
		}
		sleep_ms(10);
	}
	return ETIMEDOUT;
}

/* Stop it with sig; its wait status or -1. */
static int daemon_stop(int sig)
{
	int st;

	if (!daemon_pid)
		return -1;
	kill(daemon_pid, sig);
	if (waitpid(daemon_pid, &st, 0) != daemon_pid)
		st = -1;
	daemon_pid = 0;
	return st;
}

static void *vd_restarter(void *arg)
{
	unsigned int seed = opt_seed + (unsigned long)arg;
	double t0;

	while (!stopping()) {
		sleep_ms(50 + rnd(&seed, 450));
		if (stopping())
			break;
		pthread_mutex_lock(&daemon_lock);
		daemon_stop(SIGKILL);
		t0 = now();
		if (!rec_t(o_restart, daemon_start(), t0))
			set_stop();
		pthread_mutex_unlock(&daemon_lock);
	}
	return NULL;
}

/* One I/O of IO_SIZE at a random offset of the device's disk, if any. */
static void vd_io_once(unsigned int *seed, void *buf)
{
	char dev[128];
	off_t off = (off_t)rnd(seed, IO_SPAN / IO_SIZE) * IO_SIZE;
	bool wr = rnd(seed, 2);
	unsigned long g0, g1;
	int fd, e = 0, eo;
	double t0;
	bool steady;
	ssize_t n;

	g0 = __atomic_load_n(&del_gen, __ATOMIC_ACQUIRE);
	if (!find_path("/sys/bus/vdpa/devices/%s/virtio*/block/*", name, dev,
		       sizeof(dev))) {
		sleep_ms(5);
		return;
	}
	fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	eo = fd < 0 ? errno : 0;
	t0 = now();
	if (fd >= 0) {
		n = wr ? pwrite(fd, buf, IO_SIZE, off) :
			 pread(fd, buf, IO_SIZE, off);
		e = n < 0 ? errno : (n == IO_SIZE ? 0 : E_SHORT);
	}
	g1 = __atomic_load_n(&del_gen, __ATOMIC_ACQUIRE);
	steady = g0 == g1 && !(g0 & 1);
	rec(steady ? o_open : o_open_del, eo);
	if (fd >= 0) {
		rec_t(steady ? o_io : o_io_del, e, t0);
		rec(o_close, close(fd) ? errno : 0);
	}
}

static void *vd_io(void *arg)
{
	unsigned int seed = opt_seed + (unsigned long)arg;
	void *buf;

	if (posix_memalign(&buf, IO_SIZE, IO_SIZE))
		return NULL;
	memset(buf, 0x5a, IO_SIZE);
	while (!stopping())
		vd_io_once(&seed, buf);
	free(buf);
	return NULL;
}

/* Attach n and bind it to drv. */
static int attach_bind(struct vdpa_nl *nl, const char *n, const char *drv,
		       struct op *add, struct op *bind)
{
	double t0 = now();

	if (!rec_t(add, vdpa_nl_dev_add(nl, n), t0))
		return -1;
	t0 = now();
	return rec_t(bind, vdpa_bind(n, drv), t0) ? 0 : -1;
}

/* After the race: attach, write and read back, detach. */
static void vd_final(struct vdpa_nl *nl)
{
	struct op *add = op_new("final add", 0, -1);
	struct op *bind = op_new("final bind", 0, -1);
	struct op *io = op_new("final io", 0, -1);
	struct op *del = op_new("final del", 0, -1);
	char dev[128];
	bool found = false;
	void *a, *b;
	double t0;
	int fd, e;

	if (posix_memalign(&a, IO_SIZE, IO_SIZE) ||
	    posix_memalign(&b, IO_SIZE, IO_SIZE))
		return;
	if (attach_bind(nl, name, "virtio_vdpa", add, bind))
		goto out;
	for (t0 = now(); !found && now() - t0 < 30; sleep_ms(20))
		found = find_path("/sys/bus/vdpa/devices/%s/virtio*/block/*",
				  name, dev, sizeof(dev));
	fd = found ? open(dev, O_RDWR | O_DIRECT | O_CLOEXEC) : -1;
	if (!found)
		errno = ENODEV;
	if (fd < 0) {
		rec(io, errno);
	} else {
		memset(a, 0xa5, IO_SIZE);
		snprintf(a, 64, "vduse_races %u", opt_seed);
		e = pwrite(fd, a, IO_SIZE, 0) == IO_SIZE &&
		    pread(fd, b, IO_SIZE, 0) == IO_SIZE ? 0 : (errno ? errno : E_SHORT);
		if (!e && memcmp(a, b, IO_SIZE)) {
			oops("the final write did not read back");
			e = EILSEQ;
		}
		rec(io, e);
		close(fd);
	}
	rec(del, vdpa_nl_dev_del(nl, name));
out:
	free(a);
	free(b);
}

static void run_vdpa(void)
{
	struct vdpa_nl nl;
	pthread_t t[MAX_THREADS], rs;
	unsigned int seed = opt_seed;
	long i, nio = opt_threads > 2 ? opt_threads - 2 : 1;
	double t0;
	int st, e;

	o_add = op_new("add", 0, -1);
	o_bind = op_new("bind", 0, -1);
	o_del = op_new("del", 0, -1);
	/* On a disk that stays, whatever the daemon does. */
	o_open = op_new("open", 0, -1);
	o_io = op_new("io", 0, -1);
	/* On a disk that may come or go meanwhile. */
	o_open_del = op_new("open (add/del)", 0, ENOENT, ENXIO, ENODEV, -1);
	/*
	 * A disk being deleted gets capacity 0 (blk_mark_disk_dead()): a
	 * write then fails with ENOSPC and a read comes back short (seen in
	 * a minute of this race with our module on 7.3).
	 */
	o_io_del = op_new("io (add/del)", 0, EIO, ENXIO, ENODEV, ENOSPC,
			  E_SHORT, -1);
	o_close = op_new("close", 0, -1);
	o_restart = op_new("restart", 0, -1);
	if (!daemon_argv) {
		oops("vdpa needs a daemon command line after --");
		return;
	}
	if (nl_open_checked(&nl))
		return;
	autoprobe_off();
	if (!rec(o_restart, daemon_start()))
		goto out;
	pthread_create(&rs, NULL, vd_restarter, (void *)1000);
	for (i = 0; i < nio; i++)
		pthread_create(&t[i], NULL, vd_io, (void *)i);
	do {
		__atomic_add_fetch(&del_gen, 1, __ATOMIC_ACQ_REL);
		e = attach_bind(&nl, name, "virtio_vdpa", o_add, o_bind);
		__atomic_add_fetch(&del_gen, 1, __ATOMIC_ACQ_REL);
		if (e && !exists("/sys/bus/vdpa/devices/%s", name))
			break;
		sleep_ms(200 + rnd(&seed, 500));	/* I/O on a disk that stays */
		__atomic_add_fetch(&del_gen, 1, __ATOMIC_ACQ_REL);
		t0 = now();
		e = vdpa_nl_dev_del(&nl, name);
		__atomic_add_fetch(&del_gen, 1, __ATOMIC_ACQ_REL);
		if (!rec_t(o_del, e, t0))
			break;
	} while (!iter_done());
	set_stop();
	for (i = 0; i < nio; i++)
		pthread_join(t[i], NULL);
	pthread_join(rs, NULL);
	if (!daemon_pid && !rec(o_restart, daemon_start()))
		goto out;
	vd_final(&nl);
	st = daemon_stop(SIGTERM);
	if (st != 0)
		oops("the daemon's SIGTERM exit status is %#x, not 0", st);
out:
	if (daemon_pid)
		daemon_stop(SIGKILL);
	autoprobe_restore();
	vdpa_nl_close(&nl);
}

/* ------------------------------------------------------------------ */
/* msg-timeout: late replies against the message timeout              */

static struct op *o_read, *o_write, *o_vopen, *o_vioctl, *o_vclose,
		 *o_broken;

struct mt_iter {
	int fd;			/* the VDUSE node, O_NONBLOCK */
	int late;		/* which message gets the late reply */
	unsigned int late_ms;
	int done;		/* (atomic) the vhost side is finished */
	int timed_out;		/* a reply came after the timeout */
};

static void *mt_daemon(void *arg)
{
	struct mt_iter *it = arg;
	int k = 0;

	while (!__atomic_load_n(&it->done, __ATOMIC_ACQUIRE)) {
		struct vduse_dev_request req;
		struct vduse_dev_response resp;
		struct pollfd p = { .fd = it->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		if (p.revents & POLLERR) {	/* broken: nothing more comes */
			sleep_ms(20);
			continue;
		}
		n = read(it->fd, &req, sizeof(req));
		if (!rec(o_read, n < 0 ? errno : (n == sizeof(req) ? 0 : E_SHORT)) ||
		    n != sizeof(req))
			continue;
		memset(&resp, 0, sizeof(resp));
		resp.request_id = req.request_id;
		resp.result = VDUSE_REQ_RESULT_OK;
		if (k++ == it->late)
			sleep_ms(it->late_ms);
		n = write(it->fd, &resp, sizeof(resp));
		if (n < 0 && errno == ENOENT)
			it->timed_out = 1;
		rec(o_write, n < 0 ? errno : (n == sizeof(resp) ? 0 : E_SHORT));
	}
	return NULL;
}

/* The vhost-vdpa side: the calls that wait for the daemon. */
static void mt_vhost(const char *n)
{
	char dev[128];
	__u8 st;
	int fd;

	if (!find_path("/sys/bus/vdpa/devices/%s/vhost-vdpa-*", n, dev,
		       sizeof(dev))) {
		oops("%s has no vhost-vdpa device", n);
		return;
	}
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (!rec(o_vopen, fd < 0 ? errno : 0) || fd < 0)
		return;
	st = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	rec(o_vioctl, ioctl(fd, VHOST_VDPA_SET_STATUS, &st) ? errno : 0);
	st |= VIRTIO_CONFIG_S_DRIVER;
	rec(o_vioctl, ioctl(fd, VHOST_VDPA_SET_STATUS, &st) ? errno : 0);
	st = 0;
	rec(o_vioctl, ioctl(fd, VHOST_VDPA_SET_STATUS, &st) ? errno : 0);
	rec(o_vclose, close(fd) ? errno : 0);
}

static void run_msg_timeout(int ctl)
{
	struct op *o_setup = op_new("setup", 0, -1);
	struct op *o_mt = op_new("msg_timeout", 0, -1);
	struct vdpa_nl nl;
	unsigned int seed = opt_seed;
	char path[512], val[32];
	long broken = 0;

	o_add = op_new("add", 0, -1);
	o_bind = op_new("bind", 0, -1);
	o_vopen = op_new("vhost open", 0, EIO, -1);
	o_vioctl = op_new("vhost ioctl", 0, EIO, -1);
	o_vclose = op_new("vhost close", 0, -1);
	o_read = op_new("read", 0, EAGAIN, -1);
	o_write = op_new("write", 0, ENOENT, -1);
	o_broken = op_new("ioctl after", 0, EPERM, -1);
	o_del = op_new("del", 0, -1);
	o_destroy = op_new("destroy", 0, -1);
	o_create = op_new("create", 0, -1);
	if (nl_open_checked(&nl))
		return;
	autoprobe_off();
	snprintf(path, sizeof(path), "/sys/class/vduse/%s/msg_timeout", name);
	snprintf(val, sizeof(val), "%d", opt_timeout);
	do {
		struct mt_iter it = { .fd = -1 };
		pthread_t d;
		__u64 f;

		if (!rec(o_create, dev_create(ctl, name, 1, 0)))
			break;
		it.fd = node_open(name, O_RDWR | O_NONBLOCK);
		if (!rec(o_setup, it.fd < 0 ? errno : vqs_setup(it.fd, 1)) ||
		    !rec(o_mt, sysfs_write(path, val)))
			goto destroy;
		/*
		 * Every other iteration the late reply comes within 150 ms of
		 * the timeout (either side: the race), else 300 to 600 ms
		 * after it (the device must break).
		 */
		it.late = rnd(&seed, 5);
		if (iters % 2)
			it.late_ms = opt_timeout * 1000 + 300 + rnd(&seed, 301);
		else
			it.late_ms = opt_timeout * 1000 - 150 + rnd(&seed, 301);
		pthread_create(&d, NULL, mt_daemon, &it);
		if (!attach_bind(&nl, name, "vhost_vdpa", o_add, o_bind))
			mt_vhost(name);
		rec(o_del, vdpa_nl_dev_del(&nl, name));
		__atomic_store_n(&it.done, 1, __ATOMIC_RELEASE);
		pthread_join(d, NULL);
		/* After a late reply, the device must be broken. */
		if (ioctl(it.fd, VDUSE_DEV_GET_FEATURES, &f)) {
			rec(o_broken, errno);
			broken += errno == EPERM;
		} else {
			rec(o_broken, 0);
			if (it.timed_out)
				oops("a reply found its request gone, yet the device is not broken");
		}
destroy:
		if (it.fd >= 0)
			close(it.fd);
		if (!rec(o_destroy, dev_destroy(ctl, name)))
			break;
	} while (!iter_done());
	autoprobe_restore();
	vdpa_nl_close(&nl);
	note("%s: %ld of %ld devices timed out and broke", mode, broken, iters);
	if (iters > 1 && !broken)
		oops("no device timed out: the timeout path was never taken");
}

/* ------------------------------------------------------------------ */
/* sysfs writes against attach/detach                                 */

#define SF_NVQS	2

struct sf_attr {
	const char *file;	/* under /sys/class/vduse/NAME/ */
	const char *const vals[6];
	struct op *w, *r;
	bool present;
};

static struct sf_attr sf_attrs[] = {
	{ .file = "bounce_size",
	  .vals = { "1048576", "4194304", "67108864", "1", NULL } },
	{ .file = "msg_timeout", .vals = { "30", "60", "5", NULL } },
	{ .file = "vq0/irq_cb_affinity", .vals = { "1", "2", "3", NULL } },
	{ .file = "vq1/irq_cb_affinity", .vals = { "3", "1", NULL } },
};
#define SF_NATTRS	ARRAY_SIZE(sf_attrs)

static void *sf_writer(void *arg)
{
	unsigned int seed = opt_seed + (unsigned long)arg;
	char path[512], buf[128];

	while (!stopping()) {
		struct sf_attr *a = &sf_attrs[rnd(&seed, SF_NATTRS)];
		unsigned int nv = 0;

		if (!a->present)
			continue;
		while (a->vals[nv])
			nv++;
		snprintf(path, sizeof(path), "/sys/class/vduse/%s/%s", name,
			 a->file);
		rec(a->w, sysfs_write(path, a->vals[rnd(&seed, nv)]));
		rec(a->r, sysfs_read(path, buf, sizeof(buf)));
	}
	return NULL;
}

/* Create NAME with its queues set up and its node closed again. */
static bool sf_make(int ctl)
{
	int fd;

	if (!rec(o_create, dev_create(ctl, name, SF_NVQS, 2048)))
		return false;
	fd = node_open(name, O_RDWR);
	if (!rec(o_open, fd < 0 ? errno : vqs_setup(fd, SF_NVQS))) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

static void run_sysfs(int ctl)
{
	pthread_t t[MAX_THREADS];
	struct vdpa_nl nl;
	unsigned int i, seed = opt_seed;
	char path[512];
	long n;

	o_create = op_new("create", 0, -1);
	o_open = op_new("setup", 0, -1);
	o_add = op_new("add", 0, -1);
	o_del = op_new("del", 0, -1);
	o_destroy = op_new("destroy", 0, -1);
	if (nl_open_checked(&nl))
		return;
	autoprobe_off();
	if (!sf_make(ctl))
		goto out;
	for (i = 0; i < SF_NATTRS; i++) {
		struct sf_attr *a = &sf_attrs[i];
		char wn[64], rn[64];

		snprintf(path, sizeof(path), "/sys/class/vduse/%s/%s", name,
			 a->file);
		a->present = !access(path, F_OK);
		if (!a->present) {
			printf("# skip - %s: %s: the file does not exist here\n",
			       mode, a->file);
			continue;
		}
		snprintf(wn, sizeof(wn), "w:%s", a->file);
		snprintf(rn, sizeof(rn), "r:%s", a->file);
		/*
		 * A write fails with ENOENT/ENODEV while the device is being
		 * destroyed and recreated; bounce_size is EPERM once the
		 * device has been attached, EINVAL out of range.
		 */
		a->w = op_new(strdup(wn), 0, ENOENT, ENODEV, EPERM, EINVAL, -1);
		a->r = op_new(strdup(rn), 0, ENOENT, ENODEV, -1);
	}
	for (n = 0; n < opt_threads - 1; n++)
		pthread_create(&t[n], NULL, sf_writer, (void *)n);
	n = 0;
	do {
		if (!rec(o_add, vdpa_nl_dev_add(&nl, name)))
			break;
		sleep_ms(rnd(&seed, 20));
		if (!rec(o_del, vdpa_nl_dev_del(&nl, name)))
			break;
		if (++n % 8 == 0) {
			if (!rec(o_destroy, dev_destroy(ctl, name)) ||
			    !sf_make(ctl))
				break;
		}
	} while (!iter_done());
	set_stop();
	for (n = 0; n < opt_threads - 1; n++)
		pthread_join(t[n], NULL);
	rec(o_destroy, dev_destroy(ctl, name));
out:
	autoprobe_restore();
	vdpa_nl_close(&nl);
}

/* ------------------------------------------------------------------ */
/* unload: delete_module against everything                           */

static struct op *o_unload, *o_held, *o_setup;

static void *ul_worker(void *arg)
{
	long id = (long)arg;
	unsigned int seed = opt_seed + id;
	struct vdpa_nl nl;
	char n[64];

	snprintf(n, sizeof(n), "%s-%ld", name, id);
	if (nl_open_checked(&nl)) {
		set_stop();
		return NULL;
	}
	while (!time_up()) {
		int ctl = ctl_open(), fd = -1;

		if (!rec(o_open, ctl < 0 ? -ctl : 0) || ctl < 0)
			continue;
		if (!rec(o_create, dev_create(ctl, n, 1, 2048)))
			goto close_ctl;
		fd = node_open(n, O_RDWR);
		rec(o_setup, fd < 0 ? errno : vqs_setup(fd, 1));
		if (rnd(&seed, 2)) {	/* attach with the node closed */
			close(fd);
			fd = -1;
		}
		if (fd < 0 || rnd(&seed, 2)) {
			rec(o_add, vdpa_nl_dev_add(&nl, n));
			sleep_us(rnd(&seed, 100));
			rec(o_del, vdpa_nl_dev_del(&nl, n));
		}
		if (fd >= 0)
			close(fd);
		rec(o_destroy, dev_destroy(ctl, n));
close_ctl:
		close(ctl);
	}
	vdpa_nl_close(&nl);
	return NULL;
}

/* The held device keeps working while the unloads fail. */
static void ul_check_held(const char *held)
{
	__u64 f;
	int fd = node_open(held, O_RDWR);

	if (fd < 0) {
		rec(o_held, errno);
		return;
	}
	rec(o_held, ioctl(fd, VDUSE_DEV_GET_FEATURES, &f) ? errno : 0);
	close(fd);
}

static void run_unload(int ctl)
{
	pthread_t t[MAX_THREADS];
	char held[64];
	long i, nw = opt_threads > 1 ? opt_threads - 1 : 1;

	unsigned int seed = opt_seed;

	o_unload = op_new("delete_module", EWOULDBLOCK, EBUSY, -1);
	o_held = op_new("held device", 0, -1);
	o_open = op_new("control open", 0, -1);
	o_create = op_new("create", 0, -1);
	o_setup = op_new("setup", 0, -1);
	o_add = op_new("add", 0, -1);
	o_del = op_new("del", 0, -1);
	o_destroy = op_new("destroy", 0, -1);
	snprintf(held, sizeof(held), "%s-hold", name);
	if (!rec(op_new("create held", 0, -1), dev_create(ctl, held, 1, 2048)))
		return;
	autoprobe_off();
	for (i = 0; i < nw; i++)
		pthread_create(&t[i], NULL, ul_worker, (void *)i);
	do {
		if (!rec(o_unload, syscall(SYS_delete_module, "vduse",
					   O_NONBLOCK) ? errno : 0)) {
			/* It went: nothing below can work any more. */
			oops("the module unloaded while in use");
			set_stop();
			break;
		}
		ul_check_held(held);
		sleep_us(rnd(&seed, 100));
	} while (!iter_done());
	set_stop();
	for (i = 0; i < nw; i++)
		pthread_join(t[i], NULL);
	rec(o_destroy, dev_destroy(ctl, held));
	autoprobe_restore();
	for (i = 0; i < nw; i++) {
		char n[64];

		snprintf(n, sizeof(n), "%s-%ld", name, i);
		dev_gone(n);
	}
	dev_gone(held);
}

/* ------------------------------------------------------------------ */

static const struct {
	const char *name;
	long iters;		/* default iteration count */
} modes[] = {
	{ "open-destroy", 1000 },
	{ "create-destroy", 4000 },
	{ "vdpa", 20 },
	{ "msg-timeout", 5 },
	{ "sysfs", 200 },
	{ "unload", 2000 },
};

static void usage(int st)
{
	unsigned int i;

	fprintf(st ? stderr : stdout,
		"usage: vduse_races MODE --name NAME [--iterations N] [--seconds S]\n"
		"       [--threads T] [--seed S] [--hang S] [--timeout S] [-- DAEMON-ARGV...]\n"
		"modes:");
	for (i = 0; i < ARRAY_SIZE(modes); i++)
		fprintf(st ? stderr : stdout, " %s", modes[i].name);
	fprintf(st ? stderr : stdout, "\n");
	exit(st);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "iterations", required_argument, NULL, 'i' },
		{ "seconds", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 'S' },
		{ "hang", required_argument, NULL, 'H' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	bool seeded = false;
	pthread_t wd;
	unsigned int i;
	int c, ctl, fds0, fds1, ret;
	char extra[128];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || argv[1][0] == '-')
		usage(argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2);
	mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'i':
			opt_iters = strtol(optarg, NULL, 0);
			break;
		case 's':
			opt_secs = strtod(optarg, NULL);
			break;
		case 't':
			opt_threads = atoi(optarg);
			break;
		case 'S':
			opt_seed = strtoul(optarg, NULL, 0);
			seeded = true;
			break;
		case 'H':
			opt_hang = atoi(optarg);
			break;
		case 'T':
			opt_timeout = atoi(optarg);
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (!name || strlen(name) > 32 || opt_threads < 2 ||
	    opt_threads > MAX_THREADS || opt_timeout < 1)
		usage(2);
	if (optind < argc)
		daemon_argv = argv + optind;
	for (i = 0; i < ARRAY_SIZE(modes); i++)
		if (!strcmp(mode, modes[i].name))
			break;
	if (i == ARRAY_SIZE(modes))
		usage(2);
	if (!opt_iters && !opt_secs)
		opt_iters = modes[i].iters;
	if (!seeded)
		opt_seed = time(NULL) ^ getpid();
	note("%s: seed %u, %d threads, %ld iterations, %g s", mode, opt_seed,
	     opt_threads, opt_iters, opt_secs);
	signal(SIGPIPE, SIG_IGN);

	ctl = ctl_open();
	if (ctl < 0) {
		printf("not ok - %s: open %s: %s\n", mode, CTL_PATH, errname(-ctl));
		return 1;
	}
	if (exists("/dev/vduse/%s", name) || exists("/sys/bus/vdpa/devices/%s", name))
		note("%s exists before the race", name);
	fds0 = count_fds();
	pthread_create(&wd, NULL, watchdog, NULL);
	t_start = now();

	if (!strcmp(mode, "open-destroy"))
		run_open_destroy(ctl);
	else if (!strcmp(mode, "create-destroy"))
		run_create_destroy(ctl);
	else if (!strcmp(mode, "vdpa"))
		run_vdpa();
	else if (!strcmp(mode, "msg-timeout"))
		run_msg_timeout(ctl);
	else if (!strcmp(mode, "sysfs"))
		run_sysfs(ctl);
	else
		run_unload(ctl);

	fds1 = count_fds();
	if (fds1 != fds0)
		oops("%d file descriptors open at the start, %d at the end",
			fds0, fds1);
	close(ctl);
	dev_gone(name);
	snprintf(extra, sizeof(extra), "(%.1f s, seed %u)", now() - t_start,
		 opt_seed);
	ret = report(extra);
	return ret;
}
