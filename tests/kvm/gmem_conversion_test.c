// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_SET_MEMORY_ATTRIBUTES2: in-place conversion of an mmap()ed guest_memfd
 * between shared and private, as seen by the host, by a vCPU, and by the
 * errors the ioctl returns.  Needs in-place conversion switched on
 * (kvm.vm_memory_attributes=0 on 6.12, kvm.gmem_in_place_conversion=1 on 7.3).
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <mm/gup_test.h>

#include "gmem.h"
#include "kselftest_harness.h"

#define NR_PAGES	16

static size_t page;

static void guest_idle(void)
{
	GUEST_DONE();
}

static uint8_t *page_at(struct gmem_vm *g, int i)
{
	return g->mem + i * page;
}

static bool host_can_read(struct gmem_vm *g, int i)
{
	uint8_t v;

	return gmem_host_read(page_at(g, i), &v);
}

/* The shared pages of @g, as a bitmap of the first NR_PAGES pages. */
static uint32_t shared_map(struct gmem_vm *g)
{
	uint32_t map = 0;
	int i;

	for (i = 0; i < NR_PAGES; i++)
		map |= host_can_read(g, i) << i;
	return map;
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = seed + i * 7;
}

static size_t count_matching(const uint8_t *p, size_t len, uint8_t seed)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += p[i] == (uint8_t)(seed + i * 7);
	return n;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return !p[0] && !memcmp(p, p + 1, len - 1);
}

FIXTURE(gmem) {
	struct gmem_vm g;
};

FIXTURE_SETUP(gmem)
{
	page = getpagesize();
	GMEM_REQUIRE_IN_PLACE();
	gmem_vm_create(&self->g, 1, guest_idle, NR_PAGES * page,
		       GUEST_MEMFD_FLAG_INIT_SHARED);
}

FIXTURE_TEARDOWN(gmem)
{
	if (self->g.vm)
		gmem_vm_free(&self->g);
}

/* The ABIs in which an input is bad: both, or RFC v5's or v8's only. */
enum { BOTH_ABIS, RFC_V5_ONLY, V8_ONLY };

struct bad_input {
	const char *what;
	struct kvm_memory_attributes2 args;
	int reserved;		/* index + 1 of a reserved word to set */
	int err;
	int abi;
};

#define PG(n)	((n) * 4096ULL)

static const struct bad_input bad_inputs[] = {
	{ "unaligned offset", { .offset = 1, .size = PG(1), .attributes = PRIVATE }, 0, EINVAL },
	{ "unaligned size", { .offset = 0, .size = 100, .attributes = PRIVATE }, 0, EINVAL },
	{ "zero size", { .offset = 0, .size = 0, .attributes = PRIVATE }, 0, EINVAL },
	{ "offset + size overflows", { .offset = PG(1), .size = -PG(1), .attributes = PRIVATE }, 0, EINVAL },
	{ "range past the end", { .offset = PG(NR_PAGES - 1), .size = PG(2), .attributes = PRIVATE }, 0, EINVAL },
	{ "offset at the end", { .offset = PG(NR_PAGES), .size = PG(1), .attributes = PRIVATE }, 0, EINVAL },
	{ "unknown attribute", { .offset = 0, .size = PG(1), .attributes = 1ULL << 0 }, 0, EINVAL },
	{ "high attribute bit", { .offset = 0, .size = PG(1), .attributes = PRIVATE | 1ULL << 63 }, 0, EINVAL },
	{ "unknown flag", { .offset = 0, .size = PG(1), .attributes = PRIVATE, .flags = 1ULL << 2 }, 0, EINVAL },
	{ "high flag bit", { .offset = 0, .size = PG(1), .flags = 1ULL << 63 }, 0, EINVAL },
	{ "ZERO and PRESERVE", { .offset = 0, .size = PG(1), .flags = MODE_ZERO | MODE_PRESERVE }, 0, EINVAL },
	{ "reserved[0] set", { .offset = 0, .size = PG(1), .attributes = PRIVATE }, 1, EINVAL },
	{ "reserved[5] set", { .offset = 0, .size = PG(1), .attributes = PRIVATE }, 6, EINVAL },
	{ "reserved[10] set", { .offset = 0, .size = PG(1), .attributes = PRIVATE }, 11, EINVAL },
	{ "ZERO towards private", { .offset = 0, .size = PG(1), .attributes = PRIVATE, .flags = MODE_ZERO }, 0, EOPNOTSUPP, RFC_V5_ONLY },
	{ "a content mode", { .offset = 0, .size = PG(1), .attributes = PRIVATE, .flags = MODE_ZERO }, 0, EINVAL, V8_ONLY },
	{ "PRESERVE", { .offset = 0, .size = PG(1), .flags = MODE_PRESERVE }, 0, EINVAL, V8_ONLY },
};

static bool bad_in_this_abi(const struct bad_input *b)
{
	return b->abi == BOTH_ABIS || (b->abi == RFC_V5_ONLY) == GMEM_RFC_V5;
}

TEST_F(gmem, bad_input_fails_and_changes_nothing)
{
	uint32_t all_shared = (1u << NR_PAGES) - 1;
	int i;

	ASSERT_EQ(page, 4096);
	fill(page_at(&self->g, 0), page, 42);

	for (i = 0; i < ARRAY_SIZE(bad_inputs); i++) {
		struct kvm_memory_attributes2 args = bad_inputs[i].args;

		if (!bad_in_this_abi(&bad_inputs[i]))
			continue;
		if (bad_inputs[i].reserved)
			args.reserved[bad_inputs[i].reserved - 1] = 1;

		errno = 0;
		EXPECT_EQ(ioctl(self->g.fd, KVM_SET_MEMORY_ATTRIBUTES2, &args), -1)
			TH_LOG("%s: accepted", bad_inputs[i].what);
		EXPECT_EQ(errno, bad_inputs[i].err)
			TH_LOG("%s: errno %d", bad_inputs[i].what, errno);
		EXPECT_EQ(shared_map(&self->g), all_shared)
			TH_LOG("%s: attributes changed", bad_inputs[i].what);
	}

	EXPECT_EQ(ioctl(self->g.fd, KVM_SET_MEMORY_ATTRIBUTES2, NULL), -1);
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(count_matching(page_at(&self->g, 0), page, 42), page);
}

