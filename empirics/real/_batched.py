"""A fused, seed-batched MLP-Mixer engine for the vision protocol (Table 1).

The PEFT-ML trainer of :mod:`empirics._trainer` runs the T task forwards of a step one
after another, through HF ``peft`` modules, one seed per process. At the paper's sizes
(width 512, 64 tokens, batch 256) an accelerator is then bound by kernel launches. This
engine trains S independent seeds of one retraining method in one process:

* **stacked parameters**: every weight carries a leading seed axis ``S``; every Linear is
  one batched matmul over the seeds (``baddbmm``), every LayerNorm a normalisation
  followed by per-seed scale and shift;
* **fused tasks**: the T task batches of a LoRA-ML / Last-Layer-ML / SR step go through
  one forward, shape ``(S, T, b, ...)``; per-task LoRA factors ``A (S, T, r, in)``,
  ``B (S, T, out, r)`` are applied batch-wise (THEORY.md eq. (5): ``W + B_t A_t`` for
  task t), per-task heads ``(S, T, 2, D)`` likewise; the loss is the sum over tasks of
  each task's batch-mean cross-entropy, as in the sequential trainer;
* **optimizer**: Adam (and Reptile's inner SGD and outer interpolation) act elementwise,
  so one ``torch.optim`` optimizer on the stacked tensors is S independent optimizers;
  learning-rate schedules are the trainer's (:func:`empirics._trainer._make_scheduler`).

Randomness reproduces the trainer's streams exactly, seed by seed: initial weights from
:func:`~empirics.real._vision.init_linear_layers_` on a real :class:`MLPMixer` drawn from
the stage generator, LoRA ``A`` and fresh heads in the trainer's order, then per epoch the
shuffles and per-batch augmentation seeds drawn from the same CPU generator in the order
of ``_Loop.rounds`` / ``TaskData.batches`` / ``VisionFamily._augment``, Reptile's task
order (a permutation of the T tasks drawn at the start of every outer epoch, so each
outer epoch visits every task once), and crop, flip and dropout draws from a per-seed
device generator reseeded exactly where the trainer reseeds its one (also with
``augment=False``: the dropout masks then follow the same per-batch seeds). Hence S seeds
batched equal S single-seed runs, and a single-seed run equals the sequential trainer,
up to float summation order (tests: ``tests/test_real_batched.py``).

Stage options (:class:`~empirics._trainer.StageConfig`) implemented as the trainer does:
optimizers and schedules, Reptile's inner SGD/Adam/AdamW and outer interpolation or
Adam(W) step on the pseudo-gradient, per-task heads with LoRA on the body
(``lora_heads``), and SR's official accounting of one step per task batch
(``step_per="batch"``). Refused with a ``ValueError`` instead of run differently: LoRA
dropout, the alternating LoRA-ML scheme, ``step_per="batch"`` for LoRA-ML and
Last-Layer-ML, and any option added to ``StageConfig`` later.

Units: a group's per-seed results are stored under the sequential runner's unit keys and
full unit configurations (:func:`run`), so the two engines' units are interchangeable.

On an accelerator: images stay resident on the device; an epoch's batch indices are built
on the host from the CPU generators and copied once per epoch; training losses, validation
accuracies and the per-seed best-epoch weights (``torch.where`` on the improvement mask)
stay on the device, so a stage synchronises with the host once, at its end; bf16 autocast;
``compile=True`` wraps the fused forward-and-loss in ``torch.compile`` (once per process and
model structure; optional: compilation takes minutes on a small CPU).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._mixer import CHANNEL_EXPANSION, TOKEN_EXPANSION, MLPMixer, mixer_linear_names
from ._vision import _SEED_BOUND, init_linear_layers_
from ._vision_data import CROP_PAD

__all__ = ["BatchedMixer", "StackedModel", "stack_state_dicts", "unstack_state_dict", "params_from_trainer",
           "retrain_group", "finetune_group", "run_group", "ENGINES"]

#: Names accepted as ``engine`` by the runners: the sequential trainer or this engine.
ENGINES = ("sequential", "batched")
#: Offsets of a random crop: 0 .. 2 * pad (torchvision's ``RandomCrop(32, padding=4)``).
_CROP_CHOICES = 2 * CROP_PAD + 1
#: The Mixer's classification layer (``VisionFamily.head_module``).
_HEAD = "head"


# ------------------------------------------------------------------------------------------
# stacked parameters
# ------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------
# data plans: the trainer's host-side draws, replayed
# ------------------------------------------------------------------------------------------

def _seed_draw(gen) -> int:
    return int(torch.randint(_SEED_BOUND, (1,), generator=gen))


def rounds_plan(gen, sizes, batch_size, augment: bool) -> list:
    """One epoch of ``_Loop.rounds`` for tasks of ``sizes``: per round, per task, the
    (local indices, batch seed) the trainer draws from ``gen``, in its order (a task's
    permutation is drawn at its first batch; a shorter task restarts with a new one).
    Without augmentation the batch seed still reseeds the dropout stream."""
    n_rounds = max(math.ceil(n / batch_size) for n in sizes)
    perms, pos = [None] * len(sizes), [0] * len(sizes)
    plan = []
    for _ in range(n_rounds):
        row = []
        for t, n in enumerate(sizes):
            if perms[t] is None or pos[t] >= math.ceil(n / batch_size):
                perms[t], pos[t] = torch.randperm(n, generator=gen), 0
            idx = perms[t][pos[t] * batch_size:(pos[t] + 1) * batch_size]
            pos[t] += 1
            row.append((idx, _seed_draw(gen)))
        plan.append(row)
    return plan


def reptile_order(gen, n_tasks: int) -> list:
    """The task order of one Reptile outer epoch: the permutation of the ``n_tasks``
    tasks the trainer draws from ``gen`` before the epoch's first outer iteration."""
    return torch.randperm(n_tasks, generator=gen).tolist()


