"""Exact truth for the statistics behind every comparison of the real-data tables
(``empirics/real/_summary.py``): mean +- SE over seeds and the paired t-test, checked
against closed forms of Student's t with one and two degrees of freedom (not against
the scipy call the module makes)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from empirics.real import _summary as S


def test_mean_and_standard_error_over_seeds():
    ms = S.mean_se([0.0, 1.0])
    assert ms == {"mean": 0.5, "se": 0.5, "n": 2, "values": [0.0, 1.0]}  # std (ddof 1) sqrt(1/2), / sqrt(2)
    ms = S.mean_se([0.2, 0.4, 0.9])
    assert ms["se"] == pytest.approx(math.sqrt((0.3 ** 2 + 0.1 ** 2 + 0.4 ** 2) / 2) / math.sqrt(3), rel=1e-14)
    one = S.mean_se([0.7])
    assert one["mean"] == 0.7 and one["n"] == 1 and math.isnan(one["se"])


def test_paired_t_test_with_two_seeds_is_the_cauchy_tail():
    """n = 2: t has 1 degree of freedom (Cauchy), two-sided p = 1 - (2/pi) atan|t|."""
    c = S.paired_difference({1: 0.6, 2: 0.9}, {1: 0.5, 2: 0.6})  # differences 0.1, 0.3
    assert c["n"] == 2 and c["seeds"] == [1, 2]
    assert c["mean"] == pytest.approx(0.2, rel=1e-14, abs=0) and c["se"] == pytest.approx(0.1, rel=1e-12, abs=0)
    assert c["t"] == pytest.approx(2.0, rel=1e-12, abs=0)
    assert c["p_value"] == pytest.approx(1.0 - 2.0 / math.pi * math.atan(2.0), rel=1e-10)


def test_paired_t_test_with_three_seeds_has_two_degrees_of_freedom():
    """n = 3: two-sided p = 1 - |t| / sqrt(2 + t^2); the sign of t follows row - baseline."""
    a, b = {4: 1.0, 5: 2.0, 6: 4.0}, {4: 0.0, 5: 0.0, 6: 0.0, 9: 7.0}  # seed 9 has no partner
    c = S.paired_difference(b, a)  # differences -1, -2, -4
    d = np.array([-1.0, -2.0, -4.0])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    assert c["seeds"] == [4, 5, 6] and c["differences"] == [-1.0, -2.0, -4.0]
    assert c["t"] == pytest.approx(t, rel=1e-12, abs=0) and c["t"] < 0
    assert c["p_value"] == pytest.approx(1.0 - abs(t) / math.sqrt(2.0 + t * t), rel=1e-10)
    assert S.paired_difference(a, b)["t"] == pytest.approx(-t, rel=1e-12, abs=0)


def test_paired_t_test_undefined_without_spread_or_partners():
    tie = S.paired_difference({1: 1.0, 2: 2.0}, {1: 0.5, 2: 1.5})  # differences 0.5, 0.5 exactly
    assert tie["se"] == 0.0 and math.isnan(tie["t"]) and math.isnan(tie["p_value"]) and tie["mean"] == 0.5
    none = S.paired_difference({1: 0.5}, {2: 0.5})
    assert none["n"] == 0 and none["seeds"] == [] and math.isnan(none["mean"]) and math.isnan(none["p_value"])


def test_comparisons_answer_the_papers_two_questions_per_finetuning_method():
    """PEFT-ML against SR and against Reptile, and SR against Reptile, each for LoRA and for
    the last layer, always with the same fine-tuning method on both sides."""
    want = set()
    for peft, ml in (("lora", "lora-ml"), ("last-layer", "last-layer-ml")):
        want |= {((ml, peft), ("sr", peft)), ((ml, peft), ("reptile", peft)), (("sr", peft), ("reptile", peft))}
    assert set(S.COMPARISONS) == want and len(S.COMPARISONS) == len(want)
    assert S.COMPARED_METRICS == ("accuracy", "best_accuracy_over_epochs")


@pytest.mark.parametrize("p,text", [(0.0123456, "0.0123"), (0.5, "0.5"), (1.0, "1"), (3.14159e-7, "3.14e-07"),
                                    (float("nan"), "n/a"), (None, "n/a"), ("x", "n/a"), (float("inf"), "n/a")])
def test_p_values_print_three_significant_digits(p, text):
    assert S.format_p(p) == text


def test_mean_se_and_differences_print_in_percent():
    assert S.format_mean_se({"mean": 0.8123, "se": 0.00456}) == "81.23 ± 0.46"
    assert S.format_mean_se({"mean": 0.5, "se": None}) == "50.00 ± n/a"
    assert S.format_mean_se({"mean": 0.5, "se": "NaN"}) == "50.00 ± n/a"
    assert S.format_difference({"mean": -0.0175, "se": 0.003}) == "-1.75 ± 0.30"
    assert S.format_difference({"mean": float("nan"), "se": 0.1}) == "n/a"


def _record(experiment, **extra):
    ms = {"mean": 0.5, "se": 0.01}
    return {"experiment": experiment, "notes": ["note"], "comparisons": [],
            "rows": [{"row": "LoRA-ML", "accuracy": ms, "best_accuracy_over_epochs": ms, "seeds": [1, 2]}], **extra}


def test_summary_prints_the_papers_numbers_with_the_papers_decimals():
    """Table 1 prints two decimals, the Table 2 averages one; a record written before the
    paper's numbers were stored in it still gets them."""
    from empirics.real import _paper

    m, s = _paper.TABLE1["LoRA-ML"]
    assert f"{m:.2f} ± {s:.2f}" in S.format_summary(_record("vision"))
    m, s = _paper.TABLE2["LoRA-ML"]["average"]
    text = S.format_summary(_record("language"))
    assert f" {m:.1f} ± {s:.1f} " in text and f"{m:.2f} ± {s:.2f}" not in text


