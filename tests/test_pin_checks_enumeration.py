"""The registry row "Thm 3.3/3.4 (every critical point)" (``theory/_checks_enumeration.py``)
decides from the enumeration's certified data exactly as the theorems say: a zero-loss orbit
is one whose G enclosure reaches 0, at T = 2 one orbit with G > 0 that is not a strict saddle
fails the row, at T = 3 the one zero-loss orbit must be U*, and the d = 2k control fails when
it finds only one zero-loss orbit.  The enumeration is replaced by certified results written
here, so every branch is reached without msolve."""
from __future__ import annotations

import inspect
import time

import numpy as np
import pytest

import landscape.enumeration as E
from theory import _checks_enumeration as CE


class _Result:
    def __init__(self, orbits, points=None, complete=True):
        self.complete = complete
        self.data = {"orbit_list": orbits}
        self.points = points


ZERO = {"G_enclosure": [-1e-70, 1e-70], "class": "lowest_local_minimum"}
SADDLE = {"G_enclosure": [0.5, 0.5000001], "class": "strict_saddle"}
SPURIOUS = {"G_enclosure": [0.25, 0.2500001], "class": "spurious_local_minimum"}


@pytest.fixture
def fake(monkeypatch):
    """Every enumerate_critical_points call returns the next queued result."""
    queue = []
    monkeypatch.setattr(E, "algebra_available", lambda name: True)
    monkeypatch.setattr(E, "enumerate_critical_points", lambda tasks, k, **kw: queue.pop(0))
    return queue


def test_zero_loss_orbits_are_those_whose_enclosure_reaches_zero():
    res = _Result([ZERO, SADDLE, {"G_enclosure": [0.0, 1e-30], "class": "x"}, {"class": "no enclosure"},
                   {"G_enclosure": [1e-300, 1e-299], "class": "y"}])
    assert CE._zero_orbits(res) == [0, 2]


def test_two_tasks_fail_on_one_positive_loss_orbit_that_is_not_a_strict_saddle(fake):
    fake += [_Result([ZERO, SADDLE]), _Result([ZERO, SADDLE, SPURIOUS]), _Result([SADDLE])]
    r = CE.check_enumeration(np.random.default_rng(0), t2_instances=3, t3_instances=0, control=False)
    assert [c.passed for c in r.cases] == [True, False, False]  # a spurious minimum; no zero-loss orbit
    assert [c.measured for c in r.cases] == [0, 1, 0] and r.passed is False


def test_three_tasks_need_exactly_one_zero_loss_orbit_and_it_is_u_star(fake):
    rng = np.random.default_rng(5)
    A, U = CE._draw(np.random.default_rng(5), 3, 3, 1)
    other = U[::-1].copy()
    fake += [_Result([ZERO, SADDLE], points=[U, other]), _Result([ZERO, SADDLE], points=[other, U]),
             _Result([ZERO, ZERO], points=[U, other]), _Result([ZERO, SADDLE], points=[U, other], complete=False)]
    r = CE.check_enumeration(rng, t2_instances=0, t3_instances=4, control=False)
    assert [c.passed for c in r.cases] == [True, False, False, False]
    assert [c.measured for c in r.cases] == [1, 1, 2, 1]


def test_the_d_equals_2k_control_needs_two_zero_loss_orbits(fake):
    fake += [_Result([ZERO, ZERO, SADDLE]), _Result([ZERO, SADDLE])]
    assert CE.check_enumeration(np.random.default_rng(0), t2_instances=0, t3_instances=0).passed is True
    r = CE.check_enumeration(np.random.default_rng(0), t2_instances=0, t3_instances=0)
    assert r.passed is False and r.cases[0].measured == 1


def test_the_row_reports_its_own_wall_time(fake):
    fake += [_Result([ZERO, SADDLE])]
    t = time.perf_counter()
    r = CE.check_enumeration(np.random.default_rng(0), t2_instances=1, t3_instances=0, control=False)
    assert 0.0 <= r.seconds <= time.perf_counter() - t


