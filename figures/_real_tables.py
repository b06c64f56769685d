"""Tables 1-3 of the paper (real data), registered in the figures registry.

This module computes them (one real-data run per table) and registers them; the
rendering is :mod:`empirics.real.tables`, shared with the bundle (every name of it is
also available here).

* ``table1`` -- vision (MLP-Mixer, CIFAR-10 class pairs): fine-tuned accuracy on the
  unseen task (8,9), mean +- standard error over seeds, six rows (LoRA-ML, SR + LoRA,
  Reptile + LoRA, Last-Layer-ML, SR + Last-Layer, Reptile + Last-Layer).
* ``table2`` -- language (ConvAI2 personas): hits@1 per test persona, mean +- SE over seeds.
* ``table3`` -- language, LoRA rank 1, 4, 8, 16 (LoRA rows only).

What a rendered table shows (the paper's numbers beside ours, the paired comparisons,
the differences of data and model from the paper) is described in :mod:`empirics.real.tables`.

The ``smoke`` configurations run on tiny generated stand-ins (random pixels, invented
dialogues, a random tiny BERT) so that they need neither the shared data nor a GPU.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from empirics.real.tables import (  # noqa: F401  (re-exported: the rendering used to live here)
    DATA_DIFFERENCES,
    PAPER_NUMBERS_NOTE,
    format_comparisons,
    format_language_table,
    format_rank_table,
    format_vision_table,
    render_rank_records,
    render_record,
)

from ._registry import FigureSpec, register

__all__ = ["PAPER_NUMBERS_NOTE", "format_comparisons", "format_vision_table", "format_language_table", "format_rank_table",
           "render_record"]

_VISION_PAPER_CFG = {"experiment": "vision"}


_VISION_SMOKE_CFG = {"experiment": "vision", "dataset": "random", "seeds": [1, 2], "epochs": 1,
                     "finetune_epochs": 1, "width": 8, "batch_size": 32, "reptile_outer_epochs": 1,
                     "reptile_inner_steps": 1}


_LANG_PAPER_CFG = {"experiment": "language"}


_LANG_SMOKE_CFG = {"experiment": "language", "fixture": True, "seeds": [0, 1], "epochs": 1, "finetune_epochs": 1,
                   "n_test": 1, "n_retrain": 2, "max_length": 24, "reptile_outer_epochs": 1,
                   "reptile_inner_steps": 1}


def _run_config(config: dict, workdir: Path):
    from empirics.real._run import LANGUAGE_PAPER, VISION_PAPER

    cfg = dict(config)
    fixture = cfg.pop("fixture", False)
    cfg.pop("ranks", None)
    base = VISION_PAPER if cfg.get("experiment", "vision") == "vision" else LANGUAGE_PAPER
    if fixture:
        from empirics.real._fixtures import write_parlai_dialogues, write_persona_map, write_tiny_bert

        fx = Path(workdir) / "fixture"
        rng = np.random.default_rng(0)
        if not (fx / "bert" / "config.json").is_file():
            write_tiny_bert(fx / "bert")
            write_parlai_dialogues(fx / "valid.txt", rng, episodes_per_persona=5)
            write_persona_map(fx / "maps")
        cfg.update(model=str(fx / "bert"), valid_file=str(fx / "valid.txt"), map_dir=str(fx / "maps"))
    for k in ("seeds", "retrain", "peft"):
        if k in cfg:
            cfg[k] = tuple(cfg[k])
    if "device" not in cfg:
        import torch

        cfg["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        cfg["bf16"] = cfg["device"] == "cuda"
    return dataclasses.replace(base, **cfg)


def _compute_one(config: dict, workdir: Path, progress: bool) -> dict:
    from empirics.real._run import run

    cfg = _run_config(config, workdir)
    return run(cfg, Path(workdir) / "run", progress=progress)


def compute_table1(config: dict, workdir: Path, progress: bool) -> dict:
    return {"record": _compute_one(config, workdir, progress)}


def compute_table2(config: dict, workdir: Path, progress: bool) -> dict:
    return {"record": _compute_one(config, workdir, progress)}


def compute_table3(config: dict, workdir: Path, progress: bool) -> dict:
    from empirics.real._run import run

    records = {}
    for r in config.get("ranks", [1, 4, 8, 16]):
        cfg = dataclasses.replace(_run_config(config, workdir), k=int(r), retrain=("lora-ml", "sr", "reptile"),
                                  peft=("lora",))
        records[str(r)] = run(cfg, Path(workdir) / f"rank{r}", progress=progress)
    return {"records": records}


def render_table1(data: dict, out_dir: Path, stem: str) -> list:
    return render_record(data["record"], out_dir, stem, kind="vision")


def render_table2(data: dict, out_dir: Path, stem: str) -> list:
    return render_record(data["record"], out_dir, stem, kind="language")


def render_table3(data: dict, out_dir: Path, stem: str) -> list:
    return render_rank_records(data["records"], out_dir, stem)


register(FigureSpec("table1", "Table 1: vision (MLP-Mixer, CIFAR-10 pairs), six PEFT-ML/SR/Reptile rows, mean ± SE",
                    compute_table1, render_table1, _VISION_PAPER_CFG, _VISION_SMOKE_CFG, kind="table"))
register(FigureSpec("table2", "Table 2: language (ConvAI2 personas), hits@1 per test persona, mean ± SE",
                    compute_table2, render_table2, _LANG_PAPER_CFG, _LANG_SMOKE_CFG, kind="table"))
register(FigureSpec("table3", "Table 3: language, LoRA rank 1/4/8/16",
                    compute_table3, render_table3, dict(_LANG_PAPER_CFG, ranks=[1, 4, 8, 16]),
                    dict(_LANG_SMOKE_CFG, ranks=[1, 2], seeds=[0]), kind="table"))
