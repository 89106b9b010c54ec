// SPDX-License-Identifier: GPL-2.0
/* Host unit tests of the layout picture drawn from fdinfo's ranges. */
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

TEST_HARNESS_MAIN
