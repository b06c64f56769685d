r"""Second-order classification of critical points of :math:`G`, modulo symmetry.

A point :math:`\mathbf U` with :math:`\nabla G(\mathbf U)\approx0` is classified from
its loss, its gradient norm and the spectrum of :math:`S=\nabla^2G` on the quotient by
the :math:`O(k)` orbit (:func:`landscape.reduced_spectrum`):

``global_minimum``
    :math:`G` is zero within :attr:`Classification.loss_tolerance`.  Zero is the global
    minimum value (THEORY.md eq. (14): a point is a global minimiser iff
    :math:`\mathcal L=0`).
``spurious_candidate``
    :math:`G>0` beyond that tolerance and :math:`S` is positive definite on the
    quotient (for :math:`T=2`, on the quotient by the larger :math:`O(k,k)` family as
    well).  A *candidate*: App. F.2 (THEORY.md section 8) certificates make it certain.
``strict_saddle``
    A quotient eigenvalue below :math:`-\eta` (:attr:`Classification.eigenvalue_tolerance`);
    the eigenvector is a direction of negative curvature.
``degenerate``
    None of the above can be decided; the reason says why (near-zero eigenvalues not
    explained by the symmetry, or a gradient too large for the smallest eigenvalue).
``not_critical``
    The search did not reach a critical point (gradient above tolerance).

Tolerances (all derived, see :func:`classify`)
----------------------------------------------
* Third derivative.  From the Taylor expansion of THEORY.md section 8,
  :math:`|D^3G(\mathbf U)[\Delta]^3| \le 12\,m\,\|\Delta\|^3` with
  :math:`m=\max_t\|U_t\|_2`, so :math:`S` is Lipschitz with constant
  :math:`L=12(m+r)` on a ball of radius :math:`r`.
* Distance to the critical point.  Newton-Kantorovich on the quotient: with
  :math:`\sigma` the smallest quotient :math:`|\lambda|` not explained by the symmetry
  and :math:`h=L\|g\|/\sigma^2\le\tfrac12`, a critical point lies within
  :math:`\delta=2\|g\|/\sigma`; by Weyl its eigenvalues differ from the computed ones by
  at most :math:`\eta=L\delta` (plus round-off).  When Kantorovich fails, the degenerate
  regime of THEORY.md section 6 (C6) applies, :math:`\delta\sim\|g\|^{1/3}`, and
  :math:`\eta = 10\,s^{1/2}\|g\|^{1/3}`.
* Loss.  Near a nondegenerate minimum :math:`G-G^\ast=\tfrac12g^\top S^{+}g\le
  \|g\|^2/(2\lambda_+)`; the tolerance is ``LOSS_SAFETY`` times this, or the
  round-off floor of the residuals, whichever is larger.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._random import accepts_seed
from ._curvature import (
    DENSE_EIGH_MAX_DIM,
    TANGENT_RANK_RTOL,
    ZERO_EIGENVALUE_RTOL,
    SpectrumSummary,
    reduced_spectrum,
    symmetry_tangent_basis,
)
from ._factored import reduced_grad, reduced_loss, uses_factored
from ._objective import LoraMLProblem
from ._search import SearchResult, curvature_mode, default_spectrum_count, problem_scale

__all__ = [
    "GLOBAL_MINIMUM",
    "SPURIOUS_CANDIDATE",
    "STRICT_SADDLE",
    "DEGENERATE",
    "NOT_CRITICAL",
    "KINDS",
    "Classification",
    "CriticalClass",
    "classify",
    "classify_result",
    "deduplicate",
    "okk_extra_dimension",
]

GLOBAL_MINIMUM = "global_minimum"
SPURIOUS_CANDIDATE = "spurious_candidate"
STRICT_SADDLE = "strict_saddle"
DEGENERATE = "degenerate"
NOT_CRITICAL = "not_critical"
KINDS = (GLOBAL_MINIMUM, SPURIOUS_CANDIDATE, STRICT_SADDLE, DEGENERATE, NOT_CRITICAL)

#: A point is treated as critical when ``||grad G|| <= CRITICAL_GTOL_REL * s^{3/2}``.
#: The Newton polish brings nondegenerate critical points to ~1e-14 of that scale and
#: degenerate ones (gradient O(dist^3), THEORY.md section 6, C6) to ~1e-12; a search
#: that stops above 1e-7 has not found a critical point.
CRITICAL_GTOL_REL = 1e-7

#: Safety factor on the quadratic-model loss bound ``||g||^2 / (2 lambda_+)``: covers
#: the cubic Taylor term within the Kantorovich radius.
LOSS_SAFETY = 10.0

#: Residual entries carry a rounding error of a few ulps of the largest term; this
#: factor (a few hundred ulps, as for the dense eigensolver) sets the floor below which
#: a computed loss is indistinguishable from zero.
ROUNDOFF_FACTOR = 100.0

#: Constant of the degenerate-regime eigenvalue tolerance ``C * s^{1/2} ||g||^{1/3}``
#: (the numerical-rank tolerance ``10 ||grad G||^{1/3}`` of THEORY.md section 6, C6,
#: made scale-free).
DEGENERATE_ETA_FACTOR = 10.0

#: Two critical points are the same modulo O(k) when their stacks ``U_t U_t^T`` agree
#: to this relative accuracy.  Polished points agree to ~1e-12; distinct critical points
#: of O(1) instances differ at O(1).  Degenerate points converge only to
#: ~||g||^{1/3} ~ 1e-4, hence the margin.
DEDUP_RTOL = 1e-3

#: ``A_hat`` equals ``A*`` when ``||A_hat - A*||_F <= A_MATCH_RTOL * (s + ||A*||_F)``.
#: At a polished global minimum the error is ~||g|| / lambda_+ * ||U|| ~ 1e-12 s.
A_MATCH_RTOL = 1e-6


class _Deferred:
    """A value computed when first asked for (a zero-argument function)."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


