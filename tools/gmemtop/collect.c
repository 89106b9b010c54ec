// SPDX-License-Identifier: GPL-2.0
/*
 * Reading gmemtop's BPF maps into a report: one batch lookup per map, the
 * latency of each outcome joined to its file, the previous report kept for
 * rates, fdinfo added for sizes and layouts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "fds.h"
#include "gmemtop.h"
#include "gmemtop.skel.h"
#include "holders.h"
#include "metrics.h"

struct report_state {
	struct gmemtop_bpf *skel;
	struct holders *holders;	/* with --holders[=auto] */
	struct metrics *metrics;	/* with --openmetrics, --textfile */
	struct report report;
	struct snapshot *prev;		/* the last report's counters, by ino */
	int nr_prev;
	struct snapshot *older;		/* what the last report's rows read */
	double counting_since;		/* elapsed time at the last reset */
	double hotspot_window;		/* seconds; 0: hotspots never expire */
	__u64 hotspots_expired;		/* deleted for being idle, ever */
	const char *cgroup;		/* --cgroup; NULL: every VMM */
	struct ident_entry *idents;	/* read once per VMM */
	int nr_idents;
	struct fd_index *fds;		/* where each file's fdinfo is */
};

/* A file's counters as the last report saw them, for the next one. */
struct snapshot {
	__u64 ino;
	struct gmem_file_stats stats;
};

/*
 * A VMM's names, kept while it has rows: /proc is read once per pid, and
 * its process name once per report.
 */
struct ident_entry {
	pid_t pid;
	bool seen;			/* in the report being taken */
	bool has_comm;			/* comm read for it */
	char comm[GMEM_COMM_LEN];
	struct vm_ident ident;
};

struct report_state *report_state_new(struct gmemtop_bpf *skel,
				      enum holders_mode holders,
				      struct metrics *metrics,
				      double hotspot_window)
{
	struct report_state *state = calloc(1, sizeof(*state));

	if (!state)
		return NULL;
	state->skel = skel;
	state->metrics = metrics;
	state->hotspot_window = hotspot_window;
	state->report.max_files = bpf_map__max_entries(skel->maps.files);
	state->fds = fd_index_new();
	if (!state->fds) {
		free(state);
		return NULL;
	}
	if (holders) {
		state->holders = holders_open(holders == HOLDERS_AUTO);
		if (!state->holders) {
			fd_index_free(state->fds);
			free(state);
			return NULL;
		}
	}
	return state;
}

void report_state_free(struct report_state *state)
{
	holders_close(state->holders);
	free(state->report.files);
	free(state->report.hotspots);
	free(state->prev);
	free(state->older);
	free(state->idents);
	fd_index_free(state->fds);
	free(state);
}

void report_state_filter_cgroup(struct report_state *state, const char *path)
{
	state->cgroup = path;
}

/* Reads the process name into @e the first time it is seen in a report. */
static struct ident_entry *seen(struct ident_entry *e)
{
	if (!e->seen) {
		e->comm[0] = '\0';
		read_process_name(e->pid, e->comm);
		e->has_comm = e->comm[0];
		e->seen = true;
	}
	return e;
}

/*
 * VMM @pid's entry; its names are read on first sight.  When there is no
 * memory to keep them, names are read anew each time: slower, still right.
 */
static struct ident_entry *vmm_of(struct report_state *state, pid_t pid)
{
	static struct ident_entry uncached;
	struct ident_entry *e;
	int i;

	for (i = 0; i < state->nr_idents; i++)
		if (state->idents[i].pid == pid)
			return seen(&state->idents[i]);
	e = realloc(state->idents, (state->nr_idents + 1) * sizeof(*e));
	if (!e) {
		e = &uncached;
	} else {
		state->idents = e;
		e = &e[state->nr_idents++];
	}
	memset(e, 0, sizeof(*e));
	e->pid = pid;
	ident_read(pid, &e->ident);
	return seen(e);
}

static const struct vm_ident *ident_of(struct report_state *state, pid_t pid)
{
	return &vmm_of(state, pid)->ident;
}

/*
 * Names of VMMs no longer in any row are dropped: a pid used again by
 * another VMM is read anew.
 */
