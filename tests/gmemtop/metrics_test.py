#!/usr/bin/python3
"""gmemtop's metrics against ground truth, in the VM.

- /metrics, scraped as Prometheus scrapes (OpenMetrics), parses strictly
  and counts what gmemload did, per guest_memfd, EAGAINs with their
  latency and phases; the text format of the same endpoint passes
  promtool.
- Under --snoop, /metrics and --textfile are there too and count the same.
- gmemlat prints once, at Ctrl-C, but its /metrics counts while it runs.
- The view's reset key leaves exported counters where they were, and
  they go on from there.
- A gmemtop started again while a VMM converts exports the counts fdinfo
  keeps over the files' life: every conversion, before it too.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).  Debian's python3,
for Debian's python3-prometheus-client.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import \
    text_string_to_metric_families as parse_prometheus

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from gmemtop_test import GMEMLOAD, start_view, tmux
from gmemwatch import GMEMTOP

OPENMETRICS = "application/openmetrics-text;version=1.0.0," \
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
PAGE_SIZE = os.sysconf("SC_PAGESIZE")


def scrape(port, accept=OPENMETRICS):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as reply:
        return reply.headers["Content-Type"], reply.read().decode()


def values(page, parse=parse_openmetrics):
    """{(sample name, ino, extra label value): value}, parsed strictly."""
    got = {}
    for family in parse(page):
        for s in family.samples:
            extra = [v for k, v in s.labels.items()
                     if k not in ("vm", "pid", "ino", "cgroup", "vm_name",
                                  "vm_uuid")]
            got[(s.name, int(s.labels.get("ino", 0)), *extra)] = s.value
    return got


def differences(got, truth, kernel_only=False):
    """What the series of each of gmemload's guest_memfds get wrong; with
    @kernel_only, only in the counts that fdinfo keeps."""
    wrong = []
    for vm in truth["vms"]:
        ino = vm["ino"]
        for d in ("private", "shared"):
            want = {("kvm_gmem_conversions_total", ino, "to_" + d):
                    vm["conversions_to_" + d],
                    ("kvm_gmem_converted_bytes_total", ino, "to_" + d):
                    vm["pages_to_" + d] * PAGE_SIZE}
            wrong += [f"{k}: {got.get(k)}, want {v}"
                      for k, v in want.items() if got.get(k) != v]
        if got.get(("kvm_gmem_eagain_total", ino)) != vm["eagain"]:
            wrong.append(f"inode {ino} eagain "
                         f"{got.get(('kvm_gmem_eagain_total', ino))}, "
                         f"want {vm['eagain']}")
        if kernel_only:
            continue
        converted = vm["conversions_to_private"] + \
            vm["conversions_to_shared"]
        count = got.get(("kvm_gmem_conversion_latency_seconds_count", ino))
        if count != converted:
            wrong.append(f"inode {ino} latency count {count}, "
                         f"want {converted}")
        wrong += eagain_differences(got, vm)
    return wrong


def eagain_differences(got, vm):
    """EAGAINs have a latency sample each, and phases that add up to it."""
    ino = vm["ino"]
    count = got.get(("kvm_gmem_eagain_latency_seconds_count", ino))
    if count != vm["eagain"]:
        return [f"inode {ino} EAGAIN latency count {count}, "
                f"want {vm['eagain']}"]
    total = got.get(("kvm_gmem_eagain_latency_seconds_sum", ino))
    phases = sum(v for k, v in got.items()
                 if k[:2] == ("kvm_gmem_eagain_phase_seconds_total", ino))
    if abs(phases - total) > 1e-6 or (count and not total):
        return [f"inode {ino} EAGAIN phases {phases} s, latency {total} s"]
    return []


def settled(read, truth, parse=parse_openmetrics, timeout=15,
            kernel_only=False):
    """read() once it counts all of @truth, or the last one after @timeout
    seconds, with what it gets wrong: the exporter publishes what gmemtop
    read once an interval, and a sanitized build on the debug kernel lags
    behind by more than one."""
    deadline = time.time() + timeout
    while True:
        text = read()
        wrong = differences(values(text, parse), truth, kernel_only)
        if not wrong or time.time() > deadline:
            return text, wrong
        time.sleep(0.3)


def metrics_page(port):
    return lambda: scrape(port)[1]


def read_file(path):
    def read():
        with open(path) as f:
            return f.read()
    return read


def gmemload():
    return json.loads(subprocess.run(GMEMLOAD, check=True,
                                     capture_output=True, text=True).stdout)


class Gmemtop:
    """gmemtop with @args (--openmetrics PORT among them), running until
    stopped."""

    def __init__(self, *args, tool=GMEMTOP):
        self.out = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([tool, *args], stdout=self.out,
                                     stderr=subprocess.PIPE, text=True)
        self.wait_attached(int(args[args.index("--openmetrics") + 1]))

    def wait_attached(self, port, timeout=60):
        """The exporter starts once the programs are attached."""
        deadline = time.time() + timeout
        while True:
            try:
                scrape(port)
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self):
        """Interrupts it; returns what it printed."""
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        if self.proc.returncode:
            raise RuntimeError(f"gmemtop exited {self.proc.returncode}: "
                               f"{err}")
        self.out.seek(0)
        return self.out.read()


def check_openmetrics_counts_what_gmemload_did():
    top = Gmemtop("-b", "-d", "0.3", "--openmetrics", "9464")
    try:
        truth = gmemload()
        page, wrong = settled(metrics_page(9464), truth)
        kind, _ = scrape(9464)
        text_kind, text = scrape(9464, accept="text/plain")
    finally:
        top.stop()
    if not kind.startswith("application/openmetrics-text; version=1.0.0") \
       or not text_kind.startswith("text/plain; version=0.0.4"):
        return f"content types {kind}, {text_kind}"
    lint = subprocess.run(["promtool", "check", "metrics"], input=text,
                          capture_output=True, text=True)
    if lint.returncode:
        return f"promtool: {lint.stdout}{lint.stderr}"
    return "; ".join(wrong) if wrong else None


def check_snoop_serves_metrics_and_writes_the_textfile():
    path = "/tmp/gmemtop-metrics-test.prom"
    top = Gmemtop("--snoop", "-d", "0.3", "--openmetrics", "9465",
                  "--textfile", path)
    try:
        truth = gmemload()
        _, wrong = settled(metrics_page(9465), truth)
        written, file_wrong = settled(read_file(path), truth,
                                      parse_prometheus)
    finally:
        top.stop()
    if wrong:
        return "/metrics: " + "; ".join(wrong)
    lint = subprocess.run(["promtool", "check", "metrics"], input=written,
                          capture_output=True, text=True)
    if lint.returncode:
        return f"textfile: promtool: {lint.stdout}{lint.stderr}"
    if file_wrong:
        return "textfile: " + "; ".join(file_wrong)
    return None if not os.path.exists(path + ".tmp") else "PATH.tmp left"


def check_gmemlat_serves_metrics_while_running():
    """gmemlat's one histogram waits for Ctrl-C; its /metrics must not."""
    top = Gmemtop("--openmetrics", "9467", tool=gmemwatch.named("gmemlat"))
    try:
        truth = gmemload()
        _, wrong = settled(metrics_page(9467), truth)
    finally:
        out = top.stop()
    if wrong:
        return "/metrics while running: " + "; ".join(wrong)
    converted = sum(vm["conversions_to_private"] + vm["conversions_to_shared"]
                    for vm in truth["vms"])
    counts = re.findall(r"^\s*[\d.]+ -> [\d.]+\s+: (\d+)",
                        "".join(part.split("time by phase")[0] for part in
                                out.split("outcome = changed")[1:]), re.M)
    if sum(map(int, counts)) != converted:
        return f"printed {sum(map(int, counts))} conversions at the end, " \
            f"want {converted}: {out!r}"
    return None