TEST_F(gmem, conversion_changes_only_the_requested_pages)
{
	gmem_convert(self->g.fd, PG(5), PG(1), PRIVATE, MODE_KEEP);
	ASSERT_EQ(shared_map(&self->g), 0xffff & ~(1u << 5));

	gmem_convert(self->g.fd, PG(8), PG(4), PRIVATE, MODE_KEEP);
	ASSERT_EQ(shared_map(&self->g), 0xffff & ~(1u << 5) & ~0x0f00u);

	gmem_convert(self->g.fd, PG(9), PG(1), SHARED, MODE_KEEP);
	ASSERT_EQ(shared_map(&self->g), 0xffff & ~(1u << 5) & ~0x0d00u);

	gmem_convert(self->g.fd, 0, PG(NR_PAGES), PRIVATE, MODE_KEEP);
	ASSERT_EQ(shared_map(&self->g), 0);
}

TEST_F(gmem, conversion_before_allocation)
{
	/* Nothing is allocated yet: attributes still apply page by page. */
	gmem_convert(self->g.fd, PG(2), PG(3), PRIVATE, MODE_NONE);
	gmem_convert(self->g.fd, PG(3), PG(1), SHARED, MODE_NONE);
	ASSERT_EQ(shared_map(&self->g), 0xffff & ~((1u << 2) | (1u << 4)));
	ASSERT_TRUE(all_zero(page_at(&self->g, 3), page));
}

TEST_F(gmem, preserve_keeps_data_across_folio_layouts)
{
	int i;

	/* Allocated, written, punched and untouched pages side by side. */
	ASSERT_EQ(fallocate(self->g.fd, FALLOC_FL_KEEP_SIZE, PG(0), PG(4)), 0);
	for (i = 0; i < NR_PAGES; i += 2)
		fill(page_at(&self->g, i), page, i);
	ASSERT_EQ(fallocate(self->g.fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			    PG(4), PG(1)), 0);

	gmem_convert(self->g.fd, PG(1), PG(NR_PAGES - 2), PRIVATE, MODE_KEEP);
	gmem_convert(self->g.fd, 0, PG(NR_PAGES), SHARED, MODE_KEEP);

	for (i = 0; i < NR_PAGES; i++) {
		bool written = !(i & 1) && i != 4;

		if (written) {
			EXPECT_EQ(count_matching(page_at(&self->g, i), page, i),
				  page) TH_LOG("page %d lost its data", i);
		} else {
			EXPECT_TRUE(all_zero(page_at(&self->g, i), page))
				TH_LOG("page %d is not zero", i);
		}
	}
}

TEST_F(gmem, hole_punch_keeps_attributes_and_resets_shared_memory)
{
	fill(page_at(&self->g, 0), 2 * page, 9);
	gmem_convert(self->g.fd, PG(1), PG(1), PRIVATE, MODE_KEEP);

	ASSERT_EQ(fallocate(self->g.fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			    0, PG(2)), 0);

	ASSERT_EQ(shared_map(&self->g), 0xffff & ~(1u << 1));
	ASSERT_TRUE(all_zero(page_at(&self->g, 0), page));
}

static unsigned long vmstat(const char *key)
{
	unsigned long value;
	bool found = false;
	char name[64];
	FILE *f;

	/* Fold the per-CPU differences into the counts first. */
	TEST_ASSERT(gmem_write_file("/proc/sys/vm/stat_refresh", "1"),
		    "/proc/sys/vm/stat_refresh");
	f = fopen("/proc/vmstat", "r");
	TEST_ASSERT(f, "/proc/vmstat");
	while (!found && fscanf(f, "%63s %lu", name, &value) == 2)
		found = !strcmp(name, key);
	fclose(f);
	TEST_ASSERT(found, "no %s in /proc/vmstat", key);
	return value;
}

/*
 * guest_memfd's folios are unevictable and go on the LRU as soon as they
 * are added, not when a per-CPU batch is drained: a conversion to private
 * must not find them held by a batch (and drain every CPU's), and the
 * unevictable count must follow the file exactly.  They are not mlocked.
 */
TEST_F(gmem, new_pages_are_on_the_unevictable_lru_at_once)
{
	unsigned long unevictable = vmstat("nr_unevictable");
	unsigned long mlocked = vmstat("nr_mlock");
	int i;

	GMEM_REQUIRE_RFC_V5(GMEM_V5_LRU_AT_ONCE);
	for (i = 0; i < NR_PAGES; i++)
		*page_at(&self->g, i) = i;
	EXPECT_EQ(vmstat("nr_unevictable") - unevictable, NR_PAGES);

	ASSERT_EQ(fallocate(self->g.fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			    0, PG(NR_PAGES)), 0);
	EXPECT_EQ(vmstat("nr_unevictable"), unevictable);
	EXPECT_EQ(vmstat("nr_mlock"), mlocked);
}

/* Bytes of @p that still hold what fill(@seed) wrote there. */
static size_t unchanged(struct gmem_vm *g, int first, int nr, uint8_t seed)
{
	return count_matching(page_at(g, first), nr * page, seed);
}

/*
 * Upstream v5: a request changes only the attributes that differ, but its
 * content mode applies to the whole range, whether all, some or none of
 * it changes attributes.
 */
