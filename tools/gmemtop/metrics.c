// SPDX-License-Identifier: GPL-2.0
/*
 * What a fleet scrapes: the latest report's counters and histograms, served
 * over HTTP by libmicrohttpd (--openmetrics [ADDR:]PORT) and written for
 * node_exporter's textfile collector (--textfile PATH), so that hosts are
 * watched with the Prometheus tooling operators already run.  A scraper
 * that asks for OpenMetrics 1.0.0 (as Prometheus does) gets it; everyone
 * else gets the Prometheus text format 0.0.4.
 *
 * A family is one entry of the tables below.  Series carry only what stays
 * the same for a guest_memfd's life: the VM id, the VMM's pid and the
 * inode; never a comm.  Exported counters never go back: when the kernel
 * half's counters restart (the view's 'r', an entry evicted and created
 * again), what was counted before is carried over.  Where fdinfo keeps
 * a count of its own for the file's life, that count is exported, as
 * node_exporter exports the kernel's counters: a restarted gmemtop
 * exports the same values.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hist.h"
#include "json.h"
#include "metrics.h"
#include "signals.h"

#define PREFIX		"kvm_gmem_"
#define UNKNOWN		ULLONG_MAX	/* what fdinfo could not tell */

/*
 * Latency buckets at the powers of two from 1.024 us to 2^39 ns (9 min):
 * the kernel's fine buckets split every power of two, so the counts below
 * these bounds are exact.
 */
#define LATENCY_MIN_LOG2	10
#define NR_BOUNDS	(GMEM_HIST_MAX_LOG2 - LATENCY_MIN_LOG2 + 1)

enum family_type { COUNTER, GAUGE, HISTOGRAM };

static const char *const type_names[] = {
	[COUNTER] = "counter", [GAUGE] = "gauge", [HISTOGRAM] = "histogram",
};

/* A family with one or more values per guest_memfd. */
struct family {
	const char *name;	/* after the prefix; a counter's without _total */
	enum family_type type;
	const char *unit;	/* the name's last word; seconds are kept in ns */
	const char *help;
	const char *label;	/* tells a file's values apart, if several */
	const char *(*label_value)(unsigned int i);
	unsigned int nr_values;	/* of the label; 1 without */
	/* Writes the family's slots() for @row to @v. */
	void (*fill)(const struct family *f, const struct file_row *row,
		     __u64 *v);
	size_t offset;		/* fill_stats: of __u64s in gmem_file_stats */
	/*
	 * The same from the kernel's count over the file's life, where it
	 * keeps one: UNKNOWN when fdinfo could not be read.
	 */
	void (*fill_kernel)(const struct family *f, const struct file_row *row,
			    __u64 *v);
};

/* What one value takes: a histogram's buckets, then +Inf, then the sum. */
static unsigned int width(const struct family *f)
{
	return f->type == HISTOGRAM ? NR_BOUNDS + 2 : 1;
}

static unsigned int slots(const struct family *f)
{
	return f->nr_values * width(f);
}

static void fill_stats(const struct family *f, const struct file_row *row,
		       __u64 *v)
{
	memcpy(v, (const char *)&row->now + f->offset,
	       f->nr_values * sizeof(*v));
}

/* Counted in pages, exported in bytes. */
static void fill_bytes(const struct family *f, const struct file_row *row,
		       __u64 *v)
{
	unsigned int i;

	fill_stats(f, row, v);
	for (i = 0; i < f->nr_values; i++)
		v[i] *= sysconf(_SC_PAGESIZE);
}

static __u64 bytes_of(long long pages)
{
	return pages < 0 ? UNKNOWN : (__u64)pages * sysconf(_SC_PAGESIZE);
}

static void fill_memory(const struct family *f, const struct file_row *row,
			__u64 *v)
{
	v[0] = bytes_of(row->fdinfo.shared_pages);
	v[1] = bytes_of(row->fdinfo.private_pages);
}

/* The file's lifetime @count from fdinfo, UNKNOWN if it was not read. */
static __u64 lifetime(const struct file_row *row, __u64 count)
{
	return lifetime_known(&row->fdinfo.lifetime) ? count : UNKNOWN;
}

static void kernel_conversions(const struct family *f,
			       const struct file_row *row, __u64 *v)
{
	v[0] = lifetime(row, row->fdinfo.lifetime.conversions[0]);
	v[1] = lifetime(row, row->fdinfo.lifetime.conversions[1]);
}

