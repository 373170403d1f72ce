/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tracepoints of VDUSE, trace system "vduse".
 *
 * They follow a device's traffic with its daemon: control messages (sent,
 * read by the daemon, answered, timed out), the device breaking, kicks of
 * the driver and interrupts the daemon injects.  Every event starts with
 * the device name.  Documentation/userspace-api/vduse.rst lists them.
 *
 * The header lives next to the driver, in a kernel tree
 * (drivers/vdpa/vdpa_user/) and out of tree alike: define_trace.h finds
 * it again as "./vduse_trace.h" through the -I$(src) of the Makefile.
 * The events take plain values, not driver structures, so the header
 * needs nothing from vduse_dev.c.  The device name is a dynamic array of
 * char rather than a __string(): __assign_str() changed its arguments in
 * 6.10, and this header builds for older kernels unchanged.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vduse

/* Types the driver shares with the events, defined once. */
#ifndef _VDUSE_TRACE_TYPES_H
#define _VDUSE_TRACE_TYPES_H

/* How a kick of the driver went on to the daemon. */
enum vduse_kick_path {
	VDUSE_KICK_EVENTFD,	/* kick eventfd signalled at once */
	VDUSE_KICK_DEFERRED,	/* signalled from a work item */
	VDUSE_KICK_PENDING,	/* no eventfd yet: signalled when one is set */
};

/* How an interrupt injected by the daemon went on to the driver. */
enum vduse_irq_path {
	VDUSE_IRQ_INLINE,	/* callback run in VDUSE_VQ_INJECT_IRQ */
	VDUSE_IRQ_DEFERRED,	/* callback queued on a vduse-irq workqueue */
	VDUSE_IRQ_IRQFD,	/* vhost-vdpa's interrupt eventfd signalled */
	VDUSE_IRQ_PATHS
};

#endif /* _VDUSE_TRACE_TYPES_H */

#if !defined(_VDUSE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VDUSE_TRACE_H

#include <linux/ktime.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <uapi/linux/vduse.h>

/* Let user space tools resolve the symbolic names below. */
TRACE_DEFINE_ENUM(VDUSE_GET_VQ_STATE);
TRACE_DEFINE_ENUM(VDUSE_SET_STATUS);
TRACE_DEFINE_ENUM(VDUSE_UPDATE_IOTLB);
TRACE_DEFINE_ENUM(VDUSE_SET_VQ_GROUP_ASID);
TRACE_DEFINE_ENUM(VDUSE_SET_VQ_READY);
TRACE_DEFINE_ENUM(VDUSE_SUSPEND);
TRACE_DEFINE_ENUM(VDUSE_KICK_EVENTFD);
TRACE_DEFINE_ENUM(VDUSE_KICK_DEFERRED);
TRACE_DEFINE_ENUM(VDUSE_KICK_PENDING);
TRACE_DEFINE_ENUM(VDUSE_IRQ_INLINE);
TRACE_DEFINE_ENUM(VDUSE_IRQ_DEFERRED);
TRACE_DEFINE_ENUM(VDUSE_IRQ_IRQFD);

#define vduse_show_msg_type(type)					\
	__print_symbolic(type,						\
			 { VDUSE_GET_VQ_STATE,		"GET_VQ_STATE" },	\
			 { VDUSE_SET_STATUS,		"SET_STATUS" },		\
			 { VDUSE_UPDATE_IOTLB,		"UPDATE_IOTLB" },	\
			 { VDUSE_SET_VQ_GROUP_ASID,	"SET_VQ_GROUP_ASID" },	\
			 { VDUSE_SET_VQ_READY,		"SET_VQ_READY" },	\
			 { VDUSE_SUSPEND,		"SUSPEND" })

#define vduse_show_kick_path(path)					\
	__print_symbolic(path,						\
			 { VDUSE_KICK_EVENTFD,	"eventfd" },		\
			 { VDUSE_KICK_DEFERRED,	"deferred" },		\
			 { VDUSE_KICK_PENDING,	"pending" })

#define vduse_show_irq_path(path)					\
	__print_symbolic(path,						\
			 { VDUSE_IRQ_INLINE,	"inline" },		\
			 { VDUSE_IRQ_DEFERRED,	"deferred" },		\
			 { VDUSE_IRQ_IRQFD,	"irqfd" })

DECLARE_EVENT_CLASS(vduse_msg,
		    TP_PROTO(const char *name, u32 type, u32 id),
		    TP_ARGS(name, type, id),

		    TP_STRUCT__entry(__dynamic_array(char, name, strlen(name) + 1)
				     __field(u32, type)
				     __field(u32, id)
		    ),

		    TP_fast_assign(memcpy(__get_str(name), name,
					  __get_dynamic_array_len(name));
				   __entry->type = type;
				   __entry->id = id;
		    ),

		    TP_printk("%s id=%u type=%s", __get_str(name), __entry->id,
			      vduse_show_msg_type(__entry->type))
);

/* A request was queued for the daemon. */
DEFINE_EVENT(vduse_msg, vduse_msg_send,
	     TP_PROTO(const char *name, u32 type, u32 id),
	     TP_ARGS(name, type, id)
);

