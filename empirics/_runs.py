"""Single synthetic runs with JSON records (used by ``python -m empirics``).

Each function runs one configuration for several trials (batched), returns a record
(config, seeds, provenance, metrics per recorded step) and, given a path, writes it; a
finished record with the same configuration is reused (resume).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._records import provenance, read_json, to_jsonable, write_json

__all__ = ["trial_seeds", "linear_record", "shallow_record", "trial_record", "summarize"]


def trial_seeds(seed: int, trials: int) -> list[int]:
    """Integer seeds of ``trials`` trials derived from ``seed`` with ``numpy.random.SeedSequence``."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(trials)]


def _reuse(out: Path | None, config: dict) -> dict | None:
    if out is not None and Path(out).exists():
        old = read_json(out)
        if old.get("config") == to_jsonable(config):
            return old
    return None


def _stats(a: np.ndarray) -> dict:
    return {"mean": float(np.mean(a)), "median": float(np.median(a)), "min": float(np.min(a)),
            "max": float(np.max(a))}


def linear_record(cfg, options=None, *, trials: int = 5, seed: int = 0, out: str | Path | None = None,
                  progress: bool = False) -> dict[str, Any]:
    """Run the linear experiment (THEORY.md 9.1) for one configuration; return its record."""
    from ._linear import LinearOptions, run_linear_batched

    options = LinearOptions() if options is None else options
    config = {"experiment": "synthetic-linear", "linear": dataclasses.asdict(cfg),
              "options": dataclasses.asdict(options), "trials": trials, "seed": seed}
    old = _reuse(out, config)
    if old is not None:
        return old
    seeds = trial_seeds(seed, trials)
    t0 = time.perf_counter()
    r = run_linear_batched([cfg], [seeds], options, progress=progress)[0]
    record = {
        "config": config, "seeds": seeds, "provenance": provenance("cpu"),
        "seconds": time.perf_counter() - t0,
        "methods": r["methods"],
        "final": {m: {"loss_sum": _stats(r["loss_sum"][i, :, -1]),
                      "loss_per_sample": _stats(r["loss_per_sample"][i, :, -1]),
                      "A_err": _stats(r["A_err"][i])} for i, m in enumerate(r["methods"])},
        "metrics": {"iteration": r["iterations"], "loss_sum": r["loss_sum"], "loss_per_sample": r["loss_per_sample"]},
    }
    if out is not None:
        write_json(out, record)
    return to_jsonable(record)


def shallow_record(cfg, *, trials: int = 10, seed: int = 613, out: str | Path | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Run the shallow-network experiment (THEORY.md 9.2) for one configuration; return its record."""
    from ._shallow import central_range, run_shallow_batched

    config = {"experiment": "synthetic-shallow", "shallow": dataclasses.asdict(cfg), "trials": trials, "seed": seed}
    old = _reuse(out, config)
    if old is not None:
        return old
    seeds = trial_seeds(seed, trials)
    t0 = time.perf_counter()
    r = run_shallow_batched(cfg, seeds, progress=progress)
    clip = 2 if trials >= 5 else 0
    final = {}
    for i, m in enumerate(r["methods"]):
        med, lo, hi = central_range(r["final_mse"][i], clip=clip)
        final[m] = {"mse": _stats(r["final_mse"][i]), "median": med, "central_low": lo, "central_high": hi}
    record = {"config": config, "seeds": seeds, "provenance": provenance("cpu"), "seconds": time.perf_counter() - t0,
              "methods": r["methods"], "final": final,
              "metrics": {"epoch": r["curve_epochs"], "test_mse": r["curve"], "retrain_loss": r["retrain_loss"]}}
    if out is not None:
        write_json(out, record)
    return to_jsonable(record)


def summarize(record: dict) -> str:
    """Human-readable table of a record's final metrics."""
    lines = [f"{record['config']['experiment']}: {record['config'].get('trials')} trials, "
             f"{record.get('seconds', float('nan')):.1f} s"]
    for m, f in record["final"].items():
        parts = []
        for key, st in f.items():
            if isinstance(st, dict):
                parts.append(f"{key} mean {st['mean']:.4g} [min {st['min']:.4g}, max {st['max']:.4g}]")
        lines.append(f"  {m:8s} " + "; ".join(parts))
    return "\n".join(lines)


def trial_record(family, retrain_cfg, finetune_cfg, *, seed: int, out: str | Path | None = None,
                 checkpoint_dir: str | Path | None = None) -> dict[str, Any]:
    """Retrain then fine-tune one trial of any :class:`~empirics._trainer.Family`; return its record.

    Parameters
    ----------
    family : Family
    retrain_cfg, finetune_cfg : StageConfig
    seed : int
        Seeds the run's only ``torch.Generator`` (no global state is touched).
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
    import torch

    from ._trainer import finetune, retrain

    config = {"experiment": "trial", "family": family.describe(), "retrain": dataclasses.asdict(retrain_cfg),
              "finetune": dataclasses.asdict(finetune_cfg), "seed": seed}
    old = _reuse(out, config)
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
