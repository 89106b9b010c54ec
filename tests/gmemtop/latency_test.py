#!/usr/bin/env python3
"""gmemtop's latency by outcome and its bounded maps, against gmemload's
ground truth, in the VM.

- Every KVM_SET_MEMORY_ATTRIBUTES2 gives one latency sample under its
  outcome: changed, noop, eagain (none with an error here); a failed
  conversion's phases stop at the reference check.
- Percentiles never exceed the maximum; nothing is lost with room enough.
- With --max-files 1 and two VMs, one file is tracked exactly and the
  other's events are counted as not tracked, in JSON and in the table.

Prints TAP.  Needs root and kvm.vm_memory_attributes=0.
  latency_test.py [CHECK...]    only the named checks
"""
import json
import sys

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemwatch import GMEMTOP

GMEMLOAD = [gmemwatch.GMEMLOAD, "--quiet",
            "--size", "4M", "--pattern", "mixed", "--guest", "--hold", "30",
            "--count", "80", "--seed", "21"]
NO_LOSSES = {"files": 0, "latencies": 0, "hotspots": 0, "untimed": 0}


def watch(gmemtop_args, load_args):
    """gmemload's report and gmemtop's output while it ran."""
    truth, out, _ = gmemwatch.watch([GMEMTOP, *gmemtop_args],
                                    GMEMLOAD + load_args)
    return truth, out


def check_every_ioctl_has_a_sample_under_its_outcome():
    truth, out = watch(["--json", "-d", "0.5"], [])
    report = json.loads(out.strip().splitlines()[-1])
    vm = truth["vms"][0]
    rows = [f for f in report["files"] if f["ino"] == vm["ino"]]
    if len(rows) != 1:
        return f"{len(rows)} rows for inode {vm['ino']}"
    outcomes = rows[0]["outcomes"]
    want = {"changed": vm["conversions_to_private"] +
            vm["conversions_to_shared"], "noop": vm["noop"],
            "eagain": vm["eagain"], "error": 0}
    got = {name: o["count"] for name, o in outcomes.items()}
    if got != want:
        return f"samples {got}, want {want}"
    if sum(got.values()) != vm["ioctls"] or rows[0]["ioctls"] != vm["ioctls"]:
        return f"samples {sum(got.values())}, ioctls {vm['ioctls']}"
    if sum(n for _, n in outcomes["eagain"]["histogram"]) != vm["eagain"]:
        return "eagain histogram total"
    if not vm["eagain"]:
        return "gmemload met no EAGAIN: the check proves nothing"
    phases = outcomes["eagain"]["phases_ns"]
    if phases["refcheck"] == 0 or any(phases[p] for p in
                                      ("invalidate", "content", "update")):
        return f"EAGAIN phases {phases}"
    for name, o in outcomes.items():
        if o["p50_ns"] > o["max_ns"] or o["p99_ns"] > o["max_ns"]:
            return f"{name}: percentile above max {o}"
    if report["not_tracked"] != NO_LOSSES:
        return f"losses {report['not_tracked']}"
    return None


def check_a_full_map_counts_what_it_refuses():
    """Closed files leave the full map after their last report, so every
    report is looked at: one file's counts are exact, the other's never
    show, and its ioctls are among the events not tracked."""
    truth, out = watch(["--json", "-d", "0.5", "--max-files", "1"],
                       ["--vms", "2"])
    reports = [json.loads(line) for line in out.strip().splitlines()]
    vms = {v["ino"]: v for v in truth["vms"]}
    ioctls = {ino: 0 for ino in vms}
    for report in reports:
        for f in report["files"]:
            if f["ino"] in vms:
                ioctls[f["ino"]] = max(ioctls[f["ino"]], f["ioctls"])
    tracked = [ino for ino, n in ioctls.items() if n]
    if len(tracked) != 1:
        return f"ioctls seen per file {ioctls}, want one file"
    (ino,) = tracked
    if ioctls[ino] != vms[ino]["ioctls"]:
        return f"tracked file: {ioctls[ino]} ioctls, want {vms[ino]['ioctls']}"
    other = next(v for i, v in vms.items() if i != ino)
    lost = reports[-1]["not_tracked"]["files"]
    if lost < other["ioctls"]:
        return f"{lost} events not tracked, the other file had " \
            f"{other['ioctls']} ioctls"
    return None


def check_table_shows_files_not_tracked():
    _, out = watch(["-b", "-d", "0.5", "--max-files", "1"], ["--vms", "2"])
    last = [line for line in out.splitlines()
            if "files not tracked:" in line][-1]
    count = int(last.split("files not tracked:")[1].split()[0])
    return None if count > 0 else f"table says {last!r}"


def main():
    checks = [
        ("every_ioctl_has_a_sample_under_its_outcome",
         check_every_ioctl_has_a_sample_under_its_outcome),
        ("a_full_map_counts_what_it_refuses",
         check_a_full_map_counts_what_it_refuses),
        ("table_shows_files_not_tracked",
         check_table_shows_files_not_tracked),
    ]
    wanted = sys.argv[1:]
    return tap.run([c for c in checks if not wanted or c[0] in wanted])


if __name__ == "__main__":
    sys.exit(main())
