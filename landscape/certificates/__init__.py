"""Certificates of spurious local minima of the reduced LoRA-ML loss (THEORY.md section 8).

:mod:`~landscape.certificates.taylor_arb` holds them for now (the ``arb`` Taylor and the
epsilon-net certificate, the data object, verification); the floating-point Taylor
certificate is :mod:`~landscape.certificates.taylor_fp`.
"""
from .taylor_arb import (  # noqa: F401
    ARB_PRECISION,
    NET_MAX_POINTS,
    TAYLOR_MAX_DIM,
    VERDICT_LOCAL_MIN,
    VERDICT_NONE,
    VERDICT_SPURIOUS,
    Certificate,
    CertificateNotApplicable,
    CertificateTooLarge,
    NetSizeEstimate,
    epsilon_net_certificate,
    find_witness,
    net_size_estimate,
    polish_critical_point,
    taylor_certificate,
    verify_certificate,
)
from .taylor_arb import __all__  # noqa: F401
