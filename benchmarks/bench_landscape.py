"""Benchmarks of the landscape core (issue: foundation).

Prints, in one run:
1. analytic dense Hessian of L vs the HIPS autograd Hessian at (d, T, k) = (20, 3, 2),
   as a speed ratio (both timed in this process, best of several repeats);
2. the smallest eigenvalue of S on the quotient by O(k) at (d, T, k) = (500, 3, 2)
   through Hessian-vector products (Lanczos), with its wall time and peak memory,
   asserting that no dense Hessian was formed.

Run: ``.venv/bin/python benchmarks/bench_landscape.py``.
"""
from __future__ import annotations

import resource
import sys
import time
import tracemalloc

import numpy as np

import landscape as ls


def _best_of(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_hessian(d=20, T=3, k=2):
    import autograd
    import autograd.numpy as anp

    rng = np.random.default_rng(0)
    inst = ls.random_instance(rng, d, T, k)
    P = inst.problem
    A = rng.standard_normal((d, d))
    U = rng.standard_normal((T, d, k))
    x = P.pack(A, U)
    tasks = P.tasks

    def L(x):
        A_ = anp.reshape(x[: d * d], (d, d)).T
        total = 0.0
        for t in range(T):
            off = d * d + t * d * k
            Ut = anp.reshape(x[off : off + d * k], (k, d)).T
            total = total + 0.5 * anp.sum((A_ + Ut @ Ut.T - tasks[t]) ** 2)
        return total

    t_an, H = _best_of(lambda: P.hessian(A, U), 20)
    t_ag, H_ag = _best_of(lambda: autograd.hessian(L)(x), 2)
    err = float(np.max(np.abs(H - H_ag)))
    print(f"[hessian] (d,T,k)=({d},{T},{k}) dim={P.dim}")
    print(f"  analytic : {t_an * 1e3:9.2f} ms")
    print(f"  autograd : {t_ag * 1e3:9.2f} ms   (max |diff| = {err:.1e})")
    print(f"  speed-up : {t_ag / t_an:9.1f}x   (target >= 50x)")
    return t_ag / t_an


def bench_lanczos(d=500, T=3, k=2):
    rng = np.random.default_rng(1)
    inst = ls.random_instance(rng, d, T, k)
    P = inst.problem
    U = inst.U_star + 0.1 * rng.standard_normal(inst.U_star.shape)
    assert P.dim_U > ls.DENSE_EIGH_MAX_DIM, "this benchmark must exercise the matrix-free path"
    tracemalloc.start()
    t0 = time.perf_counter()
    spec = ls.reduced_spectrum(P, U, rng=np.random.default_rng(2))
    wall = time.perf_counter() - t0
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    dense_bytes = 8 * P.dim_U**2
    print(f"[lanczos] (d,T,k)=({d},{T},{k}) dim_U={P.dim_U} method={spec.method}")
    print(f"  lambda_min(S | quotient) = {spec.lambda_min_quotient:.6e}  ({spec.n_symmetry} orbit directions removed)")
    print(f"  wall time  : {wall:7.2f} s   (target < 10 s)")
    print(f"  peak numpy allocations (tracemalloc): {peak_traced / 2**20:7.1f} MiB; process max RSS {rss:7.1f} MiB (target < 1024)")
    print(f"  a dense S would need {dense_bytes / 2**20:.0f} MiB; peak allocations stayed below it: {peak_traced < dense_bytes}")
    return wall, peak_traced


def main():
    ratio = bench_hessian()
    wall, peak = bench_lanczos()
    ok = ratio >= 50 and wall < 10 and peak < 2**30
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
