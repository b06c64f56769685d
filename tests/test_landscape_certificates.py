"""Certificates of spurious local minima (THEORY.md section 8): rigour, verdicts, invariance,
re-verification and tampering."""
from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import root

from landscape import (
    Certificate,
    CertificateNotApplicable,
    CertificateTooLarge,
    LoraMLProblem,
    epsilon_net_certificate,
    f2_spurious_instance,
    random_instance,
    taylor_certificate,
    verify_certificate,
)
from landscape.certificates import (
    VERDICT_LOCAL_MIN,
    VERDICT_NONE,
    VERDICT_SPURIOUS,
    net_size_estimate,
    polish_critical_point,
)
from landscape.certificates.enclosures import _arb_hessian, _arb_state, _arb_to_mid
from landscape.certificates.net import _interval_reduced_loss
from landscape._interval import IntervalArray, arb_precision
from landscape._objective import unvec_factors, vec_factors

# THEORY.md section 8, certified example: published numbers and the precision they are
# quoted to (4-5 significant digits).
F2_G = 9.8007e-4
F2_LAMBDA = 0.035266
F2_M = 2.10
F2_R = 2.1e-3
F2_MARGIN_C1 = 1.9e-5
F2_REL = 5e-4  # the quoted digits of G and lambda
F2_REL_COARSE = 0.05  # m, r and the margin are quoted to two digits


def _random_orthogonal(rng: np.random.Generator, k: int) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((k, k)))
    return Q * np.sign(np.diag(R))


