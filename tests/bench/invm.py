#!/usr/bin/env python3
"""The in-VM half of make bench; tests/bench/run boots the VM for it.

    invm.py PROFILE OUTDIR [convert:BOOT|zero:BOOT|tree:BOOT|cpus:CLOCK|vmms|phases|guest|overhead|probes|capacity|observer]...

With kvm.vm_memory_attributes=1 it times the legacy per-VM conversion
path only (gmem_convert_bench).  With =0 it times the per-guest_memfd
path the same way, then a guest converting its own memory through the
hypercall exit, what each watcher costs the workload, and how many events
each watcher sees at the highest conversion rate.  Every part writes its
raw samples to OUTDIR as JSON; tests/bench/report.py makes the tables.
PROFILE is full, quick (a few minutes) or smoke (seconds: structure only).
Without PARTs it runs all that the mode allows; convert:BOOT times
conversions of ranges as the BOOT'th boot in this mode (tests/bench/run
boots under -icount for them, where their times are instruction counts);
zero:BOOT (per-guest_memfd only) times the same again into a file of its
own, for ZERO against memset() on the wall clock (a boot without
-icount); tree:BOOT times one-page conversions in a fragmented attribute
tree against a fresh file, into a file of their own (under -icount too).
cpus:CLOCK (per-guest_memfd only) runs the same conversion workloads in a
VM of however many CPUs this boot has, each CPU's LRU batch kept busy,
into cpus-NCPUS-CLOCK.json; CLOCK says whether the boot is under -icount
(icount) or not (wall).  vmms runs 1, 4 and 16 VMMs at once (in a boot
of more than 16 CPUs).  phases (per-guest_memfd only) splits the time of
conversions of gmem_convert_bench's mapped file (a range the VMM maps and
a vCPU has faulted) by phase, per size, into mapped-phases.json.
probes takes the run time of each of gmemtop's BPF programs, per mode,
into probes.json (under -icount: instructions).  observer measures
gmemtop's own CPU per interval against the number of open guest_memfds
it shows, into observer.json.
"""
import functools
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections import defaultdict, namedtuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "trace"))
import gmem_ops  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CONVERT_BENCH = os.path.join(HERE, "gmem_convert_bench")
GMEMLOAD = os.path.join(TOP, "tools", "gmemload", "gmemload")
GMEMTOP = os.path.join(TOP, "tools", "gmemtop", "gmemtop")
LRU_LOAD = os.path.join(HERE, "lru_load")
GUP_LOOP = os.path.join(HERE, "gup_loop")
TRACEFS = "/sys/kernel/tracing"
SCRATCH = "/run/bench"		# tmpfs: watchers' files cost no 9p traffic
END_EVENT = "kvm_gmem_set_attributes_end"
KSFT_SKIP = 4

PROFILES = {
    "full": {
        "convert": ["-r", "2", "-f", "0"],
        "tree": ["-t", "-r", "2", "-f", "100000"],
        "guest_count": 2000, "guest_rounds": 5,
        # Under -icount rounds agree to within half a percent: three
        # give the spread, and the watcher comparison stays 11 minutes.
        "overhead_count": 1000, "overhead_rounds": 3,
        "overhead_gup_calls": 2000,
        "capacity_count": 20000, "capacity_rounds": 3,
        # A round takes a second even at 64 CPUs; the wall clock's spread
        # between boots needs more than three to show.
        "cpus_count": 400, "cpus_rounds": 9,
        "mapped": ["-r", "3"], "observer_rounds": 3,
    },
    "quick": {
        "convert": ["-r", "1", "-s", "64", "-f", "0"],
        "tree": ["-t", "-r", "1", "-f", "10000"],
        "guest_count": 300, "guest_rounds": 3,
        "overhead_count": 300, "overhead_rounds": 3,
        "overhead_gup_calls": 600,
        "capacity_count": 2000, "capacity_rounds": 2,
        "cpus_count": 100, "cpus_rounds": 1,
        "mapped": ["-r", "1"], "observer_rounds": 2,
    },
    "smoke": {
        "convert": ["-r", "1", "-s", "2", "-f", "0"],
        "tree": ["-t", "-r", "1", "-f", "100"],
        "guest_count": 20, "guest_rounds": 1,
        "overhead_count": 20, "overhead_rounds": 1,
        "overhead_gup_calls": 20,
        # Every watcher's start and stop, once: the other workloads go
        # through the same code, and cost two minutes more in make check.
        "overhead_workloads": ["conversions"],
        "capacity_count": 50, "capacity_rounds": 1,
        "cpus_count": 20, "cpus_rounds": 1,
        "mapped": ["-r", "1"], "observer_rounds": 1,
    },
}

