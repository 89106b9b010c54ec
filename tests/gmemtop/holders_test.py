#!/usr/bin/env python3
"""gmemtop --holders against gmemload's ground truth, in the VM.

- Every EAGAIN hotspot names the process that held the page: the pid and
  name of gmemload's holder process (hold-vmsplice, hold-gup-pin,
  hold-iouring, hold-odirect), the kind of reference and a kernel stack
  through the holder's own system call.
- A page taken before gmemtop was watching has an "unknown" holder.
- Without --holders no GUP program is loaded and no holder is shown.
- A reference taken by a worker thread names its process (pid, leader's
  name) and the thread (tid).
- Only a taker of the kind that blocked the page (a pin for a pinned page,
  a GET otherwise) that still held it is named, else "unknown": a pinner
  that let go is never named, nor a GET taker of a pinned page.
- GUP on another process's memory (process_vm_readv(), /proc/PID/mem) and
  a GUP call across two VMAs of the file record the right process, inode,
  offsets and kinds (gmemhold's takers map, read with bpftool).
- With kernel.kptr_restrict 1 root sees symbols; with 2, or 1 without
  CAP_SYSLOG, gmemtop says why and shows no symbol and no address.
- --holders=auto loads the GUP programs but attaches none (bpftool link)
  until an EAGAIN; from then a reference taken is named, one taken before
  is "taken before watching"; after HOLDERS_QUIET_REPORTS reports without
  a new EAGAIN they are detached, and a pin let go and a page pinned
  meanwhile, unseen, never make the earlier pinner named.

Prints TAP.  Needs root, in-place conversion on (tests/gmemabi.py),
CONFIG_GUP_TEST and debugfs, CONFIG_BLK_DEV_NULL_BLK and configfs.
  holders_test.py [CHECK...]    only the named checks
"""
import ctypes
import fcntl
import json
import mmap
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemwatch import GMEMLOAD, GMEMTOP
from gmem_ops import (MODE_NONE, PAGE, PIN_LONGTERM_TEST_START,
                      PIN_LONGTERM_TEST_STOP, PRIVATE, Iovec, Script, libc,
                      set_attributes)

HOLDERS = [GMEMLOAD, "--quiet", "--vms", "2", "--size", "2M", "--pattern",
           "random4k", "--hold", "100", "--hold-kinds", "all",
           "--hold-ms", "30", "--count", "24", "--seed", "11"]
# What gmemtop must say of each of gmemload's holder kinds.
KINDS = {
    "vmsplice": ("gup-get", "__do_sys_vmsplice"),
    "gup-pin": ("gup-pin-longterm", "gup_test_ioctl"),
    "iouring": ("gup-pin-longterm", "io_sqe_buffer_register"),
    "odirect": ("gup-pin", "bio_iov_iter_get_pages"),
}
# gmemhold's programs: fexit on GUP and on the unpin functions.
GUP_PROGRAMS = ("get_user_pages", "pin_user_pages", "unpin_")
NR_GUP_PROGRAMS = 8 + 7
with open(os.path.join(gmemwatch.TOP, "tools", "gmemtop", "holders.h")) as _h:
    QUIET_REPORTS = int(re.search(r"#define HOLDERS_QUIET_REPORTS\s+(\d+)",
                                  _h.read())[1])


def start_gmemtop(args):
    return gmemwatch.start([GMEMTOP, "--json", "-d", "0.5", *args])


def last_report(top):
    out, _ = gmemwatch.stop(top)
    return json.loads(out.strip().splitlines()[-1])


def watch_holders(gmemtop_args, during=lambda: None):
    """gmemload's report of HOLDERS and gmemtop's last one while it ran;
    @during is called once gmemtop is attached."""
    truth, out, _ = gmemwatch.watch(
        [GMEMTOP, "--json", "-d", "0.5", *gmemtop_args], HOLDERS, during)
    return truth, json.loads(out.strip().splitlines()[-1])


