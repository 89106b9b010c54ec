// SPDX-License-Identifier: GPL-2.0
/* gmemtop's outputs: the batch table, CSV and JSON. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hist.h"
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

static double per_s(__u64 now, __u64 then, double interval)
{
	return interval > 0 ? (now - then) / interval : 0;
}

void file_figures(const struct file_row *row, double interval,
		  struct file_figures *fig)
{
	const struct gmem_file_stats *n = &row->now, *t = &row->then;

	fig->to_private_per_s = per_s(n->conversions[1], t->conversions[1],
				      interval);
	fig->to_shared_per_s = per_s(n->conversions[0], t->conversions[0],
				     interval);
	fig->pages_per_s = per_s(n->pages[0] + n->pages[1],
				 t->pages[0] + t->pages[1], interval);
	fig->eagain_per_s = per_s(n->eagain, t->eagain, interval);
	fig->invalidations_per_s = per_s(n->invalidations, t->invalidations,
					 interval);
	fig->samples = hist_total(n->hist);
	fig->p50_ns = hist_percentile(n->hist, 0.50);
	fig->p99_ns = hist_percentile(n->hist, 0.99);
	fig->max_ns = n->lat_max_ns;
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

void print_table(FILE *out, const struct report *r)
{
	char stamp[16];
	time_t now = time(NULL);
	int i;

	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
	fprintf(out, "%s  guest_memfds: %d  dropped: %llu\n", stamp,
		r->nr_files, (unsigned long long)r->dropped);
	fprintf(out, "%7s %-12s %4s %8s %8s %8s %8s %8s %8s %9s %9s %9s %8s %8s\n",
		"PID", "COMM", "VM", "INO", "SHR_MiB", "PRV_MiB", "->PRV/s",
		"->SHR/s", "PAGES/s", "P50_us", "P99_us", "MAX_us", "EAGAIN/s",
		"INVAL/s");
	for (i = 0; i < r->nr_files; i++) {
		const struct file_row *row = &r->files[i];
		struct file_figures fig;

		file_figures(row, r->interval, &fig);
		fprintf(out, "%7u %-12.12s %4u %8llu", row->now.pid,
			row->now.comm, row->now.vm,
			(unsigned long long)row->ino);
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
	fflush(out);
}

void print_csv_header(FILE *out)
{
	fprintf(out, "time,pid,comm,vm,ino,shared_pages,private_pages,"
		"conversions_to_private,conversions_to_shared,"
		"pages_to_private,pages_to_shared,eagain,errors,invalidations,"
		"p50_ns,p99_ns,max_ns\n");
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
			"%llu,%llu,%llu,%llu,%llu,%llu\n",
			s->vm, (unsigned long long)row->ino,
			row->fdinfo.shared_pages, row->fdinfo.private_pages,
			(unsigned long long)s->conversions[1],
			(unsigned long long)s->conversions[0],
			(unsigned long long)s->pages[1],
			(unsigned long long)s->pages[0],
			(unsigned long long)s->eagain,
			(unsigned long long)s->errors,
			(unsigned long long)s->invalidations, fig.p50_ns,
			fig.p99_ns, fig.max_ns);
	}
	fflush(out);
}

/* comm is the only string; keep it to safe characters. */
void print_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++)
		fputc(*s >= ' ' && *s != '"' && *s != '\\' && *s < 127 ? *s : '?',
		      out);
	fputc('"', out);
}

static void print_json_hist(FILE *out, const __u32 *hist)
{
	const char *sep = "";
	unsigned int b;

	fputs("\"histogram\":[", out);
	for (b = 0; b < GMEM_HIST_BUCKETS; b++) {
		if (!hist[b])
			continue;
		fprintf(out, "%s[%llu,%u]", sep, gmem_hist_low(b), hist[b]);
		sep = ",";
	}
	fputs("]", out);
}

static void print_json_hotspots(FILE *out, const struct report *r, __u64 ino)
{
	const char *sep = "";
	int i;

	fputs("\"hotspots\":[", out);
	for (i = 0; i < r->nr_hotspots; i++) {
		const struct hotspot_row *h = &r->hotspots[i];

		if (h->key.ino != ino)
			continue;
		fprintf(out, "%s{\"offset\":%llu,\"count\":%llu,\"refcount\":%d,"
			"\"expected\":%d,\"pinned\":%u,\"cause\":\"%s\"}", sep,
			(unsigned long long)h->key.offset,
			(unsigned long long)h->spot.count, h->spot.refcount,
			h->spot.expected, h->spot.pinned,
			cause_name(h->spot.cause));
		sep = ",";
	}
	fputs("]", out);
}

