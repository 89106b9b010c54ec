// SPDX-License-Identifier: GPL-2.0
/*
 * Leaks counted, not assumed.  Thousands of guest_memfd lifetimes (create,
 * bind to a memslot, write, convert both ways in every content mode, fail
 * a conversion with EAGAIN, read fdinfo, punch a hole, fallocate, unbind,
 * close) must give back every slab object and page they took: the
 * kernel's counts after the cycles are those before, within bounds that
 * a leak of one attribute-tree node per conversion, one guest_memfd inode
 * per file or one page per file exceeds several times over.  The test
 * checks that arithmetic too, so that a bound cannot grow past what it
 * must catch.  Runs on both kernels and both bases; needs in-place
 * conversion switched on.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/membarrier.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "gmem.h"
#include "kselftest_harness.h"

#define PAGE		4096UL
#define FILE_PAGES	16
#define SLOT		20
#define SLOT_GPA	(1ULL << 33)
/* Caches and per-CPU lists reach their steady state first. */
#define WARMUP		200
/* Conversions that change attributes, per cycle (see cycle()). */
#define CONVERSIONS	12

/* The smallest leaks the bounds must catch, in bytes. */
#define MAPLE_NODE_SIZE	256	/* sizeof(struct maple_node) on 64-bit */
#define INODE_SIZE	512	/* a guest_memfd inode is larger */

/*
 * How many cycles, and how much growth of the counts is a leak.  The
 * meminfo bounds are two to four times the largest growth seen without
 * a leak, measured every 2,000 cycles over 10,000 on each kernel: up to
 * 216 kB of slab and 952 kB in use on the test kernel, 432 kB and
 * 1,016 kB on the debug kernel (KASAN's redzones).  The debug kernel
 * (SLUB_DEBUG) also counts the objects of a cache exactly: they moved by
 * at most 1 there, so a few dozen is a leak; with those counts, fewer of
 * its slow cycles do.
 */
struct bounds {
	int cycles;
	long slab_kb;		/* growth of Slab: */
	long used_kb;		/* growth of MemTotal - MemFree */
	long objects;		/* growth of maple_node, kvm_gmem_inode */
};

static const struct bounds meminfo_only = { 8000, 512, 4096, -1 };
static const struct bounds with_objects = { 1500, 1024, 2048, 32 };

/*
 * What the kernel holds, once what it holds only for a while is given
 * back: RCU callbacks (inodes are freed after a grace period), page and
 * dentry caches, slab caches' per-CPU and empty slabs, KASAN's quarantine
 * of freed objects (shrinking a cache drains its part), and the per-CPU
 * differences of the memory counters.
 */
struct mem_count {
	long slab_kb;		/* Slab: in /proc/meminfo */
	long used_kb;		/* MemTotal - MemFree */
	long maple_nodes;	/* objects in use, -1 if unknown */
	long gmem_inodes;
};

static long meminfo_kb(const char *text, const char *key)
{
	const char *line = strstr(text, key);

	TEST_ASSERT(line, "no %s in /proc/meminfo", key);
	return atol(line + strlen(key));
}

/* Objects in use in slab cache @name (after a shrink), or -1. */
static long slab_objects(const char *name)
{
	char path[128], buf[64] = "";
	int fd;

	snprintf(path, sizeof(path), "/sys/kernel/slab/%s/objects", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	TEST_ASSERT(read(fd, buf, sizeof(buf) - 1) > 0, "read %s", path);
	close(fd);
	return atol(buf);
}

/* Every slab cache gives back its per-CPU slabs and its quarantine. */
static void shrink_slab_caches(void)
{
	char path[300];
	struct dirent *d;
	DIR *dir = opendir("/sys/kernel/slab");

	if (!dir)
		return;		/* SLUB_TINY: nothing per CPU to give back */
	while ((d = readdir(dir))) {
		/* Aliases are links to a cache that is listed too. */
		if (d->d_name[0] == '.' || d->d_type == DT_LNK)
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink",
			 d->d_name);
		gmem_write_file(path, "1");
	}
	closedir(dir);
}

static void mem_count(struct mem_count *m)
{
	char text[8192];
	int i;

	for (i = 0; i < 2; i++) {
		TEST_ASSERT(!syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0),
			    "membarrier");
		usleep(100000);
	}
	TEST_ASSERT(gmem_write_file("/proc/sys/vm/drop_caches", "3"), "drop_caches");
	shrink_slab_caches();
	TEST_ASSERT(gmem_write_file("/proc/sys/vm/stat_refresh", "1"), "stat_refresh");

	TEST_ASSERT(gmem_read_file("/proc/meminfo", text, sizeof(text)),
		    "read /proc/meminfo");
	m->slab_kb = meminfo_kb(text, "\nSlab:");
	m->used_kb = meminfo_kb(text, "MemTotal:") - meminfo_kb(text, "\nMemFree:");
	m->maple_nodes = slab_objects("maple_node");
	m->gmem_inodes = slab_objects("kvm_gmem_inode");
}

static void convert(int fd, int first, int nr, uint64_t attrs, uint64_t mode)
{
	gmem_convert(fd, first * PAGE, nr * PAGE, attrs, mode);
}

/*
 * One guest_memfd's life, through every path that allocates or frees:
 * CONVERSIONS conversions that change attributes, one that changes only
 * contents (ZERO; on v8, which has no content modes, nothing), one that fails with EAGAIN after preallocating the tree.  It
 * ends fragmented, a range per page, so that the tree freed with the file
 * has several nodes.
 */
