"""The LoRA-ML objective and its derivatives (THEORY.md sections 2 and 5).

Analytic formulas are checked against HIPS autograd, against Taylor-slope finite
differences, and (in test_landscape_sympy.py) against sympy.  Each derivative test has
a negative control: a deliberately wrong Hessian block must make it fail.
"""
from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import ortho_group

import landscape as ls
from landscape import LandscapeInputError, LoraMLProblem

# Tolerances: every quantity is a polynomial of degree <= 4 in O(1) Gaussian
# entries evaluated in float64, so two correct implementations differ by a few
# hundred ulps of the largest intermediate term; 1e-9 relative leaves a wide margin
# while any wrong formula shows O(1) differences.
RTOL = 1e-9


@st.composite
def sizes(draw, max_d=4, max_T=4):
    d = draw(st.integers(1, max_d))
    T = draw(st.integers(1, max_T))
    k = draw(st.integers(1, d))
    seed = draw(st.integers(0, 2**32 - 1))
    return d, T, k, seed


def _random_point(d, T, k, seed, symmetric_tasks=False):
    rng = np.random.default_rng(seed)
    tasks = rng.standard_normal((T, d, d))
    if symmetric_tasks:
        tasks = tasks + np.swapaxes(tasks, 1, 2)
    P = LoraMLProblem(tasks, k)
    A = rng.standard_normal((d, d))
    U = rng.standard_normal((T, d, k))
    return P, A, U, rng


def _autograd_loss(P: LoraMLProblem):
    T, d, k = P.T, P.d, P.k

    def L(x):
        A = anp.reshape(x[: d * d], (d, d)).T  # column-major vec
        total = 0.0
        for t in range(T):
            off = d * d + t * d * k
            Ut = anp.reshape(x[off : off + d * k], (k, d)).T
            total = total + 0.5 * anp.sum((A + Ut @ Ut.T - P.tasks[t]) ** 2)
        return total

    return L


def _autograd_reduced(P: LoraMLProblem):
    T, d, k = P.T, P.d, P.k

    def G(u):
        Us = [anp.reshape(u[t * d * k : (t + 1) * d * k], (k, d)).T for t in range(T)]
        D = [P.tasks[t] - Us[t] @ Us[t].T for t in range(T)]
        Dbar = sum(D) / T
        return 0.5 * sum(anp.sum((Dt - Dbar) ** 2) for Dt in D)

    return G


def _scale(P, U):
    """Natural magnitude of Hessian entries (S itself vanishes identically for T = 1)."""
    return 1.0 + float(np.sum(U**2)) + float(np.linalg.norm(P.reduced_residuals(U)))


def _close(a, b, rtol=RTOL):
    scale = max(1.0, float(np.max(np.abs(b))) if np.size(b) else 1.0)
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) <= rtol * scale


# ------------------------------------------------------------------ autograd agreement
@given(sizes())
def test_gradient_and_hessian_match_autograd(s):
    P, A, U, _ = _random_point(*s)
    x = P.pack(A, U)
    L = _autograd_loss(P)
    assert np.isclose(P.loss(A, U), L(x), rtol=RTOL, atol=0)
    assert _close(P.grad_flat(x), autograd.grad(L)(x))
    assert _close(P.hessian(A, U), autograd.hessian(L)(x))


@given(sizes())
def test_hvp_matches_dense_hessian(s):
    P, A, U, rng = _random_point(*s)
    x = P.pack(A, U)
    V = rng.standard_normal((3, P.dim))
    H = P.hessian(A, U)
    for v in V:
        assert _close(P.hvp_flat(x, v), H @ v)
    op = P.hvp_operator(A, U)
    assert _close(op.matmat(V.T), H @ V.T)


@given(sizes())
def test_schur_complement_is_hessian_of_reduced_loss_everywhere(s):
    """Section 5: S = blockdiag(C_t) - (1/T)[B_s^T B_t] equals Hess G at every U."""
    P, _, U, rng = _random_point(*s)
    u = ls.vec_factors(U)
    G = _autograd_reduced(P)
    assert np.isclose(P.reduced_loss(U), G(u), rtol=RTOL, atol=0)
    assert _close(P.reduced_grad_flat(u), autograd.grad(G)(u))
    S = P.schur_complement(U)
    assert _close(S, autograd.hessian(G)(u))
    # and equals the Schur complement of the joint Hessian at A = A(U)
    H = P.hessian(P.optimal_A(U), U)
    n = P.dim_A
    schur = H[n:, n:] - H[n:, :n] @ np.linalg.solve(H[:n, :n], H[:n, n:])
    assert _close(S, schur)
    v = rng.standard_normal(P.dim_U)
    assert _close(P.reduced_hvp_flat(u, v), S @ v)
    assert _close(P.reduced_hvp_operator(U).matvec(v), S @ v)


