r"""Complete enumeration of the real critical points of :math:`G` (issue 20).

Route 1 (Gröbner, msolve)
    The critical :math:`O(k)^T`-orbits are the real PSD solutions of the invariant system
    (:func:`._systems.invariant_system`).  msolve computes its Gröbner basis, the degree
    of the ideal (the number of complex solutions with multiplicity) and certified
    isolating boxes of *all* its real solutions.  Each PSD box is lifted to
    :math:`\mathbf U` (eigen-factor), put on the gauge slice, polished by Newton and
    proved by Krawczyk's test (:mod:`._krawczyk`) to hold exactly one critical point,
    whose invariants are checked to fall in msolve's box.  The list is ``complete`` when
    msolve reports a zero-dimensional system and every real PSD solution is certified.
    (msolve's multi-modular lifting stops when the rational reconstruction stabilises on
    extra primes, a Monte-Carlo criterion; the isolation of the real roots of the lifted
    parametrisation is exact.  The Krawczyk proofs do not depend on it; completeness does.)
Route 2 (homotopy, PHCpack)
    For :math:`k=1`, :math:`T\ge3` with a committed start file (:mod:`._param`): a
    parameter homotopy (``phc -p``) from a generic instance solved once by monodromy, one
    path per sign orbit and support; otherwise ``phc -b`` per support pattern (on the
    slice for :math:`k\ge2`).  Real ends are proved by the same Krawczyk test and matched
    to route 1's orbits; complex ends are counted against the degree of the U-system.
    ``routes=("phc",)`` runs it alone (:mod:`._complete`): every end is proved by a
    complex Krawczyk test, and the list is complete when the certified, pairwise disjoint
    complex solutions are as many as the degree of the U-system; the real orbits then get
    route 1's per-point certificate and classes (:mod:`._points`, without msolve's box).

Gauge
    :math:`k=1`: the sign orbits are finite; every sign copy of an isolated point is
    counted (:math:`2^{\#\{t:u_t\ne0\}}` per orbit), and each copy is certified because
    :math:`u_t\mapsto-u_t` is an exact symmetry of the system (the box of a zero block is
    symmetric about 0, so its unique zero has that block exactly 0).
    :math:`k\ge2`: the orbits are positive-dimensional; the slice "top :math:`k\times k`
    block of every :math:`U_t` lower triangular with non-negative diagonal" meets every
    orbit with invertible top blocks exactly once (LQ decomposition), transversally
    (the slice tangent plus the orbit tangent :math:`U_t\Omega`, :math:`\Omega` skew,
    span everything when the top block is invertible); :math:`\nabla G` is orthogonal to
    the orbit, so the critical points of :math:`G` restricted to the slice are exactly
    the critical orbits met there.  An orbit whose top block is singular is reported as
    not certified.
:math:`T=2`
    :math:`G` depends on :math:`\mathbf U` only through :math:`D_U=U_1U_1^\top-U_2U_2^\top`,
    which the boosts :math:`[U_1,U_2]\mapsto[U_1,U_2]\Lambda`, :math:`\Lambda\in O(k,k)`,
    preserve: every critical point other than :math:`\mathbf U=0` lies on a
    positive-dimensional critical set.  msolve reports the invariant system as
    positive-dimensional, and the result says ``non_isolated``.  For :math:`k=1` the
    boost orbits are enumerated on the slice :math:`u_1^\top u_2=0` (equations
    :math:`X_1X_2=0`): a boost orbit of :math:`(u_1,u_2)` meets it once, transversally,
    unless :math:`u_1=\pm u_2`, and such a critical point needs
    :math:`(S_1-S_2)u_1=0`, impossible when :math:`S_1-S_2` is nonsingular (checked
    exactly).  Each slice point is certified with Krawczyk on the square system
    :math:`(\nabla G+\mu\nabla(u_1^\top u_2),\ u_1^\top u_2)`, whose solutions have
    :math:`\mu=0`.

The per-point certificate, the square systems and the classes are in :mod:`._points`,
shared with the homotopy route alone (:mod:`._complete`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._objective import LoraMLProblem
from .._validation import LandscapeInputError
from ._backends import msolve_path, phc_path, run_msolve
from ._homotopy import param_route, phc_route
from ._points import CLASSES, _certify_point, _classify_orbits, _existing_kind, _Square
from ._report import markdown, plot
from ._systems import exact_tasks, invariant_system, x_index

__all__ = [
    "EnumerationResult",
    "EnumerationUnavailable",
    "algebra_available",
    "enumerate_critical_points",
    "ROUTES",
]

ROUTES = ("msolve", "phc")



class EnumerationUnavailable(LandscapeInputError):
    """An external solver needed by the requested route is not installed."""


def algebra_available(route: str = "msolve") -> bool:
    """Whether the solver of ``route`` is installed (``"msolve"``, ``"phc"``)."""
    return (msolve_path() if route == "msolve" else phc_path()) is not None


# --------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------
@dataclass
class EnumerationResult:
    """Outcome of :func:`enumerate_critical_points`; ``data`` is ``enumeration.json``."""

    data: dict
    points: list = field(default_factory=list)  # representative U per orbit, (T, d, k)

    @property
    def complete(self) -> bool:
        return bool(self.data["complete"])

    @property
    def critical_values(self) -> np.ndarray:
        return np.array([o["G"] for o in self.data["orbit_list"]])

    @property
    def markdown(self) -> str:
        return markdown(self.data)

    def write(self, out) -> Path:
        """Write ``enumeration.json``, ``enumeration.md`` and the plot into ``out`` as one set.

        The folder is locked for the write (a concurrent run is refused), the three files
        are replaced whole (a manifest listing their sha256 is written last), and stale
        temporaries of a killed run are removed; see :mod:`landscape.runtime.outguard`.
        """
        from ..runtime.atomic import atomic_write, atomic_write_text
        from ..runtime.outguard import FileSet, OutLock

        out = Path(out)
        names = ("enumeration.md", "critical_values.png", "enumeration.json")
        with OutLock(out, "landscape enumerate"):
            files = FileSet(out, "enumeration.manifest.json", names, key={"command": "landscape enumerate"})
            files.begin()
            files.add(atomic_write_text(out / "enumeration.md", self.markdown))
            files.add(atomic_write(out / "critical_values.png", lambda fh: plot(self.data, fh)))
            files.add(atomic_write_text(out / "enumeration.json",
                                        json.dumps(self.data, indent=1, allow_nan=False) + "\n"))
            files.commit()
        return out


# --------------------------------------------------------------------------------------
# Route 1: from msolve's invariants back to U
# --------------------------------------------------------------------------------------
def _lift(Xs: np.ndarray, k: int) -> tuple[np.ndarray, bool, list]:
    """U with U_t U_t^T = X_t (top-k eigen-factor); whether every X_t is PSD of rank <= k
    within round-off; which blocks are exactly zero."""
    T, d, _ = Xs.shape
    U = np.zeros((T, d, k))
    ok, zero = True, []
    for t in range(T):
        X = 0.5 * (Xs[t] + Xs[t].T)
        lam, V = np.linalg.eigh(X)
        tol = 1e-9 * max(1.0, float(np.abs(lam).max()))
        if lam[0] < -tol:
            ok = False
        if np.all(np.abs(X) <= 1e-30):
            zero.append(t)
            continue
        lam_k = np.clip(lam[::-1][:k], 0.0, None)
        U[t] = V[:, ::-1][:, :k] * np.sqrt(lam_k)[None, :]
    return U, ok, zero


# --------------------------------------------------------------------------------------
# Main entry point
# --------------------------------------------------------------------------------------
def sign_copies_counted(k: int, T: int) -> bool:
    """Whether the count of real critical points counts every sign copy of an orbit: for
    k = 1 and T >= 3 the flips u_t -> -u_t of the non-zero blocks are distinct critical
    points (2^m per orbit); for k >= 2 they lie in the O(k) orbit and at T = 2 in the
    O(1,1) boost orbit, counted once."""
    return bool(k == 1 and T >= 3)


def enumerate_critical_points(tasks, k: int, *, routes=("msolve",), seed: int = 0, timeout: float = 600.0,
                              threads: int = 1) -> EnumerationResult:
    r"""Every real critical point of :math:`G` for the task matrices ``tasks`` (shape
    ``(T, d, d)``) and rank ``k``, each certified and classified; see the module text.

    Parameters
    ----------
    routes : tuple of ``"msolve"`` / ``"phc"``
        ``("msolve",)`` decides completeness by real-root isolation; ``"phc"`` beside it
        adds the independent homotopy route and its comparison.  ``("phc",)`` alone
        (:math:`k=1`, :math:`T\ge3`, a committed start file) decides completeness by
        counting certified complex solutions against the degree (:mod:`._complete`;
        msolve still computes that degree).
    seed : int
        Seed of PHCpack's random start system (the msolve route is deterministic up to
        msolve's choice of primes).
    timeout : float
        Seconds allowed to each external solver call.
    """
    t_start = time.perf_counter()
    problem = LoraMLProblem(tasks, k)
    T, d, k = problem.T, problem.d, problem.k
    routes = tuple(routes)
    bad = [r for r in routes if r not in ROUTES]
    if bad or not routes or ("msolve" not in routes and routes != ("phc",)):
        raise LandscapeInputError(f"routes must be ('phc',) or include 'msolve', among {ROUTES}; got {routes}")
    if routes == ("phc",):
        from ._param import start_file

        if k != 1 or T < 3 or not start_file(T, d).is_file():
            raise LandscapeInputError(f"the phc route alone needs k = 1, T >= 3 and a start file for (T, d) = ({T}, {d}) "
                                      f"(landscape/enumeration/starts/T{T}_d{d}.json); got k = {k}")
    for r in set(routes) | ({"msolve"} if routes == ("phc",) else set()):
        if not algebra_available(r):
            hint = "pip install '.[algebra]'" if r == "msolve" else "apt-get install phcpack"
            raise EnumerationUnavailable(f"the {r} route needs its solver, which is not installed ({hint})")
    S = exact_tasks(problem.tasks)
    G_antisym = _antisym_constant(problem.tasks)
    if routes == ("phc",):
        from ._complete import enumerate_by_homotopy

        data, points = enumerate_by_homotopy(problem, S, G_antisym, seed=seed, timeout=timeout, threads=threads,
                                             t_start=t_start)
        return EnumerationResult(data, points)
    notes = []
    data = {
        "instance": {"T": T, "d": d, "k": k},
        "method": "msolve real-root isolation of the O(k)-invariant system, Krawczyk (arb) per point"
        + (" + PHCpack homotopy route" if "phc" in routes else ""),
        "coefficients": "shortest decimal of each task entry (exact rationals)",
    }

    # ---------------------------------------------------------------- route 1: msolve
    xs = invariant_system(S, T, d, k)
    res = run_msolve(xs.msolve_text(), threads=threads, timeout=timeout)
    non_isolated = res.status == "positive_dimensional"
    slice_used = None
    degree = res.degree
    if non_isolated:
        notes.append("the invariant system is positive-dimensional: the critical set is not a finite union of "
                     "O(k)-orbits")
    if T == 2:
        non_isolated = True
        notes.append("T = 2: G depends on U only through U1U1^T - U2U2^T, which the O(k,k) boosts preserve; every "
                     "critical point except U = 0 lies on a positive-dimensional critical set (counted per boost orbit)")
        if k == 1:
            import sympy

            Dm = sympy.Matrix([[sympy.Rational(S[0][i][j] - S[1][i][j]) for j in range(d)] for i in range(d)])
            if Dm.det() == 0:
                notes.append("S1 - S2 is singular: critical points with u1 = +-u2 may be missed; not certified complete")
                slice_ok = False
            else:
                slice_ok = True
            xs = _t2_slice_system(S, d)
            res = run_msolve(xs.msolve_text(), threads=threads, timeout=timeout)
            degree = res.degree
            slice_used = "u1^T u2 = 0 (boost slice, equations X1 X2 = 0)"
        else:
            slice_ok = False
            notes.append("T = 2 with k >= 2: no boost slice implemented; the orbits listed are not certified complete")
    else:
        slice_ok = True
    if res.status == "positive_dimensional":
        data.update(_empty_fields(non_isolated=True, degree=None))
        data["notes"] = notes
        data["complete"] = False
        data["wall_time_s"] = time.perf_counter() - t_start
        data["routes"] = {"msolve": {"status": res.status, "seconds": res.seconds}}
        return EnumerationResult(data, [])

    sq = _Square(S, T, d, k)
    idx = x_index(d)
    orbits, points = [], []
    n_real_x, n_not_psd, all_ok = len(res.boxes), 0, True
    for box in res.boxes:
        mid = np.array([float((lo + hi) / 2) for lo, hi in box])
        Xs = np.zeros((T, d, d))
        for t in range(T):
            for m, (i, j) in enumerate(idx):
                Xs[t, i, j] = Xs[t, j, i] = mid[t * len(idx) + m]
        U, psd, zero = _lift(Xs, k)
        if not psd:
            n_not_psd += 1
            continue
        entry = _certify_point(problem, sq, S, U, zero, box, idx, G_antisym)
        all_ok &= entry["certified"]
        orbits.append(entry)
        points.append(entry.pop("_U"))
    _classify_orbits(orbits)
    for o, U in zip(orbits, points):
        o["existing_classifier"] = _existing_kind(problem, U)
    if sign_copies_counted(k, T):
        n_points = int(sum(o["copies"] for o in orbits))
    else:
        n_points = len(orbits)
    complete = bool(all_ok and slice_ok and res.status in ("finite", "none"))
    data.update({
        "complete": complete,
        "non_isolated": bool(non_isolated),
        "real_critical_points": n_points,
        "copies_counted": sign_copies_counted(k, T),
        "orbits": len(orbits),
        "degree": degree,
        "degree_meaning": "complex solutions with multiplicity of the invariant system"
        + (" on the boost slice" if slice_used else ""),
        "real_solutions_invariant_system": n_real_x,
        "real_solutions_not_psd": n_not_psd,
        "gauge": ("sign orbits (k = 1)" if k == 1 else "slice: top k x k block of each U_t lower triangular, "
                  "non-negative diagonal"),
        "boost_slice": slice_used,
        "counts_by_class": {c: sum(1 for o in orbits if o["class"] == c) for c in CLASSES},
        "lowest_critical_value": min((o["G"] for o in orbits), default=None),
    })
    routes_data = {"msolve": {"status": res.status, "seconds": round(res.seconds, 3), "degree": degree,
                              "real_solutions": n_real_x}}
    # ---------------------------------------------------------------- route 2: phc
    if "phc" in routes:
        if T == 2:
            routes_data["phc"] = {"skipped": "T = 2: the U-system has positive-dimensional solution sets"}
        else:
            routes_data["phc"] = (param_route(problem, sq, S, orbits, points, seed=seed, timeout=timeout,
                                              threads=threads)
                                  or phc_route(problem, sq, S, orbits, points, seed=seed, timeout=timeout))
            data["routes_agree"] = routes_data["phc"]["agrees"]
    data["routes"] = routes_data
    data["orbit_list"] = orbits
    data["notes"] = notes
    data["wall_time_s"] = round(time.perf_counter() - t_start, 3)
    return EnumerationResult(data, points)


def _empty_fields(*, non_isolated, degree):
    return {"non_isolated": non_isolated, "real_critical_points": None, "orbits": None, "degree": degree,
            "orbit_list": [], "counts_by_class": {}, "lowest_critical_value": None}


def _t2_slice_system(S, d):
    """Invariant system for T = 2, k = 1 plus the boost slice X1 X2 = 0."""
    xs = invariant_system(S, 2, d, 1)
    R, gens = xs.ring, xs.gens
    idx = x_index(d)
    n = len(idx)
    X = [[[None] * d for _ in range(d)] for _ in range(2)]
    for t in range(2):
        for m, (i, j) in enumerate(idx):
            X[t][i][j] = X[t][j][i] = gens[t * n + m]
    extra = [sum((X[0][i][m] * X[1][m][j] for m in range(d)), R(0)) for i in range(d) for j in range(d)]
    from ._systems import PolySystem

    return PolySystem(R, gens, xs.names, xs.polys + extra)


def _antisym_constant(tasks):
    r"""The constant :math:`\frac12\sum_t\|K_t-\bar K\|_F^2` that the antisymmetric parts
    :math:`K_t` of the tasks add to :math:`G`, as an exact ``arb`` (0 for model M1)."""
    from fractions import Fraction

    from flint import arb, fmpq

    T, d, _ = tasks.shape
    q = [[[Fraction(repr(float(tasks[t, i, j]))) for j in range(d)] for i in range(d)] for t in range(T)]
    total = Fraction(0)
    for i in range(d):
        for j in range(d):
            K = [(q[t][i][j] - q[t][j][i]) / 2 for t in range(T)]
            mean = sum(K) / T
            total += sum((x - mean) ** 2 for x in K)
    total /= 2
    return arb(fmpq(total.numerator, total.denominator))

