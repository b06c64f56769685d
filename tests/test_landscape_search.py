"""Critical-point searches and their classification modulo symmetry (THEORY.md 4-8).

Sizes are small (T d k <= 24) so that the whole file runs in a few seconds; the
searches and the classification are the same code at every size.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import ortho_group

import landscape as ls
from landscape import LandscapeInputError
from landscape._classify import (
    GLOBAL_MINIMUM,
    NOT_CRITICAL,
    SPURIOUS_CANDIDATE,
    STRICT_SADDLE,
    okk_extra_dimension,
)
from landscape._search import curvature_mode

DESCENT = ("gd", "pgd", "lbfgs", "trust-region")


def _global_fraction(problem, results, A_star):
    kinds = [ls.classify(problem, r.point, spectrum=r.spectrum, A_star=A_star) for r in results]
    glob = [c for c in kinds if c.kind == GLOBAL_MINIMUM]
    return len(glob) / len(kinds), glob


# ------------------------------------------------------------------ searches
@pytest.mark.parametrize("d, T, k", [(6, 3, 1), (6, 3, 2), (5, 4, 1)])
def test_descent_finds_global_minimum_and_recovers_A_star(d, T, k):
    """Thm 3.3 regime (T >= 3, d >= 3k): most descent runs end at the global minimum,
    and every global minimum found has A = A*."""
    inst = ls.random_instance(np.random.default_rng(100 + d + T + k), d, T, k)
    P = inst.problem
    res = ls.search(P, rng=np.random.default_rng(1), n_starts=16, methods=DESCENT)
    frac, glob = _global_fraction(P, res, inst.A_star)
    assert frac >= 0.5
    assert glob and all(c.recovers_A_star for c in glob)
    assert all(c.A_star_distance < 1e-8 for c in glob)


@pytest.mark.parametrize("method", ls.SEARCH_METHODS)
def test_each_method_returns_a_frozen_result_with_a_reason(method):
    inst = ls.random_instance(np.random.default_rng(3), 4, 3, 1)
    P = inst.problem
    res = ls.search(P, rng=np.random.default_rng(4), n_starts=3, methods=method)
    assert len(res) == 3 and [r.start_index for r in res] == [0, 1, 2]
    for r in res:
        assert r.method == method and r.stop_reason
        assert r.point.shape == (3, 4, 1)
        assert np.isclose(r.loss, P.reduced_loss(r.point))
        assert r.spectrum is not None and r.spectrum.method == "dense"
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.loss = 0.0


def test_search_requires_an_explicit_seed_or_generator():
    P = ls.random_instance(np.random.default_rng(0), 3, 2, 1).problem
    # a seed is as good as the Generator it seeds (issue 19: one convention)
    a = ls.search(P, rng=0, n_starts=2)
    b = ls.search(P, rng=np.random.default_rng(0), n_starts=2)
    assert [r.loss for r in a] == [r.loss for r in b]
    with pytest.raises(TypeError):
        ls.random_starts(P, None, 2)
    with pytest.raises(TypeError):
        ls.search(P, rng=None, n_starts=1)


def test_search_is_reproducible_from_the_seed():
    P = ls.random_instance(np.random.default_rng(0), 4, 3, 1).problem
    a = ls.search(P, rng=np.random.default_rng(9), n_starts=6)
    b = ls.search(P, rng=np.random.default_rng(9), n_starts=6)
    assert [r.loss for r in a] == [r.loss for r in b]


def test_perturbed_gd_escapes_the_strict_saddle_at_zero():
    """U = 0 is a critical point (grad G = 0) and a strict saddle; plain GD stays there,
    PGD's perturbation escapes it (Jin et al. 2017; Thm 3.4 relies on this)."""
    inst = ls.random_instance(np.random.default_rng(5), 4, 2, 1)
    P = inst.problem
    U0 = np.zeros((1, 2, 4, 1))
    gd = ls.gradient_descent(P, U0, polish=False)[0]
    assert gd.loss == pytest.approx(P.reduced_loss(U0[0]))
    pgd = ls.perturbed_gradient_descent(P, U0, rng=np.random.default_rng(0))[0]
    assert pgd.loss < 1e-20
    assert ls.classify(P, pgd.point).kind == GLOBAL_MINIMUM


def test_root_finding_finds_strict_saddles_for_two_tasks():
    inst = ls.random_instance(np.random.default_rng(6), 4, 2, 1)
    P = inst.problem
    res = ls.search(P, rng=np.random.default_rng(2), n_starts=12, methods=("root-hybr", "root-lm"))
    kinds = [ls.classify(P, r.point, spectrum=r.spectrum).kind for r in res]
    assert STRICT_SADDLE in kinds
    assert SPURIOUS_CANDIDATE not in kinds


