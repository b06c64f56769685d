"""The fits behind the rate checks are what the theorems say (issue 16, item 6).

* The LoRA-ML retraining of :func:`theory._checks_rates.retrained_residuals` is a *global*
  minimiser of the T training tasks: the loss min_U L(A_hat, U) has the closed form of a
  best PSD rank-k approximation per task (Eckart-Young on the eigenvalues of
  A*_t - A_hat), and it must be zero; for T >= 3 A_hat = A* (Thm 3.3).
* The SR residual is A*_{T+1} - mean_t A*_t (eq. (12)).
* Lemma 1's probability bound has the exact form C sigma^2 k' d with C = 4, and its mean
  the dimension k'(2d - k').
"""
from __future__ import annotations

import numpy as np
import pytest

from landscape import random_instance
from theory._checks_rates import check_lemma1, retrained_residuals
from theory._linalg import rank_kprime_dof


def _closed_form_min_loss(M: np.ndarray, k: int) -> float:
    """min over U (d x k) of ||M - U U^T||_F^2 for symmetric M: the negative eigenvalues
    and all but the k largest positive ones remain."""
    lam = np.sort(np.linalg.eigvalsh(0.5 * (M + M.T)))[::-1]
    kept = np.clip(lam[:k], 0.0, None)
    return float(np.sum((lam[:k] - kept) ** 2) + np.sum(lam[k:] ** 2)) + float(np.sum((M - M.T) ** 2)) / 2


@pytest.mark.parametrize("d,k,T,seed", [(6, 1, 2, 0), (6, 2, 2, 1), (7, 2, 2, 2), (6, 1, 3, 3), (9, 2, 4, 4)])
def test_lora_ml_retraining_is_a_global_minimiser(d, k, T, seed):
    inst = random_instance(np.random.default_rng(seed), d, T + 1, k)  # the function's first draw
    B_sr, B_ml = retrained_residuals(np.random.default_rng(seed), d, k, T)
    tasks = inst.A_star[None] + inst.W  # A*_t, t = 0..T (task T is the test task)
    A_hat = tasks[T] - B_ml
    scale = float(np.sum(inst.W[:T] ** 2))
    loss = sum(_closed_form_min_loss(tasks[t] - A_hat, k) for t in range(T))
    assert loss <= 1e-20 * scale
    # a wrong retraining (A* + W_0 for T = 2 without the rank-k boost, or A*+mean W) is not
    if T >= 3:
        np.testing.assert_allclose(A_hat, inst.A_star, atol=1e-12 * np.sqrt(scale))
    wrong = inst.A_star + 0.5 * inst.W[0]
    assert sum(_closed_form_min_loss(tasks[t] - wrong, k) for t in range(T)) > 1e-3 * scale


@pytest.mark.parametrize("d,k,T,seed", [(6, 1, 2, 5), (8, 2, 3, 6)])
def test_sr_residual_is_the_test_task_minus_the_mean_task(d, k, T, seed):
    inst = random_instance(np.random.default_rng(seed), d, T + 1, k)
    B_sr, _ = retrained_residuals(np.random.default_rng(seed), d, k, T)
    tasks = inst.A_star[None] + inst.W
    A_sr = tasks[:T].mean(axis=0)  # argmin_A sum_t ||A*_t - A||^2
    np.testing.assert_allclose(B_sr, tasks[T] - A_sr, atol=1e-12)


def test_lemma1_mean_is_the_manifold_dimension():
    for d in (3, 10):
        for kp in range(1, d + 1):
            assert rank_kprime_dof(d, kp) == kp * (2 * d - kp)
    assert rank_kprime_dof(4, 9) == 16  # k' clipped to d: the whole space


def _constant_errors(factor, C=4.0):
    """A simulator whose draws lie in factor * C sigma^2 k' d * [0.999, 1]."""
    def errors(rng, B_star, *, n, sigma, kprime, reps):
        d = B_star.shape[0]
        jitter = 1.0 - 1e-3 * rng.uniform(size=reps)  # a non-zero spread for the mean's SE
        return factor * C * sigma**2 * kprime * d * jitter
    return errors


@pytest.mark.parametrize("factor,holds", [(0.9, True), (0.99, True), (1.1, False), (10.0, False)])
def test_lemma1_probability_bound_is_c_sigma2_kprime_d(factor, holds):
    """Draws just below C sigma^2 k' d satisfy the bound, just above violate it: the bound
    case passes and fails exactly there (a weakened C or a k'(2d-k') in place of k'd
    would let the 1.1 case pass)."""
    res = check_lemma1(np.random.default_rng(0), d=5, n=50, sigma=0.1, kprimes=(1, 3), reps=50,
                       errors=_constant_errors(factor))
    bound_cases = [c for c in res.cases if "P(||E||^2 <=" in c.label]
    assert len(bound_cases) == 2
    assert all(bool(c.passed) is holds for c in bound_cases)


