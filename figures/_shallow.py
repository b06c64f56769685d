"""The shallow network (THEORY.md 9.2-9.4): fine-tuning curves for the five sweeps and the
result tables beside the paper's numbers.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ._registry import FigureSpec, register
from ._sweeps import (_SWEEP_LABEL, METHOD_LABELS, METHOD_STYLE, PAGE_WIDTH_IN, SWEEPS, _central, _central_clip,
                      _central_range_words, _executor_or_default, _key, _marker_positions, _method_colors, _plt, _save,
                      _thin, _write_md, claim_lines, trial_seeds)

__all__ = ["PAPER_SHALLOW_TABLES", "shallow_table_rows", "format_shallow_tables"]

#: Shallow-network tables of the paper (THEORY.md 9.4): sweep -> method -> list of
#: (median, low, high) per value.
PAPER_SHALLOW_TABLES = {
    "T": {"values": [2, 3, 5],
          "lora-ml": [(0.047, 0.042, 0.127), (0.018, 0.017, 0.028), (0.005, 0.004, 0.024)],
          "sr": [(0.119, 0.104, 0.161), (0.092, 0.086, 0.225), (0.076, 0.046, 0.107)]},
    "N": {"values": [100, 1000, 10000],
          "lora-ml": [(0.006, 0.005, 0.034), (0.003, 0.002, 0.061), (0.004, 0.004, 0.017)],
          "sr": [(0.132, 0.114, 0.171), (0.147, 0.109, 0.221), (0.115, 0.112, 0.165)]},
    "k": {"values": [1, 3, 5],
          "lora-ml": [(0.138, 0.100, 0.262), (0.010, 0.006, 0.055), (0.023, 0.009, 0.048)],
          "sr": [(0.354, 0.319, 0.646), (0.075, 0.073, 0.092), (0.085, 0.074, 0.108)]},
    "n": {"values": [100, 1000, 10000],
          "lora-ml": [(0.138, 0.100, 0.262), (0.093, 0.077, 0.117), (0.044, 0.043, 0.067)],
          "sr": [(0.354, 0.319, 0.646), (0.283, 0.261, 0.359), (0.151, 0.140, 0.299)]},
    "d": {"values": [5, 10, 20],
          "lora-ml": [(0.002, 0.001, 0.003), (0.005, 0.004, 0.010), (0.069, 0.050, 0.121)],
          "sr": [(0.004, 0.003, 0.021), (0.082, 0.082, 0.125), (0.483, 0.438, 0.690)]},
}


#: Confidence in the column assignment of each paper table (THEORY.md 9.4).
PAPER_TABLE_CONFIDENCE = {"T": "high", "N": "medium", "k": "medium", "n": "high", "d": "medium-high"}


#: Decimals of the paper's shallow tables (THEORY.md 9.4): ours are printed and compared
#: with the paper's ranges at this precision, so a printed tie never reads "no".
PAPER_DECIMALS = 3


def _shallow_points(config: dict, sweep: str) -> list[tuple[Any, Any]]:
    from empirics._shallow import ShallowConfig

    out = []
    for v in config["values"][sweep]:
        kw = dict(config["base"])
        kw[sweep] = v
        kw.update(retrain_epochs=config["retrain_epochs"], finetune_epochs=config["finetune_epochs"],
                  record_every=config["record_every"])
        out.append((v, ShallowConfig(**kw)))
    if sweep == "T" and config.get("T2_rank_3k", False) and 2 in config["values"]["T"]:
        kw = dict(config["base"], T=2, retrain_epochs=config["retrain_epochs"],
                  finetune_epochs=config["finetune_epochs"], record_every=config["record_every"])
        kw["finetune_rank"] = 3 * kw["k"]
        out.append(("2 (k'=3k)", ShallowConfig(**kw)))
    return out


def _shallow_chunk_unit(cfg: dict, seeds: list[int], threads: int | None = None, checkpoint: str | None = None,
                       progress: bool = False, init: str | None = None) -> dict:
    """Unit: one shallow configuration for a chunk of trials, both methods (THEORY.md 9.2).

    ``checkpoint`` and ``progress`` are hints (they change no number): the mid-unit
    checkpoint lets a unit that was interrupted, or whose worker died, restart from its
    last saved epoch. It is used only where its folder exists (a worker of a remote
    cluster without the driver's file system runs the unit from the start).
    """
    from empirics._shallow import INIT_STREAM, ShallowConfig, run_shallow_batched

    if init is not None and init != INIT_STREAM:
        raise ValueError(f"shallow unit asks for initialisation scheme {init!r}; this code draws {INIT_STREAM!r}")
    if checkpoint is not None and not Path(checkpoint).parent.is_dir():
        checkpoint = None
    res = run_shallow_batched(ShallowConfig(**cfg), [int(x) for x in seeds], progress=progress,
                              checkpoint=checkpoint, threads=threads)
    return {k: res[k] for k in ("curve", "curve_epochs", "final_mse")}


def _units_root(workdir: Path, config: dict) -> Path:
    # shared by all shallow figures and tables of the same output folder
    return Path(workdir).parent / ("shallow-units-smoke" if config.get("smoke") else "shallow-units")


def _run_shallow_units(points, seeds: list[int], units_root: Path, progress: bool, threads, chunks: int,
                       executor=None):
    """Results per sweep point, trials split into ``chunks`` units run by ``executor``.

    Trials are independent, so a point's trials may be computed in several batches and
    concatenated (in seed order) without changing any number; each chunk is its own
    resumable unit in the store ``units_root``. The default executor runs ``chunks``
    local processes (``chunks = 1``: everything in this process).
    """
    from empirics._shallow import INIT_STREAM
    from landscape.runtime.executor import LocalExecutor, Resources, Unit, run_units

    chunks_ = [list(c) for c in np.array_split(np.asarray(seeds), max(1, min(chunks, len(seeds)))) if len(c)]
    executor = _executor_or_default(executor, chunks)
    local = isinstance(executor, LocalExecutor)  # its workers draw one bar line each (Ray's do not)
    units_root = Path(units_root)
    units_root.mkdir(parents=True, exist_ok=True)
    units = []
    for _, cfg in points:
        for chunk in chunks_:
            seeds_c = [int(x) for x in chunk]
            # the init scheme is part of the key and config: units of another scheme are never reused
            key = "shallow-" + _key({"cfg": dataclasses.asdict(cfg), "seeds": seeds_c, "init": INIT_STREAM})
            units.append(Unit(key, _shallow_chunk_unit,
                              {"cfg": dataclasses.asdict(cfg), "seeds": seeds_c, "threads": threads,
                               "init": INIT_STREAM},
                              Resources(cpus=threads or 1),
                              hints={"checkpoint": str((units_root / f"{key}.ckpt.pt").resolve()),
                                     "progress": bool(progress and local)}))
    results = run_units(units, executor=executor, store=units_root, progress=progress, desc="shallow units")
    n = len(chunks_)
    merged = []
    for i in range(len(points)):
        part = results[i * n:(i + 1) * n]
        merged.append({
            "curve": np.concatenate([np.asarray(r["curve"]) for r in part], axis=1),
            "curve_epochs": np.asarray(part[0]["curve_epochs"]),
            "final_mse": np.concatenate([np.asarray(r["final_mse"]) for r in part], axis=1),
        })
    return merged


def compute_shallow_sweep(config: dict, workdir: Path, progress: bool, executor=None) -> dict:
    """One shallow-network sweep: fine-tuning curves and final MSE per value and method."""
    sweep = config["sweep"]
    seeds = trial_seeds(config["seed"], config["trials"])
    data: dict[str, Any] = {"sweep": sweep, "values": [], "seeds": seeds}
    points = _shallow_points(config, sweep)
    results = _run_shallow_units(points, seeds, _units_root(workdir, config), progress, config.get("threads"),
                                 int(config.get("workers", 1)), executor)
    for i, ((v, _), r) in enumerate(zip(points, results)):
        data["values"].append(v)
        data[f"curve_{i}"] = r["curve"]
        data[f"curve_epochs_{i}"] = r["curve_epochs"]
        data[f"final_mse_{i}"] = r["final_mse"]
    return data


def median_range_cell(trials) -> str:
    """A table cell: the median of the trials' final MSE and its central range (clipping
    round(0.2 n) trials each side, THEORY.md 9.4), as ``median (low, high)``."""
    return "{:.4f} ({:.4f}, {:.4f})".format(*_central(trials, 0.2))


def render_shallow_sweep(data: dict, out_dir: Path, stem: str) -> list[Path]:
    """Test MSE against fine-tuning epoch: median and central range over trials (THEORY.md 9.2, 9.4).

    Colour family = method (LoRA-ML blue and solid, SR orange and dashed; the two
    methods' bands never share a colour), shade = sweep value (darker: larger); the legend
    sits beside the axes, so no curve is covered.  A variant of a sweep value (shallow-T's
    ``"2 (k'=3k)"``) takes the shade of its number with its own line style and markers,
    never the shade of the largest value.  The title defines the central range.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4.4), layout="constrained")
    sweep = data["sweep"]
    values = list(data["values"])
    numeric = sorted({v for v in values if not isinstance(v, str)})
    variant_style = {"lora-ml": "-.", "sr": ":"}
    for m, method in enumerate(("lora-ml", "sr")):
        shades = _method_colors(method, len(numeric))
        for i, v in enumerate(values):
            ep = np.asarray(data[f"curve_epochs_{i}"])
            C = np.asarray(data[f"curve_{i}"])
            keep = _thin(ep.size)
            stats = np.array([_central(C[m][:, j], 0.2) for j in keep])
            style = dict(linestyle=METHOD_STYLE[method])
            label = f"{METHOD_LABELS[method]}, {sweep}={v}"
            if isinstance(v, str):  # a variant such as "2 (k'=3k)": shade of its number, own style
                base, _, rest = v.partition(" ")
                try:
                    shade = shades[numeric.index(type(numeric[0])(base))] if numeric else shades[0]
                except (ValueError, IndexError):
                    shade = "0.35"
                style = dict(linestyle=variant_style[method], marker="D", markevery=_marker_positions(
                    ep[keep], m, 2, per_curve=6), markersize=4, markerfacecolor="white")
                label = f"{METHOD_LABELS[method]}, {sweep}={base}, {rest.strip('()')}"
            else:
                shade = shades[numeric.index(v)]
            ax.plot(ep[keep], stats[:, 0], color=shade, linewidth=1.3, label=label, **style)
            ax.fill_between(ep[keep], stats[:, 1], stats[:, 2], color=shade, alpha=0.18, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("fine-tuning epoch")
    ax.set_ylabel("test MSE against the clean outputs\n(mean over the n fine-tuning inputs)")
    trials = np.asarray(data["curve_0"]).shape[1]
    ax.set_title(f"Shallow network, vary {_SWEEP_LABEL[sweep]}; line: median of {trials} trials,\n"
                 f"band: {_central_range_words(trials)}", fontsize=9.5)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0.0)
    lines = [f"# Shallow network, vary {sweep}: final test MSE, median (central range)", "",
             f"| {sweep} | LoRA-ML | SR |", "|---|---|---|"]
    for i, v in enumerate(values):
        F = np.asarray(data[f"final_mse_{i}"])
        cells = [median_range_cell(F[m]) for m in range(2)]
        lines.append(f"| {v} | {cells[0]} | {cells[1]} |")
    md = _write_md(out_dir, stem, "\n".join(lines))
    return _save(fig, out_dir, stem) + [md]


