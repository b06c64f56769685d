"""Every verdict path, table-driven (issue 16, item 4).

* (certificate kind x which of Cq / C1 / C2, N1 / N2 hold) -> verdict, for the Taylor
  decision (arb and float certificates share it) and the epsilon-net decision, with each
  inequality moved one decade inside and outside its threshold;
* the audit's certificate status: only a re-verified *spurious* verdict counts as
  certified (a certificate that proves a local minimum but not C2 does not);
* (T, d, k) -> which theorem applies, including d = 2k and d = 3k, and a planted second
  global minimiser -> "disagrees";
* the independent exact verifier requires (Cq) for a spurious verdict.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import landscape as ls
from landscape._audit import _certify, theory_assessment
from landscape.certificates import (
    VERDICT_LOCAL_MIN,
    VERDICT_NONE,
    VERDICT_SPURIOUS,
    Certificate,
    polish_critical_point,
    taylor_certificate,
)
from landscape._instances import f2_spurious_instance
from theory._independent import verify_taylor_exact

PREC = 256


def _private(name):
    """A private decision function of the certificates package, wherever it lives."""
    import importlib
    import pkgutil

    import landscape.certificates as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if hasattr(mod, name):
            return getattr(mod, name)
    raise LookupError(name)


_taylor_decide = _private("_taylor_decide")
_net_decide = _private("_net_decide")


# --------------------------------------------------------------------------------------
# Taylor decision table
# --------------------------------------------------------------------------------------
def _taylor_case(lam, m, r, g, G0_lo, W_hi):
    enc = {"G(U0)": (G0_lo, G0_lo * 1.0 + 1e-3)}
    bounds = {"lambda_min_quotient_lower": lam, "m_upper": m, "grad_norm_upper": g}
    pair = None if W_hi is None else (0.0, W_hi)
    return _taylor_decide(enc, bounds, r, pair, PREC)


def _expected_taylor(lam, m, r, g, G0_lo, W_hi):
    """THEORY.md section 8 rules, written out independently of the code."""
    if not (lam > 0 and r > 0):
        return VERDICT_NONE
    cq = lam / 2 - 2 * m * r
    c1 = -g + lam * r / 2 - 2 * m * r * r
    if not (cq >= 0 and c1 > 0):
        return VERDICT_NONE
    if W_hi is not None and G0_lo - g * r - W_hi > 0:
        return VERDICT_SPURIOUS
    return VERDICT_LOCAL_MIN


LAM, M = 0.5, 2.0
R_STAR = LAM / (8 * M)  # THEORY's radius lambda / (8 m): C1 becomes ||g|| < lambda^2 / (32 m)
G_STAR = LAM**2 / (32 * M)
R_CQ = LAM / (4 * M)  # Cq holds iff r <= lambda / (4 m)

TAYLOR_TABLE = [
    # (lam, m, r, g, G0_lo, W_hi) -> expected, with a name saying which conditions hold
    ("all hold", (LAM, M, R_STAR, G_STAR / 10, 1.0, 0.0), VERDICT_SPURIOUS),
    ("C1 fails one decade out", (LAM, M, R_STAR, G_STAR * 10, 1.0, 0.0), VERDICT_NONE),
    ("C1 at 0.9x threshold", (LAM, M, R_STAR, G_STAR * 0.9, 1.0, 0.0), VERDICT_SPURIOUS),
    ("C1 at 1.1x threshold", (LAM, M, R_STAR, G_STAR * 1.1, 1.0, 0.0), VERDICT_NONE),
    ("Cq fails: r one decade above lambda/(4m)", (LAM, M, R_CQ * 10, 0.0, 1.0, 0.0), VERDICT_NONE),
    ("Cq holds: r one decade inside", (LAM, M, R_CQ / 10, 0.0, 1.0, 0.0), VERDICT_SPURIOUS),
    ("Cq at 1.01x lambda/(4m), g = 0", (LAM, M, R_CQ * 1.01, 0.0, 1.0, 0.0), VERDICT_NONE),
    ("C2 fails: witness above", (LAM, M, R_STAR, G_STAR / 10, 1.0, 1.0), VERDICT_LOCAL_MIN),
    ("C2 one decade inside", (LAM, M, R_STAR, G_STAR / 10, 1.0, 0.9), VERDICT_SPURIOUS),
    # the gradient term g r of (C2) decides: witness between G0 - g r and G0, or below
    ("C2: witness within g r of G0", (LAM, M, R_STAR, G_STAR / 10, 1.0, 1.0 - G_STAR / 10 * R_STAR * 0.5),
     VERDICT_LOCAL_MIN),
    ("C2: witness 1.5 g r below G0", (LAM, M, R_STAR, G_STAR / 10, 1.0, 1.0 - G_STAR / 10 * R_STAR * 1.5),
     VERDICT_SPURIOUS),
    ("no witness", (LAM, M, R_STAR, G_STAR / 10, 1.0, None), VERDICT_LOCAL_MIN),
    ("lambda not positive", (-1e-3, M, R_STAR, 0.0, 1.0, 0.0), VERDICT_NONE),
    ("lambda zero", (0.0, M, R_STAR, 0.0, 1.0, 0.0), VERDICT_NONE),
    ("radius zero", (LAM, M, 0.0, 0.0, 1.0, 0.0), VERDICT_NONE),
    ("m doubled: cubic term 2m r^3 decides C1", (LAM, 2 * M, R_STAR, G_STAR * 0.9, 1.0, 0.0), VERDICT_NONE),
]


@pytest.mark.parametrize("name,args,expected", TAYLOR_TABLE, ids=[t[0] for t in TAYLOR_TABLE])
def test_taylor_decision_table(name, args, expected):
    assert _expected_taylor(*args) == expected  # the table itself follows THEORY's rules
    margins, verdict, _ = _taylor_case(*args)
    assert verdict == expected
    lam, m, r, g, G0, W = args
    if lam > 0 and r > 0:
        # margins are lower bounds of the exact ones, and tight
        for key, exact in (("Cq", lam / 2 - 2 * m * r), ("C1", -g + lam * r / 2 - 2 * m * r * r)):
            assert margins[key] <= exact and abs(margins[key] - exact) <= 1e-12 * max(1.0, abs(exact))


# --------------------------------------------------------------------------------------
# epsilon-net decision table
# --------------------------------------------------------------------------------------
NET_TABLE = [
    # (min_net_G_lower, G0, lip, eps, r, W_hi) -> expected
    ("N1 and N2 hold", (1.2, 1.0, 1.0, 0.01, 0.05, 0.5), VERDICT_SPURIOUS),
    ("N1: Lip*eps one decade under the gap", (1.0 + 0.1, 1.0, 1.0, 0.01, 0.05, 0.5), VERDICT_SPURIOUS),
    ("N1: Lip*eps one decade over the gap", (1.0 + 0.001, 1.0, 1.0, 0.01, 0.05, 0.5), VERDICT_NONE),
    ("N2 fails: witness above G0 - Lip r", (1.2, 1.0, 1.0, 0.01, 0.05, 0.96), VERDICT_LOCAL_MIN),
    ("N2 one decade inside", (1.2, 1.0, 1.0, 0.01, 0.05, 0.995 - 0.05), VERDICT_SPURIOUS),
    ("no witness", (1.2, 1.0, 1.0, 0.01, 0.05, None), VERDICT_LOCAL_MIN),
]


@pytest.mark.parametrize("name,args,expected", NET_TABLE, ids=[t[0] for t in NET_TABLE])
def test_net_decision_table(name, args, expected):
    net_min, G0, lip, eps, r, W = args
    enc = {"G(U0)": (G0, G0)}
    if W is not None:
        enc["G(witness)"] = (0.0, W)
    bounds = {"lipschitz_upper": lip, "eps_effective_upper": eps, "min_net_G_lower": net_min}
    margins, verdict, _ = _net_decide(enc, bounds, r, W is not None, 100, "sphere", PREC)
    n1 = net_min - G0 - lip * eps
    n2 = G0 - lip * r - W if W is not None else -math.inf
    assert verdict == (VERDICT_SPURIOUS if n1 > 0 and n2 > 0 else VERDICT_LOCAL_MIN if n1 > 0 else VERDICT_NONE)
    assert verdict == expected
    assert margins["N1"] <= n1 and abs(margins["N1"] - n1) < 1e-12


# --------------------------------------------------------------------------------------
# the audit's certificate status, from real certificates of each verdict
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def f2_problem_and_point():
    inst, U0 = f2_spurious_instance()
    U, _ = polish_critical_point(inst.problem, U0)
    return inst, U


def test_audit_counts_only_reverified_spurious_verdicts(f2_problem_and_point):
    inst, U = f2_problem_and_point
    p = inst.problem
    rng = np.random.default_rng(0)
    # spurious: witness at the global minimum
    cert, info = _certify(p, U, inst.U_star, rng)
    assert cert.verdict == VERDICT_SPURIOUS and info["status"] == "certified" and info["reverified"]
    # local minimum only: the witness is the point itself, so (C2) cannot hold
    cert, info = _certify(p, U, U, rng)
    assert cert.verdict == VERDICT_LOCAL_MIN and cert.margins["C1"] > 0
    assert info["status"] == "uncertified"
    # a strict saddle of the same problem: nothing certified
    saddle = ls.search(p, rng=np.random.default_rng(2), n_starts=24, methods=["root-hybr"], spectrum=True)
    saddle = [r for r in saddle if r.spectrum.lambda_min_quotient < -1e-3 and r.grad_norm < 1e-9]
    assert saddle
    cert, info = _certify(p, saddle[0].point, inst.U_star, rng)
    assert cert.verdict == VERDICT_NONE and info["status"] == "uncertified"


def test_audit_does_not_count_a_spurious_verdict_that_fails_reverification(f2_problem_and_point, monkeypatch):
    inst, U = f2_problem_and_point
    monkeypatch.setattr(Certificate, "verify", lambda self: False)
    cert, info = _certify(inst.problem, U, inst.U_star, np.random.default_rng(0))
    assert cert.verdict == VERDICT_SPURIOUS and info["status"] == "uncertified"


# --------------------------------------------------------------------------------------
# theory_assessment: (T, d, k) -> theorem, and agreement
# --------------------------------------------------------------------------------------
def _summary(*, spurious=0, distinct_A=1, recovered=True, found=True, degenerate=0):
    return {"spurious_candidates": spurious, "distinct_global_A": distinct_A, "A_star_recovered": recovered,
            "global_minimum_found": found, "global_minimum_with_A_ne_A_star": recovered is False,
            "continuum_of_global_minima": False, "counts": {ls.DEGENERATE: degenerate} if degenerate else {}}


REGIME_TABLE = [
    # (T, d, k) -> (regime, theorem prefix or None, applicable)
    ((3, 3, 1), "T>=3, d>=3k", "Thm 3.3"),      # d = 3k
    ((3, 6, 2), "T>=3, d>=3k", "Thm 3.3"),      # d = 3k, k = 2
    ((4, 7, 2), "T>=3, d>=3k", "Thm 3.3"),
    ((3, 5, 2), "T>=3, d<3k", None),            # d = 3k - 1
    ((3, 4, 2), "T>=3, d<3k", None),            # d = 2k, T >= 3: no theorem
    ((2, 2, 1), "T=2, d>=2k", "Thm 3.4"),       # d = 2k
    ((2, 4, 2), "T=2, d>=2k", "Thm 3.4"),       # d = 2k, k = 2
    ((2, 6, 2), "T=2, d>=2k", "Thm 3.4"),       # d = 3k, T = 2
    ((2, 3, 2), "T=2, d<2k", None),             # d = 2k - 1
]


@pytest.mark.parametrize("Tdk,regime,theorem", REGIME_TABLE, ids=[str(t[0]) for t in REGIME_TABLE])
def test_which_theorem_applies(Tdk, regime, theorem):
    T, d, k = Tdk
    out = theory_assessment(T, d, k, _summary())
    assert out["regime"] == regime
    if theorem is None:
        assert out["applicable"] is False and out["agrees"] is None and out["not_applicable_reason"]
    else:
        assert out["theorem"].startswith(theorem) and out["applicable"] is True
        assert out["agrees"] is True  # one global A recovered, no spurious class


@pytest.mark.parametrize("Tdk", [(3, 3, 1), (3, 6, 2), (4, 9, 3)])
def test_a_second_global_minimiser_disagrees_with_thm_3_3(Tdk):
    assert theory_assessment(*Tdk, _summary(distinct_A=2))["agrees"] is False
    assert theory_assessment(*Tdk, _summary(recovered=False))["agrees"] is False
    assert theory_assessment(*Tdk, _summary(distinct_A=1, spurious=3))["agrees"] is True  # App. F.2 allows it
    assert theory_assessment(*Tdk, _summary(found=False))["agrees"] is None


@pytest.mark.parametrize("Tdk", [(2, 2, 1), (2, 4, 2), (2, 6, 2)])
def test_a_spurious_candidate_disagrees_with_thm_3_4(Tdk):
    assert theory_assessment(*Tdk, _summary(spurious=1))["agrees"] is False
    assert theory_assessment(*Tdk, _summary(spurious=0, distinct_A=5, recovered=False))["agrees"] is True


def test_hypotheses_failing_make_the_theorem_not_applicable():
    s = _summary(distinct_A=2)
    out = theory_assessment(3, 3, 1, s, r31={"holds": False, "checked": "x"})
    assert out["applicable"] is False and out["agrees"] is None
    out = theory_assessment(3, 3, 1, s, m1={"compatible": False})
    assert out["applicable"] is False and out["agrees"] is None
    out = theory_assessment(3, 3, 1, s, r31={"holds": True, "checked": "x"}, m1={"compatible": True})
    assert out["applicable"] is True and out["agrees"] is False


# --------------------------------------------------------------------------------------
# the independent exact verifier requires (Cq)
# --------------------------------------------------------------------------------------
def test_independent_verifier_requires_cq_for_a_spurious_verdict(f2_problem_and_point):
    """With a negative gradient bound, C1 = r*Cq - g can be positive while Cq < 0: the
    exact verifier must then not derive "spurious" (and must flag the bound)."""
    inst, U = f2_problem_and_point
    cert = taylor_certificate(inst.problem, U, polish=False, witness=inst.U_star)
    assert cert.verdict == VERDICT_SPURIOUS
    base = json.loads(cert.to_json())
    assert verify_taylor_exact(base).ok
    lam, m = base["bounds"]["lambda_min_quotient_lower"], base["bounds"]["m_upper"]
    r = lam / (4 * m) * 1.5  # Cq = lam/2 - 2 m r = -lam/4 < 0
    g = -lam * r  # C1 = r Cq - g = 3/4 lam r > 0 ; C2 = G0 + lam r^2 - W > 0
    d = json.loads(json.dumps(base))
    d["radius"] = r
    d["bounds"]["grad_norm_upper"] = g
    d["margins"] = {"Cq": -1.0, "C1": 0.0, "C2": 0.0}
    rep = verify_taylor_exact(d)
    assert rep.values["margin Cq"] < 0 and rep.values["margin C1"] > 0 and rep.values["margin C2"] > 0
    assert "stored verdict follows from the exact margins" in rep.failed
    d["verdict"] = VERDICT_NONE
    assert "stored verdict follows from the exact margins" not in verify_taylor_exact(d).failed


def test_a_planted_second_global_minimiser_reaches_the_verdict_end_to_end():
    """THEORY.md section 4's d = 2k instance with its exact second global minimiser as an
    extra start: the audit finds two distinct global A, says no theorem applies at
    d = 2k < 3k, and the same findings inside Thm 3.3's region would disagree."""
    from landscape._instances import thm33_counterexample_instance, thm33_counterexample_minimiser

    inst = thm33_counterexample_instance()
    _, U_hat = thm33_counterexample_minimiser()
    rep = ls.audit(inst, 1, starts=2, seed=0, methods=("lbfgs",), extra_starts=np.stack([inst.U_star, U_hat]),
                   certify=False, plots=False)
    summary, theory = rep.data["summary"], rep.data["theory"]
    assert summary["distinct_global_A"] == 2 and summary["global_minimum_with_A_ne_A_star"] is True
    assert theory["applicable"] is False and theory["agrees"] is None and "3k" in theory["not_applicable_reason"]
    assert theory_assessment(3, 3, 1, summary)["agrees"] is False