static void kernel_converted_bytes(const struct family *f,
				   const struct file_row *row, __u64 *v)
{
	long page = sysconf(_SC_PAGESIZE);

	v[0] = lifetime(row, row->fdinfo.lifetime.pages[0] * page);
	v[1] = lifetime(row, row->fdinfo.lifetime.pages[1] * page);
}

static void kernel_eagain(const struct family *f, const struct file_row *row,
			  __u64 *v)
{
	v[0] = lifetime(row, row->fdinfo.lifetime.eagain);
}

/* The samples below each bound, then all of them (+Inf), then their sum. */
static void fill_histogram(const __u64 *hist, __u64 sum_ns, __u64 *v)
{
	unsigned int i, b = 0;
	__u64 below = 0;

	for (i = 0; i < NR_BOUNDS; i++) {
		for (; b < gmem_hist_bucket(1ULL << (LATENCY_MIN_LOG2 + i)); b++)
			below += hist[b];
		v[i] = below;
	}
	v[NR_BOUNDS] = hist_total(hist);
	v[NR_BOUNDS + 1] = sum_ns;
}

static void fill_latency(const struct family *f, const struct file_row *row,
			 __u64 *v)
{
	fill_histogram(row->now.hist, row->now.lat_sum_ns, v);
}

/* The time lost to EAGAIN is spent before the failure: worth a family. */
static void fill_eagain_latency(const struct family *f,
				const struct file_row *row, __u64 *v)
{
	const struct gmem_lat *l = &row->now.outcome[GMEM_OUTCOME_EAGAIN];

	fill_histogram(l->hist, l->sum_ns, v);
}

static const char *direction_name(unsigned int i)
{
	return i ? "to_private" : "to_shared";
}

static const char *attribute_name(unsigned int i)
{
	return i ? "private" : "shared";
}

#define STATS(field)	.fill = fill_stats, \
			.offset = offsetof(struct gmem_file_stats, field)

static const struct family families[] = {
	{ "set_attributes_calls", COUNTER, NULL,
	  "KVM_SET_MEMORY_ATTRIBUTES2 calls on the guest_memfd.",
	  .nr_values = 1, STATS(ioctls) },
	{ "conversions", COUNTER, NULL,
	  "Successful calls that changed pages.",
	  "direction", direction_name, 2, STATS(conversions),
	  .fill_kernel = kernel_conversions },
	{ "converted_bytes", COUNTER, "bytes",
	  "Memory whose attributes successful calls changed.",
	  "direction", direction_name, 2, fill_bytes,
	  offsetof(struct gmem_file_stats, pages),
	  .fill_kernel = kernel_converted_bytes },
	{ "eagain", COUNTER, NULL,
	  "Calls that failed with EAGAIN: a page had references beyond the guest_memfd's.",
	  .nr_values = 1, STATS(eagain), .fill_kernel = kernel_eagain },
	{ "errors", COUNTER, NULL,
	  "Calls that failed with an error other than EAGAIN.",
	  .nr_values = 1, STATS(errors) },
	{ "invalidations", COUNTER, NULL,
	  "Invalidations of KVM's mappings of the guest_memfd.",
	  .nr_values = 1, STATS(invalidations) },
	{ "conversion_phase_seconds", COUNTER, "seconds",
	  "Time successful calls spent in each phase.",
	  "phase", phase_name, GMEM_NR_PHASES, STATS(phase_ns) },
	{ "conversion_latency_seconds", HISTOGRAM, "seconds",
	  "Latency of successful calls that changed pages.",
	  .nr_values = 1, .fill = fill_latency },
	{ "eagain_phase_seconds", COUNTER, "seconds",
	  "Time calls that failed with EAGAIN spent in each phase.",
	  "phase", phase_name, GMEM_NR_PHASES,
	  STATS(outcome[GMEM_OUTCOME_EAGAIN].phase_ns) },
	{ "eagain_latency_seconds", HISTOGRAM, "seconds",
	  "Latency of calls that failed with EAGAIN.",
	  .nr_values = 1, .fill = fill_eagain_latency },
	{ "memory_bytes", GAUGE, "bytes",
	  "Shared and private memory of the guest_memfd (fdinfo).",
	  "attribute", attribute_name, 2, fill_memory },
};

static __u64 dropped_records(const struct report *r)
{
	return r->dropped;
}

