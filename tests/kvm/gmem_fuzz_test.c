// SPDX-License-Identifier: GPL-2.0
/*
 * Model-based fuzzer of KVM_SET_MEMORY_ATTRIBUTES2.  Random and edge-case
 * arguments, interleaved with host writes, hole punches, re-allocation and
 * page pins, run against a user-space model of every page's attributes and
 * contents.  After every step the kernel must agree with the model: the
 * errno is the one the ABI documents for that input, a failure changed
 * nothing, fdinfo lists the model's ranges and counters, every private page
 * raises SIGBUS and every shared page holds the model's bytes.
 * Needs kvm.vm_memory_attributes=0.
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

enum content { C_ZERO, C_TAG };

/* A reference held on a page from outside guest_memfd. */
struct pin {
	bool used;
	bool gup;		/* gup_test long-term pin, else a pipe */
	bool attached;		/* the page is still in the file */
	int page;
	int pipefd[2];
};

/* What the kernel should hold, page by page. */
struct model {
	bool private[NR_PAGES];
	enum content content[NR_PAGES];
	uint32_t tag[NR_PAGES];
	struct pin pins[MAX_PINS];
	/* fdinfo counters: [1] is to private */
	uint64_t conversions[2], pages_converted[2], eagain;
};

static struct model m;
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

static bool page_pinned(int i)
{
	int p;

	for (p = 0; p < MAX_PINS; p++)
		if (m.pins[p].used && m.pins[p].attached && m.pins[p].page == i)
			return true;
	return false;
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
	if (m.content[i] == C_ZERO)
		FUZZ_ASSERT(!memcmp(page_ptr(i), zero, PAGE),
			    "page %d should read zeros", i);
	else
		FUZZ_ASSERT(gmem_pattern_ok(page_ptr(i), PAGE, m.tag[i]),
			    "page %d lost its data (tag %#x)", i, m.tag[i]);
}

/* fdinfo lists this many ranges, and counts the others. */
#define FDINFO_MAX_RANGES	64
/* fdinfo's summary shows the file in at most this many cells. */
#define FDINFO_CELLS		64

/* Each cell: 's' all shared, 'p' all private, 'm' both. */
static size_t model_summary(char *buf, size_t len)
{
	int cell_pages = DIV_ROUND_UP(NR_PAGES, FDINFO_CELLS), c, i;
	size_t n = snprintf(buf, len, "gmem_summary_cell:\t%llu\ngmem_summary:\t",
			    cell_pages * PAGE);

	for (c = 0; c * cell_pages < NR_PAGES; c++) {
		int kinds = 0;

		for (i = c * cell_pages; i < (c + 1) * cell_pages && i < NR_PAGES; i++)
			kinds |= m.private[i] ? 2 : 1;
		n += snprintf(buf + n, len - n, "%c", "?spm"[kinds]);
	}
	return n + snprintf(buf + n, len - n, "\n");
}

/*
 * The gmem_* lines of fdinfo that the model determines, as fdinfo prints
 * them.  The attribute tree merges equal neighbours: it holds one entry
 * per maximal range.
 */
static void model_fdinfo(char *buf, size_t len)
{
	int i, first = 0, nr_ranges = 0, nr_private = 0;
	size_t n = 0;

	for (i = 1; i <= NR_PAGES; i++) {
		if (i < NR_PAGES && m.private[i] == m.private[first])
			continue;
		if (++nr_ranges <= FDINFO_MAX_RANGES)
			n += snprintf(buf + n, len - n,
				      "gmem_range:\t0x%llx-0x%llx %s\n",
				      first * PAGE, i * PAGE,
				      m.private[first] ? "private" : "shared");
		first = i;
	}
	n += snprintf(buf + n, len - n, "gmem_ranges:\t%d\n", nr_ranges);
	if (nr_ranges > FDINFO_MAX_RANGES)
		n += snprintf(buf + n, len - n, "gmem_ranges_not_shown:\t%d\n",
			      nr_ranges - FDINFO_MAX_RANGES);
	n += model_summary(buf + n, len - n);
	for (i = 0; i < NR_PAGES; i++)
		nr_private += m.private[i];
	snprintf(buf + n, len - n,
		 "gmem_shared_pages:\t%d\n"
		 "gmem_private_pages:\t%d\n"
		 "gmem_conversions_to_private:\t%lu\n"
		 "gmem_conversions_to_shared:\t%lu\n"
		 "gmem_pages_to_private:\t%lu\n"
		 "gmem_pages_to_shared:\t%lu\n"
		 "gmem_eagain:\t%lu\n",
		 NR_PAGES - nr_private, nr_private,
		 m.conversions[1], m.conversions[0],
		 m.pages_converted[1], m.pages_converted[0], m.eagain);
}

