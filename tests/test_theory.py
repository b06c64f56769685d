"""Tests of the theory registry: every check passes at quick scale, negative controls fail
where the theory says they must, and the ``python -m theory`` command line behaves."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

import theory
from theory import (
    REGISTRY,
    UnknownCheckError,
    check_eq7_8,
    check_ids,
    check_lemma1,
    check_prop1,
    check_prop2,
    check_rates,
    check_thm31,
    get_check,
    run,
    uniqueness_report,
)
from theory.__main__ import main

# Every statement listed in the issue must have a registry entry.
REQUIRED_IDS = [
    "R3.1",
    "Eq.(7)-(8)",
    "Eq.(11)-(12)",
    "Thm 3.1",
    "Prop 1",
    "Prop 2",
    "Lemma 1",
    "Remark 3.2 / Cor 2 / Cor 4",
    "Thm 3.2 + Cor 1",
    "App F.1",
    "Thm 3.3 + Cor 3",
    "Thm 3.3 control: T=2",
    "Thm 3.3 control: d=2k",
    "Thm 3.4",
    "App C",
    "App F.2",
]


@pytest.fixture(scope="module")
def quick_report():
    return run(seed=0, scale="quick")


def test_registry_covers_every_statement():
    ids = check_ids()
    assert len(ids) == len(set(ids))
    for i in REQUIRED_IDS:
        assert get_check(i).id == i
    assert get_check("thm3.1").id == "Thm 3.1"  # case and spaces ignored


@pytest.mark.parametrize("check_id", check_ids())
def test_every_check_passes_at_quick_scale(quick_report, check_id):
    res = next(r for r in quick_report.results if r.id == check_id)
    bad = [c for c in res.cases if not c.passed]
    assert res.passed, f"{check_id}: {res.notes} {bad}"
    assert res.cases and res.seconds >= 0
    assert res.reference and res.hypotheses and res.tolerance_why


def test_results_are_frozen_and_json_ready(quick_report):
    res = quick_report.results[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.passed = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.cases[0].passed = False  # type: ignore[misc]
    text = json.dumps(quick_report.to_dict())
    back = json.loads(text)
    assert back["n_checks"] == len(REGISTRY) and back["passed"] is True
    assert {"id", "predicted", "measured", "ci", "tolerance", "tolerance_why", "verdict", "seconds"} <= set(
        back["results"][0]
    )
    table = quick_report.table()
    assert "Thm 3.1" in table and "PASS" in table


def test_monte_carlo_checks_report_confidence_intervals(quick_report):
    res = next(r for r in quick_report.results if r.id == "Thm 3.1")
    for c in res.cases:
        lo, hi = c.ci
        assert lo < c.measured < hi


def test_check_is_independent_of_selection(quick_report):
    alone = run(["Thm 3.1"], seed=0, scale="quick").results[0]
    together = next(r for r in quick_report.results if r.id == "Thm 3.1")
    assert [c.measured for c in alone.cases] == [c.measured for c in together.cases]


def test_seed_changes_monte_carlo_draws():
    a = run(["Thm 3.1"], seed=1, scale="quick").results[0]
    b = run(["Thm 3.1"], seed=2, scale="quick").results[0]
    assert [c.measured for c in a.cases] != [c.measured for c in b.cases]


def test_unknown_id_and_scale_are_rejected():
    with pytest.raises(UnknownCheckError, match="unknown check id"):
        run(["Thm 9.9"])
    with pytest.raises(ValueError, match="unknown scale"):
        run(["Thm 3.1"], scale="huge")


# --------------------------------------------------------------------------------------
# Negative controls: wrong constants and violated hypotheses
# --------------------------------------------------------------------------------------
def test_thm31_rejects_formula_without_factor_T_minus_1():
    rng = np.random.default_rng(0)
    res = check_thm31(rng, draws=5000, expected=lambda d, k, T: T * k * d * (d + 1) / 2)
    assert not res.passed
    assert all(not c.passed for c in res.cases)


def test_thm31_rejects_formula_without_one_half():
    res = check_thm31(np.random.default_rng(0), draws=5000, expected=lambda d, k, T: (T - 1) * k * d * (d + 1))
    assert not res.passed


def test_thm31_accepts_the_right_formula_on_other_seeds():
    for seed in (11, 12):
        assert check_thm31(np.random.default_rng(seed), draws=5000).passed


def test_prop1_zero_exactly_at_needed_rank_and_positive_below():
    res = check_prop1(np.random.default_rng(3))
    assert res.passed
    at_r = [c for c in res.cases if "min L*" in c.label and c.predicted == 0.0]
    below = [c for c in res.cases if "min L*" in c.label and c.predicted != 0.0]
    assert at_r and below
    assert all(c.measured <= c.tolerance for c in at_r)
    assert all(c.measured > 1e3 * c.tolerance for c in below)


def test_prop1_rejects_rank_that_forgets_the_test_task():
    res = check_prop1(np.random.default_rng(3), needed_rank=lambda d, k, T: min(d, T * k))
    assert not res.passed


def test_prop2_rejects_floor_without_square():
    # k = 2 in one configuration: k (d - k') / 2 differs from k^2 (d - k') / 2 there
    res = check_prop2(np.random.default_rng(0), T=20_000, floor=lambda d, k, kp: k * (d - kp) / 2)
    assert not res.passed


def test_lemma1_rejects_wrong_degrees_of_freedom():
    res = check_lemma1(np.random.default_rng(0), reps=100, dof=lambda d, kp: 2 * d * kp)
    assert not res.passed


def test_rates_reject_sr_rank_without_test_task():
    res = check_rates(np.random.default_rng(0), reps=100, sr_rank=lambda d, k, T: min(d, T * k))
    assert not res.passed


def test_eq7_8_rejects_missing_noise_offset():
    res = check_eq7_8(np.random.default_rng(0), N=100_000, sigma=1.0, noise_offset=lambda d, s: 0.0)
    assert not res.passed


def test_uniqueness_report_separates_hypotheses():
    from landscape import f1_instance, random_instance, thm33_counterexample_instance, thm33_counterexample_minimiser

    rng = np.random.default_rng(5)
    ok = uniqueness_report(random_instance(rng, 3, 3, 1), rng, starts=6)
    assert ok.unique and ok.n_zero > 0
    t2 = uniqueness_report(f1_instance(2), rng, starts=6)
    assert not t2.unique and t2.nullity == 1
    Q, U_hat = thm33_counterexample_minimiser()
    inst = thm33_counterexample_instance()
    d2k = uniqueness_report(inst, rng, starts=2, known_points=[(inst.A_star + Q, U_hat)])
    assert not d2k.unique and d2k.n_exceptions >= 1 and d2k.nullity == 0


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "theory", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_runs_selected_checks_and_writes_json(tmp_path):
    out = tmp_path / "deep" / "dir" / "theory.json"
    proc = _cli("--only", "Thm 3.1", "prop1", "--scale", "quick", "--seed", "4", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Thm 3.1" in proc.stdout and "Prop 1" in proc.stdout and "PASS" in proc.stdout
    data = json.loads(out.read_text())
    assert [r["id"] for r in data["results"]] == ["Thm 3.1", "Prop 1"]
    assert data["seed"] == 4 and data["scale"] == "quick"


def test_cli_bad_arguments_exit_2_with_one_line():
    for args in (("--only", "Thm 9.9"), ("--scale", "huge"), ("--seed", "x")):
        proc = _cli(*args)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cli_help_lists_ids(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "App F.2" in text and "exit status" in text and "--scale" in text


def test_cli_exit_1_when_a_check_fails(monkeypatch, capsys, tmp_path):
    failing = theory.run(["Thm 3.1"], scale="quick", overrides={"Thm 3.1": {"expected": lambda d, k, T: 0.0}})
    assert not failing.passed
    monkeypatch.setattr("theory.__main__.run", lambda *a, **k: failing)
    assert main(["--no-progress", "--json", str(tmp_path / "x.json")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "BAD" in out
    assert json.loads((tmp_path / "x.json").read_text())["passed"] is False


def test_cli_rejoins_unquoted_ids():
    from theory.__main__ import resolve_ids

    assert resolve_ids(["Thm", "3.1", "prop1", "Thm", "3.3", "control:", "T=2"]) == [
        "Thm 3.1",
        "Prop 1",
        "Thm 3.3 control: T=2",
    ]
    with pytest.raises(UnknownCheckError):
        resolve_ids(["Thm", "9.9"])


def test_negative_controls_are_marked_and_report_non_uniqueness(quick_report):
    controls = [c.id for c in REGISTRY if c.control]
    assert controls == ["Thm 3.3 control: T=2", "Thm 3.3 control: d=2k"]
    for cid in controls:
        res = next(r for r in quick_report.results if r.id == cid)
        assert res.passed and "NOT unique" in res.predicted
        exceptions = [c for c in res.cases if "A != A*" in c.label]
        assert exceptions and all(c.measured >= 1 for c in exceptions)


# Every branch of a check runs at quick scale: (check id, a substring of a case label that
# only that branch produces).  A branch no configuration reaches is dead code that could
# hide a wrong formula.
BRANCH_CASES = [
    ("Prop 2", "limit (mu_i >= 2k)"),
    ("Prop 2", "limit lower bound"),
    ("Prop 1", "rank threshold pin"),
    ("Eq.(34) / Thm B.1", "(Tk(k-1)/2 + k^2)"),
    ("Eq.(34) / Thm B.1", "a global min (Tk(k-1)/2)"),
    ("Eq.(34) / Thm B.1", "(>= Tk(k-1)/2)"),
    ("Thm 3.4", "(35) identity at random U"),
    ("Thm 3.4", "strict-saddle threshold pin"),
    ("Thm 3.4", "root-finder critical points"),
    ("Thm 3.3 + Cor 3", "GD endpoint"),
    ("Thm 3.3 + Cor 3", "the search found zero-loss points"),
    ("Thm 3.2 via GD", "GD endpoint: loss <="),
    ("App F.1", "the search found zero-loss points"),
    ("App F.2", "independent exact-rational verification"),
    ("App F.2", "certified lambda lower bound vs float"),
]


@pytest.mark.parametrize("check_id, label", BRANCH_CASES)
def test_every_branch_runs_at_quick_scale(quick_report, check_id, label):
    res = next(r for r in quick_report.results if r.id == check_id)
    assert any(label in c.label for c in res.cases), [c.label for c in res.cases]


def test_search_lower_bound_counts():
    from theory._checks_minima import MIN_SEARCH_HITS, search_found_enough

    assert not search_found_enough(0, 8) and not search_found_enough(1, 1)
    assert not search_found_enough(MIN_SEARCH_HITS - 1, 4)
    assert search_found_enough(MIN_SEARCH_HITS, 8) and search_found_enough(19, 75)
    assert not search_found_enough(18, 75)  # below a quarter of the starts


def test_f2_check_fails_when_the_independent_verifier_disagrees(monkeypatch):
    import theory._checks_saddles as sd
    from theory._independent import IndependentReport

    monkeypatch.setattr(sd, "verify_taylor_exact", lambda cert: IndependentReport({"x": False}, reason="no"))
    assert not run(["App F.2"], scale="quick").passed


def test_clopper_pearson_matches_scipy_exact_interval():
    from scipy.stats import binomtest

    from theory._result import clopper_pearson

    for k, n in ((0, 10), (3, 10), (10, 10), (17, 250)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        lo, hi = clopper_pearson(k, n, 0.95)
        assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_ratio_of_means_standard_error_is_calibrated():
    """Delta-method SE of a ratio of two independent means: scales with the ratio, and
    matches the spread of the ratio over independent replications (within 15%)."""
    from theory._result import ratio_of_means

    rng = np.random.default_rng(7)
    a, b = rng.normal(3.0, 1.0, 400), rng.normal(2.0, 0.5, 400)
    r, se = ratio_of_means(a, b)
    r2, se2 = ratio_of_means(10.0 * a, b)
    assert r2 == pytest.approx(10 * r) and se2 == pytest.approx(10 * se)
    reps = [ratio_of_means(rng.normal(3.0, 1.0, 400), rng.normal(2.0, 0.5, 400)) for _ in range(300)]
    spread = float(np.std([x for x, _ in reps], ddof=1))
    assert float(np.mean([s for _, s in reps])) == pytest.approx(spread, rel=0.15, abs=0)


def test_every_numeric_case_passes_exactly_when_it_lies_within_its_tolerance(quick_report):
    """A case that states a number predicted, a number measured and a number of tolerance is
    judged by exactly |measured - predicted| <= tolerance: the printed prediction is the one
    the verdict uses (a display value that drifted from the verdict's would pass unseen)."""
    import numbers

    def num(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    judged = [(r, c) for r in quick_report.results for c in r.cases
              if num(c.predicted) and num(c.measured) and num(c.tolerance)]
    assert len(judged) >= 50
    for r, c in judged:
        assert bool(c.passed) is bool(abs(c.measured - c.predicted) <= c.tolerance), (r.id, c.label)