def reptile_plan(gen, t: int, sizes, batch_size, inner_steps: int) -> list:
    """The (indices, batch seed) of the ``inner_steps`` inner batches of one Reptile visit
    of task ``t``, drawn from ``gen`` as the trainer draws them (each pass over the task
    starts with a new permutation; the last pass stops at the last inner step)."""
    n, steps, out = sizes[t], 0, []
    while steps < inner_steps:
        perm = torch.randperm(n, generator=gen)
        for b in range(math.ceil(n / batch_size)):
            out.append([(perm[b * batch_size:(b + 1) * batch_size], _seed_draw(gen))])
            steps += 1
            if steps == inner_steps:
                break
    return out


# ------------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------------

class _Data:
    """Images of a family's tasks, concatenated on the device, with per-task offsets."""

    def __init__(self, xs, ys):
        self.sizes = [int(len(y)) for y in ys]
        self.offsets = [0]
        for n in self.sizes[:-1]:
            self.offsets.append(self.offsets[-1] + n)
        self.x = torch.cat(list(xs)) if len(xs) > 1 else xs[0]
        self.y = torch.cat(list(ys)) if len(ys) > 1 else ys[0]


_NETS: dict = {}
_COMPILED: list = []


def _net_for(arch: dict) -> BatchedMixer:
    """One :class:`BatchedMixer` per architecture (compiled code is reused across stages)."""
    key = tuple(sorted(arch.items()))
    if key not in _NETS:
        _NETS[key] = BatchedMixer(arch)
    return _NETS[key]


def _fused_loss(net, model, x, y, valid, masks, device_type: str, bf16: bool):
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
        logits = net.logits(net.patchify(x), model, masks)
    return task_losses(logits, y, valid)


def _compiled_loss():
    """``torch.compile`` of :func:`_fused_loss`, built once per process: each model
    structure (shared / per-task LoRA / heads, T = 4 or 1) compiles once, then every stage
    and seed group reuses it."""
    if not _COMPILED:
        _COMPILED.append(torch.compile(_fused_loss, dynamic=False))
    return _COMPILED[0]


