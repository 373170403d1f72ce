# SPDX-License-Identifier: GPL-2.0
#
# Kbuild file for VDUSE (vDPA Device in Userspace).
#
# In a kernel tree this file lives in drivers/vdpa/vdpa_user/ and only the
# kbuild part below is read.  Run from a checkout of the out-of-tree
# project, the second half builds the module against KDIR and drives the
# tools and the tests.

ifneq ($(KERNELRELEASE),)

obj-$(CONFIG_VDPA_USER) += vduse.o
vduse-y := vduse_dev.o iova_domain.o

# define_trace.h includes our tracepoint header, vduse_trace.h, as
# "./vduse_trace.h": it is found through this directory.
CFLAGS_vduse_dev.o += -I$(src)

# Out of tree, our uapi header and the compat shims for older kernels come
# before the kernel's own headers.  A kernel tree's drivers/vdpa/vdpa_user/
# has no include/ directory, so in-tree builds, "make M=drivers/vdpa/vdpa_user"
# included, never see them.
ifneq ($(wildcard $(src)/include/compat/vduse_compat.h),)
include $(src)/include/compat/Kbuild
endif

else

KDIR ?= /lib/modules/$(shell uname -r)/build
KERNELS ?=

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) CONFIG_VDPA_USER=m modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null || \
		rm -f *.o *.ko *.mod *.mod.c .*.cmd Module.symvers modules.order
	rm -rf build

# Everything below runs in a QEMU guest through tools/testing/vm/run.
check:
	tools/testing/check $(KERNELS)

vm-shell:
	tools/testing/vm/run --shell

demo:
	tools/testing/vm/run -- /vduse/tools/demo/demo.sh

.PHONY: all modules clean check vm-shell demo

# Our module against the stock one, in one guest boot per kernel; report in
# build/bench/.  BENCH_KERNELS, BENCH_ROUNDS, BENCH_RUNTIME, BENCH_DEVICES:
# see Documentation/benchmarks.rst.
bench:
	@tools/bench/run

.PHONY: bench

# The long runs of issue 7, an hour in all: the fuzzer for SOAK_SECONDS
# (default 1800), every fault ROUNDS times (default 3), the races for
# RACES_SECONDS each (default 240) and every suite in SOAK_SUITES
# (default "fuzz faults races") with SOAK=1, on 7.3
# with our module (tools/testing/soak); ends with "N passed, M failed".
soak:
	tools/testing/soak

.PHONY: soak

endif
