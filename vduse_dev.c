// SPDX-License-Identifier: GPL-2.0-only
/*
 * VDUSE: vDPA Device in Userspace.
 *
 * A daemon creates a virtio device through /dev/vduse/control, serves its
 * virtqueues through /dev/vduse/$NAME and answers the control requests the
 * kernel sends there.  "vdpa dev add ... mgmtdev vduse" puts the device on
 * the vDPA bus, where virtio_vdpa (kernel virtio drivers, DMA bounced
 * through iova_domain.c) or vhost_vdpa (a VM, guest memory mapped through
 * set_map) drive it.
 *
 * The file follows the data:
 *   1. device and virtqueue state, and who locks what
 *   2. the message channel (kernel requests, daemon replies)
 *   3. the vdpa ops the bus drivers call
 *   4. the map ops virtio_vdpa uses for DMA
 *   5. the per-device char device, its ioctls and sysfs
 *   6. the control device: API version, features, create, destroy
 *   7. the management device ("vdpa dev add/del")
 *   8. module init and exit
 *
 * Deliberate decisions (differences from the kernel's own module):
 *  - The address-space domains are created on the first "vdpa dev add"
 *    and reused by every later one; they live until the device is
 *    destroyed.  bounce_size therefore answers -EPERM once they exist.
 *  - The coherent allocator's first frame is counted in its own PAGE_SIZE
 *    granule (see iova_domain.c), so coherent IOVAs stay below the IOVA
 *    limit on 64 KiB-page kernels.  Streaming maps use 4 KiB slots.
 *  - VDUSE_DESTROY_DEV reads the name like strncpy_from_user(): a NUL
 *    terminated name is accepted even if the 256 bytes after the pointer
 *    are not all readable.
 *  - Names containing '/' or equal to "." or ".." are refused (-EINVAL)
 *    and "control" is reported as existing (-EEXIST): they cannot name a
 *    sysfs device next to the control node.
 *  - Mappings installed by vhost-vdpa through set_map are dropped when the
 *    vDPA device is released, so no VMM file stays pinned by a detached
 *    device.
 */

#include <linux/capability.h>
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/xarray.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <linux/vdpa.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/vhost_iotlb.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <uapi/linux/vduse.h>
#include <uapi/linux/virtio_blk.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_net.h>
#include <uapi/linux/virtio_ring.h>

#include "iova_domain.h"

#define CREATE_TRACE_POINTS
#include "vduse_trace.h"
/* Trace headers included later (the KUnit tests) only declare events. */
#undef CREATE_TRACE_POINTS

#define VDUSE_DEV_MAX			BIT(MINORBITS)
#define VDUSE_MAX_VQ_NUM		0xffff
#define VDUSE_MAX_GROUPS		0xffff
#define VDUSE_MAX_AS			0xffff
#define VDUSE_MIN_BOUNCE_SIZE		(1024 * 1024)
#define VDUSE_MAX_BOUNCE_SIZE		(1024 * 1024 * 1024)
#define VDUSE_DEFAULT_BOUNCE_SIZE	(64 * 1024 * 1024)
/* IOVA space of a domain: the largest bounce area plus coherent room. */
#define VDUSE_IOVA_SIZE			(VDUSE_MAX_BOUNCE_SIZE + 128 * 1024 * 1024)
#define VDUSE_MSG_DEFAULT_TIMEOUT	30
/* Control file state before GET_API_VERSION or SET_API_VERSION. */
#define VDUSE_API_VERSION_NOT_ASKED	U64_MAX
#define VDUSE_SUPPORTED_FEATURES	(BIT_ULL(VDUSE_F_QUEUE_READY) | \
					 BIT_ULL(VDUSE_F_SUSPEND))

static int max_iotlb_entries = 2048;
module_param(max_iotlb_entries, int, 0444);
MODULE_PARM_DESC(max_iotlb_entries,
		 "Maximum number of IOTLB entries per address space (default: 2048)");

/* ==================================================================== */
/* 1. Device and virtqueue state                                         */
/* ==================================================================== */

/*
 * Locks, outermost first:
 *
 *   vduse_lock (global mutex)
 *     the vduse_devs xarray, vduse_dev.vdev (attached or not) and
 *     vduse_dev.connected (device node open or not).
 *   vduse_dev.lock (mutex)
 *     everything the driver configures through vdpa ops or the daemon
 *     through ioctls: vq num_max/group/num/addresses/state/ready, status,
 *     driver_features, generation, suspended.  Hot paths read ready,
 *     status and suspended with READ_ONCE().
 *   vduse_dev.domain_lock (mutex)
 *     creation of the domains, bounce_size, umem (un)registration.
 *   vduse_virtqueue.kick_lock, vduse_virtqueue.irq_lock,
 *   vduse_dev.irq_lock, vduse_dev.config_lock (spinlocks, innermost)
 *     kick eventfd; interrupt callback and affinity; config callback;
 *     config space bytes.
 *   vduse_dev.msg_lock (spinlock, innermost, never held while sleeping)
 *     the two message lists, request ids, the broken flag and the
 *     message counters.
 *
 * The counters (debugfs vduse/stats) sit under the lock their path
 * already holds: kicks under kick_lock, interrupts under irq_lock,
 * messages under msg_lock.  A hot path pays one plain increment on a
 * line it owns.
 * Config interrupts, counted where no lock is held, use an atomic.
 *
 * No lock is held while the kernel waits for a reply from the daemon: the
 * daemon handles a request with ioctls that take the locks above.
 */
static DEFINE_MUTEX(vduse_lock);
/* Minor number -> device; minor 0 is the control node. */
static DEFINE_XARRAY_ALLOC(vduse_devs);

static dev_t vduse_major;
static struct cdev vduse_ctrl_cdev;
static struct cdev vduse_cdev;
static struct workqueue_struct *vduse_irq_wq;
static struct workqueue_struct *vduse_irq_bound_wq;

struct vduse_dev;

/**
 * struct vduse_vq_track - the requests a virtqueue has in flight
 * @desc: descriptor table, in the domain's coherent memory
 * @avail: driver area
 * @used: device area
 * @inflight: per head, times made available minus times used: in flight
 *	when positive
 * @num: ring size, a power of two
 * @avail_idx: avail->idx when last looked at
 * @used_idx: used->idx when last looked at
 *
 * A daemon that dies leaves the driver's requests in its rings, and
 * virtio_blk waits for them forever: no timeout, and removing the disk
 * waits too.  So for a block device on a split ring in kernel memory (a
 * virtio_vdpa driver), the module follows which heads are in flight: the
 * driver reclaims buffers only in its virtqueue callback, which only the
 * module runs, so looking at both rings just before each callback sees
 * every head go in and come out.  It looks just before and just after
 * each callback; counting, not ordering, keeps a head that the callback
 * reaped and the driver made available again right away in flight.  More
 * than @num new entries on a ring since the last look means the driver
 * reaps on its own (polling), and following stops.
 * When the daemon stays away (vduse_dev_dead_work()), the module completes
 * what is left with VIRTIO_BLK_S_IOERR.
 *
 * Protected by vduse_virtqueue.irq_lock.  @inflight NULL: not followed.
 */
struct vduse_vq_track {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	s8 *inflight;
	u16 num;
	u16 avail_idx;
	u16 used_idx;
};

/**
 * struct vduse_virtqueue - one virtqueue of a VDUSE device
 * @index: virtqueue index
 * @dev: owning device
 * @num_max: largest ring size (VDUSE_VQ_SETUP), 0 until set up
 * @group: virtqueue group (API version 1)
 * @num: ring size chosen by the driver, 0 until set
 * @desc_addr: IOVA of the descriptor area
 * @driver_addr: IOVA of the driver area
 * @device_addr: IOVA of the device area
 * @state: start state set by the driver
 * @ready: enabled by the driver
 * @ro_iova: first IOVA of the pages made read-only for the daemon while
 *	the queue is enabled (vduse_vq_protect())
 * @ro_size: their size in bytes, 0 when none
 * @kick_lock: protects @kickfd, @kicked and @kicks
 * @kickfd: eventfd signalled on kicks, or NULL
 * @kicked: a kick arrived while no eventfd was installed
 * @kicks: kicks passed on to the daemon (vduse/stats "kicks")
 * @kick_work: signals @kickfd where eventfds cannot be signalled directly
 * @irq_lock: protects @cb, @irq_affinity, @irq_effective_cpu, @irqs,
 *	@failed and @track
 * @cb: interrupt callback of the driver
 * @irq_affinity: CPUs that may run the callback
 * @irq_effective_cpu: CPU that ran the last injection
 * @irqs: interrupts passed on to the driver, by enum vduse_irq_path
 * @irq_kicks: @kicks when the last interrupt was injected
 * @inject_work: runs @cb
 * @failed: requests of a daemon that is gone, failed by the module
 * @track: requests in flight, followed for a block device's split ring
 * @kobj: the "vqN" sysfs directory; its release frees the virtqueue
 *
 * The fields from @num_max to @ro_size are protected by vduse_dev.lock.
 */
struct vduse_virtqueue {
	u32 index;
	struct vduse_dev *dev;

	u16 num_max;
	u32 group;
	u32 num;
	u64 desc_addr;
	u64 driver_addr;
	u64 device_addr;
	struct vdpa_vq_state state;
	bool ready;
	u64 ro_iova;
	u64 ro_size;

	spinlock_t kick_lock;	/* kickfd, kicked, kicks */
	struct eventfd_ctx *kickfd;
	bool kicked;
	u64 kicks;
	struct work_struct kick_work;

	spinlock_t irq_lock;	/* cb, irq_affinity, irq_effective_cpu, irqs */
	struct vdpa_callback cb;
	cpumask_var_t irq_affinity;
	int irq_effective_cpu;
	u64 irqs[VDUSE_IRQ_PATHS];
	u64 irq_kicks;
	struct work_struct inject_work;
	u64 failed;
	struct vduse_vq_track track;

	struct kobject kobj;
};

/**
 * struct vduse_vq_group - a virtqueue group, the map token of its queues
 * @dev: owning device
 * @asid: address space of the group, changed by set_group_asid
 *
 * Map ops resolve group -> address space -> domain on every call.  The
 * domains never go away while a vDPA device exists, so reading @asid with
 * READ_ONCE() is enough; moving a group while the driver has DMA in
 * flight is the driver's bug.
 */
struct vduse_vq_group {
	struct vduse_dev *dev;
	u32 asid;
};

/**
 * struct vduse_vdpa - the vDPA device of an attached VDUSE device
 * @vdpa: vDPA core device, first member as the core requires
 * @dev: the VDUSE device; NULL until allocation completes
 */
struct vduse_vdpa {
	struct vdpa_device vdpa;
	struct vduse_dev *dev;
};

/**
 * struct vduse_msg_stats - message counters of a device
 * @sent: requests queued for the daemon
 * @failed: replies with a result other than VDUSE_REQ_RESULT_OK
 * @timeouts: requests that got no reply within msg_timeout
 */
struct vduse_msg_stats {
	u64 sent;
	u64 failed;
	u64 timeouts;
};

/**
 * struct vduse_dev - a VDUSE device
 * @name: device name
 * @dev: the class device, parent of the vDPA device
 * @minor: char device minor
 * @api_version: API version it was created with
 * @vduse_features: VDUSE_F_* bits it was created with
 * @device_id: virtio device id
 * @vendor_id: virtio vendor id
 * @device_features: virtio features offered
 * @vq_num: number of virtqueues
 * @vq_align: ring alignment
 * @ngroups: number of virtqueue groups
 * @nas: number of address spaces
 * @config_size: size of @config
 * @vqs: the virtqueues
 * @groups: the virtqueue groups
 * @vdev: attached vDPA device or NULL; vduse_lock
 * @connected: the device node is open; vduse_lock, and msg_lock as well
 *	when set (vduse_dev_dead_work() reads it under msg_lock)
 * @lock: see the locking rules above
 * @status: virtio status accepted by the daemon
 * @driver_features: features written by the driver
 * @generation: config generation, bumped on reset
 * @suspended: suspended until the next reset (VDUSE_F_SUSPEND)
 * @config_lock: protects @config
 * @config: configuration space
 * @irq_lock: protects @config_cb
 * @config_cb: config change callback of the driver
 * @inject_work: runs @config_cb
 * @config_irqs: config interrupts injected (vduse/stats "config_irqs")
 * @msg_lock: protects @send_list, @recv_list, @msg_unique, @broken and
 *	@msg_stats
 * @send_list: requests waiting to be read
 * @recv_list: requests read and waiting for a reply
 * @waitq: readers and pollers of the device node
 * @msg_unique: next request id
 * @broken: a request timed out; the device stays unusable
 * @dead: the daemon stayed away longer than @msg_timeout; requests in
 *	flight were failed and new ones fail at once
 * @dead_work: declares the device dead @msg_timeout after the daemon
 *	closed it, unless it comes back (vduse_dev_dead_work())
 * @msg_stats: message counters (vduse/stats)
 * @msg_timeout: seconds to wait for a reply, 0 = forever
 * @domain_lock: protects @domains contents, @bounce_size and umem
 * @domains: one IOVA domain per address space, created on first attach
 * @bounce_size: total bounce size, shared by the address spaces
 */
struct vduse_dev {
	char *name;
	struct device *dev;
	int minor;
	u64 api_version;
	u64 vduse_features;
	u32 device_id;
	u32 vendor_id;
	u64 device_features;
	u32 vq_num;
	u32 vq_align;
	u32 ngroups;
	u32 nas;
	u32 config_size;
	struct vduse_virtqueue **vqs;
	struct vduse_vq_group *groups;

	struct vduse_vdpa *vdev;
	bool connected;

	struct mutex lock;	/* configuration state, see above */
	u8 status;
	u64 driver_features;
	u32 generation;
	bool suspended;

	spinlock_t config_lock;	/* config */
	void *config;

	spinlock_t irq_lock;	/* config_cb */
	struct vdpa_callback config_cb;
	struct work_struct inject_work;
	atomic64_t config_irqs;

	spinlock_t msg_lock;	/* lists, msg_unique, broken, msg_stats */
	struct list_head send_list;
	struct list_head recv_list;
	wait_queue_head_t waitq;
	u32 msg_unique;
	bool broken;
	bool dead;
	struct delayed_work dead_work;
	struct vduse_msg_stats msg_stats;
	unsigned int msg_timeout;

	struct mutex domain_lock;	/* domains, bounce_size, umem */
	struct vduse_iova_domain **domains;
	unsigned int bounce_size;
};

static struct vduse_virtqueue *vduse_dev_vq(struct vduse_dev *dev, u32 idx)
{
	if (idx >= dev->vq_num)
		return NULL;
	return dev->vqs[array_index_nospec(idx, dev->vq_num)];
}

static bool vduse_dev_has_feature(struct vduse_dev *dev, unsigned int bit)
{
	return READ_ONCE(dev->driver_features) & BIT_ULL(bit);
}

static bool vduse_dev_driver_ok(struct vduse_dev *dev)
{
	return READ_ONCE(dev->status) & VIRTIO_CONFIG_S_DRIVER_OK;
}

