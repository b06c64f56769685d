"""The result store of the executor: unit results kept exactly, one JSON file per unit.

:func:`encode`/:func:`decode` give a JSON-able form of a unit's result in which numpy
arrays keep their dtype, shape and bytes; :class:`ResultStore` writes each result
atomically as ``<root>/<key>.json`` with its configuration's digest and a content hash
(:mod:`~landscape.runtime.integrity`), refuses (:class:`ConfigMismatch`) a stored result
computed with another configuration and (:class:`StoreIntegrityError`) one that fails
its content hash.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_text
from .integrity import StoreIntegrityError, read_sealed, sealed_text
from .units import Unit

__all__ = ["ConfigMismatch", "ResultStore", "StoreIntegrityError", "config_digest", "decode", "encode"]


class ConfigMismatch(ValueError):
    """A stored result was computed with another configuration than the unit asking for it."""


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

class ResultStore:
    """A folder of unit results, ``<root>/<key>.json``, each written atomically."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def _read(self, unit: Unit) -> dict | None:
        """The checked payload of ``unit``'s file, None when there is none.

        Raises :class:`StoreIntegrityError` when the file fails its content hash
        (:mod:`landscape.runtime.integrity`: truncated, edited, older format) and
        :class:`ConfigMismatch` when it holds another configuration's result.
        """
        p = self.path(unit.key)
        if not p.is_file():
            return None
        stored = read_sealed(p)
        if stored.get("key") != unit.key or "result" not in stored:
            raise StoreIntegrityError(f"{p}: does not hold unit {unit.key!r}; it is not used; delete {p} and rerun "
                                      "the command to recompute it")
        if stored.get("config_sha256") != config_digest(unit.config):
            raise ConfigMismatch(f"{p} holds unit {unit.key!r} computed with another configuration; "
                                 "use another output folder or remove it")
        return stored

    def has(self, unit: Unit) -> bool:
        """Whether ``unit``'s result is stored; raises :class:`ConfigMismatch` on another config
        and :class:`StoreIntegrityError` on a file that fails its integrity check."""
        return self._read(unit) is not None

    def load(self, unit: Unit) -> Any:
        stored = self._read(unit)
        if stored is None:
            raise FileNotFoundError(self.path(unit.key))
        return decode(stored["result"])

    def save(self, unit: Unit, result: Any) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        payload = {"key": unit.key, "config_sha256": config_digest(unit.config), "config": encode(dict(unit.config)),
                   "result": encode(result)}
        return atomic_write_text(self.path(unit.key), sealed_text(payload))
