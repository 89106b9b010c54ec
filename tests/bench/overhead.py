#!/usr/bin/env python3
"""What watching conversions costs the VMM, measured side by side.

Runs the same gmemload workload (fixed seed and count, so every run does
the same conversions) with nothing watching, then under each tool people
use today and under gmemtop, round-robin so that the machine's noise hits
all alike.  Reports per tool the median wall time of the workload and its
ratio to the unwatched median.  A benchmark, not a test: run it in the
VM with

    tests/vm/run --append kvm.vm_memory_attributes=0 -- tests/bench/overhead.py [ROUNDS]
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
GMEMLOAD = [os.path.join(TOP, "tools", "gmemload", "gmemload"), "--quiet",
            "--size", "16M", "--pattern", "mixed", "--hold", "5",
            "--count", "2000", "--seed", "11"]
GMEMTOP = os.path.join(TOP, "tools", "gmemtop", "gmemtop")
TRACEFS = "/sys/kernel/tracing"


def tracefs(path, value):
    with open(os.path.join(TRACEFS, path), "w") as f:
        f.write(value)


def workload():
    out = subprocess.run(GMEMLOAD, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)["elapsed_s"]


def beside(command):
    """Runs the workload while @command (a watcher) runs beside it."""
    watcher = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(2)			# attached
    try:
        return workload()
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=60)


def under_tracefs():
    tracefs("trace", "")
    tracefs("events/kvm_gmem/enable", "1")
    try:
        return workload()
    finally:
        tracefs("events/kvm_gmem/enable", "0")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    tmp = tempfile.mkdtemp()
    setups = {
        "none": workload,
        "tracefs": under_tracefs,
        "perf record": lambda: beside(["perf", "record", "-q", "-a", "-e",
                                       "kvm_gmem:*", "-o",
                                       os.path.join(tmp, "perf.data")]),
        "trace-cmd record": lambda: beside(["trace-cmd", "record", "-q",
                                            "-e", "kvm_gmem", "-o",
                                            os.path.join(tmp, "trace.dat")]),
        "bpftrace one-liner": lambda: beside([
            "bpftrace", "-e", "tracepoint:kvm_gmem:kvm_gmem_set_attributes_end"
            " { @[args->ret] = count(); }"]),
        "gmemtop -b": lambda: beside([GMEMTOP, "-b", "-d", "1"]),
        "gmemtop --snoop": lambda: beside([GMEMTOP, "--snoop"]),
    }
    times = {name: [] for name in setups}
    for _ in range(rounds):
        for name, run in setups.items():
            times[name].append(run())

    base = statistics.median(times["none"])
    print(f"gmemload: {' '.join(GMEMLOAD[1:])}; {rounds} rounds, medians")
    print(f"{'watcher':<22} {'median_s':>9} {'ratio':>7}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<22} {median:9.3f} {median / base:7.3f}")


if __name__ == "__main__":
    main()