# The same latency histogram as gmemtop's (successful conversions that
# changed pages, begin to end), and a count of every finished ioctl.
BPFTRACE_HIST = f"""
BEGIN {{ printf("ready\\n"); }}
tracepoint:kvm_gmem:kvm_gmem_set_attributes_begin {{ @start[tid] = nsecs; }}
tracepoint:kvm_gmem:{END_EVENT} {{
    @ends = count();
    if (@start[tid] && args->ret == 0 && args->nr_changed) {{
        @latency_ns = hist(nsecs - @start[tid]);
    }}
    delete(@start[tid]);
}}
"""


def progress(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def tracefs(path, value):
    with open(os.path.join(TRACEFS, path), "w") as f:
        f.write(value)


def tracefs_on():
    tracefs("trace", "")
    tracefs("events/kvm_gmem/enable", "1")


def tracefs_off():
    tracefs("events/kvm_gmem/enable", "0")


def tracefs_overruns():
    total = 0
    for cpu in os.listdir(os.path.join(TRACEFS, "per_cpu")):
        with open(os.path.join(TRACEFS, "per_cpu", cpu, "stats")) as f:
            total += int(re.search(r"^overrun: (\d+)", f.read(), re.M)[1])
    return total


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def events_in(text):
    return text.count(END_EVENT + ":")


def summed(pattern, text):
    return sum(int(n) for n in re.findall(pattern, text))


def decoded(argv):
    """@argv's stdout and stderr, a decoder of a watcher's file."""
    r = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    return r.stdout, r.stderr


def count_tracefs(w):
    return events_in(read(w.out)), tracefs_overruns()


def count_perf(w):
    out, err = decoded(["perf", "script", "-i", f"{SCRATCH}/perf.data"])
    return events_in(out), summed(r"lost (\d+) chunks", err)


def count_trace_cmd(w):
    """trace-cmd record ends with each CPU's ring buffer statistics."""
    out, _ = decoded(["trace-cmd", "report", "-i", f"{SCRATCH}/trace.dat"])
    return events_in(out), summed(r"overrun: (\d+)", read(w.out))


def count_bpftrace(w):
    m = re.search(r"^@ends: (\d+)", read(w.out), re.M)
    return int(m[1]) if m else 0, None


def count_gmemtop_json(w):
    lines = [ln for ln in read(w.out).splitlines() if ln.startswith("{")]
    last = json.loads(lines[-1]) if lines else {"files": [], "dropped": 0}
    return sum(f["ioctls"] for f in last["files"]), last["dropped"]


def count_gmemtop_snoop(w):
    """A line per conversion below the header."""
    n = len(read(w.out).splitlines()) - 1
    return n, summed(r"(\d+) records dropped", read(w.err))


# One row per watcher.  argv runs beside the workloads; count() reads from
# its output (events seen, events the watcher says it lost) in the
# capacity part.
# ready: a regular expression its stdout matches once it is attached
# (None: wait SETTLE_S).  requires: a gmemtop option that must exist.
Watcher = namedtuple("Watcher", "name argv ready count setup teardown "
                     "requires",
                     defaults=(None, None, None, None, None, None))
SETTLE_S = 3
# The range sizes of the mapped file that the phases part splits: those
# gmem_convert_bench times it at (up to its MAPPED_MAX).
MAPPED_SIZES = (4 << 10, 64 << 10, 2 << 20)

# How many VMMs convert at once in the CPU-scaling boots.
VMMS = (1, 4, 16)
# How many open guest_memfds gmemtop watches in the observer part, and
# how many other descriptors their VMM holds.
OBSERVED_FILES = (10, 100, 1000)
OBSERVED_OTHER_FDS = 1000
OBSERVER_INTERVAL_S = 0.5
OBSERVER_WINDOW_S = 5
STOP_TIMEOUT_S = 120
# gmemtop's first table header, snoop header or JSON object.
GMEMTOP_READY = r"^\{|PID|TIME"
WATCHERS = [
    Watcher("none"),
    Watcher("tracefs", ["cat", f"{TRACEFS}/trace_pipe"], count=count_tracefs,
            setup=tracefs_on, teardown=tracefs_off),
    Watcher("perf record", ["perf", "record", "-q", "-a", "-e", "kvm_gmem:*",
                            "-o", f"{SCRATCH}/perf.data"], count=count_perf),
    Watcher("trace-cmd record", ["trace-cmd", "record", "-e", "kvm_gmem",
                                 "-o", f"{SCRATCH}/trace.dat"],
            ready=r"Hit Ctrl", count=count_trace_cmd),
    Watcher("bpftrace histogram", ["bpftrace", "-e", BPFTRACE_HIST],
            ready=r"^ready", count=count_bpftrace),
    # Rates only, from the same in-kernel counters as --json: no count.
    Watcher("gmemtop -b", [GMEMTOP, "-b"], ready=GMEMTOP_READY),
    # With the phase split, which -b's table does not show and leaves out.
    Watcher("gmemtop --json", [GMEMTOP, "--json"], ready=GMEMTOP_READY,
            count=count_gmemtop_json),
    # A line per event: line-buffered output would slow it down.
    Watcher("gmemtop --snoop", [GMEMTOP, "--snoop"],
            count=count_gmemtop_snoop),
    Watcher("gmemtop --json --holders", [GMEMTOP, "--json", "--holders"],
            ready=GMEMTOP_READY, count=count_gmemtop_json,
            requires="--holders"),
    # Attached to GUP only while hotspots have new EAGAINs: in the gup
    # workload, never.
    Watcher("gmemtop --json --holders=auto",
            [GMEMTOP, "--json", "--holders=auto"], ready=GMEMTOP_READY,
            count=count_gmemtop_json, requires="--holders[=auto]"),
]


@functools.lru_cache(maxsize=None)
def gmemtop_has(option):
    return option in subprocess.run([GMEMTOP, "--help"], capture_output=True,
                                    text=True).stdout


def available(w):
    return not w.requires or gmemtop_has(w.requires)


def cpu_ns(pid):
    """Time on a CPU of @pid's main thread, in ns (schedstat: exact,
    where /proc/PID/stat counts clock ticks)."""
    return int(read(f"/proc/{pid}/schedstat").split()[0])


def cpu_ticks(pid):
    """utime + stime of a live process, in seconds."""
    fields = read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Attached:
    """A watcher running beside a workload, with its output in SCRATCH."""

    def __init__(self, w, argv):
        self.w, self.proc = w, None
        self.out = f"{SCRATCH}/watcher.out"
        self.err = f"{SCRATCH}/watcher.err"
        if w.setup:
            w.setup()
        if argv:
            # Line-buffered, so that the readiness line shows at once.
            if w.ready:
                argv = ["stdbuf", "-oL", *argv]
            with open(self.out, "w") as out, open(self.err, "w") as err:
                self.proc = subprocess.Popen(argv,
                                             stdout=out, stderr=err,
                                             stdin=subprocess.DEVNULL)
            self.wait_ready()

    def wait_ready(self, timeout=180):
        if not self.w.ready:
            time.sleep(SETTLE_S)
            return
        deadline = time.monotonic() + timeout
        while not re.search(self.w.ready, read(self.out), re.M):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.w.name} did not start: "
                                   f"{read(self.err)[-500:]}")
            time.sleep(0.1)

    def cpu_s(self):
        return cpu_ticks(self.proc.pid) if self.proc else 0.0

    def stop(self):
        """Ends the watcher; returns its whole-life user+system seconds."""
        ru_s = 0.0
        if self.proc:
            time.sleep(1)		# let it drain what is queued
            self.proc.send_signal(signal.SIGINT)
            ru = reap(self.proc, STOP_TIMEOUT_S)
            ru_s = ru.ru_utime + ru.ru_stime
        if self.w.teardown:
            self.w.teardown()
        return ru_s


