"""Rates as slopes and Monte-Carlo power (theory._slopes, theory._checks_rates).

The slope fit must recover exact exponents and widen its interval on curved data; the
power formula must match a simulated test; the rate checks must pass on the model and
fail on a wrong exponent, a wrong degrees-of-freedom formula, a tail that does not
decay with d, a ratio that does not saturate, and a 2% bias of the RRR estimator.

That every check (including these two) passes on the model at quick scale is asserted
by the registry test in test_theory.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import theory._checks_rates as rates
from theory import check_lemma1, check_rate_slopes, detection_power, linear_fit, loglog_slope, reps_for_power
from theory._linalg import rrr_prediction_errors
from theory._slopes import DETECTABLE_BIAS, TARGET_POWER, slope_case

# Small sweeps for the negative controls (each only needs the case it breaks).
SMALL_T = dict(Ts=(3, 4), T_reps=50)
SMALL_TAIL = dict(tail_ds=(4, 8), tail_reps=500)


def _case(result, prefix):
    hits = [c for c in result.cases if c.label.startswith(prefix)]
    assert len(hits) == 1, [c.label for c in result.cases]
    return hits[0]


@settings(max_examples=20, deadline=None)
@given(b=st.floats(-3, 3), a=st.floats(-2, 2), m=st.integers(3, 8), rel=st.floats(1e-3, 1e-1))
def test_loglog_slope_recovers_exponent_and_covers_it(b, a, m, rel):
    x = np.geomspace(1.0, 100.0, m)
    y = np.exp(a) * x**b
    fit = loglog_slope(x, y, rel * y)
    assert fit.slope == pytest.approx(b, abs=1e-9)
    assert fit.contains(b)
    # known-variance SE of a WLS slope with equal weights: rel / sqrt(sum (log x - mean)^2)
    lx = np.log(x)
    assert fit.se == pytest.approx(rel / np.sqrt(np.sum((lx - lx.mean()) ** 2)), rel=1e-9)


def test_slope_interval_widens_on_curved_data_and_fails_a_wrong_exponent():
    x = np.geomspace(1, 100, 6)
    y = x**-1.0 * (1 + 0.3 * np.log(x) ** 2)  # not a power law
    tight = linear_fit(np.log(x), np.log(y), np.full(6, 1e-3))
    assert tight.chi2_red > 1 and tight.se > 1e-3 / np.sqrt(np.sum((np.log(x) - np.log(x).mean()) ** 2))
    # a wide interval does not pass: the half-width bound is part of the verdict
    wide = loglog_slope(x, x**-1.0, 0.5 * x**-1.0)
    assert wide.contains(-1.0) and not slope_case("wide", wide, -1.0, 0.1).passed
    exact = loglog_slope(x, x**-0.5, 1e-3 * x**-0.5)
    assert not slope_case("wrong exponent", exact, -1.0, 0.1).passed


def test_detection_power_matches_a_simulated_z_test():
    rng = np.random.default_rng(0)
    z, trials, m = 4.0, 4000, 50
    for shift in (3.0, 5.0, 6.0):
        # means of m unit normals shifted by shift standard errors of the mean
        means = rng.standard_normal((trials, m)).mean(axis=1) + shift / np.sqrt(m)
        rejected = np.abs(means) * np.sqrt(m) > z
        p = detection_power(shift, z=z)
        # binomial SE of the simulated frequency; 5 SE is a safe band
        assert abs(rejected.mean() - p) <= 5 * np.sqrt(p * (1 - p) / trials) + 1e-3
    assert detection_power(0.0, z=z) == pytest.approx(2 * stats.norm.cdf(-z))


@settings(max_examples=20, deadline=None)
@given(cv=st.floats(0.05, 2.0), bias=st.floats(0.005, 0.2), power=st.floats(0.5, 0.99))
def test_reps_for_power_reaches_the_power(cv, bias, power):
    n = reps_for_power(cv, bias, power=power)
    assert detection_power(bias / (cv / np.sqrt(n))) >= power
    if n > 1:  # minimal: one fewer repetition misses the (one-sided) target
        assert stats.norm.cdf(bias / (cv / np.sqrt(n - 1)) - 4.0) < power


def test_wrong_exponent_in_n_fails():
    def sqrt_n_estimator(rng, B, *, n, **kw):  # error grows like sqrt(n): (1/n)E||E||^2 ~ n^-1/2
        return rrr_prediction_errors(rng, B, n=n, **kw) * np.sqrt(n / 40.0)

    res = check_rate_slopes(np.random.default_rng(0), errors=sqrt_n_estimator, **SMALL_T, **SMALL_TAIL)
    case = _case(res, "(1/n)E||E||^2 vs n")
    assert not case.passed and case.measured == pytest.approx(-0.5, abs=0.1)


def test_dof_formula_linear_in_kprime_d_fails():
    res = check_rate_slopes(np.random.default_rng(0), dof=lambda d, kp: kp * d, **SMALL_T, **SMALL_TAIL)
    assert not _case(res, "E||E||^2/sigma^2 vs").passed


def test_tail_that_does_not_decay_with_d_fails():
    def heavy(rng, B, *, n, sigma, kprime, reps):  # right mean, but P(> C mean) independent of d
        d = B.shape[0]
        return sigma**2 * kprime * (2 * d - kprime) * rng.chisquare(1, size=reps)

    res = check_rate_slopes(np.random.default_rng(0), errors=heavy, n_sweep=(40, 80), dof_kprimes=(1, 2),
                            tail_ds=(4, 8, 12, 16), tail_reps=3000, **SMALL_T)
    assert not _case(res, "log P(||E||^2").passed


def test_ratio_without_saturation_fails():
    # the Lemma 1 upper-bound form (error ~ k'd) with SR's rank (T+1)k not capped at d
    # predicts a ratio growing like T+1 for ever; the measured ratio saturates
    res = check_rate_slopes(np.random.default_rng(0), dof=lambda d, kp: kp * d, sr_rank=lambda d, k, T: (T + 1) * k,
                            Ts=(3, 5, 9, 14, 20), T_reps=100, **SMALL_TAIL)
    assert not _case(res, "SR/ML error ratio").passed


def test_lemma1_is_powered_and_passes():
    res = check_lemma1(np.random.default_rng(1), kprimes=(1, 4))
    assert res.passed
    powers = [c.measured for c in res.cases if "power" in c.label]
    assert len(powers) == 2 and min(powers) >= TARGET_POWER


def test_lemma1_catches_a_two_percent_bias(monkeypatch):
    def biased(*args, **kwargs):
        return (1.0 + DETECTABLE_BIAS) * rrr_prediction_errors(*args, **kwargs)

    monkeypatch.setattr(rates, "rrr_prediction_errors", biased)
    res = check_lemma1(np.random.default_rng(1), kprimes=(1, 4))
    assert not res.passed
    mean_cases = [c for c in res.cases if "E||E||^2 /" in c.label]
    assert any(not c.passed for c in mean_cases)


def test_lemma1_with_too_few_reps_fails_its_power_case():
    res = check_lemma1(np.random.default_rng(1), kprimes=(1,), reps=100)
    assert not res.passed and not _case(res, "k'=1: power").passed


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_default_repetitions_detect_a_2_percent_bias_with_90_percent_power(cv):
    """reps_for_power's defaults: a relative bias of 0.02 rejected at z = 4 with power 0.9,
    n = ceil(((4 + Phi^-1(0.9)) cv / 0.02)^2) -- and the power at that n is at least 0.9."""
    import math

    from scipy import stats

    from theory._slopes import detection_power, reps_for_power

    n = reps_for_power(cv)
    assert n == math.ceil(((4.0 + stats.norm.ppf(0.9)) * cv / 0.02) ** 2)
    assert detection_power(0.02 * math.sqrt(n) / cv) >= 0.9 > detection_power(0.02 * math.sqrt(n - 2) / cv)


@pytest.mark.parametrize("y_se", [1.0, 0.5])
def test_linear_fit_reduced_chi_square_has_m_minus_two_degrees_of_freedom(y_se):
    """y = (0, 2, 1, 3) at x = (0, 1, 2, 3): the least-squares line is 0.3 + 0.8 x with
    residuals (-0.3, 0.9, -0.9, 0.3), chi^2 = 1.8 / se^2 over m - 2 = 2 degrees of freedom; with
    chi2_red > 1 the slope's standard error is inflated by sqrt(chi2_red) (Birge)."""
    x, y = np.arange(4.0), np.array([0.0, 2.0, 1.0, 3.0])
    fit = linear_fit(x, y, np.full(4, y_se))
    assert fit.slope == pytest.approx(0.8, rel=1e-14) and fit.intercept == pytest.approx(0.3, rel=1e-13)
    chi2_red = 1.8 / y_se**2 / 2
    assert fit.chi2_red == pytest.approx(chi2_red, rel=1e-13)
    sxx = 5.0 / y_se**2
    assert fit.se == pytest.approx(np.sqrt(max(chi2_red, 1.0) / sxx), rel=1e-13)


