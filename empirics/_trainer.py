"""One PEFT meta-learning trainer: retraining (SR, LoRA-ML, Last-layer-ML, Reptile) and
PEFT fine-tuning (LoRA or last layer) of any model/task *family*.

The loop below never knows which family it trains. A family (:class:`Family`) supplies

* a base model, built from an explicit :class:`torch.Generator`;
* the retraining tasks and the test task as :class:`TaskData` objects (full batch for the
  synthetic models, shuffled mini-batches, optionally re-augmented every epoch, for real
  data);
* a per-batch loss and an evaluation function (metrics per task and split);
* where adapters go: ``lora_target_modules`` for HF ``peft`` LoRA and ``head_module`` for
  per-task heads, or its own adapters by overriding :meth:`Family.attach_lora` (the linear
  model of THEORY.md 9.1 uses symmetric ``U U^T`` in retraining and asymmetric ``U V^T``
  in fine-tuning).

Retraining methods (THEORY.md section 1, eqs. (1), (5), (6))

``sr``
    One model on the union of the tasks: before each optimizer step the losses of all
    tasks (one batch of each) are summed.
``lora-ml``
    One LoRA adapter per retraining task, named ``task_0, ..., task_{T-1}``; the base and
    all adapters are trained; all tasks' losses are summed before each optimizer step.
    Optionally (``inner_adapter_steps > 0``) the official alternating scheme of
    THEORY.md 9.1: one step on the base followed by that many steps on the adapters.
``last-layer-ml``
    As ``lora-ml`` with one head per task (``head_module`` replaced per task).
``reptile``
    First-order Reptile: for each outer iteration, copy the weights
    (``phi <- theta``), run ``reptile_inner_steps`` inner steps (SGD, or Adam/AdamW as the
    official language code) on one task, then ``theta <- theta + eps (phi - theta)``.
    Every T consecutive outer iterations (one *outer epoch*, as the official code) visit
    each task exactly once, in an order shuffled by the run's generator.

Optimizer-step accounting (``step_per``): ``"round"`` takes one optimizer step per round of
one batch of every task, on the summed loss (the objectives (1), (5), (6) of THEORY.md
section 1 are sums over tasks); ``"batch"`` takes one step per task batch, tasks taken in
turn (the official SR code steps once per batch of the pooled data, T times as many steps).

Fine-tuning (eqs. (2), (4)): a fresh adapter (``lora``, rank k') or a fresh head
(``last-layer``) on the frozen retrained base, trained on the test task.

HF ``peft`` pitfalls handled here on purpose: ``set_adapter`` sets ``requires_grad=False``
on every other adapter, and ``get_peft_model`` freezes the base. For LoRA-ML, after every
``set_adapter`` the trainer re-enables gradients on the base and on all task adapters
(:class:`PeftLoraSet`). peft initialises ``lora_A`` from the global RNG; the trainer
forks that RNG around peft (the global stream is left as it was) and re-initialises
``lora_A`` from the run's generator.

Every stage can validate once per epoch (``validate_every``) and keep the weights of the
best average validation epoch (``select_best``), run on ``cpu`` or ``cuda``, use bf16
autocast (``bf16``), follow a learning-rate schedule (``schedule``: constant, linear
warmup/decay, cosine; stepped once per optimizer step, see :func:`lr_factor`), write
checkpoints (model, optimizers, schedulers, generator) and resume from them exactly.

Training losses are summed on the device (one host synchronisation per logged epoch, not
one per step).
"""
from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

# the trainer's parts, one module each; every name stays importable from here
from ._adapters import AdapterSet, HeadSet, LoraHeadSet, NoAdapters, PeftLoraSet
from ._family import Family
from ._stage import (FINETUNE_ADAPTER, FINETUNE_METHODS, RETRAIN_METHODS, SCHEDULES, STEP_ACCOUNTING,
                     LinearWarmup, ReptileOuter, StageConfig, StageResult, lr_factor, make_optimizer,
                     make_scheduler, reptile_inner_optimizer, reptile_outer_step, task_adapter_name)