def test_lemma1_bound_tolerates_at_most_the_stated_failure_probability():
    """3% of draws above the bound: P = 0.97 < 0.99 is rejected; 0.3% is not."""
    def mixed(frac):
        def errors(rng, B_star, *, n, sigma, kprime, reps):
            d = B_star.shape[0]
            out = 0.5 * 4.0 * sigma**2 * kprime * d * (1.0 - 1e-3 * rng.uniform(size=reps))
            out[: int(round(frac * reps))] = 2 * 4.0 * sigma**2 * kprime * d
            return out
        return errors

    for frac, holds in ((0.03, False), (0.003, True)):
        res = check_lemma1(np.random.default_rng(0), d=5, n=50, sigma=0.1, kprimes=(2,), reps=2000,
                           errors=mixed(frac))
        (case,) = [c for c in res.cases if "P(||E||^2 <=" in c.label]
        assert bool(case.passed) is holds
        assert case.measured == 1.0 - round(frac * 2000) / 2000  # the fraction of draws within the bound


@pytest.mark.parametrize("failures", [38, 39])
def test_lemma1_binomial_test_has_level_alpha_at_its_exact_boundary(failures):
    """The bound case is an exact one-sided binomial test of P >= 0.99 at level
    BINOMIAL_ALPHA: with n draws and f of them above the bound it must pass exactly when
    P(X <= n - f | p = 0.99) >= alpha.  The boundary is computed here from the binomial
    distribution itself (not from the Clopper-Pearson beta quantile the check uses): at
    n = 2000, alpha = 1e-4 it is f = 38 (cdf 2.0e-4) against f = 39 (cdf 9.9e-5).  A level of
    2 alpha, or of 1 - alpha, or an upper bound of the observed fraction, moves it."""
    from scipy import stats

    from theory._checks_rates import BINOMIAL_ALPHA

    n, prob = 2000, 0.99
    exact_pass = stats.binom.cdf(n - failures, n, prob) >= BINOMIAL_ALPHA
    assert bool(exact_pass) is (failures == 38)

    def errors(rng, B_star, *, n, sigma, kprime, reps):
        d = B_star.shape[0]
        out = 0.5 * 4.0 * sigma**2 * kprime * d * (1.0 - 1e-3 * rng.uniform(size=reps))
        out[:failures] = 2 * 4.0 * sigma**2 * kprime * d
        return out

    res = check_lemma1(np.random.default_rng(0), d=5, n=50, sigma=0.1, kprimes=(2,), reps=n, prob=prob,
                       errors=errors)
    (case,) = [c for c in res.cases if "P(||E||^2 <=" in c.label]
    assert bool(case.passed) is bool(exact_pass)


def _two_sided(res, marks):
    """The cases of ``res`` whose verdict is |measured - predicted| <= tolerance."""
    return [c for c in res.cases if any(m in c.label for m in marks)]


def _verdict_is_its_stated_tolerance(cases):
    for c in cases:
        assert bool(c.passed) is bool(abs(c.measured - c.predicted) <= c.tolerance), c.label
        assert c.ci[0] < c.measured < c.ci[1]


@pytest.mark.parametrize("dof", [None, lambda d, kp: 2 * d * kp])
def test_lemma1_mean_case_verdict_is_its_stated_tolerance(dof):
    """Right (passes) and wrong (fails) degrees of freedom: the mean case's verdict is its
    own printed tolerance applied to its numbers, never a looser one."""
    from theory._checks_rates import check_lemma1

    kw = {} if dof is None else {"dof": dof}
    res = check_lemma1(np.random.default_rng(0), d=5, n=50, sigma=0.1, kprimes=(1, 3), reps=300, **kw)
    cases = _two_sided(res, ["E||E||^2 / (sigma^2"])
    assert len(cases) == 2 and all(bool(c.passed) is (dof is None) for c in cases)
    _verdict_is_its_stated_tolerance(cases)


@pytest.mark.parametrize("ml_rank, passes", [(None, True), (lambda d, T, k: 2, False)])
def test_rate_ratio_cases_verdicts_are_their_stated_tolerances(ml_rank, passes):
    """Cor 2 at T = 2 with the right LoRA-ML rank 3 (passes) and a rank one short (the
    normalised error is about 170, fails): each two-sided case's verdict is its printed
    tolerance applied to its numbers."""
    from theory._checks_rates import check_rates

    kw = {} if ml_rank is None else {"ml_rank": ml_rank}
    res = check_rates(np.random.default_rng(0), Ts=(2,), reps=100, n=200, **kw)
    cases = _two_sided(res, ["Cor 2 E||E_ML||^2", "E||E_SR||^2 / E||E_ML||^2"])
    assert len(cases) == 2 and all(bool(c.passed) is passes for c in cases)
    _verdict_is_its_stated_tolerance(cases)


