"""landscape._audit.run pinned where the audit's orchestration decides something: the size of
the invariant system and the automatic enumeration's limit at its boundary (12 unknowns run,
13 do not), which tasks the enumeration receives when the audit rescales the input (the
user's, exactly, never the rescaled copy or the zeros kept in place of a large input), and the
certificate's statement of its units (a point of the tasks divided by 2^e is 2^(e/2) times a
point in the user's units).  The enumeration is a stand-in here: msolve is optional.
"""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

import landscape as ls
from landscape import enumeration as E
from landscape._audit import enumeration as A
from landscape._audit import run as R


def _symmetric_entries(d: int) -> int:
    return len(np.triu_indices(d)[0])


@pytest.mark.parametrize("T", range(1, 15))
@pytest.mark.parametrize("d", range(1, 6))
def test_invariant_unknowns_count_one_symmetric_matrix_per_task(T, d):
    assert A.invariant_unknowns(T, d) == T * _symmetric_entries(d)
    assert A.small_enough_for_auto(T, d) is (T * _symmetric_entries(d) <= 12)


@pytest.mark.parametrize("T, d, small", [(12, 1, True), (13, 1, False), (4, 2, True), (5, 2, False), (2, 3, True),
                                         (3, 3, False), (1, 4, True), (2, 4, False), (1, 5, False)])
def test_the_automatic_limit_at_its_boundary(T, d, small):
    assert A.small_enough_for_auto(T, d) is small
    assert (A.invariant_unknowns(T, d) == 12) is ((T, d) in {(12, 1), (4, 2), (2, 3)})


@pytest.mark.parametrize("available", [True, False])
@pytest.mark.parametrize("T, d", [(12, 1), (13, 1), (4, 2), (5, 2), (2, 3), (3, 3)])
def test_enumeration_runs(monkeypatch, T, d, available):
    monkeypatch.setattr(E, "algebra_available", lambda route="msolve": available)
    assert R.enumeration_runs("on", T, d) is True
    assert R.enumeration_runs("off", T, d) is False
    assert R.enumeration_runs("auto", T, d) is (available and A.small_enough_for_auto(T, d))


def _capture(monkeypatch):
    """A stand-in enumeration that records the tasks it is given (and finds no orbit)."""
    seen = []

    def enumerate_critical_points(tasks, k, timeout):
        seen.append(np.array(tasks, copy=True))
        data = {"orbit_list": [], "lowest_critical_value": 1.0, "non_isolated": False, "real_critical_points": 0,
                "copies_counted": False, "counts_by_class": {}, "degree": 0, "wall_time_s": 0.0}
        return SimpleNamespace(points=[], data=data, complete=True)

    monkeypatch.setattr(E, "algebra_available", lambda route="msolve": True)
    monkeypatch.setattr(E, "enumerate_critical_points", enumerate_critical_points)
    return seen


@pytest.mark.parametrize("T, d, mode", [(2, 2, "auto"), (4, 2, "auto"), (2, 3, "auto"),
                                        (3, 3, "on")])
@pytest.mark.parametrize("power", [-300, 0, 200])
def test_a_rescaled_audit_enumerates_the_users_tasks(monkeypatch, T, d, mode, power):
    """The audit searches the tasks divided by 2^e, but the enumeration is exact and runs on
    the tasks as given -- at the automatic limit too (12 unknowns), with "on" beyond it, and
    without a rescaling (e = 0)."""
    seen = _capture(monkeypatch)
    rng = np.random.default_rng(T * 10 + d)
    tasks = rng.standard_normal((T, d, d))
    tasks = tasks + np.swapaxes(tasks, 1, 2)
    tasks = np.ldexp(tasks, power - R.scale_exponent(tasks))
    assert R.scale_exponent(tasks) == power
    rep = ls.audit(tasks, 1, starts=1, seed=0, certify=False, plots=False, enumeration=mode, progress=False)
    assert rep.data["enumeration"]["ran"] is True
    assert len(seen) == 1 and np.array_equal(seen[0], tasks)


def test_a_rescaled_audit_beyond_the_limit_skips_the_automatic_enumeration(monkeypatch):
    seen = _capture(monkeypatch)
    tasks = np.ldexp(np.random.default_rng(1).standard_normal((5, 2, 2)), 300)
    rep = ls.audit(tasks + np.swapaxes(tasks, 1, 2), 1, starts=1, seed=0, certify=False, plots=False,
                   enumeration="auto", progress=False)
    assert seen == [] and rep.data["enumeration"]["ran"] is False
    assert "15 > 12 unknowns" in rep.data["enumeration"]["reason"]


@pytest.mark.parametrize("factor", [2.0**-501, 2.0**502])
def test_the_certificate_states_its_units(factor):
    """A certificate of a rescaled audit is for the tasks divided by 2^e; its points are the
    user's divided by 2^(e/2): G is homogeneous of degree 2 in (tasks, U U^T)."""
    inst, U0 = ls.f2_spurious_instance()
    tasks = inst.problem.tasks * factor
    rep = ls.audit(tasks, 1, starts=0, seed=0, extra_starts=U0[None] * math.sqrt(factor), methods="lbfgs",
                   plots=False, enumeration="off", progress=False)
    e = rep.data["input"]["scale_exponent"]
    assert e % 2 == 0 and abs(e - math.log2(factor)) <= 2
    spur = [c for c in rep.data["classes"] if c["kind"] == "spurious_candidate"]
    assert spur and spur[0]["certificate"]["status"] == "certified"
    text = spur[0]["certificate"]["certificate_scale"]
    m = re.fullmatch(r"certificate for the tasks divided by 2\^(-?\d+) \(exact\); "
                     r"a point U of it is 2\^(-?\d+) U in your units", text)
    assert m, text
    assert int(m.group(1)) == e and 2 * int(m.group(2)) == e


def test_an_unscaled_certificate_says_nothing_of_units():
    inst, U0 = ls.f2_spurious_instance()
    e0 = R.scale_exponent(inst.problem.tasks)  # F.2's tasks are of scale about 4: e0 = 2
    rep = ls.audit(np.ldexp(inst.problem.tasks, -e0), 1, starts=0, seed=0, extra_starts=np.ldexp(U0[None], -e0 // 2),
                   methods="lbfgs", plots=False, enumeration="off", progress=False)
    assert rep.data["input"]["scale_exponent"] == 0
    spur = [c for c in rep.data["classes"] if c["kind"] == "spurious_candidate"]
    assert spur and spur[0]["certificate"]["status"] == "certified"
    assert "certificate_scale" not in spur[0]["certificate"]