from ._taskdata import Batch, TaskData, to_device

__all__ = [
    "RETRAIN_METHODS",
    "FINETUNE_METHODS",
    "TaskData",
    "Family",
    "AdapterSet",
    "PeftLoraSet",
    "HeadSet",
    "LoraHeadSet",
    "StageConfig",
    "StageResult",
    "retrain",
    "finetune",
    "task_adapter_name",
    "FINETUNE_ADAPTER",
    "SCHEDULES",
    "STEP_ACCOUNTING",
    "lr_factor",
]

#: dtype of the on-device training-loss sums: float64 adds the float32 losses exactly as
#: the former Python-float accumulation did, so the logged epoch losses are unchanged.
_LOSS_SUM_DTYPE = torch.float64
# names of this module before the split (tests and earlier callers import them from here)
_NoAdapters = NoAdapters
_make_optimizer, _make_scheduler = make_optimizer, make_scheduler
_reptile_inner_optimizer, _reptile_outer_step, _ReptileOuter = reptile_inner_optimizer, reptile_outer_step, ReptileOuter
_LinearWarmup, _to_device = LinearWarmup, to_device


#: StageConfig fields that only steer bookkeeping: a checkpoint written under other values
#: of them is still the same run.
BOOKKEEPING_FIELDS = ("progress", "log_every", "checkpoint_every")


def checkpoint_identity(tag: str, cfg: StageConfig, generator: torch.Generator, family: Family,
                        task_adapters) -> str:
    """``tag#digest``: the stage (``retrain-sr``, ...) and a SHA-256 over every
    :class:`StageConfig` field but :data:`BOOKKEEPING_FIELDS` (epochs included: a run
    interrupted after epoch e resumes under its own epoch count, whose schedule it follows),
    the generator's seed, the family's name and the task adapters -- so that a checkpoint
    of another learning rate, seed or schedule is never resumed as this run."""
    from landscape.runtime.store import config_digest

    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in BOOKKEEPING_FIELDS}
    digest = config_digest({"stage": tag, "config": fields, "seed": int(generator.initial_seed()),
                            "family": getattr(family, "name", type(family).__name__),
                            "tasks": [str(a) for a in task_adapters]})
    return f"{tag}#{digest[:16]}"


