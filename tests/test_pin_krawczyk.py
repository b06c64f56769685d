"""Pins of Krawczyk's box schedule (:mod:`landscape.enumeration._krawczyk`): the radii tried
start at four Newton steps and stop at 1e-2 of the point's scale ``1 + max|x|``, in the
real and the complex test alike.

On an affine system the Jacobian is constant, ``Y`` is its float inverse, so
``I - Y Df(X)`` is a round-off matrix and ``K - x`` is the Newton step up to round-off:
the first box, of radius four steps, passes whenever the schedule tries it.  With the
start moved off the exact zero by ``delta`` in one coordinate, the Newton step is exactly
``delta`` there (0 in the other), so the first radius is ``4 delta``: just below the cap it
must certify with that radius, just above it must be refused, at every scale ``c``.
"""
import numpy as np
import pytest
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

from landscape.enumeration._krawczyk import CompiledSystem, krawczyk, krawczyk_complex

R, x, y = ring("x,y", QQ)


def real(system, p, **kw):
    return krawczyk(system, p, **kw)


def cplx(system, p, **kw):
    return krawczyk_complex(system, p.astype(complex), **kw)


TESTS = pytest.mark.parametrize("test", [real, cplx], ids=["real", "complex"])


def affine(c):
    # x + y = 2c, x - 2y = -c: the one zero is (c, c); Jacobian [[1, 1], [1, -2]]
    return CompiledSystem([x + y - 2 * c, x - 2 * y + c], [x, y])


def start(c, share):
    """(c + delta, c) with 4 delta = share * scale and scale = 1 + c + delta (the test's own scale)."""
    a = share / 4.0
    delta = a * (1.0 + c) / (1.0 - a)
    return np.array([c + delta, float(c)]), delta


@pytest.mark.parametrize("c", [1, 100, 10**4])
@TESTS
def test_first_box_is_four_newton_steps_and_the_cap_is_one_percent_of_the_scale(c, test):
    system = affine(c)
    p, delta = start(c, 0.8e-2)  # first box 0.8 % of the scale: inside the cap
    kr = test(system, p)
    assert kr.certified
    assert kr.radius == pytest.approx(4 * delta, rel=1e-12, abs=0)
    assert np.all(np.abs(np.asarray(kr.center) - p) == 0)  # the box is proved around the start itself
    # the exact zero (c, c) is in the box
    assert abs(p[0] - c) <= kr.radius and abs(p[1] - c) <= kr.radius
    p, delta = start(c, 1.2e-2)  # first box 1.2 % of the scale: beyond the cap, nothing is tried
    kr = test(system, p)
    assert not kr.certified and kr.radius == 0.0


@TESTS
def test_a_box_of_fewer_than_one_newton_step_is_refused(test):
    # the zero lies delta away from the centre: a box of radius < delta cannot hold it
    system = affine(3)
    p, delta = start(3, 0.8e-2)
    assert not test(system, p, radii=[0.9 * delta]).certified
    kr = test(system, p, radii=[0.9 * delta, 1.1 * delta])
    assert kr.certified and kr.radius == 1.1 * delta


# ----------------------------------------------------------------------------- box overlaps
@pytest.mark.parametrize("gap, overlap", [(1.0, True), (1.0 - 1e-9, True), (1.0 + 1e-9, False)])
def test_touching_boxes_overlap_and_separated_ones_do_not(gap, overlap):
    """Closed max-norm boxes of radii 1: centres 2 gap apart overlap when gap <= 1 (touching
    counts: the proof of disjointness must be strict, with a relative slack of 1e-12)."""
    from landscape.enumeration._krawczyk import boxes_overlap

    C = np.array([[0.0, 5.0], [2.0 * gap, 5.0]], dtype=complex)
    assert (boxes_overlap(C, np.array([1.0, 1.0])) == [(0, 1)]) is overlap


