#!/usr/bin/env python3
"""make bench's scripts on a tiny run, in the VM, in this boot's mode.

Runs tests/bench/invm.py with the smoke profile and tests/bench/report.py
on its output, then checks that every case was sampled exactly as often as
the profile says, that the JSON and the markdown hold every part and
target, and, with kvm.vm_memory_attributes=0, that every watcher ran every
round and gmemtop saw every event.  Prints TAP.  Needs root.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
import tap  # noqa: E402
import invm  # noqa: E402
from report import ZEROING  # noqa: E402

PROFILE = invm.PROFILES["smoke"]
SIZES = [4 << 10, 64 << 10, 2 << 20, 64 << 20, 1 << 30]
TARGETS = 13
HEADINGS = ["## Targets", "## 1. Conversion cost per page",
            "### Ranges the VMM maps and a vCPU has faulted",
            "### Per-page cost as ranges grow", "### ZERO against memset()",
            "### A fragmented attribute tree",
            "## 2. A guest converting its own memory",
            "## 2b. Conversion cost against the host's size",
            "## 3. What watching costs",
            "### What each BPF program costs", "## 4. Event capacity",
            "## 5. What gmemtop's own interval costs"]

raw = tempfile.mkdtemp(prefix="benchsmoke.")
out = os.path.join(raw, "out")
legacy = open("/sys/module/kvm/parameters/vm_memory_attributes").read() \
    .strip() == "Y"
path = "legacy" if legacy else "gmem"


def option(part, flag, default):
    args = PROFILE[part]
    return int(args[args.index(flag) + 1]) if flag in args else default


def reps(size):
    """gmem_convert_bench's samples per case and round of a range size."""
    return 16 if size <= 64 << 10 else 4 if size <= 2 << 20 else 1


def expected_counts():
    """Samples per part and test that gmem_convert_bench must print."""
    rounds, max_mib = option("convert", "-r", 5), option("convert", "-s", 1024)
    sizes = [s for s in SIZES if s <= max_mib << 20]
    per_size = [reps(s) for s in sizes]
    modes = 2 if legacy else 5		# both directions together
    # The mapped file: per-guest_memfd only, up to 2 MiB.
    mapped = 0 if legacy else \
        rounds * sum(r for s, r in zip(sizes, per_size) if s <= 2 << 20) * \
        modes
    ranges = {"convert": rounds * sum(per_size) * modes * 2 + mapped,
              "memset": rounds * sum(per_size),
              "rep_stosb": rounds * sum(per_size)}
    counts = {"convert": ranges,
              "tree": {"one_page": option("tree", "-r", 5) * 16 * 2 * 2,
                       "fragment": 1}}
    if not legacy:			# the wall-clock run for ZERO
        counts["zero"] = ranges
    return counts


def run_bench():
    r = subprocess.run([os.path.join(HERE, "invm.py"), "smoke", raw],
                       capture_output=True, text=True)
    if r.returncode:
        return f"invm.py exited {r.returncode}: {r.stderr[-800:]}"
    r = subprocess.run([os.path.join(HERE, "report.py"), "--profile",
                        "smoke", raw, out], capture_output=True, text=True)
    if r.returncode:
        return f"report.py exited {r.returncode}: {r.stderr[-800:]}"
    return None


def check_samples():
    want = expected_counts()
    counts = {part: {} for part in want}
    for part, tests in counts.items():
        with open(os.path.join(raw, f"{part}-{path}.jsonl")) as f:
            for line in f:
                if line.startswith("{"):
                    s = json.loads(line)
                    if s["path"] != path or s["wall_ns"] <= 0:
                        return f"bad sample {line.strip()}"
                    tests[s["test"]] = tests.get(s["test"], 0) + 1
    return None if counts == want else f"samples {counts}, want {want}"


def report():
    with open(os.path.join(out, "benchmarks.json")) as f:
        data = json.load(f)
    with open(os.path.join(out, "benchmarks.md")) as f:
        return data, f.read()


def check_json():
    data, _ = report()
    for key in ("facts", "targets", "conversion_icount_ns_per_page",
                "zero_wall_ns_per_page", "conversion_ratios",
                "one_page_icount_ns", "guest_driven", "overhead", "capacity",
                "workloads"):
        if key not in data:
            return f"no {key} in benchmarks.json"
    facts = data["facts"]
    for key in ("date", "kernel", "qemu", "host_cpu", "convert_rounds"):
        if not facts.get(key):
            return f"facts lack {key}"
    if facts["kernel"] != os.uname().release:
        return f"kernel {facts['kernel']}, want {os.uname().release}"
    want = expected_counts()
    total = sum(s["n"] for k, s in
                data["conversion_icount_ns_per_page"].items()
                if k.rsplit("/", 1)[-1] not in ZEROING)
    if total != want["convert"]["convert"]:
        return f"{total} conversion samples summarised"
    one_page = sum(s["n"] for s in data["one_page_icount_ns"].values())
    if one_page != want["tree"]["one_page"]:
        return f"{one_page} one-page samples summarised"
    if len(data["targets"]["fragmentation"]) != 2:	# split and merge
        return "no fragmented-tree verdicts"
    return None


