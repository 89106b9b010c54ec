// SPDX-License-Identifier: GPL-2.0
/*
 * guest_memfd for VMs without private memory, as Linux 6.18 offers it: the
 * file can be mmap()ed, is all shared, backs memslots that KVM maps from it,
 * and cannot be converted.  The same in both modes of the switch
 * (kvm.vm_memory_attributes on 6.12, kvm.gmem_in_place_conversion on 7.3).
 */
#include <fcntl.h>
#include <linux/falloc.h>

#include "gmem.h"
#include "kselftest_harness.h"

#define NR_PAGES	8
#define BOTH_FLAGS	(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)

static size_t page;

FIXTURE(dvm) {
	struct kvm_vm *vm;
	int fd;
	uint8_t *mem;
};

FIXTURE_SETUP(dvm)
{
	page = getpagesize();
	self->vm = vm_create_barebones();
	self->fd = vm_create_guest_memfd(self->vm, NR_PAGES * page, BOTH_FLAGS);
	self->mem = mmap(NULL, NR_PAGES * page, PROT_READ | PROT_WRITE,
			 MAP_SHARED, self->fd, 0);
	ASSERT_NE(self->mem, MAP_FAILED);
	gmem_catch_sigbus();
}

FIXTURE_TEARDOWN(dvm)
{
	munmap(self->mem, NR_PAGES * page);
	close(self->fd);
	kvm_vm_free(self->vm);
}

TEST_F(dvm, capabilities)
{
	EXPECT_EQ(vm_check_cap(self->vm, KVM_CAP_GUEST_MEMFD), 1);
	EXPECT_EQ(vm_check_cap(self->vm, KVM_CAP_GUEST_MEMFD_FLAGS), BOTH_FLAGS);
	EXPECT_EQ(vm_check_cap(self->vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES), 0);
	EXPECT_MODES_CAP(vm_check_cap(self->vm, KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS), 0);
	EXPECT_EQ(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS), BOTH_FLAGS);
}

TEST_F(dvm, flags_are_checked)
{
	EXPECT_EQ(gmem_first_wrong_flag(self->vm, BOTH_FLAGS), 0);
}

TEST_F(dvm, mapping_reads_zeros_then_what_was_written)
{
	uint8_t *again;
	size_t i;

	for (i = 0; i < NR_PAGES * page; i++)
		ASSERT_EQ(self->mem[i], 0);
	memset(self->mem, 0x5a, NR_PAGES * page);

	again = mmap(NULL, NR_PAGES * page, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(again, MAP_FAILED);
	for (i = 0; i < NR_PAGES * page; i++)
		ASSERT_EQ(again[i], 0x5a);
	munmap(again, NR_PAGES * page);
}

TEST_F(dvm, only_shared_mappings_inside_the_file)
{
	uint8_t v;

	EXPECT_EQ(mmap(NULL, page, PROT_READ, MAP_PRIVATE, self->fd, 0), MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);

	/* A mapping may reach past the end; touching there is SIGBUS. */
	uint8_t *big = mmap(NULL, 2 * NR_PAGES * page, PROT_READ, MAP_SHARED,
			    self->fd, 0);
	ASSERT_NE(big, MAP_FAILED);
	EXPECT_TRUE(gmem_host_read(big + (NR_PAGES - 1) * page, &v));
	EXPECT_FALSE(gmem_host_read(big + NR_PAGES * page, &v));
	munmap(big, 2 * NR_PAGES * page);
}

TEST_F(dvm, fallocate_and_punch_hole)
{
	memset(self->mem, 0x11, NR_PAGES * page);
	ASSERT_EQ(fallocate(self->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			    page, 2 * page), 0);
	EXPECT_EQ(self->mem[0], 0x11);
	EXPECT_EQ(self->mem[page], 0);
	EXPECT_EQ(self->mem[2 * page], 0);
	EXPECT_EQ(self->mem[3 * page], 0x11);

	EXPECT_EQ(fallocate(self->fd, FALLOC_FL_KEEP_SIZE, 0, NR_PAGES * page), 0);
	EXPECT_EQ(fallocate(self->fd, FALLOC_FL_KEEP_SIZE, 0, (NR_PAGES + 1) * page), -1);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(fallocate(self->fd, 0, 0, page), -1);
	EXPECT_EQ(errno, EOPNOTSUPP);
	EXPECT_EQ(ftruncate(self->fd, 2 * NR_PAGES * page), -1);
}

/*
 * How a conversion of a default VM's guest_memfd fails: without the ioctl
 * (ENOTTY) on 6.12, and on 7.3 while the switch is off; with it on, 7.3
 * refuses a VM without private memory (EINVAL).
 */
static int conversion_errno(void)
{
	return gmem_legacy_switch() || gmem_vm_attributes_mode() ? ENOTTY : EINVAL;
}

TEST_F(dvm, cannot_be_converted)
{
	int err = conversion_errno();

	EXPECT_EQ(gmem_set_attrs(self->fd, 0, page, SHARED, MODE_NONE, NULL), -err);
	EXPECT_EQ(gmem_set_attrs(self->fd, 0, page, PRIVATE, MODE_NONE, NULL), -err);
}

TEST(mapping_without_init_shared_is_private)
{
	struct kvm_vm *vm = vm_create_barebones();
	int fd = vm_create_guest_memfd(vm, getpagesize(), GUEST_MEMFD_FLAG_MMAP);
	uint8_t *p = mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, fd, 0);
	uint8_t v;

	ASSERT_NE(p, MAP_FAILED);
	gmem_catch_sigbus();
	EXPECT_FALSE(gmem_host_read(p, &v));
	munmap(p, getpagesize());
	close(fd);
	kvm_vm_free(vm);
}

/* The guest and the host see the same bytes: the guest_memfd's. */
static void guest_write_then_check(void)
{
	volatile uint64_t *p = (uint64_t *)GMEM_DATA_GPA;
	int i;

	for (i = 0; i < NR_PAGES; i++)
		p[i * 512] = 0x1000 + i;
	GUEST_SYNC(1);
	for (i = 0; i < NR_PAGES; i++)
		GUEST_ASSERT_EQ(p[i * 512], 0x2000 + i);
	GUEST_DONE();
}

TEST(default_vm_runs_from_guest_memfd)
{
	size_t size = NR_PAGES * getpagesize();
	uint64_t *file, *hva;
	struct gmem_vm g;
	struct ucall uc;
	int i;

	gmem_vm_create_type(&g, KVM_X86_DEFAULT_VM, 1, guest_write_then_check,
			    size, GUEST_MEMFD_FLAG_INIT_SHARED);

	/*
	 * Point the memslot's userspace_addr at anonymous memory: KVM must
	 * still map the guest_memfd's pages, which the host sees through a
	 * mapping of its own.
	 */
	file = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g.fd, 0);
	ASSERT_NE(file, MAP_FAILED);
	hva = mmap(g.mem, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ((void *)hva, (void *)g.mem);

	ASSERT_EQ(gmem_run_to_ucall(g.vcpus[0], &uc), UCALL_SYNC);
	for (i = 0; i < NR_PAGES; i++) {
		ASSERT_EQ(file[i * 512], 0x1000 + i);
		ASSERT_EQ(hva[i * 512], 0);
		file[i * 512] = 0x2000 + i;
	}
	ASSERT_EQ(gmem_run_to_ucall(g.vcpus[0], &uc), UCALL_DONE);

	munmap(file, size);
	gmem_vm_free(&g);
}

TEST_HARNESS_MAIN
