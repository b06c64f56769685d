"""Module-level unit functions for the executor tests (importable by pool and Ray workers).

Kept apart from the test modules so that a worker unpickling a unit imports numpy and
this file only, not pytest or hypothesis.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np


def random_arrays(seed: int, n: int, marker_dir: str | None = None) -> dict:
    """A pure function of ``seed``: arrays of several dtypes drawn from its own generator.

    When ``marker_dir`` is given, each run appends a line to ``<marker_dir>/<seed>`` so
    tests can count how often a unit was computed.
    """
    if marker_dir is not None:
        with open(Path(marker_dir) / str(seed), "a") as f:
            f.write(f"{os.getpid()}\n")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    return {"x": x, "gram": x.T @ x, "ints": rng.integers(-2**62, 2**62, size=n, dtype=np.int64),
            "f32": x.astype(np.float32).sum(axis=0), "seed": seed, "norm": float(np.linalg.norm(x))}


def fail_on(seed: int, bad: int, marker_dir: str) -> int:
    """``seed`` unless ``seed == bad`` (then raise); logs each run like :func:`random_arrays`."""
    with open(Path(marker_dir) / str(seed), "a") as f:
        f.write(f"{os.getpid()}\n")
    if seed == bad:
        raise RuntimeError(f"unit {seed} fails on purpose")
    return seed


def die_once(seed: int, marker_dir: str) -> dict:
    """Kill the worker process on the first attempt (marker file absent), else compute.

    ``os._exit`` ends the process without unwinding: what a worker killed by the
    operating system (out of memory, a preempted node) looks like to the executor.
    """
    marker = Path(marker_dir) / f"died-{seed}"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return random_arrays(seed, 4)


def sleep_then_mark(seed: int, seconds: float, marker_dir: str) -> int:
    """Write ``<seed>.pid`` (this process's id, atomically), sleep, then write ``<seed>.done``."""
    d = Path(marker_dir)
    tmp = d / f".{seed}.pid.tmp"
    tmp.write_text(str(os.getpid()))
    os.replace(tmp, d / f"{seed}.pid")  # a reader never sees an empty file
    time.sleep(seconds)
    (d / f"{seed}.done").write_text("done")
    return seed


def assigned_resources() -> dict:
    """The resources Ray granted the task running this unit."""
    import ray

    return {k: float(v) for k, v in ray.get_runtime_context().get_assigned_resources().items()}


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (and is not a zombie) on this Linux machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ignore_sigterm() -> None:
    """Pool initializer: a worker that does not stop on SIGTERM (one still starting up, say)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def sleep_seconds(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds
