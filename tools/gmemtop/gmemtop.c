// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop: guest_memfd conversions live, per VM and per guest_memfd, from
 * the kvm_gmem trace events.  The kernel half (bpf/gmemtop.bpf.c) keeps
 * the counters and histograms; this half reads them every interval.
 */
#define _GNU_SOURCE	/* ppoll() */
#include <argp.h>
#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "gmemtop.h"
#include "gmemtop.skel.h"
#include "maps.h"
#include "metrics.h"
#include "probe.h"

static struct env env = {
	.delay = 1.0,
	.count = -1,
	.sort = SORT_RATE,
	.max_files = DEFAULT_MAX_FILES,
	.hotspot_window = DEFAULT_HOTSPOT_WINDOW,
	.cgroup_fd = -1,
};

static volatile sig_atomic_t exiting;

const char *argp_program_version = "gmemtop 0.1";
static const char gmemtop_doc[] =
"Watch guest_memfd conversions live, per VM and per guest_memfd.\n"
"\n"
"USAGE: gmemtop [OPTIONS] [DELAY [COUNT]]\n"
"\n"
"EXAMPLES:\n"
"    gmemtop                 # full-screen view, refreshed every second\n"
"    gmemtop -b 5            # batch: a table every 5 seconds\n"
"    gmemtop --json 1 10     # ten JSON objects, one a second\n"
"    gmemtop --csv -p 1234   # CSV lines for the VMM with pid 1234\n"
"    gmemtop --once          # one report after one interval\n"
"    gmemtop --hist 10 1     # latency distribution over ten seconds\n"
"    gmemtop --snoop -p 1234 # every conversion of one VMM as it ends\n"
"    gmemtop -b --openmetrics 9464   # also serve /metrics on 127.0.0.1\n"
"    gmemtop -b --textfile /var/lib/node_exporter/gmemtop.prom\n"
"    gmemtop -q -d 15 --textfile /var/lib/prometheus/node-exporter/gmemtop.prom\n"
"                            # a service: metrics only, nothing printed\n"
"    gmemtop --btf vmlinux   # what it would watch on that kernel\n";

/* gmemlat and gmemsnoop: the same program under the names of its modes. */
static const char gmemlat_doc[] =
"Summarize guest_memfd conversion latency as a histogram, per guest_memfd.\n"
"\n"
"USAGE: gmemlat [OPTIONS] [INTERVAL [COUNT]]\n"
"\n"
"EXAMPLES:\n"
"    gmemlat                 # until Ctrl-C, then the distributions\n"
"    gmemlat 1 10            # every second, ten times\n"
"    gmemlat -p 1234 5       # one VMM, every five seconds\n";

static const char gmemsnoop_doc[] =
"Trace guest_memfd conversions: a line per finished conversion.\n"
"\n"
"USAGE: gmemsnoop [OPTIONS] [COUNT]\n"
"\n"
"EXAMPLES:\n"
"    gmemsnoop               # every conversion until Ctrl-C\n"
"    gmemsnoop -p 1234       # the conversions of one VMM\n"
"    gmemsnoop --json 100    # a hundred JSON records, then exit\n";

enum { OPT_JSON = 1000, OPT_CSV, OPT_ONCE, OPT_OPENMETRICS, OPT_HIST,
       OPT_SNOOP, OPT_FENTRY, OPT_TEXTFILE, OPT_MAX_FILES, OPT_HOLDERS,
       OPT_BTF, OPT_HOTSPOT_WINDOW, OPT_CGROUP };

