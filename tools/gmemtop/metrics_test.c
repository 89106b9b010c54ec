// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of what gmemtop exports: content negotiation, listen
 * addresses, counters that never go back, series that outlive a report
 * only while their VMM lives, the textfile written atomically, and the
 * server's thread that leaves the ending signals to the main loop.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "kselftest_harness.h"

/* The report's row has no names: each label is there, empty. */
#define NO_IDENT	"cgroup=\"\",vm_name=\"\",vm_uuid=\"\""
#define CONVERSIONS \
	"kvm_gmem_conversions_total{vm=\"3\",pid=\"%d\",ino=\"4242\"," \
	NO_IDENT ",direction=\"to_private\"}"
#define LATENCY_COUNT \
	"kvm_gmem_conversion_latency_seconds_count{vm=\"3\",pid=\"%d\"," \
	"ino=\"4242\"," NO_IDENT "}"
#define LATENCY_SUM \
	"kvm_gmem_conversion_latency_seconds_sum{vm=\"3\",pid=\"%d\"," \
	"ino=\"4242\"," NO_IDENT "}"
#define FASTEST_BUCKET \
	"kvm_gmem_conversion_latency_seconds_bucket{vm=\"3\",pid=\"%d\"," \
	"ino=\"4242\"," NO_IDENT ",le=\"1.024e-06\"}"
#define EAGAIN_COUNT \
	"kvm_gmem_eagain_latency_seconds_count{vm=\"3\",pid=\"%d\"," \
	"ino=\"4242\"," NO_IDENT "}"
#define EAGAIN_SUM \
	"kvm_gmem_eagain_latency_seconds_sum{vm=\"3\",pid=\"%d\"," \
	"ino=\"4242\"," NO_IDENT "}"
#define EAGAIN_REFCHECK \
	"kvm_gmem_eagain_phase_seconds_total{vm=\"3\",pid=\"%d\"," \
	"ino=\"4242\"," NO_IDENT ",phase=\"refcheck\"}"
#define SHARED_BYTES \
	"kvm_gmem_memory_bytes{vm=\"3\",pid=\"%d\",ino=\"4242\"," \
	NO_IDENT ",attribute=\"shared\"}"

/* A report of one guest_memfd owned by @pid, with @n conversions of 1 us. */
static struct report *report_of(pid_t pid, __u64 n, long long shared)
{
	static struct file_row row;
	static struct report r = { .files = &row, .nr_files = 1 };

	memset(&row, 0, sizeof(row));
	row.ino = 4242;
	row.now.pid = pid;
	row.now.vm = 3;
	row.now.conversions[1] = n;
	row.now.hist[gmem_hist_bucket(1000)] = n;
	row.now.lat_sum_ns = n * 1000ULL;
	row.fdinfo.shared_pages = shared;
	row.fdinfo.private_pages = 0;
	return &r;
}

/*
 * @r's file as fdinfo counts it over its life: @n conversions to private,
 * as the kernel prints them, read while none was in flight.
 */
static struct report *counted_by_kernel(struct report *r, __u64 n)
{
	struct gmem_lifetime *lifetime = &r->files[0].fdinfo.lifetime;
	char line[64];

	r->files[0].fdinfo.quiet = true;
	snprintf(line, sizeof(line), "gmem_conversions_to_private:\t%llu\n",
		 (unsigned long long)n);
	parse_fdinfo_lifetime(line, lifetime);
	parse_fdinfo_lifetime("gmem_conversions_to_shared:\t0\n", lifetime);
	parse_fdinfo_lifetime("gmem_pages_to_private:\t0\n", lifetime);
	parse_fdinfo_lifetime("gmem_pages_to_shared:\t0\n", lifetime);
	parse_fdinfo_lifetime("gmem_eagain:\t0\n", lifetime);
	return r;
}

/* The exposition's text, until the next call. */
static const char *exposition(struct metrics *m, enum metrics_format format)
{
	static char page[65536];
	FILE *out = fmemopen(page, sizeof(page), "w");

	metrics_print(out, m, format);
	fclose(out);
	return page;
}

/*
 * The value of the sample whose name and labels, printf'd with @pid, are
 * @fmt; -1 when it is not there.
 */
static double sample(struct metrics *m, const char *fmt, pid_t pid)
{
	const char *page = exposition(m, METRICS_TEXT), *at;
	char want[256];

	snprintf(want, sizeof(want), fmt, pid);
	strcat(want, " ");
	at = strstr(page, want);
	if (!at || (at != page && at[-1] != '\n'))
		return -1;
	return strtod(at + strlen(want), NULL);
}

