/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What gmemload's parts share: the options, one VM and its model of the
 * guest_memfd's pages, the counts every report is made of, and the
 * functions each part offers the others.
 *
 *   gmemload.c  options, errors, time and randomness, main()
 *   vm.c        VM setup, the page model, the conversion ioctl
 *   guest.c     the guest's code and its vCPU thread
 *   hold.c      pages held by other processes, so that conversions meet
 *               EAGAIN
 *   pattern.c   the workload: patterns, pacing, stopping
 *   report.c    fdinfo, the self-check, the JSON report and summary
 */
#ifndef GMEMLOAD_H
#define GMEMLOAD_H

#include <pthread.h>
#include <sys/mman.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "kvm_util.h"
#include "processor.h"
#include "gmem.h"

/* The x86 selftests headers make PAGE_SIZE unsigned long long. */
#define PAGE_BYTES		((uint64_t)PAGE_SIZE)
#define DATA_SLOT		10
#define DATA_GPA		((uint64_t)1 << 32)
#define GMEM_FLAGS		(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)
#define PAGES_2M		512
#define BURST_LEN		32
#define NS_PER_MS		1000000ULL
#define NS_PER_S		1000000000ULL
/* Pause after a burst when no --rate spaces the bursts out. */
#define BURST_PAUSE_NS		(10 * NS_PER_MS)
/* How long to wait before retrying a conversion that got EAGAIN. */
#define RETRY_DELAY_NS		NS_PER_MS
/* EAGAIN for this long after every hold is gone means a stuck page. */
#define EAGAIN_GIVE_UP_NS	(10 * NS_PER_S)
#define MAX_HOLDS		16
#define MAX_LISTED_RANGES	64	/* fdinfo lists at most this many */
#define MAX_MISMATCHES		64
/* The model takes 5 bytes per page: keep it well below what a host has. */
#define MAX_SIZE		(64ULL << 30)

#define EXIT_FAIL		1
#define EXIT_USAGE		2
#define EXIT_UNSUPPORTED	4	/* KSFT_SKIP */

enum pattern { PAT_RANDOM4K, PAT_RANGE2M, PAT_BURST, PAT_MIXED, NR_PATTERNS };

extern const char *const pattern_names[NR_PATTERNS];

/* Who holds a page, each in a process named "hold-" and the kind's name. */
enum hold_kind {
	HOLD_VMSPLICE, HOLD_GUP_PIN, HOLD_IOURING, HOLD_ODIRECT, NR_HOLD_KINDS
};

extern const char *const hold_kind_names[NR_HOLD_KINDS];

/* The ground truth of one hold. */
struct hold_record {
	int vm;
	uint64_t offset;	/* of the page */
	enum hold_kind kind;
	pid_t pid;		/* of the holder process */
	uint64_t eagain;	/* conversions it made fail */
};

struct options {
	unsigned int nr_vms;
	uint64_t size;
	enum pattern pattern;
	unsigned int guest_pct;
	double rate;		/* conversions/s, all VMs; 0: no limit */
	double duration;	/* seconds; 0: no limit */
	uint64_t count;		/* conversions; 0: no limit */
	unsigned int hold_pct;
	unsigned int hold_ms;
	unsigned int hold_kinds;	/* bit per enum hold_kind */
	uint64_t seed;
	bool quiet;
};

extern struct options opt;

/* Cumulative counts, indexed like the kernel's: [1] is "to private". */
struct counts {
	uint64_t conversions[2];
	uint64_t pages[2];
	uint64_t eagain;
	uint64_t ioctls;
	uint64_t guest_driven;
	uint64_t noop;
	uint64_t holds;
	uint64_t refused;	/* a content mode this kernel lacks: once */
};

/* The fdinfo lines gmemload reads, in the order it prints them. */
enum fdinfo_key {
	FI_SIZE, FI_FLAGS, FI_VM_PID, FI_VM_ID, FI_RANGES,
	FI_SHARED_PAGES, FI_PRIVATE_PAGES,
	FI_CONV_PRIVATE, FI_CONV_SHARED, FI_PAGES_PRIVATE, FI_PAGES_SHARED,
	FI_EAGAIN, NR_FDINFO_KEYS
};

