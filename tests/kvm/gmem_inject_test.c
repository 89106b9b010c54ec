// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_SET_MEMORY_ATTRIBUTES2 under injected allocation failures.  Each
 * conversion is made again and again with the kernel's fail-nth: the 1st,
 * 2nd, 3rd... allocation of the call fails (failslab and fail_page_alloc,
 * set to count sleeping and order-0 allocations too), until a call makes
 * all of its allocations unharmed.  Every call that fails must fail with
 * -ENOMEM at the start of its range and leave the file exactly as it was:
 * attributes, contents, which pages are allocated, every line of fdinfo,
 * and a trace that shows no change.  A call that succeeds although an
 * allocation failed (one that has a fallback) must have done all of its
 * work.  Needs in-place conversion switched on and fault injection (the
 * debug kernel); skips without them.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/membarrier.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "gmem.h"
#include "kselftest_harness.h"

/* One fdinfo summary cell per page: the summary spells the layout. */
#define NR_PAGES	32
#define PAGE		4096UL
#define DEBUGFS		"/sys/kernel/debug"
#define TRACE		"/sys/kernel/tracing/instances/gmem_inject"
/*
 * Random layouts after the named conversions, each with a chain of
 * random conversions from it: about 2,200 failed conversions, in a
 * minute on the debug kernel of a 2-core host under emulation (two while
 * other VMs share the host).
 */
#define RANDOM_LAYOUTS	360
#define CHAIN		8
/* Allocations a conversion makes are a handful; more means a loop. */
#define MAX_NTH		64
/* More attribute-tree nodes than this after the test are a leak. */
#define NODES_BOUND	32
#define MAPLE_NODE	"/sys/kernel/slab/maple_node"

/* The fault-injection knobs this test sets, and what they were. */
static const struct knob {
	const char *path;
	const char *value;
} knobs[] = {
	/* GFP_KERNEL allocations (the attribute tree's) count too. */
	{ DEBUGFS "/failslab/ignore-gfp-wait", "N" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-wait", "N" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-highmem", "N" },
	{ DEBUGFS "/fail_page_alloc/min-order", "0" },
	/* Thousands of failures: no stack dump for each. */
	{ DEBUGFS "/failslab/verbose", "0" },
	{ DEBUGFS "/fail_page_alloc/verbose", "0" },
	/* Counts down once per injected failure: how many were of each kind. */
	{ DEBUGFS "/failslab/times", "1000000000" },
	{ DEBUGFS "/fail_page_alloc/times", "1000000000" },
};

static char saved[ARRAY_SIZE(knobs)][32];

static long read_long(const char *path)
{
	char buf[32];

	return gmem_read_file(path, buf, sizeof(buf)) ? atol(buf) : -1;
}

/*
 * What the file should hold, page by page: attributes, whether the page
 * holds data (is up to date in the page cache, as mincore() tells), and
 * its pattern (0: zeros).  Pages allocated by fallocate() are not up to
 * date until first used: mincore() does not count them.
 */
struct layout {
	bool priv[NR_PAGES];
	bool alloc[NR_PAGES];
	bool fallocated[NR_PAGES];
	uint32_t tag[NR_PAGES];
};

/*
 * A layout in letters: 's' shared, not allocated; 'S' shared, holding a
 * pattern; 'z' shared, allocated by fallocate() and never used (reads
 * zeros); 'p', 'P' and 'y' the same, private.
 */
static void layout_parse(struct layout *l, const char *s)
{
	int i;

	for (i = 0; i < NR_PAGES; i++) {
		char c = s[i];

		l->priv[i] = c == 'p' || c == 'P' || c == 'y';
		l->alloc[i] = c == 'S' || c == 'P';
		l->fallocated[i] = c == 'z' || c == 'y';
		l->tag[i] = c == 'S' || c == 'P' ? 0x5eed0000 + i : 0;
	}
}

/* A conversion, and what it does to a layout. */
struct conversion {
	const char *what;
	const char *layout;
	int first, nr;
	uint64_t attrs, mode;
};

static unsigned long conversion_apply(struct layout *l,
				      const struct conversion *c)
{
	bool priv = c->attrs & PRIVATE;
	unsigned long changed = 0;
	int i;

	for (i = c->first; i < c->first + c->nr; i++) {
		changed += l->priv[i] != priv;
		l->priv[i] = priv;
		if (c->mode == MODE_ZERO)
			l->tag[i] = 0;
	}
	return changed;
}

