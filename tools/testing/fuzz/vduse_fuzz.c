// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_fuzz: a seeded, reproducible syscall fuzzer for VDUSE.
 *
 *   vduse_fuzz [--seed N] [--seconds S] [--ops N] [--batch N] [-v]
 *              [--trace FILE] [--op-timeout S] [--no-vdpa]
 *              [--known-crashes]
 *
 * It drives /dev/vduse/control and the device nodes it creates with
 * random operations: structured and random ioctls on both, reads and
 * writes of the message channel, IOTLB file descriptors mapped, touched
 * and unmapped, umem registration, closes and reopens, destroys while
 * open; and it attaches its devices to the vDPA bus over generic netlink
 * ("vdpa" family), binds them to virtio_vdpa or vhost_vdpa through sysfs,
 * brings virtio_net interfaces up and drives /dev/vhost-vdpa-N, while a
 * responder thread answers the kernel's requests like a daemon: a good
 * one for some devices, a sloppy one (wrong, late, or never) for others.
 *
 * Operations run in batches (--batch, default 200), each batch in a child
 * process, so that a signal ends a batch and not the run.  A batch works
 * mostly on two of the eight device names, so that devices get created,
 * opened, set up, attached and bound before other operations abuse them.
 * Operation I of batch B draws its choices from a generator seeded from
 * (seed, B, I): the same seed gives the same sequence of operations; -v
 * prints each call, --trace FILE writes them to FILE as they happen (on
 * the guest's shared file system it survives a crash).  Arguments that
 * depend on earlier results, and the results themselves, can differ
 * between two runs where timing does (the responder thread, the kernel's
 * workers).  Block devices are never bound to virtio_vdpa: nobody serves
 * their queues, and virtio_blk would wait for its partition scan forever.
 * vDPA driver autoprobe is off while the fuzzer runs, restored at the end.
 *
 * Two inputs a daemon controls break the guest's virtio_net, with the
 * stock module as with ours, and the fuzzer steps around them unless
 * --known-crashes: VIRTIO_NET_S_ANNOUNCE in a net device's status (a
 * BUG_ON, the guest panics: fz_dev.c, fz_net_config_sanitize) and a
 * receive ring shorter than a big-packets buffer (a WARN: fz_vdpa.c,
 * netdev_rings_ok).
 *
 * After every operation the child reads the kernel log (/dev/kmsg); a
 * warning, BUG, Oops, KFENCE, corruption or hung-task report stops the
 * run, and the lines are printed with the calls that came before them.
 * An operation still running after --op-timeout is reported with the
 * kernel stacks of its process, which is then killed.
 *
 * At the end it deletes and destroys every device it made (answering the
 * kernel's requests correctly meanwhile) and prints a summary on "# "
 * lines, the last one "# fuzz-summary key=value ...".
 *
 * Parts: vduse_fuzz.c (batches, logging, clean-up), fz_ctl.c (control
 * node, device creation), fz_dev.c (device node, message channel by
 * hand, sysfs), fz_map.c (IOTLB fds, mappings, umem), fz_resp.c (the
 * responder), fz_vdpa.c (netlink, driver binding, interfaces),
 * fz_vhost.c (vhost-vdpa).
 *
 * Exit status: 0 clean; 1 the kernel log reported a problem (the lines
 * and the operations before them are printed); 3 an operation hung past
 * --op-timeout (default 60 s) or a batch could not be killed; 4 devices
 * were left behind; 2 bad usage or set-up failure.
 */
#include <linux/vduse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "tap.h"

struct fz_shared *fz_sh;
bool fz_known_crashes;

static char long_name[VDUSE_NAME_MAX];
const char *fz_names[FZ_NAMES] = {
	"fz0", "fz1", "fz2", "fz3", "fz4", "fz-5.x_y", "fz6", long_name,
};

static const char *const counter_names[C_MAX] = {
	[C_OPS] = "ops", [C_CALLS] = "calls", [C_CALLS_OK] = "calls_ok",
	[C_CREATED] = "created", [C_DESTROYED] = "destroyed",
	[C_ATTACHED] = "attached", [C_DETACHED] = "detached",
	[C_BOUND] = "bound", [C_OPENED] = "opened", [C_REQS] = "requests",
	[C_REPLIES] = "replies", [C_BAD_REPLIES] = "bad_replies",
	[C_SILENT] = "unanswered", [C_FDS] = "iotlb_fds", [C_MAPS] = "maps",
	[C_TOUCHES] = "touches", [C_SIGBUS] = "sigbus", [C_UMEM] = "umem",
	[C_VHOST] = "vhost_opens", [C_VHOST_CALLS] = "vhost_calls",
	[C_NL] = "netlink", [C_BATCHES] = "batches",
	[C_CHILD_SIGNALED] = "batch_signaled",
	[C_CHILD_KILLED] = "batch_killed", [C_DRIVER_OK] = "driver_ok",
};

static struct {
	uint64_t seed;
	unsigned int seconds;
	uint64_t ops;
	unsigned int batch;
	unsigned int op_timeout;
	bool verbose;
	bool no_vdpa;
	const char *trace;
} opt = {
	.seconds = 60,
	.batch = 200,
	.op_timeout = 60,
};

static int trace_fd = -1;
static int kmsg_fd = -1;
static uint64_t t0_ms;

/* ------------------------------------------------------------------ */
/* Random values                                                       */

uint32_t fz_u32(struct fz_rng *r)
{
	static const uint32_t edge[] = {
		0, 1, 2, 3, 4, 7, 8, 15, 16, 64, 255, 256, 1024, 4095, 4096,
		4097, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
		0xfffffffe, 0xffffffff,
	};
	uint32_t k;

	switch (fz_below(r, 4)) {
	case 0:
		return edge[fz_below(r, sizeof(edge) / sizeof(edge[0]))];
	case 1:
		return fz_below(r, 32);
	case 2:
		k = fz_below(r, 32);
		return (1U << k) + (uint32_t)fz_below(r, 3) - 1;
	default:
		return (uint32_t)fz_next(r);
	}
}

uint64_t fz_u64(struct fz_rng *r)
{
	static const uint64_t edge[] = {
		0, 1, 0xfff, 0x1000, 0xffffffffULL, 0x100000000ULL,
		0x7fffffffffffffffULL, 0x8000000000000000ULL,
		0xfffffffffffff000ULL, ~0ULL, 0x3ffffff, 0x4000000,
		0x47ffffff, 0x48000000,
	};

	switch (fz_below(r, 3)) {
	case 0:
		return edge[fz_below(r, sizeof(edge) / sizeof(edge[0]))];
	case 1:
		return fz_u32(r);
	default:
		return fz_next(r);
	}
}

void fz_fill(struct fz_rng *r, void *buf, size_t len)
{
	unsigned char *p = buf;
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (!(i & 7))
			v = fz_next(r);
		p[i] = v >> ((i & 7) * 8);
	}
}

