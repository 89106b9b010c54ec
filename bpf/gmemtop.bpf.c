// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel half of gmemtop, gmemlat and gmemsnoop: aggregates the kvm_gmem
 * trace events per guest_memfd, in the kernel.  Only the snooping mode
 * copies a record per conversion to user space.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "gmem.h"

#define EAGAIN	11
#define KVM_MEMORY_ATTRIBUTE_PRIVATE	(1ULL << 3)

/* Set before load: 0 means no filter. */
const volatile __u32 targ_pid = 0;
const volatile __u32 targ_vm = 0;
const volatile bool snoop = false;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, GMEM_MAX_FILES);
	__type(key, __u64);
	__type(value, struct gmem_file_stats);
} files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GMEM_MAX_INFLIGHT);
	__type(key, __u32);
	__type(value, struct gmem_inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GMEM_MAX_HOTSPOTS);
	__type(key, struct gmem_hotspot_key);
	__type(value, struct gmem_hotspot);
} hotspots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Records the ring buffer had no room for. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* Zeroed stats to insert: too big for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gmem_file_stats);
} zero_stats SEC(".maps");

static bool wanted(pid_t pid, __u32 vm)
{
	return (!targ_pid || targ_pid == pid) && (!targ_vm || targ_vm == vm);
}

static __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

static struct gmem_file_stats *file_stats(__u64 ino, pid_t pid, __u32 vm)
{
	struct gmem_file_stats *stats;
	__u32 zero = 0;

	stats = bpf_map_lookup_elem(&files, &ino);
	if (stats)
		return stats;

	stats = bpf_map_lookup_elem(&zero_stats, &zero);
	if (!stats)
		return NULL;
	stats->pid = pid;
	stats->vm = vm;
	bpf_map_update_elem(&files, &ino, stats, BPF_NOEXIST);
	return bpf_map_lookup_elem(&files, &ino);
}

SEC("tp_btf/kvm_gmem_set_attributes_begin")
int BPF_PROG(conversion_begin, u64 ino, pid_t pid, u32 vm)
{
	struct gmem_inflight conv = {};
	__u32 tid = current_tid();

	if (!wanted(pid, vm))
		return 0;

	conv.start_ns = conv.last_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&inflight, &tid, &conv, BPF_ANY);
	return 0;
}

SEC("tp_btf/kvm_gmem_phase")
int BPF_PROG(conversion_phase, u64 ino, pid_t pid, u32 vm, u64 offset,
	     unsigned int phase)
{
	__u32 tid = current_tid();
	struct gmem_inflight *conv;
	__u64 now;

	conv = bpf_map_lookup_elem(&inflight, &tid);
	/* Keep clang from folding the bound check into a mask. */
	barrier_var(phase);
	if (!conv || phase >= GMEM_PHASE_TAIL)
		return 0;

	now = bpf_ktime_get_ns();
	conv->phase_ns[phase] += now - conv->last_ns;
	conv->last_ns = now;
	return 0;
}

static void account_latency(struct gmem_file_stats *stats,
			    struct gmem_inflight *conv, __u64 lat)
{
	unsigned int bucket = gmem_hist_bucket(lat);
	int i;

	stats->lat_sum_ns += lat;
	if (lat > stats->lat_max_ns)
		stats->lat_max_ns = lat;
	if (bucket < GMEM_HIST_BUCKETS)
		stats->hist[bucket]++;
	for (i = 0; i < GMEM_NR_PHASES; i++)
		stats->phase_ns[i] += conv->phase_ns[i];
}

