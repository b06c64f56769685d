"""Deprecated import path: the executor moved to :mod:`landscape.runtime.executor`.

Kept for one release; importing it warns, and every name resolves to its new home in
:mod:`landscape.runtime` (the executor, the :mod:`~landscape.runtime.units`, the result
:mod:`~landscape.runtime.store` and the :mod:`~landscape.runtime.atomic` writer).
"""
from .runtime.executor import __all__  # noqa: F401
from .runtime.moved import forward

__getattr__, __dir__ = forward(__name__, "landscape.runtime.executor (atomic writes: landscape.runtime.atomic, "
                               "the result store: landscape.runtime.store)",
                               ["landscape.runtime.executor", "landscape.runtime.store", "landscape.runtime.atomic",
                                "landscape.runtime.units"])
