"""landscape._interval's outward rounding pinned: every widened endpoint lies beyond the
neighbouring float of a correctly rounded result (sound), and not much further than the stated
widening |x| 2^-51 + 2^-1072 (tight): a few units in the last place for normal numbers, four
subnormal spacings at 0. A wider constant would stay sound, so it is its
stated value that is pinned here, at 0 where it is the whole widening.
"""
from __future__ import annotations

import numpy as np
import pytest

from landscape import _interval as I

TINY = 2.0 ** -1074  # the smallest subnormal


def test_the_widening_constants():
    assert I._WIDEN_REL == 2.0 ** -51 and I._WIDEN_ABS == 2.0 ** -1072 == 4 * TINY


def test_at_zero_the_widening_is_four_subnormal_spacings():
    assert I._down(0.0) == -4 * TINY and I._up(0.0) == 4 * TINY
    assert I._down(np.zeros(2)).tolist() == [-4 * TINY] * 2


@pytest.mark.parametrize("x", [1.0, -1.0, 3.0, 1e300, -1e-300, 5e-324, 2.0 ** -1022, 0.1, 123456.789, -7.25])
def test_widened_endpoints_are_sound_and_within_two_units(x):
    lo, hi = I._down(x), I._up(x)
    assert lo <= np.nextafter(x, -np.inf) and hi >= np.nextafter(x, np.inf)  # beyond the neighbours
    # tight: the widening is |x| 2^-51 + 2^-1072 up to its own rounding (a factor 2 bounds it)
    w = abs(x) * 2.0 ** -51 + 2.0 ** -1072
    assert 0 < x - lo <= 2 * w and 0 < hi - x <= 2 * w


def test_sqrt_of_an_interval_from_zero_starts_at_zero():
    """sqrt is never negative: the outward rounding of sqrt(0) is clipped back to 0, and a
    negative lower end is clipped to 0 before the root."""
    from landscape._interval import IntervalArray

    iv = IntervalArray(np.array([0.0, -1.0, 4.0]), np.array([4.0, 9.0, 9.0])).sqrt()
    assert iv.lo[0] == 0.0 and iv.lo[1] == 0.0 and 0.0 < iv.lo[2] <= 2.0
    assert iv.hi[0] >= 2.0 and iv.hi[1] >= 3.0 and iv.hi[2] >= 3.0


def test_the_float_pair_of_a_non_finite_ball_is_the_whole_line():
    """A ball that is not finite (nan or infinite midpoint or radius) encloses nothing useful:
    its outward float pair is (-inf, inf), never an empty or one-sided interval."""
    import math

    from flint import arb

    for ball in (arb("nan"), arb("inf"), arb("-inf"), arb(0, "inf")):
        assert I.arb_pair(ball) == (-math.inf, math.inf)