TEST_F(gmem, content_mode_applies_to_the_whole_range)
{
	struct gmem_vm *g = &self->g;

	GMEM_REQUIRE_RFC_V5(GMEM_V5_CONTENT_MODES);
	/* None changes: all shared already. */
	fill(page_at(g, 0), 4 * page, 3);
	gmem_convert(g->fd, 0, PG(2), SHARED, MODE_PRESERVE);
	ASSERT_EQ(unchanged(g, 0, 4, 3), 4 * page);
	gmem_convert(g->fd, 0, PG(2), SHARED, MODE_NONE);
	ASSERT_EQ(unchanged(g, 0, 4, 3), 4 * page);
	gmem_convert(g->fd, 0, PG(2), SHARED, MODE_ZERO);
	ASSERT_TRUE(all_zero(page_at(g, 0), 2 * page));
	ASSERT_EQ(count_matching(page_at(g, 2), 2 * page, 3 + 2 * page * 7),
		  2 * page);
	ASSERT_EQ(shared_map(g), 0xffff);

	/* Some change: page 5 private, [4, 8) to shared. */
	fill(page_at(g, 4), 4 * page, 8);
	gmem_convert(g->fd, PG(5), PG(1), PRIVATE, MODE_PRESERVE);
	gmem_convert(g->fd, PG(4), PG(4), SHARED, MODE_NONE);
	ASSERT_EQ(unchanged(g, 4, 4, 8), 4 * page);
	gmem_convert(g->fd, PG(5), PG(1), PRIVATE, MODE_PRESERVE);
	gmem_convert(g->fd, PG(4), PG(4), SHARED, MODE_ZERO);
	ASSERT_TRUE(all_zero(page_at(g, 4), 4 * page));
	ASSERT_EQ(shared_map(g), 0xffff);

	/* None changes, all private: flags = 0 keeps every byte too. */
	fill(page_at(g, 8), 2 * page, 21);
	gmem_convert(g->fd, PG(8), PG(2), PRIVATE, MODE_PRESERVE);
	gmem_convert(g->fd, PG(8), PG(2), PRIVATE, MODE_NONE);
	gmem_convert(g->fd, PG(8), PG(2), SHARED, MODE_PRESERVE);
	ASSERT_EQ(unchanged(g, 8, 2, 21), 2 * page);
}

/* RFC v5 reads error_offset on input too: it must be 0. */
TEST_F(gmem, error_offset_set_on_input_is_refused)
{
	struct kvm_memory_attributes2 args = {
		.offset = 0, .size = PG(1), .attributes = PRIVATE,
		.error_offset = 1,
	};

	GMEM_REQUIRE_RFC_V5(GMEM_V5_ERROR_OFFSET_IN);
	ASSERT_EQ(ioctl(self->g.fd, KVM_SET_MEMORY_ATTRIBUTES2, &args), -1);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_EQ(shared_map(&self->g), 0xffff);
}

/* Past the argument checks, error_offset says where a request failed. */
TEST_F(gmem, error_offset_on_every_failure_after_the_checks)
{
	struct kvm_memory_attributes2 args = {
		.offset = PG(3), .size = PG(2), .attributes = PRIVATE,
		.flags = MODE_ZERO,
	};

	GMEM_REQUIRE_RFC_V5(GMEM_V5_CONTENT_MODES);
	ASSERT_EQ(ioctl(self->g.fd, KVM_SET_MEMORY_ATTRIBUTES2, &args), -1);
	ASSERT_EQ(errno, EOPNOTSUPP);
	ASSERT_EQ(args.error_offset, PG(3));

	/* Argument checks fail before anything is written back. */
	args.error_offset = 0;
	args.size = PG(NR_PAGES);
	ASSERT_EQ(ioctl(self->g.fd, KVM_SET_MEMORY_ATTRIBUTES2, &args), -1);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_EQ(args.error_offset, 0);
}

/* Maximal runs of equal attributes among the @n pages of @private. */
static unsigned long runs(const bool *private, size_t n)
{
	unsigned long runs = 1;
	size_t i;

	for (i = 1; i < n; i++)
		runs += private[i] != private[i - 1];
	return runs;
}

/* A guest_memfd of @nr_pages for @vm, mappable and all shared. */
static int shared_gmem(struct kvm_vm *vm, size_t nr_pages)
{
	return vm_create_guest_memfd(vm, nr_pages * page,
				     GUEST_MEMFD_FLAG_MMAP |
				     GUEST_MEMFD_FLAG_INIT_SHARED);
}

/*
 * The attribute tree merges equal neighbours on every store: it holds one
 * entry per run of equal attributes, whatever order pages were converted
 * in, and one entry once the file is all shared again.
 */
TEST_F(gmem, attribute_tree_holds_one_entry_per_run)
{
	static const int order[NR_PAGES] = {
		0, 2, 4, 6, 8, 10, 12, 14, 15, 13, 11, 9, 7, 5, 3, 1,
	};
	bool private[NR_PAGES] = {};
	int i;

	for (i = 0; i < NR_PAGES; i++) {
		gmem_convert(self->g.fd, PG(order[i]), PG(1), PRIVATE, MODE_NONE);
		private[order[i]] = true;
		ASSERT_EQ(gmem_fdinfo_ulong(self->g.fd, "gmem_ranges"),
			  runs(private, NR_PAGES))
			TH_LOG("after page %d", order[i]);
	}
	for (i = NR_PAGES - 1; i >= 0; i--) {
		gmem_convert(self->g.fd, PG(order[i]), PG(1), SHARED, MODE_NONE);
		private[order[i]] = false;
		ASSERT_EQ(gmem_fdinfo_ulong(self->g.fd, "gmem_ranges"),
			  runs(private, NR_PAGES))
			TH_LOG("after page %d", order[i]);
	}
	ASSERT_EQ(gmem_fdinfo_ulong(self->g.fd, "gmem_ranges"), 1);
}

/* fdinfo's summary covers the whole file in cells of equal size. */
TEST_F(gmem, fdinfo_summary_shows_the_whole_layout)
{
	char summary[128];

	gmem_convert(self->g.fd, PG(4), PG(4), PRIVATE, MODE_NONE);
	gmem_convert(self->g.fd, PG(9), PG(1), PRIVATE, MODE_NONE);
	ASSERT_TRUE(gmem_fdinfo(self->g.fd, "gmem_summary", summary, sizeof(summary)));
	/* 16 pages: one page per cell. */
	ASSERT_STREQ(summary, "ssssppppspssssss");
	ASSERT_EQ(gmem_fdinfo_ulong(self->g.fd, "gmem_summary_cell"), page);
}

