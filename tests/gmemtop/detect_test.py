#!/usr/bin/env python3
"""gmemtop finds the kvm_gmem events by BTF, in the VM.

- With tracefs unmounted (its own mount, and debugfs, which would mount
  it again on its tracing directory), gmemtop
  still runs in full mode: its counts equal gmemload's ground truth and it
  says nothing of a fallback.
- gmemtop --btf with this kernel's own vmlinux BTF decides as the run
  does: full mode where KVM is built in; where KVM is a module (the debug
  kernel) that file alone has no KVM, and gmemtop says so.  The other
  kinds of kernel are tests/host/gmemtop-errors.test's, on stand-in BTF.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
"""
import json
import os
import subprocess
import sys

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemwatch import GMEMTOP

GMEMLOAD = [gmemwatch.GMEMLOAD, "--quiet",
            "--size", "2M", "--pattern", "mixed", "--hold", "20",
            "--count", "60", "--seed", "3"]
# Every way to tracefs, in unmount order: debugfs would mount it again
# on its tracing directory's first use.
MOUNTS = [("/sys/kernel/debug/tracing", "tracefs"),
          ("/sys/kernel/debug", "debugfs"),
          ("/sys/kernel/tracing", "tracefs")]
TRACEFS = ["/sys/kernel/debug/tracing", "/sys/kernel/tracing"]
KEYS = ("conversions_to_private", "conversions_to_shared",
        "pages_to_private", "pages_to_shared", "eagain")


def mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def unmount_tracefs():
    """Unmounts tracefs and debugfs; returns what to mount back."""
    gone = []
    for path, fstype in MOUNTS:
        if mounted(path):
            subprocess.run(["umount", path], check=True)
            gone.append((path, fstype))
    return gone


def check_full_mode_without_tracefs():
    gone = unmount_tracefs()
    try:
        if any(os.path.exists(os.path.join(p, "events")) for p in TRACEFS):
            return "tracefs still visible"
        truth, out, err = gmemwatch.watch([GMEMTOP, "--json", "-d", "0.5"],
                                          GMEMLOAD)
    finally:
        for path, fstype in reversed(gone):
            if not mounted(path):
                subprocess.run(["mount", "-t", fstype, "nodev", path],
                               check=True)
    if err:
        return f"gmemtop said {err!r}"
    report = json.loads(out.strip().splitlines()[-1])
    vm = truth["vms"][0]
    rows = [f for f in report["files"] if f["ino"] == vm["ino"]]
    if len(rows) != 1:
        return f"{len(rows)} rows for inode {vm['ino']}"
    for key in KEYS:
        if rows[0][key] != vm[key]:
            return f"{key}: {rows[0][key]}, want {vm[key]}"
    return None


def check_btf_of_this_kernel():
    run = subprocess.run([GMEMTOP, "--btf", "/sys/kernel/btf/vmlinux", "-b"],
                         capture_output=True, text=True, timeout=60)
    if os.path.exists("/sys/kernel/btf/kvm"):
        want = (5, "", "gmemtop: this kernel has no KVM")
    else:
        want = (0, "gmemtop: would watch through the kvm_gmem trace events\n",
                "")
    got = (run.returncode, run.stdout, run.stderr[:len(want[2])])
    if got != want or (not want[2] and run.stderr):
        return f"{run.returncode} {run.stdout!r} {run.stderr!r}, want {want}"
    return None


def main():
    return tap.run([
        ("full_mode_without_tracefs", check_full_mode_without_tracefs),
        ("btf_of_this_kernel", check_btf_of_this_kernel),
    ])


if __name__ == "__main__":
    sys.exit(main())
