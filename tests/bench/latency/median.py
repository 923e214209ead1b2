#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a benchmark that writes --json FILE several times and writes the
median of each figure (value and baseline alike), the value of each run,
and the median of the runs' differences between value and baseline
(`paired_difference`): each run measures both, one after the other, so
what other processes do to the machine from one run to the next cancels
out of the difference, as it does not out of two separate medians.

  median.py --runs N --json OUT -- BENCHMARK [ARGS...]
"""

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", required=True)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            out = os.path.join(tmp, "%d.json" % i)
            subprocess.run(cmd + ["--json", out], check=True)
            with open(out) as f:
                runs.append(json.load(f))
    merged = dict(copy.deepcopy(runs[0]), runs=args.runs)
    for k, fig in enumerate(merged["results"]):
        per_run = [r["results"][k] for r in runs]
        for field in ("value", "baseline"):
            fig[field] = statistics.median(p[field] for p in per_run)
        fig["runs"] = [p["value"] for p in per_run]
        fig["paired_difference"] = statistics.median(p["value"] - p["baseline"]
                                                     for p in per_run)
    with open(args.json, "w") as f:
        json.dump(merged, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
