// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel half of gmemtop, gmemlat and gmemsnoop: aggregates the kvm_gmem
 * trace events per guest_memfd, in the kernel.  Only the snooping mode
 * copies a record per conversion to user space.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "gmem.h"

#define EAGAIN	11

/* Set before load: 0 means no filter. */
const volatile __u32 targ_pid = 0;
const volatile __u32 targ_vm = 0;
/* --cgroup: only tasks in the cgroup at index 0 of cgroup_filter. */
const volatile bool filter_cgroup = false;
const volatile bool snoop = false;
/* Off where no output shows the phases: kvm_gmem_phase is not attached. */
const volatile bool phases = true;
/* Only the metrics need begins counted (collect.c, quiet()). */
const volatile bool count_begins = true;
/*
 * Off for --snoop without metrics, whose only output is the records:
 * nothing reads the per-file maps, and the programs that only feed them
 * are not attached.
 */
const volatile bool aggregate = true;

/*
 * Every map is shared by all CPUs and sized before load by user space
 * (--max-files): gmemtop's kernel memory does not grow with the CPUs.
 * Plain hashes, not LRU: a full map refuses new entries and the refusal
 * is counted in losses, where an LRU would evict silently.  User space
 * makes room: it deletes closed files after their last report, and
 * hotspots idle for longer than --hotspot-window.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GMEM_MAX_FILES);
	__type(key, __u64);
	__type(value, struct gmem_file_counts);
} files SEC(".maps");

/* Files refused by a full files map: see GMEM_MAX_REFUSED. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GMEM_MAX_REFUSED);
	__type(key, __u64);
	__type(value, __u8);
} refused SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GMEM_MAX_FILES * GMEM_NR_OUTCOMES);
	__type(key, struct gmem_lat_key);
	__type(value, struct gmem_lat);
} lat SEC(".maps");

/*
 * The conversion a thread is inside, kept with the thread: no hash lookup
 * on the hot path, and no entry outlives its thread.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct gmem_inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GMEM_MAX_HOTSPOTS);
	__type(key, struct gmem_hotspot_key);
	__type(value, struct gmem_hotspot);
} hotspots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, GMEM_RINGBUF_BYTES);
} events SEC(".maps");

/* Records the ring buffer had no room for. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/*
 * --cgroup's directory, as libbpf-tools' -c has it: the events of other
 * VMMs are dropped before any map is looked at, and cost no entry.
 */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

struct gmem_losses losses = {};

/* What a new lat entry starts from: too big for the BPF stack. */
static const struct gmem_lat zero_lat = {};

static bool wanted_ids(pid_t pid, __u32 vm)
{
	return (!targ_pid || targ_pid == pid) && (!targ_vm || targ_vm == vm);
}

/*
 * Conversions and their EAGAINs are the VMM's own ioctls: the current
 * task's cgroup is the VMM's.
 */
static bool in_cgroup(void)
{
	return !filter_cgroup ||
	       bpf_current_task_under_cgroup(&cgroup_filter, 0) == 1;
}

static bool wanted(pid_t pid, __u32 vm)
{
	return in_cgroup() && wanted_ids(pid, vm);
}

static __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

/*
 * Finds @key in @map, inserting @init if absent; NULL (and @lost counted)
 * when the map is full.  Another CPU inserting the same key first is fine:
 * the second lookup finds its entry.
 */
static void *lookup_or_init(void *map, const void *key, const void *init,
			    __u64 *lost)
{
	void *val = bpf_map_lookup_elem(map, key);

	if (val)
		return val;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	val = bpf_map_lookup_elem(map, key);
	if (!val)
		__sync_fetch_and_add(lost, 1);
	return val;
}

/*
 * A file the files map refused: counted once, however many its events.
 * Looked up before the update: an LRU update takes a free element before
 * it looks for the key, and in a small map that may evict the key's own
 * entry, which would count the file again.
 */
static void count_refused_file(__u64 ino)
{
	__u8 seen = 1;

	if (!bpf_map_lookup_elem(&refused, &ino) &&
	    !bpf_map_update_elem(&refused, &ino, &seen, BPF_NOEXIST))
		__sync_fetch_and_add(&losses.files, 1);
}

/*
 * The counters of a file the filters let through, created on first
 * sight; NULL, the event counted as not counted, when there is no room.
 */
static struct gmem_file_counts *file_counts(__u64 ino, pid_t pid, __u32 vm)
{
	struct gmem_file_counts fresh = { .pid = pid, .vm = vm };
	struct gmem_file_counts *counts;

	if (!wanted_ids(pid, vm))
		return NULL;
	/*
	 * An invalidation may run in another task (the last close of a
	 * descriptor passed on): a file counted already counts it.
	 */
	counts = bpf_map_lookup_elem(&files, &ino);
	if (counts || !in_cgroup())
		return counts;
	counts = lookup_or_init(&files, &ino, &fresh, &losses.events);
	if (!counts)
		count_refused_file(ino);
	return counts;
}