static __u64 files_not_tracked(const struct report *r)
{
	return r->losses.files;
}

static __u64 events_not_counted(const struct report *r)
{
	return r->losses.events;
}

static __u64 hotspot_eagains_not_counted(const struct report *r)
{
	return r->losses.hotspot_eagains;
}

static __u64 hotspots_expired(const struct report *r)
{
	return r->hotspots_expired;
}

static __u64 files(const struct report *r)
{
	return r->nr_files;
}

/* A family with one value for the whole host. */
struct host_family {
	const char *name;
	enum family_type type;
	const char *help;
	__u64 (*get)(const struct report *r);
};

static const struct host_family host_families[] = {
	{ "files", GAUGE, "guest_memfds that gmemtop has counters for.",
	  files },
	{ "files_not_tracked", COUNTER,
	  "guest_memfds the kernel maps had no room for.",
	  files_not_tracked },
	{ "events_not_counted", COUNTER,
	  "Events of the guest_memfds not tracked: counted in no other family.",
	  events_not_counted },
	{ "hotspot_eagains_not_counted", COUNTER,
	  "EAGAINs counted on their file but on no hotspot: no room for it.",
	  hotspot_eagains_not_counted },
	{ "hotspots_expired", COUNTER,
	  "EAGAIN hotspots forgotten after --hotspot-window without an EAGAIN; "
	  "their files' counts keep every EAGAIN.",
	  hotspots_expired },
	{ "dropped_records", COUNTER,
	  "Snoop records the ring buffer had no room for.", dropped_records },
};

/* How a slot's exported value follows the reports. */
enum slot_kind {
	SLOT_GAUGE,		/* what the latest report says */
	SLOT_COUNTER,		/* gmemtop's count, carried over its restarts */
	SLOT_KERNEL,		/* the count fdinfo keeps, where it can be read */
};

/* No difference between the kernel's count and gmemtop's seen yet. */
#define NO_OFFSET	LLONG_MAX

/* One guest_memfd's series, kept from report to report. */
struct series {
	__u64 ino;
	__u32 pid, vm;
	struct vm_ident ident;	/* the VMM's cgroup and QEMU's names */
	bool seen;		/* in the latest report */
	__u64 *carried;		/* counted before its counters restarted */
	__u64 *latest;		/* the latest report's */
	__u64 *exported;	/* what is exported, never going back */
	__s64 *offset;		/* SLOT_KERNEL: the kernel's count less ours */
	__u64 values[];		/* backs all four */
};

struct metrics {
	unsigned int nr_slots;	/* values of all families, per file */
	enum slot_kind *kinds;	/* per slot */
	__u64 *scratch;
	struct series **series;	/* by inode */
	int nr_series;
	__u64 host[ARRAY_SIZE(host_families)];

	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;
	char *page[2];		/* by metrics_format, under lock */
	size_t len[2];

	const char *textfile;
	char *textfile_tmp;
	int textfile_err;	/* the last write's, so changes are told once */
};

/* Every family's values for @row: gmemtop's, or with @kernel fdinfo's. */
static void fill_all(const struct file_row *row, bool kernel, __u64 *v)
{
	const struct family *f;

	for (f = families; f < families + ARRAY_SIZE(families); f++) {
		if (!kernel)
			f->fill(f, row, v);
		else if (f->fill_kernel)
			f->fill_kernel(f, row, v);
		v += slots(f);
	}
}

static int compare_series(const void *key, const void *member)
{
	__u64 ino = *(const __u64 *)key;
	const struct series *s = *(struct series *const *)member;

	return ino < s->ino ? -1 : ino > s->ino;
}

/* The series of @ino, added in inode order if new; NULL without memory. */
static struct series *series_of(struct metrics *m, __u64 ino)
{
	struct series **found, **grown, *s;
	unsigned int i;
	int at;

	/* bsearch() wants an array, even an empty one: none before the first. */
	found = m->nr_series ? bsearch(&ino, m->series, m->nr_series,
				       sizeof(*m->series), compare_series) :
			       NULL;
	if (found)
		return *found;

