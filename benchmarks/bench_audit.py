"""Benchmark of ``landscape.audit`` (issue 4 and issue 11 section 4 targets).

* (d, T, k) = (10, 3, 1) with 200 starts: target under 20 s.
* (d, T, k) = (200, 3, 2) with 20 starts, Hessian-vector products only: under 2 minutes.
* (d, T, k) = (1000, 3, 1) with 10 starts: under 1 minute.
* (d, T, k) = (2000, 3, 1) with 10 starts: under 2 minutes and 2 GiB.

and the ratio against the dense per-point evaluation that the audit used before the
factored objective (``landscape._factored``), timed in the same run at (500, 3, 1)
with 10 starts (``--ratio-d`` changes the size; the dense path needed 88 s at d = 1000
and was killed after 10 minutes at d = 2000).

Each case runs in a fresh subprocess (so that its peak resident memory is its own)
the full audit from a fixed seed: search with all methods, classification,
deduplication, certificates and the report (no plots), and prints the up-front
estimate of :func:`landscape.estimate_audit_cost` next to the measurement.

Run ``python benchmarks/bench_audit.py [--only NAME] [--out FILE]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [
    # name, (d, T, k), starts, target seconds, memory target (GiB) or None
    ("small", (10, 3, 1), 200, 20.0, None),
    ("large", (200, 3, 2), 20, 120.0, None),
    ("d1000", (1000, 3, 1), 10, 60.0, None),
    ("d2000", (2000, 3, 1), 10, 120.0, 2.0),
]

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import landscape as ls
import landscape._factored as lf
d, T, k, starts, seed, dense = json.loads(sys.argv[1])
if dense:
    lf.FACTORED_MIN_D = 10**9  # the dense per-point residuals of the previous code path
inst = ls.random_instance(np.random.default_rng(seed), d, T, k)
est = ls.estimate_audit_cost(d, T, k, starts)
t0 = time.perf_counter()
rep = ls.audit(inst, k, starts=starts, seed=seed, plots=False)
wall = time.perf_counter() - t0
sm = rep.data["summary"]
print(json.dumps({"wall_s": wall, "search_s": rep.data["timing"]["search_s"],
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "estimate_s": est.seconds, "estimate_gib": est.bytes / 2**30,
                  "curvature": rep.data["settings"]["curvature"], "counts": sm["counts"],
                  "A_star_recovered": sm["A_star_recovered"]}))
"""


def run_case(dims, starts, seed, dense=False):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    arg = json.dumps([*dims, starts, seed, dense])
    out = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", "--json", dest="out", default=None, help="write the measurements here (JSON)")
    ap.add_argument("--only", choices=[c[0] for c in CASES] + ["ratio"], default=None)
    ap.add_argument("--ratio-d", type=int, default=500, help="d of the old-vs-new comparison (T=3, k=1, 10 starts)")
    args = ap.parse_args(argv)
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
           "cases": []}
    ok = True
    for name, dims, starts, target, mem in CASES:
        if args.only and args.only != name:
            continue
        r = run_case(dims, starts, args.seed)
        passed = r["wall_s"] < target and (mem is None or r["peak_rss_gib"] < mem)
        ok &= passed
        print(f"{name} {dims} x {starts} starts: {r['wall_s']:.1f} s (target {target:.0f} s), peak "
              f"{r['peak_rss_gib']:.2f} GiB{'' if mem is None else f' (target {mem:g} GiB)'}; estimate "
              f"{r['estimate_s']:.0f} s / {r['estimate_gib']:.2f} GiB; {'OK' if passed else 'MISSED'}; "
              f"curvature={r['curvature']}, counts={r['counts']}, A* recovered={r['A_star_recovered']}")
        out["cases"].append({"name": name, "dims": dims, "starts": starts, "target_s": target, **r, "passed": passed})
    if args.only in (None, "ratio"):
        dims = (args.ratio_d, 3, 1)
        new = run_case(dims, 10, args.seed)
        old = run_case(dims, 10, args.seed, dense=True)
        same = new["counts"] == old["counts"]
        print(f"ratio at {dims} x 10 starts: dense per-point path {old['wall_s']:.1f} s, factored "
              f"{new['wall_s']:.1f} s: {old['wall_s'] / new['wall_s']:.1f}x; peak {old['peak_rss_gib']:.2f} vs "
              f"{new['peak_rss_gib']:.2f} GiB; same counts: {same}")
        ok &= same
        out["ratio"] = {"dims": dims, "dense": old, "factored": new, "speedup": old["wall_s"] / new["wall_s"]}
    if args.out:
        from landscape.runtime.atomic import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
