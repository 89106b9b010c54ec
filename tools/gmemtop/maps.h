/* SPDX-License-Identifier: GPL-2.0 */
/* Sizing gmemtop's BPF maps, and the kernel memory they take. */
#ifndef GMEMTOP_MAPS_H
#define GMEMTOP_MAPS_H

#include <stdbool.h>

struct bpf_object;
struct gmemtop_bpf;

#define DEFAULT_MAX_FILES	256	/* --max-files */
#define MAX_MAX_FILES		65536
/* --hotspot-window: seconds without an EAGAIN before a hotspot goes. */
#define DEFAULT_HOTSPOT_WINDOW	60.0
#define MAX_HOTSPOT_WINDOW	(7 * 24 * 3600.0)

/* Sets every map's max_entries from @max_files, before load. */
int gmemtop_size_maps(struct gmemtop_bpf *skel, unsigned int max_files,
		      bool snoop);

/* Bytes of map data @obj's maps take on a machine with @nr_cpus CPUs. */
unsigned long long bpf_object_memory(const struct bpf_object *obj,
				     int nr_cpus);

#endif
