"""Stage configuration of the PEFT-ML trainer and the pieces both vision engines share.

Shared by the sequential trainer (:mod:`empirics._trainer`) and the batched vision engine
(:mod:`empirics.real._batched`), so that the two engines cannot drift apart:

* :class:`StageConfig` / :class:`StageResult`: one stage's settings and outcome;
* :func:`make_optimizer`, :func:`make_scheduler` (equal to :func:`lr_factor`): the
  optimizer and learning-rate schedule of a stage;
* :func:`reptile_inner_optimizer`, :func:`reptile_outer_step`, :class:`ReptileOuter`:
  Reptile's fresh inner optimizer per task visit and its outer update.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ._adapters import AdapterSet
from ._renamed import k_for_rank

__all__ = ["RETRAIN_METHODS", "FINETUNE_METHODS", "FINETUNE_ADAPTER", "SCHEDULES", "STEP_ACCOUNTING",
           "task_adapter_name", "StageConfig", "StageResult", "make_optimizer", "make_scheduler", "lr_factor",
           "LinearWarmup", "ReptileOuter", "reptile_inner_optimizer", "reptile_outer_step"]

RETRAIN_METHODS = ("sr", "lora-ml", "last-layer-ml", "reptile")
FINETUNE_METHODS = ("lora", "last-layer")
#: Name of the fresh adapter (or head) trained on the test task.
FINETUNE_ADAPTER = "finetune"
#: Learning-rate schedules of :class:`StageConfig` (factors of ``lr``, see :func:`lr_factor`).
SCHEDULES = ("constant", "linear", "cosine")
#: Optimizer-step accounting of :class:`StageConfig` (``step_per``).
STEP_ACCOUNTING = ("round", "batch")


def task_adapter_name(t: int) -> str:
    """Name of the adapter (or head) of retraining task ``t`` (0-based): ``task_<t>``."""
    return f"task_{t}"


@k_for_rank
@dataclass(frozen=True)
class StageConfig:
    """Configuration of one training stage (retraining or fine-tuning).

    Parameters
    ----------
    method : str
        Retraining: one of :data:`RETRAIN_METHODS`; fine-tuning: one of
        :data:`FINETUNE_METHODS`.
    epochs : int
        Passes over the tasks (one optimizer step per batch round); for ``reptile`` the
        number of outer iterations.
    lr : float
        Learning rate of the base (retraining) or of the fine-tuned adapter.
    adapter_lr : float, optional
        Learning rate of retraining adapters/heads (default ``lr``).
    optimizer : {"sgd", "adam", "adamw"}
    weight_decay : float
        Passed to the optimizer (torch's AdamW default is 0.01).
    k, lora_alpha, lora_dropout : LoRA rank (k or k'), alpha (``None``: equal to the
        rank) and dropout. ``rank=`` (the old name of ``k``) still works and warns.
    inner_adapter_steps : int
        LoRA-ML only: 0 for joint steps; otherwise one base step followed by this many
        adapter-only steps per batch round (THEORY.md 9.1, official linear scheme).
    reptile_inner_steps, reptile_inner_lr : int, float
        Reptile inner steps on one task and their learning rate; ``lr`` is the outer
        step size epsilon.
    reptile_inner_optimizer : {"sgd", "adam", "adamw"}
        Inner optimizer of Reptile, fresh for every task visit: plain SGD (official vision
        code, no weight decay) or Adam/AdamW with ``weight_decay`` (official language code:
        AdamW).
    lora_heads : bool
        ``lora-ml`` retraining and ``lora`` fine-tuning: besides the LoRA adapters, one fresh,
        fully trained head per adapter (:class:`LoraHeadSet`; the official ConvAI2 code),
        instead of LoRA on the shared head.
    reptile_outer : {"interpolate", "adam", "adamw"}
        Reptile's outer step: ``theta <- theta + eps (phi - theta)`` with ``eps = lr``
        (Nichol et al.), or the official code's step of Adam/AdamW at learning rate ``lr``
        on the pseudo-gradient ``(theta - phi) / T``.
    step_per : {"round", "batch"}
        Retraining of ``sr``, ``lora-ml``, ``last-layer-ml`` and fine-tuning: one optimizer
        step per round of one batch of every task on the summed loss (``"round"``), or one
        step per task batch, tasks in turn (``"batch"``); the learning-rate schedule spans
        the resulting number of steps either way. Fine-tuning has one task, so both agree.
    schedule : {"constant", "linear", "cosine"}
        Learning-rate schedule over the stage's optimizer steps (:func:`lr_factor`):
        ``linear`` warms up linearly over ``warmup_fraction`` of the steps and then decays
        linearly to 0 (HF ``get_linear_schedule_with_warmup``); ``cosine`` anneals to 0
        along a half cosine (after the same optional warmup). Every optimizer of the
        stage follows it (base and adapter learning rates alike). For ``reptile`` it
        schedules the outer interpolation factor epsilon over the outer iterations; the
        inner SGD learning rate stays constant.
    warmup_fraction : float
        Fraction of the optimizer steps used for linear warmup, in ``[0, 1)``; needs
        ``schedule`` ``linear`` or ``cosine``. The number of warmup steps is
        ``ceil(warmup_fraction * total_steps)``, as HF ``Trainer`` rounds ``warmup_ratio``.
    device : str
    bf16 : bool
        Autocast forward passes to bfloat16.
    validate_every : int
        Evaluate the ``val`` split every this many epochs (0: never).
    select_best : bool
        Return the weights of the best average validation epoch.
    log_every : int
        Record training losses every this many epochs.
    progress : bool
        Show a tqdm progress bar.
    checkpoint_every : int
        With a checkpoint path, save state every this many epochs (0: never).
    """

    method: str
    epochs: int
    lr: float
    adapter_lr: float | None = None
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    k: int = 1
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    inner_adapter_steps: int = 0
    reptile_inner_steps: int = 20
    reptile_inner_lr: float = 1e-2
    reptile_inner_optimizer: str = "sgd"
    reptile_outer: str = "interpolate"
    lora_heads: bool = False
    step_per: str = "round"
    device: str = "cpu"
    bf16: bool = False
    validate_every: int = 0
    select_best: bool = False
    log_every: int = 1
    progress: bool = False
    checkpoint_every: int = 0
    schedule: str = "constant"
    warmup_fraction: float = 0.0

    def __post_init__(self):
        if self.method not in RETRAIN_METHODS + FINETUNE_METHODS:
            raise ValueError(f"method must be one of {RETRAIN_METHODS + FINETUNE_METHODS}, got {self.method!r}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {self.optimizer!r}")
        if self.k < 1:
            raise ValueError(f"LoRA rank k must be >= 1, got {self.k}")
        if self.select_best and self.validate_every < 1:
            raise ValueError("select_best needs validate_every >= 1")
        if self.inner_adapter_steps < 0 or self.reptile_inner_steps < 1:
            raise ValueError("inner_adapter_steps must be >= 0 and reptile_inner_steps >= 1")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.reptile_inner_optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError("reptile_inner_optimizer must be 'sgd', 'adam' or 'adamw', "
                             f"got {self.reptile_inner_optimizer!r}")
        if self.reptile_outer not in ("interpolate", "adam", "adamw"):
            raise ValueError(f"reptile_outer must be 'interpolate', 'adam' or 'adamw', got {self.reptile_outer!r}")
        if self.step_per not in STEP_ACCOUNTING:
            raise ValueError(f"step_per must be one of {STEP_ACCOUNTING}, got {self.step_per!r}")
        if self.step_per == "batch" and self.inner_adapter_steps:
            raise ValueError("step_per='batch' is not defined for the alternating scheme (inner_adapter_steps > 0)")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.warmup_fraction and self.schedule == "constant":
            raise ValueError("warmup_fraction > 0 needs schedule 'linear' or 'cosine', not 'constant'")


@dataclass(frozen=True)
class StageResult:
    """Outcome of a stage.

    ``model`` is the trained module (for retraining: the base without adapters; for
    fine-tuning: base plus the fine-tuned adapter), ``adapters`` the adapter set used,
    ``history`` a list of per-epoch dicts (``epoch``, ``train_loss`` and, when validated,
    ``val`` metrics per task and their average), ``best_epoch`` the selected epoch.
    """

    model: nn.Module
    adapters: AdapterSet
    history: list
    best_epoch: int | None
    config: StageConfig


def make_optimizer(cfg: StageConfig, groups: list[dict]) -> torch.optim.Optimizer:
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rate for optimizer step ``step`` (0-based).

    Parameters
    ----------
    schedule : {"constant", "linear", "cosine"}
    step : int
        Number of optimizer steps already taken.
    total_steps : int
        Optimizer steps of the whole stage; the factor reaches 0 at ``step == total_steps``.
    warmup_steps : int
        Linear warmup ``step / warmup_steps`` first (the first step has factor 0, as in HF).

    Returns
    -------
    float
        ``constant``: 1. ``linear``: after warmup ``(total - step) / (total - warmup)``
        (HF ``get_linear_schedule_with_warmup``). ``cosine``: after warmup
        ``(1 + cos(pi p)) / 2`` with ``p = (step - warmup) / (total - warmup)``
        (``CosineAnnealingLR`` with ``eta_min = 0``, ``T_max`` = the steps after warmup).
    """
    if schedule == "constant":
        return 1.0
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


class LinearWarmup:
    """Warmup factor ``step / steps`` (0 at the first step), then 1.

    Hand-written because no torch scheduler serves it: ``LinearLR`` refuses
    ``start_factor = 0``, while the official code's warmup (HF
    ``get_linear_schedule_with_warmup``) gives the first optimizer step lr 0. A class,
    not a closure, so ``LambdaLR.state_dict`` keeps it and checkpoints resume exactly.
    """

    def __init__(self, steps: int):
        self.steps = int(steps)

    def __call__(self, step: int) -> float:
        return min(1.0, step / self.steps)


def reptile_inner_optimizer(cfg, params):
    """A fresh optimizer for one Reptile inner loop (SGD, or Adam(W) as the official language code)."""
    import torch

    if cfg.reptile_inner_optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.reptile_inner_lr)
    return make_optimizer(dataclasses.replace(cfg, optimizer=cfg.reptile_inner_optimizer, lr=cfg.reptile_inner_lr),
                           [{"params": params}])


