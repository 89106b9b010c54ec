#!/usr/bin/env python3
"""Turn the raw samples of tests/bench/invm.py into docs/benchmarks.md and
docs/benchmarks.json: medians with their spread, ratios, and for each
target whether it is met.

    report.py [--profile NAME] RAWDIR OUTDIR

Parts whose raw file is missing (a boot in one mode only) show as n/a.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
from collections import defaultdict

PAGE = 4096
SIZES = [4 << 10, 64 << 10, 2 << 20, 64 << 20, 1 << 30]
GMEM_MODES = ["unspecified", "zero", "preserve"]
# User-space zeroing that ZERO is judged against: the C library's
# memset() (the verdict), and a bare rep stosb (shown).
ZEROING = ("memset", "rep_stosb")
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def spread(xs):
    """Median, quartiles and extremes of @xs (None when empty)."""
    if not xs:
        return None
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=4, method="inclusive") \
        if len(xs) > 1 else [xs[0]] * 3
    return {"n": len(xs), "median": statistics.median(xs), "q1": q[0],
            "q3": q[2], "min": xs[0], "max": xs[-1]}


def size_name(size):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def fmt(s, scale=1.0, digits=0):
    """"median [q1-q3]" of a spread, scaled."""
    if not s:
        return "n/a"
    return (f"{s['median'] * scale:.{digits}f} "
            f"[{s['q1'] * scale:.{digits}f}-{s['q3'] * scale:.{digits}f}]")


def fmt_ratio(r):
    """A paired ratio's spread."""
    return fmt(r, digits=2)


UNRESOLVED = "unresolved"	# the limit lies within the spread


def verdict(ok):
    if ok is None:
        return "n/a"
    if ok == UNRESOLVED:
        return "not resolved (within the spread)"
    return "met" if ok else "**missed**"


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def load_json(raw, name):
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def load_samples(raw, part, path):
    """gmem_convert_bench's JSON lines of invm.py's @part in @path's boots;
    other lines are library chatter."""
    name = os.path.join(raw, f"{part}-{path}.jsonl")
    if not os.path.exists(name):
        return []
    with open(name) as f:
        return [json.loads(ln) for ln in f if ln.startswith("{")]


def both_paths(raw, part):
    return load_samples(raw, part, "gmem") + \
        load_samples(raw, part, "legacy")


# ---- part 1: conversion cost ----

def group_by_round(samples, case):
    """{key: {round: [values]}} of @samples, where @case(sample) gives a
    sample's (key, value), or None for a sample of another test."""
    per_case = defaultdict(lambda: defaultdict(list))
    for s in samples:
        kv = case(s)
        if kv:
            per_case[kv[0]][s["round"]].append(kv[1])
    return per_case


def range_case(s):
    """A range conversion's time per page under (path, size, file, to,
    mode), user-space zeroing's whole-range time under (path, size, way)
    for each way of ZEROING."""
    if s["test"] == "convert":
        return ((s["path"], s["size"], s["file"], s["to"], s["mode"]),
                s["wall_ns"] / (s["size"] / PAGE))
    if s["test"] in ZEROING:
        return (s["path"], s["size"], s["test"]), s["wall_ns"]
    return None


def one_page_case(s):
    """A one-page conversion's time under (path, file, op)."""
    if s["test"] == "one_page":
        return (s["path"], s["file"], s["op"]), s["wall_ns"]
    return None


def pooled(by_round):
    """The spread of every case's samples, all rounds together."""
    return {k: spread([x for xs in rounds.values() for x in xs])
            for k, rounds in by_round.items()}


def paired(by_round, a, b, scale=1.0):
    """Spread over the rounds of @a's median over @b's in the same round,
    times @scale; None unless both have rounds.  The cases of one path
    and round come from one boot, and round N of the two paths from two
    boots run one after the other: a ratio taken within a round leaves
    out what moved from round to round, and its spread over the rounds
    is the ratio's own."""
    ra, rb = by_round.get(a, {}), by_round.get(b, {})
    return spread([statistics.median(ra[r]) / statistics.median(rb[r]) *
                   scale for r in ra if r in rb and statistics.median(rb[r])])


def cpu_shares(samples):
    """Per conversion case, CPU time (getrusage, tick-granular) over wall
    time, summed over its samples: near 1 when the ioctl computes rather
    than waits."""
    cpu, wall = defaultdict(int), defaultdict(int)
    for s in samples:
        if s["test"] == "convert":
            key = "/".join(str(s[k]) for k in ("path", "size", "file", "to",
                                               "mode"))
            cpu[key] += s["cpu_ns"]
            wall[key] += s["wall_ns"]
    return {k: cpu[k] / wall[k] for k in wall if wall[k]}


def against(r, limit):
    """True when the spread of @r lies below @limit, False above it,
    UNRESOLVED when the limit falls within the spread."""
    if r["q3"] <= limit:
        return True
    if r["q1"] > limit:
        return False
    return UNRESOLVED


def check(r, met, **case):
    """A target's check: the case, its paired ratio and the verdict."""
    return {**case, "ratio": r and r["median"], "ratio_spread": r,
            "met": met}


def no_slower(r):
    """A ratio to the legacy path not above 1 beyond its spread: met when
    faster or not told apart, missed only when even its lower quartile is
    above 1."""
    return None if r is None else r["q1"] <= 1.0


def conversion_section(by_round, sizes):
    st = pooled(by_round)
    rows, checks, ratios = [], [], {}
    for size in sizes:
        for file in ("allocated", "unallocated"):
            for to in ("private", "shared"):
                legacy = ("legacy", size, file, to, "legacy")
                case = {m: ("gmem", size, file, to, m) for m in GMEM_MODES}
                r = {"preserve / legacy": paired(by_round, case["preserve"],
                                                 legacy),
                     "unspecified / legacy": paired(
                         by_round, case["unspecified"], legacy),
                     "preserve / unspecified": paired(
                         by_round, case["preserve"], case["unspecified"])}
                ok = no_slower(r["preserve / legacy"])
                name = f"{size}/{file}/{to}"
                ratios.update({f"{name}/{k}": v for k, v in r.items()})
                checks.append(check(r["preserve / legacy"], ok, size=size,
                                    file=file, to=to))
                rows.append([size_name(size), file, to,
                             fmt(st.get(legacy)),
                             *(fmt(st.get(case[m]))
                               if to == "shared" or m != "zero"
                               else "-" for m in GMEM_MODES),
                             *(fmt_ratio(v) for v in r.values()),
                             verdict(ok)])
    md = table(["range", "file", "to", "legacy per-VM", "unspecified",
                "zero", "preserve", "preserve / legacy",
                "unspecified / legacy", "preserve / unspecified",
                "no slower than legacy"], rows)
    return md, checks, ratios