TEST(negotiation_follows_the_accept_header)
{
	static const struct {
		const char *accept;
		enum metrics_format want;
	} cases[] = {
		{ NULL, METRICS_TEXT },
		{ "", METRICS_TEXT },
		{ "*/*", METRICS_TEXT },
		{ "application/json", METRICS_TEXT },
		/* Prometheus 2.x */
		{ "application/openmetrics-text;version=1.0.0,"
		  "application/openmetrics-text;version=0.0.1;q=0.75,"
		  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
		  METRICS_OPENMETRICS },
		{ "application/openmetrics-text", METRICS_OPENMETRICS },
		{ "Application/OpenMetrics-Text ; Version = \"1.0.0\"",
		  METRICS_OPENMETRICS },
		/* Only 1.0.0 is served. */
		{ "application/openmetrics-text;version=0.0.1", METRICS_TEXT },
		{ "text/plain;q=1, application/openmetrics-text;q=0.5",
		  METRICS_TEXT },
		{ "text/plain;version=0.0.4;q=0.5,"
		  "application/openmetrics-text;version=1.0.0;q=0.7",
		  METRICS_OPENMETRICS },
		/* q=0: not acceptable at all. */
		{ "application/openmetrics-text;q=0, */*;q=0.1", METRICS_TEXT },
		/* Equals: the first. */
		{ "text/plain;q=0.3,application/openmetrics-text;q=0.3",
		  METRICS_TEXT },
		{ "application/openmetrics-text;q=0.3,text/plain;q=0.3",
		  METRICS_OPENMETRICS },
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TH_LOG("Accept: %s", cases[i].accept ?: "(none)");
		ASSERT_EQ(metrics_negotiate(cases[i].accept), cases[i].want);
	}
}

TEST(a_port_alone_listens_on_loopback)
{
	struct sockaddr_storage addr;
	struct sockaddr_in *in = (struct sockaddr_in *)&addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
	char host[INET6_ADDRSTRLEN];

	ASSERT_EQ(metrics_parse_addr("9464", &addr), 0);
	ASSERT_EQ(in->sin_family, AF_INET);
	ASSERT_EQ(in->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	ASSERT_EQ(ntohs(in->sin_port), 9464);

	ASSERT_EQ(metrics_parse_addr("0.0.0.0:1", &addr), 0);
	ASSERT_EQ(in->sin_addr.s_addr, htonl(INADDR_ANY));
	ASSERT_EQ(ntohs(in->sin_port), 1);

	ASSERT_EQ(metrics_parse_addr("[fd00::1]:65535", &addr), 0);
	ASSERT_EQ(in6->sin6_family, AF_INET6);
	inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
	ASSERT_STREQ(host, "fd00::1");
	ASSERT_EQ(ntohs(in6->sin6_port), 65535);
}

TEST(bad_addresses_are_refused)
{
	static const char *const bad[] = {
		"", "0", "65536", "9464x", "+9464", " 9464", "-1", "0x10",
		":9464",		/* every address must be said: 0.0.0.0 */
		"localhost:9464", "1.2.3.4:", "1.2.3.4:0", "1.2.3:9464",
		"[::1]", "::1:9464", "[::1:9464", "[1.2.3.4]:9464",
		"[]:9464",
	};
	struct sockaddr_storage addr;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TH_LOG("'%s'", bad[i]);
		ASSERT_EQ(metrics_parse_addr(bad[i], &addr), -1);
	}
}

TEST(counters_go_on_across_a_restart)
{
	struct metrics *m = metrics_new(NULL, NULL);
	pid_t pid = getpid();

	ASSERT_NE(m, NULL);
	metrics_update(m, report_of(pid, 6, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 6);

	/* 'r': read once more (8 by now), then the kernel counts from 0. */
	metrics_restart(m, report_of(pid, 8, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 8);
	metrics_update(m, report_of(pid, 3, 20));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 11);
	ASSERT_EQ(sample(m, LATENCY_COUNT, pid), 11);
	ASSERT_EQ(sample(m, LATENCY_SUM, pid), 11e-6);
	/* A gauge is what it is now, never carried. */
	ASSERT_EQ(sample(m, SHARED_BYTES, pid), 20 * getpagesize());

	/* Restarted in the kernel unannounced (an evicted entry): 11 + 1. */
	metrics_update(m, report_of(pid, 1, 20));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 12);
	metrics_free(m);
}