def counters(page):
    return {k: v for k, v in values(page).items()
            if k[0].endswith(("_total", "_bucket", "_count", "_sum"))}


def check_reset_key_keeps_exported_counters():
    """'r' in the middle of a run: no exported counter goes back, and at
    the end they hold every conversion of the run, before and after."""
    try:
        problem = start_view("--openmetrics", "9466")
        if problem:
            return problem
        load = subprocess.Popen(GMEMLOAD + ["--rate", "60"],
                                stdout=subprocess.PIPE, text=True)
        before = {}
        deadline = time.time() + 60
        while not any(k[0] == "kvm_gmem_conversions_total" and v
                      for k, v in before.items()):
            if time.time() > deadline:
                return "gmemload converted nothing in 60 s"
            time.sleep(0.5)
            before = counters(scrape(9466)[1])
        tmux("send-keys", "-t", "gmemtop", "r")
        running = load.poll() is None
        time.sleep(1)
        after = counters(scrape(9466)[1])
        out, _ = load.communicate(timeout=120)
        _, wrong = settled(metrics_page(9466), json.loads(out))
    finally:
        tmux("kill-server")
    went_back = {k: (v, after.get(k)) for k, v in before.items()
                 if after.get(k, -1) < v}
    if went_back:
        return f"went back: {went_back}"
    if load.returncode or not running:
        return f"gmemload exited {load.returncode}, running at the reset: " \
            f"{running}"
    return "; ".join(wrong) if wrong else None