static void snoop_conversion(struct gmem_inflight *conv, __u64 ino,
			     pid_t pid, __u32 vm, u64 offset, u64 size,
			     u64 attrs, u64 mode, int ret, u64 error_offset,
			     u64 nr_changed, __u64 now)
{
	struct gmem_event *e;
	__u32 zero = 0;
	__u64 *lost;
	int i;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		lost = bpf_map_lookup_elem(&dropped, &zero);
		if (lost)
			(*lost)++;
		return;
	}
	e->ts_ns = now;
	e->ino = ino;
	e->pid = pid;
	e->vm = vm;
	e->tid = current_tid();
	e->ret = ret;
	e->offset = offset;
	e->size = size;
	e->attrs = attrs;
	e->mode = mode;
	e->error_offset = error_offset;
	e->nr_changed = nr_changed;
	e->lat_ns = now - conv->start_ns;
	for (i = 0; i < GMEM_NR_PHASES; i++)
		e->phase_ns[i] = conv->phase_ns[i];
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/* The process's name (its main thread's), not the converting thread's. */
static void process_name(char (*comm)[GMEM_COMM_LEN])
{
	struct task_struct *task = (void *)bpf_get_current_task();

	BPF_CORE_READ_STR_INTO(comm, task, group_leader, comm);
}

SEC("tp_btf/kvm_gmem_set_attributes_end")
int BPF_PROG(conversion_end, u64 ino, pid_t pid, u32 vm, u64 offset,
	     u64 size, u64 attrs, u64 mode, unsigned int from, int ret,
	     u64 error_offset, u64 nr_changed)
{
	__u32 tid = current_tid();
	struct gmem_file_stats *stats;
	struct gmem_inflight *conv;
	bool to_private;
	__u64 now;

	conv = bpf_map_lookup_elem(&inflight, &tid);
	if (!conv)
		return 0;

	now = bpf_ktime_get_ns();
	conv->phase_ns[GMEM_PHASE_TAIL] = now - conv->last_ns;
	stats = file_stats(ino, pid, vm);
	if (stats) {
		to_private = attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE;
		process_name(&stats->comm);
		stats->ioctls++;
		if (ret == -EAGAIN)
			stats->eagain++;
		else if (ret)
			stats->errors++;
		if (!ret && nr_changed) {
			stats->conversions[to_private]++;
			stats->pages[to_private] += nr_changed;
			account_latency(stats, conv, now - conv->start_ns);
		}
	}
	if (snoop)
		snoop_conversion(conv, ino, pid, vm, offset, size, attrs, mode,
				 ret, error_offset, nr_changed, now);
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

SEC("tp_btf/kvm_gmem_refcount_fail")
int BPF_PROG(refcount_fail, u64 ino, pid_t pid, u32 vm, u64 offset,
	     unsigned int order, int refcount, int expected, int mapcount,
	     bool pinned, bool drained, unsigned int cause)
{
	struct gmem_hotspot_key key = { .ino = ino, .offset = offset };
	struct gmem_hotspot *spot, fresh = {};

	if (!wanted(pid, vm))
		return 0;

	spot = bpf_map_lookup_elem(&hotspots, &key);
	if (!spot) {
		bpf_map_update_elem(&hotspots, &key, &fresh, BPF_NOEXIST);
		spot = bpf_map_lookup_elem(&hotspots, &key);
		if (!spot)
			return 0;
	}
	__sync_fetch_and_add(&spot->count, 1);
	spot->last_ns = bpf_ktime_get_ns();
	spot->pid = pid;
	spot->vm = vm;
	spot->refcount = refcount;
	spot->expected = expected;
	spot->cause = cause;
	spot->pinned = pinned;
	return 0;
}

SEC("tp_btf/kvm_gmem_invalidate_begin")
int BPF_PROG(invalidate_begin, u64 ino, pid_t pid, u32 vm, u64 start,
	     u64 end, unsigned int filter, unsigned int nr_memslots,
	     u64 nr_gfns)
{
	struct gmem_file_stats *stats;

	if (!wanted(pid, vm))
		return 0;

	stats = file_stats(ino, pid, vm);
	if (stats) {
		stats->invalidations++;
		stats->invalidated_gfns += nr_gfns;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