/*
 * Every counter and bucket is 64-bit end to end: one that passes 2^32
 * reads exactly, and is not taken for counters that restarted.
 */
TEST(counters_past_2_32_read_exactly)
{
	struct metrics *m = metrics_new(NULL, NULL);
	__u64 below = (1ULL << 32) - 1, above = (1ULL << 32) + 5;
	pid_t pid = getpid();

	ASSERT_NE(m, NULL);
	metrics_update(m, report_of(pid, below, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), below);
	ASSERT_EQ(sample(m, FASTEST_BUCKET, pid), below);
	metrics_update(m, report_of(pid, above, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), above);
	ASSERT_EQ(sample(m, FASTEST_BUCKET, pid), above);
	ASSERT_EQ(sample(m, LATENCY_COUNT, pid), above);
	metrics_free(m);
}

/* @r's file with @n EAGAINs of 20 us, 15 of them in the reference check. */
static struct report *failed_with_eagain(struct report *r, __u64 n)
{
	struct gmem_lat *l = &r->files[0].now.outcome[GMEM_OUTCOME_EAGAIN];

	l->count = n;
	l->sum_ns = n * 20000;
	l->hist[gmem_hist_bucket(20000)] = n;
	l->phase_ns[GMEM_PHASE_REFCHECK] = n * 15000;
	return r;
}

/*
 * EAGAINs have their latency and phases apart from the conversions',
 * carried over a restart like them.
 */
TEST(eagain_latency_and_phases_are_exported)
{
	struct metrics *m = metrics_new(NULL, NULL);
	pid_t pid = getpid();

	ASSERT_NE(m, NULL);
	metrics_update(m, failed_with_eagain(report_of(pid, 6, 10), 4));
	ASSERT_EQ(sample(m, EAGAIN_COUNT, pid), 4);
	ASSERT_EQ(sample(m, EAGAIN_SUM, pid), 80e-6);
	ASSERT_EQ(sample(m, EAGAIN_REFCHECK, pid), 60e-6);
	ASSERT_EQ(sample(m, LATENCY_COUNT, pid), 6);

	metrics_restart(m, failed_with_eagain(report_of(pid, 6, 10), 5));
	metrics_update(m, failed_with_eagain(report_of(pid, 0, 10), 1));
	ASSERT_EQ(sample(m, EAGAIN_COUNT, pid), 6);
	ASSERT_EQ(sample(m, EAGAIN_REFCHECK, pid), 90e-6);
	metrics_free(m);
}

/* Only a real decrease is a restart: from there, counting goes on. */
TEST(a_decrease_past_2_32_is_a_restart)
{
	struct metrics *m = metrics_new(NULL, NULL);
	__u64 above = (1ULL << 32) + 5;
	pid_t pid = getpid();

	ASSERT_NE(m, NULL);
	metrics_update(m, report_of(pid, above, 10));
	metrics_update(m, report_of(pid, 3, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), above + 3);
	ASSERT_EQ(sample(m, LATENCY_COUNT, pid), above + 3);
	metrics_update(m, report_of(pid, 7, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), above + 7);
	metrics_free(m);
}

TEST(a_file_gone_from_the_report_lives_while_its_vmm_does)
{
	struct metrics *m = metrics_new(NULL, NULL);
	struct report empty = { .nr_files = 0 };
	pid_t pid = getpid(), dead = fork();

	if (!dead)
		_exit(0);
	ASSERT_EQ(waitpid(dead, NULL, 0), dead);

	metrics_update(m, report_of(pid, 6, 10));
	metrics_restart(m, report_of(pid, 6, 10));
	metrics_update(m, &empty);
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 6);
	ASSERT_EQ(sample(m, SHARED_BYTES, pid), -1);

	metrics_update(m, report_of(dead, 6, 10));
	metrics_update(m, &empty);
	ASSERT_EQ(sample(m, CONVERSIONS, dead), -1);
	metrics_free(m);
}

/*
 * What fdinfo counts over the file's life is exported as it is: a gmemtop
 * started later, or again, exports the same, unlike its own counts.
 */