@given(sizes())
def test_reduced_loss_is_minimum_over_A(s):
    P, A, U, _ = _random_point(*s)
    A_opt = P.optimal_A(U)
    assert np.isclose(P.loss(A_opt, U), P.reduced_loss(U), rtol=RTOL, atol=1e-12)
    assert P.loss(A, U) >= P.reduced_loss(U) - 1e-9
    gA, _ = P.grad(A_opt, U)
    assert _close(gA, np.zeros_like(gA))


# ------------------------------------------------------------------ finite differences
@given(sizes())
def test_taylor_slopes_joint_and_reduced(s):
    P, A, U, rng = _random_point(*s)
    x = P.pack(A, U)
    res = ls.taylor_check(P.loss_flat, P.grad_flat, x, hvp=P.hvp_flat, rng=rng)
    assert res.passed, res
    u = ls.vec_factors(U)
    res = ls.taylor_check(P.reduced_loss_flat, P.reduced_grad_flat, u, hvp=P.reduced_hvp_flat, rng=rng)
    assert res.passed, res


def test_finite_difference_gradient_agrees():
    P, A, U, _ = _random_point(3, 3, 2, 7)
    x = P.pack(A, U)
    fd = ls.finite_difference_gradient(P.loss_flat, x)
    # central differences: error O(h^2 f''') + O(eps f / h) ~ 1e-8 at h = 1e-6
    assert np.max(np.abs(fd - P.grad_flat(x))) < 1e-6 * max(1.0, P.loss(A, U))


# ------------------------------------------------------------------ negative controls
class _WrongBlocks(LoraMLProblem):
    """The problem with one Hessian block deliberately wrong."""

    def __init__(self, tasks, rank, which):
        super().__init__(tasks, rank)
        object.__setattr__(self, "_which", which)

    def _blocks(self, R, U):
        B, C = super()._blocks(R, U)
        if self._which == "cross":
            B = 0.5 * B  # drop half of the A-U coupling
        elif self._which == "diag-gram":
            G = np.swapaxes(U, 1, 2) @ U
            d = self.d
            C = C - np.einsum("tij,pq->tipjq", G, np.eye(d)).reshape(C.shape)  # 2G -> G
        elif self._which == "diag-residual":
            C = C + np.einsum("ij,tpq->tipjq", np.eye(self.k), R).reshape(C.shape)
        return B, C

    def hessian(self, A, U):
        H = super().hessian(A, U)
        if self._which == "aa":
            n = self.dim_A
            H[:n, :n] *= (self.T + 1.0) / self.T
        return H


@pytest.mark.parametrize("which", ["cross", "diag-gram", "diag-residual", "aa"])
def test_derivative_checks_detect_a_wrong_hessian_block(which):
    rng = np.random.default_rng(3)
    tasks = rng.standard_normal((3, 3, 3))
    good = LoraMLProblem(tasks, 2)
    bad = _WrongBlocks(tasks, 2, which)
    A = rng.standard_normal((3, 3))
    U = rng.standard_normal((3, 3, 2))
    x = good.pack(A, U)
    H_bad = bad.hessian(A, U)
    H_auto = autograd.hessian(_autograd_loss(good))(x)
    assert not _close(H_bad, H_auto)
    res = ls.taylor_check(good.loss_flat, good.grad_flat, x, hvp=lambda _x, v: H_bad @ v, rng=rng)
    assert not res.passed
    assert res.slope_hessian < 2.5  # a wrong Hessian loses one order
    good_res = ls.taylor_check(
        good.loss_flat, good.grad_flat, x, hvp=lambda _x, v: good.hessian(A, U) @ v, rng=rng
    )
    assert good_res.passed


def test_taylor_check_detects_wrong_gradient():
    P, A, U, rng = _random_point(3, 2, 1, 11)
    x = P.pack(A, U)
    res = ls.taylor_check(P.loss_flat, lambda y: 1.01 * P.grad_flat(y), x, rng=rng)
    assert not res.passed
    assert res.slope_gradient < 1.5


# ------------------------------------------------------------------ structure
@given(sizes(max_d=4, max_T=3))
def test_haynsworth_inertia_identity(s):
    P, _, U, _ = _random_point(*s)
    check = ls.haynsworth_inertia_check(P, U)
    assert check["agree"], check


def test_haynsworth_at_critical_point_with_symmetry_zeros():
    inst = ls.random_instance(np.random.default_rng(5), 7, 3, 2)
    P = inst.problem
    check = ls.haynsworth_inertia_check(P, inst.U_star)
    assert check["agree"], check
    # T k(k-1)/2 = 3 forced zero eigenvalues of S at a critical point with k = 2
    assert check["schur"][2] == 3 and check["schur"][1] == 0


