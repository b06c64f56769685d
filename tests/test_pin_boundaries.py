"""Every verdict threshold at its exact boundary: is the value AT the threshold in or out?

The constant sweeps move each tolerance by a factor; this file pins the other half of a
threshold, its strictness (``tools/constant-sweep-comparisons.txt``: every ordering
comparison of the verdict code swept to its strict or non-strict twin). Each test puts a
quantity exactly on its threshold -- by planting the quotient spectrum, by choosing dyadic
or otherwise exactly representable numbers, or by setting a module constant to the value
that makes the product land on the measured quantity to the last bit (:func:`exact_factor`)
-- and states which side the boundary belongs to, with the point one ulp beyond it on the
other side where that is what distinguishes the two readings.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from landscape import _classify as cl
from landscape._curvature import ZERO_EIGENVALUE_RTOL, SpectrumSummary
from landscape._factored import reduced_grad, reduced_loss
from landscape._instances import random_instance
from landscape._search import problem_scale

from ._pin_tools import patch_thm32_structures, thm32_structure_at


def exact_input(f, target: float, guess: float) -> float:
    """A float ``c`` near ``guess`` with ``f(c) == target`` exactly, ``f`` increasing (walked
    from ``guess`` one ulp at a time); fails the test if it steps over ``target``."""
    c, up = guess, f(guess) < target
    for _ in range(256):
        if f(c) == target:
            return c
        c = math.nextafter(c, math.inf if up else -math.inf)
        if (f(c) > target) == up and f(c) != target:
            break
    pytest.fail(f"no float c with f(c) == {target!r} near {guess!r}")


def exact_factor(target: float, scale: float) -> float:
    """A float ``c`` with ``c * scale == target`` exactly."""
    return exact_input(lambda c: c * scale, target, target / scale)


def _spectrum(lam, T=3, d=2, k=1):
    lam = np.sort(np.asarray(lam, dtype=float))
    return SpectrumSummary(
        float(lam[0]), None, np.ones((T, d, k)) / math.sqrt(T * d * k), 0, None, "dense", lam)


# ------------------------------------------------------------------------------------------
# landscape/_classify.py
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def origin():
    """U = 0 of a T = 3 instance: the gradient is exactly zero there, so the eigenvalue
    tolerance is exactly ZERO_EIGENVALUE_RTOL * rho and h = 0; G(0) > 0."""
    prob = random_instance(3, 2, 3, 1).problem
    U = np.zeros((3, 2, 1))
    assert float(np.linalg.norm(reduced_grad(prob, U))) == 0.0 and reduced_loss(prob, U) > 0
    return prob, U


def test_an_eigenvalue_exactly_at_plus_or_minus_eta_is_a_zero_eigenvalue(origin):
    """The quotient eigenvalues split into negative (< -eta), zero (|lambda| <= eta) and
    positive (> eta): at exactly -eta the point is not a strict saddle, at exactly +eta not a
    spurious candidate -- both are 'cannot tell' with one zero eigenvalue; one ulp further
    out each becomes what it then is."""
    prob, U = origin
    rho = max(2.0, problem_scale(prob))
    eta = ZERO_EIGENVALUE_RTOL * rho
    for lam0, kind, n_neg, n_zero in [(-eta, cl.DEGENERATE, 0, 1), (eta, cl.DEGENERATE, 0, 1),
                                      (math.nextafter(-eta, -1.0), cl.STRICT_SADDLE, 1, 0),
                                      (math.nextafter(eta, 1.0), cl.SPURIOUS_CANDIDATE, 0, 0)]:
        c = cl.classify(prob, U, spectrum=_spectrum([lam0, 1.0, 2.0]))
        assert c.eigenvalue_tolerance == eta and c.kantorovich_h == 0.0
        assert (c.kind, c.n_negative, c.n_zero) == (kind, n_neg, n_zero), lam0
        if kind == cl.DEGENERATE:  # the reason counts the same zero eigenvalue
            assert "cannot tell: 1 near-zero quotient eigenvalue(s)" in c.reason


def test_kantorovich_condition_includes_h_equal_to_one_half():
    """h = L3 ||g|| / sigma^2 with L3 = 12 (m + 2 ||g|| / sigma): at m = 3/4, ||g|| = 3/8,
    sigma = 3 every step is exact, L3 = 12 and h = 1/2, which the theorem admits; one ulp
    more gradient and it does not."""
    L3, h, ok = cl.kantorovich(0.75, 0.375, 3.0)
    assert (L3, h, ok) == (12.0, 0.5, True)
    _, h2, ok2 = cl.kantorovich(0.75, math.nextafter(0.375, 1.0), 3.0)
    assert h2 > 0.5 and not ok2
    assert cl.kantorovich(1.0, 0.0, 0.0)[1:] == (math.inf, False)  # sigma = 0: no guarantee


def _off_critical(seed=4):
    prob = random_instance(seed, 2, 3, 1).problem
    U = np.random.default_rng(seed).standard_normal((3, 2, 1))
    return prob, U


def test_a_gradient_exactly_at_the_critical_tolerance_counts_as_critical(monkeypatch):
    """A point with no Kantorovich guarantee is 'not critical' only when ||grad G|| exceeds
    CRITICAL_GTOL_REL s^1.5; with the constant set so that the tolerance equals ||grad G||
    to the last bit, the point is treated as critical (the module's stated ``<=``)."""
    prob, U = _off_critical()
    base = cl.classify(prob, U)
    assert base.kind == cl.NOT_CRITICAL and base.kantorovich_h > 0.5
    s = problem_scale(prob)
    monkeypatch.setattr(cl, "CRITICAL_GTOL_REL", exact_factor(base.grad_norm, s ** 1.5))
    assert cl.classify(prob, U).kind != cl.NOT_CRITICAL
    monkeypatch.setattr(cl, "CRITICAL_GTOL_REL", math.nextafter(cl.CRITICAL_GTOL_REL, 0.0))
    if cl.CRITICAL_GTOL_REL * s ** 1.5 < base.grad_norm:
        assert cl.classify(prob, U).kind == cl.NOT_CRITICAL


BIG = 1e6  # planted eigenvalues this large make h small: a nondegenerate point


def test_a_loss_exactly_at_the_loss_tolerance_is_a_global_minimum(monkeypatch):
    """G <= loss_tol is a global minimum, the boundary included: with LOSS_SAFETY set so that
    LOSS_SAFETY ||g||^2 / (2 lambda_+) equals G to the last bit (lambda_+ = BIG planted), the
    point is a global minimum, and with the next smaller constant it is not."""
    prob, U = _off_critical(7)
    spec = _spectrum([BIG, 2 * BIG, 3 * BIG])
    base = cl.classify(prob, U, spectrum=spec)
    assert base.kind == cl.SPURIOUS_CANDIDATE and base.kantorovich_h <= 0.5
    loss, gn = reduced_loss(prob, U), base.grad_norm
    c = exact_input(lambda c: c * gn ** 2 / (2.0 * BIG), loss, loss * 2.0 * BIG / gn ** 2)
    monkeypatch.setattr(cl, "LOSS_SAFETY", c)
    at = cl.classify(prob, U, spectrum=spec)
    assert at.loss_tolerance == loss and at.kind == cl.GLOBAL_MINIMUM
    monkeypatch.setattr(cl, "LOSS_SAFETY", math.nextafter(c, 0.0))
    assert cl.classify(prob, U, spectrum=spec).kind == cl.SPURIOUS_CANDIDATE


def test_the_smallest_eigenvalue_strictly_above_eta_sets_the_loss_tolerance():
    """lambda_+ is the smallest eigenvalue strictly above eta: one exactly at eta is a zero
    eigenvalue and does not enter LOSS_SAFETY ||g||^2 / (2 lambda_+). (With sigma = eta the
    Kantorovich test fails, so eta is the loose tolerance, which the planted spectrum does not
    move: ZERO_EIGENVALUE_RTOL * rho stays far below it.)"""
    prob, U = _off_critical(9)
    eta = cl.classify(prob, U, spectrum=_spectrum([1e-30, BIG, 2 * BIG])).eigenvalue_tolerance
    c = cl.classify(prob, U, spectrum=_spectrum([eta, BIG, 2 * BIG]))
    assert c.eigenvalue_tolerance == eta and c.kantorovich_h > 0.5 and c.n_zero == 1
    assert c.loss_tolerance == cl.LOSS_SAFETY * c.grad_norm ** 2 / (2.0 * BIG)


def test_a_planted_A_star_exactly_at_the_match_tolerance_is_recovered(monkeypatch):
    """||A_hat - A*||_F <= A_MATCH_RTOL (s + ||A*||_F) recovers A*, the boundary included."""
    inst = random_instance(11, 2, 3, 1)
    prob = inst.problem
    U = inst.U_star
    s = problem_scale(prob)
    A_star = prob.optimal_A(U) + 1e-3
    dist = float(np.linalg.norm(prob.optimal_A(U) - A_star))
    scale = s + float(np.linalg.norm(A_star))
    monkeypatch.setattr(cl, "A_MATCH_RTOL", exact_factor(dist, scale))
    c = cl.classify(prob, U, A_star=A_star)
    assert c.kind == cl.GLOBAL_MINIMUM and c.A_star_distance == dist and c.recovers_A_star is True
    monkeypatch.setattr(cl, "A_MATCH_RTOL", math.nextafter(cl.A_MATCH_RTOL, 0.0))
    if cl.A_MATCH_RTOL * scale < dist:
        assert cl.classify(prob, U, A_star=A_star).recovers_A_star is False


def test_numerical_rank_counts_singular_values_strictly_above_the_relative_cutoff():
    """A singular value exactly at TANGENT_RANK_RTOL * sigma_max is numerically zero."""
    r = cl.TANGENT_RANK_RTOL
    assert cl._rank(np.diag([1.0, r])) == 1
    assert cl._rank(np.diag([1.0, math.nextafter(r, 1.0)])) == 2
    assert cl._rank(np.zeros((2, 2))) == 0 and cl._rank(np.zeros((0, 3))) == 0


def test_a_planted_eigenvalue_exactly_at_the_loose_tolerance_is_explained_by_the_okk_family():
    """For T = 2 the k^2 eigenvalues smallest in size are the O(k, k) family's zeros when
    |lambda| <= eta_loose = max(ZERO_EIGENVALUE_RTOL rho, DEGENERATE_ETA_FACTOR s^1/2 ||g||^1/3),
    the boundary included: planted exactly there, it is set aside and the rest decides."""
    inst = random_instance(5, 2, 2, 1)
    prob = inst.problem
    U = np.random.default_rng(5).standard_normal((2, 2, 1))
    assert cl.okk_extra_dimension(U) == 1
    gn = float(np.linalg.norm(reduced_grad(prob, U)))
    s = problem_scale(prob)
    rho = max(2 * BIG, s)
    eta_loose = max(ZERO_EIGENVALUE_RTOL * rho, cl.DEGENERATE_ETA_FACTOR * np.sqrt(s) * gn ** (1 / 3))
    c = cl.classify(prob, U, spectrum=_spectrum([eta_loose, BIG, 2 * BIG], T=2))
    assert (c.kind, c.sigma, c.n_zero_symmetry) == (cl.SPURIOUS_CANDIDATE, BIG, 1)
    c2 = cl.classify(prob, U, spectrum=_spectrum([math.nextafter(eta_loose, math.inf), BIG, 2 * BIG], T=2))
    assert c2.sigma == math.nextafter(eta_loose, math.inf) and c2.kind != cl.SPURIOUS_CANDIDATE


def _dedup_points():
    """Two T = 2 points with different stacks and the same D_U = U_1 U_1^T - U_2 U_2^T, to the
    last bit: 4^2 - 1^2 = 8^2 - 7^2 = 15."""
    prob = random_instance(2, 2, 2, 1).problem
    U = np.array([[[4.0], [0.0]], [[1.0], [0.0]]])
    V = np.array([[[8.0], [0.0]], [[7.0], [0.0]]])
    c = dataclasses.replace(cl.classify(prob, U, spectrum=_spectrum([1.0, 2.0, 3.0], T=2)), kind=cl.DEGENERATE)
    return prob, U, V, c


def test_deduplication_at_zero_tolerance_joins_equal_stacks_and_links_equal_families():
    """Two stacks are one class when ||P - P'|| <= rtol (s + ||P'||), two classes one family
    when ||D - D'|| <= rtol (s + ||D'||): the boundary is in, so at rtol = 0 equal stacks
    (U and -U) still form one class, and different stacks with equal D one family."""
    prob, U, V, c = _dedup_points()
    same = cl.deduplicate(prob, [U, -U], [c, c], rtol=0.0)
    assert len(same) == 1 and same[0].members == (0, 1)
    fam = cl.deduplicate(prob, [U, V], [c, c], rtol=0.0)
    assert [k.members for k in fam] == [(0,), (1,)] and [k.family for k in fam] == [0, 0]
    W = np.array([[[8.0], [0.0]], [[6.0], [0.0]]])  # D = 28: another family
    assert [k.family for k in cl.deduplicate(prob, [U, W], [c, c], rtol=0.0)] == [0, 1]


# ------------------------------------------------------------------------------------------
# landscape/enumeration/_krawczyk.py
# ------------------------------------------------------------------------------------------

def _linear_system():
    """f(x) = x - 1: Jacobian 1, so with Y = 1 the Krawczyk image of the box x +- r is the
    single point 1 and K - x = -(x - 1), exactly, in arb."""
    from sympy.polys.domains import QQ
    from sympy.polys.rings import ring

    from landscape.enumeration._krawczyk import CompiledSystem

    R, x = ring("x", QQ)
    return CompiledSystem([x - 1], [x])


@pytest.mark.parametrize("complex_box", [False, True])
def test_krawczyk_needs_the_image_strictly_inside_the_box(complex_box):
    """Uniqueness needs K(X) in the interior of X: with the centre 2^-20 from the root the
    image lies exactly on the boundary of the box of radius 2^-20 (not certified) and inside
    that of the next float radius (certified), in the real and the complex test alike."""
    from landscape.enumeration._krawczyk import krawczyk, krawczyk_complex

    sys_ = _linear_system()
    delta = 2.0 ** -20
    x = np.array([1.0 + delta], dtype=complex if complex_box else float)
    test = krawczyk_complex if complex_box else krawczyk
    assert not test(sys_, x, radii=[delta]).certified
    assert test(sys_, x, radii=[math.nextafter(delta, 1.0)]).certified
    if complex_box:  # the imaginary part is held to the same strict test
        y = np.array([1.0 + 1j * delta])
        assert not test(sys_, y, radii=[delta]).certified
        assert test(sys_, y, radii=[math.nextafter(delta, 1.0)]).certified


@pytest.mark.parametrize("complex_box", [False, True])
def test_krawczyk_tries_boxes_up_to_one_hundredth_of_the_scale_inclusive(complex_box):
    """Boxes wider than 1e-2 (1 + max |x|) are not tried; one exactly that wide is."""
    from landscape.enumeration._krawczyk import krawczyk, krawczyk_complex

    sys_ = _linear_system()
    x = np.array([1.0 + 2.0 ** -10], dtype=complex if complex_box else float)
    test = krawczyk_complex if complex_box else krawczyk
    edge = 1e-2 * (1.0 + float(np.max(np.abs(x))))
    assert test(sys_, x, radii=[edge]).certified
    assert test(sys_, x, radii=[edge]).radius == edge
    assert not test(sys_, x, radii=[math.nextafter(edge, 1.0)]).certified


def test_boxes_overlap_accepts_zero_radii_and_refuses_negative_ones():
    from landscape.enumeration._krawczyk import boxes_overlap

    C = np.array([[0.0 + 0.0j], [1.0 + 0.0j]])
    assert boxes_overlap(C, np.array([0.0, 0.0])) == []
    assert boxes_overlap(C, np.array([-0.0, 0.0])) == []
    with pytest.raises(ValueError, match="non-negative radii"):
        boxes_overlap(C, np.array([0.0, -5e-324]))


def test_boxes_exactly_at_the_separation_margin_are_not_proved_disjoint():
    """Two boxes are proved disjoint only when their centres differ by MORE than
    (r_a + r_b)(1 + 1e-12) in some coordinate: at exactly that distance they are reported."""
    from landscape.enumeration._krawczyk import boxes_overlap

    gap = (0.5 + 0.5) * (1 + 1e-12)
    r = np.array([0.5, 0.5])
    assert boxes_overlap(np.array([[0.0 + 0.0j], [gap + 0.0j]]), r) == [(0, 1)]
    assert boxes_overlap(np.array([[0.0 + 0.0j], [0.0 + 1j * gap]]), r) == [(0, 1)]
    assert boxes_overlap(np.array([[0.0 + 0.0j], [math.nextafter(gap, 2.0) + 0.0j]]), r) == []


# ------------------------------------------------------------------------------------------
# landscape/enumeration/_core.py, _agreement.py
# ------------------------------------------------------------------------------------------

def test_lift_reads_an_eigenvalue_exactly_at_minus_tol_as_psd_and_1e30_as_zero():
    """Route 1's lift: X_t is PSD when its smallest eigenvalue is >= -1e-9 max(1, |lambda|),
    the boundary included; a block is exactly zero when every entry is <= 1e-30 in size."""
    from landscape.enumeration._core import _lift

    _, ok, zero = _lift(np.array([[[1.0, 0.0], [0.0, -1e-9]]]), 1)
    assert ok and zero == []
    _, ok, _ = _lift(np.array([[[1.0, 0.0], [0.0, math.nextafter(-1e-9, -1.0)]]]), 1)
    assert not ok
    U, ok, zero = _lift(np.array([[[1e-30, 0.0], [0.0, -1e-30]]]), 1)
    assert ok and zero == [0] and not U.any()
    _, _, zero = _lift(np.array([[[math.nextafter(1e-30, 1.0), 0.0], [0.0, 0.0]]]), 1)
    assert zero == []


def test_agreement_counts_a_block_nonzero_only_beyond_its_box_radius():
    """A block whose largest entry equals the box radius may be zero inside the box."""
    from landscape.enumeration._agreement import _orbits

    groups = _orbits([{"center": [0.5, 0.0, 1.0, 0.0], "radius": 0.5}], 2, 2)
    assert [g[2] for g in groups] == [1]
    groups = _orbits([{"center": [math.nextafter(0.5, 1.0), 0.0, 1.0, 0.0], "radius": 0.5}], 2, 2)
    assert [g[2] for g in groups] == [2]


def test_the_certified_system_is_named_by_its_symmetry_from_k_equal_two():
    """The O(k) slice exists from k = 2 on (k = 1 has only signs); T = 2 adds the boost slice."""
    from landscape.enumeration._points import system_label

    assert system_label(3, 2) == system_label(4, 3) == "gradient on the slice"
    assert system_label(3, 1) == system_label(5, 1) == "gradient"
    assert system_label(2, 1) == system_label(2, 2) == "gradient + mu * grad(u1.u2), u1.u2 (T = 2 boost slice)"


def test_slice_representative_refuses_a_top_block_whose_pivot_is_at_the_cutoff():
    """A top k x k block is singular for the slice when a pivot of its QR is <= 1e-10
    max(1, max |entry|) in size, the boundary included."""
    from landscape.enumeration._points import _to_slice

    U = np.zeros((1, 3, 2))
    U[0, :2, :] = np.diag([1.0, 1e-10])
    assert _to_slice(U) is None
    U[0, 1, 1] = math.nextafter(1e-10, 1.0)
    assert _to_slice(U) is not None


# ------------------------------------------------------------------------------------------
# landscape/certificates/net.py
# ------------------------------------------------------------------------------------------

def test_net_size_estimate_needs_strictly_positive_radius_and_spacing():
    from landscape.certificates.net import net_size_estimate

    for r, eps in [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0)]:
        with pytest.raises(ValueError, match="must be positive"):
            net_size_estimate(3, r, eps)
    assert net_size_estimate(3, 5e-324, 5e-324).n == 3  # the smallest positive values are accepted
    assert net_size_estimate(3, 1.0, 1.0).points_per_axis == 3  # ceil(sqrt 2) + 1