def phase_shares(t):
    """Each phase's share of the time in phases of traced run @t."""
    total = sum(t["phases_ns"].values()) or 1
    return {k: v / total for k, v in t["phases_ns"].items()}


def mapped_section(by_round, sizes, phases):
    """The mapped file (the VMM's mapping and a vCPU's faults to undo)
    against the allocated one (nothing to undo), per page; then where its
    conversions spend their time, per size."""
    st = pooled(by_round)
    rows, out = [], {}
    for size in sizes:
        for to in ("private", "shared"):
            for mode in GMEM_MODES:
                a, b = (("gmem", size, f, to, mode)
                        for f in ("mapped", "allocated"))
                if a not in st:
                    continue
                r = paired(by_round, a, b)
                out[f"{size}/{to}/{mode}/mapped / allocated"] = r
                rows.append([size_name(size), to, mode, fmt(st.get(b)),
                             fmt(st[a]), fmt_ratio(r)])
    md = table(["range", "to", "mode", "allocated, unmapped",
                "mapped and faulted", "mapped / allocated"], rows)
    rows = []
    for size, t in sorted((phases or {}).items(), key=lambda x: int(x[0])):
        shares = phase_shares(t)
        out[f"{size}/phase_share"] = shares
        per_page = t["ioctl_ns"] / max(t["conversions"], 1) / \
            (int(size) / PAGE)
        rows.append([size_name(int(size)), t["conversions"],
                     f"{per_page:.0f}",
                     ", ".join(f"{k} {v:.1%}" for k, v in shares.items())])
    md += "\n" + table(["range", "conversions", "instructions/page",
                        "share of the time in phases, per phase"], rows)
    return md, out


def scaling_section(by_round):
    """Per-page cost at 1 GiB against 2 MiB, per path, file, direction and
    mode."""
    big, ref = 1 << 30, 2 << 20
    st = pooled(by_round)
    rows, checks = [], []
    cases = sorted({k[2:] for k in st if len(k) == 5 and k[1] == ref},
                   key=lambda k: (k[0], k[1], k[2]))
    for path in ("gmem", "legacy"):
        for file, to, mode in cases:
            a, b = (path, big, file, to, mode), (path, ref, file, to, mode)
            r = paired(by_round, a, b)
            if not r:
                continue
            ok = against(r, 1.2)
            checks.append(check(r, ok, path=path, file=file, to=to,
                                mode=mode))
            rows.append([path, file, to, mode, fmt(st[b]), fmt(st[a]),
                         fmt_ratio(r), verdict(ok)])
    for path in ("gmem", "legacy"):
        a, b = (path, big, "memset"), (path, ref, "memset")
        r = paired(by_round, a, b, ref / big)
        if r:
            rows.append([path, "-", "-", "memset() (reference)",
                         fmt(scaled(st[b], PAGE / ref)),
                         fmt(scaled(st[a], PAGE / big)), fmt_ratio(r),
                         "not judged"])
    md = table(["path", "file", "to", "mode", "2 MiB instructions/page",
                "1 GiB instructions/page", "ratio", "within 1.2x"], rows)
    return md, checks


def scaled(s, k):
    return s and {key: v if key == "n" else v * k for key, v in s.items()}


def zero_section(by_round, sizes):
    st = pooled(by_round)
    rows, checks = [], []
    for size in sizes:
        zero_case = ("gmem", size, "allocated", "shared", "zero")
        zero = scaled(st.get(zero_case), size / PAGE / 1000)
        mset, stos = (scaled(st.get(("gmem", size, way)), 1 / 1000)
                      for way in ZEROING)
        r = paired(by_round, zero_case, ("gmem", size, "memset"),
                   size / PAGE)
        ok = against(r, 1.5) if r else None
        if r:
            checks.append(check(r, ok, size=size))
        rows.append([size_name(size), fmt(zero, digits=1),
                     fmt(mset, digits=1), fmt(stos, digits=1),
                     fmt_ratio(r), verdict(ok) if r else "n/a"])
    md = table(["range", "ZERO conversion us", "memset() us",
                "rep stosb us", "ZERO / memset", "within 1.5x"], rows)
    return md, checks


def fragmentation_section(by_round):
    st = pooled(by_round)
    rows, checks = [], []
    for path in ("gmem", "legacy"):
        for op in ("split", "merge"):
            frag, fresh = (path, "fragmented", op), (path, "fresh", op)
            r = paired(by_round, frag, fresh)
            if not r:
                continue
            ok = against(r, 1.2)
            checks.append(check(r, ok, path=path, op=op))
            rows.append([path, op, fmt(st[fresh]), fmt(st[frag]),
                         fmt_ratio(r), verdict(ok)])
    md = table(["path", "one-page conversion", "fresh file instructions",
                "fragmented file instructions", "ratio", "within 1.2x"], rows)
    return md, checks


# ---- part 2: guest-driven ----