static const struct argp_option options[] = {
	{ "batch", 'b', NULL, 0, "Print a table each interval, no full screen" },
	{ "once", OPT_ONCE, NULL, 0, "Print one report and exit" },
	{ "quiet", 'q', NULL, 0,
	  "Print no report, only export them (--openmetrics, --textfile); "
	  "wait for kvm.ko if it is not loaded yet: for a service" },
	{ "json", OPT_JSON, NULL, 0, "One JSON object per interval" },
	{ "csv", OPT_CSV, NULL, 0, "CSV lines, one per guest_memfd and interval" },
	{ "hist", OPT_HIST, NULL, 0,
	  "Latency distribution per guest_memfd each interval (biolatency)" },
	{ "snoop", OPT_SNOOP, NULL, 0,
	  "A line per finished conversion (biosnoop); COUNT stops after COUNT" },
	{ "fentry", OPT_FENTRY, NULL, 0,
	  "Use what stock kernels offer (fexit on guest_memfd functions)" },
	{ "btf", OPT_BTF, "PATH", 0,
	  "Decide from the BTF in PATH as if it were the kernel's, say what "
	  "gmemtop would watch there and exit, loading nothing" },
	{ "openmetrics", OPT_OPENMETRICS, "[ADDR:]PORT", 0,
	  "Serve the counters and histograms at http://ADDR:PORT/metrics "
	  "(ADDR 127.0.0.1 unless given)" },
	{ "textfile", OPT_TEXTFILE, "PATH", 0,
	  "Write them to PATH every interval, for node_exporter's textfile "
	  "collector" },
	{ "holders", OPT_HOLDERS, "auto", OPTION_ARG_OPTIONAL,
	  "Name who holds each EAGAIN page (pid, comm, kernel stack); =auto: "
	  "watch GUP only while hotspots have new EAGAINs" },
	{ "max-files", OPT_MAX_FILES, "N", 0,
	  "Room for N guest_memfds in the kernel maps (default 256)" },
	{ "hotspot-window", OPT_HOTSPOT_WINDOW, "SECONDS", 0,
	  "Forget EAGAIN hotspots idle for longer (default 60, 0 never)" },
	{ "delay", 'd', "SECONDS", 0, "Interval between reports (default 1)" },
	{ "iterations", 'n', "COUNT", 0, "Stop after COUNT reports" },
	{ "pid", 'p', "PID", 0, "Only the VMM with this pid" },
	{ "vm", 'V', "ID", 0, "Only the VM with this id" },
	{ "cgroup", OPT_CGROUP, "PATH", 0,
	  "Only VMMs in this cgroup v2 directory or below it "
	  "(e.g. /sys/fs/cgroup/machine.slice)" },
	{ "sort", 's', "KEY", 0, "Sort by rate (default), eagain, p99, pid, ino" },
	{ "verbose", 'v', NULL, 0, "Show libbpf's debug output" },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Give this help list" },
	{},
};

static int parse_number(const char *arg, const char *what, double min,
			double max, double *value)
{
	char *end;

	errno = 0;
	*value = strtod(arg, &end);
	if (errno || end == arg || *end || !(*value >= min && *value <= max)) {
		fprintf(stderr, "gmemtop: invalid %s: '%s'\n", what, arg);
		return -EINVAL;
	}
	return 0;
}

/* [DELAY [COUNT]], or only [COUNT] when snooping. */
static error_t parse_positional(const char *arg, struct argp_state *state)
{
	unsigned int count_at = env.snoop ? 0 : 1;
	double v;

	if (state->arg_num == 0 && !env.snoop) {
		if (parse_number(arg, "delay", DELAY_MIN, DELAY_MAX, &env.delay))
			argp_usage(state);
		return 0;
	}
	if (state->arg_num != count_at ||
	    parse_number(arg, "count", 1, LONG_MAX, &v))
		argp_usage(state);
	env.count = v;
	return 0;
}

/*
 * The first option given whose figures only the kvm_gmem events give:
 * the fexit fallback has no conversions, latencies, holders, hotspots or
 * VM ids, and prints neither CSV nor metrics.
 */
static const char *option_needing_events(void)
{
	if (env.snoop)
		return "--snoop";
	if (env.format == FORMAT_HIST)
		return "--hist";
	if (env.format == FORMAT_CSV)
		return "--csv";
	if (env.holders)
		return "--holders";
	if (env.vm)
		return "--vm";
	if (env.cgroup_dir)
		return "--cgroup";
	if (env.hotspot_window_given)
		return "--hotspot-window";
	if (env.openmetrics)
		return "--openmetrics";
	if (env.textfile)
		return "--textfile";
	return NULL;
}

/* The first option given that prints something of its own. */
static const char *option_printing(void)
{
	if (env.snoop)
		return "--snoop";
	if (env.format == FORMAT_JSON)
		return "--json";
	if (env.format == FORMAT_CSV)
		return "--csv";
	if (env.format == FORMAT_HIST)
		return "--hist";
	if (env.btf)
		return "--btf";
	return NULL;
}

