"""landscape._audit.enumeration pinned with a stand-in enumeration (msolve is optional): when the
enumeration runs (modes, the msolve requirement, the automatic size limit T d (d + 1) / 2 <= 12),
how the search's classes are matched to the certified orbits (X_t = U_t U_t^T, X_1 - X_2 at
T = 2, the audit's points rescaled by 2^e, relative tolerance 1e-6), the recall counts, and
report.md's wording.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from landscape import enumeration as E
from landscape._audit import enumeration as A
from landscape._validation import LandscapeInputError
from landscape.enumeration._points import GLOBAL_MINIMUM, SPURIOUS, STRICT_SADDLE


def test_constants():
    assert A.AUTO_MAX_UNKNOWNS == 12 and A.ENUMERATION_MODES == ("auto", "on", "off") and A.MATCH_RTOL == 1e-6


def _points(T, d, n, seed=0):
    return [np.random.default_rng(seed + i).standard_normal((T, d, 1)) for i in range(n)]


def _fake(monkeypatch, points, classes, copies, available=True, low=0.25):
    calls = []

    def enumerate_critical_points(tasks, k, timeout):
        calls.append((tasks.shape, k))
        orbit_list = [{"class": c, "copies": n} for c, n in zip(classes, copies)]
        data = {"orbit_list": orbit_list, "lowest_critical_value": low, "non_isolated": False,
                "real_critical_points": sum(copies), "copies_counted": True, "counts_by_class": {"x": 1},
                "degree": 9, "wall_time_s": 0.5}
        return SimpleNamespace(points=points, data=data, complete=True)

    monkeypatch.setattr(E, "algebra_available", lambda route="msolve": available)
    monkeypatch.setattr(E, "enumerate_critical_points", enumerate_critical_points)
    return calls


def _classes(points, kinds):
    classes = [SimpleNamespace(id=10 + i, kind=kind, representative=i) for i, kind in enumerate(kinds)]
    results = [SimpleNamespace(point=U) for U in points]
    return classes, results


def test_switched_off_and_bad_modes():
    assert A.enumeration_section("off", np.zeros((3, 2, 2)), 1, [], [], 0) == {"ran": False, "reason": "switched off"}
    with pytest.raises(LandscapeInputError, match=r"enumeration must be one of \('auto', 'on', 'off'\), got 'yes'"):
        A.enumeration_section("yes", np.zeros((3, 2, 2)), 1, [], [], 0)


def test_without_msolve_auto_skips_and_on_refuses(monkeypatch):
    _fake(monkeypatch, [], [], [], available=False)
    assert A.enumeration_section("auto", np.zeros((3, 2, 2)), 1, [], [], 0) == {
        "ran": False, "reason": "msolve not installed (extra 'algebra')"}
    with pytest.raises(LandscapeInputError, match="--enumerate needs msolve"):
        A.enumeration_section("on", np.zeros((3, 2, 2)), 1, [], [], 0)


@pytest.mark.parametrize("T, d, runs", [(4, 2, True), (2, 3, True), (3, 3, False), (5, 2, False)])
def test_auto_runs_up_to_twelve_unknowns(monkeypatch, T, d, runs):
    calls = _fake(monkeypatch, [], [], [])
    sec = A.enumeration_section("auto", np.zeros((T, d, d)), 1, [], [], 0)
    assert sec["ran"] is runs and bool(calls) is runs
    if not runs:
        assert sec["reason"] == (f"instance too large for the automatic enumeration ({T * d * (d + 1) // 2} > 12 "
                                 "unknowns); use --enumerate")
    assert A.enumeration_section("on", np.zeros((T, d, d)), 1, [], [], 0)["ran"] is True  # "on" always runs


@pytest.mark.parametrize("T", [2, 3])
def test_classes_are_matched_through_the_invariants_in_user_units(monkeypatch, T):
    e = 4  # the audit ran on the tasks divided by 2^4: its points are 2^-2 times the user's
    pts = _points(T, 3, 3)
    _fake(monkeypatch, pts, [GLOBAL_MINIMUM, SPURIOUS, STRICT_SADDLE], [2, 4, 8])
    audit_pts = [np.ldexp(pts[0], -e // 2), np.ldexp(pts[1], -e // 2) * (1 + 5e-7), pts[2] + 1.0,
                 np.zeros((T, 3, 1))]
    classes, results = _classes(audit_pts, ["global_minimum", "spurious_candidate", "strict_saddle", "not_critical"])
    sec = A.enumeration_section("on", np.zeros((T, 3, 3)), 1, classes, results, e)
    assert sec["classes"] == {"10": {"orbit": 0, "exact_class": GLOBAL_MINIMUM},
                              "11": {"orbit": 1, "exact_class": SPURIOUS},
                              "12": {"orbit": None, "exact_class": None}}
    assert sec["orbits"] == 3 and sec["orbits_found_by_search"] == 2 and sec["points_found_by_search"] == 6
    assert sec["spurious_minima"] == 1 and sec["spurious_minima_found_by_search"] == 1
    assert sec["lowest_minimum_found_by_search"] is True and sec["complete"] is True and sec["degree"] == 9


def test_t2_matches_modulo_the_boosts_through_the_difference(monkeypatch):
    """At T = 2 the invariant is X_1 - X_2: a point with other X_t but the same difference (here
    of rank 3 factors, X_t + I) is the same orbit."""
    pts = _points(2, 3, 1)
    _fake(monkeypatch, pts, [GLOBAL_MINIMUM], [2])
    X = pts[0] @ np.swapaxes(pts[0], 1, 2)
    W = np.stack([np.linalg.cholesky(X[0] + np.eye(3)), np.linalg.cholesky(X[1] + np.eye(3))])
    classes, results = _classes([W], ["global_minimum"])
    sec = A.enumeration_section("on", np.zeros((2, 3, 3)), 3, classes, results, 0)
    assert sec["classes"]["10"]["orbit"] == 0
    T3 = _points(3, 3, 1)
    _fake(monkeypatch, T3, [GLOBAL_MINIMUM], [2])
    X3 = T3[0] @ np.swapaxes(T3[0], 1, 2)
    W3 = np.stack([np.linalg.cholesky(x + np.eye(3)) for x in X3])  # same differences, other X_t: not at T = 3
    classes, results = _classes([W3], ["global_minimum"])
    assert A.enumeration_section("on", np.zeros((3, 3, 3)), 3, classes, results, 0)["classes"]["10"]["orbit"] is None


def test_outside_the_tolerance_no_match(monkeypatch):
    pts = _points(3, 2, 1)
    _fake(monkeypatch, pts, [SPURIOUS], [1])
    classes, results = _classes([pts[0] * (1 + 2e-6)], ["spurious_candidate"])
    sec = A.enumeration_section("on", np.zeros((3, 2, 2)), 1, classes, results, 0)
    assert sec["classes"]["10"] == {"orbit": None, "exact_class": None} and sec["orbits_found_by_search"] == 0
    assert sec["lowest_minimum_found_by_search"] is False


def test_markdown():
    assert A.enumeration_markdown({"ran": False, "reason": "switched off"}) == (
        "\n## Complete enumeration\n\nNot run: switched off.\n")
    assert "Not run: not run." in A.enumeration_markdown(None)
    sec = {"ran": True, "complete": False, "copies_counted": True, "real_critical_points": 14, "orbits": 3,
           "points_found_by_search": 6, "orbits_found_by_search": 2, "spurious_minima": 1,
           "spurious_minima_found_by_search": 1, "lowest_critical_value": 0.123456789,
           "lowest_minimum_found_by_search": True, "non_isolated": True}
    md = A.enumeration_markdown(sec)
    assert ("Complete enumeration (NOT certified complete): the search found 6 of 14 critical points "
            "(2 of 3 orbits); spurious local minima: 1 (found by the search: 1).") in md
    assert "Lowest critical value: 0.123457 (found by the search: True)" in md
    assert "not isolated (T = 2 boosts)" in md
    md2 = A.enumeration_markdown(dict(sec, copies_counted=False, complete=True, non_isolated=False))
    assert "(certified complete): the search found 2 of 3 critical orbits" in md2 and "not isolated" not in md2


def test_only_spurious_orbits_count_as_spurious_minima(monkeypatch):
    from landscape.enumeration._points import DEGENERATE, LOWEST_MINIMUM

    pts = _points(3, 2, 5)
    _fake(monkeypatch, pts, [GLOBAL_MINIMUM, LOWEST_MINIMUM, DEGENERATE, STRICT_SADDLE, SPURIOUS], [1, 1, 1, 1, 1])
    classes, results = _classes(pts[:4], ["global_minimum"] * 4)  # every orbit but the spurious one found
    sec = A.enumeration_section("on", np.zeros((3, 2, 2)), 1, classes, results, 0)
    assert sec["spurious_minima"] == 1 and sec["spurious_minima_found_by_search"] == 0
    assert sec["orbits_found_by_search"] == 4


@pytest.mark.parametrize("size, matched", [(0.5e-6, True), (2e-6, False)])
def test_a_point_near_the_origin_matches_the_zero_orbit_within_an_absolute_1e_6(monkeypatch, size, matched):
    """The match tolerance is MATCH_RTOL (1 + max |invariant|): relative for large points,
    absolute near U = 0, where a search's point of size ~1e-3 (invariants ~1e-6) is the
    certified zero orbit; twice the tolerance away it is not."""
    zero = np.zeros((3, 2, 1))
    _fake(monkeypatch, [zero], [STRICT_SADDLE], [1])
    U = np.zeros((3, 2, 1))
    U[0, 0, 0] = np.sqrt(size)  # X_1 = U_1 U_1^T has the entry `size`
    classes, results = _classes([U], [STRICT_SADDLE])
    sec = A.enumeration_section("on", np.zeros((3, 2, 2)), 1, classes, results, 0)
    assert sec["classes"]["10"] == ({"orbit": 0, "exact_class": STRICT_SADDLE} if matched
                                    else {"orbit": None, "exact_class": None})
