"""Route 2's certificate of one end (``landscape/enumeration/_complete.py``): the 256-bit
fallback is taken only where float Newton's point fails Krawczyk's test, and a caller's
float Newton point is used as given."""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

from landscape.enumeration._complete import certify_solution
from landscape.enumeration._krawczyk import CompiledSystem

R, x, y = ring("x,y", QQ)
# x^2 - 2 = 0, y = x: two simple, well-conditioned real roots +-sqrt(2)
WELL = CompiledSystem([x**2 - 2, y - x], [x, y])


def test_a_well_conditioned_root_is_proved_without_the_precise_fallback():
    stats = {}
    p = np.array([1.4 + 1e-9j, 1.41 - 1e-9j])
    kr, kind, zero = certify_solution(WELL, p, 1, 2, stats=stats)
    assert kind == "real" and zero == [] and stats == {}
    assert abs(kr.center[0].real - np.sqrt(2)) <= kr.radius and kr.radius < 1e-12


def test_a_callers_newton_point_is_used_as_given():
    p = np.array([1.4 + 0j, 1.4 + 0j])
    q = WELL.newton(p)
    a = certify_solution(WELL, p, 1, 2)
    b = certify_solution(WELL, p, 1, 2, polished=q)
    assert a[1] == b[1] == "real" and np.array_equal(a[0].center, b[0].center) and a[0].radius == b[0].radius
    # a non-finite point from the caller means "float Newton failed": only the precise route is left
    stats = {}
    c = certify_solution(WELL, p, 1, 2, polished=np.full(2, np.nan), stats=stats)
    assert c[1] == "real" and stats == {"precise_newton": 1}
    assert certify_solution(WELL, p, 1, 2, polished=np.full(2, np.nan), precise=False) == (None, None, [])


def test_a_repeated_end_is_known_without_a_new_proof(monkeypatch):
    """CertifiedOrbits' fast path: an end whose Newton point lies within the tolerance of a
    certified orbit's key is that orbit, and Krawczyk's test is not run again for it."""
    import landscape.enumeration._complete as C

    circle = CompiledSystem([x**2 + 1, y - 2 * x + 1], [x, y])
    roots = np.array([[1j, -1 + 2j], [-1j, -1 - 2j]])
    calls = []
    real = C.certify_solution

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(C, "certify_solution", counting)
    sols = C.CertifiedOrbits(circle, 1, 2)
    assert sols.add(roots[0] + 1e-3) == ("new", 0) and len(calls) == 1
    assert sols.add(roots[0] - 2e-3j) == ("duplicate", 0) and len(calls) == 1
    assert sols.add(roots[1] + 1e-3) == ("new", 1) and len(calls) == 2
    # a Newton point off the certified key by round-off far above eps, still within the
    # tolerance (as a re-tracked end of a badly scaled orbit lands): known without a proof
    newton = circle.newton

    class Off:
        def __getattr__(self, name):
            return getattr(circle, name)

        def newton(self, p):
            return newton(p) + 1e-11

    sols.compiled = Off()
    assert sols.add(roots[1] - 1e-3j) == ("duplicate", 1) and len(calls) == 2


def _route_2_losing_ends(monkeypatch, support, lose_calls, lose=lambda ends: np.full_like(ends, np.nan)):
    """Route 2 on a rounded (d, T, k) = (2, 3, 1) instance, the ends of the first ``lose_calls``
    tracks of ``support`` passed through ``lose`` (default: all made non-finite); the route's
    clocks are checked (tracking within the whole, the whole within the call)."""
    from landscape.enumeration import algebra_available

    if not algebra_available("phc"):
        pytest.skip("needs phc")
    import landscape as ls
    import landscape.enumeration._param as P
    from landscape.enumeration._complete import homotopy_enumeration
    from landscape.enumeration._core import _Square
    from landscape.enumeration._systems import exact_tasks

    tasks = np.round(ls.random_instance(np.random.default_rng(0), 2, 3, 1).problem.tasks, 2)
    S = exact_tasks(tasks)
    real = P.track
    seen = []

    def track(fam, *a, **k):
        ends, diag = real(fam, *a, **k)
        if tuple(fam.supp) == support:
            seen.append(1)
            if len(seen) <= lose_calls:
                ends = lose(ends)
        return ends, diag

    with monkeypatch.context() as m:
        m.setattr(P, "track", track)
        t0 = time.perf_counter()
        route, _ = homotopy_enumeration(_Square(S, 3, 2, 1), S, 3, 2, seed=0, timeout=120, degree=None)
        wall = time.perf_counter() - t0
    assert 0 <= route["tracking_seconds"] <= route["seconds"] <= wall + 1e-3
    return route


