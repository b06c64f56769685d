"""Reported numbers of the minima checks, against their definitions (issue 16, item 8:
survivors of the cosmic-ray sample of ``theory/_checks_minima.py``).

``check_thm32_gd`` polishes the official GD's endpoint by Levenberg-Marquardt and reports
how far the polish moved: ||A - A_gd||_F + ||U - U_gd||_F between the point the polish
started from and the point it returned (recorded here by wrapping ``lm_solve``).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import theory._checks_minima as _minima


def test_thm32_gd_reports_the_distance_the_polish_moved(monkeypatch):
    calls = []
    orig = _minima.lm_solve

    def recording(problem, A0, U0, **kw):
        out = orig(problem, A0, U0, **kw)
        calls.append((np.array(A0), np.array(U0), out[0], out[1]))
        return out

    monkeypatch.setattr(_minima, "lm_solve", recording)
    res = _minima.check_thm32_gd(np.random.default_rng(0), d=4, k=1, outer=300)
    assert len(calls) == 1
    A0, U0, A, U = calls[0]
    moved = float(np.linalg.norm(A - A0)) + float(np.linalg.norm(U - U0))
    assert moved > 0
    shown = float(re.search(r"\(moved ([^)]+)\)", res.measured).group(1))
    assert shown == pytest.approx(moved, rel=1e-3)  # fmt keeps 4 significant digits


@pytest.mark.parametrize("offset,holds", [(0.0, True), (1e-9, False)])
def test_thm33_control_loss_case_is_at_rounding_level(monkeypatch, offset, holds):
    """The published second minimiser has loss exactly 0; the case accepts the rounding of
    its residual (entries of order the tasks, a few eps each) and nothing more: the same
    point with Q moved by 1e-9 per entry (loss ~1e-18, far above (32 eps scale)^2 / 2)
    must fail it."""
    Q, U_hat = _minima.thm33_counterexample_minimiser()
    monkeypatch.setattr(_minima, "thm33_counterexample_minimiser", lambda: (Q + offset, U_hat))
    res = _minima.check_thm33_control_d2k(np.random.default_rng(0), starts=4)
    case = res.cases[0]
    assert case.label.startswith("published second minimiser: loss")
    assert case.passed is holds
    assert case.tolerance < 1e-25
