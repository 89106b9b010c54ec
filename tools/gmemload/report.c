// SPDX-License-Identifier: GPL-2.0
/*
 * What gmemload reports: the kernel's counts from fdinfo, compared with its
 * own, as one JSON object on stdout and a summary on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gmemload.h"

static const char *const fdinfo_names[NR_FDINFO_KEYS] = {
	[FI_SIZE]		= "gmem_size",
	[FI_FLAGS]		= "gmem_flags",
	[FI_VM_PID]		= "gmem_vm_pid",
	[FI_VM_ID]		= "gmem_vm_id",
	[FI_RANGES]		= "gmem_ranges",
	[FI_SHARED_PAGES]	= "gmem_shared_pages",
	[FI_PRIVATE_PAGES]	= "gmem_private_pages",
	[FI_CONV_PRIVATE]	= "gmem_conversions_to_private",
	[FI_CONV_SHARED]	= "gmem_conversions_to_shared",
	[FI_PAGES_PRIVATE]	= "gmem_pages_to_private",
	[FI_PAGES_SHARED]	= "gmem_pages_to_shared",
	[FI_EAGAIN]		= "gmem_eagain",
};

static char mismatches[MAX_MISMATCHES][160];
static unsigned int nr_mismatches;

/* ---- the kernel's view: fdinfo, and the self-check ---- */

static void __attribute__((format(printf, 1, 2))) mismatch(const char *fmt, ...)
{
	va_list ap;

	if (nr_mismatches == MAX_MISMATCHES)
		return;
	va_start(ap, fmt);
	vsnprintf(mismatches[nr_mismatches++], sizeof(mismatches[0]), fmt, ap);
	va_end(ap);
}

static void parse_fdinfo_line(struct fdinfo *fi, const char *key,
			      const char *value)
{
	struct layout_range *r = &fi->range[fi->nr_listed];
	char state[16];
	int k;

	if (!strcmp(key, "gmem_range")) {
		if (fi->nr_listed < MAX_LISTED_RANGES &&
		    sscanf(value, "%lx-%lx %15s", &r->start, &r->end,
			   state) == 3) {
			r->private = !strcmp(state, "private");
			fi->nr_listed++;
		}
		return;
	}
	for (k = 0; k < NR_FDINFO_KEYS; k++) {
		if (!strcmp(key, fdinfo_names[k])) {
			fi->val[k] = strtoull(value, NULL, 0);
			fi->seen[k] = true;
		}
	}
}

void read_fdinfo(struct vm_ctx *v)
{
	char path[64], *line = NULL, *colon, *value;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", v->fd);
	f = fopen(path, "r");
	if (!f)
		die("%s: %s", path, strerror(errno));
	while (getline(&line, &len, f) > 0) {
		colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		value = colon + 1 + strspn(colon + 1, " \t");
		parse_fdinfo_line(&v->fi, line, value);
	}
	free(line);
	fclose(f);
}

/* What fdinfo key @k must say after this run; false if anything goes. */
static bool fdinfo_expected(struct vm_ctx *v, enum fdinfo_key k,
			    uint64_t *want)
{
	switch (k) {
	case FI_SIZE:		*want = opt.size; break;
	case FI_FLAGS:		*want = GMEM_FLAGS; break;
	case FI_VM_PID:		*want = getpid(); break;
	case FI_RANGES:		*want = model_nr_ranges(v); break;
	case FI_SHARED_PAGES:	*want = v->npages - v->nr_private; break;
	case FI_PRIVATE_PAGES:	*want = v->nr_private; break;
	case FI_CONV_PRIVATE:	*want = v->n.conversions[1]; break;
	case FI_CONV_SHARED:	*want = v->n.conversions[0]; break;
	case FI_PAGES_PRIVATE:	*want = v->n.pages[1]; break;
	case FI_PAGES_SHARED:	*want = v->n.pages[0]; break;
	case FI_EAGAIN:		*want = v->n.eagain; break;
	default:		return false;
	}
	return true;
}

struct layout_check {
	struct vm_ctx *v;
	bool ok;
};

