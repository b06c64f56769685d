"""The real-data protocols' configuration: :class:`RunConfig`, the paper's settings
(:data:`VISION_PAPER`, :data:`LANGUAGE_PAPER`), the table rows and their pairings, the
plain-words notes of a record, and the per-stage generators (:func:`stage_generator`).

Imports no torch at import time (the CLI reads it to check arguments).
"""
from __future__ import annotations

from dataclasses import dataclass

from .._renamed import k_for_rank

import numpy as np

__all__ = ["ROWS", "PAIRINGS", "ROW_LABELS", "SCHEDULES", "PAPER_SCHEDULES", "STEP_ACCOUNTING", "OFFICIAL_STEP_PER",
           "RunConfig", "VISION_PAPER", "LANGUAGE_PAPER", "VISION_NOTES", "LANGUAGE_NOTES", "steps_text",
           "heads_text", "reptile_text", "schedule_text", "stage_generator"]

#: (retraining method, fine-tuning PEFT) rows of the paper's tables, in display order.
ROWS = (("lora-ml", "lora"), ("sr", "lora"), ("reptile", "lora"),
        ("last-layer-ml", "last-layer"), ("sr", "last-layer"), ("reptile", "last-layer"))
#: Which fine-tuning methods follow each retraining method.
PAIRINGS = {"lora-ml": ("lora",), "last-layer-ml": ("last-layer",), "sr": ("lora", "last-layer"),
            "reptile": ("lora", "last-layer")}
#: Learning-rate schedules; mirrors ``empirics._trainer.SCHEDULES`` (not imported here:
#: this module does not import torch at import time).
SCHEDULES = ("constant", "linear", "cosine")
#: Per-experiment schedule defaults of the official code. Vision: ``CosineAnnealingLR`` to
#: 0 in every stage (``vision/train_utils.py``). ConvAI2: ``get_linear_schedule_with_warmup``
#: with ``num_warmup_steps = 0.1 * batches of one task * epochs`` (``convai/lora-ml.py``,
#: ``convai/lora.py``); the trainer takes one optimizer step per round of one batch per
#: task, so that is 10% of its steps.
PAPER_SCHEDULES = {"vision": ("cosine", 0.0), "language": ("linear", 0.1)}
#: Optimizer-step accounting of retraining (``RunConfig.step_accounting``):
#:
#: * ``round`` (default): every method takes one optimizer step per round of one batch of
#:   each task, on the summed loss -- the objectives (1), (5), (6) of THEORY.md section 1
#:   are sums over the tasks, and all methods then take the same number of steps on the
#:   same data per step, so a difference between rows is one of objective, not of step
#:   count or schedule length.
#: * ``official``: the official code's accounting, per experiment and method
#:   (:data:`OFFICIAL_STEP_PER`): one step per task batch where it steps per batch.
STEP_ACCOUNTING = ("round", "official")
#: The official code's optimizer steps: vision SR steps once per batch of the pooled data
#: (``train_standard``: 157 batches x 100 epochs = 15,700 steps), LoRA-ML and
#: Last-Layer-ML once per round of the 4 task batches (``task_idx == 3``); language SR,
#: LoRA-ML and Last-Layer-ML once per task batch (``convai/*.py``).
OFFICIAL_STEP_PER = {"vision": {"sr": "batch", "lora-ml": "round", "last-layer-ml": "round"},
                     "language": {"sr": "batch", "lora-ml": "batch", "last-layer-ml": "batch"}}
ROW_LABELS = {("lora-ml", "lora"): "LoRA-ML", ("sr", "lora"): "SR + LoRA", ("reptile", "lora"): "Reptile + LoRA",
              ("last-layer-ml", "last-layer"): "Last-Layer-ML", ("sr", "last-layer"): "SR + Last-Layer",
              ("reptile", "last-layer"): "Reptile + Last-Layer"}


