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
the same results for the same units.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


class ConfigMismatch(ValueError):
    """A stored result was computed with another configuration than the unit asking for it."""


@dataclass(frozen=True)
class Resources:
    """What one run of a unit needs. ``gpus`` may be a fraction (several units per GPU)."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self):
        for name in ("cpus", "gpus"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"Resources.{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class Unit:
    """One independent piece of a sweep: ``fn(**config)``, stored under ``key``."""

    key: str
    fn: Callable[..., Any]
    config: Mapping[str, Any] = field(default_factory=dict)
    resources: Resources = Resources()
    hints: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.key or any(c in self.key for c in '/\\\0') or self.key.startswith("."):
            raise ValueError(f"unit key must be a non-empty file-name-safe string, got {self.key!r}")
        both = set(self.config) & set(self.hints)
        if both:
            raise ValueError(f"unit {self.key!r}: keys both in config and hints: {sorted(both)}")

    def run(self) -> Any:
        return self.fn(**self.config, **self.hints)


# ---------------------------------------------------------------------------- encoding

def encode(obj: Any) -> Any:
    """JSON-able form of ``obj``; numpy arrays and scalars are tagged and kept exact."""
    if isinstance(obj, np.ndarray):
        # not np.ascontiguousarray: it turns a 0-d array into shape (1,)
        a = obj if obj.flags.c_contiguous else obj.copy(order="C")
        if a.dtype == object:
            raise TypeError("object arrays cannot be stored in a unit result")
        return {"__ndarray__": base64.b64encode(a.tobytes()).decode("ascii"), "dtype": a.dtype.str,
                "shape": list(a.shape)}
    if isinstance(obj, np.generic):
        return encode(np.asarray(obj))
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"unit result keys must be strings, got {k!r}")
            out[k] = encode(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"unit results must be JSON-able (or numpy), got {type(obj).__name__}")


def decode(obj: Any) -> Any:
    """Inverse of :func:`encode`: arrays with their dtype, shape and bytes; numpy scalars
    come back as 0-d arrays and tuples as lists."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            raw = base64.b64decode(obj["__ndarray__"])
            return np.frombuffer(raw, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
        if "__float__" in obj:
            return float(obj["__float__"])
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def config_digest(config: Mapping[str, Any]) -> str:
    """Stable digest of a unit configuration (sorted-key JSON of its encoded form)."""
    text = json.dumps(encode(dict(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- store

class ResultStore:
    """A folder of unit results, ``<root>/<key>.json``, each written atomically."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def has(self, unit: Unit) -> bool:
        """Whether ``unit``'s result is stored; raises :class:`ConfigMismatch` on another config."""
        p = self.path(unit.key)
        if not p.is_file():
            return False
        stored = json.loads(p.read_text())
        if stored.get("config_sha256") != config_digest(unit.config):
            raise ConfigMismatch(f"{p} holds unit {unit.key!r} computed with another configuration; "
                                 "use another output folder or remove it")
        return True

    def load(self, unit: Unit) -> Any:
        if not self.has(unit):
            raise FileNotFoundError(self.path(unit.key))
        return decode(json.loads(self.path(unit.key).read_text())["result"])

    def save(self, unit: Unit, result: Any) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        payload = {"key": unit.key, "config_sha256": config_digest(unit.config), "config": encode(dict(unit.config)),
                   "result": encode(result)}
        return atomic_write_text(self.path(unit.key), json.dumps(payload))


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: ``0o666`` less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Write ``path`` atomically: ``write(binary_file)`` fills a temporary file in the same
    folder (usual file mode, fsync-ed), which then replaces ``path`` by ``os.replace``; on
    any error or interrupt the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600; a result file is as readable as any other
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ---------------------------------------------------------------------------- backends

class Executor(ABC):
    """Runs units; yields ``(index, result)`` as they finish (any order)."""

    name: str = "?"

    @abstractmethod
    def imap(self, units: Sequence[Unit]) -> Iterator[tuple[int, Any]]:
        ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


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

        bar = tqdm(total=len(units), initial=len(units) - len(todo), desc=f"{desc} ({executor.name})")
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
