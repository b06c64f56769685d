r"""The LoRA-ML objective of THEORY.md eq. (14) and its reduced form (section 5).

For task matrices :math:`A^\star_t \in \mathbb R^{d\times d}` (:math:`t = 1..T`) and
adapter rank :math:`k`,

.. math::
    \mathcal L(A, \mathbf U) = \tfrac12 \sum_t \|A + U_t U_t^\top - A^\star_t\|_F^2,
    \qquad
    G(\mathbf U) = \min_A \mathcal L(A, \mathbf U) = \tfrac12\sum_t \|D_t - \bar D\|_F^2,

with :math:`D_t = A^\star_t - U_tU_t^\top` and the minimiser
:math:`A(\mathbf U) = \bar D` (THEORY.md section 5, "Reduced loss").  When the tasks
come from the generative model M1, :math:`D_t - \bar D = M_t - \bar M`, and
:math:`G` does not depend on :math:`A^\star`.

Conventions
-----------
* ``A`` has shape ``(d, d)``; ``U`` (all adapters) has shape ``(T, d, k)``.
* Flat vectors stack :math:`(\mathrm{vec}A, \mathrm{vec}U_1, \dots, \mathrm{vec}U_T)`
  with column-major ``vec`` (THEORY.md section 0), so dense Hessians agree
  entry-for-entry with the Kronecker block formulas of eq. (34).
* Task matrices need not be symmetric: every formula uses
  :math:`R_t + R_t^\top` where THEORY.md writes :math:`2R_t` for the symmetric case.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._validation import LandscapeInputError, as_factor_stack, as_task_stack, check_rank

__all__ = [
    "LoraMLProblem",
    "commutation_matrix",
    "vec",
    "unvec",
    "vec_factors",
    "unvec_factors",
]


# --------------------------------------------------------------------------------------
# vec / unvec with the column-major convention of THEORY.md section 0
# --------------------------------------------------------------------------------------
def vec(X: np.ndarray) -> np.ndarray:
    """Column-major vectorisation of the last two axes (batched)."""
    X = np.asarray(X)
    return np.swapaxes(X, -1, -2).reshape(*X.shape[:-2], -1)


def unvec(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`vec` for ``rows x cols`` matrices (batched over leading axes)."""
    x = np.asarray(x)
    return np.swapaxes(x.reshape(*x.shape[:-1], cols, rows), -1, -2)


def vec_factors(U: np.ndarray) -> np.ndarray:
    """Flatten ``U`` of shape ``(T, d, k)`` into ``(vec U_1, ..., vec U_T)``."""
    U = np.asarray(U)
    return vec(U).reshape(-1)


def unvec_factors(x: np.ndarray, T: int, d: int, k: int) -> np.ndarray:
    """Inverse of :func:`vec_factors`."""
    return unvec(np.asarray(x).reshape(T, d * k), d, k)


def commutation_matrix(m: int, n: int) -> np.ndarray:
    r"""The commutation matrix :math:`K_{m,n}` with :math:`K\,\mathrm{vec}(X)=\mathrm{vec}(X^\top)`
    for :math:`X \in \mathbb R^{m\times n}` (THEORY.md section 0)."""
    K = np.zeros((m * n, m * n))
    r, c = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    # X[r, c] sits at r + c*m in vec(X) and at c + r*n in vec(X^T).
    K[(c + r * n).ravel(), (r + c * m).ravel()] = 1.0
    return K


def _sym(X: np.ndarray) -> np.ndarray:
    return X + np.swapaxes(X, -1, -2)


