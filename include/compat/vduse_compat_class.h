/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Device class shims, included by vduse_compat.h.
 *
 * The driver defines its class the 7.x way: a const struct class whose
 * devnode callback takes a const device, registered with class_register()
 * and passed to device_create() and friends.
 *
 * Before 6.4 the driver core writes into a registered class, so it cannot
 * be const: the driver's class is copied into a writable one, registered
 * in its place by vduse_compat_class_register(), and the device calls are
 * redirected to the copy.  Before 6.2 the devnode callback also took a
 * non-const device: the driver's callback, vduse_devnode(), is renamed
 * and a wrapper with the old signature takes its name.
 */
#ifndef _VDUSE_COMPAT_CLASS_H
#define _VDUSE_COMPAT_CLASS_H

#include <linux/device.h>

#if VDUSE_KERNEL_BEFORE(6, 4, 0)
int vduse_compat_class_register(const struct class *cls);
void vduse_compat_class_unregister(const struct class *cls);
struct class *vduse_compat_class(const struct class *cls);

#undef class_register
#define class_register(cls)	vduse_compat_class_register(cls)
#define class_unregister(cls)	vduse_compat_class_unregister(cls)
#define device_create(cls, ...)						\
	device_create(vduse_compat_class(cls), __VA_ARGS__)
#define device_create_with_groups(cls, ...)				\
	device_create_with_groups(vduse_compat_class(cls), __VA_ARGS__)
#define device_destroy(cls, devt)					\
	device_destroy(vduse_compat_class(cls), (devt))
#endif

/*
 * VDUSE_COMPAT_DRIVER is defined for vduse_dev.c only (see Kbuild): the
 * wrapper must live in the file that defines the callback.
 */
#if VDUSE_KERNEL_BEFORE(6, 2, 0) && defined(VDUSE_COMPAT_DRIVER)
static char *vduse_devnode_const(const struct device *dev, umode_t *mode);

static char *(vduse_devnode)(struct device *dev, umode_t *mode)
{
	return vduse_devnode_const(dev, mode);
}

#define vduse_devnode(dev, mode)	vduse_devnode_const(dev, mode)
#endif

#endif /* _VDUSE_COMPAT_CLASS_H */
