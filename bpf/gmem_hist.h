/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Log-linear latency histogram shared by the BPF programs and user space.
 *
 * Values below 16 ns get a bucket each.  Above, every power of two is cut
 * into 16 equal buckets, so a bucket is at most 1/16 (6.25%) of its lower
 * bound wide: that bounds the error of anything read off the histogram.
 * The last power of two is 2^GMEM_HIST_MAX_LOG2 ns (about 9 minutes);
 * larger values land in its top bucket.
 */
#ifndef GMEM_HIST_H
#define GMEM_HIST_H

#define GMEM_HIST_SUB_BITS	4
#define GMEM_HIST_SUB		(1 << GMEM_HIST_SUB_BITS)
#define GMEM_HIST_MAX_LOG2	39
#define GMEM_HIST_BUCKETS	((GMEM_HIST_MAX_LOG2 - GMEM_HIST_SUB_BITS + 2) * \
				 GMEM_HIST_SUB)

/* Index of the highest set bit of v, v > 0, without loops (for BPF). */
static inline unsigned int gmem_log2(unsigned long long v)
{
	unsigned int r = 0, shift;

	shift = (v > 0xffffffffULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xffff) << 4; v >>= shift; r |= shift;
	shift = (v > 0xff) << 3; v >>= shift; r |= shift;
	shift = (v > 0xf) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static inline unsigned int gmem_hist_bucket(unsigned long long ns)
{
	unsigned int log2, sub;

	if (ns < GMEM_HIST_SUB)
		return ns;

	log2 = gmem_log2(ns);
	if (log2 > GMEM_HIST_MAX_LOG2)
		return GMEM_HIST_BUCKETS - 1;

	sub = (ns >> (log2 - GMEM_HIST_SUB_BITS)) & (GMEM_HIST_SUB - 1);
	return (log2 - GMEM_HIST_SUB_BITS + 1) * GMEM_HIST_SUB + sub;
}

/* Smallest value that falls in @bucket. */
static inline unsigned long long gmem_hist_low(unsigned int bucket)
{
	unsigned int log2 = bucket / GMEM_HIST_SUB + GMEM_HIST_SUB_BITS - 1;

	if (bucket < GMEM_HIST_SUB)
		return bucket;

	return (unsigned long long)(GMEM_HIST_SUB + bucket % GMEM_HIST_SUB) <<
	       (log2 - GMEM_HIST_SUB_BITS);
}

#endif /* GMEM_HIST_H */
