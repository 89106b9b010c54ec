// SPDX-License-Identifier: GPL-2.0
/*
 * A private page of a guest_memfd is out of the host's reach: no mapping,
 * no process, no file or block I/O path, no pin and no diagnostic output
 * may read or write it.  Each test makes page 0 private over a recognizable
 * pattern and tries one way in.  Needs in-place conversion switched on.
 */
#include <dirent.h>
#include <elf.h>
#include <linux/capability.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/stddef.h>	/* before io_uring.h: tools/ has its own types.h */
#include <linux/io_uring.h>
#include <linux/loop.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "gmem.h"
#include "kselftest_harness.h"

#define NR_PAGES	4
#define PAGE		4096ULL

/* ASCII, so that it is as greppable in text output as in binary. */
static const char secret[8] = "GMEMLEAK";

static void fill_secret(uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = secret[i % sizeof(secret)];
}

static bool holds_secret(const void *p, size_t len)
{
	return memmem(p, len, secret, sizeof(secret)) != NULL;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return !p[0] && !memcmp(p, p + 1, len - 1);
}

/*
 * Runs @fn(@arg) in a child process; true if it exited 0.  The child
 * reports its own failures on stderr.
 */
static bool in_child(bool (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork");
	if (!pid)
		_exit(fn(arg) ? 0 : 1);
	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

#define PM_PRESENT	(1ULL << 63)
#define PM_PFN		((1ULL << 55) - 1)

/* The /proc/@pid/pagemap entry of the page at @addr in @pid's memory. */
static uint64_t pagemap_entry(pid_t pid, const void *addr)
{
	uint64_t entry = 0;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	TEST_ASSERT(fd >= 0, "open %s", path);
	TEST_ASSERT(pread(fd, &entry, 8, (uintptr_t)addr / PAGE * 8) == 8,
		    "read %s", path);
	close(fd);
	return entry;
}

/* Whether @pid has a page-table entry for the page at @addr. */
static bool pte_present(pid_t pid, const void *addr)
{
	return pagemap_entry(pid, addr) & PM_PRESENT;
}

FIXTURE(iso) {
	struct kvm_vm *vm;
	int fd;
	uint8_t *mem;		/* the whole file, mapped before conversion */
	uint8_t *page;		/* page 0: the secret, private */
};

/*
 * A software-protected VM (*@vm) with a guest_memfd (*@fd) of @nr_pages,
 * all shared, mapped by this process: the mapping, or MAP_FAILED.  Host
 * accesses to private pages raise SIGBUS, which the tests catch.
 */
static uint8_t *map_shared_gmem(struct kvm_vm **vm, int *fd, size_t nr_pages)
{
	*vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	*fd = vm_create_guest_memfd(*vm, nr_pages * PAGE,
				    GUEST_MEMFD_FLAG_MMAP |
				    GUEST_MEMFD_FLAG_INIT_SHARED);
	gmem_catch_sigbus();
	return mmap(NULL, nr_pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    *fd, 0);
}

static void unmap_shared_gmem(struct kvm_vm *vm, int fd, uint8_t *mem,
			      size_t nr_pages)
{
	munmap(mem, nr_pages * PAGE);
	close(fd);
	kvm_vm_free(vm);
}

FIXTURE_SETUP(iso)
{
	GMEM_REQUIRE_IN_PLACE();

	self->mem = map_shared_gmem(&self->vm, &self->fd, NR_PAGES);
	ASSERT_NE(self->mem, MAP_FAILED);
	self->page = self->mem;

	fill_secret(self->mem, NR_PAGES * PAGE);
	gmem_convert(self->fd, 0, PAGE, PRIVATE, MODE_KEEP);
}

FIXTURE_TEARDOWN(iso)
{
	if (self->vm)
		unmap_shared_gmem(self->vm, self->fd, self->mem, NR_PAGES);
}

/* Back to shared with PRESERVE: the secret must have survived intact. */
/* Whether the page at @buf is the secret, all of it. */
static bool is_secret(const uint8_t *buf)
{
	uint8_t want[PAGE];

	fill_secret(want, PAGE);
	return !memcmp(buf, want, PAGE);
}

static bool secret_intact(int fd, uint8_t *page)
{
	gmem_convert(fd, 0, PAGE, SHARED, MODE_KEEP);
	return is_secret(page);
}

static bool mapping_locked_out(volatile uint8_t *p)
{
	uint8_t v;

	return !gmem_host_read(p, &v) && !gmem_host_write(p, 0) &&
	       !gmem_host_read(p + PAGE - 1, &v);
}

TEST_F(iso, no_mapping_reaches_a_private_page)
{
	uint8_t *late = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			     self->fd, 0);

	ASSERT_NE(late, MAP_FAILED);
	EXPECT_TRUE(mapping_locked_out(self->page))
		TH_LOG("the mapping made and faulted before the conversion");
	EXPECT_TRUE(mapping_locked_out(late))
		TH_LOG("a mapping made after the conversion");
	EXPECT_TRUE(in_child((bool (*)(void *))mapping_locked_out, self->page))
		TH_LOG("a forked child's inherited mapping");
	munmap(late, PAGE);
	EXPECT_TRUE(secret_intact(self->fd, self->page));
}

/* ------------------------------------------------------------------ */
/* Other processes' mappings                                          */

/*
 * A peer: another process that reads or writes page 0 through a mapping
 * of its own whenever asked over a socket, and answers what happened.
 */
enum peer_answer { PEER_SIGBUS, PEER_SECRET, PEER_OTHER_DATA, PEER_WROTE };

struct peer {
	const char *what;
	pid_t pid;
	int sock;
	uint8_t *page;		/* page 0, in the peer's address space */
};

/*
 * Copies the page at @p to @buf; false on SIGBUS, which a conversion in
 * another process can raise at any byte.
 */
static bool read_page(uint8_t *buf, uint8_t *p)
{
	sigjmp_buf env;

	gmem_sigbus_jmp = &env;
	if (sigsetjmp(env, 1)) {
		gmem_sigbus_jmp = NULL;
		return false;
	}
	memcpy(buf, p, PAGE);
	gmem_sigbus_jmp = NULL;
	return true;
}

static uint8_t peer_access(uint8_t *page, char cmd)
{
	uint8_t buf[PAGE];

	if (cmd == 'w')
		return gmem_host_write(page, 0) ? PEER_WROTE : PEER_SIGBUS;
	if (!read_page(buf, page))
		return PEER_SIGBUS;
	return is_secret(buf) ? PEER_SECRET : PEER_OTHER_DATA;
}

static void peer_serve(int sock, uint8_t *page)
{
	uint8_t answer;
	char cmd;

	TEST_ASSERT(write(sock, &page, sizeof(page)) == sizeof(page),
		    "peer: write");
	while (read(sock, &cmd, 1) == 1 && cmd != 'q') {
		answer = peer_access(page, cmd);
		TEST_ASSERT(write(sock, &answer, 1) == 1, "peer: write");
	}
	_exit(0);
}

static void send_fd(int sock, int fd)
{
	char control[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { .iov_base = "f", .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control, .msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	TEST_ASSERT(sendmsg(sock, &msg, 0) == 1, "sendmsg(SCM_RIGHTS)");
}

static int recv_fd(int sock)
{
	char control[CMSG_SPACE(sizeof(int))], c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control, .msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg;
	int fd;

	TEST_ASSERT(recvmsg(sock, &msg, 0) == 1, "recvmsg(SCM_RIGHTS)");
	cmsg = CMSG_FIRSTHDR(&msg);
	TEST_ASSERT(cmsg && cmsg->cmsg_type == SCM_RIGHTS, "no fd received");
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

/*
 * In a peer: nothing inherited of the file, neither @fd nor the mapping
 * @mem; page 0 of the fd received on @sock, mapped afresh.
 */
static uint8_t *map_passed_fd(int sock, int fd, uint8_t *mem)
{
	uint8_t *page;

	close(fd);
	munmap(mem, NR_PAGES * PAGE);
	fd = recv_fd(sock);
	page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TEST_ASSERT(page != MAP_FAILED, "mmap(passed fd)");
	close(fd);
	return page;
}

/*
 * A peer that uses the mapping @mem of @fd it inherits with fork(), or
 * that gets @fd over a socket (@pass_fd) and maps it itself.
 */
static void peer_start(struct peer *p, const char *what, int fd, uint8_t *mem,
		       bool pass_fd)
{
	int sv[2];

	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	p->what = what;
	p->pid = fork();
	TEST_ASSERT(p->pid >= 0, "fork");
	if (!p->pid) {
		close(sv[0]);
		peer_serve(sv[1], pass_fd ? map_passed_fd(sv[1], fd, mem) : mem);
	}
	close(sv[1]);
	p->sock = sv[0];
	if (pass_fd)
		send_fd(p->sock, fd);
	TEST_ASSERT(read(p->sock, &p->page, sizeof(p->page)) == sizeof(p->page),
		    "%s: no address", what);
}

/* Asks @p to read ('r') or write ('w') its page 0: what happened. */
static uint8_t peer_ask(struct peer *p, char cmd)
{
	uint8_t answer;

	TEST_ASSERT(write(p->sock, &cmd, 1) == 1 &&
		    read(p->sock, &answer, 1) == 1, "%s: no answer", p->what);
	return answer;
}

/* True if @p exited cleanly. */
static bool peer_stop(struct peer *p)
{
	int status;

	TEST_ASSERT(write(p->sock, "q", 1) == 1, "%s: write", p->what);
	close(p->sock);
	TEST_ASSERT(waitpid(p->pid, &status, 0) == p->pid, "waitpid");
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

/*
 * Conversion to private unmaps the page from every process that maps it,
 * not only from the caller's: here from a forked child and from a process
 * that mapped an fd passed over a socket, both of which have faulted the
 * page in through their own mappings first.  (fork() copies no page-table
 * entry of a shared file mapping: a child that has not touched the page
 * since has nothing to unmap.)
 */
TEST_F(iso, conversion_unmaps_the_page_from_other_processes)
{
	struct peer peers[2];
	int i;

	ASSERT_TRUE(secret_intact(self->fd, self->page));
	peer_start(&peers[0], "a forked child", self->fd, self->mem, false);
	peer_start(&peers[1], "a process given the fd over a socket",
		   self->fd, self->mem, true);
	for (i = 0; i < ARRAY_SIZE(peers); i++) {
		ASSERT_EQ(peer_ask(&peers[i], 'r'), PEER_SECRET)
			TH_LOG("%s", peers[i].what);
		ASSERT_TRUE(pte_present(peers[i].pid, peers[i].page))
			TH_LOG("%s: no page-table entry to unmap", peers[i].what);
	}

	gmem_convert(self->fd, 0, PAGE, PRIVATE, MODE_KEEP);
	for (i = 0; i < ARRAY_SIZE(peers); i++) {
		EXPECT_FALSE(pte_present(peers[i].pid, peers[i].page))
			TH_LOG("%s still maps the private page", peers[i].what);
		EXPECT_EQ(peer_ask(&peers[i], 'r'), PEER_SIGBUS)
			TH_LOG("%s read the private page", peers[i].what);
		EXPECT_EQ(peer_ask(&peers[i], 'w'), PEER_SIGBUS)
			TH_LOG("%s wrote the private page", peers[i].what);
	}

	/* Shared again, the same mappings fault the page back in, intact. */
	EXPECT_TRUE(secret_intact(self->fd, self->page));
	for (i = 0; i < ARRAY_SIZE(peers); i++) {
		EXPECT_EQ(peer_ask(&peers[i], 'r'), PEER_SECRET)
			TH_LOG("%s", peers[i].what);
		EXPECT_TRUE(peer_stop(&peers[i])) TH_LOG("%s failed", peers[i].what);
	}
}

/*
 * A mapper: a process that maps page 0 afresh and reads it, again and
 * again, while the parent converts the whole file to private; the
 * parent's @seq says where each round is (4 * round + one of R_*).
 * Whatever the mapper faulted in before or during a conversion, none of
 * its mappings may reach the page once the conversion has returned.
 */
#define RACE_PAGES	16384	/* a conversion long enough to be caught in */
#define RACE_MAPS	32	/* per round, at most... */
#define RACE_MAPS_BEFORE 4	/* ...and at most this many before it */
#define RACE_MIN_WAITS	5	/* faults that waited for a conversion */
#define RACE_MAX_ROUNDS	1000

enum { R_SHARED, R_TO_PRIVATE, R_PRIVATE, R_TO_SHARED };

struct race_report {
	int mapped;	/* mappings made and read in the round */
	int waited;	/* ...whose fault waited for the conversion */
	int wrong;	/* reads whose outcome the attributes forbid */
	int leaked;	/* mappings that reach the page after the conversion */
};

static long voluntary_switches(void)
{
	struct rusage ru;

	TEST_ASSERT(!getrusage(RUSAGE_THREAD, &ru), "getrusage");
	return ru.ru_nvcsw;
}

/*
 * One more mapping, read at once; the outcome checked against @seq.  A
 * fault on a page in the page cache sleeps only to wait for a conversion
 * (which holds the file's invalidate lock), and must then find the page
 * private.
 */
static void race_map_one(int fd, volatile int *seq, uint8_t **maps,
			 struct race_report *r)
{
	long switches = voluntary_switches();
	int before = *seq, after;
	uint8_t *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	uint8_t buf[PAGE];
	bool ok, waited;

	TEST_ASSERT(m != MAP_FAILED, "mapper: mmap");
	ok = read_page(buf, m);
	after = *seq;
	waited = voluntary_switches() != switches;
	maps[r->mapped++] = m;
	r->waited += waited;
	if (ok && (waited || !is_secret(buf)))
		r->wrong++;
	else if (before == after && before % 4 != R_TO_PRIVATE &&
		 ok != (before % 4 == R_SHARED))
		r->wrong++;
}

/*
 * Each round: a few mappings, then more whenever the mapper finds the
 * conversion under way, until it has returned; then all are checked.
 * Between mappings the mapper sleeps: the timer that wakes it preempts
 * the parent, at times in the middle of its conversion.
 */
static void race_mapper(int sock, int fd, volatile int *seq)
{
	uint8_t *maps[RACE_MAPS], buf[PAGE];
	struct race_report r;
	int i, round;

	while (read(sock, &round, sizeof(round)) == sizeof(round)) {
		memset(&r, 0, sizeof(r));
		race_map_one(fd, seq, maps, &r);
		/* One mapping has the page faulted in before the conversion. */
		TEST_ASSERT(write(sock, "m", 1) == 1, "mapper: write");
		while (*seq != 4 * round + R_PRIVATE) {
			if (r.mapped < RACE_MAPS_BEFORE ||
			    (r.mapped < RACE_MAPS && *seq % 4 == R_TO_PRIVATE))
				race_map_one(fd, seq, maps, &r);
			else
				usleep(20);
		}
		for (i = 0; i < r.mapped; i++) {
			r.leaked += pte_present(getpid(), maps[i]) ||
				    read_page(buf, maps[i]);
			munmap(maps[i], PAGE);
		}
		TEST_ASSERT(write(sock, &r, sizeof(r)) == sizeof(r),
			    "mapper: write");
	}
	_exit(0);
}

/* Keeps this process and the children it forks from now on on @cpu. */
static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(set), &set), "sched_setaffinity");
}

/* Starts a mapper on @cpu that talks over *@sock: its pid. */
static pid_t race_mapper_start(int fd, volatile int *seq, int cpu, int *sock)
{
	int sv[2];
	pid_t pid;

	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork");
	if (!pid) {
		close(sv[0]);
		pin_to_cpu(cpu);
		race_mapper(sv[1], fd, seq);
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

/* True if the mapper behind @sock exited cleanly. */
static bool race_mapper_stop(pid_t pid, int sock)
{
	int status;

	close(sock);
	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

/* A round's first half: the whole file to private, the mapper mapping. */
static struct race_report race_to_private(int sock, int fd, volatile int *seq,
					  int round)
{
	struct race_report r;
	char c;

	*seq = 4 * round + R_SHARED;
	TEST_ASSERT(write(sock, &round, sizeof(round)) == sizeof(round) &&
		    read(sock, &c, 1) == 1, "parent: mapper gone");
	*seq = 4 * round + R_TO_PRIVATE;
	gmem_convert(fd, 0, RACE_PAGES * PAGE, PRIVATE, MODE_KEEP);
	*seq = 4 * round + R_PRIVATE;
	TEST_ASSERT(read(sock, &r, sizeof(r)) == sizeof(r), "parent: mapper gone");
	return r;
}

/* ...and its second: back to shared. */
static void race_to_shared(int fd, volatile int *seq, int round)
{
	*seq = 4 * round + R_TO_SHARED;
	gmem_convert(fd, 0, RACE_PAGES * PAGE, SHARED, MODE_KEEP);
}

/*
 * A file of RACE_PAGES allocated pages, all shared, mapped by this process
 * (*@mem), with the secret in page 0, and the word *@seq that the parent
 * and a mapper share.
 */
static void race_setup(struct kvm_vm **vm, int *fd, uint8_t **mem,
		       volatile int **seq)
{
	*mem = map_shared_gmem(vm, fd, RACE_PAGES);
	TEST_ASSERT(*mem != MAP_FAILED, "mmap(guest_memfd)");
	/* Every page allocated: a conversion walks them all. */
	TEST_ASSERT(!fallocate(*fd, FALLOC_FL_KEEP_SIZE, 0, RACE_PAGES * PAGE),
		    "fallocate");
	fill_secret(*mem, PAGE);
	*seq = mmap(NULL, sizeof(**seq), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(*seq != MAP_FAILED, "mmap(seq)");
}

/*
 * A third process maps and faults the page in while conversions to
 * private run: its faults wait for the conversion and find the page
 * private, and none of its mappings keeps a page-table entry after it.
 * All on one CPU: the mapper runs during a conversion only when its timer
 * preempts the parent inside it, so that its fault meets the conversion
 * half done, however the host schedules the test VM's vCPUs.
 */
TEST(conversion_unmaps_mappings_made_while_it_runs)
{
	int fd, sock, round, mapped = 0, waited = 0, cpu = sched_getcpu();
	struct race_report r;
	volatile int *seq;
	struct kvm_vm *vm;
	uint8_t *mem;
	pid_t pid;

	GMEM_REQUIRE_IN_PLACE();
	race_setup(&vm, &fd, &mem, &seq);
	pin_to_cpu(cpu);
	pid = race_mapper_start(fd, seq, cpu, &sock);

	for (round = 0; round < RACE_MAX_ROUNDS && waited < RACE_MIN_WAITS;
	     round++) {
		r = race_to_private(sock, fd, seq, round);
		race_to_shared(fd, seq, round);
		ASSERT_EQ(r.wrong, 0) TH_LOG("round %d", round);
		ASSERT_EQ(r.leaked, 0)
			TH_LOG("round %d: a mapping reaches the private page", round);
		mapped += r.mapped;
		waited += r.waited;
	}
	ASSERT_TRUE(race_mapper_stop(pid, sock));
	TH_LOG("%d rounds, %d mappings, %d faults that waited for a conversion",
	       round, mapped, waited);
	EXPECT_GE(waited, RACE_MIN_WAITS);
	EXPECT_EQ(peer_access(mem, 'r'), PEER_SECRET);
	unmap_shared_gmem(vm, fd, mem, RACE_PAGES);
}

#define XPROC_MAX_ROUNDS 50

/*
 * Every kind of process at once, with the mapper on another CPU than the
 * converting one: a forked child and a process given the fd over a
 * socket fault page 0 in through their own mappings before each
 * conversion, and the mapper maps and reads it while the conversion
 * runs.  Once it has returned, none of them reaches the page.
 */
TEST(conversion_unmaps_every_process_on_every_cpu)
{
	int fd, sock, round, i, waited = 0;
	struct race_report r;
	struct peer peers[2];
	volatile int *seq;
	struct kvm_vm *vm;
	uint8_t *mem;
	pid_t pid;

	GMEM_REQUIRE_IN_PLACE();
	if (get_nprocs() < 2)
		SKIP(return, "needs two CPUs");
	race_setup(&vm, &fd, &mem, &seq);
	pin_to_cpu(0);
	peer_start(&peers[0], "a forked child", fd, mem, false);
	peer_start(&peers[1], "a process given the fd over a socket", fd, mem,
		   true);
	pid = race_mapper_start(fd, seq, 1, &sock);

	for (round = 0; round < XPROC_MAX_ROUNDS && waited < RACE_MIN_WAITS;
	     round++) {
		for (i = 0; i < ARRAY_SIZE(peers); i++) {
			ASSERT_EQ(peer_ask(&peers[i], 'r'), PEER_SECRET)
				TH_LOG("round %d: %s", round, peers[i].what);
			ASSERT_TRUE(pte_present(peers[i].pid, peers[i].page))
				TH_LOG("round %d: %s has no page-table entry",
				       round, peers[i].what);
		}
		r = race_to_private(sock, fd, seq, round);
		ASSERT_EQ(r.wrong, 0) TH_LOG("round %d", round);
		ASSERT_EQ(r.leaked, 0)
			TH_LOG("round %d: a mapping reaches the private page", round);
		for (i = 0; i < ARRAY_SIZE(peers); i++) {
			ASSERT_FALSE(pte_present(peers[i].pid, peers[i].page))
				TH_LOG("round %d: %s still maps the private page",
				       round, peers[i].what);
			ASSERT_EQ(peer_ask(&peers[i], 'r'), PEER_SIGBUS)
				TH_LOG("round %d: %s read the private page",
				       round, peers[i].what);
		}
		race_to_shared(fd, seq, round);
		waited += r.waited;
	}
	for (i = 0; i < ARRAY_SIZE(peers); i++) {
		EXPECT_TRUE(peer_stop(&peers[i]))
			TH_LOG("%s failed", peers[i].what);
	}
	ASSERT_TRUE(race_mapper_stop(pid, sock));
	TH_LOG("%d rounds, %d faults that waited for a conversion", round,
	       waited);
	EXPECT_GE(waited, RACE_MIN_WAITS);
	EXPECT_EQ(peer_access(mem, 'r'), PEER_SECRET);
	unmap_shared_gmem(vm, fd, mem, RACE_PAGES);
}

TEST_F(iso, file_io_on_the_guest_memfd_fails)
{
	uint8_t buf[PAGE];

	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(read(self->fd, buf, PAGE), -1);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(pread(self->fd, buf, PAGE, 0), -1);
	EXPECT_EQ(errno, ESPIPE);
	EXPECT_TRUE(all_zero(buf, PAGE));
	EXPECT_EQ(write(self->fd, buf, PAGE), -1);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(pwrite(self->fd, buf, PAGE, 0), -1);
	EXPECT_EQ(errno, ESPIPE);
	EXPECT_TRUE(secret_intact(self->fd, self->page));
}

/*
 * Neither /proc/self/fd/N nor /proc/self/map_files may open a second file
 * on the guest_memfd: its state lives and dies with its only file.
 */
TEST_F(iso, guest_memfd_cannot_be_reopened_through_proc)
{
	char fd_path[64], map_path[128];

	snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", self->fd);
	snprintf(map_path, sizeof(map_path), "/proc/self/map_files/%lx-%lx",
		 (uintptr_t)self->mem, (uintptr_t)(self->mem + NR_PAGES * PAGE));
	EXPECT_EQ(open(fd_path, O_RDWR), -1);
	EXPECT_EQ(errno, ENXIO);
	EXPECT_EQ(open(fd_path, O_RDONLY), -1);
	EXPECT_EQ(errno, ENXIO);
	EXPECT_EQ(open(map_path, O_RDWR), -1);
	EXPECT_EQ(errno, ENXIO);
}

/* Copying out of the guest_memfd in the kernel: no path exists. */
TEST_F(iso, no_in_kernel_copy_out_of_the_guest_memfd)
{
	int memfd = memfd_create("gmem-iso", 0), pipefd[2];
	loff_t off = 0;
	uint8_t buf[PAGE];

	ASSERT_GE(memfd, 0);
	ASSERT_EQ(pipe(pipefd), 0);
	/* The file has no position to read from (no FMODE_PREAD)... */
	EXPECT_EQ(sendfile(memfd, self->fd, &off, PAGE), -1);
	EXPECT_EQ(errno, ESPIPE);
	/* ...and no way to read from the current one. */
	EXPECT_EQ(sendfile(memfd, self->fd, NULL, PAGE), -1);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(splice(self->fd, NULL, pipefd[1], NULL, PAGE, 0), -1);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(copy_file_range(self->fd, NULL, memfd, NULL, PAGE, 0), -1);
	EXPECT_EQ(errno, EXDEV);
	EXPECT_EQ(pread(memfd, buf, PAGE, 0), 0);
	close(pipefd[0]);
	close(pipefd[1]);
	close(memfd);
	EXPECT_TRUE(secret_intact(self->fd, self->page));
}

/* A private page as the user buffer of a syscall on another file. */
TEST_F(iso, private_page_is_no_syscall_buffer)
{
	int memfd = memfd_create("gmem-iso", 0);
	uint8_t buf[PAGE];

	ASSERT_GE(memfd, 0);
	memset(buf, 0x11, sizeof(buf));
	ASSERT_EQ(pwrite(memfd, buf, PAGE, 0), PAGE);

	EXPECT_EQ(pread(memfd, self->page, PAGE, 0), -1);	/* host writes */
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(pwrite(memfd, self->page, PAGE, PAGE), -1);	/* host reads */
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(pread(memfd, buf, PAGE, PAGE), 0);
	close(memfd);
	EXPECT_TRUE(secret_intact(self->fd, self->page));
}

struct remote {
	pid_t pid;
	uint8_t *addr;
};

/* From a child: the parent's private page through its pid. */
static bool remote_locked_out(void *arg)
{
	struct remote *r = arg;
	uint8_t buf[PAGE];
	struct iovec local = { .iov_base = buf, .iov_len = PAGE };
	struct iovec remote = { .iov_base = r->addr, .iov_len = PAGE };
	char path[64];
	bool ok = true;
	int mem;

	memset(buf, 0, sizeof(buf));
	if (process_vm_readv(r->pid, &local, 1, &remote, 1, 0) != -1 ||
	    errno != EFAULT)
		ok = !fprintf(stderr, "process_vm_readv: %m\n");
	if (process_vm_writev(r->pid, &local, 1, &remote, 1, 0) != -1 ||
	    errno != EFAULT)
		ok = !fprintf(stderr, "process_vm_writev: %m\n");

	snprintf(path, sizeof(path), "/proc/%d/mem", r->pid);
	mem = open(path, O_RDWR);
	if (mem < 0)
		return !fprintf(stderr, "open %s: %m\n", path);
	if (pread(mem, buf, PAGE, (uintptr_t)r->addr) != -1 || errno != EIO)
		ok = !fprintf(stderr, "read %s: %m\n", path);
	if (pwrite(mem, buf, PAGE, (uintptr_t)r->addr) != -1 || errno != EIO)
		ok = !fprintf(stderr, "write %s: %m\n", path);
	close(mem);
	return ok && !holds_secret(buf, PAGE);
}

TEST_F(iso, other_processes_cannot_reach_it_by_pid)
{
	struct remote r = { .pid = getpid(), .addr = self->page };

	EXPECT_TRUE(in_child(remote_locked_out, &r));
	EXPECT_TRUE(remote_locked_out(&r)) TH_LOG("the same, on ourselves");
	EXPECT_TRUE(secret_intact(self->fd, self->page));
}

TEST_F(iso, vmsplice_takes_no_reference)
{
	struct iovec iov = { .iov_base = self->page, .iov_len = PAGE };
	int pipefd[2];

	ASSERT_EQ(pipe(pipefd), 0);
	EXPECT_EQ(vmsplice(pipefd[1], &iov, 1, 0), -1);
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(vmsplice(pipefd[1], &iov, 1, SPLICE_F_GIFT), -1);
	EXPECT_EQ(errno, EFAULT);
	close(pipefd[0]);
	close(pipefd[1]);
	EXPECT_TRUE(secret_intact(self->fd, self->page));
}

/* A loop device over a memfd: O_DIRECT I/O pins the user buffer itself. */
static int loop_create(int *backing)
{
	int ctl = open("/dev/loop-control", O_RDWR), nr, dev;
	char path[32];

	if (ctl < 0)
		return -1;
	nr = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	TEST_ASSERT(nr >= 0, "LOOP_CTL_GET_FREE");
	*backing = memfd_create("gmem-loop", 0);
	TEST_ASSERT(*backing >= 0 && !ftruncate(*backing, 16 * PAGE), "memfd");
	snprintf(path, sizeof(path), "/dev/loop%d", nr);
	dev = open(path, O_RDWR);
	TEST_ASSERT(dev >= 0, "open %s", path);
	TEST_ASSERT(!ioctl(dev, LOOP_SET_FD, *backing), "LOOP_SET_FD");
	close(dev);
	dev = open(path, O_RDWR | O_DIRECT);
	TEST_ASSERT(dev >= 0, "open %s O_DIRECT", path);
	return dev;
}

TEST_F(iso, direct_io_cannot_use_a_private_page)
{
	uint8_t *shared = self->mem + PAGE;
	int backing, dev = loop_create(&backing);

	if (dev < 0)
		SKIP(return, "no /dev/loop-control (CONFIG_BLK_DEV_LOOP)");

	/* The path works on a shared page of the same file... */
	ASSERT_EQ(pwrite(dev, shared, PAGE, 0), PAGE);
	ASSERT_EQ(pread(dev, shared, PAGE, PAGE), PAGE);
	/* ...but not on the private one, in either direction. */
	EXPECT_EQ(pwrite(dev, self->page, PAGE, 0), -1);
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(pread(dev, self->page, PAGE, PAGE), -1);
	EXPECT_EQ(errno, EFAULT);

	EXPECT_EQ(ioctl(dev, LOOP_CLR_FD), 0);
	close(dev);
	close(backing);
	EXPECT_TRUE(secret_intact(self->fd, self->page));
}

static int io_uring_register_page(int ring, void *p)
{
	struct iovec iov = { .iov_base = p, .iov_len = PAGE };

	return syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS,
		       &iov, 1) ? errno : 0;
}

TEST_F(iso, io_uring_fixed_buffers_pin_only_shared_pages)
{
	struct io_uring_params params = {};
	uint64_t error_offset = 0;
	int ring = syscall(__NR_io_uring_setup, 4, &params);

	if (ring < 0 && errno == ENOSYS)
		SKIP(return, "no io_uring (CONFIG_IO_URING)");
	ASSERT_GE(ring, 0);

	EXPECT_EQ(io_uring_register_page(ring, self->page), EFAULT);

	/* A fixed buffer on a shared page is a long-term pin: no conversion. */
	ASSERT_EQ(io_uring_register_page(ring, self->mem + 2 * PAGE), 0);
	EXPECT_EQ(gmem_set_attrs(self->fd, PAGE, 3 * PAGE, PRIVATE,
				 MODE_KEEP, &error_offset), -EAGAIN);
	EXPECT_EQ(error_offset, 2 * PAGE);
	ASSERT_EQ(syscall(__NR_io_uring_register, ring,
			  IORING_UNREGISTER_BUFFERS, NULL, 0), 0);
	EXPECT_EQ(gmem_set_attrs(self->fd, PAGE, 3 * PAGE, PRIVATE,
				 MODE_KEEP, NULL), 0);
	close(ring);
	EXPECT_TRUE(secret_intact(self->fd, self->page));
}

/* The physical address of the page mapped at @p, from /proc/self/pagemap. */
static uint64_t phys_addr(void *p)
{
	uint64_t entry = pagemap_entry(getpid(), p);

	TEST_ASSERT((entry & PM_PRESENT) && (entry & PM_PFN),
		    "pagemap: page not present or no PFN (%#lx)", entry);
	return (entry & PM_PFN) * PAGE;
}

/* The offset in /proc/kcore of physical address @pa (its direct map). */
static off_t kcore_offset(int kcore, uint64_t pa)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int i;

	TEST_ASSERT(pread(kcore, &eh, sizeof(eh), 0) == sizeof(eh), "kcore");
	for (i = 0; i < eh.e_phnum; i++) {
		TEST_ASSERT(pread(kcore, &ph, sizeof(ph),
				  eh.e_phoff + i * sizeof(ph)) == sizeof(ph),
			    "kcore phdr");
		if (ph.p_type == PT_LOAD && ph.p_paddr != -1ULL &&
		    pa >= ph.p_paddr && pa < ph.p_paddr + ph.p_memsz)
			return ph.p_offset + pa - ph.p_paddr;
	}
	return -1;
}

/*
 * /proc/kcore reads physical memory through the kernel's direct map, which
 * still maps the private pages of a software-protected VM: removing them
 * from it is upstream's later "direct map removal" work, and hardware
 * protected VMs do not need it.  The boundary that holds is the
 * capability: without CAP_SYS_RAWIO, even root cannot open it.
 */
TEST_F(iso, kcore_needs_cap_sys_rawio)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct caps[2];
	int status;
	pid_t pid;

	if (access("/proc/kcore", F_OK))
		SKIP(return, "no /proc/kcore (CONFIG_PROC_KCORE)");

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		if (syscall(SYS_capget, &hdr, caps))
			_exit(2);
		caps[CAP_SYS_RAWIO / 32].effective &= ~(1u << (CAP_SYS_RAWIO % 32));
		if (syscall(SYS_capset, &hdr, caps))
			_exit(3);
		_exit(open("/proc/kcore", O_RDONLY) < 0 && errno == EPERM ? 0 : 1);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
}

/*
 * Ends the test as an expected failure (TAP's XFAIL): a known limitation
 * that the test demonstrates, with its reason.  Not a skip, which would
 * say that the test could not run.
 */
#define XFAIL_KNOWN(statement, fmt, ...) do {				\
	snprintf(_metadata->results->reason,				\
		 sizeof(_metadata->results->reason), fmt, ##__VA_ARGS__);\
	_metadata->exit_code = KSFT_XFAIL;				\
	statement;							\
} while (0)

TEST_F(iso, kcore_does_not_show_a_private_page)
{
	int kcore = open("/proc/kcore", O_RDONLY);
	uint8_t buf[PAGE];
	off_t off;

	if (kcore < 0)
		SKIP(return, "no /proc/kcore (CONFIG_PROC_KCORE)");

	/* Where the page is, found while it is shared and mapped. */
	ASSERT_TRUE(secret_intact(self->fd, self->page));
	off = kcore_offset(kcore, phys_addr(self->page));
	ASSERT_GE(off, 0);
	ASSERT_EQ(pread(kcore, buf, PAGE, off), PAGE);
	ASSERT_TRUE(holds_secret(buf, PAGE)) TH_LOG("wrong kcore offset");

	gmem_convert(self->fd, 0, PAGE, PRIVATE, MODE_KEEP);
	memset(buf, 0, sizeof(buf));
	if (pread(kcore, buf, PAGE, off) == PAGE && holds_secret(buf, PAGE)) {
		close(kcore);
		XFAIL_KNOWN(return, "private pages stay in the direct map, which /proc/kcore (CAP_SYS_RAWIO) reads");
	}
	close(kcore);
}

struct zero_check {
	int fd;
	uint8_t *addr;
};

/* Every way the host can read the page reads zeros. */
static bool reads_zeros(void *arg)
{
	struct zero_check *z = arg;
	uint8_t buf[PAGE], *late;
	struct iovec local = { .iov_base = buf, .iov_len = PAGE };
	struct iovec remote = { .iov_base = z->addr, .iov_len = PAGE };
	bool ok = all_zero(z->addr, PAGE);
	int mem = open("/proc/self/mem", O_RDONLY);

	memset(buf, 0xff, sizeof(buf));
	ok &= pread(mem, buf, PAGE, (uintptr_t)z->addr) == PAGE &&
	      all_zero(buf, PAGE);
	close(mem);
	memset(buf, 0xff, sizeof(buf));
	ok &= process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == PAGE &&
	      all_zero(buf, PAGE);
	late = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, z->fd, 0);
	ok &= late != MAP_FAILED && all_zero(late, PAGE);
	munmap(late, PAGE);
	return ok;
}

TEST_F(iso, zero_mode_leaves_nothing_to_read)
{
	struct zero_check z = { .fd = self->fd, .addr = self->page };

	GMEM_REQUIRE_RFC_V5(GMEM_V5_CONTENT_MODES);
	gmem_convert(self->fd, 0, PAGE, SHARED, MODE_ZERO);
	EXPECT_TRUE(reads_zeros(&z));
	EXPECT_TRUE(in_child(reads_zeros, &z));
	EXPECT_FALSE(all_zero(self->mem + PAGE, PAGE)) TH_LOG("past the range");
}

/* ------------------------------------------------------------------ */
/* Diagnostics carry no contents: trace events, fdinfo, gmemtop.      */

#define TRACE_INSTANCE	"/sys/kernel/tracing/instances/gmem_isolation"

/*
 * The secret as text output could show it: raw, or one of its 32- or
 * 64-bit words in hex or decimal.
 */
static bool text_leaks(const char *text)
{
	uint64_t w64;
	uint32_t w32[2];
	char forms[6][32];
	int i;

	memcpy(&w64, secret, 8);
	memcpy(w32, secret, 8);
	snprintf(forms[0], 32, "%.8s", secret);
	snprintf(forms[1], 32, "%lx", w64);
	snprintf(forms[2], 32, "%lu", w64);
	snprintf(forms[3], 32, "%x", w32[0]);
	snprintf(forms[4], 32, "%x", w32[1]);
	snprintf(forms[5], 32, "%u", w32[0]);
	for (i = 0; i < ARRAY_SIZE(forms); i++)
		if (strcasestr(text, forms[i]))
			return true;
	return false;
}

/* Everything guest_memfd traces: faults, conversions, EAGAIN, punches. */
static void secret_workload(int fd, uint8_t *mem)
{
	struct iovec iov = { .iov_base = mem + PAGE, .iov_len = PAGE };
	int pipefd[2], i;
	char buf[PAGE];

	for (i = 0; i < 3; i++) {
		fill_secret(mem + PAGE, 3 * PAGE);
		gmem_convert(fd, PAGE, 3 * PAGE, PRIVATE, MODE_KEEP);
		gmem_convert(fd, PAGE, 3 * PAGE, SHARED, MODE_KEEP);
		gmem_convert(fd, PAGE, PAGE, PRIVATE, MODE_NONE);
		gmem_convert(fd, PAGE, PAGE, SHARED, MODE_ZERO_OR_NONE);
	}
	fill_secret(mem + PAGE, PAGE);
	TEST_ASSERT(!pipe(pipefd) && vmsplice(pipefd[1], &iov, 1, 0) == PAGE,
		    "vmsplice");
	TEST_ASSERT(gmem_set_attrs(fd, PAGE, PAGE, PRIVATE, MODE_KEEP,
				   NULL) == -EAGAIN, "EAGAIN");
	TEST_ASSERT(read(pipefd[0], buf, PAGE) == PAGE, "read pipe");
	close(pipefd[0]);
	close(pipefd[1]);
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			       3 * PAGE, PAGE), "punch");
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE, 3 * PAGE, PAGE),
		    "allocate");
	fill_secret(mem + 3 * PAGE, PAGE);
}

