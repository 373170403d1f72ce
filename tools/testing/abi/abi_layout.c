// SPDX-License-Identifier: GPL-2.0
/*
 * abi_layout: compile-time facts of <linux/vduse.h> checked at run time.
 *
 * Every size, offset, alignment, ioctl number and constant of our uapi
 * header is compared with a literal taken from the ABI fact sheet
 * (shared/docs/abi-facts.md): Appendix A for x86-64, Appendix B (and the
 * i386 notes of section 1.3) for i386, Appendix C for the 7.3 additions.
 * The expected values are typed in here on purpose; nothing is derived
 * from the header under test.
 *
 * Built twice, natively and with -m32.  Needs no module: it runs on the
 * host as well as in the guest.  Output is TAP.
 */
#include <linux/vduse.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#if !defined(__x86_64__) && !defined(__i386__)
#error "expected values are only known for x86-64 and i386"
#endif

/*
 * EXP(x86-64 value, i386 value).  On i386 a __u64 member is 4-byte
 * aligned (the fact sheet's "i386 aligns u64 to 4"), so structures with
 * 64-bit members lose their tail padding and are 4-byte aligned.
 */
#ifdef __i386__
#define EXP(v64, v32)	(v32)
#else
#define EXP(v64, v32)	(v64)
#endif

static int tests, failures;

static void check(unsigned long long got, unsigned long long want,
		  const char *what)
{
	tests++;
	if (got == want) {
		printf("ok %d - %s = %llu\n", tests, what, want);
		return;
	}
	failures++;
	printf("not ok %d - %s # got %llu (0x%llx) want %llu (0x%llx)\n",
	       tests, what, got, got, want, want);
}

static void check_hex(unsigned long long got, unsigned long long want,
		      const char *what)
{
	tests++;
	if (got == want) {
		printf("ok %d - %s = 0x%llx\n", tests, what, want);
		return;
	}
	failures++;
	printf("not ok %d - %s # got 0x%llx want 0x%llx\n", tests, what,
	       got, want);
}

static void check_signed(long long got, long long want, const char *what)
{
	tests++;
	if (got == want) {
		printf("ok %d - %s = %lld\n", tests, what, want);
		return;
	}
	failures++;
	printf("not ok %d - %s # got %lld want %lld\n", tests, what, got, want);
}

#define MEMBER_SIZE(type, m)	sizeof(((type *)0)->m)

