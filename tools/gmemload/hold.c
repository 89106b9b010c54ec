// SPDX-License-Identifier: GPL-2.0
/*
 * Pages held on purpose, so that conversions to private meet EAGAIN.
 *
 * Each kind of holder is a process of its own, forked before any VM or
 * thread exists and named "hold-KIND", the way a real host has other
 * processes holding a VMM's pages: it gets the guest_memfd over a socket,
 * maps the page and takes a reference on it the way its kind does.  The
 * main process keeps the ground truth of every hold: page, kind, pid,
 * name, and the EAGAINs it caused.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>

#include "gmemload.h"
#include "mm/gup_test.h"

#define GUP_TEST_PATH	"/sys/kernel/debug/gup_test"
#define NULLB_CONFIG	"/sys/kernel/config/nullb"

const char *const hold_kind_names[NR_HOLD_KINDS] = {
	[HOLD_VMSPLICE]	= "vmsplice",
	[HOLD_GUP_PIN]	= "gup-pin",
	[HOLD_IOURING]	= "iouring",
	[HOLD_ODIRECT]	= "odirect",
};

/* What the main process asks a holder, and the answer. */
enum hold_op { OP_HOLD, OP_RELEASE };

struct hold_request {
	enum hold_op op;
	unsigned int slot;
	uint64_t offset;	/* OP_HOLD: of the page, in the file sent */
};

/* A holder process, seen from the main process. */
struct holder {
	pid_t pid;
	int sock;
	unsigned int active;	/* holds it has now */
};

/* One page held, seen from the main process. */
struct hold {
	bool active;
	enum hold_kind kind;
	uint64_t release_ns;
	struct hold_record *record;
};

/* What a holder keeps per slot. */
struct held_page {
	uint8_t *addr;
	int fd[2];		/* vmsplice: the pipe; iouring: the ring */
	aio_context_t aio;	/* odirect: the write in flight */
};

static struct holder holders[NR_HOLD_KINDS];
static struct hold holds[MAX_HOLDS];
static struct hold_record *records;
static unsigned int nr_records, records_cap;

/* ---- the holder processes' side ---- */

/*
 * vmsplice() without SPLICE_F_GIFT makes the pipe take a reference on the
 * page itself (get_user_pages_fast()); until the pipe is read, guest_memfd
 * sees an unexpected user.
 */
static int hold_vmsplice(struct held_page *p)
{
	struct iovec iov = { .iov_base = p->addr, .iov_len = PAGE_BYTES };

	if (pipe2(p->fd, O_CLOEXEC))
		return -errno;
	if (vmsplice(p->fd[1], &iov, 1, 0) == (ssize_t)PAGE_BYTES)
		return 0;
	close(p->fd[0]);
	close(p->fd[1]);
	return -EIO;
}

static int release_vmsplice(struct held_page *p)
{
	char buf[PAGE_BYTES];
	ssize_t n = read(p->fd[0], buf, sizeof(buf));

	close(p->fd[0]);
	close(p->fd[1]);
	return n == (ssize_t)sizeof(buf) ? 0 : -EIO;
}

/*
 * A FOLL_PIN | FOLL_LONGTERM pin through CONFIG_GUP_TEST, the kind an
 * IOMMU mapping (VFIO) takes.  gup_test holds one pinned range at a time.
 */
static int gup_test_fd = -1;

static int hold_gup_pin(struct held_page *p)
{
	struct pin_longterm_test args = {
		.addr = (uintptr_t)p->addr,
		.size = PAGE_BYTES,
		.flags = PIN_LONGTERM_TEST_FLAG_USE_FAST,
	};

	return ioctl(gup_test_fd, PIN_LONGTERM_TEST_START, &args) ? -errno : 0;
}

static int release_gup_pin(struct held_page *p)
{
	return ioctl(gup_test_fd, PIN_LONGTERM_TEST_STOP) ? -errno : 0;
}