struct layout_range {
	uint64_t start, end;	/* bytes */
	bool private;
};

struct fdinfo {
	uint64_t val[NR_FDINFO_KEYS];
	bool seen[NR_FDINFO_KEYS];
	struct layout_range range[MAX_LISTED_RANGES];
	unsigned int nr_listed;
};

/*
 * Hand-off of one guest-driven conversion between the main thread and a
 * vCPU thread.  Only one of them works on a VM at a time, so the model and
 * the counts need no lock of their own: the mailbox orders the accesses.
 */
enum mailbox_state { MB_IDLE, MB_REQUEST, MB_RUNNING, MB_DONE, MB_QUIT };

struct mailbox {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum mailbox_state state;
	uint64_t gpa, npages, flags;
	int64_t result;		/* the hypercall's return value */
};

/* What the guest reads to know which range to ask for. */
struct guest_request {
	uint64_t gpa;
	uint64_t npages;
	uint64_t flags;
};

struct vm_ctx {
	int idx;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	ino_t ino;
	uint8_t *mem;		/* host mapping of the whole guest_memfd */
	uint64_t npages;
	uint8_t *is_private;	/* the model: one byte per page */
	uint64_t nr_private;
	uint32_t *eagain_at;	/* EAGAINs reported per page */
	struct counts n;
	struct fdinfo fi;
	bool checked_ok;
	struct mailbox mb;
	struct guest_request *guest_req;	/* the guest's copy */
	pthread_t thread;
	bool has_thread;
};

struct run {
	uint64_t t0, end_ns;	/* end_ns 0: no --duration */
	uint64_t cpu0;		/* cpu_ns() at t0 */
	uint64_t done;		/* conversions so far, all VMs */
	const char *stopped_by;
};

extern struct vm_ctx *vms;
extern FILE *report;	/* the real stdout */

/* gmemload.c */
void __attribute__((noreturn, format(printf, 2, 3)))
die_status(int status, const char *fmt, ...);
#define die(...)		die_status(EXIT_FAIL, __VA_ARGS__)
#define unsupported(...)	die_status(EXIT_UNSUPPORTED, __VA_ARGS__)
uint64_t now_ns(void);
uint64_t cpu_ns(void);
void sleep_until(uint64_t deadline);
void sleep_ns(uint64_t ns);
uint64_t rnd_below(uint64_t n);
bool rnd_percent(unsigned int pct);

/* vm.c */
void check_kvm(void);
void vm_setup(struct vm_ctx *v, int idx);
void vm_teardown(struct vm_ctx *v);
uint64_t model_private_in(struct vm_ctx *v, uint64_t first, uint64_t npages);
unsigned int model_for_each_range(struct vm_ctx *v,
				  void (*fn)(unsigned int idx,
					     struct layout_range *r,
					     void *arg),
				  void *arg);
unsigned int model_nr_ranges(struct vm_ctx *v);
void convert_range(struct vm_ctx *v, uint64_t first, uint64_t npages,
		   bool to_private, uint64_t mode, bool guest);

/* guest.c */
void guest_code(void);
void start_vcpu_thread(struct vm_ctx *v);
void stop_vcpu_thread(struct vm_ctx *v);
void guest_convert(struct vm_ctx *v, uint64_t first, uint64_t npages,
		   bool to_private);

/* hold.c */
void start_holders(void);
void stop_holders(void);
bool hold_page(struct vm_ctx *v, uint64_t page);
void release_expired_holds(void);
void release_all_holds(void);
bool any_hold_active(void);
void blame_hold(struct vm_ctx *v, uint64_t offset);
const struct hold_record *hold_records(unsigned int *nr);

/* pattern.c */
void catch_stop_signals(void);
void run_workload(struct run *r);

/* report.c */
void read_fdinfo(struct vm_ctx *v);
bool self_check(struct vm_ctx *v);
void add_counts(struct counts *sum, const struct counts *n);
void print_json(struct run *r, const struct counts *total, bool ok,
		double elapsed, double loop_cpu);
void print_summary(const struct counts *total, double elapsed);
void print_mismatches(void);

#endif /* GMEMLOAD_H */