_SHALLOW_PAPER = {
    "seed": 613,
    "trials": 10,
    "base": {"T": 3, "d": 10, "k": 1, "N": 1000, "n": 100, "sigma": 0.1},
    "values": {"T": [2, 3, 5], "d": [5, 10, 20], "N": [100, 1000, 10000], "n": [100, 1000, 10000], "k": [1, 3, 5]},
    "retrain_epochs": 40000, "finetune_epochs": 15000, "record_every": 100,
    "T2_rank_3k": True,
    "smoke": False,
    # one torch thread: the steps are many small batched ops, where a second OpenMP thread
    # brings little and, on a busy machine, spin-waiting makes each op far slower
    "threads": 1,
    # trial chunks per sweep point, each one unit; the default local executor runs them in
    # as many processes (2 cores here)
    "workers": 2,
}


_SHALLOW_SMOKE = dict(_SHALLOW_PAPER, workers=1, trials=3, retrain_epochs=30, finetune_epochs=20, record_every=5, smoke=True,
                      base={"T": 3, "d": 4, "k": 1, "N": 30, "n": 10, "sigma": 0.1},
                      values={"T": [2, 3], "d": [3, 4], "N": [20, 30], "n": [10, 20], "k": [1, 2]})

for _s in SWEEPS:
    register(FigureSpec(f"shallow-{_s}", f"Shallow network: fine-tuning curves, vary {_s} (THEORY.md 9.2)",
                        compute_shallow_sweep, render_shallow_sweep, dict(_SHALLOW_PAPER, sweep=_s),
                        dict(_SHALLOW_SMOKE, sweep=_s)))


