/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * VDUSE: vDPA Device in Userspace.
 *
 * A process creates virtio devices through /dev/vduse/control and then
 * implements their data path itself: it serves the virtqueues through the
 * per-device node /dev/vduse/$NAME, answers the control requests that the
 * kernel sends on that node, and reaches driver memory through file
 * descriptors handed out by the IOTLB ioctls.
 *
 * Every structure below has the same size and layout on all architectures
 * except where a comment says otherwise; 64-bit members are placed at
 * 8-byte offsets.
 */
#ifndef _UAPI_VDUSE_H_
#define _UAPI_VDUSE_H_

#include <linux/ioctl.h>
#include <linux/types.h>

/* ioctl type shared by the control node and the device nodes. */
#define VDUSE_BASE	0x81

/* -------------------------------------------------------------------- */
/* Control node: /dev/vduse/control                                      */
/* -------------------------------------------------------------------- */

/* The original interface: one address space, no virtqueue groups. */
#define VDUSE_API_VERSION	0
/* Adds virtqueue groups and several address spaces (ASIDs). */
#define VDUSE_API_VERSION_1	1

/*
 * Query the API version of this control file (__u64).  A file that never
 * chose a version reports (and from then on uses) the newest one.
 */
#define VDUSE_GET_API_VERSION	_IOR(VDUSE_BASE, 0x00, __u64)

/* Choose the API version (__u64) for devices created through this file. */
#define VDUSE_SET_API_VERSION	_IOW(VDUSE_BASE, 0x01, __u64)

/* Longest device name, counting the terminating NUL. */
#define VDUSE_NAME_MAX	256

/**
 * struct vduse_dev_config - description of a device to create
 * @name: device name, NUL terminated and not empty; it names the device
 *	node, the sysfs device and the vDPA device
 * @vendor_id: virtio subsystem vendor id reported to the driver
 * @device_id: virtio device id (block, net or fs)
 * @features: virtio feature bits the device offers
 * @vq_num: number of virtqueues
 * @vq_align: ring alignment required by the device: a power of two of at
 *	least 4 and at most the page size
 * @ngroups: number of virtqueue groups (API version 1; must be 0 with
 *	version 0)
 * @nas: number of address spaces (API version 1; must be 0 with
 *	version 0)
 * @reserved: must be zero
 * @config_size: length of @config in bytes, at most the page size
 * @config: initial content of the device configuration space
 *
 * Argument of VDUSE_CREATE_DEV.  The ioctl size only covers the fixed
 * part; @config_size bytes of configuration space follow it directly.
 */
struct vduse_dev_config {
	char name[VDUSE_NAME_MAX];
	__u32 vendor_id;
	__u32 device_id;
	__u64 features;
	__u32 vq_num;
	__u32 vq_align;
	__u32 ngroups;
	__u32 nas;
	__u32 reserved[11];
	__u32 config_size;
	__u8 config[];
};

/* Create a device (struct vduse_dev_config followed by its config space). */
#define VDUSE_CREATE_DEV	_IOW(VDUSE_BASE, 0x02, struct vduse_dev_config)

/*
 * Destroy the device whose NUL-terminated name the argument points to.
 * Fails with EBUSY while the device is attached to the vDPA bus or its
 * node is open.
 */
#define VDUSE_DESTROY_DEV	_IOW(VDUSE_BASE, 0x03, char[VDUSE_NAME_MAX])

/* VDUSE feature bits (not virtio feature bits), see VDUSE_SET_FEATURES. */

/* Virtqueue enable and disable are sent as VDUSE_SET_VQ_READY requests. */
#define VDUSE_F_QUEUE_READY	0
/* The device can be suspended with VDUSE_SUSPEND requests. */
#define VDUSE_F_SUSPEND		1

/* Query the mask (__u64) of VDUSE feature bits this kernel supports. */
#define VDUSE_GET_FEATURES	_IOR(VDUSE_BASE, 0x04, __u64)

/*
 * Select the VDUSE features (__u64 mask) of devices created afterwards
 * through this control file.  Unknown bits are refused with EINVAL.
 */
#define VDUSE_SET_FEATURES	_IOW(VDUSE_BASE, 0x05, __u64)

/* -------------------------------------------------------------------- */
/* Device node: /dev/vduse/$NAME                                         */
/* -------------------------------------------------------------------- */

/* Access rights of an IOTLB region; same values as PROT_READ/PROT_WRITE. */
#define VDUSE_ACCESS_RO	0x1
#define VDUSE_ACCESS_WO	0x2
#define VDUSE_ACCESS_RW	0x3

