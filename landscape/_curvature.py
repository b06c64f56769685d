r"""Curvature of the LoRA-ML objective: spectra, inertia and the quotient by O(k).

The reduced loss is invariant under :math:`U_t \mapsto U_tO_t` with
:math:`O_t\in O(k)` (THEORY.md section 5, "Symmetry").  The orbit through
:math:`\mathbf U` has tangent directions :math:`\beta_t = U_t\Omega` with
:math:`\Omega` skew-symmetric, one family per task, and at a critical point each of
them is an exact zero eigenvalue of :math:`S=\nabla^2 G`.  Second-order
classification is therefore done on the orthogonal complement of these directions
(the quotient), never by a raw smallest eigenvalue.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import numpy as np
from scipy.sparse.linalg import LinearOperator, aslinearoperator, eigsh

from ._random import accepts_seed
from ._objective import LoraMLProblem

__all__ = [
    "DENSE_EIGH_MAX_DIM",
    "ZERO_EIGENVALUE_RTOL",
    "inertia",
    "smallest_eigenpairs",
    "symmetry_tangent_basis",
    "quotient_basis",
    "quotient_hessian",
    "SpectrumSummary",
    "reduced_spectrum",
    "haynsworth_inertia_check",
]

#: Largest matrix side for which dense ``eigh`` is used.  A dense symmetric
#: eigendecomposition costs about :math:`9n^3` flops and :math:`8n^2` bytes: at
#: :math:`n = 1500` that is ~3e10 flops (under a second on 2 cores) and 18 MB.  Above
#: it, Lanczos on Hessian-vector products (cost :math:`O(Td^2k)` each) wins and
#: never forms an :math:`n\times n` array.
DENSE_EIGH_MAX_DIM = 1500

#: Eigenvalues with :math:`|\lambda| \le` this times the spectral radius count as
#: zero in inertia counts.  ``eigh`` has backward error :math:`O(n\varepsilon\|H\|)`,
#: about 1e-13 relative for the sizes handled densely; critical points polished to
#: :math:`\|\nabla G\|\approx 10^{-12}` perturb eigenvalues by a comparable amount.
#: 1e-9 leaves three to four orders of magnitude of margin on both sides.
ZERO_EIGENVALUE_RTOL = 1e-9

#: Relative tolerance handed to ARPACK in Lanczos mode.
LANCZOS_TOL = 1e-10

#: Singular values below this fraction of the largest one mark a tangent direction
#: of the O(k) orbit as degenerate (rank-deficient U_t yields dependent generators).
TANGENT_RANK_RTOL = 1e-10

MatrixLike = Union[np.ndarray, LinearOperator, Callable[[np.ndarray], np.ndarray]]


def inertia(H: np.ndarray, *, rtol: float = ZERO_EIGENVALUE_RTOL, scale: float | None = None, eigenvalues=None):
    """Inertia :math:`(n_+, n_-, n_0)` of a symmetric matrix (THEORY.md section 0).

    Parameters
    ----------
    H : ndarray, shape (n, n)
        Symmetric matrix (ignored if ``eigenvalues`` is given).
    rtol : float
        Eigenvalues with modulus at most ``rtol * scale`` count as zero.
    scale : float, optional
        Magnitude the tolerance is relative to; defaults to ``max|lambda|``.  Give the
        scale of the problem when the matrix itself may vanish (e.g. S for T = 1),
        since then its own spectral radius is round-off.
    """
    lam = np.linalg.eigvalsh(H) if eigenvalues is None else np.asarray(eigenvalues)
    if scale is None:
        scale = float(np.max(np.abs(lam))) if lam.size else 0.0
    tol = rtol * max(scale, np.finfo(float).tiny)
    return int(np.sum(lam > tol)), int(np.sum(lam < -tol)), int(np.sum(np.abs(lam) <= tol))


def _as_operator(A: MatrixLike, n: int | None) -> LinearOperator:
    if isinstance(A, np.ndarray):
        return aslinearoperator(A)
    if isinstance(A, LinearOperator):
        return A
    if callable(A):
        if n is None:
            raise ValueError("n (the dimension) is required when a matvec callable is given")
        return LinearOperator((n, n), matvec=A, rmatvec=A, dtype=float)
    raise TypeError(f"expected an ndarray, LinearOperator or callable, got {type(A).__name__}")


@accepts_seed()
def smallest_eigenpairs(
    A: MatrixLike,
    n: int | None = None,
    *,
    count: int = 1,
    dense_max_dim: int = DENSE_EIGH_MAX_DIM,
    tol: float = LANCZOS_TOL,
    rng: np.random.Generator | None = None,
):
    """Smallest ``count`` eigenvalues (ascending) and eigenvectors of a symmetric operator.

    Takes a dense matrix, a :class:`LinearOperator` or a matvec callable.  Uses dense
    ``eigh`` when the dimension is at most ``dense_max_dim`` (a matrix-free operator
    is then materialised column by column), and Lanczos (``eigsh``, which='SA')
    otherwise, so the same call serves a 20- and a 200,000-dimensional problem.

    Returns
    -------
    eigenvalues : ndarray, shape (count,)
    eigenvectors : ndarray, shape (n, count)
    method : str
        ``"dense"`` or ``"lanczos"``.
    """
    if isinstance(A, np.ndarray):
        n = A.shape[0]
    op = _as_operator(A, n)
    n = op.shape[0]
    count = min(count, n)
    if n <= dense_max_dim:
        M = A if isinstance(A, np.ndarray) else op.matmat(np.eye(n))
        M = 0.5 * (M + M.T)
        lam, vecs = np.linalg.eigh(M)
        return lam[:count], vecs[:, :count], "dense"
    rng = np.random.default_rng(0) if rng is None else rng
    v0 = rng.standard_normal(n)
    ncv = min(n, max(2 * count + 1, 40))
    lam, vecs = eigsh(op, k=count, which="SA", tol=tol, v0=v0, ncv=ncv, maxiter=20 * n)
    order = np.argsort(lam)
    return lam[order], vecs[:, order], "lanczos"


# --------------------------------------------------------------------------------------
# The O(k) symmetry
# --------------------------------------------------------------------------------------
def symmetry_tangent_basis(U: np.ndarray, *, rtol: float = TANGENT_RANK_RTOL) -> np.ndarray:
    r"""Orthonormal basis of the tangent space of the orbit :math:`\{(U_tO_t)_t\}`.

    Generators are :math:`\beta_t = U_t(E_{ij}-E_{ji})` for :math:`i<j`, supported on
    task :math:`t` only, so tasks are orthogonal to each other and each is
    orthonormalised separately by an SVD.  Dependent generators (rank-deficient
    :math:`U_t`) are dropped.

    Returns
    -------
    ndarray, shape (T*d*k, m)
        Columns in the flat :math:`(\mathrm{vec}U_1,\dots)` layout; ``m`` is
        :math:`Tk(k-1)/2` when every :math:`U_t` has full column rank, and 0 for k=1.
    """
    U = np.asarray(U, dtype=float)
    T, d, k = U.shape
    iu, ju = np.triu_indices(k, 1)
    npairs = iu.size
    if npairs == 0:
        return np.zeros((T * d * k, 0))
    E = np.zeros((npairs, k, k))
    E[np.arange(npairs), iu, ju] = 1.0
    E[np.arange(npairs), ju, iu] = -1.0
    gens = np.einsum("tdk,pkl->tpdl", U, E)  # (T, npairs, d, k)
    m = d * k
    cols = []
    for t in range(T):  # one small SVD per task
        Gt = np.swapaxes(gens[t], -1, -2).reshape(npairs, m)  # vec column-major
        if not np.any(Gt):
            continue
        left, s, _ = np.linalg.svd(Gt.T, full_matrices=False)
        keep = s > rtol * s[0]
        block = np.zeros((T * m, int(keep.sum())))
        block[t * m : (t + 1) * m] = left[:, keep]
        cols.append(block)
    return np.concatenate(cols, axis=1) if cols else np.zeros((T * m, 0))


def quotient_basis(V: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the orthogonal complement of the columns of ``V`` (orthonormal)."""
    n, m = V.shape
    if m == 0:
        return np.eye(n)
    Q, _ = np.linalg.qr(V, mode="complete")
    return Q[:, m:]