def converted(page):
    """{(name, ino, direction): value} of the conversions exported."""
    return {k: v for k, v in values(page).items()
            if k[0] == "kvm_gmem_conversions_total"}


def wait_converted(port, inos, timeout=60):
    """The conversions exported on @port once every file of @inos has
    some (all files exported when @inos is None)."""
    deadline = time.time() + timeout
    while True:
        got = converted(scrape(port)[1])
        have = {k[1] for k, v in got.items() if v}
        if have and (inos is None or inos <= have):
            return got
        if time.time() > deadline:
            raise RuntimeError(f"port {port} exports {got}")
        time.sleep(0.3)


def check_restarted_gmemtop_exports_the_kernel_s_counts():
    """gmemtop stopped and started again while gmemload converts: the
    second run goes on from the first one's counts, and ends with every
    conversion and EAGAIN of the run, as fdinfo counts them, although its
    own latency histogram has only what it saw."""
    load = subprocess.Popen(GMEMLOAD + ["--rate", "20"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = Gmemtop("-b", "-d", "0.3", "--openmetrics", "9468")
        try:
            before = wait_converted(9468, None)
        finally:
            first.stop()
        second = Gmemtop("-b", "-d", "0.3", "--openmetrics", "9469")
        try:
            after = wait_converted(9469, {k[1] for k in before})
            out, _ = load.communicate(timeout=300)
            truth = json.loads(out)
            page, wrong = settled(metrics_page(9469), truth,
                                  kernel_only=True)
        finally:
            second.stop()
    finally:
        load.kill()
        load.wait()
    went_back = {k: (v, after.get(k)) for k, v in before.items()
                 if after.get(k, -1) < v}
    if went_back:
        return f"the second run went back: {went_back}"
    if wrong:
        return "; ".join(wrong)
    got = values(page)
    seen = sum(got.get(("kvm_gmem_conversion_latency_seconds_count",
                        vm["ino"]), 0) for vm in truth["vms"])
    done = sum(vm["conversions_to_private"] + vm["conversions_to_shared"]
               for vm in truth["vms"])
    return None if seen < done else \
        f"the second run saw all {done} conversions: nothing to prove"


def main():
    checks = [(c.__name__, c) for c in (
        check_openmetrics_counts_what_gmemload_did,
        check_snoop_serves_metrics_and_writes_the_textfile,
        check_gmemlat_serves_metrics_while_running,
        check_reset_key_keeps_exported_counters,
        check_restarted_gmemtop_exports_the_kernel_s_counts)]
    return tap.run(checks)


if __name__ == "__main__":
    sys.exit(main())
