"""Heat maps of the theory atlas (:func:`plot_property`), apart from :mod:`theory._atlas`
so that the atlas's measurement and its drawing change separately."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["plot_property"]


def _grid(cells, key, k, ds, Ts):
    frac = np.full((len(ds), len(Ts)), np.nan)
    text = [["" for _ in Ts] for _ in ds]
    for c in cells:
        if c["k"] != k or c["d"] not in ds or c["T"] not in Ts:
            continue
        i, j = ds.index(c["d"]), Ts.index(c["T"])
        a, b = c["counts"][key]
        if b:
            frac[i, j] = a / b
        text[i][j] = f"{a}/{b}"
    return frac, text


#: Hypothesis regions outlined on the heat maps: property -> (label, predicate of (ratio, T)).
_OUTLINES = {
    "non_unique": ("Thm 3.3: T>=3, d>=3k", lambda r, T: T >= 3 and r >= 3),
    "spurious": ("Thm 3.4: T=2, d>=2k", lambda r, T: T == 2 and r >= 2),
    "spurious_frequency": ("Thm 3.4: T=2, d>=2k", lambda r, T: T == 2 and r >= 2),
    "strict_saddle": ("Thm 3.4: T=2, d>=2k", lambda r, T: T == 2 and r >= 2),
    "gd_success": ("Thm 3.3: T>=3, d>=3k", lambda r, T: T >= 3 and r >= 3),
}


def plot_property(result: dict, key: str, title: str, path: Path) -> Path:
    """Heat map of one property: one panel per k, x = T, y = d/k, cells annotated a/b."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cfg = result["config"]
    ks, Ts = list(cfg["ks"]), list(cfg["Ts"])
    fig, axes = plt.subplots(1, len(ks), figsize=(1.2 + 3.2 * len(ks), 3.8), squeeze=False, constrained_layout=True)
    label, inside = _OUTLINES[key]
    for ax, k in zip(axes[0], ks):
        ds = sorted({c["d"] for c in result["cells"] if c["k"] == k})
        ratios = [d / k for d in ds]
        frac, text = _grid(result["cells"], key, k, ds, Ts)
        im = ax.imshow(frac, origin="lower", cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        for i in range(len(ratios)):
            for j in range(len(Ts)):
                v = frac[i, j]
                ax.text(j, i, text[i][j] or "-", ha="center", va="center", fontsize=8,
                        color="black" if (np.isfinite(v) and v > 0.6) else "white")
                if inside(ratios[i], Ts[j]):
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.5, clip_on=False))
        ax.set_xticks(range(len(Ts)), [str(t) for t in Ts])
        ax.set_yticks(range(len(ratios)), [f"{r:g} (d={d})" for r, d in zip(ratios, ds)])
        ax.set_xlabel("T (retraining tasks)")
        ax.set_ylabel("d / k")
        ax.set_title(f"k = {k}", fontsize=10)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.9, label="fraction")
    fig.suptitle(f"{title}\n(red: {label}; text: count / trials)", fontsize=9)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
