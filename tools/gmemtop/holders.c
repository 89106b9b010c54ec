// SPDX-License-Identifier: GPL-2.0
/*
 * --holders: for each EAGAIN hotspot, the process that took the extra
 * reference, from bpf/gmemhold.bpf.c's record of GUP callers per page,
 * with its kernel stack symbolized from /proc/kallsyms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "gmem.h"
#include "gmemhold.skel.h"
#include "holders.h"
#include "report.h"

struct ksym {
	unsigned long long addr;
	char *name;
};

struct holders {
	struct gmemhold_bpf *skel;
	struct ksym *syms;
	size_t nr_syms;
};

static int compare_ksyms(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The kernel's text symbols, sorted by address. */
static int load_ksyms(struct holders *h)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	unsigned long long addr;
	char type, name[256];
	size_t cap = 0;
	struct ksym *s;

	if (!f)
		return -errno;
	while (fscanf(f, "%llx %c %255s%*[^\n]", &addr, &type, name) == 3) {
		if (type != 't' && type != 'T')
			continue;
		if (h->nr_syms == cap) {
			cap = cap ? cap * 2 : 4096;
			s = realloc(h->syms, cap * sizeof(*s));
			if (!s)
				break;
			h->syms = s;
		}
		h->syms[h->nr_syms].addr = addr;
		h->syms[h->nr_syms].name = strdup(name);
		if (h->syms[h->nr_syms].name)
			h->nr_syms++;
	}
	fclose(f);
	qsort(h->syms, h->nr_syms, sizeof(*h->syms), compare_ksyms);
	return 0;
}

/* The symbol at or below @addr; NULL below the first. */
static const struct ksym *ksym_of(const struct holders *h,
				  unsigned long long addr)
{
	size_t lo = 0, hi = h->nr_syms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (h->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &h->syms[lo - 1] : NULL;
}

struct holders *holders_open(void)
{
	struct holders *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return NULL;
	h->skel = gmemhold_bpf__open();
	if (!h->skel)
		goto fail;
	err = gmemhold_bpf__load(h->skel);
	if (!err)
		err = gmemhold_bpf__attach(h->skel);
	if (!err)
		err = load_ksyms(h);
	if (!err)
		return h;
	fprintf(stderr, "gmemtop: cannot watch GUP for --holders: %s\n",
		strerror(-err));
fail:
	holders_close(h);
	return NULL;
}

void holders_close(struct holders *h)
{
	size_t i;

	if (!h)
		return;
	gmemhold_bpf__destroy(h->skel);
	for (i = 0; i < h->nr_syms; i++)
		free(h->syms[i].name);
	free(h->syms);
	free(h);
}

static void symbolize(const struct holders *h, __s32 stack_id, char *buf,
		      size_t len)
{
	__u64 ips[GMEM_STACK_DEPTH] = {};
	const struct ksym *sym;
	size_t used = 0;
	int i;

	buf[0] = '\0';
	if (stack_id < 0 ||
	    bpf_map_lookup_elem(bpf_map__fd(h->skel->maps.stacks), &stack_id,
				ips))
		return;
	for (i = 0; i < GMEM_STACK_DEPTH && ips[i] && used + 1 < len; i++) {
		sym = ksym_of(h, ips[i]);
		/* gmemhold's own program and trampoline: not the holder's. */
		if (sym && !strncmp(sym->name, "bpf_", 4))
			continue;
		used += snprintf(buf + used, len - used, "%s%s+0x%llx",
				 used ? ";" : "", sym ? sym->name : "?",
				 sym ? ips[i] - sym->addr : ips[i]);
	}
}

/*
 * The taker that most recently got the page before its last EAGAIN: the
 * one still holding it then, unless it had let go and the holder took the
 * page some way GUP does not see.
 */
static const struct gmem_taker *last_taker(const struct gmem_takers *t,
					   __u64 before_ns)
{
	const struct gmem_taker *best = NULL;
	int i;

	for (i = 0; i < GMEM_TAKERS; i++) {
		const struct gmem_taker *k = &t->taker[i];

		if (!k->ts_ns || k->ts_ns > before_ns)
			continue;
		if (!best || k->ts_ns > best->ts_ns)
			best = k;
	}
	return best;
}

void holders_name(const struct holders *h, struct report *r)
{
	int fd = bpf_map__fd(h->skel->maps.takers);
	const struct gmem_taker *k;
	struct gmem_takers t;
	int i;

	r->holders = true;
	for (i = 0; i < r->nr_hotspots; i++) {
		struct hotspot_row *row = &r->hotspots[i];
		struct holder *who = &row->holder;

		memset(who, 0, sizeof(*who));
		if (bpf_map_lookup_elem(fd, &row->key, &t))
			continue;
		k = last_taker(&t, row->spot.last_ns);
		if (!k)
			continue;
		who->known = true;
		who->pid = k->pid;
		who->kind = k->kind;
		memcpy(who->comm, k->comm, sizeof(who->comm));
		symbolize(h, k->stack_id, who->stack, sizeof(who->stack));
	}
}
