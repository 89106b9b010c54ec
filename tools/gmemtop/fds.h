/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where each guest_memfd is open in its VMM, so that its fdinfo can be
 * read: a VMM's /proc/PID/fd is listed when a file it has not seen
 * before turns up, not once per file per interval, which would cost
 * files * descriptors stat() calls each interval.
 */
#ifndef GMEMTOP_FDS_H
#define GMEMTOP_FDS_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

struct fd_index;

struct fd_index *fd_index_new(void);
void fd_index_free(struct fd_index *x);

/*
 * The descriptor of inode @ino in process @pid, checked with one stat();
 * the process's descriptors are listed again at most once per interval,
 * when @ino is new or has moved.  False when @pid has no descriptor of
 * it (closed, or only mapped).
 */
bool fd_index_find(struct fd_index *x, pid_t pid, __u64 ino, int *fd);

/*
 * Ends an interval: processes not looked up in it are forgotten (a pid
 * used again is listed anew), the others may be listed again.
 */
void fd_index_next_interval(struct fd_index *x);

/* How many times a /proc/PID/fd was listed, ever: for the tests. */
unsigned long fd_index_listings(const struct fd_index *x);

#endif