def test_summary_prints_the_paper_numbers_stored_in_the_record():
    """A record carries the paper column it was rendered with; the table prints that one."""
    paper = {"metric": "m", "source": "src", "rows": {"LoRA-ML": [12.34, 5.67]}}
    text = S.format_summary(_record("vision", paper=paper))
    assert "12.34 ± 5.67" in text and "paper column: m (src)" in text


def _unit(method, peft, seed, acc):
    return {"retrain": method, "seed": seed, "retrain_wall_s": 1.0, "retrain_steps": 10, "best_epoch": 1,
            "finetune": {peft: [{"task": "t0", "accuracy": acc, "best_accuracy_over_epochs": acc}]}}


def test_a_row_without_units_is_skipped_and_the_next_rows_still_summarised():
    from empirics.real._config import RunConfig

    cfg = RunConfig(experiment="vision", retrain=("lora-ml", "sr"), peft=("lora",), seeds=(1, 2))
    units = [_unit("sr", "lora", s, 0.6 + 0.1 * s) for s in (1, 2)]  # no LoRA-ML unit: its row is left out
    rec = S.summarize(units, cfg)
    assert [r["retrain"] for r in rec["rows"]] == ["sr"]
    assert rec["rows"][0]["accuracy"]["mean"] == pytest.approx(0.75)


def test_the_notes_name_this_run_s_model_and_width():
    from empirics.real._config import RunConfig

    # a string built at run time (as a command line gives it), not the interned literal
    vision = RunConfig(experiment="".join(["vis", "ion"]), retrain=("sr",), peft=("lora",), seeds=(1,), width=48)
    rec = S.summarize([_unit("sr", "lora", 1, 0.5)], vision)
    assert "48" in rec["notes"][0] and "{" not in " ".join(rec["notes"])
    language = RunConfig(experiment="".join(["lang", "uage"]), retrain=("sr",), peft=("lora",), seeds=(1,))
    rec = S.summarize([_unit("sr", "lora", 1, 0.5)], language, family_description={"model": "tiny-model", "note": "N"})
    assert rec["notes"][0] == "N" and "tiny-model" in rec["notes"][1] and "{" not in " ".join(rec["notes"])
    rec = S.summarize([_unit("sr", "lora", 1, 0.5)], language)
    assert "all-MiniLM-L6-v2" in rec["notes"][0]


def test_each_experiment_states_its_own_metric_and_notes():
    """Vision states test accuracy and takes no language note even when a family description
    comes with it; language states hits@1 among 20; a run's own note comes first."""
    from empirics.real._config import RunConfig

    vision = RunConfig(experiment="".join(["vis", "ion"]), retrain=("sr",), peft=("lora",), seeds=(1,), note="mine")
    rec = S.summarize([_unit("sr", "lora", 1, 0.5)], vision, family_description={"model": "m", "note": "N"})
    assert rec["metric"].startswith("fine-tuned test accuracy") and "hits@1" not in rec["metric"]
    assert rec["notes"][0] == "mine" and "N" not in rec["notes"]
    language = RunConfig(experiment="".join(["lang", "uage"]), retrain=("sr",), peft=("lora",), seeds=(1,),
                         note="mine")
    rec = S.summarize([_unit("sr", "lora", 1, 0.5)], language, family_description={"model": "m", "note": "N"})
    assert rec["metric"].startswith("hits@1 among 20 candidates") and "accuracy" not in rec["metric"]
    assert rec["notes"][:2] == ["mine", "N"]


def test_one_seed_gives_a_nan_standard_error_without_a_warning():
    """One value has no spread: SE (and a paired comparison's SE, t and p) are NaN, and no
    'degrees of freedom <= 0' warning is raised on the way."""
    import warnings

    from empirics.real._summary import mean_se, paired_difference

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = mean_se([0.75])
        pair = paired_difference({1: 0.75}, {1: 0.5})
    assert one["mean"] == 0.75 and one["n"] == 1 and math.isnan(one["se"])
    assert pair["n"] == 1 and pair["mean"] == 0.25 and all(math.isnan(pair[k]) for k in ("se", "t", "p_value"))


def test_only_units_of_the_records_seeds_and_methods_are_merged():
    """A unit of another seed (same method) or of another method (same seed) in the folder
    is left out of the rows."""
    from empirics.real._config import RunConfig

    cfg = RunConfig(experiment="vision", retrain=("sr",), peft=("lora",), seeds=(1, 2))
    units = [_unit("sr", "lora", 1, 0.6), _unit("sr", "lora", 2, 0.8), _unit("sr", "lora", 9, 0.1),
             _unit("lora-ml", "lora", 1, 0.1)]
    (row,) = S.summarize(units, cfg)["rows"]
    assert row["seeds"] == [1, 2] and row["accuracy"]["mean"] == pytest.approx(0.7)


def test_the_paper_column_of_a_vision_record_read_from_a_file():
    """The experiment compared by value: a string read back from JSON is not the literal."""
    from empirics.real import _paper

    got = S.paper_rows("".join(["vis", "ion"]))
    assert got["metric"] == _paper.TABLE1_METRIC and set(got["rows"]) == set(_paper.TABLE1)
    assert S.paper_rows("".join(["lang", "uage"]))["metric"] == _paper.TABLE2_METRIC