	grown = realloc(m->series, (m->nr_series + 1) * sizeof(*m->series));
	if (!grown)
		return NULL;
	m->series = grown;
	s = calloc(1, sizeof(*s) + 4 * m->nr_slots * sizeof(__u64));
	if (!s)
		return NULL;
	s->ino = ino;
	s->carried = s->values;
	s->latest = s->values + m->nr_slots;
	s->exported = s->values + 2 * m->nr_slots;
	s->offset = (__s64 *)s->values + 3 * m->nr_slots;
	for (i = 0; i < m->nr_slots; i++)
		s->offset[i] = NO_OFFSET;
	for (at = m->nr_series; at > 0 && m->series[at - 1]->ino > ino; at--)
		m->series[at] = m->series[at - 1];
	m->series[at] = s;
	m->nr_series++;
	return s;
}

/* The file's counters restart from zero: keep what they had counted. */
static void carry(const struct metrics *m, struct series *s)
{
	unsigned int i;

	for (i = 0; i < m->nr_slots; i++) {
		if (m->kinds[i] != SLOT_GAUGE) {
			s->carried[i] += s->latest[i];
			s->latest[i] = 0;
		}
	}
}

static bool went_back(const struct metrics *m, const struct series *s,
		      const __u64 *now)
{
	unsigned int i;

	for (i = 0; i < m->nr_slots; i++)
		if (m->kinds[i] != SLOT_GAUGE && now[i] < s->latest[i])
			return true;
	return false;
}

/*
 * A count fdinfo keeps is exported as it is.  Where fdinfo cannot be
 * read (the file closed, the VMM another user's), gmemtop's own count
 * goes on from it, plus the smallest difference seen between the two in
 * a @quiet read: the kernel counts a conversion before its end event, so
 * fdinfo read while one is in flight is ahead by it, and taking that for
 * the difference would count it twice once our count has it too.
 * Without a quiet read, our count alone, which is exact for files
 * gmemtop saw from their creation.
 */
static __u64 follow_kernel(struct series *s, unsigned int slot, __u64 ours,
			   __u64 kernel, bool quiet)
{
	__s64 *offset = &s->offset[slot];

	if (kernel != UNKNOWN) {
		if (quiet && (*offset == NO_OFFSET ||
			      (__s64)(kernel - ours) < *offset))
			*offset = kernel - ours;
		return kernel;
	}
	return *offset == NO_OFFSET ? ours : ours + *offset;
}

/*
 * @kernel holds fdinfo's counts, for the slots that have one, read
 * @quiet or not.
 */
static void export(const struct metrics *m, struct series *s,
		   const __u64 *kernel, bool quiet)
{
	unsigned int i;
	__u64 v;

	for (i = 0; i < m->nr_slots; i++) {
		v = s->carried[i] + s->latest[i];
		switch (m->kinds[i]) {
		case SLOT_GAUGE:	/* it may go down, or be UNKNOWN */
			s->exported[i] = s->latest[i];
			continue;
		case SLOT_KERNEL:
			v = follow_kernel(s, i, v, kernel[i], quiet);
			break;
		case SLOT_COUNTER:
			break;
		}
		if (v > s->exported[i])
			s->exported[i] = v;
	}
}

static struct series *take_row(struct metrics *m, const struct file_row *row)
{
	struct series *s = series_of(m, row->ino);

	if (!s)
		return NULL;
	fill_all(row, false, m->scratch);
	/* The kernel half let the entry go and counts again from zero. */
	if (went_back(m, s, m->scratch))
		carry(m, s);
	memcpy(s->latest, m->scratch, m->nr_slots * sizeof(__u64));
	fill_all(row, true, m->scratch);
	export(m, s, m->scratch, row->fdinfo.quiet);
	s->pid = row->now.pid;
	s->vm = row->now.vm;
	s->ident = row->ident;
	s->seen = true;
	return s;
}

/* A file absent from the report lives on until its VMM is gone. */
static void forget_gone(struct metrics *m)
{
	int i, kept = 0;

	for (i = 0; i < m->nr_series; i++) {
		struct series *s = m->series[i];

		if (!s->seen && (!s->pid || (kill(s->pid, 0) && errno == ESRCH)))
			free(s);
		else
			m->series[kept++] = s;
	}
	m->nr_series = kept;
}

static void print_header(FILE *out, const char *name, enum family_type type,
			 const char *unit, const char *help,
			 enum metrics_format format)
{
	/* OpenMetrics names a counter's family without _total. */
	const char *total = type == COUNTER && format == METRICS_TEXT ?
			    "_total" : "";

