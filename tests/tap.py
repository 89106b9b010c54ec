"""A few lines of TAP for the Python tests: one "ok"/"not ok" per check,
a check being a function that returns None or what went wrong."""


class Skip(Exception):
    """Raised by a check that cannot run on this kernel, saying why."""


def run(checks):
    """Runs (name, check) pairs; returns the exit status."""
    print("TAP version 13")
    print(f"1..{len(checks)}")
    failed = 0
    for i, (name, check) in enumerate(checks, 1):
        try:
            problem = check()
        except Skip as e:
            print(f"ok {i} {name} # SKIP {e}")
            continue
        except Exception as e:  # a crash is a failure, not an abort
            problem = f"{type(e).__name__}: {e}"
        if problem:
            failed += 1
            print(f"# {name}: {problem}")
        print(f"{'not ' if problem else ''}ok {i} {name}")
    return 1 if failed else 0