static void forget_idents(struct report_state *state)
{
	int i, kept = 0;

	for (i = 0; i < state->nr_idents; i++) {
		if (!state->idents[i].seen)
			continue;
		state->idents[i].seen = false;
		state->idents[kept++] = state->idents[i];
	}
	state->nr_idents = kept;
}

/* Whether --cgroup lets VMM @ident through. */
static bool wanted_vmm(const struct report_state *state,
		       const struct vm_ident *ident)
{
	return !state->cgroup || ident_cgroup_under(ident->cgroup,
						    state->cgroup);
}

/* A map's entries, read in batches. */
struct map_dump {
	void *keys;
	void *values;
	__u32 nr;
};

static void map_dump_free(struct map_dump *d)
{
	free(d->keys);
	free(d->values);
}

/*
 * Reads every entry of @map with BPF_MAP_LOOKUP_BATCH: a few system calls
 * for the whole map, where a lookup per key would take two per entry.
 * With @drain, each entry is deleted as it is read (..._AND_DELETE_BATCH):
 * nothing counted in between is lost, and the map is left empty.
 */
static int map_dump(const struct bpf_map *map, struct map_dump *d,
		    bool drain)
{
	__u32 key_size = bpf_map__key_size(map);
	__u32 value_size = bpf_map__value_size(map);
	__u32 max = bpf_map__max_entries(map), count;
	int fd = bpf_map__fd(map), err;
	__u64 batch;
	bool first = true;

	d->nr = 0;
	d->keys = calloc(max, key_size);
	d->values = calloc(max, value_size);
	if (!d->keys || !d->values)
		goto fail;
	do {
		count = max - d->nr;
		if (!count)
			break;
		err = (drain ? bpf_map_lookup_and_delete_batch :
			       bpf_map_lookup_batch)(fd, first ? NULL : &batch,
						     &batch,
						     (char *)d->keys +
							     d->nr * key_size,
						     (char *)d->values +
							     d->nr * value_size,
						     &count, NULL);
		first = false;
		if (err && errno != ENOENT)
			goto fail;
		d->nr += count;
	} while (!err);
	return 0;
fail:
	map_dump_free(d);
	return -1;
}

/* Rows, snapshots and map keys all begin with their inode. */
static int compare_ino(const void *a, const void *b)
{
	const __u64 *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/* The element of @base, sorted by inode, that is @ino's; NULL if none. */
static void *find_by_ino(void *base, int nr, size_t size, __u64 ino)
{
	/* No elements may mean no array at all: bsearch() wants one anyway. */
	if (!nr)
		return NULL;
	return bsearch(&ino, base, nr, size, compare_ino);
}

/* A file of the maps' dump: its inode and where it is in the dump. */
struct dumped_file {
	__u64 ino;
	__u32 index;
};

/*
 * The dump's files by inode: rows are filled in that order, as they are
 * large to move (their histograms).  NULL without memory.
 */
static struct dumped_file *files_by_ino(const struct map_dump *files)
{
	struct dumped_file *order = malloc((files->nr ? files->nr : 1) *
					   sizeof(*order));
	const __u64 *inos = files->keys;
	__u32 i;

	if (!order)
		return NULL;
	for (i = 0; i < files->nr; i++)
		order[i] = (struct dumped_file){ inos[i], i };
	qsort(order, files->nr, sizeof(*order), compare_ino);
	return order;
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
		/* pos, flags, mnt_id, ino: not ours, and not worth a sscanf(). */
		if (strncmp(line, "gmem_", 5))
			continue;
		if (sscanf(line, "gmem_size: %lld", &info->size) == 1 ||
		    sscanf(line, "gmem_shared_pages: %lld", &info->shared_pages) == 1 ||
		    sscanf(line, "gmem_private_pages: %lld", &info->private_pages) == 1 ||
		    parse_fdinfo_summary(line, info) ||
		    parse_fdinfo_lifetime(line, &info->lifetime))
			continue;
		if (sscanf(line, "gmem_range: %199[^\n]", value) == 1) {
			add_range(info->layout, sizeof(info->layout), value);
			parse_range(info, value);
		}
	}
	fclose(f);
}