def _rotate(U: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.stack([U[t] @ _random_orthogonal(rng, U.shape[2]) for t in range(U.shape[0])])


@pytest.fixture(scope="module")
def f2():
    inst, U0 = f2_spurious_instance()
    return inst, U0, taylor_certificate(inst.problem, U0)


@pytest.fixture(scope="module")
def k2_spurious():
    """The F.2 point embedded in a k = 2, d = 6 problem: block-diagonal tasks, with the
    second block a global minimum of another instance.  Spurious for the joint problem."""
    f2_inst, U0 = f2_spurious_instance()
    other = random_instance(np.random.default_rng(1), 3, 3, 1)
    tasks = np.zeros((3, 6, 6))
    U = np.zeros((3, 6, 2))
    tasks[:, :3, :3] = f2_inst.problem.tasks
    tasks[:, 3:, 3:] = other.problem.tasks
    U[:, :3, 0] = U0[:, :, 0]
    U[:, 3:, 1] = other.U_star[:, :, 0]
    problem = LoraMLProblem(tasks, 2)
    return problem, U, taylor_certificate(problem, U)


@pytest.fixture(scope="module")
def toy_net():
    """T = 3, d = 2, k = 1 (n = 6): the ellipsoid net certifies the global minimum as a
    local minimum (not spurious)."""
    inst = random_instance(np.random.default_rng(0), 2, 3, 1)
    cert = epsilon_net_certificate(inst.problem, inst.U_star, shape="ellipsoid", witness=inst.U_star)
    return inst, cert


# --------------------------------------------------------------------------------------
# Interval arithmetic
# --------------------------------------------------------------------------------------
_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(a=_finite, b=_finite, c=st.floats(min_value=1e-3, max_value=1e3))
def test_interval_operations_enclose_exact_results(a, b, c):
    A, B, Cc = IntervalArray([a]), IntervalArray([b]), IntervalArray([c])
    fa, fb, fc = Fraction(a), Fraction(b), Fraction(c)
    for interval, exact in [
        (A + B, fa + fb),
        (A - B, fa - fb),
        (A * B, fa * fb),
        (A / Cc, fa / fc),
        (A.square(), fa * fa),
        (A * 0.3, fa * Fraction(0.3)),
    ]:
        assert Fraction(float(interval.lo[0])) <= exact <= Fraction(float(interval.hi[0]))
    s = Cc.sqrt()
    assert Fraction(float(s.lo[0])) ** 2 <= fc <= Fraction(float(s.hi[0])) ** 2


@pytest.mark.parametrize("d,T,k", [(2, 3, 1), (3, 2, 2)])
def test_interval_loss_encloses_arb_loss(d, T, k):
    """k = 2 too: U_t U_t^T summed over the adapter's columns."""
    inst = random_instance(np.random.default_rng(3), d, T, k)
    problem = inst.problem
    rng = np.random.default_rng(4)
    pts = vec_factors(inst.U_star)[None, :] + 0.1 * rng.standard_normal((20, problem.dim_U))
    enc = _interval_reduced_loss(problem.tasks, IntervalArray(pts), T, d, k)
    with arb_precision(256):
        for i in range(20):
            G = _arb_state(problem.tasks, unvec_factors(pts[i], T, d, k))["G"]
            assert enc.lo[i] <= float(G.mid()) <= enc.hi[i]
            assert enc.hi[i] - enc.lo[i] < 1e-12


def test_arb_hessian_matches_schur_complement():
    for d, T, k in [(3, 3, 1), (4, 2, 2), (3, 3, 2)]:
        inst = random_instance(np.random.default_rng(d + T + k), d, T, k)
        problem = inst.problem
        U = np.random.default_rng(7).standard_normal((T, d, k))
        with arb_precision(256):
            S = _arb_to_mid(_arb_hessian(_arb_state(problem.tasks, U), T, d, k))
        np.testing.assert_allclose(S, problem.schur_complement(U), atol=1e-12)


# --------------------------------------------------------------------------------------
# Taylor certificate: the F.2 instance
# --------------------------------------------------------------------------------------
def test_f2_is_certified_spurious_with_published_numbers(f2):
    _, _, cert = f2
    assert cert.kind == "taylor"
    assert cert.verdict == VERDICT_SPURIOUS and cert.certified
    G_lo, G_hi = cert.enclosures["G(U0)"]
    assert G_lo <= G_hi and G_hi - G_lo < 1e-18
    assert G_lo == pytest.approx(F2_G, rel=F2_REL, abs=0)
    assert cert.bounds["lambda_min_quotient_lower"] == pytest.approx(F2_LAMBDA, rel=F2_REL, abs=0)
    assert cert.bounds["lambda_min_quotient_lower"] <= cert.diagnostics["lambda_min_quotient_float"]
    assert cert.bounds["m_upper"] == pytest.approx(F2_M, rel=F2_REL_COARSE, abs=0)
    assert cert.radius == pytest.approx(F2_R, rel=F2_REL_COARSE, abs=0)
    assert cert.margins["C1"] == pytest.approx(F2_MARGIN_C1, rel=F2_REL_COARSE, abs=0)
    assert cert.margins["C2"] > 0.9 * F2_G
    assert cert.enclosures["G(witness)"][1] < 1e-20
    assert cert.bounds["grad_norm_upper"] < 1e-13


def test_f2_certificate_verifies_and_round_trips_json(f2):
    _, _, cert = f2
    assert cert.verify() and verify_certificate(cert)
    text = cert.to_json(indent=2)
    again = Certificate.from_json(text)
    assert again.verify()
    assert np.array_equal(again.point, cert.point) and np.array_equal(again.tasks, cert.tasks)
    assert dict(again.enclosures) == dict(cert.enclosures)
    assert dict(again.bounds) == dict(cert.bounds) and again.radius == cert.radius
    assert Certificate.from_json(json.loads(text)).verify()


def test_polishing_moves_the_published_point_by_little(f2):
    _, U0, cert = f2
    record = cert.diagnostics["polish"]
    assert record["grad_norms"][-1] < record["grad_norms"][0]
    assert np.linalg.norm(cert.point - U0) < 1e-9  # published to 12 digits


@pytest.mark.parametrize(
    "field, change",
    [
        ("point", lambda c: c.point + 1e-9),
        ("tasks", lambda c: c.tasks * (1 + 1e-12)),
        ("bounds", lambda c: {**c.bounds, "lambda_min_quotient_lower": 1.01 * c.bounds["lambda_min_quotient_lower"]}),
        ("bounds", lambda c: {**c.bounds, "grad_norm_upper": 0.0}),
        ("enclosures", lambda c: {**c.enclosures, "G(U0)": (2e-3, 3e-3)}),
        ("radius", lambda c: 100 * c.radius),
        ("margins", lambda c: {**c.margins, "C1": 1.0}),
        ("witness", lambda c: c.witness + 0.1),
    ],
)
def test_tampering_makes_verification_fail(f2, field, change):
    _, _, cert = f2
    bad = dataclasses.replace(cert, **{field: change(cert)})
    assert not bad.verify()


def test_upgrading_a_verdict_fails_verification():
    inst = random_instance(np.random.default_rng(11), 3, 3, 1)
    cert = taylor_certificate(inst.problem, inst.U_star)
    assert cert.verdict == VERDICT_LOCAL_MIN and cert.verify()
    assert not dataclasses.replace(cert, verdict=VERDICT_SPURIOUS).verify()


# --------------------------------------------------------------------------------------
# Taylor certificate: negative controls
# --------------------------------------------------------------------------------------
def _find_saddle(problem: LoraMLProblem, rng: np.random.Generator, tries: int = 200):
    """A non-trivial strict saddle of G by root finding on grad G (analytic Jacobian S)."""
    for _ in range(tries):
        x0 = rng.standard_normal(problem.dim_U)
        sol = root(problem.reduced_grad_flat, x0, jac=lambda x: problem.schur_complement(problem.unpack_factors(x)),
                   method="hybr")
        U = problem.unpack_factors(sol.x)
        U, _ = polish_critical_point(problem, U)
        if np.linalg.norm(problem.reduced_grad(U)) > 1e-10 or problem.reduced_loss(U) < 1e-8:
            continue
        if np.linalg.eigvalsh(problem.schur_complement(U))[0] < -1e-4 and np.all(np.abs(U) > 1e-6):
            return U
    raise AssertionError("no strict saddle found")


def test_global_minimum_is_never_certified_spurious():
    for seed, (d, T, k) in enumerate([(3, 3, 1), (4, 3, 1), (6, 3, 2), (3, 4, 1)]):
        inst = random_instance(np.random.default_rng(100 + seed), d, T, k)
        cert = taylor_certificate(inst.problem, inst.U_star)
        assert not cert.certified
        assert cert.verdict == VERDICT_LOCAL_MIN  # isolated modulo O(k) for T >= 3, d >= 3k
        assert cert.verify()


def test_t2_origin_is_a_critical_saddle_and_not_certified():
    inst = random_instance(np.random.default_rng(5), 3, 2, 1)
    problem = inst.problem
    U = np.zeros((2, 3, 1))
    assert np.linalg.norm(problem.reduced_grad(U)) == 0.0  # U_1 = U_2 = 0 is critical
    assert np.linalg.eigvalsh(problem.schur_complement(U))[0] < 0  # ... and a strict saddle
    cert = taylor_certificate(problem, U, polish=False)
    assert cert.verdict == VERDICT_NONE and "positive definite" in cert.reason
    assert cert.bounds["lambda_min_quotient_lower"] < 0 and cert.verify()


def test_t2_global_minima_continuum_is_not_certified():
    # T = 2: the global minima form an O(k, k) family, so S is singular on the quotient.
    inst = random_instance(np.random.default_rng(6), 3, 2, 1)
    cert = taylor_certificate(inst.problem, inst.U_star)
    assert cert.verdict == VERDICT_NONE and cert.verify()


def test_strict_saddle_from_root_finding_is_not_certified():
    problem = random_instance(np.random.default_rng(8), 3, 3, 1).problem
    U = _find_saddle(problem, np.random.default_rng(9))
    cert = taylor_certificate(problem, U)
    assert cert.verdict == VERDICT_NONE and cert.verify()


def test_non_critical_point_is_not_certified(f2):
    inst, U0, _ = f2
    U = U0 + 1e-3 * np.random.default_rng(10).standard_normal(U0.shape)
    cert = taylor_certificate(inst.problem, U, polish=False)
    assert cert.verdict == VERDICT_NONE and "(C1) fails" in cert.reason and cert.verify()
    # Polishing returns to the spurious point, and the certificate is about that point.
    polished = taylor_certificate(inst.problem, U)
    assert polished.certified and polished.diagnostics["polish"]["displacement"] > 1e-4


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(2, 4), T=st.integers(2, 4))
def test_random_points_are_never_certified(seed, d, T):
    rng = np.random.default_rng(seed)
    problem = random_instance(rng, d, T, 1).problem
    cert = taylor_certificate(problem, rng.standard_normal((T, d, 1)), polish=False)
    assert not cert.certified


