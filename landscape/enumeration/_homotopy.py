"""Route 2 of the enumeration: PHCpack's homotopy continuation, run per support pattern,
its real end points certified by Krawczyk and matched to route 1's orbits."""
from __future__ import annotations

import time

import numpy as np

from ._backends import BackendError, msolve_degree, run_phc
from ._krawczyk import krawczyk

__all__ = ["phc_route"]


def phc_route(problem, sq, S, orbits, points, *, seed, timeout):
    """Homotopy route: ``phc -b`` once per support pattern (the set of tasks whose block
    is non-zero; blocks outside it are set to 0), because a polyhedral homotopy only
    finds solutions with every coordinate non-zero.  Real end points are polished and
    certified by Krawczyk on the full square system, then matched to route 1's orbits."""
    from itertools import combinations

    T, d, k = problem.T, problem.d, problem.k
    g = sq.system
    t0 = time.perf_counter()
    distinct_total, paths, real_pts = 1, 0, [np.zeros(len(g.gens))]  # U = 0 is always a solution
    for size in range(1, T + 1):
        for supp in combinations(range(T), size):
            keep = [m for m, f in enumerate(g.free) if f[0] in supp]
            drop = [g.gens[m] for m, f in enumerate(g.free) if f[0] not in supp]
            polys = []
            for m in keep:
                p = g.polys[m]
                for x in drop:
                    p = p.subs(x, 0)
                polys.append(p)
            names = [g.names[m] for m in keep]
            text = f"{len(polys)} {len(names)}\n" + "".join(str(p).replace("**", "^") + ";\n" for p in polys)
            out = run_phc(text, names, timeout=timeout, seed=seed)
            paths += out.paths
            sols = out.solutions
            if not len(sols):
                continue
            ok = np.all(np.isfinite(sols), axis=1) & (np.abs(sols).max(axis=1) < 1e8)
            ok &= np.array(["regular" in f for f in out.flags], dtype=bool)
            distinct = []
            for s_ in sols[ok]:
                if not any(np.linalg.norm(s_ - q) <= 1e-6 * (1 + np.linalg.norm(q)) for q in distinct):
                    distinct.append(s_)
            distinct_total += len(distinct)
            for s_ in distinct:
                if np.max(np.abs(s_.imag)) <= 1e-7 * (1 + np.max(np.abs(s_))):
                    full = np.zeros(len(g.gens))
                    full[keep] = s_.real
                    real_pts.append(full)
    cert, boxes = 0, []
    orbit_hits = [0] * len(orbits)
    refs = [U @ np.swapaxes(U, 1, 2) for U in points]
    unmatched = 0
    for x in real_pts:
        x = sq.compiled.newton(sq.pack(sq.unpack(x)) if sq.lagrange else x)
        kr = krawczyk(sq.compiled, x)
        if not kr.certified:
            continue
        if any(np.max(np.abs(kr.center - c)) <= r + kr.radius for c, r in boxes):
            continue
        boxes.append((kr.center, kr.radius))
        cert += 1
        U = sq.unpack(kr.center)
        X = U @ np.swapaxes(U, 1, 2)
        dists = [np.max(np.abs(X - R)) for R in refs]
        j = int(np.argmin(dists)) if dists else -1
        if j >= 0 and dists[j] <= 1e-7 * (1 + np.max(np.abs(X))):
            orbit_hits[j] += 1
        else:
            unmatched += 1
    u_degree = None
    try:
        u_degree = msolve_degree(g.msolve_text(), g.names, timeout=timeout)
    except BackendError:
        pass
    expected = [o["copies"] for o in orbits] if k == 1 else None
    agrees = unmatched == 0 and all(h > 0 for h in orbit_hits) and (expected is None or orbit_hits == expected)
    return {
        "paths": paths, "seconds": round(time.perf_counter() - t0, 3),
        "finite_regular_distinct": distinct_total,
        "real_certified": cert, "unmatched_real": unmatched, "orbits_found": int(sum(h > 0 for h in orbit_hits)),
        "u_system_degree": u_degree,
        "complex_count_matches_degree": (u_degree is not None and distinct_total == u_degree),
        "agrees": bool(agrees),
    }