/*
 * The file's counters read again, just before its fdinfo: the exported
 * counts that follow the kernel's (metrics.c) take the difference
 * between the two.
 */
static bool reread_counts(const struct report_state *state,
			  const struct file_row *row,
			  struct gmem_file_counts *counts)
{
	return !bpf_map_lookup_elem(bpf_map__fd(state->skel->maps.files),
				    &row->ino, counts);
}

/*
 * Whether no conversion of the file was in flight from @before, read
 * just before its fdinfo, to @after, read just after: the kernel counts
 * a conversion in fdinfo before its end event, so fdinfo read meanwhile
 * is ahead of our counters by one.  Only a quiet read gives the exact
 * difference.
 */
static bool quiet(const struct gmem_file_counts *before,
		  const struct gmem_file_counts *after)
{
	return before->begins == before->begins_ended &&
	       after->begins == before->begins &&
	       after->ioctls == before->ioctls;
}

/*
 * Reads the fdinfo of the VMM's descriptor for the row's inode, unless
 * the file was released; with @reread, the row's counters too, right
 * before, and whether the two were read quiet.
 */
static void read_fdinfo(const struct report_state *state, struct file_row *row,
			bool reread)
{
	struct gmem_fdinfo *info = &row->fdinfo;
	struct gmem_file_counts before, after;
	pid_t pid = row->now.pid;
	char path[64];
	int fd;

	info->size = info->shared_pages = info->private_pages = -1;
	info->layout[0] = '\0';
	info->summary[0] = '\0';
	info->summary_cell = 0;
	info->nr_ranges = 0;
	info->quiet = false;
	memset(&info->lifetime, 0, sizeof(info->lifetime));
	if (row->now.released_ns || !fd_index_find(state->fds, pid, row->ino, &fd))
		return;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	if (reread && reread_counts(state, row, &before))
		row->now.counts = before;
	else
		reread = false;
	read_fdinfo_file(path, info);
	/* Without begins counted, no read can be known to be quiet. */
	info->quiet = reread && state->skel->rodata->count_begins &&
		      reread_counts(state, row, &after) &&
		      quiet(&before, &after);
}

/* The summary fields repeat the conversions proper (GMEM_OUTCOME_CHANGED). */
static void set_latency(struct gmem_file_stats *s, unsigned int outcome,
			const struct gmem_lat *l)
{
	s->outcome[outcome] = *l;
	if (outcome != GMEM_OUTCOME_CHANGED)
		return;
	s->lat_sum_ns = l->sum_ns;
	s->lat_max_ns = l->max_ns;
	memcpy(s->phase_ns, l->phase_ns, sizeof(s->phase_ns));
	memcpy(s->hist, l->hist, sizeof(s->hist));
}

/* Fills @row with the file's counters and names, and reads its fdinfo. */
static void fill_row(struct report_state *state, struct file_row *row,
		     __u64 ino, const struct gmem_file_counts *counts,
		     const struct ident_entry *vmm, bool drained)
{
	struct snapshot *old = find_by_ino(state->prev, state->nr_prev,
					   sizeof(*state->prev), ino);

	memset(row, 0, sizeof(*row));
	row->ino = ino;
	row->now.counts = *counts;
	if (vmm->has_comm)
		memcpy(row->now.comm, vmm->comm, GMEM_COMM_LEN);
	row->ident = vmm->ident;
	/* Cumulative: the same rule, from zero at the start. */
	if (old && !state->report.cumulative)
		row->then = &old->stats;
	read_fdinfo(state, row, !drained);
}

/*
 * The rows of @r, sorted by inode, each with its counters and the
 * previous ones, only of the VMMs --cgroup lets through, in the array
 * the last report had.  With @drained, the counters are gone from the
 * maps: none is read again.
 */
static int file_rows(struct report_state *state, struct report *r,
		     const struct map_dump *files, bool drained)
{
	const struct gmem_file_counts *counts = files->values;
	struct dumped_file *order = files_by_ino(files);
	struct file_row *rows;
	struct ident_entry *vmm;
	__u32 i, at;
	int n = 0;

	rows = order ? realloc(r->files, (files->nr ? files->nr : 1) *
					 sizeof(*rows)) : NULL;
	if (!rows) {
		free(order);
		return -1;
	}
	r->files = rows;
	for (i = 0; i < files->nr; i++) {
		at = order[i].index;
		vmm = vmm_of(state, counts[at].pid);
		if (wanted_vmm(state, &vmm->ident))
			fill_row(state, &rows[n++], order[i].ino, &counts[at],
				 vmm, drained);
	}
	r->nr_files = n;
	free(order);
	return 0;
}

