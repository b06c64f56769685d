"""Benchmark of ``landscape.audit`` (issue 4 performance targets).

* (d, T, k) = (10, 3, 1) with 200 starts: target under 20 s.
* (d, T, k) = (200, 3, 2) with 20 starts, Hessian-vector products only (the dense
  Schur complement would need ~1.5 GiB): target under 2 minutes.

Run ``python benchmarks/bench_audit.py [--repeat N] [--json FILE]``.  Each case runs
the full audit (search with all methods, classification, deduplication, certificates,
report and plots written to a temporary directory) from a fixed seed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import landscape as ls  # noqa: E402

CASES = [
    # name, (d, T, k), starts, target seconds
    ("small: (d,T,k)=(10,3,1), 200 starts", (10, 3, 1), 200, 20.0),
    ("large: (d,T,k)=(200,3,2), 20 starts, HVP", (200, 3, 2), 20, 120.0),
]


def run_case(dims, starts, seed):
    d, T, k = dims
    inst = ls.random_instance(np.random.default_rng(seed), d, T, k)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rep = ls.audit(inst, k, starts=starts, seed=seed, out=Path(tmp) / "audit")
        wall = time.perf_counter() - t0
    sm = rep.data["summary"]
    return {
        "wall_s": wall,
        "search_s": rep.data["timing"]["search_s"],
        "curvature": rep.data["settings"]["curvature"],
        "counts": sm["counts"],
        "A_star_recovered": sm["A_star_recovered"],
        "theory_agrees": rep.data["theory"]["agrees"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the measurements here")
    ap.add_argument("--only", choices=("small", "large"), default=None)
    args = ap.parse_args(argv)
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
           "cases": []}
    ok = True
    for name, dims, starts, target in CASES:
        if args.only and not name.startswith(args.only):
            continue
        runs = [run_case(dims, starts, args.seed + r) for r in range(args.repeat)]
        best = min(r["wall_s"] for r in runs)
        passed = best < target
        ok &= passed
        print(f"{name}: best {best:.1f} s of {args.repeat} (target {target:.0f} s) "
              f"{'OK' if passed else 'TOO SLOW'}; curvature={runs[0]['curvature']}, counts={runs[0]['counts']}, "
              f"A* recovered={runs[0]['A_star_recovered']}")
        out["cases"].append({"name": name, "dims": dims, "starts": starts, "target_s": target,
                             "best_wall_s": best, "runs": runs, "passed": passed})
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
