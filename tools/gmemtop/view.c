// SPDX-License-Identifier: GPL-2.0
/*
 * gmemtop's full-screen view, with the manners of kvm_stat and top: one
 * letter per command, listed by 'h'.
 */
#include <curses.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "gmemtop.h"
#include "hist.h"
#include "terminal.h"

#define HELP_TEXT							\
	"gmemtop - guest_memfd conversions, live\n\n"			\
	"  Up/Down  select a guest_memfd      Enter/d  its details\n"	\
	"  s        next sort order           r        reset counters\n"\
	"  p        filter by VMM pid         v        filter by VM id\n"\
	"  f        clear the filters         +/-      slower/faster (0.1-60s)\n"\
	"  c        cumulative/interval       h        this help\n"	\
	"  n        names: COMM, VM_NAME, CGROUP  q    quit\n\n"		\
	"Rates and latencies are over the last interval; with c, since\n"\
	"the start (or reset).  Latencies: conversions that changed pages.\n"\
	"\nPress any key."

/* Which name of the VMM the table's second column shows ('n'). */
enum name_column { COLUMN_COMM, COLUMN_VM_NAME, COLUMN_CGROUP, NR_COLUMNS };

struct view {
	__u64 selected;		/* inode of the selected row, 0 for none */
	enum name_column column;
	const char *cgroup;	/* --cgroup, shown in the header */
	bool detail;		/* of the selected guest_memfd */
	pid_t pid;		/* filters, 0 for none */
	__u32 vm;
	double delay;
	enum sort_key sort;
};

static bool shown(const struct view *v, const struct file_row *row)
{
	return (!v->pid || row->now.pid == (__u32)v->pid) &&
	       (!v->vm || row->now.vm == v->vm);
}

/* Index of the selected row in @r, or -1 when it is gone or hidden. */
static int selected_row(const struct view *v, const struct report *r)
{
	int i;

	for (i = 0; i < r->nr_files; i++)
		if (r->files[i].ino == v->selected && shown(v, &r->files[i]))
			return i;
	return -1;
}

/*
 * Moves the selection @step shown rows up (-1) or down (+1); a selection
 * that is gone or hidden by a filter falls to the first shown row.
 */
static void move_selection(struct view *v, const struct report *r, int step)
{
	int i = selected_row(v, r), next;

	if (i < 0)
		step = 1;
	for (next = i + step; next >= 0 && next < r->nr_files; next += step) {
		if (shown(v, &r->files[next])) {
			v->selected = r->files[next].ino;
			return;
		}
	}
	if (i < 0)
		v->selected = 0;
}

/*
 * What d shows; with --holders=auto, whether GUP is watched now instead,
 * within 80 columns.
 */
static const char *detail_hint(const struct report *r, char *buf, size_t len)
{
	if (r->holders != HOLDERS_AUTO)
		return r->holders ? " (EAGAIN pages, their holders)" : "";
	snprintf(buf, len, " (holders: %s)", holders_status(r));
	return buf;
}

static void draw_header(const struct view *v, const struct report *r)
{
	static const char *const sorts[] = { "rate", "eagain", "p99", "pid",
					     "ino" };
	char stamp[16], losses[LOSSES_LEN], hint[40];
	time_t now = time(NULL);

	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
	attron(A_BOLD);
	mvprintw(0, 0, "gmemtop %s  interval %.1fs  sort %s  guest_memfds %d"
		 "  dropped %llu%s", stamp, v->delay, sorts[v->sort],
		 r->nr_files, (unsigned long long)r->dropped,
		 r->cumulative ? "  CUMULATIVE" : "");
	attroff(A_BOLD);
	if (v->pid || v->vm)
		printw("  filter pid %d vm %u", v->pid, v->vm);
	if (v->cgroup)
		printw("  cgroup %s", v->cgroup);
	mvprintw(1, 0, "h help  q quit  s sort  d detail%s  r reset  n names",
		 detail_hint(r, hint, sizeof(hint)));
	/* A line of its own, cut at the edge rather than wrapped. */
	format_losses(losses, sizeof(losses), r);
	mvprintw(2, 0, "%.*s", COLS, losses);
}

/* The first shown row to draw so that the selected one is on screen. */
static int first_row(const struct view *v, const struct report *r, int room)
{
	int i, sel = selected_row(v, r), before = 0;

	for (i = sel; i > 0; i--)
		before += shown(v, &r->files[i - 1]);
	for (i = 0; before >= room && i < sel; i++)
		before -= shown(v, &r->files[i]);
	return i;
}

/*
 * @s (at most @max bytes) for a terminal, in @buf of @size: '?' for
 * controls and for every byte outside ASCII, as process names are.
 */
