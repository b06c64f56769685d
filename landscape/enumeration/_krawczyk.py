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

__all__ = ["CompiledSystem", "KrawczykResult", "krawczyk"]

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


def krawczyk(system: CompiledSystem, x: np.ndarray, *, radii=None) -> KrawczykResult:
    """Try boxes of growing radius around the (Newton-polished) float point ``x``."""
    from flint import arb, arb_mat, ctx

    old = ctx.prec
    ctx.prec = ARB_PREC
    try:
        n = system.n
        x = np.asarray(x, dtype=float)
        scale = 1.0 + float(np.max(np.abs(x))) if n else 1.0
        try:
            Y = np.linalg.inv(system.jval(x))
        except np.linalg.LinAlgError:
            return KrawczykResult(False, x, 0.0)
        if not np.all(np.isfinite(Y)):
            return KrawczykResult(False, x, 0.0)
        xa = [arb(float(v)) for v in x]
        fx = system.aval(xa)
        Ya = arb_mat([[float(v) for v in row] for row in Y])
        fa = arb_mat([[v] for v in fx])
        step = Ya * fa
        newton = float(max(abs(float(step[i, 0].mid())) + float(step[i, 0].rad()) for i in range(n)))
        if radii is None:
            r0 = max(4.0 * newton, 1e-14 * scale)
            radii = [r0 * 10.0 ** j for j in range(0, 12, 2)]
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
    finally:
        ctx.prec = old
