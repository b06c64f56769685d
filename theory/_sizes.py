"""Sizes in the toolkit's one order ``(d, T, k)`` (see :mod:`landscape._random`).

The checks take ``sizes=`` as ``(d, T, k)`` tuples; their old keyword ``configs=`` in the
order ``(d, k, T)`` still works with a :class:`DeprecationWarning`.  The closed-form
formulas (:func:`theory.thm31_expected_sr_loss`, :func:`theory.prop1_needed_rank`,
:func:`theory.lora_ml_needed_rank`) take ``d=, T=, k=`` by keyword, which no order can
confuse; three positional numbers are read in the old order ``(d, k, T)`` and warn.
"""
from __future__ import annotations

import functools
import warnings

from landscape._random import Size, sizes_from_dkt

__all__ = ["resolve_sizes", "sizes_by_keyword"]


def resolve_sizes(func_name: str, configs, sizes, *, default=()) -> tuple:
    """``sizes`` (d, T, k) as :class:`landscape._random.Size` tuples (``default`` when
    neither is given); ``configs`` (old, (d, k, T)) converted with a DeprecationWarning.
    Both given is an error."""
    if configs is not None:
        if sizes is not None:
            raise TypeError(f"{func_name}() got both sizes= and its old form configs=; pass only sizes= (d, T, k)")
        # the frames above: sizes_from_dkt, this, the check, its accepts_seed wrapper, the caller
        return sizes_from_dkt(func_name, configs, stacklevel=5)
    return tuple(Size(*map(int, s)) for s in (default if sizes is None else sizes))


def sizes_by_keyword(func):
    """Let ``func(*, d, T, k)`` also be called as ``func(d, k, T)`` (old order), with a warning."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if args:
            if len(args) != 3 or kwargs:
                raise TypeError(f"{func.__name__}() takes the keywords d=, T=, k=")
            warnings.warn(
                f"{func.__name__}(d, k, T) with positional sizes is deprecated; "
                "call it as {0}(d=..., T=..., k=...)".format(func.__name__),
                DeprecationWarning,
                stacklevel=2,
            )
            d, k, T = args
            return func(d=d, T=T, k=k)
        return func(**kwargs)

    return wrapper
