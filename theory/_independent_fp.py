r"""An independent check of large floating-point Taylor certificates (kind ``"taylor_fp"``).

The ``taylor_fp`` certificate (``landscape`` package, THEORY.md section 8) proves the
curvature bound with an *a priori* rounding-error analysis of the float Schur complement
and Rump's trace criterion for a float Cholesky factorisation; ``Certificate.verify``
re-runs that same code.  This module decides the same claims by another route and shares
no code with it: it does not import :mod:`landscape`, it reads only the stored data
(tasks, point, witness, radius, bounds, enclosures, margins, verdict), and its curvature
argument is *a posteriori* (a residual of a factorisation), not Rump's criterion.

Exact part (Python integers)
----------------------------
Every float64 is an integer times a power of two.  With a common exponent :math:`E` the
point and witness become integer arrays :math:`2^Eu_t`, the tasks :math:`2^{2E}A_t`, and
:math:`N=T\,2^{2E}S` is an exact integer matrix, where for :math:`k=1`

.. math::
    S_{st}=\delta_{st}\big(2\|u_t\|^2I+2u_tu_t^\top+R_t+R_t^\top\big)
    -\tfrac2T\big((u_t^\top u_s)I+u_tu_s^\top\big),\qquad
    R_t=\bar D-D_t,\ D_t=A_t-u_tu_t^\top

(THEORY.md section 5, Schur complement).  :math:`G=\tfrac12\sum\|R_t\|_F^2`, the gradient
:math:`(R_t+R_t^\top)u_t` and :math:`\max_t\|u_t\|^2` are exact rationals from the same
integers.

Curvature (floats, a posteriori)
--------------------------------
:math:`F=\mathrm{fl}(N)2^{-2E}` (one correctly rounded conversion per entry, so
:math:`|F-TS|\le u/(1-u)\,|F|` entrywise).  For a float shift :math:`\mu` let
:math:`B` be :math:`F` with diagonal :math:`\mathrm{fl}(f_{ii}-\mu)` and :math:`L` *any*
float lower-triangular matrix (numpy's Cholesky factor of :math:`B`).  Exactly

.. math::
    F-\mu I = LL^\top + \Delta,\qquad
    \Delta=\mathrm{diag}(f_{ii}-\mu-b_{ii}) + (B-C) + (C-LL^\top),\quad C=\mathrm{fl}(LL^\top),

and :math:`LL^\top\succeq0`, so :math:`\lambda_{\min}(TS)\ge\mu-\|\Delta\|_2-\|F-TS\|_2`.
The diagonal term is exact (rationals); :math:`|B-C|\le|\mathrm{fl}(B-C)|/(1-u)`;
:math:`|C-LL^\top|\le\gamma_n|L||L|^\top` for any summation order (Higham 2002, eq. 3.5),
with :math:`|L||L|^\top\le\mathrm{fl}(|L||L|^\top)/(1-\gamma_n)`; every 2-norm is bounded by
the largest absolute row sum (symmetric matrices), and every float sum of non-negative
terms is inflated by :math:`1/(1-\gamma_{n+2})`.  Products that underflow add at most
:math:`2^{-1075}` each; :math:`n^2` of them per row sum are added.  No part of this
argument is Rump's criterion, and no function is shared with the prover.

The verdict is then re-derived exactly from the (now proven) stored bounds: spurious iff
(Cq) :math:`\underline\lambda/2-2\bar mr\ge0`, (C1) :math:`-\bar g+\underline\lambda r/2-2\bar mr^2>0`
and (C2) :math:`\underline G(\mathbf U_0)-\bar gr-\overline G(\mathbf W)>0`.
"""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["FpIndependentReport", "verify_fp_independent", "exact_integer_state", "lambda_lower_a_posteriori"]

VERDICT_SPURIOUS = "certified_spurious_local_minimum"
VERDICT_LOCAL_MIN = "certified_local_minimum"
VERDICT_NONE = "not_certified"