/* Kernel-version dependent helpers, kept small for a compat layer. */
static char *vduse_devnode(const struct device *dev, umode_t *mode)
{
	return kasprintf(GFP_KERNEL, "vduse/%s", dev_name(dev));
}

static const struct class vduse_class = {
	.name = "vduse",
	.devnode = vduse_devnode,
};

static int vduse_class_register(void)
{
	return class_register(&vduse_class);
}

static void vduse_class_unregister(void)
{
	class_unregister(&vduse_class);
}

static void vduse_eventfd_signal(struct eventfd_ctx *ctx)
{
	eventfd_signal(ctx);
}

static int vduse_install_fd(struct file *file)
{
	/* No O_CLOEXEC: the daemon may hand the fd to a helper process. */
	return receive_fd(file, NULL, 0);
}

/* ==================================================================== */
/* 2. Message channel                                                    */
/* ==================================================================== */

/*
 * Every request is synchronous for the kernel caller: it is queued on
 * send_list, moved to recv_list when the daemon reads it and completed
 * when the daemon writes the reply.  A reply that does not arrive within
 * msg_timeout seconds breaks the device for good; a caller killed while
 * waiting only fails its own request.  Requests read but not answered go
 * back to send_list when the device node is closed.
 *
 * A vduse_msg lives on the stack of the waiting caller.  Everybody else
 * touches it only under msg_lock while it is on one of the lists.
 */

/**
 * struct vduse_msg - one request and its reply
 * @list: entry in send_list or recv_list
 * @req: request given to the daemon
 * @resp: reply of the daemon
 * @done: completed once @resp is final
 * @completed: @resp is final (msg_lock)
 * @sent: when it was queued, for the latency in the reply's trace event
 */
struct vduse_msg {
	struct list_head list;
	struct vduse_dev_request req;
	struct vduse_dev_response resp;
	struct completion done;
	bool completed;
	ktime_t sent;
};

static struct vduse_msg *vduse_msg_find(struct list_head *head, u32 id)
{
	struct vduse_msg *msg;

	list_for_each_entry(msg, head, list)
		if (msg->req.request_id == id)
			return msg;
	return NULL;
}

static void vduse_msg_complete(struct vduse_msg *msg, u32 result)
{
	list_del_init(&msg->list);
	msg->resp.result = result;
	msg->completed = true;
	complete(&msg->done);
}

/* Fail every outstanding request and refuse new ones.  msg_lock held. */
static void vduse_dev_mark_broken_locked(struct vduse_dev *dev)
{
	struct vduse_msg *msg, *tmp;
	unsigned int failed = 0;
	bool was_broken = dev->broken;

	dev->broken = true;
	list_for_each_entry_safe(msg, tmp, &dev->send_list, list) {
		vduse_msg_complete(msg, VDUSE_REQ_RESULT_FAILED);
		failed++;
	}
	list_for_each_entry_safe(msg, tmp, &dev->recv_list, list) {
		vduse_msg_complete(msg, VDUSE_REQ_RESULT_FAILED);
		failed++;
	}
	if (!was_broken)
		trace_vduse_dev_broken(dev->name, failed);
}

static void vduse_dev_mark_broken(struct vduse_dev *dev)
{
	spin_lock(&dev->msg_lock);
	vduse_dev_mark_broken_locked(dev);
	spin_unlock(&dev->msg_lock);
	wake_up(&dev->waitq);
}

static long vduse_msg_timeout_jiffies(unsigned int seconds)
{
	if (seconds >= MAX_SCHEDULE_TIMEOUT / HZ)
		return MAX_SCHEDULE_TIMEOUT - 1;
	return (long)seconds * HZ;
}

/**
 * vduse_msg_send() - send a request and wait for its reply
 * @dev: the device
 * @msg: the request; msg->req.type and payload filled in, rest zeroed
 *
 * Return: 0 if the daemon answered VDUSE_REQ_RESULT_OK; -EIO if it
 * answered otherwise, if the device is broken, or if it breaks now
 * because the reply timed out; -EINTR if the caller was killed.
 */
static int vduse_msg_send(struct vduse_dev *dev, struct vduse_msg *msg)
{
	unsigned int timeout = READ_ONCE(dev->msg_timeout);
	long ret;

	init_completion(&msg->done);
	spin_lock(&dev->msg_lock);
	if (dev->broken) {
		spin_unlock(&dev->msg_lock);
		return -EIO;
	}
	msg->req.request_id = dev->msg_unique++;
	msg->sent = ktime_get();
	list_add_tail(&msg->list, &dev->send_list);
	dev->msg_stats.sent++;
	trace_vduse_msg_send(dev->name, msg->req.type, msg->req.request_id);
	spin_unlock(&dev->msg_lock);
	wake_up(&dev->waitq);

	if (timeout) {
		long jiffies = vduse_msg_timeout_jiffies(timeout);

		ret = wait_for_completion_killable_timeout(&msg->done, jiffies);
	} else {
		ret = wait_for_completion_killable(&msg->done) ?: 1;
	}

	spin_lock(&dev->msg_lock);
	if (!msg->completed) {
		list_del(&msg->list);
		if (!ret) {
			dev_err_ratelimited(dev->dev,
					    "request %u (type %u) timed out, device is broken\n",
					    msg->req.request_id, msg->req.type);
			dev->msg_stats.timeouts++;
			trace_vduse_msg_timeout(dev->name, msg->req.type,
						msg->req.request_id, timeout);
			vduse_dev_mark_broken_locked(dev);
		}
		spin_unlock(&dev->msg_lock);
		if (!ret)
			wake_up(&dev->waitq);
		return ret ? -EINTR : -EIO;
	}
	spin_unlock(&dev->msg_lock);

	return msg->resp.result == VDUSE_REQ_RESULT_OK ? 0 : -EIO;
}

static int vduse_msg_set_status(struct vduse_dev *dev, u8 status)
{
	struct vduse_msg msg = {};

	msg.req.type = VDUSE_SET_STATUS;
	msg.req.s.status = status;
	return vduse_msg_send(dev, &msg);
}

static int vduse_msg_get_vq_state(struct vduse_dev *dev,
				  struct vduse_virtqueue *vq,
				  struct vdpa_vq_state *state)
{
	struct vduse_msg msg = {};
	int ret;

	msg.req.type = VDUSE_GET_VQ_STATE;
	msg.req.vq_state.index = vq->index;
	ret = vduse_msg_send(dev, &msg);
	if (ret)
		return ret;

	memset(state, 0, sizeof(*state));
	if (vduse_dev_has_feature(dev, VIRTIO_F_RING_PACKED)) {
		struct vduse_vq_state_packed *p = &msg.resp.vq_state.packed;

		state->packed.last_avail_counter = p->last_avail_counter & 1;
		state->packed.last_avail_idx = p->last_avail_idx & 0x7fff;
		state->packed.last_used_counter = p->last_used_counter & 1;
		state->packed.last_used_idx = p->last_used_idx & 0x7fff;
	} else {
		state->split.avail_index = msg.resp.vq_state.split.avail_index;
	}
	return 0;
}

static int vduse_msg_update_iotlb(struct vduse_dev *dev, u32 asid,
				  u64 start, u64 last)
{
	struct vduse_msg msg = {};

	msg.req.type = VDUSE_UPDATE_IOTLB;
	if (dev->api_version >= VDUSE_API_VERSION_1) {
		msg.req.iova_v2.start = start;
		msg.req.iova_v2.last = last;
		msg.req.iova_v2.asid = asid;
	} else {
		msg.req.iova.start = start;
		msg.req.iova.last = last;
	}
	return vduse_msg_send(dev, &msg);
}

static int vduse_msg_set_group_asid(struct vduse_dev *dev, u32 group,
				    u32 asid)
{
	struct vduse_msg msg = {};

	msg.req.type = VDUSE_SET_VQ_GROUP_ASID;
	msg.req.vq_group_asid.group = group;
	msg.req.vq_group_asid.asid = asid;
	return vduse_msg_send(dev, &msg);
}

static int vduse_msg_set_vq_ready(struct vduse_dev *dev, u32 index,
				  bool ready)
{
	struct vduse_msg msg = {};

	msg.req.type = VDUSE_SET_VQ_READY;
	msg.req.vq_ready.num = index;
	msg.req.vq_ready.ready = ready;
	return vduse_msg_send(dev, &msg);
}

static int vduse_msg_suspend(struct vduse_dev *dev)
{
	struct vduse_msg msg = {};

	msg.req.type = VDUSE_SUSPEND;
	return vduse_msg_send(dev, &msg);
}

/* ==================================================================== */
/* 3. vdpa ops                                                           */
/* ==================================================================== */

/*
 * Kicks travel driver -> kick eventfd -> daemon; interrupts travel
 * daemon -> VDUSE_VQ_INJECT_IRQ -> driver callback, in the ioctl when the
 * daemon runs on a CPU of the virtqueue's affinity and through a
 * workqueue otherwise (or to the irqfd vhost-vdpa installed as trigger).
 * Both stop while a virtqueue is not ready and while the device is
 * suspended.
 */

static void vduse_vq_kick(struct vduse_virtqueue *vq)
{
	enum vduse_kick_path path;
	unsigned long flags;

	spin_lock_irqsave(&vq->kick_lock, flags);
	if (!READ_ONCE(vq->ready) || READ_ONCE(vq->dev->suspended))
		goto unlock;
	if (unlikely(READ_ONCE(vq->dev->dead))) {
		/* Nobody serves the ring: fail the new requests. */
		queue_work(vduse_irq_wq, &vq->inject_work);
		goto unlock;
	}
	if (!vq->kickfd) {
		vq->kicked = true;
		path = VDUSE_KICK_PENDING;
	} else if (eventfd_signal_allowed()) {
		vduse_eventfd_signal(vq->kickfd);
		path = VDUSE_KICK_EVENTFD;
	} else {
		queue_work(system_dfl_wq, &vq->kick_work);
		path = VDUSE_KICK_DEFERRED;
	}
	/* Read without the lock by vduse_vq_inject_irq(). */
	WRITE_ONCE(vq->kicks, vq->kicks + 1);
	trace_vduse_vq_kick(vq->dev->name, vq->index, path);
unlock:
	spin_unlock_irqrestore(&vq->kick_lock, flags);
}

static void vduse_vq_kick_work(struct work_struct *work)
{
	struct vduse_virtqueue *vq = container_of(work, struct vduse_virtqueue,
						  kick_work);
	unsigned long flags;

	spin_lock_irqsave(&vq->kick_lock, flags);
	if (vq->kickfd)
		vduse_eventfd_signal(vq->kickfd);
	spin_unlock_irqrestore(&vq->kick_lock, flags);
}

/* The domain of a group's current address space (NULL before attach). */
static struct vduse_iova_domain *
vduse_group_domain(const struct vduse_vq_group *group)
{
	struct vduse_dev *dev = group->dev;
	u32 asid = READ_ONCE(group->asid);

	return dev->domains[array_index_nospec(asid, dev->nas)];
}

/* The domain holding a virtqueue's rings. */
static struct vduse_iova_domain *vduse_vq_domain(struct vduse_virtqueue *vq)
{
	struct vduse_dev *dev = vq->dev;

	return vduse_group_domain(&dev->groups[array_index_nospec(vq->group,
								  dev->ngroups)]);
}

/* Stop following a virtqueue's requests.  irq_lock held. */
static void vduse_vq_track_stop(struct vduse_virtqueue *vq)
{
	kfree(vq->track.inflight);
	memset(&vq->track, 0, sizeof(vq->track));
}

/*
 * Follow the requests of a block device's split ring in kernel memory
 * from now on (see struct vduse_vq_track).  dev->lock held.
 */
static void vduse_vq_track_start(struct vduse_virtqueue *vq)
{
	struct vduse_dev *dev = vq->dev;
	struct vduse_iova_domain *domain;
	struct vduse_vq_track t = {};
	u32 num = vq->num;

	if (dev->device_id != VIRTIO_ID_BLOCK ||
	    vduse_dev_has_feature(dev, VIRTIO_F_RING_PACKED) ||
	    !is_power_of_2(num) || num > U16_MAX)
		return;
	domain = vduse_vq_domain(vq);
	if (!domain)
		return;
	t.desc = vduse_domain_coherent_va(domain, vq->desc_addr,
					  array_size(num, sizeof(*t.desc)));
	t.avail = vduse_domain_coherent_va(domain, vq->driver_addr,
					   struct_size(t.avail, ring, num));
	/* With avail_event after the ring, as vring_size() counts it. */
	t.used = vduse_domain_coherent_va(domain, vq->device_addr,
					  struct_size(t.used, ring, num) +
					  sizeof(__virtio16));
	if (!t.desc || !t.avail || !t.used)
		return;
	t.inflight = kzalloc(num, GFP_KERNEL);
	if (!t.inflight)
		return;
	t.num = num;

	spin_lock_irq(&vq->irq_lock);
	vduse_vq_track_stop(vq);
	t.avail_idx = __virtio16_to_cpu(true, READ_ONCE(t.avail->idx));
	t.used_idx = __virtio16_to_cpu(true, READ_ONCE(t.used->idx));
	vq->track = t;
	spin_unlock_irq(&vq->irq_lock);
}

/*
 * Count what the driver made available and the daemon used since the last
 * look.  irq_lock held.
 */
static void vduse_vq_track_update(struct vduse_virtqueue *vq)
{
	struct vduse_vq_track *t = &vq->track;
	u16 mask = t->num - 1, idx;
	u32 id;

	if (!t->inflight)
		return;
	idx = __virtio16_to_cpu(true, READ_ONCE(t->avail->idx));
	smp_rmb();	/* the entries after the index */
	if ((u16)(idx - t->avail_idx) > t->num)
		goto lost;
	for (; t->avail_idx != idx; t->avail_idx++) {
		id = __virtio16_to_cpu(true,
				       READ_ONCE(t->avail->ring[t->avail_idx & mask]));
		/* Bounded: a daemon may write any id to the used ring. */
		if (id < t->num && t->inflight[id] < 8)
			t->inflight[id]++;
	}
	idx = __virtio16_to_cpu(true, READ_ONCE(t->used->idx));
	smp_rmb();	/* the entries after the index */
	if ((u16)(idx - t->used_idx) > t->num)
		goto lost;
	for (; t->used_idx != idx; t->used_idx++) {
		id = __virtio32_to_cpu(true,
				       READ_ONCE(t->used->ring[t->used_idx & mask].id));
		if (id < t->num && t->inflight[id] > -8)
			t->inflight[id]--;
	}
	return;
lost:
	dev_warn_ratelimited(vq->dev->dev,
			     "vq %u: the driver reaps requests on its own; they are no longer followed\n",
			     vq->index);
	vduse_vq_track_stop(vq);
}

/*
 * The descriptor of @head's chain that takes virtio-blk's status byte:
 * the last one, device-writable.  A chain the driver did not build (the
 * memory is shared with the daemon) gives -EINVAL.
 */
