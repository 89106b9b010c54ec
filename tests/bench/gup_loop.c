// SPDX-License-Identifier: GPL-2.0
/*
 * gup_loop: GUP calls that meet no guest_memfd page, as fast as they go,
 * for the cost gmemtop --holders adds to the rest of a host.
 *
 *   gup_loop COUNT
 *
 * Each of COUNT process_vm_readv() calls reads 8 bytes of each of 64
 * pages of this process's own anonymous memory, a remote iovec per page:
 * 64 GUP calls of one page each (pin_user_pages_remote()), each unpinned
 * by unpin_user_pages_dirty_lock(), the paths gmemhold watches at their
 * most frequent for the bytes copied.  Prints its loop time as JSON, in
 * the form of gmemload's report that tests/bench/invm.py reads
 * (elapsed_s, self_check, mismatches).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES	4096
#define CALL_PAGES	64
#define READ_BYTES	8

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
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
static int copy_loop(long count, char *from, char *to)
{
	struct iovec local = {
		.iov_base = to, .iov_len = CALL_PAGES * READ_BYTES,
	};
	struct iovec remote[CALL_PAGES];
	pid_t self = getpid();
	long i;

	for (i = 0; i < CALL_PAGES; i++) {
		remote[i].iov_base = from + i * PAGE_BYTES;
		remote[i].iov_len = READ_BYTES;
	}
	for (i = 0; i < count; i++)
		if (process_vm_readv(self, &local, 1, remote, CALL_PAGES, 0) !=
		    (ssize_t)local.iov_len)
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	size_t bytes = CALL_PAGES * PAGE_BYTES;
	long count = argc == 2 ? atol(argv[1]) : 0;
	char *from, *to;
	double start;
	int ok;

	if (count <= 0) {
		fprintf(stderr, "usage: gup_loop COUNT\n");
		return 2;
	}
	from = touched_pages(bytes);
	to = touched_pages(bytes);
	start = now_s();
	ok = copy_loop(count, from, to);
	printf("{\"calls\": %ld, \"gup_calls_per_call\": %d, \"elapsed_s\": %.6f, "
	       "\"self_check\": %s, \"mismatches\": %s}\n", count, CALL_PAGES,
	       now_s() - start, ok ? "true" : "false",
	       ok ? "[]" : "[\"a call copied less than asked\"]");
	return !ok;
}