class _Engine:
    """Shared machinery of one stage for S seeds: batches, augmentation, masks, eval."""

    def __init__(self, family, device, *, bf16: bool, compile: bool = False):
        self.family, self.tasks = family, family.tasks
        self.device = torch.device(device)
        self.net = _net_for(family.arch)
        self.bf16, self.augment = bf16, family.augment
        self.batch_size, self.eval_batch_size = family.batch_size, family.eval_batch_size
        self.compile = compile

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    # -- one step's inputs from the plan rows of S seeds ---------------------------------
    def index_steps(self, data: _Data, steps, tasks_of_seed):
        """Device index and validity tensors ``(steps, S, T, b)`` of a whole epoch (or a
        Reptile iteration), built on the host and copied once: no per-step transfer.

        ``steps[k][s]``: the step's list over task slots of ``(local indices, batch seed)``;
        ``tasks_of_seed[k][s]``: the task index of each slot. Short batches are padded to
        the batch size (constant shapes) and masked out of the loss.
        """
        K, S, T = len(steps), len(steps[0]), len(steps[0][0])
        bmax = max(len(idx) for st in steps for r in st for idx, _ in r)
        gidx = torch.zeros((K, S, T, bmax), dtype=torch.long)
        valid = torch.zeros((K, S, T, bmax))
        for k, st in enumerate(steps):
            for s in range(S):
                for j, (idx, _) in enumerate(st[s]):
                    gidx[k, s, j, :len(idx)] = idx + data.offsets[tasks_of_seed[k][s][j]]
                    valid[k, s, j, :len(idx)] = 1.0
        if self.device.type == "cuda":
            gidx, valid = gidx.pin_memory(), valid.pin_memory()
        return gidx.to(self.device, non_blocking=True), valid.to(self.device, non_blocking=True)

    def batch(self, data: _Data, rows, gidx, valid, dev_gens):
        """Images, labels, validity mask and dropout masks of one step.

        ``rows[s]``: list over the step's task slots of ``(local indices, batch seed)``;
        ``gidx``, ``valid``: this step's slice of :meth:`index_steps`. Device draws follow
        the trainer: per slot the generator is reseeded and crop/flip drawn, then the
        dropout masks of every slot, in slot order, continue the generator.
        """
        S, T, bmax = gidx.shape
        oy = torch.zeros((S, T, bmax), dtype=torch.long, device=self.device)
        ox, flip = torch.zeros_like(oy), torch.zeros((S, T, bmax), dtype=torch.bool, device=self.device)
        shapes = self.net.mask_shapes(1)
        masks = [[[None] * T for _ in range(S)] for _ in shapes]
        for s in range(S):
            g = dev_gens[s]
            for j, (idx, seed) in enumerate(rows[s]):
                g.manual_seed(seed)
                if self.augment:
                    b = len(idx)
                    oy[s, j, :b] = torch.randint(0, _CROP_CHOICES, (b,), generator=g, device=self.device)
                    ox[s, j, :b] = torch.randint(0, _CROP_CHOICES, (b,), generator=g, device=self.device)
                    flip[s, j, :b] = torch.rand((b,), generator=g, device=self.device) < 0.5
            for j, (idx, _) in enumerate(rows[s]):
                b = len(idx)
                for m, shp in enumerate(self.net.mask_shapes(b)):
                    keep = torch.rand(shp, generator=g, device=self.device) >= self.net.p
                    if b < bmax:
                        keep = torch.cat([keep, keep.new_ones((bmax - b,) + shp[1:])])
                    masks[m][s][j] = keep
        masks = [torch.stack([torch.stack(ms) for ms in site]) for site in masks]
        x = data.x[gidx]  # (S, T, b, C, H, W) uint8
        x = self._augment(x, oy, ox, flip) if self.augment else x.to(torch.float32) / 255.0
        return self.tasks.normalize(x), data.y[gidx], valid, masks

    @staticmethod
    def _augment(x_uint8, oy, ox, flip):
        """:func:`augment_batch` with pre-drawn offsets and flips, for all images at once."""
        lead, (c, h, w) = x_uint8.shape[:3], x_uint8.shape[3:]
        x = x_uint8.reshape(-1, c, h, w).to(torch.float32).div_(255.0)
        xp = F.pad(x, (CROP_PAD,) * 4)
        dev, n = x.device, x.shape[0]
        rows = (oy.reshape(-1)[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (ox.reshape(-1)[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        bi = torch.arange(n, device=dev)[:, None, None, None]
        ci = torch.arange(c, device=dev)[None, :, None, None]
        x = xp[bi, ci, rows, cols]
        x = torch.where(flip.reshape(-1)[:, None, None, None], x.flip(-1), x)
        return x.reshape(*lead, c, h, w)

    def losses(self, model, x, y, valid, masks):
        """Per (seed, task-slot) losses ``(S, T)`` of one step."""
        fn = _compiled_loss() if self.compile else _fused_loss
        return fn(self.net, model, x, y, valid, masks, self.device.type, self.bf16)

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model_for_task, x_all, y_all, S):
        """Summed loss and correct count per seed, ``(S,)`` each, on device; no dropout."""
        tot = torch.zeros(S, device=self.device)
        correct = torch.zeros(S, dtype=torch.long, device=self.device)
        for lo in range(0, len(y_all), self.eval_batch_size):
            x = self.tasks.normalize(x_all[lo:lo + self.eval_batch_size].to(torch.float32) / 255.0)
            y = y_all[lo:lo + self.eval_batch_size]
            p = self.net.patchify(x)
            with self.autocast():
                logits = self.net.logits(p.expand(S, 1, *p.shape), model_for_task).float()[:, 0]
            tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(S),
                                   reduction="none").view(S, -1).sum(-1)
            correct += (logits.argmax(-1) == y).sum(-1)
        return tot, correct


def _task_view(model: StackedModel, t: int) -> StackedModel:
    """The model as seen by task ``t`` alone: adapter / head slot ``t`` (T' = 1)."""
    lora = {k: (a[:, t:t + 1], b[:, t:t + 1]) for k, (a, b) in model.lora.items()} if model.lora else None
    heads = (model.heads[0][:, t:t + 1], model.heads[1][:, t:t + 1]) if model.heads is not None else None
    return StackedModel(base=model.base, lora=lora, lora_scaling=model.lora_scaling, heads=heads)


def _init_base(family, gens, device) -> dict:
    states = [init_linear_layers_(MLPMixer(**{**family.arch, "dropout": 0.0}), g).state_dict() for g in gens]
    return {k: v.requires_grad_(True) for k, v in stack_state_dicts(states, device).items()}


def _kaiming(shape, gen):
    w = torch.empty(shape)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
    return w


def _lora_targets(net: BatchedMixer, heads: bool) -> tuple:
    """The Linear layers that carry LoRA: all of them, or all but the head when per-task
    heads replace it (``StageConfig.lora_heads``, :meth:`Family.attach_lora_heads`)."""
    if not heads:
        return net.linear_names
    return tuple(n for n in net.linear_names if n != _HEAD and not n.startswith(_HEAD + "."))


def _init_lora(net: BatchedMixer, base: dict, names_count: int, rank: int, gens, device,
               targets=None) -> dict:
    """LoRA factors drawn as the trainer's ``PeftLoraSet``: module-major, adapter-minor."""
    targets = net.linear_names if targets is None else targets
    lora = {}
    per_seed = [{} for _ in gens]
    for s, g in enumerate(gens):
        for lin in targets:
            fan_in = base[lin + ".weight"].shape[-1]
            per_seed[s][lin] = torch.stack([_kaiming((rank, fan_in), g) for _ in range(names_count)])
    for lin in targets:
        a = torch.stack([p[lin] for p in per_seed]).to(device).requires_grad_(True)
        out = base[lin + ".weight"].shape[-2]
        b = torch.zeros((len(gens), names_count, out, rank), device=device, requires_grad=True)
        lora[lin] = (a, b)
    return lora


def _init_heads(dim: int, classes: int, count: int, gens, device) -> tuple:
    """Heads as :meth:`VisionFamily.new_head`: per head Kaiming weight then uniform bias."""
    ws, bs = [], []
    bound = 1.0 / math.sqrt(dim)
    for g in gens:
        w1, b1 = [], []
        for _ in range(count):
            w1.append(_kaiming((classes, dim), g))
            b1.append(torch.empty(classes).uniform_(-bound, bound, generator=g))
        ws.append(torch.stack(w1)); bs.append(torch.stack(b1))
    return (torch.stack(ws).to(device).requires_grad_(True), torch.stack(bs).to(device).requires_grad_(True))


def _dev_generators(device, S):
    return [torch.Generator(device=device) for _ in range(S)]


def _history_records(epochs, losses, val_acc, val_loss, tasks_names, extra=None) -> list:
    """Per-seed trainer-style history records from host arrays (one list per seed)."""
    out = []
    S = losses.shape[1]
    for s in range(S):
        hist = []
        for e, epoch in enumerate(epochs):
            rec = {"epoch": epoch}
            if extra is not None:
                rec["task"] = int(extra[e][s])
            rec["train_loss"] = float(losses[e, s])
            if val_acc is not None and val_acc[e] is not None:
                per = [{"loss": float(val_loss[e][s, t]), "accuracy": float(val_acc[e][s, t])}
                       for t in range(len(tasks_names))]
                rec["val"] = per
                rec["val_accuracy"] = sum(float(m["accuracy"]) for m in per) / len(per)
            hist.append(rec)
        out.append(hist)
    return out


#: ``StageConfig`` fields this engine implements; ``checkpoint_every`` / ``progress`` /
#: ``log_every`` only steer bookkeeping (units are resumed whole, every epoch is logged).
_SUPPORTED_STAGE_FIELDS = frozenset({
    "method", "epochs", "lr", "adapter_lr", "optimizer", "weight_decay", "rank", "lora_alpha", "lora_dropout",
    "inner_adapter_steps", "reptile_inner_steps", "reptile_inner_lr", "reptile_inner_optimizer", "reptile_outer",
    "lora_heads", "step_per", "device", "bf16", "validate_every", "select_best", "log_every", "progress",
    "checkpoint_every", "schedule", "warmup_fraction"})


def _check_supported(cfg) -> None:
    """Refuse a stage this engine would run differently from the trainer: LoRA dropout,
    alternating LoRA-ML steps, one step per task batch in LoRA-ML / Last-Layer-ML (per-task
    adapters stacked in one tensor would all take each step), or a ``StageConfig`` option
    added after this engine (set away from its default) -- rather than silently diverge."""
    if cfg.inner_adapter_steps:
        raise ValueError("the batched engine implements joint LoRA-ML steps only (inner_adapter_steps = 0)")
    if cfg.lora_dropout:
        raise ValueError("the batched engine implements LoRA without dropout (lora_dropout = 0)")
    if cfg.step_per == "batch" and cfg.method in ("lora-ml", "last-layer-ml"):
        raise ValueError(f"the batched engine implements one step per task batch for SR only, not {cfg.method}; "
                         "use the sequential engine")
    for f in dataclasses.fields(cfg):
        if f.name not in _SUPPORTED_STAGE_FIELDS and getattr(cfg, f.name) != f.default:
            raise ValueError(f"the batched engine does not implement StageConfig.{f.name} = "
                             f"{getattr(cfg, f.name)!r}; use the sequential engine")


def retrain_group(family, cfg, gens, *, compile: bool = False, progress: bool = False):
    """Retrain S seeds of ``cfg.method`` (a :class:`~empirics._trainer.StageConfig`) at once.

    ``gens``: one stage generator per seed (``stage_generator(seed, 0)``), the only source
    of randomness, consumed exactly as :func:`empirics._trainer.retrain` consumes it.

    Returns
    -------
    (base, histories, best_epochs)
        ``base``: stacked retrained base weights (the best validation epoch per seed when
        ``cfg.select_best``); ``histories``: per seed, trainer-style epoch records;
        ``best_epochs``: per seed, the selected epoch (``None`` without selection).
    """
    from .._trainer import (_make_optimizer, _make_scheduler, _reptile_inner_optimizer, _reptile_outer_step,
                            _ReptileOuter)

    _check_supported(cfg)
    eng = _Engine(family, cfg.device, bf16=cfg.bf16, compile=compile)
    dev, S = eng.device, len(gens)
    tasks = eng.tasks
    T = len(tasks.names)
    data = _Data(tasks.train_x, tasks.train_y)
    base = _init_base(family, gens, dev)
    model = StackedModel(base=base)
    if cfg.method == "lora-ml":
        if cfg.lora_heads:  # heads first, then LoRA on the body: the order of attach_lora_heads
            model.heads = _init_heads(eng.net.dim, family.arch["num_classes"], T, gens, dev)
        model.lora = _init_lora(eng.net, base, T, cfg.rank, gens, dev, _lora_targets(eng.net, cfg.lora_heads))
        model.lora_scaling = (cfg.rank if cfg.lora_alpha is None else cfg.lora_alpha) / cfg.rank
    elif cfg.method == "last-layer-ml":
        model.heads = _init_heads(eng.net.dim, family.arch["num_classes"], T, gens, dev)
    dev_gens = _dev_generators(dev, S)
    base_list = list(base.values())
    best_score = torch.full((S,), -math.inf, dtype=torch.float64, device=dev)
    best_epoch = torch.full((S,), -1, dtype=torch.long, device=dev)
    best_state = {k: v.detach().clone() for k, v in base.items()} if cfg.select_best else None
    epochs, loss_log, acc_log, vloss_log, task_log = [], [], [], [], []

    def validate(epoch):
        if not cfg.validate_every or epoch % cfg.validate_every:
            acc_log.append(None); vloss_log.append(None)
            return
        accs, vls = [], []
        for t in range(T):
            tot, cor = eng.evaluate(_task_view(model, t) if (model.lora or model.heads) else model,
                                    tasks.val_x[t], tasks.val_y[t], S)
            n = max(len(tasks.val_y[t]), 1)
            accs.append(cor.to(torch.float64) / n); vls.append(tot.to(torch.float64) / n)
        acc, vl = torch.stack(accs, 1), torch.stack(vls, 1)
        avg = accs[0].clone()
        for a in accs[1:]:  # left to right, as the trainer's Python sum
            avg = avg + a
        avg = avg / T
        acc_log.append(acc); vloss_log.append(vl)
        if cfg.select_best:
            better = avg > best_score
            best_score.copy_(torch.where(better, avg, best_score))
            best_epoch.copy_(torch.where(better, torch.full_like(best_epoch, epoch), best_epoch))
            for k, v in base.items():
                sel = better.view((S,) + (1,) * (v.dim() - 1))
                best_state[k].copy_(torch.where(sel, v.detach(), best_state[k]))

    bar = _bar(cfg.epochs, f"batched retrain-{cfg.method}", progress)
    if cfg.method == "reptile":
        if cfg.reptile_outer == "interpolate":
            outer = _ReptileOuter(base_list, lr=cfg.lr)
        else:
            outer = _make_optimizer(dataclasses.replace(cfg, optimizer=cfg.reptile_outer), [{"params": base_list}])
        sched = _make_scheduler(cfg, outer, cfg.epochs)
        orders = [None] * S
        for epoch in range(1, cfg.epochs + 1):
            if (epoch - 1) % T == 0:  # a new outer epoch: each seed draws its task order
                orders = [reptile_order(g, T) for g in gens]
            visit = [int(orders[s][(epoch - 1) % T]) for s in range(S)]
            plans = [reptile_plan(g, visit[s], data.sizes, eng.batch_size, cfg.reptile_inner_steps)
                     for s, g in enumerate(gens)]
            task_log.append(visit)
            theta = [p.detach().clone() for p in base_list]
            inner = _reptile_inner_optimizer(cfg, base_list)
            total = torch.zeros(S, dtype=torch.float64, device=dev)
            steps = [[p[k] for p in plans] for k in range(cfg.reptile_inner_steps)]
            gidx, gvalid = eng.index_steps(data, steps, [[[t] for t in visit]] * len(steps))
            for k in range(cfg.reptile_inner_steps):
                x, y, valid, masks = eng.batch(data, steps[k], gidx[k], gvalid[k], dev_gens)
                inner.zero_grad(set_to_none=True)
                loss = eng.losses(model, x, y, valid, masks)[:, 0]
                loss.sum().backward()
                inner.step()
                total += loss.detach()
            _reptile_outer_step(cfg, outer, base_list, theta, T)  # the trainer's own update
            sched.step()
            epochs.append(epoch)
            loss_log.append(total / cfg.reptile_inner_steps)
            validate(epoch)
            bar.update(1)
    else:
        groups = [{"params": base_list}, {"params": model.adapter_tensors(),
                                          "lr": cfg.lr if cfg.adapter_lr is None else cfg.adapter_lr}]
        opt = _make_optimizer(cfg, groups)
        rounds = max(math.ceil(n / eng.batch_size) for n in data.sizes)
        per_round = T if cfg.step_per == "batch" else 1
        sched = _make_scheduler(cfg, opt, cfg.epochs * rounds * per_round)
        for epoch in range(1, cfg.epochs + 1):
            plans = [rounds_plan(g, data.sizes, eng.batch_size, eng.augment) for g in gens]
            total = torch.zeros(S, dtype=torch.float64, device=dev)
            steps = [[p[r] for p in plans] for r in range(rounds)]
            gidx, gvalid = eng.index_steps(data, steps, [[list(range(T))] * S] * rounds)
            for r in range(rounds):
                x, y, valid, masks = eng.batch(data, steps[r], gidx[r], gvalid[r], dev_gens)
                if cfg.step_per == "batch":
                    # SR, the official accounting: one step per task batch, tasks in turn; the
                    # round's batches (and augmentation draws) come first, then each forward
                    # continues the dropout stream, as in the trainer
                    for t in range(T):
                        opt.zero_grad(set_to_none=True)
                        loss = eng.losses(model, x[:, t:t + 1], y[:, t:t + 1], valid[:, t:t + 1],
                                          [m[:, t:t + 1] for m in masks])[:, 0]
                        loss.sum().backward()
                        opt.step()
                        sched.step()
                        total += loss.detach()
                    continue
                opt.zero_grad(set_to_none=True)
                loss = eng.losses(model, x, y, valid, masks)
                loss.sum().backward()
                opt.step()
                sched.step()
                step = torch.zeros(S, dtype=torch.float64, device=dev)
                for t in range(T):  # the trainer's per-step float64 sum, task by task
                    step += loss[:, t].detach()
                total += step
            epochs.append(epoch)
            loss_log.append(total / rounds)
            validate(epoch)
            bar.update(1)
    bar.close()
    # the stage's one synchronisation: everything logged comes to the host here
    losses = torch.stack(loss_log).cpu().numpy() if loss_log else torch.zeros((0, S)).numpy()
    accs = [a.cpu().numpy() if a is not None else None for a in acc_log]
    vls = [v.cpu().numpy() if v is not None else None for v in vloss_log]
    hist = _history_records(epochs, losses, accs, vls, tasks.names, extra=task_log if task_log else None)
    final = {k: v.detach() for k, v in (best_state if cfg.select_best else base).items()}
    if cfg.select_best:
        be = best_epoch.cpu().tolist()
        best = [e if e >= 0 else None for e in be]
        # no validation epoch at all: the trainer keeps the last weights
        final = {k: torch.where((best_epoch >= 0).view((S,) + (1,) * (v.dim() - 1)), v, base[k].detach())
                 for k, v in final.items()}
    else:
        best = [None] * S
    return final, hist, best


def finetune_group(family, base: dict, cfg, gens, *, compile: bool = False, progress: bool = False):
    """Fine-tune a fresh rank-``cfg.rank`` LoRA (``cfg.method == "lora"``) or a fresh head
    (``"last-layer"``) on the frozen stacked ``base`` of S seeds, on the test task.

    ``gens``: one generator per seed (``stage_generator(seed, 1, peft index, 0)``).

    Returns
    -------
    list of dict
        Per seed: ``accuracy``, ``loss`` (after the last epoch), ``accuracy_per_epoch`` and
        ``best_accuracy_over_epochs``, as :func:`empirics.real._run._run_unit` records them.
    """
    from .._trainer import _make_optimizer, _make_scheduler

    _check_supported(cfg)
    eng = _Engine(family, cfg.device, bf16=cfg.bf16, compile=compile)
    dev, S, tasks = eng.device, len(gens), eng.tasks
    data = _Data([tasks.ft_x], [tasks.ft_y])
    frozen = {k: v.detach().clone().to(dev) for k, v in base.items()}
    model = StackedModel(base=frozen)
    if cfg.method == "lora":
        if cfg.lora_heads:  # a fresh head, then LoRA on the body: the order of attach_lora_heads
            model.heads = _init_heads(eng.net.dim, family.arch["num_classes"], 1, gens, dev)
        model.lora = _init_lora(eng.net, frozen, 1, cfg.rank, gens, dev, _lora_targets(eng.net, cfg.lora_heads))
        model.lora_scaling = (cfg.rank if cfg.lora_alpha is None else cfg.lora_alpha) / cfg.rank
    else:
        model.heads = _init_heads(eng.net.dim, family.arch["num_classes"], 1, gens, dev)
    opt = _make_optimizer(cfg, [{"params": model.adapter_tensors()}])
    rounds = math.ceil(data.sizes[0] / eng.batch_size)
    sched = _make_scheduler(cfg, opt, cfg.epochs * rounds)
    dev_gens = _dev_generators(dev, S)
    n_eval = max(len(tasks.eval_y), 1)
    accs, losses = [], []
    bar = _bar(cfg.epochs, f"batched finetune-{cfg.method}", progress)
    for _ in range(1, cfg.epochs + 1):
        plans = [rounds_plan(g, data.sizes, eng.batch_size, eng.augment) for g in gens]
        steps = [[p[r] for p in plans] for r in range(rounds)]
        gidx, gvalid = eng.index_steps(data, steps, [[[0]] * S] * rounds)
        for r in range(rounds):
            x, y, valid, masks = eng.batch(data, steps[r], gidx[r], gvalid[r], dev_gens)
            opt.zero_grad(set_to_none=True)
            eng.losses(model, x, y, valid, masks).sum().backward()
            opt.step()
            sched.step()
        tot, cor = eng.evaluate(model, tasks.eval_x, tasks.eval_y, S)
        accs.append(cor); losses.append(tot)
        bar.update(1)
    bar.close()
    if not accs:  # zero epochs: the untouched fresh adapter
        tot, cor = eng.evaluate(model, tasks.eval_x, tasks.eval_y, S)
        accs, losses = [cor], [tot]
    acc = (torch.stack(accs).to(torch.float64) / n_eval).cpu().numpy()
    loss = (torch.stack(losses).to(torch.float64) / n_eval).cpu().numpy()
    out = []
    for s in range(S):
        per = [float(a) for a in acc[:, s]] if cfg.epochs else []
        out.append({"task": "test", "accuracy": float(acc[-1, s]), "loss": float(loss[-1, s]),
                    "best_accuracy_over_epochs": max(per) if per else float(acc[-1, s]),
                    "accuracy_per_epoch": per})
    return out


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _bar(total, desc, progress):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=None)


def run_group(cfg, family, method: str, seeds, *, compile: bool = False, progress: bool = False) -> list:
    """The vision protocol of :func:`empirics.real._run._run_unit` for several seeds at once.

    Retrain ``method`` for every seed of ``seeds`` together, keep each seed's best
    average-validation epoch, then every fine-tuning of ``PAIRINGS[method]`` in
    ``cfg.peft`` on the test task (8, 9), again all seeds together.

    Returns
    -------
    list of dict
        One unit per seed, in the format of ``_run_unit`` (merged by ``summarize``). Wall
        times are the group's, divided by the number of seeds (``group`` holds the
        group's own).
    """
    from ._run import _compact_history, _stage_configs, stage_generator

    seeds = [int(s) for s in seeds]
    T = len(family.retrain_tasks())
    rt_cfg, ft_cfgs = _stage_configs(cfg, method, T)
    t0 = time.perf_counter()
    base, hists, best = retrain_group(family, rt_cfg, [stage_generator(s, 0) for s in seeds],
                                      compile=compile, progress=progress)
    if base[next(iter(base))].is_cuda:
        torch.cuda.synchronize()
    rt_wall = time.perf_counter() - t0
    units = [{"retrain": method, "seed": s, "engine": "batched", "retrain_wall_s": rt_wall / len(seeds),
              "best_epoch": best[i], "retrain_history": _compact_history(hists[i]), "finetune": {}}
             for i, s in enumerate(seeds)]
    ft_walls = {}
    for pi, (peft, ft_cfg) in enumerate(ft_cfgs.items()):
        t1 = time.perf_counter()
        res = finetune_group(family, base, ft_cfg, [stage_generator(s, 1, pi, 0) for s in seeds],
                             compile=compile, progress=progress)
        ft_walls[peft] = time.perf_counter() - t1
        for i, r in enumerate(res):
            units[i]["finetune"][peft] = [{**r, "wall_s": ft_walls[peft] / len(seeds)}]
    wall = time.perf_counter() - t0
    for u in units:
        u["wall_s"] = wall / len(seeds)
        u["group"] = {"seeds": seeds, "retrain_wall_s": rt_wall, "finetune_wall_s": ft_walls, "wall_s": wall}
    return units


# ------------------------------------------------------------------------------------------
# units and the run of a whole table
# ------------------------------------------------------------------------------------------

_FAMILIES: dict = {}


def _config_from_dict(d: dict):
    from ._run import RunConfig

    d = dict(d)
    for k in ("seeds", "retrain", "peft"):
        d[k] = tuple(d[k])
    return RunConfig(**d)


def _family_for(cfg):
    """The vision family of ``cfg``, built once per process (data loading and decoding)."""
    import json

    from ._run import build_family

    # everything but the lists of seeds / methods / fine-tunings and the note can shape the data
    shaping = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("seeds", "retrain", "peft", "note")}
    key = json.dumps(shaping, sort_keys=True, default=str)
    if key not in _FAMILIES:
        _FAMILIES.clear()  # one data set resident at a time
        _FAMILIES[key] = build_family(cfg, verbose=False)
    return _FAMILIES[key]


