// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop: guest_memfd conversions live, per VM and per guest_memfd, from
 * the kvm_gmem trace events.  The kernel half (bpf/gmemtop.bpf.c) keeps
 * the counters and histograms; this half reads them every interval.
 */
#include <argp.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "gmemtop.h"
#include "gmemtop.skel.h"
#include "metrics.h"

struct metrics *metrics;

struct env env = {
	.delay = 1.0,
	.count = -1,
	.sort = SORT_RATE,
};

static volatile sig_atomic_t exiting;

const char *argp_program_version = "gmemtop 0.1";
static const char doc[] =
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
"    gmemtop -b --textfile /var/lib/node_exporter/gmemtop.prom\n";

enum { OPT_JSON = 1000, OPT_CSV, OPT_ONCE, OPT_OPENMETRICS, OPT_HIST,
       OPT_SNOOP, OPT_FENTRY, OPT_TEXTFILE };

static const struct argp_option options[] = {
	{ "batch", 'b', NULL, 0, "Print a table each interval, no full screen" },
	{ "once", OPT_ONCE, NULL, 0, "Print one report and exit" },
	{ "json", OPT_JSON, NULL, 0, "One JSON object per interval" },
	{ "csv", OPT_CSV, NULL, 0, "CSV lines, one per guest_memfd and interval" },
	{ "hist", OPT_HIST, NULL, 0,
	  "Latency distribution per guest_memfd each interval (biolatency)" },
	{ "snoop", OPT_SNOOP, NULL, 0,
	  "A line per finished conversion (biosnoop); COUNT stops after COUNT" },
	{ "fentry", OPT_FENTRY, NULL, 0,
	  "Use what stock kernels offer (fexit on guest_memfd functions)" },
	{ "openmetrics", OPT_OPENMETRICS, "[ADDR:]PORT", 0,
	  "Serve the counters and histograms at http://ADDR:PORT/metrics "
	  "(ADDR 127.0.0.1 unless given)" },
	{ "textfile", OPT_TEXTFILE, "PATH", 0,
	  "Write them to PATH every interval, for node_exporter's textfile "
	  "collector" },
	{ "delay", 'd', "SECONDS", 0, "Interval between reports (default 1)" },
	{ "iterations", 'n', "COUNT", 0, "Stop after COUNT reports" },
	{ "pid", 'p', "PID", 0, "Only the VMM with this pid" },
	{ "vm", 'V', "ID", 0, "Only the VM with this id" },
	{ "sort", 's', "KEY", 0, "Sort by rate (default), eagain, p99, pid, ino" },
	{ "verbose", 'v', NULL, 0, "Show libbpf's debug output" },
	{},
};