/* io_uring fixed buffers: registered pages stay pinned until unregistered. */
static int hold_iouring(struct held_page *p)
{
	struct iovec iov = { .iov_base = p->addr, .iov_len = PAGE_BYTES };
	struct io_uring_params params = {};
	int err = 0;

	p->fd[0] = syscall(__NR_io_uring_setup, 1, &params);
	if (p->fd[0] < 0)
		return -errno;
	if (syscall(__NR_io_uring_register, p->fd[0], IORING_REGISTER_BUFFERS,
		    &iov, 1)) {
		err = -errno;
		close(p->fd[0]);
	}
	return err;
}

static int release_iouring(struct held_page *p)
{
	int err = 0;

	if (syscall(__NR_io_uring_register, p->fd[0],
		    IORING_UNREGISTER_BUFFERS, NULL, 0))
		err = -errno;
	close(p->fd[0]);
	return err;
}

/*
 * O_DIRECT disk I/O, as a VMM's virtual disk does it (QEMU's aio=native):
 * an asynchronous write out of the page pins it (pin_user_pages_fast())
 * until the device completes it.  The device is a null_blk of our own
 * that completes every request --hold-ms after it was queued; the disk
 * takes the name of its configfs directory.
 */
static char nullb_name[32], nullb_dir[64];
static int nullb_fd = -1;

static int nullb_set(const char *attr, unsigned long long value)
{
	char path[128];
	int ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", nullb_dir, attr);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fprintf(f, "%llu\n", value) < 0)
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

static int nullb_create(void)
{
	char dev[40];
	int err;

	snprintf(nullb_name, sizeof(nullb_name), "gmemload-%d", getpid());
	snprintf(nullb_dir, sizeof(nullb_dir), "%s/%s", NULLB_CONFIG,
		 nullb_name);
	if (mkdir(nullb_dir, 0700))
		return -errno;
	err = nullb_set("size", 1);		/* MiB, never touched */
	if (!err)
		err = nullb_set("blocksize", 4096);
	if (!err)
		err = nullb_set("irqmode", 2);	/* complete from a timer */
	if (!err)
		err = nullb_set("completion_nsec", opt.hold_ms * 1000000ULL);
	if (!err)
		err = nullb_set("power", 1);
	if (err)
		return err;
	snprintf(dev, sizeof(dev), "/dev/%s", nullb_name);
	nullb_fd = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC);
	return nullb_fd < 0 ? -errno : 0;
}

static void nullb_remove(void)
{
	if (!nullb_dir[0])
		return;
	if (nullb_fd >= 0)
		close(nullb_fd);
	nullb_set("power", 0);
	rmdir(nullb_dir);
}

static int hold_odirect(struct held_page *p)
{
	struct iocb cb = {
		.aio_lio_opcode = IOCB_CMD_PWRITE,
		.aio_fildes = nullb_fd,
		.aio_buf = (uintptr_t)p->addr,
		.aio_nbytes = PAGE_BYTES,
	};
	struct iocb *cbs[] = { &cb };
	int err = 0;

	p->aio = 0;
	if (syscall(__NR_io_setup, 1, &p->aio))
		return -errno;
	if (syscall(__NR_io_submit, p->aio, 1, cbs) != 1) {
		err = -errno;
		syscall(__NR_io_destroy, p->aio);
	}
	return err;
}

static int release_odirect(struct held_page *p)
{
	struct io_event ev;
	int err = 0;

	if (syscall(__NR_io_getevents, p->aio, 1, 1, &ev, NULL) != 1)
		err = -errno;
	else if (ev.res != PAGE_BYTES)
		err = ev.res < 0 ? (int)ev.res : -EIO;
	syscall(__NR_io_destroy, p->aio);
	return err;
}

static const struct {
	int (*hold)(struct held_page *p);
	int (*release)(struct held_page *p);
} kind_ops[NR_HOLD_KINDS] = {
	[HOLD_VMSPLICE]	= { hold_vmsplice, release_vmsplice },
	[HOLD_GUP_PIN]	= { hold_gup_pin, release_gup_pin },
	[HOLD_IOURING]	= { hold_iouring, release_iouring },
	[HOLD_ODIRECT]	= { hold_odirect, release_odirect },
};