class _DeferredField:
    r"""Data descriptor for a dataclass field whose value may be given as a
    :class:`_Deferred`: computed on first access and then kept.  ``A_hat`` is a d x d
    matrix per classified point, needed only for small d (the report) or on request;
    stored eagerly it made an audit hold (runs x d^2) numbers (1.2 GB for 10 runs at
    d = 4000)."""

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:  # no class-level default: the field stays required
            raise AttributeError(self.slot[1:])
        value = obj.__dict__[self.slot]
        if isinstance(value, _Deferred):
            value = value.fn()
            obj.__dict__[self.slot] = value
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.slot] = value


@dataclass(frozen=True)
class Classification:
    """Verdict on one point, with every number that justifies it.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    reason : str
        One sentence saying why.
    loss, grad_norm : float
        :math:`G` and :math:`\\|\\nabla G\\|_F` at the point.
    loss_tolerance : float
        Losses at or below this are zero (global minimum).
    eigenvalue_tolerance : float
        Quotient eigenvalues with modulus at or below this are zero.
    lambda_min_quotient : float
        Smallest eigenvalue of :math:`S` on the :math:`O(k)` quotient.
    sigma : float
        Smallest quotient :math:`|\\lambda|` not explained by a symmetry (inf if none).
    kantorovich_h : float
        :math:`L\\|g\\|/\\sigma^2`; at most 1/2 certifies a nearby critical point.
    n_negative, n_zero : int
        Quotient eigenvalues below :math:`-\\eta` / within :math:`\\pm\\eta` (among those
        computed: all in dense mode, the smallest few in Lanczos mode).
    n_zero_symmetry : int
        Zero eigenvalues explained by the :math:`T=2` :math:`O(k,k)` family beyond
        :math:`O(k)` (0 for :math:`T\\ge3`).
    negative_direction : ndarray or None
        Unit direction of negative curvature (shape ``(T, d, k)``), strict saddles only.
    A_hat : ndarray
        :math:`A(\\mathbf U)` (computed on first access when :func:`classify` made
        the classification: one d x d matrix per point is not kept unasked).
    A_star_distance : float or None
        :math:`\\|A(\\mathbf U)-A^\\star\\|_F` when :math:`A^\\star` is known.
    recovers_A_star : bool or None
        Whether ``A_hat`` equals :math:`A^\\star` (global minima with known truth only).
    zero_set_dimension : int or None
        For global minima, the number of zero quotient eigenvalues: the local dimension
        of the zero-loss set modulo :math:`O(k)` when it is a manifold (Morse-Bott).
    A_varies_on_zero_set : bool or None
        For :math:`T=2` global minima: whether moving along the :math:`O(k,k)` family
        changes :math:`A` (a continuum of global minima in :math:`A`).
    spectrum_method : str
        ``"dense"`` or ``"lanczos"``.
    """

    kind: str
    reason: str
    loss: float
    grad_norm: float
    loss_tolerance: float
    eigenvalue_tolerance: float
    lambda_min_quotient: float
    sigma: float
    kantorovich_h: float
    n_negative: int
    n_zero: int
    n_zero_symmetry: int
    negative_direction: np.ndarray | None
    A_hat: np.ndarray = _DeferredField()
    A_star_distance: float | None
    recovers_A_star: bool | None
    zero_set_dimension: int | None
    A_varies_on_zero_set: bool | None
    spectrum_method: str


