"""Reported numbers of the minima checks, against their definitions (issue 16, item 8:
survivors of the cosmic-ray sample of ``theory/_checks_minima.py``).

``check_thm32_gd`` polishes the official GD's endpoint by Levenberg-Marquardt and reports
how far the polish moved: ||A - A_gd||_F + ||U - U_gd||_F between the point the polish
started from and the point it returned (recorded here by wrapping ``lm_solve``).
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import theory._checks_minima as _minima

from ._pin_tools import patch_thm32_structures, thm32_structure_at


def test_thm32_gd_reports_the_distance_the_polish_moved(monkeypatch):
    calls = []
    orig = _minima.lm_solve

    def recording(problem, A0, U0, **kw):
        out = orig(problem, A0, U0, **kw)
        calls.append((np.array(A0), np.array(U0), out[0], out[1]))
        return out

    monkeypatch.setattr(_minima, "lm_solve", recording)
    res = _minima.check_thm32_gd(np.random.default_rng(0), d=4, k=1, outer=300)
    assert len(calls) == 1
    A0, U0, A, U = calls[0]
    moved = float(np.linalg.norm(A - A0)) + float(np.linalg.norm(U - U0))
    assert moved > 0
    shown = float(re.search(r"\(moved ([^)]+)\)", res.measured).group(1))
    assert shown == pytest.approx(moved, rel=1e-3, abs=0)  # fmt keeps 4 significant digits


@pytest.mark.parametrize("offset,holds", [(0.0, True), (1e-9, False)])
def test_thm33_control_loss_case_is_at_rounding_level(monkeypatch, offset, holds):
    """The published second minimiser has loss exactly 0; the case accepts the rounding of
    its residual (entries of order the tasks, a few eps each) and nothing more: the same
    point with Q moved by 1e-9 per entry (loss ~1e-18, far above (32 eps scale)^2 / 2)
    must fail it."""
    Q, U_hat = _minima.thm33_counterexample_minimiser()
    monkeypatch.setattr(_minima, "thm33_counterexample_minimiser", lambda: (Q + offset, U_hat))
    res = _minima.check_thm33_control_d2k(np.random.default_rng(0), starts=4)
    case = res.cases[0]
    assert case.label.startswith("published second minimiser: loss")
    assert case.passed is holds
    assert case.tolerance < 1e-25


# ---------------------------------------------------------------- Thm 3.2 / Cor 1 at their boundaries
@pytest.mark.parametrize("inertia, holds", [((2, 2), True), ((1, 2), True), ((0, 0), True), ((2, 0), True),
                                            ((3, 2), False), ((2, 3), False)])
def test_inertia_of_Q_holds_for_every_inertia_up_to_k_k(inertia, holds):
    assert bool(thm32_structure_at(inertia=inertia).holds(2, 7)["inertia(Q) <= (k,k)"]) is holds


@pytest.mark.parametrize("factor, holds", [(1.0, True), (np.nextafter(1.0, 2.0), False)])
def test_exact_rank_3k_fine_tune_holds_up_to_half_d_tau_squared(factor, holds):
    tau, d = 1e-3, 7
    bound = 0.5 * d * tau ** 2
    assert bool(thm32_structure_at(tau=tau, ey_3k=bound * factor).holds(2, d)["exact rank-3k fine-tune"]) is holds


@pytest.mark.parametrize("factor, holds", [(0.5, True), (2.0, False)])
def test_the_cor1_case_bound_is_half_d_tau_squared(monkeypatch, factor, holds):
    """The rank-3k fine-tune's Eckart-Young tail measured at twice (half) 0.5 d tau^2 on
    every point must fail (pass): tau ~ 1e-12 here, so any bound of another power of tau
    (0.5 d / tau^2 is ~1e24) could not tell them apart."""
    d = 7
    patch_thm32_structures(monkeypatch, ey_3k=lambda r: factor * 0.5 * d * r.tau ** 2)
    res = _minima.check_thm32(np.random.default_rng(0), configs=((d, 2),), boosts=2)
    case = next(c for c in res.cases if "rank-3k fine-tune loss (Cor 1)" in c.label)
    assert bool(case.passed) is holds


def test_thm32_gd_predicts_rank_2k():
    res = _minima.check_thm32_gd(np.random.default_rng(0), d=4, k=1, outer=50)
    assert "rank(A-A*) = 2," in res.predicted


def test_f1_residual_tolerance_is_the_rounding_of_cosh_squared_sums():
    """Entries of R on the F.1 branches are sums of products of size cosh^2(theta), each
    rounded at about 4 eps, two per entry: 8 eps cosh^2(theta_max), times the rounding
    factor. The bound is checked to hold: every ||A||_F on a fine grid agrees with the
    closed form to 8 eps cosh^2 (so it is the rounding the check allows for, not a guess)."""
    import math

    from landscape import f1_point

    theta_max = 2.0
    res = _minima.check_f1(np.random.default_rng(0), dims=(2,), theta_max=theta_max, n_theta=5, starts=2)
    want = _minima.RESIDUAL_ROUNDING_FACTOR * 8 * _minima.EPS * math.cosh(theta_max) ** 2
    case = next(c for c in res.cases if "||A||_F vs closed form" in c.label)
    assert case.tolerance == want
    worst = 0.0
    for th in np.linspace(-theta_max, theta_max, 401):
        A, _ = f1_point(th, 1, 1, 2)
        pred = abs(math.sinh(th)) * math.sqrt(2 * (math.sinh(th) ** 2 + math.cosh(th) ** 2))
        worst = max(worst, abs(float(np.linalg.norm(A)) - pred))
    assert worst <= 8 * _minima.EPS * math.cosh(theta_max) ** 2


# ---------------------------------------------------------------------- third sample's survivors
def _f1_branch_case(monkeypatch, factor, d=2, theta=0.7):
    """check_f1 with the LM search replaced by one zero whose A is ``factor`` times the
    first-order bound 10 r / sigma_+ (+ rounding) away from its branch point."""
    from landscape import f1_instance, f1_point

    prob = f1_instance(d).problem
    A_b, U_b = f1_point(theta, 1, 1, d)
    sj = np.linalg.svd(_minima._residual_jacobian(prob, U_b), compute_uv=False)
    nonzero = sj[sj > _minima.JACOBIAN_NULL_RTOL * sj[0]]
    sigma_plus, sigma_next = float(nonzero[-1]), float(nonzero[-2])
    assert sigma_next > 1.5 * sigma_plus  # the two smallest differ: picking the wrong one matters
    r = 1e-3 * _minima.ZERO_RESIDUAL_RTOL * float(np.linalg.norm(prob.tasks))
    bound = 10 * r / sigma_plus + _minima.ROUNDING_FLOOR_FACTOR * _minima.EPS * (1 + np.cosh(theta) ** 2)
    dA = np.zeros((d, d))
    dA[0, 0] = factor * bound
    monkeypatch.setattr(_minima, "zero_loss_search", lambda problem, rng, starts: [(A_b + dA, U_b.copy(), r)])
    res = _minima.check_f1(np.random.default_rng(0), dims=(d,), n_theta=5, starts=4)
    (case,) = [c for c in res.cases if "LM zeros on a branch" in c.label]
    return case


@pytest.mark.parametrize("factor, holds", [(0.8, True), (1.25, False)])
def test_f1_branch_distance_is_ten_residuals_over_the_smallest_nonzero_singular_value(monkeypatch, factor, holds):
    case = _f1_branch_case(monkeypatch, factor)
    assert case.passed is holds
    assert case.measured == f"max dist/bound = {_minima.fmt(factor)}"


def test_thm33_control_loss_tolerance_is_rounding_of_its_residual_entries():
    """Entries of R at the published minimiser are sums of products of size at most
    ||tasks|| + ||U||_F^2 + ||Q||: the loss tolerance is half the square of that rounding."""
    from landscape import thm33_counterexample_instance, thm33_counterexample_minimiser

    res = _minima.check_thm33_control_d2k(np.random.default_rng(0), starts=4)
    inst = thm33_counterexample_instance()
    Q, U = thm33_counterexample_minimiser()
    size = float(np.linalg.norm(inst.problem.tasks)) + float(np.linalg.norm(U)) ** 2 + float(np.linalg.norm(Q))
    (case,) = [c for c in res.cases if c.label == "published second minimiser: loss"]
    assert case.tolerance == pytest.approx(0.5 * (_minima.RESIDUAL_ROUNDING_FACTOR * 4 * _minima.EPS * size) ** 2,
                                           rel=1e-12, abs=0)


def test_thm33_on_two_tasks_fails_and_counts_its_exceptions():
    """T = 2 violates Thm 3.3's T >= 3: zero-loss points with A != A* exist and the check
    fails; the summary counts exactly the points of that case."""
    res = _minima.check_thm33(np.random.default_rng(1), sizes=((2, 2, 1),), gd_sizes=(), starts=8)
    assert not res.passed
    (case,) = [c for c in res.cases if "zero-loss points with A != A*" in c.label]
    assert case.measured >= 1 and not case.passed
    assert re.search(r"zero-loss points, (\d+) with A != A\*", res.measured).group(1) == str(case.measured)


def test_thm33_cor3_verdict_reads_its_tolerance(monkeypatch):
    """On T = 3 >= 3, d = 3k the Cor 3 case passes with cor3_loss_tolerance's bound and fails
    when that bound is negative (the verdict compares with it, nothing looser)."""
    def cor3(res):
        (case,) = [c for c in res.cases if "(Cor 3)" in c.label]
        return case

    case = cor3(_minima.check_thm33(np.random.default_rng(3), sizes=((3, 3, 1),), gd_sizes=(), starts=8))
    assert case.passed and 0.0 <= case.measured <= case.tolerance
    monkeypatch.setattr(_minima, "cor3_loss_tolerance", lambda d, tol_A, w_norm: -1.0)
    bad = cor3(_minima.check_thm33(np.random.default_rng(3), sizes=((3, 3, 1),), gd_sizes=(), starts=8))
    assert bad.tolerance == -1.0 and not bad.passed


def test_thm32_gd_rank_counts_both_signs_of_the_inertia(monkeypatch):
    """rank(A - A*) is p + n: the same 2k when every nonzero eigenvalue is counted positive."""
    orig = _minima.thm32_structure

    def one_signed(*args):
        st = orig(*args)
        return dataclasses.replace(st, inertia=(st.inertia[0] + st.inertia[1], 0))

    monkeypatch.setattr(_minima, "thm32_structure", one_signed)
    res = _minima.check_thm32_gd(np.random.default_rng(2), d=4, k=1, outer=300)
    (rank,) = [c for c in res.cases if c.label == "polished: rank(A - A*) (A != A*)"]
    assert rank.measured == 2 and rank.passed


def test_thm32_family_loss_tolerance_is_the_bound_each_point_is_held_to():
    res = _minima.check_thm32(np.random.default_rng(0), configs=((4, 1),), boosts=3)
    (loss,) = [c for c in res.cases if "loss on the O(k,k) family" in c.label]
    (qsym,) = [c for c in res.cases if "Q symmetric" in c.label]
    assert loss.tolerance == 0.5 * (qsym.tolerance / _minima.EIG_ZERO_FACTOR) ** 2


def test_official_gd_steps_on_non_symmetric_tasks():
    """One inner and one outer step of the official GD: U <- U - lr_U grad_U L with the
    gradient (R + R^T) U of L = 1/2 sum_t ||A + U_t U_t^T - A*_t||^2 (tasks not symmetric),
    then A <- A - lr_A mean_t R_t."""
    from landscape import LoraMLProblem

    rng = np.random.default_rng(5)
    tasks = rng.standard_normal((3, 4, 4))
    prob = LoraMLProblem(tasks, 2)
    A, U = _minima.official_alternating_gd(prob, np.random.default_rng(7), outer=1, inner=1)
    U0 = 0.1 * np.random.default_rng(7).standard_normal((3, 4, 2))
    eps = 1e-6
    grad = np.zeros_like(U0)
    for idx in np.ndindex(*U0.shape):  # central differences of L at A = 0
        e = np.zeros_like(U0)
        e[idx] = eps
        grad[idx] = (prob.loss(np.zeros((4, 4)), U0 + e) - prob.loss(np.zeros((4, 4)), U0 - e)) / (2 * eps)
    U1 = U0 - 0.003 * grad
    np.testing.assert_allclose(U, U1, rtol=0, atol=1e-9)
    R = U1 @ np.swapaxes(U1, 1, 2) - tasks
    np.testing.assert_allclose(A, -0.03 * R.mean(axis=0), rtol=0, atol=1e-12)  # U1 to 1e-9


# -------------------------------------------------------------------- survivors of a fourth sample
def test_gd_endpoint_loss_tolerance_is_10_gnorm2_over_2_sigma2_plus_the_floor():
    """Exact values: 10 * 3^2 / (2 * 2^2) = 11.25 without the floor (scale 0); the floor
    0.5 (1e3 eps s)^2 adds for s = 1e6 (sigma_+ = 1, where 2 sigma^2 and 2^(sigma^2) agree,
    is avoided)."""
    from fractions import Fraction

    from theory._checks_minima import EPS, GD_DISTANCE_FACTOR, ROUNDING_FLOOR_FACTOR, gd_endpoint_loss_tolerance

    assert (GD_DISTANCE_FACTOR, ROUNDING_FLOOR_FACTOR) == (10.0, 1e3)
    assert gd_endpoint_loss_tolerance(3.0, 2.0, 0.0) == 11.25
    assert Fraction(gd_endpoint_loss_tolerance(1.0, 0.5, 0.0)) == Fraction(20)
    floor = 0.5 * (1e3 * EPS * 1e6) ** 2
    assert gd_endpoint_loss_tolerance(0.0, 3.0, 1e6) == pytest.approx(floor, rel=1e-15, abs=0)
    assert gd_endpoint_loss_tolerance(3.0, 2.0, 1e6) == pytest.approx(11.25 + floor, rel=1e-15, abs=0)


def test_thm33_distance_tolerance_is_10_r_over_sigma_min_plus_the_floor():
    from theory._checks_minima import EPS, thm33_distance_tolerance

    sq = np.array([9.0, 5.0, 4.0])  # the smallest singular value last
    assert thm33_distance_tolerance(2.0, sq, 0.0) == 5.0
    assert thm33_distance_tolerance(0.0, sq, 3.0) == pytest.approx(1e3 * EPS * 3.0, rel=1e-15, abs=0)
    assert thm33_distance_tolerance(2.0, sq, 3.0) == pytest.approx(5.0 + 3e3 * EPS, rel=1e-15, abs=0)


def test_cor3_loss_tolerance_is_half_d_times_the_squared_residual_bound():
    """Cor 3's tolerance, d/2 (tol_A + 1e3 eps ||W_T+1||)^2, with exact values on each side
    of its floor (a minus in place of the floor's product made it about 1e6)."""
    from fractions import Fraction

    from theory._checks_minima import EPS, cor3_loss_tolerance

    assert cor3_loss_tolerance(4, 0.5, 0.0) == 0.5
    assert Fraction(cor3_loss_tolerance(3, 2.0, 0.0)) == Fraction(6)
    floor = 1e3 * EPS * 5.0
    assert cor3_loss_tolerance(2, 0.0, 5.0) == pytest.approx(floor**2, rel=1e-15, abs=0)
    assert cor3_loss_tolerance(6, 0.25, 5.0) == pytest.approx(3 * (0.25 + floor) ** 2, rel=1e-15, abs=0)
    assert cor3_loss_tolerance(6, 0.25, 5.0) > cor3_loss_tolerance(6, 0.25, 0.0)


# -------------------------------------------------------------------- survivors of a fifth sample
def test_f1_loss_tolerance_is_half_the_squared_residual_rounding():
    """The F.1 branches' loss tolerance is 0.5 r^2 with r = 8 * 4 eps cosh(theta_max)^2 * 2
    (entries of R are O(cosh^2 theta) sums rounded at ~4 eps each)."""
    import math

    from theory._checks_minima import EPS, RESIDUAL_ROUNDING_FACTOR, check_f1

    res = check_f1(np.random.default_rng(0), dims=(2,), theta_max=1.5, n_theta=5, starts=4)
    r = RESIDUAL_ROUNDING_FACTOR * 4 * EPS * math.cosh(1.5) ** 2 * 2
    case = next(c for c in res.cases if "loss on 4 branches" in c.label)
    assert case.tolerance == pytest.approx(0.5 * r**2, rel=1e-15, abs=0)


def test_thm32_fails_when_its_boosts_leave_o_k_k(monkeypatch):
    """Negative control: a "boost" 2I is not in O(k,k) (2I J 2I = 4J), and the check says so."""
    import theory._checks_minima as M

    monkeypatch.setattr(M, "random_okk", lambda rng, k, scale: 2.0 * np.eye(2 * k))
    res = M.check_thm32(np.random.default_rng(0), configs=((5, 1),), boosts=1)
    case = next(c for c in res.cases if "Lambda J Lambda^T = J" in c.label)
    assert case.measured > 0.5 and not case.passed


def test_thm32_default_sizes_cover_k_1_2_3():
    import inspect

    from theory._checks_minima import check_thm32

    configs = inspect.signature(check_thm32).parameters["configs"].default
    assert sorted(k for _, k in configs) == [1, 2, 3] and all(d >= 2 * k + 1 for d, k in configs)


# --------------------------------------------------- constants at their boundary (a sweep
# loosening each constant 2x or 10x passed this file before these)
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("offset", [0.0, 1e-3])
def test_thm32_zero_tolerance_is_10_times_residual_plus_8_k_plus_3_ulps(k, offset):
    """tau = 10 (sqrt(2 L) + 8 (k + 3) eps scale), scale = ||A*|| + sum_t ||W_t|| + ||U||^2 +
    ||W_test||: at the planted minimum (rounding decides) and 1e-3 away (the residual does)."""
    from landscape import random_instance

    from theory._checks_minima import EPS, thm32_structure

    inst = random_instance(np.random.default_rng(6), 6, 4, k)
    p = inst.problem
    W = p.tasks - inst.A_star[None]
    W_test = np.random.default_rng(7).standard_normal((6, 6))
    A = inst.A_star + offset * np.eye(6)
    st = thm32_structure(p, A, inst.U_star, inst.A_star, W_test)
    scale = (float(np.linalg.norm(inst.A_star)) + float(np.sum(np.linalg.norm(W, axis=(1, 2))))
             + float(np.sum(inst.U_star**2)) + float(np.linalg.norm(W_test)))
    expected = 10 * (np.sqrt(2 * p.loss(A, inst.U_star)) + 8 * (k + 3) * EPS * scale)
    assert st.tau == pytest.approx(expected, rel=1e-12, abs=0)


def _report_with(monkeypatch, sv=None, points=()):
    """uniqueness_report on a planted (6, 3, 1) instance with the search replaced by
    ``points`` (A, U) and, optionally, planted Jacobian singular values."""
    from landscape import random_instance

    inst = random_instance(np.random.default_rng(2), 6, 3, 1)
    monkeypatch.setattr(_minima, "zero_loss_search", lambda problem, rng, starts: [])
    if sv is not None:
        monkeypatch.setattr(_minima, "quotient_jacobian_singular_values", lambda problem, U: np.asarray(sv))
    return inst, _minima.uniqueness_report(inst, np.random.default_rng(0), starts=0,
                                           known_points=[pt(inst) for pt in points])


@pytest.mark.parametrize("side,nullity", [(1 + 1e-3, 0), (1 - 1e-3, 1)])
def test_jacobian_null_threshold_is_1e_8_of_the_largest_singular_value(monkeypatch, side, nullity):
    _, rep = _report_with(monkeypatch, sv=[4.0, 1.0, side * 1e-8 * 4.0])
    assert rep.nullity == nullity


@pytest.mark.parametrize("side,zero", [(1 - 1e-3, 1), (1 + 1e-3, 0)])
def test_zero_residual_threshold_is_1e_9_of_the_tasks_norm(monkeypatch, side, zero):
    """A known point whose residual (A - A* spread over the T tasks) is (1 -+ 1e-3) x 1e-9
    ||tasks||_F counts as a zero of the loss / does not."""
    def point(inst):
        E = np.random.default_rng(3).standard_normal((6, 6))
        r = side * 1e-9 * float(np.linalg.norm(inst.problem.tasks))
        return inst.A_star + r * E / (np.linalg.norm(E) * np.sqrt(3)), inst.U_star

    inst, rep = _report_with(monkeypatch, points=[point])
    assert rep.n_zero == zero


@pytest.mark.parametrize("res_fraction", [0.0, 1e-3])
@pytest.mark.parametrize("side,exceptions", [(1 - 1e-3, 0), (1 + 1e-3, 1)])
def test_uniqueness_tolerance_is_10_r_over_sigma_plus_plus_the_rounding_floor(monkeypatch, res_fraction, side,
                                                                             exceptions):
    """A zero of the loss (residual r as the search reports it) at (1 -+ 1e-3) x
    (10 r / sigma_+ + 1e3 eps ||tasks||_F) from A* is A* / a second minimiser: both at the
    rounding floor alone (r = 0) and with the first-order term (planted sigma_+ = 0.5)."""
    from landscape import random_instance

    inst = random_instance(np.random.default_rng(2), 6, 3, 1)
    scale = float(np.linalg.norm(inst.problem.tasks))
    r = res_fraction * _minima.ZERO_RESIDUAL_RTOL * scale
    tol = 10 * r / 0.5 + 1e3 * _minima.EPS * scale
    E = np.random.default_rng(4).standard_normal((6, 6))
    A = inst.A_star + side * tol * E / np.linalg.norm(E)
    monkeypatch.setattr(_minima, "zero_loss_search", lambda problem, rng, starts: [(A, inst.U_star.copy(), r)])
    monkeypatch.setattr(_minima, "quotient_jacobian_singular_values", lambda problem, U: np.array([4.0, 1.0, 0.5]))
    rep = _minima.uniqueness_report(inst, np.random.default_rng(0), starts=1)
    assert rep.tol_A == pytest.approx(tol, rel=1e-14, abs=0)
    assert (rep.n_zero, rep.n_exceptions) == (1, exceptions)


@pytest.mark.parametrize("starts,need", [(1, 3), (4, 3), (12, 3), (13, 4), (75, 19), (76, 19), (77, 20)])
def test_a_search_must_find_three_zeros_and_a_quarter_of_its_starts(starts, need):
    """max(3, ceil(starts / 4)) zero-loss points, exactly: one fewer is not enough."""
    assert _minima.search_found_enough(need, starts) and not _minima.search_found_enough(need - 1, starts)


@pytest.mark.parametrize("d,k", [(7, 2), (5, 1)])
def test_thm32_cases_state_the_tolerances_their_verdicts_use(d, k):
    """One tau per configuration: the Q cases are within tau, the O(k,k) family's loss within
    (tau / 10)^2 / 2, the fine-tune losses compared with d tau^2 / 2; the eigenvalue case
    predicts 0."""
    res = _minima.check_thm32(np.random.default_rng(0), configs=((d, k),), boosts=2)
    case = {c.label.split(": ", 1)[1]: c for c in res.cases}
    tau = case["Q symmetric, = W_t - U_tU_t^T"].tolerance
    assert tau > 0
    eig = case["min eig(W_t - Q) >= 0"]
    assert eig.predicted == 0.0 and eig.tolerance == tau
    assert case["loss on the O(k,k) family"].tolerance == 0.5 * (tau / 10) ** 2
    assert case["rank-3k fine-tune loss (Cor 1)"].tolerance == 0.5 * d * tau**2
    assert case["rank-k fine-tune loss > 0"].tolerance == 0.5 * d * tau**2
    assert case["A != A* (min ||Q||_F)"].tolerance == tau


def test_the_t2_control_reports_the_exceptions_of_each_of_its_instances():
    """The row's measured text lists, per instance, its count of zero-loss points with A != A*
    (the second of its three cases), and nothing else."""
    res = _minima.check_thm33_control_t2(np.random.default_rng(0), starts=8)
    exc = [c for c in res.cases if "zero-loss points with A != A*" in c.label]
    assert len(exc) == 2 == len(res.cases) // 3
    assert res.measured == ", ".join(f"{c.label.split(':')[0]}: {c.measured}" for c in exc) + " with A != A*"


def test_thm32_summary_reports_the_largest_family_loss_over_every_configuration(monkeypatch):
    """Each family case measures the largest loss over its boosts, and the measured line's
    "max loss" is the largest over all configurations (a stride through the case list would
    read other cases as losses)."""
    seen = []
    real = _minima.thm32_structure

    def recording(*a, **k):
        r = real(*a, **k)
        seen.append(r.loss)
        return r

    monkeypatch.setattr(_minima, "thm32_structure", recording)
    res = _minima.check_thm32(np.random.default_rng(0), configs=((4, 1), (5, 1), (4, 2)), boosts=3)
    losses = [c.measured for c in res.cases if c.label.endswith(": loss on the O(k,k) family")]
    assert losses == [max(seen[i:i + 3]) for i in (0, 3, 6)]
    assert len(set(seen[:3])) == 3  # distinct boosts: the max is not any one of them by chance
    assert res.measured.endswith("max loss " + _minima.fmt(max(losses)))


@pytest.mark.parametrize("sigma", [0.5, 3.0])
def test_gd_endpoint_tolerance_is_ten_gradients_over_sigma_squared_plus_the_rounding_floor(sigma):
    """tol = GD_DISTANCE_FACTOR ||grad L|| / sigma^2 + ROUNDING_FLOOR_FACTOR eps scale, with sigma
    the smallest singular value above the null threshold (first-order distance to the zero)."""
    import math

    import landscape as ls

    inst = ls.random_instance(np.random.default_rng(2), 3, 3, 1)
    p = inst.problem
    A = inst.A_star + 1e-3
    U = inst.U_star
    sing = np.array([4.0, sigma, 1e-14])  # the last one below the null threshold: ignored
    scale = 7.0
    dist, tol, gnorm = _minima.gd_endpoint_distance(p, A, U, inst.A_star, sing, scale)
    gA, gU = p.grad(A, U)
    assert gnorm == math.sqrt(float(np.sum(gA ** 2)) + float(np.sum(gU ** 2)))
    assert tol == 10.0 * gnorm / sigma ** 2 + 1e3 * _minima.EPS * scale
    assert dist == float(np.linalg.norm(A - inst.A_star))


def test_thm33_gd_case_fails_when_the_polished_point_is_off_a_star(monkeypatch):
    """The GD + polish case needs ||A - A*||_F within its tolerance: a polish returning a
    point shifted by 0.1 (residual still reported as zero) fails the case."""
    real = _minima.lm_solve

    def shifted(problem, A0, U0, **kw):
        A, U, r = real(problem, A0, U0, **kw)
        return A + 0.1, U, 0.0

    monkeypatch.setattr(_minima, "lm_solve", shifted)
    res = _minima.check_thm33(np.random.default_rng(1), sizes=(), gd_sizes=((3, 3, 1),), starts=2)
    (case,) = [c for c in res.cases if "GD (rel. err" in c.label and "+ polish" in c.label]
    assert case.measured > case.tolerance and not case.passed


def test_the_gd_endpoint_tolerance_uses_the_endpoint_s_full_gradient_norm(monkeypatch):
    """The GD endpoint's loss tolerance is built from ||grad L(A_gd, U_gd)|| over both blocks,
    sqrt(||grad_A L||^2 + ||grad_U L||^2), and the case label prints that number."""
    seen = {}
    real_gd, real_tol = _minima.official_alternating_gd, _minima.gd_endpoint_loss_tolerance

    def gd(train, rng, outer):
        seen["train"], seen["point"] = train, real_gd(train, rng, outer=outer)
        return seen["point"]

    def tol(gnorm, sigma_plus, scale):
        seen["gnorm"] = gnorm
        return real_tol(gnorm, sigma_plus, scale)

    monkeypatch.setattr(_minima, "official_alternating_gd", gd)
    monkeypatch.setattr(_minima, "gd_endpoint_loss_tolerance", tol)
    res = _minima.check_thm32_gd(np.random.default_rng(0), d=4, k=1, outer=50)
    gA, gU = seen["train"].grad(*seen["point"])
    want = float(np.sqrt(np.sum(gA**2) + np.sum(gU**2)))
    assert np.abs(gA).max() > 0 and np.abs(gU).max() > 0
    assert seen["gnorm"] == pytest.approx(want, rel=1e-12, abs=0)
    (case,) = [c for c in res.cases if c.label.startswith("GD endpoint: loss")]
    assert f"(||grad L|| = {want:.1e})" in case.label


@pytest.mark.parametrize("factor, holds", [(1.01, True), (0.99, False)])
def test_thm32_fine_tune_cases_compare_with_half_d_tau_squared(monkeypatch, factor, holds):
    """Cor 1's two fine-tuning cases at their common threshold d tau^2 / 2 (each structure
    planted with ey at factor x that threshold, tau = 1e-3 so that tau^2 differs from tau by
    far more than the planted factor): rank k strictly above it, rank 3k at most it."""
    real = _minima.thm32_structure

    def planted(*a, **k):
        r = real(*a, **k)
        tau = 1e-3
        level = factor * 0.5 * 4 * tau**2
        return dataclasses.replace(r, tau=tau, ey_k=level, ey_3k=level)

    monkeypatch.setattr(_minima, "thm32_structure", planted)
    res = _minima.check_thm32(np.random.default_rng(0), configs=((4, 1),), boosts=2)
    case = {c.label.split(": ", 1)[1]: c for c in res.cases}
    assert bool(case["rank-k fine-tune loss > 0"].passed) is holds
    assert bool(case["rank-3k fine-tune loss (Cor 1)"].passed) is (not holds)


@pytest.mark.parametrize("exceptions, passed", [(0, False), (1, True), (3, True)])
def test_the_t2_control_needs_at_least_one_zero_loss_point_with_a_ne_a_star(monkeypatch, exceptions, passed):
    """T = 2 violates Thm 3.3, so the control predicts >= 1 zero-loss point with A != A*: a
    search that finds none (every zero-loss point at A*) fails that case, one or more pass it."""
    real = _minima.uniqueness_report

    def planted(inst, rng, **kw):
        return dataclasses.replace(real(inst, rng, **kw), n_exceptions=exceptions)

    monkeypatch.setattr(_minima, "uniqueness_report", planted)
    res = _minima.check_thm33_control_t2(np.random.default_rng(0), starts=8)
    exc = [c for c in res.cases if "zero-loss points with A != A*" in c.label]
    assert len(exc) == 2 and all(c.predicted == ">= 1" and c.measured == exceptions for c in exc)
    assert all(bool(c.passed) is passed for c in exc)


def test_the_official_gd_runs_the_papers_3000_outer_steps_by_default():
    """THEORY.md 9.1: 3000 outer steps (10 inner after each); the Thm 3.3 row's GD and the
    T = 2 structure row default to the same count as the GD itself."""
    import inspect

    outer = inspect.signature(_minima.official_alternating_gd).parameters["outer"].default
    assert outer == 3000
    assert inspect.signature(inspect.unwrap(_minima.check_thm33)).parameters["gd_outer"].default == outer
    assert inspect.signature(inspect.unwrap(_minima.check_thm32_gd)).parameters["outer"].default == outer


def test_the_okk_membership_error_is_relative_to_the_norm_of_lambda_squared(monkeypatch):
    """The O(k,k) case measures ||Lambda J Lambda^T - J|| / ||Lambda||^2: with Lambda = 2 I
    (k = 1, not in O(1,1)) that is ||3 J|| / (4 * 2) = 3 sqrt(2) / 8, above OKK_RTOL: it fails."""
    import math

    import theory._checks_minima as M

    monkeypatch.setattr(M, "random_okk", lambda rng, k, scale: 2.0 * np.eye(2 * k))
    res = M.check_thm32(np.random.default_rng(0), configs=((3, 1),), boosts=1)
    (case,) = [c for c in res.cases if c.label.endswith("Lambda J Lambda^T = J (rel.)")]
    assert case.measured == pytest.approx(3 * math.sqrt(2) / 8, rel=1e-12) and not case.passed


# ---------------------------------------------------------------------- seed-33 survivors
def test_f1_zero_residual_threshold_is_inclusive(monkeypatch):
    """A search point whose residual equals ZERO_RESIDUAL_RTOL ||tasks||_F exactly is a zero."""
    from landscape import f1_instance, f1_point

    prob = f1_instance(2).problem
    A_b, U_b = f1_point(0.7, 1, 1, 2)
    r = _minima.ZERO_RESIDUAL_RTOL * float(np.linalg.norm(prob.tasks))
    monkeypatch.setattr(_minima, "zero_loss_search", lambda problem, rng, starts: [(A_b, U_b.copy(), r)])
    res = _minima.check_f1(np.random.default_rng(0), dims=(2,), n_theta=5, starts=4)
    (case,) = [c for c in res.cases if "LM zeros on a branch" in c.label]
    assert "(1/4 zero)" in case.label


@pytest.mark.parametrize("wrong", [(1, 1), (1, -1), (-1, 1), (-1, -1)])
def test_f1_checks_all_four_branches(monkeypatch, wrong):
    """The loss case covers the four sign branches: a stand-in that is wrong on any one of them
    (A off by 0.1 there) makes the check fail."""
    from landscape import f1_point

    def point(theta, s1, s2, d):
        A, U = f1_point(theta, s1, s2, d)
        return (A + 0.1 * np.eye(d) if (s1, s2) == wrong else A), U

    monkeypatch.setattr(_minima, "f1_point", point)
    res = _minima.check_f1(np.random.default_rng(0), dims=(2,), n_theta=5, starts=2)
    (case,) = [c for c in res.cases if "loss on 4 branches" in c.label]
    assert not case.passed


@pytest.mark.parametrize("exceptions, nullity, unique", [(0, 0, True), (1, 0, False), (0, 1, False), (2, 3, False)])
def test_uniqueness_needs_no_exception_and_no_nullity(exceptions, nullity, unique):
    fields = {f.name: 0 for f in dataclasses.fields(_minima.UniquenessReport)}
    rep = _minima.UniquenessReport(**{**fields, "n_exceptions": exceptions, "nullity": nullity})
    assert rep.unique is unique


def test_thm32_check_runs_the_specified_configurations():
    """THEORY.md section 4: the Thm 3.2 check's random boosts are run for (d, k) in
    {(7, 2), (10, 1), (12, 3)}."""
    import inspect

    p = inspect.signature(_minima.check_thm32).parameters
    assert tuple(p["configs"].default) == ((7, 2), (10, 1), (12, 3))
