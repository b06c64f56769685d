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
import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

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

RETRAIN_METHODS = ("sr", "lora-ml", "last-layer-ml", "reptile")
FINETUNE_METHODS = ("lora", "last-layer")
#: Name of the fresh adapter (or head) trained on the test task.
FINETUNE_ADAPTER = "finetune"
#: Learning-rate schedules of :class:`StageConfig` (factors of ``lr``, see :func:`lr_factor`).
SCHEDULES = ("constant", "linear", "cosine")
#: Optimizer-step accounting of :class:`StageConfig` (``step_per``).
STEP_ACCOUNTING = ("round", "batch")
#: dtype of the on-device training-loss sums: float64 adds the float32 losses exactly as
#: the former Python-float accumulation did, so the logged epoch losses are unchanged.
_LOSS_SUM_DTYPE = torch.float64

Batch = Any  # a tuple of tensors, a mapping of tensors, or whatever the family's loss reads


def task_adapter_name(t: int) -> str:
    """Name of the adapter (or head) of retraining task ``t`` (0-based): ``task_<t>``."""
    return f"task_{t}"


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def _index(data: Any, idx: torch.Tensor) -> Any:
    if isinstance(data, Mapping):
        return {k: v[idx] for k, v in data.items()}
    return tuple(v[idx] for v in data)


def _length(data: Any) -> int:
    first = next(iter(data.values())) if isinstance(data, Mapping) else data[0]
    return int(first.shape[0])


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


