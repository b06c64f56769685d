r"""Per-point certificates shared by both ways of deciding completeness (route 1 in
:mod:`._core`, the homotopy route alone in :mod:`._complete`): the square systems that
Krawczyk's test is run on, the gauge slice, the arb enclosures of :math:`G` and of the
smallest Hessian eigenvalue, the certificate of one critical orbit and the classes.
"""
from __future__ import annotations

import math

import numpy as np

from .._classify import DEGENERATE, GLOBAL_MINIMUM, STRICT_SADDLE  # the audit's names for the same classes
from ._krawczyk import PRECISE_BITS, CompiledSystem, krawczyk, newton_precise
from ._systems import gradient_system

LOWEST_MINIMUM = "lowest_local_minimum"
SPURIOUS = "spurious_local_minimum"
CLASSES = (GLOBAL_MINIMUM, LOWEST_MINIMUM, SPURIOUS, STRICT_SADDLE, DEGENERATE)


# --------------------------------------------------------------------------------------
# Arb helpers for the certified curvature
# --------------------------------------------------------------------------------------
def _arb_sym_lambda_bounds(H):
    r"""Rigorous enclosure data for the symmetric ``arb_mat`` ``H``: a lower bound of
    :math:`\lambda_{\min}` (shifted Cholesky residual) and an upper bound of
    :math:`\lambda_{\min}` (Rayleigh quotient of the float eigenvector)."""
    from flint import arb, arb_mat

    n = H.nrows()
    Hm = np.array([[float(H[i, j].mid()) for j in range(n)] for i in range(n)])
    Hm = 0.5 * (Hm + Hm.T)
    lam, V = np.linalg.eigh(Hm)
    # upper bound: v^T H v / v^T v for the float eigenvector v (exact rationals in arb)
    v = [arb(float(x)) for x in V[:, 0]]
    vm = arb_mat([[x] for x in v])
    num = (vm.transpose() * H * vm)[0, 0]
    den = sum((x * x for x in v), arb(0))
    upper = float((num / den).upper())
    # lower bound: mu - ||H - mu I - L L^T||_F with L = chol(H_mid - mu I) in floats
    scale = max(float(np.max(np.abs(lam))), 1e-300)
    delta = max(1e-6 * abs(lam[0]), 1e-12 * scale)
    lower = -math.inf
    for _ in range(8):
        mu = float(lam[0] - delta)
        try:
            L = np.linalg.cholesky(Hm - mu * np.eye(n))
        except np.linalg.LinAlgError:
            delta *= 16
            continue
        La = arb_mat([[float(x) for x in row] for row in L])
        F = H - La * La.transpose()
        acc = arb(0)
        for i in range(n):
            F[i, i] = F[i, i] - arb(mu)
            for j in range(n):
                acc += F[i, j].abs_upper() ** 2
        lower = float((arb(mu) - acc.upper().sqrt().upper()).lower())
        break
    return lower, upper, lam


def _arb_G(S_exact, U: np.ndarray, radius: float = 0.0):
    r"""Enclosure of :math:`G` over the box ``U +- radius`` (symmetric task parts only:
    the antisymmetric parts add :math:`\frac12\sum_t\|K_t-\bar K\|^2`, added by the caller)."""
    from flint import arb, fmpq

    T, d, k = U.shape
    Ua = [[[arb(float(U[t, i, l]), radius) for l in range(k)] for i in range(d)] for t in range(T)]
    D = []
    for t in range(T):
        D.append([[arb(fmpq(S_exact[t][i][j].numerator, S_exact[t][i][j].denominator))
                   - sum((Ua[t][i][l] * Ua[t][j][l] for l in range(k)), arb(0)) for j in range(d)]
                  for i in range(d)])
    G = arb(0)
    for i in range(d):
        for j in range(d):
            mean = sum((D[t][i][j] for t in range(T)), arb(0)) / T
            for t in range(T):
                e = D[t][i][j] - mean
                G += e * e  # not ** 2: arb's pow is NaN on balls around 0
    return G / 2


# --------------------------------------------------------------------------------------
# Gauge
# --------------------------------------------------------------------------------------
def _to_slice(U: np.ndarray) -> np.ndarray | None:
    """Representative of the O(k)-orbit of each U_t on the slice (top block lower
    triangular, non-negative diagonal); None if a top block is singular."""
    T, d, k = U.shape
    out = U.copy()
    if k == 1:
        return out
    for t in range(T):
        top = U[t, :k, :]
        # top = L Q  <=>  top^T = Q^T L^T (QR of top^T)
        Q, Rm = np.linalg.qr(top.T)
        s = np.sign(np.diag(Rm))
        if np.any(np.abs(np.diag(Rm)) <= 1e-10 * max(1.0, np.abs(top).max())):
            return None
        s[s == 0] = 1
        Q = Q * s[None, :]
        out[t] = U[t] @ Q
    return out


