"""Benchmark of ``landscape.audit`` (issue 4 and issue 11 section 4 targets).

* (d, T, k) = (10, 3, 1) with 200 starts: target under 20 s.
* (d, T, k) = (200, 3, 2) with 20 starts, Hessian-vector products only: under 2 minutes.
* (d, T, k) = (1000, 3, 1) with 10 starts: under 1 minute.
* (d, T, k) = (2000, 3, 1) with 10 starts: under 1 minute and 1.2 GiB (issue 21).

``--scaling`` (issue 21): the full audit *with its plots* at (d, 3, 1), 10 starts, for
d in ``--sizes`` (default 500 1000 2000 4000), each in a child process of its own:
wall time, CPU time, peak resident memory and the time spent drawing the plots, then
the growth exponents fitted to ``time ~ d^a`` and ``peak ~ d^b`` (least squares on the
log-log points).  Targets: (2000, 3, 1) under 1.2 GiB and 60 s; (4000, 3, 1) under 4 GiB;
plots under 20% of the audit's time at every size.

and the ratio against the dense per-point evaluation that the audit used before the
factored objective (``landscape._factored``), timed in the same run at (500, 3, 1)
with 10 starts (``--ratio-d`` changes the size; the dense path needed 88 s at d = 1000
and was killed after 10 minutes at d = 2000).

Each case runs in a fresh subprocess (so that its peak resident memory is its own)
the full audit from a fixed seed: search with all methods, classification,
deduplication, certificates and the report (no plots), and prints the up-front
estimate of :func:`landscape.estimate_audit_cost` next to the measurement.

Run ``python benchmarks/bench_audit.py [--only NAME] [--scaling [--sizes D ...]] [--out FILE]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [
    # name, (d, T, k), starts, target seconds, memory target (GiB) or None
    ("small", (10, 3, 1), 200, 20.0, None),
    ("large", (200, 3, 2), 20, 120.0, None),
    ("d1000", (1000, 3, 1), 10, 60.0, None),
    ("d2000", (2000, 3, 1), 10, 60.0, 1.2),
]

#: Scaling targets (issue 21): peak memory (GiB) and wall time (s) by d, T = 3, k = 1,
#: 10 starts; the plots' share of the audit's time at every size.
SCALING_PEAK_GIB = {2000: 1.2, 4000: 4.0}
SCALING_WALL_S = {2000: 60.0}
SCALING_PLOT_SHARE = 0.20

_SCALING_CHILD = r"""
import json, resource, sys, tempfile, time
import numpy as np
import landscape as ls
d, T, k, starts, seed = json.loads(sys.argv[1])
# time spent in the plot functions, wherever the audit keeps them (the report's own
# timing when it records one)
plot_s = [0.0]
import importlib, pkgutil
mods = [importlib.import_module("landscape._audit")]
pkg = getattr(mods[0], "__path__", None)
if pkg is not None:
    mods += [importlib.import_module(f"landscape._audit.{m.name}") for m in pkgutil.iter_modules(pkg)]
def timed(f):
    def g(*a, **kw):
        t0 = time.perf_counter()
        try:
            return f(*a, **kw)
        finally:
            plot_s[0] += time.perf_counter() - t0
    return g
seen = {}
for m in mods:
    for name in [n for n in vars(m) if n.startswith("_plot_")]:
        f = getattr(m, name)
        seen.setdefault(id(f), timed(f))
        setattr(m, name, seen[id(f)])
inst = ls.random_instance(np.random.default_rng(seed), d, T, k)
r0 = resource.getrusage(resource.RUSAGE_SELF)
with tempfile.TemporaryDirectory() as out:
    t0 = time.perf_counter()
    rep = ls.audit(inst, k, starts=starts, seed=seed, out=out, plots=True)
    wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
