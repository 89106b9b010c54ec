/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the guest_memfd conversion tests: the ioctl, host
 * accesses that survive SIGBUS, and a software-protected VM whose data
 * memslot is an mmap()ed guest_memfd.
 */
#ifndef GMEM_TEST_H
#define GMEM_TEST_H

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "kvm_util.h"
#include "processor.h"

/*
 * The selftests' random helpers by their 6.12 names, where the tree has
 * them as kvm_random_* (selftests.mk tells).
 */
#ifdef GMEM_KVM_RANDOM
#define guest_random_state	kvm_random_state
#define new_guest_random_state	new_kvm_random_state
#define guest_random_u32	kvm_random_u32
#define guest_random_u64	kvm_random_u64
#define __guest_random_bool	__kvm_random_bool
#endif

#define GMEM_DATA_SLOT	10
#define GMEM_DATA_GPA	(1ULL << 32)

#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define SHARED		0ULL

/*
 * The conversion ABI of the kernel whose headers the tests are built
 * against.  The 6.12 series follows upstream's RFC v5: content modes in
 * flags (KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS), a non-zero error_offset refused
 * on input, EHWPOISON for a range that holds a poisoned page.  The 7.3
 * series follows v8, which has none of these: flags must be 0, and a
 * poisoned page converts like any other.
 */
#ifdef KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS
#define GMEM_RFC_V5	true
#define MODE_NONE	KVM_SET_MEMORY_ATTRIBUTES2_MODE_UNSPECIFIED
#define MODE_ZERO	KVM_SET_MEMORY_ATTRIBUTES2_ZERO
#define MODE_PRESERVE	KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE
#else
#define GMEM_RFC_V5	false
/* RFC v5's bits, which v8 refuses like any other flag. */
#define MODE_NONE	0ULL
#define MODE_ZERO	(1ULL << 0)
#define MODE_PRESERVE	(1ULL << 1)
#endif

/* The flags KVM_SET_MEMORY_ATTRIBUTES2 takes. */
#define GMEM_MODES	(GMEM_RFC_V5 ? MODE_ZERO | MODE_PRESERVE : 0)

/*
 * A conversion that keeps every byte: PRESERVE where RFC v5 offers it,
 * else flags = 0, which changes no byte in either ABI.
 */
#define MODE_KEEP	(GMEM_RFC_V5 ? MODE_PRESERVE : MODE_NONE)

/*
 * ZERO where RFC v5 offers it, else flags = 0: for conversions to shared
 * whose contents nobody reads afterwards, made to go down every path.
 */
#define MODE_ZERO_OR_NONE	(GMEM_RFC_V5 ? MODE_ZERO : MODE_NONE)

/*
 * EXPECT_EQ() of what KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS reports, where the
 * ABI has that capability (@got names it, so it is compiled only there).
 */
#ifdef KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS
#define EXPECT_MODES_CAP(got, want)	EXPECT_EQ(got, want)
#else
#define EXPECT_MODES_CAP(got, want)
#endif

/* Why a test case of what only RFC v5 has skips on 7.3. */
#define GMEM_V5_CONTENT_MODES \
	"content modes are 6.12-only: 7.3 (v8) takes flags = 0"
#define GMEM_V5_EHWPOISON \
	"EHWPOISON is 6.12-only: 7.3 (v8) converts a poisoned page like any other"
#define GMEM_V5_ERROR_OFFSET_IN \
	"error_offset is checked on input on 6.12 only: 7.3 (v8) ignores it"
#define GMEM_V5_LRU_AT_ONCE \
	"6.12-only: its series puts new folios on the LRU at once, 7.3's does not"

/*
 * Skips the calling test case, for @reason, on a kernel with the v8 ABI:
 * the 7.3 series, whose other differences from the 6.12 series' go with it.
 */
#define GMEM_REQUIRE_RFC_V5(reason)				\
	do {							\
		if (!GMEM_RFC_V5)				\
			SKIP(return, "%s", reason);		\
	} while (0)

#define GMEM_KVM_PARAMS	"/sys/module/kvm/parameters/"

/*
 * The module parameter that switches in-place conversion, and its value
 * while attributes are per VM: the 7.3 series' gmem_in_place_conversion
 * (N) or the 6.12 series' vm_memory_attributes (Y).
 */
