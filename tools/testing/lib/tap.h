/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Output helpers shared by the C test programs: TAP comment lines and
 * errno names.  Each program keeps its own pass/fail counters and report
 * format; only what is the same everywhere lives here.
 */
#ifndef _VDUSE_TEST_TAP_H
#define _VDUSE_TEST_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A "# ..." comment line, flushed so it interleaves with child output. */
static inline void __attribute__((format(printf, 1, 2)))
note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* "EINVAL" for EINVAL, "success" for 0. */
static inline const char *errname(int e)
{
	const char *n;

	if (!e)
		return "success";
	n = strerrorname_np(e);
	return n ? n : "E?";
}

#endif /* _VDUSE_TEST_TAP_H */
