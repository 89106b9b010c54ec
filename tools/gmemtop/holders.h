/* SPDX-License-Identifier: GPL-2.0 */
/* --holders: who holds the pages that make conversions fail with EAGAIN. */
#ifndef GMEMTOP_HOLDERS_H
#define GMEMTOP_HOLDERS_H

#include <stdbool.h>

/*
 * --holders=auto: reports in a row without a new EAGAIN after which GUP
 * is no longer watched.
 */
#define HOLDERS_QUIET_REPORTS	5

struct holders;
struct report;

/*
 * Loads bpf/gmemhold.bpf.c and attaches it; with @on_demand
 * (--holders=auto) detaches it again at once, so that attaching is known
 * to work.  NULL (and a message) on failure.
 */
struct holders *holders_open(bool on_demand);
void holders_close(struct holders *h);
/*
 * With --holders=auto: watches GUP from the report whose hotspots show
 * a new EAGAIN until HOLDERS_QUIET_REPORTS reports show none.
 */
void holders_watch_as_needed(struct holders *h, const struct report *r);
/* Fills in the holder of each of @r's hotspots, or leaves it unknown. */
void holders_name(const struct holders *h, struct report *r);

#endif
