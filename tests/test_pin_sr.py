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

import math
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
    # and the largest relative error |measured - predicted| / |predicted| over the cases
    rel = max(abs(c.measured - c.predicted) / abs(c.predicted) for c in res.cases)
    assert f"max relative error {rel:.2%}" in res.tolerance_why


def test_eq7_8_verdict_is_its_stated_tolerance_at_the_boundary():
    """A case passes exactly when |est - pred| <= Z_CRITICAL standard errors, the tolerance
    it reports: shifting the estimate by 1.01 and by 0.99 tolerances (a wrong noise offset,
    the check's negative control) fails and passes it."""
    from theory._checks_sr import check_eq7_8 as check

    kw = dict(N=4000, perturbations=(1.0,))
    base = check(np.random.default_rng(3), **kw).cases[0]
    gap = base.measured - base.predicted
    for factor, passes in ((1.01, False), (0.99, True), (-0.99, True), (-1.01, False)):
        # the estimate is 1/2 (mean - offset): an offset larger by 2 s moves it by -s
        shift = factor * base.tolerance - gap
        case = check(np.random.default_rng(3), noise_offset=lambda d, s, sh=shift: d * s**2 - 2 * sh, **kw).cases[0]
        assert case.tolerance == base.tolerance
        assert case.measured - case.predicted == pytest.approx(factor * base.tolerance, rel=1e-9, abs=0)
        assert case.passed is passes


@pytest.mark.parametrize("T,d", [(3, 10), (5, 4), (2, 7)])
def test_eq11_12_gradient_tolerance_is_4_T_d_eps_max_task_norm(T, d):
    """The rounding allowance of the SR gradient sum_t (A_SR - A*_t): 4 T d eps times the
    largest task norm, no looser."""
    from theory._checks_sr import EPS
    from landscape import random_instance

    res = check_eq11_12(np.random.default_rng(7), d=d, T=T, N=200)
    tasks = random_instance(np.random.default_rng(7), d, T, 1).problem.tasks
    want = 4 * T * d * EPS * float(np.max(np.linalg.norm(tasks, axis=(1, 2))))
    assert res.cases[0].tolerance == pytest.approx(want, rel=1e-15, abs=0)
    assert res.cases[0].passed and res.cases[0].measured <= want


@pytest.mark.parametrize("d,k", [(12, 1), (12, 2), (4, 1)])
def test_appc_rank_cases_predict_min_d_tk(d, k):
    """rank(Zbar) = min(d, T k) and rank(Z_{T+1} - Zbar) = min(d, (T+1) k): the predicted
    value is the formula, and the verdict is measured == predicted."""
    from theory._checks_sr import check_appC

    Ts = (2, 3, 5)
    res = check_appC(np.random.default_rng(1), d=d, k=k, Ts=Ts, reps=50)
    ranks = [c for c in res.cases if "rank(Z" in c.label]
    want = [v for T in Ts for v in (min(d, T * k), min(d, (T + 1) * k))]
    assert [c.predicted for c in ranks] == want
    assert all(c.passed == (c.measured == c.predicted) for c in ranks) and all(c.passed for c in ranks)


def test_r31_default_sizes_cover_both_sides_of_tk_equal_d():
    """Rank inflation rank[U*_1..U*_T] = min(d, T k) is checked by default where T k < d
    (with k = 1 and with k >= 2), at T k = d, and where T k > d."""
    from theory._checks_sr import check_r31

    res = check_r31(np.random.default_rng(0), subsets=5)
    sizes = {tuple(int(v) for v in re.match(r"d=(\d+) k=(\d+) T=(\d+):", c.label).groups())
             for c in res.cases if re.match(r"d=\d+ k=\d+ T=\d+:", c.label)}
    regimes = {(("<" if T * k < d else "=" if T * k == d else ">"), k >= 2) for d, k, T in sizes}
    assert {("<", False), ("<", True), ("=", True), (">", True)} <= regimes


