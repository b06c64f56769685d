"""The SR closed-form check's predicted error, against replications (issue 16, item 8: a
survivor of the cosmic-ray sample of ``theory/_checks_sr.py``).

``check_eq11_12`` accepts the pooled OLS estimate when its distance to A_SR is within 4x
a predicted rms error, (d+1)/(N T^2) sum_t ||A*_t - A_SR||^2 + sigma^2 d^2 / (T N) (its
derivation is in the check's docstring).  A one-sided acceptance cannot see a predicted
rms that is too large; replications can: over independent seeds the mean squared
distance must match the predicted mean square, here within 15% (40 replications of a sum
of d^2 = 100 near-Gaussian squares: the sampling error of the mean is about 2%).  Once
where the task spread dominates (the defaults), once where the noise does.

``check_eq7_8`` labels each case with ||A - A*_t||_F, the distance whose half square is
the case's prediction: the label must agree with the prediction it stands beside.
``check_thm31`` states its tolerance as a share of the formula: the largest ratio of a
case's tolerance to its prediction.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from theory._checks_sr import Z_CRITICAL, check_eq7_8, check_eq11_12, check_thm31


@pytest.mark.parametrize("kw", [{}, {"sigma": 5.0, "N": 2000}], ids=["spread", "noise"])
def test_predicted_rms_is_the_rms_of_replications(kw):
    err_sq, rms_sq = [], []
    for seed in range(40):
        res = check_eq11_12(np.random.default_rng(seed), **kw)
        case = res.cases[1]
        err_sq.append(case.measured ** 2)
        rms_sq.append((case.tolerance / Z_CRITICAL) ** 2)
    ratio = np.mean(err_sq) / np.mean(rms_sq)
    assert 0.85 < ratio < 1.15, ratio


def test_eq7_8_case_labels_name_the_distance_they_predict():
    res = check_eq7_8(np.random.default_rng(0), N=2000, perturbations=(0.3, 1.0, 2.0))
    assert len(res.cases) == 3
    for case in res.cases:
        label = float(case.label.split("=")[1])
        assert label == pytest.approx(np.sqrt(2 * case.predicted), rel=5e-3)  # 3 significant digits


def test_thm31_tolerance_text_is_the_largest_relative_tolerance():
    res = check_thm31(np.random.default_rng(0), sizes=((4, 2, 1), (5, 3, 1)), draws=2000, batch=1000)
    stated = float(re.search(r"<= ([\d.]+)% of the formula", res.tolerance).group(1))
    assert stated == pytest.approx(100 * max(c.tolerance / abs(c.predicted) for c in res.cases), abs=0.05)
