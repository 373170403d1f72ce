/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Compatibility shims for building VDUSE out of tree.
 *
 * This header is force-included (-include) by the out-of-tree build only.
 * It makes the kernel's older internal APIs look like the 7.x ones the
 * driver is written against, so that vduse_dev.c and iova_domain.c carry
 * no kernel version checks of their own.  Nothing here is part of the
 * userspace ABI.
 */
#ifndef _VDUSE_COMPAT_H
#define _VDUSE_COMPAT_H

#include <linux/version.h>

#endif /* _VDUSE_COMPAT_H */
