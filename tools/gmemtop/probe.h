/* SPDX-License-Identifier: GPL-2.0 */
/* What the running kernel offers, from its BTF. */
#ifndef GMEMTOP_PROBE_H
#define GMEMTOP_PROBE_H

#include <stdbool.h>

struct btf;
struct gmemtop_bpf;

/* Arguments of tracepoint @event (without __data); -1 if it is missing. */
int tp_btf_nr_args(const struct btf *btf, const char *event);

/* @event exists with at least the arguments gmemtop's program reads. */
bool tp_btf_event_usable(const struct btf *btf, const char *event);

/* True if the kernel has the kvm_gmem events gmemtop's counters need. */
bool kvm_gmem_events_present(void);

/* Turns off autoload of every program whose event is missing. */
int select_programs(struct gmemtop_bpf *skel);

#endif
