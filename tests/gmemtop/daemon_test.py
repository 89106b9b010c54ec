#!/usr/bin/python3
"""gmemtop as its systemd unit runs it, in the VM.

make install (PREFIX a directory of the test's) writes the unit, and its
ExecStart runs as systemd runs it: the command line as the unit has it,
as root within the unit's CapabilityBoundingSet and NoNewPrivileges, in
/, with a clean environment, stdin /dev/null and its output where the
journal would take it (files here).  Its textfile directory is a tmpfs
over /var/lib/prometheus: the VM's / is the host's, read-only.

- It prints nothing, interval after interval, while it writes the
  textfile, which counts what gmemload did (EAGAIN latency too) and
  passes promtool.
- SIGTERM (systemctl stop) ends it within the unit's TimeoutStopSec, with
  status 0, its textfile left whole.

Prints TAP.  Needs root and in-place conversion on (tests/gmemabi.py).
"""
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

from prometheus_client.parser import \
    text_string_to_metric_families as parse_prometheus

import gmemwatch  # first: tests/ on sys.path, for tap
import tap
from metrics_test import gmemload, read_file, settled

UNIT_DIR = "/var/lib/prometheus"
# What systemd gives a service of its own: a PATH, a locale.
ENVIRONMENT = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
               "LANG": "C.UTF-8"}


def install(prefix):
    """The units make install writes for @prefix: {name: {key: value}}."""
    subprocess.run(["make", "-s", "-C",
                    os.path.join(gmemwatch.TOP, "tools", "gmemtop"),
                    "install", f"PREFIX={prefix}"],
                   check=True, stdout=subprocess.DEVNULL)
    units = {}
    unit_dir = os.path.join(prefix, "lib", "systemd", "system")
    for name in os.listdir(unit_dir):
        with open(os.path.join(unit_dir, name)) as f:
            units[name] = dict(line.rstrip("\n").split("=", 1) for line in f
                               if "=" in line and not line.startswith("#"))
    return units


def as_systemd_runs(service):
    """ExecStart's command line under the service's capability bounding
    set and no_new_privs, as setpriv(1) sets them."""
    caps = ",".join("+" + c.lower().removeprefix("cap_")
                    for c in service["CapabilityBoundingSet"].split())
    setpriv = ["setpriv", f"--bounding-set=-all,{caps}", "--inh-caps=-all"]
    if service.get("NoNewPrivileges") == "yes":
        setpriv.append("--no-new-privs")
    return setpriv + ["--", *shlex.split(service["ExecStart"])]


def textfile_of(argv):
    return argv[argv.index("--textfile") + 1]


def wait_written(path, proc, timeout=60):
    """Once gmemtop wrote @path, which it does once its programs are
    attached; False if it exited first."""
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def interval(argv):
    return float(argv[argv.index("-d") + 1]) if "-d" in argv else 1.0


def check_unit_prints_nothing_and_exports_what_gmemload_did():
    prefix = tempfile.mkdtemp()
    service = install(prefix)["gmemtop.service"]
    argv = as_systemd_runs(service)
    path = textfile_of(argv)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", UNIT_DIR], check=True)
    try:
        os.makedirs(os.path.dirname(path))
        return run_unit(argv, service, path)
    finally:
        subprocess.run(["umount", UNIT_DIR])


def run_unit(argv, service, path):
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=err, cwd="/", env=ENVIRONMENT, text=True)
    try:
        start = time.time()
        if not wait_written(path, proc):
            err.seek(0)
            return f"no {path}; exit {proc.poll()}: {err.read()!r}"
        truth = gmemload()
        written, wrong = settled(read_file(path), truth, parse_prometheus,
                                 timeout=3 * interval(argv))
        # Two intervals at least, so that nothing per interval shows.
        time.sleep(max(0, start + 2.5 * interval(argv) - time.time()))
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=float(service["TimeoutStopSec"]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.seek(0)
    err.seek(0)
    printed, said = out.read(), err.read()
    if rc or printed or said:
        return f"exit {rc}, printed {printed[:300]!r}, said {said[:300]!r}"
    if wrong:
        return "textfile: " + "; ".join(wrong)
    with open(path) as f:
        lint = subprocess.run(["promtool", "check", "metrics"], stdin=f,
                              capture_output=True, text=True)
    if lint.returncode:
        return f"promtool: {lint.stdout}{lint.stderr}"
    return None if written else "empty textfile"


def main():
    checks = [(c.__name__, c) for c in (
        check_unit_prints_nothing_and_exports_what_gmemload_did,)]
    return tap.run(checks)


if __name__ == "__main__":
    sys.exit(main())
