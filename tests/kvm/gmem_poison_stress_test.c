// SPDX-License-Identifier: GPL-2.0
/*
 * Memory failure racing with conversions, user faults and allocation on
 * one guest_memfd.
 *
 * memory_failure() holds the folio lock when it calls guest_memfd's
 * error_remove_folio(), which used to take the mapping's invalidate_lock
 * shared.  guest_memfd takes the two the other way round: a conversion
 * that zeroes content locks folios with the invalidate_lock held for
 * write, and user faults and fallocate() lock folios with it held shared
 * (a shared taker also waits behind a queued writer).  Both sides then
 * waited for each other forever.  Here, at the same time, on a guest_memfd
 * of a software-protected VM, mmap()ed and all shared at first:
 *
 *  - a converter converts random ranges to shared (with ZERO where the
 *    ABI has content modes) and, one in three, to private (PRESERVE),
 *    half of them over the page being poisoned;
 *  - a poisoner writes a random page, poisons it through the mapping
 *    (MADV_HWPOISON), holds it a moment, punches it out of the file so
 *    that the offset gets a fresh page, and gives the poisoned frame back
 *    to the allocator (unpoison-pfn, where CONFIG_HWPOISON_INJECT has it:
 *    unpoisoning refuses a page that is still in a file);
 *  - two faulters read, write and fallocate() random pages, half of them
 *    the page being poisoned;
 *  - a vCPU reads every page over and over, so that KVM maps them and
 *    memory failure has KVM mappings to zap.
 *
 * The main thread is a watchdog: a thread that makes no progress for
 * STALL_SECONDS fails the test, naming the thread and what it was doing.
 * Also checked: a conversion fails only with EHWPOISON at a page being
 * poisoned or with EAGAIN, at an offset inside its range; a memory-error
 * SIGBUS, or EHWPOISON from fallocate() or KVM_RUN, comes only from a page
 * being poisoned; a poisoned page never reads; and at the end, nothing
 * poisoned being left in the file, all of it converts both ways.
 *
 * Needs in-place conversion switched on, CONFIG_MEMORY_FAILURE and root;
 * the 6.12 series (RFC v5) refuses to convert poisoned pages, the 7.3
 * series (v8) converts them like any other.
 *
 *   gmem_poison_stress_test [-d SECONDS] [kselftest harness options]
 */
#include <linux/falloc.h>
#include <pthread.h>
#include <time.h>

#include "gmem.h"
#include "kselftest_harness.h"

#define NR_PAGES	32
#define PAGE		4096ULL
#define FILE_SIZE	(NR_PAGES * PAGE)
#define STALL_SECONDS	30
#define UNPOISON_PFN	"/sys/kernel/debug/hwpoison/unpoison-pfn"

enum { CONVERTER, POISONER, FAULTER0, FAULTER1, VCPU, NR_THREADS };

static const char *const thread_names[NR_THREADS] = {
	"converter", "poisoner", "faulter 0", "faulter 1", "vCPU",
};

struct thread {
	pthread_t id;
	struct guest_random_state rng;
	unsigned long progress;		/* bumped after every operation */
	const char *doing;		/* what it does now... */
	int page;			/* ...to which page, or -1 */
};

struct counts {
	unsigned long converted[2];	/* to shared, to private */
	/* Conversions done over a page being poisoned (v8 only) */
	unsigned long converted_poisoned;
	unsigned long ehwpoison, eagain;
	unsigned long poisoned, again, busy, refused, unpoisoned, kept;
	unsigned long accesses, sigbus_poisoned, sigbus_private;
	unsigned long allocations, alloc_ehwpoison;
	unsigned long vcpu_rounds, vcpu_ehwpoison, vcpu_efault;
};

static long run_seconds = 15;
static struct gmem_vm g;
static struct thread threads[NR_THREADS];
static struct counts counts;
static volatile bool stop;
static int unpoison_fd = -1, pagemap_fd = -1;

/* The page being poisoned, or -1: the others aim at it half the time. */
static int target = -1;

/*
 * Per page: odd from just before the page is poisoned until it is out of
 * the file and of our mapping.  An error blamed on a poisoned page is
 * right if the count was odd before the call or changed during it.
 */
static unsigned long poison_seq[NR_PAGES];

#define COUNT(field)	__atomic_add_fetch(&counts.field, 1, __ATOMIC_RELAXED)

static uint32_t rnd(struct thread *t, uint32_t n)
{
	return guest_random_u32(&t->rng) % n;
}

