"""Overhead per unit of the execution backends (``landscape.runtime.executor``).

Run ``python benchmarks/bench_executor.py [--units N] [--repeat R] [--out FILE]``.

* Trivial units (a few microseconds of work, a small array as result) run through
  ``run_units`` in this process, in a pool of 2 local processes and on a local Ray
  instance (2 CPUs), each with a result store in a temporary folder. The per-unit
  overhead is the wall time per unit; the one-off start (pool spawn, ``ray.init``) is
  measured apart.
* A figure smoke: ``figure1 --smoke``'s compute on the local backend (in this process)
  and on Ray, on a fresh store each time, with the arrays checked identical.

Ray is skipped (and said so) when it is not installed.
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

from landscape.runtime.executor import LocalExecutor, Unit, run_units  # noqa: E402
from landscape.runtime.atomic import atomic_write_text  # noqa: E402

#: Local Ray instance of the benchmark: the 2 cores of this project's machines.
RAY_CPUS = 2


def trivial(seed: int) -> dict:
    """A unit doing almost nothing: what is measured is the backend's own cost."""
    return {"seed": seed, "x": np.full(4, float(seed))}


def _units(n: int, tag: str) -> list[Unit]:
    return [Unit(f"{tag}-{i}", trivial, {"seed": i}) for i in range(n)]


def _timed(units, executor, store: bool = True) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_units(units, executor=executor, store=Path(tmp) / "store" if store else None)
        return time.perf_counter() - t0


def bench_trivial(n: int, repeat: int, ray_executor) -> dict:
    out: dict = {"units": n}
    local = min(_timed(_units(n, "a"), LocalExecutor(1)) for _ in range(repeat))
    out["local_in_process_ms_per_unit"] = 1e3 * local / n
    # the store's share: an atomic, fsync-ed JSON file per unit, read back
    bare = min(_timed(_units(n, "a"), LocalExecutor(1), store=False) for _ in range(repeat))
    out["local_in_process_no_store_ms_per_unit"] = 1e3 * bare / n
    # a pool is started per sweep: its spawn is part of every pooled run
    pool = min(_timed(_units(n, "b"), LocalExecutor(2)) for _ in range(repeat))
    out["local_pool2_ms_per_unit_including_spawn"] = 1e3 * pool / n
    one = min(_timed(_units(2, "c"), LocalExecutor(2)) for _ in range(repeat))
    out["local_pool2_start_s"] = one
    if ray_executor is not None:
        _timed(_units(2 * RAY_CPUS, "warm"), ray_executor)  # workers registered
        ray_t = min(_timed(_units(n, "r"), ray_executor) for _ in range(repeat))
        out["ray_ms_per_unit"] = 1e3 * ray_t / n
        ray_bare = min(_timed(_units(n, "r"), ray_executor, store=False) for _ in range(repeat))
        out["ray_no_store_ms_per_unit"] = 1e3 * ray_bare / n
    return out


def bench_figure1_smoke(repeat: int, ray_executor) -> dict:
    from figures._synthetic import _LINEAR_SMOKE, compute_figure1

    def run(ex):
        best, data = float("inf"), None
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                data = compute_figure1(dict(_LINEAR_SMOKE), Path(tmp), False, executor=ex)
                best = min(best, time.perf_counter() - t0)
        return best, data

    out: dict = {}
    out["local_s"], ref = run(LocalExecutor(1))
    out["points"] = len(ref["points"])
    if ray_executor is not None:
        run(ray_executor)  # workers import the toolkit once
        out["ray_s"], got = run(ray_executor)
        arrays = [k for k, v in ref.items() if isinstance(v, np.ndarray)]
        out["identical"] = all(np.array_equal(ref[k], got[k]) and ref[k].dtype == got[k].dtype for k in arrays)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=200, help="trivial units per run (default 200)")
    ap.add_argument("--repeat", type=int, default=3, help="best of R runs (default 3)")
    ap.add_argument("--out", default=None, metavar="FILE", help="write the measurements as JSON here")
    ap.add_argument("--no-ray", action="store_true", help="local backends only")
    args = ap.parse_args(argv)
    if args.units < 1 or args.repeat < 1:
        print("error: --units and --repeat must be >= 1", file=sys.stderr)
        return 2
    if args.out is not None and not Path(args.out).resolve().parent.is_dir():
        print(f"error: the folder of --out {args.out} does not exist", file=sys.stderr)
        return 2
    ray_executor, ray_start = None, None
    if not args.no_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray is not installed: measuring the local backends only", file=sys.stderr)
        else:
            from landscape.runtime.ray_executor import RayExecutor

            t0 = time.perf_counter()
            ray_executor = RayExecutor(num_cpus=RAY_CPUS)
            ray_start = time.perf_counter() - t0
    try:
        machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                   "load_average_1min": os.getloadavg()[0]}
        res = {"machine": machine,
               "ray_init_s": ray_start,
               "trivial": bench_trivial(args.units, args.repeat, ray_executor),
               "figure1_smoke": bench_figure1_smoke(args.repeat, ray_executor)}
    finally:
        if ray_executor is not None:
            ray_executor.close()
    t = res["trivial"]
    print(f"trivial units ({t['units']}, with store): in process {t['local_in_process_ms_per_unit']:.2f} ms/unit "
          f"({t['local_in_process_no_store_ms_per_unit']:.3f} without), "
          f"2-process pool {t['local_pool2_ms_per_unit_including_spawn']:.2f} ms/unit "
          f"(start {t['local_pool2_start_s']:.2f} s)"
          + (f", Ray {t['ray_ms_per_unit']:.2f} ms/unit ({t['ray_no_store_ms_per_unit']:.2f} without; "
             f"ray.init {ray_start:.1f} s)" if "ray_ms_per_unit" in t else ""))
    f = res["figure1_smoke"]
    print(f"figure1 --smoke ({f['points']} points): local {f['local_s']:.2f} s"
          + (f", Ray {f['ray_s']:.2f} s, identical arrays: {f['identical']}" if "ray_s" in f else ""))
    if args.out:
        atomic_write_text(args.out, json.dumps(res, indent=2) + "\n")
    return 0 if res["figure1_smoke"].get("identical", True) else 1


if __name__ == "__main__":
    sys.exit(main())