def reap(proc, timeout):
    """Waits for @proc, killing it after @timeout seconds; its rusage."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return ru
        if time.monotonic() > deadline:
            print(f"bench: {proc.args[1:3]} ignored SIGINT, killed",
                  file=sys.stderr, flush=True)
            proc.kill()
            deadline = float("inf")
        time.sleep(0.05)


def run_measured(argv):
    """Runs @argv; its JSON report with wall time and rusage added."""
    out_path = f"{SCRATCH}/workload.json"
    with open(out_path, "w") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        report = json.loads(read(out_path))
    except ValueError:
        raise RuntimeError(f"{argv} exited {proc.returncode}, no report")
    # A self-check that failed is a finding about the kernel: keep it.
    if proc.returncode and report["self_check"]:
        raise RuntimeError(f"{argv} exited {proc.returncode}")
    report.update(wall_s=wall, user_s=ru.ru_utime, sys_s=ru.ru_stime,
                  cpu_s=ru.ru_utime + ru.ru_stime)
    return report


def self_check(report):
    """Whether gmemload's counts matched the kernel's fdinfo, and if not,
    the first differences."""
    return {"self_check": report["self_check"],
            "mismatches": report["mismatches"][:3]}


def gmemload(*args):
    return [GMEMLOAD, "--quiet", "--seed", "11", *args]


def write_json(outdir, name, data):
    with open(os.path.join(outdir, name), "w") as f:
        json.dump(data, f, indent=1)


def convert_costs(profile, outdir, *, part, path, boot):
    """gmem_convert_bench with the profile's arguments for @part in this
    boot's mode (zero runs the ranges of convert again, on another clock),
    samples as JSON lines added to those of earlier boots in
    PART-PATH.jsonl."""
    args = profile["tree" if part == "tree" else "convert"]
    first = boot * int(args[args.index("-r") + 1])
    out = os.path.join(outdir, f"{part}-{path}.jsonl")
    with open(out, "a") as f:
        rc = subprocess.run([CONVERT_BENCH, *args, "-R", str(first)],
                            stdout=f).returncode
    if rc:
        raise RuntimeError(f"gmem_convert_bench exited {rc}")


def guest_driven(profile, outdir):
    """A guest converting its own pages through KVM_HC_MAP_GPA_RANGE:
    conversions per second untraced, phase shares from one run under
    gmemtop (which sums the kvm_gmem_phase intervals in the kernel)."""
    # A 2 MiB conversion costs some ten single pages: fewer of them.
    counts = {"random4k": profile["guest_count"],
              "range2m": max(profile["guest_count"] // 10, 10)}
    args = {p: gmemload("--guest-share", "100", "--pattern", p, "--size",
                        "64M", "--count", str(n)) for p, n in counts.items()}
    patterns = list(counts)
    runs = {p: [] for p in patterns}
    for _ in range(profile["guest_rounds"]):
        for p in patterns:
            r = run_measured(args[p])
            runs[p].append({"elapsed_s": r["elapsed_s"],
                            "conversions": r["totals"]["conversions"],
                            "cpu_s": r["cpu_s"], **self_check(r)})
    phases = {p: traced([args[p]]) for p in patterns}
    write_json(outdir, "guest.json", {"args": args, "runs": runs,
                                      "phases": phases})


class LruLoad:
    """tests/bench/lru_load: page-cache work that keeps every CPU's LRU
    add batch non-empty while the workloads run."""

    def __enter__(self):
        self.proc = subprocess.Popen([LRU_LOAD, SCRATCH], text=True,
                                     stdout=subprocess.PIPE)
        if not self.proc.stdout.readline().startswith("lru_load:"):
            raise RuntimeError("lru_load did not start")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        if self.proc.wait(timeout=STOP_TIMEOUT_S):
            raise RuntimeError(f"lru_load exited {self.proc.returncode}")


def under_gmemtop(run):
    """@run() under gmemtop --json: what it returned, and gmemtop's last
    per-file counters."""
    w = Watcher("gmemtop --json", [GMEMTOP, "--json"], ready=r"^\{")
    watcher = Attached(w, w.argv)
    try:
        result = run()
    finally:
        watcher.stop()
    return result, json.loads(read(watcher.out).strip().splitlines()[-1])[
        "files"]


def summed_phases(files):
    """Time per phase of the conversions of @files, summed."""
    phases = defaultdict(int)
    for f in files:
        for name, ns in f["phases_ns"].items():
            phases[name] += ns
    return dict(phases)


def traced(argvs):
    """@argvs run at once under gmemtop --json: the wall time until the
    last ends, the longest time gmemload itself reports, their conversions
    and self-checks, and gmemtop's per-file counters summed (all-CPU
    drains, conversions to private, ioctl time, time per phase)."""
    def run():
        t0 = time.monotonic()
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL) for argv in argvs]
        reports = [json.loads(p.communicate()[0]) for p in procs]
        return procs, reports, time.monotonic() - t0

    (procs, reports, wall), files = under_gmemtop(run)
    # As in run_measured(): a failed self-check is a finding, kept.
    if any(p.returncode and r["self_check"] for p, r in zip(procs, reports)):
        raise RuntimeError(f"{argvs[0]} failed")
    return {"wall_s": wall,
            "elapsed_s": max(r["elapsed_s"] for r in reports),
            "conversions": sum(r["totals"]["conversions"] for r in reports),
            "self_check": all(r["self_check"] for r in reports),
            "mismatches": [m for r in reports for m in r["mismatches"]][:3],
            "lru_drains": sum(f["lru_drains"] for f in files),
            "conversions_to_private": sum(f["conversions_to_private"]
                                          for f in files),
            "ioctl_ns": sum(f["latency_ns"]["sum"] for f in files),
            "phases_ns": summed_phases(files)}


def run_bench(args):
    """gmem_convert_bench @args, its samples thrown away."""
    rc = subprocess.run([CONVERT_BENCH, *args],
                        stdout=subprocess.DEVNULL).returncode
    if rc:
        raise RuntimeError(f"gmem_convert_bench {' '.join(args)} exited {rc}")


def mapped_phases(profile, outdir):
    """Where the conversions of a range that the VMM maps and a vCPU has
    faulted spend their time: gmem_convert_bench's mapped file alone, one
    size at a time, under gmemtop."""
    out = {}
    for size in MAPPED_SIZES:
        progress(f"mapped file, {size >> 10} KiB ranges, by phase")
        _, files = under_gmemtop(functools.partial(
            run_bench, ["-m", str(size >> 10), *profile["mapped"]]))
        out[size] = {
            "conversions": sum(f["conversions_to_private"] +
                               f["conversions_to_shared"] for f in files),
            "ioctl_ns": sum(f["latency_ns"]["sum"] for f in files),
            "phases_ns": summed_phases(files)}
    write_json(outdir, "mapped-phases.json", out)


def cpu_workloads(profile):
    """A VMM's conversion workloads: one page after a host fault, the guest
    converting random pages, 2 MiB ranges."""
    n = profile["cpus_count"]
    return {
        "host4k": gmemload("--pattern", "random4k", "--count", str(n)),
        "guest4k": gmemload("--guest-share", "100", "--pattern", "random4k",
                            "--count", str(n)),
        "range2m": gmemload("--pattern", "range2m",
                            "--count", str(max(n // 10, 2))),
    }


def cpu_scaling(profile, outdir, *, clock):
    """The conversion workloads of a VMM in a VM of this boot's CPU count,
    every CPU's LRU batch kept busy: time per conversion untraced, then
    all-CPU drains and time per phase from one run under gmemtop.  In a
    """
    workloads = cpu_workloads(profile)
    cpus = os.cpu_count()
    out = {"cpus": cpus, "clock": clock, "workloads": workloads,
           "runs": {w: [] for w in workloads}, "traced": {}}
    with LruLoad():
        for rnd in range(profile["cpus_rounds"]):
            for name, argv in workloads.items():
                progress(f"{cpus} CPUs, {clock}: {name} round {rnd + 1}")
                r = run_measured(argv)
                out["runs"][name].append(
                    {"ns_per_conversion":
                        r["elapsed_s"] * 1e9 / r["totals"]["conversions"],
                     **self_check(r)})
        for name, argv in workloads.items():
            out["traced"][name] = traced([argv])
    write_json(outdir, f"cpus-{cpus}-{clock}.json", out)


def concurrent_vmms(profile, outdir):
    """1, 4 and 16 VMMs converting at once, each its own VM and CPU."""
    argv = cpu_workloads(profile)["host4k"]
    cpus = os.cpu_count()
    if cpus <= max(VMMS):
        raise RuntimeError(f"{max(VMMS)} VMMs need more than {cpus} CPUs")
    runs = {}
    with LruLoad():
        for n in VMMS:
            progress(f"{n} VMMs at once, {cpus} CPUs")
            runs[n] = traced([argv] * n)
    write_json(outdir, "vmms.json", {"cpus": cpus, "workload": argv,
                                     "runs": runs})


def watched(w, argv, workload):
    """@workload run under watcher @w: its report and the watcher's CPU."""
    watcher = Attached(w, argv)
    try:
        before = watcher.cpu_s()
        r = run_measured(workload)
        during = watcher.cpu_s() - before
    finally:
        life = watcher.stop()
    return r, watcher, {"watcher_cpu_s": during, "watcher_life_cpu_s": life}