class _Loop:
    """Shared epoch loop: batch rounds, validation, best-epoch selection, checkpoints."""

    def __init__(self, family: Family, adapters: AdapterSet, cfg: StageConfig, tasks: Sequence[TaskData],
                 task_adapters: Sequence[str | None], generator: torch.Generator,
                 checkpoint: str | os.PathLike | None, tag: str):
        self.family, self.adapters, self.cfg = family, adapters, cfg
        self.tasks, self.task_adapters = list(tasks), list(task_adapters)
        self.generator = generator
        self.device = torch.device(cfg.device)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.tag = tag
        #: what a checkpoint must have been written by to be resumed: the stage, every
        #: setting of ``cfg`` that changes a result, the generator's seed and the tasks
        self.identity = checkpoint_identity(tag, cfg, generator, family, task_adapters)
        self.history: list[dict] = []
        self.best: tuple[float, int, dict] | None = None
        #: stage-specific state that must survive a resume (Reptile's task order)
        self.extra: dict = {}
        self.bar = None  # the per-step progress bar of :meth:`progress`

    # forward of one task under autocast
    def task_loss(self, t: int, batch: Batch) -> torch.Tensor:
        name = self.task_adapters[t]
        if name is not None:
            self.adapters.activate(name)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            return self.family.loss(self.adapters.model, to_device(batch, self.device))

    def rounds_per_epoch(self) -> int:
        """Batch rounds (optimizer steps of a joint step) in one epoch: the longest task's batches."""
        return max(t.num_batches("train") for t in self.tasks)

    def loss_sum(self) -> torch.Tensor:
        """A zero on the device to sum training losses into (read once per epoch)."""
        return torch.zeros((), dtype=_LOSS_SUM_DTYPE, device=self.device)

    def rounds(self) -> Iterator[list[Batch]]:
        """One epoch: rounds of one batch per task; shorter tasks restart (reshuffled)."""
        iters = [t.batches("train", self.generator) for t in self.tasks]
        n_rounds = self.rounds_per_epoch()
        for _ in range(n_rounds):
            batches = []
            for i, t in enumerate(self.tasks):
                try:
                    batches.append(next(iters[i]))
                except StopIteration:
                    iters[i] = t.batches("train", self.generator)
                    batches.append(next(iters[i]))
            yield batches

    def validate(self, epoch: int, record: dict) -> None:
        if not self.cfg.validate_every or epoch % self.cfg.validate_every:
            return
        model = self.adapters.model
        was_training = model.training
        model.eval()
        per_task = []
        for t, task in enumerate(self.tasks):
            if task.val is None:
                continue
            if self.task_adapters[t] is not None:
                self.adapters.activate(self.task_adapters[t])
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
                per_task.append(self.family.evaluate(model, task, "val"))
        model.train(was_training)
        if not per_task:
            return
        key = self.family.selection_metric
        avg = sum(float(m[key]) for m in per_task) / len(per_task)
        record["val"] = per_task
        record["val_" + key] = avg
        score = avg if self.family.selection_mode == "min" else -avg
        if self.cfg.select_best and (self.best is None or score < self.best[0]):
            state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            self.best = (score, epoch, state)

    def finish(self) -> int | None:
        if self.cfg.select_best and self.best is not None:
            self.adapters.model.load_state_dict(self.best[2])
            return self.best[1]
        return None

    # checkpointing -------------------------------------------------------------------
    def save(self, epoch: int, optimizers: Sequence[torch.optim.Optimizer],
             schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler] = ()) -> None:
        if self.checkpoint is None or not self.cfg.checkpoint_every or epoch % self.cfg.checkpoint_every:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        torch.save({"tag": self.identity, "epoch": epoch, "model": self.adapters.model.state_dict(),
                    "optimizers": [o.state_dict() for o in optimizers],
                    "schedulers": [s.state_dict() for s in schedulers], "generator": self.generator.get_state(),
                    "history": self.history, "best": self.best, "extra": self.extra}, tmp)
        os.replace(tmp, self.checkpoint)

    def resume(self, optimizers: Sequence[torch.optim.Optimizer],
               schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler] = ()) -> int:
        if self.checkpoint is None or not self.checkpoint.exists():
            return 0
        state = load_checkpoint(self.checkpoint, map_location=self.device)
        if state is None or state.get("tag") != self.identity:
            if state is not None:
                warnings.warn(f"checkpoint {self.checkpoint.name} was written by another configuration of "
                              f"{self.tag} (or another seed or tasks); starting afresh", RuntimeWarning, stacklevel=3)
            return 0
        self.adapters.model.load_state_dict(state["model"])
        for o, s in zip(optimizers, state["optimizers"]):
            o.load_state_dict(s)  # also restores each group's scheduled "lr"
        # checkpoints written before schedules existed hold none (their runs were constant)
        for sch, s in zip(schedulers, state.get("schedulers", ())):
            sch.load_state_dict(s)
        self.generator.set_state(state["generator"])
        self.history, self.best = state["history"], state["best"]
        self.extra = state.get("extra", {})
        return int(state["epoch"])

    def progress(self, start: int, steps_per_epoch: int = 1):
        """The epochs from ``start + 1``; with ``cfg.progress`` a tqdm bar counts optimizer
        steps (``steps_per_epoch`` each epoch; :meth:`tick` after every step), not epochs,
        and turns itself off when stderr is not a terminal (``disable=None``)."""
        rng = range(start + 1, self.cfg.epochs + 1)
        if not self.cfg.progress:
            return rng
        from tqdm.auto import tqdm

        self.bar = tqdm(desc=self.tag, initial=start * steps_per_epoch, total=self.cfg.epochs * steps_per_epoch,
                        unit="step", disable=None)
        return self._closing(rng)

    def _closing(self, rng):
        try:
            yield from rng
        finally:
            self.bar.close()
            self.bar = None

    def tick(self) -> None:
        """One optimizer step done (advances the progress bar, if any)."""
        if self.bar is not None:
            self.bar.update(1)