/* Width of the name column: kept narrow, so that 80 columns show rates. */
static const int column_width[NR_COLUMNS] = { 12, 16, 24 };
static const char *const column_title[NR_COLUMNS] = {
	"COMM", "VM_NAME", "CGROUP"
};

/*
 * The row's name in the chosen column, "-" when unknown.  A cgroup too
 * long for the column keeps its end: the scope names the VM, the slices
 * above it do not.
 */
static const char *row_name(const struct view *v, const struct file_row *row,
			    char *buf, size_t size)
{
	const struct vm_ident *id = &row->ident;
	size_t len, width = column_width[COLUMN_CGROUP];

	switch (v->column) {
	case COLUMN_VM_NAME:
		return printable_vm_name(buf, size, id);
	case COLUMN_CGROUP:
		if (!id->cgroup[0])
			return "-";
		len = strlen(id->cgroup);
		if (len <= width)
			return printable_bytes(buf, size, id->cgroup, len);
		buf[0] = '<';
		printable_bytes(buf + 1, size - 1,
			       id->cgroup + len - (width - 1), width - 1);
		return buf;
	default:
		return printable_bytes(buf, size, row->now.comm,
				      sizeof(row->now.comm));
	}
}

static void draw_table(const struct view *v, const struct report *r)
{
	int i, line = 3, w = column_width[v->column];

	attron(A_REVERSE);
	mvprintw(line++, 0, "%7s %-*s %10s %8s %8s %8s %8s %8s %8s %9s %9s %9s %8s %8s",
		 "PID", w, column_title[v->column], "VM", "INO", "SHR_MiB",
		 "PRV_MiB", "->PRV/s",
		 "->SHR/s", "PAGES/s", "P50_us", "P99_us", "MAX_us",
		 "EAGAIN/s", "INVAL/s");
	attroff(A_REVERSE);
	for (i = first_row(v, r, LINES - line); i < r->nr_files && line < LINES;
	     i++) {
		const struct file_row *row = &r->files[i];
		struct file_figures fig;
		char shared[32], private[32], name[IDENT_NAME_LEN];

		if (!shown(v, row))
			continue;
		file_figures(row, r->interval, &fig);
		if (row->ino == v->selected)
			attron(A_STANDOUT);
		mvprintw(line++, 0, "%7u %-*.*s %10u %8llu %8s %8s %8.1f %8.1f %8.1f %9.1f %9.1f %9.1f %8.1f %8.1f",
			 row->now.pid, w, w,
			 row_name(v, row, name, sizeof(name)),
			 row->now.vm, (unsigned long long)row->ino,
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

static void draw_layout(const struct gmem_fdinfo *info, int line)
{
	char picture[COLS > 12 ? COLS : 12];

	if (info->size <= 0 || COLS <= 12)
		return;
	layout_picture(info, picture, COLS - 11);
	mvprintw(line, 0, "layout: [%s]", picture);
	mvprintw(line + 1, 0, "        . shared  # private  + both%s",
		 info->summary[0] ? "  ? unknown" :
				    "  ? not listed (no summary)");
}

static void draw_hotspots(const struct report *r, __u64 ino, int line)
{
	const char *why = unknown_holder_why(r);
	char comm[GMEM_COMM_LEN];
	int i;

	mvprintw(line, 0, "EAGAIN hotspots:  %12s %8s %8s %8s %10s", "OFFSET",
		 "COUNT", "REFS", "EXPECT", "CAUSE");
	for (i = 0; i < r->nr_hotspots && line + 1 < LINES; i++) {
		const struct hotspot_row *h = &r->hotspots[i];

		if (h->key.ino != ino)
			continue;
		mvprintw(++line, 18, "%#12llx %8llu %8d %8d %10s",
			 (unsigned long long)h->key.offset,
			 (unsigned long long)h->spot.count, h->spot.refcount,
			 h->spot.expected, cause_name(h->spot.cause));
		if (r->holders)
			printw("  held by %s", h->holder.known ?
			       printable(comm, h->holder.comm) : "unknown");
		if (h->holder.known)
			printw(" (pid %u, %s)", h->holder.pid,
			       hold_kind_name(h->holder.kind));
		else if (r->holders && why)
			printw(" (%s)", why);
	}
}

/* The names operators know the VM by: a line, or none when none is known. */
static int draw_names(const struct vm_ident *id, int line)
{
	char name[IDENT_NAME_LEN], cgroup[IDENT_CGROUP_LEN];

	if (!id->name[0] && !id->uuid[0] && !id->cgroup[0])
		return line;
	mvprintw(line++, 0, "name %s  uuid %s  cgroup %s",
		 printable_vm_name(name, sizeof(name), id),
		 id->uuid[0] ? id->uuid : "-",
		 id->cgroup[0] ? printable_bytes(cgroup, sizeof(cgroup),
						id->cgroup,
						sizeof(id->cgroup)) : "-");
	return line;
}

static void draw_detail(const struct view *v, const struct report *r)
{
	int i = selected_row(v, r), line = 3;
	const struct file_row *row;
	char comm[GMEM_COMM_LEN];

	if (i < 0) {
		mvprintw(line, 0, "guest_memfd ino %llu: not tracked now "
			 "(closed, reset or filtered out); d for the table",
			 (unsigned long long)v->selected);
		return;
	}
	row = &r->files[i];
	mvprintw(line++, 0, "guest_memfd ino %llu  VMM %u (%s)  VM %u  size %lld",
		 (unsigned long long)row->ino, row->now.pid,
		 printable(comm, row->now.comm), row->now.vm, row->fdinfo.size);
	line = draw_names(&row->ident, line);
	draw_layout(&row->fdinfo, line);
	line += 2;
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
	draw_hotspots(r, row->ino, line + 1);
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

/* What a key asks for: quit, redraw the last report, or take a new one. */
enum action { ACTION_QUIT, ACTION_REDRAW, ACTION_RETAKE };

static enum action handle_key(int key, struct view *v,
				  struct report_state *state,
				  const struct report *r)
{
	switch (key) {
	case 'q':
		return ACTION_QUIT;
	case 'h':
	case '?':
		show_help();
		break;
	case KEY_UP:
		move_selection(v, r, -1);
		break;
	case KEY_DOWN:
		move_selection(v, r, 1);
		break;
	case 'd':
	case '\n':
	case KEY_ENTER:
		v->detail = !v->detail && selected_row(v, r) >= 0;
		break;
	case 's':
		v->sort = (v->sort + 1) % (SORT_INO + 1);
		break;
	case 'r':
		report_reset(state);
		return ACTION_RETAKE;
	case 'c':
		report_toggle_cumulative(state);
		return ACTION_RETAKE;
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
	case 'n':
		v->column = (v->column + 1) % NR_COLUMNS;
		break;
	case '+':
		v->delay = fmin(v->delay * 2, VIEW_DELAY_MAX);
		break;
	case '-':
		v->delay = fmax(v->delay / 2, VIEW_DELAY_MIN);
		break;
	}
	return ACTION_REDRAW;
}

static void draw(struct view *v, struct report *r)
{
	report_sort(r, v->sort);
	if (selected_row(v, r) < 0 && !v->detail)
		move_selection(v, r, 1);
	erase();
	draw_header(v, r);
	if (v->detail)
		draw_detail(v, r);
	else
		draw_table(v, r);
	refresh();
}

/*
 * ncurses on the terminal of stdin and stdout; NULL when it has none.
 * From here to stop_screen(), a fatal signal gives the terminal back.
 */
static SCREEN *start_screen(void)
{
	SCREEN *screen;

	terminal_save();
	screen = newterm(NULL, stdout, stdin);
	if (!screen) {
		fprintf(stderr, "gmemtop: cannot drive this terminal "
			"(TERM=%s); use -b\n", getenv("TERM") ?: "");
		return NULL;
	}
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	terminal_guard();
	return screen;
}

static void stop_screen(SCREEN *screen)
{
	endwin();
	terminal_unguard();
	delscreen(screen);
}

/*
 * A report every delay; a key redraws the last one at once (sort,
 * selection, filters, resize) without cutting the interval short.
 */
int view_run(struct report_state *state, const struct env *env,
	     volatile sig_atomic_t *exiting)
{
	struct view v = { .delay = fmax(env->delay, VIEW_DELAY_MIN),
			  .sort = env->sort,
			  .cgroup = env->cgroup_dir ? env->cgroup : NULL };
	double start = monotonic_s(), last = start, due = start;
	enum action action = ACTION_REDRAW;
	struct report *r = NULL;
	SCREEN *screen;

	screen = start_screen();
	if (!screen)
		return EXIT_FAILURE;
	while (action != ACTION_QUIT && !*exiting) {
		double now = monotonic_s();
		int key;

		if (now >= due || action == ACTION_RETAKE) {
			r = report_take(state, now - last, now - start);
			if (!r)
				break;
			last = now;
			due = now + v.delay;
		}
		draw(&v, r);
		timeout(fmax(due - monotonic_s(), 0) * 1000);
		key = getch();
		action = key == ERR ? ACTION_REDRAW :
			 handle_key(key, &v, state, r);
	}
	stop_screen(screen);
	return r ? 0 : EXIT_FAILURE;
}
