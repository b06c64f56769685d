"""Pins of the Newton polish (landscape/_search/polish.py): each candidate step against an
independent formula, the dampings and the stopping threshold exactly, strict decrease.

The polish takes whichever of its candidate steps first lowers the gradient norm, so a
wrong candidate can hide behind a right one in end-to-end tests (cosmic-ray found six
such survivors); here every candidate is compared on its own."""
from __future__ import annotations

import types

import numpy as np
import pytest
from scipy.sparse.linalg import minres

import landscape as ls
from landscape._factored import reduced_grad, reduced_hvp_operator
from landscape._objective import unvec_factors, vec_factors
from landscape._search import polish
from landscape._search.result import problem_scale


@pytest.fixture(scope="module")
def near_saddle():
    """A (4, 3, 1) problem and a point near (not at) a critical point, S well away from singular."""
    inst = ls.random_instance(np.random.default_rng(11), 4, 3, 1)
    P = inst.problem
    U = np.random.default_rng(3).standard_normal((P.T, P.d, P.k))
    return P, U, reduced_grad(P, U)


def test_dampings_and_thresholds_are_pinned():
    assert polish.LM_DAMPINGS == (1e-12, 1e-10, 1e-08, 1e-06, 1e-04, 1e-02, 1.0)
    assert polish.POLISH_GTOL_REL == 1e-14 and polish.PINV_RTOL == 1e-10
    assert polish.POLISH_MAX_STEPS == 10 and polish.MINRES_MAXITER == 500


def test_default_gtol_is_rel_times_scale_to_the_three_halves():
    inst = ls.random_instance(np.random.default_rng(0), 4, 3, 1)
    s = problem_scale(inst.problem)
    assert polish.default_gtol(inst.problem) == pytest.approx(1e-14 * s**1.5, rel=1e-15, abs=0)
    # the same instance scaled by 4: s by 4, the threshold by 8
    big = ls.LoraMLProblem(4.0 * inst.problem.tasks, inst.problem.k)
    assert polish.default_gtol(big) == pytest.approx(8 * polish.default_gtol(inst.problem), rel=1e-12)


def test_dense_candidates_are_newton_then_each_damped_step(near_saddle):
    P, U, g = near_saddle
    steps = polish.candidate_steps(P, U, g, "dense")
    S = P.schur_complement(U)
    gv = vec_factors(g)
    assert len(steps) == 1 + len(polish.LM_DAMPINGS)
    lam = np.linalg.eigvalsh(S)
    rho = np.max(np.abs(lam))
    assert np.min(np.abs(lam)) > 1e-6 * rho  # S invertible here: the pseudo-inverse is the inverse
    np.testing.assert_allclose(steps[0], -np.linalg.solve(S, gv), rtol=1e-8, atol=0)
    for mu, step in zip(polish.LM_DAMPINGS, steps[1:]):
        want = -np.linalg.solve(S @ S + mu * rho**2 * np.eye(S.shape[0]), S @ gv)
        np.testing.assert_allclose(step, want, rtol=1e-7, atol=1e-12 * np.linalg.norm(want))


def test_dense_newton_step_drops_the_kernel():
    """On a k = 2 point the O(2) orbit puts exact zeros in S: the Newton step is -S^+ g with
    those eigenvalues cut (numpy's pinv at the same relative cut-off), not a huge step."""
    inst = ls.random_instance(np.random.default_rng(5), 5, 3, 2)
    P = inst.problem
    U = inst.U_star + 1e-3 * np.random.default_rng(1).standard_normal(inst.U_star.shape)
    g = reduced_grad(P, U)
    S = P.schur_complement(U)
    step = polish.candidate_steps(P, U, g, "dense")[0]
    want = -np.linalg.pinv(S, rcond=polish.PINV_RTOL, hermitian=True) @ vec_factors(g)
    np.testing.assert_allclose(step, want, rtol=1e-6, atol=1e-9 * np.linalg.norm(want))


def test_hvp_candidates_halve_the_minres_newton_step(near_saddle):
    P, U, g = near_saddle
    steps = polish.candidate_steps(P, U, g, "hvp")
    newton, _ = minres(reduced_hvp_operator(P, U), -vec_factors(g), rtol=1e-12, maxiter=polish.MINRES_MAXITER)
    assert len(steps) == 6
    for j, step in enumerate(steps):
        np.testing.assert_array_equal(step, newton * 0.5**j)
    S = P.schur_complement(U)
    np.testing.assert_allclose(S @ steps[0], -vec_factors(g), rtol=1e-6, atol=1e-9 * np.linalg.norm(g))


def _point_with_gradient(P, U_crit, target):
    """U_crit + t v with ||grad G|| = target (t found by bisection on the smooth path)."""
    v = np.random.default_rng(2).standard_normal(U_crit.shape)
    lo, hi = 0.0, 1.0
    while float(np.linalg.norm(reduced_grad(P, U_crit + hi * v))) < target:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(np.linalg.norm(reduced_grad(P, U_crit + mid * v))) < target:
            lo = mid
        else:
            hi = mid
    return U_crit + lo * v


@pytest.mark.parametrize("mode", ["dense", "hvp"])
def test_polish_stops_at_its_threshold_and_not_before(mode):
    inst = ls.random_instance(np.random.default_rng(4), 4, 3, 1)
    P = inst.problem
    U_crit, _ = polish.newton_polish(P, inst.U_star, mode=mode, gtol=0.0)
    tol = polish.default_gtol(P)
    below = _point_with_gradient(P, U_crit, 0.5 * tol)
    assert 0 < np.linalg.norm(reduced_grad(P, below)) <= tol
    U, accepted = polish.newton_polish(P, below, mode=mode)
    assert accepted == 0 and np.array_equal(U, below)  # already below the threshold: untouched
    above = _point_with_gradient(P, U_crit, 1e3 * tol)
    U, accepted = polish.newton_polish(P, above, mode=mode)
    assert accepted >= 1 and np.linalg.norm(reduced_grad(P, U)) < np.linalg.norm(reduced_grad(P, above))