static int vduse_vq_status_desc(struct vduse_iova_domain *domain,
				struct vduse_vq_track *t, u16 head,
				struct vring_desc *last)
{
	u16 flags = 0, next = head;
	unsigned int i, n = t->num;
	bool indirect = false;
	u64 table = 0;

	for (i = 0; i < n; i++) {
		if (indirect) {
			if (vduse_domain_rw(domain, table + next * sizeof(*last),
					    last, sizeof(*last), false))
				return -EINVAL;
		} else {
			*last = t->desc[next];
		}
		flags = __virtio16_to_cpu(true, last->flags);
		if (flags & VRING_DESC_F_INDIRECT) {
			u32 len = __virtio32_to_cpu(true, last->len);

			/* At most as many as vhost takes (no loop of 2^28). */
			if (indirect || len % sizeof(*last) || !len ||
			    len / sizeof(*last) > U16_MAX + 1)
				return -EINVAL;
			indirect = true;
			table = __virtio64_to_cpu(true, last->addr);
			n = len / sizeof(*last);
			next = 0;
			i = -1U;	/* the table's own walk starts */
			continue;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		next = __virtio16_to_cpu(true, last->next);
		if (next >= n)
			return -EINVAL;
	}
	if (i >= n || !(flags & VRING_DESC_F_WRITE) ||
	    !__virtio32_to_cpu(true, last->len))
		return -EINVAL;
	return 0;
}

/*
 * The daemon is gone: complete every request still in flight with
 * VIRTIO_BLK_S_IOERR, as the device would have.  irq_lock held.
 */
static unsigned int vduse_vq_fail_inflight(struct vduse_virtqueue *vq)
{
	struct vduse_iova_domain *domain = vduse_vq_domain(vq);
	struct vduse_vq_track *t = &vq->track;
	u8 status = VIRTIO_BLK_S_IOERR;
	struct vring_used_elem *elem;
	unsigned int failed = 0;
	struct vring_desc last;
	u16 head;

	if (!t->inflight || !domain)
		return 0;
	for (head = 0; head < t->num; head++) {
		if (t->inflight[head] <= 0)
			continue;
		if (vduse_vq_status_desc(domain, t, head, &last) ||
		    vduse_domain_rw(domain,
				    __virtio64_to_cpu(true, last.addr) +
				    __virtio32_to_cpu(true, last.len) - 1,
				    &status, 1, true))
			continue;
		elem = &t->used->ring[t->used_idx++ & (t->num - 1)];
		WRITE_ONCE(elem->id, __cpu_to_virtio32(true, head));
		WRITE_ONCE(elem->len, __cpu_to_virtio32(true, 1));
		t->inflight[head] = 0;
		failed++;
	}
	if (failed) {
		smp_wmb();	/* the entries before the index */
		WRITE_ONCE(t->used->idx, __cpu_to_virtio16(true, t->used_idx));
	}
	/*
	 * Ask for a kick on the next request, whatever the daemon asked
	 * for last (it may have turned kicks off while polling).
	 */
	WRITE_ONCE(t->used->flags, 0);
	WRITE_ONCE(*(__virtio16 *)&t->used->ring[t->num],
		   __cpu_to_virtio16(true, t->avail_idx));
	return failed;
}

/*
 * Run the driver's virtqueue callback as an interrupt would; on a dead
 * device, fail what is in flight first.  irq_lock held.
 */
static void vduse_vq_run_cb(struct vduse_virtqueue *vq)
{
	unsigned int failed;

	vduse_vq_track_update(vq);
	if (unlikely(READ_ONCE(vq->dev->dead))) {
		failed = vduse_vq_fail_inflight(vq);
		vq->failed += failed;
		if (failed)
			dev_warn_ratelimited(vq->dev->dev,
					     "vq %u: failed %u requests of a daemon that is gone\n",
					     vq->index, failed);
	}
	vq->cb.callback(vq->cb.private);
	vduse_vq_track_update(vq);
}

/* Run the driver's virtqueue callback as an interrupt would. */
static void vduse_vq_inject_work(struct work_struct *work)
{
	struct vduse_virtqueue *vq = container_of(work, struct vduse_virtqueue,
						  inject_work);

	spin_lock_irq(&vq->irq_lock);
	if (READ_ONCE(vq->ready) && !READ_ONCE(vq->dev->suspended) &&
	    vq->cb.callback)
		vduse_vq_run_cb(vq);
	spin_unlock_irq(&vq->irq_lock);
}

static void vduse_dev_inject_work(struct work_struct *work)
{
	struct vduse_dev *dev = container_of(work, struct vduse_dev,
					     inject_work);

	spin_lock_irq(&dev->irq_lock);
	if (dev->config_cb.callback)
		dev->config_cb.callback(dev->config_cb.private);
	spin_unlock_irq(&dev->irq_lock);
}

/*
 * A split ring's descriptor table is read back by the driver: when it
 * takes a buffer back it follows the chain by the flags of the table, so
 * a daemon that rewrites them makes it free descriptors still in use or
 * lose some (and virtio_net's removal then hits a BUG_ON).  A device
 * never writes that table: make its pages read-only for the daemon while
 * the queue is enabled, all but those the used ring shares.  Packed rings
 * are written by the device.  vduse_dev.lock held.
 */
static void vduse_vq_protect(struct vduse_virtqueue *vq)
{
	struct vduse_iova_domain *domain = vduse_vq_domain(vq);
	u64 size = 16ULL * vq->num, first, last, ufirst, ulast;

	if (!domain || !size || vq->ro_size ||
	    vduse_dev_has_feature(vq->dev, VIRTIO_F_RING_PACKED) ||
	    vq->desc_addr > U64_MAX - size ||
	    vq->device_addr > U64_MAX - (6 + 8ULL * vq->num))
		return;
	first = vq->desc_addr >> PAGE_SHIFT;
	last = (vq->desc_addr + size - 1) >> PAGE_SHIFT;
	ufirst = vq->device_addr >> PAGE_SHIFT;
	ulast = (vq->device_addr + 6 + 8ULL * vq->num - 1) >> PAGE_SHIFT;
	if (ufirst <= last && ulast >= first) {
		if (ufirst > first)
			last = ufirst - 1;
		else if (ulast < last)
			first = ulast + 1;
		else
			return;
	}
	size = (last - first + 1) << PAGE_SHIFT;
	if (vduse_domain_protect(domain, first << PAGE_SHIFT, size))
		return;
	vq->ro_iova = first << PAGE_SHIFT;
	vq->ro_size = size;
}

/* Undo vduse_vq_protect(), in whichever domain.  vduse_dev.lock held. */
static void vduse_vq_unprotect(struct vduse_virtqueue *vq)
{
	struct vduse_dev *dev = vq->dev;
	u32 i;

	if (!vq->ro_size)
		return;
	for (i = 0; i < dev->nas; i++)
		if (dev->domains[i])
			vduse_domain_unprotect(dev->domains[i], vq->ro_iova,
					       vq->ro_size);
	vq->ro_size = 0;
}

/* Forget what the driver configured in a virtqueue.  dev->lock held. */
static void vduse_vq_reset(struct vduse_virtqueue *vq)
{
	struct eventfd_ctx *kickfd;

	WRITE_ONCE(vq->ready, false);
	vduse_vq_unprotect(vq);
	vq->num = 0;
	vq->desc_addr = 0;
	vq->driver_addr = 0;
	vq->device_addr = 0;
	memset(&vq->state, 0, sizeof(vq->state));

	spin_lock_irq(&vq->kick_lock);
	kickfd = vq->kickfd;
	vq->kickfd = NULL;
	vq->kicked = false;
	spin_unlock_irq(&vq->kick_lock);
	if (kickfd)
		eventfd_ctx_put(kickfd);

	spin_lock_irq(&vq->irq_lock);
	memset(&vq->cb, 0, sizeof(vq->cb));
	vduse_vq_track_stop(vq);
	spin_unlock_irq(&vq->irq_lock);
}

/*
 * Return the device to its state after creation, whatever the daemon
 * said about the reset.  Group to address space assignments stay.
 */
static void vduse_dev_reset(struct vduse_dev *dev)
{
	u32 i;

	mutex_lock(&dev->domain_lock);
	for (i = 0; i < dev->nas; i++)
		if (dev->domains[i]) {
			vduse_domain_reset_bounce_map(dev->domains[i]);
			/* Free the bounce pages no mapping uses any more. */
			vduse_domain_reclaim(dev->domains[i]);
		}
	mutex_unlock(&dev->domain_lock);

	mutex_lock(&dev->lock);
	WRITE_ONCE(dev->status, 0);
	WRITE_ONCE(dev->driver_features, 0);
	WRITE_ONCE(dev->suspended, false);
	dev->generation++;

	spin_lock_irq(&dev->irq_lock);
	memset(&dev->config_cb, 0, sizeof(dev->config_cb));
	spin_unlock_irq(&dev->irq_lock);

	for (i = 0; i < dev->vq_num; i++)
		vduse_vq_reset(dev->vqs[i]);
	mutex_unlock(&dev->lock);

	flush_work(&dev->inject_work);
	for (i = 0; i < dev->vq_num; i++) {
		flush_work(&dev->vqs[i]->inject_work);
		flush_work(&dev->vqs[i]->kick_work);
	}
}

/*
 * virtio_net may put MAX_SKB_FRAGS + 2 buffers in one request; without
 * indirect descriptors a smaller ring cannot hold it and the guest's
 * virtio core warns and drops the buffer.
 */
#define VDUSE_NET_MIN_RING	((u32)(MAX_SKB_FRAGS + 2))

/*
 * The largest ring a driver may give @vq: its max_size, or 0 (unusable)
 * for a net queue shorter than VDUSE_NET_MIN_RING without indirect
 * descriptors.  "vdpa dev add" refuses such a device, but VQ_SETUP may
 * shrink a queue afterwards (API version 0 allows it at any time).
 */
static u16 vduse_vq_usable_max(struct vduse_virtqueue *vq)
{
	struct vduse_dev *dev = vq->dev;
	u16 num_max = READ_ONCE(vq->num_max);

	if (dev->device_id == VIRTIO_ID_NET && num_max < VDUSE_NET_MIN_RING &&
	    !(dev->device_features & BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC)))
		return 0;
	return num_max;
}

static struct vduse_dev *vdpa_to_vduse(struct vdpa_device *vdpa)
{
	return container_of(vdpa, struct vduse_vdpa, vdpa)->dev;
}

static int vduse_vdpa_set_vq_address(struct vdpa_device *vdpa, u16 idx,
				     u64 desc_area, u64 driver_area,
				     u64 device_area)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	struct vduse_virtqueue *vq = vduse_dev_vq(dev, idx);

	if (!vq)
		return -EINVAL;
	mutex_lock(&dev->lock);
	vq->desc_addr = desc_area;
	vq->driver_addr = driver_area;
	vq->device_addr = device_area;
	mutex_unlock(&dev->lock);
	return 0;
}

static void vduse_vdpa_kick_vq(struct vdpa_device *vdpa, u16 idx)
{
	struct vduse_virtqueue *vq = vduse_dev_vq(vdpa_to_vduse(vdpa), idx);

	if (vq)
		vduse_vq_kick(vq);
}

static void vduse_vdpa_set_vq_cb(struct vdpa_device *vdpa, u16 idx,
				 struct vdpa_callback *cb)
{
	struct vduse_virtqueue *vq = vduse_dev_vq(vdpa_to_vduse(vdpa), idx);

	if (!vq)
		return;
	spin_lock_irq(&vq->irq_lock);
	vq->cb.callback = cb->callback;
	vq->cb.private = cb->private;
	vq->cb.trigger = cb->trigger;
	spin_unlock_irq(&vq->irq_lock);
}

static void vduse_vdpa_set_vq_num(struct vdpa_device *vdpa, u16 idx, u32 num)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	struct vduse_virtqueue *vq = vduse_dev_vq(dev, idx);

	if (!vq)
		return;
	mutex_lock(&dev->lock);
	vq->num = num;
	mutex_unlock(&dev->lock);
}

static u16 vduse_vdpa_get_vq_size(struct vdpa_device *vdpa, u16 idx)
{
	struct vduse_virtqueue *vq = vduse_dev_vq(vdpa_to_vduse(vdpa), idx);
	u32 num;

	if (!vq)
		return 0;
	num = READ_ONCE(vq->num);
	return num ? num : vduse_vq_usable_max(vq);
}

static u32 vduse_vdpa_get_vq_group(struct vdpa_device *vdpa, u16 idx)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	struct vduse_virtqueue *vq = vduse_dev_vq(dev, idx);

	if (!vq || dev->api_version < VDUSE_API_VERSION_1)
		return 0;
	return READ_ONCE(vq->group);
}

static void vduse_vdpa_set_vq_ready(struct vdpa_device *vdpa, u16 idx,
				    bool ready)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	struct vduse_virtqueue *vq = vduse_dev_vq(dev, idx);

	if (!vq)
		return;
	mutex_lock(&dev->lock);
	WRITE_ONCE(vq->ready, ready);
	if (ready) {
		vduse_vq_protect(vq);
		vduse_vq_track_start(vq);
	} else {
		vduse_vq_unprotect(vq);
		spin_lock_irq(&vq->irq_lock);
		vduse_vq_track_stop(vq);
		spin_unlock_irq(&vq->irq_lock);
	}
	mutex_unlock(&dev->lock);

	/*
	 * With QUEUE_READY the daemon learns about the change at once.  The
	 * state is updated first so that VQ_GET_INFO issued while handling
	 * the request already agrees with it.
	 */
	if (!(dev->vduse_features & BIT_ULL(VDUSE_F_QUEUE_READY)))
		return;
	if (vduse_msg_set_vq_ready(dev, idx, ready) == -EIO)
		vduse_dev_mark_broken(dev);
}

static bool vduse_vdpa_get_vq_ready(struct vdpa_device *vdpa, u16 idx)
{
	struct vduse_virtqueue *vq = vduse_dev_vq(vdpa_to_vduse(vdpa), idx);

	return vq && READ_ONCE(vq->ready);
}

static int vduse_vdpa_set_vq_state(struct vdpa_device *vdpa, u16 idx,
				   const struct vdpa_vq_state *state)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	struct vduse_virtqueue *vq = vduse_dev_vq(dev, idx);

	if (!vq)
		return -EINVAL;
	mutex_lock(&dev->lock);
	vq->state = *state;
	mutex_unlock(&dev->lock);
	return 0;
}

static int vduse_vdpa_get_vq_state(struct vdpa_device *vdpa, u16 idx,
				   struct vdpa_vq_state *state)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	struct vduse_virtqueue *vq = vduse_dev_vq(dev, idx);

	if (!vq)
		return -EINVAL;
	return vduse_msg_get_vq_state(dev, vq, state);
}

static u32 vduse_vdpa_get_vq_align(struct vdpa_device *vdpa)
{
	return vdpa_to_vduse(vdpa)->vq_align;
}

static u64 vduse_vdpa_get_device_features(struct vdpa_device *vdpa)
{
	return vdpa_to_vduse(vdpa)->device_features;
}