# --------------------------------------------------------------------------------------
# Invariance (STYLE.md: U_t -> U_t O_t, task permutations)
# --------------------------------------------------------------------------------------
def test_f2_verdict_invariant_under_signs_and_permutations(f2):
    inst, U0, cert = f2
    rng = np.random.default_rng(12)
    for perm in ([1, 2, 0], [2, 1, 0]):
        signs = rng.choice([-1.0, 1.0], size=(3, 1, 1))
        other = taylor_certificate(inst.problem.permuted(perm), (signs * U0)[perm])
        assert other.verdict == cert.verdict
        assert other.margins["C1"] == pytest.approx(cert.margins["C1"], rel=1e-6, abs=0)
        assert other.bounds["lambda_min_quotient_lower"] == pytest.approx(
            cert.bounds["lambda_min_quotient_lower"], rel=1e-9, abs=0
        )


def test_k2_quotient_certifies_the_embedded_spurious_point(k2_spurious):
    problem, U, cert = k2_spurious
    assert problem.k == 2
    assert cert.verdict == VERDICT_SPURIOUS and cert.verify()
    assert cert.parameters["penalty"] > 0  # the orbit directions were quotiented out
    # Raw S has T k(k-1)/2 = 3 (near-)zero eigenvalues; the quotient bound is positive.
    raw = np.linalg.eigvalsh(problem.schur_complement(cert.point))
    assert np.sum(np.abs(raw) < 1e-10) == 3
    assert 0 < cert.bounds["lambda_min_quotient_lower"] <= cert.diagnostics["lambda_min_quotient_float"]


