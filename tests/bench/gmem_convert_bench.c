// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_convert_bench: what one conversion of a range costs, per page.
 *
 * Times single conversion ioctls over ranges of 4 KiB up to --max-size, in
 * a guest_memfd whose pages hold data (allocated) and in one that never
 * had any (unallocated), both directions, each content mode.  With
 * kvm.vm_memory_attributes=0 the ioctl is the per-guest_memfd
 * KVM_SET_MEMORY_ATTRIBUTES2; with =1 it is the legacy per-VM
 * KVM_SET_MEMORY_ATTRIBUTES on the same ranges, so that one binary booted
 * twice compares the two paths.  Also times the C library's memset() and
 * a bare rep stosb over the same bytes (what zeroing costs at best), and
 * one-page conversions in a file fragmented by many earlier single-page
 * conversions against a fresh one.
 *
 * The allocated and unallocated files are mapped by no process and bound
 * to no running vCPU, so that a conversion of theirs never unmaps or
 * invalidates anything.  A third file, "mapped" (per-guest_memfd
 * attributes only, ranges up to MAPPED_MAX), takes the path a VMM's
 * conversions take: before each one, the VMM writes every shared page of
 * the range through its mapping and a running vCPU reads every page of
 * it, so that the conversion has the VMM's page tables and KVM's to clear.
 *
 * Every sample is one JSON object per line on stdout (the selftests
 * library's own chatter is not JSON); tests/bench/report.py turns them
 * into medians and ratios.  Rounds go over every case in turn, so that
 * drift of the machine hits all cases alike.
 *
 *   gmem_convert_bench [-t] [-r ROUNDS] [-R FIRST_ROUND] [-s MAX_SIZE_MIB]
 *                      [-f FRAG_CONVERSIONS] [-m MAPPED_SIZE_KIB]
 *
 * FIRST_ROUND numbers the rounds on from an earlier run (another boot).
 * -m times the mapped file alone, at that size: make bench runs it under
 * gmemtop to split its conversions' time by phase.
 * -t times the fragmented and the fresh file alone: make bench does so in
 * a boot under QEMU's -icount, whose clock counts instructions and so
 * resolves the difference of two conversions of a few microseconds, which
 * the wall clock of an emulated guest cannot.  -f 0 leaves them out.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/resource.h>
#include <time.h>

#include "gmem.h"

#define PAGE		4096ULL
#define SZ_4K		PAGE
#define SZ_64K		(64ULL << 10)
#define SZ_2M		(2ULL << 20)
#define SZ_64M		(64ULL << 20)
#define MAPPED_MAX	SZ_2M
#define SZ_1G		(1ULL << 30)
#define NS_PER_S	1000000000ULL
/* The fragmented file keeps a private page every FRAG_STRIDE pages. */
#define FRAG_STRIDE	4

static const uint64_t range_sizes[] = { SZ_4K, SZ_64K, SZ_2M, SZ_64M, SZ_1G };

enum content { C_LEGACY, C_UNSPECIFIED, C_ZERO, C_PRESERVE };

static const char *const content_names[] = {
	[C_LEGACY]	= "legacy",
	[C_UNSPECIFIED]	= "unspecified",
	[C_ZERO]	= "zero",
	[C_PRESERVE]	= "preserve",
};

static const uint64_t content_flags[] = {
	[C_UNSPECIFIED]	= MODE_NONE,
	[C_ZERO]	= MODE_ZERO,
	[C_PRESERVE]	= MODE_PRESERVE,
};

/* One guest_memfd, bound to its own GPA range (the legacy path's key). */
struct bench_file {
	const char *name;
	int fd;
	uint64_t gpa;
	uint64_t size;
};

static struct kvm_vm *vm;
static bool legacy;
/* The mapped file: its own VM, with one vCPU that faults its pages in. */
static struct gmem_vm mapped_vm;
/* The range the vCPU reads next, in guest physical addresses. */
static uint64_t touch_gpa, touch_len;
static uint64_t next_gpa = 1ULL << 32;
static uint32_t next_slot = 10;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* User plus system time of this thread. */
static uint64_t cpu_ns(void)
{
	struct rusage ru;

	TEST_ASSERT(!getrusage(RUSAGE_THREAD, &ru), "getrusage");
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * NS_PER_S +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

/*
 * A guest_memfd of @size bytes, all shared, in a memslot of its own when
 * @bind (KVM has mappings to invalidate only through a binding).
 */
static void file_create(struct bench_file *f, const char *name, uint64_t size,
			bool bind)
{
	uint64_t flags = legacy ? 0 : GUEST_MEMFD_FLAG_MMAP |
				      GUEST_MEMFD_FLAG_INIT_SHARED;

	f->name = name;
	f->size = size;
	f->gpa = next_gpa;
	next_gpa += size;
	f->fd = vm_create_guest_memfd(vm, size, flags);
	if (bind)
		vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, f->gpa, next_slot++,
			   size / PAGE, KVM_MEM_GUEST_MEMFD, f->fd, 0);
}

/*
 * Give every page of @f data, as a VMM's writes through the shared
 * mapping do; fallocate() alone would leave pages that hold none, which
 * content modes skip.  The legacy path cannot map guest_memfd and never
 * touches contents: allocating is all it can do.
 */
static void file_fill(struct bench_file *f)
{
	uint8_t *mem;
	uint64_t i;

	TEST_ASSERT(!fallocate(f->fd, FALLOC_FL_KEEP_SIZE, 0, f->size),
		    "fallocate");
	if (legacy)
		return;
	mem = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	TEST_ASSERT(mem != MAP_FAILED, "mmap(guest_memfd)");
	for (i = 0; i < f->size; i += PAGE)
		mem[i] = 1;
	munmap(mem, f->size);
}

/* The vCPU: reads a byte of every page of the range it is given. */
static void guest_touch(void)
{
	uint64_t off;

	for (;;) {
		for (off = 0; off < touch_len; off += PAGE)
			READ_ONCE(*(uint8_t *)(touch_gpa + off));
		GUEST_SYNC(0);
	}
}

/*
 * The mapped file, of MAPPED_MAX bytes, all shared, allocated with data:
 * bound to a VM of its own whose vCPU runs guest_touch(), and mapped by
 * this process at mapped_vm.mem.
 */
static void mapped_create(struct bench_file *f)
{
	gmem_vm_create(&mapped_vm, 1, guest_touch, MAPPED_MAX,
		       GUEST_MEMFD_FLAG_INIT_SHARED);
	f->name = "mapped";
	f->fd = mapped_vm.fd;
	f->gpa = GMEM_DATA_GPA;
	f->size = MAPPED_MAX;
	memset(mapped_vm.mem, 1, MAPPED_MAX);
}

/*
 * What a running VM does to the first @size bytes of the mapped file
 * between two conversions: the VMM writes its shared pages, the vCPU
 * reads them all, through private or shared mappings as the attributes
 * say.
 */
static void mapped_touch(uint64_t size, bool private)
{
	struct ucall uc;
	uint64_t off;

	if (!private)
		for (off = 0; off < size; off += PAGE)
			mapped_vm.mem[off] = 1;
	touch_gpa = GMEM_DATA_GPA;
	touch_len = size;
	sync_global_to_guest(mapped_vm.vm, touch_gpa);
	sync_global_to_guest(mapped_vm.vm, touch_len);
	TEST_ASSERT(gmem_run_to_ucall(mapped_vm.vcpus[0], &uc) == UCALL_SYNC,
		    "vCPU: unexpected ucall %lu", uc.cmd);
}

static void convert(struct bench_file *f, uint64_t offset, uint64_t size,
		    bool to_private, enum content c)
{
	uint64_t attrs = to_private ? PRIVATE : SHARED;

	if (legacy)
		vm_set_memory_attributes(vm, f->gpa + offset, size, attrs);
	else
		gmem_convert(f->fd, offset, size, attrs, content_flags[c]);
}

/* The cheapest conversion there is: for getting a range ready, untimed. */
static void prepare(struct bench_file *f, uint64_t offset, uint64_t size,
		    bool private)
{
	convert(f, offset, size, private, legacy ? C_LEGACY : C_PRESERVE);
}

struct sample {
	uint64_t wall_ns, cpu_ns;
};

/*
 * Both clocks now.  getrusage() is a system call: read outside the wall
 * clock's window, so that the wall time is the timed work alone (under
 * -icount a one-page conversion counts some 4000 instructions, and
 * getrusage() inside the window added some 750 to each).
 */
static struct sample sample_start(void)
{
	struct sample s = { .cpu_ns = cpu_ns() };

	s.wall_ns = now_ns();
	return s;
}

/* Both clocks' time since @start. */
static struct sample sample_since(struct sample start)
{
	uint64_t wall_ns = now_ns();

	return (struct sample){ wall_ns - start.wall_ns,
				cpu_ns() - start.cpu_ns };
}

static struct sample timed_convert(struct bench_file *f, uint64_t offset,
				   uint64_t size, bool to_private,
				   enum content c)
{
	struct sample start = sample_start();

	convert(f, offset, size, to_private, c);
	return sample_since(start);
}

static void emit(const char *test, int round, const char *fields,
		 struct sample s)
{
	printf("{\"test\": \"%s\", \"path\": \"%s\", \"round\": %d, %s, "
	       "\"wall_ns\": %lu, \"cpu_ns\": %lu}\n", test,
	       legacy ? "legacy" : "gmem", round, fields, s.wall_ns, s.cpu_ns);
	fflush(stdout);
}

/* Small ranges are cheap and noisy: more samples of them per round. */
static unsigned int reps_for(uint64_t size)
{
	return size <= SZ_64K ? 16 : size <= SZ_2M ? 4 : 1;
}

/* The content modes a conversion in this direction accepts. */
static int contents_for(bool to_private, enum content *out)
{
	int n = 0;

	if (legacy) {
		out[n++] = C_LEGACY;
		return n;
	}
	out[n++] = C_UNSPECIFIED;
	if (!to_private)
		out[n++] = C_ZERO;	/* EOPNOTSUPP going private */
	out[n++] = C_PRESERVE;
	return n;
}

static void bench_range(struct bench_file *f, int round, uint64_t size)
{
	enum content contents[3];
	char fields[160];
	int dir, i, nr;
	unsigned int rep;

	for (dir = 0; dir < 2; dir++) {
		bool to_private = !dir;

		nr = contents_for(to_private, contents);
		for (i = 0; i < nr; i++) {
			snprintf(fields, sizeof(fields),
				 "\"size\": %lu, \"file\": \"%s\", \"to\": \"%s\", \"mode\": \"%s\"",
				 size, f->name, to_private ? "private" : "shared",
				 content_names[contents[i]]);
			for (rep = 0; rep < reps_for(size); rep++) {
				prepare(f, 0, size, !to_private);
				if (f->fd == mapped_vm.fd)
					mapped_touch(size, !to_private);
				emit("convert", round, fields,
				     timed_convert(f, 0, size, to_private,
						   contents[i]));
			}
		}
	}
}

/*
 * The C library's memset(): the selftests library links its own, a byte
 * at a time (string_override.c, for guest code), which is no reference
 * for what a VMM's zeroing costs.
 */
static void *(*libc_memset)(void *s, int c, size_t n);

static void libc_memset_zero(uint8_t *buf, uint64_t size)
{
	libc_memset(buf, 0, size);
}

/* What the kernel's clear_page_erms() does, from user space. */
static void rep_stosb_zero(uint8_t *buf, uint64_t size)
{
	asm volatile("rep stosb"
		     : "+D"(buf), "+c"(size) : "a"(0) : "memory");
}

/* What writing zeros over the same bytes costs from user space. */
static void bench_memset(uint8_t *buf, int round, uint64_t size)
{
	static const struct {
		const char *name;
		void (*zero)(uint8_t *buf, uint64_t size);
	} ways[] = {
		{ "memset", libc_memset_zero },
		{ "rep_stosb", rep_stosb_zero },
	};
	struct sample start;
	char fields[64];
	unsigned int rep, i;

	snprintf(fields, sizeof(fields), "\"size\": %lu", size);
	for (rep = 0; rep < reps_for(size); rep++) {
		for (i = 0; i < ARRAY_SIZE(ways); i++) {
			start = sample_start();
			ways[i].zero(buf, size);
			emit(ways[i].name, round, fields,
			     sample_since(start));
		}
	}
}

/*
 * Make @f's attributes a list of @n separate private pages, one every
 * FRAG_STRIDE pages, in @n single-page conversions that cannot merge.
 */
static void fragment(struct bench_file *f, uint64_t n, int round)
{
	struct sample start;
	char fields[64];
	uint64_t i;

	snprintf(fields, sizeof(fields), "\"conversions\": %lu", n);
	start = sample_start();
	for (i = 0; i < n; i++)
		convert(f, i * FRAG_STRIDE * PAGE, PAGE, true,
			legacy ? C_LEGACY : C_PRESERVE);
	emit("fragment", round, fields, sample_since(start));
}

/*
 * One page between two private ones, in the middle of the file: going
 * private splits its shared neighbourhood ("split"), going back merges it
 * again ("merge").  The same page of a fresh file splits one range.
 */
static void bench_one_page(struct bench_file *f, int round, uint64_t n)
{
	uint64_t offset = (n / 2 * FRAG_STRIDE + FRAG_STRIDE / 2) * PAGE;
	char fields[96];
	unsigned int rep;
	int op;

	for (rep = 0; rep < reps_for(SZ_4K); rep++) {
		for (op = 0; op < 2; op++) {
			snprintf(fields, sizeof(fields),
				 "\"file\": \"%s\", \"op\": \"%s\"", f->name,
				 op ? "merge" : "split");
			emit("one_page", round, fields,
			     timed_convert(f, offset, PAGE, !op,
					   legacy ? C_LEGACY : C_PRESERVE));
		}
	}
}

/*
 * The range conversions and memset(), every size up to the largest; the
 * mapped file's for sizes up to MAPPED_MAX, or for one size alone.
 */
struct range_cases {
	struct bench_file alloc, empty, mapped;
	unsigned int nr_sizes;
	uint64_t mapped_only;
	uint8_t *buf;
};

static bool has_mapped(const struct range_cases *rc)
{
	return rc->mapped.name;
}

static void ranges_setup(struct range_cases *rc, uint64_t max_size)
{
	while (rc->nr_sizes < ARRAY_SIZE(range_sizes) &&
	       range_sizes[rc->nr_sizes] <= max_size)
		rc->nr_sizes++;
	max_size = range_sizes[rc->nr_sizes - 1];

	if (!legacy)
		mapped_create(&rc->mapped);
	if (rc->mapped_only)
		return;
	file_create(&rc->alloc, "allocated", max_size, true);
	file_create(&rc->empty, "unallocated", max_size, true);
	file_fill(&rc->alloc);
	libc_memset = dlsym(RTLD_NEXT, "memset");
	TEST_ASSERT(libc_memset, "the C library's memset(): %s", dlerror());
	rc->buf = malloc(max_size);
	TEST_ASSERT(rc->buf, "malloc");
	memset(rc->buf, 1, max_size);	/* faulted in: memset() at full speed */
}

static void ranges_round(struct range_cases *rc, int round)
{
	unsigned int i;

	if (rc->mapped_only) {
		bench_range(&rc->mapped, round, rc->mapped_only);
		return;
	}
	for (i = 0; i < rc->nr_sizes; i++) {
		bench_range(&rc->alloc, round, range_sizes[i]);
		bench_range(&rc->empty, round, range_sizes[i]);
		if (has_mapped(rc) && range_sizes[i] <= MAPPED_MAX)
			bench_range(&rc->mapped, round, range_sizes[i]);
		bench_memset(rc->buf, round, range_sizes[i]);
	}
}

/* One page of a file fragmented by @n conversions, and of a fresh one. */
struct tree_cases {
	struct bench_file frag, fresh;
	uint64_t n;
};

static void tree_setup(struct tree_cases *tc, uint64_t n, int round)
{
	tc->n = n;
	file_create(&tc->frag, "fragmented", n * FRAG_STRIDE * PAGE, false);
	file_create(&tc->fresh, "fresh", n * FRAG_STRIDE * PAGE, false);
	fragment(&tc->frag, n, round);
}

static void tree_round(struct tree_cases *tc, int round)
{
	bench_one_page(&tc->frag, round, tc->n);
	bench_one_page(&tc->fresh, round, tc->n);
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
		"usage: gmem_convert_bench [-t] [-r ROUNDS] [-R FIRST_ROUND] [-s MAX_SIZE_MIB] [-f FRAG_CONVERSIONS] [-m MAPPED_SIZE_KIB]\n");
	exit(2);
}