def guest_section(guest):
    if not guest:
        return "n/a\n", {}
    rows, out = [], {}
    for pattern, runs in guest["runs"].items():
        rate = spread([r["conversions"] / r["elapsed_s"] for r in runs])
        ph = guest["phases"][pattern]
        shares = phase_shares(ph)
        in_ioctl = ph["ioctl_ns"] / (ph["elapsed_s"] * 1e9)
        drained, _ = drains_and_refcheck(ph)
        out[pattern] = {"conversions_per_s": rate, "phase_share": shares,
                        "ioctl_share_of_wall": in_ioctl,
                        "lru_drains_per_conversion_to_private": drained}
        rows.append([pattern, fmt(rate, digits=0), f"{in_ioctl:.1%}",
                     ", ".join(f"{k} {v:.1%}" for k, v in shares.items()),
                     "n/a" if drained is None else f"{drained:.1%}"])
    md = table(["guest pattern", "conversions/s", "time in the ioctl",
                "share of ioctl time per phase",
                "conversions to private that drained all CPUs"], rows)
    return md, out


# ---- part 2b: cost against the host's CPU count ----

CPU_WORKLOADS = {"host4k": "one page after a host fault",
                 "guest4k": "guest-driven, random 4 KiB",
                 "range2m": "2 MiB ranges"}


def load_cpus(raw):
    """{(cpus, clock): cpus-N-CLOCK.json} of every CPU-scaling boot."""
    runs = {}
    for name in os.listdir(raw):
        m = re.fullmatch(r"cpus-(\d+)-(icount|wall)\.json", name)
        if m:
            runs[(int(m[1]), m[2])] = load_json(raw, name)
    return runs


def per_conversion(run, workload):
    return spread([r["ns_per_conversion"] for r in run["runs"][workload]])


def drains_and_refcheck(t):
    """All-CPU drains per conversion to private, and the time from the
    unmap to the end of the reference check (where a drain waits) per
    conversion to private, in µs."""
    n = t["conversions_to_private"]
    if not n:
        return None, None
    return t["lru_drains"] / n, t["phases_ns"].get("refcheck", 0) / n / 1e3


def paired_ratio(a, b, workload):
    """Round-by-round ratio of per-conversion cost, run @a over run @b."""
    xs = [ra["ns_per_conversion"] / rb["ns_per_conversion"]
          for ra, rb in zip(a["runs"][workload], b["runs"][workload])]
    return spread(xs)


def cpus_rows(runs, counts):
    """The table of item 1, and its figures by workload and CPU count."""
    rows, out = [], {}
    for w, what in CPU_WORKLOADS.items():
        for n in counts:
            ic, wall = runs.get((n, "icount")), runs.get((n, "wall"))
            drained, refcheck = drains_and_refcheck(wall["traced"][w]) \
                if wall else (None, None)
            fig = {"instructions": ic and per_conversion(ic, w),
                   "wall_ns": wall and per_conversion(wall, w),
                   "drains_per_conversion_to_private": drained,
                   "refcheck_us_per_conversion_to_private": refcheck}
            out.setdefault(w, {})[n] = fig
            rows.append([what, n,
                         fmt(fig["instructions"], 1e-3, 1),
                         fmt(fig["wall_ns"], 1e-3, 0),
                         "n/a" if drained is None else f"{drained:.1%}",
                         "n/a" if refcheck is None else f"{refcheck:.1f}"])
    return out, table(["workload", "CPUs", "guest instructions per conversion "
                  "(thousands)", "wall µs per conversion",
                  "conversions to private that drained all CPUs",
                  "µs per conversion to private in the reference check"],
                 rows)


def vmms_section(vmms):
    """N VMMs at once: measured rate, drains, and the share of ioctl time
    in the reference check of conversions when any drained all CPUs (the
    part serialised on lru_add_drain_all()'s mutex, at most)."""
    if not vmms:
        return "n/a\n", {}
    rows, out = [], {}
    one = vmms["runs"].get("1")
    for n, t in sorted(vmms["runs"].items(), key=lambda kv: int(kv[0])):
        serial = t["phases_ns"].get("refcheck", 0) / t["ioctl_ns"] \
            if t["lru_drains"] and t["ioctl_ns"] else 0.0
        projected = int(n) / (1 + (int(n) - 1) * serial)
        rate = t["conversions"] / t["wall_s"]
        out[n] = {"conversions_per_s": rate, "lru_drains": t["lru_drains"],
                  "serialised_share": serial, "projected_speedup": projected}
        rows.append([n, f"{rate:.0f}",
                     f"{rate / (one['conversions'] / one['wall_s']):.2f}"
                     if one else "n/a",
                     t["lru_drains"], f"{serial:.2%}", f"{projected:.1f}"])
    md = table(["VMMs", "conversions/s, all VMMs (one host thread)",
                "rate against one VMM", "all-CPU drains",
                "serialised share of ioctl time",
                "projected rate against one VMM, a CPU each"], rows)
    return md, out


def cpus_section(runs, vmms):
    if not runs:
        return "n/a\n", [], None
    counts = sorted({n for n, _ in runs})
    lo, hi = counts[0], counts[-1]
    checks = []
    for w, what in CPU_WORKLOADS.items():
        a, b = runs.get((hi, "icount")), runs.get((lo, "icount"))
        r = a and b and paired_ratio(a, b, w)
        checks.append(check(r, r and against(r, 1.2),
                            what=f"{what}: {hi} CPUs over {lo}"))
    guest_drains = sum(run["traced"]["guest4k"]["lru_drains"]
                       for run in runs.values())
    checks.append({"what": "all-CPU drains, guest-driven, every CPU count",
                   "ratio": None, "drains": guest_drains,
                   "met": guest_drains == 0})
    vmm_md, vmm_out = vmms_section(vmms)
    top = vmm_out.get("16")
    checks.append({"what": "16 VMMs against one (projected)",
                   "ratio": top and top["projected_speedup"],
                   "met": top and top["projected_speedup"] >= 8})
    per_cpus, cpus_md = cpus_rows(runs, counts)
    return cpus_md + "\n" + vmm_md, checks, {
        "per_cpus": per_cpus, "vmm_cpus": vmms and vmms["cpus"],
        "vmms": vmm_out}


# ---- part 3: tracing overhead ----

OVERHEAD_LIMIT = 1.03
# The watchers that attach to GUP, judged on GUP calls of other memory:
# for the whole run, and only while a hotspot needs it (never in gup).
GUP_WATCHERS = {"gmemtop --json --holders": "gup",
                "gmemtop --json --holders=auto": "gup-auto"}


