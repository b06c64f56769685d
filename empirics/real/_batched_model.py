"""The seed- and task-batched MLP-Mixer of the batched vision engine: stacked weights of S
seeds (:class:`StackedModel`), the functional forward (:class:`BatchedMixer`), the per-task
losses, and conversion from the sequential trainer's modules (:func:`params_from_trainer`).
See :mod:`empirics.real._batched` for the engine as a whole.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._mixer import CHANNEL_EXPANSION, TOKEN_EXPANSION, MLPMixer, dropout_noise, mixer_linear_names

__all__ = ["HEAD", "StackedModel", "BatchedMixer", "stack_state_dicts", "unstack_state_dict", "task_losses",
           "params_from_trainer"]

#: The Mixer's classification layer (``VisionFamily.head_module``).
HEAD = "head"


def stack_state_dicts(states, device=None) -> dict:
    """``{name: (S, ...)}`` from S state dicts of the same model."""
    return {k: torch.stack([s[k] for s in states]).to(device or states[0][k].device) for k in states[0]}


def unstack_state_dict(stacked: dict, s: int) -> dict:
    """The state dict of seed ``s`` (detached copies on the CPU)."""
    return {k: v[s].detach().to("cpu", copy=True) for k, v in stacked.items()}


@dataclass
class StackedModel:
    """Trainable tensors of S seeds: the base Mixer, optional LoRA factors and heads.

    ``base``: ``{state-dict name: (S, ...)}``. ``lora``: ``{linear name: (A, B)}`` with
    ``A (S, T, r, in)``, ``B (S, T, out, r)`` (T adapters per seed; one in fine-tuning).
    ``heads``: ``(W (S, T, classes, D), b (S, T, classes))`` replacing ``head``.
    """

    base: dict
    lora: dict | None = None
    lora_scaling: float = 1.0
    heads: tuple | None = None

    def adapter_tensors(self) -> list:
        out = [t for ab in (self.lora or {}).values() for t in ab]
        return out + (list(self.heads) if self.heads is not None else [])


class BatchedMixer:
    """The functional, seed- and task-batched forward of :class:`MLPMixer`.

    Parameters
    ----------
    arch : dict
        ``MLPMixer`` keyword arguments (``image_size, patch_size, channels, dim, depth,
        num_classes, dropout``), e.g. :attr:`VisionFamily.arch`.
    """

    def __init__(self, arch: dict):
        self.arch = dict(arch)
        self.patch, self.dim, self.depth = arch["patch_size"], arch["dim"], arch["depth"]
        self.grid = arch["image_size"] // self.patch
        self.num_patches = self.grid ** 2
        self.p = float(arch.get("dropout", 0.0))
        self.token_inner = int(self.num_patches * TOKEN_EXPANSION)
        self.channel_inner = int(self.dim * CHANNEL_EXPANSION)
        self.linear_names = tuple(mixer_linear_names(MLPMixer(**{**self.arch, "dropout": 0.0})))

    # -- shapes of the dropout masks of one image batch, in the order the Mixer draws them
    def mask_shapes(self, b: int) -> list:
        """Per block: token-MLP inner, token-MLP out, channel-MLP inner, channel-MLP out."""
        if self.p == 0.0:
            return []
        one = [(b, self.dim, self.token_inner), (b, self.dim, self.num_patches),
               (b, self.num_patches, self.channel_inner), (b, self.num_patches, self.dim)]
        return one * self.depth

    def patchify(self, x):
        """(..., C, H, W) -> (..., patches, p*p*C), the order of :meth:`MLPMixer.patchify`."""
        lead, (c, _, _) = x.shape[:-3], x.shape[-3:]
        p, g = self.patch, self.grid
        x = x.reshape(-1, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(*lead, g * g, p * p * c)

    # -- the internal layout -----------------------------------------------------------
    # Activations live as (S*T, patches, b, features): "patch-major". The token MLP then
    # reads LN(x) per (seed, task) as one matrix (patches, b*features) and computes
    # (b*features, inner) = LN(x)^T W^T + bias -- the trainer's own orientation (its token
    # MLP acts on (b, features, patches)), the transpose a free view of the GEMM operand --,
    # so the two token-dropout masks are the trainer's layout as drawn; the channel MLP is a
    # right multiplication of (patches*b, features) rows by W^T. No copies between the two
    # mixings, every matmul one batched GEMM over S*T; LoRA is merged into each (seed, task)
    # weight, W + scaling * B A, before the GEMM.
    @staticmethod
    def _weight(name, model: StackedModel, S: int, T: int):
        """The (S*T, out, in) weights and (S*T, out) biases of Linear ``name``, LoRA merged."""
        w, b = model.base[name + ".weight"], model.base[name + ".bias"]
        lora = model.lora is not None and name in model.lora
        if T == 1 and not lora:  # one task slot (Reptile, SR's per-task steps): the stacked tensors as they are
            return w, b
        out, inp = w.shape[-2:]
        # built as transposed views, (S, T, in, out), of memory laid out (S, T, out, in): the
        # GEMM reads the same memory as ever (same result bits), and the gradient, which
        # arrives from the GEMM laid out (in, out), is summed over the task slots (the
        # broadcast's backward) in its own contiguous layout -- about 9x faster than the
        # same sum at the stride of a transpose, and the same bits
        wt = w.transpose(-1, -2).unsqueeze(1)
        if lora:
            a, bb = model.lora[name]  # (S, T', r, in), (S, T', out, r) with T' in {1, T}
            low = torch.matmul(bb, a)
            wt = wt + (low if model.lora_scaling == 1.0 else low * model.lora_scaling).transpose(-1, -2)
        w = wt.expand(S, T, inp, out).transpose(-1, -2).reshape(S * T, out, inp)
        return w, b.unsqueeze(1).expand(S, T, out).reshape(S * T, out)

    def _rows(self, x, name, model, S, T):
        """x (S*T, M, in) -> x W^T + b, (S*T, M, out)."""
        w, b = self._weight(name, model, S, T)
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    @staticmethod
    def _norm(x, name, model: StackedModel, S: int):
        """LayerNorm over the last axis with per-seed scale and shift."""
        w, b = model.base[name + ".weight"], model.base[name + ".bias"]
        shape = x.shape
        ln = F.layer_norm(x, (shape[-1],)).view(S, -1, shape[-1])
        return torch.addcmul(b.unsqueeze(1), ln, w.unsqueeze(1)).view(shape)

    @staticmethod
    def _drop_(h, noise):
        # the trainer's GeneratorDropout, x * dropout_noise(keep, p), bit for bit, in place
        # (the producers' backward -- GELU's and baddbmm's -- does not read their outputs)
        return h if noise is None else h.mul_(noise)

    def internal_masks(self, masks, b: int):
        """Keep-masks in the trainer's layout (per site ``(S, T, b, ...)``, the shapes of
        :meth:`mask_shapes`) -> dropout multipliers (:func:`dropout_noise`) in the layout
        the forward applies them in (:meth:`mask_permutation`)."""
        return [dropout_noise(m.permute(*self.mask_permutation(k)), self.p).contiguous() for k, m in enumerate(masks)]

    @staticmethod
    def mask_permutation(k: int) -> tuple:
        """Axes of dropout site ``k``'s trainer-layout mask ``(S, T, b, r, c)`` in the layout
        the forward applies it in: token sites as drawn, ``(b, D, n)`` (the token MLP's
        outputs are in the trainer's layout), channel sites patch-major, ``(b, n, C) -> (n, b, C)``."""
        return (0, 1, 2, 3, 4) if k % 4 < 2 else (0, 1, 3, 2, 4)

    def logits(self, patches, model: StackedModel, masks=None, *, internal_masks=False):
        """Logits ``(S, T, b, classes)`` of patches ``(S, T, b, patches, p*p*C)``.

        ``masks``: boolean keep-masks of the shapes of :meth:`mask_shapes` stacked to
        ``(S, T, ...)`` (training) or ``None`` (evaluation); ``internal_masks=True``: the
        dropout multipliers of :meth:`internal_masks` instead (as the engine draws them).
        """
        S, T, b, n, pd = patches.shape
        if masks and not internal_masks:
            masks = self.internal_masks(masks, b)
        if masks:  # token sites (S*T, b*D, cols), channel sites (S*T, n*b, cols)
            masks = [m.reshape(S * T, -1, m.shape[-1]) for m in masks]
        x = self._rows(patches.transpose(2, 3).reshape(S * T, n * b, pd), "patch_embed", model, S, T)
        x = x.view(S * T, n, b, self.dim)
        for k in range(self.depth):
            pre = f"blocks.{k}."
            km = masks[4 * k:4 * k + 4] if masks else (None,) * 4
            # token mixing: LN(x)^T (b*D, n) @ W^T, per (seed, task), in the trainer's layout
            h = self._norm(x, pre + "token_norm", model, S).view(S * T, n, b * self.dim)
            h = self._drop_(F.gelu(self._rows(h.transpose(1, 2), pre + "token_mlp.0", model, S, T)), km[0])
            h = self._drop_(self._rows(h, pre + "token_mlp.3", model, S, T), km[1])  # (S*T, b*D, n)
            # x + token_mlp(...)^T, the trainer's sum; x first, so the result is laid out as x
            x = x + h.transpose(1, 2).view(x.shape)
            # channel mixing: rows (n * b) times W^T
            h = self._norm(x, pre + "channel_norm", model, S).view(S * T, n * b, self.dim)
            h = self._drop_(F.gelu(self._rows(h, pre + "channel_mlp.0", model, S, T)), km[2])
            h = self._drop_(self._rows(h, pre + "channel_mlp.3", model, S, T), km[3])
            x = x + h.view(x.shape)
        feats = self._norm(x, "norm", model, S).mean(dim=1)  # (S*T, b, D)
        if model.heads is not None:
            w, bias = model.heads  # (S, T, classes, D), (S, T, classes)
            c = w.shape[-2]
            w = w.expand(S, T, c, self.dim).reshape(S * T, c, self.dim)
            bias = bias.expand(S, T, c).reshape(S * T, 1, c)
            out = torch.baddbmm(bias, feats, w.transpose(1, 2))
        else:
            out = self._rows(feats, HEAD, model, S, T)
        return out.view(S, T, b, -1)


def task_losses(logits, y, valid):
    """Per (seed, task) batch-mean cross-entropy ``(S, T)``; ``valid`` masks padded rows."""
    s, t, b, c = logits.shape
    per = F.cross_entropy(logits.float().reshape(-1, c), y.reshape(-1), reduction="none").view(s, t, b)
    return (per * valid).sum(-1) / valid.sum(-1)


# ------------------------------------------------------------------------------------------
# conversion from the sequential trainer's modules (tests, cross-checks)
# ------------------------------------------------------------------------------------------

def params_from_trainer(adapters, names, *, device=None) -> StackedModel:
    """A one-seed :class:`StackedModel` holding the weights of a trainer adapter set.

    ``adapters``: a :class:`~empirics._trainer.PeftLoraSet`, :class:`HeadSet` or the bare
    Mixer's ``_NoAdapters``; ``names``: the task adapter names in task order.
    """
    sd = {k: v.detach() for k, v in adapters.model.state_dict().items()}
    base, lora, heads = {}, {}, None
    pref = "base_model.model."
    for k, v in sd.items():
        k2 = k[len(pref):] if k.startswith(pref) else k
        if ".lora_" in k2:
            continue
        if k2.startswith("head.heads."):
            continue
        base[k2.replace(".base_layer", "")] = v
    for lin in {k.split(".lora_")[0][len(pref):] for k in sd if ".lora_A." in k}:
        a = torch.stack([sd[f"{pref}{lin}.lora_A.{n}.weight"] for n in names])
        b = torch.stack([sd[f"{pref}{lin}.lora_B.{n}.weight"] for n in names])
        lora[lin] = (a[None], b[None])
    if any(k.startswith("head.heads.") for k in sd):
        heads = (torch.stack([sd[f"head.heads.{n}.weight"] for n in names])[None],
                 torch.stack([sd[f"head.heads.{n}.bias"] for n in names])[None])
        base["head.weight"] = adapters._original_head.weight.detach()
        base["head.bias"] = adapters._original_head.bias.detach()
    scaling = 1.0
    if lora:
        mod = next(m for m in adapters.model.modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict))
        scaling = float(mod.scaling[names[0]])
    base = {k: v[None].to(device or v.device) for k, v in base.items()}
    return StackedModel(base=base, lora=lora or None, lora_scaling=scaling, heads=heads)