def conversion_loop(profile):
    """Host-driven single-page conversions and nothing else."""
    return gmemload("--size", "16M", "--pattern", "random4k",
                    "--count", str(4 * profile["overhead_count"]))


def overhead_workloads(profile):
    """A VMM's mix (holders, guest-driven conversions, VM set-up and
    teardown in its CPU time), host-driven single-page conversions
    alone, whose loop (gmemload's elapsed_s) is nothing but the
    conversion path, and one-page GUP calls and unpins that meet no
    guest_memfd page (gup_loop), what --holders adds to the rest of a
    host (--holders=auto, nothing while no hotspot needs it)."""
    n = profile["overhead_count"]
    workloads = {
        "mixed": gmemload("--size", "16M", "--pattern", "mixed", "--hold",
                          "5", "--guest-share", "20", "--count", str(n)),
        "conversions": conversion_loop(profile),
        "gup": [GUP_LOOP, str(profile["overhead_gup_calls"])],
    }
    chosen = profile.get("overhead_workloads", workloads)
    return {name: argv for name, argv in workloads.items() if name in chosen}


def overhead(profile, outdir):
    """Each workload's CPU time and loop time under each watcher,
    round-robin, the order rotated every round so that no watcher always
    follows the same one."""
    workloads = overhead_workloads(profile)
    ws = [w for w in WATCHERS if available(w)]
    samples = {name: {w.name: [] for w in ws} for name in workloads}
    for rnd in range(profile["overhead_rounds"]):
        for w in ws[rnd % len(ws):] + ws[:rnd % len(ws)]:
            for name, argv in workloads.items():
                progress(f"overhead round {rnd + 1}/"
                         f"{profile['overhead_rounds']}: {w.name}, {name}")
                r, _, cpu = watched(w, w.argv, argv)
                samples[name][w.name].append(
                    {"round": rnd, "wall_s": r["wall_s"],
                     "loop_cpu_s": r["loop_cpu_s"], "cpu_s": r["cpu_s"],
                     "user_s": r["user_s"], "sys_s": r["sys_s"], **cpu,
                     **self_check(r)})
    write_json(outdir, "overhead.json", {
        "workloads": workloads, "samples": samples,
        "unavailable": [w.name for w in WATCHERS if not available(w)]})