/*
 * --quiet prints nothing but why it cannot run: what it watches must go
 * somewhere else.
 */
static void check_quiet(struct argp_state *state)
{
	const char *option = option_printing();

	if (option) {
		fprintf(stderr, "gmemtop: --quiet prints nothing: not with %s\n",
			option);
		argp_usage(state);
	}
	if (!env.openmetrics && !env.textfile) {
		fprintf(stderr, "gmemtop: --quiet needs --openmetrics or --textfile: it would show nothing\n");
		argp_usage(state);
	}
}

/* Options that contradict each other: a usage error, whatever the kernel. */
static void check_combination(struct argp_state *state)
{
	const char *option = option_needing_events();

	if (env.fentry && option) {
		fprintf(stderr, "gmemtop: %s needs the kvm_gmem events: not with --fentry\n",
			option);
		argp_usage(state);
	}
	if (env.quiet)
		check_quiet(state);
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	double v;

	switch (key) {
	case 'b':
		env.batch = true;
		break;
	case OPT_ONCE:
		env.batch = true;
		env.count = 1;
		break;
	case 'q':
		env.quiet = true;
		env.batch = true;
		break;
	case OPT_JSON:
		env.format = FORMAT_JSON;
		break;
	case OPT_CSV:
		env.format = FORMAT_CSV;
		break;
	case OPT_HIST:
		env.batch = true;
		env.format = FORMAT_HIST;
		break;
	case OPT_SNOOP:
		env.snoop = true;
		break;
	case OPT_FENTRY:
		env.fentry = true;
		break;
	case OPT_OPENMETRICS:
		if (metrics_parse_addr(arg, &env.metrics_addr)) {
			fprintf(stderr, "gmemtop: invalid address '%s': want "
				"PORT (on 127.0.0.1), IPV4:PORT or [IPV6]:PORT; "
				"0.0.0.0:PORT serves every address\n", arg);
			argp_usage(state);
		}
		env.openmetrics = true;
		break;
	case OPT_TEXTFILE:
		env.textfile = arg;
		break;
	case OPT_HOLDERS:
		if (arg && strcmp(arg, "auto")) {
			fprintf(stderr, "gmemtop: invalid --holders '%s': want --holders or --holders=auto\n",
				arg);
			argp_usage(state);
		}
		env.holders = arg ? HOLDERS_AUTO : HOLDERS_ALWAYS;
		break;
	case OPT_BTF:
		env.btf = arg;
		break;
	case OPT_MAX_FILES:
		if (parse_number(arg, "--max-files", 1, MAX_MAX_FILES, &v) ||
		    v != (unsigned int)v) {
			fprintf(stderr, "gmemtop: --max-files is 1 to %u\n",
				MAX_MAX_FILES);
			argp_usage(state);
		}
		env.max_files = v;
		break;
	case OPT_HOTSPOT_WINDOW:
		if (parse_number(arg, "--hotspot-window", 0, MAX_HOTSPOT_WINDOW,
				 &env.hotspot_window))
			argp_usage(state);
		env.hotspot_window_given = true;
		break;
	case 'd':
		if (parse_number(arg, "delay", DELAY_MIN, DELAY_MAX, &env.delay))
			argp_usage(state);
		break;
	case 'n':
		if (parse_number(arg, "count", 1, LONG_MAX, &v))
			argp_usage(state);
		env.count = v;
		break;
	case 'p':
		if (parse_number(arg, "pid", 1, INT_MAX, &v))
			argp_usage(state);
		env.pid = v;
		break;
	case 'V':
		if (parse_number(arg, "VM id", 1, UINT32_MAX, &v))
			argp_usage(state);
		env.vm = v;
		break;
	case OPT_CGROUP:
		/* Checked now: a wrong path is a usage error on any kernel. */
		if (env.cgroup_fd >= 0)
			close(env.cgroup_fd);
		if (ident_open_cgroup(arg, env.cgroup, sizeof(env.cgroup),
				      &env.cgroup_fd))
			argp_usage(state);
		env.cgroup_dir = arg;
		break;
	case 's':
		if (parse_sort_key(arg, &env.sort)) {
			fprintf(stderr, "gmemtop: unknown sort key '%s'\n", arg);
			argp_usage(state);
		}
		break;
	case 'v':
		env.verbose = true;
		break;
	case 'h':
		argp_state_help(state, stdout, ARGP_HELP_STD_HELP);
		break;
	case ARGP_KEY_ARG:
		return parse_positional(arg, state);
	case ARGP_KEY_END:
		check_combination(state);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	if (level == LIBBPF_DEBUG && !env.verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static void on_signal(int sig)
{
	exiting = 1;
}

/*
 * SIGINT, SIGTERM and SIGHUP end every mode the same way: after a last
 * report, with the BPF programs detached.  Without SA_RESTART, so that
 * they cut short the wait for the next interval.  A closed pipe is seen
 * as a write error (EPIPE) rather than as a killing SIGPIPE.
 */
static void handle_signals(void)
{
	catch_ending_signals(on_signal);
	signal(SIGPIPE, SIG_IGN);
}

void sleep_interval(double delay, volatile sig_atomic_t *exiting)
{
	struct timespec ts = {
		.tv_sec = delay,
		.tv_nsec = (delay - (time_t)delay) * 1e9,
	};
	sigset_t saved;

	/* Checked with the signals held, waited for with them let in. */
	hold_signals(&saved);
	while (!*exiting) {
		ppoll(NULL, 0, delay > 0 ? &ts : NULL, &saved);
		if (delay > 0)
			break;
	}
	release_signals(&saved);
}

/*
 * The kernel preallocates every map at load: past this much map data,
 * --max-files deserves a word before it is spent (gmemtop(8), KERNEL
 * MEMORY).
 */
#define MEMORY_BUDGET_MIB	64

static void warn_over_budget(void)
{
	struct gmemtop_bpf *skel = gmemtop_bpf__open();
	double mib;

	if (!skel)
		return;
	if (!gmemtop_size_maps(skel, env.max_files, env.snoop)) {
		mib = bpf_object_memory(skel->obj, libbpf_num_possible_cpus()) /
		      (1024.0 * 1024.0);
		if (mib > MEMORY_BUDGET_MIB)
			fprintf(stderr, "gmemtop: warning: --max-files %u "
				"preallocates %.0f MiB of kernel memory in its "
				"maps, over the %d MiB budget\n",
				env.max_files, mib, MEMORY_BUDGET_MIB);
	}
	gmemtop_bpf__destroy(skel);
}

/*
 * Why the tool cannot run here, in words a VMM engineer can act on.
 * Nothing is loaded with --btf: neither privilege nor the kernel's BTF
 * matters then.
 */
static int check_environment(void)
{
	struct stat st;

	if (env.btf)
		return 0;
	if (!may_trace())
		return no_privilege();
	if (stat("/sys/kernel/btf/vmlinux", &st)) {
		fprintf(stderr, "gmemtop: this kernel has no BTF "
			"(/sys/kernel/btf/vmlinux); build it with "
			"CONFIG_DEBUG_INFO_BTF=y\n");
		return EXIT_NO_BTF;
	}
	return 0;
}

static int load_kernel_btf(struct kernel_btf *k)
{
	int err = kernel_btf_load(k, env.btf);

	if (!err)
		return 0;
	if (env.btf)
		fprintf(stderr, "gmemtop: no BTF in %s: %s\n", env.btf,
			strerror(-err));
	else
		fprintf(stderr, "gmemtop: cannot read this kernel's BTF: %s\n",
			strerror(-err));
	return EXIT_NO_BTF;
}

#define HOW_TO_GET_THE_EVENTS						\
	"  The kvm_gmem trace events come with the guest_memfd in-place\n"	\
	"  conversion series of this project: build and boot it with\n"	\
	"  'make kernel' and 'tests/vm/run' (see README.md).\n"

/*
 * The mode: full on the kvm_gmem events; the fexit fallback (*@fallback)
 * with --fentry, or where guest_memfd has no events.  Without guest_memfd,
 * or with an option only the events serve, says why: EXIT_NO_EVENTS.
 */
static int choose_mode(const struct kernel_offer *offer, bool *fallback)
{
	const char *option = option_needing_events();

	*fallback = env.fentry || !offer->events;
	if (!*fallback)
		return 0;
	if (!offer->kvm) {
		fputs("gmemtop: this kernel has no KVM (neither built in nor "
		      "kvm.ko loaded), so no guest_memfd.\n"
		      HOW_TO_GET_THE_EVENTS, stderr);
		return EXIT_NO_EVENTS;
	}
	if (!offer->gmem) {
		fputs("gmemtop: this kernel's KVM has no guest_memfd.\n"
		      HOW_TO_GET_THE_EVENTS, stderr);
		return EXIT_NO_EVENTS;
	}
	/* Only without the events: with --fentry it is a usage error. */
	if (option) {
		fprintf(stderr, "gmemtop: %s needs the kvm_gmem events; this "
			"kernel has guest_memfd without them\n", option);
		return EXIT_NO_EVENTS;
	}
	stock_notice(offer, env.fentry);
	return 0;
}

/*
 * --btf: what the run would do on that kernel, as far as it can be known
 * without loading: the programs it would leave out, and the mode.
 */
static int tell_mode(const struct kernel_btf *k, bool fallback)
{
	struct gmemtop_bpf *skel;

	if (fallback) {
		printf("gmemtop: would watch through fexit on guest_memfd functions\n");
		return 0;
	}
	skel = gmemtop_bpf__open();
	if (!skel) {
		fprintf(stderr, "gmemtop: failed to open the BPF programs\n");
		return EXIT_FAILURE;
	}
	select_programs(skel, k->btf);
	gmemtop_bpf__destroy(skel);
	printf("gmemtop: would watch through the kvm_gmem trace events\n");
	return 0;
}

/* The full-screen view wants a terminal on both sides; --btf shows none. */
static bool full_screen(void)
{
	return !env.batch && !env.snoop && env.format == FORMAT_TABLE &&
	       !env.btf && isatty(STDOUT_FILENO);
}

static struct report *take(struct report_state *state, double start,
			   double *last)
{
	double now = monotonic_s();
	struct report *r = report_take(state, now - *last, now - start);

	*last = now;
	if (r) {
		report_sort(r, env.sort);
		r->timestamp = wall_s();
	}
	return r;
}

/* A report, written whole whatever signal comes meanwhile. */
static bool print_whole(const struct report *r)
{
	sigset_t saved;
	bool ok;

	hold_signals(&saved);
	ok = report_print(stdout, r, env.format);
	release_signals(&saved);
	return ok;
}

/*
 * Batch modes: a report each interval, and a last one when interrupted.
 * Without an interval (gmemlat) the one report comes at Ctrl-C; metrics
 * (@exporting) still need fresh figures, so then the maps are read every
 * second and the report is cumulative.  With --quiet the reports are
 * only published.
 */
static int run_batch(struct report_state *state, bool exporting)
{
	double start = monotonic_s(), last = start;
	bool at_end_only = env.delay == 0;
	double step = at_end_only && exporting ? 1.0 : env.delay;
	struct report *r;
	bool ending;
	long done = 0;

	if (env.format == FORMAT_CSV)
		print_csv_header(stdout);
	if (env.format == FORMAT_HIST && at_end_only)
		printf("Tracing guest_memfd conversions... Hit Ctrl-C to end.\n");
	if (at_end_only && exporting)
		report_toggle_cumulative(state);
	for (;;) {
		sleep_interval(step, &exiting);
		ending = exiting;
		r = take(state, start, &last);
		if (!r)
			return EXIT_FAILURE;
		if (at_end_only && !ending)
			continue;
		if (!env.quiet && !print_whole(r))
			return 0;	/* the reader has gone */
		if (ending || (env.count > 0 && ++done == env.count))
			return 0;
	}
}

static int run(struct gmemtop_bpf *skel, struct metrics *metrics)
{
	struct report_state *state;
	int err;

	state = report_state_new(skel, env.holders, metrics,
				 env.hotspot_window);
	if (!state)
		return EXIT_FAILURE;
	if (env.cgroup_dir)
		report_state_filter_cgroup(state, env.cgroup);
	if (full_screen())
		err = view_run(state, &env, &exiting);
	else
		err = run_batch(state, metrics != NULL);
	report_state_free(state);
	return err;
}

/* With metrics, snoop takes a report every interval too. */
static int run_snoop(struct gmemtop_bpf *skel, struct metrics *metrics)
{
	struct report_state *state = NULL;
	int err;

	if (metrics) {
		state = report_state_new(skel, env.holders, metrics,
					 env.hotspot_window);
		if (!state)
			return EXIT_FAILURE;
		if (env.cgroup_dir)
			report_state_filter_cgroup(state, env.cgroup);
	}
	err = snoop_run(skel, state, &env, &exiting);
	if (state)
		report_state_free(state);
	return err;
}

/*
 * Timing the phases costs a lookup at every kvm_gmem_phase event: only
 * the outputs that show them pay it.
 */
static bool shows_phases(void)
{
	return env.snoop || env.openmetrics || env.textfile ||
	       env.format == FORMAT_JSON || env.format == FORMAT_HIST ||
	       full_screen();
}

/* --cgroup's directory into the array the programs test the task against. */
static int set_cgroup_filter(struct gmemtop_bpf *skel)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(skel->maps.cgroup_filter), &zero,
				&env.cgroup_fd, BPF_ANY))
		return -errno;
	return 0;
}

