// SPDX-License-Identifier: GPL-2.0
/*
 * The size of gmemtop's BPF maps: set before load from --max-files, and
 * the kernel memory that follows from the map definitions.
 */
#include <unistd.h>
#include <bpf/libbpf.h>

#include "gmem.h"
#include "gmemtop.skel.h"
#include "maps.h"

/* EAGAIN hotspots kept per guest_memfd, on average. */
#define HOTSPOTS_PER_FILE	16

int gmemtop_size_maps(struct gmemtop_bpf *skel, unsigned int max_files,
		      bool snoop)
{
	long page = sysconf(_SC_PAGESIZE);
	int err;

	err = bpf_map__set_max_entries(skel->maps.files, max_files);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.lat,
					       max_files * GMEM_NR_OUTCOMES);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.refused, max_files);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.hotspots,
					       max_files * HOTSPOTS_PER_FILE);
	/* Without --snoop nothing is sent: the smallest ring buffer. */
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.events,
					       snoop ? GMEM_RINGBUF_BYTES : page);
	return err;
}

static unsigned long long round8(unsigned long long n)
{
	return (n + 7) & ~7ULL;
}

/*
 * What a map's data takes: entries of key and value, one value per CPU
 * for per-CPU maps.  A preallocated hash also keeps one spare element per
 * CPU (kernel/bpf/hashtab.c, extra_elems).  Allocator headers are left
 * out: they are a few percent.
 */
static unsigned long long map_memory(const struct bpf_map *map, int nr_cpus)
{
	unsigned long long key = round8(bpf_map__key_size(map));
	unsigned long long value = round8(bpf_map__value_size(map));
	unsigned long long entries = bpf_map__max_entries(map);

	switch (bpf_map__type(map)) {
	case BPF_MAP_TYPE_RINGBUF:
		return entries;
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return entries * value * nr_cpus;
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return entries * (key + value * nr_cpus);
	case BPF_MAP_TYPE_HASH:
		if (bpf_map__map_flags(map) & BPF_F_NO_PREALLOC)
			return entries * (key + value);
		return (entries + nr_cpus) * (key + value);
	case BPF_MAP_TYPE_TASK_STORAGE:
		/* Per thread that converts, freed with it: see gmemtop(8). */
		return 0;
	default:
		return entries * (key + value);
	}
}

unsigned long long bpf_object_memory(const struct bpf_object *obj,
				     int nr_cpus)
{
	unsigned long long sum = 0;
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj)
		sum += map_memory(map, nr_cpus);
	return sum;
}
