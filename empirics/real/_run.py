"""Run the real-data protocols through the PEFT-ML trainer and write result records.

One retraining per (method, seed), then each applicable fine-tuning on the unseen
task(s). Table rows (Tables 1-3 of the paper) pair the methods as

* LoRA fine-tuning: ``lora-ml``, ``sr``, ``reptile`` retraining;
* last-layer fine-tuning: ``last-layer-ml``, ``sr``, ``reptile`` retraining.

Each finished (method, seed) unit is written to ``<out>/units/`` at once, so an
interrupted run resumes without redoing it, and several processes (for example one per
seed on one GPU) can share an output folder; :func:`summarize` merges the units.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

# the runner's parts; every name stays importable from here
from ._config import (LANGUAGE_NOTES, LANGUAGE_PAPER, OFFICIAL_STEP_PER, PAIRINGS, PAPER_SCHEDULES, ROW_LABELS,
                      ROWS, SCHEDULES, STEP_ACCOUNTING, VISION_NOTES, VISION_PAPER, RunConfig, heads_text,
                      reptile_text, schedule_text, stage_generator, steps_text)
from ._protocol import build_family, compact_history, finetune_entry, stage_plan, train_unit
from ._summary import (COMPARED_METRICS, COMPARISONS, format_difference, format_mean_se, format_p, format_summary,
                       mean_se, paired_difference, paper_rows)
from ._summary import summarize as _summarize_units

__all__ = ["ROWS", "PAIRINGS", "COMPARISONS", "RunConfig", "VISION_PAPER", "LANGUAGE_PAPER", "run", "summarize",
           "stage_generator", "format_summary", "run_vision", "run_language", "make_units", "unit_config",
           "run_unit", "check_units", "paired_difference", "paper_rows", "todo_units", "estimate_cost"]

# names of this module before the split (tests and earlier callers import them from here)
_stage_configs, _compact_history, _run_unit, _mean_se = stage_plan, compact_history, train_unit, mean_se


#: Configuration fields that never change a unit's result (left out of its key).
_NOT_IN_UNIT_KEY = ("seeds", "retrain", "note", "cache")
#: Fields added after the first keyed units: left out of a key while they hold the value
#: that reproduces the earlier behaviour (None / False), so those units stay valid.
_ADDED_FIELDS = ("lora_ml_heads", "finetune_head", "persona_selection")
#: Families built in this process, by unit configuration (units of one run share one).
_FAMILIES: dict = {}


def unit_config(cfg: RunConfig, method: str, seed: int) -> dict:
    """The full configuration of one (method, seed) unit: every setting that can change its
    result (all of ``cfg`` but the seed list, the method list, the free-text note and the
    cache folder), plus the method and the seed. Stored with the unit and compared on
    resume (:class:`landscape.runtime.executor.ResultStore`), so units of other settings are never
    reported as done."""
    d = dataclasses.asdict(cfg)
    for k in _NOT_IN_UNIT_KEY:
        d.pop(k)
    for k in _ADDED_FIELDS:
        if d[k] in (None, False):
            d.pop(k)
    # the LoRA rank keeps its stored name ``rank`` (the field is ``k`` since the rename), so
    # units computed before the rename still match their configuration on resume
    d = {("rank" if key == "k" else key): v for key, v in d.items()}
    d = json.loads(json.dumps(d, default=str))  # tuples -> lists: what a stored config reads back as
    return {"run": d, "method": method, "seed": int(seed)}


def _config_from_unit(run_cfg: dict) -> RunConfig:
    d = {("k" if key == "rank" else key): v for key, v in run_cfg.items()}  # stored name, see unit_config
    d["peft"] = tuple(d["peft"])
    # a unit's method and seed are its own arguments; these two lists are not used by it
    return RunConfig(**d, retrain=("sr",), seeds=(0,))


def run_unit(run: dict, method: str, seed: int, *, progress: bool = False, verbose: bool = False) -> dict:
    """One retraining and its fine-tunings: the :class:`~landscape.runtime.executor.Unit` function.

    ``run`` is ``unit_config(...)["run"]``; the family (data on the device) is built once
    per process and reused by the units of the same configuration.
    """
    cfg = _config_from_unit(run)
    from .. import _malloc

    _malloc.tune_for(cfg.device)  # on a CPU: large activations reused, not page-faulted in each step
    key = json.dumps(run, sort_keys=True)
    if key not in _FAMILIES:
        _FAMILIES.clear()  # one configuration's data at a time
        _FAMILIES[key] = build_family(cfg, verbose=verbose)
    family = _FAMILIES[key]
    unit = train_unit(cfg, family, method, int(seed), progress)
    if verbose:
        accs = {p: [round(t["accuracy"], 4) for t in ts] for p, ts in unit["finetune"].items()}
        print(f"[{cfg.experiment}] {method} seed {seed}: best epoch {unit['best_epoch']}, "
              f"fine-tuned accuracy {accs} ({unit['wall_s']:.1f} s)", file=sys.stderr)
    return unit


def make_units(cfg: RunConfig, *, progress: bool = False, verbose: bool = False) -> list:
    """The :class:`~landscape.runtime.executor.Unit` list of ``cfg``: one per (method, seed),
    keyed ``<method>_seed<seed>``, with the full unit configuration."""
    import functools

    from landscape.runtime.executor import Resources, Unit

    gpus = 1.0 if str(cfg.device).startswith("cuda") else 0.0
    fn = functools.partial(run_unit, progress=progress, verbose=verbose)
    # seed-major order: an interrupted run has whole seeds (all rows of a seed) first
    return [Unit(key=f"{m}_seed{s}", fn=fn, config=unit_config(cfg, m, s), resources=Resources(cpus=1, gpus=gpus))
            for s in cfg.seeds for m in cfg.retrain]


def check_units(cfg: RunConfig, out: str | Path) -> list:
    """Keys of the units of ``cfg`` already finished in ``out``; raises
    :class:`~landscape.runtime.executor.ConfigMismatch` (a ``ValueError``) when ``out`` holds a
    unit of the same key computed with other settings. Trains nothing."""
    from landscape.runtime.store import ResultStore

    store = ResultStore(Path(out) / "units")
    return [u.key for u in make_units(cfg) if store.has(u)]


def todo_units(cfg: RunConfig, out: str | Path, *, resume: bool = True) -> list:
    """``(method, seed)`` of the units of ``cfg`` that a run into ``out`` would compute (all
    of them with ``resume=False``). Reads only; other settings' units raise ``ConfigMismatch``."""
    done = set(check_units(cfg, out)) if resume and Path(out).is_dir() else set()
    return [(u.config["method"], u.config["seed"]) for u in make_units(cfg) if u.key not in done]


