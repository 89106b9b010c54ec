#!/usr/bin/env python3
"""The kernel memory gmemtop takes, as this kernel reports it.

    kmem.py [--rounds N] [--only NAME] OUT.json

For each way of running gmemtop (CONFIGS), each round: /proc/meminfo
read with the page cache dropped, gmemtop started and attached, a
gmemload workload run beside it (conversions from several threads,
EAGAINs on held pages, so that task storage, hotspots and --holders'
stacks are all in use), /proc/meminfo read again and the memlock the
kernel charges to each of gmemtop's BPF maps and programs (their
fdinfo); then gmemtop stopped, and /proc/meminfo read a third time.
Writes per configuration the medians of the deltas, in KiB, with this
VM's CPU count: tests/gmemtop/kmem-fit fits them across VMs of several
sizes.  Needs root and kvm.vm_memory_attributes=0.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import gmemwatch  # first: tests/ on sys.path
from gmemwatch import GMEMTOP

# gmemtop's options per configuration: the default, and what each option
# that loads more adds.
CONFIGS = {
    "default": [],
    "snoop": ["--snoop"],
    "holders": ["--holders"],
    "1024 files": ["--max-files", "1024"],
}
WORKLOAD = [gmemwatch.GMEMLOAD, "--quiet", "--vms", "2", "--size", "4M",
            "--guest-share", "50", "--hold", "20", "--hold-kinds", "all",
            "--count", "200", "--seed", "5"]
# Where the kernel's accounting puts the memory: slab caches, the per-CPU
# allocator, vmalloc (large maps, JITed programs), page tables and
# stacks.  A BPF ring buffer's pages are mapped with vmap(), which none of
# them counts: "ringbuf" is its maps' memlock.  (MemFree moves by
# megabytes with the per-CPU page lists: no use here.)
COUNTERS = ("Slab", "Percpu", "VmallocUsed", "KernelStack", "PageTables",
            "ringbuf")
BPF_MAP_TYPE_RINGBUF = 27
SETTLE_S = 1
# gmemtop's trampolines and maps are freed after RCU grace periods: what
# is left after it exits is read until it falls below this, for a while.
LEFT_KIB = 256
LEFT_WAIT_S = 20


def meminfo():
    """The COUNTERS, in KiB, with the page cache and slab caches dropped
    and RCU's deferred frees run."""
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    time.sleep(SETTLE_S)
    values = {"ringbuf": ringbuf_kib()}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in COUNTERS:
                values[key] = int(rest.split()[0])
    return values


def bpf_fdinfo(pid):
    """(kind, fdinfo fields) of each BPF map and program @pid holds."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f
                            if ":" in line)
        except OSError:
            continue
        if target in ("anon_inode:bpf-map", "anon_inode:bpf-prog"):
            yield target, {k: v.strip() for k, v in info.items()}


def ringbuf_kib():
    """The memlock of every BPF ring buffer of the system's processes."""
    kib = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            kib += sum(int(info["memlock"]) / 1024
                       for kind, info in bpf_fdinfo(pid)
                       if info.get("map_type") == str(BPF_MAP_TYPE_RINGBUF))
        except OSError:
            continue
    return kib


def memlock_kib(pid):
    """The memlock the kernel charges to @pid's BPF maps and programs."""
    maps = progs = 0
    for kind, info in bpf_fdinfo(pid):
        kib = int(info.get("memlock", 0)) / 1024
        if kind == "anon_inode:bpf-map":
            maps += kib
        else:
            progs += kib
    return maps, progs


def delta(after, before):
    d = {k: after[k] - before[k] for k in COUNTERS}
    d["total"] = sum(d.values())
    return d


def left_after_exit(before):
    """What gmemtop left, once RCU has had its time (up to LEFT_WAIT_S)."""
    deadline = time.monotonic() + LEFT_WAIT_S
    while True:
        left = delta(meminfo(), before)
        if left["total"] < LEFT_KIB or time.monotonic() > deadline:
            return left


def measure(options):
    """One round: the counters' growth while gmemtop runs, what stays
    after it exits, and its memlock."""
    before = meminfo()
    top = subprocess.Popen([GMEMTOP, "--json", *options],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        if not gmemwatch.wait_attached(top):
            raise RuntimeError(f"gmemtop {options} did not attach: "
                               f"{top.stderr.read()}")
        subprocess.run(WORKLOAD, check=True, stdout=subprocess.DEVNULL)
        maps, progs = memlock_kib(top.pid)
        running = meminfo()
    finally:
        top.send_signal(signal.SIGINT)
        top.wait(timeout=60)
    return {"running": delta(running, before),
            "after_exit": left_after_exit(before),
            "memlock_maps": maps, "memlock_progs": progs}


def medians(rounds):
    out = {}
    for key in ("running", "after_exit"):
        out[key] = {c: statistics.median(r[key][c] for r in rounds)
                    for c in COUNTERS + ("total",)}
    for key in ("memlock_maps", "memlock_progs"):
        out[key] = statistics.median(r[key] for r in rounds)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=CONFIGS)
    ap.add_argument("out")
    args = ap.parse_args()
    configs = {args.only: CONFIGS[args.only]} if args.only else CONFIGS
    # One round unmeasured: the first gmemtop and gmemload fill caches
    # (slab caches created, modules' first allocations) that stay.
    measure([])
    result = {"cpus": os.cpu_count(), "rounds": args.rounds,
              "kernel": os.uname().release, "configs": {}}
    for name, options in configs.items():
        rounds = [measure(options) for _ in range(args.rounds)]
        result["configs"][name] = {"options": options, **medians(rounds)}
        print(f"kmem: {name}: {result['configs'][name]['running']['total']}"
              f" KiB while running", file=sys.stderr, flush=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
