"""The ``arb`` Taylor certificate's reported float spectrum, against its own rigorous bound
(issue 16, item 8: a survivor of the cosmic-ray sample of ``landscape/certificates/taylor_arb.py``).

At a k = 1 point there is no orbit to quotient by, so the raw Schur complement's smallest
eigenvalue (the diagnostic ``lambda_min_raw_float``) and the quotient's are the same number,
and the certified lower bound lies below it by the certificate's small relative slack; the
reported condition number is the ratio of the extreme eigenvalues of that same spectrum.
"""
from __future__ import annotations

import numpy as np

from landscape._instances import f2_spurious_instance
from landscape.certificates import taylor_certificate


def test_reported_raw_lambda_min_is_the_smallest_eigenvalue_at_k1():
    inst, U0 = f2_spurious_instance()
    cert = taylor_certificate(inst.problem, U0)
    lam = np.linalg.eigvalsh(inst.problem.schur_complement(np.asarray(cert.point)))
    raw = cert.diagnostics["lambda_min_raw_float"]
    lower = cert.bounds["lambda_min_quotient_lower"]
    assert raw == lam[0] and lam[-1] > 100 * lam[0] > 0
    assert lower <= raw <= lower * (1 + 1e-5)
    assert abs(raw - cert.diagnostics["lambda_min_quotient_float"]) <= 1e-9 * raw
    # the reported condition number is the quotient's largest over smallest eigenvalue
    assert abs(cert.diagnostics["condition_number_quotient_float"] - lam[-1] / lam[0]) <= 1e-9 * lam[-1] / lam[0]


def test_the_method_requested_is_the_method_used():
    """``method="fp"`` is the float64 certificate (kind ``taylor_fp``) whatever the size;
    ``"arb"`` and, at this small size, ``"auto"`` are the ball-arithmetic one; both certify
    the F.2 point a local minimum; an unknown method is refused before any work."""
    import pytest

    inst, U0 = f2_spurious_instance()
    fp = taylor_certificate(inst.problem, U0, method="fp")
    arb = taylor_certificate(inst.problem, U0, method="arb")
    auto = taylor_certificate(inst.problem, U0)
    assert fp.kind == "taylor_fp" and arb.kind == "taylor" and auto.kind == "taylor"
    assert arb.verdict == auto.verdict == "certified_spurious_local_minimum"
    assert fp.verdict.startswith("certified") and fp.verdict.endswith("local_minimum")
    with pytest.raises(ValueError, match="unknown method 'fast': use auto, arb or fp"):
        taylor_certificate(inst.problem, U0, method="fast")


def test_the_reported_seconds_are_the_call_s_duration():
    import time

    inst, U0 = f2_spurious_instance()
    t0 = time.perf_counter()
    cert = taylor_certificate(inst.problem, U0, method="arb")
    wall = time.perf_counter() - t0
    assert 0.0 < cert.diagnostics["seconds"] <= wall
