r"""Exact polynomial systems for the critical points of the reduced loss :math:`G`.

Only the symmetric parts :math:`S_t=\tfrac12(A^\star_t+A^{\star\top}_t)` of the tasks enter
:math:`\nabla G` (the antisymmetric parts add a constant to :math:`G`).  With
:math:`C_t=\bar S-S_t`, :math:`X_t=U_tU_t^\top` and :math:`\bar X=\frac1T\sum_sX_s`,

.. math::
    \tfrac12\nabla_{U_t}G = P_t U_t,\qquad P_t := X_t-\bar X+C_t\quad(\text{symmetric}),

a system of cubics in :math:`\mathbf U` (THEORY.md section 5, "Reduced loss").

Two formulations are built, both with exact rational coefficients:

``gradient_system``
    The cubics :math:`P_tU_t=0` in the entries of :math:`\mathbf U`, optionally on the
    gauge slice "top :math:`k\times k` block of every :math:`U_t` lower triangular"
    (the fixed entries are set to zero and only the partial derivatives of :math:`G` in
    the free entries are kept: the critical points of :math:`G` restricted to the slice).
``invariant_system``
    The same critical points in the :math:`O(k)`-invariants :math:`X_t=U_tU_t^\top`
    (symmetric, :math:`d(d+1)/2` unknowns each): :math:`P_tX_t=0` and
    :math:`\mathrm{rank}\,X_t\le k` (all :math:`(k+1)`-minors vanish).  Over the reals
    :math:`P_tU_t=0\iff P_tU_tU_t^\top=0` (multiply by :math:`(P_tU_t)^\top` and take the
    trace), and a real symmetric :math:`X_t` is :math:`U_tU_t^\top` for a real
    :math:`U_t\in\mathbb R^{d\times k}` iff it is PSD of rank :math:`\le k`, unique up to
    :math:`U_t\mapsto U_tO_t` (first fundamental theorem for :math:`O(k)`).  So the real PSD
    solutions are exactly the critical :math:`O(k)^T`-orbits: for :math:`k=1` the sign
    orbits, for :math:`k\ge2` the positive-dimensional orbits, with no slice needed.

The task entries are read as the shortest decimal that rounds to the stored float
(``repr``), i.e. exactly the numbers written in a JSON/CSV input; :func:`exact_tasks`
returns them.
"""
from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import numpy as np

__all__ = ["exact_tasks", "gradient_system", "invariant_system", "PolySystem"]


def exact_tasks(tasks: np.ndarray) -> list:
    """The symmetric parts of the tasks as nested lists of :class:`fractions.Fraction`."""
    tasks = np.asarray(tasks, dtype=float)
    T, d, _ = tasks.shape
    q = [[[Fraction(repr(float(tasks[t, i, j]))) for j in range(d)] for i in range(d)] for t in range(T)]
    return [[[(q[t][i][j] + q[t][j][i]) / 2 for j in range(d)] for i in range(d)] for t in range(T)]


def float_tasks(S) -> np.ndarray:
    """The exact tasks of :func:`exact_tasks` as a float array ``(T, d, d)`` (the homotopy's target parameters)."""
    return np.array([[[float(x) for x in row] for row in M] for M in S])


class PolySystem:
    """A list of polynomials over QQ in named unknowns (a thin wrapper of sympy's sparse
    ``PolyElement``), with printers for msolve / PHCpack and exact evaluation helpers."""

    def __init__(self, ring, gens, names, polys):
        self.ring, self.gens, self.names = ring, list(gens), list(names)
        seen, out = set(), []
        for p in polys:
            if p != 0 and p not in seen:
                seen.add(p)
                out.append(p)
        self.polys = out

    @property
    def nvars(self) -> int:
        return len(self.names)

    def jacobian(self):
        return [[p.diff(x) for x in self.gens] for p in self.polys]

    @staticmethod
    def _fmt(p) -> str:
        return str(p).replace("**", "^")

    def msolve_text(self) -> str:
        return ",".join(self.names) + "\n0\n" + ",\n".join(self._fmt(p) for p in self.polys) + "\n"

    def phc_text(self) -> str:
        lines = [f"{len(self.polys)} {self.nvars}"]
        lines += [self._fmt(p) + ";" for p in self.polys]
        return "\n".join(lines) + "\n"


def _ring(names):
    from sympy.polys.domains import QQ
    from sympy.polys.rings import ring

    R, *gens = ring(",".join(names), QQ)
    return R, gens


def _qq(f: Fraction):
    from sympy.polys.domains import QQ

    return QQ(f.numerator, f.denominator)


