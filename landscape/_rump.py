"""Deprecated import path: the floating-point Taylor certificate moved to
:mod:`landscape.certificates.taylor_fp`; importing this module warns, and every name
resolves there.
"""
from .certificates.taylor_fp import __all__  # noqa: F401
from .runtime.moved import forward

__getattr__, __dir__ = forward(__name__, "landscape.certificates.taylor_fp", ["landscape.certificates.taylor_fp"])