TEST(kernel_counts_are_the_same_in_every_run)
{
	struct metrics *first = metrics_new(NULL, NULL);
	struct metrics *again = metrics_new(NULL, NULL);
	pid_t pid = getpid();

	ASSERT_NE(first, NULL);
	ASSERT_NE(again, NULL);
	metrics_update(first, counted_by_kernel(report_of(pid, 6, 10), 1000));
	ASSERT_EQ(sample(first, CONVERSIONS, pid), 1000);
	metrics_update(first, counted_by_kernel(report_of(pid, 9, 10), 1003));
	metrics_update(again, counted_by_kernel(report_of(pid, 2, 10), 1003));
	ASSERT_EQ(sample(first, CONVERSIONS, pid), 1003);
	ASSERT_EQ(sample(again, CONVERSIONS, pid), 1003);
	/* The latency histogram is gmemtop's alone. */
	ASSERT_EQ(sample(first, LATENCY_COUNT, pid), 9);
	ASSERT_EQ(sample(again, LATENCY_COUNT, pid), 2);
	metrics_free(first);
	metrics_free(again);
}

/*
 * fdinfo gone (the file closed): gmemtop's count goes on from the
 * kernel's, by the smallest difference seen.  The true one is 994: the
 * first report's 995 holds a conversion that came between the read of
 * the maps and that of fdinfo.
 */
