"""Soundness of the certificates (THEORY.md section 8) at their boundaries.

A sound certificate must *refuse* where the exact inequality fails by a few units in the
last place and *accept* where it holds by as little; its certified lambda bound must lie
below the float lambda_min and close to it; its eps-net Lipschitz bound must dominate the
gradient actually met on the ball.  Exact values come from :mod:`fractions` (a float is an
exact rational) or from ``theory._independent`` (no code shared with the certificate).

Each term of (C1), (C2), (Cq) and each outward rounding is load-bearing here: the
helpers ``check_*`` below are also called by tests/test_theory_negative_controls.py on
deliberately broken code, where they must fail.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from landscape import (
    LoraMLProblem,
    epsilon_net_certificate,
    f2_spurious_instance,
    random_instance,
    reduced_spectrum,
    taylor_certificate,
)
import landscape.certificates.common as _cert
import landscape.certificates.net as _net
import landscape._interval as _ival
from landscape.certificates import ARB_PRECISION, VERDICT_LOCAL_MIN, VERDICT_NONE, VERDICT_SPURIOUS
from landscape._interval import IntervalArray, arb_precision
from landscape._objective import vec_factors
from theory._independent import exact_reduced_loss, verify_taylor_exact

#: Units in the last place by which the boundary instances miss or clear the exact
#: inequality: far below anything a correct rounding could absorb (arb at 256 bits
#: computes the margins exactly; the final float is within 1 ulp), yet a dropped term
#: (always >= 1e-12 relative here) flips the verdict.
ULPS = 4

#: The certified lambda lower bound sits below the float lambda_min by the Cholesky shift
#: (1e-6 relative, CHOL_SHIFT_REL) plus residual bounds of order n eps ||H||: 1e-5
#: relative is the slack stated for it.
LAMBDA_SLACK = 1e-5

#: Float lambda_min is itself off by ~n eps ||S|| (eigh backward error); the certified
#: bound may not exceed it by more than this relative amount.
LAMBDA_FLOAT_ERR = 1e-10

#: An outward-rounded interval endpoint is at most 2^-51 |x| (widening) + half an ulp
#: (rounding of the operation) from the exact value: at most ~4.5 ulps.
TIGHT_ULPS = 5


def _nudge(x: float, ulps: int) -> float:
    """``x`` moved by ``ulps`` units in the last place (sign gives the direction)."""
    toward = math.inf if ulps > 0 else -math.inf
    for _ in range(abs(ulps)):
        x = float(np.nextafter(x, toward))
    return x


def _decide(lam, m, g, r, G_lo=1.0, W_hi=None):
    enc = {"G(U0)": (G_lo, G_lo + 1e-3)}
    bounds = {"lambda_min_quotient_lower": lam, "m_upper": m, "grad_norm_upper": g}
    wp = None if W_hi is None else (0.0, W_hi)
    return _cert._taylor_decide(enc, bounds, r, wp, ARB_PRECISION)  # looked up at call time


# --------------------------------------------------------------------------------------
# (C1), (Cq), (C2) at the boundary: exact arithmetic on constructed bounds
# --------------------------------------------------------------------------------------
def _random_boundary_data(rng):
    lam = float(rng.uniform(0.01, 1.0))
    m = float(rng.uniform(0.5, 3.0))
    r = float(lam / (8 * m) * rng.uniform(0.3, 1.0))
    return lam, m, r


def check_c1_boundary(rng, cases: int = 6) -> None:
    """(C1): g a few ulps above lambda r/2 - 2 m r^2 -> refuse; below -> accept."""
    for _ in range(cases):
        lam, m, r = _random_boundary_data(rng)
        q = Fraction(lam) * Fraction(r) / 2 - 2 * Fraction(m) * Fraction(r) ** 2
        g_star = float(q)
        g_refuse, g_accept = _nudge(g_star, ULPS), _nudge(g_star, -ULPS)
        assert Fraction(g_refuse) > q > Fraction(g_accept)
        margins, verdict, reason = _decide(lam, m, g_refuse, r)
        assert verdict == VERDICT_NONE and "(C1) fails" in reason, reason
        assert margins["C1"] <= 0.0
        margins, verdict, _ = _decide(lam, m, g_accept, r)
        assert verdict == VERDICT_LOCAL_MIN and margins["C1"] > 0.0


def check_cq_boundary(rng, cases: int = 6) -> None:
    """(Cq): r a few ulps above lambda/(4m) -> refused for the cubic term; below -> accepted."""
    for _ in range(cases):
        lam, m, _ = _random_boundary_data(rng)
        r_star = Fraction(lam) / (4 * Fraction(m))
        r_refuse, r_accept = _nudge(float(r_star), ULPS), _nudge(float(r_star), -ULPS)
        margins, verdict, reason = _decide(lam, m, 0.0, r_refuse)
        assert verdict == VERDICT_NONE and "cubic" in reason, reason
        assert margins["Cq"] < 0.0
        margins, verdict, _ = _decide(lam, m, 0.0, r_accept)
        assert margins["Cq"] >= 0.0 and verdict == VERDICT_LOCAL_MIN


def check_c2_boundary(rng, cases: int = 6) -> None:
    """(C2): G(witness) a few ulps above G_lo - g r -> not spurious; below -> spurious."""
    for _ in range(cases):
        lam, m, r = _random_boundary_data(rng)
        q = Fraction(lam) * Fraction(r) / 2 - 2 * Fraction(m) * Fraction(r) ** 2
        g = float(q) * float(rng.uniform(0.1, 0.5))
        G_lo = float(rng.uniform(1e-3, 1.0))
        w_star = Fraction(G_lo) - Fraction(g) * Fraction(r)
        w_refuse, w_accept = _nudge(float(w_star), ULPS), _nudge(float(w_star), -ULPS)
        margins, verdict, _ = _decide(lam, m, g, r, G_lo=G_lo, W_hi=w_refuse)
        assert verdict == VERDICT_LOCAL_MIN and margins["C2"] <= 0.0
        margins, verdict, _ = _decide(lam, m, g, r, G_lo=G_lo, W_hi=w_accept)
        assert verdict == VERDICT_SPURIOUS and margins["C2"] > 0.0


def check_margins_are_tight_lower_bounds(rng, cases: int = 20) -> None:
    """Every stored margin is <= its exact value and within one ulp of it (outward, tight)."""
    for _ in range(cases):
        lam, m, r = _random_boundary_data(rng)
        g = float(rng.uniform(0, 1e-5))
        G_lo, W_hi = float(rng.uniform(0.5, 1.0)), float(rng.uniform(0, 0.5))
        margins, _, _ = _decide(lam, m, g, r, G_lo=G_lo, W_hi=W_hi)
        L, M, gg, rr = map(Fraction, (lam, m, g, r))
        exact = {
            "C1": -gg + L * rr / 2 - 2 * M * rr * rr,
            "Cq": L / 2 - 2 * M * rr,
            "C2": Fraction(G_lo) - gg * rr - Fraction(W_hi),
        }
        for name, val in exact.items():
            got = Fraction(margins[name])
            assert got <= val, (name, float(got), float(val))
            assert val - got <= Fraction(float(np.spacing(abs(float(val))))), name


def test_c1_refuses_and_accepts_at_a_few_ulps():
    check_c1_boundary(np.random.default_rng(11))


def test_cq_refuses_a_radius_where_the_quadratic_coefficient_is_negative():
    check_cq_boundary(np.random.default_rng(12))


def test_c2_refuses_and_accepts_at_a_few_ulps():
    check_c2_boundary(np.random.default_rng(13))


def test_margins_are_outward_rounded_and_tight():
    check_margins_are_tight_lower_bounds(np.random.default_rng(14))


def test_nonpositive_curvature_or_radius_is_refused():
    for lam, r in ((0.0, 1e-3), (-1e-3, 1e-3), (math.nan, 1e-3), (0.03, 0.0)):
        margins, verdict, _ = _decide(lam, 2.0, 0.0, r)
        assert verdict == VERDICT_NONE and margins["C1"] == -math.inf


# --------------------------------------------------------------------------------------
# Outward rounding: arb -> float and the interval type
# --------------------------------------------------------------------------------------
def _arb_exact_values():
    from flint import arb

    vals = [arb(1) / 3, arb(2).sqrt(), -arb(7) / 11, arb(10) ** -300 / 3, arb(3).exp(), -(arb(5).log())]
    return vals


def check_arb_rounding() -> None:
    """arb -> float: lower <= exact <= upper, one ulp apart; exact floats stay put."""
    from flint import arb

    with arb_precision(ARB_PRECISION):
        for x in _arb_exact_values():
            lo, hi = _ival._float_down(x), _ival._float_up(x)
            # x is not a float: the rounded endpoints must straddle it strictly
            assert arb(lo) < x < arb(hi), (lo, hi)
            assert hi == float(np.nextafter(lo, math.inf))
            plo, phi = _ival.arb_pair(x + arb(0, 1e-30))  # a ball: pair encloses the whole ball
            assert arb(plo) <= x - arb(1e-30) and x + arb(1e-30) <= arb(phi)
        for f in (0.5, -3.25, 1e-300, 0.0):
            assert _ival._float_down(arb(f)) == f == _ival._float_up(arb(f))


def check_interval_enclosures(rng, size: int = 400) -> None:
    """IntervalArray +, -, *, /, square, sqrt, sum contain the exact result (Fractions) and
    each endpoint is within TIGHT_ULPS of it."""
    mags = 10.0 ** rng.uniform(-8, 8, size=(2, size))
    a = rng.standard_normal(size) * mags[0]
    b = rng.standard_normal(size) * mags[1]
    A, B = IntervalArray(a), IntervalArray(b)
    ops = {
        "add": (A + B, lambda x, y: x + y),
        "sub": (A - B, lambda x, y: x - y),
        "rsub": (3.0 - A, lambda x, y: 3 - x),
        "mul": (A * B, lambda x, y: x * y),
        "scalar": (A * 0.1, lambda x, y: x * Fraction(0.1)),
        "neg-scalar": (A * -3.3, lambda x, y: x * Fraction(-3.3)),
        "div": (A / B, lambda x, y: x / y),
        "square": (A.square(), lambda x, y: x * x),
        "sum": (IntervalArray(np.stack([a, b, a])).sum(axis=0), lambda x, y: 2 * x + y),
    }
    for name, (res, exact_fn) in ops.items():
        for i in range(size):
            ex = exact_fn(Fraction(a[i]), Fraction(b[i]))
            lo, hi = Fraction(res.lo[i]), Fraction(res.hi[i])
            assert lo <= ex <= hi, (name, a[i], b[i])
            # a single operation: TIGHT_ULPS of the result; the 3-term sum rounds twice,
            # each time relative to the partial sums (bounded by 2|a| + |b|)
            size_ = abs(float(ex)) if name != "sum" else 2 * abs(a[i]) + abs(b[i])
            allow = (1 if name != "sum" else 2) * TIGHT_ULPS * Fraction(float(np.spacing(size_))) + Fraction(
                2.0**-1070)
            assert ex - lo <= allow and hi - ex <= allow, (name, float(ex), float(lo), float(hi))
    sq = IntervalArray(np.abs(a)).sqrt()
    for i in range(size):
        x = Fraction(abs(a[i]))
        assert Fraction(sq.lo[i]) ** 2 <= x <= Fraction(sq.hi[i]) ** 2
    # endpoints strictly beyond round-to-nearest, also at 0 and for subnormals
    x = np.concatenate([a, [0.0, 5e-324, -5e-324, 1e-310]])
    assert np.all(_ival._down(x) <= np.nextafter(x, -np.inf)) and np.all(_ival._up(x) >= np.nextafter(x, np.inf))


def test_arb_to_float_rounds_outward_and_tightly():
    check_arb_rounding()


def test_interval_arithmetic_encloses_exact_results_tightly():
    check_interval_enclosures(np.random.default_rng(21))


def test_interval_square_of_straddling_interval_starts_at_zero():
    sq = IntervalArray(np.array([-1.0, -2.0, 0.5]), np.array([2.0, -1.0, 3.0])).square()
    assert sq.lo.tolist() == [0.0, _ival._down(np.float64(1.0)), _ival._down(np.float64(0.25))]
    assert np.all(sq.hi >= np.array([4.0, 4.0, 9.0]))


def test_interval_division_by_an_interval_with_zero_is_refused():
    for lo, hi in ((-1.0, 1.0), (0.0, 1.0), (-1.0, 0.0), (0.0, 0.0)):
        with pytest.raises(ZeroDivisionError):
            IntervalArray(1.0) / IntervalArray(lo, hi)


def test_interval_contains_its_endpoints_and_nothing_outside():
    X = IntervalArray(np.array([1.0, -2.0]), np.array([2.0, -2.0]))
    assert X.contains(np.array([1.0, -2.0])).all() and X.contains(np.array([2.0, -2.0])).all()
    assert not X.contains(np.array([np.nextafter(1.0, 0), np.nextafter(-2.0, 0)])).any()
    assert not X.contains(np.array([np.nextafter(2.0, 3), np.nextafter(-2.0, -3)])).any()


# --------------------------------------------------------------------------------------
# End to end: real certificates, exact re-verification, lambda against float
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def f2_polished():
    inst, U0 = f2_spurious_instance()
    cert = taylor_certificate(inst.problem, U0, witness=inst.U_star)
    return inst, cert


def _float_lambda(problem, U) -> float:
    return float(reduced_spectrum(problem, np.asarray(U)).lambda_min_quotient)


def check_lambda_against_float(cert, problem) -> None:
    lam_c = cert.bounds["lambda_min_quotient_lower"]
    lam_f = _float_lambda(problem, cert.point)
    assert lam_c <= lam_f * (1 + LAMBDA_FLOAT_ERR), (lam_c, lam_f)
    assert lam_c >= lam_f - LAMBDA_SLACK * abs(lam_f), (lam_c, lam_f)


def _perturbed_f2_certs(inst, U_pol, rng, grads=(1e-9, 1e-6, 5e-6)):
    """Certificates at points near the F.2 minimum with prescribed gradient sizes (no polish)."""
    prob = inst.problem
    S = prob.schur_complement(U_pol)
    out = []
    for g in grads:
        v = rng.standard_normal(prob.dim_U)
        v /= np.linalg.norm(S @ v)
        U = prob.unpack_factors(vec_factors(U_pol) + g * v)
        out.append(taylor_certificate(prob, U, polish=False, witness=inst.U_star))
    return out


def check_exact_reverification(certs) -> None:
    """Each certificate passes the independent exact verifier, and its lambda bound lies
    below the float lambda_min within LAMBDA_SLACK."""
    for cert in certs:
        rep = verify_taylor_exact(cert)
        assert rep.ok, rep.reason
        check_lambda_against_float(cert, cert.problem)


def test_f2_certificate_survives_exact_reverification_and_lambda_is_tight(f2_polished):
    inst, cert = f2_polished
    assert cert.verdict == VERDICT_SPURIOUS
    check_lambda_against_float(cert, inst.problem)
    certs = [cert, *_perturbed_f2_certs(inst, np.asarray(cert.point), np.random.default_rng(31))]
    assert [c.verdict for c in certs] == [VERDICT_SPURIOUS] * 4
    check_exact_reverification(certs)


def test_gradient_past_the_c1_threshold_is_refused(f2_polished):
    """THEORY's (C1) ||g|| < lambda^2/(32 m): a point with 2x that gradient is refused, one
    with 0.5x is accepted; both verdicts agree with the exact re-verification."""
    inst, cert = f2_polished
    lam, m = cert.bounds["lambda_min_quotient_lower"], cert.bounds["m_upper"]
    thr = lam**2 / (32 * m)
    ok, bad = _perturbed_f2_certs(inst, np.asarray(cert.point), np.random.default_rng(32), (0.5 * thr, 2 * thr))
    assert ok.verdict == VERDICT_SPURIOUS and ok.margins["C1"] > 0
    assert bad.verdict == VERDICT_NONE and "(C1)" in bad.reason
    check_exact_reverification([ok, bad])


def _point_on_segment_with_loss(problem, U_from, U_to, target: float) -> np.ndarray:
    """Bisection on the segment for a point whose (float) G is ``target``."""
    lo, hi = 0.0, 1.0  # G(lo) > target > G(hi)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if problem.reduced_loss((1 - mid) * U_from + mid * U_to) > target:
            lo = mid
        else:
            hi = mid
    return (1 - hi) * U_from + hi * U_to


def test_c2_gradient_times_radius_is_load_bearing(f2_polished):
    """A witness whose loss sits between G(U0) - |g| r and G(U0): (C2) must refuse it,
    although G(witness) < G(U0); a witness 2|g| r lower is accepted."""
    inst, cert = f2_polished
    prob = inst.problem
    (c0,) = _perturbed_f2_certs(inst, np.asarray(cert.point), np.random.default_rng(33), (1e-6,))
    U0 = np.asarray(c0.point)
    G0_lo, g, r = c0.enclosures["G(U0)"][0], c0.bounds["grad_norm_upper"], c0.radius
    assert g * r > 1e6 * np.spacing(G0_lo)  # g r is far above the rounding of G(U0)
    verdicts = {}
    for alpha in (0.5, 2.0):
        W = _point_on_segment_with_loss(prob, U0, inst.U_star, G0_lo - alpha * g * r)
        GW = float(exact_reduced_loss(
            [[[Fraction(v) for v in row] for row in t] for t in prob.tasks.tolist()],
            [[[Fraction(v) for v in row] for row in t] for t in W.tolist()],
        ))
        assert GW < G0_lo
        c = taylor_certificate(prob, U0, polish=False, witness=W)
        verdicts[alpha] = c.verdict
        check_exact_reverification([c])
    assert verdicts == {0.5: VERDICT_LOCAL_MIN, 2.0: VERDICT_SPURIOUS}


def test_k2_certified_lambda_is_below_and_near_the_quotient_float_lambda():
    """k = 2 (penalty path, quotient by O(2)): a global minimum of a T=3, d=6 instance is
    an isolated minimum modulo O(k) (Thm 3.3): certified local, never spurious."""
    inst = random_instance(np.random.default_rng(3), 6, 3, 2)
    cert = taylor_certificate(inst.problem, inst.U_star, witness=inst.U_star)
    assert cert.parameters["penalty"] > 0
    assert cert.verdict == VERDICT_LOCAL_MIN
    check_lambda_against_float(cert, inst.problem)


# --------------------------------------------------------------------------------------
# Epsilon-net: the Lipschitz bound must dominate the gradient met on the ball
# --------------------------------------------------------------------------------------
def check_net_lipschitz(cert, problem, rng, directions: int = 200) -> float:
    """max ||A^T grad G(U0 + A z)|| over sampled ||z|| <= R, R = r + eps_eff, divided by
    the certified Lipschitz bound; asserts it is <= 1 and returns it."""
    A = cert.parameters["shape_matrix"]
    n = problem.dim_U
    A = np.eye(n) if A is None else np.array(A)
    u0 = vec_factors(np.asarray(cert.point))
    R = cert.radius + cert.bounds["eps_effective_upper"]
    M = A.T @ problem.schur_complement(np.asarray(cert.point)) @ A
    _, V = np.linalg.eigh(0.5 * (M + M.T))
    dirs = [V[:, -1], -V[:, -1], V[:, 0], -V[:, 0]]
    dirs += [v / np.linalg.norm(v) for v in rng.standard_normal((directions, n))]
    worst = 0.0
    for z in dirs:
        for s in (R, 0.5 * R):
            worst = max(worst, float(np.linalg.norm(A.T @ problem.reduced_grad_flat(u0 + A @ (s * z)))))
    ratio = worst / cert.bounds["lipschitz_upper"]
    assert ratio <= 1.0, ratio
    return ratio


@pytest.fixture(scope="module")
def net_certs():
    inst = random_instance(np.random.default_rng(0), 2, 3, 1)
    prob = inst.problem
    ell = epsilon_net_certificate(prob, inst.U_star, shape="ellipsoid", witness=inst.U_star)
    sph = epsilon_net_certificate(prob, inst.U_star, r=1e-2, eps=5e-3, witness=inst.U_star)
    return prob, ell, sph


def test_net_lipschitz_bound_dominates_sampled_gradients(net_certs):
    prob, ell, sph = net_certs
    assert ell.verdict == VERDICT_LOCAL_MIN
    # the bound is sound (ratio <= 1) and not loose by more than 2x: a halved bound fails
    assert check_net_lipschitz(ell, prob, np.random.default_rng(41)) > 0.5
    assert check_net_lipschitz(sph, prob, np.random.default_rng(42)) > 0.5


@pytest.mark.parametrize("G0", [(0.25, 0.25), (0.0, 0.25)])
def test_net_decision_boundary_n1(G0):
    """(N1) min_net G_lo - G_hi(U0) - Lip eps: a few ulps either side of zero; the upper end of
    G(U0)'s enclosure counts (a wide enclosure whose lower end would pass does not)."""
    lip, eps = 0.75, 2.0**-10
    need = Fraction(G0[1]) + Fraction(lip) * Fraction(eps)
    for ulps, expect in ((ULPS, VERDICT_LOCAL_MIN), (-ULPS, VERDICT_NONE)):
        b = {"lipschitz_upper": lip, "eps_effective_upper": eps, "min_net_G_lower": _nudge(float(need), ulps)}
        margins, verdict, _ = _net._net_decide({"G(U0)": G0}, b, 1e-3, False, 10, "sphere", ARB_PRECISION)
        assert verdict == expect, (ulps, margins)


