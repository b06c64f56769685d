"""Helpers of the pin tests: find a private function of a package wherever it now
lives, and patch a name in every module of a package that refers to it (so a breakage
applied by a test reaches the code that calls it, whichever room holds it)."""
from __future__ import annotations

import importlib
import pkgutil


def _modules(package: str):
    pkg = importlib.import_module(package)
    yield pkg
    for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
        yield importlib.import_module(f"{package}.{info.name}")


def home(package: str, name: str):
    """The module of ``package`` that defines ``name`` (``obj.__module__``)."""
    for mod in _modules(package):
        obj = getattr(mod, name, None)
        if obj is not None and getattr(obj, "__module__", None) == mod.__name__:
            return mod
    raise LookupError(f"{name} not defined in {package}")


def find(package: str, name: str):
    """``name`` from its defining module in ``package``, else from any module holding it."""
    try:
        return getattr(home(package, name), name)
    except LookupError:
        for mod in _modules(package):
            if hasattr(mod, name):
                return getattr(mod, name)
        raise


def patch_everywhere(monkeypatch, package: str, name: str, value) -> int:
    """Set ``name`` to ``value`` in every module of ``package`` holding the same object."""
    original = find(package, name)
    hits = 0
    for mod in _modules(package):
        if getattr(mod, name, None) is original:
            monkeypatch.setattr(mod, name, value)
            hits += 1
    return hits