@dataclass
class TaskData:
    """One task's data, split into ``train`` / ``val`` / ``test`` tensors.

    Each split is a tuple of tensors or a mapping name -> tensor, all with the same first
    (sample) dimension, or ``None``. Tensors may already live on the accelerator (then
    batches are sliced there, without host copies).

    Parameters
    ----------
    name : str
        Task name (used in records).
    train, val, test : tuple or mapping of tensors, optional
    batch_size : int or None
        ``None`` means full batch (one batch per epoch, no shuffling): the synthetic
        experiments of THEORY.md section 9 use full-batch gradient descent.
    transform : callable, optional
        ``transform(batch, generator) -> batch`` applied to each *training* batch, drawn
        afresh every epoch (data augmentation; the official vision code drew it once).
    drop_last : bool
        Drop the last incomplete training batch.
    """

    name: str
    train: Any
    val: Any = None
    test: Any = None
    batch_size: int | None = None
    transform: Callable[[Batch, torch.Generator], Batch] | None = None
    drop_last: bool = False

    def split(self, split: str) -> Any:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        return getattr(self, split)

    def num_batches(self, split: str = "train") -> int:
        """Number of batches in one pass over ``split``."""
        data = self.split(split)
        if data is None:
            return 0
        n = _length(data)
        if self.batch_size is None:
            return 1
        return n // self.batch_size if (self.drop_last and split == "train") else math.ceil(n / self.batch_size)

    def batches(self, split: str = "train", generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Iterate over one epoch of ``split``.

        Training batches are shuffled with ``generator`` (required when mini-batching)
        and passed through ``transform``; evaluation batches are taken in order.
        """
        data = self.split(split)
        if data is None:
            return
        n = _length(data)
        if self.batch_size is None:
            batch = data if isinstance(data, Mapping) else tuple(data)
            if split == "train" and self.transform is not None:
                batch = self.transform(batch, generator)
            yield batch
            return
        first = next(iter(data.values())) if isinstance(data, Mapping) else data[0]
        if split == "train":
            if generator is None:
                raise ValueError("mini-batch training needs an explicit torch.Generator")
            order = torch.randperm(n, generator=generator).to(first.device)
        else:
            order = torch.arange(n, device=first.device)
        for b in range(self.num_batches(split)):
            batch = _index(data, order[b * self.batch_size:(b + 1) * self.batch_size])
            if split == "train" and self.transform is not None:
                batch = self.transform(batch, generator)
            yield batch


# --------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------


class AdapterSet(ABC):
    """Named adapters (or heads) attached to a base model.

    ``model`` is the module to call; :meth:`activate` selects which adapter its forward
    uses. The trainer reads the parameters through :meth:`base_parameters` and
    :meth:`adapter_parameters`, never through ``requires_grad`` flags set elsewhere.
    """

    model: nn.Module
    names: tuple[str, ...]

    @abstractmethod
    def activate(self, name: str | None) -> None:
        """Make adapter ``name`` the one used by ``model`` (``None``: no adapter)."""

    @abstractmethod
    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        """Trainable parameters of adapter ``name``."""

    @abstractmethod
    def base_parameters(self) -> list[nn.Parameter]:
        """Parameters of the base model (everything that is not an adapter)."""

    @abstractmethod
    def strip(self) -> nn.Module:
        """Return the base model without any adapter (the retrained weights)."""

    def all_adapter_parameters(self) -> list[nn.Parameter]:
        return [p for n in self.names for p in self.adapter_parameters(n)]


class _NoAdapters(AdapterSet):
    """The bare model (SR, Reptile)."""

    def __init__(self, model: nn.Module):
        self.model, self.names = model, ()

    def activate(self, name):
        if name is not None:
            raise ValueError(f"model has no adapters, cannot activate {name!r}")

    def adapter_parameters(self, name):
        raise KeyError(name)

    def base_parameters(self):
        return list(self.model.parameters())

    def strip(self):
        return self.model


class PeftLoraSet(AdapterSet):
    """LoRA adapters from HF ``peft`` on ``target_modules`` of a torch model.

    Parameters
    ----------
    base : nn.Module
    names : sequence of str
        Adapter names (``task_0, ...`` in retraining, ``finetune`` in fine-tuning).
    rank, alpha, dropout : LoRA rank, scaling numerator (``peft`` default: ``alpha=rank``,
        i.e. scaling 1) and dropout.
    target_modules : sequence of str
        Module names that receive an adapter.
    generator : torch.Generator
        Source of the ``lora_A`` initialisation (peft would use the global RNG); ``lora_B``
        starts at zero, so every adapter starts as the identity update.
    train_base : bool
        LoRA-ML retraining trains the base too (peft freezes it; it is unfrozen here).
    """

    def __init__(self, base: nn.Module, names: Sequence[str], *, rank: int, alpha: float | None,
                 dropout: float, target_modules: Sequence[str], generator: torch.Generator,
                 train_base: bool):
        from peft import LoraConfig, get_peft_model

        if not target_modules:
            raise ValueError("this family declares no lora_target_modules; LoRA needs at least one")
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.names = tuple(names)
        self.train_base = train_base

        def cfg():
            return LoraConfig(r=rank, lora_alpha=rank if alpha is None else alpha, lora_dropout=dropout,
                              target_modules=list(target_modules), bias="none")

        # peft draws lora_A from the global RNG; fork it so that attaching adapters leaves the
        # caller's global stream as it was (lora_A is redrawn from ``generator`` below)
        cuda = sorted({p.device.index for p in base.parameters() if p.device.type == "cuda"})
        with torch.random.fork_rng(devices=cuda, device_type="cuda"):
            model = get_peft_model(base, cfg(), adapter_name=self.names[0])
            for n in self.names[1:]:
                model.add_adapter(n, cfg())
        self.model = model
        self._adapter_params: dict[str, list[nn.Parameter]] = {n: [] for n in self.names}
        base_params = []
        for pname, p in model.named_parameters():
            owner = next((n for n in self.names if f".{n}." in f".{pname}."), None)
            if "lora_" in pname and owner is not None:
                self._adapter_params[owner].append(p)
            else:
                base_params.append(p)
        self._base_params = base_params
        # Explicit initialisation from the run's generator.
        with torch.no_grad():
            for mod in model.modules():
                if hasattr(mod, "lora_A") and isinstance(mod.lora_A, nn.ModuleDict):
                    for n in self.names:
                        if n in mod.lora_A:
                            nn.init.kaiming_uniform_(mod.lora_A[n].weight, a=math.sqrt(5), generator=generator)
                            nn.init.zeros_(mod.lora_B[n].weight)
        self.activate(self.names[0])

    def _restore_grad_flags(self) -> None:
        # peft's set_adapter froze every other adapter (and get_peft_model the base).
        for n in self.names:
            for p in self._adapter_params[n]:
                p.requires_grad_(True)
        for p in self._base_params:
            p.requires_grad_(self.train_base)

    def activate(self, name):
        if name not in self.names:
            raise ValueError(f"unknown adapter {name!r}; have {self.names}")
        self.model.base_model.set_adapter(name)
        self._restore_grad_flags()

    def adapter_parameters(self, name):
        return list(self._adapter_params[name])

    def base_parameters(self):
        return list(self._base_params)

    def strip(self):
        # unload() removes the LoRA layers without merging: the base as retrained.
        return self.model.unload()


class _HeadSwitch(nn.Module):
    """Stand-in for a family's head module: forwards through the active head."""

    def __init__(self, heads: Mapping[str, nn.Module]):
        super().__init__()
        self.heads = nn.ModuleDict(heads)
        self.active = next(iter(self.heads))

    def forward(self, *args, **kwargs):
        return self.heads[self.active](*args, **kwargs)


class HeadSet(AdapterSet):
    """One head per name: the family's ``head_module`` replaced by a switch of fresh heads.

    Heads are built by :meth:`Family.new_head` from the run's generator.
    """

    def __init__(self, base: nn.Module, names: Sequence[str], *, head_module: str,
                 new_head: Callable[[nn.Module, torch.Generator], nn.Module], generator: torch.Generator,
                 train_base: bool):
        if not head_module:
            raise ValueError("this family declares no head_module; last-layer adaptation needs one")
        self.names = tuple(names)
        self.head_module = head_module
        self._original_head = base.get_submodule(head_module)
        heads = {n: new_head(base, generator) for n in self.names}
        self.switch = _HeadSwitch(heads)
        base.set_submodule(head_module, self.switch)
        self.model = base
        head_ids = {id(p) for p in self.switch.parameters()}
        self._base_params = [p for p in base.parameters() if id(p) not in head_ids]
        for p in self._base_params:
            p.requires_grad_(train_base)
        for p in self.switch.parameters():
            p.requires_grad_(True)

    def activate(self, name):
        if name not in self.names:
            raise ValueError(f"unknown head {name!r}; have {self.names}")
        self.switch.active = name

    def adapter_parameters(self, name):
        return list(self.switch.heads[name].parameters())

    def base_parameters(self):
        return list(self._base_params)

    def strip(self):
        self.model.set_submodule(self.head_module, self._original_head)
        return self.model


class LoraHeadSet(AdapterSet):
    """Per-name LoRA adapters *and* per-name heads at once (the composition of a
    :class:`HeadSet` and a LoRA set on the body).

    The official ConvAI2 code retrains LoRA-ML with one LoRA adapter and one fresh
    classification head per task, and fine-tunes LoRA together with a fresh head. Here the
    family's head module is first replaced by fresh heads (:class:`HeadSet`), then LoRA
    adapters of the same names go on the body (``lora`` builds them; their targets exclude
    the head, which is trained in full). :meth:`activate` selects both parts of a name,
    :meth:`adapter_parameters` returns both, :meth:`strip` removes LoRA and restores the
    original head.
    """

    def __init__(self, heads: HeadSet, lora_factory: Callable[[nn.Module], AdapterSet]):
        self.heads = heads
        self.lora = lora_factory(heads.model)
        if tuple(self.lora.names) != tuple(heads.names):
            raise ValueError(f"LoRA names {self.lora.names} differ from head names {heads.names}")
        self.names = tuple(heads.names)
        self.model = self.lora.model
        head_ids = {id(p) for n in self.names for p in heads.adapter_parameters(n)}
        lora_ids = {id(p) for n in self.names for p in self.lora.adapter_parameters(n)}
        self._base = [p for p in self.model.parameters() if id(p) not in head_ids | lora_ids]
        for n in self.names:  # peft froze the heads (they are not LoRA parameters)
            for p in heads.adapter_parameters(n):
                p.requires_grad_(True)

    def activate(self, name):
        self.lora.activate(name)
        self.heads.activate(name)
        for n in self.names:  # peft's set_adapter / restore touch every non-LoRA flag
            for p in self.heads.adapter_parameters(n):
                p.requires_grad_(True)

    def adapter_parameters(self, name):
        return self.heads.adapter_parameters(name) + self.lora.adapter_parameters(name)

    def base_parameters(self):
        return list(self._base)

    def strip(self):
        self.lora.strip()
        return self.heads.strip()


# --------------------------------------------------------------------------------------
# Family protocol
# --------------------------------------------------------------------------------------


class Family(ABC):
    """A model/task family: what the trainer needs to know about a model and its tasks.

    Subclasses implement the four abstract methods and set ``lora_target_modules``
    and/or ``head_module``; everything else has a default. Families must draw all
    randomness from the generators they are given (no global seeding).

    Attributes
    ----------
    name : str
        Family name used in records.
    lora_target_modules : tuple of str
        Module names that receive LoRA adapters (``peft`` ``target_modules``).
    head_module : str or None
        Dotted name of the last layer, replaced by per-task heads in last-layer PEFT.
    selection_metric, selection_mode : str
        Metric (a key of :meth:`evaluate`) and ``"min"``/``"max"`` used to pick the best
        average validation epoch.
    """

    name: str = "family"
    lora_target_modules: tuple[str, ...] = ()
    head_module: str | None = None
    selection_metric: str = "loss"
    selection_mode: str = "min"

    @abstractmethod
    def init_model(self, generator: torch.Generator) -> nn.Module:
        """Build the base model (weights drawn from ``generator``)."""

    @abstractmethod
    def retrain_tasks(self) -> Sequence[TaskData]:
        """The T retraining tasks."""

    @abstractmethod
    def test_task(self) -> TaskData:
        """The unseen task used for fine-tuning and evaluation."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Scalar training loss of ``model`` on one batch of one task."""

    def evaluate(self, model: nn.Module, task: TaskData, split: str) -> dict[str, float]:
        """Metrics of ``model`` on ``task``'s ``split`` (default: batch-mean of :meth:`loss`)."""
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in task.batches(split):
                total += float(self.loss(model, batch))
                count += 1
        return {"loss": total / max(count, 1)}

    def new_head(self, model: nn.Module, generator: torch.Generator) -> nn.Module:
        """A freshly initialised head of the same shape as ``model.<head_module>``.

        The default copies the existing head and re-draws every parameter of dimension
        >= 2 with Kaiming-uniform and every vector with zeros, from ``generator``.
        """
        head = copy.deepcopy(model.get_submodule(self.head_module))
        with torch.no_grad():
            for p in head.parameters():
                if p.dim() >= 2:
                    nn.init.kaiming_uniform_(p, a=math.sqrt(5), generator=generator)
                else:
                    p.zero_()
        return head

    def attach_lora(self, model: nn.Module, names: Sequence[str], *, rank: int, stage: str,
                    generator: torch.Generator, alpha: float | None = None, dropout: float = 0.0) -> AdapterSet:
        """Attach LoRA adapters ``names`` (``stage`` is ``"retrain"`` or ``"finetune"``).

        Default: HF ``peft`` on :attr:`lora_target_modules`, base trainable in retraining
        and frozen in fine-tuning. Override for custom adapters.
        """
        return PeftLoraSet(model, names, rank=rank, alpha=alpha, dropout=dropout,
                           target_modules=self.lora_target_modules, generator=generator,
                           train_base=(stage == "retrain"))

    def attach_heads(self, model: nn.Module, names: Sequence[str], *, stage: str,
                     generator: torch.Generator) -> AdapterSet:
        """Attach one head per name in place of :attr:`head_module`."""
        return HeadSet(model, names, head_module=self.head_module, new_head=self.new_head,
                       generator=generator, train_base=(stage == "retrain"))

    def attach_lora_heads(self, model: nn.Module, names: Sequence[str], *, rank: int, stage: str,
                          generator: torch.Generator, alpha: float | None = None,
                          dropout: float = 0.0) -> AdapterSet:
        """Attach per-name heads and per-name LoRA adapters on the body (:class:`LoraHeadSet`).

        Heads are drawn first, then the LoRA factors, both from ``generator``. The LoRA
        targets are :attr:`lora_target_modules` without the head's modules.
        """
        heads = self.attach_heads(model, names, stage=stage, generator=generator)
        head = self.head_module
        targets = tuple(t for t in self.lora_target_modules if t != head and not t.startswith(head + "."))

        def lora(m):
            return PeftLoraSet(m, names, rank=rank, alpha=alpha, dropout=dropout, target_modules=targets,
                               generator=generator, train_base=(stage == "retrain"))

        return LoraHeadSet(heads, lora)

    def describe(self) -> dict[str, Any]:
        """JSON-able description of the family for records (override to add sizes)."""
        return {"name": self.name}


# --------------------------------------------------------------------------------------
# Configuration and results
# --------------------------------------------------------------------------------------


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
    rank, lora_alpha, lora_dropout : LoRA rank (k or k'), alpha (``None``: equal to the
        rank) and dropout.
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
    rank: int = 1
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
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank}")
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


