"""MLP-Mixer (Tolstikhin et al., 2021) in plain torch, with per-task heads and peft LoRA.

The official vision code uses the ``einops`` Mixer with patch 4, width 512, depth 1,
token expansion 4, channel expansion 0.5 and dropout 0.1; the same architecture is
written here without einops.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MLPMixer", "MultiHeadMixer", "mixer_linear_names", "keep_mask", "dropout_noise",
           "drop_probability", "keep_words", "mask_words", "keep_threshold"]

#: Official defaults (vision/MLP.py): hidden sizes relative to the mixed dimension.
TOKEN_EXPANSION = 4.0
CHANNEL_EXPANSION = 0.5
#: Dropout of the official Mixer's feed-forward blocks.
DROPOUT = 0.1


#: Resolution of the dropout probability: masks compare 16-bit random words with a threshold.
DROP_LEVELS = 1 << 16


def drop_probability(p: float) -> float:
    """The dropout probability the masks realise: ``p`` rounded to a multiple of 2^-16
    (0.1 -> 6554 / 65536 = 0.10000610)."""
    return round(p * DROP_LEVELS) / DROP_LEVELS


def keep_mask(shape, p: float, generator: torch.Generator, device=None) -> torch.Tensor:
    """A boolean keep-mask of ``shape``: each entry kept with probability
    ``1 - drop_probability(p)``, drawn from ``generator``.

    Every 64-bit draw of the generator gives four 16-bit words (``torch.rand`` spends one
    draw per entry: on a CPU the draws, not the arithmetic, are the cost of dropout). The
    trainer's :class:`GeneratorDropout` and the batched engine both draw through here.
    """
    n = math.prod(shape)
    return (mask_words(keep_words(n), generator, device).view(torch.int16)[:n] >= keep_threshold(p)).view(shape)


def keep_words(n: int) -> int:
    """The 64-bit draws :func:`keep_mask` spends on a mask of ``n`` entries (four per draw)."""
    return -(-n // 4)


def mask_words(count: int, generator: torch.Generator, device=None, out=None) -> torch.Tensor:
    """``count`` 64-bit random words, one draw each: the masks of consecutive :func:`keep_mask`
    calls are consecutive slices of one such draw (the batched engine draws a step's at once).
    ``out``: a contiguous int64 tensor of ``count`` entries to draw into (the same words)."""
    if out is not None and (out.dtype != torch.int64 or out.shape != (count,) or not out.is_contiguous()):
        raise ValueError(f"out must be a contiguous int64 tensor of shape ({count},), "
                         f"got {out.dtype} {tuple(out.shape)}")
    return torch.randint(-(1 << 63), (1 << 63) - 1, (count,), generator=generator, device=device, out=out)


def keep_threshold(p: float) -> int:
    """An entry (a 16-bit word read as int16) is kept when it is at least this,
    ``i16 >= round(p * 2^16) - 2^15``: the word with its top bit flipped, read unsigned, is
    at least ``round(p * 2^16)``, which holds for exactly ``2^16 - round(p * 2^16)`` of the
    2^16 words (the keep probability ``1 - drop_probability(p)``)."""
    return round(p * DROP_LEVELS) - (1 << 15)


def dropout_noise(keep, p: float):
    """The multiplier of dropout from a keep-mask: ``keep / (1 - q)`` as float32, with ``q``
    the realised :func:`drop_probability` (so the expectation is exact), as
    ``torch.nn.functional.dropout`` scales; one multiplication of the activations by it is
    the whole forward and backward of dropout. Shared by the trainer's
    :class:`GeneratorDropout` and the batched engine, so the two round alike."""
    return keep.to(torch.float32).mul_(1.0 / (1.0 - drop_probability(p)))


class GeneratorDropout(nn.Module):
    """Dropout whose masks come from an explicit generator.

    Parameters
    ----------
    p : float
    generator_for : callable, optional
        ``generator_for(device) -> torch.Generator``; the family hands out a generator
        on the activations' device, reseeded from the trainer's generator every batch,
        so training is reproducible without touching torch's global RNG. ``None`` falls
        back to ``torch.nn.functional.dropout`` (global RNG).
    """

    def __init__(self, p: float, generator_for=None):
        super().__init__()
        p = float(p)
        if not 0.0 <= p < 1.0:  # a negative p would scale every activation by 1 / (1 - p) < 1 instead
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.generator_for = p, generator_for

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.generator_for is None:
            return nn.functional.dropout(x, self.p, True)
        keep = keep_mask(x.shape, self.p, self.generator_for(x.device), x.device)
        out = x * dropout_noise(keep, self.p)
        return out if out.dtype == x.dtype else out.to(x.dtype)

    def extra_repr(self):
        return f"p={self.p}"


class FeedForward(nn.Sequential):
    """Linear -> GELU -> Dropout -> Linear -> Dropout."""

    def __init__(self, dim: int, expansion: float, dropout: float, generator_for=None):
        inner = int(dim * expansion)
        super().__init__(nn.Linear(dim, inner), nn.GELU(), GeneratorDropout(dropout, generator_for),
                         nn.Linear(inner, dim), GeneratorDropout(dropout, generator_for))


class MixerBlock(nn.Module):
    """Pre-norm token mixing then pre-norm channel mixing, each with a residual."""

    def __init__(self, num_patches: int, dim: int, dropout: float, generator_for=None):
        super().__init__()
        self.token_norm = nn.LayerNorm(dim)
        self.token_mlp = FeedForward(num_patches, TOKEN_EXPANSION, dropout, generator_for)
        self.channel_norm = nn.LayerNorm(dim)
        self.channel_mlp = FeedForward(dim, CHANNEL_EXPANSION, dropout, generator_for)

    def forward(self, x):  # x: (B, patches, dim)
        x = x + self.token_mlp(self.token_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.channel_norm(x))


class MLPMixer(nn.Module):
    """MLP-Mixer image classifier.

    Parameters
    ----------
    image_size, patch_size, channels : int
    dim : int
        Width (512 in the paper).
    depth : int
        Number of Mixer blocks (1 in the paper).
    num_classes : int
    dropout : float
    generator_for : callable, optional
        Source of dropout masks (see :class:`GeneratorDropout`).
    """

    def __init__(self, image_size: int = 32, patch_size: int = 4, channels: int = 3,
                 dim: int = 512, depth: int = 1, num_classes: int = 2, dropout: float = DROPOUT,
                 generator_for=None):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        num_patches = self.grid ** 2
        self.patch_embed = nn.Linear(channels * patch_size ** 2, dim)
        self.blocks = nn.Sequential(*[MixerBlock(num_patches, dim, dropout, generator_for) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def patchify(self, x):
        """(B, C, H, W) -> (B, patches, p*p*C), the order of the einops original."""
        b, c, _, _ = x.shape
        p, g = self.patch_size, self.grid
        return x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, p * p * c)

    def features(self, x):
        """Pooled representation fed to the head, shape (B, dim)."""
        return self.norm(self.blocks(self.patch_embed(self.patchify(x)))).mean(dim=1)

    def forward(self, x):
        return self.head(self.features(x))


class MultiHeadMixer(nn.Module):
    """A Mixer body with one linear head per task, keyed by name in an ``nn.ModuleDict``.

    The last-layer PEFT of the paper: retraining (Last-layer-ML) trains the body and
    every head; fine-tuning trains a fresh head on the frozen body.
    """

    def __init__(self, body: MLPMixer, head_names, num_classes: int = 2):
        super().__init__()
        self.body = body
        dim = body.head.in_features
        self.heads = nn.ModuleDict({n: nn.Linear(dim, num_classes) for n in head_names})
        self.active = next(iter(self.heads))

    def set_head(self, name: str):
        if name not in self.heads:
            raise KeyError(f"no head {name!r}; have {list(self.heads)}")
        self.active = name

    def forward(self, x):
        return self.heads[self.active](self.body.features(x))


def mixer_linear_names(model: nn.Module) -> list:
    """Qualified names of every ``nn.Linear`` of a Mixer (the LoRA targets, head included,
    as in the official code, which adapts every Linear layer)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