def compute_shallow_tables(config: dict, workdir: Path, progress: bool, executor=None) -> dict:
    """All five shallow sweeps' final MSE (shares finished units with the sweep figures)."""
    out: dict[str, Any] = {"sweeps": list(config["sweeps"]), "paper": PAPER_SHALLOW_TABLES}
    for s in config["sweeps"]:
        d = compute_shallow_sweep(dict(config, sweep=s), workdir, progress, executor)
        out[f"values_{s}"] = d["values"]
        for i in range(len(d["values"])):
            out[f"final_mse_{s}_{i}"] = d[f"final_mse_{i}"]
    return out


def shallow_table_rows(data: dict) -> list[dict]:
    """Rows (sweep, value, method, ours median/low/high, paper median/low/high, inside)."""
    rows = []
    for s in data["sweeps"]:
        paper = data["paper"].get(s, {})
        for i, v in enumerate(data[f"values_{s}"]):
            F = np.asarray(data[f"final_mse_{s}_{i}"])
            for m, method in enumerate(("lora-ml", "sr")):
                med, lo, hi = _central(F[m], 0.2)
                row = {"sweep": s, "value": v, "method": method, "median": med, "low": lo, "high": hi,
                       "paper": None, "inside": None}
                if v in paper.get("values", []):
                    p = paper[method][paper["values"].index(v)]
                    row["paper"] = list(p)
                    # at the paper's printed precision: a printed tie with a bound is inside
                    shown = round(med, PAPER_DECIMALS)
                    row["inside"] = bool(round(p[1], PAPER_DECIMALS) <= shown <= round(p[2], PAPER_DECIMALS))
                rows.append(row)
    return rows


