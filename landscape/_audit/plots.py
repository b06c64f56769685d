r"""The audit's plots: losses at the critical points, spectra of spurious candidates,
the loss along a saddle's escape direction and along symmetry orbits (PNG, matplotlib's
Agg canvas, no display needed).
"""
from __future__ import annotations

import math

import numpy as np

from .._classify import DEGENERATE, GLOBAL_MINIMUM, KINDS, NOT_CRITICAL, SPURIOUS_CANDIDATE, STRICT_SADDLE, CriticalClass
from .._search import SearchResult, problem_scale

#: Plots of spurious-candidate spectra are drawn for at most this many classes.
MAX_SPECTRUM_PLOTS = 6


#: Bins of the loss histogram, and the smallest range it spans (in decades), so that a
#: single critical point (e.g. one explicit start) still gets a visible bar.
HIST_BINS = 30


HIST_MIN_SPAN = 1.0


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(111)


def _fmt(units, x, power: int) -> str:
    """``x`` of the normalised tasks in the user's units (see :meth:`_Units.fmt`)."""
    return format(float(x), ".3e") if units is None else units.fmt(x, power=power)


_COLORS = {GLOBAL_MINIMUM: "tab:green", SPURIOUS_CANDIDATE: "tab:red", STRICT_SADDLE: "tab:blue",
           DEGENERATE: "tab:orange", NOT_CRITICAL: "tab:gray"}


