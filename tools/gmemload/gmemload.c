// SPDX-License-Identifier: GPL-2.0
/*
 * gmemload: convert guest_memfd pages between shared and private the way a
 * VMM does, and say exactly what was done.
 *
 * Each VM is a KVM_X86_SW_PROTECTED_VM with one vCPU and one guest_memfd
 * (mmap()able, initially shared) bound at GPA 4 GiB.  Conversions are
 * KVM_SET_MEMORY_ATTRIBUTES2 calls on the guest_memfd, issued either by the
 * host on its own (host-driven) or on behalf of the guest when its vCPU
 * exits with a KVM_HC_MAP_GPA_RANGE hypercall (guest-driven).  Optionally a
 * page is held by a pipe (vmsplice) before a conversion to private so that
 * the conversion fails with EAGAIN until the hold is released.
 *
 * gmemload keeps its own model of every page's state, so it knows how many
 * pages each call changes.  At exit it prints its counts as one JSON object
 * on stdout, together with the kernel's counts from fdinfo, and fails if
 * the two disagree.  It is the ground truth for monitoring tools.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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

static const char *const pattern_names[NR_PATTERNS] = {
	[PAT_RANDOM4K]	= "random4k",
	[PAT_RANGE2M]	= "range2m",
	[PAT_BURST]	= "burst",
	[PAT_MIXED]	= "mixed",
};

static struct options {
	unsigned int nr_vms;
	uint64_t size;
	enum pattern pattern;
	unsigned int guest_pct;
	double rate;		/* conversions/s, all VMs; 0: no limit */
	double duration;	/* seconds; 0: no limit */
	uint64_t count;		/* conversions; 0: no limit */
	unsigned int hold_pct;
	unsigned int hold_ms;
	uint64_t seed;
	bool quiet;
} opt = {
	.nr_vms = 1,
	.size = 64ULL << 20,
	.pattern = PAT_MIXED,
	.hold_ms = 20,
};

/* Cumulative counts, indexed like the kernel's: [1] is "to private". */
struct counts {
	uint64_t conversions[2];
	uint64_t pages[2];
	uint64_t eagain;
	uint64_t ioctls;
	uint64_t guest_driven;
	uint64_t noop;
	uint64_t holds;
};

/* The fdinfo lines gmemload reads, in the order it prints them. */
enum fdinfo_key {
	FI_SIZE, FI_FLAGS, FI_VM_PID, FI_VM_ID, FI_RANGES,
	FI_SHARED_PAGES, FI_PRIVATE_PAGES,
	FI_CONV_PRIVATE, FI_CONV_SHARED, FI_PAGES_PRIVATE, FI_PAGES_SHARED,
	FI_EAGAIN, NR_FDINFO_KEYS
};