static uint8_t *page_ptr(int i)
{
	return g.mem + i * PAGE;
}

static void doing(struct thread *t, const char *what, int page)
{
	WRITE_ONCE(t->doing, what);
	WRITE_ONCE(t->page, page);
}

static void progress(struct thread *t)
{
	__atomic_add_fetch(&t->progress, 1, __ATOMIC_RELAXED);
}

static unsigned long seq_of(int page)
{
	return __atomic_load_n(&poison_seq[page], __ATOMIC_SEQ_CST);
}

static bool maybe_poisoned(int page, unsigned long before)
{
	return (before & 1) || seq_of(page) != before;
}

/* Whether a page of [@first, @end) may have been poisoned since @before. */
static bool range_maybe_poisoned(int first, int end, const unsigned long *before)
{
	int i;

	for (i = first; i < end; i++)
		if (maybe_poisoned(i, before[i]))
			return true;
	return false;
}

static void snapshot_seq(unsigned long *seq)
{
	int i;

	for (i = 0; i < NR_PAGES; i++)
		seq[i] = seq_of(i);
}

/* Half the time the page being poisoned, if any; else any page. */
static int pick_page(struct thread *t)
{
	int p = __atomic_load_n(&target, __ATOMIC_RELAXED);

	return p >= 0 && rnd(t, 2) ? p : (int)rnd(t, NR_PAGES);
}

/* ------------------------------------------------------------------ */
/* SIGBUS                                                             */

static __thread int sigbus_code;
static __thread bool sigbus_ignored;

/*
 * A host access to a private or poisoned page, or memory failure telling
 * the poisoner that the dirty page it poisoned is gone: the thread jumps
 * back to where it expected one, with the code in sigbus_code.  A notice
 * that a page we do not touch was poisoned (action optional) needs
 * nothing, and the vCPU thread learns of a poisoned page from KVM_RUN.
 */
static void sigbus_action(int sig, siginfo_t *si, void *ctx)
{
	if (si->si_code == BUS_MCEERR_AO)
		return;
	sigbus_code = si->si_code;
	if (gmem_sigbus_jmp)
		siglongjmp(*gmem_sigbus_jmp, 1);
	if (sigbus_ignored)
		return;
	TEST_FAIL("unexpected SIGBUS, code %d, address %p", si->si_code,
		  si->si_addr);
}

static void catch_sigbus(void)
{
	struct sigaction sa = {
		.sa_sigaction = sigbus_action,
		.sa_flags = SA_SIGINFO,
	};

	TEST_ASSERT(!sigaction(SIGBUS, &sa, NULL), "sigaction(SIGBUS)");
}

/* ------------------------------------------------------------------ */
/* The converter                                                      */

/*
 * To shared (ZERO on RFC v5) or to private (PRESERVE) over pages [@first,
 * @end).  It may fail with EAGAIN while the poisoner's madvise() holds a
 * page and, on RFC v5, with EHWPOISON at a page being poisoned, inside
 * the range; nothing else.
 */
static void convert(struct thread *t, int first, int end, bool to_private)
{
	const char *what = to_private ? "conversion to private" :
					"conversion to shared";
	unsigned long before[NR_PAGES];
	uint64_t error_offset = 0;
	int r, page;

	snapshot_seq(before);
	doing(t, what, first);
	r = gmem_set_attrs(g.fd, first * PAGE, (end - first) * PAGE,
			   to_private ? PRIVATE : SHARED,
			   to_private ? MODE_KEEP : MODE_ZERO_OR_NONE,
			   &error_offset);
	if (!r) {
		COUNT(converted[to_private]);
		if (!GMEM_RFC_V5 && range_maybe_poisoned(first, end, before))
			COUNT(converted_poisoned);
		return;
	}

	page = error_offset / PAGE;
	TEST_ASSERT(r == -EAGAIN || (GMEM_RFC_V5 && r == -EHWPOISON),
		    "%s of pages [%d, %d): %s", what, first, end, strerror(-r));
	TEST_ASSERT(!(error_offset % PAGE) && page >= first && page < end,
		    "%s of pages [%d, %d): %s at offset %#lx", what, first,
		    end, strerror(-r), error_offset);
	if (r == -EAGAIN) {
		COUNT(eagain);
		return;
	}
	TEST_ASSERT(maybe_poisoned(page, before[page]),
		    "%s of pages [%d, %d): EHWPOISON at page %d, never poisoned",
		    what, first, end, page);
	COUNT(ehwpoison);
}