def test_cor2_mean_case_fails_on_a_quarter_bias(monkeypatch):
    """A dof formula 20% low makes the normalised LoRA-ML error about 1.25, a few tenths
    from 1 and far outside Z standard errors (about 0.08): the case fails, as its tolerance says."""
    import theory._checks_rates as R

    true_dof = R.rank_kprime_dof
    monkeypatch.setattr(R, "rank_kprime_dof", lambda d, kp: 0.8 * true_dof(d, kp))
    res = R.check_rates(np.random.default_rng(0), Ts=(2,), reps=100, n=200)
    (case,) = _two_sided(res, ["Cor 2 E||E_ML||^2"])
    assert 1.15 < case.measured < 1.35 and case.tolerance < 0.15 and not case.passed
    _verdict_is_its_stated_tolerance([case])


@pytest.mark.parametrize("a", [1e-6, 0.3, 5.0])
def test_repetitions_are_sized_by_a_400_draw_pilot_with_30_percent_safety_within_300_and_20000(a):
    """A pilot of PILOT_REPS = 400 draws (discarded), then ceil(1.3 reps_for_power(cv)) fresh
    draws clipped to [300, 20000]: draws alternating 1 - a, 1 + a have cv = a (ddof 1, nearly),
    so a tiny a asks for the floor, a = 5 for the cap, a = 0.3 for the computed count."""
    import math

    import theory._checks_rates as R
    from theory._slopes import reps_for_power

    asked = []

    def errors(rng, B, *, n, sigma, kprime, reps):
        asked.append(reps)
        return 1.0 + a * (np.arange(reps) % 2 * 2 - 1.0)

    errs, _ = R.sized_rrr_errors(np.random.default_rng(0), np.zeros((2, 2)), n=10, sigma=1.0, kprime=1,
                                 normaliser=1.0, errors=errors)
    assert (R.PILOT_REPS, R.REPS_SAFETY, R.MIN_REPS, R.MAX_REPS) == (400, 1.3, 300, 20_000)
    pilot = sum(asked) - len(errs)
    assert pilot == 400
    x = 1.0 + a * (np.arange(400) % 2 * 2 - 1.0)
    cv = float(np.std(x, ddof=1) / np.mean(x))
    want = min(max(math.ceil(1.3 * reps_for_power(cv)), 300), 20_000)
    assert len(errs) == want
    assert (want == 300) is (a == 1e-6) and (want == 20_000) is (a == 5.0)


def test_lemma1_check_defaults_are_the_specified_protocol():
    """THEORY.md's Lemma 1 check, as specified: d = 10, n = 100, sigma = 0.1, k' in {1, 3, 4, 10},
    at least 300 repetitions, P(||E||^2 <= 4 sigma^2 k' d) >= 0.99. The strong-signal
    approximation it tests holds at this noise level, not at any (at sigma = 1 the check
    fails), so the noise level is part of the protocol, not a free choice."""
    import inspect

    from theory import _checks_rates as R

    p = inspect.signature(R.check_lemma1).parameters
    assert (p["d"].default, p["n"].default, p["sigma"].default) == (10, 100, 0.1)
    assert tuple(p["kprimes"].default) == (1, 3, 4, 10)
    assert (p["C"].default, p["prob"].default, R.MIN_REPS) == (4.0, 0.99, 300)


def test_sized_errors_power_is_that_of_the_normalised_mean():
    """The power returned beside the draws is detection_power(DETECTABLE_BIAS / se) with se the
    standard error of errs / normaliser (the ratio whose mean the Lemma 1 case tests against 1),
    checked with a stand-in error draw."""
    import math as _m

    from theory import _checks_rates as R
    from theory._slopes import DETECTABLE_BIAS, detection_power

    vals = np.array([0.5, 1.5, 2.0, 4.0, 0.25] * 80)

    def errors(rng, B, *, n, sigma, kprime, reps):
        return vals[:reps].copy()

    errs, power = R.sized_rrr_errors(np.random.default_rng(0), np.eye(3), n=10, sigma=0.1, kprime=1,
                                     normaliser=2.0, reps=400, errors=errors)
    x = errs / 2.0
    se = float(np.std(x, ddof=1) / _m.sqrt(len(x)))
    assert power == pytest.approx(detection_power(DETECTABLE_BIAS / se), rel=1e-12, abs=0)
