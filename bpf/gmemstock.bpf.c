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

/* Shared by all CPUs, sized from --max-files; see gmemtop.bpf.c. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GMEM_MAX_FILES);
	__type(key, __u64);
	__type(value, struct gmem_stock_stats);
} stock_files SEC(".maps");

/* Files refused by a full stock_files map: see GMEM_MAX_REFUSED. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GMEM_MAX_REFUSED);
	__type(key, __u64);
	__type(value, __u8);
} refused SEC(".maps");

/* Files the map had no room for, and their events. */
__u64 files_not_tracked = 0;
__u64 events_not_counted = 0;

/*
 * A file the map refused: every event counted, the file once.  Looked up
 * before the update: an LRU update takes a free element before it looks
 * for the key, and in a small map that may evict the key's own entry,
 * which would count the file again.
 */
static void count_refused_file(__u64 ino)
{
	__u8 seen = 1;

	__sync_fetch_and_add(&events_not_counted, 1);
	if (!bpf_map_lookup_elem(&refused, &ino) &&
	    !bpf_map_update_elem(&refused, &ino, &seen, BPF_NOEXIST))
		__sync_fetch_and_add(&files_not_tracked, 1);
}

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
	stats = bpf_map_lookup_elem(&stock_files, &ino);
	if (!stats)
		count_refused_file(ino);
	return stats;
}

SEC("fexit/kvm_gmem_fault_user_mapping")
int BPF_PROG(user_fault, struct vm_fault *vmf, vm_fault_t ret)
{
	struct gmem_stock_stats *stats;

	stats = stock_stats(BPF_CORE_READ(vmf, vma, vm_file));
	if (!stats)
		return 0;
	if (ret & VM_FAULT_SIGBUS)
		__sync_fetch_and_add(&stats->sigbus, 1);
	else
		__sync_fetch_and_add(&stats->faults, 1);
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
		__sync_fetch_and_add(&stats->punch_holes, 1);
		__sync_fetch_and_add(&stats->punched_bytes, len);
	} else {
		__sync_fetch_and_add(&stats->allocations, 1);
		__sync_fetch_and_add(&stats->allocated_bytes, len);
	}
	return 0;
}

/*
 * The file is closed for good (its last reference went): user space
 * deletes it once a report has shown its final counts, so that files
 * coming and going never fill the map.  Never creates an entry.
 */
SEC("fexit/kvm_gmem_release")
int BPF_PROG(release, struct inode *inode, struct file *file, int ret)
{
	__u64 ino = BPF_CORE_READ(inode, i_ino);
	struct gmem_stock_stats *stats;

	stats = bpf_map_lookup_elem(&stock_files, &ino);
	if (stats)
		stats->released_ns = bpf_ktime_get_ns();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
