"""The audit's SVG charts (landscape/_audit/svg.py) and the plots drawn with them: ticks at
exact positions, the data-to-pixel map pinned at its ends, lines broken at non-finite
values, log axes without non-positive values, valid XML for any label, and the plots'
numbers (histogram counts, converted units) equal to what the audit computed."""
from __future__ import annotations

import math
import re
import types
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landscape._audit import plots, svg
from landscape._classify import GLOBAL_MINIMUM, NOT_CRITICAL, STRICT_SADDLE

NS = "{http://www.w3.org/2000/svg}"
X0, X1 = svg.MARGINS[0], svg.WIDTH - svg.MARGINS[1]
Y0, Y1 = svg.HEIGHT - svg.MARGINS[3], svg.MARGINS[2]


def _tree(chart) -> ET.Element:
    return ET.fromstring(chart.to_svg())


def _polylines(root) -> list:
    return [np.array([[float(v) for v in p.split(",")] for p in el.get("points").split()])
            for el in root.iter(NS + "polyline")]


# ------------------------------------------------------------------------------- ticks
@pytest.mark.parametrize("lo, hi, expected", [
    (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),        # raw step 1/6 -> 0.2
    (0.0, 6.0, [0, 1, 2, 3, 4, 5, 6]),                 # raw step exactly 1 -> 1 (not 2)
    (0.0, 12.0, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]),
    (0.0, 15.0, [0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0]),
    (-7.0, 7.0, [-7.5 + 2.5 * i for i in range(1, 6)]),  # raw 2.33 -> 2.5, ticks inside only
    (0.1, 0.15, [0.10, 0.11, 0.12, 0.13, 0.14, 0.15]),
])
def test_linear_ticks_are_exact(lo, hi, expected):
    np.testing.assert_allclose(svg.linear_ticks(lo, hi), expected, rtol=0, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(1e-6, 1e6))
def test_linear_ticks_lie_inside_at_a_nice_step(lo, span):
    hi = lo + span
    if not hi > lo:
        return
    t = svg.linear_ticks(lo, hi)
    step = span / 6
    assert 3 <= t.size <= 7
    assert t[0] >= lo - 1e-9 * span and t[-1] <= hi + 1e-9 * span
    d = np.diff(t)
    ulp = 4 * np.spacing(max(abs(lo), abs(hi)))  # ticks are multiples of the step, rounded
    np.testing.assert_allclose(d, d[0], rtol=1e-9, atol=ulp)
    mant = d[0] / 10 ** math.floor(math.log10(d[0]) + 1e-12)
    assert min(abs(mant - m) for m in (1, 2, 2.5, 5, 10)) < 1e-6 + ulp / d[0]
    assert step <= d[0] * (1 + 1e-9) + ulp and d[0] < 2 * step  # the smallest nice step >= span / 6


def test_log_ticks_are_the_decades_inside():
    np.testing.assert_array_equal(svg.log_ticks(0.05, 2e3), [-1, 0, 1, 2, 3])
    np.testing.assert_array_equal(svg.log_ticks(1.0, 10.0), [0, 1])  # the ends are decades
    # 61 decades: every 9th, at multiples of 9 (so 10^0 is one of them)
    np.testing.assert_array_equal(svg.log_ticks(1e-30, 1e30), np.arange(-27, 28, 9))
    np.testing.assert_array_equal(svg.log_ticks(1e-3, 1e3), np.arange(-3, 4))
    with pytest.raises(ValueError):
        svg.log_ticks(0.0, 1.0)
    with pytest.raises(ValueError):
        svg.linear_ticks(1.0, 1.0)


def test_log_tick_labels():
    assert [svg._log_label(n) for n in range(-4, 5)] == ["1e-4", "1e-3", "0.01", "0.1", "1", "10", "100",
                                                          "1e3", "1e4"]
    c = svg.Chart(ylog=True)
    c.markers([1, 2], [1e-3, 10.0])
    labels = ["".join(t.itertext()) for t in _tree(c).iter(NS + "text") if t.get("text-anchor") == "end"]
    assert labels == ["1e-3", "0.01", "0.1", "1", "10"]


@pytest.mark.parametrize("v, step, text", [(0.0, 0.2, "0"), (0.4, 0.2, "0.4"), (12.5, 2.5, "12.5"),
                                           (-7.5, 2.5, "-7.5"), (2.0, 1.0, "2"), (0.12, 0.01, "0.12"),
                                           (150000.0, 50000.0, "1.5e5"), (0.0002, 0.0001, "0.0002"),
                                           (2e-5, 1e-5, "2e-5")])
def test_tick_labels(v, step, text):
    assert svg._label(v, step) == text