FIXTURE(inject) {
	struct gmem_vm g;
	int nth;		/* /proc/thread-self/fail-nth */
	int pipe;		/* the trace instance's trace_pipe */
	bool knobs_set;
	/* Totals, for the report. */
	unsigned long calls, failures, tolerated;
	char fdinfo[2][4096];
	char trace[1 << 16];
};

static void guest_idle(void)
{
	GUEST_DONE();
}

static void knobs_restore(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		if (saved[i][0])
			gmem_write_file(knobs[i].path, saved[i]);
}

FIXTURE_SETUP(inject)
{
	int i;

	GMEM_REQUIRE_IN_PLACE();
	if (access("/proc/thread-self/fail-nth", F_OK) ||
	    access(DEBUGFS "/failslab", F_OK) ||
	    access(DEBUGFS "/fail_page_alloc", F_OK))
		SKIP(return, "no fault injection in this kernel (CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS: the debug kernel)");
	if (access("/sys/kernel/tracing/events/kvm_gmem", F_OK))
		SKIP(return, "no kvm_gmem trace events");

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		ASSERT_NE(gmem_read_file(knobs[i].path, saved[i], sizeof(saved[i])), 0)
			TH_LOG("%s", knobs[i].path);
		ASSERT_TRUE(gmem_write_file(knobs[i].path, knobs[i].value))
			TH_LOG("%s", knobs[i].path);
	}
	self->knobs_set = true;

	rmdir(TRACE);
	ASSERT_EQ(mkdir(TRACE, 0755), 0);
	ASSERT_TRUE(gmem_write_file(TRACE "/events/kvm_gmem/enable", "1"));

	/* Read as it fills: clearing a trace waits for an RCU grace period. */
	self->pipe = open(TRACE "/trace_pipe", O_RDONLY | O_NONBLOCK);
	ASSERT_GE(self->pipe, 0);
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR);
	ASSERT_GE(self->nth, 0);
	gmem_vm_create(&self->g, 1, guest_idle, NR_PAGES * PAGE,
		       GUEST_MEMFD_FLAG_INIT_SHARED);
}

FIXTURE_TEARDOWN(inject)
{
	if (self->g.vm)
		gmem_vm_free(&self->g);
	if (self->nth > 0)
		close(self->nth);
	if (self->pipe > 0)
		close(self->pipe);
	if (self->knobs_set) {
		knobs_restore();
		gmem_write_file(TRACE "/events/kvm_gmem/enable", "0");
		rmdir(TRACE);
	}
}

/* ------------------------------------------------------------------ */
/* Putting a layout in place and reading it back.                     */

static void convert_run(int fd, int first, int nr, bool priv)
{
	gmem_convert(fd, first * PAGE, nr * PAGE, priv ? PRIVATE : SHARED,
		     MODE_NONE);
}

/* From any state: shared and empty, then pages written, then private runs. */
static void layout_set(struct gmem_vm *g, const struct layout *l)
{
	int i, run;

	convert_run(g->fd, 0, NR_PAGES, false);
	TEST_ASSERT(!fallocate(g->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			       0, NR_PAGES * PAGE), "punch");
	for (i = 0; i < NR_PAGES; i++) {
		if (l->tag[i])
			gmem_pattern(g->mem + i * PAGE, PAGE, l->tag[i]);
		else if (l->alloc[i])
			memset(g->mem + i * PAGE, 0, PAGE);
		else if (l->fallocated[i])
			TEST_ASSERT(!fallocate(g->fd, FALLOC_FL_KEEP_SIZE,
					       i * PAGE, PAGE), "fallocate");
	}
	for (i = 0; i < NR_PAGES; i += run) {
		for (run = 1; i + run < NR_PAGES &&
			      l->priv[i + run] == l->priv[i]; run++)
			;
		if (l->priv[i])
			convert_run(g->fd, i, run, true);
	}
}

static bool page_is_zero(const uint8_t *p)
{
	return !p[0] && !memcmp(p, p + 1, PAGE - 1);
}

/*
 * Whether the file is as @l says: the fdinfo summary spells the
 * attributes, mincore() the pages allocated, a shared page holds its
 * pattern and, if @probe, a private one cannot be read (a SIGBUS each,
 * slow on the debug kernel).  Unallocated pages are not touched: a read
 * would allocate them.
 */
static bool layout_check(struct __test_metadata *_metadata,
			 struct gmem_vm *g, const struct layout *l, bool probe)
{
	unsigned char vec[NR_PAGES];
	char summary[NR_PAGES + 8];
	uint8_t v;
	int i;

