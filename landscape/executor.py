"""Deprecated import path: the executor moved to :mod:`landscape.runtime.executor`.

Kept for one release so that code written against ``landscape.executor`` keeps working;
importing it warns (``DeprecationWarning``) and every name resolves to its new home in
:mod:`landscape.runtime` (the executor, :mod:`~landscape.runtime.units`, the result
:mod:`~landscape.runtime.store` and the :mod:`~landscape.runtime.atomic` writer).
"""
from __future__ import annotations

import warnings

from .runtime import atomic as _atomic
from .runtime import executor as _executor
from .runtime import store as _store
from .runtime import units as _units

warnings.warn("landscape.executor is deprecated; import from landscape.runtime.executor "
              "(atomic writes: landscape.runtime.atomic, the result store: landscape.runtime.store)",
              DeprecationWarning, stacklevel=2)

__all__ = list(_executor.__all__)


def __getattr__(name: str):
    for mod in (_executor, _store, _atomic, _units):
        if not name.startswith("__") and hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module 'landscape.executor' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | {n for m in (_store, _atomic, _units) for n in getattr(m, "__all__", ())})