# --------------------------------------------------------------------------------------
# The independent verifier itself: agrees with the analytic formulas, refuses tampering
# --------------------------------------------------------------------------------------
#: The analytic gradient/Hessian (float) and the exact interpolated ones differ only by
#: the float rounding of O(d k) term sums of entries of size ~ ||U||^2 + ||A*||.
ANALYTIC_RTOL = 1e-12


def _fr3(X):
    return [[[Fraction(v) for v in row] for row in t] for t in np.asarray(X).tolist()]


@pytest.mark.parametrize("T, d, k, seed", [(2, 2, 1, 0), (3, 2, 1, 1), (2, 2, 2, 2), (3, 3, 1, 3)])
def test_independent_derivatives_agree_with_the_analytic_ones(T, d, k, seed):
    from theory._independent import exact_derivatives

    rng = np.random.default_rng(seed)
    prob = LoraMLProblem(rng.standard_normal((T, d, d)), k)
    U = rng.standard_normal((T, d, k))
    grad, H = exact_derivatives(_fr3(prob.tasks), _fr3(U))
    # this module's coordinates are (t, i, l) row-major; the landscape's are column-major vec
    perm = [t * d * k + l * d + i for t in range(T) for i in range(d) for l in range(k)]
    g_an = prob.reduced_grad_flat(vec_factors(U))[perm]
    S_an = prob.schur_complement(U)[np.ix_(perm, perm)]
    g_ex = np.array([float(v) for v in grad])
    H_ex = np.array([[float(v) for v in row] for row in H])
    scale = 1.0 + float(np.sum(U**2)) + float(np.linalg.norm(prob.tasks))
    assert np.max(np.abs(g_ex - g_an)) <= ANALYTIC_RTOL * scale**1.5
    assert np.max(np.abs(H_ex - S_an)) <= ANALYTIC_RTOL * scale
    assert float(exact_reduced_loss(_fr3(prob.tasks), _fr3(U))) == pytest.approx(prob.reduced_loss(U), rel=1e-12)


