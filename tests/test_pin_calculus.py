"""theory._checks_calculus (section 5) pinned: its two tolerances as exact formulas on inputs
whose norms are exact, each check able to fail (a shifted A, a wrong gradient), the Taylor
step range, and the branch of the zero-mode count at the boundaries d = 2k (T = 2) and
d = 3k (T >= 3) of its hypotheses."""
from __future__ import annotations

import numpy as np
import pytest

from landscape import LoraMLProblem, taylor_check, vec_factors
from theory import _checks_calculus as cc
from theory._result import EPS


def _problem(T=3, d=4, k=2):
    tasks = np.zeros((T, d, d))
    tasks[0, 1, 2] = 3.0  # ||tasks||_F = 3
    U = np.zeros((T, d, k))
    U[1, 0, k - 1] = 2.0  # sum U^2 = 4, ||U||_F = 2
    return LoraMLProblem(tasks, k), U


def test_equivalence_tolerance_is_16_T_d_eps_norms():
    prob, U = _problem()
    assert cc.equivalence_tolerance(prob, U) == 16 * 3 * 4 * EPS * (3.0 + 4.0) * (1 + 2.0) == 4032 * EPS
    prob, U = _problem(T=2, d=5, k=1)
    assert cc.equivalence_tolerance(prob, U) == 16 * 2 * 5 * (3.0 + 4.0) * 3.0 * EPS


def test_schur_tolerance_is_10_d2_eps_norm_terms():
    H = np.zeros((6, 6))
    H[0, 0], H[5, 1] = 3.0, 4.0  # ||H||_F = 5
    assert cc.schur_tolerance(H, 4, 2) == 10 * 16 * EPS * (5.0 + 25.0 / 2)
    assert cc.schur_tolerance(H, 3, 5) == 10 * 9 * EPS * (5.0 + 5.0)


@pytest.mark.parametrize("seed", range(4))
def test_equivalence_holds_at_a_of_u_and_fails_off_it(seed):
    rng = np.random.default_rng(seed)
    T, d, k = 3, 4, 2
    prob = LoraMLProblem(rng.standard_normal((T, d, d)), k)
    U = rng.standard_normal((T, d, k))
    A = prob.optimal_A(U)
    tol = cc.equivalence_tolerance(prob, U)
    assert cc.equivalence_error(prob, A, U) <= tol
    # the error is the sum of the two gradients' distances, each seen on its own
    B = A + 1e-3 * rng.standard_normal((d, d))
    gA, gU = prob.grad(B, U)
    assert cc.equivalence_error(prob, B, U) == float(np.linalg.norm(gA)) + float(np.linalg.norm(gU - prob.reduced_grad(U)))
    assert np.linalg.norm(gA) > 0 and np.linalg.norm(gU - prob.reduced_grad(U)) > 0
    # off A(U) by a relative 1e-9: the A-gradient alone is T * shift, far above the rounding bound
    shift = 1e-9 * np.linalg.norm(A) * np.eye(d) / np.sqrt(d)
    assert cc.equivalence_error(prob, A + shift, U) > 10 * tol


def test_taylor_steps_span_the_decades_below_the_cancellation_range():
    assert np.allclose(cc.TAYLOR_STEPS, [10.0 ** (-2 - 0.5 * i) for i in range(7)], rtol=1e-14, atol=0)
    assert cc.TAYLOR_DIRECTIONS == 3


@pytest.mark.parametrize("which", ["L", "G"])
def test_a_gradient_off_by_a_thousandth_fails_the_taylor_test_at_these_steps(which):
    rng = np.random.default_rng(3)
    T, d, k = 3, 4, 2
    prob = LoraMLProblem(rng.standard_normal((T, d, d)), k)
    U = rng.standard_normal((T, d, k))
    if which == "L":
        f, g, h, x0 = prob.loss_flat, prob.grad_flat, prob.hvp_flat, prob.pack(rng.standard_normal((d, d)), U)
    else:
        f, g, h, x0 = prob.reduced_loss_flat, prob.reduced_grad_flat, prob.reduced_hvp_flat, vec_factors(U)
    right = [taylor_check(f, g, x0, hvp=h, rng=rng, steps=cc.TAYLOR_STEPS).passed for _ in range(5)]
    wrong = [taylor_check(f, lambda x: 1.001 * g(x), x0, hvp=h, rng=rng, steps=cc.TAYLOR_STEPS).passed
             for _ in range(5)]
    assert sum(right) >= 4 and not any(wrong)


def _zero_mode_labels(size):
    res = cc.check_schur(np.random.default_rng(0), sizes=(size,))
    return [c.label.split(": ", 1)[1] for c in res.cases if "zero eigenvalues" in c.label]


