#!/usr/bin/env python3
"""The bpftrace scripts of tools/bpftrace/ against tests/trace/gmem_ops.py,
in the VM: each runs the scripted workload under bpftrace -c and must
print exactly what the workload's events say:

- gmemresults.bt counts every conversion by direction and result;
- gmemhotspots.bt names every EAGAIN page with its count, cause and
  reference counts;
- gmemlat.bt puts every conversion in the histogram of its outcome;
- gmemsnoop.bt prints a line per conversion, in order, with its range,
  result and error_offset.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
"""
import collections
import json
import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(TOP, "tests"))
sys.path.insert(0, os.path.join(TOP, "tests", "trace"))
sys.path.insert(0, os.path.join(TOP, "tests", "gmemtop"))
import tap  # noqa: E402
from gmemtop_test import fields, ground_truth  # noqa: E402

SCRIPTS = os.path.join(TOP, "tools", "bpftrace")
OPS = f"{sys.executable} {os.path.join(TOP, 'tests', 'trace', 'gmem_ops.py')}"


def run_script(name):
    """bpftrace's output and the workload's ground truth."""
    out = subprocess.run(["bpftrace", os.path.join(SCRIPTS, name), "-c", OPS],
                         check=True, capture_output=True, text=True).stdout
    truth = json.loads([line for line in out.splitlines()
                        if line.startswith('{"ino"')][-1])
    return out, truth


def conversions(truth):
    """The fields of every kvm_gmem_set_attributes_end, in order."""
    return [fields(text) for name, text, _ in truth["events"]
            if name == "kvm_gmem_set_attributes_end"]


def check_results():
    out, truth = run_script("gmemresults.bt")
    want = collections.Counter((f"to_{f['to']}", f["ret"])
                               for f in conversions(truth))
    got = collections.Counter()
    for pid, to, ret, n in re.findall(
            r"^@results\[(\d+), (\w+), (-?\d+)\]: (\d+)$", out, re.M):
        if int(pid) == truth["pid"]:
            got[(to, int(ret))] += int(n)
    return None if got == want else f"counted {dict(got)}, want {dict(want)}"


def check_hotspots():
    out, truth = run_script("gmemhotspots.bt")
    _, want = ground_truth(truth["events"])
    want = {o: (s["count"], s["cause"], s["refcount"], s["expected"])
            for o, s in want.items()}
    if not want:
        return "the workload made no EAGAIN: nothing to check"
    ino = truth["ino"]
    refs = {int(o): int(n) for o, n in re.findall(
        rf"^@refcount\[{ino}, (\d+)\]: (-?\d+)$", out, re.M)}
    expected = {int(o): int(n) for o, n in re.findall(
        rf"^@expected\[{ino}, (\d+)\]: (-?\d+)$", out, re.M)}
    got = {int(o): (int(n), cause, refs.get(int(o)), expected.get(int(o)))
           for o, cause, n in re.findall(
               rf"^@hotspots\[{ino}, (\d+), (\w+)\]: (\d+)$", out, re.M)}
    return None if got == want else f"hotspots {got}, want {want}"


def outcome(f):
    if f["ret"] == -11:
        return "EAGAIN"
    if f["ret"]:
        return "error"
    return "changed" if f["changed"] else "no-op"


def check_latency():
    out, truth = run_script("gmemlat.bt")
    want = collections.Counter(outcome(f) for f in conversions(truth))
    got, key = collections.Counter(), None
    for line in out.splitlines():
        m = re.match(r"^@usecs\[([\w-]+)\]:", line)
        if m:
            key = m.group(1)
            continue
        m = re.match(r"^\[[^\]]*\)?\]?\s+(\d+) \|", line)
        if key and m:
            got[key] += int(m.group(1))
    return None if got == want else f"histograms {dict(got)}, want {dict(want)}"


def check_snoop():
    out, truth = run_script("gmemsnoop.bt")
    want = [(f["offset"], f["size"], f"to_{f['to']}", f["ret"],
             f["error_offset"]) for f in conversions(truth)]
    got = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) == 11 and cols[0].isdigit() and \
           int(cols[4]) == truth["ino"]:
            got.append((int(cols[5], 16), int(cols[6]), cols[7],
                        int(cols[8]), int(cols[9], 16)))
    return None if got == want else f"lines {got}, want {want}"


def main():
    return tap.run([
        ("gmemresults_counts_every_result", check_results),
        ("gmemhotspots_names_every_eagain_page", check_hotspots),
        ("gmemlat_histograms_every_conversion", check_latency),
        ("gmemsnoop_prints_every_conversion", check_snoop),
    ])


if __name__ == "__main__":
    sys.exit(main())