sm = rep.data["summary"]
timing = rep.data["timing"]
print(json.dumps({"wall_s": wall, "cpu_s": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
                  "search_s": timing["search_s"], "plots_s": timing.get("plots_s", plot_s[0]),
                  "plots": rep.data["plots"], "peak_rss_gib": r1.ru_maxrss / 2**20,
                  "counts": sm["counts"], "m1_compatible": rep.data["model_m1"]["compatible"],
                  "A_star_recovered": sm["A_star_recovered"]}))
"""

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


def run_case(dims, starts, seed, dense=False, code=_CHILD):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    arg = json.dumps([*dims, starts, seed] + ([dense] if code is _CHILD else []))
    out = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fit_exponent(xs, ys) -> float:
    """Slope of the least-squares line through ``(log x, log y)``."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    return float(np.polyfit(lx, ly, 1)[0])


def run_scaling(sizes, starts, seed) -> tuple[bool, dict]:
    rows, ok = [], True
    for d in sizes:
        r = run_case((d, 3, 1), starts, seed, code=_SCALING_CHILD)
        share = r["plots_s"] / r["wall_s"]
        passed = (share < SCALING_PLOT_SHARE and r["peak_rss_gib"] < SCALING_PEAK_GIB.get(d, float("inf"))
                  and r["wall_s"] < SCALING_WALL_S.get(d, float("inf")))
        ok &= passed
        targets = ", ".join(x for x in (f"{SCALING_PEAK_GIB[d]:g} GiB" if d in SCALING_PEAK_GIB else "",
                                        f"{SCALING_WALL_S[d]:g} s" if d in SCALING_WALL_S else "") if x)
        print(f"d = {d:5d} (T = 3, k = 1, {starts} starts, plots): wall {r['wall_s']:6.1f} s, CPU {r['cpu_s']:6.1f} s, "
              f"peak {r['peak_rss_gib']:.2f} GiB, plots {1e3 * r['plots_s']:.0f} ms = {100 * share:.1f}% "
              f"(target < {100 * SCALING_PLOT_SHARE:.0f}%{'; ' + targets if targets else ''}); "
              f"{'OK' if passed else 'MISSED'}; counts={r['counts']}, M1 compatible={r['m1_compatible']}, "
              f"A* recovered={r['A_star_recovered']}", flush=True)
        rows.append({"d": d, **r, "plot_share": share, "passed": passed})
    res = {"rows": rows}
    if len(rows) >= 2:
        ds = [r["d"] for r in rows]
        res["time_exponent"] = fit_exponent(ds, [r["wall_s"] for r in rows])
        res["cpu_exponent"] = fit_exponent(ds, [r["cpu_s"] for r in rows])
        res["peak_exponent"] = fit_exponent(ds, [r["peak_rss_gib"] for r in rows])
        print(f"fitted growth: wall ~ d^{res['time_exponent']:.2f}, CPU ~ d^{res['cpu_exponent']:.2f}, "
              f"peak memory ~ d^{res['peak_exponent']:.2f} (d = {ds[0]}..{ds[-1]}; T d^2 data grows like d^2)")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return ok, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", "--json", dest="out", default=None, help="write the measurements here (JSON)")
    ap.add_argument("--only", choices=[c[0] for c in CASES] + ["ratio"], default=None)
    ap.add_argument("--ratio-d", type=int, default=500, help="d of the old-vs-new comparison (T=3, k=1, 10 starts)")
    ap.add_argument("--scaling", action="store_true", help="only the scaling run: audits with plots against d")
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000], help="d of --scaling")
    ap.add_argument("--starts", type=int, default=10, help="starts of --scaling")
    args = ap.parse_args(argv)
    if any(d < 2 for d in args.sizes) or args.starts < 1:
        print("error: --sizes must be at least 2 and --starts positive", file=sys.stderr)
        return 2
    if args.scaling:
        ok, res = run_scaling(sorted(args.sizes), args.starts, args.seed)
        if args.out:
            from landscape.runtime.atomic import atomic_write_text

            atomic_write_text(Path(args.out), json.dumps({"scaling": res, "loadavg": os.getloadavg()}, indent=1))
        return 0 if ok else 1
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
