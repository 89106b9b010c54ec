// SPDX-License-Identifier: GPL-2.0
/*
 * Who takes references on guest_memfd pages: fexit on the exported GUP
 * entry points (vmsplice, O_DIRECT, io_uring fixed buffers, VFIO-style
 * FOLL_LONGTERM pins, process_vm_readv(), /proc/PID/mem all come through
 * them) looks at every page the call got and records, per (inode, page),
 * the last processes that got a guest_memfd page and their kernel stacks;
 * fexit on the unpin functions marks a pin released.  gmemtop loads this
 * object only with --holders: off, it costs nothing.  With --holders=auto
 * its programs are attached only while hotspots have new EAGAINs.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "gmem.h"

#define PAGE_SHIFT		12
#define PAGE_MAPPING_FLAGS	0x3	/* anon, movable: no address_space */
#define GUEST_MEMFD_MAGIC	0x474d454d	/* include/uapi/linux/magic.h */

/* LRU: the oldest pages' takers go first; they are the least useful. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GMEM_MAX_HOLD_PAGES);
	__type(key, struct gmem_hotspot_key);
	__type(value, struct gmem_takers);
} takers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, GMEM_MAX_HOLD_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, GMEM_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

/*
 * struct page's first word: compound_head until Linux 7.0 renamed it
 * compound_info.  Both are named through flavours of their own, so that
 * the object builds on either kernel's vmlinux.h and loads on both.
 */
struct page___compound_head {
	unsigned long compound_head;
} __attribute__((preserve_access_index));

struct page___compound_info {
	unsigned long compound_info;
} __attribute__((preserve_access_index));

/*
 * The folio of @page.  A tail page's first word is its head's address
 * plus 1, or with HugeTLB's vmemmap optimisation a mask: then the
 * address read here is wrong, the reads through it fail or find no
 * guest_memfd, and rightly so, since only HugeTLB's tails are such.
 */
static struct folio *folio_of(struct page *page)
{
	struct page___compound_head *old = (void *)page;
	struct page___compound_info *new = (void *)page;
	unsigned long head;

	if (bpf_core_field_exists(old->compound_head))
		head = BPF_CORE_READ(old, compound_head);
	else
		head = BPF_CORE_READ(new, compound_info);
	return (struct folio *)(head & 1 ? head - 1 : (unsigned long)page);
}

/*
 * The file and offset of @page when guest_memfd owns it.  Its pages live
 * in guest_memfd's own pseudo filesystem: the superblock's magic tells
 * them apart without any kernel address, which /proc/kallsyms may hide.
 */
static bool gmem_page(struct page *page, struct gmem_hotspot_key *where)
{
	struct folio *folio = folio_of(page);
	unsigned long mapping = (unsigned long)BPF_CORE_READ(folio, mapping);
	struct inode *host;
	__u64 index;

	if (!mapping || mapping & PAGE_MAPPING_FLAGS)
		return false;
	host = BPF_CORE_READ((struct address_space *)mapping, host);
	if (BPF_CORE_READ(host, i_sb, s_magic) != GUEST_MEMFD_MAGIC)
		return false;
	index = BPF_CORE_READ(folio, index) +
		((unsigned long)page - (unsigned long)folio) /
		bpf_core_type_size(struct page);
	where->ino = BPF_CORE_READ(host, i_ino);
	where->offset = index << PAGE_SHIFT;
	return true;
}

/*
 * Argument @n of the traced function as a plain number: the verifier
 * gives a struct page ** argument no type to read through, and allows no
 * arithmetic on a struct page * it types.
 */
static __u64 arg_of(void *ctx, __u32 n)
{
	__u64 value = 0;

	bpf_get_func_arg(ctx, n, &value);
	return value;
}

static struct page *nth_page_of(struct page **pages, __u64 i)
{
	struct page *page = NULL;

	bpf_probe_read_kernel(&page, sizeof(page), &pages[i]);
	return page;
}

static struct gmem_takers *takers_of(const struct gmem_hotspot_key *key)
{
	struct gmem_takers fresh = {}, *t;

	t = bpf_map_lookup_elem(&takers, key);
	if (t)
		return t;
	bpf_map_update_elem(&takers, key, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&takers, key);
}

/*
 * Pin takers recorded and not seen released (an LRU eviction forgets them
 * uncounted: never below the truth).  While none is, an unpin has nothing
 * to mark and looks at no page: the common case, where no process pins a
 * guest_memfd page, costs the unpin functions their trampolines only.
 */
__u64 pins_held;

static bool is_held_pin(const struct gmem_taker *k)
{
	return k->ts_ns && !k->released_ns && k->kind != GMEM_HOLD_GET;
}

