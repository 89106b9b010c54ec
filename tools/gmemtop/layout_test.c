// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of the layout picture drawn from fdinfo's ranges, and
 * of the lifetime counts read from fdinfo.
 */
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "kselftest_harness.h"

static struct gmem_fdinfo sixteen_pages(void)
{
	struct gmem_fdinfo info = { .size = 16 * 4096 };

	info.ranges[0] = (struct gmem_range){ 0, 4 * 4096, false };
	info.ranges[1] = (struct gmem_range){ 4 * 4096, 6 * 4096, true };
	info.ranges[2] = (struct gmem_range){ 6 * 4096, 16 * 4096, false };
	info.nr_ranges = 3;
	return info;
}

TEST(one_cell_per_page_is_exact)
{
	struct gmem_fdinfo info = sixteen_pages();
	char buf[17];

	layout_picture(&info, buf, 16);
	ASSERT_STREQ(buf, "....##..........");
}

TEST(coarse_cells_show_mixed_ranges)
{
	struct gmem_fdinfo info = sixteen_pages();
	char buf[5];

	layout_picture(&info, buf, 4);
	ASSERT_STREQ(buf, ".+..");
}

TEST(ranges_fdinfo_did_not_list_are_unknown)
{
	struct gmem_fdinfo info = sixteen_pages();
	char buf[9];

	info.nr_ranges = 2;	/* fdinfo stopped listing after page 6 */
	layout_picture(&info, buf, 8);
	ASSERT_STREQ(buf, "..#?????");
}

/* What the kernel writes for @nr_pages pages of layout @cells. */
static struct gmem_fdinfo with_summary(long nr_pages, const char *cells)
{
	struct gmem_fdinfo info = { .size = nr_pages * 4096 };
	long cell_pages = (nr_pages + 63) / 64;
	char line[128];

	snprintf(line, sizeof(line), "gmem_summary_cell:\t%ld\n",
		 cell_pages * 4096);
	if (!parse_fdinfo_summary(line, &info))
		info.size = -1;
	snprintf(line, sizeof(line), "gmem_summary:\t%s\n", cells);
	if (!parse_fdinfo_summary(line, &info))
		info.size = -1;
	return info;
}

TEST(summary_lines_are_parsed)
{
	struct gmem_fdinfo info = with_summary(16, "ppppssssssssssss");

	ASSERT_EQ(info.size, 16 * 4096);
	ASSERT_EQ(info.summary_cell, 4096);
	ASSERT_STREQ(info.summary, "ppppssssssssssss");
}

TEST(malformed_summary_lines_change_nothing)
{
	static const char *const bad[] = {
		"gmem_summary:\tssssx\n",		/* unknown cell */
		"gmem_summary:\tsssssssssssssssssssssssssssssssss"
		"ssssssssssssssssssssssssssssssss\n",	/* 65 cells */
		"gmem_summary_cell:\t0\n",
		"gmem_summary_cell:\tmany\n",
		"gmem_size:\t65536\n",
	};
	struct gmem_fdinfo info = {};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_FALSE(parse_fdinfo_summary(bad[i], &info)) {
			TH_LOG("took '%s'", bad[i]);
		}
	}
	ASSERT_EQ(info.summary[0], '\0');
	ASSERT_EQ(info.summary_cell, 0);
}

TEST(summary_fills_what_the_ranges_do_not_list)
{
	/* 64 pages, one a cell: shared, private from page 40, mixed last. */
	struct gmem_fdinfo info = with_summary(64,
		"ssssssssssssssssssssssssssssssssssssssss"
		"pppppppppppppppppppppppm");
	char buf[17];

	/* fdinfo listed ranges up to page 8 only: the summary does the rest. */
	info.ranges[0] = (struct gmem_range){ 0, 4 * 4096, true };
	info.ranges[1] = (struct gmem_range){ 4 * 4096, 8 * 4096, false };
	info.nr_ranges = 2;
	layout_picture(&info, buf, 16);
	ASSERT_STREQ(buf, "#.........#####+");
}

TEST(summary_of_a_large_file_has_wide_cells)
{
	/*
	 * 1000 pages: cells of 16 pages, 63 of them, the last one of 8.
	 * Private from page 496 (cell 31) on.
	 */
	struct gmem_fdinfo info = with_summary(1000,
		"sssssssssssssssssssssssssssssss"
		"pppppppppppppppppppppppppppppppp");
	char buf[9];

	ASSERT_EQ(info.summary_cell, 16 * 4096);
	ASSERT_EQ(strlen(info.summary), 63);
	layout_picture(&info, buf, 8);
	ASSERT_STREQ(buf, "...+####");
}

TEST(without_the_cell_size_the_summary_is_unused)
{
	struct gmem_fdinfo info = { .size = 16 * 4096 };
	char buf[5];

	ASSERT_TRUE(parse_fdinfo_summary("gmem_summary:\tssssssssssssssss\n",
					 &info));
	layout_picture(&info, buf, 4);
	ASSERT_STREQ(buf, "????");
}

/* As kernel/0012-*.patch prints them, among the other lines. */
static const char *const fdinfo_lines[] = {
	"pos:\t0\n",
	"gmem_size:\t65536\n",
	"gmem_range:\t0x0-0x4000 private\n",
	"gmem_shared_pages:\t12\n",
	"gmem_conversions_to_private:\t3\n",
	"gmem_conversions_to_shared:\t1\n",
	"gmem_pages_to_private:\t20\n",
	"gmem_pages_to_shared:\t18446744073709551615\n",
	"gmem_eagain:\t4294967298\n",
};

TEST(lifetime_counts_are_read_by_name)
{
	struct gmem_lifetime lifetime = {};
	unsigned int i, taken = 0;

	for (i = 0; i < ARRAY_SIZE(fdinfo_lines); i++)
		taken += parse_fdinfo_lifetime(fdinfo_lines[i], &lifetime);
	ASSERT_EQ(taken, 5);
	ASSERT_TRUE(lifetime_known(&lifetime));
	ASSERT_EQ(lifetime.conversions[1], 3);
	ASSERT_EQ(lifetime.conversions[0], 1);
	ASSERT_EQ(lifetime.pages[1], 20);
	ASSERT_EQ(lifetime.pages[0], ~0ULL);
	ASSERT_EQ(lifetime.eagain, (1ULL << 32) + 2);
}

/* A kernel without some of the counts: none of them is used. */
TEST(lifetime_counts_are_known_only_all_together)
{
	struct gmem_lifetime lifetime = {};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fdinfo_lines) - 1; i++)
		parse_fdinfo_lifetime(fdinfo_lines[i], &lifetime);
	ASSERT_FALSE(lifetime_known(&lifetime));
}

TEST_HARNESS_MAIN