#define SIZE(type, v64, v32) \
	check(sizeof(type), EXP(v64, v32), "sizeof(" #type ")")
#define ALIGN(type, v64, v32) \
	check(_Alignof(type), EXP(v64, v32), "alignof(" #type ")")
/* Offsets of every member are the same on both ABIs (u64s sit at 8n). */
#define FIELD(type, m, off, size) do { \
	check(offsetof(type, m), off, "offsetof(" #type ", " #m ")"); \
	check(MEMBER_SIZE(type, m), size, "sizeof(" #type "." #m ")"); \
} while (0)
/* Flexible array member: only its offset and element size exist. */
#define FLEX(type, m, off) do { \
	check(offsetof(type, m), off, "offsetof(" #type ", " #m "[])"); \
	check(MEMBER_SIZE(type, m[0]), 1, "sizeof(" #type "." #m "[0])"); \
} while (0)
#define IOCTL(name, v64, v32) \
	check_hex((unsigned int)(name), EXP(v64, v32), #name)
#define CONST(name, v)	check_signed((long long)(name), v, #name)
/* A member is signed iff storing -1 in it reads back negative. */
#define SIGNED(type, m, want) do { \
	type __s = { 0 }; \
	long long __v; \
	__s.m = -1; \
	__v = __s.m; \
	check(__v < 0, want, #type "." #m " is signed"); \
} while (0)

static void dev_config(void)
{
	SIZE(struct vduse_dev_config, 336, 336);
	ALIGN(struct vduse_dev_config, 8, 4);
	FIELD(struct vduse_dev_config, name, 0, 256);
	FIELD(struct vduse_dev_config, vendor_id, 256, 4);
	FIELD(struct vduse_dev_config, device_id, 260, 4);
	FIELD(struct vduse_dev_config, features, 264, 8);
	FIELD(struct vduse_dev_config, vq_num, 272, 4);
	FIELD(struct vduse_dev_config, vq_align, 276, 4);
	FIELD(struct vduse_dev_config, ngroups, 280, 4);
	FIELD(struct vduse_dev_config, nas, 284, 4);
	FIELD(struct vduse_dev_config, reserved, 288, 44);
	FIELD(struct vduse_dev_config, config_size, 332, 4);
	FLEX(struct vduse_dev_config, config, 336);
}

static void iotlb_entry(void)
{
	SIZE(struct vduse_iotlb_entry, 32, 28);
	ALIGN(struct vduse_iotlb_entry, 8, 4);
	FIELD(struct vduse_iotlb_entry, offset, 0, 8);
	FIELD(struct vduse_iotlb_entry, start, 8, 8);
	FIELD(struct vduse_iotlb_entry, last, 16, 8);
	FIELD(struct vduse_iotlb_entry, perm, 24, 1);
}

static void iotlb_entry_v2(void)
{
	SIZE(struct vduse_iotlb_entry_v2, 80, 80);
	ALIGN(struct vduse_iotlb_entry_v2, 8, 4);
	FIELD(struct vduse_iotlb_entry_v2, offset, 0, 8);
	FIELD(struct vduse_iotlb_entry_v2, start, 8, 8);
	FIELD(struct vduse_iotlb_entry_v2, last, 16, 8);
	FIELD(struct vduse_iotlb_entry_v2, perm, 24, 1);
	FIELD(struct vduse_iotlb_entry_v2, padding, 25, 7);
	FIELD(struct vduse_iotlb_entry_v2, asid, 32, 4);
	FIELD(struct vduse_iotlb_entry_v2, reserved, 36, 44);
}

static void config_data(void)
{
	SIZE(struct vduse_config_data, 8, 8);
	ALIGN(struct vduse_config_data, 4, 4);
	FIELD(struct vduse_config_data, offset, 0, 4);
	FIELD(struct vduse_config_data, length, 4, 4);
	FLEX(struct vduse_config_data, buffer, 8);
}

static void vq_config(void)
{
	SIZE(struct vduse_vq_config, 32, 32);
	ALIGN(struct vduse_vq_config, 4, 4);
	FIELD(struct vduse_vq_config, index, 0, 4);
	FIELD(struct vduse_vq_config, max_size, 4, 2);
	FIELD(struct vduse_vq_config, reserved1, 6, 2);
	FIELD(struct vduse_vq_config, group, 8, 4);
	FIELD(struct vduse_vq_config, reserved2, 12, 20);
}

static void vq_states(void)
{
	SIZE(struct vduse_vq_state_split, 2, 2);
	ALIGN(struct vduse_vq_state_split, 2, 2);
	FIELD(struct vduse_vq_state_split, avail_index, 0, 2);

	SIZE(struct vduse_vq_state_packed, 8, 8);
	ALIGN(struct vduse_vq_state_packed, 2, 2);
	FIELD(struct vduse_vq_state_packed, last_avail_counter, 0, 2);
	FIELD(struct vduse_vq_state_packed, last_avail_idx, 2, 2);
	FIELD(struct vduse_vq_state_packed, last_used_counter, 4, 2);
	FIELD(struct vduse_vq_state_packed, last_used_idx, 6, 2);

	SIZE(struct vduse_vq_group_asid, 8, 8);
	ALIGN(struct vduse_vq_group_asid, 4, 4);
	FIELD(struct vduse_vq_group_asid, group, 0, 4);
	FIELD(struct vduse_vq_group_asid, asid, 4, 4);

	/* 7.3 (Appendix C) */
	SIZE(struct vduse_vq_ready, 8, 8);
	ALIGN(struct vduse_vq_ready, 4, 4);
	FIELD(struct vduse_vq_ready, num, 0, 4);
	FIELD(struct vduse_vq_ready, ready, 4, 4);
}

static void vq_info(void)
{
	SIZE(struct vduse_vq_info, 48, 44);
	ALIGN(struct vduse_vq_info, 8, 4);
	FIELD(struct vduse_vq_info, index, 0, 4);
	FIELD(struct vduse_vq_info, num, 4, 4);
	FIELD(struct vduse_vq_info, desc_addr, 8, 8);
	FIELD(struct vduse_vq_info, driver_addr, 16, 8);
	FIELD(struct vduse_vq_info, device_addr, 24, 8);
	FIELD(struct vduse_vq_info, split, 32, 2);
	FIELD(struct vduse_vq_info, packed, 32, 8);
	FIELD(struct vduse_vq_info, ready, 40, 1);
}

static void vq_eventfd(void)
{
	SIZE(struct vduse_vq_eventfd, 8, 8);
	ALIGN(struct vduse_vq_eventfd, 4, 4);
	FIELD(struct vduse_vq_eventfd, index, 0, 4);
	FIELD(struct vduse_vq_eventfd, fd, 4, 4);
	SIGNED(struct vduse_vq_eventfd, fd, 1);
	SIGNED(struct vduse_vq_eventfd, index, 0);
}

static void iova(void)
{
	SIZE(struct vduse_iova_umem, 48, 48);
	ALIGN(struct vduse_iova_umem, 8, 4);
	FIELD(struct vduse_iova_umem, uaddr, 0, 8);
	FIELD(struct vduse_iova_umem, iova, 8, 8);
	FIELD(struct vduse_iova_umem, size, 16, 8);
	FIELD(struct vduse_iova_umem, asid, 24, 4);
	FIELD(struct vduse_iova_umem, reserved, 28, 20);

	SIZE(struct vduse_iova_info, 48, 48);
	ALIGN(struct vduse_iova_info, 8, 4);
	FIELD(struct vduse_iova_info, start, 0, 8);
	FIELD(struct vduse_iova_info, last, 8, 8);
	FIELD(struct vduse_iova_info, capability, 16, 8);
	FIELD(struct vduse_iova_info, asid, 24, 4);
	FIELD(struct vduse_iova_info, reserved, 28, 20);
}

static void messages(void)
{
	SIZE(struct vduse_vq_state, 12, 12);
	ALIGN(struct vduse_vq_state, 4, 4);
	FIELD(struct vduse_vq_state, index, 0, 4);
	FIELD(struct vduse_vq_state, split, 4, 2);
	FIELD(struct vduse_vq_state, packed, 4, 8);

	SIZE(struct vduse_dev_status, 1, 1);
	ALIGN(struct vduse_dev_status, 1, 1);
	FIELD(struct vduse_dev_status, status, 0, 1);

	SIZE(struct vduse_iova_range, 16, 16);
	ALIGN(struct vduse_iova_range, 8, 4);
	FIELD(struct vduse_iova_range, start, 0, 8);
	FIELD(struct vduse_iova_range, last, 8, 8);

	SIZE(struct vduse_iova_range_v2, 24, 24);
	ALIGN(struct vduse_iova_range_v2, 8, 4);
	FIELD(struct vduse_iova_range_v2, start, 0, 8);
	FIELD(struct vduse_iova_range_v2, last, 8, 8);
	FIELD(struct vduse_iova_range_v2, asid, 16, 4);
	FIELD(struct vduse_iova_range_v2, padding, 20, 4);

	SIZE(struct vduse_dev_request, 152, 152);
	ALIGN(struct vduse_dev_request, 8, 4);
	FIELD(struct vduse_dev_request, type, 0, 4);
	FIELD(struct vduse_dev_request, request_id, 4, 4);
	FIELD(struct vduse_dev_request, reserved, 8, 16);
	FIELD(struct vduse_dev_request, vq_state, 24, 12);
	FIELD(struct vduse_dev_request, s, 24, 1);
	FIELD(struct vduse_dev_request, iova, 24, 16);
	FIELD(struct vduse_dev_request, iova_v2, 24, 24);
	FIELD(struct vduse_dev_request, vq_group_asid, 24, 8);
	/*
	 * 7.3: struct vduse_vq_ready joins the union.  The fact sheet gives
	 * the type but not the member name; "vq_ready" is our header's.
	 */
	FIELD(struct vduse_dev_request, vq_ready, 24, 8);
	FIELD(struct vduse_dev_request, padding, 24, 128);

	SIZE(struct vduse_dev_response, 152, 152);
	ALIGN(struct vduse_dev_response, 4, 4);
	FIELD(struct vduse_dev_response, request_id, 0, 4);
	FIELD(struct vduse_dev_response, result, 4, 4);
	FIELD(struct vduse_dev_response, reserved, 8, 16);
	FIELD(struct vduse_dev_response, vq_state, 24, 12);
	FIELD(struct vduse_dev_response, padding, 24, 128);
}

static void ioctls(void)
{
	/* Control node (section 1.3, Appendix A/B, Appendix C). */
	IOCTL(VDUSE_GET_API_VERSION, 0x80088100, 0x80088100);
	IOCTL(VDUSE_SET_API_VERSION, 0x40088101, 0x40088101);
	IOCTL(VDUSE_CREATE_DEV, 0x41508102, 0x41508102);
	IOCTL(VDUSE_DESTROY_DEV, 0x41008103, 0x41008103);
	IOCTL(VDUSE_GET_FEATURES, 0x80088104, 0x80088104);
	IOCTL(VDUSE_SET_FEATURES, 0x40088105, 0x40088105);

	/* Device node. */
	IOCTL(VDUSE_IOTLB_GET_FD, 0xc0208110, 0xc01c8110);
	IOCTL(VDUSE_DEV_GET_FEATURES, 0x80088111, 0x80088111);
	IOCTL(VDUSE_DEV_SET_CONFIG, 0x40088112, 0x40088112);
	IOCTL(VDUSE_DEV_INJECT_CONFIG_IRQ, 0x00008113, 0x00008113);
	IOCTL(VDUSE_VQ_SETUP, 0x40208114, 0x40208114);
	IOCTL(VDUSE_VQ_GET_INFO, 0xc0308115, 0xc02c8115);
	IOCTL(VDUSE_VQ_SETUP_KICKFD, 0x40088116, 0x40088116);
	IOCTL(VDUSE_VQ_INJECT_IRQ, 0x40048117, 0x40048117);
	IOCTL(VDUSE_IOTLB_REG_UMEM, 0x40308118, 0x40308118);
	IOCTL(VDUSE_IOTLB_DEREG_UMEM, 0x40308119, 0x40308119);
	IOCTL(VDUSE_IOTLB_GET_INFO, 0xc030811a, 0xc030811a);
	IOCTL(VDUSE_IOTLB_GET_FD2, 0xc050811b, 0xc050811b);
}

static void constants(void)
{
	CONST(VDUSE_BASE, 0x81);
	CONST(VDUSE_API_VERSION, 0);
	CONST(VDUSE_API_VERSION_1, 1);
	CONST(VDUSE_NAME_MAX, 256);
	CONST(VDUSE_ACCESS_RO, 0x1);
	CONST(VDUSE_ACCESS_WO, 0x2);
	CONST(VDUSE_ACCESS_RW, 0x3);
	CONST(VDUSE_EVENTFD_DEASSIGN, -1);
	CONST(VDUSE_IOVA_CAP_UMEM, 1);
	CONST(VDUSE_REQ_RESULT_OK, 0);
	CONST(VDUSE_REQ_RESULT_FAILED, 1);
	CONST(VDUSE_GET_VQ_STATE, 0);
	CONST(VDUSE_SET_STATUS, 1);
	CONST(VDUSE_UPDATE_IOTLB, 2);
	CONST(VDUSE_SET_VQ_GROUP_ASID, 3);
	CONST(VDUSE_SET_VQ_READY, 4);
	CONST(VDUSE_SUSPEND, 5);
	CONST(VDUSE_F_QUEUE_READY, 0);
	CONST(VDUSE_F_SUSPEND, 1);
}

int main(void)
{
	printf("# abi_layout: <linux/vduse.h> against abi-facts.md (%s)\n",
	       EXP("x86-64", "i386"));
	dev_config();
	iotlb_entry();
	iotlb_entry_v2();
	config_data();
	vq_config();
	vq_states();
	vq_info();
	vq_eventfd();
	iova();
	messages();
	ioctls();
	constants();
	printf("1..%d\n", tests);
	printf("# %d passed, %d failed\n", tests - failures, failures);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