static void print_json_file(FILE *out, const struct report *r,
			    const struct file_row *row)
{
	const struct gmem_file_stats *s = &row->now;
	struct file_figures fig;
	unsigned int p;

	file_figures(row, r->interval, &fig);
	fprintf(out, "{\"ino\":%llu,\"pid\":%u,\"vm\":%u,\"comm\":",
		(unsigned long long)row->ino, s->pid, s->vm);
	print_json_string(out, s->comm);
	fprintf(out, ",\"size\":%lld,\"shared_pages\":%lld,"
		"\"private_pages\":%lld,\"layout\":",
		row->fdinfo.size, row->fdinfo.shared_pages,
		row->fdinfo.private_pages);
	print_json_string(out, row->fdinfo.layout);
	fprintf(out, ",\"ioctls\":%llu,\"conversions_to_private\":%llu,"
		"\"conversions_to_shared\":%llu,\"pages_to_private\":%llu,"
		"\"pages_to_shared\":%llu,\"eagain\":%llu,\"errors\":%llu,"
		"\"invalidations\":%llu,\"invalidated_gfns\":%llu,",
		(unsigned long long)s->ioctls,
		(unsigned long long)s->conversions[1],
		(unsigned long long)s->conversions[0],
		(unsigned long long)s->pages[1], (unsigned long long)s->pages[0],
		(unsigned long long)s->eagain, (unsigned long long)s->errors,
		(unsigned long long)s->invalidations,
		(unsigned long long)s->invalidated_gfns);
	fprintf(out, "\"rates\":{\"to_private\":%.3f,\"to_shared\":%.3f,"
		"\"pages\":%.3f,\"eagain\":%.3f,\"invalidations\":%.3f},",
		fig.to_private_per_s, fig.to_shared_per_s, fig.pages_per_s,
		fig.eagain_per_s, fig.invalidations_per_s);
	fprintf(out, "\"latency_ns\":{\"count\":%llu,\"sum\":%llu,\"p50\":%llu,"
		"\"p99\":%llu,\"max\":%llu},", fig.samples,
		(unsigned long long)s->lat_sum_ns, fig.p50_ns, fig.p99_ns,
		fig.max_ns);
	fputs("\"phases_ns\":{", out);
	for (p = 0; p < GMEM_NR_PHASES; p++)
		fprintf(out, "%s\"%s\":%llu", p ? "," : "", phase_name(p),
			(unsigned long long)s->phase_ns[p]);
	fputs("},", out);
	print_json_hist(out, s->hist);
	fputc(',', out);
	print_json_hotspots(out, r, row->ino);
	fputc('}', out);
}

void print_json(FILE *out, const struct report *r)
{
	int i;

	fprintf(out, "{\"time\":%.3f,\"interval\":%.3f,\"dropped\":%llu,"
		"\"files\":[", r->elapsed, r->interval,
		(unsigned long long)r->dropped);
	for (i = 0; i < r->nr_files; i++) {
		if (i)
			fputc(',', out);
		print_json_file(out, r, &r->files[i]);
	}
	fputs("]}\n", out);
	fflush(out);
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

/* Per guest_memfd, the latency distribution in the manner of biolatency. */
void print_hist(FILE *out, const struct report *r)
{
	unsigned long long rows[HIST_ROWS], most, total;
	int i, b, first, last;
	unsigned int p;

	for (i = 0; i < r->nr_files; i++) {
		const struct gmem_file_stats *s = &r->files[i].now;

		hist_rows(s->hist, rows);
		most = 0;
		first = last = -1;
		for (b = 0; b < HIST_ROWS; b++) {
			if (!rows[b])
				continue;
			first = first < 0 ? b : first;
			last = b;
			most = rows[b] > most ? rows[b] : most;
		}
		fprintf(out, "\nguest_memfd ino %llu  VMM %u (%s)  VM %u\n",
			(unsigned long long)r->files[i].ino, s->pid, s->comm,
			s->vm);
		fprintf(out, "%24s : %-8s distribution\n", "usecs", "count");
		for (b = first; first >= 0 && b <= last; b++) {
			fprintf(out, "%10.1f -> %-10.1f : %-8llu ",
				hist_row_low(b) / 1e3, hist_row_low(b + 1) / 1e3,
				rows[b]);
			print_bar(out, rows[b], most);
		}
		for (p = 0, total = 0; p < GMEM_NR_PHASES; p++)
			total += s->phase_ns[p];
		fputs("time by phase:", out);
		for (p = 0; p < GMEM_NR_PHASES; p++)
			fprintf(out, " %s %.1f%%", phase_name(p),
				total ? 100.0 * s->phase_ns[p] / total : 0);
		fputc('\n', out);
	}
	fflush(out);
}

void layout_picture(const struct gmem_fdinfo *info, char *buf, int width)
{
	int cell, i;

	for (cell = 0; cell < width; cell++) {
		unsigned long long lo = info->size * cell / width;
		unsigned long long hi = info->size * (cell + 1) / width;
		bool shared = false, private = false;

		for (i = 0; i < info->nr_ranges; i++) {
			const struct gmem_range *g = &info->ranges[i];

			if (g->end <= lo || g->start >= hi)
				continue;
			private |= g->private;
			shared |= !g->private;
		}
		buf[cell] = private && shared ? '+' : private ? '#' :
			    shared ? '.' : '?';
	}
	buf[width] = '\0';
}
