"""The batched vision engine's machinery for one stage of S seeds: the trainer's host-side
random draws replayed (:func:`rounds_plan`, :func:`reptile_order`, :func:`reptile_plan`),
batches with augmentation and dropout masks (:class:`Engine`), evaluation, the initial
weights, adapters and heads drawn as the trainer draws them, the trainer-style history
records, and the stage options the engine refuses (:func:`check_supported`).
See :mod:`empirics.real._batched` for the engine as a whole.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _malloc as malloc
from ._batched_model import HEAD, BatchedMixer, StackedModel, stack_state_dicts, task_losses
from ._mixer import MLPMixer, drop_probability, keep_threshold, keep_words, mask_words
from ._vision import _SEED_BOUND, init_linear_layers_
from ._vision_data import CROP_PAD

__all__ = ["FUSED_IMAGES_CPU", "REPTILE_MIN_SEEDS_CPU", "route", "CROP_CHOICES", "seed_draw", "rounds_plan", "reptile_order", "reptile_plan", "BatchData", "net_for",
           "fused_loss", "compiled_loss", "Engine", "task_view", "init_base", "kaiming", "lora_targets", "init_lora",
           "init_heads", "dev_generators", "history_records", "SUPPORTED_STAGE_FIELDS", "check_supported"]

#: On a CPU, the most images one fused step holds before :meth:`Engine.backward` runs one
#: backward per task slot instead (measured with ``benchmarks/bench_real.py``: at width 64,
#: batch 64 and 2 seeds, 512 images fused took about 1.3x the CPU time of 4 chunks of 128).
FUSED_IMAGES_CPU = 256
#: On a CPU, Reptile retraining of fewer seeds than this together runs on the sequential
#: trainer (:func:`route`): one task slot of one batch per inner step is too little work
#: for the fused step to pay for its bookkeeping. Measured with ``benchmarks/bench_real.py``
#: at the CPU Table 1's size (width 32, batch 8), process CPU time batched / sequential:
#: one seed 1.04 (``benchmarks/records/bench_real-table1-s1.json``; 1.28 in an earlier run
#: at 200 images/task), two seeds 0.75, five 0.59 (``-s5.json``); every other method was
#: faster batched from one seed on. Re-measured after the engine's CPU work (same results
#: bit for bit, ``-s1-v2.json`` / ``-s5-v2.json``, best of 4 alternating runs at load 5-7):
#: one seed 1.04 (main's engine in the same window: 1.23), five 0.57; still routed. With malloc
#: kept on the heap (``-v3`` records, load about 1): one seed 0.99 at the Table 1 size and at
#: width 64 (batch 64), five 0.53 and 0.86 -- a tie for one seed, still routed. Fine-tuning stays batched: a tenth of a Table-1 Reptile
#: unit took 15.9 s of CPU with batched fine-tuning, 16.2 s all sequential.
REPTILE_MIN_SEEDS_CPU = 2
#: Offsets of a random crop: 0 .. 2 * pad (torchvision's ``RandomCrop(32, padding=4)``).
CROP_CHOICES = 2 * CROP_PAD + 1


def route(cfg, method: str, n_seeds: int) -> tuple:
    """``(engine, reason)``: the engine of the retraining stage of ``method`` for a group of
    ``n_seeds`` seeds on ``cfg.device`` -- ``"batched"``, or ``"sequential"`` (the trainer,
    seed after seed) where that measured faster: Reptile with fewer than
    :data:`REPTILE_MIN_SEEDS_CPU` seeds on a CPU. ``reason`` says why when it is not batched."""
    if not str(cfg.device).startswith("cuda") and method == "reptile" and n_seeds < REPTILE_MIN_SEEDS_CPU:
        return "sequential", (f"Reptile with {n_seeds} seed(s) per group on a CPU: the sequential trainer measured "
                              f"faster; batched from {REPTILE_MIN_SEEDS_CPU} seeds together")
    return "batched", ""


def seed_draw(gen) -> int:
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
            row.append((idx, seed_draw(gen)))
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
            out.append([(perm[b * batch_size:(b + 1) * batch_size], seed_draw(gen))])
            steps += 1
            if steps == inner_steps:
                break
    return out


# ------------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------------

class BatchData:
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


def net_for(arch: dict) -> BatchedMixer:
    """One :class:`BatchedMixer` per architecture (compiled code is reused across stages)."""
    key = tuple(sorted(arch.items()))
    if key not in _NETS:
        _NETS[key] = BatchedMixer(arch)
    return _NETS[key]


def fused_loss(net, model, patches, y, valid, masks, device_type: str, bf16: bool):
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
        logits = net.logits(patches, model, masks, internal_masks=True)
    return task_losses(logits, y, valid)


def compiled_loss():
    """``torch.compile`` of :func:`fused_loss`, built once per process: each model
    structure (shared / per-task LoRA / heads, T = 4 or 1) compiles once, then every stage
    and seed group reuses it."""
    if not _COMPILED:
        _COMPILED.append(torch.compile(fused_loss, dynamic=False))
    return _COMPILED[0]


class Engine:
    """Shared machinery of one stage for S seeds: batches, augmentation, masks, eval."""

    def __init__(self, family, device, *, bf16: bool, compile: bool = False):
        self.family, self.tasks = family, family.tasks
        self.device = torch.device(device)
        malloc.tune_for(self.device)  # on a CPU: large activations reused, not page-faulted in each step
        self.net = net_for(family.arch)
        self.bf16, self.augment = bf16, family.augment
        self.batch_size, self.eval_batch_size = family.batch_size, family.eval_batch_size
        self.compile = compile
        #: one backward per task slot (:meth:`backward`): on a CPU, when a fused step would
        #: hold more than :data:`FUSED_IMAGES_CPU` images (set per stage by the stages)
        self.chunk_tasks = False

    def plan_chunks(self, seeds: int, slots: int) -> None:
        """Choose :attr:`chunk_tasks` for a stage of ``seeds`` seeds and ``slots`` task slots."""
        self.chunk_tasks = self.device.type == "cpu" and seeds * slots * self.batch_size > FUSED_IMAGES_CPU

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    # -- one step's inputs from the plan rows of S seeds ---------------------------------
    def index_steps(self, data: BatchData, steps, tasks_of_seed):
        """Device index and validity tensors ``(steps, S, T, b)`` of a whole epoch (or a
        Reptile iteration), built on the host and copied once: no per-step transfer.

        ``steps[k][s]``: the step's list over task slots of ``(local indices, batch seed)``;
        ``tasks_of_seed[k][s]``: the task index of each slot. Short batches are padded to
        the batch size (constant shapes) and masked out of the loss.
        """
        K, S, T = len(steps), len(steps[0]), len(steps[0][0])
        flat = [idx for st in steps for r in st for idx, _ in r]
        bmax = max(len(idx) for idx in flat)
        # one stack and three vectorised ops, not four indexed writes per (step, seed, slot)
        idx = torch.stack([F.pad(i, (0, bmax - len(i))) if len(i) < bmax else i for i in flat]).view(K, S, T, bmax)
        lens = torch.tensor([len(i) for i in flat]).view(K, S, T, 1)
        offsets = torch.tensor([data.offsets[t] for k in range(K) for s in range(S) for t in tasks_of_seed[k][s]])
        keep = torch.arange(bmax) < lens
        gidx = torch.where(keep, idx + offsets.view(K, S, T, 1), 0)  # padded entries: image 0, masked out
        valid = keep.to(torch.float32)
        if self.device.type == "cuda":
            gidx, valid = gidx.pin_memory(), valid.pin_memory()
        return gidx.to(self.device, non_blocking=True), valid.to(self.device, non_blocking=True)

    def batch(self, data: BatchData, rows, gidx, valid, dev_gens):
        """Patches, labels, validity mask and dropout multipliers of one step.

        ``rows[s]``: list over the step's task slots of ``(local indices, batch seed)``;
        ``gidx``, ``valid``: this step's slice of :meth:`index_steps`. Device draws follow
        the trainer: per slot the generator is reseeded and crop/flip drawn, then the
        dropout masks of every slot, in slot order, continue the generator -- one draw of
        all of a seed's mask words (:func:`mask_words`), the trainer's per-site draws
        back to back. Patches come as ``(S, T, b, patches, p*p*C)``, a view of memory in
        the engine's patch-major layout (:meth:`BatchedMixer.logits` reads them without a copy).
        """
        S, T, bmax = gidx.shape
        dev = self.device
        draws = []  # per slot (crop rows, crop columns, flip uniforms), padded to bmax after
        sizes = [[len(idx) for idx, _ in rows[s]] for s in range(S)]
        counts = [sum(keep_words(math.prod(shp)) for b in sz for shp in self.net.mask_shapes(b)) for sz in sizes]
        # equal counts (every seed's batches full): each seed's words drawn straight into its
        # row of one buffer, which the masks read without stacking the seeds' words
        words = (torch.empty((S, counts[0]), dtype=torch.int64, device=dev) if counts[0] and len(set(counts)) == 1
                 else [None] * S)
        for s in range(S):
            g = dev_gens[s]
            for idx, seed in rows[s]:
                g.manual_seed(seed)
                if self.augment:
                    b = len(idx)
                    draws.append((torch.randint(0, CROP_CHOICES, (b,), generator=g, device=dev),
                                  torch.randint(0, CROP_CHOICES, (b,), generator=g, device=dev),
                                  torch.rand((b,), generator=g, device=dev)))
            if counts[s]:
                out = words[s] if torch.is_tensor(words) else None
                w = mask_words(counts[s], g, dev, out=out)
                if out is None:
                    words[s] = w
        masks = self.dropout_multipliers(words, sizes, bmax)
        x = data.x.index_select(0, gidx.reshape(-1)).view(*gidx.shape, *data.x.shape[1:])  # (S, T, b, C, H, W) uint8
        # (index_select copies whole images; ``data.x[gidx]`` gathered byte by byte, 20x slower)
        if self.augment:
            # one stack per draw kind, not three indexed writes per slot (padded images:
            # offset 0, no flip -- a uniform of 1; their rows are masked out of the loss)
            oy, ox, u = (torch.stack([F.pad(d[i], (0, bmax - len(d[i])), value=float(i == 2)) if len(d[i]) < bmax
                                      else d[i] for d in draws]).view(S, T, bmax) for i in range(3))
            x = self._augment(x, oy, ox, u < 0.5)
        return self.patches(x), data.y[gidx], valid, masks

    def dropout_multipliers(self, words, sizes, bmax: int) -> list:
        """The dropout multipliers of one step (per site, the layout of
        :meth:`BatchedMixer.mask_permutation`; padded images' entries 0) from
        each seed's mask words (a list of 1-D tensors, or one ``(S, count)`` tensor, row s
        seed s's words); ``sizes[s][j]``: the images of seed s's slot j. Equal, bit for
        bit, to :func:`dropout_noise` of the trainer's :func:`keep_mask` draws."""
        shapes = self.net.mask_shapes(bmax)
        if not shapes:
            return []
        dev, S, T = self.device, len(sizes), len(sizes[0])
        threshold = keep_threshold(self.net.p)
        perms = [self.net.mask_permutation(k) for k in range(len(shapes))]
        masks = [torch.empty([((S, T) + tuple(shp))[i] for i in perm], device=dev) for shp, perm in zip(shapes, perms)]
        counts = [math.prod(shp) for shp in shapes]
        # each mask holds (word >= threshold) as a float32 1 / 0, written by the comparison
        # straight into it, then times the float32 scale: the keep-mask's 1 / 0 times the
        # scale, as dropout_noise (a bool keep-mask and its conversion would be two more passes)
        if all(b == bmax for row in sizes for b in row) and all(c % 4 == 0 for c in counts):
            # full batches, whole words per site: every site of every slot and seed at once
            w16 = (words if torch.is_tensor(words) else torch.stack(words)).view(torch.int16).view(S, T, -1)
            off = 0
            for m, shp, perm, c in zip(masks, shapes, perms, counts):
                torch.ge(w16[:, :, off:off + c].view(S, T, *shp).permute(*perm), threshold, out=m)
                off += c
        else:
            for s in range(S):  # padded batches or partial words: slot by slot, site by site
                w16, off = words[s].view(torch.int16), 0
                for j, b in enumerate(sizes[s]):
                    for k, shp in enumerate(self.net.mask_shapes(b)):
                        c = math.prod(shp)
                        perm = [a - 2 for a in perms[k][2:]]
                        site, axis = masks[k][s, j], perm.index(0)
                        torch.ge(w16[off:off + c].view(shp).permute(*perm), threshold, out=site.narrow(axis, 0, b))
                        if b < bmax:  # padded images' multipliers are 0
                            site.narrow(axis, b, bmax - b).fill_(0.0)
                        off += 4 * keep_words(c)
        scale = 1.0 / (1.0 - drop_probability(self.net.p))
        for m in masks:
            m.mul_(scale)
        return masks

    def patches(self, x_uint8):
        """Images ``(S, T, b, C, H, W)`` (uint8) -> normalised patches ``(S, T, b, patches,
        p*p*C)`` as the trainer computes them (scale to [0, 1], normalise, patchify), with
        the patch layout taken on the bytes and the memory patch-major: ``(S, T, patches,
        b, p*p*C)`` transposed."""
        S, T, b, c, h, w = x_uint8.shape
        p = self.net.patch
        gy, gx = h // p, w // p
        # the trainer's elementwise arithmetic, in the images' own layout, where the
        # per-channel constants broadcast over whole planes (vectorised); then two copies
        # with contiguous inner runs -- channels last (a plain 2-D transpose per image), then
        # the patch-major gather of (px, C) runs -- instead of one gather of single bytes
        # at a stride of h * w (about 2.7x the CPU time at the CPU Table 1's size)
        x = x_uint8.to(torch.float32).div_(255.0)
        x = x.sub_(self.tasks.mean.reshape(c, 1, 1)).div_(self.tasks.std.reshape(c, 1, 1))
        x = x.view(S * T * b, c, h * w).transpose(1, 2).contiguous()  # (S*T*b, H*W, C)
        x = x.view(S, T, b, gy, p, gx, p, c).permute(0, 1, 3, 5, 2, 4, 6, 7)  # (S,T,gy,gx,b,py,px,C)
        return x.reshape(S, T, gy * gx, b, p * p * c).transpose(2, 3)

    @staticmethod
    def _augment(x_uint8, oy, ox, flip):
        """:func:`augment_batch` with pre-drawn offsets and flips, for all images at once, on
        the bytes (zero padding is 0 after scaling, so cropping first changes no value): the
        padded images and their mirror images, each crop one window of them, gathered by one
        ``index_select`` of whole windows (a byte-by-byte advanced index took 6x longer)."""
        lead, (c, h, w) = x_uint8.shape[:3], x_uint8.shape[3:]
        xp = F.pad(x_uint8.reshape(-1, c, h, w), (CROP_PAD,) * 4)
        n, (_, hp, wp) = xp.shape[0], xp.shape[1:]
        both = torch.cat([xp, xp.flip(-1)])  # (2n, c, hp, wp): images, then their mirror images
        fl = flip.reshape(-1)
        # the mirror of the window at column ox is the mirrored image's window at 2 * pad - ox
        cols = torch.where(fl, 2 * CROP_PAD - ox.reshape(-1), ox.reshape(-1))
        first = (fl.long() * n + torch.arange(n, device=xp.device)) * (c * hp * wp) + oy.reshape(-1) * wp + cols
        # every window, by its first byte: (positions, c, h, w) over the same memory; the last
        # position is the last image's bottom-right window, which ends at the last byte
        positions = (2 * n - 1) * c * hp * wp + (hp - h) * wp + (wp - w) + 1
        windows = both.as_strided((positions, c, h, w), (1, hp * wp, wp, 1))
        return windows.index_select(0, first).view(*lead, c, h, w)

    def losses(self, model, x, y, valid, masks):
        """Per (seed, task-slot) losses ``(S, T)`` of one step."""
        fn = compiled_loss() if self.compile else fused_loss
        return fn(self.net, model, x, y, valid, masks, self.device.type, self.bf16)

    def backward(self, model, x, y, valid, masks):
        """Backward of the summed per (seed, task-slot) losses of one step; returns them
        detached, ``(S, T)``. With :attr:`chunk_tasks` one task slot at a time (all seeds
        together), gradients accumulating as in the trainer, which runs one backward per
        task: a T times smaller working set of activations (on a CPU the fused step's
        activations outgrow the caches long before its matmuls stop gaining from size)."""
        T = x.shape[1]
        if not self.chunk_tasks or T == 1:
            loss = self.losses(model, x, y, valid, masks)
            loss.sum().backward()
            return loss.detach()
        out = []
        for t in range(T):
            view = task_view(model, t) if (model.lora or model.heads is not None) else model
            loss = self.losses(view, x[:, t:t + 1], y[:, t:t + 1], valid[:, t:t + 1], [m[:, t:t + 1] for m in masks])
            loss.sum().backward()
            out.append(loss.detach())
        return torch.cat(out, 1)

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


def task_view(model: StackedModel, t: int) -> StackedModel:
    """The model as seen by task ``t`` alone: adapter / head slot ``t`` (T' = 1)."""
    lora = {k: (a[:, t:t + 1], b[:, t:t + 1]) for k, (a, b) in model.lora.items()} if model.lora else None
    heads = (model.heads[0][:, t:t + 1], model.heads[1][:, t:t + 1]) if model.heads is not None else None
    return StackedModel(base=model.base, lora=lora, lora_scaling=model.lora_scaling, heads=heads)


def init_base(family, gens, device) -> dict:
    states = [init_linear_layers_(MLPMixer(**{**family.arch, "dropout": 0.0}), g).state_dict() for g in gens]
    return {k: v.requires_grad_(True) for k, v in stack_state_dicts(states, device).items()}


def kaiming(shape, gen):
    w = torch.empty(shape)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
    return w


def lora_targets(net: BatchedMixer, heads: bool) -> tuple:
    """The Linear layers that carry LoRA: all of them, or all but the head when per-task
    heads replace it (``StageConfig.lora_heads``, :meth:`Family.attach_lora_heads`)."""
    if not heads:
        return net.linear_names
    return tuple(n for n in net.linear_names if n != HEAD and not n.startswith(HEAD + "."))


def init_lora(net: BatchedMixer, base: dict, names_count: int, rank: int, gens, device,
               targets=None) -> dict:
    """LoRA factors drawn as the trainer's ``PeftLoraSet``: module-major, adapter-minor."""
    targets = net.linear_names if targets is None else targets
    lora = {}
    per_seed = [{} for _ in gens]
    for s, g in enumerate(gens):
        for lin in targets:
            fan_in = base[lin + ".weight"].shape[-1]
            per_seed[s][lin] = torch.stack([kaiming((rank, fan_in), g) for _ in range(names_count)])
    for lin in targets:
        a = torch.stack([p[lin] for p in per_seed]).to(device).requires_grad_(True)
        out = base[lin + ".weight"].shape[-2]
        b = torch.zeros((len(gens), names_count, out, rank), device=device, requires_grad=True)
        lora[lin] = (a, b)
    return lora


def init_heads(dim: int, classes: int, count: int, gens, device) -> tuple:
    """Heads as :meth:`VisionFamily.new_head`: per head Kaiming weight then uniform bias."""
    ws, bs = [], []
    bound = 1.0 / math.sqrt(dim)
    for g in gens:
        w1, b1 = [], []
        for _ in range(count):
            w1.append(kaiming((classes, dim), g))
            b1.append(torch.empty(classes).uniform_(-bound, bound, generator=g))
        ws.append(torch.stack(w1)); bs.append(torch.stack(b1))
    return (torch.stack(ws).to(device).requires_grad_(True), torch.stack(bs).to(device).requires_grad_(True))


def dev_generators(device, S):
    return [torch.Generator(device=device) for _ in range(S)]


def history_records(epochs, losses, val_acc, val_loss, tasks_names, extra=None) -> list:
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
SUPPORTED_STAGE_FIELDS = frozenset({
    "method", "epochs", "lr", "adapter_lr", "optimizer", "weight_decay", "k", "lora_alpha", "lora_dropout",
    "inner_adapter_steps", "reptile_inner_steps", "reptile_inner_lr", "reptile_inner_optimizer", "reptile_outer",
    "lora_heads", "step_per", "device", "bf16", "validate_every", "select_best", "log_every", "progress",
    "checkpoint_every", "schedule", "warmup_fraction"})


def check_supported(cfg) -> None:
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
        if f.name not in SUPPORTED_STAGE_FIELDS and getattr(cfg, f.name) != f.default:
            raise ValueError(f"the batched engine does not implement StageConfig.{f.name} = "
                             f"{getattr(cfg, f.name)!r}; use the sequential engine")
