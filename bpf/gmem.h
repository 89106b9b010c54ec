/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the kvm_gmem BPF programs and their user-space halves share: the
 * layout of the maps and of the records sent to user space.
 */
#ifndef GMEM_H
#define GMEM_H

#include "gmem_hist.h"

/*
 * Default sizes of the maps; user space sets the real ones before load
 * (bpf_map__set_max_entries), from --max-files.
 */
#define GMEM_MAX_FILES		256	/* guest_memfds tracked at once */
#define GMEM_MAX_HOTSPOTS	4096	/* (file, offset) pairs that hit EAGAIN */
/*
 * Inodes of the files refused for want of room, remembered so that each
 * is counted once as a file not tracked (and every event of it as an
 * event not counted).  An LRU: past this many refused files at once, one
 * forgotten and refused again is counted again.
 */
#define GMEM_MAX_REFUSED	GMEM_MAX_FILES
/* Snoop records of 168 bytes with their header: 12,000, 0.6 s at 20,000/s. */
#define GMEM_RINGBUF_BYTES	(2 * 1024 * 1024)
#define GMEM_COMM_LEN		16

/*
 * The attribute bit of linux/kvm.h that makes memory private; the others
 * say nothing of the direction of a conversion.  Neither vmlinux.h nor
 * older UAPI headers have it.
 */
#ifndef KVM_MEMORY_ATTRIBUTE_PRIVATE
#define KVM_MEMORY_ATTRIBUTE_PRIVATE	(1ULL << 3)
#endif

/* Matches KVM_GMEM_PHASE_* of the kvm_gmem trace events, plus the tail. */
enum gmem_phase {
	GMEM_PHASE_LOCK,
	GMEM_PHASE_UNMAP,
	GMEM_PHASE_REFCHECK,
	GMEM_PHASE_INVALIDATE,
	GMEM_PHASE_CONTENT,
	GMEM_PHASE_UPDATE,
	GMEM_PHASE_TAIL,	/* from the last phase to the ioctl's end */
	GMEM_NR_PHASES,
};

/* Matches KVM_GMEM_REFS_*. */
enum gmem_cause {
	GMEM_CAUSE_PINNED,
	GMEM_CAUSE_MAPPED,
	GMEM_CAUSE_TRANSIENT,
	GMEM_CAUSE_OTHER,
	GMEM_NR_CAUSES,
};

/* How a KVM_SET_MEMORY_ATTRIBUTES2 ended: the key of its latency sample. */
enum gmem_outcome {
	GMEM_OUTCOME_CHANGED,	/* succeeded and changed pages */
	GMEM_OUTCOME_NOOP,	/* succeeded, nothing to change */
	GMEM_OUTCOME_EAGAIN,	/* a page had unexpected references */
	GMEM_OUTCOME_ERROR,	/* any other error */
	GMEM_NR_OUTCOMES,
};

/*
 * Per guest_memfd (key: inode number), shared by all CPUs, updated with
 * atomic adds.  Counted at the ioctl's end whether or not its begin was
 * seen.  Index [1] of the two-way arrays is "to private".
 */
#define GMEM_FILE_COUNTS_FIELDS						\
	__u32 pid;							\
	__u32 vm;							\
	char comm[GMEM_COMM_LEN];					\
	__u64 released_ns;	/* file closed for good; 0: open */	\
	__u64 ioctls;							\
	__u64 conversions[2];						\
	__u64 pages[2];							\
	__u64 eagain;							\
	__u64 errors;							\
	__u64 noops;							\
	__u64 lru_drains;						\
	__u64 lru_drains_resolved;					\
	__u64 invalidations;						\
	__u64 invalidated_gfns;						\
	/* Ioctls whose begin found the file, and those of them ended. */ \
	__u64 begins;							\
	__u64 begins_ended;

struct gmem_file_counts {
	GMEM_FILE_COUNTS_FIELDS
};

struct gmem_lat_key {
	__u64 ino;
	__u32 outcome;		/* enum gmem_outcome */
	__u32 pad;
};

/* Latency of the ioctls of one file with one outcome. */
struct gmem_lat {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 phase_ns[GMEM_NR_PHASES];
	__u64 hist[GMEM_HIST_BUCKETS];
};

/*
 * What the maps had no room for, in the BPF object's .bss: nothing is lost
 * without being counted.
 */
struct gmem_losses {
	__u64 files;		/* guest_memfds the files map had no room for */
	__u64 events;		/* their events, counted nowhere else */
	__u64 latencies;	/* samples the lat map had no room for */
	__u64 hotspot_eagains;	/* EAGAINs the hotspots map had no room for */
	__u64 untimed;		/* ioctls whose begin was not seen or not kept */
};