def batched_unit(config: dict, method: str, seeds: list, compile: bool = False) -> list:
    """Unit function (:class:`landscape.runtime.executor.Unit`): one (method, seed group) of ``config``
    (a ``RunConfig`` as a dict), trained by :func:`run_group`; returns the per-seed units."""
    cfg = _config_from_dict(config)
    if cfg.experiment != "vision":
        raise ValueError("the batched engine runs the vision experiment only")
    return run_group(cfg, _family_for(cfg), method, seeds, compile=compile)


def seed_groups(seeds, group_size: int | None) -> list:
    """Consecutive groups of at most ``group_size`` seeds (``None``: all in one group)."""
    seeds = list(seeds)
    if group_size is None or group_size >= len(seeds):
        return [seeds] if seeds else []
    if group_size < 1:
        raise ValueError(f"group size must be >= 1, got {group_size}")
    return [seeds[i:i + group_size] for i in range(0, len(seeds), group_size)]


def seed_units(cfg) -> dict:
    """``{(method, seed): Unit}``: the sequential runner's units of ``cfg``
    (:func:`empirics.real._run.make_units`), whose keys and full configurations the
    batched engine stores its per-seed results under."""
    from ._run import make_units

    return {(u.config["method"], u.config["seed"]): u for u in make_units(cfg)}


