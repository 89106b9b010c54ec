// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop's fallback for kernels that have guest_memfd but not the
 * kvm_gmem trace events: what fexit on guest_memfd's own functions can
 * still tell, per guest_memfd.  Conversions, EAGAIN, their latency and
 * KVM's invalidations are not visible this way.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "gmem.h"

#define VM_FAULT_SIGBUS		0x000002
#define FALLOC_FL_PUNCH_HOLE	0x02

const volatile __u32 targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, GMEM_MAX_FILES);
	__type(key, __u64);
	__type(value, struct gmem_stock_stats);
} stock_files SEC(".maps");

static struct gmem_stock_stats *stock_stats(struct file *file)
{
	struct gmem_stock_stats *stats, fresh = {};
	__u64 ino = BPF_CORE_READ(file, f_inode, i_ino);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (targ_pid && targ_pid != pid)
		return NULL;

	stats = bpf_map_lookup_elem(&stock_files, &ino);
	if (stats)
		return stats;
	fresh.pid = pid;
	bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	bpf_map_update_elem(&stock_files, &ino, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&stock_files, &ino);
}

SEC("fexit/kvm_gmem_fault_user_mapping")
int BPF_PROG(user_fault, struct vm_fault *vmf, vm_fault_t ret)
{
	struct gmem_stock_stats *stats;

	stats = stock_stats(BPF_CORE_READ(vmf, vma, vm_file));
	if (!stats)
		return 0;
	if (ret & VM_FAULT_SIGBUS)
		stats->sigbus++;
	else
		stats->faults++;
	return 0;
}

SEC("fexit/kvm_gmem_fallocate")
int BPF_PROG(fallocate, struct file *file, int mode, loff_t offset,
	     loff_t len, long ret)
{
	struct gmem_stock_stats *stats;

	if (ret)
		return 0;
	stats = stock_stats(file);
	if (!stats)
		return 0;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		stats->punch_holes++;
		stats->punched_bytes += len;
	} else {
		stats->allocations++;
		stats->allocated_bytes += len;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
