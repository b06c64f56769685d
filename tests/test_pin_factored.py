"""The factored objective's constants, against closed forms (issue 16, item 8: a survivor
of the cosmic-ray sample of ``landscape/_factored.py``).

G(U) = 1/2 sum_t ||R_t||^2 with R_t = -Delta_t - skew_t + P_t - mean(P): the antisymmetric
parts skew_t of the task deviations are orthogonal to every symmetric P_t, so no point
removes them and 1/2 sum_t ||skew_t||^2 (``skew_loss``) is a floor of G; on tasks of model
M1 plus antisymmetric perturbations K_t it is attained at the planted point, where
G(U*) = 1/2 sum_t ||K_t - mean(K)||^2.  ``c0`` is G(0) = 1/2 sum_t ||A*_t - mean(A*)||^2.
"""
from __future__ import annotations

import numpy as np
import pytest

from landscape import LoraMLProblem, random_instance
from landscape._factored import FactoredObjective


@pytest.mark.parametrize("d,T,k,seed", [(4, 3, 1, 0), (6, 2, 2, 1), (5, 4, 2, 2)])
def test_skew_loss_is_the_floor_attained_at_the_planted_point(d, T, k, seed):
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, d, T, k)
    K = rng.standard_normal((T, d, d))
    K = K - np.swapaxes(K, 1, 2)
    problem = LoraMLProblem(inst.problem.tasks + K, k)
    F = FactoredObjective(problem)
    Kc = K - K.mean(axis=0)
    floor = 0.5 * float(np.sum(Kc * Kc))
    assert F.skew_loss == pytest.approx(floor, rel=1e-12, abs=0)
    assert problem.reduced_loss(inst.U_star) == pytest.approx(floor, rel=1e-10, abs=0)
    for _ in range(5):  # a floor: nowhere below it
        assert problem.reduced_loss(rng.standard_normal((T, d, k))) >= F.skew_loss
    dev = problem.tasks - problem.tasks.mean(axis=0)
    assert F.c0 == pytest.approx(0.5 * float(np.sum(dev * dev)), rel=1e-12)
    assert F.c0 == pytest.approx(problem.reduced_loss(np.zeros((T, d, k))), rel=1e-12)


def test_the_chain_resyncs_every_fifty_updates(monkeypatch):
    """ChainedLossGrad carries Delta(U) forward by its increments and recomputes it from U
    every RESYNC_EVERY = 50 updates: over 1 + 2 x 50 calls, 100 increments and 2 + 1 full
    applications."""
    import landscape._factored as FA

    rng = np.random.default_rng(0)
    p = LoraMLProblem(rng.standard_normal((3, 4, 4)), 1)
    chain = FA.ChainedLossGrad(p)
    calls = []
    orig = type(chain.F).apply_delta

    def counting(self, V):
        calls.append(np.array(V))
        return orig(self, V)

    monkeypatch.setattr(type(chain.F), "apply_delta", counting)
    assert FA.RESYNC_EVERY == 50
    x = rng.standard_normal(3 * 4)
    values = []
    for i in range(1 + 2 * FA.RESYNC_EVERY):
        values.append(chain(x + 1e-3 * i)[0])
    assert len(calls) == 1 + 2 * FA.RESYNC_EVERY + 2
    # which calls recomputed from the point itself (not an increment of 1e-3): the first,
    # then exactly the 50th and the 100th update -- not the 1st and the 51st
    full = [i for i, V in enumerate(calls) if np.abs(V).max() > 0.01]
    increments_before = [sum(np.abs(V).max() <= 0.01 for V in calls[:i]) for i in full]
    assert increments_before == [0, FA.RESYNC_EVERY, 2 * FA.RESYNC_EVERY]
    # the chained values stay the loss at each point
    np.testing.assert_allclose(values[-1], p.reduced_loss(np.reshape(x + 0.1, (3, 4, 1))), rtol=1e-10, atol=0)


@pytest.mark.parametrize("d", [3, 20])
def test_below_the_factored_size_the_loss_and_gradient_are_the_dense_ones_bit_for_bit(d):
    """Below FACTORED_MIN_D the module's loss and gradient are those of LoraMLProblem itself,
    bit for bit (the factored products are only for large d)."""
    import landscape._factored as FA

    rng = np.random.default_rng(d)
    p = LoraMLProblem(rng.standard_normal((3, d, d)), 2)
    U = rng.standard_normal((3, d, 2))
    assert d < FA.FACTORED_MIN_D and not FA.uses_factored(p)
    assert FA.reduced_loss(p, U) == p.reduced_loss(U)
    np.testing.assert_array_equal(FA.reduced_grad(p, U), p.reduced_grad(U))
    v = rng.standard_normal(p.dim_U)
    np.testing.assert_array_equal(FA.reduced_hvp_operator(p, U) @ v, p.reduced_hvp_operator(U) @ v)


def test_from_the_factored_size_on_the_hvp_never_builds_the_dense_operator(monkeypatch):
    """At d = FACTORED_MIN_D the Hessian-vector products come from the factored products
    (the dense operator's (T, d, d) temporaries are what the factored path avoids), and
    agree with the dense ones."""
    import landscape._factored as FA

    d = FA.FACTORED_MIN_D
    rng = np.random.default_rng(0)
    p = LoraMLProblem(rng.standard_normal((2, d, d)), 1)
    U = rng.standard_normal((2, d, 1))
    v = rng.standard_normal(p.dim_U)
    dense = p.reduced_hvp_operator(U) @ v
    assert FA.uses_factored(p)

    def refuse(*a, **k):
        raise AssertionError("the dense operator was built at the factored size")

    monkeypatch.setattr(LoraMLProblem, "reduced_hvp_operator", refuse)
    np.testing.assert_allclose(FA.reduced_hvp_operator(p, U) @ v, dense, rtol=1e-10, atol=1e-10 * np.abs(dense).max())


def test_symmetric_tasks_keep_one_copy_of_their_deviations_and_asymmetric_ones_their_symmetric_parts():
    """The factored objective holds the task deviations and their symmetric parts; for
    symmetric tasks these are the same array (no second T d^2 copy: the audit's memory
    budget counts on it), for asymmetric ones a separate array with the symmetric parts and
    the skew parts' loss 1/2 sum_t ||skew(A_t - mean)||_F^2."""
    from landscape._factored import FactoredObjective

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 5, 5))
    sym = LoraMLProblem(X + np.swapaxes(X, 1, 2), 1)
    F = FactoredObjective(sym)
    assert F.delta is F.dev and F.skew_loss == 0.0
    asym = LoraMLProblem(X, 1)
    F = FactoredObjective(asym)
    dev = X - X.mean(axis=0)
    assert F.delta is not F.dev
    np.testing.assert_allclose(F.delta, 0.5 * (dev + np.swapaxes(dev, 1, 2)), rtol=0, atol=1e-15)
    skew = 0.5 * (dev - np.swapaxes(dev, 1, 2))
    assert F.skew_loss == pytest.approx(0.5 * float(np.sum(skew * skew)), rel=1e-12)
