#!/usr/bin/env python3
"""A scripted series of guest_memfd operations and the kvm_gmem events
they must produce.

Run as a program, it performs the operations and prints, as JSON, the
identity of its guest_memfd and the exact events expected, in order, each
as [name, "decoded text", optional].  tests/trace/gmem_trace_test.py compares that
ground truth with what tracefs, perf and trace-cmd decode.  Needs root
and in-place conversion on (tests/gmemabi.py names each base's switch).
"""
import ctypes
import fcntl
import json
import mmap
import os
import signal
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gmemabi  # noqa: E402

PAGE = 4096
NR_PAGES = 16
DATA_GPA = 1 << 32

PRIVATE = 1 << 3
SHARED = 0
MODE_NONE, MODE_ZERO, MODE_PRESERVE = 0, 1, 2
MODE_NAMES = {MODE_NONE: "unspecified", MODE_ZERO: "zero",
              MODE_PRESERVE: "preserve"}



def kernel_mode(mode):
    """@mode where the kernel takes content modes; else none (flags 0),
    which leaves contents as they are, as Linux 7.3 converts."""
    return mode if gmemabi.content_modes() else MODE_NONE


FLAG_MMAP, FLAG_INIT_SHARED = 1 << 0, 1 << 1
KVM_MEM_GUEST_MEMFD = 1 << 2
KVM_X86_SW_PROTECTED_VM = 1


def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (0xAE << 8) | nr


KVM_CREATE_VM = _ioc(0, 0x01, 0)
KVM_SET_USER_MEMORY_REGION2 = _ioc(1, 0x49, 160)
KVM_CREATE_GUEST_MEMFD = _ioc(3, 0xD4, 64)
KVM_SET_MEMORY_ATTRIBUTES2 = _ioc(3, 0xD2, 128)

# mm/gup_test.h
PIN_LONGTERM_TEST_START = (1 << 30) | (24 << 16) | (ord('g') << 8) | 7
PIN_LONGTERM_TEST_STOP = ord('g') << 8 | 8
GUP_PIN_COUNTING_BIAS = 1024

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                           ctypes.c_long]
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def set_attributes(fd, offset, size, attributes, mode):
    """KVM_SET_MEMORY_ATTRIBUTES2; returns (-errno or 0, error_offset)."""
    buf = bytearray(struct.pack("QQQQQ", offset, size, attributes, mode, 0)
                    + bytes(88))
    try:
        fcntl.ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, buf)
        ret = 0
    except OSError as e:
        ret = -e.errno
    return ret, struct.unpack_from("Q", buf, 32)[0]


def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length):
        raise OSError(ctypes.get_errno(), "fallocate")