TEST_F(iso, trace_events_and_fdinfo_carry_no_contents)
{
	static char text[1 << 20];
	char path[128];
	long cpu;

	if (access("/sys/kernel/tracing/events/kvm_gmem", F_OK))
		SKIP(return, "no kvm_gmem trace events");
	rmdir(TRACE_INSTANCE);
	ASSERT_EQ(mkdir(TRACE_INSTANCE, 0755), 0);
	ASSERT_TRUE(gmem_write_file(TRACE_INSTANCE "/events/kvm_gmem/enable", "1"));

	secret_workload(self->fd, self->mem);

	/* Positive control: the scan finds the secret where it is. */
	ASSERT_TRUE(gmem_write_file(TRACE_INSTANCE "/trace_marker", "marker GMEMLEAK"));
	ASSERT_NE(gmem_read_file(TRACE_INSTANCE "/trace", text, sizeof(text)), 0);
	ASSERT_NE(strstr(text, "kvm_gmem_set_attributes_end"), NULL);
	ASSERT_NE(strstr(text, "kvm_gmem_refcount_fail"), NULL);
	*strstr(text, "marker GMEMLEAK") = 0;
	EXPECT_FALSE(text_leaks(text)) TH_LOG("trace text holds the pattern");

	for (cpu = 0; cpu < sysconf(_SC_NPROCESSORS_ONLN); cpu++) {
		size_t n;

		snprintf(path, sizeof(path),
			 TRACE_INSTANCE "/per_cpu/cpu%ld/trace_pipe_raw", cpu);
		n = gmem_read_file(path, text, sizeof(text));
		/* Only the marker may hold the secret, once. */
		if (holds_secret(text, n)) {
			char *hit = memmem(text, n, secret, sizeof(secret));

			EXPECT_EQ(memmem(hit + 1, text + n - hit - 1, secret,
					 sizeof(secret)), NULL)
				TH_LOG("cpu%ld ring buffer holds the pattern", cpu);
		}
	}
	gmem_write_file(TRACE_INSTANCE "/events/kvm_gmem/enable", "0");
	EXPECT_EQ(rmdir(TRACE_INSTANCE), 0);

	gmem_fdinfo_text(self->fd, text, sizeof(text));
	EXPECT_FALSE(text_leaks(text)) TH_LOG("fdinfo holds the pattern");
}

