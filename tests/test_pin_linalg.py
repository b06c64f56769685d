"""theory._linalg pinned at exact values: the rank tolerance at its boundary (diagonal
matrices, whose singular values the SVD returns exactly), ranks of a batch per matrix, the
Eckart-Young tail on integers, and J."""
from __future__ import annotations

import numpy as np
import pytest

from theory._linalg import J_matrix, eckart_young_tail, numerical_rank, random_okk, rank_kprime_dof, rank_tolerance
from theory._result import EPS


def test_eps_is_double_precision_unit_roundoff_times_two():
    assert EPS == np.finfo(np.float64).eps == 2.0 ** -52


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (7, 2), (5, 5)])
def test_rank_tolerance_is_s1_max_dim_eps(shape):
    s = np.array([[2.0, 1.0], [0.25, 0.0]])
    assert rank_tolerance(s, shape).tolist() == [2.0 * max(shape) * 2.0 ** -52, 0.25 * max(shape) * 2.0 ** -52]


def test_numerical_rank_counts_strictly_above_the_tolerance_per_matrix():
    tol = 4 * EPS  # s1 = 1, shape (4, 3)
    cases = [((tol * (1 + 2 ** -10), 0.0), 2),  # just above: counted
             ((tol, 0.0), 1),                    # exactly at it: not
             ((0.5, 2 * tol), 3),
             ((0.0, 0.0), 1)]
    M = np.zeros((len(cases), 4, 3))
    for i, ((a, b), _) in enumerate(cases):
        M[i, 0, 0], M[i, 1, 1], M[i, 2, 2] = 1.0, a, b
    r, s = numerical_rank(M)
    assert s[1].tolist() == [1.0, tol, 0.0]  # the SVD of a diagonal matrix is exact
    assert r.tolist() == [want for _, want in cases]
    # one matrix: a scalar rank, the same as in the batch
    assert int(numerical_rank(M[0])[0]) == 2 and numerical_rank(M[0])[1].tolist() == s[0].tolist()
    # the tolerance scales with s1: the same matrix times 2^40 has the same rank
    assert numerical_rank(M * 2.0 ** 40)[0].tolist() == r.tolist()


def test_eckart_young_tail_on_integers():
    s = np.array([3.0, 2.0, 1.0])
    assert [eckart_young_tail(s, k) for k in range(4)] == [7.0, 2.5, 0.5, 0.0]
    # it is half the squared Frobenius distance to the best rank-k' approximation
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 4))
    U, sv, Vt = np.linalg.svd(A, full_matrices=False)
    best = (U[:, :2] * sv[:2]) @ Vt[:2]
    assert np.isclose(eckart_young_tail(sv, 2), 0.5 * np.sum((A - best) ** 2), rtol=1e-12, atol=0)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_j_and_a_random_element_of_o_k_k(k):
    J = J_matrix(k)
    assert np.array_equal(J, np.diag([1.0] * k + [-1.0] * k))
    L = random_okk(np.random.default_rng(k), k)
    assert L.shape == (2 * k, 2 * k) and np.allclose(L @ J @ L.T, J, atol=1e-12)


def test_rank_kprime_dof_is_the_dimension_of_rank_kprime_matrices():
    # k'(2d - k'): d^2 at full rank, clipped at d; 2d - 1 for rank one
    assert [rank_kprime_dof(3, kp) for kp in range(5)] == [0, 5, 8, 9, 9]
    # the tangent space of {rank 1} at u v^T is {u a^T + b v^T}: its dimension, from a matrix rank
    d, rng = 4, np.random.default_rng(1)
    u, v = rng.standard_normal(d), rng.standard_normal(d)
    basis = [np.outer(u, e) for e in np.eye(d)] + [np.outer(e, v) for e in np.eye(d)]
    assert np.linalg.matrix_rank(np.array([b.ravel() for b in basis])) == rank_kprime_dof(d, 1)