def test_library_defaults_are_the_registrys_paper_scale():
    from theory._registry import REGISTRY

    row = next(c for c in REGISTRY if c.id == CE.CHECK_ID)
    sig = inspect.signature(CE.check_enumeration).parameters
    for name, value in row.sizes["paper"].items():
        assert sig[name].default == value, name


def test_a_zero_loss_orbit_whose_enclosure_starts_at_exactly_zero_is_not_a_positive_loss_orbit(fake):
    """G in [0, 1e-30] is a zero-loss orbit (it reaches 0), not one with G > 0: a global
    minimum whose enclosure starts at exactly 0 does not fail the T = 2 row."""
    at_zero = {"G_enclosure": [0.0, 1e-30], "class": "lowest_local_minimum"}
    fake += [_Result([at_zero, SADDLE])]
    r = CE.check_enumeration(np.random.default_rng(0), t2_instances=1, t3_instances=0, control=False)
    assert r.passed is True and r.cases[0].measured == 0


def test_without_msolve_the_row_is_skipped_in_its_own_time(monkeypatch):
    monkeypatch.setattr(E, "algebra_available", lambda name: False)
    t = time.perf_counter()
    r = CE.check_enumeration(np.random.default_rng(0))
    assert r.verdict == "SKIP" and "msolve not installed" in r.skipped
    assert 0.0 <= r.seconds <= time.perf_counter() - t
    # the seconds are the difference of the clock's two readings (here 100 s and 250 s)
    from types import SimpleNamespace

    clock = iter([100.0, 250.0])
    monkeypatch.setattr(CE, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert CE.check_enumeration(np.random.default_rng(0)).seconds == 150.0


@pytest.mark.parametrize("zero_orbits, passed", [(1, True), (2, False), (0, False)])
def test_thm33_case_predicts_exactly_one_zero_loss_orbit(monkeypatch, zero_orbits, passed):
    """T = 3, d = 3k: the case predicts 1 zero-loss orbit (U* itself) and passes exactly when
    the complete enumeration finds that one (its planted stand-in: U* and other orbits whose
    certified G encloses 0, or none)."""
    from types import SimpleNamespace

    U = np.random.default_rng(0).standard_normal((3, 3, 1))
    A = np.zeros((3, 3))
    monkeypatch.setattr(CE, "_draw", lambda rng, d, T, k: (A, U))
    points = [U, 2 * U, 3 * U][:max(zero_orbits, 1)]
    orbits = [{"G_enclosure": [0.0 if i < zero_orbits else 1.0, 1.0]} for i in range(len(points))]
    monkeypatch.setattr(E, "algebra_available", lambda route="msolve": True)
    monkeypatch.setattr(E, "enumerate_critical_points",
                        lambda tasks, k: SimpleNamespace(data={"orbit_list": orbits}, points=points, complete=True))
    res = CE.check_enumeration(0, t2_instances=0, t3_instances=1, control=False)
    (case,) = res.cases
    assert case.predicted == 1 and case.measured == zero_orbits and bool(case.passed) is passed


@pytest.mark.parametrize("point, is_star", [(lambda U: -U, True), (lambda U: U * (1 + 1e-12), True),
                                            (lambda U: U + 1e-13, True), (lambda U: U * (1 + 1e-3), False)])
def test_the_zero_loss_orbit_is_u_star_up_to_its_sign_and_rounding_only(fake, point, is_star):
    """U* is recognised by U_t U_t^T (the O(1) orbit: -U* is U*), within round-off of the
    certified point (1e-12 relative, 1e-13 absolute), not 1e-3 away."""
    A, U = CE._draw(np.random.default_rng(5), 3, 3, 1)
    fake += [_Result([ZERO, SADDLE], points=[point(U), U[::-1].copy()])]
    r = CE.check_enumeration(np.random.default_rng(5), t2_instances=0, t3_instances=1, control=False)
    (case,) = r.cases
    assert case.measured == 1 and bool(case.passed) is is_star
