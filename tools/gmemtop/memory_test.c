// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the map data gmemtop asks the kernel for: computed from
 * the BPF object's own map definitions, sized as gmemtop sizes them
 * before load.  What the kernel spends besides is measured, not modelled
 * (make kmem, docs/kernel-memory.md).  Opening a skeleton needs no
 * privilege.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "gmem.h"
#include "gmemtop.skel.h"
#include "gmemhold.skel.h"
#include "maps.h"
#include "kselftest_harness.h"

#define MIB		(1024.0 * 1024.0)

static struct gmemtop_bpf *sized_skeleton(unsigned int max_files, bool snoop)
{
	struct gmemtop_bpf *skel = gmemtop_bpf__open();

	if (skel && gmemtop_size_maps(skel, max_files, snoop)) {
		gmemtop_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

/* The options besides --max-files that change what gmemtop loads. */
enum { SNOOP = 1, HOLDERS = 2 };

/*
 * The map data of what gmemtop loads with --max-files @max_files and
 * @options, on @nr_cpus CPUs: its programs, sized by gmemtop_size_maps(),
 * and with --holders gmemhold's, which holders_open() loads as they are
 * defined.  0 if a skeleton does not open.
 */
static unsigned long long memory(unsigned int max_files, unsigned int options,
				 int nr_cpus)
{
	struct gmemtop_bpf *skel = sized_skeleton(max_files, options & SNOOP);
	struct gmemhold_bpf *hold = NULL;
	unsigned long long bytes = 0;

	if (options & HOLDERS)
		hold = gmemhold_bpf__open();
	if (skel && (hold || !(options & HOLDERS))) {
		bytes = bpf_object_memory(skel->obj, nr_cpus);
		if (hold)
			bytes += bpf_object_memory(hold->obj, nr_cpus);
	}
	gmemhold_bpf__destroy(hold);
	gmemtop_bpf__destroy(skel);
	return bytes;
}

/*
 * The figure for the old per-CPU LRU map was about 950 MiB.  The
 * 64-bit histogram buckets (4.7 KiB per latency entry) took it from 3.6
 * to 6.8 MiB.
 */
TEST(memory_at_384_cpus_stays_within_8_mib)
{
	unsigned long long at384 = memory(DEFAULT_MAX_FILES, 0, 384);

	ASSERT_GT(at384, 0);
	EXPECT_LT(at384, 8 * MIB);
}

/*
 * Only the spare element of each hash and the dropped counter are per
 * CPU: a latency entry, and a few hundred bytes besides.
 */
TEST(each_cpu_adds_a_spare_latency_entry_and_little_else)
{
	unsigned long long at2 = memory(DEFAULT_MAX_FILES, 0, 2);
	unsigned long long at384 = memory(DEFAULT_MAX_FILES, 0, 384);

	EXPECT_LT((at384 - at2) / 382, sizeof(struct gmem_lat) + 512);
}

TEST(max_files_scales_the_per_file_maps)
{
	unsigned long long one = memory(1, 0, 2);
	unsigned long long many = memory(1001, 0, 2);
	struct gmemtop_bpf *skel = sized_skeleton(1001, false);

	ASSERT_NE(NULL, skel);
	EXPECT_EQ(1001, bpf_map__max_entries(skel->maps.files));
	EXPECT_EQ(1001 * GMEM_NR_OUTCOMES, bpf_map__max_entries(skel->maps.lat));
	/* Each file: its counters and one latency entry per outcome. */
	EXPECT_GE((many - one) / 1000, sizeof(struct gmem_file_counts) +
				       GMEM_NR_OUTCOMES * sizeof(struct gmem_lat));
	gmemtop_bpf__destroy(skel);
}

TEST(ring_buffer_is_sized_only_for_snoop)
{
	unsigned long long plain = memory(DEFAULT_MAX_FILES, 0, 2);
	unsigned long long snoop = memory(DEFAULT_MAX_FILES, SNOOP, 2);

	EXPECT_EQ(GMEM_RINGBUF_BYTES - 4096, snoop - plain);
}

TEST_HARNESS_MAIN
