// SPDX-License-Identifier: GPL-2.0
/*
 * lru_load: keep every CPU's LRU add batch non-empty, as ordinary page-cache
 * work on a busy host does, so that a conversion that drains the batches of
 * all CPUs finds work on each of them.
 *
 *   lru_load DIR
 *
 * One process per online CPU, bound to it, writes a few new pages into a
 * file of its own in DIR (a tmpfs: no I/O) and sleeps.  New page-cache
 * folios wait in the writing CPU's batch until it fills or is drained;
 * a few pages per round never fill it.  The sleeps keep the load light, so
 * that it leaves the measured work the CPU time it had without it.  Runs
 * until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGES_PER_ROUND	4
#define ROUND_MS	100

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	stop = 1;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Add new folios to this CPU's batch, round after round. */
static void load_cpu(const char *dir, int cpu)
{
	static char buf[PAGES_PER_ROUND * 4096];
	const struct timespec pause = { .tv_nsec = ROUND_MS * 1000000L };
	char path[4096];
	cpu_set_t set;
	int fd;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
	snprintf(path, sizeof(path), "%s/lru_load.%d", dir, cpu);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || unlink(path))
		die(path);
	memset(buf, cpu, sizeof(buf));
	while (!stop) {
		/* Truncated folios leave the batch only when it is drained. */
		if (ftruncate(fd, 0) ||
		    pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf))
			die("tmpfs write");
		nanosleep(&pause, NULL);
	}
	exit(0);
}

/* Pass the stop on to the children, then wait for every one. */
static int wait_children(const pid_t *pids, long n)
{
	bool forwarded = false;
	int status, failed = 0;
	long i;

	for (;;) {
		if (wait(&status) > 0) {
			failed |= !WIFEXITED(status) || WEXITSTATUS(status);
			continue;
		}
		if (errno != EINTR)
			return failed;
		if (stop && !forwarded) {
			for (i = 0; i < n; i++)
				kill(pids[i], SIGTERM);
			forwarded = true;
		}
	}
}

int main(int argc, char *argv[])
{
	struct sigaction sa = { .sa_handler = on_stop };
	long cpu, nr_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	pid_t *pids;

	if (argc != 2) {
		fprintf(stderr, "usage: lru_load DIR\n");
		return 2;
	}
	pids = calloc(nr_cpus, sizeof(*pids));
	if (!pids)
		die("calloc");
	/* No SA_RESTART: the stop must cut wait() and nanosleep() short. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (cpu = 0; cpu < nr_cpus; cpu++) {
		pids[cpu] = fork();
		if (pids[cpu] < 0)
			die("fork");
		if (!pids[cpu])
			load_cpu(argv[1], cpu);
	}
	printf("lru_load: %ld CPUs\n", nr_cpus);
	fflush(stdout);
	return wait_children(pids, nr_cpus);
}
