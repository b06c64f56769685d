r"""What the certificate kinds share: outward rounding to floats, the Taylor radius rule
and decision (the ``arb`` and the floating-point Taylor certificate prove the same
inequalities (Cq), (C1), (C2)), and the check that recomputed bounds imply stored claims.
"""
from __future__ import annotations

import math

import numpy as np

from .._interval import arb_pair, arb_precision
from .data import VERDICT_LOCAL_MIN, VERDICT_NONE, VERDICT_SPURIOUS

def _float_down(x) -> float:
    return arb_pair(x)[0]


def _float_up(x) -> float:
    return arb_pair(x)[1]


def _taylor_radius(bounds) -> float:
    """Radius of the Taylor ball from certified bounds: just below lambda / (8 m), where
    the cubic term is at most half the quadratic one; 0 when lambda is not certified > 0."""
    lam = bounds["lambda_min_quotient_lower"]
    m_up = bounds["m_upper"]
    if math.isfinite(lam) and lam > 0.0 and m_up > 0.0:
        return float(np.nextafter(lam / (8.0 * m_up), 0.0))
    if math.isfinite(lam) and lam > 0.0:
        # every U0_t = 0: no cubic term; any radius with phi(r) > 0 works
        return float(4.0 * bounds["grad_norm_upper"] / lam) or 1.0
    return 0.0


def _taylor_decide(enclosures, bounds, r: float, witness_pair, precision: int):
    """(C1), (Cq), (C2) in ``arb`` on the stored (exact float) bounds."""
    from flint import arb

    lam = bounds["lambda_min_quotient_lower"]
    with arb_precision(precision):
        if not math.isfinite(lam) or lam <= 0.0 or not (r > 0.0):
            margins = {"C1": -math.inf, "Cq": -math.inf, "C2": -math.inf}
            reason = (
                f"the Hessian on the quotient is not certified positive definite "
                f"(rigorous lower bound of lambda_min = {lam:.6g})"
            )
            return margins, VERDICT_NONE, reason
        L, M, g, rr = arb(lam), arb(bounds["m_upper"]), arb(bounds["grad_norm_upper"]), arb(r)
        c1 = -g + L * rr / 2 - 2 * M * rr * rr
        cq = L / 2 - 2 * M * rr
        G_lo = arb(enclosures["G(U0)"][0])
        W_hi = arb(witness_pair[1]) if witness_pair is not None else None
        c2 = (G_lo - g * rr - W_hi) if W_hi is not None else None
        margins = {
            "C1": _float_down(c1),
            "Cq": _float_down(cq),
            "C2": _float_down(c2) if c2 is not None else -math.inf,
        }
    if not (margins["Cq"] >= 0.0):
        return margins, VERDICT_NONE, f"radius too large for the cubic term (Cq margin {margins['Cq']:.3g})"
    if not (margins["C1"] > 0.0):
        return margins, VERDICT_NONE, (
            f"(C1) fails: gradient norm <= {bounds['grad_norm_upper']:.3g} is not below "
            f"lambda r/2 - 2 m r^2 (C1 margin {margins['C1']:.3g})"
        )
    if not (margins["C2"] > 0.0):
        if witness_pair is None:
            why = "the ball's lower bound G(U0) - |g| r is not positive, so no point can lie below it"
        else:
            why = f"G(U0) - |g| r is not above G(witness): C2 margin {margins['C2']:.3g}"
        return margins, VERDICT_LOCAL_MIN, (
            f"a local minimiser lies within r of the point (C1 margin {margins['C1']:.3g}); "
            f"not shown to be spurious ({why})"
        )
    return margins, VERDICT_SPURIOUS, (
        f"a spurious local minimiser lies within r of the point: (C1) margin {margins['C1']:.3g}, "
        f"(C2) margin {margins['C2']:.3g} above G(witness)"
    )


def _pair_within(stored, recomputed) -> bool:
    return stored[0] <= recomputed[0] and recomputed[1] <= stored[1]


def _claims_hold(cert, enclosures, bounds, margins) -> bool:
    for name, stored in cert.enclosures.items():
        if name not in enclosures or not _pair_within(stored, enclosures[name]):
            return False
    for name, stored in cert.bounds.items():
        if name not in bounds:
            return False
        if name.endswith("_lower") and not stored <= bounds[name]:
            return False
        if name.endswith("_upper") and not stored >= bounds[name]:
            return False
    if margins is None:
        return True
    for name, stored in cert.margins.items():
        if name not in margins or not stored <= margins[name]:
            return False
    return True
