// SPDX-License-Identifier: GPL-2.0
/* gmemtop's outputs: the batch table, CSV and JSON. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hist.h"
#include "json.h"
#include "report.h"

static const char *const causes[GMEM_NR_CAUSES] = {
	"pinned", "mapped", "transient", "other",
};

static const char *const phases[GMEM_NR_PHASES] = {
	"lock", "unmap", "refcheck", "invalidate", "content", "update", "tail",
};

const char *cause_name(unsigned int cause)
{
	return cause < GMEM_NR_CAUSES ? causes[cause] : "?";
}

const char *phase_name(unsigned int phase)
{
	return phase < GMEM_NR_PHASES ? phases[phase] : "?";
}

const char *attributes_name(__u64 attrs)
{
	return attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE ? "private" : "shared";
}

static double per_s(__u64 now, __u64 then, double interval)
{
	return interval > 0 ? (now - then) / interval : 0;
}

static const char *const outcomes[GMEM_NR_OUTCOMES] = {
	"changed", "noop", "eagain", "error",
};

const char *outcome_name(unsigned int outcome)
{
	return outcome < GMEM_NR_OUTCOMES ? outcomes[outcome] : "?";
}

static const char *const hold_kinds[GMEM_NR_HOLD_KINDS] = {
	"gup-get", "gup-pin", "gup-pin-longterm",
};

const char *hold_kind_name(unsigned int kind)
{
	return kind < GMEM_NR_HOLD_KINDS ? hold_kinds[kind] : "?";
}

const char *holders_status(const struct report *r)
{
	if (r->holders != HOLDERS_AUTO)
		return "always";
	return r->watching_gup ? "auto, watching" : "auto, idle";
}

const char *unknown_holder_why(const struct report *r)
{
	return r->holders == HOLDERS_AUTO ? "taken before watching" : NULL;
}

/* Upper bound of the slowest bucket that gained samples; 0 if none did. */
static unsigned long long hist_top(const __u64 *hist)
{
	int b;

	for (b = GMEM_HIST_BUCKETS - 1; b >= 0; b--)
		if (hist[b])
			return b + 1 < GMEM_HIST_BUCKETS ?
			       gmem_hist_low(b + 1) - 1 : gmem_hist_low(b);
	return 0;
}

static unsigned long long at_most(unsigned long long v, unsigned long long max)
{
	return v < max ? v : max;
}

static void hist_delta(const struct gmem_lat *n, const struct gmem_lat *t,
		       __u64 *delta)
{
	unsigned int b;

	for (b = 0; b < GMEM_HIST_BUCKETS; b++)
		delta[b] = n->hist[b] - t->hist[b];
}

const struct gmem_file_stats *then_of(const struct file_row *row)
{
	static const struct gmem_file_stats zero;

	return row->then ? row->then : &zero;
}

/*
 * The latency figures of one outcome over the report's interval: the
 * samples between row->then and row->now.  The interval's maximum is its
 * slowest bucket's bound, never above the largest sample ever seen, and
 * no percentile is above the maximum.
 */
void outcome_figures(const struct file_row *row, unsigned int outcome,
		     struct file_figures *fig)
{
	const struct gmem_lat *n = &row->now.outcome[outcome];
	__u64 delta[GMEM_HIST_BUCKETS];

	hist_delta(n, &then_of(row)->outcome[outcome], delta);
	fig->samples = hist_total(delta);
	fig->max_ns = at_most(hist_top(delta), n->max_ns);
	fig->p50_ns = at_most(hist_percentile(delta, 0.50), fig->max_ns);
	fig->p99_ns = at_most(hist_percentile(delta, 0.99), fig->max_ns);
}

void file_figures(const struct file_row *row, double interval,
		  struct file_figures *fig)
{
	const struct gmem_file_stats *n = &row->now, *t = then_of(row);

	fig->to_private_per_s = per_s(n->conversions[1], t->conversions[1],
				      interval);
	fig->to_shared_per_s = per_s(n->conversions[0], t->conversions[0],
				     interval);
	fig->pages_per_s = per_s(n->pages[0] + n->pages[1],
				 t->pages[0] + t->pages[1], interval);
	fig->eagain_per_s = per_s(n->eagain, t->eagain, interval);
	fig->invalidations_per_s = per_s(n->invalidations, t->invalidations,
					 interval);
	outcome_figures(row, GMEM_OUTCOME_CHANGED, fig);
}