def test_newton_polish_reaches_round_off():
    inst = ls.random_instance(np.random.default_rng(7), 5, 3, 2)
    P = inst.problem
    U = inst.U_star + 1e-4 * np.random.default_rng(0).standard_normal(inst.U_star.shape)
    for mode in ("dense", "hvp"):
        V, steps = ls.newton_polish(P, U, mode=mode)
        assert steps >= 1
        assert np.linalg.norm(P.reduced_grad(V)) < 1e-11


def test_hvp_mode_agrees_with_dense_mode():
    """The Lanczos / MINRES path gives the same verdict and lambda_min as the dense one."""
    inst = ls.random_instance(np.random.default_rng(8), 6, 3, 2)
    P = inst.problem
    dense = ls.search(P, rng=np.random.default_rng(1), n_starts=4, methods="trust-region", mode="dense")
    hvp = ls.search(P, rng=np.random.default_rng(1), n_starts=4, methods="trust-region", mode="hvp")
    for a, b in zip(dense, hvp):
        assert b.spectrum.method == "lanczos"
        ca = ls.classify(P, a.point, spectrum=a.spectrum)
        cb = ls.classify(P, b.point, spectrum=b.spectrum)
        assert ca.kind == cb.kind
        assert a.spectrum.lambda_min_quotient == pytest.approx(b.spectrum.lambda_min_quotient, rel=1e-6, abs=1e-8)


def test_curvature_mode_switches_and_refuses():
    small = ls.random_instance(np.random.default_rng(0), 4, 3, 1).problem
    assert curvature_mode(small).mode == "dense"
    big = ls.LoraMLProblem(np.zeros((3, 200, 200)) + np.eye(200)[None] * np.arange(3)[:, None, None], 2)
    mode = curvature_mode(big)
    assert mode.mode == "hvp" and "Hessian-vector" in mode.reason
    huge = ls.LoraMLProblem(np.broadcast_to(np.eye(300), (2, 300, 300)) * np.array([1.0, 2.0])[:, None, None], 299)
    with pytest.raises(LandscapeInputError, match="does not fit in memory"):
        curvature_mode(huge, "dense")


# ------------------------------------------------------------------ classification
def test_f2_point_is_a_spurious_candidate():
    inst, U0 = ls.f2_spurious_instance()
    P = inst.problem
    U, _ = ls.newton_polish(P, U0)
    c = ls.classify(P, U, A_star=inst.A_star)
    assert c.kind == SPURIOUS_CANDIDATE, c.reason
    assert c.loss == pytest.approx(9.8007e-4, rel=1e-4, abs=0)
    assert c.lambda_min_quotient == pytest.approx(0.035266, rel=1e-3, abs=0)
    assert c.loss > 100 * c.loss_tolerance


def test_truth_is_a_global_minimum_recovering_A_star():
    inst = ls.random_instance(np.random.default_rng(11), 6, 3, 2)
    c = ls.classify(inst.problem, inst.U_star, A_star=inst.A_star)
    assert c.kind == GLOBAL_MINIMUM and c.recovers_A_star is True
    assert c.zero_set_dimension == 0


def test_thm33_counterexample_minimiser_is_global_with_A_not_A_star():
    inst = ls.thm33_counterexample_instance()
    Q, U_hat = ls.thm33_counterexample_minimiser()
    c = ls.classify(inst.problem, U_hat, A_star=inst.A_star)
    assert c.kind == GLOBAL_MINIMUM and c.recovers_A_star is False
    np.testing.assert_allclose(c.A_hat, inst.A_star + Q, atol=1e-12)


@pytest.mark.parametrize("theta", [0.0, 0.7, -1.3])
def test_f1_points_are_global_minima_on_a_continuum(theta):
    """App. F.1: the hyperbola of global minima is a one-dimensional zero-loss set along
    which A changes; the O(1,1) boost is its tangent."""
    inst = ls.f1_instance(3)
    A, U = ls.f1_point(theta, d=3)
    c = ls.classify(inst.problem, U, A_star=inst.A_star)
    assert c.kind == GLOBAL_MINIMUM
    assert c.zero_set_dimension == 1 and c.n_zero_symmetry == 1
    assert c.A_varies_on_zero_set is True
    np.testing.assert_allclose(c.A_hat, A, atol=1e-12)
    assert c.recovers_A_star is (theta == 0.0)


