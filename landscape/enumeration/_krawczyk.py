r"""Krawczyk's test in ball arithmetic (python-flint ``arb``): proof that a box holds
exactly one zero of a square polynomial system with rational coefficients.

For :math:`f:\mathbb R^n\to\mathbb R^n`, a point :math:`\tilde x`, a box
:math:`X=\tilde x+[-r,r]^n` and any matrix :math:`Y` (here the float inverse of
:math:`Df(\tilde x)`),

.. math:: K(\tilde x,X)=\tilde x-Yf(\tilde x)+(I-Y\,Df(X))(X-\tilde x),

where :math:`Df(X)` is a ball enclosure of the Jacobian over the box.  If
:math:`K\subset\mathrm{int}\,X` then :math:`f` has exactly one zero in :math:`X` and
:math:`Df` is nonsingular there (Krawczyk 1969, Moore 1977, Rump 1983).  Every
quantity is computed in ``arb`` from the exact coefficients, so the statement is
rigorous; boxes that pass are pairwise compared to prove distinctness.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._interval import arb_precision

__all__ = ["CompiledSystem", "KrawczykResult", "krawczyk", "krawczyk_complex", "boxes_overlap",
           "newton_precise"]

ARB_PREC = 128


class CompiledSystem:
    """A square system and its Jacobian as term lists, for float and ``arb`` evaluation."""

    def __init__(self, polys, gens):
        self.n = len(gens)
        if len(polys) != self.n:
            raise ValueError(f"Krawczyk needs a square system, got {len(polys)} equations in {self.n} unknowns")
        self.f = [self._compile(p) for p in polys]
        self.J = [[self._compile(p.diff(x)) for x in gens] for p in polys]

    def _compile(self, p):
        from flint import fmpq

        terms = list(p.terms())
        if not terms:
            return (np.zeros((0, self.n), dtype=int), np.zeros(0), [])
        E = np.array([m for m, _ in terms], dtype=int)
        qs = [fmpq(int(c.numerator), int(c.denominator)) for _, c in terms]
        return (E, np.array([float(int(q.p)) / float(int(q.q)) for q in qs]), qs)

    # ---------------------------------------------------------------- floats
    @staticmethod
    def _feval(term, x):
        E, c, _ = term
        if c.size == 0:
            return 0.0 * x[0] if x.size else 0.0
        return np.prod(x[None, :] ** E, axis=1) @ c

    def fval(self, x):
        return np.array([self._feval(t, x) for t in self.f])

    def jval(self, x):
        return np.array([[self._feval(t, x) for t in row] for row in self.J])

    def newton(self, x, *, steps: int = 30):
        x = np.asarray(x, dtype=x.dtype if np.iscomplexobj(x) else float).copy()
        for _ in range(steps):
            fx = self.fval(x)
            try:
                dx = np.linalg.solve(self.jval(x), fx)
            except np.linalg.LinAlgError:
                break
            x = x - dx
            if np.linalg.norm(dx) <= 1e-15 * (1.0 + np.linalg.norm(x)):
                break
        return x

    # ---------------------------------------------------------------- arb
    @staticmethod
    def _aeval(term, xs, powers):
        from flint import arb

        E, _, qs = term
        acc = arb(0)
        for e, q in zip(E, qs):
            m = arb(q)
            for i in np.nonzero(e)[0]:
                m *= powers[i][int(e[i])]
            acc += m
        return acc

    @staticmethod
    def _ceval(term, powers):
        from flint import acb

        E, _, qs = term
        acc = acb(0)
        for e, q in zip(E, qs):
            m = acb(q)
            for i in np.nonzero(e)[0]:
                m *= powers[i][int(e[i])]
            acc += m
        return acc

    def cval(self, xs):
        """Enclosure of f over the complex box ``xs`` (a list of ``acb``)."""
        pw = self._powers(xs)
        return [self._ceval(t, pw) for t in self.f]

    def cjac(self, xs):
        """``acb_mat`` enclosure of Df over the complex box ``xs``."""
        from flint import acb_mat

        pw = self._powers(xs)
        M = acb_mat(self.n, self.n)
        for i, row in enumerate(self.J):
            for j, t in enumerate(row):
                M[i, j] = self._ceval(t, pw)
        return M

    def _powers(self, xs, maxdeg=4):
        # repeated products: arb's ``**`` goes through exp/log and is NaN on balls around 0
        out = []
        for x in xs:
            row = [None, x]
            for _ in range(2, maxdeg + 1):
                row.append(row[-1] * x)
            out.append(row)
        return out

    def aval(self, xs):
        pw = self._powers(xs)
        return [self._aeval(t, xs, pw) for t in self.f]

    def ajac(self, xs):
        from flint import arb_mat

        pw = self._powers(xs)
        M = arb_mat(self.n, self.n)
        for i, row in enumerate(self.J):
            for j, t in enumerate(row):
                M[i, j] = self._aeval(t, xs, pw)
        return M


PRECISE_BITS = 256  # working precision of the Newton polish for ends that float Newton cannot place


def newton_precise(compiled, x, *, bits: int = PRECISE_BITS, steps: int = 25):
    r"""Newton's method on the exact system in ``acb`` midpoint arithmetic at ``bits`` bits
    from the complex point ``x``, rounded to floats at the end; None when a Jacobian is
    singular, a step is not finite or the steps do not settle.

    Why: float Newton places a zero only to about :math:`\kappa(Df)\,\varepsilon` of its
    norm (the residual is evaluated with a rounding error of :math:`\varepsilon` times its
    largest term), and Krawczyk's box must hold that error while :math:`Y\,Df` stays
    close to :math:`I` over it.  At :math:`\kappa\approx10^9` (a simple zero next to a
    near-collision) a float point is :math:`10^{-6}` off and no box passes, while the
    correctly rounded zero passes with a box of :math:`10^{-13}`.  Nothing here is part
    of the proof: the box around the returned point is proved by
    :func:`krawczyk_complex` like any other."""
    from flint import acb, acb_mat

    x = np.asarray(x, dtype=complex)
    if not np.all(np.isfinite(x)):
        return None
    with arb_precision(bits):
        xs = [acb(float(v.real), float(v.imag)) for v in x]
        # a step below 2^-100 of the scale: the next would be below 2^-200, far below an ulp
        tol = 2.0 ** -100 * (1.0 + float(np.max(np.abs(x))))
        for _ in range(steps):
            F = acb_mat([[v] for v in compiled.cval(xs)])
            try:
                dx = compiled.cjac(xs).solve(F, algorithm="approx")
            except ZeroDivisionError:
                return None
            step = [complex(float(dx[i, 0].real.mid()), float(dx[i, 0].imag.mid())) for i in range(compiled.n)]
            if not np.all(np.isfinite(step)):
                return None
            xs = [(xs[i] - dx[i, 0]).mid() for i in range(compiled.n)]
            if max(abs(v) for v in step) <= tol:
                return np.array([complex(float(v.real.mid()), float(v.imag.mid())) for v in xs])
    return None


@dataclass
class KrawczykResult:
    """``certified``: a unique zero lies in the box ``center +- radius``; ``radius`` is
    the half-width (same in every coordinate); ``jacobian`` an ``arb_mat`` enclosure of
    :math:`Df` over the box (used for the inertia certificate)."""

    certified: bool
    center: np.ndarray
    radius: float
    jacobian: object = None


def _identity(n):
    from flint import arb_mat

    I = arb_mat(n, n)
    for i in range(n):
        I[i, i] = 1
    return I


def _float_inverse(system: CompiledSystem, x: np.ndarray):
    """The float inverse :math:`Y` of :math:`Df(x)` (real or complex), or None where the
    Jacobian is singular or the inverse is not finite: no box is then tried."""
    try:
        Y = np.linalg.inv(system.jval(x))
    except np.linalg.LinAlgError:
        return None
    return Y if np.all(np.isfinite(Y)) else None


def _radii(newton: float, scale: float) -> list:
    """The box radii tried, from four Newton steps' size (at least 1e-14 of the point's
    scale) growing by 100x; the callers stop at 1e-2 of the scale."""
    r0 = max(4.0 * newton, 1e-14 * scale)
    return [r0 * 10.0 ** j for j in range(0, 12, 2)]


def _fine_radii(newton: float, scale: float) -> list:
    r"""Radii for an ill-conditioned zero (with a precise :math:`Y`): from twice the Newton
    step (at least 4e-16 of the scale, a few float spacings of the centre) growing by 4x.
    A box must hold the zero yet stay small enough that :math:`Y\,Df` varies little over
    it; at a condition number of :math:`10^{13}` that window is a few float spacings wide."""
    r0 = max(2.0 * newton, 4e-16 * scale)
    return [r0 * 4.0 ** j for j in range(12)]


def _preconditioner(system: CompiledSystem, x: np.ndarray, inverse_bits: int | None, *, real: bool):
    r"""Krawczyk's :math:`Y` at ``x`` as an ``arb_mat`` (``real``) or ``acb_mat``: the float
    inverse of :math:`Df(x)`, or with ``inverse_bits`` :func:`_precise_inverse` at that
    precision (real part for the real test); None where :math:`Df(x)` is singular."""
    from flint import acb, acb_mat, arb_mat

    if inverse_bits is None:
        Y = _float_inverse(system, x)
        if Y is None:
            return None
        if real:
            return arb_mat([[float(v) for v in row] for row in Y])
        return acb_mat([[acb(float(v.real), float(v.imag)) for v in row] for row in Y])
    Yc = _precise_inverse(system, np.asarray(x, dtype=complex), inverse_bits)
    if Yc is None or not real:
        return Yc
    n = system.n
    return arb_mat([[Yc[i, j].real for j in range(n)] for i in range(n)])


def _box_radii(newton: float, scale: float, inverse_bits: int | None) -> list:
    """The default radii: :func:`_radii`, or :func:`_fine_radii` with a precise :math:`Y`."""
    return _radii(newton, scale) if inverse_bits is None else _fine_radii(newton, scale)


def krawczyk(system: CompiledSystem, x: np.ndarray, *, radii=None, inverse_bits: int | None = None) -> KrawczykResult:
    """Try boxes of growing radius around the (Newton-polished) float point ``x``; with
    ``inverse_bits`` :math:`Y` is inverted at that precision (see :func:`krawczyk_complex`)."""
    from flint import arb, arb_mat

    with arb_precision(ARB_PREC):
        n = system.n
        x = np.asarray(x, dtype=float)
        scale = 1.0 + float(np.max(np.abs(x))) if n else 1.0
        Ya = _preconditioner(system, x, inverse_bits, real=True)
        if Ya is None:
            return KrawczykResult(False, x, 0.0)
        xa = [arb(float(v)) for v in x]
        fx = system.aval(xa)
        fa = arb_mat([[v] for v in fx])
        step = Ya * fa
        newton = float(max(abs(float(step[i, 0].mid())) + float(step[i, 0].rad()) for i in range(n)))
        if radii is None:
            radii = _box_radii(newton, scale, inverse_bits)
        for r in radii:
            if r > 1e-2 * scale:
                break
            box = [arb(float(v), r) for v in x]
            JX = system.ajac(box)
            M = _identity(n) - Ya * JX
            dev = arb_mat([[arb(0, r)] for _ in range(n)])
            K = M * dev - step  # K - x
            if all(K[i, 0].abs_upper() < r for i in range(n)):
                return KrawczykResult(True, x, float(r), JX)
        return KrawczykResult(False, x, 0.0)


# --------------------------------------------------------------------------------------
# Complex boxes
# --------------------------------------------------------------------------------------
def _precise_inverse(system: CompiledSystem, x: np.ndarray, bits: int):
    r"""An ``acb_mat`` :math:`Y`: the midpoints of the inverse of :math:`Df(x)` computed at
    ``bits`` bits from the exact coefficients, or None where that is singular.  Any
    :math:`Y` serves in Krawczyk's test; this one keeps :math:`I-Y\,Df` small where a
    float inverse cannot (a condition number near :math:`10^{12}`)."""
    from flint import acb, acb_mat

    with arb_precision(bits):
        J = system.cjac([acb(float(v.real), float(v.imag)) for v in x])
        try:
            Y = J.inv()
        except ZeroDivisionError:
            return None
        n = system.n
        return acb_mat([[Y[i, j].mid() for j in range(n)] for i in range(n)])


def krawczyk_complex(system: CompiledSystem, x: np.ndarray, *, radii=None,
                     inverse_bits: int | None = None) -> KrawczykResult:
    r"""Krawczyk's test over :math:`\mathbb C^n`: the box is the product of the squares
    :math:`\tilde x_j+([-r,r]+i[-r,r])` (``acb`` rectangles), :math:`Y` the complex float
    inverse of :math:`Df(\tilde x)`.

    Why it proves a zero: identify :math:`\mathbb C^n` with :math:`\mathbb R^{2n}`.  A
    polynomial map is holomorphic, so its real Jacobian is the realification of
    :math:`Df`, and a product of rectangles is a real box.  Rectangle arithmetic on real
    and imaginary parts (``acb``) is real interval arithmetic on the realified quantities,
    so the computed :math:`K` encloses the real Krawczyk operator of the realified system
    with the realified :math:`Y`.  Hence :math:`K\subset\mathrm{int}\,X` (checked on
    every real and imaginary part) proves that exactly one zero of :math:`f` lies in
    :math:`X`, complex in general, and that :math:`Df` is nonsingular there: the zero is
    simple.  A box with a real centre is invariant under conjugation; for a system with
    real coefficients the conjugate of its zero is then a zero in the box too, so that
    unique zero is real.  With ``inverse_bits``, :math:`Y` is :func:`_precise_inverse` at
    that precision instead of the float inverse (the test itself is unchanged).
    """
    from flint import acb, acb_mat, arb

    with arb_precision(ARB_PREC):
        n = system.n
        x = np.asarray(x, dtype=complex)
        scale = 1.0 + float(np.max(np.abs(x))) if n else 1.0
        Ya = _preconditioner(system, x, inverse_bits, real=False)
        if Ya is None:
            return KrawczykResult(False, x, 0.0)
        xa = [acb(float(v.real), float(v.imag)) for v in x]
        step = Ya * acb_mat([[v] for v in system.cval(xa)])
        newton = max((max(float(step[i, 0].real.abs_upper()), float(step[i, 0].imag.abs_upper())) for i in range(n)),
                     default=0.0)
        if radii is None:
            radii = _box_radii(newton, scale, inverse_bits)
        eye = acb_mat(n, n)
        for i in range(n):
            eye[i, i] = 1
        for r in radii:
            if r > 1e-2 * scale:
                break
            box = [acb(arb(float(v.real), r), arb(float(v.imag), r)) for v in x]
            JX = system.cjac(box)
            dev = acb_mat([[acb(arb(0, r), arb(0, r))] for _ in range(n)])
            K = (eye - Ya * JX) * dev - step  # K - x
            if all(K[i, 0].real.abs_upper() < r and K[i, 0].imag.abs_upper() < r for i in range(n)):
                return KrawczykResult(True, x, float(r), JX)
        return KrawczykResult(False, x, 0.0)


def boxes_overlap(centers: np.ndarray, radii: np.ndarray) -> list:
    r"""Pairs ``(i, j)``, ``i < j``, of complex boxes ``centers[i] +- radii[i]`` (squares per
    coordinate, as in :func:`krawczyk_complex`) that are not proved disjoint.  Two boxes are
    disjoint when in some coordinate the real or the imaginary parts of the centres differ
    by more than the sum of the radii; the comparison keeps a relative margin of
    :math:`10^{-12}` (a float subtraction or sum errs by at most :math:`2^{-53}` of its
    result, and the centres are exactly the floats the boxes were proved around).  Boxes are swept in the order of the real part of the first coordinate, so
    only pairs within ``2 max(radii)`` of each other there are compared."""
    C = np.asarray(centers, dtype=complex)
    r = np.asarray(radii, dtype=float)
    N = len(C)
    if N < 2:
        return []
    if not np.all(np.isfinite(C)) or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("boxes need finite centres and non-negative radii")
    P = np.concatenate([C.real, C.imag], axis=1)
    order = np.argsort(P[:, 0], kind="stable")
    P, r = P[order], r[order]
    width = 2.0 * float(r.max()) * (1 + 1e-12) + 1e-300
    out = []
    for a in range(N):
        b = a + 1
        while b < N and P[b, 0] - P[a, 0] <= width:
            sep = np.abs(P[b] - P[a]) > (r[a] + r[b]) * (1 + 1e-12)
            if not np.any(sep):
                i, j = sorted((int(order[a]), int(order[b])))
                out.append((i, j))
            b += 1
    return sorted(out)