@pytest.mark.parametrize("radius", [0.25, 3.0, 50.0])
def test_overlaps_are_found_for_boxes_of_any_size(radius):
    """The sweep along the first coordinate compares every pair within 2 max(r) of each
    other: boxes larger than 1 included (centres 1.8 r apart overlap; 2.2 r apart do not)."""
    from landscape.enumeration._krawczyk import boxes_overlap

    C = np.array([[0.0], [1.8 * radius], [10.0 * radius]], dtype=complex)
    r = np.full(3, radius)
    assert boxes_overlap(C, r) == [(0, 1)]
    C[1, 0] = 2.2 * radius
    assert boxes_overlap(C, r) == []


def test_the_overlap_sweep_orders_the_boxes_by_the_swept_coordinate():
    """Three boxes of radius 0.2 in C^2, the overlapping pair (0, 2) listed apart and the far
    box between them in the second coordinate: the sweep is along the first coordinate's real
    part, so it must be sorted by that one (sorted by another, it stops at the far box first
    and misses the pair)."""
    from landscape.enumeration._krawczyk import boxes_overlap

    C = np.array([[0.0, 0.0], [10.0, 0.05], [0.1, 0.1]], dtype=complex)
    assert boxes_overlap(C, np.full(3, 0.2)) == [(0, 2)]


@pytest.mark.parametrize("newton,scale,r0", [(1e-3, 1.0, 4e-3), (1e-20, 2.0, 2e-14)])
def test_box_radii_start_at_four_newton_steps_and_grow_by_a_hundred(newton, scale, r0):
    """Radii tried: r0 = max(4 x the Newton step, 1e-14 x the scale), then 100 r0, ... (six)."""
    from landscape.enumeration._krawczyk import _radii

    got = _radii(newton, scale)
    assert got == pytest.approx([r0 * 100.0**j for j in range(6)], rel=1e-15, abs=0)


@pytest.mark.parametrize("newton,scale,r0", [(1e-3, 1.0, 2e-3), (1e-20, 2.0, 8e-16), (0.0, 0.5, 2e-16)])
def test_fine_radii_start_at_two_newton_steps_and_grow_by_four(newton, scale, r0):
    """With a precise Y: r0 = max(2 x the Newton step, 4e-16 x the scale), then 4 r0, 16 r0,
    ... (twelve radii, every one larger than the last; below 1 as well as above)."""
    from landscape.enumeration._krawczyk import _box_radii, _fine_radii

    got = _fine_radii(newton, scale)
    assert got == pytest.approx([r0 * 4.0**j for j in range(12)], rel=1e-15, abs=0)
    assert _box_radii(newton, scale, 200) == got and _box_radii(newton, scale, None) != got


@pytest.mark.parametrize("total", [1.0, 0.25, 8.0])
@pytest.mark.parametrize("excess, overlap", [(0.5e-12, True), (2e-12, False)])
def test_disjointness_needs_the_sum_of_radii_times_one_plus_1e_12(total, excess, overlap):
    """Two boxes whose radii sum to ``total`` are proved disjoint only when their centres are
    more than total x (1 + 1e-12) apart: at (1 + 0.5e-12) they still count as overlapping,
    at (1 + 2e-12) they do not -- a relative margin, at every size."""
    from landscape.enumeration._krawczyk import boxes_overlap

    C = np.array([[0.0], [total * (1 + excess)]], dtype=complex)
    assert (boxes_overlap(C, np.array([0.5 * total, 0.5 * total])) == [(0, 1)]) is overlap


def test_a_system_with_more_equations_than_unknowns_is_refused():
    import sympy

    from landscape.enumeration._krawczyk import CompiledSystem

    x, y = sympy.symbols("x y")
    with pytest.raises(ValueError, match="Krawczyk needs a square system, got 3 equations in 2 unknowns"):
        CompiledSystem([x - 1, y - 2, x * y - 2], [x, y])
    with pytest.raises(ValueError, match="got 1 equations in 2 unknowns"):
        CompiledSystem([x - 1], [x, y])
