r"""Route 2 alone: a complete list by counting certified complex solutions
(:math:`k=1`, :math:`T\ge3`, with a committed start file).

The argument
    Let :math:`I` be the ideal of the instance's :math:`\mathbf U`-system (the cubics
    :math:`P_tu_t=0` in all :math:`Td` unknowns, exact rational coefficients).  When it is
    zero-dimensional, :math:`\deg I=\dim_{\mathbb Q}\mathbb Q[\mathbf u]/I` is the number of
    its complex solutions counted with multiplicity.  Suppose :math:`N` complex boxes are
    each proved by Krawczyk's test (:func:`._krawczyk.krawczyk_complex`) to hold a zero of
    the system, and are proved pairwise disjoint (:func:`._krawczyk.boxes_overlap`).  Then
    the system has at least :math:`N` distinct complex zeros.  If :math:`N=\deg I`, there
    are no others and every zero is simple: the list is complete, and the *real* zeros are
    exactly the boxes with a real centre (such a box is invariant under conjugation, so
    its unique zero is real), every other box excluding the real space in one coordinate.
    If :math:`N<\deg I`, ``complete`` is false and ``missing`` says how many are missing.
Where the boxes come from
    The ends of the parameter homotopy of :mod:`._param` (one path per sign orbit and
    support), Newton-polished on the full system.  How they were found plays no part in
    the proof.  For one accessibility constant :math:`\gamma` the paths pair starts and
    ends one to one, so a path that is lost, fails its certificate, ends on a smaller
    support or meets another path's end (both are suspect) is re-tracked with the same
    :math:`\gamma`: first in a random projective chart (:func:`._param.homogenize`: the
    same paths, with a solution of large norm an O(1) point), in double and then, what is
    still unresolved, in double-double precision.  PHC is given the exact target system
    (:func:`._param.track` scales it to integer coefficients): at a condition number of
    :math:`10^{12}` the zeros of its float rounding lie outside Newton's reach of the
    certified system's.  A support still short is tracked again
    with a fresh random :math:`\gamma` (for all but finitely many :math:`\gamma` every
    isolated solution is a path end, Morgan & Sommese 1989; the ends of different tries are
    all solutions), and the union of the certified ends is counted.  An end whose float
    Newton point fails Krawczyk's test is polished again in 256-bit arithmetic
    (:func:`newton_precise`; a simple zero with a condition number near :math:`10^9`
    cannot be placed in floats closely enough for a box to pass), and its box is tried with
    Krawczyk's :math:`Y` inverted at that precision (a float inverse of a Jacobian with
    condition number :math:`10^{12}` leaves :math:`I-Y\,Df` near 1).  ``new_orbits_by_mechanism``
    says how many new orbits each of these mechanisms contributed.
Sign copies
    :math:`u_t\mapsto-u_t` maps the system to itself, so it maps a certified box to a
    certified box of the flipped zero; each orbit is certified once and its copies are
    the flipped boxes (flipping the non-zero blocks only: a block whose centre is exactly
    0 has a box symmetric under its flip, so the unique zero there has that block 0).
    Every copy enters the disjointness proof.
The degree
    is msolve's (:func:`._backends.msolve_degree`): the leading ideal of a Gröbner basis
    modulo one large prime.  It equals :math:`\deg I` except for finitely many primes; this
    Monte-Carlo step is the one assumption left (route 1 rests on a similar one, msolve's
    multi-modular lifting).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._backends import BackendError, msolve_degree
from ._krawczyk import PRECISE_BITS, boxes_overlap, krawczyk_complex, newton_precise

__all__ = ["CertifiedOrbits", "count_argument", "certify_solution", "homotopy_enumeration"]

ZERO_BLOCK = 1e-8  # relative size below which a polished block is set to exactly 0 and re-certified
REAL_TOL = 1e-8  # relative imaginary size below which a polished point is tried as real


def _prove(compiled, x, zero, real, d, scale, precise=False):
    """Krawczyk's box around ``x`` (zero blocks and reality imposed), tightened by one more
    Newton run from its centre when it came out large; with ``precise`` that Newton run
    is :func:`newton_precise` and Krawczyk's :math:`Y` is inverted at ``PRECISE_BITS``."""
    bits = PRECISE_BITS if precise else None
    polish = (lambda z: newton_precise(compiled, z)) if precise else compiled.newton

    def fix(y):
        for t in zero:
            y[t * d:(t + 1) * d] = 0.0
        return y.real.astype(complex) if real else y

    x = fix(np.array(x, dtype=complex))
    kr = krawczyk_complex(compiled, x, inverse_bits=bits)
    if kr.certified and kr.radius > 1e-10 * scale:
        # a large box: the end had not converged; one more Newton run from its centre (the
        # zero is inside) and the smaller box if it passes
        y = polish(kr.center)
        if y is not None and np.all(np.isfinite(y)):
            k2 = krawczyk_complex(compiled, fix(y), inverse_bits=bits)
            if k2.certified and k2.radius < kr.radius:
                kr = k2
    return kr


