"""The atlas's grid, effort and summary pinned against the committed run (issue 16, item 8:
survivors of the cosmic-ray sample of ``theory/_atlas.py``)."""
from __future__ import annotations

import json
from pathlib import Path

from theory._atlas import FULL, _effort, summary_markdown

ATLAS = Path(__file__).resolve().parents[1] / "theory" / "results" / "atlas"


def _committed():
    return json.loads((ATLAS / "atlas.json").read_text())


def test_the_grid_is_the_documented_55_cells_with_d_at_least_k():
    """k = 1: d = 1..4; k = 2: every integer d = 2..8 (d/k = 1..4 including the halves);
    T = 2..6.  A rank above d (e.g. a k = 2 row starting at d = 1) is not a LoRA-ML problem."""
    Ts = range(2, 7)
    expected = [(d, 1, T) for d in range(1, 5) for T in Ts] + [(d, 2, T) for d in range(2, 9) for T in Ts]
    assert FULL.cells() == expected
    assert all(d >= k for d, k, _ in FULL.cells())
    assert [(c["d"], c["k"], c["T"]) for c in _committed()["cells"]] == expected


def test_effort_lm_starts_is_what_every_instance_ran():
    """Levenberg-Marquardt needs at least as many residuals (T d^2) as unknowns
    (d^2 + T d k); the effort a cell reports must be the LM starts its instances actually
    ran, on every committed cell (k = 2 cells are where a wrong unknown count shows)."""
    cells = _committed()["cells"]
    assert any(c["effort"]["lm_starts"] == 0 for c in cells if c["k"] == 2)
    assert any(c["effort"]["lm_starts"] > 0 for c in cells if c["k"] == 2)
    for c in cells:
        eff = _effort(FULL.starts, FULL.lm_starts, FULL.gd_runs, FULL.gd_outer, c["T"], c["d"], c["k"])
        assert {i["lm_starts"] for i in c["instances"]} == {c["effort"]["lm_starts"]} == {eff["lm_starts"]}, c["d"]


def test_the_committed_summary_is_rendered_from_the_committed_record():
    """SUMMARY.md is a function of atlas.json (including the paper-GD runs that missed a
    global minimum and the cells they are in)."""
    result = _committed()
    text = summary_markdown(result)
    assert text == (ATLAS / "SUMMARY.md").read_text()
    assert "Paper-GD runs that did not end at a global minimum" in text and "cells (d,k,T)=(" in text
