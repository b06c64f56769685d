r"""The reduced objective :math:`G` evaluated through the low rank of :math:`U_tU_t^\top`.

With :math:`\Delta_t := \mathrm{sym}(A^\star_t-\bar A^\star)` (the symmetric part of the
task deviations; :math:`\sum_t\Delta_t=0`), :math:`P_t=U_tU_t^\top` and the Gram blocks
:math:`M_{st}=U_s^\top U_t\in\mathbb R^{k\times k}`, the reduced residual of THEORY.md
section 5 is :math:`R_t=\bar D-D_t=-\Delta_t-\mathrm{skew}_t+P_t-\bar P`, so

.. math::
    G(\mathbf U)=c_0-\sum_t\langle\Delta_tU_t,U_t\rangle
      +\tfrac12\sum_{s,t}w_{st}\|M_{st}\|_F^2,\qquad w_{st}=\delta_{st}-\tfrac1T,

    \nabla_{U_t}G=2\Big(-\Delta_tU_t+U_tM_{tt}-\tfrac1T\sum_sU_sM_{st}\Big),

and the Hessian-vector product (the Schur complement :math:`S` of section 5 applied to
:math:`V`) is :math:`2(\dot R_tU_t+R_tV_t)` with :math:`\dot R_t=\dot P_t-\bar{\dot P}`,
:math:`\dot P_t=V_tU_t^\top+U_tV_t^\top`.  The only :math:`d\times d` work is the
product :math:`\Delta_tX` with a :math:`d\times m` block (:math:`O(Td^2m)`), and it
reads :math:`\Delta` once for all starts of a batch; nothing of size :math:`d\times d`
is ever formed per point.

The expanded loss cancels: it is accurate to :math:`\varepsilon s^2` only, while the
direct form :math:`\frac12\sum\|R_t\|^2` is accurate to :math:`(\varepsilon s)^2`.
So values that are *reported* (and compared with the zero-loss tolerance) use the
direct form, and line searches use :meth:`FactoredObjective.line_polynomial`: along a
line :math:`\mathbf U+\alpha\mathbf V`, :math:`G` is a quartic in :math:`\alpha` whose
coefficients are computed from products with :math:`\mathbf V` directly, so the
*difference* :math:`G(\mathbf U+\alpha\mathbf V)-G(\mathbf U)` has a relative accuracy
that does not degrade as the step shrinks.
"""
from __future__ import annotations

import weakref

import numpy as np
from scipy.linalg.blas import dsymv as _symv

from ._objective import LoraMLProblem

__all__ = [
    "FACTORED_MIN_D",
    "FactoredObjective",
    "factored",
    "uses_factored",
    "reduced_loss",
    "reduced_grad",
    "reduced_hvp_operator",
]

#: Side d from which the searches, the polish, the spectra and the classification
#: evaluate G through :class:`FactoredObjective`.  Below it the dense per-point
#: residuals (T d^2 numbers) are as cheap as the factored products and the results
#: stay bitwise those of the dense formulas of :class:`LoraMLProblem`; above it the
#: dense path allocates several T d^2 arrays per point (memory traffic, not flops,
#: dominates: 4x slower at d = 500, 10x at d = 2000 per Hessian-vector product).
FACTORED_MIN_D = 128

#: Line searches and chained evaluations update the products Delta U incrementally
#: (Delta(U + V) = Delta U + Delta V, one GEMM per step instead of two); rounding
#: then accumulates like a random walk, ~sqrt(n) eps per entry after n steps, so the
#: products are recomputed from scratch every this many updates.
RESYNC_EVERY = 50

#: One FactoredObjective per live problem.  The values refer to their key only weakly
#: (:attr:`FactoredObjective.problem` is a weak reference): a value that held its key
#: strongly would keep the entry, the problem and its T d^2 arrays alive for the whole
#: process (a WeakKeyDictionary drops an entry only when its key dies).
_CACHE: "weakref.WeakKeyDictionary[LoraMLProblem, FactoredObjective]" = weakref.WeakKeyDictionary()


def factored(problem: LoraMLProblem) -> "FactoredObjective":
    """The :class:`FactoredObjective` of ``problem`` (built once per problem object,
    freed with it)."""
    obj = _CACHE.get(problem)
    if obj is None:
        obj = FactoredObjective(problem)
        _CACHE[problem] = obj
    return obj


