"""Floating-point Taylor certificate with a priori error bounds (landscape.certificates.taylor_fp).

Exact rational arithmetic (fractions) and high-precision eigenvalues (mpmath) are the
oracles; the F.2 instance of THEORY.md section 8, alone and embedded into d = 334
(T*d*k = 1002), is certified, re-verified from JSON, and tampered with.
"""
from __future__ import annotations

import json
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import landscape as ls
from landscape.certificates import taylor_fp as _rump
from landscape.certificates import (
    VERDICT_NONE,
    VERDICT_SPURIOUS,
    Certificate,
    CertificateNotApplicable,
    CertificateTooLarge,
    taylor_certificate,
)
from landscape._instances import f2_spurious_instance

from ._pin_tools import exact_schur as _exact_schur

#: Dimension of the embedded F.2 instance: T*d*k = 3 * 334 = 1002 >= 1000.
EMBED_D = 334


def _exact_residuals(tasks, u):
    T, d = u.shape
    A = [[[Fraction(float(tasks[t, i, j])) for j in range(d)] for i in range(d)] for t in range(T)]
    U = [[Fraction(float(x)) for x in u[t]] for t in range(T)]
    D = [[[A[t][i][j] - U[t][i] * U[t][j] for j in range(d)] for i in range(d)] for t in range(T)]
    Db = [[sum(D[t][i][j] for t in range(T)) / T for j in range(d)] for i in range(d)]
    R = [[[Db[i][j] - D[t][i][j] for j in range(d)] for i in range(d)] for t in range(T)]
    return R, U


def _float_entries(draw, shape, lo_exp=-30, hi_exp=30):
    n = int(np.prod(shape))
    # inside the certificate's input range [2^-400, 2^400] (tiny values become exact zeros)
    mant = draw(st.lists(st.floats(-4, 4, allow_nan=False, width=64).map(lambda x: x if abs(x) > 1e-3 else 0.0),
                         min_size=n, max_size=n))
    exps = draw(st.lists(st.integers(lo_exp, hi_exp), min_size=n, max_size=n))
    return (np.array(mant) * np.exp2(np.array(exps, dtype=float))).reshape(shape)


@st.composite
def small_problem(draw):
    T = draw(st.integers(2, 3))
    d = draw(st.integers(2, 3))
    tasks = _float_entries(draw, (T, d, d), -8, 8)
    u = _float_entries(draw, (T, d), -8, 8)
    return tasks, u


@settings(max_examples=12, deadline=None)
@given(small_problem())
def test_entrywise_bounds_contain_exact_values(case):
    """|R - R^| <= e, |S - S^| <= E, and G, ||grad G||, m lie in their enclosures,
    with R, S, G computed exactly in rationals from the same floats."""
    tasks, u = case
    T, d = u.shape
    res = _rump._residuals(tasks, u)
    R_hat, e = res.stack()
    R, U = _exact_residuals(tasks, u)
    for t in range(T):
        for i in range(d):
            for j in range(d):
                assert abs(R[t][i][j] - Fraction(float(R_hat[t, i, j]))) <= Fraction(float(e[t, i, j]))
    S = _exact_schur(R, U)
    for s, t, blk, E in _rump._schur_blocks(res):
        for i in range(d):
            for j in range(d):
                err = abs(S[s * d + i][t * d + j] - Fraction(float(blk[i, j])))
                assert err <= Fraction(float(E[i, j]))
    G = sum(x * x for Rt in R for row in Rt for x in row) / 2
    lo, hi = _rump._loss_bounds(res)
    assert Fraction(lo) <= G <= Fraction(hi)
    g = [sum((R[t][i][j] + R[t][j][i]) * U[t][j] for j in range(d)) for t in range(T) for i in range(d)]
    g_lo, g_up, _ = _rump._grad_norm_upper(res)
    gsq = sum(x * x for x in g)
    assert Fraction(g_lo) ** 2 <= gsq <= Fraction(g_up) ** 2
    m_sq = max(sum(x * x for x in U[t]) for t in range(T))
    assert m_sq <= Fraction(_rump._m_upper(u)) ** 2


def test_bounds_are_not_vacuous():
    """Negative control: the float residuals do carry rounding errors, so a zero error
    bound would be violated; the bound test above can fail."""
    rng = np.random.default_rng(3)
    tasks = rng.standard_normal((3, 3, 3))
    u = rng.standard_normal((3, 3))
    R_hat, _ = _rump._residuals(tasks, u).stack()
    R, _ = _exact_residuals(tasks, u)
    worst = max(abs(R[t][i][j] - Fraction(float(R_hat[t, i, j]))) for t in range(3) for i in range(3) for j in range(3))
    assert worst > 0