@pytest.mark.parametrize("k, scale", [(1, 0.5), (2, 2.0), (3, 0.1)])
def test_random_okk_is_the_exponential_of_its_drawn_generator(k, scale):
    """Lambda = expm([[S1 - S1^T, B], [B^T, S2 - S2^T]]) with S1, S2, B standard normal k x k
    draws times ``scale``, drawn in that order: the same generator twin gives the same matrix."""
    import copy

    from scipy.linalg import expm

    from theory._linalg import random_okk

    rng = np.random.default_rng(3)
    twin = copy.deepcopy(rng)
    S1, S2, B = (twin.standard_normal((k, k)) * scale for _ in range(3))
    X = np.block([[S1 - S1.T, B], [B.T, S2 - S2.T]])
    np.testing.assert_array_equal(random_okk(rng, k, scale), expm(X))


@pytest.mark.parametrize("kprime", [1, 2])
def test_rrr_errors_follow_the_model_y_equals_b_x_plus_sigma_noise_draw_by_draw(kprime):
    """Y = B* X + sigma Z with X then Z drawn in that order; B_hat the rank-k' projection of the
    least-squares B_ols (eq. (10)); ||(B_hat - B*) X||_F^2 per repetition, recomputed here."""
    import copy

    from theory._linalg import rrr_prediction_errors

    rng = np.random.default_rng(2)
    twin = copy.deepcopy(rng)
    B = np.random.default_rng(9).standard_normal((3, 3))
    got = rrr_prediction_errors(rng, B, n=7, sigma=0.3, kprime=kprime, reps=4)
    want = []
    X = twin.standard_normal((4, 3, 7))
    Z = twin.standard_normal((4, 3, 7))
    for r in range(4):
        Y = B @ X[r] + 0.3 * Z[r]
        B_ols = Y @ X[r].T @ np.linalg.inv(X[r] @ X[r].T)
        Uu = np.linalg.svd(B_ols @ X[r])[0][:, :kprime]
        want.append(float(np.sum(((Uu @ Uu.T @ B_ols - B) @ X[r]) ** 2)))
    np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("B, kw, what", [
    (np.ones((3, 2)), {}, "square"), (np.full((3, 3), np.nan), {}, "finite"), (np.ones(3), {}, "square"),
    (np.array(1.0), {}, "square"), (np.ones((2, 2, 2)), {}, "square"),
    (np.eye(3), {"kprime": 0}, "kprime"), (np.eye(3), {"kprime": 4}, "kprime"),
    (np.eye(3), {"n": 2}, "n must be >= d"), (np.eye(3), {"reps": 0}, "reps"),
    (np.eye(3), {"sigma": -0.1}, "sigma"), (np.eye(3), {"sigma": np.inf}, "sigma")])
def test_rrr_errors_refuse_what_has_no_rank_k_estimate(B, kw, what):
    """B* square and finite, 1 <= k' <= d (k' = d + 1 is not clipped to d), n >= d (X X^T
    invertible), reps >= 1, sigma finite and >= 0; the boundaries k' = d and n = d are allowed."""
    from theory._linalg import rrr_prediction_errors

    args = {"n": 5, "sigma": 0.1, "kprime": 1, "reps": 2, **kw}
    with pytest.raises(ValueError, match=what):
        rrr_prediction_errors(np.random.default_rng(0), B, **args)
    edge = rrr_prediction_errors(np.random.default_rng(0), np.eye(3), n=3, sigma=0.0, kprime=3, reps=1)
    assert edge.shape == (1,) and edge[0] < 1e-20  # full rank, no noise: B_ols = B* exactly


def test_rrr_errors_take_any_square_b_star_and_refuse_others():
    """B_star is checked by value: a 300 x 300 matrix (sides beyond the small integers Python
    caches) is square and accepted; 3 x 4, a vector and a nan entry are refused."""
    from theory._linalg import rrr_prediction_errors

    rng = np.random.default_rng(0)
    e = rrr_prediction_errors(rng, np.eye(300), n=310, sigma=0.1, kprime=1, reps=1)
    assert np.shape(e) == (1,) and np.all(np.isfinite(e))
    for bad in (np.ones((3, 4)), np.ones(3), np.array([[1.0, np.nan], [0.0, 1.0]])):
        with pytest.raises(ValueError, match="finite square matrix"):
            rrr_prediction_errors(rng, bad, n=10, sigma=0.1, kprime=1, reps=1)
