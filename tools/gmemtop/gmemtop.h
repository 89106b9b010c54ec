/* SPDX-License-Identifier: GPL-2.0 */
#ifndef GMEMTOP_H
#define GMEMTOP_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>

#include "report.h"

/* Exit codes, documented in gmemtop.8. */
#define EXIT_USAGE	2
#define EXIT_NOT_ROOT	3
#define EXIT_NO_BTF	4
#define EXIT_NO_EVENTS	5

enum format { FORMAT_TABLE, FORMAT_JSON, FORMAT_CSV, FORMAT_HIST };

struct env {
	pid_t pid;
	__u32 vm;
	double delay;
	long count;
	bool batch;
	bool verbose;
	enum format format;
	enum sort_key sort;
	bool snoop;
	bool fentry;		/* the fallback even if the events exist */
	bool openmetrics;
	struct sockaddr_storage metrics_addr;
	const char *textfile;	/* --textfile: node_exporter's collector */
};

extern struct env env;
/* With --openmetrics or --textfile: every report taken is published. */
extern struct metrics *metrics;

struct gmemtop_bpf;
struct report_state;

struct report_state *report_state_new(struct gmemtop_bpf *skel);
void report_state_free(struct report_state *state);
/* Reads the maps; @interval is the time since the previous call. */
struct report *report_take(struct report_state *state, double interval,
			   double elapsed);
/* Forget everything counted so far (the view's 'r' key). */
void report_reset(struct report_state *state);
void report_print(FILE *out, const struct report *r);

int view_run(struct report_state *state, volatile sig_atomic_t *exiting);
/* Seconds on the monotonic clock. */
double now_s(void);
/* Snoop records the ring buffer had no room for, over all CPUs. */
__u64 dropped_records(struct gmemtop_bpf *skel);
/* Kernels with guest_memfd but without the kvm_gmem events. */
bool stock_supported(void);
int stock_run(volatile sig_atomic_t *exiting);
/*
 * --snoop: a line (or JSON object) per finished conversion; with @state,
 * a report every interval too, for --openmetrics and --textfile.
 */
int snoop_run(struct gmemtop_bpf *skel, struct report_state *state,
	      volatile sig_atomic_t *exiting);

#endif