/*
 * A guest_memfd's statistics are its own: one created where another was
 * just freed (the same memory, most likely) starts from zero, and shows
 * nothing of what the other guest did.
 */
TEST_F(iso, new_guest_memfd_inherits_nothing_from_an_old_one)
{
	static const char *const counters[] = {
		"gmem_conversions_to_private", "gmem_conversions_to_shared",
		"gmem_pages_to_private", "gmem_pages_to_shared", "gmem_eagain",
	};
	int round, k, fd;

	for (round = 0; round < 8; round++) {
		fd = vm_create_guest_memfd(self->vm, NR_PAGES * PAGE,
					   GUEST_MEMFD_FLAG_INIT_SHARED);
		for (k = 0; k < ARRAY_SIZE(counters); k++) {
			ASSERT_EQ(gmem_fdinfo_ulong(fd, counters[k]), 0)
				TH_LOG("round %d: %s", round, counters[k]);
		}
		EXPECT_EQ(gmem_fdinfo_ulong(fd, "gmem_private_pages"), 0);
		gmem_convert(fd, 0, 2 * PAGE, PRIVATE, MODE_NONE);
		gmem_convert(fd, PAGE, PAGE, SHARED, MODE_ZERO_OR_NONE);
		close(fd);
		/* Inodes are freed after an RCU grace period: wait for one. */
		syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
		usleep(20000);
	}
}

