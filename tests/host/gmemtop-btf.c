// SPDX-License-Identifier: GPL-2.0
/*
 * Stand-ins for a kernel's BTF, one per situation gmemtop tells apart,
 * for gmemtop --btf (tests/host/gmemtop-errors.test).  Only what gmemtop
 * looks for is here: the functions that mark KVM and guest_memfd, and the
 * btf_trace_<event> typedefs with their argument counts.  Built with
 *   clang-19 -g -c -target bpf -DKVM ... gmemtop-btf.c
 * and its .BTF section taken out.
 */

/* Something, so that a kernel without KVM has BTF all the same. */
int start_kernel(void)
{
	return 0;
}

#ifdef KVM
long kvm_dev_ioctl(void *filp, unsigned int ioctl, unsigned long arg)
{
	return 0;
}
#endif

#ifdef GMEM
long kvm_gmem_fallocate(void *file, int mode, long offset, long len)
{
	return 0;
}
#endif

#ifdef GMEM_MMAP
unsigned int kvm_gmem_fault_user_mapping(void *vmf)
{
	return 0;
}
#endif

/* A tracepoint's BTF: typedef void (*btf_trace_NAME)(void *__data, ...). */
#define EVENT(name, ...)						\
	typedef void (*btf_trace_##name)(void *__data, __VA_ARGS__);	\
	btf_trace_##name name##_probe

#define I2	int, int
#define I3	int, int, int
#define I5	I2, I3
#define I10	I5, I5

#ifdef EVENTS
EVENT(kvm_gmem_set_attributes_begin, I5, I2);
EVENT(kvm_gmem_set_attributes_end, I10, int);
EVENT(kvm_gmem_refcount_fail, I10, int);
EVENT(kvm_gmem_lru_drain, I5);
EVENT(kvm_gmem_invalidate_begin, I5, I3);
#ifndef NO_PHASE
EVENT(kvm_gmem_phase, I5);
#endif
#endif

/* An older layout of the one event gmemtop cannot do without. */
#ifdef OLD_EVENTS
EVENT(kvm_gmem_set_attributes_end, I10);
#endif
