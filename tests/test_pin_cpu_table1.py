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
