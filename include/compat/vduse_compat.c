// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line part of the compat layer (see vduse_compat.h), linked into
 * vduse.ko by the out-of-tree build only.  On 7.0 and later it is empty.
 */

#include "vduse_compat.h"

#if VDUSE_KERNEL_BEFORE(7, 0, 0)

#include <linux/device.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vdpa.h>

/* This file calls the real functions the compat macros stand in for. */
#undef class_register
#undef class_unregister
#undef device_create
#undef device_create_with_groups
#undef device_destroy
#undef vdpa_config_ops
#undef vdpa_alloc_device

/* ==================================================================== */
/* Device class (before 6.4)                                             */
/* ==================================================================== */

#if VDUSE_KERNEL_BEFORE(6, 4, 0)

/*
 * The one class of the module: the driver's const definition and the
 * writable copy registered for it.  Set at module init, cleared at exit.
 */
static const struct class *vduse_compat_class_def;
static struct class *vduse_compat_class_reg;

static void vduse_compat_class_release(struct class *cls)
{
	kfree(cls);
}

/**
 * vduse_compat_class_register() - register a const class (class_register())
 * @cls: the driver's class definition
 *
 * Return: 0 or a negative errno.
 */
int vduse_compat_class_register(const struct class *cls)
{
	static struct lock_class_key key;
	struct class *reg;
	int ret;

	if (WARN_ON(vduse_compat_class_reg))
		return -EBUSY;
	reg = kmemdup(cls, sizeof(*cls), GFP_KERNEL);
	if (!reg)
		return -ENOMEM;
	reg->owner = THIS_MODULE;
	reg->class_release = vduse_compat_class_release;
	ret = __class_register(reg, &key);
	if (ret) {
		kfree(reg);
		return ret;
	}
	vduse_compat_class_def = cls;
	vduse_compat_class_reg = reg;
	return 0;
}

/**
 * vduse_compat_class_unregister() - undo vduse_compat_class_register()
 * @cls: the driver's class definition
 */
void vduse_compat_class_unregister(const struct class *cls)
{
	struct class *reg = vduse_compat_class(cls);

	vduse_compat_class_def = NULL;
	vduse_compat_class_reg = NULL;
	/* The release frees the copy. */
	class_unregister(reg);
}

/**
 * vduse_compat_class() - the registered class of a class definition
 * @cls: the driver's class definition
 *
 * Return: the writable class registered for @cls.
 */
struct class *vduse_compat_class(const struct class *cls)
{
	WARN_ON_ONCE(cls != vduse_compat_class_def);
	return vduse_compat_class_reg;
}

#endif /* before 6.4 */

/* ==================================================================== */
/* vDPA devices and their DMA (before 6.18)                              */
/* ==================================================================== */

#if VDUSE_KERNEL_BEFORE(6, 18, 0)

#if !IS_ENABLED(CONFIG_DMA_OPS) && !IS_ENABLED(CONFIG_ARCH_HAS_DMA_OPS)
#error "VDUSE needs a kernel with DMA ops (CONFIG_DMA_OPS or CONFIG_ARCH_HAS_DMA_OPS) before 6.18"
#endif

/* get_vq_dma_dev, hence one DMA device per virtqueue group, since 6.3. */
#define VDUSE_COMPAT_VQ_DMA_DEV	(!VDUSE_KERNEL_BEFORE(6, 3, 0))

/**
 * struct vduse_compat_vdpa - what the compat layer keeps per vDPA device
 * @ops: the core's config ops, handed to __vdpa_alloc_device()
 * @config: the driver's config ops (7.3 layout)
 * @map: the driver's map ops, or NULL
 * @lock: protects @map_devs
 * @map_devs: DMA devices made for get_vq_dma_dev, one per token
 *
 * Allocated with the vDPA device, freed by its release through
 * vduse_compat_free().  vdpa->config points at @ops.
 */
struct vduse_compat_vdpa {
	struct vdpa_config_ops ops;
	const struct vduse_compat_vdpa_config_ops *config;
	const struct virtio_map_ops *map;
	struct mutex lock;	/* map_devs */
	struct list_head map_devs;
};

/**
 * struct vduse_compat_map_dev - a DMA device standing for one map token
 * @dev: the device; never registered, only used with the DMA API
 * @link: entry in vduse_compat_vdpa.map_devs
 * @vc: owner
 * @map: the token
 */
struct vduse_compat_map_dev {
	struct device dev;
	struct list_head link;
	struct vduse_compat_vdpa *vc;
	union virtio_map map;
};

