/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the kvm_gmem BPF programs and their user-space halves share: the
 * layout of the maps and of the records sent to user space.
 */
#ifndef GMEM_H
#define GMEM_H

#include "gmem_hist.h"

#define GMEM_MAX_FILES		1024	/* guest_memfds tracked at once */
#define GMEM_MAX_HOTSPOTS	4096	/* (file, offset) pairs that hit EAGAIN */
#define GMEM_MAX_INFLIGHT	4096	/* conversions in progress */
#define GMEM_COMM_LEN		16

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

/*
 * Per guest_memfd (key: inode number), per CPU: user space sums the CPUs.
 * Conversions and latencies count successful calls that changed pages;
 * index [1] of the two-way arrays is "to private".
 */
struct gmem_file_stats {
	__u32 pid;
	__u32 vm;
	char comm[GMEM_COMM_LEN];
	__u64 ioctls;
	__u64 conversions[2];
	__u64 pages[2];
	__u64 eagain;
	__u64 errors;
	__u64 invalidations;
	__u64 invalidated_gfns;
	__u64 lat_sum_ns;
	__u64 lat_max_ns;
	__u64 phase_ns[GMEM_NR_PHASES];
	__u32 hist[GMEM_HIST_BUCKETS];
};

/* A conversion in progress, per thread. */
struct gmem_inflight {
	__u64 start_ns;
	__u64 last_ns;
	__u64 phase_ns[GMEM_NR_PHASES];
};

struct gmem_hotspot_key {
	__u64 ino;
	__u64 offset;
};

/* An offset that made conversions fail, and the last reason seen. */
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
	char comm[GMEM_COMM_LEN];
};

/*
 * Without the kvm_gmem events (bpf/gmemstock.bpf.c): per guest_memfd, per
 * CPU, what fexit on guest_memfd's functions shows.
 */
struct gmem_stock_stats {
	__u32 pid;
	__u32 pad;
	char comm[GMEM_COMM_LEN];
	__u64 faults;		/* host user faults that mapped a page */
	__u64 sigbus;		/* host user faults refused (private, EOF) */
	__u64 punch_holes;
	__u64 punched_bytes;
	__u64 allocations;
	__u64 allocated_bytes;
};

#endif /* GMEM_H */