/*
 * A guest_memfd as user space shows it: the counters, and the latency of
 * each outcome.  lat_sum_ns, lat_max_ns, phase_ns and hist repeat those of
 * GMEM_OUTCOME_CHANGED, the conversions proper.
 */
struct gmem_file_stats {
	/* The counters by name, or all at once (as struct_group() does). */
	union {
		struct { GMEM_FILE_COUNTS_FIELDS };
		struct gmem_file_counts counts;
	};
	__u64 lat_sum_ns;
	__u64 lat_max_ns;
	__u64 phase_ns[GMEM_NR_PHASES];
	__u64 hist[GMEM_HIST_BUCKETS];
	struct gmem_lat outcome[GMEM_NR_OUTCOMES];
};

/* A conversion in progress, per thread. */
struct gmem_inflight {
	__u64 start_ns;
	__u64 last_ns;
	__u64 phase_ns[GMEM_NR_PHASES];
	__u64 begun;		/* counted in its file's begins */
};

struct gmem_hotspot_key {
	__u64 ino;
	__u64 offset;
};

/*
 * An offset that made conversions fail, and the last reason seen.
 * last_ns (bpf_ktime_get_ns(), CLOCK_MONOTONIC) is what user space ages
 * hotspots out by.
 */
struct gmem_hotspot {
	__u64 count;
	__u64 last_ns;
	__u32 pid;
	__u32 vm;
	__s32 refcount;
	__s32 expected;
	__u32 cause;
	__u32 pinned;
};

/* One finished KVM_SET_MEMORY_ATTRIBUTES2, for snooping. */
struct gmem_event {
	__u64 ts_ns;
	__u64 ino;
	__u32 pid;
	__u32 vm;
	__u32 tid;
	__s32 ret;
	__u64 offset;
	__u64 size;
	__u64 attrs;
	__u64 mode;
	__u64 error_offset;
	__u64 nr_changed;
	__u64 lat_ns;
	__u64 phase_ns[GMEM_NR_PHASES];
	char comm[GMEM_COMM_LEN];	/* the converting thread's */
	/*
	 * The process's (its main thread's), at the event: a VMM that has
	 * exited by the time user space reads the event has no /proc left.
	 */
	char vmm_comm[GMEM_COMM_LEN];
};

/*
 * Without the kvm_gmem events (bpf/gmemstock.bpf.c): per guest_memfd, shared
 * by all CPUs, what fexit on guest_memfd's functions shows.
 */
struct gmem_stock_stats {
	__u32 pid;
	__u32 pad;
	char comm[GMEM_COMM_LEN];
	__u64 released_ns;	/* file closed for good; 0: open */
	__u64 faults;		/* host user faults that mapped a page */
	__u64 sigbus;		/* host user faults refused (private, EOF) */
	__u64 punch_holes;
	__u64 punched_bytes;
	__u64 allocations;
	__u64 allocated_bytes;
};

/*
 * Holders (bpf/gmemhold.bpf.c, only with --holders): per (inode, page
 * offset), the last GMEM_TAKERS processes that got the page through GUP.
 */
#define GMEM_MAX_HOLD_PAGES	4096	/* pages whose takers are kept */
#define GMEM_MAX_HOLD_STACKS	1024
#define GMEM_STACK_DEPTH	32
#define GMEM_TAKERS		4
#define GMEM_HOLD_MAX_RUN	1024	/* pages recorded per GUP call */

enum gmem_hold_kind {
	GMEM_HOLD_GET,		/* FOLL_GET: vmsplice, get_user_pages() */
	GMEM_HOLD_PIN,		/* FOLL_PIN: O_DIRECT */
	GMEM_HOLD_PIN_LONGTERM,	/* FOLL_PIN | FOLL_LONGTERM: io_uring, VFIO */
	GMEM_NR_HOLD_KINDS,
};

/* A process that got the page through GUP: its thread group and thread. */
struct gmem_taker {
	__u64 ts_ns;		/* 0: empty slot */
	__u64 released_ns;	/* a pin seen unpinned; 0: held, or a GET */
	__u32 pid;		/* the thread group's */
	__u32 tid;
	__u32 kind;		/* enum gmem_hold_kind */
	__s32 stack_id;		/* in the stacks map; < 0: none */
	char comm[GMEM_COMM_LEN];	/* the thread group leader's */
};

struct gmem_takers {
	__u32 next;		/* slot the next taker goes to, modulo */
	__u32 pad;
	struct gmem_taker taker[GMEM_TAKERS];
};

#endif /* GMEM_H */