/*
 * gmemtop of the clone this test was built in, in tools/gmemtop of the
 * nearest directory above it that has one (tests/kvm builds in place or
 * in out/BASE).
 */
static void gmemtop_path(char *path, size_t len)
{
	char dir[PATH_MAX - 64], *slash;
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);

	TEST_ASSERT(n > 0, "readlink");
	dir[n] = 0;
	while ((slash = strrchr(dir, '/'))) {
		*slash = 0;
		snprintf(path, len, "%s/tools/gmemtop/gmemtop", dir);
		if (!access(path, F_OK))
			return;
	}
}

/* Starts gmemtop with @args, its stdout and stderr into @out. */
static pid_t gmemtop_start(const char *path, char *const args[], int out)
{
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork");
	if (!pid) {
		dup2(out, 1);
		dup2(out, 2);
		execv(path, args);
		_exit(127);
	}
	return pid;
}

/*
 * Whether @pid holds a link for every BPF program it loaded: a libbpf
 * skeleton attaches them all together.
 */
static bool bpf_attached(pid_t pid)
{
	char dir[64], link[PATH_MAX], target[64];
	int progs = 0, links = 0;
	struct dirent *e;
	ssize_t n;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return false;
	while ((e = readdir(d))) {
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		progs += !strcmp(target, "anon_inode:bpf-prog");
		links += !strcmp(target, "anon_inode:bpf_link");
	}
	closedir(d);
	return progs && links >= progs;
}