static const char *const fdinfo_names[NR_FDINFO_KEYS] = {
	[FI_SIZE]		= "gmem_size",
	[FI_FLAGS]		= "gmem_flags",
	[FI_VM_PID]		= "gmem_vm_pid",
	[FI_VM_ID]		= "gmem_vm_id",
	[FI_RANGES]		= "gmem_ranges",
	[FI_SHARED_PAGES]	= "gmem_shared_pages",
	[FI_PRIVATE_PAGES]	= "gmem_private_pages",
	[FI_CONV_PRIVATE]	= "gmem_conversions_to_private",
	[FI_CONV_SHARED]	= "gmem_conversions_to_shared",
	[FI_PAGES_PRIVATE]	= "gmem_pages_to_private",
	[FI_PAGES_SHARED]	= "gmem_pages_to_shared",
	[FI_EAGAIN]		= "gmem_eagain",
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

struct hold {
	bool active;
	int pipefd[2];
	uint64_t release_ns;
};

struct run {
	uint64_t t0, end_ns;	/* end_ns 0: no --duration */
	uint64_t done;		/* conversions so far, all VMs */
	const char *stopped_by;
};

static struct vm_ctx *vms;
static struct hold holds[MAX_HOLDS];
static uint64_t rng_state;
static volatile sig_atomic_t stop_requested;
static FILE *report;	/* the real stdout */
static char mismatches[MAX_MISMATCHES][160];
static unsigned int nr_mismatches;

/*
 * The selftests library prints progress ("Random seed: ...") on stdout,
 * even before main().  stdout is reserved for the JSON report, so keep the
 * real one aside and send the library's chatter to /dev/null.
 */
static void __attribute__((constructor(101))) reserve_stdout(void)
{
	int keep = dup(STDOUT_FILENO);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (keep < 0 || null < 0)
		abort();
	report = fdopen(keep, "w");
	if (!report)
		abort();
	dup2(null, STDOUT_FILENO);
	close(null);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die_status(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("gmemload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

#define die(...)		die_status(EXIT_FAIL, __VA_ARGS__)
#define unsupported(...)	die_status(EXIT_UNSUPPORTED, __VA_ARGS__)

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("gmemload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'gmemload --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

/* ---- time and randomness ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Sleeps until @deadline; a signal cuts it short so that stops are quick. */
static void sleep_until(uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = deadline / NS_PER_S,
		.tv_nsec = deadline % NS_PER_S,
	};

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static void sleep_ns(uint64_t ns)
{
	sleep_until(now_ns() + ns);
}

/* splitmix64: tiny, and the same sequence for the same --seed everywhere. */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return ((unsigned __int128)rnd() * n) >> 64;
}

static bool rnd_percent(unsigned int pct)
{
	return rnd_below(100) < pct;
}

/* ---- the model of each page's state ---- */

static uint64_t model_private_in(struct vm_ctx *v, uint64_t first,
				 uint64_t npages)
{
	uint64_t i, n = 0;

	for (i = first; i < first + npages; i++)
		n += v->is_private[i];
	return n;
}

/* Pages of the range that a conversion to @to_private would change. */
static uint64_t model_changes(struct vm_ctx *v, uint64_t first,
			      uint64_t npages, bool to_private)
{
	uint64_t priv = model_private_in(v, first, npages);

	return to_private ? npages - priv : priv;
}

static void model_set(struct vm_ctx *v, uint64_t first, uint64_t npages,
		      bool to_private)
{
	uint64_t i;

	for (i = first; i < first + npages; i++) {
		v->nr_private += (int)to_private - v->is_private[i];
		v->is_private[i] = to_private;
	}
}

/* Calls @fn for every maximal run of pages with the same state. */
static unsigned int model_for_each_range(struct vm_ctx *v,
					 void (*fn)(unsigned int idx,
						    struct layout_range *r,
						    void *arg),
					 void *arg)
{
	struct layout_range r;
	unsigned int nr = 0;
	uint64_t i = 0, j;

	while (i < v->npages) {
		j = i + 1;
		while (j < v->npages && v->is_private[j] == v->is_private[i])
			j++;
		r = (struct layout_range){ i * PAGE_BYTES, j * PAGE_BYTES,
					   v->is_private[i] };
		if (fn)
			fn(nr, &r, arg);
		nr++;
		i = j;
	}
	return nr;
}

static unsigned int model_nr_ranges(struct vm_ctx *v)
{
	return model_for_each_range(v, NULL, NULL);
}

/* ---- holds: pages pinned by a pipe so that conversions get EAGAIN ---- */

static struct hold *free_hold_slot(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (!holds[i].active)
			return &holds[i];
	return NULL;
}

/*
 * vmsplice() without SPLICE_F_GIFT makes the pipe take a reference on the
 * page itself; until the pipe is read, guest_memfd sees an unexpected user.
 */
static bool hold_page(uint8_t *page)
{
	struct hold *h = free_hold_slot();
	struct iovec iov = { .iov_base = page, .iov_len = PAGE_BYTES };

	if (!h)
		return false;
	if (pipe2(h->pipefd, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	if (vmsplice(h->pipefd[1], &iov, 1, 0) != (ssize_t)PAGE_BYTES)
		die("vmsplice: %s", strerror(errno));
	h->release_ns = now_ns() + opt.hold_ms * NS_PER_MS;
	h->active = true;
	return true;
}

static void release_hold(struct hold *h)
{
	char buf[PAGE_BYTES];

	if (read(h->pipefd[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		die("reading a held page back: %s", strerror(errno));
	close(h->pipefd[0]);
	close(h->pipefd[1]);
	h->active = false;
}

static void release_expired_holds(void)
{
	uint64_t now = now_ns();
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active && holds[i].release_ns <= now)
			release_hold(&holds[i]);
}

static void release_all_holds(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active)
			release_hold(&holds[i]);
}

static bool any_hold_active(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active)
			return true;
	return false;
}

/* ---- the conversion ioctl ---- */

static void count_eagain(struct vm_ctx *v, uint64_t offset, uint64_t size,
			 uint64_t error_offset)
{
	if (error_offset < offset || error_offset >= offset + size ||
	    error_offset % PAGE_BYTES)
		die("vm%d: EAGAIN for [%#lx, +%#lx) with error_offset %#lx",
		    v->idx, offset, size, error_offset);
	v->eagain_at[error_offset / PAGE_BYTES]++;
	v->n.eagain++;
}

/*
 * Issue the request until it stops failing with EAGAIN, as the ABI says:
 * nothing changed, so the same request is retried after a short wait.
 * Holds whose time is up are released meanwhile, or it would never end.
 */
static int set_attributes_retrying(struct vm_ctx *v, uint64_t offset,
				   uint64_t size, uint64_t attributes,
				   uint64_t flags)
{
	uint64_t error_offset, last_hold = now_ns();
	int r;

	for (;;) {
		r = gmem_set_attrs(v->fd, offset, size, attributes, flags,
				   &error_offset);
		v->n.ioctls++;
		if (r != -EAGAIN)
			return r;
		count_eagain(v, offset, size, error_offset);
		if (any_hold_active())
			last_hold = now_ns();
		else if (now_ns() - last_hold > EAGAIN_GIVE_UP_NS)
			die("vm%d: page at %#lx still busy after every hold ended",
			    v->idx, error_offset);
		sleep_ns(RETRY_DELAY_NS);
		release_expired_holds();
	}
}

/*
 * Convert pages [@first, @first + @npages) of @v and account for it.  The
 * model says how many pages change; a call that changes none is a no-op.
 */
static void convert_range(struct vm_ctx *v, uint64_t first, uint64_t npages,
			  bool to_private, uint64_t mode, bool guest)
{
	uint64_t changed = model_changes(v, first, npages, to_private);
	uint64_t attrs = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
	int r;

	r = set_attributes_retrying(v, first * PAGE_BYTES, npages * PAGE_BYTES,
				    attrs, mode);
	if (r)
		die("vm%d: converting [%#lx, +%#lx) to %s: %s", v->idx,
		    first * PAGE_BYTES, npages * PAGE_BYTES,
		    to_private ? "private" : "shared", strerror(-r));
	if (!changed) {
		v->n.noop++;
		return;
	}
	model_set(v, first, npages, to_private);
	v->n.conversions[to_private]++;
	v->n.pages[to_private] += changed;
	if (guest)
		v->n.guest_driven++;
}

/* ---- the guest and its vCPU thread ---- */

static struct guest_request guest_req;

/*
 * Report the last hypercall's result, let the host fill in the next
 * request, and ask for it.  The guest never touches the data memory.
 */
static void guest_code(void)
{
	uint64_t ret = 0;

	for (;;) {
		GUEST_SYNC1(ret);
		ret = kvm_hypercall(KVM_HC_MAP_GPA_RANGE,
				    READ_ONCE(guest_req.gpa),
				    READ_ONCE(guest_req.npages),
				    READ_ONCE(guest_req.flags), 0);
	}
}

/*
 * A VMM's side of KVM_HC_MAP_GPA_RANGE: convert the range in place.  The
 * guest gets no content guarantee going private (KVM scrambles it) and
 * zeros going shared, so that nothing private leaks to the host.
 */
static void handle_map_gpa_range(struct vm_ctx *v, struct kvm_run *run)
{
	uint64_t gpa = run->hypercall.args[0];
	uint64_t npages = run->hypercall.args[1];
	bool to_private = run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED;

	if (run->hypercall.nr != KVM_HC_MAP_GPA_RANGE || gpa < DATA_GPA ||
	    gpa % PAGE_BYTES || !npages ||
	    (gpa - DATA_GPA) / PAGE_BYTES + npages > v->npages) {
		run->hypercall.ret = -KVM_EINVAL;
		return;
	}
	convert_range(v, (gpa - DATA_GPA) / PAGE_BYTES, npages, to_private,
		      to_private ? KVM_SET_MEMORY_ATTRIBUTES2_MODE_UNSPECIFIED :
				   KVM_SET_MEMORY_ATTRIBUTES2_ZERO, true);
	run->hypercall.ret = 0;
}

/* vCPU thread: wait for the next request; false when told to quit. */
static bool vcpu_take_request(struct vm_ctx *v)
{
	struct mailbox *mb = &v->mb;
	bool quit;

	pthread_mutex_lock(&mb->lock);
	while (mb->state != MB_REQUEST && mb->state != MB_QUIT)
		pthread_cond_wait(&mb->cond, &mb->lock);
	quit = mb->state == MB_QUIT;
	if (!quit) {
		/* The vCPU is stopped: its memory is ours to write. */
		WRITE_ONCE(v->guest_req->gpa, mb->gpa);
		WRITE_ONCE(v->guest_req->npages, mb->npages);
		WRITE_ONCE(v->guest_req->flags, mb->flags);
		mb->state = MB_RUNNING;
	}
	pthread_mutex_unlock(&mb->lock);
	return !quit;
}

static void vcpu_finish_request(struct vm_ctx *v, int64_t result)
{
	struct mailbox *mb = &v->mb;

	pthread_mutex_lock(&mb->lock);
	mb->result = result;
	mb->state = MB_DONE;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vm_ctx *v = arg;
	struct kvm_run *run = v->vcpu->run;
	bool busy = false;
	struct ucall uc;

	for (;;) {
		vcpu_run(v->vcpu);
		if (run->exit_reason == KVM_EXIT_HYPERCALL) {
			handle_map_gpa_range(v, run);
			continue;
		}
		if (run->exit_reason != KVM_EXIT_IO)
			die("vm%d: unexpected exit %s", v->idx,
			    exit_reason_str(run->exit_reason));
		switch (get_ucall(v->vcpu, &uc)) {
		case UCALL_SYNC:
			break;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			die("vm%d: unexpected ucall %lu", v->idx, uc.cmd);
		}
		if (busy)
			vcpu_finish_request(v, uc.args[0]);
		busy = vcpu_take_request(v);
		if (!busy)
			return NULL;
	}
}

/* Main thread: have @v's guest ask for the conversion, and wait for it. */
static void guest_convert(struct vm_ctx *v, uint64_t first, uint64_t npages,
			  bool to_private)
{
	struct mailbox *mb = &v->mb;
	int64_t result;

	pthread_mutex_lock(&mb->lock);
	mb->gpa = DATA_GPA + first * PAGE_BYTES;
	mb->npages = npages;
	mb->flags = (npages == PAGES_2M ? KVM_MAP_GPA_RANGE_PAGE_SZ_2M :
					  KVM_MAP_GPA_RANGE_PAGE_SZ_4K) |
		    (to_private ? KVM_MAP_GPA_RANGE_ENCRYPTED :
				  KVM_MAP_GPA_RANGE_DECRYPTED);
	mb->state = MB_REQUEST;
	pthread_cond_broadcast(&mb->cond);
	while (mb->state != MB_DONE)
		pthread_cond_wait(&mb->cond, &mb->lock);
	mb->state = MB_IDLE;
	result = mb->result;
	pthread_mutex_unlock(&mb->lock);
	if (result)
		die("vm%d: MAP_GPA_RANGE [%#lx, +%lu pages) returned %ld",
		    v->idx, DATA_GPA + first * PAGE_BYTES, npages, result);
}

static void start_vcpu_thread(struct vm_ctx *v)
{
	sigset_t stop_signals, old;

	pthread_mutex_init(&v->mb.lock, NULL);
	pthread_cond_init(&v->mb.cond, NULL);
	v->guest_req = addr_gva2hva(v->vm, (vm_vaddr_t)&guest_req);

	/* SIGINT and SIGTERM are for the main thread, which stops cleanly. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
	if (pthread_create(&v->thread, NULL, vcpu_thread, v))
		die("pthread_create failed");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	v->has_thread = true;
}

static void stop_vcpu_thread(struct vm_ctx *v)
{
	if (!v->has_thread)
		return;
	pthread_mutex_lock(&v->mb.lock);
	v->mb.state = MB_QUIT;
	pthread_cond_broadcast(&v->mb.cond);
	pthread_mutex_unlock(&v->mb.lock);
	pthread_join(v->thread, NULL);
	v->has_thread = false;
}

/* ---- VMs ---- */

static void check_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK))
		unsupported("/dev/kvm: %s", strerror(errno));
	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM)))
		unsupported("KVM_X86_SW_PROTECTED_VM is not supported");
	if (opt.guest_pct && !(kvm_check_cap(KVM_CAP_EXIT_HYPERCALL) &
			       BIT(KVM_HC_MAP_GPA_RANGE)))
		unsupported("KVM_CAP_EXIT_HYPERCALL lacks KVM_HC_MAP_GPA_RANGE");
}

/* What this kernel must offer a VM for gmemload to work. */
static void check_vm(struct kvm_vm *vm)
{
	uint64_t modes = KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE |
			 (opt.guest_pct ? KVM_SET_MEMORY_ATTRIBUTES2_ZERO : 0);

	/* First: per-VM attributes also hide the guest_memfd flags. */
	if (!(vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) &
	      KVM_MEMORY_ATTRIBUTE_PRIVATE))
		unsupported("guest_memfd attributes are off: boot with kvm.vm_memory_attributes=0");
	if ((vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS) & GMEM_FLAGS) !=
	    GMEM_FLAGS)
		unsupported("guest_memfd lacks GUEST_MEMFD_FLAG_MMAP or _INIT_SHARED");
	if ((vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS) & modes) !=
	    modes)
		unsupported("KVM_SET_MEMORY_ATTRIBUTES2 lacks the content modes used");
}

