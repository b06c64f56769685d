"""theory._registry pinned where the checks' own tests cannot see it: the report's seconds,
the progress bar's count, what counts as a negative control, and the table's layout (the
header is exactly as wide as the columns asked for when the cells need the room)."""
from __future__ import annotations

import dataclasses
import time

import pytest

from theory import _registry as R

FAST = "App C"  # a check that takes milliseconds at the quick scale


def test_report_seconds_is_the_runs_wall_time():
    t0 = time.perf_counter()
    rep = R.run([FAST, "R3.1"], scale="quick")
    wall = time.perf_counter() - t0
    assert 0.0 <= rep.seconds <= wall and rep.passed and len(rep.results) == 2


def test_progress_bar_counts_one_per_check(monkeypatch):
    import tqdm

    seen = {}

    class Bar:
        def __init__(self, *, total, **kw):
            seen.update(total=total, n=0, closed=False)

        def set_description(self, text):
            seen["last"] = text

        def update(self, n):
            seen["n"] += n

        def close(self):
            seen["closed"] = True

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    R.run([FAST, "R3.1", FAST], scale="quick", progress=True)  # a repeated id runs once
    assert seen == {"total": 2, "n": 2, "closed": True, "last": "R3.1"}


def test_controls_are_the_registrys_and_nothing_else():
    controls = {c.id for c in R.REGISTRY if c.control}
    assert controls and all("control" in i for i in controls)
    assert all(R._is_control(i) for i in controls)
    assert not any(R._is_control(c.id) for c in R.REGISTRY if not c.control)
    assert R._is_control("no such check") is False


@pytest.mark.parametrize("columns", [100, 101, 140, 157])
def test_table_header_fills_the_columns_when_cells_need_them(columns):
    rep = R.run([FAST, "R3.1"], scale="quick")
    long = "a b c d e f g h " * 20  # wraps: the cells need more than the columns give
    rep = dataclasses.replace(rep, results=tuple(dataclasses.replace(r, predicted=long, measured=long)
                                                 for r in rep.results))
    lines = rep.table(columns=columns).splitlines()
    idw = max(len("statement"), *(len(r.id) for r in rep.results))
    width = (columns - idw - 21) // 2  # statement, two cells, verdict (7), seconds (6), four 2-space gaps
    assert len(lines[0]) == idw + 2 * width + 21 and len(lines[0]) in (columns - 1, columns)
    assert max(len(ln) for ln in lines[:-1]) <= columns


def test_table_shrinks_to_short_cells_and_never_below_twenty():
    rep = R.run([FAST], scale="quick")
    short = dataclasses.replace(rep, results=tuple(dataclasses.replace(r, predicted="1", measured="2")
                                                   for r in rep.results))
    idw = max(len("statement"), len(FAST))
    assert len(short.table(columns=200).splitlines()[0]) == idw + 2 * len("predicted") + 21
    long = dataclasses.replace(rep, results=tuple(dataclasses.replace(r, predicted="x " * 50, measured="y")
                                                  for r in rep.results))
    assert len(long.table(columns=30).splitlines()[0]) == idw + 2 * 20 + 21


def _result(i, passed=True, predicted="p", measured="m"):
    from theory._result import CheckResult

    return CheckResult(f"Check {i}", "ref", "", predicted, measured, "tol", "why", passed, 0.5)


def test_a_report_repr_is_cut_at_300_characters_ending_with_a_parenthesis():
    many = tuple(_result(i, passed=False) for i in range(60))  # their ids make the text long
    text = repr(R.Report(many, 0, "quick", 1.0))
    assert len(text) == 300 and text.endswith("...)") and text.startswith("Report(0/60 passed")
    short = repr(R.Report((_result(0),), 0, "quick", 1.0))
    assert short == "Report(1/1 passed, scale='quick', seed=0, 1.0 s)"


def test_report_json_states_seconds_to_the_millisecond_and_the_table_keeps_every_cell():
    rep = R.Report((_result(0, predicted="a predicted value", measured="its measured value"),), 0, "quick", 1.23456)
    assert rep.to_dict()["seconds"] == 1.235
    table = rep.table(columns=120)
    assert "a predicted value" in table and "its measured value" in table


def test_the_enumeration_row_checks_at_least_one_instance_at_quick_scale():
    """A quick run must not be vacuous: one T = 2 instance (T = 3 costs minutes of msolve)."""
    from theory import _checks_enumeration as CE

    (check,) = [c for c in R.REGISTRY if c.id == CE.CHECK_ID]
    assert check.sizes["quick"] == {"t2_instances": 1, "t3_instances": 0}


@pytest.mark.parametrize("n, failed", [(2, (1,)), (4, (0,)), (5, (1, 3)), (3, ())])
def test_the_table_counts_passed_checks_and_names_the_failed_ones(n, failed):
    """The last line says (n - failed)/n passed, then the failed ids; its first row of each
    check holds the id, the verdict and the seconds, a wrapped continuation row none of them."""
    results = tuple(_result(i, passed=i not in failed,
                            predicted="a long predicted value " * (3 if i == 0 else 1)) for i in range(n))
    table = R.Report(results, 7, "quick", 2.0).table(columns=70)
    last = table.splitlines()[-1]
    want = f"{n - len(failed)}/{n} passed (scale=quick, seed=7, 2.0 s)"
    assert last == want + ("; FAILED: " + ", ".join(f"Check {i}" for i in failed) if failed else "")
    rows = table.splitlines()[2:-2]
    starts = [ln for ln in rows if ln.startswith("Check ")]
    assert len(starts) == n and all(ln.endswith("0.50") and ("PASS" in ln or "FAIL" in ln) for ln in starts)
    wrapped = [ln for ln in rows if ln.startswith(" ")]
    assert len(wrapped) >= 2 and not any("PASS" in ln or "FAIL" in ln or "0.50" in ln for ln in wrapped)


def test_the_paper_scale_enumeration_is_the_one_the_committed_record_ran():
    """The committed paper-scale report (theory/results/theory-paper.json) enumerates three
    T = 2 instances and one T = 3 instance; the registry's paper scale asks for the same."""
    import json
    import re
    from pathlib import Path

    from theory import _checks_enumeration as EN
    from theory._registry import REGISTRY

    rec = json.loads((Path(__file__).resolve().parents[1] / "theory/results/theory-paper.json").read_text())
    (res,) = [r for r in rec["results"] if r["id"] == EN.CHECK_ID]
    labels = [c["label"] for c in res["cases"]]
    t2 = {m.group(1) for lb in labels for m in [re.match(r"Thm 3\.4, T=2 .* instance (\d+):", lb)] if m}
    t3 = {m.group(1) for lb in labels for m in [re.match(r"Thm 3\.3, T=3 .* instance (\d+):", lb)] if m}
    (check,) = [c for c in REGISTRY if c.id == EN.CHECK_ID]
    paper = check.sizes["paper"]
    assert (paper["t2_instances"], paper["t3_instances"]) == (len(t2), len(t3)) == (3, 1)