/* Whether child @pid has exited; it is left to be waited for. */
static bool exited(pid_t pid)
{
	siginfo_t info = { 0 };

	return !waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) &&
	       info.si_pid == pid;
}

/*
 * Waits up to a minute for gmemtop @pid to attach: a debug kernel's
 * verifier can take seconds, more with two loading at once.
 */
static bool gmemtop_wait_attached(pid_t pid)
{
	int i;

	for (i = 0; i < 600; i++) {
		if (bpf_attached(pid))
			return true;
		if (exited(pid))
			return false;
		usleep(100 * 1000);
	}
	return false;
}

TEST_F(iso, gmemtop_output_carries_no_contents)
{
	char path[PATH_MAX], *snoop[] = { "gmemtop", "--snoop", "--json", NULL };
	char *batch[] = { "gmemtop", "-b", "-d", "0.5", NULL };
	static char text[1 << 20];
	int out[2], status, i;
	char ino[32];
	struct stat st;
	pid_t pid[2];

	gmemtop_path(path, sizeof(path));
	if (access(path, X_OK))
		SKIP(return, "gmemtop is not built (make -C tools/gmemtop)");
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		SKIP(return, "no BTF, which gmemtop needs (6.12's debug kernel)");

	ASSERT_EQ(fstat(self->fd, &st), 0);
	snprintf(ino, sizeof(ino), "%lu", st.st_ino);

	for (i = 0; i < 2; i++) {
		out[i] = memfd_create("gmemtop-out", 0);
		ASSERT_GE(out[i], 0);
		pid[i] = gmemtop_start(path, i ? batch : snoop, out[i]);
	}
	for (i = 0; i < 2; i++)
		EXPECT_TRUE(gmemtop_wait_attached(pid[i]))
			TH_LOG("gmemtop %s never attached",
			       i ? "-b" : "--snoop");
	secret_workload(self->fd, self->mem);
	sleep(1);		/* one more report */

	for (i = 0; i < 2; i++) {
		kill(pid[i], SIGINT);
		ASSERT_EQ(waitpid(pid[i], &status, 0), pid[i]);
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
		memset(text, 0, sizeof(text));
		ASSERT_GE(pread(out[i], text, sizeof(text) - 1, 0), 0);
		/* Positive control: it did watch this guest_memfd. */
		EXPECT_NE(strstr(text, ino), NULL)
			TH_LOG("gmemtop %s did not see inode %s:\n%s",
			       i ? "-b" : "--snoop", ino, text);
		EXPECT_FALSE(text_leaks(text)) TH_LOG("gmemtop output: %s", text);
		close(out[i]);
	}
}