def format_shallow_tables(data: dict, *, smoke: bool = False) -> str:
    """Markdown tables: ours (median (central range)) beside the paper's numbers."""
    lines = ["# Shallow-network results: final test MSE, median (central range) over trials",
             "",
             "Ours: this package (`figures shallow-tables`); central range = sorted values with round(0.2 n) "
             "removed on each side (THEORY.md 9.4). Paper: THEORY.md 9.4 (column assignment confidence in brackets). "
             "'in' = our median, rounded to the paper's three decimals, lies inside the paper's range. "
             "Sweeps in the order of the figures.", ""]
    rows = shallow_table_rows(data)
    for s in _figure_order(data["sweeps"]):
        conf = PAPER_TABLE_CONFIDENCE.get(s, "?")
        lines += [f"## vary {s} [paper assignment: {conf}]", "",
                  f"| {s} | method | ours | paper | in |", "|---|---|---|---|---|"]
        for r in rows:
            if r["sweep"] != s:
                continue
            q = PAPER_DECIMALS
            ours = f"{r['median']:.{q}f} ({r['low']:.{q}f}, {r['high']:.{q}f})"
            paper = "-" if r["paper"] is None else \
                f"{r['paper'][0]:.{q}f} ({r['paper'][1]:.{q}f}, {r['paper'][2]:.{q}f})"
            inside = "-" if r["inside"] is None else ("yes" if r["inside"] else "no")
            lines.append(f"| {r['value']} | {METHOD_LABELS[r['method']]} | {ours} | {paper} | {inside} |")
        lines.append("")
    lines += ["## Claims", ""]
    lines += claim_lines(shallow_claims(data), smoke=smoke)
    return "\n".join(lines)


def shallow_claims(data: dict) -> list[dict]:
    """Qualitative claims on the shallow tables: LoRA-ML below SR at every point with
    T >= 3 (median), and LoRA-ML improving with T (medians decreasing over numeric T)."""
    rows = shallow_table_rows(data)
    med = {(r["sweep"], str(r["value"]), r["method"]): r["median"] for r in rows}
    claims = []
    for (s, v, m), x in med.items():
        if m != "lora-ml":
            continue
        if s == "T" and not (v.isdigit() and int(v) >= 3):
            continue
        claims.append({"claim": f"LoRA-ML median < SR median at {s}={v}", "holds": bool(x < med[(s, v, "sr")])})
    if "T" in data["sweeps"]:
        ts = sorted(int(v) for v in map(str, data["values_T"]) if v.isdigit())
        ml = [med[("T", str(t), "lora-ml")] for t in ts]
        if len(ml) >= 2:
            claims.append({"claim": f"LoRA-ML improves with T (medians {', '.join(f'{x:.4f}' for x in ml)} "
                                    f"at T={ts})", "holds": bool(np.all(np.diff(ml) < 0))})
    return claims


