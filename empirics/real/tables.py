"""Rendering of Tables 1-3 of the paper (real data): Markdown tables and bar charts.

* :func:`format_vision_table` -- vision (MLP-Mixer, CIFAR-10 class pairs): fine-tuned
  accuracy on the unseen task (8,9), mean +- standard error over seeds, six rows (LoRA-ML,
  SR + LoRA, Reptile + LoRA, Last-Layer-ML, SR + Last-Layer, Reptile + Last-Layer).
* :func:`format_language_table` -- language (ConvAI2 personas): hits@1 per test persona,
  mean +- SE over seeds.
* :func:`format_rank_table` -- language, LoRA rank 1, 4, 8, 16 (LoRA rows only).

The paper's own numbers (``empirics.real._paper``, copied from the paper's Tables 1-3)
are printed beside ours in every table, and the paired comparisons of the record
(per-seed differences, their mean, SE and a paired t-test p-value) below it. Every
rendered table states the differences of data and model from the paper (lossy JPEG
CIFAR-10 copy; MiniLM instead of RoBERTa; retraining personas from the valid file, the
original train file being unavailable).

It lives in :mod:`empirics.real` so that both the bundle (:mod:`empirics.real.bundle`)
and the figures registry (:mod:`figures._real_tables`, which computes the tables) use it
without an import from the top floor.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from landscape.runtime.atomic import atomic_write_text

__all__ = ["PAPER_NUMBERS_NOTE", "format_comparisons", "format_vision_table", "format_language_table", "format_rank_table",
           "render_record", "render_rank_records"]

PAPER_NUMBERS_NOTE = ("Paper column: the paper's reported mean ± standard error over 5 trials (one H200; "
                      "RoBERTa-base for language), from its Tables 1-3; ours is not at the paper's scale unless "
                      "the configuration above says so.")


DATA_DIFFERENCES = {
    "vision": [
        "CIFAR-10 copy decoded from JPEG quality 75 (lossy; the paper used the original pixels), unless a "
        "user's original cifar-10-batches-py folder is given.",
    ],
    "language": [
        "Default encoder: all-MiniLM-L6-v2 (6-layer BERT, 22.7M parameters); the paper used RoBERTa-base.",
        "The original ConvAI2 train file is not available: retraining personas are valid-file clusters "
        "disjoint from the 10 test personas; candidates are regenerated distractors.",
    ],
}


def _pct(ms: dict) -> str:
    from empirics.real._run import format_mean_se

    return format_mean_se(ms)


def _float(x) -> float:
    """A number of a record (strict-JSON records hold NaN as the string "nan"/"NaN" or null)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def format_comparisons(record: dict) -> list:
    """Markdown lines: the record's paired comparisons (row - baseline over common seeds)."""
    from empirics.real._run import format_difference, format_p

    comps = record.get("comparisons") or []
    if not comps:
        return []
    metric = "best_accuracy_over_epochs" if record.get("experiment") == "vision" else "accuracy"
    other = "accuracy" if metric != "accuracy" else "best_accuracy_over_epochs"
    names = {"accuracy": "last epoch", "best_accuracy_over_epochs": "best epoch"}
    lines = ["", "## Paired comparisons over seeds", "",
             "Per-seed difference row - baseline (percentage points; same seed = same initial weights and data), "
             "mean ± SE over the common seeds, two-sided paired t-test (scipy.stats.ttest_rel); n/a with one seed.",
             "", f"| fine-tuning | row | baseline | diff, {names[metric]} | p | diff, {names[other]} | p | "
             "per-seed diffs (" + names[metric] + ") | seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for c in comps:
        a, b = c[metric], c[other]
        diffs = ", ".join(f"{100 * _float(d):+.2f}" for d in a["differences"])
        lines.append(f"| {c['peft']} | {c['row']} | {c['baseline']} | {format_difference(a)} | "
                     f"{format_p(a['p_value'])} | {format_difference(b)} | {format_p(b['p_value'])} | {diffs} | "
                     f"{a['n']} |")
    return lines


def _header(record: dict) -> list:
    cfg = record.get("config", {})
    prov = record.get("provenance", {})
    lines = [f"Device: {prov.get('device_name') or prov.get('device')}; seeds {cfg.get('seeds')}; "
             f"retraining epochs {cfg.get('epochs')}, fine-tuning epochs {cfg.get('finetune_epochs')}; "
             f"max per task {cfg.get('max_per_task')}. Mean ± standard error over seeds, in percent.", ""]
    lines += [f"- {n}" for n in record.get("notes", []) if n]
    dataset = cfg.get("dataset", "cifar10")
    if record.get("experiment") == "vision" and dataset != "cifar10":
        lines.append(f"- Data set: {dataset} (an addition of this package; the paper's Table 1 is CIFAR-10)."
                     if dataset != "random" else "- Data: random pixels (smoke configuration), not a data set.")
    else:
        lines += [f"- {n}" for n in DATA_DIFFERENCES.get(record.get("experiment"), [])]
    lines += [f"- {PAPER_NUMBERS_NOTE}", ""]
    return lines


def format_vision_table(record: dict, title: str = "Table 1 (vision)") -> str:
    """Markdown: the six rows, ours beside the paper's numbers (its metric: best epoch)."""
    from empirics.real._paper import TABLE1, paper_cell

    lines = [f"# {_smoke_prefix(record)}{title}: fine-tuned accuracy on the unseen task", ""] + _header(record)
    lines += ["| method | accuracy (last epoch) | accuracy (best epoch, official 'best') | paper (best epoch) |",
              "|---|---|---|---|"]
    for r in record["rows"]:
        paper = paper_cell(TABLE1.get(r["row"]), 2)
        lines.append(f"| {r['row']} | {_pct(r['accuracy'])} | {_pct(r['best_accuracy_over_epochs'])} | {paper} |")
    return "\n".join(lines + format_comparisons(record))


def format_language_table(record: dict, title: str = "Table 2 (language)") -> str:
    """Markdown: hits@1 per test persona (columns) for each method (rows)."""
    lines = [f"# {_smoke_prefix(record)}{title}: hits@1 per test persona", ""] + _header(record)
    rows = record["rows"]
    if not rows:
        return "\n".join(lines + ["(no finished runs)"])
    from empirics.real._paper import TABLE2, paper_cell

    personas = list(rows[0]["per_task"])
    lines += ["| method | " + " | ".join(personas) + " | average | paper (average) |",
              "|---|" + "---|" * (len(personas) + 2)]
    for r in rows:
        cells = [_pct(r["per_task"][p]) for p in personas]
        paper = paper_cell(TABLE2[r["row"]]["average"], 1) if r["row"] in TABLE2 else "n/a"
        lines.append(f"| {r['row']} | " + " | ".join(cells) + f" | {_pct(r['accuracy'])} | {paper} |")
    lines += ["", "Paper, per test persona T1..T10 (its personas; ours are named by cluster above):", "",
              "| method | " + " | ".join(f"T{i}" for i in range(1, 11)) + " | average |", "|---|" + "---|" * 11]
    for label, v in TABLE2.items():
        lines.append(f"| {label} | " + " | ".join(paper_cell(c, 0) for c in v["per_persona"]) +
                     f" | {paper_cell(v['average'], 1)} |")
    return "\n".join(lines + format_comparisons(record))


def format_rank_table(records: dict) -> str:
    """Markdown: average hits@1 of the LoRA rows for each LoRA rank."""
    any_rec = next(iter(records.values()))
    lines = [f"# {_smoke_prefix(any_rec)}Table 3 (language): average hits@1 against LoRA rank", ""] + _header(any_rec)
    from empirics.real._paper import TABLE3, paper_cell

    labels = [r["row"] for r in any_rec["rows"]]
    lines += ["| rank | " + " | ".join(labels) + " | " + " | ".join(f"paper {lab}" for lab in labels) + " |",
              "|---|" + "---|" * (2 * len(labels))]
    for rank, rec in records.items():
        by = {r["row"]: r for r in rec["rows"]}
        cells = [_pct(by[lab]["accuracy"]) if lab in by else "-" for lab in labels]
        paper = TABLE3.get(int(rank), {})
        lines.append(f"| {rank} | " + " | ".join(cells) + " | " +
                     " | ".join(paper_cell(paper.get(lab), 1) for lab in labels) + " |")
    return "\n".join(lines)


def is_smoke(record: dict) -> bool:
    """True for a record of generated stand-in data (the smoke configurations)."""
    cfg = record.get("config", {})
    return cfg.get("dataset") == "random" or bool(cfg.get("fixture"))


def _smoke_prefix(record: dict) -> str:
    return "SMOKE run (generated stand-in data, not a result): " if is_smoke(record) else ""


def _or_all(x) -> str:
    return "all" if x is None else str(x)


def describe_run(record: dict) -> str:
    """One line saying what run a record is: smoke, reduced-scale or paper-scale; device;
    seeds and the sizes that were reduced.  Two records of different runs give different
    lines, so their images can be told apart."""
    from empirics.real._run import LANGUAGE_PAPER, VISION_PAPER

    cfg = record.get("config", {})
    prov = record.get("provenance", {})
    kind = record.get("experiment", cfg.get("experiment", "vision"))
    paper = VISION_PAPER if kind == "vision" else LANGUAGE_PAPER
    device = prov.get("device_name") or prov.get("device") or cfg.get("device", "?")
    fields = [("epochs", "retraining epochs"), ("finetune_epochs", "fine-tuning epochs"),
              ("max_per_task", "items per task"), ("width", "width"), ("batch_size", "batch")]
    if kind != "vision":
        fields = [f for f in fields if f[0] not in ("width",)] + [("n_retrain", "retraining personas"),
                                                                   ("n_test", "test personas")]
    reduced = [f"{label} {cfg.get(key)} (paper {_or_all(getattr(paper, key, None))})" for key, label in fields
               if key in cfg and cfg.get(key) != getattr(paper, key, cfg.get(key))]
    seeds = cfg.get("seeds") or []
    head = ("SMOKE run on generated stand-in data, not a result" if is_smoke(record)
            else ("reduced-scale" if reduced else "paper-scale") + f" {str(device).split(':')[0].upper()} run")
    line = f"{head}; seeds {', '.join(map(str, seeds))}"
    if reduced:
        line += "; " + ", ".join(reduced)
    return line


def vision_task_label(record: dict) -> str:
    """The test task's classes by name, e.g. ``test task: ship (8) vs truck (9), CIFAR-10``."""
    from empirics.real._cifar import CIFAR10_CLASSES
    from empirics.real._fmnist import FMNIST_CLASSES
    from empirics.real._vision_data import TEST_PAIR

    dataset = record.get("config", {}).get("dataset", "cifar10")
    names = {"cifar10": (CIFAR10_CLASSES, "CIFAR-10"), "fashion_mnist": (FMNIST_CLASSES, "Fashion-MNIST")}
    a, b = TEST_PAIR
    if dataset not in names:
        return f"test task: classes {a} vs {b} ({dataset})"
    cls, data_name = names[dataset]
    return f"test task: {cls[a]} ({a}) vs {cls[b]} ({b}), {data_name}"


def _bar_png(rows_by_group: dict, ylabel: str, title: str, path: Path, chance: float | None = None,
             paper: dict | None = None) -> Path:
    """Grouped bars (mean ± SE), the paper's values as black diamonds where given
    (``paper``: group -> row label -> (mean, se) in percent), legend outside the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(rows_by_group)
    labels = sorted({lab for g in groups for lab in rows_by_group[g]}, key=lambda s: list(
        rows_by_group[groups[0]]).index(s) if s in rows_by_group[groups[0]] else 99)
    fig, ax = plt.subplots(figsize=(max(7.5, 1.2 * len(groups) * max(1, len(labels)) / 2 + 2),
                                    4 + 0.18 * title.count("\n")))
    width = 0.8 / max(len(labels), 1)
    for j, lab in enumerate(labels):
        x = np.arange(len(groups)) + (j - (len(labels) - 1) / 2) * width
        m = [100 * rows_by_group[g][lab]["mean"] if lab in rows_by_group[g] else np.nan for g in groups]
        e = [100 * np.nan_to_num(_float(rows_by_group[g][lab]["se"])) if lab in rows_by_group[g] else 0
             for g in groups]
        ax.bar(x, m, width, yerr=e, capsize=3, label=lab)
        if paper:
            pm = [paper.get(g, {}).get(lab, (np.nan, np.nan))[0] for g in groups]
            ax.plot(x, pm, "kD", ms=5, label="paper" if j == 0 else None)
    if chance is not None:
        ax.axhline(100 * chance, color="k", ls=":", lw=1, label=f"chance ({100 * chance:.0f} %)")
    ax.set_xticks(np.arange(len(groups)))
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 3 else 0, ha="right" if len(groups) > 3 else "center")
    ax.set_ylabel(ylabel)
    fig.suptitle(title, fontsize=8.5)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=150)
    plt.close(fig)
    os.replace(tmp, path)  # atomic: a kill mid-write never leaves a truncated figure
    return path


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def render_record(record: dict, out_dir: Path, stem: str, *, kind: str | None = None) -> list:
    """Write ``<stem>.md`` and ``<stem>.png`` for one record (vision or language)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = kind or record["experiment"]
    text = format_vision_table(record) if kind == "vision" else format_language_table(record)
    run_line = _wrap(describe_run(record), 100)
    md = atomic_write_text(out_dir / f"{stem}.md", text + "\n")
    print(text)
    paper = None
    if kind == "vision":
        from empirics.real._paper import TABLE1

        task = vision_task_label(record)
        groups = {task: {r["row"]: r["best_accuracy_over_epochs"] for r in record["rows"]}}
        paper = {task: TABLE1}
        title = (f"Vision, {task}: fine-tuned accuracy, best epoch\n(mean ± SE over seeds; paper: "
                 f"diamonds)\n{run_line}")
    else:
        personas = list(record["rows"][0]["per_task"]) if record["rows"] else []
        groups = {p: {r["row"]: r["per_task"][p] for r in record["rows"]} for p in personas}
        title = f"Language: hits@1 per test persona (mean ± SE over seeds)\n{run_line}"
    chance = 0.5 if kind == "vision" else 1 / 20  # binary tasks; one reply among 20 candidates
    png = _bar_png(groups, "accuracy (%)", title, out_dir / f"{stem}.png", chance, paper) if record["rows"] else None
    return [md] + ([png] if png else [])


def render_rank_records(records: dict, out_dir: Path, stem: str) -> list:
    """Write ``<stem>.md`` and ``<stem>.png`` for the records of a LoRA rank sweep (rank -> record)."""
    text = format_rank_table(records)
    md = atomic_write_text(Path(out_dir) / f"{stem}.md", text + "\n")
    print(text)
    groups = {f"rank {k}": {r["row"]: r["accuracy"] for r in rec["rows"]} for k, rec in records.items()}
    any_rec = next(iter(records.values()))
    title = f"Language: LoRA rank sweep, average hits@1\n{_wrap(describe_run(any_rec), 100)}"
    png = _bar_png(groups, "average hits@1 (%)", title, Path(out_dir) / f"{stem}.png", 1 / 20)
    return [md, png]
