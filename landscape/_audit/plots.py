r"""The audit's plots: losses at the critical points, spectra of spurious candidates,
the loss along a saddle's escape direction and along symmetry orbits, as SVG files
(:mod:`~landscape._audit.svg`: a few milliseconds each, no plotting library).
"""
from __future__ import annotations

import math

import numpy as np

from .._classify import DEGENERATE, GLOBAL_MINIMUM, KINDS, NOT_CRITICAL, SPURIOUS_CANDIDATE, STRICT_SADDLE, CriticalClass
from .._search import SearchResult, problem_scale
from .svg import Chart

#: Plots of spurious-candidate spectra are drawn for at most this many classes.
MAX_SPECTRUM_PLOTS = 6


#: Bins of the loss histogram, and the smallest range it spans (in decades), so that a
#: single critical point (e.g. one explicit start) still gets a visible bar.
HIST_BINS = 30


HIST_MIN_SPAN = 1.0


def _fmt(units, x, power: int) -> str:
    """``x`` of the normalised tasks in the user's units (see :meth:`_Units.fmt`)."""
    return format(float(x), ".3e") if units is None else units.fmt(x, power=power)


_COLORS = {GLOBAL_MINIMUM: "tab:green", SPURIOUS_CANDIDATE: "tab:red", STRICT_SADDLE: "tab:blue",
           DEGENERATE: "tab:orange", NOT_CRITICAL: "tab:gray"}


