"""The two routes of the enumeration agree at (3, 3, 1) (issue 20), re-proved without solvers.

``landscape/results/enumeration_agreement.json`` holds, per instance, every certified real
critical point found by route 1 (msolve) and by route 2 (PHCpack parameter homotopy).  The
fast tests re-certify every box of both routes by Krawczyk in ``arb``, check the lists
coincide box for box and match the recorded orbit and degree counts, and check that the
checker rejects records that violate each of those properties.  The committed start
solutions of route 2 are re-checked against the family's equations.

``LORAML_SLOW=1`` adds the live run of both routes on the recorded instance (about 5 min
on 2 cores), which must reproduce the committed counts.
"""
import copy
import json
import os
from math import comb
from pathlib import Path

import numpy as np
import pytest

from landscape.enumeration import algebra_available
from landscape.enumeration._agreement import check_agreement
from landscape.enumeration._param import ParamFamily, canonical, load_starts, orbit_keys, set_partitions

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "landscape" / "results" / "enumeration_agreement.json"


@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text())


@pytest.fixture(scope="module")
def first(record):
    return record["instances"][0]


def test_committed_agreement_holds(record):
    assert record["instances"]
    for rec in record["instances"]:
        assert rec["instance"] == {"T": 3, "d": 3, "k": 1}
        assert check_agreement(rec) == []
        assert rec["msolve"]["complete"]
        assert rec["msolve"]["real_critical_points"] >= 3  # at least U = 0 and a lowest minimum
        # route 2 tracked every start solution to a finite nonsingular end; the start set
        # lacks exactly what its file says it lacks against msolve's degree
        _starts, meta = load_starts(3, 3)
        ph = rec["phc"]
        assert ph["lost_paths"] == 0 and ph["start_solutions"] == meta["found_count"]
        assert ph["u_system_degree"] == ph["generic_count"] == meta["degree_u_system"]
    # at a generic instance no two ends merge: route 2 counts every complex solution
    assert any(r["phc"]["finite_regular_distinct"] == r["phc"]["start_solutions"] == r["phc"]["u_system_degree"]
               for r in record["instances"])


def _small(rec, keep):
    """The record restricted to the orbits (of both routes) whose X-invariants satisfy ``keep``;
    counts adjusted so that the restriction is itself consistent."""
    out = copy.deepcopy(rec)
    T, d = rec["instance"]["T"], rec["instance"]["d"]
    for route in ("msolve", "phc"):
        pts = [p for p in out[route]["points"] if keep(np.asarray(p["center"]).reshape(T, d))]
        out[route]["points"] = pts
    from landscape.enumeration._agreement import _orbits

    out["msolve"]["real_critical_points"] = len(out["msolve"]["points"])
    out["msolve"]["orbits"] = len(_orbits(out["msolve"]["points"], T, d))
    out["phc"]["real_certified"] = len(out["phc"]["points"])
    return out


@pytest.fixture(scope="module")
def small(first):
    # the orbits with at most one non-zero block: a consistent sub-record, cheap to re-check
    sub = _small(first, lambda U: sum(np.any(U[t] != 0) for t in range(U.shape[0])) <= 1)
    assert check_agreement(sub) == [] and len(sub["msolve"]["points"]) >= 3
    return sub


def test_checker_rejects_a_missing_point(small):
    bad = copy.deepcopy(small)
    bad["phc"]["points"].pop()
    bad["phc"]["real_certified"] -= 1
    assert any("msolve lists" in p for p in check_agreement(bad))


def test_checker_rejects_a_missing_sign_copy_in_both_routes(small):
    bad = copy.deepcopy(small)
    for route in ("msolve", "phc"):
        pts = bad[route]["points"]
        j = max(range(len(pts)), key=lambda n: np.max(np.abs(pts[n]["center"])))  # a non-zero point
        target = np.asarray(pts[j]["center"])
        bad[route]["points"] = [p for p in pts if not np.allclose(p["center"], target)]
    bad["msolve"]["real_critical_points"] -= 1
    bad["phc"]["real_certified"] -= 1
    assert any("sign copies" in p for p in check_agreement(bad))


