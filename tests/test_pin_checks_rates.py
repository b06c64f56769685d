"""Labels of the SR-vs-LoRA-ML rate check (issue 16, item 8: a survivor of the cosmic-ray
sample of ``theory/_checks_rates.py``).

``check_rates`` compares the LoRA-ML fine-tuning error with Lemma 1 at the rank the theory
needs: Cor 2 at T = 2 (rank 3k, the O(k,k) family), Cor 4 at T >= 3 (rank k, Thm 3.3).
Each case must name the corollary and rank that apply to its T.
"""
from __future__ import annotations

import numpy as np

from theory._checks_rates import check_rates, lora_ml_needed_rank


def test_rate_cases_name_the_corollary_of_their_T():
    d, k = 10, 1
    res = check_rates(np.random.default_rng(0), d=d, k=k, Ts=(2, 3), reps=20)
    named = [c.label for c in res.cases if "E||E_ML||^2 / (sigma^2" in c.label]
    assert len(named) == 2
    for T, label in zip((2, 3), named):
        assert label.startswith(f"T={T}: {'Cor 2' if T == 2 else 'Cor 4'} ")
        assert f"k'={int(lora_ml_needed_rank(d=d, T=T, k=k))})" in label
    assert int(lora_ml_needed_rank(d=d, T=2, k=k)) == 3 * k and int(lora_ml_needed_rank(d=d, T=3, k=k)) == k


# ---------------------------------------------------------------- survivors of a larger sample
import pytest  # noqa: E402

import theory._checks_rates as _rates  # noqa: E402
from theory._linalg import rank_kprime_dof  # noqa: E402
from theory._result import fmt  # noqa: E402


def _fake_errors(sr_factor: float, d: int, sr_ranks: set):
    """Deterministic RRR errors: sigma^2 dof(d, k') times a fixed pattern around 1 (another
    pattern for the SR ranks), SR's scaled by ``sr_factor``."""
    def errors(rng, B, *, n, sigma, kprime, reps):
        i = np.arange(reps, dtype=float)
        if kprime in sr_ranks:
            return sr_factor * sigma ** 2 * rank_kprime_dof(d, kprime) * (1 + 0.2 * np.sin(1.3 * i))
        return sigma ** 2 * rank_kprime_dof(d, kprime) * (1 + 0.2 * np.cos(0.7 * i))
    return errors


@pytest.mark.parametrize("sr_factor, holds", [(1.0, True), (3.0, False)])
def test_the_sr_over_ml_ratio_case_passes_within_its_band_only(monkeypatch, sr_factor, holds):
    """Errors with exactly the predicted means give a ratio within Z SE of the dof ratio; SR
    errors three times too large must fail (T = 3, d = 10, k = 1: SR rank 4, ML rank 1)."""
    d, k = 10, 1
    monkeypatch.setattr(_rates, "rrr_prediction_errors", _fake_errors(sr_factor, d, {4}))
    res = check_rates(np.random.default_rng(0), d=d, k=k, Ts=(3,), reps=50)
    case = next(c for c in res.cases if "E||E_SR||^2 / E||E_ML||^2" in c.label)
    assert case.predicted == pytest.approx(rank_kprime_dof(d, 4) / rank_kprime_dof(d, 1))
    assert bool(case.passed) is holds


