// SPDX-License-Identifier: GPL-2.0
/*
 * Bounded concurrent stress of guest_memfds.  In each phase, threads of
 * this process and of a forked child convert overlapping ranges of one
 * file (M) both ways, probe and write pages through mmap(), pin pages
 * (vmsplice, gup_test long-term pins), punch holes and re-allocate through
 * dup()ed fds, while vCPUs read and write the same memory; meanwhile
 * another thread creates, fills, binds, converts and closes one small
 * guest_memfd (C) after another under a second memslot, which the vCPUs
 * read too.
 *
 * Page p (M's pages first, then C's) holds its own pattern,
 * gmem_pattern(tag + p), or zeros.  The first half of M (A) is only ever
 * converted with PRESERVE or flags = 0, which both keep every byte, and
 * never written, so it holds its pattern at every instant.  The second
 * half (B) takes every content mode, hole punches and writes of its own
 * pattern, so each of its bytes is its pattern's or zero.  Checked
 * throughout and after every phase:
 *
 *  - when the phase ends, A is byte-exact and B is pattern or zero;
 *  - every read of A, by the host, a pipe or a vCPU, sees A's data; every
 *    read of B or C sees its pattern or zeros;
 *  - no host access succeeds on a page that was private for the whole
 *    access, and none fails on a page that was shared for all of it;
 *  - each C reads zeros when it is created and keeps its pattern through
 *    conversions both ways;
 *  - no vCPU takes MAX_FAULT_STREAK memory-fault exits on M in a row;
 *  - the phase did at least a minimum of each kind of work (minimums[]),
 *    so that a run in which nothing happened fails.
 *
 * Between phases M is closed and re-created.
 * Needs in-place conversion switched on.
 *
 *   gmem_stress_test [-t SECONDS] [-i PHASES] [-s SEED] [-v]
 */
#include <linux/falloc.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <mm/gup_test.h>

#include "gmem.h"

#define NR_PAGES	64
#define A_PAGES		(NR_PAGES / 2)
#define B_PAGES		(NR_PAGES - A_PAGES)
#define PAGE		4096ULL
#define WORDS		(PAGE / 4)
#define FILE_SIZE	(NR_PAGES * PAGE)
#define NR_VCPUS	2
#define PHASE_SECONDS	2
/* A phase lasts until it has done minimums[], but no longer than this. */
#define PHASE_MAX_SECONDS	60
#define MAX_OPS		100000		/* per worker and phase */

/* C: its own memslot, right after M in guest physical memory. */
#define C_SLOT		(GMEM_DATA_SLOT + 1)
#define C_PAGES		8
#define C_SIZE		(C_PAGES * PAGE)
#define C_GPA		(GMEM_DATA_GPA + FILE_SIZE)
#define C_FIRST		NR_PAGES	/* the number of C's first page */

/*
 * A memory-fault exit on M needs a conversion of the page between KVM's
 * two looks at its attributes: a few in a row are bad luck, this many a
 * vCPU that can no longer make progress.
 */
#define MAX_FAULT_STREAK	1000
/* How long a vCPU waits for C, released while bound, to be unbound. */
#define C_WAIT_MS		5000

enum known { K_UNKNOWN, K_SHARED, K_PRIVATE };

/*
 * What is known about a page's attributes.  A conversion that overlaps no
 * other one in time decides it; every conversion's start bumps @gen, so a
 * prober that sees @gen unchanged across its access knows no conversion
 * began meanwhile.  In memory shared with the child process.
 */
struct page_state {
	pthread_mutex_t lock;
	int inflight;
	uint64_t gen;
	enum known known;
};

struct stats {
	uint64_t converted, eagain, gave_up, probes, checked_private, checked_shared;
	uint64_t punches, pins, pin_reads, vcpu_rounds, vcpu_retries;
	uint64_t reopens, c_mmio, c_faults;
};

static struct shared {
	struct page_state pages[NR_PAGES];
	volatile bool stop;
	/* Odd while a C is bound, bumped when one is bound and unbound. */
	volatile uint64_t c_gen;
	struct stats stats;
} *sh;

