// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-driven conversions on several vCPUs at once: each vCPU asks for its
 * own pages to become private or shared with KVM_HC_MAP_GPA_RANGE, and the
 * host converts them in place with KVM_SET_MEMORY_ATTRIBUTES2 on one shared
 * guest_memfd, bound in one or several memslots.  Data must follow every
 * step; the host must never read a private page.  Needs in-place
 * conversion switched on.
 *
 *   gmem_guest_conversion_test [-n VCPUS] [-m MEMSLOTS] [-i ITERATIONS]
 */
#include <pthread.h>

#include "gmem.h"

#define PAGES_PER_VCPU	8
#define PAGE		4096ULL

enum check { HOST_SEES, HOST_WRITES, HOST_LOCKED_OUT };

static int nr_iterations = 20;

static uint64_t vcpu_gpa(int idx, int page)
{
	return GMEM_DATA_GPA + (idx * PAGES_PER_VCPU + page) * PAGE;
}

static void guest_fill(uint64_t gpa, uint64_t len, uint8_t v)
{
	memset((void *)gpa, v, len);
}

static void guest_expect(uint64_t gpa, uint64_t len, uint8_t v)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		GUEST_ASSERT_EQ(((uint8_t *)gpa)[i], v);
}

static void guest_map(uint64_t gpa, uint64_t len, bool private)
{
	uint64_t flags = KVM_MAP_GPA_RANGE_PAGE_SZ_4K |
			 (private ? KVM_MAP_GPA_RANGE_ENCRYPTED :
				    KVM_MAP_GPA_RANGE_DECRYPTED);

	GUEST_ASSERT_EQ(__kvm_hypercall_map_gpa_range(gpa, len, flags), 0);
}

/*
 * For a chunk of 1..PAGES_PER_VCPU pages: shared data written by the guest
 * and by the host, converted to private and back, both times preserved.
 */
static void guest_code(int idx)
{
	int it, first, n;

	for (it = 0; it < nr_iterations; it++) {
		first = it % PAGES_PER_VCPU;
		n = 1 + it % (PAGES_PER_VCPU - first);
		uint64_t gpa = vcpu_gpa(idx, first), len = n * PAGE;
		uint8_t v = idx * 16 + it;

		guest_fill(gpa, len, v);
		GUEST_SYNC4(HOST_SEES, gpa, len, v);
		GUEST_SYNC4(HOST_WRITES, gpa, len, v + 1);
		guest_expect(gpa, len, v + 1);

		guest_map(gpa, len, true);
		guest_expect(gpa, len, v + 1);
		guest_fill(gpa, len, v + 2);
		GUEST_SYNC4(HOST_LOCKED_OUT, gpa, len, 0);

		guest_map(gpa, len, false);
		GUEST_SYNC4(HOST_SEES, gpa, len, v + 2);
	}
	GUEST_DONE();
}

struct vcpu_thread {
	pthread_t thread;
	struct kvm_vcpu *vcpu;
	struct gmem_vm *g;
	int eagain;
};

static void host_check(struct gmem_vm *g, struct ucall *uc)
{
	uint8_t *p = g->mem + (uc->args[1] - GMEM_DATA_GPA);
	uint64_t i, len = uc->args[2];
	uint8_t v = uc->args[3], got;

	for (i = 0; i < len; i++) {
		switch (uc->args[0]) {
		case HOST_SEES:
			TEST_ASSERT(gmem_host_read(p + i, &got) && got == v,
				    "gpa %#lx: host sees %#x, want %#x",
				    uc->args[1] + i, got, v);
			break;
		case HOST_WRITES:
			TEST_ASSERT(gmem_host_write(p + i, v), "host write");
			break;
		case HOST_LOCKED_OUT:
			TEST_ASSERT(!gmem_host_read(p + i, &got),
				    "gpa %#lx: host reads private memory",
				    uc->args[1] + i);
			break;
		}
	}
}

/* Convert as the guest asked, retrying while pages are transiently busy. */
static void host_map_gpa_range(struct vcpu_thread *t, struct kvm_run *run)
{
	uint64_t offset = run->hypercall.args[0] - GMEM_DATA_GPA;
	uint64_t size = run->hypercall.args[1] * PAGE;
	bool private = run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED;
	int r;

	TEST_ASSERT_EQ(run->hypercall.nr, KVM_HC_MAP_GPA_RANGE);
	while ((r = gmem_set_attrs(t->g->fd, offset, size,
				   private ? PRIVATE : SHARED, MODE_KEEP,
				   NULL)) == -EAGAIN)
		t->eagain++;
	TEST_ASSERT(!r, "convert: %s", strerror(-r));
	run->hypercall.ret = 0;
}

static void *run_vcpu(void *arg)
{
	struct vcpu_thread *t = arg;
	struct ucall uc;

	for (;;) {
		vcpu_run(t->vcpu);
		if (t->vcpu->run->exit_reason == KVM_EXIT_HYPERCALL) {
			host_map_gpa_range(t, t->vcpu->run);
			continue;
		}
		TEST_ASSERT_KVM_EXIT_REASON(t->vcpu, KVM_EXIT_IO);
		switch (get_ucall(t->vcpu, &uc)) {
		case UCALL_SYNC:
			host_check(t->g, &uc);
			break;
		case UCALL_DONE:
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			TEST_FAIL("unexpected ucall %lu", uc.cmd);
		}
	}
}

int main(int argc, char *argv[])
{
	struct vcpu_thread threads[KVM_MAX_VCPUS];
	int nr_vcpus = 4, nr_slots = 1, opt, i;
	struct gmem_vm g;

	while ((opt = getopt(argc, argv, "n:m:i:")) != -1) {
		switch (opt) {
		case 'n':
			nr_vcpus = atoi_positive("vCPUs", optarg);
			break;
		case 'm':
			nr_slots = atoi_positive("memslots", optarg);
			break;
		case 'i':
			nr_iterations = atoi_positive("iterations", optarg);
			break;
		default:
			exit(KSFT_FAIL);
		}
	}
	TEST_REQUIRE(!gmem_vm_attributes_mode());
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_EXIT_HYPERCALL) &
		     BIT(KVM_HC_MAP_GPA_RANGE));

	gmem_vm_create_slots(&g, KVM_X86_SW_PROTECTED_VM, nr_vcpus, guest_code,
			     nr_vcpus * PAGES_PER_VCPU * PAGE,
			     GUEST_MEMFD_FLAG_INIT_SHARED, nr_slots);
	vm_enable_cap(g.vm, KVM_CAP_EXIT_HYPERCALL, BIT(KVM_HC_MAP_GPA_RANGE));
	sync_global_to_guest(g.vm, nr_iterations);

	for (i = 0; i < nr_vcpus; i++) {
		threads[i] = (struct vcpu_thread){ .vcpu = g.vcpus[i], .g = &g };
		vcpu_args_set(g.vcpus[i], 1, i);
		pthread_create(&threads[i].thread, NULL, run_vcpu, &threads[i]);
	}
	for (i = 0; i < nr_vcpus; i++) {
		pthread_join(threads[i].thread, NULL);
		printf("vCPU %d: %d iterations, %d EAGAIN retries\n", i,
		       nr_iterations, threads[i].eagain);
	}

	gmem_vm_free(&g);
	return 0;
}
