"""One execution layer for every sweep of the toolkit: independent *units* run locally or on Ray.

The figures registry, the real-data runs (one unit per method x seed), the theory atlas
(one unit per cell) and the audit's multistart search all submit independent units here.
It lives in :mod:`landscape.runtime` because that is the floor every other package may import
(DESIGN.md: data flows ``landscape -> theory/empirics -> figures``); it imports nothing
heavy and nothing of the rest of the toolkit.

Contract of a unit
------------------
* ``Unit.fn`` is a module-level (picklable, importable on a worker) function called as
  ``fn(**unit.config)``; the unit is a pure function of its configuration (its seed is
  part of the configuration), so the same unit gives the same result on any backend.
* The result is a JSON-able value; numpy arrays anywhere inside it are stored exactly
  (dtype, shape and bytes), so results read back from a store are bitwise equal to the
  computed ones.
* With a :class:`ResultStore`, a unit's result is written atomically (temporary name,
  then ``os.replace``) as ``<root>/<key>.json`` together with its configuration; a unit
  whose result already exists is not run again, so a sweep resumes anywhere. A stored
  result whose configuration differs from the unit's raises :class:`ConfigMismatch`
  (never a silent mix of two settings).
* ``Unit.resources`` declares what one run needs; the Ray backend schedules by it (GPU
  units one per GPU, or a fraction where several fit).
* ``Unit.hints`` are further keyword arguments that cannot change the result (a path
  for mid-unit checkpoints, a progress flag); they are passed to ``fn`` but are not part
  of the stored configuration, so they may differ between a run and its resumption.

Backends: :class:`LocalExecutor` (this process, or a pool of processes) and
``RayExecutor`` (:mod:`landscape.runtime.ray_executor`, optional extra ``cluster``); both give
the same results for the same units. The unit and the backend interface are in
:mod:`~landscape.runtime.units`, the store in :mod:`~landscape.runtime.store` and the
atomic writer in :mod:`~landscape.runtime.atomic`; this module re-exports them.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterable
from typing import Any

from .atomic import atomic_write, atomic_write_text, default_file_mode  # noqa: F401  (re-exported)
from .store import ConfigMismatch, ResultStore, config_digest, decode, encode  # noqa: F401  (re-exported)
from .units import Executor, Resources, Unit  # noqa: F401  (re-exported)

__all__ = [
    "BACKENDS",
    "ConfigMismatch",
    "Executor",
    "LocalExecutor",
    "Resources",
    "ResultStore",
    "Unit",
    "add_executor_arguments",
    "decode",
    "encode",
    "check_executor_args",
    "executor_from_args",
    "get_executor",
    "run_units",
]

#: Names accepted by ``--executor``.
BACKENDS = ("local", "ray")


def _call(unit: Unit) -> Any:
    return unit.run()


def _ignore_sigint() -> None:
    # pool workers leave Ctrl-C to the driver, which stops them (no traceback per worker)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(ex) -> None:
    """Terminate the processes of a ``ProcessPoolExecutor`` (units in flight are abandoned)."""
    if hasattr(ex, "terminate_workers"):  # Python >= 3.14
        ex.shutdown(wait=False, cancel_futures=True)
        try:
            ex.terminate_workers()
        except Exception:  # noqa: BLE001 - the pool may already be gone
            pass
        return
    procs = list((getattr(ex, "_processes", None) or {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + _JOIN_SECONDS
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:  # SIGTERM not honoured in time (e.g. a worker still starting up): SIGKILL
        if p.is_alive():
            p.kill()
            p.join(timeout=_JOIN_SECONDS)


#: How long, in all, to wait for the terminated pool workers to exit before they are
#: killed (SIGTERM is immediate for a process computing in numpy/torch; this only
#: bounds a worker that is still starting up on a loaded machine).
_JOIN_SECONDS = 2.0


class LocalExecutor(Executor):
    """In this process (``workers=1``, the default) or in a pool of ``workers`` spawned processes.

    On an error or ``KeyboardInterrupt`` in the driver, queued units are cancelled and
    the pool's processes are terminated: no worker keeps training after the sweep stops.
    """

    name = "local"

    def __init__(self, workers: int = 1):
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers

    def imap(self, units):
        if self.workers == 1 or len(units) <= 1:
            for i, u in enumerate(units):
                yield i, u.run()
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: a forked child would inherit torch's thread-pool state from the parent
        ex = ProcessPoolExecutor(max_workers=min(self.workers, len(units)), mp_context=mp.get_context("spawn"),
                                 initializer=_ignore_sigint)
        finished = False
        try:
            futures = {ex.submit(_call, u): i for i, u in enumerate(units)}
            for f in as_completed(futures):
                yield futures[f], f.result()
            finished = True
        finally:
            if finished:
                ex.shutdown(wait=True)
            else:
                _stop_workers(ex)


def get_executor(name: str = "local", *, workers: int = 1, ray_address: str | None = None) -> Executor:
    """The executor called ``name`` (one of :data:`BACKENDS`)."""
    if name == "local":
        return LocalExecutor(workers=workers)
    if name == "ray":
        from .ray_executor import RayExecutor  # optional extra: pip install '.[cluster]'

        return RayExecutor(address=ray_address)
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(BACKENDS)}")


def run_units(units: Iterable[Unit], *, executor: Executor | str | None = None,
              store: ResultStore | str | os.PathLike | None = None, progress: bool = False,
              desc: str = "units") -> list[Any]:
    """Run every unit not already in ``store``; results in the order of ``units``.

    Keys must be unique. Stored results are loaded (and checked against the unit's
    configuration) instead of being recomputed; each new result is saved as soon as it
    arrives, so an interrupted sweep loses at most the units in flight.
    """
    units = list(units)
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate unit keys: {dup[:5]}")
    if isinstance(store, (str, os.PathLike)):
        store = ResultStore(store)
    own = executor is None or isinstance(executor, str)
    if own:
        executor = get_executor(executor or "local")
    results: list[Any] = [None] * len(units)
    todo = []
    for i, u in enumerate(units):
        if store is not None and store.has(u):
            results[i] = store.load(u)
        else:
            todo.append(i)
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(units), initial=len(units) - len(todo), desc=f"{desc} ({executor.name})", disable=None)
    try:
        for j, res in executor.imap([units[i] for i in todo]):
            i = todo[j]
            if store is not None:
                store.save(units[i], res)
                res = store.load(units[i])  # what a resumed run would see: identical either way
            results[i] = res
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if own:
            executor.close()
    return results


# ---------------------------------------------------------------------------- CLI
# ---------------------------------------------------------------------------- CLI

def add_executor_arguments(parser: argparse.ArgumentParser, *, workers_default: int | None = 1) -> None:
    """``--executor local|ray``, ``--ray-address ADDRESS`` and ``--workers N`` on a sweeping command.

    ``workers_default=None`` lets a command tell "not given" from an explicit ``--workers``
    (e.g. to fall back on a per-sweep default); :func:`executor_from_args` reads None as 1.
    """
    g = parser.add_argument_group("execution")
    g.add_argument("--executor", choices=BACKENDS, default="local",
                   help="where independent units run: this machine (default) or a Ray cluster")
    g.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="Ray cluster to join (e.g. 'auto' or 'ray://head:10001'); default: a local Ray instance")
    g.add_argument("--workers", type=int, default=workers_default, metavar="N",
                   help="local executor: number of worker processes (default: "
                        + ("1, in this process)" if workers_default == 1 else "the command's own)"))


def check_executor_args(args: argparse.Namespace) -> int:
    """Validate :func:`add_executor_arguments`' options without starting anything.

    Returns the number of local workers; raises ValueError on bad values and
    ImportError when ``--executor ray`` is asked for without Ray installed, so a command
    can refuse before it creates any output.
    """
    workers = getattr(args, "workers", None)
    workers = 1 if workers is None else workers
    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if getattr(args, "ray_address", None) and args.executor != "ray":
        raise ValueError("--ray-address needs --executor ray")
    if args.executor not in BACKENDS:
        raise ValueError(f"unknown executor {args.executor!r}; choose one of {', '.join(BACKENDS)}")
    if args.executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ImportError("--executor ray needs Ray: pip install '.[cluster]'")
    return workers


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The executor selected by :func:`add_executor_arguments`' options (ValueError on bad values)."""
    workers = check_executor_args(args)
    return get_executor(args.executor, workers=workers, ray_address=getattr(args, "ray_address", None))
