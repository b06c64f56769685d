r"""A small SVG chart for the audit's plots: lines, markers and stacked bars on linear or
logarithmic axes, with ticks, labels, a title and a legend.

The audit's figures are a handful of curves each; drawing them as SVG text takes a few
milliseconds, where importing and running matplotlib took about a second per audit --
most of a small audit's time (issue 21). The files are plain SVG 1.1 that browsers,
Markdown viewers and notebooks show, and they stay sharp at any zoom.

Non-finite values break a line (nothing is drawn through them), and on a logarithmic
axis values that are not positive are left out, as matplotlib does; nothing else is
dropped or clipped silently: every finite value of a series sets the axis range.
"""
from __future__ import annotations

import math
from xml.sax.saxutils import escape

import numpy as np

__all__ = ["Chart", "linear_ticks", "log_ticks", "COLORS"]

#: matplotlib's "tab" colours, by the names the plots use.
COLORS = {"tab:blue": "#1f77b4", "tab:orange": "#ff7f0e", "tab:green": "#2ca02c", "tab:red": "#d62728",
          "tab:purple": "#9467bd", "tab:gray": "#7f7f7f", "gray": "#808080", "k": "#000000"}
#: Line colours in the order unnamed series take them.
CYCLE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
#: Dash patterns of matplotlib's line styles.
DASHES = {"-": "", "--": "6,4", ":": "1.5,3", "-.": "6,3,1.5,3"}

WIDTH, HEIGHT = 640, 420
#: Plot area margins (pixels): left, right, top, bottom.
MARGINS = (84, 18, 36, 56)


def _color(name: str) -> str:
    return COLORS.get(name, name)