/*
 * Each kind by its own name: files refused for want of room, the events
 * of those files, hotspots aged out; then the rarer losses if any.
 */
void format_losses(char *buf, size_t len, const struct report *r)
{
	int n;

	/* The three that matter most first: an 80-column view shows them. */
	n = snprintf(buf, len, "files not tracked: %llu  events not counted: %llu  hotspots expired: %llu  (--max-files %u)",
		     (unsigned long long)r->losses.files,
		     (unsigned long long)r->losses.events,
		     (unsigned long long)r->hotspots_expired, r->max_files);
	if (n < 0 || (size_t)n >= len)
		return;
	if (r->losses.latencies || r->losses.hotspot_eagains ||
	    r->losses.untimed)
		snprintf(buf + n, len - n, "  latencies not kept: %llu  EAGAINs with no hotspot room: %llu  untimed ioctls: %llu",
			 (unsigned long long)r->losses.latencies,
			 (unsigned long long)r->losses.hotspot_eagains,
			 (unsigned long long)r->losses.untimed);
}

void print_losses(FILE *out, const struct report *r)
{
	char buf[LOSSES_LEN];

	format_losses(buf, sizeof(buf), r);
	fprintf(out, "%s\n", buf);
}

static enum sort_key sort_by;
static double sort_interval;

static double sort_value(const struct file_row *row)
{
	struct file_figures fig;

	file_figures(row, sort_interval, &fig);
	switch (sort_by) {
	case SORT_EAGAIN:
		return fig.eagain_per_s;
	case SORT_P99:
		return fig.p99_ns;
	case SORT_PID:
		return -(double)row->now.pid;
	case SORT_INO:
		return -(double)row->ino;
	default:
		return fig.pages_per_s;
	}
}

/* Biggest first; ties by inode so that rows do not jump around. */
static int compare_rows(const void *a, const void *b)
{
	const struct file_row *x = a, *y = b;
	double vx = sort_value(x), vy = sort_value(y);

	if (vx != vy)
		return vx < vy ? 1 : -1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

void report_sort(struct report *r, enum sort_key key)
{
	sort_by = key;
	sort_interval = r->interval;
	if (r->nr_files)	/* qsort() of NULL is undefined, even for 0 */
		qsort(r->files, r->nr_files, sizeof(*r->files), compare_rows);
}

int parse_sort_key(const char *name, enum sort_key *key)
{
	static const char *const names[] = {
		[SORT_RATE] = "rate", [SORT_EAGAIN] = "eagain",
		[SORT_P99] = "p99", [SORT_PID] = "pid", [SORT_INO] = "ino",
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*key = i;
			return 0;
		}
	}
	return -1;
}