def reptile_outer_step(cfg, outer, params, theta, T: int) -> None:
    """Reptile's outer update from the pre-loop weights ``theta`` to the inner solution in ``params``."""
    import torch

    if cfg.reptile_outer == "interpolate":
        outer.step(theta)
        return
    # official outer step: the pseudo-gradient (theta - phi) / T into Adam(W), taken
    # from theta (the language code's sign; the vision code's reversed sign is a defect)
    with torch.no_grad():
        for p, th in zip(params, theta):
            p.grad = (th - p) / T
            p.copy_(th)
    outer.step()
    outer.zero_grad(set_to_none=True)


def make_scheduler(cfg: StageConfig, opt: torch.optim.Optimizer,
                    total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The ``torch.optim.lr_scheduler`` of ``cfg.schedule`` over ``total_steps`` steps of ``opt``.

    Stepped once per optimizer step; equal to :func:`lr_factor` (tested): ``constant``
    is ``ConstantLR(factor=1)``; after ``ceil(warmup_fraction * total_steps)`` warmup
    steps (:class:`LinearWarmup`, chained by ``SequentialLR``), ``linear`` is
    ``LinearLR`` from 1 to 0 and ``cosine`` is ``CosineAnnealingLR`` to 0 over the
    remaining steps. Their state is part of every checkpoint.
    """
    sched = torch.optim.lr_scheduler
    if cfg.schedule == "constant":
        return sched.ConstantLR(opt, factor=1.0, total_iters=0)
    warmup = math.ceil(cfg.warmup_fraction * total_steps)
    rest = max(1, total_steps - warmup)
    if cfg.schedule == "linear":
        main = sched.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=rest)
    elif cfg.schedule == "cosine":
        main = sched.CosineAnnealingLR(opt, T_max=rest, eta_min=0.0)
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {cfg.schedule!r}")
    if warmup == 0:
        return main
    return sched.SequentialLR(opt, [sched.LambdaLR(opt, LinearWarmup(warmup)), main], milestones=[warmup])


class ReptileOuter(torch.optim.Optimizer):
    """Reptile's outer update as an optimizer: ``theta <- theta + lr (phi - theta)``.

    The parameters hold phi (the inner loop's result) when :meth:`step` is called with
    the anchors theta. Being an optimizer, its ``lr`` (epsilon) follows a
    ``torch.optim.lr_scheduler`` schedule and is checkpointed like any other.
    """

    def __init__(self, params, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, anchors: Sequence[torch.Tensor]) -> None:  # type: ignore[override]
        params = [p for g in self.param_groups for p in g["params"]]
        lrs = [g["lr"] for g in self.param_groups for _ in g["params"]]
        if len(anchors) != len(params):
            raise ValueError(f"{len(anchors)} anchors for {len(params)} parameters")
        for p, th, lr in zip(params, anchors, lrs):
            # p currently holds phi; move theta a fraction eps toward phi.
            p.copy_(th + lr * (p - th))