def _tampered(cert, **changes):
    data = cert.to_dict()
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if name:
            data[section] = {**data[section], name: value}
        else:
            data[section] = value
    return data


def test_independent_verifier_refuses_every_kind_of_tampering(f2_polished):
    from theory._independent import is_positive_definite

    _, cert = f2_polished
    rep = verify_taylor_exact(cert.to_dict())
    assert rep.ok
    g_exact = rep.values["grad_norm"]  # ||grad G(U0)||, exact up to the float of its square root
    assert 0 < g_exact < 1e-3
    lam_f = _float_lambda(cert.problem, cert.point)
    G0 = cert.enclosures["G(U0)"]
    # the point as its own witness: (C2) fails, a local (not spurious) minimum
    local = taylor_certificate(cert.problem, np.asarray(cert.point), polish=False, witness=np.asarray(cert.point))
    assert local.verdict == VERDICT_LOCAL_MIN and verify_taylor_exact(local).ok
    tampered = {
        "margin C1 + 1 ulp": _tampered(cert, **{"margins.C1": _nudge(cert.margins["C1"], 1)}),
        "margin C2 + 1 ulp": _tampered(cert, **{"margins.C2": _nudge(cert.margins["C2"], 1)}),
        "lambda above lambda_min": _tampered(cert, **{"bounds.lambda_min_quotient_lower": lam_f * (1 + 1e-9)}),
        "m below ||U_t||": _tampered(cert, **{"bounds.m_upper": cert.bounds["m_upper"] * (1 - 1e-12)}),
        "grad bound below ||g||": _tampered(cert, **{"bounds.grad_norm_upper": cert.bounds["grad_norm_upper"] / 2}),
        "G(U0) enclosure shrunk to its lower end": _tampered(cert, **{"enclosures.G(U0)": [G0[0], G0[0]]}),
        "G(U0) enclosure shrunk to its upper end": _tampered(cert, **{"enclosures.G(U0)": [G0[1], G0[1]]}),
        "point moved": _tampered(cert, point=(np.asarray(cert.point) * (1 + 1e-12)).tolist()),
        "verdict upgraded": _tampered(local, verdict=VERDICT_SPURIOUS),
        "radius doubled": _tampered(cert, radius=2 * cert.radius),
        "radius negated": _tampered(cert, radius=-cert.radius),
        "||g|| enclosure above the exact norm": _tampered(
            cert, **{"enclosures.grad_norm": [g_exact * (1 + 1e-6), cert.enclosures["grad_norm"][1]]}),
        "||g|| enclosure below the exact norm": _tampered(
            cert, **{"enclosures.grad_norm": [cert.enclosures["grad_norm"][0], g_exact * (1 - 1e-6)]}),
    }
    for name, data in tampered.items():
        assert not verify_taylor_exact(data).ok, name
    # the exact PD test itself: I is PD, a matrix with a zero pivot is not
    assert is_positive_definite([[Fraction(1), 0], [0, Fraction(1)]])
    assert not is_positive_definite([[Fraction(1), Fraction(1)], [Fraction(1), Fraction(1)]])