# --------------------------------------------------------------------------------------
# Square systems for Krawczyk
# --------------------------------------------------------------------------------------
class _Square:
    """The square system certified at each point, with maps between U and its unknowns."""

    def __init__(self, S, T, d, k, *, lagrange=None):
        self.T, self.d, self.k = T, d, k
        self.lagrange = (T == 2) if lagrange is None else lagrange
        g = gradient_system(S, T, d, k, gauge=not self.lagrange)
        self.free = g.free
        if self.lagrange:
            from sympy.polys.domains import QQ
            from sympy.polys.rings import ring

            names = g.names + ["mu"]
            R, *gens = ring(",".join(names), QQ)
            polys = [_rebase(p, g.gens, gens[:-1], R) for p in g.polys]
            mu = gens[-1]
            var = dict(zip(self.free, gens[:-1]))
            c = sum((var[(0, i, l)] * var[(1, i, l)] for i in range(d) for l in range(k)), R(0))
            polys = [p + mu * c.diff(x) for p, x in zip(polys, gens[:-1])] + [c]
            self.compiled = CompiledSystem(polys, gens)
            self.n_u = len(self.free)
        else:
            self.compiled = CompiledSystem(g.polys, g.gens)
            self.n_u = len(self.free)
        self.system = g

    def pack(self, U):
        x = np.array([U[t, i, l] for (t, i, l) in self.free])
        return np.concatenate([x, [0.0]]) if self.lagrange else x

    def unpack(self, x):
        U = np.zeros((self.T, self.d, self.k))
        for v, (t, i, l) in zip(x[: self.n_u], self.free):
            U[t, i, l] = v
        return U


def _rebase(p, old_gens, new_gens, R):
    """Re-express ``p`` (polynomial in ``old_gens``) in the ring ``R`` whose first gens are ``new_gens``."""
    out = R(0)
    n_new = len(R.gens)
    for mono, c in p.terms():
        e = list(mono) + [0] * (n_new - len(mono))
        out += R({tuple(e): c})
    return out


def eigenvalue_summary(lam, lower, upper, space: str) -> dict:
    """A point's curvature entry: the smallest and largest eigenvalue (``lam``: the float
    midpoints of the enclosures, ascending), how many are negative (strictly: a midpoint of
    exactly 0 is not), their number, the certified bounds of the smallest and the space."""
    lam = np.asarray(lam, dtype=float)
    return {
        "min": float(lam[0]), "max": float(lam[-1]),
        "n_negative": int(np.sum(lam < 0)), "n": int(lam.size),
        "lambda_min_certified_lower": lower, "lambda_min_certified_upper": upper,
        "space": space,
    }


def system_label(T: int, k: int) -> str:
    """The square system Krawczyk certifies a point of (T tasks, rank k) with, as reports name
    it: the gradient on the O(k) slice from k = 2 on (T >= 3), the gradient with the T = 2
    boost slice's multiplier, or the bare gradient (k = 1, T >= 3: no continuous symmetry)."""
    if k >= 2 and T >= 3:
        return "gradient on the slice"
    return "gradient + mu * grad(u1.u2), u1.u2 (T = 2 boost slice)" if T == 2 else "gradient"


def hessian_label(T: int, k: int) -> str:
    """The Hessian whose eigenvalues a certified point reports: restricted to the gauge slice
    wherever the system has one (k >= 2, or the T = 2 boost slice), the Hessian of G itself
    for k = 1 and T >= 3."""
    return "Hessian of G restricted to the gauge slice" if (k >= 2 or T == 2) else "Hessian of G"


