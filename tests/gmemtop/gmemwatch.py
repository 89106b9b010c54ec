"""gmemtop beside a workload that prints its own ground truth as JSON
(gmemload), for the tests of tests/gmemtop."""
import json
import signal
import subprocess
import time


def start(command):
    """Starts gmemtop (@command, a batch mode) and returns once its first
    report is out: its programs are loaded and attached."""
    top = subprocess.Popen(command, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    top.stdout.readline()
    return top


def stop(top):
    """Ends gmemtop with SIGINT; its stdout and stderr.  Raises if it
    failed."""
    top.send_signal(signal.SIGINT)
    out, err = top.communicate(timeout=30)
    if top.returncode:
        raise RuntimeError(f"gmemtop exited {top.returncode}: {err}")
    return out, err


def watch(command, workload, during=lambda: None):
    """Runs @workload while gmemtop (@command) watches, calling @during
    once gmemtop is attached; the workload's report and gmemtop's stdout
    and stderr, after one more interval."""
    top = start(command)
    try:
        during()
        truth = json.loads(subprocess.run(workload, check=True,
                                          capture_output=True,
                                          text=True).stdout)
        time.sleep(1)
    finally:
        out, err = stop(top)
    return truth, out, err
