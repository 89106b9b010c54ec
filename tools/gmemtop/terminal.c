// SPDX-License-Identifier: GPL-2.0
#include <curses.h>
#include <signal.h>
#include <stdbool.h>
#include <term.h>
#include <termios.h>
#include <unistd.h>

#include "report.h"
#include "terminal.h"

/* What the kernel or a user sends to end a process that misbehaves. */
static const int fatal[] = {
	SIGQUIT, SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV,
};

static struct sigaction before[ARRAY_SIZE(fatal)];
static bool saved;
static struct termios modes;
/* What endwin() would send: attributes off, cursor, keypad, screen. */
static char undo[256];
static size_t undo_len;

void terminal_save(void)
{
	saved = !tcgetattr(STDOUT_FILENO, &modes);
}

static int add_to_undo(int c)
{
	if (undo_len < sizeof(undo))
		undo[undo_len++] = c;
	return c;
}

/* Terminfo's string @cap, with its padding, at the end of undo[]. */
static void add_capability(const char *cap)
{
	char *s = tigetstr(cap);

	if (s && s != (char *)-1)
		tputs(s, 1, add_to_undo);
}

/*
 * Only async-signal-safe calls: endwin() is not one, so the strings it
 * would send were prepared in advance.  The signal, blocked while this
 * runs, comes again on return, to the handler that was there before
 * (the default one, or a sanitizer's).
 */
static void give_back(int sig)
{
	unsigned int i;
	ssize_t sent;

	sent = write(STDOUT_FILENO, undo, undo_len);
	(void)sent;	/* dying anyway: nothing better to do */
	if (saved)
		tcsetattr(STDOUT_FILENO, TCSADRAIN, &modes);
	for (i = 0; i < ARRAY_SIZE(fatal); i++)
		if (fatal[i] == sig)
			sigaction(sig, &before[i], NULL);
	raise(sig);
}

void terminal_guard(void)
{
	struct sigaction sa = { .sa_handler = give_back };
	unsigned int i;

	undo_len = 0;
	add_capability("sgr0");
	add_capability("cnorm");
	add_capability("rmkx");
	add_capability("rmcup");
	sigfillset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(fatal); i++)
		sigaction(fatal[i], &sa, &before[i]);
}

void terminal_unguard(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fatal); i++)
		sigaction(fatal[i], &before[i], NULL);
}