/* What feeds only the per-file maps, which --snoop alone never reads. */
static void drop_counting_programs(struct gmemtop_bpf *skel)
{
	bpf_program__set_autoload(skel->progs.refcount_fail, false);
	bpf_program__set_autoload(skel->progs.lru_drain, false);
	bpf_program__set_autoload(skel->progs.invalidate_begin, false);
}

static int load(const struct btf *btf, struct gmemtop_bpf **skelp)
{
	bool phases = shows_phases();
	bool metrics = env.openmetrics || env.textfile;
	bool aggregate = !env.snoop || metrics;
	struct gmemtop_bpf *skel;
	int err;

	skel = gmemtop_bpf__open();
	if (!skel) {
		fprintf(stderr, "gmemtop: failed to open the BPF programs\n");
		return EXIT_FAILURE;
	}
	skel->rodata->targ_pid = env.pid;
	skel->rodata->targ_vm = env.vm;
	skel->rodata->snoop = env.snoop;
	skel->rodata->phases = phases;
	skel->rodata->count_begins = metrics;
	skel->rodata->aggregate = aggregate;
	skel->rodata->filter_cgroup = env.cgroup_dir != NULL;

	select_programs(skel, btf);
	if (!phases)
		bpf_program__set_autoload(skel->progs.conversion_phase, false);
	if (!aggregate)
		drop_counting_programs(skel);
	err = gmemtop_size_maps(skel, env.max_files, env.snoop);
	if (!err)
		err = gmemtop_bpf__load(skel);
	if (!err && env.cgroup_dir)
		err = set_cgroup_filter(skel);
	if (!err)
		err = gmemtop_bpf__attach(skel);
	if (err) {
		gmemtop_bpf__destroy(skel);
		if (err == -EPERM || err == -EACCES)
			return no_privilege();
		fprintf(stderr, "gmemtop: failed to load or attach: %s\n",
			strerror(-err));
		return EXIT_FAILURE;
	}
	*skelp = skel;
	return 0;
}

