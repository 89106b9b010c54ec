"""What the tests of tests/gmemtop share: where the tools are, and
gmemtop beside a workload that prints its own ground truth as JSON
(gmemload).

Imported first, before tap and the modules of tests/trace: it puts
tests/ and tests/trace on sys.path.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
for _dir in (os.path.join(TOP, "tests", "trace"), os.path.join(TOP, "tests")):
    if _dir not in sys.path:
        sys.path.insert(0, _dir)

# GMEMTOP=tools/gmemtop/gmemtop.san runs a test with gmemtop's ASan and
# UBSan build (tests/vm/suite); a relative path is from the current
# directory.
GMEMTOP = os.path.abspath(os.environ.get(
    "GMEMTOP", os.path.join(TOP, "tools", "gmemtop", "gmemtop")))
GMEMLOAD = os.path.join(TOP, "tools", "gmemload", "gmemload")
# The scripted workload whose trace events are the ground truth.
OPS = [sys.executable, os.path.join(TOP, "tests", "trace", "gmem_ops.py")]

_names = None


def named(name):
    """GMEMTOP under another of its names (gmemlat, gmemsnoop), whose
    mode it takes from argv[0]: a symlink @name to it, in a directory of
    its own, so that GMEMTOP's build is the one that runs."""
    global _names
    if _names is None:
        _names = tempfile.mkdtemp()
    path = os.path.join(_names, name)
    if not os.path.lexists(path):
        os.symlink(GMEMTOP, path)
    return path


def _bpf_fds(pid):
    """How many BPF programs, links and maps process @pid holds open."""
    progs = links = maps = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        progs += target == "anon_inode:bpf-prog"
        links += target == "anon_inode:bpf_link"
        maps += target == "anon_inode:bpf-map"
    return progs, links, maps


def _wait_bpf(proc, done, timeout=60, step=0.1):
    """Waits until done(programs, links, maps) of @proc's open BPF
    objects; False if it exited or the time ran out (a debug kernel's
    verifier can take seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if done(*_bpf_fds(proc.pid)):
                return True
        except OSError:
            pass
        time.sleep(step)
    return False


def wait_attached(proc):
    """Waits until @proc has a link for every BPF program it loaded: a
    libbpf skeleton attaches them all at once."""
    return _wait_bpf(proc, lambda progs, links, maps: progs and
                     links >= progs)


def wait_loading(proc):
    """Waits until @proc has begun loading BPF objects, its first map or
    program; polled closely, to land in the load."""
    return _wait_bpf(proc, lambda progs, links, maps: progs or maps,
                     step=0.005)


def start(command):
    """Starts gmemtop (@command, a batch mode) and returns once its first
    report is out: its programs are loaded and attached."""
    top = subprocess.Popen(command, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    top.stdout.readline()
    return top


def stop(top):
    """Ends gmemtop with SIGINT; its stdout and stderr.  Raises if it
    failed."""
    top.send_signal(signal.SIGINT)
    out, err = top.communicate(timeout=30)
    if top.returncode:
        raise RuntimeError(f"gmemtop exited {top.returncode}: {err}")
    return out, err


def watch(command, workload, during=lambda: None):
    """Runs @workload while gmemtop (@command) watches, calling @during
    once gmemtop is attached; the workload's report and gmemtop's stdout
    and stderr, after one more interval."""
    top = start(command)
    try:
        during()
        truth = json.loads(subprocess.run(workload, check=True,
                                          capture_output=True,
                                          text=True).stdout)
        time.sleep(1)
    finally:
        out, err = stop(top)
    return truth, out, err