/* The least work of each kind that every phase must do. */
static const struct minimum {
	const char *what;
	size_t offset;
	uint64_t least;
} minimums[] = {
	{ "conversions", offsetof(struct stats, converted), 500 },
	{ "EAGAIN retries", offsetof(struct stats, eagain), 5 },
	{ "probes of known-private pages", offsetof(struct stats, checked_private), 100 },
	{ "probes of known-shared pages", offsetof(struct stats, checked_shared), 100 },
	{ "pins", offsetof(struct stats, pins), 50 },
	{ "pinned pages read back", offsetof(struct stats, pin_reads), 20 },
	{ "hole punches", offsetof(struct stats, punches), 50 },
	{ "guest_memfds re-created", offsetof(struct stats, reopens), 5 },
};
/* Rounds of guest_code()'s loop that each vCPU must complete in a phase. */
#define MIN_VCPU_ROUNDS		2

/* The patterns: page p holds gmem_pattern(phase_tag + p) in this phase. */
static uint32_t phase_tag;
static uint32_t seed;
static bool verbose;
static int gup_fd = -1;
static struct gmem_vm g;

#define STAT_ADD(field, n)	__atomic_add_fetch(&sh->stats.field, n, __ATOMIC_RELAXED)

/* Word @word of page @page's pattern; the guest computes it too. */
static uint32_t pattern_word(uint32_t page, uint32_t word)
{
	return (phase_tag + page) ^ (uint32_t)(word * 2654435761u);
}

