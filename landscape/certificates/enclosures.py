r"""``arb`` enclosures shared by the Taylor and the epsilon-net certificate.

G, its gradient norm and the bound m at an exact float point, the Schur complement S
entry by entry, the O(k) penalty :math:`cYY^\top` built from the orbit's tangent
generators, and a rigorous lower bound of the smallest eigenvalue through a float
Cholesky factor and its residual enclosed in ``arb`` (see :mod:`landscape.certificates.taylor_arb`).
"""
from __future__ import annotations

import math

import numpy as np

from .._interval import arb_from_array, arb_pair, arb_precision

#: Shift of the Cholesky test below the float estimate of lambda_min: relative part.
#: Costs a relative 1e-6 of the eigenvalue bound and keeps H - mu I safely positive
#: definite for the float Cholesky.
CHOL_SHIFT_REL = 1e-6


#: Absolute part of the shift, in units of n * eps_machine * ||H||: the float Cholesky
#: of a matrix whose smallest eigenvalue exceeds ~n eps ||H|| succeeds (backward
#: stability); 64 leaves room for the rounding of H itself.
CHOL_SHIFT_ABS = 64.0


#: How many times the Cholesky shift is enlarged (x16 each) before giving up.
CHOL_RETRIES = 6


#: Orbit directions are lifted to about this multiple of the spectral radius of S by
#: the penalty c Y Y^T, well above the quotient's smallest eigenvalue.
PENALTY_FACTOR = 2.0


#: Eigenvalues of Y_t^T Y_t below this fraction of the largest are treated as
#: dependent generators when choosing the penalty (the bound stays valid for any c).
GENERATOR_RTOL = 1e-10


def _tangent_generators(U: np.ndarray) -> list[np.ndarray]:
    r"""Per task, the ``(d*k, k(k-1)/2)`` matrix of generators :math:`\mathrm{vec}(U_t(E_{ij}-E_{ji}))`.

    Column-major vec: :math:`U_tE_{ij}` puts column :math:`i` of :math:`U_t` in column
    :math:`j`.  Entries are exactly :math:`\pm` entries of ``U`` (no rounding).
    """
    T, d, k = U.shape
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    out = []
    for t in range(T):
        Y = np.zeros((d * k, len(pairs)))
        for c, (i, j) in enumerate(pairs):
            Y[j * d : (j + 1) * d, c] = U[t, :, i]
            Y[i * d : (i + 1) * d, c] = -U[t, :, j]
        out.append(Y)
    return out


def _choose_penalty(S: np.ndarray, gens: list[np.ndarray]) -> float:
    """Float ``c >= 0`` that lifts the orbit directions above the quotient spectrum."""
    if not gens or gens[0].shape[1] == 0:
        return 0.0
    sig = []
    for Y in gens:
        ev = np.linalg.eigvalsh(Y.T @ Y)
        if ev.size and ev[-1] > 0:
            sig.append(float(np.min(ev[ev > GENERATOR_RTOL * ev[-1]])))
    if not sig:
        return 0.0
    spec = float(np.max(np.abs(np.linalg.eigvalsh(S)))) if S.size else 0.0
    return float(PENALTY_FACTOR * max(spec, 1.0) / min(sig))


def _sqrt_nonneg(x):
    r"""Enclosure of :math:`\sqrt{y}` for the non-negative quantity :math:`y\in x`."""
    from flint import arb

    hi = x.upper()
    if not hi > 0:
        return arb(0)
    lo = x.lower()
    lo_root = lo.sqrt().lower() if lo > 0 else arb(0)
    hi_root = hi.sqrt().upper()
    return arb((lo_root + hi_root) / 2, (hi_root - lo_root) / 2)


def _arb_state(tasks: np.ndarray, U: np.ndarray) -> dict:
    r"""Enclosures at an exact point: :math:`G`, the centred residuals :math:`a_t`,
    :math:`\|\nabla G\|_F` and an upper bound of :math:`\max_t\|U_t\|_2`.

    The spectral-norm bound is :math:`\sqrt{\min(\mathrm{tr}\,G_t,\ \max_i\sum_j|(G_t)_{ij}|)}`
    with :math:`G_t=U_t^\top U_t` (trace = Frobenius, Gershgorin row sums bound
    :math:`\lambda_{\max}`); both are exact upper bounds, equal for :math:`k=1`.
    """
    from flint import arb

    T, d, k = U.shape
    Us = [arb_from_array(U[t]) for t in range(T)]
    D = [arb_from_array(tasks[t]) - Us[t] * Us[t].transpose() for t in range(T)]
    Dsum = D[0]
    for t in range(1, T):
        Dsum = Dsum + D[t]
    Dbar = Dsum / T
    a = [D[t] - Dbar for t in range(T)]
    G = arb(0)
    for t in range(T):
        for i in range(d):
            for j in range(d):
                G += a[t][i, j] ** 2
    G = G / 2
    gsq = arb(0)
    for t in range(T):
        gt = (a[t] + a[t].transpose()) * Us[t]  # = -grad_{U_t} G
        for i in range(d):
            for j in range(k):
                gsq += gt[i, j] ** 2
    gnorm = _sqrt_nonneg(gsq)
    m_sq_upper = arb(0)
    for t in range(T):
        Gt = Us[t].transpose() * Us[t]
        trace = sum((Gt[i, i] for i in range(k)), arb(0)).upper()
        gersh = max(sum((abs(Gt[i, j]) for j in range(k)), arb(0)).upper() for i in range(k))
        mt = trace if trace < gersh else gersh
        if mt > m_sq_upper:
            m_sq_upper = mt
    m_upper = m_sq_upper.sqrt().upper() if m_sq_upper > 0 else arb(0)
    return {"G": G, "a": a, "gnorm": gnorm, "m_upper": m_upper, "U": Us}