/* ------------------------------------------------------------------ */
/* Memory failure                                                     */

/*
 * Poisons the page mapped at @p: 0, or the errno of MADV_HWPOISON.  A
 * dirty page's mappers are killed with SIGBUS, which is no failure here.
 */
static int poison_page(uint8_t *p)
{
	sigjmp_buf env;
	int r = 0;

	gmem_sigbus_jmp = &env;
	if (!sigsetjmp(env, 1))
		r = madvise(p, PAGE, MADV_HWPOISON) ? errno : 0;
	gmem_sigbus_jmp = NULL;
	return r;
}

/*
 * A file of POISON_PAGES pages, each holding its own pattern, page 5
 * private (so that requests to shared change attributes too), and pages
 * 3 and 6 poisoned while shared.
 */
#define POISON_PAGES	8

FIXTURE(poison) {
	struct kvm_vm *vm;
	int fd;
	uint8_t *mem;
};

FIXTURE_SETUP(poison)
{
	int i, r;

	GMEM_REQUIRE_IN_PLACE();
	/* The sysctl exists exactly when MADV_HWPOISON does. */
	if (access("/proc/sys/vm/memory_failure_early_kill", F_OK))
		SKIP(return, "no CONFIG_MEMORY_FAILURE");

	self->mem = map_shared_gmem(&self->vm, &self->fd, POISON_PAGES);
	ASSERT_NE(self->mem, MAP_FAILED);

	for (i = 0; i < POISON_PAGES; i++)
		gmem_pattern(self->mem + i * PAGE, PAGE, i + 1);
	gmem_convert(self->fd, 5 * PAGE, PAGE, PRIVATE, MODE_KEEP);
	r = poison_page(self->mem + 3 * PAGE);
	ASSERT_EQ(r, 0) TH_LOG("MADV_HWPOISON: %s", strerror(r));
	r = poison_page(self->mem + 6 * PAGE);
	ASSERT_EQ(r, 0) TH_LOG("MADV_HWPOISON: %s", strerror(r));
}

