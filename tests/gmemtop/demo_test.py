#!/usr/bin/python3
"""make demo as a newcomer sees it (tools/demo), in the VM.

- On a terminal (tmux), the view says that d shows the EAGAIN pages and
  their holders, and d on the first row names a process holding a page,
  with its pid and kind, within a minute.
- Without a terminal, its batch reports are each followed by the table of
  hotspots and holders, one of which names its holder.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
"""
import os
import re
import subprocess
import sys
import time

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemtop_test import new_session, screen, tmux, wait_for

DEMO = os.path.join(gmemwatch.TOP, "tools", "demo")
HINT = "d detail (EAGAIN pages, their holders)"
# "held by gmemload (pid 123, gup-get)", in the view's detail.
HELD = re.compile(r"held by \S+ \(pid \d+, gup-")
# INO OFFSET EAGAIN PID COMM KIND STACK, in the batch holders table.
HOLDER_ROW = re.compile(r"^ *\d+ +0x[0-9a-f]+ +\d+ +\d+ +\S+ +gup-\S+ +\S",
                        re.M)


def wait_held(seconds=60):
    deadline = time.time() + seconds
    while not HELD.search(screen()):
        if time.time() > deadline:
            return False
        time.sleep(0.5)
    return True


def check_view_shows_holders_on_d():
    try:
        new_session(DEMO, height=50)
        if not wait_for(HINT, 60) or not wait_for("INVAL/s", 30):
            return f"no view with holders: {screen()!r}"
        tmux("send-keys", "-t", "gmemtop", "d")
        if not wait_held():
            return f"no holder named after d: {screen()!r}"
    finally:
        tmux("kill-server")
    return None


def check_batch_reports_name_holders():
    run = subprocess.run([DEMO], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=300)
    tables = run.stdout.count("STACK\n")
    if run.returncode or tables != 5:
        return f"exit {run.returncode}, {tables} holders tables: " \
            f"{run.stdout[-2000:]!r} {run.stderr[-500:]!r}"
    return None if HOLDER_ROW.search(run.stdout) else \
        f"no holder named: {run.stdout[-2000:]!r}"


def main():
    checks = [(c.__name__, c) for c in (
        check_view_shows_holders_on_d,
        check_batch_reports_name_holders)]
    return tap.run(checks)


if __name__ == "__main__":
    sys.exit(main())