/* gmemlat and gmemsnoop are gmemtop in one mode, with its own help. */
static const char *set_defaults(const char *argv0)
{
	char *name = basename((char *)argv0);

	if (!strcmp(name, "gmemlat")) {
		env.batch = true;
		env.format = FORMAT_HIST;
		env.delay = 0;
		return gmemlat_doc;
	}
	if (!strcmp(name, "gmemsnoop")) {
		env.snoop = true;
		return gmemsnoop_doc;
	}
	return gmemtop_doc;
}

static struct metrics *start_metrics(void)
{
	return metrics_new(env.openmetrics ? &env.metrics_addr : NULL,
			   env.textfile);
}

/*
 * Full mode, the kvm_gmem programs loaded: the metrics if asked for,
 * unless they were started while waiting for KVM (@metrics).
 */
static int run_events(struct gmemtop_bpf *skel, struct metrics *metrics)
{
	int err;

	if (!metrics && (env.openmetrics || env.textfile)) {
		metrics = start_metrics();
		if (!metrics) {
			gmemtop_bpf__destroy(skel);
			return EXIT_FAILURE;
		}
	}
	err = env.snoop ? run_snoop(skel, metrics) : run(skel, metrics);
	metrics_free(metrics);
	gmemtop_bpf__destroy(skel);
	return err;
}