FIXTURE_TEARDOWN(poison)
{
	if (self->vm)
		unmap_shared_gmem(self->vm, self->fd, self->mem, POISON_PAGES);
}

/*
 * What fdinfo says of the attributes and conversions of @fd, one value
 * per line: a failed request must leave all of it as it was.
 */
static void attribute_state(int fd, char *buf, size_t len)
{
	static const char *const keys[] = {
		"gmem_ranges", "gmem_summary", "gmem_shared_pages",
		"gmem_private_pages", "gmem_conversions_to_private",
		"gmem_conversions_to_shared", "gmem_pages_to_private",
		"gmem_pages_to_shared", "gmem_eagain",
	};
	size_t n = 0;
	char value[128];
	int k;

	for (k = 0; k < ARRAY_SIZE(keys); k++) {
		TEST_ASSERT(gmem_fdinfo(fd, keys[k], value, sizeof(value)),
			    "fdinfo: no %s", keys[k]);
		n += snprintf(buf + n, len - n, "%s: %s\n", keys[k], value);
	}
}

static const char *mode_name(uint64_t mode)
{
	return mode == MODE_ZERO ? "ZERO" :
	       mode == MODE_PRESERVE ? "PRESERVE" : "flags 0";
}

/*
 * Every request over a range holding a poisoned page fails with
 * EHWPOISON at the first poisoned page of the range, in every content
 * mode and both directions, whether or not its attributes would change:
 * no retry can succeed, so it is never EAGAIN (memory failure keeps a
 * reference to the page), and zeroing or keeping a page that cannot be
 * read is no option.  Nothing changes: attributes, counters, contents;
 * and the poisoned pages stay out of the host's reach.
 */
