"""empirics.real._cost pinned: the printed durations switch units exactly at 120 s, 2 h and 2
days; the GPU assumptions (100 TFLOP/s sustained, 3 ms per optimizer step) and the GPU seconds
they give; the calibration times the optimizer the run will use.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from empirics.real import _cost as C  # noqa: E402
from empirics.real._config import RunConfig  # noqa: E402


@pytest.mark.parametrize("s, text", [(0.4, "0 s"), (119.4, "119 s"), (120, "2 min"), (7199, "120 min"),
                                     (7200, "2.0 h"), (172_799, "48.0 h"), (172_800, "2.0 days"),
                                     (10 * 86_400, "10.0 days")])
def test_durations_switch_units_at_their_boundaries(s, text):
    assert C._duration(s) == text


def test_gpu_assumptions_and_seconds():
    assert C.GPU_ASSUMED == {"flops_per_s": 1.0e14, "pass_latency_s": 3.0e-3}
    counts = {"eval": 10, "steps": 1000, "work": {k: 0 for k in C.KINDS}}
    counts["work"]["train"], counts["work"]["ft-lora"] = 2000, 500
    rates = {"eval_flops": 1e9, "flops": {k: 0.0 for k in C.KINDS}}
    rates["flops"]["train"], rates["flops"]["ft-lora"] = 3e12, 4e12
    want = (10 * 1e9 + 2000 * 3e12 + 500 * 4e12) / 1e14 + 1000 * 3e-3
    assert C.gpu_seconds(counts, rates) == pytest.approx(want, rel=1e-15, abs=0)
    assert C.gpu_seconds(counts, rates, {"flops_per_s": 2e14, "pass_latency_s": 0.0}) == pytest.approx(
        (10 * 1e9 + 2000 * 3e12 + 500 * 4e12) / 2e14, rel=1e-15, abs=0)


TINY = dict(dataset="random", seeds=(1,), epochs=1, finetune_epochs=1, width=8, batch_size=16, max_per_task=40,
            max_eval_per_task=24, reptile_outer_epochs=1, reptile_inner_steps=3, retrain=("sr",),
            peft=("last-layer",))


@pytest.mark.parametrize("optimizer, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                            ("sgd", torch.optim.SGD)])
def test_calibration_times_the_runs_optimizer(monkeypatch, optimizer, cls):
    from empirics.real._protocol import build_family

    made = []
    orig_init = torch.optim.Optimizer.__init__

    def record(self, params, defaults):
        made.append(type(self))
        return orig_init(self, params, defaults)

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", record)
    cfg = RunConfig(**TINY, optimizer=optimizer)
    fam = build_family(cfg, verbose=False)
    made.clear()
    C.calibrate(fam, cfg, ["train"])
    assert made and set(made) == {cls}


def test_calibration_rates_are_the_timed_seconds_per_unit(monkeypatch):
    """A clock that advances 0.25 s between any two readings: every timed sample is 0.25 s,
    so a build takes 0.25 s, an optimizer step 0.25 s, a pass and an evaluation forward
    0.25 s per item-unit (the batch's items)."""
    from types import SimpleNamespace

    from empirics.real._protocol import build_family

    ticks = iter(range(10**6))
    monkeypatch.setattr(C, "time", SimpleNamespace(perf_counter=lambda: 0.25 * next(ticks) + 1000.0))
    cfg = RunConfig(**TINY)
    rates = C.calibrate(build_family(cfg, verbose=False), cfg, ["train"])
    units = rates["units"]
    assert units == TINY["batch_size"]  # the whole first batch (CALIBRATION_ITEMS["vision"] is None)
    assert rates["build"]["train"] == 0.25 and rates["opt"]["train"] == 0.25
    assert rates["pass"]["train"] == pytest.approx(0.25 / units, rel=1e-12)
    assert rates["eval"] == pytest.approx(0.25 / units, rel=1e-12)


def test_work_per_item_is_tokens_for_language_turns_and_one_for_images():
    mask = torch.zeros((3, 20, 16), dtype=torch.long)
    mask[0, :, :5] = 1
    mask[2, 3, :11] = 1  # the longest pair: 11 tokens
    turns = {"input_ids": torch.zeros_like(mask), "attention_mask": mask}
    assert C._work_factor(turns, "cpu") == 11.0  # the CPU trims columns no pair uses
    assert C._work_factor(turns, "cuda") == 16.0  # an accelerator runs the padded length
    assert C._work_factor({"input_ids": mask}, "cpu") == 1.0
    assert C._work_factor((torch.zeros((4, 3, 32, 32)), torch.zeros(4)), "cpu") == 1.0
