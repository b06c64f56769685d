"""Complete, certified enumeration of the critical points of the reduced LoRA-ML loss
for small instances (issue 20): msolve (Gröbner bases, optional extra ``algebra``),
PHCpack (homotopy continuation, Debian ``phcpack``) and Krawczyk's test in ``arb``.
"""
from ._backends import BackendError, msolve_path, phc_path
from ._core import (
    CLASSES,
    ROUTES,
    EnumerationResult,
    EnumerationUnavailable,
    algebra_available,
    enumerate_critical_points,
)

__all__ = [
    "BackendError",
    "CLASSES",
    "ROUTES",
    "EnumerationResult",
    "EnumerationUnavailable",
    "algebra_available",
    "enumerate_critical_points",
    "msolve_path",
    "phc_path",
]