@k_for_rank
@dataclass(frozen=True)
class RunConfig:
    """Hyperparameters of one real-data experiment (defaults: the vision paper protocol).

    The paper's values are in THEORY.md 9.5; ``VISION_PAPER`` and ``LANGUAGE_PAPER``
    hold them. Size-reduction fields (``max_per_task`` ...) exist for CPU runs.

    ``schedule`` and ``warmup_fraction`` (``None``: the experiment's default of
    :data:`PAPER_SCHEDULES`, cosine for vision, linear with 10% warmup for language)
    apply to every stage: retraining, fine-tuning, and Reptile's outer step size (see
    :class:`~empirics._trainer.StageConfig`).
    """

    experiment: str = "vision"
    retrain: tuple = ("lora-ml", "sr", "reptile", "last-layer-ml")
    peft: tuple = ("lora", "last-layer")
    seeds: tuple = (1, 2, 3, 4, 5)
    device: str = "cpu"
    bf16: bool = False
    epochs: int = 100
    finetune_epochs: int = 100
    lr: float = 1e-4
    finetune_lr: float = 5e-4
    optimizer: str = "adam"
    weight_decay: float = 1e-5
    batch_size: int = 256
    k: int = 1
    finetune_rank: int | None = None
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    reptile_outer_epochs: int = 5
    reptile_inner_steps: int = 20
    reptile_inner_lr: float = 1e-2
    reptile_outer_lr: float = 0.5
    reptile_inner_optimizer: str = "sgd"
    reptile_outer: str = "interpolate"
    step_accounting: str = "round"
    # data
    dataset: str = "cifar10"
    data_root: str | None = None
    archive: str | None = None
    cache: str | None = None
    max_per_task: int | None = None
    max_eval_per_task: int | None = None
    augment: bool = True
    width: int = 512
    depth: int = 1
    # language
    model: str | None = None
    valid_file: str | None = None
    train_file: str | None = None
    map_dir: str | None = None
    n_test: int = 10
    n_retrain: int = 10
    max_length: int = 128
    note: str = ""
    schedule: str | None = None
    warmup_fraction: float | None = None
    # added after the first keyed units; None resolves per experiment (see __post_init__)
    lora_ml_heads: bool | None = None
    finetune_head: bool | None = None
    persona_selection: str | None = None

    def __post_init__(self):
        if self.experiment not in ("vision", "language"):
            raise ValueError(f"experiment must be vision|language, got {self.experiment!r}")
        schedule, warmup = PAPER_SCHEDULES[self.experiment]
        if self.schedule is None:  # frozen: resolve the experiment's default in place
            object.__setattr__(self, "schedule", schedule)
        if self.warmup_fraction is None:
            object.__setattr__(self, "warmup_fraction", warmup if self.schedule != "constant" else 0.0)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.warmup_fraction and self.schedule == "constant":
            raise ValueError("a warmup fraction > 0 needs schedule linear or cosine, not constant")
        bad = [m for m in self.retrain if m not in PAIRINGS]
        if bad:
            raise ValueError(f"unknown retraining method(s) {bad}; choose from {tuple(PAIRINGS)}")
        bad = [p for p in self.peft if p not in ("lora", "last-layer")]
        if bad:
            raise ValueError(f"unknown PEFT method(s) {bad}; choose lora|last-layer")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        lang = self.experiment == "language"
        # language defaults as the official ConvAI2 code (per-task heads with LoRA-ML, a fresh
        # head with LoRA fine-tuning, the official persona reader); vision: LoRA only
        for name, default in (("lora_ml_heads", lang), ("finetune_head", lang),
                              ("persona_selection", "official" if lang else None)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if lang and self.persona_selection not in ("official", "normalized"):
            raise ValueError(f"persona selection must be official|normalized, got {self.persona_selection!r}")
        if self.lora_ml_heads and not self.finetune_head and "lora-ml" in self.retrain:
            raise ValueError("LoRA-ML with per-task heads needs a fresh head in LoRA fine-tuning "
                             "(its retrained base keeps no trained shared head)")
        if self.step_accounting not in STEP_ACCOUNTING:
            raise ValueError(f"step accounting must be one of {STEP_ACCOUNTING}, got {self.step_accounting!r}")
        if self.reptile_inner_optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"Reptile inner optimizer must be sgd|adam|adamw, got {self.reptile_inner_optimizer!r}")
        if self.reptile_outer not in ("interpolate", "adam", "adamw"):
            raise ValueError(f"Reptile outer step must be interpolate|adam|adamw, got {self.reptile_outer!r}")

    def rows(self) -> list:
        return [r for r in ROWS if r[0] in self.retrain and r[1] in self.peft]


#: THEORY.md 9.5: vision (official ``vision/scripts``); cosine annealing as the official code.
VISION_PAPER = RunConfig()
#: THEORY.md 9.5: ConvAI2 (official ``convai/scripts``): AdamW lr 5e-5, batch 8, 10 epochs,
#: LoRA rank 8, alpha 16, dropout 0.1; Reptile outer lr 1e-4, 20 inner steps; the
#: fine-tuning lr 1e-4 of ``convai/scripts/lora.sh``; linear warmup (10%) and decay.
#: Reptile's inner loop as ``convai/reptile.py``: a fresh AdamW at the retraining lr 5e-5
#: (``--lr``) for every task visit.
#:
#: Reptile's outer step (both experiments): the interpolation
#: ``theta <- theta + eps (phi - theta)`` of Nichol et al. with eps = 0.5 annealed to 0 by
#: the stage's schedule. Neither official value carries over: the official outer step is
#: Adam (vision, lr 1e-5) / AdamW (language, lr 1e-4) on the pseudo-gradient
#: ``(theta - phi) / T``. An Adam step moves each weight by at most about its lr, so the
#: official vision Reptile (5 outer epochs x 4 tasks = 20 outer steps) moves every weight
#: by at most ~2e-4 in all: the retrained model stays at its random initialisation. eps
#: has two degenerate ends, eps -> 0 (never leaves the initialisation) and eps = 1
#: (theta = the last task's inner solution, sequential fine-tuning); 0.5 is the midpoint,
#: not a tuned value. ``reptile_outer="adam"|"adamw"`` runs the official step instead.
LANGUAGE_PAPER = RunConfig(
    experiment="language", seeds=(0, 1, 2, 3, 4), epochs=10, finetune_epochs=10, lr=5e-5, finetune_lr=1e-4,
    optimizer="adamw", weight_decay=0.01, batch_size=8, k=8, lora_alpha=16, lora_dropout=0.1,
    reptile_outer_epochs=10, reptile_inner_steps=20, reptile_inner_lr=5e-5, reptile_outer_lr=0.5,
    reptile_inner_optimizer="adamw",
)