def _okk_generators(U: np.ndarray) -> np.ndarray:
    r"""Tangent generators of the :math:`T=2` family :math:`[U_1,U_2]\Lambda`,
    :math:`\Lambda\in O(k,k)`: :math:`[U_1,U_2]X` with :math:`X=ZJ_k`, :math:`Z` skew
    (THEORY.md section 4).  Rows are flat directions in the :math:`(\mathrm{vec}U_1,
    \mathrm{vec}U_2)` layout."""
    _, d, k = U.shape
    W = np.concatenate([U[0], U[1]], axis=1)
    J = np.diag(np.r_[np.ones(k), -np.ones(k)])
    iu, ju = np.triu_indices(2 * k, 1)
    Z = np.zeros((iu.size, 2 * k, 2 * k))
    Z[np.arange(iu.size), iu, ju] = 1.0
    Z[np.arange(iu.size), ju, iu] = -1.0
    xi = W[None] @ (Z @ J)  # (n_gen, d, 2k)
    dU = np.stack([xi[:, :, :k], xi[:, :, k:]], axis=1)  # (n_gen, 2, d, k)
    return np.swapaxes(dU, -1, -2).reshape(iu.size, -1)


def _rank(M: np.ndarray) -> int:
    if M.size == 0:
        return 0
    s = np.linalg.svd(M, compute_uv=False)
    return int(np.sum(s > TANGENT_RANK_RTOL * s[0])) if s[0] > 0 else 0


def okk_extra_dimension(U: np.ndarray) -> int:
    r"""Dimension of the :math:`O(k,k)` orbit of a :math:`T=2` point beyond its
    :math:`O(k)\times O(k)` orbit.

    For :math:`T=2`, :math:`G=\tfrac14\|D^\star-D_U\|_F^2` depends on
    :math:`D_U=U_1U_1^\top-U_2U_2^\top` only, which is invariant under
    :math:`[U_1,U_2]\mapsto[U_1,U_2]\Lambda`, :math:`\Lambda\in O(k,k)`.  Every critical
    point therefore has this many extra zero eigenvalues on the :math:`O(k)` quotient:
    :math:`k(2k-1)-k(k-1)=k^2` when :math:`[U_1,U_2]` has full column rank.
    """
    U = np.asarray(U, dtype=float)
    if U.shape[0] != 2:
        return 0
    return _rank(_okk_generators(U)) - symmetry_tangent_basis(U).shape[1]


def _A_varies_on_family(problem: LoraMLProblem, U: np.ndarray) -> bool:
    r"""Whether some :math:`O(k,k)` direction changes :math:`A(\mathbf U)`."""
    gens = _okk_generators(U)
    T, d, k = problem.T, problem.d, problem.k
    scale = max(float(np.sum(U * U)), np.finfo(float).tiny)
    for row in gens:
        dU = np.swapaxes(row.reshape(T, k, d), -1, -2)
        dA = -(dU @ np.swapaxes(U, 1, 2) + U @ np.swapaxes(dU, 1, 2)).mean(axis=0)
        if np.linalg.norm(dA) > 1e-8 * scale:
            return True
    return False