def test_rrr_errors_take_their_sizes_by_keyword_only():
    import inspect

    params = inspect.signature(inspect.unwrap(rrr_prediction_errors)).parameters
    kinds = {name: p.kind for name, p in params.items()}
    assert kinds == {"rng": inspect.Parameter.POSITIONAL_OR_KEYWORD, "B_star": inspect.Parameter.POSITIONAL_OR_KEYWORD,
                     "n": inspect.Parameter.KEYWORD_ONLY, "sigma": inspect.Parameter.KEYWORD_ONLY,
                     "kprime": inspect.Parameter.KEYWORD_ONLY, "reps": inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("bad", [0.0, -0.0, -1e-300, -0.5, np.nan])
def test_loglog_slope_refuses_a_mean_that_is_not_positive(bad):
    """log(mean) needs mean > 0: a zero (log -> -inf), a negative (NaN) or a NaN mean among
    positive ones is refused with ValueError, never fitted; the smallest positive float is
    accepted (the bound is 0 itself)."""
    x, se = [1.0, 2.0, 4.0], [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="positive means"):
        loglog_slope(x, [1.0, bad, 4.0], se)
    fit = loglog_slope(x, [1.0, 5e-324, 4.0], [0.1, 5e-324, 0.1])
    assert np.isfinite(fit.slope)


def test_linear_fit_refuses_standard_errors_of_another_length():
    """One standard error per point: a single se (which numpy would broadcast) is refused."""
    with pytest.raises(ValueError, match="equal length"):
        linear_fit([1.0, 2.0, 3.0], [1.0, 2.0, 3.5], [0.1])
    with pytest.raises(ValueError, match="equal length"):
        linear_fit([1.0, 2.0, 3.0], [1.0, 2.0, 3.5], [0.1, 0.1, 0.1, 0.1])


@pytest.mark.parametrize("power", [0.0, 1.0, 1.5, -0.2])
def test_reps_for_power_refuses_a_power_outside_the_open_unit_interval(power):
    with pytest.raises(ValueError, match="0 < power < 1"):
        reps_for_power(0.2, power=power)


def test_the_reduced_chi_square_divides_by_the_points_less_two():
    """Five points off the line y = x by +-1 standard error: chi^2 = sum of squared standardised
    residuals of the weighted fit, reduced by m - 2 = 3 degrees of freedom (not m / 2)."""
    x = np.arange(5.0)
    y = x + np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    fit = linear_fit(x, y, np.ones(5))
    b, a = np.polyfit(x, y, 1)
    chi2 = float(np.sum((y - a - b * x) ** 2))
    assert fit.chi2_red == pytest.approx(chi2 / 3, rel=1e-12)


def test_sized_rrr_errors_takes_its_options_by_keyword():
    from ._pin_tools import assert_options_by_keyword

    assert_options_by_keyword(rates.sized_rrr_errors, ["rng", "B_star"])


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_linear_fit_refuses_a_standard_error_that_is_not_positive_and_finite(bad):
    """Weights are 1 / se^2: a negative se would be weighted as if positive, a zero one infinitely;
    both, and non-finite ones, are refused."""
    se = np.array([0.1, bad, 0.1])
    with pytest.raises(ValueError, match="positive finite standard errors"):
        linear_fit(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.5]), se)