def test_r31_consequence_cases_are_exactly_those_with_t_ge_j_and_d_ge_jk():
    """rank[U*_1..U*_j] = jk is checked for j = 2, 3 exactly when T >= j and d >= jk (at
    d = jk too), states jk as its prediction, and reports the SVD's zero threshold
    s_1 max(d, jk) eps of the columns it ranks (the U* drawn first from the same seed)."""
    import copy

    from theory._checks_sr import check_r31
    from theory._linalg import rank_tolerance
    from theory._result import fmt

    sizes = ((3, 3, 1), (6, 3, 2), (4, 2, 2), (5, 3, 2))
    rng = np.random.default_rng(5)
    twin = copy.deepcopy(rng)
    res = check_r31(rng, sizes=sizes, subsets=4)
    for d, T, k in sizes:
        U = twin.standard_normal((T, d, k))
        cols = np.concatenate(list(U), axis=1)
        twin.random((4, T * k))  # the subsets' draw
        for j in (2, 3):
            label = f"d={d} k={k}: rank[U*_1..U*_{j}]"
            got = [c for c in res.cases if c.label == label]
            if not (T >= j and d >= j * k):
                assert got == [], label
                continue
            (case,) = got
            sv = np.linalg.svd(cols[:, : j * k], compute_uv=False)
            assert (case.predicted, case.measured, case.passed) == (j * k, j * k, True)
            assert case.tolerance == fmt(float(rank_tolerance(sv, (d, j * k))))


@pytest.mark.parametrize("dependent", [False, True])
def test_r31_fails_when_some_column_subset_is_dependent(dependent):
    """R3.1 on planted factors: three columns in R^4 (T = 3, k = 1) independent pass; with
    U_2 = U_1 the one subset of min(d, Tk) = 3 columns has s_min / s_max at round-off, not above
    max(d, m) eps: the case fails (a margin merely different from the tolerance is no proof)."""
    from theory._checks_sr import check_r31

    from ._pin_tools import PlantedRng

    U = np.random.default_rng(5).standard_normal((3, 4, 1))
    if dependent:
        U[1] = U[0]

    res = check_r31(PlantedRng(0, U), sizes=((4, 3, 1),), subsets=4)
    (case,) = [c for c in res.cases if "subsets of 3 columns" in c.label]
    assert bool(case.passed) is not dependent


def test_r31_subsets_hold_min_d_tk_columns_so_a_rank_deficit_of_all_tk_columns_fails():
    """The subsets hold m = min(d, Tk) columns (all Tk of them at d = Tk = 6, T = 3, k = 2):
    six columns in R^6 drawn in a 5-dimensional subspace fail, though any 3 or 5 of them
    (a smaller m) are independent; independent columns pass with the predicted rank 6."""
    from theory._checks_sr import check_r31

    from ._pin_tools import PlantedRng

    for deficient in (False, True):
        g = np.random.default_rng(9)
        basis = g.standard_normal((6, 5 if deficient else 6))
        cols = basis @ g.standard_normal((basis.shape[1], 6))
        U = np.stack([cols[:, 2 * t: 2 * t + 2] for t in range(3)])
        res = check_r31(PlantedRng(0, U), sizes=((6, 3, 2),), subsets=3)
        (case,) = [c for c in res.cases if "subsets of" in c.label]
        assert case.label == "d=6 k=2 T=3: 3 subsets of 6 columns"
        assert case.predicted == "all rank 6"
        assert bool(case.passed) is not deficient


