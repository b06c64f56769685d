"""Exact symbolic agreement of the derivative formulas with sympy (THEORY.md section 5).

Two levels:
1. The Kronecker block formulas of eq. (34) and of the Schur complement, written in
   sympy with symbolic entries, equal sympy's own Hessian identically (the difference
   expands to the zero matrix).
2. The float implementation reproduces the symbolic Hessian *exactly* (bitwise) at
   points with small dyadic-rational entries, where every float64 operation of a
   degree-4 polynomial is exact.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from landscape import LoraMLProblem, commutation_matrix, vec_factors


def _symbolic(d, k, T):
    A = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"a{i}{j}"))
    Ast = [sp.Matrix(d, d, lambda i, j, t=t: sp.Symbol(f"s{t}_{i}{j}")) for t in range(T)]
    U = [sp.Matrix(d, k, lambda i, j, t=t: sp.Symbol(f"u{t}_{i}{j}")) for t in range(T)]
    vecA = list(A.T)  # column-major
    vecU = [list(Ut.T) for Ut in U]
    return A, Ast, U, vecA, vecU


def _sq_norm(M):
    return sp.Add(*[e**2 for e in M])


def _joint_loss(A, Ast, U):
    """Eq. (14): 1/2 sum_t ||A + U_t U_t^T - A*_t||_F^2."""
    return sp.Rational(1, 2) * sp.Add(*[_sq_norm(A + Ut * Ut.T - At) for Ut, At in zip(U, Ast)])


def _kron(X, Y):
    return sp.kronecker_product(X, Y)


def _blocks_sym(U, R, d, k):
    K = sp.Matrix(commutation_matrix(d, k).astype(int))
    I_d, I_k = sp.eye(d), sp.eye(k)
    B = _kron(U, I_d) + _kron(I_d, U) * K
    G = U.T * U
    C = _kron(2 * G, I_d) + _kron(I_k, R + R.T) + 2 * _kron(U.T, U) * K
    return B, C


SIZES = [(2, 1, 2), (2, 2, 2), (3, 1, 2), (2, 1, 3)]


@pytest.mark.parametrize("d,k,T", SIZES)
def test_eq34_block_formula_equals_sympy_hessian(d, k, T):
    A, Ast, U, vecA, vecU = _symbolic(d, k, T)
    L = _joint_loss(A, Ast, U)
    variables = vecA + [x for v in vecU for x in v]
    H_sym = sp.hessian(L, variables)
    # assemble eq. (34) from the Kronecker blocks
    n = d * d
    H_blk = sp.zeros(len(variables), len(variables))
    H_blk[:n, :n] = T * sp.eye(n)
    for t in range(T):
        R = A + U[t] * U[t].T - Ast[t]
        B, C = _blocks_sym(U[t], R, d, k)
        sl = slice(n + t * d * k, n + (t + 1) * d * k)
        H_blk[:n, sl] = B
        H_blk[sl, :n] = B.T
        H_blk[sl, sl] = C
    assert (H_sym - H_blk).expand() == sp.zeros(*H_sym.shape)


@pytest.mark.parametrize("d,k,T", [(2, 1, 2), (2, 2, 2), (2, 1, 3)])
def test_schur_formula_equals_sympy_hessian_of_reduced_loss(d, k, T):
    _, Ast, U, _, vecU = _symbolic(d, k, T)
    D = [Ast[t] - U[t] * U[t].T for t in range(T)]
    Dbar = sum(D, sp.zeros(d, d)) / T
    G = sp.Rational(1, 2) * sp.Add(*[_sq_norm(Dbar - Dt) for Dt in D])
    variables = [x for v in vecU for x in v]
    H_sym = sp.hessian(G, variables)
    m = d * k
    S = sp.zeros(T * m, T * m)
    Bs = []
    for t in range(T):
        R = Dbar - D[t]  # residual at A = A(U)
        B, C = _blocks_sym(U[t], R, d, k)
        Bs.append(B)
        S[t * m : (t + 1) * m, t * m : (t + 1) * m] = C
    for s_ in range(T):
        for t in range(T):
            S[s_ * m : (s_ + 1) * m, t * m : (t + 1) * m] -= Bs[s_].T * Bs[t] / T
    assert (H_sym - S).expand() == sp.zeros(*S.shape)


@pytest.mark.parametrize("d,k,T", SIZES)
def test_float_implementation_is_exact_at_dyadic_points(d, k, T):
    """Entries in {-2, -1.5, ..., 2}: every product/sum of degree <= 4 is exact in float64."""
    rng = np.random.default_rng(d * 100 + k * 10 + T)
    grid = np.arange(-4, 5) / 2.0
    tasks = rng.choice(grid, size=(T, d, d))
    A = rng.choice(grid, size=(d, d))
    Uv = rng.choice(grid, size=(T, d, k))
    P = LoraMLProblem(tasks, k)

    Asym, Ast, U, vecA, vecU = _symbolic(d, k, T)
    L = _joint_loss(Asym, Ast, U)
    variables = vecA + [x for v in vecU for x in v]
    subs = {}
    for t in range(T):
        for i in range(d):
            for j in range(d):
                subs[sp.Symbol(f"s{t}_{i}{j}")] = sp.Rational(str(tasks[t, i, j]))
            for j in range(k):
                subs[sp.Symbol(f"u{t}_{i}{j}")] = sp.Rational(str(Uv[t, i, j]))
    for i in range(d):
        for j in range(d):
            subs[sp.Symbol(f"a{i}{j}")] = sp.Rational(str(A[i, j]))
    H_exact = np.array(sp.hessian(L, variables).subs(subs), dtype=float)
    g_exact = np.array([sp.diff(L, v).subs(subs) for v in variables], dtype=float)
    assert np.array_equal(P.hessian(A, Uv), H_exact)
    assert np.array_equal(P.grad_flat(P.pack(A, Uv)), g_exact)
    assert P.loss(A, Uv) == float(L.subs(subs))
    # the matrix-free product reproduces the same exact values
    e = np.zeros(P.dim)
    e[-1] = 1.0
    assert np.array_equal(P.hvp_flat(P.pack(A, Uv), e), H_exact[:, -1])
    assert vec_factors(Uv).size == P.dim_U
