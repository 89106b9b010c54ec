/* SPDX-License-Identifier: GPL-2.0 */
/* The two clocks gmemtop reads, in seconds. */
#ifndef GMEMTOP_CLOCK_H
#define GMEMTOP_CLOCK_H

#include <time.h>

static inline double clock_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Intervals; also bpf_ktime_get_ns()'s clock, so events' ts_ns. */
static inline double monotonic_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* Timestamps people and other hosts read: seconds since the epoch. */
static inline double wall_s(void)
{
	return clock_s(CLOCK_REALTIME);
}

#endif
