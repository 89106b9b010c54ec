/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A VM as its operators name it: the VMM's cgroup (v2), and QEMU's -name
 * and -uuid, which libvirt sets to the domain's.  Pid, VM id and inode
 * are the kernel's names; these are what the rest of a fleet's
 * monitoring joins on.
 */
#ifndef GMEMTOP_IDENT_H
#define GMEMTOP_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define IDENT_CGROUP_LEN	256
#define IDENT_NAME_LEN		128
#define IDENT_UUID_LEN		37	/* 36 characters and the NUL */

/* Each "" when unknown: the process is gone, or is no QEMU. */
struct vm_ident {
	char cgroup[IDENT_CGROUP_LEN];	/* "/machine.slice/..." */
	char name[IDENT_NAME_LEN];	/* bytes as given, not always UTF-8 */
	char uuid[IDENT_UUID_LEN];	/* lower case */
};

/*
 * From /proc/PID/cmdline (@len bytes of NUL-separated arguments, the last
 * one not always terminated): -name and -uuid, if argv[0] is a QEMU's.
 */
void ident_parse_cmdline(const char *buf, size_t len, struct vm_ident *id);
/*
 * From /proc/PID/cgroup: the path of the v2 hierarchy ("0::PATH") into
 * @path; false, @path "", without one.
 */
bool ident_parse_cgroup(const char *buf, size_t len, char *path, size_t size);
/*
 * The libvirt domain whose scope @path is in or under
 * ("/machine.slice/machine-qemu\x2d3\x2ddemo.scope/libvirt/emulator":
 * "demo") into @name; false, @name untouched, when there is none.
 */
bool ident_cgroup_domain(const char *path, char *name, size_t size);
/* Whether cgroup @path is @filter or below it: "/a/b" is under "/a". */
bool ident_cgroup_under(const char *path, const char *filter);

/* Reads @pid's; what cannot be read (the process exited) stays "". */
void ident_read(pid_t pid, struct vm_ident *id);

/*
 * --cgroup DIR: @dir must be a directory of a cgroup v2 mount.  Its path
 * as /proc/PID/cgroup shows it into @path, and an open descriptor of it
 * (for the BPF cgroup array) into *@fd.  Negative, with a message on
 * stderr, when it is not one.
 */
int ident_open_cgroup(const char *dir, char *path, size_t size, int *fd);

#endif
