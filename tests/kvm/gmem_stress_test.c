// SPDX-License-Identifier: GPL-2.0
/*
 * Bounded concurrent stress of one guest_memfd.  In each phase, threads of
 * this process and of a forked child convert overlapping ranges both ways,
 * probe and write pages through mmap(), pin pages (vmsplice, gup_test
 * long-term pins), punch holes and re-allocate through dup()ed fds, while
 * vCPUs read and write the same memory.  The first half of the file (A)
 * is only ever converted with PRESERVE or flags = 0, which both keep every
 * byte, and never written, so its contents are known at every instant; the
 * second half (B) takes every content mode, hole punches and writes.
 * Checked throughout and after every phase:
 *
 *  - A's checksum is byte-exact when the phase ends;
 *  - every read of A, by the host, a pipe or a vCPU, sees A's data;
 *  - no host access succeeds on a page that was private for the whole
 *    access, and none fails on a page that was shared for all of it.
 *
 * Between phases the guest_memfd is closed and re-created.
 * Needs kvm.vm_memory_attributes=0.
 *
 *   gmem_stress_test [-t SECONDS] [-i PHASES] [-s SEED] [-v]
 */
#include <linux/falloc.h>
#include <pthread.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <mm/gup_test.h>

#include "gmem.h"

#define NR_PAGES	64
#define A_PAGES		(NR_PAGES / 2)
#define PAGE		4096ULL
#define FILE_SIZE	(NR_PAGES * PAGE)
#define NR_VCPUS	2
#define PHASE_SECONDS	2
#define MAX_OPS		100000		/* per worker and phase */

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
};

static struct shared {
	struct page_state pages[NR_PAGES];
	volatile bool stop;
	struct stats stats;
} *sh;

/* A's data: page p holds gmem_pattern(tag + p) in this phase. */
static uint32_t phase_tag;
static uint32_t seed;
static bool verbose;
static int gup_fd = -1;
static struct gmem_vm g;

#define STAT_ADD(field, n)	__atomic_add_fetch(&sh->stats.field, n, __ATOMIC_RELAXED)

/* Word @word of A's page @page in this phase; the guest computes it too. */
static uint32_t a_word(int page, uint32_t word)
{
	return (phase_tag + page) ^ (uint32_t)(word * 2654435761u);
}

/* ------------------------------------------------------------------ */
/* The guest: reads A (shared or private, it must see A's data), writes B */

