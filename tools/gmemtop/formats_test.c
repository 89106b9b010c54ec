// SPDX-License-Identifier: GPL-2.0
/*
 * One synthetic report in every output format, for
 * tests/host/gmemtop-formats.test to check with json, csv, promtool and an
 * OpenMetrics parser:
 *   formats_test json|csv|table|hist|prometheus|openmetrics
 *   formats_test stock-json|stock-table
 *   formats_test serve [ADDR:]PORT	serve it until stdin closes
 *   formats_test textfile PATH		write it as --textfile does
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

static struct file_row row = {
	.ino = 4242,
	.now = {
		.pid = 77, .vm = 3, .comm = "vmm \"q\"\\x",
		.ioctls = 12, .conversions = { 4, 6 }, .pages = { 40, 60 },
		.eagain = 2, .errors = 1, .invalidations = 10,
		.invalidated_gfns = 100, .lat_sum_ns = 10 * 300000,
		.lat_max_ns = 900000,
		.phase_ns = { 1000, 2000, 3000, 4000, 5000, 6000, 7000 },
	},
	.then = &(const struct gmem_file_stats){
		.conversions = { 2, 3 }, .pages = { 20, 30 }, .eagain = 1,
	},
	.fdinfo = { .size = 65536, .shared_pages = 12, .private_pages = 4,
		    .layout = "0x0-0x4000 private, 0x4000-0x10000 shared",
		    .summary = "ppppssssssssssss", .summary_cell = 4096 },
	/*
	 * Names to be escaped: a backslash (systemd's), quotes, a newline,
	 * UTF-8 (U+00E9) and a byte of no UTF-8 sequence.
	 */
	.ident = {
		.cgroup = "/machine.slice/machine-qemu\\x2d1\\x2dq.scope",
		.name = "q\"vm\\\n\xc3\xa9\xff",
		.uuid = "1234abcd-0000-4000-8000-00000000beef",
	},
};

/* Its holder's name would clear a terminal, were it printed raw. */
static struct hotspot_row spot = {
	.key = { .ino = 4242, .offset = 0x5000 },
	.spot = { .count = 2, .refcount = 2, .expected = 1, .cause = 3 },
	.holder = { .known = true, .pid = 79, .tid = 80,
		    .comm = "\x1b[2Jhold\t", .kind = GMEM_HOLD_PIN,
		    .stack = "gup+0x1;splice+0x2" },
};

/*
 * --holders=auto, GUP not watched now, and the holder unknown: it was
 * taken before watching.
 */
static void unwatched(struct report *r)
{
	r->holders = HOLDERS_AUTO;
	r->watching_gup = false;
	spot.holder.known = false;
}

/* As holders.c leaves it when /proc/kallsyms hides the addresses. */
static void hide_stack(struct holder *who)
{
	who->stack[0] = '\0';
	who->stack_hidden = true;
}

/*
 * A process name may hold any byte but NUL: quotes, controls, UTF-8
 * (U+00E9), a byte of no UTF-8 sequence.
 */
static struct stock_row stock_row = {
	.ino = 4243,
	.stats = {
		.pid = 78, .comm = "q\"b\\\x01\t\xc3\xa9\xff", .faults = 5,
		.sigbus = 1, .punch_holes = 2, .punched_bytes = 8192,
		.allocations = 3, .allocated_bytes = 12288,
	},
};

static void print_metrics(const struct report *r, enum metrics_format format)
{
	struct metrics *m = metrics_new(NULL, NULL);

	if (!m)
		exit(1);
	metrics_update(m, r);
	metrics_print(stdout, m, format);
	metrics_free(m);
}

/* "serve ADDR" or "textfile PATH", as gmemtop does. */
static int publish(const struct report *r, const char *how, const char *where)
{
	struct sockaddr_storage addr;
	struct metrics *m;
	char c;

	if (!strcmp(how, "serve")) {
		if (metrics_parse_addr(where, &addr))
			return 2;
		m = metrics_new(&addr, NULL);
	} else if (!strcmp(how, "textfile")) {
		m = metrics_new(NULL, where);
	} else {
		return 2;
	}
	if (!m)
		return 1;
	metrics_update(m, r);
	printf("ready\n");
	fflush(stdout);
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	metrics_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	struct report r = {
		.files = &row, .nr_files = 1, .hotspots = &spot,
		.nr_hotspots = 1, .holders = HOLDERS_ALWAYS, .watching_gup = true,
		.dropped = 5, .interval = 2.0,
		.elapsed = 10.0, .timestamp = 1764109261.5,
		.losses = { .files = 7, .events = 19, .hotspot_eagains = 2,
			    .untimed = 3 },
		.hotspots_expired = 4, .max_files = 256,
	};
	struct stock_report stock = { .files = &stock_row, .nr_files = 1,
				      .files_not_tracked = 2,
				      .events_not_counted = 5,
				      .timestamp = 1764109261.5 };
	struct gmem_lat *eagain = &row.now.outcome[GMEM_OUTCOME_EAGAIN];
	int i;

	/* Ten conversions: 100 us, and 1 ms for the slowest. */
	for (i = 0; i < 9; i++)
		row.now.hist[gmem_hist_bucket(100000)]++;
	row.now.hist[gmem_hist_bucket(1000000)]++;
	memcpy(row.now.outcome[GMEM_OUTCOME_CHANGED].hist, row.now.hist,
	       sizeof(row.now.hist));
	row.now.outcome[GMEM_OUTCOME_CHANGED].count = 10;
	row.now.outcome[GMEM_OUTCOME_CHANGED].max_ns = 1000000;
	/* Two EAGAINs of 50 us, most of it in the reference check. */
	eagain->hist[gmem_hist_bucket(50000)] = 2;
	eagain->count = 2;
	eagain->sum_ns = 100000;
	eagain->max_ns = 50000;
	eagain->phase_ns[GMEM_PHASE_REFCHECK] = 80000;
	eagain->phase_ns[GMEM_PHASE_TAIL] = 20000;

	if (argc == 3)
		return publish(&r, argv[1], argv[2]);
	if (argc != 2)
		return 2;
	if (!strcmp(argv[1], "json"))
		print_json(stdout, &r);
	else if (!strcmp(argv[1], "csv")) {
		print_csv_header(stdout);
		print_csv(stdout, &r);
	} else if (!strcmp(argv[1], "table"))
		print_table(stdout, &r);
	else if (!strcmp(argv[1], "json-hidden-stack")) {
		hide_stack(&spot.holder);
		print_json(stdout, &r);
	} else if (!strcmp(argv[1], "table-hidden-stack")) {
		hide_stack(&spot.holder);
		print_table(stdout, &r);
	}
	else if (!strcmp(argv[1], "json-auto")) {
		unwatched(&r);
		print_json(stdout, &r);
	} else if (!strcmp(argv[1], "table-auto")) {
		unwatched(&r);
		print_table(stdout, &r);
	}
	else if (!strcmp(argv[1], "hist"))
		print_hist(stdout, &r);
	else if (!strcmp(argv[1], "prometheus"))
		print_metrics(&r, METRICS_TEXT);
	else if (!strcmp(argv[1], "openmetrics"))
		print_metrics(&r, METRICS_OPENMETRICS);
	else if (!strcmp(argv[1], "stock-json"))
		print_stock_json(stdout, &stock);
	else if (!strcmp(argv[1], "stock-table"))
		print_stock_table(stdout, &stock);
	else
		return 2;
	return 0;
}
