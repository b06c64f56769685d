"""The vision family: MLP-Mixer on binary CIFAR-10 / Fashion-MNIST class-pair tasks.

Plugs into the PEFT-ML trainer of :mod:`empirics._trainer` (one loop for every family):
LoRA through HF ``peft`` on every ``nn.Linear`` of the Mixer (biases kept, as the
official code meant to), last-layer PEFT through per-task copies of ``head``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._mixer import MLPMixer, mixer_linear_names, DROPOUT
from ._vision_data import VisionTasks, augment_batch

__all__ = ["VisionFamily", "init_linear_layers_"]

#: Largest seed drawn for the per-batch device generator (fits an int64).
_SEED_BOUND = 2 ** 62


def init_linear_layers_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Redraw every ``nn.Linear`` (torch's default init) and reset every ``LayerNorm``,
    from ``generator`` only, so a model's weights depend on the run's seed alone."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1.0 / math.sqrt(m.in_features)
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    return model


def _family_base():
    from .._trainer import Family

    return Family


class VisionFamily(_family_base()):
    """MLP-Mixer on the class-pair tasks of a :class:`VisionTasks`.

    Parameters
    ----------
    tasks : VisionTasks
        Images already on the training device.
    batch_size : int
        Mini-batch size of training (256 in the paper) and evaluation.
    augment : bool
        Random crop (padding 4) and horizontal flip, drawn afresh for every training
        batch of every epoch, on the device. Without augmentation the training batches
        still pass through the trainer's transform, which reseeds the Mixer's dropout
        generator from the run's generator (so seeds never share one dropout stream).
    dim, depth, patch_size, dropout : Mixer width (512), depth (1), patch (4), dropout (0.1).
    """

    name = "vision-mlp-mixer"
    head_module = "head"
    selection_metric = "accuracy"
    selection_mode = "max"

    def __init__(self, tasks: VisionTasks, *, batch_size: int = 256, eval_batch_size: int = 1024,
                 augment: bool = True, dim: int = 512, depth: int = 1, patch_size: int = 4,
                 dropout: float = DROPOUT):
        from .._trainer import TaskData

        self.tasks = tasks
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.augment = augment
        c, h, w = tasks.image_shape
        if h != w:
            raise ValueError(f"square images expected, got {h}x{w}")
        self.arch = dict(image_size=h, patch_size=patch_size, channels=c, dim=dim, depth=depth,
                         num_classes=2, dropout=dropout)
        self.lora_target_modules = tuple(mixer_linear_names(MLPMixer(**{**self.arch, "dim": 8})))
        transform = self._augment
        self._retrain = [TaskData(name=n, train=(x, y), val=(vx, vy), batch_size=batch_size,
                                  transform=transform)
                         for n, x, y, vx, vy in zip(tasks.names, tasks.train_x, tasks.train_y,
                                                    tasks.val_x, tasks.val_y)]
        self._test = TaskData(name="test", train=(tasks.ft_x, tasks.ft_y), test=(tasks.eval_x, tasks.eval_y),
                              batch_size=batch_size, transform=transform)
        dev_gen = {}

        def generator_for(device):
            # a plain closure (not a bound method): deep copies of the model share it
            key = str(device)
            if key not in dev_gen:
                dev_gen[key] = torch.Generator(device=device)
            return dev_gen[key]

        self._device_generator = generator_for

    # -- data ---------------------------------------------------------------------------
    def _augment(self, batch, generator):
        """Trainer transform: fresh crops/flips per batch, drawn on the images' device.

        One integer is drawn from the trainer's (CPU) generator and seeds a generator on
        the device, so augmentation stays reproducible, resumable from the trainer's
        checkpointed generator state, and needs no host-to-device copy of images. The
        Mixer's dropout masks of this batch continue the same device generator; with
        ``augment=False`` the images are only scaled and normalised, but the reseeding
        happens all the same, so dropout still follows the run's generator.
        """
        x, y = batch
        seed = int(torch.randint(_SEED_BOUND, (1,), generator=generator))
        g = self._device_generator(x.device)
        g.manual_seed(seed)
        if not self.augment:
            return (self._prepare(x), y)
        return (self.tasks.normalize(augment_batch(x, g)), y)

    def _prepare(self, x):
        if x.dtype == torch.uint8:  # evaluation batches: no augmentation
            x = self.tasks.normalize(x.to(torch.float32) / 255.0)
        return x

    # -- Family interface ---------------------------------------------------------------
    def init_model(self, generator):
        return init_linear_layers_(MLPMixer(**self.arch, generator_for=self._device_generator), generator)

    def retrain_tasks(self):
        return self._retrain

    def test_task(self):
        return self._test

    def loss(self, model, batch):
        x, y = batch
        return nn.functional.cross_entropy(model(self._prepare(x)).float(), y)

    def evaluate(self, model, task, split):
        data = task.split(split)
        x_all, y_all = data
        # sums stay on the device: one host synchronisation per evaluation, not per batch
        total_loss = torch.zeros((), device=y_all.device)
        correct = torch.zeros((), device=y_all.device, dtype=torch.long)
        with torch.no_grad():
            for lo in range(0, len(y_all), self.eval_batch_size):
                x, y = x_all[lo:lo + self.eval_batch_size], y_all[lo:lo + self.eval_batch_size]
                logits = model(self._prepare(x)).float()
                total_loss += nn.functional.cross_entropy(logits, y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
        n = max(len(y_all), 1)
        return {"loss": float(total_loss) / n, "accuracy": int(correct) / n}

    def new_head(self, model, generator):
        head = nn.Linear(model.head.in_features, model.head.out_features).to(model.head.weight.device)
        return init_linear_layers_(head, generator)

    def describe(self):
        return {"name": self.name, "arch": self.arch, "batch_size": self.batch_size,
                "augment": self.augment, "data": self.tasks.description, "sizes": self.tasks.sizes(),
                "task_names": self.tasks.names}