def uses_factored(problem: LoraMLProblem) -> bool:
    """Whether ``problem`` is evaluated through :class:`FactoredObjective` (``d >= FACTORED_MIN_D``)."""
    return problem.d >= FACTORED_MIN_D


def reduced_loss(problem: LoraMLProblem, U) -> float:
    r""":math:`G(\mathbf U)` in the direct (accurate) form, memory-light for large ``d``."""
    if uses_factored(problem):
        return factored(problem).loss_exact(problem.check_factors(U))
    return problem.reduced_loss(U)


def reduced_grad(problem: LoraMLProblem, U) -> np.ndarray:
    r""":math:`\nabla G(\mathbf U)`, shape ``(T, d, k)`` (factored for large ``d``)."""
    if uses_factored(problem):
        return factored(problem).grad(problem.check_factors(U))
    return problem.reduced_grad(U)


def reduced_hvp_operator(problem: LoraMLProblem, U):
    """:math:`S` at ``U`` as a :class:`scipy.sparse.linalg.LinearOperator` on flat vectors
    (column-major ``vec`` of THEORY.md section 0, as :meth:`LoraMLProblem.reduced_hvp_operator`)."""
    if not uses_factored(problem):
        return problem.reduced_hvp_operator(U)
    from scipy.sparse.linalg import LinearOperator

    from ._objective import unvec_factors, vec_factors

    F = factored(problem)
    U = problem.check_factors(U)
    T, d, k = problem.T, problem.d, problem.k

    def matvec(x):
        V = unvec_factors(np.asarray(x, dtype=float).reshape(-1), T, d, k)
        return vec_factors(F.hvp(U, V))

    return LinearOperator((problem.dim_U, problem.dim_U), matvec=matvec, rmatvec=matvec, dtype=float)


class ChainedLossGrad:
    r"""``x -> (G, grad G)`` on flat vectors for scipy's optimisers, with accurate
    differences of :math:`G` between successive evaluations.

    Each call continues from the previous point: :math:`G(x')=G(x)+p(1)` with the line
    polynomial :math:`p` of :meth:`FactoredObjective.line_polynomial` along
    :math:`x'-x`, so line searches and trust-region ratios compare values whose
    difference is accurate relative to the step (the absolute offset of the chain,
    ~eps s^2, cancels in every comparison the optimisers make).  The first value is the
    direct form.
    """

    def __init__(self, problem: LoraMLProblem):
        self.problem = problem
        self.F = factored(problem)
        self._U = self._DU = self._G = None
        self._f = 0.0
        self._updates = 0

    def __call__(self, x):
        from ._objective import unvec_factors, vec_factors

        p, F = self.problem, self.F
        # a copy: optimisers may overwrite x in place between calls (MINPACK does)
        U = np.array(unvec_factors(np.asarray(x, dtype=float), p.T, p.d, p.k))
        if self._U is None:
            DU = F.apply_delta(U)
            f = F.loss_exact(U)
        else:
            V = U - self._U
            DV = F.apply_delta(V)
            f = self._f + float(F.eval_polynomial(F.line_polynomial(self._U, V, self._DU, DV, G=self._G), 1.0))
            self._updates += 1
            if self._updates % RESYNC_EVERY == 0:
                DU = F.apply_delta(U)
            else:
                DU = self._DU + DV
        g = F.grad(U, DU)
        self._U, self._DU, self._G, self._f = U, DU, g, f
        if not np.isfinite(f):  # a diverging optimiser: restart the chain next time
            self._U = None
        return f, vec_factors(g)