def unit_store(out):
    """The :class:`~landscape.runtime.executor.ResultStore` of ``out``'s per-seed units,
    ``<out>/units``: the sequential runner's store (one format, one folder)."""
    from pathlib import Path

    from landscape.runtime.store import ResultStore

    return ResultStore(Path(out) / "units")


def planned_units(cfg, out, *, group_size: int | None = None, compile: bool = False,
                  resume: bool = True) -> list:
    """The :class:`~landscape.runtime.executor.Unit` list of ``cfg`` still to compute in ``out``:
    one per (retraining method, group of seeds whose per-seed units are missing).

    A per-seed unit is done when ``<out>/units`` holds it with ``cfg``'s full unit
    configuration, whichever engine computed it; one stored with other settings raises
    :class:`~landscape.runtime.executor.ConfigMismatch` (a ``ValueError``) here, before any work."""
    from landscape.runtime.executor import Resources, Unit

    store, per_seed = unit_store(out), seed_units(cfg)
    done = {k for k, u in per_seed.items() if store.has(u)}  # ConfigMismatch before any work
    config = dataclasses.asdict(cfg)
    gpu = 1.0 if str(cfg.device).startswith("cuda") else 0.0
    units = []
    for method in cfg.retrain:
        todo = [s for s in cfg.seeds if not (resume and (method, s) in done)]
        for group in seed_groups(todo, group_size):
            units.append(Unit(key=f"{method}_seeds{'-'.join(map(str, group))}", fn=batched_unit,
                              config={"config": config, "method": method, "seeds": list(group),
                                      "compile": bool(compile)},
                              resources=Resources(cpus=1.0, gpus=gpu)))
    return units