def test_rate_slopes_fit_the_means_of_the_errors_over_sigma_squared_and_report_them(monkeypatch):
    """The T sweep's Cor 4 and saturation fits take E||E||^2 / sigma^2 per T (recorded at the
    fit), and the summary prints each slope with its stated digits."""
    d, k, sigma = 6, 1, 0.3
    fits, ys = [], []
    real = _rates.loglog_slope

    def recording(x, y, se):
        ys.append(list(y))
        fits.append(real(x, y, se))
        return fits[-1]

    monkeypatch.setattr(_rates, "loglog_slope", recording)
    seen = {}

    calls = []

    def errors(rng, B, *, n, sigma, kprime, reps):
        calls.append(None)  # every call its own pattern: no slope comes out exactly 0
        e = sigma ** 2 * rank_kprime_dof(B.shape[0], kprime) * (1 + 0.1 * np.sin(np.arange(reps) + 0.37 * len(calls)))
        seen.setdefault((n, kprime, B.shape[0]), []).append(e)
        return e

    Ts = (3, 4, 5, 6)  # (T + 1) k >= d from T = 5: saturated at 5 and 6
    res = _rates.check_rate_slopes(np.random.default_rng(0), d=d, sigma=sigma, n_sweep=(40, 80, 160), n_kprime=1,
                                   dof_n=50, dof_kprimes=(1, 2, 3), dof_reps=20, tail_ds=(4, 6), tail_reps=50,
                                   k=k, Ts=Ts, T_n=100, T_reps=30, reps=30, errors=errors)
    # the last fit is Cor 4 over T >= 3: the LoRA-ML means (rank k) over sigma^2, T after T
    ml = seen[(100, k, d)]
    assert len(ml) == len(Ts)
    np.testing.assert_allclose(ys[-1], [float(np.mean(e)) / sigma ** 2 for e in ml], rtol=1e-14)
    # the saturation fit before it: the SR means (rank min(d, (T + 1) k)) at T = 5, 6
    sr5, sr6 = seen[(100, 6, d)]
    np.testing.assert_allclose(ys[-2], [float(np.mean(sr5)) / sigma ** 2, float(np.mean(sr6)) / sigma ** 2], rtol=1e-14)
    summary = res.measured.split(", ")
    assert summary[0] == f"n: {fmt(fits[0].slope, 3)}" and summary[1] == f"dof: {fmt(fits[1].slope, 3)}"
    assert summary[3] == f"SR/ML: {fmt(fits[2].slope, 3)}"
    assert summary[4] == f"saturated: {fmt(fits[3].slope, 2)}" and summary[5] == f"Cor 4: {fmt(fits[4].slope, 2)}"
    assert all(abs(f.slope) > 1e-4 for f in fits[3:])  # so that the digits shown matter
    # the sweeps' labels name their ranges, first to last; the tail sweep draws n = 2d per sample
    labels = [c.label for c in res.cases]
    assert any(lab.startswith("(1/n)E||E||^2 vs n (k'=1, n=40..160)") for lab in labels)
    assert any("k'=1..3" in lab for lab in labels) and any("d=4..6" in lab for lab in labels)
    assert {n for (n, kp, dd) in seen if kp == 1 and dd in (4, 6) and n not in (40, 80, 160, 50, 100)} == {8, 12}
    # the dof sweep's case names the k' range it fitted, first to last
    assert any(c.label.startswith("E||E||^2/sigma^2 vs k'(2d-k') (k'=1..3)") for c in res.cases)
    # every slope must be known to +-0.1, the tail's decay to +-0.08, and the verdicts say so
    slopes = [c for c in res.cases if isinstance(c.tolerance, str) and c.tolerance.startswith("+-")]
    assert len(slopes) == 6
    assert sum(c.tolerance.endswith("(max 0.1)") for c in slopes) == 5
    assert sum(c.tolerance.endswith("(max 0.08)") for c in slopes) == 1


@pytest.mark.parametrize("Ts,saturated", [((3, 4, 5, 6, 7), [5, 6, 7]), ((3, 4, 5), None), ((3, 4, 5, 6), [5, 6])])
def test_the_saturation_fit_takes_every_saturated_t_from_two_on(Ts, saturated):
    """The saturation slope is fitted over every T with (T + 1) k >= d once there are at
    least two (d = 6, k = 1: T >= 5), and the SR/ML label names the sweep first to last."""
    d, k, sigma = 6, 1, 0.3

    def errors(rng, B, *, n, sigma, kprime, reps):
        return sigma ** 2 * rank_kprime_dof(B.shape[0], kprime) * (1 + 0.1 * np.sin(np.arange(reps) + kprime))

    res = _rates.check_rate_slopes(np.random.default_rng(0), d=d, sigma=sigma, n_sweep=(40, 80), n_kprime=1,
                                   dof_n=50, dof_kprimes=(1, 2), dof_reps=20, tail_ds=(4, 6), tail_reps=50,
                                   k=k, Ts=Ts, T_n=100, T_reps=30, reps=30, errors=errors)
    labels = [c.label for c in res.cases]
    assert any(lab.startswith(f"SR/ML error ratio vs predicted dof ratio (T={Ts[0]}..{Ts[-1]}, ") for lab in labels)
    sat = [lab for lab in labels if lab.startswith("saturation:")]
    assert sat == ([] if saturated is None else [f"saturation: E||E_SR||^2 vs T for (T+1)k >= d (T={saturated})"])


@pytest.mark.parametrize("d, r", [(6, 1), (6, 2), (6, 4), (5, 5)])
def test_strong_signal_matrix_has_rank_r_and_evenly_spread_singular_values(d, r):
    """Rank r with singular values linspace(s_min, s_max, r) (s_min alone at r = 1), whatever
    the Haar-random singular vectors."""
    from theory._checks_rates import strong_signal_matrix

    B = strong_signal_matrix(np.random.default_rng(d + r), d, r, s_min=1.5, s_max=4.0)
    s = np.linalg.svd(B, compute_uv=False)
    want = np.linspace(1.5, 4.0, r) if r > 1 else np.array([1.5])
    np.testing.assert_allclose(np.sort(s[:r]), want, rtol=1e-12)
    assert np.all(s[r:] < 1e-12)