def _shape(compiled, x, T, d, polish):
    """The zero blocks and the reality of the point ``x``; both imposed on it (and the
    point polished again by ``polish`` when either applies)."""
    scale = 1.0 + float(np.max(np.abs(x)))
    U = x.reshape(T, d)
    zero = [t for t in range(T) if np.max(np.abs(U[t])) <= ZERO_BLOCK * scale]
    real = float(np.max(np.abs(x.imag))) <= REAL_TOL * scale
    if zero or real:
        for t in zero:
            U[t] = 0.0
        if real:
            x = x.real.astype(complex)
        x = polish(x)
    return x, zero, real, scale


def certify_solution(compiled, x, T: int, d: int, *, precise: bool = True, stats: dict | None = None,
                     polished=None):
    r"""Polish the complex point ``x`` (unknowns ``(t, i)``, :math:`k=1`) by Newton on the
    full system and prove it by :func:`krawczyk_complex`.  Blocks that polish to almost 0
    are set to exactly 0, points with an almost-zero imaginary part are tried as real.
    When float Newton's point fails, and ``precise``, the given point is polished by
    :func:`newton_precise` instead and tried once more with Krawczyk's :math:`Y` inverted
    at ``PRECISE_BITS`` (then ``stats["precise_newton"]`` is set to 1).  ``polished``:
    float Newton's point from ``x`` when the caller has it already.  Returns ``(result,
    kind, zero_blocks)`` with ``kind`` ``"real"``, ``"complex"`` (the box excludes the real
    space) or None when nothing was proved."""
    x0 = np.asarray(x, dtype=complex)
    x = compiled.newton(x0) if polished is None else np.array(polished, dtype=complex)
    kr, zero, real = None, [], False
    if np.all(np.isfinite(x)):
        x, zero, real, scale = _shape(compiled, x, T, d, compiled.newton)
        kr = _prove(compiled, x, zero, real, d, scale)
    if (kr is None or not kr.certified) and precise:
        # from the given point, not float Newton's: at a condition number of 1e12 float
        # Newton steps off a converged end by its whole norm
        y = newton_precise(compiled, x0)
        if y is not None:
            y, zero, real, scale = _shape(compiled, y, T, d, lambda z: newton_precise(compiled, z))
            if y is not None:
                kr = _prove(compiled, y, zero, real, d, scale, precise=True)
                if kr.certified and stats is not None:
                    stats["precise_newton"] = 1
    if kr is None or not kr.certified:
        return None, None, zero
    if real:
        return kr, "real", zero
    # a non-real zero: its box must exclude the real space (|Im x_j| > r in some coordinate)
    if float(np.max(np.abs(kr.center.imag))) <= kr.radius * (1 + 1e-12):
        return None, None, zero
    return kr, "complex", zero


