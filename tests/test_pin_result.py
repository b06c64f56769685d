"""Exact truth for the statistics and the verdict objects every theory check shares
(``theory/_result.py``): closed forms and published constants at the boundaries they
govern, independent of the scipy calls the module makes."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from theory import _result as R

# Phi^{-1}(0.975) and Phi^{-1}(0.995), 50-digit references (sqrt(2) erfinv(level), mpmath, dps 50)
Z975 = float("1.9599639845400542355245944305205515279555500778695")
Z995 = float("2.5758293035489007609785767486038141173060176342763")
TAIL = 0.025


def test_normal_interval_uses_the_two_sided_quantile_of_its_level():
    lo, hi = R.normal_ci(0.0, 1.0)
    assert (lo, hi) == pytest.approx((-Z975, Z975), rel=1e-15)
    assert R.normal_ci(0.0, 1.0, 0.99) == pytest.approx((-Z995, Z995), rel=1e-14)
    # linear in (mean, se): mean + z se exactly up to rounding
    lo, hi = R.normal_ci(3.0, 0.5)
    assert lo == pytest.approx(3.0 - 0.5 * Z975, rel=1e-15, abs=0) and hi == pytest.approx(3.0 + 0.5 * Z975, rel=1e-15, abs=0)
    assert R.CI_LEVEL == 0.95 and R.normal_ci(0.0, 1.0) == R.normal_ci(0.0, 1.0, 0.95)


def test_mean_and_standard_error_are_the_ddof_one_closed_form():
    m, se = R.mean_and_se(np.array([1.0, 2.0, 3.0, 4.0]))
    # variance (ddof 1) of 1..4 is 5/3; se = sqrt(5/3) / 2
    assert m == 2.5 and se == pytest.approx(math.sqrt(5.0 / 3.0) / 2.0, rel=1e-15)
    m, se = R.mean_and_se([0.0, 2.0])
    assert (m, se) == (1.0, 1.0)
    with pytest.raises(ValueError, match="two samples"):
        R.mean_and_se([1.0])


def test_ratio_of_means_delta_method_closed_form():
    # a = [1, 3]: mean 2, se 1; b = [2, 6]: mean 4, se 2 -> r = 1/2, se = r sqrt(1/4 + 1/4)
    r, se = R.ratio_of_means(np.array([1.0, 3.0]), np.array([2.0, 6.0]))
    assert r == 0.5 and se == pytest.approx(0.5 * math.sqrt(0.5), rel=1e-15)
    # a negative ratio keeps a positive standard error
    r, se = R.ratio_of_means(np.array([-1.0, -3.0]), np.array([2.0, 6.0]))
    assert r == -0.5 and se == pytest.approx(0.5 * math.sqrt(0.5), rel=1e-15)


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_clopper_pearson_closed_forms_at_zero_and_all_successes(n):
    """At k = 0 and k = n the exact interval has closed forms: the upper end solves
    (1 - p)^n = alpha / 2, the lower end p^n = alpha / 2."""
    edge = TAIL ** (1.0 / n)
    lo, hi = R.clopper_pearson(0, n, 0.95)
    assert lo == 0.0 and hi == pytest.approx(1.0 - edge, rel=1e-12, abs=0)
    lo, hi = R.clopper_pearson(n, n, 0.95)
    assert hi == 1.0 and lo == pytest.approx(edge, rel=1e-12, abs=0)


@pytest.mark.parametrize("k,n", [(1, 2), (3, 10), (17, 250), (249, 250)])
def test_clopper_pearson_ends_solve_the_binomial_tail_equations(k, n):
    """Definition of the exact interval: P(X >= k | p_lo) = alpha/2 = P(X <= k | p_hi)."""
    lo, hi = R.clopper_pearson(k, n, 0.95)
    assert 0.0 < lo < k / n < hi < 1.0
    assert stats.binom.sf(k - 1, n, lo) == pytest.approx(TAIL, rel=1e-9, abs=0)
    assert stats.binom.cdf(k, n, hi) == pytest.approx(TAIL, rel=1e-9, abs=0)


def test_monte_carlo_critical_value_matches_its_stated_error_rates():
    """Z_CRITICAL = 4: one comparison of a correct formula fails with probability
    2 Phi(-4) ~ 6e-5, so a few dozen comparisons (here 100) all pass with probability
    > 0.99; the next integer down (3) would already fail that."""
    p = 2.0 * stats.norm.sf(R.Z_CRITICAL)
    assert 5e-5 < p < 7e-5
    assert (1.0 - p) ** 100 > 0.99
    assert (1.0 - 2.0 * stats.norm.sf(R.Z_CRITICAL - 1.0)) ** 100 < 0.99


def test_float_epsilon_is_two_to_the_minus_52():
    assert Fraction(R.EPS) == Fraction(1, 2**52)


@pytest.mark.parametrize("x,text", [
    (0.001, "0.001"), (0.000999, "9.99e-04"), (99990.0, "9.999e+04"), (1e5, "1.00e+05"), (-1e5, "-1.00e+05"),
    (12.3456, "12.35"), (0.0, "0"), (-0.0, "0"), (3, "3"), (np.int64(7), "7"), (True, "True"), (np.bool_(False), "False"),
    ("text", "text"), (float("nan"), "nan"), (float("inf"), "inf"),
])
def test_fmt_switches_to_exponent_outside_one_thousandth_to_one_hundred_thousand(x, text):
    assert R.fmt(x) == text


def test_fmt_digits_are_significant_digits():
    assert R.fmt(1.23456, digits=2) == "1.2" and R.fmt(1.23456e-7, digits=3) == "1.2e-07"
    assert R.fmt(1.23456e-7, digits=4) == "1.23e-07"  # the exponent form keeps digits - 2 decimals,
    assert R.fmt(1.23456e-7, digits=1) == "1.2e-07"  # and at least one


def _case(passed, **kw):
    return R.Case(label="c", predicted=1.0, measured=1.0, tolerance=0.0, passed=passed, **kw)


def _result(cases):
    return R.make_result("Thm X", reference="r", hypotheses="h", predicted="p", measured="m", tolerance="t",
                         tolerance_why="w", cases=cases, started=0.0)


def test_verdict_is_the_conjunction_of_the_cases():
    assert _result([_case(True), _case(True)]).verdict == "PASS"
    for flags in ([False], [True, False], [False, True, True], [np.bool_(False), True]):
        res = _result([_case(f) for f in flags])
        assert res.passed is False and res.verdict == "FAIL"
    assert _result([_case(np.bool_(True))]).passed is True
    with pytest.raises(ValueError, match="no cases"):
        _result([])


def test_skipped_check_reads_skip_whatever_its_cases_say():
    import dataclasses

    res = dataclasses.replace(_result([_case(False)]), skipped="solver absent")
    assert res.verdict == "SKIP" and res.to_dict()["verdict"] == "SKIP"
    assert dataclasses.replace(res, skipped="").verdict == "FAIL"


def test_records_are_plain_json_with_non_finite_numbers_spelled_out():
    import json

    case = R.Case(label="c", predicted=np.float64(np.nan), measured=np.array([1.5, np.inf]), tolerance=np.int64(3),
                  passed=np.bool_(True), ci=(np.float32(0.25), -np.inf))
    d = case.to_dict()
    assert d == {"label": "c", "predicted": "nan", "measured": [1.5, "inf"], "tolerance": 3, "ci": [0.25, "-inf"],
                 "passed": True}
    assert type(d["tolerance"]) is int and type(d["passed"]) is bool
    json.dumps(d, allow_nan=False)
    res = _result([case])
    out = res.to_dict()
    assert out["cases"] == [d] and out["verdict"] == "PASS" and out["id"] == "Thm X"
    assert R._plain({1: (np.int32(2), [np.float64(0.5)])}) == {"1": [2, [0.5]]}


def test_repr_is_bounded_and_names_the_verdict():
    long = _result([_case(True)])
    import dataclasses

    long = dataclasses.replace(long, predicted="x " * 400)
    text = repr(long)
    assert len(text) == 300 and text.endswith("...)") and "PASS" in text
    short = repr(_result([_case(False)]))
    assert short.startswith("CheckResult('Thm X': FAIL, 1 cases") and len(short) < 300


def test_make_result_takes_the_id_first_and_everything_else_by_name_only():
    import inspect

    kinds = [p.kind for p in inspect.signature(R.make_result).parameters.values()]
    assert kinds[0] == inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(k == inspect.Parameter.KEYWORD_ONLY for k in kinds[1:])
    res = R.make_result(id="Thm Y", reference="r", hypotheses="h", predicted="p", measured="m", tolerance="t",
                        tolerance_why="w", cases=[_case(True)], started=0.0)
    assert res.id == "Thm Y"


def test_result_repr_of_exactly_300_characters_is_kept_and_301_is_cut():
    def text_with(n: int):
        return repr(R.make_result("Thm X", reference="r", hypotheses="h", predicted="p", measured="m" * (n + 1),
                                  tolerance="t", tolerance_why="w", cases=[_case(True)], started=0.0))

    base = len(text_with(0))
    exact = text_with(300 - base)
    assert len(exact) == 300 and not exact.endswith("...)")
    over = text_with(301 - base)
    full = exact.replace("m" * (301 - base), "m" * (302 - base))
    assert len(full) == 301 and over == full[:296] + "...)"