/* The thread group, by its leader's name: not a worker thread's. */
static void add_taker(struct gmem_takers *t, __u32 kind, __s32 stack_id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 slot = t->next++ % GMEM_TAKERS;
	struct gmem_taker *k;

	barrier_var(slot);
	if (slot >= GMEM_TAKERS)
		return;
	k = &t->taker[slot];
	if (is_held_pin(k))
		__sync_fetch_and_add(&pins_held, -1);
	if (kind != GMEM_HOLD_GET)
		__sync_fetch_and_add(&pins_held, 1);
	k->ts_ns = bpf_ktime_get_ns();
	k->released_ns = 0;
	k->pid = id >> 32;
	k->tid = (__u32)id;
	k->kind = kind;
	k->stack_id = stack_id;
	BPF_CORE_READ_STR_INTO(&k->comm, task, group_leader, comm);
}

/* The pages a GUP call got, and what to do with them. */
struct gup_call {
	struct page **pages;
	__u64 first;		/* the first guest_memfd page; nr: none */
	__u32 kind;
	__s32 stack_id;
};

static long find_first_gmem_page(__u64 i, void *data)
{
	struct gup_call *call = data;
	struct gmem_hotspot_key where;

	if (!gmem_page(nth_page_of(call->pages, i), &where))
		return 0;
	call->first = i;
	return 1;
}

static long record_page(__u64 i, void *data)
{
	struct gup_call *call = data;
	struct gmem_hotspot_key where;
	struct gmem_takers *t;

	if (!gmem_page(nth_page_of(call->pages, call->first + i), &where))
		return 0;
	t = takers_of(&where);
	if (t)
		add_taker(t, call->kind, call->stack_id);
	return 0;
}

/*
 * Records the caller as a taker of every guest_memfd page it got, in
 * whichever mm and VMA: a first pass only looks, so that a call that got
 * none costs no stack walk and no map update.  @pages_arg: which argument
 * of the GUP function is its pages array.
 */
static void record(void *ctx, __u32 pages_arg, long got, __u32 kind)
{
	struct gup_call call = { .kind = kind };

	/* Any process may hold a VMM's pages: no pid filter here. */
	if (got <= 0)
		return;
	call.pages = (struct page **)arg_of(ctx, pages_arg);
	if (!call.pages)
		return;
	if (got > GMEM_HOLD_MAX_RUN)
		got = GMEM_HOLD_MAX_RUN;
	call.first = got;
	bpf_loop(got, find_first_gmem_page, &call, 0);
	if (call.first >= got)
		return;
	call.stack_id = bpf_get_stackid(ctx, &stacks, 0);
	bpf_loop(got - call.first, record_page, &call, 0);
}

static __u32 pin_kind(unsigned int gup_flags)
{
	return gup_flags & FOLL_LONGTERM ? GMEM_HOLD_PIN_LONGTERM :
					   GMEM_HOLD_PIN;
}

SEC("fexit/get_user_pages_fast")
int BPF_PROG(get_user_pages_fast_exit, unsigned long start, int nr_pages,
	     unsigned int gup_flags, struct page **pages, int ret)
{
	record(ctx, 3, ret, GMEM_HOLD_GET);
	return 0;
}

SEC("fexit/pin_user_pages_fast")
int BPF_PROG(pin_user_pages_fast_exit, unsigned long start, int nr_pages,
	     unsigned int gup_flags, struct page **pages, int ret)
{
	record(ctx, 3, ret, pin_kind(gup_flags));
	return 0;
}

SEC("fexit/get_user_pages")
int BPF_PROG(get_user_pages_exit, unsigned long start, unsigned long nr_pages,
	     unsigned int gup_flags, struct page **pages, long ret)
{
	record(ctx, 3, ret, GMEM_HOLD_GET);
	return 0;
}

SEC("fexit/pin_user_pages")
int BPF_PROG(pin_user_pages_exit, unsigned long start, unsigned long nr_pages,
	     unsigned int gup_flags, struct page **pages, long ret)
{
	record(ctx, 3, ret, pin_kind(gup_flags));
	return 0;
}

SEC("fexit/get_user_pages_unlocked")
int BPF_PROG(get_user_pages_unlocked_exit, unsigned long start,
	     unsigned long nr_pages, struct page **pages,
	     unsigned int gup_flags, long ret)
{
	record(ctx, 2, ret, GMEM_HOLD_GET);
	return 0;
}

SEC("fexit/pin_user_pages_unlocked")
int BPF_PROG(pin_user_pages_unlocked_exit, unsigned long start,
	     unsigned long nr_pages, struct page **pages,
	     unsigned int gup_flags, long ret)
{
	record(ctx, 2, ret, pin_kind(gup_flags));
	return 0;
}

/* Another process's memory (process_vm_readv(), /proc/PID/mem) or VFIO's. */
SEC("fexit/pin_user_pages_remote")
int BPF_PROG(pin_user_pages_remote_exit, struct mm_struct *mm,
	     unsigned long start, unsigned long nr_pages,
	     unsigned int gup_flags, struct page **pages, int *locked,
	     long ret)
{
	record(ctx, 4, ret, pin_kind(gup_flags));
	return 0;
}

