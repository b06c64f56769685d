"""Pins of the per-point bookkeeping and the classes (:mod:`landscape.enumeration._points`).

* Sign copies.  For k = 1 the flips u_t -> -u_t are exact symmetries of G.  With T >= 3
  they are not in any other symmetry, so an orbit with m non-zero blocks stands for 2^m
  critical points, all counted.  With T = 2 they are elements of O(1, 1) (diag(+-1, +-1)
  preserves x1^2 - x2^2), so they lie on the boost orbit that is counted once: copies 1.
  Either way the copies column sums to the reported count.
* Classes, at their exact boundaries: a certified upper bound of lambda_min below 0 makes a
  strict saddle, a certified lower bound above 0 a minimum (0 itself decides nothing); a
  minimum is global when its enclosure of G reaches 0 (lower end <= 0), spurious when
  another critical value lies entirely below its enclosure (strictly).
"""
import numpy as np
import pytest

import landscape as ls
from landscape.enumeration import algebra_available, enumerate_critical_points
from landscape.enumeration._points import (DEGENERATE, GLOBAL_MINIMUM, LOWEST_MINIMUM, SPURIOUS, STRICT_SADDLE,
                                           _classify_orbits)


def rounded_tasks(seed, d, T, k=1):
    return np.round(ls.random_instance(np.random.default_rng(seed), d, T, k).problem.tasks, 2)


@pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")
@pytest.mark.parametrize("seed,d,T", [(4, 2, 3), (1, 3, 2)])
def test_sign_copies_are_counted_for_t3_and_are_boosts_for_t2(seed, d, T):
    r = enumerate_critical_points(rounded_tasks(seed, d, T), 1)
    assert r.complete
    orbits = r.data["orbit_list"]
    for o, U in zip(orbits, r.points):
        nonzero = int(sum(np.any(U[t] != 0) for t in range(T)))
        assert o["copies"] == (2 ** nonzero if T >= 3 else 1)
    assert r.data["real_critical_points"] == sum(o["copies"] for o in orbits)
    assert r.data["copies_counted"] == (T >= 3)
    if T >= 3:  # the count exceeds the orbits: some orbit has a non-zero block
        assert r.data["real_critical_points"] > r.data["orbits"]


def orbit(lo, hi, G):
    return {"certified": True, "G_enclosure": list(G),
            "eigenvalues": {"lambda_min_certified_lower": lo, "lambda_min_certified_upper": hi}}


@pytest.mark.parametrize("lo,hi,want", [
    (-2.0, -1e-300, STRICT_SADDLE), (-2.0, 0.0, DEGENERATE), (-1e-300, 1.0, DEGENERATE),
    (0.0, 1.0, DEGENERATE), (1e-300, 1.0, LOWEST_MINIMUM), (None, None, DEGENERATE),
])
def test_curvature_sign_classes_at_zero(lo, hi, want):
    o = orbit(lo, hi, (1.0, 1.5))
    _classify_orbits([o])
    assert o["class"] == want


@pytest.mark.parametrize("G_lo,want", [(-1e-300, GLOBAL_MINIMUM), (0.0, GLOBAL_MINIMUM), (1e-300, LOWEST_MINIMUM)])
def test_global_minimum_iff_the_enclosure_reaches_zero(G_lo, want):
    o = orbit(0.5, 1.0, (G_lo, 1.0))
    _classify_orbits([o])
    assert o["class"] == want


@pytest.mark.parametrize("other_hi,want", [(0.999, SPURIOUS), (1.0, LOWEST_MINIMUM), (1.001, LOWEST_MINIMUM)])
def test_spurious_iff_another_value_is_certainly_lower(other_hi, want):
    m = orbit(0.5, 1.0, (1.0, 1.2))
    saddle = orbit(-1.0, -0.5, (other_hi - 0.1, other_hi))
    _classify_orbits([m, saddle])
    assert saddle["class"] == STRICT_SADDLE and m["class"] == want


def test_uncertified_point_is_degenerate_whatever_its_curvature():
    o = orbit(0.5, 1.0, (1.0, 1.2))
    o["certified"] = False
    _classify_orbits([o])
    assert o["class"] == DEGENERATE


