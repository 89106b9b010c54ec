/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The model of one guest_memfd that the fuzzers check the kernel against:
 * each page's attributes, contents, poison and the references held on it
 * from outside guest_memfd, fdinfo's counters, and what
 * KVM_SET_MEMORY_ATTRIBUTES2 must answer in a given state.  The
 * single-threaded fuzzer steps it along with the kernel; the concurrent
 * one searches for a serial order of its history that the model accepts.
 *
 * The includer defines GMEM_MODEL_PAGES (the file's size in pages) and
 * GMEM_MODEL_PINS (how many references may be held at once).  A page's
 * content is 0 for zeros, else a nonzero value that names what was last
 * written there (how it is laid out in the page is the includer's).
 */
#ifndef GMEM_MODEL_H
#define GMEM_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define GMEM_MODEL_PAGE		4096ULL
#define GMEM_MODEL_SIZE		(GMEM_MODEL_PAGES * GMEM_MODEL_PAGE)

/* A reference held on a page from outside guest_memfd (a pipe, a pin). */
struct model_pin {
	bool used;
	bool attached;		/* the page is still in the file */
	int page;
};

/*
 * What the kernel should hold.  No pointers: a state is compared and
 * hashed as bytes, so it is set up by model_init() and copied whole.
 */
struct model {
	uint64_t content[GMEM_MODEL_PAGES];
	/* fdinfo counters: [1] is to private */
	uint64_t conversions[2], pages_converted[2], eagain;
	struct model_pin pins[GMEM_MODEL_PINS];
	bool private[GMEM_MODEL_PAGES];
	bool poisoned[GMEM_MODEL_PAGES];
	bool released;		/* the last reference to the file is gone */
};

static inline void model_init(struct model *m, bool init_shared)
{
	int i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < GMEM_MODEL_PAGES; i++)
		m->private[i] = !init_shared;
}

static inline bool model_page_pinned(const struct model *m, int i)
{
	int p;

	for (p = 0; p < GMEM_MODEL_PINS; p++)
		if (m->pins[p].used && m->pins[p].attached && m->pins[p].page == i)
			return true;
	return false;
}

/* The first page of [@first, @end) for which @test holds, or -1. */
static inline int model_first(const struct model *m, const bool *test,
			      int first, int end)
{
	int i;

	for (i = first; i < end; i++)
		if (test[i])
			return i;
	return -1;
}

/* Flags the ABI refuses: all but one content mode in RFC v5, all in v8. */
static inline bool model_flags_invalid(uint64_t flags)
{
	if (!GMEM_RFC_V5)
		return flags;
	return (flags & ~(MODE_ZERO | MODE_PRESERVE)) ||
	       flags == (MODE_ZERO | MODE_PRESERVE);
}

static inline bool model_args_invalid(const struct kvm_memory_attributes2 *a)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(a->reserved); i++)
		if (a->reserved[i])
			return true;
	/* Only RFC v5 reads error_offset on input. */
	return (GMEM_RFC_V5 && a->error_offset) ||
	       (a->attributes & ~KVM_MEMORY_ATTRIBUTE_PRIVATE) ||
	       model_flags_invalid(a->flags) ||
	       !a->size || a->offset % GMEM_MODEL_PAGE ||
	       a->size % GMEM_MODEL_PAGE ||
	       a->offset + a->size < a->offset ||
	       a->offset + a->size > GMEM_MODEL_SIZE;
}

/*
 * The first poisoned page of [@first, @end) that fails a request, or -1:
 * RFC v5 refuses them, v8 converts them like any other page.
 */
static inline int model_first_refused_poison(const struct model *m,
					     int first, int end)
{
	return GMEM_RFC_V5 ? model_first(m, m->poisoned, first, end) : -1;
}

