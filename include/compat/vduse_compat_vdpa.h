/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vDPA map API shims, included by vduse_compat.h.
 *
 * 6.18 gave vDPA devices their own map operations: the core hands each
 * virtqueue's DMA to the parent driver through struct virtio_map_ops and
 * an opaque token (union virtio_map) that get_vq_map returns per
 * virtqueue.  The driver is written that way.  Older kernels map through
 * the DMA API on a struct device instead.
 *
 * Here the driver's 7.x-shaped struct vdpa_config_ops is a type of our
 * own (struct vduse_compat_vdpa_config_ops; the name is redirected
 * below), and vdpa_alloc_device() goes through
 * vduse_compat_vdpa_alloc_device(), which (include/compat/vduse_compat.c):
 *  - gives the core a struct vdpa_config_ops of the running kernel with
 *    the driver's callbacks, leaving out those the kernel does not know;
 *  - makes the vDPA device itself its DMA device, with a struct
 *    dma_map_ops that forwards to the driver's virtio_map_ops with the
 *    token of virtqueue 0;
 *  - from 6.3 on, answers get_vq_dma_dev with one DMA device per token,
 *    so that each virtqueue maps through its own group as on 7.x.  6.1
 *    has one DMA device per vDPA device: all virtqueues map through the
 *    address space of virtqueue 0's group there.
 */
#ifndef _VDUSE_COMPAT_VDPA_H
#define _VDUSE_COMPAT_VDPA_H

#include <linux/dma-mapping.h>
#include <linux/vdpa.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#if VDUSE_KERNEL_BEFORE(6, 18, 0)

struct vduse_vq_group;

/**
 * union virtio_map - map token of a virtqueue (7.x)
 * @dma_dev: device that performs DMA (drivers using the DMA API)
 * @group: VDUSE virtqueue group
 */
union virtio_map {
	struct device *dma_dev;
	struct vduse_vq_group *group;
};

/**
 * struct virtio_map_ops - map operations of a virtio transport (7.x)
 * @map_page: map a buffer for streaming DMA
 * @unmap_page: end a streaming mapping
 * @sync_single_for_cpu: make device writes visible to the CPU
 * @sync_single_for_device: make CPU writes visible to the device
 * @alloc: allocate coherent memory (no attributes, unlike the DMA API)
 * @free: free coherent memory
 * @need_sync: whether a mapping needs the sync calls
 * @mapping_error: whether a handle is an error
 * @max_mapping_size: largest streaming mapping
 */
struct virtio_map_ops {
	dma_addr_t (*map_page)(union virtio_map map, struct page *page,
			       unsigned long offset, size_t size,
			       enum dma_data_direction dir, unsigned long attrs);
	void (*unmap_page)(union virtio_map map, dma_addr_t map_handle,
			   size_t size, enum dma_data_direction dir,
			   unsigned long attrs);
	void (*sync_single_for_cpu)(union virtio_map map, dma_addr_t map_handle,
				    size_t size, enum dma_data_direction dir);
	void (*sync_single_for_device)(union virtio_map map,
				       dma_addr_t map_handle, size_t size,
				       enum dma_data_direction dir);
	void *(*alloc)(union virtio_map map, size_t size,
		       dma_addr_t *map_handle, gfp_t gfp);
	void (*free)(union virtio_map map, size_t size, void *vaddr,
		     dma_addr_t map_handle, unsigned long attrs);
	bool (*need_sync)(union virtio_map map, dma_addr_t map_handle);
	int (*mapping_error)(union virtio_map map, dma_addr_t map_handle);
	size_t (*max_mapping_size)(union virtio_map map);
};

struct cpumask;
struct mm_struct;
struct netlink_ext_ack;
struct sk_buff;

/*
 * struct vduse_compat_vdpa_config_ops - struct vdpa_config_ops of 7.3
 *
 * Same members, same order and same signatures as 7.3's; see there.
 */
