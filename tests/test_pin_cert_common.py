"""The Taylor decision shared by the certificate kinds (``landscape/certificates/common.py``)
at its exact boundaries, on dyadic inputs where every margin is an exact float:
(C1) and (C2) are strict, (Cq) is not; the radius rule is just below lambda / (8 m); a
stored claim holds exactly when the recomputed bound implies it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from landscape.certificates import common as C
from landscape.certificates.data import VERDICT_LOCAL_MIN, VERDICT_NONE, VERDICT_SPURIOUS


def _bounds(lam=1.0, m=1 / 16, g=1 / 8):
    return {"lambda_min_quotient_lower": lam, "m_upper": m, "grad_norm_upper": g}


def _decide(G_lo=1.0, witness=0.5, r=1.0, **kw):
    enc = {"G(U0)": (G_lo, G_lo + 1e-3)}
    return C._taylor_decide(enc, _bounds(**kw), r, None if witness is None else (witness - 1e-3, witness), 256)


def test_margins_are_the_three_inequalities_exactly():
    # C1 = -g + lam r / 2 - 2 m r^2 = 1/4, Cq = lam / 2 - 2 m r = 3/8, C2 = G_lo - g r - W_hi = 3/8
    margins, verdict, reason = _decide()
    assert margins == {"C1": 0.25, "Cq": 0.375, "C2": 0.375} and verdict == VERDICT_SPURIOUS
    margins, verdict, _ = _decide(r=0.5)  # C1 = -1/8 + 1/4 - 1/32, Cq = 1/2 - 1/16, C2 = 1 - 1/16 - 1/2
    assert margins == {"C1": 0.09375, "Cq": 0.4375, "C2": 0.4375} and verdict == VERDICT_SPURIOUS


def test_c1_is_strict():
    margins, verdict, reason = _decide(g=3 / 8)  # C1 = 0 exactly
    assert margins["C1"] == 0.0 and verdict == VERDICT_NONE and "(C1) fails" in reason


def test_cq_is_not_strict():
    # m = 1/4, r = 1: Cq = 0 exactly is allowed, and the decision moves on to (C1) (= -g = 0)
    margins, verdict, reason = _decide(m=1 / 4, g=0.0)
    assert margins["Cq"] == 0.0 and margins["C1"] == 0.0 and verdict == VERDICT_NONE and "(C1) fails" in reason
    margins, verdict, reason = _decide(m=1 / 4 + 1 / 64, g=0.0)
    assert margins["Cq"] < 0 and "radius too large" in reason


def test_c2_is_strict_and_needs_a_witness():
    margins, verdict, reason = _decide(G_lo=0.625)  # C2 = 0.625 - 0.125 - 0.5 = 0 exactly
    assert margins["C2"] == 0.0 and verdict == VERDICT_LOCAL_MIN and "not shown to be spurious" in reason
    margins, verdict, reason = _decide(witness=None)
    assert margins["C2"] == -math.inf and verdict == VERDICT_LOCAL_MIN and "no point can lie below it" in reason


@pytest.mark.parametrize("lam,r", [(0.0, 1.0), (-1.0, 1.0), (math.nan, 1.0), (math.inf, 1.0), (1.0, 0.0)])
def test_no_claim_without_a_certified_positive_curvature_and_radius(lam, r):
    margins, verdict, reason = _decide(lam=lam, r=r)
    assert verdict == VERDICT_NONE and margins == {"C1": -math.inf, "Cq": -math.inf, "C2": -math.inf}


def test_radius_rule():
    assert C._taylor_radius(_bounds(lam=1.0, m=1 / 16)) == np.nextafter(2.0, 0.0)  # just below lam / (8 m)
    assert C._taylor_radius(_bounds(lam=0.5, m=0.0, g=0.25)) == 2.0  # no cubic term: 4 g / lam
    assert C._taylor_radius(_bounds(lam=0.5, m=0.0, g=0.0)) == 1.0
    assert C._taylor_radius(_bounds(lam=0.0)) == 0.0 and C._taylor_radius(_bounds(lam=math.nan)) == 0.0


class _Cert:
    def __init__(self, enclosures=None, bounds=None, margins=None):
        self.enclosures, self.bounds, self.margins = enclosures or {}, bounds or {}, margins or {}


def test_a_stored_claim_holds_exactly_when_the_recomputed_bound_implies_it():
    enc, bnd, mar = {"G(U0)": (1.0, 2.0)}, {"a_lower": 1.0, "b_upper": 2.0}, {"C1": 0.25}
    assert C._claims_hold(_Cert(enc, bnd, mar), enc, bnd, mar)  # equal is implied
    assert not C._claims_hold(_Cert({"G(U0)": (1.0, 2.0)}), {"G(U0)": (0.5, 2.0)}, {}, None)
    assert not C._claims_hold(_Cert({"G(U0)": (1.0, 2.0)}), {"G(U0)": (1.0, 2.5)}, {}, None)
    assert C._claims_hold(_Cert({"G(U0)": (0.5, 2.5)}), {"G(U0)": (1.0, 2.0)}, {}, None)
    assert not C._claims_hold(_Cert(bounds={"a_lower": 1.5}), {}, {"a_lower": 1.0}, None)
    assert not C._claims_hold(_Cert(bounds={"b_upper": 1.5}), {}, {"b_upper": 2.0}, None)
    assert not C._claims_hold(_Cert(margins={"C1": 0.5}), {}, {}, {"C1": 0.25})
    assert not C._claims_hold(_Cert(bounds={"a_lower": 1.0}), {}, {}, None)  # a bound not recomputed
    assert not C._claims_hold(_Cert({"G(U0)": (1.0, 2.0)}), {}, {}, None)
    assert not C._claims_hold(_Cert(margins={"C1": 0.0}), {}, {}, {})


@pytest.mark.parametrize("lam, m", [(0.035266, 2.1), (3.0, 0.125), (1e-6, 7.0), (100.0, 1.0)])
def test_the_taylor_radius_is_strictly_below_lambda_over_8m_in_exact_arithmetic(lam, m):
    """r < lambda / (8 m) exactly (Fractions), and no float lies between r and the rounded
    quotient: r is the quotient's float rounded towards 0 -- never up, whatever its size."""
    from fractions import Fraction

    from landscape.certificates.common import _taylor_radius

    r = _taylor_radius({"lambda_min_quotient_lower": lam, "m_upper": m})
    assert 0 < Fraction(r) < Fraction(lam) / (8 * Fraction(m))
    assert r == np.nextafter(lam / (8.0 * m), 0.0)


@pytest.mark.parametrize("r", [-1.0, -0.5, 0.0, math.nan])
def test_a_radius_that_is_not_positive_decides_nothing(r):
    """(C1)-(C2) speak of a ball of radius r > 0; a stored certificate with a zero, negative
    or nan radius is not certified, whatever its other bounds (here g = m = 0, lam = 1)."""
    margins, verdict, reason = _decide(r=r, g=0.0, m=0.0)
    assert verdict == VERDICT_NONE and margins == {"C1": -math.inf, "Cq": -math.inf, "C2": -math.inf}