/* The daemon read a request. */
DEFINE_EVENT(vduse_msg, vduse_msg_read,
	     TP_PROTO(const char *name, u32 type, u32 id),
	     TP_ARGS(name, type, id)
);

/* The daemon answered a request, @sent being when it was queued. */
TRACE_EVENT(vduse_msg_reply,
	    TP_PROTO(const char *name, u32 type, u32 id, u32 result,
		     ktime_t sent),
	    TP_ARGS(name, type, id, result, sent),

	    TP_STRUCT__entry(__dynamic_array(char, name, strlen(name) + 1)
			     __field(u32, type)
			     __field(u32, id)
			     __field(u32, result)
			     __field(s64, latency_ns)
	    ),

	    TP_fast_assign(memcpy(__get_str(name), name,
				  __get_dynamic_array_len(name));
			   __entry->type = type;
			   __entry->id = id;
			   __entry->result = result;
			   __entry->latency_ns =
				ktime_to_ns(ktime_sub(ktime_get(), sent));
	    ),

	    TP_printk("%s id=%u type=%s result=%s latency_ns=%lld",
		      __get_str(name), __entry->id,
		      vduse_show_msg_type(__entry->type),
		      __print_symbolic(__entry->result,
				       { VDUSE_REQ_RESULT_OK, "OK" },
				       { VDUSE_REQ_RESULT_FAILED, "FAILED" }),
		      __entry->latency_ns)
);

/* No reply came within @timeout seconds. */
TRACE_EVENT(vduse_msg_timeout,
	    TP_PROTO(const char *name, u32 type, u32 id, unsigned int timeout),
	    TP_ARGS(name, type, id, timeout),

	    TP_STRUCT__entry(__dynamic_array(char, name, strlen(name) + 1)
			     __field(u32, type)
			     __field(u32, id)
			     __field(unsigned int, timeout)
	    ),

	    TP_fast_assign(memcpy(__get_str(name), name,
				  __get_dynamic_array_len(name));
			   __entry->type = type;
			   __entry->id = id;
			   __entry->timeout = timeout;
	    ),

	    TP_printk("%s id=%u type=%s timeout=%us", __get_str(name),
		      __entry->id, vduse_show_msg_type(__entry->type),
		      __entry->timeout)
);

/* The device broke; @failed other requests were failed with it. */
TRACE_EVENT(vduse_dev_broken,
	    TP_PROTO(const char *name, unsigned int failed),
	    TP_ARGS(name, failed),

	    TP_STRUCT__entry(__dynamic_array(char, name, strlen(name) + 1)
			     __field(unsigned int, failed)
	    ),

	    TP_fast_assign(memcpy(__get_str(name), name,
				  __get_dynamic_array_len(name));
			   __entry->failed = failed;
	    ),

	    TP_printk("%s failed=%u", __get_str(name), __entry->failed)
);

/* The driver kicked virtqueue @vq. */
TRACE_EVENT(vduse_vq_kick,
	    TP_PROTO(const char *name, u32 vq, enum vduse_kick_path path),
	    TP_ARGS(name, vq, path),

	    TP_STRUCT__entry(__dynamic_array(char, name, strlen(name) + 1)
			     __field(u32, vq)
			     __field(u32, path)
	    ),

	    TP_fast_assign(memcpy(__get_str(name), name,
				  __get_dynamic_array_len(name));
			   __entry->vq = vq;
			   __entry->path = path;
	    ),

	    TP_printk("%s vq=%u path=%s", __get_str(name), __entry->vq,
		      vduse_show_kick_path(__entry->path))
);

/*
 * The daemon injected an interrupt of virtqueue @vq; @cpu is where the
 * callback runs (-1: any CPU, or not known for an irqfd).
 */
TRACE_EVENT(vduse_vq_inject_irq,
	    TP_PROTO(const char *name, u32 vq, enum vduse_irq_path path,
		     int cpu),
	    TP_ARGS(name, vq, path, cpu),

	    TP_STRUCT__entry(__dynamic_array(char, name, strlen(name) + 1)
			     __field(u32, vq)
			     __field(u32, path)
			     __field(int, cpu)
	    ),

	    TP_fast_assign(memcpy(__get_str(name), name,
				  __get_dynamic_array_len(name));
			   __entry->vq = vq;
			   __entry->path = path;
			   __entry->cpu = cpu;
	    ),

	    TP_printk("%s vq=%u path=%s cpu=%d", __get_str(name),
		      __entry->vq, vduse_show_irq_path(__entry->path),
		      __entry->cpu)
);

/* The daemon injected a configuration change interrupt. */
TRACE_EVENT(vduse_dev_inject_config_irq,
	    TP_PROTO(const char *name),
	    TP_ARGS(name),

	    TP_STRUCT__entry(__dynamic_array(char, name, strlen(name) + 1)
	    ),

	    TP_fast_assign(memcpy(__get_str(name), name,
				  __get_dynamic_array_len(name));
	    ),

	    TP_printk("%s", __get_str(name))
);

#endif /* _VDUSE_TRACE_H */

/* Outside the guard: define_trace.h reads this file again. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE vduse_trace
#include <trace/define_trace.h>
