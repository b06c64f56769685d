"""Figure 1 (THEORY.md 9.1): the linear model, LoRA-ML against SR fine-tuning curves in
five sweeps, and its variant with every official-code deviation switched on (9.5).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ._registry import FigureSpec, register
from ._sweeps import (_SWEEP_LABEL, METHOD_LABELS, METHOD_STYLE, PAGE_WIDTH_IN, SWEEPS, VALUE_MARKERS, _executor_or_default,
                      _key, _marker_positions, _method_colors, _plt, _save, _thin, _write_md, claim_lines, trial_seeds)

def _linear_points(config: dict) -> list[tuple[str, Any, Any]]:
    from empirics._linear import LinearConfig

    base = dict(config["base"])
    base.update(outer_steps=config["outer_steps"], inner_steps=config["inner_steps"], sr_epochs=config["sr_epochs"],
                record_every=config["record_every"])
    out = []
    for sweep in SWEEPS:
        for v in config["values"][sweep]:
            kw = dict(base)
            kw.update(config.get("sweep_overrides", {}).get(sweep, {}))
            kw[sweep] = v
            kw["finetune_iters"] = config["finetune_iters"][sweep]
            out.append((sweep, v, LinearConfig(**kw)))
    return out


def _linear_group_unit(points: list[dict], seeds: list[int], options: dict) -> list[dict]:
    """Unit: one batch of figure-1 points sharing a :meth:`LinearConfig.shape_key`.

    ``run_linear_batched`` advances exactly such a group in one stack, so splitting a
    sweep into these units changes no number (THEORY.md 9.1).
    """
    from empirics._linear import LinearConfig, LinearOptions, run_linear_batched

    res = run_linear_batched([LinearConfig(**p) for p in points], [seeds] * len(points), LinearOptions(**options))
    return [{"loss_sum": r["loss_sum"], "iterations": r["iterations"], "A_err": r["A_err"]} for r in res]


def compute_figure1(config: dict, workdir: Path, progress: bool, executor=None) -> dict:
    """Figure 1: LoRA-ML vs SR on the linear model, five sweeps (THEORY.md 9.1).

    The distinct sweep points are grouped by batch shape; each group is one unit
    (:func:`_linear_group_unit`) run by ``executor`` (default: this process) and stored
    under ``workdir/units``, so an interrupted run resumes with the finished groups.
    """
    from empirics._linear import LinearOptions
    from landscape.runtime.executor import Resources, Unit, run_units

    options = LinearOptions(**config.get("options", {}))
    pts = _linear_points(config)
    seeds = trial_seeds(config["seed"], config["trials"])
    unique: dict[str, Any] = {}
    for _, _, cfg in pts:
        unique.setdefault(_key(dataclasses.asdict(cfg)), cfg)
    groups: dict[tuple, list[str]] = {}
    for k, cfg in unique.items():
        groups.setdefault(cfg.shape_key(), []).append(k)
    units = []
    for members in groups.values():
        ucfg = {"points": [dataclasses.asdict(unique[k]) for k in members], "seeds": seeds,
                "options": dataclasses.asdict(options)}
        units.append(Unit(f"linear-{_key(ucfg)}", _linear_group_unit, ucfg, Resources(cpus=1)))
    out = run_units(units, executor=_executor_or_default(executor, config.get("workers", 1)),
                    store=Path(workdir) / "units", progress=progress, desc="figure-1 groups")
    res = {k: r for members, rs in zip(groups.values(), out) for k, r in zip(members, rs)}
    data: dict[str, Any] = {"points": [], "seeds": seeds, "options": dataclasses.asdict(options)}
    for i, (sweep, v, cfg) in enumerate(pts):
        r = res[_key(dataclasses.asdict(cfg))]
        data[f"loss_sum_{i}"] = r["loss_sum"]
        # per-sample metric = loss_sum / config["n"] (not stored twice)
        data[f"iterations_{i}"] = r["iterations"]
        data[f"A_err_{i}"] = r["A_err"]
        data["points"].append({"sweep": sweep, "value": v, "config": dataclasses.asdict(cfg)})
    data["plot_max_iter"] = config.get("plot_max_iter", {})
    return data


#: Figure 1 panels whose curves are the per-sample error (sum over the n inputs divided
#: by n): when n itself varies, the summed loss mostly shows its n-scaling.
PER_SAMPLE_SWEEPS = ("n",)


#: Human names of the official code's deviations (:class:`empirics._linear.LinearOptions`).
OFFICIAL_DEVIATIONS = {"noise_std_squared": "noise std sigma^2 (not sigma)",
                       "symmetric_a_star": "symmetrised A*",
                       "sr_stray_adapters": "untrained adapters inside SR",
                       "shared_finetune_init": "one fine-tuning init per method"}


def figure1_deviations(options: dict) -> list[str]:
    """Names of the official-code deviations switched on in ``options`` (empty: the paper's protocol)."""
    defaults = {"noise_std_squared": False, "symmetric_a_star": False, "sr_stray_adapters": False,
                "shared_finetune_init": True}
    return [OFFICIAL_DEVIATIONS[k] for k, v in defaults.items() if k in (options or {}) and options[k] != v]


def render_figure1(data: dict, out_dir: Path, stem: str) -> list[Path]:
    """Five panels on a 3 x 2 grid a page holds: test-task error against fine-tuning
    iteration, mean and min-max band over trials (THEORY.md 9.1).

    Colour family = method (LoRA-ML blue and solid, SR orange and dashed), shade = sweep
    value, marker = sweep value (markers staggered per curve, so curves that coincide
    stay visible); each panel's legend sits above its axes, so no curve is covered. The
    "vary n" panel shows the per-sample error (:data:`PER_SAMPLE_SWEEPS`), the others the
    code's metric summed over the n = 100 inputs; each y-label says which, and that the
    error is measured on the n fine-tuning inputs themselves (in-sample).  Each panel's
    x-range is its sweep's number of fine-tuning iterations, as in the paper, and its
    x-label says so; a figure with official-code deviations says which in its title.
    """
    plt = _plt()
    fig, axes = plt.subplots(3, 2, figsize=(PAGE_WIDTH_IN, 10.4), layout="constrained")
    max_iter = data.get("plot_max_iter", {}) or {}
    deviations = figure1_deviations(data.get("options", {}))
    for ax, sweep in zip(axes.flat, SWEEPS):
        idx = [i for i, p in enumerate(data["points"]) if p["sweep"] == sweep]
        per_sample = sweep in PER_SAMPLE_SWEEPS
        handles = {m: [] for m in ("lora-ml", "sr")}
        x_end = 0
        for method_index, method in enumerate(("lora-ml", "sr")):
            shades = _method_colors(method, len(idx))
            for c, i in enumerate(idx):
                p = data["points"][i]
                its = np.asarray(data[f"iterations_{i}"])
                L = np.asarray(data[f"loss_sum_{i}"])
                if per_sample:
                    L = L / p["config"]["n"]
                keep = np.flatnonzero(its <= max_iter.get(sweep, its.max()))
                keep = keep[_thin(keep.size)]
                curve = L[method_index][:, keep]
                x_end = max(x_end, int(its[keep][-1]))
                marks = _marker_positions(its[keep], method_index * len(idx) + c, 2 * len(idx))
                (h,) = ax.plot(its[keep], curve.mean(0), METHOD_STYLE[method], color=shades[c], linewidth=1.3,
                               marker=VALUE_MARKERS[c % len(VALUE_MARKERS)], markevery=marks, markersize=4.5,
                               markerfacecolor="white" if method == "sr" else shades[c],
                               label=f"{METHOD_LABELS[method]}, {sweep}={p['value']}")
                ax.fill_between(its[keep], curve.min(0), curve.max(0), color=shades[c], alpha=0.18, linewidth=0)
                handles[method].append(h)
        ax.set_yscale("log")
        runs = {data["points"][i]["config"]["finetune_iters"] for i in idx}
        shown = f"fine-tuning iteration (run: {max(runs)}" + (f"; first {x_end} shown)" if x_end < max(runs)
                                                              else ")")
        ax.set_xlabel(shown)
        n_fixed = {data["points"][i]["config"]["n"] for i in idx}
        if per_sample:
            ax.set_ylabel("in-sample test error per input:\nsum over the n fine-tuning inputs / n")
        else:
            ax.set_ylabel(f"in-sample test error, sum over\nthe n = {', '.join(map(str, sorted(n_fixed)))} "
                          "fine-tuning inputs")
        ax.grid(True, which="major", alpha=0.3)
        # columns: LoRA-ML values | SR values, above the axes
        ax.legend(handles=handles["lora-ml"] + handles["sr"], ncol=2, fontsize=7.5, loc="lower center",
                  bbox_to_anchor=(0.5, 1.0), frameon=False, title=f"vary {_SWEEP_LABEL[sweep]}",
                  title_fontsize=9, handlelength=2.2, borderaxespad=0.2)
    key = axes.flat[len(SWEEPS)]
    key.axis("off")
    trials = np.asarray(data["loss_sum_0"]).shape[1]
    if deviations:
        fig.suptitle("Figure 1 with the official code's deviations (THEORY.md 9.5):\n" + "; ".join(deviations),
                     fontsize=9.5, color="darkred")
    else:
        fig.suptitle("Figure 1, the paper's protocol (THEORY.md 9.1)", fontsize=9.5)
    key.text(0.02, 0.98,
             "Linear model (THEORY.md 9.1)\n\n"
             "blue, solid, filled marks: LoRA-ML\norange, dashed, open marks: SR\n"
             "darker shade: larger value\nmarker o, s, ^: 1st, 2nd, 3rd value\n\n"
             f"line: mean over {trials} trials\nband: min to max over trials\n\n"
             r"test error $\|(A^\star_{T+1}-\hat A-UV^\top)X\|_F^2$" "\n"
             "on the same n inputs X the adapter was\nfine-tuned on (in-sample, not held out)\n\n"
             "x-ranges differ: each sweep runs its\nown number of fine-tuning iterations\n(as in the paper)",
             va="top", ha="left", fontsize=8.5, transform=key.transAxes)
    md = _write_md(out_dir, stem, format_figure1_summary(data, smoke=stem.endswith("-smoke")))
    return _save(fig, out_dir, stem) + [md]


def figure1_claims(data: dict) -> list[dict]:
    """The paper's qualitative claims on Figure 1's final losses, with the numbers.

    * LoRA-ML is far below SR (factor > 10 on means, and every LoRA-ML trial below every
      SR trial) at every sweep point with T >= 3 (Cor 4 vs Prop 1);
    * SR gets worse as d grows (Prop 2: the floor grows like d - k').
    """
    claims = []
    final = {}
    for i, p in enumerate(data["points"]):
        L = np.asarray(data[f"loss_sum_{i}"])[:, :, -1]
        final[(p["sweep"], p["value"])] = L
        if p["config"]["T"] >= 3:
            ok = bool(L[0].mean() * 10 < L[1].mean() and L[0].max() < L[1].min())
            claims.append({"claim": f"LoRA-ML << SR at {p['sweep']}={p['value']}", "holds": ok,
                           "lora_ml_mean": float(L[0].mean()), "sr_mean": float(L[1].mean())})
    d_vals = sorted(v for (sw, v) in final if sw == "d")
    sr_d = [float(final[("d", v)][1].mean()) for v in d_vals]
    if len(sr_d) >= 2:
        claims.append({"claim": "SR worsens with d", "holds": bool(np.all(np.diff(sr_d) > 0)), "d": d_vals,
                       "sr_mean": sr_d})
    return claims


def format_figure1_summary(data: dict, *, smoke: bool = False) -> str:
    """Markdown: final test loss per sweep point (mean over trials) and the claims."""
    lines = ["# Figure 1 (linear model): final fine-tuning loss, mean over trials", "",
             "| sweep | value | LoRA-ML (sum) | SR (sum) | LoRA-ML per sample | SR per sample | SR / LoRA-ML |",
             "|---|---|---|---|---|---|---|"]
    for i, p in enumerate(data["points"]):
        L = np.asarray(data[f"loss_sum_{i}"])[:, :, -1].mean(1)
        n = p["config"]["n"]
        lines.append(f"| {p['sweep']} | {p['value']} | {L[0]:.4g} | {L[1]:.4g} | {L[0] / n:.3g} | {L[1] / n:.3g} | "
                     f"{L[1] / L[0]:.3g} |")
    lines += ["", "## Claims", ""]
    lines += claim_lines(figure1_claims(data), smoke=smoke)
    return "\n".join(lines)


_LINEAR_PAPER = {
    "seed": 2025,
    "trials": 5,
    "base": {"T": 3, "d": 10, "k": 1, "N": 5000, "n": 100, "sigma": 0.1},
    "values": {"T": [2, 3, 5], "d": [5, 10, 20], "N": [100, 1000, 10000], "n": [100, 1000, 10000], "k": [1, 2, 3]},
    # Table 9: the k row uses N = 1000 (the official code uses 5000; THEORY.md 9.5 item 6)
    "sweep_overrides": {"k": {"N": 1000}},
    "outer_steps": 3000, "inner_steps": 10, "sr_epochs": 3000,
    "finetune_iters": {"T": 10000, "d": 1400, "N": 1000, "n": 1000, "k": 10000},
    # the official plotting code truncates the k panel at 1000 iterations
    "plot_max_iter": {"k": 1000},
    "record_every": 10,
    "options": {},
}


_LINEAR_SMOKE = dict(_LINEAR_PAPER, trials=2, outer_steps=15, inner_steps=2, sr_epochs=15, record_every=5,
                     finetune_iters={s: 20 for s in SWEEPS}, plot_max_iter={},
                     values={"T": [2, 3], "d": [3, 5], "N": [50, 100], "n": [20, 40], "k": [1, 2]},
                     base={"T": 3, "d": 6, "k": 1, "N": 100, "n": 20, "sigma": 0.1})

register(FigureSpec("figure1", "Figure 1: linear model, LoRA-ML vs SR fine-tuning curves, five sweeps (THEORY.md 9.1)",
                    compute_figure1, render_figure1, _LINEAR_PAPER, _LINEAR_SMOKE))

#: The official code's protocol: noise std sigma**2, symmetrised A*, stray SR adapters,
#: one fine-tuning init per method, and the k row with N = 5000 (THEORY.md 9.5).
_OFFICIAL_OPTIONS = {"noise_std_squared": True, "symmetric_a_star": True, "sr_stray_adapters": True,
                     "shared_finetune_init": False}
register(FigureSpec("figure1-official", "Figure 1 with every official-code deviation switched on (THEORY.md 9.5)",
                    compute_figure1, render_figure1, dict(_LINEAR_PAPER, options=_OFFICIAL_OPTIONS, sweep_overrides={}),
                    dict(_LINEAR_SMOKE, options=_OFFICIAL_OPTIONS)))