/* O(files + samples * log files): each sample finds its file by bsearch. */
static void join_latencies(struct file_row *rows, int nr,
			   const struct map_dump *lat)
{
	const struct gmem_lat_key *keys = lat->keys;
	const struct gmem_lat *values = lat->values;
	struct file_row *row;
	__u32 i;

	for (i = 0; i < lat->nr; i++) {
		row = find_by_ino(rows, nr, sizeof(*rows), keys[i].ino);
		if (row && keys[i].outcome < GMEM_NR_OUTCOMES)
			set_latency(&row->now, keys[i].outcome, &values[i]);
	}
}

/* With @drain, the maps are left empty: their counters restart from zero. */
static int take_files(struct report_state *state, struct report *r,
		      bool drain)
{
	struct map_dump files, lat;
	int err;

	if (map_dump(state->skel->maps.files, &files, drain))
		return -1;
	if (map_dump(state->skel->maps.lat, &lat, drain)) {
		map_dump_free(&files);
		return -1;
	}
	err = file_rows(state, r, &files, drain);
	if (!err)
		join_latencies(r->files, r->nr_files, &lat);
	map_dump_free(&files);
	map_dump_free(&lat);
	return err;
}

static int compare_hotspots(const void *a, const void *b)
{
	const struct hotspot_row *x = a, *y = b;

	if (x->spot.count != y->spot.count)
		return x->spot.count < y->spot.count ? 1 : -1;
	return x->key.offset < y->key.offset ? -1 : x->key.offset > y->key.offset;
}

/*
 * Whether the hotspot saw no EAGAIN for longer than the window, at
 * @now_ns (read after it).  Each entry's last_ns is set when it is
 * created, so a new one is never mistaken for an idle one.
 */
static bool idle(const struct report_state *state,
		 const struct gmem_hotspot *spot, __u64 now_ns)
{
	return state->hotspot_window > 0 &&
	       (__s64)(now_ns - spot->last_ns) > state->hotspot_window * 1e9;
}

/*
 * Deletes the hotspot at @key if it is still as @seen: an EAGAIN there
 * since it was read has moved last_ns, and it stays.  Only the map of
 * hotspots is touched: the file's counters, EAGAINs among them, and
 * everything exported from them go on as they were.
 */
static bool expire_hotspot(struct report_state *state,
			   const struct gmem_hotspot_key *key,
			   const struct gmem_hotspot *seen)
{
	int fd = bpf_map__fd(state->skel->maps.hotspots);
	struct gmem_hotspot spot;

	if (bpf_map_lookup_elem(fd, key, &spot) ||
	    spot.last_ns != seen->last_ns || bpf_map_delete_elem(fd, key))
		return false;
	state->hotspots_expired++;
	return true;
}

/*
 * The hotspots, most EAGAINs first; idle ones are deleted instead, so
 * that they neither rank above live ones nor keep new ones out of a full
 * map.
 */
