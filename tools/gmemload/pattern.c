// SPDX-License-Identifier: GPL-2.0
/*
 * The workload: which ranges are converted, by whom, how fast, and when
 * it stops.
 */
#include <signal.h>

#include "gmemload.h"

const char *const pattern_names[NR_PATTERNS] = {
	[PAT_RANDOM4K]	= "random4k",
	[PAT_RANGE2M]	= "range2m",
	[PAT_BURST]	= "burst",
	[PAT_MIXED]	= "mixed",
};

static volatile sig_atomic_t stop_requested;

/* ---- the workload ---- */

static void on_stop_signal(int sig)
{
	stop_requested = 1;
}

void catch_stop_signals(void)
{
	/* No SA_RESTART: a signal must cut pacing sleeps short. */
	struct sigaction sa = { .sa_handler = on_stop_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static bool should_stop(struct run *r)
{
	if (r->stopped_by)
		return true;
	if (stop_requested)
		r->stopped_by = "signal";
	else if (opt.count && r->done >= opt.count)
		r->stopped_by = "count";
	else if (r->end_ns && now_ns() >= r->end_ns)
		r->stopped_by = "duration";
	return r->stopped_by;
}

/* Waits until conversion number r->done is due under --rate. */
static void pace(struct run *r)
{
	uint64_t due;

	if (!opt.rate)
		return;
	due = r->t0 + (uint64_t)(r->done * (NS_PER_S / opt.rate));
	if (r->end_ns && due > r->end_ns)
		due = r->end_ns;
	sleep_until(due);
}

/*
 * Before going private: write a byte into every shared page of the range,
 * so that pages are allocated (a VMM has put data there), and perhaps hold
 * one of them so that the conversion meets a busy page.
 */
static void prepare_to_private(struct vm_ctx *v, uint64_t first,
			       uint64_t npages)
{
	uint64_t i, nr_shared = 0, pick;

	for (i = first; i < first + npages; i++) {
		if (v->is_private[i])
			continue;
		v->mem[i * PAGE_BYTES] = (uint8_t)(i + 1);
		nr_shared++;
	}
	if (!rnd_percent(opt.hold_pct) || !nr_shared)
		return;

	/* The pick'th shared page: a holder needs a host-mappable page. */
	pick = rnd_below(nr_shared);
	for (i = first; v->is_private[i] || pick--; i++)
		;
	if (hold_page(v, i))
		v->n.holds++;
}

/*
 * One conversion of a range: to the opposite of what most of it is, so
 * that it always changes pages; by the host or, for --guest-share of
 * them, by the guest.  The guest and hold dice are rolled whatever their
 * odds, so that the same --seed picks the same ranges with any --hold or
 * --guest-share.
 */
static void convert(struct run *r, struct vm_ctx *v, uint64_t first,
		    uint64_t npages)
{
	bool to_private = model_private_in(v, first, npages) * 2 <= npages;
	bool guest = rnd_percent(opt.guest_pct);

	if (to_private)
		prepare_to_private(v, first, npages);
	if (guest)
		guest_convert(v, first, npages, to_private);
	else
		convert_range(v, first, npages, to_private,
			      KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE, false);
	r->done++;
}

static struct vm_ctx *pick_vm(void)
{
	return &vms[rnd_below(opt.nr_vms)];
}

static void step_random4k(struct run *r)
{
	struct vm_ctx *v = pick_vm();

	convert(r, v, rnd_below(v->npages), 1);
}

/* A 2 MiB-aligned 2 MiB range; the whole file when it is smaller. */
static void step_range2m(struct run *r)
{
	struct vm_ctx *v = pick_vm();
	uint64_t len = v->npages < PAGES_2M ? v->npages : PAGES_2M;

	convert(r, v, rnd_below(v->npages / len) * len, len);
}

/* Back to back conversions of random pages of one VM, then a pause. */
static void step_burst(struct run *r)
{
	struct vm_ctx *v = pick_vm();
	int i;

	for (i = 0; i < BURST_LEN && !should_stop(r); i++)
		convert(r, v, rnd_below(v->npages), 1);
	/* With --rate, pace() makes the pause before the next burst. */
	if (!opt.rate && !should_stop(r))
		sleep_ns(BURST_PAUSE_NS);
}

/* mixed: 70% single pages, 25% 2 MiB ranges, 5% bursts (per step). */
static void step_mixed(struct run *r)
{
	uint64_t dice = rnd_below(100);

	if (dice < 70)
		step_random4k(r);
	else if (dice < 95)
		step_range2m(r);
	else
		step_burst(r);
}

void run_workload(struct run *r)
{
	static void (*const step[NR_PATTERNS])(struct run *) = {
		[PAT_RANDOM4K]	= step_random4k,
		[PAT_RANGE2M]	= step_range2m,
		[PAT_BURST]	= step_burst,
		[PAT_MIXED]	= step_mixed,
	};

	r->t0 = now_ns();
	r->cpu0 = cpu_ns();
	if (opt.duration)
		r->end_ns = r->t0 + (uint64_t)(opt.duration * NS_PER_S);
	while (!should_stop(r)) {
		pace(r);
		if (should_stop(r))
			break;
		step[opt.pattern](r);
		release_expired_holds();
	}
}