def check_config(cfg) -> None:
    """Raise ``ValueError`` (before any work) when ``cfg`` is not a vision run or asks for
    a stage option this engine does not implement (:func:`_check_supported`)."""
    from ._run import _stage_configs

    if cfg.experiment != "vision":
        raise ValueError("the batched engine runs the vision experiment only")
    for method in cfg.retrain:
        # the number of tasks only sets Reptile's epoch count and validation period
        rt, fts = _stage_configs(cfg, method, 1)
        for stage in (rt, *fts.values()):
            _check_supported(stage)


def store_seed_results(cfg, out, per_seed: list) -> list:
    """Save the per-seed results of one group unit in ``<out>/units``, each under its
    sequential unit (key ``<method>_seed<s>``, full unit configuration); returns them as
    stored (read back, as a resumed run sees them)."""
    store, units = unit_store(out), seed_units(cfg)
    back = []
    for r in per_seed:
        u = units[(r["retrain"], int(r["seed"]))]
        store.save(u, r)
        back.append(store.load(u))
    return back


def engine_of(units) -> str:
    """The engine of merged units: ``batched``, ``sequential`` (units without an ``engine``
    field), or ``batched+sequential`` for a folder holding both."""
    names = sorted({u.get("engine", "sequential") for u in units if u is not None})
    return "+".join(names) if names else "none"


