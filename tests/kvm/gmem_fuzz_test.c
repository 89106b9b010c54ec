// SPDX-License-Identifier: GPL-2.0
/*
 * Model-based fuzzer of KVM_SET_MEMORY_ATTRIBUTES2.  Random and edge-case
 * arguments, interleaved with host writes, hole punches, re-allocation and
 * page pins, run against a user-space model of every page's attributes and
 * contents (gmem_model.h, which gmem_fuzz_concurrent_test checks its
 * histories against too).  After every step the kernel must agree with the model: the
 * errno is the one the ABI documents for that input, a failure changed
 * nothing, fdinfo lists the model's ranges and counters, every private page
 * raises SIGBUS and every shared page holds the model's bytes.
 * Needs in-place conversion switched on.
 *
 *   gmem_fuzz_test [-s SEED] [-i STEPS] [-t SECONDS] [-v]
 *
 * The same seed replays the same steps; -v prints them.
 */
#include <linux/falloc.h>
#include <sys/uio.h>
#include <time.h>

#include <mm/gup_test.h>

#include "gmem.h"

#define NR_PAGES	80	/* > FDINFO_CELLS: summary cells of 2 pages */
#define PAGE		4096ULL
#define FILE_SIZE	(NR_PAGES * PAGE)
#define MAX_PINS	4

#define GMEM_MODEL_PAGES	NR_PAGES
#define GMEM_MODEL_PINS		MAX_PINS
#include "gmem_model.h"

/*
 * A page's content in the model: 0 for zeros, else gmem_pattern() of the
 * low 32 bits (bit 32 tells a written tag 0 from zeros).
 */
#define TAGGED		(1ULL << 32)

/* What holds the reference of the model's pin of the same index. */
struct pin_holder {
	bool gup;		/* gup_test long-term pin, else a pipe */
	int pipefd[2];
};

static struct model m;
static struct pin_holder holders[MAX_PINS];
static struct guest_random_state rng;
static uint32_t seed;
static long step, nr_steps;
static bool verbose;
static int gmem_fd, gup_fd = -1;
static uint8_t *mem;		/* the guest_memfd, mmap()ed */
static void *bad_ptr;		/* PROT_NONE */
static void *ro_ptr;		/* PROT_READ */
static long nr_errno[256];