_U = Fraction(1, 2**53)
_HALF_ETA = Fraction(1, 2**1075)


def _gam(m: int) -> Fraction:
    return m * _U / (1 - m * _U)


@dataclass(frozen=True)
class FpIndependentReport:
    checks: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    @property
    def failed(self) -> tuple:
        return tuple(k for k, v in self.checks.items() if not v)


def _array(x) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, dict) and "__ndarray__" in x:  # the base64 form of the JSON document
        if x.get("dtype") not in ("<f8", "float64"):
            raise ValueError(f"arrays must be float64, got {x.get('dtype')!r}")
        raw = base64.b64decode(x["__ndarray__"])
        return np.frombuffer(raw, dtype="<f8").reshape(x["shape"]).astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def _frexp53(a: np.ndarray):
    """``a = M * 2**(-k)`` elementwise with int64 ``M`` (|M| < 2^53) and ``k``."""
    m, e = np.frexp(np.asarray(a, dtype=np.float64))
    return (m * 2.0**53).astype(np.int64), (53 - e).astype(np.int64)


def _to_ints(a: np.ndarray, E: int) -> np.ndarray:
    """Object array of the exact integers ``a * 2**E`` (``E`` at least :func:`_den_exp`)."""
    M, k = _frexp53(a)
    sh = E - k
    sh[M == 0] = 0
    if np.any(sh < 0):
        raise ValueError("common exponent too small")
    return np.left_shift(M.astype(object), sh.astype(object))


def _den_exp(a: np.ndarray) -> int:
    """An exponent ``E`` with ``a * 2**E`` integral (not necessarily the least)."""
    M, k = _frexp53(a)
    k = k[M != 0]
    return int(max(int(k.max()), 0)) if k.size else 0


