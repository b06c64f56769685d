"""landscape.enumeration._report pinned: enumeration.md states what the data says (complete or
not, points or orbits, the lowest critical value only when there is one, every route, the
classes with at least one orbit, the orbits in increasing G with their index, copies, smallest
Hessian eigenvalue and certification), and critical_values.png draws one marker per orbit, at
its class's column and its G (floored at 1e-16 on the log axis), in its class's colour.
"""
from __future__ import annotations

import io

import matplotlib.colors
import numpy as np
import pytest

from landscape.enumeration import _report as R


def _data(**kw):
    orbits = [
        {"class": "strict_saddle", "G": 2.5, "copies": 4, "eigenvalues": {"min": -0.125}, "certified": True},
        {"class": "global_minimum", "G": 0.0, "copies": 2, "eigenvalues": {"min": 0.5}, "certified": True},
        {"class": "spurious_local_minimum", "G": 0.75, "copies": 2, "eigenvalues": {"min": 0.0625},
         "certified": False},
        {"class": "strict_saddle", "G": 1.25, "copies": 8, "certified": True},
    ]
    data = {"instance": {"T": 3, "d": 2, "k": 1}, "complete": True, "real_critical_points": 16,
            "copies_counted": True, "orbits": 4, "degree": 81, "degree_meaning": "of the U-system",
            "non_isolated": False, "lowest_critical_value": 0.0, "method": "msolve", "wall_time_s": 1.5,
            "routes": {"homotopy": {"paths": 80, "agrees": True}},
            "counts_by_class": {"global_minimum": 1, "lowest_local_minimum": 0, "spurious_local_minimum": 1,
                                "strict_saddle": 2, "degenerate": 0},
            "orbit_list": orbits, "notes": ["a note"]}
    data.update(kw)
    return data


def test_classes_and_colours():
    assert R.CLASSES == ("global_minimum", "lowest_local_minimum", "spurious_local_minimum", "strict_saddle",
                         "degenerate")
    assert R.CLASS_COLORS["spurious_local_minimum"] == "tab:red" and R.CLASS_COLORS["global_minimum"] == "tab:green"
    assert len(set(R.CLASS_COLORS.values())) == len(R.CLASSES)


def test_markdown_states_the_data():
    lines = R.markdown(_data()).splitlines()
    assert lines[0] == "# Complete enumeration of critical points (T=3, d=2, k=1)"
    assert "- complete (certified): **True**" in lines
    assert "- real critical points: 16 (every sign copy counted), orbits: 4" in lines
    assert "- degree (complex solutions, of the U-system): 81" in lines
    assert "- non-isolated critical sets: False" in lines
    assert "- lowest critical value: 0" in lines
    assert "- method: msolve; wall time 1.5 s" in lines
    assert "- route homotopy: paths=80, agrees=True" in lines
    # classes with no orbit are left out of the counts
    counts = [ln for ln in lines if ln.startswith("| ") and ln.count("|") == 3 and not ln.startswith("| class")]
    assert counts == ["| global_minimum | 1 |", "| spurious_local_minimum | 1 |", "| strict_saddle | 2 |"]
    # orbits in increasing G, numbered from 0
    rows = [ln for ln in lines if ln.count("|") == 7 and ln[2].isdigit()]
    assert rows == ["| 0 | global_minimum | 0 | 2 | 0.5 | True |",
                    "| 1 | spurious_local_minimum | 0.75 | 2 | 0.0625 | False |",
                    "| 2 | strict_saddle | 1.25 | 8 | nan | True |",
                    "| 3 | strict_saddle | 2.5 | 4 | -0.125 | True |"]
    assert "> a note" in lines


def test_markdown_of_an_incomplete_enumeration_one_per_orbit():
    text = R.markdown(_data(complete=False, copies_counted=False, lowest_critical_value=None, routes={},
                            counts_by_class={}, orbit_list=[], notes=[]))
    assert "- complete (certified): **False**" in text
    assert "- real critical points: 16 (one per orbit), orbits: 4" in text
    assert "lowest critical value" not in text and "route " not in text and "| class |" not in text
    assert "| # |" not in text and ">" not in text


@pytest.mark.parametrize("value, shown", [(1 / 3, "0.333333"), (1234567.0, "1.23457e+06"), (2.0**-40, "9.09495e-13")])
def test_lowest_value_to_six_significant_digits(value, shown):
    assert f"- lowest critical value: {shown}" in R.markdown(_data(lowest_critical_value=value)).splitlines()


def test_plot_puts_each_orbit_at_its_class_and_value(figures_saved):
    fh = io.BytesIO()
    data = _data()
    R.plot(data, fh)
    assert fh.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = figures_saved[-1].axes[0]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == [c.replace("_", "\n") for c in R.CLASSES]
    assert ax.get_title() == "critical values by class, T=3 d=2 k=1, complete=True"
    drawn = {}
    for coll in ax.collections:
        label = coll.get_label()
        cls, count = label.rsplit(" (", 1)
        offs = coll.get_offsets()
        drawn[cls] = offs
        assert int(count.rstrip(")")) == len(offs)
        np.testing.assert_allclose(coll.get_facecolor()[0], matplotlib.colors.to_rgba(R.CLASS_COLORS[cls]))
    assert set(drawn) == {"global_minimum", "spurious_local_minimum", "strict_saddle"}
    for cls, offs in drawn.items():
        j = R.CLASSES.index(cls)
        vals = [o["G"] for o in data["orbit_list"] if o["class"] == cls]
        np.testing.assert_allclose(offs[:, 1], np.maximum(vals, 1e-16))  # G = 0 drawn at 1e-16
        assert np.all(np.abs(offs[:, 0] - j) <= 0.2 + 1e-12)
        if len(vals) > 1:
            np.testing.assert_allclose(offs[:, 0], j + np.linspace(-0.2, 0.2, len(vals)))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "global_minimum (1)", "spurious_local_minimum (1)", "strict_saddle (2)"]


def test_plot_without_orbits_has_no_legend(figures_saved):
    fh = io.BytesIO()
    R.plot(_data(orbit_list=[], complete=False), fh)
    ax = figures_saved[-1].axes[0]
    assert ax.get_legend() is None and not ax.collections
    assert ax.get_title().endswith("complete=False")
    assert fh.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_data_read_back_from_json_draws_every_orbit(figures_saved):
    """Data read back from its JSON (classes as fresh strings, not the module's literals)
    is drawn the same: every orbit once, under its class."""
    import json

    data = json.loads(json.dumps(_data()))
    R.plot(data, io.BytesIO())
    ax = figures_saved[-1].axes[0]
    counts = {c.get_label().rsplit(" (", 1)[0]: len(c.get_offsets()) for c in ax.collections}
    assert counts == {"global_minimum": 1, "spurious_local_minimum": 1, "strict_saddle": 2}