def hotspots(report, truth):
    """{(vm index, offset): hotspot} for gmemload's files."""
    vm_of = {v["ino"]: v["vm"] for v in truth["vms"]}
    return {(vm_of[f["ino"]], h["offset"]): h
            for f in report["files"] if f["ino"] in vm_of
            for h in f["hotspots"]}


def last_blocking_holds(truth):
    """{(vm, offset): the last hold of that page that caused an EAGAIN}."""
    holds = {}
    for h in truth["held_pages"]:
        if h["eagain"]:
            holds[(h["vm"], h["offset"])] = h
    return holds


def bpftool(*args):
    return json.loads(subprocess.run(["bpftool", "-j", *args], check=True,
                                     capture_output=True, text=True).stdout)


def gup_programs_linked():
    """gmemhold's programs attached now: one link each."""
    names = {p["id"]: p["name"] for p in bpftool("prog", "show")
             if p.get("name", "").startswith(GUP_PROGRAMS)}
    return sorted(names[link["prog_id"]] for link in bpftool("link", "show")
                  if link.get("prog_id") in names)


def gup_programs_loaded():
    return sorted(p["name"] for p in bpftool("prog", "show")
                  if p.get("name", "").startswith(GUP_PROGRAMS))


def under_holders(probe):
    """What @probe() finds while a gmemtop --holders runs."""
    top = start_gmemtop(["--holders"])
    try:
        return probe()
    finally:
        last_report(top)


def check_every_hotspot_names_its_holder():
    truth, report = watch_holders(["--holders"])
    want = last_blocking_holds(truth)
    got = hotspots(report, truth)
    if set(got) != set(want):
        return f"hotspots {sorted(got)}, want {sorted(want)}"
    if {h["kind"] for h in want.values()} != set(KINDS):
        return f"gmemload used kinds {[h['kind'] for h in want.values()]}"
    for key, hold in want.items():
        who = got[key]["holder"]
        kind, frame = KINDS[hold["kind"]]
        if not who or (who["pid"], who["comm"], who["kind"]) != \
                (hold["pid"], hold["comm"], kind):
            return f"page {key}: holder {who}, want {hold}"
        if not any(f.startswith(frame + "+") for f in who["stack"].split(";")):
            return f"page {key}: no {frame} in the stack of {who}"
    return None


def check_reference_taken_before_watching_is_unknown():
    """The hold is taken, then gmemtop starts while the conversion keeps
    meeting it: GUP was not watched, so the holder is unknown."""
    load = subprocess.Popen([GMEMLOAD, "--quiet", "--size", "1M",
                             "--pattern", "random4k", "--hold", "100",
                             "--hold-ms", "8000", "--count", "1",
                             "--seed", "5"], stdout=subprocess.PIPE,
                            text=True)
    time.sleep(1)
    top = start_gmemtop(["--holders"])
    try:
        truth = json.loads(load.communicate(timeout=60)[0])
        time.sleep(1)
    finally:
        report = last_report(top)
    got = hotspots(report, truth)
    if len(got) != 1:
        return f"hotspots {got}, want one"
    (spot,) = got.values()
    if spot["holder"] is not None:
        return f"holder {spot['holder']}, want null (unknown)"
    return None


def check_without_holders_nothing_is_loaded():
    loaded = []
    truth, report = watch_holders(
        [], lambda: loaded.extend(gup_programs_loaded()))
    if loaded:
        return f"GUP programs loaded without --holders: {loaded}"
    spots = hotspots(report, truth)
    if not spots or any("holder" in h for h in spots.values()):
        return f"hotspots without --holders: {spots}"
    loaded_on = under_holders(gup_programs_loaded)
    return None if len(loaded_on) == NR_GUP_PROGRAMS else \
        f"with --holders, GUP programs {loaded_on}"


# ---- scripted holders: this process is the VMM, children take its pages