class CertifiedOrbits:
    """Certified sign orbits of the full :math:`k=1` system, one representative each
    (orbits compared by the sign-invariant :math:`u_tu_t^\\top`)."""

    def __init__(self, compiled, T: int, d: int, *, tol: float = 1e-7):
        self.compiled, self.T, self.d, self.tol = compiled, T, d, tol
        self.reps = []  # dicts: center, radius, kind, zero
        self._keys = np.zeros((0, T * d * d), dtype=complex)
        self._radii = np.zeros(0)
        # new orbits whose end was proved only after the precise Newton polish, and new
        # orbits first reached by a projective re-track in double or in double-double
        # precision (counted by the caller; an orbit may count under precise_newton too)
        self.found_by = {"precise_newton": 0, "projective_retrack": 0, "projective_double_double": 0}

    def key(self, x):
        U = np.asarray(x).reshape(self.T, self.d)
        return np.einsum("ti,tj->tij", U, U).ravel()

    def add(self, x) -> tuple:
        """``("new", i)`` (certified, a new orbit, number ``i``), ``("duplicate", i)``
        (the known orbit ``i``: certified, or its float Newton point already within the
        tolerance of orbit ``i``'s certified centre, which adds nothing to the count) or
        ``("failed", None)`` (not proved)."""
        y = self.compiled.newton(np.asarray(x, dtype=complex))
        if len(self._keys) and np.all(np.isfinite(y)):
            # a later try's ends are mostly known orbits: spare them Krawczyk's test
            key = self.key(y)
            dist = np.max(np.abs(self._keys - key[None]), axis=1)
            i = int(np.argmin(dist))
            if dist[i] <= self.tol * (1.0 + np.max(np.abs(key))):
                return "duplicate", i
        how = {}
        kr, kind, zero = certify_solution(self.compiled, x, self.T, self.d, stats=how, polished=y)
        if kr is None:
            return "failed", None
        key = self.key(kr.center)
        if len(self._keys):
            # same orbit: keys equal up to the tolerance or to what the two boxes allow
            # (|u u^T - v v^T| <= (2|u| + r) r for |u - v| <= r); pairs left overlapping
            # are caught by the disjointness proof
            dist = np.max(np.abs(self._keys - key[None]), axis=1)
            mag = 1.0 + np.max(np.abs(kr.center))
            slack = self.tol * (1.0 + np.max(np.abs(key))) + 3.0 * mag * (self._radii + kr.radius)
            i = int(np.argmin(dist - slack))
            if dist[i] <= slack[i]:
                if kr.radius < self.reps[i]["radius"]:  # keep the tighter box of the two
                    self.reps[i].update(center=kr.center, radius=kr.radius)
                    self._keys[i], self._radii[i] = key, kr.radius
                return "duplicate", i
        self._keys = np.vstack([self._keys, key[None]])
        self._radii = np.append(self._radii, kr.radius)
        self.reps.append({"center": kr.center, "radius": kr.radius, "kind": kind, "zero": zero})
        self.found_by["precise_newton"] += int(bool(how))
        return "new", len(self.reps) - 1

    def support(self, rep) -> tuple:
        return tuple(t for t in range(self.T) if t not in rep["zero"])

    def boxes(self):
        """Every sign copy of every orbit: ``(centers (N, Td) complex, radii (N,))``."""
        centers, radii = [], []
        for rep in self.reps:
            nz = self.support(rep)
            for signs in np.ndindex(*([2] * len(nz))):
                c = rep["center"].copy()
                for s, t in zip(signs, nz):
                    if s:
                        c[t * self.d:(t + 1) * self.d] *= -1
                centers.append(c)
                radii.append(rep["radius"])
        n = self.T * self.d
        return (np.array(centers).reshape(-1, n), np.array(radii, dtype=float))


def count_argument(centers, radii, degree) -> dict:
    """The completeness verdict for certified boxes (see the module text): pairwise
    disjointness is proved here; ``complete`` only when it holds and the number of boxes
    equals ``degree``."""
    overlaps = boxes_overlap(centers, radii)
    n = int(len(radii))
    out = {"certified_complex_solutions": n, "degree": degree, "overlapping_pairs": len(overlaps),
           "missing": None, "complete": False}
    if overlaps:
        out["reason"] = f"{len(overlaps)} pairs of certified boxes not proved disjoint: the count proves nothing"
        return out
    if degree is None:
        out["reason"] = "no degree of the U-system (msolve failed or reports a positive-dimensional ideal)"
        return out
    out["missing"] = int(degree - n)
    if n == degree:
        out["complete"] = True
        out["reason"] = ("as many certified, pairwise disjoint simple complex solutions as the degree of the "
                         "U-system ideal: every solution is listed and simple")
    elif n < degree:
        out["reason"] = f"{degree - n} complex solutions (with multiplicity) of the U-system are not listed"
    else:
        out["reason"] = (f"{n} certified distinct solutions exceed the degree {degree}: the modular degree is "
                         "wrong (an unlucky prime?); nothing is concluded")
    return out


