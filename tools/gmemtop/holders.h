/* SPDX-License-Identifier: GPL-2.0 */
/* --holders: who holds the pages that make conversions fail with EAGAIN. */
#ifndef GMEMTOP_HOLDERS_H
#define GMEMTOP_HOLDERS_H

struct holders;
struct report;

/* Loads and attaches bpf/gmemhold.bpf.c; NULL (and a message) on failure. */
struct holders *holders_open(void);
void holders_close(struct holders *h);
/* Fills in the holder of each of @r's hotspots, or leaves it unknown. */
void holders_name(const struct holders *h, struct report *r);

#endif