EAGAIN = 11
PROT_NONE, MAP_FIXED = 0, 0x10
PR_SET_NAME, PR_SET_PDEATHSIG = 15, 1
KIND_NUMBERS = {"gup-get": 0, "gup-pin": 1, "gup-pin-longterm": 2}
KPTR_RESTRICT = "/proc/sys/kernel/kptr_restrict"
# A kernel address as gmemtop would print one, raw or as a symbol offset.
ADDRESS = re.compile(r"ffff[0-9a-f]{12}|\?\+0x")
IORING_REGISTER_BUFFERS, IORING_UNREGISTER_BUFFERS = 0, 1
NR_IO_URING_SETUP, NR_IO_URING_REGISTER = 425, 427
NR_PROCESS_VM_READV = 310

libc.syscall.restype = ctypes.c_long


def set_name(name):
    """The calling thread's comm."""
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()), ctypes.c_ulong(0),
               ctypes.c_ulong(0), ctypes.c_ulong(0))


def take_vmsplice(addr, size=PAGE):
    """A GET reference in a pipe, until release_vmsplice()."""
    r, w = os.pipe()
    iov = Iovec(addr, size)
    assert libc.vmsplice(w, ctypes.byref(iov), 1, 0) == size
    return lambda: (os.read(r, size), os.close(r), os.close(w))


def take_gup_pin(addr, size=PAGE):
    """A FOLL_PIN | FOLL_LONGTERM pin through gup_test (pin_user_pages())."""
    gup = os.open("/sys/kernel/debug/gup_test", os.O_RDWR)
    fcntl.ioctl(gup, PIN_LONGTERM_TEST_START,
                struct.pack("QQI", addr, size, 0) + bytes(4))
    return lambda: (fcntl.ioctl(gup, PIN_LONGTERM_TEST_STOP), os.close(gup))


def take_iouring(addr, size=PAGE):
    """An io_uring fixed buffer: a long-term pin until unregistered."""
    params = ctypes.create_string_buffer(120)
    ring = libc.syscall(NR_IO_URING_SETUP, 1, params)
    assert ring >= 0, ctypes.get_errno()
    iov = Iovec(addr, size)
    assert libc.syscall(NR_IO_URING_REGISTER, ring, IORING_REGISTER_BUFFERS,
                        ctypes.byref(iov), 1) == 0, ctypes.get_errno()

    def release():
        assert libc.syscall(NR_IO_URING_REGISTER, ring,
                            IORING_UNREGISTER_BUFFERS, None, 0) == 0
        os.close(ring)
    return release


class Taker:
    """A child process named @name whose thread @thread (or main thread)
    runs take() and keeps what it took until release()."""

    def __init__(self, name, take, thread=None):
        up_r, up_w = os.pipe()
        down_r, self._down = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(up_r)
            os.close(self._down)
            self._child(name, take, thread, up_w, down_r)
        os.close(up_w)
        os.close(down_r)
        with os.fdopen(up_r) as f:
            self.tid = int(f.readline() or 0)
        assert self.tid, f"taker {name} failed"

    @staticmethod
    def _child(name, take, thread, up, down):
        try:
            libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL),
                       ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
            set_name(name)
            got = {}

            def run():
                if thread:
                    set_name(thread)
                got["release"] = take()
                got["tid"] = threading.get_native_id()
            if thread:
                worker = threading.Thread(target=run)
                worker.start()
                worker.join()
            else:
                run()
            os.write(up, f"{got['tid']}\n".encode())
            # A byte, not EOF: later Takers inherit this pipe's end.
            os.read(down, 1)
            got["release"]()
        finally:
            os._exit(0)

    def release(self):
        """Lets go of what it took, and waits for it to end."""
        if self._down is not None:
            os.write(self._down, b"x")
            os.close(self._down)
            self._down = None
            os.waitpid(self.pid, 0)


def released(take):
    """@take, then at once its release: a reference seen let go."""
    return lambda *args: (take(*args)(), lambda: None)[1]


def convert_blocked(s, page):
    """Converts @page to private, which its holder must make fail."""
    ret, error_offset = set_attributes(s.fd, page * PAGE, PAGE, PRIVATE,
                                       MODE_NONE)
    if (ret, error_offset) != (-EAGAIN, page * PAGE):
        raise AssertionError(f"conversion of page {page}: {ret}, "
                             f"error_offset {error_offset:#x}")


