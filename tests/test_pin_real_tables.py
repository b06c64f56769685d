"""empirics.real.tables pinned where a reader takes a number from it: the bar charts (each bar's
position, height and error bar from the record, the paper's diamonds, the chance line of each
experiment), which metric a paired comparison leads with, the data notes of each data set, the
run line that tells a paper-scale run from a reduced or a smoke one, and the test task's label.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from empirics.real import tables as tb
from empirics.real._config import LANGUAGE_PAPER, VISION_PAPER
from empirics.real._paper import TABLE1

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bars(fig):
    ax = fig.axes[0]
    out = []
    for c in ax.containers:
        if not hasattr(c, "patches"):
            continue
        xs = [p.get_x() + p.get_width() / 2 for p in c.patches]
        ws = [p.get_width() for p in c.patches]
        hs = [p.get_height() for p in c.patches]
        segs = c.errorbar.lines[2][0].get_segments() if c.errorbar is not None else []
        errs = [(s[1][1] - s[0][1]) / 2 if len(s) == 2 else math.nan for s in segs]
        out.append((c.get_label(), np.array(xs), np.array(ws), np.array(hs), np.array(errs)))
    return out


def _ms(mean, se):
    return {"mean": mean, "se": se}


@pytest.mark.parametrize("n_labels", [1, 2, 3, 4])
def test_bars_are_centred_on_their_group_with_heights_and_errors_of_the_record(figures_saved, tmp_path, n_labels):
    labels = [f"row {j}" for j in range(n_labels)]
    groups = {f"g{i}": {lab: _ms(0.1 * (i + 1) + 0.01 * j, 0.001 * (j + 1) * (i + 2)) for j, lab in enumerate(labels)}
              for i in range(3)}
    tb._bar_png(groups, "y", "title", tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 0
    bars = _bars(figures_saved[-1])
    assert [b[0] for b in bars] == labels
    w = 0.8 / n_labels
    for j, (lab, xs, ws, hs, errs) in enumerate(bars):
        np.testing.assert_allclose(ws, w, rtol=0, atol=1e-12)
        np.testing.assert_allclose(xs, np.arange(3) + (j - (n_labels - 1) / 2) * w, rtol=0, atol=1e-12)
        np.testing.assert_allclose(hs, [100 * groups[g][lab]["mean"] for g in groups], rtol=1e-12)
        np.testing.assert_allclose(errs, [100 * groups[g][lab]["se"] for g in groups], rtol=1e-9)
    # the bars of a group sit symmetrically about its tick
    centres = np.mean([b[1] for b in bars], axis=0)
    np.testing.assert_allclose(centres, np.arange(3), atol=1e-12)
    assert list(figures_saved[-1].axes[0].get_xticks()) == [0, 1, 2]


def test_missing_rows_and_unavailable_errors(figures_saved, tmp_path):
    groups = {"a": {"x": _ms(0.5, "nan"), "y": _ms(0.7, 0.02)}, "b": {"x": _ms(0.6, None)}}
    tb._bar_png(groups, "y", "t", tmp_path / "b.png")
    (_, _, _, hx, ex), (_, _, _, hy, ey) = _bars(figures_saved[-1])
    np.testing.assert_allclose(hx, [50, 60])
    np.testing.assert_allclose(ex, [0, 0])  # an unavailable SE draws no error bar, not a NaN one
    assert hy[0] == pytest.approx(70) and math.isnan(hy[1])
    assert ey[0] == pytest.approx(2) and (len(ey) == 1 or math.isnan(ey[1]))  # no error bar on a missing row


@pytest.mark.parametrize("chance", [None, 0.5, 0.05])
def test_chance_line_and_paper_diamonds(figures_saved, tmp_path, chance):
    groups = {"g0": {"A": _ms(0.8, 0.01), "B": _ms(0.7, 0.01)}, "g1": {"A": _ms(0.6, 0.01), "B": _ms(0.5, 0.01)}}
    paper = {"g0": {"A": (86.09, 0.35), "B": (85.29, 0.17)}, "g1": {"B": (40.0, 1.0)}}
    tb._bar_png(groups, "y", "t", tmp_path / "b.png", chance, paper)
    ax = figures_saved[-1].axes[0]
    hlines = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    if chance is None:
        assert hlines == []
    else:
        assert len(hlines) == 1 and set(hlines[0].get_ydata()) == {100 * chance}
        assert f"chance ({100 * chance:.0f} %)" in [t.get_text() for t in ax.get_legend().get_texts()]
    diamonds = [ln for ln in ax.lines if ln.get_marker() == "D"]
    bars = _bars(figures_saved[-1])
    assert len(diamonds) == 2
    for dm, (lab, xs, *_rest) in zip(diamonds, bars):
        np.testing.assert_allclose(dm.get_xdata(), xs)
        want = [paper[g].get(lab, (np.nan, np.nan))[0] for g in groups]
        np.testing.assert_array_equal(np.asarray(dm.get_ydata(), float), want)
    assert [t.get_text() for t in ax.get_legend().get_texts()].count("paper") == 1


def _record(experiment, **cfg):
    ms = {"mean": 0.6, "se": 0.01, "n": 2, "values": [0.59, 0.61]}
    rows = [{"row": lab, "accuracy": ms, "best_accuracy_over_epochs": {**ms, "mean": 0.65},
             "per_task": {"p1": ms, "p2": {**ms, "mean": 0.3}}} for lab in ("LoRA-ML", "SR + LoRA")]
    return {"experiment": experiment, "rows": rows, "notes": [],
            "config": {"seeds": [1, 2], "epochs": 2, "finetune_epochs": 2, "max_per_task": 10, **cfg},
            "provenance": {"device": "cpu"}}


@pytest.mark.parametrize("experiment, chance", [("vision", 0.5), ("language", 1 / 20)])
def test_rendered_records_draw_the_chance_of_their_experiment(figures_saved, tmp_path, experiment, chance):
    tb.render_record(_record(experiment), tmp_path, "r")
    ax = figures_saved[-1].axes[0]
    (line,) = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert set(line.get_ydata()) == {100 * chance}
    diamonds = [ln for ln in ax.lines if ln.get_marker() == "D"]
    if experiment == "vision":  # best epoch, beside the paper's Table 1
        assert [b[3][0] for b in _bars(figures_saved[-1])] == pytest.approx([65, 65])
        assert [float(d.get_ydata()[0]) for d in diamonds] == [TABLE1["LoRA-ML"][0], TABLE1["SR + LoRA"][0]]
    else:  # per persona, no paper diamonds (the paper's cells are per persona T1..T10)
        assert [list(b[3]) for b in _bars(figures_saved[-1])] == [pytest.approx([60, 30])] * 2
        assert diamonds == []


def test_rank_records_draw_one_group_per_rank(figures_saved, tmp_path):
    rec = _record("language")
    tb.render_rank_records({"1": rec, "8": rec}, tmp_path, "t3")
    ax = figures_saved[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["rank 1", "rank 8"]
    (line,) = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert set(line.get_ydata()) == {5.0}


def _comparison():
    def diff(m):
        return {"mean": m, "se": 0.01, "p_value": 0.04, "n": 2, "differences": [m - 0.01, m + 0.01]}

    return {"row": "LoRA-ML", "baseline": "SR + LoRA", "peft": "lora", "accuracy": diff(0.02),
            "best_accuracy_over_epochs": diff(0.05)}


@pytest.mark.parametrize("experiment, lead, lead_diffs", [("vision", "best epoch", "+4.00, +6.00"),
                                                          ("language", "last epoch", "+1.00, +3.00")])
def test_comparisons_lead_with_the_tables_metric(experiment, lead, lead_diffs):
    """Table 1 is the best epoch (the paper's metric), Tables 2-3 the last epoch."""
    lines = tb.format_comparisons({"experiment": experiment, "comparisons": [_comparison()]})
    other = {"best epoch": "last epoch", "last epoch": "best epoch"}[lead]
    header = next(line for line in lines if line.startswith("| fine-tuning"))
    assert header.index(f"diff, {lead}") < header.index(f"diff, {other}")
    assert f"per-seed diffs ({lead})" in header
    row = next(line for line in lines if line.startswith("| lora |"))
    assert row.endswith(f"| {lead_diffs} | 2 |")
    assert tb.format_comparisons({"experiment": experiment, "comparisons": []}) == []


@pytest.mark.parametrize("dataset, line", [
    ("fashion_mnist", "- Data set: fashion_mnist (an addition of this package; the paper's Table 1 is CIFAR-10)."),
    ("random", "- Data: random pixels (smoke configuration), not a data set."),
])
def test_vision_data_notes_name_the_data_set(dataset, line):
    text = tb.format_vision_table(_record("vision", dataset=dataset))
    assert line in text.splitlines() and "JPEG" not in text


@pytest.mark.parametrize("experiment, fragment", [("vision", "JPEG quality 75"), ("language", "all-MiniLM-L6-v2")])
def test_the_papers_data_carries_the_differences_of_our_copy(experiment, fragment):
    rec = _record(experiment, dataset="cifar10") if experiment == "vision" else _record(experiment)
    text = (tb.format_vision_table if experiment == "vision" else tb.format_language_table)(rec)
    assert fragment in text and "Data set:" not in text and tb.PAPER_NUMBERS_NOTE in text


def test_language_records_never_get_the_vision_data_notes():
    text = tb.format_language_table(_record("language", dataset="fashion_mnist"))
    assert "Data set:" not in text and "all-MiniLM-L6-v2" in text


def _paper_cfg(paper):
    keys = ("epochs", "finetune_epochs", "max_per_task", "width", "batch_size", "n_retrain", "n_test")
    return {k: getattr(paper, k) for k in keys if hasattr(paper, k)}


@pytest.mark.parametrize("experiment, paper", [("vision", VISION_PAPER), ("language", LANGUAGE_PAPER)])
def test_run_line_tells_paper_scale_from_reduced_and_smoke(experiment, paper):
    cfg = {**_paper_cfg(paper), "seeds": [0, 1]}
    rec = {"experiment": experiment, "config": cfg, "provenance": {"device": "cuda:0"}}
    assert tb.describe_run(rec) == "paper-scale CUDA run; seeds 0, 1"
    rec["config"] = {**cfg, "epochs": paper.epochs + 1}
    assert tb.describe_run(rec) == (f"reduced-scale CUDA run; seeds 0, 1; retraining epochs {paper.epochs + 1} "
                                    f"(paper {paper.epochs})")
    rec["config"] = {**cfg, "dataset": "random"}
    assert tb.describe_run(rec).startswith("SMOKE run on generated stand-in data, not a result; seeds 0, 1")
    rec["config"] = {**cfg, "fixture": "tiny"}
    assert tb.is_smoke(rec) and tb._smoke_prefix(rec).startswith("SMOKE run")
    assert not tb.is_smoke({"config": cfg}) and tb._smoke_prefix({"config": cfg}) == ""


def test_run_line_width_counts_for_vision_only():
    rec = {"experiment": "language", "config": {"width": 1, "seeds": [3]}, "provenance": {"device_name": "H200"}}
    assert tb.describe_run(rec) == "paper-scale H200 run; seeds 3"
    rec = {"experiment": "vision", "config": {"width": VISION_PAPER.width // 2, "seeds": [3]},
           "provenance": {"device": "cpu"}}
    assert tb.describe_run(rec) == f"reduced-scale CPU run; seeds 3; width {VISION_PAPER.width // 2} " \
                                   f"(paper {VISION_PAPER.width})"


@pytest.mark.parametrize("dataset, label", [
    ("cifar10", "test task: ship (8) vs truck (9), CIFAR-10"),
    ("fashion_mnist", "test task: bag (8) vs ankle boot (9), Fashion-MNIST"),
    ("random", "test task: classes 8 vs 9 (random)"),
])
def test_the_test_task_by_name(dataset, label):
    assert tb.vision_task_label({"config": {"dataset": dataset}}).lower() == label.lower()


@pytest.mark.parametrize("x, want", [("nan", math.nan), ("NaN", math.nan), (None, math.nan), ("0.25", 0.25),
                                     (0.5, 0.5), ("x", math.nan)])
def test_record_numbers(x, want):
    got = tb._float(x)
    assert (math.isnan(got) and math.isnan(want)) or got == want


@pytest.mark.parametrize("dataset, line", [("random", "- Data: random pixels (smoke configuration), not a data set."),
                                           ("fashion-mnist", "- Data set: fashion-mnist (an addition of this package")])
def test_the_header_names_the_vision_data_by_value(dataset, line):
    """The data line depends on the data set's name as read from a record (a string built at
    run time, compared by value)."""
    import json

    rec = json.loads(json.dumps({"experiment": "vision", "config": {"dataset": "".join(dataset)}, "provenance": {}}))
    assert any(ln.startswith(line) for ln in tb._header(rec))
