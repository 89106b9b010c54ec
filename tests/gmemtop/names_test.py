#!/usr/bin/python3
"""VMs named as operators name them, in the VM.

gmemload runs as QEMU would be seen (argv[0] qemu-system-x86_64, with
-name guest=NAME,debug-threads=on and -uuid after its own arguments) in a
cgroup of its own, its JSON report the ground truth:

- gmemtop's JSON and CSV rows carry exactly that name, uuid and cgroup,
  with the counts gmemload reports; the -b table's VM_NAME column and
  every --snoop record name it too;
- without -name, in libvirt's scope of a domain, the domain is the name;
- so do the labels of every /metrics series of its files;
- --cgroup shows and exports the VMM in that cgroup and nothing of a
  second one in another, whose counts never reach the maps;
- the view's 'n' key shows the name, then the cgroup, at 80 columns.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).  Debian's
python3, for Debian's python3-prometheus-client.
"""
import csv
import io
import json
import os
import subprocess
import sys
import time

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemtop_test import new_session, press_keys, quit_view, screen, tmux, \
    wait_for
from gmemwatch import GMEMTOP, start, stop, wait_attached
from metrics_test import Gmemtop, metrics_page, settled
from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as parse_openmetrics

CGROUP_FS = "/sys/fs/cgroup"
PARENT = "gmemtop-names"
UUID = "1234abcd-5678-4def-8123-456789abcdef"
COUNTS = ("conversions_to_private", "conversions_to_shared",
          "pages_to_private", "pages_to_shared", "eagain")
# Long enough for gmemtop to read its names while it runs (-d 0.3).
LOAD = ["--quiet", "--vms", "2", "--size", "8M", "--pattern", "mixed",
        "--hold", "20", "--count", "200", "--rate", "100", "--seed", "7"]


def cgroup(name):
    """/sys/fs/cgroup/gmemtop-names/NAME, made if need be, with cgroup2
    mounted (the test VM's init mounts none)."""
    if not os.path.exists(os.path.join(CGROUP_FS, "cgroup.controllers")):
        subprocess.run(["mount", "-t", "cgroup2", "cgroup2", CGROUP_FS],
                       check=True)
    path = os.path.join(CGROUP_FS, PARENT, name)
    os.makedirs(path, exist_ok=True)
    return path


def join(path):
    """For preexec_fn: the child moves itself into cgroup @path."""
    def move():
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write("0")
    return move


def vmm(name, group, args=LOAD):
    """gmemload as QEMU named @name, in cgroup @group: started."""
    return subprocess.Popen(
        ["qemu-system-x86_64", *args, "--", "-machine", "q35", "-name",
         f"guest={name},debug-threads=on", "-uuid", UUID],
        executable=gmemwatch.GMEMLOAD, stdout=subprocess.PIPE, text=True,
        preexec_fn=join(cgroup(group)))


def truth_of(proc):
    out, _ = proc.communicate(timeout=120)
    if proc.returncode:
        raise RuntimeError(f"gmemload exited {proc.returncode}")
    return json.loads(out)


def wrong_row(row, vm, name, group):
    """What a row (JSON or CSV, as dict) gets wrong of gmemload's @vm."""
    want = {"vm_name": name, "vm_uuid": UUID, "cgroup": f"/{PARENT}/{group}"}
    got = {k: row[k] for k in want}
    if got != want:
        return f"inode {vm['ino']} names {got}, want {want}"
    for key in COUNTS:
        if int(row[key]) != vm[key]:
            return f"inode {vm['ino']} {key}: {row[key]}, want {vm[key]}"
    return None