def estimate_cost(cfg: RunConfig, out: str | Path, family, *, resume: bool = True, max_seconds: float | None = None,
                  label: str | None = None, file=None):
    """The up-front cost of the units of ``cfg`` still to compute in ``out``
    (:func:`empirics.real._cost.estimate`): prints its one line (device, units, optimizer
    steps, estimated time) to ``file`` (default stderr) and raises ``ValueError`` with a
    one-line message when it exceeds ``max_seconds``. Writes nothing; returns the estimate."""
    from ._cost import estimate, format_estimate, over_budget

    est = estimate(cfg, family, todo_units(cfg, out, resume=resume))
    print(format_estimate(est, label or f"python -m empirics {cfg.experiment}"), file=file or sys.stderr, flush=True)
    refusal = over_budget(est, max_seconds)
    if refusal:
        raise ValueError(refusal)
    return est


def run(cfg: RunConfig, out: str | Path, *, progress: bool = False, resume: bool = True,
        verbose: bool = True, compute: bool = True, executor=None, command: str | None = None,
        family=None, max_seconds: float | None = None, estimate: bool = False) -> dict:
    """Run every (retraining method, seed) of ``cfg`` as units, write them and the record.

    Units go through :func:`landscape.runtime.executor.run_units` with a
    :class:`~landscape.runtime.executor.ResultStore` in ``<out>/units``, keyed by their full
    configuration (:func:`unit_config`): a finished unit is loaded, not recomputed, and a
    unit of the same name computed with other settings raises ``ConfigMismatch`` (a
    ``ValueError``) before any training starts.

    Parameters
    ----------
    resume : bool
        False: recompute (and overwrite) this configuration's units.
    compute : bool
        False: train nothing, only merge the units already in ``out`` (for example after
        several processes, one per seed, shared the folder).
    executor : landscape.runtime.executor.Executor or str, optional
        Where units run (default: in this process).
    command : str, optional
        The command line that produced the run, stored in the record. A merge-only call
        (``compute=False``) keeps the training wall time of an earlier record in ``out``.
    family : optional
        The family of ``cfg`` when the caller built it already (default: built here).
    estimate, max_seconds : bool, float
        Print the up-front cost estimate (:func:`estimate_cost`) before any training, and
        refuse (``ValueError``, nothing written) when it exceeds ``max_seconds``.

    Returns
    -------
    dict
        The record written to ``<out>/<experiment>_record.json`` (see :func:`summarize`).
    """
    from landscape.runtime.store import ResultStore
    from landscape.runtime.executor import run_units

    from .._records import read_json, to_jsonable, write_json

    out = Path(out)
    if compute and (estimate or max_seconds is not None):
        todo = todo_units(cfg, out, resume=resume)
        if todo:
            family = family if family is not None else build_family(cfg, verbose=verbose)
            estimate_cost(cfg, out, family, resume=resume, max_seconds=max_seconds)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "units")
    t0 = time.perf_counter()
    in_process = executor is None or getattr(executor, "workers", 0) == 1
    # stage progress bars only in this process (workers' bars would interleave)
    units = make_units(cfg, progress=progress and in_process, verbose=verbose)
    done = {u.key for u in units if store.has(u)}  # ConfigMismatch here, before any work
    cfg_file = out / f"{cfg.experiment}_config.json"
    if not compute:
        results = {u.key: store.load(u) for u in units if u.key in done}
        desc = read_json(cfg_file).get("family") if cfg_file.is_file() else None
    else:
        if not resume:
            for u in units:
                store.path(u.key).unlink(missing_ok=True)
            done = set()
        if verbose:
            for k in sorted(done):
                print(f"[{cfg.experiment}] {k}: done earlier (same configuration)", file=sys.stderr)
        todo = [u for u in units if u.key not in done]
        if todo:
            family = family if family is not None else build_family(cfg, verbose=verbose)
            _FAMILIES.clear()
            _FAMILIES[json.dumps(todo[0].config["run"], sort_keys=True)] = family
            desc = family.describe()
            write_json(cfg_file, json.loads(json.dumps(to_jsonable(
                {"config": cfg, "family": desc, "setup_wall_s": time.perf_counter() - t0,
                 "reader": getattr(family, "reader", None)}), default=str)))
        else:
            desc = read_json(cfg_file).get("family") if cfg_file.is_file() else None
        vals = run_units(units, executor=executor, store=store, progress=progress and len(units) > 1,
                         desc=f"{cfg.experiment} units")
        results = {u.key: v for u, v in zip(units, vals)}
    record = summarize(results, cfg, family_description=desc)
    rec_file = out / f"{cfg.experiment}_record.json"
    if compute:
        record["total_wall_s"] = time.perf_counter() - t0
    elif rec_file.is_file():
        old = read_json(rec_file)
        if "total_wall_s" in old:
            record["total_wall_s"] = old["total_wall_s"]
    if command:
        record["command"] = command
    write_json(out / f"{cfg.experiment}_record.json", json.loads(json.dumps(to_jsonable(record), default=str)))
    return record



