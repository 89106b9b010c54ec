#!/usr/bin/python3
"""gmemtop and kvm.ko, on the debug kernel (KVM as modules), in the VM.

- As a service (--quiet) started while kvm.ko is not loaded, gmemtop says
  once that it waits, keeps its textfile fresh meanwhile, and once
  kvm.ko is loaded counts what a VMM does, EAGAIN latency included.
- It holds kvm.ko, as gmemtop(8) says: while it runs, kvm.ko's reference
  count is up by the references its programs took, and 'rmmod kvm' fails
  (in use), although kvm_amd.ko, which it does not hold, goes; once
  gmemtop has exited the count is back and kvm.ko unloads.

Leaves KVM loaded as the boot loaded it: the modules from the build
given on the kernel command line, with the command line's parameters.
Prints TAP.  Needs root, a debug kernel with BTF (7.3's: 6.12's has none)
and guest_memfd holding the attributes.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

from prometheus_client.parser import \
    text_string_to_metric_families as parse_prometheus

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemwatch import GMEMTOP
from metrics_test import gmemload, read_file, settled

TEXTFILE = "/tmp/kvm-module-test.prom"


def modules():
    """The debug build's modules directory (tests/vm/run passes it)."""
    with open("/proc/cmdline") as f:
        for arg in f.read().split():
            if arg.startswith("gmemvm.modules="):
                return arg.split("=", 1)[1]
    raise RuntimeError("no gmemvm.modules= on the kernel command line")


def load_kvm():
    """As tests/vm/init does; modprobe takes kvm.* from /proc/cmdline."""
    subprocess.run(["modprobe", "-d", modules(), "kvm_amd"], check=True)


def rmmod(*names):
    return subprocess.run(["rmmod", *names], capture_output=True, text=True)


def refcnt():
    with open("/sys/module/kvm/refcnt") as f:
        return int(f.read())


def released(timeout=10):
    """kvm.ko's count once back to 0, or as it is after @timeout seconds:
    the kernel frees programs and their module references after a grace
    period, not when their last file closes."""
    deadline = time.time() + timeout
    while refcnt() and time.time() < deadline:
        time.sleep(0.2)
    return refcnt()


def said(err):
    err.seek(0)
    return err.read()


def wait_said(err, text, proc, timeout=60):
    deadline = time.time() + timeout
    while text not in said(err):
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


class Daemon:
    """gmemtop --quiet, started before kvm.ko, shared by the checks."""
    proc = None
    err = None


def check_waits_for_kvm_ko_then_counts():
    if not os.path.isdir("/sys/module/kvm/holders"):
        return "KVM is built in: not the debug kernel"
    out = rmmod("kvm_amd", "kvm")
    if out.returncode:
        return f"cannot unload KVM first: {out.stderr}"
    if os.path.exists(TEXTFILE):
        os.unlink(TEXTFILE)
    Daemon.err = tempfile.TemporaryFile("w+")
    proc = Daemon.proc = subprocess.Popen(
        [GMEMTOP, "--quiet", "-d", "0.5", "--textfile", TEXTFILE],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=Daemon.err,
        text=True)
    if not wait_said(Daemon.err, "waiting for it", proc):
        return f"exit {proc.poll()}: {said(Daemon.err)!r}"
    first = os.stat(TEXTFILE).st_mtime_ns
    time.sleep(2)
    if proc.poll() is not None or os.stat(TEXTFILE).st_mtime_ns == first:
        return f"textfile not kept fresh while waiting, exit {proc.poll()}"
    if "kvm_gmem_files 0\n" not in read_file(TEXTFILE)():
        return f"while waiting: {read_file(TEXTFILE)()!r}"
    load_kvm()
    if not wait_said(Daemon.err, "kvm.ko is loaded: watching it", proc):
        return f"not watching, exit {proc.poll()}: {said(Daemon.err)!r}"
    _, wrong = settled(read_file(TEXTFILE), gmemload(), parse_prometheus)
    if said(Daemon.err).count("\n") != 2:
        return f"said more than twice: {said(Daemon.err)!r}"
    return "; ".join(wrong) if wrong else None


def check_holds_kvm_ko_while_it_runs():
    proc = Daemon.proc
    if proc is None or proc.poll() is not None:
        return "no gmemtop watching kvm.ko"
    try:
        if not os.path.exists("/sys/module/kvm_amd"):
            load_kvm()
        if rmmod("kvm_amd").returncode:
            return "gmemtop holds kvm_amd.ko"
        held = refcnt()
        busy = rmmod("kvm")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    free = released()
    gone = rmmod("kvm")
    problem = None
    if rc:
        problem = f"gmemtop exited {rc}: {said(Daemon.err)!r}"
    elif not busy.returncode or "in use" not in busy.stderr:
        problem = f"rmmod kvm while gmemtop ran: {busy.returncode} " \
            f"{busy.stderr!r}"
    elif gone.returncode or free != 0:
        problem = f"after gmemtop: refcnt {free}, rmmod {gone.stderr!r}"
    print(f"# kvm.ko references held by gmemtop: {held}")
    return problem


def main():
    checks = [(c.__name__, c) for c in (
        check_waits_for_kvm_ko_then_counts,
        check_holds_kvm_ko_while_it_runs)]
    try:
        return tap.run(checks)
    finally:
        if Daemon.proc and Daemon.proc.poll() is None:
            Daemon.proc.kill()
            Daemon.proc.wait()
        if not os.path.exists("/sys/module/kvm_amd"):
            load_kvm()


if __name__ == "__main__":
    sys.exit(main())
