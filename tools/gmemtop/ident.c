// SPDX-License-Identifier: GPL-2.0
/*
 * The names operators give their VMs, read from /proc once per VMM: its
 * cgroup, and QEMU's -name and -uuid (libvirt's domain name and UUID).
 * Everything here comes from a process that may be gone, or whose command
 * line is anything at all: nothing read is trusted to be short, UTF-8 or
 * well formed.
 */
#define _GNU_SOURCE	/* memrchr() */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "ident.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC	0x63677270
#endif

/* What is read of /proc/PID/cmdline: -name past it is not seen. */
#define CMDLINE_MAX	(64 * 1024)
#define CGROUP_FILE_MAX	(16 * 1024)

/* Copies @len bytes of @s into @out, cut to @size - 1 and terminated. */
static void copy_bytes(char *out, size_t size, const char *s, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(out, s, len);
	out[len] = '\0';
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && !memcmp(s, prefix, n);
}

/* "qemu-system-x86_64", "qemu-kvm", "/usr/libexec/qemu-kvm". */
static bool is_qemu(const char *arg0, size_t len)
{
	const char *slash = memrchr(arg0, '/', len);

	if (slash) {
		len -= slash + 1 - arg0;
		arg0 = slash + 1;
	}
	return starts_with(arg0, len, "qemu");
}

/*
 * One parameter of a QEMU option value, "key=value" or "value", from *@p
 * up to an unpaired ',' (",," is a literal comma, as QEMU reads it), into
 * @buf, cut to fit.  Says whether it has a '=' anywhere, and moves *@p
 * past the comma.
 */
static void next_param(const char **p, const char *end, char *buf,
		       size_t size, bool *has_eq)
{
	const char *s = *p;
	size_t n = 0;

	*has_eq = false;
	while (s < end) {
		if (*s == ',') {
			if (s + 1 < end && s[1] == ',') {
				s++;
			} else {
				s++;
				break;
			}
		} else if (*s == '=') {
			*has_eq = true;
		}
		if (n + 1 < size)
			buf[n++] = *s;
		s++;
	}
	buf[n] = '\0';
	*p = s;
}

/*
 * -name's value: "foo", "foo,process=bar", "guest=foo,debug-threads=on".
 * A first parameter without '=' is the guest's name (QEMU's implied key).
 */
static void parse_name(const char *value, size_t len, struct vm_ident *id)
{
	const char *p = value, *end = value + len;
	char param[IDENT_NAME_LEN + 8];
	bool first = true, has_eq;

	while (p < end) {
		next_param(&p, end, param, sizeof(param), &has_eq);
		if (first && !has_eq)
			copy_bytes(id->name, sizeof(id->name), param,
				   strlen(param));
		else if (!strncmp(param, "guest=", 6))
			copy_bytes(id->name, sizeof(id->name), param + 6,
				   strlen(param + 6));
		first = false;
	}
}

/* A UUID in its only form, 8-4-4-4-12 hex digits, kept in lower case. */
static void parse_uuid(const char *value, size_t len, struct vm_ident *id)
{
	size_t i;

	if (len != IDENT_UUID_LEN - 1)
		return;
	for (i = 0; i < len; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? value[i] != '-' : !isxdigit((unsigned char)value[i]))
			return;
	}
	for (i = 0; i < len; i++)
		id->uuid[i] = tolower((unsigned char)value[i]);
	id->uuid[len] = '\0';
}

/* QEMU takes "-opt" and "--opt" alike. */
static bool is_option(const char *arg, size_t len, const char *name)
{
	if (len > 2 && arg[0] == '-' && arg[1] == '-') {
		arg++;
		len--;
	}
	return len == strlen(name) + 1 && arg[0] == '-' &&
	       !memcmp(arg + 1, name, len - 1);
}

void ident_parse_cmdline(const char *buf, size_t len, struct vm_ident *id)
{
	const char *p = buf, *end = buf + len, *arg;
	size_t arg_len, prev_len = 0;
	const char *prev = NULL;

	id->name[0] = '\0';
	id->uuid[0] = '\0';
	if (!len || !is_qemu(buf, strnlen(buf, len)))
		return;
	/* The last -name and -uuid win, as in QEMU. */
	while (p < end) {
		arg = p;
		arg_len = strnlen(arg, end - arg);
		p += arg_len + 1;
		if (prev && is_option(prev, prev_len, "name"))
			parse_name(arg, arg_len, id);
		else if (prev && is_option(prev, prev_len, "uuid"))
			parse_uuid(arg, arg_len, id);
		prev = arg;
		prev_len = arg_len;
	}
}

bool ident_parse_cgroup(const char *buf, size_t len, char *path, size_t size)
{
	const char *p = buf, *end = buf + len, *nl;

	path[0] = '\0';
	while (p < end) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			nl = end;
		/* Hierarchy 0, no controllers: the unified one. */
		if (starts_with(p, nl - p, "0::/")) {
			copy_bytes(path, size, p + 3, nl - p - 3);
			return true;
		}
		p = nl + 1;
	}
	return false;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* systemd's unit name escaping undone: "\x2d" is '-'. */
