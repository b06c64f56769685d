"""Pins of route 1's entry point (:mod:`landscape.enumeration._core`).

* The route of PHCpack alone still needs msolve (it computes the degree the count is
  checked against): without msolve it must refuse with the install hint naming msolve,
  and without phc name phc, before any solver runs.
* ``complete`` is the conjunction of its three conditions (msolve found finitely many
  solutions, every real PSD solution certified, the slice hypothesis holds): a single
  point whose Krawczyk test fails must make the list incomplete.
* Every real solution of the invariant system is either a listed orbit or counted as not
  PSD (not of the form U_t U_t^T).
"""
import numpy as np
import pytest

import landscape as ls
from landscape.enumeration import EnumerationUnavailable, algebra_available, enumerate_critical_points
from landscape.enumeration import _core, _points


def rounded_tasks(seed, d, T, k=1):
    return np.round(ls.random_instance(np.random.default_rng(seed), d, T, k).problem.tasks, 2)


@pytest.mark.parametrize("missing", ["msolve", "phc"])
def test_phc_route_alone_needs_both_solvers(monkeypatch, tmp_path, missing):
    monkeypatch.setenv(f"LANDSCAPE_{missing.upper()}", str(tmp_path / f"no-such-{missing}"))
    assert not algebra_available(missing)
    with pytest.raises(EnumerationUnavailable, match=f"the {missing} route needs its solver"):
        enumerate_critical_points(rounded_tasks(0, 2, 3), 1, routes=("phc",))


@pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")
@pytest.mark.parametrize("seed,d,T", [(4, 2, 3), (1, 3, 2)])
def test_one_failed_krawczyk_test_makes_the_list_incomplete(monkeypatch, seed, d, T):
    tasks = rounded_tasks(seed, d, T)
    base = enumerate_critical_points(tasks, 1)
    assert base.complete and base.data["orbits"] >= 2
    # every real solution of the invariant system is a PSD orbit or counted as not PSD
    assert base.data["real_solutions_invariant_system"] == base.data["orbits"] + base.data["real_solutions_not_psd"]
    assert base.data["real_solutions_not_psd"] > 0
    # every Krawczyk test run while the second point is certified fails (a fallback included)
    certified, state = [], {"fail": False}
    real_certify, real_krawczyk = _core._certify_point, _points.krawczyk

    def certify(*args, **kwargs):
        certified.append(1)
        state["fail"] = len(certified) == 2
        try:
            return real_certify(*args, **kwargs)
        finally:
            state["fail"] = False

    def krawczyk(system, x, **kw):
        kr = real_krawczyk(system, x, **kw)
        if state["fail"]:
            kr.certified = False
        return kr

    monkeypatch.setattr(_core, "_certify_point", certify)
    monkeypatch.setattr(_points, "krawczyk", krawczyk)
    r = enumerate_critical_points(tasks, 1)
    assert len(certified) == base.data["orbits"]
    assert not r.complete
    failed = [o for o in r.data["orbit_list"] if not o["certified"]]
    assert len(failed) == 1 and failed[0]["class"] == "degenerate"


@pytest.mark.skipif(not algebra_available("msolve"), reason="msolve not installed (extra 'algebra')")
def test_four_tasks_count_sign_copies_too():
    """T = 4 (as every T >= 3, k = 1): real critical points are the orbits' sign copies
    summed, and the data says it counted them; every orbit also carries the float
    classifier's verdict."""
    r = enumerate_critical_points(np.round(ls.random_instance(np.random.default_rng(1), 2, 4, 1).problem.tasks, 2), 1)
    assert r.complete and r.data["copies_counted"] is True
    assert r.data["boost_slice"] is None and r.data["degree_meaning"].endswith(" of the invariant system")
    assert r.data["gauge"] == "sign orbits (k = 1)"  # k = 1: the orbits are the sign flips of each u_t
    assert r.data["real_critical_points"] == sum(o["copies"] for o in r.data["orbit_list"]) > r.data["orbits"]
    from landscape._classify import KINDS

    assert all(o["existing_classifier"] in KINDS for o in r.data["orbit_list"])


def test_two_tasks_of_rank_two_are_never_called_complete(monkeypatch):
    """T = 2 with k >= 2 has no boost slice: even when msolve finds no solution at all, the
    list is not certified complete, and the note says why (msolve replaced by that answer)."""
    from landscape.enumeration import _backends

    monkeypatch.setattr(_core, "run_msolve", lambda text, **kw: _backends.MsolveResult(status="none", degree=0))
    r = enumerate_critical_points(rounded_tasks(0, 3, 2, 2), 2)
    assert r.data["orbits"] == 0 and not r.complete
    assert any("no boost slice implemented" in n for n in r.data["notes"])
    # the same answer for T = 3 (no slice needed) is complete
    assert enumerate_critical_points(rounded_tasks(0, 3, 3, 2), 2).complete


def test_lift_recovers_rank_k_factors_for_k_above_one():
    """_lift returns U_t with U_t U_t^T = X_t from the top-k eigenpairs, for k = 2 and 3 as for
    k = 1; a zero block is reported and left zero."""
    from landscape.enumeration._core import _lift

    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        U = rng.standard_normal((3, 5, k))
        U[1] = 0.0
        X = U @ np.swapaxes(U, 1, 2)
        got, ok, zero = _lift(X, k)
        assert ok and zero == [1]
        np.testing.assert_allclose(got @ np.swapaxes(got, 1, 2), X, rtol=0, atol=1e-12)
        assert not got[1].any()