	fprintf(out, "# HELP " PREFIX "%s%s %s\n", name, total, help);
	fprintf(out, "# TYPE " PREFIX "%s%s %s\n", name, total,
		type_names[type]);
	if (unit && format == METRICS_OPENMETRICS)
		fprintf(out, "# UNIT " PREFIX "%s %s\n", name, unit);
}

/*
 * A label value as OpenMetrics (and Prometheus' text format) has it:
 * backslash, double quote and newline escaped; valid UTF-8 as it is,
 * any other byte as U+FFFD, as the JSON writer does.
 */
static void put_label_char(FILE *out, const unsigned char *c, size_t len)
{
	if (!len)
		fputs("\xef\xbf\xbd", out);
	else if (*c == '\\' || *c == '"')
		fprintf(out, "\\%c", *c);
	else if (*c == '\n')
		fputs("\\n", out);
	else
		fwrite(c, 1, len, out);
}

static void print_label(FILE *out, const char *name, const char *v,
			size_t max)
{
	fprintf(out, ",%s=", name);
	put_utf8_quoted(out, v, max, put_label_char);
}

/* How operators name the VM: "" when unknown, as Prometheus reads none. */
static void print_ident(FILE *out, const struct vm_ident *id)
{
	print_label(out, "cgroup", id->cgroup, sizeof(id->cgroup));
	print_label(out, "vm_name", id->name, sizeof(id->name));
	print_label(out, "vm_uuid", id->uuid, sizeof(id->uuid));
}

/*
 * A file's sample has its labels and then @labels (",name=\"value\"...");
 * the host's has none.  @v in ns is printed in seconds, exactly.
 */
static void print_sample(FILE *out, const char *name, const char *suffix,
			 const struct series *s, const char *labels, __u64 v,
			 bool ns)
{
	fprintf(out, PREFIX "%s%s", name, suffix);
	if (s) {
		fprintf(out, "{vm=\"%u\",pid=\"%u\",ino=\"%llu\"", s->vm,
			s->pid, (unsigned long long)s->ino);
		print_ident(out, &s->ident);
		fprintf(out, "%s}", labels);
	}
	if (ns)
		fprintf(out, " %llu.%09llu\n", v / 1000000000ULL,
			v % 1000000000ULL);
	else
		fprintf(out, " %llu\n", (unsigned long long)v);
}

static __u64 value(const struct series *s, unsigned int slot)
{
	return s->exported[slot];
}

/* One histogram from its slot @at: the buckets, +Inf, the sum. */
static void print_histogram(FILE *out, const struct family *f,
			    const struct series *s, unsigned int at,
			    const char *labels)
{
	__u64 all = value(s, at + NR_BOUNDS);
	char le[128];
	unsigned int i;

	for (i = 0; i < NR_BOUNDS; i++) {
		/* The shortest form, as OpenMetrics wants le: "1.024e-06". */
		snprintf(le, sizeof(le), "%s,le=\"%.12g\"", labels,
			 (1ULL << (LATENCY_MIN_LOG2 + i)) / 1e9);
		print_sample(out, f->name, "_bucket", s, le, value(s, at + i),
			     false);
	}
	snprintf(le, sizeof(le), "%s,le=\"+Inf\"", labels);
	print_sample(out, f->name, "_bucket", s, le, all, false);
	print_sample(out, f->name, "_count", s, labels, all, false);
	print_sample(out, f->name, "_sum", s, labels,
		     value(s, at + NR_BOUNDS + 1), true);
}

static void print_family(FILE *out, const struct metrics *m,
			 const struct family *f, unsigned int slot,
			 enum metrics_format format)
{
	bool ns = f->unit && !strcmp(f->unit, "seconds");
	unsigned int i, at;
	char labels[64];
	int j;

	print_header(out, f->name, f->type, f->unit, f->help, format);
	for (j = 0; j < m->nr_series; j++) {
		const struct series *s = m->series[j];

		/* Sizes are of this moment: none for files not seen now. */
		if (f->type == GAUGE && !s->seen)
			continue;
		for (i = 0, at = slot; i < f->nr_values; i++, at += width(f)) {
			labels[0] = '\0';
			if (f->label)
				snprintf(labels, sizeof(labels), ",%s=\"%s\"",
					 f->label, f->label_value(i));
			if (f->type == HISTOGRAM)
				print_histogram(out, f, s, at, labels);
			else if (value(s, at) != UNKNOWN)
				print_sample(out, f->name,
					     f->type == COUNTER ? "_total" : "",
					     s, labels, value(s, at), ns);
		}
	}
}

