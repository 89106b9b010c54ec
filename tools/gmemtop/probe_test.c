// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the BTF probe that decides which kvm_gmem programs load:
 * against the built kernel's vmlinux (argument counts as declared in
 * include/trace/events/kvm_gmem.h, and the functions that tell KVM and
 * guest_memfd apart, which gmemtop-errors.test's stand-ins mimic) and
 * against small hand-made BTF.
 *   probe_test VMLINUX
 */
#include <stdlib.h>
#include <bpf/btf.h>

#include "probe.h"
#include "kselftest_harness.h"

static const char *vmlinux_path;

/* typedef void (*btf_trace_NAME)(void *, int x nr_args); */
static struct btf *btf_with_event(const char *name, int nr_args)
{
	struct btf *btf = btf__new_empty();
	int vptr, i, proto, ptr, intid;

	intid = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	vptr = btf__add_ptr(btf, 0);
	proto = btf__add_func_proto(btf, 0);
	btf__add_func_param(btf, "__data", vptr);
	for (i = 0; i < nr_args; i++)
		btf__add_func_param(btf, "x", intid);
	ptr = btf__add_ptr(btf, proto);
	btf__add_typedef(btf, name, ptr);
	return btf;
}

TEST(instrumented_vmlinux_has_every_event_with_its_arguments)
{
	static const struct { const char *event; int nr_args; } events[] = {
		{ "kvm_gmem_set_attributes_begin", 7 },
		{ "kvm_gmem_set_attributes_end", 11 },
		{ "kvm_gmem_phase", 5 },
		{ "kvm_gmem_refcount_fail", 11 },
		{ "kvm_gmem_lru_drain", 5 },
		{ "kvm_gmem_invalidate_begin", 8 },
	};
	struct btf *btf = btf__parse(vmlinux_path, NULL);
	unsigned int i;

	ASSERT_NE(NULL, btf);
	for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		TH_LOG("%s", events[i].event);
		EXPECT_EQ(events[i].nr_args,
			  tp_btf_nr_args(btf, events[i].event));
	}
	btf__free(btf);
}

/* The functions gmemtop takes for KVM and guest_memfd are the kernel's. */
TEST(instrumented_vmlinux_offers_everything)
{
	struct btf *btf = btf__parse(vmlinux_path, NULL);
	struct kernel_offer offer;

	ASSERT_NE(NULL, btf);
	read_kernel_offer(btf, &offer);
	EXPECT_TRUE(offer.kvm);
	EXPECT_TRUE(offer.gmem);
	EXPECT_TRUE(offer.gmem_mmap);
	EXPECT_TRUE(offer.events);
	btf__free(btf);
}

TEST(missing_event_has_no_arguments)
{
	struct btf *btf = btf__parse(vmlinux_path, NULL);

	ASSERT_NE(NULL, btf);
	EXPECT_EQ(-1, tp_btf_nr_args(btf, "kvm_gmem_no_such_event"));
	btf__free(btf);
}

TEST(argument_count_comes_from_the_typedef)
{
	struct btf *btf = btf_with_event("btf_trace_kvm_gmem_phase", 3);

	EXPECT_EQ(3, tp_btf_nr_args(btf, "kvm_gmem_phase"));
	EXPECT_EQ(-1, tp_btf_nr_args(btf, "kvm_gmem_lru_drain"));
	btf__free(btf);
}

/* An event with fewer arguments than the program reads is not usable. */
TEST(event_with_too_few_arguments_is_not_usable)
{
	struct btf *old = btf_with_event("btf_trace_kvm_gmem_set_attributes_end",
					 10);
	struct btf *now = btf_with_event("btf_trace_kvm_gmem_set_attributes_end",
					 11);

	EXPECT_FALSE(tp_btf_event_usable(old, "kvm_gmem_set_attributes_end"));
	EXPECT_TRUE(tp_btf_event_usable(now, "kvm_gmem_set_attributes_end"));
	EXPECT_FALSE(tp_btf_event_usable(now, "kvm_gmem_unknown_to_gmemtop"));
	btf__free(old);
	btf__free(now);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: probe_test VMLINUX\n");
		return 2;
	}
	vmlinux_path = argv[1];
	return test_harness_run(1, argv);
}