/*
 * Like gmem_vm_create() in tests/kvm/gmem.h, minus the guest page tables
 * for the data memory: the guest only names it in hypercalls.  The host
 * mapping goes where the memslot's userspace_addr points, so that KVM and
 * the host see the same shared pages.
 */
static void vm_setup(struct vm_ctx *v, int idx)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct userspace_mem_region *region;
	struct stat st;

	v->idx = idx;
	v->npages = opt.size / PAGE_BYTES;
	v->vm = __vm_create_with_vcpus(shape, 1, 0, guest_code, &v->vcpu);
	check_vm(v->vm);

	v->fd = __vm_create_guest_memfd(v->vm, opt.size, GMEM_FLAGS);
	if (v->fd < 0)
		die("vm%d: KVM_CREATE_GUEST_MEMFD of %lu bytes: %s", idx,
		    opt.size, strerror(errno));
	vm_mem_add(v->vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA, DATA_SLOT, v->npages,
		   KVM_MEM_GUEST_MEMFD, v->fd, 0);
	region = memslot2region(v->vm, DATA_SLOT);
	v->mem = mmap(region->host_mem, opt.size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_FIXED, v->fd, 0);
	if (v->mem != region->host_mem)
		die("vm%d: mmap(guest_memfd): %s", idx, strerror(errno));
	if (fstat(v->fd, &st))
		die("fstat(guest_memfd): %s", strerror(errno));
	v->ino = st.st_ino;

	v->is_private = calloc(v->npages, sizeof(*v->is_private));
	v->eagain_at = calloc(v->npages, sizeof(*v->eagain_at));
	if (!v->is_private || !v->eagain_at)
		die("out of memory");

	if (opt.guest_pct) {
		vm_enable_cap(v->vm, KVM_CAP_EXIT_HYPERCALL,
			      BIT_ULL(KVM_HC_MAP_GPA_RANGE));
		start_vcpu_thread(v);
	}
}

