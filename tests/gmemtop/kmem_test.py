#!/usr/bin/env python3
"""gmemtop's kernel memory in this VM, measured as make kmem measures it
(tests/gmemtop/kmem.py), against what docs/kernel-memory.json's fit says
for this many CPUs, which gmemtop(8) states; and none of it left once
gmemtop exits.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
"""
import json
import os
import subprocess
import sys
import tempfile

import gmemwatch  # first: tests/ on sys.path
import tap
from gmemwatch import TOP

FIT = os.path.join(TOP, "docs", "kernel-memory.json")
# How far one round may fall from the fit: the slab counters move by a
# few hundred KiB with whatever else the kernel did meanwhile.
TOLERANCE = 0.2
TOLERANCE_KIB = 512

measured = None


def measure():
    global measured
    if measured is None:
        with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
            subprocess.run([os.path.join(TOP, "tests", "gmemtop", "kmem.py"),
                            "--rounds", "1", "--only", "default", out.name],
                           check=True)
            measured = json.load(out)["configs"]["default"]
    return measured


def check_memory_is_what_the_fit_says():
    with open(FIT) as f:
        fit = json.load(f)["configs"]["default"]["fit"]
    want = fit["base_kib"] + fit["per_cpu_kib"] * os.cpu_count()
    got = measure()["running"]["total"]
    print(f"# {got} KiB at {os.cpu_count()} CPUs, the fit says {want:.0f}")
    if abs(got - want) > max(TOLERANCE * want, TOLERANCE_KIB):
        return f"{got} KiB while gmemtop ran, the fit says {want:.0f} " \
               f"(make kmem)"
    return None


def check_nothing_is_left_after_exit():
    left = measure()["after_exit"]
    if left["total"] > TOLERANCE_KIB:
        return f"{left['total']} KiB left after gmemtop exited: {left}"
    return None


def main():
    return tap.run([
        ("memory_is_what_the_fit_says", check_memory_is_what_the_fit_says),
        ("nothing_is_left_after_exit", check_nothing_is_left_after_exit),
    ])


if __name__ == "__main__":
    sys.exit(main())
