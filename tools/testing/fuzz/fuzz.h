/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vduse_fuzz: state shared by the parts of the fuzzer.
 *
 * The parent process (vduse_fuzz.c) runs batches of operations, each in a
 * child process of its own, so that a signal (a SIGBUS from a mapping, a
 * fuzzer bug) ends one batch and not the run.  What must outlive a batch
 * lives in struct fz_shared, a MAP_SHARED page set up before the first
 * fork: counters, the device table (which names exist and how they were
 * made), the last operations of the running batch, and the stop flag.
 *
 * Inside a child, struct fz holds the descriptors the batch opened.  Two
 * threads use it: the operation loop and the responder, which answers the
 * kernel's requests on every open device node the way a sloppy daemon
 * would (fz_resp.c).  fz->lock protects the descriptor tables; nothing
 * blocking is done under it.
 *
 * Every operation draws its choices from its own generator, seeded from
 * (seed, batch, operation index), so operation N of batch B is the same
 * operation in every run with the same seed, whatever the earlier ones
 * returned.  What the kernel answers can still depend on timing (the
 * responder thread, the kernel's workers).
 */
#ifndef _VDUSE_FUZZ_H
#define _VDUSE_FUZZ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FZ_NAMES	8	/* device names the fuzzer uses */
#define FZ_NAME_LONG	7	/* index of the 255-character name */
#define FZ_DEV_SLOTS	8	/* open /dev/vduse/NAME descriptors */
#define FZ_CTL_SLOTS	3	/* open /dev/vduse/control descriptors */
#define FZ_MAP_SLOTS	16	/* mappings of IOTLB file descriptors */
#define FZ_FILE_SLOTS	16	/* IOTLB fds, eventfds and other files */
#define FZ_VHOST_SLOTS	4	/* open /dev/vhost-vdpa-N descriptors */
#define FZ_HINTS	8	/* IOVAs worth looking up, per device */
#define FZ_PENDING	8	/* requests the op loop read, per slot */
#define FZ_RING		48	/* last operations kept for a report */
#define FZ_LINE		240	/* length of one logged line */

#define VDUSE_CTL_PATH	"/dev/vduse/control"
#define VDPA_SYSFS	"/sys/bus/vdpa"

/* ------------------------------------------------------------------ */
/* Random numbers: splitmix64, one generator per operation.            */

struct fz_rng {
	uint64_t s;
};

static inline uint64_t fz_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t fz_next(struct fz_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return fz_mix(r->s);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint32_t fz_below(struct fz_rng *r, uint32_t n)
{
	return n ? (uint32_t)(((fz_next(r) >> 32) * n) >> 32) : 0;
}

/* True with probability pct percent. */
static inline bool fz_pct(struct fz_rng *r, unsigned int pct)
{
	return fz_below(r, 100) < pct;
}

/* An "interesting" 32-bit value: edges, small, powers of two, random. */
uint32_t fz_u32(struct fz_rng *r);
uint64_t fz_u64(struct fz_rng *r);
void fz_fill(struct fz_rng *r, void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* State that outlives a batch (MAP_SHARED, set up by the parent).     */

/* What the fuzzer knows about a device it created. */
struct fz_devinfo {
	bool exists;		/* created and not destroyed, as far as known */
	uint32_t device_id;
	uint32_t vq_num;
	uint32_t ngroups;
	uint32_t nas;
	uint32_t config_size;
	uint32_t api;
	uint64_t features;
	uint64_t hints[FZ_HINTS];	/* IOVAs seen in VQ_GET_INFO etc. */
};

enum fz_counter {
	C_OPS, C_CALLS, C_CALLS_OK, C_CREATED, C_DESTROYED, C_ATTACHED,
	C_DETACHED, C_BOUND, C_OPENED, C_REQS, C_REPLIES, C_BAD_REPLIES,
	C_SILENT, C_FDS, C_MAPS, C_TOUCHES, C_SIGBUS, C_UMEM, C_VHOST,
	C_VHOST_CALLS, C_NL, C_BATCHES, C_CHILD_SIGNALED, C_CHILD_KILLED,
	C_DRIVER_OK, C_MAX
};

struct fz_shared {
	int stop;			/* the parent asks the batch to end */
	uint32_t batch;			/* batch running now */
	uint32_t op;			/* operation running now */
	uint64_t op_start_ms;		/* when it started; 0 between ops */
	uint64_t counters[C_MAX];
	struct fz_devinfo dev[FZ_NAMES];
	uint32_t ring_head;		/* next line of ring[] to write */
	char ring[FZ_RING][FZ_LINE];	/* last lines of the running batch */
	int klog_bad;			/* a bad kernel log line was seen */
	uint32_t klog_batch, klog_op;	/* ... after this operation */
	char klog[4096];		/* the lines */
};

extern struct fz_shared *fz_sh;
/* --known-crashes: do not step around the guest drivers' known bugs. */
extern bool fz_known_crashes;

static inline void fz_count(enum fz_counter c)
{
	__atomic_add_fetch(&fz_sh->counters[c], 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* A batch's descriptors.                                              */

struct fz_devslot {
	int fd;			/* -1 when free */
	int name;		/* index into fz_names[] */
	uint32_t pending[FZ_PENDING];	/* request ids read by the op loop */
	uint32_t pending_type[FZ_PENDING];
	int npending;
};

struct fz_map {
	void *addr;		/* NULL when free */
	size_t len;
	int name;
	bool writable;
};

struct fz_vhost {
	int fd;
	int name;
	uint64_t features;	/* the device's, from VHOST_GET_FEATURES */
	uint32_t nvqs;
};

struct fz {
	struct fz_rng rng;		/* the running operation's generator */
	uint64_t seed;
	uint32_t batch;
	uint32_t op;
	bool verbose;
	int hot[2];			/* names this batch mostly works on */
	bool sloppy[FZ_NAMES];		/* the responder misbehaves for it */

	pthread_mutex_t lock;		/* protects the tables below */
	int ctl[FZ_CTL_SLOTS];
	int ctl_api[FZ_CTL_SLOTS];	/* version devices get; -1 not asked */
	uint64_t ctl_feat[FZ_CTL_SLOTS];	/* VDUSE features set */
	struct fz_devslot dev[FZ_DEV_SLOTS];
	struct fz_map map[FZ_MAP_SLOTS];
	int file[FZ_FILE_SLOTS];
	struct fz_vhost vhost[FZ_VHOST_SLOTS];

	uint64_t t0_ms;			/* when the run started */
	int nl;				/* generic netlink socket, or -1 */
	int vdpa_family;		/* its family id, 0 if unknown */
	int kmsg;			/* /dev/kmsg, read after every op */

	unsigned char *scratch;		/* 64 KiB of argument space */
	unsigned char *ro_page;		/* readable, not writable */
	unsigned char *bad_page;	/* neither */
	unsigned char *edge;		/* last bytes before bad_page */
	unsigned char *memfd_map;	/* shared memfd for vhost IOTLB */
	size_t memfd_len;
	int memfd;

	pthread_t resp_thread;
	bool resp_running;
	bool resp_good;			/* answer everything correctly */
	int resp_stop;
	struct fz_rng resp_rng;
	int trace;			/* --trace file, or -1 */
};

extern const char *fz_names[FZ_NAMES];

/* ------------------------------------------------------------------ */
/* Logging: one line per call, kept in the ring, printed with -v.      */

void fz_log(struct fz *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "0", "3", or "-1 EINVAL": the result of a call returning r. */
const char *fz_res(long r, int err);
/* Log DESC = result, count the call, return r with errno preserved. */
long fz_call(struct fz *f, long r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same for a call that returns 0, a count, or -errno. */
long fz_callr(struct fz *f, long ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* Helpers shared by the operation files.                              */

uint64_t fz_now_ms(void);
int fz_sysfs_write(const char *path, const char *val);
int fz_sysfs_read(const char *path, char *buf, size_t len);
/* A pool name: mostly one of the batch's two hot ones. */
static inline int fz_name(struct fz *f)
{
	if (fz_pct(&f->rng, 75))
		return f->hot[fz_below(&f->rng, 2)];
	return fz_below(&f->rng, FZ_NAMES);
}
/* Slot helpers, under f->lock. */
int fz_pick_dev(struct fz *f, bool open_only);
int fz_free_file_slot(struct fz *f);
void fz_file_put(struct fz *f, int fd);
void fz_dev_close(struct fz *f, int slot);
void fz_map_drop(struct fz *f, int slot);
/* An argument pointer: usually BUF, sometimes NULL, a bad page, etc. */
void *fz_argp(struct fz *f, void *buf, size_t len);
void fz_hint_add(int name, uint64_t iova);
/*
 * Run FN(ARG) with SIGBUS and SIGSEGV caught (the operation thread only):
 * 0, or the signal that cut it short.
 */
int fz_guarded(void (*fn)(void *), void *arg);

/* Operation tables of each part. */
struct fz_op {
	const char *name;
	unsigned int weight;
	void (*fn)(struct fz *f);
};

extern const struct fz_op fz_ctl_ops[];
extern const struct fz_op fz_dev_ops[];
extern const struct fz_op fz_map_ops[];
extern const struct fz_op fz_vdpa_ops[];
extern const struct fz_op fz_vhost_ops[];

/* fz_ctl.c */
int fz_ctl_fd(struct fz *f);
unsigned long fz_near_cmd(struct fz_rng *r, bool dev);
int fz_destroy_name(int ctl, const char *name);
int fz_create(struct fz *f, int name, bool valid);

/* fz_vdpa.c */
int fz_nl_open(struct fz *f);
int fz_vdpa_dev_new(struct fz *f, const char *name, bool log);
int fz_vdpa_dev_del(struct fz *f, const char *name, bool log);
const char *fz_bound_to(const char *name, char *buf, size_t len);
void fz_vhost_close(struct fz *f, int slot);
void fz_vhost_close_name(struct fz *f, int name);

/* fz_dev.c */
int fz_dev_slot(struct fz *f);
/* Mostly an open slot whose device virtio_vdpa drives, if there is one. */
int fz_dev_slot_driven(struct fz *f);
int fz_dev_open(struct fz *f, int slot, int name);
/* A slot with NAME open, opening it if needed; -1 if that fails. */
int fz_dev_ensure(struct fz *f, int name);
/* Clear what crashes virtio_net from a config write at OFFSET. */
void fz_net_config_sanitize(const struct fz_devinfo *d, uint32_t offset,
			    uint8_t *buf, uint32_t len);
void fz_dev_setup_vqs(struct fz *f, int slot);
const struct fz_devinfo *fz_info(struct fz *f, int slot);

/* fz_resp.c */
struct vduse_dev_request;
void fz_resp_start(struct fz *f);
void fz_resp_stop(struct fz *f);
/* Answer REQ on FD the way the responder would, choices from R. */
void fz_resp_answer(struct fz *f, struct fz_rng *r, int fd,
		    const struct vduse_dev_request *req, bool good);
const char *fz_req_name(uint32_t type);

#endif /* _VDUSE_FUZZ_H */
