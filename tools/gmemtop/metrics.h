/* SPDX-License-Identifier: GPL-2.0 */
#ifndef GMEMTOP_METRICS_H
#define GMEMTOP_METRICS_H

#include <netinet/in.h>

#include "hist.h"
#include "report.h"

struct metrics_server;

/* "127.0.0.1:9464", or ":9464" for every address. */
int metrics_parse_addr(const char *arg, struct sockaddr_in *addr);
struct metrics_server *metrics_start(const struct sockaddr_in *addr);
/* Publish @r: what GET /metrics answers until the next update. */
void metrics_update(struct metrics_server *server, const struct report *r);
void metrics_stop(struct metrics_server *server);

void print_openmetrics(FILE *out, const struct report *r);

#endif