def test_net_shapes_refuse_a_schur_complement_with_an_exactly_zero_eigenvalue():
    """Identical tasks make S(0) = 0 exactly: lambda_min = 0 is not positive definite, so
    neither the ellipsoid (S^-1/2) nor the sphere's suggested parameters exist there."""
    from landscape._objective import LoraMLProblem
    from landscape.certificates import CertificateNotApplicable
    from landscape.certificates.net import _net_shape_matrix, _suggest_net_parameters

    tasks = np.array([[[1.0, 2.0], [3.0, 4.0]]] * 2)
    prob, U = LoraMLProblem(tasks, 1), np.zeros((2, 2, 1))
    assert np.linalg.eigvalsh(prob.schur_complement(U))[0] == 0.0
    with pytest.raises(CertificateNotApplicable, match="not positive definite"):
        _net_shape_matrix(prob, U, "ellipsoid")
    with pytest.raises(CertificateNotApplicable, match="not positive definite"):
        _suggest_net_parameters(prob, U, None)


# ------------------------------------------------------------------------------------------
# landscape/certificates/taylor_fp.py
# ------------------------------------------------------------------------------------------

def test_directed_rounding_of_rationals_is_tight_and_exact_on_floats():
    """_up / _down: the nearest float on their side, the float itself when x is one;
    _sqrt_up / _sqrt_down: the nearest float whose square is on their side of x, the exact
    root when x is a float's square; 0 for x <= 0."""
    from fractions import Fraction

    from landscape.certificates.taylor_fp import _down, _sqrt_down, _sqrt_up, _up

    for f in (1.0, 0.1, 5e-324, 1e300, -2.5):
        assert _up(Fraction(f)) == f == _down(Fraction(f))
    third = Fraction(1, 3)
    u, dn = _up(third), _down(third)
    assert Fraction(dn) < third < Fraction(u) and math.nextafter(dn, 1.0) == u
    for r in (2.0, 0.75, 3.0 ** 0.5):
        x = Fraction(r) * Fraction(r)
        assert _sqrt_up(x) == r == _sqrt_down(x)
    two = Fraction(2)
    su, sd = _sqrt_up(two), _sqrt_down(two)
    assert Fraction(sd) ** 2 < two < Fraction(su) ** 2 and math.nextafter(sd, 2.0) == su
    assert _sqrt_up(Fraction(0)) == _sqrt_down(Fraction(0)) == 0.0 == _sqrt_up(Fraction(-1))