/* fdinfo without the lines the model does not know (size, flags, owner). */
static void kernel_fdinfo(char *buf, size_t len)
{
	static const char *const ignored[] = {
		"gmem_size:", "gmem_flags:", "gmem_vm_pid:", "gmem_vm_id:",
	};
	char raw[16384], *line, *save;
	size_t n = 0;
	int k;

	gmem_fdinfo_text(gmem_fd, raw, sizeof(raw));
	buf[0] = 0;
	for (line = strtok_r(raw, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "gmem_", 5))
			continue;
		for (k = 0; k < ARRAY_SIZE(ignored); k++)
			if (!strncmp(line, ignored[k], strlen(ignored[k])))
				break;
		if (k == ARRAY_SIZE(ignored))
			n += snprintf(buf + n, len - n, "%s\n", line);
	}
}

static void check_state(void)
{
	char want[8192], got[8192];
	int i;

	model_fdinfo(want, sizeof(want));
	kernel_fdinfo(got, sizeof(got));
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

	if (chance(90))
		return modes[rnd(3)];
	if (chance(40))
		return MODE_ZERO | MODE_PRESERVE;
	return 1ULL << rnd(64);
}

static bool args_invalid(const struct kvm_memory_attributes2 *a)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(a->reserved); i++)
		if (a->reserved[i])
			return true;
	return a->error_offset ||
	       (a->attributes & ~PRIVATE) ||
	       (a->flags & ~(MODE_ZERO | MODE_PRESERVE)) ||
	       a->flags == (MODE_ZERO | MODE_PRESERVE) ||
	       !a->size || a->offset % PAGE || a->size % PAGE ||
	       a->offset + a->size < a->offset ||
	       a->offset + a->size > FILE_SIZE;
}

/*
 * The errno the ABI requires for valid-looking @a (0 for success), and
 * in *@error_offset the offset the kernel must report with it.
 */
static int expected_result(const struct kvm_memory_attributes2 *a,
			   uint64_t *error_offset)
{
	int first = a->offset / PAGE, end = first + a->size / PAGE, i;

	if (args_invalid(a))
		return EINVAL;
	if (a->attributes && a->flags == MODE_ZERO) {
		*error_offset = a->offset;
		return EOPNOTSUPP;
	}
	if (!a->attributes)
		return 0;
	for (i = first; i < end; i++) {
		if (page_pinned(i)) {
			*error_offset = i * PAGE;
			return EAGAIN;
		}
	}
	return 0;
}

static void model_convert(const struct kvm_memory_attributes2 *a)
{
	int first = a->offset / PAGE, end = first + a->size / PAGE, i;
	bool to_private = a->attributes;
	uint64_t changed = 0;

	for (i = first; i < end; i++) {
		changed += m.private[i] != to_private;
		m.private[i] = to_private;
		/*
		 * ZERO applies to the whole range, changed or not; flags = 0
		 * and PRESERVE keep every byte.
		 */
		if (a->flags == MODE_ZERO)
			m.content[i] = C_ZERO;
	}
	if (changed) {
		m.conversions[to_private]++;
		m.pages_converted[to_private] += changed;
	}
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

	outcome = expected_result(&a, &error_offset);
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
		model_convert(&in);
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
	m.tag[i] = guest_random_u32(&rng);
	m.content[i] = C_TAG;
	LOG("write page %d tag %#x", i, m.tag[i]);
	gmem_pattern(page_ptr(i), PAGE, m.tag[i]);
}

