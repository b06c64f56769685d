r"""An independent, exact re-verification of a Taylor certificate (THEORY.md section 8).

``landscape.verify_certificate`` re-runs the certificate's own code (python-flint balls,
the analytic Hessian formula, the Cholesky residual).  A bug shared by the prover and
its re-verification would pass both.  This module shares *no code* with that path: it
does not import :mod:`landscape`; it reads only the stored data of the certificate (the
plain dictionary of ``Certificate.to_dict()``: task matrices, rank, point, witness,
radius, bounds, margins, penalty) and decides every claim in exact rational arithmetic
(:class:`fractions.Fraction`; a float64 is an exact dyadic rational).

What is recomputed, and how
---------------------------
* :math:`G(\mathbf U)=\tfrac12\sum_t\|M_t-\bar M\|_F^2`, :math:`M_t=A^\star_t-U_tU_t^\top`
  (THEORY.md section 5, reduced loss), exactly, from its definition.
* The gradient and the Hessian of :math:`G` **without any derivative formula**: :math:`G`
  is a polynomial of degree 4, so along a coordinate (pair of coordinates) it is a
  univariate (bivariate) polynomial of degree <= 4, and central differences with steps
  1 and 2 combined by one Richardson step give the first and second (mixed) coefficients
  exactly: :math:`g_i=\tfrac13(4D_1-D_2)` with :math:`D_h=\frac{G(+h)-G(-h)}{2h}=g_i+c_3h^2`,
  and likewise for :math:`H_{ii}` and :math:`H_{ij}` (odd-odd terms :math:`st,s^3t,st^3`).
  A wrong Hessian formula in the certificate cannot be reproduced here.
* The orbit generators :math:`Y_{t,ij}=U_t(E_{ij}-E_{ji})` (THEORY.md section 5,
  Symmetry) in this module's own coordinate order; :math:`\lambda_{\min}(H+cYY^\top)`
  does not depend on the order.
* Each claimed one-sided bound by an exact inequality:
  :math:`\|\nabla G\|^2\le\bar g^2`; :math:`\bar m^2I-U_t^\top U_t\succeq0` for every
  :math:`t`; :math:`H+cYY^\top-\underline\lambda I\succ0` by an exact
  :math:`LDL^\top` (all pivots positive), i.e. :math:`\lambda_{\min}>\underline\lambda`;
  every stored enclosure :math:`[lo,hi]` contains the exact value.
* The margins of (Cq), (C1), (C2) from the stored bounds, exactly; a stored margin must
  not exceed the exact one (it is claimed to be a lower bound), and the verdict must
  follow from the exact signs: spurious iff (Cq) >= 0, (C1) > 0, (C2) > 0 with the
  certified bounds.

Only ``kind == "taylor"`` certificates are handled.  The cost is about
:math:`4n^2` exact evaluations of :math:`G` (:math:`n=Tdk`), which is immediate for the
F.2 instance (:math:`n=9`) and a few seconds at :math:`n\approx30`; :data:`MAX_DIM`
refuses more.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping

__all__ = ["IndependentReport", "verify_taylor_exact", "exact_reduced_loss", "exact_derivatives",
           "is_positive_definite", "MAX_DIM"]

#: Largest reduced dimension T*d*k accepted: the exact Hessian needs ~4 n^2 rational
#: evaluations of G, each O(T d^2 k) Fraction operations (n = 36 takes ~10 s).
MAX_DIM = 40

VERDICT_SPURIOUS = "certified_spurious_local_minimum"
VERDICT_LOCAL_MIN = "certified_local_minimum"
VERDICT_NONE = "not_certified"


def _fr(x) -> Fraction:
    """Exact rational value of a float (or None -> error)."""
    if x is None:
        raise ValueError("missing (infinite) value")
    return Fraction(float(x))


def _tensor(data, shape_len: int):
    """Nested lists of floats -> nested lists of Fractions (exact)."""
    if shape_len == 0:
        return _fr(data)
    return [_tensor(v, shape_len - 1) for v in data]


def _box_shape(data, depth: int):
    """The shape of ``data`` as nested lists ``depth`` deep, when every level is a list (or
    tuple) and all its entries have one length (a rectangular array); None otherwise."""
    if depth == 0:
        return () if not isinstance(data, (list, tuple, dict)) else None
    if not isinstance(data, (list, tuple)):
        return None
    inner = [_box_shape(v, depth - 1) for v in data]
    if any(s is None for s in inner) or len(set(inner)) > 1:
        return None
    return (len(data),) + (inner[0] if inner else (0,) * (depth - 1))


def exact_reduced_loss(tasks, U) -> Fraction:
    r""":math:`G(\mathbf U)=\tfrac12\sum_t\|M_t-\bar M\|_F^2`, :math:`M_t=A^\star_t-U_tU_t^\top`, exactly.

    ``tasks``: T x d x d and ``U``: T x d x k nested lists of Fractions.
    """
    T, d, k = len(U), len(U[0]), len(U[0][0])
    M = [[[tasks[t][i][j] - sum((U[t][i][l] * U[t][j][l] for l in range(k)), Fraction(0))
           for j in range(d)] for i in range(d)] for t in range(T)]
    total = Fraction(0)
    for i in range(d):
        for j in range(d):
            mean = sum((M[t][i][j] for t in range(T)), Fraction(0)) / T
            total += sum(((M[t][i][j] - mean) ** 2 for t in range(T)), Fraction(0))
    return total / 2


def _flat(U):
    return [U[t][i][l] for t in range(len(U)) for i in range(len(U[0])) for l in range(len(U[0][0]))]


def _unflat(x, T, d, k):
    return [[[x[t * d * k + i * k + l] for l in range(k)] for i in range(d)] for t in range(T)]


def exact_derivatives(tasks, U):
    r"""Exact gradient and Hessian of :math:`G` at ``U`` (coordinate order ``(t, i, l)``).

    By polynomial interpolation only (module notes): no derivative formula is used.
    """
    T, d, k = len(U), len(U[0]), len(U[0][0])
    x0 = _flat(U)
    n = len(x0)

    def G(shifts: Mapping[int, Fraction]) -> Fraction:
        x = list(x0)
        for i, s in shifts.items():
            x[i] += s
        return exact_reduced_loss(tasks, _unflat(x, T, d, k))

    G0 = G({})
    one, two = Fraction(1), Fraction(2)
    grad, H = [], [[Fraction(0)] * n for _ in range(n)]
    for i in range(n):
        gp1, gm1, gp2, gm2 = G({i: one}), G({i: -one}), G({i: two}), G({i: -two})
        D1, D2 = (gp1 - gm1) / 2, (gp2 - gm2) / 4
        grad.append((4 * D1 - D2) / 3)
        E1, E2 = gp1 - 2 * G0 + gm1, (gp2 - 2 * G0 + gm2) / 4
        H[i][i] = (4 * E1 - E2) / 3
    for i in range(n):
        for j in range(i + 1, n):
            F = []
            for h in (one, two):
                F.append((G({i: h, j: h}) - G({i: h, j: -h}) - G({i: -h, j: h}) + G({i: -h, j: -h})) / (4 * h * h))
            H[i][j] = H[j][i] = (4 * F[0] - F[1]) / 3
    return grad, H


def penalised_hessian(H, U, c):
    r""":math:`H+c\sum_y yy^\top` over the :math:`O(k)` orbit generators :math:`y` of ``U``
    (:func:`_generators`; none for :math:`k=1`), exactly: the matrix whose smallest eigenvalue
    bounds the curvature across the orbit (a new list; ``H`` is not changed)."""
    Hp = [row[:] for row in H]
    if c:
        for y in _generators(U):
            nz = [(i, v) for i, v in enumerate(y) if v]
            for i, vi in nz:
                for j, vj in nz:
                    Hp[i][j] += c * vi * vj
    return Hp


def is_positive_definite(M) -> bool:
    """Exact test by symmetric Gaussian elimination: every pivot must be > 0."""
    n = len(M)
    A = [list(row) for row in M]
    for p in range(n):
        piv = A[p][p]
        if not piv > 0:
            return False
        for i in range(p + 1, n):
            f = A[i][p] / piv
            if f:
                row_p, row_i = A[p], A[i]
                for j in range(p + 1, n):
                    row_i[j] -= f * row_p[j]
    return True


def _is_psd_small(M) -> bool:
    """Exact PSD test for the k x k Gram-type matrices (all principal minors >= 0)."""
    from itertools import combinations

    n = len(M)

    def det(sub):
        A = [[M[i][j] for j in sub] for i in sub]
        m = len(A)
        sign, out = 1, Fraction(1)
        for p in range(m):
            piv_row = next((r for r in range(p, m) if A[r][p] != 0), None)
            if piv_row is None:
                return Fraction(0)
            if piv_row != p:
                A[p], A[piv_row] = A[piv_row], A[p]
                sign = -sign
            out *= A[p][p]
            for r in range(p + 1, m):
                f = A[r][p] / A[p][p]
                for c in range(p, m):
                    A[r][c] -= f * A[p][c]
        return sign * out

    return all(det(sub) >= 0 for size in range(1, n + 1) for sub in combinations(range(n), size))


def _generators(U):
    """Orbit generators Y_{t,ij} = U_t (E_ij - E_ji) as flat vectors in the (t, i, l) order."""
    T, d, k = len(U), len(U[0]), len(U[0][0])
    n = T * d * k
    out = []
    for t in range(T):
        for i in range(k):
            for j in range(i + 1, k):
                y = [Fraction(0)] * n
                for q in range(d):
                    y[t * d * k + q * k + j] = U[t][q][i]   # column j of U_t E_ij is column i of U_t
                    y[t * d * k + q * k + i] = -U[t][q][j]  # column i of -U_t E_ji is -column j
                out.append(y)
    return out


@dataclass(frozen=True)
class IndependentReport:
    """Outcome of :func:`verify_taylor_exact`.

    ``checks`` maps each claim to True/False; ``values`` holds the exact quantities as
    floats (rounded, for display); ``ok`` is the conjunction of ``checks``.
    """

    checks: Mapping[str, bool]
    values: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(name for name, v in self.checks.items() if not v)


def verify_taylor_exact(cert: Any, *, max_dim: int = MAX_DIM) -> IndependentReport:
    r"""Decide every claim of a stored Taylor certificate in exact rational arithmetic.

    Parameters
    ----------
    cert : Certificate or mapping
        Anything with a ``to_dict()`` method, or the dictionary itself (the JSON form of
        ``landscape.Certificate``); only its data are used.

    Returns
    -------
    IndependentReport
        ``ok`` iff every stored enclosure contains the exact value, every stored bound
        holds exactly, every stored margin is at most the exact margin computed from the
        stored bounds, and the stored verdict is the one those exact margins give.
    """
    data = cert.to_dict() if hasattr(cert, "to_dict") else dict(cert)
    if data.get("kind") != "taylor":
        return IndependentReport({"kind is taylor": False}, reason=f"kind {data.get('kind')!r} not handled")
    shape = _box_shape(data.get("point"), 3)
    if shape is None or min(shape) < 1:
        return IndependentReport({"point is a T x d x k array": False},
                                 reason="the point is not a non-empty rectangular T x d x k array")
    T, d, k = shape
    n = T * d * k
    if n > max_dim:
        return IndependentReport({"size within MAX_DIM": False}, reason=f"T*d*k = {n} > {max_dim}")
    if int(data["rank"]) != k:
        return IndependentReport({"rank matches the point": False}, reason="rank and point disagree")
    if _box_shape(data.get("tasks"), 3) != (T, d, d):
        return IndependentReport({"tasks are T x d x d": False}, reason=f"the tasks are not {T} x {d} x {d}")
    U, tasks = _tensor(data["point"], 3), _tensor(data["tasks"], 3)
    enc, bounds, margins = data["enclosures"], data["bounds"], data["margins"]
    params = data["parameters"]
    checks: dict[str, bool] = {}
    values: dict[str, float] = {}

    def enclosed(name: str, exact: Fraction) -> bool:
        lo, hi = enc[name]
        return (lo is None or _fr(lo) <= exact) and (hi is None or exact <= _fr(hi))

    # --- G(U0) and the gradient
    G0 = exact_reduced_loss(tasks, U)
    grad, H = exact_derivatives(tasks, U)
    g_sq = sum((gi * gi for gi in grad), Fraction(0))
    values["G(U0)"], values["grad_norm"] = float(G0), float(g_sq) ** 0.5
    checks["G(U0) enclosure contains the exact value"] = enclosed("G(U0)", G0)
    lo, hi = enc["grad_norm"]
    checks["grad_norm enclosure contains the exact value"] = (
        (lo is None or _fr(lo) <= 0 or _fr(lo) ** 2 <= g_sq) and (hi is None or g_sq <= _fr(hi) ** 2)
    )
    g_up = bounds.get("grad_norm_upper")
    checks["grad_norm_upper >= ||grad G||"] = g_up is not None and _fr(g_up) >= 0 and g_sq <= _fr(g_up) ** 2
    # --- m >= max_t ||U_t||_2
    m_up = bounds.get("m_upper")
    m_ok = m_up is not None and _fr(m_up) >= 0
    if m_ok:
        m2 = _fr(m_up) ** 2
        for t in range(T):
            gram = [[m2 * (i == j) - sum((U[t][q][i] * U[t][q][j] for q in range(d)), Fraction(0))
                     for j in range(k)] for i in range(k)]
            m_ok = m_ok and _is_psd_small(gram)
    checks["m_upper >= max_t ||U_t||_2"] = bool(m_ok)
    # --- lambda_min(H + c Y Y^T) > lambda claim
    lam = bounds.get("lambda_min_quotient_lower")
    c = _fr(params.get("penalty", 0.0))
    Hp = penalised_hessian(H, U, c)
    checks["penalty c >= 0"] = c >= 0
    if lam is None:
        checks["lambda_min_quotient_lower is a lower bound"] = True  # the trivial bound -inf
        lam_f = None
    else:
        lam_f = _fr(lam)
        shifted = [[Hp[i][j] - (lam_f if i == j else 0) for j in range(n)] for i in range(n)]
        checks["lambda_min_quotient_lower is a lower bound"] = is_positive_definite(shifted)
    # --- witness
    W_hi = None
    if data.get("witness") is not None:
        if _box_shape(data["witness"], 3) != (T, d, k):
            return IndependentReport({"witness is T x d x k": False}, reason=f"the witness is not {T} x {d} x {k}")
        W = _tensor(data["witness"], 3)
        GW = exact_reduced_loss(tasks, W)
        values["G(witness)"] = float(GW)
        if "G(witness)" in enc:
            checks["G(witness) enclosure contains the exact value"] = enclosed("G(witness)", GW)
            W_hi = _fr(enc["G(witness)"][1])
    # --- margins and verdict from the stored (now proven) bounds, exactly
    r = _fr(data["radius"])
    verdict = VERDICT_NONE
    if lam_f is not None and lam_f > 0 and r > 0 and g_up is not None and m_up is not None:
        L, M, g = lam_f, _fr(m_up), _fr(g_up)
        exact = {"Cq": L / 2 - 2 * M * r, "C1": -g + L * r / 2 - 2 * M * r * r}
        G_lo = _fr(enc["G(U0)"][0])
        if W_hi is not None:
            exact["C2"] = G_lo - g * r - W_hi
        for name, val in exact.items():
            values[f"margin {name}"] = float(val)
            stored = margins.get(name)
            checks[f"stored margin {name} <= exact"] = stored is not None and _fr(stored) <= val
        if exact["Cq"] >= 0 and exact["C1"] > 0:
            verdict = VERDICT_SPURIOUS if exact.get("C2", Fraction(-1)) > 0 else VERDICT_LOCAL_MIN
    checks["stored verdict follows from the exact margins"] = data["verdict"] == verdict
    failed = [name for name, ok in checks.items() if not ok]
    reason = "all claims hold exactly" if not failed else "failed: " + "; ".join(failed)
    return IndependentReport(checks, values, reason)
