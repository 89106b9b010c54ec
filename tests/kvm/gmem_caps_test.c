// SPDX-License-Identifier: GPL-2.0
/*
 * What each mode of the switch (kvm.vm_memory_attributes on 6.12,
 * kvm.gmem_in_place_conversion on 7.3) offers a software-protected VM, and
 * /dev/kvm: capabilities, guest_memfd flags, and which of the two
 * attribute ioctls works.  Default VMs are in gmem_default_vm_test.
 */
#include "gmem.h"
#include "kselftest_harness.h"

#define ALL_FLAGS	(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)

/*
 * The guest_memfd flags of a VM with private memory while attributes are
 * per VM: none on 6.12, whose mmap() needs guest_memfd to hold them; on
 * 7.3 mmap(), though without INIT_SHARED all of the file is private.
 */
static uint64_t per_vm_flags(void)
{
	return gmem_legacy_switch() ? 0 : GUEST_MEMFD_FLAG_MMAP;
}

/*
 * What the VM ioctl KVM_SET_MEMORY_ATTRIBUTES answers to PRIVATE while
 * guest_memfd holds the attributes: 6.12 takes the ioctl away, 7.3 keeps
 * it and supports no attribute (KVM_CAP_MEMORY_ATTRIBUTES is 0).
 */
static int vm_ioctl_errno_in_place(void)
{
	return gmem_legacy_switch() ? ENOTTY : EINVAL;
}

FIXTURE(caps) {
	struct kvm_vm *vm;
	bool per_vm;
};

FIXTURE_SETUP(caps)
{
	self->vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	self->per_vm = gmem_vm_attributes_mode();
}

FIXTURE_TEARDOWN(caps)
{
	kvm_vm_free(self->vm);
}

TEST_F(caps, capabilities_follow_the_mode)
{
	struct kvm_vm *vm = self->vm;

	if (self->per_vm) {
		EXPECT_EQ(vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES), PRIVATE);
		EXPECT_EQ(vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS), per_vm_flags());
		EXPECT_EQ(vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES), 0);
		EXPECT_MODES_CAP(vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS), 0);
	} else {
		EXPECT_EQ(vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES), 0);
		EXPECT_EQ(vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS), ALL_FLAGS);
		EXPECT_EQ(vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES),
			  PRIVATE);
		EXPECT_MODES_CAP(vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS),
				 GMEM_MODES);
	}
}

/* Without a VM: what a VM type that converts in place would report. */
TEST_F(caps, dev_kvm_reports_what_a_capable_vm_type_gets)
{
	EXPECT_EQ(kvm_check_cap(KVM_CAP_GUEST_MEMFD), 1);
	EXPECT_EQ(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS), ALL_FLAGS);
	if (self->per_vm) {
		EXPECT_EQ(kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES), 0);
		EXPECT_MODES_CAP(kvm_check_cap(KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS), 0);
	} else {
		EXPECT_EQ(kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES),
			  PRIVATE);
		EXPECT_MODES_CAP(kvm_check_cap(KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS),
				 GMEM_MODES);
	}
}

TEST_F(caps, guest_memfd_accepts_exactly_the_reported_flags)
{
	EXPECT_EQ(gmem_first_wrong_flag(self->vm,
					self->per_vm ? per_vm_flags() : ALL_FLAGS), 0);
}

TEST_F(caps, only_the_mode_s_attribute_ioctl_works)
{
	struct kvm_memory_attributes vm_args = {
		.address = 0, .size = getpagesize(), .attributes = PRIVATE,
	};
	int fd = vm_create_guest_memfd(self->vm, getpagesize(), 0);
	int vm_r, gmem_r;

	vm_r = __vm_ioctl(self->vm, KVM_SET_MEMORY_ATTRIBUTES, &vm_args) ? errno : 0;
	gmem_r = -gmem_set_attrs(fd, 0, getpagesize(), SHARED, MODE_NONE, NULL);

	if (self->per_vm) {
		EXPECT_EQ(vm_r, 0);
		EXPECT_EQ(gmem_r, ENOTTY);
	} else {
		EXPECT_EQ(vm_r, vm_ioctl_errno_in_place());
		EXPECT_EQ(gmem_r, 0);
	}
	close(fd);
}

TEST_F(caps, private_guest_memfd_cannot_be_mapped)
{
	int fd = vm_create_guest_memfd(self->vm, getpagesize(), 0);

	EXPECT_EQ(mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED);
	EXPECT_EQ(errno, ENODEV);
	close(fd);
}

TEST_F(caps, mapping_must_be_shared)
{
	int fd;

	if (self->per_vm)
		SKIP(return, "%s: no shared guest_memfd", gmem_per_vm_reason());

	fd = vm_create_guest_memfd(self->vm, getpagesize(),
				   GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
	EXPECT_EQ(mmap(NULL, getpagesize(), PROT_READ, MAP_PRIVATE, fd, 0), MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_NE(mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED);
	close(fd);
}

TEST_HARNESS_MAIN
