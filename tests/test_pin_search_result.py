r"""landscape._search.result pinned: the methods' names and budgets, the relative stopping
tolerance, the natural scale s = sqrt(2 G(0) / T) of a problem (its fallbacks for identical
and for zero tasks, its homogeneity, its cache), and the random starts' law: sigma^2 =
c s / (d sqrt k) with c log-uniform on [1/16, 4], drawn in that order from the stream.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from landscape._objective import LoraMLProblem
from landscape._search import result as R


def test_methods_budgets_and_tolerance():
    assert R.SEARCH_METHODS == ("gd", "pgd", "lbfgs", "trust-region", "root-hybr", "root-lm")
    assert R.DEFAULT_MAX_ITER == {"gd": 5000, "pgd": 5000, "lbfgs": 3000, "trust-region": 200, "root-hybr": 400,
                                  "root-lm": 400}
    assert R.SEARCH_GTOL_REL == 1e-8


def _tasks(seed=0, T=3, d=4):
    t = np.random.default_rng(seed).standard_normal((T, d, d))
    return t + np.swapaxes(t, 1, 2)


def test_problem_scale_is_sqrt_of_twice_G0_over_T():
    tasks = _tasks()
    p = LoraMLProblem(tasks, 1)
    dev = tasks - tasks.mean(0)
    want = math.sqrt(sum(float(np.sum(x * x)) for x in dev) / 3)
    assert R.problem_scale(p) == pytest.approx(want, rel=1e-15, abs=0)
    assert R.problem_scale(p) == pytest.approx(math.sqrt(2 * p.reduced_loss(np.zeros((3, 4, 1))) / 3), rel=1e-14)


def test_problem_scale_is_homogeneous_of_degree_one():
    tasks = _tasks(1)
    assert R.problem_scale(LoraMLProblem(8.0 * tasks, 2)) == 8.0 * R.problem_scale(LoraMLProblem(tasks, 2))


def test_problem_scale_falls_back_to_the_mean_task_then_one():
    one = _tasks(2, T=1)[0]
    same = LoraMLProblem(np.stack([one, one, one]), 1)
    assert R.problem_scale(same) == pytest.approx(float(np.linalg.norm(one)), rel=1e-15)
    assert R.problem_scale(LoraMLProblem(np.zeros((2, 3, 3)), 1)) == 1.0


def test_problem_scale_is_cached_per_problem():
    p = LoraMLProblem(_tasks(3), 1)
    s = R.problem_scale(p)
    R._SCALE_CACHE[p] = 123.0
    assert R.problem_scale(p) == 123.0
    R._SCALE_CACHE[p] = s


@pytest.mark.parametrize("k", [1, 2, 3])
def test_random_starts_follow_their_law_drawn_in_order(k):
    p = LoraMLProblem(_tasks(4, T=3, d=5), k)
    starts = R.random_starts(p, np.random.default_rng(9), 6)
    assert starts.shape == (6, 3, 5, k)
    rng = np.random.default_rng(9)
    c = np.exp(rng.uniform(np.log(1 / 16), np.log(4.0), size=6))
    sigma = np.sqrt(c * R.problem_scale(p) / (5 * np.sqrt(k)))
    want = sigma[:, None, None, None] * rng.standard_normal((6, 3, 5, k))
    np.testing.assert_array_equal(starts, want)
    assert np.all((c >= 1 / 16) & (c <= 4.0))


def test_random_starts_span_the_stated_range_of_c():
    T, d = 4, 25
    p = LoraMLProblem(_tasks(5, T=T, d=d), 1)
    rng = np.random.default_rng(0)
    starts = R.random_starts(p, rng, 2000)
    # per start, ||U||_F^2 / (T d k) estimates sigma^2 = c s / (d sqrt k) (100 entries: within
    # about 15 %): log c is uniform on [log(1/16), log 4]
    c_hat = np.sum(starts ** 2, axis=(1, 2, 3)) / (T * d) / (R.problem_scale(p) / d)
    logc = np.log(c_hat)
    assert np.median(logc) == pytest.approx((np.log(1 / 16) + np.log(4.0)) / 2, abs=0.1)
    assert np.quantile(logc, 0.02) < np.log(1 / 16) + 0.6 and np.quantile(logc, 0.98) > np.log(4.0) - 0.6


def test_random_starts_need_a_generator_or_seed():
    p = LoraMLProblem(_tasks(), 1)
    assert R.random_starts(p, 3, 2).shape == (2, 3, 4, 1)  # a seed is turned into a Generator
    with pytest.raises(TypeError):
        R.random_starts(p, None, 2)


def test_repr_names_method_start_values_and_shape():
    r = R.SearchResult("lbfgs", 2, np.zeros((3, 4, 1)), 0.5, 1e-9, None, 17, "done")
    assert repr(r) == ("SearchResult('lbfgs', start 2: G=5.000e-01, |grad|=1.0e-09, 17 iterations, "
                       "point of shape (3, 4, 1))")
    assert r.polish_steps == 0 and math.isnan(r.loss_before_polish) and math.isnan(r.grad_norm_before_polish)


def test_tasks_that_differ_take_the_formula_even_when_one_lies_below_another_entrywise():
    one = _tasks(6, T=1)[0]
    tasks = np.stack([one, one - 1.0, one - 2.0])  # every task entrywise <= the first, none equal to it
    p = LoraMLProblem(tasks, 1)
    dev = tasks - tasks.mean(0)
    assert R.problem_scale(p) == pytest.approx(math.sqrt(float(np.sum(dev * dev)) / 3), rel=1e-14)
    assert R.problem_scale(p) == pytest.approx(math.sqrt(2 * 16 / 3), rel=1e-14)  # deviations -1, 0, 1 per entry


@pytest.mark.parametrize("size", [0.5, 3.0])
def test_identical_tasks_take_the_size_of_their_mean_task(size):
    """Identical tasks have no spread: the scale falls back to ||mean task||_F, below 1 too."""
    A = np.zeros((3, 3))
    A[0, 0] = size
    assert R.problem_scale(LoraMLProblem(np.stack([A, A, A]), 1)) == size


def test_tasks_whose_spread_underflows_take_the_size_of_their_mean_task():
    """Tasks apart by 1e-170: the squared deviations underflow to 0, so s would be 0 (and
    every tolerance with it); the scale falls back to the mean task's norm, as for identical
    tasks."""
    A, E = np.eye(3), np.zeros((3, 3))
    E[0, 1] = E[1, 0] = 1e-170  # off the diagonal, where A is 0: the tasks really differ
    tasks = np.stack([A, A + E, A - E])
    assert not np.all(tasks == tasks[:1])
    s = R.problem_scale(LoraMLProblem(tasks, 1))
    assert s == pytest.approx(np.sqrt(3.0), rel=1e-15)