@pytest.mark.parametrize("size, label", [
    ((4, 2, 2), "zero eigenvalues of S at a global min (Tk(k-1)/2 + k^2)"),  # T = 2, d = 2k: the O(k,k) family
    ((5, 2, 2), "zero eigenvalues of S at a global min (Tk(k-1)/2 + k^2)"),  # T = 2, d > 2k
    ((3, 2, 2), "zero eigenvalues of S at a global min (>= Tk(k-1)/2)"),     # T = 2, d < 2k
    ((6, 3, 2), "zero eigenvalues of S at a global min (Tk(k-1)/2)"),        # T = 3, d = 3k: isolated (Thm 3.3)
    ((7, 3, 2), "zero eigenvalues of S at a global min (Tk(k-1)/2)"),        # T = 3, d > 3k
    ((5, 3, 2), "zero eigenvalues of S at a global min (>= Tk(k-1)/2)"),     # T = 3, d < 3k
])
def test_zero_mode_count_branches_at_the_boundaries_of_their_hypotheses(size, label):
    assert _zero_mode_labels(size) == [label]


def _case(res, text):
    return next(c for c in res.cases if text in c.label)


def test_the_t2_zero_mode_count_is_tk_k_minus_1_over_2_plus_k_squared_at_k3():
    """k = 3, where k^2 = 9 differs from every other small power of k: 3 orbit zeros + 9 boosts."""
    res = cc.check_schur(np.random.default_rng(0), sizes=((6, 2, 3),))
    case = _case(res, "zero eigenvalues of S at a global min (Tk(k-1)/2 + k^2)")
    assert case.predicted == 2 * 3 + 9 == case.measured and case.passed


def test_below_the_isolation_hypotheses_the_zero_count_is_at_least_the_orbits_and_may_equal_it():
    res = cc.check_schur(np.random.default_rng(0), sizes=((2, 3, 1),))
    case = _case(res, "(>= Tk(k-1)/2)")
    assert case.measured == 0 and case.passed  # T k (k - 1) / 2 = 0 zeros needed, none found: holds


def test_the_equivalence_case_fails_beyond_its_tolerance(monkeypatch):
    real = cc.equivalence_tolerance
    monkeypatch.setattr(cc, "equivalence_error", lambda prob, A, U: 2 * real(prob, U))
    res = cc.check_schur(np.random.default_rng(0), sizes=((3, 3, 1),))
    assert not _case(res, "grad L(A(U),U) = (0, grad G(U))").passed


def test_default_sizes_and_the_majority_of_three_directions(monkeypatch):
    seen = {}

    def capture(name, configs, sizes, *, default=()):
        seen["default"] = default
        raise RuntimeError("stop")

    monkeypatch.setattr(cc, "resolve_sizes", capture)
    with pytest.raises(RuntimeError, match="stop"):
        cc.check_schur(np.random.default_rng(0))
    assert seen["default"] == ((4, 2, 2), (3, 3, 1), (4, 3, 2), (6, 3, 2))
    assert cc.TAYLOR_DIRECTIONS == 3


@pytest.mark.parametrize("directions,passing,majority", [(5, 3, True), (5, 2, False), (4, 3, True), (4, 2, False)])
def test_taylor_cases_need_a_strict_majority_of_their_directions(monkeypatch, directions, passing, majority):
    """Each Taylor-slope case passes when more than half of its TAYLOR_DIRECTIONS directions
    do: of five, three are enough and two are not; of four, two (a tie) are not
    (taylor_check planted)."""
    import types

    import theory._checks_calculus as CC

    calls = []

    def planted(*a, **k):
        calls.append(None)
        return types.SimpleNamespace(passed=(len(calls) - 1) % directions < passing, slope_gradient=2.0,
                                     slope_hessian=3.0)

    monkeypatch.setattr(CC, "TAYLOR_DIRECTIONS", directions)
    monkeypatch.setattr(CC, "taylor_check", planted)
    res = CC.check_schur(np.random.default_rng(0), sizes=((3, 2, 1),))
    taylor = [c for c in res.cases if "Taylor slopes" in c.label]
    assert len(taylor) == 2 and len(calls) == 2 * directions
    assert [bool(c.passed) for c in taylor] == [majority, majority]


def test_the_schur_case_fails_when_s_is_not_the_schur_complement_of_h(monkeypatch):
    """||Schur(H) - S||_F is compared with its tolerance: the case passes on the analytic S
    and fails once S is moved by 1e-6 of its size."""
    res = cc.check_schur(np.random.default_rng(0), sizes=((3, 2, 1),))
    (case,) = [c for c in res.cases if c.label.endswith("||Schur(H) - S||_F")]
    assert case.passed and case.measured <= case.tolerance
    real = LoraMLProblem.schur_complement

    def moved(self, U):
        S = real(self, U)
        return S + 1e-6 * np.max(np.abs(S)) * np.eye(S.shape[0])

    monkeypatch.setattr(LoraMLProblem, "schur_complement", moved)
    res = cc.check_schur(np.random.default_rng(0), sizes=((3, 2, 1),))
    (case,) = [c for c in res.cases if c.label.endswith("||Schur(H) - S||_F")]
    assert not case.passed and case.measured > case.tolerance