TEST_F(gmem, fdinfo_summary_marks_mixed_cells)
{
	int fd = shared_gmem(self->g.vm, 130);
	char summary[128], want[64];

	/* 130 pages in cells of 3: 44 cells, the last one of a single page. */
	gmem_convert(fd, PG(1), PG(1), PRIVATE, MODE_NONE);
	gmem_convert(fd, PG(6), PG(6), PRIVATE, MODE_NONE);
	gmem_convert(fd, PG(129), PG(1), PRIVATE, MODE_NONE);
	memset(want, 's', 44);
	want[0] = 'm';
	want[2] = want[3] = 'p';
	want[43] = 'p';
	want[44] = 0;

	ASSERT_EQ(gmem_fdinfo_ulong(fd, "gmem_summary_cell"), 3 * page);
	ASSERT_TRUE(gmem_fdinfo(fd, "gmem_summary", summary, sizeof(summary)));
	ASSERT_STREQ(summary, want);
	close(fd);
}

/*
 * flags = 0 changes no byte in either direction: VMMs written against
 * upstream's later postings, which have no content modes, pass 0 and
 * expect their guest's memory to stay as it is.  Each direction is
 * checked on its own, the other one done with PRESERVE, so that two
 * changes cannot cancel out, and then both together.  Pages that hold
 * data, a page only fallocate()d and a page never allocated are in the
 * range: the last two still read zeros.
 */
TEST_F(gmem, unspecified_mode_keeps_every_byte)
{
	static const struct {
		uint64_t to_private, to_shared;
	} trips[] = {
		{ MODE_NONE, MODE_KEEP },
		{ MODE_KEEP, MODE_NONE },
		{ MODE_NONE, MODE_NONE },
	};
	struct gmem_vm *g = &self->g;
	int i;

	for (i = 0; i < ARRAY_SIZE(trips); i++) {
		uint8_t seed = 77 + i;

		fill(page_at(g, 0), 4 * page, seed);
		ASSERT_EQ(fallocate(g->fd, FALLOC_FL_KEEP_SIZE, PG(4), PG(1)), 0);
		ASSERT_EQ(fallocate(g->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				    PG(5), PG(1)), 0);

		gmem_convert(g->fd, 0, PG(6), PRIVATE, trips[i].to_private);
		ASSERT_EQ(shared_map(g), 0xffff & ~0x3fu);
		gmem_convert(g->fd, 0, PG(6), SHARED, trips[i].to_shared);

		ASSERT_EQ(unchanged(g, 0, 4, seed), 4 * page)
			TH_LOG("to private with flags %#lx, back with %#lx",
			       trips[i].to_private, trips[i].to_shared);
		ASSERT_TRUE(all_zero(page_at(g, 4), 2 * page))
			TH_LOG("to private with flags %#lx, back with %#lx",
			       trips[i].to_private, trips[i].to_shared);
	}
}

#define HOST_TAG	0x4853u		/* "HS": written by the host */
#define GUEST_TAG	0x4753u		/* "GS": written by the guest */

/* Word @i of the page that party @tag writes; the guest computes it too. */
static inline uint64_t tagged_word(uint64_t tag, int i)
{
	return tag << 48 | (i * 0x9e3779b97f4aULL & ((1ULL << 48) - 1));
}

/* The guest side of the flow below: page 0 is the host's, page 1 its own. */
static void guest_keeps_mapped_pages(void)
{
	uint64_t *host_page = (uint64_t *)GMEM_DATA_GPA;
	uint64_t *guest_page = (uint64_t *)(GMEM_DATA_GPA + 4096);
	int i;

	/* Read the host's page and write its own: KVM maps both. */
	for (i = 0; i < 512; i++) {
		GUEST_ASSERT_EQ(READ_ONCE(host_page[i]), tagged_word(HOST_TAG, i));
		WRITE_ONCE(guest_page[i], tagged_word(GUEST_TAG, i));
	}
	GUEST_SYNC(1);

	/* Requests for the attributes each page had already, flags = 0. */
	for (i = 0; i < 512; i++) {
		GUEST_ASSERT_EQ(READ_ONCE(host_page[i]), tagged_word(HOST_TAG, i));
		GUEST_ASSERT_EQ(READ_ONCE(guest_page[i]), tagged_word(GUEST_TAG, i));
	}
	GUEST_SYNC(2);

	/* The host's page went private with flags = 0. */
	for (i = 0; i < 512; i++)
		GUEST_ASSERT_EQ(READ_ONCE(host_page[i]), tagged_word(HOST_TAG, i));
	GUEST_DONE();
}

static bool page_holds(const uint8_t *p, uint64_t tag)
{
	const uint64_t *w = (const uint64_t *)p;
	int i;

	for (i = 0; i < 512; i++)
		if (w[i] != tagged_word(tag, i))
			return false;
	return true;
}

/*
 * A request whose range already has the attributes asked for changes no
 * attribute, and with flags = 0 no byte either: not while the host maps
 * the page (shared, written by the host), nor while the guest has it
 * mapped (private, written by the guest).  Then real conversions with
 * flags = 0 hand each page over intact: the guest's page to the host,
 * the host's page to the guest.
 */
TEST(unspecified_mode_keeps_what_host_and_guest_wrote)
{
	struct ucall uc;
	struct gmem_vm g;
	uint64_t *w;
	int i;

	page = getpagesize();
	GMEM_REQUIRE_IN_PLACE();
	gmem_vm_create(&g, 1, guest_keeps_mapped_pages, 2 * page,
		       GUEST_MEMFD_FLAG_INIT_SHARED);
	w = (uint64_t *)g.mem;
	for (i = 0; i < 512; i++)
		w[i] = tagged_word(HOST_TAG, i);
	gmem_convert(g.fd, PG(1), PG(1), PRIVATE, MODE_NONE);
	ASSERT_EQ(gmem_run_to_ucall(g.vcpus[0], &uc), UCALL_SYNC);

	gmem_convert(g.fd, 0, PG(1), SHARED, MODE_NONE);
	gmem_convert(g.fd, PG(1), PG(1), PRIVATE, MODE_NONE);
	ASSERT_TRUE(page_holds(g.mem, HOST_TAG));
	ASSERT_FALSE(host_can_read(&g, 1));
	ASSERT_EQ(gmem_run_to_ucall(g.vcpus[0], &uc), UCALL_SYNC);

	gmem_convert(g.fd, 0, PG(1), PRIVATE, MODE_NONE);
	gmem_convert(g.fd, PG(1), PG(1), SHARED, MODE_NONE);
	ASSERT_TRUE(page_holds(g.mem + page, GUEST_TAG));
	ASSERT_EQ(gmem_run_to_ucall(g.vcpus[0], &uc), UCALL_DONE);
	gmem_vm_free(&g);
}

