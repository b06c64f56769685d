"""The exact-rational verifier (``theory/_independent.py``) pinned where its bookkeeping could
go wrong silently: the O(k) orbit generators it projects out are U_t (E_ij - E_ji) in the
verifier's own flat order.
"""
from __future__ import annotations

import numpy as np
import pytest



@pytest.mark.parametrize("T, d, k", [(2, 3, 2), (3, 3, 2), (2, 5, 3)])
def test_exact_orbit_generators_are_u_t_times_the_antisymmetric_basis(T, d, k):
    """Y_{t,ij} = U_t (E_ij - E_ji), flattened in (t, q, l) order, for every t and i < j; sizes
    where t d k and q k + l share bits (d k = 6, 15), so that index arithmetic is exercised."""
    from fractions import Fraction

    from theory._independent import _generators

    rng = np.random.default_rng(T * d * k)
    Uf = rng.integers(-9, 10, size=(T, d, k))
    U = [[[Fraction(int(v)) for v in row] for row in Ut] for Ut in Uf]
    got = _generators(U)
    want = []
    for t in range(T):
        for i in range(k):
            for j in range(i + 1, k):
                E = np.zeros((k, k), dtype=int)
                E[i, j], E[j, i] = 1, -1
                Z = np.zeros((T, d, k), dtype=int)
                Z[t] = Uf[t] @ E
                want.append([Fraction(int(v)) for v in Z.ravel()])
    assert got == want and len(got) == T * k * (k - 1) // 2


def _taylor_dict():
    import landscape as ls
    from landscape.certificates import taylor_certificate

    inst = ls.random_instance(np.random.default_rng(0), 2, 2, 1)
    return taylor_certificate(inst.problem, inst.U_star, witness=inst.U_star).to_dict()


@pytest.mark.parametrize("field,value,reason", [
    ("point", [[[0.5], [0.25, 1.0]], [[1.0], [2.0]]], "rectangular"),  # a ragged row
    ("point", [[[0.5], [0.25]], [[1.0]]], "rectangular"),               # a short task
    ("point", [], "rectangular"),
    ("point", [[[]], [[]]], "rectangular"),                             # k = 0
    ("point", "0.5", "rectangular"),
    ("tasks", [[[1.0, 0.0], [0.0, 1.0]]], "the tasks are not 2 x 2 x 2"),
    ("tasks", [[[1.0, 0.0], [0.0]], [[1.0, 0.0], [0.0, 1.0]]], "the tasks are not 2 x 2 x 2"),
    ("witness", [[[0.5], [0.25, 1.0]], [[1.0], [2.0]]], "the witness is not 2 x 2 x 1"),
    ("witness", [[0.5, 0.25], [1.0, 2.0]], "the witness is not 2 x 2 x 1"),
])
def test_the_exact_verifier_refuses_arrays_that_are_not_rectangular(field, value, reason):
    """A stored point or task stack of the wrong shape (ragged, empty, a string) is refused
    with its reason before any arithmetic: read as nested lists, a ragged point would have
    its k taken from its first row and the other rows read short or past their end."""
    from theory._independent import verify_taylor_exact

    data = _taylor_dict()
    assert verify_taylor_exact(data).ok
    rep = verify_taylor_exact({**data, field: value})
    assert not rep.ok and reason in rep.reason


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_penalty_adds_c_y_y_transpose_for_every_orbit_generator(k):
    """H + c sum_y y y^T over the T k (k - 1) / 2 generators U_t (E_ij - E_ji), for every k
    (k = 3 included: three generators per task), nothing for k = 1; H itself unchanged."""
    from fractions import Fraction

    from theory._independent import _generators, penalised_hessian

    T, d = 2, 4
    rng = np.random.default_rng(k)
    U = [[[Fraction(int(v)) for v in row] for row in Ut] for Ut in rng.integers(-3, 4, size=(T, d, k))]
    n = T * d * k
    H = [[Fraction(int(v)) for v in row] for row in rng.integers(-5, 6, size=(n, n))]
    c = Fraction(7, 3)
    Y = np.array([[float(v) for v in y] for y in _generators(U)]).reshape(-1, n)
    assert Y.shape[0] == T * k * (k - 1) // 2
    got = penalised_hessian(H, U, c)
    want = np.array(H, dtype=float) + float(c) * Y.T @ Y
    np.testing.assert_allclose(np.array(got, dtype=float), want, rtol=1e-15, atol=1e-12)
    assert penalised_hessian(H, U, Fraction(0)) == H and got is not H


