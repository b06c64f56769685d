"""The ``rank`` -> ``k`` rename of the empirics configurations, kept backward compatible.

The toolkit spells the LoRA rank ``k`` everywhere (``landscape.LoraMLProblem.k``,
``LinearConfig.k``, the theory checks). :func:`k_for_rank` lets a frozen dataclass whose
field is ``k`` still take ``rank=`` in its constructor (a ``DeprecationWarning``; both at once
is a ``TypeError``) and still answer ``.rank`` (warning too). Torch-free: the CLI's
configuration module imports it.
"""
from __future__ import annotations

import functools
import warnings

__all__ = ["k_for_rank"]


def k_for_rank(cls):
    """Class decorator for a dataclass with a field ``k``: accept the old keyword ``rank=``."""
    from landscape._random import renamed_keyword

    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, rank=None, **kwargs):
        if rank is not None:
            kwargs["k"] = renamed_keyword(cls.__name__, "rank", "k", rank, kwargs.get("k"))
        init(self, *args, **kwargs)

    def rank(self):
        warnings.warn(f"{cls.__name__}.rank is deprecated, use .k", DeprecationWarning, stacklevel=2)
        return self.k

    cls.__init__ = __init__
    cls.rank = property(rank, doc="Deprecated name of :attr:`k`.")
    return cls