/* Whether each byte of @v is @want's or zero. */
static bool zero_or_pattern(uint32_t v, uint32_t want)
{
	int shift;

	for (shift = 0; shift < 32; shift += 8)
		if ((v >> shift & 0xff) &&
		    (v >> shift & 0xff) != (want >> shift & 0xff))
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* The guest: reads A (shared or private, it must see A's data), reads  */
/* and writes B, reads C                                               */

static void guest_check_a(struct guest_random_state *r, volatile uint32_t *mem)
{
	uint32_t p = guest_random_u32(r) % A_PAGES;
	uint32_t w = guest_random_u32(r) % WORDS;

	GUEST_ASSERT_EQ(mem[p * WORDS + w], pattern_word(p, w));
}

static void guest_check_word(volatile uint32_t *mem, uint32_t p, uint32_t w)
{
	uint32_t v = mem[p * WORDS + w];

	__GUEST_ASSERT(zero_or_pattern(v, pattern_word(p, w)),
		       "page %u word %u holds %#x", p, w, v);
}

static void guest_code(int idx)
{
	struct guest_random_state r = new_guest_random_state(phase_tag + idx);
	volatile uint32_t *mem = (uint32_t *)GMEM_DATA_GPA;
	uint32_t b, w;
	int i;

	for (;;) {
		for (i = 0; i < 64; i++) {
			guest_check_a(&r, mem);
			b = A_PAGES + guest_random_u32(&r) % B_PAGES;
			guest_check_word(mem, b, guest_random_u32(&r) % WORDS);
			w = guest_random_u32(&r) % WORDS;
			mem[b * WORDS + w] = pattern_word(b, w);
		}
		/*
		 * C once a round only: a read of it costs more than the rest
		 * of the round.  C may be unbound (an MMIO exit, reading 0).
		 */
		guest_check_word(mem, C_FIRST + guest_random_u32(&r) % C_PAGES,
				 guest_random_u32(&r) % WORDS);
		GUEST_SYNC(0);
	}
}

/* ------------------------------------------------------------------ */
/* Bookkeeping of conversions                                         */

struct conversion {
	int first, end;
	bool private;
	uint64_t flags;
	bool solo[NR_PAGES];
	enum known prev[NR_PAGES];
	uint64_t gen[NR_PAGES];
};

static void conversion_begin(struct conversion *c)
{
	int i;

	for (i = c->first; i < c->end; i++) {
		struct page_state *ps = &sh->pages[i];

		pthread_mutex_lock(&ps->lock);
		c->solo[i] = !ps->inflight++;
		c->prev[i] = ps->known;
		ps->known = K_UNKNOWN;
		c->gen[i] = ++ps->gen;
		pthread_mutex_unlock(&ps->lock);
	}
}

static void conversion_end(struct conversion *c, bool done)
{
	int i;

	for (i = c->first; i < c->end; i++) {
		struct page_state *ps = &sh->pages[i];

		pthread_mutex_lock(&ps->lock);
		ps->inflight--;
		if (c->solo[i] && ps->gen == c->gen[i])
			ps->known = !done ? c->prev[i] :
				    c->private ? K_PRIVATE : K_SHARED;
		pthread_mutex_unlock(&ps->lock);
	}
}

/* Converts, retrying EAGAIN a few times: pins may come and go. */
static void convert(int fd, struct conversion *c)
{
	int r, tries = 0;

	conversion_begin(c);
	for (;;) {
		r = gmem_set_attrs(fd, c->first * PAGE, (c->end - c->first) * PAGE,
				   c->private ? PRIVATE : SHARED, c->flags, NULL);
		if (r != -EAGAIN || ++tries == 4)
			break;
		STAT_ADD(eagain, 1);
		usleep(100);
	}
	conversion_end(c, !r);

	TEST_ASSERT(!r || r == -EAGAIN, "convert [%d, %d) to %s flags %#lx: %s",
		    c->first, c->end, c->private ? "private" : "shared",
		    c->flags, strerror(-r));
	if (r)
		STAT_ADD(gave_up, 1);
	else
		STAT_ADD(converted, 1);
}

/* ------------------------------------------------------------------ */
/* Workers                                                            */

struct worker {
	pthread_t thread;
	void (*op)(struct worker *w);
	struct guest_random_state rng;
	int fd;
};

static uint32_t rnd(struct worker *w, uint32_t n)
{
	return guest_random_u32(&w->rng) % n;
}

static uint8_t *page_ptr(int i)
{
	return g.mem + i * PAGE;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return !p[0] && !memcmp(p, p + 1, len - 1);
}

/*
 * The first word of @p, a copy of page @page, that is neither its
 * pattern's nor zero, or -1.
 */
static int first_foreign_word(const uint8_t *p, int page)
{
	const uint32_t *w = (const uint32_t *)p;
	int i;

	for (i = 0; i < WORDS; i++)
		if (!zero_or_pattern(w[i], pattern_word(page, i)))
			return i;
	return -1;
}

/*
 * Overlapping ranges: PRESERVE or flags = 0 (both keep every byte)
 * anywhere, ZERO within B.  ZERO is for conversions to shared only.
 */
static void op_convert(struct worker *w)
{
	struct conversion c = { .private = rnd(w, 2) };
	bool in_b = rnd(w, 2);
	int lo = in_b ? A_PAGES : 0, n = NR_PAGES - lo;

	c.first = lo + rnd(w, n);
	c.end = c.first + 1 + rnd(w, min(8, NR_PAGES - c.first));
	c.flags = rnd(w, 2) ? MODE_KEEP : MODE_NONE;
	if (in_b && !c.private && rnd(w, 2))
		c.flags = MODE_ZERO_OR_NONE;
	convert(w->fd, &c);
}

/* Whether host byte @v, read from word @word of page @i, may be there. */
static bool byte_may_be(int i, uint32_t word, uint8_t v)
{
	uint8_t want = pattern_word(i, word);

	return v == want || (i >= A_PAGES && !v);
}

/*
 * One host access to the low byte of word @word of page @i, checked
 * against what is known of the page.  Writes (to B only) write the
 * pattern's byte.
 */
static void probe(int i, uint32_t word, bool write)
{
	struct page_state *ps = &sh->pages[i];
	uint8_t *p = page_ptr(i) + word * 4;
	uint8_t v = pattern_word(i, word);
	enum known known;
	uint64_t gen;
	bool ok;

	pthread_mutex_lock(&ps->lock);
	known = ps->known;
	gen = ps->gen;
	pthread_mutex_unlock(&ps->lock);

	ok = write ? gmem_host_write(p, v) : gmem_host_read(p, &v);

	pthread_mutex_lock(&ps->lock);
	if (ps->gen == gen && known == K_PRIVATE) {
		TEST_ASSERT(!ok, "host %s private page %d",
			    write ? "wrote" : "read", i);
		STAT_ADD(checked_private, 1);
	} else if (ps->gen == gen && known == K_SHARED) {
		TEST_ASSERT(ok, "SIGBUS on shared page %d", i);
		STAT_ADD(checked_shared, 1);
	}
	pthread_mutex_unlock(&ps->lock);

	if (ok && !write)
		TEST_ASSERT(byte_may_be(i, word, v),
			    "page %d word %u: %#x, want %#x%s", i, word, v,
			    (uint8_t)pattern_word(i, word),
			    i >= A_PAGES ? " or 0" : "");
	STAT_ADD(probes, 1);
}

static void op_probe(struct worker *w)
{
	int i = rnd(w, NR_PAGES);

	probe(i, rnd(w, WORDS), i >= A_PAGES && rnd(w, 2));
}

/* vmsplice a page into a pipe, hold it a moment, read it back. */
static void op_splice(struct worker *w)
{
	int i = rnd(w, NR_PAGES), pipefd[2], bad;
	struct iovec iov = { .iov_base = page_ptr(i), .iov_len = PAGE };
	uint8_t buf[PAGE];

	TEST_ASSERT(!pipe(pipefd), "pipe");
	if (vmsplice(pipefd[1], &iov, 1, 0) == PAGE) {
		STAT_ADD(pins, 1);
		usleep(rnd(w, 500));
		TEST_ASSERT(read(pipefd[0], buf, PAGE) == PAGE, "read pipe");
		TEST_ASSERT(i >= A_PAGES || gmem_pattern_ok(buf, PAGE, phase_tag + i),
			    "page %d read through a pipe lost its data", i);
		bad = first_foreign_word(buf, i);
		TEST_ASSERT(bad < 0, "page %d read through a pipe: word %d is %#x",
			    i, bad, ((uint32_t *)buf)[bad]);
		STAT_ADD(pin_reads, 1);
	} else {
		TEST_ASSERT(errno == EFAULT, "vmsplice: %s", strerror(errno));
	}
	close(pipefd[0]);
	close(pipefd[1]);
}

/* A long-term FOLL_PIN, like an IOMMU mapping's, held a moment. */
static void op_gup_pin(struct worker *w)
{
	int i = rnd(w, NR_PAGES);
	struct pin_longterm_test pin = {
		.addr = (uintptr_t)page_ptr(i),
		.size = (1 + rnd(w, 2)) * PAGE,
	};

	if (i == NR_PAGES - 1)
		pin.size = PAGE;
	if (ioctl(gup_fd, PIN_LONGTERM_TEST_START, &pin)) {
		TEST_ASSERT(errno == EFAULT, "pin: %s", strerror(errno));
		return;
	}
	STAT_ADD(pins, 1);
	usleep(rnd(w, 500));
	TEST_ASSERT(!ioctl(gup_fd, PIN_LONGTERM_TEST_STOP), "unpin");
}

/* Punch a hole in B, then allocate anywhere, through a fresh dup(). */
static void op_punch(struct worker *w)
{
	int fd = dup(w->fd);
	int first = A_PAGES + rnd(w, B_PAGES);
	int n = 1 + rnd(w, NR_PAGES - first);

	TEST_ASSERT(fd >= 0, "dup");
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			       first * PAGE, n * PAGE), "punch: %s", strerror(errno));
	first = rnd(w, NR_PAGES);
	n = 1 + rnd(w, NR_PAGES - first);
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE, first * PAGE, n * PAGE),
		    "allocate: %s", strerror(errno));
	close(fd);
	STAT_ADD(punches, 1);
}