def _gram(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Blocks ``X_s^T Y_t`` for stacks of shape ``(..., T, d, k)``: shape ``(..., T, T, k, k)``."""
    return np.einsum("...sdi,...tdj->...stij", X, Y)


def _combine(U: np.ndarray, M: np.ndarray) -> np.ndarray:
    r""":math:`\sum_s U_s M_{st}` for every ``t``: shape ``(..., T, d, k)``."""
    return np.einsum("...sdi,...stij->...tdj", U, M)


class FactoredObjective:
    r"""Loss, gradient and Hessian-vector products of :math:`G` without per-point
    :math:`d\times d` arrays (module docstring; THEORY.md section 5).

    Every method accepts stacks of shape ``(T, d, k)`` or batches ``(n, T, d, k)``.
    """

    def __init__(self, problem: LoraMLProblem):
        self._problem = weakref.ref(problem)
        tasks = problem.tasks
        dev = np.ascontiguousarray(tasks - problem.mean_task[None])
        T, d = dev.shape[0], dev.shape[1]
        # the symmetric parts 0.5 (dev + dev^T), a block of rows at a time: no (T, d, d)
        # temporaries, and no second copy at all when the tasks are symmetric
        rows = max(1, (1 << 20) // d)
        blocks = [(t, i0, min(i0 + rows, d)) for t in range(T) for i0 in range(0, d, rows)]

        def sym_rows(t, i0, i1):
            return 0.5 * (dev[t, i0:i1] + dev[t, :, i0:i1].T)

        skew_sq, asymmetric = 0.0, False
        for t, i0, i1 in blocks:
            skew = dev[t, i0:i1] - sym_rows(t, i0, i1)
            skew_sq += float(np.einsum("ij,ij->", skew, skew))
            asymmetric = asymmetric or bool(np.any(skew))
        sym = dev
        if asymmetric:
            sym = np.empty_like(dev)
            for t, i0, i1 in blocks:
                sym[t, i0:i1] = sym_rows(t, i0, i1)
        #: task deviations A*_t - mean(A*), and their symmetric parts (the same array
        #: when the tasks are symmetric, to keep one copy of T d^2 numbers)
        self.dev = dev
        self.delta = sym
        self.T, self.d, self.k = problem.T, problem.d, problem.k
        self._w = np.eye(self.T) - 1.0 / self.T
        #: G(0) = c0: the constant part of the expansion
        self.c0 = 0.5 * float(np.einsum("tij,tij->", dev, dev))
        self.skew_loss = 0.5 * skew_sq

    @property
    def problem(self) -> LoraMLProblem:
        """The problem this objective evaluates (held weakly, so that the cache of
        :func:`factored` does not keep it alive; an error once it has been freed)."""
        p = self._problem()
        if p is None:
            raise ReferenceError("the LoraMLProblem of this FactoredObjective has been freed")
        return p

    # ------------------------------------------------------------------ the d x d work
    def apply_delta(self, X: np.ndarray) -> np.ndarray:
        r""":math:`\Delta_tX_t` for ``X`` of shape ``(T, d, m)`` or ``(n, T, d, m)``."""
        X = np.asarray(X, dtype=float)
        if X.ndim == 3:
            if X.shape[2] == 1:
                # symmetric matrix-vector product: BLAS symv reads one triangle, half the
                # memory traffic of a general product (Delta_t^T is a Fortran-ordered view)
                out = np.empty_like(X)
                for t in range(self.T):  # a loop over tasks
                    out[t, :, 0] = _symv(1.0, self.delta[t].T, X[t, :, 0])
                return out
            return self.delta @ X
        n, T, d, m = X.shape
        # one GEMM per task with all starts side by side: Delta_t is read once
        Xt = np.ascontiguousarray(np.moveaxis(X, 0, 1)).transpose(0, 2, 1, 3).reshape(T, d, n * m)
        Y = self.delta @ Xt
        return np.moveaxis(Y.reshape(T, d, n, m), 2, 0)

    # ------------------------------------------------------------------ values
    def grad(self, U: np.ndarray, DU: np.ndarray | None = None) -> np.ndarray:
        r""":math:`\nabla G`; ``DU`` = :meth:`apply_delta` ``(U)`` when already known."""
        U = np.asarray(U, dtype=float)
        DU = self.apply_delta(U) if DU is None else DU
        M = _gram(U, U)
        diag = np.einsum("...tdi,...ttij->...tdj", U, M)
        return 2.0 * (-DU + diag - _combine(U, M) / self.T)

    def loss_expanded(self, U: np.ndarray, DU: np.ndarray | None = None) -> np.ndarray:
        """The expanded loss (accurate to ``eps * s^2`` only; see the module docstring)."""
        U = np.asarray(U, dtype=float)
        DU = self.apply_delta(U) if DU is None else DU
        M = _gram(U, U)
        quad = 0.5 * np.einsum("st,...stij,...stij->...", self._w, M, M)
        return self.c0 - np.einsum("...tdi,...tdi->...", DU, U) + quad

    def hvp(self, U: np.ndarray, V: np.ndarray, DV: np.ndarray | None = None) -> np.ndarray:
        r""":math:`S\,\mathrm{vec}(V)` in stack form (section 5, reduced Hessian)."""
        U = np.asarray(U, dtype=float)
        V = np.asarray(V, dtype=float)
        DV = self.apply_delta(V) if DV is None else DV
        T = self.T
        M = _gram(U, U)
        N = _gram(U, V)  # N[s, t] = U_s^T V_t
        Nt = _gram(V, U)  # Nt[s, t] = V_s^T U_t
        # R_t V_t = -Delta_t V_t + U_t (U_t^T V_t) - (1/T) sum_s U_s (U_s^T V_t)
        RV = -DV + np.einsum("...tdi,...ttij->...tdj", U, N) - _combine(U, N) / T
        # dR_t U_t = V_t M_tt + U_t (V_t^T U_t) - (1/T) sum_s [V_s M_st + U_s (V_s^T U_t)]
        dRU = (np.einsum("...tdi,...ttij->...tdj", V, M) + np.einsum("...tdi,...ttij->...tdj", U, Nt)
               - (_combine(V, M) + _combine(U, Nt)) / T)
        return 2.0 * (RV + dRU)

    def line_polynomial(self, U, V, DU=None, DV=None, *, G=None) -> np.ndarray:
        r"""Coefficients :math:`(c_1,\dots,c_4)` with
        :math:`G(\mathbf U+\alpha\mathbf V)-G(\mathbf U)=\sum_{j=1}^4c_j\alpha^j`.

        With :math:`M=U^\top U`, :math:`N=V_s^\top U_t+U_s^\top V_t`, :math:`K=V^\top V`
        (blocks), :math:`\|M+\alpha N+\alpha^2K\|^2-\|M\|^2` expands exactly; the
        linear part is :math:`-2\alpha\langle\Delta U,V\rangle-\alpha^2\langle\Delta V,V\rangle`.
        Shape ``(..., 4)``.

        ``G`` (the gradient at ``U``, when known) gives the slope
        :math:`c_1=\langle\nabla G,V\rangle` directly: the expanded :math:`c_1`
        cancels to :math:`\varepsilon s^{3/2}\|V\|`, which near a zero of the gradient
        exceeds the Armijo decrease :math:`\alpha\|\nabla G\|^2` the line search must
        resolve, while :math:`c_2..c_4` carry :math:`\alpha^2` and stay accurate.
        """
        U = np.asarray(U, dtype=float)
        V = np.asarray(V, dtype=float)
        DU = self.apply_delta(U) if DU is None else DU
        DV = self.apply_delta(V) if DV is None else DV
        w = self._w
        M = _gram(U, U)
        N = _gram(V, U) + _gram(U, V)
        K = _gram(V, V)

        def ip(X, Y):
            return np.einsum("st,...stij,...stij->...", w, X, Y)

        if G is None:
            c1 = -2.0 * np.einsum("...tdi,...tdi->...", DU, V) + ip(M, N)
        else:
            c1 = np.einsum("...tdi,...tdi->...", np.asarray(G, dtype=float), V)
        c2 = -np.einsum("...tdi,...tdi->...", DV, V) + 0.5 * (ip(N, N) + 2.0 * ip(M, K))
        c3 = ip(N, K)
        c4 = 0.5 * ip(K, K)
        return np.stack([c1, c2, c3, c4], axis=-1)

    @staticmethod
    def eval_polynomial(coef: np.ndarray, alpha) -> np.ndarray:
        """:math:`\\sum_j c_j\\alpha^j` (Horner), broadcasting over leading axes."""
        a = np.asarray(alpha, dtype=float)
        return a * (coef[..., 0] + a * (coef[..., 1] + a * (coef[..., 2] + a * coef[..., 3])))

    def loss_exact(self, U: np.ndarray) -> float:
        r"""The direct form :math:`\frac12\sum_t\|R_t\|_F^2` (accurate to :math:`(\varepsilon s)^2`),
        evaluated one task at a time (one :math:`d\times d` temporary)."""
        U = np.asarray(U, dtype=float)
        T, d, k = U.shape
        flat = np.ascontiguousarray(np.swapaxes(U, 0, 1)).reshape(d, T * k)
        Pbar = flat @ flat.T
        Pbar /= T
        R = np.empty((d, d))
        total = 0.0
        for t in range(T):  # a loop over tasks, one d x d buffer reused
            np.matmul(U[t], U[t].T, out=R)
            R -= Pbar
            R -= self.dev[t]
            r = R.reshape(-1)
            total += float(r @ r)
        return 0.5 * total
