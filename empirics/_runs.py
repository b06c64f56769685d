"""Single synthetic runs with JSON records (used by ``python -m empirics``).

Each function runs one configuration for several trials (batched), returns a record
(config, seeds, provenance, metrics per recorded step) and, given a path, writes it
atomically. Resume: the trials run as units of :mod:`landscape.runtime.executor` keyed by their
full configuration and stored beside the record (``<out>.units/``), so an interrupted
run keeps its finished units; a finished record with the same configuration is reused;
a path holding anything else (another configuration, a non-record) is refused with
:class:`RecordMismatch`, never overwritten.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from landscape._random import seed_from

from ._records import provenance, to_jsonable, write_json

__all__ = ["trial_seeds", "linear_record", "shallow_record", "trial_record", "summarize", "RecordMismatch",
           "existing_record", "linear_config", "shallow_config", "units_folder", "linear_trials_unit",
           "shallow_trials_unit"]


def trial_seeds(seed: int, trials: int) -> list[int]:
    """Integer seeds of ``trials`` trials derived from ``seed`` with ``numpy.random.SeedSequence``."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(trials)]


class RecordMismatch(ValueError):
    """``--out`` holds something other than a finished record of this very configuration."""


def existing_record(out: str | Path | None, config: dict) -> dict | None:
    """The record at ``out`` when it was made with ``config``; ``None`` when ``out`` does not exist.

    Raises :class:`RecordMismatch` when ``out`` holds anything else (unreadable JSON, a
    non-record, or a record of another configuration): a record is never silently
    overwritten by a run with other settings.
    """
    if out is None or not Path(out).exists():
        return None
    import json

    from landscape.runtime.integrity import check_sealed

    try:
        old = json.loads(Path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordMismatch(f"--out {out} exists and is not a readable JSON record ({exc.__class__.__name__}); "
                             "give another path or remove it") from None
    if not (isinstance(old, dict) and isinstance(old.get("config"), dict)):
        raise RecordMismatch(f"--out {out} exists and is not a run record; give another path or remove it")
    old = check_sealed(old, out)  # edited or corrupted: StoreIntegrityError (delete it and rerun)
    if old["config"] != to_jsonable(config):
        raise RecordMismatch(f"--out {out} holds a record made with another configuration; "
                             "give another path or remove it")
    return old


def units_folder(out: str | Path) -> Path:
    """Folder of the resumable units of the record ``out`` (``<out>.units``)."""
    out = Path(out)
    return out.with_name(out.name + ".units")


def _chunks(seeds: list[int], parts: int) -> list[list[int]]:
    parts = max(1, min(int(parts), len(seeds)))
    return [[int(x) for x in c] for c in np.array_split(np.asarray(seeds, dtype=np.int64), parts) if len(c)]


def linear_trials_unit(linear: dict, options: dict, seeds: list[int], progress: bool = False) -> dict:
    """One unit of ``synthetic-linear``: every trial of ``seeds`` for one configuration.

    A pure function of ``(linear, options, seeds)`` (``progress`` only draws bars); the
    result holds the arrays of :func:`empirics._linear.run_linear_batched` and the
    compute seconds.
    """
    from ._linear import LinearConfig, LinearOptions, run_linear_batched

    t0 = time.perf_counter()
    # an overflow is not silent: linear_record refuses a record with non-finite metrics
    with np.errstate(over="ignore", invalid="ignore"):
        r = run_linear_batched([LinearConfig(**linear)], [list(seeds)], LinearOptions(**options),
                               progress=progress)[0]
    return {"loss_sum": r["loss_sum"], "loss_per_sample": r["loss_per_sample"], "A_err": r["A_err"],
            "iterations": r["iterations"], "seconds": time.perf_counter() - t0}


def shallow_trials_unit(shallow: dict, seeds: list[int], progress: bool = False, threads: int | None = None,
                        checkpoint: str | None = None) -> dict:
    """One unit of ``synthetic-shallow``: every trial of ``seeds`` for one configuration.

    A pure function of ``(shallow, seeds)``; ``progress``, ``threads`` and the mid-unit
    ``checkpoint`` file (an interrupted unit restarts from its last saved epoch) change
    no number.
    """
    from ._shallow import ShallowConfig, run_shallow_batched

    t0 = time.perf_counter()
    r = run_shallow_batched(ShallowConfig(**shallow), list(seeds), progress=progress, threads=threads,
                            checkpoint=checkpoint)
    return {"final_mse": r["final_mse"], "curve": r["curve"], "curve_epochs": r["curve_epochs"],
            "retrain_loss": r["retrain_loss"], "seconds": time.perf_counter() - t0}


def _run_trial_units(name: str, fn, base_config: dict, seeds: list[int], *, out, executor, progress: bool,
                     unit_kwargs: dict, checkpoint: bool = False) -> tuple[list[dict], int]:
    """Split ``seeds`` into one chunk per worker, run the chunks as units; results in seed order."""
    from functools import partial

    from landscape.runtime.executor import LocalExecutor, Unit, run_units
    from landscape.runtime.store import ResultStore, config_digest

    executor = LocalExecutor() if executor is None else executor
    store = None if out is None else ResultStore(units_folder(out))
    parts = getattr(executor, "workers", 1)
    units = []
    for chunk in _chunks(seeds, parts):
        config = dict(base_config, seeds=chunk)
        key = f"{name}-{config_digest(config)[:16]}"
        kwargs = dict(unit_kwargs)
        if parts == 1 or isinstance(executor, LocalExecutor):
            kwargs["progress"] = progress  # epoch bars, in this process or one line per local worker
        if checkpoint and store is not None:
            kwargs["checkpoint"] = str(store.root / f"{key}.ckpt.pt")
            store.root.mkdir(parents=True, exist_ok=True)
        units.append(Unit(key, partial(fn, **kwargs), config))
    results = run_units(units, executor=executor, store=store, progress=progress and len(units) > 1, desc=name)
    return results, len(units)


class NonFiniteResult(ValueError):
    """A run whose final metrics overflowed float64 (exit status 2: the inputs are out of range)."""


def _require_finite(final: dict, cfg) -> None:
    """Refuse to write a record whose final metrics are not finite numbers (an overflow, e.g.
    a noise level near the float64 range): such a record would be read back as the result."""
    bad = sorted({f"{m}.{k}" for m, stats in final.items() for k, st in stats.items()
                  for v in (st.values() if isinstance(st, dict) else [st])
                  if isinstance(v, float) and not np.isfinite(v)})
    if bad:
        raise NonFiniteResult(f"the run overflowed float64 (non-finite {', '.join(bad[:3])}) at sigma={cfg.sigma:g}, "
                              f"d={cfg.d}, N={cfg.N}; no record written: use a smaller noise level or sizes")


def _num(v) -> float:
    """A number of a record (JSON spells non-finite floats as 'nan', 'inf', ...)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _stats(a: np.ndarray) -> dict:
    return {"mean": float(np.mean(a)), "median": float(np.median(a)), "min": float(np.min(a)),
            "max": float(np.max(a))}


def linear_config(cfg, options=None, *, trials: int = 5, seed: int = 0) -> dict:
    """The full configuration of a ``synthetic-linear`` record (what resume compares)."""
    from ._linear import LinearOptions

    options = LinearOptions() if options is None else options
    return {"experiment": "synthetic-linear", "linear": dataclasses.asdict(cfg),
            "options": dataclasses.asdict(options), "trials": trials, "seed": seed}


def shallow_config(cfg, *, trials: int = 10, seed: int = 613) -> dict:
    """The full configuration of a ``synthetic-shallow`` record (what resume compares)."""
    from ._shallow import INIT_STREAM

    return {"experiment": "synthetic-shallow", "shallow": dataclasses.asdict(cfg), "trials": trials, "seed": seed,
            "init_stream": INIT_STREAM}


def linear_record(cfg, options=None, *, trials: int = 5, seed: int = 0, out: str | Path | None = None,
                  progress: bool = False, executor=None) -> dict[str, Any]:
    """Run the linear experiment (THEORY.md 9.1) for one configuration; return its record.

    The trials run as resumable units (:mod:`landscape.runtime.executor`, one chunk of trials per
    worker) stored in ``<out>.units``; a finished record of the same configuration at
    ``out`` is returned as is, one of another configuration raises :class:`RecordMismatch`.
    """
    seed = seed_from(seed)  # an integer, or drawn from a Generator; recorded
    config = linear_config(cfg, options, trials=trials, seed=seed)
    old = existing_record(out, config)
    if old is not None:
        return old
    seeds = trial_seeds(seed, trials)
    t0 = time.perf_counter()
    parts, n_units = _run_trial_units("linear", linear_trials_unit,
                                      {"linear": config["linear"], "options": config["options"]}, seeds,
                                      out=out, executor=executor, progress=progress, unit_kwargs={})
    cat = {k: np.concatenate([np.asarray(p[k]) for p in parts], axis=1) for k in ("loss_sum", "loss_per_sample",
                                                                                  "A_err")}
    methods = ["lora-ml", "sr"]
    record = {
        "config": config, "seeds": seeds, "provenance": provenance("cpu"),
        "seconds": float(sum(p["seconds"] for p in parts)), "wall_seconds": time.perf_counter() - t0,
        "units": n_units, "methods": methods,
        "final": {m: {"loss_sum": _stats(cat["loss_sum"][i, :, -1]),
                      "loss_per_sample": _stats(cat["loss_per_sample"][i, :, -1]),
                      "A_err": _stats(cat["A_err"][i])} for i, m in enumerate(methods)},
        "metrics": {"iteration": parts[0]["iterations"], "loss_sum": cat["loss_sum"],
                    "loss_per_sample": cat["loss_per_sample"]},
    }
    _require_finite(record["final"], cfg)
    if out is not None:
        write_json(out, record)
    return to_jsonable(record)


def shallow_record(cfg, *, trials: int = 10, seed: int = 613, out: str | Path | None = None,
                   progress: bool = False, executor=None, threads: int | None = 1) -> dict[str, Any]:
    """Run the shallow-network experiment (THEORY.md 9.2) for one configuration; return its record.

    Resumable as :func:`linear_record`; in addition each unit checkpoints its training
    state every few thousand epochs inside ``<out>.units``, so an interrupted unit
    restarts from its last checkpoint, not from epoch 0.
    """
    seed = seed_from(seed)  # an integer, or drawn from a Generator; recorded
    from ._shallow import central_range

    config = shallow_config(cfg, trials=trials, seed=seed)
    old = existing_record(out, config)
    if old is not None:
        return old
    seeds = trial_seeds(seed, trials)
    t0 = time.perf_counter()
    parts, n_units = _run_trial_units("shallow", shallow_trials_unit, {"shallow": config["shallow"]}, seeds,
                                      out=out, executor=executor, progress=progress,
                                      unit_kwargs={"threads": threads}, checkpoint=True)
    cat = {k: np.concatenate([np.asarray(p[k]) for p in parts], axis=1) for k in ("final_mse", "curve",
                                                                                  "retrain_loss")}
    methods = ["lora-ml", "sr"]
    clip = 2 if trials >= 5 else 0
    final = {}
    for i, m in enumerate(methods):
        med, lo, hi = central_range(cat["final_mse"][i], clip=clip)
        final[m] = {"mse": _stats(cat["final_mse"][i]), "median": med, "central_low": lo, "central_high": hi}
    record = {"config": config, "seeds": seeds, "provenance": provenance("cpu"),
              "seconds": float(sum(p["seconds"] for p in parts)), "wall_seconds": time.perf_counter() - t0,
              "units": n_units, "methods": methods, "final": final,
              "metrics": {"epoch": parts[0]["curve_epochs"], "test_mse": cat["curve"],
                          "retrain_loss": cat["retrain_loss"]}}
    _require_finite(record["final"], cfg)
    if out is not None:
        write_json(out, record)
    return to_jsonable(record)


def summarize(record: dict) -> str:
    """Human-readable table of a record's final metrics."""
    lines = [f"{record['config']['experiment']}: {record['config'].get('trials')} trials, "
             f"{_num(record.get('seconds', 'nan')):.1f} s"]
    for m, f in record["final"].items():
        parts = []
        for key, st in f.items():
            if isinstance(st, dict):
                parts.append(f"{key} mean {_num(st['mean']):.4g} [min {_num(st['min']):.4g}, "
                             f"max {_num(st['max']):.4g}]")
        lines.append(f"  {m:8s} " + "; ".join(parts))
    return "\n".join(lines)


def trial_record(family, retrain_cfg, finetune_cfg, *, seed: int, out: str | Path | None = None,
                 checkpoint_dir: str | Path | None = None) -> dict[str, Any]:
    """Retrain then fine-tune one trial of any :class:`~empirics._trainer.Family`; return its record.

    Parameters
    ----------
    family : Family
    retrain_cfg, finetune_cfg : StageConfig
    seed : int or numpy.random.Generator
        Seeds the run's only ``torch.Generator`` (no global state is touched); a numpy
        Generator gives its next integer (:func:`landscape.seed_from`), which is recorded.
    out : path, optional
        JSON record path; a finished record with the same configuration is reused.
    checkpoint_dir : path, optional
        Stage checkpoints (``retrain.pt``, ``finetune.pt``) for resuming an interrupted trial.

    Returns
    -------
    dict
        ``config`` (family description, both stage configs, seed), ``provenance`` (git
        revision, versions, device), ``retrain``/``finetune`` histories (metrics per
        epoch), ``best_epoch`` of each stage, ``test`` (final test metrics), ``seconds``.
    """
    seed = seed_from(seed)  # an integer, or drawn from a Generator; recorded
    import torch

    from ._trainer import finetune, retrain

    config = {"experiment": "trial", "family": family.describe(), "retrain": dataclasses.asdict(retrain_cfg),
              "finetune": dataclasses.asdict(finetune_cfg), "seed": seed}
    old = existing_record(out, config)
    if old is not None:
        return old
    ck = Path(checkpoint_dir) if checkpoint_dir is not None else None
    g = torch.Generator(device="cpu").manual_seed(seed)
    t0 = time.perf_counter()
    r = retrain(family, retrain_cfg, g, checkpoint=None if ck is None else ck / "retrain.pt")
    f = finetune(family, r.model, finetune_cfg, g, checkpoint=None if ck is None else ck / "finetune.pt")
    record = {"config": config, "seed": seed, "provenance": provenance(retrain_cfg.device),
              "seconds": time.perf_counter() - t0,
              "retrain": {"history": r.history, "best_epoch": r.best_epoch},
              "finetune": {"history": f.history, "best_epoch": f.best_epoch},
              "test": f.history[-1]["test"]}
    if out is not None:
        write_json(out, record)
    return to_jsonable(record)
