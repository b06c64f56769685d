"""Merging finished units into a record: per-row mean +- SE over seeds, the paired
comparisons between rows (paired t-tests), the paper's numbers beside ours, and the
plain-text table of a record.
"""
from __future__ import annotations

import dataclasses
import math
import numpy as np

from ._config import (LANGUAGE_NOTES, ROW_LABELS, VISION_NOTES, RunConfig, heads_text, reptile_text, schedule_text,
                      steps_text)

__all__ = ["COMPARISONS", "COMPARED_METRICS", "mean_se", "paired_difference", "summarize", "format_mean_se",
           "paper_rows", "format_p", "format_difference", "format_summary"]


def mean_se(values) -> dict:
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "se": se, "n": int(len(v)), "values": v.tolist()}


#: Paired comparisons of the record: (method row, baseline row), per fine-tuning method.
#: The first four answer the paper's question (PEFT-ML vs SR and Reptile); the last two
#: its second claim (SR beats Reptile).
COMPARISONS = ((("lora-ml", "lora"), ("sr", "lora")), (("lora-ml", "lora"), ("reptile", "lora")),
               (("last-layer-ml", "last-layer"), ("sr", "last-layer")),
               (("last-layer-ml", "last-layer"), ("reptile", "last-layer")),
               (("sr", "lora"), ("reptile", "lora")), (("sr", "last-layer"), ("reptile", "last-layer")))
#: Metrics compared (per-seed averages over the test tasks).
COMPARED_METRICS = ("accuracy", "best_accuracy_over_epochs")


def paired_difference(a: dict, b: dict) -> dict:
    """Paired comparison of two rows over their common seeds.

    ``a``, ``b`` map seed -> value. Returns the seeds, the per-seed differences ``a - b``,
    their mean and standard error (ddof 1), and the two-sided paired t-test p-value
    (``scipy.stats.ttest_rel``; equal to a one-sample t-test of the differences). With
    fewer than 2 common seeds, or differences of zero spread, SE / p are NaN.
    """
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    out = {"seeds": seeds, "differences": d.tolist(), "n": len(seeds),
           "mean": float(d.mean()) if len(d) else float("nan"), "se": float("nan"), "p_value": float("nan"),
           "t": float("nan")}
    if len(d) >= 2:
        out["se"] = float(d.std(ddof=1) / math.sqrt(len(d)))
        if out["se"] > 0:
            from scipy import stats

            res = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds])
            out["t"], out["p_value"] = float(res.statistic), float(res.pvalue)
    return out


def summarize(units, cfg: RunConfig, *, family_description: dict | None = None) -> dict:
    """Merge finished units into a record with per-row mean +- SE and paired comparisons.

    ``units`` maps unit key -> unit result (as :func:`run` collects them) or is a list of
    unit results (:func:`empirics.real._run.summarize` also reads an output folder); only
    units of ``cfg``'s methods and seeds are merged.
    """
    from .._records import provenance

    units = list(units.values()) if isinstance(units, dict) else list(units)
    units = [u for u in units if u is not None and u["seed"] in cfg.seeds and u["retrain"] in cfg.retrain]
    rows = []
    for method, peft in cfg.rows():
        mine = sorted((u for u in units if u["retrain"] == method and peft in u["finetune"]), key=lambda u: u["seed"])
        if not mine:
            continue
        tests = [t["task"] for t in mine[0]["finetune"][peft]]
        per_task = {name: mean_se([u["finetune"][peft][i]["accuracy"] for u in mine])
                    for i, name in enumerate(tests)}
        per_task_best = {name: mean_se([u["finetune"][peft][i]["best_accuracy_over_epochs"] for u in mine])
                         for i, name in enumerate(tests)}
        avg = mean_se([np.mean([t["accuracy"] for t in u["finetune"][peft]]) for u in mine])
        avg_best = mean_se([np.mean([t["best_accuracy_over_epochs"] for t in u["finetune"][peft]]) for u in mine])
        rows.append({"row": ROW_LABELS[(method, peft)], "retrain": method, "peft": peft,
                     "seeds": [u["seed"] for u in mine], "accuracy": avg, "best_accuracy_over_epochs": avg_best,
                     "per_task": per_task, "per_task_best": per_task_best,
                     "retrain_wall_s": [u["retrain_wall_s"] for u in mine],
                     # optimizer steps of each seed's retraining (units written before the field: None)
                     "retrain_steps": [u.get("retrain_steps") for u in mine],
                     "best_epoch": [u["best_epoch"] for u in mine],
                     "per_seed": {k: {str(u["seed"]): float(np.mean([t[k] for t in u["finetune"][peft]]))
                                      for u in mine} for k in COMPARED_METRICS}})
    by = {(r["retrain"], r["peft"]): r for r in rows}
    comparisons = []
    for a, b in COMPARISONS:
        if a in by and b in by:
            c = {"row": ROW_LABELS[a], "baseline": ROW_LABELS[b], "peft": a[1]}
            for k in COMPARED_METRICS:
                pa = {int(s): v for s, v in by[a]["per_seed"][k].items()}
                pb = {int(s): v for s, v in by[b]["per_seed"][k].items()}
                c[k] = paired_difference(pa, pb)
            comparisons.append(c)
    notes = list(VISION_NOTES if cfg.experiment == "vision" else LANGUAGE_NOTES)
    notes[1] = notes[1].format(schedule=schedule_text(cfg), steps=steps_text(cfg), reptile=reptile_text(cfg),
                               heads=heads_text(cfg))
    if cfg.experiment == "vision":
        notes[0] = notes[0].format(width=cfg.width, depth=cfg.depth)
    if cfg.experiment == "language":
        model = (family_description or {}).get("model") or cfg.model or "all-MiniLM-L6-v2"
        notes[0] = notes[0].format(model=model)
    if cfg.experiment == "language" and family_description:
        notes.insert(0, family_description.get("note", ""))
    if cfg.note:
        notes.insert(0, cfg.note)
    return {"kind": "loraml.real", "experiment": cfg.experiment, "config": dataclasses.asdict(cfg),
            "family": family_description, "rows": rows, "comparisons": comparisons, "notes": notes,
            "paper": paper_rows(cfg.experiment),
            "schedule": {"name": cfg.schedule, "warmup_fraction": cfg.warmup_fraction,
                         "description": schedule_text(cfg)},
            "metric": ("fine-tuned test accuracy after the last fine-tuning epoch (also the maximum over "
                       "epochs, the official code's 'best')" if cfg.experiment == "vision" else
                       "hits@1 among 20 candidates on the held-out dialogues of each test persona, after "
                       "the last fine-tuning epoch (also the maximum over epochs)"),
            "provenance": provenance(device=cfg.device)}