def homotopy_enumeration(sq, S, T: int, d: int, *, seed: int, timeout: float, threads: int = 1,
                         retries: int = 3, degree=None):
    r"""Track the committed start solutions (:mod:`._param`) to the tasks ``S`` (exact),
    certify every end on the full system, re-track supports that fall short, and apply
    :func:`count_argument` against the degree of the :math:`\mathbf U`-system (computed by
    msolve in a thread meanwhile, unless ``degree`` is given).  Returns ``(route data,
    CertifiedOrbits)``; None without a start file."""
    import resource

    from ._param import ParamFamily, _cpu, load_starts, start_file, track

    loaded = load_starts(T, d)
    if loaded is None:
        return None
    starts, meta = loaded
    t0, c0 = time.perf_counter(), _cpu(resource)
    pool = ThreadPoolExecutor(max_workers=1)
    fut = None
    if degree is None:
        fut = pool.submit(msolve_degree, sq.system.msolve_text(), sq.system.names, timeout=timeout)
    try:
        rng = np.random.default_rng([int(seed), 20])
        chart_rng = np.random.default_rng([int(seed), 21])  # apart, so the gammas stay those of rng
        sols = CertifiedOrbits(sq.compiled, T, d)
        sols.add(np.zeros(T * d))  # U = 0; not proved when a C_t is singular: the count then falls short
        paths, lost, per_support = 0, 0, []
        for supp, (S0, reps) in sorted(starts.items(), key=lambda kv: (len(kv[0]), kv[0])):
            fam = ParamFamily(T, d, supp)
            want, tries, dd_paths, proj_paths, attempts = len(reps), 0, 0, 0, []

            def run(idx, gamma, decimals, chart=None):
                """Track the starts ``idx`` (in the projective ``chart`` if given); certify
                the ends; the starts to redo (lost, failed, off the support, or meeting
                another path of this gamma)."""
                ends, _diag = track(fam, S0, S, reps[idx], gamma, threads=threads, timeout=timeout,
                                    decimals=decimals, chart=chart)
                outcome, redo = {"lost": 0, "failed": 0, "duplicate": 0, "other_support": 0}, set()
                for j, e in zip(idx, ends):
                    if not np.all(np.isfinite(e)) or np.max(np.abs(e)) > 1e8:
                        outcome["lost"] += 1
                        redo.add(int(j))
                        continue
                    x = np.zeros(T * d, dtype=complex)
                    for a, t in enumerate(supp):
                        x[t * d:(t + 1) * d] = e[a * d:(a + 1) * d]
                    st, i = sols.add(x)
                    if st != "failed" and sols.support(sols.reps[i]) == tuple(supp) and i not in owner:
                        owner[i] = int(j)  # the first path of this gamma to reach orbit i (maybe found before)
                        continue
                    redo.add(int(j))
                    if st == "new" or (st == "duplicate" and i not in owner):
                        outcome["other_support"] += 1
                    else:
                        outcome[st] += 1
                        if st == "duplicate" and i in owner and owner[i] != j:  # two paths met
                            redo.add(owner[i])
                return outcome, sorted(redo)

            def have():
                return sum(1 for r in sols.reps if sols.support(r) == tuple(supp))

            while tries <= retries and have() < want:
                # a fresh gamma pairs starts and ends anew; for one gamma the ends are a
                # bijection, so the paths that failed or met another are re-tracked with the
                # same gamma in a random projective chart (the same paths, but a solution of
                # large norm is an O(1) point there), in double precision and then, what is
                # still unresolved, in double-double (PHCpack's -p with 32 decimals)
                gamma = complex(rng.standard_normal(), rng.standard_normal())
                gamma /= abs(gamma)
                owner = {}
                outcome, redo = run(np.arange(want), gamma, 16)
                tries += 1
                lost += outcome["lost"]
                attempts.append({"double": outcome, "certified_orbits": have()})
                chart = chart_rng.standard_normal(fam.n + 1) + 1j * chart_rng.standard_normal(fam.n + 1)
                if redo and have() < want:
                    n0, sent = len(sols.reps), len(redo)
                    pj, redo = run(np.array(redo), gamma, 16, chart=chart)
                    proj_paths += sent
                    sols.found_by["projective_retrack"] += len(sols.reps) - n0
                    attempts[-1]["projective"] = dict(pj, paths=sent, new_orbits=len(sols.reps) - n0)
                    attempts[-1]["certified_orbits"] = have()
                if redo and have() < want and len(redo) <= max(8, want // 10):
                    n0, sent = len(sols.reps), len(redo)
                    dd_paths += sent
                    dd = run(np.array(redo), gamma, 32, chart=chart)[0]
                    sols.found_by["projective_double_double"] += len(sols.reps) - n0
                    attempts[-1]["double_double"] = dict(dd, paths=sent, new_orbits=len(sols.reps) - n0)
                    attempts[-1]["certified_orbits"] = have()
            paths += tries * want + dd_paths + proj_paths
            per_support.append({"support": list(supp), "start_orbits": want, "certified_orbits": have(),
                                "tries": tries, "paths_tracked": tries * want, "double_double_paths": dd_paths,
                                "projective_paths": proj_paths, "attempts": attempts})
        track_s = time.perf_counter() - t0
        centers, radii = sols.boxes()
        deg = degree
        deg_note = None
        if fut is not None:
            try:
                deg = fut.result()
            except BackendError as exc:
                deg, deg_note = None, str(exc)
    finally:
        pool.shutdown(wait=True)
    verdict = count_argument(centers, radii, deg)
    n_real = sum(1 for r in sols.reps if r["kind"] == "real")
    data = {
        "method": "parameter homotopy (phc -p) from a generic instance solved by monodromy "
                  f"(start file {start_file(T, d).name}), one path per sign orbit; each end proved by a complex "
                  "Krawczyk test (acb) on the full U-system; completeness by counting against the degree",
        "completeness": "count: certified pairwise disjoint complex solutions = degree of the U-system ideal "
                        "(msolve, modular: the one Monte-Carlo step)",
        "paths": paths, "lost_paths": lost,
        "retried_supports": sum(1 for p in per_support if p["tries"] > 1),
        "max_tries": max((p["tries"] for p in per_support), default=0),
        "generic_count": meta["degree_u_system"],
        "start_solutions": meta.get("found_count", meta["degree_u_system"]),
        "u_system_degree": deg,
        "certified_orbits": len(sols.reps), "certified_real_orbits": n_real,
        **verdict,
        "tracking_seconds": round(track_s, 3),
        "seconds": round(time.perf_counter() - t0, 3),
        "cpu_s": round(_cpu(resource) - c0, 1),
        "per_support": per_support,
        "new_orbits_by_mechanism": dict(sols.found_by),
    }
    if deg_note:
        data["degree_error"] = deg_note
    return data, sols


def enumerate_by_homotopy(problem, S, G_antisym, *, seed: int, timeout: float, threads: int, t_start: float,
                          retries: int = 3, degree=None):
    r"""``enumerate_critical_points(..., routes=("phc",))``: :func:`homotopy_enumeration`,
    then every certified real orbit goes through route 1's per-point certificate and
    classes (:func:`._points._certify_point`, :func:`._points._classify_orbits`) without
    an msolve box.  ``complete`` is the count argument's verdict, and needs every real
    orbit certified by that certificate too.  Returns ``(data, points)`` for
    :class:`._core.EnumerationResult`."""
    from ._points import CLASSES, _certify_point, _classify_orbits, _existing_kind, _Square
    from ._systems import x_index

    T, d, k = problem.T, problem.d, problem.k
    sq = _Square(S, T, d, k)
    route, sols = homotopy_enumeration(sq, S, T, d, seed=seed, timeout=timeout, threads=threads,
                                       retries=retries, degree=degree)
    orbits, points = [], []
    for rep in sols.reps:
        if rep["kind"] != "real":
            continue
        U = rep["center"].real.reshape(T, d, 1).copy()
        entry = _certify_point(problem, sq, S, U, list(rep["zero"]), None, x_index(d), G_antisym)
        orbits.append(entry)
        points.append(entry.pop("_U"))
    order = sorted(range(len(orbits)), key=lambda i: orbits[i]["G"])
    orbits, points = [orbits[i] for i in order], [points[i] for i in order]
    _classify_orbits(orbits)
    for o, U in zip(orbits, points):
        o["existing_classifier"] = _existing_kind(problem, U)
    all_ok = all(o["certified"] for o in orbits)
    data = {
        "instance": {"T": T, "d": d, "k": k},
        "method": "PHCpack parameter homotopy alone; each end certified by a complex Krawczyk test (acb); "
                  "completeness by counting certified complex solutions against msolve's degree of the U-system",
        "completeness_argument": route["completeness"],
        "coefficients": "shortest decimal of each task entry (exact rationals)",
        "complete": bool(route["complete"] and all_ok),
        "non_isolated": False,
        "real_critical_points": int(sum(o["copies"] for o in orbits)),
        "copies_counted": True,
        "orbits": len(orbits),
        "degree": route["u_system_degree"],
        "degree_meaning": "complex solutions with multiplicity of the U-system (the gradient cubics in u; msolve, "
                          "one prime)",
        "complex_solutions_certified": route["certified_complex_solutions"],
        "missing_complex_solutions": route["missing"],
        "gauge": "sign orbits (k = 1)",
        "boost_slice": None,
        "counts_by_class": {c: sum(1 for o in orbits if o["class"] == c) for c in CLASSES},
        "lowest_critical_value": min((o["G"] for o in orbits), default=None),
        "routes": {"phc": route},
        "orbit_list": orbits,
        "notes": [route["reason"]] + ([] if all_ok else ["a real orbit failed its real certificate"]),
        "wall_time_s": round(time.perf_counter() - t_start, 3),
    }
    return data, points
