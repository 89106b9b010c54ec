// SPDX-License-Identifier: GPL-2.0
/*
 * Who takes references on guest_memfd pages: fexit on the exported GUP
 * entry points (vmsplice, O_DIRECT, io_uring fixed buffers, VFIO-style
 * FOLL_LONGTERM pins all come through them) records, per (inode, page),
 * the last processes that got the page and their kernel stacks.  gmemtop
 * loads this object only with --holders: off, it costs nothing.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "gmem.h"

#define PAGE_SHIFT	12

/* guest_memfd's file operations: how a mapping is recognised. */
extern const void kvm_gmem_fops __ksym;

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

/* What a GUP call got, and where it lies in a guest_memfd. */
struct gup_call {
	__u64 start;
	__u64 ino;
	__u64 pgoff;		/* of @start in the file */
	__u64 nr_pages;		/* of the mapping from @start */
};

static long find_gmem_vma(struct task_struct *task,
			  struct vm_area_struct *vma, void *data)
{
	struct gup_call *call = data;
	struct file *file = vma->vm_file;

	if (!file || file->f_op != &kvm_gmem_fops)
		return 0;
	call->ino = file->f_inode->i_ino;
	call->pgoff = vma->vm_pgoff + ((call->start - vma->vm_start) >>
				       PAGE_SHIFT);
	call->nr_pages = (vma->vm_end - call->start) >> PAGE_SHIFT;
	return 0;
}

static void add_taker(struct gmem_takers *t, __u32 kind, __s32 stack_id)
{
	__u32 slot = t->next++ % GMEM_TAKERS;
	struct gmem_taker *k;
	__u64 id = bpf_get_current_pid_tgid();

	barrier_var(slot);
	if (slot >= GMEM_TAKERS)
		return;
	k = &t->taker[slot];
	k->ts_ns = bpf_ktime_get_ns();
	k->pid = id >> 32;
	k->tid = (__u32)id;
	k->kind = kind;
	k->stack_id = stack_id;
	bpf_get_current_comm(k->comm, sizeof(k->comm));
}

struct record_ctx {
	struct gmem_hotspot_key key;
	__u64 pgoff;
	__u32 kind;
	__s32 stack_id;
};

static long record_page(__u64 i, void *data)
{
	struct record_ctx *r = data;
	struct gmem_takers fresh = {}, *t;

	r->key.offset = (r->pgoff + i) << PAGE_SHIFT;
	t = bpf_map_lookup_elem(&takers, &r->key);
	if (!t) {
		bpf_map_update_elem(&takers, &r->key, &fresh, BPF_NOEXIST);
		t = bpf_map_lookup_elem(&takers, &r->key);
	}
	if (t)
		add_taker(t, r->kind, r->stack_id);
	return 0;
}

/* Records the caller as a taker of every guest_memfd page it got. */
static void record(void *ctx, __u64 start, long got, __u32 kind)
{
	struct gup_call call = { .start = start };
	struct record_ctx r = { .kind = kind };

	/* Any process may hold a VMM's pages: no pid filter here. */
	if (got <= 0)
		return;
	if (bpf_find_vma(bpf_get_current_task_btf(), start, find_gmem_vma,
			 &call, 0) || !call.ino)
		return;
	if (got > call.nr_pages)
		got = call.nr_pages;
	if (got > GMEM_HOLD_MAX_RUN)
		got = GMEM_HOLD_MAX_RUN;
	r.key.ino = call.ino;
	r.pgoff = call.pgoff;
	r.stack_id = bpf_get_stackid(ctx, &stacks, 0);
	bpf_loop(got, record_page, &r, 0);
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
	record(ctx, start, ret, GMEM_HOLD_GET);
	return 0;
}

SEC("fexit/pin_user_pages_fast")
int BPF_PROG(pin_user_pages_fast_exit, unsigned long start, int nr_pages,
	     unsigned int gup_flags, struct page **pages, int ret)
{
	record(ctx, start, ret, pin_kind(gup_flags));
	return 0;
}

SEC("fexit/get_user_pages")
int BPF_PROG(get_user_pages_exit, unsigned long start, unsigned long nr_pages,
	     unsigned int gup_flags, struct page **pages, long ret)
{
	record(ctx, start, ret, GMEM_HOLD_GET);
	return 0;
}

SEC("fexit/pin_user_pages")
int BPF_PROG(pin_user_pages_exit, unsigned long start, unsigned long nr_pages,
	     unsigned int gup_flags, struct page **pages, long ret)
{
	record(ctx, start, ret, pin_kind(gup_flags));
	return 0;
}

SEC("fexit/get_user_pages_unlocked")
int BPF_PROG(get_user_pages_unlocked_exit, unsigned long start,
	     unsigned long nr_pages, struct page **pages,
	     unsigned int gup_flags, long ret)
{
	record(ctx, start, ret, GMEM_HOLD_GET);
	return 0;
}

SEC("fexit/pin_user_pages_unlocked")
int BPF_PROG(pin_user_pages_unlocked_exit, unsigned long start,
	     unsigned long nr_pages, struct page **pages,
	     unsigned int gup_flags, long ret)
{
	record(ctx, start, ret, pin_kind(gup_flags));
	return 0;
}

/*
 * VFIO pins through the _remote variants, on the caller's own mm: only
 * then does the caller's address name its mapping.
 */
static void record_remote(void *ctx, struct mm_struct *mm, __u64 start,
			  long got, __u32 kind)
{
	if (mm == bpf_get_current_task_btf()->mm)
		record(ctx, start, got, kind);
}

SEC("fexit/pin_user_pages_remote")
int BPF_PROG(pin_user_pages_remote_exit, struct mm_struct *mm,
	     unsigned long start, unsigned long nr_pages,
	     unsigned int gup_flags, struct page **pages, int *locked,
	     long ret)
{
	record_remote(ctx, mm, start, ret, pin_kind(gup_flags));
	return 0;
}

SEC("fexit/get_user_pages_remote")
int BPF_PROG(get_user_pages_remote_exit, struct mm_struct *mm,
	     unsigned long start, unsigned long nr_pages,
	     unsigned int gup_flags, struct page **pages, int *locked,
	     long ret)
{
	record_remote(ctx, mm, start, ret, GMEM_HOLD_GET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