static void check_listed_range(unsigned int idx, struct layout_range *r,
			       void *arg)
{
	struct layout_check *c = arg;
	struct layout_range *k = &c->v->fi.range[idx];

	if (!c->ok || idx >= c->v->fi.nr_listed)
		return;
	if (k->start != r->start || k->end != r->end ||
	    k->private != r->private) {
		mismatch("vm%d layout: kernel %#lx-%#lx %s, gmemload %#lx-%#lx %s",
			 c->v->idx, k->start, k->end,
			 k->private ? "private" : "shared", r->start, r->end,
			 r->private ? "private" : "shared");
		c->ok = false;
	}
}

/* Compares fdinfo with the model and the counts; true if all agree. */
bool self_check(struct vm_ctx *v)
{
	struct layout_check c = { v, true };
	unsigned int before = nr_mismatches;
	uint64_t want;
	int k;

	for (k = 0; k < NR_FDINFO_KEYS; k++) {
		if (!v->fi.seen[k]) {
			mismatch("vm%d: fdinfo has no %s", v->idx,
				 fdinfo_names[k]);
			continue;
		}
		if (fdinfo_expected(v, k, &want) && v->fi.val[k] != want)
			mismatch("vm%d %s: kernel %lu, gmemload %lu", v->idx,
				 fdinfo_names[k], v->fi.val[k], want);
	}
	model_for_each_range(v, check_listed_range, &c);
	return nr_mismatches == before;
}

/* ---- the report ---- */

static void json_counts(const struct counts *n, const char *indent)
{
	fprintf(report,
		"%s\"conversions_to_private\": %lu,\n"
		"%s\"conversions_to_shared\": %lu,\n"
		"%s\"pages_to_private\": %lu,\n"
		"%s\"pages_to_shared\": %lu,\n"
		"%s\"eagain\": %lu,\n"
		"%s\"ioctls\": %lu,\n"
		"%s\"guest_driven\": %lu,\n"
		"%s\"noop\": %lu,\n"
		"%s\"holds\": %lu,\n"
		"%s\"refused\": %lu",
		indent, n->conversions[1], indent, n->conversions[0],
		indent, n->pages[1], indent, n->pages[0], indent, n->eagain,
		indent, n->ioctls, indent, n->guest_driven, indent, n->noop,
		indent, n->holds, indent, n->refused);
}

static void json_eagain_offsets(struct vm_ctx *v)
{
	const char *sep = "";
	uint64_t i;

	fprintf(report, "      \"eagain_offsets\": {");
	for (i = 0; i < v->npages; i++) {
		if (!v->eagain_at[i])
			continue;
		fprintf(report, "%s\"0x%lx\": %u", sep, i * PAGE_BYTES,
			v->eagain_at[i]);
		sep = ", ";
	}
	fprintf(report, "},\n");
}

static void json_fdinfo(struct vm_ctx *v)
{
	const char *sep = "";
	int k;

	fprintf(report, "      \"fdinfo\": {");
	for (k = 0; k < NR_FDINFO_KEYS; k++) {
		if (!v->fi.seen[k])
			continue;
		fprintf(report, "%s\n        \"%s\": %lu", sep, fdinfo_names[k],
			v->fi.val[k]);
		sep = ",";
	}
	fprintf(report, "\n      },\n");
}

static void json_vm(struct vm_ctx *v, bool last)
{
	fprintf(report,
		"    {\n"
		"      \"vm\": %d,\n"
		"      \"vm_pid\": %d,\n"
		"      \"vm_id\": %lu,\n"
		"      \"fd\": %d,\n"
		"      \"ino\": %lu,\n"
		"      \"size\": %lu,\n",
		v->idx, getpid(), v->fi.val[FI_VM_ID], v->fd,
		(unsigned long)v->ino, opt.size);
	json_counts(&v->n, "      ");
	fprintf(report, ",\n"
		"      \"shared_pages\": %lu,\n"
		"      \"private_pages\": %lu,\n",
		v->npages - v->nr_private, v->nr_private);
	json_eagain_offsets(v);
	json_fdinfo(v);
	fprintf(report, "      \"self_check\": %s\n    }%s\n",
		v->checked_ok ? "true" : "false", last ? "" : ",");
}

/* Every hold, with the process that held the page: who blocked what. */
static void json_held_pages(void)
{
	const struct hold_record *h;
	unsigned int i, nr;

	h = hold_records(&nr);
	fprintf(report, "  \"held_pages\": [");
	for (i = 0; i < nr; i++)
		fprintf(report, "%s\n    {\"vm\": %d, \"offset\": %lu, "
			"\"kind\": \"%s\", \"pid\": %d, "
			"\"comm\": \"hold-%s\", \"eagain\": %lu}",
			i ? "," : "", h[i].vm, h[i].offset,
			hold_kind_names[h[i].kind], h[i].pid,
			hold_kind_names[h[i].kind], h[i].eagain);
	fprintf(report, "%s],\n", nr ? "\n  " : "");
}

