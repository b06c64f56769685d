"""Helpers of the pin tests: an exact-rational Schur complement (the reference of the
curvature bounds); find a private function of a package wherever it now
lives, and patch a name in every module of a package that refers to it (so a breakage
applied by a test reaches the code that calls it, whichever room holds it); a Generator
with one planted draw; a function's positional and keyword-only parameters; a child process
holding an output folder's lock; the constant-sweep tool as a module; Thm 3.2 structures
planted or patched."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import subprocess
import sys
from fractions import Fraction
import pkgutil

import numpy as np


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


def exact_schur(R, U):
    """The Schur complement S of THEORY.md section 5 in exact rationals, from the residuals
    R_t and the factors U_t (nested lists of Fractions, k = 1): the reference that the float
    and arb certificates' curvature bounds are checked against."""
    T, d = len(U), len(U[0])
    S = [[Fraction(0)] * (T * d) for _ in range(T * d)]
    for s in range(T):
        for t in range(T):
            dot = sum(U[t][i] * U[s][i] for i in range(d))
            for i in range(d):
                for j in range(d):
                    v = -Fraction(2, T) * ((dot if i == j else 0) + U[t][i] * U[s][j])
                    if s == t:
                        nt = sum(x * x for x in U[t])
                        v += 2 * (nt if i == j else 0) + 2 * U[t][i] * U[t][j] + R[t][i][j] + R[t][j][i]
                    S[s * d + i][t * d + j] = v
    return S


class PlantedRng(np.random.Generator):
    """A Generator whose standard-normal draw of one shape is planted (``planted``);
    every other draw is the seed's own."""

    def __init__(self, seed, planted):
        super().__init__(np.random.PCG64(seed))
        self._planted = np.asarray(planted)

    def standard_normal(self, size=None, *args, **kwargs):
        if size == self._planted.shape:
            return self._planted.copy()
        return super().standard_normal(size, *args, **kwargs)


def assert_abstract_in_exactly(base: type, methods) -> None:
    """``base`` is abstract in exactly ``methods``: a subclass leaving out any one of them
    cannot be instantiated (the TypeError names it), one defining all of them can."""
    import pytest

    assert set(base.__abstractmethods__) == set(methods)
    for missing in methods:
        body = {m: (lambda self, *a: None) for m in methods if m != missing}
        with pytest.raises(TypeError, match=missing):
            type("Partial", (base,), body)()
    type("Whole", (base,), {m: (lambda self, *a: None) for m in methods})()


def assert_options_by_keyword(func, positional) -> None:
    """``func`` takes exactly ``positional`` (in this order) by position or keyword and every
    other parameter by keyword only (no positional-only ones)."""
    params = inspect.signature(func).parameters
    assert [n for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == list(positional)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in params.items() if n not in positional)


def lock_holder(folder, seconds: float = 30):
    """A child process that takes ``OutLock(folder)``, prints ``locked`` and holds it for
    ``seconds`` (it exits with an error, printing nothing, if the folder is held already)."""
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    return subprocess.Popen(
        [sys.executable, "-c", "import time; from landscape.runtime.outguard import OutLock; "
                               f"OutLock({str(folder)!r}, 'cmd').acquire(); print('locked', flush=True); time.sleep({seconds})"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": root})


def constant_sweep():
    """``tools/constant_sweep.py`` as a module (it is a script, not a package member)."""
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "constant_sweep", Path(__file__).resolve().parents[1] / "tools" / "constant_sweep.py")
    cs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cs)
    return cs


def thm32_structure_at(**over):
    """A ``Thm32Structure`` with tau = 1e-3 and every conclusion holding comfortably, the
    fields ``over`` replaced."""
    from theory._checks_minima import Thm32Structure

    base = dict(loss=0.0, tau=1e-3, asym=0.0, q_consistency=0.0, inertia=(1, 1), min_eig_W_minus_Q=0.0,
                test_rank=3, ey_3k=0.0, ey_k=1.0, q_norm=1.0)
    return Thm32Structure(**{**base, **over})


def patch_thm32_structures(monkeypatch, **changes) -> None:
    """Make every structure ``theory._checks_minima.thm32_structure`` measures come back with
    the fields ``changes`` (field -> function of the measured structure) replaced."""
    import dataclasses

    import theory._checks_minima as minima

    orig = minima.thm32_structure

    def patched(*args, **kwargs):
        r = orig(*args, **kwargs)
        return dataclasses.replace(r, **{k: f(r) for k, f in changes.items()})

    monkeypatch.setattr(minima, "thm32_structure", patched)