def host_touch_sigbus(addr):
    """Read @addr in a child; True if the child died of SIGBUS."""
    pid = os.fork()
    if pid == 0:
        ctypes.string_at(addr, 1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGBUS


class Script:
    """Performs operations and records the events each must produce."""

    def __init__(self, nr_pages=NR_PAGES):
        self.nr_pages = nr_pages
        self.kvm = os.open("/dev/kvm", os.O_RDWR)
        self.vm = fcntl.ioctl(self.kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM)
        args = bytearray(struct.pack("QQ", nr_pages * PAGE,
                                     FLAG_MMAP | FLAG_INIT_SHARED) + bytes(48))
        self.fd = fcntl.ioctl(self.vm, KVM_CREATE_GUEST_MEMFD, args)
        self.mem = libc.mmap(None, nr_pages * PAGE,
                             mmap.PROT_READ | mmap.PROT_WRITE,
                             mmap.MAP_SHARED, self.fd, 0)
        region = struct.pack("IIQQQQII", 0, KVM_MEM_GUEST_MEMFD, DATA_GPA,
                             nr_pages * PAGE, self.mem, 0, self.fd,
                             0) + bytes(112)
        fcntl.ioctl(self.vm, KVM_SET_USER_MEMORY_REGION2, region)
        self.ino = os.fstat(self.fd).st_ino
        self.pid = os.getpid()
        self.vm_id = self.fdinfo()["gmem_vm_id"]
        self.attrs = [SHARED] * nr_pages
        self.allocated = [False] * nr_pages
        self.events = []
        self.optional_drains = []

    def fdinfo(self):
        info = {}
        with open(f"/proc/self/fdinfo/{self.fd}") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.startswith("gmem_") and \
                   key not in ("gmem_range", "gmem_summary"):
                    info[key] = int(value, 0)
        return info

    def expect(self, name, text, optional=False):
        self.events.append([name, f"ino {self.ino} vm {self.pid}/{self.vm_id} "
                            + text, optional])

    def phase(self, offset, name):
        self.expect("kvm_gmem_phase", f"offset {offset:#x} {name} done")

    def host_write(self, page, value):
        ctypes.memset(self.mem + page * PAGE, value, 1)
        self.allocated[page] = True
        self.expect("kvm_gmem_user_fault", f"offset {page * PAGE:#x} mapped")

    def host_read_private(self, page):
        assert host_touch_sigbus(self.mem + page * PAGE)
        self.expect("kvm_gmem_user_fault",
                    f"offset {page * PAGE:#x} sigbus-private")

    def convert(self, first, n, attrs, mode, busy=None):
        """Convert pages [first, first + n).  @busy is (page, refcount,
        pinned, cause) for a page expected to block it."""
        offset, size = first * PAGE, n * PAGE
        to = "private" if attrs else "shared"
        pages = range(first, first + n)
        had = {self.attrs[p] for p in pages}
        found = "|".join(name for bit, name in ((SHARED, "shared"),
                                                (PRIVATE, "private"))
                         if bit in had)
        changed = sum(self.attrs[p] != attrs for p in pages)
        ret, error_offset = set_attributes(self.fd, offset, size, attrs, mode)

        self.expect("kvm_gmem_set_attributes_begin",
                    f"offset {offset:#x} size {size:#x} to {to} "
                    f"mode {MODE_NAMES[mode]}")
        self.phase(offset, "lock")
        if changed and attrs == PRIVATE:
            self.phase(offset, "unmap")
            # Userspace cannot tell whether an LRU batch still holds them.
            for p in self.optional_drains:
                self.expect("kvm_gmem_lru_drain",
                            f"offset {p * PAGE:#x} resolved 1",
                            optional=True)
            self.optional_drains = []
            if busy:
                page, refcount, pinned, cause = busy
                assert (ret, error_offset) == (-11, page * PAGE), (ret, error_offset)
                self.expect("kvm_gmem_lru_drain",
                            f"offset {page * PAGE:#x} resolved 0")
                self.expect("kvm_gmem_refcount_fail",
                            f"offset {page * PAGE:#x} order 0 refcount "
                            f"{refcount} expected 1 mapcount 0 pinned "
                            f"{pinned} drained 1 cause {cause}")
            self.phase(offset, "refcheck")
        # ZERO writes the allocated pages of the whole range, whether or
        # not their attributes change (upstream v5); flags = 0 and
        # PRESERVE write nothing.
        written = sum(self.allocated[p] for p in pages) \
            if mode == MODE_ZERO else 0
        content = ("kvm_gmem_content",
                   f"offset {offset:#x} size {size:#x} mode "
                   f"{MODE_NAMES[mode]} bytes {written * PAGE}")
        # Only the 6.12 series has the content step and its event.
        has_content = gmemabi.content_modes()
        if changed and not busy:
            assert ret == 0, ret
            nr_gfns = n
            self.expect("kvm_gmem_invalidate_begin",
                        f"pages [{first:#x}, {first + n:#x}) filter "
                        f"{'shared' if attrs else 'private'} memslots 1 "
                        f"gfns {nr_gfns}")
            self.phase(offset, "invalidate")
            if has_content:
                self.expect(*content)
                self.phase(offset, "content")
            self.expect("kvm_gmem_invalidate_end",
                        f"pages [{first:#x}, {first + n:#x})")
            self.phase(offset, "update")
            for p in pages:
                self.attrs[p] = attrs
        else:
            if not busy:
                assert ret == 0, ret
                if has_content:
                    self.expect(*content)
            changed = 0
        self.expect("kvm_gmem_set_attributes_end",
                    f"offset {offset:#x} size {size:#x} from {found} to {to} "
                    f"mode {MODE_NAMES[mode]} ret {ret} error_offset "
                    f"{error_offset:#x} changed {changed}")

    def bad_convert(self, offset, size, errno):
        ret, _ = set_attributes(self.fd, offset, size, PRIVATE, MODE_NONE)
        assert ret == -errno, ret
        self.expect("kvm_gmem_set_attributes_begin",
                    f"offset {offset:#x} size {size:#x} to private "
                    "mode unspecified")
        self.expect("kvm_gmem_set_attributes_end",
                    f"offset {offset:#x} size {size:#x} from  to private "
                    f"mode unspecified ret {ret} error_offset 0x0 changed 0")

    def punch_hole(self, first, n):
        fallocate(self.fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
                  first * PAGE, n * PAGE)
        kinds = {"private" if self.attrs[p] else "shared"
                 for p in range(first, first + n)}
        self.expect("kvm_gmem_punch_hole",
                    f"offset {first * PAGE:#x} len {n * PAGE:#x}")
        self.expect("kvm_gmem_invalidate_begin",
                    f"pages [{first:#x}, {first + n:#x}) filter "
                    f"{'|'.join(k for k in ('shared', 'private') if k in kinds)}"
                    f" memslots 1 gfns {n}")
        self.expect("kvm_gmem_invalidate_end",
                    f"pages [{first:#x}, {first + n:#x})")
        for p in range(first, first + n):
            self.allocated[p] = False

    def close(self):
        """Drop the guest_memfd: its release zaps whatever KVM mapped."""
        libc.munmap(self.mem, self.nr_pages * PAGE)
        os.close(self.fd)
        kinds = {"private" if a else "shared" for a in self.attrs}
        self.expect("kvm_gmem_invalidate_begin",
                    "pages [0x0, 0xffffffffffffffff) filter "
                    f"{'|'.join(k for k in ('shared', 'private') if k in kinds)}"
                    f" memslots 1 gfns {self.nr_pages}")
        self.expect("kvm_gmem_invalidate_end",
                    "pages [0x0, 0xffffffffffffffff)")
        os.close(self.vm)
        os.close(self.kvm)

    def allocate(self, first, n):
        fallocate(self.fd, FALLOC_FL_KEEP_SIZE, first * PAGE, n * PAGE)
        self.expect("kvm_gmem_allocate",
                    f"offset {first * PAGE:#x} len {n * PAGE:#x}")

    def splice(self, page):
        """Keep a reference to @page in a pipe; returns the pipe."""
        r, w = os.pipe()
        iov = Iovec(self.mem + page * PAGE, PAGE)
        assert libc.vmsplice(w, ctypes.byref(iov), 1, 0) == PAGE
        self.allocated[page] = True
        self.expect("kvm_gmem_user_fault", f"offset {page * PAGE:#x} mapped")
        return r, w

    def pin(self, page):
        """Long-term FOLL_PIN of @page through gup_test; returns its fd."""
        gup = os.open("/sys/kernel/debug/gup_test", os.O_RDWR)
        fcntl.ioctl(gup, PIN_LONGTERM_TEST_START,
                    struct.pack("QQI", self.mem + page * PAGE, PAGE, 0)
                    + bytes(4))
        self.allocated[page] = True
        self.expect("kvm_gmem_user_fault", f"offset {page * PAGE:#x} mapped")
        return gup


class ManyFiles:
    """One VM with @nr one-page guest_memfds, each converted to private
    once and kept open, beside @others descriptors of /dev/null: a VMM
    as a watcher that reads every file's fdinfo sees it."""

    def __init__(self, nr, others=0):
        kvm = os.open("/dev/kvm", os.O_RDWR)
        self.vm = fcntl.ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM)
        os.close(kvm)
        self.others = [os.open("/dev/null", os.O_RDONLY)
                       for _ in range(others)]
        self.files = []
        for _ in range(nr):
            args = bytearray(struct.pack("QQ", PAGE,
                                         FLAG_MMAP | FLAG_INIT_SHARED)
                             + bytes(48))
            self.files.append(fcntl.ioctl(self.vm, KVM_CREATE_GUEST_MEMFD,
                                          args))
            ret, _ = set_attributes(self.files[-1], 0, PAGE, PRIVATE,
                                    MODE_NONE)
            if ret:
                raise OSError(-ret, "KVM_SET_MEMORY_ATTRIBUTES2")

    def inos(self):
        return {os.fstat(fd).st_ino for fd in self.files}

    def close(self):
        for fd in self.files + self.others + [self.vm]:
            os.close(fd)