def test_independent_verifier_refuses_what_it_cannot_check(net_certs):
    _, ell, _ = net_certs
    assert not verify_taylor_exact(ell).ok  # epsilon-net kind
    big = random_instance(np.random.default_rng(5), 8, 3, 2)
    cert = taylor_certificate(big.problem, big.U_star, witness=big.U_star)
    assert not verify_taylor_exact(cert).ok  # T d k = 48 > MAX_DIM is refused, not trusted


@pytest.mark.parametrize("s", [0.25, 4.0])
def test_scaled_f2_is_certified_and_exactly_verified(f2_polished, s):
    """G(sU; s^2 A*) = s^4 G(U; A*): the certificate scales (lambda ~ s^2, m ~ s, r ~ s) and
    stays exactly verifiable, also where max_t ||U_t|| < 1 (s = 0.25: m ~ 0.5)."""
    inst, cert = f2_polished
    prob = LoraMLProblem(s * s * inst.problem.tasks, 1)
    c = taylor_certificate(prob, s * np.asarray(cert.point), polish=False, witness=s * inst.U_star)
    assert c.verdict == VERDICT_SPURIOUS
    assert c.bounds["m_upper"] == pytest.approx(s * cert.bounds["m_upper"], rel=1e-12, abs=0)
    assert c.bounds["lambda_min_quotient_lower"] == pytest.approx(
        s * s * cert.bounds["lambda_min_quotient_lower"], rel=LAMBDA_SLACK, abs=0)
    check_exact_reverification([c])