def test_k2_verdict_invariant_under_rotations_and_permutations(k2_spurious):
    problem, U, cert = k2_spurious
    rng = np.random.default_rng(13)
    perm = [2, 0, 1]
    other = taylor_certificate(problem.permuted(perm), _rotate(U, rng)[perm])
    assert other.verdict == cert.verdict == VERDICT_SPURIOUS
    assert other.bounds["lambda_min_quotient_lower"] == pytest.approx(
        cert.bounds["lambda_min_quotient_lower"], rel=1e-4, abs=0
    )


def test_k2_saddle_and_global_minimum_are_not_certified_spurious():
    inst = random_instance(np.random.default_rng(14), 6, 3, 2)
    problem = inst.problem
    at_min = taylor_certificate(problem, _rotate(inst.U_star, np.random.default_rng(15)))
    assert at_min.verdict == VERDICT_LOCAL_MIN and at_min.verify()
    at_zero = taylor_certificate(problem, np.zeros((3, 6, 2)), polish=False)
    assert at_zero.verdict == VERDICT_NONE and at_zero.verify()
    # A point with a rank-deficient factor: dependent orbit generators, honest refusal.
    U = inst.U_star.copy()
    U[0, :, 1] = 0.0
    assert not taylor_certificate(problem, U, polish=False).certified


def test_taylor_refuses_above_its_dimension_budget(f2):
    inst, U0, _ = f2
    with pytest.raises(CertificateTooLarge) as info:
        taylor_certificate(inst.problem, U0, max_dim=5)
    assert info.value.estimate == 9 and info.value.budget == 5 and "max_dim" in str(info.value)


# --------------------------------------------------------------------------------------
# Epsilon-net certificate
# --------------------------------------------------------------------------------------
def test_net_refuses_f2_with_an_astronomical_estimate(f2):
    inst, U0, _ = f2
    with pytest.raises(CertificateTooLarge) as info:
        epsilon_net_certificate(inst.problem, U0)
    err = info.value
    # THEORY.md section 8: about 1e26 points for the sphere.
    assert err.kind == "epsilon_net" and err.estimate > 1e20 and err.details.log10_covering > 20
    assert "10^" in str(err) and "budget" in str(err)
    # The ellipsoid removes the condition number, but F.2 is still over budget.
    with pytest.raises(CertificateTooLarge) as info:
        epsilon_net_certificate(inst.problem, U0, shape="ellipsoid")
    assert 1e6 < info.value.estimate < 1e12