struct gmem_switch {
	const char *param;
	char per_vm;
};

static inline struct gmem_switch gmem_switch(void)
{
	if (!access(GMEM_KVM_PARAMS "gmem_in_place_conversion", F_OK))
		return (struct gmem_switch){ "gmem_in_place_conversion", 'N' };
	return (struct gmem_switch){ "vm_memory_attributes", 'Y' };
}

/* Whether the switch is the 6.12 series' kvm.vm_memory_attributes. */
static inline bool gmem_legacy_switch(void)
{
	return gmem_switch().per_vm == 'Y';
}

/* True while attributes are per VM; also on a kernel without the switch. */
static inline bool gmem_vm_attributes_mode(void)
{
	struct gmem_switch sw = gmem_switch();
	char path[128], c = sw.per_vm;
	FILE *f;

	snprintf(path, sizeof(path), GMEM_KVM_PARAMS "%s", sw.param);
	f = fopen(path, "r");
	if (f) {
		TEST_ASSERT(fread(&c, 1, 1, f) == 1, "read %s", path);
		fclose(f);
	}
	return c == sw.per_vm;
}

/* Why a test case of in-place conversion skips while attributes are per VM. */
static inline const char *gmem_per_vm_reason(void)
{
	struct gmem_switch sw = gmem_switch();
	static char reason[80];

	snprintf(reason, sizeof(reason), "kvm.%s=%d: per-VM attributes",
		 sw.param, gmem_legacy_switch());
	return reason;
}

/* Skips the calling test case while attributes are per VM. */
#define GMEM_REQUIRE_IN_PLACE()						\
	do {								\
		if (gmem_vm_attributes_mode())				\
			SKIP(return, "%s", gmem_per_vm_reason());	\
	} while (0)

/*
 * KVM_SET_MEMORY_ATTRIBUTES2 on @fd.  Returns 0 or -errno; on -EAGAIN,
 * *@error_offset (if given) receives the offset the kernel reported.
 */
static inline int gmem_set_attrs(int fd, uint64_t offset, uint64_t size,
				 uint64_t attributes, uint64_t flags,
				 uint64_t *error_offset)
{
	struct kvm_memory_attributes2 args = {
		.offset = offset,
		.size = size,
		.attributes = attributes,
		.flags = flags,
	};
	int r = ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, &args);

	if (error_offset)
		*error_offset = args.error_offset;
	return r ? -errno : 0;
}

static inline void gmem_convert(int fd, uint64_t offset, uint64_t size,
				uint64_t attributes, uint64_t flags)
{
	int r = gmem_set_attrs(fd, offset, size, attributes, flags, NULL);

	TEST_ASSERT(!r, "convert [%#lx, +%#lx) to %s: %s", offset, size,
		    attributes ? "private" : "shared", strerror(-r));
}

/*
 * Host reads and writes that report SIGBUS instead of dying of it.  The
 * jump buffer is per thread so that vCPU threads can probe concurrently.
 */
static __thread sigjmp_buf *gmem_sigbus_jmp;

static inline void gmem_sigbus_handler(int sig)
{
	TEST_ASSERT(gmem_sigbus_jmp, "unexpected SIGBUS");
	siglongjmp(*gmem_sigbus_jmp, 1);
}

static inline void gmem_catch_sigbus(void)
{
	struct sigaction sa = { .sa_handler = gmem_sigbus_handler };

	TEST_ASSERT(!sigaction(SIGBUS, &sa, NULL), "sigaction(SIGBUS)");
}

/* Reads *@p into *@val, or writes *@val to it; false on SIGBUS. */
static inline bool gmem_host_access(volatile uint8_t *p, uint8_t *val,
				    bool write)
{
	sigjmp_buf env;

	gmem_sigbus_jmp = &env;
	if (sigsetjmp(env, 1)) {
		gmem_sigbus_jmp = NULL;
		return false;
	}
	if (write)
		*p = *val;
	else
		*val = *p;
	gmem_sigbus_jmp = NULL;
	return true;
}

static inline bool gmem_host_read(volatile uint8_t *p, uint8_t *val)
{
	return gmem_host_access(p, val, false);
}

static inline bool gmem_host_write(volatile uint8_t *p, uint8_t val)
{
	return gmem_host_access(p, &val, true);
}

