#!/usr/bin/env python3
"""gmemtop against ground truth, in the VM.

- Its JSON totals equal what tests/trace/gmem_ops.py did: ioctls,
  conversions and pages each way, EAGAINs and errors, invalidations, the
  EAGAIN hotspots with their reference counts and causes, histogram totals;
  and what gmemload, a VMM-like workload on two VMs with guest-driven
  conversions and held pages, reports of itself.
- --snoop reports every conversion with its result, --hist counts each,
  and so do gmemsnoop and gmemlat (gmemtop under those names); snoop's
  times are the events' own, on perf -k monotonic's clock.
- Its metrics: tests/gmemtop/metrics_test.py.
- The fentry fallback for stock kernels counts host faults and
  fallocate() right, and says what it cannot show.
- The full-screen view, driven through tmux, shows the rows and answers
  its keys.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import gmemwatch  # first: tests/ and tests/trace on sys.path
import tap
from gmem_trace_test import PERF_DIR, tokens
from gmemwatch import GMEMTOP, OPS, TOP, wait_attached

GMEMLOAD = [gmemwatch.GMEMLOAD, "--quiet",
            "--vms", "2", "--size", "8M", "--pattern", "mixed", "--guest",
            "--hold", "20", "--count", "300", "--seed", "7"]
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


def watch(gmemtop_args, command, name="gmemtop", stopped=False):
    """Runs @command while gmemtop (with @gmemtop_args) watches; returns
    the command's stdout and gmemtop's stdout and stderr.  @name runs it
    as gmemlat or gmemsnoop.  @stopped: gmemtop is stopped (SIGSTOP) while
    @command runs, and reads its events once it has exited."""
    top = subprocess.Popen([name, *gmemtop_args], executable=GMEMTOP,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        if not wait_attached(top):
            raise RuntimeError("gmemtop never attached")
        if stopped:
            top.send_signal(signal.SIGSTOP)
        try:
            out = subprocess.run(command, check=True, capture_output=True,
                                 text=True).stdout
        finally:
            if stopped:
                top.send_signal(signal.SIGCONT)
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


def check_snoop_lists_every_conversion(name="gmemtop"):
    """--snoop --json: one record per ioctl, in order, with its result."""
    args = ["--json"] if name == "gmemsnoop" else ["--snoop", "--json"]
    ops, out, err = watch(args, OPS, name)
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
    if not wait_attached(hist):
        return "gmemtop --hist never attached"
    truth = json.loads(subprocess.run(OPS, check=True, capture_output=True,
                                      text=True).stdout)
    out, _ = hist.communicate(timeout=30)
    return histogram_holds_every_conversion(out, truth)


def check_gmemlat_counts_every_conversion():
    """gmemlat, until Ctrl-C: the same distribution, printed once."""
    ops, out, _ = watch([], OPS, "gmemlat")
    if not out.startswith("Tracing guest_memfd conversions"):
        return f"no banner: {out!r}"
    if out.count("time by phase") != len(re.findall(r"^guest_memfd ino",
                                                    out, re.M)):
        return f"printed more than once: {out!r}"
    return histogram_holds_every_conversion(out, json.loads(ops))


def histogram_holds_every_conversion(out, truth):
    """Whether --hist output @out counts what gmem_ops.py converted."""
    want, _ = ground_truth(truth["events"])
    head = re.compile(rf"^guest_memfd ino {truth['ino']} .* outcome = "
                      r"changed$", re.M)
    section = head.split(out)
    if len(section) != 2:
        return f"no distribution for inode {truth['ino']}: {out!r}"
    counts = re.findall(r"^\s*[\d.]+ -> [\d.]+\s+: (\d+)", section[1].split(
        "time by phase")[0], re.M)
    total = sum(map(int, counts))
    converted = want["conversions_to_private"] + want["conversions_to_shared"]
    return None if total == converted else f"{total} in the histogram, " \
        f"want {converted}"


def check_snoop_times_are_event_times():
    """ts_ns is when the conversion ended, on CLOCK_MONOTONIC: the
    clock perf record -k monotonic stamps the same events with.  The
    two probes run one after the other on the same event, so under a
    loaded QEMU TCG they may be tens of milliseconds apart; what must
    hold exactly is the order: gmem_ops.py converts from one thread, so
    each record falls between perf's stamps of the events either side."""
    data = os.path.join(tempfile.mkdtemp(dir=PERF_DIR), "perf.data")
    perf = ["perf", "record", "-q", "-k", "monotonic", "-e",
            "kvm_gmem:kvm_gmem_set_attributes_end", "-o", data, "--", *OPS]
    ops, out, _ = watch(["--json"], perf, "gmemsnoop")
    ino = json.loads(ops)["ino"]
    records = [r for r in map(json.loads, out.splitlines())
               if r["ino"] == ino]
    script = subprocess.run(["perf", "script", "--ns", "-i", data],
                            check=True, capture_output=True, text=True).stdout
    perf_ns = [round(float(t) * 1e9) for t in re.findall(
        rf"(\d+\.\d+): kvm_gmem:kvm_gmem_set_attributes_end: ino {ino} ",
        script)]
    if len(perf_ns) != len(records) or not records:
        return f"{len(records)} records, perf saw {len(perf_ns)}"
    if len(records) < 3:
        return f"only {len(records)} conversions to order"
    bounds = [float("-inf")] + perf_ns + [float("inf")]
    for i, r in enumerate(records):
        if not bounds[i] <= r["ts_ns"] <= bounds[i + 2]:
            return f"ts_ns {r['ts_ns']} outside perf's {bounds[i:i + 3]}"
    offsets = [r["timestamp"] - r["ts_ns"] / 1e9 for r in records]
    if max(offsets) - min(offsets) > 0.01:
        return f"timestamp is not ts_ns on the wall clock: {offsets}"
    return None


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


