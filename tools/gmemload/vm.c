// SPDX-License-Identifier: GPL-2.0
/*
 * gmemload's VMs: each a KVM_X86_SW_PROTECTED_VM with one guest_memfd,
 * the model of that file's pages, and the conversion ioctl on it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmemload.h"

/* ---- the model of each page's state ---- */

uint64_t model_private_in(struct vm_ctx *v, uint64_t first,
				 uint64_t npages)
{
	uint64_t i, n = 0;

	for (i = first; i < first + npages; i++)
		n += v->is_private[i];
	return n;
}

/* Pages of the range that a conversion to @to_private would change. */
static uint64_t model_changes(struct vm_ctx *v, uint64_t first,
			      uint64_t npages, bool to_private)
{
	uint64_t priv = model_private_in(v, first, npages);

	return to_private ? npages - priv : priv;
}

static void model_set(struct vm_ctx *v, uint64_t first, uint64_t npages,
		      bool to_private)
{
	uint64_t i;

	for (i = first; i < first + npages; i++) {
		v->nr_private += (int)to_private - v->is_private[i];
		v->is_private[i] = to_private;
	}
}

/* Calls @fn for every maximal run of pages with the same state. */
unsigned int model_for_each_range(struct vm_ctx *v,
					 void (*fn)(unsigned int idx,
						    struct layout_range *r,
						    void *arg),
					 void *arg)
{
	struct layout_range r;
	unsigned int nr = 0;
	uint64_t i = 0, j;

	while (i < v->npages) {
		j = i + 1;
		while (j < v->npages && v->is_private[j] == v->is_private[i])
			j++;
		r = (struct layout_range){ i * PAGE_BYTES, j * PAGE_BYTES,
					   v->is_private[i] };
		if (fn)
			fn(nr, &r, arg);
		nr++;
		i = j;
	}
	return nr;
}

unsigned int model_nr_ranges(struct vm_ctx *v)
{
	return model_for_each_range(v, NULL, NULL);
}

/* ---- the conversion ioctl ---- */

static void count_eagain(struct vm_ctx *v, uint64_t offset, uint64_t size,
			 uint64_t error_offset)
{
	if (error_offset < offset || error_offset >= offset + size ||
	    error_offset % PAGE_BYTES)
		die("vm%d: EAGAIN for [%#lx, +%#lx) with error_offset %#lx",
		    v->idx, offset, size, error_offset);
	v->eagain_at[error_offset / PAGE_BYTES]++;
	blame_hold(v, error_offset);
	v->n.eagain++;
}

/*
 * Issue the request until it stops failing with EAGAIN, as the ABI says:
 * nothing changed, so the same request is retried after a short wait.
 * Holds whose time is up are released meanwhile, or it would never end.
 */
static int set_attributes_retrying(struct vm_ctx *v, uint64_t offset,
				   uint64_t size, uint64_t attributes,
				   uint64_t flags)
{
	uint64_t error_offset, last_hold = now_ns();
	int r;

	for (;;) {
		r = gmem_set_attrs(v->fd, offset, size, attributes, flags,
				   &error_offset);
		v->n.ioctls++;
		if (r != -EAGAIN)
			return r;
		count_eagain(v, offset, size, error_offset);
		if (any_hold_active())
			last_hold = now_ns();
		else if (now_ns() - last_hold > EAGAIN_GIVE_UP_NS)
			die("vm%d: page at %#lx still busy after every hold ended",
			    v->idx, error_offset);
		sleep_ns(RETRY_DELAY_NS);
		release_expired_holds();
	}
}

/*
 * Content modes (ZERO, PRESERVE) exist in the Linux 6.12 series (RFC v5)
 * only: upstream's later postings refuse every flag with EINVAL, and
 * convert with flags 0.  The kernel's answer to the first request that
 * carries a mode tells which it is, so that a kernel with modes sees no
 * extra call; on one without, every request goes with flags 0.
 */
static enum { MODES_UNKNOWN, MODES_TAKEN, MODES_REFUSED } content_modes;

static int set_attributes_in_mode(struct vm_ctx *v, uint64_t offset,
				  uint64_t size, uint64_t attributes,
				  uint64_t mode)
{
	int r;

	if (content_modes == MODES_REFUSED)
		mode = KVM_SET_MEMORY_ATTRIBUTES2_MODE_UNSPECIFIED;
	r = set_attributes_retrying(v, offset, size, attributes, mode);
	if (!mode || content_modes != MODES_UNKNOWN)
		return r;
	if (r != -EINVAL) {
		content_modes = MODES_TAKEN;
		return r;
	}
	content_modes = MODES_REFUSED;
	v->n.refused++;
	return set_attributes_retrying(v, offset, size, attributes,
				       KVM_SET_MEMORY_ATTRIBUTES2_MODE_UNSPECIFIED);
}

/*
 * Convert pages [@first, @first + @npages) of @v and account for it.  The
 * model says how many pages change; a call that changes none is a no-op.
 */
void convert_range(struct vm_ctx *v, uint64_t first, uint64_t npages,
			  bool to_private, uint64_t mode, bool guest)
{
	uint64_t changed = model_changes(v, first, npages, to_private);
	uint64_t attrs = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
	int r;

	r = set_attributes_in_mode(v, first * PAGE_BYTES, npages * PAGE_BYTES,
				   attrs, mode);
	if (r)
		die("vm%d: converting [%#lx, +%#lx) to %s: %s", v->idx,
		    first * PAGE_BYTES, npages * PAGE_BYTES,
		    to_private ? "private" : "shared", strerror(-r));
	if (!changed) {
		v->n.noop++;
		return;
	}
	model_set(v, first, npages, to_private);
	v->n.conversions[to_private]++;
	v->n.pages[to_private] += changed;
	if (guest)
		v->n.guest_driven++;
}