def check_markdown():
    _, md = report()
    missing = [h for h in HEADINGS if h not in md]
    if missing:
        return f"no {missing}"
    section = md.split("## Targets")[1].split("## 1.")[0]
    verdicts = re.findall(
        r"\| (met|\*\*missed\*\*|n/a|not resolved \(.*\)) \|$", section, re.M)
    if len(verdicts) != TARGETS:
        return f"{len(verdicts)} target verdicts, want {TARGETS}"
    if "inflated" not in md or "QEMU" not in md:
        return "no note on emulation"
    return None


def check_watchers():
    """Every watcher ran every round of every workload; gmemtop lost
    nothing and counted every ioctl, in every round."""
    data, _ = report()
    rounds = PROFILE["overhead_rounds"]
    for workload, rows in data["overhead"].items():
        for w in invm.WATCHERS:
            row = rows.get(w.name)
            if not invm.available(w):
                if row is not None:
                    return f"{w.name} is not available but has figures"
                continue
            if row["workload_cpu_s"]["n"] != rounds:
                return (f"{w.name}, {workload}: "
                        f"{row['workload_cpu_s']['n']} rounds")
    if sorted(data["overhead"]) != sorted(PROFILE["overhead_workloads"]):
        return f"overhead workloads {sorted(data['overhead'])}"
    for c in data["targets"]["capacity"]:
        if not c["met"]:
            return f"{c['what']}: {c['missing']} missing"
    if not data["targets"]["capacity"]:
        return "no gmemtop capacity figures"
    return None


def check_cpu_scaling():
    """Every workload ran every round and was traced converting to private;
    the report counts its drains (a verdict of the benchmark, not a test)."""
    with open(os.path.join(raw, f"cpus-{os.cpu_count()}-wall.json")) as f:
        run = json.load(f)
    for name, rounds in run["runs"].items():
        if len(rounds) != PROFILE["cpus_rounds"]:
            return f"{name}: {len(rounds)} rounds"
    for name, t in run["traced"].items():
        if not t["conversions_to_private"] or "refcheck" not in t["phases_ns"]:
            return f"{name}: no conversion to private traced: {t}"
    data, _ = report()
    if not data["cpu_scaling"] or len(data["targets"]["cpus"]) != 5:
        return "no CPU-scaling figures or verdicts in benchmarks.json"
    figures = data["cpu_scaling"]["per_cpus"]
    if set(figures) != set(run["runs"]) or any(
            not f[str(os.cpu_count())]["wall_ns"] for f in figures.values()):
        return f"not every workload's figures in benchmarks.json: {figures}"
    return None


def check_mapped_phases():
    """gmemtop saw every conversion of the mapped file that changed it,
    and they unmapped the VMM's pages and invalidated KVM's mappings.
    Each round times 5 cases (2 modes to private, 3 to shared), each
    sample set up by a conversion the other way, which changes nothing
    for the first sample of each direction: the range is already so."""
    with open(os.path.join(raw, "mapped-phases.json")) as f:
        phases = json.load(f)
    rounds = int(PROFILE["mapped"][PROFILE["mapped"].index("-r") + 1])
    for size in invm.MAPPED_SIZES:
        t = phases.get(str(size))
        if not t:
            return f"no phases for {size} bytes"
        want = rounds * (reps(size) * 5 * 2 - 2)
        if t["conversions"] != want:
            return f"{size} bytes: {t['conversions']} conversions, want {want}"
        for phase in ("unmap", "invalidate"):
            if not t["phases_ns"].get(phase):
                return f"{size} bytes: no time in {phase}: {t}"
    data, _ = report()
    if not any(k.endswith("/phase_share") for k in data["mapped"]):
        return "no phase shares of the mapped file in benchmarks.json"
    return None


def check_observer():
    """gmemtop showed every guest_memfd of each run and reported during
    its window; the report judges the growth per file."""
    data, _ = report()
    runs = data["observer"]["runs"]
    if len(runs) != PROFILE["observer_rounds"] * len(invm.OBSERVED_FILES):
        return f"{len(runs)} observer runs"
    for r in runs:
        if r["shown"] < r["files"] or not r["intervals"]:
            return f"observer run {r}"
    if len(data["targets"]["observer"]) != 1:
        return "no verdict on gmemtop's own cost"
    return None


def check_probes():
    """Every gmemtop mode's programs ran once per conversion at its begin
    and end, and the phases' only where an output shows them."""
    data, _ = report()
    modes = [w.name for w in invm.WATCHERS
             if w.name.startswith("gmemtop") and invm.available(w)]
    if sorted(data["probes"]) != sorted(modes):
        return f"probes of {sorted(data['probes'])}, want {sorted(modes)}"
    for mode, r in data["probes"].items():
        progs = r["programs"]
        for name in ("conversion_begin", "conversion_end"):
            if progs.get(name, (0, 0))[0] != 1:
                return f"{mode}: {name} per conversion {progs.get(name)}"
        if ("conversion_phase" in progs) != (mode != "gmemtop -b"):
            return f"{mode}: phases timed {'conversion_phase' in progs}"
        if not r["per_conversion"] > 0:
            return f"{mode}: {r['per_conversion']} instructions"
    return None


def main():
    checks = [("bench_runs", run_bench), ("convert_samples", check_samples),
              ("report_json", check_json), ("report_markdown", check_markdown)]
    if not legacy:
        checks.append(("mapped_phases", check_mapped_phases))
        checks.append(("watchers", check_watchers))
        checks.append(("cpu_scaling", check_cpu_scaling))
        checks.append(("probes", check_probes))
        checks.append(("observer", check_observer))
    return tap.run(checks)


if __name__ == "__main__":
    sys.exit(main())
