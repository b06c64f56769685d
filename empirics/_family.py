"""The family protocol of the PEFT-ML trainer: what it needs to know about a model and its tasks."""
from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import Any, Sequence

import torch
from torch import nn

from ._adapters import AdapterSet, HeadSet, LoraHeadSet, PeftLoraSet
from ._taskdata import Batch, TaskData

__all__ = ["Family"]

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


