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

    lines = [f"# {title}: fine-tuned accuracy on the unseen task", ""] + _header(record)
    lines += ["| method | accuracy (last epoch) | accuracy (best epoch, official 'best') | paper (best epoch) |",
              "|---|---|---|---|"]
    for r in record["rows"]:
        paper = paper_cell(TABLE1.get(r["row"]), 2)
        lines.append(f"| {r['row']} | {_pct(r['accuracy'])} | {_pct(r['best_accuracy_over_epochs'])} | {paper} |")
    return "\n".join(lines + format_comparisons(record))


def format_language_table(record: dict, title: str = "Table 2 (language)") -> str:
    """Markdown: hits@1 per test persona (columns) for each method (rows)."""
    lines = [f"# {title}: hits@1 per test persona", ""] + _header(record)
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
    lines = ["# Table 3 (language): average hits@1 against LoRA rank", ""] + _header(any_rec)
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
    fig, ax = plt.subplots(figsize=(max(7.5, 1.2 * len(groups) * max(1, len(labels)) / 2 + 2), 4))
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
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=150)
    plt.close(fig)
    os.replace(tmp, path)  # atomic: a kill mid-write never leaves a truncated figure
    return path


def render_record(record: dict, out_dir: Path, stem: str, *, kind: str | None = None) -> list:
    """Write ``<stem>.md`` and ``<stem>.png`` for one record (vision or language)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = kind or record["experiment"]
    text = format_vision_table(record) if kind == "vision" else format_language_table(record)
    md = atomic_write_text(out_dir / f"{stem}.md", text + "\n")
    print(text)
    paper = None
    if kind == "vision":
        from empirics.real._paper import TABLE1

        groups = {"test task (8, 9)": {r["row"]: r["best_accuracy_over_epochs"] for r in record["rows"]}}
        paper = {"test task (8, 9)": TABLE1}
        title = "Vision: fine-tuned accuracy, best epoch (mean ± SE over seeds; paper: diamonds)"
    else:
        personas = list(record["rows"][0]["per_task"]) if record["rows"] else []
        groups = {p: {r["row"]: r["per_task"][p] for r in record["rows"]} for p in personas}
        title = "Language: hits@1 per test persona (mean ± SE over seeds)"
    chance = 0.5 if kind == "vision" else 1 / 20  # binary tasks; one reply among 20 candidates
    png = _bar_png(groups, "accuracy (%)", title, out_dir / f"{stem}.png", chance, paper) if record["rows"] else None
    return [md] + ([png] if png else [])


def render_rank_records(records: dict, out_dir: Path, stem: str) -> list:
    """Write ``<stem>.md`` and ``<stem>.png`` for the records of a LoRA rank sweep (rank -> record)."""
    text = format_rank_table(records)
    md = atomic_write_text(Path(out_dir) / f"{stem}.md", text + "\n")
    print(text)
    groups = {f"rank {k}": {r["row"]: r["accuracy"] for r in rec["rows"]} for k, rec in records.items()}
    png = _bar_png(groups, "average hits@1 (%)", "Language: LoRA rank sweep", Path(out_dir) / f"{stem}.png", 1 / 20)
    return [md, png]
