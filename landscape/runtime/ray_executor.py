"""The Ray backend of :mod:`landscape.runtime.executor` (optional extra: ``pip install '.[cluster]'``).

Each :class:`~landscape.runtime.executor.Unit` becomes one Ray task, scheduled with the unit's
declared :class:`~landscape.runtime.executor.Resources` (``num_cpus``, ``num_gpus``; a fraction of
a GPU lets several units share one). Results come back to the driver as they finish
(``ray.wait``); the driver alone writes the :class:`~landscape.runtime.executor.ResultStore`, so
workers need no shared file system.

Fault tolerance: a unit whose worker process (or node) dies is resubmitted by Ray
(``max_retries``). Units are pure functions of their configuration, so a rerun gives the
same result and nothing is lost. An exception raised *by* the unit is a bug, not a
failure of the machine: it is not retried and reaches the driver.

Code on the workers: a local instance (no address) starts its workers with this
checkout on ``PYTHONPATH`` (:func:`driver_import_path`), so the units of the running
checkout are imported. When joining an existing cluster, the toolkit's packages of the
driver's checkout are shipped to the workers with the job (Ray ``runtime_env``
``py_modules``); the workers need the dependencies installed (``pip install
'loraml[empirics,cluster]'``, the same versions as the driver).
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .units import Executor, Resources, Unit

__all__ = ["RayExecutor", "DEFAULT_MAX_RETRIES", "PROJECT_PACKAGES", "driver_import_path", "cluster_runtime_env"]

#: Reruns of a unit whose worker died: enough for a preempted node or two, few enough
#: that a unit that crashes its worker every time (e.g. out of memory) fails the sweep.
DEFAULT_MAX_RETRIES = 3

#: The toolkit's packages, shipped to the workers of an existing cluster.
PROJECT_PACKAGES = ("landscape", "theory", "empirics", "figures")

#: Ray accepts a resource request that is a fraction below one or a whole number.
_WHOLE_TOLERANCE = 1e-9

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _driver_paths() -> list[str]:
    """This checkout's root and the driver's own import folders outside the interpreter."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    out = [str(_PROJECT_ROOT)]
    for p in list(os.environ.get("PYTHONPATH", "").split(os.pathsep)) + list(sys.path):
        if not p or not os.path.isdir(p):
            continue
        real = os.path.realpath(p)
        if any(real == pre or real.startswith(pre + os.sep) for pre in prefixes):
            continue  # the interpreter's own folders: a local worker runs the same interpreter
        if real not in out:
            out.append(real)
    return out


@contextlib.contextmanager
def driver_import_path():
    """Within: ``PYTHONPATH`` holds this checkout's root and the driver's extra import folders.

    A local Ray instance started inside inherits it, and so do its workers: they import
    what the driver imports (the running checkout, the test suite's root), nothing is
    copied. An environment variable rather than a ``runtime_env`` because workers with
    a ``runtime_env`` are started apart from the instance's pre-started pool (seconds
    per worker on a busy machine).
    """
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(_driver_paths())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def cluster_runtime_env() -> dict[str, Any]:
    """``runtime_env`` for an existing cluster: ship this checkout's packages with the job."""
    mods = [str(_PROJECT_ROOT / p) for p in PROJECT_PACKAGES if (_PROJECT_ROOT / p / "__init__.py").is_file()]
    return {"py_modules": mods, "excludes": ["results/", "*.npz", "__pycache__/"]}


def _check_amount(name: str, v: float) -> None:
    if v > 1 and abs(v - round(v)) > _WHOLE_TOLERANCE:
        raise ValueError(f"Ray needs {name} to be a fraction below 1 or a whole number, got {v}")


def _run(unit: Unit) -> Any:
    return unit.run()


class RayExecutor(Executor):
    """Run units as Ray tasks on a local instance or an existing cluster.

    Parameters
    ----------
    address : str, optional
        Cluster to join (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``; default: the
        ``RAY_ADDRESS`` environment variable). Without either: use the Ray instance this
        process already has, else start a fresh local one (never silently join a
        cluster found on the machine).
    num_cpus : int, optional
        CPUs of a local instance (default: the machine's).
    max_retries : int
        Reruns of a unit whose worker died (:data:`DEFAULT_MAX_RETRIES`).
    runtime_env : dict, optional
        Ray ``runtime_env`` of the job (default: none for a local instance,
        :func:`cluster_runtime_env` when joining a cluster).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES, runtime_env: Mapping[str, Any] | None = None):
        try:
            import ray
        except ImportError:  # pragma: no cover - depends on the installation
            raise ValueError("the ray executor needs Ray: pip install 'loraml[cluster]'") from None
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        self._ray = ray
        self.max_retries = max_retries
        self._owns = False
        address = address or os.environ.get("RAY_ADDRESS") or None
        if not ray.is_initialized():
            if address is None:
                # address="local": always a fresh instance, never one found on the machine
                with driver_import_path():
                    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR",
                             runtime_env=None if runtime_env is None else dict(runtime_env))
            else:
                env = dict(runtime_env) if runtime_env is not None else cluster_runtime_env()
                try:
                    ray.init(address=address, runtime_env=env, logging_level="ERROR")
                except ConnectionError as exc:
                    raise ValueError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
            self._owns = True
        self._remote = ray.remote(_run)

    # ------------------------------------------------------------------ resources

    def node_resources(self) -> list[dict[str, float]]:
        """Resources of each alive node of the cluster (``CPU``, ``GPU``, ...)."""
        return [dict(n.get("Resources", {})) for n in self._ray.nodes() if n.get("Alive")]

    def check_resources(self, units: Sequence[Unit]) -> None:
        """Refuse up front (``ValueError``) a unit that no node of the cluster can ever run.

        Ray would otherwise keep such a task pending forever (e.g. a GPU unit on a
        CPU-only cluster).
        """
        nodes = self.node_resources()
        seen: set[Resources] = set()
        for u in units:
            r = u.resources
            if r in seen:
                continue
            seen.add(r)
            _check_amount("cpus", r.cpus)
            _check_amount("gpus", r.gpus)
            if not any(n.get("CPU", 0.0) >= r.cpus and n.get("GPU", 0.0) >= r.gpus for n in nodes):
                have = ", ".join(f"{n.get('CPU', 0):g} CPU / {n.get('GPU', 0):g} GPU" for n in nodes) or "no nodes"
                raise ValueError(f"unit {u.key!r} needs {r.cpus:g} CPU and {r.gpus:g} GPU, "
                                 f"but no node of the Ray cluster has that ({have})")

    # ------------------------------------------------------------------ running

    def imap(self, units):
        ray = self._ray
        units = list(units)
        if not units:
            return
        self.check_resources(units)
        pending: dict[Any, int] = {}
        try:
            for i, u in enumerate(units):
                ref = self._remote.options(num_cpus=u.resources.cpus, num_gpus=u.resources.gpus,
                                           max_retries=self.max_retries, retry_exceptions=False).remote(u)
                pending[ref] = i
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    yield i, ray.get(ref)
        finally:
            # an error, KeyboardInterrupt or an abandoned generator: stop what still runs
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or gone: nothing to stop
                    pass

    def close(self) -> None:
        """Shut down the Ray instance if this executor started it."""
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False
