/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvm_gmem

#if !defined(_TRACE_KVM_GMEM_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_KVM_GMEM_H

#include <linux/tracepoint.h>

/*
 * Every event names the guest_memfd by inode number and its VM by the pid
 * of the process that created the guest_memfd and by the VM's id, so that
 * tools can group by VM and by file.  No event carries memory contents.
 */
#ifndef _TRACE_KVM_GMEM_DEFS
#define _TRACE_KVM_GMEM_DEFS

/* Phases of KVM_SET_MEMORY_ATTRIBUTES2, each traced when it completes. */
#define KVM_GMEM_PHASE_LOCK		0	/* invalidate_lock taken */
#define KVM_GMEM_PHASE_UNMAP		1	/* host user mappings removed */
#define KVM_GMEM_PHASE_REFCHECK		2	/* page references checked */
#define KVM_GMEM_PHASE_INVALIDATE	3	/* KVM's mappings zapped */
#define KVM_GMEM_PHASE_CONTENT		4	/* content mode applied (none here) */
#define KVM_GMEM_PHASE_UPDATE		5	/* attributes stored */

/* Why a page blocked a conversion to private. */
#define KVM_GMEM_REFS_PINNED		0	/* FOLL_PIN, e.g. DMA or VFIO */
#define KVM_GMEM_REFS_MAPPED		1	/* mapped again */
#define KVM_GMEM_REFS_TRANSIENT		2	/* in a per-CPU LRU batch */
#define KVM_GMEM_REFS_OTHER		3	/* get_page(), a pipe, ... */

/* What a host user page fault on guest_memfd did. */
#define KVM_GMEM_FAULT_MAPPED		0
#define KVM_GMEM_FAULT_PRIVATE		1	/* SIGBUS: private page */
#define KVM_GMEM_FAULT_EOF		2	/* SIGBUS: beyond the file */
#define KVM_GMEM_FAULT_ERROR		3	/* allocation or hwpoison */

/* Attributes found in a range before a conversion. */
#define KVM_GMEM_HAD_SHARED		1
#define KVM_GMEM_HAD_PRIVATE		2

#endif /* _TRACE_KVM_GMEM_DEFS */

#define kvm_gmem_print_attrs(a)	((a) & (1ULL << 3) ? "private" : "shared")

/*
 * The flags of the request.  This kernel takes none (0, "unspecified");
 * the names of the content modes that other versions of the ABI define
 * are kept, so that a rejected request reads as what it asked for.
 */
#define kvm_gmem_print_mode(m)						\
	__print_symbolic(m, { 0, "unspecified" }, { 1, "zero" },	\
			 { 2, "preserve" })

#define kvm_gmem_print_from(f)						\
	__print_flags(f, "|", { KVM_GMEM_HAD_SHARED, "shared" },	\
		      { KVM_GMEM_HAD_PRIVATE, "private" })

TRACE_EVENT(kvm_gmem_set_attributes_begin,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, u64 size, u64 attrs,
		 u64 mode),
	TP_ARGS(ino, pid, vm, offset, size, attrs, mode),

	TP_STRUCT__entry(
		__field(u64,	ino)
		__field(pid_t,	pid)
		__field(u32,	vm)
		__field(u64,	offset)
		__field(u64,	size)
		__field(u64,	attrs)
		__field(u64,	mode)
	),

	TP_fast_assign(
		__entry->ino	= ino;
		__entry->pid	= pid;
		__entry->vm	= vm;
		__entry->offset	= offset;
		__entry->size	= size;
		__entry->attrs	= attrs;
		__entry->mode	= mode;
	),

	TP_printk("ino %llu vm %d/%u offset %#llx size %#llx to %s mode %s",
		  __entry->ino, __entry->pid, __entry->vm, __entry->offset,
		  __entry->size,
		  kvm_gmem_print_attrs(__entry->attrs),
		  kvm_gmem_print_mode(__entry->mode))
);