static void vm_teardown(struct vm_ctx *v)
{
	close(v->fd);
	kvm_vm_free(v->vm);
	free(v->is_private);
	free(v->eagain_at);
}

/* ---- the workload ---- */

static void on_stop_signal(int sig)
{
	stop_requested = 1;
}

static void catch_stop_signals(void)
{
	/* No SA_RESTART: a signal must cut pacing sleeps short. */
	struct sigaction sa = { .sa_handler = on_stop_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static bool should_stop(struct run *r)
{
	if (r->stopped_by)
		return true;
	if (stop_requested)
		r->stopped_by = "signal";
	else if (opt.count && r->done >= opt.count)
		r->stopped_by = "count";
	else if (r->end_ns && now_ns() >= r->end_ns)
		r->stopped_by = "duration";
	return r->stopped_by;
}

/* Waits until conversion number r->done is due under --rate. */
static void pace(struct run *r)
{
	uint64_t due;

	if (!opt.rate)
		return;
	due = r->t0 + (uint64_t)(r->done * (NS_PER_S / opt.rate));
	if (r->end_ns && due > r->end_ns)
		due = r->end_ns;
	sleep_until(due);
}

/*
 * Before going private: write a byte into every shared page of the range,
 * so that pages are allocated (a VMM has put data there), and perhaps hold
 * one of them so that the conversion meets a busy page.
 */
static void prepare_to_private(struct vm_ctx *v, uint64_t first,
			       uint64_t npages)
{
	uint64_t i, nr_shared = 0, pick;

	for (i = first; i < first + npages; i++) {
		if (v->is_private[i])
			continue;
		v->mem[i * PAGE_BYTES] = (uint8_t)(i + 1);
		nr_shared++;
	}
	if (!rnd_percent(opt.hold_pct) || !nr_shared)
		return;

	/* The pick'th shared page: vmsplice() needs a host-mappable page. */
	pick = rnd_below(nr_shared);
	for (i = first; v->is_private[i] || pick--; i++)
		;
	if (hold_page(v->mem + i * PAGE_BYTES))
		v->n.holds++;
}

/*
 * One conversion of a range: to the opposite of what most of it is, so
 * that it always changes pages; by the host or, for --guest-share of
 * them, by the guest.  The guest and hold dice are rolled whatever their
 * odds, so that the same --seed picks the same ranges with any --hold or
 * --guest-share.
 */
static void convert(struct run *r, struct vm_ctx *v, uint64_t first,
		    uint64_t npages)
{
	bool to_private = model_private_in(v, first, npages) * 2 <= npages;
	bool guest = rnd_percent(opt.guest_pct);

	if (to_private)
		prepare_to_private(v, first, npages);
	if (guest)
		guest_convert(v, first, npages, to_private);
	else
		convert_range(v, first, npages, to_private,
			      KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE, false);
	r->done++;
}

static struct vm_ctx *pick_vm(void)
{
	return &vms[rnd_below(opt.nr_vms)];
}

static void step_random4k(struct run *r)
{
	struct vm_ctx *v = pick_vm();

	convert(r, v, rnd_below(v->npages), 1);
}

/* A 2 MiB-aligned 2 MiB range; the whole file when it is smaller. */
static void step_range2m(struct run *r)
{
	struct vm_ctx *v = pick_vm();
	uint64_t len = v->npages < PAGES_2M ? v->npages : PAGES_2M;

	convert(r, v, rnd_below(v->npages / len) * len, len);
}

/* Back to back conversions of random pages of one VM, then a pause. */
static void step_burst(struct run *r)
{
	struct vm_ctx *v = pick_vm();
	int i;

	for (i = 0; i < BURST_LEN && !should_stop(r); i++)
		convert(r, v, rnd_below(v->npages), 1);
	/* With --rate, pace() makes the pause before the next burst. */
	if (!opt.rate && !should_stop(r))
		sleep_ns(BURST_PAUSE_NS);
}

/* mixed: 70% single pages, 25% 2 MiB ranges, 5% bursts (per step). */
static void step_mixed(struct run *r)
{
	uint64_t dice = rnd_below(100);

	if (dice < 70)
		step_random4k(r);
	else if (dice < 95)
		step_range2m(r);
	else
		step_burst(r);
}

static void run_workload(struct run *r)
{
	static void (*const step[NR_PATTERNS])(struct run *) = {
		[PAT_RANDOM4K]	= step_random4k,
		[PAT_RANGE2M]	= step_range2m,
		[PAT_BURST]	= step_burst,
		[PAT_MIXED]	= step_mixed,
	};

	r->t0 = now_ns();
	if (opt.duration)
		r->end_ns = r->t0 + (uint64_t)(opt.duration * NS_PER_S);
	while (!should_stop(r)) {
		pace(r);
		if (should_stop(r))
			break;
		step[opt.pattern](r);
		release_expired_holds();
	}
}

/* ---- the kernel's view: fdinfo, and the self-check ---- */

static void __attribute__((format(printf, 1, 2))) mismatch(const char *fmt, ...)
{
	va_list ap;

	if (nr_mismatches == MAX_MISMATCHES)
		return;
	va_start(ap, fmt);
	vsnprintf(mismatches[nr_mismatches++], sizeof(mismatches[0]), fmt, ap);
	va_end(ap);
}

static void parse_fdinfo_line(struct fdinfo *fi, const char *key,
			      const char *value)
{
	struct layout_range *r = &fi->range[fi->nr_listed];
	char state[16];
	int k;

	if (!strcmp(key, "gmem_range")) {
		if (fi->nr_listed < MAX_LISTED_RANGES &&
		    sscanf(value, "%lx-%lx %15s", &r->start, &r->end,
			   state) == 3) {
			r->private = !strcmp(state, "private");
			fi->nr_listed++;
		}
		return;
	}
	for (k = 0; k < NR_FDINFO_KEYS; k++) {
		if (!strcmp(key, fdinfo_names[k])) {
			fi->val[k] = strtoull(value, NULL, 0);
			fi->seen[k] = true;
		}
	}
}

static void read_fdinfo(struct vm_ctx *v)
{
	char path[64], *line = NULL, *colon, *value;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", v->fd);
	f = fopen(path, "r");
	if (!f)
		die("%s: %s", path, strerror(errno));
	while (getline(&line, &len, f) > 0) {
		colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		value = colon + 1 + strspn(colon + 1, " \t");
		parse_fdinfo_line(&v->fi, line, value);
	}
	free(line);
	fclose(f);
}

/* What fdinfo key @k must say after this run; false if anything goes. */
static bool fdinfo_expected(struct vm_ctx *v, enum fdinfo_key k,
			    uint64_t *want)
{
	switch (k) {
	case FI_SIZE:		*want = opt.size; break;
	case FI_FLAGS:		*want = GMEM_FLAGS; break;
	case FI_VM_PID:		*want = getpid(); break;
	case FI_RANGES:		*want = model_nr_ranges(v); break;
	case FI_SHARED_PAGES:	*want = v->npages - v->nr_private; break;
	case FI_PRIVATE_PAGES:	*want = v->nr_private; break;
	case FI_CONV_PRIVATE:	*want = v->n.conversions[1]; break;
	case FI_CONV_SHARED:	*want = v->n.conversions[0]; break;
	case FI_PAGES_PRIVATE:	*want = v->n.pages[1]; break;
	case FI_PAGES_SHARED:	*want = v->n.pages[0]; break;
	case FI_EAGAIN:		*want = v->n.eagain; break;
	default:		return false;
	}
	return true;
}

struct layout_check {
	struct vm_ctx *v;
	bool ok;
};

static void check_listed_range(unsigned int idx, struct layout_range *r,
			       void *arg)
{
	struct layout_check *c = arg;
	struct layout_range *k = &c->v->fi.range[idx];

	if (!c->ok || idx >= c->v->fi.nr_listed)
		return;
	if (k->start != r->start || k->end != r->end ||
	    k->private != r->private) {
		mismatch("vm%d layout: kernel %#lx-%#lx %s, gmemload %#lx-%#lx %s",
			 c->v->idx, k->start, k->end,
			 k->private ? "private" : "shared", r->start, r->end,
			 r->private ? "private" : "shared");
		c->ok = false;
	}
}

/* Compares fdinfo with the model and the counts; true if all agree. */
static bool self_check(struct vm_ctx *v)
{
	struct layout_check c = { v, true };
	unsigned int before = nr_mismatches;
	uint64_t want;
	int k;

	for (k = 0; k < NR_FDINFO_KEYS; k++) {
		if (!v->fi.seen[k]) {
			mismatch("vm%d: fdinfo has no %s", v->idx,
				 fdinfo_names[k]);
			continue;
		}
		if (fdinfo_expected(v, k, &want) && v->fi.val[k] != want)
			mismatch("vm%d %s: kernel %lu, gmemload %lu", v->idx,
				 fdinfo_names[k], v->fi.val[k], want);
	}
	model_for_each_range(v, check_listed_range, &c);
	return nr_mismatches == before;
}

/* ---- the report ---- */

static void json_counts(const struct counts *n, const char *indent)
{
	fprintf(report,
		"%s\"conversions_to_private\": %lu,\n"
		"%s\"conversions_to_shared\": %lu,\n"
		"%s\"pages_to_private\": %lu,\n"
		"%s\"pages_to_shared\": %lu,\n"
		"%s\"eagain\": %lu,\n"
		"%s\"ioctls\": %lu,\n"
		"%s\"guest_driven\": %lu,\n"
		"%s\"noop\": %lu,\n"
		"%s\"holds\": %lu",
		indent, n->conversions[1], indent, n->conversions[0],
		indent, n->pages[1], indent, n->pages[0], indent, n->eagain,
		indent, n->ioctls, indent, n->guest_driven, indent, n->noop,
		indent, n->holds);
}

static void json_eagain_offsets(struct vm_ctx *v)
{
	const char *sep = "";
	uint64_t i;

	fprintf(report, "      \"eagain_offsets\": {");
	for (i = 0; i < v->npages; i++) {
		if (!v->eagain_at[i])
			continue;
		fprintf(report, "%s\"0x%lx\": %u", sep, i * PAGE_BYTES,
			v->eagain_at[i]);
		sep = ", ";
	}
	fprintf(report, "},\n");
}

static void json_fdinfo(struct vm_ctx *v)
{
	const char *sep = "";
	int k;

	fprintf(report, "      \"fdinfo\": {");
	for (k = 0; k < NR_FDINFO_KEYS; k++) {
		if (!v->fi.seen[k])
			continue;
		fprintf(report, "%s\n        \"%s\": %lu", sep, fdinfo_names[k],
			v->fi.val[k]);
		sep = ",";
	}
	fprintf(report, "\n      },\n");
}

static void json_vm(struct vm_ctx *v, bool last)
{
	fprintf(report,
		"    {\n"
		"      \"vm\": %d,\n"
		"      \"vm_pid\": %d,\n"
		"      \"vm_id\": %lu,\n"
		"      \"fd\": %d,\n"
		"      \"ino\": %lu,\n"
		"      \"size\": %lu,\n",
		v->idx, getpid(), v->fi.val[FI_VM_ID], v->fd,
		(unsigned long)v->ino, opt.size);
	json_counts(&v->n, "      ");
	fprintf(report, ",\n"
		"      \"shared_pages\": %lu,\n"
		"      \"private_pages\": %lu,\n",
		v->npages - v->nr_private, v->nr_private);
	json_eagain_offsets(v);
	json_fdinfo(v);
	fprintf(report, "      \"self_check\": %s\n    }%s\n",
		v->checked_ok ? "true" : "false", last ? "" : ",");
}

static void json_string_list(const char *name, char (*list)[160],
			     unsigned int nr)
{
	unsigned int i;

	fprintf(report, "  \"%s\": [", name);
	for (i = 0; i < nr; i++)
		fprintf(report, "%s\n    \"%s\"", i ? "," : "", list[i]);
	fprintf(report, "%s]", nr ? "\n  " : "");
}

static void add_counts(struct counts *sum, const struct counts *n)
{
	int d;

	for (d = 0; d < 2; d++) {
		sum->conversions[d] += n->conversions[d];
		sum->pages[d] += n->pages[d];
	}
	sum->eagain += n->eagain;
	sum->ioctls += n->ioctls;
	sum->guest_driven += n->guest_driven;
	sum->noop += n->noop;
	sum->holds += n->holds;
}

static void print_json(struct run *r, const struct counts *total, bool ok,
		       double elapsed)
{
	unsigned int i;

	fprintf(report,
		"{\n"
		"  \"tool\": \"gmemload\",\n"
		"  \"seed\": %lu,\n"
		"  \"pattern\": \"%s\",\n"
		"  \"nr_vms\": %u,\n"
		"  \"size\": %lu,\n"
		"  \"rate\": %g,\n"
		"  \"count\": %lu,\n"
		"  \"duration\": %g,\n"
		"  \"guest_share_pct\": %u,\n"
		"  \"hold_pct\": %u,\n"
		"  \"hold_ms\": %u,\n"
		"  \"elapsed_s\": %.6f,\n"
		"  \"stopped_by\": \"%s\",\n"
		"  \"vms\": [\n",
		opt.seed, pattern_names[opt.pattern], opt.nr_vms, opt.size,
		opt.rate, opt.count, opt.duration, opt.guest_pct, opt.hold_pct,
		opt.hold_ms, elapsed, r->stopped_by);
	for (i = 0; i < opt.nr_vms; i++)
		json_vm(&vms[i], i == opt.nr_vms - 1);
	fprintf(report, "  ],\n  \"totals\": {\n");
	fprintf(report, "    \"conversions\": %lu,\n",
		total->conversions[0] + total->conversions[1]);
	json_counts(total, "    ");
	fprintf(report, "\n  },\n  \"self_check\": %s,\n",
		ok ? "true" : "false");
	json_string_list("mismatches", mismatches, nr_mismatches);
	fprintf(report, "\n}\n");
	fflush(report);
}

static void print_summary(const struct counts *total, double elapsed)
{
	uint64_t conv = total->conversions[0] + total->conversions[1];
	unsigned int i;

	fprintf(stderr,
		"gmemload: %u VM(s) of %lu KiB, pattern %s, seed %lu: %lu conversions in %.2f s (%.0f/s)\n",
		opt.nr_vms, opt.size >> 10, pattern_names[opt.pattern],
		opt.seed, conv, elapsed, elapsed > 0 ? conv / elapsed : 0);
	for (i = 0; i < opt.nr_vms; i++) {
		struct vm_ctx *v = &vms[i];

		fprintf(stderr,
			"  vm%u ino %lu: %lu to private (%lu pages), %lu to shared (%lu pages),\n",
			i, (unsigned long)v->ino, v->n.conversions[1],
			v->n.pages[1], v->n.conversions[0], v->n.pages[0]);
		fprintf(stderr,
			"    %lu guest-driven, %lu holds, %lu EAGAIN, %lu ioctls; fdinfo %s\n",
			v->n.guest_driven, v->n.holds, v->n.eagain,
			v->n.ioctls, v->checked_ok ? "agrees" : "DISAGREES");
	}
}

/* ---- options ---- */

static void usage(void)
{
	fprintf(report,
"usage: gmemload [OPTION]...\n"
"Convert guest_memfd pages between shared and private like a VMM, then print\n"
"on stdout, as one JSON object, exactly what was done, with the kernel's own\n"
"counts from /proc/self/fdinfo; exit 1 if they disagree.  Needs /dev/kvm,\n"
"KVM_X86_SW_PROTECTED_VM and kvm.vm_memory_attributes=0.\n"
"\n"
"  -n, --vms N            VMs, each with one guest_memfd (1)\n"
"  -s, --size SIZE        guest_memfd size, bytes or K/M/G (64M)\n"
"  -p, --pattern P        what to convert (mixed):\n"
"                           random4k  one random 4K page at a time\n"
"                           range2m   random 2M-aligned 2M ranges\n"
"                           burst     32 random pages back to back, a pause\n"
"                           mixed     70%% random4k, 25%% range2m, 5%% bursts\n"
"  -g, --guest            half of the conversions are guest-driven\n"
"  -G, --guest-share PCT  percentage of guest-driven conversions (0): the\n"
"                         vCPU asks with KVM_HC_MAP_GPA_RANGE\n"
"  -r, --rate R           conversions per second, all VMs (unlimited)\n"
"  -d, --duration S       stop after S seconds\n"
"  -c, --count N          stop after N conversions\n"
"  -H, --hold PCT         before PCT%% of conversions to private, hold a page\n"
"                         of the range in a pipe (vmsplice) (0)\n"
"  -m, --hold-ms MS       how long a page stays held (20)\n"
"  -S, --seed N           random seed; same seed, same conversions (time)\n"
"  -q, --quiet            no summary on stderr\n"
"  -h, --help             show this help\n"
"\n"
"Every conversion flips a range to the opposite of what most of it is, so\n"
"it changes pages.  EAGAIN (a held page) is retried every 1 ms.  Without\n"
"--count or --duration, gmemload runs until SIGINT or SIGTERM.\n"
"Exit status: 0 ok, 1 self-check failed or error, 2 bad usage,\n"
"4 not supported here.\n"
"\n"
"Examples:\n"
"  gmemload --size 8M --count 1000\n"
"  gmemload --pattern burst --rate 500 --duration 10\n"
"  gmemload --vms 2 --guest --hold 20 --duration 5 | jq .totals\n"
"  gmemload --seed 7 --pattern range2m --size 16M --count 100\n");
}

static uint64_t parse_u64(const char *name, const char *arg, uint64_t max)
{
	unsigned long long val;
	char *end;

	errno = 0;
	val = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || *arg == '-' || val > max)
		usage_error("invalid %s '%s' (0 to %lu)", name, arg, max);
	return val;
}

static double parse_positive(const char *name, const char *arg)
{
	double val;
	char *end;

	errno = 0;
	val = strtod(arg, &end);
	if (errno || end == arg || *end || !(val > 0) || val > 1e9)
		usage_error("invalid %s '%s' (a number above 0)", name, arg);
	return val;
}

/* Bytes with an optional K, M or G suffix; a multiple of the page size. */
static uint64_t parse_size_arg(const char *arg)
{
	unsigned long long val;
	int shift = 0;
	char *end;

	errno = 0;
	val = strtoull(arg, &end, 10);
	if (!errno && end != arg && *arg != '-') {
		switch (*end) {
		case 'k': case 'K': shift = 10; end++; break;
		case 'm': case 'M': shift = 20; end++; break;
		case 'g': case 'G': shift = 30; end++; break;
		}
		if (!*end && val && val <= MAX_SIZE >> shift &&
		    !((val << shift) % PAGE_BYTES))
			return val << shift;
	}
	usage_error("invalid --size '%s' (a multiple of 4K up to 64G, e.g. 8M)",
		    arg);
}

static enum pattern parse_pattern(const char *arg)
{
	int p;

	for (p = 0; p < NR_PATTERNS; p++)
		if (!strcmp(arg, pattern_names[p]))
			return p;
	usage_error("invalid --pattern '%s' (random4k, range2m, burst or mixed)",
		    arg);
}

static void parse_options(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "vms",	 required_argument, NULL, 'n' },
		{ "size",	 required_argument, NULL, 's' },
		{ "pattern",	 required_argument, NULL, 'p' },
		{ "guest",	 no_argument,	    NULL, 'g' },
		{ "guest-share", required_argument, NULL, 'G' },
		{ "rate",	 required_argument, NULL, 'r' },
		{ "duration",	 required_argument, NULL, 'd' },
		{ "count",	 required_argument, NULL, 'c' },
		{ "hold",	 required_argument, NULL, 'H' },
		{ "hold-ms",	 required_argument, NULL, 'm' },
		{ "seed",	 required_argument, NULL, 'S' },
		{ "quiet",	 no_argument,	    NULL, 'q' },
		{ "help",	 no_argument,	    NULL, 'h' },
		{}
	};
	bool seeded = false;
	int c;

	opterr = 0;	/* our own messages, with the exit status 2 */
	while ((c = getopt_long(argc, argv, ":n:s:p:gG:r:d:c:H:m:S:qh",
				longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			opt.nr_vms = parse_u64("--vms", optarg, 64);
			if (!opt.nr_vms)
				usage_error("--vms must be at least 1");
			break;
		case 's':
			opt.size = parse_size_arg(optarg);
			break;
		case 'p':
			opt.pattern = parse_pattern(optarg);
			break;
		case 'g':
			opt.guest_pct = 50;
			break;
		case 'G':
			opt.guest_pct = parse_u64("--guest-share", optarg, 100);
			break;
		case 'r':
			opt.rate = parse_positive("--rate", optarg);
			break;
		case 'd':
			opt.duration = parse_positive("--duration", optarg);
			break;
		case 'c':
			opt.count = parse_u64("--count", optarg, ULLONG_MAX);
			if (!opt.count)
				usage_error("--count must be at least 1");
			break;
		case 'H':
			opt.hold_pct = parse_u64("--hold", optarg, 100);
			break;
		case 'm':
			opt.hold_ms = parse_u64("--hold-ms", optarg, 60000);
			break;
		case 'S':
			opt.seed = parse_u64("--seed", optarg, ULLONG_MAX);
			seeded = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'h':
			usage();
			exit(0);
		case ':':
			usage_error("option '%s' needs an argument",
				    argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	/* A short default seed survives JSON tools that use doubles. */
	if (!seeded)
		opt.seed = (now_ns() ^ getpid()) % 1000000000;
}

int main(int argc, char *argv[])
{
	struct counts total = {};
	struct run r = {};
	double elapsed;
	bool ok = true;
	unsigned int i;

	parse_options(argc, argv);
	rng_state = opt.seed;
	check_kvm();
	catch_stop_signals();

	vms = calloc(opt.nr_vms, sizeof(*vms));
	if (!vms)
		die("out of memory");
	for (i = 0; i < opt.nr_vms; i++)
		vm_setup(&vms[i], i);

	run_workload(&r);
	elapsed = (now_ns() - r.t0) / 1e9;

	/* Nothing may change under the kernel's counts while we read them. */
	for (i = 0; i < opt.nr_vms; i++)
		stop_vcpu_thread(&vms[i]);
	release_all_holds();
	for (i = 0; i < opt.nr_vms; i++) {
		read_fdinfo(&vms[i]);
		vms[i].checked_ok = self_check(&vms[i]);
		ok &= vms[i].checked_ok;
		add_counts(&total, &vms[i].n);
	}

	print_json(&r, &total, ok, elapsed);
	if (!opt.quiet)
		print_summary(&total, elapsed);
	for (i = 0; i < nr_mismatches; i++)
		fprintf(stderr, "gmemload: self-check: %s\n", mismatches[i]);

	for (i = 0; i < opt.nr_vms; i++)
		vm_teardown(&vms[i]);
	return ok ? 0 : EXIT_FAIL;
}