def test_cholesky_bound_accepts_factor_entries_and_diagonals_exactly_at_its_range_limits():
    """The float Cholesky bound refuses factors that could have underflowed or overflowed:
    a factor entry must be >= 2^-500 and the shifted diagonal <= 2^500. Both limits are
    inclusive (2^-500 squared is 2^-1000, still normal): a 1 x 1 matrix 2^-1000 (factor
    exactly 2^-500) and one of 2^500 give a bound; one ulp beyond either does not."""
    from landscape.certificates.taylor_fp import _DIAG_MAX, _FACTOR_MIN, _cholesky_lower_bound

    assert _FACTOR_MIN ** 2 == 2.0 ** -1000
    lo = _cholesky_lower_bound(np.array([[_FACTOR_MIN ** 2]]), 0.0)
    assert lo is not None and lo <= _FACTOR_MIN ** 2
    assert _cholesky_lower_bound(np.array([[math.nextafter(_FACTOR_MIN ** 2, 0.0)]]), 0.0) is None
    hi = _cholesky_lower_bound(np.array([[_DIAG_MAX]]), 0.0)
    assert hi is not None and hi <= _DIAG_MAX
    assert _cholesky_lower_bound(np.array([[math.nextafter(_DIAG_MAX, math.inf)]]), 0.0) is None


def test_embedding_needs_a_strictly_larger_dimension():
    from landscape._instances import f2_spurious_instance
    from landscape.certificates.taylor_fp import embed_spurious_instance

    inst, U0 = f2_spurious_instance()
    tasks, U_star = inst.problem.tasks, inst.U_star
    with pytest.raises(ValueError, match="must exceed"):
        embed_spurious_instance(tasks, U0, U_star, 3, np.random.default_rng(0))
    out = embed_spurious_instance(tasks, U0, U_star, 4, np.random.default_rng(0))
    assert np.shape(out[0]) == (3, 4, 4)


# ------------------------------------------------------------------------------------------
# theory/_checks_minima.py
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, at, beyond, key", [
    ("asym", 1e-3, math.nextafter(1e-3, 1.0), "Q symmetric"),
    ("q_consistency", 1e-3, math.nextafter(1e-3, 1.0), "Q = W_t - U_tU_t^T for all t"),
    ("min_eig_W_minus_Q", -1e-3, math.nextafter(-1e-3, -1.0), "Q <= W_t"),
    ("test_rank", 6, 7, "rank(W_T+1 - Q) <= 3k"),
])
def test_thm32_conclusions_hold_with_the_measured_value_exactly_at_tau(field, at, beyond, key):
    """Each conclusion of Thm 3.2 / Cor 1 holds up to tau = 1e-3 (or 3k = 6), the boundary
    included, and fails one ulp (or one rank) beyond."""
    assert thm32_structure_at(**{field: at}).holds(2, 7)[key] is True
    assert thm32_structure_at(**{field: beyond}).holds(2, 7)[key] is False


@pytest.mark.parametrize("starts, need", [(4, 3), (12, 3), (13, 4), (20, 5), (21, 6)])
def test_a_search_with_exactly_the_required_zeros_found_enough(starts, need):
    from theory._checks_minima import search_found_enough

    assert search_found_enough(need, starts) and not search_found_enough(need - 1, starts)


def _thm32_case(monkeypatch, label, **changes):
    """The check_thm32 case ``label`` with the measured structures changed by ``changes``
    (field -> function of the measured structure), on d = 5, k = 1, two boosts."""
    import theory._checks_minima as M

    patch_thm32_structures(monkeypatch, **changes)
    res = M.check_thm32(np.random.default_rng(0), configs=((5, 1),), boosts=2)
    return next(c for c in res.cases if label in c.label)


def _up(x):
    return math.nextafter(x, math.inf)


def _dn(x):
    return math.nextafter(x, -math.inf)


@pytest.mark.parametrize("label, field, at, at_passes", [
    ("loss on the O(k,k) family", "loss", lambda r: 0.5 * (r.tau / _minima().EIG_ZERO_FACTOR) ** 2, True),
    ("Q symmetric", "asym", lambda r: r.tau, True),
    ("Q symmetric", "q_consistency", lambda r: r.tau, True),
    ("min eig(W_t - Q) >= 0", "min_eig_W_minus_Q", lambda r: -r.tau, True),
    ("rank-3k fine-tune loss (Cor 1)", "ey_3k", lambda r: 0.5 * 5 * r.tau ** 2, True),
    ("rank-k fine-tune loss > 0", "ey_k", lambda r: 0.5 * 5 * r.tau ** 2, False),
    ("A != A* (min ||Q||_F)", "q_norm", lambda r: r.tau, False),
])
def test_thm32_cases_at_their_exact_boundaries(monkeypatch, label, field, at, at_passes):
    """Every Thm 3.2 / Cor 1 case with the measured quantity of every point exactly on its
    bound: the '<= bound' conclusions pass there and the '> bound' ones (a rank-k fine-tune
    cannot be exact, A != A*) fail; one ulp to the other side flips each."""
    assert bool(_thm32_case(monkeypatch, label, **{field: at}).passed) is at_passes
    other = _up if field not in ("min_eig_W_minus_Q",) else _dn
    beyond = (lambda r: other(at(r))) if at_passes else (lambda r: _up(at(r)))
    assert bool(_thm32_case(monkeypatch, label, **{field: beyond}).passed) is (not at_passes)


@pytest.mark.parametrize("label, field, at, beyond", [
    ("inertia(Q) <= (k,k)", "inertia", (1, 1), (2, 1)),
    ("rank(W_3 - Q) <= 3k", "test_rank", 3, 4),
])
def test_thm32_count_cases_at_their_exact_boundaries(monkeypatch, label, field, at, beyond):
    assert _thm32_case(monkeypatch, label, **{field: lambda r: at}).passed
    assert not _thm32_case(monkeypatch, label, **{field: lambda r: beyond}).passed


def test_thm32_okk_case_passes_with_the_error_exactly_at_its_tolerance(monkeypatch):
    import theory._checks_minima as M

    err = M.check_thm32(np.random.default_rng(0), configs=((5, 1),), boosts=2).cases[0]
    assert "Lambda J Lambda^T = J" in err.label and err.measured > 0
    monkeypatch.setattr(M, "OKK_RTOL", err.measured)
    assert M.check_thm32(np.random.default_rng(0), configs=((5, 1),), boosts=2).cases[0].passed
    monkeypatch.setattr(M, "OKK_RTOL", _dn(err.measured))
    assert not M.check_thm32(np.random.default_rng(0), configs=((5, 1),), boosts=2).cases[0].passed


def _minima():
    import theory._checks_minima as M

    return M


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_thm32_structure_counts_eigenvalues_and_singular_values_strictly_beyond_tau(sign):
    """An exact global minimiser (loss 0) whose Q = A - A* has the eigenvalue +-tau exactly,
    and W_test - Q the singular value tau: tau is a zero there (inertia (0, 0), test rank 1).
    Q sits in a coordinate of its own, so every residual cancels exactly and tau (set by the
    norms of the tasks, which an entry of size tau does not move) is the same with or
    without it."""
    from landscape._objective import LoraMLProblem
    from theory._checks_minima import thm32_structure

    U = np.array([[[1.0], [0.0]], [[2.0], [0.0]]])
    uu = U @ np.swapaxes(U, 1, 2)

    def structure(q):
        Q = np.diag([0.0, q])
        tasks = Q[None] + uu  # A* = 0, W_t = Q + u_t u_t^T
        W_test = np.diag([5.0, q]) + Q
        return thm32_structure(LoraMLProblem(tasks, 1), Q, U, np.zeros((2, 2)), W_test)

    tau = structure(0.0).tau
    s = structure(sign * tau)
    assert s.loss == 0.0 and s.tau == tau
    assert s.inertia == (0, 0) and s.test_rank == 1
    beyond = structure(sign * math.nextafter(tau, 1.0))
    assert beyond.tau == tau and beyond.inertia == ((1, 0) if sign > 0 else (0, 1)) and beyond.test_rank == 2


# ------------------------------------------------------------------------------------------
# theory/_independent_fp.py: the independent verifier of float Taylor certificates
# ------------------------------------------------------------------------------------------

