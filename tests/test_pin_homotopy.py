"""landscape.enumeration._homotopy pinned: route 2's matching of certified points to route 1's
orbits (duplicates from different starts are one box, every sign copy is a hit of its orbit,
a point route 1 lacks is unmatched), and the parameter homotopy's counts at (T, d, k) = (3, 2, 1)
against its committed start file (paths, paths if every sign copy were tracked, complex points
= orbits x 2^|support| against the degree of the U-system).  Skipped without msolve (and phc
for the live route).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import landscape as ls
from landscape.enumeration import algebra_available, enumerate_critical_points

pytestmark = pytest.mark.skipif(not algebra_available("msolve"), reason="needs msolve (extra 'algebra')")


def _tasks():
    return np.round(ls.random_instance(np.random.default_rng(0), 2, 3, 1).problem.tasks, 2)


@pytest.fixture(scope="module")
def route1():
    from landscape.enumeration._points import _Square
    from landscape.enumeration._systems import exact_tasks

    tasks = _tasks()
    r = enumerate_critical_points(tasks, 1)
    S = exact_tasks(ls.LoraMLProblem(tasks, 1).tasks)
    return r, _Square(S, 3, 2, 1)


def _sign_copies(U):
    out = []
    for signs in itertools.product((1.0, -1.0), repeat=U.shape[0]):
        V = U * np.array(signs)[:, None, None]
        if not any(np.array_equal(V, W) for W in out):
            out.append(V)
    return out


def test_every_sign_copy_is_a_hit_and_duplicates_are_one_box(route1):
    from landscape.enumeration._homotopy import _certify_and_match

    r, sq = route1
    orbits, points = r.data["orbit_list"], r.points
    assert r.complete and len(points) == len(orbits) >= 3
    pts = []
    for U in points:
        for V in _sign_copies(U):
            x = sq.pack(V)
            pts += [x, x * (1 + 1e-9), x + 1e-10]  # three starts that polish to one point
    boxes, hits, unmatched = _certify_and_match(sq, pts, orbits, points)
    assert hits == [o["copies"] for o in orbits] and unmatched == 0
    assert len(boxes) == sum(o["copies"] for o in orbits) == r.data["real_critical_points"]
    for c, rad in boxes:
        assert rad < 1e-6


def test_a_point_route_one_lacks_is_unmatched(route1):
    from landscape.enumeration._homotopy import _certify_and_match

    r, sq = route1
    orbits, points = r.data["orbit_list"], r.points
    drop = max(range(len(points)), key=lambda i: orbits[i]["copies"])
    pts = [sq.pack(V) for U in points for V in _sign_copies(U)]
    keep = [i for i in range(len(points)) if i != drop]
    boxes, hits, unmatched = _certify_and_match(sq, pts, [orbits[i] for i in keep], [points[i] for i in keep])
    assert unmatched == orbits[drop]["copies"] and hits == [orbits[i]["copies"] for i in keep]
    assert len(boxes) == len(pts)


def test_end_points_polish_to_known_critical_points(route1):
    """Rough end points are polished by Newton first: each certified box is a critical point
    that route 1 listed (a hit), never counted twice."""
    from landscape.enumeration._homotopy import _certify_and_match

    r, sq = route1
    rough = [np.full(len(sq.free), 3.0), np.linspace(-2.0, 2.0, len(sq.free)), np.zeros(len(sq.free))]
    boxes, hits, unmatched = _certify_and_match(sq, rough, r.data["orbit_list"], r.points)
    assert boxes and unmatched == 0 and sum(hits) == len(boxes) <= len(rough)


@pytest.mark.slow
@pytest.mark.skipif(not algebra_available("phc"), reason="needs phc (PHCpack)")
def test_parameter_homotopy_counts_against_its_start_file():
    from landscape.enumeration._param import load_starts

    starts, meta = load_starts(3, 2)
    r = enumerate_critical_points(_tasks(), 1, routes=("msolve", "phc"))
    ph = r.data["routes"]["phc"]
    assert ph["method"].startswith("parameter homotopy")
    assert ph["paths"] == sum(len(reps) for _, reps in starts.values())
    assert ph["paths_if_every_sign_copy_tracked"] == sum(len(reps) * 2 ** len(s) for s, (_, reps) in starts.items())
    assert ph["paths_if_every_sign_copy_tracked"] > ph["paths"]
    assert ph["generic_count"] == meta["degree_u_system"]
    assert [p["support"] for p in ph["per_support"]] == [list(s) for s in starts]
    assert [p["paths"] for p in ph["per_support"]] == [len(reps) for _, reps in starts.values()]
    # complex points: each orbit at the target counted 2^|support| times (+1 for U = 0)
    assert ph["finite_regular_distinct"] == 1 + sum(p["orbits_at_target"] * 2 ** len(p["support"])
                                                    for p in ph["per_support"])
    assert ph["finite_regular_distinct"] == ph["u_system_degree"] and ph["complex_count_matches_degree"] is True
    assert ph["lost_paths"] == 0 and ph["agrees"] is True and r.data["routes_agree"] is True
    assert ph["real_certified"] == r.data["real_critical_points"] == len(ph["certified_points"])


@pytest.mark.slow
@pytest.mark.skipif(not algebra_available("phc"), reason="needs phc (PHCpack)")
def test_blackbox_route_per_support_agrees_with_route_one(route1):
    """phc -b once per support pattern (the route without a start file), called directly on an
    instance that has one: the same real points, each sign copy a hit, the complex count
    reported against the degree of the U-system."""
    from landscape.enumeration._homotopy import phc_route
    from landscape.enumeration._systems import exact_tasks

    r, sq = route1
    problem = ls.LoraMLProblem(_tasks(), 1)
    S = exact_tasks(problem.tasks)
    out = phc_route(problem, sq, S, r.data["orbit_list"], r.points, seed=1, timeout=120)
    assert out["agrees"] is True and out["unmatched_real"] == 0
    assert out["real_certified"] == r.data["real_critical_points"] and out["orbits_found"] == len(r.points)
    assert out["complex_count_matches_degree"] is (out["finite_regular_distinct"] == out["u_system_degree"])
    # the distinct finite regular ends are at most the paths; at this instance phc -b's are
    # 150 against the degree 149 (two near ends not merged), so only bounds are asserted
    assert out["paths"] >= out["finite_regular_distinct"] >= out["u_system_degree"] - 1 > 100


def test_without_orbits_every_certified_point_is_unmatched(route1):
    """Route 1 with no orbit to match against: each certified point is unmatched (no
    nearest orbit exists), none is a hit."""
    from landscape.enumeration._homotopy import _certify_and_match

    r, sq = route1
    pts = [sq.pack(U) for U in r.points]
    boxes, hits, unmatched = _certify_and_match(sq, pts, [], [])
    assert hits == [] and unmatched == len(boxes) == len(pts)


def test_orbits_found_counts_the_orbits_hit_at_least_once(route1, monkeypatch):
    """The homotopy route reports how many of route 1's orbits it hit (an orbit hit twice
    counts once, one never hit not at all) and agrees only when each is hit by its copies."""
    import landscape.enumeration._homotopy as H

    r, sq = route1
    orbits = r.data["orbit_list"]
    hits = [0] + [o["copies"] for o in orbits[1:]]
    monkeypatch.setattr(H, "run_phc", lambda *a, **k: type("Out", (), {"paths": 0, "solutions": np.zeros((0, 1)),
                                                                        "flags": []})())
    monkeypatch.setattr(H, "_certify_and_match", lambda sq, pts, orbits, points: ([], list(hits), 0))
    monkeypatch.setattr(H, "msolve_degree", lambda *a, **k: 0)
    out = H.phc_route(ls.LoraMLProblem(_tasks(), 1), sq, None, orbits, r.points, seed=0, timeout=1.0)
    assert out["orbits_found"] == len(orbits) - 1 and out["agrees"] is False
    hits[0] = orbits[0]["copies"]
    out = H.phc_route(ls.LoraMLProblem(_tasks(), 1), sq, None, orbits, r.points, seed=0, timeout=1.0)
    assert out["orbits_found"] == len(orbits) and out["agrees"] is True


@pytest.mark.skipif(not algebra_available("phc"), reason="needs phc (PHCpack)")
@pytest.mark.parametrize("extra", [1, -1])
def test_a_complex_count_short_of_or_above_the_degree_does_not_match_it(monkeypatch, extra):
    """complex_count_matches_degree means equality: with the U-system's degree read one higher
    (fewer points than the degree) or one lower (more), the flag is False."""
    import landscape.enumeration._homotopy as H

    real = H.msolve_degree
    monkeypatch.setattr(H, "msolve_degree", lambda *a, **k: real(*a, **k) + extra)
    ph = enumerate_critical_points(_tasks(), 1, routes=("msolve", "phc")).data["routes"]["phc"]
    assert ph["u_system_degree"] == ph["finite_regular_distinct"] + extra
    assert ph["complex_count_matches_degree"] is False


@pytest.mark.parametrize("k, hits, agrees", [(1, [2, 1], False), (1, [2, 2], True), (2, [2, 1], True),
                                             (2, [2, 0], False)])
def test_at_rank_one_every_orbit_must_be_hit_once_per_sign_copy(monkeypatch, k, hits, agrees):
    """Route 2 agrees with route 1 when nothing is unmatched and every orbit is hit; at k = 1
    (sign copies listed) each orbit must be hit exactly as many times as it has copies. phc,
    the support systems and the matching are replaced by their answers here."""
    from types import SimpleNamespace

    from landscape.enumeration import _homotopy as H

    g = SimpleNamespace(gens=[0, 1], names=["x", "y"], msolve_text=lambda: "")
    sq = SimpleNamespace(system=g, lagrange=False)
    monkeypatch.setattr(H, "on_support", lambda g_, supp: (np.array([0, 1]), [], []))
    monkeypatch.setattr(H, "run_phc", lambda *a, **kw: SimpleNamespace(paths=0, solutions=np.zeros((0, 2)), flags=[]))
    monkeypatch.setattr(H, "msolve_degree", lambda *a, **kw: 1)
    monkeypatch.setattr(H, "_certify_and_match", lambda sq_, pts, orbits, points: ([], list(hits), 0))
    problem = SimpleNamespace(T=3, k=k)
    out = H.phc_route(problem, sq, None, [{"copies": 2}, {"copies": 2}], [None, None], seed=0, timeout=1.0)
    assert out["agrees"] is agrees


@pytest.mark.skipif(not algebra_available("phc"), reason="needs phc (PHCpack)")
def test_an_end_with_a_numerically_zero_block_is_left_to_the_smaller_support(monkeypatch):
    """A path end one of whose blocks is zero up to round-off (1e-14 of the end's size) lies on
    a smaller support: counted as such and not as a new orbit of this support."""
    import landscape.enumeration._param as P

    real, extra = P.track, {}

    def track(fam, S0, S, reps, gamma, **kw):
        ends, diag = real(fam, S0, S, reps, gamma, **kw)
        if len(fam.supp) == 2 and "done" not in extra and len(ends):
            extra["done"] = True
            e = ends[0].copy()
            e[:fam.d] = 1e-14 * np.max(np.abs(e))  # block 0 vanishes to round-off
            ends, diag = np.vstack([ends, e[None]]), np.vstack([diag, diag[:1]])
        return ends, diag

    base = enumerate_critical_points(_tasks(), 1, routes=("msolve", "phc")).data["routes"]["phc"]
    monkeypatch.setattr(P, "track", track)
    ph = enumerate_critical_points(_tasks(), 1, routes=("msolve", "phc")).data["routes"]["phc"]
    assert extra["done"]
    assert ph["ends_on_smaller_support"] == base["ends_on_smaller_support"] + 1
    assert [p["orbits_at_target"] for p in ph["per_support"]] == [p["orbits_at_target"] for p in base["per_support"]]
    assert ph["agrees"] is True