static const struct device_type vduse_compat_map_dev_type = {
	.name = "vduse-map",
};

static struct vduse_compat_vdpa *vduse_compat_vdpa_of(struct vdpa_device *vdpa)
{
	return container_of(vdpa->config, struct vduse_compat_vdpa, ops);
}

/*
 * The map ops and token behind a DMA device: a token device made for
 * get_vq_dma_dev, or the vDPA device itself, which stands for virtqueue
 * 0 as the device-wide token does on 7.x.
 */
static const struct virtio_map_ops *vduse_compat_map_of(struct device *dev,
							union virtio_map *map)
{
	struct vduse_compat_map_dev *md;
	struct vduse_compat_vdpa *vc;
	struct vdpa_device *vdpa;

	if (dev->type == &vduse_compat_map_dev_type) {
		md = container_of(dev, struct vduse_compat_map_dev, dev);
		*map = md->map;
		return md->vc->map;
	}

	vdpa = dev_to_vdpa(dev);
	vc = vduse_compat_vdpa_of(vdpa);
	memset(map, 0, sizeof(*map));
	if (vc->config->get_vq_map)
		*map = vc->config->get_vq_map(vdpa, 0);
	return vc->map;
}

static dma_addr_t vduse_compat_map_page(struct device *dev, struct page *page,
					unsigned long offset, size_t size,
					enum dma_data_direction dir,
					unsigned long attrs)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);

	return ops->map_page(map, page, offset, size, dir, attrs);
}

static void vduse_compat_unmap_page(struct device *dev, dma_addr_t dma_addr,
				    size_t size, enum dma_data_direction dir,
				    unsigned long attrs)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);

	ops->unmap_page(map, dma_addr, size, dir, attrs);
}

static int vduse_compat_map_sg(struct device *dev, struct scatterlist *sgl,
			       int nents, enum dma_data_direction dir,
			       unsigned long attrs)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);
	struct scatterlist *sg;
	int i, j;

	for_each_sg(sgl, sg, nents, i) {
		sg->dma_address = ops->map_page(map, sg_page(sg), sg->offset,
						sg->length, dir, attrs);
		if (sg->dma_address == DMA_MAPPING_ERROR)
			goto err;
		sg_dma_len(sg) = sg->length;
	}
	return nents;

err:
	for_each_sg(sgl, sg, i, j)
		ops->unmap_page(map, sg->dma_address, sg_dma_len(sg), dir,
				attrs | DMA_ATTR_SKIP_CPU_SYNC);
	return -ENOMEM;
}

static void vduse_compat_unmap_sg(struct device *dev, struct scatterlist *sgl,
				  int nents, enum dma_data_direction dir,
				  unsigned long attrs)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		ops->unmap_page(map, sg->dma_address, sg_dma_len(sg), dir,
				attrs);
}

static void vduse_compat_sync_single_for_cpu(struct device *dev,
					     dma_addr_t dma_addr, size_t size,
					     enum dma_data_direction dir)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);

	ops->sync_single_for_cpu(map, dma_addr, size, dir);
}

static void vduse_compat_sync_single_for_device(struct device *dev,
						dma_addr_t dma_addr,
						size_t size,
						enum dma_data_direction dir)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);

	ops->sync_single_for_device(map, dma_addr, size, dir);
}

static void vduse_compat_sync_sg_for_cpu(struct device *dev,
					 struct scatterlist *sgl, int nents,
					 enum dma_data_direction dir)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		vduse_compat_sync_single_for_cpu(dev, sg->dma_address,
						 sg_dma_len(sg), dir);
}

static void vduse_compat_sync_sg_for_device(struct device *dev,
					    struct scatterlist *sgl, int nents,
					    enum dma_data_direction dir)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		vduse_compat_sync_single_for_device(dev, sg->dma_address,
						    sg_dma_len(sg), dir);
}

static void *vduse_compat_alloc(struct device *dev, size_t size,
				dma_addr_t *dma_addr, gfp_t gfp,
				unsigned long attrs)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);

	return ops->alloc(map, size, dma_addr, gfp);
}

static void vduse_compat_free_coherent(struct device *dev, size_t size,
				       void *vaddr, dma_addr_t dma_addr,
				       unsigned long attrs)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);

	ops->free(map, size, vaddr, dma_addr, attrs);
}

static size_t vduse_compat_max_mapping_size(struct device *dev)
{
	union virtio_map map;
	const struct virtio_map_ops *ops = vduse_compat_map_of(dev, &map);

	return ops->max_mapping_size(map);
}

