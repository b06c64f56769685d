"""Up-front cost of a real-data run (``python -m empirics vision|language``).

The cost of a run is counted from its configuration and its tasks, then turned into
seconds by rates measured in this process:

* **counts** (:func:`workload`, :func:`unit_counts`): for every (retraining method, seed)
  unit, the optimizer steps the trainer takes (every ``optimizer.step()`` call: retraining,
  Reptile's inner steps and its outer update, every fine-tuning on every test task) and the
  forward/backward *work* of each pass kind, in item-units: an item is an image (vision) or a
  turn of 20 (history, candidate) pairs (language) times its work factor (vision 1; language
  the task's longest pair in tokens on the CPU, where the trainer trims padding, and
  ``max_length`` elsewhere). The counts are exact (tested against the trainer's steps);
* **rates** (:func:`calibrate`): seconds per item-unit of one forward and backward pass of
  each kind the run needs (``train``: base trained, no adapter -- SR, Reptile,
  Last-Layer-ML; ``lora-ml``: base and one LoRA adapter trained; ``ft-lora``, ``ft-head``:
  a fresh adapter or head on the frozen base), of an evaluation forward, of one optimizer
  step of each kind and of building each kind's model, measured on a real batch of the
  run's own tasks with the run's own model on the run's device. Why timing rather than a
  FLOP count times a FLOP rate: on a small CPU the same FLOPs run at very different speeds
  (attention versus matmul, activation checkpointing, peft's per-layer dispatch, a shared
  machine's load), and a real pass of the run's model measures all of that at once; one
  pass of each kind is a small fraction of any run (language on a CPU: a pass of one turn);
* **seconds** (:func:`estimate_seconds`): counts times rates, summed. A pure function of
  the stored counts and rates, so a record's estimate can be recomputed from its inputs.

For devices the run is not on (the README's "one GPU" column), :func:`gpu_seconds` turns
FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` on the calibration passes into
seconds with an *assumed* sustained GPU rate and per-pass latency (:data:`GPU_ASSUMED`),
stated as such wherever it is shown.

The batched vision engine is estimated with the sequential trainer's rates (the same steps
per seed; on an accelerator it is faster, so its estimate is an upper bound there).
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Mapping

from ._config import PAIRINGS, RunConfig

__all__ = ["KINDS", "GPU_ASSUMED", "workload", "unit_counts", "run_counts", "calibrate", "estimate_seconds",
           "gpu_seconds", "estimate", "format_estimate", "CostEstimate"]

#: Pass kinds (see the module docstring) and the stage that uses each.
KINDS = ("train", "lora-ml", "ft-lora", "ft-head")
#: Assumed sustained throughput of one data-centre GPU on these small models (not measured
#: here; no GPU was available): 100 TFLOP/s, about a tenth of an H100's dense bf16 peak
#: (989 TFLOP/s), and 3 ms of kernel launches and host work per forward-backward pass.
GPU_ASSUMED = {"flops_per_s": 1.0e14, "pass_latency_s": 3.0e-3}
#: Items (images / turns) of the calibration batch: a full training batch for vision, one
#: turn (20 pairs) for language, whose pass on a CPU takes seconds.
CALIBRATION_ITEMS = {"vision": None, "language": 1}
#: A kind's pass is timed at least MIN_SAMPLES times and until MIN_TIMED_S seconds were
#: timed (at most MAX_REPEATS passes); the median is kept: on a shared machine single passes
#: vary by 2x.
MIN_TIMED_S, MIN_SAMPLES, MAX_REPEATS = 0.3, 3, 5


# ------------------------------------------------------------------------------- counts
def _length(data) -> int:
    first = next(iter(data.values())) if isinstance(data, Mapping) else data[0]
    return int(first.shape[0])


def _work_factor(data, device_type: str) -> float:
    """Work per item of ``data``: 1 for images; for language turns, the tokens of the longest
    pair (the CPU trims padding columns no pair of a batch uses) or the padded length."""
    if isinstance(data, Mapping) and "attention_mask" in data:
        mask = data["attention_mask"]
        if device_type != "cpu":
            return float(mask.shape[-1])
        return float(mask.sum(-1).max()) if mask.numel() else 0.0
    return 1.0


def _batch_sizes(n: int, batch_size: int | None) -> list:
    if batch_size is None:
        return [n]
    return [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])


def _task_size(task, eval_split: str, device_type: str) -> dict:
    train, ev = task.split("train"), task.split(eval_split)
    work = max(_work_factor(train, device_type), _work_factor(ev, device_type) if ev is not None else 0.0)
    return {"name": task.name, "train": _batch_sizes(_length(train), task.batch_size),
            "eval": _length(ev) if ev is not None else 0, "work": work}


def workload(family, device: str = "cpu") -> dict:
    """The sizes the counts need, from a built family: per retraining task and per test task
    the batch sizes of one pass over its training split, the items of its validation (test)
    split and its work factor. Plain JSON (stored in records)."""
    import torch

    dt = torch.device(device).type
    tests = []
    names = getattr(family, "test_names", None)
    if names is None:
        tests.append(_task_size(family.test_task(), "test", dt))
    else:
        active = getattr(family, "active_test", 0)
        for i in range(len(names)):
            family.select_test(i)
            tests.append(_task_size(family.test_task(), "test", dt))
        family.select_test(active)
    return {"retrain": [_task_size(t, "val", dt) for t in family.retrain_tasks()], "tests": tests}


def _cycled(sizes: list, n: int) -> int:
    """Items in the first ``n`` batches of an epoch that restarts when it runs out."""
    full, rest = divmod(n, len(sizes))
    return full * sum(sizes) + sum(sizes[:rest])


def unit_counts(cfg: RunConfig, load: dict, method: str) -> dict:
    """Counts of one (``method``, seed) unit: ``steps`` (optimizer steps), ``work`` and
    ``opt_steps`` per pass kind, ``eval`` work, and ``stages`` (models built) per kind.

    Mirrors :func:`empirics._trainer.retrain` / :func:`~empirics._trainer.finetune` as
    :func:`~empirics.real._protocol.stage_plan` configures them (validation every epoch,
    Reptile once per outer epoch; the test split after every fine-tuning epoch and once at
    the end)."""
    from ._config import OFFICIAL_STEP_PER

    tasks, tests = load["retrain"], load["tests"]
    T = len(tasks)
    work = {k: 0.0 for k in KINDS}
    opt = {k: 0 for k in KINDS}
    stages = {k: 0 for k in KINDS}
    val = sum(t["eval"] * t["work"] for t in tasks)
    if method == "reptile":
        inner = cfg.reptile_outer_epochs * sum(t["work"] * _cycled(t["train"], cfg.reptile_inner_steps)
                                               for t in tasks)
        work["train"] += inner
        iters = cfg.reptile_outer_epochs * T
        opt["train"] += iters * (cfg.reptile_inner_steps + 1)  # inner steps and the outer update
        ev = cfg.reptile_outer_epochs * val
        kind = "train"
    else:
        kind = "lora-ml" if method == "lora-ml" else "train"
        rounds = max(len(t["train"]) for t in tasks)
        step_per = OFFICIAL_STEP_PER[cfg.experiment][method] if cfg.step_accounting == "official" else "round"
        work[kind] += cfg.epochs * sum(t["work"] * _cycled(t["train"], rounds) for t in tasks)
        opt[kind] += cfg.epochs * rounds * (T if step_per == "batch" else 1)
        ev = cfg.epochs * val
    stages[kind] += 1
    for peft in PAIRINGS[method]:
        if peft not in cfg.peft:
            continue
        fk = "ft-lora" if peft == "lora" else "ft-head"
        for t in tests:
            work[fk] += cfg.finetune_epochs * t["work"] * sum(t["train"])
            opt[fk] += cfg.finetune_epochs * len(t["train"])
            ev += (cfg.finetune_epochs + 1) * t["eval"] * t["work"]
            stages[fk] += 1
    return {"steps": sum(opt.values()), "work": work, "opt_steps": opt, "eval": ev, "stages": stages}


def run_counts(cfg: RunConfig, load: dict, units=None) -> dict:
    """Counts of the units still to compute: ``units`` lists ``(method, seed)`` pairs
    (default: every method x seed of ``cfg``). Sums of :func:`unit_counts`."""
    units = [(m, s) for s in cfg.seeds for m in cfg.retrain] if units is None else list(units)
    total = {"units": len(units), "steps": 0, "work": {k: 0.0 for k in KINDS}, "opt_steps": {k: 0 for k in KINDS},
             "eval": 0.0, "stages": {k: 0 for k in KINDS}}
    per = {}
    for m, _ in units:
        c = per.setdefault(m, unit_counts(cfg, load, m))
        total["steps"] += c["steps"]
        total["eval"] += c["eval"]
        for k in KINDS:
            total["work"][k] += c["work"][k]
            total["opt_steps"][k] += c["opt_steps"][k]
            total["stages"][k] += c["stages"][k]
    return total


def kinds_needed(counts: dict) -> list:
    return [k for k in KINDS if counts["work"][k] or counts["opt_steps"][k] or counts["stages"][k]]


# ------------------------------------------------------------------------------- rates
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(family, cfg: RunConfig, kind: str, generator, device):
    """The model (and its trainable parameters) of a pass kind, built as the trainer builds it."""
    from .._stage import FINETUNE_ADAPTER, task_adapter_name

    base = family.init_model(generator).to(device)
    if kind == "train":
        base.train()
        return base, [p for p in base.parameters() if p.requires_grad]
    if kind == "lora-ml":
        attach = family.attach_lora_heads if cfg.lora_ml_heads else family.attach_lora
        ad = attach(base, [task_adapter_name(0)], rank=cfg.k, stage="retrain", generator=generator,
                    alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
        name = task_adapter_name(0)
    elif kind == "ft-lora":
        attach = family.attach_lora_heads if cfg.finetune_head else family.attach_lora
        ad = attach(base, [FINETUNE_ADAPTER], rank=cfg.finetune_rank or cfg.k, stage="finetune",
                    generator=generator, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
        name = FINETUNE_ADAPTER
    else:
        ad = family.attach_heads(base, [FINETUNE_ADAPTER], stage="finetune", generator=generator)
        name = FINETUNE_ADAPTER
    if kind != "lora-ml":
        for p in ad.base_parameters():
            p.requires_grad_(False)
    ad.model.to(device).train()
    ad.activate(name)
    return ad.model, [p for p in ad.model.parameters() if p.requires_grad]


def _take(batch, n):
    if n is None:
        return batch
    if isinstance(batch, Mapping):
        return {k: (v[:n] if hasattr(v, "shape") and v.dim() and v.shape[0] >= n else v) for k, v in batch.items()}
    return tuple(v[:n] for v in batch)


def calibrate(family, cfg: RunConfig, kinds, *, flops: bool = False) -> dict:
    """Measured rates of ``kinds`` on ``cfg.device``: seconds per item-unit of a forward and
    backward pass (``pass``), of an evaluation forward (``eval``), seconds per optimizer step
    (``opt``) and per model build (``build``), each per kind; with ``flops=True`` also FLOPs
    per item-unit (``flops``, ``eval_flops``), counted on an extra, untimed pass.

    Each kind's model is built twice (the first build, untimed, pays one-time imports such as
    peft's), one untimed warm-up pass comes first; each kind is then timed (a first pass
    the median of :data:`MIN_SAMPLES` to :data:`MAX_REPEATS` passes) on the first training
    batch of the first retraining task (:data:`CALIBRATION_ITEMS` of it), repeated until
    :data:`MIN_TIMED_S` seconds were timed."""
    import torch

    from .._taskdata import to_device
    from ._config import stage_generator

    device = torch.device(cfg.device)
    gen = stage_generator(0, 99)  # calibration draws never touch a unit's generators
    task = family.retrain_tasks()[0]
    batch = _take(next(iter(task.batches("train", gen))), CALIBRATION_ITEMS[cfg.experiment])
    batch = to_device(batch, device)
    probe = {k: v for k, v in batch.items() if hasattr(v, "shape")} if isinstance(batch, Mapping) else batch
    units = _length(probe) * _work_factor(probe, device.type)
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=bool(cfg.bf16))
    rates = {"pass": {}, "opt": {}, "build": {}, "eval": None, "units": units, "device": str(device)}
    if flops:
        rates["flops"] = {}

    def one_pass(model):
        with torch.autocast(**amp):
            loss = family.loss(model, batch)
        loss.backward()

    def timed(fn) -> float:
        samples = []
        while len(samples) < MAX_REPEATS and (len(samples) < MIN_SAMPLES or sum(samples) < MIN_TIMED_S):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            samples.append(time.perf_counter() - t0)
        return float(statistics.median(samples))

    warm = None
    for kind in kinds:
        _build(family, cfg, kind, gen, device)  # untimed: imports (peft) and first-use costs
        t0 = time.perf_counter()
        model, params = _build(family, cfg, kind, gen, device)
        _sync(device)
        rates["build"][kind] = time.perf_counter() - t0
        if warm is None:
            one_pass(model)
            warm = True
        if flops:
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as fc:
                one_pass(model)
            rates["flops"][kind] = fc.get_total_flops() / units
        rates["pass"][kind] = timed(lambda: one_pass(model)) / units
        opt = torch.optim.AdamW(params, lr=0.0) if cfg.optimizer == "adamw" else (
            torch.optim.Adam(params, lr=0.0) if cfg.optimizer == "adam" else torch.optim.SGD(params, lr=0.0))
        opt.step()  # the first step allocates the optimizer's state
        rates["opt"][kind] = timed(lambda: (opt.step(), opt.zero_grad(set_to_none=False)))
        if rates["eval"] is None:
            model.eval()

            def forward():
                with torch.no_grad(), torch.autocast(**amp):
                    family.loss(model, batch)

            rates["eval"] = timed(forward) / units
            if flops:
                from torch.utils.flop_counter import FlopCounterMode

                with FlopCounterMode(display=False) as fc:
                    forward()
                rates["eval_flops"] = fc.get_total_flops() / units
        del model, params, opt
    return rates


# ------------------------------------------------------------------------------- seconds
def estimate_seconds(counts: dict, rates: dict) -> float:
    """Seconds of a run: work x pass rate, optimizer steps x step time and models built x
    build time per kind, plus evaluation work x evaluation rate."""
    s = counts["eval"] * rates["eval"]
    for k in KINDS:
        if counts["work"][k] or counts["opt_steps"][k] or counts["stages"][k]:
            s += (counts["work"][k] * rates["pass"][k] + counts["opt_steps"][k] * rates["opt"][k]
                  + counts["stages"][k] * rates["build"][k])
    return float(s)


def gpu_seconds(counts: dict, rates: dict, assumed: dict = GPU_ASSUMED) -> float:
    """Seconds on one GPU from counted FLOPs (``rates`` from ``calibrate(..., flops=True)``)
    at the assumed sustained rate, plus the assumed latency per optimizer step. ``counts``
    should come from ``workload(family, "cuda")`` (no padding trimmed on an accelerator). An
    estimate under stated assumptions, not a measurement."""
    flops = counts["eval"] * rates["eval_flops"] + sum(counts["work"][k] * rates["flops"][k]
                                                       for k in KINDS if counts["work"][k])
    passes = counts["steps"]
    return float(flops / assumed["flops_per_s"] + passes * assumed["pass_latency_s"])


@dataclasses.dataclass(frozen=True)
class CostEstimate:
    """An up-front estimate: ``counts`` (:func:`run_counts`), ``rates`` (:func:`calibrate`),
    ``seconds`` (:func:`estimate_seconds`), the ``workload`` they came from and the time the
    calibration itself took (``calibration_s``)."""

    device: str
    counts: dict
    rates: dict
    seconds: float
    workload: dict
    calibration_s: float

    @property
    def steps(self) -> int:
        return int(self.counts["steps"])


def estimate(cfg: RunConfig, family, units=None, *, flops: bool = False) -> CostEstimate:
    """Count, calibrate and estimate the units ``units`` (default: all) of ``cfg`` on ``family``."""
    t0 = time.perf_counter()
    load = workload(family, cfg.device)
    counts = run_counts(cfg, load, units)
    rates = calibrate(family, cfg, kinds_needed(counts), flops=flops) if counts["units"] else {}
    seconds = estimate_seconds(counts, rates) if counts["units"] else 0.0
    return CostEstimate(str(cfg.device), counts, rates, seconds, load, time.perf_counter() - t0)


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def format_estimate(est: CostEstimate, experiment: str, *, threads: int | None = None) -> str:
    """The one line printed before any training."""
    import torch

    dev = est.device
    if dev.startswith("cpu"):
        dev = f"cpu ({threads or torch.get_num_threads()} threads)"
    elif dev.startswith("cuda") and torch.cuda.is_available():
        dev = f"{dev} ({torch.cuda.get_device_name(torch.device(dev))})"
    c = est.counts
    if not c["units"]:
        return f"{experiment}: cost estimate on {dev}: nothing to train (every unit is done)"
    return (f"{experiment}: cost estimate on {dev}: {c['units']} unit(s), {c['steps']:,} optimizer steps, "
            f"about {_duration(est.seconds)} (rates measured here in {est.calibration_s:.0f} s; "
            f"--max-seconds refuses longer runs)")


def over_budget(est: CostEstimate, max_seconds: float | None) -> str | None:
    """The one-line refusal when the estimate exceeds ``max_seconds`` (None: no limit)."""
    if max_seconds is None or est.seconds <= max_seconds:
        return None
    return (f"estimated {_duration(est.seconds)} ({est.seconds:.0f} s, {est.steps:,} optimizer steps on "
            f"{est.device}) exceeds --max-seconds {max_seconds:g}; reduce the run or raise the limit")
