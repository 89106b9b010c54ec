// SPDX-License-Identifier: GPL-2.0
/*
 * Reading gmemtop's BPF maps into a report: per-CPU values summed, the
 * previous report kept for rates, fdinfo added for sizes and layouts.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "gmemtop.h"
#include "gmemtop.skel.h"
#include "metrics.h"

struct report_state {
	struct gmemtop_bpf *skel;
	int nr_cpus;
	struct gmem_file_stats *percpu;	/* one lookup's worth */
	struct report report;
	struct file_row *prev;		/* the previous report's rows */
	int nr_prev;
};

struct report_state *report_state_new(struct gmemtop_bpf *skel)
{
	struct report_state *state = calloc(1, sizeof(*state));

	if (!state)
		return NULL;
	state->skel = skel;
	state->nr_cpus = libbpf_num_possible_cpus();
	state->percpu = calloc(state->nr_cpus, sizeof(*state->percpu));
	if (state->nr_cpus <= 0 || !state->percpu) {
		free(state->percpu);
		free(state);
		return NULL;
	}
	return state;
}

void report_state_free(struct report_state *state)
{
	free(state->report.files);
	free(state->report.hotspots);
	free(state->prev);
	free(state->percpu);
	free(state);
}

static void add_stats(struct gmem_file_stats *sum,
		      const struct gmem_file_stats *s)
{
	int i;

	sum->ioctls += s->ioctls;
	for (i = 0; i < 2; i++) {
		sum->conversions[i] += s->conversions[i];
		sum->pages[i] += s->pages[i];
	}
	sum->eagain += s->eagain;
	sum->errors += s->errors;
	sum->invalidations += s->invalidations;
	sum->invalidated_gfns += s->invalidated_gfns;
	sum->lat_sum_ns += s->lat_sum_ns;
	if (s->lat_max_ns > sum->lat_max_ns)
		sum->lat_max_ns = s->lat_max_ns;
	for (i = 0; i < GMEM_NR_PHASES; i++)
		sum->phase_ns[i] += s->phase_ns[i];
	for (i = 0; i < GMEM_HIST_BUCKETS; i++)
		sum->hist[i] += s->hist[i];
}

/* Counters add up; the owner is whatever a CPU recorded last. */
static void sum_cpus(const struct gmem_file_stats *cpus, int nr,
		     struct gmem_file_stats *sum)
{
	int c;

	memset(sum, 0, sizeof(*sum));
	for (c = 0; c < nr; c++) {
		if (cpus[c].pid) {
			sum->pid = cpus[c].pid;
			sum->vm = cpus[c].vm;
		}
		if (cpus[c].comm[0])
			memcpy(sum->comm, cpus[c].comm, sizeof(sum->comm));
		add_stats(sum, &cpus[c]);
	}
}

static const struct file_row *find_prev(struct report_state *state, __u64 ino)
{
	int i;

	for (i = 0; i < state->nr_prev; i++)
		if (state->prev[i].ino == ino)
			return &state->prev[i];
	return NULL;
}

/* Appends "start-end kind" to @layout, for the first few ranges. */
static void add_range(char *layout, size_t len, const char *range)
{
	size_t used = strlen(layout);

	if (used + strlen(range) + 3 < len)
		snprintf(layout + used, len - used, "%s%s", used ? ", " : "",
			 range);
}

/* "0x0-0x4000 private" */
static void parse_range(struct gmem_fdinfo *info, const char *text)
{
	struct gmem_range *g = &info->ranges[info->nr_ranges];
	char kind[16];

	if (info->nr_ranges < FDINFO_MAX_RANGES &&
	    sscanf(text, "%llx-%llx %15s", &g->start, &g->end, kind) == 3) {
		g->private = !strcmp(kind, "private");
		info->nr_ranges++;
	}
}

static void read_fdinfo_file(const char *path, struct gmem_fdinfo *info)
{
	char line[256], value[200];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "gmem_size: %lld", &info->size) == 1 ||
		    sscanf(line, "gmem_shared_pages: %lld", &info->shared_pages) == 1 ||
		    sscanf(line, "gmem_private_pages: %lld", &info->private_pages) == 1 ||
		    parse_fdinfo_summary(line, info))
			continue;
		if (sscanf(line, "gmem_range: %199[^\n]", value) == 1) {
			add_range(info->layout, sizeof(info->layout), value);
			parse_range(info, value);
		}
	}
	fclose(f);
}

/* Finds the VMM's descriptor for inode @ino and reads its fdinfo. */
static void read_fdinfo(pid_t pid, __u64 ino, struct gmem_fdinfo *info)
{
	char dir[64], path[320];
	struct dirent *d;
	struct stat st;
	DIR *fds;

	info->size = info->shared_pages = info->private_pages = -1;
	info->layout[0] = '\0';
	info->summary[0] = '\0';
	info->summary_cell = 0;
	info->nr_ranges = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	fds = opendir(dir);
	if (!fds)
		return;
	while ((d = readdir(fds))) {
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if (stat(path, &st) || st.st_ino != ino)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid,
			 d->d_name);
		read_fdinfo_file(path, info);
		if (info->size >= 0)
			break;
	}
	closedir(fds);
}

