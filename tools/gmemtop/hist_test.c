// SPDX-License-Identifier: GPL-2.0
/* Host unit tests of the log-linear histogram and its percentiles. */
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "kselftest_harness.h"

static const unsigned long long samples[] = {
	0, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4095, 4096, 65537,
	1000000, 123456789, 1ULL << 38, (1ULL << 39) - 1,
};

TEST(small_values_have_exact_buckets)
{
	unsigned int v;

	for (v = 0; v < GMEM_HIST_SUB; v++) {
		ASSERT_EQ(gmem_hist_bucket(v), v);
		ASSERT_EQ(gmem_hist_low(v), v);
	}
}

TEST(every_value_falls_between_its_bucket_bounds)
{
	unsigned int i, b;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		b = gmem_hist_bucket(samples[i]);
		ASSERT_LT(b, GMEM_HIST_BUCKETS);
		ASSERT_LE(gmem_hist_low(b), samples[i]);
		if (b + 1 < GMEM_HIST_BUCKETS)
			ASSERT_LT(samples[i], gmem_hist_low(b + 1));
	}
}

TEST(buckets_are_at_most_a_sixteenth_wide)
{
	unsigned int b;

	for (b = GMEM_HIST_SUB; b + 1 < GMEM_HIST_BUCKETS; b++) {
		unsigned long long low = gmem_hist_low(b);
		unsigned long long width = gmem_hist_low(b + 1) - low;

		ASSERT_GT(width, 0);
		ASSERT_LE(width * GMEM_HIST_SUB, low) TH_LOG("bucket %u", b);
		ASSERT_EQ(gmem_hist_bucket(low), b);
		ASSERT_EQ(gmem_hist_bucket(low + width - 1), b);
	}
}

TEST(huge_values_share_the_last_bucket)
{
	ASSERT_EQ(gmem_hist_bucket((1ULL << 40) - 1), GMEM_HIST_BUCKETS - 1);
	ASSERT_EQ(gmem_hist_bucket(1ULL << 40), GMEM_HIST_BUCKETS - 1);
	ASSERT_EQ(gmem_hist_bucket(~0ULL), GMEM_HIST_BUCKETS - 1);
}

TEST(empty_histogram_has_no_percentiles)
{
	__u64 hist[GMEM_HIST_BUCKETS] = {};

	ASSERT_EQ(hist_total(hist), 0);
	ASSERT_EQ(hist_percentile(hist, 0.5), 0);
}

/* 1..1000 us: the exact p50 is 500 us, p99 990 us, p100 1000 us. */
TEST(percentiles_are_within_bucket_precision)
{
	static const struct { double q; double exact; } cases[] = {
		{ 0.5, 500000 }, { 0.99, 990000 }, { 1.0, 1000000 },
		{ 0.001, 1000 },
	};
	__u64 hist[GMEM_HIST_BUCKETS] = {};
	unsigned int i, us;

	for (us = 1; us <= 1000; us++)
		hist[gmem_hist_bucket(us * 1000ULL)]++;
	ASSERT_EQ(hist_total(hist), 1000);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = hist_percentile(hist, cases[i].q);

		ASSERT_LE(abs((int)(got - cases[i].exact)),
			  (int)(cases[i].exact / GMEM_HIST_SUB))
			TH_LOG("q %.3f: %.0f vs %.0f", cases[i].q, got,
			       cases[i].exact);
	}
}

TEST(single_sample_is_every_percentile)
{
	__u64 hist[GMEM_HIST_BUCKETS] = {};

	hist[gmem_hist_bucket(777)] = 1;
	ASSERT_EQ(hist_percentile(hist, 0.01), hist_percentile(hist, 1.0));
	ASSERT_LE(abs((int)hist_percentile(hist, 0.5) - 777), 777 / 16);
}

/* A bucket past 2^32 samples: a guest converting for days at 20,000/s. */
TEST(counts_past_2_32_are_exact)
{
	unsigned long long rows[HIST_ROWS];
	__u64 hist[GMEM_HIST_BUCKETS] = {};
	unsigned int fast = gmem_hist_bucket(1000);
	unsigned int slow = gmem_hist_bucket(2000);

	hist[fast] = (1ULL << 32) + 5;
	hist[slow] = 1ULL << 32;
	ASSERT_EQ(hist_total(hist), (1ULL << 33) + 5);
	ASSERT_EQ(hist_percentile(hist, 0.5), hist_mid(fast));
	ASSERT_EQ(hist_percentile(hist, 0.51), hist_mid(slow));
	hist_rows(hist, rows);
	ASSERT_EQ(rows[fast / GMEM_HIST_SUB], (1ULL << 32) + 5);
}

TEST_HARNESS_MAIN