/* Receives a request, and with OP_HOLD the guest_memfd in *fd. */
static bool receive_request(int sock, struct hold_request *req, int *fd)
{
	char control[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { .iov_base = req, .iov_len = sizeof(*req) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control, .msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != sizeof(*req))
		return false;
	cmsg = CMSG_FIRSTHDR(&msg);
	*fd = cmsg && cmsg->cmsg_type == SCM_RIGHTS ?
	      *(int *)CMSG_DATA(cmsg) : -1;
	return req->slot < MAX_HOLDS;
}

static int holder_hold(enum hold_kind kind, struct held_page *p, int fd,
		       uint64_t offset)
{
	int err;

	p->addr = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, offset);
	close(fd);
	if (p->addr == MAP_FAILED)
		return -errno;
	err = kind_ops[kind].hold(p);
	if (err)
		munmap(p->addr, PAGE_BYTES);
	return err;
}

static int holder_release(enum hold_kind kind, struct held_page *p)
{
	int err = kind_ops[kind].release(p);

	munmap(p->addr, PAGE_BYTES);
	return err;
}

/* Set up what the kind needs; the first answer says whether it could. */
static int holder_setup(enum hold_kind kind)
{
	switch (kind) {
	case HOLD_GUP_PIN:
		gup_test_fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
		return gup_test_fd < 0 ? -errno : 0;
	case HOLD_ODIRECT:
		return nullb_create();
	default:
		return 0;
	}
}

static void holder_cleanup(enum hold_kind kind)
{
	if (kind == HOLD_ODIRECT)
		nullb_remove();
}

/* The holder process: serves requests until the main process goes. */
static void __attribute__((noreturn)) holder_main(enum hold_kind kind,
						  int sock)
{
	static struct held_page pages[MAX_HOLDS];
	struct hold_request req;
	char name[16];
	int err, fd;

	snprintf(name, sizeof(name), "hold-%s", hold_kind_names[kind]);
	prctl(PR_SET_NAME, name);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Cleaned up first: a failure answered ends the main process. */
	err = holder_setup(kind);
	if (err)
		holder_cleanup(kind);
	if (write(sock, &err, sizeof(err)) != sizeof(err) || err)
		_exit(1);
	while (receive_request(sock, &req, &fd)) {
		if (req.op == OP_HOLD)
			err = fd < 0 ? -EBADF :
			      holder_hold(kind, &pages[req.slot], fd, req.offset);
		else
			err = holder_release(kind, &pages[req.slot]);
		if (write(sock, &err, sizeof(err)) != sizeof(err))
			break;
	}
	holder_cleanup(kind);
	_exit(0);
}

/* ---- the main process's side ---- */