/* Reads and deletes an entry at once: nothing counted in between is lost. */
static int drain_elem(int fd, const void *key, void *value)
{
	int err = bpf_map_lookup_and_delete_elem(fd, key, value);

	if (err)
		bpf_map_delete_elem(fd, key);
	return err;
}

/* With @drain, the map is left empty: its counters restart from zero. */
static int take_files(struct report_state *state, struct report *r,
		      bool drain)
{
	int fd = bpf_map__fd(state->skel->maps.files);
	__u64 key, *prev_key = NULL;
	struct file_row *rows = NULL;
	int nr = 0;

	while (!bpf_map_get_next_key(fd, drain ? NULL : prev_key, &key)) {
		struct file_row *row;
		const struct file_row *old;

		prev_key = &key;
		if ((drain ? drain_elem : bpf_map_lookup_elem)(fd, &key,
							       state->percpu))
			continue;
		row = realloc(rows, (nr + 1) * sizeof(*rows));
		if (!row) {
			free(rows);
			return -1;
		}
		rows = row;
		row = &rows[nr++];
		memset(row, 0, sizeof(*row));
		row->ino = key;
		sum_cpus(state->percpu, state->nr_cpus, &row->now);
		read_process_name(row->now.pid, row->now.comm);
		old = find_prev(state, key);
		if (old)
			row->then = old->now;
		read_fdinfo(row->now.pid, key, &row->fdinfo);
	}
	free(r->files);
	r->files = rows;
	r->nr_files = nr;
	return 0;
}

static int compare_hotspots(const void *a, const void *b)
{
	const struct hotspot_row *x = a, *y = b;

	if (x->spot.count != y->spot.count)
		return x->spot.count < y->spot.count ? 1 : -1;
	return x->key.offset < y->key.offset ? -1 : x->key.offset > y->key.offset;
}

static int take_hotspots(struct report_state *state, struct report *r)
{
	int fd = bpf_map__fd(state->skel->maps.hotspots);
	struct gmem_hotspot_key key, *prev_key = NULL;
	struct hotspot_row *rows = NULL, *row;
	int nr = 0;

	while (!bpf_map_get_next_key(fd, prev_key, &key)) {
		prev_key = &key;
		row = realloc(rows, (nr + 1) * sizeof(*rows));
		if (!row) {
			free(rows);
			return -1;
		}
		rows = row;
		rows[nr].key = key;
		if (!bpf_map_lookup_elem(fd, &key, &rows[nr].spot))
			nr++;
	}
	if (nr)		/* qsort() of NULL is undefined, even for 0 */
		qsort(rows, nr, sizeof(*rows), compare_hotspots);
	free(r->hotspots);
	r->hotspots = rows;
	r->nr_hotspots = nr;
	return 0;
}

__u64 dropped_records(struct gmemtop_bpf *skel)
{
	int nr_cpus = libbpf_num_possible_cpus(), c;
	__u64 *counts = calloc(nr_cpus, sizeof(*counts)), sum = 0;
	__u32 zero = 0;

	if (counts && !bpf_map_lookup_elem(bpf_map__fd(skel->maps.dropped),
					   &zero, counts))
		for (c = 0; c < nr_cpus; c++)
			sum += counts[c];
	free(counts);
	return sum;
}

struct report *report_take(struct report_state *state, double interval,
			   double elapsed)
{
	struct report *r = &state->report;

	if (take_files(state, r, false) || take_hotspots(state, r))
		return NULL;
	r->dropped = dropped_records(state->skel);
	r->interval = interval;
	r->elapsed = elapsed;
	if (metrics)
		metrics_update(metrics, r);

	free(state->prev);
	state->prev = malloc(r->nr_files * sizeof(*r->files));
	state->nr_prev = state->prev ? r->nr_files : 0;
	if (state->prev && r->nr_files)
		memcpy(state->prev, r->files, r->nr_files * sizeof(*r->files));
	return r;
}

/*
 * Deleting the entries restarts every counter from zero; what /metrics
 * exports goes on from what each counted up to its deletion.
 */
void report_reset(struct report_state *state)
{
	struct bpf_map *maps[] = { state->skel->maps.files,
				   state->skel->maps.hotspots };
	char key[sizeof(struct gmem_hotspot_key)];
	unsigned int i;

	if (metrics && !take_files(state, &state->report, true))
		metrics_restart(metrics, &state->report);

	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		int fd = bpf_map__fd(maps[i]);

		while (!bpf_map_get_next_key(fd, NULL, key))
			bpf_map_delete_elem(fd, key);
	}
	state->nr_prev = 0;
}