def check_wide_interval_corners(rng, size: int = 300) -> None:
    """Non-degenerate intervals: every corner of [a1,a2] op [b1,b2] (exact Fractions) lies in
    the result, for all sign patterns (the extremes of * and / sit at corners)."""
    a = np.sort(rng.standard_normal((size, 2)) * 10.0 ** rng.uniform(-3, 3, (size, 1)), axis=1)
    b = np.sort(rng.standard_normal((size, 2)) * 10.0 ** rng.uniform(-3, 3, (size, 1)), axis=1)
    b[:, 0] = np.where(b[:, 0] * b[:, 1] <= 0, np.abs(b[:, 1]) / 2, b[:, 0])  # keep 0 out of b
    b = np.sort(b, axis=1)
    A, B = IntervalArray(a[:, 0], a[:, 1]), IntervalArray(b[:, 0], b[:, 1])
    for name, res, op in (("mul", A * B, lambda x, y: x * y), ("div", A / B, lambda x, y: x / y),
                          ("add", A + B, lambda x, y: x + y), ("sub", A - B, lambda x, y: x - y)):
        for i in range(size):
            lo, hi = Fraction(res.lo[i]), Fraction(res.hi[i])
            for x in a[i]:
                for y in b[i]:
                    assert lo <= op(Fraction(x), Fraction(y)) <= hi, (name, a[i], b[i])
    sq = A.square()
    for i in range(size):
        for x in a[i]:
            assert Fraction(sq.lo[i]) <= Fraction(x) ** 2 <= Fraction(sq.hi[i])