def quotient_hessian(problem: LoraMLProblem, U: np.ndarray, A: np.ndarray | None = None) -> np.ndarray:
    r"""Dense Hessian restricted to the orthogonal complement of the O(k) orbit.

    Without ``A``: :math:`N^\top S N` for the reduced loss :math:`G`, where the columns
    of :math:`N` are an orthonormal basis of the complement of
    :func:`symmetry_tangent_basis`.  With ``A``: the same for the joint Hessian of
    :math:`\mathcal L` at :math:`(A, \mathbf U)`; orbit directions have a zero
    A-component there.
    """
    U = problem.check_factors(U)
    V = symmetry_tangent_basis(U)
    if A is None:
        H = problem.schur_complement(U)
    else:
        H = problem.hessian(A, U)
        V = np.concatenate([np.zeros((problem.dim_A, V.shape[1])), V], axis=0)
    N = quotient_basis(V)
    Hq = N.T @ H @ N
    return 0.5 * (Hq + Hq.T)


@dataclass(frozen=True)
class SpectrumSummary:
    """Second-order information of :math:`G` at a point, on the quotient by O(k).

    Attributes
    ----------
    lambda_min_quotient : float
        Smallest eigenvalue of :math:`S` on the orthogonal complement of the orbit's
        tangent space.
    lambda_min_raw : float or None
        Smallest eigenvalue of :math:`S` itself (dense mode only).
    direction : ndarray
        A unit eigenvector for ``lambda_min_quotient`` (shape ``(T, d, k)``); for a
        strict saddle, a direction of negative curvature.
    n_symmetry : int
        Number of orbit tangent directions quotiented out.
    inertia_quotient : tuple or None
        Inertia of the quotient Hessian (dense mode only).
    method : str
        ``"dense"`` or ``"lanczos"``.
    eigenvalues : ndarray
        The computed quotient eigenvalues (all of them in dense mode).
    """

    lambda_min_quotient: float
    lambda_min_raw: float | None
    direction: np.ndarray
    n_symmetry: int
    inertia_quotient: tuple | None
    method: str
    eigenvalues: np.ndarray

    def __repr__(self) -> str:
        return (f"SpectrumSummary(lambda_min_quotient={self.lambda_min_quotient:.6g}, "
                f"inertia_quotient={self.inertia_quotient}, n_symmetry={self.n_symmetry}, method={self.method!r}, "
                f"{np.size(self.eigenvalues)} eigenvalues)")


