r"""Floating-point Taylor certificate for large problems (THEORY.md section 8), k = 1.

The ``arb`` Taylor certificate of :mod:`landscape.certificates.taylor_arb` encloses the Hessian
entry by entry in ball arithmetic and refuses above ``T*d*k = 300``.  This module proves
the same inequalities (Cq), (C1), (C2) with plain float64 computations whose rounding
errors are bounded *a priori*, so that ``T*d*k`` of order :math:`10^4` takes seconds to
a minute.  The certificate is a :class:`landscape.Certificate` of kind ``"taylor_fp"``
that :meth:`~landscape.Certificate.verify` re-checks from the stored data alone.

Rounding model
--------------
IEEE-754 binary64, round to nearest, unit roundoff :math:`u=2^{-53}`, and
:math:`\gamma_m=mu/(1-mu)`.  Without underflow every operation satisfies
:math:`\mathrm{fl}(a\circ b)=(a\circ b)(1+\delta)`, :math:`|\delta|\le u`; additions and
subtractions satisfy it even with gradual underflow.  If an expression is a sum of
monomials in the input floats and every monomial passes through at most :math:`K`
roundings (products, the additions on its path, scalings), then, for *any* evaluation
order (blocked BLAS, FMA or not),

.. math::
    |\mathrm{fl}(e)-e|\ \le\ \gamma_K\,|e|_{\mathrm{abs}},

where :math:`|e|_{\mathrm{abs}}` is the same sum with every monomial replaced by its
absolute value (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
Lemma 3.1 and eq. (3.5)).  The computed :math:`\mathrm{fl}(|e|_{\mathrm{abs}})` is within
a factor :math:`1\pm\gamma_K` of it, so :math:`\gamma_K/(1-\gamma_K)\,
\mathrm{fl}(|e|_{\mathrm{abs}})` is a rigorous entrywise error bound.  All scalar
constants (the :math:`\gamma`'s, the final aggregations) are evaluated in exact rational
arithmetic and rounded outward.  Underflow in products is excluded by a range check of
the inputs (every non-zero entry of the tasks and of the point in
:math:`[2^{-400},2^{400}]`), and in the Cholesky factor by the check below.

Enclosed quantities (k = 1, :math:`u_t` the columns of the point)
------------------------------------------------------------------
* :math:`R_t=\bar D-D_t`, :math:`D_t=A^\star_t-u_tu_t^\top`: each entry is a sum of
  :math:`2T+2` monomials with at most :math:`T+4` roundings, giving :math:`\hat R_t` and
  an entrywise bound :math:`e_t\ge|R_t-\hat R_t|`.
* :math:`G=\tfrac12\sum\|R_t\|_F^2\in[\tfrac12\sum(|\hat R|-e)_+^2,\ \tfrac12\sum(|\hat R|+e)^2]`
  (sums of non-negative terms, rounded outward).
* :math:`\nabla_{u_t}G=(R_t+R_t^\top)u_t` and :math:`m=\max_t\|u_t\|` from above.
* The Schur complement :math:`S=\nabla^2G` (section 5); for :math:`k=1` its block
  :math:`(s,t)` is

  .. math::
      S_{st}=\delta_{st}\big(2\|u_t\|^2I+2u_tu_t^\top+R_t+R_t^\top\big)
      -\tfrac2T\big((u_t^\top u_s)I+u_tu_s^\top\big),

  computed as :math:`\hat S` with an entrywise bound :math:`E\ge|S-\hat S|`
  (:math:`e_t+e_t^\top` on the diagonal blocks plus :math:`\gamma_{d+10}` times the
  absolute expression), so :math:`\lambda_{\min}(S)\ge\lambda_{\min}(\hat S)-\|E\|_2` and
  :math:`\|E\|_2\le\max(\|E\|_1,\|E\|_\infty)`.

Positive definiteness of :math:`\hat S-\mu I` by a float Cholesky (Rump 2006)
--------------------------------------------------------------------------------
Let :math:`\tilde A` be the float matrix :math:`\hat S` with diagonal
:math:`\mathrm{fl}(\hat s_{ii}-\mu)`.  If the floating-point Cholesky factorisation of
:math:`\tilde A` runs to completion, its computed factor satisfies
:math:`\hat R^\top\hat R=\tilde A+\Delta` with
:math:`|\Delta|\le\gamma_{n+1}|\hat R^\top||\hat R|` (Demmel 1989; Higham 2002, Thm 10.3;
S. M. Rump, "Verification of positive definiteness", BIT Numer. Math. 46 (2006)
433-452, proves it for any order of evaluation and with FMA, which covers blocked
LAPACK/BLAS).  Hence :math:`\|\Delta\|_2\le\gamma_{n+1}\|\hat R\|_F^2` and, because
:math:`\|\hat R\|_F^2=\mathrm{tr}(\tilde A+\Delta)\le\mathrm{tr}\tilde A+\gamma_{n+1}\|\hat R\|_F^2`,

.. math::
    \lambda_{\min}(\tilde A)\ \ge\ -\frac{\gamma_{n+1}}{1-\gamma_{n+1}}\,\mathrm{tr}(\tilde A),
    \qquad
    \lambda_{\min}(\hat S)\ \ge\ \min_i(\hat s_{ii}-\tilde a_{ii})
      -\frac{\gamma_{n+1}}{1-\gamma_{n+1}}\,\mathrm{tr}(\tilde A),

with the diagonal differences evaluated exactly.  This is the trace term of Rump's
criterion (a successful float Cholesky of :math:`A-cI` with :math:`c` at least
:math:`\gamma_{n+1}(1-\gamma_{n+1})^{-1}\mathrm{tr}A` plus a term for underflow proves
:math:`A\succ0`); the constant used here is the one derived above from the backward
error bound, not transcribed.  Instead of an additive underflow term we *check* that no
operation of the factorisation could have underflowed: every entry of the computed
factor is either zero or at least :math:`2^{-500}` in modulus, and every diagonal
entry of :math:`\tilde A` is below :math:`2^{500}`; then products of factor entries are
normal numbers, a quotient :math:`r_{ij}` that underflowed would be zero or subnormal,
and a zero entry is accepted only if it was an exact zero of the computation (we
refuse, to stay on the safe side, whenever an entry of the factor is zero).

Then the certificate's curvature bound is
:math:`\underline\lambda=\min_i(\hat s_{ii}-\tilde a_{ii})-\gamma_{n+1}(1-\gamma_{n+1})^{-1}
\mathrm{tr}\tilde A-\|E\|_2`, rounded down, and (Cq), (C1), (C2) are decided exactly as
in the ``arb`` certificate (same margins, same verdicts).  For :math:`k\ge2` the
quotient by :math:`O(k)` needs the penalty :math:`cYY^\top` of the ``arb`` path; this
path refuses it (:class:`CertificateNotApplicable`).

Why it is long: the a priori rounding-error analysis above (about 90 lines) is the proof
that the code implements, and it stays beside the code it justifies; the code itself
is about 500 lines.
"""
from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
from scipy.linalg import lapack