def kantorovich(m_op: float, gn: float, sigma: float) -> tuple:
    r"""Newton-Kantorovich at a point with :math:`\max_t\|U_t\|_2 = ` ``m_op``,
    :math:`\|\nabla G\| = ` ``gn`` and smallest unexplained quotient :math:`|\lambda| = `
    ``sigma``: ``(L3, h, ok)`` with the third-derivative bound of THEORY.md section 8 on the
    ball Newton's step can reach, :math:`L_3 = 12(m + 2\|\nabla G\|/\sigma)`, the
    Kantorovich number :math:`h = L_3\|\nabla G\|/\sigma^2`, and ``ok`` when
    :math:`h \le 1/2` -- the theorem's condition, the boundary included -- so that a
    nondegenerate critical point lies within :math:`2\|\nabla G\|/\sigma`. ``sigma = 0``
    gives :math:`h = \infty`."""
    L3 = 12.0 * (m_op + (2.0 * gn / sigma if np.isfinite(sigma) and sigma > 0 else 0.0))
    h = L3 * gn / sigma**2 if sigma > 0 else float("inf")
    return L3, h, h <= 0.5


@accepts_seed()
def classify(
    problem: LoraMLProblem,
    U: np.ndarray,
    *,
    spectrum: SpectrumSummary | None = None,
    A_star: np.ndarray | None = None,
    mode: str = "auto",
    rng: np.random.Generator | None = None,
) -> Classification:
    r"""Classify the point ``U`` modulo the orthogonal symmetry.

    Parameters
    ----------
    problem : LoraMLProblem
    U : ndarray, shape (T, d, k)
        Ideally a polished critical point (:func:`landscape.newton_polish`).
    spectrum : SpectrumSummary, optional
        Quotient spectrum at ``U``; computed when omitted (dense or Lanczos following
        :func:`landscape.curvature_mode` with ``mode``).
    A_star : ndarray, optional
        The shared matrix :math:`A^\star`, when known, to report recovery.

    Notes
    -----
    The verdict depends on :math:`\mathbf U` only through :math:`G`, :math:`\|\nabla G\|`,
    the quotient spectrum, :math:`\max_t\|U_t\|_2` and :math:`A(\mathbf U)`, all of them
    invariant under :math:`U_t\mapsto U_tO_t` and under permuting the tasks together
    with the adapters; so is the classification.

    References
    ----------
    THEORY.md section 5 (equivalences, symmetry, Thm B.1), section 6 (C6), section 8
    (Taylor bound on the third derivative).
    """
    U = problem.check_factors(U)
    s = problem_scale(problem)
    g = reduced_grad(problem, U)
    gn = float(np.linalg.norm(g))
    loss = reduced_loss(problem, U)
    if spectrum is None:
        m = curvature_mode(problem, mode).mode
        dense_max = max(problem.dim_U, DENSE_EIGH_MAX_DIM) if m == "dense" else 0
        spectrum = reduced_spectrum(problem, U, dense_max_dim=dense_max,
                                    count=default_spectrum_count(problem), rng=rng)
    lam = np.sort(np.asarray(spectrum.eigenvalues, dtype=float))
    rho = max(float(np.max(np.abs(lam))) if lam.size else 0.0, s)
    m_op = max(float(np.linalg.norm(U[t], 2)) for t in range(problem.T))
    A_hat = problem.optimal_A(U)

    # Zero eigenvalues forced by the T = 2 O(k, k) family (beyond O(k)).
    n_sym = okk_extra_dimension(U) if problem.T == 2 else 0
    eta_loose = max(ZERO_EIGENVALUE_RTOL * rho, DEGENERATE_ETA_FACTOR * np.sqrt(s) * gn ** (1 / 3))
    order = np.argsort(np.abs(lam))
    explained = [i for i in order[:n_sym] if abs(lam[i]) <= eta_loose]
    rest = np.delete(lam, explained)
    sigma = float(np.min(np.abs(rest))) if rest.size else float("inf")

    L3, h, nondegenerate = kantorovich(m_op, gn, sigma)
    if nondegenerate:
        eta = max(ZERO_EIGENVALUE_RTOL * rho, L3 * 2.0 * gn / sigma)
    else:
        eta = eta_loose
    positive = rest[rest > eta]
    lam_plus = float(np.min(positive)) if positive.size else None
    eps = np.finfo(float).eps
    res_scale = float(np.linalg.norm(problem.tasks)) + float(np.sum(U * U))
    loss_floor = 0.5 * (ROUNDOFF_FACTOR * eps * res_scale) ** 2
    loss_tol = loss_floor if lam_plus is None else max(loss_floor, LOSS_SAFETY * gn**2 / (2.0 * lam_plus))
    n_neg = int(np.sum(lam < -eta))
    n_zero = int(np.sum(np.abs(lam) <= eta))
    lam_min = float(spectrum.lambda_min_quotient)
    crit_tol = CRITICAL_GTOL_REL * s**1.5

    A_dist = recovers = None
    if A_star is not None:
        A_star = np.asarray(A_star, dtype=float)
        A_dist = float(np.linalg.norm(A_hat - A_star))
    zero_dim = varies = None
    direction = None

    if gn > crit_tol and not nondegenerate:
        kind = NOT_CRITICAL
        reason = (f"not a critical point: ||grad G|| = {gn:.2e} > {crit_tol:.1e} "
                  f"(= {CRITICAL_GTOL_REL:g} s^1.5) and no Kantorovich guarantee (h = {h:.2g})")
    elif loss <= loss_tol:
        kind = GLOBAL_MINIMUM
        zero_dim = n_zero
        if problem.T == 2:
            varies = _A_varies_on_family(problem, U)
        reason = (f"G = {loss:.2e} <= {loss_tol:.1e} (zero within the gradient/curvature bound "
                  f"||g||^2/(2 lambda_+) and round-off): a global minimum, since min G = 0")
        if A_dist is not None:
            recovers = bool(A_dist <= A_MATCH_RTOL * (s + float(np.linalg.norm(A_star))))
            reason += f"; ||A - A*||_F = {A_dist:.2e}" + (" (A* recovered)" if recovers else " (A != A*)")
    elif n_neg > 0:
        kind = STRICT_SADDLE
        direction = spectrum.direction
        reason = (f"negative curvature on the quotient: lambda_min = {lam_min:.3e} < -{eta:.1e}"
                  f" ({n_neg} negative eigenvalue(s) computed), G = {loss:.3e} > 0")
    elif nondegenerate and rest.size and float(np.min(rest)) > eta:
        kind = SPURIOUS_CANDIDATE
        quot = "O(k) and the T=2 O(k,k) family" if n_sym else "O(k)"
        reason = (f"G = {loss:.3e} > {loss_tol:.1e} with S positive definite on the quotient by {quot} "
                  f"(smallest eigenvalue {float(np.min(rest)):.3e} > {eta:.1e}; Kantorovich h = {h:.2g})")
    else:
        kind = DEGENERATE
        if not nondegenerate:
            reason = (f"cannot tell: smallest unexplained |eigenvalue| sigma = {sigma:.2e} is too small for "
                      f"||grad G|| = {gn:.2e} (Kantorovich h = {h:.2g} > 1/2), no eigenvalue below -{eta:.1e}, "
                      f"G = {loss:.2e} > {loss_tol:.1e}")
        else:
            reason = (f"cannot tell: {int(np.sum(np.abs(rest) <= eta))} near-zero quotient eigenvalue(s) not "
                      f"explained by the symmetry and none below -{eta:.1e}; G = {loss:.3e} > 0")
    return Classification(
        kind=kind,
        reason=reason,
        loss=float(loss),
        grad_norm=gn,
        loss_tolerance=float(loss_tol),
        eigenvalue_tolerance=float(eta),
        lambda_min_quotient=lam_min,
        sigma=sigma,
        kantorovich_h=float(h),
        n_negative=n_neg,
        n_zero=n_zero,
        n_zero_symmetry=int(n_sym),
        negative_direction=direction,
        A_hat=_Deferred(lambda: problem.optimal_A(U)),
        A_star_distance=A_dist,
        recovers_A_star=recovers,
        zero_set_dimension=zero_dim,
        A_varies_on_zero_set=varies,
        spectrum_method=spectrum.method,
    )