def load_checkpoint(path, map_location=None) -> dict | None:
    """Read a checkpoint written by this module, or None when it cannot be used.

    ``weights_only=True``: tensors, numbers, strings and containers only, so a crafted
    file cannot run code while loading. A truncated, corrupted or foreign file is not
    an error (a checkpoint only saves time): a one-line warning names it and the stage
    starts from its beginning, overwriting it at the next checkpoint.
    """
    import sys

    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, it is not used
        print(f"warning: checkpoint {path} is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}); "
              "starting from the beginning", file=sys.stderr)
        return None
    if not isinstance(state, dict):
        print(f"warning: checkpoint {path} is not a checkpoint of this toolkit; starting from the beginning",
              file=sys.stderr)
        return None
    return state


def _step(loop: _Loop, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
          batches: list[Batch], tasks: Sequence[int] | None = None) -> torch.Tensor:
    """One optimizer step on the sum of the given tasks' losses (backward per task: same sum).

    ``tasks`` are the task indices of ``batches`` (default ``0, 1, ...``). Returns the
    detached loss sum as a device tensor (no host synchronisation); the scheduler
    advances once per optimizer step.
    """
    opt.zero_grad(set_to_none=True)
    total = loop.loss_sum()
    for t, batch in zip(range(len(batches)) if tasks is None else tasks, batches):
        loss = loop.task_loss(t, batch)
        loss.backward()
        total += loss.detach()
    opt.step()
    sched.step()
    loop.tick()
    return total


