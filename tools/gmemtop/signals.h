/* SPDX-License-Identifier: GPL-2.0 */
/* The signals that end gmemtop: SIGINT, SIGTERM and SIGHUP. */
#ifndef GMEMTOP_SIGNALS_H
#define GMEMTOP_SIGNALS_H

#include <signal.h>

/* @handler for each of them, without SA_RESTART. */
void catch_ending_signals(void (*handler)(int sig));
/*
 * They are held, in the calling thread, while output is written: one
 * landing in a write into a full pipe would fail it (EINTR) and stdio
 * would drop the rest of a report.  Waits stay interruptible.  A thread
 * created meanwhile never takes them.
 */
void hold_signals(sigset_t *saved);
void release_signals(const sigset_t *saved);

#endif