TRACE_EVENT(kvm_gmem_set_attributes_end,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, u64 size, u64 attrs,
		 u64 mode, unsigned int from, int ret, u64 error_offset,
		 u64 nr_changed),
	TP_ARGS(ino, pid, vm, offset, size, attrs, mode, from, ret,
		error_offset, nr_changed),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(pid_t,		pid)
		__field(u32,		vm)
		__field(u64,		offset)
		__field(u64,		size)
		__field(u64,		attrs)
		__field(u64,		mode)
		__field(unsigned int,	from)
		__field(int,		ret)
		__field(u64,		error_offset)
		__field(u64,		nr_changed)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->pid		= pid;
		__entry->vm		= vm;
		__entry->offset		= offset;
		__entry->size		= size;
		__entry->attrs		= attrs;
		__entry->mode		= mode;
		__entry->from		= from;
		__entry->ret		= ret;
		__entry->error_offset	= error_offset;
		__entry->nr_changed	= nr_changed;
	),

	TP_printk("ino %llu vm %d/%u offset %#llx size %#llx from %s to %s mode %s ret %d error_offset %#llx changed %llu",
		  __entry->ino, __entry->pid, __entry->vm, __entry->offset,
		  __entry->size,
		  kvm_gmem_print_from(__entry->from),
		  kvm_gmem_print_attrs(__entry->attrs),
		  kvm_gmem_print_mode(__entry->mode), __entry->ret,
		  __entry->error_offset, __entry->nr_changed)
);

TRACE_EVENT(kvm_gmem_phase,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, unsigned int phase),
	TP_ARGS(ino, pid, vm, offset, phase),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(pid_t,		pid)
		__field(u32,		vm)
		__field(u64,		offset)
		__field(unsigned int,	phase)
	),

	TP_fast_assign(
		__entry->ino	= ino;
		__entry->pid	= pid;
		__entry->vm	= vm;
		__entry->offset	= offset;
		__entry->phase	= phase;
	),

	TP_printk("ino %llu vm %d/%u offset %#llx %s done", __entry->ino, __entry->pid, __entry->vm,
		  __entry->offset,
		  __print_symbolic(__entry->phase,
				   { KVM_GMEM_PHASE_LOCK, "lock" },
				   { KVM_GMEM_PHASE_UNMAP, "unmap" },
				   { KVM_GMEM_PHASE_REFCHECK, "refcheck" },
				   { KVM_GMEM_PHASE_INVALIDATE, "invalidate" },
				   { KVM_GMEM_PHASE_CONTENT, "content" },
				   { KVM_GMEM_PHASE_UPDATE, "update" }))
);

TRACE_EVENT(kvm_gmem_refcount_fail,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, unsigned int order,
		 int refcount, int expected, int mapcount, bool pinned,
		 bool drained, unsigned int cause),
	TP_ARGS(ino, pid, vm, offset, order, refcount, expected, mapcount,
		pinned, drained, cause),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(pid_t,		pid)
		__field(u32,		vm)
		__field(u64,		offset)
		__field(unsigned int,	order)
		__field(int,		refcount)
		__field(int,		expected)
		__field(int,		mapcount)
		__field(bool,		pinned)
		__field(bool,		drained)
		__field(unsigned int,	cause)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->pid		= pid;
		__entry->vm		= vm;
		__entry->offset		= offset;
		__entry->order		= order;
		__entry->refcount	= refcount;
		__entry->expected	= expected;
		__entry->mapcount	= mapcount;
		__entry->pinned		= pinned;
		__entry->drained	= drained;
		__entry->cause		= cause;
	),

	TP_printk("ino %llu vm %d/%u offset %#llx order %u refcount %d expected %d mapcount %d pinned %d drained %d cause %s",
		  __entry->ino, __entry->pid, __entry->vm, __entry->offset,
		  __entry->order, __entry->refcount, __entry->expected,
		  __entry->mapcount,
		  __entry->pinned, __entry->drained,
		  __print_symbolic(__entry->cause,
				   { KVM_GMEM_REFS_PINNED, "pinned" },
				   { KVM_GMEM_REFS_MAPPED, "mapped" },
				   { KVM_GMEM_REFS_TRANSIENT, "transient" },
				   { KVM_GMEM_REFS_OTHER, "other" }))
);

TRACE_EVENT(kvm_gmem_lru_drain,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, bool resolved),
	TP_ARGS(ino, pid, vm, offset, resolved),

	TP_STRUCT__entry(
		__field(u64,	ino)
		__field(pid_t,	pid)
		__field(u32,	vm)
		__field(u64,	offset)
		__field(bool,	resolved)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->pid		= pid;
		__entry->vm		= vm;
		__entry->offset		= offset;
		__entry->resolved	= resolved;
	),

	TP_printk("ino %llu vm %d/%u offset %#llx resolved %d",
		  __entry->ino, __entry->pid, __entry->vm, __entry->offset,
		  __entry->resolved)
);