@pytest.mark.parametrize("offset,passed", [(0.99, True), (-0.99, True), (1.01, False), (-1.01, False)])
def test_appc_monte_carlo_cases_pass_within_z_standard_errors_only(monkeypatch, offset, passed):
    """T E||mean UV^T||^2 = k d^2 and T E||mean UU^T - kI||^2 = k d (d + 1): each Monte Carlo
    case passes exactly when its mean is within Z_CRITICAL standard errors of the formula
    (the estimates planted at offset x Z se, on either side)."""
    import itertools

    import theory._checks_sr as SR

    d, k = 5, 2
    targets = itertools.cycle([k * d * d, k * d * (d + 1)])
    monkeypatch.setattr(SR, "mean_and_se", lambda x: (next(targets) + offset * SR.Z_CRITICAL * 0.5, 0.5))
    res = SR.check_appC(np.random.default_rng(1), d=d, k=k, Ts=(2, 3), reps=20)
    mc = [c for c in res.cases if "E||" in c.label]
    assert len(mc) == 4
    assert [c.predicted for c in mc] == [k * d * d, k * d * (d + 1)] * 2
    assert all(c.tolerance == SR.Z_CRITICAL * 0.5 for c in mc)
    assert [bool(c.passed) for c in mc] == [passed] * 4


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("factor,agrees", [(0.9, True), (1.1, False)])
def test_prop1_positive_loss_must_match_eckart_young_within_the_rounding_norm(monkeypatch, seed, factor, agrees):
    """At k' = r - 1 the fine-tuning loss must equal the Eckart-Young tail ey up to
    |loss - ey| <= delta sqrt(2 ey) + delta^2, delta = sqrt(2 zero_tol) = d^2 eps s_1 (two
    evaluations of one Frobenius norm): a tail planted at 0.9 / 1.1 times the largest
    allowed gap x (the root of x = delta sqrt(2 (loss + x)) + delta^2) agrees / does not."""
    import theory._checks_sr as SR

    real = SR.eckart_young_tail

    def planted(sv, kp):
        ey = real(sv, kp)
        d = len(sv)
        delta2 = 2 * 0.5 * d**2 * (d * SR.EPS * sv[0]) ** 2
        x = 2 * delta2 + math.sqrt(3 * delta2**2 + 2 * delta2 * ey)
        return ey + factor * x

    monkeypatch.setattr(SR, "eckart_young_tail", planted)
    res = SR.check_prop1(np.random.default_rng(seed), sizes=((10, 3, 1), (8, 2, 2)))
    below = [c for c in res.cases if "min L*_T+1" in c.label and isinstance(c.predicted, str)]
    assert len(below) == 2 and all(c.measured > c.tolerance for c in below)
    assert [bool(c.passed) for c in below] == [agrees, agrees]


def test_rank_threshold_pins_predict_r_plus_one_above_the_threshold_and_r_below():
    """Each pin predicts rank r + 1 when the extra singular value is 10x the threshold and r
    at 0.1x, and passes exactly when the measured rank is that prediction."""
    from theory._checks_sr import rank_threshold_pins

    cases = rank_threshold_pins(np.random.default_rng(0))
    assert len(cases) >= 4
    for c in cases:
        r = int(c.predicted) - (1 if c.label.endswith(" 10 x threshold") else 0)
        assert r >= 2 and bool(c.passed) is (c.measured == c.predicted)
    ups = [c for c in cases if c.label.endswith(" 10 x threshold")]
    assert ups and all(c.passed for c in cases)


def test_prop2_states_its_largest_relative_gap():
    """The reason quotes max |measured - predicted| / predicted over the limit cases."""
    from theory._checks_sr import check_prop2

    res = check_prop2(np.random.default_rng(1), configs=((6, 1, 1), (6, 1, 3)), T=512, batch=256)
    limits = res.cases[::2]
    rel = max(abs(c.measured - c.predicted) / c.predicted for c in limits)
    assert f"max relative gap {rel:.2%}" in res.tolerance_why
    assert any(abs(c.measured - c.predicted) / c.predicted >= 0.005 for c in limits)  # not 0.00% by accident


def test_thm31_check_runs_the_specified_sizes():
    """THEORY.md (Thm 3.1): Monte Carlo with 2e4 draws for (d, k, T) in {(5, 1, 2), (6, 2, 4), (10, 1, 3)}."""
    from theory._checks_sr import check_thm31

    res = check_thm31(np.random.default_rng(0))
    assert [c.label for c in res.cases] == ["d=5 k=1 T=2", "d=6 k=2 T=4", "d=10 k=1 T=3"]
    assert "20000 draws" in res.hypotheses