def holder_report(top, s, page):
    """gmemtop's holder of @page of @s's file, after one more interval;
    (holder, the whole last report)."""
    time.sleep(1)
    report = last_report(top)
    for f in report["files"]:
        for h in f["hotspots"] if f["ino"] == s.ino else ():
            if h["offset"] == page * PAGE:
                return h["holder"], report
    raise AssertionError(f"no hotspot at page {page}: {report['files']}")


def scripted(takes, page=1, before=()):
    """gmemtop --holders watches Takers made by @takes (functions of the
    page's address returning a Taker, in order) blocking a conversion of
    @page; @before are made before gmemtop starts.  (holder, Takers)."""
    s = Script(4)
    addr = s.mem + page * PAGE
    takers = [t(addr) for t in before]
    top = start_gmemtop(["--holders"])
    try:
        takers += [t(addr) for t in takes]
        convert_blocked(s, page)
    finally:
        holder, _ = holder_report(top, s, page)
        for t in takers:
            t.release()
        s.close()
    return holder, takers


def expect_holder(who, taker, comm, kind):
    if not who:
        return f"holder unknown, want {taker.pid} ({comm})"
    want = (taker.pid, taker.tid, comm, kind)
    if (who["pid"], who["tid"], who["comm"], who["kind"]) != want:
        return f"holder {who}, want pid, tid, comm, kind {want}"
    return None


def check_worker_thread_named_by_its_process():
    holder, (taker,) = scripted([lambda a: Taker(
        "vmm-like", lambda: take_vmsplice(a), thread="iou-wrk-7")])
    if taker.tid == taker.pid:
        return "the worker thread is the process's leader"
    return expect_holder(holder, taker, "vmm-like", "gup-get")


def check_released_pinner_not_named_get_holder_is():
    """The page's last taker pinned it and let go: the holder is the
    process whose GET reference blocked the conversion."""
    holder, (getter, _) = scripted([
        lambda a: Taker("get-holder", lambda: take_vmsplice(a)),
        lambda a: Taker("pinner", lambda: released(take_gup_pin)(a))])
    return expect_holder(holder, getter, "get-holder", "gup-get")


def check_released_pin_not_named_held_pin_is():
    """Two pins, the later let go (io_uring unregistered, unpin_user_folio):
    the one still held blocked the conversion."""
    holder, (pinner, _) = scripted([
        lambda a: Taker("pin-holder", lambda: take_gup_pin(a)),
        lambda a: Taker("pin-released", lambda: released(take_iouring)(a))])
    return expect_holder(holder, pinner, "pin-holder", "gup-pin-longterm")


def check_pinned_page_with_only_get_takers_is_unknown():
    """Pinned before gmemtop watched, then taken by GET: a GET cannot
    explain a pinned page, so the holder is unknown."""
    holder, _ = scripted(
        [lambda a: Taker("get-taker", lambda: take_vmsplice(a))],
        before=[lambda a: Taker("early-pinner", lambda: take_gup_pin(a))])
    return None if holder is None else f"holder {holder}, want unknown"


def takers_of(ino):
    """{offset: [(pid, kind, released)]} of gmemhold's takers of @ino."""
    pages = {}
    for entry in bpftool("map", "dump", "name", "takers"):
        key, value = entry["formatted"]["key"], entry["formatted"]["value"]
        if key["ino"] != ino:
            continue
        pages[key["offset"]] = sorted(
            (k["pid"], k["kind"], bool(k["released_ns"]))
            for k in value["taker"] if k["ts_ns"])
    return pages


def watched_takers(s, act):
    """gmemhold's takers of @s's file after @act() ran under gmemtop."""
    top = start_gmemtop(["--holders"])
    try:
        act()
        return takers_of(s.ino)
    finally:
        last_report(top)