TEST(without_fdinfo_kernel_counts_go_on_with_gmemtop_s)
{
	struct metrics *m = metrics_new(NULL, NULL);
	pid_t pid = getpid();

	ASSERT_NE(m, NULL);
	metrics_update(m, counted_by_kernel(report_of(pid, 10, 10), 1005));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 1005);
	metrics_update(m, counted_by_kernel(report_of(pid, 11, 10), 1005));
	metrics_update(m, report_of(pid, 13, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 1007);
	/* Its own counts restarted meanwhile ('r'): the same. */
	metrics_restart(m, report_of(pid, 14, 10));
	metrics_update(m, report_of(pid, 2, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 1010);
	metrics_free(m);
}

/*
 * fdinfo read while a conversion was in flight counts it before gmemtop
 * does: once the file is closed and gmemtop's count has it too, it must
 * not be counted twice (gmemload's 80 conversions exported as 81).
 */
TEST(a_conversion_in_flight_is_not_counted_twice)
{
	struct metrics *m = metrics_new(NULL, NULL);
	struct report *r;
	pid_t pid = getpid();

	ASSERT_NE(m, NULL);
	r = counted_by_kernel(report_of(pid, 79, 10), 80);
	r->files[0].fdinfo.quiet = false;
	metrics_update(m, r);
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 80);
	metrics_update(m, report_of(pid, 80, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 80);
	metrics_update(m, report_of(pid, 81, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 81);
	metrics_free(m);
}

/* Exported counts never go back, whichever source is behind. */
TEST(kernel_counts_never_go_back)
{
	struct metrics *m = metrics_new(NULL, NULL);
	pid_t pid = getpid();

	ASSERT_NE(m, NULL);
	/* fdinfo unreadable at first: gmemtop's count, then fdinfo's. */
	metrics_update(m, report_of(pid, 6, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 6);
	metrics_update(m, counted_by_kernel(report_of(pid, 7, 10), 1000));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 1000);
	/* Another file under the same inode number counts from zero. */
	metrics_update(m, counted_by_kernel(report_of(pid, 8, 10), 5));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 1000);
	metrics_update(m, report_of(pid, 9, 10));
	ASSERT_EQ(sample(m, CONVERSIONS, pid), 1000);
	metrics_free(m);
}

/* A port nothing listens on now, for a server of the test's own. */
static int free_port(void)
{
	struct sockaddr_in in = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&in, len) &&
	    !getsockname(fd, (struct sockaddr *)&in, &len))
		port = ntohs(in.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* The signals thread @tid of this process blocks (its SigBlk). */
static unsigned long long blocked_in(const char *tid)
{
	unsigned long long mask = 0;
	char path[64], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%s/status", tid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "SigBlk: %llx", &mask) == 1)
			break;
	if (f)
		fclose(f);
	return mask;
}

/*
 * SIGINT, SIGTERM and SIGHUP must reach the main loop, whose waits they
 * cut short: libmicrohttpd's thread blocks them, and the thread that
 * started it blocks them no more than before.
 */
TEST(only_the_main_thread_takes_the_ending_signals)
{
	unsigned long long ending = 1ULL << (SIGINT - 1) |
				    1ULL << (SIGTERM - 1) |
				    1ULL << (SIGHUP - 1);
	struct sockaddr_storage addr;
	char where[32], self[16];
	unsigned int others = 0;
	struct metrics *m;
	struct dirent *d;
	DIR *tasks;

	snprintf(where, sizeof(where), "127.0.0.1:%d", free_port());
	ASSERT_EQ(metrics_parse_addr(where, &addr), 0);
	m = metrics_new(&addr, NULL);
	ASSERT_NE(m, NULL);
	/* Each test runs in a process of its own: its main thread's id. */
	snprintf(self, sizeof(self), "%d", getpid());
	ASSERT_EQ(blocked_in(self) & ending, 0);
	tasks = opendir("/proc/self/task");
	ASSERT_NE(tasks, NULL);
	while ((d = readdir(tasks))) {
		if (d->d_name[0] == '.' || !strcmp(d->d_name, self))
			continue;
		EXPECT_EQ(blocked_in(d->d_name) & ending, ending) {
			TH_LOG("thread %s", d->d_name);
		}
		others++;
	}
	closedir(tasks);
	ASSERT_GT(others, 0);
	metrics_free(m);
}

FIXTURE(textfile) {
	char dir[64], path[80], tmp[96], other[80];
};

FIXTURE_SETUP(textfile)
{
	strcpy(self->dir, "/tmp/metrics_test.XXXXXX");
	ASSERT_NE(mkdtemp(self->dir), NULL);
	snprintf(self->path, sizeof(self->path), "%s/gmemtop.prom", self->dir);
	snprintf(self->tmp, sizeof(self->tmp), "%s.tmp", self->path);
	snprintf(self->other, sizeof(self->other), "%s/other", self->dir);
}

FIXTURE_TEARDOWN(textfile)
{
	unlink(self->path);
	if (unlink(self->tmp))
		rmdir(self->tmp);
	unlink(self->other);
	rmdir(self->dir);
}

static char *contents(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

TEST_F(textfile, holds_the_text_exposition_and_nothing_is_left_beside)
{
	struct metrics *m = metrics_new(NULL, self->path);
	struct stat st;

	ASSERT_NE(m, NULL);
	ASSERT_NE(contents(self->path), NULL);	/* written at once */
	metrics_update(m, report_of(getpid(), 6, 10));
	ASSERT_STREQ(contents(self->path), exposition(m, METRICS_TEXT));
	ASSERT_EQ(stat(self->tmp, &st), -1);
	metrics_free(m);
}

TEST_F(textfile, a_failed_write_leaves_the_last_one_whole)
{
	struct metrics *m = metrics_new(NULL, self->path);
	char before[65536];

	ASSERT_NE(m, NULL);
	strcpy(before, contents(self->path));
	ASSERT_EQ(mkdir(self->tmp, 0700), 0);	/* PATH.tmp cannot be opened */
	metrics_update(m, report_of(getpid(), 6, 10));
	ASSERT_STREQ(contents(self->path), before);

	ASSERT_EQ(rmdir(self->tmp), 0);		/* and the next interval can */
	metrics_update(m, report_of(getpid(), 7, 10));
	ASSERT_NE(strstr(contents(self->path), "\"to_private\"} 7\n"), NULL);
	metrics_free(m);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Whoever may write the directory cannot have gmemtop write elsewhere. */
TEST_F(textfile, a_link_at_the_temporary_path_is_not_followed)
{
	struct metrics *m;
	struct stat st;

	write_text(self->other, "someone else's\n");
	ASSERT_EQ(symlink(self->other, self->tmp), 0);
	m = metrics_new(NULL, self->path);
	ASSERT_NE(m, NULL);
	ASSERT_STREQ(contents(self->other), "someone else's\n");
	ASSERT_EQ(lstat(self->path, &st), 0);
	ASSERT_TRUE(S_ISREG(st.st_mode));
	ASSERT_STREQ(contents(self->path), exposition(m, METRICS_TEXT));
	ASSERT_EQ(lstat(self->tmp, &st), -1);
	metrics_free(m);
}

/* A gmemtop that died while writing left PATH.tmp: it goes. */
TEST_F(textfile, a_stale_temporary_file_is_replaced)
{
	struct metrics *m;
	struct stat st;

	write_text(self->tmp, "# half a file");
	m = metrics_new(NULL, self->path);
	ASSERT_NE(m, NULL);
	ASSERT_STREQ(contents(self->path), exposition(m, METRICS_TEXT));
	ASSERT_EQ(lstat(self->tmp, &st), -1);
	metrics_free(m);
}

TEST_F(textfile, an_unwritable_path_is_refused_at_the_start)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/no/such/dir.prom", self->dir);
	ASSERT_EQ(metrics_new(NULL, path), NULL);
}

TEST_HARNESS_MAIN