def retrain(family: Family, cfg: StageConfig, generator: torch.Generator, *,
            checkpoint: str | os.PathLike | None = None) -> StageResult:
    """Retrain a base model of ``family`` on its retraining tasks with ``cfg.method``.

    Parameters
    ----------
    family : Family
    cfg : StageConfig
        ``cfg.method`` in :data:`RETRAIN_METHODS`.
    generator : torch.Generator
        The only source of randomness (model init, adapters, shuffling, Reptile order).
    checkpoint : path, optional
        Checkpoint file; if it exists and was written by this stage with the same settings
        (:func:`checkpoint_identity`), seed and tasks, the run resumes from it; otherwise it
        starts afresh with a warning.

    Returns
    -------
    StageResult
        ``model`` is the retrained base *without* adapters, ready for :func:`finetune`.

    References
    ----------
    THEORY.md section 1, eqs. (1) (SR), (5)-(6) (PEFT-ML); section 9 (protocols).
    """
    if cfg.method not in RETRAIN_METHODS:
        raise ValueError(f"retraining method must be one of {RETRAIN_METHODS}, got {cfg.method!r}")
    tasks = list(family.retrain_tasks())
    if not tasks:
        raise ValueError("family has no retraining tasks")
    T = len(tasks)
    base = family.init_model(generator).to(cfg.device)
    names = [task_adapter_name(t) for t in range(T)]
    if cfg.method == "lora-ml":
        attach = family.attach_lora_heads if cfg.lora_heads else family.attach_lora
        adapters = attach(base, names, rank=cfg.k, stage="retrain", generator=generator,
                          alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
    elif cfg.method == "last-layer-ml":
        adapters = family.attach_heads(base, names, stage="retrain", generator=generator)
    else:
        adapters = NoAdapters(base)
        names = [None] * T
    adapters.model.to(cfg.device).train()
    loop = _Loop(family, adapters, cfg, tasks, names, generator, checkpoint, tag=f"retrain-{cfg.method}")
    adapter_lr = cfg.lr if cfg.adapter_lr is None else cfg.adapter_lr

    if cfg.method == "reptile":
        _reptile(loop, adapters)
    else:
        base_params = adapters.base_parameters()
        ad_params = adapters.all_adapter_parameters() if adapters.names else []
        per_round = len(tasks) if cfg.step_per == "batch" else 1
        steps = cfg.epochs * loop.rounds_per_epoch() * per_round
        if cfg.inner_adapter_steps and cfg.method == "lora-ml":
            opts = [make_optimizer(cfg, [{"params": base_params}]),
                    make_optimizer(cfg, [{"params": ad_params, "lr": adapter_lr}])]
            scheds = [make_scheduler(cfg, opts[0], steps),
                      make_scheduler(cfg, opts[1], steps * cfg.inner_adapter_steps)]
        else:
            opts = [make_optimizer(cfg, [{"params": base_params}, {"params": ad_params, "lr": adapter_lr}])]
            scheds = [make_scheduler(cfg, opts[0], steps)]
        start = loop.resume(opts, scheds)
        for epoch in loop.progress(start, steps // max(cfg.epochs, 1) * (1 + (len(opts) == 2) * cfg.inner_adapter_steps)):
            total, rounds = loop.loss_sum(), 0
            for batches in loop.rounds():
                if len(opts) == 2:
                    # official alternating scheme: one base step, then adapter-only steps
                    # (each optimizer holds only its own parameters, so a step moves only them)
                    total += _step(loop, opts[0], scheds[0], batches)
                    for _ in range(cfg.inner_adapter_steps):
                        _step(loop, opts[1], scheds[1], batches)
                elif cfg.step_per == "batch":
                    # official accounting: one optimizer step per task batch, tasks in turn
                    for t, batch in enumerate(batches):
                        total += _step(loop, opts[0], scheds[0], [batch], [t])
                else:
                    total += _step(loop, opts[0], scheds[0], batches)
                rounds += 1
            record = {"epoch": epoch}
            if epoch % cfg.log_every == 0 or epoch == cfg.epochs:
                record["train_loss"] = float(total) / max(rounds, 1)  # the epoch's one sync
            loop.validate(epoch, record)
            if len(record) > 1:
                loop.history.append(record)
            loop.save(epoch, opts, scheds)
    best = loop.finish()
    return StageResult(adapters.strip(), adapters, loop.history, best, cfg)


def _reptile(loop: _Loop, adapters: AdapterSet) -> None:
    """First-order Reptile (Nichol et al. 2018): theta <- theta + eps (phi - theta).

    Outer iteration ``i`` (1-based) visits task ``order[(i - 1) % T]``, where ``order`` is a
    permutation of the T tasks drawn from the run's generator at the start of every outer
    epoch (T iterations), so each outer epoch visits every task exactly once as in the
    official code (which visits them in the fixed order 0..T-1). The permutation is part
    of the checkpoint. ``cfg.schedule`` applies to eps (one scheduler step per outer
    iteration, as the official vision code schedules its outer optimizer); the inner
    learning rate is constant.
    """
    cfg, model = loop.cfg, adapters.model
    params = list(model.parameters())
    if cfg.reptile_outer == "interpolate":
        outer = ReptileOuter(params, lr=cfg.lr)
    else:
        outer = make_optimizer(dataclasses.replace(cfg, optimizer=cfg.reptile_outer), [{"params": params}])
    sched = make_scheduler(cfg, outer, cfg.epochs)
    start = loop.resume([outer], [sched])
    T = len(loop.tasks)
    for epoch in loop.progress(start, cfg.reptile_inner_steps):
        if (epoch - 1) % T == 0 or "order" not in loop.extra:
            loop.extra["order"] = torch.randperm(T, generator=loop.generator).tolist()
        t = int(loop.extra["order"][(epoch - 1) % T])
        theta = [p.detach().clone() for p in params]
        inner = reptile_inner_optimizer(cfg, params)
        steps, total = 0, loop.loss_sum()
        while steps < cfg.reptile_inner_steps:
            for batch in loop.tasks[t].batches("train", loop.generator):
                inner.zero_grad(set_to_none=True)
                loss = loop.task_loss(t, batch)
                loss.backward()
                inner.step()
                loop.tick()
                total += loss.detach()
                steps += 1
                if steps == cfg.reptile_inner_steps:
                    break
        reptile_outer_step(cfg, outer, params, theta, T)
        sched.step()
        record = {"epoch": epoch, "task": t}
        if epoch % cfg.log_every == 0 or epoch == cfg.epochs:
            record["train_loss"] = float(total) / steps  # the iteration's one sync
        loop.validate(epoch, record)
        loop.history.append(record)
        loop.save(epoch, [outer], [sched])


def finetune(family: Family, base: nn.Module, cfg: StageConfig, generator: torch.Generator, *,
             checkpoint: str | os.PathLike | None = None,
             eval_every: int = 0) -> StageResult:
    """Fine-tune a fresh adapter or head on the frozen retrained ``base`` (eq. (2), (4)).

    Parameters
    ----------
    family : Family
    base : nn.Module
        Retrained base (``retrain(...).model``); it is deep-copied, never modified.
    cfg : StageConfig
        ``cfg.method`` in :data:`FINETUNE_METHODS`; ``cfg.k`` is k'.
    generator : torch.Generator
    checkpoint : path, optional
    eval_every : int
        Also record :meth:`Family.evaluate` on the test task's ``test`` split every this
        many epochs (0: only at the end).

    Returns
    -------
    StageResult
        ``history`` holds training losses, optional validation metrics and ``test``
        metrics; the final test metrics are in ``history[-1]["test"]``.
    """
    if cfg.method not in FINETUNE_METHODS:
        raise ValueError(f"fine-tuning method must be one of {FINETUNE_METHODS}, got {cfg.method!r}")
    model = copy.deepcopy(base).to(cfg.device)
    if cfg.method == "lora":
        attach = family.attach_lora_heads if cfg.lora_heads else family.attach_lora
        adapters = attach(model, [FINETUNE_ADAPTER], rank=cfg.k, stage="finetune",
                          generator=generator, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
    else:
        adapters = family.attach_heads(model, [FINETUNE_ADAPTER], stage="finetune", generator=generator)
    for p in adapters.base_parameters():
        p.requires_grad_(False)
    adapters.model.to(cfg.device).train()
    task = family.test_task()
    loop = _Loop(family, adapters, cfg, [task], [FINETUNE_ADAPTER], generator, checkpoint,
                 tag=f"finetune-{cfg.method}")
    params = adapters.adapter_parameters(FINETUNE_ADAPTER)
    opt = make_optimizer(cfg, [{"params": params}])
    sched = make_scheduler(cfg, opt, cfg.epochs * loop.rounds_per_epoch())
    start = loop.resume([opt], [sched])

    def test_metrics() -> dict:
        was = adapters.model.training
        adapters.model.eval()
        adapters.activate(FINETUNE_ADAPTER)
        split = "test" if task.test is not None else "train"
        with torch.autocast(loop.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            out = family.evaluate(adapters.model, task, split)
        adapters.model.train(was)
        return out

    for epoch in loop.progress(start, loop.rounds_per_epoch()):
        total, rounds = loop.loss_sum(), 0
        for batches in loop.rounds():
            total += _step(loop, opt, sched, batches)
            rounds += 1
        record = {"epoch": epoch}
        if epoch % cfg.log_every == 0 or epoch == cfg.epochs:
            record["train_loss"] = float(total) / max(rounds, 1)  # the epoch's one sync
        loop.validate(epoch, record)
        if eval_every and epoch % eval_every == 0:
            record["test"] = test_metrics()
        if len(record) > 1:
            loop.history.append(record)
        loop.save(epoch, [opt], [sched])
    best = loop.finish()
    final = {"epoch": cfg.epochs if best is None else best, "final": True, "test": test_metrics()}
    loop.history.append(final)
    return StageResult(adapters.model, adapters, loop.history, best, cfg)
