"""Pins of the two-route agreement record (:mod:`landscape.enumeration._agreement`).

* A record written live by :func:`agreement_record` at a small size with a committed start
  file, (T, d, k) = (3, 2, 1), must pass the solver-free checker: every box re-proved by
  Krawczyk, both lists the same points, every sign copy present (2^m per orbit with m
  non-zero blocks), counts equal to the lists.
* The sign copies of a k = 1 point are exactly the 2^m sign patterns of its non-zero blocks.
* Two boxes are disjoint exactly when the max-norm distance of their centres exceeds the
  sum of their radii (strictly).
"""
import numpy as np
import pytest

import landscape as ls
from landscape.enumeration import algebra_available
from landscape.enumeration._agreement import _disjoint, _orbits, _sign_copies, _square, agreement_record, \
    check_agreement

needs_both = pytest.mark.skipif(not (algebra_available("phc") and algebra_available("msolve")),
                                reason="needs phc (apt-get install phcpack) and msolve (extra 'algebra')")


def rounded_tasks(seed, d, T, k=1):
    return np.round(ls.random_instance(np.random.default_rng(seed), d, T, k).problem.tasks, 2)


@needs_both
def test_a_live_record_passes_the_checker():
    tasks = rounded_tasks(0, 2, 3)
    rec = agreement_record(tasks, 1, name="pin")
    assert rec["name"] == "pin" and rec["instance"] == {"T": 3, "d": 2, "k": 1}
    assert np.array_equal(np.array(rec["tasks"]), tasks)
    assert check_agreement(rec) == []
    ms, ph = rec["msolve"], rec["phc"]
    assert ms["complete"] and len(ms["points"]) == ms["real_critical_points"] == len(ph["points"])
    assert ms["orbits"] == len(_orbits(ms["points"], 3, 2)) < ms["real_critical_points"]
    assert sum(ms["counts_by_class"].values()) == ms["orbits"]
    # every point's box is the one its orbit was certified with (the same radius for its copies)
    for X, members, nz in _orbits(ms["points"], 3, 2):
        assert len(members) == 2 ** nz and len({p["radius"] for p in members}) == 1
    assert rec["versions"]["msolve_binary"] == "found" and rec["versions"]["phc"]
    # the PHCpack route's own report, its certified points replaced by their (centre, radius) boxes
    assert "certified_points" not in ph and "seconds" in ph
    assert all(set(p) == {"center", "radius"} for p in ph["points"])


def test_sign_copies_are_the_sign_patterns_of_the_non_zero_blocks():
    _problem, sq = _square(rounded_tasks(0, 2, 3), 1)
    U = np.array([[[1.5], [-2.0]], [[0.0], [0.0]], [[0.25], [3.0]]])
    copies = np.array(_sign_copies(sq, U))
    assert copies.shape == (4, 6)
    want = {tuple(np.concatenate([a * U[0, :, 0], U[1, :, 0], b * U[2, :, 0]])) for a in (1, -1) for b in (1, -1)}
    assert {tuple(c) for c in copies} == want
    assert len(_sign_copies(sq, np.zeros((3, 2, 1)))) == 1


@pytest.mark.parametrize("gap,want", [(0.375 + 2.0 ** -50, True), (0.375, False), (0.25, False), (-0.5, True)])
def test_disjoint_iff_the_centres_are_farther_than_the_radii(gap, want):
    # binary fractions: the distances and the radius sum 0.125 + 0.25 are exact floats
    a = {"center": [1.0, 2.0], "radius": 0.125}
    b = {"center": [1.0, 2.0 + gap], "radius": 0.25}
    assert _disjoint(a, b) is want and _disjoint(b, a) is want


@pytest.mark.parametrize("k", [2, 3])
def test_checker_refuses_records_of_rank_above_one(k):
    # the sign-copy and orbit bookkeeping of the checker is that of k = 1: a record of
    # another rank is refused as such, not checked against the wrong system
    import json
    from pathlib import Path

    rec = json.loads((Path(__file__).resolve().parents[1] / "landscape/results/enumeration_agreement.json")
                     .read_text())["instances"][0]
    rec["instance"]["k"] = k
    assert check_agreement(rec) == [f"only k = 1 records are checked, got k = {k}"]


def test_the_record_is_of_rank_one_unless_told_otherwise(monkeypatch):
    # no solver needed: the enumeration is stopped as soon as it is asked for, with its rank
    from landscape.enumeration import _core

    class Asked(Exception):
        pass

    def stop(tasks, k, **kwargs):
        raise Asked(k, kwargs["routes"])

    monkeypatch.setattr(_core, "enumerate_critical_points", stop)
    tasks = rounded_tasks(0, 2, 3)
    with pytest.raises(Asked) as info:
        agreement_record(tasks)
    assert info.value.args == (1, ("msolve", "phc"))
    with pytest.raises(Asked) as info:
        agreement_record(tasks, 2)
    assert info.value.args[0] == 2


def test_agreement_record_takes_its_options_by_keyword():
    """tasks and k by position (or keyword), every option keyword-only."""
    import inspect

    from ._pin_tools import assert_options_by_keyword

    assert_options_by_keyword(agreement_record, ["tasks", "k"])
    assert list(inspect.signature(agreement_record).parameters)[2:] == ["name", "seed", "timeout", "threads"]


def test_equal_long_point_lists_agree_in_count(monkeypatch):
    """The two routes' point counts are compared by value: two lists of 300 points each (more
    than the small integers Python caches) raise no count complaint. Box recertification,
    disjointness and orbit grouping are stood in for; each msolve box meets its own phc box."""
    import numpy as np

    from landscape.enumeration import _agreement as AG

    tasks = np.random.default_rng(0).standard_normal((3, 2, 2))
    _, sq = AG._square(tasks, 1)
    monkeypatch.setattr(AG, "_recertify", lambda sq, c, r: True)
    monkeypatch.setattr(AG, "_disjoint", lambda p, q: p["center"] != q["center"])
    monkeypatch.setattr(AG, "_orbits", lambda pts, T, d: [])
    pts = [{"center": [float(i)] * 6, "radius": 1e-12} for i in range(300)]
    rec = {"tasks": tasks.tolist(), "instance": {"T": 3, "d": 2, "k": 1}, "unknowns": list(sq.system.names),
           "msolve": {"points": pts, "real_critical_points": 300, "orbits": 0},
           "phc": {"points": [dict(p) for p in pts], "real_certified": 300, "lost_paths": 0,
                   "finite_regular_distinct": 300, "start_solutions": 300, "u_system_degree": 300}}
    assert AG.check_agreement(rec) == []
    rec["phc"]["points"] = rec["phc"]["points"][:299]
    rec["phc"]["real_certified"] = 299
    assert AG.check_agreement(rec)[0] == "msolve lists 300 real critical points, phc 299"