def test_net_size_estimate_matches_the_construction():
    est = net_size_estimate(3, 1.0, 0.5)
    p = math.ceil(math.sqrt(2) / 0.5) + 1
    assert est.points_per_axis == p and est.points == pytest.approx(6 * p**2)
    assert net_size_estimate(9, 2.1e-3, 2.1e-3 / 2000).log10_covering == pytest.approx(8 * math.log10(2000))


def test_net_certifies_a_toy_local_minimum(toy_net):
    inst, cert = toy_net
    assert cert.kind == "epsilon_net" and cert.verdict == VERDICT_LOCAL_MIN
    assert cert.margins["N1"] > 0 and cert.margins["N2"] < 0  # a global minimum: not spurious
    assert cert.parameters["net_points"] < 2_000_000
    assert cert.bounds["eps_effective_upper"] <= cert.parameters["requested_eps"] * (1 + 1e-12)
    assert cert.verify()
    again = Certificate.from_json(cert.to_json())
    assert again.verify()
    assert not dataclasses.replace(cert, bounds={**cert.bounds, "min_net_G_lower": 1.0}).verify()
    assert not dataclasses.replace(cert, point=cert.point + 1e-6).verify()


def test_net_gives_clear_verdicts_on_the_toy(toy_net):
    inst, _ = toy_net
    problem, U = inst.problem, inst.U_star
    with pytest.raises(CertificateTooLarge):
        epsilon_net_certificate(problem, U)  # the sphere pays kappa^(n-1)
    coarse = epsilon_net_certificate(problem, U, r=1e-2, eps=5e-3, witness=U)
    assert coarse.verdict == VERDICT_NONE and "(N1) fails" in coarse.reason
    # A saddle: nothing to certify on.
    with pytest.raises(CertificateNotApplicable):
        epsilon_net_certificate(problem, np.zeros_like(U), polish=False)


def test_net_refuses_k2():
    inst = random_instance(np.random.default_rng(16), 4, 3, 2)
    with pytest.raises(CertificateNotApplicable, match="k = 1"):
        epsilon_net_certificate(inst.problem, inst.U_star, 1e-3, 1e-4)


def test_uncertified_certificates_are_strict_json():
    inst = random_instance(np.random.default_rng(5), 3, 2, 1)
    cert = taylor_certificate(inst.problem, np.zeros((2, 3, 1)), polish=False)
    text = cert.to_json()
    assert "Infinity" not in text and "NaN" not in text
    again = Certificate.from_json(text)
    assert again.margins["C1"] == -math.inf and again.verify()


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 2))
def test_global_minimum_verdict_is_invariant_and_never_spurious(seed, k):
    rng = np.random.default_rng(seed)
    d, T = 3 * k, 3
    inst = random_instance(rng, d, T, k)
    base = taylor_certificate(inst.problem, inst.U_star, witness=inst.U_star)
    perm = rng.permutation(T)
    moved = taylor_certificate(inst.problem.permuted(perm), _rotate(inst.U_star, rng)[perm])
    assert not base.certified and not moved.certified
    assert base.verdict == moved.verdict


@pytest.mark.parametrize("factor", [-1e-9, -0.5, -2.0])
def test_a_k2_certificate_with_a_negative_penalty_does_not_verify(k2_spurious, factor):
    """c Y Y^T with c < 0 would lower the quotient bound's operator, not lift the orbit's zero
    modes: a stored negative penalty is refused, however small or large (the recomputation
    is never reached, so its claims cannot vouch for it)."""
    problem, U, cert = k2_spurious
    assert cert.verify()
    bad = dataclasses.replace(cert, parameters={**cert.parameters, "penalty": factor * cert.parameters["penalty"]})
    assert not bad.verify()