@pytest.mark.parametrize("mode", ["dense", "hvp"])
def test_a_step_must_lower_the_gradient_strictly(mode, monkeypatch):
    """A candidate that leaves ||grad G|| equal is not a step: the polish stops (with
    ``<=`` it would 'accept' the null step POLISH_MAX_STEPS times)."""
    inst = ls.random_instance(np.random.default_rng(4), 4, 3, 1)
    P = inst.problem
    U0 = inst.U_star + 1e-2
    monkeypatch.setattr(polish, "candidate_steps", lambda problem, U, g, mode: [np.zeros(U.size)])
    U, accepted = polish.newton_polish(P, U0, mode=mode, gtol=0.0)
    assert accepted == 0 and np.array_equal(U, U0)


def test_pseudo_inverse_cut_is_relative_and_strict():
    """Eigenvalues with |lambda| <= PINV_RTOL * max|lambda| are the kernel: on a diagonal S
    one just above the cut is inverted, one exactly at it is dropped, signs do not matter."""
    rho = 2.0
    cut = polish.PINV_RTOL * rho  # exactly 2e-10
    lam = np.array([rho, cut * (1 + 1e-9), cut, -1.5 * cut, cut * (1 - 1e-9)])
    fake = types.SimpleNamespace(schur_complement=lambda U: np.diag(lam))
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 5, 1)
    step = polish.candidate_steps(fake, np.zeros((1, 5, 1)), g, "dense")[0]
    want = -np.array([1.0 / rho, 2.0 / lam[1], 0.0, 4.0 / lam[3], 0.0])
    np.testing.assert_allclose(step, want, rtol=1e-12, atol=0)
    # the same at a 1000 times larger scale: the cut moves with max|lambda|
    fake_big = types.SimpleNamespace(schur_complement=lambda U: np.diag(1e3 * lam))
    np.testing.assert_allclose(polish.candidate_steps(fake_big, np.zeros((1, 5, 1)), g, "dense")[0], want / 1e3,
                               rtol=1e-12, atol=0)


def test_a_point_already_below_the_tolerance_is_returned_untouched():
    """newton_polish stops before any step once ||grad G|| <= gtol: the point comes back as
    given, with no step accepted (a further Newton step would still lower the gradient)."""
    import landscape as ls
    from landscape._search.polish import newton_polish

    inst = ls.random_instance(np.random.default_rng(0), 3, 3, 1)
    U = inst.U_star + 1e-4 * np.random.default_rng(1).standard_normal(inst.U_star.shape)
    out, accepted = newton_polish(inst.problem, U, gtol=1.0)
    assert accepted == 0 and np.array_equal(out, U)
    _, steps = newton_polish(inst.problem, U, gtol=0.0, max_steps=2)
    assert steps >= 1  # the same point does admit a decreasing step


@pytest.mark.parametrize("mode", ["dense", "hvp"])
def test_a_step_that_raises_the_gradient_is_not_taken(mode, monkeypatch):
    """Candidates that raise ||grad G|| are passed over for the first that lowers it, and
    when none lowers it the polish stops where it is (with '!=' for '<' it would take the
    first candidate that merely changes the norm)."""
    inst = ls.random_instance(np.random.default_rng(4), 4, 3, 1)
    P = inst.problem
    U0 = inst.U_star + 1e-2
    g0 = reduced_grad(P, U0)
    newton = polish.candidate_steps(P, U0, g0, mode)[0]
    away = -10.0 * newton  # a step far the wrong way: the gradient grows
    monkeypatch.setattr(polish, "candidate_steps", lambda problem, U, g, mode: [away])
    U, accepted = polish.newton_polish(P, U0, mode=mode, gtol=0.0)
    assert accepted == 0 and np.array_equal(U, U0)
    monkeypatch.setattr(polish, "candidate_steps", lambda problem, U, g, mode: [away, newton])
    U, accepted = polish.newton_polish(P, U0, mode=mode, gtol=0.0, max_steps=1)
    assert accepted == 1
    np.testing.assert_array_equal(U, U0 + unvec_factors(newton, P.T, P.d, P.k))


def test_the_dense_mode_is_compared_by_value_not_identity():
    """A mode string built at run time (equal, not the same object) selects the dense steps."""
    inst = ls.random_instance(np.random.default_rng(4), 4, 3, 1)
    P, U = inst.problem, inst.U_star + 1e-2
    g = reduced_grad(P, U)
    built, literal = "".join(["den", "se"]), "dense"
    assert built == literal and built is not literal
    got, want = polish.candidate_steps(P, U, g, built), polish.candidate_steps(P, U, g, "dense")
    assert len(got) == len(want) == 1 + len(polish.LM_DAMPINGS)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["auto", "Dense", "", "lanczos"])
def test_an_unknown_curvature_mode_is_refused_not_run_as_hvp(mode):
    P = ls.random_instance(np.random.default_rng(0), 3, 3, 1).problem
    U = np.random.default_rng(1).standard_normal((3, 3, 1))
    with pytest.raises(ValueError, match="unknown curvature mode"):
        polish.candidate_steps(P, U, P.reduced_grad(U), mode)