def _make_optimizer(cfg: StageConfig, groups: list[dict]) -> torch.optim.Optimizer:
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


class _LinearWarmup:
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


def _reptile_inner_optimizer(cfg, params):
    """A fresh optimizer for one Reptile inner loop (SGD, or Adam(W) as the official language code)."""
    import torch

    if cfg.reptile_inner_optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.reptile_inner_lr)
    return _make_optimizer(dataclasses.replace(cfg, optimizer=cfg.reptile_inner_optimizer, lr=cfg.reptile_inner_lr),
                           [{"params": params}])


def _reptile_outer_step(cfg, outer, params, theta, T: int) -> None:
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


def _make_scheduler(cfg: StageConfig, opt: torch.optim.Optimizer,
                    total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The ``torch.optim.lr_scheduler`` of ``cfg.schedule`` over ``total_steps`` steps of ``opt``.

    Stepped once per optimizer step; equal to :func:`lr_factor` (tested): ``constant``
    is ``ConstantLR(factor=1)``; after ``ceil(warmup_fraction * total_steps)`` warmup
    steps (:class:`_LinearWarmup`, chained by ``SequentialLR``), ``linear`` is
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
    return sched.SequentialLR(opt, [sched.LambdaLR(opt, _LinearWarmup(warmup)), main], milestones=[warmup])


class _ReptileOuter(torch.optim.Optimizer):
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
        self.history: list[dict] = []
        self.best: tuple[float, int, dict] | None = None
        #: stage-specific state that must survive a resume (Reptile's task order)
        self.extra: dict = {}

    # forward of one task under autocast
    def task_loss(self, t: int, batch: Batch) -> torch.Tensor:
        name = self.task_adapters[t]
        if name is not None:
            self.adapters.activate(name)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            return self.family.loss(self.adapters.model, _to_device(batch, self.device))

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
        torch.save({"tag": self.tag, "epoch": epoch, "model": self.adapters.model.state_dict(),
                    "optimizers": [o.state_dict() for o in optimizers],
                    "schedulers": [s.state_dict() for s in schedulers], "generator": self.generator.get_state(),
                    "history": self.history, "best": self.best, "extra": self.extra}, tmp)
        os.replace(tmp, self.checkpoint)

    def resume(self, optimizers: Sequence[torch.optim.Optimizer],
               schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler] = ()) -> int:
        if self.checkpoint is None or not self.checkpoint.exists():
            return 0
        state = load_checkpoint(self.checkpoint, map_location=self.device)
        if state is None or state.get("tag") != self.tag:
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

    def progress(self, start: int):
        rng = range(start + 1, self.cfg.epochs + 1)
        if not self.cfg.progress:
            return rng
        from tqdm.auto import tqdm

        return tqdm(rng, desc=self.tag, initial=start, total=self.cfg.epochs, disable=None)


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
        Checkpoint file; if it exists and belongs to this stage the run resumes from it.

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
        adapters = attach(base, names, rank=cfg.rank, stage="retrain", generator=generator,
                          alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
    elif cfg.method == "last-layer-ml":
        adapters = family.attach_heads(base, names, stage="retrain", generator=generator)
    else:
        adapters = _NoAdapters(base)
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
            opts = [_make_optimizer(cfg, [{"params": base_params}]),
                    _make_optimizer(cfg, [{"params": ad_params, "lr": adapter_lr}])]
            scheds = [_make_scheduler(cfg, opts[0], steps),
                      _make_scheduler(cfg, opts[1], steps * cfg.inner_adapter_steps)]
        else:
            opts = [_make_optimizer(cfg, [{"params": base_params}, {"params": ad_params, "lr": adapter_lr}])]
            scheds = [_make_scheduler(cfg, opts[0], steps)]
        start = loop.resume(opts, scheds)
        for epoch in loop.progress(start):
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
        outer = _ReptileOuter(params, lr=cfg.lr)
    else:
        outer = _make_optimizer(dataclasses.replace(cfg, optimizer=cfg.reptile_outer), [{"params": params}])
    sched = _make_scheduler(cfg, outer, cfg.epochs)
    start = loop.resume([outer], [sched])
    T = len(loop.tasks)
    for epoch in loop.progress(start):
        if (epoch - 1) % T == 0 or "order" not in loop.extra:
            loop.extra["order"] = torch.randperm(T, generator=loop.generator).tolist()
        t = int(loop.extra["order"][(epoch - 1) % T])
        theta = [p.detach().clone() for p in params]
        inner = _reptile_inner_optimizer(cfg, params)
        steps, total = 0, loop.loss_sum()
        while steps < cfg.reptile_inner_steps:
            for batch in loop.tasks[t].batches("train", loop.generator):
                inner.zero_grad(set_to_none=True)
                loss = loop.task_loss(t, batch)
                loss.backward()
                inner.step()
                total += loss.detach()
                steps += 1
                if steps == cfg.reptile_inner_steps:
                    break
        _reptile_outer_step(cfg, outer, params, theta, T)
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
        ``cfg.method`` in :data:`FINETUNE_METHODS`; ``cfg.rank`` is k'.
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
        adapters = attach(model, [FINETUNE_ADAPTER], rank=cfg.rank, stage="finetune",
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
    opt = _make_optimizer(cfg, [{"params": params}])
    sched = _make_scheduler(cfg, opt, cfg.epochs * loop.rounds_per_epoch())
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

    for epoch in loop.progress(start):
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