def in_child(name, body):
    """Runs @body() in a child process named @name; its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            set_name(name)
            body()
            os._exit(0)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, name
    return pid


def check_remote_gup_names_the_reader():
    """process_vm_readv() of pages 2-3 and a /proc/PID/mem read of page 5
    of this process's guest_memfd mapping, from other processes."""
    s = Script(8)
    vmm = os.getpid()
    pids = {}

    def vm_readv():
        buf = ctypes.create_string_buffer(2 * PAGE)
        local = Iovec(ctypes.addressof(buf), 2 * PAGE)
        remote = Iovec(s.mem + 2 * PAGE, 2 * PAGE)
        assert libc.syscall(NR_PROCESS_VM_READV, vmm, ctypes.byref(local), 1,
                            ctypes.byref(remote), 1, 0) == 2 * PAGE

    def mem_read():
        fd = os.open(f"/proc/{vmm}/mem", os.O_RDONLY)
        assert len(os.pread(fd, PAGE, s.mem + 5 * PAGE)) == PAGE
        os.close(fd)

    def act():
        pids["readv"] = in_child("vm-reader", vm_readv)
        pids["mem"] = in_child("mem-reader", mem_read)
    try:
        got = watched_takers(s, act)
    finally:
        s.close()
    # process_vm_readv() pins (pin_user_pages_remote()) and unpins at once;
    # /proc/PID/mem takes and puts a GET reference, which is not watched.
    pin = (pids["readv"], KIND_NUMBERS["gup-pin"], True)
    want = {2 * PAGE: [pin], 3 * PAGE: [pin],
            5 * PAGE: [(pids["mem"], KIND_NUMBERS["gup-get"], False)]}
    return None if got == want else f"takers {got}, want {want}"