static void json_string_list(const char *name, char (*list)[160],
			     unsigned int nr)
{
	unsigned int i;

	fprintf(report, "  \"%s\": [", name);
	for (i = 0; i < nr; i++)
		fprintf(report, "%s\n    \"%s\"", i ? "," : "", list[i]);
	fprintf(report, "%s]", nr ? "\n  " : "");
}

void add_counts(struct counts *sum, const struct counts *n)
{
	int d;

	for (d = 0; d < 2; d++) {
		sum->conversions[d] += n->conversions[d];
		sum->pages[d] += n->pages[d];
	}
	sum->eagain += n->eagain;
	sum->ioctls += n->ioctls;
	sum->guest_driven += n->guest_driven;
	sum->noop += n->noop;
	sum->holds += n->holds;
	sum->refused += n->refused;
}

void print_json(struct run *r, const struct counts *total, bool ok,
		       double elapsed, double loop_cpu)
{
	unsigned int i;

	fprintf(report,
		"{\n"
		"  \"tool\": \"gmemload\",\n"
		"  \"seed\": %lu,\n"
		"  \"pattern\": \"%s\",\n"
		"  \"nr_vms\": %u,\n"
		"  \"size\": %lu,\n"
		"  \"rate\": %g,\n"
		"  \"count\": %lu,\n"
		"  \"duration\": %g,\n"
		"  \"guest_share_pct\": %u,\n"
		"  \"hold_pct\": %u,\n"
		"  \"hold_ms\": %u,\n"
		"  \"elapsed_s\": %.6f,\n"
		"  \"loop_cpu_s\": %.6f,\n"
		"  \"stopped_by\": \"%s\",\n"
		"  \"vms\": [\n",
		opt.seed, pattern_names[opt.pattern], opt.nr_vms, opt.size,
		opt.rate, opt.count, opt.duration, opt.guest_pct, opt.hold_pct,
		opt.hold_ms, elapsed, loop_cpu, r->stopped_by);
	for (i = 0; i < opt.nr_vms; i++)
		json_vm(&vms[i], i == opt.nr_vms - 1);
	fprintf(report, "  ],\n  \"totals\": {\n");
	fprintf(report, "    \"conversions\": %lu,\n",
		total->conversions[0] + total->conversions[1]);
	json_counts(total, "    ");
	fprintf(report, "\n  },\n");
	json_held_pages();
	fprintf(report, "  \"self_check\": %s,\n", ok ? "true" : "false");
	json_string_list("mismatches", mismatches, nr_mismatches);
	fprintf(report, "\n}\n");
	fflush(report);
}

void print_summary(const struct counts *total, double elapsed)
{
	uint64_t conv = total->conversions[0] + total->conversions[1];
	unsigned int i;

	fprintf(stderr,
		"gmemload: %u VM(s) of %lu KiB, pattern %s, seed %lu: %lu conversions in %.2f s (%.0f/s)\n",
		opt.nr_vms, opt.size >> 10, pattern_names[opt.pattern],
		opt.seed, conv, elapsed, elapsed > 0 ? conv / elapsed : 0);
	for (i = 0; i < opt.nr_vms; i++) {
		struct vm_ctx *v = &vms[i];

		fprintf(stderr,
			"  vm%u ino %lu: %lu to private (%lu pages), %lu to shared (%lu pages),\n",
			i, (unsigned long)v->ino, v->n.conversions[1],
			v->n.pages[1], v->n.conversions[0], v->n.pages[0]);
		fprintf(stderr,
			"    %lu guest-driven, %lu holds, %lu EAGAIN, %lu ioctls; fdinfo %s\n",
			v->n.guest_driven, v->n.holds, v->n.eagain,
			v->n.ioctls, v->checked_ok ? "agrees" : "DISAGREES");
	}
}

void print_mismatches(void)
{
	unsigned int i;

	for (i = 0; i < nr_mismatches; i++)
		fprintf(stderr, "gmemload: self-check: %s\n", mismatches[i]);
}
