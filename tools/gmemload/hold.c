// SPDX-License-Identifier: GPL-2.0
/*
 * Pages held on purpose, so that conversions to private meet EAGAIN.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gmemload.h"

struct hold {
	bool active;
	int pipefd[2];
	uint64_t release_ns;
};

static struct hold holds[MAX_HOLDS];

/* ---- holds: pages pinned by a pipe so that conversions get EAGAIN ---- */

static struct hold *free_hold_slot(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (!holds[i].active)
			return &holds[i];
	return NULL;
}

/*
 * vmsplice() without SPLICE_F_GIFT makes the pipe take a reference on the
 * page itself; until the pipe is read, guest_memfd sees an unexpected user.
 */
bool hold_page(uint8_t *page)
{
	struct hold *h = free_hold_slot();
	struct iovec iov = { .iov_base = page, .iov_len = PAGE_BYTES };

	if (!h)
		return false;
	if (pipe2(h->pipefd, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	if (vmsplice(h->pipefd[1], &iov, 1, 0) != (ssize_t)PAGE_BYTES)
		die("vmsplice: %s", strerror(errno));
	h->release_ns = now_ns() + opt.hold_ms * NS_PER_MS;
	h->active = true;
	return true;
}

static void release_hold(struct hold *h)
{
	char buf[PAGE_BYTES];

	if (read(h->pipefd[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		die("reading a held page back: %s", strerror(errno));
	close(h->pipefd[0]);
	close(h->pipefd[1]);
	h->active = false;
}

void release_expired_holds(void)
{
	uint64_t now = now_ns();
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active && holds[i].release_ns <= now)
			release_hold(&holds[i]);
}

void release_all_holds(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active)
			release_hold(&holds[i]);
}

bool any_hold_active(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active)
			return true;
	return false;
}