def _figure_order(sweeps) -> list[str]:
    """``sweeps`` in the panel order of the figures (:data:`SWEEPS`)."""
    return [s for s in SWEEPS if s in sweeps] + [s for s in sweeps if s not in SWEEPS]


def render_shallow_tables(data: dict, out_dir: Path, stem: str) -> list[Path]:
    """Markdown table (also printed) and a figure comparing medians and ranges with the paper.

    Panels in the order of the shallow figures (T, d, N, n, k) with the same titles and
    the same method colours; the legend has a panel of its own.
    """
    text = format_shallow_tables(data, smoke=stem.endswith("-smoke"))
    md = _write_md(out_dir, stem, text)
    print(text)
    plt = _plt()
    sweeps = _figure_order(data["sweeps"])
    ncols = 2
    nrows = (len(sweeps) + 1 + ncols - 1) // ncols  # one slot for the legend
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH_IN, 2.9 * nrows), layout="constrained",
                             squeeze=False)
    rows = shallow_table_rows(data)
    colors = {m: _method_colors(m, 1)[0] for m in ("lora-ml", "sr")}
    handles = {}
    for ax, s in zip(axes.flat, sweeps):
        vals = [str(v) for v in data[f"values_{s}"]]
        for j, method in enumerate(("lora-ml", "sr")):
            rs = [r for r in rows if r["sweep"] == s and r["method"] == method]
            x = np.arange(len(rs)) + (j - 0.5) * 0.36
            med = np.array([r["median"] for r in rs])
            err = np.array([[r["median"] - r["low"] for r in rs], [r["high"] - r["median"] for r in rs]])
            handles[(method, "ours")] = ax.errorbar(x - 0.07, med, yerr=err, fmt="o", color=colors[method],
                                                    capsize=3, markersize=4.5)
            pr = [(k, r["paper"]) for k, r in enumerate(rs) if r["paper"] is not None]
            if pr:
                px = np.array([x[k] for k, _ in pr]) + 0.07
                pm = np.array([p[0] for _, p in pr])
                perr = np.array([[p[0] - p[1] for _, p in pr], [p[2] - p[0] for _, p in pr]])
                handles[(method, "paper")] = ax.errorbar(px, pm, yerr=perr, fmt="s", mfc="white",
                                                         color=colors[method], capsize=3, markersize=4.5)
        ax.set_xticks(np.arange(len(vals)))
        ax.set_xticklabels(vals, fontsize=8)
        ax.set_yscale("log")
        ax.set_title(f"vary {_SWEEP_LABEL[s]}", fontsize=9.5)
        ax.set_ylabel("final test MSE", fontsize=9)
        ax.grid(True, alpha=0.3)
    key = axes.flat[len(sweeps)]
    key.axis("off")
    order = [(m, w) for m in ("lora-ml", "sr") for w in ("ours", "paper") if (m, w) in handles]
    key.legend([handles[o] for o in order],
               [f"{METHOD_LABELS[m]}, {'this package' if w == 'ours' else 'paper (THEORY.md 9.4)'}"
                for m, w in order],
               loc="center", fontsize=9, frameon=False,
               title="Shallow network, final test MSE:\nmarker: median; bar: central range",
               title_fontsize=9.5)
    first = sweeps[0]
    n_trials = np.asarray(data[f"final_mse_{first}_0"]).shape[-1]
    key.text(0.5, 0.02, "ours: " + _central_range_words(n_trials).replace(" (", "\n(") +
             "\npaper: the range THEORY.md 9.4 reports", ha="center", va="bottom", fontsize=8,
             transform=key.transAxes)
    for ax in list(axes.flat)[len(sweeps) + 1:]:
        ax.axis("off")
    return [md] + _save(fig, out_dir, stem)


register(FigureSpec("shallow-tables", "Shallow network result tables (THEORY.md 9.4) beside the paper's numbers",
                    compute_shallow_tables, render_shallow_tables,
                    dict(_SHALLOW_PAPER, sweeps=["T", "N", "k", "n", "d"]),
                    dict(_SHALLOW_SMOKE, sweeps=["T", "N", "k", "n", "d"]), kind="table"))