TEST_F(gmem, zero_mode_zeroes_the_whole_range)
{
	GMEM_REQUIRE_RFC_V5(GMEM_V5_CONTENT_MODES);
	fill(page_at(&self->g, 0), 4 * page, 1);
	gmem_convert(self->g.fd, 0, PG(3), PRIVATE, MODE_PRESERVE);
	gmem_convert(self->g.fd, 0, PG(3), SHARED, MODE_ZERO);

	ASSERT_TRUE(all_zero(page_at(&self->g, 0), 3 * page));
	ASSERT_EQ(count_matching(page_at(&self->g, 3), page, 1 + 3 * page * 7),
		  page);
}

/*
 * The security boundary: once private, the page is out of reach of every
 * kernel path that reads user memory on the host's behalf, not just of
 * direct loads.
 */
TEST_F(gmem, kernel_paths_cannot_read_private_memory)
{
	uint8_t *p = page_at(&self->g, 0), buf[4096];
	struct iovec local = { .iov_base = buf, .iov_len = page };
	struct iovec remote = { .iov_base = p, .iov_len = page };
	int pipefd[2], mem;

	fill(p, page, 99);
	gmem_convert(self->g.fd, 0, PG(1), PRIVATE, MODE_KEEP);

	mem = open("/proc/self/mem", O_RDONLY);
	ASSERT_GE(mem, 0);
	EXPECT_EQ(pread(mem, buf, page, (uintptr_t)p), -1);
	EXPECT_EQ(errno, EIO);
	close(mem);

	EXPECT_EQ(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), -1);
	EXPECT_EQ(errno, EFAULT);

	ASSERT_EQ(pipe(pipefd), 0);
	EXPECT_EQ(write(pipefd[1], p, page), -1);
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(vmsplice(pipefd[1], &remote, 1, 0), -1);
	EXPECT_EQ(errno, EFAULT);
	close(pipefd[0]);
	close(pipefd[1]);

	/* The data is still there for whoever may read it again. */
	gmem_convert(self->g.fd, 0, PG(1), SHARED, MODE_KEEP);
	EXPECT_EQ(count_matching(p, page, 99), page);
}

/* A pipe holds a reference to a page vmsplice()d into it until read. */
static void splice_page(int pipefd[2], void *p)
{
	struct iovec iov = { .iov_base = p, .iov_len = page };

	TEST_ASSERT(!pipe(pipefd), "pipe");
	TEST_ASSERT(vmsplice(pipefd[1], &iov, 1, 0) == page, "vmsplice");
}

static void drain_pipe(int pipefd[2])
{
	char buf[4096];

	TEST_ASSERT(read(pipefd[0], buf, sizeof(buf)) == page, "read pipe");
	close(pipefd[0]);
	close(pipefd[1]);
}

TEST_F(gmem, spliced_page_gives_eagain_at_its_offset)
{
	uint64_t error_offset = 0;
	int pipefd[2];

	fill(page_at(&self->g, 0), NR_PAGES * page, 5);
	splice_page(pipefd, page_at(&self->g, 6));

	ASSERT_EQ(gmem_set_attrs(self->g.fd, PG(2), PG(8), PRIVATE, MODE_KEEP,
				 &error_offset), -EAGAIN);
	ASSERT_EQ(error_offset, PG(6));
	ASSERT_EQ(shared_map(&self->g), 0xffff);

	drain_pipe(pipefd);
	gmem_convert(self->g.fd, PG(2), PG(8), PRIVATE, MODE_KEEP);
	ASSERT_EQ(shared_map(&self->g), 0xffff & ~0x03fcu);
	gmem_convert(self->g.fd, 0, PG(NR_PAGES), SHARED, MODE_KEEP);
	ASSERT_EQ(count_matching(page_at(&self->g, 0), NR_PAGES * page, 5),
		  NR_PAGES * page);
}

TEST_F(gmem, longterm_pin_gives_eagain_until_unpinned)
{
	struct pin_longterm_test pin = {
		.addr = (uintptr_t)page_at(&self->g, 11),
		.size = page,
	};
	uint64_t error_offset = 0;
	int fd = open("/sys/kernel/debug/gup_test", O_RDWR);

	if (fd < 0)
		SKIP(return, "no /sys/kernel/debug/gup_test (CONFIG_GUP_TEST)");

	*page_at(&self->g, 11) = 1;
	ASSERT_EQ(ioctl(fd, PIN_LONGTERM_TEST_START, &pin), 0);
	ASSERT_EQ(gmem_set_attrs(self->g.fd, 0, PG(NR_PAGES), PRIVATE, MODE_KEEP,
				 &error_offset), -EAGAIN);
	ASSERT_EQ(error_offset, PG(11));
	ASSERT_EQ(shared_map(&self->g), 0xffff);

	ASSERT_EQ(ioctl(fd, PIN_LONGTERM_TEST_STOP), 0);
	close(fd);
	gmem_convert(self->g.fd, 0, PG(NR_PAGES), PRIVATE, MODE_KEEP);
	ASSERT_EQ(shared_map(&self->g), 0);
}

/*
 * A file that no process maps any more still has its references checked:
 * in a range over many nodes of the page cache, the first busy page fails
 * the conversion, then the next once the first is free, and busy pages
 * just outside the range never do.
 */
