/* SPDX-License-Identifier: GPL-2.0 */
/* gmemtop's picture of all guest_memfds at one moment, and its outputs. */
#ifndef GMEMTOP_REPORT_H
#define GMEMTOP_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "gmem.h"
#include "ident.h"

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#define FDINFO_MAX_RANGES	64	/* what fdinfo lists at most */
#define FDINFO_SUMMARY_CELLS	64	/* cells of gmem_summary at most */

struct gmem_range {
	unsigned long long start, end;	/* bytes */
	bool private;
};

/*
 * What the kernel counts of a guest_memfd over its whole life: fdinfo's
 * gmem_conversions_to_*, gmem_pages_to_* and gmem_eagain, [1] to
 * private.  Known once every one of them was read (lifetime_known()).
 */
struct gmem_lifetime {
	__u64 conversions[2];
	__u64 pages[2];
	__u64 eagain;
	unsigned int read;	/* a bit per count read */
};

/* What /proc/PID/fdinfo says of a guest_memfd; -1 when unknown. */
struct gmem_fdinfo {
	long long size;
	long long shared_pages;
	long long private_pages;
	char layout[256];	/* first ranges, "0x0-0x4000 private, ..." */
	struct gmem_range ranges[FDINFO_MAX_RANGES];
	int nr_ranges;		/* listed; more may exist */
	/*
	 * The whole file in cells of summary_cell bytes, at most
	 * FDINFO_SUMMARY_CELLS: 's' shared, 'p' private, 'm' mixed, '?'
	 * not in the attribute tree; "" from kernels that do not write it.
	 */
	char summary[FDINFO_SUMMARY_CELLS + 1];
	unsigned long long summary_cell;
	struct gmem_lifetime lifetime;
	/*
	 * Read while no conversion of the file was in flight: lifetime
	 * less gmemtop's counters is exactly what came before gmemtop.
	 */
	bool quiet;
};

/*
 * Takes fdinfo's gmem_summary_cell or gmem_summary line into @info;
 * false, @info unchanged, for any other line or a malformed one.
 */
bool parse_fdinfo_summary(const char *line, struct gmem_fdinfo *info);
/* The same for the lines of struct gmem_lifetime. */
bool parse_fdinfo_lifetime(const char *line, struct gmem_lifetime *lifetime);
bool lifetime_known(const struct gmem_lifetime *lifetime);

/*
 * A picture of the layout in @width cells: '.' shared, '#' private, '+'
 * both.  From the summary where the kernel writes one, else from the
 * ranges, '?' beyond those fdinfo lists.
 */
void layout_picture(const struct gmem_fdinfo *info, char *buf, int width);

struct file_row {
	__u64 ino;
	struct gmem_file_stats now;	/* summed over CPUs */
	/* At the previous interval, kept by collect.c; NULL: from zero. */
	const struct gmem_file_stats *then;
	struct gmem_fdinfo fdinfo;
	struct vm_ident ident;		/* the VMM's cgroup, QEMU's names */
};

#define HOLDER_STACK_LEN	512

/*
 * --holders: watch GUP for the whole run (ALWAYS), or only while
 * hotspots have new EAGAINs (AUTO, --holders=auto).
 */
enum holders_mode { HOLDERS_OFF, HOLDERS_ALWAYS, HOLDERS_AUTO };

/* Who held the page at the hotspot's last EAGAIN, as far as GUP showed. */
struct holder {
	bool known;
	__u32 pid;			/* the thread group */
	__u32 tid;			/* the thread that took the reference */
	char comm[GMEM_COMM_LEN];	/* the thread group leader's */
	__u32 kind;			/* enum gmem_hold_kind */
	char stack[HOLDER_STACK_LEN];	/* "fn+0x12;fn+0x34;..." innermost first */
	bool stack_hidden;		/* kptr_restrict: no symbol, no address */
};

struct hotspot_row {
	struct gmem_hotspot_key key;
	struct gmem_hotspot spot;
	struct holder holder;		/* with --holders */
};

