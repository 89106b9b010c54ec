#!/usr/bin/env python3
"""gmemtop --holders against gmemload's ground truth, in the VM.

- Every EAGAIN hotspot names the process that held the page: the pid and
  name of gmemload's holder process (hold-vmsplice, hold-gup-pin,
  hold-iouring, hold-odirect), the kind of reference and a kernel stack
  through the holder's own system call.
- A page taken before gmemtop was watching has an "unknown" holder.
- Without --holders no GUP program is loaded and no holder is shown.

Prints TAP.  Needs root, kvm.vm_memory_attributes=0, CONFIG_GUP_TEST and
debugfs, CONFIG_BLK_DEV_NULL_BLK and configfs.
  holders_test.py [CHECK...]    only the named checks
"""
import json
import subprocess
import sys
import time

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemwatch import GMEMLOAD, GMEMTOP

HOLDERS = [GMEMLOAD, "--quiet", "--vms", "2", "--size", "2M", "--pattern",
           "random4k", "--hold", "100", "--hold-kinds", "all",
           "--hold-ms", "30", "--count", "24", "--seed", "11"]
# What gmemtop must say of each of gmemload's holder kinds.
KINDS = {
    "vmsplice": ("gup-get", "__do_sys_vmsplice"),
    "gup-pin": ("gup-pin-longterm", "gup_test_ioctl"),
    "iouring": ("gup-pin-longterm", "io_sqe_buffer_register"),
    "odirect": ("gup-pin", "bio_iov_iter_get_pages"),
}
GUP_PROGRAMS = ("get_user_pages", "pin_user_pages")


def start_gmemtop(args):
    return gmemwatch.start([GMEMTOP, "--json", "-d", "0.5", *args])


def last_report(top):
    out, _ = gmemwatch.stop(top)
    return json.loads(out.strip().splitlines()[-1])


def watch_holders(gmemtop_args, during=lambda: None):
    """gmemload's report of HOLDERS and gmemtop's last one while it ran;
    @during is called once gmemtop is attached."""
    truth, out, _ = gmemwatch.watch(
        [GMEMTOP, "--json", "-d", "0.5", *gmemtop_args], HOLDERS, during)
    return truth, json.loads(out.strip().splitlines()[-1])


def hotspots(report, truth):
    """{(vm index, offset): hotspot} for gmemload's files."""
    vm_of = {v["ino"]: v["vm"] for v in truth["vms"]}
    return {(vm_of[f["ino"]], h["offset"]): h
            for f in report["files"] if f["ino"] in vm_of
            for h in f["hotspots"]}


def last_blocking_holds(truth):
    """{(vm, offset): the last hold of that page that caused an EAGAIN}."""
    holds = {}
    for h in truth["held_pages"]:
        if h["eagain"]:
            holds[(h["vm"], h["offset"])] = h
    return holds


def gup_programs_loaded():
    progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"],
                                      check=True, capture_output=True,
                                      text=True).stdout)
    return sorted(p["name"] for p in progs
                  if p.get("name", "").startswith(GUP_PROGRAMS))


def check_every_hotspot_names_its_holder():
    truth, report = watch_holders(["--holders"])
    want = last_blocking_holds(truth)
    got = hotspots(report, truth)
    if set(got) != set(want):
        return f"hotspots {sorted(got)}, want {sorted(want)}"
    if {h["kind"] for h in want.values()} != set(KINDS):
        return f"gmemload used kinds {[h['kind'] for h in want.values()]}"
    for key, hold in want.items():
        who = got[key]["holder"]
        kind, frame = KINDS[hold["kind"]]
        if not who or (who["pid"], who["comm"], who["kind"]) != \
                (hold["pid"], hold["comm"], kind):
            return f"page {key}: holder {who}, want {hold}"
        if not any(f.startswith(frame + "+") for f in who["stack"].split(";")):
            return f"page {key}: no {frame} in stack {who['stack']}"
    return None


def check_reference_taken_before_watching_is_unknown():
    """The hold is taken, then gmemtop starts while the conversion keeps
    meeting it: GUP was not watched, so the holder is unknown."""
    load = subprocess.Popen([GMEMLOAD, "--quiet", "--size", "1M",
                             "--pattern", "random4k", "--hold", "100",
                             "--hold-ms", "8000", "--count", "1",
                             "--seed", "5"], stdout=subprocess.PIPE,
                            text=True)
    time.sleep(1)
    top = start_gmemtop(["--holders"])
    try:
        truth = json.loads(load.communicate(timeout=60)[0])
        time.sleep(1)
    finally:
        report = last_report(top)
    got = hotspots(report, truth)
    if len(got) != 1:
        return f"hotspots {got}, want one"
    (spot,) = got.values()
    if spot["holder"] is not None:
        return f"holder {spot['holder']}, want null (unknown)"
    return None


def check_without_holders_nothing_is_loaded():
    loaded = []
    truth, report = watch_holders(
        [], lambda: loaded.extend(gup_programs_loaded()))
    if loaded:
        return f"GUP programs loaded without --holders: {loaded}"
    spots = hotspots(report, truth)
    if not spots or any("holder" in h for h in spots.values()):
        return f"hotspots without --holders: {spots}"
    top = start_gmemtop(["--holders"])
    try:
        loaded_on = gup_programs_loaded()
    finally:
        last_report(top)
    return None if len(loaded_on) == 8 else \
        f"with --holders, GUP programs {loaded_on}"


def main():
    checks = [
        ("every_hotspot_names_its_holder",
         check_every_hotspot_names_its_holder),
        ("reference_taken_before_watching_is_unknown",
         check_reference_taken_before_watching_is_unknown),
        ("without_holders_nothing_is_loaded",
         check_without_holders_nothing_is_loaded),
    ]
    wanted = sys.argv[1:]
    return tap.run([c for c in checks if not wanted or c[0] in wanted])


if __name__ == "__main__":
    sys.exit(main())
