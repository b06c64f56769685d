"""Pins of the exact systems' printers (:mod:`landscape.enumeration._systems`): the text
handed to msolve and to PHCpack must be the very polynomials, read back exactly.

msolve's input: the unknowns on one line, the characteristic (0: over QQ) on the next,
then the polynomials separated by commas.  PHCpack's: ``equations unknowns`` on the first
line, then one polynomial per line, each closed by ``;``.  Both write powers as ``^``.
"""
from fractions import Fraction

import numpy as np
import pytest
import sympy

from landscape.enumeration._systems import exact_tasks, gradient_system, invariant_system


def tasks(seed, T, d):
    rng = np.random.default_rng(seed)
    return np.round(rng.standard_normal((T, d, d)), 2)


def read_back(system, lines):
    """Each line a polynomial of ``system``'s ring, written with ``^``."""
    return [system.ring.from_expr(sympy.sympify(line.replace("^", "**"))) for line in lines]


@pytest.mark.parametrize("build", [
    lambda S: gradient_system(S, 3, 2, 1),
    lambda S: gradient_system(S, 3, 2, 2),
    lambda S: invariant_system(S, 3, 2, 1),
], ids=["gradient k=1", "gradient slice k=2", "invariant k=1"])
def test_phc_and_msolve_texts_are_the_polynomials(build):
    S = exact_tasks(tasks(0, 3, 2))
    system = build(S)
    assert len(system.polys) > 1 and all(p != 0 for p in system.polys)

    head, *body = system.phc_text().split("\n")
    assert head == f"{len(system.polys)} {system.nvars}"
    assert body[-1] == "" and all(line.endswith(";") for line in body[:-1])
    assert read_back(system, [line[:-1] for line in body[:-1]]) == system.polys

    names, char, rest = system.msolve_text().split("\n", 2)
    assert names.split(",") == system.names and char == "0"
    assert rest.endswith("\n")
    assert read_back(system, rest[:-1].split(",\n")) == system.polys


def test_exact_tasks_are_the_symmetric_parts_of_the_written_decimals():
    A = np.array([[[0.1, 0.7], [0.3, -1.25]], [[2.0, -0.35], [0.05, 0.0]]])
    S = exact_tasks(A)
    for t in range(2):
        for i in range(2):
            for j in range(2):
                want = (Fraction(repr(float(A[t, i, j]))) + Fraction(repr(float(A[t, j, i])))) / 2
                assert S[t][i][j] == want and isinstance(S[t][i][j], Fraction)
    assert S[0][0][1] == Fraction(1, 2) and S[1][0][1] == Fraction(-3, 20)


@pytest.mark.parametrize("d, k, gauge, fixed", [
    (3, 2, True, {(0, 1)}),                      # the top 2 x 2 block's entry above the diagonal
    (4, 3, True, {(0, 1), (0, 2), (1, 2)}),      # the strict upper triangle of the top 3 x 3 block
    (3, 3, True, {(0, 1), (0, 2), (1, 2)}),
    (3, 1, True, set()),                         # k = 1: nothing to fix (O(1) is finite)
    (3, 2, False, set()),                        # no gauge: nothing fixed, whatever k
    (4, 3, False, set()),
])
def test_the_slice_fixes_the_strict_upper_triangle_of_the_top_block(d, k, gauge, fixed):
    from landscape.enumeration._systems import slice_fixed

    assert slice_fixed(d, k, gauge) == fixed


@pytest.mark.parametrize("T,d,k,gauge", [(3, 3, 2, True), (3, 3, 2, False), (2, 3, 1, True)])
def test_the_gradient_system_is_half_the_gradient_of_g_on_the_slice(T, d, k, gauge):
    """Evaluated at a U whose slice entries are 0, each polynomial of the gradient system is
    dG/dU_t[i, l] / 2 of the float objective at that U, for its free entry (t, i, l): the
    fixed entries enter the polynomials as 0."""
    from landscape import LoraMLProblem
    from landscape.enumeration._krawczyk import CompiledSystem

    raw = tasks(1, T, d)
    S = exact_tasks(raw)
    system = gradient_system(S, T, d, k, gauge=gauge)
    U = np.random.default_rng(2).standard_normal((T, d, k))
    fixed = {(i, l) for l in range(k) for i in range(l)} if gauge else set()
    for i, l in fixed:
        U[:, i, l] = 0.0
    assert [(t, i, l) for (t, i, l) in system.free if (i, l) in fixed] == []
    x = np.array([U[t, i, l] for (t, i, l) in system.free])
    got = CompiledSystem(system.polys, system.gens).fval(x)
    grad = LoraMLProblem(0.5 * (raw + np.swapaxes(raw, 1, 2)), k).reduced_grad(U)
    want = np.array([grad[t, i, l] / 2 for (t, i, l) in system.free])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("d, k", [(3, 1), (3, 2), (4, 2)])
def test_the_invariant_system_holds_every_k_plus_1_minor_of_each_x_t(d, k):
    """rank X_t <= k is imposed by all (k + 1) x (k + 1) minors of X_t (one per pair of row and
    column sets, rows <= cols, X_t symmetric): at d = 3, k = 2 that is det X_t itself."""
    from itertools import combinations

    T = 2
    system = invariant_system(exact_tasks(tasks(1, T, d)), T, d, k)
    sym = {n: sympy.Symbol(n) for n in system.names}
    polys = {system.ring.from_expr(p.as_expr()) for p in system.polys}
    for t in range(T):
        X = sympy.Matrix(d, d, lambda i, j: sym[f"x{t}_{min(i, j)}_{max(i, j)}"])
        sets = list(combinations(range(d), k + 1))
        for rows in sets:
            for cols in sets:
                if rows <= cols:
                    minor = X.extract(list(rows), list(cols)).det(method="berkowitz").expand()
                    if minor != 0:
                        assert system.ring.from_expr(minor) in polys, (t, rows, cols)
    if (d, k) == (3, 2):
        assert system.ring.from_expr(sympy.Matrix(3, 3, lambda i, j: sym[f"x0_{min(i, j)}_{max(i, j)}"]).det()) in polys


def test_the_gradient_system_is_on_the_gauge_slice_unless_told_otherwise():
    """By default (k = 2) the strict upper triangle of each U_t's top block is fixed to 0 and
    its equations dropped: T fewer unknowns and equations than without the gauge."""
    S = exact_tasks(np.round(np.random.default_rng(0).standard_normal((2, 3, 3)), 1))
    plain, gauged = gradient_system(S, 2, 3, 2, gauge=False), gradient_system(S, 2, 3, 2, gauge=True)
    default = gradient_system(S, 2, 3, 2)
    assert len(default.gens) == len(gauged.gens) == len(plain.gens) - 2
    assert len(default.polys) == len(gauged.polys) == len(plain.polys) - 2
