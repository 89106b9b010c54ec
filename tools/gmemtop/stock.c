// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop on a kernel with guest_memfd but without the kvm_gmem trace
 * events: fexit on guest_memfd's own functions still shows host faults
 * and fallocate() per guest_memfd.  Says plainly what it cannot show.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "gmemtop.h"
#include "gmemstock.skel.h"

#define STOCK_NOTICE							\
	"gmemtop: this kernel has guest_memfd but not the kvm_gmem trace events.\n" \
	"  Shown, through fexit on guest_memfd functions: host page faults\n"	\
	"  (mapped or SIGBUS) and fallocate() (punch hole, allocate) per file.\n" \
	"  Not available: conversions, EAGAIN and its causes, latency and its\n" \
	"  phases, KVM invalidations, VM ids.  Boot the instrumented kernel\n"	\
	"  for those ('make kernel', 'tests/vm/run', see README.md).\n"

/* Whether the kernel has the guest_memfd functions the fallback needs. */
bool stock_supported(void)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/kallsyms", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, " kvm_gmem_fault_user_mapping") != NULL;
	fclose(f);
	return found;
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
		sum->faults += s->faults;
		sum->sigbus += s->sigbus;
		sum->punch_holes += s->punch_holes;
		sum->punched_bytes += s->punched_bytes;
		sum->allocations += s->allocations;
		sum->allocated_bytes += s->allocated_bytes;
	}
}

static void print_stock(const struct gmem_stock_stats *s, __u64 ino,
			bool first)
{
	if (env.format == FORMAT_JSON) {
		printf("%s{\"ino\":%llu,\"pid\":%u,\"comm\":\"%.16s\","
		       "\"faults\":%llu,\"sigbus\":%llu,\"punch_holes\":%llu,"
		       "\"punched_bytes\":%llu,\"allocations\":%llu,"
		       "\"allocated_bytes\":%llu}", first ? "" : ",",
		       (unsigned long long)ino, s->pid, s->comm,
		       (unsigned long long)s->faults,
		       (unsigned long long)s->sigbus,
		       (unsigned long long)s->punch_holes,
		       (unsigned long long)s->punched_bytes,
		       (unsigned long long)s->allocations,
		       (unsigned long long)s->allocated_bytes);
		return;
	}
	printf("%7u %-14.14s %8llu %10llu %10llu %10llu %12llu %10llu %12llu\n",
	       s->pid, s->comm, (unsigned long long)ino,
	       (unsigned long long)s->faults, (unsigned long long)s->sigbus,
	       (unsigned long long)s->punch_holes,
	       (unsigned long long)s->punched_bytes,
	       (unsigned long long)s->allocations,
	       (unsigned long long)s->allocated_bytes);
}

static int print_report(struct gmemstock_bpf *skel, int nr_cpus)
{
	struct gmem_stock_stats *cpus, sum;
	int fd = bpf_map__fd(skel->maps.stock_files);
	__u64 key, *prev = NULL;
	bool first = true;

	cpus = calloc(nr_cpus, sizeof(*cpus));
	if (!cpus)
		return -1;
	if (env.format == FORMAT_JSON)
		printf("{\"kvm_gmem_events\":false,\"files\":[");
	else
		printf("%7s %-14s %8s %10s %10s %10s %12s %10s %12s\n", "PID",
		       "COMM", "INO", "FAULTS", "SIGBUS", "PUNCHES",
		       "PUNCHED_B", "ALLOCS", "ALLOCATED_B");
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, cpus))
			continue;
		sum_stock(cpus, nr_cpus, &sum);
		print_stock(&sum, key, first);
		first = false;
	}
	if (env.format == FORMAT_JSON)
		printf("]}\n");
	fflush(stdout);
	free(cpus);
	return 0;
}

int stock_run(volatile sig_atomic_t *exiting)
{
	int nr_cpus = libbpf_num_possible_cpus(), err;
	struct gmemstock_bpf *skel;
	long done = 0;

	fputs(STOCK_NOTICE, stderr);
	skel = gmemstock_bpf__open();
	if (!skel)
		return EXIT_FAILURE;
	skel->rodata->targ_pid = env.pid;
	err = gmemstock_bpf__load(skel);
	if (!err)
		err = gmemstock_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "gmemtop: cannot attach to guest_memfd functions: %s\n",
			strerror(-err));
		gmemstock_bpf__destroy(skel);
		return EXIT_NO_EVENTS;
	}
	while (!*exiting && (env.count < 0 || done < env.count)) {
		usleep(env.delay * 1e6);
		if (print_report(skel, nr_cpus))
			break;
		done++;
	}
	if (*exiting)
		print_report(skel, nr_cpus);
	gmemstock_bpf__destroy(skel);
	return 0;
}
