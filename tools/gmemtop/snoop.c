// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop --snoop: one record per finished KVM_SET_MEMORY_ATTRIBUTES2, in
 * the manner of biosnoop, from the ring buffer that the BPF half fills
 * only in this mode.  Records it had no room for are counted and shown.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmemtop.h"
#include "gmemtop.skel.h"

static long nr_events;

static void print_event_json(const struct gmem_event *e)
{
	char comm[GMEM_COMM_LEN + 1] = "";
	unsigned int p;

	memcpy(comm, e->comm, GMEM_COMM_LEN);
	printf("{\"ts_ns\":%llu,\"pid\":%u,\"tid\":%u,\"comm\":",
	       (unsigned long long)e->ts_ns, e->pid, e->tid);
	print_json_string(stdout, comm);
	printf(",\"vm\":%u,\"ino\":%llu,\"offset\":%llu,\"size\":%llu,"
	       "\"attributes\":%llu,\"mode\":%llu,\"ret\":%d,"
	       "\"error_offset\":%llu,\"changed\":%llu,\"lat_ns\":%llu,"
	       "\"phases_ns\":{", e->vm, (unsigned long long)e->ino,
	       (unsigned long long)e->offset, (unsigned long long)e->size,
	       (unsigned long long)e->attrs, (unsigned long long)e->mode,
	       e->ret, (unsigned long long)e->error_offset,
	       (unsigned long long)e->nr_changed,
	       (unsigned long long)e->lat_ns);
	for (p = 0; p < GMEM_NR_PHASES; p++)
		printf("%s\"%s\":%llu", p ? "," : "", phase_name(p),
		       (unsigned long long)e->phase_ns[p]);
	printf("}}\n");
}

/* 0x-prefixed even for zero, unlike %#llx. */
static const char *hex(char *buf, size_t len, unsigned long long v)
{
	snprintf(buf, len, "0x%llx", v);
	return buf;
}

static void print_event_line(const struct gmem_event *e)
{
	static const char *const modes[] = { "-", "zero", "preserve" };
	char stamp[16], offset[24], error_offset[24];
	time_t now = time(NULL);

	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
	printf("%-8s %-14.14s %7u %4u %8llu %12s %10llu %-8s %-8s %4d %12s %9.1f\n",
	       stamp, e->comm, e->pid, e->vm, (unsigned long long)e->ino,
	       hex(offset, sizeof(offset), e->offset),
	       (unsigned long long)e->size, e->attrs ? "private" : "shared",
	       e->mode < 3 ? modes[e->mode] : "?", e->ret,
	       hex(error_offset, sizeof(error_offset), e->error_offset),
	       e->lat_ns / 1e3);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct gmem_event *e = data;

	if (size < sizeof(*e))
		return 0;
	if (env.format == FORMAT_JSON)
		print_event_json(e);
	else
		print_event_line(e);
	nr_events++;
	/* A negative value stops ring_buffer__poll(): the count is reached. */
	return env.count >= 0 && nr_events >= env.count ? -1 : 0;
}

int snoop_run(struct gmemtop_bpf *skel, struct report_state *state,
	      volatile sig_atomic_t *exiting)
{
	double start = now_s(), last = start, now;
	struct ring_buffer *rb;
	int err = 0;

	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle_event,
			      NULL, NULL);
	if (!rb) {
		fprintf(stderr, "gmemtop: cannot open the ring buffer\n");
		return EXIT_FAILURE;
	}
	if (env.format != FORMAT_JSON)
		printf("%-8s %-14s %7s %4s %8s %12s %10s %-8s %-8s %4s %12s %9s\n",
		       "TIME", "COMM", "PID", "VM", "INO", "OFFSET", "SIZE", "TO",
		       "MODE", "RET", "ERROR_OFF", "LAT_us");
	while (!*exiting) {
		err = ring_buffer__poll(rb, 100);
		if (err == -EINTR)
			continue;
		if (err < 0)
			break;
		/* /metrics and --textfile go on as in the other modes. */
		now = now_s();
		if (state && now - last >= env.delay) {
			report_take(state, now - last, now - start);
			last = now;
		}
	}
	fflush(stdout);
	fprintf(stderr, "gmemtop: %ld conversions, %llu records dropped\n",
		nr_events, (unsigned long long)dropped_records(skel));
	ring_buffer__free(rb);
	return err < 0 && err != -EINTR && !(env.count >= 0 &&
					     nr_events >= env.count) ?
	       EXIT_FAILURE : 0;
}
