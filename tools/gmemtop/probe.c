// SPDX-License-Identifier: GPL-2.0
/*
 * What the kernel offers gmemtop, from its BTF (vmlinux's, or kvm.ko's
 * when KVM is a module), not from tracefs, which is often not mounted: a
 * tp_btf program needs the event's btf_trace_<event> typedef, an fexit
 * program its function.  Each program is loaded only if its event exists
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
 * Functions whose BTF marks what the kernel has: /dev/kvm's ioctl, and
 * the two guest_memfd file operations the fexit fallback attaches to
 * (fallocate since guest_memfd exists, faults since it can be mmap()ed).
 */
#define KVM_FUNC		"kvm_dev_ioctl"
#define GMEM_FUNC		"kvm_gmem_fallocate"
#define GMEM_MMAP_FUNC		"kvm_gmem_fault_user_mapping"

static bool has_func(const struct btf *btf, const char *name)
{
	return btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) >= 0;
}

void read_kernel_offer(const struct btf *btf, struct kernel_offer *offer)
{
	offer->kvm = has_func(btf, KVM_FUNC);
	offer->gmem = has_func(btf, GMEM_FUNC);
	offer->gmem_mmap = has_func(btf, GMEM_MMAP_FUNC);
	offer->events = tp_btf_event_usable(btf, REQUIRED_EVENT);
}

static int load_file_btf(struct kernel_btf *k, const char *path)
{
	k->btf = btf__parse(path, NULL);
	return k->btf ? 0 : -errno;
}

/*
 * KVM's types are kvm.ko's when it is a module, in BTF split on top of
 * vmlinux's; without the module (built in, or not loaded) vmlinux's
 * tell.  btf__load_module_btf() reads /sys/kernel/btf/kvm: no privilege.
 */
static int load_running_btf(struct kernel_btf *k)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();

	if (!vmlinux)
		return -errno;
	k->btf = btf__load_module_btf("kvm", vmlinux);
	if (k->btf)
		k->base = vmlinux;
	else
		k->btf = vmlinux;
	return 0;
}

int kernel_btf_load(struct kernel_btf *k, const char *path)
{
	k->btf = k->base = NULL;
	return path ? load_file_btf(k, path) : load_running_btf(k);
}

void kernel_btf_free(struct kernel_btf *k)
{
	btf__free(k->btf);	/* a split BTF before its base */
	btf__free(k->base);
	k->btf = k->base = NULL;
}

void select_programs(struct gmemtop_bpf *skel, const struct btf *btf)
{
	struct bpf_program *prog;
	const char *event;

	bpf_object__for_each_program(prog, skel->obj) {
		event = strchr(bpf_program__section_name(prog), '/');
		if (!event || tp_btf_event_usable(btf, ++event))
			continue;
		bpf_program__set_autoload(prog, false);
		fprintf(stderr, "gmemtop: this kernel has no usable %s event: its figures stay empty\n",
			event);
	}
}