void metrics_print(FILE *out, const struct metrics *m,
		   enum metrics_format format)
{
	unsigned int i, slot = 0;

	for (i = 0; i < ARRAY_SIZE(families); i++) {
		print_family(out, m, &families[i], slot, format);
		slot += slots(&families[i]);
	}
	for (i = 0; i < ARRAY_SIZE(host_families); i++) {
		const struct host_family *h = &host_families[i];

		print_header(out, h->name, h->type, NULL, h->help, format);
		print_sample(out, h->name, h->type == COUNTER ? "_total" : "",
			     NULL, NULL, m->host[i], false);
	}
	if (format == METRICS_OPENMETRICS)
		fputs("# EOF\n", out);
}

/*
 * PATH.tmp, made anew: whoever can write the directory must not have
 * gmemtop write through a link of theirs.  One left over (by a gmemtop
 * that died while writing, or planted) is removed, not followed.
 */
static int create_tmp(const char *tmp)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = open(tmp, flags, 0644);

	if (fd < 0 && errno == EEXIST && !unlink(tmp))
		fd = open(tmp, flags, 0644);
	return fd < 0 ? -errno : fd;
}

/*
 * node_exporter's textfile collector must never read half a file, and
 * reads only *.prom: write PATH.tmp beside PATH, sync it, rename it over.
 */
