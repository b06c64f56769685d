r"""Linear-algebra helpers shared by the checks (ranks, Eckart-Young, O(k,k), RRR)."""
from __future__ import annotations

import numpy as np
from scipy.linalg import expm

from landscape._random import accepts_seed

from ._result import EPS

__all__ = [
    "numerical_rank",
    "rank_tolerance",
    "eckart_young_tail",
    "random_okk",
    "J_matrix",
    "inertia_counts",
    "rrr_prediction_errors",
    "rank_kprime_dof",
]


def rank_tolerance(s: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    r"""Zero threshold for singular values: :math:`s_1\max(m,n)\varepsilon`.

    This is the backward-error bound of a Householder SVD (and numpy's default in
    ``matrix_rank``): singular values below it are indistinguishable from 0.
    """
    return np.asarray(s)[..., 0] * max(shape) * EPS


def numerical_rank(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numerical rank of a (batch of) matrices and their singular values (descending)."""
    M = np.asarray(M, dtype=float)
    s = np.linalg.svd(M, compute_uv=False)
    tol = rank_tolerance(s, M.shape[-2:])
    return np.sum(s > np.asarray(tol)[..., None], axis=-1), s


def eckart_young_tail(s: np.ndarray, kprime: int) -> float:
    r"""Best rank-:math:`k'` approximation error :math:`\tfrac12\sum_{i>k'}s_i^2` (Eckart-Young)."""
    s = np.asarray(s, dtype=float)
    return 0.5 * float(np.sum(s[kprime:] ** 2))


def J_matrix(k: int) -> np.ndarray:
    r""":math:`J_k = \mathrm{diag}(I_k, -I_k)` (THEORY.md section 0)."""
    return np.diag(np.concatenate([np.ones(k), -np.ones(k)]))


@accepts_seed()
def random_okk(rng: np.random.Generator, k: int, scale: float = 0.5) -> np.ndarray:
    r"""A random element of :math:`O(k,k)` as :math:`\exp\begin{psmallmatrix}S_1&B\\B^\top&S_2\end{psmallmatrix}`.

    :math:`S_1,S_2` are skew and :math:`B` is arbitrary, so the generator :math:`X`
    satisfies :math:`XJ_k + J_kX^\top = 0` and :math:`\Lambda J_k\Lambda^\top = J_k`
    (THEORY.md section 4, T = 2 global-minimum set).  ``scale`` is the entry size of
    the generator: boosts grow like :math:`e^{\|B\|}`, so moderate values keep the
    factors well conditioned.
    """
    S1 = rng.standard_normal((k, k)) * scale
    S2 = rng.standard_normal((k, k)) * scale
    B = rng.standard_normal((k, k)) * scale
    X = np.block([[S1 - S1.T, B], [B.T, S2 - S2.T]])
    return expm(X)


def rank_kprime_dof(d: int, kprime: int) -> int:
    r"""Dimension :math:`k'(2d-k')` of the manifold of rank-:math:`k'` :math:`d\times d`
    matrices (THEORY.md eq. (10), sharper fact)."""
    kprime = min(kprime, d)
    return kprime * (2 * d - kprime)


@accepts_seed()
def rrr_prediction_errors(
    rng: np.random.Generator,
    B_star: np.ndarray,
    *,
    n: int,
    sigma: float,
    kprime: int,
    reps: int,
) -> np.ndarray:
    r"""Squared prediction errors :math:`\|E\|_F^2` of the rank-:math:`k'` reduced-rank
    regression estimate, batched over ``reps`` independent test sets.

    Model: :math:`Y = B^\star X + \sigma\varepsilon` with :math:`X,\varepsilon` having
    i.i.d. :math:`\mathcal N(0,1)` entries (:math:`d\times n`).  Closed-form rank-:math:`k'`
    minimiser (THEORY.md eq. (10)): :math:`B_{ols}=YX^\top(XX^\top)^{-1}`, :math:`P` the
    projector onto the top :math:`k'` left singular vectors of :math:`B_{ols}X`,
    :math:`\hat B = PB_{ols}`; then :math:`E = (\hat B - B^\star)X`.

    Here :math:`B^\star` plays the role of :math:`A^\star_{T+1}-\hat A` (fine-tuning
    the residual of the retrained matrix, eq. (9)).
    """
    B_star = np.asarray(B_star, dtype=float)
    if B_star.ndim != 2 or B_star.shape[0] != B_star.shape[1] or not np.all(np.isfinite(B_star)):
        raise ValueError(f"B_star must be a finite square matrix, got shape {B_star.shape}")
    d = B_star.shape[0]
    if not 1 <= kprime <= d:
        raise ValueError(f"kprime must be in [1, d] = [1, {d}], got {kprime}")
    if n < d:  # X X^T of rank n < d: no least-squares estimate
        raise ValueError(f"n must be >= d = {d} (X X^T invertible), got n = {n}")
    if reps < 1 or not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"need reps >= 1 and a finite sigma >= 0, got reps = {reps}, sigma = {sigma}")
    X = rng.standard_normal((reps, d, n))
    Y = B_star[None] @ X + sigma * rng.standard_normal((reps, d, n))
    XXt = X @ np.swapaxes(X, 1, 2)
    YXt = Y @ np.swapaxes(X, 1, 2)
    # B_ols^T = (X X^T)^{-1} (Y X^T)^T  (XX^T symmetric positive definite for n >= d)
    B_ols = np.swapaxes(np.linalg.solve(XXt, np.swapaxes(YXt, 1, 2)), 1, 2)
    # left singular vectors of B_ols X are eigenvectors of B_ols (XX^T) B_ols^T: a d x d
    # problem whatever n is
    gram = B_ols @ XXt @ np.swapaxes(B_ols, 1, 2)
    _, vecs = np.linalg.eigh(0.5 * (gram + np.swapaxes(gram, 1, 2)))
    Uk = vecs[:, :, ::-1][:, :, :kprime]
    B_hat = Uk @ (np.swapaxes(Uk, 1, 2) @ B_ols)
    E = (B_hat - B_star[None]) @ X
    return np.einsum("rij,rij->r", E, E)


def inertia_counts(lam, zt: float) -> tuple:
    """``(positive, negative, zero)`` counts of the eigenvalues ``lam`` with zero tolerance
    ``zt``: an eigenvalue of size exactly ``zt`` is a zero, so the three counts partition
    the spectrum."""
    lam = np.asarray(lam, dtype=float)
    return int(np.sum(lam > zt)), int(np.sum(lam < -zt)), int(np.sum(np.abs(lam) <= zt))