static int send_request(struct holder *h, const struct hold_request *req,
			int fd)
{
	char control[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { .iov_base = (void *)req, .iov_len = sizeof(*req) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;
	int err;

	if (fd >= 0) {
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	if (sendmsg(h->sock, &msg, 0) != sizeof(*req) ||
	    read(h->sock, &err, sizeof(err)) != sizeof(err))
		die("holder %d stopped answering", h->pid);
	return err;
}

/* Or a holder would keep the others' sockets open, and never see EOF. */
static void close_other_holders(enum hold_kind kind)
{
	int k;

	for (k = 0; k < NR_HOLD_KINDS; k++)
		if (k != kind && holders[k].pid)
			close(holders[k].sock);
}

static void start_holder(enum hold_kind kind)
{
	struct holder *h = &holders[kind];
	int sv[2], err;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		die("socketpair: %s", strerror(errno));
	fflush(NULL);
	h->pid = fork();
	if (h->pid < 0)
		die("fork: %s", strerror(errno));
	if (!h->pid) {
		close(sv[0]);
		close_other_holders(kind);
		holder_main(kind, sv[1]);
	}
	close(sv[1]);
	h->sock = sv[0];
	if (read(h->sock, &err, sizeof(err)) != sizeof(err))
		die("holder %s did not start", hold_kind_names[kind]);
	if (err == -ENOENT && kind == HOLD_GUP_PIN)
		unsupported("--hold-kinds gup-pin needs %s (CONFIG_GUP_TEST, debugfs)",
			    GUP_TEST_PATH);
	if (err == -ENOENT && kind == HOLD_ODIRECT)
		unsupported("--hold-kinds odirect needs %s (CONFIG_BLK_DEV_NULL_BLK, configfs)",
			    NULLB_CONFIG);
	if (err)
		die("holder %s: %s", hold_kind_names[kind], strerror(-err));
}

void start_holders(void)
{
	int k;

	if (!opt.hold_pct)
		return;
	for (k = 0; k < NR_HOLD_KINDS; k++)
		if (opt.hold_kinds & (1u << k))
			start_holder(k);
}

void stop_holders(void)
{
	int k;

	release_all_holds();
	for (k = 0; k < NR_HOLD_KINDS; k++) {
		if (!holders[k].pid)
			continue;
		close(holders[k].sock);
		waitpid(holders[k].pid, NULL, 0);
		holders[k].pid = 0;
	}
}

static struct hold *free_hold_slot(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (!holds[i].active)
			return &holds[i];
	return NULL;
}

static struct hold_record *new_record(void)
{
	struct hold_record *r;

	if (nr_records == records_cap) {
		records_cap = records_cap ? 2 * records_cap : 64;
		r = realloc(records, records_cap * sizeof(*records));
		if (!r)
			die("out of memory");
		records = r;
	}
	r = &records[nr_records++];
	memset(r, 0, sizeof(*r));
	return r;
}

/*
 * The next kind from --hold-kinds, in turn.  gup_test pins one range at a
 * time: while its holder has one, that kind is skipped.
 */
static int pick_kind(void)
{
	static unsigned int turn;
	unsigned int i, k;

	for (i = 0; i < NR_HOLD_KINDS; i++) {
		k = turn++ % NR_HOLD_KINDS;
		if (!(opt.hold_kinds & (1u << k)))
			continue;
		if (k == HOLD_GUP_PIN && holders[k].active)
			continue;
		return k;
	}
	return -1;
}

bool hold_page(struct vm_ctx *v, uint64_t page)
{
	struct hold_request req = { .op = OP_HOLD, .offset = page * PAGE_BYTES };
	struct hold *h = free_hold_slot();
	struct hold_record *rec;
	int kind = pick_kind(), err;

	if (!h || kind < 0)
		return false;
	req.slot = h - holds;
	err = send_request(&holders[kind], &req, v->fd);
	if (err)
		die("vm%d: hold-%s of page %#lx: %s", v->idx,
		    hold_kind_names[kind], req.offset, strerror(-err));
	rec = new_record();
	rec->vm = v->idx;
	rec->offset = req.offset;
	rec->kind = kind;
	rec->pid = holders[kind].pid;
	h->kind = kind;
	h->record = rec;
	h->release_ns = now_ns() + opt.hold_ms * NS_PER_MS;
	h->active = true;
	holders[kind].active++;
	return true;
}

static void release_hold(struct hold *h)
{
	struct hold_request req = { .op = OP_RELEASE, .slot = h - holds };
	int err = send_request(&holders[h->kind], &req, -1);

	if (err)
		die("releasing hold-%s of page %#lx: %s",
		    hold_kind_names[h->kind], h->record->offset, strerror(-err));
	holders[h->kind].active--;
	h->active = false;
}

void release_expired_holds(void)
{
	uint64_t now = now_ns();
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active && holds[i].release_ns <= now)
			release_hold(&holds[i]);
}

void release_all_holds(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active)
			release_hold(&holds[i]);
}

bool any_hold_active(void)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++)
		if (holds[i].active)
			return true;
	return false;
}

/* Charges an EAGAIN at @offset of @v to the hold of that page, if any. */
void blame_hold(struct vm_ctx *v, uint64_t offset)
{
	int i;

	for (i = 0; i < MAX_HOLDS; i++) {
		struct hold_record *rec = holds[i].record;

		if (holds[i].active && rec->vm == v->idx &&
		    rec->offset == offset)
			rec->eagain++;
	}
}

const struct hold_record *hold_records(unsigned int *nr)
{
	*nr = nr_records;
	return records;
}