def classify_result(problem: LoraMLProblem, result: SearchResult, *, A_star=None, rng=None) -> Classification:
    """:func:`classify` at the end point of a :class:`SearchResult`, reusing its spectrum."""
    return classify(problem, result.point, spectrum=result.spectrum, A_star=A_star, rng=rng)


@dataclass(frozen=True)
class CriticalClass:
    """Critical points found, identified modulo :math:`U_t\\mapsto U_tO_t`.

    Attributes
    ----------
    id : int
    kind : str
    members : tuple of int
        Indices (into the list given to :func:`deduplicate`) of the points in the class.
    representative : int
        Member with the smallest gradient norm.
    family : int
        Class id of the first class in the same :math:`T=2` :math:`O(k,k)` family
        (same :math:`D_U` and kind); equals ``id`` for :math:`T\\ge3`.
    classification : Classification
        The representative's verdict.
    """

    id: int
    kind: str
    members: tuple
    representative: int
    family: int
    classification: Classification


def _stack_distance(X, Y, gram: bool) -> float:
    r""":math:`(\sum_t\|X_tX_t^\top-Y_tY_t^\top\|_F^2)^{1/2}` (``Y=None``: :math:`0`).

    Dense form: ``X``, ``Y`` are the stacks :math:`P_t` themselves.  Gram form: they
    are the factors, and :math:`\langle X_tX_t^\top,Y_tY_t^\top\rangle=\|X_t^\top Y_t\|_F^2`
    needs only :math:`k\times k` blocks.  The expansion cancels to an absolute error of
    :math:`\sqrt{\varepsilon}\,\|P\|_F\approx10^{-8}\|P\|_F`, far below the
    :data:`DEDUP_RTOL` it is compared with."""
    if not gram:
        return float(np.linalg.norm(X if Y is None else X - Y))

    def ip(A, B):
        return float(np.sum(np.einsum("tdi,tdj->tij", A, B) ** 2))

    sq = ip(X, X) + (0.0 if Y is None else ip(Y, Y) - 2.0 * ip(X, Y))
    return float(np.sqrt(max(sq, 0.0)))