static int parse_number(const char *arg, const char *what, double min,
			double *value)
{
	char *end;

	errno = 0;
	*value = strtod(arg, &end);
	if (errno || end == arg || *end || *value < min) {
		fprintf(stderr, "gmemtop: invalid %s: '%s'\n", what, arg);
		return -EINVAL;
	}
	return 0;
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
	case 'd':
		if (parse_number(arg, "delay", 0.01, &env.delay))
			argp_usage(state);
		break;
	case 'n':
		if (parse_number(arg, "count", 1, &v))
			argp_usage(state);
		env.count = v;
		break;
	case 'p':
		if (parse_number(arg, "pid", 1, &v))
			argp_usage(state);
		env.pid = v;
		break;
	case 'V':
		if (parse_number(arg, "VM id", 1, &v))
			argp_usage(state);
		env.vm = v;
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
	case ARGP_KEY_ARG:
		if (state->arg_num == 0 &&
		    !parse_number(arg, "delay", 0.01, &env.delay))
			break;
		if (state->arg_num == 1 && !parse_number(arg, "count", 1, &v)) {
			env.count = v;
			break;
		}
		argp_usage(state);
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

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool has_kvm_gmem_events(void)
{
	struct stat st;

	return !stat("/sys/kernel/tracing/events/kvm_gmem", &st) ||
	       !stat("/sys/kernel/debug/tracing/events/kvm_gmem", &st);
}

/* Why the tool cannot run here, in words a VMM engineer can act on. */
static int check_environment(void)
{
	struct stat st;

	if (geteuid()) {
		fprintf(stderr, "gmemtop: must run as root (it loads BPF programs)\n");
		return EXIT_NOT_ROOT;
	}
	if (stat("/sys/kernel/btf/vmlinux", &st)) {
		fprintf(stderr, "gmemtop: this kernel has no BTF "
			"(/sys/kernel/btf/vmlinux); build it with "
			"CONFIG_DEBUG_INFO_BTF=y\n");
		return EXIT_NO_BTF;
	}
	if (!has_kvm_gmem_events() && !stock_supported()) {
		fprintf(stderr, "gmemtop: this kernel has no kvm_gmem trace events.\n"
			"  They come with the guest_memfd in-place conversion series of\n"
			"  this project: build and boot it with 'make kernel' and\n"
			"  'tests/vm/run' (see README.md).\n");
		return EXIT_NO_EVENTS;
	}
	return 0;
}

static int run(struct gmemtop_bpf *skel)
{
	struct report_state *state;
	double start = now_s(), last = start;
	long done = 0;
	int err = 0;

	state = report_state_new(skel);
	if (!state)
		return EXIT_FAILURE;

	if (!env.batch && env.format == FORMAT_TABLE && isatty(STDOUT_FILENO)) {
		err = view_run(state, &exiting);
		report_state_free(state);
		return err;
	}

	if (env.format == FORMAT_CSV)
		print_csv_header(stdout);
	while (!exiting && (env.count < 0 || done < env.count)) {
		struct report *r;
		double now;

		usleep(env.delay * 1e6);
		now = now_s();
		r = report_take(state, now - last, now - start);
		if (!r) {
			err = EXIT_FAILURE;
			break;
		}
		last = now;
		report_print(stdout, r);
		done++;
	}
	/* Interrupted: one last report, so that nothing counted is lost. */
	if (exiting && !err) {
		double now = now_s();

		report_print(stdout, report_take(state, now - last,
						 now - start));
	}
	report_state_free(state);
	return err;
}

static int run_snoop(struct gmemtop_bpf *skel)
{
	struct report_state *state = NULL;
	int err;

	if (metrics) {
		state = report_state_new(skel);
		if (!state)
			return EXIT_FAILURE;
	}
	err = snoop_run(skel, state, &exiting);
	if (state)
		report_state_free(state);
	return err;
}

int main(int argc, char **argv)
{
	static const struct argp argp = {
		.options = options,
		.parser = parse_arg,
		.doc = doc,
	};
	struct gmemtop_bpf *skel;
	int err;

	argp_err_exit_status = EXIT_USAGE;
	err = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (err)
		return EXIT_USAGE;

	err = check_environment();
	if (err)
		return err;

	libbpf_set_print(libbpf_print);
	if (env.fentry || !has_kvm_gmem_events()) {
		if (env.openmetrics || env.textfile) {
			fprintf(stderr, "gmemtop: --openmetrics and --textfile "
				"export what the kvm_gmem events count; %s\n",
				env.fentry ? "not with --fentry" :
				"this kernel has none");
			return env.fentry ? EXIT_USAGE : EXIT_NO_EVENTS;
		}
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		return stock_run(&exiting);
	}
	skel = gmemtop_bpf__open();
	if (!skel) {
		fprintf(stderr, "gmemtop: failed to open the BPF programs\n");
		return EXIT_FAILURE;
	}
	skel->rodata->targ_pid = env.pid;
	skel->rodata->targ_vm = env.vm;
	skel->rodata->snoop = env.snoop;

	err = gmemtop_bpf__load(skel);
	if (!err)
		err = gmemtop_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "gmemtop: failed to load or attach: %s\n",
			strerror(-err));
		gmemtop_bpf__destroy(skel);
		return EXIT_FAILURE;
	}

	if (env.openmetrics || env.textfile) {
		metrics = metrics_new(env.openmetrics ? &env.metrics_addr : NULL,
				      env.textfile);
		if (!metrics) {
			gmemtop_bpf__destroy(skel);
			return EXIT_FAILURE;
		}
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	err = env.snoop ? run_snoop(skel) : run(skel);
	metrics_free(metrics);
	gmemtop_bpf__destroy(skel);
	return err;
}