def _arb_hessian(state: dict, T: int, d: int, k: int):
    r"""The reduced Hessian :math:`S=\nabla^2G` as an ``arb_mat``, entry by entry.

    With column-major vec (entry :math:`\Delta_t[q,l]` at :math:`t\,dk+l\,d+q`),

    .. math::
        S_{(s,j,p),(t,l,q)} = 2(\delta_{st}-\tfrac1T)\big(U_t[p,l]U_s[q,j]
        +\delta_{pq}(U_t^\top U_s)_{lj}\big) - \delta_{st}\delta_{jl}(a_t+a_t^\top)_{pq},

    i.e. :math:`(\delta_{st}-\frac1T)B_s^\top B_t - \delta_{st}I_k\otimes(a_t+a_t^\top)`
    (THEORY.md section 5, Schur complement, with :math:`R_t=-a_t`).
    """
    from flint import arb, arb_mat

    Us, a = state["U"], state["a"]
    n = T * d * k
    S = arb_mat(n, n)
    cross = [[Us[t].transpose() * Us[s] for s in range(T)] for t in range(T)]  # (U_t^T U_s)
    symA = [a[t] + a[t].transpose() for t in range(T)]
    invT = arb(1) / T
    for s in range(T):
        for t in range(s, T):
            coef = 2 * ((1 if s == t else 0) - invT)
            C = cross[t][s]
            for j in range(k):
                for p in range(d):
                    row = s * d * k + j * d + p
                    for l in range(k):
                        for q in range(d):
                            col = t * d * k + l * d + q
                            if col < row and s == t:
                                continue
                            val = Us[t][p, l] * Us[s][q, j]
                            if p == q:
                                val += C[l, j]
                            val = coef * val
                            if s == t and j == l:
                                val -= symA[t][p, q]
                            S[row, col] = val
                            S[col, row] = val
    return S


def _arb_penalty(U: np.ndarray, c: float):
    r""":math:`c\,YY^\top` as an ``arb_mat`` (block diagonal over tasks)."""
    from flint import arb, arb_mat

    T, d, k = U.shape
    n = T * d * k
    P = arb_mat(n, n)
    if c == 0.0 or k < 2:
        return P
    for t, Y in enumerate(_tangent_generators(U)):
        Ya = arb_from_array(Y)
        B = Ya * Ya.transpose() * arb(c)
        off = t * d * k
        for i in range(d * k):
            for j in range(d * k):
                P[off + i, off + j] = B[i, j]
    return P


def _arb_to_mid(M) -> np.ndarray:
    n, m = M.nrows(), M.ncols()
    return np.array([[float(M[i, j].mid()) for j in range(m)] for i in range(n)])


def _frob_upper(M):
    from flint import arb

    acc = arb(0)
    for i in range(M.nrows()):
        for j in range(M.ncols()):
            acc += M[i, j].abs_upper() ** 2
    return acc.upper().sqrt().upper()


def _cholesky_lower_bound(H, H_mid: np.ndarray, mu: float):
    r"""Rigorous :math:`\lambda_{\min}(H)\ge\mu-\|H-\mu I-LL^\top\|_F` (``arb`` point) and
    the residual bound; ``None`` if the float Cholesky of :math:`H-\mu I` fails."""
    from flint import arb, arb_mat

    n = H_mid.shape[0]
    try:
        L = np.linalg.cholesky(H_mid - mu * np.eye(n))
    except np.linalg.LinAlgError:
        return None
    La = arb_from_array(L)
    F = H - La * La.transpose()
    for i in range(n):
        F[i, i] = F[i, i] - arb(mu)
    res = _frob_upper(F)
    return (arb(mu) - res).lower(), res


def _lambda_min_lower(H, H_mid: np.ndarray, mu: float | None = None):
    """Lower bound of lambda_min(H) (``arb`` point), the shift used, and the residual.

    If ``mu`` is given (verification), only that shift is tried.  Otherwise the
    shift starts at the float estimate minus :data:`CHOL_SHIFT_REL` / :data:`CHOL_SHIFT_ABS`
    and grows until the float Cholesky succeeds.
    """
    from flint import arb

    n = H_mid.shape[0]
    if mu is not None:
        out = _cholesky_lower_bound(H, H_mid, mu)
        return (arb(-math.inf), mu, math.inf) if out is None else (out[0], mu, float(out[1].upper()))
    lam = np.linalg.eigvalsh(0.5 * (H_mid + H_mid.T))
    scale = max(float(np.max(np.abs(lam))), np.finfo(float).tiny)
    delta = max(CHOL_SHIFT_REL * abs(float(lam[0])), CHOL_SHIFT_ABS * n * np.finfo(float).eps * scale)
    for _ in range(CHOL_RETRIES):
        mu = float(lam[0] - delta)
        out = _cholesky_lower_bound(H, H_mid, mu)
        if out is not None:
            return out[0], mu, float(out[1].upper())
        delta *= 16.0
    return arb(-math.inf), float(lam[0] - delta), math.inf


def _witness_upper(tasks, W, precision: int) -> tuple[float, float]:
    with arb_precision(precision):
        return arb_pair(_arb_state(tasks, W)["G"])