/* A new C, all zeros, then filled with its pattern. */
static uint8_t *c_create(int *fd)
{
	uint8_t *mem;
	int i;

	*fd = vm_create_guest_memfd(g.vm, C_SIZE, GUEST_MEMFD_FLAG_MMAP |
				    GUEST_MEMFD_FLAG_INIT_SHARED);
	mem = mmap(NULL, C_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	TEST_ASSERT(mem != MAP_FAILED, "mmap(C)");
	TEST_ASSERT(all_zero(mem, C_SIZE),
		    "seed %u: a new guest_memfd does not read zeros", seed);
	for (i = 0; i < C_PAGES; i++)
		gmem_pattern(mem + i * PAGE, PAGE, phase_tag + C_FIRST + i);
	return mem;
}

static void c_bind(int fd, uint8_t *mem)
{
	vm_set_user_memory_region2(g.vm, C_SLOT, KVM_MEM_GUEST_MEMFD, C_GPA,
				   C_SIZE, mem, fd, 0);
	sh->c_gen++;
}

static void c_unbind(void)
{
	vm_set_user_memory_region2(g.vm, C_SLOT, KVM_MEM_GUEST_MEMFD, C_GPA,
				   0, NULL, 0, 0);
	sh->c_gen++;
}

/*
 * Part of C private a moment, while the vCPUs read it, and shared again:
 * both with PRESERVE.  A vCPU's fault holds a page for a moment, so the
 * first may fail with EAGAIN.
 */
static void c_convert(struct worker *w, int fd)
{
	uint64_t first = rnd(w, C_PAGES), n = 1 + rnd(w, C_PAGES - first);
	int r;

	r = gmem_set_attrs(fd, first * PAGE, n * PAGE, PRIVATE, MODE_KEEP,
			   NULL);
	TEST_ASSERT(!r || r == -EAGAIN, "convert C to private: %s", strerror(-r));
	usleep(rnd(w, 500));
	gmem_convert(fd, first * PAGE, n * PAGE, SHARED, MODE_KEEP);
}

/*
 * One C from creation to close, bound to the VM in the middle: unbound
 * before its file is released, or released while still bound.
 */
static void op_reopen(struct worker *w)
{
	int fd, i;
	uint8_t *mem = c_create(&fd);
	bool release_bound = rnd(w, 2);

	c_bind(fd, mem);
	c_convert(w, fd);
	for (i = 0; i < C_PAGES; i++)
		TEST_ASSERT(gmem_pattern_ok(mem + i * PAGE, PAGE,
					    phase_tag + C_FIRST + i),
			    "seed %u: page %d of C lost its data", seed, i);
	if (!release_bound)
		c_unbind();
	munmap(mem, C_SIZE);
	close(fd);
	if (release_bound)
		c_unbind();
	STAT_ADD(reopens, 1);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	int n;

	for (n = 0; n < MAX_OPS && !sh->stop; n++)
		w->op(w);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* vCPUs                                                              */

struct vcpu_thread {
	pthread_t thread;
	struct kvm_vcpu *vcpu;
	uint64_t rounds;	/* in this phase */
	int streak;		/* memory-fault exits on M since the last round */
	int max_streak;
};

static bool in_c(uint64_t gpa)
{
	return gpa >= C_GPA && gpa < C_GPA + C_SIZE;
}

/* If a C is bound, wait (a bounded while) until it is unbound. */
static void c_wait_unbound(void)
{
	uint64_t gen = sh->c_gen;
	int ms;

	if (!(gen % 2))
		return;
	for (ms = 0; sh->c_gen == gen && ms < C_WAIT_MS; ms++)
		usleep(1000);
	TEST_ASSERT(sh->c_gen != gen,
		    "seed %u: a memory-fault exit on C, which stayed bound %d ms more",
		    seed, C_WAIT_MS);
}

/*
 * KVM_RUN failed.  The one failure expected is a memory-fault exit: on
 * M, when a conversion races with the fault, so enter again, but not
 * forever; on C, when its file is released while bound (or a conversion
 * races), so wait until it is unbound.
 */
static void vcpu_memory_fault(struct vcpu_thread *t)
{
	struct kvm_run *run = t->vcpu->run;
	uint64_t gpa = run->memory_fault.gpa;

	TEST_ASSERT(errno == EFAULT && run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
		    ((gpa >= GMEM_DATA_GPA && gpa < GMEM_DATA_GPA + FILE_SIZE) ||
		     in_c(gpa)),
		    "KVM_RUN: %s, exit %u", strerror(errno), run->exit_reason);
	if (in_c(gpa)) {
		c_wait_unbound();
		STAT_ADD(c_faults, 1);
		return;
	}
	t->max_streak = max(t->max_streak, ++t->streak);
	TEST_ASSERT(t->streak < MAX_FAULT_STREAK,
		    "seed %u: vCPU %u took %d memory-fault exits in a row, the last at %#lx",
		    seed, t->vcpu->id, t->streak, gpa);
	STAT_ADD(vcpu_retries, 1);
}

/* The guest read C while it was unbound: the read returns zeros. */
static void vcpu_c_mmio(struct kvm_run *run)
{
	TEST_ASSERT(in_c(run->mmio.phys_addr) && !run->mmio.is_write,
		    "MMIO %s at %#llx", run->mmio.is_write ? "write" : "read",
		    run->mmio.phys_addr);
	memset(run->mmio.data, 0, sizeof(run->mmio.data));
	STAT_ADD(c_mmio, 1);
}

/* One round of guest_code()'s loop, to its GUEST_SYNC. */
static void vcpu_run_round(struct vcpu_thread *t)
{
	struct kvm_vcpu *vcpu = t->vcpu;
	struct ucall uc;

	for (;;) {
		if (_vcpu_run(vcpu))
			vcpu_memory_fault(t);
		else if (vcpu->run->exit_reason == KVM_EXIT_MMIO)
			vcpu_c_mmio(vcpu->run);
		else
			break;
	}
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	if (get_ucall(vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	__atomic_add_fetch(&t->rounds, 1, __ATOMIC_RELAXED);
	t->streak = 0;
	STAT_ADD(vcpu_rounds, 1);
}

/*
 * Whole rounds only: within one, the guest may hold this phase's tag in a
 * register, and would check the next phase's data against it.
 */
static void *vcpu_run_phase(void *arg)
{
	do {
		vcpu_run_round(arg);
	} while (!sh->stop);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Phases                                                             */

/* The same workers in each process: they share nothing but the file. */
static void start_workers(struct worker *ws, int nr, void (*const *ops)(struct worker *),
			  uint32_t salt)
{
	int i;

	for (i = 0; i < nr; i++) {
		ws[i].op = ops[i];
		ws[i].rng = new_guest_random_state(seed ^ salt ^ (i * 7919));
		ws[i].fd = g.fd;
		pthread_create(&ws[i].thread, NULL, worker_run, &ws[i]);
	}
}

static void join_workers(struct worker *ws, int nr)
{
	int i;

	for (i = 0; i < nr; i++)
		pthread_join(ws[i].thread, NULL);
}

static void child_phase(uint32_t salt)
{
	static void (*const ops[])(struct worker *) = {
		op_convert, op_probe, op_splice,
	};
	struct worker ws[ARRAY_SIZE(ops)];

	/*
	 * A failed assertion ends the parent, which then never sets stop:
	 * the child goes with it rather than run, and hold the test's
	 * output open, for ever.
	 */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	start_workers(ws, ARRAY_SIZE(ops), ops, salt ^ 0xc417d);
	join_workers(ws, ARRAY_SIZE(ops));
	close(g.fd);
	_exit(0);
}

static uint64_t checksum_a(void)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	size_t i;

	for (i = 0; i < A_PAGES * PAGE; i++)
		h = (h ^ g.mem[i]) * 0x100000001b3ULL;
	return h;
}

/* Everything shared again, nothing in flight: every page is known. */
static void make_all_shared(void)
{
	struct conversion c = { .first = 0, .end = NR_PAGES, .flags = MODE_KEEP };
	int r, tries = 0;

	while ((r = gmem_set_attrs(g.fd, 0, FILE_SIZE, SHARED, MODE_KEEP,
				   NULL)) == -EAGAIN && ++tries < 100)
		usleep(1000);
	TEST_ASSERT(!r, "final conversion to shared: %s", strerror(-r));
	conversion_begin(&c);
	conversion_end(&c, true);
}

static void verify_a(uint64_t want, int phase)
{
	int i;

	if (checksum_a() == want)
		return;
	for (i = 0; i < A_PAGES; i++)
		TEST_ASSERT(gmem_pattern_ok(page_ptr(i), PAGE, phase_tag + i),
			    "seed %u phase %d: a conversion lost page %d's data",
			    seed, phase, i);
	TEST_FAIL("seed %u phase %d: checksum of A changed", seed, phase);
}

static void verify_b(int phase)
{
	int i, bad;

	for (i = A_PAGES; i < NR_PAGES; i++) {
		bad = first_foreign_word(page_ptr(i), i);
		TEST_ASSERT(bad < 0,
			    "seed %u phase %d: page %d word %d is %#x, neither its pattern's %#x nor zero",
			    seed, phase, i, bad, ((uint32_t *)page_ptr(i))[bad],
			    pattern_word(i, bad));
	}
}

static void verify_file(uint64_t sum_a, int phase)
{
	make_all_shared();
	verify_a(sum_a, phase);
	verify_b(phase);
}

/* Every page of M gets its pattern; returns A's checksum. */
static uint64_t write_file(int phase)
{
	int i;

	phase_tag = seed + phase * 0x10000;
	sync_global_to_guest(g.vm, phase_tag);
	for (i = 0; i < NR_PAGES; i++)
		gmem_pattern(page_ptr(i), PAGE, phase_tag + i);
	return checksum_a();
}

/* Field @offset of @s. */
static uint64_t stat_at(const struct stats *s, size_t offset)
{
	return *(const uint64_t *)((const char *)s + offset);
}

/*
 * What the phase that began with counters @before has not yet done
 * enough of, said in @buf; NULL once it has done its minimum of all.
 */
static const char *minimum_missed(const struct stats *before,
				  const struct vcpu_thread *vcpus,
				  char *buf, size_t len)
{
	const struct minimum *m;
	uint64_t done;
	int i;

	for (m = minimums; m < minimums + ARRAY_SIZE(minimums); m++) {
		done = stat_at(&sh->stats, m->offset) - stat_at(before, m->offset);
		if (done < m->least) {
			snprintf(buf, len, "%lu %s, fewer than %lu", done,
				 m->what, m->least);
			return buf;
		}
	}
	for (i = 0; i < NR_VCPUS; i++) {
		done = __atomic_load_n(&vcpus[i].rounds, __ATOMIC_RELAXED);
		if (done < MIN_VCPU_ROUNDS) {
			snprintf(buf, len, "vCPU %d ran %lu rounds, fewer than %d",
				 i, done, MIN_VCPU_ROUNDS);
			return buf;
		}
	}
	return NULL;
}

/*
 * PHASE_SECONDS, then as long as the phase has not done its minimum of
 * everything: on a slow machine it takes longer, never less.
 */
static void wait_phase(const struct stats *before,
		       const struct vcpu_thread *vcpus)
{
	time_t end = time(NULL) + PHASE_MAX_SECONDS;
	char missed[128];

	sleep(PHASE_SECONDS);
	while (minimum_missed(before, vcpus, missed, sizeof(missed)) &&
	       time(NULL) < end)
		usleep(10000);
}

static void print_phase(int phase, time_t seconds, const struct stats *before,
			const struct vcpu_thread *vcpus)
{
	const struct minimum *m;
	int i;

	printf("phase %d, %ld s:", phase, seconds);
	for (m = minimums; m < minimums + ARRAY_SIZE(minimums); m++)
		printf(" %lu %s,", stat_at(&sh->stats, m->offset) -
		       stat_at(before, m->offset), m->what);
	for (i = 0; i < NR_VCPUS; i++)
		printf(" vCPU %d: %lu rounds (%d memory-fault exits in a row at most)%s",
		       i, vcpus[i].rounds, vcpus[i].max_streak,
		       i < NR_VCPUS - 1 ? "," : "\n");
}

static void run_phase(int phase)
{
	static void (*ops[])(struct worker *) = {
		op_convert, op_convert, op_probe, op_probe, op_splice,
		op_punch, op_reopen, op_gup_pin,
	};
	int nr = gup_fd >= 0 ? ARRAY_SIZE(ops) : ARRAY_SIZE(ops) - 1;
	struct vcpu_thread vcpus[NR_VCPUS] = {};
	struct worker ws[ARRAY_SIZE(ops)];
	uint64_t sum = write_file(phase);
	struct stats before = sh->stats;
	time_t start = time(NULL);
	char missed[128];
	int i, status;
	pid_t child;

	sh->stop = false;
	child = fork();
	TEST_ASSERT(child >= 0, "fork");
	if (!child)
		child_phase(phase);

	start_workers(ws, nr, ops, phase);
	for (i = 0; i < NR_VCPUS; i++) {
		vcpus[i].vcpu = g.vcpus[i];
		pthread_create(&vcpus[i].thread, NULL, vcpu_run_phase, &vcpus[i]);
	}

	wait_phase(&before, vcpus);
	sh->stop = true;
	join_workers(ws, nr);
	for (i = 0; i < NR_VCPUS; i++)
		pthread_join(vcpus[i].thread, NULL);
	TEST_ASSERT(waitpid(child, &status, 0) == child, "waitpid");
	TEST_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
		    "seed %u phase %d: the child process failed", seed, phase);

	verify_file(sum, phase);
	if (verbose)
		print_phase(phase, time(NULL) - start, &before, vcpus);
	TEST_ASSERT(!minimum_missed(&before, vcpus, missed, sizeof(missed)),
		    "seed %u phase %d: %s in %d s", seed, phase, missed,
		    PHASE_MAX_SECONDS);
}

/* Close the guest_memfd and bind a new one in its place. */
static void recreate_memfd(void)
{
	struct userspace_mem_region *region;
	void *mem;

	vm_mem_region_delete(g.vm, GMEM_DATA_SLOT);
	close(g.fd);
	g.fd = vm_create_guest_memfd(g.vm, FILE_SIZE, GUEST_MEMFD_FLAG_MMAP |
				     GUEST_MEMFD_FLAG_INIT_SHARED);
	vm_mem_add(g.vm, VM_MEM_SRC_ANONYMOUS, GMEM_DATA_GPA, GMEM_DATA_SLOT,
		   NR_PAGES, KVM_MEM_GUEST_MEMFD, g.fd, 0);
	region = memslot2region(g.vm, GMEM_DATA_SLOT);
	mem = mmap(region->host_mem, FILE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_FIXED, g.fd, 0);
	TEST_ASSERT(mem == region->host_mem, "mmap(guest_memfd)");
	g.mem = mem;
}

static void init_shared_state(void)
{
	pthread_mutexattr_t attr;
	int i;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(sh != MAP_FAILED, "mmap");
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	for (i = 0; i < NR_PAGES; i++) {
		pthread_mutex_init(&sh->pages[i].lock, &attr);
		sh->pages[i].known = K_SHARED;
	}
}

static void print_stats(int phases)
{
	struct stats *s = &sh->stats;

	printf("%d phases: %lu conversions, %lu EAGAIN retried, %lu gave up, "
	       "%lu probes (%lu of known-private pages, %lu of known-shared), "
	       "%lu pins (%lu read back), %lu punches, %lu vCPU rounds "
	       "(%lu memory-fault exits), %lu guest_memfds re-created "
	       "(%lu MMIO exits while unbound, %lu memory-fault exits)\n",
	       phases, s->converted, s->eagain, s->gave_up,
	       s->probes, s->checked_private, s->checked_shared, s->pins,
	       s->pin_reads, s->punches, s->vcpu_rounds, s->vcpu_retries,
	       s->reopens, s->c_mmio, s->c_faults);
}

int main(int argc, char *argv[])
{
	struct gmem_run_opts o = {
		.seed = time(NULL), .count = 1000, .seconds = 10,
	};
	time_t deadline;
	int phase, i;

	gmem_parse_run_opts(argc, argv, &o);
	seed = o.seed;
	verbose = o.verbose;
	TEST_REQUIRE(!gmem_vm_attributes_mode());
	printf("seed %u, %ld s, at most %ld phases of %d s\n", seed, o.seconds,
	       o.count, PHASE_SECONDS);

	init_shared_state();
	gmem_vm_create(&g, NR_VCPUS, guest_code, FILE_SIZE,
		       GUEST_MEMFD_FLAG_INIT_SHARED);
	virt_map(g.vm, C_GPA, C_GPA, C_PAGES);
	for (i = 0; i < NR_VCPUS; i++)
		vcpu_args_set(g.vcpus[i], 1, i);
	gup_fd = open("/sys/kernel/debug/gup_test", O_RDWR);
	if (gup_fd < 0)
		printf("no gup_test: no long-term pins\n");

	deadline = time(NULL) + o.seconds;
	for (phase = 0; phase < o.count && time(NULL) < deadline; phase++) {
		run_phase(phase);
		recreate_memfd();
	}
	print_stats(phase);
	if (gup_fd >= 0)
		close(gup_fd);
	gmem_vm_free(&g);
	return 0;
}
