// SPDX-License-Identifier: GPL-2.0
#include <pthread.h>

#include "report.h"
#include "signals.h"

static const int ending[] = { SIGINT, SIGTERM, SIGHUP };

void catch_ending_signals(void (*handler)(int sig))
{
	struct sigaction sa = { .sa_handler = handler };
	unsigned int i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(ending); i++)
		sigaction(ending[i], &sa, NULL);
}

void hold_signals(sigset_t *saved)
{
	sigset_t set;
	unsigned int i;

	sigemptyset(&set);
	for (i = 0; i < ARRAY_SIZE(ending); i++)
		sigaddset(&set, ending[i]);
	pthread_sigmask(SIG_BLOCK, &set, saved);
}

void release_signals(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}