/*
 * kvm.ko has finished loading: its events can be attached to, and it
 * can no longer fail its init and go away with them.
 */
static bool kvm_module_live(void)
{
	char state[16] = "";
	FILE *f = fopen("/sys/module/kvm/initstate", "r");

	if (!f)
		return false;
	if (!fgets(state, sizeof(state), f))
		state[0] = '\0';
	fclose(f);
	return !strcmp(state, "live\n");
}

/*
 * --quiet, a service started before kvm.ko: export empty reports (so
 * that the textfile stays fresh and the scrape up) until the module is
 * live, then read the kernel again.  *@metrics is left serving; false
 * when a signal came first or the metrics or BTF failed (*@err).
 */
static void export_no_files(struct metrics *metrics)
{
	struct report none = { .nr_files = 0, .timestamp = wall_s() };

	metrics_update(metrics, &none);
}

static bool wait_for_kvm(struct kernel_btf *k, struct kernel_offer *offer,
			 struct metrics **metrics, int *err)
{
	*err = 0;
	*metrics = start_metrics();
	if (!*metrics) {
		*err = EXIT_FAILURE;
		return false;
	}
	/* Said once the first report is out: a supervisor may look then. */
	export_no_files(*metrics);
	fprintf(stderr, "gmemtop: no KVM yet (kvm.ko not loaded): waiting for it\n");
	while (!offer->kvm) {
		sleep_interval(env.delay ?: 1.0, &exiting);
		if (exiting)
			return false;
		export_no_files(*metrics);
		if (!kvm_module_live())
			continue;
		kernel_btf_free(k);
		*err = load_kernel_btf(k);
		if (*err)
			return false;
		read_kernel_offer(k->btf, offer);
	}
	return true;
}