def stored_results(cfg, out) -> list:
    """The per-seed results of ``cfg`` stored in ``<out>/units`` (either engine's)."""
    store = unit_store(out)
    return [store.load(u) for u in seed_units(cfg).values() if store.has(u)]


def run(cfg, out, *, group_size: int | None = None, executor=None, compile: bool = False,
        resume: bool = True, verbose: bool = True, progress: bool = False,
        max_units: int | None = None, deadline: float | None = None) -> dict:
    """Run the vision table of ``cfg`` with the batched engine; write units and the record.

    Each (method, seed group) is a :class:`~landscape.runtime.executor.Unit` run by
    :func:`~landscape.runtime.executor.run_units`; its per-seed results go to the sequential
    runner's :class:`~landscape.runtime.executor.ResultStore` ``<out>/units`` under the same keys
    (``<method>_seed<s>``) and full unit configurations (:func:`empirics.real._run.unit_config`).
    The two engines' units are therefore interchangeable: a sequential run (or
    ``--summarize-only``) in the same folder reads a batched unit as done and vice versa;
    each batched unit says ``"engine": "batched"``, and the record's ``engine`` names the
    engines of the units it merges. They are the same protocol, equal up to float
    summation order (``tests/test_real_batched.py``).

    Parameters
    ----------
    max_units : int, optional
        Stop after this many units (an interrupted run; the next call resumes).
    deadline : float, optional
        ``time.monotonic()`` after which no further unit is started.
    """
    import sys
    from pathlib import Path

    from landscape.runtime.executor import run_units

    from .._records import write_json
    from ._run import summarize

    check_config(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    planned = planned_units(cfg, out, group_size=group_size, compile=compile, resume=resume)
    if not resume:  # recompute this configuration's units, as the sequential runner does
        store = unit_store(out)
        for u in seed_units(cfg).values():
            store.path(u.key).unlink(missing_ok=True)
    family = _family_for(cfg)
    write_json(out / f"{cfg.experiment}_config.json",
               {"config": cfg, "family": family.describe(), "engine": "batched",
                "reader": getattr(family, "reader", None)})
    done = 0
    for unit in planned:
        if (max_units is not None and done >= max_units) or (deadline is not None and time.monotonic() > deadline):
            if verbose:
                print(f"[vision batched] stopping before {unit.key} (limit reached); rerun to resume",
                      file=sys.stderr)
            break
        (per_seed,) = run_units([unit], executor=executor, progress=False)
        per_seed = store_seed_results(cfg, out, per_seed)
        done += 1
        if verbose:
            accs = {p: [round(ts[0]["accuracy"], 4) for ts in [u["finetune"][p] for u in per_seed]]
                    for p in per_seed[0]["finetune"]}
            print(f"[vision batched] {unit.key}: fine-tuned accuracy {accs} "
                  f"({per_seed[0]['group']['wall_s']:.1f} s)", file=sys.stderr)
    results = stored_results(cfg, out)
    record = summarize(results, cfg, family_description=family.describe())
    record["engine"] = engine_of(results)
    record["total_wall_s"] = time.perf_counter() - t0
    write_json(out / f"{cfg.experiment}_record.json", record)
    return record
