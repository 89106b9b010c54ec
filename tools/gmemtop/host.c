// SPDX-License-Identifier: GPL-2.0
/* What the host lets gmemtop do, and what it says of its processes. */
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "gmemtop.h"

/*
 * With KVM built as modules, the kvm_gmem events and guest_memfd's
 * functions are kvm.ko's, and libbpf finds a module's BTF by walking the
 * kernel's BTF objects (BPF_BTF_GET_NEXT_ID), which takes CAP_SYS_ADMIN.
 */
static bool kvm_is_module(void)
{
	return !access("/sys/kernel/btf/kvm", F_OK);
}

/* Root, or CAP_BPF and CAP_PERFMON where that is enough (KVM built in). */
bool may_trace(void)
{
	struct __user_cap_header_struct head = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3] = {};

#define HAS(cap)	(caps[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap))
	if (syscall(SYS_capget, &head, caps))
		return true;	/* the load will tell */
	return HAS(CAP_SYS_ADMIN) ||
	       (HAS(CAP_BPF) && HAS(CAP_PERFMON) && !kvm_is_module());
#undef HAS
}

int no_privilege(void)
{
	if (kvm_is_module())
		fprintf(stderr, "gmemtop: not allowed to load BPF programs: "
			"KVM is a module here, and finding kvm.ko's BTF takes "
			"CAP_SYS_ADMIN: run as root, or with CAP_SYS_ADMIN\n");
	else
		fprintf(stderr, "gmemtop: not allowed to load BPF programs: "
			"run as root, or with CAP_BPF and CAP_PERFMON\n");
	return EXIT_NO_PRIVILEGE;
}

/*
 * The kvm_gmem events name the guest_memfd's creator by pid, but the
 * thread that converts is often a vCPU thread ("CPU 1/KVM"): the
 * process's own name is that of its main thread, /proc/PID/comm.
 */
void read_process_name(pid_t pid, char comm[GMEM_COMM_LEN])
{
	char path[32], name[GMEM_COMM_LEN + 1];
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	len = fread(name, 1, GMEM_COMM_LEN, f);
	fclose(f);
	if (len && name[len - 1] == '\n')
		len--;
	if (!len)
		return;
	memset(comm, 0, GMEM_COMM_LEN);
	memcpy(comm, name, len < GMEM_COMM_LEN ? len : GMEM_COMM_LEN - 1);
}
