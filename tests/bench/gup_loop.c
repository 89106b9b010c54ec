// SPDX-License-Identifier: GPL-2.0
/*
 * gup_loop: GUP calls that meet no guest_memfd page, as fast as they go,
 * for the cost gmemtop --holders adds to the rest of a host.
 *
 *   gup_loop COUNT [PAGES]
 *
 * Each of COUNT process_vm_readv() calls reads 64 pieces of this
 * process's own anonymous memory, a remote iovec each: 64 GUP calls
 * (pin_user_pages_remote()), each unpinned by
 * unpin_user_pages_dirty_lock(), the paths gmemhold watches.  A piece is
 * 8 bytes of one page by default, the most GUP calls for the bytes
 * copied; with PAGES, PAGES whole pages (a GUP call of PAGES pages).
 * Prints its loop time as JSON, in the form of gmemload's report that
 * tests/bench/invm.py reads (elapsed_s, self_check, mismatches).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES	4096
#define CALLS		64	/* GUP calls per process_vm_readv() */
#define READ_BYTES	8
#define MAX_PAGES	64

static double clock_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Faulted in up front: the loop times GUP, not page faults. */
static void *touched_pages(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(p, 1, bytes);
	return p;
}

/* Whether every call copied all its bytes. */
static int copy_loop(long count, char *from, char *to, size_t piece,
		     size_t stride)
{
	struct iovec local = { .iov_base = to, .iov_len = CALLS * piece };
	struct iovec remote[CALLS];
	pid_t self = getpid();
	long i;

	for (i = 0; i < CALLS; i++) {
		remote[i].iov_base = from + i * stride;
		remote[i].iov_len = piece;
	}
	for (i = 0; i < count; i++)
		if (process_vm_readv(self, &local, 1, remote, CALLS, 0) !=
		    (ssize_t)local.iov_len)
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	long count = argc >= 2 ? atol(argv[1]) : 0;
	long pages = argc == 3 ? atol(argv[2]) : 0;
	size_t piece = pages ? pages * PAGE_BYTES : READ_BYTES;
	size_t stride = pages ? piece : PAGE_BYTES;
	char *from, *to;
	double start, cpu_start;
	int ok;

	if (count <= 0 || argc > 3 || (argc == 3 && pages < 1) ||
	    pages > MAX_PAGES) {
		fprintf(stderr, "usage: gup_loop COUNT [PAGES (1-%d)]\n",
			MAX_PAGES);
		return 2;
	}
	from = touched_pages(CALLS * stride);
	to = touched_pages(CALLS * piece);
	start = clock_s(CLOCK_MONOTONIC);
	cpu_start = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	ok = copy_loop(count, from, to, piece, stride);
	printf("{\"calls\": %ld, \"gup_calls_per_call\": %d, "
	       "\"pages_per_gup_call\": %ld, \"elapsed_s\": %.6f, "
	       "\"loop_cpu_s\": %.6f, \"self_check\": %s, "
	       "\"mismatches\": %s}\n", count, CALLS, pages ? pages : 1,
	       clock_s(CLOCK_MONOTONIC) - start,
	       clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu_start,
	       ok ? "true" : "false",
	       ok ? "[]" : "[\"a call copied less than asked\"]");
	return !ok;
}
