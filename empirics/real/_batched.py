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
  learning-rate schedules are the trainer's (:func:`empirics._stage.make_scheduler`).

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
Routing: a retraining stage runs on the sequential trainer where that measured faster on
a CPU (:func:`route`: Reptile with one seed per group); the unit then says
``"retrain_engine": "sequential"``, and :func:`run` prints so.

On an accelerator: images stay resident on the device; an epoch's batch indices are built
on the host from the CPU generators and copied once per epoch; training losses, validation
accuracies and the per-seed best-epoch weights (``torch.where`` on the improvement mask)
stay on the device, so a stage synchronises with the host once, at its end; bf16 autocast;
``compile=True`` wraps the fused forward-and-loss in ``torch.compile`` (once per process and
model structure; optional: compilation takes minutes on a small CPU).
"""
from __future__ import annotations

import dataclasses
import time

# the engine's parts; every name stays importable from here
from ._batched_engine import (CROP_CHOICES, REPTILE_MIN_SEEDS_CPU, BatchData, Engine, check_supported, reptile_order,
                              reptile_plan, rounds_plan, route)
from ._batched_model import (BatchedMixer, StackedModel, params_from_trainer, stack_state_dicts, task_losses,
                             unstack_state_dict)
from ._batched_train import finetune_group, retrain_group, run_group

__all__ = ["BatchedMixer", "StackedModel", "stack_state_dicts", "unstack_state_dict", "params_from_trainer",
           "retrain_group", "finetune_group", "run_group", "ENGINES", "route", "REPTILE_MIN_SEEDS_CPU"]

#: Names accepted as ``engine`` by the runners: the sequential trainer or this engine.
ENGINES = ("sequential", "batched")
# names of this module before the split
_CROP_CHOICES, _Data, _Engine, _check_supported = CROP_CHOICES, BatchData, Engine, check_supported


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
    a stage option this engine does not implement (:func:`check_supported`)."""
    from ._protocol import stage_plan

    if cfg.experiment != "vision":
        raise ValueError("the batched engine runs the vision experiment only")
    for method in cfg.retrain:
        # the number of tasks only sets Reptile's epoch count and validation period
        rt, fts = stage_plan(cfg, method, 1)
        for stage in (rt, *fts.values()):
            check_supported(stage)


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
        engine, why = route(cfg, unit.config["method"], len(unit.config["seeds"]))
        if verbose and engine != "batched":
            print(f"[vision batched] {unit.key}: retraining routed to the {engine} trainer ({why})", file=sys.stderr)
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