from .._objective import LoraMLProblem
from .._random import accepts_seed
from .common import _claims_hold, _taylor_decide, _taylor_radius
from .data import ARB_PRECISION, Certificate, CertificateNotApplicable, CertificateTooLarge, register_verifier

__all__ = ["FP_TAYLOR_MAX_DIM", "fp_taylor_certificate", "verify_fp_taylor", "fp_taylor_bounds", "embed_spurious_instance"]

#: Largest ``T*d*k`` accepted.  The dense float Schur complement takes 8 n^2 bytes
#: (0.8 GB at n = 1e4) and the Cholesky n^3/3 flops (about 20-40 s at n = 1e4 on one
#: core of the development machine); 12,000 keeps one certificate plus its
#: re-verification within a few minutes and ~1.5 GB.
FP_TAYLOR_MAX_DIM = 12_000

#: Unit roundoff of binary64 and the smallest positive subnormal.
_U = Fraction(1, 2**53)
_ETA = Fraction(1, 2**1074)

#: Range of non-zero input entries for which no product of two inputs (or of an input
#: and an error factor ~1e-13) can underflow or overflow.
_INPUT_MIN, _INPUT_MAX = 2.0**-400, 2.0**400

#: Non-zero entries of the Cholesky factor must be at least this large (products of two
#: of them are then normal), and the diagonal of the factorised matrix at most
#: _DIAG_MAX (its square root bounds every factor entry).
_FACTOR_MIN = 2.0**-500
_DIAG_MAX = 2.0**500

#: Float shift below the float estimate of lambda_min: relative part, and absolute part
#: in units of n u ||S||_F (the float Cholesky of a matrix whose smallest eigenvalue
#: exceeds ~n u ||A|| succeeds); on failure the shift is moved down by x16, at most
#: _SHIFT_RETRIES times (the same constants as the arb path's Cholesky test).
_SHIFT_REL = 1e-6
_SHIFT_ABS = 64.0
_SHIFT_RETRIES = 6

#: The stored lambda claim is the rigorous bound lowered by this relative amount, so
#: that a re-verification whose row sums are summed in another order (another numpy or
#: BLAS) still implies it; it costs nothing measurable in the margins.
_CLAIM_SLACK = 1e-9

#: Numbers per temporary in the blockwise builds (8 MiB): the bounds and the Schur
#: complement are assembled a block of rows at a time, so that the float certificate
#: needs little beyond the n x n matrix it factorises and the tasks.
_CHUNK_ELEMS = 1 << 20

#: Witness search when none is given: L-BFGS runs (factored objective) from this many
#: random starts; on model-M1 instances one reaches G ~ 0.
_WITNESS_STARTS = 4


class _NotApplicable(ValueError):
    pass


# --------------------------------------------------------------------------------------
# exact scalar helpers
# --------------------------------------------------------------------------------------
def _gamma(m: int) -> Fraction:
    return m * _U / (1 - m * _U)


def _up(x: Fraction) -> float:
    """Smallest float >= x."""
    f = float(x)
    while Fraction(f) < x:
        f = math.nextafter(f, math.inf)
    return f


def _down(x: Fraction) -> float:
    """Largest float <= x."""
    f = float(x)
    while Fraction(f) > x:
        f = math.nextafter(f, -math.inf)
    return f


def _sqrt_up(x: Fraction) -> float:
    if x <= 0:
        return 0.0
    f = math.sqrt(_up(x))
    while Fraction(f) * Fraction(f) < x:
        f = math.nextafter(f, math.inf)
    return f


def _sqrt_down(x: Fraction) -> float:
    if x <= 0:
        return 0.0
    f = math.sqrt(_down(x))
    while Fraction(f) * Fraction(f) > x:
        f = math.nextafter(f, -math.inf)
    return f