TEST_F(poison, poisoned_page_fails_conversion_and_is_never_read)
{
	static const struct {
		int first, end, poisoned;
		const char *what;
	} ranges[] = {
		{ 3, 4, 3, "the poisoned page alone" },
		{ 3, 5, 3, "the poisoned page first" },
		{ 1, 5, 3, "the poisoned page inside" },
		{ 0, 4, 3, "the poisoned page last" },
		{ 1, 8, 3, "two poisoned pages" },
		{ 4, 8, 6, "a private page, then the poisoned one" },
	};
	static const uint64_t modes[] = { MODE_NONE, MODE_ZERO, MODE_PRESERVE };
	char before[1024], after[1024];
	uint64_t error_offset;
	int i, m, to_private, r;
	uint8_t *late, v;

	GMEM_REQUIRE_RFC_V5(GMEM_V5_EHWPOISON);
	attribute_state(self->fd, before, sizeof(before));
	for (i = 0; i < ARRAY_SIZE(ranges); i++) {
		uint64_t offset = ranges[i].first * PAGE;
		uint64_t size = (ranges[i].end - ranges[i].first) * PAGE;

		for (to_private = 0; to_private < 2; to_private++) {
			for (m = 0; m < ARRAY_SIZE(modes); m++) {
				error_offset = -1ULL;
				r = gmem_set_attrs(self->fd, offset, size,
						   to_private ? PRIVATE : SHARED,
						   modes[m], &error_offset);
				/* A mode refused for the direction is refused first. */
				if (to_private && modes[m] == MODE_ZERO) {
					EXPECT_EQ(r, -EOPNOTSUPP);
					EXPECT_EQ(error_offset, offset);
					continue;
				}
				EXPECT_EQ(r, -EHWPOISON)
					TH_LOG("%s, %s to %s: %s", ranges[i].what,
					       mode_name(modes[m]),
					       to_private ? "private" : "shared",
					       strerror(-r));
				EXPECT_EQ(error_offset, ranges[i].poisoned * PAGE)
					TH_LOG("%s, %s to %s", ranges[i].what,
					       mode_name(modes[m]),
					       to_private ? "private" : "shared");
			}
		}
	}
	attribute_state(self->fd, after, sizeof(after));
	EXPECT_STREQ(before, after);

	for (i = 0; i < POISON_PAGES; i++) {
		uint8_t *p = self->mem + i * PAGE;

		if (i == 3 || i == 6 || i == 5) {
			EXPECT_FALSE(gmem_host_read(p, &v))
				TH_LOG("page %d was read", i);
		} else {
			EXPECT_TRUE(gmem_pattern_ok(p, PAGE, i + 1))
				TH_LOG("page %d changed", i);
		}
	}
	/* Nor can a mapping made after the poisoning read it. */
	late = mmap(NULL, POISON_PAGES * PAGE, PROT_READ, MAP_SHARED,
		    self->fd, 0);
	ASSERT_NE(late, MAP_FAILED);
	EXPECT_FALSE(gmem_host_read(late + 3 * PAGE, &v));
	EXPECT_FALSE(gmem_host_read(late + 6 * PAGE, &v));
	munmap(late, POISON_PAGES * PAGE);

	/* The private page kept its data through all of it. */
	gmem_convert(self->fd, 5 * PAGE, PAGE, SHARED, MODE_PRESERVE);
	EXPECT_TRUE(gmem_pattern_ok(self->mem + 5 * PAGE, PAGE, 6));
}

/*
 * The rest of the file converts as if nothing had happened, both ways and
 * in every mode, and once a poisoned page is punched out of the file,
 * ranges over its offset convert again while those over the other one
 * still fail.
 */
TEST_F(poison, ranges_without_a_poisoned_page_still_convert)
{
	static const struct {
		int first, end;
	} clean[] = { { 0, 3 }, { 4, 6 }, { 7, 8 } };
	unsigned long to_private, to_shared;
	uint64_t error_offset = 0;
	uint8_t *fresh;
	int i, j;

	GMEM_REQUIRE_RFC_V5(GMEM_V5_EHWPOISON);
	to_private = gmem_fdinfo_ulong(self->fd, "gmem_conversions_to_private");
	to_shared = gmem_fdinfo_ulong(self->fd, "gmem_conversions_to_shared");
	for (i = 0; i < ARRAY_SIZE(clean); i++) {
		uint64_t offset = clean[i].first * PAGE;
		uint64_t size = (clean[i].end - clean[i].first) * PAGE;

		gmem_convert(self->fd, offset, size, PRIVATE, MODE_NONE);
		gmem_convert(self->fd, offset, size, SHARED, MODE_NONE);
		gmem_convert(self->fd, offset, size, PRIVATE, MODE_PRESERVE);
		gmem_convert(self->fd, offset, size, SHARED, MODE_PRESERVE);
		for (j = clean[i].first; j < clean[i].end; j++)
			EXPECT_TRUE(gmem_pattern_ok(self->mem + j * PAGE, PAGE,
						    j + 1))
				TH_LOG("page %d lost its data", j);
		gmem_convert(self->fd, offset, size, PRIVATE, MODE_PRESERVE);
		gmem_convert(self->fd, offset, size, SHARED, MODE_ZERO);
		EXPECT_TRUE(all_zero(self->mem + offset, size))
			TH_LOG("pages [%d, %d) not zeroed", clean[i].first,
			       clean[i].end);
	}
	EXPECT_EQ(gmem_fdinfo_ulong(self->fd, "gmem_conversions_to_private"),
		  to_private + 3 * ARRAY_SIZE(clean));
	EXPECT_EQ(gmem_fdinfo_ulong(self->fd, "gmem_conversions_to_shared"),
		  to_shared + 3 * ARRAY_SIZE(clean));

	/* Punching page 3 out leaves a hole that converts like any other. */
	ASSERT_EQ(fallocate(self->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			    3 * PAGE, PAGE), 0);
	gmem_convert(self->fd, 0, 6 * PAGE, PRIVATE, MODE_PRESERVE);
	gmem_convert(self->fd, 0, 6 * PAGE, SHARED, MODE_ZERO);
	/* This mapping never saw the poison: it reads the new page. */
	fresh = mmap(NULL, POISON_PAGES * PAGE, PROT_READ, MAP_SHARED,
		     self->fd, 0);
	ASSERT_NE(fresh, MAP_FAILED);
	EXPECT_TRUE(all_zero(fresh, 6 * PAGE));
	munmap(fresh, POISON_PAGES * PAGE);

	EXPECT_EQ(gmem_set_attrs(self->fd, 0, POISON_PAGES * PAGE, SHARED,
				 MODE_PRESERVE, &error_offset), -EHWPOISON);
	EXPECT_EQ(error_offset, 6 * PAGE);
}

/*
 * v8 does not special-case poison: a range holding a poisoned page
 * converts both ways like any other, and the page stays out of the host's
 * reach whatever its attributes.
 */
TEST_F(poison, poisoned_page_converts_like_any_other)
{
	uint64_t error_offset = -1ULL;
	uint8_t v;
	int r;

	if (GMEM_RFC_V5)
		SKIP(return, "7.3-only: 6.12 (RFC v5) fails it with EHWPOISON");

	r = gmem_set_attrs(self->fd, 2 * PAGE, 3 * PAGE, PRIVATE, MODE_NONE,
			   &error_offset);
	ASSERT_EQ(r, 0) TH_LOG("to private: %s at %#lx", strerror(-r),
			       error_offset);
	EXPECT_EQ(gmem_fdinfo_ulong(self->fd, "gmem_private_pages"), 4);
	EXPECT_FALSE(gmem_host_read(self->mem + 2 * PAGE, &v));

	gmem_convert(self->fd, 0, POISON_PAGES * PAGE, SHARED, MODE_NONE);
	EXPECT_EQ(gmem_fdinfo_ulong(self->fd, "gmem_private_pages"), 0);
	EXPECT_TRUE(gmem_pattern_ok(self->mem + 2 * PAGE, PAGE, 3));
	EXPECT_FALSE(gmem_host_read(self->mem + 3 * PAGE, &v));
	EXPECT_FALSE(gmem_host_read(self->mem + 6 * PAGE, &v));
}

TEST_HARNESS_MAIN
