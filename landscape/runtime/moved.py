"""Old import paths of moved modules, kept for one release (ARCHITECTURE.md, "Moved rooms").

A module left at an old path calls :func:`forward`: importing it warns
(``DeprecationWarning``, naming the new home) and every attribute resolves to the very
object of the module that now holds it, so ``isinstance`` checks and identity agree.
"""
from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence

__all__ = ["forward"]


def forward(old: str, new: str, homes: Sequence[str]) -> tuple[Callable[[str], object], Callable[[], list]]:
    """Warn that ``old`` moved to ``new``; return the ``__getattr__`` and ``__dir__`` of
    the old module, looking names up in ``homes`` (module paths, in order)."""
    warnings.warn(f"{old} is deprecated and will be removed; import from {new}", DeprecationWarning,
                  stacklevel=3)
    mods = [importlib.import_module(h) for h in homes]

    def __getattr__(name: str):
        if not name.startswith("__") or name == "__version__":  # never __path__, __spec__, ...
            for mod in mods:
                if hasattr(mod, name):
                    return getattr(mod, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    def __dir__() -> list:
        return sorted({n for mod in mods for n in dir(mod) if not n.startswith("__") or n == "__version__"})

    return __getattr__, __dir__
