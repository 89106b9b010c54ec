// SPDX-License-Identifier: GPL-2.0
/*
 * A first check of the 7.3 series, run in its kernel booted with
 * kvm.gmem_in_place_conversion=1 (tests/base73/run): in-place conversion
 * of an mmap()ed guest_memfd of a KVM_X86_SW_PROTECTED_VM, its EAGAIN
 * path, its fdinfo and its trace events.  Raw ioctls only, built against
 * the UAPI headers of the 7.3 tree, so that every number (the capability
 * above all) is that kernel's own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/kvm.h>

#define PAGE	4096UL
#define NPAGES	16UL
#define TRACEFS	"/sys/kernel/tracing"

static int failures;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("%s - ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	failures += !ok;
}

static sigjmp_buf fault_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(fault_jmp, 1);
}

/* Whether reading *@p raises SIGBUS. */
static int read_faults(volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	int faulted = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(fault_jmp, 1))
		faulted = 1;
	else
		(void)*p;
	sigaction(SIGBUS, &old, NULL);
	return faulted;
}

static int convert(int gmem, unsigned long first, unsigned long nr,
		   int private, unsigned long long *error_offset)
{
	struct kvm_memory_attributes2 args = {
		.offset = first * PAGE,
		.size = nr * PAGE,
		.attributes = private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};
	int r;

	r = ioctl(gmem, KVM_SET_MEMORY_ATTRIBUTES2, &args);
	if (error_offset)
		*error_offset = args.error_offset;
	return r ? -errno : 0;
}

/* The value of @key in the fdinfo of @fd, or -1. */
static long fdinfo(int fd, const char *key)
{
	char path[64], line[256];
	size_t len = strlen(key);
	long val = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':')
			val = strtol(line + len + 1, NULL, 0);
	fclose(f);
	return val;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	if (fd < 0 || write(fd, s, strlen(s)) < 0)
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* How many lines of the trace buffer name @event. */
static int trace_count(const char *event)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen(TRACEFS "/trace", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, event) != NULL;
	fclose(f);
	return n;
}

int main(void)
{
	unsigned long long error_offset;
	int kvm, vm, gmem, pipefd[2], r, i;
	struct iovec iov;
	char *mem, buf[PAGE];

	kvm = open("/dev/kvm", O_RDWR);
	if (kvm < 0) {
		perror("/dev/kvm");
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	if (vm < 0) {
		perror("KVM_CREATE_VM");
		return 1;
	}

	r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	check(r == KVM_MEMORY_ATTRIBUTE_PRIVATE,
	      "KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (%d) is %d",
	      KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, r);
	r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES);
	check(r == 0, "the VM holds no attribute (KVM_CAP_MEMORY_ATTRIBUTES %d)", r);
	r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	check(r & GUEST_MEMFD_FLAG_INIT_SHARED,
	      "INIT_SHARED for a VM with private memory (flags %#x)", r);

	struct kvm_create_guest_memfd cg = {
		.size = NPAGES * PAGE,
		.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
	};
	gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &cg);
	if (gmem < 0) {
		perror("KVM_CREATE_GUEST_MEMFD");
		return 1;
	}
	mem = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   gmem, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (i = 0; i < (int)NPAGES; i++)
		memset(mem + i * PAGE, 'a' + i, PAGE);

	write_file(TRACEFS "/trace", "");
	write_file(TRACEFS "/events/kvm_gmem/enable", "1");

	r = convert(gmem, 2, 2, 1, &error_offset);
	check(r == 0, "pages 2-3 to private: %d", r);
	check(read_faults(mem + 2 * PAGE), "a private page raises SIGBUS");
	check(!read_faults(mem + PAGE) && mem[PAGE] == 'b',
	      "its neighbour stays shared and keeps its contents");
	check(fdinfo(gmem, "gmem_private_pages") == 2,
	      "fdinfo counts 2 private pages (%ld)",
	      fdinfo(gmem, "gmem_private_pages"));

	/* A page in a pipe has a reference beyond guest_memfd's. */
	if (pipe(pipefd))
		return 1;
	iov.iov_base = mem + 5 * PAGE;
	iov.iov_len = PAGE;
	if (vmsplice(pipefd[1], &iov, 1, 0) != PAGE)
		perror("vmsplice");
	r = convert(gmem, 4, 3, 1, &error_offset);
	check(r == -EAGAIN && error_offset == 5 * PAGE,
	      "a held page fails with EAGAIN at its offset (%d, %#llx)", r,
	      error_offset);
	check(!read_faults(mem + 4 * PAGE),
	      "and nothing of the range changed");
	if (read(pipefd[0], buf, PAGE) != PAGE)
		perror("read");
	r = convert(gmem, 4, 3, 1, &error_offset);
	check(r == 0, "it converts once the reference is gone (%d)", r);

	r = convert(gmem, 2, 2, 0, NULL);
	check(r == 0 && !read_faults(mem + 2 * PAGE),
	      "pages 2-3 back to shared, mapped again (%d)", r);
	r = convert(gmem, 2, 2, 0, NULL);
	check(r == 0, "a range that has the attributes already: %d", r);
	r = convert(gmem, NPAGES - 1, 2, 1, NULL);
	check(r == -EINVAL, "a range past the end: %d", r);

	check(fdinfo(gmem, "gmem_private_pages") == 3 &&
	      fdinfo(gmem, "gmem_conversions_to_private") == 2 &&
	      fdinfo(gmem, "gmem_conversions_to_shared") == 1 &&
	      fdinfo(gmem, "gmem_eagain") == 1 &&
	      fdinfo(gmem, "gmem_ranges") == 3,
	      "fdinfo: 3 private pages, 2+1 conversions, 1 EAGAIN, 3 ranges");

	write_file(TRACEFS "/events/kvm_gmem/enable", "0");
	check(trace_count("kvm_gmem_set_attributes_end:") == 6,
	      "6 kvm_gmem_set_attributes_end events (%d)",
	      trace_count("kvm_gmem_set_attributes_end:"));
	check(trace_count("kvm_gmem_refcount_fail:") == 1,
	      "1 kvm_gmem_refcount_fail event (%d)",
	      trace_count("kvm_gmem_refcount_fail:"));
	check(trace_count("kvm_gmem_phase:") > 0 &&
	      trace_count("kvm_gmem_invalidate_begin:") > 0 &&
	      trace_count("kvm_gmem_user_fault:") > 0,
	      "phase, invalidate and user fault events");

	printf("%s\n", failures ? "FAILED" : "PASSED");
	return failures != 0;
}
