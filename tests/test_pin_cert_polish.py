"""landscape.certificates.polish pinned: the Newton polish takes least-squares steps with the
analytic S, keeps a step only when it lowers ||grad G|| (so it stops at the noise floor), records
its steps, gradient norms and displacement, and removes the O(k) kernel at k = 2; the witness
search is the lowest polished BFGS end over its starts, drawn from the given stream (or a fixed
seed), and its constants are those documented.
"""
from __future__ import annotations

import numpy as np
import pytest

import landscape as ls
from landscape.certificates import polish as P


def test_constants():
    assert (P.POLISH_MAX_STEPS, P.POLISH_RCOND, P.WITNESS_STARTS, P.WITNESS_SEED) == (8, 1e-10, 8, 0)
    assert (P.WITNESS_GTOL, P.WITNESS_MAXITER) == (1e-10, 200)


@pytest.mark.parametrize("k", [1, 2])
def test_polish_converges_quadratically_from_near_a_global_minimum(k):
    inst = ls.random_instance(np.random.default_rng(k), 4, 3, k)
    p = inst.problem
    U0 = inst.U_star + 1e-3 * np.random.default_rng(9).standard_normal(inst.U_star.shape)
    U, rec = P.polish_critical_point(p, U0)
    g = rec["grad_norms"]
    assert rec["steps"] == len(g) - 1 >= 2 and all(b < a for a, b in zip(g, g[1:]))
    assert g[-1] < 1e-12 * g[0] and np.linalg.norm(p.reduced_grad(U)) == pytest.approx(g[-1], rel=1e-12, abs=0)
    assert g[2] < 10 * g[1] ** 2 / g[0]  # quadratic: the second step squares the relative error
    assert rec["displacement"] == pytest.approx(float(np.linalg.norm(U - U0)), rel=1e-15)
    assert np.array_equal(U0, inst.U_star + 1e-3 * np.random.default_rng(9).standard_normal(inst.U_star.shape))


def test_polish_respects_its_step_budget_and_keeps_an_exact_critical_point():
    inst = ls.random_instance(np.random.default_rng(0), 4, 3, 1)
    U0 = inst.U_star + 1e-2
    _, one = P.polish_critical_point(inst.problem, U0, max_steps=1)
    assert one["steps"] == 1 and len(one["grad_norms"]) == 2
    zero = np.zeros((3, 4, 1))  # U = 0 is critical: no step lowers a zero gradient
    U, rec = P.polish_critical_point(inst.problem, zero)
    assert rec == {"steps": 0, "grad_norms": [0.0], "displacement": 0.0} and np.array_equal(U, zero)


def test_the_witness_is_the_lowest_polished_end_from_the_given_stream():
    inst = ls.random_instance(np.random.default_rng(2), 4, 3, 1)
    p = inst.problem
    a = P.find_witness(p, rng=np.random.default_rng(5), starts=3)
    b = P.find_witness(p, rng=np.random.default_rng(5), starts=3)
    assert np.array_equal(a, b) and p.reduced_loss(a) < 1e-20  # a global minimum of model M1
    assert np.array_equal(P.find_witness(p, starts=2), P.find_witness(p, rng=np.random.default_rng(0), starts=2))
    assert np.array_equal(P.find_witness(p, rng=3, starts=2), P.find_witness(p, rng=np.random.default_rng(3), starts=2))
    assert P.find_witness(p, rng=np.random.default_rng(1), starts=0).shape == (3, 4, 1)  # at least one start


def test_witness_starts_are_scaled_to_the_spread_of_the_tasks(monkeypatch):
    """Start entries of size s = sqrt(spread / (d sqrt k)), spread = ||tasks - mean||_F / sqrt T,
    so that ||U_t U_t^T||_F matches the tasks' deviations (the floor 1e-12 for identical tasks)."""
    import math

    import scipy.optimize

    inst = ls.random_instance(np.random.default_rng(4), 5, 3, 2)
    p = inst.problem
    seen = []
    real = scipy.optimize.minimize

    def recording(fun, x0, **kw):
        seen.append(np.array(x0))
        return real(fun, x0, **kw)

    monkeypatch.setattr(scipy.optimize, "minimize", recording)
    P.find_witness(p, rng=np.random.default_rng(6), starts=2)
    centred = p.tasks - p.tasks.mean(axis=0)
    spread = float(np.linalg.norm(centred)) / math.sqrt(3)
    scale = math.sqrt(spread / (5 * math.sqrt(2)))
    rng = np.random.default_rng(6)
    for x0 in seen:
        np.testing.assert_allclose(x0, scale * rng.standard_normal(p.dim_U), rtol=1e-12)
    seen.clear()
    same = ls.LoraMLProblem(np.stack([p.tasks[0]] * 3), 2)  # identical tasks: the floor
    P.find_witness(same, rng=np.random.default_rng(6), starts=1)
    np.testing.assert_allclose(seen[0], math.sqrt(1e-12 / (5 * math.sqrt(2))) * np.random.default_rng(6).standard_normal(same.dim_U), rtol=1e-12)


@pytest.mark.parametrize("starts,runs", [(0, 1), (1, 1), (3, 3)])
def test_the_witness_search_runs_its_starts_and_at_least_one(monkeypatch, starts, runs):
    import scipy.optimize

    inst = ls.random_instance(np.random.default_rng(2), 4, 3, 1)
    real, calls = scipy.optimize.minimize, []

    def counting(*a, **k):
        calls.append(None)
        return real(*a, **k)

    monkeypatch.setattr(scipy.optimize, "minimize", counting)
    P.find_witness(inst.problem, rng=np.random.default_rng(0), starts=starts)
    assert len(calls) == runs