def _in_user_units(ax, units, *, y_power: int, x_power: int = 0) -> str:
    """Redraw the lines of ``ax`` in the user's units: the audit ran on the tasks divided by
    :math:`2^e`, and a quantity of power ``p`` (4: G, 2: an eigenvalue of S, 1: a
    displacement of U, 0: an angle) gains :math:`2^{pe/2}`.  When a converted value would
    leave the float64 range the lines stay as computed and the axis label names the factor
    instead.  Returns the suffix for the y label (empty when converted)."""
    e = 0 if units is None else int(units.e)
    if e == 0 or (y_power == 0 and x_power == 0):
        return ""
    lines = list(ax.get_lines())

    def fits(values, p):
        v = np.asarray(values, dtype=float)
        with np.errstate(over="ignore", under="ignore"):
            w = np.ldexp(v, p * e // 2)
        return bool(np.all(np.isfinite(w)) and np.all((w != 0) | (v == 0))), w

    converted = [(fits(ln.get_xdata(), x_power), fits(ln.get_ydata(), y_power)) for ln in lines]
    x_ok = all(cx[0] for cx, _ in converted)
    y_ok = all(cy[0] for _, cy in converted)
    for ln, ((_, wx), (_, wy)) in zip(lines, converted):
        ln.set_data(wx if x_ok and x_power else ln.get_xdata(), wy if y_ok and y_power else ln.get_ydata())
    ax.relim()
    ax.autoscale_view()
    if x_power and not x_ok:
        ax.set_xlabel(ax.get_xlabel() + f" [x 2^{-x_power * e // 2}: tasks divided by 2^{e}]")
    if y_power and not y_ok:
        return f" [x 2^{-y_power * e // 2}: tasks divided by 2^{e}]"
    return ""


def _plot_losses(save, classifications, exponent: int = 0):
    """Histogram of log10 G (in the user's units: the tasks were divided by 2**exponent,
    so log10 G gains 2 * exponent * log10(2))."""
    fig, ax = _figure()
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
        ax.hist(data, bins=HIST_BINS, range=(mid - 0.5 * span, mid + 0.5 * span), stacked=True, label=labels,
                color=colors)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no critical point found", ha="center", transform=ax.transAxes)
    ax.set_xlabel("log10 G at the critical point")
    ax.set_ylabel("runs")
    ax.set_title("Loss at the critical points found")
    fig.tight_layout()
    save(fig)


def _plot_spectrum(save, cls: CriticalClass, result: SearchResult, units=None, problem=None):
    fig, ax = _figure()
    lam = np.sort(np.asarray(result.spectrum.eigenvalues))
    ax.semilogy(np.arange(1, lam.size + 1), np.abs(lam), "o", color=_COLORS[cls.kind], ms=4)
    neg = lam < 0
    if neg.any():
        ax.semilogy(np.flatnonzero(neg) + 1, np.abs(lam[neg]), "x", color="k", label="negative")
        ax.legend()
    ax.set_xlabel("index (ascending)")
    suffix = _in_user_units(ax, units, y_power=2)
    ax.set_ylabel("|eigenvalue| of S on the O(k) quotient" + suffix)
    rel = ""
    if problem is not None:
        g0 = 0.5 * problem.T * problem_scale(problem) ** 2
        rel = f", G / G(0) = {cls.classification.loss / g0:.3e}" if g0 > 0 else ""
    ax.set_title(f"class {cls.id}: spurious candidate, G = {_fmt(units, cls.classification.loss, 4)}{rel}"
                 f" ({result.spectrum.method})", fontsize=9)
    fig.tight_layout()
    save(fig)


def _plot_saddle(save, problem, cls: CriticalClass, result: SearchResult, units=None):
    c = cls.classification
    U = result.point
    v = c.negative_direction
    v = v / np.linalg.norm(v)
    s = problem_scale(problem)
    tau = 0.5 * max(math.sqrt(float(np.sum(U * U)) / problem.T), math.sqrt(s))
    ts = np.linspace(-tau, tau, 101)
    vals = [problem.reduced_loss(U + t * v) for t in ts]
    fig, ax = _figure()
    ax.plot(ts, vals, label="G(U + t v)")
    ax.plot(ts, c.loss + 0.5 * c.lambda_min_quotient * ts**2, "--", label="quadratic model")
    ax.set_xlabel("t (v: unit eigenvector of the most negative quotient eigenvalue)")
    ax.set_ylabel("G" + _in_user_units(ax, units, y_power=4, x_power=1))
    ax.set_title(f"class {cls.id}: strict saddle, lambda_min = {_fmt(units, c.lambda_min_quotient, 2)}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    save(fig)


def _plot_orbit(save, problem, cls: CriticalClass, result: SearchResult, rng, units=None):
    from scipy.linalg import expm

    U = result.point
    T, d, k = U.shape
    fig, ax = _figure()
    thetas = np.linspace(0.0, 2 * np.pi, 121)
    if k >= 2:
        Om = np.zeros((k, k))
        Om[0, 1], Om[1, 0] = -1.0, 1.0
        vals = []
        for th in thetas:
            V = U.copy()
            V[0] = U[0] @ expm(th * Om)
            vals.append(problem.reduced_loss(V))
        ax.plot(thetas, vals, label="O(k) orbit: U_1 -> U_1 exp(theta Omega)")
    else:
        ax.plot([0.0, np.pi], [problem.reduced_loss(U), problem.reduced_loss(U * np.r_[-1.0, np.ones(T - 1)][:, None, None])],
                "o", ms=8, label="O(1) orbit: U_1 -> +-U_1 (theta = 0, pi)")
    if T == 2:
        J = np.zeros((2 * k, 2 * k))
        J[0, k], J[k, 0] = 1.0, 1.0  # a boost generator of o(k,k)
        W = np.concatenate([U[0], U[1]], axis=1)
        vals = []
        ts = np.linspace(-1.0, 1.0, 121)
        for t in ts:
            Wt = W @ expm(t * J)
            vals.append(problem.reduced_loss(np.stack([Wt[:, :k], Wt[:, k:]])))
        ax.plot(np.pi * (ts + 1.0), vals, label="O(k,k) boost (t in [-1, 1], rescaled)")
    v = rng.standard_normal(U.shape)
    v *= math.sqrt(float(np.sum(U * U)) + problem_scale(problem)) / np.linalg.norm(v)
    vals = [problem.reduced_loss(U + np.sin(th / 2) * 0.5 * v) for th in thetas]
    ax.plot(thetas, vals, ":", color="gray", label="generic path (for contrast)")
    ax.set_xlabel("theta")
    ax.set_ylabel("G" + _in_user_units(ax, units, y_power=4))
    ax.set_title(f"Loss along symmetry orbits through class {cls.id} ({cls.kind})", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save(fig)