struct vduse_compat_vdpa_config_ops {
	int (*set_vq_address)(struct vdpa_device *vdev,
			      u16 idx, u64 desc_area, u64 driver_area,
			      u64 device_area);
	void (*set_vq_num)(struct vdpa_device *vdev, u16 idx, u32 num);
	void (*kick_vq)(struct vdpa_device *vdev, u16 idx);
	void (*kick_vq_with_data)(struct vdpa_device *vdev, u32 data);
	void (*set_vq_cb)(struct vdpa_device *vdev, u16 idx,
			  struct vdpa_callback *cb);
	void (*set_vq_ready)(struct vdpa_device *vdev, u16 idx, bool ready);
	bool (*get_vq_ready)(struct vdpa_device *vdev, u16 idx);
	int (*set_vq_state)(struct vdpa_device *vdev, u16 idx,
			    const struct vdpa_vq_state *state);
	int (*get_vq_state)(struct vdpa_device *vdev, u16 idx,
			    struct vdpa_vq_state *state);
	int (*get_vendor_vq_stats)(struct vdpa_device *vdev, u16 idx,
				   struct sk_buff *msg,
				   struct netlink_ext_ack *extack);
	struct vdpa_notification_area
	(*get_vq_notification)(struct vdpa_device *vdev, u16 idx);
	int (*get_vq_irq)(struct vdpa_device *vdev, u16 idx);
	u16 (*get_vq_size)(struct vdpa_device *vdev, u16 idx);
	u32 (*get_vq_align)(struct vdpa_device *vdev);
	u32 (*get_vq_group)(struct vdpa_device *vdev, u16 idx);
	u32 (*get_vq_desc_group)(struct vdpa_device *vdev, u16 idx);
	u64 (*get_device_features)(struct vdpa_device *vdev);
	u64 (*get_backend_features)(const struct vdpa_device *vdev);
	int (*set_driver_features)(struct vdpa_device *vdev, u64 features);
	u64 (*get_driver_features)(struct vdpa_device *vdev);
	void (*set_config_cb)(struct vdpa_device *vdev,
			      struct vdpa_callback *cb);
	u16 (*get_vq_num_max)(struct vdpa_device *vdev);
	u16 (*get_vq_num_min)(struct vdpa_device *vdev);
	u32 (*get_device_id)(struct vdpa_device *vdev);
	u32 (*get_vendor_id)(struct vdpa_device *vdev);
	u8 (*get_status)(struct vdpa_device *vdev);
	void (*set_status)(struct vdpa_device *vdev, u8 status);
	int (*reset)(struct vdpa_device *vdev);
	int (*compat_reset)(struct vdpa_device *vdev, u32 flags);
	int (*suspend)(struct vdpa_device *vdev);
	int (*resume)(struct vdpa_device *vdev);
	size_t (*get_config_size)(struct vdpa_device *vdev);
	void (*get_config)(struct vdpa_device *vdev, unsigned int offset,
			   void *buf, unsigned int len);
	void (*set_config)(struct vdpa_device *vdev, unsigned int offset,
			   const void *buf, unsigned int len);
	u32 (*get_generation)(struct vdpa_device *vdev);
	struct vdpa_iova_range (*get_iova_range)(struct vdpa_device *vdev);
	int (*set_vq_affinity)(struct vdpa_device *vdev, u16 idx,
			       const struct cpumask *cpu_mask);
	const struct cpumask *(*get_vq_affinity)(struct vdpa_device *vdev,
						 u16 idx);
	int (*set_map)(struct vdpa_device *vdev, unsigned int asid,
		       struct vhost_iotlb *iotlb);
	int (*dma_map)(struct vdpa_device *vdev, unsigned int asid,
		       u64 iova, u64 size, u64 pa, u32 perm, void *opaque);
	int (*dma_unmap)(struct vdpa_device *vdev, unsigned int asid,
			 u64 iova, u64 size);
	int (*reset_map)(struct vdpa_device *vdev, unsigned int asid);
	int (*set_group_asid)(struct vdpa_device *vdev, unsigned int group,
			      unsigned int asid);
	union virtio_map (*get_vq_map)(struct vdpa_device *vdev, u16 idx);
	int (*bind_mm)(struct vdpa_device *vdev, struct mm_struct *mm);
	void (*unbind_mm)(struct vdpa_device *vdev);
	void (*free)(struct vdpa_device *vdev);
};

struct vdpa_device *
vduse_compat_vdpa_alloc_device(struct device *parent,
			       const struct vduse_compat_vdpa_config_ops *config,
			       const struct virtio_map_ops *map,
			       unsigned int ngroups, unsigned int nas,
			       size_t size, const char *name, bool use_va);

/* From here on, "struct vdpa_config_ops" means the 7.3 table above. */
#define vdpa_config_ops		vduse_compat_vdpa_config_ops

#undef vdpa_alloc_device
#define vdpa_alloc_device(dev_struct, member, parent, config, map,	\
			  ngroups, nas, name, use_va)			\
	container_of(vduse_compat_vdpa_alloc_device((parent), (config),	\
				(map), (ngroups), (nas),		\
				sizeof(dev_struct) +			\
				BUILD_BUG_ON_ZERO(offsetof(dev_struct,	\
							   member)),	\
				(name), (use_va)),			\
		     dev_struct, member)

#endif /* before 6.18 */

#endif /* _VDUSE_COMPAT_VDPA_H */