static void guest_code(int idx)
{
	struct guest_random_state r = new_guest_random_state(phase_tag + idx);
	uint32_t *mem = (uint32_t *)GMEM_DATA_GPA;
	const uint32_t words = PAGE / 4;
	int i;

	for (;;) {
		for (i = 0; i < 64; i++) {
			uint32_t p = guest_random_u32(&r) % A_PAGES;
			uint32_t w = guest_random_u32(&r) % words;
			uint32_t b = A_PAGES + guest_random_u32(&r) % (NR_PAGES - A_PAGES);

			GUEST_ASSERT_EQ(mem[p * words + w], a_word(p, w));
			mem[b * words + guest_random_u32(&r) % words] = i;
		}
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
	c.flags = rnd(w, 2) ? MODE_PRESERVE : MODE_NONE;
	if (in_b && !c.private && rnd(w, 2))
		c.flags = MODE_ZERO;
	convert(w->fd, &c);
}

/*
 * One host access to the low byte of word @word of page @i, checked
 * against what is known of the page.
 */
static void probe(int i, uint32_t word, bool write, uint8_t v)
{
	struct page_state *ps = &sh->pages[i];
	uint8_t *p = page_ptr(i) + word * 4;
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

	if (ok && !write && i < A_PAGES)
		TEST_ASSERT(v == (uint8_t)a_word(i, word),
			    "page %d word %u: %#x, want %#x", i, word, v,
			    (uint8_t)a_word(i, word));
	STAT_ADD(probes, 1);
}

static void op_probe(struct worker *w)
{
	int i = rnd(w, NR_PAGES);

	probe(i, rnd(w, PAGE / 4), i >= A_PAGES && rnd(w, 2), rnd(w, ~0u));
}

/* vmsplice a page into a pipe, hold it a moment, read it back. */
static void op_splice(struct worker *w)
{
	int i = rnd(w, NR_PAGES), pipefd[2];
	struct iovec iov = { .iov_base = page_ptr(i), .iov_len = PAGE };
	uint8_t buf[PAGE];

	TEST_ASSERT(!pipe(pipefd), "pipe");
	if (vmsplice(pipefd[1], &iov, 1, 0) == PAGE) {
		STAT_ADD(pins, 1);
		usleep(rnd(w, 500));
		TEST_ASSERT(read(pipefd[0], buf, PAGE) == PAGE, "read pipe");
		TEST_ASSERT(i >= A_PAGES || gmem_pattern_ok(buf, PAGE, phase_tag + i),
			    "page %d read through a pipe lost its data", i);
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
	int first = A_PAGES + rnd(w, NR_PAGES - A_PAGES);
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

static void *vcpu_run_phase(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct ucall uc;

	while (!sh->stop) {
		/*
		 * A conversion racing with a fault can make KVM exit with a
		 * memory fault on our memslot: enter again.
		 */
		if (_vcpu_run(vcpu)) {
			TEST_ASSERT(errno == EFAULT &&
				    vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
				    vcpu->run->memory_fault.gpa >= GMEM_DATA_GPA &&
				    vcpu->run->memory_fault.gpa < GMEM_DATA_GPA + FILE_SIZE,
				    "KVM_RUN: %s, exit %u", strerror(errno),
				    vcpu->run->exit_reason);
			STAT_ADD(vcpu_retries, 1);
			continue;
		}
		TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
		if (get_ucall(vcpu, &uc) == UCALL_ABORT)
			REPORT_GUEST_ASSERT(uc);
		STAT_ADD(vcpu_rounds, 1);
	}
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
	struct conversion c = { .first = 0, .end = NR_PAGES, .flags = MODE_PRESERVE };
	int r, tries = 0;

	while ((r = gmem_set_attrs(g.fd, 0, FILE_SIZE, SHARED, MODE_PRESERVE,
				   NULL)) == -EAGAIN && ++tries < 100)
		usleep(1000);
	TEST_ASSERT(!r, "final conversion to shared: %s", strerror(-r));
	conversion_begin(&c);
	conversion_end(&c, true);
}

static void verify_a(uint64_t want, int phase)
{
	int i;

	make_all_shared();
	if (checksum_a() == want)
		return;
	for (i = 0; i < A_PAGES; i++)
		TEST_ASSERT(gmem_pattern_ok(page_ptr(i), PAGE, phase_tag + i),
			    "seed %u phase %d: a conversion lost page %d's data",
			    seed, phase, i);
	TEST_FAIL("seed %u phase %d: checksum of A changed", seed, phase);
}

static uint64_t write_a(int phase)
{
	int i;

	phase_tag = seed + phase * 0x10000;
	sync_global_to_guest(g.vm, phase_tag);
	for (i = 0; i < A_PAGES; i++)
		gmem_pattern(page_ptr(i), PAGE, phase_tag + i);
	return checksum_a();
}

static void run_phase(int phase)
{
	static void (*ops[])(struct worker *) = {
		op_convert, op_convert, op_probe, op_probe, op_splice,
		op_punch, op_gup_pin,
	};
	int nr = gup_fd >= 0 ? ARRAY_SIZE(ops) : ARRAY_SIZE(ops) - 1;
	struct worker ws[ARRAY_SIZE(ops)];
	pthread_t vcpus[NR_VCPUS];
	uint64_t sum = write_a(phase);
	int i, status;
	pid_t child;

	sh->stop = false;
	child = fork();
	TEST_ASSERT(child >= 0, "fork");
	if (!child)
		child_phase(phase);

	start_workers(ws, nr, ops, phase);
	for (i = 0; i < NR_VCPUS; i++)
		pthread_create(&vcpus[i], NULL, vcpu_run_phase, g.vcpus[i]);

	sleep(PHASE_SECONDS);
	sh->stop = true;
	join_workers(ws, nr);
	for (i = 0; i < NR_VCPUS; i++)
		pthread_join(vcpus[i], NULL);
	TEST_ASSERT(waitpid(child, &status, 0) == child, "waitpid");
	TEST_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
		    "seed %u phase %d: the child process failed", seed, phase);

	verify_a(sum, phase);
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
	       "(%lu memory-fault exits)\n", phases, s->converted, s->eagain,
	       s->gave_up,
	       s->probes, s->checked_private, s->checked_shared, s->pins,
	       s->pin_reads, s->punches, s->vcpu_rounds, s->vcpu_retries);
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
	for (i = 0; i < NR_VCPUS; i++)
		vcpu_args_set(g.vcpus[i], 1, i);
	gup_fd = open("/sys/kernel/debug/gup_test", O_RDWR);
	if (gup_fd < 0)
		printf("no gup_test: no long-term pins\n");

	deadline = time(NULL) + o.seconds;
	for (phase = 0; phase < o.count && time(NULL) < deadline; phase++) {
		run_phase(phase);
		if (verbose)
			print_stats(phase + 1);
		recreate_memfd();
	}
	print_stats(phase);
	if (gup_fd >= 0)
		close(gup_fd);
	gmem_vm_free(&g);
	return 0;
}
