// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop's full-screen view, with the manners of kvm_stat and top: one
 * letter per command, listed by 'h'.
 */
#include <curses.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmemtop.h"
#include "hist.h"

#define HELP_TEXT							\
	"gmemtop - guest_memfd conversions, live\n\n"			\
	"  Up/Down  select a guest_memfd      Enter/d  its details\n"	\
	"  s        next sort order           r        reset counters\n"\
	"  p        filter by VMM pid         v        filter by VM id\n"\
	"  f        clear the filters         +/-      slower/faster\n"	\
	"  h        this help                 q        quit\n\n"	\
	"Rates are per second over the last interval; latencies are\n"	\
	"those of successful conversions since the start (or reset).\n"	\
	"\nPress any key."

struct view {
	int selected;
	bool detail;
	pid_t pid;		/* filters, 0 for none */
	__u32 vm;
};

static bool shown(const struct view *v, const struct file_row *row)
{
	return (!v->pid || row->now.pid == (__u32)v->pid) &&
	       (!v->vm || row->now.vm == v->vm);
}

static void draw_header(const struct view *v, const struct report *r)
{
	static const char *const sorts[] = { "rate", "eagain", "p99", "pid",
					     "ino" };
	char stamp[16];
	time_t now = time(NULL);

	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
	attron(A_BOLD);
	mvprintw(0, 0, "gmemtop %s  interval %.1fs  sort %s  guest_memfds %d"
		 "  dropped %llu", stamp, env.delay, sorts[env.sort],
		 r->nr_files, (unsigned long long)r->dropped);
	attroff(A_BOLD);
	if (v->pid || v->vm)
		printw("  filter pid %d vm %u", v->pid, v->vm);
	mvprintw(1, 0, "h help  q quit  s sort  d detail  r reset");
}

static void draw_table(const struct view *v, const struct report *r)
{
	int i, line = 3;

	attron(A_REVERSE);
	mvprintw(line++, 0, "%7s %-12s %4s %8s %8s %8s %8s %8s %8s %9s %9s %9s %8s %8s",
		 "PID", "COMM", "VM", "INO", "SHR_MiB", "PRV_MiB", "->PRV/s",
		 "->SHR/s", "PAGES/s", "P50_us", "P99_us", "MAX_us",
		 "EAGAIN/s", "INVAL/s");
	attroff(A_REVERSE);
	for (i = 0; i < r->nr_files && line < LINES; i++) {
		const struct file_row *row = &r->files[i];
		struct file_figures fig;
		char shared[32], private[32];

		if (!shown(v, row))
			continue;
		file_figures(row, r->interval, &fig);
		if (i == v->selected)
			attron(A_STANDOUT);
		mvprintw(line++, 0, "%7u %-12.12s %4u %8llu %8s %8s %8.1f %8.1f %8.1f %9.1f %9.1f %9.1f %8.1f %8.1f",
			 row->now.pid, row->now.comm, row->now.vm,
			 (unsigned long long)row->ino,
			 format_mib(shared, sizeof(shared),
				    row->fdinfo.shared_pages),
			 format_mib(private, sizeof(private),
				    row->fdinfo.private_pages),
			 fig.to_private_per_s, fig.to_shared_per_s,
			 fig.pages_per_s, fig.p50_ns / 1e3, fig.p99_ns / 1e3,
			 fig.max_ns / 1e3, fig.eagain_per_s,
			 fig.invalidations_per_s);
		attroff(A_STANDOUT);
	}
}

/*
 * The latency histogram as bars, one line per power of two (the view's
 * resolution; percentiles use the fine buckets).
 */
static int draw_histogram(const struct gmem_file_stats *s, int line)
{
	unsigned long long rows[HIST_ROWS], most = 0;
	int b, first = -1, last = -1, width = COLS - 36;

	hist_rows(s->hist, rows);
	for (b = 0; b < HIST_ROWS; b++) {
		if (!rows[b])
			continue;
		if (first < 0)
			first = b;
		last = b;
		if (rows[b] > most)
			most = rows[b];
	}
	mvprintw(line++, 0, "latency of successful conversions: %llu samples",
		 hist_total(s->hist));
	for (b = first; first >= 0 && b <= last && line < LINES - 6; b++) {
		mvprintw(line, 0, "%10.1f - %-10.1f us %8llu |",
			 hist_row_low(b) / 1e3, hist_row_low(b + 1) / 1e3,
			 rows[b]);
		mvhline(line++, 36, '*', width > 0 ? rows[b] * width / most : 0);
	}
	return line;
}