@pytest.mark.parametrize("pen", [-0.25, -1e-6])
def test_a_k2_certificate_recomputed_with_a_negative_penalty_does_not_verify(k2_spurious, pen):
    """A certificate made consistent with a negative penalty -- its enclosures, bounds,
    margins and verdict recomputed with c < 0 -- passes every recomputation; only the rule
    c >= 0 refuses it (S + c Y Y^T with c < 0 is no quotient of S)."""
    from landscape.certificates.common import _taylor_decide
    from landscape.certificates.data import ARB_PRECISION
    from landscape.certificates.enclosures import _witness_upper
    from landscape.certificates.taylor_arb import _taylor_bounds

    problem, U, cert = k2_spurious
    prec = int(cert.parameters.get("precision", ARB_PRECISION))
    U0 = np.asarray(cert.point)
    enc, bounds, _, diag = _taylor_bounds(problem.tasks, problem.k, U0, penalty=pen,
                                          shift=float(cert.parameters["shift"]), precision=prec)
    bounds["lambda_min_quotient_lower"] = diag["lambda_min_quotient_rigorous"]
    W_pair = None
    if cert.witness is not None:
        W_pair = _witness_upper(problem.tasks, np.asarray(cert.witness), prec)
        enc["G(witness)"] = W_pair
    margins, verdict, _ = _taylor_decide(dict(enc), dict(bounds), cert.radius, W_pair, prec)
    bad = dataclasses.replace(cert, parameters={**cert.parameters, "penalty": pen}, enclosures=enc,
                              bounds=bounds, margins=margins, verdict=verdict)
    assert not bad.verify()


def test_net_looks_for_a_witness_only_where_one_could_prove_spuriousness():
    """(N2) needs G(U0) - Lip r > G(W) >= 0: where the ball's lower bound G(U0) - Lip r is
    not positive no witness can help, and none is searched for; where it is positive the
    F.2 point's global minimum is found as a witness (coarse nets: eps = 2.5 r)."""
    inst, U0 = f2_spurious_instance()
    wide = epsilon_net_certificate(inst.problem, U0, r=1.0, eps=2.5)
    G0_lo = wide.enclosures["G(U0)"][0]
    assert G0_lo > 0 and G0_lo - wide.bounds["lipschitz_upper"] * 1.0 < 0
    assert wide.witness is None and "G(witness)" not in wide.enclosures
    narrow = epsilon_net_certificate(inst.problem, U0, r=1e-3, eps=2.5e-3)
    assert G0_lo - narrow.bounds["lipschitz_upper"] * 1e-3 > 0
    assert narrow.witness is not None and narrow.enclosures["G(witness)"][1] < G0_lo


def test_the_net_budget_counts_points_exactly_down_to_a_two_point_sphere():
    """n = 1 (T = d = k = 1): the sphere is two points; a budget of one point refuses it, a
    budget of two builds it (the budget is a count, not rounded up)."""
    P = LoraMLProblem(np.ones((1, 1, 1)), 1)
    with pytest.raises(CertificateTooLarge, match="needs about 10"):
        epsilon_net_certificate(P, np.ones((1, 1, 1)), r=1.0, eps=0.5, max_points=1, polish=False)
    cert = epsilon_net_certificate(P, np.ones((1, 1, 1)), r=1.0, eps=0.5, max_points=2, polish=False)
    assert cert.parameters["net_points"] == 2


def test_an_unpolished_certificate_records_no_polish_step(f2):
    """polish=False: the point is certified as given, and its record says so -- no step, no
    displacement, the given point's gradient norm."""
    inst, U0, _ = f2
    cert = taylor_certificate(inst.problem, U0, polish=False)
    rec = cert.diagnostics["polish"]
    assert rec["steps"] == 0 and rec["displacement"] == 0.0
    assert rec["grad_norms"] == [float(np.linalg.norm(inst.problem.reduced_grad(U0)))]
    assert np.array_equal(cert.point, U0)


def test_re_verifying_a_net_refuses_a_budget_one_point_short(toy_net):
    """Re-verification recomputes the net (2 n p^(n-1) points): within a budget of exactly that
    many points it succeeds, one point fewer and it is refused before any evaluation."""
    _, cert = toy_net
    n, p = cert.tasks.shape[0] * cert.tasks.shape[1] * cert.rank, int(cert.parameters["points_per_axis"])
    size = 2 * n * p ** (n - 1)
    assert size == cert.parameters["net_points"]
    assert verify_certificate(cert, max_points=size)
    assert not verify_certificate(cert, max_points=size - 1)