static int vduse_vdpa_set_driver_features(struct vdpa_device *vdpa,
					  u64 features)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);

	mutex_lock(&dev->lock);
	WRITE_ONCE(dev->driver_features, features);
	mutex_unlock(&dev->lock);
	return 0;
}

static u64 vduse_vdpa_get_driver_features(struct vdpa_device *vdpa)
{
	return READ_ONCE(vdpa_to_vduse(vdpa)->driver_features);
}

static void vduse_vdpa_set_config_cb(struct vdpa_device *vdpa,
				     struct vdpa_callback *cb)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);

	spin_lock_irq(&dev->irq_lock);
	dev->config_cb.callback = cb->callback;
	dev->config_cb.private = cb->private;
	spin_unlock_irq(&dev->irq_lock);
}

static u16 vduse_vdpa_get_vq_num_max(struct vdpa_device *vdpa)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	u16 num_max = 0;
	u32 i;

	for (i = 0; i < dev->vq_num; i++)
		num_max = max(num_max, vduse_vq_usable_max(dev->vqs[i]));
	return num_max;
}

static u32 vduse_vdpa_get_device_id(struct vdpa_device *vdpa)
{
	return vdpa_to_vduse(vdpa)->device_id;
}

static u32 vduse_vdpa_get_vendor_id(struct vdpa_device *vdpa)
{
	return vdpa_to_vduse(vdpa)->vendor_id;
}

static u8 vduse_vdpa_get_status(struct vdpa_device *vdpa)
{
	return READ_ONCE(vdpa_to_vduse(vdpa)->status);
}

static int vduse_vdpa_reset(struct vdpa_device *vdpa)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	int ret = vduse_msg_set_status(dev, 0);

	vduse_dev_reset(dev);
	return ret;
}

static void vduse_vdpa_set_status(struct vdpa_device *vdpa, u8 status)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);

	if (!status) {
		vduse_vdpa_reset(vdpa);
		return;
	}
	/* A refused status is not stored: the driver sees it did not stick. */
	if (vduse_msg_set_status(dev, status))
		return;
	mutex_lock(&dev->lock);
	WRITE_ONCE(dev->status, status);
	mutex_unlock(&dev->lock);
}

static size_t vduse_vdpa_get_config_size(struct vdpa_device *vdpa)
{
	return vdpa_to_vduse(vdpa)->config_size;
}

/*
 * virtio-net's status field announces a link change with
 * VIRTIO_NET_S_ANNOUNCE, which the driver must acknowledge on the control
 * queue; VDUSE never offers one (VIRTIO_NET_F_CTRL_VQ is refused at
 * creation), so the bit can only come from a confused or hostile daemon,
 * and virtio_net would then send a command without a queue to send it on.
 * Clear it on the way to the driver.
 */
static void vduse_net_filter_status(struct vduse_dev *dev, unsigned int offset,
				    u8 *buf, unsigned int len)
{
	/* The low byte of the little-endian status field holds the bit. */
	unsigned int pos = offsetof(struct virtio_net_config, status);

	if (dev->device_id != VIRTIO_ID_NET || pos < offset ||
	    pos - offset >= len)
		return;
	buf[pos - offset] &= ~VIRTIO_NET_S_ANNOUNCE;
}

static void vduse_vdpa_get_config(struct vdpa_device *vdpa,
				  unsigned int offset, void *buf,
				  unsigned int len)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	unsigned int n = 0;

	spin_lock(&dev->config_lock);
	if (offset < dev->config_size) {
		n = min(len, dev->config_size - offset);
		memcpy(buf, dev->config + offset, n);
	}
	spin_unlock(&dev->config_lock);
	/* Bytes beyond the configuration space read as zero. */
	memset(buf + n, 0, len - n);
	vduse_net_filter_status(dev, offset, buf, n);
}

static void vduse_vdpa_set_config(struct vdpa_device *vdpa,
				  unsigned int offset, const void *buf,
				  unsigned int len)
{
	/* The configuration space is read-only for the driver. */
}

static u32 vduse_vdpa_get_generation(struct vdpa_device *vdpa)
{
	return READ_ONCE(vdpa_to_vduse(vdpa)->generation);
}

static int vduse_vdpa_set_vq_affinity(struct vdpa_device *vdpa, u16 idx,
				      const struct cpumask *cpu_mask)
{
	struct vduse_virtqueue *vq = vduse_dev_vq(vdpa_to_vduse(vdpa), idx);

	if (!vq)
		return -EINVAL;
	spin_lock_irq(&vq->irq_lock);
	if (cpu_mask)
		cpumask_copy(vq->irq_affinity, cpu_mask);
	else
		cpumask_setall(vq->irq_affinity);
	spin_unlock_irq(&vq->irq_lock);
	return 0;
}

static const struct cpumask *vduse_vdpa_get_vq_affinity(struct vdpa_device *vdpa,
							u16 idx)
{
	struct vduse_virtqueue *vq = vduse_dev_vq(vdpa_to_vduse(vdpa), idx);

	return vq ? vq->irq_affinity : cpu_possible_mask;
}

static int vduse_vdpa_suspend(struct vdpa_device *vdpa)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	int ret = vduse_msg_suspend(dev);

	if (ret)
		return ret;
	mutex_lock(&dev->lock);
	WRITE_ONCE(dev->suspended, true);
	mutex_unlock(&dev->lock);
	return 0;
}

static int vduse_vdpa_set_map(struct vdpa_device *vdpa, unsigned int asid,
			      struct vhost_iotlb *iotlb)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	struct vduse_iova_domain *domain;
	int ret;

	if (asid >= dev->nas)
		return -EINVAL;
	domain = dev->domains[array_index_nospec(asid, dev->nas)];

	ret = vduse_domain_set_map(domain, iotlb);
	if (ret)
		return ret;
	/* The daemon must drop every cached translation of this space. */
	ret = vduse_msg_update_iotlb(dev, asid, 0, ULLONG_MAX);
	if (ret)
		vduse_domain_clear_map(domain);
	return ret;
}

static int vduse_vdpa_set_group_asid(struct vdpa_device *vdpa,
				     unsigned int group, unsigned int asid)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	int ret;

	if (group >= dev->ngroups || asid >= dev->nas)
		return -EINVAL;
	/*
	 * The daemon never sees a group move while the driver runs.  7.x's
	 * vhost-vdpa refuses it before asking; older ones do not.
	 */
	if (vduse_dev_driver_ok(dev))
		return -EBUSY;
	/* Version 0 has a single group in a single address space. */
	if (dev->api_version < VDUSE_API_VERSION_1)
		return 0;

	ret = vduse_msg_set_group_asid(dev, group, asid);
	if (ret)
		return ret;
	WRITE_ONCE(dev->groups[array_index_nospec(group, dev->ngroups)].asid,
		   asid);
	return 0;
}

/*
 * The map token of a virtqueue is its group.  Bus drivers ask for it per
 * virtqueue, so the device-wide token (vdpa_device.vmap), which only
 * serves drivers of devices without get_vq_map, stays unset.
 */
static union virtio_map vduse_vdpa_get_vq_map(struct vdpa_device *vdpa,
					      u16 idx)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	struct vduse_virtqueue *vq = vduse_dev_vq(dev, idx);
	union virtio_map map = { .group = &dev->groups[0] };
	u32 group;

	if (vq && dev->api_version >= VDUSE_API_VERSION_1) {
		group = READ_ONCE(vq->group);
		map.group = &dev->groups[array_index_nospec(group,
							    dev->ngroups)];
	}
	return map;
}

/*
 * The vDPA device is gone: forget it, and drop the mappings its driver
 * installed with set_map.  Runs once the core's last reference is put.
 */
static void vduse_vdpa_free(struct vdpa_device *vdpa)
{
	struct vduse_dev *dev = vdpa_to_vduse(vdpa);
	u32 i;

	/* Allocation failed before the device was linked to us. */
	if (!dev)
		return;

	for (i = 0; i < dev->nas; i++)
		if (dev->domains[i])
			vduse_domain_clear_map(dev->domains[i]);

	mutex_lock(&vduse_lock);
	dev->vdev = NULL;
	/* No driver left to fail requests for. */
	cancel_delayed_work(&dev->dead_work);
	mutex_unlock(&vduse_lock);
}

/*
 * Two tables: vhost-vdpa advertises suspend when the op exists, so it is
 * only present for devices created with VDUSE_F_SUSPEND.
 */
#define VDUSE_VDPA_COMMON_OPS						\
	.set_vq_address		= vduse_vdpa_set_vq_address,		\
	.kick_vq		= vduse_vdpa_kick_vq,			\
	.set_vq_cb		= vduse_vdpa_set_vq_cb,			\
	.set_vq_num		= vduse_vdpa_set_vq_num,		\
	.get_vq_size		= vduse_vdpa_get_vq_size,		\
	.get_vq_group		= vduse_vdpa_get_vq_group,		\
	.set_vq_ready		= vduse_vdpa_set_vq_ready,		\
	.get_vq_ready		= vduse_vdpa_get_vq_ready,		\
	.set_vq_state		= vduse_vdpa_set_vq_state,		\
	.get_vq_state		= vduse_vdpa_get_vq_state,		\
	.get_vq_align		= vduse_vdpa_get_vq_align,		\
	.get_device_features	= vduse_vdpa_get_device_features,	\
	.set_driver_features	= vduse_vdpa_set_driver_features,	\
	.get_driver_features	= vduse_vdpa_get_driver_features,	\
	.set_config_cb		= vduse_vdpa_set_config_cb,		\
	.get_vq_num_max		= vduse_vdpa_get_vq_num_max,		\
	.get_device_id		= vduse_vdpa_get_device_id,		\
	.get_vendor_id		= vduse_vdpa_get_vendor_id,		\
	.get_status		= vduse_vdpa_get_status,		\
	.set_status		= vduse_vdpa_set_status,		\
	.get_config_size	= vduse_vdpa_get_config_size,		\
	.get_config		= vduse_vdpa_get_config,		\
	.set_config		= vduse_vdpa_set_config,		\
	.get_generation		= vduse_vdpa_get_generation,		\
	.set_vq_affinity	= vduse_vdpa_set_vq_affinity,		\
	.get_vq_affinity	= vduse_vdpa_get_vq_affinity,		\
	.reset			= vduse_vdpa_reset,			\
	.set_map		= vduse_vdpa_set_map,			\
	.set_group_asid		= vduse_vdpa_set_group_asid,		\
	.get_vq_map		= vduse_vdpa_get_vq_map,		\
	.free			= vduse_vdpa_free

static const struct vdpa_config_ops vduse_vdpa_ops = {
	VDUSE_VDPA_COMMON_OPS,
};

static const struct vdpa_config_ops vduse_vdpa_suspend_ops = {
	VDUSE_VDPA_COMMON_OPS,
	.suspend		= vduse_vdpa_suspend,
};

/* ==================================================================== */
/* 4. Map ops                                                            */
/* ==================================================================== */

/*
 * virtio_vdpa maps through these with the token get_vq_map returned: a
 * virtqueue group.  The group's current address space selects the domain.
 */

static struct vduse_iova_domain *vduse_map_domain(union virtio_map map)
{
	return map.group ? vduse_group_domain(map.group) : NULL;
}

static dma_addr_t vduse_map_map_page(union virtio_map map, struct page *page,
				     unsigned long offset, size_t size,
				     enum dma_data_direction dir,
				     unsigned long attrs)
{
	struct vduse_iova_domain *domain = vduse_map_domain(map);

	if (!domain)
		return DMA_MAPPING_ERROR;
	return vduse_domain_map_page(domain, page, offset, size, dir, attrs);
}

static void vduse_map_unmap_page(union virtio_map map, dma_addr_t dma_addr,
				 size_t size, enum dma_data_direction dir,
				 unsigned long attrs)
{
	struct vduse_iova_domain *domain = vduse_map_domain(map);

	if (domain)
		vduse_domain_unmap_page(domain, dma_addr, size, dir, attrs);
}

static void vduse_map_sync_single_for_cpu(union virtio_map map,
					  dma_addr_t dma_addr, size_t size,
					  enum dma_data_direction dir)
{
	struct vduse_iova_domain *domain = vduse_map_domain(map);

	if (domain)
		vduse_domain_sync_single_for_cpu(domain, dma_addr, size, dir);
}

static void vduse_map_sync_single_for_device(union virtio_map map,
					     dma_addr_t dma_addr, size_t size,
					     enum dma_data_direction dir)
{
	struct vduse_iova_domain *domain = vduse_map_domain(map);

	if (domain)
		vduse_domain_sync_single_for_device(domain, dma_addr, size,
						    dir);
}

static void *vduse_map_alloc(union virtio_map map, size_t size,
			     dma_addr_t *dma_addr, gfp_t gfp)
{
	struct vduse_iova_domain *domain = vduse_map_domain(map);
	void *vaddr = NULL;

	*dma_addr = DMA_MAPPING_ERROR;
	if (domain)
		vaddr = vduse_domain_alloc_coherent(domain, size, dma_addr,
						    gfp);
	return vaddr;
}

static void vduse_map_free(union virtio_map map, size_t size, void *vaddr,
			   dma_addr_t dma_addr, unsigned long attrs)
{
	struct vduse_iova_domain *domain = vduse_map_domain(map);

	if (domain && vaddr)
		vduse_domain_free_coherent(domain, size, vaddr, dma_addr);
}

static bool vduse_map_need_sync(union virtio_map map, dma_addr_t dma_addr)
{
	struct vduse_iova_domain *domain = vduse_map_domain(map);

	return domain && vduse_domain_need_sync(domain, dma_addr);
}

static int vduse_map_mapping_error(union virtio_map map, dma_addr_t dma_addr)
{
	return dma_addr == DMA_MAPPING_ERROR ? -ENOMEM : 0;
}

static size_t vduse_map_max_mapping_size(union virtio_map map)
{
	struct vduse_iova_domain *domain = vduse_map_domain(map);

	return domain ? vduse_domain_max_map_size(domain) : 0;
}

static const struct virtio_map_ops vduse_map_ops = {
	.map_page		= vduse_map_map_page,
	.unmap_page		= vduse_map_unmap_page,
	.sync_single_for_cpu	= vduse_map_sync_single_for_cpu,
	.sync_single_for_device	= vduse_map_sync_single_for_device,
	.alloc			= vduse_map_alloc,
	.free			= vduse_map_free,
	.need_sync		= vduse_map_need_sync,
	.mapping_error		= vduse_map_mapping_error,
	.max_mapping_size	= vduse_map_max_mapping_size,
};

/* ==================================================================== */
/* 5. Per-device char device, ioctls and sysfs                           */
/* ==================================================================== */

/*
 * /dev/vduse/$NAME has one opener at a time.  Its file is the message
 * channel (read requests, write replies) and the target of the device
 * ioctls.  Closing it keeps the device and its vDPA attachment.
 */

/*
 * The daemon closed the device node while the driver was using it and did
 * not come back within msg_timeout: break the device and fail the requests
 * it left in flight (block devices; see struct vduse_vq_track).  New
 * requests fail as they are kicked.  A daemon that comes back later finds
 * the device broken: only DESTROY_DEV remains.
 */