def new_session(command, width=160, height=40):
    """A new tmux server whose one session, "gmemtop", runs @command.
    kill-server returns before the old server has gone, and a session
    asked of it meanwhile dies with it ("server exited unexpectedly"):
    ask again."""
    tmux("kill-server")
    deadline = time.time() + 10
    while True:
        run = tmux("new-session", "-d", "-s", "gmemtop", "-x", str(width),
                   "-y", str(height), command)
        if run.returncode == 0:
            return
        if time.time() > deadline:
            raise RuntimeError(f"tmux new-session: {run.stderr.strip()}")
        time.sleep(0.1)


def screen():
    return tmux("capture-pane", "-p", "-t", "gmemtop").stdout


def wait_for(text, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in screen():
            return True
        time.sleep(0.2)
    return False


# A guest_memfd of 256 pages, every other one private: 256 ranges, of
# which fdinfo lists 64; held open until stdin closes.
MANY_RANGES = f"""
import json, sys
sys.path.insert(0, {os.path.join(TOP, "tests", "trace")!r})
import gmem_ops
s = gmem_ops.Script(nr_pages=256)
for p in range(1, 256, 2):
    gmem_ops.set_attributes(s.fd, p * gmem_ops.PAGE, gmem_ops.PAGE,
                            gmem_ops.PRIVATE, gmem_ops.MODE_NONE)
print(json.dumps({{"ino": s.ino, "pid": s.pid}}), flush=True)
sys.stdin.read()
"""


def check_layout_is_complete_beyond_listed_ranges():
    """fdinfo lists 64 of the 256 ranges; its summary covers the rest:
    --json carries it, and the detail view's layout has no '?' left."""
    report = holder = None
    try:
        problem = start_view()
        if problem:
            return problem
        report = subprocess.Popen([GMEMTOP, "--json", "-d", "0.5", "-n",
                                   "10"], stdout=subprocess.PIPE, text=True)
        if not wait_attached(report):
            return "gmemtop --json never attached"
        holder = subprocess.Popen([sys.executable, "-c", MANY_RANGES],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        truth = json.loads(holder.stdout.readline())
        out, _ = report.communicate(timeout=60)
        rows = [f for f in json.loads(out.splitlines()[-1])["files"]
                if f["ino"] == truth["ino"]]
        summary = rows and (rows[0]["summary"], rows[0]["summary_cell"])
        if summary != ("m" * 64, 4 * 4096):
            return f"summary {summary}"
        tmux("send-keys", "-t", "gmemtop", "p", str(truth["pid"]), "Enter",
             "d")
        if not wait_for(f"guest_memfd ino {truth['ino']} "):
            return f"no detail of inode {truth['ino']}: {screen()!r}"
        layout = re.search(r"^layout: \[(.*)\]$", screen(), re.M)
        if not layout or set(layout.group(1)) != {"+"}:
            return f"layout {layout and layout.group(1)!r}"
        return quit_view()
    finally:
        tmux("kill-server")
        if report:
            report.kill()
        if holder:
            holder.stdin.close()
            holder.wait(timeout=30)


def press_keys(steps):
    """Each (key, text): press key (None: none), then wait for text on
    the view's screen; None, or what went wrong."""
    for key, expect in steps:
        if key:
            tmux("send-keys", "-t", "gmemtop", key)
        if not wait_for(expect):
            return f"after '{key}' no '{expect}': {screen()!r}"
    return None


def quit_view():
    """Presses 'q'; None once the view has quit, else what went wrong."""
    tmux("send-keys", "-t", "gmemtop", "q")
    deadline = time.time() + 10
    while tmux("has-session", "-t", "gmemtop").returncode == 0:
        if time.time() > deadline:
            return "'q' did not quit"
        time.sleep(0.2)
    return None


def start_view(*args):
    """gmemtop's full-screen view with @args in tmux session "gmemtop";
    None once it shows its table, else what it shows."""
    new_session(" ".join([GMEMTOP, "-d", "0.3", *args]), height=50)
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
                 ("d", "INVAL/s"), ("c", "CUMULATIVE")]
        return press_keys(steps) or quit_view()
    finally:
        tmux("kill-server")


def main():
    checks = [
        ("json_equals_ground_truth", check_json_equals_ground_truth),
        ("json_equals_gmemload", check_json_equals_gmemload),
        ("snoop_lists_every_conversion", check_snoop_lists_every_conversion),
        ("hist_counts_every_conversion", check_hist_counts_every_conversion),
        ("gmemlat_counts_every_conversion",
         check_gmemlat_counts_every_conversion),
        ("gmemsnoop_lists_every_conversion",
         lambda: check_snoop_lists_every_conversion("gmemsnoop")),
        ("snoop_times_are_event_times", check_snoop_times_are_event_times),
        ("fentry_fallback_counts_faults_and_fallocate",
         check_fentry_fallback_counts_faults_and_fallocate),
        ("view_answers_keys", check_view_answers_keys),
        ("layout_is_complete_beyond_listed_ranges",
         check_layout_is_complete_beyond_listed_ranges),
    ]
    return tap.run(checks)

if __name__ == "__main__":
    sys.exit(main())