const char *format_mib(char *buf, size_t len, long long pages)
{
	if (pages < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", pages * 4096.0 / (1 << 20));
	return buf;
}

static void print_mib(FILE *out, long long pages)
{
	char buf[32];

	fprintf(out, " %8s", format_mib(buf, sizeof(buf), pages));
}

static void print_us(FILE *out, unsigned long long ns)
{
	fprintf(out, " %9.1f", ns / 1000.0);
}

/* In place of a stack that kptr_restrict keeps from being shown. */
#define HIDDEN_STACK	"(hidden by kptr_restrict)"

/* With --holders: who holds each EAGAIN hotspot's page. */
static void print_holders(FILE *out, const struct report *r)
{
	const char *why = unknown_holder_why(r);
	int i;

	fprintf(out, "holders: %s\n", holders_status(r));
	fprintf(out, "%8s %12s %8s %7s %-16s %-16s %s\n", "INO", "OFFSET",
		"EAGAIN", "PID", "COMM", "KIND", "STACK");
	for (i = 0; i < r->nr_hotspots; i++) {
		const struct hotspot_row *h = &r->hotspots[i];
		char comm[GMEM_COMM_LEN];

		fprintf(out, "%8llu %#12llx %8llu ",
			(unsigned long long)h->key.ino,
			(unsigned long long)h->key.offset,
			(unsigned long long)h->spot.count);
		if (h->holder.known)
			fprintf(out, "%7u %-16s %-16s %s\n", h->holder.pid,
				printable(comm, h->holder.comm),
				hold_kind_name(h->holder.kind),
				h->holder.stack_hidden ? HIDDEN_STACK :
							 h->holder.stack);
		else if (why)
			fprintf(out, "%7s unknown: %s\n", "-", why);
		else
			fprintf(out, "%7s %-16s\n", "-", "unknown");
	}
}

void print_table(FILE *out, const struct report *r)
{
	char stamp[16];
	time_t now = time(NULL);
	int i;

	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
	fprintf(out, "%s  guest_memfds: %d  dropped: %llu  ", stamp,
		r->nr_files, (unsigned long long)r->dropped);
	print_losses(out, r);
	fprintf(out, "%7s %-12s %-16s %10s %8s %8s %8s %8s %8s %8s %9s %9s %9s %8s %8s\n",
		"PID", "COMM", "VM_NAME", "VM", "INO", "SHR_MiB", "PRV_MiB",
		"->PRV/s",
		"->SHR/s", "PAGES/s", "P50_us", "P99_us", "MAX_us", "EAGAIN/s",
		"INVAL/s");
	for (i = 0; i < r->nr_files; i++) {
		const struct file_row *row = &r->files[i];
		struct file_figures fig;
		char comm[GMEM_COMM_LEN], name[17];

		file_figures(row, r->interval, &fig);
		fprintf(out, "%7u %-12.12s %-16s %10u %8llu", row->now.pid,
			printable(comm, row->now.comm),
			printable_vm_name(name, sizeof(name), &row->ident),
			row->now.vm, (unsigned long long)row->ino);
		print_mib(out, row->fdinfo.shared_pages);
		print_mib(out, row->fdinfo.private_pages);
		fprintf(out, " %8.1f %8.1f %8.1f", fig.to_private_per_s,
			fig.to_shared_per_s, fig.pages_per_s);
		print_us(out, fig.p50_ns);
		print_us(out, fig.p99_ns);
		print_us(out, fig.max_ns);
		fprintf(out, " %8.1f %8.1f\n", fig.eagain_per_s,
			fig.invalidations_per_s);
	}
	if (r->holders)
		print_holders(out, r);
	fflush(out);
}

void print_csv_header(FILE *out)
{
	fprintf(out, "time,pid,comm,vm,ino,shared_pages,private_pages,"
		"conversions_to_private,conversions_to_shared,"
		"pages_to_private,pages_to_shared,eagain,errors,invalidations,"
		"p50_ns,p99_ns,max_ns,noops,files_not_tracked,"
		"latencies_not_kept,hotspot_eagains_not_counted,untimed_ioctls,"
		"events_not_counted,hotspots_expired,cgroup,vm_name,vm_uuid\n");
}

/* Quoted, with quotes doubled, as RFC 4180 has it. */
static void print_csv_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

/*
 * The same, in valid UTF-8 whatever a VMM's command line held: a byte of
 * no UTF-8 sequence is U+FFFD, as in JSON and the metrics.
 */
static void put_csv_char(FILE *out, const unsigned char *c, size_t len)
{
	if (!len) {
		fputs("\xef\xbf\xbd", out);
		return;
	}
	if (*c == '"')
		fputc('"', out);
	fwrite(c, 1, len, out);
}

static void print_csv_utf8(FILE *out, const char *s, size_t max)
{
	put_utf8_quoted(out, s, max, put_csv_char);
}

/* The last columns: added after the others, whose places scripts know. */
static void print_csv_ident(FILE *out, const struct vm_ident *id)
{
	print_csv_utf8(out, id->cgroup, sizeof(id->cgroup));
	fputc(',', out);
	print_csv_utf8(out, id->name, sizeof(id->name));
	fputc(',', out);
	print_csv_utf8(out, id->uuid, sizeof(id->uuid));
	fputc('\n', out);
}

void print_csv(FILE *out, const struct report *r)
{
	int i;

	for (i = 0; i < r->nr_files; i++) {
		const struct file_row *row = &r->files[i];
		const struct gmem_file_stats *s = &row->now;
		struct file_figures fig;

		file_figures(row, r->interval, &fig);
		fprintf(out, "%.3f,%u,", r->elapsed, s->pid);
		print_csv_string(out, s->comm);
		fprintf(out, ",%u,%llu,%lld,%lld,%llu,%llu,%llu,%llu,"
			"%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,"
			"%llu,%llu,",
			s->vm, (unsigned long long)row->ino,
			row->fdinfo.shared_pages, row->fdinfo.private_pages,
			(unsigned long long)s->conversions[1],
			(unsigned long long)s->conversions[0],
			(unsigned long long)s->pages[1],
			(unsigned long long)s->pages[0],
			(unsigned long long)s->eagain,
			(unsigned long long)s->errors,
			(unsigned long long)s->invalidations, fig.p50_ns,
			fig.p99_ns, fig.max_ns,
			(unsigned long long)s->noops,
			(unsigned long long)r->losses.files,
			(unsigned long long)r->losses.latencies,
			(unsigned long long)r->losses.hotspot_eagains,
			(unsigned long long)r->losses.untimed,
			(unsigned long long)r->losses.events,
			(unsigned long long)r->hotspots_expired);
		print_csv_ident(out, &row->ident);
	}
	fflush(out);
}

static void print_json_hist(struct json *j, const __u64 *hist)
{
	unsigned int b;

	json_open(j, "histogram", '[');
	for (b = 0; b < GMEM_HIST_BUCKETS; b++) {
		if (!hist[b])
			continue;
		json_open(j, NULL, '[');
		json_uint(j, NULL, gmem_hist_low(b));
		json_uint(j, NULL, hist[b]);
		json_close(j, ']');
	}
	json_close(j, ']');
}

/*
 * null when unknown: nothing GUP showed took the page with a reference of
 * the kind that blocked it and still held it.  An empty stack with
 * stack_hidden when /proc/kallsyms hides the kernel's addresses.
 */
static void print_json_holder(struct json *j, const struct report *r,
			      const struct holder *who)
{
	const char *why = unknown_holder_why(r);

	if (!who->known) {
		json_null(j, "holder");
		if (why)
			json_string(j, "holder_unknown", why, (size_t)-1);
		return;
	}
	json_open(j, "holder", '{');
	json_uint(j, "pid", who->pid);
	json_uint(j, "tid", who->tid);
	json_string(j, "comm", who->comm, sizeof(who->comm));
	json_string(j, "kind", hold_kind_name(who->kind), (size_t)-1);
	json_string(j, "stack", who->stack, sizeof(who->stack));
	json_bool(j, "stack_hidden", who->stack_hidden);
	json_close(j, '}');
}

static void print_json_hotspots(struct json *j, const struct report *r,
				__u64 ino)
{
	int i;

	json_open(j, "hotspots", '[');
	for (i = 0; i < r->nr_hotspots; i++) {
		const struct hotspot_row *h = &r->hotspots[i];

		if (h->key.ino != ino)
			continue;
		json_open(j, NULL, '{');
		json_uint(j, "offset", h->key.offset);
		json_uint(j, "count", h->spot.count);
		json_int(j, "refcount", h->spot.refcount);
		json_int(j, "expected", h->spot.expected);
		json_uint(j, "pinned", h->spot.pinned);
		json_string(j, "cause", cause_name(h->spot.cause), (size_t)-1);
		if (r->holders)
			print_json_holder(j, r, &h->holder);
		json_close(j, '}');
	}
	json_close(j, ']');
}

static void print_json_counters(struct json *j, const struct gmem_file_stats *s)
{
	json_uint(j, "ioctls", s->ioctls);
	json_uint(j, "conversions_to_private", s->conversions[1]);
	json_uint(j, "conversions_to_shared", s->conversions[0]);
	json_uint(j, "pages_to_private", s->pages[1]);
	json_uint(j, "pages_to_shared", s->pages[0]);
	json_uint(j, "eagain", s->eagain);
	json_uint(j, "errors", s->errors);
	json_uint(j, "invalidations", s->invalidations);
	json_uint(j, "invalidated_gfns", s->invalidated_gfns);
	json_uint(j, "noops", s->noops);
	json_uint(j, "lru_drains", s->lru_drains);
	json_uint(j, "lru_drains_resolved", s->lru_drains_resolved);
}

static void print_json_rates(struct json *j, const struct file_figures *fig)
{
	json_open(j, "rates", '{');
	json_double(j, "to_private", fig->to_private_per_s, 3);
	json_double(j, "to_shared", fig->to_shared_per_s, 3);
	json_double(j, "pages", fig->pages_per_s, 3);
	json_double(j, "eagain", fig->eagain_per_s, 3);
	json_double(j, "invalidations", fig->invalidations_per_s, 3);
	json_close(j, '}');
}

static void print_json_latency(struct json *j, const struct gmem_file_stats *s,
			       const struct file_figures *fig)
{
	json_open(j, "latency_ns", '{');
	json_uint(j, "count", s->outcome[GMEM_OUTCOME_CHANGED].count);
	json_uint(j, "sum", s->lat_sum_ns);
	json_uint(j, "p50", fig->p50_ns);
	json_uint(j, "p99", fig->p99_ns);
	json_uint(j, "max", fig->max_ns);
	json_close(j, '}');
	print_json_phases(j, s->phase_ns);
	print_json_hist(j, s->hist);
}

/* Per outcome: the interval's latency figures, cumulative sums. */
static void print_json_outcomes(struct json *j, const struct file_row *row)
{
	struct file_figures fig;
	unsigned int o;

	json_open(j, "outcomes", '{');
	for (o = 0; o < GMEM_NR_OUTCOMES; o++) {
		const struct gmem_lat *l = &row->now.outcome[o];

		outcome_figures(row, o, &fig);
		json_open(j, outcome_name(o), '{');
		json_uint(j, "count", l->count);
		json_uint(j, "sum_ns", l->sum_ns);
		json_uint(j, "interval_count", fig.samples);
		json_uint(j, "p50_ns", fig.p50_ns);
		json_uint(j, "p99_ns", fig.p99_ns);
		json_uint(j, "max_ns", fig.max_ns);
		print_json_phases(j, l->phase_ns);
		print_json_hist(j, l->hist);
		json_close(j, '}');
	}
	json_close(j, '}');
}

static void print_json_file(struct json *j, const struct report *r,
			    const struct file_row *row)
{
	const struct gmem_file_stats *s = &row->now;
	struct file_figures fig;

	file_figures(row, r->interval, &fig);
	json_open(j, NULL, '{');
	json_uint(j, "ino", row->ino);
	json_uint(j, "pid", s->pid);
	json_uint(j, "vm", s->vm);
	json_string(j, "comm", s->comm, sizeof(s->comm));
	/* "" when unknown, as in the metrics' labels. */
	json_string(j, "cgroup", row->ident.cgroup, sizeof(row->ident.cgroup));
	json_string(j, "vm_name", row->ident.name, sizeof(row->ident.name));
	json_string(j, "vm_uuid", row->ident.uuid, sizeof(row->ident.uuid));
	json_int(j, "size", row->fdinfo.size);
	json_int(j, "shared_pages", row->fdinfo.shared_pages);
	json_int(j, "private_pages", row->fdinfo.private_pages);
	json_string(j, "layout", row->fdinfo.layout,
		    sizeof(row->fdinfo.layout));
	json_string(j, "summary", row->fdinfo.summary,
		    sizeof(row->fdinfo.summary));
	json_uint(j, "summary_cell", row->fdinfo.summary_cell);
	print_json_counters(j, s);
	print_json_rates(j, &fig);
	print_json_latency(j, s, &fig);
	print_json_outcomes(j, row);
	print_json_hotspots(j, r, row->ino);
	json_close(j, '}');
}

/* "holders":{"mode":"auto","watching":false}: whether GUP is watched now. */
static void print_json_holders_status(struct json *j, const struct report *r)
{
	json_open(j, "holders", '{');
	json_string(j, "mode", r->holders == HOLDERS_AUTO ? "auto" : "always",
		    (size_t)-1);
	json_bool(j, "watching", r->watching_gup);
	json_close(j, '}');
}

void print_json(FILE *out, const struct report *r)
{
	struct json j;
	int i;

	json_begin(&j, out, r->timestamp);
	json_double(&j, "time", r->elapsed, 3);
	json_double(&j, "interval", r->interval, 3);
	json_uint(&j, "dropped", r->dropped);
	json_open(&j, "not_tracked", '{');
	json_uint(&j, "files", r->losses.files);
	json_uint(&j, "events", r->losses.events);
	json_uint(&j, "latencies", r->losses.latencies);
	json_uint(&j, "hotspot_eagains", r->losses.hotspot_eagains);
	json_uint(&j, "untimed", r->losses.untimed);
	json_close(&j, '}');
	json_uint(&j, "hotspots_expired", r->hotspots_expired);
	if (r->holders)
		print_json_holders_status(&j, r);
	json_open(&j, "files", '[');
	for (i = 0; i < r->nr_files; i++)
		print_json_file(&j, r, &r->files[i]);
	json_close(&j, ']');
	json_end(&j);
}

void print_json_phases(struct json *j, const __u64 *phase_ns)
{
	unsigned int p;

	json_open(j, "phases_ns", '{');
	for (p = 0; p < GMEM_NR_PHASES; p++)
		json_uint(j, phase_name(p), phase_ns[p]);
	json_close(j, '}');
}

static void print_bar(FILE *out, unsigned long long n, unsigned long long most)
{
	const int width = 40;
	int i, stars = most ? n * width / most : 0;

	fputc('|', out);
	for (i = 0; i < width; i++)
		fputc(i < stars ? '*' : ' ', out);
	fputs("|\n", out);
}

static void print_phase_shares(FILE *out, const __u64 *phase_ns)
{
	unsigned long long total = 0;
	unsigned int p;

	for (p = 0; p < GMEM_NR_PHASES; p++)
		total += phase_ns[p];
	fputs("time by phase:", out);
	for (p = 0; p < GMEM_NR_PHASES; p++)
		fprintf(out, " %s %.1f%%", phase_name(p),
			total ? 100.0 * phase_ns[p] / total : 0);
	fputc('\n', out);
}

/* One outcome's distribution over the interval, as biolatency draws it. */
static void print_outcome_hist(FILE *out, const struct file_row *row,
			       unsigned int outcome)
{
	const struct gmem_lat *n = &row->now.outcome[outcome];
	const struct gmem_lat *t = &then_of(row)->outcome[outcome];
	unsigned long long rows[HIST_ROWS], most = 0;
	__u64 phase_ns[GMEM_NR_PHASES];
	__u64 delta[GMEM_HIST_BUCKETS];
	char comm[GMEM_COMM_LEN];
	int b, first = -1, last = -1;

	hist_delta(n, t, delta);
	hist_rows(delta, rows);
	for (b = 0; b < HIST_ROWS; b++) {
		if (!rows[b])
			continue;
		first = first < 0 ? b : first;
		last = b;
		most = rows[b] > most ? rows[b] : most;
	}
	if (first < 0)
		return;
	fprintf(out, "\nguest_memfd ino %llu  VMM %u (%s)  VM %u  outcome = %s\n",
		(unsigned long long)row->ino, row->now.pid,
		printable(comm, row->now.comm), row->now.vm,
		outcome_name(outcome));
	fprintf(out, "%24s : %-8s distribution\n", "usecs", "count");
	for (b = first; b <= last; b++) {
		fprintf(out, "%10.1f -> %-10.1f : %-8llu ",
			hist_row_low(b) / 1e3, hist_row_low(b + 1) / 1e3,
			rows[b]);
		print_bar(out, rows[b], most);
	}
	for (b = 0; b < GMEM_NR_PHASES; b++)
		phase_ns[b] = n->phase_ns[b] - t->phase_ns[b];
	print_phase_shares(out, phase_ns);
}

/*
 * Per guest_memfd and outcome, the interval's latency distribution, in the
 * manner of biolatency -F; outcomes without samples are left out.
 */
void print_hist(FILE *out, const struct report *r)
{
	unsigned int o;
	int i;

	print_losses(out, r);
	for (i = 0; i < r->nr_files; i++)
		for (o = 0; o < GMEM_NR_OUTCOMES; o++)
			print_outcome_hist(out, &r->files[i], o);
	fflush(out);
}

/* Flushed, and no write failed: EPIPE once the reader of a pipe is gone. */
static bool output_ok(FILE *out)
{
	return !fflush(out) && !ferror(out);
}

bool report_print(FILE *out, const struct report *r, enum format format)
{
	switch (format) {
	case FORMAT_JSON:
		print_json(out, r);
		break;
	case FORMAT_CSV:
		print_csv(out, r);
		break;
	case FORMAT_HIST:
		print_hist(out, r);
		break;
	default:
		print_table(out, r);
		break;
	}
	return output_ok(out);
}

bool stock_print(FILE *out, const struct stock_report *r, enum format format)
{
	if (format == FORMAT_JSON)
		print_stock_json(out, r);
	else
		print_stock_table(out, r);
	return output_ok(out);
}

bool parse_fdinfo_summary(const char *line, struct gmem_fdinfo *info)
{
	char cells[FDINFO_SUMMARY_CELLS + 2];
	unsigned long long bytes;
	size_t len;

	if (sscanf(line, "gmem_summary_cell: %llu", &bytes) == 1) {
		if (!bytes)
			return false;
		info->summary_cell = bytes;
		return true;
	}
	if (sscanf(line, "gmem_summary: %65s", cells) != 1)
		return false;
	len = strlen(cells);
	if (len > FDINFO_SUMMARY_CELLS || strspn(cells, "spm?") != len)
		return false;
	memcpy(info->summary, cells, len + 1);
	return true;
}

static const struct {
	const char *name;
	size_t offset;
} lifetime_counts[] = {
	{ "gmem_conversions_to_shared",
	  offsetof(struct gmem_lifetime, conversions[0]) },
	{ "gmem_conversions_to_private",
	  offsetof(struct gmem_lifetime, conversions[1]) },
	{ "gmem_pages_to_shared", offsetof(struct gmem_lifetime, pages[0]) },
	{ "gmem_pages_to_private", offsetof(struct gmem_lifetime, pages[1]) },
	{ "gmem_eagain", offsetof(struct gmem_lifetime, eagain) },
};

bool parse_fdinfo_lifetime(const char *line, struct gmem_lifetime *lifetime)
{
	unsigned long long count;
	char name[32];
	unsigned int i;

	if (sscanf(line, "%31[a-z_]: %llu", name, &count) != 2)
		return false;
	for (i = 0; i < ARRAY_SIZE(lifetime_counts); i++) {
		if (strcmp(name, lifetime_counts[i].name))
			continue;
		*(__u64 *)((char *)lifetime + lifetime_counts[i].offset) = count;
		lifetime->read |= 1U << i;
		return true;
	}
	return false;
}

bool lifetime_known(const struct gmem_lifetime *lifetime)
{
	return lifetime->read == (1U << ARRAY_SIZE(lifetime_counts)) - 1;
}

/* What is known of bytes [lo, hi): shared, private or both. */
struct layout_cell {
	bool shared, private;
};

/* From the ranges fdinfo listed; they cover the file up to the returned end. */
static unsigned long long from_ranges(const struct gmem_fdinfo *info,
				      unsigned long long lo,
				      unsigned long long hi,
				      struct layout_cell *cell)
{
	unsigned long long covered = 0;
	int i;

	for (i = 0; i < info->nr_ranges; i++) {
		const struct gmem_range *g = &info->ranges[i];

		if (g->end > covered)
			covered = g->end;
		if (g->end <= lo || g->start >= hi)
			continue;
		cell->private |= g->private;
		cell->shared |= !g->private;
	}
	return covered;
}

/* Cell k of the summary is bytes [k * summary_cell, (k + 1) * summary_cell). */
static void from_summary(const struct gmem_fdinfo *info, unsigned long long lo,
			 unsigned long long hi, struct layout_cell *cell)
{
	unsigned long long width = info->summary_cell;
	int k;

	for (k = 0; width && info->summary[k]; k++) {
		if ((k + 1) * width <= lo || k * width >= hi)
			continue;
		cell->private |= strchr("pm", info->summary[k]) != NULL;
		cell->shared |= strchr("sm", info->summary[k]) != NULL;
	}
}

/*
 * The ranges are exact but stop after FDINFO_MAX_RANGES; the summary
 * covers the rest, in at most 64 cells.
 */
void layout_picture(const struct gmem_fdinfo *info, char *buf, int width)
{
	int c;

	for (c = 0; c < width; c++) {
		unsigned long long lo = info->size * c / width;
		unsigned long long hi = info->size * (c + 1) / width;
		struct layout_cell cell = {};
		unsigned long long covered;

		covered = from_ranges(info, lo, hi, &cell);
		if (hi > covered)
			from_summary(info, lo > covered ? lo : covered, hi,
				     &cell);
		buf[c] = cell.private && cell.shared ? '+' :
			 cell.private ? '#' : cell.shared ? '.' : '?';
	}
	buf[width] = '\0';
}

const char *printable_bytes(char *buf, size_t size, const char *s,
			    size_t max)
{
	size_t i;

	for (i = 0; i + 1 < size && i < max && s[i]; i++)
		buf[i] = s[i] >= ' ' && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

const char *printable(char buf[GMEM_COMM_LEN], const char *comm)
{
	return printable_bytes(buf, GMEM_COMM_LEN, comm, GMEM_COMM_LEN);
}

const char *printable_vm_name(char *buf, size_t size,
			      const struct vm_ident *id)
{
	if (!id->name[0])
		return "-";
	return printable_bytes(buf, size, id->name, sizeof(id->name));
}

void print_stock_table(FILE *out, const struct stock_report *r)
{
	int i;

	fprintf(out, "%7s %-14s %8s %10s %10s %10s %12s %10s %12s\n", "PID",
		"COMM", "INO", "FAULTS", "SIGBUS", "PUNCHES", "PUNCHED_B",
		"ALLOCS", "ALLOCATED_B");
	for (i = 0; i < r->nr_files; i++) {
		const struct gmem_stock_stats *s = &r->files[i].stats;
		char comm[GMEM_COMM_LEN];

		fprintf(out, "%7u %-14.14s %8llu %10llu %10llu %10llu %12llu %10llu %12llu\n",
			s->pid, printable(comm, s->comm),
			(unsigned long long)r->files[i].ino,
			(unsigned long long)s->faults,
			(unsigned long long)s->sigbus,
			(unsigned long long)s->punch_holes,
			(unsigned long long)s->punched_bytes,
			(unsigned long long)s->allocations,
			(unsigned long long)s->allocated_bytes);
	}
	fprintf(out, "files not tracked: %llu  events not counted: %llu\n",
		(unsigned long long)r->files_not_tracked,
		(unsigned long long)r->events_not_counted);
	fflush(out);
}

void print_stock_json(FILE *out, const struct stock_report *r)
{
	struct json j;
	int i;

	json_begin(&j, out, r->timestamp);
	json_bool(&j, "kvm_gmem_events", false);
	json_uint(&j, "files_not_tracked", r->files_not_tracked);
	json_uint(&j, "events_not_counted", r->events_not_counted);
	json_open(&j, "files", '[');
	for (i = 0; i < r->nr_files; i++) {
		const struct gmem_stock_stats *s = &r->files[i].stats;

		json_open(&j, NULL, '{');
		json_uint(&j, "ino", r->files[i].ino);
		json_uint(&j, "pid", s->pid);
		json_string(&j, "comm", s->comm, sizeof(s->comm));
		json_uint(&j, "faults", s->faults);
		json_uint(&j, "sigbus", s->sigbus);
		json_uint(&j, "punch_holes", s->punch_holes);
		json_uint(&j, "punched_bytes", s->punched_bytes);
		json_uint(&j, "allocations", s->allocations);
		json_uint(&j, "allocated_bytes", s->allocated_bytes);
		json_close(&j, '}');
	}
	json_close(&j, ']');
	json_end(&j);
}