def test_checker_rejects_a_box_without_a_zero(small):
    bad = copy.deepcopy(small)
    p = bad["phc"]["points"][-1]
    p["center"] = [x + 100 * p["radius"] + 1e-6 for x in p["center"]]
    assert any("Krawczyk" in m for m in check_agreement(bad))


def test_checker_rejects_other_tasks(small):
    bad = copy.deepcopy(small)
    bad["tasks"][0][0][0] += 0.01  # the points are critical for the committed tasks only
    assert any("Krawczyk" in m for m in check_agreement(bad))


def test_checker_rejects_a_duplicated_point(small):
    bad = copy.deepcopy(small)
    bad["msolve"]["points"].append(copy.deepcopy(bad["msolve"]["points"][0]))
    bad["msolve"]["real_critical_points"] += 1
    assert any("overlap" in m for m in check_agreement(bad))


def test_checker_rejects_lost_paths_and_counts_above_the_degree(small):
    bad = copy.deepcopy(small)
    bad["phc"]["lost_paths"] = 1
    assert any("paths lost" in m for m in check_agreement(bad))
    bad = copy.deepcopy(small)
    bad["phc"]["u_system_degree"] = bad["phc"]["start_solutions"] - 1
    assert any("not in increasing order" in m for m in check_agreement(bad))
    bad = copy.deepcopy(small)
    bad["phc"]["finite_regular_distinct"] = bad["phc"]["start_solutions"] + 8
    assert any("not in increasing order" in m for m in check_agreement(bad))


# ----------------------------------------------------------------------------- start files
@pytest.mark.parametrize("T,d", [(3, 2), (3, 3), (3, 4)])
def test_start_file_solves_its_instances(T, d):
    """Every stored orbit solves the family at its stored parameters, has every block of its
    support non-zero, the orbits are distinct, and the counts per support size are the
    recorded ones, whose sum with sign copies is the recorded degree."""
    loaded = load_starts(T, d)
    assert loaded is not None
    starts, meta = loaded
    per = {tuple(s["support"]): s for s in meta["supports"]}
    assert sorted(starts) == sorted(s for m in range(1, T + 1) for s in __import__("itertools").combinations(range(T), m))
    for supp, (S0, reps) in starts.items():
        fam = ParamFamily(T, d, supp)
        assert np.allclose(S0, np.swapaxes(S0, 1, 2))
        U = reps.reshape(len(reps), len(supp), d)
        for u in U:
            assert np.max(np.abs(fam.residual(S0, u))) <= 1e-8 * (1 + np.max(np.abs(u)) ** 3)
            assert np.min(np.max(np.abs(u), axis=1)) > 1e-6
        K = orbit_keys(U)
        gaps = [np.max(np.abs(K[i] - K[j])) for i in range(len(K)) for j in range(i)]
        assert not gaps or min(gaps) > 1e-6
        assert len(reps) == per[supp]["n_orbits"] <= meta["orbits_by_support_size"][str(len(supp))]
    total = sum(comb(T, m) * meta["orbits_by_support_size"][str(m)] * 2 ** m for m in range(T + 1))
    assert total == meta["degree_u_system"]
    found = 1 + sum(len(r) * 2 ** len(s) for s, (_S0, r) in starts.items())
    assert found == meta.get("found_count", total) <= total


@pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")
def test_start_file_counts_are_msolve_degrees():
    """The per-support-size counts of the (3, 2) start file are what msolve's degrees of a
    fresh random rational instance imply."""
    from landscape.enumeration._param import support_degrees

    _starts, meta = load_starts(3, 2)
    exact, total = support_degrees(3, 2, np.random.default_rng(123))
    assert total[3] == meta["degree_u_system"]
    assert {str(m): exact[m] for m in exact} == meta["points_by_support_size"]