def _err_factor(K: int) -> float:
    r"""Float :math:`\theta\ge\gamma_K/(1-\gamma_K)/(1-u)`: ``fl(theta * fl(|e|_abs))``
    then bounds :math:`|\mathrm{fl}(e)-e|` although the product itself is rounded."""
    g = _gamma(K)
    return _up(g / (1 - g) / (1 - _U))


def _sum_up_eta(total: float, count: int, products: int) -> Fraction:
    """Upper bound of an exact sum of ``count`` non-negative reals whose float sum (any
    order) is ``total``, when ``products`` of the summands are float products that may each
    have underflowed by at most eta/2: ``fl >= (1 - gamma_count) * exact - products * eta``."""
    return (Fraction(total) + products * _ETA) / (1 - _gamma(max(count, 1)))


def _check_range(name: str, x: np.ndarray):
    flat = np.asarray(x).reshape(-1)
    lo, hi = math.inf, 0.0
    for i in range(0, flat.size, _CHUNK_ELEMS):  # chunks: no temporaries of the input's size
        a = np.abs(flat[i:i + _CHUNK_ELEMS])
        a = a[a != 0]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    if lo < _INPUT_MIN or hi > _INPUT_MAX:
        raise _NotApplicable(f"{name}: non-zero entries outside [2^-400, 2^400] (underflow/overflow not excluded)")


