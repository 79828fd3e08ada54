#!/usr/bin/env python3
"""Medians over several benchmark logs: bench/summarize.py LOG [LOG...]

Reads the `SUMMARY <group> key=value ...` lines that bench_abi_call and
http_send/run.sh print, and shows, per key, the median and every run's value.
"""
import statistics
import sys
from collections import defaultdict


def main(paths):
    values = defaultdict(list)  # (group, key) -> [float]
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("SUMMARY "):
                    continue
                _, group, *pairs = line.split()
                for pair in pairs:
                    key, _, value = pair.partition("=")
                    values[(group, key)].append(float(value))
    if not values:
        sys.exit("no SUMMARY lines found")
    print(f"{len(paths)} run(s)")
    print(f"{'group':16} {'key':24} {'median':>12}  runs")
    for (group, key), vals in values.items():
        runs = " ".join(f"{v:g}" for v in vals)
        print(f"{group:16} {key:24} {statistics.median(vals):12.6g}  {runs}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