/* ---- VMs ---- */

/*
 * The module parameter that turns in-place conversion on, as each kernel
 * this series exists for names it, and what it reads when on.
 */
static const struct {
	const char *param;
	char on;
	const char *boot_with;
} in_place_switches[] = {
	{ "vm_memory_attributes", 'N', "kvm.vm_memory_attributes=0" },	/* 6.12 */
	{ "gmem_in_place_conversion", 'Y', "kvm.gmem_in_place_conversion=1" },	/* 7.3 */
};

/* Exits as unsupported when this KVM has one of the switches, off. */
static void check_in_place_switch(void)
{
	unsigned int i;
	char path[96];
	int value;
	FILE *f;

	for (i = 0; i < ARRAY_SIZE(in_place_switches); i++) {
		snprintf(path, sizeof(path), "/sys/module/kvm/parameters/%s",
			 in_place_switches[i].param);
		f = fopen(path, "r");
		if (!f)
			continue;
		value = fgetc(f);
		fclose(f);
		if (value != in_place_switches[i].on)
			unsupported("guest_memfd in-place conversion is off: boot with %s",
				    in_place_switches[i].boot_with);
	}
}

void check_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK))
		unsupported("/dev/kvm: %s", strerror(errno));
	check_in_place_switch();
	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM)))
		unsupported("KVM_X86_SW_PROTECTED_VM is not supported");
	if (opt.guest_pct && !(kvm_check_cap(KVM_CAP_EXIT_HYPERCALL) &
			       BIT(KVM_HC_MAP_GPA_RANGE)))
		unsupported("KVM_CAP_EXIT_HYPERCALL lacks KVM_HC_MAP_GPA_RANGE");
}

/*
 * What this kernel must offer a VM: the guest_memfd flags (upstream's
 * since Linux 6.18, numbered alike on every kernel), which a VM with
 * private memory has only where guest_memfd holds the attributes.
 */
static void check_vm(struct kvm_vm *vm)
{
	if ((vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS) & GMEM_FLAGS) !=
	    GMEM_FLAGS)
		unsupported("guest_memfd lacks GUEST_MEMFD_FLAG_MMAP or _INIT_SHARED for this VM type");
}

/*
 * Whether @fd takes KVM_SET_MEMORY_ATTRIBUTES2, asked of the file itself:
 * the capability's number differs between kernels.  Without an argument
 * the call fails with EFAULT before the kernel reads, traces or changes
 * anything; ENOTTY says that this file cannot convert.
 */
static void check_conversion_ioctl(int fd)
{
	if (!ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, NULL))
		die("KVM_SET_MEMORY_ATTRIBUTES2 took a NULL argument");
	if (errno == ENOTTY)
		unsupported("guest_memfd lacks KVM_SET_MEMORY_ATTRIBUTES2");
	if (errno != EFAULT)
		die("KVM_SET_MEMORY_ATTRIBUTES2 without an argument: %s",
		    strerror(errno));
}

/*
 * Like gmem_vm_create() in tests/kvm/gmem.h, minus the guest page tables
 * for the data memory: the guest only names it in hypercalls.  The host
 * mapping goes where the memslot's userspace_addr points, so that KVM and
 * the host see the same shared pages.
 */
void vm_setup(struct vm_ctx *v, int idx)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct userspace_mem_region *region;
	struct stat st;

	v->idx = idx;
	v->npages = opt.size / PAGE_BYTES;
	v->vm = __vm_create_with_vcpus(shape, 1, 0, guest_code, &v->vcpu);
	check_vm(v->vm);

	v->fd = __vm_create_guest_memfd(v->vm, opt.size, GMEM_FLAGS);
	if (v->fd < 0)
		die("vm%d: KVM_CREATE_GUEST_MEMFD of %lu bytes: %s", idx,
		    opt.size, strerror(errno));
	check_conversion_ioctl(v->fd);
	vm_mem_add(v->vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA, DATA_SLOT, v->npages,
		   KVM_MEM_GUEST_MEMFD, v->fd, 0);
	region = memslot2region(v->vm, DATA_SLOT);
	v->mem = mmap(region->host_mem, opt.size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_FIXED, v->fd, 0);
	if (v->mem != region->host_mem)
		die("vm%d: mmap(guest_memfd): %s", idx, strerror(errno));
	if (fstat(v->fd, &st))
		die("fstat(guest_memfd): %s", strerror(errno));
	v->ino = st.st_ino;

	v->is_private = calloc(v->npages, sizeof(*v->is_private));
	v->eagain_at = calloc(v->npages, sizeof(*v->eagain_at));
	if (!v->is_private || !v->eagain_at)
		die("out of memory");

	if (opt.guest_pct) {
		vm_enable_cap(v->vm, KVM_CAP_EXIT_HYPERCALL,
			      BIT_ULL(KVM_HC_MAP_GPA_RANGE));
		start_vcpu_thread(v);
	}
}

void vm_teardown(struct vm_ctx *v)
{
	close(v->fd);
	kvm_vm_free(v->vm);
	free(v->is_private);
	free(v->eagain_at);
}