# --------------------------------------------------------------------------------------
# float state with entrywise error bounds, built a block of rows at a time
# --------------------------------------------------------------------------------------
class _Residuals:
    r""":math:`\hat R_t` and the bounds :math:`e_t\ge|R_t-\hat R_t|` (each of shape (d, d)),
    produced a block of rows or columns at a time, so that no (T, d, d) array beyond the
    tasks is ever stored: :math:`\hat R_t=\bar D-(A^\star_t-u_tu_t^\top)` and
    :math:`e_t=\theta(\bar\rho+|A^\star_t|+|u_t||u_t|^\top)` from the two d x d means
    :math:`\bar D=\tfrac1T\sum_s(A^\star_s-u_su_s^\top)` and
    :math:`\bar\rho=\tfrac1T\sum_s(|A^\star_s|+|u_s||u_s|^\top)`.

    Monomials of :math:`R_t[i,j]`: :math:`A_s/T`, :math:`u_s[i]u_s[j]/T`, :math:`A_t`,
    :math:`u_t[i]u_t[j]`; roundings on a path: product 1, :math:`A-P` 1, the sum over
    tasks :math:`T-1`, the division 1, the final subtraction 1: :math:`K=T+3`.  The
    absolute expression adds one rounding for :math:`|A|+|P|` and two for the last
    additions: it is computed with depth :math:`T+4`, and :math:`K_R=T+4` covers both.

    Every entry is the same float expression, evaluated in the same order (sums over
    tasks left to right), as in the vectorised formulas ``R = D.sum(0)/T - D``,
    ``e = theta*(Aa.sum(0)/T + |A| + Pa)``: the values do not depend on the blocking.
    """

    def __init__(self, tasks: np.ndarray, u: np.ndarray):
        self.tasks, self.u = tasks, u
        self.T, self.d = u.shape
        self.ua = np.abs(u)
        self.theta = _err_factor(self.T + 4)
        T, d = self.T, self.d
        self.Dbar = np.empty((d, d))
        self.rhobar = np.empty((d, d))
        for i0, i1 in self.chunks():
            D = self.Dbar[i0:i1]
            Rh = self.rhobar[i0:i1]
            for s in range(T):  # left to right, as numpy's sum over the leading axis
                Ds = tasks[s, i0:i1] - np.multiply(u[s, i0:i1, None], u[s, None, :])
                As = np.abs(tasks[s, i0:i1])
                As += np.multiply(self.ua[s, i0:i1, None], self.ua[s, None, :])
                if s == 0:
                    D[...], Rh[...] = Ds, As
                else:
                    D += Ds
                    Rh += As
            D /= T
            Rh /= T

    def chunks(self):
        """Row ranges ``(i0, i1)`` of at most :data:`_CHUNK_ELEMS` numbers each."""
        m = max(1, _CHUNK_ELEMS // max(self.d, 1))
        return [(i0, min(i0 + m, self.d)) for i0 in range(0, self.d, m)]

    def rows(self, t: int, i0: int, i1: int) -> np.ndarray:
        r"""Rows ``i0:i1`` of :math:`\hat R_t` (a new array)."""
        u = self.u[t]
        out = self.tasks[t, i0:i1] - np.multiply(u[i0:i1, None], u[None, :])
        return np.subtract(self.Dbar[i0:i1], out, out=out)

    def cols(self, t: int, i0: int, i1: int) -> np.ndarray:
        r"""Columns ``i0:i1`` of :math:`\hat R_t`, shape (d, i1 - i0)."""
        u = self.u[t]
        out = self.tasks[t, :, i0:i1] - np.multiply(u[:, None], u[None, i0:i1])
        return np.subtract(self.Dbar[:, i0:i1], out, out=out)

    def err_rows(self, t: int, i0: int, i1: int) -> np.ndarray:
        """Rows ``i0:i1`` of :math:`e_t`."""
        ua = self.ua[t]
        out = np.abs(self.tasks[t, i0:i1])
        np.add(self.rhobar[i0:i1], out, out=out)
        out += np.multiply(ua[i0:i1, None], ua[None, :])
        out *= self.theta
        return out

    def err_cols(self, t: int, i0: int, i1: int) -> np.ndarray:
        """Columns ``i0:i1`` of :math:`e_t`, shape (d, i1 - i0)."""
        ua = self.ua[t]
        out = np.abs(self.tasks[t, :, i0:i1])
        np.add(self.rhobar[:, i0:i1], out, out=out)
        out += np.multiply(ua[:, None], ua[None, i0:i1])
        out *= self.theta
        return out

    def stack(self) -> tuple[np.ndarray, np.ndarray]:
        r"""The full arrays :math:`(\hat R, e)`, shape (T, d, d) each (small problems, tests)."""
        R = np.stack([self.rows(t, 0, self.d) for t in range(self.T)])
        e = np.stack([self.err_rows(t, 0, self.d) for t in range(self.T)])
        return R, e


def _residuals(tasks: np.ndarray, u: np.ndarray) -> _Residuals:
    r""":math:`\hat R_t` and :math:`e_t\ge|R_t-\hat R_t|` (:class:`_Residuals`)."""
    return _Residuals(np.ascontiguousarray(tasks, dtype=np.float64), np.ascontiguousarray(u, dtype=np.float64))


def _loss_bounds(res: _Residuals) -> tuple[float, float]:
    r"""Outward enclosure of :math:`\tfrac12\sum(R_{\text{exact}})^2` from :math:`\hat R`, :math:`e`.

    The squares are summed by one dot product over all :math:`Td^2` entries (one buffer
    of that size, filled a block of rows at a time and reused for both bounds)."""
    T, d = res.T, res.d
    M = T * d * d
    buf = np.empty((T, d, d))
    flat = buf.reshape(-1)
    sums = []
    for low in (True, False):
        for t in range(T):
            for i0, i1 in res.chunks():
                R = np.abs(res.rows(t, i0, i1), out=None)
                e = res.err_rows(t, i0, i1)
                if low:  # lo <= (|R^|-e)(1+u) <= |R|(1+u)
                    np.maximum(np.subtract(R, e, out=R), 0.0, out=buf[t, i0:i1])
                else:  # hi >= (|R^|+e)(1-u) >= |R|(1-u)
                    np.add(R, e, out=buf[t, i0:i1])
        sums.append(float(flat @ flat))
    del buf, flat
    s_lo, s_hi = sums
    g = _gamma(M + 1)
    # each square may underflow by at most eta/2 (absolute); M of them
    low = (Fraction(s_lo) / (1 + g) - M * _ETA) / (1 + _U) ** 2 / 2
    high = _sum_up_eta(s_hi, M + 1, M) / (1 - _U) ** 2 / 2
    return _down(max(low, Fraction(0))), _up(high)


def _grad_norm_upper(res: _Residuals) -> tuple[float, float, float]:
    r"""Upper bound of :math:`\|\nabla G\|` with :math:`\nabla_{u_t}G=(R_t+R_t^\top)u_t`,
    and the float norm.  Error of entry i: :math:`\sum_j(e_{ij}+e_{ji}+\gamma_{d+1}
    (|\hat R_{ij}|+|\hat R_{ji}|))|u_j|` (the exact residual vs :math:`\hat R`, then the
    rounding of the matrix-vector product, depth d+1)."""
    T, d = res.T, res.d
    u, ua = res.u, res.ua
    th = _err_factor(d + 1)
    g_hat = np.empty((T, d))
    err = np.empty((T, d))
    for t in range(T):
        for i0, i1 in res.chunks():
            Rr, Rc = res.rows(t, i0, i1), res.cols(t, i0, i1)
            g_hat[t, i0:i1] = np.einsum("ij,j->i", Rr + Rc.T, u[t])
            Z = res.err_rows(t, i0, i1)
            Z += res.err_cols(t, i0, i1).T
            W = np.add(np.abs(Rr, out=Rr), np.abs(Rc, out=Rc).T)
            W *= th
            Z += W
            err[t, i0:i1] = np.einsum("ij,j->i", Z, ua[t])  # computed err >= exact(1-gamma_{d+4})
    err = err.reshape(-1)
    err_up = Fraction(float(np.max(err))) / (1 - _gamma(d + 4)) if err.size else Fraction(0)
    gh = g_hat.reshape(-1)
    n = gh.size
    norm_sq_up = _sum_up_eta(float(gh @ gh), n + 1, n)
    # ||g|| <= ||g_hat|| + ||err||_2 <= ||g_hat|| + sqrt(n) max err
    bound = Fraction(_sqrt_up(norm_sq_up)) + Fraction(_sqrt_up(Fraction(n))) * err_up
    lo_sq = Fraction(float(gh @ gh)) / (1 + _gamma(n + 1)) - n * _ETA
    low = Fraction(_sqrt_down(max(lo_sq, Fraction(0)))) - Fraction(_sqrt_up(Fraction(n))) * err_up
    return _down(max(low, Fraction(0))), _up(bound), float(np.sqrt(gh @ gh))


def _m_upper(u: np.ndarray) -> float:
    d = u.shape[1]
    best = Fraction(0)
    for t in range(u.shape[0]):
        best = max(best, _sum_up_eta(float(u[t] @ u[t]), d + 1, d))
    return _sqrt_up(best)


def _schur_rows(res: _Residuals, s: int, t: int, i0: int, i1: int, blk: np.ndarray, E: np.ndarray, consts):
    r"""Rows ``i0:i1`` of block :math:`(s,t)` of :math:`\hat S` into ``blk`` and of its
    error bound into ``E`` (both of shape (i1 - i0, d); ``blk`` may be a view of S)."""
    u, ua = res.u, res.ua
    gram, gram_abs, th, cT = consts
    idx = np.arange(i1 - i0)
    dg = (idx, i0 + idx)  # the diagonal of the block within these rows
    # blk = -(2/T ((u_t^T u_s) I + u_t u_s^T)), one rounding: -(c x) = (-c) x exactly
    np.multiply(u[t, i0:i1, None], u[s, None, :], out=blk)
    blk[dg] += gram[t, s]
    blk *= -cT
    # the absolute expression: 2/T ((|u_t|^T |u_s|) I + |u_t| |u_s|^T)
    np.multiply(ua[t, i0:i1, None], ua[s, None, :], out=E)
    E[dg] += gram_abs[t, s]
    E *= cT
    if s == t:
        Rr, Rc = res.rows(t, i0, i1), res.cols(t, i0, i1)
        for v, g, R_r, R_c, out in ((u[t], gram[t, t], Rr, Rc, blk), (ua[t], gram_abs[t, t], None, None, E)):
            if R_r is None:  # the absolute expression: |R_t| + |R_t|^T
                R_r, R_c = np.abs(Rr, out=Rr), np.abs(Rc, out=Rc)
            # X = (2 |u_t|^2 I + 2 u_t u_t^T) + (R_t + R_t^T), added to the block
            X = np.add(R_r, R_c.T)
            x_diag = X[dg]
            o = np.multiply(v[i0:i1, None], v[None, :])
            o *= 2.0
            X += o
            X[dg] = (2.0 * g + 2.0 * (v[i0:i1] * v[i0:i1])) + x_diag
            out += X
    E *= th
    if s == t:
        E += np.add(res.err_rows(t, i0, i1), res.err_cols(t, i0, i1).T)


def _schur_consts(res: _Residuals):
    T, d = res.T, res.d
    # roundings per monomial: the dot product u_t^T u_s (d), the constant 2/T (1), its
    # product (1), the sums of at most six terms (5), and 3 spare: K_S = d + 10; the same
    # depth bounds the computed absolute expression.  fl(2/T): its rounding is counted.
    return res.u @ res.u.T, res.ua @ res.ua.T, _err_factor(d + 10), 2.0 / T


def _schur_blocks(res: _Residuals):
    r"""Yield ``(s, t, block, E_block)``: block :math:`(s,t)` of the float Schur complement
    :math:`\hat S` and its entrywise error bound :math:`E\ge|S-\hat S|` (module docstring),

    .. math::
        S_{st}=\delta_{st}\big(2\|u_t\|^2I+2u_tu_t^\top+R_t+R_t^\top\big)
        -\tfrac2T\big((u_t^\top u_s)I+u_tu_s^\top\big),

    each as a whole d x d array (small problems, tests; :func:`_schur_float` builds S a
    block of rows at a time with the same arithmetic)."""
    consts = _schur_consts(res)
    d = res.d
    for s in range(res.T):
        for t in range(res.T):
            blk, E = np.empty((d, d)), np.empty((d, d))
            _schur_rows(res, s, t, 0, d, blk, E, consts)
            yield s, t, blk, E


def _schur_float(res: _Residuals):
    r"""The float Schur complement :math:`\hat S` (C order, n x n) and an upper bound of
    :math:`\|E\|_2\le\max(\|E\|_1,\|E\|_\infty)`.  Written into S a block of rows at a
    time: besides S, only buffers of :data:`_CHUNK_ELEMS` numbers (E is never stored).
    The row and column sums of E are accumulated in the order of the whole-block sums
    (rows left to right, columns top to bottom), so they do not depend on the blocking."""
    T, d = res.T, res.d
    n = T * d
    consts = _schur_consts(res)
    chunks = res.chunks()
    S = np.empty((n, n))
    Ebuf = np.empty((chunks[0][1] - chunks[0][0], d))
    row = np.zeros(n)
    col = np.zeros(n)
    for s in range(T):
        for t in range(T):
            colsum = None
            for i0, i1 in chunks:
                E = Ebuf[:i1 - i0]
                _schur_rows(res, s, t, i0, i1, S[s * d + i0:s * d + i1, t * d:(t + 1) * d], E, consts)
                row[s * d + i0:s * d + i1] += E.sum(axis=1)
                if colsum is not None:  # continue the top-to-bottom sum of the block's columns
                    E[0] += colsum
                colsum = E.sum(axis=0)
            col[t * d:(t + 1) * d] += colsum
    # each row/column sum: n non-negative terms of depth <= 3 (E entries), summed
    e_norm = _sum_up_eta(float(max(row.max(), col.max())), n + 4, n * n)
    return S, e_norm


def _factor_in_range(entries: np.ndarray) -> bool:
    """Every entry of (a part of) the Cholesky factor finite and at least
    :data:`_FACTOR_MIN` in size, the limit included -- the same test for the whole lower
    triangle and for its column blocks."""
    a = np.abs(entries)
    return bool(np.all(np.isfinite(a)) and a.min() >= _FACTOR_MIN)


def _cholesky_lower_bound(S: np.ndarray, mu: float) -> Fraction | None:
    r"""Rigorous lower bound of :math:`\lambda_{\min}(\hat S)` from the float Cholesky of
    :math:`\hat S-\mu I` (module docstring), or None if it fails or could have
    underflowed.  ``S`` is overwritten by the factor."""
    n = S.shape[0]
    diag = np.diag(S).copy()
    shifted = diag - mu
    if not np.all(np.isfinite(shifted)) or shifted.max() > _DIAG_MAX:
        return None
    S[np.diag_indices(n)] = shifted
    # S is C-ordered; its transpose is a Fortran view of the same (symmetric) numbers.
    c, info = lapack.dpotrf(S.T, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        return None
    tri = c[np.tril_indices(n)] if n <= 2000 else None
    if tri is None:  # avoid the n^2 index arrays: check column blocks of the lower triangle
        ok = True
        for j0 in range(0, n, 512):
            blk = c[j0:, j0:j0 + 512]
            low = np.tril(blk)  # rows >= columns within the block
            if not _factor_in_range(low[np.tril(np.ones_like(blk, dtype=bool))]):
                ok = False
                break
        if not ok:
            return None
    else:
        if not _factor_in_range(tri):
            return None
    dmin = min(Fraction(float(x)) - Fraction(float(y)) for x, y in zip(diag, shifted))
    tr = sum((Fraction(float(y)) for y in shifted), Fraction(0))
    if tr < 0:
        return None
    g = _gamma(n + 1)
    return dmin - g / (1 - g) * tr


# --------------------------------------------------------------------------------------
# bounds, certificate, verification
# --------------------------------------------------------------------------------------
def fp_taylor_bounds(tasks, U0, *, shift: float | None = None, lam_estimate: float | None = None):
    """Rigorous float bounds at ``U0`` in the format of the ``arb`` path.

    Returns ``(enclosures, bounds, parameters, diagnostics)`` with enclosures
    ``G(U0)``, ``grad_norm``, bounds ``lambda_min_quotient_lower``, ``m_upper``,
    ``grad_norm_upper``, parameters ``penalty`` (0) and ``shift`` (the Cholesky shift
    used; ``shift`` given = verification with that exact shift).
    """
    tasks = np.ascontiguousarray(tasks, dtype=np.float64)
    U0 = np.asarray(U0, dtype=np.float64)
    if U0.ndim != 3 or U0.shape[2] != 1:
        raise _NotApplicable("the floating-point Taylor path handles k = 1 only "
                             "(k >= 2 needs the O(k) penalty of the arb path)")
    _check_range("tasks", tasks)
    _check_range("point", U0)
    u = np.ascontiguousarray(U0[:, :, 0])
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            res = _residuals(tasks, u)
            G_lo, G_hi = _loss_bounds(res)
            g_lo, g_up, g_float = _grad_norm_upper(res)
            m_up = _m_upper(u)
            S, e_norm = _schur_float(res)
    except OverflowError:  # an intermediate float sum is infinite (inputs near 2^390)
        raise _NotApplicable("overflow: an intermediate sum exceeds the float range "
                             "(entries near the top of [2^-400, 2^400])") from None
    n = S.shape[0]
    lam_bound = None
    if shift is not None:
        mu = float(shift)
        lam_bound = _cholesky_lower_bound(S, mu)
    else:
        if lam_estimate is None:
            lam_estimate = float(np.linalg.eigvalsh(S)[0]) if n <= 2000 else None
        if lam_estimate is None:
            raise ValueError("lam_estimate is needed above n = 2000")
        fro = float(np.sqrt(np.einsum("ij,ij->", S, S)))
        delta = max(_SHIFT_REL * abs(lam_estimate), _SHIFT_ABS * n * float(_U) * fro)
        mu = lam_estimate - delta
        for attempt in range(_SHIFT_RETRIES + 1):
            lam_bound = _cholesky_lower_bound(S, mu)
            if lam_bound is not None or attempt == _SHIFT_RETRIES:
                break
            # the factorisation overwrote S: rebuild it (cheaper in memory than a copy
            # of n^2 numbers kept for a retry that is rarely needed; the old one is
            # dropped first, so that two never coexist)
            del S
            S = _schur_float(res)[0]
            delta *= 16.0
            mu = lam_estimate - delta
    del S, res
    if lam_bound is None:
        lam_rig = -math.inf
        claim = -math.inf
    else:
        lam_exact_lower = lam_bound - e_norm
        lam_rig = _down(lam_exact_lower)
        claim = _down(lam_exact_lower - abs(lam_exact_lower) * Fraction(_CLAIM_SLACK)) if lam_rig > 0 else lam_rig
    enclosures = {"G(U0)": (G_lo, G_hi), "grad_norm": (g_lo, g_up)}
    bounds = {"lambda_min_quotient_lower": claim, "m_upper": m_up, "grad_norm_upper": g_up}
    diag = {"lambda_min_quotient_rigorous": lam_rig, "schur_error_norm_upper": _up(e_norm),
            "grad_norm_float": g_float, "lambda_float_estimate": lam_estimate}
    return enclosures, bounds, {"penalty": 0.0, "shift": float(mu)}, diag


def _witness_upper_fp(tasks, W) -> tuple[float, float]:
    W = np.asarray(W, dtype=np.float64)
    _check_range("witness", W)
    return _loss_bounds(_residuals(tasks, W[:, :, 0]))


def _lambda_estimate(problem: LoraMLProblem, U: np.ndarray, rng) -> float:
    from .._curvature import reduced_spectrum

    if problem.dim_U <= 2000:
        return float(np.linalg.eigvalsh(problem.schur_complement(U))[0])
    return float(reduced_spectrum(problem, U, dense_max_dim=0, count=1, rng=rng).lambda_min_quotient)


@accepts_seed()
def fp_taylor_certificate(problem: LoraMLProblem, U0, *, witness=None, rng: np.random.Generator | None = None,
                          polish: bool = True, max_dim: int = FP_TAYLOR_MAX_DIM, precision: int | None = None):
    r"""Taylor certificate (C1)-(C2) of THEORY.md section 8 with a priori float error
    bounds and Rump's Cholesky criterion (module docstring); ``k = 1``.

    ``polish`` runs the Newton polish of :func:`landscape.newton_polish` (MINRES on
    Hessian-vector products) first.  ``witness`` bounds :math:`\min G` from above; when
    omitted a few L-BFGS runs look for one.  Returns a :class:`landscape.Certificate`
    of kind ``"taylor_fp"``.
    """
    from .._search import newton_polish

    t0 = time.perf_counter()
    if not isinstance(problem, LoraMLProblem):
        raise TypeError("problem must be a LoraMLProblem")
    precision = ARB_PRECISION if precision is None else int(precision)
    U_in = problem.check_factors(U0, "U0")
    n = problem.dim_U
    if problem.k != 1:
        raise CertificateNotApplicable("the floating-point Taylor certificate handles k = 1 only "
                                       "(k >= 2 needs the O(k) penalty of the arb path)")
    if n > max_dim:
        raise CertificateTooLarge(
            f"floating-point Taylor certificate refused: T*d*k = {n} exceeds max_dim = {max_dim} "
            f"(dense n x n Schur complement, {8 * n * n / 2**30:.1f} GiB, n^3/3 Cholesky)",
            kind="taylor", estimate=n, budget=max_dim)
    rng = np.random.default_rng(0) if rng is None else rng
    steps = 0
    U = U_in.copy()
    if polish:
        U, steps = newton_polish(problem, U, mode="dense" if n <= 300 else "hvp")
    lam_est = _lambda_estimate(problem, U, rng)
    try:
        enclosures, bounds, params, diag = fp_taylor_bounds(problem.tasks, U, lam_estimate=lam_est)
    except _NotApplicable as exc:
        raise CertificateNotApplicable(str(exc)) from None
    r = _taylor_radius(bounds)
    ball_lower = enclosures["G(U0)"][0] - bounds["grad_norm_upper"] * r
    W = None
    if witness is not None:
        W = problem.check_factors(witness, "witness")
    elif r > 0.0 and ball_lower > 0.0:
        from .._search import search

        runs = search(problem, rng=rng, n_starts=_WITNESS_STARTS, methods="lbfgs", spectrum=False)
        W = min(runs, key=lambda res: res.loss).point
    W_pair = None
    if W is not None:
        try:
            W_pair = _witness_upper_fp(problem.tasks, W)
        except _NotApplicable as exc:
            raise CertificateNotApplicable(str(exc)) from None
        enclosures["G(witness)"] = W_pair
    margins, verdict, reason = _taylor_decide(enclosures, bounds, r, W_pair, precision)
    diagnostics = {"polish_steps": int(steps), "displacement": float(np.linalg.norm(U - U_in)),
                   "seconds": time.perf_counter() - t0, "method": "float64 with a priori error bounds, "
                   "Rump (2006) Cholesky criterion", **diag}
    return Certificate(kind="taylor_fp", tasks=problem.tasks, rank=1, point=U, radius=r, verdict=verdict,
                       reason=reason, enclosures=enclosures, bounds=bounds, margins=margins,
                       parameters={**params, "precision": precision}, witness=W, diagnostics=diagnostics)


def verify_fp_taylor(cert) -> bool:
    """Re-verify a ``"taylor_fp"`` certificate from its stored data (the same rules as
    the ``arb`` Taylor certificate: recomputed bounds must imply the stored ones, and
    the stored claims must give the stored margins and verdict)."""
    if cert.rank != 1 or float(cert.parameters.get("penalty", 0.0)) != 0.0:
        return False
    prec = int(cert.parameters["precision"])
    try:
        enclosures, bounds, _, diag = fp_taylor_bounds(cert.tasks, cert.point, shift=float(cert.parameters["shift"]))
        bounds["lambda_min_quotient_lower"] = diag["lambda_min_quotient_rigorous"]
        W_pair = None
        if cert.witness is not None:
            W_pair = _witness_upper_fp(cert.tasks, cert.witness)
            enclosures["G(witness)"] = W_pair
    except _NotApplicable:
        return False
    if not _claims_hold(cert, enclosures, bounds, None):
        return False
    margins, verdict, _ = _taylor_decide(
        dict(cert.enclosures), dict(cert.bounds), cert.radius,
        cert.enclosures.get("G(witness)") if cert.witness is not None else None, prec)
    for name, stored in cert.margins.items():
        if name not in margins or not stored <= margins[name]:
            return False
    return verdict == cert.verdict


def _verify(cert, problem, precision, max_points) -> bool:
    """The registered verifier of kind ``"taylor_fp"`` (:func:`landscape.verify_certificate`)."""
    return verify_fp_taylor(cert)


register_verifier("taylor_fp", _verify)


# --------------------------------------------------------------------------------------
# A spurious minimum embedded in a larger dimension
# --------------------------------------------------------------------------------------
@accepts_seed()
def embed_spurious_instance(tasks, U0, U_star, d: int, rng: np.random.Generator, *, common_scale: float = 1.0):
    r"""Embed a ``k = 1`` instance with a strict spurious local minimum ``U0`` into
    dimension ``d``.

    With :math:`d_0` the small dimension, :math:`p=d-d_0`, a symmetric :math:`N\in
    \mathbb R^{p\times p}` shared by all tasks and a Haar-random :math:`Q\in O(d)`:

    .. math::
        \tilde A^\star_t=Q\begin{pmatrix}A^\star_t&0\\0&N\end{pmatrix}Q^\top,\qquad
        \tilde u_t=Q\begin{pmatrix}u_t\\0\end{pmatrix}.

    *Claim.*  If :math:`\mathbf U_0` is a critical point of the small :math:`G` with
    :math:`S\succ0`, and the :math:`u_{0,t}` are non-zero and not all parallel, then
    :math:`\tilde{\mathbf U}_0` is a critical point of the embedded :math:`\tilde G`
    with :math:`\tilde S\succ0` (a strict local minimum up to the signs
    :math:`u_t\mapsto\pm u_t`, the only symmetry for :math:`k=1`), with the same loss.

    *Proof.*  :math:`\tilde G(Q\mathbf V)` for the rotated tasks equals :math:`G'(\mathbf V)`
    for the unrotated block tasks (Frobenius norms are :math:`O(d)`-invariant), so take
    :math:`Q=I`.  :math:`N` is common to all tasks, so it cancels in the task deviations
    and :math:`R'_t=\mathrm{diag}(R_t,0)`; hence :math:`\nabla_{u_t}G'=(2R_tu_t,0)=0`
    and :math:`G'=G`.  For a direction :math:`\beta_t=(v_t,w_t)` the quadratic form of
    THEORY.md section 5, :math:`\min_\alpha\sum_t\|\alpha+\beta_t\tilde u_t^\top+\tilde u_t
    \beta_t^\top\|^2+2\sum_t\langle R'_t,\beta_t\beta_t^\top\rangle`, splits: the
    top-left block of :math:`\beta_t\tilde u_t^\top+\tilde u_t\beta_t^\top` depends on
    :math:`v` only, the off-diagonal blocks on :math:`w` only (they are
    :math:`w_tu_t^\top` and its transpose), the bottom-right block is zero, :math:`\alpha`
    splits the same way, and :math:`\langle R'_t,\beta_t\beta_t^\top\rangle=v_t^\top R_tv_t`.
    So :math:`\tilde S=S\oplus S_w` with
    :math:`w^\top S_ww=2\sum_t\|w_tu_t^\top-\tfrac1T\sum_sw_su_s^\top\|_F^2`.  Coordinate
    :math:`i` of the :math:`w_t` contributes :math:`2a^\top Ka` with :math:`a_t=w_t[i]`,
    :math:`K=\mathrm{diag}(\|u_t\|^2)-\tfrac1T[u_s^\top u_t]`; :math:`a^\top Ka=0` means
    :math:`a_tu_t=c` for all :math:`t`: if some :math:`a_t=0` then :math:`c=0` and
    :math:`a=0`; otherwise every :math:`u_t` is parallel to :math:`c`, excluded.  So
    :math:`S_w=2K\otimes I_p\succ0`, :math:`\lambda_{\min}(\tilde S)=\min(\lambda_{\min}(S),
    2\lambda_{\min}(K))>0`.  The embedded tasks are of model M1 with
    :math:`\tilde u^\star_t=Q(u^\star_t,0)`, so :math:`\min\tilde G=0<\tilde G(\tilde{\mathbf U}_0)`:
    the minimum is spurious.  (In floating point the rotated point is a critical point
    only up to rounding; the certificate is about the polished point.)

    Returns ``(tasks (T, d, d), U0 (T, d, 1), U_star (T, d, 1), lambda_K)`` with
    ``lambda_K`` the float value of :math:`2\lambda_{\min}(K)`.
    """
    from scipy.stats import ortho_group

    tasks = np.asarray(tasks, dtype=float)
    U0 = np.asarray(U0, dtype=float)
    U_star = np.asarray(U_star, dtype=float)
    T, d0, _ = tasks.shape
    if d <= d0:
        raise ValueError(f"d = {d} must exceed the small dimension {d0}")
    p = d - d0
    Nm = rng.standard_normal((p, p)) * common_scale / np.sqrt(p)
    Nm = 0.5 * (Nm + Nm.T)
    Q = ortho_group.rvs(d, random_state=rng)
    big = np.zeros((T, d, d))
    big[:, :d0, :d0] = tasks
    big[:, d0:, d0:] = Nm
    big = Q[None] @ big @ Q.T[None]
    big = 0.5 * (big + np.swapaxes(big, 1, 2))  # symmetric to the last bit, as the small tasks

    def lift(V):
        out = np.zeros((T, d, 1))
        out[:, :d0] = V
        return Q[None] @ out

    u = U0[:, :, 0]
    K = np.diag(np.einsum("ti,ti->t", u, u)) - (u @ u.T) / T
    return big, lift(U0), lift(U_star), float(2.0 * np.linalg.eigvalsh(K)[0])