/**
 * struct vduse_iotlb_entry - one region of the device's IOVA space
 * @offset: out: offset of the region's first byte in the returned file
 * @start: in: first IOVA of the range to look up;
 *	out: first IOVA of the region found
 * @last: in: last IOVA (inclusive) of the range to look up;
 *	out: last IOVA (inclusive) of the region found
 * @perm: out: VDUSE_ACCESS_* rights on the region
 *
 * Argument of VDUSE_IOTLB_GET_FD, which looks up the first region that
 * overlaps [@start, @last] in address space 0 and returns a new file
 * descriptor for the memory behind it.  The structure ends in 7 bytes of
 * implicit padding on 64-bit ABIs (it is 28 bytes on i386).
 */
struct vduse_iotlb_entry {
	__u64 offset;
	__u64 start;
	__u64 last;
	__u8 perm;
};

/* Look up an IOVA region of address space 0; returns a file descriptor. */
#define VDUSE_IOTLB_GET_FD	_IOWR(VDUSE_BASE, 0x10, struct vduse_iotlb_entry)

/* Read the virtio features (__u64) the driver accepted. */
#define VDUSE_DEV_GET_FEATURES	_IOR(VDUSE_BASE, 0x11, __u64)

/**
 * struct vduse_config_data - update of the configuration space
 * @offset: first byte to change
 * @length: number of bytes to change, not zero
 * @buffer: the new bytes
 *
 * Argument of VDUSE_DEV_SET_CONFIG.  The ioctl size only covers @offset
 * and @length; @length bytes of data follow them directly.  The range
 * must lie inside the configuration space given at creation.
 */
struct vduse_config_data {
	__u32 offset;
	__u32 length;
	__u8 buffer[];
};

/* Change the configuration space seen by the driver. */
#define VDUSE_DEV_SET_CONFIG	_IOW(VDUSE_BASE, 0x12, struct vduse_config_data)

/* Signal a configuration change to the driver (after DRIVER_OK only). */
#define VDUSE_DEV_INJECT_CONFIG_IRQ	_IO(VDUSE_BASE, 0x13)

/**
 * struct vduse_vq_config - static parameters of a virtqueue
 * @index: virtqueue index
 * @max_size: largest ring size the device accepts; every virtqueue needs
 *	a non-zero value before the device can be attached
 * @reserved1: must be zero
 * @group: virtqueue group of this queue (API version 1, less than
 *	ngroups and set before DRIVER_OK; must be 0 with version 0)
 * @reserved2: must be zero
 *
 * Argument of VDUSE_VQ_SETUP.
 */
struct vduse_vq_config {
	__u32 index;
	__u16 max_size;
	__u16 reserved1;
	__u32 group;
	__u16 reserved2[10];
};

/* Set up a virtqueue. */
#define VDUSE_VQ_SETUP		_IOW(VDUSE_BASE, 0x14, struct vduse_vq_config)

/**
 * struct vduse_vq_state_split - progress of a split virtqueue
 * @avail_index: index of the next available-ring entry the device reads
 */
struct vduse_vq_state_split {
	__u16 avail_index;
};

/**
 * struct vduse_vq_state_packed - progress of a packed virtqueue
 * @last_avail_counter: wrap counter of the driver ring (0 or 1)
 * @last_avail_idx: index of the next descriptor the device reads
 * @last_used_counter: wrap counter of the device ring (0 or 1)
 * @last_used_idx: index of the next descriptor the device marks used
 */
struct vduse_vq_state_packed {
	__u16 last_avail_counter;
	__u16 last_avail_idx;
	__u16 last_used_counter;
	__u16 last_used_idx;
};

/**
 * struct vduse_vq_info - current state of a virtqueue
 * @index: in: virtqueue index
 * @num: ring size chosen by the driver, 0 while unset
 * @desc_addr: IOVA of the descriptor area
 * @driver_addr: IOVA of the driver (available) area
 * @device_addr: IOVA of the device (used) area
 * @split: start state, if VIRTIO_F_RING_PACKED was not negotiated
 * @packed: start state, if VIRTIO_F_RING_PACKED was negotiated
 * @ready: non-zero once the driver enabled the virtqueue
 *
 * Argument of VDUSE_VQ_GET_INFO.  The structure ends in 7 bytes of
 * implicit padding on 64-bit ABIs (it is 44 bytes on i386).
 */
struct vduse_vq_info {
	__u32 index;
	__u32 num;
	__u64 desc_addr;
	__u64 driver_addr;
	__u64 device_addr;
	union {
		struct vduse_vq_state_split split;
		struct vduse_vq_state_packed packed;
	};
	__u8 ready;
};