	if (!gmem_fdinfo(g->fd, "gmem_summary", summary, sizeof(summary)) ||
	    strlen(summary) != NR_PAGES) {
		TH_LOG("no fdinfo summary of %d pages", NR_PAGES);
		return false;
	}
	TEST_ASSERT(!mincore(g->mem, NR_PAGES * PAGE, vec), "mincore");
	for (i = 0; i < NR_PAGES; i++) {
		uint8_t *p = g->mem + i * PAGE;

		if (summary[i] != (l->priv[i] ? 'p' : 's')) {
			TH_LOG("page %d is '%c' in the fdinfo summary", i,
			       summary[i]);
			return false;
		}
		if ((vec[i] & 1) != l->alloc[i]) {
			TH_LOG("page %d is %sallocated", i, l->alloc[i] ? "not " : "");
			return false;
		}
		if (!l->alloc[i] || (l->priv[i] && !probe))
			continue;
		if (l->priv[i] ? gmem_host_read(p, &v) : !gmem_host_read(p, &v)) {
			TH_LOG("page %d: host access does not match", i);
			return false;
		}
		if (!l->priv[i] && !(l->tag[i] ? gmem_pattern_ok(p, PAGE, l->tag[i]) :
						   page_is_zero(p))) {
			TH_LOG("page %d does not hold %s", i,
			       l->tag[i] ? "its pattern" : "zeros");
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* The trace of one call.                                             */

/* What the trace pipe holds now, consumed; the length. */
static size_t trace_read(int pipe, char *text, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n < len - 1 && (r = read(pipe, text + n, len - 1 - n)) > 0)
		n += r;
	TEST_ASSERT(n < len - 1, "trace of one call over %zu bytes", len);
	text[n] = 0;
	return n;
}

static unsigned int count_lines(const char *text, const char *s)
{
	unsigned int n = 0;

	for (; (text = strstr(text, s)); text++)
		n++;
	return n;
}

/*
 * The trace holds one conversion that returned @r and changed @changed
 * pages; a failed one got no further than its checks: no invalidation,
 * no content, no update.
 */
static bool trace_check(struct __test_metadata *_metadata, int pipe,
			char *text, size_t len, int r, unsigned long changed)
{
	char *end;
	int ret;
	unsigned long nr;

	trace_read(pipe, text, len);
	end = strstr(text, "kvm_gmem_set_attributes_end:");
	if (count_lines(text, "kvm_gmem_set_attributes_begin:") != 1 || !end ||
	    count_lines(text, "kvm_gmem_set_attributes_end:") != 1) {
		TH_LOG("not one conversion in the trace:\n%s", text);
		return false;
	}
	if (sscanf(strstr(end, " ret "), " ret %d error_offset %*s changed %lu",
		   &ret, &nr) != 2 || ret != r || nr != changed) {
		TH_LOG("want ret %d changed %lu:\n%s", r, changed, text);
		return false;
	}
	if (r && (strstr(text, "kvm_gmem_invalidate_begin:") ||
		  strstr(text, "kvm_gmem_content:") ||
		  strstr(text, "update done"))) {
		TH_LOG("a failed conversion went on:\n%s", text);
		return false;
	}
	/* One that succeeded applied its content mode (v8 has no such step). */
	if (GMEM_RFC_V5 && !r && !strstr(text, "kvm_gmem_content:")) {
		TH_LOG("no content event:\n%s", text);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Failing the Nth allocation of a call.                              */

static void nth_set(int nth, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	TEST_ASSERT(pwrite(nth, buf, len, 0) == len, "write fail-nth");
}

/* Whether the failure set up by nth_set() was injected; disarms it. */
static bool nth_injected(int nth)
{
	char buf[16] = "";

	TEST_ASSERT(pread(nth, buf, sizeof(buf) - 1, 0) > 0, "read fail-nth");
	if (atoi(buf) == 0)
		return true;
	nth_set(nth, 0);
	return false;
}

/*
 * Make conversion @c from layout *@cur with the 1st, 2nd... allocation
 * failing, until a call allocates without a failure; *@cur becomes what
 * the conversion made of it.  Returns the number of failures injected,
 * or -1 (with the reason logged).
 */
static int sweep(struct __test_metadata *_metadata,
		 FIXTURE_DATA(inject) *self, struct layout *cur,
		 const struct conversion *c)
{
	struct gmem_vm *g = &self->g;
	struct layout after = *cur;
	unsigned long changed;
	uint64_t error_offset;
	bool injected, snapshot = true;
	unsigned int n;
	int r, failures = 0;

	changed = conversion_apply(&after, c);

	for (n = 1; n <= MAX_NTH; n++) {
		if (snapshot) {
			gmem_fdinfo_text(g->fd, self->fdinfo[0], sizeof(self->fdinfo[0]));
			snapshot = false;
		}
		trace_read(self->pipe, self->trace, sizeof(self->trace));

		nth_set(self->nth, n);
		r = gmem_set_attrs(g->fd, c->first * PAGE, c->nr * PAGE,
				   c->attrs, c->mode, &error_offset);
		injected = nth_injected(self->nth);
		self->calls++;

		if (!trace_check(_metadata, self->pipe, self->trace,
				 sizeof(self->trace), r, r ? 0 : changed)) {
			TH_LOG("%s: allocation %u", c->what, n);
			return -1;
		}
		if (!r) {
			/* Done, with or without a failure it could survive. */
			if (!layout_check(_metadata, g, &after, true)) {
				TH_LOG("%s: allocation %u failed, the call did not",
				       c->what, n);
				return -1;
			}
			if (!injected) {
				*cur = after;
				return failures;
			}
			/* Once more from where it started. */
			self->tolerated++;
			layout_set(g, cur);
			snapshot = true;
			continue;
		}

		gmem_fdinfo_text(g->fd, self->fdinfo[1], sizeof(self->fdinfo[1]));
		if (!injected || r != -ENOMEM ||
		    error_offset != c->first * PAGE ||
		    strcmp(self->fdinfo[0], self->fdinfo[1]) ||
		    !layout_check(_metadata, g, cur, false)) {
			TH_LOG("%s: allocation %u failed: %s (error_offset %#lx), fdinfo before:\n%s\nafter:\n%s",
			       c->what, n, strerror(-r), error_offset,
			       self->fdinfo[0], self->fdinfo[1]);
			return -1;
		}
		failures++;
	}
	TH_LOG("%s: still allocating after %d failures", c->what, MAX_NTH);
	return -1;
}

static const struct conversion named[] = {
	{ "one page to private, splitting a shared file",
	  "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS", 5, 1, PRIVATE, MODE_NONE },
	{ "unallocated pages to private",
	  "ssssssssssssssssssssssssssssssss", 8, 16, PRIVATE, MODE_NONE },
	{ "24 mapped pages to private",
	  "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS", 4, 24, PRIVATE, MODE_NONE },
	{ "to private over many ranges, allocated and not",
	  "SPsPSpSyzPSpSPsPSSppSSPPzzyySPSP", 1, 30, PRIVATE, MODE_NONE },
	{ "to private, PRESERVE",
	  "SSsszzPPSSppSSSSPPPPSsSzSSSSSSSS", 2, 20, PRIVATE, MODE_KEEP },
	{ "to private, merging with both neighbours",
	  "SSSSPPPPSSSSPPPPSSSSSSSSSSSSSSSS", 8, 4, PRIVATE, MODE_NONE },
	{ "one page to shared inside a private run",
	  "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP", 10, 1, SHARED, MODE_NONE },
	{ "to shared, ZERO, over shared and private ranges",
	  "SPSPSSPPSzSyPPSSSPsPSSPPSSPPSPSP", 0, 32, SHARED, MODE_ZERO_OR_NONE },
	{ "to shared, PRESERVE",
	  "PPPPSSSSPPPPyyyyppppSSSSPPPPPPPP", 3, 26, SHARED, MODE_KEEP },
	{ "the whole fragmented file to shared",
	  "SPSPSPSPSPSPSPSPSPSPSPSPSPSPSPSP", 0, 32, SHARED, MODE_NONE },
	{ "already private, PRESERVE: nothing to change",
	  "SSSSPPPPPPPPSSSSSSSSSSSSSSSSSSSS", 5, 6, PRIVATE, MODE_KEEP },
	{ "already shared, ZERO: contents only",
	  "SSSSPPPPPPPPSSSSSSSSSSSSSSSSSSSS", 12, 8, SHARED, MODE_ZERO_OR_NONE },
};

/* A random layout, in runs of a few pages so that the tree has some depth. */
static void random_layout(char *layout)
{
	static const char letters[] = "sSzpPy";
	int i, run = 0;

	for (i = 0; i < NR_PAGES; i++) {
		if (!run) {
			layout[i] = letters[rand() % 6];
			run = 1 + rand() % 4;
		} else {
			layout[i] = layout[i - 1];
		}
		run--;
	}
	layout[NR_PAGES] = 0;
}

/* A random valid conversion. */
static void random_conversion(struct conversion *c)
{
	static const uint64_t modes[] = { MODE_NONE, MODE_ZERO, MODE_PRESERVE };

	c->what = "random";
	c->first = rand() % NR_PAGES;
	c->nr = 1 + rand() % (NR_PAGES - c->first);
	c->attrs = rand() % 2 ? PRIVATE : SHARED;
	/* v8 has no content modes: its one valid request has flags = 0. */
	c->mode = GMEM_RFC_V5 ? modes[rand() % 3] : MODE_NONE;
	/* ZERO is for memory becoming shared. */
	if (c->attrs == PRIVATE && c->mode == MODE_ZERO)
		c->mode = MODE_NONE;
}

static const struct conversion all_shared = {
	"the whole file to shared", NULL, 0, NR_PAGES, SHARED, MODE_NONE,
};

/*
 * Sweep each of @chain from layout @letters, then the whole file to
 * shared, which lets the host read what private pages hold: every byte
 * must be what the conversions that succeeded made of it.
 */
static bool sweep_chain(struct __test_metadata *_metadata,
			FIXTURE_DATA(inject) *self, const char *letters,
			const struct conversion *chain, int len)
{
	struct layout cur;
	int i, f;

	layout_parse(&cur, letters);
	layout_set(&self->g, &cur);
	if (!layout_check(_metadata, &self->g, &cur, true))
		return false;
	for (i = 0; i <= len; i++) {
		const struct conversion *c = i < len ? &chain[i] : &all_shared;

		f = sweep(_metadata, self, &cur, c);
		if (f < 0) {
			TH_LOG("layout %s, conversion %d: pages %d+%d to %s, mode %#lx",
			       letters, i, c->first, c->nr,
			       c->attrs ? "private" : "shared", c->mode);
			return false;
		}
		self->failures += f;
	}
	return true;
}

/*
 * Attribute-tree nodes in use (and the process's VMA tree's), or -1
 * without SLUB_DEBUG: freed ones are given back after an RCU grace
 * period, and the cache's per-CPU slabs and KASAN quarantine by a shrink.
 */
static long maple_nodes(void)
{
	TEST_ASSERT(!syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0),
		    "membarrier");
	usleep(100000);
	if (!gmem_write_file(MAPLE_NODE "/shrink", "1"))
		return -1;
	return read_long(MAPLE_NODE "/objects");
}

static void report(FIXTURE_DATA(inject) *self, long slab0, long page0,
		   time_t t0)
{
	long slab = slab0 - read_long(DEBUGFS "/failslab/times");
	long pages = page0 - read_long(DEBUGFS "/fail_page_alloc/times");

	ksft_print_msg("%lu injected failures (failslab %ld, fail_page_alloc %ld) in %lu calls, %lu survived by a fallback, %ld s\n",
		       self->failures, slab, pages, self->calls,
		       self->tolerated, (long)(time(NULL) - t0));
}

/*
 * The named conversions cover each direction and content mode, ranges
 * over one or many attribute ranges, allocated and unallocated pages;
 * chains of random ones follow, from a fixed seed.
 */
TEST_F_TIMEOUT(inject, failed_conversions_change_nothing, 900)
{
	long slab0 = read_long(DEBUGFS "/failslab/times");
	long page0 = read_long(DEBUGFS "/fail_page_alloc/times");
	struct conversion chain[CHAIN];
	char layout[NR_PAGES + 1];
	long nodes0 = maple_nodes(), nodes;
	time_t t0 = time(NULL);
	int i, j;

	for (i = 0; i < ARRAY_SIZE(named); i++) {
		ASSERT_TRUE(sweep_chain(_metadata, self, named[i].layout,
					&named[i], 1));
	}

	srand(1);
	for (i = 0; i < RANDOM_LAYOUTS; i++) {
		random_layout(layout);
		for (j = 0; j < CHAIN; j++)
			random_conversion(&chain[j]);
		ASSERT_TRUE(sweep_chain(_metadata, self, layout, chain, CHAIN));
	}
	report(self, slab0, page0, t0);
	/* Conversions that allocate must have been failed. */
	ASSERT_GT(self->failures, 0);

	/* The file is one shared range again, as it started. */
	nodes = maple_nodes();
	if (nodes0 >= 0) {
		ksft_print_msg("maple_node objects: %+ld\n", nodes - nodes0);
		EXPECT_LE(nodes - nodes0, NODES_BOUND);
	}
}

TEST_HARNESS_MAIN