/* Whether storing @a's attributes changes any page's. */
static inline bool model_changes(const struct model *m,
				 const struct kvm_memory_attributes2 *a)
{
	int first = a->offset / GMEM_MODEL_PAGE;
	int end = first + a->size / GMEM_MODEL_PAGE, i;

	for (i = first; i < end; i++)
		if (m->private[i] != !!a->attributes)
			return true;
	return false;
}

/*
 * The errno the ABI requires of @a in state @m (0 for success), and in
 * *@error_offset the offset the kernel must report with it, when every
 * reference held on a page is one the model knows of.  The order is the
 * kernel's: argument checks, content mode, poison anywhere in the range
 * (RFC v5), then references, which only a change to private looks at.
 */
static inline int model_expected(const struct model *m,
				  const struct kvm_memory_attributes2 *a,
				  uint64_t *error_offset)
{
	int first = a->offset / GMEM_MODEL_PAGE;
	int end = first + a->size / GMEM_MODEL_PAGE, i;

	if (model_args_invalid(a))
		return EINVAL;
	if (a->attributes && a->flags == MODE_ZERO) {
		*error_offset = a->offset;
		return EOPNOTSUPP;
	}
	i = model_first_refused_poison(m, first, end);
	if (i >= 0) {
		*error_offset = i * GMEM_MODEL_PAGE;
		return EHWPOISON;
	}
	if (!a->attributes || !model_changes(m, a))
		return 0;
	for (i = first; i < end; i++) {
		if (model_page_pinned(m, i)) {
			*error_offset = i * GMEM_MODEL_PAGE;
			return EAGAIN;
		}
	}
	return 0;
}

/*
 * Whether @a may fail with EAGAIN at page @page in state @m when pages
 * in @transient (a bit per page) may hold a passing reference: one the
 * kernel takes for a moment, for a fault or a munmap() of another task
 * that overlaps the conversion in time.  The kernel reports the first
 * page with a reference beyond its own, so no known pin may come before.
 */
static inline bool model_busy_allowed(const struct model *m,
				      const struct kvm_memory_attributes2 *a,
				      int page, uint64_t transient)
{
	int first = a->offset / GMEM_MODEL_PAGE;
	int end = first + a->size / GMEM_MODEL_PAGE, i;

	if (page < first || page >= end || !a->attributes ||
	    model_args_invalid(a) || a->flags == MODE_ZERO ||
	    model_first_refused_poison(m, first, end) >= 0 || !model_changes(m, a))
		return false;
	for (i = first; i < page; i++)
		if (model_page_pinned(m, i))
			return false;
	return model_page_pinned(m, page) || (transient >> page & 1);
}

/* A successful @a: attributes, content mode, counters. */
static inline void model_convert(struct model *m,
				 const struct kvm_memory_attributes2 *a)
{
	int first = a->offset / GMEM_MODEL_PAGE;
	int end = first + a->size / GMEM_MODEL_PAGE, i;
	bool to_private = a->attributes;
	uint64_t changed = 0;

	for (i = first; i < end; i++) {
		changed += m->private[i] != to_private;
		m->private[i] = to_private;
		/*
		 * ZERO applies to the whole range, changed or not; flags = 0
		 * and PRESERVE keep every byte.
		 */
		if (a->flags == MODE_ZERO)
			m->content[i] = 0;
	}
	if (changed) {
		m->conversions[to_private]++;
		m->pages_converted[to_private] += changed;
	}
}

/*
 * A hole punched over [@first, @end): fresh pages that read zeros, no
 * longer poisoned, and references held on the old ones no longer count.
 * Attributes stay.
 */
static inline void model_punch(struct model *m, int first, int end)
{
	int i, p;

	for (i = first; i < end; i++) {
		m->content[i] = 0;
		m->poisoned[i] = false;
	}
	for (p = 0; p < GMEM_MODEL_PINS; p++)
		if (m->pins[p].page >= first && m->pins[p].page < end)
			m->pins[p].attached = false;
}

