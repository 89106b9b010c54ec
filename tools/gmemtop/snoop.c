// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop --snoop (gmemsnoop): one record per finished
 * KVM_SET_MEMORY_ATTRIBUTES2, in the manner of biosnoop, from the ring
 * buffer that the BPF half fills only in this mode.  Records it had no
 * room for are counted and reported as they happen.
 *
 * Times are the events' own: ts_ns is bpf_ktime_get_ns() when the ioctl
 * ended, CLOCK_MONOTONIC; the wall-clock time shown is derived from it.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "gmemtop.h"
#include "gmemtop.skel.h"
#include "json.h"

struct snoop {
	const struct env *env;
	long nr_events;
	double boot_wall;	/* the wall clock when CLOCK_MONOTONIC was 0 */
	__u64 dropped;		/* reported so far */
	pid_t vmm_pid;		/* the last VMM named, and its VM's names */
	struct vm_ident vmm_ident;
};

static double event_wall_s(const struct snoop *s, const struct gmem_event *e)
{
	return s->boot_wall + e->ts_ns / 1e9;
}

/* The VMM's VM names: read again only when the pid changes. */
static void name_vmm(struct snoop *s, const struct gmem_event *e)
{
	if (s->vmm_pid == (pid_t)e->pid)
		return;
	s->vmm_pid = e->pid;
	ident_read(e->pid, &s->vmm_ident);
}

static void print_event_json(struct snoop *s, const struct gmem_event *e)
{
	struct json j;

	name_vmm(s, e);
	json_begin(&j, stdout, event_wall_s(s, e));
	json_uint(&j, "ts_ns", e->ts_ns);
	json_uint(&j, "pid", e->pid);
	json_string(&j, "comm", e->vmm_comm, GMEM_COMM_LEN);
	json_uint(&j, "tid", e->tid);
	json_string(&j, "thread", e->comm, GMEM_COMM_LEN);
	json_uint(&j, "vm", e->vm);
	json_string(&j, "vm_name", s->vmm_ident.name,
		    sizeof(s->vmm_ident.name));
	json_string(&j, "vm_uuid", s->vmm_ident.uuid,
		    sizeof(s->vmm_ident.uuid));
	json_string(&j, "cgroup", s->vmm_ident.cgroup,
		    sizeof(s->vmm_ident.cgroup));
	json_uint(&j, "ino", e->ino);
	json_uint(&j, "offset", e->offset);
	json_uint(&j, "size", e->size);
	json_uint(&j, "attributes", e->attrs);
	json_uint(&j, "mode", e->mode);
	json_int(&j, "ret", e->ret);
	json_uint(&j, "error_offset", e->error_offset);
	json_uint(&j, "changed", e->nr_changed);
	json_uint(&j, "lat_ns", e->lat_ns);
	print_json_phases(&j, e->phase_ns);
	json_end(&j);
}

/* 0x-prefixed even for zero, unlike %#llx. */
static const char *hex(char *buf, size_t len, unsigned long long v)
{
	snprintf(buf, len, "0x%llx", v);
	return buf;
}

/* HH:MM:SS.uuuuuu, local time. */
static const char *clock_time(char *buf, size_t len, double wall)
{
	time_t secs = wall;
	struct tm tm;
	size_t n;

	n = strftime(buf, len, "%H:%M:%S", localtime_r(&secs, &tm));
	snprintf(buf + n, len - n, ".%06ld", (long)((wall - secs) * 1e6));
	return buf;
}

static void print_header(void)
{
	printf("%-15s %-14s %7s %-16s %10s %8s %12s %10s %-8s %-8s %4s %12s %9s\n",
	       "TIME", "COMM", "PID", "VM_NAME", "VM", "INO", "OFFSET", "SIZE",
	       "TO",
	       "MODE", "RET", "ERROR_OFF", "LAT_us");
}

static void print_event_line(struct snoop *s, const struct gmem_event *e)
{
	static const char *const modes[] = { "-", "zero", "preserve" };
	char stamp[24], offset[24], error_offset[24], comm[GMEM_COMM_LEN];
	char name[17];

	name_vmm(s, e);
	printf("%-15s %-14.14s %7u %-16s %10u %8llu %12s %10llu %-8s %-8s %4d %12s %9.1f\n",
	       clock_time(stamp, sizeof(stamp), event_wall_s(s, e)),
	       printable(comm, e->vmm_comm), e->pid,
	       printable_vm_name(name, sizeof(name), &s->vmm_ident), e->vm,
	       (unsigned long long)e->ino,
	       hex(offset, sizeof(offset), e->offset),
	       (unsigned long long)e->size, attributes_name(e->attrs),
	       e->mode < 3 ? modes[e->mode] : "?", e->ret,
	       hex(error_offset, sizeof(error_offset), e->error_offset),
	       e->lat_ns / 1e3);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct gmem_event *e = data;
	struct snoop *s = ctx;

	if (size < sizeof(*e))
		return 0;
	if (s->env->format == FORMAT_JSON)
		print_event_json(s, e);
	else
		print_event_line(s, e);
	s->nr_events++;
	/* A negative value stops ring_buffer__poll(): the count is reached. */
	return s->env->count >= 0 && s->nr_events >= s->env->count ? -1 : 0;
}

/* Like biosnoop's lost-events callback: say so when it happens. */
static void report_drops(struct snoop *s, struct gmemtop_bpf *skel)
{
	__u64 dropped = dropped_records(skel);

	if (dropped == s->dropped)
		return;
	fprintf(stderr, "gmemtop: %llu records dropped (ring buffer full)\n",
		(unsigned long long)(dropped - s->dropped));
	s->dropped = dropped;
}

int snoop_run(struct gmemtop_bpf *skel, struct report_state *state,
	      const struct env *env, volatile sig_atomic_t *exiting)
{
	struct snoop s = { .env = env, .boot_wall = wall_s() - monotonic_s() };
	double start = monotonic_s(), last = start, now;
	struct ring_buffer *rb;
	sigset_t saved;
	bool written;
	int err = 0;

	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle_event,
			      &s, NULL);
	if (!rb) {
		fprintf(stderr, "gmemtop: cannot open the ring buffer\n");
		return EXIT_FAILURE;
	}
	if (env->format != FORMAT_JSON)
		print_header();
	while (!*exiting && err >= 0) {
		/*
		 * The kernel wakes us only for a batch of records (or a
		 * signal does): take the rest every 100 ms.
		 */
		hold_signals(&saved);
		err = ring_buffer__poll(rb, 100);
		if (err >= 0 || err == -EINTR)
			err = ring_buffer__consume(rb);
		report_drops(&s, skel);
		written = !fflush(stdout) && !ferror(stdout);
		release_signals(&saved);
		/* A reader that has gone ends the trace (EPIPE), quietly. */
		if (!written)
			break;
		/* /metrics and --textfile go on as in the other modes. */
		now = monotonic_s();
		if (state && now - last >= env->delay) {
			report_take(state, now - last, now - start);
			last = now;
		}
	}
	report_drops(&s, skel);
	fprintf(stderr, "gmemtop: %ld conversions, %llu records dropped\n",
		s.nr_events, (unsigned long long)s.dropped);
	ring_buffer__free(rb);
	/* Stopped by the callback: COUNT records printed. */
	return err < 0 && (env->count < 0 || s.nr_events < env->count) ?
	       EXIT_FAILURE : 0;
}
