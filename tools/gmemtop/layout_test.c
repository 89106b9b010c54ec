// SPDX-License-Identifier: GPL-2.0
/* Host unit tests of the layout picture drawn from fdinfo's ranges. */
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

/* 64 summary cells over 64 pages: shared, then private from page 40. */
static struct gmem_fdinfo with_summary(void)
{
	struct gmem_fdinfo info = { .size = 64 * 4096 };
	char line[96];

	snprintf(line, sizeof(line), "gmem_summary:\t%.40s%.23s%s\n",
		 "ssssssssssssssssssssssssssssssssssssssss",
		 "ppppppppppppppppppppppp", "m");
	if (!parse_fdinfo_summary(line, &info))
		info.size = -1;
	return info;
}

TEST(summary_line_is_parsed)
{
	struct gmem_fdinfo info = with_summary();

	ASSERT_EQ(info.size, 64 * 4096);
	ASSERT_EQ(strlen(info.summary), 64);
	ASSERT_EQ(info.summary[0], 's');
	ASSERT_EQ(info.summary[40], 'p');
	ASSERT_EQ(info.summary[63], 'm');
}

/* "gmem_summary:\t" and @nr cells of @cell, the last one @last. */
static const char *summary_line(char *buf, int nr, char cell, char last)
{
	int head = sprintf(buf, "gmem_summary:\t");

	memset(buf + head, cell, nr);
	buf[head + nr - 1] = last;
	strcpy(buf + head + nr, "\n");
	return buf;
}

TEST(malformed_summary_lines_change_nothing)
{
	struct gmem_fdinfo info = {};
	char line[128];

	ASSERT_FALSE(parse_fdinfo_summary(summary_line(line, 63, 's', 's'),
					  &info));
	ASSERT_FALSE(parse_fdinfo_summary(summary_line(line, 65, 's', 's'),
					  &info));
	ASSERT_FALSE(parse_fdinfo_summary(summary_line(line, 64, 's', 'x'),
					  &info));
	ASSERT_FALSE(parse_fdinfo_summary("gmem_size:\t65536\n", &info));
	ASSERT_EQ(info.summary[0], '\0');
	ASSERT_TRUE(parse_fdinfo_summary(summary_line(line, 64, 's', 'p'),
					 &info));
	ASSERT_EQ(info.summary[63], 'p');
}

TEST(summary_fills_what_the_ranges_do_not_list)
{
	struct gmem_fdinfo info = with_summary();
	char buf[17];

	/* fdinfo listed ranges up to page 8 only: the summary does the rest. */
	info.ranges[0] = (struct gmem_range){ 0, 4 * 4096, true };
	info.ranges[1] = (struct gmem_range){ 4 * 4096, 8 * 4096, false };
	info.nr_ranges = 2;
	layout_picture(&info, buf, 16);
	ASSERT_STREQ(buf, "#.........#####+");
}

TEST(summary_alone_draws_the_whole_file)
{
	struct gmem_fdinfo info = with_summary();
	char buf[9];

	layout_picture(&info, buf, 8);
	ASSERT_STREQ(buf, ".....##+");
}

TEST_HARNESS_MAIN