# ------------------------------------------------------------------------------- the map
def test_data_map_is_pinned_at_the_ends():
    c = svg.Chart()
    c.line([2.0, 3.0, 6.0], [10.0, -10.0, 30.0])
    (pts,) = _polylines(_tree(c))
    # x range [2, 6] padded by 4 % each side, y range [-10, 30] by 5 %
    fx = lambda x: X0 + (x - (2 - 0.16)) / (4 * 1.08) * (X1 - X0)  # noqa: E731
    fy = lambda y: Y0 + (y - (-10 - 2.0)) / (40 * 1.10) * (Y1 - Y0)  # noqa: E731
    np.testing.assert_allclose(pts[:, 0], [fx(2), fx(3), fx(6)], atol=0.006)
    np.testing.assert_allclose(pts[:, 1], [fy(10), fy(-10), fy(30)], atol=0.006)


def test_log_axis_maps_decades_evenly_and_leaves_out_non_positive_values():
    c = svg.Chart(ylog=True)
    c.markers([1, 2, 3, 4, 5], [1e-2, 1.0, 0.0, -3.0, 1e2])
    root = _tree(c)
    ys = [float(e.get("cy")) for e in root.iter(NS + "circle")]
    assert len(ys) == 3  # 0 and -3 have no place on a log axis
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2], abs=0.01)  # 1e-2, 1, 1e2: equal steps
    span = 4 * 1.10  # decades -2 .. 2 padded by 5 % each side
    assert ys[1] == pytest.approx(Y0 + (0 - (-2 - 0.2)) / span * (Y1 - Y0), abs=0.006)


def test_non_finite_values_break_a_line():
    c = svg.Chart()
    c.line(np.arange(7.0), [0, 1, np.nan, 3, 4, np.inf, 6])
    runs = _polylines(_tree(c))
    assert [len(r) for r in runs] == [2, 2, 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e12, 1e12), st.floats(-1e12, 1e12)), min_size=2, max_size=40))
def test_every_point_lies_in_the_plot_area(pairs):
    x, y = np.array(pairs).T
    c = svg.Chart("t", "x", "y")
    c.line(x, y, label="a")
    for run in _polylines(_tree(c)):
        assert np.all((run[:, 0] >= X0 - 1e-6) & (run[:, 0] <= X1 + 1e-6))
        assert np.all((run[:, 1] <= Y0 + 1e-6) & (run[:, 1] >= Y1 - 1e-6))


def test_any_label_gives_valid_svg():
    c = svg.Chart('a <b> & "c"', "x < 1", "y & z")
    c.line([0, 1], [0, 1], label="<script>alert(1)</script>")
    root = _tree(c)
    texts = "".join("".join(t.itertext()) for t in root.iter(NS + "text"))
    assert 'a <b> & "c"' in texts and "<script>alert(1)</script>" in texts
    assert root.find(f".//{NS}script") is None


