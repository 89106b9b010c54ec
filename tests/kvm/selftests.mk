# Building against the kernel tree's KVM selftests library (objects from
# scripts/kernel's selftests build) and UAPI headers, with the flags the
# selftests themselves use.  Included by tests/kvm and tools/gmemload.

HERE	:= $(dir $(lastword $(MAKEFILE_LIST)))
KTREE	?= $(shell $(HERE)../../scripts/kernel path)
SRC	:= $(KTREE)/src
ST	:= $(SRC)/tools/testing/selftests/kvm
LIBOUT	:= $(KTREE)/kselftest
# Linux 6.14 renamed the selftests' x86_64 directories to x86.
ARCHDIR	:= $(if $(wildcard $(ST)/include/x86_64),x86_64,x86)
LIBKVM	:= $(wildcard $(LIBOUT)/lib/*.o $(LIBOUT)/lib/$(ARCHDIR)/*.o)

CC	:= ccache gcc
CFLAGS	:= -Wall -Wstrict-prototypes -Wuninitialized -O2 -g -std=gnu99 \
	   -MD -MP -DCONFIG_64BIT -U_FORTIFY_SOURCE -fno-builtin-memcmp \
	   -fno-builtin-memcpy -fno-builtin-memset -fno-builtin-strnlen \
	   -fno-stack-protector -fno-PIE -fno-strict-aliasing \
	   -march=x86-64-v2 -D_GNU_SOURCE \
	   -isystem $(KTREE)/usr/include -I$(SRC)/tools/include \
	   -I$(SRC)/tools/arch/x86/include -I$(ST)/include \
	   -I$(ST)/include/$(ARCHDIR) -I$(ST)/.. -I$(HERE) -I. -idirafter $(SRC)
# Later selftests renamed the guest_random_* helpers kvm_random_* (gmem.h).
ifneq ($(shell grep -s new_kvm_random_state $(ST)/include/test_util.h),)
CFLAGS	+= -DGMEM_KVM_RANDOM
endif
LDFLAGS	:= -pthread -no-pie
LDLIBS	:= -ldl