def format_mean_se(ms: dict) -> str:
    """``mean ± SE`` in percent; the SE of a single seed is undefined and shown as n/a."""
    try:
        se = float(ms.get("se"))  # a JSON record may hold null or a "NaN" string
    except (TypeError, ValueError):
        se = float("nan")
    se_txt = f"{100 * se:.2f}" if np.isfinite(se) else "n/a"
    return f"{100 * ms['mean']:.2f} ± {se_txt}"


def paper_rows(experiment: str) -> dict:
    """The paper's numbers for ``experiment`` by row label (percent; see :mod:`._paper`)."""
    from . import _paper

    if experiment == "vision":
        return {"metric": _paper.TABLE1_METRIC, "source": _paper.SOURCE,
                "rows": {k: list(v) for k, v in _paper.TABLE1.items()}}
    return {"metric": _paper.TABLE2_METRIC, "source": _paper.SOURCE,
            "rows": {k: list(v["average"]) for k, v in _paper.TABLE2.items()}}


def format_p(p) -> str:
    """A p-value for a table: 3 significant digits, ``n/a`` when undefined."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "n/a"
    return f"{p:.3g}" if np.isfinite(p) else "n/a"


def format_difference(c: dict) -> str:
    """``mean ± SE`` of paired differences, in percentage points."""
    return format_mean_se({"mean": c["mean"], "se": c["se"]}) if np.isfinite(c["mean"]) else "n/a"


def format_summary(record: dict) -> str:
    """Plain-text table of a record (mean +- SE over seeds, in percent), the paper's numbers
    beside ours, and the paired comparisons (differences in percentage points)."""
    from ._paper import paper_cell

    digits = 2 if record["experiment"] == "vision" else 1
    paper = (record.get("paper") or paper_rows(record["experiment"]))
    lines = [f"{record['experiment']}: " + "; ".join(n for n in record["notes"] if n)[:3000], ""]
    lines.append(f"{'method':24s} {'accuracy %':>16s} {'best-epoch acc %':>18s} {'paper %':>14s}  seeds")
    for r in record["rows"]:
        a, b = r["accuracy"], r["best_accuracy_over_epochs"]
        pc = paper_cell(paper["rows"].get(r["row"]), digits)
        lines.append(f"{r['row']:24s} {format_mean_se(a):>16s} {format_mean_se(b):>18s} {pc:>14s}  {r['seeds']}")
    lines.append(f"paper column: {paper['metric']} ({paper['source']})")
    comps = record.get("comparisons") or []
    if comps:
        lines += ["", "paired comparisons over seeds (row - baseline, percentage points; paired t-test, two-sided):",
                  f"{'row':16s} {'baseline':22s} {'last-epoch diff':>16s} {'p':>8s} {'best-epoch diff':>16s} "
                  f"{'p':>8s}  n"]
        for c in comps:
            a, b = c["accuracy"], c["best_accuracy_over_epochs"]
            lines.append(f"{c['row']:16s} {c['baseline']:22s} {format_difference(a):>16s} {format_p(a['p_value']):>8s} "
                         f"{format_difference(b):>16s} {format_p(b['p_value']):>8s}  {a['n']}")
    return "\n".join(lines)

