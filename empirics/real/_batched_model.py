"""The seed- and task-batched MLP-Mixer of the batched vision engine: stacked weights of S
seeds (:class:`StackedModel`), the functional forward (:class:`BatchedMixer`), the per-task
losses, and conversion from the sequential trainer's modules (:func:`params_from_trainer`).
See :mod:`empirics.real._batched` for the engine as a whole.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._mixer import CHANNEL_EXPANSION, TOKEN_EXPANSION, MLPMixer, mixer_linear_names

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

    # -- building blocks ----------------------------------------------------------------
    @staticmethod
    def _linear(x, name, model: StackedModel):
        """x (S, T, M, in) -> (S, T, M, out): per-seed ``x W^T + b`` plus task-wise LoRA."""
        s, t, m, i = x.shape
        w, b = model.base[name + ".weight"], model.base[name + ".bias"]
        y = torch.baddbmm(b.unsqueeze(1), x.reshape(s, t * m, i), w.transpose(1, 2)).view(s, t, m, -1)
        if model.lora is not None and name in model.lora:
            a, bb = model.lora[name]  # (S, T', r, in), (S, T', out, r) with T' in {1, T}
            low = torch.matmul(torch.matmul(x, a.transpose(-1, -2)), bb.transpose(-1, -2))
            # in place: baddbmm's backward does not read its output; x * 1.0 == x exactly
            y = y.add_(low if model.lora_scaling == 1.0 else low * model.lora_scaling)
        return y

    @staticmethod
    def _norm(x, name, model: StackedModel):
        w, b = model.base[name + ".weight"], model.base[name + ".bias"]
        shape = (w.shape[0],) + (1,) * (x.dim() - 2) + (w.shape[1],)
        return torch.addcmul(b.view(shape), F.layer_norm(x, (x.shape[-1],)), w.view(shape))

    def _dropout(self, x, keep):
        # the trainer's GeneratorDropout, x * keep / (1 - p), bit for bit (x * keep is x or 0
        # exactly), without casting the boolean mask to floats
        return x if keep is None else torch.where(keep, x, 0.0) / (1.0 - self.p)

    def _mlp(self, x, prefix, model, keeps):
        s, t, b, rows, i = x.shape
        h = self._linear(x.reshape(s, t, b * rows, i), prefix + ".0", model)
        h = self._dropout(F.gelu(h).view(s, t, b, rows, -1), keeps[0])
        h = self._linear(h.reshape(s, t, b * rows, -1), prefix + ".3", model).view(s, t, b, rows, -1)
        return self._dropout(h, keeps[1])

    def logits(self, patches, model: StackedModel, masks=None):
        """Logits ``(S, T, b, classes)`` of patches ``(S, T, b, patches, p*p*C)``.

        ``masks``: keep-masks from :meth:`mask_shapes` stacked to ``(S, T, ...)`` (training)
        or ``None`` (evaluation).
        """
        s, t, b, n, pd = patches.shape
        x = self._linear(patches.reshape(s, t, b * n, pd), "patch_embed", model).view(s, t, b, n, -1)
        for k in range(self.depth):
            pre = f"blocks.{k}."
            km = masks[4 * k:4 * k + 4] if masks else (None,) * 4
            h = self._norm(x, pre + "token_norm", model).transpose(-1, -2)
            x = x + self._mlp(h, pre + "token_mlp", model, km[:2]).transpose(-1, -2)
            x = x + self._mlp(self._norm(x, pre + "channel_norm", model), pre + "channel_mlp", model, km[2:])
        feats = self._norm(x, "norm", model).mean(dim=-2)  # (S, T, b, D)
        if model.heads is not None:
            w, bias = model.heads
            return torch.matmul(feats, w.transpose(-1, -2)) + bias.unsqueeze(-2)
        return self._linear(feats, "head", model)


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