def test_route_2_reports_retried_supports_and_the_double_double_pass(monkeypatch):
    """Ends of the first support lost (non-finite) in double precision and in the projective
    re-track, found in double-double: the support needed one try, its orbits are counted as
    found by the double-double pass; lost in every pass of the first try, the support is
    retried once."""

    def run(lose_calls):
        return _route_2_losing_ends(monkeypatch, (0,), lose_calls)

    clean = run(0)
    assert clean["retried_supports"] == 0 and clean["max_tries"] == 1
    want = next(p["start_orbits"] for p in clean["per_support"] if p["support"] == [0])
    dd = run(2)  # double and projective lost, double-double finds them
    first = next(p for p in dd["per_support"] if p["support"] == [0])
    assert first["tries"] == 1 and first["certified_orbits"] == want
    assert dd["new_orbits_by_mechanism"]["projective_double_double"] == want and dd["retried_supports"] == 0
    again = run(3)  # every pass of the first try lost: a second gamma
    sup = next(p for p in again["per_support"] if p["support"] == [0])
    assert sup["tries"] == 2
    # each try records what it had certified after its own passes: nothing, then every orbit
    assert [a["certified_orbits"] for a in sup["attempts"]] == [0, want]
    assert "double_double" in sup["attempts"][0] and sup["attempts"][0]["double_double"]["new_orbits"] == 0
    late = run(5)  # the second try too needs its double-double pass: its counts go to the second try
    sup = next(p for p in late["per_support"] if p["support"] == [0])
    assert sup["tries"] == 2 and [a["certified_orbits"] for a in sup["attempts"]] == [0, want]
    assert sup["attempts"][1]["double_double"]["new_orbits"] == want
    assert again["retried_supports"] == 1 and again["max_tries"] == 2


def test_a_large_certified_box_is_tightened_by_one_more_newton_run():
    """An end 1e-6 from the root is certified in a box of about that size; _prove then runs
    Newton from the box's centre and keeps the smaller box (radius near rounding)."""
    from landscape.enumeration._complete import _prove
    from landscape.enumeration._krawczyk import krawczyk_complex

    x0 = np.array([np.sqrt(2) + 1e-6, np.sqrt(2) - 1e-6], dtype=complex)
    loose = krawczyk_complex(WELL, x0)
    assert loose.certified and loose.radius > 1e-10 * (1 + np.sqrt(2))
    kr = _prove(WELL, x0, [], True, 2, 1.0 + np.sqrt(2))
    assert kr.certified and kr.radius < 1e-12 and abs(kr.center[0] - np.sqrt(2)) <= kr.radius


def _route2_with_ends(monkeypatch, edit):
    """Route 2 (the parameter homotopy) on a (3, 2, 1) instance, every batch of path ends passed
    through ``edit(support, ends) -> ends`` first; returns the route and its support (0, 1)."""
    from landscape.enumeration import algebra_available

    if not algebra_available("phc"):
        pytest.skip("needs phc")
    import landscape as ls
    import landscape.enumeration._param as P
    from landscape.enumeration._complete import homotopy_enumeration
    from landscape.enumeration._core import _Square
    from landscape.enumeration._systems import exact_tasks

    tasks = np.round(ls.random_instance(np.random.default_rng(0), 2, 3, 1).problem.tasks, 2)
    S = exact_tasks(tasks)
    real = P.track

    def track(fam, *a, **k):
        ends, diag = real(fam, *a, **k)
        return edit(tuple(fam.supp), ends), diag

    monkeypatch.setattr(P, "track", track)
    route, _ = homotopy_enumeration(_Square(S, 3, 2, 1), S, 3, 2, seed=0, timeout=120, degree=None)
    return route, next(p for p in route["per_support"] if p["support"] == [0, 1])