/*
 * The first flag bit that KVM_CREATE_GUEST_MEMFD on @vm treats otherwise
 * than @valid says (accepted if in @valid, else EINVAL), or 0.
 */
static inline uint64_t gmem_first_wrong_flag(struct kvm_vm *vm, uint64_t valid)
{
	uint64_t flag;
	bool right;
	int fd;

	for (flag = 1; flag; flag <<= 1) {
		fd = __vm_create_guest_memfd(vm, getpagesize(), flag);
		right = flag & valid ? fd >= 0 : fd == -1 && errno == EINVAL;
		if (fd >= 0)
			close(fd);
		if (!right)
			return flag;
	}
	return 0;
}

/*
 * The value of @key in the fdinfo of guest_memfd @fd, copied to @buf (of
 * @len bytes); false if there is no such line.
 */
static inline bool gmem_fdinfo(int fd, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s", path);
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		snprintf(buf, len, "%s", line + klen + 1 + strspn(line + klen + 1, " \t"));
		buf[strcspn(buf, "\n")] = 0;
		found = true;
	}
	fclose(f);
	return found;
}

static inline unsigned long gmem_fdinfo_ulong(int fd, const char *key)
{
	char buf[64];

	TEST_ASSERT(gmem_fdinfo(fd, key, buf, sizeof(buf)), "fdinfo: no %s", key);
	return strtoul(buf, NULL, 0);
}

/*
 * A page-sized pattern that names its @tag in every 32-bit word, so that
 * a byte-exact comparison also tells whose data a page holds.
 */
static inline void gmem_pattern(void *p, size_t len, uint32_t tag)
{
	uint32_t *w = p;
	size_t i;

	for (i = 0; i < len / sizeof(*w); i++)
		w[i] = tag ^ (uint32_t)(i * 2654435761u);
}

static inline bool gmem_pattern_ok(const void *p, size_t len, uint32_t tag)
{
	const uint32_t *w = p;
	size_t i;

	for (i = 0; i < len / sizeof(*w); i++)
		if (w[i] != (tag ^ (uint32_t)(i * 2654435761u)))
			return false;
	return true;
}

/* Write @s to the control file at @path; whether all of it went. */
static inline bool gmem_write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	bool ok = fd >= 0 && write(fd, s, strlen(s)) == strlen(s);

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Up to @len bytes of @path (non-blocking), NUL-terminated; the length. */
static inline size_t gmem_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	size_t n = 0;
	ssize_t r;

	if (fd < 0)
		return 0;
	while (n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n] = 0;
	return n;
}

/*
 * The text of fdinfo of @fd, NUL-terminated, in @buf, through the proc
 * mounted at @proc (whose pid namespace the reader's is).
 */
static inline void gmem_fdinfo_text_in(const char *proc, int fd, char *buf,
				       size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "%s/self/fdinfo/%d", proc, fd);
	f = open(path, O_RDONLY);
	TEST_ASSERT(f >= 0, "open %s", path);
	n = read(f, buf, len - 1);
	TEST_ASSERT(n > 0 && n < len - 1, "read %s", path);
	buf[n] = 0;
	close(f);
}

/* The text of /proc/self/fdinfo/@fd, NUL-terminated, in @buf. */
static inline void gmem_fdinfo_text(int fd, char *buf, size_t len)
{
	gmem_fdinfo_text_in("/proc", fd, buf, len);
}

/* The number after "@key:" in fdinfo text @text, read by gmem_fdinfo_text(). */
static inline unsigned long gmem_fdinfo_field(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *line;

	for (line = text; line; line = strchr(line, '\n')) {
		line += *line == '\n';
		if (!strncmp(line, key, klen) && line[klen] == ':')
			return strtoul(line + klen + 1, NULL, 0);
	}
	TEST_FAIL("fdinfo: no %s", key);
	return 0;
}

/*
 * The bounds of a randomized test, from its command line:
 * -s SEED, -i COUNT (steps, phases...), -t SECONDS, -v.  The caller sets
 * the defaults; seconds 0 means no time limit.
 */
struct gmem_run_opts {
	uint32_t seed;
	long count;
	long seconds;
	bool verbose;
};