def summarize(units, cfg: RunConfig, *, family_description: dict | None = None) -> dict:
    """Merge finished units into a record with per-row mean +- SE and paired comparisons
    (:func:`empirics.real._summary.summarize`).

    ``units`` maps unit key -> unit result (as :func:`run` collects them), is a list of
    unit results, or an output folder whose stored units of ``cfg`` are read (units of
    other settings there raise ``ConfigMismatch``); only units of ``cfg``'s methods and
    seeds are merged.
    """
    if isinstance(units, (str, Path)):
        from landscape.runtime.store import ResultStore

        store = ResultStore(Path(units) / "units")
        units = [store.load(u) for u in make_units(cfg) if store.has(u)]
    return _summarize_units(units, cfg, family_description=family_description)


def run_vision(out: str | Path, *, progress: bool = False, executor=None, max_seconds: float | None = None,
               estimate: bool = True, **settings) -> dict:
    """Public entry: the vision experiment (Table 1) with ``settings`` overriding the paper
    protocol :data:`VISION_PAPER` (any :class:`RunConfig` field), written to ``out``.

    Before any training it prints one line on stderr with the device, the optimizer steps
    and the estimated time (``estimate=False``: not), and raises ``ValueError`` (nothing
    written) when that exceeds ``max_seconds``.

    Example: ``run_vision("out/v", seeds=(1,), epochs=2, max_per_task=500, width=64)``.
    Returns the record (see :func:`run`).
    """
    cfg = dataclasses.replace(VISION_PAPER, **_tuples(settings, "run_vision"))
    return run(cfg, out, progress=progress, executor=executor, estimate=estimate, max_seconds=max_seconds)


def run_language(out: str | Path, *, progress: bool = False, executor=None, max_seconds: float | None = None,
                 estimate: bool = True, **settings) -> dict:
    """Public entry: the language experiment (Tables 2, 3) with ``settings`` overriding
    :data:`LANGUAGE_PAPER`, written to ``out``; the cost estimate and ``max_seconds`` as
    :func:`run_vision`. Returns the record (see :func:`run`)."""
    cfg = dataclasses.replace(LANGUAGE_PAPER, **_tuples(settings, "run_language"))
    return run(cfg, out, progress=progress, executor=executor, estimate=estimate, max_seconds=max_seconds)


def _tuples(settings: dict, func_name: str = "run") -> dict:
    """``settings`` as ``RunConfig`` fields: lists as tuples, the old keyword ``rank=`` as
    ``k=`` (a DeprecationWarning; both given: TypeError)."""
    from landscape._random import renamed_keyword

    settings = dict(settings)
    if "rank" in settings:
        settings["k"] = renamed_keyword(func_name, "rank", "k", settings.pop("rank"), settings.get("k"), stacklevel=4)
    return {k: tuple(v) if k in ("seeds", "retrain", "peft") else v for k, v in settings.items()}