def test_zero_is_a_strict_saddle_with_a_descent_direction():
    inst = ls.random_instance(np.random.default_rng(12), 4, 2, 2)
    P = inst.problem
    U = np.zeros((2, 4, 2))
    c = ls.classify(P, U)
    assert c.kind == STRICT_SADDLE and c.n_negative >= 1
    v = c.negative_direction
    t = 1e-3
    second = (P.reduced_loss(U + t * v) - 2 * P.reduced_loss(U) + P.reduced_loss(U - t * v)) / t**2
    assert second == pytest.approx(c.lambda_min_quotient * np.sum(v * v), rel=1e-4)
    assert second < 0


def test_non_critical_point_is_reported_as_such():
    inst = ls.random_instance(np.random.default_rng(13), 4, 3, 1)
    U = inst.U_star + 0.3
    assert ls.classify(inst.problem, U).kind == NOT_CRITICAL


def test_okk_family_dimension_is_k_squared():
    inst = ls.random_instance(np.random.default_rng(14), 6, 2, 2)
    assert okk_extra_dimension(inst.U_star) == 4
    assert okk_extra_dimension(np.concatenate([inst.U_star, inst.U_star[:1]])) == 0  # T = 3


# ------------------------------------------------------------------ invariance
def _critical_point(seed, d, T, k):
    inst = ls.random_instance(np.random.default_rng(seed), d, T, k)
    P = inst.problem
    r = ls.search(P, rng=np.random.default_rng(seed), n_starts=1, methods="root-hybr")[0]
    return inst, P, r.point


@given(seed=st.integers(0, 2**31 - 1), d=st.integers(2, 4), T=st.integers(2, 4), k=st.integers(1, 2))
def test_classification_invariant_under_rotations_and_task_permutations(seed, d, T, k):
    """The verdict is a function of the point modulo U_t -> U_t O_t and of the task
    order (STYLE: invariance tests with scipy.stats.ortho_group)."""
    k = min(k, d - 1)
    inst, P, U = _critical_point(seed, d, T, k)
    base = ls.classify(P, U, A_star=inst.A_star)
    rng = np.random.default_rng(seed + 1)
    O = ortho_group.rvs(k, size=T, random_state=rng) if k > 1 else rng.choice([-1.0, 1.0], size=(T, 1, 1))
    O = np.asarray(O).reshape(T, k, k)
    rotated = ls.classify(P, U @ O, A_star=inst.A_star)
    perm = rng.permutation(T)
    permuted = ls.classify(P.permuted(perm), U[perm], A_star=inst.A_star)
    for other in (rotated, permuted):
        assert other.kind == base.kind
        assert other.loss == pytest.approx(base.loss, rel=1e-9, abs=1e-20)
        if base.kind in (STRICT_SADDLE, SPURIOUS_CANDIDATE, GLOBAL_MINIMUM):
            assert other.lambda_min_quotient == pytest.approx(base.lambda_min_quotient, rel=1e-6, abs=1e-8)


def test_deduplicate_merges_rotated_copies_and_links_okk_family():
    inst = ls.random_instance(np.random.default_rng(15), 5, 2, 2)
    P = inst.problem
    rng = np.random.default_rng(0)
    U = inst.U_star
    rotated = U @ ortho_group.rvs(2, size=2, random_state=rng)
    # an O(2,2) boost of the truth: another global minimum, same D_U, different A
    from scipy.linalg import expm

    X = np.zeros((4, 4))
    X[0, 2] = X[2, 0] = 0.4
    W = np.concatenate([U[0], U[1]], axis=1) @ expm(X)
    boosted = np.stack([W[:, :2], W[:, 2:]])
    pts = [U, rotated, boosted]
    cls = [ls.classify(P, p) for p in pts]
    assert all(c.kind == GLOBAL_MINIMUM for c in cls)
    classes = ls.deduplicate(P, pts, cls)
    assert len(classes) == 2
    assert sorted(len(c.members) for c in classes) == [1, 2]
    assert len({c.family for c in classes}) == 1


@pytest.mark.parametrize("perm", [(0, 1, 2), (2, 0, 1), (1, 0, 2)])
@pytest.mark.parametrize("signs", [(1, 1, 1), (-1, 1, -1)])
def test_f2_verdict_invariant_under_sign_flips_and_task_order(perm, signs):
    """O(1) = {+-1} acts on each task; the spurious verdict and its numbers do not move."""
    inst, U0 = ls.f2_spurious_instance()
    P = inst.problem
    U, _ = ls.newton_polish(P, U0)
    base = ls.classify(P, U)
    perm = np.array(perm)
    V = (U * np.array(signs, dtype=float)[:, None, None])[perm]
    other = ls.classify(P.permuted(perm), V)
    assert base.kind == other.kind == SPURIOUS_CANDIDATE
    assert other.loss == pytest.approx(base.loss, rel=1e-12, abs=0)
    assert other.lambda_min_quotient == pytest.approx(base.lambda_min_quotient, rel=1e-9, abs=0)