#define FUZZ_ASSERT(cond, fmt, ...)					\
	TEST_ASSERT(cond, "seed %u step %ld: " fmt			\
		    " (replay: gmem_fuzz_test -s %u -i %ld -v)",	\
		    seed, step, ##__VA_ARGS__, seed, step + 1)

#define LOG(fmt, ...)							\
do {									\
	if (verbose)							\
		printf("%ld: " fmt "\n", step, ##__VA_ARGS__);		\
} while (0)

static uint32_t rnd(uint32_t n)
{
	return guest_random_u32(&rng) % n;
}

static bool chance(int percent)
{
	return __guest_random_bool(&rng, percent);
}

static uint8_t *page_ptr(int i)
{
	return mem + i * PAGE;
}

/* ------------------------------------------------------------------ */
/* Checking the kernel against the model                              */

static void check_page(int i)
{
	static uint8_t zero[PAGE];
	uint8_t v = 0x5a;

	if (m.private[i]) {
		FUZZ_ASSERT(!gmem_host_read(page_ptr(i), &v),
			    "page %d is private but the host read it", i);
		FUZZ_ASSERT(!gmem_host_write(page_ptr(i), v),
			    "page %d is private but the host wrote it", i);
		return;
	}
	FUZZ_ASSERT(gmem_host_read(page_ptr(i), &v),
		    "page %d is shared but the host got SIGBUS", i);
	if (!m.content[i])
		FUZZ_ASSERT(!memcmp(page_ptr(i), zero, PAGE),
			    "page %d should read zeros", i);
	else
		FUZZ_ASSERT(gmem_pattern_ok(page_ptr(i), PAGE, m.content[i]),
			    "page %d lost its data (tag %#x)", i,
			    (uint32_t)m.content[i]);
}

static void check_state(void)
{
	char want[8192], got[8192];
	int i;

	model_fdinfo(&m, want, sizeof(want));
	model_kernel_fdinfo(gmem_fd, got, sizeof(got));
	FUZZ_ASSERT(!strcmp(want, got), "fdinfo differs from the model:\n"
		    "--- model\n%s--- kernel\n%s", want, got);
	for (i = 0; i < NR_PAGES; i++)
		check_page(i);
}

/* ------------------------------------------------------------------ */
/* The ioctl and what the ABI says it must do                         */

/* Edge-heavy values: aligned, unaligned, at and past the end, huge. */
static uint64_t fuzz_offset(void)
{
	switch (rnd(10)) {
	case 0:	return 0;
	case 1:	return FILE_SIZE - PAGE;
	case 2:	return FILE_SIZE;
	case 3:	return rnd(NR_PAGES) * PAGE + 1 + rnd(PAGE - 1);
	case 4:	return chance(50) ? -PAGE : 1ULL << 63;
	case 5:	return guest_random_u64(&rng);
	default: return rnd(NR_PAGES) * PAGE;
	}
}

static uint64_t fuzz_size(uint64_t offset)
{
	switch (rnd(12)) {
	case 0:	return 0;
	case 1:	return FILE_SIZE - offset;
	case 2:	return FILE_SIZE - offset + PAGE;
	case 3:	return 1 + rnd(PAGE - 1) + rnd(4) * PAGE;
	case 4:	return -offset;
	case 5:	return -PAGE;
	case 6:	return guest_random_u64(&rng);
	default: return (1 + rnd(chance(70) ? 4 : NR_PAGES)) * PAGE;
	}
}

static uint64_t fuzz_attributes(void)
{
	if (chance(90))
		return chance(50) ? PRIVATE : SHARED;
	if (chance(50))
		return 1ULL << rnd(64);
	return PRIVATE | 1ULL << rnd(64);
}

static uint64_t fuzz_flags(void)
{
	static const uint64_t modes[] = { MODE_NONE, MODE_ZERO, MODE_PRESERVE };

	/* v8 has no content modes: its one valid request has flags = 0. */
	if (chance(90))
		return GMEM_RFC_V5 ? modes[rnd(3)] : MODE_NONE;
	if (chance(40))
		return MODE_ZERO | MODE_PRESERVE;
	return 1ULL << rnd(64);
}

/* Where the argument goes: mostly good memory, sometimes not. */
static struct kvm_memory_attributes2 *fuzz_argp(struct kvm_memory_attributes2 *a,
						bool *writable)
{
	*writable = true;
	switch (rnd(50)) {
	case 0:
		return NULL;
	case 1:
		return bad_ptr;
	case 2:
		*writable = false;
		mprotect(ro_ptr, getpagesize(), PROT_READ | PROT_WRITE);
		memcpy(ro_ptr, a, sizeof(*a));
		mprotect(ro_ptr, getpagesize(), PROT_READ);
		return ro_ptr;
	default:
		return a;
	}
}

/* Half valid ranges, half edge cases; the other fields mostly valid. */
static void fuzz_args(struct kvm_memory_attributes2 *a)
{
	if (chance(50)) {
		a->offset = rnd(NR_PAGES) * PAGE;
		a->size = (1 + rnd(NR_PAGES - a->offset / PAGE)) * PAGE;
	} else {
		a->offset = fuzz_offset();
		a->size = fuzz_size(a->offset);
	}
	a->attributes = fuzz_attributes();
	a->flags = fuzz_flags();
	if (chance(4))
		a->error_offset = 1 + guest_random_u64(&rng) % FILE_SIZE;
	if (chance(4))
		a->reserved[rnd(ARRAY_SIZE(a->reserved))] = 1ULL << rnd(64);
}

/*
 * The kernel may write error_offset, and only on the failures that report
 * one; every other field must come back as it went in.
 */
static void check_written_back(const struct kvm_memory_attributes2 *in,
			       struct kvm_memory_attributes2 *out, int err,
			       uint64_t error_offset)
{
	if (err == EAGAIN || err == EOPNOTSUPP)
		FUZZ_ASSERT(out->error_offset == error_offset,
			    "error_offset %#llx, want %#lx", out->error_offset,
			    error_offset);
	else
		FUZZ_ASSERT(out->error_offset == in->error_offset,
			    "error_offset written: %#llx", out->error_offset);
	out->error_offset = in->error_offset;
	FUZZ_ASSERT(!memcmp(out, in, sizeof(*in)),
		    "the kernel changed an input field");
}

static void step_set_attributes(void)
{
	struct kvm_memory_attributes2 a = {}, in, *argp;
	uint64_t error_offset = 0;
	int outcome, want, got;
	bool writable;

	fuzz_args(&a);
	in = a;
	argp = fuzz_argp(&a, &writable);

	outcome = model_expected(&m, &a, &error_offset);
	if (argp == NULL || argp == bad_ptr)
		outcome = EFAULT;
	want = outcome;
	/* A failure that reports error_offset cannot report it here. */
	if (!writable && (want == EAGAIN || want == EOPNOTSUPP))
		want = EFAULT;

	got = ioctl(gmem_fd, KVM_SET_MEMORY_ATTRIBUTES2, argp) ? errno : 0;
	LOG("set [%#llx, +%#llx) attrs %#llx flags %#llx eo %#llx%s: %s (want %s)",
	    in.offset, in.size, in.attributes, in.flags, in.error_offset,
	    argp == &a ? "" : " (odd pointer)", strerror(got), strerror(want));
	nr_errno[got & 0xff]++;

	FUZZ_ASSERT(got == want, "[%#llx, +%#llx) attrs %#llx flags %#llx "
		    "error_offset %#llx: got %s, want %s", in.offset, in.size,
		    in.attributes, in.flags, in.error_offset, strerror(got),
		    strerror(want));
	if (argp == &a)
		check_written_back(&in, &a, want, error_offset);

	/* What happened, whether or not it could be reported. */
	if (!outcome)
		model_convert(&m, &in);
	else if (outcome == EAGAIN)
		m.eagain++;
}

/* ------------------------------------------------------------------ */
/* Everything else that happens to the file                           */

static void step_write(void)
{
	int i = rnd(NR_PAGES);

	if (m.private[i])
		return;
	m.content[i] = TAGGED | guest_random_u32(&rng);
	LOG("write page %d tag %#x", i, (uint32_t)m.content[i]);
	gmem_pattern(page_ptr(i), PAGE, m.content[i]);
}

static void step_fallocate(bool punch)
{
	int first = rnd(NR_PAGES), n = 1 + rnd(NR_PAGES - first);
	int mode = FALLOC_FL_KEEP_SIZE | (punch ? FALLOC_FL_PUNCH_HOLE : 0);

	LOG("%s pages [%d, %d)", punch ? "punch" : "allocate", first, first + n);
	FUZZ_ASSERT(!fallocate(gmem_fd, mode, first * PAGE, n * PAGE),
		    "fallocate(%#x): %s", mode, strerror(errno));
	if (punch)
		model_punch(&m, first, first + n);
}

static int free_pin_slot(void)
{
	int p;

	for (p = 0; p < MAX_PINS; p++)
		if (!m.pins[p].used)
			return p;
	return -1;
}

static bool gup_pin_active(void)
{
	int p;

	for (p = 0; p < MAX_PINS; p++)
		if (m.pins[p].used && holders[p].gup)
			return true;
	return false;
}

/* Take a reference: a pipe after vmsplice(), or a gup_test long-term pin. */
static void step_pin(void)
{
	int p = free_pin_slot(), i = rnd(NR_PAGES), r;
	bool gup = gup_fd >= 0 && !gup_pin_active() && chance(40);
	struct pin_holder *h;

	if (p < 0)
		return;
	h = &holders[p];
	h->gup = gup;
	if (gup) {
		struct pin_longterm_test t = {
			.addr = (uintptr_t)page_ptr(i), .size = PAGE,
		};

		r = ioctl(gup_fd, PIN_LONGTERM_TEST_START, &t) ? errno : 0;
	} else {
		struct iovec iov = { .iov_base = page_ptr(i), .iov_len = PAGE };

		FUZZ_ASSERT(!pipe(h->pipefd), "pipe");
		r = vmsplice(h->pipefd[1], &iov, 1, 0) == PAGE ? 0 : errno;
	}
	LOG("%s page %d: %s", gup ? "gup pin" : "vmsplice", i, strerror(r));
	FUZZ_ASSERT(r == (m.private[i] ? EFAULT : 0),
		    "%s of %s page %d: %s", gup ? "pin" : "vmsplice",
		    m.private[i] ? "private" : "shared", i, strerror(r));
	if (!r) {
		m.pins[p] = (struct model_pin){
			.used = true, .attached = true, .page = i,
		};
		return;
	}
	if (!gup) {
		close(h->pipefd[0]);
		close(h->pipefd[1]);
	}
}

static void release_pin(int p)
{
	struct pin_holder *h = &holders[p];
	uint8_t buf[PAGE];

	LOG("unpin page %d", m.pins[p].page);
	if (h->gup) {
		FUZZ_ASSERT(!ioctl(gup_fd, PIN_LONGTERM_TEST_STOP), "unpin");
	} else {
		FUZZ_ASSERT(read(h->pipefd[0], buf, PAGE) == PAGE, "read pipe");
		close(h->pipefd[0]);
		close(h->pipefd[1]);
	}
	m.pins[p].used = false;
}

static void step_unpin(void)
{
	int p = rnd(MAX_PINS);

	if (m.pins[p].used)
		release_pin(p);
}

static void run_step(void)
{
	uint32_t r = rnd(100);

	if (r < 55)
		step_set_attributes();
	else if (r < 72)
		step_write();
	else if (r < 80)
		step_fallocate(true);
	else if (r < 84)
		step_fallocate(false);
	else if (r < 92)
		step_pin();
	else
		step_unpin();
	check_state();
}

/* ------------------------------------------------------------------ */

static void setup(struct kvm_vm *vm)
{
	bool init_shared = chance(50);

	gmem_fd = vm_create_guest_memfd(vm, FILE_SIZE, GUEST_MEMFD_FLAG_MMAP |
					(init_shared ? GUEST_MEMFD_FLAG_INIT_SHARED : 0));
	mem = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   gmem_fd, 0);
	TEST_ASSERT(mem != MAP_FAILED, "mmap(guest_memfd)");
	bad_ptr = mmap(NULL, getpagesize(), PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro_ptr = mmap(NULL, getpagesize(), PROT_READ,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(bad_ptr != MAP_FAILED && ro_ptr != MAP_FAILED, "mmap");
	gup_fd = open("/sys/kernel/debug/gup_test", O_RDWR);
	gmem_catch_sigbus();

	model_init(&m, init_shared);
	LOG("guest_memfd of %d pages, all %s", NR_PAGES,
	    init_shared ? "shared" : "private");
	check_state();
}

static void teardown(struct kvm_vm *vm)
{
	int p;

	for (p = 0; p < MAX_PINS; p++)
		if (m.pins[p].used)
			release_pin(p);
	munmap(mem, FILE_SIZE);
	close(gmem_fd);
	if (gup_fd >= 0)
		close(gup_fd);
	kvm_vm_free(vm);
}

/*
 * The errno classes a run of this length must have produced: EOPNOTSUPP
 * (ZERO towards private) last, since only RFC v5 has it.
 */
static void check_coverage(void)
{
	static const int expected[] = { 0, EINVAL, EFAULT, EAGAIN, EOPNOTSUPP };
	int nr_expected = ARRAY_SIZE(expected) - !GMEM_RFC_V5;
	int k;

	printf("%ld steps: ok %ld, EINVAL %ld, EFAULT %ld, EAGAIN %ld, "
	       "EOPNOTSUPP %ld\n", step, nr_errno[0], nr_errno[EINVAL],
	       nr_errno[EFAULT], nr_errno[EAGAIN], nr_errno[EOPNOTSUPP]);
	if (step < 300)
		return;
	for (k = 0; k < nr_expected; k++)
		TEST_ASSERT(nr_errno[expected[k]],
			    "seed %u: %ld steps and never %s: the fuzzer is broken",
			    seed, step, strerror(expected[k]));
}

int main(int argc, char *argv[])
{
	struct gmem_run_opts o = { .seed = 1, .count = 400 };
	time_t deadline;
	struct kvm_vm *vm;

	gmem_parse_run_opts(argc, argv, &o);
	seed = o.seed;
	nr_steps = o.count;
	verbose = o.verbose;
	deadline = o.seconds ? time(NULL) + o.seconds : 0;
	TEST_REQUIRE(!gmem_vm_attributes_mode());
	printf("seed %u, at most %ld steps\n", seed, nr_steps);

	rng = new_guest_random_state(seed);
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	setup(vm);
	for (step = 0; step < nr_steps; step++) {
		if (deadline && time(NULL) >= deadline)
			break;
		run_step();
	}
	check_coverage();
	teardown(vm);
	return 0;
}
