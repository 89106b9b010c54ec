#!/usr/bin/env python3
"""gmemtop's own work per interval grows with the files it shows, not with
files times the VMM's descriptors.

This process is the VMM: one VM with 300 guest_memfds, each converted
once and kept open, beside 1,000 descriptors of other files.  gmemtop
--json, under strace, shows every one of them with its fdinfo, calling
stat() (and stdio's fstat() of the fdinfo) once per file shown and
interval, besides at most one listing of the VMM's descriptors an
interval until every file is shown (listing
them for each file would cost some 200,000 calls an interval).  make
bench measures its CPU time per interval at up to 1,000 files.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
"""
import json
import resource
import subprocess
import sys
import tempfile

import gmemwatch  # first: tests/ on sys.path, for tap and gmem_ops
import gmem_ops
import tap
from gmemwatch import GMEMTOP

FILES = 300
OTHER_FDS = 1000
INTERVAL = 0.5
REPORTS = 8
# stat() calls an interval or a listing may make besides.
SLACK = 50


def stat_calls(summary):
    """The calls column of strace -c's table, summed over its syscalls."""
    calls, inside = 0, False
    for line in summary.splitlines():
        if line.startswith("------"):
            if inside:
                break
            inside = True
        elif inside:
            calls += int(line.split()[3])
    return calls


def traced_reports(files):
    """gmemtop --json for REPORTS intervals under strace, the files made
    once it has attached; its reports and its stat() calls."""
    with tempfile.NamedTemporaryFile("r") as summary:
        top = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=%%stat",
                                "-o", summary.name, GMEMTOP, "--json", "-d",
                                str(INTERVAL), "-n", str(REPORTS),
                                "--max-files", str(2 * FILES)],
                               stdout=subprocess.PIPE, text=True)
        vmm = None
        try:
            first = top.stdout.readline()
            vmm = files()
            rest, _ = top.communicate(timeout=600)
            inos = vmm.inos()
        finally:
            if top.poll() is None:
                top.kill()
            if vmm:
                vmm.close()
        reports = [json.loads(line) for line in [first] + rest.splitlines()]
        return reports, inos, stat_calls(summary.read())


def check_one_stat_per_file_and_interval():
    reports, inos, calls = traced_reports(
        lambda: gmem_ops.ManyFiles(FILES, OTHER_FDS))
    shown = [{f["ino"] for f in r["files"] if f["ino"] in inos and
              f["size"] == gmem_ops.PAGE} for r in reports]
    if shown[-1] != inos:
        return f"{len(shown[-1])} of {FILES} files shown with their fdinfo"
    # A listing of the VMM's descriptors at most once an interval until
    # every file is shown, none after; per file shown, one stat() of its
    # descriptor and the fstat() stdio makes of its fdinfo.
    listings = 1 + shown.index(inos)
    most = sum(2 * len(s) + SLACK for s in shown) + \
        listings * (FILES + OTHER_FDS + SLACK)
    least = sum(len(s) for s in shown)
    print(f"# {calls} stat() calls for {least} files shown in "
          f"{len(reports)} reports, {listings} listings at most")
    if not least <= calls <= most:
        return f"{calls} stat() calls, want {least} to {most}"
    return None


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return tap.run([
        ("one_stat_per_file_and_interval",
         check_one_stat_per_file_and_interval),
    ])


if __name__ == "__main__":
    sys.exit(main())
