/* SPDX-License-Identifier: GPL-2.0 */
/* What the kernel offers gmemtop, from its BTF. */
#ifndef GMEMTOP_PROBE_H
#define GMEMTOP_PROBE_H

#include <stdbool.h>

struct btf;
struct gmemtop_bpf;

/* The BTF that holds KVM's types, and the vmlinux BTF under a module's. */
struct kernel_btf {
	struct btf *btf;
	struct btf *base;	/* NULL unless @btf is kvm.ko's, split on it */
};

/* What gmemtop can watch there, each read from the BTF on its own. */
struct kernel_offer {
	bool kvm;		/* KVM, built in or kvm.ko loaded */
	bool gmem;		/* guest_memfd */
	bool gmem_mmap;		/* guest_memfd mapped by host user space */
	bool events;		/* the kvm_gmem event gmemtop's counters need */
};

/*
 * @path's BTF (raw, or an ELF file's .BTF) standing for the kernel's
 * (--btf), or the running kernel's: vmlinux's, with kvm.ko's split on top
 * when KVM is a loaded module.  Returns -errno when there is none.
 */
int kernel_btf_load(struct kernel_btf *k, const char *path);
void kernel_btf_free(struct kernel_btf *k);

void read_kernel_offer(const struct btf *btf, struct kernel_offer *offer);

/* Arguments of tracepoint @event (without __data); -1 if it is missing. */
int tp_btf_nr_args(const struct btf *btf, const char *event);

/* @event exists with at least the arguments gmemtop's program reads. */
bool tp_btf_event_usable(const struct btf *btf, const char *event);

/* Turns off autoload of every program whose event @btf lacks, and says so. */
void select_programs(struct gmemtop_bpf *skel, const struct btf *btf);

#endif