/* ------------------------------------------------------------------ */
/* Logging                                                             */

static void vlog(struct fz *f, const char *fmt, va_list ap)
{
	char line[FZ_LINE];
	uint32_t i;
	int n;

	n = snprintf(line, sizeof(line), "%u.%u ", f->batch, f->op);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	i = __atomic_fetch_add(&fz_sh->ring_head, 1, __ATOMIC_RELAXED);
	memcpy(fz_sh->ring[i % FZ_RING], line, FZ_LINE);
	n = strlen(line);
	line[n] = '\n';
	if (f->trace >= 0 && write(f->trace, line, n + 1) < 0)
		f->trace = -1;
	if (f->verbose && write(STDOUT_FILENO, line, n + 1) < 0)
		f->verbose = false;
}

void fz_log(struct fz *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(f, fmt, ap);
	va_end(ap);
}

const char *fz_res(long r, int err)
{
	static __thread char buf[4][48];
	static __thread int n;
	char *b = buf[n++ & 3];

	if (r < 0)
		snprintf(b, sizeof(buf[0]), "%ld %s", r, errname(err));
	else
		snprintf(b, sizeof(buf[0]), "%ld", r);
	return b;
}

long fz_call(struct fz *f, long r, const char *fmt, ...)
{
	int err = errno;
	char desc[FZ_LINE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	fz_count(C_CALLS);
	if (r >= 0)
		fz_count(C_CALLS_OK);
	fz_log(f, "%s = %s", desc, fz_res(r, err));
	errno = err;
	return r;
}

long fz_callr(struct fz *f, long ret, const char *fmt, ...)
{
	char desc[FZ_LINE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	if (ret < 0) {
		errno = -ret;
		fz_call(f, -1, "%s", desc);
		return ret;
	}
	return fz_call(f, ret, "%s", desc);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

uint64_t fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fz_sysfs_write(const char *path, const char *val)
{
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int fz_sysfs_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

int fz_pick_dev(struct fz *f, bool open_only)
{
	int open[FZ_DEV_SLOTS], n = 0, i;

	if (!open_only)
		return fz_below(&f->rng, FZ_DEV_SLOTS);
	for (i = 0; i < FZ_DEV_SLOTS; i++)
		if (f->dev[i].fd >= 0)
			open[n++] = i;
	return n ? open[fz_below(&f->rng, n)] : -1;
}

int fz_free_file_slot(struct fz *f)
{
	int i = fz_below(&f->rng, FZ_FILE_SLOTS), k;

	for (k = 0; k < FZ_FILE_SLOTS; k++)
		if (f->file[(i + k) % FZ_FILE_SLOTS] < 0)
			return (i + k) % FZ_FILE_SLOTS;
	close(f->file[i]);
	f->file[i] = -1;
	return i;
}

void fz_file_put(struct fz *f, int fd)
{
	int i;

	if (fd < 0)
		return;
	pthread_mutex_lock(&f->lock);
	i = fz_free_file_slot(f);
	f->file[i] = fd;
	pthread_mutex_unlock(&f->lock);
}

void fz_dev_close(struct fz *f, int slot)
{
	close(f->dev[slot].fd);
	f->dev[slot].fd = -1;
	f->dev[slot].npending = 0;
}

void fz_map_drop(struct fz *f, int slot)
{
	munmap(f->map[slot].addr, f->map[slot].len);
	f->map[slot].addr = NULL;
}

void *fz_argp(struct fz *f, void *buf, size_t len)
{
	size_t k;

	switch (fz_below(&f->rng, 40)) {
	case 0:
		return NULL;
	case 1:
		return f->bad_page;
	case 2:
		return f->ro_page;
	case 3:
		/* Straddle the end of the readable memory. */
		if (len < 2 || len > 4096)
			return buf;
		k = 1 + fz_below(&f->rng, len - 1);
		memcpy(f->edge - k, buf, k);
		return f->edge - k;
	case 4:
		return (void *)(uintptr_t)fz_u64(&f->rng);
	default:
		return buf;
	}
}

void fz_hint_add(int name, uint64_t iova)
{
	fz_sh->dev[name].hints[fz_mix(iova) % FZ_HINTS] = iova;
}

/* ------------------------------------------------------------------ */
/* The kernel log                                                      */

static const char *const klog_bad[] = {
	"WARNING:", "BUG:", "BUG kmalloc", "kernel BUG", "Oops",
	"KFENCE:", "list_add corruption", "list_del corruption",
	"refcount_t:", "general protection fault", "UBSAN:",
	"Kernel panic", "unreferenced object", "stack-protector",
	"Poison overwritten", "Redzone",
};

static bool klog_line_bad(const char *msg)
{
	size_t i;

	for (i = 0; i < sizeof(klog_bad) / sizeof(klog_bad[0]); i++)
		if (strstr(msg, klog_bad[i]))
			return true;
	if (strstr(msg, "INFO: task") && strstr(msg, "blocked"))
		return true;
	if (strstr(msg, "slab") && strstr(msg, "corrupted"))
		return true;
	return false;
}

/* Read what the kernel logged since the last call; keep bad lines. */
static void klog_check(struct fz *f)
{
	char rec[2048];
	size_t used;
	ssize_t n;
	char *msg;

	if (kmsg_fd < 0)
		return;
	for (;;) {
		n = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = '\0';
		if (!fz_sh->klog_bad && klog_line_bad(msg)) {
			fz_sh->klog_bad = 1;
			fz_sh->klog_batch = f ? f->batch : fz_sh->batch;
			fz_sh->klog_op = f ? f->op : fz_sh->op;
		}
		if (!fz_sh->klog_bad)
			continue;
		used = strlen(fz_sh->klog);
		if (used + strlen(msg) + 2 < sizeof(fz_sh->klog)) {
			strcat(fz_sh->klog, msg);
			strcat(fz_sh->klog, "\n");
		}
	}
}

/* ------------------------------------------------------------------ */
/* One batch, in a child process                                       */

static const struct fz_op *const op_tables[] = {
	fz_ctl_ops, fz_dev_ops, fz_map_ops, fz_vdpa_ops, fz_vhost_ops,
};
static const struct fz_op *ops[128];
static unsigned int n_ops, total_weight;

static void ops_init(void)
{
	const struct fz_op *t;
	size_t i;

	for (i = 0; i < sizeof(op_tables) / sizeof(op_tables[0]); i++) {
		if (opt.no_vdpa && (op_tables[i] == fz_vdpa_ops ||
				    op_tables[i] == fz_vhost_ops))
			continue;
		for (t = op_tables[i]; t->name; t++) {
			if (n_ops == sizeof(ops) / sizeof(ops[0]))
				return;
			ops[n_ops++] = t;
			total_weight += t->weight;
		}
	}
}

static const struct fz_op *op_pick(struct fz_rng *r)
{
	unsigned int x = fz_below(r, total_weight), i;

	for (i = 0; i < n_ops; i++) {
		if (x < ops[i]->weight)
			return ops[i];
		x -= ops[i]->weight;
	}
	return ops[0];
}

static void *map_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int fz_init(struct fz *f, uint32_t batch)
{
	unsigned char *two;
	int i;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->seed = opt.seed;
	f->batch = batch;
	f->verbose = opt.verbose;
	f->trace = trace_fd;
	f->kmsg = kmsg_fd;
	f->nl = -1;
	f->memfd = -1;
	for (i = 0; i < FZ_CTL_SLOTS; i++)
		f->ctl[i] = -1;
	for (i = 0; i < FZ_DEV_SLOTS; i++)
		f->dev[i].fd = -1;
	for (i = 0; i < FZ_FILE_SLOTS; i++)
		f->file[i] = -1;
	for (i = 0; i < FZ_VHOST_SLOTS; i++)
		f->vhost[i].fd = -1;
	f->resp_rng.s = fz_mix(opt.seed ^ 0x5eed0000ULL ^ batch);
	f->hot[0] = fz_mix(opt.seed ^ 0x40700000ULL ^ batch) % FZ_NAMES;
	f->hot[1] = fz_mix(opt.seed ^ 0x40710000ULL ^ batch) % FZ_NAMES;
	f->t0_ms = t0_ms;
	/* Some devices get a good daemon for a batch, the others a bad one. */
	for (i = 0; i < FZ_NAMES; i++)
		f->sloppy[i] = fz_mix(opt.seed ^ 0x51000000ULL ^ batch << 8 ^ i) % 100 < 40;

	f->scratch = map_anon(65536, PROT_READ | PROT_WRITE);
	f->ro_page = map_anon(4096, PROT_READ);
	two = map_anon(8192, PROT_READ | PROT_WRITE);
	if (!f->scratch || !f->ro_page || !two)
		return -1;
	mprotect(two + 4096, 4096, PROT_NONE);
	f->edge = two + 4096;
	f->bad_page = two + 4096;

	f->memfd_len = 1 << 20;
	f->memfd = memfd_create("vduse_fuzz", MFD_CLOEXEC);
	if (f->memfd < 0 || ftruncate(f->memfd, f->memfd_len))
		return -1;
	f->memfd_map = mmap(NULL, f->memfd_len, PROT_READ | PROT_WRITE,
			    MAP_SHARED, f->memfd, 0);
	if (f->memfd_map == MAP_FAILED)
		return -1;
	if (!opt.no_vdpa)
		fz_nl_open(f);
	return 0;
}

static sigjmp_buf touch_env;
static volatile sig_atomic_t touching;

static void fault_handler(int sig)
{
	if (touching) {
		touching = 0;
		siglongjmp(touch_env, sig);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Run FN(ARG) with SIGBUS and SIGSEGV caught: returns 0, or the signal
 * that cut it short.  Only the operation thread touches mappings.
 */
int fz_guarded(void (*fn)(void *), void *arg)
{
	int sig = sigsetjmp(touch_env, 1);

	if (sig) {
		fz_count(C_SIGBUS);
		return sig;
	}
	touching = 1;
	fn(arg);
	touching = 0;
	return 0;
}

static void __attribute__((noreturn)) child_main(uint32_t batch, uint32_t nops)
{
	struct sigaction sa;
	const struct fz_op *op;
	struct fz f;
	uint32_t i;
	int s;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fault_handler;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (fz_init(&f, batch)) {
		fprintf(stderr, "vduse_fuzz: batch set-up failed: %s\n",
			strerror(errno));
		_exit(2);
	}
	fz_resp_start(&f);
	/* A daemon that restarts: take the batch's devices back. */
	f.rng.s = fz_mix(opt.seed ^ fz_mix(((uint64_t)batch << 32) | 0xffffffff));
	for (s = 0; s < 2; s++)
		if (!access(VDUSE_CTL_PATH, F_OK))
			fz_dev_ensure(&f, f.hot[s]);

	for (i = 0; i < nops && !fz_sh->stop; i++) {
		f.op = i;
		f.rng.s = fz_mix(opt.seed ^ fz_mix(((uint64_t)batch << 32) | i));
		op = op_pick(&f.rng);
		fz_sh->op = i;
		fz_sh->op_start_ms = fz_now_ms();
		fz_log(&f, "op %s @%.1f", op->name,
		       (fz_now_ms() - f.t0_ms) / 1000.0);
		op->fn(&f);
		fz_sh->op_start_ms = 0;
		fz_count(C_OPS);
		klog_check(&f);
		if (fz_sh->klog_bad)
			break;
	}

	/* Close what sends requests while someone still answers them. */
	f.op = i;
	for (s = 0; s < FZ_VHOST_SLOTS; s++)
		if (f.vhost[s].fd >= 0)
			fz_vhost_close(&f, s);
	fz_resp_stop(&f);
	klog_check(&f);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* The parent                                                          */

static void ring_dump(void)
{
	uint32_t h = fz_sh->ring_head, i;
	const char *l;

	for (i = 0; i < FZ_RING; i++) {
		l = fz_sh->ring[(h + i) % FZ_RING];
		if (*l)
			printf("#   %s\n", l);
	}
}

static void stack_dump(pid_t pid)
{
	char path[300], buf[4096], *line, *save;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.200s/stack", pid,
			 de->d_name);
		if (fz_sysfs_read(path, buf, sizeof(buf)) <= 0)
			continue;
		printf("#   task %s:\n", de->d_name);
		for (line = strtok_r(buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			printf("#     %s\n", line);
	}
	closedir(d);
}

static int stuck_ops;

/* Run one batch; -1 when its process could not be ended. */
static int run_batch(uint32_t batch, uint32_t nops, uint64_t deadline)
{
	uint64_t killed_at = 0, start, now;
	int status;
	pid_t pid, r;

	fz_sh->batch = batch;
	fz_sh->op_start_ms = 0;
	fz_sh->ring_head = 0;
	memset(fz_sh->ring, 0, sizeof(fz_sh->ring));
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("vduse_fuzz: fork");
		return -1;
	}
	if (!pid)
		child_main(batch, nops);

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		now = fz_now_ms();
		if (now >= deadline)
			fz_sh->stop = 1;
		start = fz_sh->op_start_ms;
		if (!killed_at && start && now > start &&
		    now - start > opt.op_timeout * 1000ULL) {
			printf("# batch %u: operation %u still running after %u s; its last calls and stacks:\n",
			       batch, fz_sh->op, opt.op_timeout);
			ring_dump();
			stack_dump(pid);
			stuck_ops++;
			kill(pid, SIGKILL);
			killed_at = now;
			fz_count(C_CHILD_KILLED);
		}
		if (killed_at && now - killed_at > 60000) {
			printf("# batch %u: its process does not die after SIGKILL:\n",
			       batch);
			stack_dump(pid);
			return -1;
		}
		usleep(20000);
	}
	fz_count(C_BATCHES);
	if (WIFSIGNALED(status) && !killed_at) {
		fz_count(C_CHILD_SIGNALED);
		printf("# batch %u ended by signal %d (%s) in operation %u; its last calls:\n",
		       batch, WTERMSIG(status), strsignal(WTERMSIG(status)),
		       fz_sh->op);
		ring_dump();
	} else if (WIFEXITED(status) && WEXITSTATUS(status)) {
		printf("# batch %u exited with status %d\n", batch,
		       WEXITSTATUS(status));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Clean-up: delete and destroy every device of ours                   */

static bool dev_exists(const char *name)
{
	char path[VDUSE_NAME_MAX + 32];

	snprintf(path, sizeof(path), "/dev/vduse/%.255s", name);
	return !access(path, F_OK);
}

static bool vdpa_exists(const char *name)
{
	char path[VDUSE_NAME_MAX + 32];

	snprintf(path, sizeof(path), VDPA_SYSFS "/devices/%.255s", name);
	return !access(path, F_OK);
}

/* Our devices still there: the name pool, and "fz*" nodes. */
static int leftovers(char names[][VDUSE_NAME_MAX], int max)
{
	struct dirent *de;
	int n = 0, i;
	DIR *d;

	for (i = 0; i < FZ_NAMES && n < max; i++)
		if (dev_exists(fz_names[i]) || vdpa_exists(fz_names[i]))
			snprintf(names[n++], VDUSE_NAME_MAX, "%s", fz_names[i]);
	d = opendir("/dev/vduse");
	while (d && (de = readdir(d)) && n < max) {
		if (strncmp(de->d_name, "fz", 2))
			continue;
		for (i = 0; i < n; i++)
			if (!strcmp(names[i], de->d_name))
				break;
		if (i == n)
			snprintf(names[n++], VDUSE_NAME_MAX, "%s", de->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

static int cleanup(bool quiet)
{
	char names[FZ_NAMES + 16][VDUSE_NAME_MAX], path[VDUSE_NAME_MAX + 64];
	int n, i, pass, ctl, tries, ret;
	struct fz f;

	for (pass = 0; pass < 3; pass++) {
		n = leftovers(names, FZ_NAMES + 16);
		if (!n)
			return 0;
		if (fz_init(&f, UINT32_MAX - pass))
			return n;
		f.verbose = false;
		f.resp_good = true;
		for (i = 0; i < n && i < FZ_DEV_SLOTS; i++) {
			snprintf(path, sizeof(path),
				 "/sys/class/vduse/%.255s/msg_timeout", names[i]);
			fz_sysfs_write(path, "2");
			snprintf(path, sizeof(path), "/dev/vduse/%.255s", names[i]);
			f.dev[i].fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		}
		fz_resp_start(&f);
		for (i = 0; i < n; i++) {
			if (!vdpa_exists(names[i]))
				continue;
			ret = fz_vdpa_dev_del(&f, names[i], false);
			if (ret && !quiet)
				printf("# clean-up: vdpa dev del %.40s: %s\n",
				       names[i], errname(-ret));
		}
		fz_resp_stop(&f);
		for (i = 0; i < FZ_DEV_SLOTS; i++)
			if (f.dev[i].fd >= 0)
				fz_dev_close(&f, i);
		ctl = open(VDUSE_CTL_PATH, O_RDWR | O_CLOEXEC);
		for (i = 0; i < n && ctl >= 0; i++) {
			if (!dev_exists(names[i]))
				continue;
			for (tries = 0; tries < 100; tries++) {
				ret = fz_destroy_name(ctl, names[i]);
				if (ret != -EBUSY)
					break;
				usleep(100000);
			}
			if (ret && !quiet)
				printf("# clean-up: destroy %.40s: %s\n",
				       names[i], errname(-ret));
			if (!ret)
				fz_count(C_DESTROYED);
		}
		if (ctl >= 0)
			close(ctl);
		if (f.nl >= 0)
			close(f.nl);
		close(f.memfd);
	}
	n = leftovers(names, FZ_NAMES + 16);
	for (i = 0; i < n; i++)
		printf("# clean-up: device %.40s is still there\n", names[i]);
	return n;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: vduse_fuzz [--seed N] [--seconds S] [--ops N] [--batch N] [-v]\n"
		"                  [--trace FILE] [--op-timeout S] [--no-vdpa]\n"
		"                  [--known-crashes]\n");
	exit(2);
}

static void summary(uint64_t ms)
{
	int i;

	printf("# vduse_fuzz: seed %" PRIu64 ": %" PRIu64 " operations (%" PRIu64
	       " calls, %" PRIu64 " succeeded) in %" PRIu64 " batches, %" PRIu64
	       ".%" PRIu64 " s\n",
	       opt.seed, fz_sh->counters[C_OPS], fz_sh->counters[C_CALLS],
	       fz_sh->counters[C_CALLS_OK], fz_sh->counters[C_BATCHES],
	       ms / 1000, ms % 1000 / 100);
	printf("# fuzz-summary seed=%" PRIu64 " seconds=%" PRIu64, opt.seed,
	       ms / 1000);
	for (i = 0; i < C_MAX; i++)
		printf(" %s=%" PRIu64, counter_names[i], fz_sh->counters[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "ops", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "trace", required_argument, NULL, 'T' },
		{ "op-timeout", required_argument, NULL, 'o' },
		{ "no-vdpa", no_argument, NULL, 'N' },
		{ "known-crashes", no_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t t0, deadline, last_note, now, done;
	char autoprobe[16] = "";
	struct rlimit rl;
	uint32_t batch;
	int c, ret = 0, left;

	opt.seed = fz_mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	opt.seed %= 1000000000000ULL;
	while ((c = getopt_long(argc, argv, "vh", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			opt.seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			opt.seconds = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			opt.ops = strtoull(optarg, NULL, 0);
			break;
		case 'b':
			opt.batch = strtoul(optarg, NULL, 0);
			break;
		case 'T':
			opt.trace = optarg;
			break;
		case 'o':
			opt.op_timeout = strtoul(optarg, NULL, 0);
			break;
		case 'N':
			opt.no_vdpa = true;
			break;
		case 'K':
			fz_known_crashes = true;
			break;
		case 'v':
			opt.verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !opt.batch || (!opt.seconds && !opt.ops))
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);

	memset(long_name, 'L', VDUSE_NAME_MAX - 1);
	memcpy(long_name, "fzlong", 6);
	fz_sh = mmap(NULL, sizeof(*fz_sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fz_sh == MAP_FAILED) {
		perror("vduse_fuzz: mmap");
		return 2;
	}
	if (access(VDUSE_CTL_PATH, R_OK | W_OK)) {
		fprintf(stderr, "vduse_fuzz: %s: %s\n", VDUSE_CTL_PATH,
			strerror(errno));
		return 2;
	}
	if (opt.trace) {
		trace_fd = open(opt.trace, O_WRONLY | O_CREAT | O_TRUNC |
				O_APPEND | O_CLOEXEC, 0644);
		if (trace_fd < 0) {
			fprintf(stderr, "vduse_fuzz: %s: %s\n", opt.trace,
				strerror(errno));
			return 2;
		}
	}
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd >= 0)
		lseek(kmsg_fd, 0, SEEK_END);
	/* umem pins the bounce area: let it. */
	rl.rlim_cur = rl.rlim_max = 256 << 20;
	setrlimit(RLIMIT_MEMLOCK, &rl);
	ops_init();

	/* Nothing binds to a device unless the fuzzer binds it. */
	if (!opt.no_vdpa &&
	    fz_sysfs_read(VDPA_SYSFS "/drivers_autoprobe", autoprobe,
			  sizeof(autoprobe)) > 0)
		fz_sysfs_write(VDPA_SYSFS "/drivers_autoprobe", "0");

	printf("# vduse_fuzz: seed %" PRIu64 ", %u s, %" PRIu64
	       " operations at most, %u per batch%s\n",
	       opt.seed, opt.seconds, opt.ops, opt.batch,
	       opt.no_vdpa ? ", no vDPA" : "");
	left = cleanup(true);
	if (left)
		printf("# %d devices of an earlier run could not be removed\n",
		       left);

	t0 = fz_now_ms();
	t0_ms = t0;
	last_note = t0;
	deadline = opt.seconds ? t0 + opt.seconds * 1000ULL : UINT64_MAX;
	for (batch = 0; !fz_sh->stop; batch++) {
		done = fz_sh->counters[C_OPS];
		if (opt.ops && done >= opt.ops)
			break;
		if (fz_now_ms() >= deadline)
			break;
		if (run_batch(batch, opt.ops && opt.ops - done < opt.batch ?
			      opt.ops - done : opt.batch, deadline)) {
			ret = 3;
			break;
		}
		klog_check(NULL);
		if (fz_sh->klog_bad) {
			/* Let the rest of a report reach the log. */
			usleep(500000);
			klog_check(NULL);
			printf("# the kernel log reported a problem in batch %u, operation %u (seed %" PRIu64 "):\n",
			       fz_sh->klog_batch, fz_sh->klog_op, opt.seed);
			fputs(fz_sh->klog, stdout);
			printf("# the last calls before it:\n");
			ring_dump();
			ret = 1;
			break;
		}
		now = fz_now_ms();
		if (now - last_note >= 30000) {
			last_note = now;
			printf("# %" PRIu64 " s: %" PRIu64 " operations, %" PRIu64
			       " devices created, %" PRIu64 " attached\n",
			       (now - t0) / 1000, fz_sh->counters[C_OPS],
			       fz_sh->counters[C_CREATED],
			       fz_sh->counters[C_ATTACHED]);
		}
	}
	if (stuck_ops && !ret)
		ret = 3;
	now = fz_now_ms();

	if (ret != 3) {
		left = cleanup(false);
		if (left && !ret)
			ret = 4;
	}
	if (autoprobe[0])
		fz_sysfs_write(VDPA_SYSFS "/drivers_autoprobe", autoprobe);
	klog_check(NULL);
	if (fz_sh->klog_bad && !ret) {
		printf("# the kernel log reported a problem during the clean-up:\n");
		fputs(fz_sh->klog, stdout);
		ret = 1;
	}
	summary(now - t0);
	return ret;
}
