"""Markdown summary and plot of an enumeration (``enumeration.md``, ``critical_values.png``)."""
from __future__ import annotations


import numpy as np

CLASS_COLORS = {"global_minimum": "tab:green", "lowest_local_minimum": "tab:olive", "spurious_local_minimum": "tab:red",
                "strict_saddle": "tab:blue", "degenerate": "tab:gray"}
CLASSES = tuple(CLASS_COLORS)

__all__ = ["markdown", "plot"]


# --------------------------------------------------------------------------------------
def markdown(data) -> str:
    inst = data["instance"]
    lines = [f"# Complete enumeration of critical points (T={inst['T']}, d={inst['d']}, k={inst['k']})", ""]
    lines.append(f"- complete (certified): **{data['complete']}**")
    lines.append(f"- real critical points: {data['real_critical_points']} "
                 f"({'every sign copy counted' if data.get('copies_counted') else 'one per orbit'}), "
                 f"orbits: {data['orbits']}")
    lines.append(f"- degree (complex solutions, {data.get('degree_meaning', '')}): {data['degree']}")
    lines.append(f"- non-isolated critical sets: {data['non_isolated']}")
    if data.get("lowest_critical_value") is not None:
        lines.append(f"- lowest critical value: {data['lowest_critical_value']:.6g}")
    lines.append(f"- method: {data['method']}; wall time {data['wall_time_s']} s")
    for name, r in data.get("routes", {}).items():
        lines.append(f"- route {name}: " + ", ".join(f"{a}={b}" for a, b in r.items()))
    if data.get("counts_by_class"):
        lines += ["", "| class | orbits |", "|---|---|"]
        lines += [f"| {c} | {n} |" for c, n in data["counts_by_class"].items() if n]
    if data.get("orbit_list"):
        lines += ["", "| # | class | G | copies | lambda_min | certified |", "|---|---|---|---|---|---|"]
        for i, o in enumerate(sorted(data["orbit_list"], key=lambda o: o["G"])):
            ev = o.get("eigenvalues", {})
            lines.append(f"| {i} | {o['class']} | {o['G']:.6g} | {o['copies']} | {ev.get('min', float('nan')):.3g} "
                         f"| {o['certified']} |")
    for n in data.get("notes", []):
        lines.append(f"\n> {n}")
    return "\n".join(lines) + "\n"


def plot(data, fh):
    """Draw the critical values by class as PNG into the binary file ``fh``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    colors = CLASS_COLORS
    for j, c in enumerate(CLASSES):
        vals = [o["G"] for o in data.get("orbit_list", []) if o["class"] == c]
        if vals:
            ax.scatter(np.full(len(vals), j) + np.linspace(-0.2, 0.2, len(vals)), np.maximum(vals, 1e-16),
                       color=colors[c], label=f"{c} ({len(vals)})", s=18)
    ax.set_xticks(range(len(CLASSES)), [c.replace("_", "\n") for c in CLASSES], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("G at the critical orbit")
    inst = data["instance"]
    ax.set_title(f"critical values by class, T={inst['T']} d={inst['d']} k={inst['k']}, "
                 f"complete={data['complete']}", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        fig.savefig(fh, dpi=110, format="png")
    finally:
        plt.close(fig)