def watcher_rows(samples):
    """Per watcher of one workload: spreads of the workload's CPU time, of
    its CPU, loop and wall time paired with the unwatched run of the same
    round, and of the watcher's own CPU time."""
    base = {s["round"]: s for s in samples["none"]}
    out = {}
    for name, ss in samples.items():
        def ratio(key):
            return spread([s[key] / base[s["round"]][key] for s in ss])
        out[name] = {"workload_cpu_s": spread([s["cpu_s"] for s in ss]),
                     "cpu_ratio": ratio("cpu_s"),
                     "loop_ratio": ratio("loop_cpu_s"),
                     "wall_ratio": ratio("wall_s"),
                     "watcher_cpu_s": spread([s["watcher_cpu_s"]
                                              for s in ss]),
                     "watcher_life_cpu_s": spread([s["watcher_life_cpu_s"]
                                                   for s in ss])}
    return out


def overhead_section(ov):
    if not ov:
        return "n/a\n", {}
    md, out = "", {}
    for workload, samples in ov["samples"].items():
        out[workload] = watcher_rows(samples)
        rows = [[name, fmt(r["workload_cpu_s"], digits=3),
                 fmt(r["cpu_ratio"], digits=3), fmt(r["loop_ratio"], digits=3),
                 fmt(r["wall_ratio"], digits=3),
                 fmt(r["watcher_cpu_s"], digits=2),
                 fmt(r["watcher_life_cpu_s"], digits=2)]
                for name, r in out[workload].items()]
        for name in ov["unavailable"]:
            out[workload][name] = None
            rows.append([name] + ["n/a (no such gmemtop option yet)"] * 6)
        md += f"\n{workload}: `{' '.join(ov['workloads'][workload][1:])}`\n\n"
        md += table(["watcher", "workload CPU s (user+sys)",
                     "CPU ratio to none", "loop CPU ratio to none",
                     "wall ratio to none",
                     "watcher CPU s during the workload",
                     "watcher CPU s, whole life"], rows)
    return md, out


def overhead_checks(out):
    """Every gmemtop mode within OVERHEAD_LIMIT: of the mixed workload's
    CPU time, and of the conversion-only workload's loop; then -b against
    each other way of watching, on the mixed workload's CPU time."""
    checks = []
    for workload, key in (("mixed", "cpu_ratio"),
                          ("conversions", "loop_ratio")):
        for name, row in out.get(workload, {}).items():
            if not name.startswith("gmemtop") or not row:
                continue
            r = row[key]
            checks.append(check(r, against(r, OVERHEAD_LIMIT), kind="limit",
                                what=f"{name}, {workload}"))
    for name, kind in GUP_WATCHERS.items():
        gup = out.get("gup", {}).get(name)
        if gup:
            r = gup["loop_ratio"]
            checks.append(check(r, against(r, OVERHEAD_LIMIT), kind=kind,
                                what=f"{name}, gup"))
    top = out.get("mixed", {}).get("gmemtop -b")
    for alt in ("tracefs", "perf record", "trace-cmd record",
                "bpftrace histogram"):
        a = out.get("mixed", {}).get(alt)
        if not top or not a:
            continue
        r, q = top["cpu_ratio"], a["cpu_ratio"]
        met = True if r["q3"] < q["q1"] else \
            False if q["q3"] < r["q1"] else UNRESOLVED
        checks.append(check(q, met, kind="cheaper",
                            what=f"gmemtop -b cheaper than {alt}"))
    return checks or [{"kind": "limit", "what": "gmemtop", "ratio": None,
                       "met": None}]


def probes_section(probes):
    """Per gmemtop mode, each BPF program's runs per conversion and run
    time per run, and the sum per conversion."""
    if not probes:
        return "n/a\n", {}
    rows, out = [], {}
    for mode, r in probes["rows"].items():
        per_conv = {name: (p["runs"] / r["ioctls"], p["ns"] / p["runs"])
                    for name, p in sorted(r["programs"].items())}
        total = sum(runs * ns for runs, ns in per_conv.values())
        out[mode] = {"programs": per_conv, "per_conversion": total}
        rows += [[mode, name, f"{runs:.2f}", f"{ns:.0f}", f"{runs * ns:.0f}"]
                 for name, (runs, ns) in per_conv.items()]
        rows.append([mode, "**all**", "", "", f"**{total:.0f}**"])
    return table(["gmemtop", "BPF program", "runs per conversion",
                  "instructions per run", "instructions per conversion"],
                 rows), out


# ---- part 4: event capacity ----

def capacity_section(cap):
    """Per watcher, over the rounds: ioctls made, what its output showed,
    what it says it lost, and the conversion rate under it.  gmemtop's
    snoop records are events delivered one by one, which a full ring
    buffer loses; its --json counts come from counters in the kernel,
    which cannot lose one but must equal gmemload's."""
    if not cap:
        return "n/a\n", []
    rows, checks = [], []
    for name, row in cap["rows"].items():
        rs = row["rounds"]
        truth = sum(r["truth"] for r in rs)
        rate = fmt(spread([r["conversions_per_s"] for r in rs]))
        if rs[0]["seen"] is None:
            rows.append([name, truth, "-", "-", "-", rate])
            continue
        missing = truth - sum(r["seen"] for r in rs)
        lost = [r["reported_lost"] for r in rs]
        rows.append([name, truth, truth - missing, missing,
                     "n/a" if None in lost else sum(lost), rate])
        if name.startswith("gmemtop"):
            what = "loses no event" if "--snoop" in row["argv"] \
                else "counts every ioctl"
            checks.append({"what": f"{name} {what}", "missing": missing,
                           "met": missing == 0})
    md = table(["watcher", "ioctls (gmemload)", "events seen", "missing",
                "lost, as the watcher reports", "conversions/s"], rows)
    return md, checks


# ---- part 5: gmemtop's own cost per interval ----

# gmemtop's interval at the most files it was measured with may cost at
# most this much more, per file, than at the next fewest: work per file
# and interval, not per file and descriptor of its VMM.
OBSERVER_LIMIT = 1.2