@accepts_seed()
def reduced_spectrum(
    problem: LoraMLProblem,
    U: np.ndarray,
    *,
    dense_max_dim: int = DENSE_EIGH_MAX_DIM,
    count: int = 1,
    rng: np.random.Generator | None = None,
) -> SpectrumSummary:
    r"""Spectrum of :math:`S=\nabla^2G(\mathbf U)` modulo the O(k) orbit.

    Dense mode restricts :math:`S` to an orthonormal basis of the quotient.  Lanczos
    mode uses the operator :math:`\Pi S\Pi + c\,VV^\top` (with :math:`\Pi=I-VV^\top`)
    whose spectrum is that of the quotient plus the value :math:`c` on the orbit
    directions; :math:`c` is chosen above a Rayleigh quotient of the quotient, hence
    above its smallest eigenvalue, so the orbit never masks it.
    """
    U = problem.check_factors(U)
    V = symmetry_tangent_basis(U)
    n = problem.dim_U
    if n <= dense_max_dim:
        S = problem.schur_complement(U)
        lam_raw = float(np.linalg.eigvalsh(S)[0])
        N = quotient_basis(V)
        Sq = N.T @ S @ N
        lam, vecs = np.linalg.eigh(0.5 * (Sq + Sq.T))
        direction = problem.unpack_factors(N @ vecs[:, 0])
        return SpectrumSummary(
            float(lam[0]), lam_raw, direction, V.shape[1], inertia(None, eigenvalues=lam), "dense", lam
        )
    from ._factored import reduced_hvp_operator

    op = reduced_hvp_operator(problem, U)
    rng = np.random.default_rng(0) if rng is None else rng

    def project(x):
        return x - V @ (V.T @ x) if V.shape[1] else x

    probe = project(rng.standard_normal(n))
    probe /= np.linalg.norm(probe)
    shift = abs(float(probe @ op.matvec(probe))) + 1.0

    def matvec(x):
        x = np.asarray(x, dtype=float).reshape(-1)
        px = project(x)
        out = project(op.matvec(px))
        if V.shape[1]:
            out = out + shift * (V @ (V.T @ x))
        return out

    lam, vecs, method = smallest_eigenpairs(matvec, n, count=count, dense_max_dim=0, rng=rng)
    direction = problem.unpack_factors(vecs[:, 0])
    return SpectrumSummary(float(lam[0]), None, direction, V.shape[1], None, method, lam)


def haynsworth_inertia_check(problem: LoraMLProblem, U: np.ndarray) -> dict:
    r"""Compare :math:`\mathrm{In}(\nabla^2\mathcal L)` with
    :math:`\mathrm{In}(TI_{d^2}) + \mathrm{In}(S)` at :math:`A = A(\mathbf U)`
    (THEORY.md section 5, Thm B.1 / Haynsworth)."""
    U = problem.check_factors(U)
    A = problem.optimal_A(U)
    H = problem.hessian(A, U)
    S = problem.schur_complement(U)
    lam_H = np.linalg.eigvalsh(H)
    scale = float(np.max(np.abs(lam_H)))  # >= T > 0: the A-block never vanishes
    in_H = inertia(None, eigenvalues=lam_H, scale=scale)
    in_S = inertia(S, scale=scale)
    predicted = (problem.dim_A + in_S[0], in_S[1], in_S[2])
    return {"hessian": in_H, "schur": in_S, "predicted": predicted, "agree": in_H == predicted}