def _family_distance(X, Y, gram: bool) -> float:
    r""":math:`\|D_X-D_Y\|_F` for :math:`D=U_1U_1^\top-U_2U_2^\top` (:math:`T=2`), dense or Gram form.

    In the Gram form :math:`D_X-D_Y=[X_1,Y_2]\,[X_1,Y_2]^\top`-type sums of four signed
    rank-:math:`k` terms: :math:`\|\sum_i\sigma_iZ_iZ_i^\top\|^2=\sum_{ij}\sigma_i\sigma_j\|Z_i^\top Z_j\|^2`."""
    if not gram:
        return float(np.linalg.norm(X if Y is None else X - Y))
    Z = [X[0], X[1]] + ([] if Y is None else [Y[0], Y[1]])
    sig = [1.0, -1.0] + ([] if Y is None else [-1.0, 1.0])
    sq = sum(si * sj * float(np.sum((Zi.T @ Zj) ** 2)) for Zi, si in zip(Z, sig) for Zj, sj in zip(Z, sig))
    return float(np.sqrt(max(sq, 0.0)))


def deduplicate(problem: LoraMLProblem, points, classifications, *, rtol: float = DEDUP_RTOL) -> list[CriticalClass]:
    r"""Group critical points that differ by :math:`U_t\mapsto U_tO_t` (equal stacks
    :math:`U_tU_t^\top`) and, for :math:`T=2`, link classes of the same
    :math:`O(k,k)` family (equal :math:`D_U=U_1U_1^\top-U_2U_2^\top`, hence equal
    :math:`G`; THEORY.md section 4).  Points classified ``not_critical`` are skipped.

    Two stacks are equal when :math:`\|P-P'\|_F\le` ``rtol`` :math:`(s+\|P\|_F)`.
    """
    s = problem_scale(problem)
    gram = uses_factored(problem)
    keys, groups = [], []  # (kind, P) per class; P is U itself in the Gram form
    for i, (U, c) in enumerate(zip(points, classifications)):
        if c.kind == NOT_CRITICAL:
            continue
        U = np.asarray(U, dtype=float)
        P = U if gram else U @ np.swapaxes(U, 1, 2)
        for j, (kind, Q) in enumerate(keys):
            if kind == c.kind and _stack_distance(P, Q, gram) <= rtol * (s + _stack_distance(Q, None, gram)):
                groups[j].append(i)
                break
        else:
            keys.append((c.kind, P))
            groups.append([i])
    classes = []
    fam_keys = []  # (kind, D_U, class id)
    for cid, ((kind, P), members) in enumerate(zip(keys, groups)):
        rep = min(members, key=lambda i: classifications[i].grad_norm)
        family = cid
        if problem.T == 2:
            D = P if gram else P[0] - P[1]
            for fkind, FD, fid in fam_keys:
                if fkind == kind and _family_distance(D, FD, gram) <= rtol * (s + _family_distance(FD, None, gram)):
                    family = fid
                    break
            else:
                fam_keys.append((kind, D, cid))
        classes.append(CriticalClass(cid, kind, tuple(members), rep, family, classifications[rep]))
    return classes