def observer_section(obs):
    """gmemtop's CPU per interval against the files it shows, and the
    growth from the next fewest files to the most, per file, paired per
    round."""
    if not obs:
        return "n/a\n", []
    by_files = defaultdict(dict)
    for r in obs["runs"]:
        by_files[r["files"]][r["round"]] = r
    counts = sorted(by_files)
    rows = []
    for n in counts:
        runs = by_files[n].values()
        ms = spread([r["cpu_ms_per_interval"] for r in runs])
        rows.append([n, min(r["shown"] for r in runs), fmt(ms, digits=2),
                     fmt(ms, scale=1000 / n, digits=1)])
    md = table(["guest_memfds", "rows shown (least)",
                "gmemtop CPU ms per interval", "µs per file"], rows)
    if len(counts) < 2:
        return md, []
    few, most = counts[-2], counts[-1]
    growth = spread([
        by_files[most][rnd]["cpu_ms_per_interval"] / most /
        (by_files[few][rnd]["cpu_ms_per_interval"] / few)
        for rnd in by_files[most] if rnd in by_files[few]])
    return md, [check(growth, against(growth, OBSERVER_LIMIT), kind="limit",
                      what=f"per-file cost, {most} files against {few}")]


# ---- gmemload's own check of the kernel's counts ----

def self_check_section(guest, ov, cap, cpu_runs, vmms):
    """Runs whose counts disagreed with the kernel's fdinfo: a finding
    about the kernel (or gmemload) that the timings must not hide."""
    runs = []
    if guest:
        runs += [r for rs in guest["runs"].values() for r in rs]
        runs += list(guest["phases"].values())
    for run in cpu_runs.values():
        runs += [r for rs in run["runs"].values() for r in rs]
        runs += list(run["traced"].values())
    if vmms:
        runs += list(vmms["runs"].values())
    if ov:
        runs += [s for ws in ov["samples"].values() for ss in ws.values()
                 for s in ss]
    if cap:
        runs += [r for row in cap["rows"].values() for r in row["rounds"]]
    bad = [r for r in runs if not r["self_check"]]
    out = {"runs": len(runs), "disagreed": len(bad),
           "examples": bad[0]["mismatches"] if bad else []}
    if not bad:
        return f"All {len(runs)} gmemload runs agreed with fdinfo.\n", out
    return (f"**{len(bad)} of {len(runs)} gmemload runs disagreed with the "
            f"kernel's fdinfo**, e.g. " +
            "; ".join(f"`{m}`" for m in out["examples"]) + ".\n"), out


# ---- the whole report ----