def _centred(S, T, d):
    Sbar = [[sum(S[t][i][j] for t in range(T)) / T for j in range(d)] for i in range(d)]
    return [[[_qq(Sbar[i][j] - S[t][i][j]) for j in range(d)] for i in range(d)] for t in range(T)]


def _P(X, C, R, T, d):
    from sympy.polys.domains import QQ

    invT = QQ(1, T)
    Xbar = [[sum((X[t][i][j] for t in range(T)), R(0)) * invT for j in range(d)] for i in range(d)]
    return [[[X[t][i][j] - Xbar[i][j] + C[t][i][j] for j in range(d)] for i in range(d)] for t in range(T)]


def u_name(t, i, l):
    return f"u{t}_{i}_{l}"


def slice_fixed(d: int, k: int, gauge: bool) -> set:
    """Entries ``(i, l)`` of each U_t fixed to zero on the slice (strict upper triangle of the top block)."""
    if not gauge or k < 2:
        return set()
    return {(i, l) for l in range(k) for i in range(min(l, d))}


def gradient_system(S, T: int, d: int, k: int, *, gauge: bool = True) -> PolySystem:
    r""":math:`\partial G/\partial U_t[i,l]/2 = (P_tU_t)_{il}` for the free entries.

    With ``gauge`` and :math:`k\ge2`, the entries above the diagonal of the top
    :math:`k\times k` block of each :math:`U_t` are zero and their equations dropped.
    """
    fixed = slice_fixed(d, k, gauge)
    free = [(t, i, l) for t in range(T) for l in range(k) for i in range(d) if (i, l) not in fixed]
    names = [u_name(*f) for f in free]
    R, gens = _ring(names)
    var = dict(zip(free, gens))
    U = [[[var.get((t, i, l), R(0)) for l in range(k)] for i in range(d)] for t in range(T)]
    X = [[[sum((U[t][i][l] * U[t][j][l] for l in range(k)), R(0)) for j in range(d)] for i in range(d)]
         for t in range(T)]
    P = _P(X, _centred(S, T, d), R, T, d)
    polys = [sum((P[t][i][j] * U[t][j][l] for j in range(d)), R(0)) for (t, i, l) in free]
    sysm = PolySystem(R, gens, names, polys)
    sysm.free = free
    sysm.polys = polys  # keep one equation per free unknown, in order (square system)
    return sysm


def on_support(g: PolySystem, blocks) -> tuple[list, list, list]:
    """The gradient system ``g`` (from :func:`gradient_system`) restricted to the tasks in
    ``blocks``: the unknowns of every other block set to zero.  Returns ``(keep, polys,
    names)``: the indices of the kept unknowns (one equation each, in order, so the system
    stays square) and their equations and names."""
    keep = [m for m, f in enumerate(g.free) if f[0] in blocks]
    drop = [g.gens[m] for m, f in enumerate(g.free) if f[0] not in blocks]
    polys = []
    for m in keep:
        p = g.polys[m]
        for x in drop:
            p = p.subs(x, 0)
        polys.append(p)
    return keep, polys, [g.names[m] for m in keep]


def x_index(d: int):
    return [(i, j) for i in range(d) for j in range(i, d)]


def invariant_system(S, T: int, d: int, k: int) -> PolySystem:
    r""":math:`P_tX_t=0` and the :math:`(k+1)`-minors of :math:`X_t` in the unknowns
    :math:`X_t[i,j]`, :math:`i\le j`."""
    import sympy

    idx = x_index(d)
    names = [f"x{t}_{i}_{j}" for t in range(T) for (i, j) in idx]
    R, gens = _ring(names)
    it = iter(gens)
    X = [[[None] * d for _ in range(d)] for _ in range(T)]
    for t in range(T):
        for (i, j) in idx:
            v = next(it)
            X[t][i][j] = v
            X[t][j][i] = v
    P = _P(X, _centred(S, T, d), R, T, d)
    polys = []
    for t in range(T):
        for i in range(d):
            for j in range(d):
                polys.append(sum((P[t][i][m] * X[t][m][j] for m in range(d)), R(0)))
        if k < d:
            for rows in combinations(range(d), k + 1):
                for cols in combinations(range(d), k + 1):
                    if rows <= cols:  # X_t symmetric: the (cols, rows) minor is the same
                        M = sympy.Matrix([[X[t][r][c].as_expr() for c in cols] for r in rows])
                        polys.append(R(M.det(method="berkowitz").expand()))
    return PolySystem(R, gens, names, polys)