SEC("fexit/get_user_pages_remote")
int BPF_PROG(get_user_pages_remote_exit, struct mm_struct *mm,
	     unsigned long start, unsigned long nr_pages,
	     unsigned int gup_flags, struct page **pages, int *locked,
	     long ret)
{
	record(ctx, 4, ret, GMEM_HOLD_GET);
	return 0;
}

/*
 * A pin of the page let go: the unpinning process's own pin if it has
 * one (O_DIRECT completions run in whatever task an interrupt found, so
 * else the oldest pin still held).  Stamped on the unpin functions' exit,
 * once the pin is gone, so that a conversion that still saw it does not
 * find its holder released before.  A GET reference goes with put_page(),
 * on every page of the host: not watched.
 */
static void release_pin(struct gmem_takers *t)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct gmem_taker *own = NULL, *oldest = NULL;
	int i;

	for (i = 0; i < GMEM_TAKERS; i++) {
		struct gmem_taker *k = &t->taker[i];

		if (!is_held_pin(k))
			continue;
		if (k->pid == tgid && (!own || k->ts_ns < own->ts_ns))
			own = k;
		if (!oldest || k->ts_ns < oldest->ts_ns)
			oldest = k;
	}
	if (own)
		oldest = own;
	if (!oldest)
		return;
	oldest->released_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&pins_held, -1);
}

static void unpin_page(struct page *page)
{
	struct gmem_hotspot_key where;
	struct gmem_takers *t;

	if (!pins_held || !gmem_page(page, &where))
		return;
	t = bpf_map_lookup_elem(&takers, &where);
	if (t)
		release_pin(t);
}

struct page_array {
	struct page **pages;
};

static long unpin_nth_page(__u64 i, void *data)
{
	struct page_array *array = data;

	unpin_page(nth_page_of(array->pages, i));
	return 0;
}

static void unpin_pages(struct page **pages, unsigned long nr)
{
	struct page_array array = { .pages = pages };

	if (!pins_held)
		return;
	if (nr > GMEM_HOLD_MAX_RUN)
		nr = GMEM_HOLD_MAX_RUN;
	bpf_loop(nr, unpin_nth_page, &array, 0);
}

struct page_range {
	struct page *first;
	__u64 size;		/* of struct page */
};

static long unpin_range_page(__u64 i, void *data)
{
	struct page_range *range = data;

	unpin_page((struct page *)((unsigned long)range->first +
				   i * range->size));
	return 0;
}

/* The unpin functions' pages, page or folio: always their first argument. */
SEC("fexit/unpin_user_page")
int BPF_PROG(unpin_user_page_exit, struct page *page)
{
	unpin_page((struct page *)arg_of(ctx, 0));
	return 0;
}

SEC("fexit/unpin_user_pages")
int BPF_PROG(unpin_user_pages_exit, struct page **pages, unsigned long nr)
{
	unpin_pages((struct page **)arg_of(ctx, 0), nr);
	return 0;
}

/* Without @dirty it calls unpin_user_pages(), which counts them. */
SEC("fexit/unpin_user_pages_dirty_lock")
int BPF_PROG(unpin_user_pages_dirty_lock_exit, struct page **pages,
	     unsigned long nr, bool dirty)
{
	if (dirty)
		unpin_pages((struct page **)arg_of(ctx, 0), nr);
	return 0;
}

SEC("fexit/unpin_user_page_range_dirty_lock")
int BPF_PROG(unpin_user_page_range_dirty_lock_exit, struct page *page,
	     unsigned long nr, bool dirty)
{
	struct page_range range = {
		.first = (struct page *)arg_of(ctx, 0),
		.size = bpf_core_type_size(struct page),
	};

	if (!pins_held)
		return 0;
	if (nr > GMEM_HOLD_MAX_RUN)
		nr = GMEM_HOLD_MAX_RUN;
	bpf_loop(nr, unpin_range_page, &range, 0);
	return 0;
}

/* A folio's pins are counted on the folio: its first page stands for it. */
SEC("fexit/unpin_folio")
int BPF_PROG(unpin_folio_exit, struct folio *folio)
{
	unpin_page((struct page *)arg_of(ctx, 0));
	return 0;
}

SEC("fexit/unpin_user_folio")
int BPF_PROG(unpin_user_folio_exit, struct folio *folio, unsigned long nr)
{
	unpin_page((struct page *)arg_of(ctx, 0));
	return 0;
}

SEC("fexit/unpin_folios")
int BPF_PROG(unpin_folios_exit, struct folio **folios, unsigned long nr)
{
	unpin_pages((struct page **)arg_of(ctx, 0), nr);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
