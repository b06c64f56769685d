"""The protocol both vision engines run, as public names: the sequential trainer
(:mod:`empirics._trainer` through :func:`train_unit`) and the batched engine
(:mod:`empirics.real._batched`) build their stages, histories and units from here.

* :func:`stage_plan`: the retraining stage of a method and the fine-tuning stages that
  follow it (:class:`~empirics._trainer.StageConfig` each), from a :class:`RunConfig`;
* :func:`compact_history`: the history format of a unit (one list per logged field);
* :func:`train_unit`: one (method, seed) unit -- retraining, then every fine-tuning on
  every test task -- by the sequential trainer; its result is *the unit format*::

      {"retrain": method, "seed": seed, "retrain_wall_s": s, "best_epoch": e or None,
       "retrain_steps": retrain_steps(...), "retrain_history": compact_history(...),
       "finetune": {peft: [finetune_entry(...) per test task]}, "wall_s": s}

  the batched engine adds ``"engine": "batched"`` and its group's wall times;
* :func:`finetune_entry`: one fine-tuning's result in that format;
* :func:`retrain_steps`: the optimizer steps a retraining stage takes;
* :func:`build_family`: the vision or language family of a :class:`RunConfig`.

Pinned by the equality tests (``tests/test_real_batched.py``: a batched seed equals
:func:`train_unit` on the same generators).
"""
from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np

from ._config import OFFICIAL_STEP_PER, PAIRINGS, RunConfig, stage_generator

__all__ = ["build_family", "stage_plan", "compact_history", "train_unit", "finetune_entry", "retrain_steps"]


def retrain_steps(stage, family) -> int:
    """Optimizer steps of a retraining ``stage`` (a ``StageConfig``) on ``family``'s tasks:
    Reptile's inner steps (``epochs`` outer iterations x ``reptile_inner_steps``; its outer
    updates are not counted), else ``epochs`` x rounds of one batch per task (the longest
    task's batches) x T when one step is taken per task batch."""
    if stage.method == "reptile":
        return int(stage.epochs * stage.reptile_inner_steps)
    tasks = list(family.retrain_tasks())
    rounds = max(t.num_batches("train") for t in tasks)
    return int(stage.epochs * rounds * (len(tasks) if stage.step_per == "batch" else 1))


def finetune_entry(task: str, accuracy: float, loss: float, accuracy_per_epoch, wall_s: float) -> dict:
    """One fine-tuning's result in the unit format: final test accuracy and loss, the
    accuracy after every epoch and its maximum (the official code's "best")."""
    per = [float(a) for a in accuracy_per_epoch]
    return {"task": task, "accuracy": float(accuracy), "loss": float(loss),
            "best_accuracy_over_epochs": max(per) if per else float(accuracy),
            "accuracy_per_epoch": per, "wall_s": float(wall_s)}


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


def stage_plan(cfg: RunConfig, method: str, n_tasks: int):
    """The stages of one unit: ``(retraining StageConfig, {peft: fine-tuning StageConfig})``.

    Retraining keeps the best average-validation epoch (validated every epoch; Reptile
    once per outer epoch of ``n_tasks`` iterations); the fine-tunings are those of
    :data:`PAIRINGS` ``[method]`` that ``cfg.peft`` asks for, in that order (their index is
    the fine-tuning's generator key).
    """
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
                         k=cfg.k, validate_every=n_tasks, select_best=True, **common)
    else:
        step_per = (OFFICIAL_STEP_PER[cfg.experiment][method] if cfg.step_accounting == "official" else "round")
        rt = StageConfig(method=method, epochs=cfg.epochs, lr=cfg.lr, k=cfg.k, validate_every=1,
                         select_best=True, step_per=step_per,
                         lora_heads=bool(cfg.lora_ml_heads and method == "lora-ml"), **common)
    ft = {p: StageConfig(method=p, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr,
                         k=cfg.finetune_rank or cfg.k, lora_heads=bool(cfg.finetune_head and p == "lora"),
                         **common) for p in PAIRINGS[method] if p in cfg.peft}
    return rt, ft


def compact_history(history: list) -> dict:
    """A stage's per-epoch records (``[{"epoch": 1, "train_loss": ..., "val": [...]}, ...]``)
    as the unit format stores them: ``{"epoch": [...], <numeric field>: [...],
    "val_accuracy_per_task": [[per task] or None, ...]}`` (a missing value is ``None``)."""
    keys = sorted({k for h in history for k in h if isinstance(h.get(k), (int, float)) and k != "epoch"})
    out = {"epoch": [h["epoch"] for h in history]}
    for k in keys:
        out[k] = [h.get(k) for h in history]
    if any("val" in h for h in history):
        out["val_accuracy_per_task"] = [[v.get("accuracy") for v in h["val"]] if "val" in h else None
                                        for h in history]
    return out


def train_unit(cfg: RunConfig, family, method: str, seed: int, progress: bool = False) -> dict:
    """One (method, seed) unit by the sequential trainer: retrain with the generator
    ``stage_generator(seed, 0)``, then fine-tune ``stage_generator(seed, 1, peft index,
    test index)`` on every test task; returns the unit format (module docstring)."""
    from .._trainer import finetune, retrain

    n_tasks = len(family.retrain_tasks())
    rt_cfg, ft_cfgs = stage_plan(cfg, method, n_tasks)
    t0 = time.perf_counter()
    res = retrain(family, dataclasses.replace(rt_cfg, progress=progress), stage_generator(seed, 0))
    rt_wall = time.perf_counter() - t0
    unit = {"retrain": method, "seed": seed, "retrain_wall_s": rt_wall, "best_epoch": res.best_epoch,
            "retrain_steps": retrain_steps(rt_cfg, family), "retrain_history": compact_history(res.history),
            "finetune": {}}
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
            tests.append(finetune_entry(family.test_task().name, final["accuracy"], final["loss"], per_epoch,
                                        time.perf_counter() - t1))
        unit["finetune"][peft] = tests
    unit["wall_s"] = time.perf_counter() - t0
    return unit


