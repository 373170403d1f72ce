/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the control tools (vduse_ctl, vduse_ctlbench) do to a device just
 * created, before it can be attached: set up its virtqueues through the
 * device node, as a daemon would, and close the node again.
 */
#ifndef _VDUSE_TEST_VDUSE_VQS_H
#define _VDUSE_TEST_VDUSE_VQS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/vduse.h>

/*
 * Open /dev/vduse/NAME, VDUSE_VQ_SETUP its first nvqs virtqueues (at most
 * 256 entries each) and close it.  0, or the errno of the first failure.
 */
static inline int vduse_setup_vqs(const char *name, unsigned int nvqs)
{
	char path[64 + VDUSE_NAME_MAX];
	struct vduse_vq_config vq;
	unsigned int i;
	int fd, e = 0;

	snprintf(path, sizeof(path), "/dev/vduse/%s", name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	for (i = 0; i < nvqs && !e; i++) {
		memset(&vq, 0, sizeof(vq));
		vq.index = i;
		vq.max_size = 256;
		if (ioctl(fd, VDUSE_VQ_SETUP, &vq))
			e = errno;
	}
	close(fd);
	return e;
}

#endif /* _VDUSE_TEST_VDUSE_VQS_H */