# --------------------------------------------------------------------------------------
# The problem object
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LoraMLProblem:
    r"""LoRA-ML objective for ``T`` task matrices and adapter rank ``k``.

    Parameters
    ----------
    tasks : array_like, shape (T, d, d)
        The task matrices :math:`A^\star_t`.  Validated on construction: finite
        entries, square matrices, at least one task.
    rank : int
        Adapter rank :math:`k`, with :math:`1 \le k \le d`.

    Notes
    -----
    All methods are pure functions of their arguments; nothing is cached on the
    instance except views of the task matrices.

    References
    ----------
    THEORY.md eq. (14) (joint objective), eq. (34) (Hessian), section 5 (reduced
    loss, Schur complement, Haynsworth inertia).
    """

    tasks: np.ndarray
    rank: int

    def __post_init__(self):
        tasks = as_task_stack(self.tasks)
        object.__setattr__(self, "tasks", tasks)
        object.__setattr__(self, "rank", check_rank(self.rank, tasks.shape[1]))

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_factors(cls, A_star, U_star) -> "LoraMLProblem":
        r"""Tasks of model M1: :math:`A^\star_t = A^\star + U^\star_t U^{\star\top}_t`.

        ``A_star`` has shape ``(d, d)`` and ``U_star`` shape ``(T, d, k)``.
        """
        A_star = np.asarray(A_star, dtype=float)
        U_star = np.asarray(U_star, dtype=float)
        if A_star.ndim != 2 or A_star.shape[0] != A_star.shape[1]:
            raise LandscapeInputError(f"A_star: expected a square matrix, got shape {A_star.shape}")
        if U_star.ndim != 3 or U_star.shape[1] != A_star.shape[0]:
            raise LandscapeInputError(
                f"U_star: expected shape (T, d, k) with d={A_star.shape[0]}, got {U_star.shape}"
            )
        tasks = A_star[None] + U_star @ np.swapaxes(U_star, 1, 2)
        return cls(tasks, U_star.shape[2])

    # ---------------------------------------------------------------- sizes
    @property
    def T(self) -> int:
        """Number of tasks."""
        return self.tasks.shape[0]

    @property
    def d(self) -> int:
        """Side of the task matrices."""
        return self.tasks.shape[1]

    @property
    def k(self) -> int:
        """Adapter rank."""
        return self.rank

    @property
    def dim_A(self) -> int:
        return self.d * self.d

    @property
    def dim_U(self) -> int:
        """Dimension of the reduced problem (all adapters)."""
        return self.T * self.d * self.k

    @property
    def dim(self) -> int:
        """Dimension of the joint problem in (A, U)."""
        return self.dim_A + self.dim_U

    @cached_property
    def mean_task(self) -> np.ndarray:
        return self.tasks.mean(axis=0)

    # ---------------------------------------------------------------- packing
    def check_factors(self, U, name: str = "U") -> np.ndarray:
        return as_factor_stack(U, self.T, self.d, self.k, name=name)

    def check_A(self, A, name: str = "A") -> np.ndarray:
        A = np.asarray(A, dtype=float)
        if A.shape != (self.d, self.d):
            raise LandscapeInputError(f"{name}: expected shape {(self.d, self.d)}, got {A.shape}")
        if not np.all(np.isfinite(A)):
            raise LandscapeInputError(f"{name}: contains NaN or infinite entries")
        return A

    def pack(self, A, U) -> np.ndarray:
        """Flat vector :math:`(\\mathrm{vec}A, \\mathrm{vec}U_1, \\dots)`."""
        return np.concatenate([vec(np.asarray(A, float)), vec_factors(U)])

    def unpack(self, x) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        if x.shape != (self.dim,):
            raise LandscapeInputError(f"expected a flat vector of length {self.dim}, got {x.shape}")
        return unvec(x[: self.dim_A], self.d, self.d), unvec_factors(
            x[self.dim_A :], self.T, self.d, self.k
        )

    def unpack_factors(self, u) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        if u.shape != (self.dim_U,):
            raise LandscapeInputError(f"expected a flat vector of length {self.dim_U}, got {u.shape}")
        return unvec_factors(u, self.T, self.d, self.k)

    # ---------------------------------------------------------------- joint objective
    def residuals(self, A, U) -> np.ndarray:
        r""":math:`R_t = A + U_tU_t^\top - A^\star_t`, shape ``(T, d, d)``."""
        U = np.asarray(U, dtype=float)
        return np.asarray(A, float)[None] + U @ np.swapaxes(U, 1, 2) - self.tasks

    def loss(self, A, U) -> float:
        """Joint objective :math:`\\mathcal L(A, \\mathbf U)`, eq. (14)."""
        R = self.residuals(self.check_A(A), self.check_factors(U))
        return 0.5 * float(np.einsum("tij,tij->", R, R))

    def grad(self, A, U) -> tuple[np.ndarray, np.ndarray]:
        r"""Gradient: :math:`\nabla_A = \sum_t R_t`, :math:`\nabla_{U_t} = (R_t+R_t^\top)U_t`."""
        A, U = self.check_A(A), self.check_factors(U)
        R = self.residuals(A, U)
        return R.sum(axis=0), _sym(R) @ U

    def hvp(self, A, U, dA, dU) -> tuple[np.ndarray, np.ndarray]:
        r"""Hessian-vector product of :math:`\mathcal L` in the direction ``(dA, dU)``.

        Matrix form of eq. (34): with :math:`G_t = U_t^\top U_t`,

        * A-block: :math:`T\,\alpha + \sum_t (\beta_tU_t^\top + U_t\beta_t^\top)`;
        * U_t-block: :math:`(\alpha+\alpha^\top)U_t + 2\beta_tG_t + 2U_t\beta_t^\top U_t
          + (R_t+R_t^\top)\beta_t`.
        """
        A, U = self.check_A(A), self.check_factors(U)
        dA = self.check_A(dA, "dA")
        dU = self.check_factors(dU, "dU")
        R = self.residuals(A, U)
        return self._hvp(R, U, dA, dU)

    def _hvp(self, R, U, dA, dU):
        Ut = np.swapaxes(U, 1, 2)
        dUt = np.swapaxes(dU, 1, 2)
        out_A = self.T * dA + (dU @ Ut + U @ dUt).sum(axis=0)
        out_U = (
            (dA + dA.T)[None] @ U
            + 2.0 * dU @ (Ut @ U)
            + 2.0 * U @ (dUt @ U)
            + _sym(R) @ dU
        )
        return out_A, out_U

    def hessian_blocks(self, A, U) -> tuple[np.ndarray, np.ndarray]:
        r"""The blocks :math:`B_t` (shape ``(T, d^2, dk)``) and :math:`C_t` (``(T, dk, dk)``)
        of eq. (34); the A-block is :math:`T I_{d^2}`.

        :math:`B_t = (U_t\otimes I_d) + (I_d\otimes U_t)K_{d,k}` and
        :math:`C_t = (2G_t)\oplus(R_t+R_t^\top) + 2(U_t^\top\otimes U_t)K_{d,k}`.
        """
        A, U = self.check_A(A), self.check_factors(U)
        return self._blocks(self.residuals(A, U), U)

    def _blocks(self, R, U):
        # Entries written out from eq. (34) in the column-major layout: with
        # vec-index r + c*rows, a (d^2 x dk) block reshapes (C order) to axes
        # (c1, r1, c2, r2) and a (dk x dk) block to (c1, r1, c2, r2) as well.
        #   B_t[c1,r1,c2,r2] = I[r1,r2] U[c1,c2] + I[c1,r2] U[r1,c2]
        #   C_t[c1,r1,c2,r2] = 2 I[r1,r2] G[c2,c1] + 2 U[r1,c2] U[r2,c1] + (R+R^T)[r1,r2] I[c1,c2]
        # which is (U (x) I) + (I (x) U)K and (2G) (+) (R+R^T) + 2(U^T (x) U)K.
        T, d, k = self.T, self.d, self.k
        I_d = np.eye(d)
        B = I_d[None, None, :, None, :] * U[:, :, None, :, None]
        B = B + I_d[None, :, None, None, :] * U[:, None, :, :, None]
        return B.reshape(T, d * d, d * k), self._diag_blocks(R, U)

    def _diag_blocks(self, R, U):
        """The blocks C_t alone, shape (T, dk, dk): O(T d^2 k^2) memory, no d^3 term."""
        T, d, k = self.T, self.d, self.k
        I_d, I_k = np.eye(d), np.eye(k)
        G = np.swapaxes(U, 1, 2) @ U
        C = 2.0 * np.swapaxes(G, 1, 2)[:, :, None, :, None] * I_d[None, None, :, None, :]
        C = C + 2.0 * np.einsum("tac,tbd->tdacb", U, U)
        C = C + _sym(R)[:, None, :, None, :] * I_k[None, :, None, :, None]
        return C.reshape(T, d * k, d * k)

    def hessian(self, A, U) -> np.ndarray:
        """Dense Hessian of :math:`\\mathcal L`, eq. (34), shape ``(dim, dim)``."""
        A, U = self.check_A(A), self.check_factors(U)
        B, C = self._blocks(self.residuals(A, U), U)
        T, dA, m = self.T, self.dim_A, self.d * self.k
        H = np.zeros((self.dim, self.dim))
        diag = np.arange(dA)
        H[diag, diag] = T
        Bcat = np.swapaxes(B, 0, 1).reshape(dA, T * m)  # [B_1 ... B_T]
        H[:dA, dA:] = Bcat
        H[dA:, :dA] = Bcat.T
        for t in range(T):  # T dense blocks on the diagonal (a loop over tasks, not entries)
            H[dA + t * m : dA + (t + 1) * m, dA + t * m : dA + (t + 1) * m] = C[t]
        return H

    # ---------------------------------------------------------------- reduced objective
    def optimal_A(self, U) -> np.ndarray:
        r""":math:`A(\mathbf U) = \frac1T\sum_t(A^\star_t - U_tU_t^\top)` (section 5)."""
        U = self.check_factors(U)
        return self.mean_task - (U @ np.swapaxes(U, 1, 2)).mean(axis=0)

    def reduced_residuals(self, U) -> np.ndarray:
        r""":math:`R_t` at :math:`A = A(\mathbf U)`; equals :math:`\bar D - D_t`."""
        U = self.check_factors(U)
        D = self.tasks - U @ np.swapaxes(U, 1, 2)
        return D.mean(axis=0)[None] - D

    def reduced_loss(self, U) -> float:
        r""":math:`G(\mathbf U) = \min_A\mathcal L(A,\mathbf U)` (section 5)."""
        R = self.reduced_residuals(U)
        return 0.5 * float(np.einsum("tij,tij->", R, R))

    def reduced_grad(self, U) -> np.ndarray:
        r""":math:`\nabla_{U_t}G = (R_t+R_t^\top)U_t` at :math:`A=A(\mathbf U)`, shape ``(T, d, k)``."""
        U = self.check_factors(U)
        return _sym(self.reduced_residuals(U)) @ U

    def reduced_hvp(self, U, dU) -> np.ndarray:
        r"""Hessian-vector product of :math:`G`, i.e. :math:`S\,\mathrm{vec}(\beta)`.

        Eliminating :math:`\alpha` from the joint HVP with
        :math:`\alpha = -\frac1T\sum_s(\beta_sU_s^\top+U_s\beta_s^\top)` gives exactly
        the Schur complement action (section 5, "Reduced Hessian = Schur complement").
        """
        U = self.check_factors(U)
        dU = self.check_factors(dU, "dU")
        return self._reduced_hvp(self.reduced_residuals(U), U, dU)

    def _reduced_hvp(self, R, U, dU):
        alpha = -(dU @ np.swapaxes(U, 1, 2) + U @ np.swapaxes(dU, 1, 2)).sum(axis=0) / self.T
        return self._hvp(R, U, alpha, dU)[1]

    def schur_complement(self, U) -> np.ndarray:
        r"""Dense :math:`S = \mathrm{blockdiag}(C_t) - \frac1T[B_s^\top B_t]_{s,t}` at
        :math:`A = A(\mathbf U)`; equals :math:`\nabla^2 G(\mathbf U)` for every
        :math:`\mathbf U` (section 5)."""
        U = self.check_factors(U)
        T, d, k = self.T, self.d, self.k
        m = d * k
        C = self._diag_blocks(self.reduced_residuals(U), U)
        # B_s^T B_t vec(beta) = vec(2 (beta U_t^T + U_t beta^T) U_s), whose entries in the
        # (c1, r1, c2, r2) layout are 2 I[r1,r2] (U_t^T U_s)[c2,c1] + 2 U_t[r1,c2] U_s[r2,c1].
        # Forming it this way costs O(T^2 d^2 k^2) and never builds the d^2 x dk blocks B_t.
        cross = np.einsum("tac,sab->sbtc", U, U)  # (U_t^T U_s)[c, b] stored at [s, b, t, c]
        BtB = 2.0 * cross[:, :, None, :, :, None] * np.eye(d)[None, None, :, None, None, :]
        BtB = BtB + 2.0 * np.einsum("tac,sbd->sdatcb", U, U)
        S = -BtB.reshape(T * m, T * m) / T
        for t in range(T):  # T dense blocks on the diagonal
            S[t * m : (t + 1) * m, t * m : (t + 1) * m] += C[t]
        return S

    def reduced_hvp_operator(self, U):
        """A :class:`scipy.sparse.linalg.LinearOperator` for :math:`S` acting on flat vectors.

        The residuals are computed once, so each product costs :math:`O(Td^2k)`.
        """
        from scipy.sparse.linalg import LinearOperator

        U = self.check_factors(U)
        R = self.reduced_residuals(U)
        T, d, k = self.T, self.d, self.k

        def matvec(x):
            x = np.asarray(x, dtype=float).reshape(-1)
            return vec_factors(self._reduced_hvp(R, U, unvec_factors(x, T, d, k)))

        return LinearOperator((self.dim_U, self.dim_U), matvec=matvec, rmatvec=matvec, dtype=float)

    def hvp_operator(self, A, U):
        """A :class:`~scipy.sparse.linalg.LinearOperator` for the joint Hessian."""
        from scipy.sparse.linalg import LinearOperator

        A, U = self.check_A(A), self.check_factors(U)
        R = self.residuals(A, U)

        def matvec(x):
            dA, dU = self.unpack(np.asarray(x, dtype=float).reshape(-1))
            hA, hU = self._hvp(R, U, dA, dU)
            return self.pack(hA, hU)

        return LinearOperator((self.dim, self.dim), matvec=matvec, rmatvec=matvec, dtype=float)

    # ---------------------------------------------------------------- flat wrappers
    def reduced_loss_flat(self, u) -> float:
        return self.reduced_loss(self.unpack_factors(u))

    def reduced_grad_flat(self, u) -> np.ndarray:
        return vec_factors(self.reduced_grad(self.unpack_factors(u)))

    def reduced_hvp_flat(self, u, du) -> np.ndarray:
        return vec_factors(self.reduced_hvp(self.unpack_factors(u), self.unpack_factors(du)))

    def loss_flat(self, x) -> float:
        return self.loss(*self.unpack(x))

    def grad_flat(self, x) -> np.ndarray:
        return self.pack(*self.grad(*self.unpack(x)))

    def hvp_flat(self, x, dx) -> np.ndarray:
        A, U = self.unpack(x)
        dA, dU = self.unpack(dx)
        return self.pack(*self.hvp(A, U, dA, dU))

    # ---------------------------------------------------------------- transformations
    def permuted(self, perm) -> "LoraMLProblem":
        """The same problem with tasks reordered by ``perm``."""
        return LoraMLProblem(self.tasks[np.asarray(perm)], self.rank)