/* Read the state of a virtqueue. */
#define VDUSE_VQ_GET_INFO	_IOWR(VDUSE_BASE, 0x15, struct vduse_vq_info)

/* Value of vduse_vq_eventfd.fd that removes the kick eventfd. */
#define VDUSE_EVENTFD_DEASSIGN	-1

/**
 * struct vduse_vq_eventfd - kick eventfd of a virtqueue
 * @index: virtqueue index
 * @fd: eventfd signalled on every driver kick, or VDUSE_EVENTFD_DEASSIGN
 *
 * Argument of VDUSE_VQ_SETUP_KICKFD.
 */
struct vduse_vq_eventfd {
	__u32 index;
	int fd;
};

/* Install or remove the kick eventfd of a virtqueue. */
#define VDUSE_VQ_SETUP_KICKFD	_IOW(VDUSE_BASE, 0x16, struct vduse_vq_eventfd)

/* Interrupt the driver for the virtqueue whose index (__u32) is given. */
#define VDUSE_VQ_INJECT_IRQ	_IOW(VDUSE_BASE, 0x17, __u32)

/**
 * struct vduse_iova_umem - userspace memory behind the bounce area
 * @uaddr: page-aligned start of the userspace buffer
 * @iova: first IOVA of the area, must be 0
 * @size: size of the buffer, must equal the address space's bounce size
 * @asid: address space (API version 1; must be 0 with version 0)
 * @reserved: must be zero
 *
 * Argument of VDUSE_IOTLB_REG_UMEM and VDUSE_IOTLB_DEREG_UMEM.
 */
struct vduse_iova_umem {
	__u64 uaddr;
	__u64 iova;
	__u64 size;
	__u32 asid;
	__u32 reserved[5];
};

/* Back the bounce area with userspace pages. */
#define VDUSE_IOTLB_REG_UMEM	_IOW(VDUSE_BASE, 0x18, struct vduse_iova_umem)

/* Give the bounce area its kernel pages back. */
#define VDUSE_IOTLB_DEREG_UMEM	_IOW(VDUSE_BASE, 0x19, struct vduse_iova_umem)

/* vduse_iova_info.capability: the region can be backed by REG_UMEM. */
#define VDUSE_IOVA_CAP_UMEM	(1 << 0)

/**
 * struct vduse_iova_info - description of one IOVA region
 * @start: in: first IOVA of the range to look up; out: region start
 * @last: in: last IOVA (inclusive) of the range to look up;
 *	out: region end (inclusive)
 * @capability: out: VDUSE_IOVA_CAP_* bits of the region
 * @asid: address space (API version 1; must be 0 with version 0)
 * @reserved: must be zero
 *
 * Argument of VDUSE_IOTLB_GET_INFO.
 */
struct vduse_iova_info {
	__u64 start;
	__u64 last;
	__u64 capability;
	__u32 asid;
	__u32 reserved[5];
};

/* Describe the first IOVA region that overlaps a range. */
#define VDUSE_IOTLB_GET_INFO	_IOWR(VDUSE_BASE, 0x1a, struct vduse_iova_info)

/**
 * struct vduse_iotlb_entry_v2 - one region of an address space
 * @offset: out: offset of the region's first byte in the returned file
 * @start: in: first IOVA of the range to look up; out: region start
 * @last: in: last IOVA (inclusive) of the range to look up;
 *	out: region end (inclusive)
 * @perm: out: VDUSE_ACCESS_* rights on the region
 * @padding: explicit padding, must be zero
 * @asid: in: address space to look in
 * @reserved: must be zero
 *
 * Argument of VDUSE_IOTLB_GET_FD2 (API version 1 only).  The first 25
 * bytes match struct vduse_iotlb_entry; the padding is explicit so that
 * the layout is also the same on i386.
 */
struct vduse_iotlb_entry_v2 {
	__u64 offset;
	__u64 start;
	__u64 last;
	__u8 perm;
	__u8 padding[7];
	__u32 asid;
	__u32 reserved[11];
};

/* Look up an IOVA region of any address space; returns a file descriptor. */
#define VDUSE_IOTLB_GET_FD2	_IOWR(VDUSE_BASE, 0x1b, struct vduse_iotlb_entry_v2)

/* -------------------------------------------------------------------- */
/* Requests read from and replies written to the device node             */
/* -------------------------------------------------------------------- */