static unsigned long parse_arg(const char *arg)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (end == arg || *end || *arg == '-')
		usage();
	return v;
}

int main(int argc, char *argv[])
{
	unsigned long rounds = 5, first = 0, max_size = SZ_1G, nr_frag = 100000;
	struct range_cases rc = {};
	struct tree_cases tc = {};
	bool only_tree = false;
	int c, round;

	while ((c = getopt(argc, argv, "tr:R:s:f:m:")) != -1) {
		switch (c) {
		case 't': only_tree = true; break;
		case 'r': rounds = parse_arg(optarg); break;
		case 'R': first = parse_arg(optarg); break;
		case 's': max_size = parse_arg(optarg) << 20; break;
		case 'f': nr_frag = parse_arg(optarg); break;
		case 'm': rc.mapped_only = parse_arg(optarg) << 10; break;
		default: usage();
		}
	}
	/* One fragmenting conversion leaves no page between two private. */
	if (optind != argc || !rounds || max_size < SZ_2M || nr_frag == 1 ||
	    (only_tree && !nr_frag) || (only_tree && rc.mapped_only) ||
	    rc.mapped_only % PAGE || rc.mapped_only > MAPPED_MAX)
		usage();
	if (rc.mapped_only)
		nr_frag = 0;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) &
		     BIT(KVM_X86_SW_PROTECTED_VM));
	legacy = gmem_vm_attributes_mode();
	/* The legacy path cannot map guest_memfd. */
	TEST_REQUIRE(!legacy || !rc.mapped_only);
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	if (!legacy)
		TEST_REQUIRE((vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS) &
			      (MODE_ZERO | MODE_PRESERVE)) ==
			     (MODE_ZERO | MODE_PRESERVE));

	if (!only_tree)
		ranges_setup(&rc, max_size);
	if (nr_frag)
		tree_setup(&tc, nr_frag, first);

	for (round = first; round < first + rounds; round++) {
		if (!only_tree)
			ranges_round(&rc, round);
		if (nr_frag)
			tree_round(&tc, round);
	}

	free(rc.buf);
	if (has_mapped(&rc))
		gmem_vm_free(&mapped_vm);
	kvm_vm_free(vm);
	return 0;
}
