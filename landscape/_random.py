"""One convention for randomness, sizes and keyword names in the Python API.

* Randomness: every public function that draws random numbers takes either a seed (an
  integer >= 0) or a :class:`numpy.random.Generator`; :func:`as_generator` turns either
  into a Generator.  A Generator is used as it is (its state advances), a seed gives
  ``numpy.random.default_rng(seed)``, so the same seed always gives the same numbers.
  There is no hidden global state: ``None`` is refused.
* Sizes: problem sizes are given in the order ``(d, T, k)`` (matrix size, number of
  tasks, adapter rank), as in :func:`landscape.random_instance`, :class:`Size` and
  :func:`landscape.estimate_audit_cost`.
* Names: the adapter rank is ``k`` (the paper's and THEORY.md's symbol, and the name
  used by :class:`landscape.LoraMLProblem`, :func:`landscape.random_instance`, the
  theory checks and the synthetic experiment configurations).  Older spellings (``rank=``
  for :func:`landscape.audit`, ``configs=`` in the (d, k, T) order for the theory checks)
  still work and emit a :class:`DeprecationWarning` (:func:`renamed_keyword`).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ._validation import LandscapeInputError

__all__ = ["Size", "accepts_seed", "as_generator", "seed_from", "renamed_keyword", "sizes_from_dkt"]

#: Largest integer seed handed to ``numpy.random.default_rng`` when a seed is drawn from
#: a Generator (:func:`seed_from`); below 2**63 so that it fits every integer field.
_SEED_BOUND = 2**63 - 1


class Size(NamedTuple):
    """Problem size in the toolkit's one order: ``(d, T, k)``."""

    d: int
    T: int
    k: int


def _describe(x) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_seed_int(seed, name: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= 0 or a numpy.random.Generator, got {_describe(seed)}")
    if seed < 0:
        raise LandscapeInputError(f"{name} must be an integer >= 0 or a numpy.random.Generator, got {int(seed)}")
    return int(seed)


def as_generator(seed, *, name: str = "seed") -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a seed or a Generator.

    Parameters
    ----------
    seed : int >= 0, numpy.random.Generator or numpy.random.SeedSequence
        A Generator is returned unchanged (the caller's stream continues); an integer or
        a SeedSequence gives ``numpy.random.default_rng(seed)``.
    name : str
        Name used in the error message.

    Raises
    ------
    TypeError
        For anything else (``None``, floats, booleans, the legacy ``RandomState``).
    LandscapeInputError
        For a negative integer.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    return np.random.default_rng(_check_seed_int(seed, name))


def seed_from(seed, *, name: str = "seed") -> int:
    """An integer seed from a seed or a Generator, for functions that record their seed
    (:func:`landscape.audit` writes it to the report and derives per-unit streams from it).

    An integer is returned as it is; a Generator gives its next integer in
    ``[0, 2**63 - 1)``, so the caller's stream determines the result.
    """
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(_SEED_BOUND))
    return _check_seed_int(seed, name)


def renamed_keyword(func_name: str, old: str, new: str, old_value, new_value, *, stacklevel: int = 3):
    """Resolve a renamed keyword: return the value to use, warning when the old name was used.

    ``old_value``/``new_value`` are the values passed under each name, ``None`` when
    absent.  Both given is an error.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"{func_name}() got both {new}= and its old name {old}=; pass only {new}=")
    warnings.warn(f"{func_name}({old}=...) is deprecated, use {new}=", DeprecationWarning, stacklevel=stacklevel)
    return old_value


def sizes_from_dkt(func_name: str, configs, *, stacklevel: int = 3) -> tuple:
    """Old ``configs=`` given in the order (d, k, T): warn, return them as :class:`Size` (d, T, k)."""
    warnings.warn(
        f"{func_name}(configs=...) with sizes in the order (d, k, T) is deprecated; "
        "use sizes=... in the order (d, T, k)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return tuple(Size(int(d), int(T), int(k)) for d, k, T in configs)


def accepts_seed(param: str = "rng"):
    """Decorator: the argument ``param`` of the decorated function may be a seed or a
    Generator (:func:`as_generator`); ``None`` passes through when it is the default."""
    import functools
    import inspect

    def deco(func):
        sig = inspect.signature(func)
        names = list(sig.parameters)
        pos = names.index(param)
        p = sig.parameters[param]
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            pos = None
        none_ok = p.default is None

        def convert(value):
            if value is None and none_ok:
                return None
            return as_generator(value, name=param)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if pos is not None and len(args) > pos:
                if not isinstance(args[pos], np.random.Generator):
                    args = args[:pos] + (convert(args[pos]),) + args[pos + 1:]
            elif param in kwargs and not isinstance(kwargs[param], np.random.Generator):
                kwargs[param] = convert(kwargs[param])
            return func(*args, **kwargs)

        return wrapper

    return deco