/**
 * enum vduse_req_type - kinds of request the kernel sends
 * @VDUSE_GET_VQ_STATE: report the progress of a virtqueue
 * @VDUSE_SET_STATUS: the driver writes the device status byte
 * @VDUSE_UPDATE_IOTLB: mappings in an IOVA range changed; drop cached ones
 * @VDUSE_SET_VQ_GROUP_ASID: move a virtqueue group to another address
 *	space (API version 1)
 * @VDUSE_SET_VQ_READY: the driver enables or disables a virtqueue
 *	(VDUSE_F_QUEUE_READY)
 * @VDUSE_SUSPEND: stop processing the virtqueues (VDUSE_F_SUSPEND)
 */
enum vduse_req_type {
	VDUSE_GET_VQ_STATE,
	VDUSE_SET_STATUS,
	VDUSE_UPDATE_IOTLB,
	VDUSE_SET_VQ_GROUP_ASID,
	VDUSE_SET_VQ_READY,
	VDUSE_SUSPEND,
};

/**
 * struct vduse_vq_state - virtqueue state carried by a message
 * @index: virtqueue index
 * @split: state of a split virtqueue
 * @packed: state of a packed virtqueue
 */
struct vduse_vq_state {
	__u32 index;
	union {
		struct vduse_vq_state_split split;
		struct vduse_vq_state_packed packed;
	};
};

/**
 * struct vduse_dev_status - device status carried by a message
 * @status: the new virtio device status byte
 */
struct vduse_dev_status {
	__u8 status;
};

/**
 * struct vduse_iova_range - IOVA range of address space 0
 * @start: first IOVA
 * @last: last IOVA (inclusive)
 */
struct vduse_iova_range {
	__u64 start;
	__u64 last;
};

/**
 * struct vduse_iova_range_v2 - IOVA range of a given address space
 * @start: first IOVA
 * @last: last IOVA (inclusive)
 * @asid: address space
 * @padding: always zero
 */
struct vduse_iova_range_v2 {
	__u64 start;
	__u64 last;
	__u32 asid;
	__u32 padding;
};

/**
 * struct vduse_vq_group_asid - address space of a virtqueue group
 * @group: virtqueue group
 * @asid: address space the group should use
 */
struct vduse_vq_group_asid {
	__u32 group;
	__u32 asid;
};

/**
 * struct vduse_vq_ready - enable state of a virtqueue
 * @num: virtqueue index
 * @ready: 1 to enable the virtqueue, 0 to disable it
 */
struct vduse_vq_ready {
	__u32 num;
	__u32 ready;
};

/**
 * struct vduse_dev_request - a request from the kernel
 * @type: enum vduse_req_type
 * @request_id: identifier to copy into the reply
 * @reserved: always zero
 * @vq_state: for VDUSE_GET_VQ_STATE: the virtqueue (only @index is set)
 * @s: for VDUSE_SET_STATUS: the new status
 * @iova: for VDUSE_UPDATE_IOTLB with API version 0
 * @iova_v2: for VDUSE_UPDATE_IOTLB with API version 1
 * @vq_group_asid: for VDUSE_SET_VQ_GROUP_ASID
 * @vq_ready: for VDUSE_SET_VQ_READY
 * @padding: fixes the size of the payload; unused bytes are zero
 *
 * Every read(2) of the device node returns exactly one of these.  Each
 * one must be answered with a struct vduse_dev_response.
 */
struct vduse_dev_request {
	__u32 type;
	__u32 request_id;
	__u32 reserved[4];
	union {
		struct vduse_vq_state vq_state;
		struct vduse_dev_status s;
		struct vduse_iova_range iova;
		struct vduse_iova_range_v2 iova_v2;
		struct vduse_vq_group_asid vq_group_asid;
		struct vduse_vq_ready vq_ready;
		__u32 padding[32];
	};
};

/* Values of vduse_dev_response.result. */
#define VDUSE_REQ_RESULT_OK	0x00
#define VDUSE_REQ_RESULT_FAILED	0x01

/**
 * struct vduse_dev_response - a reply to a request
 * @request_id: the request_id of the request being answered
 * @result: VDUSE_REQ_RESULT_OK or VDUSE_REQ_RESULT_FAILED
 * @reserved: must be zero
 * @vq_state: for VDUSE_GET_VQ_STATE: the virtqueue state
 * @padding: fixes the size of the payload
 *
 * Every write(2) to the device node takes exactly one of these.
 */
struct vduse_dev_response {
	__u32 request_id;
	__u32 result;
	__u32 reserved[4];
	union {
		struct vduse_vq_state vq_state;
		__u32 padding[32];
	};
};

#endif /* _UAPI_VDUSE_H_ */
