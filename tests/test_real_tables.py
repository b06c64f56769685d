"""Tables 1-3: registry entries and rendering beside the (unavailable) paper numbers."""
import pytest

import figures
from figures import _real_tables as rt


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ms(m, se=0.01):
    return {"mean": m, "se": se, "n": 2, "values": [m - se, m + se]}


def _record(experiment, personas=("persona_1", "persona_2")):
    rows = []
    for label, (r, p) in [("LoRA-ML", ("lora-ml", "lora")), ("SR + LoRA", ("sr", "lora"))]:
        per = {q: _ms(0.5 + 0.1 * i) for i, q in enumerate(personas)}
        rows.append({"row": label, "retrain": r, "peft": p, "seeds": [1, 2], "accuracy": _ms(0.6),
                     "best_accuracy_over_epochs": _ms(0.65), "per_task": per, "per_task_best": per,
                     "retrain_wall_s": [1.0, 1.0], "best_epoch": [1, 2]})
    return {"experiment": experiment, "rows": rows, "notes": ["a note on the data"],
            "config": {"seeds": [1, 2], "epochs": 2, "finetune_epochs": 2, "max_per_task": 10},
            "provenance": {"device": "cpu"}}


def test_tables_are_registered_with_offline_smoke_configs():
    for name in ("table1", "table2", "table3"):
        spec = figures.get(name)
        assert spec.kind == "table"
    assert figures.get("table1").smoke["dataset"] == "random"
    assert figures.get("table2").smoke["fixture"] and figures.get("table3").smoke["fixture"]
    assert figures.get("table3").paper["ranks"] == [1, 4, 8, 16]


def test_vision_table_renders_rows_differences_and_paper_column(tmp_path, capsys):
    files = rt.render_record(_record("vision"), tmp_path, "t1")
    text = (tmp_path / "t1.md").read_text()
    assert "| LoRA-ML | 60.00 ± 1.00 | 65.00 ± 1.00 | 86.09 ± 0.35 |" in text  # the paper's Table 1
    assert "| SR + LoRA | 60.00 ± 1.00 | 65.00 ± 1.00 | 85.29 ± 0.17 |" in text
    assert "JPEG" in text and "Paper column" in text and "a note on the data" in text
    assert [f.suffix for f in files] == [".md", ".png"] and all(f.stat().st_size > 0 for f in files)


def test_language_tables_per_persona_and_rank(tmp_path):
    rec = _record("language")
    text = rt.format_language_table(rec)
    assert "| method | persona_1 | persona_2 | average | paper (average) |" in text
    assert "| SR + LoRA | 50.00 ± 1.00 | 60.00 ± 1.00 | 60.00 ± 1.00 | 35.0 ± 4.1 |" in text
    assert "| LoRA-ML | 57 ± 2 | 41 ± 4 |" in text  # the paper's per-persona cells
    assert "RoBERTa" in text
    t3 = rt.format_rank_table({"1": rec, "8": rec})
    assert "| 8 | 60.00 ± 1.00 | 60.00 ± 1.00 | 47.4 ± 1.9 | 35.0 ± 4.1 |" in t3
    assert "| 1 | 60.00 ± 1.00 | 60.00 ± 1.00 | 44.7 ± 0.8 | 36.3 ± 4.1 |" in t3
    files = rt.render_table3({"records": {"1": rec, "8": rec}}, tmp_path, "t3")
    assert all(f.is_file() for f in files)


def test_single_seed_standard_error_is_shown_as_unavailable():
    rec = _record("vision")
    rec["rows"][0]["accuracy"] = {"mean": 0.5, "se": float("nan"), "n": 1, "values": [0.5]}
    assert "50.00 ± n/a" in rt.format_vision_table(rec)


def test_smoke_configs_map_to_offline_run_configs(tmp_path):
    c1 = rt._run_config(figures.get("table1").smoke, tmp_path)
    assert c1.dataset == "random" and c1.experiment == "vision"
    c2 = rt._run_config(figures.get("table2").smoke, tmp_path)
    assert c2.experiment == "language" and (tmp_path / "fixture" / "bert" / "config.json").is_file()
    assert c2.valid_file.endswith("valid.txt") and c2.n_test == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["table3"])  # table1 paths: test_real_training
def test_table_smoke_configs_run_end_to_end(name, tmp_path):
    res = figures.make(name, smoke=True, out=tmp_path, progress=False)
    assert [f.suffix for f in res["files"]] == [".md", ".png"]
    text = res["files"][0].read_text()
    assert "LoRA-ML" in text and "44.7 ± 0.8" in text


@pytest.mark.parametrize("se", [float("nan"), "nan", None])
def test_single_seed_standard_error_is_shown_as_not_available(se):
    from empirics.real._run import format_mean_se

    assert format_mean_se({"mean": 0.5, "se": se}) == "50.00 ± n/a"
    assert format_mean_se({"mean": 0.5, "se": 0.0123}) == "50.00 ± 1.23"


def test_rendering_a_stored_one_seed_record(tmp_path):
    """A committed 1-seed record (its SE stored as the string "nan") renders: SE and paired
    p-values read n/a, the paper's numbers stand beside ours, and the figure is drawn."""
    import json
    from pathlib import Path

    stored = Path(__file__).resolve().parents[1] / "figures" / "results" / "real" / "vision_cifar10_cpu_reduced.json"
    rec = json.loads(stored.read_text())
    assert rec["config"]["seeds"] == [1] and rec["rows"][0]["accuracy"]["se"] in ("nan", "NaN", None)
    files = rt.render_record(rec, tmp_path, "one_seed")
    text = files[0].read_text()
    assert "± n/a" in text and "86.09 ± 0.35" in text
    assert files[1].suffix == ".png" and files[1].stat().st_size > 0
    # with per-seed values, a 1-seed comparison is rendered with n/a SE and p
    from empirics.real._run import paired_difference

    c = {"row": "LoRA-ML", "baseline": "SR + LoRA", "peft": "lora",
         "accuracy": paired_difference({1: 0.6}, {1: 0.5}),
         "best_accuracy_over_epochs": paired_difference({1: 0.6}, {1: 0.55})}
    stored_c = json.loads(json.dumps(c).replace("NaN", '"nan"'))  # as a strict-JSON record holds it
    lines = rt.format_comparisons({**rec, "comparisons": [stored_c]})
    row = next(line for line in lines if line.startswith("| lora |"))
    assert "+5.00" in row and row.count("n/a") == 4


def _well_formed(markdown: str) -> int:
    """Every markdown table in ``markdown``: its separator row (the second) and every body row
    have the header's number of cells. Returns the number of tables."""
    tables, block = 0, []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            tables += 1
            cells = [row.count("|") for row in block]
            assert set(block[1].strip("|").split("|")) == {"---"}, block[1]
            assert cells == [cells[0]] * len(block), block
            block = []
    return tables


def test_every_rendered_table_has_its_header_s_columns():
    """The vision table, the language table and the rank table are valid markdown: separator
    and body rows as wide as the header (a separator twice too wide renders as no table)."""
    assert _well_formed(rt.format_rank_table({"1": _record("language"), "8": _record("language")})) >= 1
    assert _well_formed(rt.format_language_table(_record("language"))) >= 1