def bpf_programs():
    """The BPF programs loaded: {id: (name, runs, run time ns)}."""
    progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"],
                                      capture_output=True, check=True,
                                      text=True).stdout)
    return {p["id"]: (p["name"], p.get("run_cnt", 0), p.get("run_time_ns", 0))
            for p in progs}


def probes(profile, outdir):
    """What each of gmemtop's BPF programs costs per run, in every mode:
    the kernel's run-time statistics (kernel.bpf_stats_enabled) over one
    run of the conversion loop.  Under -icount their clock counts guest
    instructions.  Apart from the overhead rounds: the statistics' own
    clock reads add to every run."""
    workload = conversion_loop(profile)
    rows = {}
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    try:
        for w in WATCHERS:
            if not w.name.startswith("gmemtop") or not available(w):
                continue
            progress(f"BPF run time: {w.name}")
            # Its programs are those it loaded (this bpftool may not
            # know which process holds a program).
            before = bpf_programs()
            watcher = Attached(w, w.argv)
            try:
                r = run_measured(workload)
                progs = bpf_programs()
            finally:
                watcher.stop()
            rows[w.name] = {"ioctls": r["totals"]["ioctls"],
                            "programs": {name: {"runs": n, "ns": ns}
                                         for i, (name, n, ns) in progs.items()
                                         if n and i not in before}}
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("0")
    write_json(outdir, "probes.json", {"workload": workload, "rows": rows})