def test_the_verifiers_reports_are_frozen():
    """A verifier's report cannot be edited after the fact (its checks, values and reason)."""
    import dataclasses

    from theory._independent import IndependentReport
    from theory._independent_fp import FpIndependentReport

    for report in (IndependentReport({"a": True}), FpIndependentReport({"a": True})):
        with pytest.raises(dataclasses.FrozenInstanceError):
            report.reason = "edited"


@pytest.mark.parametrize("M, psd", [
    ([[2, 3], [3, 4]], False),          # det -1: floor division 3 // 2 would make it 2 * 1 = 2
    ([[2, 3], [3, 5]], True),           # det 1
    ([[4, 6], [6, 9]], True),           # det 0 exactly (rank one)
    ([[3, 1, 1], [1, 3, 1], [1, 1, 3]], True),
    ([[1, 2, 0], [2, 5, 3], [0, 3, 4]], False),  # the 3 x 3 determinant is -5, every 2 x 2 minor >= 0
    ([[0, 0], [0, -1]], False), ([[0, 1], [1, 0]], False), ([[0, 0], [0, 0]], True)])
def test_exact_psd_test_uses_exact_elimination_on_rationals(M, psd):
    """All principal minors >= 0, computed by elimination on Fractions whose pivot ratios are
    not integers (3/2, 1/3): exact rational division, not a floor, decides the verdict."""
    from fractions import Fraction

    from theory._independent import _is_psd_small

    F = [[Fraction(v) for v in row] for row in M]
    assert _is_psd_small(F) is psd
    assert _is_psd_small([[v / 7 for v in row] for row in F]) is psd  # scaling by 1/7 keeps the verdict


@pytest.mark.parametrize("method", ["arb", "fp"])
def test_a_certificate_without_a_witness_is_verified_independently_as_a_local_minimum(method):
    """At a global minimiser no witness is searched; both independent verifiers re-derive the
    verdict from the exact margins without a C2 (no witness: never 'spurious') and accept it,
    and a document claiming 'spurious' there is refused."""
    import json

    from landscape import random_instance
    from landscape.certificates import VERDICT_LOCAL_MIN, VERDICT_SPURIOUS
    from theory._independent import verify_taylor_exact
    from theory._independent_fp import verify_fp_independent

    inst = random_instance(np.random.default_rng(0), 3, 3, 1)
    from landscape.certificates import taylor_certificate

    cert = taylor_certificate(inst.problem, inst.U_star, rng=np.random.default_rng(0), method=method)
    verify = verify_taylor_exact if method == "arb" else verify_fp_independent
    assert cert.witness is None and cert.margins["C2"] == -np.inf and cert.verdict == VERDICT_LOCAL_MIN
    assert cert.margins["Cq"] >= 0 and cert.margins["C1"] > 0  # the branch that decides between the two
    assert verify(json.loads(cert.to_json())).ok
    claimed = json.loads(cert.to_json())
    claimed["verdict"] = VERDICT_SPURIOUS
    assert "stored verdict follows from the exact margins" in verify(claimed).failed


def test_a_posteriori_bound_subtracts_the_whole_conversion_error(monkeypatch):
    """lambda_min(N 2^-2E) >= mu - res - dg - conv with conv >= ||F - N 2^-2E||_2 bounded by
    u' max_i sum_j |F_ij| (u' = 1 / (2^53 - 1)): with that row sum planted as 2^53 - 1 (and the
    residual's as 0) the bound is mu - 1 less only the subnormal and rounding terms."""
    from fractions import Fraction

    from theory import _independent_fp as I

    calls = []

    def planted(M, terms):
        calls.append(terms)
        return Fraction(2**53 - 1) if len(calls) == 1 else Fraction(0)

    monkeypatch.setattr(I, "_row_sum_bound", planted)
    N = np.array([[4, 0], [0, 4]], dtype=object)
    b = I.lambda_lower_a_posteriori(N, 1, 0.5)
    assert len(calls) == 2
    # F = N / 4 = I exactly, B = I / 2, dg = 0: b = mu - (0 + 8 n^2 eta/2) - 0 - (1 + 2 n eta/2), n = 2
    n, h = 2, I._HALF_ETA
    assert h == Fraction(1, 2**1075)
    assert b == Fraction(1, 2) - 8 * n * n * h - (1 + 2 * n * h)