static void cycle(struct kvm_vm *vm, int pipefd[2], int i)
{
	const size_t size = FILE_PAGES * PAGE, half = FILE_PAGES / 2;
	char buf[PAGE];
	struct iovec iov = { .iov_len = PAGE };
	uint8_t *mem;
	int fd, p;

	fd = vm_create_guest_memfd(vm, size, GUEST_MEMFD_FLAG_MMAP |
					     GUEST_MEMFD_FLAG_INIT_SHARED);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TEST_ASSERT(mem != MAP_FAILED, "mmap");
	vm_set_user_memory_region2(vm, SLOT, KVM_MEM_GUEST_MEMFD, SLOT_GPA,
				   size, mem, fd, 0);
	memset(mem, i, size);

	/* 2: there and back, zeroed (RFC v5); 1 that changes only contents. */
	convert(fd, 0, half, PRIVATE, MODE_NONE);
	convert(fd, 0, half, SHARED, MODE_ZERO_OR_NONE);
	convert(fd, 0, half, SHARED, MODE_ZERO_OR_NONE);

	/* A page in a pipe: EAGAIN, then the conversion once it is read. */
	iov.iov_base = mem + (half + 2) * PAGE;
	TEST_ASSERT(vmsplice(pipefd[1], &iov, 1, 0) == PAGE, "vmsplice");
	TEST_ASSERT(gmem_set_attrs(fd, half * PAGE, half * PAGE, PRIVATE,
				   MODE_NONE, NULL) == -EAGAIN, "EAGAIN");
	TEST_ASSERT(read(pipefd[0], buf, PAGE) == PAGE, "read pipe");
	/* 2: kept both ways. */
	convert(fd, half, half, PRIVATE, MODE_KEEP);
	convert(fd, half, half, SHARED, MODE_KEEP);

	gmem_fdinfo_text(fd, buf, sizeof(buf));
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			       2 * PAGE, 8 * PAGE), "punch");
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4 * PAGE),
		    "fallocate");

	/* 8: a range per page, 17 with the tail past the end of the file. */
	for (p = 1; p < FILE_PAGES; p += 2)
		convert(fd, p, 1, PRIVATE, p & 2 ? MODE_KEEP : MODE_NONE);

	vm_set_user_memory_region2(vm, SLOT, KVM_MEM_GUEST_MEMFD, SLOT_GPA,
				   0, NULL, fd, 0);
	munmap(mem, size);
	close(fd);
}

FIXTURE(leak) {
	struct kvm_vm *vm;
	int pipefd[2];
};

FIXTURE_SETUP(leak)
{
	GMEM_REQUIRE_IN_PLACE();
	self->vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	ASSERT_EQ(pipe(self->pipefd), 0);
}

FIXTURE_TEARDOWN(leak)
{
	if (self->vm)
		kvm_vm_free(self->vm);
}

static void report(const char *what, const struct mem_count *a,
		   const struct mem_count *b)
{
	ksft_print_msg("%s: slab %+ld kB, used %+ld kB\n", what,
		       b->slab_kb - a->slab_kb, b->used_kb - a->used_kb);
	if (a->maple_nodes >= 0)
		ksft_print_msg("%s: maple_node %+ld, kvm_gmem_inode %+ld objects\n",
			       what, b->maple_nodes - a->maple_nodes,
			       b->gmem_inodes - a->gmem_inodes);
}

/*
 * Whether @b catches each leak it must, at least twice over: a tree node
 * per conversion or per file (the tree not freed with it), a guest_memfd
 * inode per file, a page per file.
 */
static bool bounds_catch_leaks(struct __test_metadata *_metadata,
			       const struct bounds *b)
{
	long conversions = (long)b->cycles * CONVERSIONS;
	long slab = b->slab_kb * 1024, used = b->used_kb * 1024;

	EXPECT_GE(conversions * MAPLE_NODE_SIZE, 2 * slab);
	EXPECT_GE((long)b->cycles * PAGE, 2 * used);
	if (b->objects < 0) {
		EXPECT_GE((long)b->cycles * MAPLE_NODE_SIZE, 2 * slab);
		EXPECT_GE((long)b->cycles * INODE_SIZE, 2 * slab);
	} else {
		EXPECT_GE(b->cycles, 2 * b->objects);
	}
	return !_metadata->exit_code;
}

TEST_F_TIMEOUT(leak, cycles_give_back_every_object_and_page, 900)
{
	const struct bounds *b = slab_objects("maple_node") < 0 ?
				 &meminfo_only : &with_objects;
	struct mem_count before, after;
	time_t t0;
	int i;

	ASSERT_TRUE(bounds_catch_leaks(_metadata, b));

	for (i = 0; i < WARMUP; i++)
		cycle(self->vm, self->pipefd, i);
	mem_count(&before);
	t0 = time(NULL);
	for (i = 0; i < b->cycles; i++)
		cycle(self->vm, self->pipefd, i);
	ksft_print_msg("%d cycles, %ld conversions, %ld s\n", b->cycles,
		       (long)b->cycles * CONVERSIONS, (long)(time(NULL) - t0));
	mem_count(&after);
	report("after the cycles", &before, &after);

	EXPECT_LE(after.slab_kb - before.slab_kb, b->slab_kb);
	EXPECT_LE(after.used_kb - before.used_kb, b->used_kb);
	if (b->objects >= 0) {
		EXPECT_LE(after.maple_nodes - before.maple_nodes, b->objects);
		EXPECT_LE(after.gmem_inodes - before.gmem_inodes, b->objects);
	}
}

TEST_HARNESS_MAIN
