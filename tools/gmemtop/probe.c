// SPDX-License-Identifier: GPL-2.0
/*
 * Which kvm_gmem events the running kernel has, from its BTF (vmlinux's,
 * or kvm.ko's when KVM is a module): a tp_btf program needs the event's
 * btf_trace_<event> typedef, not tracefs, which is often not mounted.  Each program is loaded only if its event exists
 * with at least the arguments it reads.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "gmem.h"
#include "gmemtop.skel.h"
#include "probe.h"

/* The one event without which there is nothing to count. */
#define REQUIRED_EVENT	"kvm_gmem_set_attributes_end"

/* Arguments each program reads (its BPF_PROG parameters). */
static const struct {
	const char *event;
	int nr_args;
} needs[] = {
	{ "kvm_gmem_set_attributes_begin",	3 },
	{ "kvm_gmem_set_attributes_end",	11 },
	{ "kvm_gmem_phase",			5 },
	{ "kvm_gmem_refcount_fail",		11 },
	{ "kvm_gmem_lru_drain",			5 },
	{ "kvm_gmem_invalidate_begin",		8 },
};

int tp_btf_nr_args(const struct btf *btf, const char *event)
{
	const struct btf_type *t;
	char name[128];
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", event);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	/* typedef void (*btf_trace_X)(void *__data, args...); */
	t = btf__type_by_id(btf, btf__type_by_id(btf, id)->type);
	if (!t || !btf_is_ptr(t))
		return -1;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t) || btf_vlen(t) < 1)
		return -1;
	return btf_vlen(t) - 1;
}

static int nr_args_needed(const char *event)
{
	unsigned int i;

	for (i = 0; i < sizeof(needs) / sizeof(needs[0]); i++)
		if (!strcmp(needs[i].event, event))
			return needs[i].nr_args;
	return -1;
}

bool tp_btf_event_usable(const struct btf *btf, const char *event)
{
	int want = nr_args_needed(event);

	return want >= 0 && tp_btf_nr_args(btf, event) >= want;
}

/*
 * The BTF that holds the kvm_gmem events: vmlinux's when KVM is built in,
 * else kvm.ko's, split on top of vmlinux's (*base, freed by the caller).
 */
static struct btf *load_events_btf(struct btf **base)
{
	struct btf *kvm;

	*base = btf__load_vmlinux_btf();
	if (!*base)
		return NULL;
	if (tp_btf_nr_args(*base, REQUIRED_EVENT) >= 0)
		return *base;
	kvm = btf__load_module_btf("kvm", *base);
	return kvm ? kvm : *base;
}

static void free_events_btf(struct btf *btf, struct btf *base)
{
	if (btf != base)
		btf__free(btf);
	btf__free(base);
}

bool kvm_gmem_events_present(void)
{
	struct btf *base, *btf = load_events_btf(&base);
	bool present;

	if (!btf)
		return false;
	present = tp_btf_event_usable(btf, REQUIRED_EVENT);
	free_events_btf(btf, base);
	return present;
}

int select_programs(struct gmemtop_bpf *skel)
{
	struct btf *base, *btf = load_events_btf(&base);
	struct bpf_program *prog;
	const char *event;

	if (!btf)
		return -errno;
	bpf_object__for_each_program(prog, skel->obj) {
		event = strchr(bpf_program__section_name(prog), '/');
		if (!event || tp_btf_event_usable(btf, ++event))
			continue;
		bpf_program__set_autoload(prog, false);
		fprintf(stderr, "gmemtop: this kernel has no usable %s event: its figures stay empty\n",
			event);
	}
	free_events_btf(btf, base);
	return 0;
}
