"""The unit of work of :mod:`landscape.runtime.executor` and the interface of a backend.

A :class:`Unit` is one independent piece of a sweep, ``fn(**config)``, with the
:class:`Resources` one run needs; an :class:`Executor` runs units and yields their
results as they finish. Both backends (:class:`~landscape.runtime.executor.LocalExecutor`
and :class:`~landscape.runtime.ray_executor.RayExecutor`) build on this module alone, so
neither imports the other (the factory :func:`~landscape.runtime.executor.get_executor`
imports the Ray backend only when asked for it).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Executor", "Resources", "Unit"]


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


class Executor(ABC):
    """Runs units; yields ``(index, result)`` as they finish (any order)."""

    name: str = "?"

    @abstractmethod
    def imap(self, units: Sequence[Unit]) -> Iterator[tuple[int, Any]]:
        ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