def check_json_and_csv_rows_carry_the_names():
    js = start([GMEMTOP, "-b", "--json", "-d", "0.3"])
    # Not start(): it would take the CSV header as the first report.
    cs = subprocess.Popen([GMEMTOP, "-b", "--csv", "-d", "0.3"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    try:
        if not wait_attached(cs):
            return "gmemtop --csv did not attach"
        truth = truth_of(vmm("demo-vm", "a"))
        time.sleep(1)
    finally:
        js_out, _ = stop(js)
        cs_out, _ = stop(cs)
    rows = {f["ino"]: f for f in json.loads(js_out.splitlines()[-1])["files"]}
    # A row per file and report: the last one of each file wins.
    csv_rows = {int(r["ino"]): r for r in csv.DictReader(io.StringIO(cs_out))}
    for vm in truth["vms"]:
        for kind, table in (("json", rows), ("csv", csv_rows)):
            row = table.get(vm["ino"])
            if not row:
                return f"{kind}: no row for inode {vm['ino']}"
            problem = wrong_row(row, vm, "demo-vm", "a")
            if problem:
                return f"{kind}: {problem}"
    return None


def check_table_and_snoop_carry_the_names():
    """The -b table's VM_NAME column, and every --snoop --json record of
    the VMM, name it as its -name does."""
    table = start([GMEMTOP, "-b", "-d", "0.3"])
    snoop = subprocess.Popen([GMEMTOP, "--snoop", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        if not wait_attached(snoop):
            return "gmemtop --snoop did not attach"
        truth = truth_of(vmm("demo-vm", "a"))
        time.sleep(1)
    finally:
        table_out, _ = stop(table)
        snoop_out, _ = stop(snoop)
    # PID COMM VM_NAME VM INO ...: the last row of each inode wins.
    names = {int(cols[4]): cols[2] for cols in map(str.split,
                                                   table_out.splitlines())
             if len(cols) > 4 and cols[4].isdigit()}
    records = [json.loads(line) for line in snoop_out.splitlines()]
    for vm in truth["vms"]:
        if names.get(vm["ino"]) != "demo-vm":
            return f"table: inode {vm['ino']} named {names.get(vm['ino'])}"
        mine = [r for r in records if r["ino"] == vm["ino"]]
        if not mine:
            return f"snoop: no record of inode {vm['ino']}"
        wrong = [r for r in mine if (r["vm_name"], r["vm_uuid"], r["cgroup"])
                 != ("demo-vm", UUID, f"/{PARENT}/a")]
        if wrong:
            return f"snoop: {len(wrong)} records named otherwise: {wrong[0]}"
    return None


def check_libvirt_scope_names_the_domain():
    """A VMM without -name in libvirt's scope for domain "web-1"
    (machine-qemu\\x2d7\\x2dweb\\x2d1.scope, systemd's escaping): the
    domain is its name, and it has no uuid."""
    scope = "machine-qemu\\x2d7\\x2dweb\\x2d1.scope"
    top = start([GMEMTOP, "-b", "--json", "-d", "0.3"])
    try:
        load = subprocess.Popen([gmemwatch.GMEMLOAD, *LOAD],
                                stdout=subprocess.PIPE, text=True,
                                preexec_fn=join(cgroup(scope)))
        truth = truth_of(load)
        time.sleep(1)
    finally:
        out, _ = stop(top)
        os.rmdir(cgroup(scope))
    rows = {f["ino"]: f for f in json.loads(out.splitlines()[-1])["files"]}
    want = {"vm_name": "web-1", "vm_uuid": "",
            "cgroup": f"/{PARENT}/{scope}"}
    for vm in truth["vms"]:
        row = rows.get(vm["ino"])
        if not row:
            return f"no row for inode {vm['ino']}"
        got = {k: row[k] for k in want}
        if got != want:
            return f"inode {vm['ino']} names {got}, want {want}"
    return None


def series_labels(page):
    """{ino: set of (cgroup, vm_name, vm_uuid)} over every sample."""
    got = {}
    for family in parse_openmetrics(page):
        for s in family.samples:
            if "ino" in s.labels:
                got.setdefault(int(s.labels["ino"]), set()).add(
                    (s.labels.get("cgroup"), s.labels.get("vm_name"),
                     s.labels.get("vm_uuid")))
    return got


def check_metrics_carry_the_names():
    top = Gmemtop("-b", "-d", "0.3", "--openmetrics", "9470")
    try:
        truth = truth_of(vmm("demo-vm", "a"))
        page, wrong = settled(metrics_page(9470), truth)
    finally:
        top.stop()
    if wrong:
        return "; ".join(wrong)
    labels = series_labels(page)
    want = {(f"/{PARENT}/a", "demo-vm", UUID)}
    for vm in truth["vms"]:
        if labels.get(vm["ino"]) != want:
            return f"inode {vm['ino']} labels {labels.get(vm['ino'])}, " \
                   f"want {want}"
    return None


def map_ids(pid):
    """The ids of the BPF maps process @pid holds, from fdinfo."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-map":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids |= {int(line.split()[1]) for line in f
                        if line.startswith("map_id:")}
        except OSError:
            pass
    return ids


def files_in_maps(pid):
    """The inodes in the files map of the gmemtop of @pid, as bpftool
    dumps it with its BTF."""
    maps = json.loads(subprocess.run(["bpftool", "-j", "map", "show"],
                                     check=True, capture_output=True,
                                     text=True).stdout)
    mine = map_ids(pid)
    ids = [m["id"] for m in maps
           if m.get("name") == "files" and m["id"] in mine]
    if len(ids) != 1:
        raise RuntimeError(f"files maps of gmemtop {pid}: {ids}")
    dump = json.loads(subprocess.run(
        ["bpftool", "-j", "map", "dump", "id", str(ids[0])], check=True,
        capture_output=True, text=True).stdout)
    return {e["formatted"]["key"] if "formatted" in e else e["key"]
            for e in dump}


def check_cgroup_filter_keeps_one_vmm():
    """Two VMMs at once, one in a, one in b: with --cgroup .../a, every
    report and /metrics have a's files with a's exact counts, and never
    one of b's; b's files never took an entry of the kernel's maps."""
    top = Gmemtop("-b", "--json", "-d", "0.3", "--cgroup", cgroup("a"),
                  "--openmetrics", "9471")
    try:
        a, b = vmm("demo-vm", "a"), vmm("other-vm", "b")
        truth_a, truth_b = truth_of(a), truth_of(b)
        page, wrong = settled(metrics_page(9471), truth_a)
        in_maps = files_in_maps(top.proc.pid)
    finally:
        out = top.stop()
    if wrong:
        return "; ".join(wrong)
    inos_a = {vm["ino"] for vm in truth_a["vms"]}
    inos_b = {vm["ino"] for vm in truth_b["vms"]}
    if not truth_b["totals"]["conversions_to_private"]:
        return "the VMM in b converted nothing: nothing to filter"
    if in_maps != inos_a:
        return f"the files map holds {sorted(in_maps)}, want " \
               f"{sorted(inos_a)}"
    reports = [json.loads(line) for line in out.splitlines()]
    for r in reports:
        seen = {f["ino"] for f in r["files"]}
        if seen & inos_b:
            return f"b's files {sorted(seen & inos_b)} shown"
    rows = {f["ino"]: f for f in reports[-1]["files"]}
    if set(rows) != inos_a:
        return f"last report's files {sorted(rows)}, want {sorted(inos_a)}"
    for vm in truth_a["vms"]:
        problem = wrong_row(rows[vm["ino"]], vm, "demo-vm", "a")
        if problem:
            return problem
    exported = set(series_labels(page))
    if exported != inos_a:
        return f"/metrics has files {sorted(exported)}, want {sorted(inos_a)}"
    return None


def check_view_shows_names_at_80_columns():
    load = None
    try:
        new_session(f"{GMEMTOP} -d 0.3", width=80, height=30)
        if not wait_for("PRV_MiB"):
            return f"no table: {screen()!r}"
        load = vmm("demo-vm", "a",
                   ["400" if arg == "200" else arg for arg in LOAD])
        steps = [("n", "VM_NAME"), (None, " demo-vm "), ("n", "CGROUP"),
                 (None, f"/{PARENT}/a"), ("n", "COMM"),
                 ("d", f"name demo-vm  uuid {UUID}")]
        return press_keys(steps) or quit_view()
    finally:
        tmux("kill-server")
        if load:
            truth_of(load)


def main():
    checks = [(c.__name__[len("check_"):], c) for c in (
        check_json_and_csv_rows_carry_the_names,
        check_table_and_snoop_carry_the_names,
        check_libvirt_scope_names_the_domain,
        check_metrics_carry_the_names,
        check_cgroup_filter_keeps_one_vmm,
        check_view_shows_names_at_80_columns)]
    try:
        return tap.run(checks)
    finally:
        for name in ("a", "b"):
            try:
                os.rmdir(os.path.join(CGROUP_FS, PARENT, name))
            except OSError:
                pass
        try:
            os.rmdir(os.path.join(CGROUP_FS, PARENT))
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
