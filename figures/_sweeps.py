"""What the synthetic figures share: the five sweeps, their seeds and keys, the methods'
styles, the central band of the trials, and saving a figure (PNG and PDF, atomically).

Seeding: trial ``i`` of every sweep point uses the integer seed derived from
``(config["seed"], i)`` only (:func:`trial_seeds`), so a sweep point equal to the
defaults is the same computation in every sweep (as with the official fixed global
seed 613) and is computed once.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

#: The five varied parameters, in the paper's panel order.
SWEEPS = ("T", "d", "N", "n", "k")


#: Raster resolution of the PNGs: 150 dpi is the usual minimum for print review; the
#: figures are sized in inches for a page, so this is also their on-page resolution.
SAVE_DPI = 150


#: Vector format written beside every PNG: PDF (what LaTeX includes; compressed, so a
#: quarter of the size of the same figure as SVG; committed for the paper-scale results).
VECTOR_FORMATS = ("pdf",)


#: Width of a page's text block (inches): a figure this wide needs no scaling down.
PAGE_WIDTH_IN = 7.5


#: Points drawn per curve: the curves are smooth on the plotted scale, and thinning the
#: up-to-1500 recorded points keeps the committed SVGs small (the saved data keeps all).
PLOT_MAX_POINTS = 160


METHOD_LABELS = {"lora-ml": "LoRA-ML", "sr": "SR"}


METHOD_STYLE = {"lora-ml": "-", "sr": "--"}


#: One colour family per method (shade = sweep value), so the two methods' bands differ.
METHOD_CMAP = {"lora-ml": "Blues", "sr": "Oranges"}


_SWEEP_LABEL = {"T": "T (retraining tasks)", "d": "d (dimension)", "N": "N (samples per retraining task)",
                "n": "n (test samples)", "k": "k (adapter rank)"}


def _thin(n: int) -> np.ndarray:
    """Indices of at most :data:`PLOT_MAX_POINTS` of ``n`` recorded points, first and last kept:
    half evenly spaced, half geometrically (fine-tuning curves change fastest early)."""
    if n <= PLOT_MAX_POINTS:
        return np.arange(n)
    half = PLOT_MAX_POINTS // 2
    idx = np.concatenate([np.linspace(0, n - 1, half), np.geomspace(1, n - 1, half), [0]])
    return np.unique(idx.round().astype(int))


def _method_colors(method: str, count: int) -> list:
    """``count`` shades of the method's colour family, light to dark, none too pale to see."""
    import matplotlib

    cmap = matplotlib.colormaps[METHOD_CMAP[method]]
    return [cmap(x) for x in np.linspace(0.45, 1.0, max(count, 1))[:count]] if count > 1 else [cmap(0.8)]


def trial_seeds(seed: int, trials: int) -> list[int]:
    """Integer seeds of trials ``0..trials-1`` derived from ``seed`` (see :func:`empirics._runs.trial_seeds`)."""
    from empirics._runs import trial_seeds as _ts

    return _ts(seed, trials)


def _key(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _central_clip(n: int, frac: float = 0.2) -> int:
    """Values dropped on each side by :func:`_central` for ``n`` values."""
    clip = int(round(frac * n))
    while clip and n <= 2 * clip:
        clip -= 1
    return clip


def _central_range_words(n: int, frac: float = 0.2) -> str:
    """The central range in words, as the figures state it."""
    clip = _central_clip(n, frac)
    if clip == 0:
        return f"central range = min to max of the {n} trials"
    nth = {2: "2nd ", 3: "3rd "}.get(clip + 1, f"{clip + 1}th ")
    return f"central range = {nth}smallest to {nth}largest of {n} trials ({clip} dropped on each side)"


def _central(values: np.ndarray, frac: float) -> tuple[float, float, float]:
    """Median and central range clipping ``round(frac * n)`` values on each side (9.4)."""
    from empirics._shallow import central_range

    v = np.asarray(values).ravel()
    return central_range(v, clip=_central_clip(v.size, frac))


#: Marker of the i-th sweep value (same in both methods): curves that coincide stay
#: distinguishable, since each curve's markers sit at its own staggered x positions.
VALUE_MARKERS = ("o", "s", "^", "D", "v", "P")


def _marker_positions(x: np.ndarray, slot: int, slots: int, per_curve: int = 5) -> list[int]:
    """Indices into ``x`` of ``per_curve`` markers, shifted by ``slot / slots`` of a
    spacing, so the markers of curves drawn on top of each other do not coincide."""
    if x.size == 0:
        return []
    lo, hi = float(x[0]), float(x[-1])
    step = (hi - lo) / per_curve
    targets = lo + step * (np.arange(per_curve) + (slot + 0.5) / max(slots, 1))
    return sorted({int(np.argmin(np.abs(x - t))) for t in targets})


def claim_lines(claims: list, *, smoke: bool = False) -> list:
    """Markdown lines of claims; at the smoke configuration's tiny sizes a claim is not
    tested, and the lines say so instead of a bare FAILS."""
    lines = []
    if smoke:
        lines += ["SMOKE configuration (tiny sizes, few steps): it only checks that the pipeline runs; "
                  "the claims are not tested at this size and a 'does not hold' here says nothing about them.", ""]
    for c in claims:
        verdict = "HOLDS" if c["holds"] else ("does not hold at smoke size" if smoke else "FAILS")
        lines.append(f"- {verdict}: {c['claim']}")
    return lines


def _executor_or_default(executor, workers: int):
    from landscape.runtime.executor import LocalExecutor

    return LocalExecutor(workers=max(1, int(workers))) if executor is None else executor


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _has_display():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    """Save PNG (:data:`SAVE_DPI`) and the vector format(s) atomically, then close the figure.

    Each file is written under a temporary name in the same folder and renamed, so an
    interrupted rendering leaves the previous image intact. Metadata dates are left
    out so that redrawing unchanged data gives unchanged files.
    """
    import matplotlib.pyplot as plt

    from landscape.runtime.atomic import atomic_write

    formats = ["png", *VECTOR_FORMATS]
    metadata = {"png": None, "svg": {"Date": None}, "pdf": {"CreationDate": None}}
    paths = []
    try:
        for fmt in formats:
            path = Path(out_dir) / f"{stem}.{fmt}"
            atomic_write(path, lambda fh, fmt=fmt: fig.savefig(fh, format=fmt, dpi=SAVE_DPI,
                                                            metadata=metadata[fmt]))
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def _write_md(out_dir: Path, stem: str, text: str) -> Path:
    """Write ``stem.md`` atomically."""
    from landscape.runtime.atomic import atomic_write_text

    return atomic_write_text(Path(out_dir) / f"{stem}.md", text if text.endswith("\n") else text + "\n")


def _has_display() -> bool:
    import os

    return bool(os.environ.get("DISPLAY"))