def test_family_is_the_gradient_system():
    """ParamFamily's cubics equal the exact gradient system at rational tasks (so the
    homotopy tracks the equations route 1 solves)."""
    from fractions import Fraction

    from landscape.enumeration._systems import exact_tasks, gradient_system

    rng = np.random.default_rng(0)
    tasks = np.round(rng.standard_normal((3, 3, 3)), 2)
    S = exact_tasks(tasks)
    g = gradient_system(S, 3, 3, 1)
    fam = ParamFamily(3, 3, (0, 1, 2))
    assert fam.names == g.names
    Sf = np.array([[[float(x) for x in r] for r in M] for M in S])
    for _ in range(3):
        u = np.round(rng.standard_normal((3, 3)), 3)
        exact = [float(p(*[Fraction(repr(float(x))) for x in u.ravel()])) for p in g.polys]
        assert np.allclose(fam.residual(Sf, u).ravel(), exact, rtol=1e-12, atol=1e-12)
    # and the support systems are the gradient system with the other blocks zero
    sub = ParamFamily(3, 3, (0, 2))
    u = rng.standard_normal((2, 3))
    full = np.zeros((3, 3))
    full[[0, 2]] = u
    assert np.allclose(sub.residual(Sf, u), fam.residual(Sf, full)[[0, 2]])


def test_fit_params_and_sign_orbits():
    rng = np.random.default_rng(1)
    fam = ParamFamily(3, 3, (0, 1, 2))
    u = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    S = fam.fit_params(u, rng)
    assert np.max(np.abs(fam.residual(S, u))) < 1e-10
    flipped = u * np.array([[-1], [1], [-1]])
    assert np.max(np.abs(fam.residual(S, flipped))) < 1e-10  # the sign group acts on solutions
    assert np.allclose(orbit_keys(u[None]), orbit_keys(flipped[None]))
    assert np.allclose(canonical(u), canonical(flipped))
    other = u.copy()
    other[1] *= 1j  # not a sign flip: another orbit
    assert not np.allclose(orbit_keys(u[None]), orbit_keys(other[None]))


def test_set_partitions_are_the_bell_numbers():
    for n, bell in [(1, 1), (2, 2), (3, 5), (4, 15)]:
        parts = list(set_partitions(range(n)))
        assert len(parts) == bell
        assert len({tuple(sorted(tuple(sorted(b)) for b in p)) for p in parts}) == bell
        assert all(sorted(x for b in p for x in b) == list(range(n)) for p in parts)


@pytest.mark.skipif(os.environ.get("LORAML_SLOW") != "1", reason="live two-route run at (3,3,1): set LORAML_SLOW=1")
@pytest.mark.skipif(not (algebra_available("msolve") and algebra_available("phc")), reason="needs msolve and phc")
def test_live_two_routes_reproduce_the_record(first):
    from landscape.enumeration._agreement import agreement_record

    rec = agreement_record(np.asarray(first["tasks"]), 1)
    assert check_agreement(rec) == []
    for route in ("msolve", "phc"):
        assert len(rec[route]["points"]) == len(first[route]["points"])
    assert rec["msolve"]["counts_by_class"] == first["msolve"]["counts_by_class"]


def test_readme_quotes_the_record(record):
    """The README's enumeration paragraph states the committed numbers (no hand-copied drift)."""
    text = " ".join((ROOT / "README.md").read_text().split())
    a, b = record["instances"][:2]
    assert f"{a['msolve']['real_critical_points']} and {b['msolve']['real_critical_points']}" in text
    assert f"{round(a['msolve']['seconds'])} s and {round(b['msolve']['seconds'])} s (msolve)" in text
    assert f"{round(a['phc']['seconds'])} s and {round(b['phc']['seconds'])} s (homotopy)" in text
    assert f"{a['phc']['paths']} paths at (3, 3, 1)" in text
    assert f"holds {a['phc']['start_solutions']} of the {a['phc']['generic_count']} complex solutions" in text
    assert f"({a['msolve']['orbits']} sign orbits each" in text