static void step_fallocate(bool punch)
{
	int first = rnd(NR_PAGES), n = 1 + rnd(NR_PAGES - first), i, p;
	int mode = FALLOC_FL_KEEP_SIZE | (punch ? FALLOC_FL_PUNCH_HOLE : 0);

	LOG("%s pages [%d, %d)", punch ? "punch" : "allocate", first, first + n);
	FUZZ_ASSERT(!fallocate(gmem_fd, mode, first * PAGE, n * PAGE),
		    "fallocate(%#x): %s", mode, strerror(errno));
	if (!punch)
		return;
	for (i = first; i < first + n; i++)
		m.content[i] = C_ZERO;
	/* A punched page leaves the file: its holder no longer blocks. */
	for (p = 0; p < MAX_PINS; p++)
		if (m.pins[p].page >= first && m.pins[p].page < first + n)
			m.pins[p].attached = false;
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
		if (m.pins[p].used && m.pins[p].gup)
			return true;
	return false;
}

/* Take a reference: a pipe after vmsplice(), or a gup_test long-term pin. */
static void step_pin(void)
{
	int p = free_pin_slot(), i = rnd(NR_PAGES), r;
	bool gup = gup_fd >= 0 && !gup_pin_active() && chance(40);
	struct pin *pin;

	if (p < 0)
		return;
	pin = &m.pins[p];
	*pin = (struct pin){ .gup = gup, .page = i, .attached = true };
	if (gup) {
		struct pin_longterm_test t = {
			.addr = (uintptr_t)page_ptr(i), .size = PAGE,
		};

		r = ioctl(gup_fd, PIN_LONGTERM_TEST_START, &t) ? errno : 0;
	} else {
		struct iovec iov = { .iov_base = page_ptr(i), .iov_len = PAGE };

		FUZZ_ASSERT(!pipe(pin->pipefd), "pipe");
		r = vmsplice(pin->pipefd[1], &iov, 1, 0) == PAGE ? 0 : errno;
	}
	LOG("%s page %d: %s", gup ? "gup pin" : "vmsplice", i, strerror(r));
	FUZZ_ASSERT(r == (m.private[i] ? EFAULT : 0),
		    "%s of %s page %d: %s", gup ? "pin" : "vmsplice",
		    m.private[i] ? "private" : "shared", i, strerror(r));
	if (!r) {
		pin->used = true;
		return;
	}
	if (!gup) {
		close(pin->pipefd[0]);
		close(pin->pipefd[1]);
	}
}

static void release_pin(struct pin *pin)
{
	uint8_t buf[PAGE];

	LOG("unpin page %d", pin->page);
	if (pin->gup) {
		FUZZ_ASSERT(!ioctl(gup_fd, PIN_LONGTERM_TEST_STOP), "unpin");
	} else {
		FUZZ_ASSERT(read(pin->pipefd[0], buf, PAGE) == PAGE, "read pipe");
		close(pin->pipefd[0]);
		close(pin->pipefd[1]);
	}
	pin->used = false;
}

static void step_unpin(void)
{
	struct pin *pin = &m.pins[rnd(MAX_PINS)];

	if (pin->used)
		release_pin(pin);
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
	int i;

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

	for (i = 0; i < NR_PAGES; i++)
		m.private[i] = !init_shared;
	LOG("guest_memfd of %d pages, all %s", NR_PAGES,
	    init_shared ? "shared" : "private");
	check_state();
}

static void teardown(struct kvm_vm *vm)
{
	int p;

	for (p = 0; p < MAX_PINS; p++)
		if (m.pins[p].used)
			release_pin(&m.pins[p]);
	munmap(mem, FILE_SIZE);
	close(gmem_fd);
	if (gup_fd >= 0)
		close(gup_fd);
	kvm_vm_free(vm);
}

/* The errno classes a run of this length must have produced. */
static void check_coverage(void)
{
	static const int expected[] = { 0, EINVAL, EFAULT, EAGAIN, EOPNOTSUPP };
	int k;

	printf("%ld steps: ok %ld, EINVAL %ld, EFAULT %ld, EAGAIN %ld, "
	       "EOPNOTSUPP %ld\n", step, nr_errno[0], nr_errno[EINVAL],
	       nr_errno[EFAULT], nr_errno[EAGAIN], nr_errno[EOPNOTSUPP]);
	if (step < 300)
		return;
	for (k = 0; k < ARRAY_SIZE(expected); k++)
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