static int take_hotspots(struct report_state *state, struct report *r)
{
	const struct gmem_hotspot_key *keys;
	const struct gmem_hotspot *spots;
	struct hotspot_row *rows;
	struct map_dump d;
	__u32 i, nr = 0;
	__u64 now_ns;

	if (map_dump(state->skel->maps.hotspots, &d, false))
		return -1;
	now_ns = monotonic_s() * 1e9;
	keys = d.keys;
	spots = d.values;
	rows = calloc(d.nr ? d.nr : 1, sizeof(*rows));
	if (!rows) {
		map_dump_free(&d);
		return -1;
	}
	for (i = 0; i < d.nr; i++) {
		if (!wanted_vmm(state, ident_of(state, spots[i].pid)))
			continue;
		if (idle(state, &spots[i], now_ns) &&
		    expire_hotspot(state, &keys[i], &spots[i]))
			continue;
		rows[nr].key = keys[i];
		rows[nr++].spot = spots[i];
	}
	qsort(rows, nr, sizeof(*rows), compare_hotspots);
	free(r->hotspots);
	r->hotspots = rows;
	r->nr_hotspots = nr;
	map_dump_free(&d);
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

/*
 * Once the files map is half full, files whose release was seen, and that
 * have shown their last counts in a report, are deleted: files coming and
 * going never fill the maps, and while there is room, closed files stay
 * on show with their final counts.
 */
static void forget_released(struct report_state *state, const struct report *r)
{
	int files = bpf_map__fd(state->skel->maps.files);
	int lat = bpf_map__fd(state->skel->maps.lat);
	int hotspots = bpf_map__fd(state->skel->maps.hotspots);
	struct gmem_lat_key key = {};
	int i;

	if (r->nr_files <= (int)r->max_files / 2)
		return;
	for (i = 0; i < r->nr_files; i++) {
		if (!r->files[i].now.released_ns)
			continue;
		key.ino = r->files[i].ino;
		for (key.outcome = 0; key.outcome < GMEM_NR_OUTCOMES;
		     key.outcome++)
			bpf_map_delete_elem(lat, &key);
		bpf_map_delete_elem(files, &key.ino);
	}
	for (i = 0; i < r->nr_hotspots; i++) {
		const struct snapshot *snap;

		snap = find_by_ino(state->prev, state->nr_prev,
				   sizeof(*state->prev), r->hotspots[i].key.ino);
		if (snap && snap->stats.released_ns)
			bpf_map_delete_elem(hotspots, &r->hotspots[i].key);
	}
}

/*
 * The counters of @r's rows (still by inode), for the next report's
 * rates.  @r's rows read the snapshots before these until then.
 */
static void keep_previous(struct report_state *state, const struct report *r)
{
	struct snapshot *snaps = malloc((r->nr_files ? r->nr_files : 1) *
					sizeof(*snaps));
	int i;

	free(state->older);
	state->older = state->prev;
	state->prev = snaps;
	state->nr_prev = snaps ? r->nr_files : 0;
	for (i = 0; i < state->nr_prev; i++) {
		snaps[i].ino = r->files[i].ino;
		snaps[i].stats = r->files[i].now;
	}
}

struct report *report_take(struct report_state *state, double interval,
			   double elapsed)
{
	struct report *r = &state->report;

	if (take_files(state, r, false) || take_hotspots(state, r))
		return NULL;
	forget_idents(state);
	fd_index_next_interval(state->fds);
	if (state->holders) {
		holders_watch_as_needed(state->holders, r);
		holders_name(state->holders, r);
	}
	r->dropped = dropped_records(state->skel);
	r->losses = state->skel->bss->losses;
	r->hotspots_expired = state->hotspots_expired;
	r->interval = r->cumulative ? elapsed - state->counting_since :
				      interval;
	r->elapsed = elapsed;
	keep_previous(state, r);
	forget_released(state, r);
	if (state->metrics)
		metrics_update(state->metrics, r);
	return r;
}

void report_toggle_cumulative(struct report_state *state)
{
	state->report.cumulative = !state->report.cumulative;
}

static void clear_map(const struct bpf_map *map)
{
	char key[sizeof(struct gmem_hotspot_key)];	/* the largest key */
	int fd = bpf_map__fd(map);

	while (!bpf_map_get_next_key(fd, NULL, key))
		bpf_map_delete_elem(fd, key);
}

/*
 * Deleting the entries restarts every counter from zero.  With metrics,
 * each entry is read as it is deleted, so that /metrics goes on from
 * what it counted up to then; an entry the BPF programs create after
 * that is left for the next report, not deleted unread.
 */
void report_reset(struct report_state *state)
{
	if (state->metrics && !take_files(state, &state->report, true)) {
		metrics_restart(state->metrics, &state->report);
	} else {
		clear_map(state->skel->maps.files);
		clear_map(state->skel->maps.lat);
	}
	clear_map(state->skel->maps.hotspots);
	state->nr_prev = 0;
	/* The reset happens within the interval after the last report. */
	state->counting_since = state->report.elapsed;
}