def check_buffer_across_two_vmas_records_both():
    """One pin_user_pages() call over pages 0-3 and 8-11 of the file,
    mapped side by side as two VMAs: every page is recorded, and released
    when unpinned."""
    s = Script(16)
    prot = mmap.PROT_READ | mmap.PROT_WRITE
    area = libc.mmap(None, 8 * PAGE, PROT_NONE,
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    for i, first in enumerate((0, 8)):
        at = libc.mmap(area + i * 4 * PAGE, 4 * PAGE, prot,
                       mmap.MAP_SHARED | MAP_FIXED, s.fd, first * PAGE)
        assert at == area + i * 4 * PAGE
    pids = {}

    def act():
        pids["pin"] = in_child("spanner", lambda: take_gup_pin(area,
                                                             8 * PAGE)())
    try:
        got = watched_takers(s, act)
    finally:
        libc.munmap(area, 8 * PAGE)
        s.close()
    taker = [(pids["pin"], KIND_NUMBERS["gup-pin-longterm"], True)]
    want = {p * PAGE: taker for p in (0, 1, 2, 3, 8, 9, 10, 11)}
    return None if got == want else f"takers {got}, want {want}"


def with_kptr_restrict(level, gmemtop_prefix):
    """The holder of a vmsplice()d page and gmemtop's stderr, with
    kernel.kptr_restrict at @level and gmemtop run through
    @gmemtop_prefix; the setting is restored after."""
    with open(KPTR_RESTRICT) as f:
        saved = f.read()
    s = Script(4)
    taker = None
    try:
        with open(KPTR_RESTRICT, "w") as f:
            f.write(f"{level}\n")
        top = gmemwatch.start([*gmemtop_prefix, GMEMTOP, "--json", "-d",
                               "0.5", "--holders"])
        try:
            taker = Taker("kptr-holder", lambda: take_vmsplice(s.mem + PAGE))
            convert_blocked(s, 1)
            time.sleep(1)
        finally:
            out, err = gmemwatch.stop(top)
            if taker:
                taker.release()
    finally:
        with open(KPTR_RESTRICT, "w") as f:
            f.write(saved)
        s.close()
    holder = next(h["holder"] for f in json.loads(out.splitlines()[-1])
                  ["files"] if f["ino"] == s.ino for h in f["hotspots"])
    if not holder or holder["pid"] != taker.pid:
        return None, f"holder {holder}, want pid {taker.pid}"
    return (holder, out, err), None


def expect_hidden(level, prefix, reason):
    got, problem = with_kptr_restrict(level, prefix)
    if problem:
        return problem
    holder, out, err = got
    if holder["stack"] or not holder["stack_hidden"]:
        return f"stack {holder['stack']!r} shown"
    if err.count(reason) != 1:
        return f"stderr does not say once why ({reason!r}): {err!r}"
    if ADDRESS.search(out + err):
        return f"an address shown: {ADDRESS.search(out + err).group(0)}"
    return None


def check_kptr_restrict_1_as_root_symbolizes():
    got, problem = with_kptr_restrict(1, [])
    if problem:
        return problem
    holder, _, err = got
    if holder["stack_hidden"] or "__do_sys_vmsplice+" not in holder["stack"]:
        return f"stack {holder['stack']!r}, hidden {holder['stack_hidden']}"
    return f"stderr {err!r}" if "kptr_restrict" in err else None


def check_kptr_restrict_2_hides_stacks():
    return expect_hidden(2, [], "kernel.kptr_restrict = 2")


def check_kptr_restrict_1_without_cap_syslog_hides_stacks():
    return expect_hidden(1, ["setpriv", "--bounding-set", "-syslog"],
                         "kernel.kptr_restrict = 1 and no CAP_SYSLOG")


# ---- --holders=auto: GUP watched only while hotspots have new EAGAINs

AUTO_STATUS = {"mode": "auto", "watching": False}


def next_report(top, wanted, most=4 * QUIET_REPORTS):
    """The next of gmemtop's reports for which wanted(report) holds."""
    for _ in range(most):
        report = json.loads(top.stdout.readline())
        if wanted(report):
            return report
    raise AssertionError(f"{most} reports, none as wanted: last {report}")


def watching(report):
    return report["holders"]["watching"]


def spot_at(report, s, page):
    """The hotspot at @page of @s's file, or None."""
    return next((h for f in report["files"] if f["ino"] == s.ino
                 for h in f["hotspots"] if h["offset"] == page * PAGE), None)


def expect_taken_before_watching(spot):
    if (spot["holder"], spot.get("holder_unknown")) != \
            (None, "taken before watching"):
        return f"hotspot {spot}, want its holder taken before watching"
    return None


def check_auto_without_eagain_attaches_nothing():
    """Loaded (and verified) at the start, but no GUP or unpin program
    is attached while no EAGAIN came; --holders attaches every one."""
    top = start_gmemtop(["--holders=auto"])
    try:
        loaded, linked = gup_programs_loaded(), gup_programs_linked()
        states = [json.loads(top.stdout.readline())["holders"]
                  for _ in range(3)]
    finally:
        last_report(top)
    if len(loaded) != NR_GUP_PROGRAMS:
        return f"with --holders=auto, GUP programs loaded {loaded}"
    if linked:
        return f"with --holders=auto and no EAGAIN, attached {linked}"
    if states != [AUTO_STATUS] * 3:
        return f"holders status {states}, want {AUTO_STATUS}"
    linked = under_holders(gup_programs_linked)
    return None if len(linked) == NR_GUP_PROGRAMS else \
        f"with --holders, attached {linked}"


def check_auto_watches_after_eagain():
    """An EAGAIN attaches the programs: a pin taken after it is named,
    the reference taken before it is "taken before watching"."""
    s = Script(4)
    takers = []
    top = start_gmemtop(["--holders=auto"])
    try:
        takers.append(Taker("early-holder",
                            lambda: take_vmsplice(s.mem + PAGE)))
        convert_blocked(s, 1)
        next_report(top, watching)
        linked = gup_programs_linked()
        takers.append(Taker("late-holder",
                            lambda: take_gup_pin(s.mem + 2 * PAGE)))
        convert_blocked(s, 2)
        report = next_report(top, lambda r: spot_at(r, s, 2))
    finally:
        last_report(top)
        for t in takers:
            t.release()
        s.close()
    if len(linked) != NR_GUP_PROGRAMS:
        return f"after an EAGAIN, attached {linked}"
    return expect_taken_before_watching(spot_at(report, s, 1)) or \
        expect_holder(spot_at(report, s, 2)["holder"], takers[1],
                      "late-holder", "gup-pin-longterm")


# Pages pinned at once in a watch: enough for takers to share hash
# buckets (4096) in gmemhold's map, which gmemtop rewrites when it
# attaches again.
PINNED_PAGES = 512


def check_auto_detaches_after_quiet_reports():
    """HOLDERS_QUIET_REPORTS reports after the last EAGAIN the programs
    are detached, the holder named stays; its pins let go and another
    taken while detached, the next EAGAIN attaches them again, names
    neither pinner and holds every taker recorded before as let go."""
    s = Script(1 + PINNED_PAGES)
    takers = []
    top = start_gmemtop(["--holders=auto"])
    try:
        takers.append(Taker("first-blocker", lambda: take_vmsplice(s.mem)))
        convert_blocked(s, 0)
        next_report(top, watching)
        pinner = Taker("pin-holder", lambda: take_gup_pin(
            s.mem + PAGE, PINNED_PAGES * PAGE))
        takers.append(pinner)
        convert_blocked(s, 1)
        next_report(top, lambda r: spot_at(r, s, 1))
        watched = 1 + sum(1 for _ in iter(
            lambda: watching(json.loads(top.stdout.readline())), False))
        detached = gup_programs_linked()
        idle = next_report(top, lambda r: True)
        pinner.release()
        takers.append(Taker("unseen-pinner",
                            lambda: take_gup_pin(s.mem + PAGE)))
        convert_blocked(s, 1)
        again = next_report(top, watching)
        linked = gup_programs_linked()
        held = {offset: who for offset, who in takers_of(s.ino).items()
                if any(not released for _, _, released in who)}
    finally:
        last_report(top)
        for t in takers:
            t.release()
        s.close()
    if watched != QUIET_REPORTS:
        return f"watched for {watched} reports after the last EAGAIN, " \
            f"want {QUIET_REPORTS}"
    if detached:
        return f"after {QUIET_REPORTS} quiet reports, attached {detached}"
    problem = expect_holder(spot_at(idle, s, 1)["holder"], pinner,
                            "pin-holder", "gup-pin-longterm")
    if problem:
        return f"detached: {problem}"
    if len(linked) != NR_GUP_PROGRAMS:
        return f"after the next EAGAIN, attached {linked}"
    if held:
        return f"takers of an earlier watch still held: {held}"
    return expect_taken_before_watching(spot_at(again, s, 1))


def main():
    checks = [
        ("every_hotspot_names_its_holder",
         check_every_hotspot_names_its_holder),
        ("reference_taken_before_watching_is_unknown",
         check_reference_taken_before_watching_is_unknown),
        ("without_holders_nothing_is_loaded",
         check_without_holders_nothing_is_loaded),
        ("worker_thread_named_by_its_process",
         check_worker_thread_named_by_its_process),
        ("released_pinner_not_named_get_holder_is",
         check_released_pinner_not_named_get_holder_is),
        ("released_pin_not_named_held_pin_is",
         check_released_pin_not_named_held_pin_is),
        ("pinned_page_with_only_get_takers_is_unknown",
         check_pinned_page_with_only_get_takers_is_unknown),
        ("remote_gup_names_the_reader", check_remote_gup_names_the_reader),
        ("buffer_across_two_vmas_records_both",
         check_buffer_across_two_vmas_records_both),
        ("kptr_restrict_1_as_root_symbolizes",
         check_kptr_restrict_1_as_root_symbolizes),
        ("kptr_restrict_2_hides_stacks", check_kptr_restrict_2_hides_stacks),
        ("kptr_restrict_1_without_cap_syslog_hides_stacks",
         check_kptr_restrict_1_without_cap_syslog_hides_stacks),
        ("auto_without_eagain_attaches_nothing",
         check_auto_without_eagain_attaches_nothing),
        ("auto_watches_after_eagain", check_auto_watches_after_eagain),
        ("auto_detaches_after_quiet_reports",
         check_auto_detaches_after_quiet_reports),
    ]
    wanted = sys.argv[1:]
    return tap.run([c for c in checks if not wanted or c[0] in wanted])


if __name__ == "__main__":
    sys.exit(main())