def linear_ticks(lo: float, hi: float, target: int = 6) -> np.ndarray:
    """Tick positions at a step of 1, 2, 2.5 or 5 times a power of ten, at most about
    ``target`` + 1 of them, all inside ``[lo, hi]`` (``lo < hi``, both finite)."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"linear_ticks needs finite lo < hi, got {lo!r}, {hi!r}")
    raw = (hi - lo) / target
    p = 10.0 ** math.floor(math.log10(raw))
    step = next(m * p for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * p >= raw * (1 - 1e-12))
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    ticks = np.arange(first, last + 1) * step
    return ticks[(ticks >= lo - 1e-9 * step) & (ticks <= hi + 1e-9 * step)]


def log_ticks(lo: float, hi: float, target: int = 7) -> np.ndarray:
    """Exponents ``n`` of the decade ticks ``10**n`` inside ``[lo, hi]`` (``0 < lo < hi``),
    every m-th decade when more than about ``target`` would fit."""
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"log_ticks needs 0 < lo < hi finite, got {lo!r}, {hi!r}")
    a, b = math.ceil(math.log10(lo) - 1e-12), math.floor(math.log10(hi) + 1e-12)
    every = max(1, math.ceil((b - a + 1) / target))
    return np.arange(a - (a % every) + (every if a % every else 0), b + 1, every)


def _label(v: float, step: float) -> str:
    """A tick label: as many decimals as the step needs, scientific far from 1."""
    if v == 0:
        return "0"
    big = max(abs(v), abs(step))
    if big >= 1e5 or big < 1e-3:
        return format(v, ".3g").replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    power = math.floor(math.log10(step) + 1e-9)
    extra = 1 if abs(step / 10.0 ** power - 2.5) < 1e-6 else 0  # 2.5, 7.5 need one more decimal
    return f"{v:.{max(0, extra - power)}f}"


def _log_label(n: int) -> str:
    """The label of the decade tick ``10**n``: plain from 0.01 to 100, ``1e{n}`` beyond."""
    return format(10.0 ** n, "g") if -2 <= n <= 2 else f"1e{n}"


class _Axis:
    def __init__(self, log: bool):
        self.log = log
        self.values: list = []

    def add(self, v) -> None:
        v = np.asarray(v, dtype=float).ravel()
        v = v[np.isfinite(v)]
        if self.log:
            v = v[v > 0]
        if v.size:
            self.values.append(v)

    def limits(self, pad: float) -> tuple:
        if not self.values:
            return (1.0, 10.0) if self.log else (0.0, 1.0)
        v = np.concatenate(self.values)
        lo, hi = float(v.min()), float(v.max())
        if self.log:
            lo, hi = math.log10(lo), math.log10(hi)
            if hi - lo < 1e-12:
                lo, hi = lo - 0.5, hi + 0.5
            span = hi - lo
            return 10 ** (lo - pad * span), 10 ** (hi + pad * span)
        if not hi - lo > 1e-12 * max(abs(lo), abs(hi), 1e-300):
            half = 0.5 * abs(lo) if lo != 0 else 0.5
            lo, hi = lo - half, hi + half
        span = hi - lo
        if not math.isfinite(span):  # a range beyond the float64 range: no padding
            return lo, hi
        return lo - pad * span, hi + pad * span


class Chart:
    """One SVG chart; add series, then :meth:`to_svg`.

    Parameters
    ----------
    title, xlabel, ylabel : str
    xlog, ylog : bool
        Logarithmic axes (values that are not positive are left out on them).
    title_size : float
        Font size of the title (pixels).
    """

    def __init__(self, title: str = "", xlabel: str = "", ylabel: str = "", *, xlog: bool = False,
                 ylog: bool = False, title_size: float = 13.0):
        self.title, self.xlabel, self.ylabel, self.title_size = title, xlabel, ylabel, title_size
        self.x, self.y = _Axis(xlog), _Axis(ylog)
        self.series: list = []
        self.notes: list = []
        self.legend_size = 10.0
        self._cycle = 0

    def _next_color(self) -> str:
        c = CYCLE[self._cycle % len(CYCLE)]
        self._cycle += 1
        return c

    def line(self, x, y, *, color: str | None = None, style: str = "-", label: str | None = None) -> None:
        """A polyline through ``(x, y)``; ``style`` one of ``-``, ``--``, ``:``, ``-.``."""
        if style not in DASHES:
            raise ValueError(f"unknown line style {style!r}; use one of {sorted(DASHES)}")
        x, y = self._pair(x, y)
        self.series.append(("line", x, y, _color(color or self._next_color()), style, label))

    def markers(self, x, y, *, color: str | None = None, marker: str = "o", size: float = 4.0,
                label: str | None = None) -> None:
        """A marker (``o`` a disc, ``x`` a cross) at each ``(x, y)``."""
        if marker not in ("o", "x"):
            raise ValueError(f"unknown marker {marker!r}; use 'o' or 'x'")
        x, y = self._pair(x, y)
        self.series.append(("markers", x, y, _color(color or self._next_color()), (marker, size), label))

    def bars(self, edges, stacks, *, colors, labels) -> None:
        """Stacked bars: ``stacks[j][i]`` is the height of layer ``j`` on ``[edges[i], edges[i+1]]``."""
        edges = np.asarray(edges, dtype=float)
        stacks = [np.asarray(s, dtype=float) for s in stacks]
        if edges.ndim != 1 or edges.size < 2 or any(s.shape != (edges.size - 1,) for s in stacks):
            raise ValueError("bars need edges of length n + 1 and layers of length n")
        if len(colors) != len(stacks) or len(labels) != len(stacks):
            raise ValueError("bars need one colour and one label per layer")
        self.x.add(edges)
        top = np.sum(stacks, axis=0) if stacks else np.zeros(edges.size - 1)
        self.y.add(top)
        self.y.add([0.0])
        self.series.append(("bars", edges, stacks, [_color(c) for c in colors], None, list(labels)))

    def note(self, text: str) -> None:
        """A message in the middle of the plot area (e.g. that there is nothing to draw)."""
        self.notes.append(text)

    def _pair(self, x, y) -> tuple:
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError(f"x and y differ in length: {x.size} and {y.size}")
        self.x.add(x)
        self.y.add(y)
        return x, y

    # -- drawing ---------------------------------------------------------------------
    def _frame(self):
        left, right, top, bottom = MARGINS
        x0, x1 = left, WIDTH - right
        y0, y1 = HEIGHT - bottom, top
        bars = any(kind == "bars" for kind, *_ in self.series)  # bars fill the x range and stand on 0
        xlo, xhi = self.x.limits(0.0 if bars else 0.04)
        ylo, yhi = self.y.limits(0.05)
        if bars and not self.y.log:
            ylo = 0.0
        return (x0, x1, y0, y1), (xlo, xhi), (ylo, yhi)

    @staticmethod
    def _map(v, lo, hi, p0, p1, log):
        v = np.asarray(v, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if log:
                v = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)
                lo, hi = math.log10(lo), math.log10(hi)
            t = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
            return p0 + t * (p1 - p0)

    def to_svg(self) -> str:
        """The chart as the text of an SVG file."""
        (x0, x1, y0, y1), (xlo, xhi), (ylo, yhi) = self._frame()
        X = lambda v: self._map(v, xlo, xhi, x0, x1, self.x.log)  # noqa: E731
        Y = lambda v: self._map(v, ylo, yhi, y0, y1, self.y.log)  # noqa: E731
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
               f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">',
               f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
               f'<clipPath id="area"><rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}"/></clipPath>']
        out += self._ticks(X, Y, (x0, x1, y0, y1), (xlo, xhi), (ylo, yhi))
        out.append('<g clip-path="url(#area)">')
        for kind, a, b, color, style, label in self.series:
            if kind == "bars":
                base = np.zeros(a.size - 1)
                for layer, c in zip(b, color):
                    for i in np.flatnonzero(layer > 0):
                        xa, xb = X(a[i]), X(a[i + 1])
                        ya, yb = Y(base[i]), Y(base[i] + layer[i])
                        out.append(f'<rect x="{xa:.2f}" y="{yb:.2f}" width="{max(xb - xa, 0.5):.2f}" '
                                   f'height="{ya - yb:.2f}" fill="{c}"/>')
                    base = base + layer
            elif kind == "line":
                px, py = X(a), Y(b)
                ok = np.isfinite(px) & np.isfinite(py)
                dash = f' stroke-dasharray="{DASHES[style]}"' if DASHES[style] else ""
                for run in _runs(ok):
                    pts = " ".join(f"{px[i]:.2f},{py[i]:.2f}" for i in run)
                    out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.6"{dash}/>')
            else:
                marker, size = style
                px, py = X(a), Y(b)
                for i in np.flatnonzero(np.isfinite(px) & np.isfinite(py)):
                    out.append(_marker(marker, px[i], py[i], size, color))
        out.append("</g>")
        out.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="black"/>')
        for k, text in enumerate(self.notes):
            out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{(y0 + y1) / 2 + 16 * k:.1f}" text-anchor="middle" '
                       f'font-size="13">{escape(text)}</text>')
        if self.title:
            out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{y1 - 12}" text-anchor="middle" '
                       f'font-size="{self.title_size:g}">{escape(self.title)}</text>')
        if self.xlabel:
            out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle" '
                       f'font-size="12">{escape(self.xlabel)}</text>')
        if self.ylabel:
            yc = (y0 + y1) / 2
            out.append(f'<text x="16" y="{yc:.1f}" text-anchor="middle" font-size="12" '
                       f'transform="rotate(-90 16 {yc:.1f})">{escape(self.ylabel)}</text>')
        out += self._legend(x1, y1)
        out.append("</svg>")
        return "\n".join(out) + "\n"

    def _ticks(self, X, Y, frame, xlim, ylim) -> list:
        x0, x1, y0, y1 = frame
        out = []
        for axis, lim, to_px in ((self.x, xlim, X), (self.y, ylim, Y)):
            if axis.log:
                exps = log_ticks(*lim)
                pos, labels = 10.0 ** exps, [_log_label(int(n)) for n in exps]
            else:
                pos = linear_ticks(*lim) if math.isfinite(lim[1] - lim[0]) else np.array(lim)
                step = float(pos[1] - pos[0]) if pos.size > 1 else abs(float(pos[0])) or 1.0
                labels = [escape(_label(float(v), step)) for v in pos]
            for v, text in zip(pos, labels):
                p = float(to_px(v))
                if axis is self.x:
                    out.append(f'<line x1="{p:.2f}" y1="{y0}" x2="{p:.2f}" y2="{y0 + 5}" stroke="black"/>')
                    out.append(f'<text x="{p:.2f}" y="{y0 + 18}" text-anchor="middle" font-size="10">{text}</text>')
                else:
                    out.append(f'<line x1="{x0 - 5}" y1="{p:.2f}" x2="{x0}" y2="{p:.2f}" stroke="black"/>')
                    out.append(f'<line x1="{x0}" y1="{p:.2f}" x2="{x1}" y2="{p:.2f}" stroke="#e6e6e6"/>')
                    out.append(f'<text x="{x0 - 8}" y="{p + 3.5:.2f}" text-anchor="end" font-size="10">{text}</text>')
        return out

    def _legend(self, x1, y1) -> list:
        entries = []
        for kind, _, _, color, style, label in self.series:
            if kind == "bars":
                entries += [("bar", c, None, lab) for c, lab in zip(color, label)]
            elif label:
                entries.append((kind, color, style, label))
        if not entries:
            return []
        fs = self.legend_size
        width = 34 + 0.6 * fs * max(len(e[3]) for e in entries)
        height = 8 + (fs + 6) * len(entries)
        left, top = x1 - width - 8, y1 + 8
        out = [f'<rect x="{left:.1f}" y="{top:.1f}" width="{width:.1f}" height="{height:.1f}" fill="white" '
               f'fill-opacity="0.85" stroke="#cccccc"/>']
        for j, (kind, color, style, label) in enumerate(entries):
            yc = top + 4 + (fs + 6) * (j + 0.5)
            if kind == "bar":
                out.append(f'<rect x="{left + 6:.1f}" y="{yc - 5:.1f}" width="18" height="10" fill="{color}"/>')
            elif kind == "line":
                dash = f' stroke-dasharray="{DASHES[style]}"' if DASHES[style] else ""
                out.append(f'<line x1="{left + 6:.1f}" y1="{yc:.1f}" x2="{left + 24:.1f}" y2="{yc:.1f}" '
                           f'stroke="{color}" stroke-width="1.6"{dash}/>')
            else:
                out.append(_marker(style[0], left + 15, yc, style[1], color))
            out.append(f'<text x="{left + 30:.1f}" y="{yc + fs * 0.35:.1f}" font-size="{fs:g}">{escape(label)}</text>')
        return out


def _runs(ok) -> list:
    """Index runs of consecutive True entries (a line breaks at non-finite points)."""
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(idx) > 1) + 1
    return [r for r in np.split(idx, cuts) if r.size]


def _marker(kind: str, x: float, y: float, size: float, color: str) -> str:
    if kind == "o":
        return f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{size:g}" fill="{color}"/>'
    s = size
    return (f'<path d="M{x - s:.2f},{y - s:.2f}L{x + s:.2f},{y + s:.2f}M{x - s:.2f},{y + s:.2f}L{x + s:.2f},{y - s:.2f}" '
            f'stroke="{color}" stroke-width="1.5"/>')
