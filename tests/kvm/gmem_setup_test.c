// SPDX-License-Identifier: GPL-2.0
/*
 * The test kernel's KVM can run what the rest of the project needs: nested
 * paging under QEMU's SVM, the software-protected VM type, guest_memfd.
 */
#include <sys/stat.h>

#include "kvm_util.h"
#include "kselftest_harness.h"

static char read_param(const char *path)
{
	char c = 0;
	FILE *f = fopen(path, "r");

	TEST_ASSERT(f, "open %s", path);
	TEST_ASSERT(fread(&c, 1, 1, f) == 1, "read %s", path);
	fclose(f);
	return c;
}

TEST(kvm_amd_uses_nested_paging)
{
	ASSERT_EQ(read_param("/sys/module/kvm_amd/parameters/npt"), 'Y');
	ASSERT_EQ(read_param("/sys/module/kvm/parameters/tdp_mmu"), 'Y');
}

TEST(sw_protected_vm_type_is_offered)
{
	int types = kvm_check_cap(KVM_CAP_VM_TYPES);

	ASSERT_TRUE(types & BIT(KVM_X86_SW_PROTECTED_VM));
}

TEST(guest_memfd_is_created_with_its_size)
{
	const size_t size = 16 * getpagesize();
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	struct stat st;
	int fd;

	ASSERT_EQ(vm_check_cap(vm, KVM_CAP_GUEST_MEMFD), 1);
	fd = vm_create_guest_memfd(vm, size, 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	ASSERT_EQ(st.st_size, size);
	ASSERT_EQ(__vm_create_guest_memfd(vm, size + 1, 0), -1);
	ASSERT_EQ(errno, EINVAL);

	close(fd);
	kvm_vm_free(vm);
}

TEST_HARNESS_MAIN