/* fdinfo lists this many ranges, and counts the others. */
#define FDINFO_MAX_RANGES	64
/* fdinfo's summary shows the file in at most this many cells. */
#define FDINFO_CELLS		64

/* Each cell: 's' all shared, 'p' all private, 'm' both. */
static inline size_t model_summary(const struct model *m, char *buf, size_t len)
{
	int cell_pages = DIV_ROUND_UP(GMEM_MODEL_PAGES, FDINFO_CELLS), c, i;
	size_t n = snprintf(buf, len, "gmem_summary_cell:\t%llu\ngmem_summary:\t",
			    cell_pages * GMEM_MODEL_PAGE);

	for (c = 0; c * cell_pages < GMEM_MODEL_PAGES; c++) {
		int kinds = 0;

		for (i = c * cell_pages;
		     i < (c + 1) * cell_pages && i < GMEM_MODEL_PAGES; i++)
			kinds |= m->private[i] ? 2 : 1;
		n += snprintf(buf + n, len - n, "%c", "?spm"[kinds]);
	}
	return n + snprintf(buf + n, len - n, "\n");
}

/*
 * The gmem_* lines of fdinfo that the model determines, as fdinfo prints
 * them.  The attribute tree merges equal neighbours: it holds one entry
 * per maximal range.
 */
static inline void model_fdinfo(const struct model *m, char *buf, size_t len)
{
	int i, first = 0, nr_ranges = 0, nr_private = 0;
	size_t n = 0;

	for (i = 1; i <= GMEM_MODEL_PAGES; i++) {
		if (i < GMEM_MODEL_PAGES && m->private[i] == m->private[first])
			continue;
		if (++nr_ranges <= FDINFO_MAX_RANGES)
			n += snprintf(buf + n, len - n,
				      "gmem_range:\t0x%llx-0x%llx %s\n",
				      first * GMEM_MODEL_PAGE, i * GMEM_MODEL_PAGE,
				      m->private[first] ? "private" : "shared");
		first = i;
	}
	n += snprintf(buf + n, len - n, "gmem_ranges:\t%d\n", nr_ranges);
	if (nr_ranges > FDINFO_MAX_RANGES)
		n += snprintf(buf + n, len - n, "gmem_ranges_not_shown:\t%d\n",
			      nr_ranges - FDINFO_MAX_RANGES);
	n += model_summary(m, buf + n, len - n);
	for (i = 0; i < GMEM_MODEL_PAGES; i++)
		nr_private += m->private[i];
	snprintf(buf + n, len - n,
		 "gmem_shared_pages:\t%d\n"
		 "gmem_private_pages:\t%d\n"
		 "gmem_conversions_to_private:\t%lu\n"
		 "gmem_conversions_to_shared:\t%lu\n"
		 "gmem_pages_to_private:\t%lu\n"
		 "gmem_pages_to_shared:\t%lu\n"
		 "gmem_eagain:\t%lu\n",
		 GMEM_MODEL_PAGES - nr_private, nr_private,
		 m->conversions[1], m->conversions[0],
		 m->pages_converted[1], m->pages_converted[0], m->eagain);
}

/* fdinfo of @fd without the lines the model does not know (size, owner). */
static inline void model_kernel_fdinfo(int fd, char *buf, size_t len)
{
	static const char *const ignored[] = {
		"gmem_size:", "gmem_flags:", "gmem_vm_pid:", "gmem_vm_id:",
	};
	char raw[16384], *line, *save;
	size_t n = 0;
	int k;

	gmem_fdinfo_text(fd, raw, sizeof(raw));
	buf[0] = 0;
	for (line = strtok_r(raw, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "gmem_", 5))
			continue;
		for (k = 0; k < ARRAY_SIZE(ignored); k++)
			if (!strncmp(line, ignored[k], strlen(ignored[k])))
				break;
		if (k == ARRAY_SIZE(ignored))
			n += snprintf(buf + n, len - n, "%s\n", line);
	}
}

#endif /* GMEM_MODEL_H */