def _fp_doc(*, g_up=0.0, m_up=0.0, lam=1.0, radius=0.5, G=(0.5, 0.5), witness=True, GW=(0.5, 0.5),
            margins=None, verdict=None):
    """A taylor_fp certificate document at U0 = 0 of the tasks diag(1, 0), diag(0, 1): there
    G = 1/2 exactly (a_t = +-diag(1/2, -1/2)), the gradient and max ||u_t|| are exactly 0, and
    the witness (U0 itself) has G = 1/2. Bounds, enclosures and margins are what the test
    plants; the verifier recomputes everything exactly."""
    from theory._independent_fp import VERDICT_NONE

    tasks = [[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]
    point = [[[0.0], [0.0]], [[0.0], [0.0]]]
    doc = {"kind": "taylor_fp", "rank": 1, "tasks": tasks, "point": point, "radius": radius,
           "bounds": {"grad_norm_upper": g_up, "m_upper": m_up, "lambda_min_quotient_lower": lam},
           "enclosures": {"G(U0)": list(G)}, "margins": margins or {}, "verdict": verdict or VERDICT_NONE}
    if witness:
        doc["witness"] = point
        doc["enclosures"]["G(witness)"] = list(GW)
    return doc


def test_independent_verifier_accepts_bounds_and_enclosures_that_equal_the_exact_values():
    """Every 'contains' or 'bounds' check of the verifier includes equality: G(U0) and
    G(witness) enclosed by [1/2, 1/2], the gradient bound 0 and the bound 0 on max ||u_t||
    at U0 = 0 all hold; one ulp inside any of them fails."""
    from theory._independent_fp import verify_fp_independent

    c = verify_fp_independent(_fp_doc()).checks
    for key in ("G(U0) enclosure contains the exact value", "grad_norm_upper >= ||grad G||",
                "m_upper >= max_t ||u_t||", "G(witness) enclosure contains the exact value"):
        assert c[key] is True, key
    half_up, half_dn = math.nextafter(0.5, 1.0), math.nextafter(0.5, 0.0)
    assert not verify_fp_independent(_fp_doc(G=(half_up, 1.0))).checks["G(U0) enclosure contains the exact value"]
    assert not verify_fp_independent(_fp_doc(G=(0.0, half_dn))).checks["G(U0) enclosure contains the exact value"]
    assert not verify_fp_independent(_fp_doc(GW=(half_up, 1.0))).checks["G(witness) enclosure contains the exact value"]
    assert not verify_fp_independent(_fp_doc(GW=(0.0, half_dn))).checks["G(witness) enclosure contains the exact value"]
    assert not verify_fp_independent(_fp_doc(g_up=-5e-324)).checks["grad_norm_upper >= ||grad G||"]
    assert not verify_fp_independent(_fp_doc(m_up=-5e-324)).checks["m_upper >= max_t ||u_t||"]


def test_independent_verdict_needs_strictly_positive_C1_and_C2():
    """With L = 1, r = 1/2, M = 0: C1 = -g + L r / 2 = 1/4 - g and C2 = G_lo - g r - G(W)_hi.
    g = 1/4 makes C1 = 0 exactly: not certified. g = 0 gives C1 = 1/4 and C2 = 1/2 - 1/2 = 0:
    a certified local minimum, not a spurious one. A stored margin equal to the exact one is
    accepted."""
    from fractions import Fraction

    from theory._independent_fp import VERDICT_LOCAL_MIN, VERDICT_NONE, VERDICT_SPURIOUS, verify_fp_independent

    c1_zero = verify_fp_independent(_fp_doc(g_up=0.25, verdict=VERDICT_NONE))
    assert c1_zero.values["margin C1"] == 0.0
    assert c1_zero.checks["stored verdict follows from the exact margins"] is True
    c2_zero = verify_fp_independent(_fp_doc(verdict=VERDICT_LOCAL_MIN, margins={"C1": 0.25, "Cq": 0.5, "C2": 0.0}))
    assert (c2_zero.values["margin C1"], c2_zero.values["margin C2"]) == (0.25, 0.0)
    assert c2_zero.checks["stored verdict follows from the exact margins"] is True
    for name in ("C1", "Cq", "C2"):
        assert c2_zero.checks[f"stored margin {name} <= exact"] is True
    spurious = verify_fp_independent(_fp_doc(GW=(0.0, 0.25), verdict=VERDICT_SPURIOUS))
    assert spurious.checks["stored verdict follows from the exact margins"] is True
    assert Fraction(spurious.values["margin C2"]) == Fraction(1, 4)


def test_independent_verifier_treats_a_zero_curvature_claim_as_no_claim():
    """lambda = 0 is not a positive lower bound: the claim is not used (and holds vacuously),
    so no margins are computed and nothing is certified."""
    from theory._independent_fp import verify_fp_independent

    rep = verify_fp_independent(_fp_doc(lam=0.0))
    assert rep.checks["lambda claim is a lower bound"] is True and "margin C1" not in rep.values
    assert rep.checks["stored verdict follows from the exact margins"] is True


def test_independent_verifier_reads_one_dimensional_points():
    """d = 1 (and T = 1) are shapes like any other; only an empty axis is refused."""
    from theory._independent_fp import verify_fp_independent

    doc = _fp_doc(witness=False)
    doc["tasks"], doc["point"] = [[[1.0]], [[0.0]]], [[[0.0]], [[0.0]]]
    doc["enclosures"]["G(U0)"] = [0.25, 0.25]  # a_t = +-1/2: G = 1/2 (1/4 + 1/4)
    rep = verify_fp_independent(doc)
    assert "point is T x d x 1 and tasks T x d x d" not in rep.checks
    assert rep.checks["G(U0) enclosure contains the exact value"] is True
    doc["tasks"], doc["point"] = np.zeros((2, 0, 0)).tolist(), np.zeros((2, 0, 1)).tolist()
    assert verify_fp_independent(doc).checks == {"point is T x d x 1 and tasks T x d x d": False}


# ------------------------------------------------------------------------------------------
# theory/_result.py
# ------------------------------------------------------------------------------------------

def test_fmt_switches_to_scientific_notation_outside_one_thousandth_to_1e5():
    """Plain digits on [1e-3, 1e5), scientific outside: 1e-3 itself is plain, 1e5 is not."""
    from theory._result import fmt

    assert fmt(1e-3) == "0.001" and fmt(-1e-3) == "-0.001"
    assert fmt(math.nextafter(1e-3, 0.0)) == "1.00e-03"
    assert fmt(1e5) == "1.00e+05" and fmt(math.nextafter(1e5, 0.0)) == "1e+05"


def test_mean_and_se_needs_two_samples_and_takes_two():
    from theory._result import mean_and_se

    assert mean_and_se(np.array([1.0, 3.0])) == (2.0, 1.0)  # sd sqrt 2, se sqrt(2)/sqrt(2)
    with pytest.raises(ValueError, match="at least two"):
        mean_and_se(np.array([1.0]))


def test_check_result_repr_keeps_300_characters_and_cuts_longer_ones_to_300():
    """A repr of exactly 300 characters is shown whole; a longer one is cut to 296 + '...)'."""
    from theory._result import CheckResult

    def rep(n_chars):
        r = CheckResult(id="x", reference="", hypotheses="", predicted="", measured="m" * n_chars,
                        ci=None, tolerance="", tolerance_why="", passed=True, cases=[], seconds=0.0)
        return repr(r)

    base = len(rep(0))
    whole, cut = rep(300 - base), rep(301 - base)
    assert len(whole) == 300 and whole.endswith("')") and "..." not in whole
    assert len(cut) == 300 and cut.endswith("...)")


# ------------------------------------------------------------------------------------------
# theory/_checks_enumeration.py
# ------------------------------------------------------------------------------------------

def _enumeration_with(monkeypatch, orbits, **kw):
    """check_enumeration on planted enumeration results: every call returns a complete
    enumeration with ``orbits`` (dicts with G_enclosure and class)."""
    import types

    import landscape.enumeration as le
    from theory._checks_enumeration import check_enumeration

    fake = types.SimpleNamespace(complete=True, data={"orbit_list": orbits}, points=[])
    monkeypatch.setattr(le, "algebra_available", lambda name: True)
    monkeypatch.setattr(le, "enumerate_critical_points", lambda tasks, k: fake)
    return check_enumeration(np.random.default_rng(0), **kw)


def test_enumeration_check_reads_a_loss_enclosure_starting_at_zero_as_a_zero_loss_orbit(monkeypatch):
    """An orbit whose certified G enclosure starts at exactly 0 may have G = 0: it is a
    zero-loss orbit (and so not held to being a strict saddle); one starting at the smallest
    positive float has G > 0 and must be a strict saddle. One zero-loss orbit suffices for
    Thm 3.4's case; the d = 2k control needs two."""
    saddle = {"G_enclosure": [5e-324, 1.0], "class": "strict_saddle"}
    zero = {"G_enclosure": [0.0, 1e-20], "class": "global_minimum"}
    res = _enumeration_with(monkeypatch, [zero, saddle], t2_instances=1, t3_instances=0, control=False)
    assert res.cases[0].passed and res.cases[0].measured == 0
    res = _enumeration_with(monkeypatch, [dict(zero, G_enclosure=[5e-324, 1e-20]), saddle],
                            t2_instances=1, t3_instances=0, control=False)
    assert not res.cases[0].passed and res.cases[0].measured == 1
    one = _enumeration_with(monkeypatch, [zero, saddle], t2_instances=0, t3_instances=0, control=True)
    two = _enumeration_with(monkeypatch, [zero, zero, saddle], t2_instances=0, t3_instances=0, control=True)
    assert not one.cases[0].passed and two.cases[0].passed


def _gd_check(**kw):
    return _minima().check_thm32_gd(np.random.default_rng(3), d=4, k=1, outer=200, **kw)


def test_thm32_gd_loss_cases_pass_with_the_loss_exactly_at_their_tolerance(monkeypatch):
    """Both loss cases of 'Thm 3.2 via GD' (the polished point, the GD endpoint) pass with
    the loss exactly equal to the tolerance and fail one ulp above it."""
    M = _minima()
    first = _gd_check()
    polished, endpoint = first.cases[0], first.cases[1]
    assert polished.label.startswith("loss after GD") and endpoint.label.startswith("GD endpoint: loss")
    for value, passes in [(polished.tolerance, True), (_up(polished.tolerance), False)]:
        with monkeypatch.context() as mp:
            patch_thm32_structures(mp, loss=lambda r, _v=value: _v)
            assert bool(_gd_check().cases[0].passed) is passes
    for tol, passes in [(endpoint.measured, True), (_dn(endpoint.measured), False)]:
        monkeypatch.setattr(M, "gd_endpoint_loss_tolerance", lambda g, s, sc, _t=tol: _t)
        assert bool(_gd_check().cases[1].passed) is passes


def _plant_jacobian(monkeypatch, caller: str, sing) -> None:
    """The residual Jacobian with singular values ``sing`` (diagonal) where the check named
    ``caller`` reads its own sigma_+ from it; the real one everywhere else (Levenberg-Marquardt
    needs its true shape)."""
    import sys

    M = _minima()
    orig = M._residual_jacobian

    def jac(problem, U):
        return np.diag(sing) if sys._getframe(1).f_code.co_name == caller else orig(problem, U)

    monkeypatch.setattr(M, "_residual_jacobian", jac)


def test_sigma_plus_is_the_smallest_singular_value_strictly_above_the_null_cutoff(monkeypatch):
    """A singular value exactly at JACOBIAN_NULL_RTOL * s_max belongs to the null space: the
    transversal conditioning sigma_+ is the next one up (here 1/2), in the GD endpoint's
    loss tolerance and in its distance tolerance alike."""
    M = _minima()
    cut = M.JACOBIAN_NULL_RTOL * 2.0
    sing = np.array([2.0, 0.5, cut, 0.0])
    seen = []
    _plant_jacobian(monkeypatch, "check_thm32_gd", sing)
    orig_tol = M.gd_endpoint_loss_tolerance
    monkeypatch.setattr(M, "gd_endpoint_loss_tolerance", lambda g, s, sc: seen.append(s) or orig_tol(g, s, sc))
    _gd_check()
    assert seen == [0.5]
    inst = random_instance(0, 3, 2, 1)
    prob = inst.problem
    A, U = prob.optimal_A(inst.U_star), inst.U_star
    dist, tol, g = M.gd_endpoint_distance(prob, A, U, A, sing, 1.0)
    assert dist == 0.0 and tol == M.GD_DISTANCE_FACTOR * g / 0.5 ** 2 + M.ROUNDING_FLOOR_FACTOR * M.EPS * 1.0


def test_uniqueness_report_boundaries(monkeypatch):
    """Thm 3.3's uniqueness report: a singular value exactly at the null cutoff is null (the
    nullity counts it, sigma_+ is the next one up); a known point whose residual equals the
    zero threshold exactly is a zero; a zero whose distance to A* equals tol_A exactly is A*
    itself (no exception, and it enters Cor 3's fine-tune)."""
    M = _minima()
    inst = random_instance(1, 3, 3, 1)
    prob = inst.problem
    scale = float(np.linalg.norm(prob.tasks))
    cut = M.JACOBIAN_NULL_RTOL * 2.0
    monkeypatch.setattr(M, "quotient_jacobian_singular_values", lambda p, U: np.array([2.0, 0.5, cut, 0.0]))
    seen = []
    orig_tol = M.thm33_distance_tolerance
    monkeypatch.setattr(M, "thm33_distance_tolerance", lambda r, s, sc: seen.append(list(s)) or orig_tol(r, s, sc))
    A = prob.optimal_A(inst.U_star) + 1e-3 * np.eye(3)  # off A* by sqrt(3) 1e-3, residual > 0
    r = float(np.linalg.norm(prob.residuals(A, inst.U_star)))
    assert r > 0
    monkeypatch.setattr(M, "ZERO_RESIDUAL_RTOL", exact_factor(r, scale))
    W_test = inst.A_star * 0 + np.diag([1.0, 2.0, 3.0])
    rep = M.uniqueness_report(inst, np.random.default_rng(0), starts=0, known_points=[(A, inst.U_star)], W_test=W_test)
    assert rep.nullity == 2 and seen == [[0.5]] and rep.n_zero == 1
    dev = float(np.linalg.norm(A - inst.A_star))
    monkeypatch.setattr(M, "thm33_distance_tolerance", lambda r, s, sc: dev)
    rep = M.uniqueness_report(inst, np.random.default_rng(0), starts=0, known_points=[(A, inst.U_star)], W_test=W_test)
    assert rep.n_exceptions == 0 and rep.max_dev_unique == dev and rep.cor3_max > 0
    monkeypatch.setattr(M, "thm33_distance_tolerance", lambda r, s, sc: _dn(dev))
    rep = M.uniqueness_report(inst, np.random.default_rng(0), starts=0, known_points=[(A, inst.U_star)], W_test=W_test)
    assert rep.n_exceptions == 1 and rep.cor3_max == 0.0
    monkeypatch.setattr(M, "ZERO_RESIDUAL_RTOL", _dn(exact_factor(r, scale)))
    assert M.uniqueness_report(inst, np.random.default_rng(0), starts=0, known_points=[(A, inst.U_star)]).n_zero == 0


def _thm33(**kw):
    return _minima().check_thm33(np.random.default_rng(2), sizes=((3, 3, 1),), starts=4,
                                 gd_sizes=((4, 3, 1),), gd_outer=200, **kw)


def test_thm33_cases_pass_with_their_measured_values_exactly_at_the_tolerances(monkeypatch):
    """Cor 3's fine-tune loss, the polished GD point's residual and distance to A*, and the
    GD endpoint's distance: each case passes with the measured value exactly at its
    tolerance and fails one ulp beyond."""
    M = _minima()
    base = _thm33()
    cor3 = next(c for c in base.cases if "Cor 3" in c.label)
    gd = next(c for c in base.cases if "+ polish" in c.label)
    end = next(c for c in base.cases if "GD endpoint" in c.label)
    assert cor3.measured > 0 and gd.measured > 0 and end.measured > 0

    def case(pred):
        return next(c for c in _thm33().cases if pred(c.label))

    for tol, passes in [(cor3.measured, True), (_dn(cor3.measured), False)]:
        monkeypatch.setattr(M, "cor3_loss_tolerance", lambda d, t, w, _t=tol: _t)
        assert bool(case(lambda lab: "Cor 3" in lab).passed) is passes
    for tol, passes in [(gd.measured, True), (_dn(gd.measured), False)]:
        monkeypatch.setattr(M, "thm33_distance_tolerance", lambda r, s, sc, _t=tol: _t)
        assert bool(case(lambda lab: "+ polish" in lab).passed) is passes
    orig = M.gd_endpoint_distance
    for shift, passes in [(lambda t: t, True), (_up, False)]:
        monkeypatch.setattr(M, "gd_endpoint_distance",
                            lambda *a, _s=shift: (lambda dv, tl, g: (_s(tl), tl, g))(*orig(*a)))
        assert bool(case(lambda lab: "GD endpoint" in lab).passed) is passes


def test_thm33_polished_gd_point_is_a_zero_with_its_residual_exactly_at_the_threshold(monkeypatch):
    """The polished GD point counts as a zero when ||R|| <= ZERO_RESIDUAL_RTOL ||tasks||,
    the boundary included (its distance to A* made irrelevant by a tolerance of 1)."""
    M = _minima()
    seen = {}
    orig_lm = M.lm_solve

    def lm(*a, **k):
        out = orig_lm(*a, **k)
        seen["r"] = out[2]
        return out

    def tol(r, s, sc):
        seen["scale"] = sc
        return 1.0

    monkeypatch.setattr(M, "lm_solve", lm)
    monkeypatch.setattr(M, "thm33_distance_tolerance", tol)
    _thm33()
    r, scale = seen["r"], seen["scale"]
    assert r > 0
    c = exact_factor(r, scale)
    for rtol, passes in [(c, True), (_dn(c), False)]:
        monkeypatch.setattr(M, "ZERO_RESIDUAL_RTOL", rtol)
        if passes or rtol * scale < r:
            assert bool(next(x for x in _thm33().cases if "+ polish" in x.label).passed) is passes


def _with_report(monkeypatch, **fields):
    M = _minima()
    orig = M.uniqueness_report
    monkeypatch.setattr(M, "uniqueness_report", lambda *a, **k: dataclasses.replace(orig(*a, **k), **fields))


@pytest.mark.parametrize("control", ["t2", "d2k"])
def test_thm33_controls_need_at_least_one_exception(monkeypatch, control):
    """A control shows non-uniqueness with one zero-loss point off A*, not with none."""
    M = _minima()
    run = {"t2": lambda: M.check_thm33_control_t2(np.random.default_rng(0), starts=4),
           "d2k": lambda: M.check_thm33_control_d2k(np.random.default_rng(0), starts=4)}[control]
    for n, passes in [(1, True), (0, False)]:
        _with_report(monkeypatch, n_exceptions=n)
        cases = [c for c in run().cases if "A != A*" in c.label]
        assert cases and all(bool(c.passed) is passes for c in cases)


def test_thm33_d2k_control_second_minimiser_must_lie_strictly_beyond_tol_A(monkeypatch):
    """||Q||_F > tol_A, strictly: with tol_A equal to ||Q||_F the published second minimiser
    does not show non-uniqueness; just below it, it does. Its loss passes at a tolerance
    exactly equal to it."""
    from landscape import thm33_counterexample_minimiser

    M = _minima()
    qn = float(np.linalg.norm(thm33_counterexample_minimiser()[0]))
    for tol, passes in [(qn, False), (_dn(qn), True)]:
        _with_report(monkeypatch, tol_A=tol)
        case = next(c for c in M.check_thm33_control_d2k(np.random.default_rng(0), starts=4).cases
                    if "||Q||_F" in c.label)
        assert bool(case.passed) is passes
    from landscape import thm33_counterexample_instance

    loss = M.check_thm33_control_d2k(np.random.default_rng(0), starts=4).cases[0].measured
    inst = thm33_counterexample_instance()
    Q, U_hat = thm33_counterexample_minimiser()
    scale = float(np.linalg.norm(inst.problem.tasks)) + float(np.sum(U_hat ** 2)) + float(np.linalg.norm(Q))

    def tol(c):
        return 0.5 * (c * 4 * M.EPS * scale) ** 2

    c = exact_input(tol, loss, math.sqrt(2 * loss) / (4 * M.EPS * scale))
    for factor, passes in [(c, True), (_dn(c), False)]:
        monkeypatch.setattr(M, "RESIDUAL_ROUNDING_FACTOR", factor)
        if passes or tol(factor) < loss:
            assert bool(M.check_thm33_control_d2k(np.random.default_rng(0), starts=4).cases[0].passed) is passes


def _f1(**kw):
    return _minima().check_f1(np.random.default_rng(0), dims=(2,), starts=4, **kw)


def test_f1_loss_case_passes_with_the_largest_loss_exactly_at_its_tolerance(monkeypatch):
    """App. F.1's loss case: with every branch point's loss planted equal to the case's
    tolerance it passes; one ulp above, it fails."""
    import types

    M = _minima()
    tol = _f1().cases[0].tolerance
    orig = M.f1_instance

    class Planted:
        def __init__(self, problem, value):
            self._p, self._v = problem, value

        def __getattr__(self, name):
            return getattr(self._p, name)

        def loss(self, A, U):
            return self._v

    for value, passes in [(tol, True), (_up(tol), False)]:
        monkeypatch.setattr(M, "f1_instance", lambda d, _v=value: types.SimpleNamespace(problem=Planted(orig(d).problem, _v)))
        case = _f1().cases[0]
        assert case.measured == value and bool(case.passed) is passes


def test_f1_zero_threshold_and_sigma_plus_at_their_exact_cutoffs(monkeypatch):
    """A search end whose residual equals ZERO_RESIDUAL_RTOL ||tasks|| is a zero; a
    singular value exactly at the null cutoff is not sigma_+."""
    M = _minima()
    seen = {}
    orig = M.zero_loss_search

    def search(prob, rng, starts, **k):
        pts = orig(prob, rng, starts, **k)
        seen["scale"] = float(np.linalg.norm(prob.tasks))
        return pts

    monkeypatch.setattr(M, "zero_loss_search", search)
    _f1()
    thr = M.ZERO_RESIDUAL_RTOL * seen["scale"]
    for r, zeros in [(thr, 4), (_up(thr), 0)]:  # every end's residual planted at r
        monkeypatch.setattr(M, "zero_loss_search", lambda *a, _r=r, **k: [(A, U, _r) for A, U, _ in orig(*a, **k)])
        assert f"({zeros}/4 zero)" in _f1().cases[2].label
    # every end planted with residual 1e-20 (a zero), so that the bound is 10 r / sigma_+
    monkeypatch.setattr(M, "zero_loss_search", lambda *a, **k: [(A, U, 1e-20) for A, U, _ in orig(*a, **k)])
    # sigma_+: the check's Jacobian at each branch point replaced by one with singular values
    # 2, 1/2, cut and 0, and by one with 2, 1/2, 0, 0: sigma_+ is 1/2 for both, so the
    # distance ratios agree (with the rounding floor off, the bound is 10 r / sigma_+)
    monkeypatch.setattr(M, "ROUNDING_FLOOR_FACTOR", 0.0)
    cut = M.JACOBIAN_NULL_RTOL * 2.0
    ratios = []
    for sing in ([2.0, 0.5, cut, 0.0], [2.0, 0.5, 0.0, 0.0]):
        with monkeypatch.context() as mp:
            _plant_jacobian(mp, "check_f1", sing)
            ratios.append(_f1().cases[2].measured)
    assert ratios[0] == ratios[1]


def test_the_reported_hessian_is_restricted_to_a_slice_from_k_equal_two_or_for_two_tasks():
    from landscape.enumeration._points import hessian_label

    sliced = "Hessian of G restricted to the gauge slice"
    assert hessian_label(3, 2) == hessian_label(2, 1) == hessian_label(2, 2) == hessian_label(4, 3) == sliced
    assert hessian_label(3, 1) == hessian_label(6, 1) == "Hessian of G"


# ------------------------------------------------------------------------------------------
# landscape/certificates/net.py: the decision (N1), (N2)
# ------------------------------------------------------------------------------------------

def test_net_decision_needs_strictly_positive_margins():
    """(N1) = min_net G_lower - G(U0)_hi - Lip eps and (N2) = G(U0)_lo - Lip r - G(W)_hi, in
    dyadic numbers so each is exactly 0 where planted: N1 = 0 certifies nothing; N1 > 0 with
    N2 = 0 a local minimum only; both > 0 a spurious local minimum."""
    from landscape.certificates.net import _net_decide
    from landscape.certificates.data import VERDICT_LOCAL_MIN, VERDICT_NONE, VERDICT_SPURIOUS

    enc = {"G(U0)": (0.5, 0.5), "G(witness)": (0.0, 0.25)}

    def decide(min_net, r=0.25):
        bounds = {"lipschitz_upper": 1.0, "eps_effective_upper": 0.25, "min_net_G_lower": min_net}
        return _net_decide(enc, bounds, r, True, 10, "sphere", 128)

    m, verdict, _ = decide(0.75)
    assert m["N1"] == 0.0 and verdict == VERDICT_NONE
    m, verdict, _ = decide(0.75, r=0.125)  # N1 = 0 with N2 > 0: still nothing
    assert (m["N1"], m["N2"]) == (0.0, 0.125) and verdict == VERDICT_NONE
    m, verdict, _ = decide(1.0)
    assert (m["N1"], m["N2"]) == (0.25, 0.0) and verdict == VERDICT_LOCAL_MIN
    m, verdict, _ = decide(1.0, r=0.125)
    assert m["N2"] == 0.125 and verdict == VERDICT_SPURIOUS


def test_net_certificate_refuses_a_zero_radius_or_spacing():
    from landscape._instances import f2_spurious_instance
    from landscape.certificates import CertificateNotApplicable
    from landscape.certificates.net import epsilon_net_certificate

    inst, U0 = f2_spurious_instance()
    for r, eps in [(0.0, 0.1), (0.1, 0.0)]:
        with pytest.raises(CertificateNotApplicable, match="need r > 0 and eps > 0"):
            epsilon_net_certificate(inst.problem, U0, r=r, eps=eps)


# ------------------------------------------------------------------------------------------
# theory/_atlas.py
# ------------------------------------------------------------------------------------------

def test_atlas_counts_a_gd_endpoint_exactly_at_the_reach_tolerance_as_reached(monkeypatch):
    """GD reached zero loss when its endpoint's loss is <= GD_REACH_RTOL G(0), the boundary
    included: with the paper's GD replaced by a fixed endpoint (A, U) = 0 and the constant
    set so that the product equals that loss to the last bit."""
    import theory._atlas as atlas

    prob = random_instance(np.random.default_rng(0), 2, 2, 1).problem
    x = float(prob.loss(np.zeros((2, 2)), np.zeros((2, 2, 1))))
    G0 = prob.reduced_loss(np.zeros((2, 2, 1)))
    monkeypatch.setattr(atlas, "paper_gd", lambda problem, rng, runs, outer: (np.zeros((runs, 2, 2)),
                                                                             np.zeros((runs, 2, 2, 1))))
    c = exact_factor(x, G0)
    for rtol, reached in [(c, True), (_dn(c), False)]:
        monkeypatch.setattr(atlas, "GD_REACH_RTOL", rtol)
        if reached or rtol * G0 < x:
            row = atlas._instance(2, 1, 2, 0, 2, 0, 1, 20, 0)
            assert row["gd_endpoint_reached"] == [reached] and row["gd_endpoint_loss_relative"] == [x / G0]


# ------------------------------------------------------------------------------------------
# theory/_checks_rates.py
# ------------------------------------------------------------------------------------------

def _lemma1(monkeypatch, errs, power, upper=None):
    """check_lemma1 for k' = 1 with the RRR errors and the power planted (sigma = 1/2 and a
    dof of 4, so the normaliser is exactly 1), and optionally the Clopper-Pearson bound."""
    import theory._checks_rates as R

    monkeypatch.setattr(R, "sized_rrr_errors", lambda *a, **k: (np.asarray(errs, dtype=float), power))
    if upper is not None:
        monkeypatch.setattr(R, "clopper_pearson", lambda ok, n, level: (0.0, upper))
    return R.check_lemma1(np.random.default_rng(0), d=4, sigma=0.5, kprimes=(1,), dof=lambda d, kp: 4.0)


def test_lemma1_cases_pass_exactly_at_their_boundaries(monkeypatch):
    """Lemma 1's three cases at their exact boundaries: |m - 1| = Z se passes (a two-sided
    test accepts on its critical value), power = TARGET_POWER passes, an error equal to
    C sigma^2 k' d counts as within the bound, and a Clopper-Pearson upper bound equal to
    prob passes; one ulp to the other side fails each."""
    import theory._checks_rates as R
    from theory._result import mean_and_se

    errs = [0.75, 1.75]  # mean 1.25, se 0.5 (sd sqrt(1/2), two samples), both exact
    m, se = mean_and_se(np.asarray(errs))
    assert (m, se) == (1.25, 0.5)
    monkeypatch.setattr(R, "Z_CRITICAL", 0.5)  # Z se = 0.25 = |m - 1|
    assert _lemma1(monkeypatch, errs, R.TARGET_POWER).cases[0].passed
    monkeypatch.setattr(R, "Z_CRITICAL", _dn(0.5))
    assert not _lemma1(monkeypatch, errs, R.TARGET_POWER).cases[0].passed
    assert _lemma1(monkeypatch, errs, R.TARGET_POWER).cases[1].passed
    assert not _lemma1(monkeypatch, errs, _dn(R.TARGET_POWER)).cases[1].passed
    bound = 4.0 * 0.5 ** 2 * 1 * 4  # C sigma^2 k' d = 4
    case = _lemma1(monkeypatch, [bound, _up(bound)], 1.0).cases[2]
    assert case.measured == 0.5  # the error at the bound counts, the one above it does not
    assert _lemma1(monkeypatch, errs, 1.0, upper=0.99).cases[2].passed
    assert not _lemma1(monkeypatch, errs, 1.0, upper=_dn(0.99)).cases[2].passed


def test_rates_cases_pass_with_the_deviation_exactly_at_z_standard_errors(monkeypatch):
    """Cor 2 / Cor 4's mean and the SR / ML ratio: a deviation of exactly Z_CRITICAL standard
    errors is accepted (two-sided test at its critical value), one ulp of Z less rejects.
    The means and standard errors are planted: mean 1.25 with se 0.5 and Z = 0.5; the ratio
    at twice its prediction p, with se 0.5 and Z = 2 p (so Z se = p = |ratio - p| exactly)."""
    import theory._checks_rates as R

    base = R.check_rates(np.random.default_rng(0), d=4, Ts=(2,), n=50, reps=3)
    pred = next(c for c in base.cases if "E||E_SR||^2 / E||E_ML||^2" in c.label).predicted
    monkeypatch.setattr(R, "mean_and_se", lambda x: (1.25, 0.5))
    monkeypatch.setattr(R, "ratio_of_means", lambda a, b: (2 * pred, 0.5))

    def cases(z):
        monkeypatch.setattr(R, "Z_CRITICAL", z)
        res = R.check_rates(np.random.default_rng(0), d=4, Ts=(2,), n=50, reps=3)
        return (next(c for c in res.cases if "Cor 2" in c.label),
                next(c for c in res.cases if "E||E_SR||^2 / E||E_ML||^2" in c.label))

    mean_case, ratio_case = cases(0.5)
    assert mean_case.passed
    assert not cases(_dn(0.5))[0].passed
    assert cases(2 * pred)[1].passed and not cases(_dn(2 * pred))[1].passed


def _slopes_run(monkeypatch=None, errors=None, **kw):
    """check_rate_slopes at a small size with cheap injected errors (chi-square-like draws
    around sigma^2 dof), d = 4."""
    import theory._checks_rates as R

    def fake(rng, B, *, n, sigma, kprime, reps):
        return sigma ** 2 * kprime * (2 * B.shape[0] - kprime) * rng.gamma(50.0, 1 / 50.0, size=reps)

    args = dict(d=4, n_sweep=(40, 80), dof_kprimes=(1, 2), dof_reps=20, tail_ds=(4, 6), tail_reps=50,
                Ts=(2, 3, 5), T_reps=20, reps=20, errors=errors or fake)
    args.update(kw)
    return R.check_rate_slopes(np.random.default_rng(0), **args)


def test_rate_slopes_saturation_and_late_sets_include_their_boundaries():
    """At d = 4, k = 1: T = 3 has (T + 1) k = d, so it is saturated, and T >= 3 is 'late';
    with T in (2, 3, 5) each set has exactly two members -- enough for a slope."""
    labels = [c.label for c in _slopes_run().cases]
    assert any(lab.startswith("saturation:") and "T=[3, 5]" in lab for lab in labels)
    assert any(lab.startswith("Cor 4:") for lab in labels)
    labels = [c.label for c in _slopes_run(Ts=(2, 3, 4)).cases]  # late = [3, 4], saturated = [3, 4]
    assert any("T=[3, 4]" in lab for lab in labels) and any(lab.startswith("Cor 4:") for lab in labels)


def test_rate_slopes_tail_needs_a_strictly_negative_slope_and_counts_errors_above_the_bound(monkeypatch):
    """The tail case needs the slope's upper confidence limit strictly below 0 and a half
    width at most TAIL_MAX_HALF_WIDTH; an error exactly at tail_C sigma^2 d is not a failure."""
    import theory._checks_rates as R
    from theory._slopes import SlopeFit

    def tail(fit):
        monkeypatch.setattr(R, "linear_fit", lambda x, y, se: fit)
        return next(c for c in _slopes_run().cases if c.label.startswith("log P("))

    hw = R.TAIL_MAX_HALF_WIDTH

    def fit(slope, se):  # z = 1: ci = slope +- se, half width se
        return SlopeFit(slope, 0.0, se, float("nan"), 1.0, (0.0, 1.0), (0.0, 0.0), (1.0, 1.0))

    assert fit(-hw, hw).ci[1] == 0.0 and not tail(fit(-hw, hw)).passed  # upper limit exactly 0
    assert tail(fit(-2 * hw, hw)).passed  # half width exactly the maximum
    assert not tail(fit(-4 * hw, _up(hw))).passed
    monkeypatch.undo()
    seen = []
    orig_fit = R.linear_fit
    monkeypatch.setattr(R, "linear_fit", lambda x, y, se: seen.append(list(np.exp(y))) or orig_fit(x, y, [1.0] * len(se)))

    def at_bound(rng, B, *, n, sigma, kprime, reps):  # every tail draw (n = 2 d) exactly at 3 sigma^2 d
        if n == 2 * B.shape[0]:
            return np.full(reps, 3.0 * sigma ** 2 * B.shape[0])
        return sigma ** 2 * kprime * (2 * B.shape[0] - kprime) * rng.gamma(50.0, 1 / 50.0, size=reps)

    _slopes_run(errors=at_bound, tail_C=3.0)
    assert seen and seen[0] == pytest.approx([0.5 / 51.0] * 2, rel=1e-12)  # no failures: (0 + 1/2) / (50 + 1)


# ------------------------------------------------------------------------------------------
# theory/_checks_saddles.py: Thm 3.4 and its lemmas
# ------------------------------------------------------------------------------------------

def _saddles():
    import theory._checks_saddles as S

    return S


def _thm34(label):
    res = _saddles().check_thm34(np.random.default_rng(0), configs=((3, 1),), starts=4)
    return next(c for c in res.cases if label in c.label)


def test_inertia_counts_partition_the_spectrum_with_plus_minus_zt_as_zeros():
    from theory._linalg import inertia_counts as counts
    assert counts([1.0, -1.0, 0.25, -0.25, 0.0], 0.25) == (1, 1, 3)
    assert counts([_up(0.25), _dn(-0.25)], 0.25) == (1, 1, 0)


def test_thm34_a_curvature_exactly_minus_the_threshold_is_not_a_strict_saddle(monkeypatch):
    """Every point's quotient lambda_min planted at -1 and the threshold at 1: lambda_min <
    -threshold fails, so no point is a strict saddle -- the saddle case fails and the global
    minima are SOSP; with the threshold one ulp below 1 the verdicts swap."""
    import types

    S = _saddles()
    monkeypatch.setattr(S, "reduced_spectrum", lambda prob, U, **k: types.SimpleNamespace(lambda_min_quotient=-1.0))
    for thr, saddles_pass in [(1.0, False), (_dn(1.0), True)]:
        monkeypatch.setattr(S, "strict_saddle_threshold", lambda U, g, Dn, _t=thr: _t)
        sad, glob = _thm34("not strict saddles"), _thm34("global minima that are not SOSP")
        n_pos = int(sad.label.split("(")[1].split(" ")[0]) + sad.measured  # saddles + exceptions
        assert n_pos > 0 and bool(sad.passed) is saddles_pass and bool(glob.passed) is (not saddles_pass)
        # at the boundary every positive-loss point is an exception and none a saddle
        assert sad.measured == (0 if saddles_pass else n_pos)
        assert sad.label.endswith(f"({n_pos if saddles_pass else 0} saddles)")


def test_thm34_l4_non_leading_block_needs_curvature_strictly_below_minus_the_threshold(monkeypatch):
    """Every block declared non-leading and every C_t planted as -I (lambda_min = -1):
    at threshold 1 the blocks have no curvature below -1 (L4 fails), at one ulp below they do."""
    from landscape._objective import LoraMLProblem

    S = _saddles()
    monkeypatch.setattr(S, "leading_block_tolerance", lambda g, U, N, t, d: -1.0)
    orig = LoraMLProblem.hessian_blocks
    monkeypatch.setattr(LoraMLProblem, "hessian_blocks",
                        lambda self, A, U: (orig(self, A, U)[0], [-np.eye(self.d * self.k)] * self.T))
    for thr, passes in [(1.0, False), (_dn(1.0), True)]:
        monkeypatch.setattr(S, "strict_saddle_threshold", lambda U, g, Dn, _t=thr: _t)
        assert bool(_thm34("L4 non-leading blocks").passed) is passes


def test_thm34_a_block_gap_exactly_at_its_tolerance_is_leading(monkeypatch):
    """f_t - f_best <= lead_tol makes block t leading, the boundary included: with the
    tolerance planted equal to each block's gap, no block is non-leading."""
    S = _saddles()

    def gap(g, U, N, t, d):
        UUt = U @ np.swapaxes(U, 1, 2)
        return 0.5 * float(np.sum((N[t] - UUt[t]) ** 2)) - S._best_psd_rank_k_loss(N[t], U.shape[2])

    monkeypatch.setattr(S, "leading_block_tolerance", gap)
    assert "(0 blocks)" in _thm34("L4 non-leading blocks").label
    monkeypatch.setattr(S, "leading_block_tolerance", lambda *a: _dn(gap(*a)) if gap(*a) != 0 else -5e-324)
    assert "(0 blocks)" not in _thm34("L4 non-leading blocks").label


def test_thm34_c6_rank_exactly_2k_at_a_non_global_point_is_a_violation(monkeypatch):
    S = _saddles()
    for rank, passes in [(2, False), (1, True)]:
        monkeypatch.setattr(S, "_num_rank", lambda M, tol, _r=rank: _r)
        assert bool(_thm34("C6 non-global points").passed) is passes


def test_numerical_rank_of_thm34_counts_singular_values_strictly_above_the_tolerance():
    S = _saddles()
    assert S._num_rank(np.diag([1.0, 0.25]), 0.25) == 1 and S._num_rank(np.diag([1.0, _up(0.25)]), 0.25) == 2


def test_thm34_a_point_with_loss_exactly_at_the_zero_threshold_is_global(monkeypatch):
    """is_global: G <= ZERO_LOSS_RTOL ||D*||^2, the boundary included -- the first critical
    point's loss planted there makes one more global minimum than one ulp above it."""
    S = _saddles()
    orig = S.t2_critical_points

    def planted(bump):
        def pts(inst, rng, *, starts, boosts=2):
            out = orig(inst, rng, starts=starts, boosts=boosts)
            Dn = float(np.linalg.norm(inst.W[0] - inst.W[1]))
            i = next(j for j, cp in enumerate(out) if cp.loss > S.ZERO_LOSS_RTOL * Dn ** 2)
            out[i] = dataclasses.replace(out[i], loss=bump(S.ZERO_LOSS_RTOL * Dn ** 2))
            return out
        return pts

    import re

    counts = []
    for bump in (lambda x: x, _up):
        monkeypatch.setattr(S, "t2_critical_points", planted(bump))
        counts.append(int(re.search(r"\((\d+) minima\)", _thm34("global minima that are not SOSP").label).group(1)))
    assert counts[0] == counts[1] + 1


def test_thm34_needs_at_least_one_saddle_and_one_minimum_and_checks_35_only_when_d_exceeds_2k(monkeypatch):
    """With only global points found, the saddle case has nothing to show and fails; with
    only positive-loss points, the global case fails. At d = 2k, W-perp is {0}: the (35)
    identity at random U is not checked (there is no direction to check it on)."""
    S = _saddles()
    orig = S.t2_critical_points

    def only(keep_global):
        def pts(inst, rng, *, starts, boosts=2):
            Dn = float(np.linalg.norm(inst.W[0] - inst.W[1]))
            return [cp for cp in orig(inst, rng, starts=starts, boosts=boosts)
                    if (cp.loss <= S.ZERO_LOSS_RTOL * Dn ** 2) == keep_global]
        return pts

    monkeypatch.setattr(S, "t2_critical_points", only(True))
    assert _thm34("not strict saddles").label.endswith("(0 saddles)") and not _thm34("not strict saddles").passed
    monkeypatch.setattr(S, "t2_critical_points", only(False))
    glob = _thm34("global minima that are not SOSP")
    assert glob.label.endswith("(0 minima)") and not glob.passed
    monkeypatch.setattr(S, "t2_critical_points", orig)
    labels = [c.label for c in S.check_thm34(np.random.default_rng(0), configs=((2, 1),), starts=4).cases]
    assert labels and not any("(35) identity at random U" in lab for lab in labels)
    assert any("(35) identity at random U" in c.label for c in
               S.check_thm34(np.random.default_rng(0), configs=((3, 1),), starts=4).cases)


def test_thm34_root_finder_count_passes_with_exactly_the_required_number(monkeypatch):
    S = _saddles()
    base = _thm34("root-finder critical points")
    n = base.measured
    monkeypatch.setattr(S, "MIN_ROOT_FRACTION", n / 4)  # need = ceil(n / 4 * 4) = n
    assert _thm34("root-finder critical points").passed
    monkeypatch.setattr(S, "MIN_ROOT_FRACTION", (n + 1) / 4)
    assert not _thm34("root-finder critical points").passed


# ------------------------------------------------------------------------------------------
# theory/_linalg.py
# ------------------------------------------------------------------------------------------

def test_numerical_rank_cutoff_is_exclusive():
    """A singular value exactly at s_1 max(m, n) eps is numerically zero."""
    from theory._linalg import numerical_rank
    from theory._result import EPS

    assert int(numerical_rank(np.diag([1.0, 2 * EPS]))[0]) == 1
    assert int(numerical_rank(np.diag([1.0, _up(2 * EPS)]))[0]) == 2


def test_rrr_errors_accept_every_edge_of_their_domain():
    """k' = 1 and k' = d, n = d (X X^T just invertible), one repetition and sigma = 0 are all
    valid; one step outside each is refused."""
    from theory._linalg import rrr_prediction_errors

    B = np.diag([3.0, 2.0, 1.0])
    for kw in (dict(kprime=1), dict(kprime=3), dict(kprime=2, n=3), dict(kprime=2, reps=1), dict(kprime=2, sigma=0.0)):
        args = {**dict(n=10, sigma=0.1, reps=2), **kw}
        assert np.all(np.isfinite(rrr_prediction_errors(np.random.default_rng(0), B, **args)))
    for kw in (dict(kprime=0), dict(kprime=4), dict(kprime=2, n=2), dict(kprime=2, reps=0),
               dict(kprime=2, sigma=-5e-324)):
        with pytest.raises(ValueError):
            rrr_prediction_errors(np.random.default_rng(0), B, **{**dict(n=10, sigma=0.1, reps=2), **kw})


# ------------------------------------------------------------------------------------------
# theory/_checks_sr.py
# ------------------------------------------------------------------------------------------

def _sr():
    import theory._checks_sr as SR

    return SR


def test_eq7_8_and_thm31_accept_a_deviation_of_exactly_z_standard_errors(monkeypatch):
    """Eq. (7)-(8): est = (m - offset) / 2 planted at 2 pred with se/2 = pred and Z = 1, so
    |est - pred| = Z se exactly; Thm 3.1: m = 2 pred, se = pred. Both pass there and fail
    with Z one ulp below 1."""
    SR = _sr()
    base = SR.check_eq7_8(np.random.default_rng(0), N=1000, noise_offset=lambda d, s: 0.0)
    preds = [c.predicted for c in base.cases]

    def eq78(z):
        it = iter(preds)
        monkeypatch.setattr(SR, "mean_and_se", lambda x: (lambda p: (4 * p, 2 * p))(next(it)))
        monkeypatch.setattr(SR, "Z_CRITICAL", z)
        return SR.check_eq7_8(np.random.default_rng(0), N=1000, noise_offset=lambda d, s: 0.0).cases

    assert all(c.passed for c in eq78(1.0)) and not any(c.passed for c in eq78(_dn(1.0)))
    monkeypatch.setattr(SR, "mean_and_se", lambda x: (2.0, 1.0))

    def thm31(z):
        monkeypatch.setattr(SR, "Z_CRITICAL", z)
        res = SR.check_thm31(np.random.default_rng(0), sizes=((5, 2, 1),), draws=20, batch=10,
                             expected=lambda *, d, T, k: 1.0)
        return res.cases[0]

    assert thm31(1.0).passed and not thm31(_dn(1.0)).passed


def test_eq11_12_gradient_exactly_at_its_rounding_tolerance_passes(monkeypatch):
    """With dyadic tasks (T = 4) the SR gradient sum_t (A_SR - A*_t) is exactly 0; with the
    rounding unit planted at 0 the tolerance is 0 too, and 0 <= 0 passes."""
    import types

    SR = _sr()
    tasks = np.arange(4 * 3 * 3, dtype=float).reshape(4, 3, 3) / 4.0
    monkeypatch.setattr(SR, "random_instance",
                        lambda rng, d, T, k: types.SimpleNamespace(problem=types.SimpleNamespace(tasks=tasks)))
    monkeypatch.setattr(SR, "EPS", 0.0)
    case = SR.check_eq11_12(np.random.default_rng(0), d=3, T=4, N=100).cases[0]
    assert case.measured == 0.0 and case.tolerance == 0.0 and case.passed


def test_r31_margin_exactly_at_the_tolerance_is_not_full_rank(monkeypatch):
    """R3.1 needs every subset's s_min / s_max strictly above max(d, m) eps: with the
    rounding unit planted so that the tolerance equals the smallest margin (d = 8, a power
    of two, so the product is exact), the case fails; one ulp less and it passes."""
    SR = _sr()
    m_min = float(SR.check_r31(np.random.default_rng(0), sizes=((8, 3, 1),), subsets=5).cases[0]
                  .measured.split("=")[1])
    seen = {}
    orig_svd = np.linalg.svd

    def spy(a, *args, **kw):
        out = orig_svd(a, *args, **kw)
        if np.ndim(a) == 3:
            seen["margin"] = float(np.min(out[:, -1] / out[:, 0]))
        return out

    monkeypatch.setattr(np.linalg, "svd", spy)
    SR.check_r31(np.random.default_rng(0), sizes=((8, 3, 1),), subsets=5)
    monkeypatch.undo()
    margin = seen["margin"]
    assert abs(margin - m_min) <= 1e-3 * m_min
    monkeypatch.setattr(SR, "EPS", margin / 8)
    assert not SR.check_r31(np.random.default_rng(0), sizes=((8, 3, 1),), subsets=5).cases[0].passed
    monkeypatch.setattr(SR, "EPS", _dn(margin / 8))
    assert SR.check_r31(np.random.default_rng(0), sizes=((8, 3, 1),), subsets=5).cases[0].passed


def test_prop1_checks_k_prime_zero_when_the_needed_rank_is_one():
    """With a needed rank r = 1 the cases are k' = r = 1 and k' = r - 1 = 0; only k' = -1 is
    skipped."""
    res = _sr().check_prop1(np.random.default_rng(0), sizes=((4, 2, 1),), needed_rank=lambda *, d, T, k: 1)
    labels = [c.label for c in res.cases]
    assert any(lab.endswith("at k'=0") for lab in labels) and any(lab.endswith("at k'=1") for lab in labels)


@pytest.fixture(scope="module")
def f2_cert():
    from landscape import taylor_certificate
    from landscape._instances import f2_spurious_instance

    inst, U0 = f2_spurious_instance()
    return inst, taylor_certificate(inst.problem, U0, witness=inst.U_star, rng=np.random.default_rng(0))


def _f2_case(monkeypatch, cert, label):
    import landscape

    S = _saddles()
    monkeypatch.setattr(landscape, "taylor_certificate", lambda *a, **k: cert)
    return next(c for c in S.check_f2(np.random.default_rng(0)).cases if c.label.startswith(label))


def _with(cert, *, radius=None, **dicts):
    """A copy of ``cert`` with entries of its dicts (enclosures, margins, bounds) replaced."""
    changes = {name: {**dict(getattr(cert, name)), **entries} for name, entries in dicts.items()}
    return dataclasses.replace(cert, **changes, **({"radius": radius} if radius is not None else {}))


def test_f2_certificate_cases_need_strictly_positive_quantities(monkeypatch, f2_cert):
    """App. F.2: the G(U0) enclosure's lower end, the margins (C1), (C2) and the distance to
    the global minimisers over the radius must be strictly positive: exactly 0 (a distance
    exactly the radius) fails, the smallest step beyond passes."""
    inst, cert = f2_cert
    for lo, passes in [(0.0, False), (5e-324, True)]:
        c = _f2_case(monkeypatch, _with(cert, enclosures={"G(U0)": (lo, cert.enclosures["G(U0)"][1])}), "G(U0) lower")
        assert bool(c.passed) is passes
    for name in ("C1", "C2"):
        for v, passes in [(0.0, False), (5e-324, True)]:
            assert bool(_f2_case(monkeypatch, _with(cert, margins={name: v}), f"margin ({name})").passed) is passes
    U = np.asarray(cert.point)
    signs = np.array(np.meshgrid(*[[1.0, -1.0]] * 3)).reshape(3, -1).T
    dist = min(float(np.linalg.norm(U - s[:, None, None] * inst.U_star)) for s in signs)
    assert not _f2_case(monkeypatch, _with(cert, radius=dist), "distance to nearest").passed
    assert _f2_case(monkeypatch, _with(cert, radius=_dn(dist)), "distance to nearest").passed


def test_f2_curvature_gap_is_accepted_at_both_ends_of_its_interval(monkeypatch, f2_cert):
    """The certified lambda bound may equal the float lambda_min (relative gap exactly 0) and
    may sit exactly LAMBDA_CERT_SLACK below it; a bound above the float value fails."""
    inst, cert = f2_cert
    S = _saddles()
    lam_float = float(np.linalg.eigvalsh(inst.problem.schur_complement(np.asarray(cert.point)))[0])
    label = "certified lambda lower bound"
    assert _f2_case(monkeypatch, _with(cert, bounds={"lambda_min_quotient_lower": lam_float}), label).passed
    above = _f2_case(monkeypatch, _with(cert, bounds={"lambda_min_quotient_lower": _up(lam_float)}), label)
    assert not above.passed and above.measured < 0
    gap = _f2_case(monkeypatch, cert, label).measured
    assert gap > 0
    monkeypatch.setattr(S, "LAMBDA_CERT_SLACK", gap)
    assert _f2_case(monkeypatch, cert, label).passed
    monkeypatch.setattr(S, "LAMBDA_CERT_SLACK", _dn(gap))
    assert not _f2_case(monkeypatch, cert, label).passed


def test_prop2_floor_applies_from_mu_equal_to_2k_and_k_prime_equal_to_k():
    applies = _sr().prop2_floor_applies
    assert applies(1, 1, [2.0]) and applies(2, 2, [4.0, 5.0])
    assert not applies(1, 1, [_dn(2.0)]) and not applies(0, 1, [3.0]) and not applies(2, 2, [4.0, _dn(4.0)])


def test_prop2_cases_at_their_exact_boundaries(monkeypatch):
    """Prop 2 with the Eckart-Young tails planted (L_T = 2, L_inf = 1/2: the square-root gap
    is exactly 1) at d = 3, k = 1, T = 3 (rms = sqrt(k d (d+1) / T) = 2): the gap case
    passes at Z = 1/2 and fails one ulp below. The limit case (floor = L_inf + tol, tol =
    36 eps) and the lower-bound case (L_inf = lb - tol with lb = 1) pass exactly there."""
    SR = _sr()
    tol = 4 * 3 * 3 * SR.EPS

    def run(tails, z=0.5, kp=1, floor=None, applies=None):
        it = iter(tails)
        monkeypatch.setattr(SR, "eckart_young_tail", lambda s, kp_: next(it))
        monkeypatch.setattr(SR, "Z_CRITICAL", z)
        if applies is not None:
            monkeypatch.setattr(SR, "prop2_floor_applies", lambda kp_, k_, mu: applies)
        kw = {} if floor is None else {"floor": floor}
        return SR.check_prop2(np.random.default_rng(0), configs=((3, 1, kp),), T=3, batch=3, **kw).cases

    assert run([2.0, 0.5])[0].passed and not run([2.0, 0.5], z=_dn(0.5))[0].passed
    limit = run([2.0, 0.5], applies=True, floor=lambda d, k, kp: 0.5 + tol)[1]
    assert limit.label.endswith("limit (mu_i >= 2k)") and limit.passed
    assert not run([2.0, 0.5], applies=True, floor=lambda d, k, kp: _up(0.5 + tol))[1].passed
    lower = run([2.0, 1.0 - tol], kp=0, applies=False)[1]
    assert lower.label.endswith("limit lower bound") and lower.passed
    assert not run([2.0, _dn(1.0 - tol)], kp=0, applies=False)[1].passed


def test_app_c_means_accept_a_deviation_of_exactly_z_standard_errors(monkeypatch):
    SR = _sr()
    d, k = 4, 1
    for z, passes in [(1.0, True), (_dn(1.0), False)]:
        preds = iter([k * d * d, k * d * (d + 1)])
        monkeypatch.setattr(SR, "mean_and_se", lambda x, _it=preds: (lambda p: (2.0 * p, float(p)))(next(_it)))
        monkeypatch.setattr(SR, "Z_CRITICAL", z)
        cases = [c for c in SR.check_appC(np.random.default_rng(0), d=d, k=k, Ts=(3,), reps=4).cases
                 if c.label.startswith("T=3: T E||")]
        assert len(cases) == 2 and all(bool(c.passed) is passes for c in cases)


def test_thm34_checks_35_at_random_u_for_every_d_above_2k_also_for_k_3():
    """W-perp is nonzero exactly when d > 2k: at k = 3, d = 7 the identity is checked (2k = 6;
    a power 2^k = 8 in place of 2k would skip it -- k = 1, 2 cannot tell them apart)."""
    res = _saddles().check_thm34(np.random.default_rng(0), configs=((7, 3),), starts=2, random_U_per_config=1)
    (case,) = [c for c in res.cases if "(35) identity at random U" in c.label]
    assert case.measured > 0.0 and case.passed  # a computed identity leaves a rounding error; a skipped one 0


def test_thm34_l3_case_fails_when_the_loss_and_the_residuals_disagree(monkeypatch):
    """L3 (L = ||R_1||^2 = ||R_2||^2) must fail when L is off by 1: its ratio to the rounding
    bound is then huge, and the case passes only for ratios at most 1."""
    from landscape._objective import LoraMLProblem

    orig = LoraMLProblem.loss
    monkeypatch.setattr(LoraMLProblem, "loss", lambda self, A, U: orig(self, A, U) + 1.0)
    case = _thm34("L3 L = ||R_1||^2")
    assert case.measured > 1.0 and not case.passed
