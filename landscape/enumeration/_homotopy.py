"""Route 2 of the enumeration: PHCpack's homotopy continuation, run per support pattern,
its real end points certified by Krawczyk and matched to route 1's orbits."""
from __future__ import annotations

import time

import numpy as np

from ._backends import BackendError, msolve_degree, run_phc
from ._krawczyk import krawczyk
from ._systems import float_tasks, on_support

__all__ = ["phc_route", "param_route"]


def _certify_and_match(sq, real_pts, orbits, points):
    """Polish each real end point by Newton, certify it by Krawczyk on the full square
    system, drop boxes already found, and match each certified point to route 1's orbit by
    its invariant X_t = U_t U_t^T.  Returns ``(boxes, orbit_hits, unmatched)``: the
    certified boxes ``(center, radius)``, hits per orbit, and certified points that match
    no orbit of route 1."""
    boxes = []
    orbit_hits = [0] * len(orbits)
    refs = [U @ np.swapaxes(U, 1, 2) for U in points]
    unmatched = 0
    for x in real_pts:
        kr = krawczyk(sq.compiled, sq.compiled.newton(x))
        if not kr.certified:
            continue
        if any(np.max(np.abs(kr.center - c)) <= r + kr.radius for c, r in boxes):
            continue
        boxes.append((kr.center, kr.radius))
        U = sq.unpack(kr.center)
        X = U @ np.swapaxes(U, 1, 2)
        dists = [np.max(np.abs(X - R)) for R in refs]
        j = int(np.argmin(dists)) if dists else -1
        if j >= 0 and dists[j] <= 1e-7 * (1 + np.max(np.abs(X))):
            orbit_hits[j] += 1
        else:
            unmatched += 1
    return boxes, orbit_hits, unmatched


def phc_route(problem, sq, S, orbits, points, *, seed, timeout):
    """Homotopy route: ``phc -b`` once per support pattern (the set of tasks whose block
    is non-zero; blocks outside it are set to 0), because a polyhedral homotopy only
    finds solutions with every coordinate non-zero.  Real end points are polished and
    certified by Krawczyk on the full square system, then matched to route 1's orbits."""
    from itertools import combinations

    T, k = problem.T, problem.k
    g = sq.system
    t0 = time.perf_counter()
    distinct_total, paths, real_pts = 1, 0, [np.zeros(len(g.gens))]  # U = 0 is always a solution
    for size in range(1, T + 1):
        for supp in combinations(range(T), size):
            keep, polys, names = on_support(g, set(supp))
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
    boxes, orbit_hits, unmatched = _certify_and_match(
        sq, (sq.pack(sq.unpack(x)) if sq.lagrange else x for x in real_pts), orbits, points)
    cert = len(boxes)
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


def param_route(problem, sq, S, orbits, points, *, seed, timeout, threads=1):
    r"""Homotopy route for :math:`k=1`, :math:`T\ge3` when a start file for :math:`(T,d)` is
    committed (:mod:`._param`): one ``phc -p`` parameter homotopy per support, one path per
    sign orbit of the generic instance's solutions, to the given tasks.  Real ends are
    flipped to every sign copy, polished and certified by Krawczyk on the full square
    system, and matched to route 1's orbits.  Returns None without a start file."""
    from ._param import ParamFamily, canonical, good_ends, load_starts, orbit_keys, start_file, track

    T, d, k = problem.T, problem.d, problem.k
    loaded = load_starts(T, d) if k == 1 and T >= 3 else None
    if loaded is None:
        return None
    starts, meta = loaded
    t0 = time.perf_counter()
    S_float = float_tasks(S)
    rng = np.random.default_rng([int(seed), 20])
    real_pts = [np.zeros(len(sq.free))]  # U = 0: the support of size 0
    complex_points, paths, lost, smaller, per_support = 1, 0, 0, 0, []
    for supp, (S0, reps) in starts.items():
        fam = ParamFamily(T, d, supp)
        gamma = complex(rng.standard_normal(), rng.standard_normal())
        ends, diag = track(fam, S0, S_float, reps, gamma / abs(gamma), threads=threads, timeout=timeout)
        paths += len(reps)
        ok = good_ends(ends, diag)
        lost += int((~ok).sum())
        b = len(supp)
        keys, n_orb = [], 0
        for e in ends[ok]:
            u = e.reshape(b, d)
            if np.min(np.max(np.abs(u), axis=1)) <= 1e-8 * (1 + np.max(np.abs(u))):
                smaller += 1  # an end on a smaller support: counted there
                continue
            key = orbit_keys(u[None])[0]
            if any(np.max(np.abs(key - q)) <= 1e-6 * (1 + np.max(np.abs(q))) for q in keys):
                continue
            keys.append(key)
            n_orb += 1
            if np.max(np.abs(u.imag)) <= 1e-7 * (1 + np.max(np.abs(u))):
                u = canonical(u).real
                for signs in np.ndindex(*([2] * b)):
                    full = np.zeros((T, d, 1))
                    for a, t in enumerate(supp):
                        full[t, :, 0] = (-1) ** signs[a] * u[a]
                    real_pts.append(sq.pack(full))
        complex_points += n_orb * 2 ** b
        per_support.append({"support": list(supp), "paths": len(reps), "orbits_at_target": n_orb})
    track_s = time.perf_counter() - t0
    boxes, orbit_hits, unmatched = _certify_and_match(sq, real_pts, orbits, points)
    cert = len(boxes)
    u_degree = None
    try:
        u_degree = msolve_degree(sq.system.msolve_text(), sq.system.names, timeout=timeout)
    except BackendError:
        pass
    expected = [o["copies"] for o in orbits]
    agrees = unmatched == 0 and orbit_hits == expected
    return {
        "method": "parameter homotopy (phc -p) from a generic instance solved by monodromy "
                  f"(start file {start_file(T, d).name}), one path per sign orbit",
        "paths": paths, "paths_if_every_sign_copy_tracked": int(sum(len(r) * 2 ** len(s) for s, (_, r) in starts.items())),
        "lost_paths": lost, "ends_on_smaller_support": smaller,
        "seconds": round(time.perf_counter() - t0, 3), "tracking_seconds": round(track_s, 3),
        "finite_regular_distinct": complex_points,
        "generic_count": meta["degree_u_system"],
        "start_solutions": meta.get("found_count", meta["degree_u_system"]),
        "real_certified": cert, "unmatched_real": unmatched, "orbits_found": int(sum(h > 0 for h in orbit_hits)),
        "u_system_degree": u_degree,
        "complex_count_matches_degree": (u_degree is not None and complex_points == u_degree),
        "agrees": bool(agrees),
        "certified_points": [{"center": c.tolist(), "radius": r} for c, r in boxes],
        "per_support": per_support,
    }