def test_readme_quotes_the_sizes_record():
    data = json.loads((ROOT / "landscape" / "results" / "enumeration_sizes.json").read_text())
    text = " ".join((ROOT / "README.md").read_text().split())
    route2 = next(r for r in data["rows"] if r["size"] == [4, 3, 1] and r["what"].startswith("route 2 (parameter"))
    start = next(r for r in data["rows"] if r["size"] == [4, 3, 1] and "start file" in r["what"])
    assert f"from a start file solved once ({round(start['wall_s'])} s)" in text
    assert f"in {round(route2['wall_s'])} s ({round(route2['cpu_s'])} s of CPU)" in text
    assert f"{route2['result'].split()[0]} real critical points" in text
    assert f"of its {route2['paths']} paths" in text


def test_readme_quotes_the_route_2_alone_sizes():
    """Every route-2-alone row of the sizes record (``tools/enumeration_tables.py sizes``) is
    quoted in the README: certified count against the degree, wall time, and the verdict."""
    data = json.loads((ROOT / "landscape" / "results" / "enumeration_sizes.json").read_text())
    text = " ".join((ROOT / "README.md").read_text().split())
    rows = [r for r in data["rows"] if r.get("route") == "phc alone"]
    assert rows
    for r in rows:
        assert r["complete"] == (r["certified_complex_solutions"] == r["degree"])
        assert f"{r['certified_complex_solutions']} of the {r['degree']} complex solutions" in text
        assert f"in {round(r['wall_s'])} s ({round(r['cpu_s'])} s of CPU" in text


@pytest.mark.parametrize("delta", [-1, 1])
def test_checker_rejects_a_recorded_count_off_by_one_either_way(small, delta):
    bad = copy.deepcopy(small)
    bad["msolve"]["real_critical_points"] += delta
    assert "msolve's recorded count differs from its point list" in check_agreement(bad)


@pytest.mark.parametrize("how", ["reversed", "sorted after", "sorted before"])
def test_checker_rejects_other_unknowns_whatever_their_order(small, how):
    """Other unknowns are refused whether they sort before or after the system's own."""
    bad = copy.deepcopy(small)
    names = list(bad["unknowns"])
    bad["unknowns"] = {"reversed": names[::-1], "sorted after": ["z" + n for n in names],
                       "sorted before": ["a" + n for n in names]}[how]
    assert check_agreement(bad) == ["the unknowns of the record are not those of the gradient system"]


def test_a_missing_sign_copy_is_reported_with_the_orbit_s_count(small):
    """An orbit of nz non-zero blocks must have 2^nz sign copies: the message says how many of
    how many (here one block: 1 of 2)."""
    bad = copy.deepcopy(small)
    pts = bad["msolve"]["points"]
    j = max(range(len(pts)), key=lambda n: np.max(np.abs(pts[n]["center"])))
    del pts[j]
    bad["msolve"]["real_critical_points"] -= 1
    assert any(m.startswith("msolve: an orbit with 1 non-zero blocks has 1 of 2 sign copies")
               for m in check_agreement(bad))


def test_the_record_times_route_one_as_the_run_less_the_homotopy(monkeypatch):
    """msolve's wall time including certification is the whole run's wall time less the
    homotopy route's seconds (both from the same run), to 0.1 s."""
    import types

    import landscape.enumeration._agreement as AG
    import landscape.enumeration._core as core

    data = {"wall_time_s": 10.26, "instance": {}, "orbit_list": [], "complete": True, "degree": 1,
            "real_critical_points": 1, "orbits": 0, "counts_by_class": {}, "lowest_critical_value": None,
            "routes": {"msolve": {"seconds": 3.0}, "phc": {"seconds": 4.0, "certified_points": []}}}
    monkeypatch.setattr(core, "enumerate_critical_points", lambda *a, **k: types.SimpleNamespace(data=data, points=[]))
    from landscape import random_instance

    tasks = np.round(random_instance(np.random.default_rng(0), 2, 3, 1).problem.tasks, 2)
    rec = AG.agreement_record(tasks, 1)
    assert rec["msolve"]["wall_s_including_certification"] == 6.3
    assert rec["msolve"]["seconds"] == 3.0 and rec["phc"]["seconds"] == 4.0
