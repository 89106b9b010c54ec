// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <string.h>

#include "hist.h"

unsigned long long hist_mid(unsigned int bucket)
{
	unsigned long long low = gmem_hist_low(bucket);

	if (bucket + 1 >= GMEM_HIST_BUCKETS || bucket < GMEM_HIST_SUB)
		return low;
	return low + (gmem_hist_low(bucket + 1) - low) / 2;
}

unsigned long long hist_total(const __u64 *hist)
{
	unsigned long long total = 0;
	unsigned int i;

	for (i = 0; i < GMEM_HIST_BUCKETS; i++)
		total += hist[i];
	return total;
}

unsigned long long hist_percentile(const __u64 *hist, double q)
{
	unsigned long long total = hist_total(hist), seen = 0, rank;
	unsigned int i;

	if (!total)
		return 0;

	rank = (unsigned long long)ceil(q * total);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < GMEM_HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen >= rank)
			return hist_mid(i);
	}
	return hist_mid(GMEM_HIST_BUCKETS - 1);
}

void hist_rows(const __u64 *hist, unsigned long long rows[HIST_ROWS])
{
	unsigned int b;

	memset(rows, 0, HIST_ROWS * sizeof(rows[0]));
	for (b = 0; b < GMEM_HIST_BUCKETS; b++)
		rows[b / GMEM_HIST_SUB] += hist[b];
}

unsigned long long hist_row_low(unsigned int row)
{
	return gmem_hist_low(row * GMEM_HIST_SUB);
}