struct report {
	struct file_row *files;
	int nr_files;
	struct hotspot_row *hotspots;
	int nr_hotspots;
	__u64 dropped;
	struct gmem_losses losses;	/* what the BPF maps had no room for */
	/*
	 * Hotspots deleted after --hotspot-window without an EAGAIN: their
	 * files' counts keep every EAGAIN they had.
	 */
	__u64 hotspots_expired;
	unsigned int max_files;		/* --max-files, for the loss message */
	enum holders_mode holders;	/* hotspots carry their holders */
	bool watching_gup;		/* with holders: attached to GUP now */
	bool cumulative;		/* figures since the start, not the interval */
	double interval;	/* seconds since the previous report */
	double elapsed;		/* seconds since the start */
	double timestamp;	/* wall clock: seconds since the epoch */
};

enum format { FORMAT_TABLE, FORMAT_JSON, FORMAT_CSV, FORMAT_HIST };

enum sort_key { SORT_RATE, SORT_EAGAIN, SORT_P99, SORT_PID, SORT_INO };

/* Rates and latency figures of a row, derived once per report. */
struct file_figures {
	double to_private_per_s;
	double to_shared_per_s;
	double pages_per_s;
	double eagain_per_s;
	double invalidations_per_s;
	unsigned long long p50_ns, p99_ns, max_ns, samples;
};

/*
 * Every figure is over the report's interval, from row->then to
 * row->now: rates, percentiles, maxima and --hist alike.  A cumulative
 * view is the same rule with row->then NULL (zero) and the time since
 * the start as the interval.
 */
const struct gmem_file_stats *then_of(const struct file_row *row);
void file_figures(const struct file_row *row, double interval,
		  struct file_figures *fig);
/* Only the latency fields of @fig, for one enum gmem_outcome. */
void outcome_figures(const struct file_row *row, unsigned int outcome,
		     struct file_figures *fig);
const char *outcome_name(unsigned int outcome);
const char *hold_kind_name(unsigned int kind);
/* "always", "auto, watching" or "auto, idle": the status --holders shows. */
const char *holders_status(const struct report *r);
/*
 * Why a hotspot's holder is unknown, where the mode tells: with
 * --holders=auto GUP was not watched when it was taken.  NULL otherwise.
 */
const char *unknown_holder_why(const struct report *r);
/* "files not tracked: N ...  events not counted: N ...": what was lost. */
#define LOSSES_LEN	256
void format_losses(char *buf, size_t len, const struct report *r);
/* The same and a newline. */
void print_losses(FILE *out, const struct report *r);
void report_sort(struct report *r, enum sort_key key);
int parse_sort_key(const char *name, enum sort_key *key);
const char *cause_name(unsigned int cause);
const char *phase_name(unsigned int phase);
/* What memory with attributes @attrs is: "private" or "shared". */
const char *attributes_name(__u64 attrs);

/* @comm (up to GMEM_COMM_LEN bytes) for a terminal: '?' for controls. */
const char *printable(char buf[GMEM_COMM_LEN], const char *comm);
/*
 * At most @max bytes of @s into @buf (@size bytes) for a terminal: bytes
 * it would interpret as "?".
 */
const char *printable_bytes(char *buf, size_t size, const char *s,
			    size_t max);
/* The VM's name (QEMU's -name) for a table, "-" when it has none. */
const char *printable_vm_name(char *buf, size_t size,
			      const struct vm_ident *id);

/* "12.5", or "-" when fdinfo could not be read. */
const char *format_mib(char *buf, size_t len, long long pages);

/* @r in @format; false once @out cannot be written (its reader is gone). */
bool report_print(FILE *out, const struct report *r, enum format format);
void print_table(FILE *out, const struct report *r);
void print_csv_header(FILE *out);
void print_csv(FILE *out, const struct report *r);
void print_json(FILE *out, const struct report *r);
struct json;
/* "phases_ns":{"lock":N,...}, for the report and for snoop records. */
void print_json_phases(struct json *j, const __u64 *phase_ns);
void print_hist(FILE *out, const struct report *r);

/* Without the kvm_gmem events: what fexit on guest_memfd shows. */
struct stock_row {
	__u64 ino;
	struct gmem_stock_stats stats;	/* summed over CPUs */
};

struct stock_report {
	struct stock_row *files;
	int nr_files;
	__u64 files_not_tracked;	/* files the map had no room for */
	__u64 events_not_counted;	/* the events of those files */
	double timestamp;	/* wall clock: seconds since the epoch */
};

void print_stock_table(FILE *out, const struct stock_report *r);
void print_stock_json(FILE *out, const struct stock_report *r);
bool stock_print(FILE *out, const struct stock_report *r, enum format format);

#endif
