"""empirics.real.cpu_table1's scale rule pinned at its threshold: SR's mean best-epoch
retraining validation accuracy passes at exactly 75 % (0.5 and 1.0 over two seeds too) and fails
one ulp below; missing units and other methods are not read; the protocol's constants.
"""
from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from empirics.real import cpu_table1 as C  # noqa: E402


def _unit(method, seed, val, best):
    return {"retrain": method, "seed": seed, "best_epoch": best,
            "retrain_history": {"epoch": list(range(1, len(val) + 1)), "val_accuracy": val}}


def test_rule_and_protocol_constants():
    assert C.SCALE_RULE["method"] == "sr" and C.SCALE_RULE["threshold"] == 0.75
    assert C.PAPER_RETRAIN_STEPS == 4000
    assert C.CPU_TABLE1 == {"width": 32, "batch_size": 8, "max_per_task": 3200, "epochs": 10, "finetune_epochs": 10,
                            "lr": 1e-3, "seeds": (1, 2, 3, 4, 5)}


@pytest.mark.parametrize("values, passed", [([0.75], True), ([0.5, 1.0], True), ([math.nextafter(0.75, 0)], False),
                                            ([0.74, 0.76], True), ([0.7, 0.79], False), ([1.0], True)])
def test_the_threshold_is_reached_at_exactly_75_percent(values, passed):
    units = [_unit("sr", s + 1, [0.1, v], 2) for s, v in enumerate(values)]
    sc = C.scale_check(units)
    assert sc["mean"] == sum(values) / len(values)
    assert sc["passed"] is passed
    assert sc["per_seed"] == {s + 1: v for s, v in enumerate(values)}
    assert {k: sc[k] for k in C.SCALE_RULE} == C.SCALE_RULE


def test_missing_units_and_other_methods_are_not_read():
    units = [None, _unit("lora-ml", 1, [0.99], 1), _unit("sr", 3, [0.2, 0.8, 0.1], None),
             _unit("reptile", 3, [0.0], 1)]
    sc = C.scale_check(units)
    assert sc["per_seed"] == {3: 0.1} and not sc["passed"]  # the last epoch when none was selected
    empty = C.scale_check([None, _unit("lora-ml", 1, [0.99], 1)])
    assert empty["per_seed"] == {} and math.isnan(empty["mean"]) and empty["passed"] is False


def test_cpu_config_overrides_and_note():
    cfg = C.cpu_config(retrain=["sr", "reptile"], seeds=[4], epochs=3)
    assert cfg.retrain == ("sr", "reptile") and cfg.seeds == (4,) and cfg.epochs == 3
    assert "3 epochs" in cfg.note and "width 32, batch 8, 3200 training images per task" in cfg.note
    assert "retraining lr 0.001" in cfg.note and ">= 75 %" in cfg.note
    base = C.cpu_config()
    assert (base.width, base.batch_size, base.max_per_task, base.lr, base.finetune_lr) == (32, 8, 3200, 1e-3, 5e-4)


def _unit2(method, seed, val, ft, steps=40):
    return {"retrain": method, "seed": seed, "best_epoch": 1, "retrain_steps": steps,
            "retrain_history": {"epoch": list(range(1, len(val) + 1)), "val_accuracy": val},
            "finetune": {p: [{"accuracy": c[-1], "accuracy_per_epoch": c}] for p, c in ft.items()}}


def test_learning_curves_are_the_means_of_each_rows_own_units(tmp_path, figures_saved):
    import numpy as np

    saved = figures_saved
    units = [_unit2("sr", 1, [0.5, 0.7], {"lora": [0.6, 0.8], "last-layer": [0.5, 0.55]}),
             _unit2("sr", 2, [0.7, 0.9], {"lora": [0.7, 0.9], "last-layer": [0.6, 0.65]}),
             _unit2("lora-ml", 1, [0.6, 0.6, 0.9], {"lora": [0.9, 0.95]}, steps=60)]
    C._curves_png(units, {}, tmp_path / "c.png")
    ax1, ax2 = saved[-1].axes
    retrain = {ln.get_label(): ln for ln in ax1.lines if ln.get_marker() == "o"}
    np.testing.assert_allclose(retrain["sr (40 steps)"].get_xdata(), [20, 40])
    np.testing.assert_allclose(retrain["sr (40 steps)"].get_ydata(), [60, 80])
    np.testing.assert_allclose(retrain["lora-ml (60 steps)"].get_xdata(), [20, 40, 60])
    np.testing.assert_allclose(retrain["lora-ml (60 steps)"].get_ydata(), [60, 60, 90])
    (rule,) = [ln for ln in ax1.lines if ln.get_linestyle() == ":"]
    assert set(rule.get_ydata()) == {75.0}
    ft = {ln.get_label(): ln for ln in ax2.lines if ln.get_marker() == "o"}
    assert set(ft) == {"LoRA-ML", "SR + LoRA", "SR + Last-Layer"}
    np.testing.assert_allclose(ft["SR + LoRA"].get_ydata(), [65, 85])
    np.testing.assert_allclose(ft["SR + Last-Layer"].get_ydata(), [55, 60])
    np.testing.assert_allclose(ft["LoRA-ML"].get_ydata(), [90, 95])
    assert ft["SR + Last-Layer"].get_linestyle() == "--" and ft["SR + LoRA"].get_linestyle() == "-"


def test_render_states_the_elapsed_minutes(tmp_path, monkeypatch):
    import json

    out = tmp_path / "out"
    (out / "units").mkdir(parents=True)
    monkeypatch.setattr(C, "_units", lambda cfg, out: [_unit2("sr", 1, [0.8], {"last-layer": [0.6]})])
    monkeypatch.setattr(C, "_curves_png", lambda units, record, path: None)
    import empirics.real._run as R

    monkeypatch.setattr(R, "summarize", lambda units, cfg, family_description=None: {"rows": []})
    monkeypatch.setattr(R, "format_summary", lambda record: "summary")
    for line in ({"retrain": ["sr"], "seeds": [1], "group_size": 1, "threads": 1, "started_utc": 1000.0,
                  "finished_utc": 1000.0 + 90 * 60},):
        (out / C.RUN_LOG).write_text(json.dumps(line) + "\n")
    C.render(out, tmp_path / "dest", cfg=C.cpu_config(retrain=("sr",), seeds=(1,)))
    text = (tmp_path / "dest" / "table1_cpu.md").read_text()
    assert "Elapsed, first process start to last process end: 90.0 min" in text
    assert "--retrain sr --seeds 1 --group-size 1 --threads 1" in json.loads(
        (tmp_path / "dest" / "vision_record.json").read_text())["command"]


def test_the_module_runs_as_a_command():
    """`python -m empirics.real.cpu_table1 --help` prints its usage (the module's __main__ guard)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "empirics.real.cpu_table1", "--help"], cwd=root,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m empirics.real.cpu_table1")


def test_the_fine_tuning_panel_marks_chance_at_fifty_percent(tmp_path, monkeypatch):
    """The tasks are binary: the learning-curve figure's chance line is at 50 %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figs.append(fig))
    unit = {"retrain": "sr", "retrain_steps": 10, "retrain_history": {"epoch": [1, 2], "val_accuracy": [0.6, 0.7]},
            "finetune": {"lora": [{"accuracy_per_epoch": [0.6, 0.7]}]}}
    C._curves_png([unit], {}, tmp_path / "c.png")
    (fig,) = figs
    chance = [ln for ln in fig.axes[1].lines if ln.get_label() == "chance"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [50, 50]
