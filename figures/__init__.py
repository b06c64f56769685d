"""Paper figures and tables as a registry (DESIGN.md, "figures").

Each entry is a :class:`FigureSpec` (compute function, render function, paper config,
smoke config). ``python -m figures list`` shows them; ``python -m figures make NAME
[--smoke] [--out DIR]`` computes, saves (NPZ + JSON with provenance) and renders
(PNG/PDF, Markdown for tables). Importing this package imports neither torch nor the
trainer; compute functions import what they need.

Registering a figure from another module takes one call::

    from figures import FigureSpec, register
    register(FigureSpec("table1", "...", compute, render, paper_config, smoke_config, kind="table"))

The real-data tables register themselves from :mod:`figures._real_tables` when that
module exists.
"""
from __future__ import annotations

import importlib.util

from ._registry import (
    DEFAULT_OUT,
    REGISTRY,
    FigureSpec,
    SavedDataError,
    complete_set,
    get,
    load_data,
    make,
    redraw,
    register,
    save_data,
    set_status,
)
from . import _synthetic  # noqa: F401  (registers Figure 1 and the shallow-network figures/tables)

if importlib.util.find_spec(f"{__name__}._real_tables") is not None:
    from . import _real_tables  # noqa: F401  (registers the real-data tables)

from landscape.runtime.version import __version__

__all__ = ["__version__", "FigureSpec", "REGISTRY", "DEFAULT_OUT", "register", "get", "make", "redraw", "save_data", "load_data",
           "SavedDataError", "complete_set", "set_status",
           "names"]


def names() -> list[str]:
    """Registered figure and table names, sorted."""
    return sorted(REGISTRY)