/* The calling thread's conversion; created on demand when @create. */
static struct gmem_inflight *current_conversion(bool create)
{
	return bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), NULL,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/*
 * Counts the conversion in its file's begins, if the file has counters
 * already (none is created here): while begins and begins_ended differ,
 * a conversion is in flight, and fdinfo, which the kernel updates before
 * the end event, may be ahead of the counters (see collect.c).  A lookup
 * more per conversion, which only the metrics pay.
 */
static void count_begin(struct gmem_inflight *conv, __u64 ino)
{
	struct gmem_file_counts *counts = NULL;

	if (count_begins)
		counts = bpf_map_lookup_elem(&files, &ino);
	conv->begun = counts != NULL;
	if (counts)
		__sync_fetch_and_add(&counts->begins, 1);
}

/* The end of a conversion count_begin() counted. */
static void count_begin_ended(struct gmem_inflight *conv,
			      struct gmem_file_counts *counts)
{
	if (!conv || !conv->begun)
		return;
	conv->begun = 0;
	if (counts)
		__sync_fetch_and_add(&counts->begins_ended, 1);
}

SEC("tp_btf/kvm_gmem_set_attributes_begin")
int BPF_PROG(conversion_begin, u64 ino, pid_t pid, u32 vm)
{
	struct gmem_inflight *conv;
	int i;

	if (!wanted(pid, vm))
		return 0;

	/* Without memory, the end finds nothing and counts itself untimed. */
	conv = current_conversion(true);
	if (!conv)
		return 0;
	count_begin(conv, ino);
	conv->start_ns = conv->last_ns = bpf_ktime_get_ns();
	for (i = 0; phases && i < GMEM_NR_PHASES; i++)
		conv->phase_ns[i] = 0;
	return 0;
}

SEC("tp_btf/kvm_gmem_phase")
int BPF_PROG(conversion_phase, u64 ino, pid_t pid, u32 vm, u64 offset,
	     unsigned int phase)
{
	struct gmem_inflight *conv = current_conversion(false);
	__u64 now;

	/* Keep clang from folding the bound check into a mask. */
	barrier_var(phase);
	if (!conv || !conv->start_ns || phase >= GMEM_PHASE_TAIL)
		return 0;

	now = bpf_ktime_get_ns();
	conv->phase_ns[phase] += now - conv->last_ns;
	conv->last_ns = now;
	return 0;
}

static unsigned int outcome_of(int ret, u64 nr_changed)
{
	if (ret == -EAGAIN)
		return GMEM_OUTCOME_EAGAIN;
	if (ret)
		return GMEM_OUTCOME_ERROR;
	return nr_changed ? GMEM_OUTCOME_CHANGED : GMEM_OUTCOME_NOOP;
}

/*
 * The names are read in place, not through bpf_get_current_comm() or a
 * probe read: the snoop record pays for every conversion.  The kernel
 * keeps comm NUL-terminated, and user space bounds it anyway.
 */
static void thread_name(char (*comm)[GMEM_COMM_LEN])
{
	__builtin_memcpy(comm, bpf_get_current_task_btf()->comm, GMEM_COMM_LEN);
}

/* The process's name (its main thread's), not the converting thread's. */
static void process_name(char (*comm)[GMEM_COMM_LEN])
{
	struct task_struct *task = bpf_get_current_task_btf();

	__builtin_memcpy(comm, task->group_leader->comm, GMEM_COMM_LEN);
}

static void count_end(struct gmem_file_counts *c, u64 attrs, int ret,
		      u64 nr_changed)
{
	bool to_private = attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE;

	/* Named once: user space reads the live name from /proc. */
	if (!c->comm[0])
		process_name(&c->comm);
	__sync_fetch_and_add(&c->ioctls, 1);
	if (ret == -EAGAIN)
		__sync_fetch_and_add(&c->eagain, 1);
	else if (ret)
		__sync_fetch_and_add(&c->errors, 1);
	else if (!nr_changed)
		__sync_fetch_and_add(&c->noops, 1);
	else {
		__sync_fetch_and_add(&c->conversions[to_private], 1);
		__sync_fetch_and_add(&c->pages[to_private], nr_changed);
	}
}

/* One latency sample, with its phases, under the ioctl's outcome. */
static void account_latency(__u64 ino, unsigned int outcome,
			    struct gmem_inflight *conv, __u64 ns)
{
	struct gmem_lat_key key = { .ino = ino, .outcome = outcome };
	unsigned int bucket = gmem_hist_bucket(ns);
	struct gmem_lat *l;
	int i;

