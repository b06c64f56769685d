"""Calibration of the audit's up-front estimate (issue 17, item 6): estimate vs measured.

For every size of :data:`GRID` the benchmark writes a planted instance
(``landscape.random_instance``, model M1, with its truth) to a temporary ``.npz``, runs
``python -m landscape audit FILE --rank k --starts N --out DIR --quiet`` (with
``--no-plots`` / ``--no-certify`` where the grid point says so) in a child process of its
own with one BLAS thread, and reads the child's CPU time (user + system, its own
children included) and peak resident memory from ``os.wait4`` -- the whole command,
imports and report included.  CPU time, not wall time: the estimate is for one idle
core, and CPU seconds of a single-threaded process do not grow with the load of a
shared machine the way wall time does.

Next to each measurement it prints :func:`landscape.estimate_audit_cost` (the seconds
and bytes that the audit compares with ``--max-seconds`` and the available memory) and
the ratios measured / estimated, which must lie in [1/2, 2] (exit 1 otherwise).
``--out FILE`` writes the record (grid, estimates, measurements, versions); the
committed one is ``benchmarks/records/estimates.json``, which
``tests/test_estimates_record.py`` checks against the estimator of the checkout.

Run ``python benchmarks/bench_estimates.py [--only NAME ...] [--out FILE]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: name, (d, T, k), starts, options.  Spans large T (d = 3), large d (T = 3), k = 1, 2,
#: 3, the dense and Hessian-vector-product curvature, the default methods, the flags
#: that change the work (plots, certificates) and a task file without the truth (R3.1
#: then checked on every pair of tasks).  About 5 minutes of one core in all (20-25
#: minutes of wall time on the shared 2-core machine under a load of 7-9).
GRID = [
    ("tiny", (3, 2, 1), 20, {}),
    ("small", (10, 3, 1), 100, {}),
    ("small-bare", (10, 3, 1), 100, {"plots": False, "certify": False}),
    ("mid", (50, 10, 1), 20, {"plots": False}),
    ("T200", (3, 200, 1), 20, {}),
    ("T450", (3, 450, 1), 4, {}),
    ("T600-tasks", (3, 600, 1), 4, {"truth": False}),
    ("T1000", (3, 1000, 1), 10, {}),
    ("d500", (500, 3, 1), 10, {}),
    ("d2000", (2000, 3, 1), 10, {}),
    ("d1000x30", (1000, 3, 1), 30, {"plots": False}),
    ("k2-small", (30, 3, 2), 20, {}),
    ("k2-hvp", (200, 3, 2), 10, {}),
    ("k2-d1000", (1000, 3, 2), 6, {}),
    ("k3-small", (10, 4, 3), 20, {}),
    ("k3-hvp", (300, 3, 3), 6, {}),
]

TOLERANCE = 2.0


def grid_point(name: str, dims, starts: int, opts: dict) -> dict:
    """One size of the grid: the audit's arguments, and whether it enumerates (as the audit decides)."""
    from landscape._audit.run import enumeration_runs

    d, T, k = dims
    return {"name": name, "d": d, "T": T, "k": k, "starts": starts, "plots": opts.get("plots", True),
            "certify": opts.get("certify", True), "truth_known": opts.get("truth", True),
            "enumeration": enumeration_runs("auto", T, d), "seed": opts.get("seed", 0)}


def estimate(point: dict) -> dict:
    """The estimator of this checkout at one grid point (what the record stores)."""
    import landscape as ls

    c = ls.estimate_audit_cost(point["d"], point["T"], point["k"], point["starts"], plots=point["plots"],
                               certify=point["certify"], truth_known=point["truth_known"],
                               enumeration=point["enumeration"])
    return {"seconds": c.seconds, "bytes": c.bytes, "curvature": c.curvature}


