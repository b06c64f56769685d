"""The ``arb`` Taylor certificate's reported float spectrum, against its own rigorous bound
(issue 16, item 8: a survivor of the cosmic-ray sample of ``landscape/certificates/taylor_arb.py``).

At a k = 1 point there is no orbit to quotient by, so the raw Schur complement's smallest
eigenvalue (the diagnostic ``lambda_min_raw_float``) and the quotient's are the same number,
and the certified lower bound lies below it by the certificate's small relative slack; the
reported condition number is the ratio of the extreme eigenvalues of that same spectrum.
"""
from __future__ import annotations

import numpy as np
import pytest

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


# ---------------------------------------------------------------------- third sample's survivors
def test_a_weaker_stored_margin_is_still_implied():
    """verify_certificate asks each stored margin to be at most the recomputed one: a claim
    halved is weaker and still verified; one doubled is refused."""
    import dataclasses

    from landscape import verify_certificate

    inst, U0 = f2_spurious_instance()
    cert = taylor_certificate(inst.problem, U0, witness=inst.U_star)
    assert cert.certified and verify_certificate(cert)
    m = dict(cert.margins)
    name = next(k for k, v in m.items() if v > 0)
    weaker = dataclasses.replace(cert, margins={**m, name: m[name] / 2})
    stronger = dataclasses.replace(cert, margins={**m, name: m[name] * 2})
    assert verify_certificate(weaker) and not verify_certificate(stronger)


def test_an_integer_seed_drives_the_witness_search():
    """Without a witness the certificate searches for one from rng; a seed is accepted and
    gives the same certificate as the generator it names."""
    inst, U0 = f2_spurious_instance()
    a = taylor_certificate(inst.problem, U0, rng=3)
    b = taylor_certificate(inst.problem, U0, rng=np.random.default_rng(3))
    assert a.witness is not None and np.array_equal(np.asarray(a.witness), np.asarray(b.witness))
    assert a.certified == b.certified and a.margins == b.margins


def test_no_witness_search_when_the_balls_lower_bound_is_not_positive():
    """At a global minimiser G(U0) ~ 0, so G(U0) - ||grad|| r <= 0: no witness is searched."""
    from landscape import random_instance

    inst = random_instance(np.random.default_rng(0), 3, 3, 1)
    cert = taylor_certificate(inst.problem, inst.U_star, rng=np.random.default_rng(0))
    assert cert.witness is None and not cert.certified


@pytest.mark.parametrize("module_max, fp_max, routed", [(10, 24, True), (10, 23, False), (23, 24, True),
                                                    (24, 24, False)])
def test_auto_routes_to_floats_strictly_above_the_module_budget_and_up_to_the_float_limit(monkeypatch, module_max,
                                                                                          fp_max, routed):
    """method="auto" beyond max_dim = 10, k = 1, n = T d k = 24: the float certificate takes
    the problem when n <= FP_TAYLOR_MAX_DIM and n is strictly above TAYLOR_MAX_DIM; otherwise
    (n == TAYLOR_MAX_DIM, or beyond the float limit) it is refused."""
    import landscape.certificates.taylor_arb as TA
    import landscape.certificates.taylor_fp as TF
    from landscape import random_instance
    from landscape.certificates import CertificateTooLarge

    inst = random_instance(np.random.default_rng(0), 8, 3, 1)
    monkeypatch.setattr(TA, "TAYLOR_MAX_DIM", module_max)
    monkeypatch.setattr(TF, "FP_TAYLOR_MAX_DIM", fp_max)
    monkeypatch.setattr(TF, "fp_taylor_certificate", lambda *a, **k: "float route")
    if routed:
        assert TA.taylor_certificate(inst.problem, inst.U_star, max_dim=10) == "float route"
    else:
        with pytest.raises(CertificateTooLarge, match="exceeds the budget"):
            TA.taylor_certificate(inst.problem, inst.U_star, max_dim=10)


def test_auto_keeps_the_ball_certificate_within_a_larger_budget(monkeypatch):
    """method="auto" with n = 6 <= max_dim = 10 stays in ball arithmetic even where n is
    above the module's default budget (patched to 4): only n > max_dim routes to floats."""
    import landscape.certificates.taylor_arb as TA
    import landscape.certificates.taylor_fp as TF
    from landscape import random_instance

    inst = random_instance(np.random.default_rng(0), 2, 3, 1)
    monkeypatch.setattr(TA, "TAYLOR_MAX_DIM", 4)
    monkeypatch.setattr(TF, "fp_taylor_certificate", lambda *a, **k: "float route")
    cert = TA.taylor_certificate(inst.problem, inst.U_star, max_dim=10, rng=np.random.default_rng(0))
    assert cert != "float route" and cert.kind == "taylor"


@pytest.mark.parametrize("T,d,route", [(3, 100, "ball"), (7, 43, "float")])
def test_the_default_ball_budget_is_n_300(monkeypatch, T, d, route):
    """With the default budget a k = 1 problem of n = T d = 300 is certified in ball
    arithmetic and one of n = 301 goes to the float certificate (THEORY.md section 8: the
    arb Hessian is built entry by entry, measured at n = 300)."""
    import landscape.certificates.taylor_arb as TA
    import landscape.certificates.taylor_fp as TF
    from landscape import random_instance

    class Ball(Exception):
        pass

    def ball(*a, **k):
        raise Ball

    inst = random_instance(np.random.default_rng(0), d, T, 1)
    assert inst.problem.dim_U in (300, 301)
    monkeypatch.setattr(TA, "polish_critical_point", ball)
    monkeypatch.setattr(TF, "fp_taylor_certificate", lambda *a, **k: "float")
    try:
        got = TA.taylor_certificate(inst.problem, inst.U_star)
    except Ball:
        got = "ball"
    assert got == route


def test_the_claimed_curvature_bound_is_the_rigorous_one_less_two_residuals():
    """The stored lower bound is the rigorous ball bound lowered by exactly two Cholesky
    residual bounds (room for re-verification on another BLAS), rounded down: within a few
    ulps of rigorous - 2 res, and res (about 180 ulps here) far above that slack."""
    inst, U0 = f2_spurious_instance()
    cert = taylor_certificate(inst.problem, U0, method="arb")
    rig, res = cert.diagnostics["lambda_min_quotient_rigorous"], cert.diagnostics["cholesky_residual"]
    lower = cert.bounds["lambda_min_quotient_lower"]
    ulp = float(np.spacing(rig))
    assert res > 50 * ulp
    assert abs(lower - (rig - 2 * res)) <= 4 * ulp and lower <= rig - 2 * res + ulp
