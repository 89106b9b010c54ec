// SPDX-License-Identifier: GPL-2.0
/*
 * gmemload: convert guest_memfd pages between shared and private the way a
 * VMM does, and say exactly what was done.
 *
 * Each VM is a KVM_X86_SW_PROTECTED_VM with one vCPU and one guest_memfd
 * (mmap()able, initially shared) bound at GPA 4 GiB.  Conversions are
 * KVM_SET_MEMORY_ATTRIBUTES2 calls on the guest_memfd, issued either by the
 * host on its own (host-driven) or on behalf of the guest when its vCPU
 * exits with a KVM_HC_MAP_GPA_RANGE hypercall (guest-driven).  Optionally a
 * page is held by another process (vmsplice, a long-term GUP pin, an
 * io_uring fixed buffer) before a conversion to private so that the
 * conversion fails with EAGAIN until the hold is released.
 *
 * gmemload keeps its own model of every page's state, so it knows how many
 * pages each call changes.  At exit it prints its counts as one JSON object
 * on stdout, together with the kernel's counts from fdinfo, and fails if
 * the two disagree.  It is the ground truth for monitoring tools.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gmemload.h"

struct options opt = {
	.nr_vms = 1,
	.size = 64ULL << 20,
	.pattern = PAT_MIXED,
	.hold_ms = 20,
	.hold_kinds = 1u << HOLD_VMSPLICE,
};

struct vm_ctx *vms;
FILE *report;	/* the real stdout */
static uint64_t rng_state;

/*
 * The selftests library prints progress ("Random seed: ...") on stdout,
 * even before main().  stdout is reserved for the JSON report, so keep the
 * real one aside and send the library's chatter to /dev/null.
 */
static void __attribute__((constructor(101))) reserve_stdout(void)
{
	int keep = dup(STDOUT_FILENO);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (keep < 0 || null < 0)
		abort();
	report = fdopen(keep, "w");
	if (!report)
		abort();
	dup2(null, STDOUT_FILENO);
	close(null);
}

