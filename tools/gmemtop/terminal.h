/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The full-screen view's terminal, given back as it was even when gmemtop
 * dies of a signal (SIGQUIT from Ctrl-\, SIGSEGV, SIGABRT...), rather
 * than left without echo or line editing, on the view's screen.
 */
#ifndef GMEMTOP_TERMINAL_H
#define GMEMTOP_TERMINAL_H

/* The terminal's modes, before curses changes them. */
void terminal_save(void);
/*
 * Once curses has the terminal: until terminal_unguard(), a fatal signal
 * undoes what curses did, then takes its course as it would have.
 */
void terminal_guard(void);
void terminal_unguard(void);

#endif
