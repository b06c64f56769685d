"""landscape._audit.plots: the orbit figure's curves as mathematics -- G is constant along the
O(k) orbit of one factor, the O(k,k) boost (T = 2) is drawn over t in [-1, 1] mapped onto
[0, 2 pi] and passes through G(U) at t = 0."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from landscape import LoraMLProblem
from landscape._audit.plots import _orbit_curves


def test_orbit_curves_for_two_tasks():
    rng = np.random.default_rng(4)
    T, d, k = 2, 4, 2
    prob = LoraMLProblem(rng.standard_normal((T, d, d)), k)
    U = rng.standard_normal((T, d, k))
    G0 = prob.reduced_loss(U)
    curves = {label.split(":")[0].split(" (")[0]: (x, y) for x, y, _, label in
              _orbit_curves(prob, SimpleNamespace(point=U), np.random.default_rng(0))}
    assert set(curves) == {"O(k) orbit", "O(k,k) boost", "generic path"}
    x, y = curves["O(k) orbit"]
    assert np.allclose(x, np.linspace(0, 2 * np.pi, 121)) and np.allclose(y, G0, rtol=1e-10, atol=0)
    x, y = curves["O(k,k) boost"]
    assert np.allclose(x, np.pi * (np.linspace(-1.0, 1.0, 121) + 1.0), rtol=0, atol=1e-12)
    assert x[0] == 0.0 and abs(x[-1] - 2 * np.pi) < 1e-12 and np.all(np.diff(x) > 0)
    assert abs(y[60] - G0) <= 1e-10 * max(1.0, abs(G0))  # t = 0: the point itself
    x, y = curves["generic path"]
    assert abs(y[0] - G0) <= 1e-10 * max(1.0, abs(G0))


def test_a_series_holding_exact_zeros_still_converts_to_user_units():
    """A zero stays zero when rescaled (it does not underflow): a series with exact zeros is
    converted like any other, G (power 4) gaining 2^(4e/2) = 16 at e = 2."""
    from types import SimpleNamespace

    from landscape._audit.plots import _in_user_units

    series = [(np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 0.5]))]
    (out,), xs, ys = _in_user_units(series, SimpleNamespace(e=2), y_power=4)
    assert xs == ys == ""
    np.testing.assert_array_equal(out[1], [0.0, 32.0, 8.0])
    np.testing.assert_array_equal(out[0], [0.0, 1.0, 2.0])


def test_orbit_curves_keep_their_styles(monkeypatch):
    """The orbit plot draws the O(k) orbit solid in the colour cycle, the reference dotted
    gray, the sign flips as markers: each curve as its style says."""
    from types import SimpleNamespace

    import landscape._audit.plots as P

    curves = [(np.array([0.0, 1.0]), np.array([1.0, 1.0]), "-", "orbit"),
              (np.array([0.0, 1.0]), np.array([1.0, 2.0]), ":", "reference"),
              (np.array([0.0, 3.0]), np.array([1.0, 1.0]), "o", "flips")]
    monkeypatch.setattr(P, "_orbit_curves", lambda problem, result, rng: curves)
    charts = []
    P._plot_orbit(charts.append, None, SimpleNamespace(id=0, kind="global_minimum"), None, None)
    (chart,) = charts
    kinds = [(kind, style, label) for kind, _, _, _, style, label in chart.series]
    assert kinds == [("line", "-", "orbit"), ("line", ":", "reference"), ("markers", ("o", 5), "flips")]
    assert chart.series[1][3] != chart.series[0][3]  # the reference in gray, not the cycle's first colour


def test_the_spectrum_chart_gives_g_relative_to_g_at_zero():
    """The spurious candidate's spectrum chart states G / G(0) with G(0) = T s^2 / 2 (s the
    problem's scale), positive for every problem: identical (here zero) tasks fall back to a
    scale of 1, so their chart states the ratio too."""
    from landscape._audit import plots as P
    from landscape._search import problem_scale

    rng = np.random.default_rng(0)
    charts = []
    spec = SimpleNamespace(eigenvalues=np.array([-0.5, 0.25, 1.0]), method="dense")
    result = SimpleNamespace(spectrum=spec)
    cls = SimpleNamespace(id=3, kind="spurious_candidate", classification=SimpleNamespace(loss=0.125))
    for tasks in (rng.standard_normal((3, 4, 4)), np.zeros((3, 4, 4))):
        prob = LoraMLProblem(tasks, 1)
        P._plot_spectrum(charts.append, cls, result, problem=prob)
        g0 = 0.5 * 3 * problem_scale(prob) ** 2
        title = charts[-1].title
        assert title.startswith("class 3: spurious candidate, G = ")
        assert g0 > 0 and f", G / G(0) = {0.125 / g0:.3e} (dense)" in title


def test_the_spectrum_chart_marks_the_negative_eigenvalues_at_their_ranks():
    """Eigenvalues sorted ascending, plotted at ranks 1..n; the negative ones again, marked,
    at their own ranks (1 and 2 here), with their absolute values."""
    from landscape._audit import plots as P

    charts = []
    spec = SimpleNamespace(eigenvalues=np.array([0.25, -0.1, 1.0, -0.5]), method="dense")
    cls = SimpleNamespace(id=1, kind="strict_saddle", classification=SimpleNamespace(loss=0.5))
    P._plot_spectrum(charts.append, cls, SimpleNamespace(spectrum=spec))
    (chart,) = charts
    xs = [np.asarray(s[1]).tolist() for s in chart.series]
    ys = [np.asarray(s[2]).tolist() for s in chart.series]
    assert xs[0] == [1, 2, 3, 4] and ys[0] == [0.5, 0.1, 0.25, 1.0]
    assert xs[1] == [1, 2] and ys[1] == [0.5, 0.1]


def test_the_saddle_chart_draws_the_quadratic_model_beside_the_loss(monkeypatch):
    """Beside G(U + t v), the model G + lambda_min t^2 / 2 of the same t."""
    from landscape._audit import plots as P

    ts = np.linspace(-1.0, 1.0, 5)
    monkeypatch.setattr(P, "_saddle_curve", lambda problem, cls, result: (ts, np.full(5, 7.0)))
    c = SimpleNamespace(loss=2.0, lambda_min_quotient=-3.0)
    charts = []
    P._plot_saddle(charts.append, None, SimpleNamespace(id=2, classification=c), None)
    (chart,) = charts
    np.testing.assert_array_equal(np.asarray(chart.series[1][2]), 2.0 - 1.5 * ts**2)


def test_the_loss_histogram_spans_at_least_one_decade_and_otherwise_exactly_its_values():
    """log10 G of the critical points in HIST_BINS equal bins: a single value (or several
    equal ones) gets a one-decade range centred on it (so its bar has a width), a range
    narrower than a decade is widened to one decade about its middle, and a wider range is
    drawn as it is; every run is counted once."""
    from landscape._audit import plots as P

    def edges_of(losses, kinds=None):
        kinds = kinds or [P.GLOBAL_MINIMUM] * len(losses)
        charts = []
        P._plot_losses(charts.append, [SimpleNamespace(kind=k, loss=g) for k, g in zip(kinds, losses)])
        (chart,) = charts
        (series,) = [s for s in chart.series if s[0] == "bars"]
        return np.asarray(series[1]), series[2]

    edges, stacks = edges_of([1e-3, 1e-3, 1e-3])
    assert edges.size == P.HIST_BINS + 1 == 31
    assert edges[0] == pytest.approx(-3.5, abs=1e-12) and edges[-1] == pytest.approx(-2.5, abs=1e-12)
    assert np.all(np.diff(edges) > 0) and sum(int(s.sum()) for s in stacks) == 3
    edges, _ = edges_of([1e-3, 10 ** -2.6])  # 0.4 decade apart: widened to one, same middle
    assert edges[0] == pytest.approx(-3.3, abs=1e-12) and edges[-1] == pytest.approx(-2.3, abs=1e-12)
    edges, stacks = edges_of([1e-6, 1e-3, 1.0], [P.GLOBAL_MINIMUM, P.STRICT_SADDLE, P.STRICT_SADDLE])
    assert edges[0] == pytest.approx(-6.0, abs=1e-12) and edges[-1] == pytest.approx(0.0, abs=1e-12)
    assert [int(s.sum()) for s in stacks] == [1, 2]


@pytest.mark.parametrize("e, x_power, y_power", [(4, 1, 4), (6, 1, 2), (2, 1, 4)])
def test_an_axis_left_unconverted_names_its_factor(e, x_power, y_power):
    """When a converted value would leave the float range, the axis stays as computed and its
    label names the factor 2^(-p e / 2) that converts it (p the quantity's power)."""
    from landscape._audit import plots as P

    units = SimpleNamespace(e=e)
    series = [(np.array([1e308, 1.0]), np.array([1e308, 2.0]))]
    out, xs, ys = P._in_user_units(series, units, y_power=y_power, x_power=x_power)
    assert xs == f" [x 2^{-x_power * e // 2}: tasks divided by 2^{e}]"
    assert ys == f" [x 2^{-y_power * e // 2}: tasks divided by 2^{e}]"
    assert np.array_equal(out[0][0], series[0][0]) and np.array_equal(out[0][1], series[0][1])
    assert xs == {4: " [x 2^-2: tasks divided by 2^4]", 6: " [x 2^-3: tasks divided by 2^6]",
                  2: " [x 2^-1: tasks divided by 2^2]"}[e]


def test_a_single_task_has_no_boost_curve():
    """The O(k,k) boost exists for T = 2 only: one task gets the O(k) orbit and the generic
    path, no boost."""
    rng = np.random.default_rng(0)
    prob = LoraMLProblem(rng.standard_normal((1, 3, 3)), 1)
    U = rng.standard_normal((1, 3, 1))
    labels = [label for _, _, _, label in _orbit_curves(prob, SimpleNamespace(point=U), np.random.default_rng(0))]
    assert labels and not any("boost" in lb for lb in labels)
