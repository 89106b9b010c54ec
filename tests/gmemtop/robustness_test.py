#!/usr/bin/env python3
"""gmemtop, gmemlat and gmemsnoop under abuse, in the VM.

- SIGINT, SIGTERM and SIGHUP end them at once with status 0, batch
  modes after a last report;
- a closed pipe ends them quietly with status 0; a signal while they
  wait on a full pipe loses no output: the reader gets whole reports,
  the last one included;
- an event flood into a reader that stalls: records dropped are counted
  and shown as they happen, printed plus dropped equals every ioctl
  made, and memory stays bounded;
- a process with CAP_BPF and CAP_PERFMON but not root runs in full
  mode; one without them is refused with exit 3;
- without BTF they say so (exit 4);
- COMM is the VMM's name, not that of the thread that converted;
- the full-screen view survives a terminal resize and does not spin;
- killed by SIGQUIT or SIGSEGV, it gives the terminal back as it was
  (modes and screen) and dies of the signal;
- it follows the selected file by inode, and its filters move the
  selection;
- after every run no BPF program, link or map of theirs remains.

GMEMTOP=path runs it all with another build (tools/gmemtop/gmemtop.san:
the same under AddressSanitizer and UBSan).  Prints TAP.  Needs root
and in-place conversion on (tests/gmemabi.py).
"""
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import gmemwatch  # first: tests/ and tests/trace on sys.path
import tap
from gmemtop_test import new_session, quit_view, screen, tmux, watch
from gmemwatch import GMEMLOAD, GMEMTOP, OPS, TOP, wait_attached, \
    wait_loading

GMEMLAT = gmemwatch.named("gmemlat")
GMEMSNOOP = gmemwatch.named("gmemsnoop")
LOADED = 3		# seconds to load and attach, generously, under TCG


def bpf_objects():
    """Ids of every BPF program, link and map there is."""
    ids = set()
    for kind in ("prog", "link", "map"):
        out = subprocess.run(["bpftool", "-j", kind, "list"], check=True,
                             capture_output=True, text=True).stdout
        ids |= {(kind, o["id"]) for o in json.loads(out or "[]")}
    return ids


def signalled(args, sig, ready):
    """Runs @args until @ready(proc), sends @sig; (status, stdout, stderr,
    seconds to exit)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if not ready(proc):
        out, err = proc.communicate(timeout=30)
        return proc.returncode, out, err, None
    start = time.time()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err, time.time() - start


# Each mode and what its last report (or its end) always holds.
ENDINGS = [
    ([GMEMTOP, "--json", "-d", "30"], '"version":1'),
    ([GMEMTOP, "--csv", "-d", "30"], "time,pid,comm"),
    ([GMEMLAT], "Tracing guest_memfd conversions"),
    ([GMEMSNOOP], "0 records dropped"),
    ([GMEMTOP, "--fentry", "--json", "-d", "30"], '"kvm_gmem_events"'),
]


def ends_with_report(sigs, ready, within):
    """Every mode, signalled once @ready: status 0 within @within
    seconds, and its last report."""
    for args, expect in ENDINGS:
        for sig in sigs:
            rc, out, err, took = signalled(args, sig, ready)
            name = f"{os.path.basename(args[0])} {args[1:]} {sig.name}"
            if took is None:
                return f"{name}: never ready (exit {rc}): {err!r}"
            if rc or took > within:
                return f"{name}: exit {rc} after {took:.1f}s: {err!r}"
            if expect not in out + err:
                return f"{name}: no '{expect}' in {out!r} {err!r}"
    return None


def check_signals_end_every_mode():
    """Each signal, each mode: status 0 at once, and the last report."""
    return ends_with_report((signal.SIGINT, signal.SIGTERM, signal.SIGHUP),
                            wait_attached, 5)


def check_signal_while_loading_still_reports():
    """A signal that lands while the programs load, the handlers already
    in place, ends the run like one after: the load finishes, then status
    0 and the last report (which a run stopped before its first interval
    used to skip)."""
    return ends_with_report((signal.SIGINT,), wait_loading, 30)


def check_closed_pipe_ends_quietly():
    """A reader that goes away ends the run with status 0, no message."""
    for args, workload in (
            ([GMEMTOP, "--json", "-d", "0.2"], None),
            ([GMEMTOP, "-b", "-d", "0.2"], None),
            ([GMEMSNOOP], OPS)):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        if not wait_attached(proc):
            return f"{args}: never loaded"
        proc.stdout.close()		# the reader has gone
        if workload:
            subprocess.run(workload, check=True, capture_output=True)
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return f"{args}: still running with its reader gone"
        err = proc.stderr.read().decode()
        if rc or "Broken pipe" in err or "rror" in err:
            return f"{args}: exit {rc}: {err!r}"
    return None


def blocked_writing(pid, seconds=15):
    """Whether @pid is, within @seconds, inside write(2) (x86-64: 1)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        with open(f"/proc/{pid}/syscall") as f:
            if f.read().split()[0] == "1":
                return True
        time.sleep(0.1)
    return False