def test_wide_intervals_enclose_every_corner():
    check_wide_interval_corners(np.random.default_rng(22))


def test_independent_psd_and_generator_helpers():
    """The exact helpers on their own: principal-minor PSD test and the orbit generators
    (G is O(k)-invariant, so its exact gradient is orthogonal to every generator)."""
    from theory._independent import _generators, _is_psd_small, exact_derivatives

    F = Fraction
    assert _is_psd_small([[F(2), F(1)], [F(1), F(2)]]) and _is_psd_small([[F(1), F(1)], [F(1), F(1)]])
    assert not _is_psd_small([[F(1), F(2)], [F(2), F(1)]])
    assert not _is_psd_small([[F(1), F(0), F(0)], [F(0), F(1), F(2)], [F(0), F(2), F(1)]])
    assert not _is_psd_small([[F(-1)]]) and _is_psd_small([[F(0)]])
    # a minor whose elimination needs a row swap: det [[0, 1], [1, 0]] = -1 (the swap's sign)
    assert not _is_psd_small([[F(0), F(1)], [F(1), F(0)]])
    assert _is_psd_small([[F(0), F(0)], [F(0), F(1)]])
    from theory._independent import is_positive_definite

    # indefinite only after row 1 is reduced by row 0 (eigenvalues -1, 1, 3)
    assert not is_positive_definite([[F(1), F(2), F(0)], [F(2), F(1), F(0)], [F(0), F(0), F(1)]])
    assert is_positive_definite([[F(2), F(1), F(0)], [F(1), F(2), F(1)], [F(0), F(1), F(2)]])
    rng = np.random.default_rng(6)
    T, d, k = 2, 2, 2
    tasks, U = _fr3(rng.standard_normal((T, d, d))), _fr3(rng.standard_normal((T, d, k)))
    grad, _ = exact_derivatives(tasks, U)
    gens = _generators(U)
    assert len(gens) == T * k * (k - 1) // 2
    for y in gens:
        assert any(y) and sum(gi * yi for gi, yi in zip(grad, y)) == 0