static size_t unescape_unit(const char *s, size_t len, char *out, size_t size)
{
	size_t i, n = 0;
	int hi, lo;

	for (i = 0; i < len && n + 1 < size; i++) {
		hi = -1;
		lo = -1;
		if (s[i] == '\\' && i + 3 < len && s[i + 1] == 'x') {
			hi = hex_digit(s[i + 2]);
			lo = hex_digit(s[i + 3]);
		}
		if (hi >= 0 && lo >= 0) {
			out[n++] = hi << 4 | lo;
			i += 3;
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	return n;
}

/*
 * A path component "machine-qemu\x2dID\x2dNAME.scope" (libvirt since
 * 1.3), or "machine-qemu\x2dNAME.scope" (before): NAME into @name.
 */
static bool scope_domain(const char *comp, size_t len, char *name,
			 size_t size)
{
	char unit[IDENT_CGROUP_LEN];
	const char *s, *e, *d;
	size_t n;

	if (!starts_with(comp, len, "machine-qemu") || len < 6 ||
	    memcmp(comp + len - 6, ".scope", 6))
		return false;
	n = unescape_unit(comp, len - 6, unit, sizeof(unit));
	if (!starts_with(unit, n, "machine-qemu-"))
		return false;
	s = unit + strlen("machine-qemu-");
	e = unit + n;
	/* The id libvirt puts before the name since 1.3, if there is one. */
	for (d = s; d < e && isdigit((unsigned char)*d); d++) {
		if (d + 1 < e && d[1] == '-') {
			s = d + 2;
			break;
		}
	}
	if (s == e)
		return false;
	copy_bytes(name, size, s, e - s);
	return true;
}

bool ident_cgroup_domain(const char *path, char *name, size_t size)
{
	const char *p = path, *slash;
	size_t len;

	while (*p) {
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (scope_domain(p, len, name, size))
			return true;
		p += len + (slash != NULL);
	}
	return false;
}

bool ident_cgroup_under(const char *path, const char *filter)
{
	size_t n = strlen(filter);

	if (!strcmp(filter, "/"))
		return path[0] == '/';
	return !strncmp(path, filter, n) && (path[n] == '\0' || path[n] == '/');
}

/* Up to @size bytes of a /proc file; -1 when it cannot be read. */
static ssize_t read_proc(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while (got < size) {
		n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	return got;
}

void ident_read(pid_t pid, struct vm_ident *id)
{
	char path[64], *buf = malloc(CMDLINE_MAX);
	ssize_t len;

	memset(id, 0, sizeof(*id));
	if (!buf)
		return;
	/* Gone (ENOENT, ESRCH): the row stays, without names. */
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	len = read_proc(path, buf, CMDLINE_MAX);
	if (len > 0)
		ident_parse_cmdline(buf, len, id);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	len = read_proc(path, buf, CGROUP_FILE_MAX);
	if (len > 0)
		ident_parse_cgroup(buf, len, id->cgroup, sizeof(id->cgroup));
	/* libvirt names the scope after the domain, even without -name. */
	if (!id->name[0])
		ident_cgroup_domain(id->cgroup, id->name, sizeof(id->name));
	free(buf);
}

/* mountinfo's octal escapes ("\040" a space) undone in place. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (s[1] - '0') << 6 | (s[2] - '0') << 3 |
				 (s[3] - '0');
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/*
 * The cgroup2 mount @dir is under, the longest of them: its root (the
 * cgroup at its top, as /proc/PID/cgroup names it) into @root, and how
 * many bytes of @dir its mount point takes.  -1 when there is none.
 */
static ssize_t cgroup2_mount(const char *dir, char *root, size_t size)
{
	char line[4096], mroot[PATH_MAX], point[PATH_MAX], *sep;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	ssize_t best = -1;
	size_t n;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep, " - cgroup2 ", 11) ||
		    sscanf(line, "%*s %*s %*s %4095s %4095s", mroot, point) != 2)
			continue;
		unescape_octal(mroot);
		unescape_octal(point);
		n = strlen(point);
		if (!strcmp(point, "/"))
			n = 0;
		else if (strncmp(dir, point, n) || (dir[n] && dir[n] != '/'))
			continue;
		if ((ssize_t)n > best) {
			best = n;
			copy_bytes(root, size, mroot, strlen(mroot));
		}
	}
	fclose(f);
	return best;
}

/* @root and @rest joined as /proc/PID/cgroup shows them: "/a/b", "/". */
static int join_cgroup(const char *root, const char *rest, char *path,
		       size_t size)
{
	int n = snprintf(path, size, "%s%s",
			 strcmp(root, "/") ? root : "", rest);

	if (n < 0 || (size_t)n >= size)
		return -1;
	if (!n)
		snprintf(path, size, "/");
	return 0;
}

int ident_open_cgroup(const char *dir, char *path, size_t size, int *fd)
{
	char real[PATH_MAX], root[PATH_MAX];
	struct statfs sfs;
	ssize_t at;

	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		fprintf(stderr, "gmemtop: --cgroup %s: %s\n", dir,
			strerror(errno));
		return -1;
	}
	at = -1;
	if (!fstatfs(*fd, &sfs) && sfs.f_type == CGROUP2_SUPER_MAGIC &&
	    realpath(dir, real))
		at = cgroup2_mount(real, root, sizeof(root));
	if (at < 0) {
		fprintf(stderr, "gmemtop: --cgroup %s: not a directory of a "
			"cgroup v2 hierarchy (e.g. /sys/fs/cgroup/machine.slice)\n",
			dir);
		goto fail;
	}
	if (join_cgroup(root, real + at, path, size)) {
		fprintf(stderr, "gmemtop: --cgroup %s: path too long\n", dir);
		goto fail;
	}
	return 0;
fail:
	close(*fd);
	*fd = -1;
	return -1;
}