def test_an_end_on_a_smaller_support_is_counted_as_other_support(monkeypatch):
    """A path of support (0, 1) ending on an orbit of support (0,) -- found there already, so a
    duplicate that no path of this gamma owns -- is counted as other_support, re-tracked, and
    the support still certifies all its orbits."""
    keep = {}

    def edit(supp, ends):
        if supp == (0,) and "end" not in keep:
            keep["end"] = ends[0].copy()
        if supp == (0, 1) and "moved" not in keep:
            keep["moved"] = True
            ends = ends.copy()
            ends[0, :2], ends[0, 2:] = keep["end"], 0.0  # block 1 zero: the (0,) orbit
        return ends

    _, sup = _route2_with_ends(monkeypatch, edit)
    assert sup["attempts"][0]["double"] == {"lost": 0, "failed": 0, "duplicate": 0, "other_support": 1}
    assert sup["certified_orbits"] == sup["start_orbits"]


@pytest.mark.parametrize("side", [1 - 1e-3, 1 + 1e-3])
def test_zero_blocks_and_reality_are_decided_at_1e_8_of_the_point_s_size(side):
    """scale = 1 + max|x| = 3 here; a block whose largest entry is (1 -+ 1e-3) 1e-8 x 3 is set
    to 0 / kept, an imaginary part of that size is dropped / kept."""
    from landscape.enumeration._complete import _shape

    small = side * 1e-8 * 3.0
    x = np.array([2.0, -1.0, small, -0.5 * small, 0.5, 1.0 + 1j * small], dtype=complex)
    y, zero, real, scale = _shape(None, x.copy(), 3, 2, lambda z: z)
    assert scale == 3.0
    assert zero == ([1] if side < 1 else []) and real is (side < 1)
    if side < 1:
        assert np.all(y[2:4] == 0) and np.all(y.imag == 0) and y[0] == 2.0


def test_precise_newton_settles_on_a_zero_at_the_origin():
    """x + x^2 = 0, y - x = 0 from (1e-3, 1e-3): the steps shrink quadratically to the root 0,
    which Newton returns to float precision; from (-0.9, -0.9) it returns the root -1 exactly."""
    from landscape.enumeration._krawczyk import newton_precise

    R, x, y = ring("x,y", QQ)
    sys_ = CompiledSystem([x + x**2, y - x], [x, y])
    got = newton_precise(sys_, np.array([1e-3, 1e-3], dtype=complex))
    assert got is not None and np.max(np.abs(got)) < 1e-30
    far = newton_precise(sys_, np.array([-0.9, -0.9], dtype=complex))  # the other root, -1
    assert far is not None and np.max(np.abs(far - (-1.0))) == 0.0


R4, x1, x2, y1, y2 = ring("x1,x2,y1,y2", QQ)
# two blocks of d = 2 unknowns: x1 + x1^2 = 0, x2 = x1, y1^2 = 2, y2 = y1; a root with block 0 zero
TWO_BLOCKS = CompiledSystem([x1 + x1**2, x2 - x1, y1**2 - 2, y2 - y1], [x1, x2, y1, y2])
# the same with the blocks swapped (the zero root's block last)
SWAPPED = CompiledSystem([x1**2 - 2, x2 - x1, y1 + y1**2, y2 - y1], [x1, x2, y1, y2])


@pytest.mark.parametrize("block", [0, 1])
def test_the_proof_imposes_exact_zeros_on_every_zero_block(block):
    """_prove sets each listed zero block (d entries) to exactly 0 before Krawczyk's test,
    the first block and the last alike; the box is certified around that point."""
    from landscape.enumeration._complete import _prove

    if block == 0:
        x0, root = np.array([1e-13, -1e-13, np.sqrt(2), np.sqrt(2)]), np.array([0.0, 0.0, np.sqrt(2), np.sqrt(2)])
    else:
        x0, root = np.array([np.sqrt(2), np.sqrt(2), 1e-13, -1e-13]), np.array([np.sqrt(2), np.sqrt(2), 0.0, 0.0])
    kr = _prove(TWO_BLOCKS if block == 0 else SWAPPED, x0.astype(complex), [block], True, 2, 1.0 + np.sqrt(2))
    assert kr.certified and np.max(np.abs(kr.center - root)) <= kr.radius
    assert np.all(kr.center[2 * block:2 * block + 2] == 0)


