// SPDX-License-Identifier: GPL-2.0
/*
 * Each VMM's descriptors by inode, listed from /proc/PID/fd when a file
 * turns up that the last listing did not have; each interval then costs
 * one stat() per file.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fds.h"

struct fd_entry {
	__u64 ino;
	int fd;
};

struct fd_process {
	pid_t pid;
	bool seen;			/* looked up in this interval */
	bool listed;			/* listed in this interval */
	struct fd_entry *fds;		/* by inode */
	int nr_fds;
	__u64 *absent;			/* sought since the listing, sorted */
	int nr_absent;
};

struct fd_index {
	struct fd_process *procs;	/* by pid */
	int nr_procs;
	unsigned long listings;
};

struct fd_index *fd_index_new(void)
{
	return calloc(1, sizeof(struct fd_index));
}

static void process_free(struct fd_process *p)
{
	free(p->fds);
	free(p->absent);
}

void fd_index_free(struct fd_index *x)
{
	int i;

	if (!x)
		return;
	for (i = 0; i < x->nr_procs; i++)
		process_free(&x->procs[i]);
	free(x->procs);
	free(x);
}

unsigned long fd_index_listings(const struct fd_index *x)
{
	return x->listings;
}

static int compare_fd_entry(const void *a, const void *b)
{
	const struct fd_entry *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int compare_process(const void *a, const void *b)
{
	const struct fd_process *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int compare_u64(const void *a, const void *b)
{
	const __u64 *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/* The first index in sorted @base whose element is not below @key. */
static int lower_bound(const void *base, int nr, size_t size, const void *key,
		       int (*cmp)(const void *, const void *))
{
	int lo = 0, hi = nr, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (cmp((const char *)base + mid * size, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Process @pid's entry, added empty on first sight; NULL without memory. */
static struct fd_process *process_of(struct fd_index *x, pid_t pid)
{
	struct fd_process *procs, key = { .pid = pid };
	int i;

	i = lower_bound(x->procs, x->nr_procs, sizeof(key), &key,
			compare_process);
	if (i < x->nr_procs && x->procs[i].pid == pid)
		return &x->procs[i];
	procs = realloc(x->procs, (x->nr_procs + 1) * sizeof(*procs));
	if (!procs)
		return NULL;
	x->procs = procs;
	memmove(&procs[i + 1], &procs[i], (x->nr_procs - i) * sizeof(*procs));
	memset(&procs[i], 0, sizeof(*procs));
	procs[i].pid = pid;
	x->nr_procs++;
	return &procs[i];
}

static struct fd_entry *find_fd(struct fd_process *p, __u64 ino)
{
	struct fd_entry key = { .ino = ino };

	if (!p->nr_fds)
		return NULL;
	return bsearch(&key, p->fds, p->nr_fds, sizeof(key), compare_fd_entry);
}

/* Whether descriptor @fd of @pid still is inode @ino. */
static bool fd_is(pid_t pid, int fd, __u64 ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	return !stat(path, &st) && st.st_ino == ino;
}

static bool is_absent(const struct fd_process *p, __u64 ino)
{
	return p->nr_absent && bsearch(&ino, p->absent, p->nr_absent, sizeof(ino), compare_u64);
}

/* Remembers that the listing lacks @ino; forgetting costs a listing. */
static void note_absent(struct fd_process *p, __u64 ino)
{
	__u64 *absent = realloc(p->absent, (p->nr_absent + 1) * sizeof(ino));
	int i;

	if (!absent)
		return;
	p->absent = absent;
	i = lower_bound(absent, p->nr_absent, sizeof(ino), &ino, compare_u64);
	memmove(&absent[i + 1], &absent[i], (p->nr_absent - i) * sizeof(ino));
	absent[i] = ino;
	p->nr_absent++;
}

/* Lists @p's descriptors by inode; false when the process is gone. */
static bool list_fds(struct fd_index *x, struct fd_process *p)
{
	struct fd_entry *fds = NULL, *more;
	int nr = 0, cap = 0, dir;
	char path[32];
	struct dirent *d;
	struct stat st;
	DIR *fdir;

	snprintf(path, sizeof(path), "/proc/%d/fd", p->pid);
	fdir = opendir(path);
	if (!fdir)
		return false;
	dir = dirfd(fdir);
	while ((d = readdir(fdir))) {
		if (d->d_name[0] == '.' || fstatat(dir, d->d_name, &st, 0))
			continue;
		if (nr == cap) {
			cap = cap ? 2 * cap : 64;
			more = realloc(fds, cap * sizeof(*fds));
			if (!more)
				break;
			fds = more;
		}
		fds[nr++] = (struct fd_entry){ st.st_ino, atoi(d->d_name) };
	}
	closedir(fdir);
	qsort(fds, nr, sizeof(*fds), compare_fd_entry);
	free(p->fds);
	p->fds = fds;
	p->nr_fds = nr;
	p->nr_absent = 0;
	p->listed = true;
	x->listings++;
	return true;
}

bool fd_index_find(struct fd_index *x, pid_t pid, __u64 ino, int *fd)
{
	struct fd_process *p = process_of(x, pid);
	struct fd_entry *e;

	if (!p)
		return false;
	p->seen = true;
	e = find_fd(p, ino);
	if (e && fd_is(pid, e->fd, ino)) {
		*fd = e->fd;
		return true;
	}
	if (!e && is_absent(p, ino))
		return false;
	/*
	 * Listed this interval already, maybe before the file was opened:
	 * the next interval lists again.
	 */
	if (p->listed || !list_fds(x, p))
		return false;
	e = find_fd(p, ino);
	if (!e) {
		note_absent(p, ino);
		return false;
	}
	*fd = e->fd;
	return true;
}

void fd_index_next_interval(struct fd_index *x)
{
	int i, kept = 0;

	for (i = 0; i < x->nr_procs; i++) {
		if (!x->procs[i].seen) {
			process_free(&x->procs[i]);
			continue;
		}
		x->procs[i].seen = false;
		x->procs[i].listed = false;
		x->procs[kept++] = x->procs[i];
	}
	x->nr_procs = kept;
}
