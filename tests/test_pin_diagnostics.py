"""landscape._diagnostics (the Taylor-slope test) against exact truth: remainders of known
polynomials along a unit direction, fitted slopes of exact power laws at the pass margin,
the round-off floor, the documented constants, and results that cannot be altered."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from landscape import _diagnostics as dg
from landscape._diagnostics import taylor_check


def test_constants_are_the_documented_ones():
    assert np.allclose(dg.DEFAULT_STEPS, [10.0 ** (-2 - 0.5 * i) for i in range(7)], rtol=1e-14, atol=0)
    assert (dg.MIN_FIT_POINTS, dg.SLOPE_MARGIN, dg.ROUNDOFF_FACTOR) == (3, 0.5, 1e3)


def test_remainders_of_a_quadratic_along_the_unit_direction():
    # f = |x|^2 / 2: the gradient remainder is t^2 |v|^2 / 2 = t^2 / 2 for the normalised direction,
    # whatever length and sign the given direction has; the Hessian remainder is zero
    x = np.array([0.3, -1.2, 2.0])
    r = taylor_check(lambda y: 0.5 * float(y @ y), lambda y: y, x, hvp=lambda y, v: v,
                     direction=np.array([-6.0, 0.0, 8.0]))
    # f(x + t v) - f(x) - t g.v cancels: absolute rounding of a few eps f(x) (6e-16 seen at t = 1e-5)
    assert np.allclose(r.errors_gradient, 0.5 * dg.DEFAULT_STEPS ** 2, rtol=1e-6,
                       atol=16 * np.finfo(float).eps * 0.5 * float(x @ x))
    assert r.slope_hessian == float("inf") and r.passed  # exact along the direction: no points to fit
    assert abs(r.slope_gradient - 2.0) < 1e-4


def _power_law_check(p, *, g_shift=0.0):
    # along direction +1 from 0: f(t) = t + c t^p, f'(0) = 1 (+ shift); the remainder is c t^p exactly
    c = 1.0
    f = lambda y: float(y[0] + c * abs(y[0]) ** p)  # noqa: E731
    return taylor_check(f, lambda y: np.array([1.0 + g_shift]), np.zeros(1), direction=np.ones(1))


@pytest.mark.parametrize("p, passes", [(2.0, True), (1.5 + 1e-6, True), (1.5 - 1e-6, False), (1.0, False)])
def test_gradient_slope_passes_from_two_minus_the_margin(p, passes):
    r = _power_law_check(p)
    assert abs(r.slope_gradient - p) < 1e-7 and r.passed is passes


def test_fit_slope_needs_three_points_above_the_floor():
    steps = np.array([1e-2, 1e-3, 1e-4, 1e-5])
    errs = 5.0 * steps ** 3
    assert abs(dg._fit_slope(steps, errs, 0.0) - 3.0) < 1e-12
    below = float(np.nextafter(errs[2], 0.0))
    assert abs(dg._fit_slope(steps, errs, below) - 3.0) < 1e-12  # three above the floor: fitted
    assert dg._fit_slope(steps, errs, float(errs[2])) == float("inf")  # the third at the floor: two left


def test_a_wrong_hessian_fails_and_a_right_one_passes():
    x = np.array([0.5, -0.25])
    f = lambda y: float(np.sum(y ** 4))  # noqa: E731
    g = lambda y: 4 * y ** 3  # noqa: E731
    right = taylor_check(f, g, x, hvp=lambda y, v: 12 * y ** 2 * v, direction=np.array([1.0, 2.0]))
    wrong = taylor_check(f, g, x, hvp=lambda y, v: 12.1 * y ** 2 * v, direction=np.array([1.0, 2.0]))
    assert right.passed and abs(right.slope_hessian - 3.0) < 0.1
    assert not wrong.passed and abs(wrong.slope_hessian - 2.0) < 0.1


def test_a_result_cannot_be_altered():
    r = _power_law_check(2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.passed = False


@pytest.mark.parametrize("which", ["gradient", "hessian"])
def test_slopes_exactly_at_the_threshold_pass(monkeypatch, which):
    """The thresholds are inclusive: a fitted slope of exactly 2 - margin (gradient) or
    3 - margin (Hessian) passes, the float just below fails."""
    edge = {"gradient": 2.0 - dg.SLOPE_MARGIN, "hessian": 3.0 - dg.SLOPE_MARGIN}
    for value, passes in ((edge[which], True), (float(np.nextafter(edge[which], 0.0)), False)):
        slopes = iter([value, 10.0] if which == "gradient" else [10.0, value])
        monkeypatch.setattr(dg, "_fit_slope", lambda steps, errors, floor: next(slopes))
        r = taylor_check(lambda y: float(y @ y), lambda y: 2 * y, np.ones(2), hvp=lambda y, v: 2 * v,
                         direction=np.array([1.0, 0.0]))
        assert r.passed is passes
