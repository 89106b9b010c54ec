#!/usr/bin/env python3
"""gmemtop's latency by outcome and its bounded maps, against gmemload's
ground truth, in the VM.

- Every KVM_SET_MEMORY_ATTRIBUTES2 gives one latency sample under its
  outcome: changed, noop, eagain, and error only for the content mode
  that a kernel without them refuses (gmemload's "refused"); a failed
  conversion's phases stop at the reference check.
- Percentiles never exceed the maximum; nothing is lost with room enough.
- With --max-files 1 and two VMs, one file is tracked exactly and the
  other's events are counted as not counted, the file once as not
  tracked, in JSON and in the table.
- Hotspots idle for --hotspot-window expire: a burst's hotspots leave
  while their file's EAGAINs stay counted, and more distinct hotspots
  than the map holds are all tracked over time; exported counters only
  grow and stay exact meanwhile; the view, 80 columns wide, shows each
  kind of loss.
- --fentry forgets closed files and keeps counting past --max-files.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
  latency_test.py [CHECK...]    only the named checks
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemwatch import GMEMTOP, TOP
from gmemtop_test import new_session, quit_view, screen, tmux

GMEMLOAD = [gmemwatch.GMEMLOAD, "--quiet",
            "--size", "4M", "--pattern", "mixed", "--guest", "--hold", "30",
            "--count", "80", "--seed", "21"]
NO_LOSSES = {"files": 0, "events": 0, "latencies": 0, "hotspot_eagains": 0,
             "untimed": 0}


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
            "eagain": vm["eagain"], "error": vm["refused"]}
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
    lost = reports[-1]["not_tracked"]
    if lost["events"] < other["ioctls"]:
        return f"{lost['events']} events not counted, the other file had " \
            f"{other['ioctls']} ioctls"
    if lost["files"] != 1:
        return f"{lost['files']} files not tracked, want the other one"
    return None


def check_table_shows_files_not_tracked():
    _, out = watch(["-b", "-d", "0.5", "--max-files", "1"], ["--vms", "2"])
    last = [line for line in out.splitlines()
            if "files not tracked:" in line][-1]
    count = int(last.split("files not tracked:")[1].split()[0])
    return None if count > 0 else f"table says {last!r}"


# One guest_memfd: an EAGAIN at each of pages 0-15 (a page held in a pipe
# by vmsplice), a pause, then at pages 16-31; open a little longer for a
# last report, then its ground truth.
BURSTS = f"""
import json, os, sys, time
sys.path.insert(0, {os.path.join(TOP, "tests", "trace")!r})
import gmem_ops
pause = float(sys.argv[1])
s = gmem_ops.Script(nr_pages=32)
def eagain_at(page):
    r, w = s.splice(page)
    ret, at = gmem_ops.set_attributes(s.fd, page * gmem_ops.PAGE,
                                      gmem_ops.PAGE, gmem_ops.PRIVATE,
                                      gmem_ops.MODE_NONE)
    assert (ret, at) == (-11, page * gmem_ops.PAGE), (ret, at)
    os.close(r)
    os.close(w)
for page in range(16):
    eagain_at(page)
time.sleep(pause)
for page in range(16, 32):
    eagain_at(page)
time.sleep(1.5)
print(json.dumps({{"ino": s.ino, "eagain": 32}}))
"""
WINDOW = 2.0
_bursts = None


class Snapshots(threading.Thread):
    """Every version of the file at @path, read every 0.1 s until
    stop()."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.texts, self.done = path, [], threading.Event()

    def run(self):
        while not self.done.wait(0.1):
            try:
                with open(self.path) as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            if not self.texts or self.texts[-1] != text:
                self.texts.append(text)

    def stop(self):
        self.done.set()
        self.join()
        return self.texts


def bursts():
    """gmemtop with room for 16 hotspots and a window of WINDOW seconds,
    over BURSTS: the ground truth, every report and every version of its
    --textfile.  Run once for the checks that read it."""
    global _bursts
    if _bursts is None:
        textfile = os.path.join(tempfile.mkdtemp(), "gmemtop.prom")
        snapshots = Snapshots(textfile)
        try:
            truth, out, _ = gmemwatch.watch(
                [GMEMTOP, "--json", "-d", "0.3", "--max-files", "1",
                 "--hotspot-window", str(WINDOW), "--textfile", textfile],
                [sys.executable, "-c", BURSTS, str(2 * WINDOW)],
                during=snapshots.start)
        finally:
            texts = snapshots.stop() if snapshots.is_alive() else []
        _bursts = truth, [json.loads(line) for line in out.splitlines()], \
            texts
    return _bursts


def file_rows(reports, ino):
    """The row of file @ino in each report that has one."""
    return [f for r in reports for f in r["files"] if f["ino"] == ino]