def test_schur_formula_is_the_core_schur_complement():
    rng = np.random.default_rng(0)
    tasks = rng.standard_normal((3, 5, 5))
    u = rng.standard_normal((3, 5))
    p = ls.LoraMLProblem(tasks, 1)
    S, _ = _rump._schur_float(_rump._residuals(tasks, u))
    np.testing.assert_allclose(S, p.schur_complement(u[:, :, None]), atol=1e-12)


def _vectorised_reference(tasks, u):
    """The float bounds by whole-array formulas (the certificate's arithmetic before it
    was built a block of rows at a time): residuals, their error bounds, the Schur
    complement with the row and column sums of its error bound, and the float sums that
    the loss and gradient bounds start from."""
    T, d = u.shape
    P = u[:, :, None] * u[:, None, :]
    D = tasks - P
    R = D.sum(axis=0) / T - D
    Pa = np.abs(u)[:, :, None] * np.abs(u)[:, None, :]
    rho = (np.abs(tasks) + Pa).sum(axis=0) / T + np.abs(tasks) + Pa
    e = _rump._err_factor(T + 4) * rho
    lo = np.maximum(np.abs(R) - e, 0.0).reshape(-1)
    hi = (np.abs(R) + e).reshape(-1)
    Rs = R + np.swapaxes(R, 1, 2)
    g_hat = np.einsum("tij,tj->ti", Rs, u)
    Z = e + np.swapaxes(e, 1, 2) + _rump._err_factor(d + 1) * (np.abs(R) + np.abs(np.swapaxes(R, 1, 2)))
    err = np.einsum("tij,tj->ti", Z, np.abs(u))
    th, cT = _rump._err_factor(d + 10), 2.0 / T
    gram, ua = u @ u.T, np.abs(u)
    gram_abs, eye = ua @ ua.T, np.eye(d)
    S, row, col = np.empty((T * d, T * d)), np.zeros(T * d), np.zeros(T * d)
    for s in range(T):
        for t in range(T):
            blk = -(cT * (gram[t, s] * eye + np.outer(u[t], u[s])))
            ab = cT * (gram_abs[t, s] * eye + np.outer(ua[t], ua[s]))
            if s == t:
                blk += 2.0 * gram[t, t] * eye + 2.0 * np.outer(u[t], u[t]) + (R[t] + R[t].T)
                ab += 2.0 * gram_abs[t, t] * eye + 2.0 * np.outer(ua[t], ua[t]) + (np.abs(R[t]) + np.abs(R[t]).T)
            E = th * ab
            if s == t:
                E += e[t] + e[t].T
            S[s * d:(s + 1) * d, t * d:(t + 1) * d] = blk
            row[s * d:(s + 1) * d] += E.sum(axis=1)
            col[t * d:(t + 1) * d] += E.sum(axis=0)
    return {"R": R, "e": e, "lo": float(lo @ lo), "hi": float(hi @ hi), "g_hat": g_hat, "err": err, "S": S,
            "E_sum_max": float(max(row.max(), col.max()))}


@settings(max_examples=10, deadline=None)
@given(small_problem(), st.integers(1, 12), st.integers(4, 9))
def test_blockwise_bounds_equal_the_whole_array_formulas(case, chunk, big_d):
    """Built a few rows at a time (any block size), the residuals, their error bounds,
    the Schur complement and every float sum the bounds start from are bit for bit those
    of the whole-array formulas, so that blocking changes no certificate.  Checked on the
    drawn tiny problems and on a random dense one of side ``big_d``."""
    import unittest.mock

    tasks, u = case
    rng = np.random.default_rng(chunk)
    cases = [(tasks, u), (rng.standard_normal((3, big_d, big_d)), rng.standard_normal((3, big_d)))]
    for tasks, u in cases:
        T, d = u.shape
        ref = _vectorised_reference(tasks, u)
        with unittest.mock.patch.object(_rump, "_CHUNK_ELEMS", chunk):
            res = _rump._residuals(tasks, u)
            assert len(res.chunks()) == -(-d // max(1, chunk // d))
            R, e = res.stack()
            S, e_norm = _rump._schur_float(res)
            loss = _rump._loss_bounds(res)
            grad = _rump._grad_norm_upper(res)
        assert np.array_equal(R, ref["R"]) and np.array_equal(e, ref["e"])
        assert np.array_equal(S, ref["S"])
        M = R.size
        assert e_norm == _rump._sum_up_eta(ref["E_sum_max"], T * d + 4, (T * d) ** 2)
        g = _rump._gamma(M + 1)
        low = (Fraction(ref["lo"]) / (1 + g) - M * _rump._ETA) / (1 + _rump._U) ** 2 / 2
        high = _rump._sum_up_eta(ref["hi"], M + 1, M) / (1 - _rump._U) ** 2 / 2
        assert loss == (_rump._down(max(low, Fraction(0))), _rump._up(high))
        gh = ref["g_hat"].reshape(-1)
        assert grad[2] == float(np.sqrt(gh @ gh))
        err_up = Fraction(float(np.max(ref["err"]))) / (1 - _rump._gamma(d + 4))
        bound = Fraction(_rump._sqrt_up(_rump._sum_up_eta(float(gh @ gh), gh.size + 1, gh.size)))
        assert grad[1] == _rump._up(bound + Fraction(_rump._sqrt_up(Fraction(gh.size))) * err_up)


def _mp_lambda_min(A_rows):
    mpmath.mp.dps = 50
    M = mpmath.matrix([[mpmath.mpf(x.numerator) / x.denominator for x in row] for row in A_rows])
    return min(mpmath.eigsy(M, eigvals_only=True))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([1e-3, 1e-8, 1e-12]), st.integers(3, 10))
