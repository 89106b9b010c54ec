// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop on a kernel with guest_memfd but without the kvm_gmem trace
 * events: fexit on guest_memfd's own functions still shows host faults
 * and fallocate() per guest_memfd.  Says plainly what it cannot show.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "gmemtop.h"
#include "gmemstock.skel.h"
#include "probe.h"

#define STOCK_NOTICE							\
	"  Shown, through fexit on guest_memfd functions: host page faults\n"	\
	"  (mapped or SIGBUS) and fallocate() (punch hole, allocate) per file.\n" \
	"  Not available: conversions, EAGAIN and its causes, latency and its\n" \
	"  phases, KVM invalidations, VM ids.  Boot the instrumented kernel\n"	\
	"  for those ('make kernel', 'tests/vm/run', see README.md).\n"

void stock_notice(const struct kernel_offer *offer, bool forced)
{
	if (forced)
		fputs("gmemtop: --fentry: what a kernel without the kvm_gmem trace events offers.\n",
		      stderr);
	else
		fputs("gmemtop: this kernel has guest_memfd but not the kvm_gmem trace events.\n",
		      stderr);
	fputs(STOCK_NOTICE, stderr);
	/* guest_memfd before Linux 6.18 cannot be mapped: no faults. */
	if (!offer->gmem_mmap)
		fputs("gmemtop: this kernel cannot mmap() guest_memfd: no host page faults to count\n",
		      stderr);
}

static void sum_stock(const struct gmem_stock_stats *cpus, int nr,
		      struct gmem_stock_stats *sum)
{
	int c;

	memset(sum, 0, sizeof(*sum));
	for (c = 0; c < nr; c++) {
		const struct gmem_stock_stats *s = &cpus[c];

		if (s->pid) {
			sum->pid = s->pid;
			memcpy(sum->comm, s->comm, sizeof(sum->comm));
		}
		if (s->released_ns)
			sum->released_ns = s->released_ns;
		sum->faults += s->faults;
		sum->sigbus += s->sigbus;
		sum->punch_holes += s->punch_holes;
		sum->punched_bytes += s->punched_bytes;
		sum->allocations += s->allocations;
		sum->allocated_bytes += s->allocated_bytes;
	}
	read_process_name(sum->pid, sum->comm);
}

/* Every file's counters, summed over CPUs, into @r. */
static int take_stock(struct gmemstock_bpf *skel, int nr_cpus,
		      struct stock_report *r)
{
	struct gmem_stock_stats *cpus = calloc(nr_cpus, sizeof(*cpus));
	int fd = bpf_map__fd(skel->maps.stock_files);
	__u64 key, *prev = NULL;

	if (!cpus)
		return -1;
	r->nr_files = 0;
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		struct stock_row *rows;

		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, cpus))
			continue;
		rows = realloc(r->files, (r->nr_files + 1) * sizeof(*rows));
		if (!rows)
			break;
		r->files = rows;
		rows[r->nr_files].ino = key;
		sum_stock(cpus, nr_cpus, &rows[r->nr_files++].stats);
	}
	r->timestamp = wall_s();
	r->files_not_tracked = skel->bss->files_not_tracked;
	r->events_not_counted = skel->bss->events_not_counted;
	free(cpus);
	return 0;
}

static int load_stock(const struct env *env, const struct kernel_offer *offer,
		      struct gmemstock_bpf **skelp)
{
	struct gmemstock_bpf *skel = gmemstock_bpf__open();
	int err;

	if (!skel)
		return EXIT_FAILURE;
	skel->rodata->targ_pid = env->pid;
	bpf_program__set_autoload(skel->progs.user_fault, offer->gmem_mmap);
	err = bpf_map__set_max_entries(skel->maps.stock_files, env->max_files);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.refused,
					       env->max_files);
	if (!err)
		err = gmemstock_bpf__load(skel);
	if (!err)
		err = gmemstock_bpf__attach(skel);
	if (err) {
		gmemstock_bpf__destroy(skel);
		if (err == -EPERM || err == -EACCES)
			return no_privilege();
		fprintf(stderr, "gmemtop: cannot attach to guest_memfd functions: %s\n",
			strerror(-err));
		return EXIT_NO_EVENTS;
	}
	*skelp = skel;
	return 0;
}

/*
 * As in the normal mode (forget_released() in collect.c): once the map
 * is half full, files closed for good that @r showed are deleted, their
 * room given to new ones, so that the map never fills with closed files.
 */
static void forget_released(struct gmemstock_bpf *skel,
			    const struct stock_report *r)
{
	int fd = bpf_map__fd(skel->maps.stock_files);
	int i;

	if (r->nr_files <= (int)bpf_map__max_entries(skel->maps.stock_files) / 2)
		return;
	for (i = 0; i < r->nr_files; i++)
		if (r->files[i].stats.released_ns)
			bpf_map_delete_elem(fd, &r->files[i].ino);
}

/* A report each interval, and a last one when interrupted. */
int stock_run(const struct env *env, const struct kernel_offer *offer,
	      volatile sig_atomic_t *exiting)
{
	int nr_cpus = 1, err = 0;	/* the map is shared by all CPUs */
	struct stock_report r = {};
	struct gmemstock_bpf *skel = NULL;
	bool written, ending;
	long done = 0;
	sigset_t saved;

	err = load_stock(env, offer, &skel);
	if (err)
		return err;
	for (;;) {
		sleep_interval(env->delay, exiting);
		ending = *exiting;
		if (take_stock(skel, nr_cpus, &r)) {
			err = EXIT_FAILURE;
			break;
		}
		hold_signals(&saved);
		written = stock_print(stdout, &r, env->format);
		release_signals(&saved);
		forget_released(skel, &r);
		/* Without a reader (EPIPE) the trace ends quietly. */
		if (!written || ending ||
		    (env->count > 0 && ++done == env->count))
			break;
	}
	free(r.files);
	gmemstock_bpf__destroy(skel);
	return err;
}