VISION_NOTES = (
    "Vision: MLP-Mixer (patch 4, width {width}, depth {depth}; the paper: 512, 1) on binary class-pair tasks, "
    "label = class mod 2; "
    "retraining pairs (0,1),(2,3),(4,5),(6,7) validated on the test split, test task (8,9).",
    "Differences from the paper: learning rate {schedule} (the official code: cosine annealing to 0, "
    "stepped once per epoch); {steps}; {reptile}.",
)
LANGUAGE_NOTES = (
    "Language: pretrained encoder {model} (the paper: RoBERTa-base) scoring (history, candidate) "
    "pairs; accuracy = hits@1 among 20 candidates.",
    "Differences from the paper: learning rate {schedule} (official: linear warmup over 10% of one task's "
    "batches x epochs, then linear decay over a horizon stretched by --sm, 6.67 in lora-ml.sh, so it does not "
    "reach 0); {heads}; {steps}; {reptile}; candidates scored in float32 (ties at the top count as "
    "1/k of a hit: uniform random tie-breaking in expectation); dropout masks are drawn per "
    "batch from the run's generator (the forward runs in a forked, reseeded RNG), so language runs are "
    "bitwise reproducible on CPU for a seed.",
)


def steps_text(cfg: RunConfig) -> str:
    """Plain words for the optimizer-step accounting of ``cfg`` (records' notes)."""
    if cfg.step_accounting == "official":
        per = OFFICIAL_STEP_PER[cfg.experiment]
        return ("optimizer steps as the official code: " + ", ".join(
            f"{m} one per {'task batch' if v == 'batch' else 'round of one batch per task (summed losses)'}"
            for m, v in per.items()))
    return ("optimizer steps: every method one step per round of one batch per task on the summed loss "
            "(the official code steps once per task batch in SR" + (
                "" if cfg.experiment == "vision" else ", LoRA-ML and Last-Layer-ML") + ": --step-accounting official)")


def heads_text(cfg: RunConfig) -> str:
    """Plain words for the classification heads of LoRA-ML and LoRA fine-tuning."""
    ml = ("LoRA-ML retrains one LoRA adapter and one classification head per task (official)" if cfg.lora_ml_heads
          else "LoRA-ML retrains per-task LoRA adapters on a shared head (LoRA also on the head's Linear layers; "
               "the official code: per-task heads)")
    ft = ("LoRA fine-tuning trains a fresh classification head together with LoRA (official)" if cfg.finetune_head
          else "LoRA fine-tuning keeps the retrained head (LoRA on it; the official code: a fresh head)")
    return f"{ml}; {ft}"


def reptile_text(cfg: RunConfig) -> str:
    """Plain words for Reptile's inner and outer steps (records' notes)."""
    inner = f"{cfg.reptile_inner_steps} inner {cfg.reptile_inner_optimizer} steps at lr {cfg.reptile_inner_lr:g}"
    if cfg.reptile_outer == "interpolate":
        outer = (f"outer step theta <- theta + eps (phi - theta), eps = {cfg.reptile_outer_lr:g} "
                 "(no official value: the official outer step is Adam on the pseudo-gradient)")
    else:
        outer = (f"outer step {cfg.reptile_outer} at lr {cfg.reptile_outer_lr:g} on the pseudo-gradient "
                 "(theta - phi)/T, as the official code")
    return (f"Reptile: {cfg.reptile_outer_epochs} outer epochs, each visiting every task once in a shuffled "
            f"order, {inner}, {outer}")


def schedule_text(cfg: RunConfig) -> str:
    """Plain words for the learning-rate schedule of ``cfg`` (used in the records' notes)."""
    warm = (f"linear warmup over {100 * cfg.warmup_fraction:g}% of the optimizer steps, then "
            if cfg.warmup_fraction else "")
    return {"constant": "constant",
            "linear": f"{warm}linear decay to 0 over each stage's optimizer steps",
            "cosine": f"{warm}cosine annealing to 0 over each stage's optimizer steps"}[cfg.schedule] + (
        " (Reptile: its outer step size eps follows it)" if cfg.schedule != "constant" else "")


def stage_generator(seed: int, *keys: int):
    """A torch Generator for one stage, derived from (seed, keys) by ``SeedSequence``.

    Retraining uses keys ``(0,)`` for every method, so all methods of a seed start from
    the same initial weights (paired comparison).
    """
    import torch

    state = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))

