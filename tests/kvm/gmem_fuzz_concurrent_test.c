// SPDX-License-Identifier: GPL-2.0
/*
 * Model-checked concurrency on one guest_memfd: a linearizability check of
 * what threads, processes and a vCPU see while they use the file at once.
 *
 * Each round creates a guest_memfd of NR_PAGES pages (all shared or all
 * private; of the shared ones some left unallocated, some allocated, some
 * written, and in some rounds one poisoned), binds it to a memslot, and
 * lets actors loose on it together: threads of this process and forked
 * processes, each with its own fd and mapping, convert ranges, read and
 * write pages through their mapping, take and drop references
 * (vmsplice()), punch holes, fallocate(), munmap() and mmap() again, close
 * their fd and take a new one; a vCPU reads and writes the pages.  In some
 * rounds nobody maps the file at first.  Every operation is recorded with
 * the time it was invoked and the time it returned.  After the round the
 * main thread looks at everything (fdinfo, every page through the vCPU),
 * then closes the last fd while a conversion runs on it, and the vCPU
 * touches the file once more.
 *
 * The history must be linearizable: some serial order of its operations,
 * respecting real time (an operation that returned before another began
 * comes first), in which the model of gmem_model.h gives every operation
 * exactly the outcome it had: errno, error_offset, what a read returned,
 * SIGBUS and its code.  The search is Wing & Gong's, with the states seen
 * at each set of linearized operations remembered.  A conversion to
 * private may fail with EAGAIN at a page that the model does not know to
 * be referenced only if some operation that overlapped it in time could
 * hold a passing reference to that page (a fault, a munmap()).
 *
 * On failure the test prints the seed and round, the history as it
 * happened, then the shortest history that reproduces the failure: the
 * round is replayed (the same file, each op drawn from a stream of its
 * own) without one random op after another, keeping out those without
 * which a replay still fails.  The checker's own tests feed it histories
 * with impossible outcomes, which it must reject, a real round's history
 * with one outcome changed, and rounds whose host reads are garbled, which
 * replays must shrink.
 *
 * Needs in-place conversion switched on; poisons pages as root where
 * CONFIG_MEMORY_FAILURE allows.
 *
 *   gmem_fuzz_concurrent_test [-s SEED] [-i ROUNDS] [-d SECONDS] [-v]
 *                             [kselftest harness options]
 */
#include <linux/falloc.h>
#include <pthread.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "gmem.h"
#include "kselftest_harness.h"

#define NR_PAGES	8
#define PAGE		4096ULL
#define FILE_SIZE	(NR_PAGES * PAGE)
#define WORDS		(PAGE / 8)

#define NR_THREADS	2	/* host actors in this process */
#define NR_CHILDREN	2	/* host actors in processes of their own */
#define NR_HOST		(NR_THREADS + NR_CHILDREN)
#define VCPU_ACTOR	NR_HOST
#define NR_ACTORS	(NR_HOST + 1)
#define MAIN_ACTOR	NR_ACTORS	/* the look and the last close */
#define RACE_ACTOR	(NR_ACTORS + 1)	/* the conversion the close races */
#define OPS_PER_ACTOR	8		/* the last two for clean-up */
#define MAX_OPS		64		/* a bit each in the checker */

/* A vCPU access retries a memory-fault exit (a conversion raced it). */
#define VCPU_RETRIES	50
/* Search steps one check may take before it gives up, failing. */
#define MAX_SEARCH	2000000

#define GMEM_MODEL_PAGES	NR_PAGES
#define GMEM_MODEL_PINS		NR_ACTORS
#include "gmem_model.h"

enum kind {
	OP_CONVERT, OP_READ, OP_WRITE, OP_PIN, OP_UNPIN, OP_PUNCH,
	OP_ALLOCATE, OP_MMAP, OP_MUNMAP, OP_REOPEN, OP_VCPU_READ,
	OP_VCPU_WRITE, OP_LOOK, OP_CLOSE,
};

static const char *const kind_names[] = {
	[OP_CONVERT] = "convert", [OP_READ] = "read", [OP_WRITE] = "write",
	[OP_PIN] = "vmsplice", [OP_UNPIN] = "unpin", [OP_PUNCH] = "punch",
	[OP_ALLOCATE] = "fallocate", [OP_MMAP] = "mmap",
	[OP_MUNMAP] = "munmap", [OP_REOPEN] = "close+dup",
	[OP_VCPU_READ] = "vcpu read", [OP_VCPU_WRITE] = "vcpu write",
	[OP_LOOK] = "look", [OP_CLOSE] = "close last fd",
};

/*
 * One operation and its outcome.  Pages are word 0 of the page: a write
 * stores a value there that no other write stores, a read returns it, and
 * every other word of a page is always zero.
 */
struct op {
	int actor;
	enum kind kind;
	int page, nr;			/* a page, or pages [page, page + nr) */
	uint64_t attributes, flags;	/* a conversion's; size nr pages */
	bool odd_size;			/* a conversion of nr pages + 1 byte */
	uint64_t value;			/* written or read (word 0) */
	uint64_t other;			/* read: another word, must be 0 */
	int err;			/* errno, 0 */
	int sigbus;			/* si_code of a SIGBUS, 0 */
	uint64_t error_offset;
	uint64_t inv, resp;		/* CLOCK_MONOTONIC ns */
	uint64_t transient;		/* pages that overlapping ops touch */
};

/* What the main thread saw after the actors were done. */
struct look {
	char fdinfo[4096];
	int err[NR_PAGES];
	uint64_t value[NR_PAGES];
};

/* Written by the actors (some in other processes), read after the round. */
struct shared {
	struct op ops[NR_ACTORS][OPS_PER_ACTOR];
	int nr_ops[NR_ACTORS];
	bool skip[NR_ACTORS][OPS_PER_ACTOR];	/* left out of a replay */
	pthread_barrier_t start;
};

struct actor {
	int id;
	pthread_t thread;
	struct guest_random_state rng;
	int fd;
	uint8_t *mem;			/* its mapping, or NULL */
	int pipefd[2];			/* its reference, when pinned */
	bool pinned;
	int pin_page;
	uint32_t nr_writes;
};

static uint32_t seed;
static long nr_rounds = 40, run_seconds;
static bool verbose;
static bool can_poison;

static struct shared *sh;
static struct look look;
static struct kvm_vm *vm;
static struct kvm_vcpu *vcpu;
static struct kvm_regs vcpu_entry_regs;
static void *slot_hva;
static int keep_fd;		/* the round's file, held by the main thread */
static long round_nr;
/*
 * The replay test's kernel bug: host reads of data are recorded with a
 * value that no write stored.
 */
static bool garble_reads;
static bool round_unmapped;	/* nobody mapped the file at first */

/* The vCPU's command: guest_code() reads it at each round trip. */
static uint64_t guest_page, guest_value;
static bool guest_write;