/*
 * Every argument is checked before the kernel is looked at, so that a
 * usage error is one whatever the kernel; then what the kernel offers
 * decides the mode.
 */
int main(int argc, char **argv)
{
	struct argp argp = {
		.options = options,
		.parser = parse_arg,
		.doc = set_defaults(argv[0]),
	};
	struct gmemtop_bpf *skel = NULL;
	struct metrics *metrics = NULL;
	struct kernel_offer offer;
	struct kernel_btf k;
	bool fallback;
	int err;

	argp_err_exit_status = EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, NULL))
		return EXIT_USAGE;
	if (full_screen() && !isatty(STDIN_FILENO)) {
		fprintf(stderr, "gmemtop: the full-screen view reads its keys "
			"from a terminal and stdin is not one; use -b, --json "
			"or --csv\n");
		return EXIT_USAGE;
	}

	libbpf_set_print(libbpf_print);
	warn_over_budget();
	err = check_environment();
	if (!err)
		err = load_kernel_btf(&k);
	if (err)
		return err;
	read_kernel_offer(k.btf, &offer);
	if (!offer.kvm && env.quiet) {
		/* A signal ends the wait, as it ends a run. */
		handle_signals();
		if (!wait_for_kvm(&k, &offer, &metrics, &err)) {
			metrics_free(metrics);
			kernel_btf_free(&k);
			return err;
		}
	}
	err = choose_mode(&offer, &fallback);
	if (!err && env.btf) {
		err = tell_mode(&k, fallback);
	} else if (!err) {
		/* A signal from here on still ends with a last report. */
		handle_signals();
		if (!fallback)
			err = load(k.btf, &skel);
		/* What was waited for is watched now: once, in the journal. */
		if (!err && metrics)
			fprintf(stderr, "gmemtop: kvm.ko is loaded: watching it\n");
	}
	kernel_btf_free(&k);	/* big, and of no more use */
	if (err || env.btf) {
		metrics_free(metrics);
		return err;
	}
	return fallback ? stock_run(&env, &offer, &exiting) :
			  run_events(skel, metrics);
}
