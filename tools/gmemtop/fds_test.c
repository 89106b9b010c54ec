// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of the descriptor index (fds.c) on this process's own
 * descriptors: every file found at its descriptor, and /proc/PID/fd
 * listed once for many files, again only when a file is new or moved.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fds.h"
#include "kselftest_harness.h"

#define NR_FILES	200

static __u64 ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

static int new_file(void)
{
	return open("/tmp", O_TMPFILE | O_RDWR, 0600);
}

FIXTURE(fds) {
	struct fd_index *x;
	int fd[NR_FILES];
	__u64 ino[NR_FILES];
};

FIXTURE_SETUP(fds)
{
	int i;

	self->x = fd_index_new();
	ASSERT_NE(NULL, self->x);
	for (i = 0; i < NR_FILES; i++) {
		self->fd[i] = new_file();
		ASSERT_LE(0, self->fd[i]);
		self->ino[i] = ino_of(self->fd[i]);
	}
}

FIXTURE_TEARDOWN(fds)
{
	int i;

	for (i = 0; i < NR_FILES; i++)
		close(self->fd[i]);
	fd_index_free(self->x);
}

/* Every file of the fixture is found at its own descriptor. */
static bool finds_all(struct fd_index *x, const int *fds, const __u64 *inos)
{
	int i, fd;

	for (i = 0; i < NR_FILES; i++)
		if (!fd_index_find(x, getpid(), inos[i], &fd) || fd != fds[i])
			return false;
	return true;
}

TEST_F(fds, many_files_one_listing_then_none)
{
	ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
	ASSERT_EQ(1, fd_index_listings(self->x));
	fd_index_next_interval(self->x);
	ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
	ASSERT_EQ(1, fd_index_listings(self->x));
}

TEST_F(fds, a_new_file_lists_once)
{
	int fd, found;

	ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
	fd_index_next_interval(self->x);
	fd = new_file();
	ASSERT_LE(0, fd);
	ASSERT_TRUE(fd_index_find(self->x, getpid(), ino_of(fd), &found));
	ASSERT_EQ(fd, found);
	ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
	ASSERT_EQ(2, fd_index_listings(self->x));
	close(fd);
}

/* Opened after this interval's listing: found by the next one's. */
TEST_F(fds, a_file_opened_after_the_listing_is_found_next_interval)
{
	int fd, found;

	ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
	fd = new_file();
	ASSERT_LE(0, fd);
	ASSERT_FALSE(fd_index_find(self->x, getpid(), ino_of(fd), &found));
	fd_index_next_interval(self->x);
	ASSERT_TRUE(fd_index_find(self->x, getpid(), ino_of(fd), &found));
	ASSERT_EQ(fd, found);
	ASSERT_EQ(2, fd_index_listings(self->x));
	close(fd);
}

TEST_F(fds, a_moved_file_is_found_at_its_new_descriptor)
{
	int moved, found;

	ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
	fd_index_next_interval(self->x);
	moved = dup(self->fd[7]);
	ASSERT_LE(0, moved);
	close(self->fd[7]);
	self->fd[7] = moved;
	ASSERT_TRUE(fd_index_find(self->x, getpid(), self->ino[7], &found));
	ASSERT_EQ(moved, found);
	ASSERT_EQ(2, fd_index_listings(self->x));
}

/* A file only mapped, or closed, costs one listing, not one per interval. */
TEST_F(fds, a_file_without_descriptor_lists_once)
{
	/* Opened first, so that it cannot reuse the closed file's inode. */
	int fresh = new_file(), round, found;
	__u64 gone = self->ino[3];

	ASSERT_LE(0, fresh);
	close(self->fd[3]);
	self->fd[3] = fresh;
	self->ino[3] = ino_of(fresh);
	for (round = 0; round < 3; round++) {
		ASSERT_FALSE(fd_index_find(self->x, getpid(), gone, &found));
		ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
		fd_index_next_interval(self->x);
	}
	ASSERT_EQ(1, fd_index_listings(self->x));
}

TEST_F(fds, a_process_left_out_of_an_interval_is_listed_anew)
{
	ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
	fd_index_next_interval(self->x);
	fd_index_next_interval(self->x);
	ASSERT_TRUE(finds_all(self->x, self->fd, self->ino));
	ASSERT_EQ(2, fd_index_listings(self->x));
}

TEST_F(fds, a_process_gone_has_no_file)
{
	pid_t child = fork();
	int found;

	ASSERT_LE(0, child);
	if (!child)
		_exit(0);
	ASSERT_EQ(child, waitpid(child, NULL, 0));
	ASSERT_FALSE(fd_index_find(self->x, child, self->ino[0], &found));
	ASSERT_EQ(0, fd_index_listings(self->x));
}

TEST_HARNESS_MAIN