static inline void gmem_parse_run_opts(int argc, char *argv[],
				       struct gmem_run_opts *o)
{
	int opt;

	while ((opt = getopt(argc, argv, "s:i:t:v")) != -1) {
		switch (opt) {
		case 's':
			o->seed = strtoul(optarg, NULL, 0);
			break;
		case 'i':
			o->count = atoi_positive("-i", optarg);
			break;
		case 't':
			o->seconds = atoi_positive("-t", optarg);
			break;
		case 'v':
			o->verbose = true;
			break;
		default:
			exit(KSFT_FAIL);
		}
	}
}

/* A VM whose data memslot is an mmap()ed guest_memfd. */
struct gmem_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[KVM_MAX_VCPUS];
	int fd;
	uint8_t *mem;	/* host mapping of the whole guest_memfd */
	size_t size;
};

/*
 * Create a VM of @type with @nr_vcpus running @guest_code, and a guest_memfd
 * of @size bytes created with @flags (GUEST_MEMFD_FLAG_MMAP is implied),
 * bound at GMEM_DATA_GPA in @nr_slots memslots of equal size (slots
 * GMEM_DATA_SLOT and up, at consecutive GPAs and file offsets), and
 * identity-mapped in the guest.  The host maps the whole file at g->mem,
 * and each slot's part where the selftests library expects the slot's
 * memory, so that addr_gpa2hva() works too.
 */
static inline void gmem_vm_create_slots(struct gmem_vm *g, unsigned long type,
					int nr_vcpus, void *guest_code,
					size_t size, uint64_t flags,
					int nr_slots)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = type,
	};
	size_t slot_size = size / nr_slots;
	size_t npages = slot_size / getpagesize();
	struct userspace_mem_region *region;
	void *mem = NULL;
	int i;

	TEST_ASSERT(slot_size * nr_slots == size && npages * getpagesize() == slot_size,
		    "%d slots do not divide %zu bytes in pages", nr_slots, size);
	g->size = size;
	g->vm = __vm_create_with_vcpus(shape, nr_vcpus, 0, guest_code, g->vcpus);
	g->fd = vm_create_guest_memfd(g->vm, size, flags | GUEST_MEMFD_FLAG_MMAP);
	for (i = 0; i < nr_slots; i++) {
		vm_mem_add(g->vm, VM_MEM_SRC_ANONYMOUS,
			   GMEM_DATA_GPA + i * slot_size, GMEM_DATA_SLOT + i,
			   npages, KVM_MEM_GUEST_MEMFD, g->fd, i * slot_size);
		region = memslot2region(g->vm, GMEM_DATA_SLOT + i);
		mem = mmap(region->host_mem, slot_size, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_FIXED, g->fd, i * slot_size);
		TEST_ASSERT(mem == region->host_mem, "mmap(guest_memfd)");
	}
	virt_map(g->vm, GMEM_DATA_GPA, GMEM_DATA_GPA, size / getpagesize());

	g->mem = nr_slots == 1 ? mem :
		 mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	TEST_ASSERT(g->mem != MAP_FAILED, "mmap(guest_memfd)");
	gmem_catch_sigbus();
}

static inline void gmem_vm_create_type(struct gmem_vm *g, unsigned long type,
				       int nr_vcpus, void *guest_code,
				       size_t size, uint64_t flags)
{
	gmem_vm_create_slots(g, type, nr_vcpus, guest_code, size, flags, 1);
}

/* The same with a KVM_X86_SW_PROTECTED_VM, which can convert in place. */
static inline void gmem_vm_create(struct gmem_vm *g, int nr_vcpus,
				  void *guest_code, size_t size, uint64_t flags)
{
	gmem_vm_create_type(g, KVM_X86_SW_PROTECTED_VM, nr_vcpus, guest_code,
			    size, flags);
}

static inline void gmem_vm_free(struct gmem_vm *g)
{
	close(g->fd);
	kvm_vm_free(g->vm);
}

/* Run @vcpu to its next ucall; fail the test on a guest assertion. */
static inline uint64_t gmem_run_to_ucall(struct kvm_vcpu *vcpu,
					 struct ucall *uc)
{
	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	if (get_ucall(vcpu, uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(*uc);
	return uc->cmd;
}

#endif /* GMEM_TEST_H */
