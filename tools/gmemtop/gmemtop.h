/* SPDX-License-Identifier: GPL-2.0 */
#ifndef GMEMTOP_H
#define GMEMTOP_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>

#include "report.h"
#include "signals.h"

/* Exit codes, documented in gmemtop.8. */
#define EXIT_USAGE		2
#define EXIT_NO_PRIVILEGE	3
#define EXIT_NO_BTF		4
#define EXIT_NO_EVENTS		5

/* Bounds of -d, and of the view's '-' and '+' (it stays interactive). */
#define DELAY_MIN	0.01
#define DELAY_MAX	3600.0
#define VIEW_DELAY_MIN	0.1
#define VIEW_DELAY_MAX	60.0

/* The command line, read once; every mode is handed it. */
struct env {
	pid_t pid;
	__u32 vm;
	double delay;
	long count;
	bool batch;
	bool quiet;		/* --quiet: reports are exported, never printed */
	bool verbose;
	enum format format;
	enum sort_key sort;
	bool snoop;
	bool fentry;		/* the fallback even if the events exist */
	unsigned int max_files;	/* room in the kernel maps */
	double hotspot_window;	/* idle hotspots are forgotten after it; 0 never */
	bool hotspot_window_given;	/* on the command line */
	enum holders_mode holders;	/* name who holds the EAGAIN pages */
	bool openmetrics;
	struct sockaddr_storage metrics_addr;
	const char *textfile;	/* --textfile: node_exporter's collector */
	const char *btf;	/* --btf: decide from this BTF, load nothing */
	const char *cgroup_dir;	/* --cgroup, as given */
	char cgroup[IDENT_CGROUP_LEN];	/* its path as /proc/PID/cgroup has it */
	int cgroup_fd;		/* open, for the BPF programs' cgroup array */
};

struct gmemtop_bpf;
struct metrics;
struct report_state;

/*
 * With @holders, also name who holds each hotspot's page (--holders,
 * --holders=auto).
 * With @metrics (--openmetrics, --textfile), every report taken is
 * published there.  Hotspots without an EAGAIN for @hotspot_window
 * seconds are deleted (never, with 0).
 */
struct report_state *report_state_new(struct gmemtop_bpf *skel,
				      enum holders_mode holders,
				      struct metrics *metrics,
				      double hotspot_window);
void report_state_free(struct report_state *state);
/*
 * --cgroup: only the VMMs in cgroup @path (as /proc/PID/cgroup names it)
 * or below it, as the BPF programs count them: fdinfo is not read for
 * the others, and nothing of them is shown or exported.
 */
void report_state_filter_cgroup(struct report_state *state, const char *path);
/*
 * Reads the maps; @interval is the time since the previous call.  The
 * rows come in the maps' order: report_sort() them.
 */
struct report *report_take(struct report_state *state, double interval,
			   double elapsed);
/* Forget everything counted so far (the view's 'r' key). */
void report_reset(struct report_state *state);
/* Figures since the start instead of over the interval (the 'c' key). */
void report_toggle_cumulative(struct report_state *state);

/*
 * The modes.  Each returns an exit status, and stops early once
 * *@exiting is set (by SIGINT, SIGTERM or SIGHUP) or its output is gone.
 */
int view_run(struct report_state *state, const struct env *env,
	     volatile sig_atomic_t *exiting);
/*
 * --snoop: a line (or JSON object) per finished conversion; with @state,
 * a report every interval too, for --openmetrics and --textfile.
 */
int snoop_run(struct gmemtop_bpf *skel, struct report_state *state,
	      const struct env *env, volatile sig_atomic_t *exiting);
/*
 * Sleeps one interval, cut short by a signal; a @delay of 0 sleeps until
 * *@exiting is set.  Returns at once when it already is, however late
 * the signal came: a run stopped at any moment still ends with a report.
 */
void sleep_interval(double delay, volatile sig_atomic_t *exiting);
/*
 * Kernels with guest_memfd but without the kvm_gmem events, or --fentry
 * (@forced): what the fallback shows and what it cannot, then the run.
 */
struct kernel_offer;
void stock_notice(const struct kernel_offer *offer, bool forced);
int stock_run(const struct env *env, const struct kernel_offer *offer,
	      volatile sig_atomic_t *exiting);

/* Snoop records the ring buffer had no room for, over all CPUs. */
__u64 dropped_records(struct gmemtop_bpf *skel);
/* Whether this process may load tracing programs; no_privilege() says not. */
bool may_trace(void);
/* Prints why, and returns EXIT_NO_PRIVILEGE. */
int no_privilege(void);
/*
 * The name of process @pid (its main thread's comm) into @comm, or
 * @comm left as it is when the process is gone.
 */
void read_process_name(pid_t pid, char comm[GMEM_COMM_LEN]);

#endif
