"""Task data of the PEFT-ML trainer: one task's splits and its (shuffled, augmented) batches.

Part of the trainer (:mod:`empirics._trainer` re-exports every name); no torch module
state lives here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import torch

__all__ = ["Batch", "TaskData", "to_device"]

Batch = Any  # a tuple of tensors, a mapping of tensors, or whatever the family's loss reads

def _index(data: Any, idx: torch.Tensor) -> Any:
    if isinstance(data, Mapping):
        return {k: v[idx] for k, v in data.items()}
    return tuple(v[idx] for v in data)


def _length(data: Any) -> int:
    first = next(iter(data.values())) if isinstance(data, Mapping) else data[0]
    return int(first.shape[0])


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
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


