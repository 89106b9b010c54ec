#!/usr/bin/env python3
"""gmemtop against ground truth, in the VM.

- Its JSON totals equal what tests/trace/gmem_ops.py did: ioctls,
  conversions and pages each way, EAGAINs and errors, invalidations, the
  EAGAIN hotspots with their reference counts and causes, histogram totals;
  and what gmemload, a VMM-like workload on two VMs with guest-driven
  conversions and held pages, reports of itself.
- --snoop reports every conversion with its result, --hist counts each.
- Its metrics: tests/gmemtop/metrics_test.py.
- The fentry fallback for stock kernels counts host faults and
  fallocate() right, and says what it cannot show.
- The full-screen view, driven through tmux, shows the rows and answers
  its keys.

Prints TAP.  Needs root and kvm.vm_memory_attributes=0.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "trace"))
sys.path.insert(0, os.path.join(TOP, "tests"))
import tap  # noqa: E402
from gmem_trace_test import tokens  # noqa: E402

GMEMTOP = os.path.join(TOP, "tools", "gmemtop", "gmemtop")
GMEMLOAD = [os.path.join(TOP, "tools", "gmemload", "gmemload"), "--quiet",
            "--vms", "2", "--size", "8M", "--pattern", "mixed", "--guest",
            "--hold", "20", "--count", "300", "--seed", "7"]
OPS = [sys.executable, os.path.join(TOP, "tests", "trace", "gmem_ops.py")]
CAUSES = {"pinned", "mapped", "transient", "other"}


def fields(text):
    """Decoded event text as {name: value} for the "name value" pairs."""
    t = tokens(text)
    return {t[i]: t[i + 1] for i in range(len(t) - 1) if isinstance(t[i], str)}


def ground_truth(events):
    """What gmemtop must report for one run of gmem_ops.py."""
    want = {"ioctls": 0, "conversions_to_private": 0,
            "conversions_to_shared": 0, "pages_to_private": 0,
            "pages_to_shared": 0, "eagain": 0, "errors": 0,
            "invalidations": 0, "invalidated_gfns": 0}
    hotspots = {}
    for name, text, optional in events:
        f = fields(text)
        if name == "kvm_gmem_set_attributes_end":
            want["ioctls"] += 1
            direction = "private" if f["to"] == "private" else "shared"
            if f["ret"] == -11:
                want["eagain"] += 1
            elif f["ret"]:
                want["errors"] += 1
            elif f["changed"]:
                want["conversions_to_" + direction] += 1
                want["pages_to_" + direction] += f["changed"]
        elif name == "kvm_gmem_invalidate_begin":
            want["invalidations"] += 1
            want["invalidated_gfns"] += f["gfns"]
        elif name == "kvm_gmem_refcount_fail":
            spot = hotspots.setdefault(f["offset"], {"count": 0})
            spot.update(count=spot["count"] + 1, refcount=f["refcount"],
                        expected=f["expected"], pinned=f["pinned"],
                        cause=f["cause"])
    return want, hotspots


def check_json_equals_ground_truth():
    out, last = run_under_gmemtop(OPS)
    truth = json.loads(out)
    rows = [f for f in last["files"] if f["ino"] == truth["ino"]]
    if len(rows) != 1:
        return f"{len(rows)} rows for inode {truth['ino']}"
    row = rows[0]
    want, hotspots = ground_truth(truth["events"])
    for key, value in want.items():
        if row[key] != value:
            return f"{key}: {row[key]}, want {value}"
    if (row["pid"], row["vm"]) != (truth["pid"], truth["vm_id"]):
        return f"owner {row['pid']}/{row['vm']}"
    converted = want["conversions_to_private"] + want["conversions_to_shared"]
    if row["latency_ns"]["count"] != converted or \
       sum(n for _, n in row["histogram"]) != converted:
        return f"histogram holds {row['latency_ns']['count']}, want {converted}"
    got = {h["offset"]: {k: h[k] for k in ("count", "refcount", "expected",
                                            "pinned", "cause")}
           for h in row["hotspots"]}
    if got != hotspots:
        return f"hotspots {got}, want {hotspots}"
    return None


def watch(gmemtop_args, command):
    """Runs @command while gmemtop (with @gmemtop_args) watches; returns
    the command's stdout and gmemtop's stdout and stderr."""
    top = subprocess.Popen([GMEMTOP, *gmemtop_args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)		# loaded and attached
        out = subprocess.run(command, check=True, capture_output=True,
                             text=True).stdout
        time.sleep(1)		# one more report
    finally:
        top.send_signal(signal.SIGINT)
    report, err = top.communicate(timeout=30)
    if top.returncode:
        raise RuntimeError(f"gmemtop exited {top.returncode}: {err}")
    return out, report, err


def run_under_gmemtop(command):
    """@command's stdout and gmemtop's last JSON report."""
    out, report, _ = watch(["--json", "-d", "0.5"], command)
    return out, json.loads(report.strip().splitlines()[-1])


def check_json_equals_gmemload():
    """gmemload, a VMM-like workload with guest-driven conversions and held
    pages, knows exactly what it did: gmemtop must agree on every count."""
    out, last = run_under_gmemtop(GMEMLOAD)
    truth = json.loads(out)
    rows = {f["ino"]: f for f in last["files"]}
    for vm in truth["vms"]:
        row = rows.get(vm["ino"])
        if not row:
            return f"no row for inode {vm['ino']}"
        for key in ("conversions_to_private", "conversions_to_shared",
                    "pages_to_private", "pages_to_shared", "eagain"):
            if row[key] != vm[key]:
                return f"inode {vm['ino']} {key}: {row[key]}, want {vm[key]}"
        if (row["pid"], row["vm"]) != (vm["vm_pid"], vm["vm_id"]):
            return f"inode {vm['ino']} owner {row['pid']}/{row['vm']}"
        converted = vm["conversions_to_private"] + vm["conversions_to_shared"]
        if sum(n for _, n in row["histogram"]) != converted:
            return f"inode {vm['ino']} histogram total, want {converted}"
        got = {h["offset"]: h["count"] for h in row["hotspots"]}
        want = {int(o, 16): n for o, n in vm["eagain_offsets"].items()}
        if got != want:
            return f"inode {vm['ino']} hotspots {got}, want {want}"
    return None


def check_snoop_lists_every_conversion():
    """--snoop --json: one record per ioctl, in order, with its result."""
    ops, out, err = watch(["--snoop", "--json"], OPS)
    truth = json.loads(ops)
    got = [(r["offset"], r["size"], r["ret"], r["error_offset"], r["changed"])
           for r in map(json.loads, out.splitlines())
           if r["ino"] == truth["ino"]]
    want = [(f["offset"], f["size"], f["ret"], f["error_offset"],
             f["changed"])
            for f in (fields(text) for name, text, _ in truth["events"]
                      if name == "kvm_gmem_set_attributes_end")]
    if got != want:
        return f"records {got}, want {want}"
    if "0 records dropped" not in err:
        return f"drops reported: {err!r}"
    return None


def check_hist_counts_every_conversion():
    """--hist: the distribution holds every successful conversion."""
    hist = subprocess.Popen([GMEMTOP, "--hist", "4", "1"],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    truth = json.loads(subprocess.run(OPS, check=True, capture_output=True,
                                      text=True).stdout)
    out, _ = hist.communicate(timeout=30)
    want, _ = ground_truth(truth["events"])
    section = out.split(f"guest_memfd ino {truth['ino']} ")
    if len(section) != 2:
        return f"no distribution for inode {truth['ino']}: {out!r}"
    counts = re.findall(r"^\s*[\d.]+ -> [\d.]+\s+: (\d+)", section[1].split(
        "time by phase")[0], re.M)
    total = sum(map(int, counts))
    converted = want["conversions_to_private"] + want["conversions_to_shared"]
    return None if total == converted else f"{total} in the histogram, " \
        f"want {converted}"


def check_fentry_fallback_counts_faults_and_fallocate():
    """--fentry: what a stock kernel still shows, against ground truth."""
    ops, out, err = watch(["--fentry", "--json", "-d", "0.5"], OPS)
    truth = json.loads(ops)
    if "Not available: conversions" not in err:
        return f"no notice of what is missing: {err!r}"
    rows = [f for f in json.loads(out.strip().splitlines()[-1])["files"]
            if f["ino"] == truth["ino"]]
    if len(rows) != 1:
        return f"{len(rows)} rows for inode {truth['ino']}"
    texts = [(name, fields(text)) for name, text, _ in truth["events"]]
    faults = [text.split()[-1] for name, text, _ in truth["events"]
              if name == "kvm_gmem_user_fault"]
    want = {
        "faults": faults.count("mapped"),
        "sigbus": faults.count("sigbus-private"),
        "punch_holes": sum(n == "kvm_gmem_punch_hole" for n, _ in texts),
        "punched_bytes": sum(f["len"] for n, f in texts
                             if n == "kvm_gmem_punch_hole"),
        "allocations": sum(n == "kvm_gmem_allocate" for n, _ in texts),
        "allocated_bytes": sum(f["len"] for n, f in texts
                               if n == "kvm_gmem_allocate"),
    }
    got = {k: rows[0][k] for k in want}
    return None if got == want else f"{got}, want {want}"


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True)


def screen():
    return tmux("capture-pane", "-p", "-t", "gmemtop").stdout


def wait_for(text, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in screen():
            return True
        time.sleep(0.2)
    return False


def start_view(*args):
    """gmemtop's full-screen view with @args in tmux session "gmemtop";
    None once it shows its table, else what it shows."""
    tmux("kill-server")
    tmux("new-session", "-d", "-s", "gmemtop", "-x", "160", "-y", "50",
         " ".join([GMEMTOP, "-d", "0.3", *args]))
    return None if wait_for("INVAL/s") else f"no table: {screen()!r}"


def check_view_answers_keys():
    try:
        problem = start_view()
        if problem:
            return problem
        truth = json.loads(subprocess.run(OPS, check=True,
                                          capture_output=True,
                                          text=True).stdout)
        if not wait_for(f" {truth['ino']} "):
            return f"no row for inode {truth['ino']}: {screen()!r}"
        steps = [("h", "Press any key"), ("x", "INVAL/s"),
                 ("s", "sort eagain"), ("d", "EAGAIN hotspots"),
                 ("d", "INVAL/s")]
        for key, expect in steps:
            tmux("send-keys", "-t", "gmemtop", key)
            if not wait_for(expect):
                return f"after '{key}' no '{expect}': {screen()!r}"
        tmux("send-keys", "-t", "gmemtop", "q")
        deadline = time.time() + 10
        while tmux("has-session", "-t", "gmemtop").returncode == 0:
            if time.time() > deadline:
                return "'q' did not quit"
            time.sleep(0.2)
        return None
    finally:
        tmux("kill-server")


def main():
    checks = [
        ("json_equals_ground_truth", check_json_equals_ground_truth),
        ("json_equals_gmemload", check_json_equals_gmemload),
        ("snoop_lists_every_conversion", check_snoop_lists_every_conversion),
        ("hist_counts_every_conversion", check_hist_counts_every_conversion),
        ("fentry_fallback_counts_faults_and_fallocate",
         check_fentry_fallback_counts_faults_and_fallocate),
        ("view_answers_keys", check_view_answers_keys),
    ]
    return tap.run(checks)

if __name__ == "__main__":
    sys.exit(main())
