"""The T = 2 saddle check's rounding floor, by a negative control applied as a real input
change (issue 16, item 8: a survivor of the cosmic-ray sample of ``theory/_checks_saddles.py``).

At a critical point the residual identities (30)-(32) hold up to rounding and the
gradient: ``R_1 + R_2 = 0`` and ``R_1 = (D_U - D*)/2`` within 16 d eps (||D*|| + ||U||^2)
plus ||grad G||.  Here the optimal A that the check evaluates at the points it found is
moved by 1e-3 I (after the search, so the points are the same): the identities then miss
by about 3e-3, above the floor plus the found points' gradients (up to ~1e-5 with 8 starts),
and the case must fail; unmoved, it passes.
"""
from __future__ import annotations

import numpy as np
import pytest

import theory._checks_saddles as _saddles


@pytest.mark.parametrize("offset,holds", [(0.0, True), (1e-3, False)])
def test_residual_identities_see_a_wrong_optimal_A(monkeypatch, offset, holds):
    orig = _saddles.t2_critical_points

    def then_move_A(inst, rng, **kw):
        pts = orig(inst, rng, **kw)
        cls = type(inst.problem)
        best = cls.optimal_A
        monkeypatch.setattr(cls, "optimal_A", lambda self, U: best(self, U) + offset * np.eye(self.d))
        return pts

    monkeypatch.setattr(_saddles, "t2_critical_points", then_move_A)
    res = _saddles.check_thm34(np.random.default_rng(0), configs=((3, 1),), starts=8, random_U_per_config=1)
    case = next(c for c in res.cases if "(30)-(32)" in c.label)
    assert case.passed is holds