@pytest.mark.parametrize("side,tightened", [(1 - 1e-3, True), (1 + 1e-3, False)])
def test_a_box_is_tightened_only_above_1e_10_of_the_scale(side, tightened):
    """The extra Newton run happens exactly when the certified radius exceeds 1e-10 x scale:
    the scale is set so that the loose box's radius is (1 -+ 1e-3) times that."""
    from landscape.enumeration._complete import _prove
    from landscape.enumeration._krawczyk import krawczyk_complex

    x0 = np.array([np.sqrt(2) + 1e-6, np.sqrt(2) - 1e-6], dtype=complex)
    loose = krawczyk_complex(WELL, x0)
    scale = side * loose.radius / 1e-10
    kr = _prove(WELL, x0, [], True, 2, scale)
    assert kr.certified
    assert (kr.radius < 1e-12) is tightened and (kr.radius == loose.radius) is (not tightened)


@pytest.mark.parametrize("zero_block,imag,polished", [(True, 0.5, True), (False, 0.0, True), (False, 0.5, False)])
def test_a_point_is_polished_again_when_a_block_is_zero_or_it_is_real(zero_block, imag, polished):
    """_shape re-polishes the point when either a block was set to 0 or the point was made
    real (each alone suffices), and leaves it as it is when neither applies."""
    from landscape.enumeration._complete import _shape

    calls = []

    def polish(z):
        calls.append(z.copy())
        return z

    x = np.array([2.0, 1.0 + 1j * imag, 1e-12 if zero_block else 0.5, 0.0], dtype=complex)
    y, zero, real, _ = _shape(None, x.copy(), 2, 2, polish)
    assert zero == ([1] if zero_block else []) and real is (imag == 0.0)
    assert len(calls) == int(polished)
    if zero_block:
        assert np.all(calls[0][2:] == 0)