static int write_file(const char *path, const char *tmp, const char *data,
		      size_t len)
{
	int fd = create_tmp(tmp);
	int err = 0;
	ssize_t n;

	if (fd < 0)
		return fd;
	while (len && !err) {
		n = write(fd, data, len);
		if (n >= 0) {
			data += n;
			len -= n;
		} else if (errno != EINTR) {
			err = -errno;
		}
	}
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static void write_textfile(struct metrics *m)
{
	int err = write_file(m->textfile, m->textfile_tmp,
			     m->page[METRICS_TEXT], m->len[METRICS_TEXT]);

	if (err && err != m->textfile_err)
		fprintf(stderr, "gmemtop: cannot write %s (through %s): %s\n",
			m->textfile, m->textfile_tmp, strerror(-err));
	else if (!err && m->textfile_err)
		fprintf(stderr, "gmemtop: %s written again\n", m->textfile);
	m->textfile_err = err;
}

/* Both expositions of what @m holds now, served and written from here. */
static void publish(struct metrics *m)
{
	char *page[2] = { NULL, NULL };
	size_t len[2];
	int format;

	for (format = 0; format < 2; format++) {
		FILE *out = open_memstream(&page[format], &len[format]);

		if (!out)
			break;
		metrics_print(out, m, format);
		if (fclose(out))
			break;
	}
	if (format < 2) {	/* out of memory: keep what was published */
		free(page[0]);
		free(page[1]);
		return;
	}
	pthread_mutex_lock(&m->lock);
	for (format = 0; format < 2; format++) {
		free(m->page[format]);
		m->page[format] = page[format];
		m->len[format] = len[format];
	}
	pthread_mutex_unlock(&m->lock);
	if (m->textfile)
		write_textfile(m);
}

void metrics_update(struct metrics *m, const struct report *r)
{
	unsigned int i;
	int j;

	for (j = 0; j < m->nr_series; j++)
		m->series[j]->seen = false;
	for (j = 0; j < r->nr_files; j++)
		take_row(m, &r->files[j]);
	for (i = 0; i < ARRAY_SIZE(host_families); i++)
		m->host[i] = host_families[i].get(r);
	forget_gone(m);
	publish(m);
}

void metrics_restart(struct metrics *m, const struct report *r)
{
	struct series *s;
	int j;

	for (j = 0; j < r->nr_files; j++) {
		s = take_row(m, &r->files[j]);
		if (s)
			carry(m, s);
	}
	publish(m);
}

static char *trim(char *s)
{
	char *end;

	s += strspn(s, " \t");
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

/*
 * One media range, "type/subtype;version=...;q=...": whether gmemtop
 * serves it, in which format, and how much the client wants it.
 */
static bool parse_range(char *range, enum metrics_format *format, double *q)
{
	char *save, *type = trim(strtok_r(range, ";", &save) ?: range);
	const char *version = NULL;
	char *param, *value;

	*q = 1;
	while ((param = strtok_r(NULL, ";", &save))) {
		value = strchr(param, '=');
		if (!value)
			continue;
		*value++ = '\0';
		value = trim(value);
		if (*value == '"' && value[strlen(value) - 1] == '"') {
			value[strlen(value) - 1] = '\0';
			value++;
		}
		if (!strcasecmp(trim(param), "q"))
			*q = strtod(value, NULL);
		else if (!strcasecmp(trim(param), "version"))
			version = value;
	}
	*format = METRICS_TEXT;
	if (!strcasecmp(type, "application/openmetrics-text")) {
		*format = METRICS_OPENMETRICS;
		return !version || !strcmp(version, "1.0.0");
	}
	if (!strcasecmp(type, "text/plain"))
		return !version || !strcmp(version, "0.0.4");
	return !strcasecmp(type, "text/*") || !strcasecmp(type, "*/*");
}

/*
 * Prometheus asks "application/openmetrics-text;version=1.0.0,
 * application/openmetrics-text;version=0.0.1;q=0.75,
 * text/plain;version=0.0.4;q=0.5,*\/\*;q=0.1".  The range with the highest
 * q that gmemtop serves wins, the first of equals; the text format when
 * none does, as the Prometheus client libraries do.
 */
enum metrics_format metrics_negotiate(const char *accept)
{
	enum metrics_format best = METRICS_TEXT, format;
	char *copy, *range, *save;
	double best_q = 0, q;

	copy = accept ? strdup(accept) : NULL;
	if (!copy)
		return METRICS_TEXT;
	for (range = strtok_r(copy, ",", &save); range;
	     range = strtok_r(NULL, ",", &save)) {
		if (parse_range(range, &format, &q) && q > best_q) {
			best = format;
			best_q = q;
		}
	}
	free(copy);
	return best;
}

static const char *const content_types[] = {
	[METRICS_TEXT] = "text/plain; version=0.0.4; charset=utf-8",
	[METRICS_OPENMETRICS] =
		"application/openmetrics-text; version=1.0.0; charset=utf-8",
};

static struct MHD_Response *response_of(const char *body, size_t len,
					const char *type)
{
	struct MHD_Response *response;

	response = MHD_create_response_from_buffer(len, (void *)body,
						   MHD_RESPMEM_MUST_COPY);
	if (response)
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
					type);
	return response;
}

static struct MHD_Response *metrics_response(struct metrics *m,
					     struct MHD_Connection *connection)
{
	enum metrics_format format;
	struct MHD_Response *response;

	format = metrics_negotiate(MHD_lookup_connection_value(
		connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
	pthread_mutex_lock(&m->lock);
	response = response_of(m->page[format], m->len[format],
			       content_types[format]);
	pthread_mutex_unlock(&m->lock);
	if (response)
		MHD_add_response_header(response, MHD_HTTP_HEADER_VARY,
					"Accept");
	return response;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *connection,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	static const char not_found[] = "try /metrics\n";
	static const char not_allowed[] = "only GET and HEAD\n";
	unsigned int status = MHD_HTTP_OK;
	struct MHD_Response *response;
	enum MHD_Result ret;

	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		response = response_of(not_allowed, sizeof(not_allowed) - 1,
				       "text/plain");
		if (response)
			MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW,
						"GET, HEAD");
	} else if (strcmp(url, "/metrics")) {
		status = MHD_HTTP_NOT_FOUND;
		response = response_of(not_found, sizeof(not_found) - 1,
				       "text/plain");
	} else {
		response = metrics_response(cls, connection);
	}
	if (!response)
		return MHD_NO;
	ret = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return ret;
}

static in_port_t parse_port(const char *s)
{
	char *end;
	long port;

	if (*s < '0' || *s > '9')
		return 0;
	port = strtol(s, &end, 10);
	return *end || port < 1 || port > 65535 ? 0 : htons(port);
}

int metrics_parse_addr(const char *arg, struct sockaddr_storage *addr)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
	struct sockaddr_in *in = (struct sockaddr_in *)addr;
	const char *colon = strrchr(arg, ':');
	char host[INET6_ADDRSTRLEN + 2];
	size_t len = colon ? colon - arg : 0;

	memset(addr, 0, sizeof(*addr));
	if (!colon) {		/* a port alone: loopback only */
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = parse_port(arg);
		return in->sin_port ? 0 : -1;
	}
	if (!len || len >= sizeof(host))
		return -1;
	memcpy(host, arg, len);
	host[len] = '\0';
	if (host[0] == '[' && host[len - 1] == ']') {
		host[len - 1] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = parse_port(colon + 1);
		return in6->sin6_port &&
		       inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ?
		       0 : -1;
	}
	in->sin_family = AF_INET;
	in->sin_port = parse_port(colon + 1);
	return in->sin_port && inet_pton(AF_INET, host, &in->sin_addr) == 1 ?
	       0 : -1;
}