def check_idle_hotspots_expire_and_totals_stay():
    """The first burst's hotspots leave after the window; the file's
    EAGAINs and every exported loss count never go back."""
    truth, reports, _ = bursts()
    rows = file_rows(reports, truth["ino"])
    eagain = [f["eagain"] for f in rows]
    if eagain != sorted(eagain) or not eagain or \
       eagain[-1] != truth["eagain"]:
        return f"EAGAINs over the reports {eagain}, want up to " \
            f"{truth['eagain']}"
    expired = [r["hotspots_expired"] for r in reports]
    if expired != sorted(expired):
        return f"hotspots_expired went back: {expired}"
    last = next(f for f in rows if f["eagain"] == truth["eagain"])
    got = {h["offset"] // 4096: h["count"] for h in last["hotspots"]}
    if got != {page: 1 for page in range(16, 32)}:
        return f"hotspots after the second burst {got}, want pages 16-31"
    if expired[-1] < 16:
        return f"{expired[-1]} hotspots expired, want the first 16"
    return None


def check_more_hotspots_than_room_are_all_tracked():
    """32 distinct hotspots over time in a map of 16: each is shown with
    its one EAGAIN, none goes uncounted."""
    truth, reports, _ = bursts()
    seen = {}
    for f in file_rows(reports, truth["ino"]):
        for h in f["hotspots"]:
            seen[h["offset"] // 4096] = max(seen.get(h["offset"] // 4096, 0),
                                            h["count"])
    if seen != {page: 1 for page in range(32)}:
        return f"hotspots seen {seen}, want pages 0-31 once each"
    lost = reports[-1]["not_tracked"]["hotspot_eagains"]
    return None if lost == 0 else f"{lost} EAGAINs with no hotspot room"


def exported(texts, name, ino=None):
    """The value of sample @name (of file @ino) in each of the exposition
    @texts that has it."""
    labels = r"\{[^}]*ino=\"%d\"[^}]*\}" % ino if ino else ""
    sample = re.compile(rf"^{name}{labels} (\d+)$", re.M)
    return [int(m.group(1)) for m in map(sample.search, texts) if m]


def check_exported_counters_stay_exact_as_hotspots_expire():
    """--textfile while hotspots expire: the file's EAGAIN counter and the
    expired counter only grow, and the former ends at the ground truth."""
    truth, _, texts = bursts()
    eagain = exported(texts, "kvm_gmem_eagain_total", truth["ino"])
    expired = exported(texts, "kvm_gmem_hotspots_expired_total")
    if not eagain or eagain != sorted(eagain) or \
       eagain[-1] != truth["eagain"]:
        return f"exported EAGAINs {eagain}, want up to {truth['eagain']}"
    if not expired or expired != sorted(expired) or expired[-1] < 16:
        return f"exported hotspots expired {expired}, want up to 16 or more"
    return None


def check_view_shows_each_loss_in_80_columns():
    """The full-screen view, 80 columns wide, names each kind of loss;
    the first burst's hotspots are counted as expired once idle."""
    try:
        new_session(" ".join([GMEMTOP, "-d", "0.3", "--max-files", "1",
                              "--hotspot-window", str(WINDOW)]), width=80)
        subprocess.run([sys.executable, "-c", BURSTS, str(2 * WINDOW)],
                       check=True, capture_output=True)
        losses = re.compile(r"^files not tracked: 0  events not counted: 0"
                            r"  hotspots expired: (\d+)", re.M)
        deadline = time.time() + 10
        while time.time() < deadline:
            shown = losses.search(screen())
            if shown and int(shown.group(1)) >= 16:
                return quit_view()
            time.sleep(0.2)
        return f"no 16 hotspots expired: {screen()!r}"
    finally:
        tmux("kill-server")


# Five guest_memfds, one after the other: guest_memfd i allocates i + 1
# pages and is closed; then every inode with its bytes.
FILES = f"""
import json, sys, time
sys.path.insert(0, {os.path.join(TOP, "tests", "trace")!r})
import gmem_ops
done = {{}}
for i in range(5):
    s = gmem_ops.Script(nr_pages=8)
    s.allocate(0, i + 1)
    s.close()
    done[s.ino] = (i + 1) * gmem_ops.PAGE
    time.sleep(0.8)
print(json.dumps(done))
"""


def check_fentry_counts_past_max_files():
    """--fentry --max-files 2: closed files leave the map once shown, so
    all five files are counted, exactly, and none is refused."""
    truth, out, _ = gmemwatch.watch(
        [GMEMTOP, "--fentry", "--json", "-d", "0.2", "--max-files", "2"],
        [sys.executable, "-c", FILES])
    reports = [json.loads(line) for line in out.splitlines()]
    got = {}
    for r in reports:
        for f in r["files"]:
            if str(f["ino"]) in truth:
                got[str(f["ino"])] = (f["allocations"], f["allocated_bytes"])
    want = {ino: (1, n) for ino, n in truth.items()}
    if got != want:
        return f"files seen {got}, want {want}"
    last = reports[-1]
    if (last["files_not_tracked"], last["events_not_counted"]) != (0, 0):
        return f"{last['files_not_tracked']} files not tracked, " \
            f"{last['events_not_counted']} events not counted"
    return None


def main():
    checks = [
        ("every_ioctl_has_a_sample_under_its_outcome",
         check_every_ioctl_has_a_sample_under_its_outcome),
        ("a_full_map_counts_what_it_refuses",
         check_a_full_map_counts_what_it_refuses),
        ("table_shows_files_not_tracked",
         check_table_shows_files_not_tracked),
        ("idle_hotspots_expire_and_totals_stay",
         check_idle_hotspots_expire_and_totals_stay),
        ("more_hotspots_than_room_are_all_tracked",
         check_more_hotspots_than_room_are_all_tracked),
        ("exported_counters_stay_exact_as_hotspots_expire",
         check_exported_counters_stay_exact_as_hotspots_expire),
        ("view_shows_each_loss_in_80_columns",
         check_view_shows_each_loss_in_80_columns),
        ("fentry_counts_past_max_files", check_fentry_counts_past_max_files),
    ]
    wanted = sys.argv[1:]
    return tap.run([c for c in checks if not wanted or c[0] in wanted])


if __name__ == "__main__":
    sys.exit(main())