def test_cholesky_bound_is_below_the_exact_smallest_eigenvalue(seed, gap, n):
    """Whenever the float Cholesky of A - mu I succeeds, the returned bound is at most
    lambda_min(A) (50-digit eigenvalues of the exact float matrix), also for nearly
    singular A and shifts just below lambda_min."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.r_[gap, rng.uniform(0.5, 2.0, n - 1)]
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    exact = _mp_lambda_min([[Fraction(float(x)) for x in row] for row in A])
    for mu in (float(exact) * (1 - 1e-3), float(exact) - 1e-14, -1.0):
        bound = _rump._cholesky_lower_bound(A.copy(), mu)
        if bound is not None:
            assert bound <= Fraction(str(mpmath.nstr(exact, 45)))


def test_cholesky_criterion_rejects_an_indefinite_matrix():
    """Negative control: lambda_min = -1e-9; a shift at or above lambda_min must not
    yield a positive bound (it fails, or bounds below -1e-9)."""
    rng = np.random.default_rng(1)
    n = 40
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * np.r_[-1e-9, rng.uniform(1, 2, n - 1)]) @ Q.T
    A = 0.5 * (A + A.T)
    for mu in (0.0, 1e-12, -1e-10):
        b = _rump._cholesky_lower_bound(A.copy(), mu)
        assert b is None or b < 0


@pytest.fixture(scope="module")
def f2():
    return f2_spurious_instance()


def test_fp_and_arb_paths_agree_on_f2_and_small_embeddings(f2):
    """Cross-check where both run (T*d*k <= 300): the same verdict, and both curvature
    bounds below the float smallest eigenvalue; the float one is at most the arb one up
    to its extra rounding terms."""
    inst, U0 = f2
    rng = np.random.default_rng(5)
    cases = [(inst.problem.tasks, U0, inst.U_star)]
    tasks, U, Us, _ = _rump.embed_spurious_instance(inst.problem.tasks, U0, inst.U_star, 20, rng)
    cases.append((tasks, U, Us))
    for tasks, U, Us in cases:
        p = ls.LoraMLProblem(tasks, 1)
        ca = taylor_certificate(p, U, witness=Us, method="arb")
        cf = taylor_certificate(p, U, witness=Us, method="fp")
        assert cf.kind == "taylor_fp" and ca.kind == "taylor"
        assert ca.verdict == cf.verdict == VERDICT_SPURIOUS
        lam = float(np.linalg.eigvalsh(p.schur_complement(cf.point))[0])
        la, lf = ca.bounds["lambda_min_quotient_lower"], cf.bounds["lambda_min_quotient_lower"]
        assert lf <= lam and la <= lam
        assert lf <= la * (1 + 1e-9) and lf >= la * (1 - 1e-6)
        assert cf.verify()


@pytest.fixture(scope="module")
def embedded(f2):
    inst, U0 = f2
    tasks, U, Us, lam_K = _rump.embed_spurious_instance(inst.problem.tasks, U0, inst.U_star, EMBED_D,
                                                         np.random.default_rng(11))
    p = ls.LoraMLProblem(tasks, 1)
    cert = taylor_certificate(p, U, witness=Us)
    return p, cert, lam_K


def test_embedded_f2_minimum_is_certified_and_reverified(embedded):
    p, cert, lam_K = embedded
    assert p.dim_U >= 1000
    assert lam_K > 0  # the block argument's second factor is positive definite
    assert cert.kind == "taylor_fp" and cert.verdict == VERDICT_SPURIOUS and cert.certified
    assert cert.margins["C1"] > 0 and cert.margins["C2"] > 0
    text = cert.to_json()
    again = Certificate.from_json(text)
    assert np.array_equal(again.tasks, cert.tasks) and np.array_equal(again.point, cert.point)
    assert again.verify()
    # the curvature bound of the embedded problem is the small one (S + S_w with larger S_w)
    assert abs(cert.bounds["lambda_min_quotient_lower"] - 0.035266) < 1e-5


def _tampered(cert, **changes):
    data = json.loads(cert.to_json())
    for key, fn in changes.items():
        data[key] = fn(data[key])
    return Certificate.from_json(data)


def test_embedded_certificate_detects_tampering(embedded):
    """Negative controls: a perturbed task entry, point or witness, a stronger claimed
    curvature bound or a changed verdict must fail re-verification."""
    _, cert, _ = embedded

    def bump_array(delta, where=(0, 0, 0)):
        def f(enc):
            from landscape.runtime.store import decode, encode

            a = decode(enc).copy()
            a[where] += delta
            return encode(a)
        return f

    assert not _tampered(cert, tasks=bump_array(1e-6)).verify()
    assert not _tampered(cert, point=bump_array(1e-3, (1, 5, 0))).verify()
    assert not _tampered(cert, witness=bump_array(1e-2, (0, 1, 0))).verify()
    lam = cert.bounds["lambda_min_quotient_lower"]
    assert not _tampered(cert, bounds=lambda b: {**b, "lambda_min_quotient_lower": lam * 1.01}).verify()
    assert not _tampered(cert, verdict=lambda v: VERDICT_NONE).verify()


def test_a_strict_saddle_is_not_certified(f2):
    """Negative control: a strict saddle of the F.2 problem, embedded like the minimum
    (criticality and the negative eigenvalue survive the embedding), is not certified."""
    inst, _ = f2
    p = inst.problem
    results = ls.search(p, rng=np.random.default_rng(2), n_starts=24, methods=["root-hybr"], spectrum=True)
    saddles = [r for r in results if r.spectrum.lambda_min_quotient < -1e-3 and r.grad_norm < 1e-10
               and np.all(np.abs(r.point) > 0)]
    assert saddles, "the root finder should land on a strict saddle"
    U = saddles[0].point
    tasks, Ub, Us, _ = _rump.embed_spurious_instance(p.tasks, U, inst.U_star, EMBED_D, np.random.default_rng(4))
    cert = taylor_certificate(ls.LoraMLProblem(tasks, 1), Ub, witness=Us)
    assert cert.kind == "taylor_fp"
    assert cert.verdict == VERDICT_NONE and not cert.certified
    assert cert.bounds["lambda_min_quotient_lower"] < 0 or cert.bounds["lambda_min_quotient_lower"] == -np.inf


def test_refusals():
    rng = np.random.default_rng(0)
    tiny = np.zeros((3, 3, 1))
    tiny[0, 0, 0] = 1e-310  # subnormal: products could underflow, the bounds would not hold
    with pytest.raises(_rump._NotApplicable):
        _rump.fp_taylor_bounds(rng.standard_normal((3, 3, 3)), tiny, lam_estimate=0.0)
    p2 = ls.LoraMLProblem(rng.standard_normal((3, 4, 4)), 2)
    with pytest.raises(CertificateNotApplicable):
        taylor_certificate(p2, rng.standard_normal((3, 4, 2)), method="fp")
    p1 = ls.LoraMLProblem(rng.standard_normal((3, 4, 4)), 1)
    with pytest.raises(CertificateTooLarge):
        _rump.fp_taylor_certificate(p1, rng.standard_normal((3, 4, 1)), max_dim=5)


@pytest.mark.parametrize("scale", [1e-3, 0.5, 7.0])
def test_the_largest_factor_norm_bound_is_tight_also_below_one(scale):
    """m_upper encloses max_t ||u_t|| from above and within a few ulps, whether the
    factors are below or above 1 (an initial maximum of 1 would bound small factors by 1)."""
    u = scale * np.array([[0.6, 0.8, 0.0], [0.0, 0.3, 0.4]])
    m = _rump._m_upper(u)
    assert scale <= m <= scale * (1 + 1e-14)