@given(sizes(max_d=4, max_T=3), st.integers(0, 2**32 - 1))
def test_orthogonal_invariance(s, seed):
    P, A, U, _ = _random_point(*s)
    k = P.k
    rng = np.random.default_rng(seed)
    O = np.stack([ortho_group.rvs(k, random_state=rng) if k > 1 else np.array([[-1.0]]) for _ in range(P.T)])
    UO = U @ O
    assert np.isclose(P.loss(A, UO), P.loss(A, U), rtol=RTOL, atol=0)
    assert np.isclose(P.reduced_loss(UO), P.reduced_loss(U), rtol=RTOL, atol=0)
    # gradients and Hessians transform covariantly, so the inertia of S is invariant
    assert _close(P.reduced_grad(UO), P.reduced_grad(U) @ O)
    scale = _scale(P, U)
    assert ls.inertia(P.schur_complement(UO), scale=scale) == ls.inertia(P.schur_complement(U), scale=scale)


@given(sizes(max_d=4, max_T=4), st.randoms(use_true_random=False))
def test_task_permutation_invariance(s, pyrng):
    P, A, U, _ = _random_point(*s)
    perm = list(range(P.T))
    pyrng.shuffle(perm)
    Pp = P.permuted(perm)
    Up = U[perm]
    assert np.isclose(Pp.loss(A, Up), P.loss(A, U), rtol=RTOL, atol=0)
    assert np.isclose(Pp.reduced_loss(Up), P.reduced_loss(U), rtol=RTOL, atol=0)
    assert _close(Pp.reduced_grad(Up), P.reduced_grad(U)[perm])
    scale = _scale(P, U)
    assert ls.inertia(Pp.schur_complement(Up), scale=scale) == ls.inertia(P.schur_complement(U), scale=scale)


@given(sizes(max_d=4, max_T=3))
def test_reduced_objective_does_not_depend_on_A_star(s):
    d, T, k, seed = s
    rng = np.random.default_rng(seed)
    U_star = rng.standard_normal((T, d, k))
    P1 = LoraMLProblem.from_factors(rng.standard_normal((d, d)), U_star)
    P2 = LoraMLProblem.from_factors(10 * rng.standard_normal((d, d)), U_star)
    U = rng.standard_normal((T, d, k))
    assert np.isclose(P1.reduced_loss(U), P2.reduced_loss(U), rtol=1e-8, atol=0)
    assert _close(P1.reduced_grad(U), P2.reduced_grad(U), rtol=1e-8)
    assert _close(P1.schur_complement(U), P2.schur_complement(U), rtol=1e-8)
    # ... while the joint loss at a fixed A does depend on it
    A = rng.standard_normal((d, d))
    assert not np.isclose(P1.loss(A, U), P2.loss(A, U))


def test_truth_is_a_zero_of_both_objectives():
    inst = ls.random_instance(np.random.default_rng(2), 6, 3, 2)
    P = inst.problem
    assert P.loss(inst.A_star, inst.U_star) < 1e-24
    assert P.reduced_loss(inst.U_star) < 1e-24
    assert np.allclose(P.optimal_A(inst.U_star), inst.A_star)


def test_commutation_matrix():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 5))
    K = ls.commutation_matrix(3, 5)
    assert np.array_equal(K @ ls.vec(X), ls.vec(X.T))
    assert np.array_equal(K.T @ K, np.eye(15))


# ------------------------------------------------------------------ symmetry & spectra
def test_symmetry_tangent_basis_spans_the_kernel_at_a_critical_point():
    inst = ls.random_instance(np.random.default_rng(8), 9, 3, 3)  # d = 3k: unique up to O(k)
    P = inst.problem
    V = ls.symmetry_tangent_basis(inst.U_star)
    assert V.shape == (P.dim_U, P.T * 3)
    assert np.allclose(V.T @ V, np.eye(V.shape[1]))
    S = P.schur_complement(inst.U_star)
    assert np.max(np.abs(S @ V)) < 1e-10 * np.max(np.abs(S))
    spec = ls.reduced_spectrum(P, inst.U_star)
    assert spec.n_symmetry == 9
    assert spec.lambda_min_raw < 1e-10  # the forced zeros...
    assert spec.lambda_min_quotient > 1e-3  # ...are gone on the quotient


def test_symmetry_basis_drops_dependent_generators():
    U = np.zeros((2, 4, 2))
    U[0, :, 0] = [1, 2, 0, 0]  # rank-one U_0: one generator U_0 Omega is still nonzero
    V = ls.symmetry_tangent_basis(U)
    assert V.shape[1] == 1