static const struct dma_map_ops vduse_compat_dma_ops = {
	.map_page		= vduse_compat_map_page,
	.unmap_page		= vduse_compat_unmap_page,
	.map_sg			= vduse_compat_map_sg,
	.unmap_sg		= vduse_compat_unmap_sg,
	.sync_single_for_cpu	= vduse_compat_sync_single_for_cpu,
	.sync_single_for_device	= vduse_compat_sync_single_for_device,
	.sync_sg_for_cpu	= vduse_compat_sync_sg_for_cpu,
	.sync_sg_for_device	= vduse_compat_sync_sg_for_device,
	.alloc			= vduse_compat_alloc,
	.free			= vduse_compat_free_coherent,
	.max_mapping_size	= vduse_compat_max_mapping_size,
};

/* Make @dev map through vduse_compat_dma_ops, 64-bit addresses. */
static int vduse_compat_dma_init(struct device *dev)
{
	dev->dma_mask = &dev->coherent_dma_mask;
	/* Before the mask: setting it decides whether syncs are skipped. */
	set_dma_ops(dev, &vduse_compat_dma_ops);
	return dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
}

#if VDUSE_COMPAT_VQ_DMA_DEV
static void vduse_compat_map_dev_release(struct device *dev)
{
	kfree(container_of(dev, struct vduse_compat_map_dev, dev));
}

/* A new DMA device for @map.  vc->lock held. */
static struct vduse_compat_map_dev *
vduse_compat_map_dev_new(struct vduse_compat_vdpa *vc,
			 struct vdpa_device *vdpa, union virtio_map map)
{
	struct vduse_compat_map_dev *md = kzalloc(sizeof(*md), GFP_KERNEL);

	if (!md)
		return NULL;
	device_initialize(&md->dev);
	md->dev.type = &vduse_compat_map_dev_type;
	md->dev.release = vduse_compat_map_dev_release;
	md->vc = vc;
	md->map = map;
	if (dev_set_name(&md->dev, "%s-map", dev_name(&vdpa->dev)) ||
	    vduse_compat_dma_init(&md->dev)) {
		put_device(&md->dev);
		return NULL;
	}
	list_add_tail(&md->link, &vc->map_devs);
	return md;
}

/*
 * get_vq_dma_dev: the DMA device of the token get_vq_map gives for @idx.
 * Virtqueues with the same token share one.
 */
static struct device *vduse_compat_get_vq_dma_dev(struct vdpa_device *vdpa,
						  u16 idx)
{
	struct vduse_compat_vdpa *vc = vduse_compat_vdpa_of(vdpa);
	union virtio_map map = vc->config->get_vq_map(vdpa, idx);
	struct vduse_compat_map_dev *md;

	mutex_lock(&vc->lock);
	list_for_each_entry(md, &vc->map_devs, link)
		if (!memcmp(&md->map, &map, sizeof(map)))
			goto unlock;
	md = vduse_compat_map_dev_new(vc, vdpa, map);
unlock:
	mutex_unlock(&vc->lock);

	/* Out of memory: map through virtqueue 0's token rather than fail. */
	return md ? &md->dev : &vdpa->dev;
}
#endif /* VDUSE_COMPAT_VQ_DMA_DEV */

/* The release of the vDPA device: the driver's free, then ours. */
static void vduse_compat_free(struct vdpa_device *vdpa)
{
	struct vduse_compat_vdpa *vc = vduse_compat_vdpa_of(vdpa);
	struct vduse_compat_map_dev *md, *tmp;

	if (vc->config->free)
		vc->config->free(vdpa);
	list_for_each_entry_safe(md, tmp, &vc->map_devs, link)
		put_device(&md->dev);
	mutex_destroy(&vc->lock);
	/* The core reads nothing from vdpa->config after this call. */
	kfree(vc);
}