def capacity(profile, outdir):
    """Host-driven single-page conversions as fast as they go: per round,
    what each watcher delivered to user space (its own output, counted)
    against the ioctls gmemload made, and the rate under it."""
    workload = gmemload("--size", "64M", "--pattern", "random4k",
                        "--count", str(profile["capacity_count"]))
    rows = {w.name: {"argv": w.argv, "rounds": []}
            for w in WATCHERS if available(w)}
    for rnd in range(profile["capacity_rounds"]):
        for w in WATCHERS:
            if not available(w):
                continue
            progress(f"capacity round {rnd + 1}: {w.name}")
            r, watcher, _ = watched(w, w.argv, workload)
            seen, lost = w.count(watcher) if w.count else (None, None)
            rows[w.name]["rounds"].append(
                {"truth": r["totals"]["ioctls"], "seen": seen,
                 "reported_lost": lost,
                 "conversions_per_s":
                     r["totals"]["conversions"] / r["elapsed_s"],
                 **self_check(r)})
    write_json(outdir, "capacity.json", {"workload": workload, "rows": rows})


def lines_in(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def observed(nr_files):
    """gmemtop --json's own CPU per interval, once it shows @nr_files
    idle guest_memfds of one VMM: this process."""
    w = Watcher("gmemtop --json", [GMEMTOP, "--json", "-d",
                                   str(OBSERVER_INTERVAL_S), "--max-files",
                                   str(2 * max(OBSERVED_FILES))],
                ready=GMEMTOP_READY)
    watcher, files = Attached(w, w.argv), None
    try:
        files = gmem_ops.ManyFiles(nr_files, OBSERVED_OTHER_FDS)
        # Two intervals to list the VMM's descriptors and settle.
        time.sleep(3 * OBSERVER_INTERVAL_S)
        lines, ns = lines_in(watcher.out), cpu_ns(watcher.proc.pid)
        time.sleep(OBSERVER_WINDOW_S)
        intervals = lines_in(watcher.out) - lines
        ns = cpu_ns(watcher.proc.pid) - ns
    finally:
        watcher.stop()
        if files:
            files.close()
    shown = json.loads(read(watcher.out).splitlines()[-1])["files"]
    return {"files": nr_files, "shown": len(shown), "intervals": intervals,
            "cpu_ms_per_interval": ns / 1e6 / max(intervals, 1)}


def observer(profile, outdir):
    """What gmemtop's own interval costs against the guest_memfds it
    shows, rounds interleaved."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    runs = []
    for rnd in range(profile["observer_rounds"]):
        for n in OBSERVED_FILES:
            progress(f"observer round {rnd + 1}: {n} files")
            runs.append({"round": rnd, **observed(n)})
    write_json(outdir, "observer.json", {
        "other_fds": OBSERVED_OTHER_FDS, "interval_s": OBSERVER_INTERVAL_S,
        "runs": runs})


def environment(outdir, path):
    """The VM of the first boot in this mode (the overhead boot has one
    vCPU; the header describes the others)."""
    name = f"env-{path}.json"
    if os.path.exists(os.path.join(outdir, name)):
        return
    write_json(outdir, name, {
        "kernel": os.uname().release, "version": read("/proc/version").strip(),
        "cmdline": read("/proc/cmdline").strip(), "cpus": os.cpu_count(),
        "mem_kib": int(re.search(r"MemTotal:\s+(\d+)",
                                 read("/proc/meminfo"))[1])})


def parse_parts(words, path):
    """[(name, function of (profile, outdir))] for the PARTs asked; all
    that this boot's mode can do when none is."""
    parts = {"guest": guest_driven, "overhead": overhead,
             "capacity": capacity, "vmms": concurrent_vmms,
             "phases": mapped_phases, "observer": observer,
             "probes": probes}
    if not words:
        words = ["convert:0", "tree:0"] + \
            (["zero:0", "phases", "cpus:wall", "guest", "overhead",
              "probes", "capacity", "observer"]
             if path == "gmem" else [])
    chosen = []
    for word in words:
        name, _, boot = word.partition(":")
        if name == "zero" and path != "gmem":
            return None
        if name in ("convert", "zero", "tree") and boot.isdigit():
            chosen.append((word, functools.partial(convert_costs, part=name,
                                                   path=path,
                                                   boot=int(boot))))
        elif name == "cpus" and boot in ("icount", "wall") and \
                path == "gmem":
            chosen.append((word, functools.partial(cpu_scaling, clock=boot)))
        elif word in parts and path == "gmem":
            chosen.append((word, parts[word]))
        else:
            return None
    return chosen


def main():
    per_vm = read("/sys/module/kvm/parameters/vm_memory_attributes").strip()
    path = "legacy" if per_vm == "Y" else "gmem"
    args = sys.argv[1:]
    parts = parse_parts(args[2:], path) if len(args) >= 2 else None
    if not parts or args[0] not in PROFILES:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(PROFILES)}}} OUTDIR "
                 "[convert:BOOT|zero:BOOT|tree:BOOT|cpus:CLOCK|vmms|phases|"
                 "guest|overhead|probes|capacity|observer]...\n(all but convert and tree need "
                 "kvm.vm_memory_attributes=0)")
    profile, outdir = PROFILES[args[0]], args[1]
    os.makedirs(SCRATCH, exist_ok=True)
    environment(outdir, path)
    for name, run_part in parts:
        t0 = time.monotonic()
        run_part(profile, outdir)
        progress(f"{path}: {name} took {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