def _certify_point(problem, sq, S, U, zero, box, idx, G_antisym):
    """Polish, certify (Krawczyk), check against msolve's box (``box`` None: no box, the
    homotopy route), curvature enclosure."""
    from flint import arb

    T, d, k = U.shape
    Us = _to_slice(U)
    entry = {"certified": False, "copies": 1}
    if Us is None:
        entry.update({"reason": "a top k x k block is singular: the orbit does not meet the slice transversally",
                      "_U": U, "G": float(problem.reduced_loss(U)), "class": DEGENERATE})
        return entry
    if sq.lagrange and len(zero) == T:
        # U = 0 is isolated (the slice constraint is singular there): plain gradient system
        sq = _Square(S, T, d, k, lagrange=False)
    x0 = sq.pack(Us)
    x = sq.compiled.newton(x0)
    for t in zero:  # exact zeros stay exact (the Jacobian is block diagonal there)
        x[: sq.n_u][[m for m, f in enumerate(sq.free) if f[0] == t]] = 0.0
    kr = krawczyk(sq.compiled, x)
    if not kr.certified:
        # an ill-conditioned zero (condition ~1e9 and up): float Newton cannot place it and a
        # float inverse is no Krawczyk preconditioner there; 256-bit Newton from the given
        # point and a 256-bit inverse (the test is the same)
        y = newton_precise(sq.compiled, np.asarray(x0, dtype=complex))
        if y is not None:
            y = y.real
            for t in zero:
                y[: sq.n_u][[m for m, f in enumerate(sq.free) if f[0] == t]] = 0.0
            k2 = krawczyk(sq.compiled, y, inverse_bits=PRECISE_BITS)
            if k2.certified:
                kr = k2
    Uc = sq.unpack(kr.center)
    G_enc = _arb_G(S, Uc, kr.radius) + G_antisym
    entry.update({
        "_U": Uc,
        "U": Uc.tolist(),
        "G": float(G_enc.mid()),
        "G_enclosure": [float(G_enc.lower()), float(G_enc.upper())],
        "zero_blocks": [int(t) for t in zero],
        "certificate": {"method": "krawczyk", "certified": bool(kr.certified), "radius": kr.radius,
                        "system": system_label(T, k)},
    })
    if not kr.certified:
        entry["reason"] = "Krawczyk's test failed (singular or ill-conditioned point)"
        entry["class"] = DEGENERATE
        entry["eigenvalues"] = _float_eigs(problem, Uc)
        return entry
    # the certified zero's invariants must lie in msolve's box
    inside = True
    for t in range(T if box is not None else 0):
        for m, (i, j) in enumerate(idx):
            v = sum((arb(float(Uc[t, i, l]), kr.radius) * arb(float(Uc[t, j, l]), kr.radius) for l in range(k)),
                    arb(0))
            lo, hi = box[t * len(idx) + m]
            if float(v.upper()) < float(lo) - 1e-12 or float(v.lower()) > float(hi) + 1e-12:
                inside = False
    entry["matches_msolve_box"] = inside if box is not None else None
    # copies: k = 1, T >= 3: each nonzero block doubles the orbit; the box must exclude 0 there
    if k == 1 and T >= 3:
        nz = [t for t in range(T) if t not in zero]
        for t in nz:
            if not np.any(np.abs(Uc[t, :, 0]) > kr.radius):
                inside = False
        entry["copies"] = 2 ** len(nz)
    # curvature: the Jacobian of the square system over the box encloses (1/2) Hess G|slice
    J = kr.jacobian
    n = sq.n_u
    from flint import arb_mat

    H = arb_mat(n, n)
    for i in range(n):
        for j in range(n):
            H[i, j] = 2 * J[i, j]
    if sq.lagrange:
        # restrict to the slice tangent (the complement of grad(u1.u2)): the Hessian of G
        # vanishes along the boost orbit, which the slice meets transversally
        gc = np.array([[Uc[1 - t, i, 0] for (t, i, _l) in sq.free]])
        N = np.linalg.svd(gc)[2][1:].T  # orthonormal basis of grad(c)^perp (float, exact in arb)
        Na = arb_mat([[float(v) for v in row] for row in N])
        H = Na.transpose() * H * Na
    lower, upper, lam = _arb_sym_lambda_bounds(H)
    entry["eigenvalues"] = eigenvalue_summary(
        lam, lower, upper, hessian_label(T, k))
    entry["certified"] = bool(inside)
    if not inside:
        entry["reason"] = ("certified box does not match msolve's isolating box" if box is not None else
                           "the box of a non-zero block contains 0: its sign copies are not proved distinct")
    return entry


def _float_eigs(problem, U):
    return eigenvalue_summary(np.linalg.eigvalsh(problem.schur_complement(U)), None, None, "Hessian of G (float)")


def _classify_orbits(orbits):
    r"""Certified classes.  A strict saddle has a certified negative Rayleigh quotient; a
    point whose (slice) Hessian is certified positive definite is a strict local minimum
    (modulo the gauge); such a minimum is *spurious* when another critical value is
    certainly lower (disjoint enclosures), a *global minimum* when its enclosure of
    :math:`G` contains 0 (0 is the least possible value), else the *lowest local
    minimum* (the global minimum whenever :math:`\inf G` is attained, since every
    critical point is listed)."""
    for o in orbits:
        if o.get("class") == DEGENERATE or not o.get("certified"):
            o["class"] = DEGENERATE
            continue
        ev = o["eigenvalues"]
        if ev["lambda_min_certified_upper"] is not None and ev["lambda_min_certified_upper"] < 0:
            o["class"] = STRICT_SADDLE
        elif ev["lambda_min_certified_lower"] is not None and ev["lambda_min_certified_lower"] > 0:
            if o["G_enclosure"][0] <= 0.0:
                o["class"] = GLOBAL_MINIMUM
            else:
                o["class"] = SPURIOUS if any(
                    p is not o and "G_enclosure" in p and p["G_enclosure"][1] < o["G_enclosure"][0] for p in orbits
                ) else LOWEST_MINIMUM
        else:
            o["class"] = DEGENERATE
            o["reason"] = "curvature sign not certified (zero or tiny eigenvalue)"


def _existing_kind(problem, U):
    from .._classify import classify

    try:
        return classify(problem, U).kind
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        return f"error: {type(exc).__name__}"
