"""Property-based tests (hypothesis) of statements that hold for every instance.

Identities (Schur complement, the (35) curvature formula, the F.1 hyperbola, the T=2
O(k,k) family) are tested on arbitrary bounded inputs; "almost sure" rank statements are
tested on Gaussian instances drawn from a hypothesis-chosen seed.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from landscape import LoraMLProblem, f1_instance, f1_point, random_instance
from theory import prop1_needed_rank, random_okk, thm32_structure
from theory._linalg import J_matrix, eckart_young_tail, numerical_rank

EPS = np.finfo(float).eps
seeds = st.integers(min_value=0, max_value=2**32 - 1)
entries = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False, allow_subnormal=False)


@st.composite
def dk_pairs(draw, max_k=3, max_extra=3):
    """(d, k) with d >= 2k."""
    k = draw(st.integers(1, max_k))
    d = draw(st.integers(2 * k, 2 * k + max_extra))
    return d, k


@given(dk=dk_pairs(), seed=seeds, scale=st.floats(0.05, 0.8))
def test_okk_boosts_preserve_J(dk, seed, scale):
    _, k = dk
    Lam = random_okk(np.random.default_rng(seed), k, scale)
    J = J_matrix(k)
    assert np.linalg.norm(Lam @ J @ Lam.T - J) <= 1e3 * EPS * np.linalg.norm(Lam) ** 2


@given(dk=dk_pairs(), seed=seeds, data=st.data())
def test_thm32_structure_on_the_T2_family(dk, seed, data):
    """Thm 3.2 + Cor 1 on every member of the O(k,k) family of an arbitrary instance."""
    d, k = dk
    U_star = data.draw(arrays(np.float64, (3, d, k), elements=entries))
    A_star = data.draw(arrays(np.float64, (d, d), elements=entries))
    rng = np.random.default_rng(seed)
    Lam = random_okk(rng, k, 0.5)
    M = np.concatenate([U_star[0], U_star[1]], axis=1) @ Lam
    U = np.stack([M[:, :k], M[:, k:]])
    W = U_star @ np.swapaxes(U_star, 1, 2)
    A = A_star + W[0] - U[0] @ U[0].T
    train = LoraMLProblem.from_factors(A_star, U_star[:2])
    s = thm32_structure(train, A, U, A_star, W[2])
    assert s.loss <= 0.5 * (s.tau / 10) ** 2
    holds = s.holds(k, d)
    assert all(holds.values()), holds
    assert s.inertia[0] + s.inertia[1] <= 2 * k


@given(theta=st.floats(-3.0, 3.0), s1=st.sampled_from([1, -1]), s2=st.sampled_from([1, -1]), d=st.integers(2, 5))
def test_f1_hyperbola_is_a_set_of_global_minima(theta, s1, s2, d):
    A, U = f1_point(theta, s1, s2, d)
    prob = f1_instance(d).problem
    ch2 = math.cosh(theta) ** 2
    assert prob.loss(A, U) <= 0.5 * (64 * EPS * ch2) ** 2
    pred = abs(math.sinh(theta)) * math.sqrt(2 * (math.sinh(theta) ** 2 + ch2))
    assert abs(np.linalg.norm(A) - pred) <= 64 * EPS * ch2


@st.composite
def problems_and_points(draw):
    k = draw(st.integers(1, 2))
    d = draw(st.integers(k, 4))
    T = draw(st.integers(1, 3))
    tasks = draw(arrays(np.float64, (T, d, d), elements=entries))
    U = draw(arrays(np.float64, (T, d, k), elements=entries))
    return LoraMLProblem(tasks, k), U


@given(pp=problems_and_points())
def test_reduced_hessian_is_the_schur_complement(pp):
    """Section 5: the Schur complement of the dense Hessian in its A-block is Hess G."""
    prob, U = pp
    d = prob.d
    H = prob.hessian(prob.optimal_A(U), U)
    n = d * d
    S_H = H[n:, n:] - H[n:, :n] @ H[:n, n:] / prob.T
    S = prob.schur_complement(U)
    nH = np.linalg.norm(H)
    assert np.linalg.norm(S_H - S) <= 10 * d * d * EPS * (nH + nH**2 / prob.T) + 1e-300


@given(dk=dk_pairs(max_extra=3), data=st.data())
def test_eq35_curvature_identity(dk, data):
    """(35): curvature along beta_t = v w_t^T for v orthogonal to span[U_1, U_2]."""
    d, k = dk
    U_star = data.draw(arrays(np.float64, (2, d, k), elements=entries))
    U = data.draw(arrays(np.float64, (2, d, k), elements=entries))
    w1 = data.draw(arrays(np.float64, (k,), elements=entries))
    w2 = data.draw(arrays(np.float64, (k,), elements=entries))
    prob = LoraMLProblem.from_factors(np.zeros((d, d)), U_star)
    M = np.concatenate([U[0], U[1]], axis=1)
    Ul, sv, _ = np.linalg.svd(M, full_matrices=True)
    r = int(np.sum(sv > d * EPS * max(sv[0], 1.0)))
    if r == d:
        return  # W-perp is trivial: nothing to test
    v = Ul[:, -1]
    beta = np.stack([np.outer(v, w1), np.outer(v, w2)])
    lhs = float(np.vdot(beta, prob.reduced_hvp(U, beta)))
    W = U_star @ np.swapaxes(U_star, 1, 2)
    rhs = float(np.sum((U[0] @ w1 - U[1] @ w2) ** 2) - (v @ (W[0] - W[1]) @ v) * (w1 @ w1 - w2 @ w2))
    scale = (np.sum(U**2) + np.sum(U_star**2) + 1) * (w1 @ w1 + w2 @ w2 + 1)
    # v is orthogonal to the columns only up to the SVD's backward error
    assert abs(lhs - rhs) <= 1e3 * d * EPS * scale


@given(seed=seeds, dk=dk_pairs(max_k=2, max_extra=4), T=st.integers(1, 6))
def test_sr_rank_inflation_almost_surely(seed, dk, T):
    """Prop 1 and App C: rank(A_SR - A*) = min(d, Tk), rank(A*_T+1 - A_SR) = min(d, (T+1)k)."""
    d, k = dk
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, d, T + 1, k)
    W = inst.W
    r1, _ = numerical_rank(W[:T].mean(axis=0))
    r2, s = numerical_rank(W[T] - W[:T].mean(axis=0))
    assert r1 == min(d, T * k)
    assert r2 == prop1_needed_rank(d=d, T=T, k=k)
    V = rng.standard_normal((T + 1, d, k))
    Z = inst.U_star @ np.swapaxes(V, 1, 2)
    assert numerical_rank(Z[T] - Z[:T].mean(axis=0))[0] == min(d, (T + 1) * k)


@given(seed=seeds, dk=dk_pairs(max_k=2, max_extra=4))
def test_lemma6_inertia_of_D_star(seed, dk):
    d, k = dk
    U = np.random.default_rng(seed).standard_normal((2, d, k))
    W = U @ np.swapaxes(U, 1, 2)
    lam = np.linalg.eigvalsh(W[0] - W[1])
    tol = d * EPS * np.max(np.abs(lam))
    assert (np.sum(lam > tol), np.sum(lam < -tol)) == (k, k)


@given(M=arrays(np.float64, (5, 5), elements=entries), kp=st.integers(0, 5))
def test_eckart_young_tail_is_the_truncated_svd_loss(M, kp):
    U, s, Vt = np.linalg.svd(M)
    approx = (U[:, :kp] * s[:kp]) @ Vt[:kp]
    direct = 0.5 * float(np.sum((M - approx) ** 2))
    assert abs(direct - eckart_young_tail(s, kp)) <= 100 * EPS * (1 + float(np.sum(M**2)))
