/* SPDX-License-Identifier: GPL-2.0 */
/* What a fleet scrapes: --openmetrics [ADDR:]PORT and --textfile PATH. */
#ifndef GMEMTOP_METRICS_H
#define GMEMTOP_METRICS_H

#include <sys/socket.h>

#include "report.h"

enum metrics_format { METRICS_TEXT, METRICS_OPENMETRICS };

/*
 * "9464" listens on 127.0.0.1; any other address is said explicitly:
 * "0.0.0.0:9464", "192.0.2.1:9464", "[::1]:9464", "[::]:9464".
 */
int metrics_parse_addr(const char *arg, struct sockaddr_storage *addr);
/* What an HTTP Accept header (NULL when absent) asks for. */
enum metrics_format metrics_negotiate(const char *accept);

struct metrics;

/*
 * Serves /metrics on @addr and writes @textfile (either may be NULL),
 * both from the latest report.  On failure, says why and returns NULL.
 */
struct metrics *metrics_new(const struct sockaddr_storage *addr,
			    const char *textfile);
/* Publish @r: what is served and written until the next update. */
void metrics_update(struct metrics *m, const struct report *r);
/*
 * The per-guest_memfd counters of @r, read just now, are about to restart
 * from zero (the view's 'r'): what is exported goes on from them.
 * Counters of the whole host (dropped records, what was not tracked,
 * hotspots expired) must not restart.
 */
void metrics_restart(struct metrics *m, const struct report *r);
void metrics_free(struct metrics *m);

/* The exposition of what @m publishes now. */
void metrics_print(FILE *out, const struct metrics *m,
		   enum metrics_format format);

#endif
