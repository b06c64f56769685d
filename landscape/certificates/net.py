r"""The epsilon-net certificate (THEORY.md section 8, "Rigorous epsilon-net version").

A tighter Lipschitz bound than THEORY's, an up-front size estimate
(:func:`net_size_estimate`) and a refusal (:class:`CertificateTooLarge`) above a budget;
the reduced loss is enclosed on the net with outward-rounded vectorised interval
arithmetic (:mod:`landscape._interval`).  Registers its verifier for kind ``"epsilon_net"``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .._random import accepts_seed
from .._interval import IntervalArray, _up, arb_from_array, arb_pair, arb_precision
from .._objective import LoraMLProblem, vec_factors
from .common import _claims_hold, _float_down, _float_up
from .data import (ARB_PRECISION, VERDICT_LOCAL_MIN, VERDICT_NONE, VERDICT_SPURIOUS, Certificate,
                   CertificateNotApplicable, CertificateTooLarge, register_verifier)
from .enclosures import _arb_hessian, _arb_state, _arb_to_mid, _lambda_min_lower, _witness_upper
from .polish import WITNESS_STARTS, find_witness, polish_critical_point

#: Default budget for the number of net points of the epsilon-net certificate.  The
#: loss is enclosed at about 3e5 points per second for T*d*k = 6 (outward-rounded
#: numpy intervals, measured on the 2-core development machine), fewer as T*d^2*k
#: grows, so 2e6 points keep one call under ~10 s: an interactive budget.  It is a
#: keyword, not a limit of the method.
NET_MAX_POINTS = 2_000_000


#: Relative inflation of the stored Lipschitz claims of a net certificate.  They come
#: from Cholesky bounds whose float shift depends on LAPACK's eigenvalue estimate, so a
#: re-verification elsewhere may differ in the last bits; 1e-9 covers that and costs
#: nothing measurable in the margins.
NET_CLAIM_SLACK = 1e-9


#: Points of the net processed per vectorised chunk (memory ~ 100 * chunk * n bytes).
NET_CHUNK = 200_000


@dataclass(frozen=True)
class NetSizeEstimate:
    r"""Size of an :math:`\epsilon`-net of the sphere :math:`\partial B_r\subset\mathbb R^n`.

    Attributes
    ----------
    n : int
        Ambient dimension (the sphere has dimension ``n - 1``).
    points_per_axis : int
        Grid points per coordinate on each face of the cube (construction below).
    log10_points : float
        :math:`\log_{10}` of the construction's size :math:`2n\,p^{n-1}`.
    log10_covering : float
        :math:`\log_{10}` of :math:`(r/\epsilon)^{n-1}`, the order of the covering
        number of a sphere of dimension :math:`n-1` at scale :math:`\epsilon/r` (any
        net needs at least this many points up to a factor depending only on n).
    """

    n: int
    radius: float
    eps: float
    points_per_axis: int
    log10_points: float
    log10_covering: float

    @property
    def points(self) -> float:
        return 10.0 ** self.log10_points


def net_size_estimate(n: int, r: float, eps: float) -> NetSizeEstimate:
    r"""Up-front size of the cube-face net used by :func:`epsilon_net_certificate`.

    The sphere is the radial image of the cube surface :math:`\{\|x\|_\infty=1\}`.
    Each of the :math:`2n` faces carries a grid with :math:`p` points per free
    coordinate and spacing :math:`h=2/(p-1)`; a face point is within
    :math:`\tfrac h2\sqrt{n-1}` of the grid, and radial projection onto the unit
    sphere (the projection onto the unit ball, 1-Lipschitz) does not increase
    distances.  So :math:`p-1\ge r\sqrt{n-1}/\epsilon` gives an :math:`\epsilon`-net.
    """
    if not (r > 0 and eps > 0):
        raise ValueError("r and eps must be positive")
    n = int(n)
    if n == 1:
        return NetSizeEstimate(1, r, eps, 1, math.log10(2.0), 0.0)
    p = int(math.ceil(r * math.sqrt(n - 1) / eps)) + 1
    log10_points = math.log10(2 * n) + (n - 1) * math.log10(p)
    log10_cov = (n - 1) * math.log10(max(r / eps, 1.0))
    return NetSizeEstimate(n, float(r), float(eps), p, log10_points, log10_cov)


def _net_shape_matrix(problem: LoraMLProblem, U: np.ndarray, shape: str) -> np.ndarray | None:
    r"""``None`` for the sphere; for the ellipsoid a float approximation of
    :math:`S^{-1/2}` (any invertible matrix is valid; this one equalises the gap)."""
    if shape == "sphere":
        return None
    if shape != "ellipsoid":
        raise ValueError(f"shape must be 'sphere' or 'ellipsoid', got {shape!r}")
    lam, V = np.linalg.eigh(problem.schur_complement(U))
    if lam[0] <= 0:
        raise CertificateNotApplicable(
            f"no ellipsoid to certify on: the Hessian at the point is not positive definite "
            f"(lambda_min ~ {lam[0]:.3g})"
        )
    return (V / np.sqrt(lam)) @ V.T


def _suggest_net_parameters(problem: LoraMLProblem, U: np.ndarray, A) -> tuple[float, float]:
    r"""Float heuristics for ``(r, eps)`` (only the size estimate depends on them).

    Sphere: :math:`r=\lambda/(16m)` (the cubic term then eats at most a quarter of the
    gap :math:`\lambda r^2/2`), and :math:`\epsilon` = 0.9 x gap / (gradient bound
    :math:`\|S\|r`), i.e. THEORY's :math:`\epsilon\lesssim r/(2\kappa)`.
    Ellipsoid (:math:`A\approx S^{-1/2}`): the gap is :math:`\approx r^2/2` in every
    direction and the gradient in z is :math:`\approx\|z\|`, so :math:`\epsilon` solves
    :math:`\epsilon^2+r\epsilon=\mathrm{gap}`; :math:`r` keeps the cubic term below
    1/8 of the gap.
    """
    S = problem.schur_complement(U)
    lam = np.linalg.eigvalsh(S)
    m = max(float(np.linalg.norm(U[t], 2)) for t in range(problem.T))
    g = float(np.linalg.norm(problem.reduced_grad(U)))
    lam_min = float(lam[0])
    if lam_min <= 0:
        raise CertificateNotApplicable(
            f"no sphere to certify on: the Hessian at the point is not positive definite "
            f"(lambda_min ~ {lam_min:.3g})"
        )
    m = max(m, 1e-300)
    if A is None:
        r = lam_min / (16 * m)
        gap = 0.5 * lam_min * r * r - 2 * m * r**3 - g * r
        lip = float(np.max(np.abs(lam))) * r + g
        return r, 0.9 * max(gap, 0.0) / lip
    a = float(np.linalg.norm(A, 2))
    r = 1.0 / (32.0 * m * a**3)
    gap = 0.5 * r * r - 2 * m * (a * r) ** 3 - a * g * r
    eps = 0.5 * (-r + math.sqrt(r * r + 4 * max(gap, 0.0)))
    return r, 0.9 * eps


def _net_faces(n: int, p: int, chunk: int):
    """Yield chunks of cube-surface grid points (grid = ``linspace(-1, 1, p)`` per free axis)."""
    grid = np.linspace(-1.0, 1.0, p)
    per_face = p ** (n - 1)
    for axis in range(n):
        free = [i for i in range(n) if i != axis]
        for sign in (-1.0, 1.0):
            for start in range(0, per_face, chunk):
                rem = np.arange(start, min(start + chunk, per_face))
                coords = np.empty((rem.size, n))
                for i in reversed(free):
                    coords[:, i] = grid[rem % p]
                    rem = rem // p
                coords[:, axis] = sign
                yield coords


def _interval_reduced_loss(tasks: np.ndarray, P: IntervalArray, T: int, d: int, k: int) -> IntervalArray:
    """Enclosure of G at a batch of interval points ``P`` (flat layout, shape (N, T*d*k))."""

    def u(t, q, l):  # flat index t*d*k + l*d + q  <->  U[t, q, l]
        return P[:, t * d * k + l * d + q]

    D = {}
    for t in range(T):
        for i in range(d):
            for j in range(i, d):
                acc = None
                for l in range(k):
                    prod = u(t, i, l).square() if i == j else u(t, i, l) * u(t, j, l)
                    acc = prod if acc is None else acc + prod
                D[t, i, j] = IntervalArray(tasks[t, i, j]) - acc
                if j != i:
                    D[t, j, i] = IntervalArray(tasks[t, j, i]) - acc
    G = None
    for i in range(d):
        for j in range(d):
            total = D[0, i, j]
            for t in range(1, T):
                total = total + D[t, i, j]
            mean = total / float(T)
            for t in range(T):
                term = (D[t, i, j] - mean).square()
                G = term if G is None else G + term
    return G * 0.5


def _spectral_upper(M_arb, M_mid):
    r"""Rigorous upper bound of :math:`\|M\|_2` for a symmetric ``arb_mat`` (``arb`` point)."""
    from flint import arb

    lo, _, _ = _lambda_min_lower(M_arb, M_mid)
    neg_lo, _, _ = _lambda_min_lower(-M_arb, -M_mid)
    if not (lo.is_finite() and neg_lo.is_finite()):
        return None
    out = arb(0)
    for cand in ((-neg_lo).upper(), (-lo).upper()):  # lambda_max <= -neg_lo, -lambda_min <= -lo
        if cand > out:
            out = cand
    return out


def _net_lipschitz(st: dict, S_arb, S_mid, A: np.ndarray | None, R: float):
    r"""Upper bound of :math:`\sup_{\|z\|\le R}\|A^\top\nabla G(U_0+Az)\|` (``arb`` point).

    Returns ``(bound, details)``; see :func:`epsilon_net_certificate` for the two
    bounds (a) and (b), and their ellipsoid form.
    """
    from flint import arb

    m0 = st["m_upper"]
    RR = arb(R)
    gn = st["gnorm"].upper()
    if A is None:
        a_norm = arb(1)
        sigma = _spectral_upper(S_arb, S_mid)
    else:
        Aa = arb_from_array(A)
        AtA = Aa.transpose() * Aa
        a_sq = _spectral_upper(AtA, _arb_to_mid(AtA))
        ASA = Aa.transpose() * S_arb * Aa
        ASA_mid = _arb_to_mid(ASA)
        sigma = _spectral_upper(ASA, 0.5 * (ASA_mid + ASA_mid.T))
        if a_sq is None:
            raise CertificateNotApplicable("could not bound the norm of the shape matrix")
        a_norm = a_sq.sqrt().upper()
    rho = (a_norm * RR).upper()  # ||A z|| <= ||A|| R
    two_g0 = (2 * st["G"]).upper()
    root = two_g0.sqrt().upper() if two_g0 > 0 else arb(0)
    bound_a = (a_norm * 2 * (m0 + rho) * (root + 2 * m0 * rho + rho * rho)).upper()
    details = {"lipschitz_bound_a_upper": bound_a, "shape_norm_upper": a_norm}
    best = bound_a
    if sigma is not None:
        bound_b = (a_norm * gn + sigma * RR + a_norm * (6 * m0 * rho * rho + 2 * rho * rho * rho)).upper()
        details["lipschitz_bound_b_upper"] = bound_b
        details["shaped_hessian_norm_upper"] = sigma
        if bound_b < best:
            best = bound_b
    return best, details


@accepts_seed()
def epsilon_net_certificate(
    problem: LoraMLProblem,
    U0,
    r: float | None = None,
    eps: float | None = None,
    *,
    shape: str = "sphere",
    max_points: int = NET_MAX_POINTS,
    polish: bool = True,
    witness=None,
    rng: np.random.Generator | None = None,
    witness_starts: int = WITNESS_STARTS,
    precision: int = ARB_PRECISION,
) -> Certificate:
    r"""Epsilon-net certificate of THEORY.md section 8 ("Rigorous epsilon-net version").

    Parameters
    ----------
    problem : LoraMLProblem
        Must have ``k = 1`` (see Notes).
    U0 : array_like, shape (T, d, 1)
        Candidate point (polished first unless ``polish=False``).
    r, eps : float, optional
        Radius of the sphere (in z, see ``shape``) and net scale.  Defaults: float
        heuristics (:func:`_suggest_net_parameters`); only the size depends on them.
    shape : {"sphere", "ellipsoid"}
        ``"sphere"``: THEORY's sphere :math:`\partial B_r(U_0)` (:math:`A=I`).
        ``"ellipsoid"``: the boundary of :math:`U_0+A\,B_r` with a stored float
        matrix :math:`A\approx S^{-1/2}`; the gap is then about :math:`r^2/2` in every
        direction, so the net no longer pays the condition number (an extension).
    max_points : int
        Budget.  If the net would have more points, :class:`CertificateTooLarge` is
        raised *before* anything is built, with the estimate in its message.
    witness, rng, witness_starts
        As in :func:`taylor_certificate` (comparison point for spuriousness).

    Notes
    -----
    *Set.*  :math:`K=\{U_0+Az:\|z\|\le r\}` with :math:`A` invertible (proven: a
    rigorous lower bound of :math:`\lambda_{\min}(A^\top A)` is positive), a compact
    neighbourhood of :math:`U_0`.  If :math:`G>G(U_0)` on :math:`\partial K`, the
    minimum of :math:`G` on :math:`K` is attained inside: a local minimiser.

    *Net.*  The cube-face grid of :func:`net_size_estimate` in z, radially projected;
    the actual covering radius :math:`\epsilon_{\rm eff}=r\,\tfrac{h_{\max}}2\sqrt{n-1}`
    uses the float grid's largest gap (exact).  :math:`G` is enclosed at the *exact*
    points :math:`U_0+A\,r\,q/\|q\|` with :class:`IntervalArray`.

    *Lipschitz bound* of :math:`z\mapsto G(U_0+Az)` on :math:`\|z\|\le R=r+\epsilon_{\rm eff}`
    (a segment from a sphere point to its net point stays there), with
    :math:`a\ge\|A\|_2`, :math:`\rho=aR\ge\|U-U_0\|`, the smaller of

    (a) :math:`a\cdot2(m_0+\rho)\big(\sqrt{2G(U_0)}+2m_0\rho+\rho^2\big)`, from
        :math:`\|\nabla G(U)\|\le2\max_t\|U_t\|_2\sqrt{2G(U)}` (as
        :math:`\nabla_{U_t}G=(R_t+R_t^\top)U_t`, :math:`\sum_t\|R_t\|^2=2G`) and
        :math:`\sqrt{2G(U)}=\|\mathcal PD(U)\|\le\sqrt{2G(U_0)}+2m_0\rho+\rho^2`;
    (b) :math:`a\|g\|+\|A^\top SA\|_2R+a(6m_0\rho^2+2\rho^3)`, differentiating the
        exact quartic expansion (module notes): the cubic term :math:`\langle b,c\rangle`
        has gradient :math:`\le6m_0\rho^2`, the quartic :math:`\tfrac12\|c\|^2` at most
        :math:`2\rho^3`.  Spectral norms are bounded by the Cholesky bounds on
        :math:`\lambda_{\min}(\pm\cdot)`.

    For the sphere (:math:`a=1`) both are tighter than THEORY's formula, which also
    needs :math:`U^\star`.

    *Conditions.*  (N1) :math:`\min_{\rm net}\underline G>\overline G(U_0)+\mathrm{Lip}\,
    \epsilon_{\rm eff}` gives :math:`G>G(U_0)` on :math:`\partial K`; (N2)
    :math:`\underline G(U_0)-\mathrm{Lip}\,r>\overline G(W)` makes the minimiser spurious.

    *k >= 2* is refused (:class:`CertificateNotApplicable`): the O(k) orbit of
    :math:`U_0` crosses every sphere around it, where :math:`G=G(U_0)`, so (N1) cannot
    hold in the full space; a net on the slice would need an exact basis of the
    complement of the orbit.  :func:`taylor_certificate` handles the quotient.
    """
    t_start = time.perf_counter()
    if not isinstance(problem, LoraMLProblem):
        raise TypeError("problem must be a LoraMLProblem")
    U_in = problem.check_factors(U0, "U0")
    if problem.k != 1:
        raise CertificateNotApplicable(
            f"epsilon-net certificate needs k = 1 (got k = {problem.k}): the O(k) orbit of the "
            "point meets every sphere around it; use taylor_certificate, which works on the quotient"
        )
    n = problem.dim_U
    U, record = polish_critical_point(problem, U_in) if polish else (U_in.copy(), {"steps": 0})
    A = _net_shape_matrix(problem, U, shape)
    if r is None or eps is None:
        r_s, eps_s = _suggest_net_parameters(problem, U, A)
        r = r_s if r is None else r
        eps = eps_s if eps is None else eps
    r, eps = float(r), float(eps)
    if not (r > 0 and eps > 0):
        raise CertificateNotApplicable(f"need r > 0 and eps > 0 (got r = {r:.3g}, eps = {eps:.3g})")
    est = net_size_estimate(n, r, eps)
    if est.log10_points > math.log10(max(max_points, 1)):
        raise CertificateTooLarge(
            f"epsilon-net certificate refused: an eps-net of the {shape} of radius r = {r:.3g} "
            f"in dimension n = {n} at eps = {eps:.3g} needs about 10^{est.log10_points:.1f} points "
            f"(covering number ~ (r/eps)^(n-1) = 10^{est.log10_covering:.1f}); budget max_points = "
            f"{max_points:.3g}. Use taylor_certificate instead.",
            kind="epsilon_net",
            estimate=10.0 ** min(est.log10_points, 300.0),
            budget=max_points,
            details=est,
        )
    return _net_evaluate(
        problem, U, r, est.points_per_axis, A, witness=witness, rng=rng, witness_starts=witness_starts,
        precision=precision, record=record, t_start=t_start, requested_eps=eps,
    )


def _inflate(x: float) -> float:
    return float(_up(np.float64(x) * (1.0 + NET_CLAIM_SLACK)))


def _net_decide(enclosures, bounds, r: float, have_witness: bool, count: int, shape: str, precision: int):
    """(N1), (N2) in ``arb`` on the claimed (exact float) bounds."""
    from flint import arb

    with arb_precision(precision):
        lip, eps_eff = arb(bounds["lipschitz_upper"]), arb(bounds["eps_effective_upper"])
        G0_lo, G0_hi = arb(enclosures["G(U0)"][0]), arb(enclosures["G(U0)"][1])
        n1 = arb(bounds["min_net_G_lower"]) - G0_hi - lip * eps_eff
        n2 = (G0_lo - lip * arb(r) - arb(enclosures["G(witness)"][1])) if have_witness else None
        margins = {"N1": _float_down(n1), "N2": _float_down(n2) if n2 is not None else -math.inf}
    if margins["N1"] > 0 and margins["N2"] > 0:
        return margins, VERDICT_SPURIOUS, (
            f"G > G(U0) on the {shape} (net of {count} points, N1 margin {margins['N1']:.3g}) and "
            f"G > G(witness) inside (N2 margin {margins['N2']:.3g})"
        )
    if margins["N1"] > 0:
        return margins, VERDICT_LOCAL_MIN, (
            f"G > G(U0) on the {shape} (net of {count} points, N1 margin {margins['N1']:.3g}): a local "
            f"minimiser lies inside; spuriousness not shown (N2 margin {margins['N2']:.3g})"
        )
    return margins, VERDICT_NONE, (
        f"(N1) fails on the {shape}: min over the net of G - G(U0) does not exceed Lip * eps "
        f"(N1 margin {margins['N1']:.3g})"
    )


def _net_evaluate(problem, U, r, p, A, *, witness, rng, witness_starts, precision, record, t_start,
                  requested_eps, stored_witness=None, search_witness=True):
    from flint import arb

    T, d, k = problem.T, problem.d, problem.k
    n = problem.dim_U
    tasks = problem.tasks
    grid = np.linspace(-1.0, 1.0, p)
    with arb_precision(precision):
        # exact largest gap of the float grid (differences of floats, evaluated in arb)
        hmax = arb(0)
        for i in range(p - 1):
            gap = (arb(float(grid[i + 1])) - arb(float(grid[i]))).upper()
            if gap > hmax:
                hmax = gap
        eps_eff = _float_up(arb(r) * hmax / 2 * arb(max(n - 1, 0)).sqrt()) if n > 1 else 0.0
        st = _arb_state(tasks, U)
        S_arb = _arb_hessian(st, T, d, k)
        S_mid = _arb_to_mid(S_arb)
        if A is not None:
            Aa = arb_from_array(A)
            AtA = Aa.transpose() * Aa
            lo_AtA, _, _ = _lambda_min_lower(AtA, _arb_to_mid(AtA))
            if not lo_AtA > 0:
                raise CertificateNotApplicable("the shape matrix is not proven invertible")
        # Segments between a sphere point and its net point stay in the ball of radius r;
        # r + eps_eff (rounded up) is a safe over-estimate.
        lip, lip_details = _net_lipschitz(st, S_arb, S_mid, A, _float_up(arb(r) + arb(eps_eff)))
        lip_f = _float_up(lip)
        G0_pair = arb_pair(st["G"])
        ball_lower = _float_down(arb(G0_pair[0]) - arb(lip_f) * arb(r))
    # The net: enclosures of G at U0 + A r q/||q||.
    u0 = vec_factors(U)
    min_lo, argmin, count = math.inf, None, 0
    for Q in _net_faces(n, p, NET_CHUNK):
        Qi = IntervalArray(Q)
        norm = Qi.square().sum(axis=1).sqrt()
        Z = (Qi * r) / IntervalArray(norm.lo[:, None], norm.hi[:, None])  # exact sphere points
        if A is None:
            Pts = IntervalArray(u0[None, :]) + Z
        else:
            cols = []
            for i in range(n):  # u0_i + sum_j A_ij z_j, A exact floats
                acc = IntervalArray(u0[i])
                for j in range(n):
                    acc = acc + Z[:, j] * float(A[i, j])
                cols.append(acc)
            Pts = IntervalArray(np.stack([c.lo for c in cols], axis=1),
                                np.stack([c.hi for c in cols], axis=1))
        Gi = _interval_reduced_loss(tasks, Pts, T, d, k)
        j = int(np.argmin(Gi.lo))
        if Gi.lo[j] < min_lo:
            min_lo, argmin = float(Gi.lo[j]), (Q[j] / np.linalg.norm(Q[j])).tolist()
        count += Q.shape[0]
    # Witness.
    W = stored_witness
    if W is None and witness is not None:
        W = problem.check_factors(witness, "witness")
    elif W is None and search_witness and ball_lower > 0.0:
        W = find_witness(problem, rng=rng, starts=witness_starts)
    W_pair = _witness_upper(tasks, W, precision) if W is not None else None
    with arb_precision(precision):
        rigorous = {
            "min_net_G_lower": min_lo,
            "lipschitz_upper": lip_f,
            "eps_effective_upper": eps_eff,
            **{name: _float_up(v) for name, v in lip_details.items()},
        }
    # Claims: Lipschitz-type bounds inflated by NET_CLAIM_SLACK, so that a re-verification
    # whose float spectra (shift choice) differ in the last bits still implies them.
    bounds = {
        name: (_inflate(v) if name.endswith("_upper") and name != "eps_effective_upper" else v)
        for name, v in rigorous.items()
    }
    enclosures = {"G(U0)": G0_pair}
    if W_pair is not None:
        enclosures["G(witness)"] = W_pair
    shape = "sphere" if A is None else "ellipsoid"
    margins, verdict, reason = _net_decide(enclosures, bounds, r, W_pair is not None, count, shape, precision)
    return Certificate(
        kind="epsilon_net",
        tasks=tasks,
        rank=k,
        point=U,
        radius=r,
        verdict=verdict,
        reason=reason,
        enclosures=enclosures,
        bounds=bounds,
        margins=margins,
        parameters={
            "shape": shape,
            "shape_matrix": None if A is None else np.asarray(A).tolist(),
            "points_per_axis": int(p),
            "net_points": int(count),
            "requested_eps": float(requested_eps),
            "precision": int(precision),
        },
        witness=W,
        diagnostics={
            "polish": record,
            "net_argmin_direction": argmin,
            "rigorous": rigorous,
            "seconds": time.perf_counter() - t_start,
        },
    )


def _verify_net(cert, problem, prec, max_points) -> bool:
    p = int(cert.parameters["points_per_axis"])
    n = problem.dim_U
    budget = int(cert.parameters.get("net_points", 0)) if max_points is None else max_points
    if problem.k != 1 or p < 2 or 2 * n * p ** (n - 1) > max(budget, 1):
        return False
    shape = cert.parameters.get("shape", "sphere")
    A = cert.parameters.get("shape_matrix")
    if (shape == "sphere") != (A is None):
        return False
    A = None if A is None else np.array(A, dtype=np.float64).reshape(n, n)
    redo = _net_evaluate(
        problem, np.asarray(cert.point), cert.radius, p, A, witness=None, rng=None, witness_starts=0,
        precision=prec, record={}, t_start=time.perf_counter(),
        requested_eps=cert.parameters.get("requested_eps", 0.0),
        stored_witness=None if cert.witness is None else np.asarray(cert.witness), search_witness=False,
    )
    if not _claims_hold(cert, redo.enclosures, dict(redo.diagnostics["rigorous"]), None):
        return False
    margins, verdict, _ = _net_decide(
        dict(cert.enclosures), dict(cert.bounds), cert.radius, cert.witness is not None,
        int(cert.parameters.get("net_points", 0)), shape, prec,
    )
    for name, stored in cert.margins.items():
        if name not in margins or not stored <= margins[name]:
            return False
    return verdict == cert.verdict and redo.parameters["net_points"] == cert.parameters["net_points"]


register_verifier("epsilon_net", _verify_net)
