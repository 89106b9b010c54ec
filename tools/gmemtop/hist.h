/* SPDX-License-Identifier: GPL-2.0 */
/* Reading the log-linear latency histograms of bpf/gmem_hist.h. */
#ifndef GMEMTOP_HIST_H
#define GMEMTOP_HIST_H

#include <linux/types.h>
#include "gmem_hist.h"

/* Midpoint of @bucket: within 3.2% of any value that fell in it. */
unsigned long long hist_mid(unsigned int bucket);

unsigned long long hist_total(const __u64 *hist);

/*
 * The value below which a fraction @q (0 < q <= 1) of the samples fall,
 * to bucket precision; 0 when the histogram is empty.
 */
unsigned long long hist_percentile(const __u64 *hist, double q);

/* Buckets grouped by power of two, for bars: one row per power. */
#define HIST_ROWS	(GMEM_HIST_BUCKETS / GMEM_HIST_SUB)
void hist_rows(const __u64 *hist, unsigned long long rows[HIST_ROWS]);
/* Lower bound of row @row of hist_rows(). */
unsigned long long hist_row_low(unsigned int row);

#endif