TEST(eagain_reports_the_first_busy_page_after_munmap)
{
	const size_t nr_pages = 4096, first = 64, last = nr_pages - 64;
	const size_t busy[] = { 1100, 3000, first - 1, last };
	int pipes[ARRAY_SIZE(busy)][2];
	uint64_t error_offset;
	struct kvm_vm *vm;
	uint8_t *mem;
	size_t i;
	int fd;

	page = getpagesize();
	GMEM_REQUIRE_IN_PLACE();
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	fd = shared_gmem(vm, nr_pages);
	mem = mmap(NULL, nr_pages * page, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	ASSERT_NE(mem, MAP_FAILED);
	for (i = 0; i < nr_pages; i++)
		mem[i * page] = 1;
	for (i = 0; i < ARRAY_SIZE(busy); i++)
		splice_page(pipes[i], mem + busy[i] * page);
	munmap(mem, nr_pages * page);

	for (i = 0; i < 2; i++) {
		error_offset = 0;
		ASSERT_EQ(gmem_set_attrs(fd, PG(first), PG(last - first), PRIVATE,
					 MODE_KEEP, &error_offset), -EAGAIN);
		ASSERT_EQ(error_offset, PG(busy[i]));
		ASSERT_EQ(gmem_fdinfo_ulong(fd, "gmem_private_pages"), 0);
		drain_pipe(pipes[i]);
	}
	gmem_convert(fd, PG(first), PG(last - first), PRIVATE, MODE_KEEP);
	ASSERT_EQ(gmem_fdinfo_ulong(fd, "gmem_private_pages"), last - first);

	for (; i < ARRAY_SIZE(busy); i++)
		drain_pipe(pipes[i]);
	close(fd);
	kvm_vm_free(vm);
}

TEST_F(gmem, status_is_the_same_in_every_process)
{
	int to_child[2], to_parent[2], status;
	char c;
	pid_t pid;

	*page_at(&self->g, 0) = 'P';
	ASSERT_EQ(pipe(to_child), 0);
	ASSERT_EQ(pipe(to_parent), 0);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		uint8_t v = 0;

		/* Step 1: private, so SIGBUS.  Step 2: shared again. */
		read(to_child[0], &c, 1);
		if (gmem_host_read(page_at(&self->g, 0), &v))
			_exit(1);
		write(to_parent[1], "1", 1);
		read(to_child[0], &c, 1);
		if (!gmem_host_read(page_at(&self->g, 0), &v) || v != 'P')
			_exit(2);
		_exit(0);
	}

	/*
	 * fork() copies no PTEs of a shared file mapping, so the child's
	 * accesses fault afresh: this checks what a fault sees in another
	 * process.  That a conversion unmaps pages other processes have
	 * faulted in is iso.conversion_unmaps_the_page_from_other_processes.
	 */
	gmem_convert(self->g.fd, 0, PG(1), PRIVATE, MODE_KEEP);
	write(to_child[1], "1", 1);
	read(to_parent[0], &c, 1);
	gmem_convert(self->g.fd, 0, PG(1), SHARED, MODE_KEEP);
	write(to_child[1], "2", 1);

	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* Host and vCPU take turns to read, check and write one page. */
static void guest_rmw(void)
{
	volatile uint8_t *p = (uint8_t *)GMEM_DATA_GPA;

	GUEST_SYNC(1);
	GUEST_ASSERT_EQ(*p, 0xa1);
	*p = 0xb2;
	GUEST_SYNC(2);
	GUEST_ASSERT_EQ(*p, 0xc3);
	*p = 0xd4;
	GUEST_DONE();
}

static void single_page_flow(struct __test_metadata *_metadata, uint64_t flags)
{
	struct gmem_vm g;
	struct ucall uc;
	uint8_t v;

	page = getpagesize();
	GMEM_REQUIRE_IN_PLACE();
	gmem_vm_create(&g, 1, guest_rmw, page, flags);

	if (!(flags & GUEST_MEMFD_FLAG_INIT_SHARED)) {
		ASSERT_FALSE(gmem_host_read(g.mem, &v));
		gmem_convert(g.fd, 0, page, SHARED, MODE_ZERO_OR_NONE);
	}
	ASSERT_TRUE(gmem_host_write(g.mem, 0xa1));

	ASSERT_EQ(gmem_run_to_ucall(g.vcpus[0], &uc), UCALL_SYNC);
	gmem_convert(g.fd, 0, page, PRIVATE, MODE_KEEP);
	ASSERT_FALSE(gmem_host_read(g.mem, &v));
	ASSERT_FALSE(gmem_host_write(g.mem, 0));

	ASSERT_EQ(gmem_run_to_ucall(g.vcpus[0], &uc), UCALL_SYNC);
	ASSERT_FALSE(gmem_host_read(g.mem, &v));
	gmem_convert(g.fd, 0, page, SHARED, MODE_KEEP);
	ASSERT_TRUE(gmem_host_read(g.mem, &v));
	ASSERT_EQ(v, 0xb2);
	ASSERT_TRUE(gmem_host_write(g.mem, 0xc3));

	ASSERT_EQ(gmem_run_to_ucall(g.vcpus[0], &uc), UCALL_DONE);
	ASSERT_EQ(*g.mem, 0xd4);
	gmem_vm_free(&g);
}

TEST(single_page_flow_init_shared)
{
	single_page_flow(_metadata, GUEST_MEMFD_FLAG_INIT_SHARED);
}

TEST(single_page_flow_init_private)
{
	single_page_flow(_metadata, 0);
}

static void guest_touch(void)
{
	*(volatile uint8_t *)GMEM_DATA_GPA = 1;
	GUEST_DONE();
}

TEST(guest_access_after_guest_memfd_is_gone_exits_to_userspace)
{
	struct kvm_vcpu *vcpu;
	struct gmem_vm g;

	page = getpagesize();
	GMEM_REQUIRE_IN_PLACE();
	gmem_vm_create(&g, 1, guest_touch, page, 0);
	vcpu = g.vcpus[0];

	/* Drop every reference: ours, the library's dup() and the mapping. */
	close(memslot2region(g.vm, GMEM_DATA_SLOT)->region.guest_memfd);
	memslot2region(g.vm, GMEM_DATA_SLOT)->region.guest_memfd = -1;
	munmap(g.mem, page);
	close(g.fd);

	/* With the file gone so are the attributes: the access is shared. */
	ASSERT_EQ(_vcpu_run(vcpu), -1);
	ASSERT_EQ(errno, EFAULT);
	ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	ASSERT_EQ(vcpu->run->memory_fault.gpa, GMEM_DATA_GPA);
	ASSERT_EQ(vcpu->run->memory_fault.size, page);
	ASSERT_EQ(vcpu->run->memory_fault.flags, 0);
	kvm_vm_free(g.vm);
}

TEST(prefault_maps_private_and_shared_pages)
{
	struct kvm_pre_fault_memory range = {
		.gpa = GMEM_DATA_GPA,
		.size = 4 * 4096,
	};
	struct gmem_vm g;

	page = getpagesize();
	GMEM_REQUIRE_IN_PLACE();
	gmem_vm_create(&g, 1, guest_idle, 4 * page, GUEST_MEMFD_FLAG_INIT_SHARED);
	gmem_convert(g.fd, PG(1), PG(2), PRIVATE, MODE_NONE);

	ASSERT_EQ(__vcpu_ioctl(g.vcpus[0], KVM_PRE_FAULT_MEMORY, &range), 0);
	ASSERT_EQ(range.size, 0);
	ASSERT_EQ(range.gpa, GMEM_DATA_GPA + 4 * page);
	gmem_vm_free(&g);
}

/*
 * Files fragmented into tens of thousands of attribute ranges, in a VM of
 * their own.  Their cases take up to 11 s on the debug kernel (KASAN,
 * lockdep) of an idle 2-core host; the harness's 30 s would be a margin
 * of 2.7x on a host whose other core is busy.  They get 300 s, a margin
 * of 27x: their work is fixed, only the machine's speed moves their time.
 */
#define DEEP_TREE_TIMEOUT	300

FIXTURE(deep_tree) {
	struct kvm_vm *vm;
};

FIXTURE_SETUP(deep_tree)
{
	page = getpagesize();
	GMEM_REQUIRE_IN_PLACE();
	self->vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
}

FIXTURE_TEARDOWN(deep_tree)
{
	if (self->vm)
		kvm_vm_free(self->vm);
}

/*
 * A file fragmented page by page, as a guest converting its memory one page
 * at a time leaves it: a deep attribute tree, replaced by one conversion of
 * the whole file, fragmented again and freed with the file.  The kernel log
 * must stay clean (tests/vm/run checks it).
 */
TEST_F_TIMEOUT(deep_tree, fragmented_attribute_tree_is_replaced_and_freed,
	       DEEP_TREE_TIMEOUT)
{
	const size_t nr_pages = 40000;
	size_t i;
	int fd;

	fd = shared_gmem(self->vm, nr_pages);

	for (i = 1; i < nr_pages; i += 2)
		gmem_convert(fd, i * page, page, PRIVATE, MODE_NONE);
	ASSERT_EQ(gmem_fdinfo_ulong(fd, "gmem_ranges"), nr_pages);

	gmem_convert(fd, 0, nr_pages * page, SHARED, MODE_NONE);
	ASSERT_EQ(gmem_fdinfo_ulong(fd, "gmem_ranges"), 1);

	for (i = 1; i < nr_pages; i += 2)
		gmem_convert(fd, i * page, page, PRIVATE, MODE_NONE);
	close(fd);
}

/* Nanoseconds one read of @fd's fdinfo takes. */
static uint64_t fdinfo_read_ns(int fd)
{
	struct timespec t0, t1;
	char text[16384];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	gmem_fdinfo_text(fd, text, sizeof(text));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0.tv_sec) * 1000000000ull + t1.tv_nsec - t0.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median_u64(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/*
 * Reading fdinfo costs the same however fragmented the guest made the
 * file: whoever reads it holds the invalidate_lock, and a reader that
 * walked all of the tree would hold up conversions and the guest's faults
 * behind them.  Both files list 64 ranges and a summary of mixed cells;
 * one has 131 ranges, the other 40,000.  A walk of the tree made the
 * second read take hundreds of times as long; reads are taken side by
 * side, and their medians compared.
 */
TEST_F_TIMEOUT(deep_tree, fdinfo_read_costs_the_same_in_a_fragmented_file,
	       DEEP_TREE_TIMEOUT)
{
	const size_t nr_pages = 40000, rounds = 21;
	uint64_t few_ns[21], many_ns[21];
	int few, many;
	size_t i;

	few = shared_gmem(self->vm, nr_pages);
	many = shared_gmem(self->vm, nr_pages);
	for (i = 1; i < 130; i += 2)
		gmem_convert(few, i * page, page, PRIVATE, MODE_NONE);
	for (i = 1; i < nr_pages; i += 2)
		gmem_convert(many, i * page, page, PRIVATE, MODE_NONE);
	ASSERT_EQ(gmem_fdinfo_ulong(few, "gmem_ranges"), 131);
	ASSERT_EQ(gmem_fdinfo_ulong(many, "gmem_ranges"), nr_pages);

	for (i = 0; i < rounds; i++) {
		few_ns[i] = fdinfo_read_ns(few);
		many_ns[i] = fdinfo_read_ns(many);
	}
	ksft_print_msg("median read: %lu ns with 131 ranges, %lu ns with %zu\n",
		       median_u64(few_ns, rounds), median_u64(many_ns, rounds),
		       nr_pages);
	ASSERT_LT(median_u64(many_ns, rounds), 3 * median_u64(few_ns, rounds));
	close(many);
	close(few);
}

/* gmem_vm_pid in @fd's fdinfo, read through the proc mounted at @proc. */
static pid_t fdinfo_vm_pid_in(const char *proc, int fd)
{
	char text[16384];

	gmem_fdinfo_text_in(proc, fd, text, sizeof(text));
	return gmem_fdinfo_field(text, "gmem_vm_pid");
}

/*
 * Runs in a new pid namespace, as its first process, with a proc of that
 * namespace mounted at @proc; @outer_fd is a guest_memfd that a process
 * outside created.  Returns 0, or the number of the check that failed.
 */
static int check_vm_pids_in_namespace(const char *proc, int outer_fd)
{
	pid_t host_pid = atoi(realpath("/proc/self", NULL) + strlen("/proc/"));
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	int fd = shared_gmem(vm, 1);

	if (getpid() != 1)
		return 1;
	if (fdinfo_vm_pid_in(proc, fd) != 1)
		return 2;
	if (fdinfo_vm_pid_in("/proc", fd) != host_pid)
		return 3;
	if (fdinfo_vm_pid_in(proc, outer_fd) != 0)
		return 4;
	return 0;
}

/*
 * fdinfo names the VM's process as the reader's pid namespace knows it:
 * a process in a container sees its own pid, and none (0) for a VM whose
 * process it cannot see, rather than the pid the host knows.
 */
TEST(fdinfo_vm_pid_is_the_one_the_reader_knows)
{
	char proc[] = "/tmp/gmem-proc.XXXXXX";
	struct kvm_vm *vm;
	int outer, status;
	pid_t child;

	page = getpagesize();
	GMEM_REQUIRE_IN_PLACE();
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	outer = shared_gmem(vm, 1);
	ASSERT_EQ(fdinfo_vm_pid_in("/proc", outer), getpid());
	ASSERT_NE(mkdtemp(proc), NULL);

	child = fork();
	ASSERT_GE(child, 0);
	if (!child) {
		if (unshare(CLONE_NEWNS | CLONE_NEWPID) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			_exit(10);
		child = fork();
		if (!child)
			_exit(mount("proc", proc, "proc", 0, NULL) ? 11 :
			      check_vm_pids_in_namespace(proc, outer));
		_exit(child < 0 || waitpid(child, &status, 0) != child ||
		      !WIFEXITED(status) ? 12 : WEXITSTATUS(status));
	}
	ASSERT_EQ(waitpid(child, &status, 0), child);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 0)
		TH_LOG("check %d failed (10+: namespace setup)",
		       WEXITSTATUS(status));
	rmdir(proc);
	close(outer);
	kvm_vm_free(vm);
}

/* The counters of a guest_memfd that a conversion moves, from fdinfo. */
struct tree_counts {
	unsigned long moved[2];		/* [1] is to private */
	unsigned long private_pages;
	unsigned long ranges;		/* entries of the tree */
};

/* The counters at one instant: one read of fdinfo. */
static void read_tree_counts(int fd, struct tree_counts *c)
{
	char text[16384];

	gmem_fdinfo_text(fd, text, sizeof(text));
	c->moved[0] = gmem_fdinfo_field(text, "gmem_pages_to_shared");
	c->moved[1] = gmem_fdinfo_field(text, "gmem_pages_to_private");
	c->private_pages = gmem_fdinfo_field(text, "gmem_private_pages");
	c->ranges = gmem_fdinfo_field(text, "gmem_ranges");
}

/*
 * Converts [@first, @first + @nr) of @fd and of its model @private, and
 * checks the tree's entries, the private pages and the pages counted as
 * changed against the model.  @c holds the counters before, and after.
 */
static void convert_and_compare(struct __test_metadata *_metadata, int fd,
				struct tree_counts *c, bool *private,
				size_t nr_pages, size_t first, size_t nr,
				bool to_private)
{
	unsigned long before = c->moved[to_private], changed = 0;
	unsigned long nr_private = 0;
	size_t i;

	for (i = first; i < first + nr; i++) {
		changed += private[i] != to_private;
		private[i] = to_private;
	}
	for (i = 0; i < nr_pages; i++)
		nr_private += private[i];

	gmem_convert(fd, first * page, nr * page, to_private ? PRIVATE : SHARED,
		     MODE_NONE);
	read_tree_counts(fd, c);
	ASSERT_EQ(c->moved[to_private] - before, changed)
		TH_LOG("pages %zu+%zu", first, nr);
	ASSERT_EQ(c->private_pages, nr_private)
		TH_LOG("pages %zu+%zu", first, nr);
	ASSERT_EQ(c->ranges, runs(private, nr_pages))
		TH_LOG("pages %zu+%zu", first, nr);
}

/*
 * A conversion walks the tree once and stores from where the walk ended;
 * in a tree several levels deep, ranges that merge or split across its
 * leaves, at the ends of the file and in a one-page file (the tree is then
 * a single entry at its root) must come out exactly as the model says.
 */
TEST_F_TIMEOUT(deep_tree, deep_attribute_tree_converts_exactly,
	       DEEP_TREE_TIMEOUT)
{
	const size_t nr_pages = 4096;
	bool private[4096] = {};
	struct tree_counts c, c_one;
	unsigned int seed = 1;
	bool one_private = false;
	size_t i, first, nr;
	int fd, one;

	fd = shared_gmem(self->vm, nr_pages);
	read_tree_counts(fd, &c);

	for (i = 1; i < nr_pages; i += 2)
		convert_and_compare(_metadata, fd, &c, private, nr_pages, i,
				    1, true);
	for (i = 0; i < 2; i++) {
		convert_and_compare(_metadata, fd, &c, private, nr_pages, 0,
				    1, !i);
		convert_and_compare(_metadata, fd, &c, private, nr_pages,
				    nr_pages - 1, 1, i);
	}
	for (i = 0; i < 1000; i++) {
		first = rand_r(&seed) % nr_pages;
		nr = 1 + rand_r(&seed) % 40;
		convert_and_compare(_metadata, fd, &c, private, nr_pages, first,
				    first + nr > nr_pages ? nr_pages - first : nr,
				    rand_r(&seed) & 1);
	}
	convert_and_compare(_metadata, fd, &c, private, nr_pages, 0, nr_pages,
			    false);

	one = shared_gmem(self->vm, 1);
	read_tree_counts(one, &c_one);
	for (i = 0; i < 4; i++)
		convert_and_compare(_metadata, one, &c_one, &one_private, 1, 0, 1,
				    !(i & 1));
	close(one);
	close(fd);
}

TEST_HARNESS_MAIN