def run_script():
    s = Script()
    s.host_write(0, 1)
    s.host_write(1, 2)
    os.sched_yield()
    # Freshly faulted pages may still sit in an LRU batch: where folios
    # join the LRU through per-CPU batches (7.3), either page's, or both
    # when they went to the batches of different CPUs.
    s.optional_drains = [0, 1]
    s.convert(0, 4, PRIVATE, kernel_mode(MODE_PRESERVE))
    s.host_read_private(0)

    r, w = s.splice(5)
    # page cache + the pipe
    s.convert(4, 4, PRIVATE, MODE_NONE, busy=(5, 2, 0, "other"))
    os.read(r, PAGE)
    os.close(r)
    os.close(w)

    gup = s.pin(6)
    s.convert(4, 4, PRIVATE, MODE_NONE,
              busy=(6, 1 + GUP_PIN_COUNTING_BIAS, 1, "pinned"))
    fcntl.ioctl(gup, PIN_LONGTERM_TEST_STOP)
    os.close(gup)

    s.convert(4, 4, PRIVATE, MODE_NONE)
    s.convert(0, 8, SHARED, kernel_mode(MODE_ZERO))
    s.convert(8, 2, SHARED, MODE_NONE)
    s.bad_convert(PAGE, 0, 22)
    s.punch_hole(0, 2)
    s.allocate(8, 2)
    s.close()
    return s


if __name__ == "__main__":
    script = run_script()
    print(json.dumps({"ino": script.ino, "pid": script.pid,
                      "vm_id": script.vm_id, "events": script.events}))
