"""Negative controls: deliberately broken mathematics must make a check or a test FAIL.

Each test breaks one piece of the rigorous core with ``monkeypatch`` (restored after the
test) and asserts that the registry check (``theory.run``) or the soundness helper of
tests/test_certificate_soundness.py that guards it now fails.  Without these, a check
could pass because it cannot fail.

Classes of breakage (issue list): an eps-net Lipschitz bound halved; arb -> float
conversion that does not round outward (and interval endpoints rounded to nearest); a
term dropped from a certificate margin ((C1), (Cq), (C2) term by term); a rank threshold
loosened (or tightened) by orders of magnitude; a uniqueness search with one start; a
root finder whose points are thrown away.
"""
from __future__ import annotations

import numpy as np
import pytest

import landscape._interval as I
import landscape.certificates.common as C
import landscape.certificates.net as NET
import theory._checks_minima as MN
import theory._checks_saddles as SD
import theory._linalg as LA
from landscape import certificates, epsilon_net_certificate, random_instance
from theory import run

from .test_certificate_soundness import (
    check_arb_rounding,
    check_c1_boundary,
    check_c2_boundary,
    check_cq_boundary,
    check_interval_enclosures,
    check_margins_are_tight_lower_bounds,
    check_net_lipschitz,
)


def _patch_certificates(monkeypatch, name, value):
    """Replace ``name`` in every module of :mod:`landscape.certificates` that binds it: the
    kinds import the shared helpers by name, so each holds its own reference."""
    hits = [m for m in vars(certificates).values() if isinstance(m, type(C)) and hasattr(m, name)]
    assert C in hits or NET in hits, name
    for m in hits:
        monkeypatch.setattr(m, name, value)


def _fails(fn, *args) -> bool:
    try:
        fn(*args)
    except AssertionError:
        return True
    return False


def _registry_passes(check_id: str, seed: int = 0) -> bool:
    report = run([check_id], seed=seed, scale="quick")
    return report.passed


# --------------------------------------------------------------------------------------
# eps-net Lipschitz bound halved
# --------------------------------------------------------------------------------------
def test_halved_net_lipschitz_bound_is_caught(monkeypatch):
    orig = NET._net_lipschitz

    def halved(*args, **kwargs):
        bound, details = orig(*args, **kwargs)
        return bound / 2, details

    inst = random_instance(np.random.default_rng(0), 2, 3, 1)
    sound = epsilon_net_certificate(inst.problem, inst.U_star, r=1e-2, eps=5e-3, witness=inst.U_star)
    assert not _fails(check_net_lipschitz, sound, inst.problem, np.random.default_rng(1))
    _patch_certificates(monkeypatch, "_net_lipschitz", halved)
    broken = epsilon_net_certificate(inst.problem, inst.U_star, r=1e-2, eps=5e-3, witness=inst.U_star)
    assert broken.verify()  # re-running the same (broken) code cannot see it ...
    assert _fails(check_net_lipschitz, broken, inst.problem, np.random.default_rng(1))  # ... sampling does


# --------------------------------------------------------------------------------------
# Outward rounding removed
# --------------------------------------------------------------------------------------
def _nearest(x) -> float:
    return float(x)


def test_arb_to_float_rounding_to_nearest_is_caught(monkeypatch):
    assert _registry_passes("App F.2")
    monkeypatch.setattr(I, "_float_down", _nearest)
    monkeypatch.setattr(I, "_float_up", _nearest)
    assert _fails(check_arb_rounding)
    # the independent exact verifier sees enclosures that no longer contain G(U0)
    assert not _registry_passes("App F.2")


def test_interval_endpoints_rounded_to_nearest_are_caught(monkeypatch):
    monkeypatch.setattr(I, "_down", lambda x: x)
    monkeypatch.setattr(I, "_up", lambda x: x)
    assert _fails(check_interval_enclosures, np.random.default_rng(2))


def test_margins_rounded_to_nearest_are_caught(monkeypatch):
    _patch_certificates(monkeypatch, "_float_down", lambda x: float(x.mid()))
    assert _fails(check_margins_are_tight_lower_bounds, np.random.default_rng(3))