def test_bad_series_are_refused():
    c = svg.Chart()
    with pytest.raises(ValueError, match="differ in length"):
        c.line([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="line style"):
        c.line([5, 9], [5, 9], style="-o")
    with pytest.raises(ValueError, match="marker"):
        c.markers([-5, 9], [-5, 9], marker="s")
    with pytest.raises(ValueError, match="edges"):
        c.bars([0, 1, 2], [[1, 2, 3]], colors=["k"], labels=["a"])
    # a refused series leaves nothing behind: the axes span only what was drawn
    c.line([0.0, 1.0], [0.0, 1.0])
    assert c.x.limits(0.0) == (0.0, 1.0) and c.y.limits(0.0) == (0.0, 1.0) and len(c.series) == 1


def test_stacked_bars_have_the_heights_of_their_counts():
    c = svg.Chart()
    c.bars([0.0, 1.0, 2.0], [[3, 0], [1, 4]], colors=["tab:green", "tab:blue"], labels=["a", "b"])
    rects = [e for e in _tree(c).iter(NS + "rect") if e.get("fill") in ("#2ca02c", "#1f77b4")
             and float(e.get("height")) > 0 and float(e.get("width")) > 20]
    per_unit = (Y0 - Y1) / (4 * 1.05)  # y from 0 to the tallest stack (4) plus 5 %
    heights = sorted((e.get("fill"), round(float(e.get("height")) / per_unit, 3)) for e in rects)
    assert heights == [("#1f77b4", 1.0), ("#1f77b4", 4.0), ("#2ca02c", 3.0)]
    green = next(e for e in rects if e.get("fill") == "#2ca02c")
    blue_on_it = next(e for e in rects if e.get("fill") == "#1f77b4" and float(e.get("x")) == float(green.get("x")))
    assert float(blue_on_it.get("y")) + float(blue_on_it.get("height")) == pytest.approx(float(green.get("y")), abs=0.02)


# ------------------------------------------------------------------------------- plots
class _Save:
    def __call__(self, chart):
        self.chart = chart
        self.root = _tree(chart)


def test_loss_histogram_counts_every_critical_point_by_kind():
    cls = [types.SimpleNamespace(kind=k, loss=v) for k, v in
           [(GLOBAL_MINIMUM, 1e-20)] * 5 + [(STRICT_SADDLE, 3.0)] * 2 + [(NOT_CRITICAL, 1.0)]]
    save = _Save()
    plots._plot_losses(save, cls)
    (_, edges, stacks, colors, _, labels) = save.chart.series[0]
    assert labels == [f"{GLOBAL_MINIMUM} (5)", f"{STRICT_SADDLE} (2)"]
    assert [int(s.sum()) for s in stacks] == [5, 2]
    assert edges.size == plots.HIST_BINS + 1 and edges[0] <= -20 and edges[-1] >= math.log10(3.0)
    # the user's units: tasks divided by 2**3 put G back by 2**6, log10 G by 6 log10 2
    save2 = _Save()
    plots._plot_losses(save2, cls, exponent=3)
    np.testing.assert_allclose(save2.chart.series[0][1], edges + 6 * math.log10(2.0))


def test_no_critical_point_is_said_not_drawn():
    save = _Save()
    plots._plot_losses(save, [types.SimpleNamespace(kind=NOT_CRITICAL, loss=1.0)])
    assert "no critical point found" in "".join(save.root.itertext())


def test_user_units_scale_each_axis_by_its_power():
    units = types.SimpleNamespace(e=4)
    (s,), xs, ys = plots._in_user_units([([1.0, 2.0], [3.0, -5.0])], units, y_power=4, x_power=1)
    np.testing.assert_array_equal(s[0], [4.0, 8.0])          # 2^(1*4/2)
    np.testing.assert_array_equal(s[1], [3.0 * 256, -5.0 * 256])  # 2^(4*4/2)
    assert xs == ys == ""
    # e = 0, or powers 0: nothing to convert
    (s,), xs, ys = plots._in_user_units([([1.0], [3.0])], types.SimpleNamespace(e=0), y_power=4)
    assert s[1][0] == 3.0 and xs == ys == ""


def test_user_units_that_overflow_stay_as_computed_and_say_so():
    units = types.SimpleNamespace(e=600)
    (s,), xs, ys = plots._in_user_units([([1.0], [3.0])], units, y_power=4, x_power=1)
    assert s[1][0] == 3.0 and ys == " [x 2^-1200: tasks divided by 2^600]"
    assert s[0][0] == 2.0 ** 300 and xs == ""  # the x axis (power 1) still fits: converted
    # a value that would underflow to zero is not converted either
    (s,), _, ys = plots._in_user_units([([1.0], [1e-300])], types.SimpleNamespace(e=-600), y_power=4)
    assert s[1][0] == 1e-300 and ys == " [x 2^1200: tasks divided by 2^-600]"


def test_audit_writes_svg_plots_that_report_md_shows(tmp_path):
    import landscape as ls

    inst = ls.random_instance(np.random.default_rng(0), 6, 3, 1)
    rep = ls.audit(inst, 1, starts=6, seed=0, out=tmp_path / "o", progress=False)
    names = rep.data["plots"]
    assert names and all(n.endswith(".svg") for n in names)
    md = (tmp_path / "o" / "report.md").read_text()
    for n in names:
        root = ET.parse(tmp_path / "o" / n).getroot()
        assert root.tag == NS + "svg"
        assert f"![{n}]({n})" in md
    assert re.search(r"<polyline|<rect", (tmp_path / "o" / names[0]).read_text())


def test_a_new_audit_removes_the_png_plots_of_an_older_one(tmp_path):
    import landscape as ls

    out = tmp_path / "o"
    out.mkdir()
    (out / "orbit.png").write_bytes(b"\x89PNG old")
    (out / "spectrum_class3.png").write_bytes(b"\x89PNG old")
    (out / "mine.png").write_bytes(b"keep")
    inst = ls.random_instance(np.random.default_rng(0), 6, 3, 1)
    ls.audit(inst, 1, starts=4, seed=0, out=out, progress=False)
    assert not (out / "orbit.png").exists() and not (out / "spectrum_class3.png").exists()
    assert (out / "mine.png").read_bytes() == b"keep"


def test_layout_texts_clip_area_legend_rows_and_cross_markers():
    c = svg.Chart("the title", "the x label", "the y label")
    c.line([0, 1], [0, 1], label="first")
    c.line([0, 1], [1, 0], style="--", label="second")
    c.markers([0.5], [0.5], marker="x", size=4, label="third")
    c.note("a note")
    root = _tree(c)
    texts = {"".join(t.itertext()): t for t in root.iter(NS + "text")}
    mid_x, mid_y = (X0 + X1) / 2, (Y0 + Y1) / 2
    for name in ("the title", "the x label", "a note"):
        assert float(texts[name].get("x")) == pytest.approx(mid_x, abs=0.05)
    assert float(texts["a note"].get("y")) == pytest.approx(mid_y, abs=0.05)
    assert float(texts["the y label"].get("y")) == pytest.approx(mid_y, abs=0.05)
    assert f"rotate(-90 16 {mid_y:.1f})" == texts["the y label"].get("transform")
    clip = root.find(f"{NS}clipPath/{NS}rect")
    assert [float(clip.get(a)) for a in ("x", "y", "width", "height")] == [X0, Y1, X1 - X0, Y0 - Y1]
    # legend rows one below the other, fs + 6 apart, inside the legend's box
    ys = [float(texts[n].get("y")) for n in ("first", "second", "third")]
    assert np.diff(ys) == pytest.approx([c.legend_size + 6] * 2)
    box = next(r for r in root.iter(NS + "rect") if r.get("stroke") == "#cccccc")
    top, height = float(box.get("y")), float(box.get("height"))
    assert top < ys[0] - c.legend_size / 2 and ys[-1] < top + height
    # the cross marker: two strokes between opposite corners of a 2s x 2s square
    crosses = [p for p in root.iter(NS + "path") if p.get("d", "").startswith("M")]
    px, py = float(svg.Chart._map(0.5, *c._frame()[1], X0, X1, False)), float(svg.Chart._map(0.5, *c._frame()[2], Y0, Y1, False))
    nums = [float(v) for v in re.findall(r"-?\d+\.\d+", crosses[0].get("d"))]
    assert nums == pytest.approx([px - 4, py - 4, px + 4, py + 4, px - 4, py + 4, px + 4, py - 4], abs=0.006)


def test_frame_tick_labels_and_legend_swatches_sit_where_drawn():
    c = svg.Chart()
    c.line([0.0, 1.0], [0.0, 1.0], label="a")
    root = _tree(c)
    frame = next(r for r in root.iter(NS + "rect") if r.get("stroke") == "black")
    assert [float(frame.get(a)) for a in ("x", "y", "width", "height")] == [X0, Y1, X1 - X0, Y0 - Y1]
    # y tick labels: 3.5 px below their tick (the middle of a 10 px font), 8 px left of the axis
    ticks = [ln for ln in root.iter(NS + "line") if ln.get("x1") == str(X0 - 5)]
    labels = [t for t in root.iter(NS + "text") if t.get("text-anchor") == "end"]
    assert len(ticks) == len(labels) >= 3
    for tick, label in zip(ticks, labels):
        assert float(label.get("y")) == pytest.approx(float(tick.get("y1")) + 3.5, abs=0.006)
        assert float(label.get("x")) == X0 - 8
    # the legend's line swatch: 18 px long, 6 px inside the legend box
    box = next(r for r in root.iter(NS + "rect") if r.get("stroke") == "#cccccc")
    swatch = next(ln for ln in root.iter(NS + "line") if ln.get("stroke-width") == "1.6")
    assert float(swatch.get("x1")) == pytest.approx(float(box.get("x")) + 6, abs=0.06)
    assert float(swatch.get("x2")) - float(swatch.get("x1")) == pytest.approx(18, abs=0.06)


@pytest.mark.parametrize("lo, hi", [(59856443285384.76, 59856443285384.91), (220622293285849.06, 220622293285849.16),
                                    (-99450786715753.95, -99450786715753.88)])
def test_ticks_far_from_zero_stay_inside_despite_rounding(lo, hi):
    """Fourteen digits from zero the products k * step round by more than 1e-9 step: the
    last filter keeps every tick inside [lo, hi] (these ranges each had a rounded tick below lo)."""
    t = svg.linear_ticks(lo, hi)
    assert len(t) >= 2 and t.min() >= lo and t.max() <= hi


@pytest.mark.parametrize("k", [-20, 0, 20])
def test_a_tick_within_a_billionth_of_a_step_past_the_end_is_kept_at_every_scale(k):
    """The end tolerance is relative to the step: [0, 3 (1 - 1e-12) 10^k] keeps its tick at
    3 10^k (1e-12 of the range past the end) at every scale, 7 ticks each time."""
    t = svg.linear_ticks(0.0, 3 * (1 - 1e-12) * 10.0**k)
    assert len(t) == 7 and t[-1] == pytest.approx(3 * 10.0**k, rel=1e-15)