static void vduse_dev_dead_work(struct work_struct *work)
{
	struct vduse_dev *dev = container_of(to_delayed_work(work),
					     struct vduse_dev, dead_work);
	bool was_dead;
	u32 i;

	spin_lock(&dev->msg_lock);
	if (READ_ONCE(dev->connected)) {
		spin_unlock(&dev->msg_lock);
		return;
	}
	was_dead = dev->dead;
	WRITE_ONCE(dev->dead, true);
	vduse_dev_mark_broken_locked(dev);
	spin_unlock(&dev->msg_lock);
	if (!was_dead)
		dev_warn(dev->dev, "daemon gone for %u s: failing its requests\n",
			 READ_ONCE(dev->msg_timeout));

	for (i = 0; i < dev->vq_num; i++)
		queue_work(vduse_irq_wq, &dev->vqs[i]->inject_work);
	/*
	 * Kicks fail new requests; look again every second in case the
	 * driver does not kick (a daemon's last word may have been to turn
	 * kicks off), for as long as a driver is attached.
	 */
	if (READ_ONCE(dev->vdev))
		mod_delayed_work(system_dfl_wq, &dev->dead_work, HZ);
}

static int vduse_dev_open(struct inode *inode, struct file *file)
{
	struct vduse_dev *dev;
	int ret = 0;

	mutex_lock(&vduse_lock);
	dev = xa_load(&vduse_devs, iminor(inode));
	if (!dev)
		ret = -ENODEV;
	else if (dev->connected)
		ret = -EBUSY;
	if (!ret) {
		/* Back in time: nothing is failed (see vduse_dev_dead_work()). */
		spin_lock(&dev->msg_lock);
		WRITE_ONCE(dev->connected, true);
		spin_unlock(&dev->msg_lock);
		cancel_delayed_work(&dev->dead_work);
	}
	mutex_unlock(&vduse_lock);
	if (ret)
		return ret;

	file->private_data = dev;
	return stream_open(inode, file);
}

static int vduse_dev_release(struct inode *inode, struct file *file)
{
	struct vduse_dev *dev = file->private_data;
	unsigned int timeout;
	u32 i;

	/* Unanswered requests are read again by the next opener. */
	spin_lock(&dev->msg_lock);
	list_splice_init(&dev->recv_list, &dev->send_list);
	spin_unlock(&dev->msg_lock);

	mutex_lock(&dev->domain_lock);
	for (i = 0; i < dev->nas; i++)
		if (dev->domains[i])
			vduse_domain_drop_umem(dev->domains[i]);
	mutex_unlock(&dev->domain_lock);

	mutex_lock(&vduse_lock);
	WRITE_ONCE(dev->connected, false);
	/* A driver is using the device: wait for the daemon to come back. */
	timeout = READ_ONCE(dev->msg_timeout);
	if (dev->vdev && timeout && dev->device_id == VIRTIO_ID_BLOCK &&
	    vduse_dev_driver_ok(dev))
		mod_delayed_work(system_dfl_wq, &dev->dead_work,
				 vduse_msg_timeout_jiffies(timeout));
	mutex_unlock(&vduse_lock);
	return 0;
}

static bool vduse_msg_pending(struct vduse_dev *dev)
{
	return !list_empty_careful(&dev->send_list);
}

static ssize_t vduse_dev_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct file *file = iocb->ki_filp;
	struct vduse_dev *dev = file->private_data;
	struct vduse_dev_request req;
	struct vduse_msg *msg;
	int ret;

	if (iov_iter_count(to) < sizeof(req))
		return -EINVAL;

	spin_lock(&dev->msg_lock);
	while (list_empty(&dev->send_list)) {
		spin_unlock(&dev->msg_lock);
		if ((file->f_flags & O_NONBLOCK) ||
		    (iocb->ki_flags & IOCB_NOWAIT))
			return -EAGAIN;
		ret = wait_event_interruptible_exclusive(dev->waitq,
							 vduse_msg_pending(dev));
		if (ret)
			return ret;
		spin_lock(&dev->msg_lock);
	}
	msg = list_first_entry(&dev->send_list, struct vduse_msg, list);
	list_move_tail(&msg->list, &dev->recv_list);
	req = msg->req;
	spin_unlock(&dev->msg_lock);

	if (copy_to_iter(&req, sizeof(req), to) == sizeof(req)) {
		trace_vduse_msg_read(dev->name, req.type, req.request_id);
		return sizeof(req);
	}

	/* Put it back at the head, unless it completed meanwhile. */
	spin_lock(&dev->msg_lock);
	msg = vduse_msg_find(&dev->recv_list, req.request_id);
	if (msg)
		list_move(&msg->list, &dev->send_list);
	spin_unlock(&dev->msg_lock);
	wake_up(&dev->waitq);
	return -EFAULT;
}

static ssize_t vduse_dev_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct vduse_dev *dev = iocb->ki_filp->private_data;
	struct vduse_dev_response resp;
	struct vduse_msg *msg;
	int ret = -ENOENT;

	if (iov_iter_count(from) < sizeof(resp))
		return -EINVAL;
	/* Like the stock module: an unreadable reply is an invalid one. */
	if (!copy_from_iter_full(&resp, sizeof(resp), from))
		return -EINVAL;
	if (memchr_inv(resp.reserved, 0, sizeof(resp.reserved)))
		return -EINVAL;

	spin_lock(&dev->msg_lock);
	msg = vduse_msg_find(&dev->recv_list, resp.request_id);
	if (msg) {
		trace_vduse_msg_reply(dev->name, msg->req.type,
				      resp.request_id, resp.result, msg->sent);
		if (resp.result != VDUSE_REQ_RESULT_OK)
			dev->msg_stats.failed++;
		msg->resp = resp;
		vduse_msg_complete(msg, resp.result);
		ret = sizeof(resp);
	}
	spin_unlock(&dev->msg_lock);

	return ret;
}

static __poll_t vduse_dev_poll(struct file *file, poll_table *wait)
{
	struct vduse_dev *dev = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &dev->waitq, wait);

	spin_lock(&dev->msg_lock);
	if (dev->broken)
		mask |= EPOLLERR;
	if (!list_empty(&dev->send_list))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (!list_empty(&dev->recv_list))
		mask |= EPOLLOUT | EPOLLWRNORM;
	spin_unlock(&dev->msg_lock);

	return mask;
}

/* Resolve an address space and look up a region of its IOTLB. */
static int vduse_dev_find_region(struct vduse_dev *dev, u32 asid,
				 u64 start, u64 last,
				 struct vduse_domain_region *region)
{
	struct vduse_iova_domain *domain;
	int ret = -EINVAL;

	if (start > last || asid >= dev->nas)
		return -EINVAL;

	mutex_lock(&dev->domain_lock);
	domain = dev->domains[array_index_nospec(asid, dev->nas)];
	if (domain)
		ret = vduse_domain_find_region(domain, start, last, region);
	mutex_unlock(&dev->domain_lock);
	return ret;
}

/* Perm bits of the IOTLB are the VDUSE_ACCESS_* values. */
static u8 vduse_perm(u32 perm)
{
	return perm & VDUSE_ACCESS_RW;
}

/*
 * The fd is installed only after the entry was copied out, so a fault on
 * the copy never leaves a stray descriptor behind.
 */
static long vduse_dev_finish_get_fd(struct file *file, void __user *argp,
				    const void *entry, size_t size)
{
	long ret = -EFAULT;

	if (!copy_to_user(argp, entry, size))
		ret = vduse_install_fd(file);
	fput(file);
	return ret;
}

static long vduse_dev_ioctl_get_fd(struct vduse_dev *dev, void __user *argp)
{
	struct vduse_domain_region region;
	struct vduse_iotlb_entry entry;
	int ret;

	if (copy_from_user(&entry, argp, sizeof(entry)))
		return -EFAULT;
	ret = vduse_dev_find_region(dev, 0, entry.start, entry.last, &region);
	if (ret)
		return ret;

	memset(&entry, 0, sizeof(entry));
	entry.offset = region.offset;
	entry.start = region.start;
	entry.last = region.last;
	entry.perm = vduse_perm(region.perm);
	return vduse_dev_finish_get_fd(region.file, argp, &entry,
				       sizeof(entry));
}

static long vduse_dev_ioctl_get_fd2(struct vduse_dev *dev, void __user *argp)
{
	struct vduse_domain_region region;
	struct vduse_iotlb_entry_v2 entry;
	u32 asid;
	int ret;

	if (dev->api_version < VDUSE_API_VERSION_1)
		return -ENOTTY;
	if (copy_from_user(&entry, argp, sizeof(entry)))
		return -EFAULT;
	if (memchr_inv(entry.reserved, 0, sizeof(entry.reserved)))
		return -EINVAL;
	asid = entry.asid;
	ret = vduse_dev_find_region(dev, asid, entry.start, entry.last,
				    &region);
	if (ret)
		return ret;

	memset(&entry, 0, sizeof(entry));
	entry.offset = region.offset;
	entry.start = region.start;
	entry.last = region.last;
	entry.perm = vduse_perm(region.perm);
	entry.asid = asid;
	return vduse_dev_finish_get_fd(region.file, argp, &entry,
				       sizeof(entry));
}

static long vduse_dev_ioctl_set_config(struct vduse_dev *dev,
				       void __user *argp)
{
	struct vduse_config_data data;
	void *buf;

	if (copy_from_user(&data, argp, sizeof(data)))
		return -EFAULT;
	if (data.offset > dev->config_size || !data.length ||
	    data.length > dev->config_size - data.offset)
		return -EINVAL;

	buf = memdup_user(argp + sizeof(data), data.length);
	if (IS_ERR(buf))
		return PTR_ERR(buf);

	spin_lock(&dev->config_lock);
	memcpy(dev->config + data.offset, buf, data.length);
	spin_unlock(&dev->config_lock);
	kfree(buf);
	return 0;
}

static long vduse_dev_ioctl_inject_config_irq(struct vduse_dev *dev)
{
	if (!vduse_dev_driver_ok(dev))
		return -EINVAL;
	atomic64_inc(&dev->config_irqs);
	trace_vduse_dev_inject_config_irq(dev->name);
	queue_work(vduse_irq_wq, &dev->inject_work);
	return 0;
}