def test_the_double_double_pass_counts_only_the_orbits_it_adds(monkeypatch):
    """Half of the ends of support {0, 1} (after three supports' orbits are known) lost in
    double precision and in the projective re-track: the double-double pass reports as new
    exactly the orbits missing before it (want - n0, not some other combination of the two),
    and the support ends complete."""

    def half_lost(ends):
        ends = ends.copy()
        ends[len(ends) // 2:] = np.nan
        return ends

    route = _route_2_losing_ends(monkeypatch, (0, 1), 2, half_lost)
    first = next(p for p in route["per_support"] if p["support"] == [0, 1])
    (att,) = first["attempts"]
    dd = att["double_double"]
    assert first["certified_orbits"] == first["start_orbits"]
    assert att["certified_orbits"] == first["start_orbits"]
    n0 = first["start_orbits"] - dd["new_orbits"]
    assert 0 < n0 < first["start_orbits"] and dd["new_orbits"] > 0, (n0, dd)
    assert route["new_orbits_by_mechanism"]["projective_double_double"] == dd["new_orbits"]


@pytest.mark.parametrize("ratio, kind", [(1.5, "complex"), (1 + 1e-11, "complex"), (1 + 1e-12, None), (1 + 1e-13, None),
                                         (1.0, None), (0.5, None)])
def test_a_non_real_box_must_exclude_the_real_space_by_its_radius(monkeypatch, ratio, kind):
    """A certified box around a non-real zero counts as complex only when its centre's largest
    |Im x_j| exceeds the radius (times 1 + 1e-12 for the float comparison): at 1 + 1e-11
    radii it does; at exactly 1 + 1e-12, 1 + 1e-13, 1 or half a radius it might hold a real
    zero and is dropped."""
    from types import SimpleNamespace

    import landscape.enumeration._complete as C

    r = 1e-3
    centre = np.array([0.3 + ratio * r * 1j, -0.2 + 0.1 * r * 1j])
    box = SimpleNamespace(certified=True, center=centre, radius=r)
    monkeypatch.setattr(C, "_shape", lambda compiled, x, T, d, newton: (x, [], False, 1.0))
    monkeypatch.setattr(C, "_prove", lambda *a, **k: box)
    compiled = SimpleNamespace(newton=lambda z: z)
    kr, got, zero = C.certify_solution(compiled, centre, 2, 1, precise=False, polished=centre)
    assert got == kind and (kr is box) is (kind is not None) and zero == []


def test_route_2_counts_the_origin_and_is_complete_when_nothing_is_lost(monkeypatch):
    """U = 0 solves every gradient system but lies on no support's homotopy: route 2 adds it
    itself, so on a (2, 3, 1) instance with no end lost the certified complex solutions reach
    msolve's degree exactly (the origin included) and the route is complete."""
    route = _route_2_losing_ends(monkeypatch, support=("none",), lose_calls=0)
    assert route["complete"] and route["missing"] == 0
    assert route["certified_complex_solutions"] == route["u_system_degree"]


@pytest.mark.parametrize("d", [2, 4])
def test_route_2_seeds_the_origin_with_all_t_d_unknowns(monkeypatch, d):
    """The origin handed to the certified set has all T d unknowns (T = 3 tasks of side d = 2
    and 4 -- at d > T a count taken from T and d the other way round would be empty); the
    route is stopped right after that first solution (the set is replaced by a recorder)."""
    from landscape.enumeration import _complete as C

    class Stop(Exception):
        pass

    seen = []

    class Recorder:
        def __init__(self, compiled, T, d):
            pass

        def add(self, x):
            seen.append(np.asarray(x))
            raise Stop

    monkeypatch.setattr(C, "CertifiedOrbits", Recorder)
    sq = SimpleNamespace(compiled=None, system=None)
    with pytest.raises(Stop):
        C.homotopy_enumeration(sq, None, 3, d, seed=0, timeout=1.0, degree=1)
    (x,) = seen
    assert x.shape == (3 * d,) and not np.any(x)


def test_a_path_end_with_a_non_finite_entry_counts_as_lost(monkeypatch):
    """An end with a nan entry (and otherwise finite entries) is a lost path, tallied as such
    and re-tracked -- not handed to Newton and Krawczyk as a point."""
    done = []

    def edit(supp, ends):
        if supp == (0, 1) and not done:
            done.append(True)
            ends = ends.copy()
            ends[0, 0] = np.nan
        return ends

    route, sup = _route2_with_ends(monkeypatch, edit)
    assert sup["attempts"][0]["double"]["lost"] == 1 and route["lost_paths"] >= 1
    assert sup["certified_orbits"] == sup["start_orbits"]  # re-tracked and found


def test_a_certified_end_joins_the_orbit_whose_slack_covers_it(monkeypatch):
    """A new certified end is a duplicate of the known orbit with the least dist - slack: here
    orbit 0 (wide box, large slack) covers the end while orbit 1 (point box, tiny slack) lies a
    little farther off; the end must join orbit 0, not be taken for a new orbit."""
    from types import SimpleNamespace

    from landscape.enumeration import _complete as C

    sols = C.CertifiedOrbits(SimpleNamespace(newton=lambda x: np.full(np.shape(x), np.nan)), 1, 1)
    kr = SimpleNamespace(center=np.array([1.0 + 0j]), radius=0.0)
    monkeypatch.setattr(C, "certify_solution", lambda *a, **k: (kr, "real", []))
    mag = 2.0
    slack0 = sols.tol * 2.0 + 3.0 * mag * 0.01
    sols.reps = [{"center": np.array([1.0]), "radius": 0.01}, {"center": np.array([1.0]), "radius": 0.0}]
    sols._keys = np.array([[1.0 + 0.9 * slack0], [1.0 - slack0]], dtype=complex)
    sols._radii = np.array([0.01, 0.0])
    assert sols.add(np.array([1.0])) == ("duplicate", 0)
    assert sols.reps[0]["radius"] == 0.0  # the tighter box of the two is kept