# --------------------------------------------------------------------------------------
# A term dropped from a certificate margin
# --------------------------------------------------------------------------------------
def _decide_with(**edit):
    """A _taylor_decide that drops one term by zeroing the input it comes from."""
    orig = C._taylor_decide

    def broken(enclosures, bounds, r, witness_pair, precision):
        enclosures, bounds = dict(enclosures), dict(bounds)
        if "g" in edit:
            bounds["grad_norm_upper"] = 0.0
        if "m" in edit:
            bounds["m_upper"] = 0.0
        if "lam_scale" in edit:
            bounds["lambda_min_quotient_lower"] *= edit["lam_scale"]
        if "G0" in edit:
            enclosures["G(U0)"] = (0.0, enclosures["G(U0)"][1])
        if "witness" in edit and witness_pair is not None:
            witness_pair = (0.0, 0.0)
        return orig(enclosures, bounds, r, witness_pair, precision)

    return broken


@pytest.mark.parametrize(
    "edit, guards",
    [
        ({"g": True}, (check_c1_boundary, check_c2_boundary)),
        ({"m": True}, (check_c1_boundary, check_cq_boundary)),
        ({"lam_scale": 0.5}, (check_c1_boundary, check_cq_boundary)),
        ({"G0": True}, (check_c2_boundary,)),
        ({"witness": True}, (check_c2_boundary,)),
    ],
    ids=["gradient term", "cubic term", "curvature term", "G(U0) term", "witness term"],
)
def test_dropped_margin_term_is_caught(monkeypatch, edit, guards):
    for guard in guards:
        assert not _fails(guard, np.random.default_rng(4))
    _patch_certificates(monkeypatch, "_taylor_decide", _decide_with(**edit))
    for guard in guards:
        assert _fails(guard, np.random.default_rng(4)), guard.__name__


@pytest.mark.parametrize("edit", [{"g": True}, {"m": True}], ids=["gradient term", "cubic term"])
def test_dropped_margin_term_fails_the_f2_check(monkeypatch, edit):
    _patch_certificates(monkeypatch, "_taylor_decide", _decide_with(**edit))
    # landscape.verify_certificate reruns the same broken decision and agrees; the
    # independent exact verifier recomputes the margins and refuses
    assert not _registry_passes("App F.2")


# --------------------------------------------------------------------------------------
# Rank threshold loosened / tightened
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [1e7, 100.0, 0.01])
def test_rank_threshold_off_by_orders_of_magnitude_is_caught(monkeypatch, factor):
    assert _registry_passes("Prop 1")
    orig = LA.rank_tolerance
    monkeypatch.setattr(LA, "rank_tolerance", lambda s, shape: orig(s, shape) * factor)
    assert not _registry_passes("Prop 1")


# --------------------------------------------------------------------------------------
# Searches that find nothing
# --------------------------------------------------------------------------------------
def test_uniqueness_search_with_one_start_is_caught(monkeypatch):
    orig = MN.zero_loss_search
    monkeypatch.setattr(MN, "zero_loss_search", lambda problem, rng, starts, **kw: orig(problem, rng, 1, **kw))
    for check_id in ("Thm 3.3 + Cor 3", "App F.1", "Thm 3.3 control: T=2"):
        assert not _registry_passes(check_id), check_id


def test_root_finder_whose_points_are_thrown_away_is_caught(monkeypatch):
    monkeypatch.setattr(SD, "_root_run", lambda *args, **kwargs: None)
    assert not _registry_passes("Thm 3.4")


@pytest.mark.parametrize("factor", [1e7, 0.01])
def test_strict_saddle_threshold_off_by_orders_of_magnitude_is_caught(monkeypatch, factor):
    orig = SD.strict_saddle_threshold
    monkeypatch.setattr(SD, "strict_saddle_threshold", lambda U, g, Dn: orig(U, g, Dn) * factor)
    assert not all(c.passed for c in SD.saddle_threshold_pins())
    assert not _registry_passes("Thm 3.4")
