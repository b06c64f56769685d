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
    seen = {}
    real_save = syn._save

    def save(fig, out_dir, stem):
        seen[stem] = {"text": _texts(fig), "lines": [ln for ax in fig.axes for ln in ax.get_lines()]}
        return real_save(fig, out_dir, stem)

    monkeypatch.setattr(syn, "_save", save)
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