def test_exactly_critical_point_with_zero_gradient_bound_verifies(f2_polished):
    """U = 0 is an exact critical point (grad G = -(a + a^T) U = 0): its gradient bound is
    exactly 0 and S = -blockdiag(a_t + a_t^T) has both signs (sum of a_t is 0), so the
    certificate refuses, and every stored claim still holds exactly."""
    import dataclasses

    inst, _ = f2_polished
    c = taylor_certificate(inst.problem, np.zeros((3, 3, 1)), polish=False)
    assert c.bounds["grad_norm_upper"] == 0.0 and c.bounds["m_upper"] == 0.0 and c.verdict == VERDICT_NONE
    rep = verify_taylor_exact(c)
    assert rep.ok, rep.reason
    with pytest.raises(dataclasses.FrozenInstanceError):  # certificate inputs are immutable
        inst.problem.k = 2


def test_exact_verifier_adds_the_orbit_penalty_for_k2_and_refuses_a_negative_one():
    """k = 2: the quotient's curvature claim is checked on H + c sum_y y y^T, c >= 0, y the
    orbit generators (the F.2 point embedded in d = 4 beside a rank-one global minimum). The
    certificate's penalty c > 0 verifies exactly; the same claim stored with c = -1 is refused."""
    import dataclasses

    from landscape import LoraMLProblem, f2_spurious_instance, random_instance, taylor_certificate

    inst, U0 = f2_spurious_instance()
    other = random_instance(np.random.default_rng(1), 1, 3, 1)
    tasks, U = np.zeros((3, 4, 4)), np.zeros((3, 4, 2))
    tasks[:, :3, :3], tasks[:, 3:, 3:] = inst.problem.tasks, other.problem.tasks
    U[:, :3, 0], U[:, 3:, 1] = U0[:, :, 0], other.U_star[:, :, 0]
    cert = taylor_certificate(LoraMLProblem(tasks, 2), U)
    assert cert.parameters["penalty"] > 0
    rep = verify_taylor_exact(cert)
    assert rep.ok and rep.checks["penalty c >= 0"]
    bad = dataclasses.replace(cert, parameters={**cert.parameters, "penalty": -1.0})
    rep = verify_taylor_exact(bad)
    assert not rep.ok and not rep.checks["penalty c >= 0"]


def test_independent_derivatives_of_one_task():
    """T = 1 (one task, every U_1 a critical direction of its own): the exact gradient is the
    analytic one too; the sizes are read from the one task that exists."""
    from theory._independent import exact_derivatives

    rng = np.random.default_rng(5)
    prob = LoraMLProblem(rng.standard_normal((1, 3, 3)), 1)
    U = rng.standard_normal((1, 3, 1))
    grad, H = exact_derivatives(_fr3(prob.tasks), _fr3(U))
    assert len(grad) == 3 and len(H) == 3
    np.testing.assert_allclose([float(v) for v in grad], prob.reduced_grad_flat(vec_factors(U)), atol=1e-12)
