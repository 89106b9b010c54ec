// SPDX-License-Identifier: GPL-2.0
/*
 * --holders: for each EAGAIN hotspot, the process that took the extra
 * reference, from bpf/gmemhold.bpf.c's record of GUP callers per page,
 * with its kernel stack symbolized from /proc/kallsyms, unless that file
 * hides the kernel's addresses (kptr_restrict): then the stack is marked
 * hidden, and neither symbols nor raw addresses are shown.  With
 * --holders=auto its programs stay loaded but are attached only while
 * hotspots have new EAGAINs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
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
	bool stacks_hidden;	/* /proc/kallsyms shows every address as 0 */
	bool on_demand;		/* --holders=auto */
	bool watching;		/* the GUP and unpin programs are attached */
	__u64 watch_ended_ns;	/* when they were last detached; 0: never */
	__u64 last_eagain_ns;	/* the latest EAGAIN of a hotspot seen */
	unsigned int quiet;	/* reports since, while watching */
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
	/* Sorted: the last is 0 only when all are. */
	h->stacks_hidden = !h->nr_syms || !h->syms[h->nr_syms - 1].addr;
	return 0;
}

/* Why /proc/kallsyms showed no address, once, at the start. */
static void explain_hidden_stacks(void)
{
	FILE *f = fopen("/proc/sys/kernel/kptr_restrict", "r");
	int level = -1;

	if (f) {
		if (fscanf(f, "%d", &level) != 1)
			level = -1;
		fclose(f);
	}
	fprintf(stderr,
		"gmemtop: --holders shows no kernel stacks: /proc/kallsyms hides kernel addresses (%s)\n",
		level == 2 ? "kernel.kptr_restrict = 2" :
		level == 1 ? "kernel.kptr_restrict = 1 and no CAP_SYSLOG" :
				"kernel.kptr_restrict");
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

/* Whether @t had takers not seen letting go; they end at @end_ns. */
static bool end_takers(struct gmem_takers *t, __u64 end_ns)
{
	bool ended = false;
	int i;

	for (i = 0; i < GMEM_TAKERS; i++) {
		if (!t->taker[i].ts_ns || t->taker[i].released_ns)
			continue;
		t->taker[i].released_ns = end_ns;
		ended = true;
	}
	return ended;
}

/*
 * A taker recorded before GUP was last detached may have let go unseen:
 * it is taken as holding the page only until then, so that it is never
 * named for a later EAGAIN.  No pin is then counted as held.  The
 * programs are detached: nothing updates the map meanwhile.  Only an
 * entry that changed is written back: an update moves it to the head of
 * its hash bucket, where the walk meets it again, by then unchanged.
 */
static void end_unwatched_takers(struct holders *h)
{
	int fd = bpf_map__fd(h->skel->maps.takers);
	struct gmem_hotspot_key key;
	struct gmem_takers t;
	bool first = true;

	while (!bpf_map_get_next_key(fd, first ? NULL : &key, &key)) {
		first = false;
		if (!bpf_map_lookup_elem(fd, &key, &t) &&
		    end_takers(&t, h->watch_ended_ns))
			bpf_map_update_elem(fd, &key, &t, BPF_EXIST);
	}
	h->skel->bss->pins_held = 0;
}

static void cannot_watch(int err)
{
	fprintf(stderr, "gmemtop: cannot watch GUP for --holders: %s\n",
		strerror(-err));
}

static int watch(struct holders *h)
{
	int err;

	if (h->watch_ended_ns)
		end_unwatched_takers(h);
	err = gmemhold_bpf__attach(h->skel);
	if (err) {
		/* Some programs may have attached before one failed. */
		gmemhold_bpf__detach(h->skel);
		cannot_watch(err);
		return err;
	}
	h->watching = true;
	return 0;
}

static void unwatch(struct holders *h)
{
	gmemhold_bpf__detach(h->skel);
	h->watch_ended_ns = monotonic_s() * 1e9;
	h->watching = false;
	h->quiet = 0;
}

struct holders *holders_open(bool on_demand)
{
	struct holders *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return NULL;
	h->on_demand = on_demand;
	h->skel = gmemhold_bpf__open();
	if (!h->skel)
		goto fail;
	err = gmemhold_bpf__load(h->skel);
	if (err) {
		cannot_watch(err);
		goto fail;
	}
	/* Attached once even on demand: an error shows at the start. */
	if (watch(h))
		goto fail;
	if (on_demand)
		unwatch(h);
	err = load_ksyms(h);
	if (!err && h->stacks_hidden)
		explain_hidden_stacks();
	if (!err)
		return h;
	fprintf(stderr, "gmemtop: cannot read /proc/kallsyms for --holders: %s\n",
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

/* A pinned page is held by a pin; any other extra reference by a GET. */
static bool kind_explains(const struct gmem_hotspot *spot, __u32 kind)
{
	bool pinned = spot->pinned || spot->cause == GMEM_CAUSE_PINNED;

	return pinned == (kind != GMEM_HOLD_GET);
}

/* Took the page before @when, and had not let go of it by then. */
static bool held_at(const struct gmem_taker *k, __u64 when)
{
	return k->ts_ns && k->ts_ns <= when &&
	       (!k->released_ns || k->released_ns > when);
}

/*
 * The latest taker still holding the page at the hotspot's last EAGAIN
 * with a reference of the kind that blocked it; NULL, "unknown", when
 * none: a mismatched or released taker is never named.
 */
static const struct gmem_taker *holder_of(const struct gmem_takers *t,
					  const struct gmem_hotspot *spot)
{
	const struct gmem_taker *best = NULL;
	int i;

	for (i = 0; i < GMEM_TAKERS; i++) {
		const struct gmem_taker *k = &t->taker[i];

		if (!held_at(k, spot->last_ns) || !kind_explains(spot, k->kind))
			continue;
		if (!best || k->ts_ns > best->ts_ns)
			best = k;
	}
	return best;
}

/* The time of the latest EAGAIN of @r's hotspots; 0 without any. */
static __u64 latest_eagain(const struct report *r)
{
	__u64 latest = 0;
	int i;

	for (i = 0; i < r->nr_hotspots; i++)
		if (r->hotspots[i].spot.last_ns > latest)
			latest = r->hotspots[i].spot.last_ns;
	return latest;
}

void holders_watch_as_needed(struct holders *h, const struct report *r)
{
	__u64 latest;

	if (!h->on_demand)
		return;
	latest = latest_eagain(r);
	if (latest > h->last_eagain_ns) {
		h->last_eagain_ns = latest;
		h->quiet = 0;
		if (!h->watching)
			watch(h);
	} else if (h->watching && ++h->quiet >= HOLDERS_QUIET_REPORTS) {
		unwatch(h);
	}
}

void holders_name(const struct holders *h, struct report *r)
{
	int fd = bpf_map__fd(h->skel->maps.takers);
	const struct gmem_taker *k;
	struct gmem_takers t;
	int i;

	r->holders = h->on_demand ? HOLDERS_AUTO : HOLDERS_ALWAYS;
	r->watching_gup = h->watching;
	for (i = 0; i < r->nr_hotspots; i++) {
		struct hotspot_row *row = &r->hotspots[i];
		struct holder *who = &row->holder;

		memset(who, 0, sizeof(*who));
		if (bpf_map_lookup_elem(fd, &row->key, &t))
			continue;
		k = holder_of(&t, &row->spot);
		if (!k)
			continue;
		who->known = true;
		who->pid = k->pid;
		who->tid = k->tid;
		who->kind = k->kind;
		memcpy(who->comm, k->comm, sizeof(who->comm));
		who->stack_hidden = h->stacks_hidden;
		if (!h->stacks_hidden)
			symbolize(h, k->stack_id, who->stack,
				  sizeof(who->stack));
	}
}