def exact_integer_state(tasks: np.ndarray, u: np.ndarray, *, schur: bool = True) -> dict:
    r"""Exact integers for ``k = 1``: ``E``, ``TR`` (= :math:`T\,2^{2E}R_t`), ``N``
    (= :math:`T\,2^{2E}S`, n x n object array), ``U`` (= :math:`2^Eu_t`)."""
    tasks = np.asarray(tasks, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    T, d = u.shape
    E = max(_den_exp(u), (_den_exp(tasks) + 1) // 2)
    U = _to_ints(u, E)
    A = _to_ints(tasks, 2 * E)
    P = np.array([np.multiply.outer(U[t], U[t]) for t in range(T)], dtype=object)
    D = A - P
    Dsum = D.sum(axis=0)
    TR = np.array([Dsum - T * D[t] for t in range(T)], dtype=object)
    if not schur:
        return {"E": E, "T": T, "d": d, "U": U, "TR": TR, "N": None}
    gram = U @ U.T
    n = T * d
    N = np.empty((n, n), dtype=object)
    eye = np.eye(d, dtype=int).astype(object)
    for s in range(T):
        for t in range(T):
            blk = -2 * (gram[t, s] * eye + np.multiply.outer(U[t], U[s]))
            if s == t:
                blk = blk + T * (2 * gram[t, t] * eye + 2 * P[t]) + TR[t] + TR[t].T
            N[s * d:(s + 1) * d, t * d:(t + 1) * d] = blk
    return {"E": E, "T": T, "d": d, "U": U, "TR": TR, "N": N}


def exact_loss(tasks, u) -> Fraction:
    r""":math:`G=\tfrac12\sum_t\|R_t\|_F^2` exactly, for ``k = 1`` (``tasks`` may also be
    a state of :func:`exact_integer_state`, then ``u`` is ignored)."""
    st = exact_integer_state(tasks, u, schur=False) if not isinstance(tasks, dict) else tasks
    TR, T, E = st["TR"], st["T"], st["E"]
    flat = TR.reshape(-1)
    sq = int(np.dot(flat, flat))
    return Fraction(sq, 2 * T * T * 2 ** (4 * E))


def _row_sum_bound(M: np.ndarray, terms: int) -> Fraction:
    """Upper bound of the largest exact row sum of the non-negative float matrix ``M``."""
    s = float(np.max(M.sum(axis=1))) if M.size else 0.0
    if not math.isfinite(s):
        raise OverflowError("row sums overflow")
    return Fraction(s) / (1 - _gam(terms + 2))


def lambda_lower_a_posteriori(N: np.ndarray, E: int, mu: float) -> Fraction | None:
    r"""Rigorous lower bound of :math:`\lambda_{\min}(N\,2^{-2E})` from numpy's Cholesky
    factor of the shifted float copy (module docstring), or None if it fails."""
    n = N.shape[0]
    F = np.ldexp(np.array(N, dtype=np.float64), -2 * E)  # int -> float correctly rounded
    if not np.all(np.isfinite(F)):
        return None
    conv = Fraction(1, 2**53 - 1) * _row_sum_bound(np.abs(F), n)  # ||F - N 2^-2E||_2
    B = F.copy()
    B[np.diag_indices(n)] = np.diag(F) - mu
    try:
        L = np.linalg.cholesky(B)
    except np.linalg.LinAlgError:
        return None
    C = L @ L.T
    K = np.abs(L) @ np.abs(L).T
    Dh = np.abs(B - C)
    g = _gam(n)
    theta = float(g / (1 - g) / (1 - g) / (1 - _U)) * (1 + 2.0**-40)  # >= gamma_n/(1-gamma_n) after rounding
    Z = Dh * float(1 / (1 - _U)) * (1 + 2.0**-40) + theta * K
    res = _row_sum_bound(Z, n) + n * n * 2 * _HALF_ETA * 4
    dg = max(abs(Fraction(float(f)) - Fraction(mu) - Fraction(float(b))) for f, b in zip(np.diag(F), np.diag(B)))
    conv += n * 2 * _HALF_ETA  # an entry of F that is subnormal may carry eta/2 more
    return Fraction(mu) - res - dg - conv


def verify_fp_independent(cert: Any) -> FpIndependentReport:
    """Decide the claims of a ``taylor_fp`` certificate without the prover's code."""
    data = cert.to_dict() if hasattr(cert, "to_dict") else dict(cert)
    if data.get("kind") != "taylor_fp" or int(data.get("rank", 0)) != 1:
        return FpIndependentReport({"kind is taylor_fp with rank 1": False},
                                   reason="not a rank-1 taylor_fp certificate")
    try:
        tasks, point = _array(data.get("tasks")), _array(data.get("point"))
    except (TypeError, ValueError, KeyError) as exc:  # ragged lists, strings, a base64 array of another size
        return FpIndependentReport({"point and tasks are float arrays": False}, reason=f"unreadable arrays: {exc}")
    if (point is None or tasks is None or point.ndim != 3 or point.shape[2] != 1 or min(point.shape) < 1
            or tasks.shape != (point.shape[0], point.shape[1], point.shape[1])):
        return FpIndependentReport({"point is T x d x 1 and tasks T x d x d": False},
                                   reason=f"shapes {None if point is None else point.shape} (point) and "
                                          f"{None if tasks is None else tasks.shape} (tasks) do not fit")
    if not (np.all(np.isfinite(point)) and np.all(np.isfinite(tasks))):
        return FpIndependentReport({"finite entries": False}, reason="the point or the tasks hold non-finite entries")
    u = point[:, :, 0]
    T = u.shape[0]
    bounds, enc, margins = data["bounds"], data["enclosures"], data["margins"]
    checks: dict[str, bool] = {}
    values: dict[str, float] = {}
    st = exact_integer_state(tasks, u)
    E, TR, U = st["E"], st["TR"], st["U"]
    G0 = exact_loss(st, None)
    values["G(U0)"] = float(G0)
    lo, hi = enc["G(U0)"]
    checks["G(U0) enclosure contains the exact value"] = ((lo is None or Fraction(lo) <= G0)
                                                          and (hi is None or G0 <= Fraction(hi)))
    # gradient (R_t + R_t^T) u_t: integers at scale T 2^{3E}
    gsq = 0
    for t in range(T):
        gt = (TR[t] + TR[t].T) @ U[t]
        gsq += int(np.dot(gt, gt))
    g_exact_sq = Fraction(gsq, T * T * 2 ** (6 * E))
    values["grad_norm"] = math.sqrt(float(g_exact_sq))
    g_up = bounds.get("grad_norm_upper")
    checks["grad_norm_upper >= ||grad G||"] = g_up is not None and g_up >= 0 and g_exact_sq <= Fraction(g_up) ** 2
    m_up = bounds.get("m_upper")
    msq = max(Fraction(int(sum(int(x) * int(x) for x in U[t].tolist())), 2 ** (2 * E)) for t in range(T))
    checks["m_upper >= max_t ||u_t||"] = m_up is not None and m_up >= 0 and msq <= Fraction(m_up) ** 2
    lam = bounds.get("lambda_min_quotient_lower")
    if lam is None or not math.isfinite(lam) or lam <= 0:
        checks["lambda claim is a lower bound"] = True  # a non-positive claim is never used by a verdict
        lam_f = None
    else:
        lam_f = Fraction(lam)
        target = T * lam
        best = None
        # shifts just above the claim (no eigenvalue estimate needed): the claim holds
        # with room iff a factorisation at one of them succeeds with a small residual
        for rel in (1e-7, 1e-9, 1e-11):
            mu = target * (1 + rel)
            b = lambda_lower_a_posteriori(st["N"], E, mu)
            if b is not None and b >= T * lam_f:
                best = b
                break
        values["lambda_lower_independent"] = float(best / T) if best is not None else -math.inf
        checks["lambda claim is a lower bound"] = best is not None
    W_hi = None
    if data.get("witness") is not None:
        try:
            witness = _array(data["witness"])
        except (TypeError, ValueError, KeyError) as exc:
            return FpIndependentReport({"witness is a float array": False}, reason=f"unreadable witness: {exc}")
        if witness.shape != point.shape or not np.all(np.isfinite(witness)):
            return FpIndependentReport({"witness is a finite array of the point's shape": False},
                                       reason=f"witness of shape {witness.shape}, point {point.shape}")
        w = witness[:, :, 0]
        GW = exact_loss(tasks, w)
        values["G(witness)"] = float(GW)
        if "G(witness)" in enc:
            wl, wh = enc["G(witness)"]
            checks["G(witness) enclosure contains the exact value"] = (
                (wl is None or Fraction(wl) <= GW) and wh is not None and GW <= Fraction(wh))
            W_hi = Fraction(wh) if wh is not None else None
    r = Fraction(data["radius"])
    verdict = VERDICT_NONE
    if lam_f is not None and r > 0 and g_up is not None and m_up is not None:
        L, M, g = lam_f, Fraction(m_up), Fraction(g_up)
        exact = {"Cq": L / 2 - 2 * M * r, "C1": -g + L * r / 2 - 2 * M * r * r}
        if W_hi is not None:
            exact["C2"] = Fraction(enc["G(U0)"][0]) - g * r - W_hi
        for name, val in exact.items():
            values[f"margin {name}"] = float(val)
            stored = margins.get(name)
            checks[f"stored margin {name} <= exact"] = stored is not None and Fraction(stored) <= val
        if exact["Cq"] >= 0 and exact["C1"] > 0:
            verdict = VERDICT_SPURIOUS if exact.get("C2", Fraction(-1)) > 0 else VERDICT_LOCAL_MIN
    checks["stored verdict follows from the exact margins"] = data["verdict"] == verdict
    failed = [k for k, v in checks.items() if not v]
    return FpIndependentReport(checks, values, "all claims hold" if not failed else "failed: " + "; ".join(failed))
