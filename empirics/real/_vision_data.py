"""Vision meta-learning tasks: class pairs, resident on the device, fresh augmentation each epoch.

Protocol (THEORY.md 9.5 and the official vision script): retraining tasks are the class
pairs (0,1), (2,3), (4,5), (6,7) of the training split, each validated on the same pair of
the test split; the unseen task is (8,9), fine-tuned on its training images and scored on
its test images; the label of every task is ``class mod 2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "RETRAIN_PAIRS", "TEST_PAIR", "CIFAR10_MEAN", "CIFAR10_STD",
    "VisionTasks", "build_vision_tasks", "augment_batch", "minibatch_indices",
]

#: The paper's retraining class pairs and the unseen test pair.
RETRAIN_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7))
TEST_PAIR = (8, 9)

#: Normalisation of the official vision script (torchvision's customary CIFAR-10 values).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)

#: Random-crop padding in pixels (official ``RandomCrop(32, padding=4)``).
CROP_PAD = 4


@dataclass
class VisionTasks:
    """All images of one experiment, as uint8 NCHW tensors on one device.

    Attributes
    ----------
    names : list of str
        Retraining task names (``"0/1"``, ...).
    train_x, train_y, val_x, val_y : list of torch.Tensor
        Per retraining task: training images/labels and validation images/labels.
    ft_x, ft_y, eval_x, eval_y : torch.Tensor
        Unseen task: fine-tuning images/labels and held-out evaluation images/labels.
    mean, std : torch.Tensor
        Per-channel normalisation, shape (1, C, 1, 1), on the device.
    """

    names: list
    train_x: list
    train_y: list
    val_x: list
    val_y: list
    ft_x: object
    ft_y: object
    eval_x: object
    eval_y: object
    mean: object
    std: object
    description: str = ""

    @property
    def image_shape(self):
        return tuple(self.ft_x.shape[1:])

    def normalize(self, x_float01):
        """Map [0,1] images to the normalised scale the model sees."""
        return (x_float01 - self.mean) / self.std

    def sizes(self) -> dict:
        return {"retrain": [int(len(y)) for y in self.train_y], "val": [int(len(y)) for y in self.val_y],
                "finetune": int(len(self.ft_y)), "eval": int(len(self.eval_y))}


def _select(x, y, pair, limit, rng):
    idx = np.flatnonzero(np.isin(y, pair))
    if limit is not None and limit < len(idx):
        # class-balanced subsample, so a small CPU run still sees both classes
        per = [rng.permutation(np.flatnonzero(y[idx] == c))[: limit // len(pair)] for c in pair]
        idx = np.sort(idx[np.concatenate(per)])
    return x[idx], (y[idx] % 2).astype(np.int64)


def build_vision_tasks(arrays, *, device="cpu", max_per_task=None, max_eval_per_task=None,
                       rng: np.random.Generator | None = None, mean=None, std=None,
                       retrain_pairs=RETRAIN_PAIRS, test_pair=TEST_PAIR) -> VisionTasks:
    """Cut a :class:`~empirics.real._cifar.VisionArrays` into the meta-learning tasks.

    Parameters
    ----------
    arrays : VisionArrays
    device : str or torch.device
        Where the uint8 images live for the whole run (no per-batch host copies).
    max_per_task, max_eval_per_task : int, optional
        Class-balanced subsample sizes of each training / evaluation set (CPU runs).
    rng : numpy.random.Generator, optional
        Draws the subsamples; required when a limit is given.
    mean, std : sequence of float, optional
        Normalisation; default the CIFAR-10 constants for 3 channels, else the
        training split's own statistics.
    """
    import torch

    if (max_per_task is not None or max_eval_per_task is not None) and rng is None:
        raise ValueError("a numpy Generator is required to subsample tasks")
    for pair in (*retrain_pairs, test_pair):
        missing = [c for c in pair if c not in set(np.unique(arrays.train_y).tolist())]
        if missing:
            raise ValueError(f"classes {missing} absent from the training split")
    channels = arrays.train_x.shape[-1]
    if mean is None:
        if channels == 3 and arrays.class_names[:1] == ("airplane",):
            mean, std = CIFAR10_MEAN, CIFAR10_STD
        else:
            pix = arrays.train_x.reshape(-1, channels) / 255.0
            mean, std = tuple(pix.mean(0)), tuple(pix.std(0))

    def dev(x):
        return torch.from_numpy(np.ascontiguousarray(x)).to(device)

    def to_nchw(x):
        return dev(x.transpose(0, 3, 1, 2))

    tx, ty, vx, vy = [], [], [], []
    for pair in retrain_pairs:
        a, b = _select(arrays.train_x, arrays.train_y, pair, max_per_task, rng)
        tx.append(to_nchw(a)); ty.append(dev(b))
        a, b = _select(arrays.test_x, arrays.test_y, pair, max_eval_per_task, rng)
        vx.append(to_nchw(a)); vy.append(dev(b))
    fx, fy = _select(arrays.train_x, arrays.train_y, test_pair, max_per_task, rng)
    ex, ey = _select(arrays.test_x, arrays.test_y, test_pair, max_eval_per_task, rng)
    shape = (1, channels, 1, 1)
    return VisionTasks(
        names=[f"{a}/{b}" for a, b in retrain_pairs], train_x=tx, train_y=ty, val_x=vx, val_y=vy,
        ft_x=to_nchw(fx), ft_y=dev(fy), eval_x=to_nchw(ex), eval_y=dev(ey),
        mean=torch.tensor(mean, dtype=torch.float32, device=device).reshape(shape),
        std=torch.tensor(std, dtype=torch.float32, device=device).reshape(shape),
        description=arrays.source,
    )


def augment_batch(x_uint8, generator, *, pad: int = CROP_PAD, flip: bool = True):
    """Random crop with zero padding and random horizontal flip, vectorised on the device.

    Parameters
    ----------
    x_uint8 : torch.Tensor
        uint8 images (B, C, H, W) on any device.
    generator : torch.Generator
        On the same device as ``x_uint8``; one draw per image, so every call (every
        epoch) gives new crops and flips.

    Returns
    -------
    torch.Tensor
        float32 images in [0, 1], shape (B, C, H, W).
    """
    import torch
    import torch.nn.functional as F

    b, c, h, w = x_uint8.shape
    dev = x_uint8.device
    x = x_uint8.to(torch.float32).div_(255.0)
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))  # zero = black, as torchvision's default fill
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
        rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]  # (B,1,H,1)
        cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]  # (B,1,1,W)
        bi = torch.arange(b, device=dev)[:, None, None, None]
        ci = torch.arange(c, device=dev)[None, :, None, None]
        x = xp[bi, ci, rows, cols]
    if flip:
        mask = torch.rand((b,), generator=generator, device=dev) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x


def minibatch_indices(n: int, batch_size: int, generator, *, shuffle: bool = True, device="cpu"):
    """Index tensors of one epoch's mini-batches (a fresh permutation per call)."""
    import torch

    order = (torch.randperm(n, generator=generator, device=device) if shuffle
             else torch.arange(n, device=device))
    return list(order.split(batch_size))