def _in_user_units(series, units, *, y_power: int, x_power: int = 0) -> tuple:
    """``series`` (pairs of x and y arrays) in the user's units: the audit ran on the tasks
    divided by :math:`2^e`, and a quantity of power ``p`` (4: G, 2: an eigenvalue of S, 1: a
    displacement of U, 0: an angle) gains :math:`2^{pe/2}`.  When a converted value would
    leave the float64 range an axis stays as computed and its label names the factor
    instead.  Returns ``(series, x label suffix, y label suffix)`` (suffixes empty when
    converted)."""
    e = 0 if units is None else int(units.e)
    if e == 0 or (y_power == 0 and x_power == 0):
        return [(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in series], "", ""

    def fits(values, p):
        v = np.asarray(values, dtype=float)
        with np.errstate(over="ignore", under="ignore"):
            w = np.ldexp(v, p * e // 2)
        return bool(np.all(np.isfinite(w)) and np.all((w != 0) | (v == 0))), w

    converted = [(fits(x, x_power), fits(y, y_power)) for x, y in series]
    x_ok = all(cx[0] for cx, _ in converted)
    y_ok = all(cy[0] for _, cy in converted)
    out = [(wx if x_ok and x_power else np.asarray(x, dtype=float), wy if y_ok and y_power else np.asarray(y, dtype=float))
           for (x, y), ((_, wx), (_, wy)) in zip(series, converted)]
    x_suffix = f" [x 2^{-x_power * e // 2}: tasks divided by 2^{e}]" if x_power and not x_ok else ""
    y_suffix = f" [x 2^{-y_power * e // 2}: tasks divided by 2^{e}]" if y_power and not y_ok else ""
    return out, x_suffix, y_suffix


def _plot_losses(save, classifications, exponent: int = 0):
    """Histogram of log10 G (in the user's units: the tasks were divided by 2**exponent,
    so log10 G gains 2 * exponent * log10(2))."""
    chart = Chart("Loss at the critical points found", "log10 G at the critical point", "runs")
    floor = 1e-300
    shift = 2 * exponent * math.log10(2.0)
    data, labels, colors = [], [], []
    for kind in KINDS:
        if kind == NOT_CRITICAL:
            continue
        vals = [math.log10(max(c.loss, floor)) + shift for c in classifications if c.kind == kind]
        if vals:
            data.append(vals)
            labels.append(f"{kind} ({len(vals)})")
            colors.append(_COLORS[kind])
    if data:
        lo = min(min(v) for v in data)
        hi = max(max(v) for v in data)
        # a single value (or values closer than float spacing) still gets a visible bin
        span = max(hi - lo, HIST_MIN_SPAN)
        mid = 0.5 * (lo + hi)
        edges = np.linspace(mid - 0.5 * span, mid + 0.5 * span, HIST_BINS + 1)
        chart.bars(edges, [np.histogram(v, bins=edges)[0] for v in data], colors=colors, labels=labels)
    else:
        chart.note("no critical point found")
    save(chart)


def _plot_spectrum(save, cls: CriticalClass, result: SearchResult, units=None, problem=None):
    lam = np.sort(np.asarray(result.spectrum.eigenvalues))
    neg = lam < 0
    series = [(np.arange(1, lam.size + 1), np.abs(lam))]
    if neg.any():
        series.append((np.flatnonzero(neg) + 1, np.abs(lam[neg])))
    series, _, suffix = _in_user_units(series, units, y_power=2)
    rel = ""
    if problem is not None:
        g0 = 0.5 * problem.T * problem_scale(problem) ** 2
        rel = f", G / G(0) = {cls.classification.loss / g0:.3e}" if g0 > 0 else ""
    chart = Chart(f"class {cls.id}: spurious candidate, G = {_fmt(units, cls.classification.loss, 4)}{rel}"
                  f" ({result.spectrum.method})", "index (ascending)",
                  "|eigenvalue| of S on the O(k) quotient" + suffix, ylog=True, title_size=11)
    chart.markers(*series[0], color=_COLORS[cls.kind])
    if neg.any():
        chart.markers(*series[1], color="k", marker="x", label="negative")
    save(chart)


class _Lines:
    r""":math:`G` at many points :math:`\mathbf U+\alpha\mathbf V` near one point, from the
    exact quartic of :meth:`~landscape._factored.FactoredObjective.line_polynomial`:
    :math:`G(\mathbf U+\alpha\mathbf V)=G(\mathbf U)+\sum_{j=1}^4c_j\alpha^j`.  The d x d
    work is :math:`\Delta\mathbf U` once and :math:`\Delta\mathbf V` once per direction (or
    none: for :math:`\mathbf V_t=\sum_s\mathbf U_sM_{st}`,
    :math:`\Delta_t\mathbf V_t=\sum_s(\Delta_t\mathbf U_s)M_{st}`), where the dense
    evaluation of :math:`G` costs several T d^2 arrays per point.  :math:`G(\mathbf U)` is
    the direct form; the values equal the direct ones to rounding (:math:`\varepsilon s^2`)."""

    def __init__(self, problem, U):
        from .._factored import factored

        self.F = F = factored(problem)
        self.U = np.asarray(U, dtype=float)
        self.DU = F.apply_delta(self.U)
        self.g = F.grad(self.U, self.DU)
        self.G0 = F.loss_exact(self.U)

    def along(self, V, alphas, DV=None) -> np.ndarray:
        r""":math:`G(\mathbf U+\alpha\mathbf V)` for every ``alpha``."""
        coef = self.F.line_polynomial(self.U, V, self.DU, self.F.apply_delta(V) if DV is None else DV, G=self.g)
        return self.G0 + self.F.eval_polynomial(coef, np.asarray(alphas, dtype=float))

    def at(self, V, DV) -> np.ndarray:
        r""":math:`G(\mathbf U+\mathbf V_i)` for a batch ``V`` of shape (n, T, d, k) whose
        :math:`\Delta\mathbf V_i` are ``DV``."""
        return self.G0 + self.F.eval_polynomial(self.F.line_polynomial(self.U, V, self.DU, DV, G=self.g), 1.0)


def _saddle_curve(problem, cls: CriticalClass, result: SearchResult):
    """``(t, G(U + t v))`` along the unit escape direction ``v`` of a strict saddle."""
    U = result.point
    v = cls.classification.negative_direction
    v = v / np.linalg.norm(v)
    s = problem_scale(problem)
    tau = 0.5 * max(math.sqrt(float(np.sum(U * U)) / problem.T), math.sqrt(s))
    ts = np.linspace(-tau, tau, 101)
    return ts, _Lines(problem, U).along(v, ts)


def _plot_saddle(save, problem, cls: CriticalClass, result: SearchResult, units=None):
    c = cls.classification
    ts, vals = _saddle_curve(problem, cls, result)
    series = [(ts, vals), (ts, c.loss + 0.5 * c.lambda_min_quotient * ts**2)]
    series, x_suffix, y_suffix = _in_user_units(series, units, y_power=4, x_power=1)
    chart = Chart(f"class {cls.id}: strict saddle, lambda_min = {_fmt(units, c.lambda_min_quotient, 2)}",
                  "t (v: unit eigenvector of the most negative quotient eigenvalue)" + x_suffix, "G" + y_suffix,
                  title_size=11)
    chart.line(*series[0], label="G(U + t v)")
    chart.line(*series[1], style="--", label="quadratic model")
    save(chart)


def _orbit_curves(problem, result: SearchResult, rng) -> list:
    """``(x, G, style, label)`` of the curves of :func:`_plot_orbit`: the loss along the
    O(k) orbit of ``U`` (rotations of ``U_1``; for k = 1 the two points +-U_1), along a
    boost of O(k, k) when T = 2, and along a generic path for contrast.  The orbit points
    are ``U_s M_s`` with k x k (2k x 2k for the boost) matrices, so their products with
    the task deviations follow from those of ``U`` (:class:`_Lines`)."""
    from scipy.linalg import expm

    U = result.point
    T, d, k = U.shape
    L = _Lines(problem, U)
    curves = []
    thetas = np.linspace(0.0, 2 * np.pi, 121)
    if k >= 2:
        Om = np.zeros((k, k))
        Om[0, 1], Om[1, 0] = -1.0, 1.0
        # U_1 -> U_1 exp(theta Omega): the step V has V_1 = U_1 (exp(theta Omega) - I), V_t = 0 else
        E = np.stack([expm(th * Om) - np.eye(k) for th in thetas])
        V = np.zeros((len(thetas), T, d, k))
        DV = np.zeros_like(V)
        V[:, 0] = U[0] @ E
        DV[:, 0] = L.DU[0] @ E
        curves.append((thetas, L.at(V, DV), "-", "O(k) orbit: U_1 -> U_1 exp(theta Omega)"))
    else:
        flip = np.zeros((T, d, k))
        flip[0] = -2.0 * U[0]  # U_1 -> -U_1
        curves.append((np.array([0.0, np.pi]), np.array([L.G0, float(L.along(flip, [1.0])[0])]), "o",
                       "O(1) orbit: U_1 -> +-U_1 (theta = 0, pi)"))
    if T == 2:
        J = np.zeros((2 * k, 2 * k))
        J[0, k], J[k, 0] = 1.0, 1.0  # a boost generator of o(k,k)
        ts = np.linspace(-1.0, 1.0, 121)
        # [V_1 V_2] = [U_1 U_2] (exp(tJ) - I); Delta_t V_t needs Delta_1 U_2 and Delta_2 U_1 too
        E = np.stack([expm(t * J) - np.eye(2 * k) for t in ts])
        cross = L.F.apply_delta(U[::-1])  # [Delta_1 U_2, Delta_2 U_1]
        V = np.empty((len(ts), 2, d, k))
        DV = np.empty_like(V)
        for t in range(2):
            cols = slice(t * k, (t + 1) * k)
            V[:, t] = U[0] @ E[:, :k, cols] + U[1] @ E[:, k:, cols]
            own, other = L.DU[t], cross[t]  # Delta_t U_t and Delta_t U_(other)
            DV[:, t] = (own @ E[:, t * k:(t + 1) * k, cols] + other @ E[:, (1 - t) * k:(2 - t) * k, cols])
        curves.append((np.pi * (ts + 1.0), L.at(V, DV), "-", "O(k,k) boost (t in [-1, 1], rescaled)"))
    v = rng.standard_normal(U.shape)
    v *= math.sqrt(float(np.sum(U * U)) + problem_scale(problem)) / np.linalg.norm(v)
    curves.append((thetas, L.along(v, np.sin(thetas / 2) * 0.5), ":", "generic path (for contrast)"))
    return curves


def _plot_orbit(save, problem, cls: CriticalClass, result: SearchResult, rng, units=None):
    curves = _orbit_curves(problem, result, rng)
    series, _, suffix = _in_user_units([(x, y) for x, y, _, _ in curves], units, y_power=4)
    chart = Chart(f"Loss along symmetry orbits through class {cls.id} ({cls.kind})", "theta", "G" + suffix,
                  title_size=11)
    chart.legend_size = 9.0
    for (x, y), (_, _, style, label) in zip(series, curves):
        if style == "o":
            chart.markers(x, y, size=5, label=label)
        elif style == ":":
            chart.line(x, y, style=":", color="gray", label=label)
        else:
            chart.line(x, y, label=label)
    save(chart)
