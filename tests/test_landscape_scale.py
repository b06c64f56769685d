"""Audits at scale: the factored evaluation of G (landscape._factored) and the up-front
cost estimate with its refusal."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import landscape as ls
from landscape import _factored
from landscape._factored import ChainedLossGrad, FactoredObjective
from landscape._validation import LandscapeInputError

ROOT = Path(__file__).resolve().parents[1]

#: Agreement of the factored and dense formulas: both are float evaluations of the
#: same polynomial with O(1) entries, so they agree to a few hundred ulps.
RTOL = 1e-11


@st.composite
def problem_and_points(draw):
    T = draw(st.integers(2, 4))
    d = draw(st.integers(2, 7))
    k = draw(st.integers(1, min(3, d)))
    sym = draw(st.booleans())
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    tasks = rng.standard_normal((T, d, d))
    if sym:
        tasks = tasks + np.swapaxes(tasks, 1, 2)
    return ls.LoraMLProblem(tasks, k), rng.standard_normal((T, d, k)), rng.standard_normal((T, d, k))


def _close(a, b, scale):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) <= RTOL * scale


@settings(max_examples=30, deadline=None)
@given(problem_and_points())
def test_factored_formulas_equal_the_dense_ones(case):
    """G, grad G and S v of the factored objective equal LoraMLProblem's dense formulas
    (THEORY.md section 5), for symmetric and non-symmetric tasks."""
    p, U, V = case
    F = FactoredObjective(p)
    scale = 1.0 + np.sum(p.tasks**2) + np.sum(U**2) ** 2
    assert _close(F.loss_exact(U), p.reduced_loss(U), scale)
    assert _close(F.loss_expanded(U), p.reduced_loss(U), scale)
    assert _close(F.grad(U), p.reduced_grad(U), scale)
    assert _close(F.hvp(U, V), p.reduced_hvp(U, V), scale)
    # batches of starts
    UB = np.stack([U, V, U + V])
    assert _close(F.grad(UB)[2], p.reduced_grad(U + V), scale)
    assert _close(F.apply_delta(UB)[1], F.apply_delta(V), scale)


@settings(max_examples=20, deadline=None)
@given(problem_and_points(), st.floats(-2.0, 2.0))
def test_line_polynomial_is_the_exact_quartic(case, alpha):
    """G(U + a V) - G(U) equals the quartic of line_polynomial for every a, and its
    slope with the known gradient is <grad G, V>."""
    p, U, V = case
    F = FactoredObjective(p)
    coef = F.line_polynomial(U, V)
    direct = p.reduced_loss(U + alpha * V) - p.reduced_loss(U)
    scale = 1.0 + np.sum(p.tasks**2) + (np.sum(U**2) + np.sum(V**2)) ** 2 * 16
    assert abs(F.eval_polynomial(coef, alpha) - direct) <= RTOL * scale
    coef_g = F.line_polynomial(U, V, G=p.reduced_grad(U))
    assert np.allclose(coef_g, coef, rtol=1e-9, atol=RTOL * scale)


def test_line_polynomial_resolves_decreases_below_the_loss_precision():
    """Near a zero-loss point the Armijo decrease alpha ||g||^2 is below eps * G-scale:
    differences of computed losses are noise there, the quartic is not (negative
    control: the difference of direct losses has the wrong size)."""
    inst = ls.random_instance(np.random.default_rng(0), 40, 3, 1)
    p = inst.problem
    F = FactoredObjective(p)
    U = inst.U_star + 1e-9 * np.random.default_rng(1).standard_normal(inst.U_star.shape)
    g = F.grad(U)
    alpha = 1e-3
    coef = F.line_polynomial(U, -g, G=g)
    dec = F.eval_polynomial(coef, alpha)
    predicted = -alpha * np.sum(g * g)
    assert dec < 0 and abs(dec - predicted) <= 0.1 * abs(predicted)
    noisy = F.loss_expanded(U - alpha * g) - F.loss_expanded(U)
    assert abs(noisy - predicted) > abs(predicted)  # the expanded loss cannot see it


def test_chained_evaluations_keep_accurate_differences():
    inst = ls.random_instance(np.random.default_rng(2), 30, 3, 2)
    p = inst.problem
    fg = ChainedLossGrad(p)
    rng = np.random.default_rng(3)
    x = ls.vec_factors(inst.U_star + 0.1 * rng.standard_normal(inst.U_star.shape))
    f_prev = None
    for _ in range(60):  # crosses one resync of the products
        step = 1e-2 * rng.standard_normal(x.size)
        f, g = fg(x + step)
        exact = p.reduced_loss(ls.unvec_factors(x + step, p.T, p.d, p.k))
        assert abs(f - exact) <= 1e-10 * (1 + exact)
        np.testing.assert_allclose(g, p.reduced_grad_flat(x + step), atol=1e-10)
        x = x + step
        f_prev = f
    assert f_prev is not None


def _collected_with_its_problem(make_problem, use):
    """Build a problem, ``use`` it, drop every reference: whether the problem and its
    FactoredObjective are freed by the garbage collector, and whether the cache forgot them."""
    import gc
    import weakref

    gc.collect()
    before = len(_factored._CACHE)
    problem = make_problem()
    use(problem)
    F = _factored.factored(problem)
    assert F is _factored.factored(problem)  # one object per live problem
    assert len(_factored._CACHE) == before + 1
    refs = weakref.ref(problem), weakref.ref(F)
    del problem, F
    gc.collect()
    return [r() is None for r in refs], len(_factored._CACHE) - before


def test_factored_object_dies_with_its_problem(monkeypatch):
    """The cache of factored objects keeps nothing alive: a problem, its factored object
    and the cache entry go once the problem is dropped, also after a search (which asks
    for the factored object and the scale many times).  The negative control holds the
    problem strongly from the cached value, as the cache once did, and must leak."""
    monkeypatch.setattr(_factored, "FACTORED_MIN_D", 1)
    rng = np.random.default_rng(7)
    tasks = rng.standard_normal((3, 8, 8))

    def make():
        return ls.LoraMLProblem(tasks.copy(), 1)

    assert _collected_with_its_problem(make, lambda p: None) == ([True, True], 0)
    run = lambda p: ls.search(p, rng=np.random.default_rng(0), n_starts=2, methods="lbfgs")  # noqa: E731
    assert _collected_with_its_problem(make, run) == ([True, True], 0)

    class Leaky(FactoredObjective):
        def __init__(self, problem):
            super().__init__(problem)
            self.strong = problem

    monkeypatch.setattr(_factored, "FactoredObjective", Leaky)
    freed, left = _collected_with_its_problem(make, lambda p: None)
    assert freed == [False, False] and left == 1
    _factored._CACHE.clear()


def test_factored_object_refuses_a_freed_problem():
    import gc

    F = FactoredObjective(ls.LoraMLProblem(np.random.default_rng(1).standard_normal((2, 3, 3)), 1))
    gc.collect()
    with pytest.raises(ReferenceError):
        F.problem


def test_factored_and_dense_audits_find_the_same_points(monkeypatch):
    """The whole audit with the factored path forced at small d classifies every run
    as the dense path does."""
    inst = ls.random_instance(np.random.default_rng(4), 6, 3, 1)
    dense = ls.audit(inst, 1, starts=12, seed=1, plots=False)
    monkeypatch.setattr(_factored, "FACTORED_MIN_D", 1)
    fact = ls.audit(inst, 1, starts=12, seed=1, plots=False)
    assert [r["kind"] for r in dense.data["runs"]] == [r["kind"] for r in fact.data["runs"]]
    assert dense.data["summary"]["counts"] == fact.data["summary"]["counts"]
    for a, b in zip(dense.data["runs"], fact.data["runs"]):
        assert abs(a["loss"] - b["loss"]) <= 1e-9 * (1 + abs(a["loss"]))


def test_cost_estimate_grows_with_the_problem():
    base = ls.estimate_audit_cost(500, 3, 1, 10)
    assert ls.estimate_audit_cost(1000, 3, 1, 10).seconds > base.seconds
    assert ls.estimate_audit_cost(500, 3, 1, 40).seconds > base.seconds
    assert ls.estimate_audit_cost(1000, 3, 1, 10).bytes > base.bytes
    assert "GiB" in base.describe() and "one idle core" in base.describe()


def test_audit_refuses_over_the_time_limit(tmp_path):
    inst = ls.random_instance(np.random.default_rng(0), 8, 3, 1)
    out = tmp_path / "never"
    with pytest.raises(LandscapeInputError, match="refused: estimated"):
        ls.audit(inst, 1, starts=5, out=out, max_seconds=1e-3)
    assert not out.exists()
    with pytest.raises(LandscapeInputError, match="max-seconds"):
        ls.audit(inst, 1, starts=5, max_seconds=-1.0)


def test_audit_refuses_over_the_memory(monkeypatch):
    import landscape._audit.run as audit_mod

    inst = ls.random_instance(np.random.default_rng(0), 8, 3, 1)
    monkeypatch.setattr(audit_mod, "available_memory_bytes", lambda: 1024)
    with pytest.raises(LandscapeInputError, match="memory available"):
        ls.audit(inst, 1, starts=5)


def test_cli_refusal_is_one_line_exit_2(tmp_path):
    inst = ls.random_instance(np.random.default_rng(0), 6, 3, 1)
    f = tmp_path / "tasks.npy"
    np.save(f, inst.problem.tasks)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "landscape", "audit", str(f), "--rank", "1", "--starts", "4",
                           "--out", str(out), "--max-seconds", "0.001", "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                                                                        "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "refused" in proc.stderr
    assert not out.exists()