static int draw_phases(const struct gmem_file_stats *s, int line)
{
	unsigned long long total = 0;
	unsigned int p;

	for (p = 0; p < GMEM_NR_PHASES; p++)
		total += s->phase_ns[p];
	mvprintw(line++, 0, "time by phase:");
	for (p = 0; p < GMEM_NR_PHASES; p++)
		printw(" %s %.0f%%", phase_name(p),
		       total ? 100.0 * s->phase_ns[p] / total : 0);
	return line;
}

static void draw_detail(const struct report *r, const struct file_row *row)
{
	int i, line = 3;

	mvprintw(line++, 0, "guest_memfd ino %llu  VMM %u (%s)  VM %u  size %lld",
		 (unsigned long long)row->ino, row->now.pid, row->now.comm,
		 row->now.vm, row->fdinfo.size);
	if (row->fdinfo.size > 0 && COLS > 12) {
		char picture[COLS];

		layout_picture(&row->fdinfo, picture, COLS - 11);
		mvprintw(line++, 0, "layout: [%s]", picture);
		mvprintw(line++, 0, "        . shared  # private  + both  ? not listed");
	}
	mvprintw(line++, 0, "ranges: %.*s", COLS > 9 ? COLS - 9 : 0,
		 row->fdinfo.layout);
	mvprintw(line++, 0, "conversions: to private %llu, to shared %llu; pages %llu/%llu; EAGAIN %llu",
		 (unsigned long long)row->now.conversions[1],
		 (unsigned long long)row->now.conversions[0],
		 (unsigned long long)row->now.pages[1],
		 (unsigned long long)row->now.pages[0],
		 (unsigned long long)row->now.eagain);
	line = draw_phases(&row->now, line + 1);
	line = draw_histogram(&row->now, line + 1);
	mvprintw(++line, 0, "EAGAIN hotspots:  %12s %8s %8s %8s %10s", "OFFSET",
		 "COUNT", "REFS", "EXPECT", "CAUSE");
	for (i = 0; i < r->nr_hotspots && line + 1 < LINES; i++) {
		const struct hotspot_row *h = &r->hotspots[i];

		if (h->key.ino != row->ino)
			continue;
		mvprintw(++line, 18, "%#12llx %8llu %8d %8d %10s",
			 (unsigned long long)h->key.offset,
			 (unsigned long long)h->spot.count, h->spot.refcount,
			 h->spot.expected, cause_name(h->spot.cause));
	}
}

static void show_help(void)
{
	erase();
	mvprintw(0, 0, HELP_TEXT);
	refresh();
	timeout(-1);
	getch();
}

static long prompt_number(const char *what)
{
	char buf[32] = "";

	mvprintw(LINES - 1, 0, "%s (0 for any): ", what);
	clrtoeol();
	echo();
	timeout(-1);
	getnstr(buf, sizeof(buf) - 1);
	noecho();
	return strtol(buf, NULL, 10);
}

/* Returns false to quit. */
static bool handle_key(int key, struct view *v, struct report_state *state,
		       int nr_files)
{
	switch (key) {
	case 'q':
		return false;
	case 'h':
	case '?':
		show_help();
		break;
	case KEY_UP:
		if (v->selected > 0)
			v->selected--;
		break;
	case KEY_DOWN:
		if (v->selected + 1 < nr_files)
			v->selected++;
		break;
	case 'd':
	case '\n':
	case KEY_ENTER:
		v->detail = !v->detail;
		break;
	case 's':
		env.sort = (env.sort + 1) % (SORT_INO + 1);
		break;
	case 'r':
		report_reset(state);
		break;
	case 'p':
		v->pid = prompt_number("VMM pid");
		break;
	case 'v':
		v->vm = prompt_number("VM id");
		break;
	case 'f':
		v->pid = 0;
		v->vm = 0;
		break;
	case '+':
		env.delay *= 2;
		break;
	case '-':
		if (env.delay > 0.2)
			env.delay /= 2;
		break;
	}
	return true;
}

int view_run(struct report_state *state, volatile sig_atomic_t *exiting)
{
	struct view v = {};
	double start = now_s(), last = start;
	bool running = true;

	initscr();
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);

	while (running && !*exiting) {
		struct report *r;
		double now = now_s();
		int key;

		r = report_take(state, now - last, now - start);
		last = now;
		if (!r)
			break;
		if (v.selected >= r->nr_files)
			v.selected = r->nr_files ? r->nr_files - 1 : 0;

		erase();
		draw_header(&v, r);
		if (v.detail && r->nr_files)
			draw_detail(r, &r->files[v.selected]);
		else
			draw_table(&v, r);
		refresh();

		timeout(env.delay * 1000);
		key = getch();
		if (key != ERR)
			running = handle_key(key, &v, state, r->nr_files);
	}
	endwin();
	return 0;
}