/* Fill the core's table with the driver's ops the kernel knows. */
static void vduse_compat_fill_ops(struct vdpa_config_ops *ops,
				  const struct vduse_compat_vdpa_config_ops *c)
{
	ops->set_vq_address = c->set_vq_address;
	ops->set_vq_num = c->set_vq_num;
	ops->kick_vq = c->kick_vq;
	ops->set_vq_cb = c->set_vq_cb;
	ops->set_vq_ready = c->set_vq_ready;
	ops->get_vq_ready = c->get_vq_ready;
	ops->set_vq_state = c->set_vq_state;
	ops->get_vq_state = c->get_vq_state;
	ops->get_vendor_vq_stats = c->get_vendor_vq_stats;
	ops->get_vq_notification = c->get_vq_notification;
	ops->get_vq_irq = c->get_vq_irq;
	ops->get_vq_align = c->get_vq_align;
	ops->get_vq_group = c->get_vq_group;
	ops->get_device_features = c->get_device_features;
	ops->set_driver_features = c->set_driver_features;
	ops->get_driver_features = c->get_driver_features;
	ops->set_config_cb = c->set_config_cb;
	ops->get_vq_num_max = c->get_vq_num_max;
	ops->get_vq_num_min = c->get_vq_num_min;
	ops->get_device_id = c->get_device_id;
	ops->get_vendor_id = c->get_vendor_id;
	ops->get_status = c->get_status;
	ops->set_status = c->set_status;
	ops->reset = c->reset;
	ops->suspend = c->suspend;
	ops->get_config_size = c->get_config_size;
	ops->get_config = c->get_config;
	ops->set_config = c->set_config;
	ops->get_generation = c->get_generation;
	ops->get_iova_range = c->get_iova_range;
	ops->set_map = c->set_map;
	ops->dma_map = c->dma_map;
	ops->dma_unmap = c->dma_unmap;
	ops->set_group_asid = c->set_group_asid;
#if !VDUSE_KERNEL_BEFORE(6, 3, 0)
	ops->kick_vq_with_data = c->kick_vq_with_data;
	ops->resume = c->resume;
	ops->set_vq_affinity = c->set_vq_affinity;
	ops->get_vq_affinity = c->get_vq_affinity;
#endif
#if !VDUSE_KERNEL_BEFORE(6, 5, 0)
	ops->bind_mm = c->bind_mm;
	ops->unbind_mm = c->unbind_mm;
#endif
#if !VDUSE_KERNEL_BEFORE(6, 7, 0)
	ops->get_backend_features = c->get_backend_features;
	ops->compat_reset = c->compat_reset;
	ops->reset_map = c->reset_map;
#endif
#if !VDUSE_KERNEL_BEFORE(6, 8, 0)
	ops->get_vq_desc_group = c->get_vq_desc_group;
#endif
#if !VDUSE_KERNEL_BEFORE(6, 9, 0)
	ops->get_vq_size = c->get_vq_size;
#endif
	/* Ours, whatever the driver has: the release must free @vc. */
	ops->free = vduse_compat_free;
}

/**
 * vduse_compat_vdpa_alloc_device() - vdpa_alloc_device() of 7.x
 * @parent: the parent device
 * @config: the driver's config ops (7.3 layout); must outlive the device
 * @map: the driver's map ops, or NULL if the device maps by itself
 * @ngroups: number of virtqueue groups
 * @nas: number of address spaces
 * @size: size of the driver's structure around the struct vdpa_device
 * @name: device name
 * @use_va: the device takes virtual addresses
 *
 * With @map, the device DMA-maps through @map for the drivers bound to
 * it, as on 7.x (see vduse_compat_vdpa.h for the granularity).
 *
 * Return: the device, or an ERR_PTR().
 */
struct vdpa_device *
vduse_compat_vdpa_alloc_device(struct device *parent,
			       const struct vduse_compat_vdpa_config_ops *config,
			       const struct virtio_map_ops *map,
			       unsigned int ngroups, unsigned int nas,
			       size_t size, const char *name, bool use_va)
{
	struct vduse_compat_vdpa *vc;
	struct vdpa_device *vdpa;
	int ret;

	vc = kzalloc(sizeof(*vc), GFP_KERNEL);
	if (!vc)
		return ERR_PTR(-ENOMEM);
	vc->config = config;
	vc->map = map;
	mutex_init(&vc->lock);
	INIT_LIST_HEAD(&vc->map_devs);
	vduse_compat_fill_ops(&vc->ops, config);
#if VDUSE_COMPAT_VQ_DMA_DEV
	if (map && config->get_vq_map)
		vc->ops.get_vq_dma_dev = vduse_compat_get_vq_dma_dev;
#endif

	/* Its error paths never call ops->free: @vc is still ours. */
	vdpa = __vdpa_alloc_device(parent, &vc->ops, ngroups, nas, size, name,
				   use_va);
	if (IS_ERR(vdpa)) {
		mutex_destroy(&vc->lock);
		kfree(vc);
		return vdpa;
	}

	if (map) {
		ret = vduse_compat_dma_init(&vdpa->dev);
		if (ret) {
			/* The release frees @vc. */
			put_device(&vdpa->dev);
			return ERR_PTR(ret);
		}
		vdpa->dma_dev = &vdpa->dev;
	}
	return vdpa;
}

#endif /* before 6.18 */

#endif /* before 7.0 */