static uint32_t rnd(struct guest_random_state *rng, uint32_t n)
{
	return guest_random_u32(rng) % n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* The checker                                                        */

/* Whether the kernel writes error_offset on failure @err. */
static bool reports_offset(int err)
{
	return err == EAGAIN || err == EOPNOTSUPP || err == EHWPOISON;
}

static void op_args(const struct op *o, struct kvm_memory_attributes2 *a)
{
	memset(a, 0, sizeof(*a));
	a->offset = o->page * PAGE;
	a->size = o->nr * PAGE + o->odd_size;
	a->attributes = o->attributes;
	a->flags = o->flags;
}

static bool step_convert(const struct op *o, struct model *m)
{
	struct kvm_memory_attributes2 a;
	uint64_t eo = 0;
	int want;

	if (m->released)
		return o->err == EBADF;
	op_args(o, &a);
	want = model_expected(m, &a, &eo);
	if (o->err == want &&
	    o->error_offset == (reports_offset(want) ? eo : 0)) {
		if (!want)
			model_convert(m, &a);
		m->eagain += want == EAGAIN;
		return true;
	}
	if (o->err != EAGAIN || o->error_offset % PAGE ||
	    !model_busy_allowed(m, &a, o->error_offset / PAGE, o->transient))
		return false;
	m->eagain++;
	return true;
}

/* The SIGBUS a host access to @page must raise, or 0. */
static int expected_sigbus(const struct model *m, int page)
{
	if (m->poisoned[page])
		return BUS_MCEERR_AR;
	return m->private[page] ? BUS_ADRERR : 0;
}

/*
 * Whether a host access to @page may end with SIGBUS @code (0: none).  A
 * page both poisoned and private may raise either: 7.3 converts poisoned
 * pages, and its fault handler looks at the attributes first.
 */
static bool sigbus_ok(const struct model *m, int page, int code)
{
	if (m->poisoned[page] && m->private[page])
		return code == BUS_MCEERR_AR || code == BUS_ADRERR;
	return code == expected_sigbus(m, page);
}

/* A vCPU access: KVM_RUN's errno, and the value read. */
static bool vcpu_outcome_ok(const struct model *m, int page, int err,
			    uint64_t value)
{
	if (m->released)
		return err == EFAULT;
	if (m->poisoned[page])
		return err == EHWPOISON;
	return !err && value == m->content[page];
}

static bool step_look(const struct model *m)
{
	char want[sizeof(look.fdinfo)];
	int i;

	model_fdinfo(m, want, sizeof(want));
	if (strcmp(want, look.fdinfo))
		return false;
	for (i = 0; i < NR_PAGES; i++)
		if (!vcpu_outcome_ok(m, i, look.err[i], look.value[i]))
			return false;
	return true;
}

/* Whether @o can have its outcome in state @m; if so, @m goes past it. */
static bool step(const struct op *o, struct model *m)
{
	switch (o->kind) {
	case OP_CONVERT:
		return step_convert(o, m);
	case OP_READ:
		return sigbus_ok(m, o->page, o->sigbus) &&
		       (o->sigbus || (o->value == m->content[o->page] && !o->other));
	case OP_WRITE:
		if (!sigbus_ok(m, o->page, o->sigbus))
			return false;
		if (!o->sigbus)
			m->content[o->page] = o->value;
		return true;
	case OP_PIN:
		if (m->private[o->page])
			return o->err == EFAULT;
		if (m->poisoned[o->page])
			return o->err == EFAULT || o->err == EHWPOISON;
		if (o->err)
			return false;
		m->pins[o->actor] = (struct model_pin){
			.used = true, .attached = true, .page = o->page,
		};
		return true;
	case OP_UNPIN:
		m->pins[o->actor].used = false;
		return !o->err;
	case OP_PUNCH:
		model_punch(m, o->page, o->page + o->nr);
		return !o->err;
	case OP_VCPU_READ:
		return vcpu_outcome_ok(m, o->page, o->err, o->value);
	case OP_VCPU_WRITE:
		if (!vcpu_outcome_ok(m, o->page, o->err, m->content[o->page]))
			return false;
		if (!o->err)
			m->content[o->page] = o->value;
		return true;
	case OP_LOOK:
		return step_look(m);
	case OP_CLOSE:
		m->released = true;
		return !o->err;
	default:
		/*
		 * mmap, munmap, close+dup change nothing the model has; nor
		 * does fallocate(), which leaves a poisoned page as it is.
		 */
		return !o->err;
	}
}

/* States already known not to lead anywhere, per set of linearized ops. */
#define MEMO_BITS	16
#define MEMO_SIZE	(1 << MEMO_BITS)

struct memo_entry {
	uint32_t gen;		/* of the check that stored it */
	uint64_t done;
	struct model m;
};

struct checker {
	const struct op *ops;
	int nr;
	uint64_t all;
	long steps;
	int depth;		/* the most ops linearized in one order */
	bool gave_up;
};

static struct memo_entry *memo;
static uint32_t memo_gen;
static long memo_used;

static uint64_t memo_hash(uint64_t done, const struct model *m)
{
	const uint8_t *b = (const uint8_t *)m;
	uint64_t h = done * 0x9e3779b97f4a7c15ULL;
	size_t i;

	for (i = 0; i < sizeof(*m); i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

/* Whether (@done, @m) was seen; if not, remember it while there is room. */
static bool memo_seen(uint64_t done, const struct model *m)
{
	uint64_t i = memo_hash(done, m) & (MEMO_SIZE - 1);
	struct memo_entry *e;

	for (;; i = (i + 1) & (MEMO_SIZE - 1)) {
		e = &memo[i];
		if (e->gen != memo_gen)
			break;
		if (e->done == done && !memcmp(&e->m, m, sizeof(*m)))
			return true;
	}
	if (memo_used >= MEMO_SIZE * 3 / 4)
		return false;
	e->gen = memo_gen;
	e->done = done;
	memcpy(&e->m, m, sizeof(*m));
	memo_used++;
	return false;
}

/*
 * Whether the ops not in @done can all be linearized from state @m.  An
 * op may come next if it was invoked before every other pending op
 * returned.
 */
static bool search(struct checker *c, uint64_t done, const struct model *m,
		   int depth)
{
	uint64_t first_resp = UINT64_MAX;
	struct model next;
	int i;

	if (done == c->all)
		return true;
	c->depth = max(c->depth, depth);
	if (++c->steps > MAX_SEARCH) {
		c->gave_up = true;
		return false;
	}
	if (memo_seen(done, m))
		return false;
	for (i = 0; i < c->nr; i++)
		if (!(done >> i & 1))
			first_resp = min(first_resp, c->ops[i].resp);
	for (i = 0; i < c->nr && !c->gave_up; i++) {
		if (done >> i & 1 || c->ops[i].inv > first_resp)
			continue;
		memcpy(&next, m, sizeof(next));
		if (step(&c->ops[i], &next) &&
		    search(c, done | 1ULL << i, &next, depth + 1))
			return true;
	}
	return false;
}

/* Whether @nr ops from state @start have a serial order the model accepts. */
static bool linearizable(const struct op *ops, int nr,
			 const struct model *start, struct checker *c)
{
	TEST_ASSERT(nr <= MAX_OPS, "a history of %d ops", nr);
	if (!memo) {
		memo = calloc(MEMO_SIZE, sizeof(*memo));
		TEST_ASSERT(memo, "memo");
	}
	memo_gen++;
	memo_used = 0;
	*c = (struct checker){
		.ops = ops, .nr = nr,
		.all = nr == 64 ? ~0ULL : (1ULL << nr) - 1,
	};
	return search(c, 0, start, 0);
}

static void print_op(const struct op *o, uint64_t t0)
{
	char what[128], out[128];

	switch (o->kind) {
	case OP_CONVERT:
		snprintf(what, sizeof(what), "pages [%d, %d)%s to %s, flags %#lx",
			 o->page, o->page + o->nr, o->odd_size ? " + 1 byte" : "",
			 o->attributes ? "private" : "shared", o->flags);
		break;
	case OP_PUNCH: case OP_ALLOCATE:
		snprintf(what, sizeof(what), "pages [%d, %d)", o->page,
			 o->page + o->nr);
		break;
	case OP_WRITE: case OP_VCPU_WRITE:
		snprintf(what, sizeof(what), "page %d := %#lx", o->page, o->value);
		break;
	case OP_LOOK: case OP_CLOSE: case OP_MMAP: case OP_MUNMAP:
	case OP_REOPEN:
		what[0] = 0;
		break;
	default:
		snprintf(what, sizeof(what), "page %d", o->page);
	}
	if (o->sigbus)
		snprintf(out, sizeof(out), "SIGBUS code %d", o->sigbus);
	else if (o->err)
		snprintf(out, sizeof(out), "%s, error_offset %#lx",
			 strerror(o->err), o->error_offset);
	else if (o->kind == OP_READ || o->kind == OP_VCPU_READ)
		snprintf(out, sizeof(out), "%#lx (other word %#lx)", o->value,
			 o->other);
	else
		snprintf(out, sizeof(out), "ok");
	printf("#   actor %d [%8.1f, %8.1f] us: %s %s -> %s", o->actor,
	       (o->inv - t0) / 1e3, (o->resp - t0) / 1e3, kind_names[o->kind],
	       what, out);
	if (o->transient)
		printf(" (passing references possible, pages %#lx)", o->transient);
	printf("\n");
}

static void print_start(const struct model *m)
{
	int i;

	printf("#   start:");
	for (i = 0; i < NR_PAGES; i++)
		printf(" %d:%s%s=%#lx", i, m->private[i] ? "P" : "S",
		       m->poisoned[i] ? "!" : "", m->content[i]);
	printf("\n");
}

static void print_history(const struct op *ops, int nr, const struct model *m)
{
	uint64_t t0 = nr ? ops[0].inv : 0;
	int i;

	print_start(m);
	for (i = 0; i < nr; i++)
		t0 = min(t0, ops[i].inv);
	for (i = 0; i < nr; i++)
		print_op(&ops[i], t0);
}

/* Check a round's history; on failure say how far the search got. */
static bool check_history(struct op *ops, int nr, const struct model *start,
			  struct checker *c)
{
	if (linearizable(ops, nr, start, c))
		return true;
	printf("# seed %u round %ld: %s after %d of %d ops in the longest "
	       "serial order (%ld search steps)\n", seed, round_nr,
	       c->gave_up ? "the search gave up" : "no serial order",
	       c->depth, nr, c->steps);
	return false;
}

/* ------------------------------------------------------------------ */
/* The actors                                                         */

static __thread sigjmp_buf *sigbus_jmp;
static __thread int sigbus_code;
static __thread bool in_kvm_run;

/*
 * A host access to a private or poisoned page jumps back with its code.
 * KVM may tell a vCPU's thread of a poisoned page by SIGBUS as well as by
 * KVM_RUN's error: that one is ignored.
 */
static void sigbus_action(int sig, siginfo_t *si, void *ctx)
{
	if (si->si_code == BUS_MCEERR_AO || in_kvm_run)
		return;
	sigbus_code = si->si_code;
	if (sigbus_jmp)
		siglongjmp(*sigbus_jmp, 1);
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

/* Word 0 and word @other of @page, or write @o->value to word 0. */
static void host_access(struct op *o, uint8_t *page, int other, bool write)
{
	volatile uint64_t *w = (volatile uint64_t *)page;
	sigjmp_buf env;

	sigbus_jmp = &env;
	if (sigsetjmp(env, 1)) {
		sigbus_jmp = NULL;
		o->sigbus = sigbus_code;
		return;
	}
	if (write) {
		w[0] = o->value;
	} else {
		o->value = w[0];
		o->other = w[other];
		if (garble_reads && o->value)
			o->value ^= 1ULL << 62;
	}
	sigbus_jmp = NULL;
}

/* MADV_HWPOISON of the page at @p; a dirty page's mapper gets SIGBUS. */
static int poison(uint8_t *p)
{
	sigjmp_buf env;
	int r = 0;

	sigbus_jmp = &env;
	if (!sigsetjmp(env, 1))
		r = madvise(p, PAGE, MADV_HWPOISON) ? errno : 0;
	sigbus_jmp = NULL;
	return r;
}

static uint8_t *map_file(int fd)
{
	void *p = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap(guest_memfd): %s", strerror(errno));
	return p;
}

/* A value that no other write of the run stores. */
static uint64_t stamp(struct actor *a)
{
	return (uint64_t)(a->id + 1) << 56 | (uint64_t)round_nr << 24 |
	       ++a->nr_writes;
}

static void do_convert(struct actor *a, struct op *o)
{
	struct kvm_memory_attributes2 args;

	op_args(o, &args);
	o->inv = now_ns();
	o->err = ioctl(a->fd, KVM_SET_MEMORY_ATTRIBUTES2, &args) ? errno : 0;
	o->resp = now_ns();
	o->error_offset = args.error_offset;
}

static void do_pin(struct actor *a, struct op *o)
{
	struct iovec iov = { .iov_base = a->mem + o->page * PAGE,
			     .iov_len = PAGE };

	TEST_ASSERT(!pipe(a->pipefd), "pipe");
	o->inv = now_ns();
	o->err = vmsplice(a->pipefd[1], &iov, 1, 0) == PAGE ? 0 : errno;
	o->resp = now_ns();
	a->pinned = !o->err;
	a->pin_page = o->page;
	if (o->err) {
		close(a->pipefd[0]);
		close(a->pipefd[1]);
	}
}

static void do_unpin(struct actor *a, struct op *o)
{
	uint8_t buf[PAGE];

	o->page = a->pin_page;		/* for the record only */
	o->inv = now_ns();
	o->err = read(a->pipefd[0], buf, PAGE) == PAGE ? 0 : errno;
	close(a->pipefd[0]);
	close(a->pipefd[1]);
	o->resp = now_ns();
	a->pinned = false;
}

static void do_fallocate(struct actor *a, struct op *o, bool punch)
{
	int mode = FALLOC_FL_KEEP_SIZE | (punch ? FALLOC_FL_PUNCH_HOLE : 0);

	o->inv = now_ns();
	o->err = fallocate(a->fd, mode, o->page * PAGE, o->nr * PAGE) ? errno : 0;
	o->resp = now_ns();
}

static void do_map(struct actor *a, struct op *o, bool map)
{
	o->inv = now_ns();
	if (map)
		a->mem = map_file(a->fd);
	else
		TEST_ASSERT(!munmap(a->mem, FILE_SIZE), "munmap");
	o->resp = now_ns();
	if (!map)
		a->mem = NULL;
}

static void do_reopen(struct actor *a, struct op *o)
{
	o->inv = now_ns();
	close(a->fd);
	a->fd = dup(keep_fd);
	o->resp = now_ns();
	TEST_ASSERT(a->fd >= 0, "dup: %s", strerror(errno));
}

static void do_host_access(struct actor *a, struct op *o, bool write)
{
	int other = 1 + rnd(&a->rng, WORDS - 1);

	if (write)
		o->value = stamp(a);
	o->inv = now_ns();
	host_access(o, a->mem + o->page * PAGE, other, write);
	o->resp = now_ns();
}

/*
 * Mostly valid conversions of a few pages, both ways, every content mode
 * (ZERO to private is refused), now and then the whole file or a size
 * that is not page aligned.
 */
static void pick_conversion(struct guest_random_state *rng, struct op *o)
{
	static const uint64_t modes[] = { MODE_NONE, MODE_ZERO, MODE_PRESERVE };

	o->kind = OP_CONVERT;
	if (!rnd(rng, 8)) {
		o->page = 0;
		o->nr = NR_PAGES;
	} else {
		o->page = rnd(rng, NR_PAGES);
		o->nr = 1 + rnd(rng, min(3, NR_PAGES - o->page));
	}
	o->attributes = rnd(rng, 2) ? PRIVATE : SHARED;
	/* v8 has no content modes: its one valid request has flags = 0. */
	o->flags = GMEM_RFC_V5 ? modes[rnd(rng, 3)] : MODE_NONE;
	o->odd_size = !rnd(rng, 20);
}

static void pick_range(struct guest_random_state *rng, struct op *o)
{
	o->page = rnd(rng, NR_PAGES);
	o->nr = 1 + rnd(rng, NR_PAGES - o->page);
}

/*
 * What a host actor does next; without a mapping, it maps the file.  A
 * reference is mostly held for a few ops, so that conversions meet it.
 */
static void pick_host_op(struct actor *a, struct op *o)
{
	uint32_t r = rnd(&a->rng, 100);

	o->page = rnd(&a->rng, NR_PAGES);
	if (r < 30)
		pick_conversion(&a->rng, o);
	else if (r < 45)
		o->kind = OP_READ;
	else if (r < 57)
		o->kind = OP_WRITE;
	else if (r < 68)
		o->kind = !a->pinned ? OP_PIN :
			  rnd(&a->rng, 3) ? OP_READ : OP_UNPIN;
	else if (r < 75)
		o->kind = OP_PUNCH;
	else if (r < 81)
		o->kind = OP_ALLOCATE;
	else if (r < 92)
		o->kind = a->mem ? OP_MUNMAP : OP_MMAP;
	else
		o->kind = OP_REOPEN;
	if (o->kind == OP_PUNCH || o->kind == OP_ALLOCATE)
		pick_range(&a->rng, o);
	if (!a->mem && (o->kind == OP_READ || o->kind == OP_WRITE ||
			o->kind == OP_PIN))
		o->kind = OP_MMAP;
}

static void do_host_op(struct actor *a, struct op *o)
{
	switch (o->kind) {
	case OP_CONVERT:	do_convert(a, o); break;
	case OP_READ:		do_host_access(a, o, false); break;
	case OP_WRITE:		do_host_access(a, o, true); break;
	case OP_PIN:		do_pin(a, o); break;
	case OP_UNPIN:		do_unpin(a, o); break;
	case OP_PUNCH:		do_fallocate(a, o, true); break;
	case OP_ALLOCATE:	do_fallocate(a, o, false); break;
	case OP_MMAP:		do_map(a, o, true); break;
	case OP_MUNMAP:		do_map(a, o, false); break;
	case OP_REOPEN:		do_reopen(a, o); break;
	default:		TEST_FAIL("op %d", o->kind);
	}
}

/*
 * Ops take microseconds, and the actors wake from the barrier
 * milliseconds apart: spread each one's ops out so that they overlap.
 */
static void pause_a_moment(struct actor *a)
{
	if (rnd(&a->rng, 2))
		usleep(rnd(&a->rng, 1000));
}

/*
 * Each op draws from a stream of its own, so that a replay of the round
 * without some ops does the others exactly as before; false if this one
 * is left out.
 */
static bool plan_op(struct actor *a, int i)
{
	a->rng = new_guest_random_state(seed * 2654435761u ^
					(uint32_t)round_nr * 40503u ^
					a->id * 9973u ^ i * 7919u);
	return !sh->skip[a->id][i];
}

static struct op *next_op(struct actor *a)
{
	struct op *o = &sh->ops[a->id][sh->nr_ops[a->id]++];

	memset(o, 0, sizeof(*o));
	o->actor = a->id;
	return o;
}

/*
 * Random ops, the first of them half the time a reference taken, then
 * give back the reference and the mapping, recorded.
 */
static void host_actor(struct actor *a)
{
	struct op *o;
	int i;

	pthread_barrier_wait(&sh->start);
	for (i = 0; i < OPS_PER_ACTOR - 2; i++) {
		if (!plan_op(a, i))
			continue;
		o = next_op(a);
		pick_host_op(a, o);
		if (!i && a->mem && rnd(&a->rng, 2))
			o->kind = OP_PIN;
		do_host_op(a, o);
		pause_a_moment(a);
	}
	if (a->pinned) {
		o = next_op(a);
		o->kind = OP_UNPIN;
		do_unpin(a, o);
	}
	if (a->mem) {
		o = next_op(a);
		o->kind = OP_MUNMAP;
		do_map(a, o, false);
	}
	close(a->fd);
}

static void *host_thread(void *arg)
{
	host_actor(arg);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The vCPU                                                           */

static void guest_code(void)
{
	volatile uint64_t *w;

	for (;;) {
		w = (volatile uint64_t *)(GMEM_DATA_GPA +
					  READ_ONCE(guest_page) * PAGE);
		if (READ_ONCE(guest_write))
			*w = READ_ONCE(guest_value);
		GUEST_SYNC(*w);
	}
}

/*
 * One access by the vCPU: 0 and the value read (after a write, the value
 * written), or KVM_RUN's errno.  A memory-fault exit is entered again, as
 * a VMM does after a conversion raced the fault; one that stays means the
 * file is gone.  After a failure the guest starts over, so that it does
 * not touch the same page again.
 */
static int vcpu_access(int page, bool write, uint64_t value, uint64_t *read)
{
	struct ucall uc;
	int tries, r;

	guest_page = page;
	guest_write = write;
	guest_value = value;
	sync_global_to_guest(vm, guest_page);
	sync_global_to_guest(vm, guest_write);
	sync_global_to_guest(vm, guest_value);
	for (tries = 0; tries < VCPU_RETRIES; tries++) {
		in_kvm_run = true;
		r = _vcpu_run(vcpu) ? errno : 0;
		in_kvm_run = false;
		if (!r) {
			TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
			if (get_ucall(vcpu, &uc) == UCALL_ABORT)
				REPORT_GUEST_ASSERT(uc);
			*read = uc.args[1];
			return 0;
		}
		TEST_ASSERT((r == EFAULT || r == EHWPOISON) &&
			    vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT,
			    "KVM_RUN: %s, exit reason %u", strerror(r),
			    vcpu->run->exit_reason);
		if (r != EFAULT)
			break;
	}
	vcpu_regs_set(vcpu, &vcpu_entry_regs);
	return r;
}

static void do_vcpu_op(struct op *o)
{
	uint64_t value;

	o->inv = now_ns();
	o->err = vcpu_access(o->page, o->kind == OP_VCPU_WRITE, o->value,
			     &value);
	o->resp = now_ns();
	if (o->kind == OP_VCPU_READ && !o->err)
		o->value = value;
}

static void *vcpu_thread(void *arg)
{
	struct actor *a = arg;
	struct op *o;
	int i;

	pthread_barrier_wait(&sh->start);
	for (i = 0; i < OPS_PER_ACTOR; i++) {
		if (!plan_op(a, i))
			continue;
		o = next_op(a);
		o->kind = rnd(&a->rng, 5) < 3 ? OP_VCPU_READ : OP_VCPU_WRITE;
		o->page = rnd(&a->rng, NR_PAGES);
		if (o->kind == OP_VCPU_WRITE)
			o->value = stamp(a);
		do_vcpu_op(o);
		pause_a_moment(a);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* A round                                                            */

static void seed_actor(struct actor *a, int id)
{
	memset(a, 0, sizeof(*a));
	a->id = id;
	a->rng = new_guest_random_state(seed * 2654435761u ^
					(uint32_t)round_nr * 40503u ^ id * 9973u);
}

/*
 * The file before the round: its pages allocated or not, written or not,
 * one of them poisoned now and then, through a mapping dropped before the
 * actors start.
 */
static void set_up_file(struct guest_random_state *rng, struct model *m)
{
	bool init_shared = rnd(rng, 3);
	uint8_t *mem;
	int i, p;

	keep_fd = vm_create_guest_memfd(vm, FILE_SIZE, GUEST_MEMFD_FLAG_MMAP |
					(init_shared ? GUEST_MEMFD_FLAG_INIT_SHARED : 0));
	vm_set_user_memory_region2(vm, GMEM_DATA_SLOT, KVM_MEM_GUEST_MEMFD,
				   GMEM_DATA_GPA, FILE_SIZE, slot_hva, keep_fd, 0);
	model_init(m, init_shared);
	if (!init_shared)
		return;
	mem = map_file(keep_fd);
	for (i = 0; i < NR_PAGES; i++) {
		switch (rnd(rng, 3)) {
		case 0:		/* left unallocated */
			break;
		case 1:
			TEST_ASSERT(!fallocate(keep_fd, FALLOC_FL_KEEP_SIZE,
					       i * PAGE, PAGE), "fallocate");
			break;
		default:
			m->content[i] = (uint64_t)(MAIN_ACTOR + 1) << 56 |
					(uint64_t)round_nr << 24 | i;
			*(uint64_t *)(mem + i * PAGE) = m->content[i];
		}
	}
	if (can_poison && !rnd(rng, 3)) {
		p = rnd(rng, NR_PAGES);
		mem[p * PAGE + 8] = 0;		/* allocated and dirty */
		i = poison(mem + p * PAGE);
		TEST_ASSERT(!i, "MADV_HWPOISON: %s", strerror(i));
		m->poisoned[p] = true;
	}
	TEST_ASSERT(!munmap(mem, FILE_SIZE), "munmap");
}

/* Each child process is an actor with an fd and mapping of its own. */
static pid_t start_child(struct actor *a, bool mapped)
{
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork");
	if (pid)
		return pid;
	a->fd = dup(keep_fd);
	a->mem = mapped ? map_file(a->fd) : NULL;
	host_actor(a);
	_exit(0);
}

static void start_thread(struct actor *a, void *(*fn)(void *), bool mapped)
{
	int r;

	a->fd = dup(keep_fd);
	a->mem = mapped ? map_file(a->fd) : NULL;
	r = pthread_create(&a->thread, NULL, fn, a);
	TEST_ASSERT(!r, "pthread_create: %s", strerror(r));
}

static void wait_child(pid_t pid)
{
	int status;

	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
	TEST_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
		    "seed %u round %ld: an actor process failed (status %#x)",
		    seed, round_nr, status);
}

/* The pages a conversion's overlapping ops might hold a moment. */
static void mark_transients(struct op *ops, int nr)
{
	int i, j;

	for (i = 0; i < nr; i++) {
		for (j = 0; j < nr; j++) {
			const struct op *o = &ops[j];
			uint64_t pages;

			if (ops[i].kind != OP_CONVERT || o->actor == ops[i].actor ||
			    o->resp < ops[i].inv || ops[i].resp < o->inv)
				continue;
			switch (o->kind) {
			case OP_READ: case OP_WRITE: case OP_PIN: case OP_UNPIN:
			case OP_VCPU_READ: case OP_VCPU_WRITE:
				pages = 1ULL << o->page;
				break;
			case OP_ALLOCATE:
				pages = ((1ULL << o->nr) - 1) << o->page;
				break;
			case OP_MUNMAP:
				pages = (1ULL << NR_PAGES) - 1;
				break;
			default:
				pages = 0;
			}
			ops[i].transient |= pages;
		}
	}
}

/* Everything the actors did, in one array. */
static int gather(struct op *ops)
{
	int a, i, nr = 0;

	for (a = 0; a < NR_ACTORS; a++)
		for (i = 0; i < sh->nr_ops[a]; i++)
			ops[nr++] = sh->ops[a][i];
	mark_transients(ops, nr);
	return nr;
}

/* The main thread looks at fdinfo and, through the vCPU, every page. */
static void take_look(struct op *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->actor = MAIN_ACTOR;
	o->kind = OP_LOOK;
	o->inv = now_ns();
	model_kernel_fdinfo(keep_fd, look.fdinfo, sizeof(look.fdinfo));
	for (i = 0; i < NR_PAGES; i++)
		look.err[i] = vcpu_access(i, false, 0, &look.value[i]);
	o->resp = now_ns();
}

static volatile bool race_ready, race_go;

static void *race_conversion(void *arg)
{
	struct op *o = arg;
	struct actor a = { .fd = keep_fd };

	race_ready = true;
	while (!race_go)
		;
	do_convert(&a, o);
	return NULL;
}

static void close_last_fd(struct op *o)
{
	o->inv = now_ns();
	o->err = close(keep_fd) ? errno : 0;
	o->resp = now_ns();
}

/*
 * The last fd closed while a conversion runs on it, or just before: the
 * conversion sees the file or EBADF, and the file is gone once both
 * return, which the vCPU must then find.
 */
static void close_during_conversion(struct guest_random_state *rng,
				    struct op *conv, struct op *closing,
				    struct op *after)
{
	pthread_t t;

	memset(conv, 0, sizeof(*conv));
	memset(closing, 0, sizeof(*closing));
	memset(after, 0, sizeof(*after));
	pick_conversion(rng, conv);
	conv->actor = RACE_ACTOR;
	closing->actor = after->actor = MAIN_ACTOR;
	closing->kind = OP_CLOSE;
	after->kind = OP_VCPU_READ;
	after->page = rnd(rng, NR_PAGES);

	race_ready = race_go = false;
	TEST_ASSERT(!pthread_create(&t, NULL, race_conversion, conv), "thread");
	while (!race_ready)
		;
	switch (rnd(rng, 3)) {
	case 0:
		close_last_fd(closing);
		race_go = true;
		break;
	case 1:
		race_go = true;
		close_last_fd(closing);
		break;
	default:
		race_go = true;
		usleep(rnd(rng, 30));
		close_last_fd(closing);
	}
	pthread_join(t, NULL);
	do_vcpu_op(after);
	vm_set_user_memory_region2(vm, GMEM_DATA_SLOT, KVM_MEM_GUEST_MEMFD,
				   GMEM_DATA_GPA, 0, NULL, 0, 0);
}

/*
 * One round; the history it made and the state it started from are left
 * in @ops (returning how many) and @start.
 */
static int run_round(struct op *ops, struct model *start)
{
	struct actor actors[NR_ACTORS];
	struct guest_random_state rng;
	pid_t pids[NR_CHILDREN];
	bool mapped;
	int i, nr;

	seed_actor(&actors[0], MAIN_ACTOR);
	rng = actors[0].rng;
	set_up_file(&rng, start);
	/* Now and then nobody maps the file until an actor does. */
	mapped = rnd(&rng, 3);
	round_unmapped = !mapped;
	memset(sh->nr_ops, 0, sizeof(sh->nr_ops));

	for (i = 0; i < NR_CHILDREN; i++) {
		seed_actor(&actors[NR_THREADS + i], NR_THREADS + i);
		pids[i] = start_child(&actors[NR_THREADS + i], mapped);
	}
	for (i = 0; i < NR_THREADS; i++) {
		seed_actor(&actors[i], i);
		start_thread(&actors[i], host_thread, mapped);
	}
	seed_actor(&actors[VCPU_ACTOR], VCPU_ACTOR);
	TEST_ASSERT(!pthread_create(&actors[VCPU_ACTOR].thread, NULL,
				    vcpu_thread, &actors[VCPU_ACTOR]), "thread");
	pthread_barrier_wait(&sh->start);

	for (i = 0; i < NR_THREADS; i++)
		pthread_join(actors[i].thread, NULL);
	pthread_join(actors[VCPU_ACTOR].thread, NULL);
	for (i = 0; i < NR_CHILDREN; i++)
		wait_child(pids[i]);

	nr = gather(ops);
	take_look(&ops[nr]);
	close_during_conversion(&rng, &ops[nr + 1], &ops[nr + 2], &ops[nr + 3]);
	return nr + 4;
}

/* A replay that fails counts after at most this many tries. */
#define REPLAYS		3

/* Replay this round, without the ops sh->skip leaves out, until it fails. */
static int replay_fails(struct op *ops, struct model *start)
{
	struct checker c;
	int r, nr;

	for (r = 0; r < REPLAYS; r++) {
		nr = run_round(ops, start);
		if (!linearizable(ops, nr, start, &c) && !c.gave_up)
			return nr;
	}
	return 0;
}

static int nr_planned(int actor)
{
	return actor == VCPU_ACTOR ? OPS_PER_ACTOR : OPS_PER_ACTOR - 2;
}

/*
 * The shortest history that reproduces a failed round, in @ops and
 * @start; its length, or 0 if no replay failed.  Each of the actors'
 * random ops is left out in turn, and stays out if a replay of the round
 * (the same file, every other op drawn as before) still fails.  The last
 * fd's close and the look stay.  A replay may pass or fail with the
 * interleaving: REPLAYS tries each.
 */
static int shrink_by_replay(struct op *ops, struct model *start)
{
	struct op tried[MAX_OPS];
	int a, i, nr, best;
	struct model m;

	memset(sh->skip, 0, sizeof(sh->skip));
	best = replay_fails(ops, start);
	for (a = NR_ACTORS - 1; a >= 0 && best; a--) {
		for (i = nr_planned(a) - 1; i >= 0; i--) {
			sh->skip[a][i] = true;
			nr = replay_fails(tried, &m);
			if (!nr) {
				sh->skip[a][i] = false;
				continue;
			}
			memcpy(ops, tried, nr * sizeof(*ops));
			*start = m;
			best = nr;
		}
	}
	memset(sh->skip, 0, sizeof(sh->skip));
	return best;
}

/* What to tell of a round whose history has no serial order. */
static void report_failure(struct op *ops, int nr, struct model *start)
{
	printf("# the history as it happened, %d ops:\n", nr);
	print_history(ops, nr, start);
	nr = shrink_by_replay(ops, start);
	if (!nr) {
		printf("# seed %u round %ld: no replay failed again\n", seed,
		       round_nr);
		return;
	}
	printf("# seed %u round %ld: the shortest history that reproduces "
	       "it, %d ops:\n", seed, round_nr, nr);
	print_history(ops, nr, start);
	printf("# the look's fdinfo:\n%s", look.fdinfo);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

static void create_vm(void)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kvm_vcpu *vcpus[1];

	vm = __vm_create_with_vcpus(shape, 1, 0, guest_code, vcpus);
	vcpu = vcpus[0];
	vcpu_regs_get(vcpu, &vcpu_entry_regs);
	virt_map(vm, GMEM_DATA_GPA, GMEM_DATA_GPA, NR_PAGES);
	/* The memslot's own address is never used: KVM maps guest_memfd. */
	slot_hva = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(slot_hva != MAP_FAILED, "mmap");
	catch_sigbus();
}

static void create_shared(void)
{
	pthread_barrierattr_t attr;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(sh != MAP_FAILED, "mmap");
	pthread_barrierattr_init(&attr);
	pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	/* The host actors, the vCPU and the main thread. */
	TEST_ASSERT(!pthread_barrier_init(&sh->start, &attr, NR_ACTORS + 1),
		    "barrier");
}

/* The sysctl exists exactly when MADV_HWPOISON does; it needs root. */
static bool poison_available(void)
{
	return !access("/proc/sys/vm/memory_failure_early_kill", F_OK) &&
	       !geteuid();
}

/* ------------------------------------------------------------------ */
/* Runs                                                               */

struct run_counts {
	long rounds, ops, eagain, busy_transient, sigbus;
	long ebadf, converted_first;	/* of the conversion the close races */
	long poisoned, unmapped, max_steps;
};

static void count_round(struct run_counts *n, const struct op *ops, int nr,
			const struct model *start, const struct checker *c)
{
	int i;

	n->rounds++;
	n->ops += nr;
	n->max_steps = max(n->max_steps, c->steps);
	n->poisoned += model_first(start, start->poisoned, 0, NR_PAGES) >= 0;
	n->unmapped += round_unmapped;
	for (i = 0; i < nr; i++) {
		bool eagain = ops[i].kind == OP_CONVERT && ops[i].err == EAGAIN;

		n->eagain += eagain;
		n->busy_transient += eagain && ops[i].transient;
		n->sigbus += !!ops[i].sigbus;
		if (ops[i].actor == RACE_ACTOR) {
			n->ebadf += ops[i].err == EBADF;
			n->converted_first += ops[i].err != EBADF;
		}
	}
}

static void print_counts(const struct run_counts *n)
{
	ksft_print_msg("seed %u: %ld rounds, %ld ops: %ld EAGAIN (%ld while "
		       "a fault or munmap overlapped), %ld SIGBUS; the last "
		       "close came %ld times before the conversion it raced, "
		       "%ld times after; %ld rounds with a poisoned page%s, "
		       "%ld with nobody mapping the file at first; at most %ld "
		       "search steps\n", seed,
		       n->rounds, n->ops, n->eagain, n->busy_transient,
		       n->sigbus, n->ebadf, n->converted_first, n->poisoned,
		       can_poison ? "" : " (no MADV_HWPOISON)", n->unmapped,
		       n->max_steps);
}

static bool time_is_up(const struct timespec *start)
{
	struct timespec now;

	if (!run_seconds)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - start->tv_sec >= run_seconds;
}

static void set_up_run(void)
{
	create_shared();
	create_vm();
	can_poison = poison_available();
}

/* -i ROUNDS rounds (or fewer, with -d SECONDS), each history checked. */
static struct run_counts fuzz(void)
{
	struct run_counts n = {};
	struct op ops[MAX_OPS];
	struct timespec t0;
	struct model start;
	struct checker c;
	int nr;

	set_up_run();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (round_nr = 0; round_nr < nr_rounds && !time_is_up(&t0); round_nr++) {
		nr = run_round(ops, &start);
		if (verbose)
			print_history(ops, nr, &start);
		if (!check_history(ops, nr, &start, &c)) {
			report_failure(ops, nr, &start);
			TEST_FAIL("seed %u round %ld: the history is not "
				  "linearizable", seed, round_nr);
		}
		count_round(&n, ops, nr, &start, &c);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* The checker's own tests                                            */

static struct op *add(struct op *ops, int *nr, int actor, enum kind kind,
		      int page, uint64_t inv, uint64_t resp)
{
	struct op *o = &ops[(*nr)++];

	*o = (struct op){
		.actor = actor, .kind = kind, .page = page, .nr = 1,
		.inv = inv, .resp = resp,
	};
	return o;
}

static struct op *add_convert(struct op *ops, int *nr, int actor, int page,
			      uint64_t attributes, uint64_t inv, uint64_t resp,
			      int err, int error_page)
{
	struct op *o = add(ops, nr, actor, OP_CONVERT, page, inv, resp);

	o->attributes = attributes;
	o->flags = MODE_KEEP;
	o->err = err;
	o->error_offset = err ? error_page * PAGE : 0;
	return o;
}

/* Whether the history @ops of @nr ops is linearizable from all shared. */
static bool accepted(struct op *ops, int nr, int poisoned_page)
{
	struct checker c;
	struct model m;

	model_init(&m, true);
	if (poisoned_page >= 0)
		m.poisoned[poisoned_page] = true;
	mark_transients(ops, nr);
	return linearizable(ops, nr, &m, &c);
}

#define A	0x0100000000000001ULL
#define B	0x0100000000000002ULL

/* Overlapping ops may take effect in either order; EAGAIN needs a reason. */
TEST(checker_accepts_every_order_that_real_time_allows)
{
	struct op h[8];
	int n;

	n = 0;
	add(h, &n, 0, OP_WRITE, 0, 0, 10)->value = A;
	add(h, &n, 1, OP_READ, 0, 5, 15)->value = A;
	EXPECT_TRUE(accepted(h, n, -1));
	h[1].value = 0;
	EXPECT_TRUE(accepted(h, n, -1)) TH_LOG("the read before the write");

	n = 0;
	add_convert(h, &n, 0, 0, PRIVATE, 0, 10, 0, 0);
	add(h, &n, 1, OP_READ, 0, 5, 15)->sigbus = BUS_ADRERR;
	EXPECT_TRUE(accepted(h, n, -1));
	h[1].sigbus = 0;
	EXPECT_TRUE(accepted(h, n, -1)) TH_LOG("the read before the conversion");

	n = 0;
	add(h, &n, 0, OP_PIN, 1, 0, 1);
	add_convert(h, &n, 1, 0, PRIVATE, 2, 3, EAGAIN, 1)->nr = 2;
	add(h, &n, 0, OP_UNPIN, 1, 4, 5);
	add_convert(h, &n, 1, 0, PRIVATE, 6, 7, 0, 0)->nr = 2;
	add(h, &n, 2, OP_VCPU_READ, 1, 8, 9);
	EXPECT_TRUE(accepted(h, n, -1)) TH_LOG("a pin, then none");

	n = 0;
	add(h, &n, 0, OP_READ, 2, 0, 10);
	add_convert(h, &n, 1, 2, PRIVATE, 5, 15, EAGAIN, 2);
	EXPECT_TRUE(accepted(h, n, -1)) TH_LOG("EAGAIN at a page being faulted");

	n = 0;
	add(h, &n, 0, OP_CLOSE, 0, 0, 10);
	add_convert(h, &n, 1, 2, PRIVATE, 5, 15, EBADF, 0);
	add(h, &n, 0, OP_VCPU_READ, 3, 20, 21)->err = EFAULT;
	EXPECT_TRUE(accepted(h, n, -1)) TH_LOG("a close during a conversion");

	/* Only RFC v5 refuses to convert a poisoned page. */
	if (!GMEM_RFC_V5)
		return;
	n = 0;
	add_convert(h, &n, 0, 0, SHARED, 0, 1, EHWPOISON, 3)->nr = NR_PAGES;
	add(h, &n, 1, OP_READ, 3, 2, 3)->sigbus = BUS_MCEERR_AR;
	add(h, &n, 1, OP_PUNCH, 3, 4, 5);
	add_convert(h, &n, 0, 0, PRIVATE, 6, 7, 0, 0)->nr = NR_PAGES;
	EXPECT_TRUE(accepted(h, n, 3)) TH_LOG("a poisoned page punched out");
}

/* Each history here has one outcome that no serial order gives. */
TEST(checker_rejects_impossible_outcomes)
{
	struct model other;
	struct op h[8];
	int n;

	n = 0;
	add(h, &n, 0, OP_READ, 0, 0, 1)->value = A;
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("a value never written");

	n = 0;
	add(h, &n, 0, OP_WRITE, 0, 0, 1)->value = A;
	add(h, &n, 1, OP_WRITE, 0, 2, 3)->value = B;
	add(h, &n, 0, OP_READ, 0, 4, 5)->value = A;
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("a stale value");

	n = 0;
	add(h, &n, 2, OP_VCPU_READ, 0, 0, 1)->value = A;
	add(h, &n, 0, OP_WRITE, 0, 5, 6)->value = A;
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("a value written later");

	n = 0;
	add_convert(h, &n, 0, 0, PRIVATE, 0, 1, 0, 0);
	add(h, &n, 1, OP_READ, 0, 2, 3);
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("a private page read");

	n = 0;
	add_convert(h, &n, 0, 2, PRIVATE, 0, 1, EAGAIN, 2);
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("EAGAIN for nothing");

	n = 0;
	add(h, &n, 0, OP_READ, 2, 0, 1);
	add_convert(h, &n, 1, 2, PRIVATE, 5, 15, EAGAIN, 2);
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("EAGAIN after the fault ended");

	n = 0;
	add(h, &n, 0, OP_PIN, 1, 0, 1);
	add_convert(h, &n, 1, 0, PRIVATE, 2, 3, 0, 0)->nr = 2;
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("a pinned page made private");

	n = 0;
	add(h, &n, 0, OP_PIN, 1, 0, 1);
	add_convert(h, &n, 1, 0, PRIVATE, 2, 3, EAGAIN, 0)->nr = 2;
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("EAGAIN at the wrong page");

	n = 0;
	add(h, &n, 0, OP_CLOSE, 0, 0, 1);
	add_convert(h, &n, 1, 2, PRIVATE, 2, 3, 0, 0);
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("a conversion after the close");

	/* Only RFC v5 refuses to convert a poisoned page. */
	n = 0;
	add_convert(h, &n, 0, 0, SHARED, 0, 1, 0, 0)->nr = NR_PAGES;
	EXPECT_EQ(accepted(h, n, 3), !GMEM_RFC_V5) TH_LOG("a poisoned page converted");
	n = 0;
	add(h, &n, 1, OP_READ, 3, 0, 1);
	EXPECT_FALSE(accepted(h, n, 3)) TH_LOG("a poisoned page read");

	/* fdinfo counting an EAGAIN that never happened */
	n = 0;
	add_convert(h, &n, 0, 0, PRIVATE, 0, 1, 0, 0);
	add(h, &n, 0, OP_LOOK, 0, 2, 3);
	model_init(&other, true);
	other.private[0] = true;
	other.conversions[1] = other.pages_converted[1] = 1;
	model_fdinfo(&other, look.fdinfo, sizeof(look.fdinfo));
	memset(look.err, 0, sizeof(look.err));
	memset(look.value, 0, sizeof(look.value));
	EXPECT_TRUE(accepted(h, n, -1)) TH_LOG("the look as it should be");
	other.eagain = 1;
	model_fdinfo(&other, look.fdinfo, sizeof(look.fdinfo));
	EXPECT_FALSE(accepted(h, n, -1)) TH_LOG("a counter off by one");
}

/*
 * A real round's history passes; with what the look saw of one page
 * changed, it must not.
 */
TEST(checker_rejects_a_real_round_with_one_outcome_changed)
{
	struct op ops[MAX_OPS];
	struct model start;
	struct checker c;
	int nr, i, look_at = -1;

	GMEM_REQUIRE_IN_PLACE();
	set_up_run();
	nr = run_round(ops, &start);
	ASSERT_TRUE(check_history(ops, nr, &start, &c));
	for (i = 0; i < NR_PAGES && look_at < 0; i++)
		if (!look.err[i])
			look_at = i;
	ASSERT_GE(look_at, 0);
	look.value[look_at] ^= 1ULL << 62;
	EXPECT_FALSE(linearizable(ops, nr, &start, &c));
	EXPECT_FALSE(c.gave_up);
}

/* The ops of @ops that an actor drew at random, and how many read data. */
static int random_ops(const struct op *ops, int nr, int *data_reads)
{
	int i, n = 0;

	*data_reads = 0;
	for (i = 0; i < nr; i++) {
		if (ops[i].actor >= NR_ACTORS || ops[i].kind == OP_MUNMAP ||
		    ops[i].kind == OP_UNPIN)
			continue;	/* the end of the round, the clean-up */
		n++;
		*data_reads += ops[i].kind == OP_READ && ops[i].value;
	}
	return n;
}

/*
 * With host reads of data garbled, a round that read some fails, and
 * replays shrink it to fewer ops that still read data.  Which write a
 * read sees depends on the interleaving, so the shrunk round is not
 * always the least one.
 */
TEST(replays_shrink_a_failed_round_to_what_reproduces_it)
{
	struct op ops[MAX_OPS];
	int nr, before, after, reads;
	struct model start;
	struct checker c;

	GMEM_REQUIRE_IN_PLACE();
	set_up_run();
	garble_reads = true;
	/* A read that saw data by chance may not do so in any replay. */
	for (round_nr = 0, nr = 0; round_nr < 20 && !nr; round_nr++) {
		nr = run_round(ops, &start);
		if (linearizable(ops, nr, &start, &c)) {
			nr = 0;
			continue;
		}
		before = random_ops(ops, nr, &reads);
		nr = shrink_by_replay(ops, &start);
	}
	ASSERT_GT(nr, 0) TH_LOG("no failed round came back in replays");
	print_history(ops, nr, &start);
	after = random_ops(ops, nr, &reads);
	ksft_print_msg("%d random ops shrunk to %d\n", before, after);
	EXPECT_LT(after, before * 2 / 3);
	EXPECT_GE(reads, 1);
}

/* ------------------------------------------------------------------ */

TEST(concurrent_histories_are_linearizable)
{
	struct run_counts n;

	GMEM_REQUIRE_IN_PLACE();
	ksft_print_msg("seed %u, at most %ld rounds\n", seed, nr_rounds);
	n = fuzz();
	print_counts(&n);
	if (n.rounds < 20)
		return;
	/* A run this long that never met these tested too little. */
	EXPECT_GT(n.eagain, 0);
	EXPECT_GT(n.sigbus, 0);
	EXPECT_GT(n.ebadf, 0);
	EXPECT_GT(n.converted_first, 0);
	EXPECT_GT(n.unmapped, 0);
	if (can_poison)
		EXPECT_GT(n.poisoned, 0);
}

/*
 * -s SEED, -i ROUNDS, -d SECONDS, -v, before the harness's own options
 * (its -t names a test).
 */
static void parse_options(int *argc, char ***argv)
{
	char **v = *argv;

	seed = time(NULL) ^ getpid();
	while (*argc > 1 && (!strcmp(v[1], "-v") ||
			     (*argc > 2 && (!strcmp(v[1], "-s") ||
					    !strcmp(v[1], "-i") ||
					    !strcmp(v[1], "-d"))))) {
		int used = 2;

		if (!strcmp(v[1], "-s")) {
			seed = strtoul(v[2], NULL, 0);
		} else if (!strcmp(v[1], "-i")) {
			nr_rounds = atoi_positive("-i", v[2]);
		} else if (!strcmp(v[1], "-d")) {
			run_seconds = atoi_positive("-d", v[2]);
		} else {
			verbose = true;
			used = 1;
		}
		v[used] = v[0];
		v += used;
		*argc -= used;
	}
	*argv = v;
}

int main(int argc, char **argv)
{
	struct __fixture_metadata *f;
	struct __test_metadata *t;
	long limit;

	parse_options(&argc, &argv);
	/*
	 * A round takes 90 ms on the test kernel and some 0.3 s on the
	 * debug kernel on a loaded 2-core machine (the whole test, 40 rounds
	 * and the replay test, 23.5 s): 2 s per round leaves a margin of 6x
	 * or more, for the replays of a failed round too (at most 3 for each
	 * of its 32 random ops, and some slack).
	 */
	limit = 2 * (3 * 32 + 30);
	limit += run_seconds ? run_seconds : 2 * nr_rounds;
	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout = limit;
	return test_harness_run(argc, argv);
}
