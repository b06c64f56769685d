"""Deprecated import path: moved to :mod:`landscape.runtime.version` (kept for one release;
importing it warns, and every name resolves there)."""
from .runtime.moved import forward

__getattr__, __dir__ = forward(__name__, "landscape.runtime.version", ["landscape.runtime.version"])
