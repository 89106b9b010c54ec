#!/usr/bin/env python3
"""Whether two runs of make bench agree: every figure and every verdict.

    compare.py A/benchmarks.json B/benchmarks.json [-v]

A figure (a median with its interquartile range) agrees when the two
ranges overlap once each is widened by the resolution the tables are read
at, 0.5% (--resolution): each run's spread is the measure of its own
noise, so a difference within it is no difference, and an instruction
count, whose spread is often nil, repeats to within 0.1% (a timer
interrupt inside one ioctl).  A verdict of the targets table
agrees when both runs give the same one.  Prints the figures that do not
agree and every verdict that differs (all figures with -v), how far each
part's figures moved from A to B (a host that got slower between the runs
moves every wall-clock figure alike, which a ratio within one run does
not see), then a count; exits 1 when a verdict differs, 0 otherwise.
"""
import argparse
import json
import statistics
import sys


def spreads(node, path=()):
    """(path, spread) of every figure in a benchmarks.json tree."""
    if isinstance(node, dict):
        if {"median", "q1", "q3"} <= node.keys():
            yield path, node
            return
        for key, child in node.items():
            yield from spreads(child, path + (str(key),))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from spreads(child, path + (str(i),))


def overlap(a, b, resolution):
    lo, hi = 1 - resolution, 1 + resolution
    return a["q1"] * lo <= b["q3"] * hi and b["q1"] * lo <= a["q3"] * hi


def verdicts(data):
    """{target name: verdict} from the targets table."""
    out = {}
    for group, items in data["targets"].items():
        for item in items if isinstance(items, list) else [items]:
            name = ", ".join(f"{k} {v}" for k, v in item.items()
                             if k not in ("ratio", "ratio_spread", "met"))
            out[f"{group}: {name}"] = item.get("met")
    return out


def fmt(s):
    return f"{s['median']:.4g} [{s['q1']:.4g}-{s['q3']:.4g}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--resolution", type=float, default=0.005)
    args = ap.parse_args()
    with open(args.a) as f:
        a = json.load(f)
    with open(args.b) as f:
        b = json.load(f)

    b_figures = dict(spreads(b))
    compared = differ = 0
    moved, agreed = {}, {}
    for path, sa in spreads(a):
        sb = b_figures.get(path)
        if sb is None:
            continue
        if sa["median"] > 0 and sb["median"] > 0:
            moved.setdefault(path[0], []).append(sb["median"] / sa["median"])
        compared += 1
        agree = overlap(sa, sb, args.resolution)
        differ += not agree
        agreed.setdefault(path[0], []).append(agree)
        if args.verbose or not agree:
            print(f"{'agree ' if agree else 'DIFFER'} {'/'.join(path)}: "
                  f"{fmt(sa)} against {fmt(sb)}")

    for part, agree in agreed.items():
        ratios = moved.get(part, [1.0])
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else \
            ratios * 3
        print(f"{part}: {sum(agree)} of {len(agree)} agree; B/A "
              f"{statistics.median(ratios):.3f} [{q[0]:.3f}-{q[2]:.3f}]")

    va, vb = verdicts(a), verdicts(b)
    changed = [k for k in va if k in vb and va[k] != vb[k]]
    for k in changed:
        print(f"VERDICT {k}: {va[k]} against {vb[k]}")
    print(f"{compared - differ} of {compared} figures agree within their "
          f"spread; {len(va) - len(changed)} of {len(va)} verdicts agree")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