TRACE_EVENT(kvm_gmem_invalidate_begin,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 start, u64 end,
		 unsigned int filter, unsigned int nr_memslots, u64 nr_gfns),
	TP_ARGS(ino, pid, vm, start, end, filter, nr_memslots, nr_gfns),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(pid_t,		pid)
		__field(u32,		vm)
		__field(u64,		start)
		__field(u64,		end)
		__field(unsigned int,	filter)
		__field(unsigned int,	nr_memslots)
		__field(u64,		nr_gfns)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->pid		= pid;
		__entry->vm		= vm;
		__entry->start		= start;
		__entry->end		= end;
		__entry->filter		= filter;
		__entry->nr_memslots	= nr_memslots;
		__entry->nr_gfns	= nr_gfns;
	),

	TP_printk("ino %llu vm %d/%u pages [%#llx, %#llx) filter %s memslots %u gfns %llu",
		  __entry->ino, __entry->pid, __entry->vm, __entry->start,
		  __entry->end,
		  __print_flags(__entry->filter, "|", { 1, "shared" },
				{ 2, "private" }),
		  __entry->nr_memslots, __entry->nr_gfns)
);

TRACE_EVENT(kvm_gmem_invalidate_end,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 start, u64 end),
	TP_ARGS(ino, pid, vm, start, end),

	TP_STRUCT__entry(
		__field(u64,	ino)
		__field(pid_t,	pid)
		__field(u32,	vm)
		__field(u64,	start)
		__field(u64,	end)
	),

	TP_fast_assign(
		__entry->ino	= ino;
		__entry->pid	= pid;
		__entry->vm	= vm;
		__entry->start	= start;
		__entry->end	= end;
	),

	TP_printk("ino %llu vm %d/%u pages [%#llx, %#llx)", __entry->ino, __entry->pid, __entry->vm,
		  __entry->start, __entry->end)
);

TRACE_EVENT(kvm_gmem_user_fault,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, unsigned int outcome),
	TP_ARGS(ino, pid, vm, offset, outcome),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(pid_t,		pid)
		__field(u32,		vm)
		__field(u64,		offset)
		__field(unsigned int,	outcome)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->pid		= pid;
		__entry->vm		= vm;
		__entry->offset		= offset;
		__entry->outcome	= outcome;
	),

	TP_printk("ino %llu vm %d/%u offset %#llx %s", __entry->ino, __entry->pid, __entry->vm,
		  __entry->offset,
		  __print_symbolic(__entry->outcome,
				   { KVM_GMEM_FAULT_MAPPED, "mapped" },
				   { KVM_GMEM_FAULT_PRIVATE, "sigbus-private" },
				   { KVM_GMEM_FAULT_EOF, "sigbus-eof" },
				   { KVM_GMEM_FAULT_ERROR, "error" }))
);

DECLARE_EVENT_CLASS(kvm_gmem_range,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, u64 len),
	TP_ARGS(ino, pid, vm, offset, len),

	TP_STRUCT__entry(
		__field(u64,	ino)
		__field(pid_t,	pid)
		__field(u32,	vm)
		__field(u64,	offset)
		__field(u64,	len)
	),

	TP_fast_assign(
		__entry->ino	= ino;
		__entry->pid	= pid;
		__entry->vm	= vm;
		__entry->offset	= offset;
		__entry->len	= len;
	),

	TP_printk("ino %llu vm %d/%u offset %#llx len %#llx", __entry->ino,
		  __entry->pid, __entry->vm, __entry->offset, __entry->len)
);

DEFINE_EVENT(kvm_gmem_range, kvm_gmem_punch_hole,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, u64 len),
	TP_ARGS(ino, pid, vm, offset, len)
);

DEFINE_EVENT(kvm_gmem_range, kvm_gmem_allocate,
	TP_PROTO(u64 ino, pid_t pid, u32 vm, u64 offset, u64 len),
	TP_ARGS(ino, pid, vm, offset, len)
);

#endif /* _TRACE_KVM_GMEM_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
