#!/usr/bin/env python3
"""The kvm_gmem trace events and fdinfo, checked against ground truth.

- tracefs, perf and trace-cmd each decode exactly the events that
  gmem_ops.py expects from what it did, field by field, and bpftrace
  counts the results of the conversions it made;
- nothing fires while the events are disabled;
- fdinfo shows the layout and counters that a model of random
  conversions predicts, and bounds its list of ranges.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gmem_ops  # noqa: E402
import tap  # noqa: E402
from gmem_ops import (PAGE, PRIVATE, SHARED, MODE_PRESERVE,  # noqa: E402
                      kernel_mode)

TRACEFS = "/sys/kernel/tracing"
# perf writes its data from its ring buffer's mapping, which Linux 7.3's
# 9p (the VM's /tmp) refuses to write from (EFAULT): keep it in memory.
PERF_DIR = "/dev/shm"
OPS = [sys.executable, os.path.join(os.path.dirname(__file__), "gmem_ops.py")]
EVENT_LINE = re.compile(r"(?:kvm_gmem:)?(kvm_gmem_\w+):\s+(.*?)\s*$")
TOKEN = re.compile(r"0x[0-9a-fA-F]+|-?\d+|[A-Za-z_|-]+|[\[\](),/]")


def tokens(text):
    """Decoded text as tokens, numbers as ints: "0x0" and "0" are equal."""
    return [int(t, 0) if t[0].isdigit() or t[0] == "-" and len(t) > 1 else t
            for t in TOKEN.findall(text)]


def decoded_events(output, ino):
    """(name, tokens) of the events in tool output about inode @ino."""
    events = []
    for line in output.splitlines():
        m = EVENT_LINE.search(line)
        if m and tokens(m.group(2))[:2] == ["ino", ino]:
            events.append((m.group(1), tokens(m.group(2))))
    return events


def compare(expected, got):
    """None if @got is exactly @expected (optional events may be absent),
    else a description of the first difference."""
    i = 0
    for name, text, optional in expected:
        want = (name, tokens(text))
        if i < len(got) and got[i] == want:
            i += 1
        elif not optional:
            have = got[i] if i < len(got) else "nothing"
            return f"event {i}: want {want}, got {have}"
    if i != len(got):
        return f"{len(got) - i} unexpected events, first {got[i]}"
    return None


def tracefs_write(path, value):
    with open(os.path.join(TRACEFS, path), "w") as f:
        f.write(value)


def tracefs_read(path):
    with open(os.path.join(TRACEFS, path)) as f:
        return f.read()


def run_ops(wrapper=()):
    out = subprocess.run(list(wrapper) + OPS, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def check_tracefs():
    tracefs_write("trace", "")
    tracefs_write("events/kvm_gmem/enable", "1")
    try:
        truth = run_ops()
    finally:
        tracefs_write("events/kvm_gmem/enable", "0")
    return compare(truth["events"],
                   decoded_events(tracefs_read("trace"), truth["ino"]))


def check_perf(tmp):
    data = os.path.join(tmp, "perf.data")
    truth = run_ops(["perf", "record", "-q", "-e", "kvm_gmem:*", "-o", data,
                     "--"])
    out = subprocess.run(["perf", "script", "-i", data], check=True,
                         capture_output=True, text=True).stdout
    return compare(truth["events"], decoded_events(out, truth["ino"]))


def check_trace_cmd(tmp):
    data = os.path.join(tmp, "trace.dat")
    truth = run_ops(["trace-cmd", "record", "-q", "-e", "kvm_gmem", "-o",
                     data])
    out = subprocess.run(["trace-cmd", "report", "-i", data], check=True,
                         capture_output=True, text=True).stdout
    return compare(truth["events"], decoded_events(out, truth["ino"]))


BPFTRACE_RESULTS = ("tracepoint:kvm_gmem:kvm_gmem_set_attributes_end "
                    "{ @[args->ret] = count(); }")


def check_bpftrace():
    """The one-liner of docs/tracepoints.md counts results exactly."""
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        raise tap.Skip("no BTF, from which bpftrace types the event's "
                       "fields (6.12's debug kernel)")
    out = subprocess.run(["bpftrace", "-e", BPFTRACE_RESULTS, "-c",
                          " ".join(OPS)], check=True, capture_output=True,
                         text=True).stdout
    truth = json.loads([line for line in out.splitlines()
                        if line.startswith("{")][-1])
    want = {}
    for name, text, _ in truth["events"]:
        if name == "kvm_gmem_set_attributes_end":
            ret = tokens(text)[tokens(text).index("ret") + 1]
            want[ret] = want.get(ret, 0) + 1
    got = {int(m[0]): int(m[1])
           for m in re.findall(r"^@\[(-?\d+)\]: (\d+)$", out, re.M)}
    return None if got == want else f"bpftrace counted {got}, want {want}"


def check_disabled():
    tracefs_write("events/kvm_gmem/enable", "0")
    tracefs_write("trace", "")
    truth = run_ops()
    got = decoded_events(tracefs_read("trace"), truth["ino"])
    return f"{len(got)} events while disabled" if got else None


def layout(attrs):
    """Maximal ranges of equal attributes, as fdinfo prints them."""
    ranges, first = [], 0
    for i in range(1, len(attrs) + 1):
        if i == len(attrs) or attrs[i] != attrs[first]:
            kind = "private" if attrs[first] else "shared"
            ranges.append(f"{first * PAGE:#x}-{i * PAGE:#x} {kind}")
            first = i
    return ranges


def read_fdinfo(fd):
    info, ranges = {}, []
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "gmem_range":
                ranges.append(value.strip())
            elif key.startswith("gmem_") and key != "gmem_summary":
                info[key] = int(value, 0)
    return info, ranges


def check_fdinfo_after_random_conversions():
    s = gmem_ops.Script()
    rng = random.Random(1234)
    conversions, pages, eagain = [0, 0], [0, 0], 0
    for _ in range(300):
        first = rng.randrange(s.nr_pages)
        n = rng.randrange(1, s.nr_pages - first + 1)
        attrs = rng.choice([SHARED, PRIVATE])
        busy = None
        if attrs == PRIVATE and rng.random() < 0.1:
            busy = first + rng.randrange(n)
            if s.attrs[busy] == PRIVATE:
                busy = None
        pipe = s.splice(busy) if busy is not None else None
        ret, _ = gmem_ops.set_attributes(s.fd, first * PAGE, n * PAGE, attrs,
                                         kernel_mode(MODE_PRESERVE))
        changed = sum(s.attrs[p] != attrs for p in range(first, first + n))
        if pipe:
            os.read(pipe[0], PAGE)
            os.close(pipe[0])
            os.close(pipe[1])
            if ret != -11:
                return f"spliced page {busy}: ret {ret}"
            eagain += 1
            continue
        if ret:
            return f"conversion failed: {ret}"
        if changed:
            conversions[attrs == PRIVATE] += 1
            pages[attrs == PRIVATE] += changed
            s.attrs[first:first + n] = [attrs] * n

    info, ranges = read_fdinfo(s.fd)
    want = {
        "gmem_size": s.nr_pages * PAGE,
        "gmem_flags": gmem_ops.FLAG_MMAP | gmem_ops.FLAG_INIT_SHARED,
        "gmem_vm_pid": s.pid,
        "gmem_ranges": len(layout(s.attrs)),
        "gmem_shared_pages": s.attrs.count(SHARED),
        "gmem_private_pages": s.attrs.count(PRIVATE),
        "gmem_conversions_to_private": conversions[1],
        "gmem_conversions_to_shared": conversions[0],
        "gmem_pages_to_private": pages[1],
        "gmem_pages_to_shared": pages[0],
        "gmem_eagain": eagain,
    }
    for key, value in want.items():
        if info.get(key) != value:
            return f"{key}: {info.get(key)}, want {value}"
    if ranges != layout(s.attrs):
        return f"ranges {ranges}, want {layout(s.attrs)}"
    return None


def check_fdinfo_bounds_its_range_list():
    s = gmem_ops.Script(nr_pages=256)
    for p in range(1, s.nr_pages, 2):
        gmem_ops.set_attributes(s.fd, p * PAGE, PAGE, PRIVATE,
                                kernel_mode(MODE_PRESERVE))
        s.attrs[p] = PRIVATE
    info, ranges = read_fdinfo(s.fd)
    want = layout(s.attrs)
    shown = min(len(want), 64)
    if ranges != want[:shown] or info["gmem_ranges"] != len(want):
        return f"ranges {ranges} / {info['gmem_ranges']}, want {want}"
    if info.get("gmem_ranges_not_shown", 0) != len(want) - shown:
        return f"gmem_ranges_not_shown {info.get('gmem_ranges_not_shown')}"
    return None


def main():
    with tempfile.TemporaryDirectory(dir=PERF_DIR) as tmp:
        checks = [
            ("tracefs_decodes_every_event_exactly", check_tracefs),
            ("perf_decodes_every_event_exactly", lambda: check_perf(tmp)),
            ("trace_cmd_decodes_every_event_exactly",
             lambda: check_trace_cmd(tmp)),
            ("bpftrace_counts_results_exactly", check_bpftrace),
            ("nothing_fires_while_disabled", check_disabled),
            ("fdinfo_matches_random_conversions",
             check_fdinfo_after_random_conversions),
            ("fdinfo_bounds_its_range_list",
             check_fdinfo_bounds_its_range_list),
        ]
        return tap.run(checks)

if __name__ == "__main__":
    sys.exit(main())