@pytest.mark.parametrize("radius", [0.0, 1e-9])
def test_the_ball_loss_encloses_the_float_loss_of_symmetric_tasks(radius):
    """_arb_G over U +- radius contains G(U) computed in floats (tasks with exact rational
    entries, symmetric), and is tight at radius 0."""
    pytest.importorskip("flint")
    from fractions import Fraction

    from landscape.enumeration._points import _arb_G

    rng = np.random.default_rng(7)
    T, d, k = 3, 3, 2
    raw = np.round(rng.standard_normal((T, d, d)), 3)
    tasks = 0.5 * (raw + np.swapaxes(raw, 1, 2))
    S_exact = [[[Fraction(repr(float(tasks[t, i, j]))) for j in range(d)] for i in range(d)] for t in range(T)]
    U = rng.standard_normal((T, d, k))
    G = ls.LoraMLProblem(tasks, k).reduced_loss(U)
    enc = _arb_G(S_exact, U, radius)
    lo, hi = float(enc.lower()), float(enc.upper())
    assert lo <= G * (1 + 1e-12) and G * (1 - 1e-12) <= hi
    if radius == 0.0:
        assert hi - lo <= 1e-12 * max(G, 1.0)


def test_lambda_bounds_of_a_singular_symmetric_matrix_are_finite_and_tight():
    """A zero smallest eigenvalue (exactly, in floats): the shifted Cholesky starts 1e-12 x the
    largest |eigenvalue| below it and certifies a lower bound within 1e-9 of 0."""
    pytest.importorskip("flint")
    from flint import arb_mat

    from landscape.enumeration._points import _arb_sym_lambda_bounds

    H = arb_mat([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    lower, upper, lam = _arb_sym_lambda_bounds(H)
    assert list(lam) == [0.0, 2.0, 5.0]
    assert -1e-9 <= lower <= 0.0 <= upper <= 1e-12


def test_lambda_lower_bound_covers_every_matrix_of_a_wide_ball():
    """The lower bound is mu minus the residual's norm, and the residual carries H's radii:
    for diag(1, 2) with every entry +-1e-3 some member of the ball has lambda_min = 1 - 2e-3,
    so the bound must lie at or below that (a residual added instead of subtracted would put
    it above 1), and within a few radii of it."""
    pytest.importorskip("flint")
    from flint import arb, arb_mat

    from landscape.enumeration._points import _arb_sym_lambda_bounds

    H = arb_mat([[arb(1.0, 1e-3), arb(0.0, 1e-3)], [arb(0.0, 1e-3), arb(2.0, 1e-3)]])
    lower, upper, _ = _arb_sym_lambda_bounds(H)
    assert 1.0 - 1e-2 <= lower <= 1.0 - 2e-3 and upper >= 1.0


@pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")
def test_each_orbit_reports_the_extreme_eigenvalues_of_its_hessian():
    """T = 3, k = 1 (no slice): "min" and "max" are the smallest and largest eigenvalues of
    S at the orbit's point, and "n" their number."""
    r = enumerate_critical_points(rounded_tasks(4, 2, 3), 1)
    problem = ls.LoraMLProblem(rounded_tasks(4, 2, 3), 1)
    for o in r.data["orbit_list"]:
        lam = np.linalg.eigvalsh(problem.schur_complement(np.asarray(o["U"], dtype=float)))
        ev = o["eigenvalues"]
        assert ev["n"] == lam.size == 6
        assert ev["min"] == pytest.approx(lam[0], abs=1e-9 * max(1.0, abs(lam[-1])))
        assert ev["max"] == pytest.approx(lam[-1], rel=1e-9)


@pytest.mark.parametrize("k", [2, 3])
def test_the_gauge_slice_keeps_each_task_gram_matrix_and_triangularises_its_top_block(k):
    """For k >= 2 each U_t is moved along its O(k) orbit (U_t Q_t) to the slice: the top k x k
    block lower triangular with a non-negative diagonal, U_t U_t^T unchanged; a singular top
    block has no representative (None)."""
    from landscape.enumeration._points import _to_slice

    rng = np.random.default_rng(k)
    U = rng.standard_normal((3, 5, k))
    S = _to_slice(U)
    assert S is not None and S.shape == U.shape
    for t in range(3):
        top = S[t, :k, :]
        np.testing.assert_allclose(np.triu(top, 1), 0.0, atol=1e-12)
        assert np.all(np.diag(top) >= 0)
        np.testing.assert_allclose(S[t] @ S[t].T, U[t] @ U[t].T, rtol=1e-12, atol=1e-12)
    flat = U.copy()
    flat[1, :k, :] = 0.0  # a singular top block
    assert _to_slice(flat) is None
    assert np.array_equal(_to_slice(U[..., :1]), U[..., :1])  # k = 1: the slice is the point itself


def test_the_curvature_entry_counts_strictly_negative_eigenvalues():
    from landscape.enumeration._points import eigenvalue_summary

    e = eigenvalue_summary([-2.0, -1e-300, 0.0, 0.0, 3.5], -2.5, -1.5, "Hessian of G")
    assert e == {"min": -2.0, "max": 3.5, "n_negative": 2, "n": 5, "lambda_min_certified_lower": -2.5,
                 "lambda_min_certified_upper": -1.5, "space": "Hessian of G"}
    assert eigenvalue_summary([0.0, 1.0], None, None, "s")["n_negative"] == 0


def test_an_uncertified_point_gets_the_float_spectrum_of_its_schur_complement():
    from landscape.enumeration._points import _float_eigs

    inst = ls.random_instance(np.random.default_rng(3), 3, 3, 1)
    U = inst.U_star + 0.3
    lam = np.linalg.eigvalsh(inst.problem.schur_complement(U))
    e = _float_eigs(inst.problem, U)
    assert e == {"min": float(lam[0]), "max": float(lam[-1]), "n_negative": int(np.sum(lam < 0)), "n": lam.size,
                 "lambda_min_certified_lower": None, "lambda_min_certified_upper": None,
                 "space": "Hessian of G (float)"}


@pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")
def test_a_certified_zero_outside_msolves_box_is_not_counted_as_its_point(monkeypatch):
    """Each certified zero's invariants X_t = u_t u_t^T must lie in msolve's isolating box of
    the point it was lifted from: a box whose first interval is moved just past the zero's
    value (its midpoint still lifts to the same zero) is reported as not matching, the point
    as uncertified and the enumeration as incomplete."""
    from fractions import Fraction

    from landscape.enumeration import _core

    real = _core.run_msolve

    def moved(*a, **k):
        res = real(*a, **k)
        box = list(res.boxes[0])
        lo, hi = box[0]
        w = Fraction(1, 1000)
        box[0] = (hi + w, hi + 2 * w)
        res.boxes[0] = box
        return res

    tasks = rounded_tasks(0, 2, 3)
    plain = enumerate_critical_points(tasks, 1)
    assert plain.complete and all(o["matches_msolve_box"] for o in plain.data["orbit_list"])
    monkeypatch.setattr(_core, "run_msolve", moved)
    r = enumerate_critical_points(tasks, 1)
    flags = [o["matches_msolve_box"] for o in r.data["orbit_list"]]
    assert flags.count(False) == 1 and not r.complete


@pytest.mark.parametrize("k, T, counted", [(1, 3, True), (1, 7, True), (1, 2, False), (2, 3, False), (3, 5, False)])
def test_sign_copies_are_counted_for_rank_one_and_three_or_more_tasks_only(k, T, counted):
    from landscape.enumeration._core import sign_copies_counted

    assert sign_copies_counted(k, T) is counted


@pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")
def test_the_enumeration_reports_its_own_wall_time():
    import time

    t0 = time.perf_counter()
    r = enumerate_critical_points(rounded_tasks(0, 2, 3), 1)
    wall = time.perf_counter() - t0
    assert 0.0 < r.data["wall_time_s"] <= wall + 1e-3


@pytest.mark.parametrize("T,k,lagrange", [(3, 2, False), (3, 1, False), (2, 2, True), (2, 1, True)])
def test_the_certified_system_is_on_the_gauge_slice_for_three_or_more_tasks_and_lagrangian_for_two(T, k, lagrange):
    """The square system certified at each point: with T >= 3 and k >= 2 the slice's fixed
    entries (above the diagonal of each U_t's top k x k block) are not unknowns, and with
    T = 2 every entry is, plus the multiplier mu of the boost constraint (one equation more)."""
    pytest.importorskip("flint")
    from landscape.enumeration._points import _Square
    from landscape.enumeration._systems import exact_tasks

    d = 3
    sq = _Square(exact_tasks(rounded_tasks(0, d, T, k)), T, d, k)
    assert sq.lagrange is lagrange
    fixed = {(i, l) for l in range(k) for i in range(l)} if not lagrange else set()
    assert sq.free == [(t, i, l) for t in range(T) for l in range(k) for i in range(d) if (i, l) not in fixed]
    assert sq.n_u == T * d * k - T * len(fixed)
    assert sq.compiled.n == sq.n_u + int(lagrange)
    U = np.random.default_rng(1).standard_normal((T, d, k))
    for i, l in fixed:
        U[:, i, l] = 0.0
    x = sq.pack(U)
    assert x.size == sq.compiled.n and np.array_equal(sq.unpack(x), U)


def test_the_float_classifier_s_failure_is_reported_not_fatal(monkeypatch):
    """Each orbit carries the float classifier's verdict beside the certified class; when
    that classifier raises, the orbit says so ('error: <type>') and the enumeration goes on."""
    import landscape._classify as cl
    from landscape.enumeration._points import _existing_kind

    p = ls.random_instance(np.random.default_rng(0), 3, 3, 1)

    def broken(problem, U, *a, **k):
        raise FloatingPointError("planted")

    assert _existing_kind(p.problem, p.U_star) == "global_minimum"
    monkeypatch.setattr(cl, "classify", broken)
    assert _existing_kind(p.problem, p.U_star) == "error: FloatingPointError"


@pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")
def test_the_precise_fallback_keeps_exactly_the_zero_blocks_zero(monkeypatch):
    """When the float Krawczyk test fails, the 256-bit Newton point is tested instead, with the
    coordinates of each zero block (u_t = 0) set to exactly 0 -- those and no others."""
    from landscape.enumeration import _points as P

    real_certify, real_krawczyk = P._certify_point, P.krawczyk
    seen, ctx = [], {}

    def certify(problem, sq, S, U, zero, *rest):
        ctx.update(sq=sq, zero=list(zero))
        return real_certify(problem, sq, S, U, zero, *rest)

    def krawczyk(system, x, **kw):
        if "inverse_bits" not in kw:  # the float test fails: the fallback runs
            kr = real_krawczyk(system, x, **kw)
            kr.certified = False
            return kr
        sq = ctx["sq"]
        blocks = np.array([f[0] for f in sq.free])
        u = np.asarray(x)[: sq.n_u]
        seen.append((ctx["zero"], blocks, u.copy()))
        return real_krawczyk(system, x, **kw)

    monkeypatch.setattr(P, "_certify_point", certify)
    monkeypatch.setattr(P, "krawczyk", krawczyk)
    from landscape.enumeration import _core

    monkeypatch.setattr(_core, "_certify_point", certify)
    enumerate_critical_points(rounded_tasks(0, 2, 3), 1)
    mixed = [(z, b, u) for z, b, u in seen if z and len(z) < len(set(b.tolist()))]
    assert mixed, "no point with some but not all blocks zero"
    for zero, blocks, u in mixed:
        inside = np.isin(blocks, zero)
        assert np.all(u[inside] == 0.0) and np.any(u[~inside] != 0.0)
        for t in set(blocks.tolist()) - set(zero):
            assert np.any(u[blocks == t] != 0.0)


def test_a_point_off_the_slice_is_reported_degenerate_and_not_certified():
    """k = 2: a task whose top 2 x 2 block is singular does not meet the slice transversally;
    the point comes back uncertified (so the enumeration cannot call itself complete) and
    degenerate, with G at the point."""
    import landscape as ls
    from landscape._classify import DEGENERATE
    from landscape.enumeration import _points as P

    rng = np.random.default_rng(0)
    problem = ls.LoraMLProblem(rng.standard_normal((3, 3, 3)), 2)
    U = rng.standard_normal((3, 3, 2))
    U[1, :2, :] = [[1.0, 2.0], [2.0, 4.0]]
    assert P._to_slice(U) is None
    entry = P._certify_point(problem, None, None, U, [], None, 0, None)
    assert entry["certified"] is False and entry["class"] == DEGENERATE
    assert entry["G"] == problem.reduced_loss(U) and "slice" in entry["reason"]