static long vduse_vq_setup(struct vduse_dev *dev, void __user *argp)
{
	struct vduse_vq_config config;
	struct vduse_virtqueue *vq;
	long ret = 0;

	if (copy_from_user(&config, argp, sizeof(config)))
		return -EFAULT;
	vq = vduse_dev_vq(dev, config.index);
	if (!vq || config.reserved1 ||
	    memchr_inv(config.reserved2, 0, sizeof(config.reserved2)))
		return -EINVAL;
	if (dev->api_version < VDUSE_API_VERSION_1 ? config.group != 0 :
	    config.group >= dev->ngroups)
		return -EINVAL;

	mutex_lock(&dev->lock);
	/* Groups are fixed once the driver is running (-EINVAL as stock). */
	if (dev->api_version >= VDUSE_API_VERSION_1 &&
	    (dev->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
		ret = -EINVAL;
	} else {
		WRITE_ONCE(vq->num_max, config.max_size);
		WRITE_ONCE(vq->group, config.group);
	}
	mutex_unlock(&dev->lock);
	return ret;
}

/* Fill @info for the virtqueue @info->index (already validated). */
static void vduse_vq_get_info(struct vduse_dev *dev,
			      struct vduse_virtqueue *vq,
			      struct vduse_vq_info *info)
{
	memset(info, 0, sizeof(*info));
	info->index = vq->index;

	mutex_lock(&dev->lock);
	info->num = vq->num;
	info->desc_addr = vq->desc_addr;
	info->driver_addr = vq->driver_addr;
	info->device_addr = vq->device_addr;
	if (dev->driver_features & BIT_ULL(VIRTIO_F_RING_PACKED)) {
		info->packed.last_avail_counter =
			vq->state.packed.last_avail_counter;
		info->packed.last_avail_idx = vq->state.packed.last_avail_idx;
		info->packed.last_used_counter =
			vq->state.packed.last_used_counter;
		info->packed.last_used_idx = vq->state.packed.last_used_idx;
	} else {
		info->split.avail_index = vq->state.split.avail_index;
	}
	info->ready = vq->ready;
	mutex_unlock(&dev->lock);
}

static long vduse_vq_ioctl_get_info(struct vduse_dev *dev, void __user *argp)
{
	struct vduse_vq_info info;
	struct vduse_virtqueue *vq;
	u32 index;

	if (get_user(index, (u32 __user *)argp))
		return -EFAULT;
	vq = vduse_dev_vq(dev, index);
	if (!vq)
		return -EINVAL;

	vduse_vq_get_info(dev, vq, &info);
	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long vduse_vq_setup_kickfd(struct vduse_dev *dev, void __user *argp)
{
	struct eventfd_ctx *ctx = NULL, *old;
	struct vduse_vq_eventfd eventfd;
	struct vduse_virtqueue *vq;

	if (copy_from_user(&eventfd, argp, sizeof(eventfd)))
		return -EFAULT;
	vq = vduse_dev_vq(dev, eventfd.index);
	if (!vq)
		return -EINVAL;

	if (eventfd.fd >= 0) {
		ctx = eventfd_ctx_fdget(eventfd.fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
	} else if (eventfd.fd != VDUSE_EVENTFD_DEASSIGN) {
		/* Other negative values are accepted and ignored. */
		return 0;
	}

	spin_lock_irq(&vq->kick_lock);
	old = vq->kickfd;
	vq->kickfd = ctx;
	/* Deliver a kick that arrived while no eventfd was installed. */
	if (ctx && READ_ONCE(vq->ready) && vq->kicked) {
		vduse_eventfd_signal(ctx);
		vq->kicked = false;
	}
	spin_unlock_irq(&vq->kick_lock);

	if (old)
		eventfd_ctx_put(old);
	return 0;
}

/*
 * Count and trace an interrupt on its way to the driver, before the
 * callback runs: events the callback causes come after it.  irq_lock held.
 */
static void vduse_vq_irq_injected(struct vduse_virtqueue *vq,
				  enum vduse_irq_path path, int cpu)
{
	vq->irqs[path]++;
	trace_vduse_vq_inject_irq(vq->dev->name, vq->index, path, cpu);
}

/*
 * Next online CPU of the affinity mask, round robin, other than @self
 * unless @self is the only one.  -1 when the mask has no online CPU.
 * irq_lock held.
 */
static int vduse_vq_next_cpu(struct vduse_virtqueue *vq, int self)
{
	int cpu = vq->irq_effective_cpu;
	int i;

	for (i = 0; i < 2; i++) {
		cpu = cpumask_next_and(cpu, vq->irq_affinity, cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_first_and(vq->irq_affinity,
						cpu_online_mask);
		if (cpu >= nr_cpu_ids) {
			cpu = -1;
			break;
		}
		if (cpu != self)
			break;
	}
	vq->irq_effective_cpu = cpu;
	return cpu;
}

/* Is @cpu the only online CPU of the affinity mask?  irq_lock held. */
static bool vduse_vq_only_cpu(struct vduse_virtqueue *vq, int cpu)
{
	return cpumask_first_and(vq->irq_affinity, cpu_online_mask) == cpu &&
	       cpumask_next_and(cpu, vq->irq_affinity, cpu_online_mask) >=
	       nr_cpu_ids;
}

static long vduse_vq_inject_irq(struct vduse_dev *dev, void __user *argp)
{
	struct vduse_virtqueue *vq;
	bool kicked;
	long ret = 0;
	u64 kicks;
	u32 index;
	int cpu;

	if (get_user(index, (u32 __user *)argp))
		return -EFAULT;
	vq = vduse_dev_vq(dev, index);
	if (!vq)
		return -EINVAL;

	/* Softirqs the callback raises run when bottom halves come back on. */
	local_bh_disable();
	spin_lock_irq(&vq->irq_lock);
	if (READ_ONCE(dev->suspended))
		goto unlock;
	/* vhost-vdpa's irqfd: signal it directly. */
	if (READ_ONCE(vq->ready) && vq->cb.trigger) {
		vduse_vq_irq_injected(vq, VDUSE_IRQ_IRQFD, -1);
		vduse_eventfd_signal(vq->cb.trigger);
		goto unlock;
	}
	if (!vduse_dev_driver_ok(dev)) {
		ret = -EINVAL;
		goto unlock;
	}
	/*
	 * The daemon runs on a CPU the driver takes this interrupt on: run
	 * the callback here, with interrupts off as a handler would, rather
	 * than wake a worker (a context switch, often a second CPU, for
	 * every completion).
	 *
	 * Only when the driver kicked since the last interrupt, though: then
	 * it waits for this completion (a shallow queue, where latency
	 * counts).  Completions that come back to back without a kick are
	 * those of a deep queue.  A callback run at once re-arms the
	 * driver's interrupt (its used event index) before the daemon's
	 * next completion, so a daemon that honours the index injects once
	 * per request, and the callback runs once per request on the
	 * daemon's CPU; run from a worker on another CPU, it leaves the
	 * interrupt suppressed meanwhile, the daemon skips most injections
	 * (at QD32, one per 15 to 30 requests) and keeps its CPU.
	 *
	 * The worker goes to another allowed CPU than the daemon's.  When
	 * the daemon's CPU is the only one allowed (a queue per CPU), a
	 * worker there would only add a context switch: run it here.
	 */
	cpu = smp_processor_id();
	kicks = READ_ONCE(vq->kicks);
	kicked = kicks != vq->irq_kicks;
	vq->irq_kicks = kicks;
	if (cpumask_test_cpu(cpu, vq->irq_affinity) &&
	    (kicked || vduse_vq_only_cpu(vq, cpu))) {
		vq->irq_effective_cpu = cpu;
		if (READ_ONCE(vq->ready) && vq->cb.callback) {
			vduse_vq_irq_injected(vq, VDUSE_IRQ_INLINE, cpu);
			vduse_vq_run_cb(vq);
		}
		goto unlock;
	}
	cpu = vduse_vq_next_cpu(vq, cpu);
	vduse_vq_irq_injected(vq, VDUSE_IRQ_DEFERRED, cpu);
	if (cpu < 0)
		queue_work(vduse_irq_wq, &vq->inject_work);
	else
		queue_work_on(cpu, vduse_irq_bound_wq, &vq->inject_work);
unlock:
	spin_unlock_irq(&vq->irq_lock);
	local_bh_enable();
	return ret;
}

/* Validate the address space fields shared by the umem and info ioctls. */
static int vduse_dev_check_asid(struct vduse_dev *dev, u32 asid,
				const u32 *reserved, size_t reserved_size)
{
	if (memchr_inv(reserved, 0, reserved_size))
		return -EINVAL;
	if (dev->api_version < VDUSE_API_VERSION_1 && asid)
		return -EINVAL;
	if (asid >= dev->nas)
		return -EINVAL;
	return 0;
}

static long vduse_dev_ioctl_umem(struct vduse_dev *dev, void __user *argp,
				 bool reg)
{
	struct vduse_iova_domain *domain;
	struct vduse_iova_umem umem;
	int ret;

	if (copy_from_user(&umem, argp, sizeof(umem)))
		return -EFAULT;
	ret = vduse_dev_check_asid(dev, umem.asid, umem.reserved,
				   sizeof(umem.reserved));
	if (ret)
		return ret;

	mutex_lock(&dev->domain_lock);
	domain = dev->domains[array_index_nospec(umem.asid, dev->nas)];
	if (!domain)
		ret = reg ? -EINVAL : -ENOENT;	/* nothing can be registered */
	else if (reg)
		ret = vduse_domain_reg_umem(domain, umem.uaddr, umem.iova,
					    umem.size);
	else
		ret = vduse_domain_dereg_umem(domain, umem.iova, umem.size);
	mutex_unlock(&dev->domain_lock);
	return ret;
}

static long vduse_dev_ioctl_iova_info(struct vduse_dev *dev,
				      void __user *argp)
{
	struct vduse_domain_region region;
	struct vduse_iova_info info;
	int ret;

	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	ret = vduse_dev_check_asid(dev, info.asid, info.reserved,
				   sizeof(info.reserved));
	if (ret)
		return ret;
	ret = vduse_dev_find_region(dev, info.asid, info.start, info.last,
				    &region);
	if (ret)
		return ret;
	fput(region.file);

	info.start = region.start;
	info.last = region.last;
	info.capability = region.bounce ? VDUSE_IOVA_CAP_UMEM : 0;
	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long vduse_dev_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct vduse_dev *dev = file->private_data;
	void __user *argp = (void __user *)arg;

	if (READ_ONCE(dev->broken))
		return -EPERM;

	switch (cmd) {
	case VDUSE_IOTLB_GET_FD:
		return vduse_dev_ioctl_get_fd(dev, argp);
	case VDUSE_DEV_GET_FEATURES:
		return put_user(READ_ONCE(dev->driver_features),
				(u64 __user *)argp);
	case VDUSE_DEV_SET_CONFIG:
		return vduse_dev_ioctl_set_config(dev, argp);
	case VDUSE_DEV_INJECT_CONFIG_IRQ:
		return vduse_dev_ioctl_inject_config_irq(dev);
	case VDUSE_VQ_SETUP:
		return vduse_vq_setup(dev, argp);
	case VDUSE_VQ_GET_INFO:
		return vduse_vq_ioctl_get_info(dev, argp);
	case VDUSE_VQ_SETUP_KICKFD:
		return vduse_vq_setup_kickfd(dev, argp);
	case VDUSE_VQ_INJECT_IRQ:
		return vduse_vq_inject_irq(dev, argp);
	case VDUSE_IOTLB_REG_UMEM:
		return vduse_dev_ioctl_umem(dev, argp, true);
	case VDUSE_IOTLB_DEREG_UMEM:
		return vduse_dev_ioctl_umem(dev, argp, false);
	case VDUSE_IOTLB_GET_INFO:
		return vduse_dev_ioctl_iova_info(dev, argp);
	case VDUSE_IOTLB_GET_FD2:
		return vduse_dev_ioctl_get_fd2(dev, argp);
	default:
		return -ENOIOCTLCMD;
	}
}

#ifdef CONFIG_COMPAT
/*
 * Where 32-bit userspace aligns u64 to 4 bytes (i386 on x86-64), two
 * structures lose their tail padding and their ioctl numbers change.
 * Elsewhere these layouts equal the native ones and the native path
 * serves them.
 */
struct vduse_iotlb_entry_compat {
	compat_u64 offset;
	compat_u64 start;
	compat_u64 last;
	__u8 perm;
};

struct vduse_vq_info_compat {
	__u32 index;
	__u32 num;
	compat_u64 desc_addr;
	compat_u64 driver_addr;
	compat_u64 device_addr;
	union {
		struct vduse_vq_state_split split;
		struct vduse_vq_state_packed packed;
	};
	__u8 ready;
};

#define VDUSE_IOTLB_GET_FD_COMPAT \
	_IOWR(VDUSE_BASE, 0x10, struct vduse_iotlb_entry_compat)
#define VDUSE_VQ_GET_INFO_COMPAT \
	_IOWR(VDUSE_BASE, 0x15, struct vduse_vq_info_compat)

static long vduse_dev_compat_get_fd(struct vduse_dev *dev, void __user *argp)
{
	struct vduse_iotlb_entry_compat entry;
	struct vduse_domain_region region;
	int ret;

	if (copy_from_user(&entry, argp, sizeof(entry)))
		return -EFAULT;
	ret = vduse_dev_find_region(dev, 0, entry.start, entry.last, &region);
	if (ret)
		return ret;

	memset(&entry, 0, sizeof(entry));
	entry.offset = region.offset;
	entry.start = region.start;
	entry.last = region.last;
	entry.perm = vduse_perm(region.perm);
	return vduse_dev_finish_get_fd(region.file, argp, &entry,
				       sizeof(entry));
}

static long vduse_vq_compat_get_info(struct vduse_dev *dev, void __user *argp)
{
	struct vduse_vq_info_compat cinfo;
	struct vduse_virtqueue *vq;
	struct vduse_vq_info info;
	u32 index;

	if (get_user(index, (u32 __user *)argp))
		return -EFAULT;
	vq = vduse_dev_vq(dev, index);
	if (!vq)
		return -EINVAL;

	vduse_vq_get_info(dev, vq, &info);
	memset(&cinfo, 0, sizeof(cinfo));
	cinfo.index = info.index;
	cinfo.num = info.num;
	cinfo.desc_addr = info.desc_addr;
	cinfo.driver_addr = info.driver_addr;
	cinfo.device_addr = info.device_addr;
	cinfo.packed = info.packed;
	cinfo.ready = info.ready;
	if (copy_to_user(argp, &cinfo, sizeof(cinfo)))
		return -EFAULT;
	return 0;
}

static long vduse_dev_compat_ioctl(struct file *file, unsigned int cmd,
				   unsigned long arg)
{
	struct vduse_dev *dev = file->private_data;
	void __user *argp = compat_ptr(arg);

	if (cmd == VDUSE_IOTLB_GET_FD_COMPAT && cmd != VDUSE_IOTLB_GET_FD) {
		if (READ_ONCE(dev->broken))
			return -EPERM;
		return vduse_dev_compat_get_fd(dev, argp);
	}
	if (cmd == VDUSE_VQ_GET_INFO_COMPAT && cmd != VDUSE_VQ_GET_INFO) {
		if (READ_ONCE(dev->broken))
			return -EPERM;
		return vduse_vq_compat_get_info(dev, argp);
	}
	return vduse_dev_ioctl(file, cmd, (unsigned long)argp);
}
#else
#define vduse_dev_compat_ioctl NULL
#endif

static const struct file_operations vduse_dev_fops = {
	.owner		= THIS_MODULE,
	.open		= vduse_dev_open,
	.release	= vduse_dev_release,
	.read_iter	= vduse_dev_read_iter,
	.write_iter	= vduse_dev_write_iter,
	.poll		= vduse_dev_poll,
	.unlocked_ioctl	= vduse_dev_ioctl,
	.compat_ioctl	= vduse_dev_compat_ioctl,
	.llseek		= noop_llseek,
};

/* sysfs: /sys/class/vduse/$NAME/{msg_timeout,bounce_size} */

static ssize_t msg_timeout_show(struct device *device,
				struct device_attribute *attr, char *buf)
{
	struct vduse_dev *dev = dev_get_drvdata(device);

	return sysfs_emit(buf, "%u\n", READ_ONCE(dev->msg_timeout));
}

static ssize_t msg_timeout_store(struct device *device,
				 struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct vduse_dev *dev = dev_get_drvdata(device);
	unsigned int timeout;
	int ret;

	ret = kstrtouint(buf, 10, &timeout);
	if (ret)
		return ret;
	WRITE_ONCE(dev->msg_timeout, timeout);
	return count;
}
static DEVICE_ATTR_RW(msg_timeout);

static ssize_t bounce_size_show(struct device *device,
				struct device_attribute *attr, char *buf)
{
	struct vduse_dev *dev = dev_get_drvdata(device);

	return sysfs_emit(buf, "%u\n", READ_ONCE(dev->bounce_size));
}

static ssize_t bounce_size_store(struct device *device,
				 struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct vduse_dev *dev = dev_get_drvdata(device);
	unsigned int size;
	int ret;

	mutex_lock(&dev->domain_lock);
	/*
	 * The domains are sized once, when they are created: from then on
	 * every write is refused, whatever it says (as the stock module).
	 */
	if (dev->domains[0]) {
		ret = -EPERM;
		goto unlock;
	}
	ret = kstrtouint(buf, 10, &size);
	if (ret)
		goto unlock;
	if (size < VDUSE_MIN_BOUNCE_SIZE || size > VDUSE_MAX_BOUNCE_SIZE) {
		ret = -EINVAL;
		goto unlock;
	}
	WRITE_ONCE(dev->bounce_size, round_down(size, PAGE_SIZE));
unlock:
	mutex_unlock(&dev->domain_lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(bounce_size);

static struct attribute *vduse_dev_attrs[] = {
	&dev_attr_msg_timeout.attr,
	&dev_attr_bounce_size.attr,
	NULL
};

static const struct attribute_group vduse_dev_group = {
	.attrs = vduse_dev_attrs,
};

/*
 * debugfs: vduse/stats, the counters of every device and virtqueue in one
 * table (a file per counter and device would make creating a device
 * markedly slower).  Each counter is read under the lock its writers hold
 * (see the locking rules), so a value is never torn, also on 32-bit
 * machines.
 */

/**
 * struct vduse_vq_stats - kick and interrupt counters
 * @kicks: kicks passed on to the daemon
 * @irqs: interrupts passed on to the driver, by enum vduse_irq_path
 * @failed: requests of a gone daemon failed by the module
 */
struct vduse_vq_stats {
	u64 kicks;
	u64 irqs[VDUSE_IRQ_PATHS];
	u64 failed;
};

/* Add the counters of @vq to @stats. */
static void vduse_vq_add_stats(struct vduse_virtqueue *vq,
			       struct vduse_vq_stats *stats)
{
	int i;

	spin_lock_irq(&vq->kick_lock);
	stats->kicks += vq->kicks;
	spin_unlock_irq(&vq->kick_lock);

	spin_lock_irq(&vq->irq_lock);
	for (i = 0; i < VDUSE_IRQ_PATHS; i++)
		stats->irqs[i] += vq->irqs[i];
	stats->failed += vq->failed;
	spin_unlock_irq(&vq->irq_lock);
}

/* The kick and interrupt counters of a device: sums over its queues. */
static void vduse_dev_vq_stats(struct vduse_dev *dev,
			       struct vduse_vq_stats *stats)
{
	u32 i;

	memset(stats, 0, sizeof(*stats));
	for (i = 0; i < dev->vq_num; i++)
		vduse_vq_add_stats(dev->vqs[i], stats);
}

static void vduse_dev_msg_stats(struct vduse_dev *dev,
				struct vduse_msg_stats *stats)
{
	spin_lock(&dev->msg_lock);
	*stats = dev->msg_stats;
	spin_unlock(&dev->msg_lock);
}

/* Characters escaped in the names of vduse/stats. */
#define VDUSE_STATS_ESC		" \t\n\\="

/* debugfs directory "vduse", or an error pointer when debugfs is off. */
static struct dentry *vduse_debugfs;

static unsigned long vduse_dev_bounce_pages(struct vduse_dev *dev)
{
	unsigned long pages = 0;
	u32 i;

	mutex_lock(&dev->domain_lock);
	for (i = 0; i < dev->nas; i++)
		if (dev->domains[i])
			pages += vduse_domain_bounce_pages(dev->domains[i]);
	mutex_unlock(&dev->domain_lock);
	return pages;
}

static void vduse_stats_show_vq(struct seq_file *m,
				const struct vduse_vq_stats *st)
{
	seq_printf(m, " kicks=%llu irqs_inline=%llu irqs_deferred=%llu irqs_irqfd=%llu requests_failed=%llu\n",
		   st->kicks, st->irqs[VDUSE_IRQ_INLINE],
		   st->irqs[VDUSE_IRQ_DEFERRED], st->irqs[VDUSE_IRQ_IRQFD],
		   st->failed);
}

/*
 * One line per device, then one per virtqueue ("NAME/vqN"); names are
 * escaped (octal) where they hold white space, '\\' or '='.  vduse_lock
 * keeps the devices alive meanwhile.
 */
static int vduse_stats_show(struct seq_file *m, void *v)
{
	struct vduse_msg_stats msgs;
	struct vduse_vq_stats vqs;
	struct vduse_dev *dev;
	unsigned long id;
	u32 i;

	mutex_lock(&vduse_lock);
	xa_for_each(&vduse_devs, id, dev) {
		vduse_dev_msg_stats(dev, &msgs);
		vduse_dev_vq_stats(dev, &vqs);
		seq_escape(m, dev->name, VDUSE_STATS_ESC);
		seq_printf(m, " msgs_sent=%llu msgs_failed=%llu msgs_timed_out=%llu config_irqs=%lld bounce_pages=%lu",
			   msgs.sent, msgs.failed, msgs.timeouts,
			   atomic64_read(&dev->config_irqs),
			   vduse_dev_bounce_pages(dev));
		vduse_stats_show_vq(m, &vqs);
		for (i = 0; i < dev->vq_num; i++) {
			memset(&vqs, 0, sizeof(vqs));
			vduse_vq_add_stats(dev->vqs[i], &vqs);
			seq_escape(m, dev->name, VDUSE_STATS_ESC);
			seq_printf(m, "/vq%u", i);
			vduse_stats_show_vq(m, &vqs);
		}
	}
	mutex_unlock(&vduse_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vduse_stats);

static const struct attribute_group *vduse_dev_groups[] = {
	&vduse_dev_group,
	NULL
};

/* sysfs: /sys/class/vduse/$NAME/vqN/irq_cb_affinity */

struct vduse_vq_attribute {
	struct attribute attr;
	ssize_t (*show)(struct vduse_virtqueue *vq, char *buf);
	ssize_t (*store)(struct vduse_virtqueue *vq, const char *buf,
			 size_t count);
};

static ssize_t irq_cb_affinity_show(struct vduse_virtqueue *vq, char *buf)
{
	ssize_t ret;

	spin_lock_irq(&vq->irq_lock);
	ret = sysfs_emit(buf, "%*pb\n", cpumask_pr_args(vq->irq_affinity));
	spin_unlock_irq(&vq->irq_lock);
	return ret;
}

static ssize_t irq_cb_affinity_store(struct vduse_virtqueue *vq,
				     const char *buf, size_t count)
{
	cpumask_var_t mask;
	int ret;

	if (!zalloc_cpumask_var(&mask, GFP_KERNEL))
		return -ENOMEM;
	ret = cpumask_parse(buf, mask);
	if (!ret && !cpumask_intersects(mask, cpu_online_mask))
		ret = -EINVAL;
	if (!ret) {
		spin_lock_irq(&vq->irq_lock);
		cpumask_copy(vq->irq_affinity, mask);
		spin_unlock_irq(&vq->irq_lock);
	}
	free_cpumask_var(mask);
	return ret ? ret : count;
}

static struct vduse_vq_attribute vduse_vq_attr_irq_cb_affinity =
	__ATTR_RW(irq_cb_affinity);

static struct attribute *vduse_vq_attrs[] = {
	&vduse_vq_attr_irq_cb_affinity.attr,
	NULL
};

static const struct attribute_group vduse_vq_group = {
	.attrs = vduse_vq_attrs,
};

static const struct attribute_group *vduse_vq_groups[] = {
	&vduse_vq_group,
	NULL
};

static ssize_t vduse_vq_attr_show(struct kobject *kobj,
				  struct attribute *attr, char *buf)
{
	struct vduse_virtqueue *vq = container_of(kobj, struct vduse_virtqueue,
						  kobj);
	struct vduse_vq_attribute *a = container_of(attr,
						    struct vduse_vq_attribute,
						    attr);

	return a->show ? a->show(vq, buf) : -EIO;
}

static ssize_t vduse_vq_attr_store(struct kobject *kobj,
				   struct attribute *attr,
				   const char *buf, size_t count)
{
	struct vduse_virtqueue *vq = container_of(kobj, struct vduse_virtqueue,
						  kobj);
	struct vduse_vq_attribute *a = container_of(attr,
						    struct vduse_vq_attribute,
						    attr);

	return a->store ? a->store(vq, buf, count) : -EIO;
}

static const struct sysfs_ops vduse_vq_sysfs_ops = {
	.show = vduse_vq_attr_show,
	.store = vduse_vq_attr_store,
};

static void vduse_vq_release(struct kobject *kobj)
{
	struct vduse_virtqueue *vq = container_of(kobj, struct vduse_virtqueue,
						  kobj);

	/* Normally gone with the last reset; not after a failed creation. */
	kfree(vq->track.inflight);
	free_cpumask_var(vq->irq_affinity);
	kfree(vq);
}

static const struct kobj_type vduse_vq_ktype = {
	.release = vduse_vq_release,
	.sysfs_ops = &vduse_vq_sysfs_ops,
	.default_groups = vduse_vq_groups,
};

/* ==================================================================== */
/* 6. Control device                                                     */
/* ==================================================================== */

/*
 * /dev/vduse/control: each open file has its own API version and VDUSE
 * feature selection, which devices created through it inherit.  All
 * control ioctls run under vduse_lock.
 */

/**
 * struct vduse_control - state of one open control file
 * @api_version: chosen API version, or VDUSE_API_VERSION_NOT_ASKED
 * @features: VDUSE_F_* bits for devices created through this file
 */
struct vduse_control {
	u64 api_version;
	u64 features;
};

static struct vduse_dev *vduse_find_dev(const char *name)
{
	struct vduse_dev *dev;
	unsigned long id;

	xa_for_each(&vduse_devs, id, dev)
		if (!strcmp(dev->name, name))
			return dev;
	return NULL;
}

static bool vduse_dev_name_valid(const char *name)
{
	return name[0] && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..");
}

static int vduse_dev_check_features(u32 device_id, u64 features)
{
	/* The driver must go through the map ops, never hand out PAs. */
	if (!(features & BIT_ULL(VIRTIO_F_ACCESS_PLATFORM)))
		return -EINVAL;

	switch (device_id) {
	case VIRTIO_ID_BLOCK:
		/* Would need a writable configuration space. */
		if (features & BIT_ULL(VIRTIO_BLK_F_CONFIG_WCE))
			return -EINVAL;
		break;
	case VIRTIO_ID_NET:
		/* virtio_net's control queue cannot cope with a slow device. */
		if (features & BIT_ULL(VIRTIO_NET_F_CTRL_VQ))
			return -EINVAL;
		if (!(features & BIT_ULL(VIRTIO_F_VERSION_1)))
			return -EINVAL;
		break;
	}
	return 0;
}

/* Check a creation request; may adjust ngroups/nas for version 0. */
static int vduse_dev_check_config(struct vduse_dev_config *config,
				  u64 api_version)
{
	if (memchr_inv(config->reserved, 0, sizeof(config->reserved)))
		return -EINVAL;
	config->name[VDUSE_NAME_MAX - 1] = '\0';
	if (!vduse_dev_name_valid(config->name))
		return -EINVAL;

	if (api_version < VDUSE_API_VERSION_1) {
		if (config->ngroups || config->nas)
			return -EINVAL;
	} else if (!config->ngroups || config->ngroups > VDUSE_MAX_GROUPS ||
		   !config->nas || config->nas > VDUSE_MAX_AS) {
		return -EINVAL;
	}

	if (config->vq_num > VDUSE_MAX_VQ_NUM)
		return -EINVAL;
	if (!is_power_of_2(config->vq_align) ||
	    config->vq_align < VRING_USED_ALIGN_SIZE ||
	    config->vq_align > PAGE_SIZE)
		return -EINVAL;
	if (config->config_size > PAGE_SIZE)
		return -EINVAL;

	switch (config->device_id) {
	case VIRTIO_ID_BLOCK:
	case VIRTIO_ID_FS:
		break;
	case VIRTIO_ID_NET:
		if (!capable(CAP_NET_ADMIN))
			return -EPERM;
		break;
	default:
		return -EINVAL;
	}

	return vduse_dev_check_features(config->device_id, config->features);
}

static struct vduse_virtqueue *vduse_vq_alloc(struct vduse_dev *dev, u32 i)
{
	struct vduse_virtqueue *vq = kzalloc(sizeof(*vq), GFP_KERNEL);

	if (!vq)
		return NULL;
	if (!alloc_cpumask_var(&vq->irq_affinity, GFP_KERNEL)) {
		kfree(vq);
		return NULL;
	}
	cpumask_setall(vq->irq_affinity);
	vq->index = i;
	vq->dev = dev;
	vq->irq_effective_cpu = -1;
	spin_lock_init(&vq->kick_lock);
	spin_lock_init(&vq->irq_lock);
	INIT_WORK(&vq->kick_work, vduse_vq_kick_work);
	INIT_WORK(&vq->inject_work, vduse_vq_inject_work);
	kobject_init(&vq->kobj, &vduse_vq_ktype);
	return vq;
}

/* Drop the virtqueues; their kobject release frees them. */
static void vduse_dev_put_vqs(struct vduse_dev *dev)
{
	u32 i;

	if (!dev->vqs)
		return;
	for (i = 0; i < dev->vq_num; i++)
		if (dev->vqs[i])
			kobject_put(&dev->vqs[i]->kobj);
	kfree(dev->vqs);
	dev->vqs = NULL;
}

/* Free a device whose char device and sysfs entries are gone. */
static void vduse_dev_free(struct vduse_dev *dev)
{
	u32 i;

	cancel_delayed_work_sync(&dev->dead_work);

	if (dev->domains) {
		for (i = 0; i < dev->nas; i++)
			if (dev->domains[i])
				vduse_domain_destroy(dev->domains[i]);
		kfree(dev->domains);
	}
	vduse_dev_put_vqs(dev);
	kfree(dev->groups);
	kfree(dev->config);
	kfree(dev->name);
	mutex_destroy(&dev->lock);
	mutex_destroy(&dev->domain_lock);
	kfree(dev);
}

static struct vduse_dev *vduse_dev_alloc(const struct vduse_dev_config *config,
					 u64 api_version)
{
	struct vduse_dev *dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	u32 i;

	if (!dev)
		return NULL;
	mutex_init(&dev->lock);
	mutex_init(&dev->domain_lock);
	spin_lock_init(&dev->config_lock);
	spin_lock_init(&dev->irq_lock);
	spin_lock_init(&dev->msg_lock);
	INIT_LIST_HEAD(&dev->send_list);
	INIT_LIST_HEAD(&dev->recv_list);
	init_waitqueue_head(&dev->waitq);
	INIT_WORK(&dev->inject_work, vduse_dev_inject_work);
	INIT_DELAYED_WORK(&dev->dead_work, vduse_dev_dead_work);

	dev->api_version = api_version;
	dev->device_id = config->device_id;
	dev->vendor_id = config->vendor_id;
	dev->device_features = config->features;
	dev->vq_num = config->vq_num;
	dev->vq_align = config->vq_align;
	dev->config_size = config->config_size;
	/* Version 0: one group in one address space. */
	dev->ngroups = api_version < VDUSE_API_VERSION_1 ? 1 : config->ngroups;
	dev->nas = api_version < VDUSE_API_VERSION_1 ? 1 : config->nas;
	dev->msg_timeout = VDUSE_MSG_DEFAULT_TIMEOUT;
	dev->bounce_size = VDUSE_DEFAULT_BOUNCE_SIZE;

	dev->name = kstrdup(config->name, GFP_KERNEL);
	dev->domains = kcalloc(dev->nas, sizeof(*dev->domains), GFP_KERNEL);
	dev->groups = kcalloc(dev->ngroups, sizeof(*dev->groups), GFP_KERNEL);
	dev->vqs = kcalloc(dev->vq_num, sizeof(*dev->vqs), GFP_KERNEL);
	if (!dev->name || !dev->domains || !dev->groups ||
	    (dev->vq_num && !dev->vqs))
		goto err;

	for (i = 0; i < dev->ngroups; i++)
		dev->groups[i].dev = dev;
	for (i = 0; i < dev->vq_num; i++) {
		dev->vqs[i] = vduse_vq_alloc(dev, i);
		if (!dev->vqs[i])
			goto err;
	}
	return dev;
err:
	vduse_dev_free(dev);
	return NULL;
}

static int vduse_dev_add_vq_kobjs(struct vduse_dev *dev)
{
	u32 i;
	int ret;

	for (i = 0; i < dev->vq_num; i++) {
		ret = kobject_add(&dev->vqs[i]->kobj, &dev->dev->kobj,
				  "vq%u", i);
		if (ret)
			return ret;
		kobject_uevent(&dev->vqs[i]->kobj, KOBJ_ADD);
	}
	return 0;
}

/* Create a device.  vduse_lock held. */
static int vduse_dev_create(struct vduse_control *ctrl,
			    struct vduse_dev_config *config,
			    void __user *config_buf)
{
	u64 api_version = ctrl->api_version;
	struct vduse_dev *dev;
	u32 minor;
	void *buf;
	int ret;

	if (api_version == VDUSE_API_VERSION_NOT_ASKED)
		api_version = VDUSE_API_VERSION;
	ret = vduse_dev_check_config(config, api_version);
	if (ret)
		return ret;

	buf = memdup_user(config_buf, config->config_size);
	if (IS_ERR(buf))
		return PTR_ERR(buf);

	ret = -EEXIST;
	if (vduse_find_dev(config->name) || !strcmp(config->name, "control"))
		goto err_buf;

	ret = -ENOMEM;
	dev = vduse_dev_alloc(config, api_version);
	if (!dev)
		goto err_buf;
	dev->config = buf;
	dev->vduse_features = ctrl->features;

	ret = xa_alloc(&vduse_devs, &minor, dev,
		       XA_LIMIT(1, VDUSE_DEV_MAX - 1), GFP_KERNEL);
	if (ret)
		goto err_dev;
	dev->minor = minor;

	dev->dev = device_create_with_groups(&vduse_class, NULL,
					     MKDEV(MAJOR(vduse_major),
						   dev->minor),
					     dev, vduse_dev_groups, "%s",
					     dev->name);
	if (IS_ERR(dev->dev)) {
		ret = PTR_ERR(dev->dev);
		goto err_minor;
	}

	ret = vduse_dev_add_vq_kobjs(dev);
	if (ret)
		goto err_kobj;

	__module_get(THIS_MODULE);
	return 0;

err_kobj:
	/* The vq directories go before their parent does. */
	vduse_dev_put_vqs(dev);
	device_destroy(&vduse_class, MKDEV(MAJOR(vduse_major), dev->minor));
err_minor:
	xa_erase(&vduse_devs, dev->minor);
err_dev:
	vduse_dev_free(dev);
	return ret;
err_buf:
	kfree(buf);
	return ret;
}

/* Destroy a device by name.  vduse_lock held. */
static int vduse_dev_destroy(const char *name)
{
	struct vduse_dev *dev = vduse_find_dev(name);

	if (!dev)
		return -EINVAL;
	if (dev->vdev || dev->connected)
		return -EBUSY;

	/* From here on nobody can open or attach it. */
	xa_erase(&vduse_devs, dev->minor);
	cancel_delayed_work_sync(&dev->dead_work);
	vduse_dev_reset(dev);

	vduse_dev_put_vqs(dev);
	device_destroy(&vduse_class, MKDEV(MAJOR(vduse_major), dev->minor));
	vduse_dev_free(dev);

	module_put(THIS_MODULE);
	return 0;
}

static long vduse_ctrl_create(struct vduse_control *ctrl, void __user *argp)
{
	struct vduse_dev_config *config;
	long ret;

	config = kmalloc_obj(*config, GFP_KERNEL);
	if (!config)
		return -ENOMEM;
	ret = -EFAULT;
	if (!copy_from_user(config, argp, sizeof(*config)))
		ret = vduse_dev_create(ctrl, config, argp + sizeof(*config));
	kfree(config);
	return ret;
}

static long vduse_ctrl_destroy(void __user *argp)
{
	char *name;
	long ret;

	name = kzalloc(VDUSE_NAME_MAX, GFP_KERNEL);
	if (!name)
		return -ENOMEM;
	/*
	 * Stop at the terminating NUL: callers pass short strings and the
	 * bytes after them need not be readable.
	 */
	ret = strncpy_from_user(name, argp, VDUSE_NAME_MAX);
	if (ret >= 0) {
		name[VDUSE_NAME_MAX - 1] = '\0';
		ret = vduse_dev_destroy(name);
	}
	kfree(name);
	return ret;
}

static long vduse_ctrl_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	struct vduse_control *ctrl = file->private_data;
	void __user *argp = (void __user *)arg;
	u64 val;
	long ret;

	mutex_lock(&vduse_lock);
	switch (cmd) {
	case VDUSE_GET_API_VERSION:
		/* Asking first means the caller knows the newest version. */
		if (ctrl->api_version == VDUSE_API_VERSION_NOT_ASKED)
			ctrl->api_version = VDUSE_API_VERSION_1;
		ret = put_user(ctrl->api_version, (u64 __user *)argp);
		break;
	case VDUSE_SET_API_VERSION:
		ret = get_user(val, (u64 __user *)argp);
		if (!ret && val > VDUSE_API_VERSION_1)
			ret = -EINVAL;
		if (!ret)
			ctrl->api_version = val;
		break;
	case VDUSE_GET_FEATURES:
		ret = put_user(VDUSE_SUPPORTED_FEATURES, (u64 __user *)argp);
		break;
	case VDUSE_SET_FEATURES:
		ret = get_user(val, (u64 __user *)argp);
		if (!ret && (val & ~VDUSE_SUPPORTED_FEATURES))
			ret = -EINVAL;
		if (!ret)
			ctrl->features = val;
		break;
	case VDUSE_CREATE_DEV:
		ret = vduse_ctrl_create(ctrl, argp);
		break;
	case VDUSE_DESTROY_DEV:
		ret = vduse_ctrl_destroy(argp);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	mutex_unlock(&vduse_lock);

	return ret;
}

static int vduse_ctrl_open(struct inode *inode, struct file *file)
{
	struct vduse_control *ctrl = kzalloc(sizeof(*ctrl), GFP_KERNEL);

	if (!ctrl)
		return -ENOMEM;
	ctrl->api_version = VDUSE_API_VERSION_NOT_ASKED;
	file->private_data = ctrl;
	return nonseekable_open(inode, file);
}

static int vduse_ctrl_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

static const struct file_operations vduse_ctrl_fops = {
	.owner		= THIS_MODULE,
	.open		= vduse_ctrl_open,
	.release	= vduse_ctrl_release,
	.unlocked_ioctl	= vduse_ctrl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

/* ==================================================================== */
/* 7. Management device                                                  */
/* ==================================================================== */

/*
 * "vdpa dev add name $NAME mgmtdev vduse" attaches the VDUSE device of
 * the same name to the vDPA bus; "vdpa dev del" detaches it.  The vdpa
 * core serialises both.
 */

/**
 * struct vduse_mgmt - the "vduse" management device
 * @dev: bare device named "vduse", no bus and no parent
 * @mgmt_dev: registration with the vDPA core
 */
struct vduse_mgmt {
	struct device dev;
	struct vdpa_mgmt_dev mgmt_dev;
};

static struct vduse_mgmt *vduse_mgmt;

static struct virtio_device_id vduse_id_table[] = {
	{ VIRTIO_ID_BLOCK, VIRTIO_DEV_ANY_ID },
	{ VIRTIO_ID_NET, VIRTIO_DEV_ANY_ID },
	{ 0 },
};

/*
 * Create the domains on the first attach, sharing bounce_size among the
 * address spaces; later attaches reuse them (deliberate, see the top).
 */
static int vduse_dev_init_domains(struct vduse_dev *dev)
{
	size_t size;
	int ret = 0;
	u32 i;

	if (max_iotlb_entries <= 0)
		return -EINVAL;

	mutex_lock(&dev->domain_lock);
	if (dev->domains[0])
		goto unlock;

	size = max_t(size_t, round_down(dev->bounce_size / dev->nas,
					PAGE_SIZE), PAGE_SIZE);
	for (i = 0; i < dev->nas; i++) {
		struct vduse_iova_domain *domain;

		domain = vduse_domain_create(VDUSE_IOVA_SIZE - 1, size,
					     max_iotlb_entries);
		if (IS_ERR(domain)) {
			ret = PTR_ERR(domain);
			while (i--) {
				vduse_domain_destroy(dev->domains[i]);
				dev->domains[i] = NULL;
			}
			break;
		}
		dev->domains[i] = domain;
	}
unlock:
	mutex_unlock(&dev->domain_lock);
	return ret;
}

/* Every virtqueue set up, with rings the device's driver can use. */
static bool vduse_dev_vqs_set_up(struct vduse_dev *dev)
{
	bool ok = true;
	u32 i;

	mutex_lock(&dev->lock);
	for (i = 0; i < dev->vq_num && ok; i++) {
		u16 num_max = dev->vqs[i]->num_max;

		ok = num_max != 0;
		if (ok && !vduse_vq_usable_max(dev->vqs[i])) {
			dev_warn_ratelimited(dev->dev,
					     "vq %u: a net queue without indirect descriptors needs at least %u entries\n",
					     i, VDUSE_NET_MIN_RING);
			ok = false;
		}
	}
	mutex_unlock(&dev->lock);
	return ok;
}

static int vduse_mgmt_dev_add(struct vdpa_mgmt_dev *mdev, const char *name,
			      const struct vdpa_dev_set_config *config)
{
	const struct vdpa_config_ops *ops;
	struct vduse_vdpa *vdev;
	struct vduse_dev *dev;
	int ret;

	mutex_lock(&vduse_lock);
	dev = vduse_find_dev(name);
	if (!dev || !vduse_dev_vqs_set_up(dev)) {
		mutex_unlock(&vduse_lock);
		return -EINVAL;
	}
	if (dev->vdev) {
		mutex_unlock(&vduse_lock);
		return -EEXIST;
	}

	ops = dev->vduse_features & BIT_ULL(VDUSE_F_SUSPEND) ?
	      &vduse_vdpa_suspend_ops : &vduse_vdpa_ops;
	vdev = vdpa_alloc_device(struct vduse_vdpa, vdpa, dev->dev, ops,
				 &vduse_map_ops, dev->ngroups, dev->nas,
				 name, true);
	if (IS_ERR(vdev)) {
		mutex_unlock(&vduse_lock);
		return PTR_ERR(vdev);
	}
	/* Reserved: destroy now answers -EBUSY, a second add -EEXIST. */
	vdev->dev = dev;
	dev->vdev = vdev;
	mutex_unlock(&vduse_lock);

	ret = vduse_dev_init_domains(dev);
	if (ret)
		goto err;

	vdev->vdpa.mdev = mdev;
	/* The bus probes a driver now, which sends requests right away. */
	ret = _vdpa_register_device(&vdev->vdpa, dev->vq_num);
	if (ret)
		goto err;
	return 0;

err:
	/* The release runs vduse_vdpa_free(), which clears dev->vdev. */
	put_device(&vdev->vdpa.dev);
	return ret;
}

static void vduse_mgmt_dev_del(struct vdpa_mgmt_dev *mdev,
			       struct vdpa_device *vdpa)
{
	_vdpa_unregister_device(vdpa);
}

static const struct vdpa_mgmtdev_ops vduse_mgmt_dev_ops = {
	.dev_add = vduse_mgmt_dev_add,
	.dev_del = vduse_mgmt_dev_del,
};

static void vduse_mgmt_release(struct device *dev)
{
	kfree(container_of(dev, struct vduse_mgmt, dev));
}

static int vduse_mgmt_init(void)
{
	int ret;

	vduse_mgmt = kzalloc_obj(*vduse_mgmt, GFP_KERNEL);
	if (!vduse_mgmt)
		return -ENOMEM;

	ret = dev_set_name(&vduse_mgmt->dev, "vduse");
	if (ret) {
		kfree(vduse_mgmt);
		return ret;
	}
	vduse_mgmt->dev.release = vduse_mgmt_release;
	ret = device_register(&vduse_mgmt->dev);
	if (ret)
		goto err_put;

	vduse_mgmt->mgmt_dev.device = &vduse_mgmt->dev;
	vduse_mgmt->mgmt_dev.ops = &vduse_mgmt_dev_ops;
	vduse_mgmt->mgmt_dev.id_table = vduse_id_table;
	ret = vdpa_mgmtdev_register(&vduse_mgmt->mgmt_dev);
	if (ret) {
		device_unregister(&vduse_mgmt->dev);
		return ret;
	}
	return 0;

err_put:
	put_device(&vduse_mgmt->dev);
	return ret;
}

static void vduse_mgmt_exit(void)
{
	vdpa_mgmtdev_unregister(&vduse_mgmt->mgmt_dev);
	device_unregister(&vduse_mgmt->dev);
}

/* ==================================================================== */
/* 8. Module init and exit                                               */
/* ==================================================================== */

/* Kernel-version dependent workqueue flags, kept small for compat. */
static int vduse_wq_init(void)
{
	vduse_irq_wq = alloc_workqueue("vduse-irq",
				       WQ_HIGHPRI | WQ_SYSFS | WQ_UNBOUND, 0);
	if (!vduse_irq_wq)
		return -ENOMEM;
	vduse_irq_bound_wq = alloc_workqueue("vduse-irq-bound",
					     WQ_HIGHPRI | WQ_PERCPU, 0);
	if (!vduse_irq_bound_wq) {
		destroy_workqueue(vduse_irq_wq);
		return -ENOMEM;
	}
	return 0;
}

static void vduse_wq_exit(void)
{
	destroy_workqueue(vduse_irq_bound_wq);
	destroy_workqueue(vduse_irq_wq);
}

static int __init vduse_init(void)
{
	struct device *ctrl;
	int ret;

	ret = vduse_domain_init();
	if (ret)
		return ret;

	ret = vduse_class_register();
	if (ret)
		goto err_domain;

	ret = alloc_chrdev_region(&vduse_major, 0, VDUSE_DEV_MAX, "vduse");
	if (ret)
		goto err_class;

	cdev_init(&vduse_ctrl_cdev, &vduse_ctrl_fops);
	vduse_ctrl_cdev.owner = THIS_MODULE;
	ret = cdev_add(&vduse_ctrl_cdev, vduse_major, 1);
	if (ret)
		goto err_region;

	ctrl = device_create(&vduse_class, NULL, vduse_major, NULL, "control");
	if (IS_ERR(ctrl)) {
		ret = PTR_ERR(ctrl);
		goto err_ctrl_cdev;
	}

	cdev_init(&vduse_cdev, &vduse_dev_fops);
	vduse_cdev.owner = THIS_MODULE;
	ret = cdev_add(&vduse_cdev, MKDEV(MAJOR(vduse_major), 1),
		       VDUSE_DEV_MAX - 1);
	if (ret)
		goto err_ctrl_dev;

	ret = vduse_wq_init();
	if (ret)
		goto err_cdev;

	ret = vduse_mgmt_init();
	if (ret)
		goto err_wq;

	/* Counters only: the module works without them (debugfs off). */
	vduse_debugfs = debugfs_create_dir("vduse", NULL);
	debugfs_create_file("stats", 0444, vduse_debugfs, NULL,
			    &vduse_stats_fops);
	return 0;

err_wq:
	vduse_wq_exit();
err_cdev:
	cdev_del(&vduse_cdev);
err_ctrl_dev:
	device_destroy(&vduse_class, vduse_major);
err_ctrl_cdev:
	cdev_del(&vduse_ctrl_cdev);
err_region:
	unregister_chrdev_region(vduse_major, VDUSE_DEV_MAX);
err_class:
	vduse_class_unregister();
err_domain:
	vduse_domain_exit();
	return ret;
}
module_init(vduse_init);

static void __exit vduse_exit(void)
{
	/* Every device holds a module reference: none is left here. */
	debugfs_remove_recursive(vduse_debugfs);
	vduse_mgmt_exit();
	vduse_wq_exit();
	cdev_del(&vduse_cdev);
	device_destroy(&vduse_class, vduse_major);
	cdev_del(&vduse_ctrl_cdev);
	unregister_chrdev_region(vduse_major, VDUSE_DEV_MAX);
	vduse_class_unregister();
	vduse_domain_exit();
}
module_exit(vduse_exit);

MODULE_LICENSE("GPL v2");
MODULE_DESCRIPTION("vDPA Device in Userspace");

/* The KUnit tests need the static functions above: see vduse_kunit.c. */
#if IS_ENABLED(CONFIG_VDPA_USER_KUNIT_TEST)
#include "vduse_kunit.c"
#endif