void die_status(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("gmemload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("gmemload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'gmemload --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

/* ---- time and randomness ---- */

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* CPU time of all our threads, vCPUs included. */
uint64_t cpu_ns(void)
{
	return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* Sleeps until @deadline; a signal cuts it short so that stops are quick. */
void sleep_until(uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = deadline / NS_PER_S,
		.tv_nsec = deadline % NS_PER_S,
	};

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

void sleep_ns(uint64_t ns)
{
	sleep_until(now_ns() + ns);
}

/* splitmix64: tiny, and the same sequence for the same --seed everywhere. */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t rnd_below(uint64_t n)
{
	return ((unsigned __int128)rnd() * n) >> 64;
}

bool rnd_percent(unsigned int pct)
{
	return rnd_below(100) < pct;
}

/* ---- options ---- */

static void usage(void)
{
	fprintf(report,
"usage: gmemload [OPTION]... [-- VMM-ARGUMENT...]\n"
"Convert guest_memfd pages between shared and private like a VMM, then print\n"
"on stdout, as one JSON object, exactly what was done, with the kernel's own\n"
"counts from /proc/self/fdinfo; exit 1 if they disagree.  Needs /dev/kvm,\n"
"KVM_X86_SW_PROTECTED_VM and in-place conversion on: kvm.vm_memory_attributes=0\n"
"(the Linux 6.12 series) or kvm.gmem_in_place_conversion=1 (Linux 7.3).\n"
"\n"
"  -n, --vms N            VMs, each with one guest_memfd (1)\n"
"  -s, --size SIZE        guest_memfd size, bytes or K/M/G (64M)\n"
"  -p, --pattern P        what to convert (mixed):\n"
"                           random4k  one random 4K page at a time\n"
"                           range2m   random 2M-aligned 2M ranges\n"
"                           burst     32 random pages back to back, a pause\n"
"                           mixed     70%% random4k, 25%% range2m, 5%% bursts\n"
"  -g, --guest            half of the conversions are guest-driven\n"
"  -G, --guest-share PCT  percentage of guest-driven conversions (0): the\n"
"                         vCPU asks with KVM_HC_MAP_GPA_RANGE\n"
"  -r, --rate R           conversions per second, all VMs (unlimited)\n"
"  -d, --duration S       stop after S seconds\n"
"  -c, --count N          stop after N conversions\n"
"  -H, --hold PCT         before PCT%% of conversions to private, have another\n"
"                         process hold a page of the range (0)\n"
"  -m, --hold-ms MS       how long a page stays held (20)\n"
"  -K, --hold-kinds LIST  holders to take turns, comma-separated (vmsplice):\n"
"                           vmsplice  a pipe, process hold-vmsplice\n"
"                           gup-pin   a FOLL_LONGTERM pin by gup_test,\n"
"                                     process hold-gup-pin (CONFIG_GUP_TEST)\n"
"                           iouring   an io_uring fixed buffer, process\n"
"                                     hold-iouring\n"
"                           odirect   an O_DIRECT write (Linux AIO) to a\n"
"                                     null_blk that takes --hold-ms, process\n"
"                                     hold-odirect (CONFIG_BLK_DEV_NULL_BLK)\n"
"                           all       all four\n"
"  -S, --seed N           random seed; same seed, same conversions (time)\n"
"  -q, --quiet            no summary on stderr\n"
"  -h, --help             show this help\n"
"\n"
"Arguments after -- are not read: they only show in /proc/PID/cmdline, so\n"
"that monitors see a VMM's (with exec -a for argv[0]), e.g.\n"
"  exec -a qemu-system-x86_64 gmemload -c 100 -- -name guest=demo -uuid ...\n"
"\n"
"Every conversion flips a range to the opposite of what most of it is, so\n"
"it changes pages.  Host-driven ones ask for PRESERVE, guest-driven ones for\n"
"no content mode going private and ZERO going shared; on a kernel without\n"
"content modes, which refuses the first (counted as \"refused\"), all for\n"
"none.  EAGAIN (a held page) is retried every 1 ms.  Without --count or\n"
"--duration, gmemload runs until SIGINT or SIGTERM.\n"
"Exit status: 0 ok, 1 self-check failed or error, 2 bad usage,\n"
"4 not supported here.\n"
"\n"
"Examples:\n"
"  gmemload --size 8M --count 1000\n"
"  gmemload --pattern burst --rate 500 --duration 10\n"
"  gmemload --vms 2 --guest --hold 20 --duration 5 | jq .totals\n"
"  gmemload --hold 50 --hold-kinds all --count 200 | jq .held_pages\n"
"  gmemload --seed 7 --pattern range2m --size 16M --count 100\n");
}

static uint64_t parse_u64(const char *name, const char *arg, uint64_t max)
{
	unsigned long long val;
	char *end;

	errno = 0;
	val = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || *arg == '-' || val > max)
		usage_error("invalid %s '%s' (0 to %lu)", name, arg, max);
	return val;
}

static double parse_positive(const char *name, const char *arg)
{
	double val;
	char *end;

	errno = 0;
	val = strtod(arg, &end);
	if (errno || end == arg || *end || !(val > 0) || val > 1e9)
		usage_error("invalid %s '%s' (a number above 0)", name, arg);
	return val;
}

/* Bytes with an optional K, M or G suffix; a multiple of the page size. */
static uint64_t parse_size_arg(const char *arg)
{
	unsigned long long val;
	int shift = 0;
	char *end;

	errno = 0;
	val = strtoull(arg, &end, 10);
	if (!errno && end != arg && *arg != '-') {
		switch (*end) {
		case 'k': case 'K': shift = 10; end++; break;
		case 'm': case 'M': shift = 20; end++; break;
		case 'g': case 'G': shift = 30; end++; break;
		}
		if (!*end && val && val <= MAX_SIZE >> shift &&
		    !((val << shift) % PAGE_BYTES))
			return val << shift;
	}
	usage_error("invalid --size '%s' (a multiple of 4K up to 64G, e.g. 8M)",
		    arg);
}

static enum pattern parse_pattern(const char *arg)
{
	int p;

	for (p = 0; p < NR_PATTERNS; p++)
		if (!strcmp(arg, pattern_names[p]))
			return p;
	usage_error("invalid --pattern '%s' (random4k, range2m, burst or mixed)",
		    arg);
}

static int parse_hold_kind(const char *name)
{
	int k;

	if (!strcmp(name, "all"))
		return NR_HOLD_KINDS;
	for (k = 0; k < NR_HOLD_KINDS; k++)
		if (!strcmp(name, hold_kind_names[k]))
			return k;
	return -1;
}

/* "vmsplice,iouring" or "all": a bit per enum hold_kind; no empty names. */
static unsigned int parse_hold_kinds(const char *arg)
{
	char *list = strdup(arg), *rest = list, *name;
	unsigned int kinds = 0;
	int k;

	if (!list)
		die("out of memory");
	while ((name = strsep(&rest, ","))) {
		k = parse_hold_kind(name);
		if (k < 0)
			usage_error("invalid --hold-kinds '%s' (vmsplice, gup-pin, iouring, odirect or all)",
				    arg);
		kinds |= k == NR_HOLD_KINDS ? (1u << NR_HOLD_KINDS) - 1 : 1u << k;
	}
	free(list);
	return kinds;
}

static void parse_options(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "vms",	 required_argument, NULL, 'n' },
		{ "size",	 required_argument, NULL, 's' },
		{ "pattern",	 required_argument, NULL, 'p' },
		{ "guest",	 no_argument,	    NULL, 'g' },
		{ "guest-share", required_argument, NULL, 'G' },
		{ "rate",	 required_argument, NULL, 'r' },
		{ "duration",	 required_argument, NULL, 'd' },
		{ "count",	 required_argument, NULL, 'c' },
		{ "hold",	 required_argument, NULL, 'H' },
		{ "hold-ms",	 required_argument, NULL, 'm' },
		{ "hold-kinds",	 required_argument, NULL, 'K' },
		{ "seed",	 required_argument, NULL, 'S' },
		{ "quiet",	 no_argument,	    NULL, 'q' },
		{ "help",	 no_argument,	    NULL, 'h' },
		{}
	};
	bool seeded = false;
	int c, i;

	/*
	 * What follows "--" is a VMM's command line for monitors to read
	 * (gmemtop names VMs by QEMU's -name and -uuid): never parsed.
	 */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			argc = i;
			break;
		}
	}

	opterr = 0;	/* our own messages, with the exit status 2 */
	while ((c = getopt_long(argc, argv, ":n:s:p:gG:r:d:c:H:m:K:S:qh",
				longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			opt.nr_vms = parse_u64("--vms", optarg, 64);
			if (!opt.nr_vms)
				usage_error("--vms must be at least 1");
			break;
		case 's':
			opt.size = parse_size_arg(optarg);
			break;
		case 'p':
			opt.pattern = parse_pattern(optarg);
			break;
		case 'g':
			opt.guest_pct = 50;
			break;
		case 'G':
			opt.guest_pct = parse_u64("--guest-share", optarg, 100);
			break;
		case 'r':
			opt.rate = parse_positive("--rate", optarg);
			break;
		case 'd':
			opt.duration = parse_positive("--duration", optarg);
			break;
		case 'c':
			opt.count = parse_u64("--count", optarg, ULLONG_MAX);
			if (!opt.count)
				usage_error("--count must be at least 1");
			break;
		case 'H':
			opt.hold_pct = parse_u64("--hold", optarg, 100);
			break;
		case 'm':
			opt.hold_ms = parse_u64("--hold-ms", optarg, 60000);
			break;
		case 'K':
			opt.hold_kinds = parse_hold_kinds(optarg);
			break;
		case 'S':
			opt.seed = parse_u64("--seed", optarg, ULLONG_MAX);
			seeded = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'h':
			usage();
			exit(0);
		case ':':
			usage_error("option '%s' needs an argument",
				    argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	/* A short default seed survives JSON tools that use doubles. */
	if (!seeded)
		opt.seed = (now_ns() ^ getpid()) % 1000000000;
}

int main(int argc, char *argv[])
{
	struct counts total = {};
	struct run r = {};
	double elapsed, loop_cpu;
	bool ok = true;
	unsigned int i;

	parse_options(argc, argv);
	/*
	 * The selftests library loads the guest's code from the ELF file
	 * named argv[0], which a caller may have set to a VMM's name
	 * (exec -a qemu-system-x86_64): load it from the running binary.
	 */
	program_invocation_name = "/proc/self/exe";
	rng_state = opt.seed;
	check_kvm();
	catch_stop_signals();
	/* Before any VM or thread: the holders are plain processes. */
	start_holders();

	vms = calloc(opt.nr_vms, sizeof(*vms));
	if (!vms)
		die("out of memory");
	for (i = 0; i < opt.nr_vms; i++)
		vm_setup(&vms[i], i);

	run_workload(&r);
	elapsed = (now_ns() - r.t0) / 1e9;
	loop_cpu = (cpu_ns() - r.cpu0) / 1e9;

	/* Nothing may change under the kernel's counts while we read them. */
	for (i = 0; i < opt.nr_vms; i++)
		stop_vcpu_thread(&vms[i]);
	stop_holders();
	for (i = 0; i < opt.nr_vms; i++) {
		read_fdinfo(&vms[i]);
		vms[i].checked_ok = self_check(&vms[i]);
		ok &= vms[i].checked_ok;
		add_counts(&total, &vms[i].n);
	}

	print_json(&r, &total, ok, elapsed, loop_cpu);
	if (!opt.quiet)
		print_summary(&total, elapsed);
	print_mismatches();

	for (i = 0; i < opt.nr_vms; i++)
		vm_teardown(&vms[i]);
	return ok ? 0 : EXIT_FAIL;
}