	l = lookup_or_init(&lat, &key, &zero_lat, &losses.latencies);
	if (!l)
		return;
	__sync_fetch_and_add(&l->count, 1);
	__sync_fetch_and_add(&l->sum_ns, ns);
	/* A racing larger sample may be overwritten: max is best effort. */
	if (ns > l->max_ns)
		l->max_ns = ns;
	if (bucket < GMEM_HIST_BUCKETS)
		__sync_fetch_and_add(&l->hist[bucket], 1);
	for (i = 0; phases && i < GMEM_NR_PHASES; i++)
		__sync_fetch_and_add(&l->phase_ns[i], conv->phase_ns[i]);
}

/*
 * Waking the reader costs the converting task a wakeup per record: wake
 * it only once a batch is waiting.  The reader's poll timeout collects
 * smaller batches, so that a record waits 100 ms at most.
 */
static __u64 snoop_wakeup_flag(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >=
	       GMEM_RINGBUF_BYTES / 8 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
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
	thread_name(&e->comm);
	process_name(&e->vmm_comm);
	bpf_ringbuf_submit(e, snoop_wakeup_flag());
}

/*
 * The counters need only this event; the latency and the snoop record
 * also need the begin, which a thread already inside the ioctl when
 * gmemtop started did not show.
 */
SEC("tp_btf/kvm_gmem_set_attributes_end")
int BPF_PROG(conversion_end, u64 ino, pid_t pid, u32 vm, u64 offset,
	     u64 size, u64 attrs, u64 mode, unsigned int from, int ret,
	     u64 error_offset, u64 nr_changed)
{
	struct gmem_file_counts *counts;
	struct gmem_inflight *conv;
	__u64 now;

	if (!wanted(pid, vm))
		return 0;

	counts = aggregate ? file_counts(ino, pid, vm) : NULL;
	if (counts)
		count_end(counts, attrs, ret, nr_changed);
	conv = current_conversion(false);
	/* After the counts, so that begins_ended does not run ahead of them. */
	count_begin_ended(conv, counts);

	if (!conv || !conv->start_ns) {
		__sync_fetch_and_add(&losses.untimed, 1);
		return 0;
	}
	now = bpf_ktime_get_ns();
	conv->phase_ns[GMEM_PHASE_TAIL] = now - conv->last_ns;
	if (counts)
		account_latency(ino, outcome_of(ret, nr_changed), conv,
				now - conv->start_ns);
	if (snoop)
		snoop_conversion(conv, ino, pid, vm, offset, size, attrs, mode,
				 ret, error_offset, nr_changed, now);
	conv->start_ns = 0;
	return 0;
}

SEC("tp_btf/kvm_gmem_refcount_fail")
int BPF_PROG(refcount_fail, u64 ino, pid_t pid, u32 vm, u64 offset,
	     unsigned int order, int refcount, int expected, int mapcount,
	     bool pinned, bool drained, unsigned int cause)
{
	struct gmem_hotspot_key key = { .ino = ino, .offset = offset };
	__u64 now = bpf_ktime_get_ns();
	/* Born with its time: user space never takes a new one for idle. */
	struct gmem_hotspot *spot, fresh = { .last_ns = now };

	if (!wanted(pid, vm))
		return 0;

	spot = lookup_or_init(&hotspots, &key, &fresh, &losses.hotspot_eagains);
	if (!spot)
		return 0;
	__sync_fetch_and_add(&spot->count, 1);
	spot->last_ns = now;
	spot->pid = pid;
	spot->vm = vm;
	spot->refcount = refcount;
	spot->expected = expected;
	spot->cause = cause;
	spot->pinned = pinned;
	return 0;
}

SEC("tp_btf/kvm_gmem_lru_drain")
int BPF_PROG(lru_drain, u64 ino, pid_t pid, u32 vm, u64 offset,
	     bool resolved)
{
	struct gmem_file_counts *counts = file_counts(ino, pid, vm);

	if (!counts)
		return 0;
	__sync_fetch_and_add(&counts->lru_drains, 1);
	if (resolved)
		__sync_fetch_and_add(&counts->lru_drains_resolved, 1);
	return 0;
}

SEC("tp_btf/kvm_gmem_invalidate_begin")
int BPF_PROG(invalidate_begin, u64 ino, pid_t pid, u32 vm, u64 start,
	     u64 end, unsigned int filter, unsigned int nr_memslots,
	     u64 nr_gfns)
{
	struct gmem_file_counts *counts = file_counts(ino, pid, vm);

	if (!counts)
		return 0;
	__sync_fetch_and_add(&counts->invalidations, 1);
	__sync_fetch_and_add(&counts->invalidated_gfns, nr_gfns);
	/* The file's release covers everything: user space may forget it. */
	if (start == 0 && end == ~0ULL)
		counts->released_ns = bpf_ktime_get_ns();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