def measure(point: dict) -> dict:
    """Run the audit command of ``point`` in a child process; its CPU time and peak RSS."""
    import numpy as np

    import landscape as ls

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        inst = ls.random_instance(np.random.default_rng(point["seed"]), point["d"], point["T"], point["k"])
        if point["truth_known"]:
            f = Path(tmp) / "tasks.npz"
            np.savez(f, A_star=inst.A_star, U_star=inst.U_star)
        else:  # the task matrices alone: R3.1 is then checked on every pair of tasks
            f = Path(tmp) / "tasks.npy"
            np.save(f, inst.problem.tasks)
        cmd = [sys.executable, "-m", "landscape", "audit", str(f), "--rank", str(point["k"]),
               "--starts", str(point["starts"]), "--seed", str(point["seed"]), "--out", str(Path(tmp) / "out"),
               "--quiet"]
        if not point["plots"]:
            cmd.append("--no-plots")
        if not point["certify"]:
            cmd.append("--no-certify")
        with open(Path(tmp) / "log", "w+") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            log.seek(0)
            text = log.read()
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{point['name']}: exit {proc.returncode}: {text.strip().splitlines()[-1:]}")
        report = json.loads((Path(tmp) / "out" / "report.json").read_text())
        timing = json.loads((Path(tmp) / "out" / "run.json").read_text())["timing"]
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall, "peak_bytes": ru.ru_maxrss * 1024,
            "exit": proc.returncode, "curvature": report["settings"]["curvature"],
            "spurious_candidates": report["summary"]["spurious_candidates"],
            "enumerated": bool(report["enumeration"].get("ran")), "truth_known": report["input"]["truth_known"],
            "n_classes": report["summary"]["n_classes"],
            "audit_wall_s": {k: round(v, 3) for k, v in timing.items() if isinstance(v, (int, float))}}


def versions() -> dict:
    import numpy
    import scipy

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
            "platform": platform.platform(), "cpus": os.cpu_count(), "commit": commit}


def ratios(est: dict, meas: dict) -> dict:
    return {"time": meas["cpu_s"] / est["seconds"], "memory": meas["peak_bytes"] / est["bytes"]}


def within(r: dict, tol: float = TOLERANCE) -> bool:
    return all(1.0 / tol <= v <= tol for v in r.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=None, choices=[g[0] for g in GRID], help="grid points to run")
    ap.add_argument("--out", default=None, help="write the record here (JSON)")
    args = ap.parse_args(argv)
    rows, ok = [], True
    for name, dims, starts, opts in GRID:
        if args.only and name not in args.only:
            continue
        point = grid_point(name, dims, starts, opts)
        est = estimate(point)
        meas = measure(point)
        r = ratios(est, meas)
        ok &= within(r)
        print(f"{name:10s} (d, T, k) = {dims} x {starts:3d} starts{'' if point['plots'] else ', no plots'}"
              f"{'' if point['certify'] else ', no certificates'}: CPU {meas['cpu_s']:7.1f} s (estimate "
              f"{est['seconds']:7.1f} s, ratio {r['time']:.2f}); peak {meas['peak_bytes'] / 2**30:.3f} GiB "
              f"(estimate {est['bytes'] / 2**30:.3f} GiB, ratio {r['memory']:.2f}); {est['curvature']}; "
              f"wall {meas['wall_s']:.1f} s", flush=True)
        rows.append({"point": point, "estimate": est, "measured": meas, "ratios": r})
    print(f"total CPU {sum(r['measured']['cpu_s'] for r in rows):.0f} s; load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"{'all' if ok else 'NOT all'} ratios within [1/{TOLERANCE:g}, {TOLERANCE:g}]")
    if args.out:
        from landscape.runtime.atomic import atomic_write_text

        record = {"tool": "benchmarks/bench_estimates.py", "tolerance": TOLERANCE, "versions": versions(),
                  "loadavg_end": list(os.getloadavg()), "rows": rows}
        atomic_write_text(Path(args.out), json.dumps(record, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