def host_facts(raw):
    env = load_json(raw, "env-gmem.json") or load_json(raw, "env-legacy.json")
    qemu = subprocess.run(["qemu-system-x86_64", "--version"],
                          capture_output=True, text=True).stdout
    with open("/proc/cpuinfo") as f:
        cpu = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
    try:
        commit = subprocess.run(["git", "-C", TOP, "describe", "--always",
                                 "--dirty"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": env["kernel"] if env else "n/a",
        "kernel_version": env["version"] if env else "n/a",
        "guest_cpus": env["cpus"] if env else None,
        "qemu": qemu.splitlines()[0] if qemu else "n/a",
        "host_cpu": cpu[1] if cpu else platform.processor(),
        "host_cpus": os.cpu_count(),
        "commit": commit,
    }


def targets_table(checks):
    def all_met(items):
        vals = [c["met"] for c in items]
        if False in vals:
            return False
        if not vals or None in vals:
            return None
        return UNRESOLVED if UNRESOLVED in vals else True

    def worst(items, key="ratio"):
        vals = [c[key] for c in items if c.get(key) is not None]
        return f"worst {max(vals):.2f}" if vals else "n/a"

    limits = [c for c in checks["overhead"] if c["kind"] == "limit"]
    gup = [c for c in checks["overhead"] if c["kind"] == "gup"]
    gup_auto = [c for c in checks["overhead"] if c["kind"] == "gup-auto"]
    cheaper = [c for c in checks["overhead"] if c["kind"] == "cheaper"]

    def projected(items):
        vals = [c["ratio"] for c in items if c.get("ratio") is not None]
        return f"{vals[0]:.1f}x projected" if vals else "n/a"

    rows = [
        ["every gmemtop mode costs <= 3% over none: the mixed workload's "
         "CPU time, the conversion loop's time",
         worst(limits), verdict(all_met(limits))],
        ["gmemtop --holders costs GUP calls that meet no guest_memfd page "
         "<= 3% (gup_loop's loop time)", worst(gup), verdict(all_met(gup))],
        ["gmemtop --holders=auto costs them <= 3% while no hotspot needs "
         "it (the same loop)", worst(gup_auto), verdict(all_met(gup_auto))],
        ["gmemtop -b costs less than every alternative",
         ", ".join(f"{c['what'].split('than ')[1]} {c['ratio']:.3f}"
                   for c in cheaper) or "n/a",
         verdict(all_met(cheaper))],
        ["gmemtop's snoop loses no event, its counts miss no ioctl",
         ", ".join(f"{c['what']}: {c['missing']} missing"
                   for c in checks["capacity"]) or "n/a",
         verdict(all_met(checks["capacity"]))],
        ["per-guest_memfd (preserve) no slower than legacy, every size",
         worst(checks["conversion"]), verdict(all_met(checks["conversion"]))],
        ["per-page cost at 1 GiB within 1.2x of 2 MiB",
         worst(checks["scaling"]), verdict(all_met(checks["scaling"]))],
        ["ZERO within 1.5x of the C library's memset(), every size",
         worst(checks["zero"]), verdict(all_met(checks["zero"]))],
        ["fragmented file within 1.2x of a fresh one",
         worst(checks["fragmentation"]),
         verdict(all_met(checks["fragmentation"]))],
        ["cost per conversion at the most CPUs within 1.2x of the fewest, "
         "every workload", worst(checks["cpus"][:-2]),
         verdict(all_met(checks["cpus"][:-2]))],
        ["no all-CPU drain in the guest-driven workload",
         ", ".join(f"{c['drains']} drains" for c in checks["cpus"][-2:-1])
         or "n/a", verdict(all_met(checks["cpus"][-2:-1]))],
        ["16 VMMs convert at least 8x the rate of one",
         projected(checks["cpus"][-1:]),
         verdict(all_met(checks["cpus"][-1:]))],
        [f"gmemtop's interval costs per file at most "
         f"{OBSERVER_LIMIT}x more at the most files than at the next fewest",
         worst(checks["observer"]), verdict(all_met(checks["observer"]))],
    ]
    return table(["target", "measured", "verdict"], rows)


def rounds(samples):
    return 1 + max((s["round"] for s in samples), default=-1)


def build(raw, profile):
    samples = both_paths(raw, "convert")
    wall = load_samples(raw, "zero", "gmem")
    tree = both_paths(raw, "tree")
    ranges = group_by_round(samples, range_case)
    wall_ranges = group_by_round(wall, range_case)
    one_page = group_by_round(tree, one_page_case)
    sizes = [s for s in SIZES
             if any(len(k) == 5 and k[1] == s for k in ranges)]
    frag_n = next((s["conversions"] for s in tree
                   if s["test"] == "fragment"), 0)
    guest = load_json(raw, "guest.json")
    ov = load_json(raw, "overhead.json")
    cap = load_json(raw, "capacity.json")

    parts, checks = {}, {}
    parts["conversion"], checks["conversion"], ratios = \
        conversion_section(ranges, sizes)
    parts["mapped"], mapped_out = mapped_section(
        ranges, sizes, load_json(raw, "mapped-phases.json"))
    parts["scaling"], checks["scaling"] = scaling_section(ranges)
    parts["zero"], checks["zero"] = zero_section(wall_ranges, sizes)
    parts["fragmentation"], checks["fragmentation"] = \
        fragmentation_section(one_page)
    parts["guest"], guest_out = guest_section(guest)
    cpu_runs, vmms = load_cpus(raw), load_json(raw, "vmms.json")
    parts["cpus"], checks["cpus"], cpus_out = cpus_section(cpu_runs, vmms)
    cpus_workloads = next(iter(cpu_runs.values()))["workloads"] \
        if cpu_runs else None
    parts["overhead"], ov_out = overhead_section(ov)
    checks["overhead"] = overhead_checks(ov_out)
    parts["probes"], probes_out = probes_section(
        load_json(raw, "probes.json"))
    parts["capacity"], checks["capacity"] = capacity_section(cap)
    observer = load_json(raw, "observer.json")
    parts["observer"], checks["observer"] = observer_section(observer)
    parts["self_check"], self_checked = \
        self_check_section(guest, ov, cap, cpu_runs, vmms)
    facts = host_facts(raw)
    facts.update(profile=profile, convert_rounds=rounds(samples),
                 cpu_counts=sorted({n for n, _ in cpu_runs}),
                 vmm_cpus=cpus_out and cpus_out["vmm_cpus"],
                 tree_rounds=rounds(tree), fragmenting_conversions=frag_n,
                 overhead_rounds=len(next(iter(ov["samples"].values()))
                                     ["none"]) if ov else 0,
                 capacity_rounds=len(next(iter(cap["rows"].values()))
                                     ["rounds"]) if cap else 0,
                 guest_rounds=len(next(iter(guest["runs"].values())))
                 if guest else 0)
    data = {"facts": facts, "targets": checks,
            "conversion_icount_ns_per_page": {
                "/".join(map(str, k)): v
                for k, v in pooled(ranges).items()},
            "conversion_ratios": ratios,
            "mapped": mapped_out,
            "one_page_icount_ns": {
                "/".join(k): v for k, v in pooled(one_page).items()},
            "zero_wall_ns_per_page": {
                "/".join(map(str, k)): v
                for k, v in pooled(wall_ranges).items()
                if k[-1] == "zero" or k[-1] in ZEROING},
            "conversion_cpu_share": cpu_shares(wall),
            "guest_driven": guest_out, "cpu_scaling": cpus_out,
            "overhead": ov_out, "probes": probes_out,
            "capacity": cap["rows"] if cap else None,
            "observer": observer,
            "self_check": self_checked,
            "workloads": {"overhead": ov and ov["workloads"],
                          "capacity": cap and cap["workload"],
                          "cpus": cpus_workloads,
                          "guest": guest and guest["args"]}}
    return data, markdown(facts, parts, checks, data)


def observer_interval(data):
    return data["observer"]["interval_s"] if data["observer"] else "n/a"


def observer_other_fds(data):
    return data["observer"]["other_fds"] if data["observer"] else "n/a"


def markdown(f, parts, checks, data):
    workloads = data["workloads"]

    def cmd(argv):
        return "`" + " ".join(os.path.basename(a) if i == 0 else a
                              for i, a in enumerate(argv)) + "`" \
            if argv else "n/a"

    return f"""# Benchmarks

Generated by `make bench` ({f['profile']} profile) on {f['date']}; do not
edit by hand.  Raw figures: `docs/benchmarks.json`.

- kernel: `{f['kernel_version']}`, booted with
  `kvm.vm_memory_attributes=1` for the legacy per-VM path and `=0` for
  everything else, {f['guest_cpus']} vCPUs
- QEMU: {f['qemu']} (TCG: software emulation, no KVM below)
- host CPU: {f['host_cpu']}, {f['host_cpus']} CPUs, shared with other work
- checkout: {f['commit']}
- rounds: {f['convert_rounds']} of every range conversion case (each with 16
  samples up to 64 KiB, 4 at 2 MiB, 1 above; the rounds spread over boots
  that alternate between the two modes), {f['guest_rounds']} of the
  guest workload, {f['overhead_rounds']} of the watcher comparison

**Absolute times here are inflated many times over by QEMU's software
emulation, and by other work on the machine; only ratios between figures
of this one run count.**  Every figure is a median with its interquartile
range in brackets, `median [q1-q3]`; a difference is real when it is larger
than the brackets.  Rounds run every case in turn, so that drift of the
machine hits all cases alike, and every ratio is paired: taken within each
round, then summarised over the rounds, so that its brackets are its own
spread.  Figures counted in guest instructions (`-icount`) are the same
from run to run; wall-clock figures move between runs with the host's
speed, all of them alike, which no spread within one run can show
(`tests/bench/compare.py A.json B.json` compares two runs).

## Targets

{targets_table(checks)}
## 1. Conversion cost per page

One `KVM_SET_MEMORY_ATTRIBUTES2` on the guest_memfd (content modes
unspecified, zero, preserve) against the legacy per-VM
`KVM_SET_MEMORY_ATTRIBUTES` over the same range, same binary
(`tests/bench/gmem_convert_bench`), same kernel booted in each mode.
Guest instructions per 4 KiB page: these boots run under QEMU's `-icount
shift=0,sleep=on`, where the guest's clock advances 1 ns per instruction
the guest executes, so that a sample counts the instructions of one ioctl
(system call entry and exit included), exact and repeatable whatever else
the host runs.  By the wall clock, two runs of `make bench` on one commit
moved these ratios by up to 12%, more than their spread within a run, and
turned a verdict over; instruction counts do not move.  They weigh every
instruction alike, memory bandwidth not at all, and count a `rep stos` once
per iteration: the zero column counts the stores of zeroing, and ZERO is
measured against `memset()` by the wall clock below.  "allocated":
every page holds data (written through the shared mapping; the legacy path
cannot map guest_memfd, so there the pages are only fallocate()d);
"unallocated": the file never had a page.  The legacy path has no content
modes and never touches contents, like preserve, so the target compares
preserve with it ("no slower": the ratio's lower quartile at most 1, so
that a difference within the spread counts as none).  Unspecified changes
no byte, like preserve.
Going private, the per-guest_memfd path also looks at the reference count
of every allocated page of the range, for a pin or a pipe that would let
the host read private memory; the legacy path converts memory the host
cannot map and looks at nothing.  That look is what the allocated rows
cost over the unallocated ones at 4 KiB.

{parts['conversion']}
### Ranges the VMM maps and a vCPU has faulted

The files above are mapped by no process and bound to no running vCPU, so
their conversions never unmap or invalidate anything.  The "mapped" file
(per-guest_memfd path, up to 2 MiB) is what a VMM converts: before each
timed conversion, the VMM writes every shared page of the range through
its mapping and a vCPU of a VM it is bound to reads every page, so that
the conversion clears the VMM's page-table entries (unmap) and KVM's
mappings (invalidate), as the guest-driven workload's do.  Instructions
per page against the allocated file of the same size, direction and mode,
paired per round; then where the mapped file's conversions spend their
time, per phase, from one run per size under gmemtop (both directions, the
untimed ones that set each range up included).

{parts['mapped']}
### Per-page cost as ranges grow

{parts['scaling']}
### ZERO against memset()

A conversion to shared with ZERO over allocated pages, against the C
library's `memset()` of as many bytes of already-faulted anonymous memory,
and a bare `rep stosb` (what the kernel's `clear_page_erms()` runs) for
comparison: the bandwidth limit.  Whole-range microseconds by the wall
clock, in boots of their own without `-icount` (the same binary; ZERO and
the zeroing of one round come from one boot, minutes apart at most).
Judged at every size: at 4 KiB the fixed cost of a system call, not
bandwidth, is what the ratio shows.  These figures move with the host's
speed between runs, by a few percent.  QEMU emulates the vector stores of
the C library's `memset()` one by one and a `rep stosb` as a loop in C, so
the two references can be far apart here where hardware has them close.

{parts['zero']}
### A fragmented attribute tree

{f['fragmenting_conversions']} single-page conversions to private, one page
in every four, so that none can merge, then one page between two private
ones in the middle: "split" makes it private (its shared neighbours stay
apart), "merge" makes it shared again (the ranges around it join).  The
same page of a fresh file of the same size for comparison.  Rounds:
{f['tree_rounds']}, each with 16 samples of every case.

Guest instructions again, from a boot of their own per mode under
`-icount` (a file's first sample may count more; the median leaves it
out).

{parts['fragmentation']}
## 2. A guest converting its own memory

The guest asks with `KVM_HC_MAP_GPA_RANGE`; the VMM (gmemload) gets
`KVM_EXIT_HYPERCALL` and converts in place (to private unspecified, to
shared ZERO).  {cmd(workloads['guest'] and
                   next(iter(workloads['guest'].values())))} and the same
with `--pattern range2m`.  Conversions per second without any watcher;
the time in the ioctl and the share of each phase come from one more run
under gmemtop, which sums the intervals between the `kvm_gmem_phase`
events in the kernel.

{parts['guest']}
The last column counts `kvm_gmem_lru_drain` events against conversions to
private: how often a page was still held by a per-CPU LRU batch, so that
the conversion drained the batches of every CPU (`lru_add_drain_all()`),
which queues work on each CPU with pages pending and waits for it.
gmemload's main thread writes each page through the shared mapping just
before the guest converts it, and its vCPU thread converts it, often from
another CPU.  Before patch 15 the new folio waited in the writing CPU's
add batch, so that 99.8% of these conversions drained every CPU.
guest_memfd now puts its (unevictable) folios on the LRU at once; a
conversion from another CPU can still find the page held there on some
runs, by a holder not yet identified (a conversion on the writing CPU
never does: the unmap drains that CPU's own batches first).

## 2b. Conversion cost against the host's size

The same VMM workloads in VMs of {', '.join(map(str, f['cpu_counts']))}
CPUs, with `tests/bench/lru_load` keeping every CPU's LRU add batch
non-empty (a process per CPU writes a few new tmpfs pages every 100 ms),
as ordinary page-cache work does on a busy host.  "one page after a host
fault": {cmd(workloads['cpus'] and workloads['cpus']['host4k'])}; the
guest-driven and 2 MiB rows run the same with `--guest-share 100` and
`--pattern range2m`.  Instructions are the guest clock under `-icount`
(1 ns per instruction of any CPU): a conversion that drains every CPU's
batch is charged the work it queues on each of them.  Wall-clock figures
come from a boot of each size without `-icount`; QEMU runs every vCPU
on one host thread, so a VM with more CPUs has no more compute.  Drains
and the time of the reference check (unmap done to check done, where a
conversion waits for a drain) come from one more run under gmemtop.

{parts['cpus']}
The second table runs 1, 4 and 16 copies of the host workload at once,
each its own VMM and VM, in the {f['vmm_cpus']}-CPU VM.  One host thread
emulates all of them, so their measured rate cannot grow with their
number: what could stop it growing on real CPUs is time spent in a
section that all VMMs serialise on, which in a conversion is the all-CPU
drain (`lru_add_drain_all()` takes a global mutex and waits for every
CPU).  Its share of ioctl time is taken at most as the whole reference
check of conversions when any drained, zero when none did; the projected
rate on a CPU per VMM follows from it (Amdahl: N / (1 + (N - 1) s)).

## 3. What watching costs

Two gmemload workloads, each round-robin under every watcher, the order
rotated each round: "mixed", a VMM's mix of host- and guest-driven
conversions with holders, and "conversions", host-driven single-page
conversions alone; and "gup", `tests/bench/gup_loop`: process_vm_readv()
of its own anonymous memory, 8 bytes from each of 64 pages per call, so
64 one-page GUP calls and unpins that meet no guest_memfd page, all of
which `--holders` watches (the harshest case for it: the least work per
GUP call).  Both run in a boot of its own under QEMU's `-icount` (the
guest's clock counts its instructions): without it, time measured in the
guest includes whatever the host ran meanwhile, and the spread of the
unwatched runs was larger than any watcher's cost.  That boot has one
vCPU: the guest's clock counts the instructions of all vCPUs, so that with
two, a watcher's own work on one (gmemtop reading its maps, `cat` reading
`trace_pipe`) would be charged to the workload running on the other; with
one, the workload's CPU time is what ran in its threads, the probes
included, as on a host with CPUs to spare.  The workload's CPU
time is user+system from
`wait4()` (all its threads, vCPU threads included); ratios are paired per
round (watcher run / unwatched run of the same round), then summarised.
The loop CPU ratio compares the CPU time of the workload's loop alone
(`loop_cpu_s`: `CLOCK_PROCESS_CPUTIME_ID` across gmemload's conversion
loop, or gup_loop's), which leaves out VM set-up and teardown: in the
conversions workload it is the conversion path alone, the harshest
denominator.  Not the loop's elapsed time: on one vCPU that includes
whatever the watcher's own process ran meanwhile (`--snoop` formatting
a line per conversion, `cat` copying `trace_pipe`), which a host with
CPUs to spare runs elsewhere, and which the wall ratio still shows.
The target holds every gmemtop mode to 3% on the mixed
workload's CPU time and on that loop, and `--holders` and
`--holders=auto` to 3% on the gup loop, where no hotspot ever makes
`--holders=auto` attach to GUP.
The watcher's own CPU time is read from `/proc/PID/stat` across the
workload, and from its `rusage` over its whole life (start-up such as
bpftrace's compilation included).  tracefs means the kvm_gmem events
enabled and `cat trace_pipe` reading them; the bpftrace script keeps the
latency distribution gmemtop keeps (successful conversions, begin to end)
in bpftrace's power-of-two buckets.  `gmemtop -b` keeps gmemtop's counters
and latency histograms; `gmemtop --json` the time of each phase as well,
a lookup more at every phase boundary, which only the outputs that show
phases pay (gmemtop(8), OVERHEAD); `gmemtop --snoop` sends a record per
conversion, phases included, to user space and keeps no per-file
counters, which nothing in that mode reads.  A target is judged only when the
spread allows: "not resolved" means the limit lies within it.

{parts['overhead']}
### What each BPF program costs

Where the overhead of each gmemtop mode goes: the kernel's run-time
statistics of its BPF programs (`kernel.bpf_stats_enabled`), over one run
of the conversions workload in the same boot, after the rounds above (the
statistics read a clock around every run, which would add to their
ratios).  Under `-icount` the clock counts guest instructions, so a run's
time is its instructions, the helpers it calls included, the statistics'
two clock reads too, the tracepoint's call into the program not.  Runs
per conversion divide by gmemload's ioctls; `conversion_phase` runs at
every phase boundary, `invalidate_begin` at the conversion's
invalidation.

{parts['probes']}
## 4. Event capacity

{cmd(workloads['capacity'])}: single-page conversions from the host, as
fast as they go, over {f['capacity_rounds']} rounds (counts summed, the rate's
spread over the rounds).  The ground truth is gmemload's own count of
ioctls; each watcher's count is read from its own output: the
`kvm_gmem_set_attributes_end` events it delivered, the lines of
`gmemtop --snoop` (records copied one by one through a ring buffer, which
can lose them), the per-file `ioctls` of `gmemtop --json` (counters kept
in the kernel, which cannot lose one but must match).  `gmemtop -b` shows
rates from the same counters, not totals: it has no count.

{parts['capacity']}
## 5. What gmemtop's own interval costs

`gmemtop --json -d {observer_interval(data)}` beside one VMM holding open
one-page guest_memfds, each converted once, and
{observer_other_fds(data)} descriptors of other files, in the overhead
boot (`-icount`, one vCPU).  Its CPU time per interval is read from
`/proc/PID/schedstat` over a few seconds once every file is on show.
Listing the VMM's `/proc/PID/fd` for each file each interval would make
the cost per file grow with the VMM's descriptors; gmemtop lists it only
when a file turns up that it has not seen (gmemtop(8), OVERHEAD), so the
cost per file should stay flat as files are added.

{parts['observer']}
## gmemload against fdinfo

Every gmemload run above compares its own counts with the kernel's
`/proc/PID/fdinfo` at exit.  {parts['self_check']}"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="full")
    ap.add_argument("raw")
    ap.add_argument("outdir")
    args = ap.parse_args()
    data, md = build(args.raw, args.profile)
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "benchmarks.json"), "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.outdir, "benchmarks.md"), "w") as f:
        f.write(md)


if __name__ == "__main__":
    main()