static const char *describe(const struct sockaddr_storage *addr, char *buf,
			    size_t len)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
	const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
	char host[INET6_ADDRSTRLEN];

	if (addr->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	}
	return buf;
}

/* Our own socket, so that a failure says why (in use, no such address). */
static int listen_on(const struct sockaddr_storage *addr)
{
	socklen_t len = addr->ss_family == AF_INET6 ?
			sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int one = 1, err, fd;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A restarted gmemtop gets its port back at once. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, len) || listen(fd, 64)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/*
 * libmicrohttpd's thread starts with the ending signals held, as the
 * thread that starts it has them now: only the main loop takes them, so
 * that they always cut its wait short.
 */
static struct MHD_Daemon *start_daemon(struct metrics *m, int fd, int family)
{
	struct MHD_Daemon *daemon;
	sigset_t saved;

	hold_signals(&saved);
	/* Scrapers are few and quick: idle or surplus clients wait no one out. */
	daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
				  (family == AF_INET6 ? MHD_USE_IPv6 : 0),
				  0, NULL, NULL, answer, m,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32,
				  MHD_OPTION_END);
	release_signals(&saved);
	return daemon;
}

static int serve(struct metrics *m, const struct sockaddr_storage *addr)
{
	char where[INET6_ADDRSTRLEN + 16];
	int fd = listen_on(addr);

	if (fd >= 0)
		m->daemon = start_daemon(m, fd, addr->ss_family);
	if (m->daemon)
		return 0;
	fprintf(stderr, "gmemtop: cannot serve metrics on %s: %s\n",
		describe(addr, where, sizeof(where)),
		fd < 0 ? strerror(-fd) : "libmicrohttpd failed to start");
	if (fd >= 0)
		close(fd);
	return -1;
}

static enum slot_kind slot_kind_of(const struct family *f)
{
	if (f->type == GAUGE)
		return SLOT_GAUGE;
	return f->fill_kernel ? SLOT_KERNEL : SLOT_COUNTER;
}

struct metrics *metrics_new(const struct sockaddr_storage *addr,
			    const char *textfile)
{
	struct metrics *m = calloc(1, sizeof(*m));
	unsigned int i, j, slot = 0;

	if (!m)
		goto nomem;
	pthread_mutex_init(&m->lock, NULL);
	for (i = 0; i < ARRAY_SIZE(families); i++)
		m->nr_slots += slots(&families[i]);
	m->kinds = calloc(m->nr_slots, sizeof(*m->kinds));
	m->scratch = calloc(m->nr_slots, sizeof(*m->scratch));
	if (!m->kinds || !m->scratch)
		goto nomem;
	for (i = 0; i < ARRAY_SIZE(families); i++)
		for (j = 0; j < slots(&families[i]); j++)
			m->kinds[slot++] = slot_kind_of(&families[i]);

	if (textfile) {
		m->textfile = textfile;
		m->textfile_tmp = malloc(strlen(textfile) + sizeof(".tmp"));
		if (!m->textfile_tmp)
			goto nomem;
		strcpy(m->textfile_tmp, textfile);
		strcat(m->textfile_tmp, ".tmp");
	}
	/* Something to serve before the first report; a file written now. */
	publish(m);
	if (!m->page[METRICS_TEXT])
		goto nomem;
	if (m->textfile_err || (addr && serve(m, addr))) {
		metrics_free(m);
		return NULL;
	}
	return m;
nomem:
	fprintf(stderr, "gmemtop: out of memory for metrics\n");
	metrics_free(m);
	return NULL;
}

void metrics_free(struct metrics *m)
{
	int i;

	if (!m)
		return;
	if (m->daemon)
		MHD_stop_daemon(m->daemon);	/* closes the socket too */
	for (i = 0; i < m->nr_series; i++)
		free(m->series[i]);
	free(m->series);
	free(m->kinds);
	free(m->scratch);
	free(m->page[0]);
	free(m->page[1]);
	free(m->textfile_tmp);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