/*
 * One conversion in three is to private: the poisoner needs shared pages,
 * and zeroing is where conversions lock folios.
 */
static void *converter(void *arg)
{
	struct thread *t = arg;
	int p, first, end;

	while (!stop) {
		p = pick_page(t);
		first = rnd(t, p + 1);
		end = p + 1 + rnd(t, NR_PAGES - p);
		convert(t, first, end, !rnd(t, 3));
		progress(t);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The poisoner                                                       */

/* The frame of the page mapped at @p, from /proc/self/pagemap; 0 if none. */
static uint64_t frame_of(void *p)
{
	uint64_t entry = 0;

	if (pread(pagemap_fd, &entry, sizeof(entry),
		  (uintptr_t)p / PAGE * sizeof(entry)) != sizeof(entry))
		return 0;
	return entry >> 63 ? entry & ((1ULL << 55) - 1) : 0;
}

/*
 * MADV_HWPOISON of the page at @p: 0 or an errno; -1 when memory failure
 * sent us SIGBUS, as it does for a dirty page, which is poisoned then too.
 */
static int poison(uint8_t *p)
{
	sigjmp_buf env;
	int r;

	gmem_sigbus_jmp = &env;
	if (sigsetjmp(env, 1)) {
		gmem_sigbus_jmp = NULL;
		return -1;
	}
	r = madvise(p, PAGE, MADV_HWPOISON) ? errno : 0;
	gmem_sigbus_jmp = NULL;
	return r;
}

/*
 * Give poisoned frame @pfn back to the allocator.  Until the last
 * temporary reference is gone (a conversion's folio batch, a per-CPU LRU
 * batch) unpoisoning refuses it: try a few times, else leave it unused.
 */
static void unpoison(struct thread *t, uint64_t pfn, int page)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%#lx\n", pfn), tries;

	doing(t, "unpoison-pfn", page);
	for (tries = 0; tries < 10; tries++) {
		if (write(unpoison_fd, buf, len) == len) {
			COUNT(unpoisoned);
			return;
		}
		TEST_ASSERT(errno == EBUSY, "unpoison-pfn %#lx: %s", pfn,
			    strerror(errno));
		usleep(1000);
	}
	COUNT(kept);
}

/*
 * The page is out of the file, but a mapping that saw it poisoned keeps
 * an entry that raises SIGBUS: drop ours, so that the offset faults in
 * the file's fresh page again.
 */
static void punch_out(struct thread *t, int page)
{
	doing(t, "punching the poisoned page out", page);
	TEST_ASSERT(!fallocate(g.fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			       page * PAGE, PAGE),
		    "punch page %d: %s", page, strerror(errno));
	doing(t, "MADV_DONTNEED of the punched page", page);
	TEST_ASSERT(!madvise(page_ptr(page), PAGE, MADV_DONTNEED),
		    "MADV_DONTNEED of page %d: %s", page, strerror(errno));
}

static void poison_round(struct thread *t, int page)
{
	uint8_t *p = page_ptr(page), v;
	uint64_t pfn;
	int r;

	/* Only a shared page can be poisoned through the mapping. */
	doing(t, "writing the page to poison", page);
	if (!gmem_host_write(p, 0xa5)) {
		TEST_ASSERT(sigbus_code == BUS_ADRERR,
			    "page %d: SIGBUS code %d, and no page is poisoned",
			    page, sigbus_code);
		COUNT(refused);
		return;
	}
	pfn = unpoison_fd >= 0 ? frame_of(p) : 0;

	__atomic_add_fetch(&poison_seq[page], 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&target, page, __ATOMIC_RELAXED);
	doing(t, "MADV_HWPOISON", page);
	r = poison(p);
	if (r == EFAULT) {
		/* Private by now: nothing was poisoned. */
		COUNT(refused);
	} else {
		TEST_ASSERT(r <= 0 || r == EBUSY || r == EHWPOISON,
			    "MADV_HWPOISON of page %d: %s", page, strerror(r));
		COUNT(poisoned);
		if (r == EHWPOISON)
			COUNT(again);
		if (r == EBUSY)
			COUNT(busy);
		/* Hold it a moment: the others run into it. */
		usleep(1000 + rnd(t, 4000));
		/* Memory failure says EBUSY when it could not unmap it. */
		doing(t, "reading the poisoned page", page);
		TEST_ASSERT(r == EBUSY || !gmem_host_read(p, &v),
			    "poisoned page %d was read", page);
		punch_out(t, page);
	}
	__atomic_store_n(&target, -1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&poison_seq[page], 1, __ATOMIC_SEQ_CST);

	if (r != EFAULT && pfn)
		unpoison(t, pfn, page);
}

static void *poisoner(void *arg)
{
	struct thread *t = arg;

	while (!stop) {
		poison_round(t, rnd(t, NR_PAGES));
		progress(t);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The faulters                                                       */

/*
 * A host read or write of @page through the mapping.  SIGBUS means a
 * private page, or a memory error on a page being poisoned.
 */
static void access_page(struct thread *t, int page, bool write)
{
	unsigned long before = seq_of(page);
	uint8_t v = rnd(t, 256);
	bool ok;

	doing(t, write ? "writing a page" : "reading a page", page);
	ok = write ? gmem_host_write(page_ptr(page), v) :
		     gmem_host_read(page_ptr(page), &v);
	if (ok) {
		COUNT(accesses);
		return;
	}
	if (sigbus_code == BUS_MCEERR_AR) {
		TEST_ASSERT(maybe_poisoned(page, before),
			    "memory-error SIGBUS on page %d, never poisoned",
			    page);
		COUNT(sigbus_poisoned);
		return;
	}
	TEST_ASSERT(sigbus_code == BUS_ADRERR, "page %d: SIGBUS code %d",
		    page, sigbus_code);
	COUNT(sigbus_private);
}

/* fallocate() of a few pages from @page: EHWPOISON only if one is poisoned. */
static void allocate(struct thread *t, int page)
{
	int nr = 1 + rnd(t, min(4, NR_PAGES - page));
	unsigned long before[NR_PAGES];

	snapshot_seq(before);
	doing(t, "fallocate()", page);
	if (!fallocate(g.fd, FALLOC_FL_KEEP_SIZE, page * PAGE, nr * PAGE)) {
		COUNT(allocations);
		return;
	}
	TEST_ASSERT(errno == EHWPOISON, "fallocate() of pages [%d, %d): %s",
		    page, page + nr, strerror(errno));
	TEST_ASSERT(range_maybe_poisoned(page, page + nr, before),
		    "fallocate() of pages [%d, %d): EHWPOISON, none poisoned",
		    page, page + nr);
	COUNT(alloc_ehwpoison);
}

static void *faulter(void *arg)
{
	struct thread *t = arg;
	int page;

	while (!stop) {
		page = pick_page(t);
		switch (rnd(t, 3)) {
		case 0:
			access_page(t, page, false);
			break;
		case 1:
			access_page(t, page, true);
			break;
		default:
			allocate(t, page);
		}
		progress(t);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The vCPU                                                           */

static void guest_code(void)
{
	volatile uint8_t *mem = (volatile uint8_t *)GMEM_DATA_GPA;
	int i;

	for (;;) {
		for (i = 0; i < NR_PAGES; i++)
			(void)mem[i * PAGE];
		GUEST_SYNC(0);
	}
}

/*
 * KVM_RUN failed: the guest touched a page being poisoned (EHWPOISON), or
 * a page whose attributes changed under the fault (EFAULT), both with a
 * memory fault exit in our memslot; or a signal came (EINTR).
 */
static void vcpu_failed(struct kvm_vcpu *vcpu, const unsigned long *before)
{
	uint64_t gpa = vcpu->run->memory_fault.gpa;
	int err = errno, page = (gpa - GMEM_DATA_GPA) / PAGE;

	if (err == EINTR)
		return;
	TEST_ASSERT((err == EFAULT || err == EHWPOISON) &&
		    vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
		    gpa >= GMEM_DATA_GPA && gpa < GMEM_DATA_GPA + FILE_SIZE,
		    "KVM_RUN: %s, exit reason %u", strerror(err),
		    vcpu->run->exit_reason);
	if (err == EFAULT) {
		COUNT(vcpu_efault);
		return;
	}
	TEST_ASSERT(maybe_poisoned(page, before[page]),
		    "KVM_RUN: EHWPOISON at page %d, never poisoned", page);
	COUNT(vcpu_ehwpoison);
	/* The guest goes straight back to it: let the poisoner punch it. */
	usleep(100);
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vcpu *vcpu = g.vcpus[0];
	unsigned long before[NR_PAGES];
	struct thread *t = arg;
	struct ucall uc;

	sigbus_ignored = true;
	while (!stop) {
		snapshot_seq(before);
		doing(t, "KVM_RUN", -1);
		if (_vcpu_run(vcpu)) {
			vcpu_failed(vcpu, before);
		} else {
			TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
			if (get_ucall(vcpu, &uc) == UCALL_ABORT)
				REPORT_GUEST_ASSERT(uc);
			COUNT(vcpu_rounds);
		}
		progress(t);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The watchdog                                                       */

static void print_counts(double seconds)
{
	struct counts *c = &counts;

	ksft_print_msg("ran %.1f s: %lu poisonings (%lu poisoned, %lu of them "
		       "poisoned already, %lu reported busy; %lu refused on "
		       "private pages; %lu frames unpoisoned, %lu kept), %lu "
		       "conversions (%lu to shared, %lu to private, %lu of "
		       "them over a page being poisoned, %lu EHWPOISON, %lu "
		       "EAGAIN), %lu host accesses "
		       "(%lu memory-error SIGBUS, %lu on private pages), %lu "
		       "fallocate() (%lu EHWPOISON), %lu KVM_RUN (%lu EHWPOISON, "
		       "%lu EFAULT)\n",
		       seconds, c->poisoned + c->refused, c->poisoned,
		       c->again, c->busy, c->refused, c->unpoisoned, c->kept,
		       c->converted[0] + c->converted[1] + c->ehwpoison + c->eagain,
		       c->converted[0], c->converted[1], c->converted_poisoned,
		       c->ehwpoison, c->eagain,
		       c->accesses + c->sigbus_poisoned + c->sigbus_private,
		       c->sigbus_poisoned, c->sigbus_private,
		       c->allocations + c->alloc_ehwpoison, c->alloc_ehwpoison,
		       c->vcpu_rounds + c->vcpu_ehwpoison + c->vcpu_efault,
		       c->vcpu_ehwpoison, c->vcpu_efault);
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - start->tv_sec +
	       (now.tv_nsec - start->tv_nsec) / 1e9;
}

/*
 * Threads stuck in the kernel keep this process from ever exiting, and
 * its output open: the harness reports the failure when its timeout gives
 * up waiting, and whoever reads the output must see its end then.  Runs
 * at exit(), which every failure of the selftests library calls.
 */
static void let_go_of_output(void)
{
	int fd = open("/dev/null", O_WRONLY);

	fflush(stdout);
	fflush(stderr);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
}

/* The kernel stacks of blocked tasks, in the kernel log (CONFIG_MAGIC_SYSRQ). */
static void show_blocked_tasks(void)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY);

	if (fd < 0)
		return;
	if (write(fd, "w", 1) == 1)
		ksft_print_msg("the kernel log shows the blocked tasks\n");
	close(fd);
}

static void __attribute__((noreturn)) stuck(int i, long seconds,
					    const struct timespec *start)
{
	struct thread *t = &threads[i];

	ksft_print_msg("FAIL: the %s made no progress for %ld s, stuck in %s "
		       "(page %d): deadlock?\n", thread_names[i], seconds,
		       READ_ONCE(t->doing), READ_ONCE(t->page));
	print_counts(seconds_since(start));
	show_blocked_tasks();
	let_go_of_output();
	_exit(KSFT_FAIL);
}

/* Until @seconds have passed, fail the test if a thread stops moving. */
static void watch(long seconds, const struct timespec *start)
{
	unsigned long seen[NR_THREADS] = {};
	time_t moved[NR_THREADS], now = time(NULL);
	int i;

	for (i = 0; i < NR_THREADS; i++)
		moved[i] = now;
	while (seconds_since(start) < seconds) {
		sleep(1);
		now = time(NULL);
		for (i = 0; i < NR_THREADS; i++) {
			unsigned long p = __atomic_load_n(&threads[i].progress,
							  __ATOMIC_RELAXED);

			if (p != seen[i]) {
				seen[i] = p;
				moved[i] = now;
			} else if (now - moved[i] >= STALL_SECONDS) {
				stuck(i, now - moved[i], start);
			}
		}
	}
}

/* Each thread finishes what it is doing, under the same watch. */
static void stop_threads(const struct timespec *start)
{
	struct timespec deadline;
	int i, r;

	stop = true;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += STALL_SECONDS;
	for (i = 0; i < NR_THREADS; i++) {
		r = pthread_timedjoin_np(threads[i].id, NULL, &deadline);
		if (r == ETIMEDOUT)
			stuck(i, STALL_SECONDS, start);
		TEST_ASSERT(!r, "join the %s: %s", thread_names[i], strerror(r));
	}
}

static void start_threads(void)
{
	static void *(*const fns[NR_THREADS])(void *) = {
		[CONVERTER] = converter,
		[POISONER] = poisoner,
		[FAULTER0] = faulter,
		[FAULTER1] = faulter,
		[VCPU] = vcpu_thread,
	};
	int i, r;

	for (i = 0; i < NR_THREADS; i++) {
		threads[i].rng = new_guest_random_state(i + 1);
		doing(&threads[i], "starting", -1);
		r = pthread_create(&threads[i].id, NULL, fns[i], &threads[i]);
		TEST_ASSERT(!r, "start the %s: %s", thread_names[i], strerror(r));
	}
}

/*
 * Nothing poisoned is left in the file once the poisoner has stopped: all
 * of it converts to private, and back to shared, after which every page
 * reads (zeros, where ZERO exists).  Fresh faults may leave references in
 * per-CPU LRU batches a moment longer than the conversion's own drain
 * sees.
 */
static void check_whole_file_converts(void)
{
	static const uint8_t zero[PAGE];
	uint64_t error_offset = 0;
	int r, tries = 0, i;
	uint8_t v;

	while ((r = gmem_set_attrs(g.fd, 0, FILE_SIZE, PRIVATE, MODE_KEEP,
				   &error_offset)) == -EAGAIN && ++tries < 100)
		usleep(1000);
	TEST_ASSERT(!r, "the whole file to private: %s at offset %#lx",
		    strerror(-r), error_offset);
	r = gmem_set_attrs(g.fd, 0, FILE_SIZE, SHARED, MODE_ZERO_OR_NONE,
			   &error_offset);
	TEST_ASSERT(!r, "the whole file to shared: %s at offset %#lx",
		    strerror(-r), error_offset);
	for (i = 0; i < NR_PAGES; i++) {
		TEST_ASSERT(gmem_host_read(page_ptr(i), &v),
			    "page %d: SIGBUS after the run", i);
		TEST_ASSERT(!GMEM_RFC_V5 || !memcmp(page_ptr(i), zero, PAGE),
			    "page %d: not zeroed", i);
	}
}

TEST(memory_failure_races_conversions_faults_and_allocation)
{
	struct timespec start;

	GMEM_REQUIRE_IN_PLACE();
	/* The sysctl exists exactly when MADV_HWPOISON does. */
	if (access("/proc/sys/vm/memory_failure_early_kill", F_OK))
		SKIP(return, "no MADV_HWPOISON (CONFIG_MEMORY_FAILURE)");
	if (geteuid())
		SKIP(return, "MADV_HWPOISON needs root");

	gmem_vm_create(&g, 1, guest_code, FILE_SIZE,
		       GUEST_MEMFD_FLAG_INIT_SHARED);
	catch_sigbus();
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_GE(pagemap_fd, 0);
	unpoison_fd = open(UNPOISON_PFN, O_WRONLY);
	if (unpoison_fd < 0)
		ksft_print_msg("no %s (CONFIG_HWPOISON_INJECT): poisoned frames "
			       "stay out of use\n", UNPOISON_PFN);
	ksft_print_msg("%ld s, stuck after %d s without progress\n",
		       run_seconds, STALL_SECONDS);

	atexit(let_go_of_output);
	clock_gettime(CLOCK_MONOTONIC, &start);
	start_threads();
	watch(run_seconds, &start);
	stop_threads(&start);
	print_counts(seconds_since(&start));

	check_whole_file_converts();
	ASSERT_GT(counts.poisoned, 0)
		TH_LOG("no page was ever poisoned: nothing was tested");
	ASSERT_GT(GMEM_RFC_V5 ? counts.ehwpoison : counts.converted_poisoned, 0)
		TH_LOG("no conversion met a poisoned page: nothing was tested");

	if (unpoison_fd >= 0)
		close(unpoison_fd);
	close(pagemap_fd);
	gmem_vm_free(&g);
}

int main(int argc, char **argv)
{
	struct __fixture_metadata *f;
	struct __test_metadata *t;

	/* -d SECONDS comes before the harness's own options. */
	if (argc > 2 && !strcmp(argv[1], "-d")) {
		run_seconds = atoi_positive("-d", argv[2]);
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	/*
	 * Time for the run, the threads to stop and the checks after it: a
	 * stuck thread is for the watchdog to report, not for the harness.
	 */
	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout = run_seconds + 3 * STALL_SECONDS;
	return test_harness_run(argc, argv);
}
