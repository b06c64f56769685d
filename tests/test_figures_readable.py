"""Figures that cannot be misread (issue 19, section 4): what each image says about itself.

The figure's texts are collected at the moment it is saved (``_save`` is wrapped), so
the tests read what a viewer of the PNG reads: titles, axis labels, legend and notes.
"""
import numpy as np
import pytest

import figures
from figures import _synthetic as syn


def _texts(fig) -> str:
    out = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    if getattr(fig, "_suptitle", None) is not None:
        out.append(fig._suptitle.get_text())
    return "\n".join(out)


@pytest.fixture
def captured(monkeypatch):
    import importlib

    seen = {}
    real_save = syn._save

    def save(fig, out_dir, stem):
        seen[stem] = {"text": _texts(fig), "lines": [ln for ax in fig.axes for ln in ax.get_lines()]}
        return real_save(fig, out_dir, stem)

    # every module that renders a synthetic figure saves through its own name for _save
    for name in ("figures._synthetic", "figures._figure1", "figures._shallow"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "_save"):
            monkeypatch.setattr(module, "_save", save)
    return seen


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("readable")
    for name in ("figure1", "figure1-official", "shallow-T"):
        figures.make(name, smoke=True, out=out, progress=False)
    return out


def test_figure1_says_in_sample_and_why_x_ranges_differ(smoke_dir, captured):
    figures.redraw("figure1", smoke_dir, smoke=True)
    text = captured["figure1-smoke"]["text"]
    assert "in-sample" in text and "fine-tuning inputs" in text
    assert "x-ranges differ" in text and "run:" in text
    assert "paper's protocol" in text


def test_official_figure1_caption_differs_and_names_each_deviation(smoke_dir, captured):
    figures.redraw("figure1", smoke_dir, smoke=True)
    figures.redraw("figure1-official", smoke_dir, smoke=True)
    paper, official = captured["figure1-smoke"]["text"], captured["figure1-official-smoke"]["text"]
    assert paper != official
    for words in syn.OFFICIAL_DEVIATIONS.values():
        assert words in official and words not in paper
    # the deviation list follows the options: one switched on gives exactly its name
    assert syn.figure1_deviations({"symmetric_a_star": True}) == [syn.OFFICIAL_DEVIATIONS["symmetric_a_star"]]
    assert syn.figure1_deviations({"shared_finetune_init": True}) == []


def test_every_figure1_curve_has_markers_of_its_value(smoke_dir, captured):
    figures.redraw("figure1", smoke_dir, smoke=True)
    for ln in captured["figure1-smoke"]["lines"]:
        assert ln.get_marker() not in (None, "None", ""), ln.get_label()
        assert ln.get_markevery() is not None


def test_marker_positions_are_staggered():
    # curves drawn on top of each other (same x grid, e.g. LoRA-ML T=3 and T=5) get
    # their markers at different x positions, so both stay visible
    x = np.arange(0, 1001, 10)
    slots = [tuple(syn._marker_positions(x, s, 6)) for s in range(6)]
    assert len(set(slots)) == 6
    flat = [i for s in slots for i in s]
    assert len(set(flat)) == len(flat)


def test_shallow_variant_curve_does_not_take_the_largest_value_colour(smoke_dir, captured):
    figures.redraw("shallow-T", smoke_dir, smoke=True)
    data, _ = figures.load_data(smoke_dir, "shallow-T-smoke")
    lines = {ln.get_label(): ln for ln in captured["shallow-T-smoke"]["lines"]}
    values = [v for v in data["values"] if not isinstance(v, str)]
    largest = max(values)
    variants = [lab for lab in lines if "k'=3k" in lab]
    if not variants:
        pytest.skip("the smoke configuration has no T = 2 (k' = 3k) variant")
    for lab in variants:
        method = lab.split(",")[0]
        big = lines[f"{method}, T={largest}"]
        assert lines[lab].get_color() != big.get_color()
        assert lines[lab].get_linestyle() != big.get_linestyle()


def test_shallow_figures_define_the_central_range(smoke_dir, captured):
    figures.redraw("shallow-T", smoke_dir, smoke=True)
    text = captured["shallow-T-smoke"]["text"]
    assert "central range =" in text and "smallest to" in text and "largest" in text
    # the words follow the number of trials: 10 trials drop 2 on each side
    assert "3rd smallest to 3rd largest of 10 trials (2 dropped on each side)" == \
        syn._central_range_words(10).split("= ", 1)[1]
    assert syn._central_clip(10) == 2 and syn._central_clip(3) == 1 and syn._central_clip(2) == 0


# ---------------------------------------------------------------- real-data tables
def _committed_vision_records():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "figures" / "results" / "real"
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/vision_record.json"))]


def _title_of_png(record, tmp_path, monkeypatch):
    """The suptitle the table PNG is drawn with."""
    import contextlib
    import io

    import matplotlib.figure

    from empirics.real import tables as rt

    seen = []
    real = matplotlib.figure.Figure.suptitle

    def spy(self, t, *a, **k):
        seen.append(t)
        return real(self, t, *a, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", spy)
    with contextlib.redirect_stdout(io.StringIO()):
        rt.render_record(record, tmp_path, "t")
    return seen[-1]


def test_two_real_runs_have_distinguishable_titles_naming_the_run_and_classes(tmp_path, monkeypatch):
    recs = _committed_vision_records()
    assert len(recs) >= 2
    titles = [_title_of_png(r, tmp_path, monkeypatch) for r in recs]
    assert len(set(titles)) == len(titles)
    for rec, t in zip(recs, titles):
        flat = " ".join(t.split())
        assert "reduced-scale CPU run" in flat and "ship (8) vs truck (9)" in flat and "seeds 1, 2, 3, 4, 5" in flat
        assert f"width {rec['config']['width']} (paper 512)" in flat


def test_smoke_real_run_says_smoke_in_title_and_markdown(tmp_path, monkeypatch):
    import copy

    from empirics.real import tables as rt

    rec = copy.deepcopy(_committed_vision_records()[0])
    rec["config"]["dataset"] = "random"
    assert rt.is_smoke(rec)
    assert "SMOKE" in _title_of_png(rec, tmp_path, monkeypatch)
    assert rt.format_vision_table(rec).startswith("# SMOKE run")
    assert not rt.format_vision_table(_committed_vision_records()[0]).startswith("# SMOKE")


def test_smoke_claims_carry_the_caveat_instead_of_a_bare_fails():
    claims = [{"claim": "LoRA-ML << SR at T=3", "holds": False}, {"claim": "x", "holds": True}]
    full = syn.claim_lines(claims)
    smoke = syn.claim_lines(claims, smoke=True)
    assert "- FAILS: LoRA-ML << SR at T=3" in full
    assert not any("FAILS" in ln for ln in smoke) and "SMOKE configuration" in smoke[0]
    assert "- does not hold at smoke size: LoRA-ML << SR at T=3" in smoke and "- HOLDS: x" in smoke