def check_signal_on_a_full_pipe_loses_nothing():
    """A reader that stalls until gmemtop waits in write(2), then SIGINT,
    SIGTERM and SIGHUP, each while it waits (a signal that lands before a
    byte of a write went through fails it): once the reader drains the
    pipe, it gets whole JSON reports only, the last report included, and
    status 0."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)	# full after a few reports
    proc = subprocess.Popen([GMEMTOP, "--json", "-d", "0.05"], stdout=w,
                            stderr=subprocess.PIPE, text=True)
    os.close(w)
    with os.fdopen(r) as reader:
        if not wait_attached(proc):
            return "never loaded"
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if not blocked_writing(proc.pid):
                proc.kill()
                return f"not waiting on the full pipe before {sig.name}"
            proc.send_signal(sig)
            time.sleep(0.3)	# lands while it waits
        out = reader.read()
    rc = proc.wait(timeout=30)
    if rc:
        return f"exit {rc}: {proc.stderr.read()!r}"
    for line in out.splitlines():
        try:
            json.loads(line)
        except ValueError:
            return f"a report cut short: {line[:80]!r}...{line[-80:]!r}"
    if not out.endswith("}\n"):
        return f"the last report is missing: ...{out[-80:]!r}"
    return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def check_flood_drops_are_counted_and_shown():
    """A snooper whose reader stalls: the ring buffer fills, drops are
    reported as they happen, printed + dropped equals every ioctl
    gmemload made, and memory stays bounded."""
    snoop = subprocess.Popen([GMEMSNOOP, "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    if not wait_attached(snoop):
        return "never loaded"
    # More conversions than the 2 MiB ring buffer has records for (12,483).
    load = subprocess.Popen([GMEMLOAD, "--quiet", "--size", "8M",
                             "--pattern", "random4k", "--count", "20000",
                             "--seed", "3"], stdout=subprocess.PIPE,
                            text=True)
    truth_text, _ = load.communicate(timeout=600)
    rss = rss_kib(snoop.pid)
    # Now read everything, and stop it once it has caught up.
    threading.Timer(10, snoop.send_signal, [signal.SIGINT]).start()
    out, err = snoop.communicate(timeout=120)
    truth = json.loads(truth_text)
    ioctls = truth["totals"]["ioctls"]
    records = [json.loads(line) for line in out.splitlines()]
    m = re.search(r"(\d+) conversions, (\d+) records dropped", err)
    if not m:
        return f"no summary: {err!r}"
    printed, dropped = int(m.group(1)), int(m.group(2))
    if printed != len(records):
        return f"says {printed} printed, printed {len(records)}"
    if not dropped or "records dropped (ring buffer full)" not in err:
        return f"no drop reported while the reader stalled: {err!r}"
    if printed + dropped != ioctls:
        return f"{printed} printed + {dropped} dropped, {ioctls} ioctls made"
    if rss > 64 * 1024 and not GMEMTOP.endswith(".san"):
        return f"{rss} KiB resident during the flood"
    return None


def check_capabilities_suffice_without_root():
    """Not root: CAP_BPF and CAP_PERFMON give full mode where KVM is built
    in; where it is a module (the debug kernel, Debian's), finding kvm.ko's
    BTF takes CAP_SYS_ADMIN, and gmemtop says so; with none: exit 3."""
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

    def gmemtop_with(*caps):
        return subprocess.run([*nobody, f"--inh-caps={','.join(caps)}",
                               f"--ambient-caps={','.join(caps)}", GMEMTOP,
                               "--json", "-d", "0.5", "-n", "1"],
                              capture_output=True, text=True, timeout=120)

    def full_mode(run, caps):
        if run.returncode:
            return f"with {caps}: exit {run.returncode}: {run.stderr!r}"
        report = json.loads(run.stdout.splitlines()[-1])
        if "kvm_gmem_events" in report or "files" not in report:
            return f"with {caps}: not full mode: {run.stdout!r}"
        return None

    run = gmemtop_with("+bpf", "+perfmon")
    if os.path.exists("/sys/kernel/btf/kvm"):
        if run.returncode != 3 or "takes CAP_SYS_ADMIN" not in run.stderr:
            return f"KVM as modules, CAP_BPF+CAP_PERFMON: exit " \
                   f"{run.returncode}: {run.stderr!r}"
        problem = full_mode(gmemtop_with("+sys_admin"), "CAP_SYS_ADMIN")
    else:
        problem = full_mode(run, "CAP_BPF+CAP_PERFMON")
    if problem:
        return problem
    run = subprocess.run([*nobody, GMEMTOP, "--json", "-n", "1"],
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 3 or "not allowed to load" not in run.stderr:
        return f"without: exit {run.returncode}: {run.stderr!r}"
    return None


# gmem_ops.py's conversions made by a thread named like a QEMU vCPU.
VCPU_THREAD = f"""
import ctypes, json, sys, threading
sys.path.insert(0, {os.path.join(TOP, "tests", "trace")!r})
import gmem_ops
done = []
def vcpu():
    ctypes.CDLL(None).prctl(15, b"CPU 0/KVM", 0, 0, 0)  # PR_SET_NAME
    done.append(gmem_ops.run_script())
thread = threading.Thread(target=vcpu)
thread.start()
thread.join()
print(json.dumps({{"ino": done[0].ino,
                  "comm": open("/proc/self/comm").read().strip()}}))
"""


def check_comm_is_the_vmm():
    """The table, JSON and snoop name the process, not its vCPU thread;
    snoop does even when it reads the events after the process exited."""
    command = [sys.executable, "-c", VCPU_THREAD]
    out, report, _ = watch(["--json", "-d", "0.5"], command)
    truth = json.loads(out)
    rows = [f for f in json.loads(report.splitlines()[-1])["files"]
            if f["ino"] == truth["ino"]]
    if [f["comm"] for f in rows] != [truth["comm"]]:
        return f"report names {rows and rows[0]['comm']!r}, " \
               f"want {truth['comm']!r}"
    out, report, _ = watch(["--snoop", "--json"], command, stopped=True)
    truth = json.loads(out)
    names = {(r["comm"], r["thread"]) for r in map(json.loads,
                                                   report.splitlines())
             if r["ino"] == truth["ino"]}
    if names != {(truth["comm"], "CPU 0/KVM")}:
        return f"snoop names {names}, want the VMM {truth['comm']!r} " \
               "and its thread 'CPU 0/KVM'"
    return None


def check_missing_btf_is_explained():
    """With /sys/kernel/btf hidden (a private mount): exit 4, and why."""
    run = subprocess.run(["unshare", "-m", "sh", "-c",
                          "mount -t tmpfs none /sys/kernel/btf && "
                          f"exec {GMEMTOP} --json -n 1"],
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 4 or "CONFIG_DEBUG_INFO_BTF" not in run.stderr:
        return f"exit {run.returncode}: {run.stderr!r}"
    return None


def wait_for_match(pattern, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        m = re.search(pattern, screen(), re.M)
        if m:
            return m
        time.sleep(0.2)
    return None


def keys(*k):
    tmux("send-keys", "-t", "gmemtop", *k)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def view_pid():
    out = tmux("list-panes", "-t", "gmemtop", "-F", "#{pane_pid}").stdout
    return int(out.split()[0])


ROW = r"^\s*\d+ \S.{0,12}\s+(\d+)\s+(\d+)\s"	# PID COMM VM INO


def check_view_follows_its_file():
    """Two VMs converting: the detail view stays on the file selected,
    whatever the sort; a VM filter moves the selection to its rows; a
    resize redraws; idle, the view sleeps."""
    load = subprocess.Popen([GMEMLOAD, "--quiet", "--vms", "2", "--size",
                             "8M", "--rate", "50", "--duration", "60"],
                            stdout=subprocess.DEVNULL)
    try:
        # By inode, so that the rows read off the screen stay in that order.
        new_session(f"{GMEMTOP} -d 0.5 -s ino")
        if not wait_for_match(ROW + r".*\n(?:.*\n)*?" + ROW[1:]):
            return f"no two rows: {screen()!r}"
        rows = re.findall(ROW, screen(), re.M)
        (vm_a, ino_a), (_, ino_b) = rows[0], rows[1]
        keys("Down", "d")
        if not wait_for_match(rf"guest_memfd ino {ino_b} "):
            return f"detail not of the second row ({ino_b}): {screen()!r}"
        for _ in range(5):		# every sort order, each redrawn
            keys("s")
            time.sleep(0.7)
            if not wait_for_match(rf"guest_memfd ino {ino_b} ", 5):
                return f"detail left inode {ino_b}: {screen()!r}"
        keys("d", "v", *vm_a, "Enter", "d")
        if not wait_for_match(rf"guest_memfd ino {ino_a} "):
            return f"filter on VM {vm_a} kept {ino_b}: {screen()!r}"
        keys("d", "f")
        tmux("resize-window", "-t", "gmemtop", "-x", "90", "-y", "20")
        if not wait_for_match(r"^h help", 10) or not wait_for_match(ROW):
            return f"no redraw after a resize: {screen()!r}"
        pid = view_pid()
        load.terminate()
        load.wait()
        keys("+", "+", "+", "+", "+", "+", "+", "+")
        if not wait_for_match(r"interval 60\.0s"):
            return f"'+' not bounded at 60 s: {screen()!r}"
        before = cpu_seconds(pid)
        time.sleep(3)
        if cpu_seconds(pid) - before > 0.5:
            return "the idle view spins"
        return quit_view()
    finally:
        load.kill()
        load.wait()
        tmux("kill-server")


def child_of(pid):
    """A child process of @pid."""
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    return int(entry)
        except (OSError, ValueError):
            pass
    raise RuntimeError(f"process {pid} has no child")


def view_dies_of(sig, work):
    """The view in a shell in tmux, killed by @sig: the shell's 'stty -a'
    before and after it, gmemtop's status as the shell saw it, and
    whether the pane is left on the alternate screen; files in @work.
    No core file; ASan's own SIGSEGV handler is left out."""
    script = (f"ulimit -c 0; stty -a > {work}/before; "
              f"ASAN_OPTIONS=handle_segv=0 {GMEMTOP} -d 0.3; "
              f"echo $? > {work}/status; stty -a > {work}/after; sleep 600")
    new_session(script)
    if not wait_for_match(r"INVAL/s", 60):
        return f"no view: {screen()!r}"
    os.kill(child_of(view_pid()), sig)
    deadline = time.time() + 30
    while not os.path.exists(f"{work}/after"):
        if time.time() > deadline:
            return f"gmemtop did not die of {sig.name}: {screen()!r}"
        time.sleep(0.2)
    time.sleep(0.5)		# stty's output, whole
    alternate = tmux("display-message", "-p", "-t", "gmemtop",
                     "#{alternate_on}").stdout.strip()
    with open(f"{work}/before") as b, open(f"{work}/after") as a, \
            open(f"{work}/status") as s:
        return b.read(), a.read(), int(s.read()), alternate


def check_fatal_signal_gives_the_terminal_back():
    """SIGQUIT (Ctrl-\\) and SIGSEGV in the full-screen view: echo, line
    editing and the shell's screen come back, and gmemtop still dies of
    the signal (128 + its number to the shell), as it would have."""
    try:
        for sig in (signal.SIGQUIT, signal.SIGSEGV):
            with tempfile.TemporaryDirectory() as work:
                got = view_dies_of(sig, work)
            if isinstance(got, str):
                return got
            before, after, status, alternate = got
            if status != 128 + sig:
                return f"{sig.name}: status {status}, want {128 + sig}"
            if after != before:
                return f"{sig.name}: modes {after!r}, want {before!r}"
            if alternate != "0":
                return f"{sig.name}: left on the alternate screen"
        return None
    finally:
        tmux("kill-server")


def check_nothing_left_behind():
    """After all of the above, not one BPF object of theirs remains."""
    left = bpf_objects() - BEFORE
    return f"left behind: {sorted(left)}" if left else None


BEFORE = set()


def main():
    BEFORE.update(bpf_objects())
    return tap.run([
        ("signals_end_every_mode", check_signals_end_every_mode),
        ("signal_while_loading_still_reports",
         check_signal_while_loading_still_reports),
        ("closed_pipe_ends_quietly", check_closed_pipe_ends_quietly),
        ("signal_on_a_full_pipe_loses_nothing",
         check_signal_on_a_full_pipe_loses_nothing),
        ("flood_drops_are_counted_and_shown",
         check_flood_drops_are_counted_and_shown),
        ("capabilities_suffice_without_root",
         check_capabilities_suffice_without_root),
        ("missing_btf_is_explained", check_missing_btf_is_explained),
        ("comm_is_the_vmm", check_comm_is_the_vmm),
        ("view_follows_its_file", check_view_follows_its_file),
        ("fatal_signal_gives_the_terminal_back",
         check_fatal_signal_gives_the_terminal_back),
        ("nothing_left_behind", check_nothing_left_behind),
    ])


if __name__ == "__main__":
    sys.exit(main())
