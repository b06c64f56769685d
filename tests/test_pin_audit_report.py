"""landscape._audit.report pinned: report.json's class entries are the classification in the
user's units (G times 2^(2e), the gradient times 2^(3e/2), eigenvalues and A times 2^e, the
point times 2^(e/2)), G / G(0) is scale-free and absent when G(0) = 0, A_hat is left out above
MAX_JSON_MATRIX_ENTRIES; report.md says exactly what the data say: one row per kind, the
diverged line only when runs diverged, the verdict (agree / not applicable), at most 20 diverged
runs listed, unfinished runs' stop reasons counted and ordered, the scale line only for scaled
inputs, the plots.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

import landscape as ls
from landscape._audit import report as R
from landscape._audit.units import _Units
from landscape._classify import KINDS


@pytest.fixture(scope="module")
def audited():
    inst = ls.random_instance(np.random.default_rng(0), 4, 3, 1)
    return ls.audit(inst, 1, starts=4, seed=0, methods="lbfgs", plots=False)


def test_schema_version(audited):
    assert R.REPORT_SCHEMA_VERSION == "1.0" and audited.data["schema_version"] == "1.0"
    assert R.MAX_LISTED_RUNS == 20


@pytest.mark.parametrize("e", [0, 4, -6])
def test_class_entries_are_the_classification_in_user_units(audited, e):
    cls = audited.classes[0]
    c = cls.classification
    units = _Units(e)
    g0 = 2.5
    entry = R._class_dict(cls, list(audited.results), {"status": "s"}, units, "n", g0)
    assert entry["loss"] == c.loss * 2.0 ** (2 * e) and entry["loss_normalised"] == c.loss
    assert entry["loss_relative"] == c.loss / g0
    assert entry["grad_norm"] == c.grad_norm * 2.0 ** (3 * e // 2)
    assert entry["eigenvalue_tolerance"] == c.eigenvalue_tolerance * 2.0 ** e
    assert entry["loss_tolerance"] == c.loss_tolerance * 2.0 ** (2 * e)
    assert entry["lambda_min_quotient"] == c.lambda_min_quotient * 2.0 ** e
    rep = audited.results[cls.representative]
    assert entry["point"] == (np.asarray(rep.point) * 2.0 ** (e // 2)).tolist()
    assert entry["A_hat"] == (np.asarray(c.A_hat) * 2.0 ** e).tolist()
    assert entry["members"] == [int(audited.results[i].start_index) for i in cls.members]
    assert entry["count"] == len(cls.members) and entry["id"] == cls.id and entry["kind"] == cls.kind
    assert entry["certificate"] == {"status": "s"} and entry["note"] == "n"
    assert entry["n_negative"] == c.n_negative and entry["n_zero"] == c.n_zero


def test_loss_relative_is_absent_without_a_loss_at_zero_and_A_hat_above_the_limit(audited, monkeypatch):
    cls = audited.classes[0]
    for g0 in (0.0, None):
        assert R._class_dict(cls, list(audited.results), None, _Units(0), None, g0)["loss_relative"] is None
    d = audited.problem.d
    monkeypatch.setattr(R, "MAX_JSON_MATRIX_ENTRIES", d * d)
    assert R._class_dict(cls, list(audited.results), None, _Units(0), None, 1.0)["A_hat"] is not None
    monkeypatch.setattr(R, "MAX_JSON_MATRIX_ENTRIES", d * d - 1)
    assert R._class_dict(cls, list(audited.results), None, _Units(0), None, 1.0)["A_hat"] is None


def _md(data, e=0):
    return R._markdown(data, _Units(e)).splitlines()


def test_one_row_per_kind_with_its_count(audited):
    data = copy.deepcopy(audited.data)
    data["summary"]["counts"] = {KINDS[0]: 3}
    lines = _md(data)
    rows = [ln for ln in lines if ln.startswith("| ") and ln.split(" | ")[0][2:] in KINDS]
    assert rows == [f"| {k} | {3 if k == KINDS[0] else 0} |" for k in KINDS]


def test_the_diverged_row_only_when_runs_diverged(audited):
    data = copy.deepcopy(audited.data)
    data["summary"]["diverged_runs"] = 0
    assert not any("diverged, ||U|| -> inf" in ln for ln in _md(data))
    data["summary"]["diverged_runs"] = 2
    assert "| (of which diverged, ||U|| -> inf) | 2 |" in _md(data)


@pytest.mark.parametrize("applicable, agrees, explanation, line", [
    (True, True, "", "* Findings agree: **True**."),
    (True, False, "a second global minimiser", "* Findings agree: **False** (a second global minimiser)."),
    (False, None, "", "* Findings agree: **not applicable** (WHY)."),
])
def test_the_verdict_line(audited, applicable, agrees, explanation, line):
    data = copy.deepcopy(audited.data)
    data["theory"].update(applicable=applicable, agrees=agrees, explanation=explanation, not_applicable_reason="WHY")
    assert line in _md(data)


def test_truth_lines_only_when_the_truth_is_known(audited):
    data = copy.deepcopy(audited.data)
    data["input"]["truth_known"] = False
    assert not any(ln.startswith("* A* recovered") for ln in _md(data))
    data["input"]["truth_known"] = True
    assert any(ln.startswith("* A* recovered by some global minimum: ") for ln in _md(data))


def _run(i, diverged=False, kind="global_minimum", reason="r", stop="s"):
    return {"index": i, "method": "lbfgs", "kind": kind, "diverged": diverged, "reason": reason, "stop_reason": stop}


@pytest.mark.parametrize("n, listed, more", [(20, 20, None), (21, 20, 1), (25, 20, 5), (1, 1, None)])
def test_at_most_twenty_diverged_runs_are_listed(audited, n, listed, more):
    data = copy.deepcopy(audited.data)
    data["runs"] = [_run(i, diverged=True, kind="not_critical", reason=f"why {i}") for i in range(n)]
    lines = _md(data)
    assert f"{n} run(s) diverged:" in lines
    shown = [ln for ln in lines if ln.startswith("* run ") and "(lbfgs): why" in ln]
    assert shown == [f"* run {i} (lbfgs): why {i}" for i in range(listed)]
    tail = [ln for ln in lines if ln.startswith("* ... and ")]
    assert tail == ([] if more is None else [f"* ... and {more} more (see report.json)"])


def test_unfinished_runs_count_their_stop_reasons_most_frequent_first(audited):
    data = copy.deepcopy(audited.data)
    data["runs"] = ([_run(i, kind="not_critical", stop="b-limit") for i in range(2)]
                    + [_run(10 + i, kind="not_critical", stop="a-limit") for i in range(2)]
                    + [_run(20, kind="not_critical", stop="c-limit")] + [_run(30 + i, kind="not_critical", stop="z") for i in range(3)]
                    + [_run(40, kind="not_critical", diverged=True, stop="ignored")] + [_run(50)]
                    + [_run(60, kind="strict_saddle", stop="saddle"), _run(61, kind="spurious_candidate", stop="sp")])
    lines = _md(data)
    i = lines.index("8 run(s) did not reach a critical point; stopping reasons:")
    assert lines[i + 2:i + 6] == ["* 3 x z", "* 2 x a-limit", "* 2 x b-limit", "* 1 x c-limit"]


def test_scale_line_only_for_scaled_inputs_and_plots_listed(audited):
    data = copy.deepcopy(audited.data)
    data["input"]["scale_exponent"] = 0
    assert not any(ln.startswith("* Scale: ") for ln in _md(data))
    data["input"].update(scale_exponent=-4, scale_normalised=1.5)
    line = next(ln for ln in _md(data, -4) if ln.startswith("* Scale: "))
    assert "divided by 2^-4 (exact)" in line
    data["plots"] = ["losses.png", "orbit.png"]
    lines = _md(data)
    i = lines.index("## Plots")
    assert lines[i + 2:i + 4] == ["![losses.png](losses.png)", "![orbit.png](orbit.png)"]
    data["plots"] = []
    assert "## Plots" not in _md(data)


def test_relative_loss_column_format():
    assert R._rel({"loss_relative": None}) == "" and R._rel({}) == ""
    assert R._rel({"loss_relative": 0.000123456}) == "1.235e-04"


def test_a_continuum_of_global_minima_is_one_row_summing_its_classes(audited):
    data = copy.deepcopy(audited.data)
    base = data["classes"][0]
    glob = []
    for i, (loss, count) in enumerate([(2.0, 2), (3.0, 1), (5.0, 4)]):
        c = dict(base, id=10 + i, kind="global_minimum", count=count, loss_normalised=loss, loss_relative=loss / 10,
                 family=7 if i == 0 else 8)  # the row names its first class's family
        glob.append(c)
    other = dict(base, id=20, kind="strict_saddle", count=1, loss_normalised=1.0, certificate=None)
    data["classes"] = glob + [other]
    data["summary"]["global_minima_continuum"] = {"dimension": 2, "dimension_modulo_O(k)": 1,
                                                  "parametrisation": "p", "runs": 7, "classes_sampled": 3}
    lines = _md(data)
    row = next(ln for ln in lines if "O(k,k) continuum) |" in ln)
    assert row == "| 10 (+2) | global_minimum (O(k,k) continuum) | 7 | 7 | 2.000e+00 | 2.000e-01 | zero modes | | |"
    assert sum(1 for ln in lines if ln.startswith("| 10 ") or ln.startswith("| 11 ") or ln.startswith("| 12 ")) == 1
    assert any(ln.startswith("| 20 | strict_saddle | 1 |") for ln in lines)



def test_a_negative_direction_is_written_and_its_absence_is_null(audited):
    """A class's direction of negative curvature goes to report.json as a list; a class
    without one (a minimum) has null."""
    import dataclasses

    cls = audited.classes[0]
    assert cls.classification.negative_direction is None
    assert R._class_dict(cls, list(audited.results), None, _Units(0), None, 1.0)["negative_direction"] is None
    v = np.arange(audited.problem.dim_U, dtype=float)
    saddle = dataclasses.replace(cls, classification=dataclasses.replace(cls.classification, negative_direction=v))
    assert R._class_dict(saddle, list(audited.results), None, _Units(0), None, 1.0)["negative_direction"] == v.tolist()


def test_runs_beyond_the_listed_ones_are_counted(audited):
    """report.md lists the first MAX_LISTED_RUNS diverged runs and says how many more there are."""
    import copy

    data = copy.deepcopy(audited.data)
    run = {**data["runs"][0], "diverged": True, "reason": "overflow"}
    data["runs"] = [{**run, "index": i} for i in range(R.MAX_LISTED_RUNS + 25)]
    md = R._markdown(data, _Units(0))
    assert f"{R.MAX_LISTED_RUNS + 25} run(s) diverged:" in md
    assert sum(1 for ln in md.splitlines() if ln.startswith("* run ") and "overflow" in ln) == R.MAX_LISTED_RUNS
    assert "* ... and 25 more (see report.json)" in md
