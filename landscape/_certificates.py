"""Deprecated import path: the certificates moved to the package :mod:`landscape.certificates`.

Kept for one release; importing it warns, and every name resolves to the module of
:mod:`landscape.certificates` that now holds it (one module per kind, the data object in
:mod:`~landscape.certificates.data`, shared pieces in :mod:`~landscape.certificates.common`).
"""
from .certificates import __all__  # noqa: F401
from .runtime.moved import forward

__getattr__, __dir__ = forward(__name__, "landscape.certificates",
                               [f"landscape.certificates.{m}" for m in
                                ("data", "common", "polish", "enclosures", "taylor_arb", "net")])
