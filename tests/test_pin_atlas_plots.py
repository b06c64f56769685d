"""theory._atlas_plots pinned: each heat-map cell is the fraction a / b of its counts (blank
where b = 0, the text still a/b; "-" where no cell was measured), rows are d / k in increasing
d, columns T, one panel per k, and the red outline covers exactly the cells inside the
theorem's hypotheses -- Thm 3.3: T >= 3 and d >= 3k; Thm 3.4: T = 2 and d >= 2k (THEORY.md
sections 5 and 6) -- tested on both sides of each boundary.
"""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from theory import _atlas_plots as P


@pytest.mark.parametrize("key", ["non_unique", "gd_success"])
@pytest.mark.parametrize("ratio, T, inside", [(3, 3, True), (2.999, 3, False), (3, 2, False), (4, 5, True),
                                              (2.5, 4, False), (3.0, 10, True)])
def test_theorem_3_3_region(key, ratio, T, inside):
    label, pred = P._OUTLINES[key]
    assert label == "Thm 3.3: T>=3, d>=3k" and pred(ratio, T) is inside


@pytest.mark.parametrize("key", ["spurious", "spurious_frequency", "strict_saddle"])
@pytest.mark.parametrize("ratio, T, inside", [(2, 2, True), (1.999, 2, False), (2, 3, False), (5, 2, True),
                                              (1.5, 2, False), (2, 1, False)])
def test_theorem_3_4_region(key, ratio, T, inside):
    label, pred = P._OUTLINES[key]
    assert label == "Thm 3.4: T=2, d>=2k" and pred(ratio, T) is inside


def test_every_outlined_property():
    assert set(P._OUTLINES) == {"non_unique", "spurious", "spurious_frequency", "strict_saddle", "gd_success"}


def _cells():
    cells = []
    for k in (1, 2):
        for d in (2 * k, 3 * k, 4 * k):
            for T in (2, 3, 4):
                a, b = (d + T) % 4, 3
                if (k, d, T) == (1, 3, 4):
                    b, a = 0, 0  # no trial counted
                cells.append({"k": k, "d": d, "T": T, "counts": {"non_unique": (a, b), "spurious": (b - a, b)}})
    cells = [c for c in cells if (c["k"], c["d"], c["T"]) != (2, 8, 2)]  # one cell never measured
    cells.append({"k": 3, "d": 9, "T": 3, "counts": {"non_unique": (1, 1)}})  # a k not drawn
    return cells


def test_grid_fractions_and_texts():
    cells = _cells()
    frac, text = P._grid(cells, "non_unique", 1, [2, 3, 4], [2, 3, 4])
    for c in cells:
        if c["k"] != 1:
            continue
        i, j = [2, 3, 4].index(c["d"]), [2, 3, 4].index(c["T"])
        a, b = c["counts"]["non_unique"]
        assert text[i][j] == f"{a}/{b}"
        if b:
            assert frac[i, j] == a / b
        else:
            assert np.isnan(frac[i, j])
    frac2, text2 = P._grid(cells, "non_unique", 2, [4, 6, 8], [2, 3, 4])
    assert np.isnan(frac2[2, 0]) and text2[2][0] == ""  # the cell never measured
    # cells outside the requested d or T are left out, not misplaced
    frac3, text3 = P._grid(cells, "non_unique", 1, [3], [3])
    assert frac3.shape == (1, 1) and text3 == [[f"{(3 + 3) % 4}/3"]]


@pytest.mark.parametrize("key", ["non_unique", "spurious"])
def test_heat_map_panels_cells_and_outlines(figures_saved, tmp_path, key):
    result = {"config": {"ks": [1, 2], "Ts": [2, 3, 4]}, "cells": _cells()}
    out = P.plot_property(result, key, "a title", tmp_path / f"{key}.png")
    assert out == tmp_path / f"{key}.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp.png"))
    fig = figures_saved[-1]
    panels = [ax for ax in fig.axes if ax.get_title().startswith("k = ")]
    assert [ax.get_title() for ax in panels] == ["k = 1", "k = 2"]
    label, inside = P._OUTLINES[key]
    assert fig._suptitle.get_text() == f"a title\n(red: {label}; text: count / trials)"
    for ax, k in zip(panels, (1, 2)):
        ds = [2 * k, 3 * k, 4 * k]
        assert [t.get_text() for t in ax.get_yticklabels()] == [f"{d / k:g} (d={d})" for d in ds]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3", "4"]
        img = ax.images[0].get_array()
        frac, text = P._grid(result["cells"], key, k, ds, [2, 3, 4])
        np.testing.assert_array_equal(np.ma.filled(img, np.nan), frac)
        shown = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
        assert shown == {(i, j): (text[i][j] or "-") for i in range(3) for j in range(3)}
        # dark text on the bright end of viridis (above 0.6), white elsewhere and on blanks
        for t in ax.texts:
            v = frac[round(t.get_position()[1]), round(t.get_position()[0])]
            assert t.get_color() == ("black" if np.isfinite(v) and v > 0.6 else "white")
        boxes = {(round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches if isinstance(p, Rectangle)
                 and p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)}
        want = {(i, j) for i, d in enumerate(ds) for j, T in enumerate([2, 3, 4]) if inside(d / k, T)}
        assert boxes == want and want


def test_ratios_d_over_k_need_not_be_integers(figures_saved, tmp_path):
    cells = [{"k": 2, "d": d, "T": T, "counts": {"non_unique": (1, 2)}} for d in (5, 6) for T in (2, 3)]
    P.plot_property({"config": {"ks": [2], "Ts": [2, 3]}, "cells": cells}, "non_unique", "t", tmp_path / "r.png")
    ax = [a for a in figures_saved[-1].axes if a.get_title() == "k = 2"][0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2.5 (d=5)", "3 (d=6)"]
    boxes = {(round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches if isinstance(p, Rectangle)}
    assert boxes == {(1, 1)}  # d/k = 2.5 < 3 is outside Thm 3.3's d >= 3k; 3 at T = 3 inside
