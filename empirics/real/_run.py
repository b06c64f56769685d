"""Run the real-data protocols through the PEFT-ML trainer and write result records.

One retraining per (method, seed), then each applicable fine-tuning on the unseen
task(s). Table rows (Tables 1-3 of the paper) pair the methods as

* LoRA fine-tuning: ``lora-ml``, ``sr``, ``reptile`` retraining;
* last-layer fine-tuning: ``last-layer-ml``, ``sr``, ``reptile`` retraining.

Each finished (method, seed) unit is written to ``<out>/units/`` at once, so an
interrupted run resumes without redoing it, and several processes (for example one per
seed on one GPU) can share an output folder; :func:`summarize` merges the units.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ROWS", "PAIRINGS", "COMPARISONS", "RunConfig", "VISION_PAPER", "LANGUAGE_PAPER", "run", "summarize",
           "stage_generator", "format_summary", "run_vision", "run_language", "make_units", "unit_config",
           "run_unit", "check_units", "paired_difference", "paper_rows"]

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
    rank: int = 1
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
    optimizer="adamw", weight_decay=0.01, batch_size=8, rank=8, lora_alpha=16, lora_dropout=0.1,
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


# ------------------------------------------------------------------------------------------
# families
# ------------------------------------------------------------------------------------------

def build_family(cfg: RunConfig, *, verbose: bool = True):
    """The vision or language family of ``cfg``, with its data on ``cfg.device``."""
    if cfg.experiment == "vision":
        from ._cifar import DEFAULT_ARCHIVE, load_cifar10
        from ._fmnist import load_fashion_mnist
        from ._vision import VisionFamily
        from ._vision_data import build_vision_tasks

        if cfg.dataset == "cifar10":
            arrays = load_cifar10(cfg.data_root, archive=cfg.archive or DEFAULT_ARCHIVE, cache=cfg.cache,
                                  verbose=verbose)
        elif cfg.dataset == "fashion-mnist":
            arrays = load_fashion_mnist(cfg.data_root, verbose=verbose)
        elif cfg.dataset == "random":  # smoke tests only: random pixels in the CIFAR-10 shape
            from ._fixtures import random_vision_arrays

            arrays = random_vision_arrays(np.random.default_rng(0))
        else:
            raise ValueError(f"dataset must be cifar10|fashion-mnist|random, got {cfg.dataset!r}")
        rng = np.random.default_rng(0)  # the subsample is part of the data, fixed across seeds
        tasks = build_vision_tasks(arrays, device=cfg.device, max_per_task=cfg.max_per_task,
                                   max_eval_per_task=cfg.max_eval_per_task, rng=rng)
        fam = VisionFamily(tasks, batch_size=cfg.batch_size, augment=cfg.augment, dim=cfg.width, depth=cfg.depth)
        fam.reader = arrays.reader
        return fam
    from ._convai2 import build_persona_split
    from ._text import LanguageFamily

    split = build_persona_split(cfg.valid_file, train_file=cfg.train_file, map_dir=cfg.map_dir,
                                n_test=cfg.n_test, n_retrain=cfg.n_retrain, selection=cfg.persona_selection)
    if verbose:
        print(split.note, file=sys.stderr)
    return LanguageFamily(split, model_path=cfg.model, batch_size=cfg.batch_size, max_length=cfg.max_length,
                          max_train_turns=cfg.max_per_task, max_eval_turns=cfg.max_eval_per_task,
                          device=cfg.device)


def _stage_configs(cfg: RunConfig, method: str, n_tasks: int):
    from .._trainer import StageConfig

    common = dict(optimizer=cfg.optimizer, weight_decay=cfg.weight_decay, device=cfg.device, bf16=cfg.bf16,
                  lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, schedule=cfg.schedule,
                  warmup_fraction=cfg.warmup_fraction)
    if method == "reptile":
        # one outer iteration per task visit; each outer epoch (n_tasks iterations) visits
        # every task once, in a shuffled order (the trainer's Reptile)
        rt = StageConfig(method="reptile", epochs=cfg.reptile_outer_epochs * n_tasks, lr=cfg.reptile_outer_lr,
                         reptile_inner_steps=cfg.reptile_inner_steps, reptile_inner_lr=cfg.reptile_inner_lr,
                         reptile_inner_optimizer=cfg.reptile_inner_optimizer, reptile_outer=cfg.reptile_outer,
                         rank=cfg.rank, validate_every=n_tasks, select_best=True, **common)
    else:
        step_per = (OFFICIAL_STEP_PER[cfg.experiment][method] if cfg.step_accounting == "official" else "round")
        rt = StageConfig(method=method, epochs=cfg.epochs, lr=cfg.lr, rank=cfg.rank, validate_every=1,
                         select_best=True, step_per=step_per,
                         lora_heads=bool(cfg.lora_ml_heads and method == "lora-ml"), **common)
    ft = {p: StageConfig(method=p, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr,
                         rank=cfg.finetune_rank or cfg.rank, lora_heads=bool(cfg.finetune_head and p == "lora"),
                         **common) for p in PAIRINGS[method] if p in cfg.peft}
    return rt, ft


def _compact_history(history: list) -> dict:
    keys = sorted({k for h in history for k in h if isinstance(h.get(k), (int, float)) and k != "epoch"})
    out = {"epoch": [h["epoch"] for h in history]}
    for k in keys:
        out[k] = [h.get(k) for h in history]
    if any("val" in h for h in history):
        out["val_accuracy_per_task"] = [[v.get("accuracy") for v in h["val"]] if "val" in h else None
                                        for h in history]
    return out


def _run_unit(cfg: RunConfig, family, method: str, seed: int, progress: bool) -> dict:
    from .._trainer import finetune, retrain

    n_tasks = len(family.retrain_tasks())
    rt_cfg, ft_cfgs = _stage_configs(cfg, method, n_tasks)
    t0 = time.perf_counter()
    res = retrain(family, dataclasses.replace(rt_cfg, progress=progress), stage_generator(seed, 0))
    rt_wall = time.perf_counter() - t0
    unit = {"retrain": method, "seed": seed, "retrain_wall_s": rt_wall, "best_epoch": res.best_epoch,
            "retrain_history": _compact_history(res.history), "finetune": {}}
    n_tests = len(getattr(family, "test_names", [None]))
    for pi, (peft, ft_cfg) in enumerate(ft_cfgs.items()):
        tests = []
        for ti in range(n_tests):
            if hasattr(family, "select_test"):
                family.select_test(ti)
            t1 = time.perf_counter()
            fr = finetune(family, res.model, dataclasses.replace(ft_cfg, progress=progress),
                          stage_generator(seed, 1, pi, ti), eval_every=1)
            per_epoch = [h["test"]["accuracy"] for h in fr.history if "test" in h and not h.get("final")]
            final = fr.history[-1]["test"]
            tests.append({"task": family.test_task().name, "accuracy": final["accuracy"], "loss": final["loss"],
                          "best_accuracy_over_epochs": max(per_epoch) if per_epoch else final["accuracy"],
                          "accuracy_per_epoch": per_epoch, "wall_s": time.perf_counter() - t1})
        unit["finetune"][peft] = tests
    unit["wall_s"] = time.perf_counter() - t0
    return unit


#: Configuration fields that never change a unit's result (left out of its key).
_NOT_IN_UNIT_KEY = ("seeds", "retrain", "note", "cache")
#: Fields added after the first keyed units: left out of a key while they hold the value
#: that reproduces the earlier behaviour (None / False), so those units stay valid.
_ADDED_FIELDS = ("lora_ml_heads", "finetune_head", "persona_selection")
#: Families built in this process, by unit configuration (units of one run share one).
_FAMILIES: dict = {}


def unit_config(cfg: RunConfig, method: str, seed: int) -> dict:
    """The full configuration of one (method, seed) unit: every setting that can change its
    result (all of ``cfg`` but the seed list, the method list, the free-text note and the
    cache folder), plus the method and the seed. Stored with the unit and compared on
    resume (:class:`landscape.runtime.executor.ResultStore`), so units of other settings are never
    reported as done."""
    d = dataclasses.asdict(cfg)
    for k in _NOT_IN_UNIT_KEY:
        d.pop(k)
    for k in _ADDED_FIELDS:
        if d[k] in (None, False):
            d.pop(k)
    d = json.loads(json.dumps(d, default=str))  # tuples -> lists: what a stored config reads back as
    return {"run": d, "method": method, "seed": int(seed)}


def _config_from_unit(run_cfg: dict) -> RunConfig:
    d = dict(run_cfg)
    d["peft"] = tuple(d["peft"])
    # a unit's method and seed are its own arguments; these two lists are not used by it
    return RunConfig(**d, retrain=("sr",), seeds=(0,))


def run_unit(run: dict, method: str, seed: int, *, progress: bool = False, verbose: bool = False) -> dict:
    """One retraining and its fine-tunings: the :class:`~landscape.runtime.executor.Unit` function.

    ``run`` is ``unit_config(...)["run"]``; the family (data on the device) is built once
    per process and reused by the units of the same configuration.
    """
    cfg = _config_from_unit(run)
    key = json.dumps(run, sort_keys=True)
    if key not in _FAMILIES:
        _FAMILIES.clear()  # one configuration's data at a time
        _FAMILIES[key] = build_family(cfg, verbose=verbose)
    family = _FAMILIES[key]
    unit = _run_unit(cfg, family, method, int(seed), progress)
    if verbose:
        accs = {p: [round(t["accuracy"], 4) for t in ts] for p, ts in unit["finetune"].items()}
        print(f"[{cfg.experiment}] {method} seed {seed}: best epoch {unit['best_epoch']}, "
              f"fine-tuned accuracy {accs} ({unit['wall_s']:.1f} s)", file=sys.stderr)
    return unit


def make_units(cfg: RunConfig, *, progress: bool = False, verbose: bool = False) -> list:
    """The :class:`~landscape.runtime.executor.Unit` list of ``cfg``: one per (method, seed),
    keyed ``<method>_seed<seed>``, with the full unit configuration."""
    import functools

    from landscape.runtime.executor import Resources, Unit

    gpus = 1.0 if str(cfg.device).startswith("cuda") else 0.0
    fn = functools.partial(run_unit, progress=progress, verbose=verbose)
    # seed-major order: an interrupted run has whole seeds (all rows of a seed) first
    return [Unit(key=f"{m}_seed{s}", fn=fn, config=unit_config(cfg, m, s), resources=Resources(cpus=1, gpus=gpus))
            for s in cfg.seeds for m in cfg.retrain]


def check_units(cfg: RunConfig, out: str | Path) -> list:
    """Keys of the units of ``cfg`` already finished in ``out``; raises
    :class:`~landscape.runtime.executor.ConfigMismatch` (a ``ValueError``) when ``out`` holds a
    unit of the same key computed with other settings. Trains nothing."""
    from landscape.runtime.store import ResultStore

    store = ResultStore(Path(out) / "units")
    return [u.key for u in make_units(cfg) if store.has(u)]


def run(cfg: RunConfig, out: str | Path, *, progress: bool = False, resume: bool = True,
        verbose: bool = True, compute: bool = True, executor=None, command: str | None = None) -> dict:
    """Run every (retraining method, seed) of ``cfg`` as units, write them and the record.

    Units go through :func:`landscape.runtime.executor.run_units` with a
    :class:`~landscape.runtime.executor.ResultStore` in ``<out>/units``, keyed by their full
    configuration (:func:`unit_config`): a finished unit is loaded, not recomputed, and a
    unit of the same name computed with other settings raises ``ConfigMismatch`` (a
    ``ValueError``) before any training starts.

    Parameters
    ----------
    resume : bool
        False: recompute (and overwrite) this configuration's units.
    compute : bool
        False: train nothing, only merge the units already in ``out`` (for example after
        several processes, one per seed, shared the folder).
    executor : landscape.runtime.executor.Executor or str, optional
        Where units run (default: in this process).
    command : str, optional
        The command line that produced the run, stored in the record. A merge-only call
        (``compute=False``) keeps the training wall time of an earlier record in ``out``.

    Returns
    -------
    dict
        The record written to ``<out>/<experiment>_record.json`` (see :func:`summarize`).
    """
    from landscape.runtime.store import ResultStore
    from landscape.runtime.executor import run_units

    from .._records import read_json, to_jsonable, write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "units")
    t0 = time.perf_counter()
    in_process = executor is None or getattr(executor, "workers", 0) == 1
    # stage progress bars only in this process (workers' bars would interleave)
    units = make_units(cfg, progress=progress and in_process, verbose=verbose)
    done = {u.key for u in units if store.has(u)}  # ConfigMismatch here, before any work
    cfg_file = out / f"{cfg.experiment}_config.json"
    if not compute:
        results = {u.key: store.load(u) for u in units if u.key in done}
        desc = read_json(cfg_file).get("family") if cfg_file.is_file() else None
    else:
        if not resume:
            for u in units:
                store.path(u.key).unlink(missing_ok=True)
            done = set()
        if verbose:
            for k in sorted(done):
                print(f"[{cfg.experiment}] {k}: done earlier (same configuration)", file=sys.stderr)
        todo = [u for u in units if u.key not in done]
        if todo:
            family = build_family(cfg, verbose=verbose)
            _FAMILIES.clear()
            _FAMILIES[json.dumps(todo[0].config["run"], sort_keys=True)] = family
            desc = family.describe()
            write_json(cfg_file, json.loads(json.dumps(to_jsonable(
                {"config": cfg, "family": desc, "setup_wall_s": time.perf_counter() - t0,
                 "reader": getattr(family, "reader", None)}), default=str)))
        else:
            desc = read_json(cfg_file).get("family") if cfg_file.is_file() else None
        vals = run_units(units, executor=executor, store=store, progress=progress and len(units) > 1,
                         desc=f"{cfg.experiment} units")
        results = {u.key: v for u, v in zip(units, vals)}
    record = summarize(results, cfg, family_description=desc)
    rec_file = out / f"{cfg.experiment}_record.json"
    if compute:
        record["total_wall_s"] = time.perf_counter() - t0
    elif rec_file.is_file():
        old = read_json(rec_file)
        if "total_wall_s" in old:
            record["total_wall_s"] = old["total_wall_s"]
    if command:
        record["command"] = command
    write_json(out / f"{cfg.experiment}_record.json", json.loads(json.dumps(to_jsonable(record), default=str)))
    return record


def _mean_se(values) -> dict:
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

    ``units`` maps unit key -> unit result (as :func:`run` collects them), is a list of
    unit results, or an output folder whose stored units of ``cfg`` are read (units of
    other settings there raise ``ConfigMismatch``); only units of ``cfg``'s methods and
    seeds are merged.
    """
    from .._records import provenance

    if isinstance(units, (str, Path)):
        from landscape.runtime.store import ResultStore

        store = ResultStore(Path(units) / "units")
        units = [store.load(u) for u in make_units(cfg) if store.has(u)]
    units = list(units.values()) if isinstance(units, dict) else list(units)
    units = [u for u in units if u is not None and u["seed"] in cfg.seeds and u["retrain"] in cfg.retrain]
    rows = []
    for method, peft in cfg.rows():
        mine = sorted((u for u in units if u["retrain"] == method and peft in u["finetune"]), key=lambda u: u["seed"])
        if not mine:
            continue
        tests = [t["task"] for t in mine[0]["finetune"][peft]]
        per_task = {name: _mean_se([u["finetune"][peft][i]["accuracy"] for u in mine])
                    for i, name in enumerate(tests)}
        per_task_best = {name: _mean_se([u["finetune"][peft][i]["best_accuracy_over_epochs"] for u in mine])
                         for i, name in enumerate(tests)}
        avg = _mean_se([np.mean([t["accuracy"] for t in u["finetune"][peft]]) for u in mine])
        avg_best = _mean_se([np.mean([t["best_accuracy_over_epochs"] for t in u["finetune"][peft]]) for u in mine])
        rows.append({"row": ROW_LABELS[(method, peft)], "retrain": method, "peft": peft,
                     "seeds": [u["seed"] for u in mine], "accuracy": avg, "best_accuracy_over_epochs": avg_best,
                     "per_task": per_task, "per_task_best": per_task_best,
                     "retrain_wall_s": [u["retrain_wall_s"] for u in mine],
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


def run_vision(out: str | Path, *, progress: bool = False, executor=None, **settings) -> dict:
    """Public entry: the vision experiment (Table 1) with ``settings`` overriding the paper
    protocol :data:`VISION_PAPER` (any :class:`RunConfig` field), written to ``out``.

    Example: ``run_vision("out/v", seeds=(1,), epochs=2, max_per_task=500, width=64)``.
    Returns the record (see :func:`run`).
    """
    cfg = dataclasses.replace(VISION_PAPER, **_tuples(settings))
    return run(cfg, out, progress=progress, executor=executor)


def run_language(out: str | Path, *, progress: bool = False, executor=None, **settings) -> dict:
    """Public entry: the language experiment (Tables 2, 3) with ``settings`` overriding
    :data:`LANGUAGE_PAPER`, written to ``out``. Returns the record (see :func:`run`)."""
    cfg = dataclasses.replace(LANGUAGE_PAPER, **_tuples(settings))
    return run(cfg, out, progress=progress, executor=executor)


def _tuples(settings: dict) -> dict:
    return {k: tuple(v) if k in ("seeds", "retrain", "peft") else v for k, v in settings.items()}