def test_lanczos_agrees_with_dense_on_the_quotient():
    rng = np.random.default_rng(4)
    inst = ls.random_instance(rng, 12, 3, 2)
    P = inst.problem
    U = inst.U_star + 0.3 * rng.standard_normal(inst.U_star.shape)
    dense = ls.reduced_spectrum(P, U)
    lanczos = ls.reduced_spectrum(P, U, dense_max_dim=0)
    assert dense.method == "dense" and lanczos.method == "lanczos"
    tol = 1e-7 * max(1.0, abs(dense.eigenvalues[-1]))  # 10x the Lanczos tolerance scale
    assert abs(dense.lambda_min_quotient - lanczos.lambda_min_quotient) < tol
    lam, vecs, method = ls.smallest_eigenpairs(P.reduced_hvp_operator(U), count=3, dense_max_dim=0)
    exact = np.linalg.eigvalsh(P.schur_complement(U))[:3]
    assert method == "lanczos" and np.allclose(lam, exact, atol=tol)


def test_inertia_counts():
    D = np.diag([3.0, -2.0, 0.0, 1e-14, 5.0])
    assert ls.inertia(D) == (2, 1, 2)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "tasks, k, message",
    [
        (np.full((2, 3, 3), np.nan), 1, "non-finite"),
        (np.ones((2, 3, 4)), 1, "square"),
        (np.ones((3, 3)), 1, "shape"),
        (np.ones((0, 3, 3)), 1, "at least 1"),
        (np.ones((2, 3, 3)), 0, "out of range"),
        (np.ones((2, 3, 3)), 4, "out of range"),
        (np.ones((2, 3, 3)), 1.5, "integer"),
        (np.array([[["a"]]]), 1, "numeric"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(tasks, k, message):
    with pytest.raises(LandscapeInputError, match=message):
        LoraMLProblem(tasks, k)


def test_bad_points_are_rejected():
    P = LoraMLProblem(np.ones((2, 3, 3)), 1)
    with pytest.raises(LandscapeInputError, match="shape"):
        P.reduced_loss(np.ones((2, 3, 2)))
    with pytest.raises(LandscapeInputError, match="NaN"):
        P.loss(np.full((3, 3), np.inf), np.ones((2, 3, 1)))
    with pytest.raises(LandscapeInputError, match="length"):
        P.unpack(np.ones(5))


def test_quotient_hessian_of_joint_and_reduced_problems_agree_in_sign():
    """At a critical point with k >= 2 the raw Hessians are singular (orbit zeros) but
    the quotient Hessians of L and G are both positive definite and, by Haynsworth,
    have the same number of negative eigenvalues (zero)."""
    inst = ls.random_instance(np.random.default_rng(12), 6, 3, 2)
    P = inst.problem
    Hq = ls.quotient_hessian(P, inst.U_star, A=inst.A_star)
    Sq = ls.quotient_hessian(P, inst.U_star)
    assert Hq.shape == (P.dim - 3, P.dim - 3) and Sq.shape == (P.dim_U - 3, P.dim_U - 3)
    assert np.linalg.eigvalsh(Hq)[0] > 1e-6 and np.linalg.eigvalsh(Sq)[0] > 1e-6
    assert np.linalg.eigvalsh(P.hessian(inst.A_star, inst.U_star))[0] < 1e-10


@pytest.mark.parametrize("shape", [(2, 3), (3,), (2, 2, 2)])
def test_planted_factors_refuse_a_non_square_a_star(shape):
    with pytest.raises(ls.LandscapeInputError, match="A_star: expected a square matrix"):
        ls.LoraMLProblem.from_factors(np.ones(shape), np.ones((2, shape[0], 1)))


def test_planted_factors_accept_a_large_square_a_star():
    """The squareness test compares the two sides' values (d = 300: two distinct int
    objects of equal value, beyond the small ints Python shares), and still refuses 300 x 301."""
    P = ls.LoraMLProblem.from_factors(np.zeros((300, 300)), np.ones((2, 300, 1)))
    assert P.tasks.shape == (2, 300, 300)
    with pytest.raises(ls.LandscapeInputError, match="A_star: expected a square matrix"):
        ls.LoraMLProblem.from_factors(np.zeros((300, 301)), np.ones((2, 300, 1)))


def test_vec_is_column_major_per_matrix_over_leading_axes():
    """vec stacks the columns of the last two axes, matrix by matrix: a (2, 3, 4) stack gives
    (2, 12), each row the column-major vec of its matrix, and unvec inverts it."""
    from landscape._objective import vec

    X = np.arange(24.0).reshape(2, 3, 4)
    v = vec(X)
    assert v.shape == (2, 12)
    for t in range(2):
        np.testing.assert_array_equal(v[t], X[t].T.reshape(-1))
        np.testing.assert_array_equal(vec(X[t]), X[t].T.reshape(-1))
    assert vec(np.zeros((2, 5, 3, 4))).shape == (2, 5, 12)
