/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Compatibility shims for building VDUSE out of tree.
 *
 * This header is force-included (-include) by the out-of-tree build only
 * (include/compat/Kbuild).  It makes the kernel's older internal APIs look
 * like the 7.x ones the driver is written against, so that vduse_dev.c and
 * iova_domain.c carry no kernel version checks of their own.  Nothing here
 * is part of the userspace ABI: that is the same on every kernel.
 *
 * Kernels: 7.0 and later need nothing.  6.1 to 6.17 are served by the
 * shims below and in the files included at the end; Debian's 6.1 and 6.12
 * are the ones tested.  6.18 and 6.19 are refused: their map token has no
 * virtqueue group.
 *
 * Each shim names the release that made it unnecessary.  Where stable
 * kernels received a change as a backport, the version cannot tell, and
 * include/compat/Kbuild probes the kernel headers instead (VDUSE_HAVE_*).
 */
#ifndef _VDUSE_COMPAT_H
#define _VDUSE_COMPAT_H

#include <linux/version.h>

/* The running kernel is older than MAJOR.MINOR.SUB. */
#define VDUSE_KERNEL_BEFORE(major, minor, sub)				\
	(LINUX_VERSION_CODE < KERNEL_VERSION(major, minor, sub))

#if VDUSE_KERNEL_BEFORE(7, 0, 0)

#if !VDUSE_KERNEL_BEFORE(6, 18, 0)
#error "VDUSE out of tree supports Linux 6.1 to 6.17 and 7.0 or later, not 6.18 or 6.19"
#endif

/*
 * This header comes before kbuild's own forced includes, which the kernel
 * headers below rely on.  Both are guarded, so kbuild's are no-ops later.
 */
#include <linux/kconfig.h>
#include <linux/compiler_types.h>

#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

/*
 * 7.0: typed allocations, kmalloc_obj(VAR_OR_TYPE[, GFP]) and friends.
 * The flexible-array variants (*_flex) are not provided.
 */
#ifndef kmalloc_obj
#define __vduse_gfp_or(gfp, dflt, ...)	dflt
#define __vduse_gfp(...)		__vduse_gfp_or(, ##__VA_ARGS__, GFP_KERNEL)
#define __vduse_alloc_objs(alloc, gfp, type, count)			\
	((type *)alloc(size_mul(sizeof(type), (count)), (gfp)))

#define kmalloc_obj(v, ...)						\
	__vduse_alloc_objs(kmalloc, __vduse_gfp(__VA_ARGS__), typeof(v), 1)
#define kmalloc_objs(v, count, ...)					\
	__vduse_alloc_objs(kmalloc, __vduse_gfp(__VA_ARGS__), typeof(v), count)
#define kzalloc_obj(v, ...)						\
	__vduse_alloc_objs(kzalloc, __vduse_gfp(__VA_ARGS__), typeof(v), 1)
#define kzalloc_objs(v, count, ...)					\
	__vduse_alloc_objs(kzalloc, __vduse_gfp(__VA_ARGS__), typeof(v), count)
#define kvmalloc_obj(v, ...)						\
	__vduse_alloc_objs(kvmalloc, __vduse_gfp(__VA_ARGS__), typeof(v), 1)
#define kvmalloc_objs(v, count, ...)					\
	__vduse_alloc_objs(kvmalloc, __vduse_gfp(__VA_ARGS__), typeof(v), count)
#define kvzalloc_obj(v, ...)						\
	__vduse_alloc_objs(kvzalloc, __vduse_gfp(__VA_ARGS__), typeof(v), 1)
#define kvzalloc_objs(v, count, ...)					\
	__vduse_alloc_objs(kvzalloc, __vduse_gfp(__VA_ARGS__), typeof(v), count)
#endif

/*
 * The kernel functions whose signature changed are wrapped by inline
 * functions with the new one, and the names redirected to them.
 */

/* 6.8: eventfd_signal() lost its count argument, which was always 1 here. */
#if VDUSE_KERNEL_BEFORE(6, 8, 0)
static inline void vduse_compat_eventfd_signal(struct eventfd_ctx *ctx)
{
	eventfd_signal(ctx, 1);
}
#define eventfd_signal		vduse_compat_eventfd_signal
#endif

/* 6.8: receive_fd() took over receive_fd_user()'s user pointer. */
#if VDUSE_KERNEL_BEFORE(6, 8, 0)
static inline int vduse_compat_receive_fd(struct file *file, int __user *ufd,
					  unsigned int o_flags)
{
	if (ufd)
		return receive_fd_user(file, ufd, o_flags);
	return receive_fd(file, o_flags);
}
#define receive_fd		vduse_compat_receive_fd
#endif

/* 6.5: pin_user_pages() lost its vmas argument. */
#if VDUSE_KERNEL_BEFORE(6, 5, 0)
static inline long vduse_compat_pin_user_pages(unsigned long start,
					       unsigned long nr_pages,
					       unsigned int gup_flags,
					       struct page **pages)
{
	return pin_user_pages(start, nr_pages, gup_flags, pages, NULL);
}
#define pin_user_pages		vduse_compat_pin_user_pages
#endif

/* 6.3: vm_flags became read-only outside the helpers. */
#if VDUSE_KERNEL_BEFORE(6, 3, 0)
static inline void vm_flags_set(struct vm_area_struct *vma,
				unsigned long flags)
{
	vma->vm_flags |= flags;
}
#endif

/* 6.18 or so: <linux/mm.h> gained it; before, each user had its own. */
#ifndef INVALID_PHYS_ADDR
#define INVALID_PHYS_ADDR	(~(phys_addr_t)0)
#endif

/*
 * 6.17, and as a backport in some stable series (6.12.97): per-CPU
 * workqueues say so.  Without the flag every workqueue without WQ_UNBOUND
 * is per-CPU.
 */
#ifndef VDUSE_HAVE_WQ_PERCPU
#define WQ_PERCPU		0
#endif

/*
 * 6.17 (6.12.y as a backport): system_dfl_wq names the unbound system
 * workqueue; 7.x warns about work queued on the old name.
 */
#ifndef VDUSE_HAVE_system_dfl_wq
#define system_dfl_wq		system_unbound_wq
#endif

/*
 * 6.7: anonymous files with an inode of their own.  Without one a domain
 * file shares the anonymous inode, its mappings cannot be zapped alone,
 * and the driver keeps idle bounce pages (it falls back on -EOPNOTSUPP).
 */
#ifndef VDUSE_HAVE_anon_inode_create_getfile
#include <linux/anon_inodes.h>
#include <linux/err.h>
static inline struct file *
vduse_compat_anon_inode_create_getfile(const char *name,
				       const struct file_operations *fops,
				       void *priv, int flags,
				       const struct inode *context_inode)
{
	return ERR_PTR(-EOPNOTSUPP);
}
#define anon_inode_create_getfile	vduse_compat_anon_inode_create_getfile
#endif

#include "vduse_compat_class.h"
#include "vduse_compat_vdpa.h"

#endif /* before 7.0 */

#endif /* _VDUSE_COMPAT_H */
